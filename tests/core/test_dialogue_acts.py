"""Dialogue acts in context, on the real rules: phrasings written for these tests only.

Each case is a short exchange through a real ``CallSession``; the assertions name what
the definitions say must (or must not) happen: which warnings, which offers.
"""

from __future__ import annotations

import pytest

from agent_assist.core.events import (
    ComplianceWarning,
    Event,
    SignalDetected,
    Speaker,
    Suggestion,
    TranscriptFinal,
)
from agent_assist.core.policy import PolicyBook
from agent_assist.core.session import CallSession
from agent_assist.core.signals import SignalDetector

Turn = tuple[Speaker, str]


def play(
    detector: SignalDetector, book: PolicyBook, language: str, turns: list[Turn]
) -> list[list[Event]]:
    """Every turn's derived events, in order."""
    session = CallSession(detector, book, language)
    out = []
    for i, (speaker, text) in enumerate(turns, start=1):
        final = TranscriptFinal(
            call_id="c",
            t_ms=i * 4000,
            utterance_id=f"u{i}",
            speaker=speaker,
            end_ms=i * 4000 + 3000,
            language=language,
            text=text,
        )
        out.append(session.feed(final))
    return out


def warnings(events: list[Event]) -> list[str]:
    return [e.rule_id.split(".")[1] for e in events if isinstance(e, ComplianceWarning)]


def signals(events: list[Event]) -> set[str]:
    return {e.signal for e in events if isinstance(e, SignalDetected)}


CANCEL_ON_PRICE = {
    "en": [
        ("customer", "I'd like to cancel, it's just too expensive for me now"),
        ("agent", "I understand. How about the light plan at a lower price?"),
        ("customer", "no thanks, I've made up my mind"),
    ],
    "ja": [
        ("customer", "料金が高すぎるので解約したいんです"),
        ("agent", "承知しました。ライトプランに変えるのはいかがでしょう。"),
        ("customer", "いえ、もう決めたので結構です"),
    ],
}


# -- an offer in its own sentence -------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "text"),
    [
        (
            "en",
            "All done, your new plan is live. Our security pack blocks scams for ¥330 a month.",
        ),
        (
            "en",
            "Right, that's sorted now. You could also add device protection for 700 yen a month.",
        ),
        (
            "ja",
            "手続きが完了いたしました。あわせて端末補償を月700円でお付けできますが、いかがですか。",
        ),
        ("ja", "承知いたしました。セキュリティパックも月330円でお付けできます。"),
    ],
)
def test_an_offer_after_a_confirming_sentence_is_an_offer(
    detector: SignalDetector, policy_book: PolicyBook, language: str, text: str
) -> None:
    events = play(detector, policy_book, language, [("agent", text)])
    assert "offer_made" in signals(events[0])


@pytest.mark.parametrize(
    ("language", "text"),
    [
        ("en", "Done, you're all set on the 50 GB plan."),
        ("en", "done youre all set on the 50 gb plan from today"),
        ("ja", "承知しました。光1ギガへのお切り替えを手配いたしました。"),
        ("ja", "かしこまりました。ルーターは明日お届けいたします。"),
    ],
)
def test_confirming_what_is_done_is_no_offer(
    detector: SignalDetector, policy_book: PolicyBook, language: str, text: str
) -> None:
    events = play(detector, policy_book, language, [("agent", text)])
    assert "offer_made" not in signals(events[0])


# -- the customer's own plan and equipment ------------------------------------------------


@pytest.mark.parametrize(
    ("language", "text"),
    [
        ("ja", "佐々木さま、20ギガプランですね。普段はどのくらい使われますか。"),
        ("ja", "小林さま、ホーム300Mでございますね。ご感想はいかがですか。"),
        ("en", "I can see you're on the 20 GB plan. How much do you use in a month?"),
    ],
)
def test_reading_back_the_customers_plan_is_no_offer(
    detector: SignalDetector, policy_book: PolicyBook, language: str, text: str
) -> None:
    events = play(detector, policy_book, language, [("agent", text)])
    assert "offer_made" not in signals(events[0])
    assert warnings(events[0]) == []


