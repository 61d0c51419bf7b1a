/* pthread mutexes of every kind: exclusion under contention, trylock, the
 * error checks of errorcheck and recursive mutexes, timed and clock locks,
 * static initializers, a zero-filled mutex, destroy, robust mutexes whose
 * owner died, priority protocols. See legacy.h for the conventions. */
#include "legacy.h"

#define NWORKERS 8
#define NINCR 10000

/* ------------------------------------------------------------------------
 * Helpers: run one mutex call in another thread. */

struct op {
	pthread_mutex_t *m;
	int what;
	struct timespec ts;
	clockid_t clock;
	int rc;
};

enum { OP_TRYLOCK, OP_UNLOCK, OP_TIMEDLOCK, OP_CLOCKLOCK, OP_LOCK_AND_EXIT };

static void *op_thread(void *p)
{
	struct op *o = p;
	switch (o->what) {
	case OP_TRYLOCK:
		o->rc = pthread_mutex_trylock(o->m);
		if (o->rc == 0)
			CHECK0(pthread_mutex_unlock(o->m));
		break;
	case OP_UNLOCK:
		o->rc = pthread_mutex_unlock(o->m);
		break;
	case OP_TIMEDLOCK:
		o->rc = pthread_mutex_timedlock(o->m, &o->ts);
		if (o->rc == 0)
			CHECK0(pthread_mutex_unlock(o->m));
		break;
	case OP_CLOCKLOCK:
		o->rc = pthread_mutex_clocklock(o->m, o->clock, &o->ts);
		if (o->rc == 0)
			CHECK0(pthread_mutex_unlock(o->m));
		break;
	case OP_LOCK_AND_EXIT:
		o->rc = pthread_mutex_lock(o->m);
		break;	/* ends holding it */
	}
	return NULL;
}

static int in_other_thread(pthread_mutex_t *m, int what)
{
	struct op o = { .m = m, .what = what };
	run_in_thread(op_thread, &o);
	return o.rc;
}

static int timed_in_other_thread(pthread_mutex_t *m, int what, clockid_t c, struct timespec ts)
{
	struct op o = { .m = m, .what = what, .clock = c, .ts = ts };
	run_in_thread(op_thread, &o);
	return o.rc;
}

/* ------------------------------------------------------------------------
 * Contention: NWORKERS threads x NINCR increments of a plain counter. */

struct contend {
	pthread_mutex_t *m;
	int recursive;
	long counter;
	struct gate start;
};

static void *contend_thread(void *p)
{
	struct contend *c = p;
	gate_wait(&c->start);
	for (int i = 0; i < NINCR; i++) {
		CHECK0(pthread_mutex_lock(c->m));
		if (c->recursive)
			CHECK0(pthread_mutex_lock(c->m));
		long v = c->counter;
		if ((i & 255) == 0)
			sched_yield();	/* hold it across a yield now and then */
		c->counter = v + 1;
		if (c->recursive)
			CHECK0(pthread_mutex_unlock(c->m));
		CHECK0(pthread_mutex_unlock(c->m));
	}
	return NULL;
}

static void contend(const char *name, pthread_mutex_t *m, int recursive)
{
	struct contend c = { .m = m, .recursive = recursive };
	pthread_t t[NWORKERS];
	gate_init(&c.start);
	for (int i = 0; i < NWORKERS; i++)
		CHECK0(pthread_create(&t[i], NULL, contend_thread, &c));
	gate_await_waiters(&c.start, NWORKERS);
	gate_open(&c.start);
	for (int i = 0; i < NWORKERS; i++)
		CHECK0(pthread_join(t[i], NULL));
	if (c.counter != (long)NWORKERS * NINCR)
		FAIL("%s: counter %ld, want %ld", name, c.counter, (long)NWORKERS * NINCR);
	printf("%s: %d threads x %d increments%s = %ld\n", name, NWORKERS, NINCR,
	       recursive ? " (locked twice each)" : "", c.counter);
}

