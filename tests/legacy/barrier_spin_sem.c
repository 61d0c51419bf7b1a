/* pthread barriers (one serial thread per round), spinlocks, and unnamed
 * POSIX semaphores: wait, trywait, timed and clock waits with their errors
 * (errno), post, getvalue, a ping-pong between two threads, and timeouts
 * racing posts. See legacy.h for the conventions. */
#include "legacy.h"
#include <sched.h>

#include <limits.h>
#include <semaphore.h>

/* ------------------------------------------------------------------------
 * Barriers. */

#define NBARRIER 8
#define BARRIER_ROUNDS 50

static struct {
	pthread_barrier_t b;
	int arrived[BARRIER_ROUNDS];
	int serial[BARRIER_ROUNDS];
} br;

static void *barrier_thread(void *arg)
{
	for (int r = 0; r < BARRIER_ROUNDS; r++) {
		__atomic_add_fetch(&br.arrived[r], 1, __ATOMIC_SEQ_CST);
		int rc = pthread_barrier_wait(&br.b);
		if (rc == PTHREAD_BARRIER_SERIAL_THREAD)
			__atomic_add_fetch(&br.serial[r], 1, __ATOMIC_SEQ_CST);
		else if (rc != 0)
			FAIL("pthread_barrier_wait returned %s", ename(rc));
		/* Nobody leaves a round before everybody has arrived. */
		int n = __atomic_load_n(&br.arrived[r], __ATOMIC_SEQ_CST);
		if (n != NBARRIER)
			FAIL("barrier round %d: left with %d of %d arrived", r, n, NBARRIER);
	}
	return NULL;
}

static void t_barrier(void)
{
	pthread_barrierattr_t a;
	pthread_barrier_t one;
	pthread_t t[NBARRIER];
	int v;

	EXPECT("pthread_barrier_init with count 0", pthread_barrier_init(&one, NULL, 0), EINVAL);

	CHECK0(pthread_barrierattr_init(&a));
	CHECK0(pthread_barrierattr_getpshared(&a, &v));
	CHECK(v == PTHREAD_PROCESS_PRIVATE);
	EXPECT("pthread_barrier_init with count 1", pthread_barrier_init(&one, &a, 1), 0);
	CHECK0(pthread_barrierattr_destroy(&a));
	for (int i = 0; i < 3; i++)
		if (pthread_barrier_wait(&one) != PTHREAD_BARRIER_SERIAL_THREAD)
			FAIL("a barrier of one: wait %d was not the serial thread", i);
	printf("a barrier of one: every wait returns PTHREAD_BARRIER_SERIAL_THREAD\n");
	EXPECT("pthread_barrier_destroy", pthread_barrier_destroy(&one), 0);

	CHECK0(pthread_barrier_init(&br.b, NULL, NBARRIER));
	for (int i = 0; i < NBARRIER; i++)
		CHECK0(pthread_create(&t[i], NULL, barrier_thread, NULL));
	for (int i = 0; i < NBARRIER; i++)
		CHECK0(pthread_join(t[i], NULL));
	for (int r = 0; r < BARRIER_ROUNDS; r++)
		if (br.serial[r] != 1 || br.arrived[r] != NBARRIER)
			FAIL("barrier round %d: %d serial threads, %d arrived", r, br.serial[r],
			     br.arrived[r]);
	printf("pthread_barrier_wait: %d threads x %d rounds, one PTHREAD_BARRIER_SERIAL_THREAD "
	       "per round\n", NBARRIER, BARRIER_ROUNDS);
	EXPECT("pthread_barrier_destroy", pthread_barrier_destroy(&br.b), 0);
}

/* ------------------------------------------------------------------------
 * Spinlocks. */

#define NSPIN 4
#define SPIN_INCR 50000

static struct {
	pthread_spinlock_t s;
	long counter;
	struct gate start;
} sp;

