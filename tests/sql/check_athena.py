#!/usr/bin/env python3
"""Every SQL file Athena runs parses as Athena SQL (Hive DDL, Trino queries), by sqlglot.

`sql/athena/` (DDL), `sql/queries/` (run unchanged on Athena, except those with an
Athena version in `sql/queries/athena/`, which are checked instead), and the views
`lakehouse catalog views` generates (`--views DIR`, optional). A file that does not parse
is one line of output and exit status 1. Before the files, the checker is run on SQL that
must fail, so a check that could no longer fail fails here.
"""

import pathlib
import sys

import sqlglot
from sqlglot.errors import ParseError

ROOT = pathlib.Path(__file__).resolve().parents[2]


def problems_of(path, text):
    try:
        statements = [s for s in sqlglot.parse(text, read="athena") if s is not None]
    except ParseError as e:
        first = str(e).splitlines()[0]
        return [f"{path}: does not parse as Athena SQL: {first}"]
    if not statements:
        return [f"{path}: holds no statement"]
    return []


def files(views):
    queries = ROOT / "sql" / "queries"
    athena = {p.name for p in (queries / "athena").glob("*.sql")}
    chosen = sorted((ROOT / "sql" / "athena").glob("*.sql"))
    chosen += sorted(p for p in queries.glob("*.sql") if p.name not in athena)
    chosen += sorted((queries / "athena").glob("*.sql"))
    if views:
        chosen += sorted(pathlib.Path(views).glob("*.sql"))
    return chosen


def main():
    assert problems_of("self-test", "SELECT FROM WHERE ((("), "self-test: a broken query parses"
    assert not problems_of("self-test", "SELECT amount FROM typed_payment_item WHERE event_date > DATE '2025-01-01'")
    views = sys.argv[sys.argv.index("--views") + 1] if "--views" in sys.argv else None
    checked = files(views)
    problems = [p for path in checked for p in problems_of(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path, path.read_text())]
    for p in problems:
        print(p)
    if problems:
        return 1
    print(f"athena sql: {len(checked)} files parse")
    return 0


if __name__ == "__main__":
    sys.exit(main())
