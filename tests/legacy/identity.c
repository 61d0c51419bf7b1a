/* Per-thread identity across blocking calls: __thread variables, errno and
 * pthread_setspecific values stay each thread's own (same values, same
 * addresses) however often a thread blocks and wherever it resumes (the
 * kernel thread under each check is recorded, and the moves between them
 * counted: natively a thread never moves; preloaded at GOMAXPROCS=2 the
 * threads must have moved, or the checks proved nothing; the program reads
 * LD_PRELOAD and GOMAXPROCS for that one check, and prints the same
 * either way); stdio
 * locks (flockfile held across a sleep) belong to one thread; memory moves
 * between threads' malloc arenas; setuid/setgid from a thread; ctype and
 * sched_getcpu in threads. See legacy.h for the conventions. */
#include "legacy.h"

#include <ctype.h>
#include <stddef.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/syscall.h>

#define NTHREADS 1000	/* even: threads 2k and 2k+1 are partners */
#define ROUNDS 10

static __thread int tl_value;
static __thread int tl_zero;	/* .tbss: starts 0 in every thread */
static __thread int tl_init = 12345;	/* .tdata: starts 12345 in every thread */
static pthread_key_t key;
static FILE *shared_file;
static struct gate all_parked = GATE_INIT;
static atomic_long checks;
static atomic_long moves;	/* checks on another kernel thread than the last */

struct pair {
	pthread_mutex_t m;
	pthread_cond_t c;
	int turn;	/* whose turn: 0 or 1 */
	void *gift;	/* a malloc'd block handed to the partner */
};

struct worker {
	int idx;
	struct pair *pair;
	uintptr_t tl_addr, errno_addr;	/* for the uniqueness check */
	int cpu;
	long kernel_tid;	/* the kernel thread under the last check */
};

static struct pair pairs[NTHREADS / 2];
static struct worker workers[NTHREADS];

/* Fresh look-ups each call (errno's __errno_location is declared const, and
 * the compiler may keep a thread-local address across calls otherwise). */
__attribute__((noipa)) static int *tl_addr_fresh(void)
{
	return &tl_value;
}

__attribute__((noipa)) static int *errno_addr_fresh(void)
{
	return &errno;
}

static void check_identity(struct worker *w, const char *after)
{
	int want_errno = 10000 + w->idx;
	int e = errno;	/* the compiler's (possibly cached) view */
	if (e != want_errno)
		FAIL("thread %d after %s: errno %d, want %d", w->idx, after, e, want_errno);
	if (*errno_addr_fresh() != want_errno)
		FAIL("thread %d after %s: errno (fresh) %d, want %d", w->idx, after, *errno_addr_fresh(),
		     want_errno);
	if ((uintptr_t)errno_addr_fresh() != w->errno_addr)
		FAIL("thread %d after %s: &errno moved", w->idx, after);
	if (tl_value != 7 * w->idx + 1)
		FAIL("thread %d after %s: __thread value %d, want %d", w->idx, after, tl_value,
		     7 * w->idx + 1);
	if (*tl_addr_fresh() != 7 * w->idx + 1)
		FAIL("thread %d after %s: __thread value (fresh) %d", w->idx, after, *tl_addr_fresh());
	if ((uintptr_t)tl_addr_fresh() != w->tl_addr)
		FAIL("thread %d after %s: address of a __thread variable moved", w->idx, after);
	if (tl_zero != w->idx || tl_init != 12345 + w->idx)
		FAIL("thread %d after %s: .tbss/.tdata values %d/%d", w->idx, after, tl_zero, tl_init);
	if (pthread_getspecific(key) != (void *)(uintptr_t)(w->idx + 1))
		FAIL("thread %d after %s: pthread_getspecific %p", w->idx, after,
		     pthread_getspecific(key));
	long tid = syscall(SYS_gettid);
	if (w->kernel_tid && tid != w->kernel_tid)
		atomic_fetch_add_explicit(&moves, 1, memory_order_relaxed);
	w->kernel_tid = tid;
	atomic_fetch_add_explicit(&checks, 1, memory_order_relaxed);
	errno = want_errno;
}

static int preloaded_on_two(void)
{
	const char *pre = getenv("LD_PRELOAD"), *procs = getenv("GOMAXPROCS");
	return pre && strstr(pre, "libgoshim") && procs && strcmp(procs, "2") == 0;
}

