/*
 * Timers, ported from Go's runtime/time.go — the per-P timer heaps of Go
 * 1.23 (timer.lock per timer, timers.lock per heap, lazily cleaned
 * "zombies"), which replaced Go 1.14's status machine with fewer states
 * and the same per-P design.
 *
 * Each P owns a 4-ary min-heap of timers keyed by when. A timer is added
 * to the heap of the P that sets it; it stays there until it runs (one
 * shot) or is found stopped or modified at the heap head or during an
 * adjust. Timers run from the scheduler (checkTimers, called by schedule
 * and findrunnable), from stealWork on other Ps' heaps, and the M that
 * blocks in netpoll sleeps no longer than the earliest timer.
 *
 * Invariants:
 *  - Lock order: timers.lock before timer.mu.
 *  - t.state & timerHeaped <=> t is in t.ts.heap (index t.heapidx); only
 *    changed with both locks held.
 *  - A modified or stopped heaped timer keeps its old heap position:
 *    timerModified says heap[i].when is stale (t.when is right; 0 means
 *    stopped: timerZombie). ts.minWhenModified is a lower bound on the
 *    when of modified timers, so nothing fires late.
 *  - f runs with no lock held, on g0 with a P; it must not block.
 *    t.running counts calls in progress so timer_destroy can wait.
 *
 * C has no garbage collector: a timer's memory may be freed only after
 * timer_destroy, which takes it out of any heap and waits for a running f.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/runtime.h"

enum {
	timerHeaped = 1,   /* in some P's heap */
	timerModified = 2, /* heap[i].when is stale */
	timerZombie = 4,   /* stopped while heaped: to be removed */
};

struct timerWhen {
	struct timer *timer;
	int64_t when;
};

struct timers {
	mutex_t mu;
	struct timerWhen *heap;
	int32_t len, cap;
	_Atomic int32_t alen;            /* len, read without the lock */
	_Atomic int32_t zombies;         /* stopped timers still in the heap */
	_Atomic int64_t minWhenHeap;     /* heap[0].when, 0 if empty */
	_Atomic int64_t minWhenModified; /* lower bound of modified timers' when */
};

static _Atomic int64_t ntimers; /* timers set and not yet run or stopped */

int64_t ntimers_live(void)
{
	return atomic_load(&ntimers);
}

static void timer_lock(struct timer *t) { lock(&t->mu); }
static void timer_unlock(struct timer *t)
{
	atomic_store_explicit(&t->astate, t->state, memory_order_relaxed);
	unlock(&t->mu);
}

void timer_init(struct timer *t, void (*f)(void *, uintptr_t, int64_t), void *arg)
{
	memset(t, 0, sizeof *t);
	t->f = f;
	t->arg = arg;
	t->heapidx = -1;
}

/* A timer whose f sends on a channel (time.go: isChan): once stop or
 * modify has returned, no send from an earlier firing may happen. */
void timer_init_chan(struct timer *t, void (*f)(void *, uintptr_t, int64_t), void *arg)
{
	timer_init(t, f, arg);
	t->isChan = true;
}

void timers_pinit(struct p *pp)
{
	if (!pp->timers) {
		pp->timers = calloc(1, sizeof *pp->timers);
		if (!pp->timers)
			throw("timers_pinit: out of memory");
	}
}

/* ---- the heap (time.go: siftUp, siftDown, deleteMin) ----------------- */

enum { timerHeapN = 4 };

static inline void heap_set(struct timers *ts, int32_t i, struct timerWhen tw)
{
	ts->heap[i] = tw;
	tw.timer->heapidx = i;
}

static void siftUp(struct timers *ts, int32_t i)
{
	struct timerWhen *h = ts->heap;
	if (i >= ts->len)
		throw("timer data corruption");
	struct timerWhen tw = h[i];
	int64_t when = tw.when;
	if (when <= 0)
		throw("timer when must be positive");
	while (i > 0) {
		int32_t p = (i - 1) / timerHeapN; /* parent */
		if (when >= h[p].when)
			break;
		heap_set(ts, i, h[p]);
		i = p;
	}
	heap_set(ts, i, tw);
}