static void init_typed(pthread_mutex_t *m, int type)
{
	pthread_mutexattr_t a;
	int got;
	CHECK0(pthread_mutexattr_init(&a));
	CHECK0(pthread_mutexattr_settype(&a, type));
	CHECK0(pthread_mutexattr_gettype(&a, &got));
	CHECK(got == type);
	CHECK0(pthread_mutex_init(m, &a));
	CHECK0(pthread_mutexattr_destroy(&a));
}

/* ------------------------------------------------------------------------ */

static void t_kinds(void)
{
	pthread_mutex_t m;
	char what[128];
	static const struct { const char *name; int type; } kinds[] = {
		{ "normal", PTHREAD_MUTEX_NORMAL },
		{ "default", PTHREAD_MUTEX_DEFAULT },
		{ "recursive", PTHREAD_MUTEX_RECURSIVE },
		{ "errorcheck", PTHREAD_MUTEX_ERRORCHECK },
		{ "adaptive", PTHREAD_MUTEX_ADAPTIVE_NP },
	};
	pthread_mutexattr_t a;

	CHECK0(pthread_mutexattr_init(&a));
	EXPECT("pthread_mutexattr_settype(42)", pthread_mutexattr_settype(&a, 42), EINVAL);
	CHECK0(pthread_mutexattr_destroy(&a));

	for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
		const char *name = kinds[k].name;
		int type = kinds[k].type;
		init_typed(&m, type);
		snprintf(what, sizeof what, "%s mutex", name);
		contend(what, &m, type == PTHREAD_MUTEX_RECURSIVE);

		CHECK0(pthread_mutex_lock(&m));
		snprintf(what, sizeof what, "%s: trylock from another thread while held", name);
		EXPECT(what, in_other_thread(&m, OP_TRYLOCK), EBUSY);
		CHECK0(pthread_mutex_unlock(&m));
		snprintf(what, sizeof what, "%s: trylock from another thread when free", name);
		EXPECT(what, in_other_thread(&m, OP_TRYLOCK), 0);
		CHECK0(pthread_mutex_destroy(&m));
	}
}

static void t_recursive(void)
{
	pthread_mutex_t m;
	init_typed(&m, PTHREAD_MUTEX_RECURSIVE);
	CHECK0(pthread_mutex_lock(&m));
	EXPECT("recursive: trylock by the owner", pthread_mutex_trylock(&m), 0);
	EXPECT("recursive: lock by the owner (third level)", pthread_mutex_lock(&m), 0);
	EXPECT("recursive: unlock by another thread", in_other_thread(&m, OP_UNLOCK), EPERM);
	CHECK0(pthread_mutex_unlock(&m));
	CHECK0(pthread_mutex_unlock(&m));
	EXPECT("recursive: trylock from another thread, still locked once",
	       in_other_thread(&m, OP_TRYLOCK), EBUSY);
	CHECK0(pthread_mutex_unlock(&m));
	EXPECT("recursive: trylock from another thread after the last unlock",
	       in_other_thread(&m, OP_TRYLOCK), 0);
	EXPECT("recursive: unlock when unlocked", pthread_mutex_unlock(&m), EPERM);
	CHECK0(pthread_mutex_destroy(&m));
}

static void t_errorcheck(void)
{
	pthread_mutex_t m;
	init_typed(&m, PTHREAD_MUTEX_ERRORCHECK);
	CHECK0(pthread_mutex_lock(&m));
	EXPECT("errorcheck: relock by the owner", pthread_mutex_lock(&m), EDEADLK);
	EXPECT("errorcheck: trylock by the owner", pthread_mutex_trylock(&m), EBUSY);
	struct timespec dl = ts_after(CLOCK_REALTIME, 30);
	EXPECT("errorcheck: timedlock by the owner", pthread_mutex_timedlock(&m, &dl), EDEADLK);
	EXPECT("errorcheck: unlock by another thread", in_other_thread(&m, OP_UNLOCK), EPERM);
	CHECK0(pthread_mutex_unlock(&m));
	EXPECT("errorcheck: unlock when unlocked", pthread_mutex_unlock(&m), EPERM);
	CHECK0(pthread_mutex_destroy(&m));
}

