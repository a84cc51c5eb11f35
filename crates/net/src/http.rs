//! What the notifier and the fetcher share about HTTP: the guarded client, error and status
//! classification, and URLs fit for logs and messages.

use std::error::Error;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::RETRY_AFTER;
use reqwest::{ClientBuilder, Response, StatusCode};
use url::Url;

use crate::guard;
use ecg_core::retry::AttemptError;

/// A client builder whose connections pass the SSRF guard.
///
/// System proxies are ignored: a proxy resolves names itself, out of the guard's reach.
pub(crate) fn client_builder(allow_local: bool) -> ClientBuilder {
    reqwest::Client::builder()
        .no_proxy()
        .user_agent(concat!("ecg-net/", env!("CARGO_PKG_VERSION")))
        .dns_resolver(Arc::new(guard::GuardedResolver { allow_local }))
}

/// The URL without credentials, query or fragment: presigned URLs carry secrets in the query.
pub(crate) fn shown(url: &Url) -> String {
    let mut url = url.clone();
    // Cannot fail for http(s) URLs, the only ones that reach a request.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.set_query(None);
    url.set_fragment(None);
    url.to_string()
}

/// 5xx, 408 Request Timeout and 429 Too Many Requests are worth another attempt.
pub(crate) fn transient_status(status: StatusCode) -> bool {
    status.is_server_error()
        || status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
}

/// An error status as an attempt error, with the server's `Retry-After` (in seconds) when given.
pub(crate) fn status_error(response: &Response, message: String) -> AttemptError {
    let status = response.status();
    if !transient_status(status) {
        return AttemptError::permanent(message);
    }
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    AttemptError {
        retry_after,
        ..AttemptError::transient(message)
    }
}

/// A failed request as an attempt error. Refusals by the guard, redirect errors and requests
/// that could not be built are permanent; connection errors, timeouts and broken bodies are not.
pub(crate) fn request_error(err: reqwest::Error) -> AttemptError {
    // reqwest's message would print the full URL, secrets included: callers name it with `shown`.
    let err = err.without_url();
    let message = chain(&err);
    if guard::refused(&err) || err.is_redirect() || err.is_builder() {
        AttemptError::permanent(message)
    } else {
        AttemptError::transient(message)
    }
}

/// The error and its sources, "outer: inner: …", without repeating a source already shown.
fn chain(err: &(dyn Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut next = err.source();
    while let Some(e) = next {
        let part = e.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        next = e.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_urls_lose_their_secrets() {
        let url = Url::parse("https://user:pw@bucket.s3.amazonaws.com/v.mp4?X-Amz-Signature=abc#t")
            .unwrap();
        assert_eq!(shown(&url), "https://bucket.s3.amazonaws.com/v.mp4");
    }

    #[test]
    fn transient_statuses() {
        for code in [500, 502, 503, 504, 408, 429] {
            assert!(
                transient_status(StatusCode::from_u16(code).unwrap()),
                "{code}"
            );
        }
        for code in [400, 401, 403, 404, 410, 413] {
            assert!(
                !transient_status(StatusCode::from_u16(code).unwrap()),
                "{code}"
            );
        }
    }
}
