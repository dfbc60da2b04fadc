"""int8 quantization of an exported graph (export.py): onnxruntime's dynamic quantizer for the
MatMul weights, one scale per output column; those weights then move, unchanged, into
onnxruntime's MatMulNBits layout (8 bits, int8 arithmetic: it decodes faster, issue 30); then the
token embedding in int8 as well (the quantizer leaves it in fp32: most of a large model's file)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple


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

    Where the model ties its embedding to the LM head, the embedding is read from the head's 8-bit
    matrix (one copy); otherwise the table becomes int8 rows, each with its own scale."""
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
    out, ids = node.output[0], node.input[1]
    tied = _tied_nbits_rows(model, inits, table, out, ids) or _tied_int8_columns(inits, table, out, ids)
    if tied is not None:
        nodes, new_inits = tied
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


def _sample_rows(v: int):
    import numpy as np

    return np.linspace(0, v - 1, num=min(v, 64)).astype(int)  # the check is of identity, not accuracy


def _tied_nbits_rows(model, inits: dict, table, out: str, ids: str):
    """Nodes reading the embedding `table` [V, H] from the LM head's MatMulNBits rows
    [V, blocks, block] (_to_matmul_nbits: zero point 128, one scale per row), and their
    initializers; None if no such head holds it."""
    import numpy as np
    from onnx import helper, numpy_helper

    v, h = table.shape
    for node in model.graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type != "MatMulNBits" or (attrs.get("K"), attrs.get("N"), attrs.get("bits")) != (h, v, 8):
            continue
        if len(node.input) > 3 or node.input[1] not in inits:
            continue  # zero points other than 128: not what _to_matmul_nbits writes
        rows = numpy_helper.to_array(inits[node.input[1]]).reshape(v, -1)
        scale = numpy_helper.to_array(inits[node.input[2]]).reshape(v, -1)
        sample = _sample_rows(v)
        q = rows[sample, :h].astype(np.float32) - 128
        if not np.all(scale == scale[:, :1]) or np.any(
            np.abs(q * scale[sample, :1] - table[sample]) > scale[sample, :1] * 0.51
        ):
            continue
        padded = rows.shape[1]
        nodes = [
            helper.make_node("Gather", [node.input[1], ids], [out + "_blk"]),
            helper.make_node("Reshape", [out + "_blk", out + "_flat"], [out + ("_pad" if padded > h else "_q")]),
            *(
                [helper.make_node("Slice", [out + "_pad", out + "_zero", out + "_hidden", out + "_last"], [out + "_q"])]
                if padded > h
                else []
            ),
            helper.make_node("Cast", [out + "_q"], [out + "_u"], to=1),
            helper.make_node("Sub", [out + "_u", out + "_128"], [out + "_f"]),
            helper.make_node("Gather", [out + "_row_scale", ids], [out + "_bt"]),
            helper.make_node("Unsqueeze", [out + "_bt", out + "_last"], [out + "_s"]),
            helper.make_node("Mul", [out + "_f", out + "_s"], [out]),
        ]
        new_inits = [
            numpy_helper.from_array(np.ascontiguousarray(scale[:, 0]), out + "_row_scale"),
            numpy_helper.from_array(np.array([0, 0, padded], np.int64), out + "_flat"),
            numpy_helper.from_array(np.array([0], np.int64), out + "_zero"),
            numpy_helper.from_array(np.array([h], np.int64), out + "_hidden"),
            numpy_helper.from_array(np.array([-1], np.int64), out + "_last"),
            numpy_helper.from_array(np.array(128, np.float32), out + "_128"),
        ]
        return nodes, new_inits
    return None


