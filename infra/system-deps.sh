#!/usr/bin/env bash
# Installs the Debian packages the build, the demo and the tests need, when any is missing:
# cmake (whisper.cpp), libopus-dev (Opus decoding), patchelf (the runner artifact), and the
# test/demo media tools (espeak-ng and festival voices to synthesise speech, ffmpeg and sox to
# make media files, chromium to open the HTML preview as a browser does).
set -euo pipefail

packages=(cmake pkg-config patchelf libopus-dev espeak-ng ffmpeg sox festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts python3-venv chromium)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "system-deps: all present" >&2
  exit 0
fi
echo "system-deps: installing ${missing[*]}" >&2
sudo=""
[[ $(id -u) -eq 0 ]] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
