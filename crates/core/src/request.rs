//! Parse-don't-validate: raw request JSON becomes a [`JobSpec`] or a [`ValidationError`] naming the field.

use std::fmt;
use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::str::FromStr;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::{Host, Url};

use crate::contract::{ProcessVideoRequest, TranscribeRequest};
use crate::job::JobId;

/// A request field that failed validation; answered with a 4xx naming the field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    pub field: String,
    pub message: String,
}

impl ValidationError {
    pub fn new(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

/// Languages the service accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    Auto,
    Ko,
    En,
    Ja,
    Zh,
}

impl Language {
    pub fn as_str(self) -> &'static str {
        match self {
            Language::Auto => "auto",
            Language::Ko => "ko",
            Language::En => "en",
            Language::Ja => "ja",
            Language::Zh => "zh",
        }
    }

    /// The contract's `processing_mode` for this request.
    pub fn processing_mode(self) -> &'static str {
        match self {
            Language::Auto => "auto-detect",
            _ => "targeted",
        }
    }
}

impl FromStr for Language {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Language::Auto),
            "ko" => Ok(Language::Ko),
            "en" => Ok(Language::En),
            "ja" => Ok(Language::Ja),
            "zh" => Ok(Language::Zh),
            other => Err(ValidationError::new(
                "language",
                format!("must be one of auto, ko, en, ja, zh (got {other:?})"),
            )),
        }
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the media comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum MediaSource {
    S3 {
        bucket: String,
        key: String,
    },
    Http {
        url: Url,
    },
    /// Only when the operator allows local sources.
    File {
        path: PathBuf,
    },
}

impl MediaSource {
    /// The file name the media had at its source, for `metadata.filename`.
    pub fn file_name(&self) -> String {
        let raw = match self {
            MediaSource::S3 { key, .. } => key.rsplit('/').next().unwrap_or(key).to_owned(),
            MediaSource::Http { url } => url
                .path_segments()
                .and_then(|mut s| s.next_back())
                .unwrap_or_default()
                .to_owned(),
            MediaSource::File { path } => path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        };
        if raw.is_empty() {
            "media".to_owned()
        } else {
            raw
        }
    }
}

impl fmt::Display for MediaSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MediaSource::S3 { bucket, key } => write!(f, "s3://{bucket}/{key}"),
            MediaSource::Http { url } => write!(f, "{url}"),
            MediaSource::File { path } => write!(f, "{}", path.display()),
        }
    }
}

/// `ECG_CALLBACK_ALLOWED_HOSTS`: the only hosts callbacks may be sent to, parsed from a
/// comma-separated list of host names or IP addresses (no scheme, no port).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowedHosts(Vec<Host>);

impl AllowedHosts {
    pub fn contains(&self, host: &Host<&str>) -> bool {
        self.0.contains(&host.to_owned())
    }
}

impl FromStr for AllowedHosts {
    type Err = String;
    fn from_str(list: &str) -> Result<Self, Self::Err> {
        let hosts = list
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                // `Host::parse` lowercases names and normalises IP literals, as `Url` does.
                Host::parse(entry).map_err(|e| {
                    format!("{entry:?} is not a host name or IP address ({e}); list hosts without scheme or port")
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if hosts.is_empty() {
            return Err("the list names no host".to_owned());
        }
        Ok(Self(hosts))
    }
}

impl fmt::Display for AllowedHosts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&names.join(","))
    }
}

/// What the operator allows beyond the public internet, and where callbacks may go.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UrlPolicy {
    /// `ECG_ALLOW_LOCAL_URLS`: plain http, local paths and loopback/private hosts, for local use
    /// and tests. Cloud metadata addresses stay refused even then.
    pub allow_local: bool,
    /// `ECG_CALLBACK_ALLOWED_HOSTS`: when set, a callback base on any other host is refused.
    pub callback_hosts: Option<AllowedHosts>,
}

