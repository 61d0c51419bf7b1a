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
 *  - g.parkstate: PARK_IDLE -> PARK_WAITING or PARK_WAITING_CANCEL (the
 *    waiter, before it parks) -> PARK_WOKEN (a waker, holding the queue
 *    lock) or PARK_TIMEDOUT (the waiter's timer, or pthread_cancel for a
 *    cancellable wait, without the lock) -> PARK_IDLE (the waiter, awake).
 *    Exactly one CAS wins, and the winner readies the goroutine; a waker
 *    that loses skips the timed-out waiter and wakes the next one, so no
 *    wake-up is lost to a timeout.
 *  - A canceller that wins readies the goroutine only once parkq_commit
 *    has finished (g.parkcommitted), as a waker, who needs the queue lock,
 *    cannot before. A cancellation requested before the wait committed is
 *    seen by parkq_commit itself, which then vetoes the park.
 *  - The deadline timer is armed on g0 after the goroutine is _Gwaiting
 *    (parkq_commit, as Go's resetForSleep), so it can never ready a
 *    running goroutine.
 *  - park_prepare/park_wait (waits on several wake sources at once: the
 *    netpoller's pollDescs) add PARK_PREPARING(_CANCEL): the goroutine has
 *    published itself to wakers but not parked yet. A waker, timer or
 *    canceller that claims it then does not ready it; park_wait's commit
 *    sees the claim (its CAS to PARK_WAITING fails) and vetoes the park.
 *  - A waiter leaves parkq_wait only after its timer cannot be running
 *    (timer_stop, then t.running drains), so a late timer never touches
 *    the next wait.
 *  - Exactly one party takes a sudog off its queue, decided by a CAS on
 *    s.unlinker: a waker (SUDOG_WAKER, under the lock) or its own
 *    timed-out or cancelled waiter (SUDOG_WAITER, then it takes the
 *    lock). A waiter that lost never touches the object again: a woken
 *    condvar waiter and a timed-out one skipped by a broadcast look the
 *    same to the program, which may destroy the condvar at once (glibc's
 *    pthread_cond_destroy waits for such waiters; here they do not need
 *    the object). A waker skips a sudog its waiter is taking off.
 */
#include <errno.h>
#include <stdlib.h>

#include "runtime/runtime.h"
#include "runtime/thread.h"

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

/* Moves a waiting goroutine to state to; true if this caller did. */
static bool park_claim(struct g *gp, uint32_t to)
{
	uint32_t s = atomic_load(&gp->parkstate);
	while (s == PARK_WAITING || s == PARK_WAITING_CANCEL) {
		if (atomic_compare_exchange_weak(&gp->parkstate, &s, to))
			return true;
	}
	return false;
}

/* park_claim that also claims a goroutine still preparing its park (which
 * then does not park): true only if the caller must ready it. */
static bool park_claim_any(struct g *gp, uint32_t to)
{
	uint32_t s = atomic_load(&gp->parkstate);
	for (;;) {
		switch (s) {
		case PARK_PREPARING:
		case PARK_PREPARING_CANCEL:
			if (atomic_compare_exchange_weak(&gp->parkstate, &s, to))
				return false;
			break;
		case PARK_WAITING:
		case PARK_WAITING_CANCEL:
			if (atomic_compare_exchange_weak(&gp->parkstate, &s, to))
				return true;
			break;
		default:
			return false;
		}
	}
}

static void parkTimeout(void *arg, uintptr_t seq, int64_t delay)
{
	(void)seq;
	(void)delay;
	struct g *gp = arg;
	if (park_claim_any(gp, PARK_TIMEDOUT))
		goready(gp);
}

/* pthread_cancel of a pthread-goroutine: ends its cancellable wait, if it
 * is in one, as a timeout would. */
bool parkq_cancel(struct g *gp)
{
	uint32_t exp = PARK_PREPARING_CANCEL;
	if (atomic_compare_exchange_strong(&gp->parkstate, &exp, PARK_TIMEDOUT))
		return true; /* park_wait's commit sees it */
	exp = PARK_WAITING_CANCEL;
	if (!atomic_compare_exchange_strong(&gp->parkstate, &exp, PARK_TIMEDOUT))
		return false;
	while (!atomic_load(&gp->parkcommitted))
		procyield(10);
	goready(gp);
	return true;
}

static void park_arm_timer(struct g *gp)
{
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

/* The waiter's side of a wait that stops: its timer cannot fire any more,
 * and it is idle again. True if a waker (not a timeout or a cancel) ended
 * it. */
static bool park_done(struct g *gp)
{
	bool woken = atomic_load(&gp->parkstate) == PARK_WOKEN;
	if (gp->parkdeadline) {
		if (gp->parktimer) {
			timer_stop(gp->parktimer);
			while (atomic_load(&gp->parktimer->running))
				usleep_raw(1);
		}
		gp->parkdeadline = 0;
	}
	atomic_store(&gp->parkstate, PARK_IDLE);
	return woken;
}

/* Publishes the caller as about to park: from here on park_wake may claim
 * it. deadline: a nanotime, or 0 for none. */
void park_prepare(int64_t deadline, bool cancelable)
{
	struct g *gp = getg();
	gp->parkdeadline = deadline;
	atomic_store(&gp->parkcommitted, false);
	atomic_store(&gp->parkstate, cancelable ? PARK_PREPARING_CANCEL : PARK_PREPARING);
}

/* Takes back a park_prepare that will not park (nothing to wait for). */
void park_abort(void)
{
	park_done(getg());
}

/* A waker of a goroutine between park_prepare and park_wait's return:
 * true if it had parked and the caller must ready it. */
bool park_wake(struct g *gp)
{
	return park_claim_any(gp, PARK_WOKEN);
}

static bool park_commit(struct g *gp, void *unused)
{
	(void)unused;
	uint32_t s = atomic_load(&gp->parkstate);
	if (s == PARK_PREPARING_CANCEL && gp->thread && tls_canceled(gp->thread->tp)) {
		atomic_compare_exchange_strong(&gp->parkstate, &s, PARK_TIMEDOUT);
		return false;
	}
	if (gp->parkdeadline)
		park_arm_timer(gp);
	/* Before the CAS: once it is PARK_WAITING_CANCEL, a canceller may
	 * ready it at once. */
	atomic_store(&gp->parkcommitted, true);
	uint32_t to = s == PARK_PREPARING_CANCEL ? PARK_WAITING_CANCEL : PARK_WAITING;
	/* Fails when a waker, the timer or a canceller claimed it first: then
	 * nobody readies it, and it runs on. */
	return (s == PARK_PREPARING || s == PARK_PREPARING_CANCEL) &&
	       atomic_compare_exchange_strong(&gp->parkstate, &s, to);
}

/* Parks after park_prepare until a waker, the deadline or (cancelable) a
 * pthread_cancel. Returns 0 if woken, ETIMEDOUT, or ECANCELED. */
int park_wait(enum waitreason reason)
{
	struct g *gp = getg();
	uint32_t s = atomic_load(&gp->parkstate);
	if (s == PARK_PREPARING || s == PARK_PREPARING_CANCEL)
		gopark(park_commit, NULL, reason);
	int64_t deadline = gp->parkdeadline;
	if (park_done(gp))
		return 0;
	/* Not woken: the timer, which fires at or after the deadline, or
	 * else a canceller. */
	if (deadline && nanotime() >= deadline)
		return ETIMEDOUT;
	return ECANCELED;
}

static bool parkq_commit(struct g *gp, void *l)
{
	if (atomic_load(&gp->parkstate) == PARK_WAITING_CANCEL && gp->thread &&
	    tls_canceled(gp->thread->tp)) {
		uint32_t exp = PARK_WAITING_CANCEL;
		if (atomic_compare_exchange_strong(&gp->parkstate, &exp, PARK_TIMEDOUT)) {
			unlock(l);
			return false; /* cancelled before it parked: run on */
		}
	}
	if (gp->parkdeadline)
		park_arm_timer(gp);
	unlock(l);
	atomic_store(&gp->parkcommitted, true);
	return true;
}

bool parkq_wait(struct parkq *q, mutex_t *l, int64_t deadline, bool lifo,
                enum waitreason reason, uintptr_t *val)
{
	return parkq_wait_then(q, l, deadline, lifo, false, reason, val, NULL, NULL);
}

/* parkq_wait that calls enqueued(arg) once the goroutine is on the queue,
 * with l still held (a condvar waiter releases the user's mutex there).
 * A cancellable wait also ends, as if timed out, when the goroutine's
 * pthread is cancelled (parkq_cancel). */
bool parkq_wait_then(struct parkq *q, mutex_t *l, int64_t deadline, bool lifo, bool cancelable,
                     enum waitreason reason, uintptr_t *val, void (*enqueued)(void *), void *arg)
{
	struct g *gp = getg();
	struct sudog *s = acquireSudog();
	s->g = gp;
	s->elem = NULL;
	s->parkq = q;
	atomic_store_explicit(&s->unlinker, SUDOG_LINKED, memory_order_relaxed);
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
	atomic_store(&gp->parkcommitted, false);
	atomic_store(&gp->parkstate, cancelable ? PARK_WAITING_CANCEL : PARK_WAITING);
	if (enqueued)
		enqueued(arg);
	gopark(parkq_commit, l, reason);

	bool woken = park_done(gp);
	uint32_t linked = SUDOG_LINKED;
	if (!woken && atomic_compare_exchange_strong(&s->unlinker, &linked, SUDOG_WAITER)) {
		lock(l);
		unlink_sudog(q, s);
		unlock(l);
	}
	if (val)
		*val = (uintptr_t)s->elem;
	s->g = NULL;
	s->elem = NULL;
	releaseSudog(s);
	return woken;
}

/* Claims every live waiter of q (its lock held) and returns them linked
 * through schedlink, for goready_list once the lock is let go. */
struct g *parkq_wake_all_locked(struct parkq *q)
{
	struct g *first = NULL, **tail = &first, *gp;
	while ((gp = parkq_wake(q, 0)) != NULL) {
		*tail = gp;
		tail = &gp->schedlink;
		*tail = NULL;
	}
	return first;
}

void goready_list(struct g *first)
{
	while (first) {
		struct g *gp = first;
		first = gp->schedlink;
		gp->schedlink = NULL;
		goready(gp);
	}
}

/* Wakes every live waiter of q: takes l, unlinks them all, lets l go and
 * readies them. The caller holds a P and not l. */
void parkq_wake_all(struct parkq *q, mutex_t *l)
{
	lock(l);
	struct g *woken = parkq_wake_all_locked(q);
	unlock(l);
	goready_list(woken);
}

struct g *parkq_wake(struct parkq *q, uintptr_t val)
{
	struct sudog *s, *next;
	for (s = q->head; s; s = next) {
		next = s->next;
		uint32_t linked = SUDOG_LINKED;
		if (!atomic_compare_exchange_strong(&s->unlinker, &linked, SUDOG_WAKER))
			continue; /* timed out, and its waiter takes it off */
		unlink_sudog(q, s);
		struct g *gp = s->g;
		s->elem = (void *)val;
		if (park_claim(gp, PARK_WOKEN))
			return gp;
		/* Timed out: its timer readies it; wake the next one instead. */
	}
	return NULL;
}
