#!/usr/bin/env bash
# One command for whatever GPU is present: the device probe, the op table's forward and gradient
# tests with the GEMM kernel tests, the tuner, and the bench with PyTorch as a peer where
# python3 has torch; writes bench/results/<device>.md and .json.
#   npm run check:gpu [-- --quick]   (--quick: a smoke test that also suits lavapipe: fewer tests,
#   a quick tune, the matmul bench alone; saved as <device>-quick)
set -euo pipefail
cd "$(dirname "$0")/.."

quick=""
case "${1:-}" in
  --help|-h)
    sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'
    exit 0 ;;
  --quick) quick="--quick" ;;
  "") ;;
  *) echo "check:gpu: unknown option '$1' (try --help)" >&2; exit 2 ;;
esac

echo "== device"
export DAWNET_QUIET=1
npm run -s device -- --json
device=$(npm run -s device -- --slug | tail -n 1)
name="$device${quick:+-quick}"

echo "== op table forward and gradient tests, GEMM kernels"
# The GEMM kernels are a GPU's default; DAWNET_KERNELS=gemm makes lavapipe's --quick run test them too.
if [[ -n $quick ]]; then
  DAWNET_KERNELS=gemm npx vitest run test/ops.test.ts test/conv-gemm.test.ts test/matmul.test.ts -t 'conv|[mM]atmul|adapter'
else
  DAWNET_KERNELS=gemm npx vitest run test/ops.test.ts test/conv-gemm.test.ts test/matmul.test.ts test/tuning.test.ts
fi

echo "== tuner"
npm run -s tune -- $quick

echo "== bench"
peer=()
if python3 -c 'import torch' 2>/dev/null; then
  pytorch=$(mktemp -t dawnet-pytorch.XXXXXX.jsonl)
  python3 bench/pytorch_bench.py $quick > "$pytorch"
  peer=(--pytorch "$pytorch")
else
  echo "check:gpu: no python3 with torch here: the bench's PyTorch column is skipped"
fi
# --quick times the matmul family alone: the whole suite takes most of an hour on lavapipe.
if [[ -n $quick ]]; then
  npm run -s bench:matmul -- --quick "${peer[@]}" --save "$name"
else
  npm run -s bench -- "${peer[@]}" --save "$name"
fi
echo "check:gpu: wrote bench/results/$name.md and .json"
