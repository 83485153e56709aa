"""The catalogue's product names join each language's Whisper prompt.

Whisper spells what it has been shown: without a prompt it writes ファミリー回線 as
「ファミリ1回戦」 and 端末補償 as 「端末保証」, and the offer a warning depends on is then
never heard. The names a site sells are in its catalogue already, so every language's
``vocabulary`` can be extended with them (``asr.catalog_vocabulary``). Off by default: a
prompt is decoded like text for every beam, so 168 prompt tokens instead of 43 made a
Japanese final about 70 % slower on 2 CPU cores; on a GPU it is cheap. The words a site
lists in ``config.toml`` come last, where a prompt cut to its last tokens keeps them.
"""

from __future__ import annotations

import re
from dataclasses import replace

from agent_assist.config import AsrConfig
from agent_assist.core.catalog import Catalog

_BRACKETS = re.compile(r"\s*[(（].*?[)）]")


def product_words(catalog: Catalog, language: str) -> tuple[str, ...]:
    """Each product's name (without its bracketed detail) and, in Japanese, its longest
    alias in kana or kanji (how agents say it)."""
    words: list[str] = []
    for product in catalog.products.values():
        name = _BRACKETS.sub("", product.name.get(language, "")).strip()
        if language == "ja":
            name = name.replace(" ", "")
        words.append(name)
        # English aliases are lower-case paraphrases Whisper needs no help with
        if language == "ja":
            spoken = [a.replace(" ", "") for a in product.aliases.get("ja", ()) if not a.isascii()]
            words += sorted(spoken, key=len, reverse=True)[:1]
    return tuple(w for w in dict.fromkeys(words) if w)


def with_product_words(cfg: AsrConfig, catalog: Catalog) -> AsrConfig:
    """``cfg`` with the catalogue's names before each language's own vocabulary."""
    if not cfg.catalog_vocabulary:
        return cfg
    languages = {
        lang: replace(
            lc,
            vocabulary=(
                *(w for w in product_words(catalog, lang) if w not in lc.vocabulary),
                *lc.vocabulary,
            ),
        )
        for lang, lc in cfg.languages.items()
    }
    return replace(cfg, languages=languages)
