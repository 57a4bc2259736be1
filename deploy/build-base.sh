#!/bin/sh
# A local stand-in for python:3.11-slim, built from Debian's own packages with debootstrap
# and imported into podman: on machines that cannot pull from a registry. Debian 12's
# python3 is CPython 3.11, the version the hub is tested with.
#
#   deploy/build-base.sh [IMAGE]      default IMAGE: localhost/askhub-base:3.11-slim
#
# Needs root (debootstrap), podman and debootstrap (apt-get install podman debootstrap).
set -eu
IMAGE=${1:-localhost/askhub-base:3.11-slim}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
if podman image exists "$IMAGE"; then
  echo "base image $IMAGE exists"
  exit 0
fi
ROOTFS=$(mktemp -d /var/tmp/askhub-base.XXXXXX)
trap 'rm -rf "$ROOTFS"' EXIT
# minbase: dpkg, apt and the essentials only; python3-venv brings ensurepip (for the venv);
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
  bookworm "$ROOTFS" "$MIRROR"
chroot "$ROOTFS" apt-get clean
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* \
       "$ROOTFS"/usr/share/locale/* "$ROOTFS"/var/cache/debconf/*-old "$ROOTFS"/var/log/*.log
tar -C "$ROOTFS" -c . | podman import \
  --change 'ENV LANG=C.UTF-8' \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["python3"]' \
  - "$IMAGE"
echo "base image $IMAGE built from Debian bookworm ($(chroot "$ROOTFS" python3 --version))"
