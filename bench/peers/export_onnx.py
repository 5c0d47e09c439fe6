#!/usr/bin/python3
"""Writes ONNX graphs of an Octet model directory for the ONNX Runtime peer: FP32 and dynamic INT8.

  /usr/bin/python3 bench/peers/export_onnx.py --model DIR --out-fp32 fp32.onnx --out-int8 int8.onnx

Built node by node with Debian's python3-onnx (1.12, opset 17), from the same config.json +
model.safetensors Octet loads (Hugging Face BERT names, "bert." prefix; pooler and classifier
required). Inputs input_ids, token_type_ids, attention_mask: int64 [batch, seq] (dynamic);
output logits: float [batch, num_labels]. The graph is Hugging Face's BERT: embeddings (word +
token type + position) and LayerNormalization; per layer Q/K/V projections, scaled dot-product
attention with an additive mask (0 for real keys, -1e9 for padding), output projection +
residual + LayerNorm, FFN with exact (erf) GELU + residual + LayerNorm; tanh pooler over the
first token; classifier.

The INT8 graph is ONNX Runtime's own dynamic quantization form (its python quantizer is not
installable here): every Linear (QKV, attention output, FFN in and out, pooler, classifier)
becomes DynamicQuantizeLinear (u8 activations, per-tensor scale and zero point computed per
call) -> MatMulInteger with int8 weights quantized symmetrically per output channel
(scale = max|w| / 127, zero point 0) -> Cast to float -> Mul by activation scale x weight scales
-> Add bias, which ORT fuses into DynamicQuantizeMatMul. Attention matmuls, softmax,
LayerNorm, GELU and the embeddings stay FP32, as in Octet's int8 mode.
"""
import argparse
import json
import math
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))

import numpy as np  # noqa: E402

try:
    import onnx  # noqa: E402
    from onnx import TensorProto, helper, numpy_helper  # noqa: E402
except ImportError:
    sys.exit("export_onnx: python3-onnx is missing (apt-get install python3-onnx; "
             "scripts/install_deps.sh installs it)")

from make_golden import read_safetensors  # noqa: E402


class Graph:
    def __init__(self, int8):
        self.nodes, self.inits, self.int8, self.n = [], [], int8, 0

    def name(self, base):
        self.n += 1
        return f"{base}_{self.n}"

    def const(self, base, array):
        n = self.name(base)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(array), n))
        return n

    def op(self, op_type, inputs, base=None, outputs=1, **attrs):
        outs = [self.name(base or op_type) for _ in range(outputs)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, **attrs))
        return outs[0] if outputs == 1 else outs

    def linear(self, x, w, b, base):
        """x [..., K] @ w.T + b with w [N, K] (PyTorch layout)."""
        w = np.asarray(w, dtype=np.float32)
        bias = self.const(base + ".bias", np.asarray(b, dtype=np.float32))
        if not self.int8:
            y = self.op("MatMul", [x, self.const(base + ".weight_t", w.T.copy())], base)
            return self.op("Add", [y, bias], base)
        amax = np.abs(w).max(axis=1)
        scale = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)  # [N]
        q = np.clip(np.rint(w / scale[:, None]), -127, 127).astype(np.int8)  # [N, K]
        wq = self.const(base + ".weight_q", q.T.copy())  # [K, N]
        wz = self.const(base + ".weight_zp", np.zeros(w.shape[0], dtype=np.int8))
        ws = self.const(base + ".weight_scale", scale)
        xq, xs, xz = self.op("DynamicQuantizeLinear", [x], base + ".xq", outputs=3)
        acc = self.op("MatMulInteger", [xq, wq, xz, wz], base + ".acc")
        accf = self.op("Cast", [acc], base + ".accf", to=TensorProto.FLOAT)
        s = self.op("Mul", [xs, ws], base + ".scale")
        y = self.op("Mul", [accf, s], base + ".deq")
        return self.op("Add", [y, bias], base)

    def layer_norm(self, x, g, b, eps, base):
        return self.op("LayerNormalization", [x, self.const(base + ".g", g), self.const(base + ".b", b)],
                       base, axis=-1, epsilon=float(eps))


