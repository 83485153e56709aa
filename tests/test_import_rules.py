"""The rings, checked: who may import whom, read from every module's import statements.

- ``core`` imports nothing of agent-assist outside ``core`` (``errors`` aside: codes only);
- adapters (``asr``, ``audio``, ``nlp``, ``store``, ``crm``, ``cluster``) import no runtime, server,
  supervision, clients or CLI;
- nothing imports ``server`` except the CLI (and the tests);
- ``supervision`` loads no language model (no spaCy, no ``nlp``);
- only the composition root and the commands that open the database name ``SqliteStore``.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "agent_assist"
ADAPTERS = ("asr", "audio", "nlp", "store", "crm", "cluster")
OUTER = ("runtime", "server", "supervision", "clients", "cli")


def _imports() -> dict[str, set[str]]:
    """Module name -> every module it imports (absolute, at any depth in the file)."""
    out: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module)
                found |= {f"{node.module}.{a.name}" for a in node.names}
        out[name] = found
    return out


IMPORTS = _imports()


def _ring(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_the_scan_sees_the_package() -> None:
    assert {"agent_assist.core.events", "agent_assist.server.app", "agent_assist.cli.main"} <= set(
        IMPORTS
    )
    assert "agent_assist.core.events" in IMPORTS["agent_assist.core.session"]


def test_core_imports_only_core() -> None:
    bad = {
        f"{m} -> {i}"
        for m, imps in IMPORTS.items()
        if _ring(m) == "core"
        for i in imps
        if i.startswith("agent_assist.") and _ring(i) not in ("core", "errors")
    }
    assert sorted(bad) == []


def test_adapters_import_no_runtime_or_outer_ring() -> None:
    bad = {
        f"{m} -> {i}"
        for m, imps in IMPORTS.items()
        if _ring(m) in ADAPTERS
        for i in imps
        if i.startswith("agent_assist.") and _ring(i) in OUTER
    }
    assert sorted(bad) == []


def test_nothing_but_the_cli_imports_the_server() -> None:
    bad = {
        f"{m} -> {i}"
        for m, imps in IMPORTS.items()
        if _ring(m) not in ("server", "cli")
        for i in imps
        if i.startswith("agent_assist.server")
    }
    assert sorted(bad) == []


def test_supervision_loads_no_language_model() -> None:
    bad = {
        f"{m} -> {i}"
        for m, imps in IMPORTS.items()
        if _ring(m) == "supervision"
        for i in imps
        if i.split(".")[0] == "spacy" or i.startswith("agent_assist.nlp")
    }
    assert sorted(bad) == []


def test_only_the_composition_root_and_db_commands_name_sqlite() -> None:
    allowed = {"agent_assist.runtime.services", "agent_assist.cli.supervision"}
    naming = {
        m
        for m, imps in IMPORTS.items()
        if "agent_assist.store.sqlite.SqliteStore" in imps and _ring(m) != "store"
    }
    assert naming <= allowed, naming - allowed
