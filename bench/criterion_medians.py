#!/usr/bin/env python3
"""Medians of the last criterion run: one line per benchmark of the given groups.

Usage: criterion_medians.py TARGET_DIR GROUP...   (reads TARGET_DIR/criterion/GROUP/**/new/*.json)
Criterion's median is the median of its samples' per-iteration times; throughput is computed
from it (elements/s, and MB/s where the benchmark declares bytes).
"""

import json
import pathlib
import sys


def unit(ns: float) -> str:
    for scale, name in ((1e9, "s"), (1e6, "ms"), (1e3, "µs")):
        if ns >= scale:
            return f"{ns / scale:.3f} {name}"
    return f"{ns:.1f} ns"


def main() -> int:
    root = pathlib.Path(sys.argv[1]) / "criterion"
    for group in sys.argv[2:]:
        for bench in sorted((root / group).glob("**/new/benchmark.json")):
            meta = json.loads(bench.read_text())
            est = json.loads((bench.parent / "estimates.json").read_text())["median"]
            ns = est["point_estimate"]
            lo, hi = est["confidence_interval"]["lower_bound"], est["confidence_interval"]["upper_bound"]
            tp = meta.get("throughput") or {}
            if "ElementsAndBytes" in tp:
                tp = {"Elements": tp["ElementsAndBytes"]["elements"],
                      "Bytes": tp["ElementsAndBytes"]["bytes"]}
            rate = []
            if "Elements" in tp:
                rate.append(f"{tp['Elements'] / ns * 1e9:,.0f} elem/s")
            if "Bytes" in tp:
                rate.append(f"{tp['Bytes'] / ns * 1e3:,.0f} MB/s")
            print(f"{meta['full_id']:<44} median {unit(ns):>11} "
                  f"[{unit(lo)} .. {unit(hi)}]  {'  '.join(rate)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
