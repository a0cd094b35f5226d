//! The key index (`staging_keys`): it equals staging's keys after every compaction, and an
//! index that lags, is deleted, belongs to a recreated staging or is corrupt is found out
//! and repaired, never trusted wrongly (issue 23).

use std::collections::HashSet;
use std::sync::Arc;

use deltalake::ObjectStore;
use deltalake::arrow::array::AsArray;
use deltalake::arrow::datatypes::Int64Type;
use deltalake::kernel::{Action, Add};
use deltalake::logstore::object_store::local::LocalFileSystem;
use deltalake::protocol::{DeltaOperation, SaveMode};
use lakehouse_compact::CompactOptions;
use lakehouse_compact::keys::{KeysCheck, Runs, check_keys, lookup, update_keys};
use lakehouse_lake::files::{live_files, read_file};
use lakehouse_lake::keys::{Key, KeyEntry, bucket_name, keys_batch};
use lakehouse_lake::schema::{KEY_BUCKET, KEY_HI};
use lakehouse_lake::write::{FileWriter, PartitionKey};
use lakehouse_lake::{Commit, Lake, RunRange, Table};
use url::Url;

use crate::helpers::{TestLake, event, lakehouse, lakehouse_ok};
use crate::latency::{LatencyModel, LatencyStore};

const T0: i64 = 1_700_000_000;
const YEAR: i64 = 365 * 86_400;

async fn exact(lake: &TestLake) -> KeysCheck {
    let check = check_keys(&lake.lake).await.expect("check");
    assert!(check.is_exact(), "{check:?}");
    check
}

