"""OpenAI's Python client against /v1/audio/transcriptions. Reads {"base_url", "clip"} on stdin;
checks word timings, our additional fields and both subtitle formats; prints what it found."""

import json
import re
import sys

from openai import OpenAI

request = json.load(sys.stdin)
client = OpenAI(base_url=request["base_url"], api_key="not-needed-without-ECG_API_TOKEN")


def transcribe(**options):
    with open(request["clip"], "rb") as media:
        return client.audio.transcriptions.create(model="whisper-1", file=media, **options)


verbose = transcribe(response_format="verbose_json", timestamp_granularities=["word"])
assert verbose.task == "transcribe" and verbose.language == "english", verbose
assert verbose.duration > 1.0, verbose.duration
words = verbose.words
assert words, "no words"
previous_end = 0.0
for word in words:
    assert previous_end - 0.05 <= word.start <= word.end <= verbose.duration + 0.05, word
    previous_end = word.end
    extra = word.model_extra or {}
    assert extra.get("speaker", "").startswith("SPEAKER_"), extra
    assert "volume_db" in extra.get("acoustic_features", {}), extra

cue_time = r"\d\d:\d\d:\d\d{sep}\d\d\d --> \d\d:\d\d:\d\d{sep}\d\d\d"
srt = transcribe(response_format="srt")
assert isinstance(srt, str), type(srt)
assert re.match(r"1\n" + cue_time.format(sep=",") + r"\n\S", srt), srt
vtt = transcribe(response_format="vtt")
assert vtt.startswith("WEBVTT\n\n"), vtt
assert re.search(cue_time.format(sep=r"\.") + r"\n\S", vtt), vtt

print(json.dumps({"text": verbose.text, "words": len(words)}))
