//! The key index's contract (`staging_keys`, see `docs/dedup.md`): how an `event_uuid`
//! becomes a key, which bucket a key lives in, and the rows of the table.
//!
//! A key is the first 16 bytes of the uuid's SHA-256: fixed by its definition, so a key
//! never changes between builds, machines or engines (Athena computes the same with
//! `sha256`), and uniform, so buckets fill evenly whatever the uuids look like.

use std::sync::Arc;

use deltalake::arrow::array::{
    ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use sha2::{Digest, Sha256};

use crate::error::Result;
use crate::schema::{Table, UTC};

/// Buckets of the key index: fixed, part of the contract (a key's bucket must never move).
/// 64 keeps a bucket's share of one round's new keys large enough to write as one file
/// even at 1k events an hour, and a bucket of a billion keys at ~20 GB.
pub const KEY_BUCKETS: u32 = 64;

/// An `event_uuid`'s key: its SHA-256's first 16 bytes, big-endian, as two signed longs
/// (Delta has no unsigned or fixed-size binary type that Athena reads as cheaply).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub hi: i64,
    pub lo: i64,
}

impl Key {
    pub fn of(uuid: &str) -> Key {
        let digest = Sha256::digest(uuid.as_bytes());
        let half = |at: usize| {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(&digest[at..at + 8]);
            i64::from_be_bytes(bytes)
        };
        Key {
            hi: half(0),
            lo: half(8),
        }
    }

    /// The bucket: the key's top 6 bits.
    pub fn bucket(self) -> u32 {
        ((self.hi as u64) >> (64 - KEY_BUCKETS.trailing_zeros())) as u32
    }
}

/// The `key_bucket` partition value of bucket `bucket`: two hex digits, so buckets sort.
pub fn bucket_name(bucket: u32) -> String {
    format!("{bucket:02x}")
}

/// The tag a staging file's `add` carries when its rows were all in staging before (a
/// rewrite's kept rows): the index holds their keys already.
pub const CARRIED_TAG: &str = "lakehouse.carried";

/// Marks `add` as holding only rows staging held before.
pub fn mark_carried(add: &mut deltalake::kernel::Add) {
    add.tags
        .get_or_insert_with(Default::default)
        .insert(CARRIED_TAG.to_string(), Some("true".to_string()));
}

/// Whether `add` holds only rows staging held before: marked so, or added by a rewrite that
/// changed no data (optimize).
pub fn is_carried(add: &deltalake::kernel::Add) -> bool {
    !add.data_change
        || add
            .tags
            .as_ref()
            .is_some_and(|t| t.contains_key(CARRIED_TAG))
}

/// The tag an index file's `add` carries: when its newest entry was indexed, in Unix
/// seconds. Rounds with a hot window probe only files indexed within it; readers ignore
/// tags, so the table stays plain Delta.
pub const INDEXED_AT_TAG: &str = "lakehouse.indexedAt";

/// Records on `add` that its newest entry was indexed at `unix_seconds`.
pub fn tag_indexed_at(add: &mut deltalake::kernel::Add, unix_seconds: i64) {
    add.tags
        .get_or_insert_with(Default::default)
        .insert(INDEXED_AT_TAG.to_string(), Some(unix_seconds.to_string()));
}

/// When `add`'s newest entry was indexed; `None` for files written before the tag existed
/// (or with an unreadable one): the oldest.
pub fn indexed_at(add: &deltalake::kernel::Add) -> Option<i64> {
    add.tags
        .as_ref()?
        .get(INDEXED_AT_TAG)?
        .as_deref()?
        .parse()
        .ok()
}

/// The tag every index file's `add` carries once the index keeps an entry per key, type
/// and date (a run merge keeps the latest of each): no older copy's entry in another date
/// partition was dropped from it, which a sweep by the index relies on.
pub const ENTRIES_TAG: &str = "lakehouse.entries";
const ENTRIES_PER_DATE: &str = "perDate";

/// Records on `add` that its entries are kept per key, type and date.
pub fn tag_entries_per_date(add: &mut deltalake::kernel::Add) {
    add.tags
        .get_or_insert_with(Default::default)
        .insert(ENTRIES_TAG.to_string(), Some(ENTRIES_PER_DATE.to_string()));
}

/// Whether `add` keeps its entries per key, type and date (written since the tag existed).
pub fn has_entries_per_date(add: &deltalake::kernel::Add) -> bool {
    add.tags
        .as_ref()
        .and_then(|t| t.get(ENTRIES_TAG))
        .is_some_and(|v| v.as_deref() == Some(ENTRIES_PER_DATE))
}

/// One row of the key index: where a staged event is and which copy it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyEntry {
    pub key: Key,
    /// The staged row's `created_datetime`, Unix microseconds.
    pub created_micros: Option<i64>,
    /// Shared by the entries of one staging file (its partition's type).
    pub event_type: Arc<str>,
}

/// Rows of `staging_keys` for `entries`, all of bucket `bucket`.
pub fn keys_batch(bucket: u32, entries: &[KeyEntry]) -> Result<RecordBatch> {
    let name = bucket_name(bucket);
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(
            entries.iter().map(|e| e.key.hi),
        )),
        Arc::new(Int64Array::from_iter_values(
            entries.iter().map(|e| e.key.lo),
        )),
        Arc::new(
            TimestampMicrosecondArray::from_iter(entries.iter().map(|e| e.created_micros))
                .with_timezone(UTC),
        ),
        Arc::new(StringArray::from_iter_values(
            entries.iter().map(|e| &*e.event_type),
        )),
        Arc::new(StringArray::from_iter_values(
            entries.iter().map(|_| name.as_str()),
        )),
    ];
    Ok(RecordBatch::try_new(Table::Keys.arrow_schema(), columns)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_sha256_and_fill_every_bucket() {
        // SHA-256("abc") = ba7816bf 8f01cfea 414140de 5dae2223 …
        let key = Key::of("abc");
        assert_eq!(key.hi as u64, 0xba78_16bf_8f01_cfea);
        assert_eq!(key.lo as u64, 0x4141_40de_5dae_2223);
        assert_eq!(key.bucket(), 0xba >> 2);
        let mut seen = vec![0u32; KEY_BUCKETS as usize];
        for i in 0..64_000 {
            seen[Key::of(&format!("uuid-{i}")).bucket() as usize] += 1;
        }
        assert!(seen.iter().all(|&n| (800..1200).contains(&n)), "{seen:?}");
        assert_eq!(bucket_name(7), "07");
        let batch = keys_batch(
            7,
            &[KeyEntry {
                key,
                created_micros: None,
                event_type: "a".into(),
            }],
        )
        .expect("batch");
        assert_eq!(batch.num_rows(), 1);
    }
}
