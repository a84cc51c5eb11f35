//! `ecg analyze`: one file through the whole pipeline, the result on stdout.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use async_trait::async_trait;
use ecg_app::ModelConfig;
use ecg_audio::DecodeLimits;
use ecg_core::contract::ProcessVideoRequest;
use ecg_core::job::JobId;
use ecg_core::pipeline::ProgressSink;
use ecg_core::preview::{PreviewMedia, media_type, render_preview};
use ecg_core::progress::Step;
use ecg_core::request::{MediaSource, UrlPolicy};
use ecg_core::subtitles::{SubtitleFormat, render};
use ecg_net::{FetchConfig, HttpFetcher};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::config::{AnalyzeArgs, OutputFormat};

pub async fn run(
    models: &ModelConfig,
    decode: DecodeLimits,
    args: AnalyzeArgs,
) -> anyhow::Result<()> {
    // The same validation as the API, with local files and URLs allowed: this is the operator's machine.
    let request = ProcessVideoRequest {
        job_id: Some(JobId::new().to_string()),
        video_url: Some(args.input.clone()),
        language: Some(config_language(&args).to_owned()),
        emotion_detection: Some(!args.no_emotion),
        enable_gpu: Some(!args.no_gpu),
        num_speakers: args.num_speakers.map(i64::from),
        min_speakers: args.min_speakers.map(i64::from),
        max_speakers: args.max_speakers.map(i64::from),
        ..ProcessVideoRequest::default()
    };
    let policy = UrlPolicy {
        allow_local: true,
        ..UrlPolicy::default()
    };
    let spec = request
        .validate(&policy)
        .map_err(|e| anyhow::anyhow!("invalid {e}"))?;
    // Where the output goes is checked before minutes of analysis: it is written to a temporary
    // file beside it and renamed into place, so a failed run leaves no half-written output.
    let output = args
        .output
        .as_deref()
        .map(|path| {
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            // Readable by others like any file a command writes, not private like a temporary one.
            tempfile::Builder::new()
                .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
                .tempfile_in(dir)
                .with_context(|| format!("cannot write {}", path.display()))
                .map(|file| (file, path))
        })
        .transpose()?;
    let fetcher = HttpFetcher::new(FetchConfig {
        allow_local: true,
        ..FetchConfig::default()
    })?;
    let pipeline = ecg_app::pipeline(models, decode, Arc::new(fetcher));

    let bar = Bar::new();
    let outcome = pipeline.run(&spec, &bar).await;
    bar.0.finish_and_clear();
    let result = outcome.map_err(|e| anyhow::anyhow!("[{}] {}", e.code().as_str(), e))?;

    let text = match args.format {
        OutputFormat::Json => serde_json::to_string_pretty(&result)? + "\n",
        OutputFormat::Srt => render(&result, SubtitleFormat::Srt, args.speaker_labels),
        OutputFormat::Vtt => render(&result, SubtitleFormat::Vtt, args.speaker_labels),
        OutputFormat::Html => {
            let page_dir = output
                .as_ref()
                .map(|(_, path)| path.parent().unwrap_or(Path::new("")));
            let media = preview_media(&spec.source, args.embed_media_max_mb, page_dir)?;
            render_preview(&result, &spec.source.file_name(), media.as_ref())
        }
    };
    match output {
        Some((mut file, path)) => {
            file.write_all(text.as_bytes())
                .and_then(|()| file.persist(path).map(drop).map_err(|e| e.error))
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        None => std::io::stdout().lock().write_all(text.as_bytes())?,
    }
    Ok(())
}

/// What a file name must not carry raw in a URL path segment.
const PATH_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'?')
    .add(b'<')
    .add(b'>')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'/')
    .add(b'\\');

/// The media for the preview page: a URL as is; a local file inside the page up to
/// `embed_max_mb`, else linked by its path relative to the page (`page_dir`; the working
/// directory for stdout).
fn preview_media(
    source: &MediaSource,
    embed_max_mb: u64,
    page_dir: Option<&Path>,
) -> anyhow::Result<Option<PreviewMedia>> {
    let MediaSource::File { path: input } = source else {
        return Ok(PreviewMedia::from_url(source));
    };
    let Some(mime) = media_type(&source.file_name()) else {
        return Ok(None);
    };
    let size = std::fs::metadata(input)
        .with_context(|| format!("cannot read {}", input.display()))?
        .len();
    if size <= embed_max_mb.saturating_mul(1 << 20) {
        let bytes =
            std::fs::read(input).with_context(|| format!("cannot read {}", input.display()))?;
        return Ok(Some(PreviewMedia::Embedded { mime, bytes }));
    }
    let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let page_dir = absolute(
        page_dir
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new(".")),
    );
    let media = absolute(input);
    let src = pathdiff::diff_paths(&media, &page_dir).unwrap_or(media);
    Ok(Some(PreviewMedia::Linked {
        mime,
        src: src
            .components()
            .map(|c| {
                percent_encoding::utf8_percent_encode(
                    &c.as_os_str().to_string_lossy(),
                    PATH_SEGMENT,
                )
                .to_string()
            })
            .collect::<Vec<_>>()
            .join("/"),
    }))
}

fn config_language(args: &AnalyzeArgs) -> &'static str {
    ecg_core::request::Language::from(args.language).as_str()
}

/// A progress bar on stderr, drawn only when stderr is a terminal.
struct Bar(ProgressBar);

impl Bar {
    fn new() -> Self {
        let bar = ProgressBar::with_draw_target(Some(100), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template("{bar:30} {pos:>3}% {msg}") {
            bar.set_style(style);
        }
        Self(bar)
    }
}

#[async_trait]
impl ProgressSink for Bar {
    async fn reached(&self, step: Step) {
        self.0.set_position(u64::from(step.percent()));
        self.0.set_message(step.message());
    }
}
