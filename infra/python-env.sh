#!/usr/bin/env bash
# Create/refresh the project's Python venv and print its python's path.
#
# Usage:  PY=$(infra/python-env.sh)          # numpy, pytest (infra/requirements.txt)
#         PY=$(infra/python-env.sh --test)   # + infra/requirements-test.txt (librosa)
#
# The venv lives at ${ECG_VENV:-<repo>/.venv}; ${ECG_PYTHON:-python3} creates it.
# Idempotent: each requirements file is installed only when its sha256 differs
# from the stamp kept in the venv. All progress goes to stderr; the last (only)
# line on stdout is the venv's python path.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${ECG_VENV:-$repo/.venv}
reqs=("$repo/infra/requirements.txt")
case "${1:-}" in
  --test) reqs+=("$repo/infra/requirements-test.txt") ;;
  "") ;;
  *) echo "usage: $0 [--test]" >&2; exit 2 ;;
esac

if [[ ! -x $venv/bin/python ]]; then
  echo "python-env: creating $venv" >&2
  "${ECG_PYTHON:-python3}" -m venv "$venv" >&2
fi

# Pass all files to one pip call (so pins are resolved together), but only if
# one of them changed since it was last installed into this venv.
stale=0
for req in "${reqs[@]}"; do
  stamp=$venv/.stamp-$(basename "$req").sha256
  [[ "$(cat "$stamp" 2>/dev/null)" == "$(sha256sum <"$req" | cut -d' ' -f1)" ]] || stale=1
done
if ((stale)); then
  echo "python-env: installing ${reqs[*]#"$repo/"}" >&2
  "$venv/bin/python" -m pip install --disable-pip-version-check --quiet \
    --only-binary=:all: "${reqs[@]/#/--requirement=}" >&2
  for req in "${reqs[@]}"; do
    sha256sum <"$req" | cut -d' ' -f1 >"$venv/.stamp-$(basename "$req").sha256"
  done
fi
echo "$venv/bin/python"
