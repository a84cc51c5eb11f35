//! A self-contained HTML page that shows an analysis as its subtitles would: the media with
//! karaoke captions (each word lit at its own time, sized by loudness, coloured by emphasis,
//! raised or lowered by pitch against its speaker's median), a speaker timeline, a per-speaker
//! summary and a transcript that follows playback. No network: the analysis is inside the page,
//! the media too when it is small enough, and a Content-Security-Policy keeps everything else out.

use base64::Engine;

use crate::contract::AnalysisResult;
use crate::request::MediaSource;

const PAGE: &str = include_str!("preview.html");

/// The media the page plays.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PreviewMedia {
    /// The file's bytes, inside the page (a `data:` URL).
    Embedded { mime: &'static str, bytes: Vec<u8> },
    /// A URL or a path relative to the page.
    Linked { mime: &'static str, src: String },
}

impl PreviewMedia {
    /// A URL source a browser can play as it is; other sources need the caller's file at hand.
    pub fn from_url(source: &MediaSource) -> Option<Self> {
        let MediaSource::Http { url } = source else {
            return None;
        };
        media_type(&source.file_name()).map(|mime| PreviewMedia::Linked {
            mime,
            src: url.to_string(),
        })
    }

    fn element(&self) -> String {
        let (mime, src) = match self {
            PreviewMedia::Embedded { mime, bytes } => (
                *mime,
                format!(
                    "data:{mime};base64,{}",
                    base64::engine::general_purpose::STANDARD.encode(bytes)
                ),
            ),
            PreviewMedia::Linked { mime, src } => (*mime, src.clone()),
        };
        let tag = if mime.starts_with("video/") {
            "video"
        } else {
            "audio"
        };
        format!(
            r#"<{tag} id="media" controls preload="metadata" src="{}"></{tag}>"#,
            escape_html(&src)
        )
    }
}

/// The MIME type a browser needs for a media file, from its extension (None: not media it plays).
pub fn media_type(file_name: &str) -> Option<&'static str> {
    let extension = file_name.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match extension.as_str() {
        "mp4" | "m4v" => "video/mp4",
        "webm" => "video/webm",
        "mov" => "video/quicktime",
        "mkv" => "video/x-matroska",
        "ogv" => "video/ogg",
        "wav" => "audio/wav",
        "mp3" => "audio/mpeg",
        "m4a" | "aac" => "audio/mp4",
        "ogg" | "oga" | "opus" => "audio/ogg",
        "flac" => "audio/flac",
        _ => return None,
    })
}

/// The page for `result`, titled `title`; without `media` it runs a clock of its own.
pub fn render_preview(
    result: &AnalysisResult,
    title: &str,
    media: Option<&PreviewMedia>,
) -> String {
    // `<` never appears in JSON outside strings, and `\u003c` is the same string inside them: the
    // analysis cannot close its script element.
    let analysis = serde_json::to_string(result)
        .unwrap_or_else(|_| "{}".to_owned())
        .replace('<', "\\u003c");
    PAGE.replace("{{TITLE}}", &escape_html(title))
        .replace(
            "{{MEDIA}}",
            &media.map(PreviewMedia::element).unwrap_or_default(),
        )
        .replace("{{ANALYSIS}}", &analysis)
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result_with_text(text: &str) -> AnalysisResult {
        serde_json::from_value(serde_json::json!({
            "segments": [], "word_segments": [], "speakers": {}, "text": text,
            "language": "en", "duration": 1.0,
            "metadata": {
                "model_version": "m", "processing_time": 0.1, "unique_speakers": 0,
                "total_segments": 0, "language_requested": "auto", "language_detected": "en",
                "processing_mode": "auto-detect", "processed_at": "2026-01-01T00:00:00Z"
            }
        }))
        .unwrap()
    }

    #[test]
    fn the_analysis_cannot_break_out_of_its_script_element() {
        let page = render_preview(
            &result_with_text("</script><script>alert(1)</script>"),
            "<b>clip</b>.mp4",
            None,
        );
        assert_eq!(page.matches("</script>").count(), 2, "only the page's own");
        assert!(page.contains("&lt;b&gt;clip&lt;/b&gt;.mp4"));
        let start = page.find(r#"id="analysis">"#).unwrap() + r#"id="analysis">"#.len();
        let end = start + page[start..].find("</script>").unwrap();
        let back: AnalysisResult = serde_json::from_str(&page[start..end]).unwrap();
        assert_eq!(back.text, "</script><script>alert(1)</script>");
    }

    #[test]
    fn media_is_embedded_or_linked_with_the_element_it_needs() {
        let embedded = PreviewMedia::Embedded {
            mime: "audio/wav",
            bytes: b"RIFF".to_vec(),
        };
        assert_eq!(
            embedded.element(),
            r#"<audio id="media" controls preload="metadata" src="data:audio/wav;base64,UklGRg=="></audio>"#
        );
        let linked = PreviewMedia::Linked {
            mime: "video/mp4",
            src: "clips/a \"b\".mp4".into(),
        };
        assert!(linked.element().starts_with(r#"<video id="media""#));
        assert!(linked.element().contains("clips/a &quot;b&quot;.mp4"));
        assert_eq!(media_type("talk.MP4"), Some("video/mp4"));
        assert_eq!(media_type("notes.txt"), None);
    }
}
