//! Fuzzing what parses input, as property tests over hostile inputs: the event rules, KPL
//! de-aggregation (with valid checksums, so the protobuf reader itself is reached), Kinesis
//! event documents and JSON Lines framing. Nothing may panic, and what is accepted must
//! satisfy the rules. `LAKEHOUSE_FUZZ_CASES` sets cases per target (`make fuzz`: 1M);
//! each target prints the executions it ran.
#![cfg(test)]

use std::sync::atomic::{AtomicU64, Ordering};

use md5::{Digest, Md5};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use crate::decode::kpl::{MAGIC, deaggregate, is_aggregated};
use crate::decode::source::JsonLines;
use crate::rules::event::{MAX_CREATED_AT, QUARANTINED_PREFIX_BYTES, parse_event};
use lakehouse_lake::schema::{MAX_PARTITION_VALUE_PATH_BYTES, partition_value_path_bytes};

fn cases() -> u32 {
    std::env::var("LAKEHOUSE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000)
}

/// Runs `check` on `cases()` inputs from `strategy` and prints how many ran.
fn fuzz<S: Strategy>(name: &str, strategy: S, check: impl Fn(S::Value)) {
    let runs = AtomicU64::new(0);
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&strategy, |input| {
        runs.fetch_add(1, Ordering::Relaxed);
        check(input);
        Ok(())
    });
    println!("fuzz {name}: {} executions", runs.load(Ordering::Relaxed));
    if let Err(e) = result {
        panic!("fuzz {name}: {e}");
    }
}

