"""Capacity model of the runner fleet: replays an arrival trace through the scaling rules that
template.yaml deploys and reports how long jobs wait, how many instance-hours that takes and
what they cost.

The rules, as the template sets them:
- Target tracking on backlog per instance: (ApproximateNumberOfMessagesVisible +
  ApproximateNumberOfMessagesNotVisible) / GroupInServiceInstances, with the target below.
  Its scale-out alarm needs 3 one-minute datapoints above the target, its scale-in alarm 15 below.
  The new capacity is what brings the metric to the target: ceil(jobs / target).
- With no instance in service the metric has no data, so target tracking cannot leave zero: a
  step policy on its own alarm (desired capacity 0 and a message waiting, one one-minute
  datapoint) sets the capacity to one.
- Scale-in picks idle instances first; an instance being terminated finishes its running job
  (the termination lifecycle hook) before it stops counting.

Usage: .venv/bin/python bench/fleet_sim.py [--markdown]
"""

from __future__ import annotations

import argparse
import math
import random
from collections import deque
from dataclasses import dataclass, field

# Job time on this project's measurement (BENCHMARKS.md, `make bench`, 2 CPU cores, Whisper
# base): wall = 2.7 s + 6.11 s per audio minute. A G4dn's T4 is faster; with no GPU measured
# this is the conservative figure.
JOB_FIXED_S = 2.7
JOB_PER_AUDIO_MIN_S = 6.11
# Uploaded videos: 1 to 20 minutes, log-uniform (mean 6.3 min, so a mean job of about 41 s).
AUDIO_MIN_RANGE = (1.0, 20.0)
# Launch → runner polling: about 60 s for EC2 to boot the Deep Learning AMI, about 60 s for
# user data (artefact download and unpack, CloudWatch agent), 0.2 s to load the models
# (measured). An assumption until measured on the instance.
START_UP_S = 150.0
# The wait a job may have before it starts, at the 95th percentile under steady load.
LATENCY_GOAL_S = 300.0
# g4dn.xlarge, us-east-1, Linux, per hour: on-demand list price; spot assumed at 40 % of it
# (spot prices move; check the region's spot history before relying on this).
ON_DEMAND_PER_HOUR = 0.526
SPOT_PER_HOUR = 0.21
# The template's RunnerBacklogTarget and RunnerMaxInstances defaults (a test checks they match,
# and that the target is `model_target()`).
BACKLOG_TARGET = 5
MAX_INSTANCES = 10
WORKERS_PER_INSTANCE = 1

SCALE_OUT_DATAPOINTS = 3
SCALE_IN_DATAPOINTS = 15
FROM_ZERO_DATAPOINTS = 1


def mean_job_s() -> float:
    lo, hi = AUDIO_MIN_RANGE
    mean_minutes = (hi - lo) / math.log(hi / lo)
    return JOB_FIXED_S + JOB_PER_AUDIO_MIN_S * mean_minutes


def derived_target(workers: int = WORKERS_PER_INSTANCE) -> int:
    """The first estimate: each of an instance's workers finishes a mean job every `mean_job_s()`
    seconds, so the last of B jobs per instance waits about B / workers × mean job time, and
    B = workers × goal / mean job time. It ignores bursts within the hour and the minutes a new
    instance takes, so the model below settles the target."""
    return max(1, math.floor(workers * LATENCY_GOAL_S / mean_job_s()))


def model_target() -> int:
    """The largest backlog target (the fewest instance-hours) whose 95th-percentile wait on the
    steady day meets the latency goal."""
    steady = traces()["steady day"]
    meeting = [target for target in range(1, derived_target() + 1)
               if simulate(steady, Rules(backlog_target=target)).percentile(0.95) <= LATENCY_GOAL_S]
    return max(meeting, default=1)


@dataclass(frozen=True)
class Rules:
    backlog_target: float = BACKLOG_TARGET
    max_instances: int = MAX_INSTANCES
    min_instances: int = 0
    workers: int = WORKERS_PER_INSTANCE


