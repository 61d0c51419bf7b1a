/*
 * pthread-goroutines: the thread record behind each interposed
 * pthread_create (interpose/thread.c is the POSIX face).
 *
 * A thread is a unit of memory laid out as NPTL lays out a thread's stack:
 *
 *   base [guard][stack ......... ][struct gthread][static TLS + TCB] hi
 *
 * The goroutine runs on the stack with the identity (runtime/tls.c)
 * installed. The record owns a G for good: the G, the stack and the
 * identity live and die together.
 *
 * Invariants:
 *  - gthread.state only gains bits, always under gthread.lock: EXITED and
 *    GONE together, on g0 once the goroutine no longer runs on the unit
 *    (thread_gone: the result is stored, joiners are woken), DETACHED or
 *    JOINED when nobody will read the result. The unit is released, after
 *    the lock is let go, by whoever adds the second of {GONE,
 *    DETACHED|JOINED}: exactly one party sees the other bit already set.
 *  - A released unit of the default size keeps its identity and goes to
 *    the unit pool; the next pthread_create recycles it (tls_recycle).
 *    Other units are unmapped; their G goes to the spare list.
 *  - live_threads counts records from create to exit. Once main has
 *    ended (pthread_exit, cancellation: main_gone), whoever takes it to
 *    zero, under livelock, ends the process with exit(0), as NPTL's last
 *    thread does.
 *  - main_thread is main's record for the joins, pthread_detach,
 *    pthread_cancel, pthread_kill and robust mutexes only (thread_of_g):
 *    main's goroutine (main_g) is not a pthread-goroutine (its G, stack
 *    and identity are the process's own), so the record is never
 *    released and main_g->thread stays NULL.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "runtime/runtime.h"
#include "runtime/thread.h"

#define GTHREAD_MAGIC 0x676f7468726561ULL /* "gothrea" */
#define UNIT_POOL_MAX 4096
#define MINIMAL_REST_STACK 2048 /* nptl: stack a thread must have beyond its TLS */

static mutex_t unitlock;          /* guards the pool and the spare Gs */
static struct gthread *unit_pool; /* released default-size units */
static int unit_pool_n;
static struct g *spare_g;         /* Gs of units that were unmapped */
static size_t default_size;       /* default pthread stack size */

static mutex_t livelock;
static int64_t live_threads;
static bool main_gone;            /* main has ended, or a fork child of a pthread */
static struct gthread main_thread;

void (*thread_robust_exit)(struct gthread *);

/* The marker in a TCB's start_routine field that says "one of ours". */
static void thread_marker(void) {}

void thread_init(void)
{
	pthread_attr_t a;
	size_t sz = 0;
	if (pthread_getattr_default_np(&a) == 0) {
		pthread_attr_getstacksize(&a, &sz);
		pthread_attr_destroy(&a);
	}
	if (sz < 64 * 1024)
		sz = 8u << 20;
	long pg = sysconf(_SC_PAGESIZE);
	default_size = (sz + (size_t)pg - 1) & ~((size_t)pg - 1);
}

size_t thread_default_stacksize(void)
{
	return default_size;
}

struct gthread *thread_of(pthread_t t)
{
	if (!tls_enabled || !t)
		return NULL;
	uintptr_t tp = tls_tp_of((uintptr_t)t);
	struct gthread *th = tls_thread_record(tp, (void *)thread_marker);
	if (!th || th->magic != GTHREAD_MAGIC || th->tp != tp)
		return NULL;
	return th;
}

struct gthread *thread_self(void)
{
	struct g *gp = getg();
	return gp ? gp->thread : NULL;
}

static void spare_g_put(struct g *gp)
{
	lock(&unitlock);
	gp->schedlink = spare_g;
	spare_g = gp;
	unlock(&unitlock);
}

static struct g *spare_g_get(void)
{
	lock(&unitlock);
	struct g *gp = spare_g;
	if (gp)
		spare_g = gp->schedlink;
	unlock(&unitlock);
	if (!gp)
		gp = persistentalloc(sizeof *gp, CACHE_LINE);
	return gp;
}

/* Places the record and the identity below hi. */
static struct gthread *unit_build(uintptr_t hi, struct g *gp, const struct tls_stackinfo *si)
{
	uintptr_t lo;
	uintptr_t tp = tls_build(hi, &lo, gp, si);
	if (!tp)
		return NULL;
	struct gthread *th = (struct gthread *)((lo - sizeof(struct gthread)) & ~(uintptr_t)63);
	memset(th, 0, sizeof *th);
	th->tp = tp;
	th->hi = hi;
	return th;
}

