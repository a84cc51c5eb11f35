//! HTTP adapters of the ECG Audio Analyzer: the callback notifier and the media fetcher that
//! implement `ecg_core`'s [`Notifier`](ecg_core::ports::Notifier) and
//! [`BlobFetcher`](ecg_core::ports::BlobFetcher) ports.
//!
//! Layout:
//! - [`notify`]: [`WebhookNotifier`] posts callbacks, HMAC-signed when a secret is set
//!   ([`signature`] of the body, [`timestamped_signature`] of a timestamp and the body).
//! - [`fetch`]: [`HttpFetcher`] streams `http(s)` media to disk and passes local files through.
//! - `guard`: the SSRF guard (URL check, connect-time resolver, redirect policy) both use; with
//!   local URLs allowed it still keeps cloud metadata addresses out of reach.
//! - `http`: the shared client builder and the classification of HTTP failures.
//!
//! This crate knows nothing of AWS: S3 sources are refused here, and the AWS adapter wraps
//! [`HttpFetcher`] (e.g. with presigned URLs).

pub mod fetch;
mod guard;
mod http;
pub mod notify;
#[cfg(test)]
mod testing;

pub use fetch::{FetchConfig, HttpFetcher};
pub use notify::{
    NotifierConfig, SIGNATURE_HEADER, SIGNATURE_V2_HEADER, TIMESTAMP_HEADER, WebhookNotifier,
    signature, timestamped_signature,
};
