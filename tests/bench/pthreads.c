/* Plain pthread benchmarks (scripts/bench): the same binary runs natively
 * and under LD_PRELOAD=libgoshim.so. Usage: pthreads MODE SIZE
 *
 *   create_join  ns per pthread_create + pthread_join of a thread that
 *                returns at once, made and joined by main
 *   create_join_thread  the same from a thread that main made (main
 *                and the other threads are alike under libgoshim, where
 *                main is a migratable goroutine; kept to show it)
 *   pingpong     ns per round trip: two threads hand a turn back and forth
 *                under one mutex with two condvars
 *   mailbox      ns per round trip: two threads pass a number back and
 *                forth through two one-slot mailboxes, each a mutex and a
 *                condvar of its own
 *   contended    ns per lock+unlock: 4 threads share one mutex, SIZE
 *                increments in all
 *   rwlock       ns per operation: 4 threads share one rwlock, SIZE
 *                operations in all, one write (wrlock) in 64, else a read
 *                (rdlock)
 *   sempingpong  ns per round trip: two threads hand a turn back and forth
 *                with two unnamed semaphores
 *   parked       KiB of RSS per thread: SIZE threads each blocked on one
 *                condvar (the stack use of a thread that did little)
 */
#include <pthread.h>
#include <semaphore.h>
#include <unistd.h>

#include "bench.h"

static void *nothing(void *arg)
{
	return arg;
}

static double create_join_ns(long n)
{
	int64_t t0 = bench_now_ns();
	for (long i = 0; i < n; i++) {
		pthread_t t;
		int err = pthread_create(&t, NULL, nothing, NULL);
		if (err || (err = pthread_join(t, NULL))) {
			fprintf(stderr, "pthreads: create/join: %s\n", strerror(err));
			exit(1);
		}
	}
	return (double)(bench_now_ns() - t0) / (double)n;
}

static void create_join(long n)
{
	bench_result("pt_create_join", create_join_ns(n), "ns/op");
}

static void *create_join_loop(void *arg)
{
	bench_result("pt_create_join_thread", create_join_ns(*(long *)arg), "ns/op");
	return NULL;
}

static void create_join_thread(long n)
{
	pthread_t t;
	int err = pthread_create(&t, NULL, create_join_loop, &n);
	if (err || (err = pthread_join(t, NULL))) {
		fprintf(stderr, "pthreads: create/join: %s\n", strerror(err));
		exit(1);
	}
}

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv[2] = { PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER };
static long turn, rounds;

static void *player(void *arg)
{
	long me = (long)arg;
	pthread_mutex_lock(&mu);
	for (long i = 0; i < rounds; i++) {
		while ((turn & 1) != me)
			pthread_cond_wait(&cv[me], &mu);
		turn++;
		pthread_cond_signal(&cv[1 - me]);
	}
	pthread_mutex_unlock(&mu);
	return NULL;
}

static void pingpong(long n)
{
	pthread_t a, b;
	rounds = n;
	int64_t t0 = bench_now_ns();
	pthread_create(&a, NULL, player, (void *)0L);
	pthread_create(&b, NULL, player, (void *)1L);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	if (turn != 2 * n) {
		fprintf(stderr, "pthreads: pingpong: %ld turns, want %ld\n", turn, 2 * n);
		exit(1);
	}
	bench_result("pt_pingpong", (double)(bench_now_ns() - t0) / (double)n, "ns/op");
}

struct mailbox {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int full;
	long value;
};

static struct mailbox box[2] = {
	{ PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0 },
	{ PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0 },
};

static void mailbox_put(struct mailbox *b, long v)
{
	pthread_mutex_lock(&b->mu);
	while (b->full)
		pthread_cond_wait(&b->cv, &b->mu);
	b->value = v;
	b->full = 1;
	pthread_cond_signal(&b->cv);
	pthread_mutex_unlock(&b->mu);
}

static long mailbox_take(struct mailbox *b)
{
	pthread_mutex_lock(&b->mu);
	while (!b->full)
		pthread_cond_wait(&b->cv, &b->mu);
	long v = b->value;
	b->full = 0;
	pthread_cond_signal(&b->cv);
	pthread_mutex_unlock(&b->mu);
	return v;
}

/* Thread me takes from box[me] and puts the number plus one in the other
 * box; thread 0 starts with 0 and ends with 2 * rounds. */
static void *mailbox_player(void *arg)
{
	long me = (long)arg, v = 0;
	for (long i = 0; i < rounds; i++) {
		if (me == 0) {
			mailbox_put(&box[1], v);
			v = mailbox_take(&box[0]);
		} else {
			v = mailbox_take(&box[1]);
			mailbox_put(&box[0], v + 1);
		}
	}
	return (void *)v;
}

static void mailbox(long n)
{
	pthread_t a, b;
	void *last = NULL;
	rounds = n;
	int64_t t0 = bench_now_ns();
	pthread_create(&a, NULL, mailbox_player, (void *)0L);
	pthread_create(&b, NULL, mailbox_player, (void *)1L);
	pthread_join(a, &last);
	pthread_join(b, NULL);
	if ((long)last != n) {
		fprintf(stderr, "pthreads: mailbox: ended with %ld, want %ld\n", (long)last, n);
		exit(1);
	}
	bench_result("pt_mailbox", (double)(bench_now_ns() - t0) / (double)n, "ns/op");
}

static sem_t sem[2];

