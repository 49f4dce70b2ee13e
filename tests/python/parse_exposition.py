"""Parses an exposition read from stdin with the Python prometheus_client parsers (the oracle
of DESIGN §1 "Exposition") and prints its families as JSON on stdout.

Usage: parse_exposition.py openmetrics|text < exposition

Output: [{"name", "type", "help", "unit", "samples": [{"name", "labels", "value"}]}], values as
JSON numbers, or the strings "NaN", "+Inf" and "-Inf". A parse error is an exception: exit 1 with
the parser's message on stderr.
"""

import json
import math
import sys

from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as parse_text


def number(value):
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return value


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in ("openmetrics", "text"):
        sys.exit(__doc__)
    parse = parse_openmetrics if sys.argv[1] == "openmetrics" else parse_text
    text = sys.stdin.buffer.read().decode("utf-8")
    families = []
    for family in parse(text):
        families.append(
            {
                "name": family.name,
                "type": family.type,
                "help": family.documentation,
                "unit": family.unit,
                "samples": [
                    {"name": s.name, "labels": s.labels, "value": number(s.value)}
                    for s in family.samples
                ],
            }
        )
    json.dump(families, sys.stdout)


if __name__ == "__main__":
    main()
