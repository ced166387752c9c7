#!/usr/bin/env bash
# Prints the path of the 80S ribosome map (EMD-3883, 64³ at 8.66 Å/px) after fetching it once: the map
# ships inside the zarr-particle-tools 1.0.1 source distribution on PyPI, which `pip download` brings
# without building or installing anything. Cached in ${ML_TOMO_CACHE:-~/.cache/ml_tomo}.
set -euo pipefail
cache=${ML_TOMO_CACHE:-$HOME/.cache/ml_tomo}
map="$cache/ribo80s_emd_3883_866_64_resized.mrc"
if [ ! -s "$map" ]; then
  mkdir -p "$cache"
  tmp=$(mktemp -d "$cache/download.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  python3 -m pip install -q hatchling hatch-vcs >/dev/null 2>&1 \
    || python3 -m pip install -q --break-system-packages hatchling hatch-vcs >/dev/null 2>&1 || true
  if ! python3 -m pip download -q --no-binary :all: --no-deps --no-build-isolation zarr-particle-tools==1.0.1 \
         -d "$tmp" >"$tmp/pip.log" 2>&1; then
    echo "fetch-ribosome: could not download zarr-particle-tools 1.0.1 from PyPI (it carries the EMD-3883 map):" >&2
    tail -3 "$tmp/pip.log" >&2
    echo "fetch-ribosome: give a map yourself with RIBOSOME=/path/to/map.mrc" >&2
    exit 1
  fi
  tar -xzf "$tmp"/zarr_particle_tools-1.0.1.tar.gz -C "$tmp" \
      zarr_particle_tools-1.0.1/tests/templates/ribo80s_emd_3883_866_64_resized.mrc
  mv "$tmp/zarr_particle_tools-1.0.1/tests/templates/ribo80s_emd_3883_866_64_resized.mrc" "$map.part"
  mv "$map.part" "$map"
fi
echo "$map"
