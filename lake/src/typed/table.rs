//! Where the typed tables live and how they are opened: one Delta table per event type,
//! under `typed/<sql name>-<hash>/` in the lake (a folder name any store accepts, whatever
//! the type is called), partitioned by `event_date`. The exact event type is a table
//! property.

use std::collections::HashMap;

use deltalake::kernel::StructType;
use deltalake::kernel::transaction::CommitProperties;
use deltalake::logstore::object_store::path::Path;
use deltalake::protocol::SaveMode;
use deltalake::{DeltaTable, DeltaTableError, TableProperty};
use futures::{StreamExt, TryStreamExt};
use sha2::{Digest, Sha256};
use url::Url;

use crate::DEFAULT_RETENTION_DAYS;
use crate::error::{LakeError, Result};
use crate::lake::{Lake, ensure_local_folder};
use crate::schema::EVENT_DATE;
use crate::typed::names::sql_name;
use crate::typed::schema::TypedSchema;

/// The folder under the lake root that holds the typed tables.
pub const TYPED_DIR: &str = "typed";
/// The table property naming the event type a typed table holds.
pub const EVENT_TYPE_PROPERTY: &str = "lakehouse.eventType";
/// Typed tables opened at once when all are.
const CONCURRENT_OPENS: usize = 16;
/// Characters of the SQL name kept in a folder name (the hash makes it unique).
const NAME_CHARS: usize = 64;

/// The folder of `event_type`'s typed table, unique per type and a name SQL, Glue and
/// any store take as it is: the type itself when it is such a name already (lower-case
/// letters, digits and `_`, at most 64 characters), else its SQL name (cut to 64) and a
/// hash of the exact type. The table's SQL name follows from the folder alone
/// ([`sql_table_name`]), so a query finds a table by one listing of the folders.
pub fn typed_folder(event_type: &str) -> String {
    let name = sql_name(event_type);
    if name == event_type && name.len() <= NAME_CHARS {
        return name;
    }
    let mut name = name;
    name.truncate(NAME_CHARS);
    let digest = Sha256::digest(event_type.as_bytes());
    let hash: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("{name}_{hash}")
}

/// The name a typed table in `folder` has in SQL, locally and in Athena.
pub fn sql_table_name(folder: &str) -> String {
    format!("{TYPED_PREFIX}{folder}")
}

/// What every typed table's SQL name starts with.
pub const TYPED_PREFIX: &str = "typed_";

/// One typed table, opened.
#[derive(Debug, Clone)]
pub struct TypedTable {
    pub event_type: String,
    pub delta: DeltaTable,
}

impl TypedTable {
    pub fn schema(&self) -> Result<TypedSchema> {
        let schema: StructType = self.delta.snapshot()?.schema().as_ref().clone();
        TypedSchema::from_delta(&schema)
    }

    /// Its name in SQL, locally and in Athena (`typed_<folder>`).
    pub fn sql_name(&self) -> String {
        sql_table_name(&typed_folder(&self.event_type))
    }
}

impl Lake {
    pub fn typed_url(&self, event_type: &str) -> Url {
        self.folder_url(&format!("{TYPED_DIR}/{}", typed_folder(event_type)))
    }

