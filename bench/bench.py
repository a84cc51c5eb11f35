#!/usr/bin/env python3
"""Runs the measurements and writes WORK_DIR/results.json (bench/report.py renders it).

Usage: bench.py WORK_DIR      (settings from the environment; see bench/run.sh)

A = `target/release/ecg analyze FILE` (full pipeline), B = bench/fw_asr.py (faster-whisper,
ASR only), one process per run, alternating A B A B after a warm-up pair. Every run goes
through GNU time for peak RSS and CPU time; A runs with RUST_LOG=info and JSON log lines
(ECG_LOG_FORMAT=json) so that each pipeline stage's span reports its time on close.
"""
import hashlib
import http.client
import json
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import wer as wer_mod  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
RELEASE = REPO / "target" / "release"
PY = sys.executable
GNU_TIME = "/usr/bin/time"
STAGES = ["fetch", "decode", "vad", "diarize", "asr", "assemble", "emotion"]


def env_list(name, default):
    return [x for x in os.environ.get(name, default).split()]


class Settings:
    def __init__(self):
        self.lengths = [int(x) for x in env_list("BENCH_LENGTHS", "1 5 20")]
        self.runs = int(os.environ.get("BENCH_RUNS", "3"))
        self.warmup = int(os.environ.get("BENCH_WARMUP", "1"))
        self.mp4 = os.environ.get("BENCH_MP4", "5").strip()
        self.threads = int(os.environ.get("ECG_ASR_THREADS", "2"))
        self.cold_runs = int(os.environ.get("BENCH_COLD_RUNS", "10"))
        self.levers = os.environ.get("BENCH_LEVERS", "0") == "1"
        self.lever_clip = int(os.environ.get("BENCH_LEVER_CLIP", "5"))
        self.lever_runs = int(os.environ.get("BENCH_LEVER_RUNS", "2"))
        self.lever_set = env_list("BENCH_LEVER_SET",
                                  "base f16 threads1 beam5 q5_1 q5_0 tokens")
        self.model_dir = Path(os.environ.get("ECG_MODEL_DIR", REPO / "models"))
        # The real-voice clip joins the clips when audio.py built it from this test data.
        self.real = os.environ.get("BENCH_REAL", "").strip()


# ---------------------------------------------------------------- machine state
def loadavg():
    return os.getloadavg()[0]


def _cpu_ticks():
    ticks = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            rest = stat.rsplit(")", 1)[1].split()
            argv0 = (d / "cmdline").read_bytes().split(b"\0", 1)[0].decode(errors="replace")
        except OSError:
            continue
        name = os.path.basename(argv0) or stat[stat.index("(") + 1:stat.rindex(")")]
        ticks[int(d.name)] = (int(rest[11]) + int(rest[12]), name)
    return ticks


def other_processes(interval=0.5):
    """Names of processes (not this one) using more than a fifth of a core right now."""
    hz = os.sysconf("SC_CLK_TCK")
    before = _cpu_ticks()
    time.sleep(interval)
    after = _cpu_ticks()
    me = os.getpid()
    busy = set()
    for pid, (t1, name) in after.items():
        t0 = before.get(pid, (t1, name))[0]
        if pid != me and (t1 - t0) / hz / interval > 0.2:
            busy.add(name)
    return sorted(busy)


def machine():
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                if l.startswith("model name")), platform.processor())
    mem_kb = next(int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal"))
    flags = next((l.split(":", 1)[1].split() for l in open("/proc/cpuinfo")
                  if l.startswith("flags")), [])
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "mem_gib": round(mem_kb / 2**20, 1),
        "kernel": platform.release(),
        "simd": [f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "f16c")
                 if f in flags],
        "hypervisor": "hypervisor" in flags,
    }