static void siftDown(struct timers *ts, int32_t i)
{
	struct timerWhen *h = ts->heap;
	int32_t n = ts->len;
	if (i >= n)
		throw("timer data corruption");
	if (i * timerHeapN + 1 >= n)
		return;
	struct timerWhen tw = h[i];
	int64_t when = tw.when;
	if (when <= 0)
		throw("timer when must be positive");
	for (;;) {
		int32_t leftChild = i * timerHeapN + 1;
		if (leftChild >= n)
			break;
		int32_t w = leftChild;
		int64_t wWhen = -1;
		for (int32_t c = 0; c < timerHeapN; c++) {
			int32_t ci = leftChild + c;
			if (ci >= n)
				break;
			if (wWhen < 0 || h[ci].when < wWhen) {
				w = ci;
				wWhen = h[ci].when;
			}
		}
		if (wWhen >= when)
			break;
		heap_set(ts, i, h[w]);
		i = w;
	}
	heap_set(ts, i, tw);
}

static int64_t timers_wakeTime_ts(struct timers *ts);

static void updateMinWhenHeap(struct timers *ts)
{
	atomic_store(&ts->minWhenHeap, ts->len == 0 ? 0 : ts->heap[0].when);
}

/* Lowers minWhenModified to when, if when is earlier. */
static void updateMinWhenModified(struct timers *ts, int64_t when)
{
	for (;;) {
		int64_t old = atomic_load(&ts->minWhenModified);
		if (old != 0 && old < when)
			return;
		if (atomic_compare_exchange_weak(&ts->minWhenModified, &old, when))
			return;
	}
}

static void addHeap(struct timers *ts, struct timer *t)
{
	if (t->ts)
		throw("ts set in timer");
	t->ts = ts;
	if (ts->len == ts->cap) {
		int32_t ncap = ts->cap ? ts->cap * 2 : 64;
		struct timerWhen *nh = realloc(ts->heap, (size_t)ncap * sizeof *nh);
		if (!nh)
			throw("timer heap: out of memory");
		ts->heap = nh;
		ts->cap = ncap;
	}
	int32_t i = ts->len++;
	atomic_store(&ts->alen, ts->len);
	heap_set(ts, i, (struct timerWhen){t, t->when});
	siftUp(ts, i);
	if (t == ts->heap[0].timer)
		updateMinWhenHeap(ts);
}

/* Removes heap[i]; the caller has cleared the timer's heap state. */
static void deleteAt(struct timers *ts, int32_t i)
{
	struct timer *t = ts->heap[i].timer;
	if (t->ts != ts)
		throw("wrong timers");
	t->ts = NULL;
	t->heapidx = -1;
	int32_t last = ts->len - 1;
	if (i != last) {
		heap_set(ts, i, ts->heap[last]);
	}
	ts->heap[last] = (struct timerWhen){0};
	ts->len = last;
	atomic_store(&ts->alen, last);
	if (i != last) {
		/* Moving to i may have moved the last timer to a new parent,
		 * so sift up to preserve the heap guarantee. */
		siftUp(ts, i);
		siftDown(ts, ts->heap[i].timer->heapidx);
	}
	if (i == 0 || ts->len == 0)
		updateMinWhenHeap(ts);
	if (ts->len == 0)
		atomic_store(&ts->minWhenModified, 0);
}

static void deleteMin(struct timers *ts)
{
	deleteAt(ts, 0);
}

/* ---- timer operations (time.go: modify, stop, maybeAdd, updateHeap) - */

/* updateHeap updates t as directed by t.state, updating t.state and
 * returning true if the heap was changed. ts and t are locked; t is
 * heap[0]. */
static bool updateHeap(struct timers *ts, struct timer *t)
{
	if (t->ts != ts || ts->heap[0].timer != t)
		throw("updateHeap: bad heap head");
	if (t->state & timerZombie) {
		t->state &= (uint8_t)~(timerHeaped | timerZombie | timerModified);
		atomic_fetch_sub(&ts->zombies, 1);
		deleteMin(ts);
		return true;
	}
	if (t->state & timerModified) {
		t->state &= (uint8_t)~timerModified;
		ts->heap[0].when = t->when;
		siftDown(ts, 0);
		updateMinWhenHeap(ts);
		return true;
	}
	return false;
}

/* maybeAdd adds t to the local timers heap if it needs to be in a heap.
 * The caller must not hold t's lock nor any timers heap lock. */
