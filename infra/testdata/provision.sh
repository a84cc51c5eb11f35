#!/usr/bin/env bash
# Real human recordings for the real-recording tests, from pinned registry packages.
#
# Usage: infra/testdata/provision.sh [DIR]
#   DIR defaults to ${ECG_TESTDATA_DIR:-<repo>/testdata}. Produces there:
#     ami/trn00.wav … trn09.wav, ami/train.rttm
#         30-second excerpts of the AMI meeting corpus (CC BY 4.0) with their speaker turns: the
#         training split that the pyannote.audio 4.0.7 sdist ships in tests/data. Only these files
#         are extracted; the archive's other splits are not ours to use.
#     voices/allison/*.wav  Allison Smith, en-US, female (asterisk-core-sounds-en-wav, CC BY-SA 3.0)
#     voices/paola/*.wav    Paola Dal Zot, it-IT, female (asterisk-prompt-it-menardi-wav, CC BY-SA 3.0)
#     voices/carlo/*.wav    Carlo Flora, it-IT, male (asterisk-core-sounds-it-wav, CC BY 3.0)
#     voices/june/*.wav     June Wallack, fr-CA, female (asterisk-core-sounds-fr-wav, CC BY-SA 3.0)
#     voices/ivrvoice/*.wav the ivrvoice.ru narrator, ru-RU, female (asterisk-core-sounds-ru-wav,
#                           CC BY 3.0)
#     voices/armelle/*.wav  Armelle Desjardins, fr-FR, female (asterisk-prompt-fr-armelle, BSD-style;
#                           GSM 06.10 as shipped, a real telephone codec, converted to WAV by sox)
#     voices/july/*.wav     July E. Jiménez, es-CO, female (asterisk-prompt-es-co, GPL-2; GSM)
#         Telephone prompts read by one real person each: 8 kHz studio recordings.
#     voices/allison.txt    what Allison reads: "name: text" per prompt, the prompt list of the
#                           English core sounds (asterisk-core-sounds-en, the same source package)
#     MANIFEST  a hash of this script; when it matches, nothing is done.
# Downloads are checked against the sha256 below and cached in DIR/.cache.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=$(realpath -m "${1:-${ECG_TESTDATA_DIR:-$repo/testdata}}")
cache=$out/.cache
log() { echo "testdata: $*" >&2; }

pyannote=pyannote_audio-4.0.7.tar.gz
pyannote_sha=3a903dfb5ca711d134cc2522561c9158b186836f5d62e8a57c46c6648e8a8229
# name, pinned version, file apt-get download writes, sha256, directory inside the package, ours
debs=(
  "asterisk-core-sounds-en-wav|1.6.1-1|asterisk-core-sounds-en-wav_1.6.1-1_all.deb|2be3ea287d83299d143815fa804f11179a75b7affd4a758b98b55f5afc18a35d|usr/share/asterisk/sounds/en_US_f_Allison|allison"
  "asterisk-prompt-it-menardi-wav|1:1.4.22+mm20110907-3.1|asterisk-prompt-it-menardi-wav_1%3a1.4.22+mm20110907-3.1_all.deb|3094530d98f8758ac275572d59624c41f60969fef883f34f4886d144f3dfeb21|usr/share/asterisk/sounds/it_IT_f_Menardi|paola"
  "asterisk-core-sounds-it-wav|1.6.1-1|asterisk-core-sounds-it-wav_1.6.1-1_all.deb|5a26638089e134b8ac39363fe249c5c93c50cd8bfdc9b2499ae61ec4a35e2fcb|usr/share/asterisk/sounds/it_IT_m_Carlo|carlo"
  "asterisk-core-sounds-fr-wav|1.6.1-1|asterisk-core-sounds-fr-wav_1.6.1-1_all.deb|8d4e1bc32ed5ba7fbda40841ca1825ed20cc6232724a473c90f8bb0e53e6073e|usr/share/asterisk/sounds/fr_CA_f_June|june"
  "asterisk-core-sounds-ru-wav|1.6.1-1|asterisk-core-sounds-ru-wav_1.6.1-1_all.deb|ccbfaebfa450b7a9ddf644ae0f3d1e9017d5df7c0aebe816e946345589d38201|usr/share/asterisk/sounds/ru_RU_f_IvrvoiceRU|ivrvoice"
  "asterisk-prompt-fr-armelle|20070613-2.2|asterisk-prompt-fr-armelle_20070613-2.2_all.deb|162570b1a9b3512a98f06b89f60c7c17cf1b9b52297315adca9a4e5be728bea3|usr/share/asterisk/sounds/fr|armelle"
  "asterisk-prompt-es-co|0.20070403-2.1|asterisk-prompt-es-co_0.20070403-2.1_all.deb|6702696e045514699e87dc8fb70f370717e5df91f821f7bec8dd0df1be008e83|usr/share/asterisk/sounds/es|july"
)
# The prompt texts of Allison's recordings.
transcripts="asterisk-core-sounds-en|1.6.1-1|asterisk-core-sounds-en_1.6.1-1_all.deb|973e797d28e37fa6ca3c0a9d6fa717e77cf1268ae916bf09fd3503113cdffa50|./usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz"

