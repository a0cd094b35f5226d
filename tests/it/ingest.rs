//! Ingest: every record lands in raw or quarantine; the transform; partition escaping.

use crate::helpers::{TestLake, event};

#[tokio::test]
async fn every_record_ends_in_raw_or_quarantine_byte_for_byte() {
    let lake = TestLake::new();
    let invalid: Vec<&[u8]> = vec![
        b"not json",
        b"{\"event_uuid\":\"x\",\"event_name\":\"a\xff\",\"created_at\":1}",
        b"[]",
        b"",
        br#"{"event_uuid":"","event_name":"a","created_at":1}"#,
        br#"{"event_uuid":"q","event_name":"a","created_at":-3}"#,
    ];
    let mut lines: Vec<Vec<u8>> = vec![
        event(
            "u1",
            "payment:order:completed",
            1_700_000_000,
            r#","amount":12.5"#,
        )
        .into_bytes(),
        event("u2", "login", 1_700_086_400, "").into_bytes(),
    ];
    lines.extend(invalid.iter().map(|l| l.to_vec()));
    let summary = lake.ingest(&lines).await;
    assert_eq!(
        (summary.read, summary.appended, summary.quarantined),
        (8, 2, 6)
    );
    assert_eq!(lake.count("raw").await, 2);
    assert_eq!(lake.count("quarantine").await, 6);

    // Rejected bytes are kept exactly, with the reason and position.
    let rows = lake
        .query("SELECT encode(raw, 'hex') AS hex, error, source_position FROM quarantine ORDER BY ingest_seq")
        .await;
    for (row, original) in rows.iter().zip(&invalid) {
        let hex: String = original.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(row["hex"].as_str(), Some(hex.as_str()));
        assert!(!row["error"].as_str().unwrap_or_default().is_empty());
    }
    assert_eq!(rows[1]["error"], "invalid UTF-8 after byte 33");
    assert_eq!(rows[2]["error"], "not a JSON object: got an array");
    assert_eq!(rows[5]["source_position"], "8");

    let rows = lake
        .query(
            "SELECT event_uuid, event_type, event_subtype, created_at, created_datetime, event_date, payload \
             FROM raw ORDER BY event_uuid",
        )
        .await;
    assert_eq!(rows[0]["event_type"], "payment");
    assert_eq!(rows[0]["event_subtype"], "order");
    assert_eq!(rows[0]["created_datetime"], "2023-11-14T22:13:20Z");
    assert_eq!(rows[0]["event_date"], "2023-11-14");
    assert_eq!(
        rows[0]["payload"].as_str(),
        Some(lines[0].as_slice()).map(|b| std::str::from_utf8(b).unwrap())
    );
    assert_eq!(rows[1]["event_type"], "login");
    assert!(rows[1]["event_subtype"].is_null());
}

