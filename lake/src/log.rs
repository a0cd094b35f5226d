//! Reading a table's Delta log (one commit at a time, an application's `txn` version), and
//! cleaning up after a commit that lost.

use deltalake::DeltaTable;
use deltalake::kernel::{Action, Add};
use deltalake::logstore::object_store::ObjectStoreExt;
use deltalake::logstore::{LogStore, LogStoreRef, get_actions};
use futures::{Stream, StreamExt};

use crate::error::Result;
use crate::files::object_path;

/// The actions of commit `version`; `None` when the log no longer holds it (expired) or
/// never did.
pub async fn commit_actions(log_store: &dyn LogStore, version: u64) -> Result<Option<Vec<Action>>> {
    let Some(bytes) = log_store.read_commit_entry(version).await? else {
        return Ok(None);
    };
    Ok(Some(get_actions(version, &bytes)?))
}

/// The actions of each of `versions` ([`commit_actions`]), in their order, `at_once` read
/// at a time: for a run of commits, where one read after another would cost a round trip
/// each.
pub fn commits_in(
    log_store: LogStoreRef,
    versions: impl IntoIterator<Item = u64>,
    at_once: usize,
) -> impl Stream<Item = Result<(u64, Option<Vec<Action>>)>> {
    futures::stream::iter(versions)
        .map(move |version| {
            let log_store = log_store.clone();
            async move { Ok((version, commit_actions(log_store.as_ref(), version).await?)) }
        })
        .buffered(at_once.max(1))
}

/// The version `table`'s snapshot holds for application `app_id` (its last `txn`); `None`
/// when it never committed. A log replay (from the last checkpoint) on each call.
pub async fn txn_version(table: &DeltaTable, app_id: &str) -> Result<Option<i64>> {
    Ok(table
        .snapshot()?
        .transaction_version(table.log_store().as_ref(), app_id)
        .await?)
}

/// Deletes data files a commit that will never land had written, so a lost race leaves no
/// orphans behind. Best effort: what is left, `vacuum --full` removes.
pub async fn discard_files(table: &DeltaTable, adds: impl IntoIterator<Item = &Add>) {
    let store = table.object_store();
    for add in adds {
        if let Err(e) = store.delete(&object_path(&add.path)).await {
            tracing::warn!(path = add.path, error = %e, "could not delete an uncommitted file");
        }
    }
}
