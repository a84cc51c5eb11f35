#!/usr/bin/env python3
"""Deterministic benchmark speech: a scripted conversation of three synthetic voices.

Usage: audio.py WORK_DIR MINUTES [MINUTES ...] [--mp4 MINUTES] [--real TESTDATA_DIR]

For each length N writes WORK_DIR/clips/speech-Nm.wav (16 kHz mono s16, exactly N minutes),
speech-Nm.txt (the script that was spoken, the reference for WER) and speech-Nm.json (turns:
voice, start, end, text). With --mp4 N also speech-Nm.mp4 (AAC audio over a still frame), the
kind of file the service receives. With --real, also clips/real-allison.wav (.txt, .json): a
real human voice, Allison Smith's telephone prompts from `make testdata` with the texts she
reads, one after another for about three minutes at their own 8 kHz rate, as a phone line
delivers speech.

Every clip is a prefix of one endless script drawn from a fixed seed, so the 1-minute clip is
the start of the 5-minute one and so on. Turns are synthesised once (espeak-ng, festival's
kal diphone voice, festival's SLT HTS voice; voices take turns in that order) and cached under
WORK_DIR/tts by a hash of voice and text. Needs numpy, espeak-ng, festival (text2wave), sox
and ffmpeg.
"""
import hashlib
import json
import os
import random
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np

RATE = 16000
# Bump when the script, voices or mixing change: cached clips are rebuilt.
VERSION = "bench-audio-v1"
SEED = 20240606
TURN_GAP_S = 0.7  # silence between speakers
NOISE_DBFS = -58.0  # a faint noise floor, so silence is not digital zero
TARGET_RMS_DBFS = -20.0
# The real-voice clip: about this long, prompts of at least this many words, pauses between them.
REAL_SECONDS = 180
REAL_MIN_WORDS = 3
REAL_GAP_S = (0.3, 0.9)

# voice id -> how to synthesise it (argv; {txt} and {wav} are filled in)
VOICES = {
    "espeak-en-us": ["espeak-ng", "-v", "en-us", "-s", "155", "-w", "{wav}", "-f", "{txt}"],
    "festival-kal": ["text2wave", "-eval", "(voice_kal_diphone)", "-o", "{wav}", "{txt}"],
    "festival-slt": ["text2wave", "-eval", "(voice_cmu_us_slt_arctic_hts)", "-o", "{wav}", "{txt}"],
}
ORDER = ["espeak-en-us", "festival-kal", "festival-slt"]

# ---------------------------------------------------------------- the script
# Plain words only: no digits, titles, contractions or hyphens, whose spelling a recogniser
# may legitimately choose differently, so word error rate measures hearing, not style.
PEOPLE = [
    "the young doctor", "our new manager", "my older sister", "the local farmer",
    "a quiet student", "the bus driver", "her best friend", "the museum guide",
    "a tired engineer", "the village baker", "our team leader", "the night nurse",
    "my next door neighbor", "the science teacher", "a famous painter", "the hotel owner",
]
PAST = [
    "visited", "painted", "repaired", "described", "ordered", "carried", "cleaned",
    "found", "opened", "moved", "checked", "measured", "planned", "built", "sold", "bought",
    "borrowed", "returned", "photographed", "ignored",
]
BASE = {
    "visited": "visit", "painted": "paint", "repaired": "repair", "described": "describe",
    "ordered": "order", "carried": "carry", "cleaned": "clean", "found": "find",
    "opened": "open", "moved": "move", "checked": "check", "measured": "measure",
    "planned": "plan", "built": "build", "sold": "sell", "bought": "buy",
    "borrowed": "borrow", "returned": "return", "photographed": "photograph",
    "ignored": "ignore",
}
THINGS = [
    "the old bridge", "a small boat", "the kitchen window", "a heavy wooden table",
    "the garden fence", "a bright yellow kite", "the library roof", "a box of apples",
    "the broken radio", "a long letter", "the train station clock", "a pair of boots",
    "the school garden", "a basket of bread", "the front door", "a map of the city",
    "the red bicycle", "a glass of water", "the empty office", "a bag of rice",
]
WHEN = [
    "before lunch", "on Monday morning", "after the meeting", "late last night",
    "during the summer", "in the early evening", "before the storm", "after the concert",
    "on a rainy afternoon", "at the end of the week",
]
WHERE = [
    "near the river", "behind the church", "in the middle of town", "next to the harbor",
    "at the top of the hill", "across the street", "inside the old factory",
    "beside the lake", "close to the market", "outside the station",
]
HOW = ["with great care", "very slowly", "without any help", "in a hurry", "quite happily"]
FEELINGS = ["surprised", "happy", "worried", "proud", "curious", "confused"]
TOPICS = [
    "the weather", "the new schedule", "the budget", "the garden", "the holiday plans",
    "the traffic", "the library project", "the school play",
]


