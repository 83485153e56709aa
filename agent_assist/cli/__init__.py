"""The ``agent-assist`` command line: the only place that parses arguments."""

from __future__ import annotations

from agent_assist.cli.main import main

__all__ = ["main"]