static void t_timed(void)
{
	pthread_mutex_t m;
	struct timespec dl;
	char what[128];
	static const struct { const char *name; int type; } kinds[] = {
		{ "normal", PTHREAD_MUTEX_NORMAL },
		{ "recursive", PTHREAD_MUTEX_RECURSIVE },
		{ "errorcheck", PTHREAD_MUTEX_ERRORCHECK },
		{ "adaptive", PTHREAD_MUTEX_ADAPTIVE_NP },
	};

	for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
		const char *name = kinds[k].name;
		init_typed(&m, kinds[k].type);
		CHECK0(pthread_mutex_lock(&m));

		dl = ts_after(CLOCK_REALTIME, 30);
		snprintf(what, sizeof what, "%s: timedlock (CLOCK_REALTIME) while held elsewhere", name);
		EXPECT(what, timed_in_other_thread(&m, OP_TIMEDLOCK, 0, dl), ETIMEDOUT);
		CHECK_DEADLINE_PASSED(CLOCK_REALTIME, &dl);

		snprintf(what, sizeof what, "%s: timedlock with tv_nsec = 1000000000 while held", name);
		EXPECT(what, timed_in_other_thread(&m, OP_TIMEDLOCK, 0, ts_bad_nsec(CLOCK_REALTIME)),
		       EINVAL);

		dl = ts_after(CLOCK_MONOTONIC, 30);
		snprintf(what, sizeof what, "%s: clocklock CLOCK_MONOTONIC while held elsewhere", name);
		EXPECT(what, timed_in_other_thread(&m, OP_CLOCKLOCK, CLOCK_MONOTONIC, dl), ETIMEDOUT);
		CHECK_DEADLINE_PASSED(CLOCK_MONOTONIC, &dl);

		dl = ts_after(CLOCK_REALTIME, 30);
		snprintf(what, sizeof what, "%s: clocklock CLOCK_REALTIME while held elsewhere", name);
		EXPECT(what, timed_in_other_thread(&m, OP_CLOCKLOCK, CLOCK_REALTIME, dl), ETIMEDOUT);
		CHECK_DEADLINE_PASSED(CLOCK_REALTIME, &dl);

		dl = ts_after(CLOCK_PROCESS_CPUTIME_ID, 30);
		snprintf(what, sizeof what, "%s: clocklock CLOCK_PROCESS_CPUTIME_ID", name);
		EXPECT(what, timed_in_other_thread(&m, OP_CLOCKLOCK, CLOCK_PROCESS_CPUTIME_ID, dl),
		       EINVAL);

		CHECK0(pthread_mutex_unlock(&m));
		dl = ts_after(CLOCK_REALTIME, 30000);
		snprintf(what, sizeof what, "%s: timedlock when free", name);
		EXPECT(what, timed_in_other_thread(&m, OP_TIMEDLOCK, 0, dl), 0);
		CHECK0(pthread_mutex_destroy(&m));
	}

	/* glibc's normal mutex: a timed relock by the owner waits out the timeout. */
	init_typed(&m, PTHREAD_MUTEX_NORMAL);
	CHECK0(pthread_mutex_lock(&m));
	dl = ts_after(CLOCK_MONOTONIC, 30);
	EXPECT("normal: clocklock CLOCK_MONOTONIC by the owner", pthread_mutex_clocklock(&m,
	       CLOCK_MONOTONIC, &dl), ETIMEDOUT);
	CHECK_DEADLINE_PASSED(CLOCK_MONOTONIC, &dl);
	CHECK0(pthread_mutex_unlock(&m));
	CHECK0(pthread_mutex_destroy(&m));
}

/* ------------------------------------------------------------------------ */

static pthread_mutex_t s_normal = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t s_recursive = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
static pthread_mutex_t s_errorcheck = PTHREAD_ERRORCHECK_MUTEX_INITIALIZER_NP;
static pthread_mutex_t s_adaptive = PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP;

