"""Export a decoder-only checkpoint (families.py) to ONNX with an explicit KV cache, then int8-quantize it.

The graph: inputs `input_ids` [B, T], `seqlens_k` [B] and `total_sequence_length` (int32: the
positions filled after this run, less one per row, and in all), and per layer the cache as
buffers `past_key_i` / `past_value_i` [B, Hkv, C, D] of some capacity C. Outputs: `logits` [B,
R, V] for the last R = min(T, LOGIT_ROWS) positions only (the last one is the next token's;
prompt lookup checks its guesses with the others) and `present_key_i` / `present_value_i`: the
same buffers with this run's rows written at total-T... Attention, rotary positions and the
cache write are onnxruntime's fused GroupQueryAttention; the engine binds each buffer as both
input and output (policy/inference/runner.py), so a step writes its rows in place and copies
nothing. Graphs that returned the cache copied it every step (issue 30).

Every LoRA target projection (families.py) also adds `x @ A.T @ B.T`, where `<module>.lora_A`
[r, in] and `<module>.lora_B` [out, r] are optional inputs that default to zeros: the base model
as it is, or, fed by an onnxruntime LoRA adapter file (RunOptions.add_active_adapter), any
adapter learnt over it. The base is exported once; an update writes only its adapter.
The forward below is written out by hand (rather than tracing transformers' cache classes) so the
graph stays small and stable across transformers versions; a parity test pins it to transformers.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch
from torch import nn
from torch.onnx import symbolic_helper

from .checkpoint import load_torch
from .families import FAMILIES, family

# Where the built files go and how the cache names them live in formats (torch-free: serving
# needs them without this module).
from .formats import (  # noqa: F401
    CACHE_TOKEN_AXIS,
    EXPORT_FORMAT,
    LOGIT_ROWS,
    LORA_ONNX,
    ONNX_FORMAT_FILE,
    PLAIN_ONNX,
    weights_digest,
)
from .quantize import quantize_int8

SUPPORTED = tuple(FAMILIES)

"""The base graph without LoRA inputs (what serves the base: every LoRA term is two MatMuls and
an Add per projection, 3x the decode time of the 5 M starter), and the one that takes adapters."""


class _Attention(torch.autograd.Function):
    """One layer's causal attention over its cache, in the graph onnxruntime's fused operator
    (com.microsoft GroupQueryAttention); eager torch here for parity tests and tracing.

    q [B, T, H*D], k, v [B, T, Hkv*D] (unrotated); key_buf, value_buf [B, Hkv, C, D]: the cache,
    its first `total - T` positions filled. The T new positions are rotated (rotary families, `cos`
    and `sin` [positions, D/2]) and written into the buffers at total-T.., which are returned as
    they are then; the engine binds each buffer as both input and output, so onnxruntime writes
    the new rows in place and nothing is copied per step (issue 30). Query i attends to cache
    positions 0..total-T+i, scaled by 1/sqrt(D); grouped-query heads share their key head."""

    @staticmethod
    def forward(ctx, q, k, v, key_buf, value_buf, seqlens_k, total, cos, sin, n_heads: int, n_kv: int):
        b, t, _ = q.shape
        d = key_buf.shape[-1]
        start = int(total) - t
        q, k, v = (x.view(b, t, -1, d).transpose(1, 2) for x in (q, k, v))
        if cos is not None:
            pos = torch.arange(start, start + t)
            c, s = cos[pos].repeat(1, 2), sin[pos].repeat(1, 2)
            q, k = (x * c + torch.cat([-x[..., d // 2 :], x[..., : d // 2]], dim=-1) * s for x in (q, k))
        key_buf, value_buf = key_buf.clone(), value_buf.clone()
        key_buf[:, :, start : start + t] = k
        value_buf[:, :, start : start + t] = v
        rep = n_heads // n_kv
        keys = key_buf[:, :, : start + t].repeat_interleave(rep, dim=1)
        values = value_buf[:, :, : start + t].repeat_interleave(rep, dim=1)
        scores = torch.matmul(q, keys.transpose(2, 3)) * d**-0.5
        q_pos = torch.arange(t)[:, None] + start
        scores = scores.masked_fill(torch.arange(start + t)[None, :] > q_pos, float("-inf"))
        o = torch.matmul(torch.softmax(scores, dim=-1), values)
        return o.transpose(1, 2).reshape(b, t, n_heads * d), key_buf, value_buf

    @staticmethod
    def symbolic(g, q, k, v, key_buf, value_buf, seqlens_k, total, cos, sin, n_heads, n_kv):
        rotary = not symbolic_helper._is_none(cos)
        inputs = [q, k, v, key_buf, value_buf, seqlens_k, total] + ([cos, sin] if rotary else [])
        return g.op(
            "com.microsoft::GroupQueryAttention",
            *inputs,
            num_heads_i=n_heads,
            kv_num_heads_i=n_kv,
            do_rotary_i=int(rotary),
            rotary_interleaved_i=0,
            outputs=3,
        )


def _rms(weight, eps: float, x):
    """RMSNorm as the Llama family computes it."""
    return weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


class _SkipRMSNorm(torch.autograd.Function):
    """(RMSNorm(h + delta), h + delta): the residual add and the next norm in one operator in the
    graph (com.microsoft SkipSimplifiedLayerNormalization, whose fourth output is the sum);
    onnxruntime does not fuse them itself where the sum is read again (every residual is)."""

    @staticmethod
    def forward(ctx, h, delta, weight, eps):
        h = h + delta
        return _rms(weight, eps, h), h

    @staticmethod
    def symbolic(g, h, delta, weight, eps):
        out = g.op("com.microsoft::SkipSimplifiedLayerNormalization", h, delta, weight, epsilon_f=eps, outputs=4)
        return out[0], out[3]


def _add_lora(module, inputs, out):
    """Forward hook: the projection's output plus its LoRA term, when the forward feeds one."""
    if module.rltab_lora is None:
        return out
    a, b = module.rltab_lora
    return out + torch.matmul(torch.matmul(inputs[0], a.t()), b.t())


