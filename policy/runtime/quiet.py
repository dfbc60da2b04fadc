"""The libraries' own chatter off in rltab's processes: transformers' and huggingface_hub's
progress bars and advisory warnings would tear rltab's bars on a terminal and fill updater.log
(e.g. a FutureWarning from transformers on every LoRA wrap). Set before they are imported."""

from __future__ import annotations

import os
import warnings

QUIET_ENV = {
    "TRANSFORMERS_VERBOSITY": "error",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TOKENIZERS_PARALLELISM": "false",  # also stops its fork warning
}


def quiet() -> None:
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    for module in (r"transformers(\..*)?", r"peft(\..*)?", r"torch\.onnx(\..*)?"):
        warnings.filterwarnings("ignore", category=FutureWarning, module=module)
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=module)
        warnings.filterwarnings("ignore", category=UserWarning, module=module)
