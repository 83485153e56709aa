"""Constructions behind round 3's misses, each tested as a family of phrasings of our own.

Every case is written here from the construction named in ``TAXONOMY.md`` (not from any
evaluation call): a positive set in both languages, and look-alikes that must not match.
"""

from __future__ import annotations

import pytest

from agent_assist.core.events import Suggestion
from agent_assist.core.phases import quoted_saving, stated_amount
from agent_assist.core.policy import PolicyBook
from agent_assist.core.signals import SignalDetector
from tests.core.test_dialogue_acts import OFFER_THEN_NO, Turn, play, signals, warnings

# -- a re-ask that names nothing: "shall I just put it on?" after a no -------------------


@pytest.mark.parametrize(
    ("language", "plea"),
    [
        ("en", "I hear you, but why wait? Shall I just set it up for you now?"),
        ("en", "Still, I really would take it, you'll only run short again."),
        ("en", "honestly I'd just go for it, let me put it through for you"),
        ("en", "shall I just go ahead and switch you, you can always see how it goes"),
        ("ja", "ですが、結局また足りなくなりますので、今のうちに手続きだけ進めてしまいませんか。"),
        ("ja", "とはいえ、この際ですので変更だけしておかれてはいかがでしょうか。"),
        ("ja", "せやけど、やっといたほうが絶対ええですよ。"),
        ("ja", "でしたら、お試しで一か月だけでも切り替えてみませんか。"),
    ],
)
def test_a_re_ask_that_names_nothing_is_a_push(
    detector: SignalDetector, policy_book: PolicyBook, language: str, plea: str
) -> None:
    events = play(detector, policy_book, language, [*OFFER_THEN_NO[language], ("agent", plea)])
    assert "refusal" in signals(events[4])
    assert "push_after_no" in warnings(events[5])


@pytest.mark.parametrize(
    ("language", "reply"),
    [
        ("en", "No problem at all. Shall I email you the details so you can compare?"),
        ("en", "Of course. I'll send a summary over, no need to decide anything today."),
        ("ja", "承知しました。資料だけお送りしておきましょうか。"),
        ("ja", "かしこまりました。ご検討の際はいつでもお電話ください。"),
    ],
)
def test_accepting_a_no_and_offering_information_is_no_push(
    detector: SignalDetector, policy_book: PolicyBook, language: str, reply: str
) -> None:
    events = play(detector, policy_book, language, [*OFFER_THEN_NO[language], ("agent", reply)])
    assert warnings(events[5]) == []


@pytest.mark.parametrize(
    ("language", "deferral"),
    [
        ("en", "hmm, let me think it over, I need to check my finances first"),
        ("en", "I'll have a think, I want to look at what I'm spending first"),
        ("ja", "一度、家計と相談して考えます"),
    ],
)
def test_a_deferral_with_a_money_reason_is_still_a_no(
    detector: SignalDetector, policy_book: PolicyBook, language: str, deferral: str
) -> None:
    turns = [*OFFER_THEN_NO[language][:4], ("customer", deferral)]
    events = play(detector, policy_book, language, turns)
    assert "refusal" in signals(events[4])


# -- the company's gain said as the team's or the company's drive -----------------------


@pytest.mark.parametrize(
    ("language", "text", "centric"),
    [
        ("en", "we're nearly at our fibre target this month, it'd be a big help to the team", True),
        ("en", "we've been asked to get as many people onto annual as we can this quarter", True),
        ("en", "management is really pushing the mesh router right now, so it'd help us", True),
        ("en", "it would be a massive help to us if you signed today", True),
        ("en", "the team is working on the outage in your area right now", False),
        ("en", "our aim is to get your speed back to normal by Friday", False),
        ("en", "it would help us find the fault if you restart the router", False),
        ("ja", "会社としても今は光の契約を増やす方針でして、ぜひお願いしたいんです", True),
        ("ja", "弊社としても今メッシュの導入を強化しておりまして", True),
        ("ja", "今月はうちの営業所の重点商品でして、一件でも取れると助かるんです", True),
        ("ja", "弊社として責任をもって対応いたします", False),
        ("ja", "担当部署が復旧に向けて作業しております", False),
    ],
)
def test_company_gain_said_as_a_drive_or_a_favour(
    detector: SignalDetector, policy_book: PolicyBook, language: str, text: str, centric: bool
) -> None:
    events = play(detector, policy_book, language, [("agent", text)])
    assert ("company_centric" in signals(events[0])) is centric


# -- a ceiling said in words: "four thousand a month, max" ------------------------------


@pytest.mark.parametrize(
    ("text", "amount"),
    [
        ("I can do about four thousand a month, max", 4000),
        ("three and a half thousand is my limit", 3500),
        ("four grand a month tops", 4000),
        ("no more than 3.5k a month", 3500),
        ("two thousand five hundred is the most I'd pay", 2500),
        ("月四千円までなら", 4000),
        ("三千五百円くらいが限度です", 3500),
        ("the fifty gig plan", None),
        ("fiber's the one for you, 5-1-8-0 a month", 5180),
    ],
)
def test_amounts_in_words_are_read(text: str, amount: int | None) -> None:
    assert stated_amount(text) == amount


@pytest.mark.parametrize(
    ("language", "text", "budget"),
    [
        ("en", "I can do about four thousand a month, max.", True),
        ("en", "three and a half thousand is my limit, honestly", True),
        ("en", "my ceiling is roughly three grand a month", True),
        ("en", "anything over five thousand a month is too much for me", True),
        ("ja", "月四千円までなら出せます", True),
        ("ja", "三千五百円くらいが限度ですね", True),
        ("en", "I'm at my data limit again", False),
        ("en", "I can do about four hours of calls a day", False),
        ("ja", "データの上限に達しました", False),
    ],
)
def test_a_ceiling_in_words_is_a_budget(
    detector: SignalDetector, policy_book: PolicyBook, language: str, text: str, budget: bool
) -> None:
    events = play(detector, policy_book, language, [("customer", text)])
    assert ("price_objection" in signals(events[0])) is budget


