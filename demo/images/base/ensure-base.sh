#!/bin/sh
# Make sure the local base image the demo's Dockerfiles start FROM exists, without any registry:
# a minimal Debian bookworm made with debootstrap from the machine's own Debian mirror, imported
# with `docker import`. Idempotent: does nothing when the image is present.
#
#   FIREDRILL_BASE_IMAGE  image to create (default firedrill-demo/base:bookworm)
#   FIREDRILL_DEBIAN_MIRROR  mirror URI (default: the first URIs: line of
#                            /etc/apt/sources.list.d/debian.sources, else deb.debian.org)
set -eu

image="${FIREDRILL_BASE_IMAGE:-firedrill-demo/base:bookworm}"
if docker image inspect "$image" >/dev/null 2>&1; then
  exit 0
fi
# Several contexts' prepare scripts may get here at once (runs started side by side): one creates
# the image, the others wait for it under a machine-wide lock and then find it present.
if [ -z "${FIREDRILL_BASE_LOCKED:-}" ] && command -v flock >/dev/null 2>&1; then
  FIREDRILL_BASE_LOCKED=1 exec flock "${TMPDIR:-/tmp}/firedrill-base-image.lock" sh "$0" "$@"
fi

mirror="${FIREDRILL_DEBIAN_MIRROR:-}"
if [ -z "$mirror" ] && [ -r /etc/apt/sources.list.d/debian.sources ]; then
  mirror="$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources)"
fi
mirror="${mirror:-http://deb.debian.org/debian}"

if ! command -v debootstrap >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "ensure-base: installing debootstrap (needed once to create $image)" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >&2
  else
    echo "ensure-base: debootstrap is missing; install it (apt-get install debootstrap) and retry" >&2
    exit 1
  fi
fi
if [ "$(id -u)" != 0 ]; then
  echo "ensure-base: creating $image with debootstrap needs root" >&2
  exit 1
fi

tree="$(mktemp -d /tmp/firedrill-base.XXXXXX)"
trap 'rm -rf "$tree"' EXIT INT TERM
echo "ensure-base: debootstrap bookworm from $mirror (about 30 s)" >&2
debootstrap --variant=minbase bookworm "$tree" "$mirror" >"$tree.log" 2>&1 || {
  tail -20 "$tree.log" >&2
  rm -f "$tree.log"
  exit 1
}
rm -f "$tree.log"
# Make apt inside builds quiet and small, and never start services.
printf '#!/bin/sh\nexit 101\n' >"$tree/usr/sbin/policy-rc.d"
chmod +x "$tree/usr/sbin/policy-rc.d"
printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' >"$tree/etc/apt/apt.conf.d/90firedrill"
rm -rf "$tree"/var/cache/apt/archives/*.deb "$tree"/var/lib/apt/lists/*
tar -C "$tree" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["/bin/bash"]' - "$image" >/dev/null
echo "ensure-base: created $image" >&2
