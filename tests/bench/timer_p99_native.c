/* timer_p99, native baseline: N sleeps (10,000 at full size) as in the
 * libgoshim program, lengths uniform in [1 ms, 50 ms] (bench_sleep_ns), but
 * by N/10 threads (1,000 at full size; 10,000 threads would measure thread
 * creation and memory rather than timers), each doing 10 relative
 * clock_nanosleep(CLOCK_MONOTONIC) in a row: the same number of samples,
 * a tenth as many timers pending at once.
 * RESULT timer_p99 <99th percentile of the lateness, microseconds> us */
#include "pchan.h"

#define PER_THREAD 10

static long n;
static int64_t *late;
static pwg wg = PWG_INIT;

static void *sleeper(void *arg)
{
	long first = (long)(intptr_t)arg;
	for (long i = first; i < first + PER_THREAD && i < n; i++) {
		int64_t d = bench_sleep_ns(i);
		struct timespec ts = { (time_t)(d / 1000000000), (long)(d % 1000000000) };
		int64_t t0 = bench_now_ns();
		int err;
		while ((err = clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts)) == EINTR)
			;
		if (err)
			BENCH_DIE("clock_nanosleep: %s", strerror(err));
		late[i] = bench_now_ns() - t0 - d;
	}
	pwg_done(&wg);
	return NULL;
}

int main(int argc, char **argv)
{
	n = bench_size(argc, argv, 10000);
	late = calloc((size_t)n, sizeof *late);
	if (!late)
		BENCH_DIE("out of memory");
	long threads = (n + PER_THREAD - 1) / PER_THREAD;
	pwg_add(&wg, threads);
	for (long t = 0; t < threads; t++)
		bench_thread(sleeper, (void *)(intptr_t)(t * PER_THREAD), 64 * 1024);
	pwg_wait(&wg);
	for (long i = 0; i < n; i++)
		if (late[i] < 0)
			BENCH_DIE("clock_nanosleep(%lld) returned %lld ns early",
			          (long long)bench_sleep_ns(i), (long long)-late[i]);
	bench_result("timer_p99", (double)bench_percentile(late, n, 99) / 1000.0, "us");
	free(late);
	return 0;
}