static struct gthread *pool_get(void)
{
	lock(&unitlock);
	struct gthread *th = unit_pool;
	if (th) {
		unit_pool = th->next;
		unit_pool_n--;
	}
	unlock(&unitlock);
	return th;
}

/* Frees a unit's memory; its G becomes a spare. */
static void unit_destroy(struct gthread *th)
{
	struct g *gp = th->g;
	struct stack mem = th->mem;
	bool user = th->si.user_stack;
	tls_free(th->tp);
	th->magic = 0;
	if (!user)
		stackfree(&mem);
	memset(&gp->stack, 0, sizeof gp->stack);
	spare_g_put(gp);
}

static void unit_release(struct gthread *th)
{
	if (th == &main_thread)
		return; /* the process's own */
	if (th->si.user_stack || th->mem.size == 0 || th->stacksize != default_size) {
		unit_destroy(th);
		return;
	}
	/* Deep pages go back before the unit waits in the pool. */
	struct g *gp = th->g;
	uintptr_t keep = ((uintptr_t)th & ~(uintptr_t)4095) - 16 * 1024;
	if (gp->stack.touched_lo < keep && keep > th->mem.lo)
		madvise((void *)th->mem.lo, keep - th->mem.lo, MADV_DONTNEED);
	lock(&unitlock);
	if (unit_pool_n < UNIT_POOL_MAX) {
		th->next = unit_pool;
		unit_pool = th;
		unit_pool_n++;
		th = NULL;
	}
	unlock(&unitlock);
	if (th)
		unit_destroy(th);
}

/* Runs on the new goroutine, with its identity installed. */
static void thread_main(void *arg)
{
	struct gthread *th = arg;
	tls_start();
	__pthread_unwind_buf_t ub;
	bool unwound = false;
	/* nptl start_thread: pthread_exit and cancellation unwind to here. */
	if (!__sigsetjmp_cancel(ub.__cancel_jmp_buf, 0)) {
		memset(ub.__pad, 0, sizeof ub.__pad);
		*(void **)tls_cleanup_jmp_buf_slot() = &ub;
		th->result = th->start(th->arg);
	} else {
		unwound = true;
		/* Unwound by glibc's cancellation (pthread_testcancel and the
		 * other cancellation points act on the identity's state). */
		if (!th->exit_called)
			th->result = PTHREAD_CANCELED;
	}
	tls_mark_exiting(th->tp);
	tls_exit();
	if (th->robust)
		thread_robust_exit(th);
	/* Unwound from a signal handler, the kernel's mask may differ: put
	 * right on this M before runtime_enter may move the goroutine on. */
	if (unwound)
		sigmask_resync();
	runtime_enter();
	lock(&livelock);
	bool last = --live_threads == 0 && main_gone;
	unlock(&livelock);
	runtime_leave();
	/* nptl start_thread: the last thread to end ends the process. */
	if (last)
		exit(0);
}

/* On g0, once nothing runs on the unit: only now may a joiner return (it
 * may free a user stack) and the unit be released. */
void thread_gone(struct g *gp)
{
	struct gthread *th = gp->thread;
	lock(&th->lock);
	uint32_t old = atomic_fetch_or(&th->state, THREAD_EXITED | THREAD_GONE);
	struct g *joiner = parkq_wake(&th->joinq, 0);
	unlock(&th->lock);
	if (joiner)
		goready(joiner);
	if (old & THREAD_DETACHED)
		unit_release(th);
}