/* One hand-off with the partner: wait for our turn, pass it on. */
static void ping(struct worker *w, void *gift_out, void **gift_in)
{
	struct pair *p = w->pair;
	int me = w->idx & 1;
	CHECK0(pthread_mutex_lock(&p->m));
	while (p->turn != me)
		CHECK0(pthread_cond_wait(&p->c, &p->m));
	if (gift_in)
		*gift_in = p->gift;
	p->gift = gift_out;
	p->turn = !me;
	CHECK0(pthread_cond_signal(&p->c));
	CHECK0(pthread_mutex_unlock(&p->m));
}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
static int call_pthread_yield(void)
{
	return pthread_yield();
}
#pragma GCC diagnostic pop

static void *worker(void *arg)
{
	struct worker *w = arg;

	if (tl_value != 0 || tl_zero != 0 || tl_init != 12345)
		FAIL("thread %d: thread-locals do not start at their initial values", w->idx);
	if (pthread_getspecific(key) != NULL)
		FAIL("thread %d: pthread_getspecific does not start NULL", w->idx);
	tl_value = 7 * w->idx + 1;
	tl_zero = w->idx;
	tl_init += w->idx;
	CHECK0(pthread_setspecific(key, (void *)(uintptr_t)(w->idx + 1)));
	w->tl_addr = (uintptr_t)tl_addr_fresh();
	w->errno_addr = (uintptr_t)errno_addr_fresh();
	errno = 10000 + w->idx;
	check_identity(w, "start");

	for (int r = 0; r < ROUNDS; r++) {
		/* A malloc'd block goes to the partner, which checks and frees it. */
		size_t size = 1 + (size_t)((w->idx * 131 + r * 977) % 3000);
		unsigned char *mine = malloc(size);
		CHECK(mine != NULL);
		memset(mine, (w->idx + r) & 0xff, size);
		mine[0] = (unsigned char)(size & 0xff);
		void *got = NULL;
		errno = 10000 + w->idx;
		ping(w, mine, (w->idx & 1) ? &got : NULL);
		check_identity(w, "a mutex/cond hand-off");
		ping(w, NULL, (w->idx & 1) ? NULL : &got);
		check_identity(w, "a mutex/cond hand-off");
		/* got: the partner's block of this round. */
		int partner = w->idx ^ 1;
		size_t psize = 1 + (size_t)((partner * 131 + r * 977) % 3000);
		unsigned char *b = got;
		CHECK(b != NULL);
		if (b[0] != (unsigned char)(psize & 0xff))
			FAIL("thread %d: block from thread %d damaged", w->idx, partner);
		for (size_t i = 1; i < psize; i++)
			if (b[i] != ((partner + r) & 0xff))
				FAIL("thread %d: block from thread %d damaged", w->idx, partner);
		free(b);
		check_identity(w, "free of a block malloc'd by another thread");

		CHECK(usleep(100) == 0);
		check_identity(w, "usleep(100)");
		CHECK(sched_yield() == 0);
		check_identity(w, "sched_yield");
		CHECK(call_pthread_yield() == 0);
		check_identity(w, "pthread_yield");
	}

	/* stdio's lock belongs to this thread while it sleeps holding it. */
	flockfile(shared_file);
	fprintf(shared_file, "T%d begin", w->idx);
	check_identity(w, "fprintf");
	CHECK(usleep(100) == 0);
	check_identity(w, "usleep holding flockfile");
	flockfile(shared_file);	/* recursive, by the owner */
	fprintf(shared_file, " end T%d\n", w->idx);
	funlockfile(shared_file);
	funlockfile(shared_file);
	check_identity(w, "funlockfile");

	/* ctype (per-thread locale tables) and sched_getcpu. */
	if (!isalpha('q') || isalpha('7') || toupper('q') != 'Q' || tolower('Q') != 'q' ||
	    !isdigit('7') || !isspace('\t'))
		FAIL("thread %d: ctype answers wrong", w->idx);
	w->cpu = sched_getcpu();
	check_identity(w, "ctype and sched_getcpu");

	gate_wait(&all_parked);
	check_identity(w, "the final wait");
	return NULL;
}

static void *do_setxid(void *arg)
{
	int *rc = arg;
	rc[0] = setuid(getuid()) == 0 ? 0 : errno;
	rc[1] = setgid(getgid()) == 0 ? 0 : errno;
	return NULL;
}

