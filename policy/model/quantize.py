"""int8 quantization of an exported graph (export.py): onnxruntime's dynamic quantizer for the
MatMul weights, one scale per output column, then the token embedding in int8 as well (the
quantizer leaves it in fp32: most of a large model's file, issue 30)."""

from __future__ import annotations

from pathlib import Path


def add_lora_defaults(model) -> None:
    """Give each LoRA input a zero initializer of rank 1, so that it is optional: a run without an
    adapter is the base model. (Added after quantization, which must not take them for weights.)"""
    import numpy as np
    from onnx import numpy_helper

    for inp in model.graph.input:
        if inp.name.endswith((".lora_A", ".lora_B")):
            dims = [d.dim_value if d.dim_value else 1 for d in inp.type.tensor_type.shape.dim]
            model.graph.initializer.append(numpy_helper.from_array(np.zeros(dims, np.float32), inp.name))


def _constants_to_initializers(model) -> None:
    """The tracer stores buffers (LM head, rotary tables) as Constant nodes; the quantizer only
    looks at initializers, so move the large ones over."""
    from onnx import numpy_helper

    keep = []
    for node in model.graph.node:
        attr = node.attribute[0] if node.op_type == "Constant" and len(node.attribute) == 1 else None
        if attr is not None and attr.name == "value" and numpy_helper.to_array(attr.t).size > 1024:
            model.graph.initializer.append(numpy_helper.from_array(numpy_helper.to_array(attr.t), node.output[0]))
        else:
            keep.append(node)
    del model.graph.node[:]
    model.graph.node.extend(keep)


def _quantize_embedding(model) -> None:
    """The token embedding in int8, as llama.cpp's Q8_0 keeps it: left in fp32 by the quantizer
    (it quantizes MatMul weights only), it was most of the file (Qwen2.5-0.5B: 545 of 992 MB).

    Where the model ties its embedding to the LM head, the embedding is read from the head's int8
    matrix [H, V] (one copy: Gather along axis 1, then [B, T, H] and the head's scale); otherwise
    the table becomes int8 rows, each with its own scale."""
    import numpy as np
    from onnx import helper, numpy_helper

    inits = {t.name: t for t in model.graph.initializer}
    gathers = [
        n
        for n in model.graph.node
        if n.op_type == "Gather"
        and n.input[0] in inits
        and len(inits[n.input[0]].dims) == 2
        and inits[n.input[0]].data_type == 1  # float
    ]
    if not gathers:
        return
    node = max(gathers, key=lambda n: inits[n.input[0]].dims[0])  # the vocabulary's table (GPT-2: not wpe)
    table = numpy_helper.to_array(inits[node.input[0]])
    head = _tied_head(model, inits, table)
    out, ids = node.output[0], node.input[1]
    if head is not None:  # per-column (vocabulary row) scales, zero points 0 (_tied_head checked)
        nodes = [
            helper.make_node("Gather", [head, ids], [out + "_hbt"], axis=1),
            helper.make_node("Transpose", [out + "_hbt"], [out + "_q"], perm=[1, 2, 0]),
            helper.make_node("Cast", [out + "_q"], [out + "_f"], to=1),
            helper.make_node("Gather", [_scale(head), ids], [out + "_bt"]),
            helper.make_node("Unsqueeze", [out + "_bt", out + "_last"], [out + "_s"]),
            helper.make_node("Mul", [out + "_f", out + "_s"], [out]),
        ]
        new_inits = [numpy_helper.from_array(np.array([-1], np.int64), out + "_last")]
    else:
        scale = np.maximum(np.abs(table).max(axis=1, keepdims=True), 1e-12) / 127.0
        q = np.clip(np.rint(table / scale), -127, 127).astype(np.int8)
        name = node.input[0]
        new_inits = [
            numpy_helper.from_array(q, name + "_int8"),
            numpy_helper.from_array(scale.astype(np.float32), name + "_row_scale"),
        ]
        nodes = [
            helper.make_node("Gather", [name + "_int8", ids], [out + "_q"]),
            helper.make_node("Cast", [out + "_q"], [out + "_f"], to=1),
            helper.make_node("Gather", [name + "_row_scale", ids], [out + "_s"]),
            helper.make_node("Mul", [out + "_f", out + "_s"], [out]),
        ]
    at = list(model.graph.node).index(node)
    kept = [n for n in model.graph.node if n is not node]
    del model.graph.node[:]
    model.graph.node.extend(kept[:at] + nodes + kept[at:])
    left = [t for t in model.graph.initializer if t.name != node.input[0]]
    del model.graph.initializer[:]
    model.graph.initializer.extend(left + new_inits)


def _scale(q_name: str) -> str:
    return q_name.removesuffix("_quantized") + "_scale"


def _zero_point(q_name: str) -> str:
    return q_name.removesuffix("_quantized") + "_zero_point"


def _tied_head(model, inits: dict, table) -> str | None:
    """The quantizer's int8 LM head [H, V] when it holds the embedding `table` [V, H] (a tied
    model), else None."""
    import numpy as np
    from onnx import numpy_helper

    v, h = table.shape
    for name, t in inits.items():
        if not name.endswith("_quantized") or list(t.dims) != [h, v] or t.data_type != 3:  # int8
            continue
        if _scale(name) not in inits or _zero_point(name) not in inits:
            continue
        scale = numpy_helper.to_array(inits[_scale(name)])
        if scale.shape != (v,) or numpy_helper.to_array(inits[_zero_point(name)]).any():
            continue  # per-column and symmetric is what quantize_int8 asks for
        rows = np.linspace(0, v - 1, num=min(v, 64)).astype(int)  # a sample: the check is of identity
        q = numpy_helper.to_array(t)[:, rows].T.astype(np.float32)
        if np.all(np.abs(q * scale[rows, None] - table[rows]) <= scale[rows, None] * 0.51):
            return name
    return None


def quantize_int8(fp32_path: str | Path, int8_path: str | Path) -> Path:
    """Dynamic int8 quantization of the MatMul weights (activations stay fp32), and the
    embedding's table (_quantize_embedding)."""
    import logging

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = onnx.load(str(fp32_path))
    _constants_to_initializers(model)
    # Protocol buffers stop at 2 GB: a 0.5 B-parameter model's fp32 graph needs its weights beside it.
    large = sum(len(t.raw_data) for t in model.graph.initializer) > 1_800_000_000
    if large:
        onnx.save(
            model,
            str(fp32_path),
            save_as_external_data=True,
            all_tensors_to_one_file=True,
            location=Path(fp32_path).name + ".data",
        )
    else:
        onnx.save(model, str(fp32_path))
    del model
    logging.getLogger().setLevel(logging.ERROR)  # the quantizer warns about pre-processing on every call
    quantize_dynamic(
        str(fp32_path),
        str(int8_path),
        weight_type=QuantType.QInt8,
        op_types_to_quantize=["MatMul"],
        # A scale per output column: per tensor, one outlier coarsened a whole matrix, and the tied
        # embedding read from the LM head then lost accuracy (tests/test_adapters.py's parity).
        per_channel=True,
        use_external_data_format=large,
    )
    int8 = onnx.load(str(int8_path))
    _quantize_embedding(int8)
    add_lora_defaults(int8)  # after quantization, which must not take them for weights
    onnx.save(int8, str(int8_path))  # one self-contained file (the int8 model is a quarter of the size)
    return Path(int8_path)
