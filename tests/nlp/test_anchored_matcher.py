"""The anchored matchers find exactly what one spaCy ``Matcher`` with every pattern finds,
on the real rules and on utterances written for this test (both languages, clean and as
a recogniser writes them)."""

from __future__ import annotations

import pytest
from spacy.matcher import Matcher

from agent_assist.nlp.spacy_analyzer import (
    SpacyAnalyzer,
    by_first_value,
    heard_as_said,
    load_rule_set,
    same_length_fold,
)

UTTERANCES = {
    "en": [
        "Hi, I've had no signal at home since Monday and I work from there, it's a joke.",
        "honestly the bill is getting a bit much, is there anything smaller",
        "yeah go on then, put me on the bigger one",
        "we'd love to keep you, and only today I can knock a thousand off if you sign now",
        "I get a bonus for every annual I sell, so it'd really help me out",
        "not slow any more, thanks, it's been fine since the engineer came",
        "im thinking of leaving for another provider to be honest",
        "What do you mostly use your data for, video or music?",
        "",
        "ok",
    ],
    "ja": [
        "昨日からずっとネットが繋がらなくて、仕事にならないんですけど",
        "料金がちょっと高いので、もう少し安いプランはありますか",
        "じゃあそれでお願いします",
        "本日中にお申し込みいただかないとこの割引はなくなります",
        "今月のノルマがありまして、ご協力いただけると助かります",
        "遅くはないです、問題ないです",
        "他社に乗り換えようと思ってるんです",
        "普段はどのようなことにお使いですか",
        "",
        "はい",
    ],
}


@pytest.mark.parametrize("language", ["en", "ja"])
def test_anchored_matchers_find_what_one_matcher_finds(language: str) -> None:
    rules = load_rule_set(language)
    analyzer = SpacyAnalyzer(rules)
    nlp = analyzer._nlp  # the same pipeline, so the same tokens
    plain = Matcher(nlp.vocab)
    for rule_id, patterns in rules.patterns.items():
        if patterns:
            plain.add(rule_id, patterns)
    for text in UTTERANCES[language]:
        folded = same_length_fold(text, language == "en")
        if language == "en":
            folded, _ = heard_as_said(folded)
        doc = nlp(folded)
        expected = {(nlp.vocab.strings[m], s, e) for m, s, e in plain(doc)}
        assert set(analyzer._matchers(doc)) == expected, text


def test_an_in_list_first_token_is_split_and_others_are_kept() -> None:
    pattern: list[dict[str, object]] = [{"LOWER": {"IN": ["a", "b", "a"]}}, {"LOWER": "c"}]
    assert by_first_value(pattern) == [
        [{"LOWER": "a"}, {"LOWER": "c"}],
        [{"LOWER": "b"}, {"LOWER": "c"}],
    ]
    optional: list[dict[str, object]] = [{"LOWER": {"IN": ["a"]}, "OP": "?"}, {"LOWER": "c"}]
    assert by_first_value(optional) == [optional]
