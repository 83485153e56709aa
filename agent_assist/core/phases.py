"""The call phase as one transition table, and the offer history it implies.

A trigger is ``"<speaker>:<signal>"`` (or ``"feedback:<action>"`` when the agent marks a
suggestion in the console, ``"customer:calm"`` after an upset customer has spoken
calmly twice). The table is looked up with the current phase first, then with ``"*"``
(any phase); a row whose target is the current phase pins it (no change). "Pushed after
a no" and "at most one downsell" are read off the recorded history, not loose flags.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Literal

from agent_assist.core.events import Evidence, PhaseChanged, SignalDetected, Speaker
from agent_assist.core.vocabulary import NEED_SIGNALS

Phase = Literal[
    "opening",
    "discovery",
    "offer_open",
    "declined",
    "accepted",
    "retention",
    "care",
    "closing",
]
PHASES: tuple[Phase, ...] = (
    "opening",
    "discovery",
    "offer_open",
    "declined",
    "accepted",
    "retention",
    "care",
    "closing",
)

CALM_TURNS = 2
"""Customer utterances without anger after which an upset customer counts as calm."""

_OFFER_FROM: tuple[Phase, ...] = ("opening", "discovery", "declined", "accepted", "closing")

TRANSITIONS: dict[tuple[str, str], tuple[Phase, str]] = {
    # a need heard or asked about: the conversation is now about the customer
    **{
        ("opening", f"customer:{s}"): ("discovery", "phase.need_heard.v1")
        for s in sorted(NEED_SIGNALS)
    },
    ("opening", "agent:needs_question"): ("discovery", "phase.needs_asked.v1"),
    # an offer is on the table (a downsell is an offer too)
    **{(p, "agent:offer_made"): ("offer_open", "phase.offer_made.v1") for p in _OFFER_FROM},
    **{(p, "agent:downsell_offer"): ("offer_open", "phase.offer_made.v1") for p in _OFFER_FROM},
    # in retention only a smaller offer opens anything (compliance judges whether it may)
    ("retention", "agent:downsell_offer"): ("offer_open", "phase.retention_offer.v1"),
    # the customer answers the offer
    ("offer_open", "customer:refusal"): ("declined", "phase.offer_declined.v1"),
    ("offer_open", "customer:price_objection"): ("declined", "phase.offer_declined.v1"),
    ("offer_open", "customer:competitor_mention"): ("declined", "phase.offer_declined.v1"),
    ("offer_open", "customer:agreement"): ("accepted", "phase.offer_accepted.v1"),
    # the customer decides to buy on their own, or changes their mind after a no
    ("opening", "customer:agreement"): ("accepted", "phase.own_decision.v1"),
    ("discovery", "customer:agreement"): ("accepted", "phase.own_decision.v1"),
    ("declined", "customer:agreement"): ("accepted", "phase.offer_accepted.v1"),
    # a customer who says why they call has stated a need, even in words no signal names
    ("opening", "customer:cue.need"): ("discovery", "phase.need_stated.v1"),
    # the agent's own mark in the console settles the open offer
    ("*", "feedback:accepted"): ("accepted", "phase.offer_accepted_by_mark.v1"),
    ("*", "feedback:declined"): ("declined", "phase.offer_declined_by_mark.v1"),
    ("retention", "feedback:declined"): ("retention", ""),
    # an angry customer: care first; calm again after satisfaction, a yes, or calm turns
    ("*", "customer:anger"): ("care", "phase.customer_upset.v1"),
    ("retention", "customer:anger"): ("retention", ""),
    ("care", "customer:satisfaction"): ("discovery", "phase.customer_calmed.v1"),
    ("care", "customer:agreement"): ("discovery", "phase.customer_calmed.v1"),
    ("care", "customer:calm"): ("discovery", "phase.customer_calmed.v1"),
    # cancellation overrides everything else
    ("*", "customer:cancel_intent"): ("retention", "phase.cancel_intent.v1"),
    # the agent wraps up
    ("*", "agent:closing_summary"): ("closing", "phase.closing.v1"),
    # ... and, asked whether there is anything else, the customer raises a need ("actually,
    # my contract is up soon"): the call is open again
    **{
        ("closing", f"customer:{s}"): ("discovery", "phase.need_reopened.v1")
        for s in sorted(NEED_SIGNALS)
    },
}

TRIGGER_ORDER = ("customer:anger", "customer:cancel_intent")
"""Triggers applied last within one utterance, in this order, so they win over the rest."""


@dataclass(frozen=True, slots=True)
class OfferRecord:
    """One offer put to the customer and how it ended."""

    t_ms: int
    kind: str  # "upsell", "cross_sell", "downsell", or "" when the words do not say
    product_id: str = ""
    outcome: str = "open"  # "open" | "declined" | "accepted"
    declined_on_price: bool = False
    suggestion_id: str = ""


@dataclass
class CallState:
    """Phase, offer history and what the customer has told us. Mutated only here."""

    phase: Phase = "opening"
    offers: list[OfferRecord] = field(default_factory=list)
    needs_heard: list[str] = field(default_factory=list)
    """Customer need signals in the order first heard."""
    budget_stated: bool = False
    """The customer objected on price at some point: no upsell past that."""
    budget_yen: int | None = None
    """The monthly amount the customer named with a price objection ("about 2,000 a
    month"), when they named one: an offer within it is not past the budget."""
    saving_yen: int | None = None
    """The monthly saving the agent quoted with a cheaper offer ("saves you 1,000 a
    month", 今より1500円お安く), for calls where the customer's plan is not known."""
    own_plans: list[str] = field(default_factory=list)
    """Plans the customer said they have ("I'm on the light plan"), for calls without a
    record: offers are judged up or down from them."""
    mentioned: list[str] = field(default_factory=list)
    """Products named in the call so far, latest first ("I'll buy this" refers to them)."""
    needs_asked: bool = False
    confirm_asked: bool = False
    """The agent's last words asked the customer to confirm what is being done ("is that
    okay?", よろしいでしょうか): "yes, that's fine" / 「はい、大丈夫です」 answer it yes."""
    leaving: bool = False
    """The customer said they want to cancel or leave and has not agreed to stay since:
    it outlasts the phase (an offer, a no, anger in between do not end it)."""
    wanted_to_leave: bool = False
    """The customer said at some point that they want to cancel or leave (even if they
    stay now): after a price reason to leave, one cheaper plan is the only fitting offer."""
    closing_asked: bool = False
    """The agent's wrap-up asked for more ("anything else I can help with?"): a need the
    customer names in answer opens the call again."""
    customer_turns: int = 0
    calm_turns: int = 0

    def apply(
        self,
        signals: Iterable[SignalDetected],
        speaker: Speaker | None = None,
        offer: tuple[str, str, str] = ("", "", ""),
    ) -> list[PhaseChanged]:
        """Move through the table for one utterance's signals; return the changes.

        ``offer`` is (kind, product id, suggestion id) of what the agent offered, when known.
        """
        batch = list(signals)
        names = [f"{s.speaker}:{s.signal}" for s in batch]
        speaker = speaker or (batch[0].speaker if batch else None)
        if speaker == "customer":
            self.customer_turns += 1
        elif speaker == "agent":
            self.confirm_asked = "agent:cue.confirm" in names
            self.closing_asked = "agent:closing_summary" in names and "agent:cue.question" in names
        for s in batch:
            if s.speaker == "customer" and s.signal in NEED_SIGNALS:
                if s.signal not in self.needs_heard:
                    self.needs_heard.append(s.signal)
                if s.signal == "price_objection":
                    self.budget_stated = True
                    self.budget_yen = stated_amount(s.evidence.text) or self.budget_yen
            if s.speaker == "agent" and s.signal == "needs_question":
                self.needs_asked = True
            if s.speaker == "agent" and s.signal in ("offer_made", "downsell_offer"):
                self.saving_yen = quoted_saving(s.evidence.text) or self.saving_yen
        ordered = sorted(batch, key=lambda s: _order(f"{s.speaker}:{s.signal}"))
        changes: list[PhaseChanged] = []
        on_price = bool({"customer:price_objection", "customer:competitor_mention"} & set(names))
        for sig in ordered:
            change = self._go(f"{sig.speaker}:{sig.signal}", sig.call_id, sig.t_ms, sig.evidence)
            if change is not None:
                self._record_offer(self.phase, sig.t_ms, offer, on_price)
                changes.append(change)
        self._note_offer_without_phase(names, batch, offer, changes, on_price)
        if "customer:cancel_intent" in names:
            self.leaving = True
            self.wanted_to_leave = True
        elif self.phase == "accepted":
            self.leaving = False
        if speaker == "customer" and self.phase == "care":
            self.calm_turns = 0 if "customer:anger" in names else self.calm_turns + 1
            if self.calm_turns >= CALM_TURNS and batch:
                change = self._go("customer:calm", batch[0].call_id, batch[0].t_ms, None)
                changes += [change] if change else []
        return changes

    def _note_offer_without_phase(
        self,
        names: list[str],
        batch: list[SignalDetected],
        offer: tuple[str, str, str],
        changes: list[PhaseChanged],
        on_price: bool,
    ) -> None:
        """In retention and care an offer opens no phase, yet it is an offer all the same:
        recorded, so that the customer's no to it is a no (and a re-ask a push). While an
        offer is open, another product put ("unlimited… then the 20 GB is within that")
        is the offer now open: a yes takes it."""
        offered_now = {"agent:offer_made", "agent:downsell_offer"} & set(names)
        last_open = self.last_offer
        if (
            self.phase == "offer_open"
            and not changes
            and batch
            and offered_now
            and offer[1]
            and last_open is not None
            and last_open.outcome == "open"
            and last_open.product_id != offer[1]
        ):
            self.offers.append(
                OfferRecord(batch[0].t_ms, offer[0], offer[1], suggestion_id=offer[2])
            )
            return
        if self.phase not in ("retention", "care") or changes or not batch:
            return
        offered = {"agent:offer_made", "agent:downsell_offer"} & set(names)
        last = self.last_offer
        if offered and (last is None or last.outcome != "open"):
            self.offers.append(
                OfferRecord(batch[0].t_ms, offer[0], offer[1], suggestion_id=offer[2])
            )
        elif (
            {"customer:refusal", "customer:price_objection"} & set(names)
            and last is not None
            and last.outcome == "open"
        ):
            self.offers[-1] = replace(last, outcome="declined", declined_on_price=on_price)

    def note_own_plan(self, product_id: str) -> None:
        if product_id and product_id not in self.own_plans:
            self.own_plans.insert(0, product_id)

    def note_mentioned(self, product_ids: Iterable[str]) -> None:
        for pid in product_ids:
            if pid in self.mentioned:
                self.mentioned.remove(pid)
            self.mentioned.insert(0, pid)

    def note_calm_turn(self, call_id: str, t_ms: int) -> list[PhaseChanged]:
        """A customer utterance without any signal: counts toward calming down."""
        self.customer_turns += 1
        if self.phase != "care":
            return []
        self.calm_turns += 1
        if self.calm_turns < CALM_TURNS:
            return []
        change = self._go("customer:calm", call_id, t_ms, None)
        return [change] if change else []

    def apply_feedback(
        self, action: str, call_id: str, t_ms: int, kind: str, product_id: str, sid: str
    ) -> list[PhaseChanged]:
        """The agent marked a suggestion accepted/declined/used: settle the offer history."""
        last = self.last_offer
        if action == "used" and (last is None or last.outcome != "open"):
            self.offers.append(OfferRecord(t_ms, kind, product_id, suggestion_id=sid))
            return []
        if action not in ("accepted", "declined"):
            return []
        if last is None or last.outcome != "open" or last.suggestion_id not in ("", sid):
            self.offers.append(OfferRecord(t_ms, kind, product_id, suggestion_id=sid))
        last = self.offers[-1]
        self.offers[-1] = replace(
            last,
            kind=last.kind or kind,
            product_id=last.product_id or product_id,
            outcome=action,
            suggestion_id=sid,
        )
        change = self._go(f"feedback:{action}", call_id, t_ms, None)
        return [change] if change else []

    def _go(
        self, trigger: str, call_id: str, t_ms: int, evidence: Evidence | None
    ) -> PhaseChanged | None:
        target = TRANSITIONS.get((self.phase, trigger)) or TRANSITIONS.get(("*", trigger))
        if target is None or target[0] == self.phase:
            return None
        if target[1] == "phase.need_reopened.v1" and not self.closing_asked:
            return None  # a summary that asked nothing: a late remark does not reopen
        to_phase, rule_id = target
        change = PhaseChanged(
            call_id=call_id,
            t_ms=t_ms,
            from_phase=self.phase,
            to_phase=to_phase,
            rule_id=rule_id,
            evidence=evidence,
        )
        if to_phase == "care":
            self.calm_turns = 0
        self.phase = to_phase
        return change

    def _record_offer(
        self, to_phase: Phase, t_ms: int, offer: tuple[str, str, str], on_price: bool
    ) -> None:
        if to_phase == "offer_open":
            self.offers.append(OfferRecord(t_ms, offer[0], offer[1], suggestion_id=offer[2]))
        elif (
            to_phase == "accepted"
            and offer[1]
            and (not self.offers or self.offers[-1].outcome != "open")
        ):
            # the customer's own decision: what they chose becomes the accepted offer
            self.offers.append(OfferRecord(t_ms, offer[0], offer[1], outcome="accepted"))
        elif to_phase == "accepted" and offer[1] and self.offers[-1].product_id != offer[1]:
            # a yes that names another product than the last one put takes the one named
            chosen = next((o for o in reversed(self.offers) if o.product_id == offer[1]), None)
            record = OfferRecord(t_ms, offer[0], offer[1]) if chosen is None else chosen
            self.offers.append(replace(record, t_ms=t_ms, outcome="accepted"))
        elif to_phase in ("declined", "accepted") and self.offers:
            last = self.offers[-1]
            outcome = "declined" if to_phase == "declined" else "accepted"
            # a no to something pricier after the customer gave a budget is a price no
            pricier = self.budget_stated and last.kind in ("upsell", "cross_sell")
            self.offers[-1] = replace(last, outcome=outcome, declined_on_price=on_price or pricier)

    @property
    def last_offer(self) -> OfferRecord | None:
        return self.offers[-1] if self.offers else None

    @property
    def last_accepted(self) -> OfferRecord | None:
        return next((o for o in reversed(self.offers) if o.outcome == "accepted"), None)

    def contexts(self, phase: Phase) -> set[str]:
        """The situations an agent utterance happens in: the phase, plus what outlasts it.
        A customer who is leaving stays in retention through an offer, a no or anger
        (cancellation wins over a complaint); a no stands in retention or care too."""
        found: set[str] = {phase}
        if self.leaving and phase in ("offer_open", "declined", "care"):
            found.add("retention")
        last = self.last_offer
        if last is not None and last.outcome == "declined" and phase in ("retention", "care"):
            found.add("declined")
        # a re-ask (an offer naming nothing new, or the refused product again) does not
        # undo the no before it: until the customer says yes, what follows is after it
        if (
            phase == "offer_open"
            and last is not None
            and any(
                o.outcome == "declined" and (not last.product_id or o.product_id == last.product_id)
                for o in self.offers[:-1]
            )
        ):
            found.add("declined")
        if "retention" in found:
            found.discard("care")
        return found

    def downsells_offered(self) -> int:
        return sum(1 for o in self.offers if o.kind == "downsell")


_AMOUNT = re.compile(r"(\d[\d,]*(?:\.\d+)?)\s*(千|k\b|grand\b|thousand\b)?")

_UNIT_WORDS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
)
_TEN_WORDS = "twenty thirty forty fifty sixty seventy eighty ninety"
_UNITS = {w: i for i, w in enumerate(_UNIT_WORDS.split(" "))}
_TENS = {w: 10 * i for i, w in enumerate(_TEN_WORDS.split(" "), start=2)}
_SCALES = {"hundred": 100, "thousand": 1000, "grand": 1000}
_NUMBER_WORD = re.compile(
    r"\b(?:"
    + "|".join([*_UNITS, *_TENS, *_SCALES, "and", "a", "half"])
    + r")\b(?:[\s-]+|(?=[^\w\s])|$)",
    re.IGNORECASE,
)
_KANJI_DIGITS = {c: i for i, c in enumerate("〇一二三四五六七八九")}
_KANJI_NUMBER = re.compile(r"[〇一二三四五六七八九十百千]+")


