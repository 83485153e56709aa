"""What is known about the customer before the call: the CRM record the engine reasons on.

The record is validated against the catalogue (a plan the catalogue does not know is a
broken file, refused at start-up). Pure: the CRM adapter reads; this module only
checks and derives (cap, price, usage ratio, days to renewal).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from agent_assist.core.catalog import Catalog, Product
from agent_assist.errors import ConfigError

Tier = Literal["A", "B", "C", "D"]
ChurnRisk = Literal["low", "medium", "high"]
TIERS = ("A", "B", "C", "D")
CHURN_RISKS = ("low", "medium", "high")


@dataclass(frozen=True, slots=True)
class Purchase:
    product_id: str
    date: dt.date


@dataclass(frozen=True, slots=True)
class Complaint:
    topic: str
    date: dt.date


@dataclass(frozen=True)
class CustomerContext:
    customer_id: str
    name: str
    plan_id: str
    """The main plan (the product most offers start from)."""
    term_id: str
    products: tuple[str, ...]
    """Everything else the customer holds: a home line, options."""
    monthly_price: int
    """What the customer pays for the plan now (after term discounts)."""
    usage_gb: float | None
    """Data used last month, if the plan has a cap."""
    renewal_date: dt.date | None
    tenure_months: int
    purchases: tuple[Purchase, ...]
    complaints: tuple[Complaint, ...]
    churn_risk: ChurnRisk
    tier: Tier
    """Priority class: A expansion potential and track record high ... D little room."""

    def holds(self, product_id: str) -> bool:
        return product_id == self.plan_id or product_id in self.products

    def held_in_family(self, catalog: Catalog, family: str) -> Product | None:
        """The plan the customer holds in a family (their main plan first)."""
        for pid in (self.plan_id, *self.products):
            product = catalog.get(pid)
            if product is not None and product.family == family and product.kind == "plan":
                return product
        return None

    def usage_ratio(self, catalog: Catalog) -> float | None:
        plan = catalog.get(self.plan_id)
        if plan is None or plan.data_gb is None or self.usage_gb is None or not plan.data_gb:
            return None
        return self.usage_gb / plan.data_gb

    def days_to_renewal(self, today: dt.date | None) -> int | None:
        if today is None or self.renewal_date is None:
            return None
        return (self.renewal_date - today).days


def parse_customers(
    doc: Mapping[str, Any], source: str, catalog: Catalog
) -> dict[str, CustomerContext]:
    """Validate a customers document against the catalogue; list every problem."""
    problems: list[str] = []
    add = problems.append
    raw_list = doc.get("customer", [])
    if not isinstance(raw_list, list) or not all(isinstance(r, dict) for r in raw_list):
        raise ConfigError(source, ["customer: must be a list of [[customer]] tables"])
    out: dict[str, CustomerContext] = {}
    for i, raw in enumerate(raw_list):
        cid = raw.get("id")
        if not isinstance(cid, str) or not cid:
            add(f"customer[{i}].id: must be a non-empty string")
            cid = f"?{i}"
        where = f"customer[{i}] ({cid})"
        if cid in out:
            add(f"{where}.id: duplicate customer id")
        name = raw.get("name", "")
        if not isinstance(name, str):
            add(f"{where}.name: must be a string")
        plan_id = raw.get("plan")
        plan = catalog.get(plan_id) if isinstance(plan_id, str) else None
        if plan is None or plan.kind != "plan":
            add(f"{where}.plan: {plan_id!r} is not a plan in the catalogue")
        term_id = raw.get("term", "monthly")
        term = catalog.terms.get(term_id) if isinstance(term_id, str) else None
        if term is None:
            add(f"{where}.term: {term_id!r} is not a term in the catalogue")
        products = raw.get("products", [])
        if not isinstance(products, list) or not all(isinstance(p, str) for p in products):
            add(f"{where}.products: must be a list of product ids")
            products = []
        for j, pid in enumerate(products):
            if catalog.get(pid) is None:
                add(f"{where}.products[{j}]: unknown product {pid!r}")
        price = raw.get("monthly_price")
        if price is None and plan is not None:
            price = plan.monthly_price - (term.monthly_discount if term else 0)
        if not isinstance(price, int) or isinstance(price, bool) or price < 0:
            add(f"{where}.monthly_price: must be an integer amount >= 0")
            price = 0
        usage = raw.get("usage_gb")
        if usage is not None and (
            isinstance(usage, bool) or not isinstance(usage, int | float) or usage < 0
        ):
            add(f"{where}.usage_gb: must be a number >= 0")
            usage = None
        renewal = raw.get("renewal_date")
        if renewal is not None and not isinstance(renewal, dt.date):
            add(f"{where}.renewal_date: must be a TOML date such as 2026-12-15")
            renewal = None
        tenure = raw.get("tenure_months", 0)
        if not isinstance(tenure, int) or tenure < 0:
            add(f"{where}.tenure_months: must be an integer >= 0")
            tenure = 0
        churn = raw.get("churn_risk", "low")
        if churn not in CHURN_RISKS:
            add(f"{where}.churn_risk: must be one of {list(CHURN_RISKS)}")
        tier = raw.get("tier", "C")
        if tier not in TIERS:
            add(f"{where}.tier: must be one of {list(TIERS)}")
        purchases = tuple(
            Purchase(str(p), d)
            for p, d in _dated(raw.get("purchases", []), "product", f"{where}.purchases", problems)
        )
        for j, purchase in enumerate(purchases):
            if catalog.get(purchase.product_id) is None:
                add(f"{where}.purchases[{j}].product: unknown product {purchase.product_id!r}")
        complaints = tuple(
            Complaint(str(t), d)
            for t, d in _dated(raw.get("complaints", []), "topic", f"{where}.complaints", problems)
        )
        out[cid] = CustomerContext(
            customer_id=cid,
            name=str(name),
            plan_id=str(plan_id),
            term_id=str(term_id),
            products=tuple(products),
            monthly_price=price,
            usage_gb=None if usage is None else float(usage),
            renewal_date=renewal,
            tenure_months=tenure,
            purchases=purchases,
            complaints=complaints,
            churn_risk=churn,
            tier=tier,
        )
    if problems:
        raise ConfigError(source, problems)
    return out


def _dated(
    value: object, key: str, where: str, problems: list[str]
) -> list[tuple[object, dt.date]]:
    if not isinstance(value, list):
        problems.append(f"{where}: must be a list of {{{key} = ..., date = ...}} tables")
        return []
    out = []
    for j, item in enumerate(value):
        if not isinstance(item, dict):
            problems.append(f"{where}[{j}]: must be a table")
            continue
        if not isinstance(item.get(key), str) or not item.get(key):
            problems.append(f"{where}[{j}].{key}: must be a non-empty string")
        if not isinstance(item.get("date"), dt.date):
            problems.append(f"{where}[{j}].date: must be a TOML date such as 2026-05-01")
            continue
        out.append((item.get(key), item["date"]))
    return out
