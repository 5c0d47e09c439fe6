#!/usr/bin/python3
"""What does a pretrained encoder's output carry before fine-tuning? (docs/training.md, "Three
seeds and a low-resource check (session 19)"). A linear probe: the encoder is frozen, each SST-2
sentence ([CLS] sentence [SEP], at most 128 tokens, no padding) is encoded once, and an
L2-regularised logistic regression (L-BFGS, weight decay 1e-3 / 1e-2 / 1e-1, the best on dev
reported) is fitted on features of the first N training sentences and scored on SST-2 dev:

  - the mean over the sentence's tokens of each level's output (the embeddings' LayerNorm, then
    each layer), and of the raw word embeddings (a bag of the input vectors);
  - the last layer's [CLS] vector (what a fine-tuned classifier's pooler reads).

It also prints, per layer and head, how [CLS] attends: the normalised entropy of its attention
row (1 = uniform) and the mass on the first three positions ([CLS] and the first two tokens).

MODEL is an Octet / Hugging Face BertForMaskedLM directory (4 layers, hidden 256, 4 heads, FFN
1024), or `random` for the same architecture at Hugging Face's initialisation (N(0, 0.02),
seed 42): the floor the pretrained figures are measured against.

  /usr/bin/python3 scripts/sst2_linear_probe.py MODEL [--train N (8000)] [--data $OCTET_DATA]
"""
import argparse
import math
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "bench"))
sys.path.insert(0, os.path.join(REPO, "scripts"))
import torch
import torch.nn.functional as F
from pytorch_pretrain import MaskedLM, load_masked_lm
from tokenizer_reference import Tokenizer

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("model")
ap.add_argument("--train", type=int, default=8000, help="training sentences for the probe")
ap.add_argument("--data", default=os.environ.get("OCTET_DATA", os.path.join(REPO, "..", "shared", "data")))
a = ap.parse_args()
torch.set_num_threads(1)
if a.model == "random":
    torch.manual_seed(42)
    m = MaskedLM(30522, 256, 4, 4, 1024, 512, p=0.0).eval()
else:
    m = load_masked_lm(a.model)
tok = Tokenizer(os.path.join(a.data, "vocab", "vocab.txt"))


def read_tsv(path, limit):
    if not os.path.isfile(path):
        sys.exit(f"sst2_linear_probe: {path} not found (SST-2 from the shared data; set --data or OCTET_DATA)")
    rows = []
    with open(path, encoding="utf-8") as f:
        next(f)
        for n, line in enumerate(f, start=2):
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 2 or parts[1] not in ("0", "1"):
                sys.exit(f"sst2_linear_probe: {path}:{n}: expected 'sentence<TAB>0|1', found {line[:60]!r}")
            rows.append((parts[0], int(parts[1])))
            if len(rows) == limit:
                break
    return rows


def encode(ids):
    """Every level's output [levels, T, H] and [CLS]'s attention row per layer [layers, heads, T]."""
    t = ids.shape[1]
    x = m.ln(m.word(ids) + m.tok_type(torch.zeros_like(ids)) + m.pos(torch.arange(t)).unsqueeze(0))
    levels, cls_rows = [x[0]], []
    for layer in m.layers:
        d = x.shape[-1] // layer.heads
        split = lambda y: y.view(1, t, layer.heads, d).permute(0, 2, 1, 3)
        q, k, v = split(layer.q(x)), split(layer.k(x)), split(layer.v(x))
        probs = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d), -1)
        cls_rows.append(probs[0, :, 0, :])
        ctx = (probs @ v).permute(0, 2, 1, 3).reshape(1, t, -1)
        h = layer.ln1(layer.o(ctx) + x)
        x = layer.ln2(layer.out(F.gelu(layer.i(h))) + h)
        levels.append(x[0])
    return torch.stack(levels), torch.stack(cls_rows)


def features(rows, attention=None):
    feats, labels = [], []
    with torch.no_grad():
        for sentence, label in rows:
            ids = torch.tensor([[101] + tok.ids(sentence)[:126] + [102]])
            levels, cls_rows = encode(ids)
            body = slice(1, -1) if ids.shape[1] > 2 else slice(0, 1)
            mean = [lv[body].mean(0) for lv in levels] + [m.word(ids)[0, body].mean(0)]
            feats.append(torch.stack(mean + [levels[-1][0]]))
            labels.append(label)
            if attention is not None and ids.shape[1] > 2:
                p = cls_rows
                entropy = -(p * torch.log(p + 1e-12)).sum(-1) / math.log(p.shape[-1])
                attention.append(torch.stack([entropy, p[..., :3].sum(-1)]))
    return torch.stack(feats), torch.tensor(labels)


def probe(xt, yt, xd, yd):
    mu, sd = xt.mean(0), xt.std(0) + 1e-6
    xt, xd = (xt - mu) / sd, (xd - mu) / sd
    best = 0.0
    for wd in (1e-3, 1e-2, 1e-1):
        w = torch.zeros(xt.shape[1], 2, requires_grad=True)
        b = torch.zeros(2, requires_grad=True)
        opt = torch.optim.LBFGS([w, b], max_iter=200)

        def closure():
            opt.zero_grad()
            loss = F.cross_entropy(xt @ w + b, yt) + wd * (w ** 2).sum()
            loss.backward()
            return loss

        opt.step(closure)
        best = max(best, ((xd @ w + b).argmax(1) == yd).float().mean().item())
    return best


sst2 = os.path.join(a.data, "glue", "SST-2")
attention = []
xt, yt = features(read_tsv(os.path.join(sst2, "train.tsv"), a.train))
xd, yd = features(read_tsv(os.path.join(sst2, "dev.tsv"), None), attention)
att = torch.stack(attention).mean(0)  # [2, layers, heads]
print(f"model {a.model}; probe fitted on {len(yt)} SST-2 training sentences, scored on {len(yd)} dev sentences")
for layer in range(att.shape[1]):
    print(f"layer {layer} [CLS] attention: normalised entropy per head "
          + " ".join(f"{v:.3f}" for v in att[0, layer].tolist())
          + "; mass on the first 3 positions " + " ".join(f"{v:.3f}" for v in att[1, layer].tolist()))
names = ["embeddings (after LayerNorm)"] + [f"layer {i}" for i in range(len(m.layers))] + ["raw word embeddings"]
for i, name in enumerate(names):
    print(f"mean-pooled {name:30s} dev accuracy {probe(xt[:, i], yt, xd[:, i], yd):.4f}")
print(f"last layer [CLS]{'':25s} dev accuracy {probe(xt[:, -1], yt, xd[:, -1], yd):.4f}")
