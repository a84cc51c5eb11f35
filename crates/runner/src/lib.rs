//! The worker: leases job messages, runs the pipeline, records progress and outcome in the job
//! store, and sends the backend its callbacks — progress at most once per step and beside the
//! job ([`courier`]), the terminal one at most once per job (claimed in the store before it is
//! sent, so not even a restart repeats it).
//!
//! Works with any adapters behind `ecg-core`'s ports: embedded (one process) or AWS (SQS + DynamoDB).

mod courier;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ecg_core::contract::{Callback, CallbackStatus};
use ecg_core::error::ErrorCode;
use ecg_core::job::{Delivery, JobId, JobRecord, JobStatus, Outcome};
use ecg_core::metrics::{JOBS, JOBS_RUNNING};
use ecg_core::pipeline::{Pipeline, ProgressSink};
use ecg_core::ports::{BackendError, JobQueue, JobStore, Lease, Notifier};
use ecg_core::progress::Step;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, error, info, info_span, warn};
use url::Url;

use crate::courier::ProgressCourier;

/// How the worker behaves.
#[derive(Clone, Debug)]
pub struct RunnerConfig {
    /// Jobs run at the same time; each holds its own model state.
    pub concurrency: usize,
    /// How long one `lease` call waits for a message (SQS long polling allows up to 20 s).
    pub poll_wait: Duration,
    /// How long a leased message stays hidden after each heartbeat.
    pub lease_duration: Duration,
    /// How often a running job renews its lease; well under `lease_duration`.
    pub heartbeat_every: Duration,
    /// Callback base when a request did not name one (`BACKEND_URL`).
    pub backend_url: Option<Url>,
    /// On shutdown, how long in-flight jobs may still run before their messages are released.
    pub shutdown_grace: Duration,
    /// At a job's end, how long a progress callback still being sent may take before the
    /// terminal one goes (one callback attempt's timeout, by default).
    pub progress_drain: Duration,
    /// How long a job retries a failing job store before its message is handed back to the
    /// queue, to be offered again after as long.
    pub store_retry: Duration,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        Self {
            concurrency: 1,
            poll_wait: Duration::from_secs(20),
            lease_duration: Duration::from_secs(120),
            heartbeat_every: Duration::from_secs(30),
            backend_url: None,
            shutdown_grace: Duration::from_secs(30),
            progress_drain: Duration::from_secs(10),
            store_retry: Duration::from_secs(60),
        }
    }
}

/// Runs jobs from a queue.
pub struct Runner {
    pub store: Arc<dyn JobStore>,
    pub queue: Arc<dyn JobQueue>,
    pub notifier: Arc<dyn Notifier>,
    pub pipeline: Pipeline,
    pub config: RunnerConfig,
}

impl Runner {
    /// Puts an embedded deployment back in order after a restart: queued jobs (released ones
    /// included) are queued again, jobs a dead process was running are failed (never left
    /// "processing"), and terminal
    /// callbacks that were never sent are sent. A callback caught mid-send is not repeated:
    /// it is recorded as failed, because the backend may already have it.
    pub async fn recover(&self) -> Result<(), BackendError> {
        for record in self.store.unsettled().await? {
            let id = record.spec.job_id;
            match record.status {
                JobStatus::Queued => {
                    info!(job_id = %id, "re-queueing a job accepted before the restart");
                    self.queue
                        .enqueue(&ecg_core::ports::JobMessage { job_id: id })
                        .await?;
                }
                JobStatus::Processing => {
                    warn!(job_id = %id, "failing a job interrupted by a restart");
                    let outcome = Outcome::Failed {
                        code: ErrorCode::ProcessingError,
                        message: format!(
                            "{}: interrupted by a server restart",
                            ErrorCode::ProcessingError.user_message()
                        ),
                    };
                    if let Some(done) = self.store.finish(id, record.attempt, outcome).await? {
                        self.deliver_terminal(&done).await;
                    }
                }
                JobStatus::Completed | JobStatus::Failed => match record.delivery {
                    Delivery::Pending => self.deliver_terminal(&record).await,
                    Delivery::Sending => {
                        warn!(job_id = %id, "terminal callback was in flight at the restart; not repeating it");
                        self.store
                            .fail_delivery(
                                id,
                                "the process stopped while sending it; not repeated, so that the \
                                 backend cannot get it twice"
                                    .to_owned(),
                            )
                            .await?;
                    }
                    Delivery::Delivered | Delivery::Failed | Delivery::NoTarget => {}
                },
            }
        }
        Ok(())
    }