#[tokio::test(flavor = "multi_thread")]
async fn the_index_equals_staging_after_every_kind_of_compaction() {
    let lake = TestLake::new();
    let round = |n: i64| {
        (0..200)
            .map(|i| {
                event(
                    &format!("u{i}"),
                    &format!("t{}:x", i % 5),
                    T0 + n * YEAR,
                    "",
                )
            })
            .collect::<Vec<_>>()
    };
    lake.ingest(&round(0)).await;
    let report = lake.compact().await;
    let keys = report.keys.expect("keys updated");
    assert!(keys.rebuilt && keys.entries_added == 200, "{keys:?}");
    assert_eq!(exact(&lake).await.index_keys, 200);

    // Copies a year later (newer: they replace), redeliveries (nothing changes) and new
    // events, through ranges and then the whole table.
    lake.ingest(&round(1)).await;
    lake.ingest(&[
        event("new", "t9:x", T0, ""),
        event("u1", "t1:x", T0 + YEAR, ""),
    ])
    .await;
    for range in RunRange::types(0, 2).expect("range").siblings() {
        lake.compact_with(CompactOptions {
            range: Some(range),
            ..CompactOptions::default()
        })
        .await;
    }
    lake.ingest(&round(2)).await;
    let report = lake.compact().await;
    assert!(!report.keys.expect("keys").rebuilt);
    // Copies a year apart resolve through the index: one row per key.
    let check = exact(&lake).await;
    assert_eq!((check.index_keys, check.staging_rows), (201, 201));

    // Optimize repacks what the index holds: nothing is indexed again.
    let before = check.index_entries;
    let update = update_keys(&lake.lake, CompactOptions::default().max_rows_per_commit)
        .await
        .expect("update");
    assert_eq!(update.entries_added, 0, "{update:?}");
    assert_eq!(exact(&lake).await.index_entries, before);
    lakehouse_ok(&["keys", "check", "--lake", lake.path()], b"");

    // A newer copy of one row rewrites its file: the 39 rows kept are carried, and only
    // the new row is indexed.
    lake.ingest(&[event("u0", "t0:x", T0 + 3 * YEAR, "")]).await;
    let report = lake
        .compact_with(CompactOptions {
            skip_maintenance: true,
            ..CompactOptions::default()
        })
        .await;
    assert_eq!(report.total().files_rewritten, 1);
    assert_eq!(report.keys.expect("keys").entries_added, 1);
    let check = exact(&lake).await;
    assert_eq!((check.index_keys, check.index_entries), (201, before + 1));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lagging_deleted_recreated_or_corrupt_index_is_found_and_repaired() {
    let lake = TestLake::new();
    let lines: Vec<String> = (0..50)
        .map(|i| event(&format!("k{i}"), "a:b", T0 + i, ""))
        .collect();
    lake.ingest(&lines[..25]).await;
    lake.compact().await;
    lake.ingest(&lines[25..]).await;
    // No maintenance: the index's last commit is this run's update.
    lake.compact_with(CompactOptions {
        skip_maintenance: true,
        ..CompactOptions::default()
    })
    .await;
    let keys_dir = lake.dir.path().join("staging_keys");

    // Lagging: the index's last commit lost (as if the run died before it).
    let log = keys_dir.join("_delta_log");
    let mut commits: Vec<_> = std::fs::read_dir(&log)
        .expect("log")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    commits.sort();
    std::fs::remove_file(commits.last().expect("a commit")).expect("remove");
    let status = lakehouse_ok(&["status", "--lake", lake.path()], b"");
    assert!(status.contains("staging commit behind"), "{status}");
    let lagging = exact(&lake).await; // compared at the version it holds
    assert_eq!(lagging.index_keys, 25);
    let update = update_keys(&lake.lake, CompactOptions::default().max_rows_per_commit)
        .await
        .expect("update");
    assert!(!update.rebuilt && update.entries_added == 25, "{update:?}");
    assert_eq!(exact(&lake).await.index_keys, 50);

    // Deleted: rebuilt by the next compaction.
    std::fs::remove_dir_all(&keys_dir).expect("remove index");
    let status = lakehouse_ok(&["status", "--lake", lake.path()], b"");
    assert!(status.contains("key index   none"), "{status}");
    let out = lakehouse(&["keys", "check", "--lake", lake.path()], b"");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("error: no key index"));
    let report = lake.compact().await;
    assert!(report.keys.expect("keys").rebuilt);
    assert_eq!(exact(&lake).await.index_keys, 50);

    // Staging recreated (rebuilt from raw): the old staging's index is replaced whole.
    std::fs::remove_dir_all(lake.dir.path().join("staging")).expect("remove staging");
    let report = lake.compact().await;
    let keys = report.keys.expect("keys");
    assert!(keys.rebuilt && keys.files_removed > 0, "{keys:?}");
    let check = exact(&lake).await;
    assert_eq!((check.index_keys, check.index_entries), (50, 50));

    // Corrupt: its data files overwritten. The check fails with a clear error; a rebuild
    // from a removed index repairs it.
    for file in walk(&keys_dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
    {
        std::fs::write(&file, b"not parquet").expect("corrupt");
    }
    let out = lakehouse(&["keys", "check", "--lake", lake.path()], b"");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.starts_with("error: "),
        "{stderr}"
    );
    std::fs::remove_dir_all(&keys_dir).expect("remove index");
    let out = lakehouse_ok(&["keys", "update", "--lake", lake.path()], b"");
    assert!(out.starts_with("keys rebuilt:"), "{out}");
    lakehouse_ok(&["keys", "check", "--lake", lake.path()], b"");
}

