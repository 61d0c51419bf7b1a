/* pthread condition variables: a bounded buffer, signal and broadcast,
 * timed and clock waits (the mutex is held again on return), clock
 * attributes, argument errors, static and zero-filled condvars, destroy.
 * See legacy.h for the conventions. */
#include "legacy.h"
#include <sched.h>

/* ------------------------------------------------------------------------
 * Producer/consumer. */

#define NPROD 4
#define NCONS 4
#define NITEMS 20000	/* in all */
#define BUFSZ 16

static struct {
	pthread_mutex_t m;
	pthread_cond_t not_full, not_empty;
	long buf[BUFSZ];
	int head, count;
	long taken;
} bb = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER };

struct consumer_result {
	long n;
	unsigned long sum, xor;
};

static void *producer(void *arg)
{
	long p = (long)(intptr_t)arg;
	for (long i = 0; i < NITEMS / NPROD; i++) {
		long v = p * 1000000 + i;
		CHECK0(pthread_mutex_lock(&bb.m));
		while (bb.count == BUFSZ)
			CHECK0(pthread_cond_wait(&bb.not_full, &bb.m));
		bb.buf[(bb.head + bb.count) % BUFSZ] = v;
		bb.count++;
		CHECK0(pthread_cond_signal(&bb.not_empty));
		CHECK0(pthread_mutex_unlock(&bb.m));
	}
	return NULL;
}

static void *consumer(void *arg)
{
	struct consumer_result *r = arg;
	for (;;) {
		CHECK0(pthread_mutex_lock(&bb.m));
		while (bb.count == 0 && bb.taken < NITEMS)
			CHECK0(pthread_cond_wait(&bb.not_empty, &bb.m));
		if (bb.count == 0) {	/* all taken */
			CHECK0(pthread_mutex_unlock(&bb.m));
			return NULL;
		}
		long v = bb.buf[bb.head];
		bb.head = (bb.head + 1) % BUFSZ;
		bb.count--;
		if (++bb.taken == NITEMS)
			CHECK0(pthread_cond_broadcast(&bb.not_empty));
		CHECK0(pthread_cond_signal(&bb.not_full));
		CHECK0(pthread_mutex_unlock(&bb.m));
		r->n++;
		r->sum += (unsigned long)v;
		r->xor ^= (unsigned long)v * 2654435761u;
	}
}

static void t_bounded_buffer(void)
{
	pthread_t p[NPROD], c[NCONS];
	struct consumer_result r[NCONS];
	struct consumer_result total = { 0, 0, 0 }, want = { 0, 0, 0 };

	memset(r, 0, sizeof r);
	for (int i = 0; i < NCONS; i++)
		CHECK0(pthread_create(&c[i], NULL, consumer, &r[i]));
	for (int i = 0; i < NPROD; i++)
		CHECK0(pthread_create(&p[i], NULL, producer, (void *)(intptr_t)i));
	for (int i = 0; i < NPROD; i++)
		CHECK0(pthread_join(p[i], NULL));
	for (int i = 0; i < NCONS; i++) {
		CHECK0(pthread_join(c[i], NULL));
		total.n += r[i].n;
		total.sum += r[i].sum;
		total.xor ^= r[i].xor;
	}
	for (long pi = 0; pi < NPROD; pi++)
		for (long i = 0; i < NITEMS / NPROD; i++) {
			long v = pi * 1000000 + i;
			want.n++;
			want.sum += (unsigned long)v;
			want.xor ^= (unsigned long)v * 2654435761u;
		}
	if (total.n != want.n || total.sum != want.sum || total.xor != want.xor)
		FAIL("bounded buffer: %ld items sum %lu xor %lx, want %ld sum %lu xor %lx", total.n,
		     total.sum, total.xor, want.n, want.sum, want.xor);
	printf("bounded buffer: %d producers, %d consumers, %ld items, checksum %lu/%lx\n", NPROD,
	       NCONS, total.n, total.sum, total.xor);
}

