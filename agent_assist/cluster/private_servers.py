"""Private Redis and PostgreSQL servers in a folder of their own, on 127.0.0.1.

Used by the local cluster command (``agent-assist cluster``) and by the tests: each
starts on a free port, keeps every file in its folder, and is stopped by ``stop()``.
Nothing here is for production; a real floor runs the distribution's services.

PostgreSQL refuses to run as root, so when this process is root the cluster is
initialised and run as the system user ``agentassist-test`` (created when missing).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from agent_assist.errors import AgentAssistError

PG_USER = "agentassist-test"


class PrivateServerError(AgentAssistError):
    code = "cluster.private_server"
    fault = "setup"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_binary(name: str) -> str:
    """``name`` on PATH, else under ``/usr/lib/postgresql/*/bin`` (Debian keeps it there)."""
    found = shutil.which(name)
    if found:
        return found
    for candidate in sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True):
        return candidate
    raise PrivateServerError(
        f"{name} is not installed: run `scripts/setup.sh test` (installs redis-server and "
        "postgresql from Debian)",
        code="cluster.not_installed",
    )


def _wait_port(port: int, timeout_s: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            break
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise PrivateServerError(f"server on port {port} did not start")


class PrivateRedis:
    """``redis-server`` on a free loopback port; ``aof=True`` keeps writes across restarts."""

    def __init__(self, folder: Path | None = None, *, aof: bool = False) -> None:
        self._own_folder = folder is None
        self.folder = folder or Path(tempfile.mkdtemp(prefix="agent-assist-redis-"))
        self.folder.mkdir(parents=True, exist_ok=True)
        self.aof = aof
        self.port = free_port()
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> PrivateRedis:
        args = [
            find_binary("redis-server"),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.folder),
            "--save", "",
            "--daemonize", "no",
            "--logfile", str(self.folder / "redis.log"),
            "--appendonly", "yes" if self.aof else "no",
        ]  # fmt: skip
        if self.aof:
            args += ["--appendfsync", "always"]
        self._proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_port(self.port, 10, self._proc)
        return self

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def remove(self) -> None:
        """Stop, and delete the folder when this object made it."""
        self.stop()
        if self._own_folder:
            shutil.rmtree(self.folder, ignore_errors=True)


class PrivatePostgres:
    """A throw-away PostgreSQL cluster (``initdb``) on a free port, trust auth on loopback."""

    def __init__(self, folder: Path | None = None) -> None:
        self._own_folder = folder is None
        self.folder = folder or Path(tempfile.mkdtemp(prefix="agent-assist-pg-"))
        self.port = free_port()
        self._uid: int | None = None
        self._gid: int | None = None
        if os.geteuid() == 0:
            self._uid, self._gid = _system_user(PG_USER)
            os.chown(self.folder, self._uid, self._gid)
        self.data = self.folder / "data"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, args: list[str]) -> None:
        result = subprocess.run(
            args, user=self._uid, group=self._gid, capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise PrivateServerError(f"{' '.join(args[:2])} failed: {result.stderr[-800:]}")

    def start(self) -> PrivatePostgres:
        if not self.data.exists():
            self._run(
                [
                    find_binary("initdb"),
                    "-D", str(self.data),
                    "-U", "postgres",
                    "--auth=trust",
                    "-E", "UTF8",
                    "--no-locale",
                    "--no-sync",
                ]
            )  # fmt: skip
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run(
            [
                find_binary("pg_ctl"),
                "-D", str(self.data),
                "-o", options,
                "-l", str(self.folder / "postgres.log"),
                "-w",
                "-t", "30",
                "start",
            ]
        )  # fmt: skip
        return self

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run([find_binary("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"])

    def remove(self) -> None:
        """Stop, and delete the cluster's folder when this object made it."""
        self.stop()
        if self._own_folder:
            shutil.rmtree(self.folder, ignore_errors=True)

    def create_database(self, name: str) -> str:
        """A fresh database; returns its URL."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"


def _system_user(name: str) -> tuple[int, int]:
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
            check=True,
            capture_output=True,
        )
        entry = pwd.getpwnam(name)
    return entry.pw_uid, entry.pw_gid
