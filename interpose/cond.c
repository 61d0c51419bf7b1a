/*
 * pthread_cond_t as a queue of parked goroutines, interposed together with
 * the mutex (a waiter releases and retakes an interposed mutex). State in
 * the program's own pthread_cond_t (glibc's struct __pthread_cond_s):
 *
 *   __wseq, __g1_start   the wait queue (struct parkq)
 *   __g_refs[0]          the runtime mutex_t guarding it
 *   __wrefs              glibc's attribute bits, kept: bit 0 process-shared,
 *                        bit 1 the clock (0 REALTIME, 1 MONOTONIC)
 *
 * All-zero is a valid private REALTIME condvar, as with glibc.
 * Process-shared condvars keep glibc's implementation.
 *
 * Invariant: a waiter enqueues itself and releases the user's mutex while
 * holding the queue lock, so a signal sent after the waiter released the
 * mutex finds it queued (no lost wake-up). Lock order: queue lock, then
 * the mutex's queue lock.
 *
 * Waits are cancellation points: pthread_cancel ends a pthread-goroutine's
 * wait (parkq_cancel), and the waiter acts on it once it holds the mutex
 * again.
 *
 * Deadlines are converted to the monotonic clock when the wait starts: a
 * REALTIME deadline does not follow a later change of the system clock.
 */
#include <errno.h>

#include "interpose/interpose.h"

#define C_QUEUE(c) ((struct parkq *)(void *)(c))
#define C_QLOCK(c) ((mutex_t *)(void *)((char *)(c) + 16))
#define WREFS_PSHARED 1u
#define WREFS_CLOCK 2u

_Static_assert(offsetof(struct __pthread_cond_s, __g_refs) == 16 &&
               offsetof(struct __pthread_cond_s, __wrefs) == 36, "cond layout");

static inline bool cond_pshared(pthread_cond_t *c)
{
	return __atomic_load_n(&c->__data.__wrefs, __ATOMIC_RELAXED) & WREFS_PSHARED;
}

static inline clockid_t cond_clock(pthread_cond_t *c)
{
	return (__atomic_load_n(&c->__data.__wrefs, __ATOMIC_RELAXED) & WREFS_CLOCK) ? CLOCK_MONOTONIC
	                                                                              : CLOCK_REALTIME;
}

/* Runs queued, with the queue lock held: a signal after the mutex is
 * released finds the waiter (no lost wake-up). */
static void release_mutex(void *m)
{
	mutex_unlock(m, true);
}

static int wait(pthread_cond_t *c, pthread_mutex_t *m, clockid_t clk, const struct timespec *abstime)
{
	int err = 0;
	int64_t deadline = 0;
	if (abstime) {
		deadline = deadline_from(clk, abstime, &err);
		if (err)
			return err;
	}
	/* The owner check first: nothing may be queued if the mutex cannot
	 * be released. */
	err = mutex_unlock_check(m);
	if (err)
		return err;
	pthread_testcancel(); /* a cancellation point */
	bool cancelable = cancel_enabled();
	interpose_enter();
	lock(C_QLOCK(c));
	/* A signal ends the wait (its handler runs as the waiter leaves the
	 * runtime, before it takes the mutex again), as glibc's futex wait
	 * does; here it then returns, a spurious wake-up, which POSIX allows. */
	int ended = parkq_wait_then(C_QUEUE(c), C_QLOCK(c), deadline, false,
	                            (cancelable ? PARK_CANCEL : 0) | PARK_INTR,
	                            waitReasonSyncCondWait, NULL, release_mutex, m);
	interpose_leave();
	int relocked = mutex_relock(m);
	if (relocked)
		return relocked; /* EOWNERDEAD (held) or ENOTRECOVERABLE */
	if (ended == ECANCELED)
		pthread_testcancel(); /* acts on it with the mutex held, as NPTL does */
	return ended == ETIMEDOUT ? ETIMEDOUT : 0;
}

EXPORT int goshim_pthread_cond_wait(pthread_cond_t *c, pthread_mutex_t *m)
{
	if (!interposing() || cond_pshared(c))
		return real.pthread_cond_wait(c, m);
	return wait(c, m, CLOCK_REALTIME, NULL);
}
INTERPOSE(pthread_cond_wait, V_2_3_2);

EXPORT int goshim_pthread_cond_timedwait(pthread_cond_t *c, pthread_mutex_t *m,
                                         const struct timespec *abstime)
{
	if (!interposing() || cond_pshared(c))
		return real.pthread_cond_timedwait(c, m, abstime);
	return wait(c, m, cond_clock(c), abstime);
}
INTERPOSE(pthread_cond_timedwait, V_2_3_2);