impl UrlPolicy {
    /// Parses a media location: `s3://bucket/key`, `https://…`, and with local use allowed, `http://…` or a path.
    pub fn media_source(&self, field: &str, raw: &str) -> Result<MediaSource, ValidationError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(ValidationError::new(field, "must not be empty"));
        }
        match Url::parse(raw) {
            Ok(url) if url.scheme() == "s3" => {
                let bucket = url.host_str().unwrap_or_default().to_owned();
                let key = url.path().trim_start_matches('/').to_owned();
                if bucket.is_empty() || key.is_empty() {
                    return Err(ValidationError::new(
                        field,
                        "an S3 URL must be s3://bucket/key",
                    ));
                }
                Ok(MediaSource::S3 { bucket, key })
            }
            Ok(url) if matches!(url.scheme(), "http" | "https") => {
                self.check_web_url(field, &url)?;
                Ok(MediaSource::Http { url })
            }
            Ok(url) => Err(ValidationError::new(
                field,
                format!(
                    "scheme {:?} is not allowed; use s3:// or https://",
                    url.scheme()
                ),
            )),
            Err(url::ParseError::RelativeUrlWithoutBase) if self.allow_local => {
                Ok(MediaSource::File {
                    path: PathBuf::from(raw),
                })
            }
            Err(url::ParseError::RelativeUrlWithoutBase) => Err(ValidationError::new(
                field,
                "must be an s3:// or https:// URL (local paths need ECG_ALLOW_LOCAL_URLS=true)",
            )),
            Err(e) => Err(ValidationError::new(
                field,
                format!("is not a valid URL: {e}"),
            )),
        }
    }

    /// Parses a callback base URL: absolute http(s), local hosts only when allowed, and only
    /// allow-listed hosts when there is an allow-list.
    pub fn callback_base(&self, field: &str, raw: &str) -> Result<Url, ValidationError> {
        let url = Url::parse(raw.trim()).map_err(|e| {
            ValidationError::new(field, format!("must be an absolute http(s) URL: {e}"))
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ValidationError::new(
                field,
                "must be an absolute http(s) URL",
            ));
        }
        self.check_web_url(field, &url)?;
        self.check_callback_host(field, &url)?;
        Ok(url)
    }

    /// Refuses a callback URL whose host is not on the allow-list, when there is one. Also for
    /// `BACKEND_URL`, checked once at start-up.
    pub fn check_callback_host(&self, field: &str, url: &Url) -> Result<(), ValidationError> {
        match (&self.callback_hosts, url.host()) {
            (None, _) => Ok(()),
            (Some(allowed), Some(host)) if allowed.contains(&host) => Ok(()),
            (Some(allowed), _) => Err(ValidationError::new(
                field,
                format!(
                    "callbacks may only go to {allowed} (ECG_CALLBACK_ALLOWED_HOSTS), not {}",
                    url.host_str().unwrap_or("a URL without a host")
                ),
            )),
        }
    }

    fn check_web_url(&self, field: &str, url: &Url) -> Result<(), ValidationError> {
        if !url.username().is_empty() || url.password().is_some() {
            return Err(ValidationError::new(
                field,
                "credentials in URLs are not allowed",
            ));
        }
        let Some(host) = url.host() else {
            return Err(ValidationError::new(field, "the URL has no host"));
        };
        let ip = match host {
            Host::Domain(_) => None,
            Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
            Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        };
        if ip.is_some_and(is_metadata_ip) {
            return Err(ValidationError::new(
                field,
                "cloud metadata addresses are never allowed",
            ));
        }
        if self.allow_local {
            return Ok(());
        }
        if url.scheme() == "http" {
            return Err(ValidationError::new(
                field,
                "plain http is not allowed; use https:// (or set ECG_ALLOW_LOCAL_URLS=true for local use)",
            ));
        }
        let local = match host {
            Host::Domain(d) => d.eq_ignore_ascii_case("localhost") || d.ends_with(".localhost"),
            Host::Ipv4(_) | Host::Ipv6(_) => ip.is_some_and(|ip| !is_public_ip(ip)),
        };
        if local {
            return Err(ValidationError::new(
                field,
                "loopback and private hosts are not allowed",
            ));
        }
        Ok(())
    }
}

