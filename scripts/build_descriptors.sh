#!/usr/bin/env bash
# Builds deploy/envoy/protos.pb, the descriptor set Envoy's grpc_json_transcoder reads: every swap proto
# with its imports, plus google.rpc.Status and its error details so that errors transcode to JSON with
# their details. With --check, builds into a scratch file and fails when the committed one differs.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
py="$root/.venv/bin/python"
out="$root/deploy/envoy/protos.pb"
if [[ "${1:-}" == "--check" ]]; then
  scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' EXIT
  out="$scratch/protos.pb"
fi
# The google/rpc protos ship inside googleapis-common-protos, next to their generated modules.
googleapis=$("$py" -c 'import pathlib, google.rpc.status_pb2 as m; print(pathlib.Path(m.__file__).parents[2])')
cd "$root/protos"
mapfile -t files < <(find swap -name '*.proto' | sort)
"$py" -m grpc_tools.protoc -I . -I "$googleapis" \
  --include_imports --descriptor_set_out="$out" \
  "${files[@]}" google/rpc/status.proto google/rpc/error_details.proto
if [[ "${1:-}" == "--check" ]]; then
  if ! cmp -s "$out" "$root/deploy/envoy/protos.pb"; then
    echo "deploy/envoy/protos.pb is stale: run scripts/build_descriptors.sh" >&2
    exit 1
  fi
  echo "deploy/envoy/protos.pb is up to date"
fi
