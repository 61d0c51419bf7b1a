/* Deferred cancellation of threads blocked in the waits that are
 * cancellation points: pthread_cond_wait (the cleanup handler runs with the
 * mutex held again), sem_wait, pthread_join; and a thread with cancellation
 * disabled is not cancelled by its wait. See legacy.h for the conventions. */
#include <semaphore.h>

#include "legacy.h"

static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t c = PTHREAD_COND_INITIALIZER;
static sem_t s;
static int cleanups, trylock_in_handler = -1;
static struct gate blocked = GATE_INIT;

static void cleanup(void *arg)
{
	(void)arg;
	cleanups++;
	/* The cancelled waiter holds the mutex again: trylock says EBUSY. */
	trylock_in_handler = pthread_mutex_trylock(&m);
	CHECK0(pthread_mutex_unlock(&m));
}

static void *cond_waiter(void *arg)
{
	(void)arg;
	CHECK0(pthread_mutex_lock(&m));
	pthread_cleanup_push(cleanup, NULL);
	for (;;)
		pthread_cond_wait(&c, &m);
	pthread_cleanup_pop(0);
	return NULL;
}

static void *sem_waiter(void *arg)
{
	(void)arg;
	sem_wait(&s);
	return (void *)1;
}

static void *joiner(void *arg)
{
	pthread_join(*(pthread_t *)arg, NULL);
	return (void *)1;
}

static void *uncancellable(void *arg)
{
	int old;
	(void)arg;
	CHECK0(pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old));
	gate_wait(&blocked);
	while (sem_wait(&s) != 0)
		;
	return (void *)5;
}

int main(void)
{
	pthread_t a, b, j, u;
	void *ret;

	legacy_start();
	CHECK(sem_init(&s, 0, 0) == 0);

	for (int round = 0; round < 20; round++) {
		cleanups = 0;
		trylock_in_handler = -1;
		CHECK0(pthread_create(&a, NULL, cond_waiter, NULL));
		if (round % 2)
			sleep_ms(5); /* sometimes blocked already, sometimes not yet */
		CHECK0(pthread_cancel(a));
		CHECK0(pthread_join(a, &ret));
		CHECK(ret == PTHREAD_CANCELED);
		CHECK(cleanups == 1);
		if (trylock_in_handler != EBUSY)
			FAIL("cleanup handler: trylock gave %s, want EBUSY", ename(trylock_in_handler));
	}
	printf("pthread_cond_wait: cancelled, cleanup handler ran with the mutex held\n");

	for (int round = 0; round < 20; round++) {
		CHECK0(pthread_create(&b, NULL, sem_waiter, NULL));
		if (round % 2)
			sleep_ms(5);
		CHECK0(pthread_cancel(b));
		CHECK0(pthread_join(b, &ret));
		CHECK(ret == PTHREAD_CANCELED);
	}
	printf("sem_wait: cancelled\n");

	CHECK0(pthread_create(&u, NULL, uncancellable, NULL));
	gate_await_waiters(&blocked, 1);
	for (int round = 0; round < 10; round++) {
		CHECK0(pthread_create(&j, NULL, joiner, &u));
		if (round % 2)
			sleep_ms(5);
		CHECK0(pthread_cancel(j));
		CHECK0(pthread_join(j, &ret));
		CHECK(ret == PTHREAD_CANCELED);
	}
	printf("pthread_join: cancelled\n");

	CHECK0(pthread_cancel(u));
	gate_open(&blocked);
	sleep_ms(20);
	CHECK(sem_post(&s) == 0);
	CHECK0(pthread_join(u, &ret));
	CHECK((intptr_t)ret == 5);
	printf("cancellation disabled: the thread waited on and returned its value\n");
	printf("cancel: all checks passed\n");
	return 0;
}
