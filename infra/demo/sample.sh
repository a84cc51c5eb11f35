#!/usr/bin/env bash
# Makes the demo video: two synthetic voices in a short dialogue, as an mp4 (AAC audio over a
# still frame), the kind of file the service receives. Deterministic, nothing downloaded.
set -euo pipefail
out=${1:?usage: sample.sh OUT.mp4}
[[ -s $out ]] && exit 0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Festival's kal (male) and slt (female) voices: recorded voices that a speaker encoder tells
# apart, unlike espeak-ng's variants of one formant synthesiser.
lines=(
  "kal_diphone|Good morning. Thank you for joining our weekly product meeting."
  "cmu_us_slt_arctic_hts|Thanks. I would like to start with the results of the new subtitle feature."
  "kal_diphone|Sure. How many videos did we process last week?"
  "cmu_us_slt_arctic_hts|About twelve thousand, and the feedback from creators was very positive."
)
list=$work/list.txt
for i in "${!lines[@]}"; do
  voice=${lines[$i]%%|*}
  text=${lines[$i]#*|}
  printf '%s' "$text" | text2wave -eval "(voice_$voice)" -o "$work/line$i.wav"
  sox "$work/line$i.wav" -r 16000 -c 1 "$work/part$i.wav" pad 0 0.6
  echo "file '$work/part$i.wav'" >> "$list"
done
ffmpeg -loglevel error -y -f concat -safe 0 -i "$list" "$work/speech.wav"
mkdir -p "$(dirname "$out")"
ffmpeg -loglevel error -y -f lavfi -i color=c=navy:s=320x240:r=5 -i "$work/speech.wav" \
  -shortest -c:v mpeg4 -c:a aac -b:a 96k "$out"
echo "demo: wrote $out" >&2