static void t_static(void)
{
	contend("PTHREAD_MUTEX_INITIALIZER", &s_normal, 0);
	CHECK0(pthread_mutex_lock(&s_normal));
	EXPECT("PTHREAD_MUTEX_INITIALIZER: trylock by the owner", pthread_mutex_trylock(&s_normal),
	       EBUSY);
	EXPECT("PTHREAD_MUTEX_INITIALIZER: trylock from another thread",
	       in_other_thread(&s_normal, OP_TRYLOCK), EBUSY);
	CHECK0(pthread_mutex_unlock(&s_normal));

	contend("PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP", &s_recursive, 1);
	CHECK0(pthread_mutex_lock(&s_recursive));
	EXPECT("PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP: relock by the owner",
	       pthread_mutex_lock(&s_recursive), 0);
	CHECK0(pthread_mutex_unlock(&s_recursive));
	EXPECT("PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP: trylock elsewhere, locked once",
	       in_other_thread(&s_recursive, OP_TRYLOCK), EBUSY);
	CHECK0(pthread_mutex_unlock(&s_recursive));
	EXPECT("PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP: unlock when unlocked",
	       pthread_mutex_unlock(&s_recursive), EPERM);

	contend("PTHREAD_ERRORCHECK_MUTEX_INITIALIZER_NP", &s_errorcheck, 0);
	CHECK0(pthread_mutex_lock(&s_errorcheck));
	EXPECT("PTHREAD_ERRORCHECK_MUTEX_INITIALIZER_NP: relock by the owner",
	       pthread_mutex_lock(&s_errorcheck), EDEADLK);
	EXPECT("PTHREAD_ERRORCHECK_MUTEX_INITIALIZER_NP: unlock by another thread",
	       in_other_thread(&s_errorcheck, OP_UNLOCK), EPERM);
	CHECK0(pthread_mutex_unlock(&s_errorcheck));
	EXPECT("PTHREAD_ERRORCHECK_MUTEX_INITIALIZER_NP: unlock when unlocked",
	       pthread_mutex_unlock(&s_errorcheck), EPERM);

	contend("PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP", &s_adaptive, 0);
	CHECK0(pthread_mutex_lock(&s_adaptive));
	EXPECT("PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP: trylock from another thread",
	       in_other_thread(&s_adaptive, OP_TRYLOCK), EBUSY);
	CHECK0(pthread_mutex_unlock(&s_adaptive));
}

static void t_zero_filled_and_destroy(void)
{
	pthread_mutex_t m;
	memset(&m, 0, sizeof m);
	contend("zero-filled mutex", &m, 0);
	CHECK0(pthread_mutex_lock(&m));
	EXPECT("zero-filled: trylock from another thread while held", in_other_thread(&m, OP_TRYLOCK),
	       EBUSY);
	EXPECT("pthread_mutex_destroy of a locked mutex", pthread_mutex_destroy(&m), EBUSY);
	CHECK0(pthread_mutex_unlock(&m));
	EXPECT("pthread_mutex_destroy of an unlocked mutex", pthread_mutex_destroy(&m), 0);
}

/* ------------------------------------------------------------------------ */

static void init_robust(pthread_mutex_t *m)
{
	pthread_mutexattr_t a;
	int r;
	CHECK0(pthread_mutexattr_init(&a));
	EXPECT("pthread_mutexattr_setrobust PTHREAD_MUTEX_ROBUST",
	       pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST), 0);
	CHECK0(pthread_mutexattr_getrobust(&a, &r));
	CHECK(r == PTHREAD_MUTEX_ROBUST);
	CHECK0(pthread_mutex_init(m, &a));
	CHECK0(pthread_mutexattr_destroy(&a));
}

