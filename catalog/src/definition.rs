//! What Glue should hold for one table or view, in plain data: built from a Delta table or
//! an inferred view, compared with what Glue holds, turned into a `TableInput`.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_glue::types::{Column, SerDeInfo, StorageDescriptor, TableInput};
use deltalake::DeltaTable;
use lakehouse_lake::Table;

use crate::error::{CatalogError, Result};
use crate::glue_type::glue_type;

/// Marks the Glue entries this tool owns; other parameters on them are left alone.
pub const MANAGED_PARAMETER: &str = "lakehouse.managed";

const PARQUET_INPUT: &str = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat";
const PARQUET_OUTPUT: &str = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat";
const PARQUET_SERDE: &str = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlueColumn {
    pub name: String,
    pub type_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A Delta table Athena reads natively from its log at `location`.
    Delta { location: String },
    /// An Athena view: the Presto view encoding Athena itself writes.
    View {
        original_text: String,
        expanded_text: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Definition {
    pub name: String,
    pub description: String,
    pub kind: Kind,
    pub columns: Vec<GlueColumn>,
    pub partition_keys: Vec<GlueColumn>,
    pub parameters: BTreeMap<String, String>,
}

impl Definition {
    /// The Glue table of a Delta table: `table_type=DELTA` for Athena's native reader,
    /// the Spark provider and `path` for Spark, and the schema with partition keys apart
    /// (Hive's convention) so Glue's own tools and Lake Formation see the real columns.
    pub fn delta(table: Table, delta: &DeltaTable) -> Result<Definition> {
        let description = table.description().to_string();
        Self::delta_named(table.name(), table.name().to_string(), description, delta)
    }

    /// The Glue table of the typed table of `event_type`, named `name`.
    pub fn typed(name: String, event_type: &str, delta: &DeltaTable) -> Result<Definition> {
        let description = format!("event type {event_type:?}: one typed column per payload field");
        Self::delta_named("typed", name, description, delta)
    }

    fn delta_named(
        label: &'static str,
        name: String,
        description: String,
        delta: &DeltaTable,
    ) -> Result<Definition> {
        let location = delta.table_url().as_str().trim_end_matches('/').to_string();
        let bad = |reason: String| CatalogError::Table {
            table: label,
            location: location.clone(),
            reason,
        };
        if !location.starts_with("s3://") && !location.starts_with("s3a://") {
            return Err(bad(
                "Glue tables must live on S3 (a local lake has no catalog: query it with \
                 `lakehouse query`)"
                    .into(),
            ));
        }
        let snapshot = delta.snapshot().map_err(|e| bad(e.to_string()))?;
        let partitions = snapshot.metadata().partition_columns();
        let schema = snapshot.schema();
        let column = |field: &deltalake::kernel::StructField| -> Result<GlueColumn> {
            Ok(GlueColumn {
                name: field.name().to_lowercase(),
                type_name: glue_type(field.data_type()).map_err(|t| {
                    bad(format!(
                        "column {}: Delta type {t} has no Glue type",
                        field.name()
                    ))
                })?,
            })
        };
        let columns = schema
            .fields()
            .filter(|f| !partitions.iter().any(|p| p == f.name()))
            .map(column)
            .collect::<Result<Vec<_>>>()?;
        let partition_keys = partitions
            .iter()
            .map(|p| {
                let field = schema
                    .field(p)
                    .ok_or_else(|| bad(format!("partition column {p} is not in the schema")))?;
                column(field)
            })
            .collect::<Result<Vec<_>>>()?;
        let parameters = [
            ("table_type", "DELTA"),
            ("EXTERNAL", "TRUE"),
            ("spark.sql.sources.provider", "delta"),
            (MANAGED_PARAMETER, "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        Ok(Definition {
            name,
            description,
            kind: Kind::Delta { location },
            columns,
            partition_keys,
            parameters,
        })
    }

    fn table_type(&self) -> &'static str {
        match self.kind {
            Kind::Delta { .. } => "EXTERNAL_TABLE",
            Kind::View { .. } => "VIRTUAL_VIEW",
        }
    }

    /// What differs between this and Glue's current entry, one line each; empty when
    /// nothing does. Parameters Glue or others added are not differences.
    pub fn changes(&self, existing: &aws_sdk_glue::types::Table) -> Vec<String> {
        let mut changes = Vec::new();
        let mut differ = |what: &str, was: &str, now: &str| {
            if was != now {
                changes.push(format!("{what}: {was:?} -> {now:?}"));
            }
        };
        differ(
            "table type",
            existing.table_type().unwrap_or_default(),
            self.table_type(),
        );
        differ(
            "description",
            existing.description().unwrap_or_default(),
            &self.description,
        );
        let storage = existing.storage_descriptor();
        match &self.kind {
            Kind::Delta { location } => {
                let storage_field = |f: fn(&StorageDescriptor) -> Option<&str>| {
                    storage.and_then(f).unwrap_or_default().to_string()
                };
                differ("location", &storage_field(|s| s.location()), location);
                differ(
                    "input format",
                    &storage_field(|s| s.input_format()),
                    PARQUET_INPUT,
                );
                differ(
                    "output format",
                    &storage_field(|s| s.output_format()),
                    PARQUET_OUTPUT,
                );
                let serde = storage.and_then(|s| s.serde_info());
                differ(
                    "serde",
                    serde
                        .and_then(|s| s.serialization_library())
                        .unwrap_or_default(),
                    PARQUET_SERDE,
                );
                differ(
                    "serde path",
                    serde
                        .and_then(|s| s.parameters())
                        .and_then(|p| p.get("path"))
                        .map(String::as_str)
                        .unwrap_or_default(),
                    location,
                );
            }
            Kind::View {
                original_text,
                expanded_text,
            } => {
                differ(
                    "view text",
                    existing.view_original_text().unwrap_or_default(),
                    original_text,
                );
                differ(
                    "expanded view text",
                    existing.view_expanded_text().unwrap_or_default(),
                    expanded_text,
                );
            }
        }
        let had = storage
            .map(|s| glue_columns(s.columns()))
            .unwrap_or_default();
        changes.extend(column_changes("column", &had, &self.columns));
        changes.extend(column_changes(
            "partition key",
            &glue_columns(existing.partition_keys()),
            &self.partition_keys,
        ));
        let params = existing.parameters();
        for (key, value) in &self.parameters {
            let was = params.and_then(|p| p.get(key)).map(String::as_str);
            if was != Some(value.as_str()) {
                changes.push(format!("parameter {key}: {was:?} -> {value:?}"));
            }
        }
        changes
    }

    /// The `TableInput` to create or update with, keeping parameters others set.
    pub fn table_input(&self, keep: Option<&HashMap<String, String>>) -> Result<TableInput> {
        let mut parameters = keep.cloned().unwrap_or_default();
        parameters.extend(self.parameters.clone());
        let build_error = |e: aws_sdk_glue::error::BuildError| CatalogError::Glue {
            operation: "TableInput",
            target: self.name.clone(),
            message: e.to_string(),
        };
        let columns = |cols: &[GlueColumn]| -> Result<Vec<Column>> {
            cols.iter()
                .map(|c| {
                    Column::builder()
                        .name(&c.name)
                        .r#type(&c.type_name)
                        .build()
                        .map_err(build_error)
                })
                .collect()
        };
        let storage = StorageDescriptor::builder().set_columns(Some(columns(&self.columns)?));
        let input = TableInput::builder()
            .name(&self.name)
            .description(&self.description)
            .table_type(self.table_type())
            .set_parameters(Some(parameters))
            .set_partition_keys(Some(columns(&self.partition_keys)?));
        let input = match &self.kind {
            Kind::Delta { location } => input.storage_descriptor(
                storage
                    .location(location)
                    .input_format(PARQUET_INPUT)
                    .output_format(PARQUET_OUTPUT)
                    .serde_info(
                        SerDeInfo::builder()
                            .serialization_library(PARQUET_SERDE)
                            .parameters("serialization.format", "1")
                            .parameters("path", location)
                            .build(),
                    )
                    .build(),
            ),
            Kind::View {
                original_text,
                expanded_text,
            } => input
                .view_original_text(original_text)
                .view_expanded_text(expanded_text)
                .storage_descriptor(storage.serde_info(SerDeInfo::builder().build()).build()),
        };
        input.build().map_err(build_error)
    }
}

fn glue_columns(columns: &[Column]) -> Vec<GlueColumn> {
    columns
        .iter()
        .map(|c| GlueColumn {
            name: c.name().to_string(),
            type_name: c.r#type().unwrap_or_default().to_string(),
        })
        .collect()
}

fn column_changes(what: &str, had: &[GlueColumn], want: &[GlueColumn]) -> Vec<String> {
    let mut changes = Vec::new();
    for c in want {
        match had.iter().find(|h| h.name == c.name) {
            None => changes.push(format!("{what} {} {} added", c.name, c.type_name)),
            Some(h) if h.type_name != c.type_name => changes.push(format!(
                "{what} {}: {} -> {}",
                c.name, h.type_name, c.type_name
            )),
            Some(_) => {}
        }
    }
    for h in had {
        if !want.iter().any(|c| c.name == h.name) {
            changes.push(format!("{what} {} removed", h.name));
        }
    }
    let names = |cols: &[GlueColumn]| cols.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
    if changes.is_empty() && names(had) != names(want) {
        changes.push(format!(
            "{what} order: {:?} -> {:?}",
            names(had),
            names(want)
        ));
    }
    changes
}
