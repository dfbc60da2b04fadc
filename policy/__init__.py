"""rltab.policy: the code model, its ONNX engine, and (later) the learning updater.

Completion path: fim.build_prompt -> engine.Engine.generate.
Model files: model_store (starter model, int8 ONNX cache).
"""

import os as _os

# Before any module here loads onnxruntime (offline.py says why; the CLI seals the whole process).
_os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
