"""Generate the disfluent and recognised-speech copies of the hand-written phrases.

    .venv/bin/python scripts/make_phrase_variants.py    # writes data/intents/variants/*.toml

The seeds (``data/intents/<lang>.toml``) are written by hand from the signal taxonomy;
this script does only the mechanical part, with a fixed random seed so the output (which
is committed) is reproducible: fillers and restarts (um, uh, えーと, あの, "I- I"), a
speaker's opening words, and what recognition makes of speech (no punctuation, lower
case, words split or misheard; Japanese kanji heard as a homophone or written in kana,
Kansai endings). A copy keeps its seed's signals, so every transform here must leave the
meaning alone: fillers and openings carry no signal, and misheard words are the ones the
rules also read past.
"""

from __future__ import annotations

import random
import re
import sys
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from agent_assist.nlp.intents import LANGUAGES, VARIANT_FILE, Example, load_seeds  # noqa: E402

SEED = 20261203
COPIES = 4
INTENTS = REPO / "agent_assist" / "data" / "intents"
AGENT_SIGNALS = frozenset(
    {
        "offer_made",
        "needs_question",
        "pressure_language",
        "company_centric",
        "empathy",
        "benefit_framing",
        "greeting",
        "identity_verification",
        "closing_summary",
    }
)

EN_FILLERS = ["um", "uh", "er", "erm", "so", "well", "like", "yeah so", "okay so", "oh"]
EN_MID_FILLERS = ["um", "uh", "like", "you know", "I mean", "sort of"]
EN_CUSTOMER_OPENINGS = [
    "hi yeah",
    "look",
    "honestly",
    "to be honest",
    "the thing is",
    "so basically",
    "oh dear",
    "sorry",
    "excuse me",
    "right so",
    "for the shop",
    "for my business",
    "listen",
    "okay",
]
EN_AGENT_OPENINGS = ["okay", "right", "so", "alright", "now", "sure", "great", "I see"]
EN_CLOSINGS = ["you know", "to be honest", "really", "I think", "if that makes sense"]
EN_MISHEARD = {
    "want to": ["wanna", "want ta"],
    "going to": ["gonna"],
    "got to": ["gotta"],
    "internet": ["inter net", "intranet"],
    "broadband": ["broad band"],
    "download": ["down load"],
    "upload": ["up load"],
    "anymore": ["any more"],
    "everything": ["every thing"],
    "sometimes": ["some times"],
    "wifi": ["wi fi", "why fi"],
    "gigs": ["gigs", "gigabytes", "gig"],
    "gig": ["gigabyte", "g"],
    "data": ["dater", "data"],
    "unlimited": ["un limited"],
    "upgrade": ["up grade"],
    "contract": ["contact"],
    "cancel": ["cancel", "council"],
    "fibre": ["fiber", "fiver"],
    "fiber": ["fibre"],
    "router": ["rooter", "route er"],
    "plan": ["plane"],
    "bill": ["bills", "build"],
    "price": ["prize"],
    "afford": ["a ford"],
    "I'm": ["im", "I am"],
    "don't": ["dont", "do not"],
    "can't": ["cant", "can not"],
    "it's": ["its", "it is"],
    "that's": ["thats"],
    "I'd": ["id", "I would"],
    "won't": ["wont", "will not"],
    "you're": ["your", "you are"],
    "there's": ["theres", "there is"],
}
EN_DROPPED = frozenset({"the", "a", "to", "of", "and", "is", "it"})
"""Short words recognition tends to lose."""
JA_FILLERS = [
    "えーと、",
    "あの、",
    "あのー、",
    "うーん、",
    "その、",
    "まあ、",
    "なんか、",
    "えっと、",
    "ええ、",
]
JA_CUSTOMER_OPENINGS = [
    "すみません、",
    "正直、",
    "実は、",
    "ちょっと聞きたいんですけど、",
    "あのですね、",
    "お店のことなんですけど、",
    "私、機械に弱いんですけど、",
    "もしもし、",
    "ほんまに、",
]
JA_AGENT_OPENINGS = [
    "そうしましたら、",
    "でしたら、",
    "それでは、",
    "はい、",
    "なるほど、",
    "失礼ですが、",
]
JA_HOMOPHONES = {
    "料金": ["両金", "りょうきん", "量金"],
    "解約": ["開約", "かいやく", "回約"],
    "契約": ["けいやく", "係約"],
    "乗り換え": ["乗りかえ", "のりかえ", "乗換"],
    "乗り換": ["乗りか", "のりか"],
    "容量": ["要領", "ようりょう"],
    "速度": ["そくど", "測度"],
    "通信": ["つうしん", "通心"],
    "遅い": ["おそい", "襲い"],
    "遅く": ["おそく"],
    "高い": ["たかい"],
    "プラン": ["ぷらん", "プラント"],
    "ギガ": ["ぎが", "GIGA"],
    "更新": ["交信", "こうしん"],
    "他社": ["たしゃ", "多社"],
    "予算": ["よさん", "余参"],
    "結構": ["けっこう"],
    "大丈夫": ["だいじょうぶ"],
    "引っ越": ["引越", "ひっこ"],
    "保険": ["保健", "ほけん"],
    "補償": ["保障", "保証"],
    "期間限定": ["機関限定", "きかんげんてい"],
    "機会": ["機械"],
    "今日中": ["きょうじゅう", "今日じゅう"],
    "本日": ["ほんじつ"],
    "満足": ["まんぞく"],
    "回線": ["改善", "かいせん"],
    "光": ["ひかり"],
    "家族": ["かぞく"],
    "目標": ["もくひょう"],
    "ノルマ": ["のるま"],
    "携帯": ["ケータイ", "けいたい"],
    "電話": ["でんわ"],
    "検討": ["けんとう", "見当"],
    "お願いします": ["おねがいします"],
}
JA_KANSAI = [
    ("ないです", "へんです"),
    ("じゃない", "ちゃう"),
    ("本当に", "ほんまに"),
    ("とても", "めっちゃ"),
    ("すごく", "めっちゃ"),
    ("んです", "んや"),
    ("ですよね", "やんな"),
    ("だよ", "やで"),
    ("いけない", "あかん"),
    ("ダメ", "あかん"),
]
_EN_MARKS = re.compile(r"[.,!?;:\"]")
_JA_MARKS = re.compile(r"[、。！？!?,.「」]")