@pytest.mark.parametrize(
    ("language", "angry", "question"),
    [
        (
            "ja",
            "もう三日もネットが使えないんですよ、いい加減にしてください",
            "ルーターの電源ランプは点いていますか。",
        ),
        (
            "en",
            "this is ridiculous, the internet has been dead for three days",
            "Is the router showing a red light at the moment?",
        ),
    ],
)
def test_asking_about_the_customers_router_is_no_pitch(
    detector: SignalDetector, policy_book: PolicyBook, language: str, angry: str, question: str
) -> None:
    events = play(detector, policy_book, language, [("customer", angry), ("agent", question)])
    assert warnings(events[1]) == []


# -- what is and is not a price objection ------------------------------------------------


@pytest.mark.parametrize(
    ("language", "text", "objects"),
    [
        ("en", "I watch a lot of films on the train", False),
        ("en", "I don't really have a budget, it just has to work", False),
        ("en", "I try to save data towards the end of the month", False),
        ("en", "ten gigs is well under the fifty I have", False),
        ("en", "my budget is about 2500 a month", True),
        ("en", "thats a lot of money for me every month", True),
        ("en", "that's more than I said I could do", True),
        ("ja", "月末はギガを節約しながら使ってます", False),
        ("ja", "500円の差くらいなら気にしないです", False),
        ("ja", "月3,000円以内に抑えたいです", True),
        ("ja", "通信費を少し節約したいんです", True),
        ("ja", "できれば月2000円ぐらいまでにしたい", True),
    ],
)
def test_price_objection_needs_money_in_the_words(
    detector: SignalDetector, policy_book: PolicyBook, language: str, text: str, objects: bool
) -> None:
    events = play(detector, policy_book, language, [("customer", text)])
    assert ("price_objection" in signals(events[0])) is objects


# -- pressure and the company's gain -----------------------------------------------------


@pytest.mark.parametrize(
    ("language", "text", "pressing"),
    [
        ("en", "the promo stops after Friday, so grab it now", True),
        ("en", "you should lock this in today", True),
        ("en", "it would need to be today I'm afraid", True),
        ("en", "your contract ends on the 15th of next month", False),
        ("en", "the connection runs out of headroom in the evening", False),
        ("ja", "本日お申し込みなら初期費用がかかりません", True),
        ("ja", "明日以降はこの割引が適用できません", True),
        ("ja", "このキャンペーンは本日までです", True),
        ("ja", "回線の停止日は今月末でよろしいですか", False),
        ("ja", "更新月のうちでしたら違約金は発生しません", False),
    ],
)
def test_pressure_is_a_deadline_on_the_decision(
    detector: SignalDetector, policy_book: PolicyBook, language: str, text: str, pressing: bool
) -> None:
    events = play(detector, policy_book, language, [("agent", text)])
    assert ("pressure_language" in warnings(events[0])) is pressing


@pytest.mark.parametrize(
    ("language", "text"),
    [
        ("en", "we've got numbers to hit this month"),
        ("en", "honestly you'd be doing me a huge favour here"),
        ("en", "I get a commission on that one"),
        ("en", "it helps my team's numbers as well"),
        ("en", "I'm three short of my quota this week"),
        ("ja", "うちの支店の目標がかなり厳しくて"),
        ("ja", "私の成績にも関わるので"),
    ],
)
def test_company_centric_reasons(
    detector: SignalDetector, policy_book: PolicyBook, language: str, text: str
) -> None:
    events = play(detector, policy_book, language, [("agent", text)])
    assert "company_centric" in warnings(events[0])


# -- a no, and what comes after it -------------------------------------------------------

OFFER_THEN_NO = {
    "en": [
        ("customer", "my data's gone way before payday every month"),
        ("agent", "What do you mostly use your phone for?"),
        ("customer", "maybe 25 gigs"),
        ("agent", "The 50 GB plan would sort that out, it's ¥4,480 a month."),
        ("customer", "hmm, I'll think about it"),
    ],
    "ja": [
        ("customer", "いつも月末にギガが足りなくなるんです"),
        ("agent", "普段はどのくらいお使いですか。"),
        ("customer", "25ギガくらいですかね"),
        ("agent", "50ギガプランなら月4,480円で安心してお使いいただけます。"),
        ("customer", "うーん、ちょっと考えます"),
    ],
}


