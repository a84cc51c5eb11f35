//! Signal processing on 16 kHz mono samples, shared by the feature extractor and any later
//! prosody or emotion stage. Each piece plans its FFTs once and can be shared across threads.

pub mod bandwidth;
pub mod level;
pub mod spectrum;
pub mod yin;

#[cfg(test)]
pub(crate) mod testsignal;
