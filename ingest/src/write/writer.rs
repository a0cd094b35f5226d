//! The ingest writer: records in, one Delta commit on `raw` (valid events) and one on
//! `quarantine` (everything else) out. Memory stays within a budget: rows are held per
//! partition and become files as the budget requires (see [`crate::write::sink`]), while the
//! commit waits until the end so a failed ingest leaves no partial data visible.

use std::collections::BTreeMap;

use chrono::Utc;
use deltalake::DeltaTable;
use deltalake::kernel::Transaction;
use lakehouse_lake::subject::SubjectPaths;
use lakehouse_lake::{CommitMetadata, Committed, Lake, Table};

use crate::decode::ahead::Chunk;
use crate::decode::kinesis::{
    self, CORRUPT_AGGREGATE_KIND, Decoded, KinesisEvent, KinesisEventRecord, Part,
};
use crate::decode::source::SourceRecord;
use crate::error::{IngestError, Result};
use crate::rules::event::{Event, QUARANTINED_PREFIX_BYTES, TOO_LARGE_KIND, too_large};
use crate::rules::verdict::{Verdict, judge};
use crate::write::batch::{QuarantineBatchBuilder, RawBatchBuilder, RowContext};
use crate::write::options::IngestOptions;
use crate::write::sink::{PreparedAppend, Sink};

/// What one ingest did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct IngestSummary {
    pub read: u64,
    /// Records left out because their table already holds them (a redelivered batch).
    pub already_committed: u64,
    pub appended: u64,
    pub quarantined: u64,
    /// Quarantined records by reason kind (see [`crate::rules::event::Rejection::kind`]).
    pub reasons: BTreeMap<String, u64>,
    /// Inputs left out whole because both tables already hold them (see [`crate::loading::load`]).
    pub inputs_already_loaded: u64,
    pub raw_files: usize,
    pub quarantine_files: usize,
    /// New table versions; `None` where nothing was committed.
    pub raw_version: Option<u64>,
    pub quarantine_version: Option<u64>,
}

impl IngestSummary {
    /// This ingest followed by `later` (one run committed in groups): counts add up, the
    /// versions are the last ones committed.
    pub fn then(mut self, later: IngestSummary) -> IngestSummary {
        for (kind, n) in later.reasons {
            *self.reasons.entry(kind).or_default() += n;
        }
        IngestSummary {
            read: self.read + later.read,
            already_committed: self.already_committed + later.already_committed,
            appended: self.appended + later.appended,
            quarantined: self.quarantined + later.quarantined,
            reasons: self.reasons,
            inputs_already_loaded: self.inputs_already_loaded + later.inputs_already_loaded,
            raw_files: self.raw_files + later.raw_files,
            quarantine_files: self.quarantine_files + later.quarantine_files,
            raw_version: later.raw_version.or(self.raw_version),
            quarantine_version: later.quarantine_version.or(self.quarantine_version),
        }
    }
}

/// Streams records into one commit per table. Call [`Ingestor::push`] for every record,
/// then [`Ingestor::commit`]; dropping it uncommitted leaves only unreferenced files,
/// which `compact --vacuum-full` removes.
pub struct Ingestor {
    options: IngestOptions,
    /// Raw's subject paths, resolved into each row's `subject_id`.
    subjects: SubjectPaths,
    ingested_at_micros: i64,
    raw: Sink<RawBatchBuilder>,
    quarantine: Sink<QuarantineBatchBuilder>,
    /// Loads each table records with its commit (see [`crate::loading::load`]).
    raw_loads: Vec<Transaction>,
    quarantine_loads: Vec<Transaction>,
    summary: IngestSummary,
}

impl Ingestor {
    pub async fn open(lake: &Lake, options: IngestOptions) -> Result<Ingestor> {
        let (raw, quarantine) =
            tokio::try_join!(lake.open(Table::Raw), lake.open(Table::Quarantine))?;
        Ingestor::with_tables(raw, quarantine, options)
    }

    /// Writes into tables the caller already holds open (a warm Lambda keeps them).
    pub fn with_tables(
        raw: DeltaTable,
        quarantine: DeltaTable,
        options: IngestOptions,
    ) -> Result<Ingestor> {
        Ok(Ingestor {
            ingested_at_micros: Utc::now().timestamp_micros(),
            subjects: SubjectPaths::of_table(&raw)?,
            raw: Sink::start(Table::Raw, raw, &options)?,
            quarantine: Sink::start(Table::Quarantine, quarantine, &options)?,
            options,
            raw_loads: Vec::new(),
            quarantine_loads: Vec::new(),
            summary: IngestSummary::default(),
        })
    }

