/* coro_switch, libgoshim: the driver goroutine and a go_coro ping-pong with
 * go_coro_switch (the coroutine loops switching back), N round trips =
 * 2N switches; GOMAXPROCS=1 (forced; a coroutine switch does not use the
 * run queue anyway). The first switch (which starts the coroutine) is
 * before the clock.
 * RESULT coro_switch <ns per go_coro_switch> ns/op */
#include "bench_goshim.h"

static long rounds;
static volatile int stop;
static long resumed;
static double result;

static void body(go_coro *c, void *arg)
{
	(void)arg;
	while (!stop) {
		resumed++;
		go_coro_switch(c);
	}
}

static void driver(void *arg)
{
	(void)arg;
	go_coro *c = go_coro_new(body, NULL);
	if (!c)
		BENCH_DIE("go_coro_new: %s", strerror(errno));
	go_coro_switch(c); /* starts it */
	int64_t t0 = bench_now_ns();
	for (long i = 0; i < rounds; i++)
		go_coro_switch(c);
	int64_t t1 = bench_now_ns();
	stop = 1;
	go_coro_switch(c); /* body returns; c is exited */
	go_coro_free(c);
	if (resumed != rounds + 1)
		BENCH_DIE("the coroutine ran %ld times, expected %ld", resumed, rounds + 1);
	result = (double)(t1 - t0) / (2.0 * rounds);
}

int main(int argc, char **argv)
{
	rounds = bench_size(argc, argv, 1000000);
	go_maxprocs(1);
	bench_run_driver(driver, NULL);
	bench_result("coro_switch", result, "ns/op");
	return 0;
}
