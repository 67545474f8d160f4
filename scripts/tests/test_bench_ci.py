"""Tests of scripts/bench_ci.py, the bootstrap interval bench-filter prints."""
import subprocess
import sys
import unittest
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "bench_ci.py"


def run(lines, *variants):
    out = subprocess.run(
        [sys.executable, str(SCRIPT), *variants],
        input="".join(f"{line}\n" for line in lines),
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def cycles(rows):
    """rows: per cycle (none, noop, mplb) us per request, 1,000 requests each."""
    return [
        f"{c} {v} {us * 1e6:.0f} 1000"
        for c, row in enumerate(rows, 1)
        for v, us in zip(("none", "noop", "mplb"), row)
    ]


class BenchCi(unittest.TestCase):
    def test_point_is_the_ratio_of_sums(self):
        # Over both cycles: none 40, noop 43 (+3), mplb 46 (+6) us per request.
        line = run(cycles([(40, 42, 45), (40, 44, 47)]))
        self.assertIn("mplb/noop added CPU per request 2.00,", line)
        self.assertIn("over 2 cycles", line)

    def test_identical_cycles_give_a_point_interval(self):
        line = run(cycles([(40, 43, 44.5)] * 10))
        self.assertIn("1.50, 95% interval 1.50 to 1.50", line)
        self.assertIn("<= 2 in 100% of resamples", line)

    def test_noisy_cycles_widen_the_interval_and_it_holds_the_point(self):
        line = run(cycles([(40, 43, 46), (40, 42, 47), (40, 44, 45), (40, 43, 49)]))
        words = line.replace(",", "").split()
        point = float(words[words.index("request") + 1])
        lo = float(words[words.index("interval") + 1])
        hi = float(words[words.index("to") + 1])
        self.assertLess(lo, point)
        self.assertLess(point, hi)

    def test_same_input_same_interval(self):
        rows = cycles([(40, 43, 46), (41, 42, 47), (39, 44, 45)])
        self.assertEqual(run(rows), run(rows))

    def test_too_few_cycles_and_missing_variants(self):
        self.assertEqual(run(cycles([(40, 43, 46)])), "bootstrap: fewer than 2 cycles")
        self.assertEqual(run(cycles([(40, 43, 46)] * 3), "alt"), "")


if __name__ == "__main__":
    unittest.main()