def _english_run(words: list[str]) -> str | None:
    """One run of number words as digits: arithmetic when it has a scale ("three and a
    half thousand" 3500, "eleven hundred" 1100), else the pieces said one after another,
    as prices are read out ("four four eighty" 4480, "five fifty" 550, "twenty five" 25)."""
    words = [w for w in words if w]
    while words and words[-1] in ("and", "a", "half"):
        words.pop()
    while words and words[0] in ("and", "a", "half"):
        words.pop(0)
    if not words:
        return None
    if any(w in _SCALES for w in words):
        total, part = 0.0, 0.0
        for i, w in enumerate(words):
            if w in _UNITS:
                part += _UNITS[w]
            elif w in _TENS:
                part += _TENS[w]
            elif w == "half" and i > 0 and words[i - 1] == "a":
                part += 0.5
            elif w == "hundred":
                part = (part or 1) * 100
            elif w in ("thousand", "grand"):
                total += (part or 1) * 1000
                part = 0
        return str(int(total + part))
    pieces: list[str] = []
    for w in words:
        if w in _UNITS and pieces and pieces[-1].endswith("0") and len(pieces[-1]) == 2:
            pieces[-1] = str(int(pieces[-1]) + _UNITS[w])  # "forty five"
        elif w in _UNITS:
            pieces.append(str(_UNITS[w]))
        elif w in _TENS:
            pieces.append(str(_TENS[w]))
        else:
            return None  # "and" / "a" inside a run with no scale: not one number
    return "".join(pieces)


