/*
 * pthread_rwlock_t as a goroutine-parking lock, in the program's own
 * object, laid out on glibc's struct __pthread_rwlock_arch_t so that
 * glibc's initializers (all-zero, PTHREAD_RWLOCK_WRITER_NONRECURSIVE_
 * INITIALIZER_NP) and pthread_rwlock_init work:
 *
 *   __readers        state: WRITER (bit 31) or the number of readers
 *   __writers        waiters past the fast path (readers and writers)
 *   __wrphase_futex  the runtime mutex_t guarding the queue
 *   __writers_futex  writers waiting (they hold back new readers under
 *                    PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP)
 *   __cur_writer     the writer's owner id (EDEADLK), as in glibc
 *   __shared         glibc's: 0 private, else process-shared (glibc's code)
 *   __pad1, __pad2   the wait queue (struct parkq)
 *   __flags          glibc's kind
 *
 * glibc's default prefers readers (PTHREAD_RWLOCK_PREFER_WRITER_NP too);
 * only the non-recursive writer preference blocks new readers while a
 * writer waits. A waiter counts itself (__writers) under the queue lock
 * before it looks at the state, and leaves the count under the lock too.
 * The last holder to unlock reads the count in the same atomic step that
 * would let go (state and count are the two halves of one 64-bit word):
 * with no waiters it lets go and is done; with waiters it takes the queue
 * lock, lets go under it and wakes every waiter to compete again (no lost
 * wake-up). A last unlock while the queue lock is held takes that lock
 * too, so an unlocker that let go under it never touches the rwlock after
 * someone else could have taken it, unlocked it and destroyed it (a waiter
 * that timed out may have left the count to 0 meanwhile).
 *
 * A waker takes the waiters it wakes off the count, under the lock, and
 * each counts itself again under the lock before it looks at the state
 * once more. A waiter whose wait ended by itself (timeout, signal) was
 * not woken and is still counted. So the count is the waiters parked or
 * about to park: while a woken writer is on its way back, readers' last
 * unlocks stay on the fast path instead of each taking the queue lock to
 * wake nobody.
 */
#include <errno.h>

#include "interpose/interpose.h"

#define RW_WRITER 0x80000000u
#define KIND_PREFER_WRITER_NONRECURSIVE 2

struct grwlock {
	union {
		_Atomic uint64_t word; /* state | nwaiters << 32 */
		struct {
			_Atomic uint32_t state;
			_Atomic uint32_t nwaiters;
		};
	};
	mutex_t lock;
	_Atomic uint32_t wwait;
	uint32_t pad[2];
	int cur_writer;
	int shared;
	struct parkq q;
	unsigned int flags;
};
_Static_assert(sizeof(struct grwlock) <= sizeof(pthread_rwlock_t), "rwlock size");
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "state is word's low half");
_Static_assert(offsetof(struct grwlock, cur_writer) == offsetof(struct __pthread_rwlock_arch_t, __cur_writer) &&
               offsetof(struct grwlock, shared) == offsetof(struct __pthread_rwlock_arch_t, __shared) &&
               offsetof(struct grwlock, flags) == offsetof(struct __pthread_rwlock_arch_t, __flags),
               "rwlock layout");

static inline struct grwlock *grw(pthread_rwlock_t *rw)
{
	return (struct grwlock *)(void *)rw;
}

static inline bool rw_native(pthread_rwlock_t *rw)
{
	return grw(rw)->shared != 0;
}

/* One attempt without blocking: true if taken. The first CAS guesses
 * "free": a plain load first would fetch the line shared and the CAS then
 * upgrade it, two transfers where readers on other CPUs keep moving it. */
static bool try_read(struct grwlock *l)
{
	uint32_t s = 0;
	while (!(s & RW_WRITER)) {
		if (l->flags == KIND_PREFER_WRITER_NONRECURSIVE && atomic_load(&l->wwait) > 0)
			return false;
		if (atomic_compare_exchange_weak(&l->state, &s, s + 1))
			return true;
	}
	return false;
}

static bool try_write(struct grwlock *l, int id)
{
	uint32_t exp = 0;
	if (!atomic_compare_exchange_strong(&l->state, &exp, RW_WRITER))
		return false;
	l->cur_writer = id;
	return true;
}

/* Before parking, spin as the mutex does (Go's sync.Mutex: 4 rounds of 30
 * pauses): readers hold the lock for a few instructions, and a writer
 * that parks waits a park and a wake-up for it. */
