"""The decision log: every suggestion or warning shown or held back, with the deciding rule.

One log per call, shared by the offer engine and the compliance checker, so decision ids
run in one sequence a reviewer can follow.
"""

from __future__ import annotations

from typing import Literal

from agent_assist.core.events import Decision, Evidence


class DecisionLog:
    def __init__(self) -> None:
        self._count = 0

    def record(
        self,
        *,
        call_id: str,
        t_ms: int,
        outcome: Literal["shown", "suppressed"],
        subject: Literal["suggestion", "warning"],
        rule_id: str,
        decided_by: str,
        reason: str,
        kind: str = "",
        offer_id: str = "",
        ref_id: str = "",
        evidence: Evidence | None = None,
    ) -> Decision:
        self._count += 1
        return Decision(
            call_id=call_id,
            t_ms=t_ms,
            decision_id=f"d-{self._count}",
            outcome=outcome,
            subject=subject,
            rule_id=rule_id,
            kind=kind,
            offer_id=offer_id,
            decided_by=decided_by,
            reason=reason,
            ref_id=ref_id,
            evidence=evidence,
        )
