//! Media download over HTTP(S), streamed to disk, and local files passed through.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use ecg_core::error::FetchError;
use ecg_core::metrics;
use ecg_core::ports::{BlobFetcher, FetchLimits};
use ecg_core::request::MediaSource;
use reqwest::ClientBuilder;
use tokio::io::{AsyncWriteExt, BufWriter};
use tokio::time::timeout;
use tracing::Instrument;
use url::Url;

use crate::guard;
use crate::http::{client_builder, request_error, shown, status_error};
use ecg_core::retry::AttemptError;

/// Redirects followed before a download fails.
const MAX_REDIRECTS: usize = 5;

/// Write buffer: a tokio file write is a blocking-pool round trip, so chunks are batched.
const WRITE_BUFFER: usize = 256 * 1024;

/// How the HTTP fetcher downloads: the limits every fetcher shares, and HTTP's own settings.
#[derive(Clone, Debug)]
pub struct FetchConfig {
    pub limits: FetchLimits,
    pub connect_timeout: Duration,
    /// Allows loopback and private addresses (local use and tests).
    pub allow_local: bool,
}

impl Default for FetchConfig {
    fn default() -> Self {
        Self {
            limits: FetchLimits::default(),
            connect_timeout: Duration::from_secs(10),
            allow_local: false,
        }
    }
}

/// Fetches `MediaSource::Http` by download and `MediaSource::File` in place. S3 sources belong
/// to the AWS adapter, which may hand this fetcher presigned URLs.
#[derive(Clone, Debug)]
pub struct HttpFetcher {
    client: reqwest::Client,
    config: FetchConfig,
}

impl HttpFetcher {
    pub fn new(config: FetchConfig) -> Result<Self, reqwest::Error> {
        Self::with_client(config, |builder| builder)
    }

    /// `adjust` lets tests pin a name to a local test server, past the resolver.
    fn with_client(
        config: FetchConfig,
        adjust: impl FnOnce(ClientBuilder) -> ClientBuilder,
    ) -> Result<Self, reqwest::Error> {
        let builder = client_builder(config.allow_local)
            .redirect(guard::redirect_policy(MAX_REDIRECTS, config.allow_local))
            .connect_timeout(config.connect_timeout);
        let client = adjust(builder).build()?;
        Ok(Self { client, config })
    }

    /// Downloads `url` to `dest`, retrying transient failures; a failed download leaves no file.
    async fn download(&self, url: &Url, dest: &Path) -> Result<(), FetchError> {
        let shown_url = shown(url);
        if let Err(e) = guard::check_url(url, self.config.allow_local) {
            metrics::count_download("http", "refused");
            return Err(FetchError::permanent(format!("{e} ({shown_url})")));
        }
        self.config
            .limits
            .download("http", &shown_url, dest, |attempt| {
                self.attempt(url, dest, attempt)
            })
            .instrument(tracing::info_span!("fetch", url = %shown_url))
            .await
    }

    async fn attempt(&self, url: &Url, dest: &Path, attempt: u32) -> Result<(), AttemptError> {
        let shown_url = shown(url);
        let stall = self.config.limits.stall_timeout;
        let stalled = |what: String| {
            AttemptError::transient(format!(
                "{what} from {shown_url}: nothing received for {}s",
                stall.as_secs_f64()
            ))
        };
        let failed = |e: reqwest::Error| {
            let e = request_error(e);
            AttemptError {
                message: format!("{} ({shown_url})", e.message),
                ..e
            }
        };
        let mut response = match timeout(stall, self.client.get(url.clone()).send()).await {
            Err(_) => return Err(stalled("no response".to_owned())),
            Ok(Err(e)) => return Err(failed(e)),
            Ok(Ok(response)) => response,
        };
        let status = response.status();
        tracing::info!(attempt, status = status.as_u16(), "download response");
        if !status.is_success() {
            return Err(status_error(
                &response,
                format!("HTTP {status} for {shown_url}"),
            ));
        }
        let max = self.config.limits.max_bytes;
        if let Some(size) = response.content_length().filter(|&size| size > max) {
            return Err(AttemptError::permanent(format!(
                "{shown_url} is {size} bytes, over the limit of {max} bytes"
            )));
        }
        let write_error = |e: std::io::Error| {
            AttemptError::permanent(format!("cannot write {}: {e}", dest.display()))
        };
        let file = tokio::fs::File::create(dest).await.map_err(write_error)?;
        let mut out = BufWriter::with_capacity(WRITE_BUFFER, file);
        let mut received: u64 = 0;
        loop {
            let chunk = match timeout(stall, response.chunk()).await {
                Err(_) => return Err(stalled(format!("stalled after {received} bytes"))),
                Ok(Err(e)) => return Err(failed(e)),
                Ok(Ok(None)) => break,
                Ok(Ok(Some(chunk))) => chunk,
            };
            received += chunk.len() as u64;
            if received > max {
                return Err(AttemptError::permanent(format!(
                    "{shown_url} grew past the limit of {max} bytes while downloading"
                )));
            }
            out.write_all(&chunk).await.map_err(write_error)?;
        }
        // A body shorter than its Content-Length is a transient body error from hyper, above.
        out.flush().await.map_err(write_error)?;
        tracing::info!(attempt, bytes = received, "download complete");
        Ok(())
    }
}

