/* pthread read-write locks: init and destroy, static and zero-filled
 * locks, shared read and exclusive write, the try, timed and clock
 * variants and their errors, glibc's EDEADLK for the writer locking again,
 * many readers at once, mixed readers and writers under contention, the
 * writer-preferring kind (a waiting writer holds off new readers), and
 * writers timing out while readers come and go.
 * See legacy.h for the conventions. */
#include "legacy.h"
#include <sched.h>

/* ------------------------------------------------------------------------
 * Helpers: run one rwlock call in another thread. A call that gets the
 * lock releases it before the thread ends. */

enum { RD, WR, TRYRD, TRYWR, TIMEDRD, TIMEDWR, CLOCKRD, CLOCKWR };

#define BAD_NSEC (-1)	/* as the ms of a timed call: a deadline with tv_nsec = 1e9 */

struct rwop {
	pthread_rwlock_t *l;
	int what;
	clockid_t clock;	/* CLOCKRD, CLOCKWR; TIMEDRD, TIMEDWR use CLOCK_REALTIME */
	long ms;		/* timed calls: deadline from now, or BAD_NSEC */
	int rc;
};

static void *rwop_thread(void *p)
{
	struct rwop *o = p;
	clockid_t c = (o->what == CLOCKRD || o->what == CLOCKWR) ? o->clock : CLOCK_REALTIME;
	struct timespec dl = o->ms == BAD_NSEC ? ts_bad_nsec(c) : ts_after(c, o->ms);

	switch (o->what) {
	case RD: o->rc = pthread_rwlock_rdlock(o->l); break;
	case WR: o->rc = pthread_rwlock_wrlock(o->l); break;
	case TRYRD: o->rc = pthread_rwlock_tryrdlock(o->l); break;
	case TRYWR: o->rc = pthread_rwlock_trywrlock(o->l); break;
	case TIMEDRD: o->rc = pthread_rwlock_timedrdlock(o->l, &dl); break;
	case TIMEDWR: o->rc = pthread_rwlock_timedwrlock(o->l, &dl); break;
	case CLOCKRD: o->rc = pthread_rwlock_clockrdlock(o->l, o->clock, &dl); break;
	case CLOCKWR: o->rc = pthread_rwlock_clockwrlock(o->l, o->clock, &dl); break;
	}
	if (o->rc == ETIMEDOUT)
		CHECK_DEADLINE_PASSED(c, &dl);
	if (o->rc == 0)
		CHECK0(pthread_rwlock_unlock(o->l));
	return NULL;
}

static int other(pthread_rwlock_t *l, int what)
{
	struct rwop o = { .l = l, .what = what, .clock = CLOCK_REALTIME, .ms = 0, .rc = -1 };
	run_in_thread(rwop_thread, &o);
	return o.rc;
}

static int other_timed(pthread_rwlock_t *l, int what, clockid_t clock, long ms)
{
	struct rwop o = { .l = l, .what = what, .clock = clock, .ms = ms, .rc = -1 };
	run_in_thread(rwop_thread, &o);
	return o.rc;
}

/* ------------------------------------------------------------------------
 * Attributes, init, lock and unlock in one thread. */

