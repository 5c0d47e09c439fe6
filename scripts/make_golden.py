#!/usr/bin/python3
"""Independent PyTorch reference for Octet's FP32 BERT engine (golden fixtures).

A plain BERT written here for the purpose (nn.Embedding, nn.Linear, nn.LayerNorm and explicit
attention; not Hugging Face transformers), randomly initialised with fixed seeds, saved as
Hugging Face model directories (config.json + model.safetensors written by the small writer
below + a tiny vocab.txt), and run on a batch of mixed lengths padded to the longest sequence
with an additive attention mask, as Hugging Face does. Octet runs the same batch unpadded, so
the comparison also checks that padding never leaks.

The reference runs in float64 on the weights exactly as stored (F16/BF16 weights are rounded
first), so the differences the golden test sees are Octet's FP32 error alone.

Output layout (OUT/<model>/):
  config.json, model.safetensors, vocab.txt     the model directory Octet loads
  golden.json     {"lengths": [...], "input_ids": [[...]], "token_type_ids": [[...]],
                   "hidden_size": H, "num_labels": L, "outputs": {name: file}}
  logits.bin      float32 little-endian [B, num_labels]      (models with a classifier)
  pooled.bin      float32 little-endian [B, H]               (models with a pooler)
  last_hidden.bin float32 little-endian, the valid tokens of each sequence back to back [sum T_b, H]
  mean_pooled.bin float32 little-endian [B, H]

Usage: make_golden.py --out DIR            (all fixtures; about a minute on 2 cores)
       make_golden.py --bench-model DIR    (only a BERT-base-shaped model for bench/)
Needs only torch and numpy (Debian's /usr/bin/python3). Writes nothing outside --out.
"""
import argparse
import json
import math
import os
import struct
import sys

import numpy as np
import torch
from torch import nn

# ---------------------------------------------------------------------------------------------
# The model


class BertLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        h, i = c["hidden_size"], c["intermediate_size"]
        self.heads = c["num_attention_heads"]
        self.query, self.key, self.value = nn.Linear(h, h), nn.Linear(h, h), nn.Linear(h, h)
        self.attn_out = nn.Linear(h, h)
        self.attn_norm = nn.LayerNorm(h, eps=c["layer_norm_eps"])
        self.inter = nn.Linear(h, i)
        self.out = nn.Linear(i, h)
        self.out_norm = nn.LayerNorm(h, eps=c["layer_norm_eps"])
        act = c["hidden_act"]
        if act == "gelu":
            self.act = lambda x: torch.nn.functional.gelu(x)
        elif act in ("gelu_new", "gelu_pytorch_tanh"):
            self.act = lambda x: torch.nn.functional.gelu(x, approximate="tanh")
        elif act == "relu":
            self.act = torch.relu
        else:
            raise ValueError(act)

    def forward(self, x, additive_mask):
        b, t, h = x.shape
        d = h // self.heads

        def split(y):  # [B, T, H] -> [B, heads, T, d]
            return y.view(b, t, self.heads, d).transpose(1, 2)

        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        scores = q @ k.transpose(-1, -2) / math.sqrt(d) + additive_mask
        probs = torch.softmax(scores, dim=-1)
        ctx = (probs @ v).transpose(1, 2).reshape(b, t, h)
        x = self.attn_norm(x + self.attn_out(ctx))
        return self.out_norm(x + self.out(self.act(self.inter(x))))


class Bert(nn.Module):
    def __init__(self, c, with_pooler=True, with_classifier=True):
        super().__init__()
        h = c["hidden_size"]
        self.word = nn.Embedding(c["vocab_size"], h)
        self.position = nn.Embedding(c["max_position_embeddings"], h)
        self.token_type = nn.Embedding(c["type_vocab_size"], h)
        self.emb_norm = nn.LayerNorm(h, eps=c["layer_norm_eps"])
        self.layers = nn.ModuleList([BertLayer(c) for _ in range(c["num_hidden_layers"])])
        self.pooler = nn.Linear(h, h) if with_pooler else None
        self.classifier = nn.Linear(h, c["num_labels"]) if with_classifier else None

    def forward(self, ids, types, mask):
        """ids, types: [B, T] int64; mask: [B, T] bool (True = real token)."""
        t = ids.shape[1]
        pos = torch.arange(t).unsqueeze(0)
        x = self.emb_norm(self.word(ids) + self.token_type(types) + self.position(pos))
        # Hugging Face's extended mask: 0 for real keys, the dtype's lowest value for padding.
        additive = (~mask)[:, None, None, :].to(x.dtype) * torch.finfo(x.dtype).min
        for layer in self.layers:
            x = layer(x, additive)
        out = {"last_hidden": x}
        if self.pooler is not None:
            out["pooled"] = torch.tanh(self.pooler(x[:, 0]))
            if self.classifier is not None:
                out["logits"] = self.classifier(out["pooled"])
        return out