@pytest.mark.parametrize(
    ("language", "plea", "expected"),
    [
        ("en", "come on, it's honestly worth every penny", ["push_after_no"]),
        (
            "en",
            "but honestly, it would really help my team's numbers",
            ["push_after_no", "company_centric"],
        ),
        ("ja", "いえいえ、せっかくの機会ですし、ご一緒にいかがですか", ["push_after_no"]),
        ("ja", "そこをなんとか、ご協力いただけると助かるんです", ["push_after_no"]),
    ],
)
def test_insisting_after_a_no_is_a_push(
    detector: SignalDetector, policy_book: PolicyBook, language: str, plea: str, expected: list[str]
) -> None:
    events = play(detector, policy_book, language, [*OFFER_THEN_NO[language], ("agent", plea)])
    assert "refusal" in signals(events[4])
    assert sorted(warnings(events[5])) == sorted(expected)


@pytest.mark.parametrize(
    ("language", "reply"),
    [
        ("en", "Of course, have a think and give us a ring when you're ready."),
        ("en", "sure no problem think it over"),
        ("ja", "もちろんです。ご家族とご相談ください。"),
        ("ja", "承知しました。ご都合のよいときにご検討ください。"),
    ],
)
def test_letting_the_customer_decide_is_no_push(
    detector: SignalDetector, policy_book: PolicyBook, language: str, reply: str
) -> None:
    events = play(detector, policy_book, language, [*OFFER_THEN_NO[language], ("agent", reply)])
    assert warnings(events[5]) == []


@pytest.mark.parametrize(
    ("language", "second"),
    [
        ("en", "What if I knock another 500 off with an annual contract instead?"),
        ("ja", "では年間契約にしていただければさらに月500円引きになりますが、いかがでしょう。"),
    ],
)
def test_a_second_offer_to_a_leaving_customer_is_pitch_and_push(
    detector: SignalDetector, policy_book: PolicyBook, language: str, second: str
) -> None:
    turns = [*CANCEL_ON_PRICE[language], ("agent", second)]
    events = play(detector, policy_book, language, turns)
    assert warnings(events[1]) == []  # one cheaper plan after a price reason is fine
    assert sorted(warnings(events[3])) == ["pitch_during_cancellation", "push_after_no"]


@pytest.mark.parametrize(
    ("language", "yes"),
    [
        ("ja", "うーん、じゃあお願いしようかな"),
        ("ja", "それにしようかな"),
        ("en", "okay go on then, let's do it"),
    ],
)
def test_a_hesitant_yes_accepts_the_offer(
    detector: SignalDetector, policy_book: PolicyBook, language: str, yes: str
) -> None:
    turns = [*OFFER_THEN_NO[language][:4], ("customer", yes)]
    events = play(detector, policy_book, language, turns)
    assert "agreement" in signals(events[4]) and "refusal" not in signals(events[4])


# -- past the budget ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "budget", "offer", "past"),
    [
        (
            "en",
            "money's tight, I can't go over 2,500 a month",
            "I'd add device protection too, it's ¥700 a month.",
            True,
        ),
        (
            "en",
            "money's tight, I can't go over 2,500 a month",
            "The light plan is ¥1,980 a month, within that.",
            False,
        ),
        (
            "ja",
            "毎月3,000円以内に収めたいと思ってます",
            "20ギガプランを年間契約にしていただくと月2,980円になります。",
            False,
        ),
        (
            "ja",
            "毎月3,000円以内に収めたいと思ってます",
            "使い放題プランがおすすめですよ、月6,480円です。",
            True,
        ),
    ],
)
def test_past_budget_is_anything_pricier_than_the_amount_named(
    detector: SignalDetector,
    policy_book: PolicyBook,
    language: str,
    budget: str,
    offer: str,
    past: bool,
) -> None:
    events = play(detector, policy_book, language, [("customer", budget), ("agent", offer)])
    assert ("past_budget" in warnings(events[1])) is past