/// Pieces hostile JSON is made of: edge numbers, escapes, surrogates, odd Unicode, nesting.
fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("0".to_string()),
        Just("-0".to_string()),
        Just("1700000000.123456789".to_string()),
        Just("253402300799".to_string()),
        Just("253402300800".to_string()),
        Just("1e9223372036854775807".to_string()),
        Just("-1e-9223372036854775808".to_string()),
        Just("1E400".to_string()),
        Just("99999999999999999999999999999".to_string()),
        Just(r#""\ud800""#.to_string()),
        Just(r#""\udc00\ud800""#.to_string()),
        Just(r#""\ud83d\ude00""#.to_string()),
        Just(r#""a:b:c""#.to_string()),
        Just(r#"":""#.to_string()),
        Just(r#""""#.to_string()),
        Just("\"\u{feff}\u{202e}\u{0}\"".to_string()),
        Just("[[[[[[[[[[]]]]]]]]]]".to_string()),
        Just(r#"{"a":{"b":[1,{"c":null}]}}"#.to_string()),
        Just("true".to_string()),
        Just("null".to_string()),
        "\"[^\"\\\\]{0,40}\"".prop_map(|s| s),
        "[0-9eE+\\-.]{1,30}".prop_map(|s| s),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("\"event_uuid\"".to_string()),
        Just("\"event_name\"".to_string()),
        Just("\"created_at\"".to_string()),
        Just(r#""event_\u0075uid""#.to_string()),
        Just(r#""\ud800""#.to_string()),
        "\"[a-z_]{0,8}\"".prop_map(|s| s),
    ]
}

/// Objects of hostile keys and values, sometimes with one byte changed.
fn json_record() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::collection::vec((key(), token()), 0..6),
        any::<Option<(prop::sample::Index, u8)>>(),
    )
        .prop_map(|(fields, mutation)| {
            let body: Vec<String> = fields.iter().map(|(k, v)| format!("{k}:{v}")).collect();
            let mut bytes = format!("{{{}}}", body.join(",")).into_bytes();
            if let Some((at, byte)) = mutation {
                let i = at.index(bytes.len());
                bytes[i] = byte;
            }
            bytes
        })
}

/// Valid events with some values swapped for hostile ones and extra hostile fields: most
/// reach the deeper rules (created_at arithmetic, the partition limit, surrogates).
fn near_valid() -> impl Strategy<Value = Vec<u8>> {
    let value = |valid: &'static str| prop_oneof![3 => Just(valid.to_string()), 1 => token()];
    (
        value(r#""u-1""#),
        prop_oneof![
            value(r#""pay:order:done""#),
            "\"[^\"\\\\]{0,90}:x\"".prop_map(|s| s)
        ],
        value("1700000000.5"),
        prop::collection::vec((key(), token()), 0..3),
    )
        .prop_map(|(uuid, name, created, extra)| {
            let mut fields = vec![
                format!(r#""event_uuid":{uuid}"#),
                format!(r#""event_name":{name}"#),
                format!(r#""created_at":{created}"#),
            ];
            fields.extend(extra.iter().map(|(k, v)| format!("{k}:{v}")));
            format!("{{{}}}", fields.join(",")).into_bytes()
        })
}

fn check_event(input: &[u8]) {
    let Ok(event) = parse_event(input) else {
        return;
    };
    assert_eq!(event.payload.as_bytes(), input);
    assert!(!event.event_uuid.is_empty());
    assert!(!event.event_type().is_empty());
    assert!(partition_value_path_bytes(event.event_type()) <= MAX_PARTITION_VALUE_PATH_BYTES);
    assert!((0..=MAX_CREATED_AT * 1_000_000).contains(&event.created_micros));
    assert_eq!(event.created_at, event.created_micros.div_euclid(1_000_000));
    // Judged on one thread and appended on another, it is the same event.
    assert_eq!(event.detach().attach(event.payload).as_ref(), Some(&event));
    // Held as a raw row and built into a batch, it has the same columns.
    check_raw_row(&event);
    // Whatever we accept is JSON to a standard parser, and where that parser can build a
    // value (numbers beyond f64 it cannot), it finds the same uuid.
    if let Err(e) = serde_json::from_slice::<&serde_json::value::RawValue>(input) {
        panic!(
            "accepted {:?} is not JSON: {e}",
            String::from_utf8_lossy(input)
        );
    }
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(input) {
        assert_eq!(
            value["event_uuid"].as_str(),
            Some(event.event_uuid.as_ref())
        );
    }
}

fn check_raw_row(event: &crate::rules::event::Event<'_>) {
    use crate::write::batch::{RawBatchBuilder, RowContext, Rows};
    use deltalake::arrow::array::{Array, AsArray};
    let record = crate::SourceRecord {
        data: event.payload.as_bytes(),
        source: "fuzz",
        position: "1",
    };
    let ctx = RowContext {
        ingested_at_micros: 0,
        ingest_seq: 0,
    };
    let mut rows = RawBatchBuilder::default();
    rows.append(event, Some(event.payload), &record, ctx);
    let batch = rows.finish().unwrap_or_else(|e| panic!("{event:?}: {e}"));
    let text = |name: &str| {
        let column = batch.column_by_name(name).map(|c| c.as_string::<i32>());
        column
            .filter(|c| c.is_valid(0))
            .map(|c| c.value(0).to_string())
    };
    assert_eq!(
        text("event_uuid").as_deref(),
        Some(event.event_uuid.as_ref())
    );
    assert_eq!(
        text("event_name").as_deref(),
        Some(event.event_name.as_ref())
    );
    assert_eq!(text("event_type").as_deref(), Some(event.event_type()));
    assert_eq!(text("event_subtype").as_deref(), event.event_subtype());
    assert_eq!(text("payload").as_deref(), Some(event.payload));
}

#[test]
fn fuzz_event_rules_on_hostile_json() {
    fuzz("event rules (hostile JSON)", json_record(), |input| {
        check_event(&input)
    });
}

#[test]
fn fuzz_event_rules_on_near_valid_events() {
    let accepted = AtomicU64::new(0);
    fuzz("event rules (near-valid events)", near_valid(), |input| {
        if parse_event(&input).is_ok() {
            accepted.fetch_add(1, Ordering::Relaxed);
        }
        check_event(&input)
    });
    println!("  of which accepted: {}", accepted.load(Ordering::Relaxed));
}

#[test]
fn fuzz_event_rules_on_arbitrary_bytes() {
    let bytes = prop::collection::vec(any::<u8>(), 0..512);
    fuzz("event rules (arbitrary bytes)", bytes, |input| {
        check_event(&input)
    });
}

/// A KPL aggregate around arbitrary protobuf bytes, with a correct checksum.
fn with_valid_digest(message: &[u8]) -> Vec<u8> {
    let mut data = MAGIC.to_vec();
    data.extend_from_slice(message);
    data.extend_from_slice(&Md5::digest(message));
    data
}

/// Protobuf-shaped bytes: field tags of the KPL message with lengths that may lie.
fn protobuf() -> impl Strategy<Value = Vec<u8>> {
    let field = prop_oneof![
        (
            prop::sample::select(vec![0x0a_u8, 0x1a, 0x08, 0x12, 0x22]),
            prop::collection::vec(any::<u8>(), 0..12)
        )
            .prop_map(|(tag, body)| {
                let mut f = vec![tag, body.len() as u8];
                f.extend(body);
                f
            }),
        prop::collection::vec(any::<u8>(), 0..8),
    ];
    prop::collection::vec(field, 0..10).prop_map(|fields| fields.concat())
}

#[test]
fn fuzz_kpl_deaggregation() {
    fuzz("KPL de-aggregation", protobuf(), |message| {
        let data = with_valid_digest(&message);
        assert!(is_aggregated(&data));
        if let Ok(records) = deaggregate(&data) {
            for r in records {
                // Every user record lies inside the aggregate.
                assert!(r.data.len() <= message.len());
            }
        }
    });
}

#[test]
fn fuzz_kinesis_documents() {
    let documents = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..300),
        (prop::collection::vec(token(), 0..4), prop::collection::vec(any::<u8>(), 0..40)).prop_map(
            |(values, data)| {
                use base64::Engine;
                let data = base64::engine::general_purpose::STANDARD.encode(data);
                format!(
                    r#"{{"Records":[{{"eventID":{},"eventSourceARN":{},"kinesis":{{"data":"{data}","sequenceNumber":{},"partitionKey":{}}}}}]}}"#,
                    values.first().cloned().unwrap_or_default(),
                    values.get(1).cloned().unwrap_or_default(),
                    values.get(2).cloned().unwrap_or_default(),
                    values.get(3).cloned().unwrap_or_default(),
                )
                .into_bytes()
            }
        ),
    ];
    fuzz("Kinesis event documents", documents, |document| {
        let _ = crate::decode::kinesis::parse_document(&document, "fuzz");
    });
}

#[test]
fn fuzz_json_lines_framing() {
    // Maxima on both sides of what quarantine keeps of a record too large.
    let input = (
        prop::collection::vec(any::<u8>(), 0..9000),
        prop_oneof![1usize..40, 4000usize..6000],
    );
    fuzz("JSON Lines framing", input, |(bytes, max)| {
        let mut lines = JsonLines::new(bytes.as_slice(), "fuzz").with_max_record_bytes(max);
        let mut records = 0;
        while let Some(record) = lines.next_record().expect("in-memory read") {
            // A line is kept up to a record of the maximum, and never below the prefix
            // quarantine keeps, plus its line end.
            assert!(record.data.len() <= max.max(QUARANTINED_PREFIX_BYTES) + 2);
            records += 1;
        }
        assert!(records <= bytes.len() + 1);
    });
}
