#!/usr/bin/python3
"""Does a pretrained BERT's masked-language-model head use word order? (docs/training.md, "Why
the loss plateaus"). Loads an Octet / Hugging Face BertForMaskedLM directory (4 layers, hidden
256, 4 heads, FFN 1024: bench/pytorch_pretrain.py's PyTorch model) and prints the MLM cross-entropy
and accuracy on 256 sequences of 128 tokens from the last 40 documents of the corpus, with 15% of
tokens replaced by [MASK] (seeded): on the text as is, with the unmasked tokens of each sequence
shuffled, and with every token masked. Equal first two figures mean the model ignores word order.

  /usr/bin/python3 scripts/mlm_context_probe.py MODEL_DIR [--data $OCTET_DATA]
"""
import os
import sys, gzip
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, 'bench')); sys.path.insert(0, os.path.join(REPO, 'scripts'))
import torch, torch.nn.functional as F
from pytorch_pretrain import load_masked_lm
from tokenizer_reference import Tokenizer
torch.set_num_threads(1)
model_dir = sys.argv[1]
DATA = sys.argv[sys.argv.index('--data') + 1] if '--data' in sys.argv else os.environ.get('OCTET_DATA', os.path.join(REPO, '..', 'shared', 'data'))
m = load_masked_lm(model_dir)
tok = Tokenizer(os.path.join(DATA, 'vocab', 'vocab.txt'))
lines = gzip.open(os.path.join(DATA, 'corpus', 'enwiki2015_002.txt.gz'), 'rt').read().splitlines()[-40:]
stream = []
for l in lines: stream += tok.ids(l) + [102]
L = 128; seqs = [[101] + stream[i:i + 126] + [102] for i in range(0, len(stream) - 126, 126)][:256]
ids = torch.tensor(seqs)
g = torch.Generator().manual_seed(0)
sel = (torch.rand(ids.shape, generator=g) < 0.15); sel[:, 0] = False; sel[:, -1] = False
labels = ids[sel]
def loss_of(x):
    with torch.no_grad():
        pos = sel.view(-1).nonzero().squeeze(1)
        lo = m(x, pos); return F.cross_entropy(lo, labels).item(), (lo.argmax(1) == labels).float().mean().item()
x = ids.clone(); x[sel] = 103
print('intact', loss_of(x))
xs = x.clone()
for r in range(xs.shape[0]):
    keep = (~sel[r]).nonzero().squeeze(1)[1:-1]
    xs[r, keep] = xs[r, keep[torch.randperm(len(keep), generator=g)]]
print('context shuffled', loss_of(xs))
xn = x.clone(); xn[:, 1:-1] = 103
print('no context (all [MASK])', loss_of(xn))
print('masked tokens', len(labels))
