"""The learning path: ledger rows to examples, losses, LoRA steps, the guard, versions, the
updater process and its lock. May import feedback, model, inference, completion, evaluation and
pretraining (held-out text); never the server."""
