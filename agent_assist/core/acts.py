"""Dialogue acts in context: what an utterance does, given the call so far.

The signal rules see one utterance; many acts only exist against the conversation:
「大丈夫です」 after an offer is a no, and before one it is nothing; "come on, it's really
worth it" after a no is the offer again; a product named in a proposing frame is an offer
even without a sales verb ("there's also our security pack you could add"). The rule
files therefore also emit *cues* (signals named ``cue.*``: a product named, a proposing
frame, a service act, a re-ask, a soft no, a yes, a decision to buy, a need stated, a
question, a topic of usage, budget, habits or problems). This module turns cues into the
signals the rest of the pipeline knows, and the cues never leave the session. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from agent_assist.core.catalog import Catalog, Product
from agent_assist.core.events import Evidence, SignalDetected, TranscriptFinal
from agent_assist.core.phases import CallState

CUE = "cue."

OFFER_RULE = "act.offer.product_in_proposal.v1"
REASK_RULE = "act.offer.reask_after_no.v1"
REFUSAL_RULE = "act.refusal.soft_reply_to_offer.v1"
AGREEMENT_RULE = "act.agreement.yes_to_offer.v1"
DECISION_RULE = "act.agreement.own_purchase_decision.v1"
NEEDS_RULE = "act.needs_question.question_on_topic.v1"

_BLOCKERS = ("cue.calm", "cue.service", "cue.yours", "cue.logistics")
"""Cues that make a product named beside them no offer ("done, you're on the 50 GB
plan"; "I'll send the router"): they hold only within their own sentence."""
_SENTENCE_END = re.compile(r"[。！？!?]+|\.(?=\s|$)")

_OPEN = ("offer_open",)
_NO_SALE = ("retention", "care", "declined")


def is_cue(signal: SignalDetected) -> bool:
    return signal.signal.startswith(CUE)


@dataclass(frozen=True, slots=True)
class Decided:
    """What the customer decided to buy on their own (no open offer): kind and product."""

    kind: str
    product_id: str


def own_plan(
    final: TranscriptFinal, signals: Sequence[SignalDetected], catalog: Catalog, language: str
) -> str:
    """The plan the customer has, when the words say so ("I'm on the 20 GB plan",
    今は20ギガプランです; the agent's "you're on the light plan"), else ""."""
    mark = "cue.own" if final.speaker == "customer" else "cue.yours"
    spans = sentence_spans(final.text)

    def at(pos: int) -> int:
        return next((i for i, (_, e) in enumerate(spans) if pos < e), len(spans) - 1)

    # read per sentence: 「田中さま、20ギガプランですね。どのくらいお使いですか。」
    named = [n for n in catalog.find_all_named(final.text, language) if n[0].kind == "plan"]
    for sentence in sorted({at(s.evidence.start) for s in signals if s.signal == mark}):
        names = {s.signal for s in signals if at(s.evidence.start) == sentence}
        if "cue.decision" in names or "cue.proposal" in names:
            continue
        plans = [n for n in named if at(n[1]) == sentence]
        if len(plans) == 1:
            return plans[0][0].product_id
    return ""


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of the sentences of an utterance, by their end marks; text without
    marks (recognition often has none) is one sentence. "18.2" or "¥4.5" is no end."""
    spans, start = [], 0
    for m in _SENTENCE_END.finditer(text):
        if text[start : m.end()].strip():
            spans.append((start, m.end()))
        start = m.end()
    if text[start:].strip():
        spans.append((start, len(text)))
    return spans or [(0, len(text))]


def interpret(
    final: TranscriptFinal,
    signals: Sequence[SignalDetected],
    state: CallState,
    catalog: Catalog,
    language: str,
    held: frozenset[str] = frozenset(),
) -> tuple[list[SignalDetected], Decided | None]:
    """The utterance's signals with its acts added (cues kept, for the state's table).

    ``held``: products the customer has (record, own words) or took in this call; naming
    one of them ("you stay on your 20 GB plan") is no offer."""
    by: dict[str, SignalDetected] = {}
    for s in signals:
        by.setdefault(s.signal, s)  # the first place a cue occurs speaks for it
    out = list(signals)
    if final.speaker == "agent":
        _agent_acts(final, by, out, state, catalog, language, held)
        return out, None
    # with no offer open, "yes please" / 「よろしくお願いします」 is politeness, not a purchase:
    # a decision to buy takes its own words (a decision cue) or a product named
    agreed = by.get("agreement")
    if (
        agreed is not None
        and state.phase in ("opening", "discovery")
        and "cue.decision" not in by
        and catalog.find_named(final.text, language) is None
    ):
        out.remove(agreed)
        del by["agreement"]
    # a rule heard a yes; the model's price objection on the same words, with no rule
    # hearing money, is the model mistaking the yes ("ほなそれつけといてもらえる")
    priced = by.get("price_objection")
    if (
        priced is not None
        and priced.rule_id.startswith("model.")
        and "agreement" in by
        and not by["agreement"].rule_id.startswith("model.")
    ):
        out.remove(priced)
        del by["price_objection"]
    # the model's yes on words whose rules hear only a soft no (「あー、大丈夫です。追加で
    # 買います」 to an offer: the top-up, not the offer) is the model mistaking the no
    model_yes = by.get("agreement")
    if (
        model_yes is not None
        and model_yes.rule_id.startswith("model.")
        and "cue.soft_no" in by
        and "cue.yes" not in by
        and state.phase in _OPEN
    ):
        out.remove(model_yes)
        del by["agreement"]
    added, decided = _customer_acts(final, by, state, catalog, language, held)
    return out + added, decided


def _agent_acts(
    final: TranscriptFinal,
    by: dict[str, SignalDetected],
    out: list[SignalDetected],
    state: CallState,
    catalog: Catalog,
    language: str,
    held: frozenset[str] = frozenset(),
) -> None:
    """Adds the agent's acts to ``out`` (and drops a model offer that names nothing)."""
    named_all = _not_held(catalog.find_all_named(final.text, language), held, out, by)
    named_all = _scope_to_offer_sentence(final, out, by, named_all)
    named = max(named_all, key=lambda n: n[2] - n[1]) if named_all else None
    product = by.get("cue.product")
    proposal = by.get("cue.proposal")
    service = by.get("cue.service")
    yours = by.get("cue.yours")
    reask = by.get("cue.reask")
    # the words say which way an offer goes when the model or a bare proposal does not
    made = by.get("offer_made")
    if made is not None and not made.detail and product is not None and product.detail:
        out[out.index(made)] = by["offer_made"] = replace(made, detail=product.detail)
    after_no = "declined" in state.contexts(state.phase)
    # the close of a call gates every offer: it takes the words, not the model's guess
    closing = by.get("closing_summary")
    if closing is not None and closing.rule_id.startswith("model."):
        out.remove(by.pop("closing_summary"))
    # the model's "offer" on a sentence that names no product is a question, not an offer
    model_offer = by.get("offer_made")
    if (
        model_offer is not None
        and model_offer.rule_id.startswith("model.")
        and product is None
        and named is None
    ):
        out.remove(model_offer)
        del by["offer_made"]
    # "how is the connection treating you?" (「使い心地はいかがですか」): a question about
    # the customer's own experience that names no product and no price is discovery
    asking_how = (
        "cue.question" in by
        and "cue.topic" in by
        and product is None
        and named is None
        and "cue.price" not in by
    )
    if asking_how and "offer_made" in by and not after_no:
        out.remove(by.pop("offer_made"))
    # asking to confirm the terms of what was just taken (「1年間のご契約となりますが、
    # よろしいですか」) names nothing new: no offer
    confirming = (
        "cue.confirm" in by
        and state.phase == "accepted"
        and named is None
        and (product is None or not product.detail)
    )
    if confirming:
        for name in ("offer_made", "downsell_offer"):
            if name in by:
                out.remove(by.pop(name))
        by.pop("cue.product", None)
        product = None
    # letting the customer be, or confirming what is done, with no proposing frame: a
    # product named there ("take your time"; "you're all set on the 20 GB plan") is no offer
    calm = "cue.calm" in by and (proposal is None or named is None)
    # a question about the customer's own use with no proposing frame ("how's the Light
    # plan working for you?") or a sentence about their own plan is not an offer either
    own = (
        "cue.question" in by
        and "cue.topic" in by
        and proposal is None
        and named is None
        and (product is None or not product.detail)
    )
    # (with nothing else named, a question about it is still about their own plan:
    # 「ホーム300Mでございますね。ご感想はいかがですか。」)
    mine = yours is not None and (proposal is None or (product is None and named is None))
    if calm or own or mine:
        for name in ("offer_made", "downsell_offer"):
            if name in by:
                out.remove(by.pop(name))
    offered = "offer_made" in by or "downsell_offer" in by
    if proposal is None and service is None and "cue.price" in by:
        proposal = by["cue.price"]  # a product with its price is put to the customer
    # (a sentence saying the customer has it, with no proposing frame, puts nothing)
    if not offered and not calm and not mine:
        # a named product or a word with a direction is a product; a generic word
        # ("plan", "deal") is one only outside a service act ("cancel your plan")
        strong = named is not None or (product is not None and bool(product.detail))
        weak = (
            product is not None and service is None and yours is None and "cue.logistics" not in by
        )
        # where no sale belongs (a cancellation, an upset customer, after a no) naming a
        # product at all is pitching it; elsewhere it takes a proposing frame
        # (a plain question about the customer's own equipment, "is the router light
        # on?", names a product without putting it to them)
        guarded = (
            state.phase in _NO_SALE
            and service is None
            and yours is None
            and "cue.logistics" not in by
            and not ("cue.question" in by and proposal is None and "cue.price" not in by)
        )
        if (proposal is not None or guarded) and (strong or (weak and proposal is not None)):
            cue = product or proposal
            if named is not None:
                ev = _span_of(final, named)
            else:
                assert cue is not None  # a generic or directional word was heard
                ev = cue.evidence
            detail = product.detail if product is not None else ""
            out.append(_derived(final, "offer_made", OFFER_RULE, ev, detail))
            offered = True
        elif after_no and strong and service is None and yours is None and product is not None:
            out.append(_derived(final, "offer_made", REASK_RULE, product.evidence, product.detail))
            offered = True
        elif (
            by.get("cue.proposal") is not None
            and "cue.price" in by
            and service is None
            and yours is None
            and "cue.logistics" not in by
            and "cue.question" not in by
        ):
            # a proposing frame with a monthly price is putting something to the customer
            # even when its name was lost ("if you move to the [misheard] plan, it's 3,480
            # a month"); its direction stays unknown
            price = by["cue.price"]
            out.append(_derived(final, "offer_made", OFFER_RULE, price.evidence, ""))
            offered = True
    if (
        not offered
        and after_no
        and (service is None or proposal is not None)  # selling beside a service word
        and "cue.calm" not in by
        and (reask is not None or "pressure_language" in by or "company_centric" in by)
    ):
        # after a no, insisting, hurrying the decision or pleading the company's (or the
        # agent's own) need is the offer made again, named or not ("shall I just set it
        # up?", 「お手続きだけ進めておかれては」): what the customer has does not excuse it
        cue = reask or by.get("pressure_language") or by["company_centric"]
        out.append(_derived(final, "offer_made", REASK_RULE, cue.evidence, ""))
        offered = True
    # a question about usage, budget, habits or problems is needs discovery; an offer put
    # as a question ("how about our light plan?") is an offer, not discovery
    asks = "cue.question" in by and "cue.topic" in by
    if asks and not offered and "needs_question" not in by:
        out.append(_derived(final, "needs_question", NEEDS_RULE, by["cue.topic"].evidence, ""))


