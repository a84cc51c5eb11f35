//! Error codes of the contract and the pipeline's error type, mapped to codes in one place.

use serde::{Deserialize, Serialize};

/// The contract's error codes, sent in failure callbacks and job status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    DownloadError,
    AudioExtractionError,
    ProcessingError,
    ModelLoadingError,
    GpuMemoryError,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::DownloadError => "DOWNLOAD_ERROR",
            ErrorCode::AudioExtractionError => "AUDIO_EXTRACTION_ERROR",
            ErrorCode::ProcessingError => "PROCESSING_ERROR",
            ErrorCode::ModelLoadingError => "MODEL_LOADING_ERROR",
            ErrorCode::GpuMemoryError => "GPU_MEMORY_ERROR",
        }
    }

    /// The Korean summary shown to end users, followed by the technical reason.
    pub fn user_message(self) -> &'static str {
        match self {
            ErrorCode::DownloadError => "비디오 파일을 다운로드할 수 없습니다",
            ErrorCode::AudioExtractionError => "오디오 추출 실패",
            ErrorCode::ProcessingError => "음성 분석 처리 실패",
            ErrorCode::ModelLoadingError => "모델 로딩 실패",
            ErrorCode::GpuMemoryError => "GPU 메모리 부족",
        }
    }
}

/// Why media could not be fetched.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct FetchError {
    pub message: String,
    /// Worth another attempt (connection reset, 5xx, throttling), as opposed to a 404 or a bad URL.
    pub transient: bool,
}

impl FetchError {
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            transient: false,
        }
    }
    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            transient: true,
        }
    }
}

/// Why a pipeline stage failed.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error("{0}")]
    Audio(String),
    #[error("{0}")]
    ModelLoading(String),
    #[error("{0}")]
    GpuMemory(String),
    #[error("{0}")]
    Processing(String),
}

/// Why a job failed; [`PipelineError::code`] is the only mapping to the contract's codes.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The media could not be had: a download that failed, or a local file that is missing.
    #[error("media not available: {0}")]
    Fetch(#[from] FetchError),
    #[error("{stage} failed: {source}")]
    Stage {
        stage: &'static str,
        #[source]
        source: StageError,
    },
}

impl PipelineError {
    pub fn stage(stage: &'static str, source: StageError) -> Self {
        PipelineError::Stage { stage, source }
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            PipelineError::Fetch(_) => ErrorCode::DownloadError,
            PipelineError::Stage { source, .. } => match source {
                StageError::Audio(_) => ErrorCode::AudioExtractionError,
                StageError::ModelLoading(_) => ErrorCode::ModelLoadingError,
                StageError::GpuMemory(_) => ErrorCode::GpuMemoryError,
                StageError::Processing(_) => ErrorCode::ProcessingError,
            },
        }
    }

    /// The message for the failure callback: the user-facing summary and the reason.
    pub fn user_message(&self) -> String {
        let reason = match self {
            PipelineError::Fetch(e) => e.to_string(),
            PipelineError::Stage { source, .. } => source.to_string(),
        };
        format!("{}: {reason}", self.code().user_message())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialise_as_the_contract_spells_them() {
        for code in [
            ErrorCode::DownloadError,
            ErrorCode::AudioExtractionError,
            ErrorCode::ProcessingError,
            ErrorCode::ModelLoadingError,
            ErrorCode::GpuMemoryError,
        ] {
            assert_eq!(serde_json::to_value(code).unwrap(), code.as_str());
        }
    }

    #[test]
    fn stage_errors_map_to_their_codes() {
        let e = PipelineError::stage("decode", StageError::Audio("no audio track".into()));
        assert_eq!(e.code(), ErrorCode::AudioExtractionError);
        assert_eq!(e.user_message(), "오디오 추출 실패: no audio track");
        let e = PipelineError::from(FetchError::permanent("404 Not Found"));
        assert_eq!(e.code(), ErrorCode::DownloadError);
    }
}