static void *spin_trylock_rc(void *p)
{
	int rc = pthread_spin_trylock(p);
	if (rc == 0)
		CHECK0(pthread_spin_unlock(p));
	return (void *)(intptr_t)rc;
}

static void *spin_thread(void *arg)
{
	gate_wait(&sp.start);
	for (int i = 0; i < SPIN_INCR; i++) {
		CHECK0(pthread_spin_lock(&sp.s));
		long v = sp.counter;
		sp.counter = v + 1;
		CHECK0(pthread_spin_unlock(&sp.s));
	}
	return NULL;
}

static void t_spin(void)
{
	pthread_t t[NSPIN];

	EXPECT("pthread_spin_init", pthread_spin_init(&sp.s, PTHREAD_PROCESS_PRIVATE), 0);
	EXPECT("pthread_spin_lock", pthread_spin_lock(&sp.s), 0);
	EXPECT("pthread_spin_trylock from another thread while locked",
	       (int)(intptr_t)run_in_thread(spin_trylock_rc, (void *)&sp.s), EBUSY);
	EXPECT("pthread_spin_unlock", pthread_spin_unlock(&sp.s), 0);
	EXPECT("pthread_spin_trylock from another thread when free",
	       (int)(intptr_t)run_in_thread(spin_trylock_rc, (void *)&sp.s), 0);
	EXPECT("pthread_spin_trylock", pthread_spin_trylock(&sp.s), 0);
	EXPECT("pthread_spin_unlock", pthread_spin_unlock(&sp.s), 0);

	gate_init(&sp.start);
	for (int i = 0; i < NSPIN; i++)
		CHECK0(pthread_create(&t[i], NULL, spin_thread, NULL));
	gate_await_waiters(&sp.start, NSPIN);
	gate_open(&sp.start);
	for (int i = 0; i < NSPIN; i++)
		CHECK0(pthread_join(t[i], NULL));
	if (sp.counter != (long)NSPIN * SPIN_INCR)
		FAIL("spinlock: counter %ld, want %ld", sp.counter, (long)NSPIN * SPIN_INCR);
	printf("pthread_spin_lock: %d threads x %d increments = %ld\n", NSPIN, SPIN_INCR,
	       sp.counter);
	EXPECT("pthread_spin_destroy", pthread_spin_destroy(&sp.s), 0);
}

/* ------------------------------------------------------------------------
 * Semaphores. The calls return -1 and set errno: sem_rc gives 0 or the
 * errno, for EXPECT. */

static int sem_rc(int r)
{
	if (r == 0)
		return 0;
	if (r != -1)
		FAIL("a semaphore call returned %d", r);
	return errno;
}

static int sem_value(sem_t *s)
{
	int v;
	if (sem_getvalue(s, &v) != 0)
		FAIL("sem_getvalue: %s", ename(errno));
	return v;
}

#define EXPECT_VALUE(what, s, want) \
	do { int v_ = sem_value(s); \
	     if (v_ != (want)) FAIL("%s: sem_getvalue %d, want %d", (what), v_, (want)); \
	     printf("%s: sem_getvalue %d\n", (what), v_); \
	} while (0)

