#!/bin/sh
# Build one of the demo crate's binaries as a static executable (its image is FROM scratch: no
# libc, no loader) and put it in the calling image's context: <context>/bin/<name>.
#
#   sh static-bin.sh NAME CONTEXT_DIR
#   CARGO_TARGET_DIR  cargo's target folder (default: <workspace root>/target)
set -eu

name="$1"
here="$(cd "$2" && pwd)"
root="$(cd "$(dirname "$0")/../.." && pwd)"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
# Cargo reads a relative CARGO_TARGET_DIR against its working folder: pin it to the caller's.
case "$target_dir" in
  /*) ;;
  *) target_dir="$(pwd)/$target_dir" ;;
esac
target=x86_64-unknown-linux-gnu

# An explicit --target keeps build scripts and proc-macros dynamic; only the binary is static.
(
  cd "$root"
  CARGO_TARGET_DIR="$target_dir" RUSTFLAGS='-C target-feature=+crt-static' \
    cargo build --release -p firedrill-demo --bin "$name" --target "$target"
)

built="$target_dir/$target/release/$name"
mkdir -p "$here/bin"
# Image variants are built from a context right after its prepare script, so the no-op case must
# stay cheap: cargo's up-to-date check plus copying and stripping a few MB is about 0.2 s.
# The binary is written beside the context, not in it, and renamed into place: whoever packs the
# context at the same time (firedrill locks the context, a hand-run `docker build` does not) sees
# the old binary or the new one, never a half-written or vanishing temporary file. Same folder
# tree, so the rename is atomic.
tmp="$(mktemp "$(dirname "$here")/.$name.bin.XXXXXX")"
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
chmod 755 "$tmp"
mv "$tmp" "$here/bin/$name"
echo "prepare: built $here/bin/$name" >&2
