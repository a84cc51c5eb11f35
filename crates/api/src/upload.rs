//! Media sent with the request (`multipart/form-data`): the `file` part streamed to disk under a
//! size limit, never held whole in memory; the other parts are the request's fields. The file
//! lives as long as its [`Upload`]: a refused, broken or abandoned upload leaves nothing behind.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{HeaderMap, header};
use serde_json::{Map, Value};
use tempfile::TempPath;
use tokio::io::AsyncWriteExt;

use crate::error::ApiError;

/// Where uploads go and how large they may be; `ecg serve` has this, the Lambda function (whose
/// disk no runner sees) does not.
#[derive(Clone, Debug)]
pub struct UploadConfig {
    pub dir: PathBuf,
    /// Larger uploads get 413 (`ECG_MAX_UPLOAD_BYTES`).
    pub max_bytes: u64,
}

/// The form part that carries the media.
pub const FILE_PART: &str = "file";

/// A received upload: the file on disk (deleted when this is dropped) and the other fields.
pub struct Upload {
    file: TempPath,
    /// The name the client gave the file, if any.
    file_name: Option<String>,
    /// Every text field by name, in the order sent (a name may repeat).
    fields: BTreeMap<String, Vec<String>>,
}

impl Upload {
    pub fn path(&self) -> &Path {
        &self.file
    }

    /// The name the client gave the file, if any.
    pub fn file_name(&self) -> Option<&str> {
        self.file_name.as_deref()
    }

    /// The last value sent for `name`.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name)?.last().map(String::as_str)
    }

    /// Every value sent for `name`.
    pub fn all(&self, name: &str) -> &[String] {
        self.fields.get(name).map_or(&[], Vec::as_slice)
    }

    /// The fields as a JSON object, for the contract's typed request: `true`, `false` and
    /// numbers become JSON values, anything else stays text.
    pub fn fields_json(&self) -> Value {
        let object: Map<String, Value> = self
            .fields
            .iter()
            .filter_map(|(name, values)| {
                let text = values.last()?;
                let value = match serde_json::from_str::<Value>(text) {
                    Ok(scalar @ (Value::Bool(_) | Value::Number(_))) => scalar,
                    _ => Value::String(text.clone()),
                };
                Some((name.clone(), value))
            })
            .collect();
        Value::Object(object)
    }
}

/// Whether the request is a form upload rather than a JSON body.
pub fn is_multipart(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("multipart/form-data"))
}

/// Reads a `multipart/form-data` request: the `file` part to a new file in the upload
/// directory, stopping with 413 as soon as it passes the limit.
pub async fn receive(request: Request, config: Option<&UploadConfig>) -> Result<Upload, ApiError> {
    let Some(config) = config else {
        return Err(ApiError::Unsupported(
            "this server takes no uploads: put the media where it can fetch it (https:// or s3://) \
             and send its URL as JSON"
                .to_owned(),
        ));
    };
    let mut multipart = Multipart::from_request(request, &())
        .await
        .map_err(|e| ApiError::Malformed(format!("not a multipart form: {e}")))?;
    let mut file = None;
    let mut file_name = None;
    let mut fields: BTreeMap<String, Vec<String>> = BTreeMap::new();
    while let Some(mut part) = multipart.next_field().await.map_err(|e| broken(&e))? {
        let name = part.name().unwrap_or_default().to_owned();
        if name == FILE_PART {
            file_name = part.file_name().map(str::to_owned);
            let suffix = extension(part.file_name());
            file = Some(stream_to_disk(&mut part, config, &suffix).await?);
        } else {
            let value = part.text().await.map_err(|e| broken(&e))?;
            fields.entry(name).or_default().push(value);
        }
    }
    let file = file.ok_or_else(|| {
        ApiError::Invalid(ecg_core::request::ValidationError::new(
            FILE_PART,
            "is required: the media as a form part named `file`",
        ))
    })?;
    Ok(Upload {
        file,
        file_name,
        fields,
    })
}

async fn stream_to_disk(
    part: &mut axum::extract::multipart::Field<'_>,
    config: &UploadConfig,
    suffix: &str,
) -> Result<TempPath, ApiError> {
    let unavailable =
        |e: std::io::Error| ApiError::Unavailable(format!("cannot store the upload: {e}"));
    tokio::fs::create_dir_all(&config.dir)
        .await
        .map_err(unavailable)?;
    // A temporary path from the start: any early return or a dropped request deletes the file.
    let path = tempfile::Builder::new()
        .prefix("upload-")
        .suffix(suffix)
        .tempfile_in(&config.dir)
        .map_err(unavailable)?
        .into_temp_path();
    let mut out = tokio::fs::File::create(&path).await.map_err(unavailable)?;
    let mut received = 0u64;
    while let Some(chunk) = part.chunk().await.map_err(|e| broken(&e))? {
        received += chunk.len() as u64;
        if received > config.max_bytes {
            return Err(ApiError::TooLarge(format!(
                "the upload exceeds {} bytes (ECG_MAX_UPLOAD_BYTES)",
                config.max_bytes
            )));
        }
        out.write_all(&chunk).await.map_err(unavailable)?;
    }
    out.flush().await.map_err(unavailable)?;
    Ok(path)
}

/// The uploaded name's extension (a hint for the decoder), kept only when it is plainly one.
fn extension(file_name: Option<&str>) -> String {
    file_name
        .and_then(|name| Path::new(name).extension())
        .and_then(|ext| ext.to_str())
        .filter(|ext| ext.len() <= 8 && ext.chars().all(|c| c.is_ascii_alphanumeric()))
        .map(|ext| format!(".{}", ext.to_ascii_lowercase()))
        .unwrap_or_default()
}

fn broken(e: &axum::extract::multipart::MultipartError) -> ApiError {
    ApiError::Malformed(format!("the upload broke off or is not a valid form: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_extensions_are_kept() {
        assert_eq!(extension(Some("Clip.MP4")), ".mp4");
        assert_eq!(extension(Some("../../etc/passwd")), "");
        assert_eq!(extension(Some("a.b c")), "");
        assert_eq!(extension(None), "");
    }
}