# -- a no stands until a yes -------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "first", "shrug", "second"),
    [
        (
            "en",
            "come on, just give it a go",
            "whatever mate",
            "If you sign up today I can waive the setup fee, tomorrow I can't.",
        ),
        (
            "ja",
            "いやいや、そんなこと言わずに、もう一度考えてみてください",
            "そんなこと言われてもね",
            "本日お申し込みいただければ初期費用が無料なんですが。",
        ),
    ],
)
def test_a_no_stands_through_a_re_ask_until_a_yes(
    detector: SignalDetector,
    policy_book: PolicyBook,
    language: str,
    first: str,
    shrug: str,
    second: str,
) -> None:
    turns = [*OFFER_THEN_NO[language], ("agent", first), ("customer", shrug), ("agent", second)]
    events = play(detector, policy_book, language, turns)
    assert "push_after_no" in warnings(events[5])
    assert "push_after_no" in warnings(events[7])


@pytest.mark.parametrize(
    ("language", "text"),
    [
        ("ja", "そちらはセキュリティパックの月額です。春にご契約いただいております。"),
        ("en", "That charge is the security pack. You added it last spring."),
    ],
)
def test_explaining_what_the_customer_already_took_is_no_pitch(
    detector: SignalDetector, policy_book: PolicyBook, language: str, text: str
) -> None:
    events = play(detector, policy_book, language, [("agent", text)])
    assert warnings(events[0]) == []


@pytest.mark.parametrize(
    ("text", "upset"),
    [
        ("the signal keeps dropping and I'm losing customers, it's a joke", True),
        ("this is an absolute shambles, third time this month", True),
        ("the bill has the wrong postcode on it", False),
        ("it's still not the cheapest, but it's better", False),
    ],
)
def test_upset_is_read_from_the_failure_words(
    detector: SignalDetector, policy_book: PolicyBook, text: str, upset: bool
) -> None:
    events = play(detector, policy_book, "en", [("customer", text)])
    assert ("anger" in signals(events[0])) is upset


# -- needs and moments, both languages ---------------------------------------------------


@pytest.mark.parametrize(
    ("language", "text", "signal", "present"),
    [
        ("en", "by the way the contract's up in a few weeks isnt it", "renewal_timing", True),
        ("en", "the deal is ending next month I think", "renewal_timing", True),
        ("en", "it was slow back in the winter but it's been fine since", "speed_complaint", False),
        ("en", "it used to be really slow", "speed_complaint", False),
        ("en", "honestly it was slow in the evenings even before", "speed_complaint", True),
        ("en", "my data is all used up by the 20th", "usage_limit", True),
        ("ja", "月末になるといつもカツカツなんですよ", "usage_limit", True),
        ("ja", "月の後半はだいたいぎりぎりです", "usage_limit", True),
    ],
)
def test_customer_moments(
    detector: SignalDetector,
    policy_book: PolicyBook,
    language: str,
    text: str,
    signal: str,
    present: bool,
) -> None:
    events = play(detector, policy_book, language, [("customer", text)])
    assert (signal in signals(events[0])) is present


@pytest.mark.parametrize(
    ("language", "text"),
    [("ja", "すみません、よろしくお願いします"), ("en", "yes please, go ahead")],
)
def test_politeness_before_any_offer_is_no_purchase(
    detector: SignalDetector, policy_book: PolicyBook, language: str, text: str
) -> None:
    events = play(detector, policy_book, language, [("customer", text)])
    assert "agreement" not in signals(events[0])


def test_an_excuse_with_more_to_say_is_no_goodbye(
    detector: SignalDetector, policy_book: PolicyBook
) -> None:
    text = "突然のお電話で失礼いたします。さて、今のプランで容量は足りていますか。"
    events = play(detector, policy_book, "ja", [("agent", text)])
    assert "closing_summary" not in signals(events[0])


@pytest.mark.parametrize(
    ("language", "text", "family"),
    [
        ("en", "my son's just turned eleven and he's getting his first phone", True),
        ("en", "can we add my husband onto the account", True),
        ("en", "my son broke his new phone", False),
        ("ja", "来月から娘にもスマホを持たせようと思って", True),
        ("ja", "母の携帯もこちらにまとめたいんです", True),
        ("ja", "うちでつないでるのは妻のタブレットと私のスマホくらいです", False),
    ],
)
def test_a_family_member_who_needs_a_line_is_a_family_change(
    detector: SignalDetector, policy_book: PolicyBook, language: str, text: str, family: bool
) -> None:
    events = play(detector, policy_book, language, [("customer", text)])
    assert ("life_change" in signals(events[0])) is family