def sentence(rng):
    p, q = rng.sample(PEOPLE, 2)
    v = rng.choice(PAST)
    t = rng.choice(THINGS)
    forms = [
        lambda: f"{p} {v} {t} {rng.choice(WHEN)}.",
        lambda: f"{rng.choice(WHEN)}, {p} {v} {t} {rng.choice(WHERE)}.",
        lambda: f"do you think {p} will {BASE[v]} {t} {rng.choice(WHEN)}?",
        lambda: f"{p} said that {q} {v} {t} {rng.choice(HOW)}.",
        lambda: f"I was {rng.choice(FEELINGS)} when {p} {v} {t}.",
        lambda: f"we talked about {rng.choice(TOPICS)} with {p} {rng.choice(WHERE)}.",
        lambda: f"{p} {v} {t}, and then {q} {rng.choice(PAST)} {rng.choice(THINGS)}.",
        lambda: f"nobody knew why {p} {v} {t} {rng.choice(WHERE)}.",
    ]
    # Only the chosen form draws from `rng`: the fixed seed gives a fixed script.
    s = forms[rng.randrange(len(forms))]()
    return s[0].upper() + s[1:]


def script():
    """Endless (voice, text) turns from the fixed seed."""
    rng = random.Random(SEED)
    i = 0
    while True:
        n = rng.choice([1, 2, 2, 3])
        yield ORDER[i % len(ORDER)], " ".join(sentence(rng) for _ in range(n))
        i += 1


# ---------------------------------------------------------------- synthesis
def synth(work, voice, text):
    """The turn as float32 samples at 16 kHz, peak-safe and levelled; cached."""
    key = hashlib.sha256(f"{VERSION}\0{voice}\0{text}".encode()).hexdigest()[:20]
    cache = work / "tts" / f"{key}.wav"
    if not cache.exists():
        cache.parent.mkdir(parents=True, exist_ok=True)
        txt = cache.with_suffix(".txt.tmp")
        raw = cache.with_suffix(".raw.wav")
        txt.write_text(text + "\n")
        argv = [a.format(txt=txt, wav=raw) for a in VOICES[voice]]
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        tmp = cache.with_suffix(".tmp.wav")
        subprocess.run(["sox", str(raw), "-r", str(RATE), "-c", "1", "-b", "16", str(tmp)],
                       check=True)
        os.replace(tmp, cache)
        raw.unlink()
        txt.unlink()
    x = read_wav(cache)
    # trim the synthesiser's own leading/trailing silence, then level every voice alike
    loud = np.flatnonzero(np.abs(x) > 1e-3)
    if loud.size:
        x = x[max(loud[0] - 800, 0): loud[-1] + 800]
    rms = float(np.sqrt(np.mean(x ** 2))) or 1.0
    x = x * (10 ** (TARGET_RMS_DBFS / 20) / rms)
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak > 0.95:
        x *= 0.95 / peak
    return x.astype(np.float32)


def read_wav(path):
    with wave.open(str(path), "rb") as w:
        assert w.getframerate() == RATE and w.getnchannels() == 1 and w.getsampwidth() == 2
        return np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768


def write_wav(path, x, rate=RATE):
    tmp = path.with_suffix(".tmp.wav")
    with wave.open(str(tmp), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(x, -1, 1) * 32767).round().astype("<i2").tobytes())
    os.replace(tmp, path)


def build(work, minutes):
    clips = work / "clips"
    clips.mkdir(parents=True, exist_ok=True)
    base = clips / f"speech-{minutes}m"
    meta = base.with_suffix(".json")
    wav = base.with_suffix(".wav")
    if meta.exists() and wav.exists():
        if json.loads(meta.read_text()).get("version") == VERSION:
            return base
    total = minutes * 60 * RATE
    pieces, turns, pos = [], [], int(0.5 * RATE)  # half a second of room at the start
    for voice, text in script():
        x = synth(work, voice, text)
        if pos + len(x) + int(0.5 * RATE) > total:
            break
        turns.append({"voice": voice, "start": pos / RATE, "end": (pos + len(x)) / RATE,
                      "text": text})
        pieces.append((pos, x))
        pos += len(x) + int(TURN_GAP_S * RATE)
    out = np.zeros(total, np.float32)
    for start, x in pieces:
        out[start:start + len(x)] += x
    noise = np.random.default_rng(SEED).standard_normal(total).astype(np.float32)
    out += noise * 10 ** (NOISE_DBFS / 20)
    write_wav(wav, out)
    base.with_suffix(".txt").write_text(" ".join(t["text"] for t in turns) + "\n")
    meta.write_text(json.dumps({
        "version": VERSION, "minutes": minutes, "seconds": total / RATE,
        "voices": sorted({t["voice"] for t in turns}), "words": sum(len(t["text"].split()) for t in turns),
        "speech_seconds": round(sum(t["end"] - t["start"] for t in turns), 2),
        "turns": turns,
    }, indent=1) + "\n")
    return base