static bool try_spinning(struct grwlock *l, bool writer, int id)
{
	for (int spin = 0; spin < 4; spin++) {
		procyield(30);
		if (writer ? try_write(l, id) : try_read(l))
			return true;
	}
	return false;
}

/* Unlinks every waiter and takes them off the count; l->lock held. The
 * list is for goready_list once the lock is let go. */
static struct g *wake_all_locked(struct grwlock *l)
{
	struct g *woken = parkq_wake_all_locked(&l->q);
	uint32_t n = 0;
	for (struct g *gp = woken; gp; gp = gp->schedlink)
		n++;
	if (n)
		atomic_fetch_sub(&l->nwaiters, n);
	return woken;
}

static int lock_slow(struct grwlock *l, bool writer, int id, clockid_t c,
                     const struct timespec *abstime)
{
	int err = 0;
	int64_t deadline = 0;
	if (abstime) {
		if (c != CLOCK_REALTIME && c != CLOCK_MONOTONIC)
			return EINVAL;
		deadline = deadline_from(c, abstime, &err);
		if (err)
			return err;
	}
	interpose_enter();
	lock(&l->lock);
	atomic_fetch_add(&l->nwaiters, 1);
	if (writer)
		atomic_fetch_add(&l->wwait, 1);
	bool requeue = false;
	for (;;) {
		if (writer ? try_write(l, id) : try_read(l))
			break;
		int ended = parkq_wait_then(&l->q, &l->lock, deadline, requeue, PARK_INTR,
		                            waitReasonSyncRWMutexLock, NULL, NULL, NULL);
		if (ended == EINTR)
			interpose_run_handlers(); /* a signal's, in the thread */
		lock(&l->lock);
		if (ended == 0)
			atomic_fetch_add(&l->nwaiters, 1); /* its waker uncounted it */
		if (deadline && nanotime() >= deadline) {
			if (!(writer ? try_write(l, id) : try_read(l)))
				err = ETIMEDOUT;
			break;
		}
		requeue = true;
	}
	if (writer)
		atomic_fetch_sub(&l->wwait, 1);
	atomic_fetch_sub(&l->nwaiters, 1);
	/* A writer that gives up may have held readers back. */
	struct g *woken = NULL;
	if (err && writer && l->flags == KIND_PREFER_WRITER_NONRECURSIVE &&
	    atomic_load(&l->nwaiters) > 0)
		woken = wake_all_locked(l); /* all compete again */
	unlock(&l->lock);
	goready_list(woken);
	interpose_leave();
	return err;
}

static int rdlock(pthread_rwlock_t *rw, bool try, clockid_t c, const struct timespec *abstime)
{
	struct grwlock *l = grw(rw);
	if (try_read(l))
		return 0;
	if (try)
		return EBUSY;
	int id = self_id();
	if ((atomic_load(&l->state) & RW_WRITER) && l->cur_writer == id)
		return EDEADLK;
	if (try_spinning(l, false, id))
		return 0;
	return lock_slow(l, false, id, c, abstime);
}

static int wrlock(pthread_rwlock_t *rw, bool try, clockid_t c, const struct timespec *abstime)
{
	struct grwlock *l = grw(rw);
	int id = self_id();
	if (try_write(l, id))
		return 0;
	if ((atomic_load(&l->state) & RW_WRITER) && l->cur_writer == id)
		return try ? EBUSY : EDEADLK;
	if (try)
		return EBUSY;
	if (try_spinning(l, true, id))
		return 0;
	return lock_slow(l, true, id, c, abstime);
}

#define RW_FN(name, call, native_call, params, ...)                               \
	EXPORT int goshim_##name params                                           \
	{                                                                         \
		if (!interposing() || rw_native(rw))                              \
			return native_call;                                       \
		return call;                                                      \
	}                                                                         \
	INTERPOSE(name, "GLIBC_2.34");                                            \
	INTERPOSE_COMPAT(name, __VA_ARGS__)

RW_FN(pthread_rwlock_rdlock, rdlock(rw, false, CLOCK_REALTIME, NULL), real.pthread_rwlock_rdlock(rw),
      (pthread_rwlock_t *rw), V_BASE, base);
RW_FN(pthread_rwlock_tryrdlock, rdlock(rw, true, CLOCK_REALTIME, NULL),
      real.pthread_rwlock_tryrdlock(rw), (pthread_rwlock_t *rw), V_BASE, base);
RW_FN(pthread_rwlock_timedrdlock, rdlock(rw, false, CLOCK_REALTIME, t),
      real.pthread_rwlock_timedrdlock(rw, t), (pthread_rwlock_t *rw, const struct timespec *t),
      V_BASE, base);
