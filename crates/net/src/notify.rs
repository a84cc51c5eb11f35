//! Signed webhook callbacks to the backend, retried on transient failures.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use ecg_core::contract::{Callback, CallbackStatus};
use ecg_core::metrics::{CALLBACK_ATTEMPTS, CALLBACKS};
use ecg_core::ports::{Notifier, NotifyError};
use ecg_core::request::AllowedHosts;
use hmac::{Hmac, Mac};
use reqwest::header::CONTENT_TYPE;
use sha2::Sha256;
use tracing::Instrument;
use url::Url;

use crate::guard;
use crate::http::{client_builder, request_error, shown, status_error};
use ecg_core::retry::{AttemptError, RetryPolicy};

/// The header carrying [`signature`] when a secret is configured.
pub const SIGNATURE_HEADER: &str = "X-Signature-256";
/// The Unix time (seconds) at which the callback was sent and signed.
pub const TIMESTAMP_HEADER: &str = "X-Signature-Timestamp";
/// The header carrying [`timestamped_signature`]: a captured callback replayed later fails the
/// receiver's freshness check, and its timestamp cannot be changed without the secret.
pub const SIGNATURE_V2_HEADER: &str = "X-Signature-V2";

/// The header carrying [`Callback::id`], the same on every retry of one callback.
pub const CALLBACK_ID_HEADER: &str = "X-Callback-Id";

/// The path the contract posts callbacks to, below the backend's base URL.
const RESULT_PATH: [&str; 3] = ["api", "upload-video", "result"];

/// How callbacks are delivered.
#[derive(Clone, Debug)]
pub struct NotifierConfig {
    /// Retries after the first attempt.
    pub retries: u32,
    /// Limit on one attempt, from connecting to the response's status.
    pub attempt_timeout: Duration,
    /// First backoff delay; it doubles per retry up to `max_delay`.
    pub base_delay: Duration,
    /// Cap on a backoff delay and on a 429's `Retry-After`.
    pub max_delay: Duration,
    /// HMAC-SHA256 key of the signature headers; none are sent without one.
    pub secret: Option<String>,
    /// Allows callbacks to loopback and private addresses (local use and tests).
    pub allow_local: bool,
    /// `ECG_CALLBACK_ALLOWED_HOSTS`: callbacks to other hosts are not sent. The API refuses such
    /// requests already; this also covers a worker configured apart from its API, and jobs
    /// accepted before the list was set.
    pub allowed_hosts: Option<AllowedHosts>,
}

impl Default for NotifierConfig {
    fn default() -> Self {
        Self {
            retries: 3,
            attempt_timeout: Duration::from_secs(10),
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
            secret: None,
            allow_local: false,
            allowed_hosts: None,
        }
    }
}

/// Lowercase hex HMAC-SHA256 of the concatenated `parts`.
fn hmac_hex(secret: &[u8], parts: &[&[u8]]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        unreachable!("HMAC takes keys of any length")
    };
    for part in parts {
        mac.update(part);
    }
    hex::encode(mac.finalize().into_bytes())
}

/// The `X-Signature-256` value for `body`: `sha256=` and the lowercase hex HMAC-SHA256.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    format!("sha256={}", hmac_hex(secret, &[body]))
}

/// The `X-Signature-V2` value: `t=<timestamp>,sha256=<hex HMAC-SHA256 of "<timestamp>." + body>`.
pub fn timestamped_signature(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    let t = timestamp.to_string();
    let mac = hmac_hex(secret, &[t.as_bytes(), b".", body]);
    format!("t={t},sha256={mac}")
}

/// Posts callbacks to `{base}/api/upload-video/result`.
///
/// Redirects are not followed: a callback is a POST to a configured endpoint, and a redirect
/// would be one more place for the guard to police. A 3xx is a permanent failure.
#[derive(Clone, Debug)]
pub struct WebhookNotifier {
    client: reqwest::Client,
    config: NotifierConfig,
}

