#!/usr/bin/env bash
# The GPU measurements of docs/benchmarks.md in one run, for a CUDA machine without .NET whose libtorch comes from
# its Python torch install (TorchSharp 0.107 loads torch 2.10+):
#   - fixture parity on the GPU (float32 and bfloat16), naming the decode step that ran (compiled or eager);
#   - 7B-shaped decoding in bfloat16, compiled and eager decode steps alternating on the same weights, and the
#     compiled step's logits against the eager step's;
#   - transformers' generate on the same shape (if transformers is installed);
#   - patch info mining at MGM-7B and HD size, its tensor operations op by op and compiled.
#
#   benchmarks/gpu-check.sh prepare   on a machine with the .NET SDK: publishes the benchmarks (framework-dependent,
#                                     linux-x64, without the CPU libtorch) and packs the .NET runtime into .gpu-carry
#   benchmarks/gpu-check.sh           on the CUDA machine, from the repository root with .gpu-carry beside it; prints
#                                     the results and writes them to $OUT (default ./gpu-results); at most 9 min 20 s
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ "${1:-}" = prepare ]; then
  set -e
  mkdir -p .gpu-carry
  if [ ! -f .gpu-carry/dotnet-runtime.tar.xz ]; then
    dotnet_root=$(dirname "$(readlink -f "$(command -v dotnet)")")
    tar cJf .gpu-carry/dotnet-runtime.tar.xz -C "$dotnet_root" dotnet host/fxr shared/Microsoft.NETCore.App
  fi
  rm -rf .gpu-carry/app
  dotnet publish benchmarks/MiniGemini.Benchmarks -c Release -f net10.0 -r linux-x64 --self-contained false -o .gpu-carry/app >/dev/null
  # the CUDA machine's Python torch provides libtorch
  find .gpu-carry/app \( -name 'libtorch*.so*' -o -name 'libc10*.so*' -o -name 'libgomp*.so*' \) -delete
  du -sh .gpu-carry
  exit 0
fi
out=${OUT:-gpu-results}
mkdir -p "$out" /tmp/dn
tar xJf .gpu-carry/dotnet-runtime.tar.xz -C /tmp/dn
torch_lib=$(python3 -c "import torch, os; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))")
export LD_LIBRARY_PATH=$torch_lib:$PWD/.gpu-carry/app:$PWD/.gpu-carry/app/runtimes/linux-x64/native
bench=(/tmp/dn/dotnet .gpu-carry/app/MiniGemini.Benchmarks.dll)
fixtures=(tests/fixtures/reference/llm-{llama-mha,llama-gqa,gemma,mixtral})

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__)" | tee -a "$out/gpu.txt"
timeout 75 "${bench[@]}" llm-parity --device cuda "${fixtures[@]}" 2>&1 | tee "$out/parity-fp32.txt"
timeout 75 "${bench[@]}" llm-parity --device cuda --dtype bf16 "${fixtures[@]}" 2>&1 | tee "$out/parity-bf16.txt"
timeout 200 "${bench[@]}" llm-decode --device cuda --dtype bf16 --shape 7b --prompt 600 --new 128 --runs 4 --step both 2>&1 | tee "$out/decode-7b.txt"
if python3 -c "import transformers" 2>/dev/null; then
  timeout 120 python3 benchmarks/MiniGemini.Benchmarks/llm_decode_reference.py 600 128 2>&1 | tee "$out/decode-7b-transformers.txt"
fi
timeout 90 "${bench[@]}" mining --device cuda --dtype bf16 --sizes mgm7b,hd --methods reference,tensorops,compiled --warmup 10 --iterations 100 2>&1 | tee "$out/mining-bf16.txt"
