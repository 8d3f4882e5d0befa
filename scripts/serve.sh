#!/usr/bin/env bash
# Serves a model over an OpenAI-style HTTP API with a web page (samples/MiniGemini.Server): prepares this machine
# (scripts/setup.sh), builds the server and runs it, by default on the bundled demo model at http://127.0.0.1:5000.
# Arguments go to the server, e.g.
#   ./scripts/serve.sh --urls http://0.0.0.0:8080
#   ./scripts/serve.sh --MiniGemini:ModelPath path/to/MGM-7B --MiniGemini:TowerSearchRoots:0 path/to/model_zoo/OpenAI --Server:ImageGenerator none
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/scripts/setup.sh" >&2
echo "[serve] building samples/MiniGemini.Server (Release)" >&2
dotnet build "$root/samples/MiniGemini.Server/MiniGemini.Server.csproj" -c Release --no-restore --nologo -v quiet >&2
cd "$root/samples/MiniGemini.Server"
has_urls=false
for arg in "$@"; do [ "$arg" = --urls ] && has_urls=true; done
if $has_urls; then exec dotnet bin/Release/net10.0/MiniGemini.Server.dll "$@"; fi
exec dotnet bin/Release/net10.0/MiniGemini.Server.dll --urls http://127.0.0.1:5000 "$@"