static void t_basic(void)
{
	pthread_rwlockattr_t a;
	pthread_rwlock_t l;
	int v;

	CHECK0(pthread_rwlockattr_init(&a));
	CHECK0(pthread_rwlockattr_getkind_np(&a, &v));
	CHECK(v == PTHREAD_RWLOCK_PREFER_READER_NP);
	CHECK0(pthread_rwlockattr_getpshared(&a, &v));
	CHECK(v == PTHREAD_PROCESS_PRIVATE);
	EXPECT("pthread_rwlockattr_setkind_np(42)", pthread_rwlockattr_setkind_np(&a, 42), EINVAL);
	printf("pthread_rwlockattr: default kind PREFER_READER, process-private\n");

	EXPECT("pthread_rwlock_init (default attributes)", pthread_rwlock_init(&l, &a), 0);
	CHECK0(pthread_rwlockattr_destroy(&a));
	EXPECT("pthread_rwlock_rdlock", pthread_rwlock_rdlock(&l), 0);
	EXPECT("pthread_rwlock_rdlock again by the same reader", pthread_rwlock_rdlock(&l), 0);
	EXPECT("pthread_rwlock_tryrdlock by the same reader", pthread_rwlock_tryrdlock(&l), 0);
	EXPECT("pthread_rwlock_trywrlock by a reader", pthread_rwlock_trywrlock(&l), EBUSY);
	for (int i = 0; i < 3; i++)
		CHECK0(pthread_rwlock_unlock(&l));
	printf("pthread_rwlock_unlock: three read locks released\n");
	EXPECT("pthread_rwlock_wrlock", pthread_rwlock_wrlock(&l), 0);
	EXPECT("pthread_rwlock_tryrdlock by the writer", pthread_rwlock_tryrdlock(&l), EBUSY);
	EXPECT("pthread_rwlock_trywrlock by the writer", pthread_rwlock_trywrlock(&l), EBUSY);
	EXPECT("pthread_rwlock_unlock (writer)", pthread_rwlock_unlock(&l), 0);
	EXPECT("pthread_rwlock_trywrlock (free)", pthread_rwlock_trywrlock(&l), 0);
	EXPECT("pthread_rwlock_unlock (writer)", pthread_rwlock_unlock(&l), 0);
	EXPECT("pthread_rwlock_tryrdlock (free)", pthread_rwlock_tryrdlock(&l), 0);
	EXPECT("pthread_rwlock_unlock (reader)", pthread_rwlock_unlock(&l), 0);
	EXPECT("pthread_rwlock_destroy", pthread_rwlock_destroy(&l), 0);

	EXPECT("pthread_rwlock_init (NULL attributes)", pthread_rwlock_init(&l, NULL), 0);
	CHECK0(pthread_rwlock_wrlock(&l));
	CHECK0(pthread_rwlock_unlock(&l));
	EXPECT("pthread_rwlock_destroy", pthread_rwlock_destroy(&l), 0);
}

/* ------------------------------------------------------------------------
 * Two threads on one lock: readers share, a writer excludes. Used on a
 * static, a zero-filled and an initialised lock. */

static void exercise(const char *name, pthread_rwlock_t *l)
{
	char what[160];
#define E(desc, call, want) \
	do { snprintf(what, sizeof what, "%s: %s", name, desc); EXPECT(what, call, want); } while (0)

	E("rdlock", pthread_rwlock_rdlock(l), 0);
	E("tryrdlock from another thread while read-locked", other(l, TRYRD), 0);
	E("rdlock from another thread while read-locked", other(l, RD), 0);
	E("trywrlock from another thread while read-locked", other(l, TRYWR), EBUSY);
	E("unlock", pthread_rwlock_unlock(l), 0);
	E("wrlock", pthread_rwlock_wrlock(l), 0);
	E("tryrdlock from another thread while write-locked", other(l, TRYRD), EBUSY);
	E("trywrlock from another thread while write-locked", other(l, TRYWR), EBUSY);
	E("unlock", pthread_rwlock_unlock(l), 0);
	E("wrlock from another thread", other(l, WR), 0);
	E("trywrlock after the other thread released it", pthread_rwlock_trywrlock(l), 0);
	E("unlock", pthread_rwlock_unlock(l), 0);
	E("destroy", pthread_rwlock_destroy(l), 0);
#undef E
}

static pthread_rwlock_t s_rw = PTHREAD_RWLOCK_INITIALIZER;

static void t_static_zero(void)
{
	pthread_rwlock_t z, d;
	exercise("PTHREAD_RWLOCK_INITIALIZER", &s_rw);
	memset(&z, 0, sizeof z);
	exercise("zero-filled rwlock", &z);
	CHECK0(pthread_rwlock_init(&d, NULL));
	exercise("pthread_rwlock_init", &d);
}

/* ------------------------------------------------------------------------
 * Timed and clock locks. */

