"""The pages keep a strict script policy, and the browser tests live with it.

``wait_for_function`` with a string is run through ``eval`` in the page, which the policy
(rightly) blocks in current Chromium; the tests poll properties instead.
"""

from __future__ import annotations

import re
from pathlib import Path

import agent_assist

WEB = Path(agent_assist.__file__).parent / "web"
E2E = Path(__file__).parent


def test_every_page_forbids_eval_and_foreign_scripts() -> None:
    pages = sorted(WEB.glob("*.html"))
    assert pages
    for page in pages:
        policy = re.search(r'content="([^"]*script-src[^"]*)"', page.read_text(), re.S)
        assert policy, f"{page.name} has no Content-Security-Policy"
        script_src = re.search(r"script-src([^;]*)", policy.group(1))
        assert script_src and script_src.group(1).split() == ["'self'"], page.name


def test_no_browser_test_waits_by_evaluating_a_string() -> None:
    offenders = [
        f"{path.name}:{n}"
        for path in sorted(E2E.glob("test_*.py"))
        if path.name != Path(__file__).name
        for n, line in enumerate(path.read_text().splitlines(), start=1)
        if "wait_for_function(" in line
    ]
    assert offenders == []
