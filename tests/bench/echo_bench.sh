#!/bin/sh
# echo_bench.sh MODE CONNS: one run of the echo-server benchmark
# (scripts/bench's echo_* metrics and its --plot sweep).
#
# Starts a thread-per-connection echo server, drives CONNS connections of
# 64-byte round trips at it for ECHO_SECONDS (default 5) with
# tests/demo/echo_client (one thread, epoll, never preloaded), stops it,
# and prints on stdout:
#   RESULT echo_rt      round trips per second, all connections  ops/s
#   RESULT echo_p50     median round-trip latency                us
#   RESULT echo_p99     99th percentile round-trip latency       us
#   RESULT echo_rss     server RSS per connection: (RSS with every
#                       connection up - RSS before the first) / CONNS  KiB/conn
#   RESULT echo_threads the server's OS threads with every connection up  threads
# MODE picks the server:
#   native     tests/demo/echo_server (one pthread per connection)
#   libgoshim  the same binary under scripts/goshim-run (LD_PRELOAD)
#   go         the Go twin, tests/bench/go/echo_server (goroutine per
#              connection), built by scripts/bench to bench/go/echo_server
# Binaries come from the build directory: the current directory if it has
# tests/demo/echo_server (scripts/bench runs from build-native/), else
# build-native/ next to this script. Any failure (a server that does not
# start or dies, a client error, fewer connections than asked) is a
# message on stderr and exit status 1; 2 for a usage error.
set -u
me=echo_bench
usage() { echo "usage: $me native|libgoshim|go CONNS  (env ECHO_SECONDS: measured seconds, default 5)" >&2; exit 2; }
die() { echo "$me: $*" >&2; exit 1; }

[ $# -eq 2 ] || usage
mode=$1 conns=$2
case "$mode" in native|libgoshim|go) ;; *) usage ;; esac
case "$conns" in ''|*[!0-9]*|0*) usage ;; esac
seconds=${ECHO_SECONDS:-5}
case "$seconds" in ''|*[!0-9]*|0*) die "ECHO_SECONDS must be a positive integer, not '$seconds'" ;; esac

top=$(cd "$(dirname "$0")/../.." && pwd)
if [ -x tests/demo/echo_server ]; then bd=$(pwd); else bd=$top/build-native; fi
client=$bd/tests/demo/echo_client
case "$mode" in
  go) server=$bd/bench/go/echo_server ;;
  *) server=$bd/tests/demo/echo_server ;;
esac
for p in "$client" "$server"; do
  [ -x "$p" ] || die "$p is not built (scripts/bench builds it; or make in $bd)"
done
if [ "$mode" = libgoshim ]; then
  # The library of this build directory, whatever goshim-run would find.
  lib=${GOSHIM_LIB:-$bd/.libs/libgoshim.so}
  [ -f "$lib" ] || die "$lib is not built"
fi

# Server and client are separate processes, each with a descriptor per
# connection (both raise their soft limit to the hard one). Too few is an
# error, not a smaller run: the result would be mislabelled.
# shellcheck disable=SC3045 # dash's and bash's ulimit have -H
hard=$(ulimit -Hn 2>/dev/null || echo unlimited)
if [ "$hard" != unlimited ] && [ "$conns" -gt $((hard - 100)) ]; then
  die "$conns connections need more descriptors than ulimit -Hn ($hard) allows"
fi

tmp=$(mktemp -d) || die "mktemp failed"
pid=
cleanup() {
  if [ -n "$pid" ]; then
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# Tells why, with the tails of what the processes said, and exits 1.
fail() {
  echo "$me: $mode, $conns connections: $*" >&2
  for f in client.err server.err; do
    [ -s "$tmp/$f" ] && sed "s/^/$me: $f: /" "$tmp/$f" | tail -n 5 >&2
  done
  exit 1
}

# Start the server; goshim-run execs it, so $! is the server's pid.
# (Each a simple command of its own: a backgrounded compound command's $!
# would be a subshell's.)
if [ "$mode" = libgoshim ]; then
  GOSHIM_LIB=$lib "$top/scripts/goshim-run" "$server" -p 0 -f "$tmp/port" \
    </dev/null >"$tmp/server.out" 2>"$tmp/server.err" &
else
  "$server" -p 0 -f "$tmp/port" </dev/null >"$tmp/server.out" 2>"$tmp/server.err" &
fi
pid=$!
i=0
while [ ! -s "$tmp/port" ]; do
  if ! kill -0 "$pid" 2>/dev/null; then
    wait "$pid"
    rc=$?
    pid=
    fail "the server exited (status $rc) before writing its port"
  fi
  i=$((i + 1))
  [ "$i" -le 100 ] || fail "the server did not write its port within 10 s"
  sleep 0.1
done
port=$(cat "$tmp/port")
case "$port" in ''|*[!0-9]*) fail "the server wrote '$port' as its port" ;; esac

# The server's RSS before any connection: echo_rss is what connections add.
rss_kib() { awk '$1 == "VmRSS:" { print $2; exit }' "/proc/$1/status" 2>/dev/null; }
idle=$(rss_kib "$pid")
[ -n "$idle" ] || fail "cannot read /proc/$pid/status"

"$client" -p "$port" -c "$conns" -s 64 -d "$seconds" -P "$pid" -q \
  >"$tmp/client.out" 2>"$tmp/client.err" </dev/null
status=$?

if ! kill -0 "$pid" 2>/dev/null; then
  wait "$pid"
  rc=$?
  pid=
  fail "the server died during the run (status $rc)"
fi
kill "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
pid=

got() { sed -n "s/^$1 //p" "$tmp/client.out"; }
established=$(got connections) errors=$(got errors)
rt=$(got rt_per_s) p50=$(got p50_us) p99=$(got p99_us)
threads=$(got server_threads) rss=$(got server_rss_kib)
[ "$status" -eq 0 ] || fail "the client exited with status $status (${established:-?} connections up, ${errors:-?} errors)"
[ "$errors" = 0 ] || fail "the client saw $errors errors"
[ "$established" = "$conns" ] || fail "${established:-no} connections up, not $conns"
for v in "$rt" "$p50" "$p99" "$threads" "$rss"; do
  case "$v" in ''|-*) fail "the client printed no figures, or no server thread count or RSS" ;; esac
done

awk -v rt="$rt" -v p50="$p50" -v p99="$p99" -v th="$threads" -v rss="$rss" -v idle="$idle" \
    -v n="$conns" 'BEGIN {
  printf "RESULT echo_rt %s ops/s\n", rt
  printf "RESULT echo_p50 %s us\n", p50
  printf "RESULT echo_p99 %s us\n", p99
  d = (rss - idle) / n
  printf "RESULT echo_rss %.3f KiB/conn\n", d < 0 ? 0 : d
  printf "RESULT echo_threads %d threads\n", th
}'
echo "$me: $mode, $conns connections, ${seconds} s: $rt round trips/s, p99 $p99 us," \
  "$threads server threads, server RSS $idle KiB idle, $rss KiB loaded" >&2
