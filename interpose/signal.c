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
 *
 * The program's handlers (sigaction and the older calls built on it) are
 * installed behind sig_router, which decides where a signal that landed
 * on some M runs (runtime/proc.c: sig_route): one sent to the process
 * goes on to main, as the kernel would give it to the main thread, unless
 * main blocks it; then it runs where it landed if a thread of the program
 * that lets it through runs there, and is placed on one, or kept pending
 * for the process, if not. The program still reads back the action it set:
 * user_act keeps its handler and the two flags the router stands in for
 * (SA_SIGINFO, SA_RESETHAND); the kernel keeps the rest. Synchronous
 * signals (a fault runs where it happened) and glibc's own are not routed.
 */
#include <errno.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

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
		uint64_t mine = atomic_load(&gp->sigpending) | proc_pending_sigs(), k;
		memcpy(&k, set, sizeof k);
		k |= mine;
		memcpy(set, &k, sizeof k);
	}
	return r;
}
INTERPOSE(sigpending, V_BASE);

/* The goroutine behind a pthread_t: a pthread-goroutine's, or main's. */
static struct g *target_of(pthread_t t, bool *exited)
{
	struct gthread *th = thread_joinable_of(t); /* main's too, ended or not */
	*exited = false;
	if (th) {
		*exited = atomic_load(&th->state) & THREAD_EXITED;
		return th->g;
	}
	struct g *mg = atomic_load(&main_g);
	return mg && pthread_equal(t, main_pthread) ? mg : NULL;
}

EXPORT int goshim_pthread_kill(pthread_t t, int sig)
{
	struct g *gp;
	bool exited;
	if (!interposing() || !(gp = target_of(t, &exited)) || gp == getg())
		return real.pthread_kill(t, sig); /* to itself: glibc uses the M's tid */
	/* In glibc's order: its own signals are refused, a thread that has
	 * exited gets nothing (whatever the number), and the kernel refuses
	 * a number out of range. */
	if (sig == 32 || sig == 33)
		return EINVAL; /* SIGCANCEL and SIGSETXID */
	if (exited) /* glibc: an ended main's kernel thread has cleared its tid */
		return pthread_equal(t, main_pthread) ? EINVAL : 0;
	if (sig < 0 || sig > 64)
		return EINVAL;
	if (sig == 0)
		return 0;
	int e = errno;
	if (gp == atomic_load(&main_g)) {
		/* What the router gives main's handler, and the mark that
		 * this signal is on its way to main (sig_route). */
		siginfo_t si;
		siginfo_self(&si, sig, SI_TKILL);
		main_info_put(sig, &si);
	}
	/* No runtime entry to leave it pending: safe from a signal handler.
	 * The target's wait ends here where the caller may enter the runtime,
	 * and then the caller yields, as the kernel lets a woken thread run;
	 * from a handler that interrupted the scheduler or the runtime, the
	 * next M through the scheduler, or sysmon, ends it. */
	if (goroutine_kill(gp, sig)) {
		if (may_enter_runtime()) {
			interpose_enter();
			bool readied = park_interrupt(gp);
			interpose_leave();
			if (readied)
				sched_yield(); /* ours */
		} else {
			park_interrupt_later(gp);
		}
	}
	errno = e;
	return 0;
}
INTERPOSE(pthread_kill, "GLIBC_2.34");
INTERPOSE_COMPAT(pthread_kill, V_BASE, base);

/* kill of its own process by main, which lets the signal through: POSIX
 * has it delivered to the caller before kill returns when no other thread
 * lets it through, and Linux gives it to the main thread first. main's
 * M may be any thread, and the kernel's choice another: the signal is
 * sent to the calling thread itself, with the siginfo of a kill. */
