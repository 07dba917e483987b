#!/bin/sh
# Build billing as a static binary (the image is FROM scratch: no libc, no loader) and put it where
# the Dockerfile COPYs it from: bin/billing beside this script. Runs from any folder.
#
#   CARGO_TARGET_DIR  cargo's target folder (default: <workspace root>/target)
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
exec sh "$here/../static-bin.sh" billing "$here"
