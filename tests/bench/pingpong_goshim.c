/* chan_unbuf, chan_buf2, select2 — libgoshim: ping-pong of a counter between
 * the driver goroutine and one other over two channels of capacity
 * BENCH_CAP, N round trips at GOMAXPROCS=1 (forced here). With
 * BENCH_SELECT each side receives through a 2-case go_select: its reply
 * channel and a channel of its own that is never ready (nobody sends on
 * it). One round trip before the clock starts (start-up not counted).
 * RESULT <BENCH_METRIC> <ns per round trip> ns/op */
#include "bench_goshim.h"

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
static go_chan *ping, *pong, *never_ping, *never_pong;
static go_wg wg;
static double result;

static void recv(go_chan *c, go_chan *never, long *v)
{
#if BENCH_SELECT
	go_case cases[2] = { GO_RECV(c, v), GO_RECV(never, NULL) };
	if (go_select(cases, 2) != 0 || !cases[0].ok)
		BENCH_DIE("select chose the never-ready case");
#else
	(void)never;
	if (!go_chan_recv(c, v))
		BENCH_DIE("channel closed");
#endif
}

static void ponger(void *arg)
{
	(void)arg;
	long v;
	for (long i = 0; i <= rounds; i++) {
		recv(ping, never_ping, &v);
		v++;
		go_chan_send(pong, &v);
	}
	go_wg_done(&wg);
}

static void driver(void *arg)
{
	(void)arg;
	ping = go_chan_make(sizeof(long), BENCH_CAP);
	pong = go_chan_make(sizeof(long), BENCH_CAP);
	never_ping = go_chan_make(sizeof(long), 0);
	never_pong = go_chan_make(sizeof(long), 0);
	if (!ping || !pong || !never_ping || !never_pong)
		BENCH_DIE("go_chan_make: %s", strerror(errno));
	go_wg_add(&wg, 1);
	bench_go(ponger, NULL);
	long v = 0;
	go_chan_send(ping, &v); /* warm-up round trip */
	recv(pong, never_pong, &v);
	int64_t t0 = bench_now_ns();
	for (long i = 0; i < rounds; i++) {
		go_chan_send(ping, &v);
		recv(pong, never_pong, &v);
	}
	int64_t t1 = bench_now_ns();
	go_wg_wait(&wg);
	if (v != rounds + 1)
		BENCH_DIE("counter is %ld after %ld round trips, expected %ld", v, rounds + 1, rounds + 1);
	go_chan_free(ping);
	go_chan_free(pong);
	go_chan_free(never_ping);
	go_chan_free(never_pong);
	result = (double)(t1 - t0) / rounds;
}

int main(int argc, char **argv)
{
	rounds = bench_size(argc, argv, 1000000);
	go_maxprocs(1);
	bench_run_driver(driver, NULL);
	bench_result(BENCH_METRIC, result, "ns/op");
	return 0;
}