def test_an_upsell_past_a_ceiling_in_words_is_past_budget(
    detector: SignalDetector, policy_book: PolicyBook
) -> None:
    turns: list[Turn] = [
        ("customer", "I want a SIM-only plan, I can do around three thousand a month, max"),
        ("agent", "How much data do you get through?"),
        ("customer", "about fifteen gigs"),
        ("agent", "I'd just go for the unlimited one at six four eighty, no worries then."),
    ]
    events = play(detector, policy_book, "en", turns)
    assert "past_budget" in warnings(events[3])


# -- asking for the budget is discovery, not an offer ------------------------------------


@pytest.mark.parametrize(
    ("language", "question"),
    [
        ("en", "Is there a monthly amount you'd like to stay under?"),
        ("en", "is there a figure you'd rather not go above each month?"),
        ("en", "What would you like to keep the bill under?"),
        ("ja", "月々おいくらくらいまでに抑えたいなどはございますか。"),
        ("ja", "ご予算の上限はございますか。"),
    ],
)
def test_asking_for_a_budget_is_a_needs_question(
    detector: SignalDetector, policy_book: PolicyBook, language: str, question: str
) -> None:
    events = play(detector, policy_book, language, [("agent", question)])
    assert "needs_question" in signals(events[0])
    assert "offer_made" not in signals(events[0])


@pytest.mark.parametrize(
    ("language", "question"),
    [
        ("en", "Quick one: how's your data lasting you, on the 20 gig?"),
        ("en", "how is the light plan treating you these days?"),
        ("ja", "最近のネットの使い心地はいかがですか。"),
        ("ja", "スマホの調子はいかがでしょうか。"),
        ("en", "How's the signal been treating you lately?"),
        ("en", "Sorry, I should have said, it's Nova Mobile, your broadband provider."),
    ],
)
def test_asking_how_the_service_feels_is_no_offer(
    detector: SignalDetector, policy_book: PolicyBook, language: str, question: str
) -> None:
    events = play(detector, policy_book, language, [("agent", question)])
    assert "offer_made" not in signals(events[0])
    assert warnings(events[0]) == []


# -- after a no to an add-on, confirming what stays is no push ---------------------------

PLAN_AND_ADDON_THEN_NO = {
    "en": [
        ("customer", "the bill's too much for me these days"),
        ("agent", "What do you mostly use the phone for?"),
        ("customer", "messages and maps"),
        (
            "agent",
            "The light plan would save you 1,500 a month, and device protection is 700 on top.",
        ),
        ("customer", "the cheaper plan yes, but no protection thanks"),
    ],
    "ja": [
        ("customer", "最近スマホ代が高くて困ってるんです"),
        ("agent", "普段はどのようにお使いですか。"),
        ("customer", "連絡と地図くらいです"),
        ("agent", "ライトプランで1500円お安くなります。端末補償も月700円でお付けできます。"),
        ("customer", "プランはそれで。補償はいらないです"),
    ],
}


@pytest.mark.parametrize(
    ("language", "confirm"),
    [
        ("en", "Understood, just the light plan then."),
        ("en", "Got it, only the plan change, nothing else added."),
        ("ja", "失礼しました、ライトプランのみで変更いたします。"),
        ("ja", "かしこまりました、プラン変更のみで承ります。"),
    ],
)
def test_confirming_only_what_was_taken_is_no_push(
    detector: SignalDetector, policy_book: PolicyBook, language: str, confirm: str
) -> None:
    turns = [*PLAN_AND_ADDON_THEN_NO[language], ("agent", confirm)]
    events = play(detector, policy_book, language, turns)
    assert warnings(events[5]) == []


# -- an add-on after an add-on: related only through a need or the same kind of line -----


@pytest.mark.parametrize(
    ("language", "turns", "unrelated"),
    [
        (
            "en",
            [
                ("customer", "I keep getting scam texts, I want something that blocks them"),
                ("agent", "Do you use your phone for banking?"),
                ("customer", "yes, every day"),
                ("agent", "Our security pack blocks fraud sites, it's 330 a month. Shall I?"),
                ("customer", "yes please, add that"),
                ("agent", "Done. Shall I add device protection too, 700 a month?"),
            ],
            True,
        ),
        (
            "ja",
            [
                ("customer", "娘が高校生になるので、スマホを持たせたいんです"),
                ("agent", "娘さんはどんな使い方をされそうですか。"),
                ("customer", "連絡と動画くらいですね"),
                ("agent", "家族回線が月1100円でデータを分け合えます。いかがですか。"),
                ("customer", "じゃあそれでお願いします"),
                ("agent", "ありがとうございます。ご自宅用にメッシュWi-Fiもいかがですか。"),
            ],
            True,
        ),
        (
            "ja",
            [
                ("customer", "母がスマホデビューするので、私の契約に入れたいんです"),
                ("agent", "お母様はどんなことに使われそうですか。"),
                ("customer", "電話と孫の写真を見るくらいです"),
                ("agent", "家族回線が月1100円でございます。お付けしましょうか。"),
                ("customer", "はい、お願いします"),
                ("agent", "お母様の端末にセキュリティパックも月330円でお付けできますが。"),
            ],
            False,
        ),
        (
            "en",
            [
                ("customer", "my son is getting his first phone, can he go on my account?"),
                ("agent", "What will he mostly use it for?"),
                ("customer", "games and messages, and he drops everything"),
                ("agent", "A family line is 1,100 a month and shares your data, shall I add it?"),
                ("customer", "yes, let's do that"),
                ("agent", "And device protection for his phone, 700 a month, would you like it?"),
            ],
            False,
        ),
    ],
)
def test_an_add_on_after_an_add_on_needs_a_link(
    detector: SignalDetector,
    policy_book: PolicyBook,
    language: str,
    turns: list[Turn],
    unrelated: bool,
) -> None:
    events = play(detector, policy_book, language, turns)
    assert "agreement" in signals(events[4])
    assert ("unrelated_cross_sell" in warnings(events[5])) is unrelated