EXPORT int kill(pid_t pid, int sig)
{
	struct g *gp = mask_goroutine();
	if (!gp || gp != atomic_load(&main_g) || pid != getpid() || sig < 1 || sig > 64 ||
	    (gp->sigmask & SIGBIT(sig)) || (SIGBIT(sig) & (SIG_NEVER_BLOCKED | SIG_SYNCHRONOUS)))
		return real.kill(pid, sig);
	siginfo_t si;
	siginfo_self(&si, sig, SI_USER);
	/* No scheduling point between the two calls: main stays on this M. */
	return (int)syscall(SYS_rt_tgsigqueueinfo, pid, (pid_t)syscall(SYS_gettid), sig, &si);
}
SYMVER(kill, V_BASE);

/* ---- the program's handlers, behind the router ---------------------- */

#define ACT_SIGINFO (UINT64_C(1) << 63)
#define ACT_RESETHAND (UINT64_C(1) << 62)
#define ACT_HANDLER (ACT_RESETHAND - 1) /* user addresses are below 2^62 */
static _Atomic uint64_t user_act[65];    /* 0: none (the router passes) */
static _Atomic uint64_t sigintr;         /* siginterrupt's set (glibc's _sigintr) */

static bool routed(int sig)
{
	return sig >= 1 && sig <= 64 && !(SIGBIT(sig) & (SIG_NEVER_BLOCKED | SIG_SYNCHRONOUS));
}

static void goshim_sig_router(int sig, siginfo_t *si, void *uc)
{
	int e = errno;
	uint64_t a = atomic_load(&user_act[sig]);
	int route = a ? sig_route(sig, si) : SIG_ROUTE_SENT; /* none: a race with sigaction */
	if (route != SIG_ROUTE_HERE) {
		errno = e;
		return;
	}
	if (a & ACT_RESETHAND) {
		/* The kernel would have reset it as it delivered the signal
		 * (the handler only: the flags read back as they were set);
		 * the router does so where the handler runs. */
		uint64_t exp = a;
		if (atomic_compare_exchange_strong(&user_act[sig], &exp, 0)) {
			struct { void *handler; unsigned long flags; void *restorer; uint64_t mask; } k;
			if (syscall(SYS_rt_sigaction, sig, NULL, &k, sizeof k.mask) == 0 &&
			    k.handler == (void *)goshim_sig_router) {
				k.handler = SIG_DFL;
				k.flags = (k.flags & ~(unsigned long)SA_SIGINFO) | SA_RESETHAND |
				          (a & ACT_SIGINFO ? SA_SIGINFO : 0);
				syscall(SYS_rt_sigaction, sig, &k, NULL, sizeof k.mask);
			}
			sig_catch_changed();
		} else if (!exp) {
			/* Another delivery ran it and reset it: this one meets
			 * the default action, as the kernel would give it. */
			syscall(SYS_tgkill, (pid_t)syscall(SYS_getpid), (pid_t)syscall(SYS_gettid), sig);
			errno = e;
			return;
		}
	}
	/* The goroutine's interposed calls from the handler do not yield at
	 * runtime_leave: an enclosing handler's frame is above ours; a stale
	 * mark (the handler longjmp'd out) is below. */
	struct g *gp = getg();
	uintptr_t here = (uintptr_t)__builtin_frame_address(0);
	bool mark = gp && (!gp->handler_sp || gp->handler_sp < here);
	if (mark)
		gp->handler_sp = here;
	errno = e;
	void *h = (void *)(uintptr_t)(a & ACT_HANDLER);
	if (a & ACT_SIGINFO)
		((void (*)(int, siginfo_t *, void *))h)(sig, si, uc);
	else
		((void (*)(int))h)(sig);
	if (mark)
		gp->handler_sp = 0;
}