impl WebhookNotifier {
    pub fn new(config: NotifierConfig) -> Result<Self, reqwest::Error> {
        let client = client_builder(config.allow_local)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self { client, config })
    }

    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            retries: self.config.retries,
            base: self.config.base_delay,
            cap: self.config.max_delay,
        }
    }

    async fn attempt(
        &self,
        url: &Url,
        callback: &SerialisedCallback,
        attempt: u32,
    ) -> Result<(), AttemptError> {
        let (id, body) = (callback.id.as_str(), callback.body.as_slice());
        let mut request = self
            .client
            .post(url.clone())
            .timeout(self.config.attempt_timeout)
            .header(CONTENT_TYPE, "application/json")
            .header(CALLBACK_ID_HEADER, id)
            .body(body.to_vec());
        if let Some(secret) = &self.config.secret {
            // Signed at each attempt: a retry carries the time it was really sent.
            let now = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            request = request
                .header(SIGNATURE_HEADER, signature(secret.as_bytes(), body))
                .header(TIMESTAMP_HEADER, now)
                .header(
                    SIGNATURE_V2_HEADER,
                    timestamped_signature(secret.as_bytes(), now, body),
                );
        }
        // Failures are logged by the retry loop, inside this callback's span.
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => {
                let outcome = if e.is_timeout() {
                    "timeout"
                } else {
                    "connection_error"
                };
                count_attempt(callback.kind, outcome);
                return Err(request_error(e));
            }
        };
        let status = response.status();
        tracing::info!(attempt, status = status.as_u16(), "callback response");
        if status.is_success() {
            count_attempt(callback.kind, "delivered");
            Ok(())
        } else {
            count_attempt(callback.kind, "http_error");
            Err(status_error(&response, format!("HTTP {status}")))
        }
    }

    /// Sends `callback` with retries; an error with no attempts means it was not sent at all.
    async fn deliver(
        &self,
        base: &Url,
        callback: &Callback,
        superseded: &(dyn Fn() -> bool + Send + Sync),
    ) -> Result<(), NotifyError> {
        let gave_up = |target: String, attempts: u32, reason: String| NotifyError {
            target,
            attempts,
            reason,
        };
        let Some(url) = result_url(base) else {
            return Err(gave_up(base.to_string(), 0, "not a base URL".to_owned()));
        };
        let target = shown(&url);
        if let Err(refused) = guard::check_url(&url, self.config.allow_local) {
            return Err(gave_up(target, 0, refused.to_string()));
        }
        if let Some(allowed) = &self.config.allowed_hosts
            && !url.host().is_some_and(|host| allowed.contains(&host))
        {
            let why = format!("refused: the host is not in ECG_CALLBACK_ALLOWED_HOSTS ({allowed})");
            return Err(gave_up(target, 0, why));
        }
        // Serialised once: the signatures cover exactly the bytes every attempt sends.
        let serialised = SerialisedCallback {
            id: callback.id(),
            kind: kind_of(callback),
            body: serde_json::to_vec(callback)
                .map_err(|e| gave_up(target.clone(), 0, format!("cannot serialise: {e}")))?,
        };
        let span = tracing::info_span!(
            "callback",
            job_id = %callback.job_id,
            callback_status = ?callback.status,
            target = %target
        );
        self.retry_policy()
            .run_unless(|n| self.attempt(&url, &serialised, n), superseded)
            .instrument(span)
            .await
            .map_err(|e| gave_up(target, e.attempts, e.message))
    }
}

/// A callback as every attempt sends it.
struct SerialisedCallback {
    /// [`Callback::id`], the same on every retry.
    id: String,
    kind: &'static str,
    body: Vec<u8>,
}

/// The `kind` label of the callback metrics.
fn kind_of(callback: &Callback) -> &'static str {
    match callback.status {
        CallbackStatus::Processing => "progress",
        CallbackStatus::Completed | CallbackStatus::Failed => "terminal",
    }
}

fn count_attempt(kind: &'static str, outcome: &'static str) {
    metrics::counter!(CALLBACK_ATTEMPTS, "kind" => kind, "outcome" => outcome).increment(1);
}