static void t_sem_basic(void)
{
	sem_t s;
	struct timespec dl;

	EXPECT("sem_init with value SEM_VALUE_MAX + 1",
	       sem_rc(sem_init(&s, 0, (unsigned)SEM_VALUE_MAX + 1)), EINVAL);
	EXPECT("sem_init with value 0", sem_rc(sem_init(&s, 0, 0)), 0);
	EXPECT_VALUE("after sem_init(0)", &s, 0);
	EXPECT("sem_trywait at 0", sem_rc(sem_trywait(&s)), EAGAIN);
	EXPECT("sem_post", sem_rc(sem_post(&s)), 0);
	EXPECT_VALUE("after one sem_post", &s, 1);
	EXPECT("sem_trywait at 1", sem_rc(sem_trywait(&s)), 0);
	EXPECT_VALUE("after sem_trywait", &s, 0);
	for (int i = 0; i < 3; i++)
		CHECK(sem_post(&s) == 0);
	EXPECT_VALUE("after three sem_post", &s, 3);
	EXPECT("sem_wait at 3", sem_rc(sem_wait(&s)), 0);
	dl = ts_after(CLOCK_REALTIME, 30000);
	EXPECT("sem_timedwait at 2", sem_rc(sem_timedwait(&s, &dl)), 0);
	dl = ts_after(CLOCK_MONOTONIC, 30000);
	EXPECT("sem_clockwait CLOCK_MONOTONIC at 1", sem_rc(sem_clockwait(&s, CLOCK_MONOTONIC, &dl)),
	       0);
	EXPECT_VALUE("after three waits", &s, 0);

	/* At 0 the timed waits time out, and with a bad deadline are EINVAL. */
	dl = ts_after(CLOCK_REALTIME, 30);
	EXPECT("sem_timedwait at 0", sem_rc(sem_timedwait(&s, &dl)), ETIMEDOUT);
	CHECK_DEADLINE_PASSED(CLOCK_REALTIME, &dl);
	dl = ts_after(CLOCK_MONOTONIC, 30);
	EXPECT("sem_clockwait CLOCK_MONOTONIC at 0", sem_rc(sem_clockwait(&s, CLOCK_MONOTONIC, &dl)),
	       ETIMEDOUT);
	CHECK_DEADLINE_PASSED(CLOCK_MONOTONIC, &dl);
	dl = ts_after(CLOCK_REALTIME, 30);
	EXPECT("sem_clockwait CLOCK_REALTIME at 0", sem_rc(sem_clockwait(&s, CLOCK_REALTIME, &dl)),
	       ETIMEDOUT);
	CHECK_DEADLINE_PASSED(CLOCK_REALTIME, &dl);
	dl = ts_bad_nsec(CLOCK_REALTIME);
	EXPECT("sem_timedwait with tv_nsec = 1000000000 at 0", sem_rc(sem_timedwait(&s, &dl)),
	       EINVAL);
	dl = ts_bad_nsec(CLOCK_MONOTONIC);
	EXPECT("sem_clockwait CLOCK_MONOTONIC with tv_nsec = 1000000000 at 0",
	       sem_rc(sem_clockwait(&s, CLOCK_MONOTONIC, &dl)), EINVAL);
	dl = ts_after(CLOCK_PROCESS_CPUTIME_ID, 30);
	EXPECT("sem_clockwait CLOCK_PROCESS_CPUTIME_ID at 0",
	       sem_rc(sem_clockwait(&s, CLOCK_PROCESS_CPUTIME_ID, &dl)), EINVAL);
	EXPECT_VALUE("after the failed waits", &s, 0);
	EXPECT("sem_destroy", sem_rc(sem_destroy(&s)), 0);
}

/* Waiters blocked at 0 are woken by posts from another thread. */
enum { W_WAIT, W_TIMED, W_CLOCK };

struct sem_waiter {
	sem_t *s;
	int how;
	int rc;
};

static void *sem_waiter(void *p)
{
	struct sem_waiter *w = p;
	struct timespec dl;
	switch (w->how) {
	case W_WAIT:
		w->rc = sem_rc(sem_wait(w->s));
		break;
	case W_TIMED:
		dl = ts_after(CLOCK_REALTIME, 30000);
		w->rc = sem_rc(sem_timedwait(w->s, &dl));
		break;
	case W_CLOCK:
		dl = ts_after(CLOCK_MONOTONIC, 30000);
		w->rc = sem_rc(sem_clockwait(w->s, CLOCK_MONOTONIC, &dl));
		break;
	}
	return NULL;
}

