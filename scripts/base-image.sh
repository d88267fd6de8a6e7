#!/bin/sh
# base-image.sh - makes the local debian:bookworm-slim image the Dockerfiles start FROM, when it
# is missing: no registry is reachable here, so it is a minbase debootstrap of bookworm from
# the Debian mirror the host's apt uses, imported into the daemon. Quick when it is there.
#   scripts/base-image.sh [TAG]     (default debian:bookworm-slim)
set -eu
DOCKER=${DOCKER:-/usr/bin/docker}
TAG=${1:-debian:bookworm-slim}

if "$DOCKER" image inspect "$TAG" >/dev/null 2>&1; then
    exit 0
fi

# The first http(s) Debian URI the host's apt sources name (deb822 or one-line format).
mirror=${DSTMC_DEBIAN_MIRROR:-}
if [ -z "$mirror" ]; then
    mirror=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
        sed -n 's/^URIs:[[:space:]]*\(http[^[:space:]]*\/debian\)\/\{0,1\}$/\1/p' | head -n 1)
fi
if [ -z "$mirror" ]; then
    mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
        sed -n 's/^deb[[:space:]]\{1,\}\(http[^[:space:]]*\/debian\)\/\{0,1\}[[:space:]].*/\1/p' |
        head -n 1)
fi
mirror=${mirror:-http://deb.debian.org/debian}

dir=$(mktemp -d /var/tmp/dstmc-bookworm.XXXXXX)
trap 'rm -rf "$dir"' EXIT
echo "base-image: debootstrap --variant=minbase bookworm from $mirror"
debootstrap --variant=minbase bookworm "$dir" "$mirror" >"$dir.log" 2>&1 || {
    tail -n 20 "$dir.log" >&2
    rm -f "$dir.log"
    exit 1
}
rm -f "$dir.log"
# Slim as the official image: no apt lists, caches or docs that the import would carry.
rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin "$dir"/var/cache/apt/archives/*.deb \
    "$dir"/usr/share/doc/* "$dir"/usr/share/man/* "$dir"/usr/share/info/*
printf 'path-exclude /usr/share/doc/*\npath-exclude /usr/share/man/*\npath-exclude /usr/share/info/*\n' \
    >"$dir/etc/dpkg/dpkg.cfg.d/docker-slim"
# apt keeps no package cache or .debs in an image layer (the official images' docker-clean)
cat >"$dir/etc/apt/apt.conf.d/docker-clean" <<'CONF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CONF
tar -C "$dir" -c . | "$DOCKER" import -c 'CMD ["bash"]' - "$TAG" >/dev/null
echo "base-image: imported $TAG"
