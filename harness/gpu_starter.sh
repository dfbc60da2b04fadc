#!/usr/bin/env bash
# The starter's training on the lent GPU machine (issue 27), as one `run` of the device tool:
#   run(command="bash harness/gpu_starter.sh", carry=[".whl"], timeout_s=570)
# rltab is laid out as packages from the working tree (nothing is installed there), the two
# wheels its pipeline lacks there come from .whl/ (datasketch, detect-secrets: pip download them
# here, README "Training the starter"), then pretraining/gpu_run.py runs; $OUT gets the weights
# (files of at most 15 MB), and run.json, the log and the small files in one archive: at most 8
# files come back. INIT=DIR continues from a model directory carried along; TINY=1 is the dry run
# (PYTHON=.venv/bin/python here, where the system Python has no torch).
set -euo pipefail
OUT=${OUT:-/tmp/rltab-gpu-out}
mkdir -p "$OUT" /tmp/rltab-pkg/rltab
"${PYTHON:=python3}" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/rltab-site .whl/*.whl
for d in server policy feedback harness; do ln -sfn "$PWD/$d" "/tmp/rltab-pkg/rltab/$d"; done
export PYTHONPATH=/tmp/rltab-pkg:/tmp/rltab-site PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=true
run=/tmp/rltab-gpu-run
rm -rf "$run"
"$PYTHON" -m rltab.policy.pretraining.gpu_run --out "$run" ${INIT:+--init "$INIT"} ${TINY:+--tiny} \
  ${MINUTES:+--minutes "$MINUTES"} 2>&1 | tee "$run.log"
cp "$run"/model/*.safetensors "$OUT"/
tar -czf "$OUT/run.tgz" -C "$run" run.json $(cd "$run" && ls model | grep -v safetensors | sed 's#^#model/#') -C /tmp rltab-gpu-run.log
ls -la "$OUT"
