//! Keeping the typed tables equal to staging: each typed table holds, for every live
//! staging file of its event type, one file of the same rows converted
//! ([`crate::typed::convert`]), tagged with the staging file it came from. A run compares
//! the two file sets and commits the difference per type: the files of staging files that
//! are new, and the removal of those whose staging file is gone (rewritten by a merge, a
//! sweep, an optimize or an erasure). The typed tables therefore hold one row per
//! `event_uuid` exactly when staging does, whatever changed it.
//!
//! Exactly once: each commit records the staging version it mirrors under the typed app
//! id ([`typed_app_id`]); two runs at once conflict on it and the loser plans again from
//! what the winner left. A new field's column is a metadata action in the same commit,
//! which every concurrent commit conflicts with.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use deltalake::arrow::compute::concat_batches;
use deltalake::kernel::{Action, Add, MetadataExt, StructType, Transaction};
use deltalake::parquet::basic::Compression;
use deltalake::parquet::file::properties::WriterProperties;
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::{DeltaTable, ObjectStore};
use futures::{StreamExt, TryStreamExt};
use serde::Serialize;

use crate::app_ids::typed_app_id;
use crate::commit::{Commit, CommitMetadata, TypedCommit};
use crate::error::{LakeError, Result};
use crate::files::{live_files, read_file, remove_of};
use crate::lake::Lake;
use crate::log::txn_u64;
use crate::schema::{EVENT_DATE, EVENT_TYPE, Table};
use crate::typed::convert::convert;
use crate::typed::infer::KindCounts;
use crate::typed::schema::{TypedSchema, staging_columns};
use crate::typed::table::TypedTable;
use crate::write::{FileWriter, PartitionKey};

/// The tag on a typed file naming the staging file it holds the rows of.
pub const SOURCE_TAG: &str = "lakehouse.source";
/// The tag on a typed file counting its rescued values per field (a JSON object).
pub const RESCUED_TAG: &str = "lakehouse.rescued";
/// Times a type's mirror plans again after losing to a concurrent one.
const MAX_TRIES: u32 = 10;

/// What to mirror.
#[derive(Clone, Copy)]
pub struct MirrorOptions<'a> {
    /// Event types mirrored at once.
    pub concurrency: usize,
    /// Only the types this accepts (a fanned-out compaction's range of types).
    pub only: &'a (dyn Fn(&str) -> bool + Sync),
}

impl Default for MirrorOptions<'_> {
    fn default() -> Self {
        MirrorOptions {
            concurrency: 8,
            only: &|_| true,
        }
    }
}

/// What one run did, over all types.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MirrorReport {
    /// The staging version mirrored.
    pub staging_version: u64,
    /// Typed tables committed to.
    pub commits: u64,
    pub rows: u64,
    pub files_added: u64,
    pub files_removed: u64,
    /// Values rescued in the rows added, per event type and field.
    pub rescued: BTreeMap<String, BTreeMap<String, u64>>,
    /// Columns added, per event type.
    pub columns_added: BTreeMap<String, Vec<String>>,
    /// Plans made again after a concurrent commit.
    pub replans: u32,
}

impl MirrorReport {
    fn note(&mut self, event_type: &str, done: TypeDone) {
        self.replans += done.replans;
        let Some(commit) = done.commit else { return };
        self.commits += 1;
        self.rows += commit.rows;
        self.files_added += commit.files_added;
        self.files_removed += commit.files_removed;
        if !commit.rescued.is_empty() {
            self.rescued.insert(event_type.to_string(), commit.rescued);
        }
        if !commit.columns_added.is_empty() {
            self.columns_added
                .insert(event_type.to_string(), commit.columns_added);
        }
    }

    pub fn rescued_total(&self) -> u64 {
        self.rescued.values().flat_map(|f| f.values()).sum()
    }
}