def prompt_texts(listing):
    """Prompt file name -> text, from the "name: text" listing; only plain spoken sentences (no
    tone descriptions in brackets, no digits or keypad symbols whose spelling varies)."""
    texts = {}
    for line in listing.read_text().splitlines():
        name, sep, text = line.partition(": ")
        text = text.strip()
        if (not sep or line.startswith(";") or not text
                or any(c.isdigit() or c in "[]()*#/" for c in text)
                or len(text.split()) < REAL_MIN_WORDS):
            continue
        texts[name.replace("/", "-")] = text
    return texts


def build_real(work, testdata):
    clips = work / "clips"
    clips.mkdir(parents=True, exist_ok=True)
    base = clips / "real-allison"
    voice = Path(testdata) / "voices" / "allison"
    texts = prompt_texts(Path(testdata) / "voices" / "allison.txt")
    names = sorted(n for n in texts if (voice / f"{n}.wav").exists())
    random.Random(SEED).shuffle(names)
    rate, pieces, turns, pos = None, [], [], 0.5
    for name in names:
        with wave.open(str(voice / f"{name}.wav"), "rb") as w:
            rate = rate or w.getframerate()
            assert w.getframerate() == rate and w.getnchannels() == 1 and w.getsampwidth() == 2
            x = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768
        if pos + len(x) / rate > REAL_SECONDS:
            break
        turns.append({"voice": "allison", "start": round(pos, 3),
                      "end": round(pos + len(x) / rate, 3), "text": texts[name]})
        pieces.append((int(pos * rate), x))
        pos += len(x) / rate + random.Random(f"{SEED}{name}").uniform(*REAL_GAP_S)
    out = np.zeros(int((pos + 0.5) * rate), np.float32)
    for start, x in pieces:
        out[start:start + len(x)] += x
    write_wav(base.with_suffix(".wav"), out, rate)
    base.with_suffix(".txt").write_text(" ".join(t["text"] for t in turns) + "\n")
    base.with_suffix(".json").write_text(json.dumps({
        "version": VERSION, "minutes": round(len(out) / rate / 60, 2), "seconds": len(out) / rate,
        "rate": rate, "voices": ["allison"], "words": sum(len(t["text"].split()) for t in turns),
        "speech_seconds": round(sum(t["end"] - t["start"] for t in turns), 2), "turns": turns,
    }, indent=1) + "\n")
    return base


def mp4(base):
    out = base.with_suffix(".mp4")
    if out.exists() and out.stat().st_mtime >= base.with_suffix(".wav").stat().st_mtime:
        return out
    tmp = base.with_suffix(".tmp.mp4")
    subprocess.run([
        "ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "color=c=navy:s=320x240:r=5",
        "-i", str(base.with_suffix(".wav")), "-shortest", "-c:v", "mpeg4", "-c:a", "aac",
        "-b:a", "96k", "-fflags", "+bitexact", "-threads", "1", "-f", "mp4", str(tmp),
    ], check=True)
    os.replace(tmp, out)
    return out


def main(argv):
    work = Path(argv[0])
    mp4_of = []
    minutes = []
    real = None
    it = iter(argv[1:])
    for a in it:
        if a == "--mp4":
            mp4_of.append(int(next(it)))
        elif a == "--real":
            real = next(it)
        else:
            minutes.append(int(a))
    # longest first: shorter clips then reuse its cached turns
    for m in sorted(set(minutes + mp4_of), reverse=True):
        base = build(work, m)
        info = json.loads(base.with_suffix(".json").read_text())
        print(f"audio: {base.name}.wav {info['seconds']:.0f} s, {len(info['turns'])} turns, "
              f"{info['words']} words, speech {info['speech_seconds']:.0f} s", file=sys.stderr)
    for m in mp4_of:
        print(f"audio: {mp4(work / 'clips' / f'speech-{m}m').name}", file=sys.stderr)
    if real:
        base = build_real(work, real)
        info = json.loads(base.with_suffix(".json").read_text())
        print(f"audio: {base.name}.wav {info['seconds']:.0f} s at {info['rate']} Hz, "
              f"{len(info['turns'])} prompts, {info['words']} words", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