static void t_timed(void)
{
	pthread_rwlock_t l;
	struct timespec dl;

	CHECK0(pthread_rwlock_init(&l, NULL));

	/* Free: they take it at once. */
	dl = ts_after(CLOCK_REALTIME, 30000);
	EXPECT("pthread_rwlock_timedrdlock (free)", pthread_rwlock_timedrdlock(&l, &dl), 0);
	CHECK0(pthread_rwlock_unlock(&l));
	EXPECT("pthread_rwlock_timedwrlock (free)", pthread_rwlock_timedwrlock(&l, &dl), 0);
	CHECK0(pthread_rwlock_unlock(&l));
	dl = ts_after(CLOCK_MONOTONIC, 30000);
	EXPECT("pthread_rwlock_clockrdlock CLOCK_MONOTONIC (free)",
	       pthread_rwlock_clockrdlock(&l, CLOCK_MONOTONIC, &dl), 0);
	CHECK0(pthread_rwlock_unlock(&l));
	EXPECT("pthread_rwlock_clockwrlock CLOCK_MONOTONIC (free)",
	       pthread_rwlock_clockwrlock(&l, CLOCK_MONOTONIC, &dl), 0);
	CHECK0(pthread_rwlock_unlock(&l));

	/* A writer holds it: every timed call from another thread times out,
	 * and one that would block with a bad deadline is EINVAL. */
	CHECK0(pthread_rwlock_wrlock(&l));
	EXPECT("timedrdlock while a writer holds it", other_timed(&l, TIMEDRD, 0, 30), ETIMEDOUT);
	EXPECT("timedwrlock while a writer holds it", other_timed(&l, TIMEDWR, 0, 30), ETIMEDOUT);
	EXPECT("clockrdlock CLOCK_MONOTONIC while a writer holds it",
	       other_timed(&l, CLOCKRD, CLOCK_MONOTONIC, 30), ETIMEDOUT);
	EXPECT("clockwrlock CLOCK_MONOTONIC while a writer holds it",
	       other_timed(&l, CLOCKWR, CLOCK_MONOTONIC, 30), ETIMEDOUT);
	EXPECT("clockrdlock CLOCK_REALTIME while a writer holds it",
	       other_timed(&l, CLOCKRD, CLOCK_REALTIME, 30), ETIMEDOUT);
	EXPECT("clockwrlock CLOCK_REALTIME while a writer holds it",
	       other_timed(&l, CLOCKWR, CLOCK_REALTIME, 30), ETIMEDOUT);
	EXPECT("timedrdlock with tv_nsec = 1000000000 (would block)",
	       other_timed(&l, TIMEDRD, 0, BAD_NSEC), EINVAL);
	EXPECT("timedwrlock with tv_nsec = 1000000000 (would block)",
	       other_timed(&l, TIMEDWR, 0, BAD_NSEC), EINVAL);
	EXPECT("clockrdlock CLOCK_MONOTONIC with tv_nsec = 1000000000 (would block)",
	       other_timed(&l, CLOCKRD, CLOCK_MONOTONIC, BAD_NSEC), EINVAL);
	EXPECT("clockwrlock CLOCK_MONOTONIC with tv_nsec = 1000000000 (would block)",
	       other_timed(&l, CLOCKWR, CLOCK_MONOTONIC, BAD_NSEC), EINVAL);
	EXPECT("clockrdlock CLOCK_PROCESS_CPUTIME_ID (would block)",
	       other_timed(&l, CLOCKRD, CLOCK_PROCESS_CPUTIME_ID, 30), EINVAL);
	EXPECT("clockwrlock CLOCK_PROCESS_CPUTIME_ID (would block)",
	       other_timed(&l, CLOCKWR, CLOCK_PROCESS_CPUTIME_ID, 30), EINVAL);
	CHECK0(pthread_rwlock_unlock(&l));

	/* A reader holds it: readers still get in, writers time out. */
	CHECK0(pthread_rwlock_rdlock(&l));
	EXPECT("timedrdlock while a reader holds it", other_timed(&l, TIMEDRD, 0, 30000), 0);
	EXPECT("clockrdlock CLOCK_MONOTONIC while a reader holds it",
	       other_timed(&l, CLOCKRD, CLOCK_MONOTONIC, 30000), 0);
	EXPECT("timedwrlock while a reader holds it", other_timed(&l, TIMEDWR, 0, 30), ETIMEDOUT);
	EXPECT("clockwrlock CLOCK_MONOTONIC while a reader holds it",
	       other_timed(&l, CLOCKWR, CLOCK_MONOTONIC, 30), ETIMEDOUT);
	EXPECT("timedwrlock with tv_nsec = 1000000000 while a reader holds it",
	       other_timed(&l, TIMEDWR, 0, BAD_NSEC), EINVAL);
	EXPECT("clockwrlock CLOCK_MONOTONIC with tv_nsec = 1000000000 while a reader holds it",
	       other_timed(&l, CLOCKWR, CLOCK_MONOTONIC, BAD_NSEC), EINVAL);
	CHECK0(pthread_rwlock_unlock(&l));
	EXPECT("trywrlock after the timeouts (nothing left held)", pthread_rwlock_trywrlock(&l), 0);
	CHECK0(pthread_rwlock_unlock(&l));
	CHECK0(pthread_rwlock_destroy(&l));
}

