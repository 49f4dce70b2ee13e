#!/usr/bin/env python3
"""The hottest functions of a callgrind profile, with inlined code folded into its function.

callgrind_annotate lists cost by (source file, function): a Rust function whose inlined callees
come from several files appears several times. This sums those rows by function.

Usage: callgrind_top.py CALLGRIND_OUT [N]   (needs callgrind_annotate on PATH)
Prints the top N (default 15) by self cost ("exclusive") and, for the same functions and the main
stages of the ingest path, the inclusive cost of their largest row (a lower bound when a function
is split across files).
"""

import collections
import re
import subprocess
import sys

ROW = re.compile(r"\s*([\d,]+) \(\s*[\d.]+%\)\s+(.*)$")
STAGES = [
    "tradewatch::ingest::Ingest::decode",
    "tradewatch::ingest::plan::Planner::plan_line",
    "tradewatch::ingest::event::decode",
    "tradewatch::ingest::event::RawEvent::present_fields",
    "tradewatch::model::names::render_labels",
    "tradewatch::ingest::writer::Writer::run",
    "tradewatch::ingest::writer::apply",
    "tradewatch::exporter::registry::Family::lookup",
]


def rows(path: str, inclusive: bool):
    out = subprocess.run(
        ["callgrind_annotate", f"--inclusive={'yes' if inclusive else 'no'}", "--auto=no",
         "--threshold=100", path],
        check=True, capture_output=True, text=True,
    ).stdout
    total = None
    for line in out.splitlines():
        m = ROW.match(line)
        if not m:
            continue
        ir = int(m.group(1).replace(",", ""))
        rest = re.sub(r" \[[^\]]*\]$", "", m.group(2))
        if rest.startswith("PROGRAM TOTALS"):
            total = ir
            continue
        yield total, (rest.split(":", 1)[1] if ":" in rest else rest), ir


def main() -> int:
    path = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 15
    self_cost = collections.Counter()
    total = 0
    for total, fn, ir in rows(path, inclusive=False):
        self_cost[fn] += ir
    inclusive = collections.defaultdict(int)
    for _, fn, ir in rows(path, inclusive=True):
        inclusive[fn] = max(inclusive[fn], ir)
    print(f"total instructions (Ir): {total:,}")
    print(f"{'#':>2} {'self Ir':>14} {'self':>6} {'incl':>6}  function")
    for i, (fn, ir) in enumerate(self_cost.most_common(n), 1):
        print(f"{i:>2} {ir:>14,} {100 * ir / total:5.1f}% {100 * inclusive[fn] / total:5.1f}%  {fn}")
    print("\nstages (inclusive, largest row):")
    for fn in STAGES:
        print(f"   {inclusive[fn]:>14,} {100 * inclusive[fn] / total:5.1f}%  {fn}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
