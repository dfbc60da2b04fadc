"""Pure pieces of the learning signal: rewards, retention, secrets, settings, positions."""

import pytest

from rltab.feedback import rewards as R
from rltab.feedback.secrets import contains_secret, is_secret_file
from rltab.server.documents import UTF8, UTF16, UTF32, Documents, offset_at, position_at
from rltab.server.settings import Settings, parse_settings

CURSOR = R.RewardConfig(scheme=R.CURSOR)


@pytest.mark.parametrize(
    "outcome,chars,n,ret,want",
    [
        ("silent", 0, 0, None, 0.0),
        ("rejected", 0, 10, None, -0.25),
        ("accepted", 10, 10, None, 0.75),
        ("accepted", 10, 10, 0.5, 0.25),
        ("partial", 5, 10, None, 0.25),
        ("partial", 5, 10, 0.5, 0.0),
        ("partial", 20, 10, 1.0, 0.75),  # never more than the whole suggestion
    ],
)
def test_cursor_reward_table(outcome, chars, n, ret, want):
    assert R.reward(outcome, chars, n, ret, cfg=CURSOR) == pytest.approx(want)


def test_reward_config_is_honoured_and_unknown_outcomes_rejected():
    assert R.RewardConfig().scheme == R.CHARS  # the default: what the user gains
    cfg = R.RewardConfig(scheme=R.CURSOR, shown_cost=-0.5, accept_value=2.0)
    assert R.reward("accepted", cfg=cfg) == 1.5
    with pytest.raises(ValueError):
        R.reward("loved")


CHARS = R.RewardConfig(scheme=R.CHARS, read_cost_chars=2.0, chars_per_unit=10.0)


@pytest.mark.parametrize(
    "outcome,chars,n,ret,want",
    [
        ("silent", 0, 0, None, 0.0),
        ("rejected", 0, 17, None, -0.2),  # reading it cost 2 characters
        ("invalid", 0, 17, None, -0.2),  # dropped by compiler feedback: as a rejection
        ("accepted", 3, 3, None, 0.1),  # a 3-character accept saves 1 net character
        ("accepted", 30, 30, 0.5, 1.3),  # half of it kept
        ("partial", 4, 17, None, 0.2),  # the partials Cursor's scheme punished
        ("partial", 40, 17, None, 1.5),  # never more than the whole suggestion
    ],
)
def test_reward_in_characters(outcome, chars, n, ret, want):
    assert R.reward(outcome, chars, n, ret, cfg=CHARS) == pytest.approx(want)


@pytest.mark.parametrize("chars", range(0, 18))
def test_a_partial_that_saved_characters_never_earns_less_than_a_rejection(chars):
    for cfg in (CHARS, R.RewardConfig(scheme=R.CHARS, read_cost_chars=5.0)):
        assert R.reward("partial", chars, 17, None, cfg=cfg) >= R.reward("rejected", 0, 17, cfg=cfg)
    if chars:
        assert R.reward("partial", chars, 17, None, cfg=CHARS) > R.reward("rejected", 0, 17, cfg=CHARS)


def test_learning_paused_setting():
    s, warnings = parse_settings({"learning": {"enabled": True, "paused": True}})
    assert s.learning_enabled and s.learning_paused and not warnings
    s, warnings = parse_settings({"learning": {"paused": False}}, s)  # enabled untouched
    assert s.learning_enabled and not s.learning_paused and not warnings
    s, warnings = parse_settings({"learning": {"paused": "on battery"}}, s)
    assert not s.learning_paused and "learning.paused" in warnings[0]


def test_reward_scheme_setting():
    assert Settings().reward_scheme == "chars"
    s, warnings = parse_settings({"rewardScheme": "cursor"})
    assert s.reward_scheme == "cursor" and not warnings
    s, warnings = parse_settings({"rewardScheme": "likes"}, s)
    assert s.reward_scheme == "cursor" and warnings
    s, warnings = parse_settings({"readCostChars": 1})
    assert s.read_cost_chars == 1.0 and isinstance(s.read_cost_chars, float) and not warnings
    s, warnings = parse_settings({"readCostChars": -3}, s)
    assert s.read_cost_chars == 1.0 and "readCostChars" in warnings[0]


def test_retention_is_one_minus_normalized_edit_distance():
    assert R.retention("abc", "abc") == 1.0
    assert R.retention("abcd", "abXd") == 0.75
    assert R.retention("abc", "") == 0.0
    assert R.edit_distance("kitten", "sitting") == 3