/* A timed lock released before its deadline returns 0. */
struct timed_get {
	pthread_rwlock_t *l;
	int write;
	int rc;
};

static void *timed_getter(void *p)
{
	struct timed_get *g = p;
	struct timespec dl = ts_after(CLOCK_MONOTONIC, 30000);
	g->rc = g->write ? pthread_rwlock_clockwrlock(g->l, CLOCK_MONOTONIC, &dl)
			 : pthread_rwlock_clockrdlock(g->l, CLOCK_MONOTONIC, &dl);
	if (g->rc == 0)
		CHECK0(pthread_rwlock_unlock(g->l));
	return NULL;
}

static void t_timed_released(void)
{
	pthread_rwlock_t l = PTHREAD_RWLOCK_INITIALIZER;
	for (int write = 0; write <= 1; write++) {
		struct timed_get g = { &l, write, -1 };
		pthread_t t;
		CHECK0(pthread_rwlock_wrlock(&l));
		CHECK0(pthread_create(&t, NULL, timed_getter, &g));
		sleep_ms(20);	/* likely blocked by now; 0 either way */
		CHECK0(pthread_rwlock_unlock(&l));
		CHECK0(pthread_join(t, NULL));
		EXPECT(write ? "clockwrlock released by the writer before its deadline"
			     : "clockrdlock released by the writer before its deadline", g.rc, 0);
	}
	CHECK0(pthread_rwlock_destroy(&l));
}

/* ------------------------------------------------------------------------
 * The writer locking again: glibc detects the deadlock. */

static void t_deadlock(void)
{
	pthread_rwlock_t l;
	CHECK0(pthread_rwlock_init(&l, NULL));
	CHECK0(pthread_rwlock_wrlock(&l));
	EXPECT("pthread_rwlock_wrlock by the writer", pthread_rwlock_wrlock(&l), EDEADLK);
	EXPECT("pthread_rwlock_rdlock by the writer", pthread_rwlock_rdlock(&l), EDEADLK);
	EXPECT("tryrdlock from another thread (still write-locked)", other(&l, TRYRD), EBUSY);
	EXPECT("pthread_rwlock_unlock (writer, once)", pthread_rwlock_unlock(&l), 0);
	EXPECT("trywrlock from another thread (free again)", other(&l, TRYWR), 0);
	CHECK0(pthread_rwlock_destroy(&l));
}

/* ------------------------------------------------------------------------
 * Many readers inside at once: each waits, holding its read lock, until
 * every reader holds one. */

#define NREADERS 8

static struct {
	pthread_rwlock_t l;
	pthread_mutex_t m;
	pthread_cond_t c;
	int arrived, release;
	int inside, max_inside;
} mr = { PTHREAD_RWLOCK_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER };

