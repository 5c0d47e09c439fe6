#!/usr/bin/env bash
# Writes the PyTorch reference fixtures for the golden tests into DIR (default build/golden).
# Runs scripts/make_golden.py with Debian's python3 (/usr/bin/python3 sees python3-torch).
set -euo pipefail
out=${1:-build/golden}
here=$(cd "$(dirname "$0")" && pwd)
if ! /usr/bin/python3 -c "import torch" 2>/dev/null; then
  echo "make_golden: Debian's python3-torch is missing (run scripts/install_deps.sh)" >&2
  exit 1
fi
if [ -f "$out/DONE" ] && [ "$out/DONE" -nt "$here/make_golden.py" ] &&
   [ "$out/DONE" -nt "$here/tokenizer_reference.py" ] &&
   [ "$out/DONE" -nt "$here/ibert_reference.py" ]; then
  echo "make_golden: $out is up to date"
  exit 0
fi
rm -rf "$out"
mkdir -p "$out"
# WordPiece reference (standard library only): GLUE dev sets and a per-code-point probe.
/usr/bin/python3 "$here/tokenizer_reference.py" --golden "$out"
/usr/bin/python3 "$here/make_golden.py" --out "$out"
# I-BERT integer-only kernels: float64 restatement of the reference arithmetic (numpy only).
/usr/bin/python3 "$here/ibert_reference.py" --out "$out"
touch "$out/DONE"
