"""Export a decoder-only checkpoint (families.py) to ONNX with an explicit KV cache, then int8-quantize it.

The graph: inputs `input_ids` [B, T], and per layer the cache in two parts: `past_key_i` [B,
Hkv, D, P] (keys transposed) / `past_value_i` [B, Hkv, P, D], read where they lie and never
copied, and `recent_key_i` / `recent_value_i` (S tokens, same layouts), the few tokens run since.
Outputs: `logits` [B, R, V] for the last R = min(T, LOGIT_ROWS) positions only (the last one is
the next token's; prompt lookup checks its guesses with the others) and `present_key_i` [B, Hkv,
D, S+T] / `present_value_i` [B, Hkv, S+T, D], the recent part with this run's tokens. Positions are P+S..P+S+T-1. A graph that returned the whole cache
copied all of it at every decoding step (a Concat of P+T rows per layer): most of a step at a
1,000-token prompt for the starter (issue 30). policy/inference/kv.py keeps the two parts.
Attention reads a grouped-query model's shared keys and values in place too (no repeat per head).

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

from .checkpoint import load_torch
from .families import FAMILIES, family

# Where the built files go and how the cache names them live in formats (torch-free: serving
# needs them without this module).
from .formats import (  # noqa: F401
    EXPORT_FORMAT,
    KEY_TOKEN_AXIS,
    LOGIT_ROWS,
    LORA_ONNX,
    ONNX_FORMAT_FILE,
    PLAIN_ONNX,
    VALUE_TOKEN_AXIS,
    weights_digest,
)
from .quantize import quantize_int8

SUPPORTED = tuple(FAMILIES)

"""The base graph without LoRA inputs (what serves the base: every LoRA term is two MatMuls and
an Add per projection, 3x the decode time of the 5 M starter), and the one that takes adapters."""


class _Rotary(torch.autograd.Function):
    """Rotary position embedding of x [B, T, heads * D] (rotate-half form) for positions start..start+T-1:
    eager torch for parity tests and tracing, and in the graph onnxruntime's fused operator
    (com.microsoft RotaryEmbedding): one operator where the traced form was seven, per query and
    key of every layer (issue 30: a starter step is per-operator overhead)."""

    @staticmethod
    def forward(ctx, x, start, cos, sin):  # cos, sin: [positions, D/2]
        b, t, hd = x.shape
        half, start = cos.shape[1], int(start)
        c = cos[start : start + t].repeat(1, 2)[None, :, None]
        s = sin[start : start + t].repeat(1, 2)[None, :, None]
        xh = x.view(b, t, hd // (2 * half), 2 * half)
        rot = torch.cat([-xh[..., half:], xh[..., :half]], dim=-1)
        return (xh * c + rot * s).view(b, t, hd)

    @staticmethod
    def symbolic(g, x, start, cos, sin):
        return g.op("com.microsoft::RotaryEmbedding", x, start, cos, sin, interleaved_i=0)


class _SkipRMSNorm(torch.autograd.Function):
    """(RMSNorm(h + delta), h + delta): the residual add and the next norm in one operator in the
    graph (com.microsoft SkipSimplifiedLayerNormalization, whose fourth output is the sum);
    onnxruntime does not fuse them itself where the sum is read again (every residual is)."""

    @staticmethod
    def forward(ctx, h, delta, weight, eps):
        h = h + delta
        return weight * (h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps)), h

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
        n = max_positions or cfg.max_position_embeddings
        rot = base.rotary_emb
        pos = torch.arange(n, dtype=torch.float32)
        freqs = torch.outer(pos, rot.inv_freq.float())
        scale = getattr(rot, "attention_scaling", 1.0)
        self.register_buffer("cos", (freqs.cos() * scale), persistent=False)  # [positions, D/2]
        self.register_buffer("sin", (freqs.sin() * scale), persistent=False)

    @staticmethod
    def _rms(norm, x):
        var = x.pow(2).mean(-1, keepdim=True)
        return norm.weight * (x * torch.rsqrt(var + norm.variance_epsilon))

    def _norm(self, norm, x):
        return norm(x) if isinstance(norm, nn.LayerNorm) else self._rms(norm, x)

    def _add_norm(self, norm, h, delta):
        """(norm(h + delta), h + delta): a residual step and the norm after it (delta None: h's norm)."""
        if delta is None:
            return self._norm(norm, h), h
        if isinstance(norm, nn.LayerNorm):
            h = h + delta
            return norm(h), h
        return _SkipRMSNorm.apply(h, delta, norm.weight, float(norm.variance_epsilon))

    def _qkv(self, layer, x, b, t, start):
        """Queries (scaled by 1/sqrt(D)), keys and values [B, heads, T, D], rotated to their
        positions (rotary families). The scale comes before the rotation (which is linear): after
        it, onnxruntime fused it into the q.K product, which then copied the cached keys every step
        (a 1,024-token starter step 0.82 -> 1.21 ms)."""
        scale = self.head_dim**-0.5
        if self.gpt2:
            q, k, v = layer.attn.c_attn(x).split(self.n_heads * self.head_dim, dim=2)
            q = q * scale
        else:
            attn = layer.self_attn
            q = _Rotary.apply(attn.q_proj(x) * scale, start, self.cos, self.sin)
            k = _Rotary.apply(attn.k_proj(x), start, self.cos, self.sin)
            v = attn.v_proj(x)
        return (
            q.view(b, t, self.n_heads, self.head_dim).transpose(1, 2),
            k.view(b, t, self.n_kv, self.head_dim).transpose(1, 2),
            v.view(b, t, self.n_kv, self.head_dim).transpose(1, 2),
        )

    def forward(self, input_ids, *rest):
        """rest: the past key/value of every layer, the recent key/value of every layer, then
        (optionally) lora_A, lora_B of every target."""
        n = 2 * len(self.layers)
        past, recent, lora = rest[:n], rest[n : 2 * n], rest[2 * n :]
        for i, (_, module) in enumerate(self.lora_targets):
            module.rltab_lora = (lora[2 * i], lora[2 * i + 1]) if lora else None
        try:
            return self._forward(input_ids, past, recent)
        finally:
            for _, module in self.lora_targets:
                module.rltab_lora = None

    def _forward(self, input_ids, past, recent):
        b, t = input_ids.shape
        p, s = past[1].shape[2], recent[1].shape[2]  # values: [B, Hkv, L, D]
        start = p + s
        # Within the recent part and this run, query i (at s+i) may attend to keys 0..s+i; the
        # past comes before all of them.
        q_pos = torch.arange(t, device=input_ids.device)[:, None] + s
        k_pos = torch.arange(s + t, device=input_ids.device)[None, :]
        mask = torch.where(k_pos <= q_pos, 0.0, float("-inf"))
        h = self.embed(input_ids)
        if self.gpt2:
            h = h + self.wpe.weight[start : start + t][None]
        first = torch.tensor([start]) if isinstance(start, int) else start.reshape(1)  # a traced size
        presents, delta = [], None  # delta: what the last block adds to the residual stream h
        # Grouped-query attention without copying keys per head: the `rep` query heads of each
        # key head are rows of one matrix (row j*t + i: head j of the group, query i), as
        # repeat_interleave pairs them; the mask repeats for each.
        rep = self.n_heads // self.n_kv
        if rep > 1:  # (each reshape of a traced shape is several operators: none where rep is 1)
            mask = mask.repeat(rep, 1)
        for i, layer in enumerate(self.layers):
            x, h = self._add_norm(layer.ln_1 if self.gpt2 else layer.input_layernorm, h, delta)
            q, k, v = self._qkv(layer, x, b, t, first)
            # Keys are kept transposed ([B, Hkv, D, L]): q @ K is then a plain product that reads
            # them where they lie (a transposed operand was packed, i.e. copied, every step).
            k = torch.cat([recent[2 * i], k.transpose(2, 3)], dim=3)
            v = torch.cat([recent[2 * i + 1], v], dim=2)
            presents += [k, v]
            qg = q.reshape(b, self.n_kv, rep * t, self.head_dim) if rep > 1 else q
            old = torch.matmul(qg, past[2 * i])
            new = torch.matmul(qg, k) + mask
            a = torch.softmax(torch.cat([old, new], dim=-1), dim=-1)
            o = torch.matmul(a[..., :p], past[2 * i + 1]) + torch.matmul(a[..., p:], v)
            if rep > 1:
                o = o.reshape(b, self.n_heads, t, self.head_dim)
            o = o.transpose(1, 2).reshape(b, t, self.n_heads * self.head_dim)
            delta = layer.attn.c_proj(o) if self.gpt2 else layer.self_attn.o_proj(o)
            x, h = self._add_norm(layer.ln_2 if self.gpt2 else layer.post_attention_layernorm, h, delta)
            mlp = layer.mlp
            if hasattr(mlp, "gate_proj"):  # SwiGLU (Llama family)
                delta = mlp.down_proj(nn.functional.silu(mlp.gate_proj(x)) * mlp.up_proj(x))
            else:  # c_fc -> activation -> c_proj (StarCoder2, GPT-2)
                delta = mlp.c_proj(mlp.act(mlp.c_fc(x)))
        last, _ = self._add_norm(self.norm, h[:, -LOGIT_ROWS:, :], delta[:, -LOGIT_ROWS:, :])
        return (torch.matmul(last, self.lm_head_t), *presents)

    def empty_past(self, batch: int = 1):
        """An empty cache: the past part and the recent part of every layer (keys [B, Hkv, D, 0],
        values [B, Hkv, 0, D])."""
        key, value = (batch, self.n_kv, self.head_dim, 0), (batch, self.n_kv, 0, self.head_dim)
        return [torch.zeros(key if j % 2 == 0 else value) for j in range(4 * len(self.layers))]

    def io_names(self):
        past, recent, present = [], [], []
        for i in range(len(self.layers)):
            past += [f"past_key_{i}", f"past_value_{i}"]
            recent += [f"recent_key_{i}", f"recent_value_{i}"]
            present += [f"present_key_{i}", f"present_value_{i}"]
        return past, recent, present


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
    past_names, recent_names, present_names = wrapper.io_names()
    ids = torch.ones(1, 3, dtype=torch.long)
    past = [
        torch.zeros((1, wrapper.n_kv, wrapper.head_dim, 2) if "key" in n else (1, wrapper.n_kv, 2, wrapper.head_dim))
        for n in past_names + recent_names
    ]
    shapes = lora_shapes(hf_model, rank=2) if lora else {}
    dyn = {"input_ids": {0: "batch", 1: "seq"}}

    def seq(name: str) -> int:
        return KEY_TOKEN_AXIS if "key" in name else VALUE_TOKEN_AXIS

    dyn.update({n: {0: "batch", seq(n): "past"} for n in past_names})
    dyn.update({n: {0: "batch", seq(n): "recent"} for n in recent_names})
    dyn.update({n: {0: "batch", seq(n): "recent_and_new"} for n in present_names})
    dyn.update({n: {0: "rank"} if n.endswith("lora_A") else {1: "rank"} for n in shapes})
    dyn["logits"] = {0: "batch", 1: "rows"}
    with torch.no_grad():
        torch.onnx.export(
            wrapper,
            (ids, *past, *(torch.zeros(s) for s in shapes.values())),
            str(out_path),
            input_names=["input_ids", *past_names, *recent_names, *shapes],
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
