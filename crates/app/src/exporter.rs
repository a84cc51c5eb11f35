//! The process' Prometheus exporter: what the crates record (`ecg_core::metrics`), plus the
//! queue depth and the resident memory, read when `/metrics` is scraped.

use std::sync::Arc;

use async_trait::async_trait;
use ecg_api::MetricsSource;
use ecg_core::metrics::{HISTOGRAMS, QUEUE_DEPTH, RESIDENT_MEMORY, register};
use ecg_core::ports::JobQueue;
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;

/// Renders the process' metrics. Rendering also drains the histograms' samples into their
/// buckets, and jobs record a few samples each, so no upkeep task runs between scrapes.
pub struct MetricsExporter {
    handle: PrometheusHandle,
    /// Asked for its depth at each scrape: the queue knows it, the process does not.
    queue: Arc<dyn JobQueue>,
}

impl MetricsExporter {
    /// Installs the process' one recorder. Call before the models load: their load times are
    /// recorded then.
    pub fn install(queue: Arc<dyn JobQueue>) -> Result<Self, BuildError> {
        let mut builder = PrometheusBuilder::new();
        for (name, buckets) in HISTOGRAMS {
            builder = builder.set_buckets_for_metric(Matcher::Full((*name).to_owned()), buckets)?;
        }
        let handle = builder.install_recorder()?;
        register();
        Ok(Self { handle, queue })
    }
}

#[async_trait]
impl MetricsSource for MetricsExporter {
    async fn render(&self) -> String {
        let depth = match self.queue.depth().await {
            #[expect(
                clippy::cast_precision_loss,
                reason = "queues hold far fewer than 2^52"
            )]
            Ok(depth) => depth as f64,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the queue depth");
                // Unknown rather than the last value read, which would look current.
                f64::NAN
            }
        };
        metrics::gauge!(QUEUE_DEPTH).set(depth);
        if let Some(bytes) = resident_memory_bytes() {
            metrics::gauge!(RESIDENT_MEMORY).set(bytes as f64);
        }
        self.handle.render()
    }
}

/// The process' resident set size, from `VmRSS` in `/proc/self/status` (Linux only).
fn resident_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    vm_rss_bytes(&status)
}

fn vm_rss_bytes(status: &str) -> Option<u64> {
    let line = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    let kib: u64 = line.trim().strip_suffix("kB")?.trim().parse().ok()?;
    Some(kib * 1024)
}

/// Serves `GET /metrics` alone on `listener` for as long as the process runs (a draining worker
/// is still worth watching), for a worker without the API. It asks for no token: keep it on
/// loopback, or on an address only Prometheus reaches.
pub async fn serve_metrics(
    listener: TcpListener,
    source: Arc<dyn MetricsSource>,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    if !addr.ip().is_loopback() {
        tracing::warn!(%addr, "metrics served beyond loopback: anyone who reaches the port can read them");
    }
    tracing::info!(%addr, "serving metrics");
    axum::serve(listener, ecg_api::metrics_routes::<()>(source)).await
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    struct OneSample;

    #[async_trait]
    impl MetricsSource for OneSample {
        async fn render(&self) -> String {
            "ecg_jobs_running 1\n".to_owned()
        }
    }

    /// What the listener answers to a bare HTTP/1.1 request for `path`.
    async fn get(addr: std::net::SocketAddr, path: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        answer
    }

    #[tokio::test]
    async fn the_workers_listener_serves_metrics_and_nothing_else() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve_metrics(listener, Arc::new(OneSample)));
        let answer = get(addr, "/metrics").await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(
            answer.contains("content-type: text/plain; version=0.0.4"),
            "{answer}"
        );
        assert!(answer.ends_with("\r\n\r\necg_jobs_running 1\n"), "{answer}");
        let answer = get(addr, "/health").await;
        assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    }

    #[test]
    fn reads_the_resident_set_from_proc_status() {
        let status = "Name:\tecg\nVmPeak:\t  900 kB\nVmRSS:\t  123456 kB\nRssAnon:\t 1 kB\n";
        assert_eq!(vm_rss_bytes(status), Some(123_456 * 1024));
        assert_eq!(vm_rss_bytes("Name:\tecg\n"), None);
        assert!(resident_memory_bytes().is_some_and(|bytes| bytes > 0));
    }
}