def init_weights(model, seed, std):
    """BERT's normal(0, std) init, but with non-trivial biases and LayerNorm parameters so
    that a loader mixing up weight and bias, or ignoring gamma, cannot pass."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name and name.endswith("weight"):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
            elif "norm" in name and name.endswith("bias"):
                p.copy_(0.05 * torch.randn(p.shape, generator=g))
            elif name.endswith("bias"):
                p.copy_(0.02 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(std * torch.randn(p.shape, generator=g))


# ---------------------------------------------------------------------------------------------
# Hugging Face names, storage dtypes and the safetensors writer


def hf_state_dict(model, prefix="bert.", old_layer_norm_names=False):
    """Maps module parameters to Hugging Face BERT names (float32 numpy arrays)."""
    wn, bn = ("gamma", "beta") if old_layer_norm_names else ("weight", "bias")
    out = {}

    def put(name, t):
        out[name] = t.detach().to(torch.float32).numpy()

    def linear(name, m):
        put(name + ".weight", m.weight)
        put(name + ".bias", m.bias)

    def norm(name, m):
        put(f"{name}.{wn}", m.weight)
        put(f"{name}.{bn}", m.bias)

    p = prefix
    put(p + "embeddings.word_embeddings.weight", model.word.weight)
    put(p + "embeddings.position_embeddings.weight", model.position.weight)
    put(p + "embeddings.token_type_embeddings.weight", model.token_type.weight)
    norm(p + "embeddings.LayerNorm", model.emb_norm)
    for i, L in enumerate(model.layers):
        q = f"{p}encoder.layer.{i}."
        linear(q + "attention.self.query", L.query)
        linear(q + "attention.self.key", L.key)
        linear(q + "attention.self.value", L.value)
        linear(q + "attention.output.dense", L.attn_out)
        norm(q + "attention.output.LayerNorm", L.attn_norm)
        linear(q + "intermediate.dense", L.inter)
        linear(q + "output.dense", L.out)
        norm(q + "output.LayerNorm", L.out_norm)
    if model.pooler is not None:
        linear(p + "pooler.dense", model.pooler)
    if model.classifier is not None:
        linear("classifier", model.classifier)
    # Extra tensors a Hugging Face checkpoint may carry; Octet must ignore them.
    out[p + "embeddings.position_ids"] = np.arange(
        model.position.weight.shape[0], dtype=np.int64).reshape(1, -1)
    out["cls.predictions.bias"] = np.zeros(model.word.weight.shape[0], dtype=np.float32)
    return out


def to_bf16_bits(a):
    """float32 -> bfloat16 bit patterns, round to nearest even (finite inputs)."""
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return u.astype(np.uint16)


def from_bf16_bits(b):
    return (b.astype(np.uint32) << 16).view(np.float32)


def store(tensors, dtype):
    """Rounds float tensors to the storage dtype. Returns (bytes-ready arrays with their
    safetensors dtype names, float32 arrays holding exactly the stored values)."""
    stored, exact = {}, {}
    for name, a in tensors.items():
        if a.dtype != np.float32:
            stored[name] = ({np.dtype(np.int64): "I64"}[a.dtype], a)
            continue
        if dtype == "F32":
            stored[name], exact[name] = ("F32", a), a
        elif dtype == "F16":
            h = a.astype(np.float16)
            stored[name], exact[name] = ("F16", h), h.astype(np.float32)
        elif dtype == "BF16":
            b = to_bf16_bits(a)
            stored[name], exact[name] = ("BF16", b), from_bf16_bits(b)
        else:
            raise ValueError(dtype)
    return stored, exact


def write_safetensors(path, stored):
    """The safetensors layout: u64 LE header length, JSON header padded with spaces to a
    multiple of 8, then the little-endian tensor bytes."""
    header, blobs, offset = {}, [], 0
    for name in sorted(stored):
        dtype, a = stored[name]
        data = np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": dtype, "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header["__metadata__"] = {"format": "pt", "generator": "octet scripts/make_golden.py"}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for blob in blobs:
            f.write(blob)


def hf_config(c, problem_type=None):
    cfg = {"architectures": ["BertForSequenceClassification"], "model_type": "bert",
           "hidden_size": c["hidden_size"], "num_hidden_layers": c["num_hidden_layers"],
           "num_attention_heads": c["num_attention_heads"],
           "intermediate_size": c["intermediate_size"], "hidden_act": c["hidden_act"],
           "vocab_size": c["vocab_size"], "max_position_embeddings": c["max_position_embeddings"],
           "type_vocab_size": c["type_vocab_size"], "layer_norm_eps": c["layer_norm_eps"],
           "pad_token_id": 0, "position_embedding_type": "absolute",
           "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
           "initializer_range": 0.02, "num_labels": c["num_labels"],
           "id2label": {str(i): f"LABEL_{i}" for i in range(c["num_labels"])},
           "label2id": {f"LABEL_{i}": i for i in range(c["num_labels"])}}
    if problem_type:
        cfg["problem_type"] = problem_type
    return cfg


def write_model_dir(d, model, c, dtype="F32", prefix="bert.", old_names=False,
                    problem_type=None):
    """Writes config.json, model.safetensors and vocab.txt; loads the stored (rounded) values
    back into `model` so that it computes with exactly what Octet reads."""
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(hf_config(c, problem_type), f, indent=2)
    with open(os.path.join(d, "vocab.txt"), "w") as f:
        special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        f.write("\n".join(special + [f"tok{i}" for i in range(c["vocab_size"] - 5)]) + "\n")
    sd = hf_state_dict(model, prefix, old_names)
    stored, exact = store(sd, dtype)
    write_safetensors(os.path.join(d, "model.safetensors"), stored)
    # Put the rounded values back (same traversal order as hf_state_dict).
    ordered = [n for n in sd if n in exact and not n.startswith("cls.")]
    params = [p for _, p in _param_walk(model)]
    assert len(ordered) == len(params), (len(ordered), len(params))
    with torch.no_grad():
        for n, p in zip(ordered, params):
            p.copy_(torch.from_numpy(exact[n]).reshape(p.shape))


def _param_walk(model):
    """Parameters in hf_state_dict's order."""
    yield "word", model.word.weight
    yield "position", model.position.weight
    yield "type", model.token_type.weight
    yield "ln.w", model.emb_norm.weight
    yield "ln.b", model.emb_norm.bias
    for L in model.layers:
        for m in (L.query, L.key, L.value, L.attn_out, L.attn_norm, L.inter, L.out, L.out_norm):
            yield "w", m.weight
            yield "b", m.bias
    for m in (model.pooler, model.classifier):
        if m is not None:
            yield "w", m.weight
            yield "b", m.bias


