//! The end of a drained instance's termination wait: the group's lifecycle hook holds a
//! terminating instance until its timeout unless the instance completes the action, so a runner
//! that has settled its jobs completes it and the instance goes at once.

use aws_sdk_autoscaling::Client;
use ecg_core::ports::BackendError;

use crate::config::LifecycleConfig;
use crate::notices::{GroupMember, InstanceNotices};

/// The group's termination hook, completed on this instance's behalf.
pub struct LifecycleHook {
    client: Client,
    config: LifecycleConfig,
}

impl LifecycleHook {
    pub fn new(client: Client, config: LifecycleConfig) -> Self {
        Self { client, config }
    }

    /// Lets the group go on terminating this instance (`CONTINUE`); `Ok(None)` when the instance
    /// belongs to no Auto Scaling group, and nothing is asked of the service.
    pub async fn complete(
        &self,
        metadata: &InstanceNotices,
    ) -> Result<Option<GroupMember>, BackendError> {
        let member = metadata
            .group_member()
            .await
            .map_err(|e| crate::backend_error("cannot read the instance's group", &e))?;
        let Some(member) = member else {
            return Ok(None);
        };
        self.client
            .complete_lifecycle_action()
            .auto_scaling_group_name(&member.group)
            .lifecycle_hook_name(&self.config.hook)
            .instance_id(&member.instance_id)
            .lifecycle_action_result("CONTINUE")
            .send()
            .await
            .map_err(|e| crate::backend_error("CompleteLifecycleAction", &e))?;
        Ok(Some(member))
    }
}
