#!/usr/bin/env bash
# Builds a Debian bookworm base with debootstrap, the DRIMbox image on it with podman (no image registry is
# needed), then plays the demo scenario (two boxes, the DMP and PSC simulators, a study published and retrieved
# by the peer) in a container of that image. Exit status 0 when the scenario passed.
#
# Prerequisites (this script's own; the image gets everything else from scripts/setup.sh): Debian or Ubuntu,
# root, `apt-get install debootstrap podman`, and access to a Debian mirror, PyPI and the npm registry.
# Environment: DEBIAN_MIRROR (default http://deb.debian.org/debian), DRIMBOX_DOCKER_WORK (where the base's root
# file system is made, default /var/tmp/drimbox-docker), REBUILD_BASE=1 to make the base again,
# PODMAN_RUNTIME (an OCI runtime for `podman run`, e.g. runc where crun refuses a cgroup v1/v2 hybrid host),
# HOST_CA_BUNDLE (a PEM bundle of the authorities to trust for the build's outgoing HTTPS, to PyPI and the npm
# registry: behind a TLS-intercepting proxy, a corporate one for example, the host's system bundle that holds its
# authority; default /etc/ssl/certs/ca-certificates.crt or /etc/pki/tls/certs/ca-bundle.crt when present, empty
# for none). It is given to the build as a secret, mounted into its set-up step only, and is not in the image.
#
# The build runs its RUN steps with --isolation chroot (no OCI runtime, no cgroups needed), and the container
# gets explicit file and process limits below the host's: some sandboxes refuse podman's default ones.
set -euo pipefail
cd "$(dirname "$0")/.."
BASE_IMAGE=localhost/drimbox-bookworm-base:latest
IMAGE=localhost/drimbox:latest
WORK=${DRIMBOX_DOCKER_WORK:-/var/tmp/drimbox-docker}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

for tool in debootstrap podman; do
  command -v "$tool" >/dev/null || { echo "build-and-demo: $tool is missing (apt-get install $tool)" >&2; exit 2; }
done
[ "$(id -u)" -eq 0 ] || { echo "build-and-demo: debootstrap needs root" >&2; exit 2; }

if [ -z "${HOST_CA_BUNDLE+set}" ]; then
  HOST_CA_BUNDLE=""
  for bundle in /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt; do
    if [ -s "$bundle" ]; then HOST_CA_BUNDLE=$bundle; break; fi
  done
fi
CA_SECRET=()
if [ -n "$HOST_CA_BUNDLE" ]; then
  [ -s "$HOST_CA_BUNDLE" ] || { echo "build-and-demo: HOST_CA_BUNDLE=$HOST_CA_BUNDLE is not a file" >&2; exit 2; }
  grep -q -- '-----BEGIN CERTIFICATE-----' "$HOST_CA_BUNDLE" \
    || { echo "build-and-demo: HOST_CA_BUNDLE=$HOST_CA_BUNDLE holds no PEM certificate" >&2; exit 2; }
  CA_SECRET=(--secret "id=host-ca,src=$(readlink -f "$HOST_CA_BUNDLE")")
  echo "== build trusts $HOST_CA_BUNDLE for its downloads (not kept in the image)"
fi

if [ "${REBUILD_BASE:-0}" = 1 ] || ! podman image exists "$BASE_IMAGE"; then
  echo "== base: debootstrap bookworm (minbase) from $MIRROR"
  rm -rf "$WORK/rootfs"
  mkdir -p "$WORK"
  debootstrap --variant=minbase bookworm "$WORK/rootfs" "$MIRROR"
  tar -C "$WORK/rootfs" -c . | podman import --change 'CMD ["/bin/bash"]' - "$BASE_IMAGE"
fi

echo "== image: $IMAGE (scripts/setup.sh inside)"
podman build --isolation chroot --network host "${CA_SECRET[@]}" -f docker/Dockerfile --ignorefile docker/containerignore \
  --build-arg BASE="$BASE_IMAGE" -t "$IMAGE" .

echo "== demo: drimbox demo in a container of $IMAGE"
PODMAN=(podman)
if [ -n "${PODMAN_RUNTIME:-}" ]; then PODMAN=(podman --runtime "$PODMAN_RUNTIME"); fi
"${PODMAN[@]}" run --rm --network host --ulimit nofile=16384:16384 --ulimit nproc=8192:8192 \
  "$IMAGE" demo --no-wait --free-ports --data-dir /demo
