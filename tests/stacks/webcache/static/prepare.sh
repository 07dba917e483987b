#!/bin/sh
# This image starts FROM the local Debian base image: make sure it exists (no registry).
set -eu
exec sh "$(cd "$(dirname "$0")" && pwd)/../../../../demo/images/base/ensure-base.sh"
