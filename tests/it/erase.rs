//! Erasure (`lakehouse erase`): a subject's events gone from raw, staging and quarantine
//! and from every stored file, other rows untouched, once per request, never back.

use std::fs::File;
use std::path::{Path, PathBuf};

use deltalake::arrow::array::{Array, AsArray, RecordBatch};
use deltalake::arrow::datatypes::DataType;
use deltalake::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use lakehouse_lake::Table;
use lakehouse_lake::subject::{SubjectPaths, set_subject_paths};
use serde_json::Value;

use crate::helpers::{TestLake, event, lakehouse, lakehouse_ok, lakehouse_read_by_head};

const GONE: &str = "u-1";
/// A second subject of the same request, odd Unicode in its id.
const GONE_TOO: &str = "用户-é\u{301}";
const KEPT: &str = "u-2";

/// Every stored Parquet file under `dir`.
fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(parquet_files(&path));
        } else if path.extension().is_some_and(|e| e == "parquet") {
            out.push(path);
        }
    }
    out
}

/// Every row of every stored file of `table`, read with the Parquet reader alone (not the
/// lake's code).
fn stored_batches(lake: &TestLake, table: Table) -> Vec<RecordBatch> {
    let mut batches = Vec::new();
    for path in parquet_files(&lake.dir.path().join(table.name())) {
        let file = File::open(&path).expect("open");
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .expect("parquet")
            .build()
            .expect("reader");
        batches.extend(reader.map(|b| b.expect("batch")));
    }
    batches
}

/// Cells of any text or binary column of any stored file of `table` holding `needle`.
fn stored_cells_holding(lake: &TestLake, table: Table, needle: &str) -> usize {
    let holds = |bytes: &[u8]| bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
    let mut found = 0;
    for batch in stored_batches(lake, table) {
        for column in batch.columns() {
            found += match column.data_type() {
                DataType::Utf8 => column
                    .as_string::<i32>()
                    .iter()
                    .flatten()
                    .filter(|s| holds(s.as_bytes()))
                    .count(),
                DataType::Binary => column
                    .as_binary::<i32>()
                    .iter()
                    .flatten()
                    .filter(|b| holds(b))
                    .count(),
                _ => 0,
            };
        }
    }
    found
}

/// `lakehouse erase` of [`GONE`] as request `request`.
fn erase_gone<'a>(lake: &'a TestLake, request: &'a str) -> [&'a str; 7] {
    [
        "erase",
        "--lake",
        lake.path(),
        "--subject",
        GONE,
        "--request-id",
        request,
    ]
}

/// No stored file of raw, staging or quarantine holds `subject` anywhere.
fn assert_gone(lake: &TestLake, subject: &str) {
    for table in [Table::Raw, Table::Staging, Table::Quarantine] {
        assert_eq!(stored_cells_holding(lake, table, subject), 0, "{table:?}");
    }
}

fn quarantined_records(lake: &TestLake) -> Vec<Vec<u8>> {
    let mut records: Vec<Vec<u8>> = stored_batches(lake, Table::Quarantine)
        .iter()
        .flat_map(|b| {
            let raw = b.column_by_name("raw").expect("raw").as_binary::<i32>();
            raw.iter().flatten().map(<[u8]>::to_vec).collect::<Vec<_>>()
        })
        .collect();
    records.sort();
    records
}

fn versions(lake: &TestLake, table: Table) -> u64 {
    std::fs::read_dir(lake.dir.path().join(table.name()).join("_delta_log"))
        .expect("log")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
        .count() as u64
}

