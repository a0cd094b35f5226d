//! The subjects of a request, the keyed hash that stands for each in the receipt, and the
//! request's id.
//!
//! The key is `LAKEHOUSE_ERASURE_KEY` when set (on AWS, from a secret), else 32 random
//! bytes the lake keeps at `_lakehouse/erasure.key`, made by the first erasure. Without
//! the key a hash cannot be checked against a guessed id; with it, it can: keep it where
//! the lake's readers are not.

use std::collections::BTreeSet;

use deltalake::ObjectStoreError;
use deltalake::Path;
use deltalake::logstore::object_store::{ObjectStoreExt, PutMode, PutOptions};
use hmac::{Hmac, KeyInit, Mac};
use lakehouse_lake::Lake;
use lakehouse_lake::app_ids::erasure_app_id;
use sha2::Sha256;

use crate::error::{EraseError, Result};

/// Where the lake keeps its own key when the environment names none.
const KEY_PATH: &str = "_lakehouse/erasure.key";

/// Longest subject id, in bytes: an id is a key, not a document.
pub const MAX_SUBJECT_BYTES: usize = 1024;

/// The subjects of one request.
#[derive(Debug, Clone)]
pub struct Subjects {
    ids: Vec<String>,
    hashes: Vec<String>,
    request_id: String,
}

impl Subjects {
    /// The request for `ids` (deduplicated; at least one), under `request_id` or, without
    /// one, an id derived from the subjects' keyed hashes: the same subjects make the same
    /// request, so a rerun is recognised.
    pub async fn new(
        lake: &Lake,
        ids: Vec<String>,
        request_id: Option<String>,
    ) -> Result<Subjects> {
        let ids: BTreeSet<String> = ids.into_iter().collect();
        if ids.is_empty() {
            return Err(EraseError::InvalidRequest("no subject named".into()));
        }
        if let Some(bad) = ids
            .iter()
            .find(|s| s.is_empty() || s.len() > MAX_SUBJECT_BYTES)
        {
            return Err(EraseError::InvalidRequest(format!(
                "a subject id must have 1 to {MAX_SUBJECT_BYTES} bytes, one has {}",
                bad.len()
            )));
        }
        if let Some(id) = &request_id {
            let ok = !id.is_empty()
                && id.len() <= 128
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
            if !ok {
                return Err(EraseError::InvalidRequest(format!(
                    "request id {id:?}: 1 to 128 of A-Z a-z 0-9 - _ . :"
                )));
            }
        }
        let key = key(lake).await?;
        let hashes: Vec<String> = ids.iter().map(|s| keyed_hash(&key, s)).collect();
        let request_id = request_id
            .unwrap_or_else(|| format!("h-{}", &keyed_hash(&key, &hashes.join(","))[..24]));
        Ok(Subjects {
            ids: ids.into_iter().collect(),
            hashes,
            request_id,
        })
    }

    pub fn ids(&self) -> &[String] {
        &self.ids
    }

    pub fn id_refs(&self) -> Vec<&str> {
        self.ids.iter().map(String::as_str).collect()
    }

    pub fn contains(&self, id: &str) -> bool {
        self.ids.binary_search_by(|s| s.as_str().cmp(id)).is_ok()
    }

    /// The subjects' keyed hashes, hex, in the order of [`Subjects::ids`].
    pub fn hashes(&self) -> &[String] {
        &self.hashes
    }

    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    /// The `txn` app id under which each table records the request.
    pub fn app_id(&self) -> String {
        erasure_app_id(&self.request_id)
    }
}

fn keyed_hash(key: &[u8], text: &str) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes any key");
    mac.update(text.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The erasure key: the environment's, or the lake's own (made once, by whoever is first).
async fn key(lake: &Lake) -> Result<Vec<u8>> {
    if let Ok(key) = std::env::var("LAKEHOUSE_ERASURE_KEY") {
        if key.len() < 16 {
            return Err(EraseError::Key(
                "LAKEHOUSE_ERASURE_KEY must have at least 16 bytes".into(),
            ));
        }
        return Ok(key.into_bytes());
    }
    let store = lake.store_for(lake.root())?;
    let path = Path::from(KEY_PATH);
    let mut fresh = [0u8; 32];
    getrandom::fill(&mut fresh).map_err(|e| EraseError::Key(e.to_string()))?;
    let put = PutOptions {
        mode: PutMode::Create,
        ..PutOptions::default()
    };
    match store.put_opts(&path, hex::encode(fresh).into(), put).await {
        Ok(_) | Err(ObjectStoreError::AlreadyExists { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    let text = store.get(&path).await?.bytes().await?;
    let key = String::from_utf8_lossy(&text).trim().to_string();
    if key.len() < 16 {
        return Err(EraseError::Key(format!(
            "{KEY_PATH} holds fewer than 16 bytes"
        )));
    }
    Ok(key.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_keyed_hash_depends_on_the_key() {
        let a = keyed_hash(b"0123456789abcdef", "user-1");
        assert_eq!(a.len(), 64);
        assert_eq!(a, keyed_hash(b"0123456789abcdef", "user-1"));
        assert_ne!(a, keyed_hash(b"0123456789abcdeF", "user-1"));
        assert_ne!(a, keyed_hash(b"0123456789abcdef", "user-2"));
    }
}