# -- an offer put as "there is also": もございまして, "there's also" ------------------------


@pytest.mark.parametrize(
    ("language", "text", "offer"),
    [
        ("ja", "より速い光1ギガというプランもございまして、月千円の追加で使えます。", True),
        ("ja", "補償サービスもございまして、月700円で画面割れもカバーできます。", True),
        ("ja", "それでしたら光一技がのプランがおすすめです。", True),
        ("en", "There's also the fibre plan, a thousand more a month, if speed matters.", True),
        ("en", "Done. Oh, and our mesh router, 550 a month, is great for coverage, want it?", True),
        ("ja", "お支払い方法はクレジットカードと口座振替がございます。", False),
        ("en", "There's also a charge from last month that I've refunded.", False),
    ],
)
def test_an_offer_put_as_there_is_also(
    detector: SignalDetector, policy_book: PolicyBook, language: str, text: str, offer: bool
) -> None:
    opening: dict[str, list[Turn]] = {
        "en": [
            ("customer", "I'd like to ask about my bill"),
            ("agent", "How do you mostly use the line?"),
            ("customer", "video calls mostly"),
        ],
        "ja": [
            ("customer", "請求について伺いたくて"),
            ("agent", "普段はどのようにお使いですか。"),
            ("customer", "ビデオ通話が多いです"),
        ],
    }
    turns = [*opening[language], ("agent", text)]
    events = play(detector, policy_book, language, turns)
    assert ("offer_made" in signals(events[3])) is offer


# -- scarcity and a same-day decision as pressure ----------------------------------------


@pytest.mark.parametrize(
    ("language", "text", "pressing"),
    [
        ("en", "there's only a handful left in stock this month, let's reserve one for you", True),
        ("en", "we've only got a few of these routers left, they'll be gone soon", True),
        ("ja", "今日決めてもろたら、その枠押さえられますよ", True),
        ("ja", "本日ご決断いただければ、この価格でお約束できます", True),
        ("ja", "今週だけの特別価格なので、ここでお決めいただくのが一番です", True),
        ("en", "there's only a little data left on your plan this month", False),
        ("ja", "今日決めなくても大丈夫ですよ", False),
        ("ja", "明日の午前中にはお届けできます", False),
        ("ja", "今日中に決めていただければ、明日お届けできます", True),
    ],
)
def test_scarcity_and_a_same_day_decision_are_pressure(
    detector: SignalDetector, policy_book: PolicyBook, language: str, text: str, pressing: bool
) -> None:
    events = play(detector, policy_book, language, [("agent", text)])
    assert ("pressure_language" in signals(events[0])) is pressing


# -- a price read out as agents say it --------------------------------------------------


@pytest.mark.parametrize(
    ("text", "offer"),
    [
        ("Then the 50 gig plan at four four eighty would stop that for good.", True),
        ("The security pack is three thirty, it blocks dodgy links. Want it?", True),
        ("Fibre's the one for you, five one eight zero a month.", True),
        ("I'll call you back at five thirty with the engineer's slot.", False),
    ],
)
def test_a_price_read_out_in_words_puts_the_product(
    detector: SignalDetector, policy_book: PolicyBook, text: str, offer: bool
) -> None:
    turns: list[Turn] = [
        ("customer", "my data runs out before the end of every month"),
        ("agent", "What do you use it for mostly?"),
        ("customer", "streaming on the train"),
        ("agent", text),
    ]
    events = play(detector, policy_book, "en", turns)
    assert ("offer_made" in signals(events[3])) is offer


@pytest.mark.parametrize(
    ("language", "turns", "past"),
    [
        (
            "en",
            [
                ("customer", "money's tight, I need the phone bill lower"),
                ("agent", "How much data do you use?"),
                ("customer", "about eight gigs"),
                ("agent", "The 20 GB plan saves you 1,000, and I'd add the security pack at 330."),
            ],
            True,
        ),
        (
            "ja",
            [
                ("customer", "スマホ代を安くしたいんです"),
                ("agent", "普段はどのくらい使われますか。"),
                ("customer", "連絡くらいです"),
                ("agent", "ライトプランで1500円お安くなります。補償も月700円でお付けしますね。"),
            ],
            True,
        ),
        (
            "en",
            [
                ("customer", "money's tight, I need the phone bill lower"),
                ("agent", "How much data do you use?"),
                ("customer", "about eight gigs"),
                ("agent", "The 20 GB plan would save you 1,000 a month, shall I switch you?"),
            ],
            False,
        ),
    ],
)
def test_an_add_on_beside_a_cheaper_plan_is_past_the_budget(
    detector: SignalDetector,
    policy_book: PolicyBook,
    language: str,
    turns: list[Turn],
    past: bool,
) -> None:
    events = play(detector, policy_book, language, turns)
    assert ("past_budget" in warnings(events[3])) is past


# -- outbound openings, choosing by number, a customer's own date, checking a budget ----


@pytest.mark.parametrize(
    ("language", "opening"),
    [
        ("en", "hi its sam from nova mobile were offering our fibre plan to a few customers"),
        ("en", "Hello, Nova Mobile here, I wanted to get a mesh router reserved for you."),
        ("ja", "ノヴァモバイルの田中です！突然ですけど、光に切り替えません？"),
    ],
)
def test_an_outbound_opening_pitch_is_before_needs(
    detector: SignalDetector, policy_book: PolicyBook, language: str, opening: str
) -> None:
    events = play(detector, policy_book, language, [("agent", opening)])
    assert "pitch_before_needs" in warnings(events[0])


