/* spawn, libgoshim: a driver goroutine starts N goroutines that each call
 * go_wg_done, then waits in go_wg_wait, as the Go twin does with
 * sync.WaitGroup (Add(N) before the clock starts).
 * RESULT spawn <ns per goroutine> ns/op */
#include "bench_goshim.h"

static long n;
static go_wg wg;
static double result;

static void nothing(void *arg)
{
	go_wg_done(arg);
}

static void driver(void *arg)
{
	(void)arg;
	go_wg_add(&wg, (int)n);
	int64_t t0 = bench_now_ns();
	for (long i = 0; i < n; i++) {
		int err = go_spawn(nothing, &wg);
		if (err)
			BENCH_DIE("go_spawn failed at goroutine %ld: %s", i, strerror(err));
	}
	go_wg_wait(&wg);
	int64_t t1 = bench_now_ns();
	result = (double)(t1 - t0) / n;
}

int main(int argc, char **argv)
{
	n = bench_size(argc, argv, 100000);
	if (n > INT32_MAX)
		BENCH_DIE("size %ld too large for a WaitGroup", n);
	bench_run_driver(driver, NULL);
	bench_result("spawn", result, "ns/op");
	return 0;
}
