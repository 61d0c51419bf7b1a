/* Many live threads: "live N" creates N threads that all wait on one
 * condvar at the same time, checks that every one arrived, reads the
 * process's kernel thread count while they wait, then releases them and
 * joins each (each returns its index). A plain pthread program, run by
 * tests/legacy/live.sh: natively it stops near pid_max (32,768 here), as a
 * kernel thread each; preloaded, the threads are goroutines.
 *
 * Output: "N threads waited on one condvar at once", then
 * "kernel threads while they waited: K", then "all N joined". Exit 3 with
 * "stopped at I: <error>" when pthread_create fails. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t all_here = PTHREAD_COND_INITIALIZER, go_on = PTHREAD_COND_INITIALIZER;
static long arrived, want;
static int released;

static void *waiter(void *arg)
{
	pthread_mutex_lock(&mu);
	if (++arrived == want)
		pthread_cond_signal(&all_here);
	while (!released)
		pthread_cond_wait(&go_on, &mu);
	pthread_mutex_unlock(&mu);
	return arg;
}

static long kernel_threads(void)
{
	char line[256];
	long n = -1;
	FILE *f = fopen("/proc/self/status", "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "Threads: %ld", &n) == 1)
			break;
	fclose(f);
	return n;
}

static void release_all(void)
{
	pthread_mutex_lock(&mu);
	released = 1;
	pthread_cond_broadcast(&go_on);
	pthread_mutex_unlock(&mu);
}

int main(int argc, char **argv)
{
	char *end;
	want = argc == 2 ? strtol(argv[1], &end, 10) : 0;
	if (argc != 2 || *end || want <= 0) {
		fprintf(stderr, "usage: live N (N > 0)\n");
		return 2;
	}
	pthread_t *t = calloc((size_t)want, sizeof *t);
	if (!t) {
		fprintf(stderr, "live: out of memory\n");
		return 1;
	}
	for (long i = 0; i < want; i++) {
		int err = pthread_create(&t[i], NULL, waiter, (void *)(intptr_t)i);
		if (err) {
			printf("stopped at %ld: %s\n", i, strerror(err));
			fflush(stdout);
			release_all();
			for (long j = 0; j < i; j++)
				pthread_join(t[j], NULL);
			return 3;
		}
	}
	pthread_mutex_lock(&mu);
	while (arrived < want)
		pthread_cond_wait(&all_here, &mu);
	pthread_mutex_unlock(&mu);
	printf("%ld threads waited on one condvar at once\n", want);
	printf("kernel threads while they waited: %ld\n", kernel_threads());
	release_all();
	for (long i = 0; i < want; i++) {
		void *ret;
		int err = pthread_join(t[i], &ret);
		if (err || ret != (void *)(intptr_t)i) {
			printf("join %ld: %s, returned %p\n", i, strerror(err), ret);
			return 1;
		}
	}
	printf("all %ld joined\n", want);
	free(t);
	return 0;
}
