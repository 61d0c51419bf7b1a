/*
 * pthread_mutex_t as a goroutine-parking lock. All state lives in the
 * program's own pthread_mutex_t (glibc's struct __pthread_mutex_s), so
 * all-zero and every glibc static initializer work:
 *
 *   __lock   0 unlocked, 1 locked, 2 locked and maybe waiters (Go's
 *            lock_futex.go states)
 *   __count  recursion depth (recursive type)
 *   __owner  owner id (self_id: the thread's tid, made up for a
 *            pthread-goroutine, or a go() goroutine's own); kept for every
 *            type, as glibc does
 *   __nusers the runtime mutex_t guarding the wait queue
 *   __kind   glibc's type bits, set by glibc's pthread_mutex_init
 *   __list   the wait queue (struct parkq)
 *
 * Process-shared mutexes keep glibc's implementation (another process
 * cannot run our goroutines), and priority-protect ones (below).
 * Priority-inheritance mutexes behave as their base type: goroutines have
 * no priorities to inherit.
 *
 * Robust mutexes: a pthread-goroutine keeps a list of the robust mutexes
 * it holds; when it exits holding one, the mutex is released with
 * __owner = OWNER_DIED and the next locker gets it with EOWNERDEAD and
 * __owner = glibc's PTHREAD_MUTEX_INCONSISTENT (so glibc's own
 * pthread_mutex_consistent works on it); unlocked while inconsistent it
 * becomes PTHREAD_MUTEX_NOTRECOVERABLE, as with NPTL.
 *
 * Invariants: a waiter publishes itself (__lock = 2) and enqueues under
 * the queue lock; an unlocker that does not see a plain 1 with the queue
 * lock free takes the queue lock, wakes the first waiter and lets the
 * mutex go under it, so no wake-up is lost; an unlocker never touches the
 * mutex after someone else could have unlocked and freed it. A free mutex
 * may be taken by anyone (barging, as Go's sync.Mutex in normal mode); a
 * woken waiter that loses requeues at the head.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>

#include "interpose/interpose.h"

#define KIND_TYPE_MASK 3
#define KIND_ROBUST 16
#define KIND_PP 64
#define OWNER_INCONSISTENT INT_MAX      /* glibc: PTHREAD_MUTEX_INCONSISTENT */
#define OWNER_NOTRECOVERABLE (INT_MAX - 1)
#define OWNER_DIED (INT_MAX - 2)         /* ours: released by a dead owner */
#define KIND_PSHARED 128
#define KIND_KNOWN (3 | 16 | 32 | 64 | 128 | 256 | 512)

_Static_assert(sizeof(struct __pthread_mutex_s) >= 24 + sizeof(struct parkq), "mutex size");

#define M_LOCK(m) ((_Atomic int *)&(m)->__data.__lock)
#define M_QLOCK(m) ((mutex_t *)&(m)->__data.__nusers)
#define M_QUEUE(m) ((struct parkq *)&(m)->__data.__list)

/* Kept on glibc's implementation: process-shared mutexes, and
 * priority-protect ones (glibc keeps their ceiling in __lock and changes
 * the thread's scheduling priority, which is the M's). */
static inline bool pshared(pthread_mutex_t *m)
{
	return m->__data.__kind & (KIND_PSHARED | KIND_PP);
}

static inline bool bad_kind(pthread_mutex_t *m)
{
	return (m->__data.__kind & ~KIND_KNOWN) != 0;
}

static inline bool robust(pthread_mutex_t *m)
{
	return m->__data.__kind & KIND_ROBUST;
}

static void robust_forget(struct gthread *th, pthread_mutex_t *m)
{
	for (int i = th->nrobust - 1; i >= 0; i--) {
		if (th->robust[i] == m) {
			th->robust[i] = th->robust[--th->nrobust];
			return;
		}
	}
}

static int release(pthread_mutex_t *m, int owner, bool entered);

static bool thread_self_holds(pthread_mutex_t *m)
{
	struct gthread *th = thread_self_or_main();
	if (!th)
		return true;
	for (int i = 0; i < th->nrobust; i++)
		if (th->robust[i] == m)
			return true;
	return false;
}

