#!/usr/bin/env bash
# Runs every fuzz target in fuzz/ (cargo-fuzz, libFuzzer with AddressSanitizer) for a bounded time.
#
#   infra/fuzz.sh                 # each target for FUZZ_SECONDS (default 60)
#   infra/fuzz.sh decode_media    # one target
#
# Needs a nightly toolchain (sanitizers) and cargo-fuzz; installs cargo-fuzz from crates.io when
# it is missing. Media seeds are generated with ffmpeg. A crash leaves its input under
# fuzz/artifacts/<target>/ and makes the script fail once every target has run; reproduce it with
# `cargo +nightly fuzz run <target> <file>`, fix it, add a regression test, and keep the input in
# fuzz/seeds/<target>/ so that every later run replays it first.
set -euo pipefail
shopt -s nullglob
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-60}"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(request_json decode_media)

if ! rustup toolchain list | grep -q '^nightly'; then
    rustup toolchain install nightly --profile minimal
fi
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
# The same dependency versions as the main workspace; cargo adds libFuzzer's own.
[ -f fuzz/Cargo.lock ] || cp Cargo.lock fuzz/Cargo.lock

# Small valid files of every container and codec the decoder reads: mutations of real media
# reach far deeper into the readers than random bytes do. The first byte picks the extension
# (see fuzz_targets/decode_media.rs), so each seed is prefixed with the index of its own.
seed_media() {
    local dir=fuzz/corpus/decode_media tmp
    mkdir -p "$dir"
    [ -z "$(ls -A "$dir")" ] || return 0
    tmp=$(mktemp -d)
    local i=0
    for spec in "mp4:-c:a aac" "m4a:-c:a aac" "mov:-c:a alac" "mp3:-c:a libmp3lame" \
        "wav:-c:a pcm_f32le" "flac:-c:a flac" "ogg:-c:a libvorbis" "opus:-c:a libopus" \
        "mkv:-c:a libvorbis" "webm:-c:a libopus" "aac:-c:a aac" "caf:-c:a pcm_s16le" \
        "aiff:-c:a pcm_s16be"; do
        local ext=${spec%%:*} codec=${spec#*:}
        # shellcheck disable=SC2086 # codec holds several arguments
        ffmpeg -hide_banner -loglevel error -nostdin -y -f lavfi \
            -i "sine=frequency=300:duration=0.3:sample_rate=8000" -ac 1 $codec "$tmp/seed.$ext"
        { printf "\\x$(printf %02x "$i")"; cat "$tmp/seed.$ext"; } >"$dir/seed-$ext"
        i=$((i + 1))
    done
    rm -rf "$tmp"
}
seed_media
mkdir -p fuzz/corpus/request_json

failed=()
for target in "${targets[@]}"; do
    echo "== $target: ${seconds}s"
    corpora=("fuzz/corpus/$target")
    [ -d "fuzz/seeds/$target" ] && corpora+=("fuzz/seeds/$target")
    # -timeout: one input may take this long (the decoder's own limit is 10 s);
    # -rss_limit_mb: memory for one input, so a header that asks for gigabytes is a finding.
    # The verdict comes from the artifacts below, not the exit status: every target gets its run.
    cargo +nightly fuzz run "$target" "${corpora[@]}" -- \
        -max_total_time="$seconds" -timeout=30 -rss_limit_mb=2048 -print_final_stats=1 \
        2>&1 | tee "fuzz/$target.log" | grep -E '^(stat::|==[0-9]+==|SUMMARY|Done |thread .* panicked|tolerated)' || true
    findings=("fuzz/artifacts/$target"/{crash,leak,oom,timeout,slow-unit}-*)
    [ ${#findings[@]} -eq 0 ] || failed+=("$target")
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "findings in: ${failed[*]} (see fuzz/artifacts/)" >&2
    exit 1
fi
echo "no crash, leak, timeout or out-of-memory in ${targets[*]}"
