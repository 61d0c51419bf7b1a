#!/bin/sh
# The shared library exports exactly the API (lib/goshim.map), nothing of
# the runtime: every dynamic symbol it defines must be a go_* function.
set -e
lib=${GOSHIM_LIB:?GOSHIM_LIB not set}
nm=${NM:-nm}
command -v "$nm" >/dev/null 2>&1 || nm=nm
defined=$($nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRW]$/ {print $3}' | sed 's/@.*//' | sort -u)
[ -n "$defined" ] || { echo "no exported symbols in $lib"; exit 1; }
bad=$(printf '%s\n' "$defined" | grep -v '^go_' | grep -v '^GOSHIM_' || true)
if [ -n "$bad" ]; then
  echo "unexpected exported symbols:"; printf '%s\n' "$bad"; exit 1
fi
# Every function goshim.h declares must be exported.
header=${GOSHIM_HEADER:?GOSHIM_HEADER not set}
declared=$(sed -n 's/^GOSHIM_API[^(]*[ *]\(go_[a-z_0-9]*\)(.*/\1/p' "$header" | sort -u)
[ "$(printf '%s\n' "$declared" | wc -l)" -ge 40 ] || { echo "could not read the API from $header"; exit 1; }
for sym in $declared; do
  printf '%s\n' "$defined" | grep -qx "$sym" || { echo "missing export: $sym"; exit 1; }
done
echo "exports ok: $(printf '%s\n' "$defined" | wc -l) symbols"
