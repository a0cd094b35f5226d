//! AWS SDK plumbing shared by every crate that calls an AWS SDK itself (the catalog's Glue
//! calls, the Lambdas' DynamoDB checkpoints and lease). S3 is delta-rs's business.

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// The AWS SDK configuration from the standard environment (region, credentials and
/// `AWS_ENDPOINT_URL`, which points every client at an emulator in tests).
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

/// An AWS SDK error in one line: the service's code and message when it answered, the
/// whole cause chain when it did not (timeouts, connection failures).
pub fn describe_sdk_error<E, R>(error: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match error.as_service_error() {
        Some(e) => format!(
            "{}: {}",
            e.code().unwrap_or("unknown error"),
            e.message().unwrap_or("no message")
        ),
        None => DisplayErrorContext(error).to_string(),
    }
}

/// True when a DynamoDB conditional write was refused because its condition did not hold
/// (someone else changed the item): the answer of an optimistic protocol, not a fault.
pub fn is_condition_failure<E, R>(error: &SdkError<E, R>) -> bool
where
    E: ProvideErrorMetadata,
{
    error
        .as_service_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "ConditionalCheckFailedException")
}
