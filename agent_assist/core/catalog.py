"""The operator's catalogue as data: products, plans, options, terms and their relations.

A product ladder (``higher_tier_of`` / ``lower_tier_of``) gives upsell and downsell
targets; ``accessory_of`` says which add-ons are related to which products, so a
cross-sell is only ever suggested for something the customer has just decided on.
Parsing lists every problem by key path. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from agent_assist.core.events import LANGUAGES
from agent_assist.errors import ConfigError

Localized = Mapping[str, str]
ProductKind = Literal["plan", "option"]


@dataclass(frozen=True, slots=True)
class Term:
    """A contract term: a longer commitment buys a monthly discount."""

    term_id: str
    name: Localized
    commitment_months: int
    monthly_discount: int


@dataclass(frozen=True)
class Product:
    product_id: str
    kind: ProductKind
    family: str
    name: Localized
    monthly_price: int
    data_gb: float | None
    speed_mbps: int | None
    higher_tier: str | None
    """The next tier up of the same family (the upsell target), if any."""
    lower_tier: str | None
    """The next tier down of the same family (the downsell target), if any."""
    accessory_of: frozenset[str]
    """Product ids this option belongs with (``family:<name>`` entries are expanded)."""
    needs: frozenset[str]
    """Need tags this product answers (speed, capacity, family, device, security...)."""
    needs_only: bool
    """Related to a purchase only through one of ``needs`` heard (``related_by = "need"``)."""
    aliases: Mapping[str, tuple[str, ...]]
    """Words by which an agent names it, per language (lower-case for English)."""
    benefit: Localized
    """What it does for the customer, as a clause a script line can use (may be empty)."""
    adds_line: bool = False
    """An option that is itself a line (``adds_line = true``: a family line): add-ons for
    its kind of line belong with it, as they do with a plan of that kind."""


@dataclass(frozen=True)
class Catalog:
    operator: str
    currency: str
    products: Mapping[str, Product]
    terms: Mapping[str, Term]
    _folded: dict[str, list[tuple[Product, tuple[str, ...]]]] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )
    _lookups: dict[tuple[str, str], list[tuple[Product, list[tuple[int, int]]]]] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )

    def get(self, product_id: str | None) -> Product | None:
        return self.products.get(product_id) if product_id else None

    def accessories_of(self, product_id: str) -> list[Product]:
        """Options related to ``product_id``, in catalogue order."""
        return [p for p in self.products.values() if product_id in p.accessory_of]

    def find_named(self, text: str, language: str) -> tuple[Product, int, int] | None:
        """The product an utterance names (longest alias wins), with its character span.

        Width is folded (ＧＢ = GB) and case ignored; an English alias must stand as whole
        words ("1 gig" is not found inside "21 gig").
        """
        best: tuple[Product, int, int] | None = None
        for product, spans in self._spans(text, language):
            at, end = max(spans, key=lambda s: (s[1] - s[0], -s[0]))
            if best is None or end - at > best[2] - best[1]:
                best = (product, at, end)
        return best

    def find_all_named(self, text: str, language: str) -> list[tuple[Product, int, int]]:
        """Every product an utterance names, in order of position (longest alias each)."""
        found = [
            (product, *min(spans, key=lambda s: (s[0], -s[1])))
            for product, spans in self._spans(text, language)
        ]
        return sorted(found, key=lambda f: f[1])

    def _spans(self, text: str, language: str) -> list[tuple[Product, list[tuple[int, int]]]]:
        """Each product named in ``text`` with the spans of its aliases (the first place
        each alias occurs). The last few texts are remembered: one utterance is looked up
        by several stages."""
        key = (text, language)
        cached = self._lookups.get(key)
        if cached is not None:
            return cached
        hay = fold_width(text).lower()
        whole = language == "en"
        out = []
        for product, keys in self._folded_aliases(language):
            spans = [(at, at + len(k)) for k in keys if (at := _find_alias(hay, k, whole)) >= 0]
            if spans:
                out.append((product, spans))
        if len(self._lookups) > 64:
            self._lookups.clear()
        self._lookups[key] = out
        return out

    def _folded_aliases(self, language: str) -> list[tuple[Product, tuple[str, ...]]]:
        folded = self._folded.get(language)
        if folded is None:
            folded = [
                (p, tuple(fold_width(a).lower() for a in p.aliases.get(language, ())))
                for p in self.products.values()
            ]
            self._folded[language] = folded
        return folded

    def money(self, amount: int, language: str) -> str:
        """An amount as the customer hears it: ``¥1,000`` or ``1,000円``."""
        if self.currency == "JPY":
            return f"{amount:,}円" if language == "ja" else f"¥{amount:,}"
        return f"{amount:,} {self.currency}"


def fold_width(text: str) -> str:
    """Full-width ASCII to half-width, one character for one (offsets stay valid)."""
    return "".join(chr(ord(c) - 0xFEE0) if 0xFF01 <= ord(c) <= 0xFF5E else c for c in text)


def _find_alias(hay: str, key: str, whole_words: bool) -> int:
    at = hay.find(key)
    while at >= 0 and whole_words:
        before = hay[at - 1] if at > 0 else " "
        after = hay[at + len(key)] if at + len(key) < len(hay) else " "
        if not (before.isalnum() or after.isalnum()):
            return at
        at = hay.find(key, at + 1)
    return at


def parse_catalog(doc: Mapping[str, Any], source: str) -> Catalog:
    """Validate a catalogue document; raise ``ConfigError`` listing every problem."""
    problems: list[str] = []
    add = problems.append
    operator = doc.get("operator")
    if not isinstance(operator, str) or not operator:
        add("operator: must be the operator's name")
    currency = doc.get("currency", "JPY")
    if not isinstance(currency, str) or len(currency) != 3 or not currency.isupper():
        add("currency: must be a 3-letter currency code such as 'JPY'")
    terms: dict[str, Term] = {}
    for i, raw in enumerate(_list(doc, "term", problems)):
        where = f"term[{i}]"
        term_id = _id(raw, where, problems)
        months, discount = raw.get("commitment_months", 0), raw.get("monthly_discount", 0)
        if not isinstance(months, int) or months < 0:
            add(f"{where}.commitment_months: must be an integer >= 0")
            months = 0
        if not isinstance(discount, int) or discount < 0:
            add(f"{where}.monthly_discount: must be an integer >= 0")
            discount = 0
        if term_id in terms:
            add(f"{where}.id: duplicate term id {term_id!r}")
        terms[term_id] = Term(
            term_id, _localized(raw.get("name"), f"{where}.name", problems), months, discount
        )
    raw_products = _list(doc, "product", problems)
    if not raw_products:
        add("product: at least one [[product]] is required")
    ids = [str(r.get("id")) for r in raw_products]
    families = {str(r.get("family")) for r in raw_products}
    fields: dict[str, dict[str, Any]] = {}
    for i, raw in enumerate(raw_products):
        where = f"product[{i}]"
        pid = _id(raw, where, problems)
        where = f"product[{i}] ({pid})"
        if pid in fields:
            add(f"{where}.id: duplicate product id")
        kind = raw.get("kind")
        if kind not in ("plan", "option"):
            add(f"{where}.kind: must be 'plan' or 'option'")
        family = raw.get("family")
        if not isinstance(family, str) or not family:
            add(f"{where}.family: must name the product family (e.g. 'mobile')")
        price = raw.get("monthly_price")
        if not isinstance(price, int) or isinstance(price, bool) or price < 0:
            add(f"{where}.monthly_price: must be an integer amount >= 0")
            price = 0
        data_gb = _number(raw.get("data_gb"), f"{where}.data_gb", problems)
        speed = raw.get("speed_mbps")
        if speed is not None and (not isinstance(speed, int) or speed <= 0):
            add(f"{where}.speed_mbps: must be a positive integer")
            speed = None
        higher, lower = raw.get("higher_tier_of"), raw.get("lower_tier_of")
        for key, ref in (("higher_tier_of", higher), ("lower_tier_of", lower)):
            if ref is None:
                continue
            if ref not in ids:
                add(f"{where}.{key}: unknown product {ref!r}")
            elif ref == pid:
                add(f"{where}.{key}: a product cannot be a tier of itself")
            elif raw_products[ids.index(ref)].get("family") != family:
                add(f"{where}.{key}: {ref!r} is in another family")
        accessory: set[str] = set()
        for j, ref in enumerate(
            _strings(raw.get("accessory_of", []), f"{where}.accessory_of", problems)
        ):
            if ref.startswith("family:"):
                if ref[7:] not in families:
                    add(f"{where}.accessory_of[{j}]: unknown family {ref[7:]!r}")
                accessory |= {
                    str(r.get("id"))
                    for r in raw_products
                    if r.get("family") == ref[7:] and r.get("kind") == "plan"
                }
            elif ref not in ids:
                add(f"{where}.accessory_of[{j}]: unknown product {ref!r}")
            else:
                accessory.add(ref)
        if accessory and kind != "option":
            add(f"{where}.accessory_of: only an option can be an accessory")
        aliases_raw = raw.get("aliases", {})
        aliases: dict[str, tuple[str, ...]] = {}
        if not isinstance(aliases_raw, dict):
            add(f"{where}.aliases: must be a table of language -> list of words")
        else:
            for lang, words in aliases_raw.items():
                if lang not in LANGUAGES:
                    add(f"{where}.aliases.{lang}: unknown language (use {list(LANGUAGES)})")
                listed = _strings(words, f"{where}.aliases.{lang}", problems)
                aliases[lang] = tuple(w.lower() if lang == "en" else w for w in listed)
        fields[pid] = {
            "product_id": pid,
            "kind": kind,
            "family": str(family),
            "name": _localized(raw.get("name"), f"{where}.name", problems),
            "monthly_price": price,
            "data_gb": data_gb,
            "speed_mbps": speed,
            "higher_of": higher,
            "lower_of": lower,
            "accessory_of": frozenset(accessory),
            "needs": frozenset(_strings(raw.get("needs", []), f"{where}.needs", problems)),
            "needs_only": _related_by(raw, where, problems),
            "adds_line": raw.get("adds_line", False) is True,
            "aliases": aliases,
            "benefit": (
                _localized(raw["benefit"], f"{where}.benefit", problems) if "benefit" in raw else {}
            ),
        }
    higher_tier, lower_tier = _ladder(fields, problems)
    if problems:
        raise ConfigError(source, problems)
    products = {
        pid: Product(
            product_id=pid,
            kind=f["kind"],
            family=f["family"],
            name=f["name"],
            monthly_price=f["monthly_price"],
            data_gb=f["data_gb"],
            speed_mbps=f["speed_mbps"],
            higher_tier=higher_tier.get(pid),
            lower_tier=lower_tier.get(pid),
            accessory_of=f["accessory_of"],
            needs=f["needs"],
            needs_only=f["needs_only"],
            aliases=f["aliases"],
            benefit=f["benefit"],
            adds_line=f["adds_line"],
        )
        for pid, f in fields.items()
    }
    return Catalog(str(operator), str(currency), products, terms)


def _related_by(raw: Mapping[str, Any], where: str, problems: list[str]) -> bool:
    """``related_by = "need"``: an add-on that fits a purchase only through a need the
    customer named (a family line answers a family member, not the plan bought)."""
    value = raw.get("related_by", "product")
    if value not in ("product", "need"):
        problems.append(f"{where}.related_by: must be 'product' or 'need'")
    elif value == "need" and raw.get("kind") != "option":
        problems.append(f"{where}.related_by: only an option can be related by a need")
    return bool(value == "need")


def _ladder(
    fields: Mapping[str, Mapping[str, Any]], problems: list[str]
) -> tuple[dict[str, str], dict[str, str]]:
    """Both directions of the tier relation, from whichever side the file states."""
    up: dict[str, str] = {}
    down: dict[str, str] = {}

    def link(low: str, high: str, where: str) -> None:
        if up.get(low, high) != high or down.get(high, low) != low:
            problems.append(f"{where}: conflicting tiers ({low!r} -> {high!r})")
            return
        up[low], down[high] = high, low

    for pid, f in fields.items():
        if f["higher_of"] in fields:
            link(f["higher_of"], pid, f"product ({pid}).higher_tier_of")
        if f["lower_of"] in fields:
            link(pid, f["lower_of"], f"product ({pid}).lower_tier_of")
    for start in up:
        seen, at = {start}, start
        while at in up:
            at = up[at]
            if at in seen:
                problems.append(f"product ({start}): the tier ladder loops back to {at!r}")
                break
            seen.add(at)
    return up, down


def _list(doc: Mapping[str, Any], key: str, problems: list[str]) -> list[dict[str, Any]]:
    raw = doc.get(key, [])
    if not isinstance(raw, list) or not all(isinstance(t, dict) for t in raw):
        problems.append(f"{key}: must be a list of [[{key}]] tables")
        return []
    return raw


def _id(raw: Mapping[str, Any], where: str, problems: list[str]) -> str:
    value = raw.get("id")
    if not isinstance(value, str) or not value:
        problems.append(f"{where}.id: must be a non-empty string")
        return f"?{where}"
    return value


def _number(value: object, where: str, problems: list[str]) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        problems.append(f"{where}: must be a number >= 0")
        return None
    return float(value)


def _strings(value: object, where: str, problems: list[str]) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        problems.append(f"{where}: must be a list of non-empty strings")
        return []
    return value


def _localized(value: object, where: str, problems: list[str]) -> Localized:
    if not isinstance(value, dict):
        problems.append(f"{where}: must be a table with {list(LANGUAGES)} texts")
        return {}
    missing = [lang for lang in LANGUAGES if not isinstance(value.get(lang), str)]
    if missing:
        problems.append(f"{where}: missing text for {missing}")
    return {k: str(v) for k, v in value.items()}