static void *sem_player(void *arg)
{
	long me = (long)arg;
	for (long i = 0; i < rounds; i++) {
		if (me == 0) {
			sem_post(&sem[1]);
			while (sem_wait(&sem[0]) != 0)
				continue; /* EINTR */
		} else {
			while (sem_wait(&sem[1]) != 0)
				continue;
			sem_post(&sem[0]);
		}
	}
	return NULL;
}

static void sempingpong(long n)
{
	pthread_t a, b;
	rounds = n;
	if (sem_init(&sem[0], 0, 0) || sem_init(&sem[1], 0, 0)) {
		perror("pthreads: sempingpong: sem_init");
		exit(1);
	}
	int64_t t0 = bench_now_ns();
	pthread_create(&a, NULL, sem_player, (void *)0L);
	pthread_create(&b, NULL, sem_player, (void *)1L);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	int v0 = -1, v1 = -1;
	sem_getvalue(&sem[0], &v0);
	sem_getvalue(&sem[1], &v1);
	if (v0 != 0 || v1 != 0) {
		fprintf(stderr, "pthreads: sempingpong: values %d %d at the end, want 0 0\n", v0, v1);
		exit(1);
	}
	bench_result("pt_sempingpong", (double)(bench_now_ns() - t0) / (double)n, "ns/op");
}

static pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
static long rw_value, rw_writes;

static void *rw_worker(void *arg)
{
	long n = (long)arg, seen = 0;
	for (long i = 0; i < n; i++) {
		if (i % 64 == 0) {
			pthread_rwlock_wrlock(&rw);
			rw_value++;
			rw_writes++;
			pthread_rwlock_unlock(&rw);
		} else {
			pthread_rwlock_rdlock(&rw);
			seen += rw_value;
			pthread_rwlock_unlock(&rw);
		}
	}
	return (void *)seen;
}

static void rwlock(long n)
{
	enum { THREADS = 4 };
	pthread_t t[THREADS];
	n -= n % THREADS;
	int64_t t0 = bench_now_ns();
	for (int i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, rw_worker, (void *)(n / THREADS));
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	long want = THREADS * ((n / THREADS + 63) / 64);
	if (rw_value != want || rw_writes != want) {
		fprintf(stderr, "pthreads: rwlock: %ld writes, want %ld\n", rw_value, want);
		exit(1);
	}
	bench_result("pt_rwlock", (double)(bench_now_ns() - t0) / (double)n, "ns/op");
}

static long counter;

static void *incrementer(void *arg)
{
	long n = (long)arg;
	for (long i = 0; i < n; i++) {
		pthread_mutex_lock(&mu);
		counter++;
		pthread_mutex_unlock(&mu);
	}
	return NULL;
}

static void contended(long n)
{
	enum { THREADS = 4 };
	pthread_t t[THREADS];
	n -= n % THREADS;
	int64_t t0 = bench_now_ns();
	for (int i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, incrementer, (void *)(n / THREADS));
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	if (counter != n) {
		fprintf(stderr, "pthreads: contended: %ld increments, want %ld\n", counter, n);
		exit(1);
	}
	bench_result("pt_contended", (double)(bench_now_ns() - t0) / (double)n, "ns/op");
}

static long parked_n, arrived;
static int release_all;

static void *parker(void *arg)
{
	pthread_mutex_lock(&mu);
	if (++arrived == parked_n)
		pthread_cond_signal(&cv[1]);
	while (!release_all)
		pthread_cond_wait(&cv[0], &mu);
	pthread_mutex_unlock(&mu);
	return arg;
}

static long rss_kib(void)
{
	long pages = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (!f || fscanf(f, "%ld %ld", &pages, &resident) != 2) {
		fprintf(stderr, "pthreads: cannot read /proc/self/statm\n");
		exit(1);
	}
	fclose(f);
	return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static void parked(long n)
{
	pthread_t *t = calloc((size_t)n, sizeof *t);
	if (!t)
		exit(1);
	parked_n = n;
	long before = rss_kib();
	for (long i = 0; i < n; i++) {
		int err = pthread_create(&t[i], NULL, parker, NULL);
		if (err) {
			fprintf(stderr, "pthreads: parked: thread %ld: %s\n", i, strerror(err));
			exit(1);
		}
	}
	pthread_mutex_lock(&mu);
	while (arrived < n)
		pthread_cond_wait(&cv[1], &mu);
	pthread_mutex_unlock(&mu);
	long after = rss_kib();
	pthread_mutex_lock(&mu);
	release_all = 1;
	pthread_cond_broadcast(&cv[0]);
	pthread_mutex_unlock(&mu);
	for (long i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	bench_result("pt_parked", (double)(after - before) / (double)n, "KiB");
	free(t);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: pthreads create_join|create_join_thread|pingpong|mailbox|"
		                "contended|rwlock|sempingpong|parked [SIZE]\n");
		return 2;
	}
	long n = bench_size(argc - 1, argv + 1, 10000);
	const char *mode = argv[1];
	if (!strcmp(mode, "create_join"))
		create_join(n);
	else if (!strcmp(mode, "create_join_thread"))
		create_join_thread(n);
	else if (!strcmp(mode, "pingpong"))
		pingpong(n);
	else if (!strcmp(mode, "mailbox"))
		mailbox(n);
	else if (!strcmp(mode, "contended"))
		contended(n);
	else if (!strcmp(mode, "rwlock"))
		rwlock(n);
	else if (!strcmp(mode, "sempingpong"))
		sempingpong(n);
	else if (!strcmp(mode, "parked"))
		parked(n);
	else {
		fprintf(stderr, "pthreads: unknown mode '%s'\n", mode);
		return 2;
	}
	return 0;
}
