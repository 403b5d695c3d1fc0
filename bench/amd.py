"""Answering-machine detection: accuracy and decision time of our detector (``voice.amd``: silero per 32 ms
window, greeting length and cadence, the beep tracker) on the synthesised set, against a baseline measured in the
same run on the same audio: the same decision rules over a plain energy VAD (a window is speech when its level is
above -40 dBFS), i.e. what the silero model buys.

    .venv/bin/python -m bench.amd [--rate 8000] [--sets clean,fast,slow,noisy]

The set (``tests.support.amd_corpus``): hibari speaks six people's hellos and six voicemail greetings (each followed
by a beep of 440-1,800 Hz), through μ-law 8 kHz, with line hiss. Variants: ``clean`` (normal speed, -60 dBFS
hiss), ``fast`` (x1.15), ``slow`` (x0.9), ``noisy`` (-40 dBFS hiss under everything),
``loud-line`` (-30 dBFS hiss: a bad line or a noisy room). Decision time is audio time
from the answer to the verdict (what a callee waits; the same on any machine); "beep error" is |where we would
start the message - where the beep ended|. CPU: process time to analyse the audio, as x real time (higher is
better), and calls analysed per CPU second. Peak RSS is the process's.
"""

from __future__ import annotations

import argparse
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from bench._support import load_average, pct, table
from models.enums import AnsweredBy
from tests.support.amd_corpus import AmdCase, amd_cases, at_rate
from voice.amd.detector import AnsweringMachineDetector
from voice.amd.silero_frames import WINDOW_SAMPLES, SileroFrames

SETS: dict[str, dict[str, float]] = {
    "clean": {"speed": 1.0, "noise": 30.0},
    "fast": {"speed": 1.15, "noise": 30.0},
    "slow": {"speed": 0.9, "noise": 30.0},
    "noisy": {"speed": 1.0, "noise": 300.0},
    "loud-line": {"speed": 1.0, "noise": 1000.0},
}


class EnergyFrames:
    """The baseline's VAD: speech when the window is louder than ``threshold_dbfs``."""

    def __init__(self, threshold_dbfs: float = -40.0) -> None:
        self._threshold = 10 ** (threshold_dbfs / 20)

    def probability(self, window: npt.NDArray[np.float32]) -> float:
        return 1.0 if float(np.sqrt(np.mean(window.astype(np.float64) ** 2))) >= self._threshold else 0.0


@dataclass
class Outcome:
    case: AmdCase
    answered_by: AnsweredBy
    decision_ms: int
    beep_error_ms: int | None
    cpu_s: float
    audio_s: float


Detector = Callable[[int], AnsweringMachineDetector]


def ours(rate: int) -> AnsweringMachineDetector:
    vad = SileroFrames(rate)
    return AnsweringMachineDetector(rate, vad.window, vad.probability)


def baseline(rate: int) -> AnsweringMachineDetector:
    return AnsweringMachineDetector(rate, WINDOW_SAMPLES[rate], EnergyFrames().probability)


def run(make: Detector, case: AmdCase, rate: int) -> Outcome:
    pcm = at_rate(case.pcm, rate)
    step = rate // 50  # 20 ms, as a media stream delivers it
    started = time.process_time()
    detector = make(rate)
    for i in range(0, len(pcm), step):
        detector.push(pcm[i : i + step])
        decision = detector.decision
        if detector.cue is not None or (decision is not None and decision.answered_by is not AnsweredBy.MACHINE):
            break
    cpu = time.process_time() - started
    decision = detector.decision
    assert decision is not None
    beep_error = None
    if case.beep_end_ms is not None and detector.cue is not None:
        beep_error = abs(detector.cue.at_ms - case.beep_end_ms)
    return Outcome(case, decision.answered_by, decision.decision_ms, beep_error, cpu, detector.heard_ms / 1000)


def row(name: str, outcomes: list[Outcome]) -> list[object]:
    right = sum(o.answered_by is o.case.expected for o in outcomes)
    humans = [o.decision_ms for o in outcomes if o.case.expected is AnsweredBy.HUMAN]
    machines = [o.decision_ms for o in outcomes if o.case.expected is AnsweredBy.MACHINE]
    every = humans + machines
    beeps = [o.beep_error_ms for o in outcomes if o.case.expected is AnsweredBy.MACHINE]
    found = [b for b in beeps if b is not None]
    cpu = sum(o.cpu_s for o in outcomes)
    audio = sum(o.audio_s for o in outcomes)
    return [
        name,
        f"{right}/{len(outcomes)} ({right / len(outcomes):.0%})",
        f"{pct(every, 50):.0f} / {pct(every, 99):.0f}",
        f"{pct(humans, 50):.0f} / {pct(humans, 99):.0f}",
        f"{pct(machines, 50):.0f} / {pct(machines, 99):.0f}",
        f"{len(found)}/{len(beeps)}, max {max(found) if found else float('nan'):.0f} ms",
        f"{audio / cpu:.0f}x" if cpu else "-",
        f"{len(outcomes) / cpu:.0f}" if cpu else "-",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=int, choices=(8000, 16000), default=8000)
    parser.add_argument("--sets", default=",".join(SETS))
    args = parser.parse_args()
    names = [n.strip() for n in args.sets.split(",") if n.strip()]
    print(f"AMD bench at {args.rate} Hz ({load_average()})")
    started = time.perf_counter()
    corpus = {name: amd_cases(**SETS[name]) for name in names}
    print(f"synthesised {sum(len(v) for v in corpus.values())} calls in {time.perf_counter() - started:.1f} s")
    ours(args.rate).push(np.zeros(args.rate, dtype=np.int16))  # load the model before timing
    header = [
        "detector / set",
        "accuracy",
        "decision ms p50/p99",
        "humans p50/p99",
        "machines p50/p99",
        "beeps found, cue error",
        "CPU x realtime",
        "calls/CPU s",
    ]
    rows: list[list[object]] = []
    totals: dict[str, list[Outcome]] = {"ours": [], "baseline (energy VAD)": []}
    for name, cases in corpus.items():
        for label, make in (("ours", ours), ("baseline (energy VAD)", baseline)):
            outcomes = [run(make, case, args.rate) for case in cases]
            totals[label] += outcomes
            rows.append(row(f"{label} / {name}", outcomes))
            wrong = [f"{o.case.name}->{o.answered_by.value}" for o in outcomes if o.answered_by is not o.case.expected]
            if wrong:
                print(f"  {label} / {name} wrong: {', '.join(wrong)}")
    for label, outcomes in totals.items():
        rows.append(row(f"{label} / all", outcomes))
    print(table(header, rows))
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