def versions():
    def out(argv):
        try:
            return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return "unknown"

    lock = (REPO / "Cargo.lock").read_text()

    def locked(name):
        m = re.search(rf'name = "{re.escape(name)}"\nversion = "([^"]+)"', lock)
        return m.group(1) if m else "unknown"

    whisper_cpp = "unknown"
    for src in Path.home().glob(f".cargo/registry/src/*/whisper-rs-sys-{locked('whisper-rs-sys')}"):
        m = re.search(r'project\("whisper.cpp" VERSION ([0-9.]+)\)',
                      (src / "whisper.cpp" / "CMakeLists.txt").read_text())
        whisper_cpp = m.group(1) if m else whisper_cpp
    from importlib import metadata
    return {
        "rustc": out(["rustc", "-V"]),
        "whisper-rs": locked("whisper-rs"),
        "whisper-rs-sys": locked("whisper-rs-sys"),
        "whisper.cpp": whisper_cpp,
        "ort": locked("ort"),
        "faster-whisper": metadata.version("faster-whisper"),
        "ctranslate2": metadata.version("ctranslate2"),
        "onnxruntime (python)": metadata.version("onnxruntime"),
        "python": platform.python_version(),
        "ecg commit": out(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"]),
        "ecg tree": "dirty" if out(["git", "-C", str(REPO), "status", "--porcelain",
                                    "--untracked-files=no"]) else "clean",
    }


# ---------------------------------------------------------------- one timed process
def parse_gnu_time(path):
    text = Path(path).read_text()

    def num(label):
        m = re.search(rf"{re.escape(label)}: ([0-9.]+)", text)
        return float(m.group(1)) if m else None

    return {"user_s": num("User time (seconds)"), "sys_s": num("System time (seconds)"),
            "max_rss_mb": (num("Maximum resident set size (kbytes)") or 0) / 1024}


def timed(argv, env, tag, out_dir):
    """Runs argv under GNU time; returns wall time, CPU, RSS, and the paths of its logs."""
    out_dir = out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    tfile, errf, outf = out_dir / f"{tag}.time", out_dir / f"{tag}.stderr", out_dir / f"{tag}.stdout"
    others = other_processes()
    load0 = loadavg()
    t_epoch = time.time()
    t0 = time.perf_counter()
    with open(errf, "wb") as err, open(outf, "wb") as out:
        p = subprocess.Popen([GNU_TIME, "-v", "-o", str(tfile), *argv], env=env, stdout=out,
                             stderr=err, cwd=REPO)
        rc = p.wait()
    wall = time.perf_counter() - t0
    rec = {"wall_s": wall, "rc": rc, "start_epoch": t_epoch, "load_before": load0,
           "load_after": loadavg(), "others": sorted(set(others) | set(other_processes())),
           "stderr": str(errf), "stdout": str(outf)}
    rec.update(parse_gnu_time(tfile))
    if rc != 0:
        tail = errf.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{argv[0]} failed ({rc}): {tail}")
    return rec


def duration(text):
    """tracing-subscriber's time.busy/time.idle ("1.23s", "456ms", "7.8µs", "90ns") in s."""
    m = re.fullmatch(r"([0-9.]+)\s*(s|ms|µs|us|ns)", text.strip())
    if not m:
        return None
    return float(m.group(1)) * {"s": 1, "ms": 1e-3, "µs": 1e-6, "us": 1e-6, "ns": 1e-9}[m.group(2)]


def stamp(ts):
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def keep_first_name(pairs):
    """A span object carries its field `name` (the stage) and then the span's own name
    ("stage") under the same key: keep the first as `name`, the last as `span_name`."""
    out = {}
    for k, v in pairs:
        if k == "name" and "name" in out:
            out["span_name"] = v
        else:
            out[k] = v
    return out


def stage_times(stderr_path, start_epoch):
    """Per-stage seconds from the `stage` spans' close events, plus start-up."""
    stages, info = {}, {}
    first_start = None
    for line in Path(stderr_path).read_text(errors="replace").splitlines():
        if not line.startswith("{"):
            continue
        try:
            ev = json.loads(line, object_pairs_hook=keep_first_name)
        except json.JSONDecodeError:
            continue
        fields = ev.get("fields", {})
        msg = fields.get("message", "")
        span = ev.get("span") or {}
        if msg == "close" and "time.busy" in fields:
            name = span.get("name")
            busy, idle = duration(fields["time.busy"]), duration(fields.get("time.idle", "0s"))
            if span.get("span_name") == "stage" and name:
                total = (busy or 0) + (idle or 0)
                stages[name] = stages.get(name, 0.0) + total
                if "timestamp" in ev:
                    begin = stamp(ev["timestamp"]) - total
                    first_start = begin if first_start is None else min(first_start, begin)
        elif msg == "Whisper model loaded":
            info["asr_threads"] = fields.get("threads")
            info["asr_model"] = fields.get("model")
        elif msg == "speech regions found":
            info["speech_regions"] = fields.get("regions")
        elif "speaker" in msg.lower() and ev.get("level") == "INFO":
            info.setdefault("speaker_logs", []).append({k: v for k, v in fields.items()})
    if first_start is not None:
        info["startup_s"] = first_start - start_epoch
    return stages, info


# ---------------------------------------------------------------- A and B
_wer_cache = {}


def score(reference, text):
    key = hashlib.sha256((reference + "\0" + text).encode()).hexdigest()
    if key not in _wer_cache:
        _wer_cache[key] = wer_mod.wer(reference, text)
    return _wer_cache[key]


def run_a(s, clip, tag, out_dir, extra_env=None):
    env = dict(os.environ, RUST_LOG="info", ECG_LOG_FORMAT="json",
               ECG_ASR_THREADS=str(s.threads), ECG_MODEL_DIR=str(s.model_dir), NO_COLOR="1")
    env.update(extra_env or {})
    result = out_dir.resolve() / f"{tag}.json"
    rec = timed([str(RELEASE / "ecg"), "analyze", str(clip["path"]), "-o", str(result)], env,
                tag, out_dir)
    res = json.loads(result.read_text())
    stages, info = stage_times(rec["stderr"], rec["start_epoch"])
    text = " ".join(seg["text"].strip() for seg in res.get("segments", []))
    rec.update({
        "stages": stages, "info": info, "language": res.get("language"),
        "processing_time_s": res.get("metadata", {}).get("processing_time"),
        "segments": len(res.get("segments", [])),
        "speakers": len(res.get("speakers", {})),
        "words": sum(len(seg.get("words", [])) for seg in res.get("segments", [])),
        "accuracy": score(clip["reference"], text),
    })
    return rec


def run_b(s, clip, tag, out_dir):
    env = dict(os.environ, OMP_NUM_THREADS=str(s.threads), OPENBLAS_NUM_THREADS=str(s.threads),
               HF_HUB_OFFLINE="1")
    result = out_dir.resolve() / f"{tag}.json"
    rec = timed([PY, str(REPO / "bench" / "fw_asr.py"), "--model",
                 str(s.model_dir / "whisper-base-ct2"), "--threads", str(s.threads),
                 "--beam", "5", "--compute", "int8", str(clip["path"]), str(result)],
                env, tag, out_dir)
    res = json.loads(result.read_text())
    rec.update({"timings": res["timings"], "language": res["language"],
                "words": len(res["words"]), "accuracy": score(clip["reference"], res["text"])})
    return rec


def clips(s, work):
    out = []
    for m in s.lengths:
        base = work / "clips" / f"speech-{m}m"
        out.append({"label": f"{m} min wav", "minutes": m, "path": base.with_suffix(".wav"),
                    "reference": base.with_suffix(".txt").read_text(),
                    "meta": json.loads(base.with_suffix(".json").read_text())})
    if s.mp4:
        m = int(s.mp4)
        base = work / "clips" / f"speech-{m}m"
        out.append({"label": f"{m} min mp4 (AAC)", "minutes": m, "path": base.with_suffix(".mp4"),
                    "reference": base.with_suffix(".txt").read_text(),
                    "meta": json.loads(base.with_suffix(".json").read_text())})
    if s.real:
        base = work / "clips" / "real-allison"
        meta = json.loads(base.with_suffix(".json").read_text())
        out.append({"label": "real voice, 8 kHz phone prompts", "minutes": meta["minutes"],
                    "path": base.with_suffix(".wav"),
                    "reference": base.with_suffix(".txt").read_text(), "meta": meta})
    return out


def say(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def ab(s, work, runs_dir):
    results = []
    for n, clip in enumerate(clips(s, work)):
        slug = clip["path"].name.replace(".", "-")
        # Warm-up (page cache, the peer's imports, CPU caches) before the first clip only: the
        # later clips run on a warm machine, and a 20-minute warm-up pair would cost 10 minutes.
        warmup = s.warmup if n == 0 else 0
        say(f"{clip['label']}: {warmup} warm-up + {s.runs} counted A/B pairs")
        warm = []
        for i in range(warmup):
            warm.append({"a": run_a(s, clip, f"{slug}-warm{i}-A", runs_dir),
                         "b": run_b(s, clip, f"{slug}-warm{i}-B", runs_dir)})
        pairs = []
        for i in range(s.runs):
            a = run_a(s, clip, f"{slug}-run{i}-A", runs_dir)
            b = run_b(s, clip, f"{slug}-run{i}-B", runs_dir)
            pairs.append({"a": a, "b": b, "ratio": a["wall_s"] / b["wall_s"]})
            say(f"  pair {i + 1}: A {a['wall_s']:.1f} s (asr {a['stages'].get('asr', 0):.1f} s, "
                f"WER {a['accuracy']['wer']:.1%}), B {b['wall_s']:.1f} s "
                f"(WER {b['accuracy']['wer']:.1%}), A/B {pairs[-1]['ratio']:.2f}")
        results.append({"clip": {k: (str(v) if isinstance(v, Path) else v)
                                 for k, v in clip.items() if k not in ("reference", "meta")},
                        "speech_s": clip["meta"]["speech_seconds"],
                        "ref_words": clip["meta"]["words"],
                        "voices": clip["meta"]["voices"],
                        "warmup": warm, "pairs": pairs})
    return results


# ---------------------------------------------------------------- cold starts
def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def aws_env(extra):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("AWS_") and k not in ("RUST_LOG",)}
    env.update({
        "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        # nothing listens there: the binaries must start without reaching AWS
        "ECG_JOBS_TABLE": "bench-jobs", "ECG_QUEUE_URL": "http://127.0.0.1:9/000000000000/bench",
    })
    env.update(extra)
    return env


def stop(p, grace_s):
    """SIGTERM, then SIGKILL if `p` has not exited within `grace_s` seconds."""
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(grace_s)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def function_cold_start():
    """Process start of the Lambda binary (local mode) → first complete HTTP response."""
    port = free_port()
    env = aws_env({"PORT": str(port)})
    body = b"{}"  # a request the router answers itself (422): no AWS call on the way
    t0 = time.perf_counter()
    p = subprocess.Popen([str(RELEASE / "ecg-api")], env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        while True:
            if p.poll() is not None:
                raise RuntimeError(f"ecg-api exited with {p.returncode}")
            if time.perf_counter() - t0 > 30:
                raise RuntimeError("ecg-api did not answer within 30 s")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("POST", "/api/upload-video/process-video", body,
                             {"Content-Type": "application/json"})
                resp = conn.getresponse()
                resp.read()
                t = time.perf_counter() - t0
                conn.close()
                return {"s": t, "status": resp.status}
            except (ConnectionRefusedError, ConnectionResetError, http.client.RemoteDisconnected):
                time.sleep(0.0005)
    finally:
        stop(p, grace_s=5)


def runner_cold_start(s):
    """Process start of gpu-runner → its "models loaded" log line."""
    env = aws_env({"ECG_MODEL_DIR": str(s.model_dir), "ECG_ASR_THREADS": str(s.threads),
                   "RUST_LOG": "info"})
    t0 = time.perf_counter()
    p = subprocess.Popen([str(RELEASE / "gpu-runner")], env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    try:
        for line in p.stderr:
            if "models loaded" in line:
                t = time.perf_counter() - t0
                load_s = None
                try:
                    load_s = json.loads(line)["fields"].get("load_s")
                except (json.JSONDecodeError, KeyError):
                    pass
                return {"s": t, "load_s": load_s}
        raise RuntimeError(f"gpu-runner exited ({p.wait()}) before loading its models")
    finally:
        stop(p, grace_s=10)


def cold_starts(s):
    out = {"function": [], "runner": []}
    for _ in range(s.cold_runs):
        out["function"].append(function_cold_start())
        out["runner"].append(runner_cold_start(s))
    for k, v in out.items():
        say(f"cold start {k}: median {statistics.median(x['s'] for x in v) * 1000:.0f} ms")
    out["function_binary_mb"] = (RELEASE / "ecg-api").stat().st_size / 2**20
    out["runner_binary_mb"] = (RELEASE / "gpu-runner").stat().st_size / 2**20
    return out


# ---------------------------------------------------------------- levers
def lever_models(s, work):
    models = {}
    for kind in ("q5_1", "q5_0"):
        path = work / "models" / f"ggml-base-{kind}.bin"
        src = s.model_dir / "ggml-base.bin"
        if not path.exists() or path.stat().st_mtime < src.stat().st_mtime:
            path.parent.mkdir(parents=True, exist_ok=True)
            say(f"quantizing {src.name} to {kind}")
            subprocess.run([PY, str(REPO / "infra" / "models" / "quantize_ggml.py"), str(src), str(path),
                            kind], check=True)
        models[kind] = path
    return models


def levers(s, work, runs_dir):
    work = work.resolve()
    models = lever_models(s, work)
    variants = {
        # The defaults: Whisper base q8_0, greedy, DTW word times, all cores.
        "base": {},
        "f16": {"ECG_ASR_MODEL": "base"},
        "threads1": {"ECG_ASR_THREADS": "1"},
        "beam5": {"ECG_ASR_BEAM_SIZE": "5"},
        "tokens": {"ECG_ASR_WORD_TIMING": "tokens"},
        "q5_1": {"ECG_ASR_MODEL": str(models["q5_1"])},
        "q5_0": {"ECG_ASR_MODEL": str(models["q5_0"])},
    }
    chosen = [v for v in s.lever_set if v in variants]
    base = work / "clips" / f"speech-{s.lever_clip}m"
    clip = {"label": f"{s.lever_clip} min wav", "minutes": s.lever_clip,
            "path": base.with_suffix(".wav"), "reference": base.with_suffix(".txt").read_text()}
    say(f"levers on {clip['label']}: {', '.join(chosen)} × {s.lever_runs} (round robin)")
    out = {v: [] for v in chosen}
    for i in range(s.lever_runs):
        for v in chosen:
            rec = run_a(s, clip, f"lever-{v}-{i}", runs_dir, variants[v])
            out[v].append(rec)
            say(f"  {v}: {rec['wall_s']:.1f} s, asr {rec['stages'].get('asr', 0):.1f} s, "
                f"WER {rec['accuracy']['wer']:.1%}, RSS {rec['max_rss_mb']:.0f} MB")
    return {"clip": clip["label"], "minutes": clip["minutes"], "runs": s.lever_runs,
            "env": {v: variants[v] for v in chosen}, "results": out}


# ---------------------------------------------------------------- probe (whisper.cpp directly)
PROBE = None


def probe_bin(work, openmp=False):
    """Builds bench/probe (whisper-rs as `ecg` pins it) into WORK_DIR/probe-target[-openmp]."""
    target = work / ("probe-target-openmp" if openmp else "probe-target")
    env = dict(os.environ, CARGO_TARGET_DIR=str(target))
    subprocess.run(["cargo", "build", "--release", "--quiet", "--manifest-path",
                    str(REPO / "bench" / "probe" / "Cargo.toml")]
                   + (["--features", "openmp"] if openmp else []), check=True, env=env)
    return target / "release" / "ecg-asr-probe"


class Hog:
    """One busy process (a spinning Python loop): the CPU contention of a shared machine."""

    def __enter__(self):
        self.p = subprocess.Popen([PY, "-c", "while True: pass"])
        time.sleep(0.3)
        return self

    def __exit__(self, *exc):
        self.p.kill()
        self.p.wait()


def contention(s, work):
    """The encoder with and without one competing busy process: ggml's spinning thread
    barrier against the OpenMP build of the same whisper.cpp, and one thread against two."""
    spin, omp = probe_bin(work), probe_bin(work, openmp=True)
    wav = work / "clips" / f"speech-{s.lever_clip}m.wav"
    model = s.model_dir / "ggml-base.bin"
    t = str(s.threads)
    runs = int(os.environ.get("BENCH_PROBE_RUNS", "2"))
    configs = []
    for hog in (False, True):
        for threads in sorted({"1", t}):
            configs.append((f"ggml spin barrier, {threads} thread(s)", spin, threads, hog, {}))
            configs.append((f"OpenMP build, {threads} thread(s)", omp, threads, hog, {}))
            configs.append((f"OpenMP build, {threads} thread(s), OMP_WAIT_POLICY=passive", omp,
                            threads, hog, {"OMP_WAIT_POLICY": "passive"}))
    out = []
    say(f"contention: {len(configs)} settings × {runs} runs, encoder on 3 windows")
    for i in range(runs):
        for name, exe, threads, hog, env in configs:
            argv = [str(exe), "--wav", str(wav), "--model", str(model), "--threads", threads,
                    "--encode-only", "--windows", "3"]
            e = dict(os.environ, **env)
            if hog:
                with Hog():
                    p = subprocess.run(argv, capture_output=True, text=True, check=True, env=e)
            else:
                p = subprocess.run(argv, capture_output=True, text=True, check=True, env=e)
            rec = json.loads(p.stdout.strip().splitlines()[-1])
            out.append({"name": name, "threads": int(threads), "hog": hog, "run": i,
                        "per_window_s": [w["s"] for w in rec["windows"]]})
            say(f"  {name}{' + 1 busy process' if hog else ''}: "
                + " ".join(f"{x:.2f}" for x in out[-1]["per_window_s"]))
    return out


def probe_levers(s, work):
    """Encoder and whole-window timings for settings `ecg` does not expose."""
    work = work.resolve()
    exe = probe_bin(work)
    models = lever_models(s, work)
    models["f16"] = s.model_dir / "ggml-base.bin"
    models["q8_0"] = s.model_dir / "ggml-base-q8_0.bin"
    wav = work / "clips" / f"speech-{s.lever_clip}m.wav"
    t = str(s.threads)
    n = os.environ.get("BENCH_PROBE_WINDOWS", "4")
    configs = {}
    for kind in ("f16", "q8_0", "q5_1", "q5_0"):
        for threads in sorted({"1", t}):
            configs[f"encode {kind} t{threads}"] = [
                "--model", models[kind], "--threads", threads, "--encode-only", "--windows", n]
    configs[f"encode f16 t{t} flash"] = ["--model", models["f16"], "--threads", t, "--flash",
                                         "--encode-only", "--windows", n]
    for kind in ("f16", "q8_0"):
        common = ["--model", models[kind], "--threads", t, "--lang", "en", "--windows", n]
        configs[f"full {kind} dtw"] = common + ["--dtw"]
        configs[f"full {kind} tokens"] = list(common)
        configs[f"full {kind} tokens flash"] = common + ["--flash"]
    configs["full f16 dtw lang auto"] = ["--model", models["f16"], "--threads", t, "--dtw",
                                         "--lang", "auto", "--windows", n]
    # a short window: 10 s of speech, encoded as 30 s (audio_ctx 0) or as ~10 s (audio_ctx 512)
    for ctx in ("0", "512"):
        configs[f"short10 f16 dtw audio_ctx {ctx}"] = [
            "--model", models["f16"], "--threads", t, "--dtw", "--lang", "en",
            "--window-s", "10", "--windows", "3", "--audio-ctx", ctx]
    runs = int(os.environ.get("BENCH_PROBE_RUNS", "2"))
    out = {k: [] for k in configs}
    say(f"probe: {len(configs)} settings × {runs} runs on {wav.name}, {n} windows")
    for i in range(runs):
        for name, argv in configs.items():
            p = subprocess.run([str(exe), "--wav", str(wav), *map(str, argv)],
                               capture_output=True, text=True, check=True)
            rec = json.loads(p.stdout.strip().splitlines()[-1])
            out[name].append(rec)
            say(f"  {name}: " + " ".join(f"{w['s']:.2f}" for w in rec["windows"]))
    return {"clip": wav.name, "windows": int(n), "runs": runs, "results": out}


# ---------------------------------------------------------------- main
def wait_for_quiet(limit_s):
    """Waits (up to limit_s) for a 1-min load average below 0.5 with no other builds or
    tests running; returns how long it waited and whether the machine became quiet."""
    t0 = time.time()
    while True:
        load, others = loadavg(), other_processes()
        if load < 0.5 and not others:
            return {"waited_s": round(time.time() - t0), "quiet": True}
        if time.time() - t0 >= limit_s:
            return {"waited_s": round(time.time() - t0), "quiet": False}
        say(f"waiting for a quiet machine: load {load:.2f}, others: {', '.join(others) or 'none'}")
        time.sleep(min(120, max(1, limit_s - (time.time() - t0))))


def main(work):
    work = Path(work).resolve()
    s = Settings()
    wait = int(os.environ.get("BENCH_WAIT_QUIET", "0"))
    waited = wait_for_quiet(wait) if wait > 0 else None
    runs_dir = work / "runs" / datetime.now().strftime("%Y%m%d-%H%M%S")
    started = datetime.now(timezone.utc)
    say(f"machine load {loadavg():.2f}; others running: {', '.join(other_processes()) or 'none'}")
    results = {
        "date": started.isoformat(timespec="seconds"),
        "settings": {"lengths": s.lengths, "runs": s.runs, "warmup": s.warmup, "mp4": s.mp4,
                     "threads": s.threads, "cold_runs": s.cold_runs,
                     "quick": os.environ.get("BENCH_QUICK") == "1"},
        "machine": machine(),
        "versions": versions(),
        "load_at_start": loadavg(),
        "others_at_start": other_processes(),
        "waited_for_quiet": waited,
    }
    results["ab"] = ab(s, work, runs_dir)
    results["cold_start"] = cold_starts(s)
    if s.levers:
        results["levers"] = levers(s, work, runs_dir)
    if os.environ.get("BENCH_PROBE", "0") == "1":
        results["probe"] = probe_levers(s, work)
        results["contention"] = contention(s, work)
    results["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    results["load_at_end"] = loadavg()
    (runs_dir / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    (work / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    say(f"results: {work / 'results.json'}")


if __name__ == "__main__":
    main(sys.argv[1])
