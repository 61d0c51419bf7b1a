/*
 * Unnamed semaphores (sem_init) as goroutine-parking counters, in the
 * program's own sem_t, laid out as glibc's struct new_sem where glibc
 * reads it:
 *
 *   0  value     (glibc: low half of data)
 *   4  nwaiters  (glibc: high half of data) waiters past the fast path
 *   8  private   glibc's: 0 (LLL_PRIVATE), or 128 (LLL_SHARED) when
 *                process-shared
 *  12  the runtime mutex_t guarding the queue (glibc: padding)
 *  16  the wait queue (struct parkq)
 *
 * Process-shared semaphores keep glibc's implementation, as do named ones
 * (sem_open), which are always process-shared.
 *
 * Invariants:
 *  - No lost wake-up: under the queue lock, a waiter takes a unit or
 *    counts itself in nwaiters in one atomic step, and a poster reads
 *    nwaiters in the same atomic step that would add to the value (value
 *    and nwaiters are the two halves of one 64-bit word, as in glibc).
 *    Without waiters a poster adds the unit and is done; with waiters it
 *    takes the queue lock first and hands the unit to the first queued
 *    waiter that has not timed out, taking it out of nwaiters (Go's
 *    semrelease handoff), or adds it to the value if there is none. A
 *    waiter whose wait ended otherwise takes itself out, under the lock.
 *  - A poster's last touch of the semaphore comes before any waiter that
 *    took its unit returns: the waiter may destroy it at once (POSIX
 *    allows it). The unit is published either by the last atomic step of
 *    the fast path, or under the queue lock. A waiter that took a unit
 *    under the lock, or was handed one, returns after the poster let the
 *    lock go; one that took a unit without the lock (sem_trywait, the
 *    fast path of sem_wait) waits for the queue lock to be free first
 *    (trywait_fast; glibc bug 12674's pattern).
 */
#include <errno.h>
#include <limits.h>

#include "interpose/interpose.h"

struct gsem {
	union {
		_Atomic uint64_t data; /* value | nwaiters << 32 */
		struct {
			_Atomic uint32_t value;
			_Atomic uint32_t nwaiters;
		};
	};
	int private_;
	mutex_t lock;
	struct parkq q;
};
_Static_assert(sizeof(struct gsem) <= sizeof(sem_t), "sem_t too small");
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "value is data's low half");

static inline struct gsem *gsem(sem_t *s)
{
	return (struct gsem *)(void *)s;
}

static inline bool shared(sem_t *s)
{
	return gsem(s)->private_ != 0;
}

static inline bool trywait(struct gsem *s)
{
	uint32_t v = atomic_load_explicit(&s->value, memory_order_relaxed);
	while (v > 0) {
		if (atomic_compare_exchange_weak(&s->value, &v, v - 1))
			return true;
	}
	return false;
}

/* trywait without the queue lock, where the caller may destroy the
 * semaphore as soon as it returns: a unit published under the lock by a
 * poster that found no waiter to hand it to is taken before that poster
 * lets the lock go, so wait for the lock to be free first. */
static bool trywait_fast(struct gsem *s)
{
	if (!trywait(s))
		return false;
	if (unlikely(atomic_load(&s->lock.key) != 0)) {
		interpose_enter();
		lock(&s->lock);
		unlock(&s->lock);
		interpose_leave();
	}
	return true;
}

/* With the queue lock held: takes a unit (true), or counts the caller in
 * nwaiters (false), in one step against sem_post's fast path. */
static inline bool trywait_or_count(struct gsem *s)
{
	uint64_t d = atomic_load_explicit(&s->data, memory_order_relaxed);
	for (;;) {
		uint64_t next = (uint32_t)d ? d - 1 : d + (1ull << 32);
		if (atomic_compare_exchange_weak(&s->data, &d, next))
			return (uint32_t)d != 0;
	}
}

/* 0, ETIMEDOUT, ECANCELED when pthread_cancel ended the wait, or EINTR
 * when a signal did (its handler has run; *restart: all of them had
 * SA_RESTART, as the kernel decides before it runs them). */
static int wait_slow(struct gsem *s, int64_t deadline, bool cancelable, bool *restart)
{
	struct g *gp = interpose_enter();
	lock(&s->lock);
	int err = 0;
	uint64_t sigs = 0;
	if (trywait_or_count(s)) {
		unlock(&s->lock);
		interpose_leave();
		return 0;
	}
	for (;;) {
		err = parkq_wait_then(&s->q, &s->lock, deadline, false,
		                      (cancelable ? PARK_CANCEL : 0) | PARK_INTR,
		                      waitReasonSemacquire, NULL, NULL, NULL);
		if (!err)
			break; /* a poster handed us its unit and our count */
		lock(&s->lock);
		/* A signal that was taken meanwhile leaves nothing to deliver:
		 * take a unit if one came, else wait again, still counted. */
		if (err == EINTR && !(sigs = park_sigs(gp)) && !trywait(s))
			continue;
		if (err == EINTR && !sigs)
			err = 0;
		atomic_fetch_sub(&s->nwaiters, 1);
		unlock(&s->lock);
		break;
	}
	if (err == EINTR)
		*restart = sigs_restart(sigs);
	interpose_leave(); /* runs the handler of the signal that ended it */
	return err;
}

