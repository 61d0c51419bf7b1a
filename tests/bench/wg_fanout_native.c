/* wg_fanout, native baseline: R rounds; in each the main thread adds
 * 10,000 to a pwg (pchan.h: mutex + condition variable), starts 10,000
 * detached threads (64 KiB stacks) that each call pwg_done, and waits.
 * RESULT wg_fanout <ns per thread> ns/op */
#include "pchan.h"

#define FANOUT 10000

static pwg wg = PWG_INIT;

static void *done(void *arg)
{
	pwg_done(arg);
	return NULL;
}

int main(int argc, char **argv)
{
	long rounds = bench_size(argc, argv, 100);
	int64_t t0 = bench_now_ns();
	for (long r = 0; r < rounds; r++) {
		pwg_add(&wg, FANOUT);
		for (int i = 0; i < FANOUT; i++)
			bench_thread(done, &wg, 64 * 1024);
		pwg_wait(&wg);
	}
	int64_t t1 = bench_now_ns();
	bench_result("wg_fanout", (double)(t1 - t0) / ((double)rounds * FANOUT), "ns/op");
	return 0;
}
