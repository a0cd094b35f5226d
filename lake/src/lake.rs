//! A lake is a root location (local folder, `file://` or `s3://bucket/prefix`) holding the
//! three tables as `<root>/raw`, `<root>/staging` and `<root>/quarantine`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use deltalake::kernel::StructField;
use deltalake::kernel::transaction::CommitProperties;
use deltalake::protocol::SaveMode;
use deltalake::{DeltaTable, DeltaTableBuilder, DeltaTableError, ObjectStore, TableProperty};
use url::Url;

use crate::error::{LakeError, Result};
use crate::schema::{ADDED_COLUMNS, RawLayout, STATS_COLUMNS, Table};

/// Days of history `vacuum` keeps for time travel unless told otherwise.
pub const DEFAULT_RETENTION_DAYS: u32 = 7;

/// The size optimize bin-packs files to, and below which `status` counts a file as small.
pub const DEFAULT_TARGET_FILE_SIZE: u64 = 128 << 20;

/// How long `table` keeps removed files for time travel (`delta.deletedFileRetentionDuration`,
/// [`DEFAULT_RETENTION_DAYS`] when unset).
pub fn deleted_file_retention(table: &DeltaTable) -> Result<chrono::Duration> {
    Ok(table
        .snapshot()?
        .table_config()
        .deleted_file_retention_duration
        .and_then(|d| chrono::Duration::from_std(d).ok())
        .unwrap_or_else(|| chrono::Duration::days(i64::from(DEFAULT_RETENTION_DAYS))))
}

#[derive(Clone, Debug)]
pub struct Lake {
    root: Url,
    /// Storage settings beyond the environment (delta-rs keys, e.g. `aws_endpoint_url`).
    options: HashMap<String, String>,
    /// An object store given rather than derived from `root` (see [`Lake::in_store`]).
    store: Option<Arc<dyn ObjectStore>>,
    /// How `raw` is partitioned if this lake creates it.
    raw_layout: RawLayout,
}

impl Lake {
    /// Parses a lake location: a local path, `file://…` or `s3://bucket/prefix`. Nothing is
    /// created: a local folder appears when a table is first written ([`Lake::open`]).
    pub fn parse(uri: &str) -> Result<Lake> {
        let invalid = |reason: String| LakeError::InvalidLake {
            uri: uri.to_string(),
            reason,
        };
        let mut root = if uri.contains("://") {
            let url = Url::parse(uri).map_err(|e| invalid(e.to_string()))?;
            match url.scheme() {
                "s3" | "s3a" => {
                    if url.host_str().is_none_or(str::is_empty) {
                        return Err(invalid("an s3:// location needs a bucket".into()));
                    }
                    url
                }
                "file" => {
                    let path = url
                        .to_file_path()
                        .map_err(|_| invalid("not a local file URL".into()))?;
                    local_root(&path).map_err(invalid)?
                }
                other => return Err(invalid(format!("unsupported scheme {other}://"))),
            }
        } else {
            if uri.is_empty() {
                return Err(invalid("empty location".into()));
            }
            local_root(Path::new(uri)).map_err(invalid)?
        };
        if !root.path().ends_with('/') {
            root.set_path(&format!("{}/", root.path()));
        }
        Ok(Lake {
            root,
            options: HashMap::new(),
            store: None,
            raw_layout: RawLayout::default(),
        })
    }

    /// A lake at `root` (e.g. `memory:///lake/`) in `store`, whose `/` is the root of
    /// `root`'s scheme: for an object store of one's own making, such as the scale
    /// simulation's in-memory store with S3-like latency.
    pub fn in_store(mut root: Url, store: Arc<dyn ObjectStore>) -> Lake {
        if !root.path().ends_with('/') {
            root.set_path(&format!("{}/", root.path()));
        }
        Lake {
            root,
            options: HashMap::new(),
            store: Some(store),
            raw_layout: RawLayout::default(),
        }
    }

    /// The layout `raw` gets if it is created through this lake. An existing `raw` keeps
    /// its own: every writer follows the table's metadata.
    pub fn with_raw_layout(mut self, layout: RawLayout) -> Lake {
        self.raw_layout = layout;
        self
    }