int thread_create(const struct thread_attr *a, void *(*start)(void *), void *arg,
                  pthread_t *out, uintptr_t pc)
{
	struct tls_stackinfo si = {0};
	struct gthread *th = NULL;
	struct g *gp = NULL;
	struct stack mem = {0};
	size_t size = a->stacksize ? a->stacksize : default_size;
	if (a->stackaddr) {
		/* A user stack is used as given: the identity goes at its top,
		 * as NPTL puts it. */
		uintptr_t hi = (uintptr_t)a->stackaddr + a->stacksize;
		if (a->stacksize < tls_reserve() + sizeof(struct gthread) + MINIMAL_REST_STACK)
			return EINVAL;
		si.stackblock = (uintptr_t)a->stackaddr;
		si.stackblock_size = a->stacksize;
		si.user_stack = true;
		memset((void *)(hi - tls_reserve() - sizeof(struct gthread) - 64), 0,
		       tls_reserve() + sizeof(struct gthread) + 64);
		if (!(gp = spare_g_get()))
			return EAGAIN;
		if (!(th = unit_build(hi, gp, &si)))
			goto nomem;
	} else {
		si.guardsize = a->guardsize;
		if (size == default_size && (th = pool_get()) != NULL) {
			gp = th->g;
			si.stackblock = th->mem.base;
			si.stackblock_size = th->mem.size;
			if (!tls_recycle(th->hi, th->tp, gp, &si)) {
				th->tp = 0;
				stackfree(&th->mem);
				th = NULL;
				goto nomem;
			}
			mem = th->mem;
			uintptr_t tp = th->tp, hi = th->hi;
			memset(th, 0, sizeof *th);
			th->tp = tp;
			th->hi = hi;
		} else {
			if (size < tls_reserve() + sizeof(struct gthread) + MINIMAL_REST_STACK)
				size = tls_reserve() + sizeof(struct gthread) + MINIMAL_REST_STACK;
			/* NPTL adds the guard to the size asked for. */
			if (!stackalloc(&mem, size + STACK_GUARD))
				return EAGAIN;
			si.stackblock = mem.base;
			si.stackblock_size = mem.size;
			if (!(gp = spare_g_get()))
				goto nomem;
			if (!(th = unit_build(mem.hi, gp, &si)))
				goto nomem;
		}
		th->mem = mem;
	}
	th->magic = GTHREAD_MAGIC;
	th->g = gp;
	th->si = si;
	th->stacksize = size;
	th->start = start;
	th->arg = arg;
	if (a->detached)
		atomic_store(&th->state, THREAD_DETACHED);
	th->has_cpus = a->has_cpus;
	memcpy(th->cpus, a->cpus, sizeof th->cpus);
	tls_set_record(th->tp, (void *)thread_marker, th);
	gp->thread = th;
	gp->stack.lo = si.user_stack ? si.stackblock + 4096 : mem.lo;
	gp->stack.hi = (uintptr_t)th & ~(uintptr_t)15;
	gp->stack.base = si.user_stack ? 0 : mem.base;
	gp->stack.size = 0;
	gp->stack.touched_lo = gp->stack.hi;
	lock(&livelock);
	live_threads++;
	unlock(&livelock);
	*out = (pthread_t)tls_pthread_of(th->tp);
	newproc_thread(gp, thread_main, th, gp->stack.hi, th->tp, pc,
	               a->has_sigmask ? &a->sigmask : NULL);
	return 0;
nomem:
	if (mem.size)
		stackfree(&mem);
	if (gp)
		spare_g_put(gp);
	return EAGAIN;
}

/* Waits until th has exited or the deadline (nanotime, 0 for none)
 * passes: 0, ETIMEDOUT, EBUSY (try, not exited), EINVAL, EDEADLK, or
 * EINTR when pthread_cancel (a cancellable wait) or a signal for the
 * caller ended the wait. The caller holds a P. */
int thread_join(struct gthread *th, int64_t deadline, bool try, bool cancelable, void **ret)
{
	struct gthread *self = thread_self_or_main();
	if (th == self)
		return try ? EBUSY : EDEADLK; /* glibc's tryjoin: still running */
	lock(&th->lock);
	uint32_t st = atomic_load(&th->state);
	if (st & (THREAD_DETACHED | THREAD_JOINED) || th->joining) {
		unlock(&th->lock);
		return EINVAL;
	}
	if (!(st & THREAD_EXITED) && unlikely(th->g->forkgone)) {
		/* A fork child's copy of a thread of the parent: it does not
		 * exist here, and glibc's join returns at once (its fork
		 * child marks such threads ended). The unit is never reused:
		 * its G is gone. */
		if (ret)
			*ret = NULL;
		atomic_fetch_or(&th->state, THREAD_JOINED);
		unlock(&th->lock);
		return 0;
	}
	if (!(st & THREAD_EXITED)) {
		if (try) {
			unlock(&th->lock);
			return EBUSY;
		}
		if (self && th->joining_target == self) {
			unlock(&th->lock);
			return EDEADLK;
		}
		th->joining = true;
		if (self)
			self->joining_target = th;
		int ended = parkq_wait_then(&th->joinq, &th->lock, deadline, false,
		                            (cancelable ? PARK_CANCEL : 0) | PARK_INTR,
		                            waitReasonThreadJoin, NULL, NULL, NULL);
		if (self)
			self->joining_target = NULL;
		lock(&th->lock);
		th->joining = false;
		if (ended && !(atomic_load(&th->state) & THREAD_EXITED)) {
			unlock(&th->lock);
			/* EINTR: pthread_cancel or a signal ended the wait;
			 * the caller runs the handler, acts on the cancel or
			 * joins again. */
			return ended == ETIMEDOUT ? ETIMEDOUT : EINTR;
		}
	}
	if (ret)
		*ret = th->result;
	atomic_fetch_or(&th->state, THREAD_JOINED);
	unlock(&th->lock);
	unit_release(th); /* EXITED comes with GONE */
	return 0;
}