#[tokio::test]
async fn fractional_created_at_keeps_microseconds() {
    let lake = TestLake::new();
    lake.ingest(&[r#"{"event_uuid":"f","event_name":"a:b","created_at":1700000000.25}"#])
        .await;
    let rows = lake
        .query("SELECT created_at, created_datetime FROM raw")
        .await;
    assert_eq!(rows[0]["created_at"], 1_700_000_000);
    assert_eq!(rows[0]["created_datetime"], "2023-11-14T22:13:20.250Z");
}

#[tokio::test]
async fn awkward_event_types_round_trip_through_partitions() {
    let lake = TestLake::new();
    let types = ["a/b", "with space", "k=v", "ünï€ødé", "per%cent", "x:y"];
    let lines: Vec<String> = types
        .iter()
        .enumerate()
        .map(|(i, t)| event(&format!("u{i}"), &format!("{t}:sub"), 1_700_000_000, ""))
        .collect();
    lake.ingest(&lines).await;
    lake.compact().await;
    for table in ["raw", "staging"] {
        let rows = lake
            .query(&format!(
                "SELECT event_type FROM {table} ORDER BY event_uuid"
            ))
            .await;
        let got: Vec<&str> = rows
            .iter()
            .filter_map(|r| r["event_type"].as_str())
            .collect();
        // "x:y" has event_type "x": the first part.
        assert_eq!(
            got,
            ["a/b", "with space", "k=v", "ünï€ødé", "per%cent", "x"],
            "{table}"
        );
    }
}

#[tokio::test]
async fn the_longest_event_type_lands_and_a_longer_one_is_quarantined_not_a_failed_run() {
    let lake = TestLake::new();
    // 22 CJK characters escape to 198 bytes of path, the most that fits; 40 made the whole
    // run fail with "File name too long".
    let longest = "中".repeat(22);
    let lines = [
        event("fits", &format!("{longest}:x"), 1_700_000_000, ""),
        event("long", &format!("{}:x", "中".repeat(40)), 1_700_000_000, ""),
        event(
            "ascii",
            &format!("{}:x", "a".repeat(201)),
            1_700_000_000,
            "",
        ),
    ];
    let summary = lake.ingest(&lines).await;
    assert_eq!((summary.appended, summary.quarantined), (1, 2));
    lake.compact().await;
    let rows = lake.query("SELECT event_type FROM staging").await;
    assert_eq!(rows[0]["event_type"], longest.as_str());
    let errors = lake
        .query("SELECT error FROM quarantine ORDER BY ingest_seq")
        .await;
    for e in &errors {
        let error = e["error"].as_str().unwrap_or_default();
        assert!(error.contains("too long to be a partition"), "{error}");
    }
}

#[tokio::test]
async fn an_empty_input_commits_nothing() {
    let lake = TestLake::new();
    let summary = lake.ingest::<&[u8]>(&[]).await;
    assert_eq!(summary.raw_version, None);
    assert_eq!(summary.quarantine_version, None);
}

#[tokio::test]
async fn files_end_where_the_memory_budget_says_as_well_as_at_their_rows() {
    let lake = TestLake::new();
    let lines: Vec<String> = (0..200)
        .map(|i| {
            event(
                &format!("u{i}"),
                "x:1",
                1_700_000_000,
                r#","pad":"0123456789""#,
            )
        })
        .chain((0..50).map(|i| format!("broken {i} {}", "q".repeat(1000))))
        .collect();
    // The row limit is never reached: only the memory budget ends files.
    let options = lakehouse_ingest::IngestOptions {
        buffer_bytes: 20_000,
        ..Default::default()
    };
    let summary = lake.ingest_with(&lines, options).await;
    assert_eq!((summary.appended, summary.quarantined), (200, 50));
    assert!(summary.raw_files > 1, "{summary:?}");
    assert!(summary.quarantine_files > 1, "{summary:?}");
    assert_eq!(lake.count("raw").await, 200);
    assert_eq!(lake.count("quarantine").await, 50);
}

#[tokio::test]
async fn an_input_of_more_partitions_than_the_budget_holds_lands_whole() {
    let lake = TestLake::new();
    // 300 event types over 2 days, interleaved, with room for about 50 partitions at once.
    let lines: Vec<String> = (0..1_200)
        .map(|i| {
            let created = 1_700_000_000 + (i % 2) * 86_400;
            event(&format!("u{i}"), &format!("type{}:x", i % 300), created, "")
        })
        .collect();
    let options = lakehouse_ingest::IngestOptions {
        buffer_bytes: 50 * 4096,
        ..Default::default()
    };
    let summary = lake.ingest_with(&lines, options).await;
    assert_eq!(summary.appended, 1_200);
    // 600 partitions, each reached again after the others pushed it out.
    assert!(summary.raw_files >= 600, "{summary:?}");
    let rows = lake
        .query("SELECT count(DISTINCT event_type) AS t, count(DISTINCT event_uuid) AS u FROM raw")
        .await;
    assert_eq!(
        (rows[0]["t"].as_i64(), rows[0]["u"].as_i64()),
        (Some(300), Some(1_200))
    );
}
