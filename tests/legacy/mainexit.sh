#!/bin/sh
# main ends before the process does (tests/legacy/mainexit.c), five ways:
# pthread_exit, cancellation in a wait and in a system call, asynchronous
# cancellation, and pthread_exit once another thread has detached main.
# Each way runs natively and preloaded (run.sh) with the same output and
# status.
set -u
src=${GOSHIM_SRCDIR:-.}
prog=${GOSHIM_BUILDDIR:-.}/tests/legacy/mainexit
for how in exit cancel syscall async detach; do
  echo "--- main ends by: $how"
  sh "$src/tests/legacy/run.sh" "$prog" "$how" || exit $?
done

# term: once main has ended, SIGTERM from outside ends the process by its
# default action (status 143) while the thread left waits on a pipe, after
# blocking an unrelated signal. stuck: every thread, main too, waits for
# ever on a condvar or a join; the process waits as natively (Go would
# call it a deadlock) until SIGTERM ends it. (Under qemu-user the signal
# would go to the emulator: native runs only.)
[ -n "${GOSHIM_SANITIZER:-}" ] && exit 0
[ -n "${TEST_EMULATOR:-}" ] && exit 0
lib=${GOSHIM_LIB:?GOSHIM_LIB not set}
out=$(mktemp) || exit 1
trap 'rm -f "$out"' EXIT
term_run() { # mode, the line it prints once it waits, env assignments for a preloaded run
  mode=$1 ready=$2; shift 2
  if [ $# -eq 0 ]; then "$prog" "$mode" > "$out" 2>&1 &
  else env "$@" LD_PRELOAD="$lib" "$prog" "$mode" > "$out" 2>&1 &
  fi
  pid=$!
  i=0
  until grep -q "^$ready\$" "$out"; do
    i=$((i + 1)); [ "$i" -le 600 ] || break; sleep 0.05
  done
  sleep 0.2 # main's goroutine is gone by now
  kill -TERM "$pid"
  i=0
  while kill -0 "$pid" 2>/dev/null; do
    i=$((i + 1))
    if [ "$i" -gt 200 ]; then # 10 s: it took no notice
      kill -KILL "$pid"; wait "$pid"; return 200
    fi
    sleep 0.05
  done
  wait "$pid"
}
for mode in term stuck; do
  case $mode in
    term) ready='main ended; one thread waits' what='after main ended' ;;
    stuck) ready='every thread waits for ever' what='with every thread waiting for ever' ;;
  esac
  echo "--- $mode: SIGTERM $what"
  term_run $mode "$ready"; native=$?
  [ "$native" -eq 143 ] || { cat "$out"; echo "FAIL: native exit $native, want 143"; exit 1; }
  for procs in 1 2; do
    term_run $mode "$ready" GOMAXPROCS=$procs; status=$?
    [ "$status" -eq 143 ] || { cat "$out"; echo "FAIL: GOMAXPROCS=$procs: exit $status, native 143"; exit 1; }
    echo "GOMAXPROCS=$procs: SIGTERM $what: exit 143, as native"
  done
done
exit 0
