/*
 * Bootstrap of the LD_PRELOAD face: glibc's own functions are resolved with
 * dlvsym at the versions we call, the runtime starts, and thread identity
 * is verified (runtime/tls.c). Interposition is on only when all of that
 * worked and GOSHIM_DEBUG does not say interpose=0; otherwise every
 * interposed function passes straight through to glibc.
 *
 * dlvsym(RTLD_NEXT) from this library finds the definition after ours:
 * glibc's, or a sanitizer's interceptor. Nothing here allocates through an
 * interposed function, so resolution cannot recurse into itself.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "interpose/interpose.h"

struct real_fns real;
bool interpose_active;
bool interpose_ready;
_Atomic int64_t interposed_threads;

static void *resolve(const char *name, const char *ver)
{
	void *f = dlvsym(RTLD_NEXT, name, ver);
	if (!f)
		f = dlsym(RTLD_NEXT, name);
	if (!f) {
		printerr("goshim: cannot resolve %s@%s\n", name, ver);
		abort();
	}
	return f;
}

#define RESOLVE(field, name, ver) real.field = (__typeof(real.field))resolve(name, ver)

static void resolve_all(void)
{
	RESOLVE(pthread_create, "pthread_create", "GLIBC_2.34");
	RESOLVE(pthread_join, "pthread_join", "GLIBC_2.34");
	RESOLVE(pthread_tryjoin_np, "pthread_tryjoin_np", "GLIBC_2.34");
	RESOLVE(pthread_timedjoin_np, "pthread_timedjoin_np", "GLIBC_2.34");
	RESOLVE(pthread_clockjoin_np, "pthread_clockjoin_np", "GLIBC_2.34");
	RESOLVE(pthread_detach, "pthread_detach", "GLIBC_2.34");
	RESOLVE(pthread_exit, "pthread_exit", V_BASE);
	RESOLVE(pthread_getattr_np, "pthread_getattr_np", "GLIBC_2.32");
	RESOLVE(pthread_setaffinity_np, "pthread_setaffinity_np", "GLIBC_2.34");
	RESOLVE(pthread_getaffinity_np, "pthread_getaffinity_np", "GLIBC_2.32");
	RESOLVE(sched_setaffinity, "sched_setaffinity", V_2_3_4);
	RESOLVE(sched_getaffinity, "sched_getaffinity", V_2_3_4);
	RESOLVE(pthread_setname_np, "pthread_setname_np", "GLIBC_2.34");
	RESOLVE(pthread_getname_np, "pthread_getname_np", "GLIBC_2.34");
	RESOLVE(sched_yield, "sched_yield", V_BASE);
	RESOLVE(pthread_cancel, "pthread_cancel", "GLIBC_2.34");
	RESOLVE(pthread_sigmask, "pthread_sigmask", "GLIBC_2.32");
	RESOLVE(sigprocmask, "sigprocmask", V_BASE);
	RESOLVE(pthread_kill, "pthread_kill", "GLIBC_2.34");
	RESOLVE(sigpending, "sigpending", V_BASE);
	RESOLVE(sigaction, "sigaction", V_BASE);
	RESOLVE(signal, "signal", V_BASE);
	RESOLVE(sysv_signal, "sysv_signal", V_BASE);
	RESOLVE(sigset, "sigset", V_BASE);
	RESOLVE(siginterrupt, "siginterrupt", V_BASE);
	RESOLVE(sighold, "sighold", V_BASE);
	RESOLVE(sigrelse, "sigrelse", V_BASE);
	RESOLVE(kill, "kill", V_BASE);
	RESOLVE(pthread_barrier_init, "pthread_barrier_init", "GLIBC_2.34");
	RESOLVE(pthread_barrier_wait, "pthread_barrier_wait", "GLIBC_2.34");
	RESOLVE(pthread_barrier_destroy, "pthread_barrier_destroy", "GLIBC_2.34");
	RESOLVE(pthread_rwlock_init, "pthread_rwlock_init", "GLIBC_2.34");
	RESOLVE(pthread_rwlock_destroy, "pthread_rwlock_destroy", "GLIBC_2.34");
	RESOLVE(pthread_rwlock_rdlock, "pthread_rwlock_rdlock", "GLIBC_2.34");
	RESOLVE(pthread_rwlock_tryrdlock, "pthread_rwlock_tryrdlock", "GLIBC_2.34");
	RESOLVE(pthread_rwlock_timedrdlock, "pthread_rwlock_timedrdlock", "GLIBC_2.34");
	RESOLVE(pthread_rwlock_clockrdlock, "pthread_rwlock_clockrdlock", "GLIBC_2.34");
	RESOLVE(pthread_rwlock_wrlock, "pthread_rwlock_wrlock", "GLIBC_2.34");
	RESOLVE(pthread_rwlock_trywrlock, "pthread_rwlock_trywrlock", "GLIBC_2.34");
	RESOLVE(pthread_rwlock_timedwrlock, "pthread_rwlock_timedwrlock", "GLIBC_2.34");
	RESOLVE(pthread_rwlock_clockwrlock, "pthread_rwlock_clockwrlock", "GLIBC_2.34");
	RESOLVE(pthread_rwlock_unlock, "pthread_rwlock_unlock", "GLIBC_2.34");
	RESOLVE(sem_init, "sem_init", "GLIBC_2.34");
	RESOLVE(sem_destroy, "sem_destroy", "GLIBC_2.34");
	RESOLVE(sem_wait, "sem_wait", "GLIBC_2.34");
	RESOLVE(sem_trywait, "sem_trywait", "GLIBC_2.34");
	RESOLVE(sem_timedwait, "sem_timedwait", "GLIBC_2.34");
	RESOLVE(sem_clockwait, "sem_clockwait", "GLIBC_2.34");
	RESOLVE(sem_post, "sem_post", "GLIBC_2.34");
	RESOLVE(sem_getvalue, "sem_getvalue", "GLIBC_2.34");
	RESOLVE(pthread_mutex_init, "pthread_mutex_init", V_BASE);
	RESOLVE(pthread_mutex_destroy, "pthread_mutex_destroy", V_BASE);
	RESOLVE(pthread_mutex_lock, "pthread_mutex_lock", V_BASE);
	RESOLVE(pthread_mutex_trylock, "pthread_mutex_trylock", "GLIBC_2.34");
	RESOLVE(pthread_mutex_timedlock, "pthread_mutex_timedlock", "GLIBC_2.34");
	RESOLVE(pthread_mutex_clocklock, "pthread_mutex_clocklock", "GLIBC_2.34");
	RESOLVE(pthread_mutex_unlock, "pthread_mutex_unlock", V_BASE);
	RESOLVE(pthread_cond_init, "pthread_cond_init", V_2_3_2);
	RESOLVE(pthread_cond_destroy, "pthread_cond_destroy", V_2_3_2);
	RESOLVE(pthread_cond_wait, "pthread_cond_wait", V_2_3_2);
	RESOLVE(pthread_cond_timedwait, "pthread_cond_timedwait", V_2_3_2);
	RESOLVE(pthread_cond_clockwait, "pthread_cond_clockwait", "GLIBC_2.34");
	RESOLVE(pthread_cond_signal, "pthread_cond_signal", V_2_3_2);
	RESOLVE(pthread_cond_broadcast, "pthread_cond_broadcast", V_2_3_2);
	RESOLVE(pthread_cond_init_old, "pthread_cond_init", V_BASE);
	RESOLVE(pthread_cond_destroy_old, "pthread_cond_destroy", V_BASE);
	RESOLVE(pthread_cond_wait_old, "pthread_cond_wait", V_BASE);
	RESOLVE(pthread_cond_timedwait_old, "pthread_cond_timedwait", V_BASE);
	RESOLVE(pthread_cond_signal_old, "pthread_cond_signal", V_BASE);
	RESOLVE(pthread_cond_broadcast_old, "pthread_cond_broadcast", V_BASE);
	RESOLVE(libc_start_main, "__libc_start_main", "GLIBC_2.34");
	RESOLVE(libc_start_main_base, "__libc_start_main", V_BASE);
}

/* A copy of stderr made at start-up: programs such as coreutils close
 * stderr in their own atexit handler, which runs before ours. */
