//! Kinesis records with known contents and what the lake must hold after them: valid
//! events, later and identical copies, invalid records, KPL aggregates and a corrupt one.

use std::collections::BTreeMap;

use lakehouse_ingest::kpl::{self, UserRecord};

use crate::helpers::event;

pub struct Workload {
    /// Kinesis records: (data, shard index).
    pub records: Vec<(Vec<u8>, usize)>,
    /// `event_uuid` → rows `raw` must hold.
    pub raw: BTreeMap<String, i64>,
    pub quarantine: i64,
    /// `event_uuid` → the `created_at` that wins in `staging`.
    pub staging: BTreeMap<String, i64>,
}

/// A user record's expected outcome: `(event_uuid, created_at)` if valid, else `None`.
type Expected = Option<(String, i64)>;

const TYPES: [&str; 4] = [
    "payment:order:completed",
    "user:profile:updated",
    "cart:item:added",
    "search:query:run",
];

impl Workload {
    /// `events` distinct events over `shards` shards; every 7th has a later copy, every
    /// 11th an identical redelivery, every 13th record is invalid, and groups of 10 among
    /// the last fifth travel as KPL aggregates, one of them corrupt.
    pub fn new(tag: &str, events: usize, shards: usize) -> Workload {
        Workload::with_types(tag, events, shards, TYPES.len())
    }

    /// As [`Workload::new`], with events of the first `types` event types only.
    pub fn with_types(tag: &str, events: usize, shards: usize, types: usize) -> Workload {
        let mut w = Workload {
            records: Vec::new(),
            raw: BTreeMap::new(),
            quarantine: 0,
            staging: BTreeMap::new(),
        };
        let base = 1_764_000_000i64;
        let mut user_records: Vec<(Vec<u8>, Expected)> = Vec::new();
        for i in 0..events {
            let uuid = format!("{tag}-{i:06}");
            let created = base + (i as i64 % 5000) * 17;
            let name = TYPES[i % types.clamp(1, TYPES.len())];
            user_records.push((
                event(&uuid, name, created, r#","v":1"#).into_bytes(),
                Some((uuid.clone(), created)),
            ));
            if i % 7 == 0 {
                let later = created + 60;
                user_records.push((
                    event(&uuid, name, later, r#","v":2"#).into_bytes(),
                    Some((uuid.clone(), later)),
                ));
            }
            if i % 11 == 0 {
                user_records.push((
                    event(&uuid, name, created, r#","v":1"#).into_bytes(),
                    Some((uuid.clone(), created)),
                ));
            }
            if i % 13 == 0 {
                let bad = if i % 2 == 0 {
                    format!("{{\"event_uuid\":\"{uuid}\"")
                } else {
                    format!(r#"{{"event_uuid":"{uuid}","event_name":"x","created_at":"soon"}}"#)
                };
                user_records.push((bad.into_bytes(), None));
            }
        }
        let aggregated_from = user_records.len() * 4 / 5;
        let (plain, packed) = user_records.split_at(aggregated_from);
        for (data, valid) in plain {
            w.expect(valid);
            w.records.push((data.clone(), w.records.len() % shards));
        }
        for (n, group) in packed.chunks(10).enumerate() {
            let users: Vec<UserRecord> = group
                .iter()
                .map(|(data, _)| UserRecord {
                    partition_key: "agg",
                    data,
                })
                .collect();
            let mut aggregate = kpl::aggregate(&users);
            if n == 1 {
                // A corrupt aggregate is one quarantined record, whatever it held.
                let last = aggregate.len() - 1;
                aggregate[last] ^= 0xFF;
                w.quarantine += 1;
            } else {
                for (_, valid) in group {
                    w.expect(valid);
                }
            }
            w.records.push((aggregate, w.records.len() % shards));
        }
        w
    }

    fn expect(&mut self, valid: &Expected) {
        match valid {
            Some((uuid, created)) => {
                *self.raw.entry(uuid.clone()).or_default() += 1;
                let best = self.staging.entry(uuid.clone()).or_insert(*created);
                *best = (*best).max(*created);
            }
            None => self.quarantine += 1,
        }
    }

    pub fn raw_rows(&self) -> i64 {
        self.raw.values().sum()
    }
}
