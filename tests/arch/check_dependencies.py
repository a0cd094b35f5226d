#!/usr/bin/env python3
"""The crate dependency rule (docs/architecture.md), checked against `cargo metadata`.

- `lakehouse-lake`, the table contract, links no other lakehouse crate and nothing of
  Lambda, Kinesis, DynamoDB or Glue.
- Every stage crate depends on `lakehouse-lake`; no stage depends on another stage.
- No stage, and not the CLI, links the Lambda runtime or a Lambda package.
- No Lambda package depends on another: what they share is in `lambdas/shared` or in a
  library beside `aws/`; `lambdas/` holds the Lambda packages and `lambdas/shared` only.
- A library beside `aws/` (`aws/`, `manifests/`) depends on no stage.
- The Lambdas that only write (ingest, commit) link no DataFusion, as they build alone
  (`cargo tree -p`: features resolved per package, as `make lambdas` builds them).

Before checking the workspace, the checker is run on made-up graphs that break each rule,
so a check that could no longer fail fails here. Exit status 1 with one line per problem.
"""

import pathlib
import re
import subprocess
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tools"))
from cargo_graph import Graph, metadata  # noqa: E402

LAKE = "lakehouse-lake"
STAGES = [
    "lakehouse-ingest",
    "lakehouse-compact",
    "lakehouse-query",
    "lakehouse-catalog",
    "lakehouse-erase",
]
CLI = "lakehouse"
# Stage-on-stage edges the data path needs: none (tables are read through lake::read).
ALLOWED_STAGE_DEPS = set()
# What the table contract must never link: it is read by every stage, Lambda or not.
# (Not md-5, which the KPL decoder uses: deltalake's S3 store links it already.)
NOT_IN_LAKE = {
    "lambda_runtime",
    "aws_lambda_events",
    "aws-sdk-dynamodb",
    "aws-sdk-glue",
    "aws-sdk-kinesis",
}
LAMBDA_SHARED = "lakehouse-lambda-shared"
# Write-only Lambdas: their binaries stay small and start cold fast without the SQL engine.
WRITE_ONLY_LAMBDAS = ["lakehouse-ingest-lambda", "lakehouse-commit-lambda"]
SQL_ENGINE = "datafusion"
LAMBDA_ONLY = {"lambda_runtime", LAMBDA_SHARED}


def problems_of(graph):
    problems = []
    for crate in [LAKE, CLI, *STAGES]:
        if crate not in graph.members:
            problems.append(f"{crate}: not a workspace member")
    if problems:
        return problems

    lake_links = graph.closure(LAKE)
    for dep in sorted(lake_links & NOT_IN_LAKE):
        problems.append(f"{LAKE} links {dep}: the table contract knows nothing of Lambda or Kinesis")
    for dep in sorted(d for d in lake_links if d.startswith("lakehouse")):
        problems.append(f"{LAKE} links {dep}: the table contract depends on no other lakehouse crate")

    lambda_packages = {n for n in graph.members if n.endswith("-lambda")}
    for stage in STAGES:
        if LAKE not in graph.direct(stage):
            problems.append(f"{stage} does not depend on {LAKE}: every stage stands on the table contract")
        for other in sorted(graph.direct(stage) & set(STAGES)):
            if (stage, other) not in ALLOWED_STAGE_DEPS:
                problems.append(f"{stage} depends on {other}: a stage depends on no other stage")
    for crate in [CLI, *STAGES]:
        for dep in sorted(graph.closure(crate) & (LAMBDA_ONLY | lambda_packages)):
            problems.append(f"{crate} links {dep}: only the Lambda packages link Lambda code")
    for package in sorted(lambda_packages):
        for dep in sorted(graph.direct(package) & lambda_packages):
            problems.append(f"{package} depends on {dep}: no Lambda package depends on another")
    # Libraries beside aws/ (aws/, manifests/) stand on the bottom floor with the lake: one
    # on a stage would make a floor between the Lambdas and the stages.
    floors = {LAKE, CLI, LAMBDA_SHARED, *STAGES} | lambda_packages
    for crate in sorted(n for n in graph.members if n not in floors):
        for dep in sorted(graph.direct(crate) & set(STAGES)):
            problems.append(
                f"{crate} depends on {dep}: a library beside aws/ stands on {LAKE}, not on a stage"
            )
    # A library under lambdas/ reads as a Lambda package that others depend on.
    for crate, package in sorted(graph.members.items()):
        folder = pathlib.Path(package.get("manifest_path", "Cargo.toml")).parent
        if folder.parent.name == "lambdas" and crate not in lambda_packages | {LAMBDA_SHARED}:
            problems.append(
                f"{crate} lives in lambdas/{folder.name}/ but is no Lambda package: lambdas/ holds "
                "the Lambdas and lambdas/shared; a library two Lambdas share goes beside aws/"
            )
    return problems