static int exitstats_fd = -1;

static void print_exitstats(void)
{
	char buf[80];
	int n = snprintf(buf, sizeof buf, "goshim: %lld pthreads ran as goroutines\n",
	                 (long long)atomic_load(&interposed_threads));
	if (exitstats_fd >= 0 && n > 0)
		raw_write(exitstats_fd, buf, (size_t)n);
}

void interpose_init(void)
{
	static _Atomic int once;
	int exp = 0;
	if (!atomic_compare_exchange_strong(&once, &exp, 1)) {
		/* Another thread is starting it. */
		while (!__atomic_load_n(&interpose_ready, __ATOMIC_ACQUIRE))
			usleep_raw(10);
		return;
	}
	resolve_all();
	io_init();
	sleep_init();
	schedinit();
	/* sysmon retakes the Ps of pthread-goroutines blocked in foreign
	 * code; its creation also makes glibc install its SIGSETXID handler,
	 * which tls_wrap_setxid wraps. */
	newm_sysmon();
	if (debug_interpose && tls_init()) {
		tls_wrap_setxid();
		thread_init();
		thread_robust_exit = mutex_owner_died;
		interpose_active = true;
		/* The leader loading us runs main: it becomes migratable. */
		if (syscall(SYS_gettid) == getpid()) {
			main_unlock();
			thread_main_init();
		}
	}
	if (debug_exitstats) {
		exitstats_fd = (int)syscall(SYS_fcntl, 2, F_DUPFD_CLOEXEC, 100);
		atexit(print_exitstats);
	}
	__atomic_store_n(&interpose_ready, true, __ATOMIC_RELEASE);
}

