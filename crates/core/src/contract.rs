//! Wire types of the API contract. Field names, nesting and types are binding; additions are
//! optional fields that are left out when absent, so the contract's examples round-trip unchanged.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ErrorCode;
use crate::request;

/// `POST /api/upload-video/process-video` body. A `null` counts as absent; unknown fields are
/// ignored. Validation (`crate::request`) names a missing required field, checks the rest and
/// fills in the defaults.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ProcessVideoRequest {
    /// A UUID chosen by the backend; the same id again is the same job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(required = true, nullable = false)]
    pub job_id: Option<String>,
    /// Where the media is (`https://` or `s3://`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(required = true, nullable = false)]
    pub video_url: Option<String>,
    /// Where callbacks go; the configured backend URL when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fastapi_base_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(default = json!(request::DEFAULT_ENABLE_GPU))]
    pub enable_gpu: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(default = json!(request::DEFAULT_EMOTION_DETECTION))]
    pub emotion_detection: Option<bool>,
    /// auto, ko, en, ja or zh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(default = json!(request::DEFAULT_PROCESS_VIDEO_LANGUAGE))]
    pub language: Option<String>,
    /// 1–16.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(default = json!(request::DEFAULT_MAX_WORKERS))]
    pub max_workers: Option<i64>,
    /// Additive: the exact number of speakers, when the caller knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_speakers: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_speakers: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_speakers: Option<i64>,
}

/// Immediate answer to `process-video`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ProcessVideoResponse {
    pub job_id: String,
    /// Always "processing", as the contract says, even for a job that is still queued.
    pub status: String,
    pub message: String,
    pub status_url: String,
    pub estimated_time: u64,
}

/// `POST /transcribe` body. One of the three media fields is required; `audio_path` wins over
/// `video_path`, then `video_url`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TranscribeRequest {
    #[serde(default)]
    pub video_path: Option<String>,
    #[serde(default)]
    pub audio_path: Option<String>,
    #[serde(default)]
    pub video_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(default = json!(request::DEFAULT_ENABLE_GPU))]
    pub enable_gpu: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(default = json!(request::DEFAULT_EMOTION_DETECTION))]
    pub emotion_detection: Option<bool>,
    /// auto, ko, en, ja or zh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(default = json!(request::DEFAULT_TRANSCRIBE_LANGUAGE))]
    pub language: Option<String>,
    /// Additive, as for `process-video`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_speakers: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_speakers: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_speakers: Option<i64>,
}

/// `POST /uploads` body (optional): the name of the file about to be uploaded.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UploadRequest {
    /// Its extension is kept as a hint for the decoder; `media` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
}

/// `POST /uploads` answer: where to put the file, and what to submit once it is there.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UploadResponse {
    /// A presigned URL: `PUT` the file's bytes there, with no other headers needed.
    pub upload_url: String,
    /// Always "PUT".
    pub method: String,
    /// The `video_url` (or `audio_path`) to submit once the upload is done.
    pub media_url: String,
    /// Seconds the upload URL stays valid.
    pub expires_in: u64,
}

/// `POST /transcribe` answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BackendTranscribeResponse {
    pub success: bool,
    pub segments: Vec<Segment>,
    pub speakers: BTreeMap<String, SpeakerStats>,
    pub metadata: TranscribeMetadata,
    pub processing_time: f64,
    pub error: Option<String>,
    pub error_code: Option<ErrorCode>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TranscribeMetadata {
    pub filename: String,
    pub duration: f64,
    pub total_segments: usize,
    pub unique_speakers: usize,
    pub processing_time: f64,
    pub language_requested: String,
    pub language_detected: String,
    pub processing_mode: String,
    pub processed_at: String,
}

/// `GET /health`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HealthResponse {
    /// "healthy" or "unhealthy".
    pub status: String,
    pub timestamp: String,
    /// Additive: each readiness check and what it found.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub checks: BTreeMap<String, String>,
}

/// `GET /jobs/{job_id}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobStatusResponse {
    pub status: String,
    pub processing_time: Option<f64>,
    pub completed_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<ErrorCode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    /// Not in the original contract: once the job has ended, whether the backend got the terminal
    /// callback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification: Option<Notification>,
}

/// The terminal callback's delivery, as `GET /jobs/{job_id}` reports it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Notification {
    /// `pending` (not sent yet), `sending`, `delivered`, `failed` (every attempt failed, or the
    /// process stopped while sending), or `no_target` (no callback URL was given nor configured).
    pub delivery: String,
    /// Why it failed: the attempts, the target and the last error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The status field of a callback.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CallbackStatus {
    Processing,
    Completed,
    Failed,
}

/// `POST {fastapi_base_url}/api/upload-video/result`: exactly the contract's 7 fields, absent ones omitted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Callback {
    pub job_id: String,
    pub status: CallbackStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Box<AnalysisResult>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<ErrorCode>,
}

