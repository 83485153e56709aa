"""Script lines from templates: the customer's gain, in numbers from catalogue and CRM.

A template names facts in braces (``{usage_gb}``, ``{price_diff}``). A line is only used
when every fact it names is known for this call; otherwise the rule's generic line (which
names catalogue facts only) is used, so no line ever states a number we do not have.
"""

from __future__ import annotations

import datetime as dt
import string
from collections.abc import Mapping

from agent_assist.core.catalog import Catalog, Product
from agent_assist.core.customer import CustomerContext

OFFER_FACTS = frozenset({"offer", "offer_price", "benefit"})
"""Known whenever there is a product to offer."""
BASE_FACTS = frozenset(
    {
        "current",
        "price_diff",
        "offer_data",
        "current_data",
        "offer_mbps",
        "current_mbps",
        "speed_factor",
        "decided",
    }
)
"""Known when there is a product to compare with (and it has the dimension named)."""
CUSTOMER_FACTS = frozenset(
    {
        "usage_gb",
        "cap_gb",
        "usage_pct",
        "renewal_date",
        "days_to_renewal",
        "tenure_years",
        "current_price",
        "name",
    }
)
"""Known only from the customer's record."""
ALL_FACTS = OFFER_FACTS | BASE_FACTS | CUSTOMER_FACTS


def placeholders(template: str) -> set[str]:
    """The fact names a template uses (raises ValueError on a malformed template)."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


def facts_for(
    catalog: Catalog,
    language: str,
    offer: Product,
    base: Product | None,
    customer: CustomerContext | None,
    today: dt.date | None,
    decided: Product | None = None,
) -> dict[str, str]:
    """Every fact that is known for this offer, formatted for ``language``."""
    ja = language == "ja"
    money = catalog.money

    def price(product: Product) -> int:
        return _price_for(catalog, customer, product)

    f: dict[str, str] = {
        "offer": offer.name[language],
        "offer_price": money(price(offer), language),
        "benefit": _benefit(offer, language),
    }
    if offer.data_gb is not None:
        f["offer_data"] = f"{_num(offer.data_gb)}GB" if ja else f"{_num(offer.data_gb)} GB"
    elif offer.kind == "plan" and offer.family == "mobile":
        f["offer_data"] = "データ無制限" if ja else "unlimited data"
    if offer.speed_mbps:
        f["offer_mbps"] = f"{offer.speed_mbps:,}"
    if decided is not None:
        f["decided"] = decided.name[language]
    if base is not None:
        f["current"] = base.name[language]
        f["price_diff"] = money(abs(price(offer) - price(base)), language)
        if base.data_gb is not None:
            f["current_data"] = f"{_num(base.data_gb)}GB" if ja else f"{_num(base.data_gb)} GB"
        if base.speed_mbps:
            f["current_mbps"] = f"{base.speed_mbps:,}"
            if offer.speed_mbps:
                f["speed_factor"] = _num(round(offer.speed_mbps / base.speed_mbps, 1))
    if customer is not None:
        f["name"] = customer.name
        f["current_price"] = money(customer.monthly_price, language)
        f["tenure_years"] = _num(round(customer.tenure_months / 12, 1))
        plan = catalog.get(customer.plan_id)
        if customer.usage_gb is not None and plan is not None and plan.data_gb:
            f["usage_gb"] = _num(customer.usage_gb)
            f["cap_gb"] = _num(plan.data_gb)
            f["usage_pct"] = str(round(100 * customer.usage_gb / plan.data_gb))
        if customer.renewal_date is not None:
            d = customer.renewal_date
            f["renewal_date"] = f"{d.month}月{d.day}日" if ja else f"{d:%B} {d.day}"
            days = customer.days_to_renewal(today)
            if days is not None:
                f["days_to_renewal"] = str(days)
    return f


def render(templates: list[Mapping[str, str]], facts: Mapping[str, str], language: str) -> str:
    """The first template whose facts are all known, filled in."""
    for template in templates:
        text = template.get(language) or template.get("en", "")
        if text and placeholders(text) <= facts.keys():
            return text.format_map(facts)
    return f"{facts['offer']} ({facts['offer_price']})"


def _price_for(catalog: Catalog, customer: CustomerContext | None, product: Product) -> int:
    """What the customer would pay: their own price for their plan; their term's discount
    on other plans of the same family (they keep their term); list price otherwise."""
    if customer is None:
        return product.monthly_price
    if product.product_id == customer.plan_id:
        return customer.monthly_price
    plan = catalog.get(customer.plan_id)
    term = catalog.terms.get(customer.term_id)
    same_family = plan is not None and product.kind == "plan" and product.family == plan.family
    if same_family and term is not None:
        return max(0, product.monthly_price - term.monthly_discount)
    return product.monthly_price


def _benefit(product: Product, language: str) -> str:
    return product.benefit.get(language, "") if product.benefit else ""


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"
