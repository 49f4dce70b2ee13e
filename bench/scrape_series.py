#!/usr/bin/env python3
"""The scrape benchmark's series set, for tradewatch and for the Pushgateway.

`generate` writes the shared workload (/work/shared/bench/series.py: per (strategy, symbol, venue)
four counters, four gauges and a histogram with 9 finite buckets, 20 series) twice from the same
random draws:

- as Prometheus text 0.0.4 (prometheus_client's `generate_latest`), to PUT to the Pushgateway;
- as NDJSON `metric` events (counter increments, gauge sets, histogram observations), to POST
  to tradewatch;

plus a tradewatch config that gives the histogram the workload's 9 buckets. Names carry the
prefix `bench_` (`bench_trading_orders_total`, …) because tradewatch refuses `metric` events whose
name starts with `trading_` (that prefix belongs to its catalog). `strategy` goes in the event's
top-level field (tradewatch reserves it), so tradewatch's series also carry `engine="default"`, as
the Pushgateway's carry `job` and `instance`.

`compare` reads both servers' /metrics bodies and checks that every `bench_*` series has the
same value in both, ignoring the labels each server adds.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import sys

SHARED = os.environ.get("TRADEWATCH_SHARED_BENCH", "/work/shared/bench")
PREFIX = "bench_"
ADDED_LABELS = {"engine", "job", "instance"}


def generate(a: argparse.Namespace) -> int:
    sys.path.insert(0, SHARED)
    import series  # noqa: PLC0415  (the shared workload; needs prometheus_client)
    from prometheus_client.exposition import generate_latest  # noqa: PLC0415

    reg, tm = series.build_registry(a.series, a.seed)
    text = generate_latest(reg).decode()
    text = text.replace("trading_", PREFIX + "trading_")
    with open(a.text, "w") as f:
        f.write(text)

    helps = {
        "orders": "Orders sent.",
        "fills": "Fills received.",
        "rejects": "Orders rejected.",
        "cancels": "Orders cancelled.",
        "position": "Net position (units).",
        "pnl": "Realised + unrealised PnL.",
        "open_orders": "Open orders.",
        "exposure_notional": "Gross notional exposure.",
        "order_latency_seconds": "Order ack latency.",
    }

    def event(strategy, symbol, venue, kind, name, value):
        return json.dumps(
            {
                "type": "metric",
                "strategy": strategy,
                "kind": kind,
                "name": f"{PREFIX}trading_{name}",
                "value": value,
                "labels": {"symbol": symbol, "venue": venue},
                "help": helps[name.removesuffix("_total")],
            },
            separators=(",", ":"),
        )

    # The same draws, in the same order, as series.TradingMetrics.populate.
    rnd = random.Random(a.seed)
    lines = []
    for strategy, symbol, venue in series.combos(a.series):
        orders = rnd.randint(1000, 500000)
        counters = [
            orders,
            int(orders * rnd.uniform(0.3, 0.9)),
            rnd.randint(0, 50),
            int(orders * rnd.uniform(0.05, 0.6)),
        ]
        gauges = [
            round(rnd.uniform(-1e5, 1e5), 2),
            round(rnd.uniform(-1e4, 1e4), 2),
            rnd.randint(0, 100),
            round(rnd.uniform(0, 1e7), 2),
        ]
        observations = [rnd.lognormvariate(-7.0, 0.8) for _ in range(5)]
        for name, v in zip(["orders", "fills", "rejects", "cancels"], counters):
            lines.append(event(strategy, symbol, venue, "counter", name + "_total", v))
        for name, v in zip(["position", "pnl", "open_orders", "exposure_notional"], gauges):
            lines.append(event(strategy, symbol, venue, "gauge", name, v))
        for v in observations:
            lines.append(event(strategy, symbol, venue, "histogram", "order_latency_seconds", v))
    with open(a.events, "w") as f:
        f.write("\n".join(lines) + "\n")

    with open(a.config, "w") as f:
        f.write(
            "# Written by bench/scrape_series.py: the workload's histogram buckets.\n"
            "exporter:\n"
            "  buckets:\n"
            f"    {PREFIX}trading_order_latency_seconds: "
            f"[{', '.join(repr(b) for b in series.LATENCY_BUCKETS)}]\n"
        )
    print(f"{a.series} series: {len(lines)} events, {len(text)} bytes of text", file=sys.stderr)
    return 0


SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def samples(path: str) -> dict:
    out = {}
    with open(path) as f:
        for line in f:
            if not line.startswith(PREFIX):
                continue
            m = SAMPLE.match(line)
            if not m:
                raise ValueError(f"{path}: cannot read {line!r}")
            name, labels, value = m.groups()
            pairs = tuple(
                sorted((k, v) for k, v in LABEL.findall(labels or "") if k not in ADDED_LABELS)
            )
            if name.endswith("_bucket"):
                pairs = tuple((k, repr(float(v)) if k == "le" else v) for k, v in pairs)
            out[(name, pairs)] = float(value)
    return out


def compare(a: argparse.Namespace) -> int:
    left, right = samples(a.left), samples(a.right)
    missing = left.keys() ^ right.keys()
    differ = [
        k
        for k in left.keys() & right.keys()
        if not math.isclose(left[k], right[k], rel_tol=1e-9, abs_tol=1e-12)
    ]
    print(
        f"compare: {len(left)} bench series in {a.left}, {len(right)} in {a.right}, "
        f"{len(missing)} in only one, {len(differ)} with different values"
    )
    for k in sorted(missing)[:5]:
        print("  only in one:", k)
    for k in sorted(differ)[:5]:
        print("  differ:", k, left[k], right[k])
    return 0 if not missing and not differ and left else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("generate", help="write the text exposition, the events and a config")
    g.add_argument("--series", type=int, default=100000)
    g.add_argument("--seed", type=int, default=42)
    g.add_argument("--text", required=True, help="Prometheus text 0.0.4 for the Pushgateway")
    g.add_argument("--events", required=True, help="NDJSON metric events for tradewatch")
    g.add_argument("--config", required=True, help="tradewatch config with the buckets")
    c = sub.add_parser("compare", help="check that two /metrics bodies hold the same values")
    c.add_argument("left")
    c.add_argument("right")
    a = ap.parse_args()
    return generate(a) if a.cmd == "generate" else compare(a)


if __name__ == "__main__":
    raise SystemExit(main())