def _replace_word(text: str, rng: random.Random, table: dict[str, list[str]]) -> str:
    """One table entry that occurs as whole words, replaced by one of its mishearings."""
    present = [k for k in table if re.search(rf"(?<![\w']){re.escape(k)}(?![\w'])", text, re.I)]
    if not present:
        return text
    key = rng.choice(present)
    pattern = re.compile(rf"(?<![\w']){re.escape(key)}(?![\w'])", re.I)
    return pattern.sub(rng.choice(table[key]), text, count=1)


def en_recognised(text: str, rng: random.Random) -> str:
    """As Whisper may give it: no punctuation, lower case, a word or two misheard."""
    out = text
    for _ in range(rng.choice([1, 1, 2])):
        out = _replace_word(out, rng, EN_MISHEARD)
    words = _EN_MARKS.sub("", out).lower().split()
    small = [i for i, w in enumerate(words) if w in EN_DROPPED]
    if out == text and small:  # nothing misheard: a small word lost instead
        words.pop(rng.choice(small))
    return " ".join(words)


def en_disfluent(text: str, rng: random.Random, agent: bool) -> str:
    """A filler or opening in front, a filler or a restart inside."""
    words = text.split()
    if len(words) > 3 and rng.random() < 0.5:
        i = rng.randrange(1, len(words) - 1)
        words.insert(i, rng.choice(EN_MID_FILLERS) + ",")
    elif words and rng.random() < 0.6:
        words.insert(0, f"{words[0]}- {words[0].lower()}" if rng.random() < 0.5 else words[0])
        words.pop(1)
    openings = EN_AGENT_OPENINGS if agent else EN_CUSTOMER_OPENINGS + EN_FILLERS
    out = f"{rng.choice(openings)}, {' '.join(words)}"
    if not agent and rng.random() < 0.25:
        out = f"{out.rstrip('.!?')}, {rng.choice(EN_CLOSINGS)}"
    return out


