#!/usr/bin/env python3
# A copy of the project tool shared/tools/module-loops.py, so CI keeps modules free of loops.
"""Lists loops between the modules (files) of each Rust crate: groups of files that import one another.

Usage: module-loops.py [REPO]   (default: the current directory; reads crates/*/src/**/*.rs)
Reads `use crate::…`, `crate::…::` paths and `super::` paths as text, resolves each to the
file of the deepest module it names, and prints every strongly connected group of two or more
files with the names that tie them. Exit code 1 when a loop exists. A text reading: open the code
at the names it gives before you act on it.
"""
import re, sys
from pathlib import Path

def module_files(src):
    """Maps module paths (tuples) to files for one crate's src/."""
    mods = {}
    for f in src.rglob("*.rs"):
        rel = f.relative_to(src).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] in ("lib", "main") and len(parts) == 1:
            parts = []
        elif parts[-1] == "mod":
            parts = parts[:-1]
        mods[tuple(parts)] = f
    return mods

PATH = re.compile(r"\b(crate|super)((?:::\w+)+)")
USE_GROUP = re.compile(r"\buse\s+(crate|super)((?:::\w+)*)::\{([^;]*)\};", re.S)

def targets(text, here, mods):
    """Yields (module path, name) for each path in the text that names another module of the crate."""
    def resolve(root, segs):
        base = [] if root == "crate" else list(here[:-1])
        while segs and segs[0] == "super":
            base = base[:-1]; segs = segs[1:]
        path = base + segs
        for cut in range(len(path), 0, -1):
            if tuple(path[:cut]) in mods:
                return tuple(path[:cut]), (path[cut] if cut < len(path) else path[-1])
        return None
    for root, group, inner in USE_GROUP.findall(text):
        prefix = [s for s in group.split("::") if s]
        for item in re.split(r"[,{}\s]+", inner):
            item = item.split("::")
            if item and item[0] and item[0] not in ("self",):
                hit = resolve(root, prefix + item)
                if hit: yield hit
    for root, rest in PATH.findall(text):
        hit = resolve(root, [s for s in rest.split("::") if s])
        if hit: yield hit

def loops(graph):
    index, low, stack, on, out, n = {}, {}, [], set(), [], [0]
    def visit(v):
        index[v] = low[v] = n[0]; n[0] += 1; stack.append(v); on.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w); low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop(); on.discard(w); comp.append(w)
                if w == v: break
            if len(comp) > 1: out.append(sorted(comp))
    sys.setrecursionlimit(10000)
    for v in graph:
        if v not in index: visit(v)
    return out

def main():
    repo = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    found = 0
    for src in sorted(repo.glob("crates/*/src")):
        mods = module_files(src)
        files = {f: m for m, f in mods.items()}
        graph = {}
        for f, here in files.items():
            text = re.sub(r"//[^\n]*", "", f.read_text(errors="replace"))
            text = text.split("#[cfg(test)]")[0]  # unit tests may reach anywhere
            for mod, name in targets(text, here if f.name == "mod.rs" or not here else here, mods):
                g = mods[mod]
                if g == f or (f.name in ("lib.rs", "main.rs") and not here):
                    continue  # the crate root declares and re-exports every module
                if f.name == "mod.rs" and mod[: len(here)] == here:
                    continue  # a parent module declaring or re-exporting its own children
                graph.setdefault(f, {}).setdefault(g, set()).add(name)
        for comp in loops(graph):
            found += 1
            print(f"loop {found}: {len(comp)} files in {src.parent.name}")
            for a in comp:
                for b in comp:
                    if b in graph.get(a, {}):
                        print(f"  {a.relative_to(repo)} -> {b.relative_to(repo)}: {', '.join(sorted(graph[a][b]))}")
    if not found:
        print("no loops between modules")
    return 1 if found else 0

if __name__ == "__main__":
    sys.exit(main())