static void maybeAdd(struct timer *t)
{
	/* Timers need the poller's timed sleep (findrunnable). */
	if (unlikely(!netpollinited()))
		netpollGenericInit();
	struct g *gp = getg();
	struct m *mp = gp->m;
	mp->locks++;
	struct timers *ts = mp->p->timers;
	lock(&ts->mu);
	timer_lock(t);
	int64_t when = 0;
	bool wake = false;
	if (!(t->state & timerHeaped) && t->when > 0) {
		t->state |= timerHeaped;
		when = t->when;
		int64_t wakeTime = timers_wakeTime(mp->p);
		wake = wakeTime == 0 || when < wakeTime;
		addHeap(ts, t);
	}
	timer_unlock(t);
	unlock(&ts->mu);
	mp->locks--;
	if (wake)
		wakeNetPoller(when);
}

/* modify modifies an existing timer: when, period as given. Reports
 * whether the timer was modified before it was run (it was pending). */
bool timer_modify(struct timer *t, int64_t when, int64_t period)
{
	if (when <= 0)
		when = 1; /* Go: a when <= 0 means "now", which is 1 in nanotime's domain */
	if (t->isChan)
		lock(&t->sendLock);
	timer_lock(t);
	if (t->isChan)
		t->seq++; /* a firing in flight must not send (unlockAndRun) */
	t->period = period;
	bool pending = t->when > 0;
	if (!pending)
		atomic_fetch_add(&ntimers, 1);
	t->when = when;
	bool add = false, wake = false;
	if (t->state & timerHeaped) {
		t->state |= timerModified;
		if (t->state & timerZombie) {
			/* In the heap but marked for removal (by a Stop).
			 * Unmark it, since it has been Reset and will be
			 * running again. */
			atomic_fetch_sub(&t->ts->zombies, 1);
			t->state &= (uint8_t)~timerZombie;
		}
		/* The corresponding heap[i].when is updated later. See comment
		 * in type timer above and in timers.adjust below. */
		int64_t mwm = atomic_load(&t->ts->minWhenModified);
		if (mwm == 0 || when < mwm) {
			wake = true;
			/* Force timerModified bit out to t.astate before
			 * updating t.minWhenModified, to synchronize with
			 * t.ts.adjust. */
			atomic_store(&t->astate, t->state);
			updateMinWhenModified(t->ts, when);
		}
	} else {
		add = true;
	}
	timer_unlock(t);
	if (t->isChan)
		unlock(&t->sendLock);
	if (add)
		maybeAdd(t);
	if (wake)
		wakeNetPoller(when);
	return pending;
}

bool timer_reset(struct timer *t, int64_t when)
{
	return timer_modify(t, when, 0);
}

/* stop stops the timer t. It may be on some other P, so we can't actually
 * remove it from the timers heap. We can only mark it as stopped. It will
 * be removed in due course by the P whose heap it is on. Reports whether t
 * was stopped before it was run. */
bool timer_stop(struct timer *t)
{
	if (t->isChan)
		lock(&t->sendLock);
	timer_lock(t);
	if (t->isChan)
		t->seq++; /* a firing in flight must not send (unlockAndRun) */
	if (t->state & timerHeaped) {
		t->state |= timerModified;
		if (!(t->state & timerZombie)) {
			t->state |= timerZombie;
			atomic_fetch_add(&t->ts->zombies, 1);
		}
	}
	bool pending = t->when > 0;
	t->when = 0;
	if (pending)
		atomic_fetch_sub(&ntimers, 1);
	timer_unlock(t);
	if (t->isChan)
		unlock(&t->sendLock);
	return pending;
}

/* Not in Go (the GC does it): stop t, take it out of whichever heap holds
 * it, and wait until no call of its f is in progress; then its memory may
 * be freed. Called from a goroutine or g0 holding a P. */
void timer_destroy(struct timer *t)
{
	timer_stop(t);
	for (;;) {
		timer_lock(t);
		struct timers *ts = t->ts;
		timer_unlock(t);
		if (!ts)
			break;
		lock(&ts->mu);
		timer_lock(t);
		if (t->ts == ts) {
			int32_t i = t->heapidx;
			if (i < 0 || i >= ts->len || ts->heap[i].timer != t)
				throw("timer_destroy: heap index corrupted");
			if (t->state & timerZombie)
				atomic_fetch_sub(&ts->zombies, 1);
			t->state = 0;
			deleteAt(ts, i);
		}
		timer_unlock(t);
		unlock(&ts->mu);
	}
	while (atomic_load(&t->running))
		usleep_raw(1);
}

/* ---- running timers (time.go: cleanHead, adjust, run, check) --------- */

