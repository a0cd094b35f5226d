//! Property test: any interleaving of ingests and compactions leaves `staging` equal to a
//! simple in-memory reference: per uuid, the copy with the greatest (creation instant,
//! ingest order). Instants carry tenths of a second, so copies often share a whole second.

use std::collections::BTreeMap;

use lakehouse_compact::CompactOptions;
use proptest::prelude::*;

use crate::helpers::TestLake;

const T0: i64 = 1_700_000_000;

#[derive(Debug, Clone)]
enum Op {
    /// Records: (uuid, offset in seconds, tenths, variant, event type).
    Ingest(Vec<(u8, i64, u8, u8, u8)>),
    Compact,
}

fn op() -> impl Strategy<Value = Op> {
    let record = (0u8..6, 0i64..(3 * 86_400), 0u8..3, 0u8..3, 0u8..3).prop_map(
        |(uuid, offset, tenths, variant, kind)| {
            (uuid, offset - offset % 43_200, tenths, variant, kind)
        },
    );
    prop_oneof![
        3 => prop::collection::vec(record, 1..8).prop_map(Op::Ingest),
        1 => Just(Op::Compact),
    ]
}

fn line(&(uuid, offset, tenths, variant, kind): &(u8, i64, u8, u8, u8)) -> String {
    let created = T0 + offset;
    format!(
        r#"{{"event_uuid":"u{uuid}","event_name":"type{kind}:sub","created_at":{created}.{tenths},"v":{variant}}}"#
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn staging_matches_the_reference(ops in prop::collection::vec(op(), 1..7)) {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        runtime.block_on(async {
            let lake = TestLake::new();
            // uuid -> ((created_at in tenths, ingest order), whole seconds, line)
            let mut reference: BTreeMap<String, ((i64, usize), i64, String)> = BTreeMap::new();
            let mut seq = 0usize;
            let options = CompactOptions { skip_maintenance: false, ..Default::default() };
            for op in &ops {
                match op {
                    Op::Ingest(records) => {
                        let lines: Vec<String> = records.iter().map(line).collect();
                        lake.ingest(&lines).await;
                        for (r, l) in records.iter().zip(&lines) {
                            seq += 1;
                            let key = ((T0 + r.1) * 10 + i64::from(r.2), seq);
                            let copy = (key, T0 + r.1, l.clone());
                            let entry = reference.entry(format!("u{}", r.0)).or_insert(copy.clone());
                            if key > entry.0 {
                                *entry = copy;
                            }
                        }
                    }
                    Op::Compact => {
                        lake.compact_with(options.clone()).await;
                    }
                }
            }
            lake.compact_with(options).await;
            let expected: BTreeMap<String, (i64, String)> = reference
                .into_iter()
                .map(|(uuid, (_, seconds, payload))| (uuid, (seconds, payload)))
                .collect();
            prop_assert_eq!(lake.staging_state().await, expected);
            Ok(())
        })?;
    }
}
