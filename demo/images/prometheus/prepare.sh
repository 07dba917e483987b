#!/bin/sh
# The Prometheus image starts FROM the local Debian base image: make sure it exists (no registry).
set -eu
exec sh "$(cd "$(dirname "$0")" && pwd)/../base/ensure-base.sh"
