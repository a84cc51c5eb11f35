use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use ecg_aws::testing::Moto;
use ecg_aws::{AwsClients, S3Fetcher};
use ecg_core::error::FetchError;
use ecg_core::ports::{BlobFetcher, FetchLimits};
use ecg_core::request::MediaSource;
use url::Url;

/// Stands in for the HTTP fetcher: records what it was handed.
#[derive(Default)]
struct Inner(Mutex<Vec<MediaSource>>);

#[async_trait]
impl BlobFetcher for Inner {
    async fn fetch(&self, source: &MediaSource, dest: &Path) -> Result<PathBuf, FetchError> {
        self.0.lock().unwrap().push(source.clone());
        Ok(dest.to_path_buf())
    }
}

struct Media {
    moto: Moto,
    clients: AwsClients,
    bucket: String,
    inner: Arc<Inner>,
    dir: tempfile::TempDir,
}

impl Media {
    async fn new() -> Self {
        let moto = Moto::start().await;
        let clients = moto.clients().await;
        let bucket = moto.create_bucket(&clients).await;
        Self {
            moto,
            clients,
            bucket,
            inner: Arc::default(),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    async fn put(&self, key: &str, bytes: Vec<u8>) {
        self.moto
            .upload(&self.clients, &self.bucket, key, bytes)
            .await;
    }

    fn fetcher(&self, max_bytes: u64, media_bucket: Option<String>) -> S3Fetcher {
        let limits = FetchLimits {
            max_bytes,
            ..FetchLimits::default()
        };
        S3Fetcher::new(
            self.clients.s3.clone(),
            self.inner.clone(),
            limits,
            media_bucket,
        )
    }

    fn s3(&self, key: &str) -> MediaSource {
        MediaSource::S3 {
            bucket: self.bucket.clone(),
            key: key.to_owned(),
        }
    }

    fn https(&self, raw: &str) -> MediaSource {
        MediaSource::Http {
            url: Url::parse(raw).unwrap(),
        }
    }

    fn handed_on(&self) -> Vec<MediaSource> {
        self.inner.0.lock().unwrap().clone()
    }
}

/// A few MiB that no off-by-one or reordering would leave intact.
fn clip() -> Vec<u8> {
    (0..3 * 1024 * 1024 + 17)
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

#[tokio::test]
async fn s3_objects_arrive_byte_exact() {
    let media = Media::new().await;
    let bytes = clip();
    media.put("in/clip one.mp4", bytes.clone()).await;
    let fetcher = media.fetcher(u64::MAX, None);

    let dest = media.dir.path().join("a");
    let path = fetcher
        .fetch(&media.s3("in/clip one.mp4"), &dest)
        .await
        .unwrap();
    assert_eq!(path, dest);
    assert!(std::fs::read(&dest).unwrap() == bytes, "s3:// differs");

    // An unsigned path-style URL is read with the SDK, i.e. with our credentials.
    let url = format!(
        "https://s3.amazonaws.com/{}/in/clip%20one.mp4",
        media.bucket
    );
    let dest = media.dir.path().join("b");
    fetcher.fetch(&media.https(&url), &dest).await.unwrap();
    assert!(std::fs::read(&dest).unwrap() == bytes, "https:// differs");
    assert!(media.handed_on().is_empty());
}

#[tokio::test]
async fn a_missing_object_is_a_permanent_error() {
    let media = Media::new().await;
    let dest = media.dir.path().join("missing");
    let error = media
        .fetcher(u64::MAX, None)
        .fetch(&media.s3("no/such.mp4"), &dest)
        .await
        .unwrap_err();
    assert_eq!(
        error.message,
        format!("S3 object not found: s3://{}/no/such.mp4", media.bucket)
    );
    assert!(!error.transient);
    assert!(!dest.exists(), "no partial file is left");
}

#[tokio::test]
async fn objects_over_the_limit_are_refused() {
    let media = Media::new().await;
    media.put("big.mp4", vec![0; 4096]).await;
    let dest = media.dir.path().join("big");
    let error = media
        .fetcher(1000, None)
        .fetch(&media.s3("big.mp4"), &dest)
        .await
        .unwrap_err();
    assert!(
        error
            .message
            .contains("larger than the limit of 1000 bytes"),
        "{error}"
    );
    assert!(!error.transient && !dest.exists());
}

/// A proxy on 127.0.0.1 in front of `upstream` (`http://host:port`) that passes requests on
/// and the first `bytes` of each response back, then holds the connection open and silent.
async fn stalling_proxy(upstream: &str, bytes: u64) -> String {
    use tokio::io::AsyncReadExt;
    let upstream = upstream.trim_start_matches("http://").to_owned();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let server = tokio::net::TcpStream::connect(&upstream).await.unwrap();
            let (mut client_read, mut client_write) = client.into_split();
            let (server_read, mut server_write) = server.into_split();
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
            });
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut server_read.take(bytes), &mut client_write).await;
                // Silent from here on, with the connection kept open.
                let _open = client_write;
                std::future::pending::<()>().await;
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn a_stalled_object_fails_after_the_stall_timeout_and_its_retries() {
    let media = Media::new().await;
    media.put("slow.mp4", clip()).await;
    // The headers and a little of the body arrive; then nothing.
    let proxy = stalling_proxy(media.moto.endpoint(), 4096).await;
    let clients = media.moto.clients_via(&proxy).await;
    let limits = FetchLimits {
        retries: 1,
        base_delay: Duration::from_millis(10),
        stall_timeout: Duration::from_millis(500),
        ..FetchLimits::default()
    };
    let fetcher = S3Fetcher::new(clients.s3.clone(), media.inner.clone(), limits, None);
    let dest = media.dir.path().join("slow");
    let error = fetcher
        .fetch(&media.s3("slow.mp4"), &dest)
        .await
        .unwrap_err();
    assert!(error.transient, "{error}");
    assert!(
        error.message.contains("nothing received for 0.5s")
            && error.message.contains("(after 2 attempts)"),
        "{error}"
    );
    assert!(!dest.exists(), "no partial file is left");

    // The total timeout ends the retries, however many are left.
    let limits = FetchLimits {
        retries: 100,
        base_delay: Duration::from_millis(10),
        stall_timeout: Duration::from_millis(300),
        total_timeout: Duration::from_millis(1500),
        ..FetchLimits::default()
    };
    let fetcher = S3Fetcher::new(clients.s3.clone(), media.inner.clone(), limits, None);
    let error = fetcher
        .fetch(&media.s3("slow.mp4"), &dest)
        .await
        .unwrap_err();
    assert!(
        error.message.contains("did not finish within 1.5s"),
        "{error}"
    );
    assert!(!dest.exists());
}

#[tokio::test]
async fn presigned_urls_other_hosts_and_other_buckets_go_to_the_inner_fetcher() {
    let media = Media::new().await;
    let fetcher = media.fetcher(u64::MAX, Some(media.bucket.clone()));
    let dest = media.dir.path().join("x");
    let presigned = media.https(&format!(
        "https://{}.s3.amazonaws.com/v.mp4?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=abc",
        media.bucket
    ));
    let elsewhere = media.https("https://cdn.example.com/v.mp4");
    let other_bucket = media.https("https://public-media.s3.amazonaws.com/v.mp4");
    for source in [&presigned, &elsewhere, &other_bucket] {
        fetcher.fetch(source, &dest).await.unwrap();
    }
    assert_eq!(media.handed_on(), vec![presigned, elsewhere, other_bucket]);

    let error = fetcher
        .fetch(
            &MediaSource::S3 {
                bucket: "someone-elses".into(),
                key: "v.mp4".into(),
            },
            &dest,
        )
        .await
        .unwrap_err();
    assert!(
        error.message.contains("only objects of the media bucket"),
        "{error}"
    );
    assert!(!error.transient);
}