/* The lock is ours: 0, or a robust mutex's EOWNERDEAD (held) or
 * ENOTRECOVERABLE (released again). */
static int robust_acquired(pthread_mutex_t *m, int id)
{
	int prev = m->__data.__owner;
	if (prev == OWNER_NOTRECOVERABLE) {
		release(m, OWNER_NOTRECOVERABLE, false);
		return ENOTRECOVERABLE;
	}
	struct gthread *th = thread_self_or_main();
	if (th) {
		if (th->nrobust == th->robustcap) {
			int cap = th->robustcap ? 2 * th->robustcap : 8;
			void **r = realloc(th->robust, (size_t)cap * sizeof *r);
			if (!r) {
				release(m, prev, false);
				return EAGAIN;
			}
			th->robust = r;
			th->robustcap = cap;
		}
		th->robust[th->nrobust++] = m;
	}
	m->__data.__count = 1;
	if (prev == OWNER_DIED) {
		m->__data.__owner = OWNER_INCONSISTENT;
		return EOWNERDEAD;
	}
	m->__data.__owner = id;
	return 0;
}

static inline int acquired(pthread_mutex_t *m, int id)
{
	if (unlikely(robust(m)))
		return robust_acquired(m, id);
	m->__data.__owner = id;
	m->__data.__count = 1;
	return 0;
}

/* Blocks until the lock is ours or the deadline passes; a signal's
 * handler runs meanwhile, in the thread. The caller holds a P. */
static int lock_slow(pthread_mutex_t *m, int64_t deadline)
{
	bool requeue = false;
	for (;;) {
		for (int spin = 0; spin < 4; spin++) {
			int exp = 0;
			if (atomic_load_explicit(M_LOCK(m), memory_order_relaxed) == 0 &&
			    atomic_compare_exchange_strong(M_LOCK(m), &exp, 2))
				return 0;
			procyield(30);
		}
		lock(M_QLOCK(m));
		if (atomic_exchange(M_LOCK(m), 2) == 0) {
			unlock(M_QLOCK(m));
			return 0;
		}
		int ended = parkq_wait_then(M_QUEUE(m), M_QLOCK(m), deadline, requeue, PARK_INTR,
		                            waitReasonSyncMutexLock, NULL, NULL, NULL);
		if (ended == ETIMEDOUT)
			return ETIMEDOUT;
		if (ended == EINTR)
			interpose_run_handlers(); /* then queues again, at the tail */
		requeue = ended == 0;
	}
}

/* The part of every lock call after the owner checks. */
static int lock_common(pthread_mutex_t *m, int id, clockid_t c, const struct timespec *abstime)
{
	if (unlikely(robust(m)) && m->__data.__owner == OWNER_NOTRECOVERABLE)
		return ENOTRECOVERABLE;
	int exp = 0;
	if (atomic_compare_exchange_strong(M_LOCK(m), &exp, 1))
		return acquired(m, id);
	int err = 0;
	int64_t deadline = 0;
	if (abstime) {
		deadline = deadline_from(c, abstime, &err);
		if (err)
			return err;
	}
	interpose_enter();
	err = lock_slow(m, deadline);
	interpose_leave();
	if (!err)
		err = acquired(m, id);
	return err;
}

/* Owner checks of the recursive and errorcheck types; -1 to go on. */
static int relock(pthread_mutex_t *m, int id, bool try)
{
	int type = m->__data.__kind & KIND_TYPE_MASK;
	if ((m->__data.__owner != id &&
	     !(m->__data.__owner == OWNER_INCONSISTENT && robust(m) && thread_self_holds(m))) || atomic_load_explicit(M_LOCK(m), memory_order_relaxed) == 0)
		return -1;
	if (type == PTHREAD_MUTEX_RECURSIVE) {
		if (m->__data.__count == UINT_MAX)
			return EAGAIN;
		m->__data.__count++;
		return 0;
	}
	if (type == PTHREAD_MUTEX_ERRORCHECK)
		return try ? EBUSY : EDEADLK;
	return -1;
}

static int timedlock(pthread_mutex_t *m, clockid_t c, const struct timespec *abstime)
{
	if (bad_kind(m))
		return EINVAL;
	int id = self_id();
	int err = relock(m, id, false);
	if (err >= 0)
		return err;
	return lock_common(m, id, c, abstime);
}