def _not_held(
    named_all: list[tuple[Product, int, int]],
    held: frozenset[str],
    signals: list[SignalDetected],
    by: dict[str, SignalDetected],
) -> list[tuple[Product, int, int]]:
    """The products named that the customer does not have yet; a product word inside the
    name of one they have ("your 20 GB *plan*") is that product, not a new one, and its
    cue is dropped from ``signals`` and ``by``."""
    mine = [(s, e) for p, s, e in named_all if p.product_id in held]
    for cue in [c for c in signals if c.signal == "cue.product"]:
        if any(s < cue.evidence.end and cue.evidence.start < e for s, e in mine):
            signals.remove(cue)
            if by.get("cue.product") is cue:
                del by["cue.product"]
    if "cue.product" not in by:
        rest = [c for c in signals if c.signal == "cue.product"]
        if rest:
            by["cue.product"] = rest[0]
    return [n for n in named_all if n[0].product_id not in held]


def _scope_to_offer_sentence(
    final: TranscriptFinal,
    signals: Sequence[SignalDetected],
    by: dict[str, SignalDetected],
    named_all: list[tuple[Product, int, int]],
) -> list[tuple[Product, int, int]]:
    """When one sentence confirms or serves ("All sorted, it's live.") and another names a
    product free of such words ("Our security pack guards against scams, ¥330 a month."),
    the free sentence is the offer: the blocking cues and the products named elsewhere
    are set aside. One sentence (or none free) leaves everything as it is."""
    spans = sentence_spans(final.text)
    if len(spans) < 2:
        return named_all

    def at(pos: int) -> int:
        return next((i for i, (_, e) in enumerate(spans) if pos < e), len(spans) - 1)

    blocked = {at(s.evidence.start) for s in signals if s.signal in _BLOCKERS}
    products = [s for s in signals if s.signal == "cue.product"]
    mentions = {at(s.evidence.start) for s in products} | {at(n[1]) for n in named_all}
    # "that's the security pack. you signed up for it in spring": a sentence saying the
    # customer has it, naming nothing itself, speaks of the product named beside it
    if any(s.signal == "cue.yours" and at(s.evidence.start) not in mentions for s in signals):
        return named_all
    free = mentions - blocked
    # the free part must put something to the customer: a proposing frame or a price
    # outside the confirming or serving sentences
    putting = [
        s
        for s in signals
        if s.signal in ("cue.proposal", "cue.price") and at(s.evidence.start) not in blocked
    ]
    if not blocked or not free or not putting:
        return named_all
    for name in _BLOCKERS:
        by.pop(name, None)
    for name in ("cue.proposal", "cue.price"):
        first = next((s for s in putting if s.signal == name), None)
        if first is None:
            by.pop(name, None)
        else:
            by[name] = first
    in_free = [s for s in products if at(s.evidence.start) in free]
    if in_free:
        by["cue.product"] = in_free[0]
    else:
        by.pop("cue.product", None)
    return [n for n in named_all if at(n[1]) in free]


