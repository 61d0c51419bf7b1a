/* Shared by the legacy pthread programs (tests/legacy/): plain pthread
 * code that knows nothing of goshim. tests/legacy/run.sh runs each program
 * natively and then under LD_PRELOAD=libgoshim.so and requires the same
 * stdout and exit status, so everything printed here must be deterministic:
 * no times, no addresses, no thread ids, no scheduling-dependent order.
 *
 * Conventions: a check that fails prints "FAIL: ..." and exits 1; alarm(60)
 * (legacy_start) turns a hang into a failure; timeouts are checked as "the
 * call returned ETIMEDOUT and its clock has reached the deadline", never as
 * an upper bound. */
#ifndef GOSHIM_LEGACY_H
#define GOSHIM_LEGACY_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The errno values these programs meet, by name (numbers differ between
 * architectures; names make the expected output readable). */
static inline const char *ename(int e)
{
	static __thread char buf[32];
	switch (e) {
	case 0: return "0";
	case EPERM: return "EPERM";
	case ENOENT: return "ENOENT";
	case ESRCH: return "ESRCH";
	case EINTR: return "EINTR";
	case EAGAIN: return "EAGAIN";
	case ENOMEM: return "ENOMEM";
	case EBUSY: return "EBUSY";
	case EINVAL: return "EINVAL";
	case ERANGE: return "ERANGE";
	case EDEADLK: return "EDEADLK";
	case ENOSYS: return "ENOSYS";
	case ENOTSUP: return "ENOTSUP";
	case EOVERFLOW: return "EOVERFLOW";
	case ETIMEDOUT: return "ETIMEDOUT";
	case EOWNERDEAD: return "EOWNERDEAD";
	case ENOTRECOVERABLE: return "ENOTRECOVERABLE";
	}
	snprintf(buf, sizeof buf, "errno %d", e);
	return buf;
}

__attribute__((noreturn, format(printf, 1, 2)))
static inline void legacy_fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("FAIL: ", stdout);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
	_exit(1);
}

#define FAIL(...) legacy_fail(__VA_ARGS__)
#define CHECK(cond) \
	do { if (!(cond)) FAIL("%s:%d: %s", __FILE__, __LINE__, #cond); } while (0)
/* A pthread-style call (returns 0 or an error number) that must succeed. */
#define CHECK0(call) \
	do { int rc_ = (call); \
	     if (rc_ != 0) FAIL("%s:%d: %s returned %s", __FILE__, __LINE__, #call, ename(rc_)); \
	} while (0)
/* Checks that rc is want, then prints "what: NAME". */
#define EXPECT(what, rc, want) legacy_expect((what), (rc), (want), __FILE__, __LINE__)

static inline void legacy_expect(const char *what, int rc, int want, const char *file, int line)
{
	if (rc != want)
		FAIL("%s:%d: %s: got %s, want %s", file, line, what, ename(rc), ename(want));
	printf("%s: %s\n", what, ename(rc));
}

static inline void legacy_start(void)
{
	alarm(60);
	/* Keep the output order exact even if a FAIL is printed by a thread. */
	setvbuf(stdout, NULL, _IOLBF, 0);
}

/* Busy-waits until cond holds, as the destroy-and-reuse cases need (a
 * spinning thread hits the window right after a release), yielding every
 * 256 rounds so that one CPU (GOMAXPROCS=1) lets the other thread run. */
#define SPIN_UNTIL(cond)                                                                   \
	do {                                                                               \
		for (int spin_n_ = 1; !(cond); spin_n_++)                                  \
			if (spin_n_ % 256 == 0)                                            \
				sched_yield();                                             \
	} while (0)

/* ------------------------------------------------------------------------
 * Time: absolute deadlines and the "at least this long" check. */

static inline struct timespec ts_now(clockid_t c)
{
	struct timespec ts;
	if (clock_gettime(c, &ts) != 0)
		FAIL("clock_gettime(%d): %s", (int)c, ename(errno));
	return ts;
}

static inline struct timespec mono(void)
{
	return ts_now(CLOCK_MONOTONIC);
}

/* t + ms milliseconds (ms >= 0). */
static inline struct timespec ts_plus(struct timespec t, long ms)
{
	t.tv_sec += ms / 1000;
	t.tv_nsec += (ms % 1000) * 1000000L;
	if (t.tv_nsec >= 1000000000L) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000L;
	}
	return t;
}

static inline struct timespec ts_after(clockid_t c, long ms)
{
	return ts_plus(ts_now(c), ms);
}

static inline int ts_cmp(const struct timespec *a, const struct timespec *b)
{
	if (a->tv_sec != b->tv_sec)
		return a->tv_sec < b->tv_sec ? -1 : 1;
	if (a->tv_nsec != b->tv_nsec)
		return a->tv_nsec < b->tv_nsec ? -1 : 1;
	return 0;
}

/* A call that timed out at deadline (on clock c) must not return early. */
#define CHECK_DEADLINE_PASSED(c, deadline) \
	do { struct timespec now_ = ts_now(c); \
	     if (ts_cmp(&now_, (deadline)) < 0) \
		FAIL("%s:%d: timed out before its deadline", __FILE__, __LINE__); \
	} while (0)

/* A deadline with tv_nsec out of range (EINVAL where it is checked). */
static inline struct timespec ts_bad_nsec(clockid_t c)
{
	struct timespec ts = ts_after(c, 1000);
	ts.tv_nsec = 1000000000L;
	return ts;
}

static inline void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* ------------------------------------------------------------------------
 * A gate: threads block in gate_wait until gate_open. */

struct gate {
	pthread_mutex_t m;
	pthread_cond_t c;
	int open;
	int arrived;	/* threads that have entered gate_wait */
};
#define GATE_INIT { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0 }

static inline void gate_init(struct gate *g)
{
	CHECK0(pthread_mutex_init(&g->m, NULL));
	CHECK0(pthread_cond_init(&g->c, NULL));
	g->open = 0;
	g->arrived = 0;
}

static inline void gate_wait(struct gate *g)
{
	CHECK0(pthread_mutex_lock(&g->m));
	g->arrived++;
	CHECK0(pthread_cond_broadcast(&g->c));
	while (!g->open)
		CHECK0(pthread_cond_wait(&g->c, &g->m));
	CHECK0(pthread_mutex_unlock(&g->m));
}

/* Blocks until n threads have entered gate_wait (before gate_open: until n
 * threads are blocked in it). */
static inline void gate_await_waiters(struct gate *g, int n)
{
	CHECK0(pthread_mutex_lock(&g->m));
	while (g->arrived < n)
		CHECK0(pthread_cond_wait(&g->c, &g->m));
	CHECK0(pthread_mutex_unlock(&g->m));
}

static inline void gate_open(struct gate *g)
{
	CHECK0(pthread_mutex_lock(&g->m));
	g->open = 1;
	CHECK0(pthread_cond_broadcast(&g->c));
	CHECK0(pthread_mutex_unlock(&g->m));
}

/* Runs fn(arg) in a new thread and returns what it returned. */
static inline void *run_in_thread(void *(*fn)(void *), void *arg)
{
	pthread_t t;
	void *ret;
	CHECK0(pthread_create(&t, NULL, fn, arg));
	CHECK0(pthread_join(t, &ret));
	return ret;
}

#endif