EXPORT int goshim_pthread_mutex_lock(pthread_mutex_t *m)
{
	if (!interposing() || pshared(m))
		return real.pthread_mutex_lock(m);
	return timedlock(m, CLOCK_REALTIME, NULL);
}
INTERPOSE(pthread_mutex_lock, V_BASE);

EXPORT int goshim_pthread_mutex_timedlock(pthread_mutex_t *m, const struct timespec *abstime)
{
	if (!interposing() || pshared(m))
		return real.pthread_mutex_timedlock(m, abstime);
	return timedlock(m, CLOCK_REALTIME, abstime);
}
INTERPOSE(pthread_mutex_timedlock, "GLIBC_2.34");
INTERPOSE_COMPAT(pthread_mutex_timedlock, V_BASE, base);

EXPORT int goshim_pthread_mutex_clocklock(pthread_mutex_t *m, clockid_t c,
                                          const struct timespec *abstime)
{
	if (!interposing() || pshared(m))
		return real.pthread_mutex_clocklock(m, c, abstime);
	if (c != CLOCK_REALTIME && c != CLOCK_MONOTONIC)
		return EINVAL;
	return timedlock(m, c, abstime);
}
INTERPOSE(pthread_mutex_clocklock, "GLIBC_2.34");
INTERPOSE_COMPAT(pthread_mutex_clocklock, "GLIBC_2.30", v230);

EXPORT int goshim_pthread_mutex_trylock(pthread_mutex_t *m)
{
	if (!interposing() || pshared(m))
		return real.pthread_mutex_trylock(m);
	if (bad_kind(m))
		return EINVAL;
	int id = self_id();
	int err = relock(m, id, true);
	if (err >= 0)
		return err;
	if (unlikely(robust(m)) && m->__data.__owner == OWNER_NOTRECOVERABLE)
		return ENOTRECOVERABLE;
	int exp = 0;
	if (!atomic_compare_exchange_strong(M_LOCK(m), &exp, 1))
		return EBUSY;
	return acquired(m, id);
}
INTERPOSE(pthread_mutex_trylock, "GLIBC_2.34");
INTERPOSE_COMPAT(pthread_mutex_trylock, V_BASE, base);

/* Releases one level of m held by id; the caller holds a P when entered
 * is true. */
int mutex_unlock(pthread_mutex_t *m, bool entered)
{
	if (pshared(m))
		return real.pthread_mutex_unlock(m);
	int err = mutex_unlock_check(m);
	if (err)
		return err;
	if ((m->__data.__kind & KIND_TYPE_MASK) == PTHREAD_MUTEX_RECURSIVE && --m->__data.__count != 0)
		return 0;
	int owner = 0;
	if (unlikely(robust(m))) {
		struct gthread *th = thread_self_or_main();
		if (th)
			robust_forget(th, m);
		if (m->__data.__owner == OWNER_INCONSISTENT)
			owner = OWNER_NOTRECOVERABLE;
	}
	return release(m, owner, entered);
}

/* Lets go of the lock, leaving owner in __owner for the next locker. */
static void release_wake(pthread_mutex_t *m, bool entered);

static int release(pthread_mutex_t *m, int owner, bool entered)
{
	m->__data.__owner = owner;
	m->__data.__count = 0;
	int exp = 1;
	if (atomic_load(&M_QLOCK(m)->key) == 0 && atomic_compare_exchange_strong(M_LOCK(m), &exp, 0))
		return 0;
	release_wake(m, entered);
	return 0;
}

/* release with maybe waiters (kept apart so that an uncontended unlock
 * does not pay for its registers). */
__attribute__((noinline)) static void release_wake(pthread_mutex_t *m, bool entered)
{
	/* Maybe waiters: wake the first, who competes again (barging keeps a
	 * contended mutex with its running holder, as Go's sync.Mutex does in
	 * normal mode, instead of a context switch per hand-over). The lock is
	 * let go under the queue lock: an unlocker that takes it meanwhile sees
	 * the queue lock held and waits for it, so this thread's last touch of
	 * the mutex comes before anyone can unlock, destroy and free it (glibc
	 * bug 13690's pattern). The woken waiter marks the lock contended (2)
	 * again for the waiters behind it. */
	if (!entered)
		interpose_enter();
	lock(M_QLOCK(m));
	struct g *gp = parkq_wake(M_QUEUE(m), 0);
	atomic_store(M_LOCK(m), 0);
	unlock(M_QLOCK(m));
	if (gp)
		goready(gp);
	if (!entered)
		interpose_leave();
}

