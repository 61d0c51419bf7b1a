#!/bin/sh
# Debian's own threaded programs under LD_PRELOAD=libgoshim.so: each runs
# natively and preloaded, and its results must be identical, with its
# threads run as goroutines (GOSHIM_DEBUG=exitstats=1).
#   pigz -p 8      compress + decompress round trip
#   sort           --parallel=8 over 2 million lines
#   sysbench       threads (yield + mutex) and mutex, fixed event counts
# Usage: tests/compat/run.sh LIBGOSHIM.so   (scripts/test runs it)
set -eu
lib=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
[ -f "$lib" ] || { echo "tests/compat: no library at $1"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

goshim() { # command...: runs it preloaded; stderr to $tmp/err
  GOSHIM_DEBUG=exitstats=1 LD_PRELOAD="$lib" "$@" 2>"$tmp/err"
}
ran_as_goroutines() { # what
  n=$(sed -n 's/^goshim: \([0-9][0-9]*\) pthreads ran as goroutines$/\1/p' "$tmp/err" | sort -n | tail -1)
  if [ -z "$n" ] || [ "$n" -eq 0 ]; then
    echo "FAIL: $1: no thread ran as a goroutine"; cat "$tmp/err"; fail=1; return 1
  fi
  echo "ok: $1 ($n pthreads ran as goroutines)"
}

# Deterministic input: 2 million shuffled numbers; 3 million lines of text.
yes goshim | head -c 64000000 > "$tmp/random"
seq 1 2000000 | shuf --random-source="$tmp/random" > "$tmp/lines"
seq 1 3000000 | awk '{ print $1 * 7919 % 1000003, $1 * 31 % 65537, $1 }' > "$tmp/data"
want=$(md5sum < "$tmp/data")

# pigz: the preloaded compressor feeds the preloaded decompressor.
pigz -p 8 -c "$tmp/data" > "$tmp/native.gz"
goshim pigz -p 8 -c "$tmp/data" > "$tmp/goshim.gz"
ran_as_goroutines "pigz -p 8 (compress)" || true
got=$(goshim pigz -d -p 8 -c "$tmp/goshim.gz" | md5sum)
if [ "$got" != "$want" ]; then
  echo "FAIL: pigz round trip: $got, want $want"; fail=1
elif ! cmp -s "$tmp/native.gz" "$tmp/goshim.gz"; then
  echo "FAIL: pigz -p 8 output differs from the native run"; fail=1
else
  echo "ok: pigz -p 8 round trip, same compressed bytes as native"
fi

# sort --parallel=8
sort --parallel=8 -S 64M "$tmp/lines" > "$tmp/native.sorted"
goshim sort --parallel=8 -S 64M "$tmp/lines" > "$tmp/goshim.sorted"
ran_as_goroutines "sort --parallel=8" || true
if cmp -s "$tmp/native.sorted" "$tmp/goshim.sorted"; then
  echo "ok: sort --parallel=8, same output as native"
else
  echo "FAIL: sort --parallel=8 output differs from the native run"; fail=1
fi

# sysbench: the counts of a fixed number of events.
events() { sed -n 's/^ *total number of events: *\([0-9]*\)$/\1/p'; }
for t in "threads --threads=8 --events=2000" "mutex --threads=8 --mutex-num=64"; do
  # shellcheck disable=SC2086 # $t is a list of words
  native=$(sysbench $t --time=0 run | events)
  # shellcheck disable=SC2086
  got=$(goshim sysbench $t --time=0 run | events)
  ran_as_goroutines "sysbench $t" || true
  if [ -z "$native" ] || [ "$got" != "$native" ]; then
    echo "FAIL: sysbench $t: $got events, native $native"; fail=1
  else
    echo "ok: sysbench $t: $got events, as native"
  fi
done
exit $fail