@pytest.mark.parametrize(
    ("language", "leave", "upset"),
    [
        (
            "en",
            "I want to cancel, I'm moving to another network",
            "I've called four times and it's still not fixed, I'm fed up",
        ),
        (
            "ja",
            "解約したいんです",
            "もう三回も電話してるのに直らないし、本当にいい加減にしてほしい",
        ),
    ],
)
def test_anger_inside_a_cancellation_gets_the_care_card(
    detector: SignalDetector, policy_book: PolicyBook, language: str, leave: str, upset: str
) -> None:
    events = play(detector, policy_book, language, [("customer", leave), ("customer", upset)])
    cards = [e.rule_id for e in events[1] if type(e).__name__ == "Suggestion"]
    assert cards == ["care.calm_on_anger.v1"]


@pytest.mark.parametrize(
    ("text", "leaving"),
    [
        ("honestly I just want to get rid of my account", True),
        ("we no longer need the service at the shop", True),
        ("we won't be renewing when it ends", True),
        ("I'm done with you guys", True),
        ("I'm not cancelling, just asking what it would cost", False),
        ("I don't want to get rid of my plan, I just want it cheaper", False),
        ("I'm done with the form, what's next", False),
    ],
)
def test_leaving_in_many_words(
    detector: SignalDetector, policy_book: PolicyBook, text: str, leaving: bool
) -> None:
    events = play(detector, policy_book, "en", [("customer", text)])
    assert ("cancel_intent" in signals(events[0])) is leaving


@pytest.mark.parametrize(
    ("language", "confirm", "answer"),
    [
        (
            "ja",
            "年間のご契約になりますので、1年間の継続をお願いしておりますが、よろしいですか。",
            "はい、大丈夫です。",
        ),
        ("ja", "切り替えは来月1日からになりますが、問題ございませんか", "ええ、いいですよ"),
        ("en", "It's a twelve month term on the annual deal, is that okay?", "yes that's fine"),
    ],
)
def test_confirming_the_terms_of_a_yes_is_no_new_offer_and_yes_is_yes(
    detector: SignalDetector, policy_book: PolicyBook, language: str, confirm: str, answer: str
) -> None:
    take = {"ja": "じゃあそれでお願いします", "en": "ok let's do it"}[language]
    turns = [*OFFER_THEN_NO[language][:4], ("customer", take), ("agent", confirm)]
    turns.append(("customer", answer))
    events = play(detector, policy_book, language, turns)
    assert "agreement" in signals(events[4])
    assert "offer_made" not in signals(events[5]) and warnings(events[5]) == []
    assert "refusal" not in signals(events[6])


@pytest.mark.parametrize(
    ("language", "turns", "unrelated"),
    [
        (
            "en",
            [
                (
                    "customer",
                    "I keep running out of data, I live on my own and use it for everything",
                ),
                ("agent", "How much do you use a month?"),
                ("customer", "around 40 gigs"),
                ("agent", "Then the 50 GB plan fits, ¥4,480 a month."),
                ("customer", "great, let's do it"),
                ("agent", "Done. You could also add a family line for ¥1,100 a month."),
            ],
            True,
        ),
        (
            "en",
            [
                ("customer", "I keep running out of data, and my son is getting his first phone"),
                ("agent", "How much do you use a month?"),
                ("customer", "around 40 gigs"),
                ("agent", "Then the 50 GB plan fits, ¥4,480 a month."),
                ("customer", "great, let's do it"),
                ("agent", "Done. You could also add a family line for your son, ¥1,100 a month."),
            ],
            False,
        ),
        (
            "ja",
            [
                ("customer", "一人暮らしで、いつも月末にギガが足りなくなるんです"),
                ("agent", "普段はどのくらいお使いですか。"),
                ("customer", "40ギガくらいです"),
                ("agent", "50ギガプランなら月4,480円で足ります。いかがですか。"),
                ("customer", "じゃあそれでお願いします"),
                (
                    "agent",
                    "ありがとうございます。ファミリー回線もお付けできますが、月1,100円です。",
                ),
            ],
            True,
        ),
    ],
)
def test_a_family_line_fits_a_purchase_only_through_a_family_need(
    detector: SignalDetector,
    policy_book: PolicyBook,
    language: str,
    turns: list[Turn],
    unrelated: bool,
) -> None:
    events = play(detector, policy_book, language, turns)
    assert "agreement" in signals(events[4])
    assert ("unrelated_cross_sell" in warnings(events[5])) is unrelated


