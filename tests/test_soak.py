"""A long day in a minute: thousands of keystrokes through the real server, learning off and on.
Resident memory must level off. (pygls 2.1 kept a future, with its params, for every didChange,
didOpen and didClose: +2 MB per 1,000 keystrokes without end. bench/soak.py has the figures.)"""

import statistics
import sys

import pytest

from rltab.harness.soak import soak
from rltab.policy.pretraining import corpus

WARM_UP = 4000  # messages: the model's arenas and caches fill first
BOUND_MB = 4.0  # growth allowed over the ~5,000 messages after it (measured: 0.8-1.6 MB; with the leak, 8.7)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the server's RSS from /proc")
@pytest.mark.parametrize("learning", [False, True], ids=["learning-off", "learning-on"])
def test_memory_levels_off_over_thousands_of_keystrokes(tmp_path, starter, learning):
    text = (corpus.stdlib_dir() / "textwrap.py").read_text()[:9000]
    s = soak(tmp_path / "home", text, learning, read_every=1000, rewrite_every=3000)
    assert s.messages >= 9900
    after = [rss for messages, rss in s.rss if messages >= WARM_UP]
    # The highest sample against the level after warm-up, the median of its first three samples:
    # one sample can sit a step low (a clean CI run: 129.8 MB at 4,005 messages, between 131.3
    # and 133.6, and 134.0 at the end: 4.2 MB from that one low sample). The pygls leak: 8.7 MB.
    growth = max(after) - statistics.median(after[:3])
    assert growth < BOUND_MB, f"RSS grew {growth:.1f} MB after warm-up: {s.as_dict()['rss_mb']}"
