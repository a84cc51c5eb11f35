//! Settings of the AWS adapters and the SDK clients built from them, once per process.

use std::sync::Arc;
use std::time::Duration;

use aws_config::{BehaviorVersion, SdkConfig};
use ecg_core::ports::{BlobFetcher, FetchLimits};

use crate::{DynamoJobStore, S3Fetcher, SqsQueue};

/// Where the adapters keep their state. Region, credentials and `AWS_ENDPOINT_URL` are not here:
/// they come from the standard AWS environment (see [`AwsClients::from_env`]).
#[derive(Clone, Debug, clap::Args)]
pub struct AwsConfig {
    /// DynamoDB table of job records (partition key `job_id`, TTL attribute `expires_at`).
    #[arg(long, env = "ECG_JOBS_TABLE")]
    pub jobs_table: String,
    /// SQS queue of job messages.
    #[arg(long, env = "ECG_QUEUE_URL")]
    pub queue_url: String,
    /// The queue's dead-letter queue; read by the runner to fail jobs SQS gave up on.
    #[arg(long, env = "ECG_DLQ_URL")]
    pub dlq_url: Option<String>,
    /// When set, `s3://` media is read from this bucket only.
    #[arg(long, env = "ECG_MEDIA_BUCKET")]
    pub media_bucket: Option<String>,
    /// Days a finished job stays in the table before DynamoDB's TTL removes it.
    #[arg(long, env = "ECG_JOB_RETENTION_DAYS", default_value_t = 30)]
    pub job_retention_days: u64,
}

impl AwsConfig {
    /// The job store on `ECG_JOBS_TABLE`.
    pub fn job_store(&self, clients: &AwsClients) -> DynamoJobStore {
        let retention = Duration::from_secs(self.job_retention_days.saturating_mul(86_400));
        DynamoJobStore::new(clients.dynamodb.clone(), &self.jobs_table, retention)
    }

    /// The job queue; a leased message stays hidden for `lease` (`None`: the queue's default
    /// visibility timeout) unless extended.
    pub fn job_queue(&self, clients: &AwsClients, lease: Option<Duration>) -> SqsQueue {
        SqsQueue::new(clients.sqs.clone(), &self.queue_url, lease)
    }

    /// Upload slots in the media bucket, if one is configured (the runner reads nothing else).
    pub fn upload_slots(&self, clients: &AwsClients) -> Option<crate::S3UploadSlots> {
        self.media_bucket
            .as_deref()
            .map(|bucket| crate::S3UploadSlots::new(clients.s3.clone(), bucket))
    }

    /// The dead-letter queue, if configured, for [`fail_dead_letters`](crate::fail_dead_letters).
    pub fn dead_letter_queue(&self, clients: &AwsClients) -> Option<SqsQueue> {
        // Long enough for one store write per message before it would show up again.
        let lease = Some(Duration::from_secs(60));
        self.dlq_url
            .as_ref()
            .map(|url| SqsQueue::new(clients.sqs.clone(), url, lease))
    }

    /// The media fetcher: S3 here, everything else through `inner`.
    pub fn fetcher(
        &self,
        clients: &AwsClients,
        inner: Arc<dyn BlobFetcher>,
        limits: FetchLimits,
    ) -> S3Fetcher {
        S3Fetcher::new(clients.s3.clone(), inner, limits, self.media_bucket.clone())
    }
}

/// How an instance of an Auto Scaling group tells the group that it has drained.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LifecycleConfig {
    /// The group's termination lifecycle hook, which holds the instance while it drains.
    pub hook: String,
}

impl Default for LifecycleConfig {
    fn default() -> Self {
        // The hook `template.yaml` gives the runner group.
        Self {
            hook: "drain".to_owned(),
        }
    }
}

/// The SDK clients, built once and shared (they pool connections and cache credentials).
#[derive(Clone, Debug)]
pub struct AwsClients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub s3: aws_sdk_s3::Client,
    #[cfg(feature = "autoscaling")]
    pub autoscaling: aws_sdk_autoscaling::Client,
}

impl AwsClients {
    /// Loads the standard AWS configuration: `AWS_REGION`, `AWS_ENDPOINT_URL`, credentials from
    /// the environment, profile or the Lambda/EC2 role.
    pub async fn from_env() -> Self {
        Self::new(&aws_config::load_defaults(BehaviorVersion::latest()).await)
    }

    /// Clients from an already loaded configuration (e.g. one pointed at an emulator).
    pub fn new(shared: &SdkConfig) -> Self {
        // An endpoint override means an emulator (moto, LocalStack): it serves buckets by path,
        // not as host names it cannot resolve.
        let s3 = aws_sdk_s3::config::Builder::from(shared)
            .force_path_style(shared.endpoint_url().is_some())
            .build();
        Self {
            dynamodb: aws_sdk_dynamodb::Client::new(shared),
            sqs: aws_sdk_sqs::Client::new(shared),
            s3: aws_sdk_s3::Client::from_conf(s3),
            #[cfg(feature = "autoscaling")]
            autoscaling: aws_sdk_autoscaling::Client::new(shared),
        }
    }
}
