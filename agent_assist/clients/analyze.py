"""Batch analysis: stored recordings through the live pipeline, stored and scored.

Each file goes through the live pipeline in-process exactly as a live call would (same
call desk, VAD, recognition, signals, policy, storage and archive; no server, no socket),
as fast as the machine decodes. A file is known by the SHA-256 of its bytes, so
re-running skips what was already analysed; a missing or corrupt file is reported and
skipped, and the rest go on.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TextIO

from agent_assist.audio.files import CallAudio, read_call_audio
from agent_assist.clients.replay import load_script, replay_in_process
from agent_assist.config import Config
from agent_assist.core.events import LanguageChoice
from agent_assist.core.script import ScriptedCall
from agent_assist.errors import AgentAssistError
from agent_assist.runtime.desk import CallDesk, build_archive
from agent_assist.runtime.services import build_services, now_iso
from agent_assist.supervision.review import Supervision

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".m4a", ".opus", ".aiff", ".toml")


@dataclass(frozen=True)
class Outcome:
    path: Path
    status: Literal["analyzed", "skipped", "failed"]
    call_id: str | None
    message: str
    score: float | None = None


def expand(paths: Iterable[Path]) -> list[Path]:
    """Files as given; folders become their recordings (sorted, not recursive)."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out += sorted(c for c in p.iterdir() if c.suffix.lower() in AUDIO_SUFFIXES)
        else:
            out.append(p)
    return out


def load_call(path: Path, mono: str | None, swap: bool) -> CallAudio | ScriptedCall:
    if path.suffix.lower() == ".toml":
        return load_script(path)
    speakers = ("customer", "agent") if swap else ("agent", "customer")
    return read_call_audio(path, speakers, mono)  # type: ignore[arg-type]


class Progress:
    """One line per file; a live bar on a terminal."""

    def __init__(self, total: int, out: TextIO) -> None:
        self.total, self.out = total, out
        self.tty = out.isatty()
        self.index = 0
        self.name = ""

    def start(self, index: int, path: Path) -> None:
        self.index, self.name = index, path.name
        self.bar(0.0)

    def bar(self, fraction: float) -> None:
        if not self.tty:
            return
        filled = round(24 * min(1.0, max(0.0, fraction)))
        self.out.write(
            f"\r[{self.index}/{self.total}] {self.name[:40]:<40} "
            f"{'█' * filled}{'░' * (24 - filled)} {fraction:4.0%}"
        )
        self.out.flush()

    def done(self, outcome: Outcome) -> None:
        if self.tty:
            self.out.write("\r\033[K")
        extra = f" score {outcome.score:.1f}" if outcome.score is not None else ""
        call = f" {outcome.call_id}" if outcome.call_id else ""
        self.out.write(
            f"[{self.index}/{self.total}] {outcome.status:<8} {outcome.path}{call}{extra}"
            f"{': ' + outcome.message if outcome.message else ''}\n"
        )
        self.out.flush()


async def analyze(
    config: Config,
    paths: Sequence[Path],
    *,
    agent: str | None = None,
    language: LanguageChoice | None = None,
    mono: str | None = None,
    swap: bool = False,
    out: TextIO = sys.stderr,
    store_path: Path | None = None,
) -> list[Outcome]:
    files = expand(paths)
    needs_asr = any(f.suffix.lower() != ".toml" for f in files)
    services = build_services(config, with_asr=needs_asr, store_path=store_path)
    desk = CallDesk(services, build_archive(services))
    store = services.store
    supervision = Supervision(store, config)
    progress = Progress(len(files), out)
    outcomes: list[Outcome] = []
    try:
        for index, path in enumerate(files, start=1):
            progress.start(index, path)
            outcome = await _one(desk, supervision, path, agent, language, mono, swap, progress)
            if outcome.status == "analyzed" and outcome.call_id:
                store.mark_analyzed(_digest(path), str(path), outcome.call_id, now_iso())
            outcomes.append(outcome)
            progress.done(outcome)
    finally:
        await desk.end_all("server_shutdown")
        services.close()
    return outcomes


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


async def _one(
    desk: CallDesk,
    supervision: Supervision,
    path: Path,
    agent: str | None,
    language: LanguageChoice | None,
    mono: str | None,
    swap: bool,
    progress: Progress,
) -> Outcome:
    try:
        digest = _digest(path)
    except OSError as exc:
        return Outcome(path, "failed", None, f"cannot read: {exc.strerror or exc}")
    done = supervision.store.analyzed_call(digest)
    if done is not None:
        return Outcome(path, "skipped", done, "already analysed")
    try:
        call = load_call(path, mono, swap)
    except AgentAssistError as err:
        return Outcome(path, "failed", None, f"[{err.code}] {err.message}")
    duration_ms = max(
        1,
        round(call.duration_s * 1000)
        if isinstance(call, CallAudio)
        else max(t.end_ms for t in call.turns),
    )

    def on_event(msg: dict[str, Any]) -> None:
        if msg.get("type") == "transcript.final":
            progress.bar(int(msg["data"]["end_ms"]) / duration_ms)

    try:
        result = await replay_in_process(
            desk,
            call,
            language=language or desk.services.config.asr.default_language,
            title=path.name,
            fast=True,
            agent=agent,
            on_event=on_event,
        )
    except AgentAssistError as err:
        return Outcome(path, "failed", None, f"[{err.code}] {err.message}")
    score = supervision.score(result.call_id)
    return Outcome(path, "analyzed", result.call_id, "", score.total)
