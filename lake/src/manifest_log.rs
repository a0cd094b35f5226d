//! Where writers hand their manifests to a table's committer (grouped mode).
//!
//! A manifest is stored under its writer's app id and version with a *create-only* write:
//! the hand-over is the writer's checkpoint. A writer's next version is its latest stored
//! manifest plus one; a retried batch whose manifest an earlier attempt already stored
//! finds it there ([`HandOver::Taken`]) and learns what that attempt covered. Nothing else
//! tracks a writer's progress, so the two cannot disagree.
//!
//! The committer lists what is stored, commits what its table lacks, and [forgets] what
//! is committed except each writer's latest manifest, which stays as the checkpoint.
//!
//! [`StoreManifestLog`] keeps the manifests in the table's own object store under
//! `_manifests/` (hidden from Delta readers and vacuum, like `_delta_log`): a local lake
//! needs nothing else, and on S3 the create-only write is a conditional PUT. The Lambdas use
//! a DynamoDB table with its stream instead (`docs/scaling.md` says why).
//!
//! [forgets]: ManifestLog::forget

use std::sync::Arc;

use async_trait::async_trait;
use deltalake::DeltaTable;
use deltalake::logstore::object_store::{
    self, ObjectStore, ObjectStoreExt, PutMode, PutOptions, path::Path,
};
use futures::{StreamExt, TryStreamExt};
use percent_encoding::percent_decode_str;

use crate::error::{LakeError, Result};
use crate::manifest::Manifest;
// Where the log's users have always found it.
pub use crate::manifest::ManifestKey;

/// What a hand-over found.
#[derive(Debug, Clone, PartialEq)]
pub enum HandOver {
    /// The manifest is stored: the batch is the writer's, durably.
    Stored,
    /// This version was already stored (by an earlier attempt at the batch, or by a second
    /// writer of the same shard): that one stands.
    Taken(Box<Manifest>),
}

#[async_trait]
pub trait ManifestLog: Send + Sync {
    /// Stores `manifest` unless its (app id, version) is stored already.
    async fn hand_over(&self, manifest: &Manifest) -> Result<HandOver>;
    /// The writer's latest stored manifest: its checkpoint.
    async fn latest(&self, app_id: &str) -> Result<Option<Manifest>>;
    /// Every stored manifest's key.
    async fn keys(&self) -> Result<Vec<ManifestKey>>;
    async fn get(&self, key: &ManifestKey) -> Result<Option<Manifest>>;
    /// Deletes the writer's manifests below `version` (they are committed).
    async fn forget(&self, app_id: &str, below: i64) -> Result<()>;
}

/// Manifests as JSON objects `_manifests/<app id>/<version>.json` in a table's object store.
#[derive(Clone)]
pub struct StoreManifestLog {
    store: Arc<dyn ObjectStore>,
}

const DIR: &str = "_manifests";
/// Versions are zero-padded so a listing sorts them.
const VERSION_DIGITS: usize = 20;

impl StoreManifestLog {
    /// The manifest log of `table`, in the table's folder.
    pub fn of(table: &DeltaTable) -> StoreManifestLog {
        StoreManifestLog {
            store: table.object_store(),
        }
    }

    /// An app id is one path segment: object_store percent-encodes what a segment cannot
    /// hold (a Kinesis app id has a `/`).
    fn writer_dir(app_id: &str) -> Path {
        Path::from(DIR).join(app_id)
    }

    fn path(key: &ManifestKey) -> Path {
        Self::writer_dir(&key.app_id).join(format!(
            "{:0width$}.json",
            key.version,
            width = VERSION_DIGITS
        ))
    }

    /// The key a stored object's path stands for; `None` for anything else.
    fn key_of(path: &Path) -> Option<ManifestKey> {
        let parts: Vec<_> = path.parts().collect();
        let [dir, writer, file] = parts.as_slice() else {
            return None;
        };
        if dir.as_ref() != DIR {
            return None;
        }
        let app_id = percent_decode_str(writer.as_ref())
            .decode_utf8()
            .ok()?
            .into_owned();
        let version = file.as_ref().strip_suffix(".json")?.parse().ok()?;
        Some(ManifestKey { app_id, version })
    }

