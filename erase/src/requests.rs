//! Erasure requests waiting in the lake, one object each at
//! `<lake>/_lakehouse/erasure-requests/<request id>.json`: written by
//! `lakehouse erase --submit` (or anything that can put an object), processed by
//! `lakehouse erase --pending` and by the compaction Lambda's `{"erase": {}}` on its
//! schedule. A request is erased, receipted, then its object deleted: it names the
//! subjects, so it must not outlive the erasure.

use chrono::{DateTime, Utc};
use deltalake::Path;
use deltalake::logstore::object_store::{ObjectStoreExt, PutMode, PutOptions};
use deltalake::{ObjectStore, ObjectStoreError};
use futures::TryStreamExt;
use lakehouse_lake::Lake;
use serde::{Deserialize, Serialize};

use crate::error::{EraseError, Result};
use crate::receipt::Receipt;
use crate::subjects::Subjects;
use crate::{EraseOptions, erase};

/// Where requests wait, under the lake's root.
pub const REQUESTS_PREFIX: &str = "_lakehouse/erasure-requests";

/// A request as it waits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub request_id: String,
    pub subjects: Vec<String>,
    pub requested_at: DateTime<Utc>,
}

/// A request waiting, without its subjects (what `status` shows).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pending {
    pub request_id: String,
    pub requested_at: DateTime<Utc>,
}

/// Requests waiting, and the oldest one's age.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Queue {
    pub pending: Vec<Pending>,
    pub oldest_age_seconds: Option<i64>,
}

fn request_path(request_id: &str) -> Path {
    Path::from(format!("{REQUESTS_PREFIX}/{request_id}.json"))
}

/// Leaves a request for the next scheduled run. The same request id twice is one request
/// (the first one's subjects stand).
pub async fn submit(lake: &Lake, subjects: &Subjects) -> Result<Request> {
    let store = lake.store_for(lake.root())?;
    let request = Request {
        request_id: subjects.request_id().to_string(),
        subjects: subjects.ids().to_vec(),
        requested_at: Utc::now(),
    };
    let body =
        serde_json::to_vec(&request).map_err(|e| EraseError::InvalidRequest(e.to_string()))?;
    let put = PutOptions {
        mode: PutMode::Create,
        ..PutOptions::default()
    };
    match store
        .put_opts(&request_path(&request.request_id), body.into(), put)
        .await
    {
        Ok(_) => Ok(request),
        Err(ObjectStoreError::AlreadyExists { .. }) => {
            read(&store, &request_path(&request.request_id)).await
        }
        Err(e) => Err(e.into()),
    }
}

async fn read(store: &std::sync::Arc<dyn ObjectStore>, path: &Path) -> Result<Request> {
    let bytes = store.get(path).await?.bytes().await?;
    serde_json::from_slice(&bytes).map_err(|e| EraseError::InvalidRequest(format!("{path}: {e}")))
}

/// Every request waiting, oldest first.
pub async fn waiting(lake: &Lake) -> Result<Vec<Request>> {
    let store = lake.store_for(lake.root())?;
    let prefix = Path::from(REQUESTS_PREFIX);
    let objects: Vec<_> = store.list(Some(&prefix)).try_collect().await?;
    let mut requests = Vec::with_capacity(objects.len());
    for object in objects
        .iter()
        .filter(|o| o.location.as_ref().ends_with(".json"))
    {
        requests.push(read(&store, &object.location).await?);
    }
    requests.sort_by_key(|r| r.requested_at);
    Ok(requests)
}

/// The queue as `status` shows it: ids and ages, no subjects.
pub async fn queue(lake: &Lake) -> Result<Queue> {
    Ok(Queue::of(&waiting(lake).await?))
}

impl Queue {
    /// `requests` (oldest first, as [`waiting`] lists them) without their subjects.
    pub fn of(requests: &[Request]) -> Queue {
        let now = Utc::now();
        Queue {
            oldest_age_seconds: requests
                .first()
                .map(|r| (now - r.requested_at).num_seconds()),
            pending: requests
                .iter()
                .map(|r| Pending {
                    request_id: r.request_id.clone(),
                    requested_at: r.requested_at,
                })
                .collect(),
        }
    }
}

/// Erases `requests` (as [`waiting`] lists them), in order, and deletes each once its
/// receipt is recorded. One that fails stays for the next run; the others go on, and the
/// first failure is returned at the end.
pub async fn process(lake: &Lake, requests: Vec<Request>) -> Result<Vec<Receipt>> {
    let store = lake.store_for(lake.root())?;
    let mut receipts = Vec::new();
    let mut failure = None;
    for request in requests {
        let id = request.request_id.clone();
        let done = async {
            let subjects = Subjects::new(lake, request.subjects, Some(id.clone())).await?;
            let options = EraseOptions {
                dry_run: false,
                requested_at: Some(request.requested_at),
            };
            let receipt = erase(lake, &subjects, &options).await?;
            if receipt.residue_rows > 0 {
                return Err(EraseError::Residue {
                    request_id: id.clone(),
                    rows: receipt.residue_rows,
                });
            }
            match store.delete(&request_path(&id)).await {
                Ok(()) | Err(ObjectStoreError::NotFound { .. }) => Ok(receipt),
                Err(e) => Err(e.into()),
            }
        };
        match done.await {
            Ok(receipt) => receipts.push(receipt),
            Err(e) => {
                tracing::warn!(request_id = id, error = %e, "erasure failed; it stays for the next run");
                failure.get_or_insert(e);
            }
        }
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(receipts),
    }
}