@pytest.mark.parametrize(
    ("language", "text"),
    [
        ("en", "honestly I wouldn't want to go over 3500 for the phone"),
        ("en", "I don't want to pay more than 3000 a month"),
        ("ja", "月2000円くらいに押さえたいんです"),
    ],
)
def test_a_ceiling_put_as_a_refusal_is_a_budget(
    detector: SignalDetector, policy_book: PolicyBook, language: str, text: str
) -> None:
    events = play(detector, policy_book, language, [("customer", text)])
    assert "price_objection" in signals(events[0])


@pytest.mark.parametrize(
    ("language", "text", "offer"),
    [
        ("en", "if you went up to that one it would be ¥3,480 a month", True),
        ("ja", "それでしたら、あちらにされると月3,480円で安心して使えますよ", True),
        ("en", "your bill is ¥4,480 a month, would you like it by email?", False),
        ("ja", "多くいただいていた2,200円は、来週中に口座へ返金いたします", False),
    ],
)
def test_a_proposal_with_a_monthly_price_is_an_offer_even_when_the_name_is_lost(
    detector: SignalDetector, policy_book: PolicyBook, language: str, text: str, offer: bool
) -> None:
    events = play(detector, policy_book, language, [("agent", text)])
    assert ("offer_made" in signals(events[0])) is offer


@pytest.mark.parametrize(
    ("language", "turns"),
    [
        (
            "en",
            [
                ("customer", "money's tight, I can't go over 2,500 a month"),
                ("agent", "What do you mostly use your phone for?"),
                ("customer", "videos on the bus mostly"),
                ("agent", "I'd go for the unlimited plan, ¥6,480 a month."),
                ("customer", "that's way over what I said"),
                ("agent", "honestly the unlimited one is worth every yen, think about it"),
            ],
        ),
        (
            "ja",
            [
                ("customer", "毎月3,000円以内に収めたいと思ってます"),
                ("agent", "普段はどんなことに使われますか。"),
                ("customer", "動画をよく見ます"),
                ("agent", "使い放題プランがおすすめですよ、月6,480円です。"),
                ("customer", "いや、予算オーバーです"),
                ("agent", "でも、使い放題なら絶対お得ですよ。"),
            ],
        ),
    ],
)
def test_the_same_pricier_plan_again_is_past_budget_and_a_push(
    detector: SignalDetector, policy_book: PolicyBook, language: str, turns: list[Turn]
) -> None:
    events = play(detector, policy_book, language, turns)
    assert "past_budget" in warnings(events[3])
    assert {"push_after_no", "past_budget"} <= set(warnings(events[5]))


QUOTE_AFTER_BUDGET = {
    "en": (
        "honestly I need to keep the phone under 2,000 yen a month",
        "what do you mostly use it for?",
        "just messages and the odd call",
    ),
    "ja": (
        "携帯は月2,000円までに抑えたいんです",
        "普段はどんなことにお使いですか",
        "メッセージと電話くらいですね",
    ),
}


@pytest.mark.parametrize(
    ("language", "offer", "past"),
    [
        ("en", "then the roomier tier would suit you, it's 4,480 a month, shall I?", True),
        ("en", "then the light plan would suit you at 1,980 a month, shall I?", False),
        ("ja", "でしたら大きめのプランはいかがでしょう、月4,480円です", True),
        ("ja", "でしたらライトプランはいかがでしょう、月1,980円です", False),
    ],
)
def test_the_amount_the_agent_quotes_decides_past_budget(
    detector: SignalDetector, policy_book: PolicyBook, language: str, offer: str, past: bool
) -> None:
    said, asked, answer = QUOTE_AFTER_BUDGET[language]
    events = play(
        detector,
        policy_book,
        language,
        [("customer", said), ("agent", asked), ("customer", answer), ("agent", offer)],
    )
    assert ("past_budget" in warnings(events[3])) is past


