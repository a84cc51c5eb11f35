//! Media from S3, read with the process's AWS credentials: `s3://bucket/key` sources and `https://`
//! URLs in one of S3's own forms. Everything else (other hosts, presigned URLs, local files) goes
//! to the inner fetcher given at construction.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::get_object::GetObjectError;
use ecg_core::error::FetchError;
use ecg_core::metrics::count_download;
use ecg_core::ports::{BlobFetcher, FetchLimits};
use ecg_core::request::MediaSource;
use ecg_core::retry::AttemptError;
use percent_encoding::percent_decode_str;
use tokio::io::{AsyncWriteExt, BufWriter};
use tracing::{Instrument, info};
use url::Url;

/// Write buffer: a tokio file write is a blocking-pool round trip, so chunks are batched.
const WRITE_BUFFER: usize = 256 * 1024;

/// Reads S3 objects with the SDK and hands other sources to `inner`.
pub struct S3Fetcher {
    client: Client,
    /// For sources that are not plain S3 objects (e.g. the HTTP fetcher of `ecg-net`).
    inner: Arc<dyn BlobFetcher>,
    /// Retries, stall and total timeouts and the size limit, as for HTTP downloads. The SDK
    /// retries a throttled or failed request by itself; these also cover a body cut off or
    /// stalled mid-stream, which it cannot.
    limits: FetchLimits,
    /// When set, the only bucket read with our credentials, so a request cannot make the runner
    /// read whatever else its role may read. Unsigned URLs of other buckets go to `inner` (public
    /// objects still work); `s3://` sources of other buckets are refused.
    media_bucket: Option<String>,
}

impl S3Fetcher {
    /// See the fields: `inner` takes what is not S3's, `limits` bound a download,
    /// `media_bucket` (optional) is the only bucket read with our credentials.
    pub fn new(
        client: Client,
        inner: Arc<dyn BlobFetcher>,
        limits: FetchLimits,
        media_bucket: Option<String>,
    ) -> Self {
        Self {
            client,
            inner,
            limits,
            media_bucket,
        }
    }

    fn may_read(&self, bucket: &str) -> bool {
        self.media_bucket.as_deref().is_none_or(|b| b == bucket)
    }

    /// Downloads the object to `dest`, retrying transient failures; a failed download leaves no file.
    async fn download(&self, bucket: &str, key: &str, dest: &Path) -> Result<(), FetchError> {
        let shown = format!("s3://{bucket}/{key}");
        self.limits
            .download("s3", &shown, dest, |attempt| {
                let shown = &shown;
                async move {
                    let bytes = self.attempt(bucket, key, dest, shown).await?;
                    info!(attempt, bytes, source = %shown, "download complete");
                    Ok(())
                }
            })
            .instrument(tracing::info_span!("fetch", source = %shown))
            .await
    }

    async fn attempt(
        &self,
        bucket: &str,
        key: &str,
        dest: &Path,
        shown: &str,
    ) -> Result<u64, AttemptError> {
        let stall = self.limits.stall_timeout;
        let stalled = |what: String| {
            AttemptError::transient(format!(
                "{what} from {shown}: nothing received for {}s",
                stall.as_secs_f64()
            ))
        };
        let request = self.client.get_object().bucket(bucket).key(key).send();
        let object = tokio::time::timeout(stall, request)
            .await
            .map_err(|_| stalled("no response".to_owned()))?
            .map_err(|e| get_object_error(&e, shown))?;
        let max = self.limits.max_bytes;
        let too_large = |size: u64| {
            AttemptError::permanent(format!(
                "{shown} is larger than the limit of {max} bytes ({size} bytes or more)"
            ))
        };
        let expected = object.content_length().and_then(|n| u64::try_from(n).ok());
        if let Some(size) = expected.filter(|&size| size > max) {
            return Err(too_large(size));
        }
        let write_error = |e: std::io::Error| {
            AttemptError::permanent(format!("cannot write {}: {e}", dest.display()))
        };
        let file = tokio::fs::File::create(dest).await.map_err(write_error)?;
        let mut out = BufWriter::with_capacity(WRITE_BUFFER, file);
        let mut body = object.body;
        let mut received: u64 = 0;
        while let Some(chunk) = tokio::time::timeout(stall, body.try_next())
            .await
            .map_err(|_| stalled(format!("the body stopped after {received} bytes")))?
            .map_err(|e| {
                AttemptError::transient(format!(
                    "{shown} broke off after {received} bytes: {}",
                    DisplayErrorContext(&e)
                ))
            })?
        {
            received += chunk.len() as u64;
            if received > max {
                return Err(too_large(received));
            }
            out.write_all(&chunk).await.map_err(write_error)?;
        }
        out.flush().await.map_err(write_error)?;
        Ok(received)
    }
}