def build(model_dir, int8):
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    t = read_safetensors(os.path.join(model_dir, "model.safetensors"))
    p = "bert." if "bert.embeddings.word_embeddings.weight" in t else ""
    need = [p + "pooler.dense.weight", "classifier.weight"]
    missing = [n for n in need if n not in t]
    if missing:
        sys.exit(f"export_onnx: {model_dir}/model.safetensors lacks {missing}: the ONNX peer "
                 "needs a classifier model")
    act = cfg.get("hidden_act", "gelu")
    if act not in ("gelu", "gelu_python"):
        sys.exit(f"export_onnx: hidden_act '{act}' is not supported (expected gelu)")
    h, heads = cfg["hidden_size"], cfg["num_attention_heads"]
    d, eps = h // heads, cfg.get("layer_norm_eps", 1e-12)
    g = Graph(int8)

    ids, types, mask = "input_ids", "token_type_ids", "attention_mask"
    word = g.op("Gather", [g.const("word", t[p + "embeddings.word_embeddings.weight"]), ids])
    tt = g.op("Gather", [g.const("type", t[p + "embeddings.token_type_embeddings.weight"]), types])
    shape = g.op("Shape", [ids])
    seq = g.op("Slice", [shape, g.const("one", np.array([1], np.int64)),
                         g.const("two", np.array([2], np.int64))])
    pos = g.op("Slice", [g.const("pos", t[p + "embeddings.position_embeddings.weight"]),
                         g.const("zero", np.array([0], np.int64)), seq,
                         g.const("axis0", np.array([0], np.int64))])
    x = g.op("Add", [g.op("Add", [word, tt]), pos])
    x = g.layer_norm(x, t[p + "embeddings.LayerNorm.weight"], t[p + "embeddings.LayerNorm.bias"],
                     eps, "emb_ln")
    # Additive mask [B, 1, 1, T]: 0 for real keys, -1e9 for padding.
    mf = g.op("Cast", [mask], to=TensorProto.FLOAT)
    inv = g.op("Sub", [g.const("onef", np.array(1.0, np.float32)), mf])
    add_mask = g.op("Mul", [inv, g.const("neg", np.array(-1e9, np.float32))])
    add_mask = g.op("Unsqueeze", [add_mask, g.const("ax12", np.array([1, 2], np.int64))])
    split_shape = g.const("split", np.array([0, 0, heads, d], np.int64))
    merge_shape = g.const("merge", np.array([0, 0, h], np.int64))
    inv_sqrt_d = g.const("scale", np.array(1.0 / math.sqrt(d), np.float32))
    sqrt_half = g.const("rsqrt2", np.array(1.0 / math.sqrt(2.0), np.float32))
    half = g.const("half", np.array(0.5, np.float32))
    onef = g.const("onef", np.array(1.0, np.float32))
    for i in range(cfg["num_hidden_layers"]):
        q = f"{p}encoder.layer.{i}."

        def lin(x_, name):
            return g.linear(x_, t[q + name + ".weight"], t[q + name + ".bias"], f"l{i}.{name}")

        def heads_of(y, perm):
            return g.op("Transpose", [g.op("Reshape", [y, split_shape])], perm=perm)

        qh = heads_of(lin(x, "attention.self.query"), [0, 2, 1, 3])  # [B, h, T, d]
        kh = heads_of(lin(x, "attention.self.key"), [0, 2, 3, 1])  # [B, h, d, T]
        vh = heads_of(lin(x, "attention.self.value"), [0, 2, 1, 3])
        scores = g.op("Add", [g.op("Mul", [g.op("MatMul", [qh, kh]), inv_sqrt_d]), add_mask])
        probs = g.op("Softmax", [scores], axis=-1)
        ctx = g.op("Transpose", [g.op("MatMul", [probs, vh])], perm=[0, 2, 1, 3])
        ctx = g.op("Reshape", [ctx, merge_shape])
        x = g.layer_norm(g.op("Add", [x, lin(ctx, "attention.output.dense")]),
                         t[q + "attention.output.LayerNorm.weight"],
                         t[q + "attention.output.LayerNorm.bias"], eps, f"l{i}.ln1")
        inter = lin(x, "intermediate.dense")
        erf = g.op("Erf", [g.op("Mul", [inter, sqrt_half])])
        gelu = g.op("Mul", [g.op("Mul", [inter, half]), g.op("Add", [erf, onef])])
        x = g.layer_norm(g.op("Add", [x, lin(gelu, "output.dense")]),
                         t[q + "output.LayerNorm.weight"], t[q + "output.LayerNorm.bias"], eps,
                         f"l{i}.ln2")
    # The first token: Slice [B, 1, H] then Reshape [B, H] (a Gather with a scalar index gets
    # rewritten by ORT's optimiser into a form whose inferred output shape keeps the 1).
    first = g.op("Slice", [x, g.const("zero", np.array([0], np.int64)),
                           g.const("one", np.array([1], np.int64)),
                           g.const("axis1", np.array([1], np.int64))])
    first = g.op("Reshape", [first, g.const("bh", np.array([-1, h], np.int64))])
    pooled = g.op("Tanh", [g.linear(first, t[p + "pooler.dense.weight"],
                                    t[p + "pooler.dense.bias"], "pooler")])
    logits = g.linear(pooled, t["classifier.weight"], t["classifier.bias"], "classifier")
    g.nodes.append(helper.make_node("Identity", [logits], ["logits"]))

    dims = ["batch", "seq"]
    inputs = [helper.make_tensor_value_info(n, TensorProto.INT64, dims) for n in (ids, types, mask)]
    output = helper.make_tensor_value_info("logits", TensorProto.FLOAT,
                                           ["batch", t["classifier.weight"].shape[0]])
    graph = helper.make_graph(g.nodes, "octet_bert_" + ("int8" if int8 else "fp32"), inputs,
                              [output], g.inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                          producer_name="octet bench/peers/export_onnx.py")
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def save(model, path):
    tmp = f"{path}.tmp.{os.getpid()}"
    onnx.save(model, tmp)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="Octet / Hugging Face model directory")
    ap.add_argument("--out-fp32")
    ap.add_argument("--out-int8")
    args = ap.parse_args()
    if not args.out_fp32 and not args.out_int8:
        ap.error("give --out-fp32 and/or --out-int8")
    if args.out_fp32:
        save(build(args.model, False), args.out_fp32)
    if args.out_int8:
        save(build(args.model, True), args.out_int8)
    return 0


if __name__ == "__main__":
    sys.exit(main())
