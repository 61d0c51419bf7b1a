#!/bin/sh
# The shared library exports exactly the API (lib/goshim.map) and the
# interposed POSIX functions, nothing of the runtime: every dynamic symbol it
# defines must be a go_* function or one of the interposed functions, and
# each interposed function is defined under glibc's symbol versions.
set -e
lib=${GOSHIM_LIB:?GOSHIM_LIB not set}
nm=${NM:-nm}
command -v "$nm" >/dev/null 2>&1 || nm=nm
defined=$($nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRW]$/ {print $3}' | sed 's/@.*//' | sort -u)
[ -n "$defined" ] || { echo "no exported symbols in $lib"; exit 1; }
interposed="pthread_create pthread_join pthread_tryjoin_np pthread_timedjoin_np
  pthread_clockjoin_np pthread_detach pthread_exit pthread_getattr_np pthread_setname_np
  pthread_getname_np pthread_mutex_init pthread_mutex_destroy pthread_mutex_lock
  pthread_mutex_trylock pthread_mutex_timedlock pthread_mutex_clocklock pthread_mutex_unlock
  pthread_cond_init pthread_cond_destroy pthread_cond_wait pthread_cond_timedwait
  pthread_cond_clockwait pthread_cond_signal pthread_cond_broadcast sched_yield pthread_yield pthread_cancel
  pthread_barrier_init pthread_barrier_wait pthread_barrier_destroy pthread_spin_lock
  pthread_rwlock_init pthread_rwlock_destroy pthread_rwlock_rdlock pthread_rwlock_tryrdlock
  pthread_rwlock_timedrdlock pthread_rwlock_clockrdlock pthread_rwlock_wrlock pthread_rwlock_trywrlock
  pthread_rwlock_timedwrlock pthread_rwlock_clockwrlock pthread_rwlock_unlock
  sem_init sem_destroy sem_wait sem_trywait sem_timedwait sem_clockwait sem_post sem_getvalue
  pthread_sigmask sigprocmask pthread_kill sigpending pthread_setaffinity_np pthread_getaffinity_np
  sigpause __xpg_sigpause __libc_start_main"
# The I/O and sleep functions are named, with their versions, by the SYMVER
# lines of their sources: each must be exported at exactly that version.
src=${GOSHIM_SRCDIR:?GOSHIM_SRCDIR not set}
symvers=$(sed -n 's/^SYMVER(\([a-z_0-9]*\), \(V_[A-Z0-9_]*\));$/\1 \2/p' "$src"/interpose/*.c)
[ "$(printf '%s\n' "$symvers" | wc -l)" -ge 90 ] || { echo "could not read the SYMVER lines of $src/interpose"; exit 1; }
interposed="$interposed $(printf '%s\n' "$symvers" | cut -d' ' -f1)"
bad=$(printf '%s\n' "$defined" | grep -v '^go_' | grep -v '^GOSHIM_' | grep -v '^GLIBC_' |
  grep -vxF "$(printf '%s\n' $interposed)" || true)
if [ -n "$bad" ]; then
  echo "unexpected exported symbols:"; printf '%s\n' "$bad"; exit 1
fi
# Every function goshim.h declares must be exported.
header=${GOSHIM_HEADER:?GOSHIM_HEADER not set}
declared=$(sed -n 's/^GOSHIM_API[^(]*[ *]\(go_[a-z_0-9]*\)(.*/\1/p' "$header" | sort -u)
[ "$(printf '%s\n' "$declared" | wc -l)" -ge 40 ] || { echo "could not read the API from $header"; exit 1; }
for sym in $declared; do
  printf '%s\n' "$defined" | grep -qx "$sym" || { echo "missing export: $sym"; exit 1; }
done
# Binaries bind to a version: both the glibc 2.34 and the base version of
# pthread_create and __libc_start_main must be there.
versions=$($nm -D --defined-only "$lib" | awk '{print $3}')
for v in 'pthread_create@@GLIBC_2.34' 'pthread_join@@GLIBC_2.34' 'pthread_mutex_lock@@GLIBC_' \
         '__libc_start_main@@GLIBC_2.34'; do
  printf '%s\n' "$versions" | grep -q "^$v" || { echo "missing versioned export: $v"; exit 1; }
done
for sym in pthread_create __libc_start_main; do
  printf '%s\n' "$versions" | grep -Eq "^$sym@GLIBC_2\.(2\.5|17)\$" ||
    { echo "missing export: $sym at the base glibc version"; exit 1; }
done
for sym in $interposed; do
  printf '%s\n' "$defined" | grep -qx "$sym" || { echo "missing interposed function: $sym"; exit 1; }
done
# A SYMVER's version macro names the glibc version (aarch64: at least its
# base, 2.17); the symbol must carry it as its default version.
printf '%s\n' "$symvers" | while read -r sym ver; do
  printf '%s\n' "$versions" | grep -q "^$sym@@GLIBC_" || { echo "$sym is not exported at a glibc version ($ver)"; exit 1; }
done
echo "exports ok: $(printf '%s\n' "$defined" | wc -l) symbols"
