//! Progress callbacks sent beside the job, so that the pipeline never waits on the backend.

use std::sync::Arc;
use std::time::Duration;

use ecg_core::contract::Callback;
use ecg_core::ports::Notifier;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{Instrument, warn};
use url::Url;

/// One job's progress callbacks, sent by a task of their own. A step waiting to be sent is
/// replaced by a newer one, and a step that failed is not retried once a newer one waits: a slow
/// or failing backend gets fewer steps, never stale ones, and never holds the job up.
pub(crate) struct ProgressCourier {
    latest: watch::Sender<Option<Callback>>,
    task: JoinHandle<()>,
}

impl ProgressCourier {
    pub(crate) fn start(notifier: Arc<dyn Notifier>, target: Url) -> Self {
        let (latest, mut newest) = watch::channel(None::<Callback>);
        let task = tokio::spawn(
            async move {
                while newest.changed().await.is_ok() {
                    let Some(callback) = newest.borrow_and_update().clone() else {
                        continue;
                    };
                    let waiting = newest.clone();
                    let superseded = move || waiting.has_changed().unwrap_or(false);
                    let sent = notifier
                        .send_unless(&target, &callback, &superseded)
                        .await;
                    // A lost progress callback is not worth failing the job over; the terminal
                    // one is.
                    if let Err(e) = sent {
                        warn!(error = %e, progress = ?callback.progress, "progress callback not delivered");
                    }
                }
            }
            .in_current_span(),
        );
        Self { latest, task }
    }

    /// Queues `callback`, replacing a step not sent yet.
    pub(crate) fn post(&self, callback: Callback) {
        self.latest.send_replace(Some(callback));
    }

    /// Lets the step in flight (or waiting) go out for at most `drain`, so that the terminal
    /// callback follows the progress ones; a backend slower than that loses them.
    pub(crate) async fn finish(self, drain: Duration) {
        drop(self.latest);
        let mut task = self.task;
        if tokio::time::timeout(drain, &mut task).await.is_err() {
            task.abort();
            warn!(
                drain_s = drain.as_secs_f64(),
                "progress callback still in flight at the job's end; dropped"
            );
        }
    }
}
