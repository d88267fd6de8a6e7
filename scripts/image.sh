#!/bin/sh
# image.sh - builds the images of deploy/: dstmc (deploy/Dockerfile), and the PostgreSQL and
# Redis that the Compose files run beside it (deploy/postgres, deploy/redis: Debian's packages
# in the same Debian base). Makes the base image first when it is missing (base-image.sh).
# Needs a running Docker daemon (scripts/dockerd.sh start). Builds use the host's network, so
# that apt inside reaches the Debian mirror; nothing is pulled from a registry.
#   scripts/image.sh [TAG]     (default: dstmc:latest, dstmc-postgres:latest, dstmc-redis:latest)
set -eu
cd "$(dirname "$0")/.."
DOCKER=${DOCKER:-/usr/bin/docker}
TAG=${1:-latest}

if ! "$DOCKER" version >/dev/null 2>&1; then
    echo "image.sh: no Docker daemon answers (start one: scripts/dockerd.sh start)" >&2
    exit 1
fi
scripts/base-image.sh
# the uPlot and Swagger UI files the binary embeds (npm ci in web/)
[ -d web/node_modules/uplot ] || scripts/deps.sh

version=$(sed -n 's/^project(dstmc VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
revision=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
created=$(date -u +%Y-%m-%dT%H:%M:%SZ)
"$DOCKER" build -q --network host -f deploy/Dockerfile -t "dstmc:$TAG" \
    --build-arg VERSION="$version" --build-arg REVISION="$revision" \
    --build-arg CREATED="$created" . >/dev/null
"$DOCKER" build -q --network host -t "dstmc-postgres:$TAG" deploy/postgres >/dev/null
"$DOCKER" build -q --network host -t "dstmc-redis:$TAG" deploy/redis >/dev/null
"$DOCKER" image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E "^dstmc(-postgres|-redis)?:$TAG "
