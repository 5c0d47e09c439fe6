#!/usr/bin/python3
"""Plain-PyTorch masked-language-model training on the real corpus: an independent check of
`octet pretrain` and a quick bench for initialisations (docs/training.md, "Why the loss plateaus"
and "Local attention initialisation"). bench/pytorch_pretrain.py's model (post-LN BERT, Hugging
Face init, 4 layers, hidden 256, 4 heads, FFN 1024), its own masking (15%; 80/10/10), batching,
AdamW (BERT's decay groups, betas 0.9/0.98, eps 1e-6), linear warm-up (6%) and decay, clipping at
1.0, one thread. Trains on the first tokens of bbc_news + enwiki2015_000 (enough for the run, at
most --max-tokens) and holds out the last 512 sequences. Every 200 steps it prints the held-out
MLM loss with 15% of tokens masked, the same with the unmasked tokens of each sequence shuffled,
and their gap: a model that ignores word order has a gap of 0.

--init: normal (Hugging Face's), sinusoidal (position table from Vaswani et al.'s sinusoids,
std 0.02), local (`octet pretrain --position-init local`, src/train/bert_torch.h: a Fourier-band
position table and query/key weights with which head h starts attending to offset -1, +1, -2, +2,
gain --gain); the same formulas as the C++ trainer.

  /usr/bin/python3 scripts/pytorch_mlm_reference.py --batch 16 --steps 2400 --lr 5e-4 \
      --dropout 0 --init local [--gain 2] [--seq-len 128] [--data $OCTET_DATA]

(Session 17's figures in docs/training.md came from this script's first version, commit
553c453, which evaluated with 256 sequences and without the shuffled figure.)
"""
import argparse, gzip, math, os, sys, time
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, 'bench')); sys.path.insert(0, os.path.join(REPO, 'scripts'))
import torch, torch.nn.functional as F
from pytorch_pretrain import MaskedLM
from tokenizer_reference import Tokenizer

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument('--batch', type=int, default=16)
ap.add_argument('--seq-len', type=int, default=128)
ap.add_argument('--steps', type=int, default=2400)
ap.add_argument('--lr', type=float, default=5e-4)
ap.add_argument('--dropout', type=float, default=0.1)
ap.add_argument('--init', choices=['normal', 'sinusoidal', 'local'], default='normal')
ap.add_argument('--gain', type=float, default=2.0)
ap.add_argument('--max-tokens', type=int, default=12_000_000)
ap.add_argument('--data', default=os.environ.get('OCTET_DATA', os.path.join(REPO, '..', 'shared', 'data')))
a = ap.parse_args()
torch.set_num_threads(1); torch.manual_seed(42)
bs, L, steps = a.batch, a.seq_len, a.steps
tok = Tokenizer(os.path.join(a.data, 'vocab', 'vocab.txt'))
t0 = time.time(); stream = []
need = min(bs * L * steps + 300 * L, a.max_tokens)
for line in gzip.open(os.path.join(a.data, 'corpus', 'bbc_news.txt.gz'), 'rt'):
    stream += tok.ids(line) + [102]
for line in gzip.open(os.path.join(a.data, 'corpus', 'enwiki2015_000.txt.gz'), 'rt'):
    stream += tok.ids(line) + [102]
    if len(stream) > need: break
seqs = torch.tensor([[101] + stream[i:i + L - 2] + [102] for i in range(0, len(stream) - L + 2, L - 2)])
ev, tr = seqs[-512:], seqs[:-512]
print(f'{len(stream)} tokens, {len(tr)} train sequences, tokenized in {time.time()-t0:.0f} s', flush=True)

H, heads, d = 256, 4, 64
m = MaskedLM(30522, H, 4, heads, 1024, 512, p=a.dropout)
pos = torch.arange(512, dtype=torch.float64).unsqueeze(1)
if a.init == 'sinusoidal':
    freq = torch.exp(torch.arange(0, H, 2, dtype=torch.float64) * (-math.log(10000.0) / H))
    tab = torch.zeros(512, H, dtype=torch.float64)
    tab[:, 0::2] = torch.sin(pos * freq); tab[:, 1::2] = torch.cos(pos * freq)
    with torch.no_grad(): m.pos.weight.copy_((tab * (0.02 / tab.std())).float())
