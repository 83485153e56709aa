"""One registry of error codes: the code, whose fault, when. Docs and sources agree with it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from agent_assist.errors import CODES, AgentAssistError, CallError, RequestError

ROOT = Path(__file__).resolve().parent.parent


def _doc_table() -> dict[str, tuple[str, str]]:
    text = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
    table = text[text.index("| code | fault | when |") :].split("\n\n", 1)[0]
    rows = {}
    for line in table.splitlines()[2:]:
        code, fault, when = (cell.strip() for cell in line.strip("|").split("|", 2))
        rows[code.strip("`")] = (fault, when)
    return rows


def test_the_protocol_documents_every_wire_code_as_registered() -> None:
    registered = {c.code: (c.fault, c.when) for c in CODES.values() if c.wire}
    assert _doc_table() == registered


def test_every_code_raised_or_answered_in_the_sources_is_registered() -> None:
    pattern = re.compile(r'\bcode(?:=|\s*=\s*|"\s*:\s*)"([a-z_]+\.[a-z_]+)"')
    used = set()
    for path in (ROOT / "agent_assist").rglob("*.py"):
        used |= set(pattern.findall(path.read_text(encoding="utf-8")))
    assert used, "the pattern finds the codes"
    assert sorted(used - set(CODES)) == []


def test_fault_comes_from_the_registry_not_the_class() -> None:
    assert AgentAssistError("x", code="call.unknown").fault == "client"
    assert CallError("x").fault == "client"
    assert RequestError("x", code="score.bad_value").fault == "client"
    assert AgentAssistError("boom").fault == "server"


def test_an_unregistered_code_is_refused_when_raised() -> None:
    with pytest.raises(ValueError, match="not registered"):
        AgentAssistError("x", code="made.up")