def _tied_int8_columns(inits: dict, table, out: str, ids: str):
    """Nodes reading the embedding `table` [V, H] from the quantizer's int8 LM head [H, V] (a scale
    per column, zero points 0: what quantize_int8 asks for), and their initializers; None if no
    such head holds it. The head stays a MatMulInteger where this machine's onnxruntime has no
    8-bit MatMulNBits kernel (nbits_kernel_available)."""
    import numpy as np
    from onnx import helper, numpy_helper

    v, h = table.shape
    for name, t in inits.items():
        if not name.endswith("_quantized") or list(t.dims) != [h, v] or t.data_type != 3:  # int8
            continue
        if _scale(name) not in inits or _zero_point(name) not in inits:
            continue
        scale = numpy_helper.to_array(inits[_scale(name)])
        if scale.shape != (v,) or numpy_helper.to_array(inits[_zero_point(name)]).any():
            continue
        sample = _sample_rows(v)
        q = numpy_helper.to_array(t)[:, sample].T.astype(np.float32)
        if np.any(np.abs(q * scale[sample, None] - table[sample]) > scale[sample, None] * 0.51):
            continue
        nodes = [
            helper.make_node("Gather", [name, ids], [out + "_hbt"], axis=1),
            helper.make_node("Transpose", [out + "_hbt"], [out + "_q"], perm=[1, 2, 0]),
            helper.make_node("Cast", [out + "_q"], [out + "_f"], to=1),
            helper.make_node("Gather", [_scale(name), ids], [out + "_bt"]),
            helper.make_node("Unsqueeze", [out + "_bt", out + "_last"], [out + "_s"]),
            helper.make_node("Mul", [out + "_f", out + "_s"], [out]),
        ]
        return nodes, [numpy_helper.from_array(np.array([-1], np.int64), out + "_last")]
    return None


NBITS_BLOCK = 128  # the blocks MatMulNBits scales by (all of a column's share its scale here)


def _scale(q_name: str) -> str:
    return q_name.removesuffix("_quantized") + "_scale"


def _zero_point(q_name: str) -> str:
    return q_name.removesuffix("_quantized") + "_zero_point"


class _Product(NamedTuple):
    """One product as quantize_dynamic writes it: y = Mul(Cast(MatMulInteger(DynamicQuantizeLinear(x),
    weight)), Mul(x's scale, weight's scale))."""

    matmul: Any
    quant: Any  # DynamicQuantizeLinear(x)
    cast: Any
    mul: Any
    scales: Any  # x's scale times the weight's
    weight: str


def _quantizer_products(graph, inits: dict, users: dict) -> list[_Product]:
    """The products on a constant int8 weight with a scale per column and zero points 0."""
    from onnx import numpy_helper

    made = {o: n for n in graph.node for o in n.output}
    found = []
    for node in graph.node:
        if node.op_type != "MatMulInteger":
            continue
        weight, quant, after = node.input[1], made.get(node.input[0]), users[node.output[0]]
        if weight not in inits or inits[weight].data_type != 3 or _scale(weight) not in inits:
            continue
        if quant is None or quant.op_type != "DynamicQuantizeLinear" or len(after) != 1 or after[0].op_type != "Cast":
            continue
        (cast,) = after
        if len(users[cast.output[0]]) != 1 or numpy_helper.to_array(inits[_zero_point(weight)]).any():
            continue
        (mul,) = users[cast.output[0]]
        scales = made[mul.input[1] if mul.input[0] == cast.output[0] else mul.input[0]]
        found.append(_Product(node, quant, cast, mul, scales, weight))
    return found


