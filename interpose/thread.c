/*
 * pthread_create and friends: every thread the program creates is a
 * pthread-goroutine (runtime/thread.c) with its own glibc identity
 * (runtime/tls.c). Threads the runtime did not create (main, threads made
 * before interposition started) keep glibc's functions for join/detach;
 * pthread_self, keys, once and the cancellation state need no interposing
 * because each goroutine's identity is a real struct pthread.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "interpose/interpose.h"

static bool all_cpus(const uint64_t *cpus)
{
	for (int i = 0; i < THREAD_CPU_WORDS; i++)
		if (cpus[i] != UINT64_MAX)
			return false;
	return true;
}

/* Reads what glibc's attribute getters report; the affinity is the
 * attribute's, else the creator's (recorded: see below). */
static int attr_read(const pthread_attr_t *attr, struct thread_attr *a)
{
	*a = (struct thread_attr){0};
	a->guardsize = (size_t)sysconf(_SC_PAGESIZE);
	struct gthread *self = thread_self();
	if (self && self->has_cpus) {
		a->has_cpus = true;
		memcpy(a->cpus, self->cpus, sizeof a->cpus);
	}
	if (!attr)
		return 0;
	/* glibc reports every CPU when the attribute has no affinity. */
	uint64_t cpus[THREAD_CPU_WORDS];
	if (pthread_attr_getaffinity_np(attr, sizeof cpus, (cpu_set_t *)cpus) == 0 &&
	    !all_cpus(cpus)) {
		a->has_cpus = true;
		memcpy(a->cpus, cpus, sizeof a->cpus);
	}
	int ds;
	size_t size, guard, ssize;
	void *lo;
	if (pthread_attr_getdetachstate(attr, &ds) || pthread_attr_getstacksize(attr, &size) ||
	    pthread_attr_getguardsize(attr, &guard) || pthread_attr_getstack(attr, &lo, &ssize))
		return EINVAL;
	a->detached = ds == PTHREAD_CREATE_DETACHED;
	a->guardsize = guard;
	sigset_t set;
	if (pthread_attr_getsigmask_np(attr, &set) == 0) {
		a->has_sigmask = true;
		memcpy(&a->sigmask, &set, sizeof a->sigmask);
	}
	a->stacksize = size == thread_default_stacksize() ? 0 : size;
	/* glibc keeps the top of a user stack and reports top - size: without
	 * one (top NULL) that wraps to exactly 0. */
	if ((uintptr_t)lo + ssize != 0) {
		a->stackaddr = lo;
		a->stacksize = ssize;
	}
	return 0;
}

EXPORT int goshim_pthread_create(pthread_t *t, const pthread_attr_t *attr,
                                 void *(*start)(void *), void *arg)
{
	if (!interposing())
		return real.pthread_create(t, attr, start, arg);
	struct thread_attr a;
	int err = attr_read(attr, &a);
	if (err)
		return err;
	interpose_enter();
	err = thread_create(&a, start, arg, t, (uintptr_t)__builtin_return_address(0));
	interpose_leave();
	if (!err)
		atomic_fetch_add_explicit(&interposed_threads, 1, memory_order_relaxed);
	return err;
}
INTERPOSE(pthread_create, "GLIBC_2.34");
INTERPOSE_COMPAT(pthread_create, V_BASE, base);

/* The common part of the joins: deadline is computed only when the call
 * has to wait, as glibc checks the timeout only then. */
static int join(pthread_t t, void **ret, bool try, clockid_t c, const struct timespec *abstime)
{
	struct gthread *th = thread_joinable_of(t);
	bool cancelable = false;
	if (!try) {
		pthread_testcancel(); /* a cancellation point */
		cancelable = cancel_enabled();
	}
	interpose_enter();
	int err = thread_join(th, 0, true, false, ret);
	if (err == EBUSY && !try) {
		int64_t deadline = 0;
		err = 0;
		if (abstime)
			deadline = deadline_from(c, abstime, &err);
		while (!err) {
			err = thread_join(th, deadline, false, cancelable, ret);
			if (err != EINTR)
				break;
			/* A signal's handler runs, or the cancel acts. */
			interpose_leave();
			pthread_testcancel();
			interpose_enter();
			err = 0;
		}
	}
	interpose_leave();
	return err;
}

