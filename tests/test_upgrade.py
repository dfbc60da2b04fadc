"""A new starter (issue 27): a home made with today's starter keeps working. Its adapter
versions belong to the old base and are retired (listed, never served); ledger rows of the old
tokenizer are encoded again from their text, never trained on as ids. The new starter stands in
as RLTAB_STARTER_DIR: a tiny Llama with a tokenizer of its own (tests/helpers.make_tiny_model)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys

from helpers import random_adapter

from rltab.policy.learning.retokenize import LEGACY_STARTER_TOKENIZER
from rltab.policy.learning.synthetic import QUOTE_CONTEXTS, serve_round
from rltab.policy.model.checkpoint import STARTER_DIR
from rltab.policy.model.formats import tokenizer_digest
from rltab.policy.model.home import current_version, retired, set_current


def rltab(*args, env):
    return subprocess.run(
        [sys.executable, "-m", "rltab.server.cli", *args], capture_output=True, text=True, timeout=600, env=env
    )


def test_the_shipped_starter_is_the_one_legacy_rows_name():
    assert tokenizer_digest(STARTER_DIR) == LEGACY_STARTER_TOKENIZER


def test_a_home_made_with_todays_starter_after_a_new_one_ships(tmp_path, starter, tiny_model_dir):
    home = tmp_path / "home"
    serve_round(home, QUOTE_CONTEXTS, lambda t: "'" in t)  # learning-on rows, with their text
    db = sqlite3.connect(home / "ledger.db")
    db.execute("update suggestion set tokenizer = null")  # rows from before they recorded it
    db.commit()
    db.close()
    random_adapter(home, "v0001", seed=1)
    set_current(home, "v0001")
    assert retired(home, "v0001") is None and current_version(home) == "v0001"  # today: served

    env = {**os.environ, "RLTAB_STARTER_DIR": str(tiny_model_dir)}
    listed = json.loads(rltab("versions", "--json", "--home", str(home), env=env).stdout)
    v1 = next(v for v in listed if v["version"] == "v0001")
    assert v1["retired"] and "earlier starter" in v1["retired"] and not v1["current"]
    src = tmp_path / "a.py"
    src.write_text("def f(x):\n    return x")
    served = rltab("complete", str(src), "--line", "2", "--col", "13", "--json", "--home", str(home), env=env)
    assert served.returncode == 0, served.stderr
    assert json.loads(served.stdout)["model_version"] == "starter"  # the new starter, not v0001

    trained = rltab("train", "--once", "--home", str(home), "--config", '{"min_events": 4}', env=env)
    assert trained.returncode == 0, trained.stderr[-2000:]
    assert "rows of another tokenizer encoded again from their text" in trained.stderr, trained.stderr[-2000:]
    result = json.loads(trained.stdout.strip().splitlines()[-1])
    if result["published"]:  # a version over the new starter records it
        meta = json.loads((home / "models" / result["published"] / "meta.json").read_text())
        assert meta["tokenizer"] == tokenizer_digest(tiny_model_dir) and meta["parent"] == "starter"
