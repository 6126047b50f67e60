#!/usr/bin/env python3
"""Fails when a crate declares a dependency its code never names (style rule 10).

For each crate under crates/, every `[dependencies]` entry must appear as `name::` or
`use name` (dashes as underscores) in src/, and every `[dev-dependencies]` entry in
src/, tests/ or benches/. Crates named only through derive macros can be listed in
ALLOWED with the reason.
"""
import pathlib
import re
import sys
import tomllib

ROOT = pathlib.Path(__file__).resolve().parent.parent
# Dependencies used without their name appearing in code.
ALLOWED = {
    # dd-record's tests include dd-hub's fake hub server (`#[path]`), which hashes with these.
    "dd-record": {"sha1", "sha2"},
}


def sources(crate: pathlib.Path, folders):
    text = []
    for folder in folders:
        for path in (crate / folder).rglob("*.rs"):
            text.append(path.read_text())
    return "\n".join(text)


def used(name: str, text: str) -> bool:
    ident = name.replace("-", "_")
    return re.search(rf"\b{re.escape(ident)}(::|\s*\{{|;)", text) is not None or f"use {ident}" in text


def main() -> int:
    problems = []
    for manifest in sorted(ROOT.glob("crates/*/Cargo.toml")):
        crate = manifest.parent
        config = tomllib.loads(manifest.read_text())
        for table, folders in (("dependencies", ["src"]), ("dev-dependencies", ["src", "tests", "benches"])):
            text = sources(crate, folders)
            for name in config.get(table, {}):
                if name in ALLOWED.get(crate.name, set()):
                    continue
                if not used(name, text):
                    problems.append(f"{crate.name}: {table} entry `{name}` is never used")
    for problem in problems:
        print(problem)
    print(f"unused dependencies: {len(problems)}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