RW_FN(pthread_rwlock_clockrdlock, rdlock(rw, false, c, t), real.pthread_rwlock_clockrdlock(rw, c, t),
      (pthread_rwlock_t *rw, clockid_t c, const struct timespec *t), "GLIBC_2.30", v230);
RW_FN(pthread_rwlock_wrlock, wrlock(rw, false, CLOCK_REALTIME, NULL), real.pthread_rwlock_wrlock(rw),
      (pthread_rwlock_t *rw), V_BASE, base);
RW_FN(pthread_rwlock_trywrlock, wrlock(rw, true, CLOCK_REALTIME, NULL),
      real.pthread_rwlock_trywrlock(rw), (pthread_rwlock_t *rw), V_BASE, base);
RW_FN(pthread_rwlock_timedwrlock, wrlock(rw, false, CLOCK_REALTIME, t),
      real.pthread_rwlock_timedwrlock(rw, t), (pthread_rwlock_t *rw, const struct timespec *t),
      V_BASE, base);
RW_FN(pthread_rwlock_clockwrlock, wrlock(rw, false, c, t), real.pthread_rwlock_clockwrlock(rw, c, t),
      (pthread_rwlock_t *rw, clockid_t c, const struct timespec *t), "GLIBC_2.30", v230);

EXPORT int goshim_pthread_rwlock_unlock(pthread_rwlock_t *rw)
{
	if (!interposing() || rw_native(rw))
		return real.pthread_rwlock_unlock(rw);
	struct grwlock *l = grw(rw);
	uint64_t w = 1; /* a guess, as in try_read: the only reader, no waiters */
	bool writer = false, seen = false; /* seen: w was read, not guessed */
	for (;;) {
		uint32_t s = (uint32_t)w, next;
		if (s & RW_WRITER) {
			if (!writer && l->cur_writer != self_id())
				return EPERM;
			writer = true;
			next = 0;
		} else {
			if (s == 0)
				return EPERM;
			next = s - 1;
		}
		/* The last holder goes the slow way with waiters, and while an
		 * unlocker holds the queue lock: that one let go under the lock
		 * and still touches the rwlock, so it must not be destroyed
		 * before the lock is free (the same order as mutex.c: release). */
		if (next == 0 && ((w >> 32) != 0 || atomic_load(&l->lock.key) != 0)) {
			if (seen)
				break;
			w = atomic_load(&l->word); /* decide on the real state */
			seen = true;
			continue;
		}
		if (writer)
			l->cur_writer = 0; /* ours until the exchange: a retry skips the check */
		if (atomic_compare_exchange_weak(&l->word, &w, (w & ~(uint64_t)UINT32_MAX) | next))
			return 0; /* l may be destroyed from here on */
		seen = true;
	}
	interpose_enter();
	lock(&l->lock);
	/* Whoever takes the rwlock after the release below, and lets it go
	 * last, finds the queue lock held and waits for it: l stays valid. */
	bool last = true;
	if (writer) {
		l->cur_writer = 0;
		atomic_store(&l->state, 0);
	} else {
		last = atomic_fetch_sub(&l->state, 1) == 1; /* readers may have come */
	}
	struct g *woken = last ? wake_all_locked(l) : NULL;
	unlock(&l->lock);
	goready_list(woken); /* all compete again */
	interpose_leave();
	return 0;
}
INTERPOSE(pthread_rwlock_unlock, "GLIBC_2.34");
INTERPOSE_COMPAT(pthread_rwlock_unlock, V_BASE, base);

EXPORT int goshim_pthread_rwlock_init(pthread_rwlock_t *rw, const pthread_rwlockattr_t *attr)
{
	interposing(); /* resolves real */
	/* glibc zeroes the object, then writes the kind and the sharing. */
	return real.pthread_rwlock_init(rw, attr);
}
INTERPOSE(pthread_rwlock_init, "GLIBC_2.34");
INTERPOSE_COMPAT(pthread_rwlock_init, V_BASE, base);

EXPORT int goshim_pthread_rwlock_destroy(pthread_rwlock_t *rw)
{
	if (!interposing() || rw_native(rw))
		return real.pthread_rwlock_destroy(rw);
	return 0; /* as glibc: nothing to free, and no EBUSY */
}
INTERPOSE(pthread_rwlock_destroy, "GLIBC_2.34");
INTERPOSE_COMPAT(pthread_rwlock_destroy, V_BASE, base);
