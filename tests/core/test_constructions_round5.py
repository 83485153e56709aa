"""Constructions behind round 4's English misses, each tested as a family of our own.

Every case is written here from the construction named in ``TAXONOMY.md`` ("Round 5"),
not from any evaluation call: positives, and look-alikes that must not match.
"""

from __future__ import annotations

import pytest

from agent_assist.core.events import Suggestion
from agent_assist.core.policy import PolicyBook
from agent_assist.core.signals import SignalDetector
from tests.core.test_dialogue_acts import OFFER_THEN_NO, play, signals, warnings

# -- money as the reason, "too much", a hedged ceiling ----------------------------------


@pytest.mark.parametrize(
    ("text", "objection"),
    [
        ("honestly it's the money, the other lot are cheaper", True),
        ("it's mainly the price if I'm honest", True),
        ("it comes down to money really", True),
        ("it's purely a money thing for us", True),
        ("the bill's way too much honestly, for a phone", True),
        ("that is just too much, with the kids and everything", True),
        ("I can't really go over like three thousand a month", True),
        ("we don't really want to spend more than about 4000", True),
        ("I've got roughly three thousand a month for the phone, max", True),
        ("four thousand is my absolute limit", True),
        ("3,000 a month is my limit, honestly", True),
        ("20 gigs is my limit, I never use more", False),
        # look-alikes
        ("I just don't understand this line on the bill", False),
        ("yes, keep it, it's useful", False),
        ("it's the money they took twice that I'm calling about", False),
        ("it's the price of the router I wanted to check", False),
        ("that's too much data for me to ever use", False),
        ("it's too much hassle to move house and provider at once", False),
        ("I can't really go over the details now, I'm driving", False),
        ("it's not expensive, I'm only asking what this line is", False),
    ],
)
def test_money_as_the_reason_and_hedged_ceilings(
    detector: SignalDetector, policy_book: PolicyBook, text: str, objection: bool
) -> None:
    events = play(detector, policy_book, "en", [("customer", text)])
    assert ("price_objection" in signals(events[0])) is objection


# -- data that ends before the month does, in learners' English --------------------------


@pytest.mark.parametrize(
    ("text", "limit"),
    [
        ("my data, it always finishing before the month end", True),
        ("the gigs are finished before the middle of the month", True),
        ("data is gone early in the month every time", True),
        ("the download finished before lunch", False),
        ("my contract finishes at the end of the month", False),
    ],
)
def test_data_finishing_early(
    detector: SignalDetector, policy_book: PolicyBook, text: str, limit: bool
) -> None:
    events = play(detector, policy_book, "en", [("customer", text)])
    assert ("usage_limit" in signals(events[0])) is limit


# -- what the customer has, read out; the terms of ending it -----------------------------


@pytest.mark.parametrize(
    "reply",
    [
        "Thanks. I can see the account, a Light plan, three gig. What do you use it for?",
        "Right, looking at your account, the light plan, you're nearly at the cap. "
        "What eats most of it?",
        "The account shows the 20 GB plan. How are you finding it?",
    ],
)
def test_reading_the_account_out_is_no_offer(
    detector: SignalDetector, policy_book: PolicyBook, reply: str
) -> None:
    turns = [("agent", "Nova Mobile, how can I help?"), ("customer", "my data keeps running out")]
    events = play(detector, policy_book, "en", [*turns, ("agent", reply)])
    assert "offer_made" not in signals(events[2])
    assert warnings(events[2]) == []


@pytest.mark.parametrize(
    "reply",
    [
        "If you left the annual term early, you'd pay back the discount, ¥500 for each month.",
        "If you ended it early you'd repay the five hundred a month you've saved, nothing else.",
        "There's no early exit fee on the annual term, only the discount is paid back.",
    ],
)
def test_the_terms_of_ending_are_no_offer(
    detector: SignalDetector, policy_book: PolicyBook, reply: str
) -> None:
    turns = [
        ("agent", "Nova Mobile, how can I help?"),
        ("customer", "I'm on the annual thing, what happens if I get out of it early?"),
        ("agent", reply),
    ]
    events = play(detector, policy_book, "en", turns)
    assert "offer_made" not in signals(events[2])
    assert warnings(events[2]) == []


def test_proposing_the_annual_term_is_still_an_offer(
    detector: SignalDetector, policy_book: PolicyBook
) -> None:
    turns = [
        ("agent", "Nova Mobile, how can I help?"),
        ("customer", "my bill is too expensive"),
        ("agent", "You could move to the annual term and save ¥500 a month."),
    ]
    assert "offer_made" in signals(play(detector, policy_book, "en", turns)[2])


# -- words of pressure in a wish, or about the customer's own service --------------------