/* cleanHead cleans up the head of the timer queue. This speeds up programs
 * that create and delete timers; leaving them in the heap slows down
 * heap operations. ts is locked. */
static void cleanHead(struct timers *ts)
{
	for (;;) {
		if (ts->len == 0)
			return;
		/* Delete zombies from tail of heap. It requires no heap
		 * adjustments at all, and doing so increases the chances that
		 * when we swap out a zombie in heap[0] for the tail of the
		 * heap, we'll get a non-zombie timer, shortening this loop. */
		if (ts->len > 1) {
			struct timer *t = ts->heap[ts->len - 1].timer;
			if (atomic_load_explicit(&t->astate, memory_order_relaxed) & timerZombie) {
				timer_lock(t);
				if (t->state & timerZombie) {
					t->state &= (uint8_t)~(timerHeaped | timerZombie | timerModified);
					atomic_fetch_sub(&ts->zombies, 1);
					deleteAt(ts, ts->len - 1);
				}
				timer_unlock(t);
				continue;
			}
		}
		struct timer *t = ts->heap[0].timer;
		if (t->ts != ts)
			throw("bad ts");
		if (!(atomic_load_explicit(&t->astate, memory_order_relaxed) &
		      (timerModified | timerZombie)))
			return; /* Fast path: head of timers does not need adjustment. */
		timer_lock(t);
		bool updated = updateHeap(ts, t);
		timer_unlock(t);
		if (!updated)
			return; /* Head of timers does not need adjustment. */
	}
}

/* adjust looks through the timers in ts.heap for any timers that have
 * been modified to run earlier, and puts them in the correct place in
 * the heap. While looking for those timers, it also moves timers that
 * have been modified to run later, and removes deleted timers. If force
 * is set, it does this even if no timer has been modified to run
 * earlier. ts is locked. */
static void adjust(struct timers *ts, int64_t now, bool force)
{
	/* If we haven't yet reached the time of the earliest modified timer,
	 * don't do anything. This speeds up programs that adjust a lot of
	 * timers back and forth if the timers rarely expire. */
	if (!force) {
		int64_t first = atomic_load(&ts->minWhenModified);
		if (first == 0 || first > now)
			return;
	}
	/* We are going to clear all timerModified bits. If the state
	 * happens to change between now and the CAS below, it is okay:
	 * minWhenHeap first takes the earliest of both, so wakeTime never
	 * reports a time too late while the bits are being cleared. Then
	 * minWhenModified is cleared (seq_cst), and every astate is read
	 * seq_cst after it: a concurrent modify either has its bit seen by
	 * this loop or raises minWhenModified again after the clear. */
	atomic_store(&ts->minWhenHeap, timers_wakeTime_ts(ts));
	atomic_store(&ts->minWhenModified, 0);
	bool changed = false;
	for (int32_t i = 0; i < ts->len; i++) {
		struct timer *t = ts->heap[i].timer;
		if (t->ts != ts)
			throw("bad ts");
		if (!(atomic_load(&t->astate) & (timerModified | timerZombie)))
			continue; /* Does not need adjustment. */
		timer_lock(t);
		if (t->state & timerZombie) {
			t->state &= (uint8_t)~(timerHeaped | timerZombie | timerModified);
			atomic_fetch_sub(&ts->zombies, 1);
			/* Remove without re-sifting: the heap is re-built below. */
			int32_t last = ts->len - 1;
			t->ts = NULL;
			t->heapidx = -1;
			if (i != last)
				heap_set(ts, i, ts->heap[last]);
			ts->heap[last] = (struct timerWhen){0};
			ts->len = last;
			atomic_store(&ts->alen, last);
			i--;
			changed = true;
		} else if (t->state & timerModified) {
			ts->heap[i].when = t->when;
			t->state &= (uint8_t)~timerModified;
			changed = true;
		}
		timer_unlock(t);
	}
	if (changed && ts->len > 1) {
		/* initHeap: re-establish the heap order. */
		for (int32_t i = (ts->len - 1) / timerHeapN; i >= 0; i--)
			siftDown(ts, i);
	}
	updateMinWhenHeap(ts);
}

/* wakeTime looks at ts's timers and returns the time when we should wake
 * up the netpoller. It returns 0 if there are no timers. */
int64_t timers_wakeTime(struct p *pp)
{
	return pp->timers ? timers_wakeTime_ts(pp->timers) : 0;
}