@pytest.mark.parametrize("choice", ["じゃあ50で。", "ほな、20ギガで", "なら 50 で"])
def test_choosing_by_the_number_offered_is_a_yes(
    detector: SignalDetector, policy_book: PolicyBook, choice: str
) -> None:
    turns = [*OFFER_THEN_NO["ja"][:4], ("customer", choice)]
    events = play(detector, policy_book, "ja", turns)
    assert "agreement" in signals(events[4])


@pytest.mark.parametrize(
    ("text", "pressing"),
    [
        ("okay I've noted your last day as the thirty first, no fees on monthly", False),
        ("your final bill goes out on the fifth", False),
        ("this is the last day of the offer, so decide now", True),
    ],
)
def test_the_customers_own_date_is_no_pressure(
    detector: SignalDetector, policy_book: PolicyBook, text: str, pressing: bool
) -> None:
    events = play(detector, policy_book, "en", [("agent", text)])
    assert ("pressure_language" in signals(events[0])) is pressing


@pytest.mark.parametrize(
    ("text", "objection"),
    [
        ("I'll think about it, I want to look at my budget first", False),
        ("let me go over our finances and get back to you", False),
        ("it's over my budget, to be honest", True),
    ],
)
def test_checking_a_budget_is_no_price_objection(
    detector: SignalDetector, policy_book: PolicyBook, text: str, objection: bool
) -> None:
    events = play(detector, policy_book, "en", [("customer", text)])
    assert ("price_objection" in signals(events[0])) is objection


# -- a decision after a price no: the add-on card keeps within the saving ---------------


@pytest.mark.parametrize(
    ("text", "saving"),
    [
        ("the home 300 plan would save you a thousand a month", 1000),
        ("that's 1,500 less than you pay now", 1500),
        ("今より1500円お安くなります", 1500),
        ("年間契約なら月500円引きになります", 500),
        ("the 50 GB plan is 4,480 a month", None),
    ],
)
def test_the_saving_the_agent_quotes_is_read(text: str, saving: int | None) -> None:
    assert quoted_saving(text) == saving


@pytest.mark.parametrize(
    ("language", "turns"),
    [
        (
            "en",
            [
                ("customer", "my phone bill is just too high for me these days"),
                ("agent", "What do you use the phone for, mostly?"),
                ("customer", "messages and the odd call"),
                ("agent", "The light plan would save you 1,500 a month, shall I switch you?"),
                ("customer", "yes please, do that"),
            ],
        ),
        (
            "ja",
            [
                ("customer", "スマホ代が高くて、なんとかならへんかな"),
                ("agent", "普段はどんなふうにお使いですか。"),
                ("customer", "電話とLINEくらいやね"),
                ("agent", "ライトプランでしたら、今より1500円お安くなります。"),
                ("customer", "ほな、それにしてもらえる？"),
            ],
        ),
    ],
)
def test_a_cheaper_plan_taken_opens_one_modest_add_on_card(
    detector: SignalDetector, policy_book: PolicyBook, language: str, turns: list[Turn]
) -> None:
    events = play(detector, policy_book, language, turns)
    cards = [e for e in events[4] if isinstance(e, Suggestion)]
    assert [c.kind for c in cards] == ["cross_sell"]
    assert cards[0].offer_id == "security_pack"  # within half the saving; the mesh is not


def test_a_yes_that_names_the_second_product_takes_it(
    detector: SignalDetector, policy_book: PolicyBook
) -> None:
    turns: list[Turn] = [
        ("customer", "予算は月5000円までなんですけど、ギガが足りなくて"),
        ("agent", "普段はどんなことに使われますか。"),
        ("customer", "動画をよく撮ります"),
        ("agent", "使い放題がおすすめです。"),
        ("customer", "うーん"),
        ("agent", "50ギガでしたら4480円で、ご予算内です。"),
        ("customer", "じゃあ、50ギガで。"),
    ]
    events = play(detector, policy_book, "ja", turns)
    cards = [e for e in events[6] if isinstance(e, Suggestion)]
    assert [c.kind for c in cards] == ["cross_sell"]
    assert cards[0].offer_id == "security_pack"  # within the 520 yen left under the budget


# -- data that does not last, and streams that stutter ----------------------------------


@pytest.mark.parametrize(
    ("language", "text", "limit"),
    [
        ("en", "my daughter's run out again and it's only the ninth", True),
        ("en", "this new phone is chewing through my gigs", True),
        ("en", "I'm nearly out already and it's mid-month", True),
        ("en", "sorry, we ran out of time last call", False),
        ("en", "I'm nearly out the door, can we be quick?", False),
        ("ja", "ギガが全然月末までもたないんです", True),
        ("ja", "今月もう残り少ないって通知が来ました", True),
        ("ja", "あとちょっとしかないんですよ、まだ中旬なのに", True),
        ("ja", "30ギガだと毎月ギリギリで", True),
        ("ja", "スマホの電池が夕方までもたないんです", False),
    ],
)
def test_data_that_does_not_last_is_a_usage_limit(
    detector: SignalDetector, policy_book: PolicyBook, language: str, text: str, limit: bool
) -> None:
    events = play(detector, policy_book, language, [("customer", text)])
    assert ("usage_limit" in signals(events[0])) is limit


@pytest.mark.parametrize(
    ("text", "slow"),
    [
        ("whenever my brother streams, my video calls go choppy", True),
        ("in the evening the stream stutters every few minutes", True),
        ("my son stutters a bit when he's nervous", False),
    ],
)
def test_a_stream_that_stutters_is_a_speed_complaint(
    detector: SignalDetector, policy_book: PolicyBook, text: str, slow: bool
) -> None:
    events = play(detector, policy_book, "en", [("customer", text)])
    assert ("speed_complaint" in signals(events[0])) is slow