@pytest.mark.parametrize(
    ("text", "pressure"),
    [
        ("Enjoy it while it lasts, they'll find something else to moan about.", False),
        ("Make the most of it while you can, ha. The engineer will text you.", False),
        ("Your line stays active until the transfer goes through.", False),
        ("The service remains on till the switch completes, nothing to do.", False),
        ("This price is only there while stocks last, so grab it now.", True),
        ("You'll need to decide today, the offer ends tonight.", True),
    ],
)
def test_a_wish_or_a_service_fact_is_no_pressure(
    detector: SignalDetector, policy_book: PolicyBook, text: str, pressure: bool
) -> None:
    turns = [
        ("agent", "Nova Mobile, how can I help?"),
        ("customer", "the wifi is slow in the evenings"),
        ("agent", text),
    ]
    events = play(detector, policy_book, "en", turns)
    assert ("pressure_language" in warnings(events[2])) is pressure


# -- a yes in few words ------------------------------------------------------------------

OPEN_OFFER = [
    ("customer", "my data always runs out before the end of the month"),
    ("agent", "What do you mostly use it for?"),
    ("customer", "videos on the bus"),
    ("agent", "The 20 GB plan is ¥3,480 a month, six times the data. Would you like that?"),
]


@pytest.mark.parametrize(
    ("reply", "yes"),
    [
        ("Six times. Yes, I think so. I want it.", True),
        ("I think yes.", True),
        ("Okay. I'll have it.", True),
        ("I don't think so, no.", False),
        ("I want it to be cheaper first, honestly", False),
    ],
)
def test_a_yes_in_few_words(
    detector: SignalDetector, policy_book: PolicyBook, reply: str, yes: bool
) -> None:
    events = play(detector, policy_book, "en", [*OPEN_OFFER, ("customer", reply)])
    assert ("agreement" in signals(events[4])) is yes


# -- data used up said as a report; a line that can't keep up; charged twice -------------


@pytest.mark.parametrize(
    ("text", "signal", "present"),
    [
        ("I got a text saying I've used it all up again", "usage_limit", True),
        ("it says I've used eighty percent and it's only the tenth", "usage_limit", True),
        ("this month I finished my data, first time ever", "usage_limit", True),
        ("by the last week I'm rationing, no videos at all", "usage_limit", True),
        ("I've used it for years, no problems", "usage_limit", False),
        ("I finished the form you sent me", "usage_limit", False),
        ("the old line just can't keep up with three of us streaming", "speed_complaint", True),
        ("my upload is absolutely awful in the evenings", "speed_complaint", True),
        ("the video still stutters on my work calls", "speed_complaint", True),
        ("the weather is terrible today, isn't it", "speed_complaint", False),
        ("the old line just can't keep up with three of us streaming", "price_objection", False),
        ("I can't keep up with the bills any more", "price_objection", True),
        ("you've charged me twice for November", "anger", True),
        ("I've been double charged, and rent is due", "anger", True),
        ("I pay twice a year, is that still fine?", "anger", False),
    ],
)
def test_reported_use_slow_lines_and_double_charges(
    detector: SignalDetector, policy_book: PolicyBook, text: str, signal: str, present: bool
) -> None:
    events = play(detector, policy_book, "en", [("customer", text)])
    assert (signal in signals(events[0])) is present


def test_an_add_on_while_in_the_account_of_an_upset_customer_is_a_pitch(
    detector: SignalDetector, policy_book: PolicyBook
) -> None:
    turns = [
        ("customer", "you've charged me twice this month, that's my rent money!"),
        ("agent", "I'm so sorry. Can I take your postcode?"),
        ("customer", "M1 4BT"),
        (
            "agent",
            "Thanks. I've raised the refund. And while I'm in your account, the security "
            "pack is only ¥330 a month, worth having.",
        ),
    ]
    events = play(detector, policy_book, "en", turns)
    assert "pitch_during_complaint" in warnings(events[3])


def test_a_note_on_the_account_of_an_upset_customer_is_no_pitch(
    detector: SignalDetector, policy_book: PolicyBook
) -> None:
    turns = [
        ("customer", "you've charged me twice this month, that's my rent money!"),
        ("agent", "I'm so sorry. Can I take your postcode?"),
        ("customer", "M1 4BT"),
        (
            "agent",
            "Thanks. While I'm in your account I've raised the refund; it lands in three days.",
        ),
    ]
    events = play(detector, policy_book, "en", turns)
    assert warnings(events[3]) == []


# -- after a no, the offer again as risk-free --------------------------------------------


