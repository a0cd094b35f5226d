//! The typed tables (one per event type, `docs/catalog.md`): equal to staging row for
//! row, typed as the views infer, new fields as new columns after one compaction, and
//! every value that does not fit rescued and counted, never a silent NULL.

use std::collections::BTreeMap;

use lakehouse_catalog::infer::FieldType;
use lakehouse_catalog::{ScanOptions, plan_views_over, scan_staging, typed_schemas};
use lakehouse_compact::CompactOptions;
use lakehouse_lake::Table;
use lakehouse_lake::commit::CommitMetadata;
use lakehouse_lake::files::live_files;
use lakehouse_lake::typed::mirror::{rescued_of, source_of};
use lakehouse_lake::typed::{MirrorOptions, mirror};
use serde_json::{Value, json};

use crate::helpers::{TestLake, event};

/// Rows of `sql` as (first column as text → second column).
async fn pairs(lake: &TestLake, sql: &str) -> BTreeMap<String, Value> {
    lake.query(sql)
        .await
        .into_iter()
        .map(|row| {
            let mut values = row.as_object().expect("row").values();
            let key = values
                .next()
                .expect("key")
                .as_str()
                .expect("text")
                .to_string();
            (key, values.next().cloned().unwrap_or(Value::Null))
        })
        .collect()
}

/// Staging's rows of `event_type` per uuid, and the typed table's, must be the same set.
async fn assert_mirrors(lake: &TestLake, event_type: &str, table: &str) {
    let staged = pairs(
        lake,
        &format!(
            "SELECT event_uuid AS k, created_at AS v FROM staging WHERE event_type = '{event_type}'"
        ),
    )
    .await;
    let typed = pairs(
        lake,
        &format!("SELECT event_uuid AS k, created_at AS v FROM {table}"),
    )
    .await;
    let rows = lake
        .query(&format!("SELECT count(*) AS n FROM {table}"))
        .await;
    assert_eq!(rows[0]["n"], staged.len(), "{table}: one row per event");
    assert_eq!(typed, staged, "{table} mirrors staging's {event_type}");
}

