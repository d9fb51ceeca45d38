#!/usr/bin/env bash
# Regenerates the Python stubs of protos/ into protos/python/src (messages, .pyi and typed gRPC stubs).
# With --check, regenerates into a scratch folder and fails when the committed stubs differ.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/protos/python/src"
if [[ "${1:-}" == "--check" ]]; then
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
fi
rm -rf "$out/swap"
mkdir -p "$out"
export PATH="$root/.venv/bin:$PATH"
cd "$root/protos"
mapfile -t files < <(find swap -name '*.proto' | sort)
"$root/.venv/bin/python" -m grpc_tools.protoc -I . \
  --python_out="$out" --mypy_out="$out" --mypy_grpc_out="$out" --grpc_python_out="$out" \
  "${files[@]}"
# Namespace packages are enough for imports; __init__.py files make the stubs a regular package for mypy.
find "$out/swap" -type d -exec touch {}/__init__.py \;
touch "$out/swap/py.typed"
if [[ "${1:-}" == "--check" ]]; then
  if ! diff -r "$root/protos/python/src/swap" "$out/swap" >/dev/null; then
    echo "protos/python is stale: run 'make proto'" >&2
    diff -r "$root/protos/python/src/swap" "$out/swap" | head -20 >&2
    exit 1
  fi
  echo "generated stubs are up to date"
fi
