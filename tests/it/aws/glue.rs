//! `lakehouse catalog` against moto's Glue, run as a user runs it: the binary, with the
//! environment pointing at moto.

use std::process::{Command, Output};

use aws_sdk_glue::types::Table as GlueTable;
use base64::Engine;
use deltalake::kernel::{DataType, StructField};
use lakehouse_lake::{Lake, Table};

use super::moto::{Moto, REGION};
use super::stack::{BUCKET, GLUE_DATABASE, LAKE};

/// Runs the CLI against moto; `input` is passed as an input file.
fn lakehouse(moto: &Moto, args: &[&str], input: Option<&[u8]>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_lakehouse"));
    command
        .args(args)
        .envs(moto.env())
        .env_remove("LAKEHOUSE_LAKE");
    match input {
        Some(input) => {
            let file = tempfile::NamedTempFile::new().expect("temp file");
            std::fs::write(file.path(), input).expect("write input");
            command.arg(file.path()).output().expect("run lakehouse")
        }
        None => command.output().expect("run lakehouse"),
    }
}

fn ok(moto: &Moto, args: &[&str]) -> String {
    let out = lakehouse(moto, args, None);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn fails(moto: &Moto, args: &[&str]) -> String {
    let out = lakehouse(moto, args, None);
    assert!(!out.status.success(), "{args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A lake on moto's S3 with every table: generated events ingested and compacted.
fn fill_lake(moto: &Moto, events: &str) {
    // Bytes, not text: some generated records are invalid UTF-8 on purpose.
    let lines = lakehouse(
        moto,
        &["generate", "--events", events, "--seed", "11"],
        None,
    )
    .stdout;
    let out = lakehouse(moto, &["ingest", "--lake", LAKE], Some(&lines));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    ok(moto, &["compact", "--lake", LAKE]);
}

async fn glue_table(glue: &aws_sdk_glue::Client, name: &str) -> GlueTable {
    glue.get_table()
        .database_name(GLUE_DATABASE)
        .name(name)
        .send()
        .await
        .unwrap_or_else(|e| panic!("get {name}: {e:?}"))
        .table
        .expect("table")
}

async fn versions(glue: &aws_sdk_glue::Client, name: &str) -> usize {
    glue.get_table_versions()
        .database_name(GLUE_DATABASE)
        .table_name(name)
        .send()
        .await
        .expect("table versions")
        .table_versions()
        .len()
}

fn columns(columns: &[aws_sdk_glue::types::Column]) -> Vec<(String, String)> {
    columns
        .iter()
        .map(|c| {
            (
                c.name().to_string(),
                c.r#type().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Glue's columns for a table of ours: every non-partition Delta column, in order, typed.
fn expected_columns(table: Table) -> Vec<(String, String)> {
    table
        .arrow_schema()
        .fields()
        .iter()
        .filter(|f| !table.partition_columns().contains(&f.name().as_str()))
        .map(|f| {
            let glue = match f.data_type() {
                deltalake::arrow::datatypes::DataType::Utf8 => "string",
                deltalake::arrow::datatypes::DataType::Int64 => "bigint",
                deltalake::arrow::datatypes::DataType::Timestamp(..) => "timestamp",
                deltalake::arrow::datatypes::DataType::Date32 => "date",
                deltalake::arrow::datatypes::DataType::Binary => "binary",
                other => panic!("unexpected type {other}"),
            };
            (f.name().clone(), glue.to_string())
        })
        .collect()
}

#[ignore = "needs moto: pip install 'moto[server]' (make test installs it and runs it)"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_sync_registers_what_athena_reads_once_and_follows_new_columns() {
    let moto = Moto::start().await;
    moto.create_bucket(BUCKET).await;
    let glue = aws_sdk_glue::Client::new(&moto.sdk);
    let sync = [
        "catalog",
        "sync",
        "--lake",
        LAKE,
        "--database",
        GLUE_DATABASE,
    ];

    // Bad input, each with a clear error and nothing written.
    let err = fails(
        &moto,
        &["catalog", "sync", "--lake", LAKE, "--database", "Events-1"],
    );
    assert!(
        err.contains("invalid Glue database name \"Events-1\""),
        "{err}"
    );
    let err = fails(&moto, &sync);
    assert!(
        err.contains("no table of the lake exists at s3://lake/events/"),
        "{err}"
    );
    let err = fails(
        &moto,
        &[
            "catalog",
            "sync",
            "--lake",
            "s3://no-such-bucket/x",
            "--database",
            "db",
        ],
    );
    assert!(err.contains("no-such-bucket"), "{err}");
    assert!(
        glue.get_databases()
            .send()
            .await
            .expect("databases")
            .database_list()
            .is_empty(),
        "a failed sync creates nothing"
    );

    fill_lake(&moto, "800");
    let first = ok(&moto, &sync);
    assert!(first.contains("database events: created"), "{first}");
    // The database and every table, the key index too (an Athena sweep reads it), and
    // one typed table per event type.
    let lake = Lake::parse(LAKE).expect("lake").with_storage_options([
        ("aws_endpoint_url", moto.endpoint.as_str()),
        ("aws_access_key_id", "test"),
        ("aws_secret_access_key", "test"),
        ("aws_region", REGION),
    ]);
    let typed = lake.typed_tables().await.expect("typed tables");
    assert!(typed.len() > 50, "{}", typed.len());
    assert_eq!(
        first.matches(": created").count(),
        1 + Table::ALL.len() + typed.len(),
        "{first}"
    );
    // A typed table's entry: Delta at its folder, its payload fields as typed columns
    // after the envelope, the date as partition key.
    let payment = typed
        .iter()
        .find(|t| t.event_type == "payment_item")
        .expect("payment_item");
    let entry = glue_table(&glue, "typed_payment_item").await;
    let params = entry.parameters().expect("parameters");
    assert_eq!(params.get("table_type").map(String::as_str), Some("DELTA"));
    let storage = entry.storage_descriptor().expect("storage");
    assert_eq!(
        storage.location(),
        Some(payment.delta.table_url().as_str().trim_end_matches('/'))
    );
    let glue_columns = columns(storage.columns());
    assert_eq!(
        glue_columns[0],
        ("event_uuid".to_string(), "string".to_string())
    );
    assert!(
        glue_columns.contains(&("amount".to_string(), "double".to_string())),
        "{glue_columns:?}"
    );
    assert!(glue_columns.contains(&("_rescued_data".to_string(), "string".to_string())));
    assert!(glue_columns.contains(&("ingested_at_us".to_string(), "bigint".to_string())));
    assert_eq!(
        columns(entry.partition_keys()),
        [("event_date".to_string(), "date".to_string())]
    );
    for table in Table::ALL {
        let t = glue_table(&glue, table.name()).await;
        let location = format!("{LAKE}/{}", table.name());
        assert_eq!(t.table_type(), Some("EXTERNAL_TABLE"));
        let params = t.parameters().expect("parameters");
        assert_eq!(params.get("table_type").map(String::as_str), Some("DELTA"));
        assert_eq!(params.get("EXTERNAL").map(String::as_str), Some("TRUE"));
        let storage = t.storage_descriptor().expect("storage");
        assert_eq!(storage.location(), Some(location.as_str()));
        let serde = storage.serde_info().expect("serde");
        assert_eq!(
            serde.parameters().and_then(|p| p.get("path")),
            Some(&location),
            "Spark finds the table by its path"
        );
        assert_eq!(columns(storage.columns()), expected_columns(table));
        let partitions: Vec<String> = columns(t.partition_keys())
            .into_iter()
            .map(|(name, ty)| format!("{name} {ty}"))
            .collect();
        let want: Vec<&str> = match table {
            Table::Quarantine => vec!["ingest_date date"],
            Table::Keys => vec!["key_bucket string"],
            Table::Erasures => vec![],
            _ => vec!["event_date date", "event_type string"],
        };
        assert_eq!(partitions, want, "{}", table.name());
    }

    // A second sync writes nothing.
    let mut before = Vec::new();
    for table in Table::ALL {
        before.push(versions(&glue, table.name()).await);
    }
    let second = ok(&moto, &sync);
    assert!(second.contains("database events: exists"), "{second}");
    assert_eq!(
        second.matches(": unchanged").count(),
        Table::ALL.len() + typed.len(),
        "{second}"
    );
    for (table, n) in Table::ALL.iter().zip(&before) {
        assert_eq!(versions(&glue, table.name()).await, *n, "{}", table.name());
    }

    // A column added to raw's Delta schema reaches Glue; the others stay as they were.
    lake.open(Table::Raw)
        .await
        .expect("open raw")
        .add_columns()
        .with_fields([StructField::new("region", DataType::STRING, true)])
        .await
        .expect("add column");
    let third = ok(&moto, &sync);
    assert!(
        third.contains("raw: updated (column region string added)"),
        "{third}"
    );
    assert_eq!(
        third.matches(": unchanged").count(),
        Table::ALL.len() - 1 + typed.len(),
        "{third}"
    );
    let raw = glue_table(&glue, "raw").await;
    let raw_columns = columns(raw.storage_descriptor().expect("storage").columns());
    assert_eq!(
        raw_columns.last(),
        Some(&("region".to_string(), "string".to_string()))
    );
    assert_eq!(raw_columns.len(), expected_columns(Table::Raw).len() + 1);
}

#[ignore = "needs moto: pip install 'moto[server]' (make test installs it and runs it)"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inferred_views_are_written_and_applied_as_athena_views() {
    let moto = Moto::start().await;
    moto.create_bucket(BUCKET).await;
    fill_lake(&moto, "3000");
    let out_dir = tempfile::tempdir().expect("temp dir");
    let out = out_dir.path().to_str().expect("utf-8");
    let views = [
        "catalog",
        "views",
        "--lake",
        LAKE,
        "--days",
        "0",
        "--out",
        out,
        "--apply",
        "--database",
        GLUE_DATABASE,
    ];
    let first = ok(&moto, &views);
    assert!(first.contains("wrote 100 views"), "{first}");
    assert!(first.contains("database events: created"), "{first}");
    let file = std::fs::read_to_string(out_dir.path().join("payment_item.sql")).expect("view file");
    assert!(
        file.contains(
            r#"TRY_CAST(json_extract_scalar(payload, '$.amount') AS double) AS "amount""#
        ),
        "{file}"
    );

    let glue = aws_sdk_glue::Client::new(&moto.sdk);
    let view = glue_table(&glue, "payment_item").await;
    assert_eq!(view.table_type(), Some("VIRTUAL_VIEW"));
    let text = view.view_original_text().expect("view text");
    let encoded = text
        .strip_prefix("/* Presto View: ")
        .and_then(|t| t.strip_suffix(" */"))
        .expect("Presto view encoding");
    let presto: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .expect("base64"),
    )
    .expect("view JSON");
    assert_eq!(presto["schema"], GLUE_DATABASE);
    assert!(
        presto["originalSql"]
            .as_str()
            .is_some_and(|sql| sql.ends_with("WHERE event_type = 'payment_item'")),
        "{presto}"
    );
    let amount = columns(view.storage_descriptor().expect("storage").columns())
        .into_iter()
        .find(|(name, _)| name == "amount");
    assert_eq!(amount, Some(("amount".into(), "double".into())));

    let again = ok(&moto, &views);
    assert_eq!(again.matches(": unchanged").count(), 100, "{again}");
}
