#!/usr/bin/env bash
# Prepares this machine to build `--features cuda` offline. Run once per machine, as root.
#
#   bash benches/gpu/setup-llvm.sh
#
# Why: burn 0.22.1's `cuda` feature pulls cubecl-cuda 0.11, which compiles kernels through
# cubecl-llvm; its dependency tracel-llvm-bundler downloads a prebuilt LLVM 23.1 from GitHub
# in its build script unless it finds the sentinel file `.tracel-llvm-installed` in
# `${XDG_DATA_HOME:-~/.local/share}/tracel/tracel-llvm-23.1.0-4/`. Without network the build
# fails. This installs Debian's LLVM 22 instead and makes that directory point at it:
#   - bin/llvm-config forwards to Debian's llvm-config 22, rewriting the absolute `.so`
#     paths of `--system-libs` into `-lNAME` (the bundler cannot link absolute paths);
#   - the sentinel tells the build script that LLVM is installed.
# LLVM is linked statically into the binary (about 200 MB before stripping); the GPU
# machine needs only the NVIDIA driver (libcuda) and, for exp/tanh kernels, the CUDA
# libdevice bitcode.
set -euo pipefail

llvm=/usr/lib/llvm-22/bin/llvm-config
if [ ! -x "$llvm" ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq llvm-22-dev libpolly-22-dev libzstd-dev
fi

dir="${XDG_DATA_HOME:-$HOME/.local/share}/tracel/tracel-llvm-23.1.0-4"
mkdir -p "$dir/bin"
cat > "$dir/bin/llvm-config" <<'WRAPPER'
#!/bin/sh
# Debian's LLVM 22 standing in for tracel's LLVM 23 bundle (benches/gpu/setup-llvm.sh).
out=$(/usr/lib/llvm-22/bin/llvm-config "$@") || exit $?
printf '%s\n' "$out" | sed -e 's#/[^ ]*/lib\([A-Za-z0-9_+-]*\)\.so[.0-9]*#-l\1#g'
WRAPPER
chmod +x "$dir/bin/llvm-config"
touch "$dir/.tracel-llvm-installed"
echo "cubecl's LLVM: $("$dir/bin/llvm-config" --version) at $dir"
