"""Versions as LoRA adapters over a shared base, applied at run time.

A base is a full model directory, exported to int8 ONNX once with optional LoRA inputs
(export.py). A version learnt over it is a small directory: meta.json (its "base" and "lora"
settings), adapter.safetensors (the LoRA weights, to resume training from) and
adapter.onnx_adapter (the same weights, B scaled by alpha / r, in onnxruntime's adapter format,
named after the graph's LoRA inputs). Publishing an update writes these two files; nothing is
merged or re-exported.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .checkpoint import load_torch, read_meta
from .families import family
from .formats import ADAPTER_ONNX, ADAPTER_WEIGHTS
from .home import base_dir

_PEFT_PREFIX = "base_model.model."


def with_lora(base, r: int, alpha: int, seed: int = 0):
    """`base` wrapped by peft with a fresh LoRA (B = 0: the same function as `base`)."""
    from peft import LoraConfig, get_peft_model

    fam = family(base.config.model_type)
    torch.manual_seed(seed)
    return get_peft_model(
        base,
        LoraConfig(
            r=r,
            lora_alpha=alpha,
            lora_dropout=0.0,
            target_modules=list(fam.lora_targets),
            bias="none",
            fan_in_fan_out=fam.fan_in_fan_out,
        ),
    )


def lora_settings(model_path: Path) -> dict | None:
    """{"r", "alpha"} of an adapter version, None for a full model."""
    return read_meta(model_path).get("lora")


def load_into(peft_model, model_path: Path) -> None:
    """Set `peft_model`'s LoRA weights to those of the adapter version at `model_path`."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    set_peft_model_state_dict(peft_model, load_file(str(Path(model_path) / ADAPTER_WEIGHTS)))


def save(peft_model, out_dir: Path, r: int, alpha: int) -> int:
    """Write both adapter files; returns their size in bytes."""
    import onnxruntime as ort
    from peft import get_peft_model_state_dict
    from safetensors.torch import save_file

    state = {k: v.detach().float().contiguous() for k, v in get_peft_model_state_dict(peft_model).items()}
    save_file(state, str(out_dir / ADAPTER_WEIGHTS))
    scale = alpha / r
    params = {}
    for key, w in state.items():  # base_model.model.<module>.lora_A.weight -> <module>.lora_A
        name = key.removeprefix(_PEFT_PREFIX).removesuffix(".weight")
        params[name] = ort.OrtValue.ortvalue_from_numpy((w * scale if name.endswith("lora_B") else w).numpy())
    fmt = ort.AdapterFormat()
    fmt.set_adapter_version(1)
    fmt.set_model_version(1)
    fmt.set_parameters(params)
    fmt.export_adapter(str(out_dir / ADAPTER_ONNX))
    return sum((out_dir / f).stat().st_size for f in (ADAPTER_WEIGHTS, ADAPTER_ONNX))


def policy(home: Path, model_path: Path):
    """The torch model a version serves: its base with its adapter (peft), or the full model."""
    lora = lora_settings(model_path)
    if lora is None:
        return load_torch(model_path)
    model = with_lora(load_torch(base_dir(home, model_path)), lora["r"], lora["alpha"])
    load_into(model, model_path)
    return model.eval()