/// `{base}/api/upload-video/result`, whether or not `base` has a path prefix or a trailing slash.
fn result_url(base: &Url) -> Option<Url> {
    let mut url = base.clone();
    url.path_segments_mut()
        .ok()?
        .pop_if_empty()
        .extend(RESULT_PATH);
    url.set_fragment(None);
    Some(url)
}

#[async_trait]
impl Notifier for WebhookNotifier {
    async fn send_unless(
        &self,
        base: &Url,
        callback: &Callback,
        superseded: &(dyn Fn() -> bool + Send + Sync),
    ) -> Result<(), NotifyError> {
        let sent = self.deliver(base, callback, superseded).await;
        let outcome = match &sent {
            Ok(()) => "delivered",
            Err(e) if e.attempts == 0 => "refused",
            Err(_) => "failed",
        };
        metrics::counter!(CALLBACKS, "kind" => kind_of(callback), "outcome" => outcome)
            .increment(1);
        sent
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Reply, TestServer, closed_port, seq};
    use ecg_core::contract::CallbackStatus;
    use ecg_core::error::ErrorCode;
    use std::time::Instant;

    const MS: Duration = Duration::from_millis(1);

    fn progress() -> Callback {
        Callback {
            job_id: "550e8400-e29b-41d4-a716-446655440000".to_owned(),
            status: CallbackStatus::Processing,
            progress: Some(60),
            message: Some("음성을 텍스트로 변환 중...".to_owned()),
            result: None,
            error_message: None,
            error_code: None,
        }
    }

    fn failure() -> Callback {
        Callback {
            job_id: "550e8400-e29b-41d4-a716-446655440000".to_owned(),
            status: CallbackStatus::Failed,
            progress: None,
            message: None,
            result: None,
            error_message: Some("오디오 추출 실패".to_owned()),
            error_code: Some(ErrorCode::AudioExtractionError),
        }
    }

    /// Local receivers allowed, short delays.
    fn config() -> NotifierConfig {
        NotifierConfig {
            base_delay: 10 * MS,
            max_delay: 50 * MS,
            attempt_timeout: Duration::from_secs(5),
            allow_local: true,
            ..NotifierConfig::default()
        }
    }

    fn notifier(config: NotifierConfig) -> WebhookNotifier {
        WebhookNotifier::new(config).unwrap()
    }

    #[tokio::test]
    async fn posts_the_callback_signed_to_the_result_path() {
        let server = TestServer::start(seq(vec![Reply::status(200)])).await;
        let cb = failure();
        let n = notifier(NotifierConfig {
            secret: Some("s3cr3t".to_owned()),
            ..config()
        });
        n.send(&server.url("/backend/"), &cb).await.unwrap();

        let requests = server.requests();
        assert_eq!(requests.len(), 1);
        let r = &requests[0];
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/backend/api/upload-video/result");
        assert_eq!(r.headers["content-type"], "application/json");
        // Exactly the callback's fields, nothing added.
        let json: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        let mut keys: Vec<_> = json.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(keys, ["error_code", "error_message", "job_id", "status"]);
        assert_eq!(serde_json::from_value::<Callback>(json).unwrap(), cb);
        // The signature covers the raw body as received.
        let header = r.headers[SIGNATURE_HEADER].to_str().unwrap();
        assert_eq!(header, signature(b"s3cr3t", &r.body));
        let mut mac = Hmac::<Sha256>::new_from_slice(b"s3cr3t").unwrap();
        mac.update(&r.body);
        let hex_mac = header.strip_prefix("sha256=").unwrap();
        mac.verify_slice(&hex::decode(hex_mac).unwrap()).unwrap();
        // The timestamped signature, checked as the README tells the backend to.
        let sent_at = verify_timestamped(b"s3cr3t", r);
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(now.abs_diff(sent_at) <= 5, "{sent_at} vs {now}");
    }