impl Callback {
    /// The contract's seven fields: a callback carries these and no other.
    pub const FIELDS: [&str; 7] = [
        "job_id",
        "status",
        "progress",
        "message",
        "result",
        "error_message",
        "error_code",
    ];

    pub fn is_terminal(&self) -> bool {
        self.status != CallbackStatus::Processing
    }

    /// Names this callback stably across retries, `<job_id>:<status>:<progress>` (progress 100 for
    /// a completion, 0 for a failure): a backend whose answer timed out gets the same callback
    /// again and can drop it by this id.
    pub fn id(&self) -> String {
        let (status, progress) = match self.status {
            CallbackStatus::Processing => ("processing", self.progress.unwrap_or(0)),
            CallbackStatus::Completed => ("completed", 100),
            CallbackStatus::Failed => ("failed", 0),
        };
        format!("{}:{status}:{progress}", self.job_id)
    }
}

/// Everything the analysis found; the `result` of the completion callback.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AnalysisResult {
    pub segments: Vec<Segment>,
    pub word_segments: Vec<WordSegment>,
    pub speakers: BTreeMap<String, SpeakerStats>,
    pub text: String,
    pub language: String,
    pub duration: f64,
    pub metadata: ResultMetadata,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Segment {
    pub start_time: f64,
    pub end_time: f64,
    pub text: String,
    pub speaker: SpeakerRef,
    pub words: Vec<SegmentWord>,
    /// Additive: the segment's emotional tone, when `emotion_detection` was requested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emotion: Option<Emotion>,
}

