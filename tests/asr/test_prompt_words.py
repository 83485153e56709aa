"""The catalogue's product names reach every language's Whisper prompt, the site's own last."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from agent_assist.asr.prompt_words import product_words, with_product_words
from agent_assist.config import Config, load_config
from agent_assist.runtime.services import load_policy

REPO = Path(__file__).resolve().parents[2]


def _config() -> Config:
    return load_config(REPO / "config.toml")


def test_every_product_is_named_in_both_languages_without_bracketed_detail() -> None:
    catalog = load_policy(_config()).catalog
    ja, en = product_words(catalog, "ja"), product_words(catalog, "en")
    for product in catalog.products.values():
        assert any(w in product.name["ja"].replace(" ", "") for w in ja), product.product_id
        assert any(w in product.name["en"] for w in en), product.product_id
    assert "ライトプラン" in ja and "ファミリー回線" in ja  # a name and a spoken alias
    assert not any("(" in w or " " in w for w in ja)
    assert "Light plan" in en and len(en) == len(catalog.products)


def test_the_switch_adds_them_before_the_sites_own_words() -> None:
    config = _config()
    catalog = load_policy(config).catalog
    assert with_product_words(config.asr, catalog) is config.asr  # off by default (cost)
    extended = with_product_words(replace(config.asr, catalog_vocabulary=True), catalog)
    for lang, lc in config.asr.languages.items():
        words = extended.languages[lang].vocabulary
        assert words[-len(lc.vocabulary) :] == lc.vocabulary  # kept when the prompt is cut
        assert set(product_words(catalog, lang)) <= set(words)
        assert len(words) == len(set(words))