def test_a_second_cheaper_offer_after_a_no_to_the_first_is_a_push(
    detector: SignalDetector, policy_book: PolicyBook
) -> None:
    turns: list[Turn] = [
        ("customer", "the bill's too much for me, can anything be done?"),
        ("agent", "What do you use the phone for?"),
        ("customer", "calls and maps"),
        ("agent", "The 20 GB plan is 1,000 a month cheaper, shall I switch you?"),
        ("customer", "nah, a thousand isn't worth the hassle, I'll stay as I am"),
        ("agent", "Then how about the light plan instead, that's even cheaper?"),
    ]
    events = play(detector, policy_book, "en", turns)
    assert warnings(events[3]) == []
    assert "push_after_no" in warnings(events[5])


@pytest.mark.parametrize(
    ("text", "objection"),
    [
        ("30ギガのやつなんだけど、高いんだよね。下げられないの？", True),
        ("もう少し安くならないんですか", True),
        ("値下げってできないんですか", True),
        ("夜になると速度が下がるんです", False),
    ],
)
def test_asking_for_the_bill_to_come_down_is_a_price_objection(
    detector: SignalDetector, policy_book: PolicyBook, text: str, objection: bool
) -> None:
    events = play(detector, policy_book, "ja", [("customer", text)])
    assert ("price_objection" in signals(events[0])) is objection


@pytest.mark.parametrize(
    ("language", "second", "choice"),
    [
        ("en", "Then the 20 GB plan is 3,480, right within that.", "okay, the 20 GB plan then"),
        ("ja", "では20ギガプランなら月3480円で、ご予算内です。", "じゃあ20ギガにしておきます。"),
        ("en", "Then the 20 GB plan is 3,480, right within that.", "yes, let's do that"),
        ("ja", "では20ギガプランなら月3480円で、ご予算内です。", "じゃあ、それでお願いします"),
    ],
)
def test_a_second_product_put_while_the_first_is_open_is_what_a_yes_takes(
    detector: SignalDetector, policy_book: PolicyBook, language: str, second: str, choice: str
) -> None:
    first: list[Turn] = {
        "en": [
            ("customer", "I keep running out of data, but I can't go over 4,000 a month"),
            ("agent", "What do you use it for?"),
            ("customer", "maps and music"),
            ("agent", "Honestly the unlimited plan is the one, 6,480 a month."),
            ("customer", "hmm"),
        ],
        "ja": [
            ("customer", "ギガが足りないんですけど、予算は月4000円までなんです"),
            ("agent", "どんなことに使われますか。"),
            ("customer", "地図と音楽です"),
            ("agent", "使い放題がおすすめです。月6480円です。"),
            ("customer", "うーん"),
        ],
    }[language]
    turns = [*first, ("agent", second), ("customer", choice)]
    events = play(detector, policy_book, language, turns)
    assert "agreement" in signals(events[6])
    # the 20 GB plan taken leaves 520 yen under the budget: one add-on card that fits (the
    # unlimited plan taken would leave none)
    cards = [e for e in events[6] if isinstance(e, Suggestion)]
    assert [c.offer_id for c in cards] == ["security_pack"]


@pytest.mark.parametrize(
    "text",
    [
        "done and device protection at seven hundred covers the phone shall i add that",
        "all set and would you like the mesh router as well it's 550 a month",
    ],
)
def test_a_proposal_naming_an_add_on_beside_a_done_is_an_offer_without_marks(
    detector: SignalDetector, policy_book: PolicyBook, text: str
) -> None:
    turns: list[Turn] = [
        ("customer", "the scam texts are driving me mad, I want them blocked"),
        ("agent", "do you bank on your phone"),
        ("customer", "yes all the time"),
        ("agent", "the security pack blocks fraud sites it's 330 a month shall i add it"),
        ("customer", "yes please"),
        ("agent", text),
    ]
    events = play(detector, policy_book, "en", turns)
    assert "offer_made" in signals(events[5])


# -- a second batch of fresh phrasings per compliance family -----------------------------

CONTEXTS: dict[str, list[Turn]] = {
    "en_no": OFFER_THEN_NO["en"],
    "ja_no": OFFER_THEN_NO["ja"],
    "en_cancel": [("customer", "I want to close my account, I'm moving to another network")],
    "ja_cancel": [("customer", "解約したいんです。他社に乗り換えるので")],
    "en_angry": [("customer", "this is the third outage this week, I'm absolutely furious")],
    "en_none": [],
    "ja_none": [],
}


@pytest.mark.parametrize(
    ("context", "line", "rule", "fires"),
    [
        ("en_no", "are you absolutely certain? it really is a bargain", "push_after_no", True),
        (
            "en_no",
            "let me just put it on for a month and you can cancel any time",
            "push_after_no",
            True,
        ),
        ("en_no", "okay but hear me out, fifty gigs for just a grand more", "push_after_no", True),
        ("ja_no", "でも絶対損はしませんよ。今なら手続きもすぐ終わりますし", "push_after_no", True),
        ("ja_no", "もう一度だけご検討いただけませんか", "push_after_no", True),
        ("ja_no", "かしこまりました。またご検討いただければ幸いです。", "push_after_no", False),
        (
            "en_cancel",
            "before you go, have you seen our fibre deal? it's much faster",
            "pitch_during_cancellation",
            True,
        ),
        (
            "en_cancel",
            "before you go, can I confirm the address for the final bill?",
            "pitch_during_cancellation",
            False,
        ),
        (
            "en_angry",
            "I'm sorry. While I have you, our mesh router would really boost your signal",
            "pitch_during_complaint",
            True,
        ),
        (
            "en_angry",
            "I'm sorry. While I have you, can I confirm your postcode?",
            "pitch_during_complaint",
            False,
        ),
        (
            "en_none",
            "you'll need to decide before we hang up, the price won't be there tomorrow",
            "pressure_language",
            True,
        ),
        (
            "en_none",
            "I can only hold this price until the end of the call",
            "pressure_language",
            True,
        ),
        (
            "en_none",
            "before we hang up, is there anything else I can help with?",
            "pressure_language",
            False,
        ),
        ("en_none", "you don't need to decide today, have a think", "pressure_language", False),
        (
            "en_none",
            "the engineer won't be there tomorrow, he's booked for Friday",
            "pressure_language",
            False,
        ),
        ("en_none", "our store is behind on sales this quarter", "company_centric", True),
        ("en_none", "we're behind on the repair queue this week, sorry", "company_centric", False),
        (
            "ja_none",
            "会社の方針でこのプランをおすすめするように言われておりまして",
            "company_centric",
            True,
        ),
        ("ja_none", "会社の方針で、解約金はいただいておりません", "company_centric", False),
    ],
)
def test_fresh_phrasings_of_each_compliance_family(
    detector: SignalDetector,
    policy_book: PolicyBook,
    context: str,
    line: str,
    rule: str,
    fires: bool,
) -> None:
    language = context[:2]
    events = play(detector, policy_book, language, [*CONTEXTS[context], ("agent", line)])
    assert (rule in warnings(events[-1])) is fires


