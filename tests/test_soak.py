"""A long day in a minute: thousands of keystrokes through the real server, learning off and on.
Resident memory must level off. (pygls 2.1 kept a future, with its params, for every didChange,
didOpen and didClose: +2 MB per 1,000 keystrokes without end. bench/soak.py has the figures.)"""

import sys

import pytest

from rltab.harness.soak import soak
from rltab.policy.pretraining import corpus

WARM_UP = 4000  # messages: the model's arenas and caches fill first
BOUND_MB = 4.0  # growth allowed over the ~5,000 messages after it (measured: 1.5 MB; with the leak, 9)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the server's RSS from /proc")
@pytest.mark.parametrize("learning", [False, True], ids=["learning-off", "learning-on"])
def test_memory_levels_off_over_thousands_of_keystrokes(tmp_path, starter, learning):
    text = (corpus.stdlib_dir() / "textwrap.py").read_text()[:9000]
    s = soak(tmp_path / "home", text, learning, read_every=1000, rewrite_every=3000)
    assert s.messages >= 9900
    after = [rss for messages, rss in s.rss if messages >= WARM_UP]
    growth = max(after) - after[0]
    assert growth < BOUND_MB, f"RSS grew {growth:.1f} MB after warm-up: {s.as_dict()['rss_mb']}"
