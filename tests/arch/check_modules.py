#!/usr/bin/env python3
"""No module circles: within each crate of the workspace, the files' imports form no loop.

A file imports another when it names one of its items through `crate::…`, `super::…` or
`self::…` (in a `use` or inline). A module's root naming its own children (`mod x;`,
`pub use x::…`: its face) is no import, and neither is a name the crate's root re-exports
(`crate::Thing`): those are how Rust modules are declared, not dependencies between files.
Test code (`#[cfg(test)] mod tests { … }` at a file's end) is not read.

Before checking the workspace, the checker runs on made-up crates with and without a
circle, so a check that could no longer fail fails here. Exit status 1 with one line per
circle.
"""

import pathlib
import re
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tools"))
from cargo_graph import ROOT, Graph, metadata  # noqa: E402

PATH = re.compile(r"\b(crate|super|self)::((?:[A-Za-z_]\w*::)*)(\{|[A-Za-z_]\w*)")
TESTS = re.compile(r"^#\[cfg\(test\)\]\s*\n\s*mod tests\b", re.M)
COMMENT = re.compile(r"//[^\n]*")


def module_of(src, path):
    """The module path of a source file: `a/b.rs` and `a/b/mod.rs` are ["a", "b"]."""
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "mod" or (len(parts) == 1 and parts[0] in ("lib", "main")):
        parts = parts[:-1]
    return tuple(parts)


def braced(text, start):
    """The top-level items of the `{…}` opening at `start`, as their first path segment."""
    depth, item, items = 0, "", []
    for ch in text[start:]:
        if ch == "{":
            depth += 1
            if depth == 1:
                continue
        elif ch == "}":
            depth -= 1
            if depth == 0:
                items.append(item)
                break
        if depth == 1 and ch == ",":
            items.append(item)
            item = ""
        elif depth >= 1:
            item += ch
    return [i.strip().split("::")[0].strip() for i in items if i.strip()]


def imports(modules, module, text):
    """The modules a file's text names, resolved to the longest module that exists."""
    text = COMMENT.sub("", text)
    tests = TESTS.search(text)
    if tests:
        text = text[: tests.start()]
    found = set()
    for m in PATH.finditer(text):
        anchor, middle, last = m.group(1), m.group(2), m.group(3)
        if anchor == "crate":
            base = ()
        elif anchor == "super":
            base = module[:-1]
        else:
            base = module
        segments = [s for s in middle.split("::") if s]
        heads = braced(text, m.end() - 1) if last == "{" else [last]
        for head in heads:
            path = [*segments, head] if head not in ("self", "") else segments
            # `super::super::x`: each super climbs one more module.
            climb = base
            while path and path[0] == "super":
                climb, path = climb[:-1], path[1:]
            target = None
            for n in range(len(path), 0, -1):
                if (*climb, *path[:n]) in modules:
                    target = (*climb, *path[:n])
                    break
            if target is None and climb in modules and climb:
                target = climb
            # A module's own children are its face; the crate root is everyone's face.
            if target and target != module and target[: len(module)] != module:
                found.add(target)
    return found


def circles(graph):
    """Strongly connected components of more than one node (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def crate_graph(files):
    """{module: modules it imports} for a crate given as {module: source text}."""
    modules = set(files) | {()}
    graph = {}
    for module, text in files.items():
        graph[module] = {t for t in imports(modules, module, text) if t != ()}
    return graph


def problems_of(crates):
    problems = []
    for name, files in sorted(crates.items()):
        graph = crate_graph(files)
        for component in circles(graph):
            ties = [
                f"{'::'.join(a) or 'crate'} -> {'::'.join(b)}"
                for a in component
                for b in sorted(graph[a])
                if b in component
            ]
            problems.append(f"{name}: circle of {len(component)} modules: {'; '.join(ties)}")
    return problems


def workspace_crates():
    crates = {}
    for name, package in Graph(metadata()).members.items():
        folder = pathlib.Path(package["manifest_path"]).parent
        src = folder / "src"
        if not src.is_dir():
            continue
        files = {}
        for path in sorted(src.rglob("*.rs")):
            # A package's binary beside its library: one tree of names (src/main.rs, src/lib.rs).
            files[module_of(src, path)] = files.get(module_of(src, path), "") + path.read_text()
        crates[name] = files
    return crates


def self_test():
    acyclic = {
        (): "mod a; mod b; mod c; pub use a::Thing;",
        ("a",): "use crate::b::B; pub struct Thing;",
        ("b",): "use crate::{c::C, Thing}; pub struct B;",
        ("c",): "pub struct C;\n#[cfg(test)]\nmod tests { use crate::a::Thing; }",
        ("c", "d"): "use super::C; use super::super::b::B;",
    }
    assert problems_of({"ok": acyclic}) == [], problems_of({"ok": acyclic})
    cases = {
        "a use": {("c",): "use crate::a::Thing; pub struct C;"},
        "a braced use": {("c",): "use crate::{b::B, a::Thing};"},
        "an inline path": {("c",): "fn f() { crate::a::helper() }"},
        "a super path": {("c", "d"): "use super::super::a::Thing;", ("a",): "use crate::c::d::D;"},
    }
    for what, change in cases.items():
        broken = {**acyclic, **change}
        assert problems_of({"broken": broken}), f"self-test: the check misses a circle through {what}"


def main():
    self_test()
    crates = workspace_crates()
    problems = problems_of(crates)
    for p in problems:
        print(f"module rule: {p}")
    if problems:
        return 1
    modules = sum(len(files) for files in crates.values())
    print(f"module rule holds: no circles among {modules} modules of {len(crates)} crates")
    return 0


if __name__ == "__main__":
    sys.exit(main())
