//! A Kinesis stream on moto, and batches read back per shard the way Lambda's event source
//! mapping reads them, as the event documents it would invoke the function with.

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, ShardIteratorType};
use base64::Engine;
use serde_json::{Value, json};

use super::moto::{ACCOUNT, Moto, REGION};

pub struct Stream {
    client: Client,
    pub name: String,
    /// Shard ids and the lowest hash key of each, to address records to a shard.
    shards: Vec<(String, String)>,
}

/// One shard's records as (sequence number, partition key, data).
pub type ShardRecords = Vec<(String, String, Vec<u8>)>;

impl Stream {
    pub async fn create(moto: &Moto, name: &str, shard_count: i32) -> Stream {
        let client = Client::new(&moto.sdk);
        client
            .create_stream()
            .stream_name(name)
            .shard_count(shard_count)
            .send()
            .await
            .expect("create stream");
        let listed = client
            .list_shards()
            .stream_name(name)
            .send()
            .await
            .expect("list shards");
        let shards = listed
            .shards()
            .iter()
            .map(|s| {
                let start = s
                    .hash_key_range()
                    .map(|r| r.starting_hash_key().to_string())
                    .expect("hash key range");
                (s.shard_id().to_string(), start)
            })
            .collect();
        Stream {
            client,
            name: name.to_string(),
            shards,
        }
    }

    pub fn shard_ids(&self) -> Vec<String> {
        self.shards.iter().map(|(id, _)| id.clone()).collect()
    }

    /// Puts `records` (data, shard index) in order, 500 per request.
    pub async fn put(&self, records: &[(Vec<u8>, usize)]) {
        for chunk in records.chunks(500) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, (data, shard))| {
                    let (_, hash_key) = &self.shards[shard % self.shards.len()];
                    PutRecordsRequestEntry::builder()
                        .data(Blob::new(data.clone()))
                        .partition_key(format!("pk-{i}"))
                        .explicit_hash_key(hash_key)
                        .build()
                        .expect("entry")
                })
                .collect::<Vec<_>>();
            let out = self
                .client
                .put_records()
                .stream_name(&self.name)
                .set_records(Some(entries))
                .send()
                .await
                .expect("put records");
            assert_eq!(out.failed_record_count(), Some(0), "moto refused records");
        }
    }

    /// Every record of a shard from its start, in sequence order.
    pub async fn read_shard(&self, shard_id: &str) -> ShardRecords {
        let mut iterator = self
            .client
            .get_shard_iterator()
            .stream_name(&self.name)
            .shard_id(shard_id)
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .expect("shard iterator")
            .shard_iterator()
            .map(str::to_string);
        let mut out = Vec::new();
        while let Some(it) = iterator {
            let page = self
                .client
                .get_records()
                .shard_iterator(it)
                .limit(1000)
                .send()
                .await
                .expect("get records");
            if page.records().is_empty() {
                break;
            }
            for r in page.records() {
                out.push((
                    r.sequence_number().to_string(),
                    r.partition_key().unwrap_or_default().to_string(),
                    r.data().as_ref().to_vec(),
                ));
            }
            iterator = page.next_shard_iterator().map(str::to_string);
        }
        out
    }

    /// The document Lambda's event source mapping invokes the function with.
    pub fn event_document(&self, shard_id: &str, records: &[(String, String, Vec<u8>)]) -> Value {
        event_document(&self.name, shard_id, records)
    }
}

/// The document Lambda's event source mapping invokes the function with, for records of
/// `stream`'s shard `shard_id`: (sequence number, partition key, data).
pub fn event_document(
    stream: &str,
    shard_id: &str,
    records: &[(String, String, Vec<u8>)],
) -> Value {
    let arn = format!("arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{}", stream);
    let records: Vec<Value> = records
        .iter()
        .map(|(sequence, key, data)| {
            json!({
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": key,
                    "sequenceNumber": sequence,
                    "data": base64::engine::general_purpose::STANDARD.encode(data),
                    "approximateArrivalTimestamp": 1_764_000_000.5,
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": format!("{shard_id}:{sequence}"),
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": format!("arn:aws:iam::{ACCOUNT}:role/lambda-role"),
                "awsRegion": REGION,
                "eventSourceARN": arn,
            })
        })
        .collect();
    json!({ "Records": records })
}
