"""Command line: ``agent-assist serve | replay | demo | mic | models | users | score |
report | analyze | worker | cluster``.

Supervisor commands (users, score, report) live in ``cli.supervision``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from agent_assist.audio.files import CallAudio, read_call_audio
from agent_assist.cli.cluster import add_cluster_commands, run_cluster_command
from agent_assist.clients.replay import ReplayResult, load_script, replay, replay_in_process
from agent_assist.config import Config, load_config
from agent_assist.core.events import LANGUAGES, LanguageChoice, language_of
from agent_assist.core.script import ScriptedCall
from agent_assist.errors import AgentAssistError, AudioInputError, ConfigError, ModelError
from agent_assist.model_files import install_model, read_manifest, verify_model
from agent_assist.runtime.services import build_services

if TYPE_CHECKING:
    from agent_assist.server.app import AgentAssistServer
from agent_assist.runtime.desk import CallDesk, build_archive
from agent_assist.supervision.accounts import configured_source_token

log = logging.getLogger("agent_assist")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("faster_whisper", "websockets", "spacy"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        config = load_config(Path(args.config))
        if args.command == "models":
            return _models(config, args.action)
        if args.command == "serve":
            return asyncio.run(_serve(config, args.host, args.port))
        if args.command == "replay":
            return asyncio.run(_replay(config, args))
        if args.command == "demo":
            return asyncio.run(_demo(config, args))
        if args.command in ("users", "score", "report"):
            from agent_assist.cli.supervision import run_supervisor_command

            return run_supervisor_command(config, args)
        if args.command == "analyze":
            return asyncio.run(_analyze(config, args))
        if args.command == "mic":
            return asyncio.run(_mic(config, args))
        if args.command in ("worker", "cluster"):
            return run_cluster_command(config, args)
    except AgentAssistError as err:
        print(f"agent-assist: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="agent-assist", description=__doc__)
    p.add_argument("--config", default="config.toml", help="config file (default: ./config.toml)")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="serve the console and the protocol until interrupted")
    s.add_argument("--host")
    s.add_argument("--port", type=int)
    r = sub.add_parser("replay", help="stream a recorded (audio) or scripted (.toml) call")
    r.add_argument("file", type=Path)
    r.add_argument(
        "--server",
        help="stream into this server (ws://HOST:PORT/ws); without it the call runs in-process",
    )
    r.add_argument("--fast", action="store_true", help="as fast as possible, not real time")
    r.add_argument("--language", choices=[*LANGUAGES, "auto"], default=None)
    r.add_argument("--events", type=Path, help="write every event, one JSON message per line")
    r.add_argument("--mono", choices=["agent", "customer"], help="a mono file is this speaker")
    r.add_argument("--swap", action="store_true", help="stereo file is customer left, agent right")
    r.add_argument(
        "--token",
        help="API token for the server (default: $AGENT_ASSIST_TOKEN, then [auth] source_token)",
    )
    r.add_argument("--agent", help="the agent this call belongs to (a user name)")
    r.add_argument(
        "--as",
        dest="platform",
        choices=["twilio", "audiohook", "freeswitch", "audiosocket"],
        help="send the recording the way this phone platform would, through its adapter",
    )
    d = sub.add_parser("demo", help="serve the console and replay the bundled sample calls")
    d.add_argument("--port", type=int)
    d.add_argument("--fast", action="store_true")
    d.add_argument("--exit", action="store_true", help="exit after the sample calls")
    d.add_argument(
        "--wait",
        type=float,
        default=10.0,
        help="seconds to wait for a console to connect before replaying",
    )
    mic = sub.add_parser("mic", help="stream the microphone as a live call until Ctrl-C")
    mic.add_argument("--server", help="ws:// URL (default: from config; else an embedded server)")
    mic.add_argument("--device", help="input device name or index (see --list)")
    mic.add_argument("--list", action="store_true", help="list input devices and exit")
    mic.add_argument("--rate", type=int, default=16000, help="capture rate (8000..48000)")
    mic.add_argument("--language", choices=[*LANGUAGES, "auto"], default=None)
    mic.add_argument(
        "--speaker",
        choices=["agent", "customer"],
        default="customer",
        help="whose voice a mono microphone carries (a stereo device: agent left, customer right)",
    )
    mic.add_argument("--stereo", action="store_true", help="capture two channels")
    add_cluster_commands(sub)
    m = sub.add_parser("models", help="install or verify the Whisper models (see models/)")
    m.add_argument("action", choices=["install", "verify"])
    from agent_assist.cli.supervision import add_supervisor_commands

    add_supervisor_commands(sub)
    a = sub.add_parser("analyze", help="run stored recordings through the pipeline; store, score")
    a.add_argument("paths", nargs="+", type=Path, help="recordings (or folders of them)")
    a.add_argument("--agent", help="the agent these calls belong to")
    a.add_argument("--language", choices=[*LANGUAGES, "auto"], default=None)
    a.add_argument("--mono", choices=["agent", "customer"], help="mono files are this speaker")
    a.add_argument("--swap", action="store_true", help="stereo is customer left, agent right")
    return p


def _models(config: Config, action: str) -> int:
    models_dir = config.resolve(config.models.dir)
    manifest = read_manifest(models_dir / "manifest.toml")
    wanted = {lc.model for lc in config.asr.languages.values()}
    if config.nlp.second_opinion:
        wanted.add(config.nlp.encoder)
    for name in sorted(wanted):
        spec = manifest.get(name)
        if spec is None:
            raise ModelError(f"model {name!r} from config.toml is not in the manifest")
        folder = (
            install_model(models_dir, spec)
            if action == "install"
            else verify_model(models_dir, spec)
        )
        print(f"{name}: ok ({folder})")
    return 0


async def _serve(config: Config, host: str | None, port: int | None) -> int:
    from agent_assist.server.app import AgentAssistServer

    services = build_services(config)
    server = AgentAssistServer(services)
    bound = await server.start(host, port)
    print(f"agent-assist serving on http://{bound[0]}:{bound[1]}/ (Ctrl-C to stop)", flush=True)
    try:
        await _until_interrupted()
    finally:
        await server.close()
        services.close()
    return 0


async def _replay(config: Config, args: argparse.Namespace) -> int:
    """Into the server named by ``--server``, else in-process (no socket at all)."""
    call = _load_call(args.file, args.mono, args.swap)
    if args.platform:
        return await _replay_as(config, args, call)
    language = args.language or config.asr.default_language
    sink: TextIO | None = args.events.open("w", encoding="utf-8") if args.events else None
    try:
        if args.server is None:
            result = await _replay_in_process(config, call, args, language, sink)
        else:
            result = await replay(
                args.server,
                call,
                language=language,
                fast=args.fast,
                events_out=sink,
                on_event=_print_event,
                token=args.token or configured_source_token(config.auth),
                agent=args.agent,
            )
        print(f"call {result.call_id}: {len(result.events)} events", file=sys.stderr)
    finally:
        if sink is not None:
            sink.close()
    return 0


async def _replay_in_process(
    config: Config,
    call: CallAudio | ScriptedCall,
    args: argparse.Namespace,
    language: LanguageChoice,
    sink: TextIO | None,
) -> ReplayResult:
    services = build_services(config, with_asr=isinstance(call, CallAudio))
    desk = CallDesk(services, build_archive(services))
    try:
        return await replay_in_process(
            desk,
            call,
            language=language,
            fast=args.fast,
            events_out=sink,
            on_event=_print_event,
            agent=args.agent,
        )
    finally:
        await desk.end_all("server_shutdown")
        services.close()


async def _replay_as(config: Config, args: argparse.Namespace, call: object) -> int:
    """``replay --as PLATFORM``: through a telephony adapter, watched by a console."""
    from agent_assist.server.app import AgentAssistServer
    from agent_assist.telephony.replay_as import enable_for_replay, replay_as

    if not isinstance(call, CallAudio):
        raise ConfigError("replay --as", ["phone platforms carry audio: give a recording"])
    base = args.server.split("/ws")[0] if args.server else ""
    embedded: AgentAssistServer | None = None
    token = args.token or configured_source_token(config.auth)
    audiosocket_port = None
    sink: TextIO | None = args.events.open("w", encoding="utf-8") if args.events else None
    try:
        if args.server is None:
            config = enable_for_replay(config, args.platform)
            embedded = AgentAssistServer(build_services(config, with_asr=True))
            bound_host, bound_port = await embedded.start(port=0)
            base = f"ws://{bound_host}:{bound_port}"
            if embedded.auth.user("replay-console") is None:
                embedded.auth.add_user("replay-console", "supervisor")
            token = embedded.auth.api_token("replay-console")
            audiosocket_port = embedded.telephony.audiosocket_port
        result = await replay_as(
            args.platform,
            base,
            call,
            config,
            console_token=token,
            audiosocket_port=audiosocket_port,
            language=args.language or config.asr.default_language,
            agent=args.agent,
            fast=args.fast,
            events_out=sink,
            on_event=_print_event,
        )
        print(f"call {result.call_id}: {len(result.events)} events", file=sys.stderr)
    finally:
        if sink is not None:
            sink.close()
        if embedded is not None:
            await embedded.close()
            embedded.services.close()
    return 0


async def _analyze(config: Config, args: argparse.Namespace) -> int:
    from agent_assist.clients.analyze import analyze

    outcomes = await analyze(
        config,
        args.paths,
        agent=args.agent,
        language=args.language,
        mono=args.mono,
        swap=args.swap,
    )
    counts = {k: sum(o.status == k for o in outcomes) for k in ("analyzed", "skipped", "failed")}
    print(
        f"{counts['analyzed']} analysed, {counts['skipped']} already done, "
        f"{counts['failed']} failed",
        file=sys.stderr,
    )
    return 1 if counts["failed"] else 0


async def _mic(config: Config, args: argparse.Namespace) -> int:
    from agent_assist.audio.mic import list_devices
    from agent_assist.clients.mic import stream_microphone

    if args.list:
        print(list_devices())
        return 0
    if not 8000 <= args.rate <= 48000:
        raise AudioInputError("--rate must be 8000..48000", code="audio.bad_input")
    from agent_assist.server.app import AgentAssistServer

    url = args.server or f"ws://{config.server.host}:{config.server.port}/ws"
    embedded: AgentAssistServer | None = None
    token = configured_source_token(config.auth)
    if not args.server and not await _answers(config.server.host, config.server.port):
        embedded = AgentAssistServer(build_services(config))
        host, port = await embedded.start(port=0)
        url, token = f"ws://{host}:{port}/ws", embedded.source_token_for()
    print(f"  streaming the microphone to {url} (Ctrl-C to end the call)", flush=True)
    try:
        await stream_microphone(
            url,
            rate=args.rate,
            speakers=("agent", "customer") if args.stereo else (args.speaker,),
            device=args.device,
            language=args.language or config.asr.default_language,
            until=_until_interrupted,
            on_event=_print_event,
            token=token,
        )
    finally:
        if embedded is not None:
            await embedded.close()
            embedded.services.close()
    return 0


def _load_call(path: Path, mono: str | None, swap: bool) -> CallAudio | ScriptedCall:
    if path.suffix.lower() == ".toml":
        return load_script(path)
    speakers = ("customer", "agent") if swap else ("agent", "customer")
    return read_call_audio(path, speakers, mono)  # type: ignore[arg-type]


async def _demo(config: Config, args: argparse.Namespace) -> int:
    from agent_assist.server.app import AgentAssistServer

    services = build_services(config)
    server = AgentAssistServer(services)
    try:
        host, port = await server.start(port=args.port)
    except OSError:
        log.warning("port %s is busy; using a free one", args.port or config.server.port)
        host, port = await server.start(port=0)
    base = f"http://{host}:{port}"
    token: str | None = None
    if config.auth.enabled:
        for name, role in (("demo-supervisor", "supervisor"), ("demo-agent", "agent")):
            if server.auth.user(name) is None:
                server.auth.add_user(name, role)
        wall = server.auth.signin_token("demo-supervisor")
        console = server.auth.signin_token("demo-agent")
        token = server.source_token_for("demo-source")
        print(
            f"\n  agent-assist is running at {base}/ (sign-in links below work once)\n"
            f"  supervisor (live wall, reviews):  {base}/login?token={wall}\n"
            f"  agent (console):                  {base}/login?token={console}\n",
            flush=True,
        )
    else:
        print(f"\n  agent-assist console: {base}/\n", flush=True)
    try:
        await _wait_for_console(server, args.wait)
        samples = resources.files("agent_assist") / "data" / "samples"
        for name in config.demo.calls:
            with resources.as_file(samples / f"{name}_call.flac") as path:
                audio = read_call_audio(path)
            print(f"  replaying the {name} sample call ({audio.duration_s:.0f} s) …", flush=True)
            await replay(
                f"ws://{host}:{port}/ws",
                audio,
                language=language_of(name) or "auto",
                title=f"demo ({name})",
                fast=args.fast,
                on_event=_print_event,
                token=token,
                agent="demo-agent" if token else None,
            )
            if not args.fast:
                await asyncio.sleep(3)
        if not args.exit:
            print("  sample calls done; still serving (Ctrl-C to stop)", flush=True)
            await _until_interrupted()
    finally:
        await server.close()
        services.close()
    return 0


async def _wait_for_console(server: AgentAssistServer, seconds: float) -> None:
    hub = server.services.hub
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline and not hub.has_subscribers():
        await asyncio.sleep(0.2)


def _print_event(msg: dict[str, object]) -> None:
    data = msg.get("data")
    if not isinstance(data, dict):
        return
    kind = msg.get("type")
    t = f"{int(msg.get('t_ms', 0)) / 1000:6.1f}s"  # type: ignore[call-overload]
    if kind == "transcript.final":
        print(f"  {t} {data['speaker']:>8}: {data['text']}", flush=True)
    elif kind == "suggestion":
        print(f"  {t} {'SUGGEST':>8}: [{data['kind']}] {data['offer']}: {data['line']}", flush=True)
    elif kind == "warning":
        print(f"  {t} {'WARNING':>8}: {data['title']} «{data['evidence']['quote']}»", flush=True)


async def _answers(host: str, port: int) -> bool:
    try:
        _reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 1.0)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


async def _until_interrupted() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()


if __name__ == "__main__":
    raise SystemExit(main())
