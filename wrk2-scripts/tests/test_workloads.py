"""Tests of the wrk2-scripts workloads and run.sh.

Each test starts tests/recording_server.py on a free loopback port, runs
run.sh (wrk here, wrk2 if installed) for a bounded few seconds, stops the
server and checks the requests it recorded: paths, parameters, proportions,
and the results file. Run: python3 wrk2-scripts/tests/test_workloads.py
Prints "N passed, N failed" last; exits non-zero on any failure.
"""

import collections
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import unittest
from urllib.parse import parse_qs, urlsplit

HERE = os.path.dirname(os.path.abspath(__file__))
RUN = os.path.join(HERE, "..", "run.sh")
SERVER = os.path.join(HERE, "recording_server.py")

DATE = r"2015-04-\d\d"
COORD = r"-?\d+\.\d{4}"
PATTERNS = {
    "search": re.compile(
        rf"^GET /hotels\?inDate=({DATE})&outDate=({DATE})&lat=({COORD})&lon=({COORD})$"
    ),
    "recommend": re.compile(
        rf"^GET /recommendations\?require=(dis|rate|price)&lat=({COORD})&lon=({COORD})$"
    ),
    "login": re.compile(r"^GET /user\?username=Cornell_(\d+)&password=(\d+)$"),
    "reserve": re.compile(
        rf"^POST /reservation\?inDate=({DATE})&outDate=({DATE})&lat=({COORD})&lon=({COORD})"
        r"&hotelId=(\d+)&customerName=(Cornell_\d+)&username=(Cornell_\d+)&password=(\d+)&number=1$"
    ),
}


class Recorder:
    """The recording server as a context manager: killed on exit, even on failure."""

    def __enter__(self):
        self.dir = tempfile.TemporaryDirectory()
        self.port_file = os.path.join(self.dir.name, "port")
        self.log_file = os.path.join(self.dir.name, "requests.log")
        self.proc = subprocess.Popen([sys.executable, SERVER, self.port_file, self.log_file])
        deadline = time.monotonic() + 10
        while not os.path.exists(self.port_file):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("recording server did not start")
            time.sleep(0.05)
        with open(self.port_file) as f:
            self.url = f"http://127.0.0.1:{f.read().strip()}"
        return self

    def stop(self) -> list[str]:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=20)
        with open(self.log_file + ".hosts") as f:
            self.hosts = [h for h in f.read().splitlines() if h]
        with open(self.log_file) as f:
            return [line for line in f.read().splitlines() if line]

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.dir.cleanup()


def run(url: str, workload: str, out: str, duration: str = "3s", extra: tuple = ()) -> dict[str, str]:
    subprocess.run(
        [RUN, "--url", url, "--workload", workload, "--duration", duration,
         "--connections", "8", "--threads", "2", "--rate", "2000", "--out", out, *extra],
        check=True, timeout=60, capture_output=True,
    )
    results = {}
    with open(out) as f:
        for line in f:
            k, _, v = line.partition(": ")
            results[k] = v.strip()
    return results


def check_results_file(t: unittest.TestCase, res: dict[str, str], served: int) -> None:
    for key in ("tool", "throughput_rps", "p50_ms", "p90_ms", "p99_ms", "p999_ms", "non2xx"):
        t.assertIn(key, res)
    p = [float(res[k]) for k in ("p50_ms", "p90_ms", "p99_ms", "p999_ms")]
    t.assertEqual(p, sorted(p), "percentiles must be non-decreasing")
    t.assertGreater(p[0], 0)
    t.assertGreater(float(res["throughput_rps"]), 0)
    # wrk counts completed responses; the server also saw the in-flight ones
    t.assertLessEqual(int(res["requests"]), served)
    t.assertGreaterEqual(int(res["requests"]), served - 64)