@pytest.mark.parametrize(
    ("reply", "push"),
    [
        ("how about I just put it through now, if you don't love it you can cancel anytime", True),
        ("honestly there's nothing to lose, it's a month's trial", True),
        ("it's risk-free, shall I add it and you see how it goes?", True),
        ("No problem. If you change your mind you can add it anytime.", False),
        ("Of course. I'll just put a note on the account that we spoke.", False),
    ],
)
def test_the_offer_again_as_risk_free_is_a_push(
    detector: SignalDetector, policy_book: PolicyBook, reply: str, push: bool
) -> None:
    events = play(detector, policy_book, "en", [*OFFER_THEN_NO["en"], ("agent", reply)])
    assert ("push_after_no" in warnings(events[5])) is push


# -- Japanese: thanks, but no; someone else must be asked first; 保障 for 補償 ------------


@pytest.mark.parametrize(
    ("reply", "no"),
    [
        ("ありがとう、でもいいの。他で探してみるから。", True),
        ("せっかくですけど、いいです。", True),
        ("でも、主人に一度聞いてみないと。", True),
        ("娘に相談してからにします。", True),
        ("それでいいです、お願いします。", False),
        ("何でもいいので、それでお願いします。", False),
    ],
)
def test_thanks_but_and_asking_someone_first_are_a_no(
    detector: SignalDetector, policy_book: PolicyBook, reply: str, no: bool
) -> None:
    events = play(detector, policy_book, "ja", [*OFFER_THEN_NO["ja"][:4], ("customer", reply)])
    assert ("refusal" in signals(events[4])) is no
    assert ("agreement" in signals(events[4])) is not no


def test_a_re_ask_after_asking_someone_first_is_a_push(
    detector: SignalDetector, policy_book: PolicyBook
) -> None:
    turns = [
        *OFFER_THEN_NO["ja"][:4],
        ("customer", "うーん、妻に確認してからにします。"),
        ("agent", "奥様もきっと喜ばれますよ。今お手続きしてしまいましょう。"),
    ]
    events = play(detector, policy_book, "ja", turns)
    assert "push_after_no" in warnings(events[5])


def test_hosho_written_with_the_other_kanji_is_still_the_add_on(
    detector: SignalDetector, policy_book: PolicyBook
) -> None:
    turns = [
        ("customer", "機種変更したいです。画面が割れてしまって。"),
        ("agent", "どのくらいお使いですか。"),
        ("customer", "毎日使います。じゃあ新しい機種でお願いします。"),
        ("agent", "では月700円の端末保障をお付けすると安心です。いかがですか。"),
    ]
    events = play(detector, policy_book, "ja", turns)
    assert "offer_made" in signals(events[3])


def test_checking_something_after_a_no_is_no_push(
    detector: SignalDetector, policy_book: PolicyBook
) -> None:
    turns = [
        *OFFER_THEN_NO["ja"][:4],
        ("customer", "うーん、妻に確認してからにします。"),
        ("agent", "承知しました。では、ご住所だけ確認してしまいましょう。"),
    ]
    events = play(detector, policy_book, "ja", turns)
    assert warnings(events[5]) == []


@pytest.mark.parametrize(
    ("text", "dear"),
    [
        ("正直、高いと思ってるよ。", True),
        ("毎月のこれ、ちょっと高いなと思って。", True),
        ("満足度は高いと思いますよ。", False),
        ("高いとは思ってないです。", False),
    ],
)
def test_thinking_it_dear_is_a_price_objection(
    detector: SignalDetector, policy_book: PolicyBook, text: str, dear: bool
) -> None:
    events = play(detector, policy_book, "ja", [("customer", text)])
    assert ("price_objection" in signals(events[0])) is dear


@pytest.mark.parametrize(
    ("reply", "yes"),
    [
        ("まあいいや、安くなるなら50ギガにしといて。", True),
        ("じゃあ、そのプランにしておいてください。", True),
        ("いや、今のままにしといて。", False),
    ],
)
def test_a_choice_put_as_an_errand_is_a_yes(
    detector: SignalDetector, policy_book: PolicyBook, reply: str, yes: bool
) -> None:
    events = play(detector, policy_book, "ja", [*OFFER_THEN_NO["ja"][:4], ("customer", reply)])
    assert ("agreement" in signals(events[4])) is yes


@pytest.mark.parametrize(
    ("reply", "push"),
    [
        ("かしこまりました。では補償なしで機種変更をみうけたまわります。", False),
        ("承知しました。オプション抜きでお手続きいたします。", False),
        ("ですが、補償は本当にお得ですよ。お付けしませんか。", True),
    ],
)
def test_a_product_named_as_left_out_is_no_push(
    detector: SignalDetector, policy_book: PolicyBook, reply: str, push: bool
) -> None:
    turns = [
        ("customer", "機種変更したいです。新しいのは高かったので壊したくないんです。"),
        ("agent", "普段はケースなどお使いですか。"),
        ("customer", "はい、使ってます。"),
        ("agent", "端末補償が月700円で修理代をカバーします。お付けしますか。"),
        ("customer", "あー、今回はいいです。"),
        ("agent", reply),
    ]
    events = play(detector, policy_book, "ja", turns)
    assert ("push_after_no" in warnings(events[5])) is push


