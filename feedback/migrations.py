"""Numbered ledger migrations, applied in order and recorded (sqlite-utils 4 `Migrations`).

Never edit a migration that has shipped: add the next one. Upgrades never drop user data.
"""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

migrations = Migrations("rltab.ledger")


@migrations()
def m001_suggestions_and_events(db: Database) -> None:
    db.table("suggestion").create(
        {
            "id": str,
            "time": float,
            "model_version": str,
            "repo": str,
            "file": str,
            "language": str,
            "kind": str,
            "completion_chars": int,
            "latency_ms": float,
            "confidence": float,
            "prompt_ids": str,
            "completion_ids": str,
            "logprobs": str,  # JSON; only while learning
            "prefix_text": str,
            "suffix_text": str,
            "completion_text": str,  # only while learning
        },
        pk="id",
    )
    db.table("event").create(
        {
            "id": int,
            "suggestion_id": str,
            "kind": str,
            "accepted_chars": int,
            "retention": float,
            "time": float,
            "text": str,
        },
        pk="id",
        foreign_keys=[("suggestion_id", "suggestion", "id")],
    )
    db.table("event").create_index(["suggestion_id"])
    db.table("suggestion").create_index(["model_version"])


@migrations()
def m002_outcome_and_reward(db: Database) -> None:
    """The settled fate of each suggestion, so stats and the updater need not replay events."""
    db.table("suggestion").add_column("outcome", str)
    db.table("suggestion").add_column("accepted_chars", int)
    db.table("suggestion").add_column("retention", float)
    db.table("suggestion").add_column("reward", float)
    db.table("suggestion").add_column("demonstration", str)
    db.table("suggestion").add_column("outcome_source", str)  # "explicit" (a command) or "inferred" (didChange)
    db.table("suggestion").create_index(["outcome"])
    db.table("event").add_column("source", str)
    db.table("state").create({"key": str, "value": str}, pk="key")


@migrations()
def m003_prompt_token_counts(db: Database) -> None:
    """How much of each prompt was prefilled fresh (the rest came from the KV cache)."""
    db.table("suggestion").add_column("prompt_tokens", int)
    db.table("suggestion").add_column("prefill_tokens", int)


@migrations()
def m004_trained_in(db: Database) -> None:
    """Which published version learned from a suggestion (null: not yet), and whether its
    first completion id replaced the prompt's last token (token healing)."""
    db.table("suggestion").add_column("trained_in", str)
    db.table("suggestion").add_column("healed", int)


@migrations()
def m005_scrub_secrets(db: Database) -> None:
    """Rows learned before the secret detector was widened (detect-secrets, cut key blocks,
    unquoted assignments, more secret-named files): drop the text and token ids of any row whose
    window, suggestion or later text now looks like a secret. Counts and outcomes stay."""
    scrub_secrets(db)


def scrub_secrets(db: Database) -> None:
    """Drop the text and token ids of every row whose window, suggestion or later text looks like
    a secret to today's detector (feedback/secrets.py), each suggestion and demonstration checked
    inside its own lines; counts and outcomes stay."""
    from .secrets import contains_secret, is_secret_file  # detect-secrets: loaded when a scrub runs, not per open

    texts = ("prefix_text", "suffix_text", "completion_text", "demonstration")
    leaked = []
    for row in db.query(f"select id, file, {', '.join(texts)} from suggestion where prompt_ids is not null"):
        path = row["file"] or ""
        before, after = row["prefix_text"] or "", row["suffix_text"] or ""
        whole = (before + (row["completion_text"] or "") + after, before + (row["demonstration"] or ""))
        if is_secret_file(path) or any(contains_secret(t, path) for t in whole):
            leaked.append(row["id"])
    for sid in leaked:
        db.execute(
            "update suggestion set prompt_ids = null, completion_ids = null, logprobs = null, "
            + ", ".join(f"{t} = null" for t in texts)
            + " where id = ?",
            [sid],
        )
        db.execute("update event set text = null where suggestion_id = ?", [sid])
    for event in db.query(
        "select e.id, e.text, s.file from event e join suggestion s on s.id = e.suggestion_id where e.text is not null"
    ):
        if contains_secret(event["text"], event["file"] or ""):
            db.execute("update event set text = null where id = ?", [event["id"]])


@migrations()
def m006_update_cycles(db: Database) -> None:
    """Every updater cycle, published or refused and why: what `rltab learned` shows beside the
    versions themselves (a refused update leaves no model directory behind)."""
    db.table("update_cycle").create(
        {
            "id": int,
            "time": float,
            "repo": str,
            "parent": str,
            "version": str,  # null: refused
            "reason": str,
            "events": int,
            "seconds": float,
            "report": str,  # JSON: the guard's figures
        },
        pk="id",
    )
    db.table("update_cycle").create_index(["parent"])


@migrations()
def m007_typing(db: Database) -> None:
    """Characters written into documents per hour, model version and repository (counts only, no
    text): the denominator of "characters saved per 100 written" in `rltab stats`."""
    db.table("typing").create(
        {"hour": int, "model_version": str, "repo": str, "chars": int}, pk=("hour", "model_version", "repo")
    )


@migrations()
def m008_scrub_secrets_detect_secrets_ran(db: Database) -> None:
    """detect-secrets' plugins never ran before (its settings were left empty), and URL
    credentials, bearer tokens, JWT headers and unquoted passwords were not recognised: scrub
    what they let through."""
    scrub_secrets(db)


@migrations()
def m009_tokenizer(db: Database) -> None:
    """Which tokenizer a row's token ids belong to (formats.tokenizer_digest). A new starter comes
    with a new tokenizer: ids of the old one are never trained on as ids (learning/examples.py
    encodes the row's kept text again). Rows from before carry none."""
    db.table("suggestion").add_column("tokenizer", str)
