/* Sleeping: sleep, usleep, nanosleep and clock_nanosleep (relative and
 * TIMER_ABSTIME on CLOCK_MONOTONIC, CLOCK_REALTIME and CLOCK_BOOTTIME),
 * their argument errors (clock_nanosleep returns the error number, the
 * others -1 and errno), each sleeping at least the time asked; the sleeps
 * interrupted by a signal handler (EINTR, the time left in rem, resuming
 * with it; TIMER_ABSTIME leaves rem alone; SA_RESTART does not restart
 * them); and 1000 threads sleeping at once. See legacy.h for the
 * conventions.
 *
 * The interrupting signal comes from a POSIX timer (SIGEV_SIGNAL, SIGUSR1:
 * alarm() stays armed by legacy_start). Such a signal is sent to the
 * process, not to a thread, so those cases run first, while the main thread
 * is the program's only thread: then it is the one interrupted. (Signals
 * sent to one thread with pthread_kill are not used: goshim does not
 * support them for threads that run as goroutines yet.) */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <signal.h>

#include "legacy.h"

static struct timespec ms_ts(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	return ts;
}

/* At least ms milliseconds have passed on CLOCK_MONOTONIC since t0. */
#define CHECK_SLEPT(t0, ms) \
	do { struct timespec dl_ = ts_plus((t0), (ms)); \
	     CHECK_DEADLINE_PASSED(CLOCK_MONOTONIC, &dl_); } while (0)

/* A call returning -1 and setting errno must fail with want. */
#define EXPECT_ERRNO(what, call, want) \
	do { errno = 0; long r_ = (long)(call); int e_ = errno; \
	     if (r_ != -1 || e_ != (want)) \
		FAIL("%s:%d: %s: returned %ld (%s), want -1 %s", __FILE__, __LINE__, (what), r_, \
		     r_ == -1 ? ename(e_) : "no error", ename(want)); \
	     printf("%s: -1 %s\n", (what), ename(want)); \
	} while (0)

/* ------------------------------------------------------------------------
 * Interrupted by a signal handler. Only the main thread exists here. */

static volatile sig_atomic_t fired;
static timer_t timer;

static void on_usr1(int sig)
{
	(void)sig;
	fired++;
}

static void set_handler(int flags)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_usr1;
	sa.sa_flags = flags;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGUSR1, &sa, NULL) != 0)
		FAIL("sigaction: %s", ename(errno));
}

/* SIGUSR1 to the process in 100 ms. */
static void arm(void)
{
	struct itimerspec it;
	memset(&it, 0, sizeof it);
	it.it_value.tv_nsec = 100 * 1000000L;
	fired = 0;
	if (timer_settime(timer, 0, &it, NULL) != 0)
		FAIL("timer_settime: %s", ename(errno));
}

static void check_fired_once(const char *what)
{
	if (fired != 1)
		FAIL("%s: the handler ran %d times, want 1", what, (int)fired);
}

/* rem is the unslept part of asked: more than nothing, at most asked. */
static void check_rem(const char *what, const struct timespec *rem, long asked_ms)
{
	struct timespec zero = { 0, 0 }, asked = ms_ts(asked_ms);
	if (rem->tv_nsec < 0 || rem->tv_nsec >= 1000000000L || ts_cmp(rem, &zero) <= 0 ||
	    ts_cmp(rem, &asked) > 0)
		FAIL("%s: rem {%ld, %ld}, want in (0, %ld ms]", what, (long)rem->tv_sec,
		     rem->tv_nsec, asked_ms);
}