EXPORT int goshim_pthread_join(pthread_t t, void **ret)
{
	if (!interposing() || !thread_joinable_of(t))
		return real.pthread_join(t, ret);
	return join(t, ret, false, CLOCK_REALTIME, NULL);
}
INTERPOSE(pthread_join, "GLIBC_2.34");
INTERPOSE_COMPAT(pthread_join, V_BASE, base);

EXPORT int goshim_pthread_tryjoin_np(pthread_t t, void **ret)
{
	if (!interposing() || !thread_joinable_of(t))
		return real.pthread_tryjoin_np(t, ret);
	return join(t, ret, true, CLOCK_REALTIME, NULL);
}
INTERPOSE(pthread_tryjoin_np, "GLIBC_2.34");
INTERPOSE_COMPAT(pthread_tryjoin_np, V_2_3_3, v233);

EXPORT int goshim_pthread_timedjoin_np(pthread_t t, void **ret, const struct timespec *abstime)
{
	if (!interposing() || !thread_joinable_of(t))
		return real.pthread_timedjoin_np(t, ret, abstime);
	/* glibc: a NULL timeout waits for ever. */
	return join(t, ret, false, CLOCK_REALTIME, abstime);
}
INTERPOSE(pthread_timedjoin_np, "GLIBC_2.34");
INTERPOSE_COMPAT(pthread_timedjoin_np, V_2_3_3, v233);

EXPORT int goshim_pthread_clockjoin_np(pthread_t t, void **ret, clockid_t c,
                                       const struct timespec *abstime)
{
	if (!interposing() || !thread_joinable_of(t))
		return real.pthread_clockjoin_np(t, ret, c, abstime);
	if (c != CLOCK_REALTIME && c != CLOCK_MONOTONIC)
		return EINVAL;
	return join(t, ret, false, c, abstime);
}
INTERPOSE(pthread_clockjoin_np, "GLIBC_2.34");
INTERPOSE_COMPAT(pthread_clockjoin_np, "GLIBC_2.31", v231);

EXPORT int goshim_pthread_detach(pthread_t t)
{
	struct gthread *th;
	if (!interposing() || !(th = thread_joinable_of(t)))
		return real.pthread_detach(t);
	interpose_enter();
	int err = thread_detach(th);
	interpose_leave();
	return err;
}
INTERPOSE(pthread_detach, "GLIBC_2.34");
INTERPOSE_COMPAT(pthread_detach, V_BASE, base);

/* glibc marks the thread cancelled (and acts at once on itself with the
 * asynchronous type); a pthread-goroutine or main parked in a cancellable
 * wait is woken to act on it. glibc's signal for the asynchronous type
 * cannot reach a goroutine: its tid is made up, or main's, whose kernel
 * thread now runs whichever goroutine. */
EXPORT int goshim_pthread_cancel(pthread_t t)
{
	if (!interposing())
		return real.pthread_cancel(t);
	struct gthread *th = thread_joinable_of(t);
	int err = real.pthread_cancel(t);
	tls_wrap_sigcancel(); /* glibc installs its handler on its first cancel */
	if (!th)
		return err;
	if (err == ESRCH) /* the signal to the made-up tid; the thread is there */
		err = 0;
	if (err)
		return err;
	interpose_enter();
	if (tls_async_cancel_pending(th->tp))
		goroutine_cancel_async(th->g); /* the asynchronous type: the signal */
	else
		parkq_cancel(th->g);
	interpose_leave();
	return 0;
}
INTERPOSE(pthread_cancel, "GLIBC_2.34");
INTERPOSE_COMPAT(pthread_cancel, V_BASE, base);

EXPORT __attribute__((noreturn)) void goshim_pthread_exit(void *value)
{
	if (interposing()) {
		struct gthread *th = thread_self();
		if (th) {
			/* glibc unwinds the stack (cleanup handlers, C++
			 * destructors) to thread_main's jump buffer, which then
			 * finishes the thread with this result. */
			th->result = value;
			th->exit_called = true;
		} else if (getg() && (getg() == atomic_load(&main_g) ||
		                      (getg()->lockedm && syscall(SYS_gettid) == getpid()))) {
			/* main: glibc unwinds its stack to main_start's jump
			 * buffer, which ends main (thread_main_exit): the
			 * process lives on until the last thread exits. */
			thread_main_ending();
			if (main_unwinds) {
				main_result = value;
				main_exit_called = true;
			} else {
				/* main was not called through main_start: there
				 * is no frame to unwind to. */
				interpose_enter();
				thread_main_exit(value);
			}
		}
	}
	real.pthread_exit(value);
}
INTERPOSE(pthread_exit, V_BASE);

