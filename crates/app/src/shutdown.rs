//! Stopping on SIGTERM (how systemd, EC2 and container runtimes stop a service) or Ctrl-C.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// How long the process waits at exit for work still running on the async runtime's threads
/// once the worker has returned (its jobs are finished or released by then) and
/// [`abandon_inference`] has told it to stop.
pub const EXIT_WAIT: Duration = Duration::from_secs(5);

/// Ends the process with `code` once the async runtime has shut down (stdout and stderr flushed).
/// A model computation that a shutdown gave up on may still be running in ONNX Runtime or
/// whisper.cpp on a blocking thread past [`EXIT_WAIT`]: a normal exit would run their C++ static
/// destructors under it, and the process would crash on its way out (seen under load, when a
/// drained runner hands its job back mid-inference). `_exit` ends it without them.
#[allow(unsafe_code)]
pub fn exit_now(code: i32) -> ! {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: `_exit` only ends the process; no Rust code runs after it, so no invariant of ours
    // is observed broken.
    unsafe { libc::_exit(code) }
}

/// Stops the model computations still running, before the process exits.
pub fn abandon_inference() {
    ecg_speech::abandon_transcriptions();
}

/// Cancels `shutdown` when a stop signal arrives; returns when it is cancelled either way.
pub async fn cancel_on_signal(shutdown: CancellationToken) {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        () = term => {},
        () = shutdown.cancelled() => return,
    }
    tracing::info!("stop signal received: finishing in-flight work");
    shutdown.cancel();
}
