//! Re-driving quarantined records through the current event rules into raw, each quarantine
//! row at most once (see [`lakehouse_lake::redrive`] for how a raw row names the row it
//! came from). The caller selects rows, or offers fixed lines that name rows by an export's
//! keys; everything that makes the at-most-once hold is checked here, on the raw snapshot
//! the commit is made on:
//!
//! - rows raw already names are left out;
//! - two offers of one row are one (the same bytes) or an error (different bytes);
//! - every fixed line's key must name a row quarantine holds, or nothing is re-driven;
//! - a row quarantined as too large holds only the record's first bytes, so it is not
//!   re-driven from them (a prefix may parse on its own); a fixed line for it must differ
//!   from that prefix.
//!
//! The commit advances raw's re-drive `txn`, so a concurrent re-drive that committed since
//! the snapshot fails this one (nothing committed; a rerun selects again without the rows
//! the other took). A run killed before its commit leaves only unreferenced files;
//! quarantine is never written.

use std::collections::{BTreeMap, HashMap};

use deltalake::DeltaTable;
use deltalake::kernel::Transaction;
use lakehouse_lake::app_ids::REDRIVE_APP_ID;
use lakehouse_lake::log::txn_version;
use lakehouse_lake::redrive::{QuarantinedRecord, RedrivenKey, redriven_keys, stored_rows};

use crate::decode::source::SourceRecord;
use crate::error::{IngestError, Result};
use crate::rules::event::TOO_LARGE_KIND;
use crate::rules::verdict::{Verdict, judge};
use crate::write::options::IngestOptions;
use crate::write::writer::{Destinations, Ingestor};

/// What a re-drive is offered.
#[derive(Debug, Clone)]
pub enum Offered {
    /// Quarantine's own rows, bytes as stored (a filter re-drive).
    Stored(Vec<QuarantinedRecord>),
    /// Lines an operator fixed, each naming its quarantine row (an export's keys file).
    Fixed(Vec<QuarantinedRecord>),
}

/// What a re-drive did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RedriveSummary {
    /// Rows offered.
    pub offered: u64,
    /// Offers of a row offered already with the same bytes (a line copied, two overlapping
    /// exports joined): taken once.
    pub repeated: u64,
    /// Rows raw already holds a re-drive of: left out.
    pub already_redriven: u64,
    /// Rows quarantined as too large whose whole record is not known (quarantine keeps its
    /// first bytes only): left as they are.
    pub too_large: u64,
    /// Rows now valid, appended to raw.
    pub redriven: u64,
    /// Rows still invalid under the current rules, by reason kind: left as they are.
    pub still_invalid: BTreeMap<String, u64>,
    /// The raw version that holds the re-driven rows; `None` when none was valid.
    pub raw_version: Option<u64>,
}

/// Re-drives what is `offered` into `raw` (opened at the snapshot the caller selected from,
/// if it selected); `quarantine` is only read, never written.
pub async fn redrive(
    raw: DeltaTable,
    quarantine: DeltaTable,
    offered: Offered,
    options: IngestOptions,
) -> Result<RedriveSummary> {
    let (records, fixed) = match offered {
        Offered::Stored(records) => (records, false),
        Offered::Fixed(records) => (records, true),
    };
    let mut summary = RedriveSummary {
        offered: records.len() as u64,
        ..RedriveSummary::default()
    };
    let records = once_each(records, &mut summary)?;
    let stored = if fixed {
        known_rows(&quarantine, &records).await?
    } else {
        HashMap::new()
    };
    let done = redriven_keys(&raw).await?;
    let version = txn_version(&raw, REDRIVE_APP_ID).await?;
    let max_record_bytes = options.max_record_bytes;
    let mut ingestor = Ingestor::with_tables(raw, quarantine, options)?;
    ingestor.record_raw_transaction(Transaction::new(
        REDRIVE_APP_ID,
        version.map_or(1, |v| v + 1),
    ));
    let into = Destinations {
        raw: true,
        quarantine: false,
    };
    for record in &records {
        let key = record.redriven_key();
        if done.contains(&key) {
            summary.already_redriven += 1;
            continue;
        }
        let whole = match stored.get(&key) {
            Some(row) => !is_prefix(row) || row.raw != record.raw,
            None => !is_prefix(record),
        };
        if !whole {
            summary.too_large += 1;
            continue;
        }
        // Judged once: valid ones go on as judged, the others are only counted.
        let kind = match judge(&record.raw, max_record_bytes) {
            valid @ Verdict::Valid(_) => {
                let (source, position) = key;
                let row = SourceRecord {
                    data: &record.raw,
                    source: &source,
                    position: &position,
                };
                ingestor.push_judged(&row, valid, into).await?;
                summary.redriven += 1;
                continue;
            }
            Verdict::TooLarge => TOO_LARGE_KIND.to_string(),
            Verdict::Invalid(rejection) => rejection.kind(),
        };
        *summary.still_invalid.entry(kind).or_default() += 1;
    }
    if summary.redriven == 0 {
        return Ok(summary);
    }
    summary.raw_version = ingestor.commit().await?.raw_version;
    Ok(summary)
}

/// Whether a stored quarantine row holds only the first bytes of its record.
fn is_prefix(row: &QuarantinedRecord) -> bool {
    row.error.starts_with(TOO_LARGE_KIND)
}

/// Each row once, in the order offered: a repeat with the same bytes is dropped, one with
/// other bytes is an error (which fix is meant cannot be told).
fn once_each(
    records: Vec<QuarantinedRecord>,
    summary: &mut RedriveSummary,
) -> Result<Vec<QuarantinedRecord>> {
    let mut first: HashMap<RedrivenKey, usize> = HashMap::new();
    // Each kept record with its place among those offered.
    let mut once: Vec<(usize, QuarantinedRecord)> = Vec::with_capacity(records.len());
    for (n, record) in records.into_iter().enumerate() {
        let key = record.redriven_key();
        match first.get(&key) {
            Some(&at) if once[at].1.raw == record.raw => summary.repeated += 1,
            Some(&at) => {
                return Err(IngestError::Input(format!(
                    "records {} and {} name the same quarantine row ({} at {}) with \
                     different bytes: keep one of them; nothing was re-driven",
                    once[at].0 + 1,
                    n + 1,
                    record.source,
                    record.source_position,
                )));
            }
            None => {
                first.insert(key, once.len());
                once.push((n, record));
            }
        }
    }
    Ok(once.into_iter().map(|(_, record)| record).collect())
}

/// The quarantine rows the fixed lines name; an error naming the first keys that name no
/// row (a key edited by hand, or from another lake), so raw never claims a provenance that
/// does not exist.
async fn known_rows(
    quarantine: &DeltaTable,
    records: &[QuarantinedRecord],
) -> Result<HashMap<RedrivenKey, QuarantinedRecord>> {
    let stored = stored_rows(quarantine, records, TOO_LARGE_KIND).await?;
    let unknown: Vec<String> = records
        .iter()
        .filter(|r| !stored.contains_key(&r.redriven_key()))
        .map(|r| {
            format!(
                "{} at {} (quarantined at {} µs, #{})",
                r.source, r.source_position, r.ingested_at_micros, r.ingest_seq
            )
        })
        .collect();
    if let Some(first) = unknown.first() {
        return Err(IngestError::Input(format!(
            "{} of the keys name no quarantine row, first {first}: nothing was re-driven; \
             use the keys file `quarantine export --out` wrote with these lines",
            unknown.len()
        )));
    }
    Ok(stored)
}