def read_safetensors(path):
    """name -> float32 numpy array (F32, F16 and BF16 tensors only)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        b, e = t["data_offsets"]
        raw = data[b:e]
        if t["dtype"] == "F32":
            a = np.frombuffer(raw, dtype="<f4")
        elif t["dtype"] == "F16":
            a = np.frombuffer(raw, dtype="<f2").astype(np.float32)
        elif t["dtype"] == "BF16":
            a = from_bf16_bits(np.frombuffer(raw, dtype="<u2"))
        else:
            continue
        out[name] = a.reshape(t["shape"])
    return out


def load_model_dir(d):
    """The Bert module with the weights of a model directory written by write_model_dir
    (prefix "bert.", weight/bias LayerNorm names)."""
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    tensors = read_safetensors(os.path.join(d, "model.safetensors"))
    model = Bert(cfg, with_pooler="bert.pooler.dense.weight" in tensors,
                 with_classifier="classifier.weight" in tensors)
    names = [n for n in hf_state_dict(model) if not n.startswith("cls.") and
             not n.endswith("position_ids")]
    params = [p for _, p in _param_walk(model)]
    with torch.no_grad():
        for n, p in zip(names, params):
            p.copy_(torch.from_numpy(np.array(tensors[n])).reshape(p.shape))
    return model.eval(), cfg


# ---------------------------------------------------------------------------------------------
# Fixtures

TINY = dict(vocab_size=1000, hidden_size=128, num_hidden_layers=2, num_attention_heads=2,
            intermediate_size=512, max_position_embeddings=512, type_vocab_size=2,
            layer_norm_eps=1e-12, hidden_act="gelu", num_labels=3)
BASE = dict(vocab_size=2000, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
            intermediate_size=3072, max_position_embeddings=512, type_vocab_size=2,
            layer_norm_eps=1e-12, hidden_act="gelu", num_labels=2)
LENGTHS = [1, 7, 33, 128]


def make_inputs(c, lengths, seed):
    g = np.random.default_rng(seed)
    ids, types = [], []
    for n in lengths:
        seq = g.integers(5, c["vocab_size"], size=n).tolist()
        seq[0] = 2  # [CLS]
        if n > 1:
            seq[-1] = 3  # [SEP]
        ids.append(seq)
        # Sentence pairs: the second half is segment 1.
        types.append([0] * (n - n // 2) + [1] * (n // 2) if n >= 7 else [0] * n)
    return ids, types


def run_reference(model, ids, types):
    """Padded batch in float64 with the attention mask; returns per-output numpy float32."""
    b, t = len(ids), max(len(s) for s in ids)
    ids_t = torch.zeros(b, t, dtype=torch.int64)
    types_t = torch.zeros(b, t, dtype=torch.int64)
    mask = torch.zeros(b, t, dtype=torch.bool)
    for i, (s, ty) in enumerate(zip(ids, types)):
        ids_t[i, :len(s)] = torch.tensor(s)
        types_t[i, :len(s)] = torch.tensor(ty)
        mask[i, :len(s)] = True
    m64 = model.double()
    with torch.inference_mode():
        out = m64(ids_t, types_t, mask)
    res = {}
    hidden = out["last_hidden"]
    res["last_hidden"] = np.concatenate(
        [hidden[i, :len(s)].numpy() for i, s in enumerate(ids)]).astype(np.float32)
    res["mean_pooled"] = np.stack(
        [hidden[i, :len(s)].mean(0).numpy() for i, s in enumerate(ids)]).astype(np.float32)
    for k in ("pooled", "logits"):
        if k in out:
            res[k] = out[k].numpy().astype(np.float32)
    model.float()
    return res


def make_fixture(out_dir, name, c, seed, std, dtype="F32", prefix="bert.", old_names=False,
                 problem_type=None, with_classifier=True, lengths=LENGTHS):
    torch.manual_seed(seed)
    model = Bert(c, with_pooler=True, with_classifier=with_classifier)
    init_weights(model, seed, std)
    d = os.path.join(out_dir, name)
    write_model_dir(d, model, c, dtype, prefix, old_names, problem_type)
    ids, types = make_inputs(c, lengths, seed + 1)
    res = run_reference(model, ids, types)
    files = {}
    for k, a in res.items():
        fn = k + ".bin"
        np.ascontiguousarray(a, dtype="<f4").tofile(os.path.join(d, fn))
        files[k] = fn
    meta = {"lengths": lengths, "input_ids": ids, "token_type_ids": types,
            "hidden_size": c["hidden_size"], "num_labels": c["num_labels"] if with_classifier
            else 0, "weights_dtype": dtype, "outputs": files,
            "reference": "float64 PyTorch on the stored weights, padded batch + attention mask"}
    with open(os.path.join(d, "golden.json"), "w") as f:
        json.dump(meta, f)
    first = res.get("logits", res["last_hidden"]).reshape(-1)[:4]
    print(f"make_golden: {name:22s} {dtype:4s} first values {np.array2string(first, precision=5)}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", help="fixture directory (all golden models)")
    ap.add_argument("--bench-model", help="write only a BERT-base-shaped model directory here")
    args = ap.parse_args()
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    if args.bench_model:
        torch.manual_seed(1234)
        model = Bert(BASE)
        init_weights(model, 1234, 0.02)
        write_model_dir(args.bench_model, model, BASE)
        print(f"make_golden: BERT-base-shaped model written to {args.bench_model}")
        return 0
    if not args.out:
        ap.error("--out or --bench-model is required")
    o = args.out
    # Larger init (0.1) on the tiny models makes attention far from uniform, so a softmax or
    # masking bug changes the outputs visibly; the base model keeps BERT's 0.02.
    make_fixture(o, "tiny", TINY, seed=1, std=0.1)
    make_fixture(o, "tiny_f16", TINY, seed=2, std=0.1, dtype="F16")
    make_fixture(o, "tiny_bf16", TINY, seed=3, std=0.1, dtype="BF16")
    make_fixture(o, "tiny_noprefix_encoder", TINY, seed=4, std=0.1, prefix="", old_names=True,
                 with_classifier=False)
    make_fixture(o, "tiny_regression", dict(TINY, num_labels=1), seed=5, std=0.1,
                 problem_type="regression")
    make_fixture(o, "tiny_gelu_new", dict(TINY, hidden_act="gelu_new"), seed=6, std=0.1)
    make_fixture(o, "tiny_relu", dict(TINY, hidden_act="relu"), seed=7, std=0.1)
    make_fixture(o, "base", BASE, seed=8, std=0.02)
    return 0


if __name__ == "__main__":
    sys.exit(main())
