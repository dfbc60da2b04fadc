"""Byte-level BPE tokenizer with fill-in-the-middle special tokens.

The FIM token names follow Qwen2.5-Coder / StarCoder2 (`<|fim_prefix|>` ...), so imported
models and the starter model share one prompt layout.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

EOS = "<|endoftext|>"
FIM_PREFIX = "<|fim_prefix|>"
FIM_MIDDLE = "<|fim_middle|>"
FIM_SUFFIX = "<|fim_suffix|>"
FIM_PAD = "<|fim_pad|>"
SPECIAL_TOKENS = [EOS, FIM_PREFIX, FIM_MIDDLE, FIM_SUFFIX, FIM_PAD]


def train_tokenizer(texts: Iterable[str], vocab_size: int = 8192) -> Tokenizer:
    """Train a byte-level BPE on `texts`; special tokens get ids 0..4."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


def load_tokenizer(path: str | Path) -> Tokenizer:
    """The tokenizer file at `path` (or in the directory); ValueError for one that is no tokenizer
    (tokenizers raises a bare Exception)."""
    path = Path(path)
    file = path / "tokenizer.json" if path.is_dir() else path
    try:
        return Tokenizer.from_file(str(file))
    except Exception as e:
        if isinstance(e, OSError):
            raise
        raise ValueError(f"{file} is not a tokenizer: {e}") from e


def token_id(tok: Tokenizer, token: str) -> int:
    """The id of a token the tokenizer must have (its special tokens)."""
    tid = tok.token_to_id(token)
    if tid is None:
        raise KeyError(f"{token!r} is not in the tokenizer")
    return tid


def save_for_transformers(tok: Tokenizer, directory: str | Path, model_max_length: int = 2048) -> None:
    """Write tokenizer.json plus the config files transformers' AutoTokenizer expects."""
    from transformers import PreTrainedTokenizerFast

    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=EOS,
        pad_token=FIM_PAD,
        additional_special_tokens=[FIM_PREFIX, FIM_MIDDLE, FIM_SUFFIX],
        model_max_length=model_max_length,
    )
    fast.save_pretrained(str(directory))


def _byte_decoder() -> dict[str, int]:
    """Inverse of GPT-2's bytes_to_unicode: byte-level BPE symbols back to raw bytes."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


def token_bytes(tok: Tokenizer) -> list[bytes]:
    """Raw bytes of every token id (special tokens map to b""), for streaming stop checks."""
    vocab = tok.get_vocab(with_added_tokens=True)
    table = [b""] * (max(vocab.values()) + 1)
    special = {t.content for t in tok.get_added_tokens_decoder().values() if t.special}
    byte_level = isinstance(tok.pre_tokenizer, pre_tokenizers.ByteLevel) or "ByteLevel" in str(tok.decoder)
    dec = _byte_decoder()
    for piece, i in vocab.items():
        if piece in special:
            continue
        if byte_level and all(ch in dec for ch in piece):
            table[i] = bytes(dec[ch] for ch in piece)
        elif len(piece) == 6 and piece.startswith("<0x") and piece.endswith(">"):  # SentencePiece byte fallback
            table[i] = bytes([int(piece[3:5], 16)])
        elif "\u2581" in piece:  # SentencePiece marks spaces with U+2581; decoding one token would drop it
            table[i] = piece.replace("\u2581", " ").encode("utf-8")
        else:
            table[i] = tok.decode([i], skip_special_tokens=False).encode("utf-8")
    return table
