#!/usr/bin/env bash
# Lints template.yaml offline: `cfn-lint`, then `sam validate --lint` (no AWS credentials needed).
# Installs both into the project venv first when infra/requirements-aws.txt changed since the last
# install (or was never installed).
#
# Usage: infra/aws/check-template.sh
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
py=$("$repo/infra/python-env.sh")
bin=$(dirname "$py")
req=$repo/infra/requirements-aws.txt
stamp=$(dirname "$bin")/.stamp-requirements-aws.txt.sha256

if [[ "$(cat "$stamp" 2>/dev/null)" != "$(sha256sum <"$req" | cut -d' ' -f1)" ]]; then
  echo "check-template: installing infra/requirements-aws.txt" >&2
  # One resolution with requirements.txt: moto and the SAM CLI share boto3 and friends.
  "$py" -m pip install --disable-pip-version-check --quiet --only-binary=:all: \
    --requirement="$repo/infra/requirements.txt" --requirement="$req" >&2
  sha256sum <"$req" | cut -d' ' -f1 >"$stamp"
fi

cd "$repo"
echo "check-template: cfn-lint template.yaml" >&2
"$bin/cfn-lint" template.yaml
echo "check-template: sam validate --lint" >&2
SAM_CLI_TELEMETRY=0 "$bin/sam" validate --lint -t template.yaml --region us-east-1
