"""Tiny models built inside the tests: a real tokenizer and a real (small) Llama, trained for a
few steps on stdlib text so that greedy decoding says something code-like."""
from __future__ import annotations

from pathlib import Path

import torch

from rltab.policy import corpus
from rltab.policy import tokenizer as T
from rltab.policy.model import save_model_dir, starter_config

TINY = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
            num_key_value_heads=2, max_position_embeddings=1024)


def tiny_texts(n_files: int = 30) -> list[str]:
    return corpus.read_sources(corpus.stdlib_files("train")[:n_files])


def make_tiny_model(directory: Path, steps: int = 30, vocab_size: int = 512, seed: int = 0, **overrides) -> Path:
    from transformers import LlamaForCausalLM

    torch.manual_seed(seed)
    texts = tiny_texts()
    tok = T.train_tokenizer(texts, vocab_size)
    model = LlamaForCausalLM(starter_config(tok.get_vocab_size(), **{**TINY, **overrides}))
    if steps:
        ids = torch.tensor(tok.encode("\n".join(texts)[:200_000]).ids)
        opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
        g = torch.Generator().manual_seed(seed)
        for _ in range(steps):
            starts = torch.randint(0, len(ids) - 128, (8,), generator=g)
            batch = torch.stack([ids[s : s + 128] for s in starts])
            loss = model(input_ids=batch, labels=batch).loss  # transformers shifts the labels
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    return save_model_dir(model, tok, directory, {"name": "tiny", "version": "tiny"}, fp16=False)


# Realistic documents ending at the cursor; the test suite uses the first one where the shipped
# model answers (which one depends on the model, and the model keeps learning).
COMPLETABLE = [
    "class Point:\n    def __init__(self, x, y):\n        self.x = x\n        self.",
    "class Point:\n    def __init__(self, x, y):\n        self.x = x\n        self.y",
    "class Point:\n    def __init__(self, x, y):\n        self.x = x\n        self.y = ",
    "import os\n\n\ndef read(path):\n    with open(path) as f:\n        return f.",
    "def add(a, b):\n    return ",
    "import os\n\n\ndef main(args):\n    print(",
]


def completable_doc(model) -> tuple[str, tuple[int, int]]:
    """(document text, (line, UTF-16 column) of its end) where `model` suggests something."""
    from rltab.server.completion.completer import Completer

    completer = Completer(model)
    for before in COMPLETABLE:
        if completer.complete(before, "\n").text:
            lines = before.split("\n")
            return before + "\n", (len(lines) - 1, len(lines[-1].encode("utf-16-le")) // 2)
    raise AssertionError("the shipped model answers none of the test documents")