# -- an upsell within the amount the customer named --------------------------------------


@pytest.mark.parametrize(
    ("moment", "shown"),
    [
        (
            "I'm on the Light plan. My data runs out every month, but 3,500 a month is my limit.",
            True,
        ),
        (
            "I'm on the Light plan. My data runs out every month, but 3,000 a month is my limit.",
            False,
        ),
        ("I'm on the Light plan. My data runs out every month, but money is tight.", False),
        ("I'm on the Light plan. My data runs out, and ¥3,200 a month is our limit.", False),
    ],
)
def test_an_upsell_within_the_named_amount_is_shown(
    detector: SignalDetector, policy_book: PolicyBook, moment: str, shown: bool
) -> None:
    events = play(detector, policy_book, "en", [("customer", moment)])
    upsells = [e for e in events[0] if isinstance(e, Suggestion) and e.kind == "upsell"]
    assert bool(upsells) is shown
    assert all(e.offer_id == "data_20gb" for e in upsells)


# -- a sales push as the reason; a dead phone; Kansai lines that do not reach -------------


@pytest.mark.parametrize(
    ("text", "centric"),
    [
        ("We've got a big push on mesh routers this month, so it'd really help.", True),
        ("My manager's on at all of us to sell these before Friday.", True),
        ("We need to shift them before the new model comes, to be honest.", True),
        ("You'll get a push notification when the engineer is on his way.", False),
        ("The engineer is on at eight, he'll text you first.", False),
    ],
)
def test_a_sales_push_given_as_the_reason_is_company_centric(
    detector: SignalDetector, policy_book: PolicyBook, text: str, centric: bool
) -> None:
    events = play(detector, policy_book, "en", [("agent", text)])
    assert ("company_centric" in signals(events[0])) is centric


@pytest.mark.parametrize(
    ("language", "text", "upset"),
    [
        ("en", "I dropped it in the bath and now it won't turn on at all", True),
        ("en", "the screen's gone black and it's completely dead.", True),
        ("en", "there's a dead zone upstairs in the back bedroom", False),
        ("ja", "お風呂に落としちゃって、画面が真っ暗なんです。", True),
        ("ja", "電源が入らないんです、どうしよう。", True),
        ("ja", "画面を暗くする設定を知りたいんですけど。", False),
    ],
)
def test_a_dead_phone_is_care_first(
    detector: SignalDetector, policy_book: PolicyBook, language: str, text: str, upset: bool
) -> None:
    events = play(detector, policy_book, language, [("customer", text)])
    care = [e for e in events[0] if isinstance(e, Suggestion) and e.rule_id.startswith("care.")]
    assert bool(care) is upset


@pytest.mark.parametrize(
    ("text", "signal", "present"),
    [
        ("奥の部屋だけWi-Fiが全然入らへんねん", "speed_complaint", True),
        ("夜になるとつながらへんのよ", "speed_complaint", True),
        ("この色はちょっと気に入らへんわ", "speed_complaint", False),
        ("光って高くないすか", "price_objection", True),
        ("光って速くないすか", "price_objection", False),
    ],
)
def test_kansai_and_casual_moments(
    detector: SignalDetector, policy_book: PolicyBook, text: str, signal: str, present: bool
) -> None:
    events = play(detector, policy_book, "ja", [("customer", text)])
    assert (signal in signals(events[0])) is present


# -- contentment said plainly ------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "text", "content"),
    [
        ("en", "yeah it's good actually, the signal holds on the motorway", True),
        ("en", "honestly it copes with everything I throw at it", True),
        ("en", "it does the job, can't complain.", True),
        ("en", "it's not good actually, it drops all the time", False),
        ("en", "I need it to do the job of two phones", False),
        ("ja", "特に困ってないよ、ちゃんと動くし言うことないね", True),
        ("ja", "全然困ってないです", True),
        ("ja", "すごく困ってるんです", False),
        ("ja", "言うことを聞かないんですよ、このスマホ", False),
    ],
)
def test_contentment_said_plainly(
    detector: SignalDetector, policy_book: PolicyBook, language: str, text: str, content: bool
) -> None:
    events = play(detector, policy_book, language, [("customer", text)])
    assert ("satisfaction" in signals(events[0])) is content
