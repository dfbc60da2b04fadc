"""A model's fill-in-the-middle tokens: which special tokens mark prefix, suffix and middle, in
which order, what ends a completion, and where a model directory says so (meta.json "fim")."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import tokenizer as T
from .checkpoint import read_meta


@dataclass(frozen=True)
class FimTemplate:
    """The special tokens of one model family; `spm` picks suffix-first order."""

    prefix: str | None = T.FIM_PREFIX
    suffix: str | None = T.FIM_SUFFIX
    middle: str | None = T.FIM_MIDDLE
    eos: str = T.EOS
    spm: bool = True
    serve_fim: bool = True  # False: this model completes better left-to-right (measured), so serve that
    bos: str | None = None  # put first in every prompt (Llama-style checkpoints expect it)
    stops: tuple[str, ...] = ()  # more tokens that end a completion (CodeLlama's <EOT>, StarCoder's <file_sep>)

    @property
    def has_fim(self) -> bool:
        return bool(self.prefix and self.suffix and self.middle)

    @property
    def repo_tokens(self) -> tuple[str, str] | None:
        """(repository-name token, file-separator token) of families trained on whole
        repositories (Qwen2.5-Coder, StarCoder2), found among the family's stop tokens."""
        for repo, sep in (("<|repo_name|>", "<|file_sep|>"), ("<repo_name>", "<file_sep>")):
            if sep in self.stops and repo in self.stops:  # both in the vocabulary
                return repo, sep
        return None

    @property
    def stop_tokens(self) -> set[str]:
        """Tokens that end a completion: end of text, the FIM markers, and the family's extras."""
        return {t for t in (self.eos, self.prefix, self.suffix, self.middle, *self.stops) if t}


RLTAB_TEMPLATE = FimTemplate()


def fim_template(model_path: Path) -> FimTemplate:
    """The model's FIM tokens (meta.json "fim"), and whether to serve FIM prompts at all
    ("serve_fim": set from measured exact match, FIM vs left-to-right)."""
    meta = read_meta(model_path)
    fim = dict(meta.get("fim") or {})
    if "serve_fim" in meta:
        fim["serve_fim"] = bool(meta["serve_fim"])
    if "stops" in fim:
        fim["stops"] = tuple(fim["stops"])
    return FimTemplate(**fim) if fim else RLTAB_TEMPLATE


def stop_token_ids(tok, template: FimTemplate) -> list[int]:
    """Ids that end a completion: the template's stop tokens and rltab's own special tokens."""
    names = template.stop_tokens | set(T.SPECIAL_TOKENS)
    return sorted(i for t, i in tok.get_vocab(with_added_tokens=True).items() if t in names)
