"""Call-level evaluation: whole calls through the live ``CallSession``, judged per situation.

A call file (``eval/calls/<set>/*.toml``) holds turns (speaker, text) and labelled
situations, written by people who saw only the product's definitions, never its rules:

- ``kind = "warning"``: ``rule`` (the compliance rule's short name) broken on agent turn
  ``turn``;
- ``kind = "offer"``: a suggestion of kind ``offer`` (upsell, cross_sell, downsell,
  retention, care) expected for the moment customer turn ``turn`` creates;
- ``clean = true``: the agent does nothing wrong, so any warning is a false one.

Turns are numbered over the whole call, 1-based (as the writers numbered them); the
loader checks that a warning's turn is the agent's and an offer's the customer's.

Matching. A labelled warning is flagged when a ``ComplianceWarning`` whose rule id is
``compliance.<rule>.*`` cites the labelled agent turn as its evidence. An expected offer
is shown when a ``Suggestion`` of that kind cites the labelled customer turn or the next
customer turn (the moment may need one more sentence to become clear); ``care`` is a
suggestion from a ``care.*`` rule, ``retention`` one from the retention care rule.
Scorecard agreement: the scorecard's compliance item fails (auto score 0) exactly when the
call is not clean. Turn times are not in the files: each turn gets a duration from its
length (the pipeline only orders by time), and calls run with a fixed date.

Held-out sets print aggregates only (``--aggregate-only``), never a call or a miss.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path

from agent_assist.config import Config
from agent_assist.core.catalog import parse_catalog
from agent_assist.core.events import ComplianceWarning, Event, Suggestion
from agent_assist.core.policy import PolicyBook, parse_policy
from agent_assist.core.scoring import score_call
from agent_assist.core.script import ScriptedCall, parse_script, turn_final
from agent_assist.core.session import CallSession
from agent_assist.core.signals import SignalDetector
from agent_assist.crm import CustomerDirectory, FileCustomerDirectory
from agent_assist.protocol import decode_events, encode_event

CALL_DATE = dt.date(2026, 12, 1)
"""The date every evaluated call runs on (days to renewal need one)."""

WARNING_RULES = (
    "pitch_during_cancellation",
    "pitch_during_complaint",
    "push_after_no",
    "past_budget",
    "unrelated_cross_sell",
    "pitch_before_needs",
    "pressure_language",
    "company_centric",
)
HELD_OUT_FOLDERS = ("holdout", "holdout_asr")
"""The round's blind set under ``eval/calls/``, written from the definitions only:
aggregates only, and skipped when absent."""
DEVELOPMENT_FOLDERS = (
    "dev",
    "test",
    "round2",
    "round3",
    "round4",
    "dev_asr",
    "round2_asr",
    "round3_asr",
    "round4_asr",
)
"""Development sets (misses printed and read): ``test`` was blind in round 1, ``round2``
(and its recognised twin ``round2_asr``) in round 2, ``round3`` / ``round3_asr`` in
round 3, ``round4`` / ``round4_asr`` in round 4."""
OFFER_KINDS = ("upsell", "cross_sell", "downsell", "retention", "care")


@dataclass(frozen=True)
class Expect:
    kind: str  # "warning" | "offer"
    name: str  # the rule or the offer kind
    turn: int  # 1-based over all turns of the call


@dataclass(frozen=True)
class EvalCall:
    name: str
    language: str
    clean: bool
    script: ScriptedCall
    expects: tuple[Expect, ...]


@dataclass(frozen=True)
class CallResult:
    call: EvalCall
    found: tuple[bool, ...]
    """One per expectation, in order: was it met."""
    false_warnings: tuple[tuple[str, int], ...]
    """Warnings (rule, agent turn) that match no label."""
    scorecard_fails_compliance: bool
    feed_seconds: tuple[float, ...] = ()
    """Wall time of each ``CallSession.feed`` (signals, acts, phase, offers, compliance)."""
    feed_cpu_seconds: tuple[float, ...] = ()
    """The same in CPU time of this process (not inflated by other processes)."""

    @property
    def scorecard_right(self) -> bool:
        return self.scorecard_fails_compliance == (not self.call.clean)


def seconds_for(text: str, language: str) -> float:
    """A plausible speaking time: ~7 kana/kanji or ~15 Latin characters a second."""
    per_second = 7.0 if language == "ja" else 15.0
    return max(1.0, len(text) / per_second)


def load_call(path: Path) -> EvalCall:
    """Read one call file; timed turns are made here, the file itself stays untouched."""
    doc = tomllib.loads(path.read_text(encoding="utf-8"))
    language = doc.get("language", "")
    t = 0.5
    turns = []
    for raw in doc.get("turn", []):
        length = seconds_for(str(raw.get("text", "")), language)
        turns.append({**raw, "start": round(t, 2), "end": round(t + length, 2)})
        t += length + 0.6
    script_doc = {
        "title": doc.get("title", path.stem),
        "language": language,
        "direction": doc.get("direction", "inbound"),
        "turn": turns,
    }
    if doc.get("customer_id"):
        script_doc["customer_id"] = doc["customer_id"]
    script = parse_script(script_doc, path.name)
    expects = []
    for raw in doc.get("expect", []):
        kind = raw.get("kind")
        name = raw.get("rule") if kind == "warning" else raw.get("offer")
        if kind not in ("warning", "offer") or not isinstance(name, str):
            raise ValueError(f"{path.name}: expect {raw!r} is neither a warning nor an offer")
        turn = int(raw["turn"])
        speaker = "agent" if kind == "warning" else "customer"
        if not 1 <= turn <= len(turns) or turns[turn - 1].get("speaker") != speaker:
            raise ValueError(
                f"{path.name}: expected {kind} at turn {turn} is not the {speaker}'s turn"
            )
        expects.append(Expect(kind, name, turn))
    clean = bool(doc.get("clean", not any(e.kind == "warning" for e in expects)))
    return EvalCall(path.stem, language, clean, script, tuple(expects))


def load_calls(folder: Path) -> list[EvalCall]:
    return [load_call(p) for p in sorted(folder.glob("*.toml"))]


_MARKS = re.compile(r"[。、！？!?,;:…「」]|\.(?=\s|$)")


def without_punctuation(call: EvalCall) -> EvalCall:
    """The call as recognition may give it: no punctuation, English lower-cased (a cheap
    stand-in for TTS + recognition; nothing may rely on marks or casing)."""

    def plain(text: str) -> str:
        text = " ".join(_MARKS.sub(" ", text).split())
        return text.lower() if call.language == "en" else text

    turns = tuple(replace(t, text=plain(t.text)) for t in call.script.turns)
    return replace(call, script=replace(call.script, turns=turns))


def load_book(config: Config) -> tuple[PolicyBook, CustomerDirectory]:
    """The configured policy, catalogue and customer records, as the server reads them
    (``runtime.services``), read here without the runtime (an adapter may not import it)."""

    def read(configured: str, bundled: str) -> tuple[dict[str, object], str]:
        if configured:
            path = config.resolve(configured)
            return tomllib.loads(path.read_text(encoding="utf-8")), str(path)
        ref = resources.files("agent_assist") / "data" / bundled
        return tomllib.loads(ref.read_text(encoding="utf-8")), bundled

    catalog = parse_catalog(*read(config.policy.catalog, "catalog/nova_mobile.toml"))
    book = parse_policy(*read(config.policy.file, "policy/nova_mobile.toml"), catalog)
    customers_path = config.resolve(config.policy.customers) if config.policy.customers else None
    return book, FileCustomerDirectory.load(customers_path, catalog)


def _turn_numbers(script: ScriptedCall) -> dict[str, tuple[str, int]]:
    """utterance id -> (speaker, 1-based index over the call's turns)."""
    return {f"{turn.speaker}-{i:04d}": (turn.speaker, i) for i, turn in enumerate(script.turns, 1)}


def _next_customer_turn(script: ScriptedCall, turn: int) -> int:
    return next(
        (
            i
            for i in range(turn + 1, len(script.turns) + 1)
            if script.turns[i - 1].speaker == "customer"
        ),
        turn,
    )


def offer_kind(s: Suggestion) -> str:
    """The expected-offer kind a suggestion answers: care and retention are both no-sale
    cards; the rule says which."""
    if s.kind == "retention":
        return "care" if s.rule_id.startswith("care.") else "retention"
    return s.kind


def warning_rule(w: ComplianceWarning) -> str:
    parts = w.rule_id.split(".")
    return parts[1] if len(parts) > 2 else w.rule_id


def run_call(
    call: EvalCall,
    detector: SignalDetector,
    book: PolicyBook,
    customers: CustomerDirectory,
    known_signals: Sequence[str],
) -> CallResult:
    session = CallSession(detector, book, call.language, today=CALL_DATE)
    events: list[Event] = []
    cid = call.script.customer_id
    if cid:
        events += session.link_customer("eval", cid, customers.lookup(cid))
    feed_seconds, feed_cpu = [], []
    for i, turn in enumerate(call.script.turns, start=1):
        final = turn_final("eval", i, turn, call.language)
        started, cpu = time.perf_counter(), time.process_time()
        derived = session.feed(final)
        events += [final, *derived]
        feed_seconds.append(time.perf_counter() - started)
        feed_cpu.append(time.process_time() - cpu)
    numbers = _turn_numbers(call.script)
    warnings = [
        (warning_rule(e), numbers.get(e.evidence.utterance_id, ("", 0))[1])
        for e in events
        if isinstance(e, ComplianceWarning)
    ]
    offers = [
        (offer_kind(e), numbers.get(e.evidence.utterance_id, ("", 0))[1])
        for e in events
        if isinstance(e, Suggestion)
    ]
    found = []
    for exp in call.expects:
        if exp.kind == "warning":
            found.append((exp.name, exp.turn) in warnings)
        else:
            window = (exp.turn, _next_customer_turn(call.script, exp.turn))
            found.append(any(k == exp.name and t in window for k, t in offers))
    labelled = {(e.name, e.turn) for e in call.expects if e.kind == "warning"}
    false = tuple(w for w in warnings if w not in labelled)
    # stored as the server stores a call, and read back, then scored
    messages = decode_events(
        json.loads(encode_event(e, seq, 0)) for seq, e in enumerate(events, start=1)
    )
    card = score_call(messages, known_signals=known_signals)
    compliance = card.item("compliance")
    return CallResult(
        call, tuple(found), false, compliance.auto == 0, tuple(feed_seconds), tuple(feed_cpu)
    )


@dataclass
class Tally:
    hit: int = 0
    total: int = 0

    def add(self, ok: bool) -> None:
        self.total += 1
        self.hit += int(ok)

    def text(self) -> str:
        if not self.total:
            return "–"
        return f"{self.hit}/{self.total} ({100 * self.hit / self.total:.0f} %)"


@dataclass
class Summary:
    calls: int = 0
    warnings: dict[str, Tally] = field(default_factory=dict)
    offers: dict[str, Tally] = field(default_factory=dict)
    clean_calls: int = 0
    clean_with_warning: int = 0
    false_on_clean: int = 0
    scorecard: Tally = field(default_factory=Tally)
    false_by_rule: dict[str, int] = field(default_factory=dict)
    """False warnings on clean calls, counted by rule (an aggregate: no call named)."""

    def warning_total(self) -> Tally:
        return Tally(sum(t.hit for t in self.warnings.values()), _n(self.warnings))

    def offer_total(self) -> Tally:
        return Tally(sum(t.hit for t in self.offers.values()), _n(self.offers))

    @property
    def clean_share(self) -> float:
        return self.clean_with_warning / self.clean_calls if self.clean_calls else 0.0


def _n(tallies: dict[str, Tally]) -> int:
    return sum(t.total for t in tallies.values())


def summarise(results: Sequence[CallResult]) -> Summary:
    s = Summary()
    for r in results:
        s.calls += 1
        for exp, ok in zip(r.call.expects, r.found, strict=True):
            book = s.warnings if exp.kind == "warning" else s.offers
            book.setdefault(exp.name, Tally()).add(ok)
        if r.call.clean:
            s.clean_calls += 1
            s.false_on_clean += len(r.false_warnings)
            for rule, _ in r.false_warnings:
                s.false_by_rule[rule] = s.false_by_rule.get(rule, 0) + 1
            s.clean_with_warning += int(bool(r.false_warnings))
        s.scorecard.add(r.scorecard_right)
    return s


def report(title: str, s: Summary) -> list[str]:
    wt, ot = s.warning_total(), s.offer_total()
    out = [
        f"### {title}: {s.calls} calls",
        "",
        "| situation | found |",
        "|---|---|",
    ]
    out += [f"| warning `{k}` | {s.warnings[k].text()} |" for k in WARNING_RULES if k in s.warnings]
    out += [f"| **all compliance situations** | **{wt.text()}** (target ≥ 95 %) |"]
    out += [f"| offer `{k}` | {s.offers[k].text()} |" for k in OFFER_KINDS if k in s.offers]
    out += [f"| **all expected offers** | **{ot.text()}** (target ≥ 90 %) |"]
    fpc = s.false_on_clean / s.clean_calls if s.clean_calls else 0.0
    out += [
        f"| clean calls with any warning | {s.clean_with_warning}/{s.clean_calls} "
        f"({100 * s.clean_share:.0f} %; target ≤ 5 %) |",
        f"| false warnings per clean call | {fpc:.2f} "
        f"({', '.join(f'{k} {v}' for k, v in sorted(s.false_by_rule.items())) or 'none'}) |",
        f"| scorecard compliance right | {s.scorecard.text()} (target ≥ 95 %) |",
        "",
    ]
    return out


def misses(results: Sequence[CallResult]) -> list[str]:
    """Every miss of a development set, by call (never printed for a held-out set)."""
    out = []
    for r in results:
        for exp, ok in zip(r.call.expects, r.found, strict=True):
            if not ok:
                out.append(f"- {r.call.name}: missed {exp.kind} {exp.name} at turn {exp.turn}")
        out += [f"- {r.call.name}: false warning {w} at turn {t}" for w, t in r.false_warnings]
        if not r.scorecard_right:
            fails = "fails" if r.scorecard_fails_compliance else "passes"
            out.append(
                f"- {r.call.name}: scorecard compliance {fails} on a "
                f"{'clean' if r.call.clean else 'non-clean'} call"
            )
    return out


def evaluate_folder(
    folder: Path,
    detector: SignalDetector,
    book: PolicyBook,
    customers: CustomerDirectory,
    known_signals: Sequence[str],
    *,
    plain: bool = False,
) -> list[CallResult]:
    """Every call of ``folder``; ``plain``: without punctuation and casing."""
    calls = load_calls(folder)
    if plain:
        calls = [without_punctuation(c) for c in calls]
    return [run_call(c, detector, book, customers, known_signals) for c in calls]


def feed_latency(results: Sequence[CallResult], cpu: bool = False) -> tuple[float, float, int]:
    """p50 and p95 in ms of one utterance through the whole session, and the count."""
    times = sorted(t for r in results for t in (r.feed_cpu_seconds if cpu else r.feed_seconds))
    if not times:
        return 0.0, 0.0, 0

    def at(q: float) -> float:
        return 1000 * times[min(len(times) - 1, int(q * len(times)))]

    return at(0.5), at(0.95), len(times)


def _split(results: Sequence[CallResult], language: str) -> list[CallResult]:
    return [r for r in results if r.call.language == language]


def section(title: str, results: Sequence[CallResult], show_misses: bool) -> list[str]:
    out = report(f"{title}, all", summarise(results))
    for lang in ("ja", "en"):
        part = _split(results, lang)
        if part:
            out += report(f"{title}, {lang}", summarise(part))
    if show_misses:
        found = misses(results)
        out += [f"Misses on {title} ({len(found)}):", "", *found, ""] if found else []
    return out


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    from agent_assist.config import load_config
    from agent_assist.core.vocabulary import SIGNAL_NAMES
    from agent_assist.nlp.detector import build_detector

    repo = Path(__file__).resolve().parent.parent.parent
    parser = argparse.ArgumentParser(description="Call-level evaluation over labelled calls.")
    parser.add_argument(
        "folders",
        nargs="*",
        type=Path,
        default=[
            repo / "eval" / "calls" / name for name in (*DEVELOPMENT_FOLDERS, *HELD_OUT_FOLDERS)
        ],
    )
    parser.add_argument(
        "--aggregate-only",
        action="append",
        default=[],
        type=Path,
        help="a held-out folder: print only aggregate figures",
    )
    parser.add_argument("--rules-only", action="store_true")
    parser.add_argument(
        "--no-punctuation",
        action="store_true",
        help="run the calls without punctuation and (English) casing, as recognition may",
    )
    args = parser.parse_args(argv)
    config = load_config(repo / "config.toml")
    detector = build_detector() if args.rules_only else build_detector(config)
    book, customers = load_book(config)
    known = sorted(SIGNAL_NAMES)
    held_out = {p.resolve() for p in args.aggregate_only} | {
        (repo / "eval" / "calls" / name).resolve() for name in HELD_OUT_FOLDERS
    }
    for folder in [*args.folders, *args.aggregate_only]:
        if not folder.is_dir():
            print(f"({folder} not found: skipped)")
            continue
        results = evaluate_folder(
            folder, detector, book, customers, known, plain=args.no_punctuation
        )
        show = folder.resolve() not in held_out
        title = f"{folder.name} (no punctuation)" if args.no_punctuation else folder.name
        print("\n".join(section(title, results, show)))
        p50, p95, n = feed_latency(results)
        print(f"{n} utterances through CallSession.feed: p50 {p50:.2f} ms, p95 {p95:.2f} ms\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
