/*
 * Signal masks and pthread_kill for pthread-goroutines (the runtime's side
 * is in runtime/proc.c: sigmask_apply, goroutine_kill).
 *
 * A thread's signal mask is a goroutine's: pthread_sigmask and sigprocmask
 * (the same thing in a threaded process) change the calling goroutine's
 * g.sigmask and its M's mask at once; the M takes the mask of each
 * goroutine it runs, and a new pthread starts with its creator's, as
 * NPTL's do. Old masks are reported from the goroutine's own, so what a
 * thread sets is what it reads back after it moved to another M.
 *
 * pthread_kill of a pthread-goroutine: glibc's would send the signal to
 * the identity's made-up tid (ESRCH). Ours goes to the goroutine: at once
 * through its M when it is running or in a system call, else when it
 * next leaves the runtime (runtime/proc.c: goroutine_kill). A goroutine
 * parked where a signal would interrupt a thread (I/O, poll, sleeps,
 * sem_wait, a condvar wait) is woken (park_interrupt) to run the handler
 * and then fail with EINTR or restart, as the kernel's call would. As NPTL since
 * glibc 2.34: signal 0 and signals to a thread that has exited succeed
 * and send nothing; glibc's internal signals, and numbers out of range to
 * a live thread, are EINVAL. Threads that are not goroutines keep glibc's functions.
 */
#include <errno.h>
#include <string.h>

#include "interpose/interpose.h"

/* Not from a signal handler that interrupted the runtime, and only for a
 * goroutine: a thread the runtime does not know has its own mask. */
static inline struct g *mask_goroutine(void)
{
	if (!interposing() || !may_enter_runtime())
		return NULL;
	return getg();
}

static int set_mask(struct g *gp, int how, const sigset_t *set, sigset_t *old)
{
	uint64_t cur = gp->sigmask, want = cur;
	if (set) {
		uint64_t s;
		memcpy(&s, set, sizeof s);
		switch (how) {
		case SIG_BLOCK:
			want = cur | s;
			break;
		case SIG_UNBLOCK:
			want = cur & ~s;
			break;
		case SIG_SETMASK:
			want = s;
			break;
		default:
			return EINVAL;
		}
		want = sigmask_fix(want);
	}
	if (old) {
		sigemptyset(old);
		memcpy(old, &cur, sizeof cur);
	}
	if (want != cur) {
		interpose_enter();
		goroutine_setmask(gp, want);
		interpose_leave(); /* delivers what pthread_kill left pending, if now unblocked */
	}
	return 0;
}

EXPORT int goshim_pthread_sigmask(int how, const sigset_t *set, sigset_t *old)
{
	struct g *gp = mask_goroutine();
	if (!gp)
		return real.pthread_sigmask(how, set, old);
	return set_mask(gp, how, set, old);
}
INTERPOSE(pthread_sigmask, "GLIBC_2.32");
INTERPOSE_COMPAT(pthread_sigmask, V_BASE, base);

EXPORT int goshim_sigprocmask(int how, const sigset_t *set, sigset_t *old)
{
	struct g *gp = mask_goroutine();
	if (!gp)
		return real.sigprocmask(how, set, old);
	int err = set_mask(gp, how, set, old);
	if (err) {
		errno = err;
		return -1;
	}
	return 0;
}
INTERPOSE(sigprocmask, V_BASE);

bool sigs_restart(uint64_t sigs)
{
	while (sigs) {
		int sig = __builtin_ctzll(sigs) + 1;
		sigs &= sigs - 1;
		struct sigaction sa;
		if (sigaction(sig, NULL, &sa) != 0 || sa.sa_handler == SIG_DFL ||
		    sa.sa_handler == SIG_IGN)
			continue;
		if (!(sa.sa_flags & SA_RESTART))
			return false;
	}
	return true;
}

/* The kernel's pending set, and what pthread_kill left pending for the
 * calling goroutine. */
EXPORT int goshim_sigpending(sigset_t *set)
{
	int r = real.sigpending(set);
	struct g *gp = mask_goroutine();
	if (r == 0 && gp) {
		uint64_t mine = atomic_load(&gp->sigpending), k;
		memcpy(&k, set, sizeof k);
		k |= mine;
		memcpy(set, &k, sizeof k);
	}
	return r;
}
INTERPOSE(sigpending, V_BASE);

EXPORT int goshim_pthread_kill(pthread_t t, int sig)
{
	struct gthread *th;
	if (!interposing() || !(th = thread_of(t)) || th == thread_self())
		return real.pthread_kill(t, sig); /* to itself: glibc uses the M's tid */
	/* In glibc's order: its own signals are refused, a thread that has
	 * exited gets nothing (whatever the number), and the kernel refuses
	 * a number out of range. */
	if (sig == 32 || sig == 33)
		return EINVAL; /* SIGCANCEL and SIGSETXID */
	if (atomic_load(&th->state) & THREAD_EXITED)
		return 0;
	if (sig < 0 || sig > 64)
		return EINVAL;
	if (sig == 0)
		return 0;
	int e = errno;
	/* No runtime entry to leave it pending: safe from a signal handler.
	 * The target's wait ends here where the caller may enter the runtime,
	 * and then the caller yields, as the kernel lets a woken thread run;
	 * from a handler that interrupted the scheduler or the runtime, the
	 * next M through the scheduler, or sysmon, ends it. */
	if (goroutine_kill(th->g, sig)) {
		if (may_enter_runtime()) {
			interpose_enter();
			bool readied = park_interrupt(th->g);
			interpose_leave();
			if (readied)
				sched_yield(); /* ours */
		} else {
			park_interrupt_later(th->g);
		}
	}
	errno = e;
	return 0;
}
INTERPOSE(pthread_kill, "GLIBC_2.34");
INTERPOSE_COMPAT(pthread_kill, V_BASE, base);
