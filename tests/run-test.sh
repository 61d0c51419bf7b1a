#!/bin/sh
# Automake's LOG_COMPILER: runs a test program, under $TEST_EMULATOR
# (qemu-aarch64 for a cross build) when it is a binary; the legacy pthread
# programs through tests/legacy/run.sh.
case "$1" in
  *.sh) exec sh "$@" ;;
  */legacy/*) exec sh "$GOSHIM_SRCDIR/tests/legacy/run.sh" "$@" ;;
esac
exec $TEST_EMULATOR "$@"
