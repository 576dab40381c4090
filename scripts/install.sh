#!/usr/bin/env bash
# Creates the project's virtual environment from the repo's own files.
# Order matters: torch first (the CPU wheel; otherwise a dependency pulls a
# multi-GB CUDA build), then the package, then musicnn's stack with --no-deps
# because musicnn pins numpy<1.17 and tf-keras would pull full tensorflow.
set -euo pipefail
venv=${1:-.venv}
python=${PYTHON:-python3.11}
# pip warns once per package about this machine's local index folders; hide only that line.
quiet() { "$@" 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }; }

[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
pip="$venv/bin/python -m pip"
quiet $pip install -q --upgrade pip
quiet $pip install -q "torch==2.13.0"
# constraints.txt: the exact versions of the libraries the results and CI's checks depend on.
quiet $pip install -q -c constraints.txt -e ".[dev,docs,cluster]"
quiet $pip install -q "tensorflow-cpu==2.21.0"
quiet $pip install -q --no-deps "tf-keras==2.21.0" "musicnn==0.1.0"
# librosa compiles its numba kernels into site-packages (cache=True) when its feature modules are
# first loaded, about 25 s; processes doing that at once into an empty cache can segfault
# (numba/numba#4807; seen in CI: `pytest -n 2` on a fresh venv, extract@chroma exited 139).
# Compile them here, once, alone: later processes only load them.
"$venv/bin/python" -c "import librosa; librosa.feature.mfcc"
"$venv/bin/python" -c "import torch, faiss, rs_metrics, musicnn, tf_keras, transformers, dvc, audiorec" \
  || { echo "install.sh: the environment in $venv is incomplete (see the pip output above)" >&2; exit 1; }
