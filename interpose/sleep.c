/*
 * sleep, usleep, nanosleep and clock_nanosleep park the goroutine on a
 * timer (Go's timeSleep) instead of blocking its thread.
 *
 * Semantics kept: EINVAL for a bad timespec or clock; clock_nanosleep
 * returns the error number; TIMER_ABSTIME sleeps until the clock reads the
 * given time (converted to the monotonic clock once, at the call: a
 * CLOCK_REALTIME step during the sleep is not followed); the sleeps are
 * cancellation points. A signal handler interrupts a sleep with EINTR and
 * the time that remained, as natively: a goroutine locked to its thread
 * (main) sleeps in the kernel between entersyscall and exitsyscall, and a
 * parked one's wait is ended by pthread_kill (park_interrupt), its
 * handler running as it leaves the runtime. Clocks the timers cannot
 * follow (CPU-time clocks) sleep in the kernel.
 */
#include <dlfcn.h>
#include <stdlib.h>
#include <unistd.h>

#include "interpose/interpose.h"

static struct {
	__typeof(nanosleep) *nanosleep;
	__typeof(clock_nanosleep) *clock_nanosleep;
} sleep_real;

void sleep_init(void)
{
	sleep_real.nanosleep = (__typeof(nanosleep) *)dlsym(RTLD_NEXT, "nanosleep");
	sleep_real.clock_nanosleep =
		(__typeof(clock_nanosleep) *)dlsym(RTLD_NEXT, "clock_nanosleep");
	if (!sleep_real.nanosleep || !sleep_real.clock_nanosleep) {
		printerr("goshim: cannot resolve nanosleep\n");
		abort();
	}
}

/* Parks until the nanotime deadline (a cancellation point): 0, or EINTR
 * once a signal's handler has run. */
static int park_until(int64_t deadline)
{
	bool cancelable = cancel_enabled();
	struct g *gp = interpose_enter();
	int r;
	do {
		park_prepare(deadline, (cancelable ? PARK_CANCEL : 0) | PARK_INTR);
		r = park_wait(waitReasonSleep);
	} while (r == EINTR && !park_sigs(gp)); /* taken meanwhile: sleep on */
	interpose_leave(); /* runs the handler of the signal that ended it */
	if (r == ECANCELED)
		pthread_testcancel(); /* acts on it: does not return */
	return r == EINTR ? EINTR : 0;
}

/* What remains of a relative sleep that ends at deadline. */
static void remaining(int64_t deadline, struct timespec *rem)
{
	if (!rem)
		return;
	int64_t left = deadline - nanotime();
	if (left < 0)
		left = 0;
	rem->tv_sec = left / 1000000000;
	rem->tv_nsec = left % 1000000000;
}

static bool sleeps_here(void)
{
	return interposing() && may_enter_runtime() && parks_here();
}

/* A sleep in the kernel, its P handed off meanwhile (unless the runtime
 * may not be entered here: then just glibc's). */
static int kernel_sleep(clockid_t c, int flags, const struct timespec *req, struct timespec *rem)
{
	SYS_CALL_SCOPE(sc);
	int r = sleep_real.clock_nanosleep(c, flags, req, rem);
	sys_call_end(&sc);
	return r;
}

static int64_t deadline_after(const struct timespec *req)
{
	int64_t now = nanotime();
	if (req->tv_sec > (INT64_MAX - now) / 1000000000 - 1)
		return INT64_MAX;
	int64_t d = now + (int64_t)req->tv_sec * 1000000000 + req->tv_nsec;
	return d > now ? d : 0;
}

static bool parkable_clock(clockid_t c)
{
	return c == CLOCK_REALTIME || c == CLOCK_MONOTONIC || c == CLOCK_BOOTTIME ||
	       c == CLOCK_TAI;
}

EXPORT int clock_nanosleep(clockid_t c, int flags, const struct timespec *req, struct timespec *rem)
{
	if (!req || req->tv_nsec < 0 || req->tv_nsec >= 1000000000L || (flags & ~TIMER_ABSTIME))
		return EINVAL;
	if (!parkable_clock(c) || !sleeps_here())
		return kernel_sleep(c, flags, req, rem);
	if (flags & TIMER_ABSTIME) {
		int err;
		int64_t deadline = deadline_from(c, req, &err);
		if (err)
			return err;
		return park_until(deadline); /* rem is not set for an absolute time */
	}
	if (req->tv_sec < 0)
		return EINVAL;
	int64_t deadline = deadline_after(req);
	if (!deadline) {
		pthread_testcancel();
		return 0;
	}
	int r = park_until(deadline);
	if (r == EINTR)
		remaining(deadline, rem);
	return r;
}

EXPORT int nanosleep(const struct timespec *req, struct timespec *rem)
{
	int r;
	if (!sleeps_here()) {
		if (!interposing() || !may_enter_runtime())
			return sleep_real.nanosleep(req, rem);
		r = kernel_sleep(CLOCK_REALTIME, 0, req, rem);
	} else {
		r = clock_nanosleep(CLOCK_MONOTONIC, 0, req, rem);
	}
	if (r) {
		errno = r;
		return -1;
	}
	return 0;
}

EXPORT int usleep(useconds_t us)
{
	struct timespec ts = {us / 1000000, (long)(us % 1000000) * 1000};
	return nanosleep(&ts, NULL);
}

EXPORT unsigned int sleep(unsigned int sec)
{
	struct timespec ts = {sec, 0}, rem = {0, 0};
	int e = errno;
	if (nanosleep(&ts, &rem) != 0)
		return (unsigned int)rem.tv_sec; /* whole seconds, as glibc's */
	errno = e;
	return 0;
}

SYMVER(nanosleep, V_BASE);
SYMVER(clock_nanosleep, V_2_17);
SYMVER(usleep, V_BASE);
SYMVER(sleep, V_BASE);