/* glibc's version asks the kernel for the affinity of the thread's tid,
 * which a pthread-goroutine does not have; the rest is what NPTL reports
 * from the TCB. */
EXPORT int goshim_pthread_getattr_np(pthread_t t, pthread_attr_t *attr)
{
	struct gthread *th;
	if (!interposing() || !(th = thread_of(t)))
		return real.pthread_getattr_np(t, attr);
	int err = pthread_attr_init(attr);
	if (err)
		return err;
	size_t guard = th->si.user_stack ? 0 : th->si.guardsize;
	err = pthread_attr_setstack(attr, (void *)(th->si.stackblock + guard), th->si.stackblock_size - guard);
	if (!err)
		err = pthread_attr_setguardsize(attr, th->si.guardsize);
	if (!err && (atomic_load(&th->state) & THREAD_DETACHED))
		err = pthread_attr_setdetachstate(attr, PTHREAD_CREATE_DETACHED);
	if (!err && th->has_cpus)
		err = pthread_attr_setaffinity_np(attr, sizeof th->cpus, (cpu_set_t *)th->cpus);
	if (err)
		pthread_attr_destroy(attr);
	return err;
}
INTERPOSE(pthread_getattr_np, "GLIBC_2.32");
INTERPOSE_COMPAT(pthread_getattr_np, V_BASE, base);

/* The kernel names a task, and a goroutine moves between tasks: the name
 * of a pthread-goroutine lives in its record. */
EXPORT int goshim_pthread_setname_np(pthread_t t, const char *name)
{
	struct gthread *th;
	if (!interposing() || !(th = thread_of(t)))
		return real.pthread_setname_np(t, name);
	size_t n = strlen(name);
	if (n >= sizeof th->name)
		return ERANGE;
	memcpy(th->name, name, n + 1);
	return 0;
}
INTERPOSE(pthread_setname_np, "GLIBC_2.34");
INTERPOSE_COMPAT(pthread_setname_np, V_2_12, v212);

EXPORT int goshim_pthread_getname_np(pthread_t t, char *buf, size_t len)
{
	struct gthread *th;
	if (!interposing() || !(th = thread_of(t)))
		return real.pthread_getname_np(t, buf, len);
	size_t n = strlen(th->name);
	if (len < n + 1)
		return ERANGE;
	memcpy(buf, th->name, n + 1);
	return 0;
}
INTERPOSE(pthread_getname_np, "GLIBC_2.34");
INTERPOSE_COMPAT(pthread_getname_np, V_2_12, v212);

/* ---- CPU affinity ------------------------------------------------------
 * The kernel pins a task, and a goroutine moves between tasks: the
 * affinity of a pthread-goroutine lives in its record, as its name does.
 * It is checked as the kernel checks it (EINVAL unless some CPU of the set
 * is online), reported back (also by pthread_getattr_np and by
 * sched_getaffinity(0) in the thread), and inherited by the threads it
 * creates, as NPTL's are; but it does not pin the goroutine, which runs
 * on whichever thread the scheduler gives it. Without one, a thread
 * reports the mask the process has. glibc's functions would give the
 * kernel the made-up tid (ESRCH). */

/* The CPUs online, from sysfs ("0-3,8"); all if it cannot be read. */
static void cpus_online(uint64_t *on)
{
	char buf[256];
	memset(on, 0, THREAD_CPU_WORDS * sizeof *on);
	int fd = (int)syscall(SYS_openat, AT_FDCWD, "/sys/devices/system/cpu/online",
	                      O_RDONLY | O_CLOEXEC);
	long n = fd >= 0 ? syscall(SYS_read, fd, buf, sizeof buf - 1) : -1;
	if (fd >= 0)
		syscall(SYS_close, fd);
	if (n <= 0) {
		memset(on, 0xff, THREAD_CPU_WORDS * sizeof *on);
		return;
	}
	buf[n] = 0;
	for (char *p = buf; *p >= '0' && *p <= '9';) {
		unsigned long lo = strtoul(p, &p, 10), hi = lo;
		if (*p == '-')
			hi = strtoul(p + 1, &p, 10);
		for (unsigned long c = lo; c <= hi && c < THREAD_CPU_WORDS * 64; c++)
			on[c / 64] |= UINT64_C(1) << (c % 64);
		if (*p == ',')
			p++;
	}
}

