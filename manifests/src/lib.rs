//! Grouped mode's channel on AWS: a DynamoDB table of manifests, whose stream invokes each
//! table's committer (see `docs/scaling.md` for why this and not SQS FIFO or Kinesis).
//!
//! An item is one manifest: key (`writer` = `<table url>|<app id>`, `version`), the manifest
//! as JSON, and a TTL. The hand-over is a put conditional on the key being new, so it is
//! also the writer's checkpoint (see [`lakehouse_lake::manifest_log`]). A manifest larger
//! than fits an item (a batch spanning thousands of partitions) is stored in the table's
//! `_manifests/bodies/` under a name unique to the attempt, and the item points to it.

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, WriteRequest};
use deltalake::DeltaTable;
use deltalake::logstore::object_store::{
    ObjectStore, ObjectStoreExt, PutMode, PutOptions, path::Path,
};
use lakehouse_aws::{describe_sdk_error, is_condition_failure};
use lakehouse_lake::files::object_path;
use lakehouse_lake::manifest::Manifest;
use lakehouse_lake::manifest_log::{HandOver, ManifestKey, ManifestLog};
use lakehouse_lake::{Lake, LakeError, Table};

const WRITER: &str = "writer";
const VERSION: &str = "version";
const BODY: &str = "manifest";
/// Where the manifest is when it did not fit the item.
const BODY_PATH: &str = "manifest_path";
const EXPIRES_AT: &str = "expires_at";
/// A writer's latest manifest is its checkpoint: it lives as long as a checkpoint item
/// (longer than Kinesis keeps a record). Committed older ones are deleted by the committer.
const EXPIRY_DAYS: i64 = 400;
/// DynamoDB items hold 400 KB; keep room for the key and attributes.
const MAX_INLINE_BYTES: usize = 350 * 1024;

/// The manifests of one Delta table in a DynamoDB table.
#[derive(Clone)]
pub struct DynamoManifestLog {
    client: Client,
    table_name: String,
    /// `<table url>|`: one DynamoDB table serves every Delta table of the lake.
    prefix: String,
    store: Arc<dyn ObjectStore>,
}

type Result<T> = std::result::Result<T, LakeError>;

impl DynamoManifestLog {
    /// The manifest log of the lake's `table`, opened (and created if missing) for its
    /// object store, where bodies too large for an item go. Writers and the committer both
    /// come here, so they name items the same way.
    pub async fn open(
        client: Client,
        table_name: impl Into<String>,
        lake: &Lake,
        table: Table,
    ) -> std::result::Result<(DynamoManifestLog, DeltaTable), LakeError> {
        let delta = lake.open(table).await?;
        let log = DynamoManifestLog {
            client,
            table_name: table_name.into(),
            prefix: format!("{}|", lake.table_url(table)),
            store: delta.object_store(),
        };
        Ok((log, delta))
    }

    fn writer(&self, app_id: &str) -> AttributeValue {
        AttributeValue::S(format!("{}{app_id}", self.prefix))
    }

    /// The manifest key an item's keys stand for; `None` for another Delta table's
    /// manifest (or anything else).
    fn key_of(
        &self,
        keys: &std::collections::HashMap<String, AttributeValue>,
    ) -> Option<ManifestKey> {
        let writer = keys.get(WRITER)?.as_s().ok()?;
        let version = keys.get(VERSION)?.as_n().ok()?;
        self.key_from_strings(writer, version)
    }

    /// The manifest key of a `writer` and `version` as a DynamoDB stream record gives them.
    pub fn key_from_strings(&self, writer: &str, version: &str) -> Option<ManifestKey> {
        let app_id = writer.strip_prefix(&self.prefix)?.to_string();
        let version = version.parse().ok()?;
        Some(ManifestKey { app_id, version })
    }

    fn error<E, R>(&self, operation: &str, error: SdkError<E, R>) -> LakeError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        LakeError::Manifest(format!(
            "DynamoDB {operation} on {}: {}",
            self.table_name,
            describe_sdk_error(&error)
        ))
    }

    /// The stored manifest whose version `manifest` was refused for.
    async fn taken(&self, manifest: &Manifest) -> Result<HandOver> {
        match self.get(&manifest.key()).await? {
            Some(stored) => Ok(HandOver::Taken(Box::new(stored))),
            None => Err(LakeError::Manifest(format!(
                "{}: {} version {} was refused as existing but cannot be read",
                self.table_name, manifest.app_id, manifest.version
            ))),
        }
    }

    async fn parse(
        &self,
        item: &std::collections::HashMap<String, AttributeValue>,
    ) -> Result<Manifest> {
        let corrupt =
            |reason: String| LakeError::Manifest(format!("{}: {reason}", self.table_name));
        let json = match (item.get(BODY), item.get(BODY_PATH)) {
            (Some(AttributeValue::S(json)), _) => json.clone().into_bytes(),
            (_, Some(AttributeValue::S(path))) => {
                let got = self.store.get(&object_path(path)).await;
                let got = got.map_err(|e| corrupt(format!("manifest body {path}: {e}")))?;
                got.bytes()
                    .await
                    .map_err(|e| corrupt(format!("manifest body {path}: {e}")))?
                    .to_vec()
            }
            _ => return Err(corrupt("an item without its manifest".into())),
        };
        serde_json::from_slice(&json).map_err(|e| corrupt(e.to_string()))
    }
}

