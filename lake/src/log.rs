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

/// The version `app_id`'s `txn` records in `table`, as the table version it names (a
/// negative one, which no writer records, as none).
pub async fn txn_u64(table: &DeltaTable, app_id: &str) -> Result<Option<u64>> {
    Ok(txn_version(table, app_id)
        .await?
        .and_then(|v| u64::try_from(v).ok()))
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

use crate::app_ids::erasure_request;

/// The request of the erasure a commit's `actions` are, if they are one's (its `txn`).
pub fn erasure_in(actions: &[Action]) -> Option<&str> {
    actions.iter().find_map(|a| match a {
        Action::Txn(t) => erasure_request(&t.app_id),
        _ => None,
    })
}

/// An erasure that deleted files a version of a table reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErasedSince {
    /// The first erasure's commit since and its request, and how many of the version's
    /// files are gone.
    pub version: u64,
    pub request: String,
    pub files: usize,
}

/// When `at` can no longer be read whole because of an erasure: an erasure committed
/// after `at`'s version (up to `head`), and files `at` reads that are gone from storage (the
/// erasure deletes the files it replaced and older versions' files holding its subjects at
/// once). Reads the commits in between and lists the table's files.
pub async fn erased_since(at: &DeltaTable, head: u64) -> Result<Option<ErasedSince>> {
    let from = at.version().unwrap_or(0) + 1;
    if from > head {
        return Ok(None);
    }
    let mut commits = std::pin::pin!(commits_in(at.log_store(), from..=head, 16));
    let mut first = None;
    while let Some((version, actions)) = futures::TryStreamExt::try_next(&mut commits).await? {
        first = erasure_in(&actions.unwrap_or_default()).map(|r| (version, r.to_string()));
        if first.is_some() {
            break;
        }
    }
    let Some((version, request)) = first else {
        return Ok(None);
    };
    let listed = futures::TryStreamExt::try_collect::<Vec<_>>(at.object_store().list(None));
    let stored: std::collections::HashSet<String> = listed
        .await
        .map_err(deltalake::DeltaTableError::from)?
        .into_iter()
        .map(|o| o.location.to_string())
        .collect();
    let files = crate::files::live_files(at)?
        .iter()
        .filter(|a| !stored.contains(object_path(&a.path).as_ref()))
        .count();
    Ok((files > 0).then_some(ErasedSince {
        version,
        request,
        files,
    }))
}