def _pack(modules) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The [in, sum of outs] weight and the bias (or None) of linear projections of one input."""
    weight = torch.cat([m.weight.detach() for m in modules]).t().contiguous()
    if all(m.bias is None for m in modules):
        return weight, None
    return weight, torch.cat([m.bias.detach() if m.bias is not None else torch.zeros(m.out_features) for m in modules])


def _projected(x, modules, packed):
    """x through `modules` as one matrix product (`packed`: _pack's), each output with its LoRA
    term where the forward feeds adapters (those are per projection, as peft trains them)."""
    weight, bias = packed
    y = torch.matmul(x, weight)
    if bias is not None:
        y = y + bias
    lora = [getattr(m, "rltab_lora", None) for m in modules]
    if all(t is not None for t in lora):
        y = y + torch.cat([torch.matmul(torch.matmul(x, a.t()), b.t()) for a, b in lora], dim=-1)
    return y.split([m.out_features for m in modules], dim=-1)


class KVCacheLM(nn.Module):
    """A decoder-only LM (Llama/Qwen2/Mistral, StarCoder2, GPT-2) with explicit past/present
    tensors and last-token logits. Rotary families share one path; GPT-2 adds learned positions
    and splits its fused QKV projection."""

    def __init__(self, hf_model, max_positions: int | None = None):
        super().__init__()
        cfg = hf_model.config
        if cfg.model_type not in SUPPORTED:
            raise ValueError(f"unsupported architecture {cfg.model_type!r} (supported: {', '.join(SUPPORTED)})")
        self.cfg = cfg
        # The LoRA path: a hook on each target projection adds the adapter fed to this forward.
        self.lora_targets = lora_targets(hf_model)
        for _, module in self.lora_targets:
            if not hasattr(module, "rltab_lora"):
                module.rltab_lora = None  # type: ignore[assignment]
                module.register_forward_hook(_add_lora)
        self.gpt2 = cfg.model_type == "gpt2"
        base = hf_model.transformer if self.gpt2 else hf_model.model
        self.n_heads = cfg.num_attention_heads
        self.n_kv = getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads
        self.head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        # A plain [H, V] matrix (not a transposed view of the embedding) so that quantization
        # sees the LM head as a constant MatMul weight.
        self.register_buffer("lm_head_t", hf_model.lm_head.weight.detach().t().contiguous(), persistent=False)
        if self.gpt2:
            self.embed, self.wpe, self.layers, self.norm = base.wte, base.wpe, base.h, base.ln_f
            return
        self.embed = base.embed_tokens
        self.layers = base.layers
        self.norm = base.norm
        # Projections that read the same input run as one matrix product: one operator where
        # there were three (q, k, v) and two (gate, up) per layer.
        self.packed = []
        for layer in self.layers:
            attn, mlp = layer.self_attn, layer.mlp
            gate_up = _pack((mlp.gate_proj, mlp.up_proj)) if hasattr(mlp, "gate_proj") else None
            self.packed.append((_pack((attn.q_proj, attn.k_proj, attn.v_proj)), gate_up))
        n = max_positions or cfg.max_position_embeddings
        rot = base.rotary_emb
        pos = torch.arange(n, dtype=torch.float32)
        freqs = torch.outer(pos, rot.inv_freq.float())
        scale = getattr(rot, "attention_scaling", 1.0)
        self.register_buffer("cos", (freqs.cos() * scale), persistent=False)  # [positions, D/2]
        self.register_buffer("sin", (freqs.sin() * scale), persistent=False)

    def _norm(self, norm, x):
        return norm(x) if isinstance(norm, nn.LayerNorm) else _rms(norm.weight, norm.variance_epsilon, x)

    def _add_norm(self, norm, h, delta):
        """(norm(h + delta), h + delta): a residual step and the norm after it (delta None: h's norm)."""
        if delta is None:
            return self._norm(norm, h), h
        if isinstance(norm, nn.LayerNorm):
            h = h + delta
            return norm(h), h
        return _SkipRMSNorm.apply(h, delta, norm.weight, float(norm.variance_epsilon))

    def _qkv(self, i, layer, x):
        """Queries, keys and values [B, T, heads * D], before rotation."""
        if self.gpt2:
            return layer.attn.c_attn(x).split(self.n_heads * self.head_dim, dim=2)
        attn = layer.self_attn
        return _projected(x, (attn.q_proj, attn.k_proj, attn.v_proj), self.packed[i][0])

    def _mlp(self, i, layer, x):
        mlp = layer.mlp
        if hasattr(mlp, "gate_proj"):  # SwiGLU (Llama family)
            gate, up = _projected(x, (mlp.gate_proj, mlp.up_proj), self.packed[i][1])
            return mlp.down_proj(nn.functional.silu(gate) * up)
        return mlp.c_proj(mlp.act(mlp.c_fc(x)))  # c_fc -> activation -> c_proj (StarCoder2, GPT-2)

    def forward(self, input_ids, seqlens_k, total, *rest):
        """seqlens_k [B] (int32): total - 1 for every row; total (int32 scalar): the positions
        filled after this run; rest: the key and value buffers of every layer, then (optionally)
        lora_A, lora_B of every target."""
        n = 2 * len(self.layers)
        cache, lora = rest[:n], rest[n:]
        for i, (_, module) in enumerate(self.lora_targets):
            module.rltab_lora = (lora[2 * i], lora[2 * i + 1]) if lora else None
        try:
            return self._forward(input_ids, seqlens_k, total, cache)
        finally:
            for _, module in self.lora_targets:
                module.rltab_lora = None

    def _forward(self, input_ids, seqlens_k, total, cache):
        t = input_ids.shape[1]
        h = self.embed(input_ids)
        if self.gpt2:
            start = total.long() - t
            h = h + self.wpe.weight[start : start + t][None]
        cos, sin = (None, None) if self.gpt2 else (self.cos, self.sin)
        presents, delta = [], None  # delta: what the last block adds to the residual stream h
        for i, layer in enumerate(self.layers):
            x, h = self._add_norm(layer.ln_1 if self.gpt2 else layer.input_layernorm, h, delta)
            q, k, v = self._qkv(i, layer, x)
            o, key, value = _Attention.apply(
                q, k, v, cache[2 * i], cache[2 * i + 1], seqlens_k, total, cos, sin, self.n_heads, self.n_kv
            )
            presents += [key, value]
            delta = layer.attn.c_proj(o) if self.gpt2 else layer.self_attn.o_proj(o)
            x, h = self._add_norm(layer.ln_2 if self.gpt2 else layer.post_attention_layernorm, h, delta)
            delta = self._mlp(i, layer, x)
        last, _ = self._add_norm(self.norm, h[:, -LOGIT_ROWS:, :], delta[:, -LOGIT_ROWS:, :])
        return (torch.matmul(last, self.lm_head_t), *presents)

    def empty_cache(self, batch: int = 1, capacity: int = 0) -> list[torch.Tensor]:
        """Zeroed key and value buffers [B, Hkv, C, D] of every layer."""
        return [torch.zeros(batch, self.n_kv, capacity, self.head_dim) for _ in range(2 * len(self.layers))]

    @staticmethod
    def positions(batch: int, total: int) -> tuple[torch.Tensor, torch.Tensor]:
        """seqlens_k and total_sequence_length for a run after which `total` positions are filled."""
        return torch.full((batch,), total - 1, dtype=torch.int32), torch.tensor(total, dtype=torch.int32)

    def run(self, ids, cache, filled: int, *lora):
        """Eager: the run of `ids` [B, T] after `filled` cached positions; (logits, *buffers)."""
        return self(ids, *self.positions(ids.shape[0], filled + ids.shape[1]), *cache, *lora)

    def io_names(self):
        """The cache buffers' input names and the outputs they are bound to again."""
        cache, present = [], []
        for i in range(len(self.layers)):
            cache += [f"past_key_{i}", f"past_value_{i}"]
            present += [f"present_key_{i}", f"present_value_{i}"]
        return cache, present


def lora_targets(hf_model) -> list[tuple[str, nn.Module]]:
    """(name, module) of every projection LoRA adapts, named as in the transformers model
    (`model.layers.0.self_attn.q_proj`): the names of the graph's LoRA inputs."""

    targets = set(family(hf_model.config.model_type).lora_targets)
    return [(n, m) for n, m in hf_model.named_modules() if n.split(".")[-1] in targets and hasattr(m, "weight")]


def lora_shapes(hf_model, rank: int) -> dict[str, tuple[int, int]]:
    """Shape of each LoRA input at `rank`: A [r, in], B [out, r] (GPT-2's Conv1D stores [in, out])."""
    out = {}
    for name, m in lora_targets(hf_model):
        w = tuple(int(d) for d in m.weight.shape)  # type: ignore[union-attr]
        d_in, d_out = (w[0], w[1]) if type(m).__name__ == "Conv1D" else (w[1], w[0])
        out[f"{name}.lora_A"], out[f"{name}.lora_B"] = (rank, d_in), (d_out, rank)
    return out


def export_fp32(hf_model, out_path: str | Path, max_positions: int | None = None, lora: bool = True) -> Path:
    """Trace `hf_model` (fp32) into an ONNX file with the KV-cache interface above (and, with
    `lora`, the LoRA inputs, still without their zero defaults: see quantize.add_lora_defaults)."""
    out_path = Path(out_path)
    hf_model = hf_model.float().eval()
    wrapper = KVCacheLM(hf_model, max_positions).eval()
    cache_names, present_names = wrapper.io_names()
    ids = torch.ones(1, 3, dtype=torch.long)
    cache = [*wrapper.positions(1, 2 + 3), *wrapper.empty_cache(capacity=8)]  # 2 filled, 3 run
    shapes = lora_shapes(hf_model, rank=2) if lora else {}
    dyn = {"input_ids": {0: "batch", 1: "seq"}, "seqlens_k": {0: "batch"}}
    dyn.update({n: {0: "batch", CACHE_TOKEN_AXIS: "capacity"} for n in cache_names + present_names})
    dyn.update({n: {0: "rank"} if n.endswith("lora_A") else {1: "rank"} for n in shapes})
    dyn["logits"] = {0: "batch", 1: "rows"}
    with torch.no_grad():
        torch.onnx.export(
            wrapper,
            (ids, *cache, *(torch.zeros(s) for s in shapes.values())),
            str(out_path),
            input_names=["input_ids", "seqlens_k", "total_sequence_length", *cache_names, *shapes],
            output_names=["logits", *present_names],
            dynamic_axes=dyn,
            opset_version=17,
            dynamo=False,
        )
    return out_path


def without_lora(model) -> None:
    """Remove the LoRA terms from an exported graph, in place: each `base + x @ A.T @ B.T` Add
    becomes `base`, the nodes that only computed LoRA terms go, and so do the LoRA inputs."""
    from onnx import helper

    names = {i.name for i in model.graph.input if i.name.endswith((".lora_A", ".lora_B"))}
    tainted, keep = set(names), []
    rename: dict[str, str] = {}
    for node in model.graph.node:  # topologically sorted
        ins = [rename.get(i, i) for i in node.input]
        lora = [i in tainted for i in ins]
        if node.op_type == "Add" and sum(lora) == 1:
            rename[node.output[0]] = ins[lora.index(False)]  # the junction: keep the base tensor
        elif any(lora):
            tainted.update(node.output)
        else:
            del node.input[:]
            node.input.extend(ins)
            keep.append(node)
    for out in model.graph.output:
        if out.name in rename:
            keep.append(helper.make_node("Identity", [rename[out.name]], [out.name]))
    del model.graph.node[:]
    model.graph.node.extend(keep)
    inputs = [i for i in model.graph.input if i.name not in names]
    del model.graph.input[:]
    model.graph.input.extend(inputs)
    inits = [t for t in model.graph.initializer if t.name not in names]
    del model.graph.initializer[:]
    model.graph.initializer.extend(inits)


def build_onnx(model_dir: str | Path, out_dir: str | Path, max_positions: int = 2048) -> Path:
    """Export + quantize `model_dir` into `out_dir/` (atomically): the graph that takes LoRA
    adapters (LORA_ONNX) and the same graph without them (PLAIN_ONNX, returned)."""
    import onnx

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / PLAIN_ONNX
    model = load_torch(model_dir)
    max_positions = min(max_positions, getattr(model.config, "max_position_embeddings", None) or max_positions)
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        fp32 = export_fp32(model, Path(tmp) / "model.fp32.onnx", max_positions)
        int8 = quantize_int8(fp32, Path(tmp) / LORA_ONNX)
        plain = onnx.load(str(int8))
        without_lora(plain)
        onnx.save(plain, str(Path(tmp) / PLAIN_ONNX))
        (Path(tmp) / ONNX_FORMAT_FILE).write_text(str(EXPORT_FORMAT))
        os.replace(Path(tmp) / ONNX_FORMAT_FILE, out_dir / ONNX_FORMAT_FILE)
        os.replace(int8, out_dir / LORA_ONNX)
        os.replace(Path(tmp) / PLAIN_ONNX, final)  # last: its presence says both are there
    return final
