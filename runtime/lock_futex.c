/*
 * Runtime locks and notes on futexes, ported from Go's
 * runtime/lock_futex.go and runtime/os_linux.go (futexsleep/futexwakeup).
 *
 * mutex_t: 0 unlocked, 1 locked, 2 locked with sleepers. A locker spins
 * briefly (active_spin rounds of pause, then passive_spin sched_yield-like
 * rounds) before it sleeps, because the holder of a runtime lock never
 * blocks while holding it.
 * note_t: a one-shot event. notesleep blocks until notewakeup; noteclear
 * rearms it. Exactly one thread sleeps on a note and exactly one wakes it
 * (Go's rule), so a double wake-up is a broken invariant.
 */
#include <errno.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "runtime/runtime.h"

enum { mutex_unlocked = 0, mutex_locked = 1, mutex_sleeping = 2 };
enum { active_spin = 4, active_spin_cnt = 30, passive_spin = 1 };

/* os_linux.go: futexsleep. Sleeps while *addr == val, at most ns (< 0:
 * forever). Spurious wake-ups are allowed; callers re-check. */
int futexsleep(_Atomic uint32_t *addr, uint32_t val, int64_t ns)
{
	struct timespec ts, *tsp = NULL;
	if (ns >= 0) {
		ts.tv_sec = ns / 1000000000;
		ts.tv_nsec = ns % 1000000000;
		tsp = &ts;
	}
	return (int)syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, val, tsp, NULL, 0);
}

void futexwakeup(_Atomic uint32_t *addr, int cnt)
{
	if (syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, cnt, NULL, NULL, 0) < 0)
		throw("futexwakeup failed");
}

/* lock_futex.go: lock2 */
void lock(mutex_t *l)
{
	struct g *gp = getg();
	if (gp && gp->m)
		gp->m->locks++;
	uint32_t v = atomic_exchange_explicit(&l->key, mutex_locked, memory_order_acquire);
	if (likely(v == mutex_unlocked))
		return;
	/* wait is mutex_locked or mutex_sleeping: what we must leave behind
	 * when we finally get it, so an unlocker knows to wake someone. */
	uint32_t wait = v;
	for (;;) {
		for (int i = 0; i < active_spin; i++) {
			while (atomic_load_explicit(&l->key, memory_order_relaxed) == mutex_unlocked) {
				uint32_t exp = mutex_unlocked;
				if (atomic_compare_exchange_weak_explicit(&l->key, &exp, wait,
				        memory_order_acquire, memory_order_relaxed))
					return;
			}
			procyield(active_spin_cnt);
		}
		for (int i = 0; i < passive_spin; i++) {
			while (atomic_load_explicit(&l->key, memory_order_relaxed) == mutex_unlocked) {
				uint32_t exp = mutex_unlocked;
				if (atomic_compare_exchange_weak_explicit(&l->key, &exp, wait,
				        memory_order_acquire, memory_order_relaxed))
					return;
			}
			syscall(SYS_sched_yield);
		}
		v = atomic_exchange_explicit(&l->key, mutex_sleeping, memory_order_acquire);
		if (v == mutex_unlocked)
			return;
		wait = mutex_sleeping;
		futexsleep(&l->key, mutex_sleeping, -1);
	}
}

/* lock_futex.go: unlock2 */
void unlock(mutex_t *l)
{
	uint32_t v = atomic_exchange_explicit(&l->key, mutex_unlocked, memory_order_release);
	if (unlikely(v == mutex_unlocked))
		throw("unlock of unlocked lock");
	if (v == mutex_sleeping)
		futexwakeup(&l->key, 1);
	struct g *gp = getg();
	if (gp && gp->m)
		gp->m->locks--;
}

void noteclear(note_t *n)
{
	atomic_store_explicit(&n->key, 0, memory_order_relaxed);
}

void notewakeup(note_t *n)
{
	uint32_t old = atomic_exchange_explicit(&n->key, 1, memory_order_release);
	if (unlikely(old != 0))
		throw("notewakeup - double wakeup");
	futexwakeup(&n->key, 1);
}

void notesleep(note_t *n)
{
	while (atomic_load_explicit(&n->key, memory_order_acquire) == 0)
		futexsleep(&n->key, 0, -1);
}

/* notesleep after spinning up to spin_ns for the wake-up (on more than
 * one CPU): a wake-up that finds the sleeper still spinning costs it a
 * load, where waking a thread asleep on a futex from another CPU costs
 * 20-25 us on these machines (notes/anchor-figures.md). */
void notesleep_spin(note_t *n, int64_t spin_ns)
{
	static int ncpu;
	if (!ncpu)
		ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (ncpu > 1) {
		int64_t end = nanotime() + spin_ns;
		do {
			for (int i = 0; i < 100; i++) {
				if (atomic_load_explicit(&n->key, memory_order_acquire) != 0)
					return;
				procyield(10);
			}
		} while (nanotime() < end);
	}
	notesleep(n);
}

/* lock_futex.go: notetsleep_internal. Returns whether the note was woken. */
bool notetsleep(note_t *n, int64_t ns)
{
	if (ns < 0) {
		notesleep(n);
		return true;
	}
	if (atomic_load_explicit(&n->key, memory_order_acquire) != 0)
		return true;
	int64_t deadline = nanotime() + ns;
	for (;;) {
		futexsleep(&n->key, 0, ns);
		if (atomic_load_explicit(&n->key, memory_order_acquire) != 0)
			return true;
		int64_t now = nanotime();
		if (now >= deadline)
			return false;
		ns = deadline - now;
	}
}
