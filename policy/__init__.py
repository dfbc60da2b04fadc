"""rltab.policy: the code model and everything done with it, one subpackage per concern.

The completion path: completion/ (what kind of suggestion, the prompt, the filters) -> workspace/
(the repository in view) -> inference/ (the engine that runs the model, loaded by
inference/loading.py) -> model/ (checkpoints, tokenizers, the home's versions, the int8 graph).
The learning path: learning/ (ledger rows -> LoRA steps -> guard -> a published version), checked
by evaluation/. pretraining/ trains the shipped starter (starter/, package data). runtime/ is how
rltab's processes run (offline, quiet, progress bars).

Layers: model imports none of the others (but its importer, which measures what it imports);
inference imports model; completion and workspace import inference and model; none of these four
imports learning, evaluation or pretraining (tests/test_architecture.py).
"""

import os as _os

# Before any module here loads onnxruntime (runtime/offline.py says why; the CLI seals the whole process).
_os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
