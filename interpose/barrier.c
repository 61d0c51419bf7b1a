/*
 * Barriers and spinlocks, for goroutines.
 *
 * pthread_barrier_t: glibc's pthread_barrier_init validates and writes
 * in (0), current_round (4), count (8) and shared (12; 0 when private);
 * the rest is ours: 16 the runtime mutex_t, 20 and 24 two semaphores
 * (runtime/sema.c), one for the even rounds and one for the odd. The
 * last thread of a round releases count - 1 units on its round's
 * semaphore; a waiter of the next round uses the other one, so it cannot
 * take a unit meant for a slow waiter of this round, and this round's
 * semaphore is used again only after every thread has left this round.
 * Process-shared barriers keep glibc's implementation.
 *
 * pthread_spin_lock: glibc's own trylock in a loop (the word's values differ
 * between architectures: x86-64 counts down from 1), so trylock and unlock
 * stay glibc's; after a bounded spin the goroutine yields to the others of
 * its P (the holder may be one of them) instead of spinning on.
 */
#include <errno.h>

#include "interpose/interpose.h"

struct gbarrier {
	uint32_t in;
	uint32_t round;
	uint32_t count;
	int shared;
	mutex_t lock;
	_Atomic uint32_t sema[2];
	uint32_t unused;
};
_Static_assert(sizeof(struct gbarrier) <= sizeof(pthread_barrier_t), "pthread_barrier_t too small");

static inline struct gbarrier *gbarrier(pthread_barrier_t *b)
{
	return (struct gbarrier *)(void *)b;
}

EXPORT int goshim_pthread_barrier_init(pthread_barrier_t *b, const pthread_barrierattr_t *attr,
                                       unsigned count)
{
	interposing(); /* resolves real */
	int err = real.pthread_barrier_init(b, attr, count);
	if (!err) {
		struct gbarrier *g = gbarrier(b);
		g->lock = (mutex_t){0};
		atomic_store(&g->sema[0], 0);
		atomic_store(&g->sema[1], 0);
	}
	return err;
}
INTERPOSE(pthread_barrier_init, "GLIBC_2.34");
INTERPOSE_COMPAT(pthread_barrier_init, V_BASE, base);

EXPORT int goshim_pthread_barrier_wait(pthread_barrier_t *b)
{
	struct gbarrier *g = gbarrier(b);
	if (!interposing() || g->shared)
		return real.pthread_barrier_wait(b);
	interpose_enter();
	lock(&g->lock);
	uint32_t round = g->round;
	if (++g->in == g->count) {
		uint32_t n = g->count - 1;
		g->in = 0;
		g->round++;
		unlock(&g->lock);
		for (uint32_t i = 0; i < n; i++)
			semrelease1(&g->sema[round & 1], false);
		interpose_leave();
		return PTHREAD_BARRIER_SERIAL_THREAD;
	}
	unlock(&g->lock);
	semacquire1(&g->sema[round & 1], false, waitReasonSemacquire);
	interpose_leave();
	return 0;
}
INTERPOSE(pthread_barrier_wait, "GLIBC_2.34");
INTERPOSE_COMPAT(pthread_barrier_wait, V_BASE, base);

EXPORT int goshim_pthread_barrier_destroy(pthread_barrier_t *b)
{
	struct gbarrier *g = gbarrier(b);
	if (!interposing() || g->shared)
		return real.pthread_barrier_destroy(b);
	interpose_enter();
	lock(&g->lock);
	int err = g->in ? EBUSY : 0;
	unlock(&g->lock);
	interpose_leave();
	return err;
}
INTERPOSE(pthread_barrier_destroy, "GLIBC_2.34");
INTERPOSE_COMPAT(pthread_barrier_destroy, V_BASE, base);

EXPORT int goshim_pthread_spin_lock(pthread_spinlock_t *l)
{
	for (;;) {
		for (int spin = 0; spin < 100; spin++) {
			if (pthread_spin_trylock(l) == 0)
				return 0;
			procyield(10);
		}
		sched_yield(); /* ours when interposing: the holder may be on this P */
	}
}
INTERPOSE(pthread_spin_lock, "GLIBC_2.34");
INTERPOSE_COMPAT(pthread_spin_lock, V_BASE, base);