static void t_interrupted(void)
{
	struct sigevent sev;
	struct timespec req, rem, t0;
	sigset_t usr1;

	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	CHECK0(pthread_sigmask(SIG_UNBLOCK, &usr1, NULL));
	memset(&sev, 0, sizeof sev);
	sev.sigev_notify = SIGEV_SIGNAL;
	sev.sigev_signo = SIGUSR1;
	if (timer_create(CLOCK_MONOTONIC, &sev, &timer) != 0)
		FAIL("timer_create: %s", ename(errno));
	set_handler(0);

	/* nanosleep: EINTR, rem; sleeping rem then completes the time. */
	req = ms_ts(300);
	t0 = mono();
	arm();
	EXPECT_ERRNO("nanosleep 300 ms, signal handled after 100 ms", nanosleep(&req, &rem), EINTR);
	CHECK_SLEPT(t0, 100);
	check_fired_once("nanosleep");
	check_rem("nanosleep", &rem, 300);
	printf("nanosleep: rem holds the unslept time (more than 0, at most 300 ms)\n");
	while (nanosleep(&rem, &rem) != 0)
		if (errno != EINTR)
			FAIL("nanosleep(rem): %s", ename(errno));
	CHECK_SLEPT(t0, 300);
	printf("nanosleep(rem, rem) then slept the rest: 300 ms in all\n");

	/* SA_RESTART does not restart a sleep. */
	set_handler(SA_RESTART);
	req = ms_ts(300);
	arm();
	EXPECT_ERRNO("nanosleep with an SA_RESTART handler, signal after 100 ms",
		     nanosleep(&req, &rem), EINTR);
	check_fired_once("nanosleep, SA_RESTART");
	check_rem("nanosleep, SA_RESTART", &rem, 300);
	set_handler(0);

	/* clock_nanosleep returns the error number itself. */
	static const struct { clockid_t c; const char *name; } clocks[] = {
		{ CLOCK_MONOTONIC, "CLOCK_MONOTONIC" }, { CLOCK_REALTIME, "CLOCK_REALTIME" },
	};
	for (unsigned i = 0; i < sizeof clocks / sizeof clocks[0]; i++) {
		req = ms_ts(300);
		t0 = mono();
		arm();
		int rc = clock_nanosleep(clocks[i].c, 0, &req, &rem);
		if (rc != EINTR)
			FAIL("clock_nanosleep(%s) relative, interrupted: returned %d (%s), want EINTR",
			     clocks[i].name, rc, rc == -1 ? "-1" : ename(rc));
		CHECK_SLEPT(t0, 100);
		check_fired_once("clock_nanosleep relative");
		check_rem("clock_nanosleep relative", &rem, 300);
		while ((rc = clock_nanosleep(clocks[i].c, 0, &rem, &rem)) != 0)
			if (rc != EINTR)
				FAIL("clock_nanosleep(rem): %s", ename(rc));
		CHECK_SLEPT(t0, 300);
		printf("clock_nanosleep(%s) relative 300 ms, signal after 100 ms: returned EINTR, "
		       "rem holds the unslept time; sleeping it completed the 300 ms\n",
		       clocks[i].name);
	}

	/* TIMER_ABSTIME: EINTR, rem untouched; the same deadline again. */
	struct timespec dl = ts_after(CLOCK_MONOTONIC, 300);
	struct timespec sentinel = { 12345, 6789 };
	rem = sentinel;
	arm();
	int rc = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &dl, &rem);
	if (rc != EINTR)
		FAIL("clock_nanosleep TIMER_ABSTIME, interrupted: returned %d (%s), want EINTR", rc,
		     rc == -1 ? "-1" : ename(rc));
	check_fired_once("clock_nanosleep TIMER_ABSTIME");
	if (ts_cmp(&rem, &sentinel) != 0)
		FAIL("clock_nanosleep TIMER_ABSTIME, interrupted: rem was written");
	while ((rc = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &dl, &rem)) != 0)
		if (rc != EINTR)
			FAIL("clock_nanosleep TIMER_ABSTIME again: %s", ename(rc));
	CHECK_DEADLINE_PASSED(CLOCK_MONOTONIC, &dl);
	printf("clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME), signal after 100 ms: returned "
	       "EINTR, rem untouched; called again it slept to the deadline\n");

	/* sleep returns the unslept seconds, usleep -1 EINTR. */
	arm();
	unsigned left = sleep(2);
	check_fired_once("sleep");
	if (left < 1 || left > 2)
		FAIL("sleep(2), interrupted after 100 ms: returned %u, want 1 or 2", left);
	printf("sleep(2), signal after 100 ms: returned the unslept seconds\n");
	arm();
	EXPECT_ERRNO("usleep(500000), signal after 100 ms", usleep(500000), EINTR);
	check_fired_once("usleep");

	if (timer_delete(timer) != 0)
		FAIL("timer_delete: %s", ename(errno));
	signal(SIGUSR1, SIG_DFL);
}

/* ------------------------------------------------------------------------
 * Plain sleeps and argument errors. */

static void *sleep_one_second(void *arg)
{
	struct timespec t0 = mono();
	(void)arg;
	if (sleep(1) != 0)
		FAIL("sleep(1) in a thread did not return 0");
	CHECK_SLEPT(t0, 1000);
	return NULL;
}