/* ------------------------------------------------------------------------
 * Signal: each signal with one token lets one waiter through. */

#define NSIG_WAITERS 4

static struct {
	pthread_mutex_t m;
	pthread_cond_t c;
	int tokens, waiting, passed;
} sg = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0 };

static pthread_cond_t sg_main = PTHREAD_COND_INITIALIZER;

static void *sig_waiter(void *arg)
{
	CHECK0(pthread_mutex_lock(&sg.m));
	sg.waiting++;
	CHECK0(pthread_cond_signal(&sg_main));
	while (sg.tokens == 0)
		CHECK0(pthread_cond_wait(&sg.c, &sg.m));
	sg.tokens--;
	sg.passed++;
	sg.waiting--;
	CHECK0(pthread_cond_signal(&sg_main));
	CHECK0(pthread_mutex_unlock(&sg.m));
	return NULL;
}

static void t_signal(void)
{
	pthread_t t[NSIG_WAITERS];
	for (int i = 0; i < NSIG_WAITERS; i++)
		CHECK0(pthread_create(&t[i], NULL, sig_waiter, NULL));
	CHECK0(pthread_mutex_lock(&sg.m));
	while (sg.waiting < NSIG_WAITERS)
		CHECK0(pthread_cond_wait(&sg_main, &sg.m));
	for (int k = 1; k <= NSIG_WAITERS; k++) {
		sg.tokens++;
		CHECK0(pthread_cond_signal(&sg.c));
		while (sg.passed < k)
			CHECK0(pthread_cond_wait(&sg_main, &sg.m));
		if (sg.passed != k || sg.tokens != 0)
			FAIL("signal %d: %d passed, %d tokens left", k, sg.passed, sg.tokens);
	}
	CHECK0(pthread_mutex_unlock(&sg.m));
	for (int i = 0; i < NSIG_WAITERS; i++)
		CHECK0(pthread_join(t[i], NULL));
	printf("pthread_cond_signal: %d signals, one token each, let %d waiters through one by one\n",
	       NSIG_WAITERS, sg.passed);
}

/* ------------------------------------------------------------------------
 * Broadcast: every round wakes all waiters of the generation. */

#define NBC 8
#define BC_ROUNDS 50

static struct {
	pthread_mutex_t m;
	pthread_cond_t c, arrived_c;
	long gen;
	int arrived;
	int woken;
} bc = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER };

static void *bc_waiter(void *arg)
{
	CHECK0(pthread_mutex_lock(&bc.m));
	for (int r = 0; r < BC_ROUNDS; r++) {
		long my = bc.gen;
		bc.arrived++;
		CHECK0(pthread_cond_signal(&bc.arrived_c));
		while (bc.gen == my)
			CHECK0(pthread_cond_wait(&bc.c, &bc.m));
		bc.woken++;
	}
	CHECK0(pthread_mutex_unlock(&bc.m));
	return NULL;
}

static void t_broadcast(void)
{
	pthread_t t[NBC];
	for (int i = 0; i < NBC; i++)
		CHECK0(pthread_create(&t[i], NULL, bc_waiter, NULL));
	CHECK0(pthread_mutex_lock(&bc.m));
	for (int r = 0; r < BC_ROUNDS; r++) {
		while (bc.arrived < NBC * (r + 1))
			CHECK0(pthread_cond_wait(&bc.arrived_c, &bc.m));
		if (bc.woken != NBC * r)
			FAIL("broadcast round %d: %d woken, want %d", r, bc.woken, NBC * r);
		bc.gen++;
		CHECK0(pthread_cond_broadcast(&bc.c));
	}
	CHECK0(pthread_mutex_unlock(&bc.m));
	for (int i = 0; i < NBC; i++)
		CHECK0(pthread_join(t[i], NULL));
	if (bc.woken != NBC * BC_ROUNDS)
		FAIL("broadcast: %d woken, want %d", bc.woken, NBC * BC_ROUNDS);
	printf("pthread_cond_broadcast: %d rounds each woke all %d waiters\n", BC_ROUNDS, NBC);
}