EXPORT int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
	if (!interposing() || !routed(sig))
		return real.sigaction(sig, act, old);
	struct sigaction k, kold;
	const struct sigaction *use = act;
	uint64_t entry = 0;
	if (act && act->sa_handler != SIG_DFL && act->sa_handler != SIG_IGN) {
		entry = ((uintptr_t)act->sa_handler & ACT_HANDLER) |
		        (act->sa_flags & SA_SIGINFO ? ACT_SIGINFO : 0) |
		        (act->sa_flags & SA_RESETHAND ? ACT_RESETHAND : 0);
		k = *act;
		k.sa_sigaction = goshim_sig_router;
		k.sa_flags = (act->sa_flags & ~SA_RESETHAND) | SA_SIGINFO;
		use = &k;
		sig_router_fn = (void *)goshim_sig_router;
	}
	/* A handler is recorded before the router may see its signal; one
	 * removed is forgotten once the router can no longer see it. */
	uint64_t prev = entry ? atomic_exchange(&user_act[sig], entry) : atomic_load(&user_act[sig]);
	bool unroute = act && !entry && prev;
	if (unroute)
		sig_unroute_begin(sig, may_enter_runtime());
	int rc = real.sigaction(sig, use, &kold);
	if (unroute)
		sig_unroute_end(sig);
	if (rc != 0) {
		if (entry)
			atomic_store(&user_act[sig], prev);
		return -1;
	}
	if (act && !entry) {
		prev = atomic_exchange(&user_act[sig], 0);
		siginfo_t stale;
		main_info_take(sig, &stale); /* kept for a handler that is gone */
	}
	if (old) {
		*old = kold;
		if (kold.sa_sigaction == goshim_sig_router) {
			old->sa_handler = prev ? (sighandler_t)(uintptr_t)(prev & ACT_HANDLER) : SIG_DFL;
			old->sa_flags = (kold.sa_flags & ~SA_SIGINFO) |
			                (prev & ACT_SIGINFO ? SA_SIGINFO : 0) |
			                (prev & ACT_RESETHAND ? SA_RESETHAND : 0);
		}
	}
	if (act)
		sig_catch_changed();
	return 0;
}
SYMVER(sigaction, V_BASE);

static bool internal_or_bad(int sig)
{
	return sig < 1 || sig > 64 || sig == 32 || sig == 33;
}

/* signal and sysv_signal: one action, the previous handler back. */
static sighandler_t set_handler(int sig, sighandler_t handler, int flags, bool block_self)
{
	if (handler == SIG_ERR || internal_or_bad(sig)) {
		errno = EINVAL;
		return SIG_ERR;
	}
	struct sigaction act, old;
	memset(&act, 0, sizeof act);
	act.sa_handler = handler;
	sigemptyset(&act.sa_mask);
	if (block_self)
		sigaddset(&act.sa_mask, sig);
	act.sa_flags = flags;
	if (sigaction(sig, &act, &old) < 0)
		return SIG_ERR;
	return old.sa_handler;
}

/* glibc's signal (BSD semantics): the signal blocked in its handler, and
 * SA_RESTART unless siginterrupt said otherwise. */
EXPORT sighandler_t signal(int sig, sighandler_t handler)
{
	if (!interposing())
		return real.signal(sig, handler);
	int flags = sig >= 1 && sig <= 64 && (atomic_load(&sigintr) & SIGBIT(sig)) ? 0 : SA_RESTART;
	return set_handler(sig, handler, flags, true);
}
SYMVER(signal, V_BASE);

EXPORT sighandler_t bsd_signal(int sig, sighandler_t handler)
{
	return signal(sig, handler);
}
SYMVER(bsd_signal, V_BASE);

EXPORT sighandler_t ssignal(int sig, sighandler_t handler)
{
	return signal(sig, handler);
}
SYMVER(ssignal, V_BASE);

/* System V semantics: reset on delivery, not blocked, not restarted. */
EXPORT sighandler_t sysv_signal(int sig, sighandler_t handler)
{
	if (!interposing())
		return real.sysv_signal(sig, handler);
	return set_handler(sig, handler, SA_RESETHAND | SA_NODEFER, false);
}
SYMVER(sysv_signal, V_BASE);

EXPORT sighandler_t __sysv_signal(int sig, sighandler_t handler)
{
	return sysv_signal(sig, handler);
}
SYMVER(__sysv_signal, V_BASE);

