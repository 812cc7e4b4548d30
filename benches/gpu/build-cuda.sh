#!/usr/bin/env bash
# Builds the `gpu-check` harness with Burn's CUDA backend on this machine (no GPU and no CUDA
# toolkit needed: kernels are compiled at run time), strips it and compresses it so it can
# be carried to an NVIDIA machine and run there by benches/gpu/run.sh.
#
#   bash benches/gpu/setup-llvm.sh     # once per machine, as root (offline LLVM for cubecl)
#   bash benches/gpu/build-cuda.sh     # -> benches/gpu/dist/gpu-check-cuda.xz
#   STORYTELLER_CUDA_FEATURES=cuda,fusion,autotune bash benches/gpu/build-cuda.sh
#                                      # -> benches/gpu/dist/gpu-check-cuda-fusion.xz
#
# STORYTELLER_CUDA_FEATURES overrides the cargo features (default: cuda,wgpu,autotune —
# autotune is what burn-cuda enables by default, without it Burn picks fixed kernels; wgpu
# lets the same binary be checked here on lavapipe with `--device wgpu`).
# A cold build takes about 30 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/../.."

sentinel="${XDG_DATA_HOME:-$HOME/.local/share}/tracel/tracel-llvm-23.1.0-4/.tracel-llvm-installed"
if [ ! -e "$sentinel" ]; then
    echo "error: cubecl's LLVM is not set up; run benches/gpu/setup-llvm.sh first (as root)" >&2
    exit 1
fi

features="${STORYTELLER_CUDA_FEATURES:-cuda,wgpu,autotune}"
# The binary's name says whether it fuses kernels: run.sh times both when both are there.
name=gpu-check-cuda
case ",$features," in *,fusion,*) name=gpu-check-cuda-fusion ;; esac
start=$(date +%s)
cargo build --release -p storyteller-benches --features "$features" --bin gpu-check
built="${CARGO_TARGET_DIR:-target}/release/gpu-check"

dist=benches/gpu/dist
mkdir -p "$dist"
cp "$built" "$dist/$name"
before=$(stat -c %s "$dist/$name")
strip "$dist/$name"
stripped=$(stat -c %s "$dist/$name")
xz -T0 -6 -f "$dist/$name"
compressed=$(stat -c %s "$dist/$name.xz")
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
echo "built in $(( $(date +%s) - start )) s with features $features"
echo "$name: $(mib "$before"), stripped $(mib "$stripped"), xz $(mib "$compressed") -> $dist/$name.xz"
if [ "$compressed" -ge $((64 * 1048576)) ]; then
    echo "error: the compressed binary is over 64 MiB" >&2
    exit 1
fi
