//! Test support (feature `testing`): a moto server on 127.0.0.1, killed on drop, and the table,
//! queues and bucket the adapters expect, created with fresh names. Used by this crate's tests
//! and the API function's. Failures panic with what to do: these run only inside tests.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;

use crate::{AwsClients, AwsConfig};

/// How long moto may take to answer after it was started.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A moto server serving S3, SQS and DynamoDB on one local port.
pub struct Moto {
    child: Child,
    endpoint: String,
    /// moto's own output, read back when it fails to start.
    log: PathBuf,
}

impl Moto {
    /// Starts `moto_server` from the project's venv (`$ECG_VENV`, else `<repo>/.venv`) or PATH.
    pub async fn start() -> Self {
        let program = moto_server();
        let port = free_port();
        let log = std::env::temp_dir().join(format!("ecg-moto-{}-{port}.log", std::process::id()));
        let output = std::fs::File::create(&log)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", log.display()));
        let stderr = output
            .try_clone()
            .unwrap_or_else(|e| panic!("cannot share {}: {e}", log.display()));
        // moto logs every request: to a file, since an unread pipe would fill up and stall it.
        let child = Command::new(&program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(output)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        let mut moto = Self {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            log,
        };
        moto.wait_until_listening(port).await;
        moto
    }

    async fn wait_until_listening(&mut self, port: u16) {
        let started = Instant::now();
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return;
            }
            let exited = self.child.try_wait().ok().flatten();
            if exited.is_some() || started.elapsed() > START_TIMEOUT {
                let output = std::fs::read_to_string(&self.log).unwrap_or_default();
                panic!("moto_server did not come up on port {port} ({exited:?}):\n{output}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The standard AWS variables that point an SDK (e.g. a child process) at this server.
    pub fn env(&self) -> [(&'static str, String); 5] {
        [
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_REGION", "us-east-1".to_owned()),
            ("AWS_ACCESS_KEY_ID", "test".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "test".to_owned()),
            // No profile files or instance metadata lookups in tests.
            ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
        ]
    }

    /// Clients for this server, with fixed dummy credentials.
    pub async fn clients(&self) -> AwsClients {
        self.clients_via(&self.endpoint).await
    }

    /// Clients with this server's credentials that send to `endpoint` (a proxy in front of it).
    pub async fn clients_via(&self, endpoint: &str) -> AwsClients {
        let credentials =
            aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "moto");
        let shared = aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(endpoint)
            .region(Region::new("us-east-1"))
            .credentials_provider(credentials)
            .load()
            .await;
        AwsClients::new(&shared)
    }

    /// Creates a jobs table and a job queue whose dead-letter queue takes a message after
    /// `max_receives` receives, all with fresh names, laid out as `template.yaml` lays them out.
    pub async fn create_resources(&self, clients: &AwsClients, max_receives: u32) -> AwsConfig {
        let name = unique_name("ecg");
        let table = format!("{name}-jobs");
        clients
            .dynamodb
            .create_table()
            .table_name(&table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("job_id")
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .unwrap_or_else(|e| panic!("{e}")),
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name("job_id")
                    .key_type(KeyType::Hash)
                    .build()
                    .unwrap_or_else(|e| panic!("{e}")),
            )
            .send()
            .await
            .unwrap_or_else(|e| panic!("cannot create table {table}: {e:?}"));
        clients
            .dynamodb
            .update_time_to_live()
            .table_name(&table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name("expires_at")
                    .enabled(true)
                    .build()
                    .unwrap_or_else(|e| panic!("{e}")),
            )
            .send()
            .await
            .unwrap_or_else(|e| panic!("cannot enable TTL on {table}: {e:?}"));
        let dlq_url = self
            .create_queue(clients, &format!("{name}-dlq"), None)
            .await;
        let dlq_arn = clients
            .sqs
            .get_queue_attributes()
            .queue_url(&dlq_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .ok()
            .and_then(|out| out.attributes?.remove(&QueueAttributeName::QueueArn))
            .unwrap_or_else(|| panic!("no ARN for {dlq_url}"));
        let redrive =
            format!(r#"{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":"{max_receives}"}}"#);
        let queue_url = self
            .create_queue(clients, &format!("{name}-jobs"), Some(redrive))
            .await;
        AwsConfig {
            jobs_table: table,
            queue_url,
            dlq_url: Some(dlq_url),
            media_bucket: None,
            job_retention_days: 30,
        }
    }

    async fn create_queue(
        &self,
        clients: &AwsClients,
        name: &str,
        redrive: Option<String>,
    ) -> String {
        let mut request = clients.sqs.create_queue().queue_name(name);
        if let Some(policy) = redrive {
            request = request.attributes(QueueAttributeName::RedrivePolicy, policy);
        }
        request
            .send()
            .await
            .ok()
            .and_then(|out| out.queue_url)
            .unwrap_or_else(|| panic!("cannot create queue {name} on {}", self.endpoint))
    }

    /// Puts `bytes` at `s3://bucket/key`.
    pub async fn upload(&self, clients: &AwsClients, bucket: &str, key: &str, bytes: Vec<u8>) {
        clients
            .s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(aws_sdk_s3::primitives::ByteStream::from(bytes))
            .send()
            .await
            .unwrap_or_else(|e| panic!("cannot upload s3://{bucket}/{key}: {e:?}"));
    }

    /// Messages in a queue: (visible, in flight).
    pub async fn queue_depth(&self, clients: &AwsClients, queue_url: &str) -> (u64, u64) {
        let attributes = clients
            .sqs
            .get_queue_attributes()
            .queue_url(queue_url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .unwrap_or_else(|e| panic!("cannot read the attributes of {queue_url}: {e:?}"))
            .attributes
            .unwrap_or_default();
        let count = |name: &QueueAttributeName| {
            attributes
                .get(name)
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{queue_url} has no {name:?}"))
        };
        (
            count(&QueueAttributeName::ApproximateNumberOfMessages),
            count(&QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        )
    }

    /// Creates a bucket with a fresh name and returns the name.
    pub async fn create_bucket(&self, clients: &AwsClients) -> String {
        let bucket = unique_name("ecg-media");
        clients
            .s3
            .create_bucket()
            .bucket(&bucket)
            .send()
            .await
            .unwrap_or_else(|e| panic!("cannot create bucket {bucket}: {e:?}"));
        bucket
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        // Errors only mean it is gone already.
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// The first `moto_server` of `$ECG_VENV/bin`, `<repo>/.venv/bin` and PATH.
fn moto_server() -> PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let venvs = std::env::var_os("ECG_VENV")
        .map(PathBuf::from)
        .into_iter()
        .chain([repo.join(".venv")]);
    let path = std::env::var_os("PATH").unwrap_or_default();
    venvs
        .map(|venv| venv.join("bin"))
        .chain(std::env::split_paths(&path))
        .map(|dir| dir.join("moto_server"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "moto_server not found in $ECG_VENV/bin, {}/.venv/bin or PATH: \
                 run `make test` (installs moto), or `infra/python-env.sh`",
                repo.display()
            )
        })
}

/// A port free right now; moto takes it a moment later.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free local port: {e}"))
}

/// Names unique within this process and across processes (queue names must be).
fn unique_name(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}
