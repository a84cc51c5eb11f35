//! Command line and environment: every setting is a flag with an environment variable.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use ecg_core::ports::FetchLimits;
use ecg_core::request::Language;
use ecg_settings::{
    CallbackArgs, CorsArgs, DecodeArgs, DownloadArgs, ModelArgs, UrlArgs, WorkerArgs,
};

#[derive(Parser, Debug)]
#[command(
    name = "ecg",
    version,
    about = "ECG Audio Analyzer: speech analysis for video subtitles"
)]
pub struct Cli {
    #[command(flatten, next_help_heading = "Models")]
    pub models: ModelArgs,
    #[command(flatten, next_help_heading = "Media limits")]
    pub decode: DecodeArgs,
    /// Log lines on stderr: `plain` for a person, `json` (one object per line, with each stage's
    /// time) for a log pipeline or a benchmark. Default: plain for `analyze`, json for `serve`.
    #[arg(long, global = true, env = "ECG_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Plain,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Analyse one file or URL and print the result (JSON, SRT, VTT or an HTML preview) on stdout.
    Analyze(AnalyzeArgs),
    /// Serve the API and run jobs in this process (embedded job store and queue).
    // Boxed: its settings outweigh the other variant's many times over.
    Serve(Box<ServeArgs>),
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    Json,
    Srt,
    Vtt,
    /// A self-contained page that plays the media with the analysis as karaoke captions.
    Html,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LanguageArg {
    Auto,
    Ko,
    En,
    Ja,
    Zh,
}

impl From<LanguageArg> for Language {
    fn from(arg: LanguageArg) -> Self {
        match arg {
            LanguageArg::Auto => Language::Auto,
            LanguageArg::Ko => Language::Ko,
            LanguageArg::En => Language::En,
            LanguageArg::Ja => Language::Ja,
            LanguageArg::Zh => Language::Zh,
        }
    }
}

#[derive(Args, Debug)]
pub struct AnalyzeArgs {
    /// A local media file, or an http(s) URL.
    pub input: String,
    #[arg(long, value_enum, default_value = "auto")]
    pub language: LanguageArg,
    #[arg(long, value_enum, default_value = "json")]
    pub format: OutputFormat,
    /// Write the output here instead of stdout.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Prefix subtitle cues with the speaker id.
    #[arg(long)]
    pub speaker_labels: bool,
    /// `--format html`: media up to this size goes inside the page; larger media is linked by
    /// its path relative to the page.
    #[arg(long, default_value_t = 25)]
    pub embed_media_max_mb: u64,
    /// Skip the emotion stage.
    #[arg(long)]
    pub no_emotion: bool,
    /// Transcribe on the CPU even where the model is loaded on the GPU (a job's
    /// `enable_gpu: false`).
    #[arg(long)]
    pub no_gpu: bool,
    /// Exact number of speakers, when known.
    #[arg(long)]
    pub num_speakers: Option<u8>,
    #[arg(long)]
    pub min_speakers: Option<u8>,
    #[arg(long)]
    pub max_speakers: Option<u8>,
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    #[arg(long, env = "ECG_HOST", default_value = "127.0.0.1")]
    pub host: IpAddr,
    #[arg(long, env = "ECG_PORT", default_value_t = 8001)]
    pub port: u16,
    /// Where the embedded job store lives.
    #[arg(long, env = "ECG_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
    /// Media sent with a request (`POST /transcribe` as a form, `/v1/audio/transcriptions`) may
    /// be this large; larger uploads get 413. As large as a download may be by default.
    #[arg(long, env = "ECG_MAX_UPLOAD_BYTES", default_value_t = FetchLimits::default().max_bytes)]
    pub max_upload_bytes: u64,
    #[command(flatten)]
    pub callbacks: CallbackArgs,
    #[command(flatten)]
    pub downloads: DownloadArgs,
    #[command(flatten)]
    pub urls: UrlArgs,
    #[command(flatten)]
    pub cors: CorsArgs,
    #[command(flatten)]
    pub worker: WorkerArgs,
    /// Bearer token every endpoint but /health asks for (`Authorization: Bearer <token>`);
    /// at least 16 characters. Without one the API is open: keep it on 127.0.0.1.
    #[arg(long, env = "ECG_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<String>,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn flags_and_variables_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn analyze_takes_its_options() {
        let cli = Cli::try_parse_from([
            "ecg",
            "analyze",
            "clip.mp4",
            "--language",
            "ko",
            "--format",
            "srt",
        ])
        .unwrap();
        let Command::Analyze(args) = cli.command else {
            panic!("analyze expected")
        };
        assert_eq!(
            (args.language, args.format),
            (LanguageArg::Ko, OutputFormat::Srt)
        );
    }
}
