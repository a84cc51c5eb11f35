//! The binaries' settings: every one a command-line flag with an `ECG_*` (or standard)
//! environment variable, mapped onto the plain config structs of the libraries. A default lives
//! in the library's `Default`, and a flag shows it; only settings that exist for the binaries
//! alone (a listener's address, the CORS list) have their defaults here.
//!
//! Layout:
//! - [`requests`]: what URLs requests may name and which origins may call the API; every binary,
//!   the API function included.
//! - [`worker`]: how a worker runs jobs, where it serves `/metrics` and what it learns from and
//!   tells about the EC2 instance it runs on.
//! - [`pipeline`] (feature `pipeline`): models, media decoding, downloads and callbacks. It links
//!   the model stages, so the API function builds without it.
//!
//! Each binary `#[command(flatten)]`s the groups it needs.

#[cfg(feature = "pipeline")]
pub mod pipeline;
pub mod requests;
pub mod worker;

#[cfg(feature = "pipeline")]
pub use pipeline::{
    AsrArgs, CallbackArgs, DecodeArgs, DiarizeArgs, DownloadArgs, EmotionArgs, ModelArgs, Named,
    VadArgs,
};
pub use requests::{CorsArgs, UrlArgs};
pub use worker::{InstanceArgs, MetricsArgs, WorkerArgs};

/// Settings from environment variables alone, through the same definitions as the command line:
/// for programs without a command line of their own (tests).
pub fn from_env<T: clap::Args>() -> Result<T, clap::Error> {
    #[derive(clap::Parser)]
    struct EnvOnly<T: clap::Args> {
        #[command(flatten)]
        settings: T,
    }
    <EnvOnly<T> as clap::Parser>::try_parse_from(["ecg"]).map(|e| e.settings)
}

/// For tests: the flags alone, as `T` parses them; the environment the tests run in
/// (ECG_ASR_THREADS, …) is not read.
#[cfg(test)]
fn flags_only<T: clap::Parser>(args: &[&str]) -> T {
    let matches = T::command()
        .mut_args(|arg| arg.env(None::<&str>))
        .try_get_matches_from(std::iter::once("test").chain(args.iter().copied()))
        .unwrap();
    T::from_arg_matches(&matches).unwrap()
}