mkdir -p "$out" "$cache"
exec 9>"$out/.lock"
flock 9

stamp=$(sha256sum "${BASH_SOURCE[0]}" | cut -d' ' -f1)
if [[ "$(cat "$out/MANIFEST" 2>/dev/null)" == "$stamp" ]]; then
  log "up to date in $out"
  exit 0
fi
rm -f "$out/MANIFEST"

# shellcheck source=../debs.sh
source "$repo/infra/debs.sh"

# ---- AMI excerpts from the pyannote.audio sdist (PyPI)
if ! verify "$cache/$pyannote" "$pyannote_sha"; then
  log "downloading $pyannote"
  py=$("$repo/infra/python-env.sh" | tail -n1)
  "$py" -m pip download --disable-pip-version-check --quiet --no-deps \
    --no-binary=:all: --dest "$cache" pyannote.audio==4.0.7
fi
verify "$cache/$pyannote" "$pyannote_sha" || { log "$pyannote: sha256 mismatch"; exit 1; }
rm -rf "$out/ami.tmp" && mkdir -p "$out/ami.tmp"
python3 - "$cache/$pyannote" "$out/ami.tmp" <<'PY'
import sys, tarfile, unicodedata
archive, dest = sys.argv[1], sys.argv[2]
wanted = {f"trn{i:02d}.wav" for i in range(10)} | {"debug.train.rttm"}
with tarfile.open(archive) as tar:
    for member in tar.getmembers():
        parts = member.name.split("/")
        if parts[1:3] != ["tests", "data"] or len(parts) != 4 or not member.isfile():
            continue
        # One training file is spelled trñ00.wav in the archive; its annotation says trn00.
        name = unicodedata.normalize("NFD", parts[3]).encode("ascii", "ignore").decode()
        if name not in wanted:
            continue
        data = tar.extractfile(member).read()
        with open(f"{dest}/{'train.rttm' if name.endswith('.rttm') else name}", "wb") as f:
            f.write(data)
        wanted.discard(name)
if wanted:
    sys.exit(f"missing from the archive: {sorted(wanted)}")
PY
rm -rf "$out/ami" && mv "$out/ami.tmp" "$out/ami"

# ---- real voices from Debian packages
for entry in "${debs[@]}"; do
  IFS='|' read -r name version file sha inside voice <<<"$entry"
  fetch_deb "$cache" "$name" "$version" "$file" "$sha"
  tmp=$(mktemp -d)
  dpkg-deb -x "$cache/$file" "$tmp"
  rm -rf "$out/voices/$voice" && mkdir -p "$out/voices"
  mkdir "$out/voices/$voice"
  # Prompts live in sub-folders with clashing names (digits/1.wav, silence/1.wav): the sub-folder
  # becomes part of the name; the silence folder holds no speech. GSM prompts become WAV.
  (cd "$tmp/$inside" && find . \( -name '*.wav' -o -name '*.gsm' \) -not -path './silence/*' -printf '%P\n') |
    while read -r rel; do
      flat=${rel//\//-}
      case "$rel" in
        *.gsm) sox -q "$tmp/$inside/$rel" -b 16 "$out/voices/$voice/${flat%.gsm}.wav" ;;
        *) cp "$tmp/$inside/$rel" "$out/voices/$voice/$flat" ;;
      esac
    done
  # A few shipped prompts are empty or a click: under 2 KiB is under 60 ms of audio.
  find "$out/voices/$voice" -name '*.wav' -size -2k -delete
  rm -rf "$tmp"
done

IFS='|' read -r name version file sha inside <<<"$transcripts"
fetch_deb "$cache" "$name" "$version" "$file" "$sha"
dpkg-deb --fsys-tarfile "$cache/$file" | tar -xO "$inside" | gunzip >"$out/voices/allison.txt.tmp"
mv "$out/voices/allison.txt.tmp" "$out/voices/allison.txt"

echo "$stamp" >"$out/MANIFEST"
log "ready in $out ($(du -sh "$out" --exclude=.cache | cut -f1))"