    /// Starts loading the input recorded under `app_id` (see [`crate::loading::load`]): where each
    /// table should take its records, and each table's record of the load goes into its
    /// commit. `None` when both tables already hold it (nothing to read), unless `force`,
    /// which loads it again everywhere.
    pub async fn begin_load(&mut self, app_id: &str, force: bool) -> Result<Option<Destinations>> {
        let (raw, quarantine) = tokio::try_join!(
            self.raw.loaded_version(app_id),
            self.quarantine.loaded_version(app_id)
        )?;
        let noted = |loads: &[Transaction]| loads.iter().any(|t| t.app_id == app_id);
        if noted(&self.raw_loads)
            || noted(&self.quarantine_loads)
            || (!force && raw.is_some() && quarantine.is_some())
        {
            self.summary.inputs_already_loaded += 1;
            return Ok(None);
        }
        let into = Destinations {
            raw: force || raw.is_none(),
            quarantine: force || quarantine.is_none(),
        };
        let next = |version: Option<i64>| Transaction::new(app_id, version.map_or(1, |v| v + 1));
        if into.raw {
            self.raw_loads.push(next(raw));
        }
        if into.quarantine {
            self.quarantine_loads.push(next(quarantine));
        }
        Ok(Some(into))
    }

    /// Records `txn` in raw's commit: a caller's own progress (a re-drive's), which the
    /// commit path lets advance once per version of raw.
    pub fn record_raw_transaction(&mut self, txn: Transaction) {
        self.raw_loads.push(txn);
    }

    pub fn summary(&self) -> &IngestSummary {
        &self.summary
    }

    /// Adds one record: valid events to `raw`, everything else to `quarantine`.
    pub async fn push(&mut self, record: &SourceRecord<'_>) -> Result<()> {
        self.push_to(record, Destinations::ALL).await
    }

    /// Like [`Ingestor::push`], leaving the record out where `into` says its table already
    /// holds it.
    pub async fn push_to(&mut self, record: &SourceRecord<'_>, into: Destinations) -> Result<()> {
        let verdict = judge(record.data, self.options.max_record_bytes);
        self.push_judged(record, verdict, into).await
    }

    /// Adds every record of a chunk judged ahead (see [`crate::decode::ahead`]), in order.
    pub async fn push_chunk(&mut self, chunk: &Chunk, into: Destinations) -> Result<()> {
        for (record, verdict) in chunk.records() {
            let verdict = verdict.attach(record.data).ok_or_else(|| {
                IngestError::Internal(format!(
                    "record {} of {} changed after it was judged",
                    record.position, record.source
                ))
            })?;
            self.push_judged(&record, verdict, into).await?;
        }
        Ok(())
    }

    /// Adds a record as [`judge`] found it, with this ingest's maximum record size.
    pub(crate) async fn push_judged(
        &mut self,
        record: &SourceRecord<'_>,
        verdict: Verdict<Event<'_>>,
        into: Destinations,
    ) -> Result<()> {
        match verdict {
            Verdict::TooLarge => {
                // Quarantined by its first bytes only: what is it is not worth holding it all.
                let kept = SourceRecord {
                    data: &record.data[..QUARANTINED_PREFIX_BYTES.min(record.data.len())],
                    ..*record
                };
                let reason = too_large(self.options.max_record_bytes);
                self.reject(&kept, &reason, TOO_LARGE_KIND, into).await
            }
            Verdict::Valid(_) if !into.raw => {
                self.skip();
                Ok(())
            }
            Verdict::Valid(event) => {
                let ctx = self.next_row();
                self.summary.appended += 1;
                let (date, event_type) = (event.event_date_days(), event.event_type());
                // "" where the paths name none: null stays for rows older than the column.
                let subject = self.subjects.resolve(event_type, event.payload);
                let subject = subject.as_deref().unwrap_or_default();
                self.raw
                    .append(date, event_type, |rows| {
                        rows.append(&event, Some(subject), record, ctx)
                    })
                    .await
            }
            Verdict::Invalid(rejection) => {
                let (reason, kind) = (rejection.to_string(), rejection.kind());
                self.reject(record, &reason, &kind, into).await
            }
        }
    }

