"""``make soak``: hours of a working floor squeezed into minutes, against a real server process.

8 sources loop calls at real pace (scripted turns by default, ``--mode audio`` for the
recorded samples through recognition); a wall watches every call without a break; a
console reconnects every ``--reconnect-s`` and fills its gaps by resuming; one source
drops its connection mid-call and resumes it within the grace window. At the end every
call in the store is checked: sequence numbers contiguous, and what the sources, the wall
and the console received equal to what was stored, with nothing twice. The server
process reports its memory, tasks and open files; the slope after warm-up is printed
with the other figures for ``BENCHMARKS.md``. Exit status 1 when a check fails.

    python -m bench.soak --minutes 30          # the full run (make soak)
    python -m bench.soak --minutes 2           # a proof that it works
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import signal
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "agent_assist" / "data" / "samples"
TOKEN = "soak-source-token-0123456789"


def envelope(type_: str, data: dict[str, Any], call_id: str | None = None) -> str:
    return json.dumps({"v": 1, "type": type_, "call_id": call_id, "seq": 0, "data": data})


# -- the server process ------------------------------------------------------------------


async def serve(config_path: Path, with_asr: bool) -> None:
    """Run inside the server process: serve, and print resource figures every 2 s."""
    from agent_assist.config import load_config
    from agent_assist.runtime.services import build_services
    from agent_assist.server.app import AgentAssistServer

    config = load_config(config_path)
    services = build_services(config, with_asr=with_asr)
    server = AgentAssistServer(services)
    host, port = await server.start("127.0.0.1", 0)
    print(f"SERVING {host}:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    while not stop.is_set():
        figures = {
            "t": time.monotonic(),
            "rss_kib": _rss_kib(),
            "tasks": len(asyncio.all_tasks()),
            "fds": len(os.listdir("/proc/self/fd")),
            "live_calls": len(server.calls),
            "task_kinds": _task_kinds(),
        }
        print("STATS " + json.dumps(figures), flush=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 2.0)
    await server.close()
    services.close()


def _task_kinds() -> dict[str, int]:
    """Tasks by coroutine name: what grew, when something did."""
    kinds: dict[str, int] = {}
    for task in asyncio.all_tasks():
        coro = task.get_coro()
        name = getattr(coro, "__qualname__", type(coro).__name__)
        kinds[name] = kinds.get(name, 0) + 1
    return kinds


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


# -- the floor -----------------------------------------------------------------------------


@dataclass
class Tally:
    calls: int = 0
    turns_sent: int = 0
    frames_sent: int = 0
    resumes: int = 0
    console_reconnects: int = 0
    by_source: dict[str, dict[int, str]] = field(default_factory=dict)  # call -> seq -> body
    by_wall: dict[str, dict[int, str]] = field(default_factory=dict)
    by_console: dict[str, dict[int, str]] = field(default_factory=dict)
    duplicates: list[str] = field(default_factory=list)
    wall_joined: float = 0.0
    started_at: dict[str, float] = field(default_factory=dict)


def note(into: dict[str, dict[int, str]], body: str, tally: Tally, who: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(body)
    call_id, seq = event.get("call_id"), event.get("seq", 0)
    if event["type"] in ("ready", "error") or not call_id or not seq:
        return event
    seen = into.setdefault(call_id, {})
    if seq in seen and who != "console":  # the console may see a seq again on a new connection
        tally.duplicates.append(f"{who} {call_id} #{seq}")
    seen[seq] = body
    return event


class Floor:
    def __init__(self, url: str, watch_url: str, args: argparse.Namespace) -> None:
        self.url, self.watch_url, self.args = url, watch_url, args
        self.tally = Tally()
        self.readers: set[asyncio.Task[None]] = set()
        self.until = time.monotonic() + args.minutes * 60
        from agent_assist.clients.replay import load_script

        self.scripts = [
            load_script(SAMPLES / "en_call.toml"),
            load_script(SAMPLES / "ja_call.toml"),
        ]
        self.audio: list[Any] = []
        if args.mode == "audio":
            from agent_assist.audio.files import read_call_audio

            self.audio = [read_call_audio(SAMPLES / f"{lang}_call.flac") for lang in ("en", "ja")]

    async def source(self, index: int) -> None:
        await asyncio.sleep(index * 1.5)  # calls start spread out, like a floor
        while time.monotonic() < self.until:
            await self.one_call(index, drop=index == 0)

    async def one_call(self, index: int, drop: bool) -> None:
        tally = self.tally
        ws = await connect(self.url, max_size=None)
        await ws.send(envelope("hello", {"role": "source"}))
        note(tally.by_source, await ws.recv(), tally, "source")
        script = self.scripts[(index + tally.calls) % len(self.scripts)]
        start: dict[str, Any] = {"language": script.language, "title": f"soak {index}"}
        start["mode"] = self.args.mode
        await ws.send(envelope("call.start", start))
        started = note(tally.by_source, await ws.recv(), tally, "source")
        call_id = started["call_id"]
        tally.calls += 1
        tally.started_at[call_id] = time.monotonic()
        reader = asyncio.create_task(self.read(ws, tally.by_source, "source"))
        t0 = time.monotonic()
        if self.args.mode == "audio":
            ws = await self.send_audio(ws, call_id, index, t0, drop, reader)
        else:
            ws = await self.send_turns(ws, call_id, script, t0, drop, reader)
        await ws.send(envelope("call.end", {}, call_id))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wait_ended(call_id), 60)
        await ws.close()

    async def wait_ended(self, call_id: str) -> None:
        while not any(
            '"type":"call.ended"' in b for b in self.tally.by_source.get(call_id, {}).values()
        ):
            await asyncio.sleep(0.1)

    async def send_turns(
        self,
        ws: ClientConnection,
        call_id: str,
        script: Any,
        t0: float,
        drop: bool,
        reader: asyncio.Task[None],
    ) -> ClientConnection:
        drop_at = len(script.turns) // 2 if drop else -1
        for i, turn in enumerate(script.turns):
            await asyncio.sleep(max(0.0, t0 + turn.end_ms / 1000 - time.monotonic()))
            if i == drop_at:
                ws = await self.drop_and_resume(ws, call_id, reader)
            data = {"speaker": turn.speaker, "text": turn.text, "end_ms": turn.end_ms}
            await ws.send(
                json.dumps(
                    {"v": 1, "type": "turn", "call_id": call_id, "seq": 0}
                    | {"t_ms": turn.start_ms, "data": data}
                )
            )
            self.tally.turns_sent += 1
        return ws

    async def send_audio(
        self,
        ws: ClientConnection,
        call_id: str,
        index: int,
        t0: float,
        drop: bool,
        reader: asyncio.Task[None],
    ) -> ClientConnection:
        from agent_assist.protocol import audio_frame

        audio = self.audio[(index + self.tally.calls) % len(self.audio)]
        step = audio.sample_rate // 50
        total = len(audio.pcm16)
        drop_at = (total // step) // 2 if drop else -1
        for i, at in enumerate(range(0, total, step)):
            await asyncio.sleep(max(0.0, t0 + i * 0.02 - time.monotonic()))
            if i == drop_at:
                ws = await self.drop_and_resume(ws, call_id, reader)
            block = audio.pcm16[at : at + step]
            for channel in range(block.shape[1]):
                await ws.send(audio_frame(channel, block[:, channel].astype("<i2").tobytes()))
            self.tally.frames_sent += 1
        return ws

    async def drop_and_resume(
        self, ws: ClientConnection, call_id: str, reader: asyncio.Task[None]
    ) -> ClientConnection:
        """The network drops for a second; the source resumes from what it last saw."""
        ws.transport.abort()
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        await asyncio.sleep(1.0)
        seen = self.tally.by_source.get(call_id, {})
        again = await connect(self.url, max_size=None)
        resume = {"call_id": call_id, "after_seq": max(seen, default=0)}
        await again.send(envelope("hello", {"role": "source", "resume": resume}))
        ready = json.loads(await again.recv())
        if ready["type"] != "ready":
            raise RuntimeError(f"resume refused: {ready}")
        self.tally.resumes += 1
        self.readers.add(asyncio.create_task(self.read(again, self.tally.by_source, "source")))
        return again

    async def read(self, ws: ClientConnection, into: dict[str, dict[int, str]], who: str) -> None:
        with contextlib.suppress(Exception):
            async for body in ws:
                note(into, str(body), self.tally, who)

    async def wall(self) -> None:
        ws = await connect(self.watch_url, max_size=None)
        await ws.send(envelope("hello", {"role": "console", "subscribe": "*"}))
        self.tally.wall_joined = time.monotonic()
        try:
            await self.read(ws, self.tally.by_wall, "wall")
        finally:
            await ws.close()

    async def console(self) -> None:
        """Reconnects every few minutes; after each, resumes every call it saw unfinished."""
        while time.monotonic() < self.until + 30:
            ws = await connect(self.watch_url, max_size=None)
            await ws.send(envelope("hello", {"role": "console", "subscribe": "*"}))
            reader = asyncio.create_task(self.read(ws, self.tally.by_console, "console"))
            try:
                await self.fill_gaps()
                await asyncio.sleep(self.args.reconnect_s * random.uniform(0.8, 1.2))
            finally:
                await ws.close()
                await reader
            self.tally.console_reconnects += 1

    async def fill_gaps(self) -> None:
        for call_id, seen in list(self.tally.by_console.items()):
            if any('"type":"call.ended"' in b for b in seen.values()):
                continue
            resume = {"call_id": call_id, "after_seq": max(seen, default=0)}
            async with connect(self.watch_url, max_size=None) as ws:
                hello = {"role": "console", "subscribe": call_id, "resume": resume}
                await ws.send(envelope("hello", hello))
                with contextlib.suppress(TimeoutError):
                    async for body in _with_timeout(ws, 2.0):
                        note(self.tally.by_console, body, self.tally, "console")


async def _with_timeout(ws: ClientConnection, idle_s: float) -> Any:
    while True:
        yield str(await asyncio.wait_for(ws.recv(), idle_s))


# -- the run -------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> int:
    work = Path(tempfile.mkdtemp(prefix="agent-assist-soak-"))
    db = work / "soak.sqlite3"
    text = (REPO / "config.toml").read_text(encoding="utf-8")
    text = text.replace('path = "var/agent-assist.sqlite3"', f'path = "{db}"')
    text = text.replace('dir = "models"', f'dir = "{REPO / "models"}"')
    text = text.replace('source_token = ""', f'source_token = "{TOKEN}"')
    # reliability, not capacity: admission control must not refuse the 8 looping sources
    text = re.sub(r"(?m)^max_calls = \d+", "max_calls = 64", text)
    text = re.sub(r"(?m)^refuse_lag_ms = \d+", "refuse_lag_ms = 0", text)
    config = work / "config.toml"
    config.write_text(text, encoding="utf-8")

    from agent_assist.store.sqlite import SqliteStore
    from agent_assist.supervision.accounts import Authenticator

    store = SqliteStore(db)
    auth = Authenticator(store)
    auth.add_user("wall", "supervisor")
    watch_token = auth.api_token("wall")
    store.close()

    env = {k: v for k, v in os.environ.items() if k != "AGENT_ASSIST_TOKEN"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.soak", "--serve", str(config), "--mode", args.mode,
        stdout=asyncio.subprocess.PIPE, cwd=REPO, env=env,
    )  # fmt: skip
    assert proc.stdout is not None
    stats: list[dict[str, Any]] = []
    address = ""
    while not address:
        line = (await asyncio.wait_for(proc.stdout.readline(), 300)).decode()
        if not line:
            print("soak: the server did not start", file=sys.stderr)
            return 1
        if m := re.match(r"SERVING (\S+)", line):
            address = m.group(1)

    async def read_stats() -> None:
        assert proc.stdout is not None
        while line := (await proc.stdout.readline()).decode():
            if line.startswith("STATS "):
                stats.append(json.loads(line[6:]))

    stats_task = asyncio.create_task(read_stats())
    await asyncio.sleep(2.5)
    baseline = stats[-1] if stats else {}
    floor = Floor(
        f"ws://{address}/ws?token={TOKEN}", f"ws://{address}/ws?token={watch_token}", args
    )
    print(f"soak: {args.calls} {args.mode} calls at real pace for {args.minutes} min on {address}")
    wall = asyncio.create_task(floor.wall())
    console = asyncio.create_task(floor.console())
    await asyncio.sleep(0.5)
    await asyncio.gather(*(floor.source(i) for i in range(args.calls)))
    await asyncio.sleep(3.0)  # let the wall and the console drain
    await floor.fill_gaps()
    console.cancel()
    wall.cancel()
    for task in (console, wall):
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await asyncio.sleep(4.5)
    after = stats[-1] if stats else {}
    proc.send_signal(signal.SIGTERM)
    await proc.wait()
    await stats_task
    return report(args, db, floor.tally, stats, baseline, after)


def report(
    args: argparse.Namespace,
    db: Path,
    tally: Tally,
    stats: list[dict[str, Any]],
    baseline: dict[str, Any],
    after: dict[str, Any],
) -> int:
    with sqlite3.connect(db) as conn:
        stored: dict[str, dict[int, str]] = {}
        for call_id, seq, body in conn.execute("SELECT call_id, seq, body FROM events"):
            stored.setdefault(call_id, {})[seq] = body
        reasons = dict(conn.execute("SELECT call_id, end_reason FROM calls").fetchall())
    problems = list(tally.duplicates)
    for call_id, events in stored.items():
        if sorted(events) != list(range(1, len(events) + 1)):
            problems.append(f"{call_id}: sequence gap in the store")
        for who, got in (("source", tally.by_source), ("console", tally.by_console)):
            if got.get(call_id) != events:
                missing = len(set(events) - set(got.get(call_id, {})))
                problems.append(
                    f"{call_id}: {who} got {len(got.get(call_id, {}))}, missing {missing}"
                )
        if (
            tally.started_at.get(call_id, 0) >= tally.wall_joined
            and tally.by_wall.get(call_id) != events
        ):
            problems.append(f"{call_id}: the wall got {len(tally.by_wall.get(call_id, {}))}")
        if reasons.get(call_id) != "hangup":
            problems.append(f"{call_id}: ended {reasons.get(call_id)!r}, not by hang-up")
    n_stored = sum(len(e) for e in stored.values())
    n_source = sum(len(e) for e in tally.by_source.values())
    n_console = sum(len(e) for e in tally.by_console.values())
    n_wall = sum(len(e) for c, e in tally.by_wall.items() if c in stored)
    warm = [s for s in stats if s["t"] >= stats[0]["t"] + args.minutes * 60 * 0.2] if stats else []
    slope = _slope([(s["t"] / 60, s["rss_kib"] / 1024) for s in warm])
    peak_tasks = max((s["tasks"] for s in stats), default=0)
    lines = [
        f"soak: {args.minutes} min, {args.calls} {args.mode} calls looping at real pace",
        f"  calls {tally.calls} (stored {len(stored)}), turns sent {tally.turns_sent}, "
        f"audio frames sent {tally.frames_sent}",
        f"  events stored {n_stored} = received by sources {n_source} = by the reconnecting "
        f"console {n_console}; the wall {n_wall} (calls started after it joined: all)",
        f"  source drops resumed {tally.resumes}; console reconnects {tally.console_reconnects}",
        f"  server memory after warm-up: {warm[0]['rss_kib'] / 1024 if warm else 0:.1f} -> "
        f"{warm[-1]['rss_kib'] / 1024 if warm else 0:.1f} MiB, slope {slope:+.2f} MiB/min",
        f"  tasks idle before {baseline.get('tasks')} / after {after.get('tasks')} "
        f"(peak {peak_tasks}); open files idle before {baseline.get('fds')} / after "
        f"{after.get('fds')}",
        f"  problems: {len(problems)}",
    ]
    print("\n".join(lines))
    for p in problems[:20]:
        print(f"  - {p}")
    grew = after.get("tasks", 0) > baseline.get("tasks", 0) or after.get("fds", 0) > baseline.get(
        "fds", 0
    )
    if grew:
        print("  - tasks or open files grew between the idle moments before and after")
        print(f"    tasks before {baseline.get('task_kinds')}\n    after {after.get('task_kinds')}")
    return 1 if problems or grew or not stored else 0


def _slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (x, y) points; 0 with fewer than two."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    var = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / var if var else 0.0


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n")[0])
    p.add_argument("--minutes", type=float, default=30.0)
    p.add_argument("--calls", type=int, default=8)
    p.add_argument("--mode", choices=["text", "audio"], default="text")
    p.add_argument("--reconnect-s", type=float, default=180.0, help="console reconnect period")
    p.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.serve:
        asyncio.run(serve(args.serve, with_asr=args.mode == "audio"))
        return 0
    if args.minutes < 5 and args.reconnect_s == 180.0:
        args.reconnect_s = max(20.0, args.minutes * 60 / 4)  # a short run still reconnects
    return asyncio.run(run(args))


if __name__ == "__main__":
    raise SystemExit(main())
