#!/usr/bin/env bash
# Creates .venv beside the repository and installs sparsebench into it (idempotent).
# The ray extra is there so that CI runs the Ray executor's tests (about 15 s and 240 MB more).
# torch is pinned to 2.13.0: that exact release is a CPU build; an open range pulls a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check "torch==2.13.0" 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[test,parquet,ray]" 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -c "import sparsebench, torch; print(f'sparsebench {sparsebench.__version__} ready (torch {torch.__version__})')"