static int64_t timers_wakeTime_ts(struct timers *ts)
{
	/* Note that the order of these two loads matters: adjust updates
	 * minWhen to make it safe to clear minNextWhen. */
	int64_t nextWhen = atomic_load(&ts->minWhenModified);
	int64_t when = atomic_load(&ts->minWhenHeap);
	if (when == 0 || (nextWhen != 0 && nextWhen < when))
		when = nextWhen;
	return when;
}

/* unlockAndRun unlocks and runs the timer t (which must be locked). ts is
 * locked, t is heap[0]; both are unlocked while f runs, and ts is locked
 * again before returning. */
static void unlockAndRun(struct timers *ts, struct timer *t, int64_t now)
{
	int64_t delay = now - t->when;
	void (*f)(void *, uintptr_t, int64_t) = t->f;
	void *arg = t->arg;
	uintptr_t seq = t->seq;
	if (t->period > 0) {
		/* Leave in heap but adjust next time to fire. */
		int64_t next = t->when + t->period * (1 + delay / t->period);
		if (next < 0) /* check for overflow. */
			next = INT64_MAX;
		t->when = next;
		ts->heap[0].when = next;
		siftDown(ts, 0);
		updateMinWhenHeap(ts);
	} else {
		t->when = 0;
		t->state &= (uint8_t)~timerHeaped;
		deleteMin(ts);
		atomic_fetch_sub(&ntimers, 1);
	}
	atomic_fetch_add(&t->running, 1);
	timer_unlock(t);
	unlock(&ts->mu);
	if (t->isChan) {
		/* For a timer channel, we want to make sure that no stale sends
		 * happen after a t.stop or t.modify, but we cannot hold t.mu
		 * during the actual send (which f does) due to lock ordering.
		 * t.stop and t.modify both increment t.seq while holding both
		 * t.mu and t.sendLock; we copied seq above while holding t.mu.
		 * Now we acquire t.sendLock (held across the send) and
		 * double-check that t.seq is still the value we saw. */
		lock(&t->sendLock);
		if (t->seq == seq)
			f(arg, seq, delay);
		unlock(&t->sendLock);
	} else {
		f(arg, seq, delay);
	}
	atomic_fetch_sub(&t->running, 1);
	lock(&ts->mu);
}

/* run examines the first timer in ts. If it is ready based on now, it
 * runs the timer and removes or updates it. Returns 0 if it ran a timer,
 * -1 if there are no more timers, or the time when the first timer
 * should run. ts is locked. */
static int64_t run(struct timers *ts, int64_t now)
{
	for (;;) {
		if (ts->len == 0)
			return -1;
		struct timerWhen tw = ts->heap[0];
		struct timer *t = tw.timer;
		if (t->ts != ts)
			throw("bad ts");
		if (!(atomic_load_explicit(&t->astate, memory_order_relaxed) &
		      (timerModified | timerZombie)) &&
		    tw.when > now)
			return tw.when; /* Fast path: not ready to run. */
		timer_lock(t);
		if (updateHeap(ts, t)) {
			timer_unlock(t);
			continue;
		}
		if (t->state & timerHeaped && t->when > now) {
			/* Not ready to run. */
			timer_unlock(t);
			return t->when;
		}
		unlockAndRun(ts, t, now);
		return 0;
	}
}

/* checkTimers (time.go: timers.check) runs any timers for the P that are
 * ready. If now is not 0 it is the current time. It returns the passed
 * time or the current time if now was passed as 0, and sets *pollUntil to
 * the time when the next timer should run or 0 if there is no next timer,
 * and *ran to whether it ran any timers. We pass now in and out to avoid
 * extra calls of nanotime. */
static int64_t checkTimers_set(struct p *pp, struct timers *ts, int64_t next, int64_t now,
                               int64_t *pollUntil, bool *ran);

int64_t checkTimers(struct p *pp, int64_t now, int64_t *pollUntil, bool *ran)
{
	struct timers *ts = pp->timers;
	*ran = false;
	*pollUntil = 0;
	if (!ts)
		return now;
	int64_t next = timers_wakeTime_ts(ts);
	if (next == 0)
		return now; /* No timers to run or adjust. */
	return checkTimers_set(pp, ts, next, now, pollUntil, ran);
}

/* checkTimers with a timer set (kept apart so that the common case, no
 * timer at all, does not pay for this part's registers). */
