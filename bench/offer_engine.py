"""Micro-benchmark: the offer and compliance engine per event, without signal detection.

Signals are captured once from the scripted calls (the spaCy detector runs only then);
the timed loop replays them through call state, offer engine and compliance with a
detector that returns the captured signals, so the figure is the engine's own cost.

    .venv/bin/python -m bench.offer_engine [--rounds 200]
"""

from __future__ import annotations

import argparse
import statistics
import time
import tomllib
from pathlib import Path

from agent_assist.config import load_config
from agent_assist.core.events import SignalDetected, TranscriptFinal
from agent_assist.core.script import ScriptedCall, parse_script
from agent_assist.core.session import CallSession, play_script
from agent_assist.crm import FileCustomerDirectory
from agent_assist.nlp.detector import build_detector
from agent_assist.runtime.services import load_policy

REPO = Path(__file__).resolve().parent.parent


class CapturedDetector:
    """Answers each utterance with the signals the real detector found for it."""

    def __init__(self) -> None:
        self.by_key: dict[tuple[str, str], list[SignalDetected]] = {}

    def feed(self, final: TranscriptFinal) -> list[SignalDetected]:
        return self.by_key.get((final.utterance_id, final.text), [])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    config = load_config(REPO / "config.toml")
    book = load_policy(config)
    crm = FileCustomerDirectory.load(None, book.catalog)
    real = build_detector()
    captured = CapturedDetector()
    scripts: list[ScriptedCall] = []
    for path in sorted((REPO / "tests" / "calls").glob("*.toml")):
        script = parse_script(tomllib.loads(path.read_text(encoding="utf-8")), path.name)
        scripts.append(script)
        for i, turn in enumerate(script.turns, start=1):
            final = TranscriptFinal(
                "c",
                turn.start_ms,
                f"{turn.speaker}-{i:04d}",
                turn.speaker,
                turn.end_ms,
                script.language,
                turn.text,
            )
            captured.by_key[(final.utterance_id, final.text)] = real.feed(final)
    per_event: list[float] = []
    events_in = 0
    for _ in range(args.rounds):
        start = time.perf_counter_ns()
        n = 0
        for script in scripts:
            session = CallSession(captured, book, script.language, today=script.date)  # type: ignore[arg-type]
            if script.customer_id:
                session.link_customer("c", script.customer_id, crm.lookup(script.customer_id))
            play_script(session, script, "c")
            n += len(script.turns) + len(script.feedback)
        per_event.append((time.perf_counter_ns() - start) / n / 1000)
        events_in = n
    print(
        f"offer engine: {len(scripts)} scripted calls, {events_in} input events per round, "
        f"{args.rounds} rounds"
    )
    print(
        f"  per event: median {statistics.median(per_event):.1f} µs, "
        f"p95 {sorted(per_event)[int(0.95 * len(per_event))]:.1f} µs, "
        f"min {min(per_event):.1f} µs (includes session set-up and CRM linking)"
    )


if __name__ == "__main__":
    main()
