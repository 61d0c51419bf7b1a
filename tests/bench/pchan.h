/* Native (pthread) building blocks of the baselines (*_native.c): a minimal
 * bounded channel of longs built from one pthread mutex and two condition
 * variables, a WaitGroup, thread start-up and CPU pinning.
 *
 * pchan is what a C programmer writes without a runtime: a ring buffer
 * under a mutex; receivers wait on `nonempty`, senders on `space`. Capacity
 * 0 is a rendezvous as in Go: the sender puts its value in the single slot
 * and waits until a receiver has taken it. Each operation broadcasts the
 * other side's condition variable (free in glibc when nobody waits).
 *
 * Select: pthreads have no select over condition variables; the idiomatic
 * analogue is one mutex (and condition variables) guarding every queue a
 * thread may wait on, with the waiter re-checking each predicate. Channels
 * made with pchan_new(cap, other) share other's lock and condition
 * variables, and pchan_recv2 receives from the first of two such channels
 * that has a value. */
#ifndef PCHAN_H
#define PCHAN_H

#include <pthread.h>
#include <sched.h>

#include "bench.h"

typedef struct pchan_lock {
	pthread_mutex_t mu;
	pthread_cond_t nonempty, space;
} pchan_lock;

typedef struct pchan {
	pchan_lock *l;
	pchan_lock own;
	size_t cap, slots;          /* slots: max(cap, 1) */
	unsigned long sent, recvd;  /* values put / taken so far */
	long *buf;
} pchan;

/* A channel of capacity cap; with share != NULL it uses share's lock. */
static inline pchan *pchan_new(size_t cap, pchan *share)
{
	pchan *c = calloc(1, sizeof *c);
	if (!c)
		BENCH_DIE("pchan_new: out of memory");
	c->cap = cap;
	c->slots = cap ? cap : 1;
	c->buf = calloc(c->slots, sizeof *c->buf);
	if (!c->buf)
		BENCH_DIE("pchan_new: out of memory");
	if (share) {
		c->l = share->l;
	} else {
		c->l = &c->own;
		pthread_mutex_init(&c->l->mu, NULL);
		pthread_cond_init(&c->l->nonempty, NULL);
		pthread_cond_init(&c->l->space, NULL);
	}
	return c;
}

static inline void pchan_send(pchan *c, long v)
{
	pthread_mutex_lock(&c->l->mu);
	while (c->sent - c->recvd >= c->slots)
		pthread_cond_wait(&c->l->space, &c->l->mu);
	c->buf[c->sent % c->slots] = v;
	unsigned long mine = ++c->sent;
	pthread_cond_broadcast(&c->l->nonempty);
	if (c->cap == 0) /* rendezvous: wait until it is taken */
		while (c->recvd < mine)
			pthread_cond_wait(&c->l->space, &c->l->mu);
	pthread_mutex_unlock(&c->l->mu);
}

/* With the lock held and a value present. */
static inline long pchan_take_(pchan *c)
{
	long v = c->buf[c->recvd % c->slots];
	c->recvd++;
	pthread_cond_broadcast(&c->l->space);
	return v;
}

static inline long pchan_recv(pchan *c)
{
	pthread_mutex_lock(&c->l->mu);
	while (c->sent == c->recvd)
		pthread_cond_wait(&c->l->nonempty, &c->l->mu);
	long v = pchan_take_(c);
	pthread_mutex_unlock(&c->l->mu);
	return v;
}

/* select { case *v = <-a: return 0; case *v = <-b: return 1 } for two
 * channels sharing a lock (a is checked first: no random choice). */
static inline int pchan_recv2(pchan *a, pchan *b, long *v)
{
	if (a->l != b->l)
		BENCH_DIE("pchan_recv2: the channels must share a lock");
	pthread_mutex_lock(&a->l->mu);
	int which;
	for (;;) {
		if (a->sent != a->recvd) { which = 0; *v = pchan_take_(a); break; }
		if (b->sent != b->recvd) { which = 1; *v = pchan_take_(b); break; }
		pthread_cond_wait(&a->l->nonempty, &a->l->mu);
	}
	pthread_mutex_unlock(&a->l->mu);
	return which;
}

/* sync.WaitGroup: a counter under a mutex, waiters on a condition variable. */
typedef struct pwg {
	pthread_mutex_t mu;
	pthread_cond_t zero;
	long n;
} pwg;
#define PWG_INIT { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0 }

static inline void pwg_add(pwg *wg, long d)
{
	pthread_mutex_lock(&wg->mu);
	wg->n += d;
	if (wg->n == 0)
		pthread_cond_broadcast(&wg->zero);
	pthread_mutex_unlock(&wg->mu);
}
static inline void pwg_done(pwg *wg) { pwg_add(wg, -1); }
static inline void pwg_wait(pwg *wg)
{
	pthread_mutex_lock(&wg->mu);
	while (wg->n != 0)
		pthread_cond_wait(&wg->zero, &wg->mu);
	pthread_mutex_unlock(&wg->mu);
}

/* A detached thread with a stack of stack_size bytes (0: the default). */
static inline void bench_thread(void *(*fn)(void *), void *arg, size_t stack_size)
{
	pthread_attr_t a;
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	if (stack_size)
		pthread_attr_setstacksize(&a, stack_size);
	pthread_t t;
	int err = pthread_create(&t, &a, fn, arg);
	pthread_attr_destroy(&a);
	if (err)
		BENCH_DIE("pthread_create: %s", strerror(err));
}

/* Pins the process (and the threads it starts later) to one CPU, the
 * analogue of GOMAXPROCS=1: one CPU runs both sides, as one P does. */
static inline void bench_pin_one_cpu(void)
{
	cpu_set_t allowed, one;
	if (sched_getaffinity(0, sizeof allowed, &allowed))
		BENCH_DIE("sched_getaffinity: %s", strerror(errno));
	CPU_ZERO(&one);
	for (int i = 0; i < CPU_SETSIZE; i++)
		if (CPU_ISSET(i, &allowed)) {
			CPU_SET(i, &one);
			break;
		}
	if (sched_setaffinity(0, sizeof one, &one))
		BENCH_DIE("sched_setaffinity: %s", strerror(errno));
}

#endif
