#!/bin/sh
# main ends before the process does (tests/legacy/mainexit.c), four ways:
# pthread_exit, cancellation in a wait, asynchronous cancellation, and
# pthread_exit once another thread has detached main. Each way
# runs natively and preloaded (run.sh) with the same output and status.
set -u
src=${GOSHIM_SRCDIR:-.}
prog=${GOSHIM_BUILDDIR:-.}/tests/legacy/mainexit
for how in exit cancel async detach; do
  echo "--- main ends by: $how"
  sh "$src/tests/legacy/run.sh" "$prog" "$how" || exit $?
done
exit 0
