//! The moto server (S3, DynamoDB, Kinesis, Glue in one process), started per test on a free
//! loopback port, and SDK clients pointed at it.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::config::Credentials;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};

pub const REGION: &str = "us-east-1";
pub const ACCOUNT: &str = "123456789012";

pub struct Moto {
    child: Child,
    pub endpoint: String,
    pub sdk: aws_config::SdkConfig,
    _logs: tempfile::NamedTempFile,
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

/// Waits until something accepts connections on `port`.
pub fn wait_for_port(port: u16, what: &str, child: &mut Child) {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited before listening: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not listen on {port} within 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl Moto {
    /// Starts moto; panics, naming the install, when it is not installed (the tests that
    /// need it are `#[ignore]`d with that reason, and `make test` runs them).
    pub async fn start() -> Moto {
        let installed = Command::new("python3")
            .args(["-c", "import moto.server"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            installed,
            "moto_server is not installed: pip install 'moto[server]' (make test does)"
        );
        let port = free_port();
        let logs = tempfile::NamedTempFile::new().expect("moto log file");
        // moto's own `moto_server` is threaded and its conditional writes are not atomic
        // under concurrency (a Delta commit could silently overwrite another): serve one
        // request at a time, as atomic as AWS. See tests/tools/moto_serial.py.
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tools/moto_serial.py");
        let mut child = Command::new("python3")
            .args([script, &port.to_string()])
            .stdout(Stdio::null())
            .stderr(logs.reopen().expect("log handle"))
            .spawn()
            .expect("start moto");
        wait_for_port(port, "moto", &mut child);
        let endpoint = format!("http://127.0.0.1:{port}");
        let sdk = sdk_config(&endpoint).await;
        Moto {
            child,
            endpoint,
            sdk,
            _logs: logs,
        }
    }

    /// The environment a process needs to reach this moto as if it were AWS.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        env_for(&self.endpoint)
    }

    fn s3(&self) -> aws_sdk_s3::Client {
        aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&self.sdk)
                .force_path_style(true)
                .build(),
        )
    }

    pub async fn create_bucket(&self, bucket: &str) {
        let s3 = self.s3();
        s3.create_bucket()
            .bucket(bucket)
            .send()
            .await
            .expect("create bucket");
    }

    /// Puts `body` at `key` of `bucket`.
    pub async fn put_object(&self, bucket: &str, key: &str, body: Vec<u8>) {
        let s3 = self.s3();
        s3.put_object()
            .bucket(bucket)
            .key(key)
            .body(body.into())
            .send()
            .await
            .expect("put object");
    }

    /// Deletes every object of `bucket` under `prefix`.
    pub async fn delete_prefix(&self, bucket: &str, prefix: &str) {
        let s3 = self.s3();
        let mut pages = s3
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            for object in page.expect("list objects").contents() {
                s3.delete_object()
                    .bucket(bucket)
                    .key(object.key().expect("key"))
                    .send()
                    .await
                    .expect("delete object");
            }
        }
    }

    /// A DynamoDB table keyed by the string attribute `id`, as Terraform creates them.
    pub async fn create_key_table(&self, name: &str) {
        let dynamodb = aws_sdk_dynamodb::Client::new(&self.sdk);
        dynamodb
            .create_table()
            .table_name(name)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("id")
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .expect("attribute"),
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name("id")
                    .key_type(KeyType::Hash)
                    .build()
                    .expect("key"),
            )
            .send()
            .await
            .expect("create DynamoDB table");
    }
}

impl Moto {
    /// A lake on this moto's S3 for the test process itself, configured through storage
    /// options (setting the process environment would race other tests).
    pub fn lake(&self, uri: &str) -> lakehouse_lake::Lake {
        let known = [
            "aws_endpoint_url",
            "aws_access_key_id",
            "aws_secret_access_key",
            "aws_region",
        ];
        let options = self.env().into_iter().filter_map(|(k, v)| {
            let key = k.to_lowercase();
            known.contains(&key.as_str()).then_some((key, v))
        });
        lakehouse_lake::Lake::parse(uri)
            .expect("lake")
            .with_storage_options(options)
    }

    /// Grouped mode's manifest table as Terraform creates it: (`writer`, `version`) with a
    /// stream of keys.
    pub async fn create_manifest_table(&self, name: &str) {
        let attribute = |name: &str, kind| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(kind)
                .build()
                .expect("attribute")
        };
        let key = |name: &str, kind| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
                .expect("key")
        };
        let stream = aws_sdk_dynamodb::types::StreamSpecification::builder()
            .stream_enabled(true)
            .stream_view_type(aws_sdk_dynamodb::types::StreamViewType::KeysOnly)
            .build()
            .expect("stream");
        aws_sdk_dynamodb::Client::new(&self.sdk)
            .create_table()
            .table_name(name)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attribute("writer", ScalarAttributeType::S))
            .attribute_definitions(attribute("version", ScalarAttributeType::N))
            .key_schema(key("writer", KeyType::Hash))
            .key_schema(key("version", KeyType::Range))
            .stream_specification(stream)
            .send()
            .await
            .expect("create the manifest table");
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn env_for(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", endpoint.to_string()),
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ("AWS_REGION", REGION.into()),
        ("AWS_DEFAULT_REGION", REGION.into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
    ]
}

pub async fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("test", "test", None, None, "moto"))
        .load()
        .await
}
