/*
 * pthread_create and friends: every thread the program creates is a
 * pthread-goroutine (runtime/thread.c) with its own glibc identity
 * (runtime/tls.c). Threads the runtime did not create (main, threads made
 * before interposition started) keep glibc's functions for join/detach;
 * pthread_self, keys, once and the cancellation state need no interposing
 * because each goroutine's identity is a real struct pthread.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "interpose/interpose.h"

/* Reads what glibc's attribute getters report. */
static int attr_read(const pthread_attr_t *attr, struct thread_attr *a)
{
	*a = (struct thread_attr){0};
	a->guardsize = (size_t)sysconf(_SC_PAGESIZE);
	if (!attr)
		return 0;
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
	struct gthread *th = thread_of(t);
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
	if (!interposing() || !thread_of(t))
		return real.pthread_join(t, ret);
	return join(t, ret, false, CLOCK_REALTIME, NULL);
}
INTERPOSE(pthread_join, "GLIBC_2.34");
INTERPOSE_COMPAT(pthread_join, V_BASE, base);

EXPORT int goshim_pthread_tryjoin_np(pthread_t t, void **ret)
{
	if (!interposing() || !thread_of(t))
		return real.pthread_tryjoin_np(t, ret);
	return join(t, ret, true, CLOCK_REALTIME, NULL);
}
INTERPOSE(pthread_tryjoin_np, "GLIBC_2.34");
INTERPOSE_COMPAT(pthread_tryjoin_np, V_2_3_3, v233);

EXPORT int goshim_pthread_timedjoin_np(pthread_t t, void **ret, const struct timespec *abstime)
{
	if (!interposing() || !thread_of(t))
		return real.pthread_timedjoin_np(t, ret, abstime);
	/* glibc: a NULL timeout waits for ever. */
	return join(t, ret, false, CLOCK_REALTIME, abstime);
}
INTERPOSE(pthread_timedjoin_np, "GLIBC_2.34");
INTERPOSE_COMPAT(pthread_timedjoin_np, V_2_3_3, v233);

EXPORT int goshim_pthread_clockjoin_np(pthread_t t, void **ret, clockid_t c,
                                       const struct timespec *abstime)
{
	if (!interposing() || !thread_of(t))
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
	if (!interposing() || !(th = thread_of(t)))
		return real.pthread_detach(t);
	interpose_enter();
	int err = thread_detach(th);
	interpose_leave();
	return err;
}
INTERPOSE(pthread_detach, "GLIBC_2.34");
INTERPOSE_COMPAT(pthread_detach, V_BASE, base);

/* glibc marks the thread cancelled (and acts at once on itself with the
 * asynchronous type); a pthread-goroutine parked in a cancellable wait is
 * woken to act on it. glibc's signal for the asynchronous type cannot
 * reach a goroutine (its tid is made up). */
EXPORT int goshim_pthread_cancel(pthread_t t)
{
	struct gthread *th;
	if (!interposing() || !(th = thread_of(t)))
		return real.pthread_cancel(t);
	int err = real.pthread_cancel(t);
	if (err == ESRCH) /* the signal to the made-up tid; the thread is there */
		err = 0;
	if (err)
		return err;
	interpose_enter();
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
		} else if (syscall(SYS_gettid) == getpid()) {
			/* main: the process lives on until the last thread
			 * exits, then exits with status 0, as with NPTL. */
			interpose_enter();
			thread_wait_all_then_exit();
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

/* A goroutine yields to the other goroutines (Go's Gosched); an adopted
 * thread (main) yields its thread, as without goshim. */
EXPORT int goshim_sched_yield(void)
{
	struct g *gp;
	if (!interposing() || !(gp = getg()) || gp->adopted || gp == gp->m->g0)
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
