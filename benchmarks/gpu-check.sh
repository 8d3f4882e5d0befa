#!/usr/bin/env bash
# The GPU measurements of docs/benchmarks.md in one run, for a CUDA machine without .NET whose libtorch comes from
# its Python torch install (TorchSharp 0.107 loads torch 2.10+):
#   - fixture parity on the GPU (float32 and bfloat16), naming the decode step that ran (compiled or eager);
#   - 7B-shaped decoding in bfloat16, compiled and eager decode steps alternating on the same weights, and the
#     compiled step's logits against the eager step's;
#   - transformers' generate on the same shape (if transformers is installed);
#   - patch info mining at MGM-7B and HD size.
#
# Prepare on the development machine (packs the benchmarks and a .NET runtime into .gpu-carry):
#   ../shared/gpu/prepare-carry.sh benchmarks/MiniGemini.Benchmarks/MiniGemini.Benchmarks.csproj
# then run this script from the repository root on the CUDA machine, with .gpu-carry beside it. Results are printed and
# written to $OUT (default ./gpu-results).
set -uo pipefail
out=${OUT:-gpu-results}
mkdir -p "$out" /tmp/dn
tar xJf .gpu-carry/dotnet-runtime.tar.xz -C /tmp/dn
torch_lib=$(python3 -c "import torch, os; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))")
export LD_LIBRARY_PATH=$torch_lib:$PWD/.gpu-carry/app:$PWD/.gpu-carry/app/runtimes/linux-x64/native
bench=(/tmp/dn/dotnet .gpu-carry/app/MiniGemini.Benchmarks.dll)
fixtures=(tests/fixtures/reference/llm-{llama-mha,llama-gqa,gemma,mixtral})

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__)" | tee -a "$out/gpu.txt"
timeout 120 "${bench[@]}" llm-parity --device cuda "${fixtures[@]}" 2>&1 | tee "$out/parity-fp32.txt"
timeout 120 "${bench[@]}" llm-parity --device cuda --dtype bf16 "${fixtures[@]}" 2>&1 | tee "$out/parity-bf16.txt"
timeout 240 "${bench[@]}" llm-decode --device cuda --dtype bf16 --shape 7b --prompt 600 --new 128 --runs 4 --step both 2>&1 | tee "$out/decode-7b.txt"
if python3 -c "import transformers" 2>/dev/null; then
  timeout 180 python3 benchmarks/MiniGemini.Benchmarks/llm_decode_reference.py 600 128 2>&1 | tee "$out/decode-7b-transformers.txt"
fi
timeout 120 "${bench[@]}" mining --device cuda --dtype bf16 --sizes mgm7b,hd --warmup 10 --iterations 100 2>&1 | tee "$out/mining-bf16.txt"
