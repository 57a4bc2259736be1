#!/bin/sh
# Build the hub's image with podman (Docker works the same: docker build -t askhub .).
#
#   deploy/build-image.sh [TAG]        default TAG: localhost/askhub:dev
#
# BASE (default python:3.11-slim) is used when it can be pulled; otherwise the local
# Debian-built equivalent from deploy/build-base.sh. Behind a TLS-inspecting proxy, the
# host's CA bundle (PIP_CERT, or SSL_CERT_FILE) is mounted for the build's pip only; it
# is not part of the image. --isolation chroot: builds inside containers and on hosts
# where the OCI runtime cannot set up namespaces; --format docker keeps the HEALTHCHECK.
set -eu
TAG=${1:-localhost/askhub:dev}
BASE=${BASE:-}
if [ -z "$BASE" ]; then
  if podman image exists python:3.11-slim || podman pull -q docker.io/library/python:3.11-slim >/dev/null 2>&1; then
    BASE=docker.io/library/python:3.11-slim
  else
    BASE=localhost/askhub-base:3.11-slim
    "$(dirname "$0")/build-base.sh" "$BASE"
  fi
fi
CA=${PIP_CERT:-${SSL_CERT_FILE:-}}
set -- --isolation chroot --format docker --build-arg "BASE=$BASE" -t "$TAG" -f Containerfile
if [ -n "$CA" ] && [ -f "$CA" ]; then
  set -- "$@" -v "$CA:/etc/ssl/certs/ca-certificates.crt:ro" --build-arg PIP_CERT=/etc/ssl/certs/ca-certificates.crt
fi
podman build "$@" .
