#!/usr/bin/env bash
# EC2 user data for the runner's launch template (Deep Learning Base AMI with the NVIDIA driver).
# Expects the release artefact (gpu-runner binary built with --features cuda, the models folder
# from `make models`, libonnxruntime) at s3://$ARTIFACT_BUCKET/ecg/runner.tar.gz, and the runner's
# settings as the tags/parameters below. The instance role is the template's RunnerRole.
set -euo pipefail
ARTIFACT_BUCKET=${ARTIFACT_BUCKET:?}
STACK_PREFIX=${STACK_PREFIX:-/ecg}

useradd --system --home /opt/ecg ecg || true
mkdir -p /opt/ecg /etc/ecg
aws s3 cp "s3://$ARTIFACT_BUCKET/ecg/runner.tar.gz" /tmp/runner.tar.gz
tar -xzf /tmp/runner.tar.gz -C /opt/ecg
apt-get install -y -qq libopus0 amazon-cloudwatch-agent || true

param() { aws ssm get-parameter --name "$STACK_PREFIX/$1" --query Parameter.Value --output text "${@:2}"; }
cat > /etc/ecg/runner.env <<ENV
AWS_REGION=$(curl -s http://169.254.169.254/latest/meta-data/placement/region)
ECG_JOBS_TABLE=$(param jobs-table)
ECG_QUEUE_URL=$(param queue-url)
ECG_DLQ_URL=$(param dlq-url)
ECG_MEDIA_BUCKET=$(param media-bucket)
BACKEND_URL=$(param backend-url)
ECG_CALLBACK_SECRET=$(param callback-secret --with-decryption)
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
