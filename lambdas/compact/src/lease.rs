//! One compaction at a time per lake: a lease item in DynamoDB.
//!
//! Acquiring is a conditional write that succeeds only when nobody holds an unexpired
//! lease, and bumps a fencing token. Before each commit the holder renews the lease on
//! the condition that the token is still its own: a run that overran its lease and lost
//! it to the next one stops before committing anything more. (Two runs committing the
//! same raw versions would also collide on the staging `txn`; the lease keeps them from
//! doing the work at all, and keeps maintenance single.)

use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use chrono::Utc;
use lakehouse_aws::{describe_sdk_error, is_condition_failure};
use lakehouse_compact::FenceError;

const KEY: &str = "id";
// Not `owner`/`token`: those are DynamoDB reserved words.
const OWNER: &str = "lease_owner";
const TOKEN: &str = "fencing_token";
const EXPIRES_AT: &str = "expires_at_ms";

#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("DynamoDB {operation} on {table}: {message}")]
    Dynamo {
        operation: &'static str,
        table: String,
        message: String,
    },
    #[error("lease {key} was taken over (token {token} is no longer current): stopping")]
    Lost { key: String, token: i64 },
    #[error("lease {key} is unreadable: {reason}")]
    Corrupt { key: String, reason: String },
}

/// A held lease. Renew it before each commit with [`Lease::renew`].
#[derive(Debug, Clone)]
pub struct Lease {
    client: Client,
    table: String,
    key: String,
    owner: String,
    token: i64,
    ttl: Duration,
}

/// Who holds a lease that could not be acquired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldBy {
    pub owner: String,
    pub expires_in_ms: i64,
}

fn dynamo_error<E, R>(table: &str, operation: &'static str, error: SdkError<E, R>) -> LeaseError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    LeaseError::Dynamo {
        operation,
        table: table.to_string(),
        message: describe_sdk_error(&error),
    }
}

impl Lease {
    /// Takes the lease `key` for `ttl` if nobody holds it, or returns who does.
    pub async fn acquire(
        client: Client,
        table: &str,
        key: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<Result<Lease, HeldBy>, LeaseError> {
        let now = Utc::now().timestamp_millis();
        let result = client
            .update_item()
            .table_name(table)
            .key(KEY, AttributeValue::S(key.to_string()))
            .update_expression(format!(
                "SET {OWNER} = :holder, {EXPIRES_AT} = :expires ADD {TOKEN} :one"
            ))
            .condition_expression(format!(
                "attribute_not_exists({EXPIRES_AT}) OR {EXPIRES_AT} < :now"
            ))
            .expression_attribute_values(":holder", AttributeValue::S(owner.to_string()))
            .expression_attribute_values(":expires", millis(now + ttl_ms(ttl)))
            .expression_attribute_values(":now", millis(now))
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(output) => {
                let token = output
                    .attributes()
                    .and_then(|a| a.get(TOKEN))
                    .and_then(|v| v.as_n().ok())
                    .and_then(|n| n.parse::<i64>().ok())
                    .ok_or_else(|| LeaseError::Corrupt {
                        key: key.to_string(),
                        reason: "no numeric token after acquiring".into(),
                    })?;
                Ok(Ok(Lease {
                    client,
                    table: table.to_string(),
                    key: key.to_string(),
                    owner: owner.to_string(),
                    token,
                    ttl,
                }))
            }
            Err(e) if is_condition_failure(&e) => Ok(Err(Self::holder(&client, table, key).await?)),
            Err(e) => Err(dynamo_error(table, "UpdateItem", e)),
        }
    }

    async fn holder(client: &Client, table: &str, key: &str) -> Result<HeldBy, LeaseError> {
        let output = client
            .get_item()
            .table_name(table)
            .key(KEY, AttributeValue::S(key.to_string()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| dynamo_error(table, "GetItem", e))?;
        let item = output.item();
        let owner = item
            .and_then(|i| i.get(OWNER))
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default();
        let expires = item
            .and_then(|i| i.get(EXPIRES_AT))
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse::<i64>().ok())
            .unwrap_or(0);
        Ok(HeldBy {
            owner,
            expires_in_ms: expires - Utc::now().timestamp_millis(),
        })
    }

    pub fn token(&self) -> i64 {
        self.token
    }

    /// Extends the lease if it is still ours (same owner and fencing token); otherwise
    /// the caller must not commit.
    pub async fn renew(&self) -> Result<(), LeaseError> {
        let expires = Utc::now().timestamp_millis() + ttl_ms(self.ttl);
        self.conditional_set(expires, "UpdateItem").await
    }

    /// Gives the lease up early so the next run need not wait for it to expire.
    pub async fn release(self) -> Result<(), LeaseError> {
        self.conditional_set(0, "UpdateItem").await
    }

    async fn conditional_set(
        &self,
        expires: i64,
        operation: &'static str,
    ) -> Result<(), LeaseError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(KEY, AttributeValue::S(self.key.clone()))
            .update_expression(format!("SET {EXPIRES_AT} = :expires"))
            .condition_expression(format!("{OWNER} = :holder AND {TOKEN} = :fence"))
            .expression_attribute_values(":expires", millis(expires))
            .expression_attribute_values(":holder", AttributeValue::S(self.owner.clone()))
            .expression_attribute_values(":fence", AttributeValue::N(self.token.to_string()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => Err(LeaseError::Lost {
                key: self.key.clone(),
                token: self.token,
            }),
            Err(e) => Err(dynamo_error(&self.table, operation, e)),
        }
    }
}

fn ttl_ms(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 2)
}

fn millis(ms: i64) -> AttributeValue {
    AttributeValue::N(ms.to_string())
}

impl lakehouse_compact::CommitFence for Lease {
    fn check(&self) -> futures::future::BoxFuture<'_, Result<(), FenceError>> {
        Box::pin(async move {
            self.renew().await.map_err(|e| match e {
                LeaseError::Lost { .. } => FenceError::Lost(e.to_string()),
                // A throttle or an outage is not a lost lease: the run fails, is alarmed
                // (the function's Errors) and the next scheduled run tries again.
                LeaseError::Dynamo { .. } | LeaseError::Corrupt { .. } => {
                    FenceError::Unavailable(e.to_string())
                }
            })
        })
    }
}
