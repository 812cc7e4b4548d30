#!/usr/bin/env bash
# On an NVIDIA machine, from a copy of the repository holding benches/gpu/dist/ (made by
# build-cuda.sh): the PyTorch reference (benches/torch_reference.py), then parity with the
# CPU and the benchmarks of each gpu-check binary there (plain, and with kernel fusion when it
# was built), on the same card in the same run:
#
#   bash benches/gpu/run.sh
#
# Writes to $STORYTELLER_GPU_OUT (default benches/results/gpu-<UTC time>/):
#   machine.txt             GPU, driver, CUDA libraries, date
#   torch.jsonl             what benches/torch_reference.py printed (another script:
#                           $STORYTELLER_TORCH_REFERENCE, or the older $STORYTELLER_ANCHOR;
#                           extra flags for it: $STORYTELLER_TORCH_ARGS, e.g. --quick)
#   gpu-check.jsonl         every result of the plain binary, one JSON line each
#   gpu-check-fusion.jsonl  the same for the fusion binary
#   summary.txt             the tables: ours, PyTorch, ratio; warm-up times
#   profile.txt.xz          cubecl's kernel log (names, times, compilations) of a small search
#   run.log                 everything printed
#
# The device time is short, so the run keeps to a budget ($STORYTELLER_GPU_BUDGET seconds,
# default 560, under the device tool's 10-minute command limit): stages go in order of
# importance, each under its own time limit, cut to what is left of the budget, and a stage
# that no longer fits is skipped and says so. A stage cut short keeps the rows it wrote. The
# exit status is non-zero when a parity check failed or a stage did not finish.
# To try the script without a GPU: STORYTELLER_GPU_DEVICE=cpu STORYTELLER_GPU_ARGS=--tiny
# STORYTELLER_TORCH_ARGS=--tiny.
set -uo pipefail
cd "$(dirname "$0")/../.."

start=$(date +%s)
budget="${STORYTELLER_GPU_BUDGET:-560}"
device="${STORYTELLER_GPU_DEVICE:-cuda}"
read -ra extra <<< "${STORYTELLER_GPU_ARGS:-}"
out="${STORYTELLER_GPU_OUT:-benches/results/gpu-$(date -u +%Y%m%d-%H%M)}"
mkdir -p "$out"
exec > >(tee -a "$out/run.log") 2>&1

# NVRTC and libdevice: the toolkit's, else the ones PyTorch's wheels bring.
python="${STORYTELLER_PYTHON:-python3}"
LD_LIBRARY_PATH="${LD_LIBRARY_PATH:-}"
for dir in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib \
    $("$python" -c 'import nvidia, os; print(" ".join(p for d in nvidia.__path__ for p in [os.path.join(d, s, "lib") for s in os.listdir(d)] if os.path.isdir(p)))' 2>/dev/null); do
    if [ -d "$dir" ]; then LD_LIBRARY_PATH="$dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"; fi
done
export LD_LIBRARY_PATH

bins=()
for name in gpu-check-cuda gpu-check-cuda-fusion; do
    bin="benches/gpu/dist/$name"
    # Unpack when there is no binary yet or the .xz is newer (a rebuild since the last run).
    if [ -e "$bin.xz" ] && { [ ! -x "$bin" ] || [ "$bin.xz" -nt "$bin" ]; }; then
        xz -dkf "$bin.xz" && chmod +x "$bin"
    fi
    [ -x "$bin" ] && bins+=("$bin")
