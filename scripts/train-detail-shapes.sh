#!/usr/bin/env bash
# Trains a Detail Shapes model from scratch with the recipe of docs/training.md, in one command:
#   ./scripts/train-detail-shapes.sh mgm runs/mgm          # Mini-Gemini (CLIP + ConvNeXt + patch info mining)
#   ./scripts/train-detail-shapes.sh lr-only runs/lr-only  # the LR-only baseline (as LLaVA)
# Stage 0, as MGM's towers come pretrained (mgm only): the ConvNeXt learns the digit from 64-pixel crops around it, first
# through each channel's maximum (`--stage hr-crops`, OUT-crops), then read as patch info mining reads it, through an
# attention pulled onto the digit (`--crop-readout mining`, OUT-crops-mining). Then (`--stage vision`, OUT-vision) towers
# and mining learn what each cell of a picture holds from per-cell labels, mining's attention pulled onto each digit.
# Last (`--stage language`) the LLM learns the conversations about 5000 pictures in turn, whose image tokens are computed
# once, one attention head pulled onto the image token of the object each question is about (`--answer-focus-weight`);
# towers, mining and the (random) projector stay as they are, the projector first composed with the whitening of the
# image tokens (`--whiten-projector`) so that shape, colour, digit and cell reach the LLM at the same scale. The model
# ends in OUT. Interrupted, the same command resumes where it stopped. Extra arguments go to every `train` command (e.g. --seed 2).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
variant=${1:?usage: train-detail-shapes.sh mgm|lr-only OUT [train options]}
out=${2:?usage: train-detail-shapes.sh mgm|lr-only OUT [train options]}
shift 2

# CLI_DLL: a CLI built elsewhere (e.g. with -o), so that building the repository meanwhile does not touch the running one.
if [ -z "${CLI_DLL:-}" ]; then
  "$root/scripts/setup.sh" >&2
  dotnet build "$root/samples/MiniGemini.Cli/MiniGemini.Cli.csproj" -c Release --no-restore --nologo -v quiet >&2
fi
cli=(dotnet "${CLI_DLL:-$root/samples/MiniGemini.Cli/bin/Release/net10.0/MiniGemini.Cli.dll}" train)

crop_steps=${CROP_STEPS:-1500}
crop_mining_steps=${CROP_MINING_STEPS:-1000}
vision_steps=${VISION_STEPS:-700}
language_steps=${LANGUAGE_STEPS:-2400}
unfinished() { [ ! -f "$1/model.safetensors" ] || [ -d "$1/checkpoint" ]; }
start=(--variant "$variant")
if [ "$variant" = mgm ]; then
  if unfinished "$out-crops"; then
    "${cli[@]}" --out "$out-crops" --variant "$variant" --stage hr-crops --steps "$crop_steps" --batch-size 64 --lr 2e-3 --warmup 20 "$@"
  fi
  if unfinished "$out-crops-mining"; then
    "${cli[@]}" --out "$out-crops-mining" --from "$out-crops" --stage hr-crops --crop-readout mining --steps "$crop_mining_steps" --batch-size 64 --lr 2e-3 --warmup 20 "$@"
  fi
  start=(--from "$out-crops-mining")
fi
if unfinished "$out-vision"; then
  "${cli[@]}" --out "$out-vision" "${start[@]}" --stage vision --steps "$vision_steps" --batch-size 8 --lr 2e-3 --warmup 20 "$@"
fi
"${cli[@]}" --out "$out" --from "$out-vision" --stage language --pictures 5000 --steps "$language_steps" --batch-size 16 --lr 1e-3 --warmup 50 --answer-focus-weight 1 --whiten-projector "$@"
