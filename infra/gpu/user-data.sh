#!/usr/bin/env bash
# Sets up a runner instance from the unpacked artefact in /opt/ecg (bin/gpu-runner, models/,
# infra/gpu/). The launch template's user data unpacks the artefact, exports the stack's names
# (AWS_REGION, ECG_JOBS_TABLE, ECG_QUEUE_URL, ECG_DLQ_URL, ECG_MEDIA_BUCKET, BACKEND_URL,
# ECG_CALLBACK_SECRET_PARAMETER, ECG_SHUTDOWN_GRACE_SECS) and runs this script. The instance
# role is the template's RunnerRole.
set -euo pipefail
: "${AWS_REGION:?}" "${ECG_JOBS_TABLE:?}" "${ECG_QUEUE_URL:?}" "${ECG_DLQ_URL:?}"
: "${ECG_MEDIA_BUCKET:?}" "${BACKEND_URL:?}" "${ECG_CALLBACK_SECRET_PARAMETER:?}"

useradd --system --home /opt/ecg ecg || true
mkdir -p /etc/ecg
apt-get install -y -qq amazon-cloudwatch-agent || true

secret=$(aws ssm get-parameter --region "$AWS_REGION" --name "$ECG_CALLBACK_SECRET_PARAMETER" \
  --with-decryption --query Parameter.Value --output text)
cat >/etc/ecg/runner.env <<ENV
AWS_REGION=$AWS_REGION
ECG_JOBS_TABLE=$ECG_JOBS_TABLE
ECG_QUEUE_URL=$ECG_QUEUE_URL
ECG_DLQ_URL=$ECG_DLQ_URL
ECG_MEDIA_BUCKET=$ECG_MEDIA_BUCKET
BACKEND_URL=$BACKEND_URL
ECG_CALLBACK_SECRET=$secret
ECG_SHUTDOWN_GRACE_SECS=${ECG_SHUTDOWN_GRACE_SECS:-90}
ECG_INSTANCE_METADATA=http://169.254.169.254
ECG_MODEL_DIR=/opt/ecg/models
ECG_WORKERS=1
RUST_LOG=info
ENV
chmod 600 /etc/ecg/runner.env
chown -R ecg /opt/ecg

cp /opt/ecg/infra/gpu/cloudwatch-agent.json /opt/aws/amazon-cloudwatch-agent/etc/amazon-cloudwatch-agent.json
systemctl restart amazon-cloudwatch-agent || true
cp /opt/ecg/infra/gpu/gpu-runner.service /etc/systemd/system/
systemctl daemon-reload
systemctl enable --now gpu-runner
