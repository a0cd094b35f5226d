//! Re-driving quarantined records through the current event rules into raw, each at most
//! once (see [`lakehouse_lake::redrive`] for how a raw row names the quarantine row it came
//! from). The caller selects the rows, leaving out those raw already names, from the same
//! raw snapshot it hands over here; the commit advances raw's re-drive `txn`, so a
//! concurrent re-drive that committed since that snapshot fails this one (nothing
//! committed; a rerun selects again without the rows the other took). A run killed before
//! its commit leaves only unreferenced files; quarantine is never written.

use std::collections::BTreeMap;

use deltalake::DeltaTable;
use deltalake::kernel::Transaction;
use lakehouse_lake::log::txn_version;
use lakehouse_lake::redrive::{QuarantinedRecord, REDRIVE_APP_ID};

use crate::ahead::{Verdict, judge};
use crate::error::Result;
use crate::event::TOO_LARGE_KIND;
use crate::source::SourceRecord;
use crate::writer::{Destinations, IngestOptions, Ingestor};

/// What a re-drive did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RedriveSummary {
    /// Rows offered (already re-driven ones left out by the caller).
    pub offered: u64,
    /// Rows now valid, appended to raw.
    pub redriven: u64,
    /// Rows still invalid under the current rules, by reason kind: left as they are.
    pub still_invalid: BTreeMap<String, u64>,
    /// The raw version that holds the re-driven rows; `None` when none was valid.
    pub raw_version: Option<u64>,
}

/// Re-drives `records` into `raw` (opened at the snapshot the caller selected them from);
/// `quarantine` is only held, never written.
pub async fn redrive(
    raw: DeltaTable,
    quarantine: DeltaTable,
    records: &[QuarantinedRecord],
    options: IngestOptions,
) -> Result<RedriveSummary> {
    let mut summary = RedriveSummary {
        offered: records.len() as u64,
        ..RedriveSummary::default()
    };
    let done = txn_version(&raw, REDRIVE_APP_ID).await?;
    let max_record_bytes = options.max_record_bytes;
    let mut ingestor = Ingestor::with_tables(raw, quarantine, options)?;
    ingestor.record_raw_transaction(Transaction::new(REDRIVE_APP_ID, done.map_or(1, |v| v + 1)));
    let into = Destinations {
        raw: true,
        quarantine: false,
    };
    for record in records {
        // Judged once: valid ones go on as judged, the others are only counted.
        let kind = match judge(&record.raw, max_record_bytes) {
            valid @ Verdict::Valid(_) => {
                let (source, position) = record.redriven_key();
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