/// Brings every typed table to the staging version `staging` holds.
pub async fn mirror(
    lake: &Lake,
    staging: &DeltaTable,
    options: MirrorOptions<'_>,
) -> Result<MirrorReport> {
    let staging_version = staging.version().unwrap_or(0);
    let staging_id = staging.snapshot()?.metadata().id().to_string();
    let mut by_type: HashMap<String, Vec<Add>> = HashMap::new();
    for add in live_files(staging)? {
        let Some(Some(event_type)) = add.partition_values.get(EVENT_TYPE).cloned() else {
            continue;
        };
        by_type.entry(event_type).or_default().push(add);
    }
    let mut existing: HashMap<String, TypedTable> = lake
        .typed_tables()
        .await?
        .into_iter()
        .map(|t| (t.event_type.clone(), t))
        .collect();
    let mut types: Vec<String> = by_type.keys().chain(existing.keys()).cloned().collect();
    types.sort();
    types.dedup();
    types.retain(|t| (options.only)(t));

    // Each type on a task of its own: converting is CPU work, and types are independent.
    let store = staging.object_store();
    let jobs = types.into_iter().map(|event_type| {
        let job = TypeJob {
            lake: lake.clone(),
            store: store.clone(),
            staging_id: staging_id.clone(),
            staging_version,
            files: by_type.remove(&event_type).unwrap_or_default(),
            event_type,
        };
        let table = existing.remove(&job.event_type);
        let name = job.event_type.clone();
        async move {
            let done = tokio::spawn(async move { job.run(table).await })
                .await
                .map_err(|e| LakeError::ReadFile {
                    path: format!("typed table of {name:?}"),
                    error: e.to_string(),
                })??;
            Ok::<_, LakeError>((name, done))
        }
    });
    let mut report = MirrorReport {
        staging_version,
        ..MirrorReport::default()
    };
    let mut done = futures::stream::iter(jobs).buffer_unordered(options.concurrency.max(1));
    while let Some((event_type, type_done)) = done.try_next().await? {
        report.note(&event_type, type_done);
    }
    Ok(report)
}

struct TypeJob {
    lake: Lake,
    /// Staging's store.
    store: Arc<dyn ObjectStore>,
    staging_id: String,
    staging_version: u64,
    event_type: String,
    /// Staging's live files of this type.
    files: Vec<Add>,
}

#[derive(Default)]
struct TypeDone {
    commit: Option<TypedCommit>,
    replans: u32,
}

