#!/bin/sh
# The man pages render without a warning, and goshim(3) documents every
# function goshim.h declares.
set -e
src=${GOSHIM_SRCDIR:?GOSHIM_SRCDIR not set}
for page in "$src/man/goshim.3" "$src/man/goshim-run.1"; do
  out=$(LC_ALL=C.UTF-8 MANWIDTH=80 man -l -Tutf8 "$page" 2>&1 >/dev/null)
  [ -z "$out" ] || { echo "man -l $page:"; echo "$out"; exit 1; }
  out=$(groff -man -ww -z "$page" 2>&1)
  [ -z "$out" ] || { echo "groff $page:"; echo "$out"; exit 1; }
done
missing=
for fn in $(sed -n 's/^GOSHIM_API[^(]*[ *]\(go_[a-z_0-9]*\)(.*/\1/p' "$src/lib/goshim.h"); do
  case "$fn" in go_spawn_ffi) continue ;; esac # internal: go()'s trampoline
  grep -q "$fn" "$src/man/goshim.3" || missing="$missing $fn"
done
[ -z "$missing" ] || { echo "goshim.3 does not document:$missing"; exit 1; }
echo "man pages ok"