# -- customer moments said plainly, and agent lines that must stay quiet -----------------


@pytest.mark.parametrize(
    ("language", "text", "signal", "heard"),
    [
        ("en", "by the third week I've got nothing left", "usage_limit", True),
        ("en", "the allowance just doesn't stretch to the end of the month", "usage_limit", True),
        ("en", "I've got nothing left to ask, thanks", "usage_limit", False),
        ("en", "pages take an age to load at night", "speed_complaint", True),
        ("en", "I'm paying way too much for what I use", "price_objection", True),
        ("en", "honestly I'm struggling to pay the bill each month", "price_objection", True),
        ("en", "my mum needs a phone, can she go on my plan?", "life_change", True),
        ("en", "my mum needs a lift to the shops", "life_change", False),
        ("ja", "月の後半はいつもギガ不足で", "usage_limit", True),
        ("ja", "動画がカクカクして見られないんです", "speed_complaint", True),
        ("ja", "もう少し安いプランってないんですか", "price_objection", True),
        ("ja", "他の会社に移ろうと思ってるんです", "cancel_intent", True),
        ("ja", "他の会社に移るつもりはないです", "cancel_intent", False),
        ("ja", "来月から子どもが一人暮らしを始めるので", "life_change", True),
        ("ja", "一人暮らしで、ネットはあまり使いません", "life_change", False),
    ],
)
def test_customer_moments_said_plainly(
    detector: SignalDetector,
    policy_book: PolicyBook,
    language: str,
    text: str,
    signal: str,
    heard: bool,
) -> None:
    events = play(detector, policy_book, language, [("customer", text)])
    assert (signal in signals(events[0])) is heard


@pytest.mark.parametrize(
    ("language", "text"),
    [
        ("en", "I understand, I'll process the cancellation now and send confirmation."),
        ("en", "Your current plan is the 20 GB one at 3,480 a month."),
        ("en", "Just so you know, there's no rush, the offer isn't going anywhere."),
        ("en", "Your contract ends on the 31st, so there's no fee to leave."),
        ("ja", "現在は20ギガプランで月3480円でございます。"),
        ("ja", "契約は月末で終了となりますので、違約金はかかりません。"),
        ("ja", "お急ぎでなければ、資料をお送りしますね。"),
    ],
)
def test_agent_lines_that_must_stay_quiet(
    detector: SignalDetector, policy_book: PolicyBook, language: str, text: str
) -> None:
    events = play(detector, policy_book, language, [("agent", text)])
    assert warnings(events[0]) == []
    assert not {"offer_made", "pressure_language", "company_centric"} & signals(events[0])


@pytest.mark.parametrize(
    ("language", "context", "line"),
    [
        ("en", "no", "That's completely fine. Are you sure there's nothing else I can help with?"),
        ("en", "no", "No problem. I'd really recommend turning off auto-play, it saves data."),
        ("en", "no", "Of course. Let me just check your usage so you can keep an eye on it."),
        ("en", "cancel", "Sorry to see you go. Before you go, can I confirm your email?"),
        ("en", "cancel", "Understood. Have you got your PAC code yet, or shall I send it now?"),
        ("ja", "no", "承知しました。では、現在のプランのままで継続いたします。"),
        ("ja", "cancel", "かしこまりました。念のため、解約日は今月末でよろしいでしょうか。"),
    ],
)
def test_service_after_a_no_or_a_cancellation_stays_quiet(
    detector: SignalDetector, policy_book: PolicyBook, language: str, context: str, line: str
) -> None:
    before = (
        OFFER_THEN_NO[language]
        if context == "no"
        else {
            "en": [("customer", "I want to close my account, I'm moving to another network")],
            "ja": [("customer", "解約したいんです。他社に乗り換えるので")],
        }[language]
    )
    events = play(detector, policy_book, language, [*before, ("agent", line)])
    assert warnings(events[-1]) == []


# -- a third batch: Kansai and indirect pushes, pitch frames, loss and scarcity ----------


@pytest.mark.parametrize(
    ("context", "line", "rule", "fires"),
    [
        ("ja_no", "そないおっしゃらんと、ほんまにええプランですから", "push_after_no", True),
        ("en_no", "honestly, it'd be silly not to at that price", "push_after_no", True),
        (
            "en_cancel",
            "I hear you. What if I bumped you up to fibre for the same price?",
            "pitch_during_cancellation",
            True,
        ),
        (
            "en_cancel",
            "I hear you. What if I process the cancellation for you today?",
            "pitch_during_cancellation",
            False,
        ),
        ("ja_none", "残り数台限りなので、お早めにご決断を", "pressure_language", True),
        ("ja_none", "お早めにご連絡いただければ、すぐ対応いたします", "pressure_language", False),
        (
            "en_none",
            "if you don't sign up today you'll lose the discount",
            "pressure_language",
            True,
        ),
        (
            "en_none",
            "this is a one-time offer, it won't come round again",
            "pressure_language",
            True,
        ),
        (
            "en_none",
            "don't worry, you won't lose your number when you switch",
            "pressure_language",
            False,
        ),
        (
            "en_none",
            "if the annual term ends early you'd just lose the discount for the months left",
            "pressure_language",
            False,
        ),
        (
            "en_none",
            "the engineer won't be back until Friday, I'm afraid",
            "pressure_language",
            False,
        ),
        (
            "en_none",
            "Hi, it's Nova Mobile, we'd love to move you onto our fibre plan today",
            "pitch_before_needs",
            True,
        ),
    ],
)
def test_fresh_phrasings_third_batch(
    detector: SignalDetector,
    policy_book: PolicyBook,
    context: str,
    line: str,
    rule: str,
    fires: bool,
) -> None:
    language = context[:2]
    events = play(detector, policy_book, language, [*CONTEXTS[context], ("agent", line)])
    assert (rule in warnings(events[-1])) is fires