/* The library's constructor also lands here (lib/go.c runs schedinit). */
__attribute__((constructor)) static void interpose_ctor(void)
{
	interpose_init();
}

int64_t deadline_from(clockid_t c, const struct timespec *abstime, int *err)
{
	if (!abstime || abstime->tv_nsec < 0 || abstime->tv_nsec >= 1000000000L) {
		*err = EINVAL;
		return 0;
	}
	struct timespec now;
	if (clock_gettime(c, &now) != 0) {
		*err = EINVAL;
		return 0;
	}
	*err = 0;
	int64_t t = nanotime();
	/* Far deadlines (tv_sec = LONG_MAX for "for ever") saturate. */
	if (abstime->tv_sec < now.tv_sec)
		return 1;
	int64_t sec = (int64_t)abstime->tv_sec - (int64_t)now.tv_sec;
	if (abstime->tv_sec > now.tv_sec && sec > (INT64_MAX - t) / 1000000000LL - 1)
		return INT64_MAX;
	int64_t rel = sec * 1000000000LL + (abstime->tv_nsec - now.tv_nsec);
	if (rel <= 0)
		return 1;
	if (rel > INT64_MAX - t)
		return INT64_MAX;
	return t + rel;
}

/* ---- main ------------------------------------------------------------
 * The executable's _start hands main to __libc_start_main; ours hands it
 * main_start, which calls main above a jump buffer of its own, as nptl's
 * start_thread does for every other thread. pthread_exit and cancellation
 * of main unwind to the innermost buffer: glibc's own, in
 * __libc_start_call_main, would end the kernel thread main happens to run
 * on (one of the scheduler's); ours ends main's goroutine. */
typedef int (*main_fn)(int, char **, char **);
typedef __typeof(*real.libc_start_main) libc_start_main_fn;

static main_fn user_main;
bool main_unwinds;
void *main_result;
bool main_exit_called;

static int main_start(int argc, char **argv, char **envp)
{
	struct g *gp = getg();
	if (!interposing() || !gp || gp != atomic_load(&main_g))
		return user_main(argc, argv, envp);
	__pthread_unwind_buf_t ub;
	if (!__sigsetjmp_cancel(ub.__cancel_jmp_buf, 0)) {
		memset(ub.__pad, 0, sizeof ub.__pad);
		*(void **)tls_cleanup_jmp_buf_slot() = &ub;
		main_unwinds = true;
		/* As __libc_start_call_main: the exit handlers run above the
		 * buffer too, and a pthread_exit or cancellation there ends
		 * main as one in main would. */
		exit(user_main(argc, argv, envp));
	}
	/* nptl __libc_start_call_main: main's keys' destructors, then the
	 * thread ends (its robust mutexes are released) and the process
	 * goes on. */
	void *result = main_exit_called ? main_result : PTHREAD_CANCELED;
	thread_main_ending(); /* a cancellation: pthread_exit has done it */
	tls_exit_keys();
	struct gthread *th = thread_self_or_main();
	if (th)
		mutex_owner_died(th);
	sigmask_resync(); /* unwound from a signal handler, the kernel's may differ */
	interpose_enter();
	thread_main_exit(result);
}

static int start_main(libc_start_main_fn *real_start, const char *ver, main_fn main, int argc,
                      char **argv, main_fn init, void (*fini)(void), void (*rtld_fini)(void),
                      void *stack_end)
{
	if (!real_start) /* our constructor has not run (it resolves) */
		real_start = (libc_start_main_fn *)resolve("__libc_start_main", ver);
	user_main = main;
	return real_start(main_start, argc, argv, init, fini, rtld_fini, stack_end);
}

EXPORT int goshim___libc_start_main(main_fn main, int argc, char **argv, main_fn init,
                                    void (*fini)(void), void (*rtld_fini)(void), void *stack_end)
{
	return start_main(real.libc_start_main, "GLIBC_2.34", main, argc, argv, init, fini,
	                  rtld_fini, stack_end);
}
INTERPOSE(__libc_start_main, "GLIBC_2.34");

EXPORT int goshim___libc_start_main_base(main_fn main, int argc, char **argv, main_fn init,
                                         void (*fini)(void), void (*rtld_fini)(void),
                                         void *stack_end)
{
	return start_main(real.libc_start_main_base, V_BASE, main, argc, argv, init, fini,
	                  rtld_fini, stack_end);
}
__asm__(".symver goshim___libc_start_main_base,__libc_start_main@" V_BASE);
