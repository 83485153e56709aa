"""Catalogue and customer files: the bundled ones load; broken ones are refused at start-up
with every problem listed by key path."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path

import pytest

from agent_assist.config import Config
from agent_assist.core.catalog import Catalog, parse_catalog
from agent_assist.core.customer import parse_customers
from agent_assist.crm import FileCustomerDirectory
from agent_assist.errors import ConfigError
from agent_assist.runtime.services import build_services


def bundled(name: str) -> dict[str, object]:
    return tomllib.loads((resources.files("agent_assist") / "data" / name).read_text("utf-8"))


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return parse_catalog(bundled("catalog/nova_mobile.toml"), "catalog")


def test_bundled_catalogue_has_ladders_terms_and_add_ons(catalog: Catalog) -> None:
    tiers = ["light_plan"]
    while (nxt := catalog.products[tiers[-1]].higher_tier) is not None:
        tiers.append(nxt)
    assert tiers == ["light_plan", "data_20gb", "data_50gb", "data_unlimited"]
    assert catalog.products["fiber_1g"].lower_tier == "home_300m"
    assert {"monthly", "annual"} <= catalog.terms.keys()
    assert {p.product_id for p in catalog.accessories_of("fiber_1g")} == {
        "mesh_wifi",
        "security_pack",
    }
    for product in catalog.products.values():
        assert product.name["ja"] and product.name["en"]
    assert catalog.money(1000, "ja") == "1,000円" and catalog.money(1000, "en") == "¥1,000"


def test_agents_naming_products_are_found_by_alias(catalog: Catalog) -> None:
    found = catalog.find_named("How about our Mesh Wi-Fi router?", "en")
    assert found is not None and found[0].product_id == "mesh_wifi"
    text = "あわせて端末補償もおすすめです"
    found = catalog.find_named(text, "ja")
    assert found is not None and text[found[1] : found[2]] == "端末補償"


def test_broken_catalogue_lists_every_problem_by_key_path() -> None:
    doc = {
        "currency": "yen",
        "term": [{"id": "monthly", "name": {"en": "m", "ja": "m"}, "monthly_discount": -5}],
        "product": [
            {"id": "a", "kind": "plan", "family": "f", "name": {"en": "A"}, "monthly_price": 1},
            {
                "id": "b",
                "kind": "gadget",
                "family": "f",
                "name": {"en": "B", "ja": "B"},
                "monthly_price": "cheap",
                "higher_tier_of": "zzz",
                "accessory_of": ["family:nope", "a"],
                "data_gb": -1,
            },
            {
                "id": "c",
                "kind": "plan",
                "family": "g",
                "name": {"en": "C", "ja": "C"},
                "monthly_price": 5,
                "higher_tier_of": "a",
                "related_by": "need",
            },
            {
                "id": "a",
                "kind": "plan",
                "family": "f",
                "name": {"en": "A", "ja": "A"},
                "monthly_price": 2,
                "related_by": "mood",
            },
        ],
    }
    with pytest.raises(ConfigError) as info:
        parse_catalog(doc, "broken-catalog.toml")
    text = str(info.value)
    for fragment in [
        "operator: must be",
        "currency: must be a 3-letter",
        "term[0].monthly_discount",
        "product[0] (a).name: missing text for ['ja']",
        "product[1] (b).kind",
        "product[1] (b).monthly_price",
        "product[1] (b).data_gb",
        "product[1] (b).higher_tier_of: unknown product 'zzz'",
        "product[1] (b).accessory_of[0]: unknown family 'nope'",
        "product[1] (b).accessory_of: only an option",
        "product[2] (c).higher_tier_of: 'a' is in another family",
        "product[3] (a).id: duplicate product id",
        "product[2] (c).related_by: only an option can be related by a need",
        "product[3] (a).related_by: must be 'product' or 'need'",
    ]:
        assert fragment in text, fragment


def test_tier_loops_are_refused() -> None:
    name = {"en": "x", "ja": "x"}
    doc = {
        "operator": "o",
        "product": [
            {
                "id": "a",
                "kind": "plan",
                "family": "f",
                "name": name,
                "monthly_price": 1,
                "higher_tier_of": "b",
            },
            {
                "id": "b",
                "kind": "plan",
                "family": "f",
                "name": name,
                "monthly_price": 2,
                "higher_tier_of": "a",
            },
        ],
    }
    with pytest.raises(ConfigError, match="loops back"):
        parse_catalog(doc, "loop.toml")


def test_bundled_customers_load_and_derive(catalog: Catalog) -> None:
    crm = FileCustomerDirectory.load(None, catalog)
    assert len(crm.ids()) >= 7 and crm.lookup("nobody") is None
    aoi = crm.lookup("C-1001")
    assert aoi is not None and aoi.tier == "A" and aoi.usage_ratio(catalog) == pytest.approx(0.91)
    haruto = crm.lookup("C-1006")
    assert haruto is not None and haruto.monthly_price == 2980  # annual term discount
    import datetime as dt

    assert haruto.days_to_renewal(dt.date(2026, 11, 22)) == 18


def test_broken_customers_file_lists_every_problem(catalog: Catalog) -> None:
    doc = {
        "customer": [
            {
                "id": "X-1",
                "plan": "mesh_wifi",
                "term": "weekly",
                "tier": "Z",
                "churn_risk": "extreme",
                "usage_gb": -3,
                "renewal_date": "soon",
                "products": ["spaceship"],
                "purchases": [{"product": "ghost"}],
                "complaints": [{"topic": "", "date": "yesterday"}],
            },
            {"id": "X-1", "plan": "data_20gb"},
        ]
    }
    with pytest.raises(ConfigError) as info:
        parse_customers(doc, "broken-customers.toml", catalog)
    text = str(info.value)
    for fragment in [
        "customer[0] (X-1).plan: 'mesh_wifi' is not a plan",
        "customer[0] (X-1).term: 'weekly'",
        "customer[0] (X-1).tier",
        "customer[0] (X-1).churn_risk",
        "customer[0] (X-1).usage_gb",
        "customer[0] (X-1).renewal_date",
        "customer[0] (X-1).products[0]: unknown product 'spaceship'",
        "customer[0] (X-1).purchases[0].date",
        "customer[0] (X-1).complaints[0].topic",
        "customer[1] (X-1).id: duplicate customer id",
    ]:
        assert fragment in text, fragment


def test_start_up_refuses_a_broken_catalogue(tmp_path: Path, config: Config) -> None:
    bad = tmp_path / "catalog.toml"
    bad.write_text('operator = "o"\n[[product]]\nid = "a"\nkind = "plan"\n', encoding="utf-8")
    cfg = Config(root=tmp_path, policy=type(config.policy)(catalog="catalog.toml"))
    with pytest.raises(ConfigError) as info:
        build_services(cfg, with_asr=False, store_path=tmp_path / "db.sqlite3")
    assert "product[0] (a).family" in str(info.value)
    assert "product[0] (a).monthly_price" in str(info.value)


def test_start_up_refuses_a_customers_file_that_names_unknown_plans(
    tmp_path: Path, config: Config
) -> None:
    bad = tmp_path / "customers.toml"
    bad.write_text('[[customer]]\nid = "Q"\nplan = "gold"\n', encoding="utf-8")
    cfg = Config(root=tmp_path, policy=type(config.policy)(customers="customers.toml"))
    with pytest.raises(ConfigError, match=r"customer\[0\] \(Q\).plan: 'gold'"):
        build_services(cfg, with_asr=False, store_path=tmp_path / "db.sqlite3")
