/* chan_unbuf, chan_buf2, select2 — native baseline: ping-pong of a counter
 * between the main thread and one other over two pchans (pchan.h: mutex +
 * condition variables; capacity 0 is a rendezvous) of capacity BENCH_CAP,
 * N round trips, both threads pinned to one CPU (the analogue of
 * GOMAXPROCS=1). With BENCH_SELECT each side receives with pchan_recv2 from
 * its reply channel and a never-ready channel sharing its lock (pthreads'
 * select: one lock, two predicates). One round trip before the clock.
 * RESULT <BENCH_METRIC> <ns per round trip> ns/op */
#include "pchan.h"

#ifndef BENCH_METRIC
#define BENCH_METRIC "chan_unbuf"
#endif
#ifndef BENCH_CAP
#define BENCH_CAP 0
#endif
#ifndef BENCH_SELECT
#define BENCH_SELECT 0
#endif

static long rounds;
static pchan *ping, *pong, *never_ping, *never_pong;
static pwg wg = PWG_INIT;

static long recv(pchan *c, pchan *never)
{
#if BENCH_SELECT
	long v;
	if (pchan_recv2(c, never, &v) != 0)
		BENCH_DIE("select chose the never-ready case");
	return v;
#else
	(void)never;
	return pchan_recv(c);
#endif
}

static void *ponger(void *arg)
{
	(void)arg;
	for (long i = 0; i <= rounds; i++)
		pchan_send(pong, recv(ping, never_ping) + 1);
	pwg_done(&wg);
	return NULL;
}

int main(int argc, char **argv)
{
	rounds = bench_size(argc, argv, 1000000);
	bench_pin_one_cpu();
	ping = pchan_new(BENCH_CAP, NULL);
	pong = pchan_new(BENCH_CAP, NULL);
	never_ping = pchan_new(0, ping);
	never_pong = pchan_new(0, pong);
	pwg_add(&wg, 1);
	bench_thread(ponger, NULL, 0);
	pchan_send(ping, 0); /* warm-up round trip */
	long v = recv(pong, never_pong);
	int64_t t0 = bench_now_ns();
	for (long i = 0; i < rounds; i++) {
		pchan_send(ping, v);
		v = recv(pong, never_pong);
	}
	int64_t t1 = bench_now_ns();
	pwg_wait(&wg);
	if (v != rounds + 1)
		BENCH_DIE("counter is %ld after %ld round trips, expected %ld", v, rounds + 1, rounds + 1);
	bench_result(BENCH_METRIC, (double)(t1 - t0) / rounds, "ns/op");
	return 0;
}