static void *many_reader(void *arg)
{
	CHECK0(pthread_rwlock_rdlock(&mr.l));
	int now = __atomic_add_fetch(&mr.inside, 1, __ATOMIC_SEQ_CST);
	int max = __atomic_load_n(&mr.max_inside, __ATOMIC_SEQ_CST);
	while (now > max &&
	       !__atomic_compare_exchange_n(&mr.max_inside, &max, now, 0, __ATOMIC_SEQ_CST,
					    __ATOMIC_SEQ_CST))
		;
	CHECK0(pthread_mutex_lock(&mr.m));
	mr.arrived++;
	CHECK0(pthread_cond_broadcast(&mr.c));
	while (!mr.release)
		CHECK0(pthread_cond_wait(&mr.c, &mr.m));
	CHECK0(pthread_mutex_unlock(&mr.m));
	__atomic_sub_fetch(&mr.inside, 1, __ATOMIC_SEQ_CST);
	CHECK0(pthread_rwlock_unlock(&mr.l));
	return NULL;
}

static void t_many_readers(void)
{
	pthread_t t[NREADERS];
	for (int i = 0; i < NREADERS; i++)
		CHECK0(pthread_create(&t[i], NULL, many_reader, NULL));
	CHECK0(pthread_mutex_lock(&mr.m));
	while (mr.arrived < NREADERS)
		CHECK0(pthread_cond_wait(&mr.c, &mr.m));
	CHECK0(pthread_mutex_unlock(&mr.m));
	EXPECT("trywrlock while all readers hold it", pthread_rwlock_trywrlock(&mr.l), EBUSY);
	EXPECT("tryrdlock while all readers hold it", pthread_rwlock_tryrdlock(&mr.l), 0);
	CHECK0(pthread_rwlock_unlock(&mr.l));
	CHECK0(pthread_mutex_lock(&mr.m));
	mr.release = 1;
	CHECK0(pthread_cond_broadcast(&mr.c));
	CHECK0(pthread_mutex_unlock(&mr.m));
	for (int i = 0; i < NREADERS; i++)
		CHECK0(pthread_join(t[i], NULL));
	if (mr.max_inside <= 1 || mr.inside != 0)
		FAIL("many readers: at most %d inside at once, %d left inside", mr.max_inside,
		     mr.inside);
	printf("pthread_rwlock_rdlock: %d readers held the lock at the same time\n", NREADERS);
	EXPECT("trywrlock after the readers left", pthread_rwlock_trywrlock(&mr.l), 0);
	CHECK0(pthread_rwlock_unlock(&mr.l));
	CHECK0(pthread_rwlock_destroy(&mr.l));
}

/* ------------------------------------------------------------------------
 * Mixed readers and writers: every fourth operation of each thread is a
 * write (an increment); readers and writers never overlap. */

#define NMIXED 8
#define MIXED_OPS 4000

static struct {
	pthread_rwlock_t l;
	long counter;
	int readers, writers;
	struct gate start;
} mx = { .l = PTHREAD_RWLOCK_INITIALIZER };

static void *mixed_thread(void *arg)
{
	long t = (long)(intptr_t)arg, last = 0, reads = 0;
	gate_wait(&mx.start);
	for (long i = 0; i < MIXED_OPS; i++) {
		if ((i + t) % 4 == 0) {
			CHECK0(pthread_rwlock_wrlock(&mx.l));
			if (__atomic_add_fetch(&mx.writers, 1, __ATOMIC_SEQ_CST) != 1 ||
			    __atomic_load_n(&mx.readers, __ATOMIC_SEQ_CST) != 0)
				FAIL("mixed: a writer is not alone");
			long v = mx.counter;
			if ((i & 63) == 0)
				sched_yield();	/* hold it across a yield now and then */
			mx.counter = v + 1;
			__atomic_sub_fetch(&mx.writers, 1, __ATOMIC_SEQ_CST);
			CHECK0(pthread_rwlock_unlock(&mx.l));
		} else {
			CHECK0(pthread_rwlock_rdlock(&mx.l));
			__atomic_add_fetch(&mx.readers, 1, __ATOMIC_SEQ_CST);
			if (__atomic_load_n(&mx.writers, __ATOMIC_SEQ_CST) != 0)
				FAIL("mixed: a reader overlaps a writer");
			long v = mx.counter;
			if (v < last)
				FAIL("mixed: the counter went back from %ld to %ld", last, v);
			last = v;
			if ((i & 63) == 1)
				sched_yield();
			__atomic_sub_fetch(&mx.readers, 1, __ATOMIC_SEQ_CST);
			CHECK0(pthread_rwlock_unlock(&mx.l));
			reads++;
		}
	}
	return (void *)(intptr_t)reads;
}

