#!/bin/sh
# The acceptance test of the netpoller: a stock thread-per-connection echo
# server (tests/demo/echo_server, built without goshim), preloaded at
# GOMAXPROCS=1 and 2, serves 10,000 concurrent connections
# (tests/demo/echo_client, 3 verified round trips each) with a handful of
# OS threads, because its blocking reads park goroutines instead of
# threads. A native run first proves the test would notice one thread per
# connection.
# Run from the build directory's top; ECHO_CONNS overrides the 10,000 for
# quick manual runs. Exit 77 (skipped) under an emulator or in sanitizer
# builds: a sanitized library cannot be preloaded into an unsanitized program.
set -u
lib=${GOSHIM_LIB:?GOSHIM_LIB not set}
[ -n "${TEST_EMULATOR:-}" ] && { echo "skipped: runs natively only, not under $TEST_EMULATOR"; exit 77; }
[ -n "${GOSHIM_SANITIZER:-}" ] && { echo "skipped: $GOSHIM_SANITIZER build"; exit 77; }
server=tests/demo/echo_server
client=tests/demo/echo_client
for p in "$server" "$client"; do
  [ -x "$p" ] || { echo "FAIL: $p not built (run from the build directory)"; exit 1; }
done

conns=${ECHO_CONNS:-10000}
native_conns=1000
# The server and the client are separate processes, each with one
# descriptor per connection plus a few of its own; both raise their soft
# limit to the hard one.
hard=$(ulimit -Hn 2>/dev/null || echo unlimited)
if [ "$hard" != unlimited ]; then
  fit=$((hard - 100))
  if [ "$fit" -lt 100 ]; then
    echo "skipped: ulimit -Hn is $hard, too few descriptors for the test"
    exit 77
  fi
  if [ "$conns" -gt "$fit" ]; then
    echo "note: ulimit -Hn is $hard, so $fit connections instead of $conns"
    conns=$fit
  fi
  [ "$native_conns" -gt "$fit" ] && native_conns=$fit
fi

tmp=$(mktemp -d) || exit 1
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

fail() {
  echo "FAIL: $*"
  echo "--- client stderr"; tail -20 "$tmp/client.err" 2>/dev/null
  echo "--- client stdout"; cat "$tmp/client.out" 2>/dev/null
  echo "--- server stderr"; tail -20 "$tmp/server.err" 2>/dev/null
  exit 1
}

# start_server ENV... : starts the server (under env with ENV, if given)
# and waits for it to write its port.
start_server() {
  rm -f "$tmp/port"
  if [ $# -gt 0 ]; then
    env "$@" "$server" -f "$tmp/port" > "$tmp/server.out" 2> "$tmp/server.err" &
  else
    "$server" -f "$tmp/port" > "$tmp/server.out" 2> "$tmp/server.err" &
  fi
  pid=$!
  i=0
  while [ ! -s "$tmp/port" ]; do
    kill -0 "$pid" 2>/dev/null || { wait "$pid"; pid=; fail "the server exited before listening"; }
    i=$((i + 1))
    [ "$i" -le 100 ] || fail "the server did not write its port within 10 s"
    sleep 0.1
  done
  port=$(cat "$tmp/port")
}

stop_server() {
  kill -0 "$pid" 2>/dev/null || { wait "$pid"; pid=; fail "the server died during the run"; }
  kill "$pid"
  wait "$pid" 2>/dev/null
  pid=
}

got() { sed -n "s/^$1 //p" "$tmp/client.out"; } # a result of the client

# run_client LABEL CONNS: 3 round trips per connection; sets status and
# the result variables, prints the summary line.
run_client() {
  "$client" -p "$port" -c "$2" -s 64 -r 3 -P "$pid" -q > "$tmp/client.out" 2> "$tmp/client.err"
  status=$?
  connections=$(got connections) errors=$(got errors) threads=$(got server_threads)
  rss=$(got server_rss_kib) rt=$(got rt_per_s) p99=$(got p99_us)
  echo "$1: ${connections:-?} connections, ${rt:-?} round trips/s, p99 $(awk "BEGIN{printf \"%.1f\", ${p99:-0}/1000}") ms," \
    "${threads:-?} server threads, RSS $(awk "BEGIN{printf \"%.1f\", ${rss:-0}/1024}") MiB"
  [ "$status" -eq 0 ] || fail "$1: the client exited with $status"
  [ "$errors" = 0 ] || fail "$1: $errors errors"
  [ "$connections" = "$2" ] || fail "$1: $connections connections, not $2"
  case "$threads" in ''|-*) fail "$1: no server thread count" ;; esac
}

# Natively, thread-per-connection shows: a thread per connection (plus main).
start_server
run_client native "$native_conns"
stop_server
[ "$threads" -ge "$native_conns" ] ||
  fail "native: $threads server threads for $native_conns connections: the test cannot see threads"

for procs in 1 2; do
  start_server LD_PRELOAD="$lib" GOMAXPROCS="$procs" GOSHIM_DEBUG=exitstats=1
  run_client "GOMAXPROCS=$procs" "$conns"
  stop_server
  # SIGTERM skips atexit, so no "pthreads ran as goroutines" line: the
  # thread count is the evidence. OS threads allowed: GOMAXPROCS Ms running
  # goroutines, main's M (main stays locked to its own thread), sysmon,
  # and a few Ms parked or in syscalls: procs + 8 in all, however many
  # connections.
  bound=$((procs + 8))
  [ "$threads" -le "$bound" ] ||
    fail "GOMAXPROCS=$procs: $threads server OS threads for $conns connections (at most $bound):" \
      "the connections did not run as goroutines parked in the netpoller"
done
exit 0
