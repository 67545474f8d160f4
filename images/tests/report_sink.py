#!/usr/bin/env python3
"""A stand-in weight server for the image run test: accepts POST /v1/reports
on 127.0.0.1:PORT, appends each body (one JSON line) to FILE, answers 204.
With TOKEN, a report without `Authorization: Bearer TOKEN` gets 401 and is
not recorded (the weight server checks the agent's projected token).
Usage: report_sink.py PORT FILE [TOKEN]. Runs until killed."""

import http.server
import sys


class Sink(http.server.BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (http.server's naming)
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(min(n, 1 << 20))
        if self.path != "/v1/reports":
            self.send_response(404)
            self.end_headers()
            return
        if len(sys.argv) > 3 and self.headers.get("Authorization") != "Bearer " + sys.argv[3]:
            self.send_response(401)
            self.end_headers()
            return
        with open(sys.argv[2], "ab") as f:
            f.write(body.replace(b"\n", b" ") + b"\n")
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Sink).serve_forever()
