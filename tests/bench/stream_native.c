/* chan_stream128, native baseline: a producer thread sends 0..N-1 on a
 * pchan (pchan.h) of capacity 128 and then a -1 end marker (pchan has no
 * close); the main thread receives them. Both pinned to one CPU (the
 * analogue of GOMAXPROCS=1).
 * RESULT chan_stream128 <ns per element> ns/op */
#include "pchan.h"

static long n;
static pchan *ch;

static void *producer(void *arg)
{
	(void)arg;
	for (long i = 0; i < n; i++)
		pchan_send(ch, i);
	pchan_send(ch, -1);
	return NULL;
}

int main(int argc, char **argv)
{
	n = bench_size(argc, argv, 1000000);
	bench_pin_one_cpu();
	ch = pchan_new(128, NULL);
	long v, count = 0, sum = 0;
	int64_t t0 = bench_now_ns();
	bench_thread(producer, NULL, 0);
	while ((v = pchan_recv(ch)) >= 0) {
		count++;
		sum += v;
	}
	int64_t t1 = bench_now_ns();
	if (count != n || sum != n * (n - 1) / 2)
		BENCH_DIE("received %ld values summing to %ld; expected %ld summing to %ld",
		          count, sum, n, n * (n - 1) / 2);
	bench_result("chan_stream128", (double)(t1 - t0) / n, "ns/op");
	return 0;
}