    async fn list(&self, prefix: &Path) -> Result<Vec<ManifestKey>> {
        let metas: Vec<_> = self
            .store
            .list(Some(prefix))
            .try_collect()
            .await
            .map_err(store_error)?;
        let mut keys: Vec<_> = metas
            .iter()
            .filter_map(|m| Self::key_of(&m.location))
            .collect();
        keys.sort();
        Ok(keys)
    }
}

#[async_trait]
impl ManifestLog for StoreManifestLog {
    async fn hand_over(&self, manifest: &Manifest) -> Result<HandOver> {
        let path = Self::path(&manifest.key());
        let body = serde_json::to_vec(manifest).map_err(|e| LakeError::Manifest(e.to_string()))?;
        let create = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        match self.store.put_opts(&path, body.into(), create).await {
            Ok(_) => Ok(HandOver::Stored),
            Err(object_store::Error::AlreadyExists { .. }) => {
                match self.get(&manifest.key()).await? {
                    Some(stored) => Ok(HandOver::Taken(Box::new(stored))),
                    None => Err(LakeError::Manifest(format!(
                        "{path} exists but cannot be read back"
                    ))),
                }
            }
            Err(e) => Err(store_error(e)),
        }
    }

    async fn latest(&self, app_id: &str) -> Result<Option<Manifest>> {
        match self.list(&Self::writer_dir(app_id)).await?.pop() {
            Some(key) => self.get(&key).await,
            None => Ok(None),
        }
    }

    async fn keys(&self) -> Result<Vec<ManifestKey>> {
        self.list(&Path::from(DIR)).await
    }

    async fn get(&self, key: &ManifestKey) -> Result<Option<Manifest>> {
        let bytes = match self.store.get(&Self::path(key)).await {
            Ok(got) => got.bytes().await.map_err(store_error)?,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(store_error(e)),
        };
        let manifest: Manifest = serde_json::from_slice(&bytes)
            .map_err(|e| LakeError::Manifest(format!("{}: {e}", Self::path(key))))?;
        Ok(Some(manifest))
    }

    async fn forget(&self, app_id: &str, below: i64) -> Result<()> {
        let old = self.list(&Self::writer_dir(app_id)).await?;
        let paths = old
            .iter()
            .filter(|key| key.version < below)
            .map(|key| Ok(Self::path(key)));
        let deleted: Vec<_> = self
            .store
            .delete_stream(futures::stream::iter(paths.collect::<Vec<_>>()).boxed())
            .collect()
            .await;
        for result in deleted {
            match result {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(store_error(e)),
            }
        }
        Ok(())
    }
}

/// The writer's side: hands `manifest` over; when an earlier attempt holds its version,
/// deletes the files `manifest` names (they will never be committed) and returns that one.
pub async fn hand_over_files(
    log: &dyn ManifestLog,
    table: &DeltaTable,
    manifest: &Manifest,
) -> Result<HandOver> {
    let handed = log.hand_over(manifest).await?;
    if let HandOver::Taken(_) = &handed {
        crate::log::discard_files(table, &manifest.adds).await;
    }
    Ok(handed)
}

fn store_error(e: object_store::Error) -> LakeError {
    LakeError::Manifest(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_paths_whatever_the_app_id() {
        for app_id in [
            "lakehouse-ingest:stream/shardId-000000000001",
            "a b%c/../d",
            "ünïcödé:x",
            "..",
        ] {
            let key = ManifestKey {
                app_id: app_id.to_string(),
                version: 42,
            };
            let path = StoreManifestLog::path(&key);
            assert_eq!(path.parts().count(), 3, "{app_id}: one segment");
            let reparsed = Path::parse(path.as_ref()).expect("a valid path");
            assert_eq!(StoreManifestLog::key_of(&reparsed), Some(key));
        }
        assert_eq!(StoreManifestLog::key_of(&Path::from("_manifests/x")), None);
        assert_eq!(
            StoreManifestLog::key_of(&Path::from("_manifests/x/notaversion.json")),
            None
        );
    }
}