    /// Adds storage settings, which win over the environment: for a process that talks to
    /// two endpoints, or to configure a lake without environment variables.
    pub fn with_storage_options<K: Into<String>, V: Into<String>>(
        mut self,
        options: impl IntoIterator<Item = (K, V)>,
    ) -> Lake {
        self.options
            .extend(options.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    pub fn root(&self) -> &Url {
        &self.root
    }

    pub fn table_url(&self, table: Table) -> Url {
        self.folder_url(table.name())
    }

    /// An object store for another location with this lake's storage settings: inputs in
    /// another bucket (a backfill's archives), with the same endpoint and credentials.
    pub fn store_for(&self, url: &Url) -> Result<Arc<dyn ObjectStore>> {
        Ok(deltalake::logstore::store_for(url, self.storage_options())?)
    }

    fn builder(&self, table: Table) -> Result<DeltaTableBuilder> {
        self.builder_at(self.table_url(table))
    }

    /// A folder under the lake root, as a table location (`folder` without slashes at
    /// either end).
    pub(crate) fn folder_url(&self, folder: &str) -> Url {
        let mut url = self.root.clone();
        url.set_path(&format!("{}{folder}/", self.root.path()));
        url
    }

    pub(crate) fn builder_at(&self, url: Url) -> Result<DeltaTableBuilder> {
        let builder = DeltaTableBuilder::from_url(url.clone())?;
        let builder = match &self.store {
            Some(store) => builder.with_storage_backend(store.clone(), url),
            None => builder,
        };
        Ok(builder.with_storage_options(self.storage_options()))
    }

    /// A local table folder that does not exist holds no table. Readers answer that
    /// without asking delta-rs, whose local store would want the folder: reads never write.
    fn missing_locally(&self, table: Table) -> bool {
        self.table_url(table)
            .to_file_path()
            .is_ok_and(|path| !path.exists())
    }

    /// Opens a table at its latest version, creating it on first use: for writers only.
    pub async fn open(&self, table: Table) -> Result<DeltaTable> {
        ensure_local_folder(&self.table_url(table))?;
        let mut delta = self.builder(table)?.build()?;
        match delta.load().await {
            Ok(()) => {
                check_contract(table, &delta)?;
                self.add_missing_columns(table, delta).await
            }
            Err(DeltaTableError::NotATable(_)) => self.create(table, delta).await,
            Err(e) => Err(e.into()),
        }
    }

    /// Opens an existing table, or `None` when it has never been written. Creates nothing.
    pub async fn open_existing(&self, table: Table) -> Result<Option<DeltaTable>> {
        if self.missing_locally(table) {
            return Ok(None);
        }
        let mut delta = self.builder(table)?.build()?;
        match delta.load().await {
            Ok(()) => {
                check_contract(table, &delta)?;
                Ok(Some(delta))
            }
            Err(DeltaTableError::NotATable(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Opens a table at an exact version (time travel). Creates nothing.
    pub async fn open_version(&self, table: Table, version: u64) -> Result<DeltaTable> {
        if self.missing_locally(table) {
            return Err(LakeError::NoSuchVersion {
                table: table.name(),
                what: format!("version {version} (the table does not exist)"),
            });
        }
        let mut delta = self.builder(table)?.build()?;
        delta.load_version(version).await.map_err(|e| match e {
            DeltaTableError::NotATable(_) | DeltaTableError::InvalidVersion(_) => {
                LakeError::NoSuchVersion {
                    table: table.name(),
                    what: format!("version {version} ({e})"),
                }
            }
            e => e.into(),
        })?;
        Ok(delta)
    }

    /// Opens a table as it was at an instant: its latest version committed at or before
    /// it. `None` when the table did not exist yet. Creates nothing.
    pub async fn open_as_of(&self, table: Table, at: DateTime<Utc>) -> Result<Option<DeltaTable>> {
        if self.missing_locally(table) {
            return Ok(None);
        }
        let mut delta = self.builder(table)?.build()?;
        match delta.load_with_datetime(at).await {
            Ok(()) => Ok(Some(delta)),
            Err(DeltaTableError::NotATable(_)) => Ok(None),
            Err(DeltaTableError::InvalidDateTimeString { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Adds the columns the contract gained since `delta` was created ([`ADDED_COLUMNS`]),
    /// nullable, in one metadata commit: its files stay readable (their rows read the new
    /// columns as null), and every commit planned before it conflicts and re-plans.
    pub async fn add_missing_columns(&self, table: Table, delta: DeltaTable) -> Result<DeltaTable> {
        let missing = missing_columns(table, &delta)?;
        if missing.is_empty() {
            return Ok(delta);
        }
        let added = delta
            .clone()
            .add_columns()
            .with_fields(missing)
            .with_commit_properties(CommitProperties::default().with_max_retries(0))
            .await;
        match added {
            Ok(t) => Ok(t),
            // Another writer added them first: use its version.
            Err(e) => match self.open_existing(table).await? {
                Some(t) if missing_columns(table, &t)?.is_empty() => Ok(t),
                _ => Err(e.into()),
            },
        }
    }

    fn partition_columns_for(&self, table: Table) -> &'static [&'static str] {
        match table {
            Table::Raw => self.raw_layout.partition_columns(),
            _ => table.partition_columns(),
        }
    }

    async fn create(&self, table: Table, delta: DeltaTable) -> Result<DeltaTable> {
        let retention = format!("interval {DEFAULT_RETENTION_DAYS} days");
        let created = delta
            .create()
            .with_table_name(table.name())
            .with_comment(table.description())
            .with_columns(table.delta_columns())
            .with_partition_columns(self.partition_columns_for(table).iter().copied())
            .with_configuration_property(
                TableProperty::DataSkippingNumIndexedCols,
                Some(STATS_COLUMNS.to_string()),
            )
            .with_configuration_property(
                TableProperty::DeletedFileRetentionDuration,
                Some(retention),
            )
            .with_save_mode(SaveMode::ErrorIfExists)
            // No retries: when a concurrent writer creates the table first, a retried
            // create would land as version 1, a second metadata action that fails every
            // append planned on version 0. Losing the race means opening theirs, below.
            .with_commit_properties(CommitProperties::default().with_max_retries(0))
            .await;
        match created {
            Ok(t) => Ok(t),
            // Another writer created it first: use theirs.
            Err(e) => match self.open_existing(table).await? {
                Some(t) => Ok(t),
                None => Err(e.into()),
            },
        }
    }
}

/// delta-rs wants a local table folder to exist before it will create the table.
pub(crate) fn ensure_local_folder(url: &Url) -> Result<()> {
    if let Ok(path) = url.to_file_path() {
        std::fs::create_dir_all(&path).map_err(|e| LakeError::InvalidLake {
            uri: url.to_string(),
            reason: format!("cannot create folder: {e}"),
        })?;
    }
    Ok(())
}

fn local_root(path: &Path) -> std::result::Result<Url, String> {
    let abs = std::path::absolute(path).map_err(|e| e.to_string())?;
    // Resolves links where the folder exists; a lake not written yet keeps its given path.
    let abs = std::fs::canonicalize(&abs).unwrap_or(abs);
    if abs.is_file() {
        return Err(format!("{} is a file, not a folder", abs.display()));
    }
    Url::from_directory_path(&abs).map_err(|_| format!("not an absolute path: {}", abs.display()))
}

impl Lake {
    /// Storage settings beyond what delta-rs reads from the standard AWS environment.
    fn storage_options(&self) -> HashMap<String, String> {
        let mut options = self.options.clone();
        let endpoint = options
            .get("aws_endpoint_url")
            .cloned()
            .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok());
        // A plain-HTTP endpoint (an emulator or a local gateway) must be allowed explicitly.
        if endpoint.is_some_and(|u| u.starts_with("http://")) {
            options
                .entry("allow_http".to_string())
                .or_insert_with(|| "true".to_string());
        }
        options
    }
}

/// The columns of [`ADDED_COLUMNS`] the table lacks.
fn missing_columns(table: Table, delta: &DeltaTable) -> Result<Vec<StructField>> {
    let schema = delta.snapshot()?.schema();
    Ok(table
        .delta_columns()
        .into_iter()
        .filter(|f| ADDED_COLUMNS.contains(&f.name().as_str()))
        .filter(|f| schema.field(f.name()).is_none())
        .collect())
}

/// Refuses to write into a table created by someone else with another layout.
fn check_contract(table: Table, delta: &DeltaTable) -> Result<()> {
    let snapshot = delta.snapshot()?;
    let metadata = snapshot.metadata();
    let mismatch = |reason: String| LakeError::ContractMismatch {
        table: table.name(),
        location: delta.table_url().to_string(),
        reason,
    };
    let partitions: Vec<&str> = metadata
        .partition_columns()
        .iter()
        .map(String::as_str)
        .collect();
    if !table.accepts_partitioning(&partitions) {
        return Err(mismatch(format!(
            "partitioned by {partitions:?}, expected {:?}",
            table.partition_columns()
        )));
    }
    let schema = snapshot.schema();
    for field in table.delta_columns() {
        match schema.field(field.name()) {
            Some(f) if f.data_type() == field.data_type() => {}
            Some(f) => {
                return Err(mismatch(format!(
                    "column {} is {:?}, expected {:?}",
                    field.name(),
                    f.data_type(),
                    field.data_type()
                )));
            }
            // An older table: writers add it when they open the table.
            None if ADDED_COLUMNS.contains(&field.name().as_str()) => {}
            None => return Err(mismatch(format!("column {} is missing", field.name()))),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_local_and_s3_locations() {
        let dir = std::env::temp_dir().join("lakehouse-lake-parse-test");
        let lake = Lake::parse(dir.to_str().unwrap()).unwrap();
        assert_eq!(lake.root().scheme(), "file");
        assert!(lake.table_url(Table::Raw).path().ends_with("/raw/"));

        let lake = Lake::parse("s3://bucket/some/prefix").unwrap();
        assert_eq!(
            lake.table_url(Table::Staging).as_str(),
            "s3://bucket/some/prefix/staging/"
        );
        assert!(Lake::parse("s3:///nobucket").is_err());
        assert!(Lake::parse("ftp://x/y").is_err());
        assert!(Lake::parse("").is_err());
    }
}
