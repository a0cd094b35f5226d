"""The Python reference the benchmark compares against: the same work done the obvious
way with json + pyarrow + deltalake + duckdb. Not part of the product."""
import json
import os
import sys
import time

import duckdb
import pyarrow as pa
from deltalake import DeltaTable, write_deltalake

MAX = 253402300799


def ingest(lake, path):
    now = int(time.time() * 1_000_000)
    rows, bad = [], []
    with open(path, "rb") as f:
        for seq, line in enumerate(f):
            line = line.rstrip(b"\n").rstrip(b"\r")
            try:
                e = json.loads(line)
                uuid, name, ts = e["event_uuid"], e["event_name"], e["created_at"]
                if not (isinstance(uuid, str) and uuid and isinstance(name, str)
                        and name.split(":")[0] and isinstance(ts, (int, float))
                        and not isinstance(ts, bool) and 0 <= ts <= MAX):
                    raise ValueError("invalid event")
            except Exception as err:  # noqa: BLE001 - every failure is a quarantine reason
                bad.append({"raw": line, "error": str(err), "ingest_seq": seq})
                continue
            parts = name.split(":")
            rows.append({
                "event_uuid": uuid, "event_name": name, "event_type": parts[0],
                "event_subtype": parts[1] if len(parts) > 1 and parts[1] else None,
                "created_at": int(ts // 1), "created_datetime": int(ts * 1_000_000),
                "event_date": int(ts // 86400), "ingested_at": now, "ingest_seq": seq,
                "payload": line.decode(),
            })
    table = pa.Table.from_pylist(rows, schema=pa.schema([
        ("event_uuid", pa.string()), ("event_name", pa.string()), ("event_type", pa.string()),
        ("event_subtype", pa.string()), ("created_at", pa.int64()),
        ("created_datetime", pa.timestamp("us", tz="UTC")), ("event_date", pa.date32()),
        ("ingested_at", pa.timestamp("us", tz="UTC")), ("ingest_seq", pa.int64()),
        ("payload", pa.string()),
    ]))
    write_deltalake(f"{lake}/raw", table, mode="append", partition_by=["event_date", "event_type"])
    if bad:
        write_deltalake(f"{lake}/quarantine", pa.Table.from_pylist(bad), mode="append")
    print(f"ingested {len(rows)} quarantined {len(bad)}")


def compact(lake):
    raw = DeltaTable(f"{lake}/raw").to_pyarrow_dataset()
    con = duckdb.connect()
    con.register("raw", raw)
    latest = con.sql("""
        SELECT * EXCLUDE (rn) FROM (
          SELECT *, row_number() OVER (PARTITION BY event_uuid
                                       ORDER BY created_at DESC, ingested_at DESC, ingest_seq DESC) AS rn
          FROM raw) WHERE rn = 1""").to_arrow_table()
    write_deltalake(f"{lake}/staging", latest, mode="overwrite",
                    partition_by=["event_date", "event_type"])
    print(f"staging {latest.num_rows}")


if __name__ == "__main__":
    {"ingest": lambda: ingest(sys.argv[2], sys.argv[3]), "compact": lambda: compact(sys.argv[2])}[sys.argv[1]]()
    sys.stdout.flush()
    # pyarrow's and delta-rs's thread pools can abort the interpreter's teardown.
    os._exit(0)
