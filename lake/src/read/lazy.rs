//! Tables opened when a query first names them: the typed tables are one per event type,
//! and opening all of them (a listing and a log read each, on S3) for a query that reads
//! one would make every query cost the number of types.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use deltalake::DeltaTable;
use deltalake::datafusion::catalog::{SchemaProvider, TableProvider};
use deltalake::datafusion::error::{DataFusionError, Result as DfResult};
use deltalake::datafusion::execution::context::SessionState;
use deltalake::datafusion::prelude::SessionContext;
use futures::future::BoxFuture;

use super::ReadOnly;
use crate::error::Result;

/// Opens the table a name stands for; `None` when it is not there (for the version read).
pub type Opener =
    Arc<dyn Fn(String) -> BoxFuture<'static, Result<Option<DeltaTable>>> + Send + Sync>;

/// Makes `names` tables of the session's default schema, each opened by `open` (read-only)
/// the first time a query names it.
pub fn register_lazily(ctx: &SessionContext, names: BTreeSet<String>, open: Opener) -> Result<()> {
    let state = ctx.state();
    let options = state.config().options();
    let (catalog_name, schema_name) = (
        options.catalog.default_catalog.clone(),
        options.catalog.default_schema.clone(),
    );
    let missing = || DataFusionError::Plan(format!("no schema {catalog_name}.{schema_name}"));
    let catalog = ctx.catalog(&catalog_name).ok_or_else(missing)?;
    let inner = catalog.schema(&schema_name).ok_or_else(missing)?;
    let lazy = Lazy {
        inner,
        names,
        open,
        state,
        opened: Mutex::new(HashMap::new()),
    };
    catalog.register_schema(&schema_name, Arc::new(lazy))?;
    Ok(())
}

struct Lazy {
    inner: Arc<dyn SchemaProvider>,
    names: BTreeSet<String>,
    open: Opener,
    /// The session's state: its object store registry is the session's own.
    state: SessionState,
    opened: Mutex<HashMap<String, Arc<dyn TableProvider>>>,
}

impl std::fmt::Debug for Lazy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lazy").field("names", &self.names).finish()
    }
}

#[async_trait]
impl SchemaProvider for Lazy {
    fn table_names(&self) -> Vec<String> {
        let mut names = self.inner.table_names();
        names.extend(self.names.iter().cloned());
        names
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        if let Some(table) = self.inner.table(name).await? {
            return Ok(Some(table));
        }
        if !self.names.contains(name) {
            return Ok(None);
        }
        if let Some(table) = self.cached(name) {
            return Ok(Some(table));
        }
        let external = |e: crate::LakeError| DataFusionError::External(Box::new(e));
        let Some(delta) = (self.open)(name.to_string()).await.map_err(external)? else {
            return Ok(None);
        };
        delta.update_datafusion_session(&self.state)?;
        let table: Arc<dyn TableProvider> = Arc::new(ReadOnly(delta.table_provider().await?));
        if let Ok(mut opened) = self.opened.lock() {
            opened.insert(name.to_string(), table.clone());
        }
        Ok(Some(table))
    }

    fn register_table(
        &self,
        name: String,
        table: Arc<dyn TableProvider>,
    ) -> DfResult<Option<Arc<dyn TableProvider>>> {
        self.inner.register_table(name, table)
    }

    fn deregister_table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        self.inner.deregister_table(name)
    }

    fn table_exist(&self, name: &str) -> bool {
        self.inner.table_exist(name) || self.names.contains(name)
    }
}

impl Lazy {
    fn cached(&self, name: &str) -> Option<Arc<dyn TableProvider>> {
        self.opened.lock().ok()?.get(name).cloned()
    }
}
