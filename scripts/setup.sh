#!/usr/bin/env bash
# Creates .venv and installs mirnet-hf into it. `bash scripts/setup.sh test` adds the test tools.
# torch 2.13.0 (CPU) is installed first: a plain `torch` requirement could pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet "torch==2.13.0"
if [ -n "$extras" ]; then
  .venv/bin/python -m pip install --quiet -e ".[$extras]"
  if [ "$extras" = "test" ]; then
    # spandrel (chaiNNer's and ComfyUI's model loader) checks our official-format export. It asks for
    # torchvision, which only two of its architectures use; PyPI's torchvision is built for CUDA torch and,
    # beside this CPU torch, breaks transformers' imports. So: without dependencies (tests/spandrel_loader.py).
    .venv/bin/python -m pip install --quiet --no-deps "spandrel==0.4.2" "spandrel_extra_arches==0.2.0"
  fi
else
  .venv/bin/python -m pip install --quiet -e .
fi
