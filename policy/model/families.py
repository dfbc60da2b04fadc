"""The model families rltab can serve and train: what differs between them is named here, once.

Pure (no torch): the importer, the exporter and the updater all read this table.
"""

from __future__ import annotations

from dataclasses import dataclass

from .fim import FimTemplate


@dataclass(frozen=True)
class Family:
    model_type: str  # transformers' config.model_type
    lora_targets: tuple[str, ...]  # module names peft wraps with LoRA
    fan_in_fan_out: bool = False  # GPT-2 stores its projections as Conv1D ([in, out] weights)
    examples: str = ""


_LLAMA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
FAMILIES = {
    f.model_type: f
    for f in (
        Family("llama", _LLAMA_TARGETS, examples="CodeLlama, DeepSeek-Coder 1.3B/6.7B, SmolLM, the rltab starter"),
        Family("qwen2", _LLAMA_TARGETS, examples="Qwen2.5-Coder 0.5B/1.5B/3B"),
        Family("mistral", _LLAMA_TARGETS, examples="Codestral-style Mistral checkpoints"),
        Family("starcoder2", ("q_proj", "k_proj", "v_proj", "o_proj", "c_fc", "c_proj"), examples="StarCoder2 3B/7B"),
        Family(
            "gpt2",
            ("c_attn", "c_proj", "c_fc"),
            fan_in_fan_out=True,
            examples="GPT-2, SantaCoder-style GPT-2 code models",
        ),
    )
}


def family(model_type: str) -> Family:
    try:
        return FAMILIES[model_type]
    except KeyError:
        raise ValueError(f"unsupported architecture {model_type!r} (supported: {', '.join(FAMILIES)})") from None


# FIM special tokens as each family's tokenizer names them: (prefix, suffix, middle, extra stops, bos).
_FIM_STYLES = (
    (
        "qwen",
        ("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"),
        ("<|fim_pad|>", "<|file_sep|>", "<|repo_name|>"),
        None,
    ),
    (
        "starcoder",
        ("<fim_prefix>", "<fim_suffix>", "<fim_middle>"),
        ("<fim_pad>", "<file_sep>", "<filename>", "<repo_name>"),
        None,
    ),
    ("deepseek", ("<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>"), (), "<｜begin▁of▁sentence｜>"),
    ("codellama", ("▁<PRE>", "▁<SUF>", "▁<MID>"), ("▁<EOT>",), "<s>"),
)


def detect_fim(tokens: set[str], eos: str | None, bos: str | None = None) -> tuple[str, FimTemplate]:
    """(style name, template) from a tokenizer's vocabulary. Imported models get prefix-suffix-
    middle order, the one these families are trained with; none found: plain left-to-right."""
    eos = (
        eos
        if eos in tokens
        else next((t for t in ("<|endoftext|>", "</s>", "<｜end▁of▁sentence｜>") if t in tokens), None)
    )
    if eos is None:
        raise ValueError("the tokenizer has no end-of-text token (eos_token in tokenizer_config.json)")
    for name, (pre, suf, mid), extra, family_bos in _FIM_STYLES:
        if {pre, suf, mid} <= tokens:
            first = bos if bos in tokens else (family_bos if family_bos in tokens else None)
            return name, FimTemplate(
                prefix=pre,
                suffix=suf,
                middle=mid,
                eos=eos,
                spm=False,
                serve_fim=True,
                bos=first,
                stops=tuple(t for t in extra if t in tokens),
            )
    first = bos if bos in tokens and bos != eos else None
    return "none", FimTemplate(prefix=None, suffix=None, middle=None, eos=eos, spm=False, serve_fim=False, bos=first)
