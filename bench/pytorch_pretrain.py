#!/usr/bin/python3
"""Plain PyTorch (Debian python3-torch) MLM training step of the same BERT as `octet pretrain`.

The peer for Octet's pretraining throughput: the same architecture (post-LN BERT, Hugging Face
layout, GELU erf), the same batch shape, masking rate, MLM head only at the masked positions,
AdamW with BERT's weight-decay groups and gradient clipping at 1.0, the same thread count. It
prints the median step time and tokens/s after two warm-up steps (one JSON line with --json).

  /usr/bin/python3 bench/pytorch_pretrain.py --layers 4 --hidden 256 --heads 4 \
      --intermediate 1024 --batch-size 32 --seq-len 128 --steps 10 --threads 2
"""
import argparse
import json
import math
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Layer(nn.Module):
    def __init__(self, h, heads, ffn, p):
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v = nn.Linear(h, h), nn.Linear(h, h), nn.Linear(h, h)
        self.o, self.ln1 = nn.Linear(h, h), nn.LayerNorm(h, eps=1e-12)
        self.i, self.out, self.ln2 = nn.Linear(h, ffn), nn.Linear(ffn, h), nn.LayerNorm(h, eps=1e-12)
        self.drop = nn.Dropout(p)

    def forward(self, x):
        b, t, h = x.shape
        d = h // self.heads
        split = lambda y: y.view(b, t, self.heads, d).permute(0, 2, 1, 3)
        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        probs = self.drop(torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d), -1))
        ctx = (probs @ v).permute(0, 2, 1, 3).reshape(b, t, h)
        a = self.ln1(self.drop(self.o(ctx)) + x)
        return self.ln2(self.drop(self.out(F.gelu(self.i(a)))) + a)


class MaskedLM(nn.Module):
    def __init__(self, vocab, h, layers, heads, ffn, max_pos, p=0.1):
        super().__init__()
        self.word, self.pos, self.tok_type = nn.Embedding(vocab, h, padding_idx=0), nn.Embedding(max_pos, h), nn.Embedding(2, h)
        self.ln, self.drop = nn.LayerNorm(h, eps=1e-12), nn.Dropout(p)
        self.layers = nn.ModuleList(Layer(h, heads, ffn, p) for _ in range(layers))
        self.t_dense, self.t_ln = nn.Linear(h, h), nn.LayerNorm(h, eps=1e-12)
        self.bias = nn.Parameter(torch.zeros(vocab))
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                m.weight.data.normal_(0, 0.02)
            if isinstance(m, nn.Linear):
                m.bias.data.zero_()

    def forward(self, ids, positions):
        t = ids.shape[1]
        x = self.word(ids) + self.tok_type(torch.zeros_like(ids)) + self.pos(torch.arange(t)).unsqueeze(0)
        x = self.drop(self.ln(x))
        for layer in self.layers:
            x = layer(x)
        sel = x.reshape(-1, x.shape[-1]).index_select(0, positions)
        return torch.addmm(self.bias, self.t_ln(F.gelu(self.t_dense(sel))), self.word.weight.t())


def load_masked_lm(model_dir):
    """The MaskedLM above with the weights of an Octet / Hugging Face BertForMaskedLM directory
    (4 layers, hidden 256, 4 heads, FFN 1024, 512 positions), in evaluation mode, FP32."""
    import os, sys
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts"))
    from make_golden import read_safetensors
    w = read_safetensors(os.path.join(model_dir, "model.safetensors"))
    t = lambda n: torch.from_numpy(w[n].copy()).float()
    m = MaskedLM(30522, 256, 4, 4, 1024, 512, p=0.0)
    sd = {"word.weight": t("bert.embeddings.word_embeddings.weight"),
          "pos.weight": t("bert.embeddings.position_embeddings.weight"),
          "tok_type.weight": t("bert.embeddings.token_type_embeddings.weight"),
          "ln.weight": t("bert.embeddings.LayerNorm.weight"), "ln.bias": t("bert.embeddings.LayerNorm.bias")}
    for i in range(4):
        p = f"bert.encoder.layer.{i}."
        for a, b in [("q", "attention.self.query"), ("k", "attention.self.key"), ("v", "attention.self.value"),
                     ("o", "attention.output.dense"), ("ln1", "attention.output.LayerNorm"),
                     ("i", "intermediate.dense"), ("out", "output.dense"), ("ln2", "output.LayerNorm")]:
            sd[f"layers.{i}.{a}.weight"] = t(p + b + ".weight")
            sd[f"layers.{i}.{a}.bias"] = t(p + b + ".bias")
    sd["t_dense.weight"] = t("cls.predictions.transform.dense.weight")
    sd["t_dense.bias"] = t("cls.predictions.transform.dense.bias")
    sd["t_ln.weight"] = t("cls.predictions.transform.LayerNorm.weight")
    sd["t_ln.bias"] = t("cls.predictions.transform.LayerNorm.bias")
    sd["bias"] = t("cls.predictions.bias")
    m.load_state_dict(sd)
    return m.eval()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vocab-size", type=int, default=30522)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--intermediate", type=int, default=1024)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = MaskedLM(a.vocab_size, a.hidden, a.layers, a.heads, a.intermediate, 512)
    decay = [p for n, p in model.named_parameters() if not (n.endswith("bias") or "ln" in n)]
    no_decay = [p for n, p in model.named_parameters() if n.endswith("bias") or "ln" in n]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=5e-4, betas=(0.9, 0.98), eps=1e-6)
    g = torch.Generator().manual_seed(1)
    times = []
    for step in range(a.steps + 2):
        t0 = time.perf_counter()
        ids = torch.randint(1000, a.vocab_size, (a.batch_size, a.seq_len), generator=g)
        sel = torch.rand(a.batch_size * a.seq_len, generator=g) < 0.15
        positions = sel.nonzero().squeeze(1)
        labels = ids.view(-1)[positions].clone()
        ids.view(-1)[positions] = 103
        logits = model(ids, positions)
        loss = F.cross_entropy(logits, labels)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        times.append(time.perf_counter() - t0)
    med = statistics.median(times[2:])
    tps = a.batch_size * a.seq_len / med
    if a.profile:
        with torch.autograd.profiler.profile() as prof:
            logits = model(ids, positions)
            loss = F.cross_entropy(logits, labels)
            opt.zero_grad()
            loss.backward()
            opt.step()
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))
    if a.json:
        print(json.dumps({"peer": "pytorch", "torch": torch.__version__, "threads": a.threads,
                          "median_step_ms": med * 1e3, "tokens_per_second": tps}))
    else:
        print(f"pytorch {torch.__version__}: median step {med*1e3:.1f} ms, {tps:.0f} tokens/s")


if __name__ == "__main__":
    main()
