/* spawn, native baseline: pthread_create + pthread_join of N threads that do
 * nothing, at most 256 alive at a time.
 * RESULT spawn <ns per thread> ns/op */
#include <pthread.h>

#include "bench.h"

#define BATCH 256

static void *nothing(void *arg) { return arg; }

int main(int argc, char **argv)
{
	long n = bench_size(argc, argv, 100000);
	pthread_t t[BATCH];
	int64_t t0 = bench_now_ns();
	for (long done = 0; done < n;) {
		int k = n - done < BATCH ? (int)(n - done) : BATCH;
		for (int i = 0; i < k; i++) {
			int err = pthread_create(&t[i], NULL, nothing, NULL);
			if (err)
				BENCH_DIE("pthread_create failed at thread %ld: %s", done + i, strerror(err));
		}
		for (int i = 0; i < k; i++)
			pthread_join(t[i], NULL);
		done += k;
	}
	int64_t t1 = bench_now_ns();
	bench_result("spawn", (double)(t1 - t0) / n, "ns/op");
	return 0;
}
