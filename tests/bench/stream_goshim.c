/* chan_stream128, libgoshim: a producer goroutine sends 0..N-1 on a
 * channel of capacity 128 and closes it; the driver goroutine receives
 * until it is closed (Go's `for v := range ch`). GOMAXPROCS=1 (forced).
 * RESULT chan_stream128 <ns per element> ns/op */
#include "bench_goshim.h"

static long n;
static go_chan *ch;
static double result;

static void producer(void *arg)
{
	(void)arg;
	for (long i = 0; i < n; i++)
		go_chan_send(ch, &i);
	go_chan_close(ch);
}

static void driver(void *arg)
{
	(void)arg;
	ch = go_chan_make(sizeof(long), 128);
	if (!ch)
		BENCH_DIE("go_chan_make: %s", strerror(errno));
	long v, count = 0, sum = 0;
	int64_t t0 = bench_now_ns();
	bench_go(producer, NULL);
	while (go_chan_recv(ch, &v)) {
		count++;
		sum += v;
	}
	int64_t t1 = bench_now_ns();
	if (count != n || sum != n * (n - 1) / 2)
		BENCH_DIE("received %ld values summing to %ld; expected %ld summing to %ld",
		          count, sum, n, n * (n - 1) / 2);
	go_chan_free(ch);
	result = (double)(t1 - t0) / n;
}

int main(int argc, char **argv)
{
	n = bench_size(argc, argv, 1000000);
	go_maxprocs(1);
	bench_run_driver(driver, NULL);
	bench_result("chan_stream128", result, "ns/op");
	return 0;
}