def backlog_per_instance(jobs: int, in_service: int) -> float | None:
    """The metric math: no data while no instance is in service."""
    return None if in_service == 0 else jobs / in_service


def next_desired(rules: Rules, desired: int, history: list[tuple[int, int, int]]) -> int:
    """The desired capacity after a minute's datapoints. `history` holds (jobs waiting or
    running, messages visible, instances in service), one per minute, newest last."""
    clamp = lambda n: max(rules.min_instances, min(rules.max_instances, n))  # noqa: E731
    jobs, visible, in_service = history[-1]
    recent = history[-FROM_ZERO_DATAPOINTS:]
    if desired == 0 and all(v >= 1 for _, v, _ in recent):
        return clamp(1)
    metric = [backlog_per_instance(j, s) for j, _, s in history]
    wanted = clamp(math.ceil(jobs / rules.backlog_target))
    out = metric[-SCALE_OUT_DATAPOINTS:]
    if len(out) == SCALE_OUT_DATAPOINTS and all(m is not None and m > rules.backlog_target for m in out):
        return max(desired, wanted)
    quiet = metric[-SCALE_IN_DATAPOINTS:]
    if len(quiet) == SCALE_IN_DATAPOINTS and all(m is not None and m < rules.backlog_target for m in quiet):
        return min(desired, wanted)
    return desired


@dataclass
class Instance:
    launched: float
    ready: float
    busy_until: list[float]
    terminating: bool = False
    ended: float | None = None


@dataclass
class Outcome:
    waits: list[float] = field(default_factory=list)
    instance_seconds: float = 0.0
    peak_instances: int = 0

    def percentile(self, q: float) -> float:
        if not self.waits:
            return 0.0
        ordered = sorted(self.waits)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def simulate(arrivals: list[tuple[float, float]], rules: Rules, start_up_s: float = START_UP_S,
             tail_s: float = 3600.0) -> Outcome:
    """Replays (arrival time, job seconds) pairs second by second, scaling decisions each minute,
    until `tail_s` after the last arrival and every job has run."""
    arrivals = sorted(arrivals)
    horizon = (arrivals[-1][0] if arrivals else 0.0) + tail_s
    queue: deque[tuple[float, float]] = deque()
    fleet: list[Instance] = []
    history: list[tuple[int, int, int]] = []
    desired = 0
    outcome = Outcome()
    next_arrival = 0
    t = 0.0
    while t <= horizon or queue or any(b > t for i in fleet if i.ended is None for b in i.busy_until):
        while next_arrival < len(arrivals) and arrivals[next_arrival][0] <= t:
            queue.append(arrivals[next_arrival])
            next_arrival += 1
        live = [i for i in fleet if i.ended is None]
        for inst in live:
            if inst.terminating and all(b <= t for b in inst.busy_until):
                inst.ended = t
        live = [i for i in fleet if i.ended is None]
        for inst in live:
            if inst.terminating or inst.ready > t:
                continue
            for w, busy in enumerate(inst.busy_until):
                if busy <= t and queue:
                    arrived, seconds = queue.popleft()
                    outcome.waits.append(t - arrived)
                    inst.busy_until[w] = t + seconds
        if t % 60 == 0:
            in_service = [i for i in live if not i.terminating and i.ready <= t]
            running = sum(1 for i in live for b in i.busy_until if b > t)
            history.append((len(queue) + running, len(queue), len(in_service)))
            desired = next_desired(rules, desired, history)
            active = [i for i in live if not i.terminating]
            for _ in range(desired - len(active)):
                fleet.append(Instance(t, t + start_up_s, [0.0] * rules.workers))
            surplus = len(active) - desired
            if surplus > 0:
                # Idle (or still booting) instances go first.
                for inst in sorted(active, key=lambda i: max(i.busy_until))[:surplus]:
                    inst.terminating = True
            outcome.peak_instances = max(outcome.peak_instances, desired, len(active))
        t += 1.0
    for inst in fleet:
        outcome.instance_seconds += (inst.ended if inst.ended is not None else t) - inst.launched
    return outcome