def _customer_acts(
    final: TranscriptFinal,
    by: dict[str, SignalDetected],
    state: CallState,
    catalog: Catalog,
    language: str,
    held: frozenset[str] = frozenset(),
) -> tuple[list[SignalDetected], Decided | None]:
    out: list[SignalDetected] = []
    soft_no, yes, decision = by.get("cue.soft_no"), by.get("cue.yes"), by.get("cue.decision")
    if state.confirm_asked and yes is not None and "refusal" not in by:
        soft_no = None  # "yes, that's fine" to "is that okay?": 大丈夫 agrees here
    leaving = "cancel_intent" in by
    last = state.last_offer
    # an offer made in retention or care opens no phase, but it is open all the same
    offer_open = state.phase in _OPEN or (
        state.phase in ("retention", "care") and last is not None and last.outcome == "open"
    )
    if offer_open:
        # both a soft no and a yes ("okay, I'll think about it"; いいですね、そうします):
        # the stance the customer ends on counts
        if soft_no is not None and yes is not None:
            if yes.evidence.end > soft_no.evidence.end:
                soft_no = None
            else:
                yes = None
        said_yes = "agreement" in by or yes is not None
        if soft_no is not None and not said_yes and "refusal" not in by:
            out.append(_derived(final, "refusal", REFUSAL_RULE, soft_no.evidence, ""))
        elif (
            (yes is not None or decision is not None)
            and soft_no is None
            and "refusal" not in by
            and "agreement" not in by
            and not leaving
        ):
            cue = yes or decision
            assert cue is not None
            out.append(_derived(final, "agreement", AGREEMENT_RULE, cue.evidence, ""))
        agreed = "agreement" in by or any(s.signal == "agreement" for s in out)
        return out, (_chosen(final, state, catalog, language, held) if agreed else None)
    if decision is None or leaving or "refusal" in by or state.phase in ("retention", "care"):
        return out, None
    # a decision to buy needs something to buy: a product named, or the one last offered
    named = catalog.find_named(final.text, language)
    product = named[0] if named else None
    if product is None and state.offers and state.offers[-1].product_id:
        product = catalog.get(state.offers[-1].product_id)
    if product is None and state.mentioned:  # "I'll buy this": the product last talked of
        product = catalog.get(state.mentioned[0])
    if product is None:
        return out, None
    kind = "cross_sell" if product is not None and product.kind == "option" else "upsell"
    if "agreement" not in by:
        out.append(_derived(final, "agreement", DECISION_RULE, decision.evidence, ""))
    return out, Decided(kind, product.product_id)