impl TypeJob {
    async fn run(&self, table: Option<TypedTable>) -> Result<TypeDone> {
        let mut table = match table {
            Some(t) => t,
            None if self.files.is_empty() => return Ok(TypeDone::default()),
            None => self.lake.open_or_create_typed(&self.event_type).await?,
        };
        let mut done = TypeDone::default();
        loop {
            match self.once(&table).await {
                Ok(commit) => {
                    done.commit = commit;
                    return Ok(done);
                }
                Err(e) if e.committed_nothing() && done.replans + 1 < MAX_TRIES => {
                    done.replans += 1;
                    table.delta.update_incremental(None).await?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// One plan and commit; `None` when the table already mirrors this staging.
    async fn once(&self, table: &TypedTable) -> Result<Option<TypedCommit>> {
        let app_id = typed_app_id(&self.staging_id);
        if txn_u64(&table.delta, &app_id)
            .await?
            .is_some_and(|v| v >= self.staging_version)
        {
            return Ok(None);
        }
        let typed_files = live_files(&table.delta)?;
        let staged: HashSet<&str> = self.files.iter().map(|a| a.path.as_str()).collect();
        let mirrored: HashSet<&str> = typed_files.iter().filter_map(source_of).collect();
        let removes: Vec<&Add> = typed_files
            .iter()
            .filter(|a| source_of(a).is_none_or(|s| !staged.contains(s)))
            .collect();
        let mut adds: Vec<&Add> = self
            .files
            .iter()
            .filter(|a| !mirrored.contains(a.path.as_str()))
            .collect();
        if removes.is_empty() && adds.is_empty() {
            return Ok(None);
        }
        adds.sort_by(|a, b| a.path.cmp(&b.path));

        let before = table.schema()?;
        let new_commit = || TypedCommit {
            staging_version: self.staging_version,
            files_removed: removes.len() as u64,
            ..TypedCommit::default()
        };
        let mut schema = before.clone();
        let mut commit = new_commit();
        let mut kinds = BTreeMap::new();
        let mut written = self
            .write_files(table, &adds, &mut schema, &mut commit, &mut kinds)
            .await?;
        // A table's first build types each field by all its rows, not by the first ones: so
        // removing a typed table retypes it (docs/catalog.md). Written again only when a
        // value was rescued that the types of all rows take.
        let first_build = typed_files.is_empty() && before.columns.is_empty();
        let retyped = (first_build && !commit.rescued.is_empty())
            .then(|| schema.retyped(&kinds))
            .flatten();
        if let Some(retyped) = retyped {
            crate::log::discard_files(&table.delta, &written).await;
            (schema, commit) = (retyped, new_commit());
            written = self
                .write_files(table, &adds, &mut schema, &mut commit, &mut BTreeMap::new())
                .await?;
        }
        commit.columns_added = (schema.columns.get(before.columns.len()..))
            .unwrap_or_default()
            .iter()
            .map(|col| format!("{} {}", col.column, col.field_type.name()))
            .collect();
        let mut actions: Vec<Action> = Vec::with_capacity(written.len() + removes.len() + 1);
        actions.extend(written.into_iter().map(Action::Add));
        actions.extend(removes.iter().map(|a| Action::Remove(remove_of(a, true))));
        if schema != before {
            let fields = StructType::try_new(schema.delta_fields())
                .map_err(deltalake::DeltaTableError::from)?;
            let metadata = table
                .delta
                .snapshot()?
                .metadata()
                .clone()
                .with_schema(&fields)
                .map_err(deltalake::DeltaTableError::from)?;
            actions.push(Action::Metadata(metadata));
        }
        let operation = DeltaOperation::Write {
            mode: SaveMode::Append,
            partition_by: Some(vec![EVENT_DATE.to_string()]),
            predicate: None,
        };
        Commit::new(operation, actions)
            .with_transaction(Transaction::new(&app_id, self.staging_version as i64))
            .with_metadata(CommitMetadata {
                typed: Some(commit.clone()),
                ..CommitMetadata::default()
            })
            .reading_table()
            .execute(&table.delta)
            .await?;
        Ok(Some(commit))
    }

    /// Converts and writes one typed file per staging file in `adds`, evolving `schema`
    /// and counting the kinds of its values into `kinds`; on failure, deletes the files
    /// it wrote.
    async fn write_files(
        &self,
        table: &TypedTable,
        adds: &[&Add],
        schema: &mut TypedSchema,
        commit: &mut TypedCommit,
        kinds: &mut BTreeMap<String, KindCounts>,
    ) -> Result<Vec<Add>> {
        let mut written = Vec::with_capacity(adds.len());
        let columns = staging_columns();
        for add in adds {
            let file = async {
                let batches =
                    read_file(self.store.clone(), Table::Staging, add, Some(&columns)).await?;
                let before = std::mem::take(schema);
                let (after, file) =
                    tokio::task::spawn_blocking(move || convert_file(before, &batches))
                        .await
                        .map_err(|e| LakeError::ReadFile {
                            path: add.path.clone(),
                            error: e.to_string(),
                        })??;
                *schema = after;
                absorb_kinds(kinds, &file.kinds);
                let rows = file.batch.num_rows() as u64;
                let writer = FileWriter::for_schema(
                    "typed",
                    &table.delta,
                    file.batch.schema(),
                    properties(),
                )?;
                let key = PartitionKey {
                    date: crate::files::parse_partition_date(add, EVENT_DATE)?.unwrap_or(0),
                    name: "".into(),
                };
                let mut files = writer.write(&key, file.batch).await?;
                for written in &mut files {
                    let tags = written.tags.get_or_insert_with(Default::default);
                    tags.insert(SOURCE_TAG.to_string(), Some(add.path.clone()));
                    if !file.rescued.is_empty() {
                        let counts = serde_json::to_string(&file.rescued).unwrap_or_default();
                        tags.insert(RESCUED_TAG.to_string(), Some(counts));
                    }
                }
                for (field, n) in file.rescued {
                    *commit.rescued.entry(field).or_default() += n;
                }
                commit.rows += rows;
                Ok::<_, LakeError>(files)
            }
            .await;
            match file {
                Ok(files) => {
                    commit.files_added += files.len() as u64;
                    written.extend(files);
                }
                Err(e) => {
                    crate::log::discard_files(&table.delta, &written).await;
                    return Err(e);
                }
            }
        }
        Ok(written)
    }
}

/// One staging file's rows converted, in the file's final schema.
struct ConvertedFile {
    batch: deltalake::arrow::array::RecordBatch,
    rescued: BTreeMap<String, u64>,
    kinds: BTreeMap<String, KindCounts>,
}

/// Converts a staging file's batches, evolving `schema`; returns it with the rows.
fn convert_file(
    mut schema: TypedSchema,
    batches: &[deltalake::arrow::array::RecordBatch],
) -> Result<(TypedSchema, ConvertedFile)> {
    let mut converted = Vec::with_capacity(batches.len());
    let (mut rescued, mut kinds) = (BTreeMap::new(), BTreeMap::<String, KindCounts>::new());
    for batch in batches {
        let c = convert(&mut schema, batch)?;
        for (field, n) in c.rescued {
            *rescued.entry(field).or_default() += n;
        }
        absorb_kinds(&mut kinds, &c.kinds);
        converted.push(c.batch);
    }
    // Earlier batches were converted before later ones added columns: all take the
    // file's final schema, nulls where a batch had no column yet.
    let arrow = schema.arrow_schema();
    let aligned = converted
        .iter()
        .map(|b| widen(b, &arrow))
        .collect::<Result<Vec<_>>>()?;
    let batch = concat_batches(&arrow, &aligned)?;
    Ok((
        schema,
        ConvertedFile {
            batch,
            rescued,
            kinds,
        },
    ))
}

/// Adds `more`'s counts, field by field, to `kinds`.
fn absorb_kinds(kinds: &mut BTreeMap<String, KindCounts>, more: &BTreeMap<String, KindCounts>) {
    for (key, counts) in more {
        kinds.entry(key.clone()).or_default().absorb(counts);
    }
}

/// The staging file a typed file holds the rows of.
pub fn source_of(add: &Add) -> Option<&str> {
    add.tags.as_ref()?.get(SOURCE_TAG)?.as_deref()
}

/// Rescued values per field a typed file holds, from its tag.
pub fn rescued_of(add: &Add) -> BTreeMap<String, u64> {
    add.tags
        .as_ref()
        .and_then(|t| t.get(RESCUED_TAG).cloned().flatten())
        .and_then(|json| serde_json::from_str(&json).ok())
        .unwrap_or_default()
}

/// `batch` with the columns of `schema` it lacks, as nulls (columns only ever appended).
fn widen(
    batch: &deltalake::arrow::array::RecordBatch,
    schema: &deltalake::arrow::datatypes::SchemaRef,
) -> Result<deltalake::arrow::array::RecordBatch> {
    let mut columns = batch.columns().to_vec();
    for field in schema.fields().iter().skip(columns.len()) {
        columns.push(deltalake::arrow::array::new_null_array(
            field.data_type(),
            batch.num_rows(),
        ));
    }
    Ok(deltalake::arrow::array::RecordBatch::try_new(
        schema.clone(),
        columns,
    )?)
}

/// Typed files: snappy, statistics on every column (analysts filter on payload fields).
fn properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build()
}