@pytest.mark.parametrize(
    ("language", "text", "kind"),
    [
        ("en", "I'm finding the bill hard to justify these days", "downsell"),
        ("en", "my contract's coming to an end next month, what are my options?", "upsell"),
        ("ja", "解約の手続きをお願いしたいんですが", "retention"),
    ],
)
def test_moments_said_another_way_show_their_card(
    detector: SignalDetector, policy_book: PolicyBook, language: str, text: str, kind: str
) -> None:
    greeting = (
        "Nova Mobile, how can I help?" if language == "en" else "ノヴァモバイルでございます。"
    )
    events = play(detector, policy_book, language, [("agent", greeting), ("customer", text)])
    assert kind in [e.kind for e in events[1] if isinstance(e, Suggestion)]


def test_asking_about_a_cancellations_terms_is_no_intent(
    detector: SignalDetector, policy_book: PolicyBook
) -> None:
    events = play(detector, policy_book, "ja", [("customer", "解約の条件だけ確認したいんです")])
    assert "cancel_intent" not in signals(events[0])


BOUGHT: dict[str, list[Turn]] = {
    "en_plan": [
        ("customer", "my data runs out every month"),
        ("agent", "what do you use it for?"),
        ("customer", "streaming on the bus"),
        ("agent", "the 50 GB plan would sort that, 4,480 a month, want it?"),
        ("customer", "yes, switch me over"),
    ],
    "ja_plan": [
        ("customer", "毎月ギガが足りないんです"),
        ("agent", "どんな使い方が多いですか。"),
        ("customer", "動画が多いです"),
        ("agent", "50ギガプランが月4480円でございます。いかがですか。"),
        ("customer", "じゃあそれでお願いします"),
    ],
    "en_home": [
        ("customer", "our home internet is really slow at night"),
        ("agent", "how many of you are online in the evening?"),
        ("customer", "four of us"),
        ("agent", "fibre would fix that, 5,180 a month, shall I switch you?"),
        ("customer", "yes please"),
    ],
}


@pytest.mark.parametrize(
    ("bought", "line", "unrelated"),
    [
        ("en_plan", "great, done. and a mesh router for your home wifi, 550 a month?", True),
        ("en_plan", "great, done. device protection is 700 a month if you'd like it?", False),
        (
            "ja_plan",
            "ありがとうございます。ご自宅用にメッシュWi-Fiも月550円でいかがでしょうか。",
            True,
        ),
        ("en_home", "done. and device protection for your phone, 700 a month, want that?", True),
        ("en_home", "done. a mesh router carries that speed to every room, 550, want one?", False),
    ],
)
def test_an_add_on_after_a_plan_fits_its_line(
    detector: SignalDetector, policy_book: PolicyBook, bought: str, line: str, unrelated: bool
) -> None:
    language = bought[:2]
    events = play(detector, policy_book, language, [*BOUGHT[bought], ("agent", line)])
    assert ("unrelated_cross_sell" in warnings(events[-1])) is unrelated


@pytest.mark.parametrize(
    ("reply", "no"),
    [
        ("hmm, I'm not convinced", True),
        ("probably not, to be honest", True),
        ("I doubt it, I'm fine as I am", True),
        ("I'm not sure I follow, what's the price again?", False),
    ],
)
def test_doubt_after_an_offer_is_a_no(
    detector: SignalDetector, policy_book: PolicyBook, reply: str, no: bool
) -> None:
    turns = [*OFFER_THEN_NO["en"][:4], ("customer", reply)]
    events = play(detector, policy_book, "en", turns)
    assert ("refusal" in signals(events[4])) is no


@pytest.mark.parametrize(
    ("context", "line", "rule", "fires"),
    [
        ("ja_none", "この価格は本日までとなっております", "pressure_language", True),
        ("ja_none", "ご利用は今月末までとなっております", "pressure_language", False),
        ("ja_none", "料金は月末までにお支払いください", "pressure_language", False),
        ("ja_none", "今月の残りはわずかですね、0.3ギガです", "pressure_language", False),
        ("ja_none", "今ご契約されているプランは20ギガですね", "pressure_language", False),
        ("ja_none", "残りわずか3台となっております", "pressure_language", True),
        (
            "en_none",
            "I'd strongly advise locking it in today, prices go up next month",
            "pressure_language",
            True,
        ),
        ("en_none", "the price went up last month, I'm afraid", "pressure_language", False),
        (
            "en_none",
            "your discount ends, so the price goes up next month",
            "pressure_language",
            False,
        ),
        (
            "en_none",
            "The price went up in April for everyone, I'm afraid.",
            "pressure_language",
            False,
        ),
        (
            "en_none",
            "Sorted, it's live from today, data back in a few minutes.",
            "pressure_language",
            False,
        ),
        (
            "en_none",
            "my manager will be on my back if I don't get this one",
            "company_centric",
            True,
        ),
        ("en_none", "my manager will call you back about the refund", "company_centric", False),
    ],
)
def test_fresh_phrasings_fourth_batch(
    detector: SignalDetector,
    policy_book: PolicyBook,
    context: str,
    line: str,
    rule: str,
    fires: bool,
) -> None:
    language = context[:2]
    events = play(detector, policy_book, language, [*CONTEXTS[context], ("agent", line)])
    assert (rule in warnings(events[-1])) is fires


