#!/usr/bin/env bash
# Creates .venv beside the repository and installs sparsebench into it (idempotent).
# torch is pinned to 2.13.0: that exact release is a CPU build; an open range pulls a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check "torch==2.13.0" 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[test,parquet]" 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -c "import sparsebench, torch; print(f'sparsebench {sparsebench.__version__} ready (torch {torch.__version__})')"
