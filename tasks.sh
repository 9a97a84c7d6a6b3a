#!/usr/bin/env bash
# The project's two jobs, each setting everything up first (idempotent):
#   bash tasks.sh demo   -> install, then run the main job (quick preset) into runs/demo
#   bash tasks.sh test   -> install, then unit tests + nbval over notebooks/ in quick mode
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
VENV=${VENV:-.venv}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}   # install torch first: an open range would pull a multi-GB CUDA build
# Busy-waiting OpenMP threads make torch up to 10x slower on a shared 2-core machine.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}

setup() {
  [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
  "$VENV/bin/python" -c "import torch" 2>/dev/null || "$VENV/bin/pip" install -q "$TORCH_SPEC"
  "$VENV/bin/pip" install -q -e ".[test]"
}

case "${1:-}" in
  demo)
    setup
    "$VENV/bin/gancomp-lite" run --preset quick --out runs/demo --seed 0
    ;;
  test)
    setup
    "$VENV/bin/python" -m nbstripout --verify notebooks/*.ipynb
    GANCOMP_QUICK=1 OMP_NUM_THREADS=2 "$VENV/bin/python" -m pytest -q tests
    GANCOMP_QUICK=1 OMP_NUM_THREADS=2 "$VENV/bin/python" -m pytest -q -p no:cacheprovider \
      --nbval-lax --nbval-current-env --nbval-cell-timeout=600 notebooks/
    ;;
  *)
    echo "usage: bash tasks.sh demo|test" >&2
    exit 2
    ;;
esac