/// Cloud instance metadata services, refused even where local URLs are allowed: no media lives
/// there, only credentials. IPv4 link-local (169.254.169.254 of AWS, GCP, Azure and others,
/// 169.254.170.2 of ECS), AWS's IPv6 fd00:ec2::254 and Alibaba's 100.100.100.200.
pub fn is_metadata_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local() || v4.octets() == [100, 100, 100, 200],
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_metadata_ip(IpAddr::V4(v4)),
            None => v6.segments() == [0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254],
        },
    }
}

/// False for loopback, private, link-local, unique-local, unspecified and cloud metadata addresses.
pub fn is_public_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_ip(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80)
        }
    }
}

/// Caller's knowledge of how many speakers there are; each bound honoured exactly when given.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpeakerHint {
    pub num: Option<u8>,
    pub min: Option<u8>,
    pub max: Option<u8>,
}

/// A validated analysis job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    pub job_id: JobId,
    pub source: MediaSource,
    /// Where callbacks go; `None` falls back to the configured `BACKEND_URL`, if any.
    pub callback_base: Option<Url>,
    pub enable_gpu: bool,
    pub emotion_detection: bool,
    pub language: Language,
    pub max_workers: u8,
    pub speakers: SpeakerHint,
}

impl JobSpec {
    /// Validates a `process-video` body.
    pub fn parse_process_video(body: &Value, policy: &UrlPolicy) -> Result<Self, ValidationError> {
        from_json::<ProcessVideoRequest>(body)?.validate(policy)
    }

    /// Validates a `/transcribe` body.
    pub fn parse_transcribe(body: &Value, policy: &UrlPolicy) -> Result<Self, ValidationError> {
        from_json::<TranscribeRequest>(body)?.validate(policy)
    }
}

/// What a job gets where the request leaves a field out (the OpenAPI document shows these too).
pub const DEFAULT_ENABLE_GPU: bool = true;
pub const DEFAULT_EMOTION_DETECTION: bool = true;
pub const DEFAULT_MAX_WORKERS: u8 = 4;
pub const DEFAULT_PROCESS_VIDEO_LANGUAGE: Language = Language::Auto;
pub const DEFAULT_TRANSCRIBE_LANGUAGE: Language = Language::En;
const MAX_WORKERS: RangeInclusive<u8> = 1..=16;
const SPEAKER_COUNTS: RangeInclusive<u8> = 1..=32;

impl ProcessVideoRequest {
    /// The job this body asks for. Unknown fields were ignored, as the original server did.
    pub fn validate(&self, policy: &UrlPolicy) -> Result<JobSpec, ValidationError> {
        let job_id = JobId::parse(required("job_id", self.job_id.as_deref())?)
            .map_err(|_| ValidationError::new("job_id", "must be a UUID"))?;
        let source = policy.media_source(
            "video_url",
            required("video_url", self.video_url.as_deref())?,
        )?;
        let callback_base = text("fastapi_base_url", self.fastapi_base_url.as_deref())?
            .map(|raw| policy.callback_base("fastapi_base_url", raw))
            .transpose()?;
        let max_workers = match self.max_workers {
            None => DEFAULT_MAX_WORKERS,
            Some(n) => u8::try_from(n)
                .ok()
                .filter(|n| MAX_WORKERS.contains(n))
                .ok_or_else(|| ValidationError::new("max_workers", "must be between 1 and 16"))?,
        };
        Ok(JobSpec {
            job_id,
            source,
            callback_base,
            enable_gpu: self.enable_gpu.unwrap_or(DEFAULT_ENABLE_GPU),
            emotion_detection: self.emotion_detection.unwrap_or(DEFAULT_EMOTION_DETECTION),
            language: language(self.language.as_deref(), DEFAULT_PROCESS_VIDEO_LANGUAGE)?,
            max_workers,
            speakers: speaker_hint(self.num_speakers, self.min_speakers, self.max_speakers)?,
        })
    }
}

impl TranscribeRequest {
    /// The job this body asks for: `audio_path` wins over `video_path`, then `video_url`.
    pub fn validate(&self, policy: &UrlPolicy) -> Result<JobSpec, ValidationError> {
        let Some((field, raw)) = self.named_media()? else {
            return Err(ValidationError::new(
                "audio_path",
                "one of audio_path, video_path or video_url is required",
            ));
        };
        self.job_for(policy.media_source(field, raw)?)
    }

