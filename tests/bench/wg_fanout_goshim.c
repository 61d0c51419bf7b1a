/* wg_fanout, libgoshim: R rounds; in each the driver goroutine adds 10,000
 * to a WaitGroup, starts 10,000 goroutines that each call go_wg_done, and
 * waits in go_wg_wait. (spawn is one such round of N.)
 * RESULT wg_fanout <ns per goroutine> ns/op */
#include "bench_goshim.h"

#define FANOUT 10000

static long rounds;
static go_wg wg;
static double result;

static void done(void *arg)
{
	go_wg_done(arg);
}

static void driver(void *arg)
{
	(void)arg;
	int64_t t0 = bench_now_ns();
	for (long r = 0; r < rounds; r++) {
		go_wg_add(&wg, FANOUT);
		for (int i = 0; i < FANOUT; i++)
			bench_go(done, &wg);
		go_wg_wait(&wg);
	}
	int64_t t1 = bench_now_ns();
	result = (double)(t1 - t0) / ((double)rounds * FANOUT);
}

int main(int argc, char **argv)
{
	rounds = bench_size(argc, argv, 100);
	bench_run_driver(driver, NULL);
	bench_result("wg_fanout", result, "ns/op");
	return 0;
}
