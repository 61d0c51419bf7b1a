/*
 * Shared by the interposed POSIX functions (the files of interpose/).
 *
 * Each interposed function is defined once (goshim_<name>) and exported
 * under every symbol version glibc gives it, so that binaries linked
 * against any of them bind to it: a versioned reference only binds to a
 * definition of that version. INTERPOSE names the default version,
 * INTERPOSE_COMPAT each older one.
 *
 * real_<name> is glibc's own function (interpose/start.c), for the paths
 * that keep glibc's implementation: pass-through (GOSHIM_DEBUG=interpose=0,
 * an unverified glibc, sanitizer builds) and process-shared objects.
 */
#ifndef GOSHIM_INTERPOSE_H
#define GOSHIM_INTERPOSE_H

#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <time.h>

#include "runtime/runtime.h"
#include "runtime/thread.h"

#if defined(__x86_64__)
#define V_BASE "GLIBC_2.2.5"
#define V_2_3_2 "GLIBC_2.3.2"
#define V_2_3_3 "GLIBC_2.3.3"
#define V_2_3_4 "GLIBC_2.3.4"
#define V_2_12 "GLIBC_2.12"
#else
#define V_BASE "GLIBC_2.17"
#define V_2_3_2 "GLIBC_2.17"
#define V_2_3_3 "GLIBC_2.17"
#define V_2_3_4 "GLIBC_2.17"
#define V_2_12 "GLIBC_2.17"
#endif

/* The glibc versions of the I/O functions (interpose/io.c, sleep.c); on
 * aarch64 everything older than its base version is the base version. */
#if defined(__x86_64__)
#define V_2_3 "GLIBC_2.3"
#define V_2_4 "GLIBC_2.4"
#define V_2_5 "GLIBC_2.5"
#define V_2_6 "GLIBC_2.6"
#define V_2_7 "GLIBC_2.7"
#define V_2_8 "GLIBC_2.8"
#define V_2_9 "GLIBC_2.9"
#define V_2_10 "GLIBC_2.10"
#define V_2_11 "GLIBC_2.11"
#define V_2_14 "GLIBC_2.14"
#define V_2_15 "GLIBC_2.15"
#define V_2_16 "GLIBC_2.16"
#else
#define V_2_3 "GLIBC_2.17"
#define V_2_4 "GLIBC_2.17"
#define V_2_5 "GLIBC_2.17"
#define V_2_6 "GLIBC_2.17"
#define V_2_7 "GLIBC_2.17"
#define V_2_8 "GLIBC_2.17"
#define V_2_9 "GLIBC_2.17"
#define V_2_10 "GLIBC_2.17"
#define V_2_11 "GLIBC_2.17"
#define V_2_14 "GLIBC_2.17"
#define V_2_15 "GLIBC_2.17"
#define V_2_16 "GLIBC_2.17"
#endif
#define V_2_17 "GLIBC_2.17"
#define V_2_28 "GLIBC_2.28"
#define V_2_34 "GLIBC_2.34"