static int timedwait(sem_t *sem, clockid_t c, const struct timespec *abstime)
{
	struct gsem *s = gsem(sem);
	int64_t deadline = 0;
	int err = 0;
	if (abstime && (abstime->tv_nsec < 0 || abstime->tv_nsec >= 1000000000L)) {
		errno = EINVAL;
		return -1;
	}
	pthread_testcancel(); /* a cancellation point, as in glibc */
	if (trywait_fast(s))
		return 0;
	if (abstime) {
		deadline = deadline_from(c, abstime, &err);
		if (err) {
			errno = err;
			return -1;
		}
	}
	/* After a signal, sem_wait goes on under SA_RESTART, as the kernel
	 * restarts glibc's futex wait; sem_timedwait fails (the kernel's
	 * timed futex wait is never restarted after a handler). */
	bool restart = false;
	while ((err = wait_slow(s, deadline, cancel_enabled(), &restart)) == ECANCELED ||
	       (err == EINTR && !deadline && restart)) {
		pthread_testcancel();
		if (trywait_fast(s))
			return 0;
	}
	if (err) {
		errno = err;
		return -1;
	}
	return 0;
}

EXPORT int goshim_sem_wait(sem_t *sem)
{
	if (!interposing() || shared(sem))
		return real.sem_wait(sem);
	return timedwait(sem, CLOCK_REALTIME, NULL);
}
INTERPOSE(sem_wait, "GLIBC_2.34");
INTERPOSE_COMPAT(sem_wait, V_BASE, base);

EXPORT int goshim_sem_timedwait(sem_t *sem, const struct timespec *abstime)
{
	if (!interposing() || shared(sem))
		return real.sem_timedwait(sem, abstime);
	return timedwait(sem, CLOCK_REALTIME, abstime);
}
INTERPOSE(sem_timedwait, "GLIBC_2.34");
INTERPOSE_COMPAT(sem_timedwait, V_BASE, base);

EXPORT int goshim_sem_clockwait(sem_t *sem, clockid_t c, const struct timespec *abstime)
{
	if (!interposing() || shared(sem))
		return real.sem_clockwait(sem, c, abstime);
	if (c != CLOCK_REALTIME && c != CLOCK_MONOTONIC) {
		errno = EINVAL;
		return -1;
	}
	return timedwait(sem, c, abstime);
}
INTERPOSE(sem_clockwait, "GLIBC_2.34");
INTERPOSE_COMPAT(sem_clockwait, "GLIBC_2.30", v230);

EXPORT int goshim_sem_trywait(sem_t *sem)
{
	if (!interposing() || shared(sem))
		return real.sem_trywait(sem);
	if (trywait_fast(gsem(sem)))
		return 0;
	errno = EAGAIN;
	return -1;
}
INTERPOSE(sem_trywait, "GLIBC_2.34");
INTERPOSE_COMPAT(sem_trywait, V_BASE, base);

EXPORT int goshim_sem_post(sem_t *sem)
{
	if (!interposing() || shared(sem))
		return real.sem_post(sem);
	struct gsem *s = gsem(sem);
	uint64_t d = atomic_load_explicit(&s->data, memory_order_relaxed);
	while ((d >> 32) == 0) {
		if ((uint32_t)d == SEM_VALUE_MAX) {
			errno = EOVERFLOW;
			return -1;
		}
		if (atomic_compare_exchange_weak(&s->data, &d, d + 1))
			return 0; /* s may be destroyed from here on */
	}
	interpose_enter();
	lock(&s->lock);
	struct g *gp = parkq_wake(&s->q, 0);
	int err = 0;
	if (gp)
		atomic_fetch_sub(&s->nwaiters, 1); /* its count goes with the unit */
	else { /* the waiters are about to try the value, or timed out */
		uint32_t v = atomic_load(&s->value);
		do {
			if (v == SEM_VALUE_MAX) {
				err = EOVERFLOW;
				break;
			}
		} while (!atomic_compare_exchange_weak(&s->value, &v, v + 1));
	}
	unlock(&s->lock);
	if (gp)
		goready(gp);
	interpose_leave();
	if (err) {
		errno = err;
		return -1;
	}
	return 0;
}
INTERPOSE(sem_post, "GLIBC_2.34");
INTERPOSE_COMPAT(sem_post, V_BASE, base);

EXPORT int goshim_sem_getvalue(sem_t *sem, int *value)
{
	if (!interposing() || shared(sem))
		return real.sem_getvalue(sem, value);
	*value = (int)atomic_load(&gsem(sem)->value);
	return 0;
}
INTERPOSE(sem_getvalue, "GLIBC_2.34");
INTERPOSE_COMPAT(sem_getvalue, V_BASE, base);

EXPORT int goshim_sem_init(sem_t *sem, int pshared, unsigned int value)
{
	interposing(); /* resolves real */
	/* glibc checks the value and writes value, nwaiters and private. */
	int rc = real.sem_init(sem, pshared, value);
	if (rc == 0 && !pshared) {
		struct gsem *s = gsem(sem);
		s->lock = (mutex_t){0};
		s->q = (struct parkq){NULL, NULL};
	}
	return rc;
}
INTERPOSE(sem_init, "GLIBC_2.34");
INTERPOSE_COMPAT(sem_init, V_BASE, base);

EXPORT int goshim_sem_destroy(sem_t *sem)
{
	if (!interposing() || shared(sem))
		return real.sem_destroy(sem);
	return 0;
}
INTERPOSE(sem_destroy, "GLIBC_2.34");
INTERPOSE_COMPAT(sem_destroy, V_BASE, base);