/// An index entry for a key staging does not hold (what a stale process of a recreated
/// staging can append; docs/guarantees.md) costs a read of the partition it names, never a
/// replacement: the merge compares the uuids themselves. `keys check` reports it, and a
/// rebuild clears it.
#[tokio::test(flavor = "multi_thread")]
async fn an_extra_index_entry_costs_a_read_never_a_wrong_replacement() {
    let lake = TestLake::new();
    let lines: Vec<String> = (0..40)
        .map(|i| event(&format!("s{i}"), "a:b", T0 + i, ""))
        .collect();
    lake.ingest(&lines).await;
    lake.compact().await;
    let before = lake.staging_state().await;

    // An entry for "ghost" naming s0's partition, appended as a blind run.
    let keys = lake.lake.open(Table::Keys).await.expect("open index");
    let s0: HashSet<Key> = [Key::of("s0")].into();
    let (view, _) = lookup(&keys, &s0, None, Runs::All).await.expect("lookup");
    let (created, types) = view.get(&Key::of("s0")).cloned().expect("s0 indexed");
    let ghost = Key::of("ghost");
    let entry = KeyEntry {
        key: ghost,
        created_micros: created,
        event_type: Arc::from(types[0].as_str()),
    };
    let writer = FileWriter::for_table(Table::Keys, &keys).expect("writer");
    let partition = PartitionKey {
        date: 0,
        name: bucket_name(ghost.bucket()).into(),
    };
    let batch = keys_batch(ghost.bucket(), &[entry]).expect("batch");
    let actions = writer
        .write(&partition, batch)
        .await
        .expect("write")
        .into_iter()
        .map(Action::Add)
        .collect();
    let operation = DeltaOperation::Write {
        mode: SaveMode::Append,
        partition_by: Some(vec![KEY_BUCKET.to_string()]),
        predicate: None,
    };
    Commit::new(operation, actions)
        .execute(&keys)
        .await
        .expect("append the extra entry");
    let check = check_keys(&lake.lake).await.expect("check");
    assert_eq!(
        (check.extra, check.missing, check.wrong),
        (1, 0, 0),
        "{check:?}"
    );

    // "ghost" arrives, newer than the instant its extra entry names: it is new, and the
    // staged rows of the partition it named stay as they were.
    lake.ingest(&[event("ghost", "a:b", T0 + 100, "")]).await;
    let total = lake.compact().await.total();
    assert_eq!(
        (total.inserted, total.updated, total.discarded),
        (1, 0, 0),
        "{total:?}"
    );
    assert!(
        total.files_scanned >= 1,
        "the named partition was read: {total:?}"
    );
    assert_eq!(total.files_rewritten, 0, "{total:?}");
    let after = lake.staging_state().await;
    assert_eq!(after.len(), before.len() + 1);
    assert!(
        before
            .iter()
            .all(|(uuid, row)| after.get(uuid) == Some(row))
    );
    assert!(after.contains_key("ghost"));

    // A rebuild clears what the extra entry left.
    std::fs::remove_dir_all(lake.dir.path().join("staging_keys")).expect("remove index");
    update_keys(&lake.lake, CompactOptions::default().max_rows_per_commit)
        .await
        .expect("rebuild");
    assert_eq!(exact(&lake).await.index_keys, 41);
}

