//! Where the typed tables live and how they are opened: one Delta table per event type,
//! under `typed/<sql name>-<hash>/` in the lake (a folder name any store accepts, whatever
//! the type is called), partitioned by `event_date`. The exact event type is a table
//! property.

use std::collections::{BTreeSet, HashMap};

use deltalake::kernel::StructType;
use deltalake::kernel::transaction::CommitProperties;
use deltalake::logstore::object_store::path::Path;
use deltalake::protocol::SaveMode;
use deltalake::{DeltaTable, DeltaTableError, TableProperty};
use sha2::{Digest, Sha256};
use url::Url;

use crate::DEFAULT_RETENTION_DAYS;
use crate::error::{LakeError, Result};
use crate::lake::Lake;
use crate::schema::{EVENT_DATE, Table};
use crate::typed::names::{sql_name, unique};
use crate::typed::schema::TypedSchema;

/// The folder under the lake root that holds the typed tables.
pub const TYPED_DIR: &str = "typed";
/// The table property naming the event type a typed table holds.
pub const EVENT_TYPE_PROPERTY: &str = "lakehouse.eventType";
/// Characters of the SQL name kept in a folder name (the hash makes it unique).
const NAME_CHARS: usize = 64;

/// The folder of `event_type`'s typed table: readable, and unique per type.
pub fn typed_folder(event_type: &str) -> String {
    let mut name = sql_name(event_type);
    name.truncate(NAME_CHARS);
    let digest = Sha256::digest(event_type.as_bytes());
    let hash: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("{name}-{hash}")
}

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

    /// The name its Glue table is given, before clashes between types are resolved.
    pub fn sql_name(&self) -> String {
        sql_name(&self.event_type)
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
        if let Ok(path) = url.to_file_path() {
            std::fs::create_dir_all(&path).map_err(|e| LakeError::InvalidLake {
                uri: url.to_string(),
                reason: format!("cannot create folder: {e}"),
            })?;
        }
        let delta = self.builder_at(url)?.build()?;
        let created = delta
            .create()
            .with_table_name(sql_name(event_type))
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

    /// Every typed table of the lake, in event-type order.
    pub async fn typed_tables(&self) -> Result<Vec<TypedTable>> {
        let store = self.store_for(self.root())?;
        let listing = store
            .list_with_delimiter(Some(&Path::from(TYPED_DIR)))
            .await;
        let folders = match listing {
            Ok(listing) => listing.common_prefixes,
            Err(deltalake::ObjectStoreError::NotFound { .. }) => Vec::new(),
            Err(e) => return Err(DeltaTableError::from(e).into()),
        };
        let mut tables = Vec::with_capacity(folders.len());
        for folder in folders {
            let Some(name) = folder.filename() else {
                continue;
            };
            let url = self.folder_url(&format!("{TYPED_DIR}/{name}"));
            let mut delta = self.builder_at(url)?.build()?;
            match delta.load().await {
                Ok(()) => {}
                // A folder a creator left before its first commit.
                Err(DeltaTableError::NotATable(_)) => continue,
                Err(e) => return Err(e.into()),
            }
            let event_type = event_type_of(&delta)?;
            tables.push(checked(&event_type, delta)?);
        }
        tables.sort_by(|a, b| a.event_type.cmp(&b.event_type));
        Ok(tables)
    }
}

/// Each typed table with the name SQL knows it by, in Athena and locally:
/// `typed_<event type as SQL>`, `_2`… on a clash, in event-type order.
pub fn named(tables: Vec<TypedTable>) -> Vec<(String, TypedTable)> {
    let mut taken: BTreeSet<String> = Table::ALL.iter().map(|t| t.name().to_string()).collect();
    tables
        .into_iter()
        .map(|t| (unique(&mut taken, format!("typed_{}", t.sql_name())), t))
        .collect()
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
        let a = typed_folder("payment:order/../x");
        assert!(a.starts_with("payment_order____x-"), "{a}");
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        );
        assert_ne!(typed_folder("a-b"), typed_folder("a_b"));
        assert!(typed_folder(&"x".repeat(5000)).len() <= NAME_CHARS + 17);
    }
}
