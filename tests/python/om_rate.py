"""Times the Python prometheus_client OpenMetrics parser on the exposition that
benches/parse.rs parses, for the comparison in bench/RESULTS.md.

Usage: python3 tests/python/om_rate.py [FILE] [RUNS]
  FILE: the exposition (default target/tmp/parse-100k.om, written by `cargo bench --bench parse`)
  RUNS: how many timed parses (default 3); the best is reported.

Prints the size, the number of samples, the best time and the rate in MB/s (10^6 bytes a
second, as criterion reports MB/s for the Rust parser's throughput).
"""

import sys
import time

from prometheus_client.openmetrics.parser import text_string_to_metric_families


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "target/tmp/parse-100k.om"
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    with open(path, "rb") as f:
        data = f.read()
    text = data.decode("utf-8")
    best = None
    samples = 0
    for _ in range(runs):
        start = time.perf_counter()
        samples = sum(len(family.samples) for family in text_string_to_metric_families(text))
        elapsed = time.perf_counter() - start
        best = elapsed if best is None else min(best, elapsed)
    print(
        f"{path}: {len(data)} bytes, {samples} samples; best of {runs}: {best:.2f} s, "
        f"{len(data) / best / 1e6:.2f} MB/s"
    )


if __name__ == "__main__":
    main()
