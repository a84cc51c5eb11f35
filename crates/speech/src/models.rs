//! How a configured Whisper model becomes a file, and what its header says about it.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Whisper sizes from the largest to the smallest, as whisper.cpp names its `ggml-<name>.bin` files.
const WHISPER_SIZES: [&str; 8] = [
    "large-v3",
    "large-v2",
    "large-v1",
    "large-v3-turbo",
    "medium",
    "small",
    "base",
    "tiny",
];

/// A configured model is a path when it names a `.bin` file or has a directory part, else a name
/// such as `base` that lives in `dir` as `ggml-base.bin`.
pub fn whisper_model_path(spec: &str, dir: &Path) -> PathBuf {
    let path = Path::new(spec);
    if spec.ends_with(".bin") || path.components().count() > 1 {
        path.to_path_buf()
    } else {
        dir.join(format!("ggml-{spec}.bin"))
    }
}

/// The models tried in turn when a named one cannot be loaded: for a quantized name such as
/// `base-q8_0` the same size unquantized first, then the standard sizes smaller than it.
pub fn smaller_whisper_models(spec: &str) -> Vec<String> {
    let (size, quantized) = match spec.rsplit_once("-q") {
        Some((size, kind)) if kind.starts_with(|c: char| c.is_ascii_digit()) => (size, true),
        _ => (spec, false),
    };
    let Some(i) = WHISPER_SIZES.iter().position(|&s| s == size) else {
        return Vec::new();
    };
    let same_size = quantized.then_some(size);
    same_size
        .into_iter()
        .chain(WHISPER_SIZES[i + 1..].iter().copied())
        .map(str::to_owned)
        .collect()
}

/// The name reported as `model_version`: the loaded file's stem, e.g. `ggml-base`.
pub fn model_name_of(path: &Path) -> String {
    path.file_stem().map_or_else(
        || path.display().to_string(),
        |s| s.to_string_lossy().into_owned(),
    )
}

/// The shape of a Whisper model, read from a ggml file's header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WhisperShape {
    pub n_vocab: i32,
    pub n_audio_layer: i32,
    pub n_text_layer: i32,
}

/// `ggml` in little-endian, the first word of every whisper.cpp model file.
const GGML_MAGIC: u32 = 0x6767_6d6c;

impl WhisperShape {
    /// Reads the hyper-parameters that follow the magic: n_vocab, n_audio_ctx, n_audio_state,
    /// n_audio_head, n_audio_layer, n_text_ctx, n_text_state, n_text_head, n_text_layer, ….
    pub fn read(path: &Path) -> std::io::Result<Self> {
        let mut header = [0u8; 40];
        File::open(path)?.read_exact(&mut header)?;
        let word = |i: usize| {
            let mut b = [0u8; 4];
            b.copy_from_slice(&header[i * 4..i * 4 + 4]);
            b
        };
        if u32::from_le_bytes(word(0)) != GGML_MAGIC {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "not a ggml Whisper model (bad magic)",
            ));
        }
        let int = |i| i32::from_le_bytes(word(i));
        Ok(Self {
            n_vocab: int(1),
            n_audio_layer: int(5),
            n_text_layer: int(9),
        })
    }

    /// The English-only models have the smaller vocabulary.
    pub fn english_only(self) -> bool {
        self.n_vocab == 51_864
    }

    /// large-v3 and its turbo variant added a language token.
    pub fn large_v3_vocabulary(self) -> bool {
        self.n_vocab == 51_866
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_paths() {
        let dir = Path::new("/m");
        assert_eq!(
            whisper_model_path("base", dir),
            Path::new("/m/ggml-base.bin")
        );
        assert_eq!(
            whisper_model_path("base.en", dir),
            Path::new("/m/ggml-base.en.bin")
        );
        assert_eq!(
            whisper_model_path("/x/ggml-large-v3-turbo-q5_0.bin", dir),
            Path::new("/x/ggml-large-v3-turbo-q5_0.bin")
        );
        assert_eq!(
            whisper_model_path("models/custom", dir),
            Path::new("models/custom")
        );
        assert_eq!(model_name_of(Path::new("/m/ggml-base.bin")), "ggml-base");
    }

    #[test]
    fn smaller_models_follow_the_size_ladder() {
        assert_eq!(smaller_whisper_models("small"), ["base", "tiny"]);
        assert_eq!(smaller_whisper_models("base-q8_0"), ["base", "tiny"]);
        assert_eq!(
            smaller_whisper_models("large-v3-turbo-q5_0"),
            ["large-v3-turbo", "medium", "small", "base", "tiny"]
        );
        assert!(smaller_whisper_models("tiny").is_empty());
        assert!(smaller_whisper_models("/x/model.bin").is_empty());
    }

    #[test]
    fn a_non_ggml_file_is_refused() {
        let path = std::env::temp_dir().join(format!("ecg-not-ggml-{}.bin", std::process::id()));
        std::fs::write(&path, [0u8; 64]).unwrap();
        let err = WhisperShape::read(&path).unwrap_err();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    }
}