#[test]
fn concurrent_updates_index_each_key_once() {
    let lake = TestLake::new();
    let lines: String = (0..300)
        .map(|i| event(&format!("c{i}"), &format!("t{}:x", i % 7), T0, "") + "\n")
        .collect();
    lakehouse_ok(&["ingest", "--lake", lake.path()], lines.as_bytes());
    lakehouse_ok(&["compact", "--lake", lake.path(), "--no-maintenance"], b"");
    std::fs::remove_dir_all(lake.dir.path().join("staging_keys")).expect("remove index");
    let path = lake.path().to_string();
    let runs: Vec<_> = (0..3)
        .map(|_| {
            let path = path.clone();
            // One staging file per commit: the builders race on every chunk.
            std::thread::spawn(move || {
                let args = [
                    "keys",
                    "update",
                    "--lake",
                    &path,
                    "--max-rows-per-commit",
                    "40",
                ];
                lakehouse_ok(&args, b"")
            })
        })
        .collect();
    for run in runs {
        run.join().expect("update");
    }
    let out = lakehouse_ok(
        &["keys", "check", "--lake", lake.path(), "--format", "json"],
        b"",
    );
    let check: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(check["index_keys"], 300, "{check}");
    assert_eq!(check["index_entries"], 300, "{check}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// A lookup reads the index by its bloom filters and page index: new keys read (almost) no
/// page, a staged key reads its own page, never the whole index (issue 23).
#[tokio::test(flavor = "multi_thread")]
async fn a_lookup_reads_only_pages_that_may_hold_a_key() {
    let lake = TestLake::new();
    // ~2,300 keys a bucket: three pages of 1,024 rows per bucket file.
    let lines: Vec<String> = (0..150_000)
        .map(|i| event(&format!("p{i}"), "a:b", T0 + i % 86_400, ""))
        .collect();
    lake.ingest(&lines).await;
    lake.compact_with(CompactOptions {
        skip_maintenance: true,
        ..CompactOptions::default()
    })
    .await;
    let mut fresh: Vec<String> = (0..20)
        .map(|i| event(&format!("fresh{i}"), "a:b", T0, ""))
        .collect();
    fresh.push(event("p7", "a:b", T0 + 7 + 1, r#","v":2"#));
    lake.ingest(&fresh).await;
    let report = lake
        .compact_with(CompactOptions {
            skip_maintenance: true,
            ..CompactOptions::default()
        })
        .await;
    let total = report.total();
    assert_eq!((total.inserted, total.updated), (20, 1), "{total:?}");
    // The ~19 buckets the 21 keys fall in hold ~57 pages: p7's is read, and a false
    // positive's now and then (1 %).
    assert!(total.index_pages >= 40, "{total:?}");
    assert!((1..=4).contains(&total.index_pages_read), "{total:?}");
    exact(&lake).await;

    // The pages a lookup selects in a file come in one request, not one GET per page and
    // column (delta-rs's own reader fetches them one by one): 3,000 staged keys select
    // most pages of every bucket file.
    let store = Arc::new(LatencyStore::new(
        LocalFileSystem::new(),
        LatencyModel::default(),
        1,
    ));
    let root = Url::from_directory_path(lake.dir.path()).expect("root url");
    let counted = Lake::in_store(root, store.clone() as Arc<dyn ObjectStore>);
    let keys = counted.open(Table::Keys).await.expect("open index");
    let files = index_files(&lake).await.len() as u64;
    let wanted: HashSet<Key> = (0..3_000).map(|i| Key::of(&format!("p{i}"))).collect();
    let (before, _) = store.gets();
    let (found, read) = lookup(&keys, &wanted, None, Runs::All)
        .await
        .expect("lookup");
    let (after, _) = store.gets();
    assert_eq!(found.len(), wanted.len());
    // Pages fetched one GET each (4 columns a page) would pass the bound below.
    assert!(read.pages_read >= 2 * files, "{read:?} in {files} files");
    // Per file: the footer and page index (1–2), the bloom filter (2), the pages (1).
    assert!(
        after - before <= 5 * files,
        "{} GETs for {files} files",
        after - before
    );
}

/// Maintenance merges a bucket's runs (one per index update) into one sorted run with one
/// entry per key and type; the index stays exact and lookups go on finding staged keys.
#[tokio::test(flavor = "multi_thread")]
async fn maintenance_merges_each_buckets_runs_into_one_sorted_run() {
    let lake = TestLake::new();
    let no_maintenance = CompactOptions {
        skip_maintenance: true,
        ..CompactOptions::default()
    };
    // Four rounds, four runs in most buckets; u0..u99 come back newer every round.
    for round in 0..4 {
        let lines: Vec<String> = (0..400)
            .map(|i| event(&format!("r{round}-{i}"), "a:b", T0, ""))
            .chain((0..100).map(|i| event(&format!("u{i}"), "a:b", T0 + round, "")))
            .collect();
        lake.ingest(&lines).await;
        lake.compact_with(no_maintenance.clone()).await;
    }
    let before = exact(&lake).await;
    assert_eq!((before.index_keys, before.index_entries), (1_700, 2_000));
    let buckets = |files: &[Add]| {
        let names: HashSet<_> = files
            .iter()
            .map(|a| a.partition_values.get(KEY_BUCKET).cloned())
            .collect();
        names.len()
    };
    let files = index_files(&lake).await;
    assert!(files.len() > 3 * buckets(&files), "{} files", files.len());

    let report = lake.compact().await;
    let merged = report
        .maintenance
        .iter()
        .find(|(table, _)| table == "staging_keys")
        .map(|(_, m)| m.clone())
        .expect("index maintained");
    assert_eq!(merged.files_compacted as usize, files.len(), "{merged:?}");
    let files = index_files(&lake).await;
    assert_eq!(files.len(), buckets(&files));
    let after = exact(&lake).await;
    assert_eq!((after.index_keys, after.index_entries), (1_700, 1_700));
    for add in &files {
        let store = lake
            .lake
            .open(Table::Keys)
            .await
            .expect("keys")
            .object_store();
        let batches = read_file(store, Table::Keys, add, Some(&[KEY_HI]))
            .await
            .expect("read");
        let his: Vec<i64> = batches
            .iter()
            .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
            .collect();
        assert!(his.is_sorted(), "{} is not one sorted run", add.path);
    }

    // Nothing left to merge; a staged key is still found and replaced.
    let report = lake.compact().await;
    assert!(
        report
            .maintenance
            .iter()
            .all(|(_, m)| m.files_compacted == 0),
        "{report:?}"
    );
    lake.ingest(&[event("u7", "a:b", T0 + 10, "")]).await;
    let total = lake.compact().await.total();
    assert_eq!((total.updated, total.inserted), (1, 0), "{total:?}");
    assert_eq!(exact(&lake).await.index_keys, 1_700);
}

async fn index_files(lake: &TestLake) -> Vec<Add> {
    let keys = lake.lake.open(Table::Keys).await.expect("keys");
    live_files(&keys).expect("files")
}
