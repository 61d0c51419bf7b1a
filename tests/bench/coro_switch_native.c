/* coro_switch, native baseline: a two-thread hand-off. go_coro_switch
 * blocks the caller and wakes the other side, so its honest native
 * analogue is two threads passing a baton under a mutex, each waking the
 * other with a condition variable and sleeping until woken back — not
 * swapcontext (which the `switch` metric measures: no blocking, no second
 * thread). Both threads pinned to one CPU; N round trips = 2N hand-offs.
 * RESULT coro_switch <ns per hand-off> ns/op */
#include "pchan.h"

static long rounds;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv[2] = { PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER };
static int turn; /* who may run: 0 main, 1 the other thread */
static int stop;
static long resumed;

/* Gives the baton to the other side and waits for it back. */
static void handoff(int me)
{
	turn = !me;
	pthread_cond_signal(&cv[!me]);
	while (turn != me)
		pthread_cond_wait(&cv[me], &mu);
}

static void *other(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&mu);
	while (turn != 1)
		pthread_cond_wait(&cv[1], &mu);
	while (!stop) {
		resumed++;
		handoff(1);
	}
	turn = 0;
	pthread_cond_signal(&cv[0]);
	pthread_mutex_unlock(&mu);
	return NULL;
}

int main(int argc, char **argv)
{
	rounds = bench_size(argc, argv, 1000000);
	bench_pin_one_cpu();
	bench_thread(other, NULL, 0);
	pthread_mutex_lock(&mu);
	handoff(0); /* first round trip, before the clock */
	int64_t t0 = bench_now_ns();
	for (long i = 0; i < rounds; i++)
		handoff(0);
	int64_t t1 = bench_now_ns();
	stop = 1;
	handoff(0);
	pthread_mutex_unlock(&mu);
	if (resumed != rounds + 1)
		BENCH_DIE("the other thread ran %ld times, expected %ld", resumed, rounds + 1);
	bench_result("coro_switch", (double)(t1 - t0) / (2.0 * rounds), "ns/op");
	return 0;
}