static void t_mixed(void)
{
	pthread_t t[NMIXED];
	long reads = 0;
	gate_init(&mx.start);
	for (int i = 0; i < NMIXED; i++)
		CHECK0(pthread_create(&t[i], NULL, mixed_thread, (void *)(intptr_t)i));
	gate_await_waiters(&mx.start, NMIXED);
	gate_open(&mx.start);
	for (int i = 0; i < NMIXED; i++) {
		void *r;
		CHECK0(pthread_join(t[i], &r));
		reads += (long)(intptr_t)r;
	}
	long want = (long)NMIXED * MIXED_OPS / 4;
	if (mx.counter != want || reads != (long)NMIXED * MIXED_OPS - want)
		FAIL("mixed: counter %ld after %ld reads, want %ld", mx.counter, reads, want);
	printf("mixed: %d threads, %ld reads and %ld write increments, total %ld\n", NMIXED, reads,
	       want, mx.counter);
	CHECK0(pthread_rwlock_destroy(&mx.l));
}

/* ------------------------------------------------------------------------
 * Writer preference: while a writer waits for the readers to leave, new
 * readers are refused. The main thread holds a read lock and polls
 * tryrdlock, which refuses (EBUSY) only once the writer waits; from then
 * on everything is determined. */

struct pref_writer {
	pthread_rwlock_t *l;
	struct gate hold;	/* the writer holds the lock until this opens */
	int rc;
};

static void *pref_writer(void *p)
{
	struct pref_writer *w = p;
	w->rc = pthread_rwlock_wrlock(w->l);
	gate_wait(&w->hold);
	if (w->rc == 0)
		CHECK0(pthread_rwlock_unlock(w->l));
	return NULL;
}

static void t_writer_preference(void)
{
	pthread_rwlockattr_t a;
	pthread_rwlock_t l;
	struct pref_writer w = { .l = &l, .rc = -1 };
	pthread_t t;
	int kind, rc, polls;

	CHECK0(pthread_rwlockattr_init(&a));
	EXPECT("pthread_rwlockattr_setkind_np PREFER_WRITER_NONRECURSIVE",
	       pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP), 0);
	CHECK0(pthread_rwlockattr_getkind_np(&a, &kind));
	CHECK(kind == PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	CHECK0(pthread_rwlock_init(&l, &a));
	CHECK0(pthread_rwlockattr_destroy(&a));
	gate_init(&w.hold);

	CHECK0(pthread_rwlock_rdlock(&l));
	EXPECT("writer-preferring: tryrdlock from another thread (no writer yet)",
	       other(&l, TRYRD), 0);
	CHECK0(pthread_create(&t, NULL, pref_writer, &w));
	for (polls = 0;; polls++) {
		rc = pthread_rwlock_tryrdlock(&l);
		if (rc == EBUSY)
			break;
		if (rc != 0)
			FAIL("writer-preferring: tryrdlock returned %s", ename(rc));
		CHECK0(pthread_rwlock_unlock(&l));
		if (polls == 5000)
			FAIL("writer-preferring: readers still admitted after 5 s of a waiting writer");
		sleep_ms(1);
	}
	printf("writer-preferring: once the writer waits, the reader's own tryrdlock: EBUSY\n");
	EXPECT("writer-preferring: tryrdlock from another thread while a writer waits",
	       other(&l, TRYRD), EBUSY);
	EXPECT("writer-preferring: timedrdlock from another thread while a writer waits",
	       other_timed(&l, TIMEDRD, 0, 30), ETIMEDOUT);
	EXPECT("writer-preferring: clockrdlock CLOCK_MONOTONIC while a writer waits",
	       other_timed(&l, CLOCKRD, CLOCK_MONOTONIC, 30), ETIMEDOUT);
	EXPECT("writer-preferring: trywrlock from another thread while a writer waits",
	       other(&l, TRYWR), EBUSY);
	CHECK(w.rc == -1);
	CHECK0(pthread_rwlock_unlock(&l));	/* the last reader leaves: the writer gets in */
	gate_await_waiters(&w.hold, 1);
	EXPECT("writer-preferring: the waiting writer's wrlock", w.rc, 0);
	EXPECT("writer-preferring: tryrdlock while the writer holds it", other(&l, TRYRD), EBUSY);
	gate_open(&w.hold);
	CHECK0(pthread_join(t, NULL));
	EXPECT("writer-preferring: tryrdlock after the writer left", pthread_rwlock_tryrdlock(&l),
	       0);
	CHECK0(pthread_rwlock_unlock(&l));
	CHECK0(pthread_rwlock_destroy(&l));
}