int thread_detach(struct gthread *th)
{
	lock(&th->lock);
	uint32_t st = atomic_load(&th->state);
	if (st & (THREAD_DETACHED | THREAD_JOINED)) {
		unlock(&th->lock);
		return EINVAL;
	}
	if (th->joining) {
		/* glibc: detaching a thread someone joins leaves the join alone. */
		unlock(&th->lock);
		return 0;
	}
	uint32_t old = atomic_fetch_or(&th->state, THREAD_DETACHED);
	unlock(&th->lock);
	if (old & THREAD_GONE)
		unit_release(th);
	return 0;
}

/* Main's record, once main is a migratable goroutine with its own
 * identity (main_unlock). */
void thread_main_init(void)
{
	if (!atomic_load(&main_g))
		return;
	main_thread.magic = GTHREAD_MAGIC;
	main_thread.tp = tls_tp_of((uintptr_t)main_pthread);
	main_thread.g = atomic_load(&main_g);
}

/* The record the joins, pthread_detach and pthread_cancel act on: a
 * pthread-goroutine's, or main's. */
struct gthread *thread_joinable_of(pthread_t t)
{
	struct gthread *th = thread_of(t);
	if (!th && t && main_thread.g && tls_tp_of((uintptr_t)t) == main_thread.tp)
		th = &main_thread;
	return th;
}

/* gp's record, for cancellation, joins and robust mutexes: a
 * pthread-goroutine's or main's. */
struct gthread *thread_of_g(struct g *gp)
{
	if (gp && gp->thread)
		return gp->thread;
	return gp && main_thread.g == gp ? &main_thread : NULL;
}

struct gthread *thread_self_or_main(void)
{
	return thread_of_g(getg());
}

/* main has begun to end (pthread_exit, or a cancellation unwound it):
 * from now on signals sent to the process are no longer sent on to it
 * but go where they land, as once main's kernel thread is gone, and
 * sysmon stands in for the threads left (main_ended). Once. */
void thread_main_ending(void)
{
	if (atomic_exchange(&main_ended, true))
		return;
	struct g *mg = atomic_load(&main_g);
	if (mg && getg() == mg)
		atomic_store(&main_g, NULL);
	sig_catch_changed(); /* sysmon stands in for the threads left */
}

/* Main has ended (pthread_exit or cancellation, its stack unwound and its
 * keys' destructors run): its joiners get result, and the process lives
 * on until the last thread ends, which then exits with status 0, as with
 * NPTL (atexit handlers run on that thread). The caller holds a P. */
__attribute__((noreturn)) void thread_main_exit(void *result)
{
	struct gthread *th = &main_thread;
	bool mine = th->g && getg() == th->g;
	/* Counted gone before a joiner can return: as with NPTL, a thread
	 * that has joined main is never the one main leaves alone. */
	thread_main_ending(); /* done already, unless main_start was not used */
	lock(&livelock);
	main_gone = true;
	bool last = live_threads == 0;
	unlock(&livelock);
	if (last) {
		runtime_leave();
		exit(0);
	}
	if (mine) {
		lock(&th->lock);
		th->result = result;
		atomic_fetch_or(&th->state, THREAD_EXITED | THREAD_GONE);
		struct g *joiner = parkq_wake(&th->joinq, 0);
		unlock(&th->lock);
		if (joiner)
			goready(joiner);
	}
	goexit1(); /* main's G is adopted: nothing runs on its stack again */
	__builtin_unreachable();
}

/* afterforkinchild: the only pthread left is the caller, if it is one. */
void thread_afterforkinchild(struct g *me)
{
	lock_reinit_afterfork(&unitlock);
	lock_reinit_afterfork(&livelock);
	live_threads = me->thread ? 1 : 0;
	main_gone = me->thread != NULL;
}