if a.init == 'local':
    band = 2 * math.pi * torch.arange(d // 2 + 1, d + 1, dtype=torch.float64) / (2 * d)
    rest = torch.exp(torch.arange(0, H - d, 2, dtype=torch.float64) * (-math.log(10000.0) / (H - d)))
    tab = torch.zeros(512, H, dtype=torch.float64)
    tab[:, 0:d:2] = torch.sin(pos * band); tab[:, 1:d:2] = torch.cos(pos * band)
    tab[:, d::2] = torch.sin(pos * rest); tab[:, d + 1::2] = torch.cos(pos * rest)
    with torch.no_grad():
        m.pos.weight.copy_((tab * (0.02 / tab.std())).float())
        for layer in m.layers:
            for h in range(heads):
                offset = (h // 2 + 1) * (-1 if h % 2 == 0 else 1)
                for j in range(d // 2):
                    th, r, g = -float(band[j]) * offset, h * d + 2 * j, a.gain
                    layer.q.weight[r, 2 * j] += g; layer.q.weight[r + 1, 2 * j + 1] += g
                    layer.k.weight[r, 2 * j] += g * math.cos(th); layer.k.weight[r, 2 * j + 1] += g * math.sin(th)
                    layer.k.weight[r + 1, 2 * j + 1] += g * math.cos(th); layer.k.weight[r + 1, 2 * j] -= g * math.sin(th)

decay = [p for n, p in m.named_parameters() if not (n.endswith('bias') or 'ln' in n)]
nodecay = [p for n, p in m.named_parameters() if n.endswith('bias') or 'ln' in n]
opt = torch.optim.AdamW([{'params': decay, 'weight_decay': 0.01}, {'params': nodecay, 'weight_decay': 0.0}], lr=a.lr, betas=(0.9, 0.98), eps=1e-6)
w = int(0.06 * steps)
sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: s / max(1, w) if s < w else max(0.0, (steps - s) / max(1, steps - w)))
g = torch.Generator().manual_seed(7)

def mask(x, gen):
    x = x.clone(); special = (x == 101) | (x == 102)
    sel = (torch.rand(x.shape, generator=gen) < 0.15) & ~special
    labels = x[sel].clone(); r = torch.rand(labels.shape, generator=gen)
    new = labels.clone(); new[r < 0.8] = 103
    rnd = (r >= 0.8) & (r < 0.9); new[rnd] = torch.randint(999, 30522, (int(rnd.sum()),), generator=gen)
    x[sel] = new
    return x, sel, labels

def evaluate():
    """Held-out loss with every selected token [MASK]ed, then with the context shuffled."""
    m.eval(); gen = torch.Generator().manual_seed(0)
    x, sel, lab = mask(ev, gen); x[sel] = 103
    xs = x.clone()
    for r in range(xs.shape[0]):
        keep = (~sel[r]).nonzero().squeeze(1)[1:-1]
        xs[r, keep] = xs[r, keep[torch.randperm(len(keep), generator=gen)]]
    positions = sel.view(-1).nonzero().squeeze(1)
    with torch.no_grad():
        intact = F.cross_entropy(m(x, positions), lab).item()
        shuffled = F.cross_entropy(m(xs, positions), lab).item()
    m.train(); return intact, shuffled

perm = torch.randperm(len(tr), generator=g); k = 0
for step in range(1, steps + 1):
    if k + bs > len(perm): perm = torch.randperm(len(tr), generator=g); k = 0
    x, sel, lab = mask(tr[perm[k:k + bs]], g); k += bs
    loss = F.cross_entropy(m(x, sel.view(-1).nonzero().squeeze(1)), lab)
    opt.zero_grad(); loss.backward(); torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0); opt.step(); sched.step()
    if step % 200 == 0:
        i, s = evaluate()
        print(f'step {step} tokens {step*bs*L/1e6:.2f}M train {loss.item():.3f} held-out {i:.4f} '
              f'shuffled {s:.4f} gap {s-i:.4f} {time.time()-t0:.0f}s', flush=True)