static void t_sleeps(void)
{
	struct timespec t0, req, rem;
	pthread_t t;

	t0 = mono();
	CHECK0(pthread_create(&t, NULL, sleep_one_second, NULL));
	if (sleep(1) != 0)
		FAIL("sleep(1) did not return 0");
	CHECK_SLEPT(t0, 1000);
	CHECK0(pthread_join(t, NULL));
	printf("sleep(1) in main and in a thread at once: both returned 0 after at least 1 s\n");
	if (sleep(0) != 0)
		FAIL("sleep(0) did not return 0");
	printf("sleep(0): 0\n");

	t0 = mono();
	CHECK(usleep(50000) == 0);
	CHECK_SLEPT(t0, 50);
	CHECK(usleep(0) == 0);
	printf("usleep(50000): 0 after at least 50 ms; usleep(0): 0\n");

	req = ms_ts(100);
	t0 = mono();
	CHECK(nanosleep(&req, &rem) == 0);
	CHECK_SLEPT(t0, 100);
	t0 = mono();
	CHECK(nanosleep(&req, NULL) == 0);
	CHECK_SLEPT(t0, 100);
	req = (struct timespec){ 0, 0 };
	CHECK(nanosleep(&req, NULL) == 0);
	req = (struct timespec){ 0, 1 };
	CHECK(nanosleep(&req, NULL) == 0);
	printf("nanosleep 100 ms (with rem, with NULL rem): 0 after at least 100 ms; 0 and 1 ns: 0\n");
	req = (struct timespec){ 0, 1000000000L };
	EXPECT_ERRNO("nanosleep, tv_nsec 1000000000", nanosleep(&req, NULL), EINVAL);
	req = (struct timespec){ 0, -1 };
	EXPECT_ERRNO("nanosleep, tv_nsec -1", nanosleep(&req, NULL), EINVAL);
	req = (struct timespec){ -1, 0 };
	EXPECT_ERRNO("nanosleep, tv_sec -1", nanosleep(&req, NULL), EINVAL);

	static const struct { clockid_t c; const char *name; } clocks[] = {
		{ CLOCK_MONOTONIC, "CLOCK_MONOTONIC" }, { CLOCK_REALTIME, "CLOCK_REALTIME" },
		{ CLOCK_BOOTTIME, "CLOCK_BOOTTIME" },
	};
	for (unsigned i = 0; i < sizeof clocks / sizeof clocks[0]; i++) {
		clockid_t c = clocks[i].c;
		req = ms_ts(50);
		t0 = mono();
		CHECK0(clock_nanosleep(c, 0, &req, &rem));
		CHECK_SLEPT(t0, 50);
		struct timespec dl = ts_after(c, 50);
		CHECK0(clock_nanosleep(c, TIMER_ABSTIME, &dl, NULL));
		CHECK_DEADLINE_PASSED(c, &dl);
		dl = ts_after(c, -1000);	/* in the past */
		CHECK0(clock_nanosleep(c, TIMER_ABSTIME, &dl, NULL));
		printf("clock_nanosleep(%s): relative 50 ms and TIMER_ABSTIME now+50 ms returned 0 "
		       "once the time had passed; a deadline in the past: 0\n", clocks[i].name);
	}

	/* Errors come back as the return value. */
	struct timespec bad_nsec = { 0, 1000000000L }, neg_nsec = { 0, -1 }, neg_sec = { -1, 0 };
	struct timespec bad_abs = ts_bad_nsec(CLOCK_MONOTONIC), ok = ms_ts(1);
	EXPECT("clock_nanosleep relative, tv_nsec 1000000000",
	       clock_nanosleep(CLOCK_MONOTONIC, 0, &bad_nsec, NULL), EINVAL);
	EXPECT("clock_nanosleep relative, tv_nsec -1",
	       clock_nanosleep(CLOCK_MONOTONIC, 0, &neg_nsec, NULL), EINVAL);
	EXPECT("clock_nanosleep relative, tv_sec -1",
	       clock_nanosleep(CLOCK_MONOTONIC, 0, &neg_sec, NULL), EINVAL);
	EXPECT("clock_nanosleep TIMER_ABSTIME, tv_nsec 1000000000",
	       clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &bad_abs, NULL), EINVAL);
	EXPECT("clock_nanosleep(CLOCK_REALTIME) TIMER_ABSTIME, tv_nsec -1",
	       clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &neg_nsec, NULL), EINVAL);
	EXPECT("clock_nanosleep(CLOCK_THREAD_CPUTIME_ID)",
	       clock_nanosleep(CLOCK_THREAD_CPUTIME_ID, 0, &ok, NULL), EINVAL);
	EXPECT("clock_nanosleep(clock 1234)", clock_nanosleep((clockid_t)1234, 0, &ok, NULL),
	       EINVAL);

	/* Clocks that cannot be slept on: Linux says EOPNOTSUPP (ENOTSUP);
	 * whatever it says natively is what is printed and must match. */
	static const struct { clockid_t c; const char *name; } nosleep[] = {
		{ CLOCK_MONOTONIC_RAW, "CLOCK_MONOTONIC_RAW" },
		{ CLOCK_MONOTONIC_COARSE, "CLOCK_MONOTONIC_COARSE" },
		{ CLOCK_REALTIME_COARSE, "CLOCK_REALTIME_COARSE" },
	};
	for (unsigned i = 0; i < sizeof nosleep / sizeof nosleep[0]; i++) {
		int rc = clock_nanosleep(nosleep[i].c, 0, &ok, NULL);
		if (rc != ENOTSUP && rc != EINVAL)
			FAIL("clock_nanosleep(%s): returned %d (%s), want ENOTSUP or EINVAL",
			     nosleep[i].name, rc, rc == -1 ? "-1" : ename(rc));
		printf("clock_nanosleep(%s): %s\n", nosleep[i].name, ename(rc));
	}
}