#[tokio::test]
async fn typed_tables_hold_staging_rows_one_per_event_with_typed_columns() {
    let lake = TestLake::new();
    lake.ingest(&[
        event(
            "a",
            "pay:order:done",
            100,
            r#","amount":1,"note":"x","ok":true,"tags":[1,{"b":2}]"#,
        ),
        event(
            "b",
            "pay:order:done",
            100,
            r#","amount":2.5,"note":"y","ok":false,"tags":[]"#,
        ),
        // A newer copy of a: its values win, as in staging.
        event(
            "a",
            "pay:order:done",
            200,
            r#","amount":7,"note":"z","ok":null"#,
        ),
        // An older copy of b: discarded.
        event("b", "pay:order:done", 50, r#","amount":99"#),
        event("c", "login", 100, r#","user":"u1","attempts":3"#),
    ])
    .await;
    let report = lake.compact().await;
    let typed = report.typed.expect("typed tables maintained");
    assert_eq!((typed.commits, typed.rows), (2, 3));
    assert_eq!(typed.rescued_total(), 0);

    assert_mirrors(&lake, "pay", "typed_pay").await;
    assert_mirrors(&lake, "login", "typed_login").await;
    let rows = lake
        .query("SELECT event_uuid, amount, note, ok, tags, _rescued_data FROM typed_pay ORDER BY event_uuid")
        .await;
    assert_eq!(
        rows,
        [
            json!({"event_uuid":"a","amount":7.0,"note":"z","ok":null,"tags":null,"_rescued_data":null}),
            json!({"event_uuid":"b","amount":2.5,"note":"y","ok":false,"tags":"[]","_rescued_data":null}),
        ]
    );
    let login = lake.query("SELECT user, attempts FROM typed_login").await;
    assert_eq!(login, [json!({"user":"u1","attempts":3})]);

    // A rerun has nothing to do: no commit, no new version.
    let again = lake.compact().await.typed.expect("typed");
    assert_eq!((again.commits, again.rows), (0, 0));
}

#[tokio::test]
async fn a_new_field_is_a_typed_column_after_one_compaction_and_misfits_are_rescued() {
    let lake = TestLake::new();
    lake.ingest(&[event("a", "shop:cart", 100, r#","qty":1"#)])
        .await;
    lake.compact().await;
    let columns = lake.query("SELECT * FROM typed_shop").await;
    assert!(columns[0].get("coupon").is_none());

    lake.ingest(&[
        event("b", "shop:cart", 100, r#","qty":2,"coupon":"SPRING""#),
        // qty of another shape: rescued with its JSON, counted, the rest of the row typed.
        event("c", "shop:cart", 100, r#","qty":"three","coupon":"W""#),
        event("d", "shop:cart", 100, r#","qty":1.5"#),
    ])
    .await;
    let report = lake.compact().await.typed.expect("typed");
    assert_eq!(report.columns_added["shop"], ["coupon string"]);
    assert_eq!(
        report.rescued["shop"],
        BTreeMap::from([("qty".to_string(), 2)])
    );

    let rows = lake
        .query("SELECT event_uuid, qty, coupon, _rescued_data FROM typed_shop ORDER BY event_uuid")
        .await;
    assert_eq!(
        rows,
        [
            json!({"event_uuid":"a","qty":1,"coupon":null,"_rescued_data":null}),
            json!({"event_uuid":"b","qty":2,"coupon":"SPRING","_rescued_data":null}),
            json!({"event_uuid":"c","qty":null,"coupon":"W","_rescued_data":r#"{"qty":"three"}"#}),
            json!({"event_uuid":"d","qty":null,"coupon":null,"_rescued_data":r#"{"qty":1.5}"#}),
        ]
    );

    // The counts live in the log: the commit's metadata and each file's tag.
    let typed = lake
        .lake
        .open_typed("shop")
        .await
        .expect("open")
        .expect("table");
    let files = live_files(&typed.delta).expect("files");
    let tagged: u64 = files
        .iter()
        .map(|f| rescued_of(f).values().sum::<u64>())
        .sum();
    assert_eq!(tagged, 2);
    assert!(files.iter().all(|f| source_of(f).is_some()));
    let version = typed.delta.version().expect("version") as u64;
    let actions = lakehouse_lake::log::commit_actions(typed.delta.log_store().as_ref(), version)
        .await
        .expect("log")
        .expect("the last commit");
    let metadata = CommitMetadata::from_actions(&actions).expect("ours");
    let commit = metadata.typed.expect("typed commit");
    assert_eq!(commit.rescued.get("qty"), Some(&2));
    assert_eq!(commit.columns_added, ["coupon string"]);

    // And `status` counts them, from the log.
    let out =
        crate::helpers::lakehouse_ok(&["status", "--lake", lake.path(), "--format", "json"], b"");
    let status: Value = serde_json::from_str(&out).expect("status json");
    assert_eq!(status["typed"]["rescued"], json!({"shop": {"qty": 2}}));
    assert_eq!(status["typed"]["rows"], status["typed"]["staging_rows"]);
    assert_eq!(status["typed"]["rows"], 4);

    // Removed, the table is rebuilt typed by all its rows: qty saw numbers and a string,
    // so it is a string column now, and nothing is rescued.
    std::fs::remove_dir_all(std::path::Path::new(lake.path()).join("typed/shop"))
        .expect("remove the typed table");
    let report = lake.compact().await.typed.expect("typed");
    assert_eq!(
        report.columns_added["shop"],
        ["qty string", "coupon string"]
    );
    assert!(report.rescued.is_empty(), "{:?}", report.rescued);
    let qty = pairs(&lake, "SELECT event_uuid AS k, qty AS v FROM typed_shop").await;
    assert_eq!(
        qty.values().collect::<Vec<_>>(),
        [&json!("1"), &json!("2"), &json!("three"), &json!("1.5")]
    );
    assert_mirrors(&lake, "shop", "typed_shop").await;
}

#[tokio::test]
async fn an_updated_or_removed_event_updates_its_typed_row() {
    let lake = TestLake::new();
    lake.ingest(&[
        event("a", "acct", 100, r#","plan":"free""#),
        event("b", "acct", 100, r#","plan":"free""#),
    ])
    .await;
    lake.compact().await;
    lake.ingest(&[event("a", "acct", 300, r#","plan":"pro""#)])
        .await;
    lake.compact().await;
    assert_mirrors(&lake, "acct", "typed_acct").await;
    let plans = pairs(&lake, "SELECT event_uuid AS k, plan AS v FROM typed_acct").await;
    assert_eq!(plans["a"], "pro");
    assert_eq!(plans["b"], "free");
}

#[tokio::test]
async fn two_mirrors_at_once_land_each_row_once() {
    let lake = TestLake::new();
    let lines: Vec<String> = (0..300)
        .map(|i| {
            event(
                &format!("u{i}"),
                &format!("t{}:x", i % 3),
                100 + i,
                r#","n":1"#,
            )
        })
        .collect();
    lake.ingest(&lines).await;
    lake.compact_with(CompactOptions {
        skip_typed: true,
        ..CompactOptions::default()
    })
    .await;
    assert!(lake.lake.typed_tables().await.expect("list").is_empty());

    let staging = lake.lake.open(Table::Staging).await.expect("staging");
    let (one, two) = tokio::join!(
        mirror(&lake.lake, &staging, MirrorOptions::default()),
        mirror(&lake.lake, &staging, MirrorOptions::default()),
    );
    let (one, two) = (one.expect("first"), two.expect("second"));
    assert_eq!(
        one.rows + two.rows,
        300,
        "each row landed by exactly one of them"
    );
    for t in ["t0", "t1", "t2"] {
        assert_mirrors(&lake, t, &format!("typed_{t}")).await;
    }
    // And a third, later, finds nothing to do.
    let three = mirror(&lake.lake, &staging, MirrorOptions::default())
        .await
        .expect("third");
    assert_eq!(three.commits, 0);
}

#[tokio::test]
async fn hostile_fields_and_types_become_safe_names_and_values() {
    let lake = TestLake::new();
    let weird_type = "we/ird=type é";
    lake.ingest(&[
        event(
            "a",
            &format!("{weird_type}:x"),
            100,
            r#","Amount":1,"amount":2,"event_date":"d","payload":{"x":1},"big":18446744073709551616,"huge":1e400,"ünï":"v""#,
        ),
        event("b", &format!("{weird_type}:x"), 100, r#","big":1"#),
    ])
    .await;
    let report = lake.compact().await.typed.expect("typed");
    let tables = lake.lake.typed_tables().await.expect("list");
    assert_eq!(tables.len(), 1);
    assert_eq!(tables[0].event_type, weird_type);
    let schema = tables[0].schema().expect("schema");
    let columns: BTreeMap<&str, (&str, &str)> = schema
        .columns
        .iter()
        .map(|c| (c.key.as_str(), (c.column.as_str(), c.field_type.name())))
        .collect();
    assert_eq!(columns["Amount"].0, "amount");
    assert_eq!(columns["amount"].0, "amount_2");
    assert_eq!(columns["event_date"].0, "payload_event_date");
    assert_eq!(columns["payload"], ("payload_payload", "json"));
    assert_eq!(columns["big"], ("big", "double"));
    // 1e400 is a number no double holds: rescued rather than read as infinity.
    assert_eq!(report.rescued[weird_type]["huge"], 1);
    assert_eq!(columns["ünï"].0, "_n_");
    let name = tables[0].sql_name();
    assert!(name.starts_with("typed_we_ird_type___"), "{name}");
    let rows = lake
        .query(&format!(
            "SELECT event_uuid, big, _rescued_data FROM {name} ORDER BY event_uuid"
        ))
        .await;
    assert_eq!(rows[0]["big"], 18446744073709551616.0);
    assert_eq!(rows[0]["_rescued_data"], r#"{"huge":1e400}"#);
    assert_eq!(rows[1]["big"], 1.0);
}

#[tokio::test]
async fn an_erasure_reaches_the_typed_tables_and_their_history() {
    let lake = TestLake::new();
    let lines: Vec<String> = (0..40)
        .map(|i| {
            let subject = format!(r#","user_id":"s{}","n":{i}"#, i % 4);
            event(
                &format!("u{i}"),
                &format!("t{}:x", i % 2),
                100 + i,
                &subject,
            )
        })
        .collect();
    lake.ingest(&lines).await;
    lake.compact().await;
    // A second round rewrites typed files, leaving removed ones for time travel.
    lake.ingest(&[event("u0", "t0:x", 900, r#","user_id":"s0","n":100"#)])
        .await;
    lake.compact().await;
    let before = lake
        .query("SELECT count(*) AS n FROM typed_t0 WHERE subject_id = 's0'")
        .await;
    assert!(before[0]["n"].as_i64().unwrap_or(0) > 0);

    let out = crate::helpers::lakehouse_ok(
        &[
            "erase",
            "--lake",
            lake.path(),
            "--subject",
            "s0",
            "--format",
            "json",
        ],
        b"",
    );
    let receipt: Value = serde_json::from_str(out.lines().last().unwrap_or("")).expect("receipt");
    assert_eq!(receipt["residue_rows"], 0, "{receipt}");
    assert!(
        receipt["typed"]["commits"].as_u64().unwrap_or(0) > 0,
        "{receipt}"
    );
    assert!(
        receipt["typed"]["files_purged"].as_u64().unwrap_or(0) > 0,
        "{receipt}"
    );
    for table in ["typed_t0", "typed_t1"] {
        let left = lake
            .query(&format!(
                "SELECT count(*) AS n FROM {table} WHERE subject_id = 's0'"
            ))
            .await;
        assert_eq!(left[0]["n"], 0, "{table}");
    }
    assert_mirrors(&lake, "t0", "typed_t0").await;
    assert_mirrors(&lake, "t1", "typed_t1").await;
}

/// The value a view reads for `key` of `field_type` from a payload (JSON functions, then
/// TRY_CAST), for values of the kinds a generated payload holds.
fn view_value(payload: &Value, key: &str, field_type: FieldType) -> Value {
    match (payload.get(key), field_type) {
        (None | Some(Value::Null), _) => Value::Null,
        (Some(v @ Value::Bool(_)), FieldType::Boolean) => v.clone(),
        (Some(Value::Number(n)), FieldType::Integer) if n.is_i64() => json!(n.as_i64()),
        (Some(Value::Number(n)), FieldType::Double) => json!(n.as_f64()),
        (Some(Value::String(s)), FieldType::String) => json!(s),
        (Some(v @ (Value::Number(_) | Value::Bool(_))), FieldType::String) => json!(v.to_string()),
        (Some(v @ (Value::Array(_) | Value::Object(_))), FieldType::Json) => json!(v.to_string()),
        _ => Value::Null,
    }
}

#[tokio::test]
async fn the_views_and_the_typed_tables_agree_on_every_field_and_value() {
    let lake = TestLake::new();
    let generated =
        crate::helpers::lakehouse(&["generate", "--events", "3000", "--seed", "5"], b"");
    let ingest = crate::helpers::lakehouse(&["ingest", "--lake", lake.path()], &generated.stdout);
    assert!(ingest.status.success());
    lake.compact().await;
    // A field whose first values are whole numbers and a later one fractional: a sample
    // says double, the typed table said bigint first (and rescues the fraction).
    lake.ingest(&[event("w1", "widen", 100, r#","x":1"#)]).await;
    lake.compact().await;
    lake.ingest(&[event("w2", "widen", 100, r#","x":1.5"#)])
        .await;
    lake.compact().await;

    let options = ScanOptions {
        days: None,
        ..ScanOptions::default()
    };
    let inference = scan_staging(&lake.lake, &options).await.expect("scan");
    let typed = typed_schemas(&lake.lake).await.expect("typed schemas");
    let views = plan_views_over(&inference.into_shapes(), &typed);
    assert_eq!(views.len(), typed.len());
    let names: BTreeMap<String, String> =
        lakehouse_lake::typed::table::named(lake.lake.typed_tables().await.expect("typed"))
            .into_iter()
            .map(|(name, t)| (t.event_type, name))
            .collect();
    let mut compared = 0;
    for view in &views {
        let schema = &typed[&view.event_type];
        for field in &view.fields {
            let column = schema
                .columns
                .iter()
                .find(|c| c.key == field.key)
                .unwrap_or_else(|| panic!("{}: {} is no typed column", view.name, field.key));
            assert_eq!(
                (&column.column, column.field_type),
                (&field.column, field.field_type),
                "{}",
                view.name
            );
        }
        // The values: what the view reads from each staged payload, the typed table holds.
        let table = &names[&view.event_type];
        let staged = lake
            .query(&format!(
                "SELECT event_uuid, payload FROM staging WHERE event_type = '{}' ORDER BY event_uuid",
                view.event_type.replace('\'', "''")
            ))
            .await;
        let rows = lake
            .query(&format!("SELECT * FROM {table} ORDER BY event_uuid"))
            .await;
        assert_eq!(rows.len(), staged.len(), "{table}");
        for (row, staged) in rows.iter().zip(&staged) {
            let payload: Value =
                serde_json::from_str(staged["payload"].as_str().expect("payload")).expect("json");
            for field in &view.fields {
                let want = view_value(&payload, &field.key, field.field_type);
                let got = row.get(&field.column).cloned().unwrap_or(Value::Null);
                let same = match (&want, &got) {
                    (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
                    // JSON text: the same value (keys in the producer's order).
                    (Value::String(a), Value::String(b)) if field.field_type == FieldType::Json => {
                        serde_json::from_str::<Value>(a).ok()
                            == serde_json::from_str::<Value>(b).ok()
                    }
                    _ => want == got,
                };
                assert!(same, "{table}.{}: view {want} typed {got}", field.column);
                compared += 1;
            }
        }
    }
    assert!(compared > 10_000, "{compared}");
    let widen = &typed["widen"].columns[0];
    assert_eq!(
        (widen.column.as_str(), widen.field_type),
        ("x", FieldType::Integer)
    );
}

/// `make bench_typed` small: its JSON line, with the answers the big run gives.
#[ignore = "needs Python deltalake and pyarrow: pip install -r tests/requirements.txt (make test installs them and runs it)"]
#[test]
fn the_typed_benchmark_runs_small_with_the_same_answer() {
    let stdout = crate::helpers::run_bench_script("typed.sh", &[("BENCH_EVENTS", "20000")]);
    let last: Value = serde_json::from_str(stdout.lines().last().expect("a line")).expect("json");
    assert_eq!(last["events"], 20000, "{stdout}");
    assert_eq!(last["types"], 100, "{stdout}");
    assert_eq!(last["same_answer"], true, "{stdout}");
    assert_eq!(last["new_field_after_one_compaction"], true, "{stdout}");
    assert_eq!(last["rescued"], 0, "{stdout}");
    let (view, typed) = (last["bytes_view"].as_u64(), last["bytes_typed"].as_u64());
    assert!(typed > Some(0) && typed < view, "{stdout}");
    assert!(
        last["compaction_ratio_first"].as_f64() > Some(0.0),
        "{stdout}"
    );
}
