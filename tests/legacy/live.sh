#!/bin/sh
# 100,000 pthreads live at once under LD_PRELOAD (issue 4): tests/legacy/live
# creates them all, each waiting on one condvar, and joins them. Preloaded
# at GOMAXPROCS=1 and 2 every thread must arrive and be joined, on a few
# kernel threads (goroutines, not OS threads). Natively the same program
# stops near pid_max (32,768 on this project's machines), which is why the
# native run is not part of this test: it would only measure the machine.
set -u
lib=${GOSHIM_LIB:?GOSHIM_LIB not set}
prog=${GOSHIM_BUILDDIR:-.}/tests/legacy/live
n=100000
[ -n "${GOSHIM_SANITIZER:-}" ] && { echo "skipped: $GOSHIM_SANITIZER build"; exit 77; }
# 100,000 default (8 MiB) stack reservations are 800 GB of address space:
# more than qemu-user gives a guest.
[ -n "${TEST_EMULATOR:-}" ] && { echo "skipped: cross build"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }

for procs in 1 2; do
  out=$(GOMAXPROCS=$procs LD_PRELOAD=$lib "$prog" $n 2>&1)
  status=$?
  [ "$status" -eq 0 ] || fail "GOMAXPROCS=$procs: exit $status: $out"
  echo "$out" | grep -qx "$n threads waited on one condvar at once" ||
    fail "GOMAXPROCS=$procs: not every thread arrived: $out"
  echo "$out" | grep -qx "all $n joined" || fail "GOMAXPROCS=$procs: not every thread joined: $out"
  k=$(echo "$out" | sed -n 's/^kernel threads while they waited: \([0-9][0-9]*\)$/\1/p')
  # GOMAXPROCS Ms, sysmon, and Ms left from handoffs: a few, not one per thread.
  [ -n "$k" ] && [ "$k" -le 64 ] || fail "GOMAXPROCS=$procs: $k kernel threads for $n pthreads: $out"
  echo "GOMAXPROCS=$procs: $n pthreads waited at once on $k kernel threads, all joined"
done
exit 0
