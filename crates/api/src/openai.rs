//! `POST /v1/audio/transcriptions`, the endpoint OpenAI's speech-to-text API and the tools built
//! on it speak: a form upload in, OpenAI's answer shapes out (`json`, `text`, `srt`, `vtt`,
//! `verbose_json`), with our speakers and per-word features as additional fields that OpenAI
//! clients ignore. Any `model` is accepted; the answer names the one that ran.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ecg_core::contract::{AnalysisResult, TranscribeRequest};
use ecg_core::error::ErrorCode;
use ecg_core::job::{JobRecord, JobStatus};
use ecg_core::request::ValidationError;
use ecg_core::subtitles::{SubtitleFormat, render};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::routes::run_to_end;
use crate::state::AppState;
use crate::upload;

/// The header that names the Whisper model that ran, whatever `model` asked for.
pub const MODEL_HEADER: &str = "x-ecg-model";

#[utoipa::path(
    post,
    path = "/v1/audio/transcriptions",
    tag = "openai",
    responses(
        (status = 200, description = "The transcript in the `response_format` asked for: `json` (`text`), `text`, `srt`, `vtt` or `verbose_json` (`task`, `language`, `duration`, `text`, `segments`, `words`, plus `speaker` and `acoustic_features`)"),
        (status = 400, description = "A field is invalid or the media cannot be read; OpenAI's error shape"),
        (status = 401, description = "No or a wrong bearer token"),
        (status = 413, description = "The upload is over its limit"),
        (status = 504, description = "Still running past the deadline"),
    ),
    security(("bearer" = []))
)]
pub async fn transcriptions(State(state): State<AppState>, request: Request) -> Response {
    match transcribe(&state, request).await {
        Ok(response) => response,
        Err(e) => openai_error(&e),
    }
}

async fn transcribe(state: &AppState, request: Request) -> Result<Response, ApiError> {
    if !upload::is_multipart(request.headers()) {
        return Err(ApiError::Unsupported(
            "send the audio as multipart/form-data with a `file` part".to_owned(),
        ));
    }
    let upload = upload::receive(request, state.config.uploads.as_ref()).await?;
    let format = ResponseFormat::parse(upload.field("response_format"))?;
    let granularities = Granularities::parse(upload.all("timestamp_granularities[]"))?;
    // OpenAI's fields onto the contract's request; the rest (prompt, temperature) do not apply.
    let fields = TranscribeRequest {
        language: Some(upload.field("language").unwrap_or("auto").to_owned()),
        emotion_detection: Some(false),
        ..TranscribeRequest::default()
    };
    let spec = fields.validate_upload(upload.path().to_owned())?;
    let record = run_to_end(state, spec, Some(upload)).await?;
    let Some(result) = record
        .result
        .as_deref()
        .filter(|_| record.status == JobStatus::Completed)
    else {
        return Ok(failed(&record));
    };
    let mut response = match format {
        ResponseFormat::Json => Json(json!({ "text": result.text })).into_response(),
        ResponseFormat::Text => plain("text/plain; charset=utf-8", format!("{}\n", result.text)),
        ResponseFormat::Srt => plain(
            "application/x-subrip",
            render(result, SubtitleFormat::Srt, false),
        ),
        ResponseFormat::Vtt => plain(
            "text/vtt; charset=utf-8",
            render(result, SubtitleFormat::Vtt, false),
        ),
        ResponseFormat::VerboseJson => Json(verbose_json(result, granularities)).into_response(),
    };
    if let Ok(model) = HeaderValue::from_str(&result.metadata.model_version) {
        response.headers_mut().insert(MODEL_HEADER, model);
    }
    Ok(response)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ResponseFormat {
    Json,
    Text,
    Srt,
    Vtt,
    VerboseJson,
}

impl ResponseFormat {
    fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        Ok(match raw.unwrap_or("json") {
            "json" => Self::Json,
            "text" => Self::Text,
            "srt" => Self::Srt,
            "vtt" => Self::Vtt,
            "verbose_json" => Self::VerboseJson,
            other => {
                return Err(invalid(
                    "response_format",
                    format!("must be json, text, srt, vtt or verbose_json (got {other:?})"),
                ));
            }
        })
    }
}

/// Which timings `verbose_json` carries: segments unless only words are asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Granularities {
    words: bool,
    segments: bool,
}

impl Granularities {
    fn parse(raw: &[String]) -> Result<Self, ApiError> {
        let mut asked = Self {
            words: false,
            segments: false,
        };
        for value in raw {
            match value.as_str() {
                "word" => asked.words = true,
                "segment" => asked.segments = true,
                other => {
                    return Err(invalid(
                        "timestamp_granularities[]",
                        format!("must be word or segment (got {other:?})"),
                    ));
                }
            }
        }
        if !asked.words {
            asked.segments = true;
        }
        Ok(asked)
    }
}

