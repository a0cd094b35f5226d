//! Reading the lake's tables through DataFusion, and only reading. Every commit goes through
//! [`crate::Commit`] and its conflict rules; delta-rs's table provider would also take
//! `INSERT INTO raw …` or `INSERT OVERWRITE staging …` from a SQL string, past those rules and
//! past compaction's progress. So tables are registered behind [`ReadOnly`], which has no
//! write path at all, and SQL from users runs with DDL, DML (`COPY … TO` among them) and
//! statements (`SET`, transactions) refused before planning goes further.

use std::sync::Arc;

use async_trait::async_trait;
use deltalake::DeltaTable;
use deltalake::arrow::datatypes::SchemaRef;
use deltalake::datafusion::catalog::{ScanArgs, ScanResult, Session, TableProvider};
use deltalake::datafusion::common::{Constraints, DFSchema, Statistics};
use deltalake::datafusion::datasource::MemTable;
use deltalake::datafusion::error::{DataFusionError, Result as DfResult};
use deltalake::datafusion::execution::context::SQLOptions;
use deltalake::datafusion::logical_expr::{Expr, TableProviderFilterPushDown, TableType};
use deltalake::datafusion::physical_plan::ExecutionPlan;
use deltalake::datafusion::prelude::{DataFrame, SessionContext};

use crate::error::Result;
use crate::schema::Table;

mod lazy;

pub use lazy::{Opener, register_lazily};

/// Registers one opened table under its name, read-only.
pub async fn register_table(ctx: &SessionContext, table: Table, delta: &DeltaTable) -> Result<()> {
    register_named(ctx, table.name(), delta).await
}

/// Registers one opened table under `name`, read-only (a typed table, say).
pub async fn register_named(ctx: &SessionContext, name: &str, delta: &DeltaTable) -> Result<()> {
    delta.update_datafusion_session(&ctx.state())?;
    let provider = delta.table_provider().await?;
    ctx.register_table(name, Arc::new(ReadOnly(provider)))?;
    Ok(())
}

/// Registers `table` as an empty table of its schema: a table not written yet reads so.
pub fn register_empty(ctx: &SessionContext, table: Table) -> Result<()> {
    let empty = MemTable::try_new(table.arrow_schema(), vec![vec![]])?;
    ctx.register_table(table.name(), Arc::new(ReadOnly(Arc::new(empty))))?;
    Ok(())
}

/// What SQL may do here: query. DDL (`CREATE …`, `DROP …`), DML (`INSERT`, `UPDATE`,
/// `DELETE`, `COPY … TO`) and statements (`SET`, `BEGIN`) are refused while planning, also
/// inside `EXPLAIN ANALYZE` and subqueries.
pub fn read_only() -> SQLOptions {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
}

/// Plans one SQL statement as a query; anything that would write or change the session is
/// an error that says so.
pub async fn query(ctx: &SessionContext, sql: &str) -> DfResult<DataFrame> {
    ctx.sql_with_options(sql, read_only())
        .await
        .map_err(|e| refused(e, sql))
}

/// A condition written by a user (`--where`) over the columns of `schema`, parsed as one
/// expression: it filters, and cannot reshape the query it is put into (`… OR TRUE) UNION
/// SELECT …` does not parse as an expression).
pub fn condition(ctx: &SessionContext, sql: &str, schema: &DFSchema) -> DfResult<Expr> {
    ctx.parse_sql_expr(sql, schema)
        .map_err(|e| DataFusionError::Plan(format!("condition {sql:?}: {e}")))
}

fn refused(error: DataFusionError, sql: &str) -> DataFusionError {
    let text = error.to_string();
    let writes = [
        "DDL not supported",
        "DML not supported",
        "Statement not supported",
    ];
    if writes.iter().any(|w| text.contains(w)) {
        let statement: String = sql.split_whitespace().take(3).collect::<Vec<_>>().join(" ");
        return DataFusionError::Plan(format!(
            "queries only read the lake: {statement:?} would write or change something ({}); \
             ingest, compact and quarantine redrive are the ways to write",
            text.trim_start_matches("Error during planning: ")
        ));
    }
    error
}

/// A table that can be scanned and nothing else: it has no `insert_into`, `delete_from`,
/// `update` or `truncate`, so DataFusion's defaults refuse them whoever plans the SQL.
#[derive(Debug)]
pub struct ReadOnly(pub Arc<dyn TableProvider>);

#[async_trait]
impl TableProvider for ReadOnly {
    fn schema(&self) -> SchemaRef {
        self.0.schema()
    }

    fn constraints(&self) -> Option<&Constraints> {
        self.0.constraints()
    }

    fn table_type(&self) -> TableType {
        self.0.table_type()
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        self.0.scan(state, projection, filters, limit).await
    }

    async fn scan_with_args<'a>(
        &self,
        state: &dyn Session,
        args: ScanArgs<'a>,
    ) -> DfResult<ScanResult> {
        self.0.scan_with_args(state, args).await
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        self.0.supports_filters_pushdown(filters)
    }

    fn statistics(&self) -> Option<Statistics> {
        self.0.statistics()
    }
}