def sql_engine_problems(package, tree):
    """`tree` is `cargo tree -p <package> -e normal --prefix none` output: one crate a line."""
    linked = sorted({line.split()[0] for line in tree.splitlines() if line.split()[:1]})
    return [
        f"{package} links {crate}: a write-only Lambda links no SQL engine "
        "(enable lakehouse-lake's `datafusion` feature only where SQL is read)"
        for crate in linked
        if crate == SQL_ENGINE or crate.startswith(SQL_ENGINE + "-")
    ]


def cargo_tree(package):
    out = subprocess.run(
        ["cargo", "tree", "-p", package, "-e", "normal", "--prefix", "none"],
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout


ARCHITECTURE = pathlib.Path(__file__).resolve().parents[2] / "docs" / "architecture.md"
NODE = re.compile(r'^\s*(\w+)\["([^"]*)"\]', re.M)
EDGE = re.compile(r"^\s*([\w &]+?)\s*-->\s*([\w &]+?)\s*$", re.M)


def drawn_edges(text):
    """The edges of the first mermaid drawing in `text`, as (crate, crate): a node's crate
    is the `lakehouse…` name in its label (the CLI's label starts with `lakehouse `)."""
    start = text.index("```mermaid")
    drawing = text[start : text.index("```", start + 3)]
    crates = {}
    for node, label in NODE.findall(drawing):
        names = re.findall(r"lakehouse(?:-[a-z]+)*", label)
        crates[node] = names[-1] if names else label
    edges = set()
    for sources, targets in EDGE.findall(drawing):
        for s in sources.split("&"):
            for d in targets.split("&"):
                edges.add((crates[s.strip()], crates[d.strip()]))
    return edges


def drawing_problems(graph, text):
    """Where docs/architecture.md's drawing and the crate graph differ."""
    ours = set(graph.members)
    actual = {(c, d) for c in ours for d in graph.direct(c) if d in ours}
    drawn = drawn_edges(text)
    problems = [
        f"{c} depends on {d}, but the drawing in docs/architecture.md has no such arrow"
        for c, d in sorted(actual - drawn)
    ]
    problems += [f"docs/architecture.md draws {c} --> {d}, but {c} does not depend on {d}" for c, d in sorted(drawn - actual)]
    return problems


class FakeGraph(Graph):
    """A graph from {crate: [direct dependencies]}, for the self-test."""

    def __init__(self, deps):
        self.deps = {k: sorted(v) for k, v in deps.items()}
        self.members = {k: {} for k in deps if k.startswith("lakehouse")}


def self_test():
    good = {
        LAKE: ["deltalake"],
        "deltalake": [],
        CLI: [LAKE, *STAGES],
        "lakehouse-ingest": [LAKE, "aws_lambda_events"],
        "aws_lambda_events": [],
        "lakehouse-compact": [LAKE],
        "lakehouse-query": [LAKE],
        "lakehouse-catalog": [LAKE],
        "lakehouse-erase": [LAKE],
        "lakehouse-ingest-lambda": ["lakehouse-ingest", "lambda_runtime"],
        "lakehouse-commit-lambda": ["lakehouse-ingest", "lambda_runtime"],
        "lambda_runtime": [],
    }
    assert problems_of(FakeGraph(good)) == [], problems_of(FakeGraph(good))
    breaks = {
        "stage on ingest": ("lakehouse-compact", "lakehouse-ingest"),
        "catalog on query": ("lakehouse-catalog", "lakehouse-query"),
        "lake on a Lambda crate, through deltalake": ("deltalake", "aws_lambda_events"),
        "lake on a stage": (LAKE, "lakehouse-query"),
        "CLI on the Lambda runtime": (CLI, "lambda_runtime"),
        "stage on a Lambda package": ("lakehouse-query", "lakehouse-ingest-lambda"),
        "Lambda package on another": ("lakehouse-ingest-lambda", "lakehouse-commit-lambda"),
    }
    for what, (crate, dep) in breaks.items():
        broken = {k: list(v) for k, v in good.items()}
        broken[crate].append(dep)
        assert problems_of(FakeGraph(broken)), f"self-test: the check misses {what}"
    misplaced = FakeGraph({**good, "lakehouse-dynamo-manifests": [LAKE]})
    misplaced.members["lakehouse-dynamo-manifests"] = {"manifest_path": "/w/lambdas/manifests/Cargo.toml"}
    assert problems_of(misplaced), "self-test: the check misses a library under lambdas/"
    beside = FakeGraph({**good, "lakehouse-dynamo-manifests": [LAKE]})
    beside.members["lakehouse-dynamo-manifests"] = {"manifest_path": "/w/manifests/Cargo.toml"}
    assert problems_of(beside) == [], problems_of(beside)
    on_a_stage = FakeGraph({**good, "lakehouse-dynamo-manifests": [LAKE, "lakehouse-ingest"]})
    on_a_stage.members["lakehouse-dynamo-manifests"] = {"manifest_path": "/w/manifests/Cargo.toml"}
    assert problems_of(on_a_stage), "self-test: the check misses a library beside aws/ on a stage"
    broken = {k: list(v) for k, v in good.items()}
    broken["lakehouse-compact"] = []
    assert problems_of(FakeGraph(broken)), "self-test: the check misses a stage without lake"
    tree = "lakehouse-ingest-lambda v0.1.0\ndeltalake v1.1.2\n"
    assert sql_engine_problems("x", tree) == [], sql_engine_problems("x", tree)
    assert sql_engine_problems("x", tree + "datafusion-expr v50.0.0\n"), (
        "self-test: the check misses DataFusion in a write-only Lambda"
    )
    drawing = '```mermaid\nflowchart TB\n    A["a/<br/>lakehouse-lake"]\n    B["b/<br/>lakehouse-query"]\n    B --> A\n```'
    two = FakeGraph({LAKE: [], "lakehouse-query": [LAKE]})
    assert drawing_problems(two, drawing) == [], drawing_problems(two, drawing)
    assert drawing_problems(FakeGraph({LAKE: [], "lakehouse-query": []}), drawing), (
        "self-test: the check misses an arrow drawn that is no dependency"
    )
    assert drawing_problems(two, drawing.replace("    B --> A\n", "")), (
        "self-test: the check misses a dependency not drawn"
    )


def main():
    self_test()
    graph = Graph(metadata())
    problems = problems_of(graph) + drawing_problems(graph, ARCHITECTURE.read_text())
    for package in WRITE_ONLY_LAMBDAS:
        problems += sql_engine_problems(package, cargo_tree(package))
    for p in problems:
        print(f"dependency rule: {p}")
    if problems:
        return 1
    stages = ", ".join(f"{s} -> {sorted(d for d in graph.direct(s) if d.startswith('lakehouse'))}" for s in STAGES)
    print(f"dependency rule holds: {stages}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