@pytest.mark.parametrize(
    ("language", "text"),
    [
        ("en", "can you put me on fibre? I've decided"),
        ("ja", "光にしよう思てるんですわ"),
        ("ja", "使い放題プランに変更したいんですけど"),
    ],
)
def test_a_callers_own_decision_opens_the_add_on_moment(
    detector: SignalDetector, policy_book: PolicyBook, language: str, text: str
) -> None:
    greeting = (
        "Nova Mobile, how can I help?" if language == "en" else "ノヴァモバイルでございます。"
    )
    events = play(detector, policy_book, language, [("agent", greeting), ("customer", text)])
    assert "cross_sell" in [e.kind for e in events[1] if isinstance(e, Suggestion)]


@pytest.mark.parametrize(
    ("language", "text"),
    [
        ("ja", "お支払いは今月末までにお願いいたします。"),
        ("ja", "工事は明日の午前中に伺います。"),
        ("ja", "本日中に折り返しご連絡いたします。"),
        ("ja", "今ご利用中の20ギガプランのままで問題ございません。"),
        ("ja", "残りのデータは1.2ギガでございます。"),
        ("ja", "会社としても今回の障害は重く受け止めております。"),
        ("ja", "弊社の不手際で、大変申し訳ございませんでした。"),
        ("ja", "解約の場合、違約金はかかりません。"),
        ("ja", "お試し期間中でしたら、無料で解約できます。"),
        ("ja", "この際ですので、パスワードも変更しておくと安心です。"),
        ("ja", "一度ルーターの再起動をお試しいただけますか。"),
        ("ja", "今のうちにバックアップを取っておいてください。"),
        ("ja", "ご検討いただけますと幸いです。資料はメールでお送りします。"),
        ("en", "Your payment is due by the end of the month."),
        ("en", "The engineer will be there tomorrow morning."),
        ("en", "I'll call you back today with an update."),
        ("en", "You'll keep your number when you switch, nothing to lose there."),
        ("en", "We're offering a credit for the outage, it's already on your account."),
        ("en", "Have you tried restarting the router?"),
        ("en", "While I have you, is this still the best number to reach you?"),
        ("en", "What if we try a different channel on the router?"),
        ("en", "Are you sure you're happy for me to close the account today?"),
        ("en", "Our team is behind on repairs this week, I'm sorry."),
        ("en", "The price went up in April for everyone, I'm afraid."),
    ],
)
def test_service_lines_that_look_like_selling_stay_quiet(
    detector: SignalDetector, policy_book: PolicyBook, language: str, text: str
) -> None:
    events = play(detector, policy_book, language, [("agent", text)])
    assert warnings(events[0]) == []
    assert not {"offer_made", "pressure_language", "company_centric"} & signals(events[0])


@pytest.mark.parametrize(
    ("text", "renewal"),
    [
        ("I did see the renewal's in January", True),
        ("the renewal is due next month, isn't it?", True),
        ("I'm not worried about the renewal", False),
    ],
)
def test_the_renewal_said_as_a_date_is_renewal_timing(
    detector: SignalDetector, policy_book: PolicyBook, text: str, renewal: bool
) -> None:
    events = play(detector, policy_book, "en", [("customer", text)])
    assert ("renewal_timing" in signals(events[0])) is renewal


@pytest.mark.parametrize(
    ("language", "text", "signal", "heard"),
    [
        ("en", "I need something faster for video calls", "speed_complaint", True),
        ("en", "I'd like a faster refund next time", "speed_complaint", False),
        (
            "en",
            "my son's starting school and I want to get him a phone on my account",
            "life_change",
            True,
        ),
        ("en", "hang on, I'll put him on the phone", "life_change", False),
        ("ja", "在宅になるので、速いほうがいいかなって", "speed_complaint", True),
        ("ja", "もっと速い回線にしたいんです", "speed_complaint", True),
    ],
)
def test_wanting_speed_and_a_family_member_on_the_account(
    detector: SignalDetector,
    policy_book: PolicyBook,
    language: str,
    text: str,
    signal: str,
    heard: bool,
) -> None:
    events = play(detector, policy_book, language, [("customer", text)])
    assert (signal in signals(events[0])) is heard


@pytest.mark.parametrize(
    ("text", "signal", "heard"),
    [
        ("容量が全然足りひんのですわ", "usage_limit", True),
        ("今月いっぱいで契約を終わりにしたいのですが", "cancel_intent", True),
        ("契約が終わりになったら、どうなりますか", "cancel_intent", False),
        ("もう解約しよかな思てんねん", "cancel_intent", True),
        ("ほんまええ加減にしてや、三日もつながらへんねんで", "anger", True),
    ],
)
def test_kansai_and_keigo_customer_moments(
    detector: SignalDetector, policy_book: PolicyBook, text: str, signal: str, heard: bool
) -> None:
    events = play(detector, policy_book, "ja", [("customer", text)])
    assert (signal in signals(events[0])) is heard


@pytest.mark.parametrize(
    ("text", "signal", "heard"),
    [
        ("the data never lasts me the month", "usage_limit", True),
        ("the connection is dreadful upstairs", "speed_complaint", True),
        ("the weather is dreadful today", "speed_complaint", False),
        ("money's a bit tight at the moment", "price_objection", True),
        ("time's a bit tight, can we be quick?", "price_objection", False),
        ("we've just had twins", "life_change", True),
        ("I have a question about my bill", "life_change", False),
        ("I had a look at the app", "life_change", False),
    ],
)
def test_more_plain_english_moments(
    detector: SignalDetector, policy_book: PolicyBook, text: str, signal: str, heard: bool
) -> None:
    events = play(detector, policy_book, "en", [("customer", text)])
    assert (signal in signals(events[0])) is heard

