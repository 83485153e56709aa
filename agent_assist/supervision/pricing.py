"""What an accepted offer is worth: monthly price difference and expected months.

The statistics ask one question, ``value_of(offer_id, customer_id)``, behind the
``PriceTable`` protocol. The bundled adapter reads a small TOML table
(``data/pricing/*.toml``); a catalogue or CRM adapter that knows each customer's current
plan can answer the same question instead.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from typing import Any, Protocol

from agent_assist.config import Config
from agent_assist.errors import ConfigError


@dataclass(frozen=True, slots=True)
class OfferValue:
    monthly_delta: float
    """Change in monthly revenue when the customer takes the offer (negative for a downsell)."""
    months: int
    retained_monthly: float
    """Monthly revenue a downsell keeps that a lost customer would take away (0 if none)."""
    currency: str

    @property
    def lifetime_delta(self) -> float:
        return self.monthly_delta * self.months

    @property
    def retained_value(self) -> float:
        return self.retained_monthly * self.months


class PriceTable(Protocol):
    currency: str

    def value_of(self, offer_id: str, customer_id: str | None) -> OfferValue | None: ...


class TomlPriceTable:
    """``PriceTable`` from a TOML file: ``[offers.<id>] monthly_delta``, ``expected_months``."""

    def __init__(self, doc: dict[str, Any], source: str) -> None:
        problems: list[str] = []
        self.currency = str(doc.get("currency", ""))
        default_months = doc.get("expected_months", 12)
        if not isinstance(default_months, int) or default_months < 1:
            problems.append("expected_months: must be a whole number of months >= 1")
            default_months = 12
        self._offers: dict[str, OfferValue] = {}
        offers = doc.get("offers", {})
        if not isinstance(offers, dict):
            problems.append("offers: must be a table of [offers.<id>]")
            offers = {}
        for offer_id, raw in offers.items():
            delta = raw.get("monthly_delta") if isinstance(raw, dict) else None
            if not isinstance(delta, int | float):
                problems.append(f"offers.{offer_id}.monthly_delta: must be a number")
                continue
            months = raw.get("expected_months", default_months)
            retained = raw.get("retained_monthly", 0)
            if not isinstance(months, int) or months < 1:
                problems.append(f"offers.{offer_id}.expected_months: must be >= 1")
                continue
            if not isinstance(retained, int | float):
                problems.append(f"offers.{offer_id}.retained_monthly: must be a number")
                continue
            self._offers[offer_id] = OfferValue(
                float(delta), months, float(retained), self.currency
            )
        if problems:
            raise ConfigError(source, problems)

    def value_of(self, offer_id: str, customer_id: str | None) -> OfferValue | None:
        return self._offers.get(offer_id)


def load_price_table(config: Config) -> TomlPriceTable:
    if config.pricing.file:
        path = config.resolve(config.pricing.file)
        try:
            text, source = path.read_text(encoding="utf-8"), str(path)
        except OSError as exc:
            raise ConfigError("config.toml", [f"pricing.file: cannot read {path}: {exc}"]) from exc
    else:
        ref = resources.files("agent_assist") / "data" / "pricing" / "nova_mobile.toml"
        text, source = ref.read_text(encoding="utf-8"), "pricing/nova_mobile.toml"
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, [f"not valid TOML: {exc}"]) from exc
    return TomlPriceTable(doc, source)
