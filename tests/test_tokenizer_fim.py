from rltab.policy.completion.prompt import cursor_window, prompt_ids
from rltab.policy.model import tokenizer as T
from rltab.policy.model.fim import FimTemplate


def test_round_trips_unicode(tiny_model):
    tok = tiny_model.tokenizer
    for text in ["def f(x):\n    return x  # 🚀 ok", "名前 = '東京'\t\r\n", "ünïcödé ∑ 𝔘 \x00 \\n", ""]:
        assert tok.decode(tok.encode(text).ids, skip_special_tokens=False) == text


def test_token_bytes_concatenate_to_text(tiny_model):
    table = T.token_bytes(tiny_model.tokenizer)
    text = "x = '🚀 名前'\n"
    ids = tiny_model.tokenizer.encode(text).ids
    assert b"".join(table[i] for i in ids).decode() == text


def test_special_tokens_are_single_ids(tiny_model):
    tok = tiny_model.tokenizer
    for s in T.SPECIAL_TOKENS:
        assert tok.encode(s).ids == [tok.token_to_id(s)]


def _enc(s):
    return [ord(c) for c in s]


def _tid(s):
    return {T.FIM_PREFIX: -1, T.FIM_SUFFIX: -2, T.FIM_MIDDLE: -3, T.EOS: -4}[s]


def test_prompt_layout_spm_psm_plain():
    spm = prompt_ids("ab", "cd", _enc, _tid)
    assert spm == [-2, ord("c"), ord("d"), -1, ord("a"), ord("b"), -3]
    psm = prompt_ids("ab", "cd", _enc, _tid, FimTemplate(spm=False))
    assert psm == [-1, ord("a"), ord("b"), -2, ord("c"), ord("d"), -3]
    plain = prompt_ids("ab", "cd", _enc, _tid, FimTemplate(prefix=None, suffix=None, middle=None))
    assert plain == [ord("a"), ord("b")]
    assert prompt_ids("ab", " \n", _enc, _tid) == [ord("a"), ord("b")]  # nothing after the cursor
    assert prompt_ids("", "", _enc, _tid) == [-4]  # an empty document


def test_window_respects_budgets_and_keeps_the_cursor():
    lines = [f"line_{i} = {i} * 2" for i in range(400)]
    before = "\n".join(lines[:300]) + "\nx = fo"
    after = "o()\n" + "\n".join(lines[300:])
    w = cursor_window(before, after, _enc, prefix_tokens=200, suffix_tokens=50)
    assert before.endswith(w.before) and w.before.endswith("x = fo")
    assert after.startswith(w.after) and w.after.startswith("o()")
    assert len(w.before) <= 200 and len(w.after) <= 50


def test_window_is_stable_while_typing():
    """Typing at the cursor must not move the window start (so the KV cache can be re-used)."""
    lines = [f"value_{i} = compute({i})" for i in range(300)]
    doc = "\n".join(lines) + "\n"
    starts = set()
    for extra in ["r", "re", "res", "resu", "resul", "result = "]:
        w = cursor_window(doc + extra, "\n", _enc, prefix_tokens=1000, suffix_tokens=50)
        starts.add(w.first_line)
    assert len(starts) == 1
