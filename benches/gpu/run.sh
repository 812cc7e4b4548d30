#!/usr/bin/env bash
# On an NVIDIA machine, from a copy of the repository holding benches/gpu/dist/ (made by
# build-cuda.sh): parity with the CPU, the benchmarks, and PyTorch's anchor on the same card
# in the same run, written to benches/results/gpu-<UTC time>/:
#
#   bash benches/gpu/run.sh
#
#   machine.txt     GPU, driver, date
#   torch.jsonl     ../shared/anchors/torch_anchor.py (skipped, with a note, without PyTorch)
#   gpu-check.jsonl every result of ours, one JSON line each (parity, encoder, search, train)
#   summary.txt     the table: ours, PyTorch, ratio; warm-up times
#
# Each stage is its own process under a time limit (STORYTELLER_STAGE_TIMEOUT seconds,
# default 240), so a slow autotune costs one stage, not the run. The exit status is
# non-zero when a parity check failed.
set -uo pipefail
cd "$(dirname "$0")/../.."

bin=benches/gpu/dist/gpu-check-cuda
if [ ! -x "$bin" ]; then
    xz -dkf "$bin.xz" && chmod +x "$bin" || { echo "error: no $bin(.xz); run build-cuda.sh" >&2; exit 1; }
fi
out="benches/results/gpu-$(date -u +%Y%m%d-%H%M)"
mkdir -p "$out"
limit="${STORYTELLER_STAGE_TIMEOUT:-240}"
{
    date -u
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1
    ls -d /usr/local/cuda*/nvvm/libdevice 2>/dev/null || echo "no CUDA libdevice found under /usr/local/cuda*"
} | tee "$out/machine.txt"

anchor_flags=()
python="${STORYTELLER_PYTHON:-python3}"
script=""
for candidate in ../shared/anchors/torch_anchor.py shared/anchors/torch_anchor.py; do
    [ -e "$candidate" ] && script="$candidate" && break
done
if [ -n "$script" ] && "$python" -c 'import torch, torchvision' 2>/dev/null; then
    echo "== PyTorch anchor ($script)"
    timeout "$((2 * limit))" "$python" "$script" > "$out/torch.jsonl"
    anchor_flags=(--anchor "$out/torch.jsonl")
else
    echo "no PyTorch anchor: torch_anchor.py or torch/torchvision missing" | tee -a "$out/machine.txt"
fi

status=0
stage() {
    echo "== gpu-check $*"
    timeout "$limit" "$bin" --device cuda --out "$out/gpu-check.jsonl" "$@"
    local rc=$?
    [ $rc -eq 124 ] && echo "{\"part\": \"timeout\", \"stage\": \"$*\", \"limit_s\": $limit}" >> "$out/gpu-check.jsonl"
    [ $rc -ne 0 ] && status=1
}
stage --parts parity
stage --parts encoder --precisions f32
stage --parts search
stage --parts train
stage --parts encoder --precisions f16,bf16
"$bin" --summary "$out/gpu-check.jsonl" "${anchor_flags[@]}" | tee "$out/summary.txt"
exit $status