EXPORT int goshim_pthread_cond_clockwait(pthread_cond_t *c, pthread_mutex_t *m, clockid_t clk,
                                         const struct timespec *abstime)
{
	if (!interposing() || cond_pshared(c))
		return real.pthread_cond_clockwait(c, m, clk, abstime);
	if (clk != CLOCK_REALTIME && clk != CLOCK_MONOTONIC)
		return EINVAL;
	return wait(c, m, clk, abstime);
}
INTERPOSE(pthread_cond_clockwait, "GLIBC_2.34");
INTERPOSE_COMPAT(pthread_cond_clockwait, "GLIBC_2.30", v230);

/* Wakes one waiter, or all; the queue is read without the lock first, as
 * a signal with no waiter queued before it need wake nobody. */
static int wake(pthread_cond_t *c, bool all)
{
	if (!__atomic_load_n(&C_QUEUE(c)->head, __ATOMIC_ACQUIRE))
		return 0;
	interpose_enter();
	if (all) {
		parkq_wake_all(C_QUEUE(c), C_QLOCK(c));
	} else {
		lock(C_QLOCK(c));
		struct g *gp = parkq_wake(C_QUEUE(c), 0);
		unlock(C_QLOCK(c));
		if (gp)
			goready(gp);
	}
	interpose_leave();
	return 0;
}

EXPORT int goshim_pthread_cond_signal(pthread_cond_t *c)
{
	if (!interposing() || cond_pshared(c))
		return real.pthread_cond_signal(c);
	return wake(c, false);
}
INTERPOSE(pthread_cond_signal, V_2_3_2);

EXPORT int goshim_pthread_cond_broadcast(pthread_cond_t *c)
{
	if (!interposing() || cond_pshared(c))
		return real.pthread_cond_broadcast(c);
	return wake(c, true);
}
INTERPOSE(pthread_cond_broadcast, V_2_3_2);

EXPORT int goshim_pthread_cond_init(pthread_cond_t *c, const pthread_condattr_t *attr)
{
	interposing(); /* resolves real */
	/* glibc validates the attributes and sets __wrefs; the rest is 0. */
	return real.pthread_cond_init(c, attr);
}
INTERPOSE(pthread_cond_init, V_2_3_2);

/* EBUSY while a waiter is blocked. A waiter whose timeout or cancellation
 * came first is no longer blocked, but still takes its sudog off the
 * queue under the queue lock (parkq.c): wait until it has, and has let
 * the lock go (destroy takes the lock itself), as glibc's destroy waits
 * for woken waiters to leave the condvar. */
EXPORT int goshim_pthread_cond_destroy(pthread_cond_t *c)
{
	if (!interposing() || cond_pshared(c))
		return real.pthread_cond_destroy(c);
	for (;;) {
		interpose_enter();
		lock(C_QLOCK(c));
		bool leaving;
		bool blocked = parkq_blocked(C_QUEUE(c), &leaving);
		unlock(C_QLOCK(c));
		interpose_leave();
		if (blocked)
			return EBUSY;
		if (!leaving)
			return 0;
		sched_yield(); /* ours: lets the leaving waiter run */
	}
}
INTERPOSE(pthread_cond_destroy, V_2_3_2);

#if defined(__x86_64__)
/* The pre-2.3.2 condvar ABI: the same object size, so binaries that use
 * it are interposed alike; only pass-through must reach the old code. */
#define OLD_ABI(name, params, args)                                              \
	EXPORT int goshim_##name##_old params                                     \
	{                                                                         \
		if (!interposing())                                               \
			return real.name##_old args;                              \
		return goshim_##name args;                                        \
	}                                                                         \
	__asm__(".symver goshim_" #name "_old," #name "@" V_BASE)
OLD_ABI(pthread_cond_wait, (pthread_cond_t *c, pthread_mutex_t *m), (c, m));
OLD_ABI(pthread_cond_timedwait, (pthread_cond_t *c, pthread_mutex_t *m, const struct timespec *t),
        (c, m, t));
OLD_ABI(pthread_cond_signal, (pthread_cond_t *c), (c));
OLD_ABI(pthread_cond_broadcast, (pthread_cond_t *c), (c));
OLD_ABI(pthread_cond_init, (pthread_cond_t *c, const pthread_condattr_t *a), (c, a));
OLD_ABI(pthread_cond_destroy, (pthread_cond_t *c), (c));
#endif