/* The default kind prefers readers: a writer waiting (or about to) does
 * not keep new readers out. */
static void t_reader_preference(void)
{
	pthread_rwlock_t l;
	struct pref_writer w = { .l = &l, .rc = -1 };
	pthread_t t;

	CHECK0(pthread_rwlock_init(&l, NULL));
	gate_init(&w.hold);
	CHECK0(pthread_rwlock_rdlock(&l));
	CHECK0(pthread_create(&t, NULL, pref_writer, &w));
	sleep_ms(20);	/* the writer likely waits by now; the result is the same either way */
	EXPECT("reader-preferring: tryrdlock from another thread with a writer waiting",
	       other(&l, TRYRD), 0);
	EXPECT("reader-preferring: tryrdlock by the reader with a writer waiting",
	       pthread_rwlock_tryrdlock(&l), 0);
	CHECK0(pthread_rwlock_unlock(&l));
	CHECK(w.rc == -1);
	CHECK0(pthread_rwlock_unlock(&l));
	gate_await_waiters(&w.hold, 1);
	EXPECT("reader-preferring: the writer's wrlock after the readers left", w.rc, 0);
	gate_open(&w.hold);
	CHECK0(pthread_join(t, NULL));
	CHECK0(pthread_rwlock_destroy(&l));
}

/* POSIX lets the last holder's unlock be followed at once by another
 * thread's lock, unlock and destroy, and the memory's reuse: the unlocker
 * must not touch the rwlock after it let go. Each round a writer unlocks
 * while main, spinning on tryrdlock, destroys the lock and writes over it
 * the moment it gets it. */
#define REUSE_ROUNDS 20000
static union { pthread_rwlock_t l; char bytes[sizeof(pthread_rwlock_t)]; } reuse_slot;
static _Atomic int reuse_go, reuse_held, reuse_done;

static void *reuse_writer(void *arg)
{
	for (int i = 1; i <= REUSE_ROUNDS; i++) {
		while (reuse_go != i)
			sched_yield();
		if (pthread_rwlock_wrlock(&reuse_slot.l) != 0)
			FAIL("reuse: wrlock");
		reuse_held = i;
		if (pthread_rwlock_unlock(&reuse_slot.l) != 0)
			FAIL("reuse: unlock");
		reuse_done = i;
	}
	return arg;
}