/* ------------------------------------------------------------------------
 * Timeouts. After a timed wait returns, its caller holds the mutex again:
 * another thread's trylock is EBUSY and the caller's unlock of an
 * errorcheck mutex succeeds. */

static void *trylock_rc(void *m)
{
	int rc = pthread_mutex_trylock(m);
	if (rc == 0)
		CHECK0(pthread_mutex_unlock(m));
	return (void *)(intptr_t)rc;
}

static void expect_held_by_me(const char *what, pthread_mutex_t *m)
{
	char buf[160];
	snprintf(buf, sizeof buf, "%s: trylock from another thread afterwards", what);
	EXPECT(buf, (int)(intptr_t)run_in_thread(trylock_rc, m), EBUSY);
	snprintf(buf, sizeof buf, "%s: the waiter unlocks (errorcheck)", what);
	EXPECT(buf, pthread_mutex_unlock(m), 0);
}

static void errorcheck_init(pthread_mutex_t *m)
{
	pthread_mutexattr_t a;
	CHECK0(pthread_mutexattr_init(&a));
	CHECK0(pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK));
	CHECK0(pthread_mutex_init(m, &a));
	CHECK0(pthread_mutexattr_destroy(&a));
}

static void t_timeouts(void)
{
	pthread_mutex_t m;
	pthread_cond_t c;
	pthread_condattr_t ca;
	struct timespec dl;
	clockid_t clk;

	errorcheck_init(&m);
	CHECK0(pthread_cond_init(&c, NULL));

	CHECK0(pthread_mutex_lock(&m));
	dl = ts_after(CLOCK_REALTIME, 30);
	EXPECT("pthread_cond_timedwait (CLOCK_REALTIME)", pthread_cond_timedwait(&c, &m, &dl),
	       ETIMEDOUT);
	CHECK_DEADLINE_PASSED(CLOCK_REALTIME, &dl);
	expect_held_by_me("timedwait ETIMEDOUT", &m);

	CHECK0(pthread_mutex_lock(&m));
	dl = ts_bad_nsec(CLOCK_REALTIME);
	EXPECT("pthread_cond_timedwait with tv_nsec = 1000000000", pthread_cond_timedwait(&c, &m, &dl),
	       EINVAL);
	expect_held_by_me("timedwait EINVAL", &m);

	CHECK0(pthread_mutex_lock(&m));
	dl = ts_after(CLOCK_MONOTONIC, 30);
	EXPECT("pthread_cond_clockwait CLOCK_MONOTONIC", pthread_cond_clockwait(&c, &m,
	       CLOCK_MONOTONIC, &dl), ETIMEDOUT);
	CHECK_DEADLINE_PASSED(CLOCK_MONOTONIC, &dl);
	expect_held_by_me("clockwait ETIMEDOUT", &m);

	CHECK0(pthread_mutex_lock(&m));
	dl = ts_after(CLOCK_REALTIME, 30);
	EXPECT("pthread_cond_clockwait CLOCK_REALTIME", pthread_cond_clockwait(&c, &m,
	       CLOCK_REALTIME, &dl), ETIMEDOUT);
	CHECK_DEADLINE_PASSED(CLOCK_REALTIME, &dl);
	dl = ts_after(CLOCK_PROCESS_CPUTIME_ID, 30);
	EXPECT("pthread_cond_clockwait CLOCK_PROCESS_CPUTIME_ID", pthread_cond_clockwait(&c, &m,
	       CLOCK_PROCESS_CPUTIME_ID, &dl), EINVAL);
	dl = ts_bad_nsec(CLOCK_MONOTONIC);
	EXPECT("pthread_cond_clockwait with tv_nsec = 1000000000", pthread_cond_clockwait(&c, &m,
	       CLOCK_MONOTONIC, &dl), EINVAL);
	expect_held_by_me("clockwait EINVAL", &m);
	EXPECT("pthread_cond_destroy (no waiters)", pthread_cond_destroy(&c), 0);

	/* A condvar on CLOCK_MONOTONIC. */
	CHECK0(pthread_condattr_init(&ca));
	CHECK0(pthread_condattr_getclock(&ca, &clk));
	CHECK(clk == CLOCK_REALTIME);
	EXPECT("pthread_condattr_setclock CLOCK_PROCESS_CPUTIME_ID",
	       pthread_condattr_setclock(&ca, CLOCK_PROCESS_CPUTIME_ID), EINVAL);
	EXPECT("pthread_condattr_setclock CLOCK_MONOTONIC",
	       pthread_condattr_setclock(&ca, CLOCK_MONOTONIC), 0);
	CHECK0(pthread_condattr_getclock(&ca, &clk));
	CHECK(clk == CLOCK_MONOTONIC);
	CHECK0(pthread_cond_init(&c, &ca));
	CHECK0(pthread_condattr_destroy(&ca));
	CHECK0(pthread_mutex_lock(&m));
	dl = ts_after(CLOCK_MONOTONIC, 30);
	EXPECT("pthread_cond_timedwait on a CLOCK_MONOTONIC condvar",
	       pthread_cond_timedwait(&c, &m, &dl), ETIMEDOUT);
	CHECK_DEADLINE_PASSED(CLOCK_MONOTONIC, &dl);
	expect_held_by_me("monotonic timedwait ETIMEDOUT", &m);
	EXPECT("pthread_cond_destroy (no waiters)", pthread_cond_destroy(&c), 0);
	CHECK0(pthread_mutex_destroy(&m));
}

