//! Backfill from S3 archives (issue 14) on moto, run as a user runs it: the binary with a
//! glob over the Firehose backup layout, compressed objects, a rerun that adds nothing.

use std::io::Write;
use std::process::{Command, Output};

use super::moto::Moto;

const BUCKET: &str = "archive";
const LAKE: &str = "s3://archive/lake";

fn lakehouse(moto: &Moto, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lakehouse"))
        .args(args)
        .envs(moto.env())
        .env_remove("LAKEHOUSE_LAKE")
        .output()
        .expect("run lakehouse")
}

fn lines(tag: &str, n: usize) -> Vec<u8> {
    let mut text: String = (0..n)
        .map(|i| {
            format!(
                "{{\"event_uuid\":\"{tag}{i}\",\"event_name\":\"order:placed\",\"created_at\":{}}}\n",
                1_700_000_000 + i
            )
        })
        .collect();
    text.push_str("{\"no\":\"uuid\"}\n");
    text.into_bytes()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).expect("gzip");
    encoder.finish().expect("gzip")
}

fn count(moto: &Moto, table: &str) -> u64 {
    let out = lakehouse(
        moto,
        &[
            "query",
            "--lake",
            LAKE,
            "--format",
            "csv",
            &format!(
                "SELECT COUNT(*) AS n, COUNT(DISTINCT source_position || source) AS d FROM {table}"
            ),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let row = text.lines().nth(1).expect("a row").to_string();
    let (n, distinct) = row.split_once(',').expect("two columns");
    assert_eq!(n, distinct, "{table}: a record landed twice");
    n.parse().expect("a count")
}

#[ignore = "needs moto: pip install 'moto[server]' (make test installs it and runs it)"]
#[tokio::test(flavor = "multi_thread")]
async fn a_firehose_layout_backfills_by_glob_once_and_a_rerun_adds_nothing() {
    let moto = Moto::start().await;
    moto.create_bucket(BUCKET).await;
    let objects: [(&str, Vec<u8>); 5] = [
        ("firehose/2025/11/24/10/events-1.gz", gzip(&lines("a", 300))),
        ("firehose/2025/11/24/10/events-2.gz", gzip(&lines("b", 200))),
        // zstd under a .gz-less name: the bytes decide.
        (
            "firehose/2025/11/24/11/events-3",
            zstd::encode_all(&lines("c", 100)[..], 3).expect("zstd"),
        ),
        // Not an hour folder of the glob: left alone.
        ("firehose/2025/11/24/events-stray.gz", gzip(&lines("s", 50))),
        ("firehose/2025/11/25/00/events-4.gz", gzip(&lines("d", 400))),
    ];
    for (key, body) in objects {
        moto.put_object(BUCKET, key, body).await;
    }
    let glob = "s3://archive/firehose/2025/11/*/*/*";
    let out = lakehouse(&moto, &["ingest", "--lake", LAKE, glob]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("read 1004 appended 1000 quarantined 4"),
        "{stdout}"
    );
    assert_eq!((count(&moto, "raw"), count(&moto, "quarantine")), (1000, 4));

    // The rerun reads the listing, not the objects, and adds nothing; a prefix ending in
    // `/` takes every object under it, the stray one among them.
    let out = lakehouse(
        &moto,
        &[
            "ingest",
            "--lake",
            LAKE,
            glob,
            "s3://archive/firehose/2025/11/24/",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stderr.matches("already loaded").count(), 7, "{stderr}");
    assert_eq!((count(&moto, "raw"), count(&moto, "quarantine")), (1050, 5));

    // `status` reads the same lake from its logs on S3.
    let out = lakehouse(
        &moto,
        &[
            "status",
            "--lake",
            LAKE,
            "--format",
            "json",
            "--max-lag",
            "1d",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        status["quarantine"]["by_reason"]["missing field `event_uuid`"], 5,
        "{status}"
    );
    assert_eq!(status["compaction"]["rows_behind"], 1050);
    assert_eq!(status["tables"][0]["oldest_version"], 0);
    assert!(status["tables"][0]["files"].as_u64().expect("files") > 0);

    // Quarantine on S3: listed, exported byte for byte, re-driven (still invalid: kept).
    let out = lakehouse(
        &moto,
        &["quarantine", "list", "--lake", LAKE, "--format", "json"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(list[0]["rows"], 5, "{list}");
    let out = lakehouse(&moto, &["quarantine", "export", "--lake", LAKE]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "{\"no\":\"uuid\"}\n".repeat(5)
    );
    let out = lakehouse(&moto, &["quarantine", "redrive", "--lake", LAKE]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("appended 0 still invalid 5") && stdout.contains("raw unchanged"),
        "{stdout}"
    );

    // Nothing matching, a missing object, a bucket that does not exist: a clear error.
    for spec in [
        "s3://archive/firehose/2024/*/*/*/*",
        "s3://archive/firehose/2025/11/24/10/missing.gz",
        "s3://no-such-bucket/x/*",
    ] {
        let out = lakehouse(&moto, &["ingest", "--lake", LAKE, spec]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{spec}");
        assert!(
            stderr.starts_with("error: ") && stderr.contains(spec),
            "{stderr}"
        );
    }
}