static void t_destroy_after_unlock(void)
{
	pthread_t t;
	pthread_create(&t, NULL, reuse_writer, NULL);
	for (int i = 1; i <= REUSE_ROUNDS; i++) {
		pthread_rwlock_init(&reuse_slot.l, NULL);
		reuse_go = i;
		SPIN_UNTIL(reuse_held == i);
		SPIN_UNTIL(pthread_rwlock_tryrdlock(&reuse_slot.l) == 0);
		pthread_rwlock_unlock(&reuse_slot.l);
		pthread_rwlock_destroy(&reuse_slot.l);
		memset(reuse_slot.bytes, 0xff, sizeof reuse_slot.bytes);
		while (reuse_done != i)
			sched_yield();
	}
	pthread_join(t, NULL);
	printf("destroy and reuse right after the last unlock: %d rounds\n", REUSE_ROUNDS);
}

/* ------------------------------------------------------------------------
 * Timed churn: writers whose 1 ms deadlines keep passing while readers
 * come and go, on both kinds. A waiter whose wait ends (woken, timed
 * out) and that waits again must still be woken by the last unlock: a
 * lost wake-up hangs the test. At the end nobody holds the lock. */

#define CHURN_READERS 4
#define CHURN_WRITERS 2
#define CHURN_OPS 3000

static pthread_rwlock_t churn_l;
static _Atomic long churn_writes;

static void *churn_reader(void *arg)
{
	(void)arg;
	for (int i = 0; i < CHURN_OPS; i++) {
		CHECK0(pthread_rwlock_rdlock(&churn_l));
		if (i % 16 == 0)
			sched_yield(); /* hold it across a yield now and then */
		CHECK0(pthread_rwlock_unlock(&churn_l));
	}
	return NULL;
}

static void *churn_writer(void *arg)
{
	(void)arg;
	for (int i = 0; i < CHURN_OPS / 4; i++) {
		int rc;
		if (i % 8 == 0) {
			rc = pthread_rwlock_wrlock(&churn_l);
		} else {
			struct timespec dl = ts_after(CLOCK_MONOTONIC, 1);
			rc = pthread_rwlock_clockwrlock(&churn_l, CLOCK_MONOTONIC, &dl);
		}
		if (rc == ETIMEDOUT)
			continue;
		if (rc != 0)
			FAIL("timed churn: wrlock: %s", strerror(rc));
		churn_writes++;
		CHECK0(pthread_rwlock_unlock(&churn_l));
	}
	return NULL;
}

static void t_timed_churn(int kind, const char *name)
{
	pthread_rwlockattr_t a;
	pthread_t t[CHURN_READERS + CHURN_WRITERS];
	CHECK0(pthread_rwlockattr_init(&a));
	CHECK0(pthread_rwlockattr_setkind_np(&a, kind));
	CHECK0(pthread_rwlock_init(&churn_l, &a));
	CHECK0(pthread_rwlockattr_destroy(&a));
	churn_writes = 0;
	for (int i = 0; i < CHURN_READERS + CHURN_WRITERS; i++)
		CHECK0(pthread_create(&t[i], NULL, i < CHURN_READERS ? churn_reader : churn_writer, NULL));
	for (int i = 0; i < CHURN_READERS + CHURN_WRITERS; i++)
		CHECK0(pthread_join(t[i], NULL));
	if (churn_writes < CHURN_WRITERS * (CHURN_OPS / 4 / 8))
		FAIL("timed churn: %ld writes, fewer than the untimed ones", (long)churn_writes);
	EXPECT("timed churn: trywrlock at the end", pthread_rwlock_trywrlock(&churn_l), 0);
	CHECK0(pthread_rwlock_unlock(&churn_l));
	CHECK0(pthread_rwlock_destroy(&churn_l));
	printf("timed churn, %s: %d readers and %d writers with 1 ms deadlines finished; "
	       "the lock is free\n", name, CHURN_READERS, CHURN_WRITERS);
}

int main(void)
{
	legacy_start();
	t_basic();
	t_static_zero();
	t_timed();
	t_timed_released();
	t_deadlock();
	t_many_readers();
	t_mixed();
	t_writer_preference();
	t_reader_preference();
	t_destroy_after_unlock();
	t_timed_churn(PTHREAD_RWLOCK_PREFER_READER_NP, "reader-preferring");
	t_timed_churn(PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP, "writer-preferring");
	printf("rwlock: all checks passed\n");
	return 0;
}