/* A timed wait that is signalled before its deadline returns 0. */
struct timed_wake {
	pthread_mutex_t m;
	pthread_cond_t c;
	int waiting, flag, rc;
};

static void *timed_waiter(void *p)
{
	struct timed_wake *w = p;
	CHECK0(pthread_mutex_lock(&w->m));
	w->waiting = 1;
	struct timespec dl = ts_after(CLOCK_REALTIME, 30000);
	while (!w->flag) {
		w->rc = pthread_cond_timedwait(&w->c, &w->m, &dl);
		if (w->rc != 0)
			break;
	}
	CHECK0(pthread_mutex_unlock(&w->m));
	return NULL;
}

static void t_timed_signalled(void)
{
	struct timed_wake w = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, -1 };
	pthread_t t;
	CHECK0(pthread_create(&t, NULL, timed_waiter, &w));
	for (;;) {
		CHECK0(pthread_mutex_lock(&w.m));
		if (w.waiting)
			break;
		CHECK0(pthread_mutex_unlock(&w.m));
		sleep_ms(1);
	}
	w.flag = 1;
	CHECK0(pthread_cond_signal(&w.c));
	CHECK0(pthread_mutex_unlock(&w.m));
	CHECK0(pthread_join(t, NULL));
	EXPECT("pthread_cond_timedwait signalled before its deadline", w.rc, 0);
}

/* ------------------------------------------------------------------------
 * Static and zero-filled condvars: a hand-off each way through them. */

static pthread_cond_t s_cond = PTHREAD_COND_INITIALIZER;

struct handoff {
	pthread_mutex_t m;
	pthread_cond_t *c;
	int stage;
};

static void *handoff_peer(void *p)
{
	struct handoff *h = p;
	CHECK0(pthread_mutex_lock(&h->m));
	while (h->stage != 1)
		CHECK0(pthread_cond_wait(h->c, &h->m));
	h->stage = 2;
	CHECK0(pthread_cond_broadcast(h->c));
	CHECK0(pthread_mutex_unlock(&h->m));
	return NULL;
}

static void handoff_through(const char *name, pthread_cond_t *c)
{
	struct handoff h = { PTHREAD_MUTEX_INITIALIZER, c, 0 };
	pthread_t t;
	char what[128];
	CHECK0(pthread_create(&t, NULL, handoff_peer, &h));
	CHECK0(pthread_mutex_lock(&h.m));
	h.stage = 1;
	CHECK0(pthread_cond_signal(c));
	while (h.stage != 2)
		CHECK0(pthread_cond_wait(c, &h.m));
	CHECK0(pthread_mutex_unlock(&h.m));
	CHECK0(pthread_join(t, NULL));
	snprintf(what, sizeof what, "%s: hand-off both ways, then pthread_cond_destroy", name);
	EXPECT(what, pthread_cond_destroy(c), 0);
}