@pytest.mark.parametrize(
    "text",
    [
        "key = 'AKIAABCDEFGHIJKLMNOP'",
        "-----BEGIN RSA PRIVATE KEY-----",
        "t = 'ghp_" + "a" * 36 + "'",
        'password = "hunter2hunter2"',
        "API_KEY: 'sk-" + "x" * 30 + "'",
    ],
)
def test_secrets_are_recognised(text):
    assert contains_secret(text)


def test_ordinary_code_is_not_a_secret():
    assert not contains_secret("def tokenize(text):\n    token = next(tokens)\n    password_field = form['pw']\n")
    assert is_secret_file("/p/.env") and is_secret_file("/p/.env.local") and is_secret_file("/h/.ssh/id_rsa")
    assert not is_secret_file("/p/env.py") and not is_secret_file("/p/settings.py")


def test_settings_parse_defaults_and_warnings():
    s, w = parse_settings({"learning": {"enabled": True}, "maxLines": 4, "silenceThreshold": 0.3, "debounceMs": 50})
    assert s == Settings(learning_enabled=True, silence_threshold=0.3, max_lines=4, debounce_ms=50) and w == []
    s, w = parse_settings({"maxLines": 0, "silenceThreshold": "high", "debounceMs": 1.5, "learning": "yes"})
    assert s == Settings() and len(w) == 4
    assert parse_settings("nonsense")[1] and parse_settings(None) == (Settings(), [])


def test_positions_in_each_encoding():
    text = "a🚀b\n名x"
    assert offset_at(text, 0, 3, encoding=UTF16) == 2  # after the emoji (two UTF-16 units)
    assert offset_at(text, 0, 5, encoding=UTF8) == 2  # the emoji is four UTF-8 bytes
    assert offset_at(text, 0, 2, encoding=UTF32) == 2
    assert offset_at(text, 1, 1) == 5 and offset_at(text, 9, 0) == len(text)
    assert position_at(text, 2) == (0, 3) and position_at(text, 2, UTF8) == (0, 5)


def test_incremental_changes_report_the_text_before_each():
    from types import SimpleNamespace as NS

    docs = Documents()
    docs.open("u", "x = 1\n", 1)
    rng = lambda a, b, c, d: NS(start=NS(line=a, character=b), end=NS(line=c, character=d))
    applied = docs.change("u", 2, [NS(range=rng(0, 4, 0, 5), text="🚀"), NS(range=rng(0, 6, 0, 6), text="!")])
    assert docs.get("u").text == "x = 🚀!\n" and docs.get("u").version == 2
    assert applied[0] == ("x = 1\n", 4, 5, "🚀") and applied[1][1:] == (5, 5, "!")
    docs.change("u", 3, [NS(text="whole")])  # no range: replace everything
    assert docs.get("u").text == "whole"


def test_accept_rates_are_plotted_with_wilson_intervals(tmp_path):
    from rltab.feedback.stats import plot_stats, time_bins, wilson_interval

    lo, hi = wilson_interval(3, 10)
    assert (round(lo, 3), round(hi, 3)) == (0.108, 0.603)  # the textbook 95 % Wilson interval of 3/10
    assert wilson_interval(0, 5)[0] == 0.0 and wilson_interval(5, 5)[1] == 1.0 and wilson_interval(0, 0) == (0.0, 1.0)
    few, many = wilson_interval(1, 4), wilson_interval(250, 1000)
    assert few[1] - few[0] > many[1] - many[0]  # four suggestions say much less than a thousand
    rows = [{"model_version": "starter", "shown": 10, "accepted": 2, "partial": 1, "accept_rate": 0.3}]
    hourly = [
        {
            "hour": 500_000 + h,
            "model_version": "starter" if h < 30 else "v0001",
            "shown": 4,
            "taken": 1,
            "silent": 2,
            "chars_accepted": 9,
            "chars_typed": 100,
        }
        for h in range(48)
    ]
    bins = time_bins(hourly)  # 48 hours in at most 24 points: two hours each
    assert len(bins) == 24 and bins[0]["hours"] == 2 and bins[0]["shown"] == 8 and bins[-1]["chars_typed"] == 200
    starts = [(500_000 * 3600.0, "starter"), (500_030 * 3600.0 + 5, "v0001")]
    for name, data, timeline, marks in (("one.png", rows, hourly, starts), ("none.png", [], [], [])):
        plot_stats(data, timeline, marks, tmp_path / name)
        assert (tmp_path / name).stat().st_size > 1000