    /// Adds the records one Kinesis record decodes to ([`kinesis::decode`]): its user
    /// records through the event rules, a corrupt aggregate to quarantine whole. `source`
    /// is the record's [`kinesis::source_name`]; `into` leaves out the tables that already
    /// hold the record.
    pub async fn push_kinesis(
        &mut self,
        record: &KinesisEventRecord,
        source: &str,
        into: Destinations,
    ) -> Result<Decoded> {
        let (parts, decoded) = kinesis::decode(record);
        for part in parts {
            match part {
                Part::Record { data, position } => {
                    let record = SourceRecord {
                        data,
                        source,
                        position: &position,
                    };
                    self.push_to(&record, into).await?;
                }
                Part::Corrupt {
                    data,
                    position,
                    reason,
                } => {
                    let record = SourceRecord {
                        data,
                        source,
                        position,
                    };
                    self.reject(&record, &reason, CORRUPT_AGGREGATE_KIND, into)
                        .await?;
                }
            }
        }
        Ok(decoded)
    }

    /// Adds every record of an event document, in document order, each with the lineage of
    /// its own shard. What the CLI ingests; the Lambda goes shard by shard with checkpoints.
    pub async fn push_kinesis_document(
        &mut self,
        event: &KinesisEvent,
        into: Destinations,
    ) -> Result<Decoded> {
        let mut total = Decoded::default();
        for record in &event.records {
            let (stream, shard) = kinesis::origin(record);
            let source = kinesis::source_name(stream, shard);
            let decoded = self.push_kinesis(record, &source, into).await?;
            total.user_records += decoded.user_records;
            total.bytes += decoded.bytes;
        }
        Ok(total)
    }

    /// Sends a record to `quarantine` with `reason`, without parsing it (a corrupt
    /// container, for instance); `kind` is the reason without its particulars, which the
    /// commit counts by.
    pub async fn reject(
        &mut self,
        record: &SourceRecord<'_>,
        reason: &str,
        kind: &str,
        into: Destinations,
    ) -> Result<()> {
        if !into.quarantine {
            self.skip();
            return Ok(());
        }
        let ctx = self.next_row();
        self.summary.quarantined += 1;
        match self.summary.reasons.get_mut(kind) {
            Some(n) => *n += 1,
            None => {
                self.summary.reasons.insert(kind.to_string(), 1);
            }
        }
        self.quarantine
            .append(ctx.ingest_date(), "", |rows| {
                rows.append(record, reason, ctx)
            })
            .await
    }

    fn next_row(&mut self) -> RowContext {
        let ctx = RowContext {
            ingested_at_micros: self.ingested_at_micros,
            ingest_seq: self.summary.read as i64,
        };
        self.summary.read += 1;
        ctx
    }

    fn skip(&mut self) {
        self.summary.read += 1;
        self.summary.already_committed += 1;
    }

    /// Writes what is left and finalizes every file, committing nothing yet.
    pub async fn prepare(mut self) -> Result<PreparedIngest> {
        let (raw, quarantine) = tokio::try_join!(
            self.raw.prepare(self.summary.appended),
            self.quarantine.prepare(self.summary.quarantined)
        )?;
        let quarantine = quarantine.with_reasons(self.summary.reasons.clone());
        self.summary.raw_files = raw.files();
        self.summary.quarantine_files = quarantine.files();
        Ok(PreparedIngest {
            raw,
            quarantine,
            raw_loads: self.raw_loads,
            quarantine_loads: self.quarantine_loads,
            summary: self.summary,
        })
    }

    /// Writes what is left and commits `raw`, then `quarantine`.
    pub async fn commit(self) -> Result<IngestSummary> {
        let prepared = self.prepare().await?;
        let mut summary = prepared.summary;
        let committed = |c: Option<Committed>| c.map(|c| c.version);
        summary.raw_version = committed(
            prepared
                .raw
                .commit(
                    &prepared.raw_loads,
                    CommitMetadata::records(summary.appended),
                )
                .await?,
        );
        summary.quarantine_version = committed(
            prepared
                .quarantine
                .commit(
                    &prepared.quarantine_loads,
                    CommitMetadata::records(summary.quarantined),
                )
                .await?,
        );
        Ok(summary)
    }
}

/// Which tables take a record: a redelivered Kinesis batch skips a table that already
/// holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Destinations {
    pub raw: bool,
    pub quarantine: bool,
}

impl Destinations {
    pub const ALL: Destinations = Destinations {
        raw: true,
        quarantine: true,
    };
}

/// Both tables' files, written and not yet committed.
pub struct PreparedIngest {
    pub raw: PreparedAppend,
    pub quarantine: PreparedAppend,
    /// The loads each table records with its commit.
    pub raw_loads: Vec<Transaction>,
    pub quarantine_loads: Vec<Transaction>,
    pub summary: IngestSummary,
}