TWO_DECISIONS = {
    "en": [
        ("customer", "our home internet crawls every evening, it's hopeless for streaming"),
        ("agent", "how many of you are online at once in the evening?"),
        ("customer", "three of us, all streaming"),
        ("agent", "the fibre 1 gig plan would fix that, shall I switch you?"),
        ("customer", "yes, switch me over"),
        ("agent", "and a mesh router would help in the back rooms, shall I add one?"),
        ("customer", "go on then, add that too"),
    ],
    "ja": [
        ("customer", "夜になると家のネットがすごく遅くて動画が止まるんです"),
        ("agent", "夜は何人くらいで同時にお使いですか"),
        ("customer", "三人で動画を見てます"),
        ("agent", "光1ギガプランにされると解決できますが、いかがでしょう"),
        ("customer", "じゃあそれでお願いします"),
        ("agent", "あわせてメッシュWi-Fiを付けると奥の部屋まで届きますが、いかがですか"),
        ("customer", "それも付けてください"),
    ],
}


def cards(events: list[Event]) -> list[str]:
    return [e.kind for e in events if isinstance(e, Suggestion)]


@pytest.mark.parametrize("language", ["en", "ja"])
def test_each_decision_is_a_moment_for_one_add_on_card(
    detector: SignalDetector, policy_book: PolicyBook, language: str
) -> None:
    events = play(detector, policy_book, language, TWO_DECISIONS[language])
    assert "cross_sell" in cards(events[4])  # the plan decided
    assert "cross_sell" in cards(events[6])  # the add-on decided: a new moment
    # the same decision heard twice is still one moment
    again = play(
        detector, policy_book, language, [*TWO_DECISIONS[language][:5], TWO_DECISIONS[language][4]]
    )
    assert "cross_sell" not in cards(again[5])


@pytest.mark.parametrize(
    ("language", "turns"),
    [
        (
            "en",
            [
                ("agent", "that's all updated for you. is there anything else I can do today?"),
                ("customer", "actually yes, my data always runs out around the 20th"),
            ],
        ),
        (
            "ja",
            [
                ("agent", "手続きは以上です。ほかに何かお困りのことはございますか"),
                ("customer", "そういえば、毎月20日ごろにはギガが足りなくなるんです"),
            ],
        ),
    ],
)
def test_a_need_named_when_asked_for_anything_else_reopens_the_call(
    detector: SignalDetector, policy_book: PolicyBook, language: str, turns: list[Turn]
) -> None:
    events = play(detector, policy_book, language, turns)
    assert "closing_summary" in signals(events[0])
    assert "upsell" in cards(events[1])


@pytest.mark.parametrize(
    ("text", "objects"),
    [
        ("今のプラン、やっぱりちょっと高いかなと思ってて", True),
        ("光のやつでも結構高いですよね", True),
        ("ちょっと高い階に住んでるので電波が心配です", False),
        ("評判はかなり高いみたいですね", False),
        ("高くはないと思いますよ、今のままで", False),
    ],
)
def test_a_bit_dear_without_a_money_word(
    detector: SignalDetector, policy_book: PolicyBook, text: str, objects: bool
) -> None:
    events = play(detector, policy_book, "ja", [("customer", text)])
    assert ("price_objection" in signals(events[0])) is objects


@pytest.mark.parametrize(
    ("text", "angry"),
    [
        ("苦情ではないんです、お礼を伝えたくて", False),
        ("クレームじゃないですよ、ちょっと聞きたいだけで", False),
        ("もう苦情を入れたいくらいです", True),
    ],
)
def test_a_complaint_denied_is_no_anger(
    detector: SignalDetector, policy_book: PolicyBook, text: str, angry: bool
) -> None:
    events = play(detector, policy_book, "ja", [("customer", text)])
    assert ("anger" in signals(events[0])) is angry


@pytest.mark.parametrize(
    ("language", "turns"),
    [
        (
            "en",
            [
                ("customer", "the home broadband crawls when the kids are all online"),
                ("agent", "how many devices are on it in the evening?"),
                ("customer", "five or six at once"),
                ("agent", "300 Mbps struggles with that; the fibre 1 gig plan would handle it."),
                ("customer", "ok let's do that"),
                ("agent", "and a mesh router would help upstairs, shall I add one?"),
                ("customer", "no thanks"),
                ("agent", "no problem, you're set with the fibre then, confirmation to follow"),
            ],
        ),
    ],
)
def test_the_plan_put_to_the_customer_is_the_one_the_words_point_to(
    detector: SignalDetector, policy_book: PolicyBook, language: str, turns: list[Turn]
) -> None:
    events = play(detector, policy_book, language, turns)
    # the upsell was the fibre, so naming the fibre they took after the no pushes nothing
    assert warnings(events[7]) == []