/// Additive to the contract: how a segment sounds, for caption styling.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Emotion {
    /// A label from the method's documented set (e.g. calm, neutral, excited).
    pub label: String,
    /// Activation in [0, 1]: how energetic the speech is relative to the speaker's own baseline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arousal: Option<f64>,
    /// How sure the method is of `label`, in [0, 1].
    pub confidence: f64,
    /// Per-label probabilities, when the method produces them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub probabilities: BTreeMap<String, f64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SpeakerRef {
    pub speaker_id: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SegmentWord {
    pub word: String,
    pub start: f64,
    pub end: f64,
    /// Additive inside `words[]` (the contract carries it in `word_segments[]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    pub acoustic_features: AcousticFeatures,
    /// Additive: how much the word stands out from its speaker's baseline, in [0, 1].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emphasis: Option<f64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AcousticFeatures {
    /// RMS level of the word's samples in dBFS.
    pub volume_db: f64,
    /// Median fundamental frequency over voiced frames; 0.0 means unvoiced.
    pub pitch_hz: f64,
    /// Magnitude-weighted mean frequency in Hz.
    pub spectral_centroid: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WordSegment {
    pub word: String,
    pub start_time: f64,
    pub end_time: f64,
    pub speaker_id: String,
    pub confidence: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SpeakerStats {
    /// Seconds of speech attributed to the speaker (speech time only, not silences).
    pub total_duration: f64,
    pub segment_count: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ResultMetadata {
    /// The name of the Whisper model that actually ran.
    pub model_version: String,
    pub processing_time: f64,
    pub unique_speakers: usize,
    pub total_segments: usize,
    pub language_requested: String,
    pub language_detected: String,
    pub processing_mode: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processed_at: Option<String>,
    /// Additive: whether voice activity detection found any speech at all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speech_detected: Option<bool>,
    /// Additive: seconds of detected speech.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speech_duration: Option<f64>,
    /// Additive: the emotion method and its version (e.g. "prosody-v1"), when it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emotion_method: Option<String>,
}

#[cfg(test)]
mod tests {
    //! Every JSON example of the contract parses into these types and serialises back unchanged.
    use super::*;
    use serde_json::{Value, json};

    fn round_trip<T: serde::de::DeserializeOwned + Serialize>(example: &Value) {
        let parsed: T = serde_json::from_value(example.clone()).expect("example parses");
        let back = serde_json::to_value(&parsed).unwrap();
        assert_eq!(&back, example);
    }

    fn completion_example() -> Value {
        json!({
          "job_id": "550e8400-e29b-41d4-a716-446655440000",
          "status": "completed",
          "progress": 100,
          "result": {
            "segments": [{
                "start_time": 1.5, "end_time": 3.2, "text": "안녕하세요",
                "speaker": { "speaker_id": "SPEAKER_00" },
                "words": [{
                    "word": "안녕하세요", "start": 1.5, "end": 1.8,
                    "acoustic_features": { "volume_db": -20.0, "pitch_hz": 150.0, "spectral_centroid": 1500.0 }
                }]
            }],
            "word_segments": [
              { "word": "안녕하세요", "start_time": 1.5, "end_time": 1.8, "speaker_id": "SPEAKER_00", "confidence": 0.95 }
            ],
            "speakers": {
              "SPEAKER_00": { "total_duration": 45.2, "segment_count": 12 },
              "SPEAKER_01": { "total_duration": 38.7, "segment_count": 9 }
            },
            "text": "full transcript text...",
            "language": "ko",
            "duration": 120.5,
            "metadata": {
              "model_version": "whisperx-base", "processing_time": 45.2, "unique_speakers": 2,
              "total_segments": 35, "language_requested": "ko", "language_detected": "ko",
              "processing_mode": "targeted"
            }
          }
        })
    }

    #[test]
    fn process_video_request_and_response() {
        round_trip::<ProcessVideoRequest>(&json!({
          "job_id": "550e8400-e29b-41d4-a716-446655440000",
          "video_url": "https://s3.amazonaws.com/bucket/video.mp4",
          "fastapi_base_url": "https://backend.example",
          "enable_gpu": true, "emotion_detection": true, "language": "ko", "max_workers": 4
        }));
        round_trip::<ProcessVideoResponse>(&json!({
          "job_id": "550e8400-e29b-41d4-a716-446655440000",
          "status": "processing",
          "message": "비디오 처리가 시작되었습니다",
          "status_url": "/jobs/550e8400-e29b-41d4-a716-446655440000",
          "estimated_time": 300
        }));
    }

    #[test]
    fn unknown_fields_are_ignored_and_null_is_absent() {
        let r: ProcessVideoRequest = serde_json::from_value(
            json!({"job_id": "x", "video_url": "y", "unknown": 1, "language": null}),
        )
        .unwrap();
        assert_eq!(r.language, None);
        assert_eq!(r.enable_gpu, None);
    }

    #[test]
    fn transcribe_request_and_response() {
        round_trip::<TranscribeRequest>(&json!({
          "video_path": "s3://bucket/video.mp4", "audio_path": "s3://bucket/audio.wav",
          "video_url": null, "enable_gpu": true, "emotion_detection": true, "language": "en"
        }));
        round_trip::<BackendTranscribeResponse>(&json!({
          "success": true, "segments": [], "speakers": {},
          "metadata": {
            "filename": "video.mp4", "duration": 120.5, "total_segments": 45, "unique_speakers": 2,
            "processing_time": 32.1, "language_requested": "en", "language_detected": "en",
            "processing_mode": "targeted", "processed_at": "2024-01-15T10:30:00Z"
          },
          "processing_time": 32.1, "error": null, "error_code": null
        }));
    }

    #[test]
    fn health_and_job_status() {
        round_trip::<HealthResponse>(
            &json!({ "status": "healthy", "timestamp": "2024-01-15T10:30:00Z" }),
        );
        round_trip::<JobStatusResponse>(
            &json!({ "status": "completed", "processing_time": 45.2, "completed_at": "2024-01-15T10:30:00Z" }),
        );
    }

    #[test]
    fn callbacks() {
        round_trip::<Callback>(&json!({
            "job_id": "550e8400-…", "status": "processing", "progress": 50, "message": "음성을 텍스트로 변환 중..."
        }));
        round_trip::<Callback>(&completion_example());
        round_trip::<Callback>(&json!({
            "job_id": "550e8400-…", "status": "failed", "error_message": "오디오 추출 실패",
            "error_code": "AUDIO_EXTRACTION_ERROR"
        }));
    }

    #[test]
    fn callbacks_never_carry_an_eighth_field() {
        let cb: Callback = serde_json::from_value(completion_example()).unwrap();
        let v = serde_json::to_value(cb).unwrap();
        assert!(
            v.as_object()
                .unwrap()
                .keys()
                .all(|k| Callback::FIELDS.contains(&k.as_str()))
        );
        let extra = json!({"job_id": "a", "status": "processing", "speakers": {}});
        assert!(serde_json::from_value::<Callback>(extra).is_err());
    }

    #[test]
    fn each_callback_of_a_job_has_its_own_stable_id() {
        let job_id = "550e8400-e29b-41d4-a716-446655440000";
        let callback = |status: CallbackStatus, progress: Option<u8>| Callback {
            job_id: job_id.to_owned(),
            status,
            progress,
            message: None,
            result: None,
            error_message: None,
            error_code: None,
        };
        let ids = [
            callback(CallbackStatus::Processing, Some(10)).id(),
            callback(CallbackStatus::Processing, Some(60)).id(),
            callback(CallbackStatus::Completed, None).id(),
            callback(CallbackStatus::Failed, None).id(),
        ];
        assert_eq!(ids[1], format!("{job_id}:processing:60"));
        assert_eq!(ids[2], format!("{job_id}:completed:100"));
        assert_eq!(ids[3], format!("{job_id}:failed:0"));
        assert_ne!(ids[0], ids[1]);
        assert_eq!(callback(CallbackStatus::Processing, Some(60)).id(), ids[1]);
    }
}