__attribute__((noinline)) static int64_t checkTimers_set(struct p *pp, struct timers *ts,
                                                         int64_t next, int64_t now,
                                                         int64_t *pollUntil, bool *ran)
{
	if (now == 0)
		now = nanotime();
	/* If this is the local P, and there are a lot of deleted timers,
	 * clear them out. We only do this for the local P to reduce lock
	 * contention on timersLock. */
	int32_t zombies = atomic_load(&ts->zombies);
	struct m *mp = getg()->m;
	bool force = mp->p == pp && zombies > atomic_load(&ts->alen) / 4;
	if (now < next && !force) {
		/* Next timer is not ready to run, and we don't need to clear
		 * deleted timers. */
		*pollUntil = next;
		return now;
	}
	lock(&ts->mu);
	if (ts->len > 0) {
		adjust(ts, now, false);
		while (ts->len > 0) {
			/* Note that runtimer may temporarily unlock ts. */
			int64_t tw = run(ts, now);
			if (tw != 0) {
				if (tw > 0)
					*pollUntil = tw;
				break;
			}
			*ran = true;
		}
		/* If this is the local P, and there are a lot of deleted
		 * timers, clear them out. We only do this for the local P to
		 * reduce lock contention on timersLock. */
		force = mp->p == pp && atomic_load(&ts->zombies) > ts->len / 4;
		if (force)
			adjust(ts, now, true);
	}
	unlock(&ts->mu);
	if (*pollUntil == 0)
		*pollUntil = timers_wakeTime(pp);
	return now;
}

/* take moves any timers from src into dst (p.destroy): the world is
 * stopped. */
void timers_take(struct p *dst, struct p *src)
{
	struct timers *ts = dst->timers, *old = src->timers;
	if (!old || old->len == 0)
		return;
	lock(&ts->mu);
	lock(&old->mu);
	cleanHead(old);
	while (old->len > 0) {
		struct timer *t = old->heap[old->len - 1].timer;
		timer_lock(t);
		int32_t last = old->len - 1;
		old->heap[last] = (struct timerWhen){0};
		old->len = last;
		atomic_store(&old->alen, last);
		t->ts = NULL;
		t->heapidx = -1;
		if (t->state & timerZombie) {
			t->state = 0;
		} else {
			t->state &= (uint8_t)~timerModified;
			addHeap(ts, t);
		}
		timer_unlock(t);
	}
	atomic_store(&old->zombies, 0);
	atomic_store(&old->minWhenHeap, 0);
	atomic_store(&old->minWhenModified, 0);
	unlock(&old->mu);
	unlock(&ts->mu);
}

/* timeSleepUntil returns the time when the next timer should fire. Used
 * by sysmon and checkdead. */
int64_t timeSleepUntil(void)
{
	int64_t next = INT64_MAX;
	int32_t procs = atomic_load(&gomaxprocs);
	for (int32_t i = 0; i < procs; i++) {
		struct p *pp = __atomic_load_n(&allp[i], __ATOMIC_ACQUIRE);
		if (!pp)
			continue;
		int64_t w = timers_wakeTime(pp);
		if (w != 0 && w < next)
			next = w;
	}
	return next;
}

/* Is any timer pending anywhere? (checkdead: a goroutine waiting for a
 * timer is not deadlocked.) Zombies do not count. */
bool timers_any(void)
{
	return atomic_load(&ntimers) > 0;
}

/* ---- time.Sleep (time.go: timeSleep, resetForSleep, goroutineReady) -- */

static void goroutineReady(void *arg, uintptr_t seq, int64_t delay)
{
	(void)seq;
	(void)delay;
	goready(arg);
}

static bool resetForSleep(struct g *gp, void *unused)
{
	(void)unused;
	timer_reset(gp->timer, gp->sleepwhen);
	return true;
}

/* timeSleep puts the current goroutine to sleep for at least ns
 * nanoseconds. The timer is set after the goroutine parks (resetForSleep
 * runs on g0), so it cannot fire before the goroutine is asleep. */
void timeSleep(int64_t ns)
{
	if (ns <= 0)
		return;
	struct g *gp = getg();
	struct timer *t = gp->timer;
	if (!t) {
		t = malloc(sizeof *t);
		if (!t)
			throw("timeSleep: out of memory");
		timer_init(t, goroutineReady, gp);
		gp->timer = t;
	}
	int64_t when = nanotime() + ns;
	if (when < 0) /* check for overflow. */
		when = INT64_MAX;
	gp->sleepwhen = when;
	gopark(resetForSleep, NULL, waitReasonSleep);
}
