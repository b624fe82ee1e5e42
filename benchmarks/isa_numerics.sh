#!/usr/bin/env bash
# Does the ISA PoCL compiles for change CL's numerics? The default MLP run, seed 0, on CL from empty caches,
# with PoCL targeting this CPU, an AVX2 + FMA CPU (haswell) and a baseline x86-64 (SSE2, no FMA); prints
# each run's accuracy and final-weights SHA-256. Equal hashes: the same bits.
#   bash benchmarks/isa_numerics.sh [OUT_FOLDER]
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-$(mktemp -d)}"
run() {
  local tag=$1; shift
  local dir="$out/$tag"; rm -rf "$dir"; mkdir -p "$dir"
  env "$@" CACHEDB="$dir/tinygrad.db" POCL_CACHE_DIR="$dir/pocl" \
    .venv/bin/mnist-bench mlp --device CL --out-dir "$dir/out" --format json > "$dir/record.json"
  python3 -c "import json,sys; m=json.load(open(sys.argv[1]))['metrics']; print(sys.argv[2], m['accuracy'], m['weights_sha256'])" \
    "$dir/record.json" "$tag"
}
run native
run avx2-fma POCL_LLVM_CPU_NAME=haswell POCL_KERNELLIB_NAME=avx2
run x86-64 POCL_LLVM_CPU_NAME=x86-64 POCL_KERNELLIB_NAME=sse2