static void t_sem_wake(void)
{
	static const char *names[] = { "sem_wait", "sem_timedwait", "sem_clockwait CLOCK_MONOTONIC" };
	sem_t s;
	char what[128];

	CHECK(sem_init(&s, 0, 0) == 0);
	for (int how = W_WAIT; how <= W_CLOCK; how++) {
		struct sem_waiter w = { &s, how, -1 };
		pthread_t t;
		CHECK0(pthread_create(&t, NULL, sem_waiter, &w));
		sleep_ms(20);	/* likely blocked by now; 0 either way */
		CHECK(sem_post(&s) == 0);
		CHECK0(pthread_join(t, NULL));
		snprintf(what, sizeof what, "%s woken by sem_post from another thread", names[how]);
		EXPECT(what, w.rc, 0);
	}
	EXPECT_VALUE("after the wake-ups", &s, 0);

	/* Counting: NSEMW threads take SEMW_EACH each of posts made by main. */
#define NSEMW 4
#define SEMW_EACH 500
	pthread_t t[NSEMW];
	struct sem_waiter w[NSEMW];
	for (int i = 0; i < NSEMW; i++) {
		w[i] = (struct sem_waiter){ &s, W_WAIT, -1 };
		CHECK0(pthread_create(&t[i], NULL, sem_waiter, &w[i]));
	}
	for (int i = 0; i < NSEMW; i++)
		CHECK(sem_post(&s) == 0);
	for (int i = 0; i < NSEMW; i++) {
		CHECK0(pthread_join(t[i], NULL));
		CHECK(w[i].rc == 0);
	}
	printf("sem_post: %d posts woke %d blocked sem_wait callers\n", NSEMW, NSEMW);
	EXPECT_VALUE("after the posts were taken", &s, 0);
	EXPECT("sem_destroy", sem_rc(sem_destroy(&s)), 0);
}

/* Ping-pong: two semaphores hand a turn back and forth. */
#define PINGPONG 10000

static struct {
	sem_t ping, pong;
	long count;
} pp;

static void *pong_thread(void *arg)
{
	for (int i = 0; i < PINGPONG; i++) {
		while (sem_wait(&pp.ping) != 0)
			if (errno != EINTR)
				FAIL("pong: sem_wait: %s", ename(errno));
		pp.count++;
		CHECK(sem_post(&pp.pong) == 0);
	}
	return NULL;
}

static void t_pingpong(void)
{
	pthread_t t;
	CHECK(sem_init(&pp.ping, 0, 0) == 0);
	CHECK(sem_init(&pp.pong, 0, 0) == 0);
	CHECK0(pthread_create(&t, NULL, pong_thread, NULL));
	for (long i = 0; i < PINGPONG; i++) {
		CHECK(sem_post(&pp.ping) == 0);
		while (sem_wait(&pp.pong) != 0)
			if (errno != EINTR)
				FAIL("ping: sem_wait: %s", ename(errno));
		if (pp.count != i + 1)
			FAIL("ping-pong: count %ld after %ld exchanges", pp.count, i + 1);
	}
	CHECK0(pthread_join(t, NULL));
	if (sem_value(&pp.ping) != 0 || sem_value(&pp.pong) != 0)
		FAIL("ping-pong: semaphores left at %d and %d", sem_value(&pp.ping),
		     sem_value(&pp.pong));
	printf("semaphore ping-pong: %d exchanges, count %ld\n", PINGPONG, pp.count);
	CHECK(sem_destroy(&pp.ping) == 0);
	CHECK(sem_destroy(&pp.pong) == 0);
}

/* A semaphore used as a completion: the waiter that takes the unit may
 * destroy the semaphore and reuse its memory at once (POSIX allows it),
 * so sem_post must not touch it after the unit became visible. Each round
 * main spins on sem_trywait while a thread posts, then destroys the
 * semaphore and writes over it. */
#define REUSE_ROUNDS 20000
static union { sem_t s; char bytes[sizeof(sem_t)]; } reuse_slot;
static _Atomic int reuse_go, reuse_done;

