"""One int8 ONNX file in onnxruntime, run with the KV cache bound in place.

Every run goes through an IO binding: each cache buffer (kv.py) is bound as both the graph's input
and its output, so onnxruntime's attention writes the run's rows into it and a step copies nothing
(issue 30). A binding is made again only when the buffers change. An adapter's LoRA tensors are
bound as the graph's LoRA inputs (onnxruntime applies RunOptions.add_active_adapter only to runs
without an IO binding), so adapter versions share their base's session and weights.
"""

from __future__ import annotations

import copy
import threading
from pathlib import Path

import numpy as np

from rltab.policy.model.formats import LOGIT_ROWS

from .kv import KVCache


def _run_options():
    """Every run gives back at its end what onnxruntime's arena grew by during it: runs have their
    own shapes, and the arena kept growing over a day of typing (tests/test_soak.py: 7.4 MB after
    warm-up against a 4 MB bound; 3.0 with this). It cost a 0.5B model's 512-token prefill 6 %
    (940 -> 1,000 ms); turning the arena off cost 25 %. `gpu_graph_id` -1 says no graph capture:
    onnxruntime's Python side otherwise looks the entry up on every run and fails (an exception
    each step)."""
    import onnxruntime as ort

    options = ort.RunOptions()
    options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
    options.add_run_config_entry("gpu_graph_id", "-1")
    return options


class Runner:
    def __init__(self, onnx_path: str | Path, threads: int):
        import onnxruntime as ort

        ort.disable_telemetry_events()  # besides ORT_DISABLE_TELEMETRY (offline.py): nothing leaves the machine
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Every request has its own shapes (prompt and cache lengths): a memory pattern planned per
        # shape is never reused, and its plans and arena blocks piled up over a day of typing
        # (bench/soak.py: +0.5 MB per 1,000 messages with it, +0.1 without, same latency).
        opts.enable_mem_pattern = False
        opts.log_severity_level = 3  # the LoRA inputs' zero defaults are meant to be overridable
        self.session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
        self.run_options = _run_options()
        self.past_names = [i.name for i in self.session.get_inputs() if i.name.startswith("past_")]
        self.present_names = [n.replace("past_", "present_") for n in self.past_names]
        shape = next(i.shape for i in self.session.get_inputs() if i.name == "past_value_0")
        self.kv_heads, self.head_dim = int(shape[1]), int(shape[3])
        self.vocab = int(self.session.get_outputs()[0].shape[2])
        self._adapter_inputs: dict[str, object] = {}  # an adapter's LoRA inputs (OrtValues)
        self._bound = threading.local()  # this thread's IO binding and the cache buffers bound in it

    def with_adapter(self, adapter_path: str | Path) -> Runner:
        """The same session with a LoRA adapter file's tensors (onnxruntime's adapter format) bound
        to every run."""
        import onnxruntime as ort

        other = copy.copy(self)
        other._adapter_inputs = dict(ort.AdapterFormat.read_adapter(str(adapter_path)).get_parameters())
        other._bound = threading.local()
        return other

    def empty_cache(self, batch: int = 1) -> KVCache:
        """No tokens yet, in this graph's cache layout."""
        return KVCache.empty(len(self.past_names), self.kv_heads, self.head_dim, batch)

    def run(self, ids: np.ndarray, past: KVCache, max_positions: int) -> tuple[np.ndarray, KVCache]:
        """The logits [B, R, V] after each of the last R tokens of `ids` [B, T], and the cache:
        `past`'s buffers (or larger ones) with the rows of `ids` written in place."""
        t = ids.shape[1]
        past = past.room_for(t, max_positions)
        total = past.length + t
        bound = self._binding(past.buffers)
        bound.set("input_ids", ids)
        bound.inputs["seqlens_k"].fill(total - 1)
        bound.inputs["total_sequence_length"].fill(total)
        logits = bound.output((past.batch, min(t, LOGIT_ROWS), self.vocab))
        self.session.run_with_iobinding(bound.binding, self.run_options)
        return logits.copy(), past.extended(t)  # the next run writes into the bound one

    def _binding(self, buffers: tuple[np.ndarray, ...]) -> _Bound:
        """This thread's IO binding with `buffers` bound as both the cache inputs and outputs and
        the adapter's LoRA inputs; made again only when the buffers change (binding 50 tensors
        each step cost a starter step a fifth of its time)."""
        bound = getattr(self._bound, "current", None)
        if bound is None or bound.buffers is not buffers:
            binding = self.session.io_binding()
            for name, present, buf in zip(self.past_names, self.present_names, buffers):
                binding.bind_input(name, "cpu", 0, np.float32, buf.shape, buf.ctypes.data)
                binding.bind_output(present, "cpu", 0, np.float32, buf.shape, buf.ctypes.data)
            for name, value in self._adapter_inputs.items():
                binding.bind_ortvalue_input(name, value)
            bound = self._bound.current = _Bound(binding, buffers)  # holding the buffers keeps the memory bound
            batch = buffers[0].shape[0]
            bound.set("seqlens_k", np.zeros(batch, np.int32))
            bound.set("total_sequence_length", np.zeros((), np.int32))
        return bound


class _Bound:
    """An IO binding and the arrays bound in it by address: a run writes its inputs into them and
    onnxruntime its logits, so a step binds nothing new unless a shape changes (each binding made
    a tensor and cost a starter step ~5 %)."""

    def __init__(self, binding, buffers: tuple[np.ndarray, ...]):
        self.binding, self.buffers = binding, buffers
        self.inputs: dict[str, np.ndarray] = {}
        self.logits = np.empty(0, np.float32)

    def set(self, name: str, value: np.ndarray) -> None:
        held = self.inputs.get(name)
        if held is not None and held.shape == value.shape:
            held[...] = value
            return
        held = self.inputs[name] = np.array(value, order="C")
        self.binding.bind_input(name, "cpu", 0, held.dtype, held.shape, held.ctypes.data)

    def output(self, shape: tuple[int, ...]) -> np.ndarray:
        if self.logits.shape != shape:
            self.logits = np.empty(shape, np.float32)
            self.binding.bind_output("logits", "cpu", 0, np.float32, shape, self.logits.ctypes.data)
        return self.logits
