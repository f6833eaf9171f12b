#!/usr/bin/env bash
# Fetch the real data that tests and fixtures read from Debian packages, without installing them:
#   pocketsphinx-testdata  real LibriVox recordings + transcripts   (ALGOPERF_LIBRIVOX_TESTDATA)
#   sword-text-web         World English Bible (SWORD module)        (ALGOPERF_SWORD_DIR)
#   sword-text-sparv       Reina-Valera 1909 Spanish Bible (SWORD)   (ALGOPERF_SWORD_DIR)
# `apt-get download` + `dpkg -x` into DEST (default .cache/debian); tests/conftest.py points the
# variables there when they are unset. Never fatal: tests that need a missing package skip and
# say which. Usage: scripts/debian_testdata.sh [DEST]
set -uo pipefail
dest="${1:-$(cd "$(dirname "$0")/.." && pwd)/.cache/debian}"
packages=(pocketsphinx-testdata sword-text-web sword-text-sparv)
if ! command -v apt-get >/dev/null || ! command -v dpkg >/dev/null; then
  echo "debian_testdata: no apt-get/dpkg here; tests needing ${packages[*]} will skip" >&2
  exit 0
fi
mkdir -p "$dest/debs"
cd "$dest/debs" || exit 0
missing=()
for p in "${packages[@]}"; do
  ls "${p}"_*.deb >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  if ! apt-get download "${missing[@]}" >/dev/null 2>&1 && [[ "$(id -u)" == 0 ]]; then
    apt-get update -qq >/dev/null 2>&1 && apt-get download "${missing[@]}" >/dev/null 2>&1
  fi
fi
for deb in ./*.deb; do
  [[ -e "$deb" ]] || continue
  dpkg -x "$deb" "$dest" || echo "debian_testdata: could not extract $deb" >&2
done
for p in "${packages[@]}"; do
  ls "${p}"_*.deb >/dev/null 2>&1 || echo "debian_testdata: $p not downloaded; its tests skip" >&2
done
echo "debian_testdata: $dest"