static int cpus_set(struct gthread *th, size_t size, const cpu_set_t *set)
{
	uint64_t cpus[THREAD_CPU_WORDS] = {0}, on[THREAD_CPU_WORDS];
	memcpy(cpus, set, size < sizeof cpus ? size : sizeof cpus);
	cpus_online(on);
	bool some = false;
	for (int i = 0; i < THREAD_CPU_WORDS; i++)
		some |= (cpus[i] & on[i]) != 0;
	if (!some)
		return EINVAL;
	memcpy(th->cpus, cpus, sizeof cpus);
	th->has_cpus = true;
	return 0;
}

/* As the kernel answers (its size checks, then the mask, the rest of the
 * caller's set cleared, as glibc clears it): the process's, or the one
 * recorded. Returns 0 or an error number. */
static int cpus_get(struct gthread *th, size_t size, cpu_set_t *set)
{
	long n = syscall(SYS_sched_getaffinity, getpid(), size, set);
	if (n < 0)
		return errno;
	if (th->has_cpus)
		memcpy(set, th->cpus, (size_t)n < sizeof th->cpus ? (size_t)n : sizeof th->cpus);
	memset((char *)set + n, 0, size - (size_t)n);
	return 0;
}

EXPORT int goshim_pthread_setaffinity_np(pthread_t t, size_t size, const cpu_set_t *set)
{
	struct gthread *th;
	if (!interposing() || !(th = thread_of(t)))
		return real.pthread_setaffinity_np(t, size, set);
	return cpus_set(th, size, set);
}
INTERPOSE(pthread_setaffinity_np, "GLIBC_2.34");
INTERPOSE_COMPAT(pthread_setaffinity_np, V_2_3_4, v234);

EXPORT int goshim_pthread_getaffinity_np(pthread_t t, size_t size, cpu_set_t *set)
{
	struct gthread *th;
	if (!interposing() || !(th = thread_of(t)))
		return real.pthread_getaffinity_np(t, size, set);
	int e = errno;
	int err = cpus_get(th, size, set);
	errno = e;
	return err;
}
INTERPOSE(pthread_getaffinity_np, "GLIBC_2.32");
INTERPOSE_COMPAT(pthread_getaffinity_np, V_2_3_4, v234);

/* pid 0 is the calling thread: the goroutine, not the thread under it. */
EXPORT int sched_setaffinity(pid_t pid, size_t size, const cpu_set_t *set)
{
	struct gthread *th;
	if (pid != 0 || !interposing() || !(th = thread_self()))
		return real.sched_setaffinity(pid, size, set);
	int err = cpus_set(th, size, set);
	if (err) {
		errno = err;
		return -1;
	}
	return 0;
}

EXPORT int sched_getaffinity(pid_t pid, size_t size, cpu_set_t *set)
{
	struct gthread *th;
	if (pid != 0 || !interposing() || !(th = thread_self()))
		return real.sched_getaffinity(pid, size, set);
	int err = cpus_get(th, size, set);
	if (err) {
		errno = err;
		return -1;
	}
	return 0;
}
SYMVER(sched_setaffinity, V_2_3_4);
SYMVER(sched_getaffinity, V_2_3_4);

/* A goroutine yields to the other goroutines (Go's Gosched); a thread
 * that stays locked to its M (an adopted one) yields its thread, as
 * without goshim. */
EXPORT int goshim_sched_yield(void)
{
	struct g *gp;
	if (!interposing() || !(gp = getg()) || gp->lockedm || gp == gp->m->g0)
		return real.sched_yield();
	interpose_enter();
	gosched();
	interpose_leave();
	return 0;
}
INTERPOSE(sched_yield, V_BASE);

EXPORT int goshim_pthread_yield(void)
{
	return goshim_sched_yield();
}
__asm__(".symver goshim_pthread_yield,pthread_yield@" V_BASE);
