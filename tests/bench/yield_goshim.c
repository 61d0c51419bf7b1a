/* yield (and switch), libgoshim: two goroutines ping-pong with go_yield()
 * at GOMAXPROCS=1 (forced here), each yielding N times. A driver goroutine
 * starts them and waits in go_wg_wait, as the Go twin's main does in
 * wg.Wait(); the clock runs from before the first go_spawn to the return
 * of go_wg_wait, all inside the runtime.
 * RESULT <BENCH_METRIC> <ns per go_yield> ns/op */
#include "bench_goshim.h"

#ifndef BENCH_METRIC
#define BENCH_METRIC "yield"
#endif

static long rounds;
static go_wg wg;
static double result;

static void pingpong(void *arg)
{
	(void)arg;
	for (long i = 0; i < rounds; i++)
		go_yield();
	go_wg_done(&wg);
}

static void driver(void *arg)
{
	(void)arg;
	go_wg_add(&wg, 2);
	int64_t t0 = bench_now_ns();
	for (int i = 0; i < 2; i++)
		bench_go(pingpong, NULL);
	go_wg_wait(&wg);
	int64_t t1 = bench_now_ns();
	result = (double)(t1 - t0) / (2.0 * rounds);
}

int main(int argc, char **argv)
{
	rounds = bench_size(argc, argv, 1000000);
	go_maxprocs(1);
	bench_run_driver(driver, NULL);
	bench_result(BENCH_METRIC, result, "ns/op");
	return 0;
}
