"""Parses many expositions with the Python prometheus_client parsers, the oracle of
tests/scrape_parse.rs's differential test, and prints what each parser made of each.

Usage: om_oracle.py < cases.json

Input: a JSON array of {"format": "openmetrics" | "text", "text": "..."}.
Output: a JSON array, one object per case, in order:
  {"ok": true, "families": [{"name", "type", "help", "unit"}],
   "samples": [{"name", "labels": {...}, "value", "timestamp_ms",
                "exemplar": null | {"labels": {...}, "value", "timestamp_ms"}}]}
  or {"ok": false, "error": "ExceptionType: message"}.
Values are JSON numbers, or the strings "NaN", "+Inf" and "-Inf". Timestamps are integer
milliseconds (truncated toward zero, as tradewatch converts OpenMetrics seconds) or null.
Any exception counts as a rejection: the parsers raise ValueError for bad input, but also
IndexError or KeyError for some (an OpenMetrics timestamp like `1e3`, for one).
"""

import json
import math
import sys

from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as parse_text
from prometheus_client.samples import Timestamp


def number(value):
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return value


def millis(ts, text_format):
    if ts is None:
        return None
    if isinstance(ts, Timestamp):
        return ts.sec * 1000 + ts.nsec // 1_000_000
    if text_format:
        # The text parser divides the integer milliseconds by 1000.
        return round(ts * 1000)
    return int(ts * 1000)


def parse(case):
    text_format = case["format"] == "text"
    parser = parse_text if text_format else parse_openmetrics
    families = []
    samples = []
    for family in parser(case["text"]):
        families.append(
            {
                "name": family.name,
                "type": family.type,
                "help": family.documentation,
                "unit": family.unit,
            }
        )
        for s in family.samples:
            exemplar = None
            if s.exemplar is not None:
                exemplar = {
                    "labels": s.exemplar.labels,
                    "value": number(s.exemplar.value),
                    "timestamp_ms": millis(s.exemplar.timestamp, False),
                }
            samples.append(
                {
                    "name": s.name,
                    "labels": s.labels,
                    "value": number(s.value),
                    "timestamp_ms": millis(s.timestamp, text_format),
                    "exemplar": exemplar,
                }
            )
    return {"ok": True, "families": families, "samples": samples}


def main():
    results = []
    for case in json.load(sys.stdin):
        try:
            results.append(parse(case))
        except Exception as e:  # noqa: BLE001 (every exception is a rejection)
            results.append({"ok": False, "error": f"{type(e).__name__}: {e}"})
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
