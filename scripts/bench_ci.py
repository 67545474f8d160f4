#!/usr/bin/env python3
"""Bootstrap confidence interval of the filter's CPU ratio, for bench-filter.

Input (stdin): one line per clean cycle and variant, "cycle variant ns reqs"
(the variant's Envoy CPU time over its bursts in that cycle and the requests
served in them). The ratio is (mplb - none) / (noop - none) in CPU per
request, each a sum over the cycles. Resampling whole cycles with
replacement (cycles are the unit of pairing: every variant ran in each,
close in time) gives its spread; the seed is fixed, so the same input gives
the same interval.

Usage: bench_ci.py [variant ...]   (default: mplb; prints one line each)
"""
import random
import sys
from collections import defaultdict

RESAMPLES = 4000


def per_req(cycles, data, variant):
    ns = sum(data[c][variant][0] for c in cycles)
    reqs = sum(data[c][variant][1] for c in cycles)
    return ns / reqs / 1e3


def ratio(cycles, data, variant):
    none = per_req(cycles, data, "none")
    noop = per_req(cycles, data, "noop") - none
    return (per_req(cycles, data, variant) - none) / noop if noop > 0 else float("inf")


def main():
    data = defaultdict(dict)
    for line in sys.stdin:
        parts = line.split()
        if len(parts) == 4:
            data[parts[0]][parts[1]] = (float(parts[2]), float(parts[3]))
    cycles = sorted(data)
    if len(cycles) < 2:
        print("bootstrap: fewer than 2 cycles")
        return
    rng = random.Random(1)
    for variant in sys.argv[1:] or ["mplb"]:
        if any(variant not in data[c] for c in cycles):
            continue
        point = ratio(cycles, data, variant)
        draws = sorted(
            ratio([rng.choice(cycles) for _ in cycles], data, variant) for _ in range(RESAMPLES)
        )
        lo, hi = draws[int(0.025 * RESAMPLES)], draws[int(0.975 * RESAMPLES) - 1]
        at_most_2 = sum(d <= 2 for d in draws) / RESAMPLES
        print(
            f"bootstrap: {variant}/noop added CPU per request {point:.2f}, 95% interval "
            f"{lo:.2f} to {hi:.2f} over {len(cycles)} cycles ({RESAMPLES} resamples); "
            f"<= 2 in {at_most_2 * 100:.0f}% of resamples"
        )


if __name__ == "__main__":
    main()