#[async_trait]
impl ManifestLog for DynamoManifestLog {
    async fn hand_over(&self, manifest: &Manifest) -> Result<HandOver> {
        let json =
            serde_json::to_string(manifest).map_err(|e| LakeError::Manifest(e.to_string()))?;
        let expires = chrono::Utc::now().timestamp() + EXPIRY_DAYS * 86_400;
        let mut request = self
            .client
            .put_item()
            .table_name(&self.table_name)
            .item(WRITER, self.writer(&manifest.app_id))
            .item(VERSION, AttributeValue::N(manifest.version.to_string()))
            .item(EXPIRES_AT, AttributeValue::N(expires.to_string()))
            .condition_expression(format!("attribute_not_exists({WRITER})"));
        let mut body = None;
        if json.len() <= MAX_INLINE_BYTES {
            request = request.item(BODY, AttributeValue::S(json));
        } else {
            // Unique per attempt: two attempts at one version never write one body.
            let path = Path::from("_manifests/bodies")
                .join(manifest.app_id.as_str())
                .join(format!(
                    "{}-{}.json",
                    manifest.version,
                    uuid::Uuid::new_v4()
                ))
                .to_string();
            let create = PutOptions {
                mode: PutMode::Create,
                ..PutOptions::default()
            };
            self.store
                .put_opts(&object_path(&path), json.into_bytes().into(), create)
                .await
                .map_err(|e| LakeError::Manifest(format!("manifest body {path}: {e}")))?;
            request = request.item(BODY_PATH, AttributeValue::S(path.clone()));
            body = Some(path);
        }
        match request.send().await {
            Ok(_) => Ok(HandOver::Stored),
            Err(e) if is_condition_failure(&e) => {
                // Refused: this attempt's body belongs to no item.
                if let Some(path) = body {
                    let _ = self.store.delete(&object_path(&path)).await;
                }
                self.taken(manifest).await
            }
            Err(e) => Err(self.error("PutItem", e)),
        }
    }

    async fn latest(&self, app_id: &str) -> Result<Option<Manifest>> {
        let output = self
            .client
            .query()
            .table_name(&self.table_name)
            .key_condition_expression(format!("{WRITER} = :w"))
            .expression_attribute_values(":w", self.writer(app_id))
            .scan_index_forward(false)
            .limit(1)
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.error("Query", e))?;
        match output.items().first() {
            Some(item) => Ok(Some(self.parse(item).await?)),
            None => Ok(None),
        }
    }

    /// Every manifest of this Delta table: a scan, for a committer run by hand; the
    /// committer Lambda takes its keys from the stream instead.
    async fn keys(&self) -> Result<Vec<ManifestKey>> {
        let mut keys = Vec::new();
        let mut start = None;
        loop {
            let output = self
                .client
                .scan()
                .table_name(&self.table_name)
                .filter_expression(format!("begins_with({WRITER}, :p)"))
                .expression_attribute_values(":p", AttributeValue::S(self.prefix.clone()))
                .projection_expression(format!("{WRITER}, {VERSION}"))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| self.error("Scan", e))?;
            keys.extend(output.items().iter().filter_map(|item| self.key_of(item)));
            match output.last_evaluated_key() {
                Some(last) if !last.is_empty() => start = Some(last.clone()),
                _ => break,
            }
        }
        keys.sort();
        Ok(keys)
    }

    async fn get(&self, key: &ManifestKey) -> Result<Option<Manifest>> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table_name)
            .key(WRITER, self.writer(&key.app_id))
            .key(VERSION, AttributeValue::N(key.version.to_string()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.error("GetItem", e))?;
        match output.item() {
            Some(item) => Ok(Some(self.parse(item).await?)),
            None => Ok(None),
        }
    }

    async fn forget(&self, app_id: &str, below: i64) -> Result<()> {
        let output = self
            .client
            .query()
            .table_name(&self.table_name)
            .key_condition_expression(format!("{WRITER} = :w AND {VERSION} < :v"))
            .expression_attribute_values(":w", self.writer(app_id))
            .expression_attribute_values(":v", AttributeValue::N(below.to_string()))
            .projection_expression(format!("{WRITER}, {VERSION}, {BODY_PATH}"))
            .send()
            .await
            .map_err(|e| self.error("Query", e))?;
        // One page (1 MB of keys) a round is plenty: the rest goes next round.
        let items = output.items();
        for chunk in items.chunks(25) {
            let mut requests: Vec<WriteRequest> = Vec::new();
            for item in chunk {
                let key = [WRITER, VERSION]
                    .into_iter()
                    .filter_map(|k| Some((k.to_string(), item.get(k)?.clone())))
                    .collect();
                let delete = DeleteRequest::builder()
                    .set_key(Some(key))
                    .build()
                    .map_err(|e| LakeError::Manifest(e.to_string()))?;
                requests.push(WriteRequest::builder().delete_request(delete).build());
            }
            let mut pending = Some(requests);
            // Unprocessed deletes (throttling) are retried a few times, then left for later.
            for _ in 0..5 {
                let Some(batch) = pending.take().filter(|b| !b.is_empty()) else {
                    break;
                };
                let output = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table_name, batch)
                    .send()
                    .await
                    .map_err(|e| self.error("BatchWriteItem", e))?;
                pending = output
                    .unprocessed_items()
                    .and_then(|u| u.get(&self.table_name).cloned());
            }
        }
        for item in items {
            if let Some(AttributeValue::S(path)) = item.get(BODY_PATH) {
                let _ = self.store.delete(&object_path(path)).await;
            }
        }
        Ok(())
    }
}