def job_seconds(rng: random.Random) -> float:
    lo, hi = AUDIO_MIN_RANGE
    minutes = math.exp(rng.uniform(math.log(lo), math.log(hi)))
    return JOB_FIXED_S + JOB_PER_AUDIO_MIN_S * minutes


def poisson_arrivals(rng: random.Random, start: float, end: float, per_hour) -> list[tuple[float, float]]:
    """Arrivals of a Poisson process whose rate per hour may vary with time (thinning)."""
    top = max(per_hour(t) for t in range(int(start), int(end), 60))
    out, t = [], start
    while True:
        t += rng.expovariate(top / 3600.0)
        if t >= end:
            return out
        if rng.random() < per_hour(t) / top:
            out.append((t, job_seconds(rng)))


def traces(seed: int = 1) -> dict[str, list[tuple[float, float]]]:
    rng = random.Random(seed)
    day = 24 * 3600.0
    # A working day: about 1,600 jobs, 180 an hour mid-afternoon, 15 an hour at night.
    steady = poisson_arrivals(
        rng, 0.0, day, lambda t: 15 + 165 * max(0.0, math.sin(math.pi * ((t / 3600 - 7) / 14))) ** 2)
    burst = [(rng.uniform(0, 600.0), job_seconds(rng)) for _ in range(500)]
    night = poisson_arrivals(rng, 0.0, 8 * 3600.0, lambda _t: 1.0)
    return {"steady day": steady, "burst: 500 jobs in 10 min": burst, "quiet night (8 h)": night}


def cost(instance_hours: float, on_demand_base: int, hours: float) -> tuple[float, float]:
    """All on-demand, and a base of on-demand instances with the rest on spot."""
    base_hours = min(instance_hours, on_demand_base * hours)
    return (instance_hours * ON_DEMAND_PER_HOUR,
            base_hours * ON_DEMAND_PER_HOUR + (instance_hours - base_hours) * SPOT_PER_HOUR)


def report(markdown: bool) -> str:
    lines = [
        f"Job time {JOB_FIXED_S} s + {JOB_PER_AUDIO_MIN_S} s per audio minute (mean {mean_job_s():.0f} s), "
        f"start-up {START_UP_S:.0f} s, latency goal {LATENCY_GOAL_S:.0f} s → backlog target "
        f"{derived_target()} per instance by arithmetic, {BACKLOG_TARGET} by the model (the template's default), "
        f"max {MAX_INSTANCES} instances, "
        f"{WORKERS_PER_INSTANCE} worker each; g4dn.xlarge ${ON_DEMAND_PER_HOUR}/h on demand, ${SPOT_PER_HOUR}/h spot.",
        "",
        "| trace | jobs | target | p50 wait | p95 wait | max wait | peak instances | instance-hours | cost, all on demand | cost, all spot (on-demand base 0) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, arrivals in traces().items():
        hours = (max(a for a, _ in arrivals) + 3600.0) / 3600.0
        for target in sorted({3, BACKLOG_TARGET, derived_target()}):
            out = simulate(arrivals, Rules(backlog_target=target))
            ih = out.instance_seconds / 3600.0
            od, spot = cost(ih, 0, hours)
            lines.append(
                f"| {name} | {len(arrivals)} | {target} | {out.percentile(0.5):.0f} s | {out.percentile(0.95):.0f} s "
                f"| {max(out.waits):.0f} s | {out.peak_instances} | {ih:.1f} | ${od:.2f} | ${spot:.2f} |")
    text = "\n".join(lines)
    return text if markdown else text.replace("|", " ")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", action="store_true")
    print(report(parser.parse_args().markdown))


if __name__ == "__main__":
    main()