    /// Checks `X-Signature-V2` against the raw body and `X-Signature-Timestamp`; the timestamp.
    fn verify_timestamped(secret: &[u8], r: &crate::testing::Recorded) -> u64 {
        let v2 = r.headers[SIGNATURE_V2_HEADER].to_str().unwrap();
        let (t, hex_mac) = v2
            .strip_prefix("t=")
            .and_then(|rest| rest.split_once(",sha256="))
            .unwrap();
        assert_eq!(r.headers[TIMESTAMP_HEADER].to_str().unwrap(), t);
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
        mac.update(t.as_bytes());
        mac.update(b".");
        mac.update(&r.body);
        mac.verify_slice(&hex::decode(hex_mac).unwrap()).unwrap();
        t.parse().unwrap()
    }

    #[tokio::test]
    async fn no_signature_without_a_secret() {
        let server = TestServer::start(seq(vec![Reply::status(204)])).await;
        notifier(config())
            .send(&server.url(""), &progress())
            .await
            .unwrap();
        let r = &server.requests()[0];
        assert_eq!(r.path, "/api/upload-video/result");
        for header in [SIGNATURE_HEADER, TIMESTAMP_HEADER, SIGNATURE_V2_HEADER] {
            assert!(!r.headers.contains_key(header), "{header}");
        }
    }

    #[tokio::test]
    async fn server_errors_are_retried_with_the_same_body() {
        let server = TestServer::start(seq(vec![
            Reply::status(500),
            Reply::status(500),
            Reply::status(200),
        ]))
        .await;
        let n = notifier(NotifierConfig {
            secret: Some("k".to_owned()),
            ..config()
        });
        n.send(&server.url("/"), &progress()).await.unwrap();
        let requests = server.requests();
        assert_eq!(requests.len(), 3);
        for r in &requests {
            assert_eq!(r.body, requests[0].body);
            assert_eq!(
                r.headers[SIGNATURE_HEADER],
                requests[0].headers[SIGNATURE_HEADER]
            );
            verify_timestamped(b"k", r);
            assert_eq!(r.headers[CALLBACK_ID_HEADER], progress().id());
        }
    }