ASK_THEN_OFFER: dict[str, list[Turn]] = {
    "en": [
        ("agent", "How do you use your phone day to day?"),
        ("agent", "The security pack would help, shall I add it?"),
    ],
    "ja": [
        ("agent", "普段はどのようにお使いですか"),
        ("agent", "セキュリティパックはいかがですか"),
    ],
}


class PriceEverywhere:
    """A second opinion that hears a price objection in every utterance: what a model
    does on words it was not trained for. The rules must keep it honest."""

    model_id = "always-price"

    def __init__(self) -> None:
        self.thresholds = {"price_objection": 0.5}

    def scores(self, text: str, language: str) -> dict[str, float]:
        return {"price_objection": 0.9}


@pytest.mark.parametrize(
    ("language", "text", "priced"),
    [
        ("ja", "ほな、それ付けといてもらえる？", False),
        ("ja", "じゃあそれでお願いします", False),
        ("en", "yes please, go ahead and add it", False),
        ("en", "hmm, well, hmm", True),
    ],
)
def test_a_yes_heard_by_the_rules_outweighs_a_models_price_objection(
    detector: SignalDetector, policy_book: PolicyBook, language: str, text: str, priced: bool
) -> None:
    doubting = SignalDetector(
        detector._analyzers, detector._rules, detector._negation, PriceEverywhere()
    )
    events = play(
        doubting,
        policy_book,
        language,
        [
            (
                "agent",
                "How do you use your phone day to day?"
                if language == "en"
                else "普段はどのようにお使いですか",
            ),
            (
                "agent",
                "The security pack would help, shall I add it?"
                if language == "en"
                else "セキュリティパックはいかがですか",
            ),
            ("customer", text),
        ],
    )
    assert ("price_objection" in signals(events[2])) is priced


DECIDED_ON_PRICE = {
    "en": [
        ("customer", "I'm on the 50 gig plan and honestly it's too expensive for me now"),
        ("agent", "how much data do you use in a month?"),
        ("customer", "about ten gig, mostly at home on the wifi"),
        ("agent", "then the 20 gig plan would save you a thousand a month, shall I switch you?"),
        ("customer", "yes please, switch me over"),
    ],
    "ja": [
        ("customer", "今は50ギガプランなんですけど、毎月の料金が高すぎるんです"),
        ("agent", "月にどのくらいお使いですか"),
        ("customer", "10ギガくらいで、家ではWi-Fiです"),
        ("agent", "でしたら20ギガプランにされると月1,000円お安くなりますが、いかがですか"),
        ("customer", "じゃあ、それでお願いします"),
    ],
}
ADD_ON = {
    "en": {
        "device_protection": "and device protection is 700 a month, shall I add that too?",
        "security_pack": "and the security pack is 330 a month, shall I add that too?",
    },
    "ja": {
        "device_protection": "あわせて端末補償も月700円でいかがですか",
        "security_pack": "あわせてセキュリティパックも月330円でいかがですか",
    },
}


@pytest.mark.parametrize("language", ["en", "ja"])
def test_after_a_decision_on_price_only_an_add_on_within_the_saving(
    detector: SignalDetector, policy_book: PolicyBook, language: str
) -> None:
    events = play(detector, policy_book, language, DECIDED_ON_PRICE[language])
    shown = [e for e in events[4] if isinstance(e, Suggestion)]
    # half of the ¥1,000 saved: the security pack (¥330) fits, device protection does not
    assert [(s.kind, s.offer_id) for s in shown] == [("cross_sell", "security_pack")]
    for product, past in (("device_protection", True), ("security_pack", False)):
        turns = [*DECIDED_ON_PRICE[language], ("agent", ADD_ON[language][product])]
        after = play(detector, policy_book, language, turns)
        assert ("past_budget" in warnings(after[5])) is past, product
