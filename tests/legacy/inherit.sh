#!/bin/sh
# Descriptors a preloaded program inherits stay as the parent left them
# (issue 5: inherited descriptors run as system calls and are never made
# non-blocking). The shell, not preloaded, opens a fifo read-write on fd 3
# and a pipe on stdin; preloaded programs read from both; afterwards the
# shell's own descriptors are still blocking (O_NONBLOCK, octal 04000, is
# clear in /proc/$$/fdinfo) and the data arrived.
set -u
lib=${GOSHIM_LIB:?GOSHIM_LIB not set}
[ -n "${GOSHIM_SANITIZER:-}" ] && { echo "skipped: $GOSHIM_SANITIZER build"; exit 77; }
[ -n "${TEST_EMULATOR:-}" ] && { echo "skipped: cross build"; exit 77; }
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

nonblocking() { # fd: is O_NONBLOCK set on this shell's fd?
  flags=$(sed -n 's/^flags:[[:space:]]*//p' "/proc/$$/fdinfo/$1")
  [ -n "$flags" ] || fail "cannot read the flags of fd $1"
  [ $(( 0$flags & 04000 )) -ne 0 ]
}

mkfifo "$tmp/fifo" || exit 1
exec 3<>"$tmp/fifo"
nonblocking 3 && fail "the fifo starts non-blocking"
for procs in 1 2; do
  printf 'line %s\n' "$procs" >&3
  got=$(GOMAXPROCS=$procs LD_PRELOAD=$lib head -n 1 <&3) || fail "head failed"
  [ "$got" = "line $procs" ] || fail "GOMAXPROCS=$procs: read '$got' from the fifo"
  nonblocking 3 && fail "GOMAXPROCS=$procs: the preloaded program left the inherited fifo non-blocking"
  got=$(printf 'piped %s\n' "$procs" | GOMAXPROCS=$procs LD_PRELOAD=$lib sh -c 'read -r l; echo "$l"') ||
    fail "sh failed"
  [ "$got" = "piped $procs" ] || fail "GOMAXPROCS=$procs: read '$got' from a pipe on stdin"
  echo "GOMAXPROCS=$procs: inherited fifo and stdin pipe read, left blocking"
done
exec 3>&-
exit 0