    #[tokio::test]
    async fn throttling_is_retried_and_retry_after_is_capped() {
        // Retry-After asks for an hour; max_delay caps the wait at 50 ms.
        let server = TestServer::start(seq(vec![
            Reply::status(429).header("retry-after", "3600"),
            Reply::status(200),
        ]))
        .await;
        let started = Instant::now();
        notifier(config())
            .send(&server.url("/"), &progress())
            .await
            .unwrap();
        assert_eq!(server.count(), 2);
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn retry_after_is_honoured_below_the_cap() {
        let server = TestServer::start(seq(vec![
            Reply::status(429).header("retry-after", "1"),
            Reply::status(200),
        ]))
        .await;
        let started = Instant::now();
        let n = notifier(NotifierConfig {
            max_delay: Duration::from_secs(5),
            ..config()
        });
        n.send(&server.url("/"), &progress()).await.unwrap();
        assert_eq!(server.count(), 2);
        assert!(started.elapsed() >= Duration::from_secs(1));
    }

    #[tokio::test]
    async fn client_errors_are_not_retried() {
        let server = TestServer::start(seq(vec![Reply::status(400)])).await;
        let err = notifier(config())
            .send(&server.url("/"), &progress())
            .await
            .unwrap_err();
        assert_eq!(server.count(), 1);
        assert_eq!(err.attempts, 1);
        assert!(err.reason.contains("400"), "{err}");
        assert!(err.target.ends_with("/api/upload-video/result"), "{err}");
    }

    #[tokio::test]
    async fn redirects_are_not_followed() {
        let server = TestServer::start(seq(vec![Reply::redirect("/elsewhere")])).await;
        let err = notifier(config())
            .send(&server.url("/"), &progress())
            .await
            .unwrap_err();
        assert_eq!((server.count(), err.attempts), (1, 1));
        assert!(err.reason.contains("302"), "{err}");
    }

    #[tokio::test]
    async fn a_receiver_that_is_down_costs_retries_plus_one_attempts() {
        let addr = closed_port().await;
        let base = Url::parse(&format!("http://{addr}/")).unwrap();
        let started = Instant::now();
        let err = notifier(config())
            .send(&base, &progress())
            .await
            .unwrap_err();
        assert_eq!(err.attempts, 4);
        assert!(started.elapsed() < Duration::from_secs(3));
    }

    #[tokio::test]
    async fn a_slow_receiver_times_out_and_is_retried() {
        let server = TestServer::start(seq(vec![
            Reply::status(200).delayed(Duration::from_secs(2)),
            Reply::status(200),
        ]))
        .await;
        let n = notifier(NotifierConfig {
            attempt_timeout: 200 * MS,
            ..config()
        });
        n.send(&server.url("/"), &progress()).await.unwrap();
        assert_eq!(server.count(), 2);
    }

    #[tokio::test]
    async fn local_receivers_are_refused_unless_allowed() {
        let server = TestServer::start(seq(vec![Reply::status(200)])).await;
        let strict = notifier(NotifierConfig {
            allow_local: false,
            ..config()
        });
        // An IP literal is refused before any attempt.
        let err = strict
            .send(&server.url("/"), &progress())
            .await
            .unwrap_err();
        assert_eq!(err.attempts, 0);
        assert!(err.reason.contains("not a public address"), "{err}");
        // A name is refused by the resolver, at connect time, and not retried.
        let by_name = Url::parse(&format!("http://localhost:{}/", server.addr.port())).unwrap();
        let err = strict.send(&by_name, &progress()).await.unwrap_err();
        assert_eq!(err.attempts, 1);
        assert!(err.reason.contains("not a public address"), "{err}");
        assert_eq!(server.count(), 0);
    }

    #[tokio::test]
    async fn hosts_off_the_allow_list_are_not_called() {
        let server = TestServer::start(seq(vec![Reply::status(200)])).await;
        let listed = |hosts: &str| {
            notifier(NotifierConfig {
                allowed_hosts: Some(hosts.parse().unwrap()),
                ..config()
            })
        };
        let err = listed("backend.example")
            .send(&server.url("/"), &progress())
            .await
            .unwrap_err();
        assert_eq!(err.attempts, 0);
        assert!(err.reason.contains("ECG_CALLBACK_ALLOWED_HOSTS"), "{err}");
        assert_eq!(server.count(), 0);
        listed("backend.example,127.0.0.1")
            .send(&server.url("/"), &progress())
            .await
            .unwrap();
        assert_eq!(server.count(), 1);
    }

    #[test]
    fn result_url_joins_any_base() {
        for (base, want) in [
            (
                "https://b.example",
                "https://b.example/api/upload-video/result",
            ),
            (
                "https://b.example/",
                "https://b.example/api/upload-video/result",
            ),
            (
                "https://b.example/v2",
                "https://b.example/v2/api/upload-video/result",
            ),
            (
                "https://b.example/v2/",
                "https://b.example/v2/api/upload-video/result",
            ),
            (
                "http://127.0.0.1:8000/#x",
                "http://127.0.0.1:8000/api/upload-video/result",
            ),
        ] {
            let got = result_url(&Url::parse(base).unwrap()).unwrap();
            assert_eq!(got.as_str(), want, "{base}");
        }
        assert!(result_url(&Url::parse("mailto:a@b.example").unwrap()).is_none());
    }

    #[test]
    fn the_timestamp_is_part_of_the_signed_material() {
        let body = br#"{"job_id":"x","status":"completed"}"#;
        let v2 = timestamped_signature(b"k", 1_700_000_000, body);
        assert!(v2.starts_with("t=1700000000,sha256="), "{v2}");
        let mac = v2.split_once(",sha256=").unwrap().1;
        assert_eq!(mac.len(), 64);
        assert_ne!(v2, timestamped_signature(b"k", 1_700_000_001, body));
        // Not the plain body signature: the two headers cannot stand in for each other.
        assert_ne!(format!("sha256={mac}"), signature(b"k", body));
    }

    #[test]
    fn signature_is_the_hex_hmac_of_the_body() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