static void *reuse_poster(void *arg)
{
	for (int i = 1; i <= REUSE_ROUNDS; i++) {
		while (reuse_go != i)
			sched_yield();
		if (sem_post(&reuse_slot.s) != 0)
			FAIL("reuse: sem_post: %s", ename(errno));
		reuse_done = i;
	}
	return arg;
}

static void t_sem_destroy_after_post(void)
{
	pthread_t t;
	pthread_create(&t, NULL, reuse_poster, NULL);
	for (int i = 1; i <= REUSE_ROUNDS; i++) {
		sem_init(&reuse_slot.s, 0, 0);
		reuse_go = i;
		SPIN_UNTIL(sem_trywait(&reuse_slot.s) == 0);
		sem_destroy(&reuse_slot.s);
		memset(reuse_slot.bytes, 0xff, sizeof reuse_slot.bytes);
		while (reuse_done != i)
			sched_yield();
	}
	pthread_join(t, NULL);
	printf("sem: destroy and reuse right after the waiter's return: %d rounds\n", REUSE_ROUNDS);
}

/* Timeouts racing posts: waiters whose deadlines expire while units are
 * posted. Every unit is taken by exactly one waiter or stays in the value
 * (none lost to a waiter that timed out, none taken twice), and once all
 * have left the semaphore counts no waiter (glibc's nwaiters, the high
 * half of the first word). Half the waits end with a blocked waiter woken
 * by a post, which it may destroy at once: here it goes on waiting. */
#define RACE_WAITERS 6
#define RACE_WAITS 1500
#define RACE_POSTS (RACE_WAITERS * RACE_WAITS / 2)
static sem_t race_sem;
static _Atomic long race_taken;

static void *race_waiter(void *arg)
{
	long me = (long)arg, taken = 0;
	for (int i = 0; i < RACE_WAITS; i++) {
		struct timespec ts = ts_now(CLOCK_REALTIME);
		ts.tv_nsec += 20000 * (1 + (me + i) % 4);
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		int rc = sem_rc(sem_timedwait(&race_sem, &ts));
		if (rc == 0)
			taken++;
		else if (rc != ETIMEDOUT && rc != EINTR)
			FAIL("race: sem_timedwait: %s", ename(rc));
	}
	race_taken += taken;
	return NULL;
}

static void t_sem_timeouts_race_posts(void)
{
	pthread_t t[RACE_WAITERS];
	CHECK0(sem_init(&race_sem, 0, 0) ? errno : 0);
	for (long i = 0; i < RACE_WAITERS; i++)
		pthread_create(&t[i], NULL, race_waiter, (void *)i);
	for (int i = 0; i < RACE_POSTS; i++) {
		if (sem_post(&race_sem) != 0)
			FAIL("race: sem_post: %s", ename(errno));
		if (i % 4 == 0)
			sched_yield();
	}
	for (int i = 0; i < RACE_WAITERS; i++)
		pthread_join(t[i], NULL);
	long left = 0;
	while (sem_trywait(&race_sem) == 0)
		left++;
	if (race_taken + left != RACE_POSTS)
		FAIL("race: %ld units taken and %ld left, want %d in all", (long)race_taken, left,
		     RACE_POSTS);
	uint64_t word;
	memcpy(&word, &race_sem, sizeof word);
	if (word >> 32)
		FAIL("race: %u waiters counted after all left", (unsigned)(word >> 32));
	sem_destroy(&race_sem);
	printf("sem: timeouts racing %d posts: every unit taken once or left, no waiter counted\n",
	       RACE_POSTS);
}

int main(void)
{
	legacy_start();
	t_barrier();
	t_spin();
	t_sem_basic();
	t_sem_wake();
	t_pingpong();
	t_sem_destroy_after_post();
	t_sem_timeouts_race_posts();
	printf("barrier_spin_sem: all checks passed\n");
	return 0;
}
