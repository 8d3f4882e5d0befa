#!/usr/bin/env bash
# Prepares this machine for MiniGemini.Core: restores NuGet packages and makes sure TorchSharp's
# native library (libLibTorchSharp.so) can load. TorchSharp 0.107 needs GLIBCXX_3.4.32; Debian 12
# ships libstdc++6 12.2 (up to GLIBCXX_3.4.30), so on Debian 12 the newer libstdc++6 is taken from
# Debian 13 through the mirror this machine already uses. Debian 13 is never added to the
# permanent apt sources. Idempotent: a machine that already qualifies is left alone.
# With --browser it also installs headless Chromium and chromium-driver (for the web page's browser test).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
browser=false
for arg in "$@"; do
  case "$arg" in
    --browser) browser=true ;;
    *) echo "[setup] unknown option '$arg' (known: --browser)" >&2; exit 2 ;;
  esac
done
say() { echo "[setup] $*"; }

need=GLIBCXX_3.4.32

libstdcxx_path() {
  local p
  p=$(/sbin/ldconfig -p 2>/dev/null | awk '/libstdc\+\+\.so\.6 .*x86-64/ {print $NF; exit}')
  [ -n "$p" ] || p=/usr/lib/x86_64-linux-gnu/libstdc++.so.6
  echo "$p"
}

has_glibcxx() { grep -qa "$need" "$(libstdcxx_path)" 2>/dev/null; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# The first URI of the machine's own Debian source (deb822 or one-line format), security excluded.
debian_mirror() {
  local files uri
  files=$(ls /etc/apt/sources.list.d/*.sources /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true)
  for f in $files; do
    uri=$(awk '
      /^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }
      /^deb[ \t]/ { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z+]+:\/\//) { if ($i !~ /security/ && $(i+1) ~ /^(bookworm|stable)$/) { print $i; exit } } }
    ' "$f")
    if [ -n "$uri" ]; then echo "$uri"; return; fi
  done
}

# Headless Chromium and its WebDriver, from the machine's own (Debian 12) sources, for the browser tests only.
install_browser() {
  if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then return; fi
  local tmp
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' RETURN
  mkdir -p "$tmp/lists/partial"
  chmod 755 "$tmp"
  id _apt >/dev/null 2>&1 && as_root chown -R _apt "$tmp/lists/partial"
  local opts=(-o "Dir::State::Lists=$tmp/lists")
  say "installing chromium and chromium-driver (browser tests)"
  as_root apt-get "${opts[@]}" -qq update
  DEBIAN_FRONTEND=noninteractive as_root apt-get "${opts[@]}" -y -qq install --no-install-recommends chromium chromium-driver >/dev/null
}

install_libstdcxx_from_trixie() {
  local mirror tmp
  mirror=$(debian_mirror)
  if [ -z "$mirror" ]; then
    echo "[setup] error: no Debian mirror found in /etc/apt/sources*; cannot fetch libstdc++6 ($need)" >&2
    exit 1
  fi
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' RETURN
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror trixie main" > "$tmp/trixie.list"
  mkdir -p "$tmp/lists/partial"
  chmod 755 "$tmp"
  id _apt >/dev/null 2>&1 && as_root chown -R _apt "$tmp/lists/partial"
  local opts=(-o "Dir::Etc::SourceList=$tmp/trixie.list" -o "Dir::Etc::SourceParts=/dev/null"
              -o "Dir::State::Lists=$tmp/lists" -o "APT::Default-Release=trixie")
  say "installing libstdc++6 from Debian 13 (trixie) via $mirror (temporary source, not kept)"
  as_root apt-get "${opts[@]}" -qq update
  # libstdc++6 14 needs libc6 >= 2.38, and Debian 13's libc6 in turn needs newer base-files (whose os-release then
  # names Debian 13), dpkg, locales and GCC runtime libraries: apt takes exactly those along. Say which.
  dpkg-query -W -f '${Package} ${Version}\n' | LC_ALL=C sort > "$tmp/before"
  DEBIAN_FRONTEND=noninteractive as_root apt-get "${opts[@]}" -y -qq install -t trixie libstdc++6 >/dev/null
  dpkg-query -W -f '${Package} ${Version}\n' | LC_ALL=C sort > "$tmp/after"
  say "installed or upgraded from Debian 13: $(LC_ALL=C comm -13 "$tmp/before" "$tmp/after" | awk '{printf "%s%s", sep, $1; sep=", "}')"
}

if has_glibcxx; then
  say "libstdc++ provides $need: nothing to install"
else
  . /etc/os-release 2>/dev/null || true
  if [ "${ID:-}" = debian ] && [ "${VERSION_CODENAME:-}" = bookworm ]; then
    install_libstdcxx_from_trixie
    has_glibcxx || { echo "[setup] error: libstdc++6 still lacks $need after install" >&2; exit 1; }
    say "libstdc++6 now provides $need"
  else
    echo "[setup] error: $(libstdcxx_path) lacks $need, which TorchSharp 0.107 needs, and this is not Debian 12;" \
         "install a libstdc++6 from GCC 13 or newer" >&2
    exit 1
  fi
fi

if $browser; then install_browser; fi

say "restoring NuGet packages"
dotnet restore "$root/MiniGemini.Core.sln" --verbosity quiet

# Confirm the native library finds every symbol version it needs (libtorch itself sits in another package).
so=$(find "${NUGET_PACKAGES:-$HOME/.nuget/packages}/torchsharp" -name libLibTorchSharp.so 2>/dev/null | head -1 || true)
if [ -n "$so" ] && command -v ldd >/dev/null; then
  if ldd "$so" 2>&1 | grep -q "GLIBC.*not found"; then
    echo "[setup] error: $so still misses symbol versions:" >&2
    ldd "$so" 2>&1 | grep "GLIBC.*not found" >&2 || true
    exit 1
  fi
  say "libLibTorchSharp.so finds every GLIBC/GLIBCXX version it needs"
fi
