//! The contract's progress steps. Percentages and messages are binding and sent as is.

use serde::{Deserialize, Serialize};

/// One step of a job's progress, in the order a job passes through them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Step {
    Downloaded,
    DetectingSpeech,
    IdentifyingSpeakers,
    Transcribing,
    AnalysingEmotion,
    Assembling,
    Done,
}

impl Step {
    /// Every step in order.
    pub const ALL: [Step; 7] = [
        Step::Downloaded,
        Step::DetectingSpeech,
        Step::IdentifyingSpeakers,
        Step::Transcribing,
        Step::AnalysingEmotion,
        Step::Assembling,
        Step::Done,
    ];

    /// The percentage the contract assigns to this step.
    pub fn percent(self) -> u8 {
        match self {
            Step::Downloaded => 10,
            Step::DetectingSpeech => 25,
            Step::IdentifyingSpeakers => 40,
            Step::Transcribing => 60,
            Step::AnalysingEmotion => 75,
            Step::Assembling => 90,
            Step::Done => 100,
        }
    }

    /// The user-facing message the contract assigns to this step.
    pub fn message(self) -> &'static str {
        match self {
            Step::Downloaded => "비디오 다운로드 완료",
            Step::DetectingSpeech => "음성 구간 감지 중...",
            Step::IdentifyingSpeakers => "화자 식별 중...",
            Step::Transcribing => "음성을 텍스트로 변환 중...",
            Step::AnalysingEmotion => "감정 분석 중...",
            Step::Assembling => "결과 정리 중...",
            Step::Done => "분석 완료",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_match_the_contract_table() {
        let percents: Vec<u8> = Step::ALL.iter().map(|s| s.percent()).collect();
        assert_eq!(percents, [10, 25, 40, 60, 75, 90, 100]);
        assert_eq!(Step::Transcribing.message(), "음성을 텍스트로 변환 중...");
        assert!(Step::ALL.windows(2).all(|w| w[0] < w[1]));
    }
}