/* ------------------------------------------------------------------------
 * Many threads sleeping at once, each with one of the calls. */

#define NSLEEPERS 1000
#define SLEEP_MS 20

static struct gate go = GATE_INIT;
static int done;

static void *sleeper(void *arg)
{
	int i = (int)(intptr_t)arg;
	struct timespec req = ms_ts(SLEEP_MS), t0, dl;

	gate_wait(&go);
	t0 = mono();
	switch (i % 6) {
	case 0:
		CHECK(nanosleep(&req, NULL) == 0);
		break;
	case 1:
		CHECK(usleep(SLEEP_MS * 1000) == 0);
		break;
	case 2:
		CHECK0(clock_nanosleep(CLOCK_MONOTONIC, 0, &req, NULL));
		break;
	case 3:
		dl = ts_after(CLOCK_MONOTONIC, SLEEP_MS);
		CHECK0(clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &dl, NULL));
		CHECK_DEADLINE_PASSED(CLOCK_MONOTONIC, &dl);
		break;
	case 4:
		CHECK0(clock_nanosleep(CLOCK_REALTIME, 0, &req, NULL));
		break;
	case 5:
		dl = ts_after(CLOCK_REALTIME, SLEEP_MS);
		CHECK0(clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &dl, NULL));
		CHECK_DEADLINE_PASSED(CLOCK_REALTIME, &dl);
		break;
	}
	if (i % 6 != 5)	/* (that one's clock may be set meanwhile) */
		CHECK_SLEPT(t0, SLEEP_MS);
	__atomic_add_fetch(&done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

static void t_many(void)
{
	static pthread_t t[NSLEEPERS];
	pthread_attr_t a;

	CHECK0(pthread_attr_init(&a));
	CHECK0(pthread_attr_setstacksize(&a, 256 * 1024));
	for (int i = 0; i < NSLEEPERS; i++)
		CHECK0(pthread_create(&t[i], &a, sleeper, (void *)(intptr_t)i));
	CHECK0(pthread_attr_destroy(&a));
	gate_await_waiters(&go, NSLEEPERS);
	struct timespec t0 = mono();
	gate_open(&go);
	for (int i = 0; i < NSLEEPERS; i++)
		CHECK0(pthread_join(t[i], NULL));
	CHECK_SLEPT(t0, SLEEP_MS);
	CHECK(done == NSLEEPERS);
	printf("%d threads slept %d ms at once (nanosleep, usleep, clock_nanosleep relative and "
	       "absolute on CLOCK_MONOTONIC and CLOCK_REALTIME): each returned 0 after at least "
	       "%d ms\n", NSLEEPERS, SLEEP_MS, SLEEP_MS);
}

int main(void)
{
	legacy_start();
	t_interrupted();	/* first: the main thread must be the only thread */
	t_sleeps();
	t_many();
	printf("sleep: all checks passed\n");
	return 0;
}