/// A lake where the subjects are in raw (three ingests), staging (an update among them),
/// quarantine (a record that parses and one that does not), in files shared with others,
/// one type naming its subject at a nested path.
async fn lake_with_subjects() -> TestLake {
    let lake = TestLake::new();
    let paths = SubjectPaths::parse(r#"{"*":"$.user_id","payment":"$.customer.id"}"#).unwrap();
    set_subject_paths(&lake.lake, &paths).await.unwrap();
    let day = 1_700_000_000;
    let user = |id: &str| format!(r#","user_id":"{id}""#);
    lake.ingest(&[
        event("e1", "login", day, &user(GONE)),
        event("e2", "login", day, &user(KEPT)),
        event("e3", "page:view", day + 86_400, &user(GONE)),
        event("e4", "page:view", day + 86_400, &user(KEPT)),
        event(
            "e5",
            "payment:done",
            day,
            &format!(r#","customer":{{"id":"{GONE}"}}"#),
        ),
        event(
            "e6",
            "payment:done",
            day,
            &format!(r#","customer":{{"id":"{KEPT}"}}"#),
        ),
        event("e7", "login", day, &user(GONE_TOO)),
    ])
    .await;
    lake.compact().await;
    lake.ingest(&[
        // A newer copy of e1 (staging's row is replaced) and more of both subjects.
        event("e1", "login", day + 10, &user(GONE)),
        event("e8", "login", day + 20, &user(KEPT)),
        format!(r#"{{"event_uuid":"q1","event_name":"login","user_id":"{GONE}"}}"#),
        format!("not json at all, {GONE} in it"),
        format!(r#"{{"event_uuid":"q2","event_name":"login","user_id":"{KEPT}"}}"#),
    ])
    .await;
    lake.compact().await;
    lake.ingest(&[event("e9", "page:view", day + 86_400, &user(GONE))])
        .await;
    lake
}

fn erase(lake: &TestLake, request: &str, extra: &[&str]) -> Value {
    let mut args = vec![
        "erase",
        "--lake",
        lake.path(),
        "--subject",
        GONE,
        "--subject",
        GONE_TOO,
        "--request-id",
        request,
        "--format",
        "json",
    ];
    args.extend(extra);
    serde_json::from_str(lakehouse_ok(&args, b"").trim()).expect("receipt")
}

#[tokio::test]
async fn an_erased_subject_is_gone_from_every_table_and_stored_file_and_stays_gone() {
    let lake = lake_with_subjects().await;
    let staging_before = versions(&lake, Table::Staging) - 1;
    let kept_quarantine: Vec<Vec<u8>> = quarantined_records(&lake)
        .into_iter()
        .filter(|r| !String::from_utf8_lossy(r).contains(GONE))
        .collect();
    assert_eq!(kept_quarantine.len(), 1);
    for table in [Table::Raw, Table::Staging, Table::Quarantine] {
        assert!(stored_cells_holding(&lake, table, GONE) > 0, "{table:?}");
    }
    assert_eq!(lake.count("raw").await, 10);

    // A dry run finds them and changes nothing.
    let dry = erase(&lake, "r-1", &["--dry-run"]);
    assert_eq!(dry["dry_run"], true);
    let before: Vec<u64> = [Table::Raw, Table::Staging, Table::Quarantine]
        .iter()
        .map(|t| versions(&lake, *t))
        .collect();

    let receipt = erase(&lake, "r-1", &[]);
    assert_eq!(receipt["residue_rows"], 0, "{receipt}");
    assert_eq!(receipt["rows_removed"], dry["rows_removed"]);
    // Raw: e1 twice, e3, e5, e7, e9; staging: e1, e3, e5, e7 (e9 not compacted yet);
    // quarantine: the record that parses and the one that does not.
    assert_eq!(receipt["rows_removed"], 6 + 4 + 2, "{receipt}");
    assert_eq!(receipt["subject_hashes"].as_array().unwrap().len(), 2);
    assert!(
        !receipt.to_string().contains(GONE),
        "the receipt names no subject"
    );
    for (i, table) in [Table::Raw, Table::Staging, Table::Quarantine]
        .iter()
        .enumerate()
    {
        assert_eq!(
            versions(&lake, *table),
            before[i] + 1,
            "{table:?}: one commit"
        );
        assert_eq!(stored_cells_holding(&lake, *table, GONE), 0, "{table:?}");
        assert_eq!(
            stored_cells_holding(&lake, *table, GONE_TOO),
            0,
            "{table:?}"
        );
    }
    // Everything else is untouched: other subjects' rows, quarantine byte for byte.
    assert_eq!(lake.count("raw").await, 4);
    assert_eq!(quarantined_records(&lake), kept_quarantine);
    let kept = lake
        .query(&format!(
            "SELECT count(*) AS n FROM staging WHERE subject_id = '{KEPT}'"
        ))
        .await;
    assert_eq!(kept[0]["n"], 4);

    // Time travel to before the erasure says why it cannot read those versions.
    let out = lakehouse(
        &[
            "query",
            "--lake",
            lake.path(),
            "--version",
            &format!("staging={staging_before}"),
            "SELECT count(*) FROM staging",
        ],
        b"",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("can no longer be read whole") && stderr.contains("r-1"),
        "{stderr}"
    );
    // So is a version whose file a merge had replaced before (the erasure deleted it too).
    let out = lakehouse(
        &[
            "query",
            "--lake",
            lake.path(),
            "--version",
            "staging=1",
            "SELECT count(*) FROM staging",
        ],
        b"",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("can no longer be read whole"), "{stderr}");

    // The same request again: its receipt, nothing committed.
    let again = erase(&lake, "r-1", &[]);
    assert_eq!(again["recorded_before"], true);
    for (i, table) in [Table::Raw, Table::Staging, Table::Quarantine]
        .iter()
        .enumerate()
    {
        assert_eq!(versions(&lake, *table), before[i] + 1, "{table:?}");
    }
    let receipts = lake
        .query("SELECT request_id, residue_rows FROM erasures")
        .await;
    assert_eq!(receipts.len(), 1);
    assert_eq!(receipts[0]["request_id"], "r-1");

    // Compaction afterwards (raw's e9 was not compacted yet) brings nothing back and
    // loses no one else's row.
    lake.compact().await;
    let back = lake
        .query(&format!(
            "SELECT count(*) AS n FROM staging WHERE payload LIKE '%{GONE}%'"
        ))
        .await;
    assert_eq!(back[0]["n"], 0);
    assert_eq!(lake.count("staging").await, 4);
    assert_eq!(stored_cells_holding(&lake, Table::Staging, GONE), 0);
    // The key index dropped the erased events' entries: it equals staging.
    lakehouse_ok(&["keys", "check", "--lake", lake.path()], b"");

    // The subject sending an event again is new data: staged once, the index exact.
    lake.ingest(&[event(
        "e3",
        "page:view",
        1_700_086_400,
        &format!(r#","user_id":"{GONE}""#),
    )])
    .await;
    lake.compact().await;
    let again = lake
        .query("SELECT count(*) AS n FROM staging WHERE event_uuid = 'e3'")
        .await;
    assert_eq!(again[0]["n"], 1);
    lakehouse_ok(&["keys", "check", "--lake", lake.path()], b"");
}

#[tokio::test]
async fn subjects_from_a_file_and_a_request_without_an_id_are_recognised_on_rerun() {
    let lake = lake_with_subjects().await;
    let file = lake.dir.path().join("subjects.txt");
    std::fs::write(&file, format!("{GONE}\n\n{GONE_TOO}\n{GONE}\n")).unwrap();
    let file = file.to_str().unwrap();
    let args = [
        "erase",
        "--lake",
        lake.path(),
        "--subjects-file",
        file,
        "--format",
        "json",
    ];
    let first: Value = serde_json::from_str(lakehouse_ok(&args, b"").trim()).unwrap();
    assert_eq!(first["residue_rows"], 0);
    assert_eq!(first["subject_hashes"].as_array().unwrap().len(), 2);
    let second: Value = serde_json::from_str(lakehouse_ok(&args, b"").trim()).unwrap();
    assert_eq!(second["request_id"], first["request_id"]);
    assert_eq!(second["recorded_before"], true);
    // No subject named: a clear error.
    let out = lakehouse(&["erase", "--lake", lake.path()], b"");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("error: name at least one subject"));
}

/// Erase's output read by `| head` (its reader gone before it prints): the erasure is done
/// and committed, the command quiet (exit 141); subjects piped through `/dev/stdin` as the
/// subjects file are read; a subject id past the limit is an `error:` that changes nothing.
#[tokio::test]
async fn an_erasure_read_by_head_piped_subjects_and_an_oversized_id_behave() {
    let lake = lake_with_subjects().await;
    let out = lakehouse_read_by_head(&erase_gone(&lake, "closed-stdout"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(141), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
    assert_gone(&lake, GONE);
    let rerun = lakehouse_ok(
        &[
            &erase_gone(&lake, "closed-stdout")[..],
            &["--format", "json"],
        ]
        .concat(),
        b"",
    );
    let rerun: Value = serde_json::from_str(rerun.trim()).expect("receipt");
    assert_eq!(rerun["recorded_before"], true);

    // The subjects file is a pipe.
    let piped = [
        "erase",
        "--lake",
        lake.path(),
        "--subjects-file",
        "/dev/stdin",
        "--request-id",
        "piped",
        "--format",
        "json",
    ];
    let receipt = lakehouse_ok(&piped, format!("{GONE_TOO}\n").as_bytes());
    let receipt: Value = serde_json::from_str(receipt.trim()).expect("receipt");
    assert_eq!(receipt["subject_hashes"].as_array().map(Vec::len), Some(1));
    assert_gone(&lake, GONE_TOO);

    // One byte past the limit: refused before anything is read or written.
    let before: Vec<u64> = [Table::Raw, Table::Staging, Table::Quarantine]
        .map(|t| versions(&lake, t))
        .to_vec();
    let long = "x".repeat(lakehouse_erase::subjects::MAX_SUBJECT_BYTES + 1);
    let args = ["erase", "--lake", lake.path(), "--subject", &long];
    let out = lakehouse(&args, b"");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.starts_with("error: ") && stderr.contains("a subject id must have 1 to 1024 bytes"),
        "{stderr}"
    );
    let after: Vec<u64> = [Table::Raw, Table::Staging, Table::Quarantine]
        .map(|t| versions(&lake, t))
        .to_vec();
    assert_eq!(before, after);
}

#[tokio::test]
async fn an_erasure_killed_at_any_point_converges_on_rerun() {
    let lake = lake_with_subjects().await;
    let args = erase_gone(&lake, "r-kill");
    crate::helpers::kill_after(&args, &[5, 15, 30, 60, 100, 150, 250]);
    let receipt: Value = {
        let mut json = args.to_vec();
        json.extend(["--format", "json"]);
        serde_json::from_str(lakehouse_ok(&json, b"").trim()).expect("receipt")
    };
    assert_eq!(receipt["residue_rows"], 0, "{receipt}");
    // Counted whole, whichever run committed each table: raw e1 twice, e3, e5, e9;
    // staging e1, e3, e5; quarantine two records.
    assert_eq!(receipt["rows_removed"], 5 + 3 + 2, "{receipt}");
    assert_gone(&lake, GONE);
    // Everyone else's rows are all there, once.
    let kept = lake
        .query(&format!(
            "SELECT count(*) AS n, count(DISTINCT event_uuid) AS d FROM staging WHERE subject_id = '{KEPT}'"
        ))
        .await;
    assert_eq!(
        (kept[0]["n"].as_i64(), kept[0]["d"].as_i64()),
        (Some(4), Some(4))
    );
    assert_eq!(
        lake.count("raw").await,
        5,
        "raw: KEPT's four and GONE_TOO's one"
    );
    let receipts = lake.query("SELECT count(*) AS n FROM erasures").await;
    assert_eq!(receipts[0]["n"], 1);
    lake.compact().await;
    lakehouse_ok(&["keys", "check", "--lake", lake.path()], b"");
}

#[tokio::test]
async fn an_erasure_beside_a_compaction_leaves_neither_the_subject_nor_a_lost_row() {
    let lake = lake_with_subjects().await;
    let path = lake.path().to_string();
    // Compaction (e9 and the rest to stage) and the erasure at once, as two processes.
    let compacting =
        std::thread::spawn(move || crate::helpers::lakehouse(&["compact", "--lake", &path], b""));
    let erase = erase_gone(&lake, "r-race");
    let erased = lakehouse(&erase, b"");
    let compacted = compacting.join().expect("compaction thread");
    // Either may lose the race (and say so); a rerun of each converges.
    for out in [&erased, &compacted] {
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(stderr.starts_with("error:"), "{stderr}");
        }
    }
    lakehouse_ok(&erase, b"");
    lake.compact().await;
    assert_gone(&lake, GONE);
    let kept = lake
        .query(&format!(
            "SELECT count(*) AS n FROM staging WHERE subject_id = '{KEPT}'"
        ))
        .await;
    assert_eq!(kept[0]["n"], 4);
    lakehouse_ok(&["keys", "check", "--lake", lake.path()], b"");
}

#[test]
fn the_erase_benchmark_runs_small_and_leaves_no_residue() {
    let stdout = crate::helpers::run_bench_script(
        "erase.sh",
        &[
            ("BENCH_EVENTS", "5000"),
            ("BENCH_BATCH", "10"),
            ("BENCH_INPUTS", "2"),
        ],
    );
    let last: Value = serde_json::from_str(stdout.lines().last().expect("a line")).expect("json");
    assert_eq!(last["residue_rows"], 0, "{stdout}");
    assert_eq!(last["receipts"], 2);
    assert_eq!(last["subjects"], 10);
    assert_eq!(last["one_subject"]["subjects"], 1);
    assert!(
        last["one_subject"]["files_read"].as_u64() < last["files"].as_u64(),
        "{stdout}"
    );
    assert!(last["rows_removed"].as_u64() > Some(0));
}

/// A raw table as lakes had it before `subject_id`: the same columns less that one, and one
/// file written by delta-rs itself.
async fn raw_without_subject_id(lake: &TestLake, lines: &[String]) {
    use deltalake::arrow::datatypes::Schema;
    use lakehouse_lake::schema::SUBJECT_ID;
    use std::sync::Arc;

    // The rows as today's ingest makes them, less the new column.
    let scratch = TestLake::new();
    scratch.ingest(lines).await;
    let raw = scratch
        .lake
        .open_existing(Table::Raw)
        .await
        .unwrap()
        .unwrap();
    let mut batches = Vec::new();
    for add in lakehouse_lake::files::live_files(&raw).unwrap() {
        let read = lakehouse_lake::files::read_file(raw.object_store(), Table::Raw, &add, None);
        batches.extend(read.await.unwrap());
    }
    assert_eq!(
        batches.iter().map(|b| b.num_rows()).sum::<usize>(),
        lines.len()
    );
    let full = Table::Raw.arrow_schema();
    let keep: Vec<usize> = (0..full.fields().len())
        .filter(|&i| full.field(i).name() != SUBJECT_ID)
        .collect();
    let old = Arc::new(Schema::new(
        keep.iter()
            .map(|&i| full.field(i).clone())
            .collect::<Vec<_>>(),
    ));
    let batches: Vec<RecordBatch> = batches
        .iter()
        .map(|b| {
            let columns = keep
                .iter()
                .map(|&i| b.column_by_name(full.field(i).name()).unwrap().clone())
                .collect();
            RecordBatch::try_new(old.clone(), columns).unwrap()
        })
        .collect();
    let url = lake.lake.table_url(Table::Raw);
    std::fs::create_dir_all(url.to_file_path().unwrap()).unwrap();
    let table = deltalake::DeltaTableBuilder::from_url(url)
        .unwrap()
        .build()
        .unwrap();
    let columns: Vec<_> = Table::Raw
        .delta_columns()
        .into_iter()
        .filter(|f| f.name() != SUBJECT_ID)
        .collect();
    let table = table
        .create()
        .with_columns(columns)
        .with_partition_columns(Table::Raw.partition_columns().iter().copied())
        .await
        .unwrap();
    table.write(batches).await.unwrap();
}

#[tokio::test]
async fn rows_written_before_subject_id_existed_are_found_by_their_payloads() {
    let lake = TestLake::new();
    let day = 1_700_000_000;
    let user = |id: &str| format!(r#","user_id":"{id}""#);
    raw_without_subject_id(
        &lake,
        &[
            event("o1", "login", day, &user(GONE)),
            event("o2", "login", day, &user(KEPT)),
        ],
    )
    .await;
    // Today's writers add the column (older files read it as null) and go on.
    lake.ingest(&[event("n1", "login", day, &user(GONE))]).await;
    lake.compact().await;
    let receipt = erase(&lake, "r-old", &[]);
    assert_eq!(receipt["residue_rows"], 0, "{receipt}");
    let raw = &receipt["tables"][0];
    assert_eq!(raw["table"], "raw");
    assert!(raw["files_by_payload"].as_u64() >= Some(1), "{receipt}");
    // Raw: o1 and n1; staging: the same two.
    assert_eq!(receipt["rows_removed"], 4, "{receipt}");
    assert_eq!(stored_cells_holding(&lake, Table::Raw, GONE), 0);
    assert_eq!(stored_cells_holding(&lake, Table::Staging, GONE), 0);
    let left = lake.query("SELECT event_uuid FROM staging").await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["event_uuid"], "o2");
}
