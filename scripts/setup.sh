#!/usr/bin/env bash
# Installs the Debian packages noether needs to build, test and run (a no-op when they
# are all present).  Uses sudo when not root.  Set NOETHER_EXTRA_PACKAGES to add more.
set -euo pipefail

packages=(pkg-config gcc make meson ninja-build python3
          libopenblas-dev liblapacke-dev libarpack2-dev libcjson-dev zlib1g-dev
          libcriterion-dev gnuplot-nox fonts-dejavu-core dataset-fashion-mnist
          man-db groff-base  # the install test renders the manual page (man -l)
          chromium   # chromium: the report test opens report.html headless
          libopenmpi-dev openmpi-bin   # noether under mpirun (src/parallel/)
          python3-dev python3-numpy python3-torch python3-pytest)  # import noether and its tests
# shellcheck disable=SC2206
packages+=(${NOETHER_EXTRA_PACKAGES:-})

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "setup: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