def _to_matmul_nbits(model, block: int = NBITS_BLOCK) -> None:
    """Each product the quantizer wrote (_quantizer_products) becomes one MatMulNBits node over the
    same values: 8-bit rows [N, blocks, block] stored with zero point 128, every block of a column
    given the column's scale, so nothing is rounded again. accuracy_level 4 has onnxruntime
    multiply in int8, the activations quantized per block. Why: on one AVX-512 core a decoding
    step of the 0.5B shape took 34.6 ms with MatMulInteger and 23.4 with this (2 threads 26.4 /
    24.0), prefill 1.6x slower (BENCHMARKS, issue 30). A block of 128 read fastest (32: 7.0 ms for
    the 0.5B's LM head, 128: 4.7)."""
    import collections

    from onnx import helper, numpy_helper

    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    users = collections.defaultdict(list)
    for n in graph.node:
        for i in n.input:
            users[i].append(n)
    replaced, gone, new_inits = {}, set[int](), []
    for product in _quantizer_products(graph, inits, users):
        column = numpy_helper.to_array(inits[_scale(product.weight)])
        rows, scales, attrs = _nbits_weight(numpy_helper.to_array(inits[product.weight]), column, block)
        name = product.weight.removesuffix("_quantized") + "_nbits"
        new_inits += [numpy_helper.from_array(rows, name), numpy_helper.from_array(scales, name + "_scale")]
        replaced[id(product.matmul)] = helper.make_node(
            "MatMulNBits",
            [product.quant.input[0], name, name + "_scale"],
            [product.mul.output[0]],
            name=product.matmul.name.removesuffix("_quant") + "_nbits",
            domain="com.microsoft",
            **attrs,
        )
        gone.update((id(product.cast), id(product.mul), id(product.scales)))
    for quant in [n for n in graph.node if n.op_type == "DynamicQuantizeLinear"]:
        if all(id(u) in replaced for u in users[quant.output[0]]):
            gone.add(id(quant))
    kept = [replaced.get(id(n), n) for n in graph.node if id(n) not in gone]
    del graph.node[:]
    graph.node.extend(kept)
    used = {i for n in kept for i in n.input}
    left = [t for t in list(graph.initializer) + new_inits if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(left)


def _nbits_weight(q, column, block: int = NBITS_BLOCK):
    """int8 weights `q` [K, N] with a scale per column as MatMulNBits takes them: 8-bit rows
    [N, blocks, block] with zero point 128 (K padded with zeros to whole blocks), each block's
    scale the column's, and the node's attributes (accuracy_level 4: int8 arithmetic)."""
    import numpy as np

    k, n = q.shape
    blocks = -(-k // block)
    rows = np.full((n, blocks * block), 128, np.uint8)  # padding: 128 is a zero
    rows[:, :k] = (q.T.astype(np.int16) + 128).astype(np.uint8)
    scales = np.repeat(column.astype(np.float32), blocks)
    attrs = {"K": k, "N": n, "bits": 8, "block_size": block, "accuracy_level": 4}
    return rows.reshape(n, blocks, block), scales, attrs


def one_product(form: str, q, scale, threads: int = 1):
    """An onnxruntime session computing y = x @ (q * scale) with one node of `form`: "MatMulNBits"
    (as _to_matmul_nbits writes it) or "DynamicQuantizeMatMul" (what onnxruntime fuses the
    quantizer's MatMulInteger into), for int8 weights `q` [K, N] with a scale per column. For
    nbits_kernel_available and the benchmarks."""
    import numpy as np
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    k, n = q.shape
    arrays: dict[str, Any] = {"w": q, "s": scale.astype(np.float32)}
    attrs: dict[str, Any] = {}
    if form == "MatMulNBits":
        arrays["w"], arrays["s"], attrs = _nbits_weight(q, scale)
    else:
        arrays["z"] = np.zeros(n, np.int8)
    graph = helper.make_graph(
        [helper.make_node(form, ["x", *arrays], ["y"], domain="com.microsoft", **attrs)],
        form,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, k])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, n])],
        [numpy_helper.from_array(a, name) for name, a in arrays.items()],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    )
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def nbits_kernel_available(k: int = 1024, n: int = 4096) -> bool:
    """Whether this machine's onnxruntime has a kernel of its own for 8-bit MatMulNBits with int8
    arithmetic (MLAS has them per instruction set). Without one, every run would widen the whole
    matrix to fp32 first: ~50x slower than MatMulInteger (a 0.5B's LM head: 401 ms against 8.3).
    Asked of onnxruntime itself rather than read from CPU flags: one product of each kind on the
    same 4 MB matrix, one thread, the fastest of five runs; MatMulNBits must be within 3x. An
    onnxruntime that refuses the node (8-bit MatMulNBits is newer than some it accepts) has none."""
    import time

    import numpy as np

    rng = np.random.default_rng(0)
    q = rng.integers(-127, 128, (k, n), dtype=np.int8)
    x = {"x": rng.standard_normal((1, k)).astype(np.float32)}
    best = {}
    for form in ("DynamicQuantizeMatMul", "MatMulNBits"):
        try:
            session = one_product(form, q, np.full(n, 0.01, np.float32))
        except Exception:  # onnxruntime's own errors (not implemented, invalid graph) share no narrower base
            if form == "MatMulNBits":
                return False
            raise
        times = []
        for _ in range(6):
            start = time.perf_counter()
            session.run(None, x)
            times.append(time.perf_counter() - start)
        best[form] = min(times[1:])
    return best["MatMulNBits"] < 3 * best["DynamicQuantizeMatMul"]


def quantize_int8(fp32_path: str | Path, int8_path: str | Path, nbits: bool | None = None) -> Path:
    """Dynamic int8 quantization of the MatMul weights (activations stay fp32), in MatMulNBits'
    layout where onnxruntime has its kernel here (`nbits`: None asks nbits_kernel_available; the
    benchmarks build both), and the embedding's table (_quantize_embedding)."""
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
    if nbits_kernel_available() if nbits is None else nbits:
        _to_matmul_nbits(int8)
    _quantize_embedding(int8)
    add_lora_defaults(int8)  # after quantization, which must not take them for weights
    onnx.save(int8, str(int8_path))  # one self-contained file (the int8 model is a quarter of the size)
    return Path(int8_path)
