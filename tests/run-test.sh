#!/bin/sh
# Automake's LOG_COMPILER: runs a test program, under $TEST_EMULATOR
# (qemu-aarch64 for a cross build) when it is a binary.
case "$1" in
  *.sh) exec sh "$@" ;;
esac
exec $TEST_EMULATOR "$@"
