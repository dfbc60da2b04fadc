"""Tiny models built inside the tests: a real tokenizer and a real (small) Llama, trained for a
few steps on stdlib text so that greedy decoding says something code-like."""

from __future__ import annotations

from pathlib import Path

import torch

from rltab.policy.model import tokenizer as T
from rltab.policy.model.checkpoint import save_model_dir, starter_config
from rltab.policy.pretraining import corpus

TINY = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=2,
    num_key_value_heads=2,
    max_position_embeddings=1024,
)


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
    from rltab.policy.completion.completer import Completer

    completer = Completer(model)
    for before in COMPLETABLE:
        if completer.complete(before, "\n").text:
            lines = before.split("\n")
            return before + "\n", (len(lines) - 1, len(lines[-1].encode("utf-16-le")) // 2)
    raise AssertionError("the shipped model answers none of the test documents")


# Tiny random checkpoints of each importable family, each with a byte-level BPE tokenizer that
# carries that family's special tokens (the real tokenizers' names), saved the way
# transformers saves real checkpoints.
FAMILY_TOKENS = {
    "llama": dict(
        bos="<｜begin▁of▁sentence｜>",
        eos="<｜end▁of▁sentence｜>",  # DeepSeek-Coder
        extra=["<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>"],
    ),
    "qwen2": dict(
        bos=None,
        eos="<|endoftext|>",
        extra=["<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>", "<|file_sep|>"],
    ),
    "starcoder2": dict(
        bos=None, eos="<|endoftext|>", extra=["<fim_prefix>", "<fim_middle>", "<fim_suffix>", "<fim_pad>", "<file_sep>"]
    ),
    "gpt2": dict(bos=None, eos="<|endoftext|>", extra=[]),
}


def make_family_checkpoint(directory: Path, model_type: str, seed: int = 0, pad_vocab: int = 0) -> Path:
    """`pad_vocab` extra embedding rows with no token, as real checkpoints have (Qwen2.5)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import (
        GPT2Config,
        GPT2LMHeadModel,
        LlamaConfig,
        LlamaForCausalLM,
        PreTrainedTokenizerFast,
        Qwen2Config,
        Qwen2ForCausalLM,
        Starcoder2Config,
        Starcoder2ForCausalLM,
    )

    spec = FAMILY_TOKENS[model_type]
    specials = [t for t in (spec["bos"], spec["eos"], *spec["extra"]) if t]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.train_from_iterator(
        tiny_texts(10),
        trainers.BpeTrainer(
            vocab_size=400,
            special_tokens=specials,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        ),
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token=spec["eos"], bos_token=spec["bos"], additional_special_tokens=spec["extra"]
    )
    v = tok.get_vocab_size() + pad_vocab
    eos, bos = tok.token_to_id(spec["eos"]), tok.token_to_id(spec["bos"] or spec["eos"])
    common = dict(vocab_size=v, bos_token_id=bos, eos_token_id=eos)
    torch.manual_seed(seed)
    if model_type == "llama":
        model = LlamaForCausalLM(
            LlamaConfig(
                hidden_size=64,
                intermediate_size=128,
                num_hidden_layers=2,
                num_attention_heads=4,
                num_key_value_heads=2,
                max_position_embeddings=512,
                **common,
            )
        )
    elif model_type == "qwen2":
        model = Qwen2ForCausalLM(
            Qwen2Config(
                hidden_size=64,
                intermediate_size=128,
                num_hidden_layers=2,
                num_attention_heads=4,
                num_key_value_heads=2,
                max_position_embeddings=512,
                tie_word_embeddings=True,
                **common,
            )
        )
    elif model_type == "starcoder2":
        model = Starcoder2ForCausalLM(
            Starcoder2Config(
                hidden_size=64,
                intermediate_size=128,
                num_hidden_layers=2,
                num_attention_heads=4,
                num_key_value_heads=2,
                max_position_embeddings=512,
                **common,
            )
        )
    else:
        model = GPT2LMHeadModel(GPT2Config(n_embd=64, n_layer=2, n_head=4, n_positions=512, **common))
    model.eval().save_pretrained(str(directory), safe_serialization=True)
    fast.save_pretrained(str(directory))
    return directory


def random_adapter(home, name, seed, scale=0.3):
    """A published-looking adapter version over the starter with random (nonzero) LoRA weights."""
    from rltab.policy.model import adapters as A
    from rltab.policy.model.checkpoint import STARTER_DIR, load_torch, write_meta

    model = A.with_lora(load_torch(STARTER_DIR), r=8, alpha=16, seed=seed)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_" in n:
                p.copy_(torch.randn(p.shape, generator=g) * scale)
    d = home / "models" / name
    d.mkdir(parents=True)
    write_meta(d, {"version": name, "parent": "starter", "base": "starter", "lora": {"r": 8, "alpha": 16}})
    size = A.save(model, d, 8, 16)
    return model.eval(), d, size