static void t_static_zero(void)
{
	pthread_cond_t z;
	handoff_through("PTHREAD_COND_INITIALIZER", &s_cond);
	memset(&z, 0, sizeof z);
	handoff_through("zero-filled condvar", &z);
}

/* A broadcast wakes the waiters, or finds one whose timeout has just
 * expired; either way the program may then destroy the condvar and reuse
 * its memory while that waiter is still on its way out of timedwait (it
 * waits for the mutex). POSIX: a condvar may be destroyed once the threads
 * blocked on it are unblocked (glibc's destroy waits for such a waiter).
 * Each round a thread waits with a 100 us timeout and main, at that
 * deadline, locks the mutex, broadcasts, destroys the condvar and writes
 * over it, then lets the mutex go. */
#define REUSE_ROUNDS 2000
static union { pthread_cond_t c; char bytes[sizeof(pthread_cond_t)]; } reuse_slot;
static pthread_mutex_t reuse_m = PTHREAD_MUTEX_INITIALIZER;
static _Atomic int reuse_go, reuse_waiting, reuse_done;
static struct timespec reuse_deadline;

static void *reuse_waiter(void *arg)
{
	for (int i = 1; i <= REUSE_ROUNDS; i++) {
		while (reuse_go != i)
			sched_yield();
		pthread_mutex_lock(&reuse_m);
		reuse_waiting = i;
		int rc = pthread_cond_timedwait(&reuse_slot.c, &reuse_m, &reuse_deadline);
		if (rc != 0 && rc != ETIMEDOUT)
			FAIL("reuse: timedwait: %s", ename(rc));
		pthread_mutex_unlock(&reuse_m);
		reuse_done = i;
	}
	return arg;
}

static void t_destroy_after_broadcast(void)
{
	pthread_t t;
	pthread_create(&t, NULL, reuse_waiter, NULL);
	for (int i = 1; i <= REUSE_ROUNDS; i++) {
		pthread_cond_init(&reuse_slot.c, NULL);
		clock_gettime(CLOCK_REALTIME, &reuse_deadline);
		reuse_deadline.tv_nsec += 100000;
		if (reuse_deadline.tv_nsec >= 1000000000L) {
			reuse_deadline.tv_sec++;
			reuse_deadline.tv_nsec -= 1000000000L;
		}
		reuse_go = i;
		SPIN_UNTIL(reuse_waiting == i);
		/* The waiter is in timedwait once main holds the mutex. */
		pthread_mutex_lock(&reuse_m);
		struct timespec now;
		do
			clock_gettime(CLOCK_REALTIME, &now);
		while (now.tv_sec < reuse_deadline.tv_sec ||
		       (now.tv_sec == reuse_deadline.tv_sec && now.tv_nsec < reuse_deadline.tv_nsec));
		pthread_cond_broadcast(&reuse_slot.c);
		int rc = pthread_cond_destroy(&reuse_slot.c);
		if (rc != 0)
			FAIL("reuse: cond_destroy after broadcast: %s", ename(rc));
		memset(reuse_slot.bytes, 0xff, sizeof reuse_slot.bytes);
		pthread_mutex_unlock(&reuse_m);
		while (reuse_done != i)
			sched_yield();
	}
	pthread_join(t, NULL);
	printf("destroy and reuse right after a broadcast that met a timed-out waiter: %d rounds\n",
	       REUSE_ROUNDS);
}

int main(void)
{
	legacy_start();
	t_bounded_buffer();
	t_signal();
	t_broadcast();
	t_timeouts();
	t_timed_signalled();
	t_static_zero();
	t_destroy_after_broadcast();
	printf("cond: all checks passed\n");
	return 0;
}