    /// The job these form fields ask for, on a file uploaded with them to `path`.
    pub fn validate_upload(&self, path: PathBuf) -> Result<JobSpec, ValidationError> {
        if let Some((field, _)) = self.named_media()? {
            return Err(ValidationError::new(
                field,
                "send either a file or a path to the media, not both",
            ));
        }
        self.job_for(MediaSource::File { path })
    }

    /// The first media field given, in order of precedence.
    fn named_media(&self) -> Result<Option<(&'static str, &str)>, ValidationError> {
        let mut chosen = None;
        for (field, value) in [
            ("audio_path", &self.audio_path),
            ("video_path", &self.video_path),
            ("video_url", &self.video_url),
        ] {
            if let Some(raw) = text(field, value.as_deref())? {
                chosen.get_or_insert((field, raw));
            }
        }
        Ok(chosen)
    }

    fn job_for(&self, source: MediaSource) -> Result<JobSpec, ValidationError> {
        Ok(JobSpec {
            job_id: JobId::new(),
            source,
            callback_base: None,
            enable_gpu: self.enable_gpu.unwrap_or(DEFAULT_ENABLE_GPU),
            emotion_detection: self.emotion_detection.unwrap_or(DEFAULT_EMOTION_DETECTION),
            language: language(self.language.as_deref(), DEFAULT_TRANSCRIBE_LANGUAGE)?,
            max_workers: DEFAULT_MAX_WORKERS,
            speakers: speaker_hint(self.num_speakers, self.min_speakers, self.max_speakers)?,
        })
    }
}

/// A request body as its wire type; a field of the wrong type is refused by name.
pub fn from_json<T: DeserializeOwned>(body: &Value) -> Result<T, ValidationError> {
    serde_path_to_error::deserialize(body).map_err(|e| match e.path().iter().next() {
        Some(serde_path_to_error::Segment::Map { key }) => {
            ValidationError::new(key, e.inner().to_string())
        }
        _ => ValidationError::new("body", "must be a JSON object"),
    })
}

fn required<'a>(field: &str, value: Option<&'a str>) -> Result<&'a str, ValidationError> {
    text(field, value)?.ok_or_else(|| ValidationError::new(field, "is required"))
}

/// Text as it may reach logs, paths and callbacks: no control characters.
fn text<'a>(field: &str, value: Option<&'a str>) -> Result<Option<&'a str>, ValidationError> {
    match value {
        Some(s) if s.chars().any(char::is_control) => Err(ValidationError::new(
            field,
            "must not contain control characters",
        )),
        other => Ok(other),
    }
}

fn language(value: Option<&str>, default: Language) -> Result<Language, ValidationError> {
    text("language", value)?.map_or(Ok(default), str::parse)
}

fn speaker_count(field: &str, value: Option<i64>) -> Result<Option<u8>, ValidationError> {
    value
        .map(|n| {
            u8::try_from(n)
                .ok()
                .filter(|n| SPEAKER_COUNTS.contains(n))
                .ok_or_else(|| ValidationError::new(field, "must be between 1 and 32"))
        })
        .transpose()
}