static int cmp_uptr(const void *a, const void *b)
{
	uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
	return x < y ? -1 : x > y;
}

static void check_unique(const char *what, size_t offset)
{
	static uintptr_t v[NTHREADS];
	for (int i = 0; i < NTHREADS; i++)
		v[i] = *(uintptr_t *)((char *)&workers[i] + offset);
	qsort(v, NTHREADS, sizeof v[0], cmp_uptr);
	for (int i = 1; i < NTHREADS; i++)
		if (v[i] == v[i - 1])
			FAIL("two live threads share one %s", what);
	printf("%d live threads have %d distinct %s\n", NTHREADS, NTHREADS, what);
}

static void check_file(void)
{
	static char seen[NTHREADS];
	char line[128];
	int n = 0;

	rewind(shared_file);
	while (fgets(line, sizeof line, shared_file)) {
		int a, b, end;
		if (sscanf(line, "T%d begin end T%d%n", &a, &b, &end) != 2 || line[end] != '\n' ||
		    a != b || a < 0 || a >= NTHREADS)
			FAIL("flockfile: interleaved or damaged line: %s", line);
		if (seen[a]++)
			FAIL("flockfile: thread %d wrote twice", a);
		n++;
	}
	if (n != NTHREADS)
		FAIL("flockfile: %d lines, want %d", n, NTHREADS);
	printf("flockfile held across usleep: %d whole lines, one per thread\n", n);
}

int main(void)
{
	static pthread_t t[NTHREADS];
	pthread_attr_t attr;

	legacy_start();
	CHECK0(pthread_key_create(&key, NULL));
	shared_file = tmpfile();
	CHECK(shared_file != NULL);
	for (int i = 0; i < NTHREADS / 2; i++) {
		CHECK0(pthread_mutex_init(&pairs[i].m, NULL));
		CHECK0(pthread_cond_init(&pairs[i].c, NULL));
	}
	/* Small stacks: 1000 native threads at once. */
	CHECK0(pthread_attr_init(&attr));
	CHECK0(pthread_attr_setstacksize(&attr, 256 * 1024));
	for (int i = 0; i < NTHREADS; i++) {
		workers[i].idx = i;
		workers[i].pair = &pairs[i / 2];
		CHECK0(pthread_create(&t[i], &attr, worker, &workers[i]));
	}
	CHECK0(pthread_attr_destroy(&attr));

	gate_await_waiters(&all_parked, NTHREADS);
	printf("%d threads: __thread (.tdata, .tbss), errno and pthread_getspecific values "
	       "unchanged after %d rounds of mutex/cond hand-offs, usleep, sched_yield, "
	       "pthread_yield, cross-thread free\n", NTHREADS, ROUNDS);
	check_unique("addresses of a __thread variable", offsetof(struct worker, tl_addr));
	check_unique("errno addresses", offsetof(struct worker, errno_addr));

	/* setuid/setgid reach every thread (glibc signals each); 1000 are parked. */
	int rc[2] = { -1, -1 };
	run_in_thread(do_setxid, rc);
	EXPECT("setuid(getuid()) in a thread, 1000 threads parked", rc[0], 0);
	EXPECT("setgid(getgid()) in a thread, 1000 threads parked", rc[1], 0);

	gate_open(&all_parked);
	for (int i = 0; i < NTHREADS; i++)
		CHECK0(pthread_join(t[i], NULL));
	long want = (long)NTHREADS * (ROUNDS * 6 + 6);
	if (atomic_load(&checks) != want)
		FAIL("%ld identity checks, want %ld", atomic_load(&checks), want);
	const char *pre = getenv("LD_PRELOAD");
	if (!(pre && strstr(pre, "libgoshim")) && atomic_load(&moves) != 0)
		FAIL("natively, threads moved between kernel threads %ld times", atomic_load(&moves));
	if (preloaded_on_two() && atomic_load(&moves) == 0)
		FAIL("preloaded at GOMAXPROCS=2, no thread resumed on another kernel thread: "
		     "the checks saw no migration");
	printf("%ld identity checks passed\n", want);

	for (int i = 0; i < NTHREADS; i++)
		if (workers[i].cpu < 0)
			FAIL("sched_getcpu in thread %d returned %d", i, workers[i].cpu);
	printf("sched_getcpu >= 0 in every thread; ctype works in every thread\n");
	check_file();
	printf("identity: all checks passed\n");
	return 0;
}