done
if [ ${#bins[@]} -eq 0 ]; then
    echo "error: no benches/gpu/dist/gpu-check-cuda(.xz); run build-cuda.sh" >&2
    exit 1
fi

{
    date -u
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader 2>&1
    echo "binaries: ${bins[*]}"
    echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
    for lib in libcuda.so.1 libnvrtc.so; do
        echo "$lib: $(ldconfig -p | grep -m1 "$lib" || echo "not in ldconfig")"
    done
    nproc
} | tee "$out/machine.txt"

left() { echo $((budget - ($(date +%s) - start))); }

# timed LIMIT NAME COMMAND...: runs COMMAND under min(LIMIT, what is left - 10 s).
timed() {
    local limit=$1 name=$2
    shift 2
    local room=$(($(left) - 10))
    [ "$room" -lt "$limit" ] && limit=$room
    if [ "$limit" -lt 15 ]; then
        echo "== $name: skipped, $(left) s of the budget left" >&2
        echo "skipped: $name" >> "$out/machine.txt"
        return 0
    fi
    echo "== $name (limit $limit s, $(left) s left)" >&2
    local t0=$(date +%s)
    timeout "$limit" "$@"
    local rc=$?
    echo "== $name: exit $rc after $(($(date +%s) - t0)) s" >&2
    [ $rc -eq 124 ] && echo "timed out after $limit s: $name" >> "$out/machine.txt"
    return $rc
}

# PyTorch's rates for the same workloads, which gpu-check --anchor puts beside ours.
anchor_flags=()
script="${STORYTELLER_TORCH_REFERENCE:-${STORYTELLER_ANCHOR:-benches/torch_reference.py}}"
read -ra torch_args <<< "${STORYTELLER_TORCH_ARGS:-}"
[ "$device" = cpu ] && torch_args=(--cpu "${torch_args[@]}")
if [ -e "$script" ] && "$python" -c 'import torch, torchvision' 2>/dev/null; then
    PYTHONUNBUFFERED=1 timed 150 "PyTorch reference ($script${torch_args[*]:+ ${torch_args[*]}})" \
        "$python" "$script" "${torch_args[@]}" > "$out/torch.jsonl"
    anchor_flags=(--anchor "$out/torch.jsonl")
else
    echo "no PyTorch reference: $script or torch/torchvision missing" | tee -a "$out/machine.txt"
fi

status=0
# stage BIN LIMIT ARGS...: one gpu-check process, rows appended to that binary's jsonl.
stage() {
    local bin=$1 limit=$2
    shift 2
    local rows="$out/$(basename "$bin" | sed 's/-cuda//').jsonl"
    timed "$limit" "$(basename "$bin") $*" "$bin" --device "$device" "${extra[@]}" --out "$rows" "$@"
    local rc=$?
    [ $rc -eq 124 ] && echo "{\"part\": \"timeout\", \"stage\": \"$*\", \"limit_s\": $limit}" >> "$rows"
    [ $rc -ne 0 ] && status=1
    return 0
}

plain=${bins[0]}
fused=${bins[1]:-$plain}
# Order and limits from the first run on an H200 (benches/results/gpu-20261127-h200): first
# calls cost 25-60 s per encoder batch size (autotune), 7-19 s per search, 40-80 s per train
# batch size; the fusion build was 2.9x faster on the encoder and 10% slower on search.
stage "$fused" 150 --parts parity
stage "$plain" 90 --parts search
stage "$fused" 150 --parts encoder --precisions f32 --encoder-batches 256,1,32,128
stage "$fused" 180 --parts train
stage "$fused" 150 --parts encoder --precisions f16,bf16 --encoder-batches 256,32
[ "$fused" != "$plain" ] && stage "$fused" 120 --parts search
[ "$fused" != "$plain" ] && stage "$plain" 150 --parts parity

# A kernel-level look at the step loop: every launch with its time, and each compilation.
profiled=$plain
CUBECL_DEBUG_LOG="$out/profile.txt" CUBECL_DEBUG_OPTION=profile \
    timed 40 "profile: $(basename "$profiled") greedy and beam-3 at batch 1" \
    "$profiled" --device "$device" "${extra[@]}" --parts search --search-batches 1 --warm 2 --reps 3 > /dev/null
[ -e "$out/profile.txt" ] && xz -T0 -f "$out/profile.txt"

{
    for rows in "$out"/gpu-check*.jsonl; do
        [ -e "$rows" ] || continue
        echo "== $(basename "$rows")"
        "$plain" --summary "$rows" "${anchor_flags[@]}"
    done
} | tee "$out/summary.txt"
echo "== run.sh finished in $(($(date +%s) - start)) s, status $status"
exit $status
