#!/usr/bin/python3
"""Plain-PyTorch masked-language-model training on the real corpus: an independent check of
`octet pretrain`'s loss curve (docs/training.md, "Why the loss plateaus"). bench/pytorch_pretrain.py's
model (post-LN BERT, Hugging Face init), its own masking (15%; 80/10/10), batching, AdamW (BERT's
decay groups, betas 0.9/0.98, eps 1e-6), linear warm-up (6%) and decay, clipping at 1.0, dropout
0.1, one thread; trains on the first ~3 M tokens of bbc_news + enwiki2015_000 and prints the
held-out loss (its last 256 sequences) every 200 steps.

  /usr/bin/python3 scripts/pytorch_mlm_reference.py BATCH STEPS LR [--data $OCTET_DATA]
"""
import os
import sys, gzip, math, time, random
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, 'bench')); sys.path.insert(0, os.path.join(REPO, 'scripts'))
DATA = sys.argv[sys.argv.index('--data') + 1] if '--data' in sys.argv else os.environ.get('OCTET_DATA', os.path.join(REPO, '..', 'shared', 'data'))
import torch, torch.nn.functional as F
from pytorch_pretrain import MaskedLM
from tokenizer_reference import Tokenizer
torch.set_num_threads(1); torch.manual_seed(42)
bs, L, steps, lr, warm = int(sys.argv[1]), 128, int(sys.argv[2]), float(sys.argv[3]), 0.06
tok = Tokenizer(os.path.join(DATA, 'vocab', 'vocab.txt'))
t0 = time.time(); stream = []
for line in gzip.open(os.path.join(DATA, 'corpus', 'bbc_news.txt.gz'), 'rt'):
    stream += tok.ids(line) + [102]
for line in gzip.open(os.path.join(DATA, 'corpus', 'enwiki2015_000.txt.gz'), 'rt'):
    stream += tok.ids(line) + [102]
    if len(stream) > 3_000_000: break
seqs = torch.tensor([[101] + stream[i:i + L - 2] + [102] for i in range(0, len(stream) - L + 2, L - 2)])
ev, tr = seqs[-256:], seqs[:-256]
print(f'{len(stream)} tokens, {len(tr)} train sequences, tokenized in {time.time()-t0:.0f} s', flush=True)
m = MaskedLM(30522, 256, 4, 4, 1024, 512, p=0.1)
decay = [p for n, p in m.named_parameters() if not (n.endswith('bias') or 'ln' in n)]
nodecay = [p for n, p in m.named_parameters() if n.endswith('bias') or 'ln' in n]
opt = torch.optim.AdamW([{'params': decay, 'weight_decay': 0.01}, {'params': nodecay, 'weight_decay': 0.0}], lr=lr, betas=(0.9, 0.98), eps=1e-6)
w = int(warm * steps)
sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: s / max(1, w) if s < w else max(0.0, (steps - s) / max(1, steps - w)))
g = torch.Generator().manual_seed(7)
def mask(x):
    x = x.clone(); special = (x == 101) | (x == 102)
    sel = (torch.rand(x.shape, generator=g) < 0.15) & ~special
    labels = x[sel].clone(); r = torch.rand(labels.shape, generator=g)
    new = labels.clone(); new[r < 0.8] = 103
    rnd = (r >= 0.8) & (r < 0.9); new[rnd] = torch.randint(999, 30522, (int(rnd.sum()),), generator=g)
    x[sel] = new
    return x, sel.view(-1).nonzero().squeeze(1), labels
def evaluate():
    m.eval(); tot = 0; n = 0
    with torch.no_grad():
        for i in range(0, 256, 64):
            x, pos, lab = mask(ev[i:i + 64]); lo = m(x, pos)
            tot += F.cross_entropy(lo, lab, reduction='sum').item(); n += len(lab)
    m.train(); return tot / n
perm = torch.randperm(len(tr), generator=g); k = 0
for step in range(1, steps + 1):
    if k + bs > len(perm): perm = torch.randperm(len(tr), generator=g); k = 0
    x, pos, lab = mask(tr[perm[k:k + bs]]); k += bs
    loss = F.cross_entropy(m(x, pos), lab)
    opt.zero_grad(); loss.backward(); torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0); opt.step(); sched.step()
    if step % 200 == 0: print(f'step {step} train {loss.item():.3f} held-out {evaluate():.4f} {time.time()-t0:.0f}s', flush=True)
