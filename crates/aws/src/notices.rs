//! Notices from the EC2 instance metadata service (IMDSv2) that this instance is about to go: a
//! spot interruption (two minutes' warning), a rebalance recommendation (the Auto Scaling group,
//! with capacity rebalancing on, is launching a replacement), or the group terminating it (the
//! termination lifecycle hook holds it in `Terminating:Wait`). The runner treats each as SIGTERM.

use aws_config::imds::client::Client;
use aws_config::imds::client::error::ImdsError;

/// Spot: `{"action": "terminate" | "stop" | "hibernate", "time": …}`; 404 until then.
const SPOT_ACTION: &str = "/latest/meta-data/spot/instance-action";
/// `{"noticeTime": …}`; 404 until then.
const REBALANCE: &str = "/latest/meta-data/events/recommendations/rebalance";
/// `InService`, … and `Terminated` once the group has begun to terminate the instance.
const LIFECYCLE: &str = "/latest/meta-data/autoscaling/target-lifecycle-state";
/// The instance's own id, `i-…`.
const INSTANCE_ID: &str = "/latest/meta-data/instance-id";
/// The tag Auto Scaling puts on its instances; 404 outside a group, or when the launch template
/// does not expose instance tags in the metadata (`InstanceMetadataTags: enabled`).
const GROUP_TAG: &str = "/latest/meta-data/tags/instance/aws:autoscaling:groupName";

/// Why this instance is going.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Notice {
    /// EC2 reclaims the spot instance in about two minutes.
    SpotInterruption,
    /// EC2 expects to reclaim the spot instance; its replacement is starting.
    Rebalance,
    /// The Auto Scaling group is terminating the instance.
    Terminating,
}

/// An instance of an Auto Scaling group, as its lifecycle actions name it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupMember {
    pub group: String,
    pub instance_id: String,
}

/// The instance metadata service, asked with a session token (IMDSv2 only).
pub struct InstanceNotices {
    imds: Client,
}

impl InstanceNotices {
    /// The service at `endpoint` (`http://169.254.169.254` on EC2).
    pub fn new(endpoint: &str) -> Result<Self, String> {
        let imds = Client::builder()
            .endpoint(endpoint)
            .map_err(|e| format!("instance metadata endpoint {endpoint:?}: {e}"))?
            .build();
        Ok(Self { imds })
    }

    /// The notice the service has for this instance, if any; a spot interruption first.
    pub async fn check(&self) -> Result<Option<Notice>, ImdsError> {
        if self.read(SPOT_ACTION).await?.is_some() {
            return Ok(Some(Notice::SpotInterruption));
        }
        if self.read(REBALANCE).await?.is_some() {
            return Ok(Some(Notice::Rebalance));
        }
        let state = self.read(LIFECYCLE).await?;
        Ok((state.as_deref() == Some("Terminated")).then_some(Notice::Terminating))
    }

    /// The Auto Scaling group this instance belongs to, if any.
    pub async fn group_member(&self) -> Result<Option<GroupMember>, ImdsError> {
        let Some(group) = self.read(GROUP_TAG).await? else {
            return Ok(None);
        };
        let Some(instance_id) = self.read(INSTANCE_ID).await? else {
            return Ok(None);
        };
        Ok(Some(GroupMember { group, instance_id }))
    }

    /// A metadata item, `None` when the service has none (404).
    async fn read(&self, path: &str) -> Result<Option<String>, ImdsError> {
        match self.imds.get(path).await {
            Ok(value) => Ok(Some(value.as_ref().trim().to_owned())),
            Err(ImdsError::ErrorResponse(e)) if e.response().status().as_u16() == 404 => Ok(None),
            Err(e) => Err(e),
        }
    }
}