#[async_trait]
impl BlobFetcher for HttpFetcher {
    async fn fetch(&self, source: &MediaSource, dest: &Path) -> Result<PathBuf, FetchError> {
        match source {
            MediaSource::Http { url } => {
                self.download(url, dest).await?;
                Ok(dest.to_path_buf())
            }
            MediaSource::File { path } => match tokio::fs::metadata(path).await {
                Ok(meta) if meta.is_file() => Ok(path.clone()),
                Ok(_) => Err(FetchError::permanent(format!(
                    "not a regular file: {}",
                    path.display()
                ))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(FetchError::permanent(
                    format!("file not found: {}", path.display()),
                )),
                Err(e) => Err(FetchError::permanent(format!(
                    "cannot read {}: {e}",
                    path.display()
                ))),
            },
            MediaSource::S3 { .. } => Err(FetchError::permanent(format!(
                "{source}: S3 sources need the AWS adapter"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{RawServer, Reply, TestServer, seq};
    use std::net::SocketAddr;
    use std::time::Instant;

    const MS: Duration = Duration::from_millis(1);

    /// Local servers allowed, short delays.
    fn config() -> FetchConfig {
        FetchConfig {
            limits: FetchLimits {
                base_delay: 10 * MS,
                max_delay: 50 * MS,
                stall_timeout: Duration::from_secs(5),
                ..FetchLimits::default()
            },
            allow_local: true,
            ..FetchConfig::default()
        }
    }

    /// The test configuration with other limits.
    fn limited(limits: FetchLimits) -> FetchConfig {
        FetchConfig { limits, ..config() }
    }

    fn fetcher(config: FetchConfig) -> HttpFetcher {
        HttpFetcher::new(config).unwrap()
    }

    /// A fetcher that refuses local addresses but reaches `media.test` at `addr`: the one way
    /// to test the redirect guard with servers that can only listen on 127.0.0.1.
    fn strict_fetcher_pinned(addr: SocketAddr) -> HttpFetcher {
        let strict = FetchConfig {
            allow_local: false,
            ..config()
        };
        HttpFetcher::with_client(strict, |b| b.resolve("media.test", addr)).unwrap()
    }

    fn http(url: Url) -> MediaSource {
        MediaSource::Http { url }
    }

    fn media(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[tokio::test]
    async fn downloads_byte_exact() {
        let body = media(3 * 1024 * 1024 + 17);
        let server = TestServer::start(seq(vec![Reply::body(body.clone())])).await;
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("media.mp4");
        let got = fetcher(config())
            .fetch(&http(server.url("/v.mp4?sig=1")), &dest)
            .await
            .unwrap();
        assert_eq!(got, dest);
        assert_eq!(std::fs::read(&dest).unwrap(), body);
        assert_eq!(server.requests()[0].path, "/v.mp4");
    }

    #[tokio::test]
    async fn not_found_is_permanent_and_asked_once() {
        let server = TestServer::start(seq(vec![Reply::status(404)])).await;
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("media.mp4");
        let err = fetcher(config())
            .fetch(
                &http(server.url("/missing.mp4?X-Amz-Signature=secret")),
                &dest,
            )
            .await
            .unwrap_err();
        assert!(!err.transient);
        assert!(err.message.contains("404 Not Found"), "{err}");
        assert!(!err.message.contains("secret"), "{err}");
        assert_eq!(server.count(), 1);
        assert!(!dest.exists());
    }

    #[tokio::test]
    async fn server_errors_are_retried() {
        let server = TestServer::start(seq(vec![
            Reply::status(500),
            Reply::status(500),
            Reply::body(b"video".to_vec()),
        ]))
        .await;
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("media.mp4");
        fetcher(config())
            .fetch(&http(server.url("/v.mp4")), &dest)
            .await
            .unwrap();
        assert_eq!(server.count(), 3);
        assert_eq!(std::fs::read(&dest).unwrap(), b"video");
    }

    #[tokio::test]
    async fn gives_up_after_the_retries() {
        let server = TestServer::start(seq(vec![Reply::status(503)])).await;
        let dir = tempfile::tempdir().unwrap();
        let err = fetcher(limited(FetchLimits {
            retries: 2,
            ..config().limits
        }))
        .fetch(&http(server.url("/v.mp4")), &dir.path().join("m"))
        .await
        .unwrap_err();
        assert!(err.transient);
        assert!(err.message.contains("503 Service Unavailable"), "{err}");
        assert!(err.message.contains("after 3 attempts"), "{err}");
        assert_eq!(server.count(), 3);
    }

    #[tokio::test]
    async fn the_total_timeout_bounds_the_retries() {
        let server = TestServer::start(seq(vec![Reply::status(503)])).await;
        let dir = tempfile::tempdir().unwrap();
        let started = Instant::now();
        let err = fetcher(limited(FetchLimits {
            retries: 100,
            base_delay: 100 * MS,
            max_delay: 100 * MS,
            total_timeout: 300 * MS,
            ..config().limits
        }))
        .fetch(&http(server.url("/v.mp4")), &dir.path().join("m"))
        .await
        .unwrap_err();
        assert!(err.transient);
        assert!(err.message.contains("did not finish"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn media_over_the_size_limit_is_refused_by_its_length() {
        let server = TestServer::start(seq(vec![Reply::body(media(1000))])).await;
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("m");
        let err = fetcher(limited(FetchLimits {
            max_bytes: 100,
            ..config().limits
        }))
        .fetch(&http(server.url("/v.mp4")), &dest)
        .await
        .unwrap_err();
        assert!(!err.transient);
        assert!(err.message.contains("limit of 100 bytes"), "{err}");
        assert_eq!(server.count(), 1);
        assert!(!dest.exists());
    }

    #[tokio::test]
    async fn media_over_the_size_limit_is_refused_while_streaming() {
        // No Content-Length: the body runs until the connection closes.
        let mut raw = b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n".to_vec();
        raw.extend(media(1000));
        let server = RawServer::start(raw, Duration::ZERO).await;
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("m");
        let err = fetcher(limited(FetchLimits {
            max_bytes: 100,
            ..config().limits
        }))
        .fetch(&http(server.url()), &dest)
        .await
        .unwrap_err();
        assert!(!err.transient);
        assert!(err.message.contains("limit of 100 bytes"), "{err}");
        assert_eq!(server.connections(), 1);
        assert!(!dest.exists());
    }

    #[tokio::test]
    async fn a_stalled_body_times_out_and_leaves_no_file() {
        let mut raw = b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n".to_vec();
        raw.extend(media(10));
        let server = RawServer::start(raw, Duration::from_secs(30)).await;
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("m");
        let err = fetcher(limited(FetchLimits {
            retries: 1,
            stall_timeout: 200 * MS,
            ..config().limits
        }))
        .fetch(&http(server.url()), &dest)
        .await
        .unwrap_err();
        assert!(err.transient);
        assert!(err.message.contains("stalled after 10 bytes"), "{err}");
        assert_eq!(server.connections(), 2);
        assert!(!dest.exists());
    }

    #[tokio::test]
    async fn a_body_shorter_than_its_length_is_transient() {
        let mut raw = b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n".to_vec();
        raw.extend(media(10));
        let server = RawServer::start(raw, Duration::ZERO).await;
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("m");
        let err = fetcher(limited(FetchLimits {
            retries: 1,
            ..config().limits
        }))
        .fetch(&http(server.url()), &dest)
        .await
        .unwrap_err();
        assert!(err.transient, "{err}");
        assert_eq!(server.connections(), 2);
        assert!(err.message.contains("body"), "{err}");
        assert!(!dest.exists());
    }

    #[tokio::test]
    async fn redirects_are_followed_up_to_the_limit() {
        let server = TestServer::start(|n| match n {
            0 => Reply::redirect("/final.mp4"),
            _ => Reply::body(b"ok".to_vec()),
        })
        .await;
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("m");
        fetcher(config())
            .fetch(&http(server.url("/start.mp4")), &dest)
            .await
            .unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"ok");

        let endless = TestServer::start(|n| Reply::redirect(format!("/hop{n}"))).await;
        let err = fetcher(config())
            .fetch(&http(endless.url("/hop")), &dest)
            .await
            .unwrap_err();
        assert!(!err.transient);
        assert!(err.message.contains("more than 5 redirects"), "{err}");
        assert_eq!(endless.count(), 6);
    }

    #[tokio::test]
    async fn a_redirect_loop_fails() {
        let server = TestServer::start(seq(vec![Reply::redirect("/loop")])).await;
        let dir = tempfile::tempdir().unwrap();
        let err = fetcher(config())
            .fetch(&http(server.url("/loop")), &dir.path().join("m"))
            .await
            .unwrap_err();
        assert!(!err.transient);
        assert!(err.message.contains("redirect loop"), "{err}");
        assert_eq!(server.count(), 1);
    }

    #[tokio::test]
    async fn redirects_to_local_addresses_are_refused() {
        let target = TestServer::start(seq(vec![Reply::body(b"internal".to_vec())])).await;
        let to_ip = target.url("/secret");
        let to_name =
            Url::parse(&format!("http://localhost:{}/secret", target.addr.port())).unwrap();
        for location in [to_ip, to_name] {
            let origin = TestServer::start(seq(vec![Reply::redirect(location.as_str())])).await;
            let fetcher = strict_fetcher_pinned(origin.addr);
            let start =
                Url::parse(&format!("http://media.test:{}/v.mp4", origin.addr.port())).unwrap();
            let dir = tempfile::tempdir().unwrap();
            let err = fetcher
                .fetch(&http(start), &dir.path().join("m"))
                .await
                .unwrap_err();
            assert!(!err.transient, "{err}");
            assert!(err.message.contains("not a public address"), "{err}");
            assert_eq!(origin.count(), 1);
        }
        assert_eq!(target.count(), 0);
    }

    #[tokio::test]
    async fn redirects_to_metadata_addresses_are_refused_even_where_local_urls_are_allowed() {
        for location in [
            "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
            "http://[fd00:ec2::254]/latest/meta-data/",
        ] {
            let origin = TestServer::start(seq(vec![Reply::redirect(location)])).await;
            let dir = tempfile::tempdir().unwrap();
            let err = fetcher(config())
                .fetch(&http(origin.url("/v.mp4")), &dir.path().join("m"))
                .await
                .unwrap_err();
            assert!(!err.transient, "{err}");
            assert!(err.message.contains("cloud metadata address"), "{err}");
            assert_eq!(origin.count(), 1);
        }
    }

    #[tokio::test]
    async fn local_urls_are_refused_unless_allowed() {
        let server = TestServer::start(seq(vec![Reply::body(b"x".to_vec())])).await;
        let strict = fetcher(FetchConfig {
            allow_local: false,
            ..config()
        });
        let dir = tempfile::tempdir().unwrap();
        let by_name =
            Url::parse(&format!("http://localhost:{}/v.mp4", server.addr.port())).unwrap();
        for url in [server.url("/v.mp4"), by_name] {
            let err = strict
                .fetch(&http(url), &dir.path().join("m"))
                .await
                .unwrap_err();
            assert!(!err.transient);
            assert!(err.message.contains("not a public address"), "{err}");
        }
        assert_eq!(server.count(), 0);
    }

    #[tokio::test]
    async fn local_files_are_used_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("local.mp4");
        std::fs::write(&file, b"local").unwrap();
        let dest = dir.path().join("dest.mp4");
        let f = fetcher(config());
        let got = f
            .fetch(&MediaSource::File { path: file.clone() }, &dest)
            .await
            .unwrap();
        assert_eq!(got, file);
        assert!(!dest.exists());

        let missing = dir.path().join("nope.mp4");
        let err = f
            .fetch(&MediaSource::File { path: missing }, &dest)
            .await
            .unwrap_err();
        assert!(!err.transient);
        assert!(err.message.starts_with("file not found: "), "{err}");

        let err = f
            .fetch(
                &MediaSource::File {
                    path: dir.path().to_path_buf(),
                },
                &dest,
            )
            .await
            .unwrap_err();
        assert!(err.message.starts_with("not a regular file"), "{err}");
    }

    #[tokio::test]
    async fn s3_needs_the_aws_adapter() {
        let source = MediaSource::S3 {
            bucket: "b".to_owned(),
            key: "v.mp4".to_owned(),
        };
        let err = fetcher(config())
            .fetch(&source, Path::new("/nonexistent/m"))
            .await
            .unwrap_err();
        assert!(!err.transient);
        assert!(err.message.contains("AWS adapter"), "{err}");
    }
}
