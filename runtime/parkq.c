/*
 * Park queues: FIFO lists of parked goroutines with optional deadlines,
 * for the interposed pthread objects (mutex, condvar, rwlock, barrier,
 * semaphore, join). Not in Go: Go's sync package has no timed waits, and
 * POSIX has them everywhere (timedlock, timedwait, timedjoin...).
 *
 * A parkq lives in the program's own object (pthread_mutex_t, ...) and is
 * guarded by a runtime mutex_t that lives there too; the caller holds it
 * around every call here.
 *
 * Invariants:
 *  - g.parkstate: PARK_IDLE -> PARK_WAITING (the waiter, before it parks)
 *    -> PARK_WOKEN (a waker, holding the queue lock) or PARK_TIMEDOUT (the
 *    waiter's timer, without the lock) -> PARK_IDLE (the waiter, awake).
 *    Exactly one CAS wins, and the winner readies the goroutine; a waker
 *    that loses skips the timed-out waiter and wakes the next one, so no
 *    wake-up is lost to a timeout.
 *  - The deadline timer is armed on g0 after the goroutine is _Gwaiting
 *    (parkq_commit, as Go's resetForSleep), so it can never ready a
 *    running goroutine.
 *  - A waiter leaves parkq_wait only after its timer cannot be running
 *    (timer_stop, then t.running drains), so a late timer never touches
 *    the next wait. A timed-out waiter unlinks its own sudog under the
 *    lock unless a waker already did (s.parkq == NULL).
 */
#include <stdlib.h>

#include "runtime/runtime.h"

static void unlink_sudog(struct parkq *q, struct sudog *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		q->head = s->next;
	if (s->next)
		s->next->prev = s->prev;
	else
		q->tail = s->prev;
	s->next = s->prev = NULL;
	s->parkq = NULL;
}

static void parkTimeout(void *arg, uintptr_t seq, int64_t delay)
{
	(void)seq;
	(void)delay;
	struct g *gp = arg;
	uint32_t exp = PARK_WAITING;
	if (atomic_compare_exchange_strong(&gp->parkstate, &exp, PARK_TIMEDOUT))
		goready(gp);
}

static bool parkq_commit(struct g *gp, void *l)
{
	if (gp->parkdeadline) {
		struct timer *t = gp->parktimer;
		if (!t) {
			t = malloc(sizeof *t);
			if (!t)
				throw("parkq: out of memory");
			timer_init(t, parkTimeout, gp);
			gp->parktimer = t;
		}
		timer_reset(t, gp->parkdeadline);
	}
	unlock(l);
	return true;
}

bool parkq_wait(struct parkq *q, mutex_t *l, int64_t deadline, bool lifo,
                enum waitreason reason, uintptr_t *val)
{
	return parkq_wait_then(q, l, deadline, lifo, reason, val, NULL, NULL);
}

/* parkq_wait that calls enqueued(arg) once the goroutine is on the queue,
 * with l still held (a condvar waiter releases the user's mutex there). */
bool parkq_wait_then(struct parkq *q, mutex_t *l, int64_t deadline, bool lifo,
                     enum waitreason reason, uintptr_t *val, void (*enqueued)(void *), void *arg)
{
	struct g *gp = getg();
	struct sudog *s = acquireSudog();
	s->g = gp;
	s->elem = NULL;
	s->parkq = q;
	if (lifo && q->head) {
		s->prev = NULL;
		s->next = q->head;
		q->head->prev = s;
		q->head = s;
	} else {
		s->next = NULL;
		s->prev = q->tail;
		if (q->tail)
			q->tail->next = s;
		else
			q->head = s;
		q->tail = s;
	}
	gp->parkdeadline = deadline;
	atomic_store(&gp->parkstate, PARK_WAITING);
	if (enqueued)
		enqueued(arg);
	gopark(parkq_commit, l, reason);

	bool woken = atomic_load(&gp->parkstate) == PARK_WOKEN;
	if (deadline) {
		timer_stop(gp->parktimer);
		while (atomic_load(&gp->parktimer->running))
			usleep_raw(1);
	}
	if (!woken) {
		lock(l);
		if (s->parkq)
			unlink_sudog(q, s);
		unlock(l);
	}
	if (val)
		*val = (uintptr_t)s->elem;
	gp->parkdeadline = 0;
	atomic_store(&gp->parkstate, PARK_IDLE);
	s->g = NULL;
	s->elem = NULL;
	releaseSudog(s);
	return woken;
}

struct g *parkq_wake(struct parkq *q, uintptr_t val)
{
	struct sudog *s;
	while ((s = q->head) != NULL) {
		unlink_sudog(q, s);
		struct g *gp = s->g;
		s->elem = (void *)val;
		uint32_t exp = PARK_WAITING;
		if (atomic_compare_exchange_strong(&gp->parkstate, &exp, PARK_WOKEN))
			return gp;
		/* Timed out: its timer readies it; wake the next one instead. */
	}
	return NULL;
}
