"""Per-agent statistics computed from stored events: offers, outcomes, warnings, scores, value.

Nothing here is kept in counters: every figure is recomputed from the stored calls, so it
always agrees with the review page and survives rule changes. "Which lines work" is the
acceptance rate per script line (the suggestion's rule and line), the A/B view of two
phrasings of the same offer.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from agent_assist.core.call_facts import call_facts, offer_outcomes
from agent_assist.store.base import CallFilter
from agent_assist.supervision.pricing import PriceTable
from agent_assist.supervision.review import Supervision

UNASSIGNED = "(unassigned)"


STATS_MAX_CALLS = 10_000
"""Newest ended calls one statistics request reads at most (narrow with since/until)."""


@dataclass
class Tally:
    suggested: int = 0
    used: int = 0
    accepted: int = 0
    declined: int = 0

    @property
    def acceptance_rate(self) -> float | None:
        """Accepted over answered (accepted + declined); None before any answer."""
        answered = self.accepted + self.declined
        return round(self.accepted / answered, 3) if answered else None

    def to_json(self) -> dict[str, Any]:
        return {
            "suggested": self.suggested,
            "used": self.used,
            "accepted": self.accepted,
            "declined": self.declined,
            "acceptance_rate": self.acceptance_rate,
        }


@dataclass
class AgentStats:
    agent: str
    calls: int = 0
    scored_calls: int = 0
    score_sum: float = 0.0
    failed_calls: int = 0
    offers_made: int = 0
    offers: Tally = field(default_factory=Tally)
    by_kind: dict[str, Tally] = field(default_factory=dict)
    by_line: dict[tuple[str, str, str, str], Tally] = field(default_factory=dict)
    warnings_by_rule: Counter[str] = field(default_factory=Counter)
    revenue_monthly: float = 0.0
    lifetime_value: float = 0.0
    retained_value: float = 0.0
    currency: str = ""

    @property
    def average_score(self) -> float | None:
        return round(self.score_sum / self.scored_calls, 1) if self.scored_calls else None


def agent_stats(
    sup: Supervision,
    prices: PriceTable,
    agent: str | None = None,
    since: str = "",
    until: str = "",
) -> list[AgentStats]:
    """Statistics per agent over ended calls started in [since, until)."""
    by_agent: dict[str, AgentStats] = {}
    rows = sup.search(
        CallFilter(
            agent=agent,
            since=since,
            until=until,
            ended_only=True,
            counted_only=True,
            limit=STATS_MAX_CALLS,
        )
    )
    for summary in rows:
        name = summary.agent or UNASSIGNED
        st = by_agent.setdefault(name, AgentStats(name, currency=prices.currency))
        st.calls += 1
        if summary.total is not None:
            st.scored_calls += 1
            st.score_sum += summary.total
        st.failed_calls += int(summary.failed)
        facts = call_facts(sup.events(summary.row.call_id))
        st.offers_made += len(facts.offers())
        for w in facts.warnings:
            st.warnings_by_rule[w.event.rule_id] += 1
        for o in offer_outcomes(facts):
            for tally in (
                st.offers,
                st.by_kind.setdefault(o.kind, Tally()),
                st.by_line.setdefault((o.kind, o.rule_id, o.offer_id, o.line), Tally()),
            ):
                tally.suggested += 1
                tally.used += int(o.used)
                tally.accepted += int(o.outcome == "accepted")
                tally.declined += int(o.outcome == "declined")
            value = prices.value_of(o.offer_id, summary.row.customer_id)
            if o.outcome == "accepted" and value is not None:
                st.revenue_monthly += value.monthly_delta
                st.lifetime_value += value.lifetime_delta
                st.retained_value += value.retained_value
    return sorted(by_agent.values(), key=lambda s: s.agent)


def stats_json(stats: list[AgentStats]) -> list[dict[str, Any]]:
    return [
        {
            "agent": s.agent,
            "calls": s.calls,
            "average_score": s.average_score,
            "failed_calls": s.failed_calls,
            "offers_made": s.offers_made,
            "offers": s.offers.to_json(),
            "by_kind": {k: t.to_json() for k, t in sorted(s.by_kind.items())},
            "by_line": [
                {"kind": k, "rule_id": r, "offer_id": o, "line": line, **t.to_json()}
                for (k, r, o, line), t in sorted(s.by_line.items())
            ],
            "warnings_by_rule": dict(sorted(s.warnings_by_rule.items())),
            "revenue_monthly": s.revenue_monthly,
            "lifetime_value": s.lifetime_value,
            "retained_value": s.retained_value,
            "currency": s.currency,
        }
        for s in stats
    ]


AGENT_COLUMNS = [
    "agent",
    "calls",
    "average_score",
    "failed_calls",
    "offers_made",
    "suggested",
    "used",
    "accepted",
    "declined",
    "acceptance_rate",
    "revenue_monthly",
    "lifetime_value",
    "retained_value",
    "currency",
]


def stats_csv(stats: list[AgentStats], table: str = "agents") -> str:
    """One CSV table: ``agents`` (one row each), ``lines`` (per script line) or ``warnings``."""
    out = io.StringIO()
    w = _SafeWriter(csv.writer(out, lineterminator="\n"))
    if table == "lines":
        w.writerow(["agent", "kind", "rule_id", "offer_id", "line", *Tally().to_json()])
        for s in stats:
            for (kind, r, o, line), t in sorted(s.by_line.items()):
                w.writerow([s.agent, kind, r, o, line, *t.to_json().values()])
    elif table == "warnings":
        w.writerow(["agent", "rule_id", "count"])
        for s in stats:
            for rule, n in sorted(s.warnings_by_rule.items()):
                w.writerow([s.agent, rule, n])
    else:
        w.writerow(AGENT_COLUMNS)
        for s in stats:
            t = s.offers
            w.writerow(
                [
                    s.agent,
                    s.calls,
                    s.average_score,
                    s.failed_calls,
                    s.offers_made,
                    t.suggested,
                    t.used,
                    t.accepted,
                    t.declined,
                    t.acceptance_rate,
                    s.revenue_monthly,
                    s.lifetime_value,
                    s.retained_value,
                    s.currency,
                ]
            )
    return out.getvalue()


def stats_text(stats: list[AgentStats]) -> str:
    """The report ``agent-assist report`` prints."""
    if not stats:
        return "no ended calls match\n"
    lines: list[str] = []
    for s in stats:
        t = s.offers
        rate = "-" if t.acceptance_rate is None else f"{t.acceptance_rate:.0%}"
        avg = "-" if s.average_score is None else f"{s.average_score:.1f}"
        lines += [
            f"agent {s.agent}: {s.calls} call(s), average score {avg}, {s.failed_calls} failed",
            f"  offers: {t.suggested} suggested, {s.offers_made} made by the agent, {t.used} used, "
            f"{t.accepted} accepted, {t.declined} declined (acceptance {rate})",
            f"  value of accepted offers: {s.revenue_monthly:+,.0f} {s.currency}/month, "
            f"lifetime {s.lifetime_value:+,.0f} {s.currency}, retained {s.retained_value:,.0f}",
        ]
        for kind, k in sorted(s.by_kind.items()):
            kr = "-" if k.acceptance_rate is None else f"{k.acceptance_rate:.0%}"
            lines.append(
                f"  {kind:<10} {k.suggested} suggested, {k.accepted} accepted, "
                f"{k.declined} declined ({kr})"
            )
        if s.by_line:
            lines.append("  script lines:")
            for (_kind, rule, _offer, line), k in sorted(s.by_line.items()):
                kr = "-" if k.acceptance_rate is None else f"{k.acceptance_rate:.0%}"
                lines.append(f"    {kr:>4}  {k.accepted}/{k.suggested}  {rule}: {line[:70]}")
        if s.warnings_by_rule:
            lines.append("  warnings:")
            lines += [f"    {n:>3}  {rule}" for rule, n in sorted(s.warnings_by_rule.items())]
    return "\n".join(lines) + "\n"


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class _SafeWriter:
    """A CSV writer whose text cells cannot start a spreadsheet formula (an agent named
    ``=HYPERLINK(...)``): such a cell gets a leading apostrophe. Numbers stay numbers."""

    def __init__(self, writer: Any) -> None:
        self._writer = writer

    def writerow(self, row: Iterable[object]) -> None:
        self._writer.writerow(
            ["'" + c if isinstance(c, str) and c.startswith(_FORMULA_START) else c for c in row]
        )