    /// `event_type`'s typed table, or `None` when it was never written. Creates nothing.
    pub async fn open_typed(&self, event_type: &str) -> Result<Option<TypedTable>> {
        let url = self.typed_url(event_type);
        if url.to_file_path().is_ok_and(|p| !p.exists()) {
            return Ok(None);
        }
        let mut delta = self.builder_at(url)?.build()?;
        match delta.load().await {
            Ok(()) => Ok(Some(checked(event_type, delta)?)),
            Err(DeltaTableError::NotATable(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// `event_type`'s typed table, created (envelope columns only) on first use.
    pub async fn open_or_create_typed(&self, event_type: &str) -> Result<TypedTable> {
        if let Some(table) = self.open_typed(event_type).await? {
            return Ok(table);
        }
        let url = self.typed_url(event_type);
        ensure_local_folder(&url)?;
        let delta = self.builder_at(url)?.build()?;
        let created = delta
            .create()
            .with_table_name(sql_table_name(&typed_folder(event_type)))
            .with_comment(format!(
                "event type {event_type:?}, one typed column per payload field"
            ))
            .with_columns(TypedSchema::default().delta_fields())
            .with_partition_columns([EVENT_DATE])
            .with_configuration([(EVENT_TYPE_PROPERTY, Some(event_type))])
            // Ours, not a Delta property: a table property any reader keeps and ignores.
            .with_raise_if_key_not_exists(false)
            .with_configuration_property(
                TableProperty::DeletedFileRetentionDuration,
                Some(format!("interval {DEFAULT_RETENTION_DAYS} days")),
            )
            .with_save_mode(SaveMode::ErrorIfExists)
            // As for the lake's other tables: losing the race means opening theirs.
            .with_commit_properties(CommitProperties::default().with_max_retries(0))
            .await;
        match created {
            Ok(delta) => checked(event_type, delta),
            Err(e) => match self.open_typed(event_type).await? {
                Some(table) => Ok(table),
                None => Err(e.into()),
            },
        }
    }

    /// The folders of the lake's typed tables (one listing), sorted.
    pub async fn typed_folders(&self) -> Result<Vec<String>> {
        let store = self.store_for(self.root())?;
        let listing = store
            .list_with_delimiter(Some(&Path::from(TYPED_DIR)))
            .await;
        let prefixes = match listing {
            Ok(listing) => listing.common_prefixes,
            Err(deltalake::ObjectStoreError::NotFound { .. }) => Vec::new(),
            Err(e) => return Err(DeltaTableError::from(e).into()),
        };
        let mut folders: Vec<String> = prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_string))
            .collect();
        folders.sort();
        Ok(folders)
    }

    /// The typed table in `folder` (one of [`Lake::typed_folders`]); `None` when no table
    /// was committed there (a creator stopped before its first commit).
    pub async fn open_typed_folder(&self, folder: &str) -> Result<Option<TypedTable>> {
        let url = self.folder_url(&format!("{TYPED_DIR}/{folder}"));
        let mut delta = self.builder_at(url)?.build()?;
        match delta.load().await {
            Ok(()) => {}
            Err(DeltaTableError::NotATable(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        let event_type = event_type_of(&delta)?;
        if typed_folder(&event_type) != folder {
            return Err(LakeError::ContractMismatch {
                table: "typed",
                location: delta.table_url().to_string(),
                reason: format!("holds event type {event_type:?}, whose folder is not {folder}"),
            });
        }
        Ok(Some(checked(&event_type, delta)?))
    }

    /// Every typed table of the lake, in event-type order.
    pub async fn typed_tables(&self) -> Result<Vec<TypedTable>> {
        // Each open reads a log: several at once, as on S3 each is a few round trips.
        let folders = self.typed_folders().await?;
        let opened: Vec<Option<TypedTable>> = futures::stream::iter(&folders)
            .map(|folder| self.open_typed_folder(folder))
            .buffer_unordered(CONCURRENT_OPENS)
            .try_collect()
            .await?;
        let mut tables: Vec<TypedTable> = opened.into_iter().flatten().collect();
        tables.sort_by(|a, b| a.event_type.cmp(&b.event_type));
        Ok(tables)
    }
}

/// Each typed table with the name SQL knows it by, in Athena and locally.
pub fn named(tables: Vec<TypedTable>) -> Vec<(String, TypedTable)> {
    tables.into_iter().map(|t| (t.sql_name(), t)).collect()
}

fn event_type_of(delta: &DeltaTable) -> Result<String> {
    let configuration: HashMap<String, String> =
        delta.snapshot()?.metadata().configuration().clone();
    configuration
        .get(EVENT_TYPE_PROPERTY)
        .cloned()
        .ok_or_else(|| LakeError::ContractMismatch {
            table: "typed",
            location: delta.table_url().to_string(),
            reason: format!("no table property {EVENT_TYPE_PROPERTY}"),
        })
}

/// Refuses a table in a typed folder that is not the typed table of `event_type`.
fn checked(event_type: &str, delta: DeltaTable) -> Result<TypedTable> {
    let mismatch = |reason: String| LakeError::ContractMismatch {
        table: "typed",
        location: delta.table_url().to_string(),
        reason,
    };
    let found = event_type_of(&delta)?;
    if found != event_type {
        return Err(mismatch(format!(
            "holds event type {found:?}, not {event_type:?}"
        )));
    }
    let partitions = delta.snapshot()?.metadata().partition_columns().to_vec();
    if partitions != [EVENT_DATE] {
        return Err(mismatch(format!(
            "partitioned by {partitions:?}, expected [{EVENT_DATE:?}]"
        )));
    }
    let table = TypedTable {
        event_type: found,
        delta,
    };
    table.schema()?;
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_are_safe_and_unique_per_type() {
        assert_eq!(typed_folder("payment"), "payment");
        let a = typed_folder("payment:order/../x");
        assert!(a.starts_with("payment_order____x_"), "{a}");
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
        // Types that read alike in SQL stay apart.
        assert_ne!(typed_folder("a-b"), typed_folder("a_b"));
        assert_ne!(typed_folder("Pay"), typed_folder("pay"));
        assert!(typed_folder(&"x".repeat(5000)).len() <= NAME_CHARS + 17);
        assert_eq!(sql_table_name(&typed_folder("pay")), "typed_pay");
    }
}