EXPORT int siginterrupt(int sig, int interrupt)
{
	if (!interposing())
		return real.siginterrupt(sig, interrupt);
	struct sigaction act;
	if (internal_or_bad(sig)) {
		errno = EINVAL;
		return -1;
	}
	if (sigaction(sig, NULL, &act) < 0)
		return -1;
	if (interrupt) {
		atomic_fetch_or(&sigintr, SIGBIT(sig));
		act.sa_flags &= ~SA_RESTART;
	} else {
		atomic_fetch_and(&sigintr, ~SIGBIT(sig));
		act.sa_flags |= SA_RESTART;
	}
	return sigaction(sig, &act, NULL) < 0 ? -1 : 0;
}
SYMVER(siginterrupt, V_BASE);

/* The System V mask calls, on the goroutine's mask as pthread_sigmask. */
static int mask_one(int how, int sig, sigset_t *old)
{
	sigset_t set;
	sigemptyset(&set);
	if (sigaddset(&set, sig) < 0)
		return -1;
	return goshim_sigprocmask(how, &set, old);
}

EXPORT int sighold(int sig)
{
	if (!interposing())
		return real.sighold(sig);
	return mask_one(SIG_BLOCK, sig, NULL);
}
SYMVER(sighold, V_BASE);

EXPORT int sigrelse(int sig)
{
	if (!interposing())
		return real.sigrelse(sig);
	return mask_one(SIG_UNBLOCK, sig, NULL);
}
SYMVER(sigrelse, V_BASE);

/* sigpause (System V: the mask without sig; BSD: the given mask, its
 * first word) waits as sigsuspend: glibc's calls its own, which would
 * take the goroutine's M into the kernel with its P. */
EXPORT int __sigpause(int sig_or_mask, int is_sig)
{
	sigset_t set;
	struct g *gp = mask_goroutine();
	if (is_sig) {
		if (gp) {
			sigemptyset(&set);
			memcpy(&set, &gp->sigmask, sizeof gp->sigmask);
		} else if (real.sigprocmask(SIG_BLOCK, NULL, &set) != 0) {
			return -1;
		}
		if (sigdelset(&set, sig_or_mask) < 0)
			return -1;
	} else {
		sigemptyset(&set);
		uint64_t m = (unsigned int)sig_or_mask;
		memcpy(&set, &m, sizeof m);
	}
	return sigsuspend(&set);
}
SYMVER(__sigpause, V_BASE);

/* <signal.h> names glibc's __xpg_sigpause "sigpause": ours go by their
 * own names, given glibc's at link time. */
EXPORT int goshim_sigpause(int mask)
{
	return __sigpause(mask, 0);
}
INTERPOSE(sigpause, V_BASE);

EXPORT int goshim___xpg_sigpause(int sig)
{
	return __sigpause(sig, 1);
}
INTERPOSE(__xpg_sigpause, V_BASE);

/* sigignore: SIG_IGN through sigaction, which the router keeps track of. */
EXPORT int sigignore(int sig)
{
	struct sigaction act;
	memset(&act, 0, sizeof act);
	act.sa_handler = SIG_IGN;
	sigemptyset(&act.sa_mask);
	return sigaction(sig, &act, NULL);
}
SYMVER(sigignore, V_BASE);

/* glibc's sigset: SIG_HOLD blocks; any other disposition is installed
 * and the signal unblocked. Returns SIG_HOLD if it was blocked before. */
EXPORT sighandler_t sigset(int sig, sighandler_t disp)
{
	if (!interposing())
		return real.sigset(sig, disp);
	struct sigaction act, old;
	sigset_t oset;
	if (disp == SIG_HOLD) {
		if (mask_one(SIG_BLOCK, sig, &oset) < 0)
			return SIG_ERR;
		if (sigismember(&oset, sig))
			return SIG_HOLD;
		if (sigaction(sig, NULL, &old) < 0)
			return SIG_ERR;
		return old.sa_handler;
	}
	memset(&act, 0, sizeof act);
	act.sa_handler = disp;
	sigemptyset(&act.sa_mask);
	if (sigaction(sig, &act, &old) < 0)
		return SIG_ERR;
	if (mask_one(SIG_UNBLOCK, sig, &oset) < 0)
		return SIG_ERR;
	return sigismember(&oset, sig) ? SIG_HOLD : old.sa_handler;
}
SYMVER(sigset, V_BASE);