def spoken_numbers(text: str) -> str:
    """The text with numbers said in words written as digits, for reading amounts only
    (a run's trailing "a" / "and" goes with it):
    English number words (one run at a time) and Japanese kanji numerals (四千 4000,
    三千五百 3500, 千 1000)."""
    out: list[str] = []
    pos = 0
    for m in re.finditer(r"(?:" + _NUMBER_WORD.pattern + r")+", text, re.IGNORECASE):
        run = [w.lower() for w in re.split(r"[\s-]+", m.group(0)) if w]
        digits = _english_run(run)
        if digits is None or not any(w not in ("and", "a", "half") for w in run):
            continue
        out += [text[pos : m.start()], digits, " " if m.group(0)[-1:].isspace() else ""]
        pos = m.end()
    text = "".join(out) + text[pos:]
    return _KANJI_NUMBER.sub(lambda m: str(_kanji_value(m.group(0))), text)


def _kanji_value(numeral: str) -> int:
    total, digit = 0, 0
    for c in numeral:
        if c in _KANJI_DIGITS:
            digit = digit * 10 + _KANJI_DIGITS[c]
        else:
            total += (digit or 1) * {"十": 10, "百": 100, "千": 1000}[c]
            digit = 0
    return total + digit


_SAVING = re.compile(
    r"(?:save|saves|saving|down|off|less|cheaper|lower)\s+(?:you\s+|by\s+|of\s+)?(?:about\s+)?"
    r"[¥$]?(\d[\d,]*)"
    r"|[¥$]?(\d[\d,]*)\s*(?:yen\s*)?(?:a month\s*)?(?:less|off|cheaper|lower|saving)"
    r"|(\d[\d,]*)\s*円\s*(?:ほど|くらい|ぐらい|程度|も)?\s*(?:お?安く|お?安い|引き|割引|下が|節約|お得)",
    re.IGNORECASE,
)


