"""Validates events against tradewatch's event schema with the Python `jsonschema` package (the
oracle of tests/schema.rs: an independent JSON Schema 2020-12 implementation).

Usage: validate_schema.py SCHEMA < instances.json

Input: a JSON array of instances on stdin. Output: a JSON array on stdout with, for each
instance in order, null when it is valid or the validator's first error message (prefixed with
the path of the offending value) when it is not. The schema itself is checked against the
2020-12 metaschema first: an invalid schema is exit 1 with the problem on stderr.

Exit 77 (and one line on stderr) when the `jsonschema` module is not installed, so the caller
can skip with a hint: pip install jsonschema.
"""

import json
import sys

try:
    from jsonschema import Draft202012Validator
except ImportError:
    sys.stderr.write("python module jsonschema is not installed\n")
    sys.exit(77)


def message(error):
    path = "".join(f"[{p!r}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    return f"{path or '.'}: {error.message}"


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    with open(sys.argv[1], encoding="utf-8") as f:
        schema = json.load(f)
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema)
    instances = json.load(sys.stdin)
    results = []
    for instance in instances:
        errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
        results.append(message(errors[0]) if errors else None)
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
