#!/bin/sh
# Runs one plain pthread program (built without goshim) natively, then
# under LD_PRELOAD=libgoshim.so at GOMAXPROCS=1 and 2, and at 2 once more
# without the asymmetric fences (GOSHIM_DEBUG=membarrier=0: the runtime's
# path on kernels without membarrier), and requires the
# same standard output and exit status each time, and that the preloaded
# runs made goroutines of the program's threads (GOSHIM_DEBUG=exitstats=1
# prints "goshim: N pthreads ran as goroutines" at exit).
# Usage: run.sh PROGRAM [ARGUMENT...]. Exit 77 (skipped) in sanitizer builds: a
# sanitized library cannot be preloaded into an unsanitized program.
set -u
prog=$1
shift
args="$*" # words without spaces, passed to every run
lib=${GOSHIM_LIB:?GOSHIM_LIB not set}
TEST_EMULATOR=${TEST_EMULATOR:-}
[ -n "${GOSHIM_SANITIZER:-}" ] && { echo "skipped: $GOSHIM_SANITIZER build"; exit 77; }
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT

run() { # env assignments for the preloaded run, or nothing for native
  if [ $# -eq 0 ]; then
    $TEST_EMULATOR "$prog" $args
  elif [ -n "${TEST_EMULATOR:-}" ]; then
    set -- "$@" "LD_PRELOAD=$lib"
    envargs=
    for a in "$@"; do envargs="$envargs -E $a"; done
    $TEST_EMULATOR $envargs "$prog" $args
  else
    env "$@" LD_PRELOAD="$lib" "$prog" $args
  fi
}

run > "$tmp/native.out" 2> "$tmp/native.err"
native=$?
echo "native: exit $native, $(wc -l < "$tmp/native.out") lines"
[ "$native" -eq 0 ] || { cat "$tmp/native.out" "$tmp/native.err"; echo "FAIL: the native run failed"; exit 1; }

for config in 1 2 2,membarrier=0; do
  procs=${config%%,*}
  debug=exitstats=1${config#$procs}
  run GOMAXPROCS=$procs GOSHIM_DEBUG=$debug > "$tmp/goshim.out" 2> "$tmp/goshim.err"
  status=$?
  if [ "$status" -ne "$native" ] || ! cmp -s "$tmp/native.out" "$tmp/goshim.out"; then
    echo "FAIL: GOMAXPROCS=$procs GOSHIM_DEBUG=$debug: exit $status (native $native), output differs:"
    diff "$tmp/native.out" "$tmp/goshim.out" | head -40
    echo "--- stderr"; tail -40 "$tmp/goshim.err"
    exit 1
  fi
  # the last line: fork children print theirs too, and the parent ends last
  n=$(sed -n 's/^goshim: \([0-9][0-9]*\) pthreads ran as goroutines$/\1/p' "$tmp/goshim.err" | tail -n 1)
  if [ -z "$n" ] || [ "$n" -eq 0 ]; then
    echo "FAIL: GOMAXPROCS=$procs GOSHIM_DEBUG=$debug: the threads did not run as goroutines:"
    cat "$tmp/goshim.err"
    exit 1
  fi
  echo "GOMAXPROCS=$procs GOSHIM_DEBUG=$debug: same output and exit status; $n pthreads ran as goroutines"
done
exit 0