class Workloads(unittest.TestCase):
    def test_hotel_mixed_paths_and_proportions(self):
        with Recorder() as rec, tempfile.TemporaryDirectory() as d:
            res = run(rec.url, "hotel-mixed", os.path.join(d, "r.txt"))
            lines = rec.stop()
        self.assertEqual(rec.hosts, [rec.url.removeprefix("http://")])
        self.assertGreaterEqual(len(lines), 5000, "too few requests to judge proportions")
        counts = collections.Counter()
        for line in lines:
            kind = next((k for k, p in PATTERNS.items() if p.match(line)), None)
            self.assertIsNotNone(kind, f"unexpected request: {line}")
            counts[kind] += 1
            m = PATTERNS[kind].match(line)
            if kind in ("search", "reserve"):
                in_day, out_day = int(m.group(1)[-2:]), int(m.group(2)[-2:])
                self.assertTrue(9 <= in_day <= 23 and in_day < out_day <= 28, line)
                lat, lon = float(m.group(3)), float(m.group(4))
                self.assertTrue(37.782 <= lat <= 38.265 and -122.253 <= lon <= -121.926, line)
            if kind == "reserve":
                self.assertTrue(1 <= int(m.group(5)) <= 80, line)
                self.assertEqual(m.group(6), m.group(7))
                user_id = m.group(7).split("_")[1]
                self.assertEqual(m.group(8), user_id * 10)
            if kind == "login":
                self.assertTrue(0 <= int(m.group(1)) <= 500)
                self.assertEqual(m.group(2), m.group(1) * 10)
        n = len(lines)
        share = {k: counts[k] / n for k in PATTERNS}
        self.assertAlmostEqual(share["search"], 0.60, delta=0.03, msg=str(share))
        self.assertAlmostEqual(share["recommend"], 0.39, delta=0.03, msg=str(share))
        self.assertTrue(0.001 <= share["login"] <= 0.012, msg=str(share))
        self.assertTrue(0.001 <= share["reserve"] <= 0.012, msg=str(share))
        check_results_file(self, res, n)
        self.assertEqual(res["non2xx"], "0")

    def test_recommendations_alone(self):
        with Recorder() as rec, tempfile.TemporaryDirectory() as d:
            res = run(rec.url, "recommendations", os.path.join(d, "r.txt"),
                      extra=("--header", "Host: frontend.hotel.svc.cluster.local"))
            lines = rec.stop()
        self.assertEqual(rec.hosts, ["frontend.hotel.svc.cluster.local"])
        self.assertGreaterEqual(len(lines), 3000)
        criteria = collections.Counter()
        for line in lines:
            m = PATTERNS["recommend"].match(line)
            self.assertIsNotNone(m, f"unexpected request: {line}")
            criteria[m.group(1)] += 1
        for c in ("dis", "rate", "price"):
            self.assertAlmostEqual(criteria[c] / len(lines), 1 / 3, delta=0.04, msg=str(criteria))
        check_results_file(self, res, len(lines))

    def test_non_2xx_are_counted(self):
        with Recorder() as rec, tempfile.TemporaryDirectory() as d:
            lua = os.path.join(d, "fail.lua")
            with open(lua, "w") as f:
                f.write(
                    f'local lib = dofile("{HERE}/../lib/report.lua")\n'
                    "done = lib.done\n"
                    'request = function() return wrk.format("GET", "/fail") end\n'
                )
            res = run(rec.url, lua, os.path.join(d, "r.txt"), duration="1s")
            lines = rec.stop()
        self.assertGreater(int(res["requests"]), 0)
        self.assertEqual(int(res["non2xx"]), int(res["requests"]))
        self.assertTrue(all(line == "GET /fail" for line in lines))

    def test_run_sh_rejects_bad_arguments(self):
        for args in ([], ["--url", "http://127.0.0.1:1", "--rate", "0"],
                     ["--url", "http://127.0.0.1:1", "--workload", "/nonexistent.lua"],
                     ["--url", "http://127.0.0.1:1", "--bogus"],
                     ["--url", "http://127.0.0.1:1", "--header", "no-colon"]):
            p = subprocess.run([RUN, *args], capture_output=True, timeout=10)
            self.assertEqual(p.returncode, 2, args)
            self.assertIn(b"run.sh:", p.stderr)


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    failed = len(result.failures) + len(result.errors)
    print(f"wrk2-scripts: {result.testsRun - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