#[async_trait]
impl BlobFetcher for S3Fetcher {
    async fn fetch(&self, source: &MediaSource, dest: &Path) -> Result<PathBuf, FetchError> {
        let (bucket, key) = match source {
            MediaSource::S3 { bucket, key } => {
                if !self.may_read(bucket) {
                    count_download("s3", "refused");
                    return Err(FetchError::permanent(format!(
                        "{source}: only objects of the media bucket may be read"
                    )));
                }
                (bucket.clone(), key.clone())
            }
            MediaSource::Http { url } => match s3_object(url) {
                Some((bucket, key)) if self.may_read(&bucket) => (bucket, key),
                _ => return self.inner.fetch(source, dest).await,
            },
            MediaSource::File { .. } => return self.inner.fetch(source, dest).await,
        };
        self.download(&bucket, &key, dest).await?;
        Ok(dest.to_path_buf())
    }
}

/// Sorts a GetObject failure: a missing object or a refusal is final, throttling, 5xx and
/// network trouble are worth another attempt.
fn get_object_error(e: &SdkError<GetObjectError>, shown: &str) -> AttemptError {
    let detail = DisplayErrorContext(e);
    match e {
        SdkError::ServiceError(service) if service.err().is_no_such_key() => {
            AttemptError::permanent(format!("S3 object not found: {shown}"))
        }
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let throttled = matches!(
                service.err().code(),
                Some("SlowDown" | "Throttling" | "ThrottlingException" | "RequestTimeout")
            );
            let message = format!("S3 answered {status} for {shown}: {detail}");
            if throttled || status == 429 || status >= 500 {
                AttemptError::transient(message)
            } else {
                AttemptError::permanent(message)
            }
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            AttemptError::transient(format!("cannot reach S3 for {shown}: {detail}"))
        }
        _ => AttemptError::permanent(format!("cannot request {shown} from S3: {detail}")),
    }
}

/// The bucket and key of an unsigned `https://` URL in one of S3's forms: virtual-hosted
/// (`bucket.s3.amazonaws.com/key`, `bucket.s3.<region>.amazonaws.com/key`) or path-style
/// (`s3.amazonaws.com/bucket/key`, `s3.<region>.amazonaws.com/bucket/key`). `None` for any other
/// URL, and for one with a query: a presigned signature or a version id only means something in
/// the URL as given, so that goes to the HTTP fetcher unchanged.
fn s3_object(url: &Url) -> Option<(String, String)> {
    if url.scheme() != "https" || url.port().is_some() || url.query().is_some() {
        return None;
    }
    let host = url.host_str()?.to_ascii_lowercase();
    let name = host.strip_suffix(".amazonaws.com")?;
    let path = percent_decode_str(url.path().strip_prefix('/')?)
        .decode_utf8()
        .ok()?;
    let (bucket, key) = if is_endpoint(name) {
        path.split_once('/')?
    } else {
        // The endpoint is the last label or two; bucket names may have dots of their own.
        let bucket = name
            .rmatch_indices('.')
            .take(2)
            .find(|&(dot, _)| is_endpoint(&name[dot + 1..]))
            .map(|(dot, _)| &name[..dot])?;
        (bucket, path.as_ref())
    };
    (!bucket.is_empty() && !key.is_empty()).then(|| (bucket.to_owned(), key.to_owned()))
}

/// `s3`, `s3.<region>` or the legacy `s3-<region>`: S3's own host names before `.amazonaws.com`.
fn is_endpoint(name: &str) -> bool {
    let region = name
        .strip_prefix("s3.")
        .or_else(|| name.strip_prefix("s3-"));
    name == "s3"
        || region.is_some_and(|r| {
            !r.is_empty()
                && r.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(raw: &str) -> Option<(String, String)> {
        s3_object(&Url::parse(raw).unwrap())
    }

    fn object(bucket: &str, key: &str) -> Option<(String, String)> {
        Some((bucket.to_owned(), key.to_owned()))
    }

    #[test]
    fn recognises_the_forms_s3_serves() {
        assert_eq!(
            parsed("https://media.s3.amazonaws.com/in/v.mp4"),
            object("media", "in/v.mp4")
        );
        assert_eq!(
            parsed("https://my.media.s3.ap-northeast-2.amazonaws.com/v.mp4"),
            object("my.media", "v.mp4")
        );
        assert_eq!(
            parsed("https://media.s3-eu-west-1.amazonaws.com/v.mp4"),
            object("media", "v.mp4")
        );
        assert_eq!(
            parsed("https://s3.amazonaws.com/bucket/video.mp4"),
            object("bucket", "video.mp4")
        );
        assert_eq!(
            parsed("https://s3.us-east-1.amazonaws.com/bucket/a%20b/c.mp4"),
            object("bucket", "a b/c.mp4")
        );
    }

    #[test]
    fn leaves_everything_else_to_the_inner_fetcher() {
        for raw in [
            "https://example.com/v.mp4",
            "https://s3.amazonaws.com.evil.example/b/v.mp4",
            "https://ec2.amazonaws.com/b/v.mp4",
            "https://s3.amazonaws.com/bucket-only",
            "https://media.s3.amazonaws.com/",
            "http://media.s3.amazonaws.com/v.mp4",
            "https://media.s3.amazonaws.com:8443/v.mp4",
            "https://media.s3.amazonaws.com/v.mp4?X-Amz-Signature=abc&X-Amz-Credential=x",
            "https://media.s3.amazonaws.com/v.mp4?versionId=3",
        ] {
            assert_eq!(parsed(raw), None, "{raw}");
        }
    }
}
