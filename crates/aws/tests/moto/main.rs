//! The AWS adapters against a real moto server (S3, SQS and DynamoDB on 127.0.0.1), one server and
//! fresh resources per test. Needs `moto_server` (`make test` installs it).
#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] fns: a failure should panic"
)]

mod fetch;
mod queue;
mod store;

use ecg_aws::testing::Moto;
use ecg_aws::{AwsClients, AwsConfig};
use ecg_core::job::{JobId, JobRecord};
use ecg_core::request::{JobSpec, UrlPolicy};
use jiff::Timestamp;
use serde_json::json;

/// A moto server with a jobs table, a job queue and its dead-letter queue.
struct Aws {
    /// Kept for its lifetime: dropping it stops the server.
    _moto: Moto,
    clients: AwsClients,
    config: AwsConfig,
}

/// SQS moves a message to the dead-letter queue after this many receives.
const MAX_RECEIVES: u32 = 2;

async fn aws() -> Aws {
    let moto = Moto::start().await;
    let clients = moto.clients().await;
    let config = moto.create_resources(&clients, MAX_RECEIVES).await;
    Aws {
        _moto: moto,
        clients,
        config,
    }
}

fn new_record() -> JobRecord {
    let spec = JobSpec::parse_process_video(
        &json!({"job_id": JobId::new().to_string(), "video_url": "s3://media/in/video.mp4"}),
        &UrlPolicy::default(),
    )
    .unwrap();
    JobRecord::new(spec, Timestamp::now())
}
