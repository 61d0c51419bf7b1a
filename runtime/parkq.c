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
 *  - g.parkstate: a state (PARK_STATE bits) and what else may end the
 *    wait (PARK_CANCEL: pthread_cancel; PARK_INTR: a signal for the
 *    goroutine). PARK_IDLE -> PARK_WAITING|flags (the waiter, before it
 *    parks) -> PARK_WOKEN (a waker, holding the queue lock), PARK_TIMEDOUT
 *    (the waiter's timer), PARK_CANCELED (parkq_cancel, for PARK_CANCEL)
 *    or PARK_INTERRUPTED (park_interrupt, for PARK_INTR), the last three
 *    without the lock -> PARK_IDLE (the waiter, awake). Exactly one CAS
 *    wins, and the winner readies the goroutine; a waker that loses skips
 *    the waiter that left and wakes the next one, so no wake-up is lost
 *    to a timeout, a cancel or a signal.
 *  - A canceller or interrupter that wins readies the goroutine only once
 *    its commit has finished (g.parkcommitted), as a waker, who needs the
 *    queue lock, cannot before. A cancellation requested before the wait
 *    committed is seen by the commit itself, which then vetoes the park.
 *  - The deadline timer is armed on g0 after the goroutine is _Gwaiting
 *    (parkq_commit, as Go's resetForSleep), so it can never ready a
 *    running goroutine.
 *  - park_prepare/park_wait (waits on several wake sources at once: the
 *    netpoller's pollDescs) add PARK_PREPARING|flags: the goroutine has
 *    published itself to wakers but not parked yet. A waker, timer,
 *    canceller or interrupter that claims it then does not ready it;
 *    park_wait's commit sees the claim (its CAS to PARK_WAITING fails) and
 *    vetoes the park.
 *  - A waiter leaves parkq_wait only after its timer cannot be running
 *    (timer_stop, then t.running drains), so a late timer never touches
 *    the next wait.
 *  - A sudog is taken off its queue, under the lock, by the waker that
 *    claimed its goroutine (PARK_WOKEN), or else by its own waiter once
 *    the wait ended (timed out, cancelled or interrupted). A waker skips
 *    a waiter whose wait ended; it stays queued until its waiter takes
 *    it off, and the waiter leaves parkq_wait only after that, so nothing
 *    of a wait reaches the next one. Such a leaving waiter still needs
 *    the object: pthread_cond_destroy waits for it (parkq_blocked), as
 *    glibc's waits for woken waiters.
 *  - The stores that publish a wait (g.parkstate, g.parkcommitted) are
 *    release stores, not seq_cst: the fence between them and
 *    parkq_commit's checks of a cancel or a signal is park_m's dropg_of
 *    (fence_light), and the cancellers and signallers that race with
 *    those checks store their side, fence_heavy (park_end), and then read
 *    g.parkstate.
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
	while ((s & PARK_STATE) == PARK_WAITING) {
		if (atomic_compare_exchange_weak(&gp->parkstate, &s, to))
			return true;
	}
	return false;
}

/* park_claim that also claims a goroutine still preparing its park (which
 * then does not park), if its wait has all of the flags need: true only
 * if the caller must ready it. */
static bool park_claim_any(struct g *gp, uint32_t need, uint32_t to)
{
	uint32_t s = atomic_load(&gp->parkstate);
	for (;;) {
		if ((s & need) != need)
			return false;
		switch (s & PARK_STATE) {
		case PARK_PREPARING:
			if (atomic_compare_exchange_weak(&gp->parkstate, &s, to))
				return false;
			break;
		case PARK_WAITING:
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
	if (park_claim_any(gp, 0, PARK_TIMEDOUT))
		goready(gp);
}

/* Ends gp's wait as to, if the wait has flag (a cancel or a signal may
 * end it): true if the caller must ready it, which it may once the
 * commit is done (the spin here). */
static bool park_end(struct g *gp, uint32_t flag, uint32_t to)
{
	fence_heavy(); /* after the caller's cancel or pending bit */
	uint32_t s = atomic_load(&gp->parkstate);
	for (;;) {
		if (!(s & flag))
			return false;
		uint32_t st = s & PARK_STATE;
		if (st != PARK_PREPARING && st != PARK_WAITING)
			return false;
		if (atomic_compare_exchange_weak(&gp->parkstate, &s, to)) {
			if (st == PARK_PREPARING)
				return false; /* its commit sees it, and it runs on */
			break;
		}
	}
	while (!atomic_load(&gp->parkcommitted))
		procyield(10);
	return true;
}

/* pthread_cancel of a pthread-goroutine: ends its cancellable wait, if it
 * is in one. */
void parkq_cancel(struct g *gp)
{
	if (park_end(gp, PARK_CANCEL, PARK_CANCELED))
		goready(gp);
}

/* pthread_kill of a goroutine: ends its wait with EINTR if a signal may
 * end it (PARK_INTR) and one its mask lets through is pending for it, so
 * the handler runs now, in its thread, as it would natively. A stale look
 * (it took the signal and waits again) ends that wait with nothing to
 * deliver: the waiter then waits again (park_sigs). True if the caller
 * must ready gp. */
static bool park_interrupt_claim(struct g *gp)
{
	return park_sigs(gp) && park_end(gp, PARK_INTR, PARK_INTERRUPTED);
}

bool park_interrupt(struct g *gp)
{
	if (!park_interrupt_claim(gp))
		return false;
	goready(gp);
	return true;
}

/* pthread_kill from where the runtime may not be entered (a signal
 * handler that interrupted the scheduler or an idle M): the goroutines to
 * interrupt wait here for the next M through findrunnable, or sysmon,
 * both woken. Slots are claimed by CAS: no lock, so safe in a handler; a
 * full table leaves the signal pending until the wait ends. */
#define INTR_LATER_SLOTS 64
static _Atomic(struct g *) intr_later[INTR_LATER_SLOTS];
static _Atomic uint32_t intr_later_any;

void park_interrupt_later(struct g *gp)
{
	for (int i = 0; i < INTR_LATER_SLOTS; i++) {
		struct g *cur = atomic_load(&intr_later[i]);
		if (cur == gp)
			break;
		if (!cur && atomic_compare_exchange_strong(&intr_later[i], &cur, gp))
			break;
	}
	atomic_store(&intr_later_any, 1);
	if (netpollinited())
		netpollBreak();
	sysmon_wake();
}

/* Takes the deferred interrupts; the goroutines to ready are added to q. */
void park_interrupts_take(struct gqueue *q)
{
	if (likely(!atomic_load_explicit(&intr_later_any, memory_order_relaxed)))
		return;
	atomic_store(&intr_later_any, 0);
	for (int i = 0; i < INTR_LATER_SLOTS; i++) {
		struct g *gp = atomic_exchange(&intr_later[i], NULL);
		if (gp && park_interrupt_claim(gp))
			gq_push(q, gp);
	}
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
 * and it is idle again. Returns how it ended: 0 (a waker), ETIMEDOUT,
 * ECANCELED or EINTR. */
static int park_done(struct g *gp)
{
	uint32_t s = atomic_load(&gp->parkstate) & PARK_STATE;
	if (gp->parkdeadline) {
		if (gp->parktimer) {
			timer_stop(gp->parktimer);
			while (atomic_load(&gp->parktimer->running))
				usleep_raw(1);
		}
		gp->parkdeadline = 0;
	}
	atomic_store_explicit(&gp->parkstate, PARK_IDLE, memory_order_release);
	switch (s) {
	case PARK_WOKEN:
		return 0;
	case PARK_TIMEDOUT:
		return ETIMEDOUT;
	case PARK_CANCELED:
		return ECANCELED;
	case PARK_INTERRUPTED:
		return EINTR;
	default:
		throw("park_done: wait ended in no end state");
	}
}

/* Publishes the caller as about to park: from here on park_wake may claim
 * it. deadline: a nanotime, or 0 for none. */
void park_prepare(int64_t deadline, uint32_t flags)
{
	struct g *gp = getg();
	gp->parkdeadline = deadline;
	atomic_store(&gp->parkcommitted, false);
	atomic_store(&gp->parkstate, PARK_PREPARING | flags);
}

/* Takes back a park_prepare that will not park (nothing to wait for). */
void park_abort(void)
{
	struct g *gp = getg();
	uint32_t s = atomic_load(&gp->parkstate);
	/* Claimed meanwhile: by a waker (as good as not parking), or by a
	 * canceller or a signal, whose end the caller learns elsewhere. */
	if ((s & PARK_STATE) == PARK_PREPARING)
		atomic_compare_exchange_strong(&gp->parkstate, &s, PARK_WOKEN);
	park_done(gp);
}

/* A waker of a goroutine between park_prepare and park_wait's return:
 * true if it had parked and the caller must ready it. */
bool park_wake(struct g *gp)
{
	return park_claim_any(gp, 0, PARK_WOKEN);
}

static bool canceled(struct g *gp, uint32_t s)
{
	struct gthread *th;
	return (s & PARK_CANCEL) && (th = thread_of_g(gp)) && tls_canceled(th->tp);
}

/* A signal for the goroutine that came while it was not parked (it was
 * running in the runtime, or runnable after a wake-up it lost, and waits
 * again without leaving the runtime): its wait ends at once. */
static bool interrupted(struct g *gp, uint32_t s)
{
	return (s & PARK_INTR) && park_sigs(gp);
}

static bool park_commit(struct g *gp, void *unused)
{
	(void)unused;
	uint32_t s = atomic_load(&gp->parkstate);
	if ((s & PARK_STATE) != PARK_PREPARING)
		return false; /* claimed before it parked: it runs on */
	if (canceled(gp, s) || interrupted(gp, s)) {
		atomic_compare_exchange_strong(&gp->parkstate, &s,
		                               canceled(gp, s) ? PARK_CANCELED : PARK_INTERRUPTED);
		return false;
	}
	if (gp->parkdeadline)
		park_arm_timer(gp);
	/* Before the CAS: once it is waiting, a canceller may ready it at
	 * once. */
	atomic_store(&gp->parkcommitted, true);
	/* Fails when a waker, the timer or a canceller claimed it first: then
	 * nobody readies it, and it runs on. */
	return atomic_compare_exchange_strong(&gp->parkstate, &s,
	                                      PARK_WAITING | (s & ~PARK_STATE));
}

/* Parks after park_prepare until a waker, the deadline, or what the flags
 * allow. Returns 0 if woken, ETIMEDOUT, ECANCELED or EINTR. */
int park_wait(enum waitreason reason)
{
	struct g *gp = getg();
	if ((atomic_load(&gp->parkstate) & PARK_STATE) == PARK_PREPARING)
		gopark(park_commit, NULL, reason);
	return park_done(gp);
}

static bool parkq_commit(struct g *gp, void *l)
{
	uint32_t s = atomic_load(&gp->parkstate);
	if ((s & PARK_STATE) == PARK_WAITING && (canceled(gp, s) || interrupted(gp, s)) &&
	    atomic_compare_exchange_strong(&gp->parkstate, &s,
	                                   canceled(gp, s) ? PARK_CANCELED : PARK_INTERRUPTED)) {
		unlock(l);
		return false; /* cancelled or signalled before it parked: run on */
	}
	if (gp->parkdeadline)
		park_arm_timer(gp);
	/* Before the unlock: once a waker can take l, it can ready gp, which
	 * may then wait again, and a late store here would mark that wait
	 * committed before it is. A canceller that readies gp before the
	 * unlock is fine: gp is off this M, and takes l itself to leave. */
	atomic_store_explicit(&gp->parkcommitted, true, memory_order_release);
	unlock(l);
	return true;
}

bool parkq_wait(struct parkq *q, mutex_t *l, int64_t deadline, bool lifo,
                enum waitreason reason, uintptr_t *val)
{
	return parkq_wait_then(q, l, deadline, lifo, 0, reason, val, NULL, NULL) == 0;
}

/* parkq_wait that calls enqueued(arg) once the goroutine is on the queue,
 * with l still held (a condvar waiter releases the user's mutex there),
 * and also ends, without the lock, as flags allow: PARK_CANCEL when the
 * goroutine's pthread is cancelled (parkq_cancel), PARK_INTR on a signal
 * for it (park_interrupt). Returns 0 if woken, ETIMEDOUT, ECANCELED or
 * EINTR. */
int parkq_wait_then(struct parkq *q, mutex_t *l, int64_t deadline, bool lifo, uint32_t flags,
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
	atomic_store_explicit(&gp->parkcommitted, false, memory_order_relaxed);
	/* A canceller that sees it waiting sees parkcommitted false. */
	atomic_store_explicit(&gp->parkstate, PARK_WAITING | flags, memory_order_release);
	if (enqueued)
		enqueued(arg);
	gopark(parkq_commit, l, reason);

	int ended = park_done(gp);
	if (ended) {
		/* No waker claimed it, so none took it off. */
		lock(l);
		unlink_sudog(q, s);
		unlock(l);
	}
	if (val)
		*val = (uintptr_t)s->elem;
	s->g = NULL;
	s->elem = NULL;
	releaseSudog(s);
	return ended;
}

/* Claims s's goroutine for a waker (q's lock held) and takes s off q, with
 * val for the waiter: true if the caller must ready s->g. s stays valid
 * until then (its waiter runs only once readied). A wait that ended (timed
 * out, cancelled or interrupted) is left queued: whoever ended it readies
 * it, and its waiter takes it off. A fork child's gone waiter never runs:
 * off with it. */
static bool wake_one(struct parkq *q, struct sudog *s, uintptr_t val)
{
	if (!park_claim(s->g, PARK_WOKEN)) {
		if ((atomic_load(&s->g->parkstate) & PARK_STATE) == PARK_GONE)
			unlink_sudog(q, s);
		return false;
	}
	s->elem = (void *)val; /* read by the waiter once it runs */
	unlink_sudog(q, s);
	return true;
}

/* Claims every live waiter of q (its lock held) and returns them linked
 * through schedlink, for goready_list once the lock is let go. */
struct g *parkq_wake_all_locked(struct parkq *q)
{
	struct g *first = NULL, **tail = &first;
	struct sudog *s, *next;
	for (s = q->head; s; s = next) {
		next = s->next;
		if (!wake_one(q, s, 0))
			continue;
		*tail = s->g;
		tail = &s->g->schedlink;
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
		if (wake_one(q, s, val))
			return s->g;
	}
	return NULL;
}

/* With q's lock held: true if a goroutine is blocked on q (a fork
 * child's gone waiter stays blocked). *leaving: q holds a waiter whose
 * wait ended, which takes itself off once it has the lock. */
bool parkq_blocked(struct parkq *q, bool *leaving)
{
	*leaving = false;
	for (struct sudog *s = q->head; s; s = s->next) {
		uint32_t st = atomic_load(&s->g->parkstate) & PARK_STATE;
		if (st == PARK_WAITING || st == PARK_GONE)
			return true;
		*leaving = true;
	}
	return false;
}