/* What mutex_unlock would fail with: EINVAL, EPERM (not the owner, for
 * the checking types) or 0. */
static int unlock_check_owner(pthread_mutex_t *m);

int mutex_unlock_check(pthread_mutex_t *m)
{
	if (pshared(m))
		return 0; /* glibc's unlock reports its own errors */
	if (bad_kind(m))
		return EINVAL;
	int type = m->__data.__kind & KIND_TYPE_MASK;
	if (type != PTHREAD_MUTEX_RECURSIVE && type != PTHREAD_MUTEX_ERRORCHECK && !robust(m))
		return 0;
	return unlock_check_owner(m);
}

/* mutex_unlock_check for the types that check their owner (kept apart so
 * that normal mutexes do not pay for its registers). */
__attribute__((noinline)) static int unlock_check_owner(pthread_mutex_t *m)
{
	if (atomic_load_explicit(M_LOCK(m), memory_order_relaxed) == 0)
		return EPERM;
	if (m->__data.__owner == self_id())
		return 0;
	/* An inconsistent robust mutex is its locker's (glibc cannot tell
	 * either: it recorded no owner). */
	if (robust(m) && m->__data.__owner == OWNER_INCONSISTENT && thread_self_holds(m))
		return 0;
	return EPERM;
}

/* Called by a pthread-goroutine that ends: its robust mutexes are released
 * with their owner marked dead. */
void mutex_owner_died(struct gthread *th)
{
	while (th->nrobust > 0) {
		pthread_mutex_t *m = th->robust[--th->nrobust];
		release(m, OWNER_DIED, false);
	}
	free(th->robust);
	th->robust = NULL;
	th->robustcap = 0;
}

/* Takes m for a returning condvar waiter (no deadline): 0, or what the
 * lock gave (EOWNERDEAD, ENOTRECOVERABLE). Mutexes glibc keeps go back to
 * glibc. */
int mutex_relock(pthread_mutex_t *m)
{
	if (pshared(m))
		return real.pthread_mutex_lock(m);
	return timedlock(m, CLOCK_REALTIME, NULL);
}

EXPORT int goshim_pthread_mutex_unlock(pthread_mutex_t *m)
{
	if (!interposing() || pshared(m))
		return real.pthread_mutex_unlock(m);
	return mutex_unlock(m, false);
}
INTERPOSE(pthread_mutex_unlock, V_BASE);

EXPORT int goshim_pthread_mutex_init(pthread_mutex_t *m, const pthread_mutexattr_t *attr)
{
	/* glibc validates the attributes and writes __kind; the rest is 0. */
	bool on = interposing(); /* also resolves real */
	int err = real.pthread_mutex_init(m, attr);
	int pshared = PTHREAD_PROCESS_PRIVATE;
	if (!err && on && attr && (m->__data.__kind & KIND_ROBUST) &&
	    pthread_mutexattr_getpshared(attr, &pshared) == 0 && pshared == PTHREAD_PROCESS_PRIVATE) {
		/* glibc marks every robust mutex process-shared (the kernel
		 * wakes robust waiters with shared futex operations); a
		 * private one is ours. */
		m->__data.__kind &= ~KIND_PSHARED;
	}
	return err;
}
INTERPOSE(pthread_mutex_init, V_BASE);

EXPORT int goshim_pthread_mutex_destroy(pthread_mutex_t *m)
{
	if (!interposing() || pshared(m))
		return real.pthread_mutex_destroy(m);
	if (bad_kind(m))
		return EINVAL;
	if (atomic_load(M_LOCK(m)) != 0)
		return EBUSY;
	/* As glibc: a destroyed mutex is of no known type. */
	m->__data.__kind = -1;
	return 0;
}
INTERPOSE(pthread_mutex_destroy, V_BASE);
