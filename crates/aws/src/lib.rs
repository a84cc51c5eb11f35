//! AWS adapters of the ECG Audio Analyzer: they implement `ecg_core`'s ports on managed services,
//! so the API function and the GPU runner share job state without sharing a process.
//!
//! Layout:
//! - [`config`]: [`AwsConfig`] (table, queue and bucket names from the environment) and the SDK
//!   clients built from it once, [`AwsClients`].
//! - [`store`]: [`DynamoJobStore`], a [`JobStore`](ecg_core::ports::JobStore) whose every change
//!   is a conditional write on the record's version.
//! - [`queue`]: [`SqsQueue`], a [`JobQueue`](ecg_core::ports::JobQueue) where a lease is the
//!   message's visibility timeout and the delivery count is SQS's `ApproximateReceiveCount`.
//! - [`dead_letter`]: [`fail_dead_letters`] fails the jobs whose messages SQS gave up on.
//! - [`fetch`]: [`S3Fetcher`], a [`BlobFetcher`](ecg_core::ports::BlobFetcher) for `s3://` and
//!   unsigned S3 `https://` URLs that hands every other source to an inner fetcher.
//! - [`uploads`]: [`S3UploadSlots`], presigned `PUT` URLs into the media bucket for media too
//!   large for a request.
//! - [`notices`]: [`InstanceNotices`], the instance metadata service's word that this instance is
//!   going (spot interruption, rebalance recommendation, scale-in), and its Auto Scaling group.
//! - `lifecycle` (feature `autoscaling`): `LifecycleHook`, which ends a drained instance's
//!   termination wait instead of letting the hook time out.
//! - `testing` (feature `testing`): a moto server launcher and the resources tests need; also
//!   behind `examples/moto.rs`, the local stand-in for the stack (`infra/aws/moto.sh`).
//!
//! Depends on `ecg-core`, the AWS SDK and two small codecs (gzip, percent-decoding). It must not
//! depend on an HTTP framework, the speech models or another adapter crate (the HTTP fetcher is
//! injected), so the API function links none of them.

pub mod config;
pub mod dead_letter;
pub mod fetch;
#[cfg(feature = "autoscaling")]
pub mod lifecycle;
pub mod notices;
pub mod queue;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;
pub mod uploads;

pub use config::{AwsClients, AwsConfig, LifecycleConfig};
pub use dead_letter::fail_dead_letters;
pub use fetch::S3Fetcher;
#[cfg(feature = "autoscaling")]
pub use lifecycle::LifecycleHook;
pub use notices::{GroupMember, InstanceNotices, Notice};
pub use queue::SqsQueue;
pub use store::DynamoJobStore;
pub use uploads::S3UploadSlots;

use aws_sdk_dynamodb::error::DisplayErrorContext;
use ecg_core::ports::BackendError;

/// An SDK failure as a [`BackendError`] with its whole source chain: the top-level message of an
/// SDK error alone is often just "service error".
fn backend_error(what: &str, error: &impl std::error::Error) -> BackendError {
    BackendError::new(format!("{what}: {}", DisplayErrorContext(error)))
}