fn speaker_hint(
    num: Option<i64>,
    min: Option<i64>,
    max: Option<i64>,
) -> Result<SpeakerHint, ValidationError> {
    let hint = SpeakerHint {
        num: speaker_count("num_speakers", num)?,
        min: speaker_count("min_speakers", min)?,
        max: speaker_count("max_speakers", max)?,
    };
    if let (Some(min), Some(max)) = (hint.min, hint.max)
        && min > max
    {
        return Err(ValidationError::new(
            "min_speakers",
            "must not exceed max_speakers",
        ));
    }
    if let Some(num) = hint.num
        && (hint.min.is_some_and(|m| num < m) || hint.max.is_some_and(|m| num > m))
    {
        return Err(ValidationError::new(
            "num_speakers",
            "must lie within min_speakers..max_speakers",
        ));
    }
    Ok(hint)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ID: &str = "550e8400-e29b-41d4-a716-446655440000";
    const STRICT: &UrlPolicy = &UrlPolicy {
        allow_local: false,
        callback_hosts: None,
    };
    const LOCAL: &UrlPolicy = &UrlPolicy {
        allow_local: true,
        callback_hosts: None,
    };

    fn field_of(body: &Value, policy: &UrlPolicy) -> String {
        JobSpec::parse_process_video(body, policy)
            .unwrap_err()
            .field
    }

    /// The field blamed once a valid request gains the fields of `extra`.
    fn field_with(extra: Value) -> String {
        let mut body = json!({"job_id": ID, "video_url": "https://example.com/v.mp4"});
        let Value::Object(extra) = extra else {
            panic!("extra fields come as an object")
        };
        body.as_object_mut().unwrap().extend(extra);
        field_of(&body, STRICT)
    }

    #[test]
    fn accepts_the_contract_example_with_defaults() {
        let spec = JobSpec::parse_process_video(
            &json!({"job_id": ID, "video_url": "https://s3.amazonaws.com/bucket/video.mp4", "extra": 1}),
            STRICT,
        )
        .unwrap();
        assert_eq!(spec.language, Language::Auto);
        assert_eq!(spec.max_workers, 4);
        assert!(spec.enable_gpu && spec.emotion_detection);
        assert_eq!(spec.source.file_name(), "video.mp4");
    }

    #[test]
    fn names_the_offending_field() {
        let ok_url = "https://example.com/v.mp4";
        assert_eq!(
            field_of(&json!({"job_id": "nope", "video_url": ok_url}), STRICT),
            "job_id"
        );
        assert_eq!(field_of(&json!({"video_url": ok_url}), STRICT), "job_id");
        assert_eq!(field_of(&json!({"job_id": ID}), STRICT), "video_url");
        assert_eq!(field_with(json!({"language": "fr"})), "language");
        assert_eq!(field_with(json!({"max_workers": 17})), "max_workers");
        assert_eq!(field_with(json!({"max_workers": 0})), "max_workers");
        assert_eq!(field_with(json!({"enable_gpu": "yes"})), "enable_gpu");
        assert_eq!(
            field_of(&json!({"job_id": 5, "video_url": ok_url}), STRICT),
            "job_id"
        );
        assert_eq!(
            field_with(json!({"fastapi_base_url": "backend"})),
            "fastapi_base_url"
        );
        assert_eq!(field_of(&json!([1, 2]), STRICT), "body");
    }

    #[test]
    fn refuses_local_and_unsafe_urls_unless_allowed() {
        for url in [
            "http://example.com/v.mp4",
            "https://127.0.0.1/v.mp4",
            "https://10.0.0.8/v.mp4",
            "https://169.254.169.254/latest",
            "https://[::1]/v.mp4",
            "https://localhost/v.mp4",
            "/tmp/v.mp4",
            "file:///etc/passwd",
            "ftp://example.com/v.mp4",
            "https://user:pw@example.com/v.mp4",
            "s3://bucket-only",
        ] {
            assert!(
                STRICT.media_source("video_url", url).is_err(),
                "{url} must be refused"
            );
        }
        assert!(
            LOCAL
                .media_source("video_url", "http://127.0.0.1:9/v.mp4")
                .is_ok()
        );
        assert!(matches!(
            LOCAL.media_source("video_url", "clip.wav"),
            Ok(MediaSource::File { .. })
        ));
        assert!(
            LOCAL
                .media_source("video_url", "file:///etc/passwd")
                .is_err()
        );
        assert_eq!(
            STRICT.media_source("video_url", "s3://b/k/v.mp4").unwrap(),
            MediaSource::S3 {
                bucket: "b".into(),
                key: "k/v.mp4".into()
            }
        );
    }

    #[test]
    fn metadata_addresses_are_refused_even_when_local_urls_are_allowed() {
        for url in [
            "http://169.254.169.254/latest/meta-data/",
            "http://169.254.170.2/v2/credentials",
            "http://[fd00:ec2::254]/latest",
            "http://[::ffff:169.254.169.254]/",
            "http://100.100.100.200/latest",
        ] {
            let err = LOCAL.media_source("video_url", url).unwrap_err();
            assert!(err.message.contains("metadata"), "{url}: {err}");
            assert!(
                LOCAL.callback_base("fastapi_base_url", url).is_err(),
                "{url}"
            );
        }
        assert!(!is_metadata_ip("10.0.0.1".parse().unwrap()));
        assert!(!is_metadata_ip("fd00:ec2::253".parse().unwrap()));
    }

    #[test]
    fn callbacks_go_only_to_allow_listed_hosts() {
        let policy = UrlPolicy {
            allow_local: true,
            callback_hosts: Some(" Backend.Example , 127.0.0.1,[::1],".parse().unwrap()),
        };
        for ok in [
            "https://backend.example/hooks",
            "https://BACKEND.example:8443",
            "http://127.0.0.1:8000",
            "http://[::1]:9/",
        ] {
            assert!(policy.callback_base("fastapi_base_url", ok).is_ok(), "{ok}");
        }
        for refused in [
            "https://evil.example",
            "https://backend.example.evil.example",
            "https://sub.backend.example",
            "http://127.0.0.2:8000",
        ] {
            let err = policy
                .callback_base("fastapi_base_url", refused)
                .unwrap_err();
            assert_eq!(err.field, "fastapi_base_url", "{refused}");
            assert!(err.message.contains("ECG_CALLBACK_ALLOWED_HOSTS"), "{err}");
        }
        // Media may come from anywhere the rest of the policy allows.
        assert!(
            policy
                .media_source("video_url", "http://10.1.2.3/v.mp4")
                .is_ok()
        );
        // No list: any host.
        assert!(LOCAL.callback_base("f", "https://evil.example").is_ok());
    }

    #[test]
    fn allow_lists_are_host_names_only() {
        assert_eq!(
            "a.example,b.example"
                .parse::<AllowedHosts>()
                .unwrap()
                .to_string(),
            "a.example,b.example"
        );
        for bad in ["", " , ", "https://a.example", "a.example:80", "a b"] {
            assert!(bad.parse::<AllowedHosts>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn transcribe_prefers_audio_path_and_defaults_to_english() {
        let spec = JobSpec::parse_transcribe(
            &json!({"video_path": "s3://b/v.mp4", "audio_path": "s3://b/a.wav"}),
            STRICT,
        )
        .unwrap();
        assert_eq!(spec.source.file_name(), "a.wav");
        assert_eq!(spec.language, Language::En);
        assert_eq!(
            JobSpec::parse_transcribe(&json!({}), STRICT)
                .unwrap_err()
                .field,
            "audio_path"
        );
    }

    #[test]
    fn an_uploaded_file_is_the_source_and_no_path_may_compete() {
        let upload = PathBuf::from("/uploads/clip.mp4");
        let request: TranscribeRequest = from_json(&json!({"language": "ko"})).unwrap();
        let spec = request.validate_upload(upload.clone()).unwrap();
        assert_eq!(
            spec.source,
            MediaSource::File {
                path: upload.clone()
            }
        );
        assert_eq!(spec.language, Language::Ko);
        let both: TranscribeRequest =
            from_json(&json!({"video_url": "https://example.com/v.mp4"})).unwrap();
        assert_eq!(both.validate_upload(upload).unwrap_err().field, "video_url");
    }

    #[test]
    fn speaker_hints_are_checked() {
        let url = "https://example.com/v.mp4";
        let spec = JobSpec::parse_process_video(
            &json!({"job_id": ID, "video_url": url, "num_speakers": 2}),
            STRICT,
        )
        .unwrap();
        assert_eq!(spec.speakers.num, Some(2));
        assert_eq!(
            field_with(json!({"min_speakers": 3, "max_speakers": 2})),
            "min_speakers"
        );
        assert_eq!(field_with(json!({"num_speakers": 0})), "num_speakers");
        assert_eq!(field_with(json!({"max_speakers": "two"})), "max_speakers");
    }

    #[test]
    fn control_characters_are_refused() {
        assert_eq!(
            field_of(
                &json!({"job_id": ID, "video_url": "https://example.com/\u{0007}.mp4"}),
                STRICT
            ),
            "video_url"
        );
    }
}
