//! Signal processing on 16 kHz mono samples, shared by the feature extractor, the emotion stage
//! and the speaker models' frontends. Each piece plans its FFTs once and can be shared across
//! threads.

pub mod level;
pub mod mel;
pub mod spectrum;
pub mod stats;
pub mod yin;

#[cfg(test)]
pub(crate) mod testsignal;
