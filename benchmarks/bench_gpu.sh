#!/usr/bin/env bash
# Table 4 on a GPU: the shipped teachers against their compressed students, and the full-size
# settings, measured with `gancomp-lite bench --device cuda` (CUDA-synchronised timings, peak
# activation memory from max_memory_allocated). Every table names the card it ran on.
#
#   bash benchmarks/bench_gpu.sh [OUT_DIR]     # default: $OUT or runs/bench_gpu
#
# Prepared for the lent GPU machine (one run; its time on a GPU is not measured yet); on a CPU-only machine it
# stops at once with a one-line message. The figures go into docs/benchmark.md by hand, with the
# card's name; where no GPU was measured, docs/benchmark.md says so.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${1:-${OUT:-runs/bench_gpu}}
PY=${PYTHON:-python}
mkdir -p "$OUT_DIR"
DEVICE=${DEVICE:-cuda}   # DEVICE=cpu WARMUP=0 RUNS=1 checks the script itself on a CPU machine
[ "$DEVICE" = cpu ] || "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'bench_gpu.sh: no CUDA device here')"
BACKENDS=${BACKENDS:-eager,channels_last,torchscript,compile}
WARMUP=${WARMUP:-100}
RUNS=${RUNS:-100}
WEIGHTS=gancomp_lite/weights

bench() {   # NAME then the bench arguments
  local name=$1; shift
  "$PY" -m gancomp_lite.cli bench "$@" --device "$DEVICE" --backend "$BACKENDS" --warmup "$WARMUP" --runs "$RUNS" \
    --csv "$OUT_DIR/$name.csv" --markdown | tee "$OUT_DIR/$name.md"
}

for arch in tpgan crgan pim resnet9; do
  bench "$arch-quick" --teacher "$arch" --student "$WEIGHTS/$arch-quick-compressed.pt"
done
# The official TP-GAN at 128 px against a config with 9.9x fewer MACs (benchmarks/bench_latency.py, tpgan-full).
bench tpgan-full --teacher tpgan --size 128 --config 16_16_40_80_152_152_80_40_16_232_128_64_24_64_16_16_40_80_152
# GAN Compression's own setting: ResNet-9 (ngf 64, 256 px) against its released mobile student.
bench resnet9-256 --teacher resnet9 --size 256 --knob ngf=64 --config 16_16_32_16_32_32_16_16 \
  --student-arch mobile-resnet9
[ "$DEVICE" = cpu ] || nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$OUT_DIR/gpu.csv"