def quoted_saving(text: str) -> int | None:
    """The monthly saving an agent quotes with a cheaper offer ("would save you a thousand
    a month", "1,500 less", 「今より1500円お安くなります」), if any."""
    folded = spoken_numbers(unicodedata.normalize("NFKC", text))
    found = [
        int(next(g for g in m.groups() if g).replace(",", "")) for m in _SAVING.finditer(folded)
    ]
    found = [v for v in found if 100 <= v <= 10_000]
    return max(found) if found else None


def stated_amount(text: str) -> int | None:
    """The monthly amount in a budget ("about 2,000 a month", 月3千円くらい, "four grand
    tops", 四千円まで), if any: the largest number that reads as yen (300 to 30,000)."""
    folded = spoken_numbers(unicodedata.normalize("NFKC", text))
    # digits read out one by one and written apart by recognition: "5-1-8-0", "5 1 8 0"
    folded = re.sub(r"\b\d(?:[- ]\d){2,4}\b", lambda m: re.sub(r"[- ]", "", m.group(0)), folded)
    amounts = []
    for m in _AMOUNT.finditer(folded):
        value = float(m.group(1).replace(",", "") or 0)
        if m.group(2):
            value *= 1000
        if 300 <= value <= 30_000:
            amounts.append(int(value))
    return max(amounts) if amounts else None


def _order(trigger: str) -> int:
    return TRIGGER_ORDER.index(trigger) + 1 if trigger in TRIGGER_ORDER else 0