def _chosen(
    final: TranscriptFinal,
    state: CallState,
    catalog: Catalog,
    language: str,
    held: frozenset[str],
) -> Decided | None:
    """A yes that names its choice (「じゃあ、50ギガで」 after the unlimited plan and then
    the 50 GB were put): the product named is what was taken, not the last one recorded."""
    named = [p for p, _, _ in catalog.find_all_named(final.text, language)]
    fresh = [p for p in named if p.product_id not in held]
    last = state.last_offer
    if len(fresh) != 1 or (last is not None and last.product_id == fresh[0].product_id):
        return None
    product = fresh[0]
    return Decided("cross_sell" if product.kind == "option" else "upsell", product.product_id)


def _span_of(final: TranscriptFinal, named: tuple[object, int, int]) -> Evidence:
    _, start, end = named
    return Evidence(
        utterance_id=final.utterance_id,
        speaker=final.speaker,
        text=final.text,
        start=start,
        end=end,
        quote=final.text[start:end],
    )


def _derived(
    final: TranscriptFinal, signal: str, rule_id: str, evidence: Evidence, detail: str
) -> SignalDetected:
    return SignalDetected(
        call_id=final.call_id,
        t_ms=final.t_ms,
        signal=signal,
        speaker=final.speaker,
        rule_id=rule_id,
        evidence=evidence,
        detail=detail,
    )


def visible(signals: Sequence[SignalDetected]) -> list[SignalDetected]:
    """The signals the console and the store see: every cue dropped."""
    return [s for s in signals if not is_cue(s)]
