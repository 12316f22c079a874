#!/usr/bin/env python3
"""Validate OCI runtime-spec config.json files against the official schema (Draft 4).

Usage: validate-spec.py SCHEMA_DIR FILE...   Exit 0 when all are valid; else print each
error (file: path: message) and exit 1. The schema is vendored in tests/oci-runtime-schema
(see its SOURCE.md)."""
import json
import pathlib
import sys
import warnings

warnings.filterwarnings("ignore", category=DeprecationWarning)
import jsonschema  # noqa: E402


def main() -> int:
    schema_dir = pathlib.Path(sys.argv[1]).resolve()
    schema = json.loads((schema_dir / "config-schema.json").read_text())
    resolver = jsonschema.RefResolver(base_uri=schema_dir.as_uri() + "/", referrer=schema)
    validator = jsonschema.Draft4Validator(schema, resolver=resolver)
    bad = 0
    for name in sys.argv[2:]:
        doc = json.loads(pathlib.Path(name).read_text())
        for err in validator.iter_errors(doc):
            bad += 1
            path = "/".join(str(p) for p in err.absolute_path)
            print(f"{name}: {path}: {err.message}")
    print(f"validated {len(sys.argv) - 2} specs, {bad} errors")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
