//! Upload slots in the media bucket: presigned S3 `PUT` URLs under `uploads/`, so that a client
//! behind API Gateway (10 MB payloads) sends large media straight to the bucket the runner
//! reads, then submits its `s3://` URL like any other.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::presigning::PresigningConfig;
use ecg_core::job::JobId;
use ecg_core::ports::{BackendError, UploadSlot, UploadSlots};

/// Long enough for a large file over a slow line, short enough that a leaked URL soon stops working.
const EXPIRES_IN: Duration = Duration::from_secs(60 * 60);
/// Where uploads go in the bucket; a lifecycle rule on it removes them after a while.
const PREFIX: &str = "uploads/";

pub struct S3UploadSlots {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3UploadSlots {
    pub fn new(client: aws_sdk_s3::Client, bucket: &str) -> Self {
        Self {
            client,
            bucket: bucket.to_owned(),
        }
    }
}

#[async_trait]
impl UploadSlots for S3UploadSlots {
    async fn create(&self, file_name: &str) -> Result<UploadSlot, BackendError> {
        // A fresh id per slot: two clients naming their files alike never meet.
        let key = format!("{PREFIX}{}/{}", JobId::new(), plain_name(file_name));
        let presigning = PresigningConfig::expires_in(EXPIRES_IN)
            .map_err(|e| BackendError::new(format!("cannot presign: {e}")))?;
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .presigned(presigning)
            .await
            .map_err(|e| BackendError::new(format!("cannot presign an upload: {e}")))?;
        Ok(UploadSlot {
            upload_url: request.uri().to_owned(),
            media_url: format!("s3://{}/{key}", self.bucket),
            expires_in: EXPIRES_IN,
        })
    }
}

/// The name as a safe object-key segment: letters, digits, `.`, `-`, `_`; `media` if none.
fn plain_name(file_name: &str) -> String {
    let name: String = file_name
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        .take(100)
        .collect();
    if name.trim_matches('.').is_empty() {
        "media".to_owned()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_plain_key_segments() {
        assert_eq!(plain_name("Talk 1.MP4"), "Talk1.MP4");
        assert_eq!(plain_name("../../etc/passwd"), "passwd");
        assert_eq!(plain_name("C:\\\\videos\\\\a.wav"), "a.wav");
        assert_eq!(plain_name(".."), "media");
        assert_eq!(plain_name(""), "media");
    }
}
