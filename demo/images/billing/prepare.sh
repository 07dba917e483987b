#!/bin/sh
# Build billing as a static binary (the image is FROM scratch: no libc, no loader) and put it where
# the Dockerfile COPYs it from: bin/billing beside this script. Runs from any folder.
#
#   CARGO_TARGET_DIR  cargo's target folder (default: <workspace root>/target)
set -eu

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
# Cargo reads a relative CARGO_TARGET_DIR against its working folder: pin it to the caller's.
case "$target_dir" in
  /*) ;;
  *) target_dir="$(pwd)/$target_dir" ;;
esac
target=x86_64-unknown-linux-gnu

# An explicit --target keeps build scripts and proc-macros dynamic; only billing is static.
(
  cd "$root"
  CARGO_TARGET_DIR="$target_dir" RUSTFLAGS='-C target-feature=+crt-static' \
    cargo build --release -p firedrill-demo --bin billing --target "$target"
)

built="$target_dir/$target/release/billing"
mkdir -p "$here/bin"
# Every image variant (1.0, 2.0, 2.0-crash, ...) is built from this context right after this
# script, so its no-op case must stay cheap: cargo's up-to-date check plus copying and stripping
# 3 MB is about 0.2 s. A per-process temporary name, because variants may be prepared concurrently.
tmp="$here/bin/billing.tmp.$$"
trap 'rm -f "$tmp"' EXIT
cp "$built" "$tmp"
# Symbols are most of the file; the image needs none of them.
if command -v strip >/dev/null 2>&1; then
  strip "$tmp"
fi
if command -v file >/dev/null 2>&1; then
  case "$(file -b "$tmp")" in
    *"dynamically linked"*)
      echo "prepare: $built is dynamically linked; it cannot run FROM scratch" >&2
      exit 1
      ;;
  esac
fi
mv "$tmp" "$here/bin/billing"
echo "prepare: built $here/bin/billing" >&2
