"""Batch analysis of recordings through the live pipeline, then statistics and the CLI reports."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest

from agent_assist.cli import main
from agent_assist.clients.analyze import analyze
from agent_assist.config import Config, load_config
from agent_assist.core.events import OfferFeedback
from agent_assist.protocol import encode_event, event_data
from agent_assist.store.sqlite import SqliteStore
from agent_assist.supervision.pricing import load_price_table
from agent_assist.supervision.review import Supervision
from agent_assist.supervision.statistics import agent_stats, stats_csv
from tests.conftest import CALLS, SAMPLES


@pytest.fixture
def tmp_config(tmp_path: Path) -> tuple[Config, Path]:
    repo_models = Path(__file__).resolve().parent.parent / "models"
    path = tmp_path / "config.toml"
    path.write_text(
        f'[store]\npath = "calls.sqlite3"\n[models]\ndir = "{repo_models}"\n', encoding="utf-8"
    )
    return load_config(path), path


@pytest.mark.model
async def test_batch_skips_bad_files_goes_on_and_is_idempotent(
    tmp_config: tuple[Config, Path], tmp_path: Path
) -> None:
    config, _ = tmp_config
    recording = tmp_path / "good_call.flac"
    shutil.copy(SAMPLES / "en_call.flac", recording)
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" + bytes(range(256)) * 10)
    missing = tmp_path / "missing.flac"
    script = CALLS / "en_demo.toml"
    out = io.StringIO()
    first = await analyze(
        config, [corrupt, recording, missing, script], agent="ann", language="en", out=out
    )
    assert [o.status for o in first] == ["failed", "analyzed", "failed", "analyzed"]
    assert "audio." in first[0].message and "cannot read" in first[2].message
    assert first[1].score is not None and first[1].call_id
    report = out.getvalue()
    assert "failed   " in report and str(corrupt) in report and "[2/4] analyzed" in report

    again = await analyze(config, [recording, script, corrupt], agent="ann", out=io.StringIO())
    assert [o.status for o in again] == ["skipped", "skipped", "failed"]
    assert again[0].call_id == first[1].call_id

    store = SqliteStore(config.resolve(config.store.path))
    try:
        calls = store.list_calls()
        assert len(calls) == 2 and {c.end_reason for c in calls} == {"hangup"}
        assert store.call_agent(first[1].call_id or "") == "ann"
        audio_call = first[1].call_id or ""
        finals = [e for e in store.call_events(audio_call) if e["type"] == "transcript.final"]
        assert any("slow" in e["data"]["text"] for e in finals)
        assert store.recording(audio_call) is not None  # the archive kept the audio
    finally:
        store.close()


async def test_statistics_count_outcomes_and_value_from_stored_events(
    tmp_config: tuple[Config, Path],
) -> None:
    config, config_path = tmp_config
    outcomes = await analyze(
        config, [CALLS / "en_demo.toml", CALLS / "ja_demo.toml"], agent="ann", out=io.StringIO()
    )
    store = SqliteStore(config.resolve(config.store.path))
    try:
        # the customer accepted the fiber upsell of the Japanese call (agent feedback event)
        ja = outcomes[1].call_id or ""
        upsell = next(
            e
            for e in store.call_events(ja)
            if e["type"] == "suggestion" and e["data"]["kind"] == "upsell"
        )
        d = upsell["data"]
        mark = OfferFeedback(ja, 40000, d["suggestion_id"], d["offer_id"], d["kind"], "accepted")
        body = encode_event(mark, 999, 0)
        store.append_event(ja, 999, mark.TYPE, 40000, 0, body, event_data(mark))
        sup = Supervision(store, config)
        (ann,) = agent_stats(sup, load_price_table(config), "ann", since="2026-01-01")
    finally:
        store.close()
    assert ann.calls == 2 and ann.average_score == 0.0 and ann.failed_calls == 2
    assert (ann.offers.suggested, ann.offers.accepted, ann.offers.declined) == (2, 1, 1)
    assert ann.by_kind["upsell"].acceptance_rate == 0.5
    assert ann.revenue_monthly == 1000 and ann.lifetime_value == 24000
    assert ann.warnings_by_rule["compliance.pitch_during_cancellation.v1"] == 2
    lines = stats_csv([ann], "lines").splitlines()
    assert lines[0].startswith("agent,kind,rule_id,offer_id,line,suggested")
    assert len(lines) == 3  # one row per script line (the en and the ja phrasing)
    assert stats_csv([ann]).splitlines()[1].startswith("ann,2,0.0,2,")

    import contextlib

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert (
            main(
                ["--config", str(config_path), "report", "--agent", "ann", "--since", "2026-01-01"]
            )
            == 0
        )
        assert main(["--config", str(config_path), "score", outcomes[0].call_id or ""]) == 0
        assert main(["--config", str(config_path), "report", "--format", "json"]) == 0
    text = printed.getvalue()
    assert "agent ann: 2 call(s)" in text and "+24,000 JPY" in text
    assert "Compliance" in text and "«upgrade»" in text and "no closing summary" in text
    assert '"lifetime_value": 24000.0' in text