def ja_recognised(text: str, rng: random.Random) -> str:
    """As recognition may give it: no punctuation, a word heard as a homophone or in kana."""
    out = text
    present = [k for k in JA_HOMOPHONES if k in out]
    for key in rng.sample(present, k=min(len(present), rng.choice([1, 2]))):
        out = out.replace(key, rng.choice(JA_HOMOPHONES[key]), 1)
    return _JA_MARKS.sub("", out)


def ja_disfluent(text: str, rng: random.Random, agent: bool) -> str:
    """A filler or opening in front; a restart (the first words said twice); Kansai."""
    out = text
    if not agent and rng.random() < 0.3:
        for plain, kansai in JA_KANSAI:
            out = out.replace(plain, kansai)
    if len(out) > 6 and rng.random() < 0.4:
        cut = rng.randrange(2, min(5, len(out) - 2))
        out = f"{out[:cut]}、{out}"
    openings = JA_AGENT_OPENINGS if agent else JA_CUSTOMER_OPENINGS + JA_FILLERS
    return rng.choice(openings) + out


def copies(example: Example, rng: random.Random) -> list[str]:
    """Up to ``COPIES`` distinct copies of one seed, none equal to it."""
    agent = bool(example.labels & AGENT_SIGNALS)
    make: list[Callable[[str], str]]
    if example.language == "ja":
        make = [
            lambda t: ja_recognised(t, rng),
            lambda t: ja_disfluent(t, rng, agent),
            lambda t: ja_recognised(ja_disfluent(t, rng, agent), rng),
            lambda t: ja_disfluent(t, rng, agent),
        ]
    else:
        make = [
            lambda t: en_recognised(t, rng),
            lambda t: en_disfluent(t, rng, agent),
            lambda t: en_recognised(en_disfluent(t, rng, agent), rng),
            lambda t: en_disfluent(t, rng, agent),
        ]
    out: list[str] = []
    for f in make[:COPIES]:
        text = f(example.text).strip()
        if text and text != example.text and text not in out:
            out.append(text)
    return out


def toml_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render(language: str, seeds: list[Example]) -> str:
    rng = random.Random(f"{SEED}:{language}")
    lines = [
        f"# Generated by scripts/make_phrase_variants.py (seed {SEED}) from {language}.toml:",
        "# disfluent and recognised-speech copies of each hand-written phrase. Do not edit;",
        "# edit the seeds and re-run the script, then `make train-signal-head`.",
        f'language = "{language}"',
        "",
    ]
    for example in seeds:
        texts = copies(example, rng)
        if not texts:
            continue
        labels = sorted(example.labels)
        signal = labels[0] if labels else "none"
        lines += ["[[variant]]", f"signal = {toml_string(signal)}"]
        if labels[1:]:
            lines.append(f"also = [{', '.join(map(toml_string, labels[1:]))}]")
        lines.append(f"seed = {toml_string(example.text)}")
        lines.append(f"texts = [{', '.join(map(toml_string, texts))}]")
        lines.append("")
    return "\n".join(lines)


def main() -> int:
    for language in LANGUAGES:
        path = INTENTS / VARIANT_FILE.format(language=language)
        path.parent.mkdir(exist_ok=True)
        seeds = load_seeds(language)
        path.write_text(render(language, seeds), encoding="utf-8")
        print(f"{path.relative_to(REPO)}: copies of {len(seeds)} seeds")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
