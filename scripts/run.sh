#!/usr/bin/env bash
# The main job: prepares this machine (scripts/setup.sh: a loadable TorchSharp, restored packages), builds the
# MiniGemini CLI and asks it to describe a picture, streaming the answer to stdout.
#
# With no arguments it runs the bundled demo model (a Mini-Gemini trained on the Detail Shapes task, see
# docs/training.md) on the bundled example picture of that task. Arguments go to the CLI's `describe` command, or to another command when they start
# with one:
#   ./scripts/run.sh --model path/to/MGM-7B --tower-search-root path/to/model_zoo/OpenAI --image photo.jpg
#   ./scripts/run.sh chat --model path/to/MGM-7B --tower-search-root path/to/model_zoo/OpenAI
#   ./scripts/run.sh --help
# Works from any directory; relative paths in the arguments are taken from the directory it is run in.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Setup notes go to stderr, so stdout carries only the answer (e.g. with --json); the build speaks only when it fails.
"$root/scripts/setup.sh" >&2
echo "[run] building samples/MiniGemini.Cli (Release)" >&2
log=$(mktemp)
if ! dotnet build "$root/samples/MiniGemini.Cli/MiniGemini.Cli.csproj" -c Release --no-restore --nologo >"$log" 2>&1; then
  cat "$log" >&2
  rm -f "$log"
  echo "[run] error: building samples/MiniGemini.Cli failed (output above)" >&2
  exit 1
fi
rm -f "$log"

case "${1:-}" in
  describe|chat|generate|-h|--help|-\?|--version) command=() ;;
  *) command=(describe) ;;
esac
exec dotnet "$root/samples/MiniGemini.Cli/bin/Release/net10.0/MiniGemini.Cli.dll" "${command[@]}" "$@"