#define INTERPOSE(name, ver) __asm__(".symver goshim_" #name "," #name "@@" ver)
/* A function defined under glibc's own name gets glibc's version. */
#define SYMVER(name, ver) __asm__(".symver " #name "," #name "@@" ver)
#define INTERPOSE_COMPAT(name, ver, tag)                                                   \
	extern __typeof(goshim_##name) goshim_##name##_##tag                               \
		__attribute__((alias("goshim_" #name), visibility("default")));            \
	__asm__(".symver goshim_" #name "_" #tag "," #name "@" ver)
#define EXPORT __attribute__((visibility("default")))

/* glibc's functions, resolved by interpose_init. */
struct real_fns {
	int (*pthread_create)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
	int (*pthread_join)(pthread_t, void **);
	int (*pthread_tryjoin_np)(pthread_t, void **);
	int (*pthread_timedjoin_np)(pthread_t, void **, const struct timespec *);
	int (*pthread_clockjoin_np)(pthread_t, void **, clockid_t, const struct timespec *);
	int (*pthread_detach)(pthread_t);
	void (*pthread_exit)(void *) __attribute__((noreturn));
	int (*pthread_getattr_np)(pthread_t, pthread_attr_t *);
	int (*pthread_setaffinity_np)(pthread_t, size_t, const cpu_set_t *);
	int (*pthread_getaffinity_np)(pthread_t, size_t, cpu_set_t *);
	int (*sched_setaffinity)(pid_t, size_t, const cpu_set_t *);
	int (*sched_getaffinity)(pid_t, size_t, cpu_set_t *);
	int (*pthread_setname_np)(pthread_t, const char *);
	int (*pthread_getname_np)(pthread_t, char *, size_t);
	int (*sched_yield)(void);
	int (*pthread_cancel)(pthread_t);
	int (*pthread_sigmask)(int, const sigset_t *, sigset_t *);
	int (*sigprocmask)(int, const sigset_t *, sigset_t *);
	int (*pthread_kill)(pthread_t, int);
	int (*sigpending)(sigset_t *);
	int (*sigaction)(int, const struct sigaction *, struct sigaction *);
	sighandler_t (*signal)(int, sighandler_t);
	sighandler_t (*sysv_signal)(int, sighandler_t);
	sighandler_t (*sigset)(int, sighandler_t);
	int (*siginterrupt)(int, int);
	int (*sighold)(int);
	int (*sigrelse)(int);
	int (*kill)(pid_t, int);
	int (*pthread_barrier_init)(pthread_barrier_t *, const pthread_barrierattr_t *, unsigned);
	int (*pthread_barrier_wait)(pthread_barrier_t *);
	int (*pthread_barrier_destroy)(pthread_barrier_t *);
	int (*pthread_rwlock_init)(pthread_rwlock_t *, const pthread_rwlockattr_t *);
	int (*pthread_rwlock_destroy)(pthread_rwlock_t *);
	int (*pthread_rwlock_rdlock)(pthread_rwlock_t *);
	int (*pthread_rwlock_tryrdlock)(pthread_rwlock_t *);
	int (*pthread_rwlock_timedrdlock)(pthread_rwlock_t *, const struct timespec *);
	int (*pthread_rwlock_clockrdlock)(pthread_rwlock_t *, clockid_t, const struct timespec *);
	int (*pthread_rwlock_wrlock)(pthread_rwlock_t *);
	int (*pthread_rwlock_trywrlock)(pthread_rwlock_t *);
	int (*pthread_rwlock_timedwrlock)(pthread_rwlock_t *, const struct timespec *);
	int (*pthread_rwlock_clockwrlock)(pthread_rwlock_t *, clockid_t, const struct timespec *);
	int (*pthread_rwlock_unlock)(pthread_rwlock_t *);
	int (*sem_init)(sem_t *, int, unsigned int);
	int (*sem_destroy)(sem_t *);
	int (*sem_wait)(sem_t *);
	int (*sem_trywait)(sem_t *);
	int (*sem_timedwait)(sem_t *, const struct timespec *);
	int (*sem_clockwait)(sem_t *, clockid_t, const struct timespec *);
	int (*sem_post)(sem_t *);
	int (*sem_getvalue)(sem_t *, int *);
	int (*pthread_mutex_init)(pthread_mutex_t *, const pthread_mutexattr_t *);
	int (*pthread_mutex_destroy)(pthread_mutex_t *);
	int (*pthread_mutex_lock)(pthread_mutex_t *);
	int (*pthread_mutex_trylock)(pthread_mutex_t *);
	int (*pthread_mutex_timedlock)(pthread_mutex_t *, const struct timespec *);
	int (*pthread_mutex_clocklock)(pthread_mutex_t *, clockid_t, const struct timespec *);
	int (*pthread_mutex_unlock)(pthread_mutex_t *);
	int (*pthread_cond_init)(pthread_cond_t *, const pthread_condattr_t *);
	int (*pthread_cond_destroy)(pthread_cond_t *);
	int (*pthread_cond_wait)(pthread_cond_t *, pthread_mutex_t *);
	int (*pthread_cond_timedwait)(pthread_cond_t *, pthread_mutex_t *, const struct timespec *);
	int (*pthread_cond_clockwait)(pthread_cond_t *, pthread_mutex_t *, clockid_t,
	                              const struct timespec *);
	int (*pthread_cond_signal)(pthread_cond_t *);
	int (*pthread_cond_broadcast)(pthread_cond_t *);
	/* The pre-2.3.2 condvar ABI, for old binaries in pass-through. */
	int (*pthread_cond_init_old)(pthread_cond_t *, const pthread_condattr_t *);
	int (*pthread_cond_destroy_old)(pthread_cond_t *);
	int (*pthread_cond_wait_old)(pthread_cond_t *, pthread_mutex_t *);
	int (*pthread_cond_timedwait_old)(pthread_cond_t *, pthread_mutex_t *, const struct timespec *);
	int (*pthread_cond_signal_old)(pthread_cond_t *);
	int (*pthread_cond_broadcast_old)(pthread_cond_t *);
	int (*libc_start_main)(int (*)(int, char **, char **), int, char **,
	                       int (*)(int, char **, char **), void (*)(void), void (*)(void), void *);
	int (*libc_start_main_base)(int (*)(int, char **, char **), int, char **,
	                            int (*)(int, char **, char **), void (*)(void), void (*)(void), void *);
};
extern struct real_fns real;
extern bool interpose_active;
extern bool interpose_ready;
extern _Atomic int64_t interposed_threads; /* GOSHIM_DEBUG=exitstats=1 */
/* main runs above main_start's jump buffer (interpose/start.c), where
 * pthread_exit and cancellation unwind to; pthread_exit leaves its value. */
extern bool main_unwinds;
extern void *main_result;
extern bool main_exit_called;

void interpose_init(void);
void io_init(void);    /* interpose/io.c */
void sleep_init(void); /* interpose/sleep.c */

/* Is the runtime in charge of the pthread calls of this process? Starts
 * the runtime on first use (a constructor may call in before ours ran). */
static inline bool interposing(void)
{
	if (unlikely(!__atomic_load_n(&interpose_ready, __ATOMIC_ACQUIRE)))
		interpose_init();
	return interpose_active;
}

/* May an interposed call that would block enter the runtime here? Not
 * from a signal handler that interrupted the runtime: the scheduler on g0,
 * a goroutine between runtime_enter and runtime_leave, or a stack switch,
 * whose thread pointer may already show the next goroutine while the
 * stack is still the last one's (so the stack pointer must be on the
 * goroutine's own stack). Not in the child of a fork that was called
 * where the runtime could not be entered either (io.c: atfork_child): it
 * has no runtime. Those make the system call themselves, as glibc would. */
extern bool forked_child;
static inline bool may_enter_runtime(void)
{
	if (unlikely(forked_child))
		return false;
	struct g *gp = getg();
	if (!gp)
		return true; /* a thread the runtime does not know: adopted */
	uintptr_t sp = (uintptr_t)__builtin_frame_address(0);
	return gp->m && gp != gp->m->g0 && !gp->inruntime && sp >= gp->stack.lo &&
	       sp < gp->stack.hi;
}

/* Does a blocking call of the caller park its goroutine? A goroutine
 * locked to its thread (main, an adopted thread) waits in the kernel
 * instead: the thread is its own either way, and a signal then interrupts
 * the wait as it would natively. */
static inline bool parks_here(void)
{
	struct g *gp = getg();
	return gp && !gp->lockedm;
}

/* Enter the runtime from user code (adopting an unknown thread). The
 * runtime's own system calls must not show in the caller's errno: POSIX
 * functions that succeed leave it alone. */
static inline struct g *interpose_enter(void)
{
	int e = errno;
	struct g *gp = getg();
	if (unlikely(!gp))
		gp = needm();
	runtime_enter();
	gp->user_errno = e;
	return gp;
}

static inline void interpose_leave(void)
{
	struct g *gp = getg();
	int e = gp->user_errno;
	runtime_leave();
	if (unlikely(atomic_load_explicit(&gp->sigpending, memory_order_relaxed)))
		sigpending_deliver(0); /* pthread_kill'ed while it was away */
	errno = e;
}

/* interpose/signal.c: would the kernel restart a call that a handler of
 * one of sigs interrupted? Only if each of those installed has SA_RESTART
 * (and the call has no timeout: the caller's part). */
bool sigs_restart(uint64_t sigs);

/* A wait that a signal for the goroutine ended (EINTR of a PARK_INTR
 * wait) and that goes on, as glibc's futex wait does after the handler:
 * leaves the runtime, so that the handler runs in the thread, and comes
 * back. */
static inline void interpose_run_handlers(void)
{
	interpose_leave();
	interpose_enter();
}

/* interpose/io.c: around a call that may block in the kernel (its P is
 * handed off meanwhile); sys_begin is NULL when the runtime may not be
 * entered here, and sys_end(NULL) does nothing. */
struct g *sys_begin(void);
void sys_end(struct g *gp);

/* A sys_begin/sys_end pair as a scope: if a cancellation unwinds out of
 * the call (glibc's cancellation point saw a pending cancel, or SIGCANCEL
 * came during it), the unwinder runs sys_call_unwound as it leaves the
 * scope, before the program's cleanup handlers, which may call into the
 * runtime (this library is built with -fexceptions for it). */
struct sys_call {
	struct g *gp;
	bool done;
};

static inline void sys_call_unwound(struct sys_call *c)
{
	if (c->gp && !c->done) {
		/* Unwound out of glibc's SIGCANCEL handler without its return:
		 * the kernel's mask is the handler's. The cleanup handlers may
		 * park and leave this M: put it right here. */
		sigmask_resync();
		syscall_unwound();
	}
}

#define SYS_CALL_SCOPE(name) \
	struct sys_call name __attribute__((cleanup(sys_call_unwound))) = { sys_begin(), false }

/* The call returned: sys_end, and nothing for the scope's cleanup. */
static inline void sys_call_end(struct sys_call *c)
{
	c->done = true;
	sys_end(c->gp);
}

/* An absolute timeout on clock c as a nanotime deadline: 0 with *err set
 * (EINVAL for a bad tv_nsec or clock). A deadline in the past is 1 (the
 * wait times out at once after trying). */
int64_t deadline_from(clockid_t c, const struct timespec *abstime, int *err);

/* interpose/mutex.c, for the condvar. */
int mutex_unlock(pthread_mutex_t *m, bool entered);
int mutex_unlock_check(pthread_mutex_t *m);
int mutex_relock(pthread_mutex_t *m);
void mutex_owner_died(struct gthread *th);

/* Would a cancellation act on the caller now? Only the waits of
 * pthread-goroutines and main are ended by pthread_cancel (parkq_cancel). */
static inline bool cancel_enabled(void)
{
	struct gthread *th = thread_self_or_main();
	return th && tls_cancel_enabled(th->tp);
}

/* Owner id of the calling thread for the interposed locks (never 0): a
 * thread's tid (made up for a pthread-goroutine), or for a go() goroutine,
 * which runs on its M's identity and shares its tid with every other one
 * there, one of its own from its goid, above the made-up tids (from
 * 0x20000000) and below the special owners at INT_MAX. */
static inline int self_id(void)
{
	struct g *gp = getg();
	if (gp && !gp->thread && !gp->adopted && gp->m && gp != gp->m->g0)
		return 0x40000000 + (int)((uint64_t)gp->goid % 0x3ffffff0u);
	return tls_self_tid();
}

#endif
