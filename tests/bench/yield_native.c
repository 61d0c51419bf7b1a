/* yield, native baseline: two threads pinned to CPU 0 each call
 * sched_yield() N times.
 * RESULT yield <ns per sched_yield> ns/op */
#include <pthread.h>
#include <sched.h>

#include "bench.h"

static long rounds;
static pthread_barrier_t start;

static void *yielder(void *arg)
{
	(void)arg;
	pthread_barrier_wait(&start);
	for (long i = 0; i < rounds; i++)
		sched_yield();
	return NULL;
}

int main(int argc, char **argv)
{
	rounds = bench_size(argc, argv, 1000000);
	cpu_set_t one;
	CPU_ZERO(&one);
	CPU_SET(0, &one);
	/* Threads inherit the main thread's affinity. */
	if (sched_setaffinity(0, sizeof one, &one))
		BENCH_DIE("sched_setaffinity(CPU 0): %s", strerror(errno));
	pthread_barrier_init(&start, NULL, 3);
	pthread_t t[2];
	for (int i = 0; i < 2; i++) {
		int err = pthread_create(&t[i], NULL, yielder, NULL);
		if (err)
			BENCH_DIE("pthread_create: %s", strerror(err));
	}
	int64_t t0 = bench_now_ns();
	pthread_barrier_wait(&start);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	int64_t t1 = bench_now_ns();
	bench_result("yield", (double)(t1 - t0) / (2.0 * rounds), "ns/op");
	return 0;
}