    /// Leases and runs jobs until `shutdown` is cancelled, then lets in-flight jobs finish
    /// within the grace period and releases the messages of those that do not.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        self.run_until(shutdown, CancellationToken::new()).await;
    }

    /// As [`Runner::run`], but the messages of unfinished jobs are released as soon as `release`
    /// is cancelled, even within the grace period: the machine is about to go.
    pub async fn run_until(
        self: Arc<Self>,
        shutdown: CancellationToken,
        release: CancellationToken,
    ) {
        let slots = Arc::new(Semaphore::new(self.config.concurrency.max(1)));
        let mut running: JoinSet<()> = JoinSet::new();
        let in_flight: Arc<std::sync::Mutex<Vec<Lease>>> = Arc::default();
        loop {
            let permit = tokio::select! {
                () = shutdown.cancelled() => break,
                permit = Arc::clone(&slots).acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
            };
            let lease = tokio::select! {
                () = shutdown.cancelled() => break,
                lease = self.queue.lease(self.config.poll_wait) => lease,
            };
            while running.try_join_next().is_some() {}
            let lease = match lease {
                Ok(Some(lease)) => lease,
                Ok(None) => continue,
                Err(e) => {
                    error!(error = %e, "cannot lease from the queue; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            track(&in_flight, &lease, true);
            let runner = Arc::clone(&self);
            let in_flight = Arc::clone(&in_flight);
            running.spawn(async move {
                runner.process(&lease).await;
                track(&in_flight, &lease, false);
                drop(permit);
            });
        }
        info!(in_flight = running.len(), "shutting down: no new jobs");
        let drained = tokio::select! {
            () = release.cancelled() => running.is_empty(),
            done = tokio::time::timeout(self.config.shutdown_grace, async {
                while running.join_next().await.is_some() {}
            }) => done.is_ok(),
        };
        if !drained {
            running.abort_all();
            let leftovers: Vec<Lease> = in_flight.lock().map(|l| l.clone()).unwrap_or_default();
            for lease in leftovers {
                warn!(job_id = %lease.message.job_id, "grace period over; releasing the job for another worker");
                self.hand_back(&lease, Duration::ZERO).await;
            }
        }
    }

    /// Handles one delivery of a job message, start to acknowledgement.
    pub async fn process(&self, lease: &Lease) {
        let id = lease.message.job_id;
        let span = info_span!("job", job_id = %id, attempt = lease.deliveries);
        async {
            let heartbeat = self.heartbeat(lease);
            let done = self.run_job(id, lease.deliveries).await;
            heartbeat.cancel();
            match done {
                // The message goes only once the outcome is stored (or the job needs nothing).
                Ok(()) => {
                    if let Err(e) = self.queue.ack(lease).await {
                        error!(error = %e, "cannot acknowledge the message; it will come back and be skipped");
                    }
                }
                Err(e) => {
                    error!(error = %e, retry_in = ?self.config.store_retry, "job store unavailable; handing the job back to the queue");
                    self.hand_back(lease, self.config.store_retry).await;
                }
            }
        }
        .instrument(span)
        .await;
    }

    /// Gives a job this worker will not finish back to the queue, offered again after `after`,
    /// and marks it queued so that a restart runs it again rather than failing it. (When the
    /// store cannot record that, the next delivery takes the job over all the same.)
    async fn hand_back(&self, lease: &Lease, after: Duration) {
        let id = lease.message.job_id;
        if let Err(e) = self.store.requeue(id, lease.deliveries).await {
            warn!(job_id = %id, error = %e, "cannot mark the job queued again");
        }
        if let Err(e) = self.queue.release(lease, after).await {
            error!(job_id = %id, error = %e, "cannot release the message; it comes back when its lease runs out");
        }
    }

    /// Runs a job store write until it succeeds or `store_retry` has passed, pausing twice as
    /// long after each failure (a quarter second to eight seconds): a full disk or a throttled
    /// table must not throw away what the job computed.
    async fn persist<T, F, Fut>(&self, what: &str, mut write: F) -> Result<T, BackendError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, BackendError>>,
    {
        let deadline = tokio::time::Instant::now() + self.config.store_retry;
        let mut pause = Duration::from_millis(250);
        loop {
            match write().await {
                Ok(done) => return Ok(done),
                Err(e) if tokio::time::Instant::now() + pause < deadline => {
                    warn!(error = %e, retry_in = ?pause, "cannot {what}; retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(8));
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn run_job(&self, id: JobId, attempt: u32) -> Result<(), BackendError> {
        let Some(record) = self.store.get(id).await? else {
            warn!("message for an unknown job; dropping it");
            return Ok(());
        };
        if record.status.is_terminal() {
            info!(
                status = record.status.as_str(),
                "job has ended already; nothing to run"
            );
            if record.delivery == Delivery::Pending {
                self.deliver_terminal(&record).await;
            }
            return Ok(());
        }
        let Some(record) = self.store.start(id, attempt).await? else {
            info!("another worker owns this job");
            return Ok(());
        };
        info!(source = %record.spec.source, language = %record.spec.language, "job started");
        let _running = RunningJob::count();
        let sink = JobProgress {
            runner: self,
            id,
            attempt,
            courier: self
                .callback_target(&record)
                .map(|target| ProgressCourier::start(Arc::clone(&self.notifier), target)),
        };
        let run = self.pipeline.run(&record.spec, &sink).await;
        if let Some(courier) = sink.courier {
            courier.finish(self.config.progress_drain).await;
        }
        let outcome = match run {
            Ok(result) => Outcome::Completed(Box::new(result)),
            Err(e) => {
                warn!(error = %e, code = e.code().as_str(), "job failed");
                Outcome::Failed {
                    code: e.code(),
                    message: e.user_message(),
                }
            }
        };
        let finished = self
            .persist("store the outcome", || {
                self.store.finish(id, attempt, outcome.clone())
            })
            .await?;
        match finished {
            Some(done) => {
                info!(status = done.status.as_str(), processing_time = ?done.processing_time(jiff::Timestamp::now()), "job ended");
                metrics::counter!(JOBS, "outcome" => done.status.as_str()).increment(1);
                self.deliver_terminal(&done).await;
            }
            None => warn!("job was taken over by another attempt; dropping this outcome"),
        }
        Ok(())
    }

    /// Sends the terminal callback once: claims it in the store first, records how it went.
    async fn deliver_terminal(&self, record: &JobRecord) {
        let id = record.spec.job_id;
        let Some(callback) = record.terminal_callback() else {
            return;
        };
        let Some(target) = self.callback_target(record) else {
            if let Err(e) = self
                .store
                .set_delivery(id, Delivery::Pending, Delivery::NoTarget)
                .await
            {
                error!(job_id = %id, error = %e, "cannot record that there is no callback target");
            }
            return;
        };
        match self
            .persist("claim the terminal callback", || {
                self.store
                    .set_delivery(id, Delivery::Pending, Delivery::Sending)
            })
            .await
        {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                error!(job_id = %id, error = %e, "cannot claim the terminal callback; not sending it");
                return;
            }
        }
        let settled = match self.notifier.send(&target, &callback).await {
            Ok(()) => {
                self.persist("record the callback's delivery", || {
                    self.store
                        .set_delivery(id, Delivery::Sending, Delivery::Delivered)
                })
                .await
            }
            Err(e) => {
                error!(job_id = %id, error = %e, "terminal callback not delivered");
                let reason = e.to_string();
                self.persist("record the callback's failure", || {
                    self.store.fail_delivery(id, reason.clone())
                })
                .await
            }
        };
        if let Err(e) = settled {
            error!(job_id = %id, error = %e, "cannot record the callback's delivery");
        }
    }

    fn callback_target(&self, record: &JobRecord) -> Option<Url> {
        record
            .spec
            .callback_base
            .clone()
            .or_else(|| self.config.backend_url.clone())
    }

    /// Renews the lease while the job runs, so no other worker picks the message up.
    fn heartbeat(&self, lease: &Lease) -> CancellationToken {
        let stop = CancellationToken::new();
        let (queue, lease, every, visible_for) = (
            Arc::clone(&self.queue),
            lease.clone(),
            self.config.heartbeat_every,
            self.config.lease_duration,
        );
        let token = stop.clone();
        tokio::spawn(
            async move {
                loop {
                    tokio::select! {
                        () = token.cancelled() => break,
                        () = tokio::time::sleep(every) => {
                            if let Err(e) = queue.extend(&lease, visible_for).await {
                                warn!(error = %e, "cannot extend the lease");
                            }
                        }
                    }
                }
            }
            .in_current_span(),
        );
        stop
    }
}

/// Counts a job in [`JOBS_RUNNING`] until its outcome is stored and told: a job cut off by a
/// shutdown is dropped mid-run, and leaves the count all the same.
struct RunningJob;

impl RunningJob {
    fn count() -> Self {
        metrics::gauge!(JOBS_RUNNING).increment(1.0);
        Self
    }
}

impl Drop for RunningJob {
    fn drop(&mut self) {
        metrics::gauge!(JOBS_RUNNING).decrement(1.0);
    }
}

fn track(in_flight: &std::sync::Mutex<Vec<Lease>>, lease: &Lease, add: bool) {
    if let Ok(mut leases) = in_flight.lock() {
        if add {
            leases.push(lease.clone());
        } else {
            leases.retain(|l| l.receipt != lease.receipt);
        }
    }
}

/// Records each step and hands it to the courier, once per step and only moving forward.
struct JobProgress<'a> {
    runner: &'a Runner,
    id: JobId,
    attempt: u32,
    courier: Option<ProgressCourier>,
}

#[async_trait]
impl ProgressSink for JobProgress<'_> {
    async fn reached(&self, step: Step) {
        let raised = match self
            .runner
            .store
            .record_progress(self.id, self.attempt, step.percent())
            .await
        {
            Ok(raised) => raised,
            Err(e) => {
                warn!(error = %e, "cannot record progress");
                false
            }
        };
        let Some(courier) = self.courier.as_ref().filter(|_| raised) else {
            return;
        };
        courier.post(Callback {
            job_id: self.id.to_string(),
            status: CallbackStatus::Processing,
            progress: Some(step.percent()),
            message: Some(step.message().to_owned()),
            result: None,
            error_message: None,
            error_code: None,
        });
    }
}
