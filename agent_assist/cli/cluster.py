"""``agent-assist worker`` and ``agent-assist cluster`` (a whole cluster on one laptop)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

from agent_assist.asr.prompt_words import with_product_words
from agent_assist.asr.whisper import WhisperRecognizer
from agent_assist.cluster.private_servers import PrivateRedis
from agent_assist.cluster.worker import RecognitionWorker
from agent_assist.config import Config
from agent_assist.errors import ConfigError
from agent_assist.runtime.services import load_policy

log = logging.getLogger(__name__)


def add_cluster_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    w = sub.add_parser("worker", help="decode speech for gateways: jobs from [cluster] redis_url")
    w.add_argument("--redis", help="Redis URL (default: [cluster] redis_url)")
    w.add_argument("--name", default="", help="this worker's name (default: host and pid)")
    w.add_argument(
        "--calls", type=int, default=None,
        help="audio calls this worker takes (default: [cluster] worker_calls)",
    )  # fmt: skip
    c = sub.add_parser(
        "cluster", help="try a cluster locally: private Redis, 2 workers, one gateway"
    )
    c.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    c.add_argument("--port", type=int, default=None, help="the gateway's port")


def run_cluster_command(config: Config, args: argparse.Namespace) -> int:
    if args.command == "worker":
        config = _with_redis(config, args.redis)
        if args.calls is not None:
            if not 1 <= args.calls <= 10000:
                raise ConfigError("--calls", ["--calls: must be 1..10000"])
            config = replace(config, cluster=replace(config.cluster, worker_calls=args.calls))
        return run_worker(config, args.name)
    return asyncio.run(_local_cluster(config, args))


def _with_redis(config: Config, url: str | None) -> Config:
    if url:
        config = replace(config, cluster=replace(config.cluster, redis_url=url))
    if not config.cluster.redis_url:
        raise ConfigError("config.toml", ["cluster.redis_url: a worker needs Redis (or --redis)"])
    return config


def run_worker(config: Config, name: str = "") -> int:
    """Load the models of the worker's languages, then serve jobs until SIGTERM or SIGINT."""
    if config.cluster.worker_languages:
        served = {
            lang: lc
            for lang, lc in config.asr.languages.items()
            if lang in config.cluster.worker_languages
        }
        config = replace(config, asr=replace(config.asr, languages=served))
    catalog = load_policy(config).catalog
    recognizer = WhisperRecognizer(
        with_product_words(config.asr, catalog), config.resolve(config.models.dir), config.vad
    )
    worker = RecognitionWorker(recognizer, config, name)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())

    def ready() -> None:
        languages = ", ".join(worker.languages)
        print(f"agent-assist worker {worker.name} ready ({languages})", flush=True)

    worker.run(stop, on_ready=ready)
    return 0


async def _local_cluster(config: Config, args: argparse.Namespace) -> int:
    """A private Redis under ``var/cluster``, N worker processes, this process the gateway."""
    from agent_assist.runtime.services import build_services
    from agent_assist.server.app import AgentAssistServer

    folder = config.resolve("var/cluster/redis")
    redis_server = PrivateRedis(folder).start()
    config = _with_redis(config, redis_server.url)
    config_path = Path(args.config).resolve()
    command = [sys.executable, "-m", "agent_assist", "--config", str(config_path), "worker"]
    workers = [
        subprocess.Popen([*command, "--redis", redis_server.url, "--name", f"local-{i + 1}"])
        for i in range(args.workers)
    ]
    services = build_services(config)
    server = AgentAssistServer(services)
    try:
        host, port = await server.start(None, args.port)
        print(
            f"agent-assist cluster: gateway on http://{host}:{port}/, {args.workers} worker(s), "
            f"Redis at {redis_server.url} (Ctrl-C to stop)",
            flush=True,
        )
        await _until_interrupted()
    finally:
        await server.close()
        services.close()
        for proc in workers:
            proc.terminate()
        for proc in workers:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=15)
        redis_server.stop()
    return 0


async def _until_interrupted() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
