/* A binary bound to the old glibc symbol versions: pthread_create, _join
 * and _detach at the first version of the architecture, pthread_tryjoin_np
 * at its own first version, the condvar calls at GLIBC_2.3.2 (the current
 * condvar, named explicitly) and the mutex calls at the first version. A
 * versioned reference binds only to a definition of that version, so the
 * preloaded runs make goroutines of these threads (run.sh's "N pthreads
 * ran as goroutines") only if the library defines the old versions too.
 * Every thread here is created through pthread_create_old and every lock
 * and wait goes through the _old names. See legacy.h for the conventions. */
#include "legacy.h"

#if defined(__x86_64__)
#define V_BASE "GLIBC_2.2.5"
#define V_TRYJOIN "GLIBC_2.3.3"
#define V_COND "GLIBC_2.3.2"
#elif defined(__aarch64__)
#define V_BASE "GLIBC_2.17"
#define V_TRYJOIN "GLIBC_2.17"
#define V_COND "GLIBC_2.17"
#else
#error "compat.c knows the glibc symbol versions of x86_64 and aarch64 only"
#endif

/* References to NAME_old become references to NAME@VERSION. */
#define OLD(name, ver) __asm__(".symver " #name "_old, " #name "@" ver)

extern int pthread_create_old(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
extern int pthread_join_old(pthread_t, void **);
extern int pthread_detach_old(pthread_t);
extern int pthread_tryjoin_np_old(pthread_t, void **);
extern int pthread_cond_init_old(pthread_cond_t *, const pthread_condattr_t *);
extern int pthread_cond_destroy_old(pthread_cond_t *);
extern int pthread_cond_wait_old(pthread_cond_t *, pthread_mutex_t *);
extern int pthread_cond_timedwait_old(pthread_cond_t *, pthread_mutex_t *,
				      const struct timespec *);
extern int pthread_cond_signal_old(pthread_cond_t *);
extern int pthread_cond_broadcast_old(pthread_cond_t *);
extern int pthread_mutex_init_old(pthread_mutex_t *, const pthread_mutexattr_t *);
extern int pthread_mutex_destroy_old(pthread_mutex_t *);
extern int pthread_mutex_lock_old(pthread_mutex_t *);
extern int pthread_mutex_trylock_old(pthread_mutex_t *);
extern int pthread_mutex_unlock_old(pthread_mutex_t *);

OLD(pthread_create, V_BASE);
OLD(pthread_join, V_BASE);
OLD(pthread_detach, V_BASE);
OLD(pthread_tryjoin_np, V_TRYJOIN);
OLD(pthread_cond_init, V_COND);
OLD(pthread_cond_destroy, V_COND);
OLD(pthread_cond_wait, V_COND);
OLD(pthread_cond_timedwait, V_COND);
OLD(pthread_cond_signal, V_COND);
OLD(pthread_cond_broadcast, V_COND);
OLD(pthread_mutex_init, V_BASE);
OLD(pthread_mutex_destroy, V_BASE);
OLD(pthread_mutex_lock, V_BASE);
OLD(pthread_mutex_trylock, V_BASE);
OLD(pthread_mutex_unlock, V_BASE);

#define NWORKERS 50

static pthread_mutex_t m;
static pthread_cond_t to_main, all_c;
static int finish;

/* ------------------------------------------------------------------------
 * NWORKERS threads, each a handshake with main on its own condvar: the
 * worker reports ready, main hands it a token, the worker answers. */

struct worker {
	int id;
	pthread_cond_t c;	/* main -> this worker */
	int ready, go, done;
	long token, answer;
};

static struct worker w[NWORKERS];

static void *worker(void *p)
{
	struct worker *me = p;
	CHECK0(pthread_mutex_lock_old(&m));
	me->ready = 1;
	CHECK0(pthread_cond_signal_old(&to_main));
	while (!me->go)
		CHECK0(pthread_cond_wait_old(&me->c, &m));
	me->answer = me->token * 3 + me->id;
	me->done = 1;
	CHECK0(pthread_cond_signal_old(&to_main));
	while (!finish)	/* all leave together, on one broadcast */
		CHECK0(pthread_cond_wait_old(&all_c, &m));
	CHECK0(pthread_mutex_unlock_old(&m));
	return (void *)(intptr_t)(1000 + me->id);
}

static void t_workers(void)
{
	pthread_t t[NWORKERS];
	long sum = 0;

	for (int i = 0; i < NWORKERS; i++) {
		w[i].id = i;
		CHECK0(pthread_cond_init_old(&w[i].c, NULL));
		CHECK0(pthread_create_old(&t[i], NULL, worker, &w[i]));
	}
	CHECK0(pthread_mutex_lock_old(&m));
	for (int i = 0; i < NWORKERS; i++) {
		while (!w[i].ready)
			CHECK0(pthread_cond_wait_old(&to_main, &m));
		w[i].token = 7L * i + 11;
		w[i].go = 1;
		CHECK0(pthread_cond_signal_old(&w[i].c));
		struct timespec dl = ts_after(CLOCK_REALTIME, 30000);
		while (!w[i].done) {
			int rc = pthread_cond_timedwait_old(&to_main, &m, &dl);
			if (rc != 0)
				FAIL("worker %d: timedwait for its answer returned %s", i, ename(rc));
		}
		if (w[i].answer != w[i].token * 3 + i)
			FAIL("worker %d: answer %ld, want %ld", i, w[i].answer, w[i].token * 3 + i);
		sum += w[i].answer;
	}
	finish = 1;
	CHECK0(pthread_cond_broadcast_old(&all_c));
	CHECK0(pthread_mutex_unlock_old(&m));
	for (int i = 0; i < NWORKERS; i++) {
		void *ret;
		CHECK0(pthread_join_old(t[i], &ret));
		if ((intptr_t)ret != 1000 + i)
			FAIL("worker %d: joined with %ld, want %d", i, (long)(intptr_t)ret, 1000 + i);
		CHECK0(pthread_cond_destroy_old(&w[i].c));
	}
	printf("%d threads (old pthread_create): a condvar handshake each (old wait, signal, "
	       "timedwait), answers sum %ld\n", NWORKERS, sum);
	printf("one old pthread_cond_broadcast released all %d; old pthread_join returned each "
	       "one's value\n", NWORKERS);
}

/* ------------------------------------------------------------------------
 * Timed wait, trylock, tryjoin and detach through the old names. */

static void *trylock_thread(void *p)
{
	int rc = pthread_mutex_trylock_old(p);
	if (rc == 0)
		CHECK0(pthread_mutex_unlock_old(p));
	return (void *)(intptr_t)rc;
}

static int released, detached_ran;

static void *held_thread(void *arg)
{
	CHECK0(pthread_mutex_lock_old(&m));
	while (!released)
		CHECK0(pthread_cond_wait_old(&all_c, &m));
	CHECK0(pthread_mutex_unlock_old(&m));
	return (void *)(intptr_t)42;
}

static void *detached_thread(void *arg)
{
	CHECK0(pthread_mutex_lock_old(&m));
	detached_ran = 1;
	CHECK0(pthread_cond_signal_old(&to_main));
	CHECK0(pthread_mutex_unlock_old(&m));
	return NULL;
}

static void t_misc(void)
{
	pthread_t t;
	void *ret;
	struct timespec dl;
	int rc;

	CHECK0(pthread_mutex_lock_old(&m));
	dl = ts_after(CLOCK_REALTIME, 30);
	EXPECT("old pthread_cond_timedwait", pthread_cond_timedwait_old(&to_main, &m, &dl),
	       ETIMEDOUT);
	CHECK_DEADLINE_PASSED(CLOCK_REALTIME, &dl);
	CHECK0(pthread_create_old(&t, NULL, trylock_thread, &m));
	CHECK0(pthread_join_old(t, &ret));
	EXPECT("old pthread_mutex_trylock from another thread while held", (int)(intptr_t)ret,
	       EBUSY);
	CHECK0(pthread_mutex_unlock_old(&m));
	CHECK0(pthread_create_old(&t, NULL, trylock_thread, &m));
	CHECK0(pthread_join_old(t, &ret));
	EXPECT("old pthread_mutex_trylock from another thread when free", (int)(intptr_t)ret, 0);

	/* tryjoin: EBUSY while the thread cannot end, then its value. */
	CHECK0(pthread_create_old(&t, NULL, held_thread, NULL));
	EXPECT("old pthread_tryjoin_np on a running thread", pthread_tryjoin_np_old(t, &ret), EBUSY);
	CHECK0(pthread_mutex_lock_old(&m));
	released = 1;
	CHECK0(pthread_cond_broadcast_old(&all_c));
	CHECK0(pthread_mutex_unlock_old(&m));
	for (int polls = 0; (rc = pthread_tryjoin_np_old(t, &ret)) == EBUSY; polls++) {
		if (polls == 10000)
			FAIL("old pthread_tryjoin_np: still EBUSY 10 s after the release");
		sleep_ms(1);
	}
	EXPECT("old pthread_tryjoin_np once the thread ended", rc, 0);
	CHECK((intptr_t)ret == 42);
	printf("old pthread_tryjoin_np returned the thread's value\n");

	/* detach: the thread still runs to its end. */
	CHECK0(pthread_create_old(&t, NULL, detached_thread, NULL));
	EXPECT("old pthread_detach", pthread_detach_old(t), 0);
	CHECK0(pthread_mutex_lock_old(&m));
	while (!detached_ran)
		CHECK0(pthread_cond_wait_old(&to_main, &m));
	CHECK0(pthread_mutex_unlock_old(&m));
	printf("a thread detached through old pthread_detach ran\n");
}

int main(void)
{
	legacy_start();
	EXPECT("old pthread_mutex_init", pthread_mutex_init_old(&m, NULL), 0);
	EXPECT("old pthread_cond_init", pthread_cond_init_old(&to_main, NULL), 0);
	EXPECT("old pthread_cond_init", pthread_cond_init_old(&all_c, NULL), 0);
	t_workers();
	t_misc();
	/* The detached thread may still be on its way out: it no longer uses
	 * m or to_main once it has unlocked, so both can go. */
	EXPECT("old pthread_cond_destroy", pthread_cond_destroy_old(&to_main), 0);
	EXPECT("old pthread_cond_destroy", pthread_cond_destroy_old(&all_c), 0);
	EXPECT("old pthread_mutex_destroy", pthread_mutex_destroy_old(&m), 0);
	printf("compat: all checks passed\n");
	return 0;
}