static void t_robust(void)
{
	pthread_mutex_t m;

	init_robust(&m);
	contend("robust mutex", &m, 0);
	EXPECT("robust: a thread locks it and exits holding it", in_other_thread(&m, OP_LOCK_AND_EXIT),
	       0);
	EXPECT("robust: next lock", pthread_mutex_lock(&m), EOWNERDEAD);
	EXPECT("robust: pthread_mutex_consistent", pthread_mutex_consistent(&m), 0);
	EXPECT("robust: unlock after consistent", pthread_mutex_unlock(&m), 0);
	EXPECT("robust: lock again", pthread_mutex_lock(&m), 0);
	EXPECT("robust: trylock from another thread while held", in_other_thread(&m, OP_TRYLOCK),
	       EBUSY);
	CHECK0(pthread_mutex_unlock(&m));
	CHECK0(pthread_mutex_destroy(&m));

	init_robust(&m);
	EXPECT("robust: a thread locks it and exits holding it", in_other_thread(&m, OP_LOCK_AND_EXIT),
	       0);
	EXPECT("robust: trylock after the owner died", pthread_mutex_trylock(&m), EOWNERDEAD);
	EXPECT("robust: unlock without pthread_mutex_consistent", pthread_mutex_unlock(&m), 0);
	EXPECT("robust: lock of the unrecoverable mutex", pthread_mutex_lock(&m), ENOTRECOVERABLE);
	EXPECT("robust: trylock of the unrecoverable mutex", in_other_thread(&m, OP_TRYLOCK),
	       ENOTRECOVERABLE);
	CHECK0(pthread_mutex_destroy(&m));
}

/* ------------------------------------------------------------------------ */

static void t_protocols(void)
{
	/* Single-threaded only: under contention PI mutexes use the kernel's
	 * PI futexes and PP ones change real scheduling priorities. */
	pthread_mutexattr_t a;
	pthread_mutex_t m;
	int p;

	CHECK0(pthread_mutexattr_init(&a));
	CHECK0(pthread_mutexattr_getprotocol(&a, &p));
	CHECK(p == PTHREAD_PRIO_NONE);
	EXPECT("pthread_mutexattr_setprotocol PTHREAD_PRIO_INHERIT",
	       pthread_mutexattr_setprotocol(&a, PTHREAD_PRIO_INHERIT), 0);
	CHECK0(pthread_mutexattr_getprotocol(&a, &p));
	CHECK(p == PTHREAD_PRIO_INHERIT);
	CHECK0(pthread_mutex_init(&m, &a));
	EXPECT("PTHREAD_PRIO_INHERIT: lock", pthread_mutex_lock(&m), 0);
	EXPECT("PTHREAD_PRIO_INHERIT: unlock", pthread_mutex_unlock(&m), 0);
	EXPECT("PTHREAD_PRIO_INHERIT: trylock", pthread_mutex_trylock(&m), 0);
	EXPECT("PTHREAD_PRIO_INHERIT: unlock", pthread_mutex_unlock(&m), 0);
	CHECK0(pthread_mutex_destroy(&m));

	EXPECT("pthread_mutexattr_setprotocol PTHREAD_PRIO_PROTECT",
	       pthread_mutexattr_setprotocol(&a, PTHREAD_PRIO_PROTECT), 0);
	CHECK0(pthread_mutexattr_getprotocol(&a, &p));
	CHECK(p == PTHREAD_PRIO_PROTECT);
	CHECK0(pthread_mutex_init(&m, &a));
	/* glibc raises the locking thread to the ceiling (at least the lowest
	 * SCHED_FIFO priority, 1) with sched_setscheduler under the thread's own
	 * policy: for a SCHED_OTHER thread that fails and the lock returns
	 * EINVAL. Either outcome is accepted; a lock that succeeds must unlock. */
	int rc = pthread_mutex_lock(&m);
	if (rc != 0 && rc != EINVAL)
		FAIL("PTHREAD_PRIO_PROTECT: lock returned %s", ename(rc));
	if (rc == 0)
		EXPECT("PTHREAD_PRIO_PROTECT: unlock", pthread_mutex_unlock(&m), 0);
	printf("PTHREAD_PRIO_PROTECT: lock gave 0 (then unlocked) or EINVAL (SCHED_OTHER)\n");
	CHECK0(pthread_mutex_destroy(&m));

	EXPECT("pthread_mutexattr_setprotocol(42)", pthread_mutexattr_setprotocol(&a, 42), EINVAL);
	CHECK0(pthread_mutexattr_destroy(&a));
}

int main(void)
{
	legacy_start();
	t_kinds();
	t_recursive();
	t_errorcheck();
	t_timed();
	t_static();
	t_zero_filled_and_destroy();
	t_robust();
	t_protocols();
	printf("mutex: all checks passed\n");
	return 0;
}
