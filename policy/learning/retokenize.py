"""Ledger rows whose token ids belong to another tokenizer (a previous starter's, after rltab
ships a new one) are never trained on as ids: where the row kept its text (learning was on), the
prompt and the suggestion are encoded again with this tokenizer, laid out as the server prompts;
the behaviour log-probs are dropped (the updater then takes the parent's, as for an inference
server that returns none); a row without its text is left out.

Rows record their tokenizer (formats.tokenizer_digest) since ledger migration m009. Older rows
name the version that served them: the starter's rows belong to the tokenizer every starter
shipped with until then; an adapter version's to its base's, unless that version is retired.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from rltab.feedback.ledger import LearnableRow
from rltab.policy.completion.prompt import cursor_window, prompt_ids
from rltab.policy.model import tokenizer as T
from rltab.policy.model.checkpoint import read_meta
from rltab.policy.model.fim import fim_template
from rltab.policy.model.formats import STARTER_VERSION, tokenizer_digest
from rltab.policy.model.home import model_dir, retired

LEGACY_STARTER_TOKENIZER = "b1e591ae2f7f39cb"
"""formats.tokenizer_digest of the tokenizer every starter shipped with before rows recorded theirs
(the 5 M starter's, steps 2,550 and 4,200)."""


def row_tokenizer(row: LearnableRow, home: Path) -> str | None:
    """The digest of the tokenizer `row`'s ids belong to (None: unknown, so not this one)."""
    if row.get("tokenizer"):
        return row["tokenizer"]
    version = row["model_version"]
    if version == STARTER_VERSION:
        return LEGACY_STARTER_TOKENIZER
    d = model_dir(home, version)
    if not d.is_dir() or retired(home, version):
        return None
    base = read_meta(d).get("base")
    return tokenizer_digest(model_dir(home, base) if base else d)


def in_tokenizer(rows: Sequence[LearnableRow], home: Path, weights: Path, tok) -> tuple[list[LearnableRow], int, int]:
    """`rows` as this tokenizer's (that of the model directory `weights`): (rows, how many were
    encoded again from their text, how many were left out for want of it)."""
    mine = tokenizer_digest(weights)
    template = fim_template(weights)
    encode = lambda s: tok.encode(s, add_special_tokens=False).ids
    token_id = lambda t: T.token_id(tok, t)
    out, again, dropped = [], 0, 0
    for row in rows:
        if row_tokenizer(row, home) == mine:
            out.append(row)
            continue
        if row.get("prefix_text") is None or row.get("completion_text") is None:
            dropped += 1
            continue
        win = cursor_window(row["prefix_text"] or "", row.get("suffix_text") or "", encode)
        fresh = dict(row)
        fresh["prompt_ids"] = json.dumps(prompt_ids(win.before, win.after, encode, token_id, template))
        fresh["completion_ids"] = json.dumps(encode(row["completion_text"] or ""))
        fresh["logprobs"] = None  # the behaviour's were under the old tokenizer's ids
        fresh["healed"] = 0
        fresh["tokenizer"] = mine
        out.append(fresh)  # type: ignore[arg-type]
        again += 1
    return out, again, dropped
