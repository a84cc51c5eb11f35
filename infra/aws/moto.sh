#!/usr/bin/env bash
# Runs a local stand-in for the AWS stack: moto (S3, SQS, DynamoDB) on 127.0.0.1 with the jobs
# table, job queue and dead-letter queue of template.yaml. Prints `export …` lines for ecg-api and
# the runner on stdout, then serves until Ctrl-C (which stops moto too).
#
# Usage:  infra/aws/moto.sh > /tmp/ecg-aws.env &      # then, in another shell:
#         source /tmp/ecg-aws.env && PORT=8001 cargo run -p ecg-function-api
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
"$repo/infra/python-env.sh" >/dev/null # installs moto_server into the venv
cd "$repo"
exec cargo run --quiet -p ecg-aws --features testing --example moto