fn invalid(field: &str, message: String) -> ApiError {
    ApiError::Invalid(ValidationError::new(field, message))
}

fn plain(content_type: &'static str, body: String) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// OpenAI's `verbose_json`, with each segment's and word's speaker and each word's features.
fn verbose_json(result: &AnalysisResult, granularities: Granularities) -> Value {
    let mut body = json!({
        "task": "transcribe",
        "language": language_name(&result.language),
        "duration": result.duration,
        "text": result.text,
        "model": result.metadata.model_version,
    });
    if granularities.segments {
        let segments: Vec<Value> = result
            .segments
            .iter()
            .enumerate()
            .map(|(id, segment)| {
                json!({
                    "id": id,
                    "seek": 0,
                    "start": segment.start_time,
                    "end": segment.end_time,
                    "text": segment.text,
                    "tokens": [],
                    "temperature": 0.0,
                    "avg_logprob": mean_log_probability(segment.words.iter().filter_map(|w| w.confidence)),
                    "speaker": segment.speaker.speaker_id,
                })
            })
            .collect();
        body["segments"] = Value::Array(segments);
    }
    if granularities.words {
        let words: Vec<Value> = result
            .segments
            .iter()
            .flat_map(|segment| {
                segment.words.iter().map(|word| {
                    json!({
                        "word": word.word,
                        "start": word.start,
                        "end": word.end,
                        "speaker": segment.speaker.speaker_id,
                        "confidence": word.confidence,
                        "acoustic_features": word.acoustic_features,
                        "emphasis": word.emphasis,
                    })
                })
            })
            .collect();
        body["words"] = Value::Array(words);
    }
    body
}

/// The mean natural log of the words' probabilities, as Whisper reports a segment's; 0 without
/// words.
fn mean_log_probability(probabilities: impl Iterator<Item = f64>) -> f64 {
    let (sum, count) = probabilities.fold((0.0, 0usize), |(sum, count), p| {
        (sum + p.max(1e-6).ln(), count + 1)
    });
    if count == 0 { 0.0 } else { sum / count as f64 }
}

/// OpenAI names the detected language in English words.
fn language_name(code: &str) -> &str {
    match code {
        "en" => "english",
        "ko" => "korean",
        "ja" => "japanese",
        "zh" => "chinese",
        other => other,
    }
}

/// A failed job as OpenAI reports errors: unreadable media is the caller's (400), the rest ours.
fn failed(record: &JobRecord) -> Response {
    let status = match record.error_code {
        Some(ErrorCode::DownloadError | ErrorCode::AudioExtractionError) => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let message = record
        .error_message
        .as_deref()
        .unwrap_or("the analysis failed");
    let code = record.error_code.map(ErrorCode::as_str);
    (status, Json(openai_body(status, message, None, code))).into_response()
}

/// A refused request in OpenAI's shape, with the status and headers the API gives it.
fn openai_error(error: &ApiError) -> Response {
    let param = match error {
        ApiError::Invalid(e) => Some(e.field.as_str()),
        _ => None,
    };
    error.respond_with(openai_body(error.status(), &error.message(), param, None))
}

/// OpenAI's error shape: `{"error": {"message", "type", "param", "code"}}`.
fn openai_body(
    status: StatusCode,
    message: &str,
    param: Option<&str>,
    code: Option<&str>,
) -> Value {
    let kind = if status.is_server_error() {
        "server_error"
    } else {
        "invalid_request_error"
    };
    json!({ "error": { "message": message, "type": kind, "param": param, "code": code } })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn granularities_default_to_segments() {
        let words = Granularities::parse(&["word".to_owned()]).unwrap();
        assert_eq!(
            words,
            Granularities {
                words: true,
                segments: false
            }
        );
        let none = Granularities::parse(&[]).unwrap();
        assert_eq!(
            none,
            Granularities {
                words: false,
                segments: true
            }
        );
        assert!(Granularities::parse(&["char".to_owned()]).is_err());
        assert_eq!(ResponseFormat::parse(None).unwrap(), ResponseFormat::Json);
        assert!(ResponseFormat::parse(Some("xml")).is_err());
    }

    #[test]
    fn a_segment_scores_as_the_mean_log_probability_of_its_words() {
        let score = mean_log_probability([1.0, (-1.0f64).exp()].into_iter());
        assert!((score + 0.5).abs() < 1e-9, "{score}");
        assert_eq!(mean_log_probability(std::iter::empty()), 0.0);
    }
}
