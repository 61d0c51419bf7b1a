/* timer_p99, libgoshim: N goroutines (10,000 at full size) each go_sleep a
 * length uniform in [1 ms, 50 ms] (bench_sleep_ns) and record its lateness,
 * go_now() after minus before minus the length. The driver goroutine starts
 * them all and waits in go_wg_wait. Default GOMAXPROCS.
 * RESULT timer_p99 <99th percentile of the lateness, microseconds> us */
#include "bench_goshim.h"

static long n;
static int64_t *late;
static go_wg wg;
static double result;

static void sleeper(void *arg)
{
	long i = (long)(intptr_t)arg;
	int64_t d = bench_sleep_ns(i);
	int64_t t0 = go_now();
	go_sleep(d);
	late[i] = go_now() - t0 - d;
	go_wg_done(&wg);
}

static void driver(void *arg)
{
	(void)arg;
	go_wg_add(&wg, (int)n);
	for (long i = 0; i < n; i++)
		bench_go(sleeper, (void *)(intptr_t)i);
	go_wg_wait(&wg);
	for (long i = 0; i < n; i++)
		if (late[i] < 0)
			BENCH_DIE("go_sleep(%lld) returned %lld ns early",
			          (long long)bench_sleep_ns(i), (long long)-late[i]);
	result = (double)bench_percentile(late, n, 99) / 1000.0;
}

int main(int argc, char **argv)
{
	n = bench_size(argc, argv, 10000);
	if (n > INT32_MAX)
		BENCH_DIE("size %ld too large for a WaitGroup", n);
	late = calloc((size_t)n, sizeof *late);
	if (!late)
		BENCH_DIE("out of memory");
	bench_run_driver(driver, NULL);
	bench_result("timer_p99", result, "us");
	free(late);
	return 0;
}
