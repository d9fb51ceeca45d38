#!/usr/bin/env bash
# Builds the NEAR contracts (contracts/near) into contracts/build/near/{swap_htlc,swap_token}.wasm with
# Debian's Rust toolchain and packaged crates, offline, and checks the wasm against the committed hashes
# in contracts/near/artifacts.sha256. `--update` rewrites that manifest (after a change to the source).
#
# The build is reproducible: the same source gives the same bytes wherever the repository is checked out.
set -euo pipefail

update=0
case "${1:-}" in
  "") ;;
  --update) update=1 ;;
  *)
    echo "usage: $0 [--update]" >&2
    exit 2
    ;;
esac

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
workspace="$repo/contracts/near"
out="$repo/contracts/build/near"
manifest="$workspace/artifacts.sha256"
target=wasm32-unknown-unknown
contracts=(swap_htlc swap_token)

# Debian's toolchain, not a rustup one that may be earlier on PATH (it has no wasm target here).
cargo=/usr/bin/cargo
export RUSTC=/usr/bin/rustc
registry=/usr/share/cargo/registry
if [[ ! -x $cargo || ! -x $RUSTC || ! -d /usr/lib/rustlib/$target || ! -d $registry/serde_json-1.0.87 ]]; then
  echo "build_near_contracts: Debian's Rust toolchain for $target is missing; install it with" >&2
  echo "  apt-get install cargo rustc libstd-rust-dev-wasm32 lld librust-serde-json-dev" >&2
  exit 1
fi

# Paths end up in panic messages: map the checkout and the crate sources to fixed names.
cargo_home="${CARGO_HOME:-$HOME/.cargo}"
export RUSTFLAGS="--remap-path-prefix=$workspace=/swap/contracts/near --remap-path-prefix=$cargo_home/registry=/cargo/registry --remap-path-prefix=$registry=/cargo/registry"
# Nothing from the environment may change the build.
unset CARGO_TARGET_DIR CARGO_BUILD_TARGET CARGO_ENCODED_RUSTFLAGS CARGO_BUILD_RUSTFLAGS RUSTC_WRAPPER

(cd "$workspace" && "$cargo" build --release --target "$target" --locked --offline --quiet)

mkdir -p "$out"
for name in "${contracts[@]}"; do
  cp "$workspace/target/$target/release/$name.wasm" "$out/$name.wasm"
done

cd "$repo"
files=()
for name in "${contracts[@]}"; do
  files+=("contracts/build/near/$name.wasm")
done
hashes="$(sha256sum "${files[@]}")"
if ((update)); then
  printf '%s\n' "$hashes" >"$manifest"
  echo "build_near_contracts: wrote $(realpath --relative-to="$repo" "$manifest"):"
  cat "$manifest"
  exit 0
fi

if [[ ! -f $manifest ]] || ! diff -u "$manifest" <(printf '%s\n' "$hashes") >&2; then
  echo "build_near_contracts: the wasm does not match contracts/near/artifacts.sha256: the contracts' source" >&2
  echo "changed or the build is not reproducible. After a change to the source, run" >&2
  echo "  scripts/build_near_contracts.sh --update" >&2
  echo "and commit the new manifest." >&2
  exit 1
fi
for name in "${contracts[@]}"; do
  echo "build_near_contracts: contracts/build/near/$name.wasm $(stat -c %s "$out/$name.wasm") bytes, matches the manifest"
done
