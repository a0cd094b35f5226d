//! The Glue side: a database, and entries created or updated only when they differ.

use std::fmt;

use aws_sdk_glue::error::SdkError;
use aws_sdk_glue::types::DatabaseInput;
use lakehouse_aws::describe_sdk_error;
use lakehouse_lake::typed::table::named;
use lakehouse_lake::{Lake, Table};

use crate::definition::Definition;
use crate::error::{CatalogError, Result};
use crate::views::ViewDefinition;

/// What a sync did to one Glue entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Created,
    Updated(Vec<String>),
    Unchanged,
    /// The Delta table has never been written (e.g. `staging` before the first compaction).
    NotInLake,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::Created => write!(f, "created"),
            Change::Updated(changes) => write!(f, "updated ({})", changes.join("; ")),
            Change::Unchanged => write!(f, "unchanged"),
            Change::NotInLake => write!(f, "not in the lake yet: skipped"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncReport {
    pub database: String,
    pub database_created: bool,
    pub entries: Vec<(String, Change)>,
}

impl SyncReport {
    /// True when the sync wrote anything to Glue.
    pub fn changed(&self) -> bool {
        self.database_created
            || self
                .entries
                .iter()
                .any(|(_, c)| matches!(c, Change::Created | Change::Updated(_)))
    }
}

impl fmt::Display for SyncReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let db = if self.database_created {
            "created"
        } else {
            "exists"
        };
        writeln!(f, "database {}: {db}", self.database)?;
        for (name, change) in &self.entries {
            writeln!(f, "  {name}: {change}")?;
        }
        Ok(())
    }
}

/// One Glue database of the lake's tables and views.
pub struct Catalog {
    client: aws_sdk_glue::Client,
    database: String,
}

fn glue_error<E, R>(operation: &'static str, target: &str, e: &SdkError<E, R>) -> CatalogError
where
    E: aws_sdk_glue::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: fmt::Debug,
{
    CatalogError::Glue {
        operation,
        target: target.to_string(),
        message: describe_sdk_error(e),
    }
}

/// Athena folds names to lower case and needs quotes around anything but letters, digits
/// and underscores: insist on those up front rather than fail later in SQL.
fn validate_database(database: &str) -> Result<()> {
    let invalid = |reason| CatalogError::InvalidDatabase {
        name: database.to_string(),
        reason,
    };
    if database.is_empty() || database.len() > 255 {
        return Err(invalid("it must be 1 to 255 characters"));
    }
    if !database
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(invalid(
            "use lower-case letters, digits and underscores (what Athena accepts unquoted)",
        ));
    }
    Ok(())
}

impl Catalog {
    pub fn new(client: aws_sdk_glue::Client, database: &str) -> Result<Catalog> {
        validate_database(database)?;
        Ok(Catalog {
            client,
            database: database.to_string(),
        })
    }

    /// A catalog with AWS settings from the standard environment.
    pub async fn from_env(database: &str) -> Result<Catalog> {
        validate_database(database)?;
        let sdk = lakehouse_aws::sdk_config().await;
        Catalog::new(aws_sdk_glue::Client::new(&sdk), database)
    }

    pub fn database(&self) -> &str {
        &self.database
    }

    /// Creates the database if missing; true when it did.
    pub async fn ensure_database(&self) -> Result<bool> {
        match self.client.get_database().name(&self.database).send().await {
            Ok(_) => return Ok(false),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_entity_not_found_exception()) => {}
            Err(e) => return Err(glue_error("GetDatabase", &self.database, &e)),
        }
        let input = DatabaseInput::builder()
            .name(&self.database)
            .description(
                "event lakehouse: raw, staging, quarantine (Delta) and per-event-type views",
            )
            .build()
            .map_err(|e| CatalogError::Glue {
                operation: "DatabaseInput",
                target: self.database.clone(),
                message: e.to_string(),
            })?;
        match self
            .client
            .create_database()
            .database_input(input)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            // Created meanwhile by a concurrent sync: the goal is met.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_already_exists_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(glue_error("CreateDatabase", &self.database, &e)),
        }
    }

    /// Registers the lake's tables (`raw`, `staging`, `quarantine`, `staging_keys`,
    /// `erasures` and the typed tables) as Delta tables: creates what is missing, updates
    /// what differs (a new column, a moved lake), leaves the rest alone.
    pub async fn sync_tables(&self, lake: &Lake) -> Result<SyncReport> {
        let mut definitions = Vec::new();
        for table in Table::ALL {
            let definition = match lake.open_existing(table).await? {
                Some(delta) => Some(Definition::delta(table, &delta)?),
                None => None,
            };
            definitions.push((table.name().to_string(), definition));
        }
        for (name, typed) in named(lake.typed_tables().await?) {
            let definition = Definition::typed(name.clone(), &typed.event_type, &typed.delta)?;
            definitions.push((name, Some(definition)));
        }
        if definitions.iter().all(|(_, d)| d.is_none()) {
            return Err(lakehouse_lake::LakeError::EmptyLake {
                location: lake.root().to_string(),
            }
            .into());
        }
        let database_created = self.ensure_database().await?;
        let mut entries = Vec::new();
        for (name, definition) in definitions {
            let change = match definition {
                Some(definition) => self.put(&definition).await?,
                None => Change::NotInLake,
            };
            entries.push((name, change));
        }
        Ok(SyncReport {
            database: self.database.clone(),
            database_created,
            entries,
        })
    }

    /// Creates or replaces the views in Glue, as Athena's `CREATE OR REPLACE VIEW` would.
    pub async fn apply_views(&self, views: &[ViewDefinition]) -> Result<SyncReport> {
        let database_created = self.ensure_database().await?;
        let mut entries = Vec::new();
        for view in views {
            let change = self.put(&view.glue_definition(&self.database)).await?;
            entries.push((view.name.clone(), change));
        }
        Ok(SyncReport {
            database: self.database.clone(),
            database_created,
            entries,
        })
    }

    async fn put(&self, definition: &Definition) -> Result<Change> {
        let target = format!("{}.{}", self.database, definition.name);
        let existing = match self
            .client
            .get_table()
            .database_name(&self.database)
            .name(&definition.name)
            .send()
            .await
        {
            Ok(out) => out.table,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_entity_not_found_exception()) =>
            {
                None
            }
            Err(e) => return Err(glue_error("GetTable", &target, &e)),
        };
        let Some(existing) = existing else {
            self.client
                .create_table()
                .database_name(&self.database)
                .table_input(definition.table_input(None)?)
                .send()
                .await
                .map_err(|e| glue_error("CreateTable", &target, &e))?;
            tracing::info!(table = target, "glue entry created");
            return Ok(Change::Created);
        };
        let changes = definition.changes(&existing);
        if changes.is_empty() {
            return Ok(Change::Unchanged);
        }
        self.client
            .update_table()
            .database_name(&self.database)
            .table_input(definition.table_input(existing.parameters())?)
            .send()
            .await
            .map_err(|e| glue_error("UpdateTable", &target, &e))?;
        tracing::info!(table = target, ?changes, "glue entry updated");
        Ok(Change::Updated(changes))
    }
}
