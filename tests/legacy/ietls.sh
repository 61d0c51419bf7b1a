#!/bin/sh
# dlopen of initial-exec TLS while threads exist (tests/legacy/ietls.c).
#   small (480 bytes): loads natively and preloaded alike (run.sh).
#   big (1,024 bytes): loads natively. Preloaded on x86-64, libgoshim has
#   cut glibc's static TLS surplus to 512 bytes (README, "A parked pthread
#   costs one page"): the dlopen fails with glibc's own message, and loads
#   again when GLIBC_TUNABLES sizes the surplus, which libgoshim then
#   leaves as glibc made it.
set -u
src=${GOSHIM_SRCDIR:-.}
prog=${GOSHIM_BUILDDIR:-.}/tests/legacy/ietls
sh "$src/tests/legacy/run.sh" "$prog" small || exit $?

# Only x86-64 cuts the surplus (not aarch64, here under qemu); sanitizer
# builds cannot be preloaded.
[ -n "${GOSHIM_SANITIZER:-}" ] && exit 0
[ -n "${TEST_EMULATOR:-}" ] && exit 0
[ "$(uname -m)" = x86_64 ] || exit 0
lib=${GOSHIM_LIB:?GOSHIM_LIB not set}
loaded='dlopen of big initial-exec TLS: loaded
20 threads made after it found its TLS initialised and kept their own over 5 blocking calls'
refused='dlopen of big initial-exec TLS: cannot allocate memory in static TLS block'
expect() { # name, wanted output, env assignments...
  name=$1 want=$2; shift 2
  got=$(env "$@" "$prog" big 2>&1)
  status=$?
  if [ "$status" -ne 0 ] || [ "$got" != "$want" ]; then
    printf 'FAIL: %s: exit %s, output:\n%s\nwanted:\n%s\n' "$name" "$status" "$got" "$want"
    exit 1
  fi
  echo "$name: as expected"
}
expect "big, native" "$loaded"
for procs in 1 2; do
  expect "big, preloaded, GOMAXPROCS=$procs" "$refused" GOMAXPROCS=$procs LD_PRELOAD="$lib"
  expect "big, preloaded with glibc.rtld.optional_static_tls, GOMAXPROCS=$procs" "$loaded" \
    GLIBC_TUNABLES=glibc.rtld.optional_static_tls=512 GOMAXPROCS=$procs LD_PRELOAD="$lib"
done
echo "ietls: all checks passed"
