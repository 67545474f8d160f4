"""A tiny HTTP/1.1 keep-alive server that records every request line.

Usage: recording_server.py PORT_FILE LOG_FILE
Binds 127.0.0.1 on a free port, writes the port to PORT_FILE, answers every
GET/POST with 200 (and every path starting with /fail with 503, so non-2xx
counting can be checked), writes "METHOD PATH" lines to LOG_FILE and the
distinct Host headers to LOG_FILE.hosts, and exits on
SIGTERM or after 120 s, whichever comes first.
"""

import http.server
import os
import signal
import sys
import threading


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    lines: list[str] = []
    hosts: set[str] = set()

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        Handler.lines.append(f"{self.command} {self.path}")
        Handler.hosts.add(self.headers.get("Host", ""))
        status = 503 if self.path.startswith("/fail") else 200
        body = b"ok\n"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = _answer
    do_POST = _answer

    def log_message(self, *args) -> None:  # keep stderr quiet
        pass


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        # wrk resets its connections when it stops: not worth a traceback
        pass


def main() -> None:
    port_file, log_file = sys.argv[1], sys.argv[2]
    server = Server(("127.0.0.1", 0), Handler)

    def stop(*_args) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    timer = threading.Timer(120, stop)
    timer.daemon = True
    timer.start()
    with open(port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(port_file + ".tmp", port_file)
    server.serve_forever()
    with open(log_file, "w") as f:
        f.write("\n".join(Handler.lines) + ("\n" if Handler.lines else ""))
    with open(log_file + ".hosts", "w") as f:
        f.write("\n".join(sorted(Handler.hosts)) + "\n")


if __name__ == "__main__":
    main()
