#!/usr/bin/env python3
"""Validate a CycloneDX 1.6 JSON document against the schema files next to this script.

Offline: every external $ref of the schema resolves to a local file. Works with Debian
bookworm's python3-jsonschema (4.10, RefResolver) and with newer jsonschema (referencing).
Exit 0 valid, 1 invalid (errors on stderr), 2 usage / environment.
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
BOM = "bom-1.6.SNAPSHOT.schema.json"
LOCAL = ["bom-1.6.SNAPSHOT.schema.json", "spdx.SNAPSHOT.schema.json", "jsf-0.82.SNAPSHOT.schema.json"]
BASE = "http://cyclonedx.org/schema/"


def load(name):
    with open(os.path.join(HERE, name), encoding="utf-8") as f:
        return json.load(f)


def main():
    if len(sys.argv) != 2:
        print("usage: validate.py FILE.json", file=sys.stderr)
        return 2
    try:
        import jsonschema
    except ImportError:
        print("validate.py: python3-jsonschema is not installed", file=sys.stderr)
        return 2
    try:
        with open(sys.argv[1], encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        print(f"{sys.argv[1]}: not JSON: {e}", file=sys.stderr)
        return 1

    schemas = {}
    for name in LOCAL:
        s = load(name)
        # Reachable both by the name a $ref uses and by the schema's own $id.
        schemas[BASE + name] = s
        if "$id" in s:
            schemas[s["$id"]] = s
    root = schemas[BASE + BOM]
    cls = jsonschema.validators.validator_for(root)
    cls.check_schema(root)
    fmt = getattr(cls, "FORMAT_CHECKER", None) or jsonschema.FormatChecker()

    try:
        from referencing import Registry, Resource  # jsonschema >= 4.18
        from referencing.jsonschema import DRAFT7

        def retrieve(uri):
            if uri in schemas:
                return Resource.from_contents(schemas[uri], default_specification=DRAFT7)
            raise LookupError(f"no local schema for {uri} (offline)")

        validator = cls(root, registry=Registry(retrieve=retrieve), format_checker=fmt)
    except ImportError:
        resolver = jsonschema.RefResolver(base_uri=root.get("$id", BASE + BOM), referrer=root, store=schemas)

        def no_network(uri):
            raise jsonschema.exceptions.RefResolutionError(f"no local schema for {uri} (offline)")

        resolver.resolve_remote = no_network
        validator = cls(root, resolver=resolver, format_checker=fmt)

    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    for e in errors[:50]:
        path = "/".join(str(p) for p in e.absolute_path) or "(root)"
        print(f"{sys.argv[1]}: {path}: {e.message}", file=sys.stderr)
    if errors:
        print(f"{sys.argv[1]}: {len(errors)} schema error(s)", file=sys.stderr)
        return 1
    print(f"{sys.argv[1]}: valid CycloneDX 1.6")
    return 0


if __name__ == "__main__":
    sys.exit(main())
