#!/usr/bin/env bash
# The tarball of make dist builds and passes its own make test in a clean folder, away from
# the source tree.  usage: distcheck.sh DIST_FOLDER (BUILD/meson-dist)
set -euo pipefail
tarball=$(ls -t "${1:?usage: distcheck.sh DIST_FOLDER}"/noether-*.tar.xz | head -1)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tar -C "$work" -xJf "$tarball"
cd "$work"/noether-*/
echo "distcheck: make test in $PWD (from $tarball)" >&2
make test
