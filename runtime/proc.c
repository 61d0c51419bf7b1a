/*
 * The scheduler: G, M and P, ported from Go's runtime/proc.go (Go 1.19).
 *
 * Go's design comment applies unchanged: Ms run goroutines while they hold
 * a P; an M with nothing to do spins for a while (stealing from other Ps in
 * random order) and then parks on its note. Goroutines made runnable go to
 * the readier's P (runnext first), and wakep() starts one spinning M if there
 * is an idle P and nobody spins, so a burst of work wakes at most one thread
 * at a time ("no thundering herd") and no work is left with every M asleep
 * ("no lost wake-ups": a spinning M that gives up re-checks every run queue
 * after it decremented nmspinning, see findrunnable).
 *
 * What differs from Go, and why:
 *  - Goroutines run foreign C code, which cannot be preempted or moved.
 *    Between runtime calls a goroutine is treated like one in a syscall:
 *    runtime_leave() puts its P in _Psyscall (its M keeps m.oldp), and
 *    runtime_enter() takes it back, like Go's entersyscall/exitsyscallfast
 *    but without Go's CAS: every pthread call of the program enters. The
 *    thieves of a _Psyscall P pay instead, with a membarrier (the protocol
 *    is stated above p_take_syscall). sysmon's retake may hand such a P to
 *    another M when the goroutine has run foreign code for 10 ms while work
 *    waits; the goroutine keeps its M and gets a P again when it next
 *    enters the runtime (design principle 3).
 *  - Threads that the runtime did not create (main, foreign threads calling
 *    the API) are adopted as goroutines running on their own stack and
 *    locked to their M (Go's needm); the M gets a separate g0 stack.
 *  - There is no GC: "stop the world" exists only for procresize.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "runtime/runtime.h"

#ifdef GOSHIM_ASAN
#include <sanitizer/asan_interface.h>
#endif
#ifdef GOSHIM_TSAN
#include <sanitizer/tsan_interface.h>
#endif
#ifdef HAVE_VALGRIND_VALGRIND_H
#include <valgrind/valgrind.h>
#endif

#define MAX_PROCS 1024
#define goidCacheBatch 16

struct schedt sched;
struct p **allp;
_Atomic int32_t gomaxprocs;
int32_t nallp;
mutex_t allglock;
struct g *allgs;
mutex_t allmlock;
struct m *allm;
bool runtime_inited;
__thread struct g *goshim_g __attribute__((tls_model("initial-exec")));
#ifdef GOSHIM_TSAN
__attribute__((no_sanitize("thread"), noinline)) struct g *getg(void)
{
	struct g *gp;
	__asm__ volatile("" ::: "memory");
	gp = *(struct g *volatile *)&goshim_g;
	return gp;
}
__attribute__((no_sanitize("thread"), noinline)) void setg(struct g *gp)
{
	*(struct g *volatile *)&goshim_g = gp;
}
#endif

static _Atomic bool sysmon_started;

/* A fork child starts with one thread and no sysmon (afterforkinchild):
 * the first goroutine created there brings it back (newproc1,
 * newproc_thread), as another goroutine may then wait for a P that a
 * system call holds. The other goroutines of the child are the forking
 * one and its coroutines; timers made before the fork start it at once. */
static inline void sysmon_ensure(void)
{
	if (unlikely(!atomic_load_explicit(&sysmon_started, memory_order_relaxed)) &&
	    __atomic_load_n(&runtime_inited, __ATOMIC_ACQUIRE))
		newm_sysmon();
}
static _Atomic bool mainStarted;
static _Atomic int32_t nthreads_own; /* OS threads that are Ms, plus sysmon */
static pthread_key_t needm_key;
static uint64_t initial_mask; /* the loading thread's, for goroutines g0 starts */

/* ---- signal masks --------------------------------------------------- */

/* Not in Go, whose goroutines have no masks. A pthread-goroutine's mask is
 * its thread's: kept in g.sigmask (pthread_sigmask, interpose/signal.c),
 * inherited by the goroutines it creates, and put on the M by execute
 * when it differs from the M's (one system call, only then).
 *
 * An M that runs no thread of the program must not take a signal that
 * every thread of the program blocks (natively it would wait for sigwait,
 * or for a thread to unblock it). Until some goroutine first sets a mask
 * other than the one the process had at start (masks_used), every thread
 * has that mask, so any M may take what it lets through and nothing is
 * done. From then on an M with no thread of the program blocks every
 * asynchronous signal (MASK_IDLE): a new M, one going to sleep in stopm or
 * netpoll, one whose goroutine exited. The change itself (sigmask_used)
 * brings every M that runs no goroutine to MASK_IDLE before the
 * pthread_sigmask that made it returns. Between two live goroutines an M
 * keeps the mask of the one it left (a system call per switch would cost
 * more than the signals it saves): a signal sent to the process that
 * lands there is placed by the router instead (sig_route, sig_place). */
static _Atomic bool masks_used;
static _Atomic uint32_t mask_epoch; /* bumped by sigmask_used; Ms ack in m.mask_epoch */
#define MASK_IDLE (~(SIG_NEVER_BLOCKED | SIG_SYNCHRONOUS))

uint64_t sigmask_fix(uint64_t mask)
{
	return mask & ~SIG_NEVER_BLOCKED;
}

void sigmask_apply(struct m *mp, uint64_t mask)
{
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &mask, NULL, sizeof mask);
	mp->sigmask = mask;
}

/* The calling goroutine's mask on its M again, after a longjmp out of a
 * signal handler left the handler's there behind mp->sigmask's back. */
void sigmask_resync(void)
{
	struct g *gp = getg();
	sigmask_apply(gp->m, gp->sigmask);
}

/* An M with no thread of the program: MASK_IDLE once masks are used.
 * Also acknowledges sigmask_used's epoch. */
static inline void sigmask_idle(struct m *mp)
{
	if (likely(!atomic_load_explicit(&masks_used, memory_order_relaxed)))
		return;
	if (mp->sigmask != MASK_IDLE && !mp->lockedg)
		sigmask_apply(mp, MASK_IDLE);
	atomic_store(&mp->mask_epoch, atomic_load(&mask_epoch));
}

static void sigmask_used(void);
static void sig_catch_sync(uint64_t newly);
static bool marked_for_goroutine(const siginfo_t *si, struct g **to);
static void sig_missed(struct g *to, int sig);
static bool sig_tracked(struct g *gp, int sig, void *h);
static bool tgkill_goroutine(struct g *gp, pid_t tid, int sig);

/* pthread_sigmask of the calling goroutine, inside the runtime (so on the
 * M it runs on until it leaves). */
void goroutine_setmask(struct g *gp, uint64_t mask)
{
	uint64_t old = gp->sigmask;
	/* seq_cst against main_ended below: sysmon reads it once main has
	 * ended (live_threads_blocked). */
	__atomic_store_n(&gp->sigmask, mask, __ATOMIC_SEQ_CST);
	sigmask_apply(getg()->m, mask);
	proc_pending_claim(gp, ~mask);
	if (gp == atomic_load(&main_g) || atomic_load(&main_ended))
		sig_catch_sync(mask & ~old); /* sysmon catches for main, or all */
	if (unlikely(mask != initial_mask) && !atomic_load(&masks_used))
		sigmask_used();
}

void sigprocmask_raw(int how, const sigset_t *set, sigset_t *old)
{
	if (old)
		sigemptyset(old);
	syscall(SYS_rt_sigprocmask, how, set, old, sizeof(uint64_t));
}

/* Signals pending for the calling thread alone (not the process's), from
 * /proc/thread-self/status; raw system calls (execute runs on g0). */
static uint64_t thread_sigpending(void)
{
	char buf[2048];
	int fd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/thread-self/status", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = syscall(SYS_read, fd, buf, sizeof buf - 1);
	syscall(SYS_close, fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	char *p = strstr(buf, "SigPnd:");
	return p ? strtoull(p + 7, NULL, 16) : 0;
}

/* execute's mask change. A signal the M's thread has pending because the
 * goroutine that ran there blocked it (the kernel's SIGPIPE after its
 * write, a pthread_kill while it was in a system call) is that thread's:
 * before the next goroutine's mask lets it through, it is taken off the M
 * (a zero-timeout sigtimedwait, which takes the thread's own first) and
 * given back to that goroutine as pending, or dropped if that thread has
 * ended, as the kernel would. Signals pending for the process stay: any
 * thread that lets them through may take them. Only masks that differ
 * pay for the check, and only a pending signal for the rest. */
static void sigmask_switch(struct m *mp, struct g *gp)
{
	uint64_t opened = mp->sigmask & ~gp->sigmask, pending = 0;
	if (opened)
		syscall(SYS_rt_sigpending, &pending, sizeof pending);
	if (pending & opened) {
		uint64_t mine = thread_sigpending() & opened;
		struct g *last = mp->lastg;
		while (mine) {
			int sig = __builtin_ctzll(mine) + 1;
			uint64_t set = SIGBIT(sig);
			mine &= ~set;
			siginfo_t si;
			struct timespec zero = {0, 0};
			if (syscall(SYS_rt_sigtimedwait, &set, &si, &zero, sizeof set) != sig)
				continue;
			/* One the runtime sent on to a goroutine names it. */
			struct g *to;
			if (marked_for_goroutine(&si, &to)) {
				if (to)
					sig_missed(to, sig);
			} else if (last && last != gp && readgstatus(last) != _Gdead) {
				atomic_fetch_or(&last->sigpending, SIGBIT(sig));
			}
		}
	}
	sigmask_apply(mp, gp->sigmask);
}

/* Sends sig to one thread of this process (raw: the runtime never calls
 * an interposed symbol). */
static void tgkill_raw(pid_t tid, int sig)
{
	syscall(SYS_tgkill, (pid_t)syscall(SYS_getpid), tid, sig);
}

static void tgkill_g(struct g *gp, pid_t tid, int sig);

/* The action for sig: SIG_DFL, SIG_IGN or a handler (raw: the runtime
 * never calls the interposed sigaction). */
static void *sig_handler(int sig)
{
	struct { void *handler; unsigned long flags; void *restorer; uint64_t mask; } ka;
	if (syscall(SYS_rt_sigaction, sig, NULL, &ka, sizeof(uint64_t)) != 0)
		return SIG_IGN;
	return ka.handler;
}

/* Does sig, unhandled (its action h), end or stop the process (its
 * default action)? */
static bool sig_default_acts(int sig, void *h)
{
	if (sig == SIGKILL || sig == SIGSTOP)
		return true;
	if (h != SIG_DFL)
		return false;
	return sig != SIGCHLD && sig != SIGURG && sig != SIGWINCH && sig != SIGCONT;
}

/* Would sig, let through, be thrown away (ignored, by the program or by
 * default; h its action)? As the kernel's sig_ignored, which keeps a
 * blocked one. */
static bool sig_discarded(int sig, void *h)
{
	return h == SIG_IGN ||
	       (h == SIG_DFL && (sig == SIGCHLD || sig == SIGURG || sig == SIGWINCH || sig == SIGCONT));
}

/* The goroutine whose thread this is, from a signal handler: g, except in
 * execute's last steps, where g is already the goroutine to run but its
 * identity is not installed yet: the thread is still the scheduler's. */
static struct g *g_here(void)
{
	struct g *gp = getg();
	if (gp && gp->sched.tls && gp->sched.tls != goshim_arch_tls_base() && gp->m)
		return gp->m->g0;
	return gp;
}

/* pthread_kill of gp (no runtime entry: it may come from a signal
 * handler). True when the signal is now pending for gp (it was not) and
 * its mask lets it through: the caller may end gp's wait (park_interrupt)
 * so that the handler runs now. A signal that was pending already had its
 * chance, and a wait that begins with one pending does not park. */
bool goroutine_kill(struct g *gp, int sig)
{
	uint64_t bit = SIGBIT(sig);
	bool blocked = gp->sigmask & bit;
	void *h = blocked ? NULL : sig_handler(sig); /* only read when it acts */
	if (!blocked && sig_default_acts(sig, h)) {
		/* It ends (or stops) the whole process now, whichever thread
		 * takes it: take it here, unblocked for the moment. */
		uint64_t one = bit, old;
		syscall(SYS_rt_sigprocmask, SIG_UNBLOCK, &one, &old, sizeof one);
		tgkill_raw((pid_t)syscall(SYS_gettid), sig);
		syscall(SYS_rt_sigprocmask, SIG_SETMASK, &old, NULL, sizeof old);
		return false;
	}
	if (!blocked && sig_discarded(sig, h))
		return false;
	bool fresh = !(atomic_fetch_or(&gp->sigpending, bit) & bit);
	uint32_t st = readgstatus(gp);
	struct m *mp = __atomic_load_n(&gp->m, __ATOMIC_ACQUIRE);
	if ((st != _Grunning && st != _Gsyscall) || !mp || mp->curg != gp)
		return fresh && !blocked;
	/* gp's M is the calling thread, in the scheduler on its way into gp
	 * (execute: the signal landed before gogo): gp finds it pending as
	 * it leaves the runtime. A tgkill would come straight back here, to
	 * the scheduler, and again after every return from the handler. */
	struct g *me = g_here();
	if (me && me != gp && me->m == mp)
		return false;
	if (blocked && !(st == _Gsyscall && (atomic_load(&gp->callopen) & bit)))
		return false; /* blocked: it stays the goroutine's, wherever it runs
		               * next, unless its system call takes it (sigwait,
		               * sigsuspend) */
	if (!(atomic_fetch_and(&gp->sigpending, ~bit) & bit))
		return false;
	if (blocked) {
		tgkill_raw(mp->procid, sig); /* its sigwait takes it: no mark in the siginfo */
		return false;
	}
	if (!sig_tracked(gp, sig, h)) {
		tgkill_g(gp, mp->procid, sig);
		return false;
	}
	/* In flight from here (tgkill_goroutine). If gp left mp meanwhile,
	 * maybe before the bit was set, take it back as pending: against
	 * dropg_of, which clears g.m and then reads the bit, one of the two
	 * sees the other (the fences), and exactly one takes the bit. */
	atomic_fetch_or(&gp->siginflight, bit);
	fence_heavy();
	if (__atomic_load_n(&gp->m, __ATOMIC_SEQ_CST) == mp && tgkill_goroutine(gp, mp->procid, sig))
		return false;
	if (atomic_fetch_and(&gp->siginflight, ~bit) & bit)
		atomic_fetch_or(&gp->sigpending, bit);
	return fresh;
}

/* Asynchronous cancellation of gp, which glibc's pthread_cancel has marked
 * CANCELING (its SIGCANCEL went to the made-up tid): SIGCANCEL pending for
 * gp, and sent now to the M it runs on, if it runs; a parked gp's wait
 * ends as for a signal. gp.cancelsig and the pending bit stay set until
 * the handler acts on gp's identity (tls.c: sigcancel_on_goroutine), so a
 * signal that reaches the M after gp left it is dropped there and gp takes
 * the pending one on its way out of the runtime. The caller holds a P. */
void goroutine_cancel_async(struct g *gp)
{
	atomic_store(&gp->cancelsig, true);
	atomic_fetch_or(&gp->sigpending, SIGBIT(SIGCANCEL_NO));
	/* Against a gp parking now (dropg_of, then parkq_commit's check of
	 * the pending bit): it sees the bit, or this sees it gone from mp. */
	fence_heavy();
	uint32_t st = readgstatus(gp);
	struct m *mp = __atomic_load_n(&gp->m, __ATOMIC_ACQUIRE);
	if ((st == _Grunning || st == _Gsyscall) && mp && mp->curg == gp)
		tgkill_raw(mp->procid, SIGCANCEL_NO);
	else
		park_interrupt(gp);
}

/* Signals pending for gp that its mask lets through: what ends a wait
 * that a signal may end (PARK_INTR). */
uint64_t park_sigs(struct g *gp)
{
	return atomic_load(&gp->sigpending) & ~gp->sigmask;
}

/* Raises the calling goroutine's pending signals on its M: those its mask
 * lets through (the kernel runs each handler before tgkill returns), and
 * the blocked ones in also (before a sigwait for them, which takes them). */
void sigpending_deliver(uint64_t also)
{
	struct g *gp = getg();
	uint64_t want = atomic_load(&gp->sigpending) & (~gp->sigmask | also);
	while (want) {
		int sig = __builtin_ctzll(want) + 1;
		uint64_t bit = SIGBIT(sig);
		want &= ~bit;
		if (!(atomic_fetch_and(&gp->sigpending, ~bit) & bit))
			continue;
		if (bit & also & gp->sigmask) {
			siginfo_t si;
			if (gp == atomic_load(&main_g))
				main_info_take(sig, &si); /* a sigwait takes it, not the router */
			tgkill_raw(gp->m->procid, sig);
		} else if (sig_tracked(gp, sig, sig_handler(sig))) {
			/* To itself: it lands before tgkill returns, in gp. */
			atomic_fetch_or(&gp->siginflight, bit);
			if (!tgkill_goroutine(gp, gp->m->procid, sig)) {
				atomic_fetch_and(&gp->siginflight, ~bit);
				tgkill_raw(gp->m->procid, sig);
			}
		} else {
			tgkill_g(gp, gp->m->procid, sig);
		}
	}
}

/* ---- main and process-directed signals ----------------------------- */

/* Not in Go, whose signals all go to its own handler. A process-directed
 * signal (kill, Ctrl-C, alarm, a timer, SIGCHLD) goes to a thread that
 * does not block it, and Linux asks the thread group leader first: the
 * program's handler runs in main, and main's blocking call fails with
 * EINTR, the usual way a server's main loop learns it must stop. main is
 * an ordinary goroutine here (main_unlock) and the leader is M0, which
 * runs whatever goroutine comes, so the program's handlers are installed
 * behind a router (interpose/signal.c) that sends such a signal on to
 * main when main lets it through: pending on main, whose wait ends
 * (park_interrupt_later) and which runs the handler where it is next
 * running, as pthread_kill does. Invariants:
 *  - One aimed at a thread (tgkill, raise, the kernel's SIGPIPE to the
 *    writer), any taken by main itself, and one main blocks that lands on
 *    a goroutine that lets it through run where they land. One main
 *    blocks that lands where no thread of the program that lets it
 *    through runs (an M's stale mask, sysmon) is placed as the kernel
 *    would place it (sig_place), or kept pending for the process.
 *  - sysmon's thread lets through every signal the router handles, and
 *    one with no handler when main lets it through (sysmon_sigmask); it
 *    runs no handler: with main parked and every M busy or idle, a signal
 *    still has a thread to land on.
 *  - The siginfo of a forwarded signal is kept (main_info, one per
 *    signal: standard signals do not queue) and handed to the handler
 *    when it runs in main. The runtime's own sending to main's M is
 *    marked (tgkill_main), and so is its sending to another goroutine's M
 *    (tgkill_goroutine): a marked copy that lands where its goroutine no
 *    longer is, or is not yet (execute), is sent on again. */
_Atomic(struct g *) main_g;
pthread_t main_pthread;
static siginfo_t main_info[65];
static _Atomic uint64_t main_info_busy, main_info_set;
static _Atomic uint32_t catch_epoch; /* sig_catch_changed: sysmon's mask is stale */
static _Atomic uint32_t sysmon_kick;  /* bumped to cut sysmon's sleep short */
static _Atomic uint32_t sysmon_acked; /* the catch_epoch sysmon's mask reflects */
static _Atomic uint64_t sysmon_open;  /* signals sysmon's mask lets through */
__thread bool on_sysmon __attribute__((tls_model("initial-exec")));

void main_info_put(int sig, const siginfo_t *si)
{
	uint64_t bit = SIGBIT(sig);
	if (atomic_fetch_or(&main_info_busy, bit) & bit)
		return; /* one is kept already: the two are one pending signal */
	main_info[sig] = *si;
	atomic_fetch_or(&main_info_set, bit);
}

bool main_info_take(int sig, siginfo_t *si)
{
	uint64_t bit = SIGBIT(sig);
	if (!(atomic_load(&main_info_set) & bit))
		return false;
	*si = main_info[sig];
	atomic_fetch_and(&main_info_set, ~bit);
	atomic_fetch_and(&main_info_busy, ~bit);
	return true;
}

/* The mark of the runtime's sending on to main: a siginfo of its own
 * (SI_QUEUE from this process, main_info's address as the value), which
 * no kill or tgkill of the program carries. */
static bool marked_for_main(const siginfo_t *si)
{
	return si->si_code == SI_QUEUE && si->si_pid == (pid_t)syscall(SYS_getpid) &&
	       si->si_value.sival_ptr == (void *)main_info;
}

/* The siginfo of sig sent by this process with code (SI_USER for a kill,
 * SI_TKILL for a tgkill, SI_QUEUE). */
void siginfo_self(siginfo_t *si, int sig, int code)
{
	memset(si, 0, sizeof *si);
	si->si_signo = sig;
	si->si_code = code;
	si->si_pid = (pid_t)syscall(SYS_getpid);
	si->si_uid = (uid_t)syscall(SYS_getuid);
}

static void tgkill_main(pid_t tid, int sig)
{
	siginfo_t si;
	siginfo_self(&si, sig, SI_QUEUE);
	si.si_value.sival_ptr = (void *)main_info;
	syscall(SYS_rt_tgsigqueueinfo, si.si_pid, tid, sig, &si);
}

/* The mark of the runtime's sending a signal on to a goroutine other
 * than main, at the M it runs on (goroutine_kill): SI_QUEUE from this
 * process, the G's address and the low bits of its goid as the value,
 * and as the uid the address mixed with a secret of the process (another
 * process may sigqueue us anything: the router dereferences only what
 * carries the secret, and the goid tells a G reused by a later thread).
 * The goroutine may have left that M by the time the signal lands: the
 * router then sends it on again (sig_route) instead of running the
 * handler in whatever runs there. */
#define G_ADDR_BITS 48
static uint32_t g_mark_secret;

static uid_t g_mark_uid(uintptr_t addr)
{
	return (uid_t)(g_mark_secret ^ (uint32_t)addr ^ (uint32_t)(addr >> 32));
}

static void g_mark_init(void)
{
	uint32_t r = 0;
	if (syscall(SYS_getrandom, &r, sizeof r, GRND_NONBLOCK) != (long)sizeof r)
		r = (uint32_t)nanotime() ^ (uint32_t)(uintptr_t)&r;
	g_mark_secret = r;
}

/* Sends the marked signal; false when the G cannot carry the mark or the
 * kernel refused it (a full queue). */
static bool tgkill_goroutine(struct g *gp, pid_t tid, int sig)
{
	uintptr_t addr = (uintptr_t)gp;
	if (addr >> G_ADDR_BITS)
		return false;
	siginfo_t si;
	siginfo_self(&si, sig, SI_QUEUE);
	si.si_value.sival_ptr = (void *)(addr | ((uintptr_t)(uint16_t)gp->goid << G_ADDR_BITS));
	si.si_uid = g_mark_uid(addr);
	return syscall(SYS_rt_tgsigqueueinfo, si.si_pid, tid, sig, &si) == 0;
}

/* Is a signal sent to gp's M kept in flight for gp until it lands there
 * (g.siginflight)? Standard signals that reach the router, for a
 * goroutine other than main. If gp leaves the M first, it takes the
 * signal back as pending (dropg_of), so a copy held on that M by the mask
 * of whatever runs there next is not its only copy; whichever of the two
 * comes second finds the bit gone and is dropped, as a second standard
 * signal pending is. Real-time signals queue: each copy is delivered. */
static bool sig_tracked(struct g *gp, int sig, void *h)
{
	return sig < 32 && sig != SIGCANCEL_NO && gp != atomic_load(&main_g) &&
	       !((uintptr_t)gp >> G_ADDR_BITS) && sig_router_fn && h == sig_router_fn;
}

/* Does si carry the mark? Then *to is the goroutine it is for, or NULL
 * when that thread has ended (its G dead, or reused by a later one). */
static bool marked_for_goroutine(const siginfo_t *si, struct g **to)
{
	uintptr_t v = (uintptr_t)si->si_value.sival_ptr;
	uintptr_t addr = v & (((uintptr_t)1 << G_ADDR_BITS) - 1);
	if (si->si_code != SI_QUEUE || si->si_pid != (pid_t)syscall(SYS_getpid) || !addr ||
	    si->si_uid != g_mark_uid(addr))
		return false;
	struct g *gp = (struct g *)addr;
	bool same = (uint16_t)gp->goid == (uint16_t)(v >> G_ADDR_BITS) && readgstatus(gp) != _Gdead;
	*to = same ? gp : NULL;
	return true;
}

/* A marked signal that landed where its goroutine no longer is (or is not
 * yet: execute): pending for it again, its wait ended, unless it took the
 * signal back already (dropg_of) or another copy delivered it. */
static void sig_missed(struct g *to, int sig)
{
	uint64_t bit = SIGBIT(sig);
	if (sig < 32 && !(atomic_fetch_and(&to->siginflight, ~bit) & bit))
		return;
	if (goroutine_kill(to, sig))
		park_interrupt_later(to);
}

static void tgkill_g(struct g *gp, pid_t tid, int sig)
{
	/* glibc's SIGCANCEL handler acts only on a plain tgkill (SI_TKILL);
	 * the router never sees SIGCANCEL. A signal whose handler is not
	 * behind the router (its own runtime handler, or the program's for
	 * one that is never routed) goes plain too. */
	if (sig == SIGCANCEL_NO)
		tgkill_raw(tid, sig);
	else if (gp == atomic_load(&main_g))
		tgkill_main(tid, sig);
	else if (!sig_router_fn || sig_handler(sig) != sig_router_fn || !tgkill_goroutine(gp, tid, sig))
		tgkill_raw(tid, sig); /* a refused mark too: a plain one may fit */
}

/* The siginfo main's handler gets for a marked signal: the one kept, or,
 * if an earlier copy took it, what a pthread_kill from here would give. */
static void main_info_for(int sig, siginfo_t *si)
{
	if (!main_info_take(sig, si))
		siginfo_self(si, sig, SI_TKILL);
}

/* Sent to the process (any thread may take it), or to one thread? The
 * kernel's SIGPIPE and SIGXFSZ go to the thread that wrote, with the
 * code of a kill from the process itself; tgkill, tkill and raise say
 * SI_TKILL. A tgkill to the leader's tid from elsewhere was meant for the
 * main thread. */
static bool process_directed(int sig, const siginfo_t *si)
{
	pid_t self = (pid_t)syscall(SYS_getpid);
	if (si->si_code == SI_TKILL)
		return si->si_pid != self && syscall(SYS_gettid) == self;
	if (si->si_code == SI_USER && (sig == SIGPIPE || sig == SIGXFSZ))
		return si->si_pid != self;
	return true;
}

/* Not a thread of the program: a runtime goroutine, or an M's g0. */
static bool g_internal(struct g *gp)
{
	struct m *gm = __atomic_load_n(&gp->m, __ATOMIC_ACQUIRE);
	return gp->system || (gm && gm->g0 == gp);
}

/* May a signal sent to the process run its handler on this thread? Only
 * where a thread of the program that lets it through is running: an M in
 * the scheduler (g0) or running a runtime goroutine still has the mask of
 * the goroutine it left, and sysmon stands in for main only. A thread the
 * runtime does not know is the program's own. */
static bool takes_process_signal(struct g *gp, uint64_t bit)
{
	if (on_sysmon)
		return false;
	return !gp || (!g_internal(gp) && !(gp->sigmask & bit));
}

/* Signals sent to the process that no thread of the program let through
 * when they came: the kernel would keep them pending for the process, for
 * the first thread that unblocks them (proc_pending_claim). */
static _Atomic uint64_t proc_pending;

static siginfo_t proc_info[65]; /* the siginfo of each kept in proc_pending */

/* Would gp take sig now, as a thread? Its mask lets it through, or its
 * sigwait or sigsuspend takes it. */
static bool g_takes(struct g *gp, uint64_t bit, uint32_t st)
{
	return !(gp->sigmask & bit) || (st == _Gsyscall && (atomic_load(&gp->callopen) & bit));
}

/* The chosen goroutine gets sig: its siginfo kept if it is main's. */
static void sig_give(struct g *gp, int sig, const siginfo_t *si)
{
	if (gp == atomic_load(&main_g))
		main_info_put(sig, si);
	if (goroutine_kill(gp, sig))
		park_interrupt_later(gp);
}

/* Would gp take the signal bit as a thread that is running (or in a
 * system call) or, with running false, parked or waiting to run? */
static bool g_taker(struct g *gp, uint64_t bit, bool running)
{
	uint32_t st = readgstatus(gp);
	bool live = running ? st == _Grunning || st == _Gsyscall : st == _Grunnable || st == _Gwaiting;
	/* One in goexit never takes another signal: its thread has ended. */
	return live && !gp->exiting && g_takes(gp, bit, st);
}

/* The leader first, as the kernel asks it first, then allgs in order.
 * Walks allgs without a lock (from a signal handler; rare). */
static struct g *find_taker(struct g *mg, uint64_t bit, bool running)
{
	if (mg && g_taker(mg, bit, running))
		return mg;
	for (struct g *gp = __atomic_load_n(&allgs, __ATOMIC_ACQUIRE); gp; gp = gp->alllink)
		if (gp != mg && !g_internal(gp) && g_taker(gp, bit, running))
			return gp;
	return NULL;
}

/* A signal sent to the process landed where no thread that lets it
 * through runs (sig_route): given to a goroutine that lets it through, as
 * the kernel would pick a thread -- one running or in a system call first,
 * else a parked one, whose wait it ends -- or kept for the process. */
static void sig_place(int sig, const siginfo_t *si)
{
	uint64_t bit = SIGBIT(sig);
	/* Pending for the process while the walk goes on (sigpending sees
	 * it, a thread that unblocks it meanwhile takes it). */
	if (!(atomic_fetch_or(&proc_pending, bit) & bit))
		proc_info[sig] = *si;
	struct g *mg = atomic_load(&main_g);
	struct g *best = find_taker(mg, bit, true);
	if (!best)
		best = find_taker(mg, bit, false);
	if (!best || !(atomic_fetch_and(&proc_pending, ~bit) & bit))
		return; /* kept, or taken meanwhile */
	sig_give(best, sig, si);
}

/* gp now lets through what open holds (a new mask, or the set its
 * sigwait or sigsuspend takes): signals kept for the process become its
 * own, pending, as the kernel hands them to the first thread that can
 * take them (main's with their siginfo). */
void proc_pending_claim(struct g *gp, uint64_t open)
{
	uint64_t want = atomic_load_explicit(&proc_pending, memory_order_relaxed) & open;
	if (likely(!want))
		return;
	uint64_t got = atomic_fetch_and(&proc_pending, ~want) & want;
	if (!got)
		return;
	if (gp == atomic_load(&main_g))
		for (uint64_t b = got; b; b &= b - 1)
			main_info_put(__builtin_ctzll(b) + 1, &proc_info[__builtin_ctzll(b) + 1]);
	atomic_fetch_or(&gp->sigpending, got);
}

uint64_t proc_pending_sigs(void)
{
	return atomic_load(&proc_pending);
}

/* The router's decision for a caught signal that landed on this thread:
 * run the handler here (SIG_ROUTE_HERE), or not (SIG_ROUTE_SENT): sent on
 * to main, or, sent to the process and blocked by main, placed where a
 * thread that lets it through runs or is parked (sig_place). Called from
 * the signal handler: no locks. */
int sig_route(int sig, siginfo_t *si)
{
	struct g *mg = atomic_load(&main_g), *gp;
	uint64_t bit = SIGBIT(sig);
	struct g *to;
	gp = g_here();
	if (marked_for_goroutine(si, &to)) {
		if (to == gp && sig < 32) {
			/* A standard signal in flight, or pending again (it left
			 * the M and came back before this copy landed): taken
			 * now. Neither: it was taken already. */
			uint64_t had = atomic_fetch_and(&gp->siginflight, ~bit) |
			               atomic_fetch_and(&gp->sigpending, ~bit);
			if (!(had & bit))
				return SIG_ROUTE_SENT;
		}
		if (to == gp) {
			siginfo_self(si, sig, SI_TKILL); /* what pthread_kill gives */
			return SIG_ROUTE_HERE;
		}
		if (to)
			sig_missed(to, sig);
		return SIG_ROUTE_SENT; /* a thread that ended takes nothing */
	}
	bool mark = marked_for_main(si);
	if (mark && (gp == mg || !mg))
		main_info_for(sig, si);
	if (gp == mg && mg)
		return SIG_ROUTE_HERE;
	bool pd = !mark && process_directed(sig, si);
	if (mg && (mark || (pd && !(mg->sigmask & bit)))) {
		if (!mark)
			main_info_put(sig, si);
		if (goroutine_kill(mg, sig))
			park_interrupt_later(mg);
		return SIG_ROUTE_SENT;
	}
	if (!pd && !on_sysmon)
		return SIG_ROUTE_HERE; /* aimed at this thread */
	if (takes_process_signal(gp, bit))
		return SIG_ROUTE_HERE;
	sig_place(sig, si);
	return SIG_ROUTE_SENT;
}

/* sysmon starts its next round now (async-signal-safe). */
static void sysmon_kick_now(void)
{
	atomic_fetch_add(&sysmon_kick, 1);
	futexwakeup(&sysmon_kick, 1);
	sysmon_wake();
}

/* A program's handler was installed or removed, or main's mask changed:
 * sysmon takes a new mask at once. */
void sig_catch_changed(void)
{
	atomic_fetch_add(&catch_epoch, 1);
	sysmon_kick_now();
}

void *sig_router_fn; /* interpose/signal.c's handler, once it installed one */

/* sysmon's thread takes, for the router, every signal whose handler is
 * the router's (sig_route sends it to main or places it on a thread that
 * lets it through, sig_place); one with no handler (its default action or
 * ignored) only if main lets it through: that is main's to take; none
 * whose handler the router does not know, which must not run on sysmon.
 * With main gone, the router's only. Runs on sysmon, at each round after
 * a change, and publishes what it lets through (sysmon_open, sysmon_routed)
 * and the change it took (sysmon_acked). */
static _Atomic uint64_t sysmon_routed;
static _Atomic uint64_t sysmon_unrouting; /* handlers being removed: blocked */

_Atomic bool main_ended;

/* Once main has ended (thread_main_exit), sysmon stands in for the
 * threads left: a signal with no handler is blocked only if every one of
 * them blocks it. Its default action is the process's whichever thread
 * takes it, and one that all block still goes to a sigwait among them.
 * (Idle Ms block everything once masks are used, so otherwise nobody
 * would take it.) Walks allgs as sysmon does elsewhere: append-only. */
static uint64_t live_threads_blocked(void)
{
	uint64_t blocked = ~UINT64_C(0);
	for (struct g *gp = __atomic_load_n(&allgs, __ATOMIC_ACQUIRE); gp; gp = gp->alllink) {
		uint32_t st = readgstatus(gp);
		if (gp->thread && st != _Gdead && st != _Gidle)
			blocked &= __atomic_load_n(&gp->sigmask, __ATOMIC_RELAXED);
	}
	return blocked;
}

void sysmon_sigmask(uint32_t *seen, uint64_t *applied)
{
	uint32_t e = atomic_load(&catch_epoch);
	if (e == *seen)
		return;
	*seen = e;
	struct g *mg = atomic_load(&main_g);
	uint64_t follow = mg ? mg->sigmask /* main's blocked set */
	                     : atomic_load(&main_ended) ? live_threads_blocked() : ~UINT64_C(0);
	uint64_t want = 0, routed = 0;
	void *router = sig_router_fn;
	for (int sig = 1; sig <= 64; sig++) {
		uint64_t bit = SIGBIT(sig);
		void *h = sig_handler(sig);
		if (atomic_load(&sysmon_unrouting) & bit)
			want |= bit;
		else if (router && h == router)
			routed |= bit;
		else if (h != SIG_DFL && h != SIG_IGN && !sig_handler_is_runtime(h))
			want |= bit;
		else
			want |= follow & bit;
	}
	want &= ~(SIG_NEVER_BLOCKED | SIG_SYNCHRONOUS); /* glibc's setxid signals every thread */
	if (want != *applied) {
		syscall(SYS_rt_sigprocmask, SIG_SETMASK, &want, NULL, sizeof want);
		*applied = want;
	}
	atomic_store(&sysmon_routed, routed);
	atomic_store(&sysmon_open, ~want);
	atomic_store(&sysmon_acked, e);
	futexwakeup(&sysmon_acked, INT32_MAX);
}

bool sig_catch_stale(uint32_t seen)
{
	return atomic_load(&catch_epoch) != seen;
}

/* sysmon's pause between rounds, cut short by sig_catch_sync. */
void sysmon_sleep(int64_t usec, uint32_t seen)
{
	uint32_t k = atomic_load(&sysmon_kick);
	if (atomic_load(&catch_epoch) != seen)
		return;
	futexsleep(&sysmon_kick, k, usec * 1000);
}

/* Waits until sysmon has taken catch_epoch e (sysmon_sigmask). */
static void sysmon_await(uint32_t e)
{
	for (;;) {
		uint32_t a = atomic_load(&sysmon_acked);
		if ((int32_t)(a - e) >= 0)
			return;
		futexsleep(&sysmon_acked, a, 1000 * 1000);
	}
}

/* main blocked the signals in newly. One without a handler that sysmon
 * lets through, or may be letting through (a round it began before this
 * change), must be blocked there too before pthread_sigmask returns:
 * natively it would now stay pending for the process, where its default
 * action (end or stop the process) cannot act. (The router's stay open:
 * one landing there is placed as the kernel would place it.) */
static void sig_catch_sync(uint64_t newly)
{
	uint32_t e = atomic_fetch_add(&catch_epoch, 1) + 1;
	sysmon_kick_now();
	if (!newly || !atomic_load(&sysmon_started))
		return; /* a fork child before its first goroutine has none */
	uint64_t open = ~UINT64_C(0), routed = 0;
	if (atomic_load(&sysmon_acked) == e - 1) {
		routed = atomic_load(&sysmon_routed);
		open = atomic_load(&sysmon_open);
	}
	uint64_t risky = newly & open & ~routed;
	bool wait = false;
	while (risky && !wait) {
		int sig = __builtin_ctzll(risky) + 1;
		risky &= risky - 1;
		wait = !sig_discarded(sig, sig_handler(sig)); /* SIGCHLD by default, say, needs none */
	}
	if (wait)
		sysmon_await(e);
}

/* The program removes the router's handler for sig (its action becomes
 * the default or ignored): sysmon, which lets every router-handled signal
 * through, blocks it first, or a signal that main blocks would take its
 * default action there in between (sig_unroute_end lets sysmon follow
 * main again). wait is false from a handler that interrupted the
 * runtime: sysmon may need a lock that thread holds. */
void sig_unroute_begin(int sig, bool wait)
{
	atomic_fetch_or(&sysmon_unrouting, SIGBIT(sig));
	uint32_t e = atomic_fetch_add(&catch_epoch, 1) + 1;
	sysmon_kick_now();
	if (wait && atomic_load(&sysmon_started))
		sysmon_await(e);
}

void sig_unroute_end(int sig)
{
	atomic_fetch_and(&sysmon_unrouting, ~SIGBIT(sig));
	sig_catch_changed();
}

/* Can a signal handler of the program still wake a goroutine (a sem_post
 * or a write from a handler)? Then no deadlock can be proved. */
bool sig_handlers_installed(void)
{
	for (int sig = 1; sig <= 64; sig++) {
		if (SIGBIT(sig) & (SIG_NEVER_BLOCKED | SIG_SYNCHRONOUS))
			continue;
		void *h = sig_handler(sig);
		if (h != SIG_DFL && h != SIG_IGN && !sig_handler_is_runtime(h))
			return true;
	}
	return false;
}

static uint64_t sigmask_of(const sigset_t *set)
{
	uint64_t m;
	memcpy(&m, set, sizeof m);
	return m;
}

static void schedule(void) __attribute__((noreturn));
static void execute(struct g *gp, bool inheritTime) __attribute__((noreturn));
static struct g *findrunnable(bool *inheritTime);
static void stopm(void);
static void mput(struct m *mp);
static struct m *mget(void);
static void pidleput(struct p *pp);
static struct p *pidleget(void);
static void newm(void (*fn)(void), struct p *pp);
static void stoplockedm(void);
static void startlockedm(struct g *gp);
static void gcstopm(void);
static void resetspinning(void);
static struct g *globrunqget(struct p *pp, int32_t max);
static struct g *runqget(struct p *pp, bool *inheritTime);
static struct g *runqsteal(struct p *pp, struct p *p2, bool stealRunNextG);
static void exitsyscall0(struct g *gp);
static void globrunqput_locked(struct g *gp);

/* ---- time and randomness -------------------------------------------- */

int64_t nanotime(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* For wait durations in goroutine dumps only: the coarse clock (the last
 * tick, read from the vDSO without a timer read) costs a few ns where the
 * precise one costs tens, on every park. */
int64_t nanotime_coarse(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void usleep_raw(int64_t usec)
{
	struct timespec ts = { usec / 1000000, (usec % 1000000) * 1000 };
	syscall(SYS_nanosleep, &ts, NULL);
}

/* Go's fastrand (wyrand), per M; threads without an M use a global one. */
static _Atomic uint64_t globalrand = 0x9e3779b97f4a7c15ull;
uint32_t cheaprand(void)
{
	struct g *gp = getg();
	uint64_t *s, tmp;
	if (gp && gp->m) {
		s = &gp->m->fastrand;
		*s += 0xa0761d6478bd642full;
		tmp = *s;
	} else {
		tmp = atomic_fetch_add(&globalrand, 0xa0761d6478bd642full) + 0xa0761d6478bd642full;
	}
	__uint128_t t = (__uint128_t)tmp * (tmp ^ 0xe7037ed1a0b428dbull);
	return (uint32_t)((uint64_t)(t >> 64) ^ (uint64_t)t);
}

/* ---- asymmetric fences ---------------------------------------------- */

/* Two store-then-load pairs are hot on one side and rare on the other: an
 * M taking its P back against a thief of the P (p_take_syscall), and a
 * goroutine parking (dropg_of) against a canceller or a signal sender that
 * ends its wait or takes back a signal in flight (park_end,
 * goroutine_kill). The hot side orders its store before its load with a
 * compiler barrier only (fence_light); the rare side runs
 * membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED), a full fence on every
 * running thread of the process, between its store and its load
 * (fence_heavy). Of the two sequences, one then sees the other's store, as
 * if both had fenced. Without membarrier (kernels before 4.14, or
 * GOSHIM_DEBUG=membarrier=0), asym_fence is false and both sides fence.
 * A membarrier that fails later (a seccomp filter installed since
 * start-up) turns asym_fence off for good: the hot side fences again from
 * then on; one already past its check, in a window of a few instructions,
 * is not covered, which is why thieves also wait (thief_fence). */
static bool asym_fence;
static _Atomic int64_t asym_lost_at; /* nanotime when membarrier stopped working */

static void asym_fence_init(void)
{
	asym_fence = debug_membarrier &&
	             syscall(SYS_membarrier, 1 << 4 /* REGISTER_PRIVATE_EXPEDITED */, 0, 0) == 0;
}

static inline bool asym_fence_on(void)
{
	return __atomic_load_n(&asym_fence, __ATOMIC_RELAXED);
}

static inline void fence_light(void)
{
	if (likely(asym_fence_on()))
		atomic_signal_fence(memory_order_seq_cst);
	else
		atomic_thread_fence(memory_order_seq_cst);
}

/* True if it was the asymmetric kind (membarrier). */
bool fence_heavy(void)
{
	if (asym_fence_on()) {
		if (syscall(SYS_membarrier, 1 << 3 /* PRIVATE_EXPEDITED */, 0, 0) == 0)
			return true;
		__atomic_store_n(&asym_fence, false, __ATOMIC_RELAXED);
		int64_t zero = 0;
		atomic_compare_exchange_strong(&asym_lost_at, &zero, nanotime());
	}
	atomic_thread_fence(memory_order_seq_cst);
	return false;
}

/* ---- G status (proc.go: casgstatus) --------------------------------- */

uint32_t readgstatus(struct g *gp)
{
	return atomic_load_explicit(&gp->atomicstatus, memory_order_acquire);
}

/* Go's casgstatus is a CAS because the garbage collector sets scan bits in
 * the status of goroutines it does not own. Nothing here does: a status
 * changes only by the goroutine's owner (its M, or whoever took it off a
 * wait queue, a timer or a coroutine), so a checked load and a release
 * store keep every transition check without a locked instruction, which
 * cost two of them per context switch. */
void casgstatus(struct g *gp, uint32_t oldval, uint32_t newval)
{
	if (unlikely(oldval == newval))
		throw("casgstatus: bad incoming values");
	uint32_t exp = atomic_load_explicit(&gp->atomicstatus, memory_order_relaxed);
	if (likely(exp == oldval))
		atomic_store_explicit(&gp->atomicstatus, newval, memory_order_release);
	else {
		printerr("runtime: casgstatus: goroutine %lld, oldval=%u newval=%u, actual=%u\n",
		         (long long)gp->goid, oldval, newval, exp);
		throw("casgstatus: bad status transition");
	}
}

/* ---- stack switches, with the sanitizers and valgrind told ---------- */

static inline void switch_prepare(struct g *from, struct g *to)
{
#ifdef GOSHIM_TSAN
	if (to->tsan_fiber)
		__tsan_switch_to_fiber(to->tsan_fiber, 0);
#endif
#ifdef GOSHIM_ASAN
	/* A goroutine that will never resume passes NULL: ASan frees its fake
	 * stack now. */
	__sanitizer_start_switch_fiber(from && readgstatus(from) != _Gdead && !from->exiting
	                                   ? &from->asan_fake_stack : NULL,
	                               (void *)to->stack.lo, to->stack.hi - to->stack.lo);
#endif
	(void)from;
	(void)to;
}

static inline void switch_finish(struct g *gp)
{
#ifdef GOSHIM_ASAN
	__sanitizer_finish_switch_fiber(gp->asan_fake_stack, NULL, NULL);
#endif
	(void)gp;
}

/* gogo: resume gp from the g0 stack (the g0 context is discarded: mcall
 * always starts g0 afresh at the top of its stack). */
static __attribute__((noreturn)) void gogo(struct m *mp, struct g *gp)
{
	switch_prepare(mp->g0, gp);
	goshim_gogo(&gp->sched);
}

/* mcall: save the current goroutine and run fn(gp) on its M's g0 stack;
 * fn begins with on_g0(gp). */
static void mcall(void (*fn)(struct g *))
{
	struct g *gp = getg();
	struct m *mp = gp->m;
	uintptr_t here = (uintptr_t)__builtin_frame_address(0);
	if (gp->stack.lo && here < gp->stack.touched_lo)
		gp->stack.touched_lo = here;
	/* Under TSan g0 keeps one fiber: g0 always starts afresh and its
	 * functions never return, so this file is built without TSan's
	 * function entry/exit hooks (SCHED_SANITIZER_CFLAGS) and the fiber's
	 * shadow call stack does not grow. */
	switch_prepare(gp, mp->g0);
	goshim_mcall(&gp->sched, (void (*)(void *))fn, gp, &mp->g0buf);
	switch_finish(gp);
}

/* First thing of every mcall target: this thread now runs its g0. */
static inline struct m *on_g0(struct g *gp)
{
	struct m *mp = gp->m;
	setg(mp->g0);
	switch_finish(mp->g0);
	return mp;
}

/* ---- allgs, allm ---------------------------------------------------- */

static void allgadd(struct g *gp)
{
	lock(&allglock);
	gp->alllink = allgs;
	__atomic_store_n(&allgs, gp, __ATOMIC_RELEASE);
	unlock(&allglock);
}

/* Sudogs in use (chan.c: acquireSudog): a racy sum, exact when nothing
 * moves. A destroyed P keeps its count. */
int64_t sudogs_in_use(void)
{
	int64_t n = 0;
	for (int32_t i = 0; i < MAX_PROCS; i++) {
		struct p *pp = __atomic_load_n(&allp[i], __ATOMIC_ACQUIRE);
		if (!pp)
			break;
		n += atomic_load_explicit(&pp->nsudog, memory_order_relaxed);
	}
	return n;
}

/* proc.go: gcount, for go_count: a racy sum, exact when nothing moves. */
int32_t gcount(void)
{
	int64_t n = atomic_load(&sched.ngoroutines);
	for (int32_t i = 0; i < MAX_PROCS; i++) {
		struct p *pp = __atomic_load_n(&allp[i], __ATOMIC_ACQUIRE);
		if (!pp)
			break;
		n += atomic_load_explicit(&pp->ngdelta, memory_order_relaxed);
	}
	return (int32_t)n;
}

int32_t mcount(void)
{
	return (int32_t)(sched.mnext - sched.nmfreed);
}

static struct m *allocm(void)
{
	struct m *mp = persistentalloc(sizeof *mp, CACHE_LINE);
	struct g *g0 = persistentalloc(sizeof *g0, CACHE_LINE);
	if (!mp || !g0)
		throw("allocm: out of memory");
	g0->system = true;
	g0->sigmask = initial_mask;
	g0->m = mp;
	g0->goid = -1;
	atomic_store(&g0->atomicstatus, _Grunning);
#ifdef GOSHIM_TSAN
	g0->tsan_fiber = NULL; /* set to the thread's own fiber in minit */
#endif
	mp->g0 = g0;
	mp->fastrand = (uint64_t)nanotime() ^ ((uint64_t)(uintptr_t)mp << 17);
	lock(&sched.lock);
	mp->id = sched.mnext++;
	unlock(&sched.lock);
	lock(&allmlock);
	mp->alllink = allm;
	__atomic_store_n(&allm, mp, __ATOMIC_RELEASE);
	unlock(&allmlock);
	return mp;
}

/* minit: per-thread set-up of an M, on the thread itself. */
static void minit(struct m *mp)
{
	mp->tls = goshim_arch_tls_base();
	mp->procid = (pid_t)syscall(SYS_gettid);
	mp->g0buf.tls = mp->tls;
	/* g0 first: a signal handler that makes an interposed call must find
	 * an M here, not a thread to adopt. */
	setg(mp->g0);
	if (mp->ownthread) { /* created with every signal blocked */
		sigmask_apply(mp, MASK_IDLE);
	} else { /* an adopted thread: its mask is its goroutine's */
		sigset_t cur;
		sigprocmask_raw(SIG_SETMASK, NULL, &cur);
		mp->sigmask = sigmask_of(&cur);
	}
	minit_signalstack();
#ifdef GOSHIM_TSAN
	mp->tsan_thread_fiber = mp->g0->tsan_fiber = __tsan_get_current_fiber();
#endif
}

/* ---- G allocation and free lists (proc.go: malg, gfput, gfget) ------ */

static struct g *malg(void)
{
	struct stack st;
	if (!stackalloc(&st, 0))
		return NULL;
	struct g *gp = persistentalloc(sizeof *gp, CACHE_LINE);
	if (!gp) {
		stackfree(&st);
		return NULL;
	}
	gp->stack = st;
#ifdef HAVE_VALGRIND_VALGRIND_H
	VALGRIND_STACK_REGISTER(gp->stack.lo, gp->stack.hi);
#endif
	atomic_store(&gp->atomicstatus, _Gidle);
	return gp;
}

/* gfput: a dead G (with its stack) goes to the P's free list; beyond 64 the
 * P moves half of them to the global list, as Go does. */
static void gfput(struct p *pp, struct g *gp)
{
	gp->schedlink = pp->gFree;
	pp->gFree = gp;
	pp->gFreeN++;
	if (pp->gFreeN >= 64) {
		lock(&sched.gFreeLock);
		while (pp->gFreeN >= 32) {
			struct g *g1 = pp->gFree;
			pp->gFree = g1->schedlink;
			pp->gFreeN--;
			g1->schedlink = sched.gFree;
			sched.gFree = g1;
			sched.gFreeN++;
		}
		unlock(&sched.gFreeLock);
	}
}

static struct g *gfget(struct p *pp)
{
	if (!pp->gFree && atomic_load_explicit(&sched.gFreeN, memory_order_relaxed) > 0) {
		lock(&sched.gFreeLock);
		while (pp->gFreeN < 32 && sched.gFree) {
			struct g *g1 = sched.gFree;
			sched.gFree = g1->schedlink;
			sched.gFreeN--;
			g1->schedlink = pp->gFree;
			pp->gFree = g1;
			pp->gFreeN++;
		}
		unlock(&sched.gFreeLock);
	}
	struct g *gp = pp->gFree;
	if (gp) {
		pp->gFree = gp->schedlink;
		pp->gFreeN--;
	}
	return gp;
}

/* gfpurge: a P that goes away gives its dead Gs to the global list. */
static void gfpurge(struct p *pp)
{
	lock(&sched.gFreeLock);
	while (pp->gFree) {
		struct g *g1 = pp->gFree;
		pp->gFree = g1->schedlink;
		pp->gFreeN--;
		g1->schedlink = sched.gFree;
		sched.gFree = g1;
		sched.gFreeN++;
	}
	unlock(&sched.gFreeLock);
}

/* ---- newproc / goexit ----------------------------------------------- */

static void goentry(void *arg) __attribute__((noreturn));
static void goentry(void *arg)
{
	struct g *gp = arg;
	switch_finish(gp);
	runtime_leave();
	/* A signal sent on to it before it first ran (sig_place, or its
	 * first execute) is taken before its code runs. */
	if (unlikely(atomic_load_explicit(&gp->sigpending, memory_order_relaxed)))
		sigpending_deliver(0);
	gp->startfn(gp->startarg);
	runtime_enter();
	goexit1();
}

/* newproc1's set-up of a goroutine that will start fn(arg) at the top of
 * its stack with TLS base tls (0: its M's). */
static void newg_init(struct p *pp, struct g *curg, struct g *newg, void (*fn)(void *), void *arg,
                      uintptr_t callerpc, uintptr_t stack_top, uintptr_t tls)
{
	goshim_gostart_frame(&newg->sched, stack_top, goentry, newg);
	newg->sched.tls = tls;
	newg->startfn = fn;
	newg->startarg = arg;
	newg->parentgoid = curg->goid;
	newg->sigmask = curg->sigmask;
	atomic_store_explicit(&newg->sigpending, 0, memory_order_relaxed);
	atomic_store_explicit(&newg->siginflight, 0, memory_order_relaxed);
	atomic_store_explicit(&newg->cancelsig, false, memory_order_relaxed);
	newg->gopc = callerpc;
	newg->waitreason = waitReasonZero;
	newg->waitsince = 0;
	newg->param = NULL;
	newg->asan_fake_stack = NULL;
#ifdef GOSHIM_TSAN
	if (newg->tsan_fiber) /* a fresh shadow stack for each life */
		__tsan_destroy_fiber(newg->tsan_fiber);
	newg->tsan_fiber = __tsan_create_fiber(0);
#endif
	if (pp->goidcache == pp->goidcacheend) {
		/* Sched.goidgen is the last allocated id, this batch must be
		 * [sched.goidgen+1, sched.goidgen+GoidCacheBatch]. At startup
		 * sched.goidgen=0, so main goroutine receives goid=1. */
		pp->goidcache = atomic_fetch_add(&sched.goidgen, goidCacheBatch) + 1;
		pp->goidcacheend = pp->goidcache + goidCacheBatch;
	}
	newg->goid = (int64_t)pp->goidcache++;
	atomic_store_explicit(&pp->ngdelta, pp->ngdelta + 1, memory_order_relaxed);
}

/* proc.go: newproc1. The caller holds a P (runtime_enter). parked (Go
 * 1.23's newproc1 parked argument, for coroutines): the new goroutine is
 * left _Gwaiting with waitReasonCoroutine instead of being queued. */
static struct g *newproc1(void (*fn)(void *), void *arg, uintptr_t callerpc, bool parked, int *err)
{
	struct g *curg = getg();
	struct p *pp = curg->m->p;
	struct g *newg = gfget(pp);
	if (!newg) {
		newg = malg();
		if (!newg) {
			*err = ENOMEM;
			return NULL;
		}
		casgstatus(newg, _Gidle, _Gdead);
		allgadd(newg);
	}
	/* go() goroutines run on their M's TLS */
	newg_init(pp, curg, newg, fn, arg, callerpc, newg->stack.hi, 0);
	*err = 0;
	if (parked) {
		newg->waitreason = waitReasonCoroutine;
		newg->waitsince = nanotime_coarse();
		casgstatus(newg, _Gdead, _Gwaiting);
		return newg;
	}
	casgstatus(newg, _Gdead, _Grunnable);
	runqput(pp, newg, true);
	sysmon_ensure();
	if (atomic_load(&mainStarted))
		wakep();
	return newg;
}

struct g *newproc(void (*fn)(void *), void *arg, uintptr_t callerpc, int *err)
{
	return newproc1(fn, arg, callerpc, false, err);
}

struct g *newproc_parked(void (*fn)(void *), void *arg, uintptr_t callerpc, int *err)
{
	return newproc1(fn, arg, callerpc, true, err);
}

/* A goroutine standing in for a pthread (runtime/thread.c): gp, its stack
 * and its identity (tls, 0 for none) are the thread record's. gp is new
 * (_Gidle) or dead. */
void newproc_thread(struct g *gp, void (*fn)(void *), void *arg, uintptr_t stack_top,
                    uintptr_t tls, uintptr_t callerpc, const uint64_t *sigmask)
{
	struct g *curg = getg();
	struct p *pp = curg->m->p;
	if (readgstatus(gp) == _Gidle) {
		casgstatus(gp, _Gidle, _Gdead);
		allgadd(gp);
	}
	newg_init(pp, curg, gp, fn, arg, callerpc, stack_top, tls);
	if (sigmask) { /* the attribute's, not the creator's */
		gp->sigmask = sigmask_fix(*sigmask);
		if (gp->sigmask != initial_mask && !atomic_load(&masks_used))
			sigmask_used();
	}
	casgstatus(gp, _Gdead, _Grunnable);
	if (sigmask && atomic_load(&main_ended))
		sig_catch_changed(); /* sysmon stands in for it too (live_threads_blocked) */
	runqput(pp, gp, true);
	sysmon_ensure();
	if (atomic_load(&mainStarted))
		wakep();
}

/* dropg: the M and its current goroutine part ways. */
static inline void dropg_of(struct m *mp, struct g *gp)
{
	__atomic_store_n(&gp->m, NULL, __ATOMIC_RELAXED);
	/* The one fence of a park: it orders the stores before it (g.m here,
	 * parkq.c's g.parkstate) before the loads after it (g.siginflight
	 * here, parkq_commit's cancel and signal checks), against senders that
	 * store their bit, fence_heavy, and then load those. */
	fence_light();
	mp->curg = NULL;
	mp->lastg = gp; /* sigmask_switch: whose thread signals pending on the M are */
	/* Signals sent to this M for gp that have not landed: gp takes them
	 * back, pending (goroutine_kill, sig_tracked). */
	if (unlikely(atomic_load(&gp->siginflight)))
		atomic_fetch_or(&gp->sigpending, atomic_exchange(&gp->siginflight, 0));
}

static void mexit(struct m *mp) __attribute__((noreturn));

/* proc.go: goexit0, on g0. */
static void goexit0(struct g *gp)
{
	struct m *mp = on_g0(gp);
	casgstatus(gp, _Grunning, _Gdead);
	sigmask_idle(mp); /* the thread is gone */
	if (!gp->system) {
		if (gp->adopted)
			atomic_fetch_sub(&sched.ngoroutines, 1);
		else
			atomic_store_explicit(&mp->p->ngdelta, mp->p->ngdelta - 1, memory_order_relaxed);
	}
	bool locked = gp->lockedm != NULL;
	gp->lockedm = NULL;
	mp->lockedg = NULL;
	gp->lockedExt = gp->lockedInt = 0;
	mp->lockedExt = mp->lockedInt = 0;
	gp->m = NULL;
	mp->curg = NULL;
	gp->waitreason = waitReasonZero;
	gp->param = NULL;
	gp->exiting = false;
	if (gp == atomic_load(&main_g)) {
		/* (A fork child's main may be a pthread-goroutine.) */
		atomic_store(&main_g, NULL); /* signals go where they land */
		sig_catch_changed();
	}
	if (gp->thread) {
		/* A pthread-goroutine: its G and stack belong to its thread
		 * record, which outlives it until joined or detached. */
		thread_gone(gp);
		if (atomic_load(&main_ended))
			sig_catch_changed(); /* sysmon stands in for one thread fewer */
		if (locked && mp->ownthread)
			mexit(mp);
		schedule();
	}
	if (gp->adopted) {
		/* An adopted thread's goroutine (main, say) called go_exit: its
		 * stack is the thread's own and nothing runs on it again; the
		 * thread goes on as an ordinary M (Go's Goexit from main). */
		schedule();
	}
	gfput(mp->p, gp);
	/* Go: a goroutine that exits locked takes its thread with it, unless
	 * the thread is not ours to end. */
	if (locked && mp->ownthread)
		mexit(mp);
	schedule();
}

/* coro.go: coroswitch_m. Runs on g0: parks gp (or destroys it, when its
 * coroutine function returned) and runs the goroutine blocked on c on this
 * M at once, without the run queues. A thread lock moves with the switch:
 * the goroutine that runs on a locked M is the one locked to it. */
static void coroswitch_m(struct g *gp)
{
	struct m *mp = on_g0(gp);
	struct coro *c = gp->coroarg;
	gp->coroarg = NULL;
	bool exit = gp->coroexit;
	gp->coroexit = false;
	bool locked = gp->lockedm != NULL;
	if (c->mp || locked) {
		if (mp != c->mp || mp->lockedInt != c->lockedInt || mp->lockedExt != c->lockedExt) {
			printerr("coro: got thread %p, want %p\n", (void *)mp, (void *)c->mp);
			printerr("coro: got lock internal %u, want %u\n", mp->lockedInt, c->lockedInt);
			printerr("coro: got lock external %u, want %u\n", mp->lockedExt, c->lockedExt);
			throw("coroswitch on thread locked to another goroutine");
		}
	}
	uint32_t glext = gp->lockedExt, glint = gp->lockedInt;
	if (exit) {
		/* gdestroy */
		casgstatus(gp, _Grunning, _Gdead);
		atomic_store_explicit(&mp->p->ngdelta, mp->p->ngdelta - 1, memory_order_relaxed);
		gp->lockedm = NULL;
		gp->lockedExt = gp->lockedInt = 0;
		gp->m = NULL;
		mp->curg = NULL;
		gp->waitreason = waitReasonZero;
		gp->param = NULL;
		gp->exiting = false;
		gfput(mp->p, gp);
		gp = NULL;
	} else {
		gp->waitreason = waitReasonCoroutine;
		gp->waitsince = nanotime_coarse();
		casgstatus(gp, _Grunning, _Gwaiting);
		dropg_of(mp, gp);
	}
	/* Swap gp and c.gp. */
	struct g *next;
	for (;;) {
		next = atomic_load(&c->gp);
		if (!next)
			throw("coroswitch on exited coro");
		if (atomic_compare_exchange_strong(&c->gp, &next, gp))
			break;
	}
	/* Donate locked state. */
	if (locked) {
		mp->lockedg = next;
		next->lockedm = mp;
		next->lockedExt = glext;
		next->lockedInt = glint;
		if (gp) {
			gp->lockedm = NULL;
			gp->lockedExt = gp->lockedInt = 0;
		}
	}
	/* Start running next, without heavy scheduling machinery. */
	next->waitreason = waitReasonZero;
	casgstatus(next, _Gwaiting, _Grunnable);
	execute(next, true);
}

void coroswitch_mcall(struct coro *c, bool exit)
{
	struct g *gp = getg();
	gp->coroarg = c;
	gp->coroexit = exit;
	if (exit)
		gp->exiting = true;
	mcall(coroswitch_m);
}

void goexit1(void)
{
	if (getg()->corog)
		coroexit_goexit();
	getg()->exiting = true;
	mcall(goexit0);
	__builtin_unreachable();
}

/* ---- park / ready (proc.go: gopark, park_m, goready, ready) --------- */

static void park_m(struct g *gp)
{
	struct m *mp = on_g0(gp);
	casgstatus(gp, _Grunning, _Gwaiting);
	dropg_of(mp, gp);
	if (mp->waitunlockf) {
		bool ok = mp->waitunlockf(gp, mp->waitlock);
		mp->waitunlockf = NULL;
		mp->waitlock = NULL;
		if (!ok) {
			casgstatus(gp, _Gwaiting, _Grunnable);
			execute(gp, true);
		}
	}
	schedule();
}

/* Parks the calling goroutine; unlockf(gp, lock) runs on g0 after gp is
 * _Gwaiting and may veto the park by returning false. */
void gopark(unlockf_t unlockf, void *lock_, enum waitreason reason)
{
	struct g *gp = getg();
	struct m *mp = gp->m;
	if (unlikely(readgstatus(gp) != _Grunning))
		throw("gopark: bad g status");
	/* mp->locks may be > 0: the lock that unlockf releases on g0. */
	mp->waitlock = lock_;
	mp->waitunlockf = unlockf;
	gp->waitreason = (uint8_t)reason;
	gp->waitsince = nanotime_coarse();
	mcall(park_m);
}

/* proc.go: ready. Puts gp in the current P's runnext and wakes a P. */
static void ready(struct g *gp, bool next)
{
	struct g *me = getg();
	struct p *pp = me->m->p;
	if (unlikely(gp->forkgone))
		return; /* another thread's, in a fork child: it does not exist here */
	if (unlikely(readgstatus(gp) != _Gwaiting))
		throw("goready: bad status");
	casgstatus(gp, _Gwaiting, _Grunnable);
	if (pp)
		runqput(pp, gp, next);
	else
		globrunqput(gp);
	wakep();
}

void goready(struct g *gp)
{
	ready(gp, true);
}

/* proc.go: gosched_m, goschedImpl */
static void gosched_m(struct g *gp)
{
	struct m *mp = on_g0(gp);
	casgstatus(gp, _Grunning, _Grunnable);
	dropg_of(mp, gp);
	/* A locked goroutine goes to the global queue like any other; its M
	 * then waits in stoplockedm until a scheduler hands it back. */
	lock(&sched.lock);
	globrunqput_locked(gp);
	unlock(&sched.lock);
	schedule();
}

void gosched(void)
{
	mcall(gosched_m);
}

/* proc.go: goyield_m. Like gosched, but the goroutine goes to the tail of
 * its P's local run queue, not the global one. */
static void goyield_m(struct g *gp)
{
	struct m *mp = on_g0(gp);
	struct p *pp = mp->p;
	casgstatus(gp, _Grunning, _Grunnable);
	dropg_of(mp, gp);
	runqput(pp, gp, false);
	schedule();
}

void goyield(void)
{
	mcall(goyield_m);
}

/* ---- execute / schedule (proc.go) ----------------------------------- */

static void execute(struct g *gp, bool inheritTime)
{
	struct m *mp = getg()->m;
	struct p *pp = mp->p;
	mp->curg = gp;
	gp->m = mp;
	casgstatus(gp, _Grunnable, _Grunning);
	gp->waitsince = 0;
	if (!inheritTime)
		atomic_store_explicit(&pp->schedtick, pp->schedtick + 1, memory_order_relaxed);
	/* Only pp's M writes it (sysmon reads it): no locked add. */
	atomic_store_explicit(&pp->nrun, atomic_load_explicit(&pp->nrun, memory_order_relaxed) + 1,
	                      memory_order_relaxed);
	if (unlikely(gp->sigmask != mp->sigmask))
		sigmask_switch(mp, gp);
	setg(gp);
	gogo(mp, gp);
}

static void schedule(void)
{
	struct m *mp = getg()->m;
	if (unlikely(mp->locks))
		throw("schedule: holding locks");
	if (mp->lockedg) {
		stoplockedm();
		execute(mp->lockedg, false); /* never returns */
	}
top:;
	struct p *pp = mp->p;
	if (atomic_load(&sched.gcwaiting)) {
		gcstopm();
		goto top;
	}
	struct g *gp = NULL;
	bool inheritTime = false;
	{
		int64_t pollUntil;
		bool ran;
		checkTimers(pp, 0, &pollUntil, &ran);
	}
	/* sysmon saw no scheduling on this P for 10 ms (goroutines handing
	 * the P to each other through runnext inherit the time slice and
	 * never advance schedtick): Go would preempt the running goroutine
	 * to the global queue. Here the slice ends at this scheduling point:
	 * the global queue goes first and nothing inherits the slice. */
	if (unlikely(atomic_load_explicit(&pp->preempt, memory_order_relaxed))) {
		atomic_store_explicit(&pp->preempt, false, memory_order_relaxed);
		atomic_store_explicit(&pp->schedtick, pp->schedtick + 1, memory_order_relaxed);
		if (sched.runq.n > 0) {
			lock(&sched.lock);
			gp = globrunqget(pp, 1);
			unlock(&sched.lock);
		}
		if (!gp) {
			gp = runqget(pp, &inheritTime);
			inheritTime = false;
		}
	}
	/* Check the global runnable queue once in a while to ensure fairness;
	 * otherwise two goroutines can occupy the local runqueue by constantly
	 * respawning each other. */
	if (!gp && pp->schedtick % 61 == 0 && sched.runq.n > 0) {
		lock(&sched.lock);
		gp = globrunqget(pp, 1);
		unlock(&sched.lock);
	}
	if (!gp)
		gp = runqget(pp, &inheritTime);
	if (!gp)
		gp = findrunnable(&inheritTime); /* blocks until work is available */
	/* This thread is going to run a goroutine and is not spinning anymore,
	 * so if it was marked as spinning we need to reset it now and
	 * potentially start a new spinning M. */
	if (mp->spinning)
		resetspinning();
	if (gp->lockedm) {
		/* Hands off own p to the locked m, then blocks waiting for a new p. */
		startlockedm(gp);
		goto top;
	}
	execute(gp, inheritTime);
}

/* ---- run queues (proc.go: runqput, runqputslow, runqget, runqgrab, ---
 *      runqsteal, globrunqput, globrunqget) ---------------------------- */

void gq_push(struct gqueue *q, struct g *gp)
{
	gp->schedlink = NULL;
	if (q->tail)
		q->tail->schedlink = gp;
	else
		q->head = gp;
	q->tail = gp;
	atomic_store_explicit(&q->n, q->n + 1, memory_order_relaxed);
}

static void gq_pushhead(struct gqueue *q, struct g *gp)
{
	gp->schedlink = q->head;
	q->head = gp;
	if (!q->tail)
		q->tail = gp;
	atomic_store_explicit(&q->n, q->n + 1, memory_order_relaxed);
}

struct g *gq_pop(struct gqueue *q)
{
	struct g *gp = q->head;
	if (gp) {
		q->head = gp->schedlink;
		if (!q->head)
			q->tail = NULL;
		atomic_store_explicit(&q->n, q->n - 1, memory_order_relaxed);
	}
	return gp;
}

static void globrunqput_locked(struct g *gp)
{
	gq_push(&sched.runq, gp);
}

void globrunqput(struct g *gp)
{
	lock(&sched.lock);
	gq_push(&sched.runq, gp);
	unlock(&sched.lock);
}

/* Injects a list of runnable Gs into the global queue and starts Ms for
 * them (proc.go: injectglist, simplified for callers without a P). */
void injectglist(struct gqueue *q)
{
	if (!q->n)
		return;
	int32_t n = q->n;
	for (struct g *gp = q->head; gp; gp = gp->schedlink)
		casgstatus(gp, _Gwaiting, _Grunnable);
	lock(&sched.lock);
	struct g *gp;
	while ((gp = gq_pop(q)))
		gq_push(&sched.runq, gp);
	unlock(&sched.lock);
	for (; n > 0 && atomic_load(&sched.npidle) > 0; n--)
		startm(NULL, false);
}

bool runqempty(struct p *pp)
{
	/* Defend against a race where 1) pp has G1 in runqnext but runqhead ==
	 * runqtail, 2) runqput on pp kicks G1 to the runq, 3) runqget on pp
	 * empties runqnext. Simply observing that runqhead == runqtail and then
	 * observing that runqnext == nil does not mean the queue is empty. */
	for (;;) {
		uint32_t head = atomic_load(&pp->runqhead);
		uint32_t tail = atomic_load(&pp->runqtail);
		struct g *runnext = atomic_load(&pp->runnext);
		if (tail == atomic_load(&pp->runqtail))
			return head == tail && runnext == NULL;
	}
}

static bool runqputslow(struct p *pp, struct g *gp, uint32_t h, uint32_t t)
{
	struct g *batch[RUNQ_SIZE / 2 + 1];
	uint32_t n = t - h;
	n = n / 2;
	if (n != RUNQ_SIZE / 2)
		throw("runqputslow: queue is not full");
	for (uint32_t i = 0; i < n; i++)
		batch[i] = atomic_load_explicit(&pp->runq[(h + i) % RUNQ_SIZE], memory_order_relaxed);
	if (!atomic_compare_exchange_strong_explicit(&pp->runqhead, &h, h + n,
	        memory_order_release, memory_order_relaxed))
		return false;
	batch[n] = gp;
	/* Randomize the order a bit, as Go does under randomizeScheduler only
	 * in race builds; we keep FIFO order. */
	lock(&sched.lock);
	for (uint32_t i = 0; i <= n; i++)
		gq_push(&sched.runq, batch[i]);
	unlock(&sched.lock);
	return true;
}

void runqput(struct p *pp, struct g *gp, bool next)
{
	if (next) {
		struct g *oldnext = atomic_load(&pp->runnext);
		while (!atomic_compare_exchange_weak(&pp->runnext, &oldnext, gp))
			;
		if (!oldnext)
			return;
		/* Kick the old runnext out to the regular run queue. */
		gp = oldnext;
	}
	for (;;) {
		uint32_t h = atomic_load_explicit(&pp->runqhead, memory_order_acquire);
		uint32_t t = atomic_load_explicit(&pp->runqtail, memory_order_relaxed);
		if (t - h < RUNQ_SIZE) {
			atomic_store_explicit(&pp->runq[t % RUNQ_SIZE], gp, memory_order_relaxed);
			atomic_store_explicit(&pp->runqtail, t + 1, memory_order_release);
			return;
		}
		if (runqputslow(pp, gp, h, t))
			return;
		/* the queue is not full, now the put above must succeed */
	}
}

static struct g *runqget(struct p *pp, bool *inheritTime)
{
	/* If there's a runnext, it's the next G to run. */
	struct g *next = atomic_load(&pp->runnext);
	/* If the runnext is non-0 and the CAS fails, it could only have been
	 * stolen by another P, because other Ps can race to set runnext to 0,
	 * but only the current P can set it to non-0. */
	if (next && atomic_compare_exchange_strong(&pp->runnext, &next, NULL)) {
		*inheritTime = true;
		return next;
	}
	for (;;) {
		uint32_t h = atomic_load_explicit(&pp->runqhead, memory_order_acquire);
		uint32_t t = atomic_load_explicit(&pp->runqtail, memory_order_relaxed);
		if (t == h)
			return NULL;
		struct g *gp = atomic_load_explicit(&pp->runq[h % RUNQ_SIZE], memory_order_relaxed);
		if (atomic_compare_exchange_strong_explicit(&pp->runqhead, &h, h + 1,
		        memory_order_release, memory_order_relaxed)) {
			*inheritTime = false;
			return gp;
		}
	}
}

/* Grabs a batch of goroutines from pp's runnable queue into batch, a ring
 * buffer starting at batchHead. Returns the number grabbed. Can be executed
 * by any P. */
static uint32_t runqgrab(struct p *pp, _Atomic(struct g *) *batch, uint32_t batchHead,
                         bool stealRunNextG)
{
	for (;;) {
		uint32_t h = atomic_load_explicit(&pp->runqhead, memory_order_acquire);
		uint32_t t = atomic_load_explicit(&pp->runqtail, memory_order_acquire);
		uint32_t n = t - h;
		n = n - n / 2;
		if (n == 0) {
			if (stealRunNextG) {
				/* Try to steal from pp.runnext. */
				struct g *next = atomic_load(&pp->runnext);
				if (next) {
					if (atomic_load(&pp->status) == _Prunning) {
						/* Sleep to ensure that pp isn't about to run the g
						 * we are about to steal. The important use case
						 * here is when the g running on pp ready()s
						 * another g and then almost immediately blocks. */
						usleep_raw(3);
					}
					if (!atomic_compare_exchange_strong(&pp->runnext, &next, NULL))
						continue;
					atomic_store_explicit(&batch[batchHead % RUNQ_SIZE], next, memory_order_relaxed);
					return 1;
				}
			}
			return 0;
		}
		if (n > RUNQ_SIZE / 2) /* read inconsistent h and t */
			continue;
		for (uint32_t i = 0; i < n; i++) {
			struct g *gp = atomic_load_explicit(&pp->runq[(h + i) % RUNQ_SIZE], memory_order_relaxed);
			atomic_store_explicit(&batch[(batchHead + i) % RUNQ_SIZE], gp, memory_order_relaxed);
		}
		if (atomic_compare_exchange_strong_explicit(&pp->runqhead, &h, h + n,
		        memory_order_release, memory_order_relaxed))
			return n;
	}
}

/* Steals half of elements from local runnable queue of p2 and puts them
 * onto local runnable queue of pp. Returns one of the stolen elements. */
static struct g *runqsteal(struct p *pp, struct p *p2, bool stealRunNextG)
{
	uint32_t t = atomic_load_explicit(&pp->runqtail, memory_order_relaxed);
	uint32_t n = runqgrab(p2, pp->runq, t, stealRunNextG);
	if (n == 0)
		return NULL;
	n--;
	struct g *gp = atomic_load_explicit(&pp->runq[(t + n) % RUNQ_SIZE], memory_order_relaxed);
	if (n == 0)
		return gp;
	uint32_t h = atomic_load_explicit(&pp->runqhead, memory_order_acquire);
	if (t - h + n >= RUNQ_SIZE)
		throw("runqsteal: runq overflow");
	atomic_store_explicit(&pp->runqtail, t + n, memory_order_release);
	return gp;
}

/* Try get a batch of G's from the global runnable queue. sched.lock must
 * be held. */
static struct g *globrunqget(struct p *pp, int32_t max)
{
	if (sched.runq.n == 0)
		return NULL;
	int32_t n = sched.runq.n / atomic_load(&gomaxprocs) + 1;
	if (n > sched.runq.n)
		n = sched.runq.n;
	if (max > 0 && n > max)
		n = max;
	if (n > RUNQ_SIZE / 2)
		n = RUNQ_SIZE / 2;
	struct g *gp = gq_pop(&sched.runq);
	n--;
	for (; n > 0; n--)
		runqput(pp, gq_pop(&sched.runq), false);
	return gp;
}

/* ---- idle P and M lists (proc.go: pidleput, pidleget, mput, mget) --- */

static void pidleput(struct p *pp)
{
	if (!runqempty(pp))
		throw("pidleput: P has non-empty run queue");
	atomic_store(&pp->status, _Pidle);
	pp->m = NULL;
	pp->link = sched.pidle;
	sched.pidle = pp;
	atomic_fetch_add(&sched.npidle, 1);
}

static struct p *pidleget(void)
{
	struct p *pp = sched.pidle;
	if (pp) {
		sched.pidle = pp->link;
		atomic_fetch_sub(&sched.npidle, 1);
	}
	return pp;
}

static void mput(struct m *mp)
{
	mp->schedlink = sched.midle;
	sched.midle = mp;
	sched.nmidle++;
	checkdead();
}

static struct m *mget(void)
{
	struct m *mp = sched.midle;
	if (mp) {
		sched.midle = mp->schedlink;
		sched.nmidle--;
	}
	return mp;
}

/* ---- acquirep / releasep (proc.go: wirep) --------------------------- */

void acquirep(struct p *pp)
{
	struct m *mp = getg()->m;
	if (unlikely(mp->p || pp->m)) {
		printerr("runtime: acquirep: m%lld p=%p pp->m=%p\n", (long long)mp->id,
		         (void *)mp->p, (void *)pp->m);
		throw("acquirep: already in go");
	}
	uint32_t st = atomic_load(&pp->status);
	if (unlikely(st != _Pidle)) {
		printerr("runtime: acquirep: p%d status=%u\n", pp->id, st);
		throw("acquirep: invalid p state");
	}
	mp->p = pp;
	pp->m = mp;
	atomic_store(&pp->status, _Prunning);
}

struct p *releasep(void)
{
	struct m *mp = getg()->m;
	struct p *pp = mp->p;
	if (unlikely(!pp || pp->m != mp || atomic_load(&pp->status) != _Prunning))
		throw("releasep: invalid arg");
	mp->p = NULL;
	pp->m = NULL;
	atomic_store(&pp->status, _Pidle);
	return pp;
}

/* ---- Ms: start, stop, spin (proc.go) -------------------------------- */

/* Stops execution of the current m until new work is available. */
static void stopm(void)
{
	struct m *mp = getg()->m;
	if (mp->locks)
		throw("stopm holding locks");
	if (mp->p)
		throw("stopm holding p");
	if (mp->spinning)
		throw("stopm spinning");
	lock(&sched.lock);
	mput(mp);
	unlock(&sched.lock);
	for (;;) {
		sigmask_idle(mp);
		mp->blocked = true;
		notesleep(&mp->park);
		noteclear(&mp->park);
		mp->blocked = false;
		if (mp->nextp)
			break;
		/* sigmask_used took it off the idle list to take MASK_IDLE */
		lock(&sched.lock);
		mput(mp);
		unlock(&sched.lock);
	}
	acquirep(mp->nextp);
	mp->nextp = NULL;
}

/* The first goroutine to block a signal the process took at start: every
 * M that runs no goroutine takes MASK_IDLE before this returns. Ms asleep
 * in stopm are taken off the idle list (so startm cannot wake them too)
 * and woken; the M in netpoll is broken out; spinning Ms pass
 * sigmask_idle in findrunnable. Called inside the runtime, rarely (once
 * per process, by the flag). */
static void sigmask_used(void)
{
	lock(&sched.lock);
	bool first = !atomic_load(&masks_used);
	if (first) {
		atomic_fetch_add(&mask_epoch, 1);
		atomic_store(&masks_used, true);
	}
	uint32_t epoch = atomic_load(&mask_epoch);
	struct m *list = NULL, *mp;
	while (first && (mp = mget())) {
		mp->schedlink = list;
		list = mp;
	}
	unlock(&sched.lock);
	while ((mp = list)) {
		list = mp->schedlink;
		mp->schedlink = NULL;
		notewakeup(&mp->park);
	}
	if (first && netpollinited())
		netpollBreak();
	/* Every caller waits, not only the first. An M locked to a parked
	 * goroutine keeps that thread's mask, as natively. */
	struct m *self = getg()->m;
	for (int64_t until = nanotime() + 100 * 1000000; nanotime() < until;) {
		bool all = true;
		for (mp = __atomic_load_n(&allm, __ATOMIC_ACQUIRE); mp && all; mp = mp->alllink)
			if (mp != self && mp->ownthread && !mp->exited && !mp->curg && !mp->lockedg &&
			    atomic_load(&mp->mask_epoch) != epoch)
				all = false;
		if (all)
			return;
		usleep_raw(1);
	}
}

static void mspinning(void)
{
	/* startm's caller incremented nmspinning. Set the new M's spinning. */
	getg()->m->spinning = true;
}

/* Schedules some M to run the p (creates an M if necessary). If pp==NULL,
 * tries to get an idle P; if there are none, does nothing. */
void startm(struct p *pp, bool spinning)
{
	lock(&sched.lock);
	if (!pp) {
		pp = pidleget();
		if (!pp) {
			unlock(&sched.lock);
			if (spinning) {
				/* The caller incremented nmspinning, but there are no idle
				 * Ps, so it's okay to just undo the increment and give up. */
				if (atomic_fetch_sub(&sched.nmspinning, 1) - 1 < 0)
					throw("startm: negative nmspinning");
			}
			return;
		}
	}
	struct m *nmp = mget();
	if (!nmp) {
		unlock(&sched.lock);
		newm(spinning ? mspinning : NULL, pp);
		return;
	}
	unlock(&sched.lock);
	if (nmp->spinning)
		throw("startm: m is spinning");
	if (nmp->nextp)
		throw("startm: m has p");
	if (spinning && !runqempty(pp))
		throw("startm: p has runnable gs");
	/* The caller incremented nmspinning, so set m.spinning in the new M. */
	nmp->spinning = spinning;
	nmp->nextp = pp;
	notewakeup(&nmp->park);
}

/* Hands off P from syscall or locked M. Always runs without a P. */
void handoffp(struct p *pp)
{
	/* if it has local work, start it straight away */
	if (!runqempty(pp) || sched.runq.n != 0) {
		startm(pp, false);
		return;
	}
	/* no local work, check that there are no spinning/idle M's, otherwise
	 * our help is not required */
	int32_t zero = 0;
	if (atomic_load(&sched.nmspinning) + atomic_load(&sched.npidle) == 0 &&
	    atomic_compare_exchange_strong(&sched.nmspinning, &zero, 1)) {
		startm(pp, true);
		return;
	}
	lock(&sched.lock);
	if (atomic_load(&sched.gcwaiting)) {
		atomic_store(&pp->status, _Pgcstop);
		pp->m = NULL;
		sched.stopwait--;
		if (sched.stopwait == 0)
			notewakeup(&sched.stopnote);
		unlock(&sched.lock);
		return;
	}
	if (sched.runq.n != 0) {
		unlock(&sched.lock);
		startm(pp, false);
		return;
	}
	/* If this is the last running P and nobody is polling network,
	 * need to wakeup another M to poll network. */
	if (atomic_load(&sched.npidle) == atomic_load(&gomaxprocs) - 1 &&
	    atomic_load(&sched.lastpoll) != 0) {
		unlock(&sched.lock);
		startm(pp, false);
		return;
	}
	/* The scheduler lock cannot be held when calling wakeNetPoller below
	 * because wakeNetPoller may call wakep which may call startm: an M
	 * asleep in netpoll until later, or none there, would leave this P's
	 * timers to sysmon. */
	int64_t when = timers_wakeTime(pp);
	pidleput(pp);
	unlock(&sched.lock);
	if (when != 0)
		wakeNetPoller(when);
}

/* Tries to add one more P to execute G's. Called when a G is made runnable
 * (newproc, ready). */
void wakep(void)
{
	if (atomic_load(&sched.npidle) == 0)
		return;
	/* be conservative about spinning threads */
	int32_t zero = 0;
	if (atomic_load(&sched.nmspinning) != 0 ||
	    !atomic_compare_exchange_strong(&sched.nmspinning, &zero, 1))
		return;
	startm(NULL, true);
}

static void resetspinning(void)
{
	struct m *mp = getg()->m;
	if (!mp->spinning)
		throw("resetspinning: not a spinning m");
	mp->spinning = false;
	int32_t n = atomic_fetch_sub(&sched.nmspinning, 1) - 1;
	if (n < 0)
		throw("findrunnable: negative nmspinning");
	/* M wakeup policy is deliberately somewhat conservative, so check if we
	 * need to wakeup another P here. */
	wakep();
}

/* Stops the current M for stopTheWorld. Returns when the world restarts. */
static void gcstopm(void)
{
	struct m *mp = getg()->m;
	if (!atomic_load(&sched.gcwaiting))
		throw("gcstopm: not waiting for gc");
	if (mp->spinning) {
		mp->spinning = false;
		if (atomic_fetch_sub(&sched.nmspinning, 1) - 1 < 0)
			throw("gcstopm: negative nmspinning");
	}
	struct p *pp = releasep();
	lock(&sched.lock);
	atomic_store(&pp->status, _Pgcstop);
	sched.stopwait--;
	if (sched.stopwait == 0)
		notewakeup(&sched.stopnote);
	unlock(&sched.lock);
	stopm();
}

/* Schedules the locked m to run the locked gp. */
static void startlockedm(struct g *gp)
{
	struct m *mp = getg()->m;
	struct m *lm = gp->lockedm;
	if (lm == mp)
		throw("startlockedm: locked to me");
	if (lm->nextp)
		throw("startlockedm: m has p");
	/* directly handoff current P to the locked m */
	lock(&sched.lock);
	sched.nmidlelocked--;
	unlock(&sched.lock);
	struct p *pp = releasep();
	lm->nextp = pp;
	notewakeup(&lm->park);
	stopm(); /* returns with a P: the caller schedules again */
}

/* Stops execution of the current m that is locked to a g until the g is
 * runnable again. Returns with acquired P. */
static void stoplockedm(void)
{
	struct m *mp = getg()->m;
	if (!mp->lockedg || mp->lockedg->lockedm != mp)
		throw("stoplockedm: inconsistent locking");
	if (mp->p) {
		/* Schedule another M to run this p. */
		struct p *pp = releasep();
		handoffp(pp);
	}
	lock(&sched.lock);
	sched.nmidlelocked++;
	checkdead();
	unlock(&sched.lock);
	mp->blocked = true;
	/* The M is the locked goroutine's alone: spinning a while for it to
	 * be handed back (a join, a condvar hand-off in main) saves a
	 * cross-CPU futex wake-up. */
	notesleep_spin(&mp->park, 50 * 1000);
	noteclear(&mp->park);
	mp->blocked = false;
	uint32_t st = readgstatus(mp->lockedg);
	if (st != _Grunnable) {
		printerr("runtime:stoplockedm: lockedg (atomicstatus=%u) is not Grunnable\n", st);
		throw("stoplockedm: not runnable");
	}
	acquirep(mp->nextp);
	mp->nextp = NULL;
}

/* ---- findrunnable (proc.go) ----------------------------------------- */

/* randomOrder: an enumeration of all Ps in a pseudo-random order, as Go's
 * stealOrder: a start position and a stride coprime with the count. */
static uint32_t coprimes[MAX_PROCS];
static int32_t ncoprimes;
static int32_t coprimes_for;

static uint32_t gcd32(uint32_t a, uint32_t b)
{
	while (b) {
		uint32_t t = a % b;
		a = b;
		b = t;
	}
	return a;
}

static void steal_order_reset(int32_t n)
{
	ncoprimes = 0;
	for (int32_t i = 1; i <= n; i++)
		if (gcd32((uint32_t)i, (uint32_t)n) == 1)
			coprimes[ncoprimes++] = (uint32_t)i;
	coprimes_for = n;
}

/* stealWork attempts to steal a runnable goroutine or timer from any P.
 * If newWork is set, new work may have been readied. If *pollUntil is
 * lowered, it is the time of the earliest timer seen on another P. */
static struct g *stealWork(struct p *pp, int64_t *now, int64_t *pollUntil, bool *newWork)
{
	*newWork = false;
	int32_t n = atomic_load(&gomaxprocs);
	if (coprimes_for != n)
		return NULL;
	for (int i = 0; i < 4; i++) {
		/* Stealing from the timers or runnext of other Ps only in the
		 * last of four passes: a runnext G is likely to run soon on
		 * its own P, and other Ps' timers are cheap to leave. */
		bool stealTimersOrRunNextG = i == 4 - 1;
		uint32_t r = cheaprand();
		uint32_t pos = r % (uint32_t)n;
		uint32_t inc = coprimes[r % (uint32_t)ncoprimes];
		for (int32_t k = 0; k < n; k++, pos = (pos + inc) % (uint32_t)n) {
			if (atomic_load(&sched.gcwaiting)) {
				/* GC work may be available. */
				*newWork = true;
				return NULL;
			}
			struct p *p2 = allp[pos];
			if (p2 == pp)
				continue;
			/* Steal timers from p2. This call to checkTimers is the
			 * only place where we might hold a lock on a different
			 * P's timers. We do this once on the last pass before
			 * checking runnext because stealing from the other P's
			 * runnext should be the last resort, so if there are
			 * timers to steal do that first. */
			if (stealTimersOrRunNextG && timers_wakeTime(p2) != 0) {
				int64_t w;
				bool ran;
				*now = checkTimers(p2, *now, &w, &ran);
				if (w != 0 && (*pollUntil == 0 || w < *pollUntil))
					*pollUntil = w;
				if (ran) {
					/* Running the timers may have made an
					 * arbitrary number of G's ready and added
					 * them to this P's local run queue. */
					bool inh;
					struct g *gp = runqget(pp, &inh);
					if (gp)
						return gp;
					*newWork = true;
				}
			}
			/* Don't bother to attempt to steal if p2 is idle. */
			if (atomic_load(&p2->status) == _Pidle)
				continue;
			struct g *gp = runqsteal(pp, p2, stealTimersOrRunNextG);
			if (gp)
				return gp;
		}
	}
	return NULL;
}

/* Finds a runnable goroutine to execute. Tries to steal from other P's and
 * get g from global queue. */
static struct g *findrunnable(bool *inheritTime)
{
	struct m *mp = getg()->m;
top:;
	if (unlikely(atomic_load_explicit(&mp->mask_epoch, memory_order_relaxed) !=
	             atomic_load_explicit(&mask_epoch, memory_order_relaxed)))
		sigmask_idle(mp);
	struct gqueue interrupted = {0};
	park_interrupts_take(&interrupted); /* pthread_kill from a handler */
	injectglist(&interrupted);
	struct p *pp = mp->p;
	if (atomic_load(&sched.gcwaiting)) {
		gcstopm();
		goto top;
	}
	/* now and pollUntil are saved for work stealing so that the
	 * scheduler can sleep until the next timer. */
	int64_t pollUntil;
	bool ran;
	int64_t now = checkTimers(pp, 0, &pollUntil, &ran);
	struct g *gp = runqget(pp, inheritTime);
	if (gp)
		return gp;
	/* global runq */
	if (sched.runq.n != 0) {
		lock(&sched.lock);
		gp = globrunqget(pp, 0);
		unlock(&sched.lock);
		if (gp) {
			*inheritTime = false;
			return gp;
		}
	}
	/* Poll network. This netpoll is only an optimization before we resort
	 * to stealing. We can safely skip it if there are no waiters or a
	 * thread is blocked in netpoll already. */
	if (netpollinited() && atomic_load(&netpollWaiters) > 0 && atomic_load(&sched.lastpoll) != 0) {
		struct gqueue list;
		netpoll(0, &list);
		if ((gp = gq_pop(&list)) != NULL) {
			injectglist(&list);
			casgstatus(gp, _Gwaiting, _Grunnable);
			*inheritTime = false;
			return gp;
		}
	}
	/* Spinning Ms: steal work from other Ps. Limit the number of spinning
	 * Ms to half the number of busy Ps. This is necessary to prevent
	 * excessive CPU consumption when GOMAXPROCS>>1 but the program
	 * parallelism is low. */
	int32_t procs = atomic_load(&gomaxprocs);
	if (mp->spinning || 2 * atomic_load(&sched.nmspinning) < procs - atomic_load(&sched.npidle)) {
		if (!mp->spinning) {
			mp->spinning = true;
			atomic_fetch_add(&sched.nmspinning, 1);
		}
		bool newWork;
		gp = stealWork(pp, &now, &pollUntil, &newWork);
		if (gp) {
			*inheritTime = false;
			return gp;
		}
		if (newWork) {
			/* There may be new timer or GC work; restart to
			 * discover. */
			goto top;
		}
	}
	/* We have nothing to do. Before we drop our P, make a snapshot of the
	 * allp slice; it can change once we're no longer blocking safe-point. */
	int32_t nsnap = procs;
	lock(&sched.lock);
	if (atomic_load(&sched.gcwaiting)) {
		unlock(&sched.lock);
		goto top;
	}
	if (sched.runq.n != 0) {
		gp = globrunqget(pp, 0);
		unlock(&sched.lock);
		*inheritTime = false;
		return gp;
	}
	if (releasep() != pp)
		throw("findrunnable: wrong p");
	pidleput(pp);
	unlock(&sched.lock);

	/* Delicate dance: thread transitions from spinning to non-spinning
	 * state, potentially concurrently with submission of new work. We must
	 * drop nmspinning first and then check all sources again (with
	 * #StoreLoad memory barrier in between). If we do it the other way
	 * around, another thread can submit work after we've checked all
	 * sources but before we drop nmspinning; as a result nobody will
	 * unpark a thread to run the work. */
	bool wasSpinning = mp->spinning;
	if (mp->spinning) {
		mp->spinning = false;
		if (atomic_fetch_sub(&sched.nmspinning, 1) - 1 < 0)
			throw("findrunnable: negative nmspinning");
		/* Check all runqueues once again. */
		for (int32_t i = 0; i < nsnap; i++) {
			struct p *p2 = allp[i];
			if (atomic_load(&p2->status) != _Pidle && !runqempty(p2)) {
				lock(&sched.lock);
				pp = pidleget();
				unlock(&sched.lock);
				if (pp) {
					acquirep(pp);
					mp->spinning = true;
					atomic_fetch_add(&sched.nmspinning, 1);
					goto top;
				}
				break;
			}
		}
		/* And the global queue: a runqputslow or an injectglist may have
		 * pushed there after our check under the lock. */
		lock(&sched.lock);
		if (sched.runq.n != 0 && (pp = pidleget())) {
			unlock(&sched.lock);
			acquirep(pp);
			mp->spinning = true;
			atomic_fetch_add(&sched.nmspinning, 1);
			goto top;
		}
		unlock(&sched.lock);
	}
	/* Similar to above, check for timer creation or expiry concurrently
	 * with transitioning from spinning to non-spinning. */
	for (int32_t i = 0; i < nsnap; i++) {
		int64_t w = timers_wakeTime(allp[i]);
		if (w != 0 && (pollUntil == 0 || w < pollUntil))
			pollUntil = w;
	}
	/* Poll network until next timer. */
	int64_t lastpoll = atomic_load(&sched.lastpoll);
	if (netpollinited() && (atomic_load(&netpollWaiters) > 0 || pollUntil != 0) && lastpoll != 0 &&
	    atomic_compare_exchange_strong(&sched.lastpoll, &lastpoll, 0)) {
		atomic_store(&sched.pollUntil, pollUntil);
		if (mp->p)
			throw("findrunnable: netpoll with p");
		if (mp->spinning)
			throw("findrunnable: netpoll with spinning");
		int64_t delay = -1;
		if (pollUntil != 0) {
			now = nanotime();
			delay = pollUntil - now;
			if (delay < 0)
				delay = 0;
		}
		struct gqueue list;
		sigmask_idle(mp);
		mp->blocked = true;
		netpoll(delay, &list); /* block until new work is available */
		mp->blocked = false;
		atomic_store(&sched.pollUntil, 0);
		atomic_store(&sched.lastpoll, nanotime());
		lock(&sched.lock);
		pp = pidleget();
		unlock(&sched.lock);
		if (!pp) {
			injectglist(&list);
		} else {
			acquirep(pp);
			if ((gp = gq_pop(&list)) != NULL) {
				injectglist(&list);
				casgstatus(gp, _Gwaiting, _Grunnable);
				*inheritTime = false;
				return gp;
			}
			if (wasSpinning) {
				mp->spinning = true;
				atomic_fetch_add(&sched.nmspinning, 1);
			}
			goto top;
		}
	} else if (pollUntil != 0 && netpollinited()) {
		int64_t pollerPollUntil = atomic_load(&sched.pollUntil);
		if (pollerPollUntil == 0 || pollerPollUntil > pollUntil)
			netpollBreak();
	}
	stopm();
	goto top;
}

/* ---- M start and exit ----------------------------------------------- */

struct mstart_args {
	struct m *mp;
};

static __attribute__((noreturn)) void mstart1(void *arg)
{
	struct m *mp = arg; /* still on the thread's stack: no fiber switch */
	if (mp->mstartfn)
		mp->mstartfn();
	if (mp->nextp) {
		acquirep(mp->nextp);
		mp->nextp = NULL;
	}
	schedule();
}

/* The start routine of every M's thread. The thread's own stack below this
 * frame is the M's g0 stack; m.exitbuf returns here when the M exits. */
/* An address below the caller's whole frame (a callee's frame is), for
 * carving g0's stack out of the thread's stack under the live frames:
 * the caller's own frame may be large (sanitizer builds inline a lot). */
static __attribute__((noinline)) uintptr_t below_caller_frame(void)
{
	return (uintptr_t)__builtin_frame_address(0);
}

static void *mstart(void *arg)
{
	struct m *mp = arg;
	minit(mp);
	/* g0 starts 16 KiB under the live frames: mstart still calls
	 * functions (goshim_swtch, whose saved context mexit resumes, and
	 * in sanitizer builds the sanitizer's runtime, with deep frames)
	 * after the first frame of g0 is written at top. The thread's stack
	 * is 272 KiB (newm); g0 gets 224 KiB of it. */
	uintptr_t top = (below_caller_frame() - 16 * 1024) & ~(uintptr_t)15;
	mp->g0->stack.hi = top;
	mp->g0->stack.lo = top - 224 * 1024;
	mp->g0buf.sp = top;
	struct gobuf start;
	start.tls = 0;
	goshim_gostart_frame(&start, top, mstart1, mp);
	goshim_swtch(&mp->g0->sched, &start); /* returns only in mexit */
	atomic_fetch_sub(&nthreads_own, 1);
	return NULL;
}

/* Ends the current M's thread (a goroutine exited while locked to it). */
static void mexit(struct m *mp)
{
	mp->exited = true;
	if (mp->p) {
		struct p *pp = releasep();
		handoffp(pp);
	}
	lock(&sched.lock);
	sched.nmfreed++;
	checkdead();
	unlock(&sched.lock);
	/* The M struct stays in allm (tracebacks may read it); the thread ends
	 * by resuming mstart's frame. */
#ifdef GOSHIM_TSAN
	__tsan_switch_to_fiber(mp->tsan_thread_fiber, 0);
#endif
	goshim_gogo(&mp->g0->sched);
}

static void newm(void (*fn)(void), struct p *pp)
{
	struct m *mp = allocm();
	mp->ownthread = true;
	mp->mstartfn = fn;
	mp->nextp = pp;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024 + 16384);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	/* Ms must not inherit a goroutine's blocked signals. */
	sigset_t all, old;
	sigfillset(&all);
	sigprocmask_raw(SIG_SETMASK, &all, &old);
	atomic_fetch_add(&nthreads_own, 1);
	pthread_t t;
	int err = real_pthread_create(&t, &attr, mstart, mp);
	sigprocmask_raw(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (err) {
		printerr("runtime: failed to create new OS thread (have %d already; errno=%d)\n",
		         (int)mcount(), err);
		throw("newosproc");
	}
}

/* ---- syscalls and foreign code (proc.go: entersyscall, exitsyscall) - */

__attribute__((noinline, cold)) static void entersyscall_gcwait(struct p *pp)
{
	lock(&sched.lock);
	uint32_t exp = _Psyscall;
	if (sched.stopwait > 0 &&
	    atomic_compare_exchange_strong(&pp->status, &exp, _Pgcstop)) {
		sched.stopwait--;
		if (sched.stopwait == 0)
			notewakeup(&sched.stopnote);
	}
	unlock(&sched.lock);
}

/* Wakes sysmon from its sleep on sysmonnote, if it is there: the CAS on
 * sysmonwait picks one waker, and no lock is taken, so a signal handler
 * may call it too (park_interrupt_later). Such a waker may be delayed
 * past sysmon's own wake-up and its next sleep, where another one woke it
 * already: the note is set without notewakeup's double-wakeup check. */
void sysmon_wake(void)
{
	uint32_t exp = 1;
	/* seq_cst: pairs with sysmon's store of sysmonwait and its look at
	 * catch_epoch (sig_catch_stale) */
	if (atomic_load(&sched.sysmonwait) &&
	    atomic_compare_exchange_strong(&sched.sysmonwait, &exp, 0) &&
	    atomic_exchange_explicit(&sched.sysmonnote.key, 1, memory_order_release) == 0)
		futexwakeup(&sched.sysmonnote.key, 1);
}

__attribute__((noinline, cold)) static void entersyscall_sysmon(void)
{
	lock(&sched.lock);
	sysmon_wake();
	unlock(&sched.lock);
}

/* The goroutine leaves the runtime for foreign code (or a syscall): its P
 * may be retaken while it is away. */
static inline void reentersyscall(struct g *gp, bool foreign)
{
	struct m *mp = gp->m;
	struct p *pp = mp->p;
	mp->syscallwhen = 0;
	uint32_t tick = pp->syscalltick + 1;
	atomic_store_explicit(&pp->syscalltick, tick, memory_order_relaxed);
	pp->m = NULL;
	mp->oldp = pp;
	mp->oldp_tick = tick;
	mp->p = NULL;
	atomic_store_explicit(&pp->inforeign, foreign, memory_order_relaxed);
	atomic_store_explicit(&pp->syscallm, mp, memory_order_relaxed);
	atomic_store_explicit(&pp->status, _Psyscall, memory_order_release);
	/* sysmon sleeps while every P is idle; a P in _Psyscall needs it
	 * awake to be retaken (proc.go: entersyscall_sysmon). */
	if (unlikely(atomic_load_explicit(&sched.sysmonwait, memory_order_relaxed)))
		entersyscall_sysmon();
	if (unlikely(atomic_load(&sched.gcwaiting)))
		entersyscall_gcwait(pp);
}

/* sysmon asked for this P's slice to end (pp->preempt: nothing went
 * through the scheduler here for forcePreemptNS). A goroutine that polls
 * with interposed calls that never block (trylock, pthread_cancel)
 * would otherwise keep its P for ever: each call moves syscalltick, so
 * sysmon never sees one long foreign call to retake. Leaving the runtime
 * is a safe point, and it yields there, as Go's preemption does; to the
 * tail of the local queue, not Go's global one: the slice-ending
 * schedule takes the global queue first, and would run the yielder again
 * before a goroutine readied here (a timer's) in runnext. */
static __attribute__((noinline, cold)) void runtime_leave_preempted(void)
{
	struct p *pp = getg()->m->p;
	atomic_fetch_add_explicit(&pp->preempted, 1, memory_order_relaxed);
	goyield();
}

void runtime_leave(void)
{
	struct g *gp = getg();
	if (unlikely(atomic_load_explicit(&gp->m->p->preempt, memory_order_relaxed))) {
		/* Not from a signal handler: the M would keep the handler's
		 * mask, and its frame, for the next goroutine. */
		uintptr_t sp = (uintptr_t)__builtin_frame_address(0), hs = gp->handler_sp;
		if (hs && (sp > hs || hs < gp->stack.lo || hs >= gp->stack.hi))
			gp->handler_sp = hs = 0; /* left by a longjmp (or off this stack) */
		if (!hs)
			runtime_leave_preempted();
	}
	reentersyscall(gp, true);
	atomic_signal_fence(memory_order_seq_cst);
	gp->inruntime = false;
}

void entersyscall(void)
{
	struct g *gp = getg();
	casgstatus(gp, _Grunning, _Gsyscall);
	reentersyscall(gp, false);
}

/* Thieves of a _Psyscall P (p_take_syscall) and its M taking it back
 * (exitsyscall_oldp), without a locked instruction on the M's side:
 *
 *   M:     m.reclaiming = P; [compiler barrier]; read p.thief, p.status
 *   thief: p.thief = 1; membarrier(); read the M's m.reclaiming
 *
 * membarrier runs a full fence on every running thread of the process, so
 * of the two store-then-load sequences at least one sees the other's store
 * (Dekker's, with the fence made asymmetric): an M that saw no thief and
 * the status still _Psyscall takes the P with a plain store, and the thief
 * sees it reclaiming and leaves the P alone. An M that sees a thief, or a
 * thief that sees no reclaiming M, settles it with a CAS on p.status, as
 * everyone did before. Only the M named by p.syscallm, for the syscalltick
 * it left at, takes the P this way: an M whose P was taken and came back
 * to _Psyscall under another M (or in a later call) goes the slow way.
 *
 * Without asym_fence ("asymmetric fences" above), both sides CAS. */

/* The thief's fence: false while it cannot be trusted. When membarrier
 * stopped working (fence_heavy), the Ms went back to the CAS; thieves wait
 * 10 ms, by which any M that was in its plain-store window then has long
 * left it (a window is a few instructions, and a context switch drains the
 * store buffer), before they take a P with their own seq_cst fence: a
 * bound from how machines behave, not a proof. */
static bool thief_fence(void)
{
	bool asym = fence_heavy();
	int64_t lost = atomic_load_explicit(&asym_lost_at, memory_order_relaxed);
	return asym || !lost || nanotime() - lost > 10 * 1000 * 1000;
}

/* Takes pp out of _Psyscall, to to (retake: _Pidle; stopTheWorld:
 * _Pgcstop), for anyone but the M that left it there: true if it did.
 * Thieves decide one at a time (p.thief); a thief that finds another at
 * it, or the M taking its P back, leaves it, and tries again later as
 * both callers do. */
bool p_take_syscall(struct p *pp, uint32_t to)
{
	uint32_t none = 0;
	if (atomic_load_explicit(&pp->status, memory_order_relaxed) != _Psyscall ||
	    !atomic_compare_exchange_strong(&pp->thief, &none, 1))
		return false;
	bool took = false;
	if (thief_fence()) {
		struct m *owner = atomic_load(&pp->syscallm);
		if (!owner || atomic_load(&owner->reclaiming) != pp) {
			uint32_t exp = _Psyscall;
			took = atomic_compare_exchange_strong(&pp->status, &exp, to);
		}
	}
	atomic_store_explicit(&pp->thief, 0, memory_order_release);
	return took;
}

/* exitsyscallfast's first try, inline on every return from foreign code
 * or a system call: the old P, if no thief has taken it (the protocol
 * above). */
static inline bool exitsyscall_oldp(struct m *mp, struct p *oldp)
{
	if (!oldp)
		return false;
	if (likely(asym_fence_on())) {
		atomic_store_explicit(&mp->reclaiming, oldp, memory_order_relaxed);
		atomic_signal_fence(memory_order_seq_cst); /* the thief's membarrier is the fence */
		bool nothief = !atomic_load_explicit(&oldp->thief, memory_order_acquire);
		bool insyscall = atomic_load_explicit(&oldp->status, memory_order_acquire) == _Psyscall;
		bool ours = atomic_load_explicit(&oldp->syscallm, memory_order_relaxed) == mp &&
		            atomic_load_explicit(&oldp->syscalltick, memory_order_relaxed) == mp->oldp_tick;
		bool mine = nothief && insyscall && ours;
		if (mine)
			atomic_store_explicit(&oldp->status, _Prunning, memory_order_relaxed);
		atomic_store_explicit(&mp->reclaiming, NULL, memory_order_release);
		if (mine) {
			mp->p = oldp;
			oldp->m = mp;
			return true;
		}
		if (!ours || !insyscall)
			return false;
		/* A thief is deciding: whoever CASes first has it. */
	}
	uint32_t exp = _Psyscall;
	if (atomic_load_explicit(&oldp->status, memory_order_relaxed) == _Psyscall &&
	    atomic_compare_exchange_strong_explicit(&oldp->status, &exp, _Prunning,
	        memory_order_acquire, memory_order_relaxed)) {
		mp->p = oldp;
		oldp->m = mp;
		return true;
	}
	return false;
}

/* exitsyscallfast's second try: any idle P. */
static bool exitsyscall_pidle(void)
{
	if (atomic_load(&sched.npidle) > 0 && !atomic_load(&sched.gcwaiting)) {
		lock(&sched.lock);
		struct p *pp = pidleget();
		if (pp)
			sysmon_wake();
		unlock(&sched.lock);
		if (pp) {
			acquirep(pp);
			return true;
		}
	}
	return false;
}

/* The old P is gone: an idle one, or exitsyscall0 on g0. */
__attribute__((noinline)) static void exitsyscall_slow(struct g *gp, bool foreign)
{
	if (exitsyscall_pidle()) {
		if (!foreign)
			casgstatus(gp, _Gsyscall, _Grunning);
		atomic_store_explicit(&gp->m->p->syscalltick, gp->m->p->syscalltick + 1,
		                      memory_order_relaxed);
		return;
	}
	if (foreign)
		casgstatus(gp, _Grunning, _Gsyscall);
	mcall(exitsyscall0); /* returns rescheduled, with a P, maybe on another M */
}

/* proc.go: exitsyscall, split as exitsyscallfast's two tries. */
static inline void exitsyscall_common(bool foreign)
{
	struct g *gp = getg();
	struct m *mp = gp->m;
	struct p *oldp = mp->oldp;
	mp->oldp = NULL;
	if (unlikely(!exitsyscall_oldp(mp, oldp))) {
		exitsyscall_slow(gp, foreign);
		return;
	}
	if (!foreign)
		casgstatus(gp, _Gsyscall, _Grunning);
	atomic_store_explicit(&oldp->syscalltick, oldp->syscalltick + 1, memory_order_relaxed);
}

void runtime_enter(void)
{
	getg()->inruntime = true;
	atomic_signal_fence(memory_order_seq_cst);
	exitsyscall_common(true);
}

/* The P this M left for foreign code, unless sysmon has retaken it since
 * (retake and every entersyscall move its syscalltick). */
static struct p *oldp_still_ours(struct m *mp)
{
	struct p *pp = mp->oldp;
	if (pp && atomic_load_explicit(&pp->syscalltick, memory_order_relaxed) == mp->oldp_tick &&
	    atomic_load_explicit(&pp->status, memory_order_relaxed) == _Psyscall)
		return pp;
	return NULL;
}

/* entersyscall for a goroutine in foreign code (runtime_leave's state:
 * its P, if sysmon has not handed it on, is in _Psyscall): only the
 * goroutine's status and the P's kind of absence change, so sysmon hands
 * the P on as it would for a system call. inruntime keeps a signal
 * handler's interposed calls out meanwhile, as inside the runtime. */
void entersyscall_foreign(void)
{
	struct g *gp = getg();
	gp->inruntime = true;
	atomic_signal_fence(memory_order_seq_cst);
	casgstatus(gp, _Grunning, _Gsyscall);
	struct p *pp = oldp_still_ours(gp->m);
	if (pp)
		atomic_store_explicit(&pp->inforeign, false, memory_order_relaxed);
	atomic_signal_fence(memory_order_seq_cst);
	gp->insyscall_foreign = true;
}

/* Back from entersyscall_foreign to foreign code, without taking a P: the
 * next runtime entry takes one. */
void exitsyscall_foreign(void)
{
	struct g *gp = getg();
	gp->insyscall_foreign = false;
	atomic_signal_fence(memory_order_seq_cst);
	casgstatus(gp, _Gsyscall, _Grunning);
	struct p *pp = oldp_still_ours(gp->m);
	if (pp)
		atomic_store_explicit(&pp->inforeign, true, memory_order_relaxed);
	atomic_signal_fence(memory_order_seq_cst);
	gp->inruntime = false;
}

/* A cancellation is unwinding the calling goroutine out of a system call
 * it made for the program (glibc's cancellation point inside sys_begin /
 * sys_end: SYSCALL_CANCEL saw a pending cancel, or SIGCANCEL came in the
 * call): back to foreign code, as sys_end would have left it, before the
 * program's cleanup handlers run. Called by the wrapper's scope as the
 * unwind leaves it (interpose.h: SYS_CALL_SCOPE). */
void syscall_unwound(void)
{
	struct g *gp = getg();
	if (readgstatus(gp) != _Gsyscall)
		return;
	atomic_store(&gp->callopen, 0);
	exitsyscall_foreign();
}

void exitsyscall(void)
{
	exitsyscall_common(false);
}

/* exitsyscall slow path on g0: failed to acquire P, enqueue gp as
 * runnable. */
static void exitsyscall0(struct g *gp)
{
	struct m *mp = on_g0(gp);
	casgstatus(gp, _Gsyscall, _Grunnable);
	dropg_of(mp, gp);
	lock(&sched.lock);
	struct p *pp = NULL;
	if (!atomic_load(&sched.gcwaiting))
		pp = pidleget();
	bool locked = gp->lockedm != NULL;
	if (!pp || locked) {
		if (!pp)
			globrunqput_locked(gp);
	}
	if (pp)
		sysmon_wake();
	unlock(&sched.lock);
	if (pp) {
		acquirep(pp);
		execute(gp, false); /* Never returns. */
	}
	if (locked) {
		/* Wait until another thread schedules gp and so m again. */
		stoplockedm();
		execute(gp, false); /* Never returns. */
	}
	stopm();
	schedule(); /* Never returns. */
}

/* ---- lockOSThread (proc.go) ----------------------------------------- */

void lockOSThread(void)
{
	struct g *gp = getg();
	struct m *mp = gp->m;
	if (mp->lockedExt + 1 == 0)
		throw("LockOSThread nesting overflow");
	mp->lockedExt++;
	mp->lockedg = gp;
	gp->lockedm = mp;
}

void unlockOSThread(void)
{
	struct g *gp = getg();
	struct m *mp = gp->m;
	if (mp->lockedExt == 0)
		return;
	mp->lockedExt--;
	if (mp->lockedInt != 0 || mp->lockedExt != 0)
		return;
	mp->lockedg = NULL;
	gp->lockedm = NULL;
}

/* ---- stop the world and procresize (proc.go) ------------------------ */

/* stopTheWorldWithSema: every P ends up _Pgcstop except the caller's. The
 * caller is a goroutine inside the runtime, holding its P. */
static void stopTheWorld(void)
{
	struct m *mp = getg()->m;
	lock(&sched.lock);
	sched.stopwait = atomic_load(&gomaxprocs);
	atomic_store(&sched.gcwaiting, 1);
	/* stop current P */
	atomic_store(&mp->p->status, _Pgcstop);
	sched.stopwait--;
	/* try to retake all P's in Psyscall status */
	for (int32_t i = 0; i < atomic_load(&gomaxprocs); i++) {
		if (p_take_syscall(allp[i], _Pgcstop))
			sched.stopwait--;
	}
	/* stop idle P's */
	struct p *pp;
	while ((pp = pidleget())) {
		atomic_store(&pp->status, _Pgcstop);
		sched.stopwait--;
	}
	bool wait = sched.stopwait > 0;
	unlock(&sched.lock);
	/* wait for remaining P's to stop voluntarily: Ms in the scheduler
	 * notice gcwaiting in schedule/findrunnable, Ms returning to foreign
	 * code in entersyscall_gcwait */
	if (wait) {
		for (;;) {
			if (notetsleep(&sched.stopnote, 100 * 1000)) {
				noteclear(&sched.stopnote);
				break;
			}
			/* Ps that went to _Psyscall since */
			lock(&sched.lock);
			bool wakeup_coming = sched.stopwait == 0; /* a stopper got there */
			bool we_finished = false;
			for (int32_t i = 0; i < atomic_load(&gomaxprocs); i++) {
				if (p_take_syscall(allp[i], _Pgcstop) && --sched.stopwait == 0)
					we_finished = true;
			}
			unlock(&sched.lock);
			if (we_finished)
				break; /* the last stop was ours: nobody will wake us */
			if (wakeup_coming) {
				/* the stopper that brought stopwait to 0 wakes the
				 * note (or has): wait for it */
				notesleep(&sched.stopnote);
				noteclear(&sched.stopnote);
				break;
			}
		}
	}
	if (sched.stopwait != 0)
		throw("stopTheWorld: not stopped");
	for (int32_t i = 0; i < atomic_load(&gomaxprocs); i++)
		if (atomic_load(&allp[i]->status) != _Pgcstop)
			throw("stopTheWorld: not stopped");
}

static void pinit(struct p *pp, int32_t id)
{
	pp->id = id;
	timers_pinit(pp);
	atomic_store(&pp->status, _Pgcstop);
}

/* p.destroy: moves everything a P holds elsewhere. sched.lock held, world
 * stopped. */
static void pdestroy(struct p *pp)
{
	struct g *gp;
	bool inh;
	while ((gp = runqget(pp, &inh)))
		gq_pushhead(&sched.runq, gp);
	/* Move all timers to the local P. */
	timers_take(getg()->m->p, pp);
	gfpurge(pp);
	stackcache_flush(pp);
	sudogcache_flush(pp);
	atomic_fetch_add(&sched.ngoroutines, (int32_t)pp->ngdelta);
	atomic_store(&pp->ngdelta, 0);
	atomic_store(&pp->status, _Pdead);
}

/* procresize changes the number of Ps; sched.lock held, world stopped.
 * Returns the list of Ps with local work, which the caller must schedule. */
static struct p *procresize(int32_t nprocs)
{
	struct m *mp = getg()->m;
	int32_t old = atomic_load(&gomaxprocs);
	if (old < 0 || nprocs <= 0)
		throw("procresize: invalid arg");
	/* initialize new P's */
	for (int32_t i = nallp; i < nprocs; i++) {
		struct p *pp = persistentalloc(sizeof *pp, CACHE_LINE);
		if (!pp)
			throw("procresize: out of memory");
		pinit(pp, i);
		__atomic_store_n(&allp[i], pp, __ATOMIC_RELEASE);
	}
	if (nprocs > nallp)
		nallp = nprocs;
	for (int32_t i = old; i < nprocs; i++)
		if (atomic_load(&allp[i]->status) == _Pdead)
			atomic_store(&allp[i]->status, _Pgcstop);

	if (mp->p && mp->p->id < nprocs) {
		/* continue to use the current P */
		atomic_store(&mp->p->status, _Prunning);
	} else {
		/* release the current P and acquire allp[0] */
		if (mp->p) {
			mp->p->m = NULL;
			mp->p = NULL;
		}
		struct p *pp = allp[0];
		pp->m = NULL;
		atomic_store(&pp->status, _Pidle);
		acquirep(pp);
	}
	/* release resources from unused P's */
	for (int32_t i = nprocs; i < old; i++)
		pdestroy(allp[i]);
	steal_order_reset(nprocs);
	atomic_store(&gomaxprocs, nprocs);

	struct p *runnablePs = NULL;
	for (int32_t i = nprocs - 1; i >= 0; i--) {
		struct p *pp = allp[i];
		if (mp->p == pp)
			continue;
		atomic_store(&pp->status, _Pidle);
		if (runqempty(pp)) {
			pidleput(pp);
		} else {
			pp->m = mget();
			pp->link = runnablePs;
			runnablePs = pp;
		}
	}
	return runnablePs;
}

static void startTheWorld(struct p *runnable)
{
	atomic_store(&sched.gcwaiting, 0);
	sysmon_wake();
	unlock(&sched.lock);
	while (runnable) {
		struct p *pp = runnable;
		runnable = pp->link;
		pp->link = NULL;
		if (pp->m) {
			struct m *mp = pp->m;
			pp->m = NULL;
			if (mp->nextp)
				throw("startTheWorld: inconsistent mp->nextp");
			mp->nextp = pp;
			notewakeup(&mp->park);
		} else {
			/* Start M to run P. */
			startm(pp, false);
		}
	}
	/* Wakeup an additional proc in case we have excessive runnable
	 * goroutines in local queues or in the global queue. */
	wakep();
}

/* GOMAXPROCS: called from a goroutine inside the runtime. */
/* proc.go: worldsema — held from stopTheWorld to startTheWorld, so two
 * goroutines changing GOMAXPROCS at once take turns instead of each
 * waiting for the other's P. */
static _Atomic uint32_t worldsema = 1;

int procresize_set(int32_t n)
{
	if (n > MAX_PROCS)
		n = MAX_PROCS;
	semacquire1(&worldsema, false, waitReasonSemacquire);
	int32_t old = atomic_load(&gomaxprocs);
	if (n < 1 || n == old) {
		semrelease1(&worldsema, false);
		return old;
	}
	stopTheWorld();
	lock(&sched.lock);
	struct p *runnable = procresize(n);
	startTheWorld(runnable);
	semrelease1(&worldsema, false);
	return old;
}

/* ---- fork (not in Go: its runtime forks only to exec) -------------- */

/*
 * A fork child has one thread, the one that called fork, and POSIX says
 * the parent's other threads do not exist there. The runtime makes that
 * true of goroutines (the three functions run from the pthread_atfork
 * handlers that interpose/io.c registers first, so that its prepare
 * handler runs after the program's and its child handler before them):
 *
 *  - beforefork stops the world (holding worldsema) and takes sched.lock
 *    and allmlock: while the address space is copied no P runs runtime
 *    code, so nothing a P guards is half-changed, and no M is inside the
 *    scheduler's or allm's lists. Locks that an M without a P may hold at
 *    that moment (a netpoll delivering readiness, a thread being adopted,
 *    the caches) are made free again in the child instead.
 *  - afterfork (parent) undoes it: procresize to the same size rebuilds
 *    the idle and runnable P lists, then startTheWorld.
 *  - afterforkinchild leaves one M (the caller's) and no sysmon (the first
 *    goroutine created brings it back: sysmon_ensure), empties every run
 *    queue, and marks every other goroutine forkgone (_Gdead, parkstate
 *    PARK_GONE). Wakers
 *    skip gone goroutines (waitq_dequeue, semrelease1, the parkq claims,
 *    and ready() last of all), so a channel value, a semaphore count or a
 *    mutex goes to a goroutine of the child, and no goroutine of the
 *    parent ever runs here. Goroutines parked in a coroutine switch stay:
 *    only their owner resumes them, and that may be the forking one.
 *    Timers stay on their Ps (one that would wake a gone goroutine finds
 *    it gone). The netpoller starts again: the parent's epoll instance is
 *    shared with the child, so the child drops its copy and pollDescs
 *    register with a new one when next waited on.
 */
void beforefork(void)
{
	semacquire1(&worldsema, false, waitReasonSemacquire);
	stopTheWorld();
	lock(&sched.lock);
	lock(&allmlock);
}

void afterfork(void)
{
	unlock(&allmlock);
	startTheWorld(procresize(atomic_load(&gomaxprocs)));
	semrelease1(&worldsema, false);
}

void afterforkinchild(void)
{
	struct g *me = getg();
	struct m *mp = me->m;

	/* Ms: the caller's, which holds its P. */
	mp->procid = (pid_t)syscall(SYS_gettid);
	mp->lastg = NULL;
	atomic_store(&me->sigpending, 0); /* a fork child starts with none pending */
	atomic_store(&me->siginflight, 0);
	atomic_store(&main_info_set, 0);
	atomic_store(&main_info_busy, 0);
	atomic_store(&proc_pending, 0); /* the parent's */
	if (atomic_load(&main_g)) {
		atomic_store(&main_g, me); /* the child's only thread is its leader */
		main_pthread = pthread_self(); /* its identity: not interposed */
	}
	mp->alllink = NULL;
	allm = mp;
	mp->schedlink = NULL;
	mp->spinning = false;
	sched.midle = NULL;
	sched.nmidle = 0;
	sched.nmidlelocked = 0;
	sched.nmsys = 0;
	sched.nmfreed = sched.mnext - 1;
	atomic_store(&sched.nmspinning, 0);
	atomic_store(&nthreads_own, 1);
	atomic_store(&sysmon_started, false);
	atomic_store(&sched.sysmonwait, 0);
	noteclear(&sched.sysmonnote);
	noteclear(&sched.stopnote);
	sched.stopwait = 0;
	atomic_store(&sched.lastpoll, nanotime()); /* nobody is in netpoll */
	atomic_store(&sched.pollUntil, 0);

	/* Goroutines: the caller's, and coroutines waiting for a switch. */
	int32_t live = 0;
	for (struct g *gp = allgs; gp; gp = gp->alllink) {
		uint32_t st = readgstatus(gp);
		bool keep = gp == me || st == _Gdead ||
		            (st == _Gwaiting && gp->waitreason == waitReasonCoroutine);
		if (!keep) {
			gp->forkgone = true;
			atomic_store(&gp->parkstate, PARK_GONE);
			atomic_store(&gp->atomicstatus, _Gdead);
			gp->m = NULL;
			gp->lockedm = NULL;
			gp->schedlink = NULL;
		} else if (st != _Gdead && !gp->system) {
			live++;
		}
	}
	atomic_store(&sched.ngoroutines, live);
	sched.runq.head = sched.runq.tail = NULL;
	atomic_store(&sched.runq.n, 0);
	for (int32_t i = 0; i < nallp; i++) {
		struct p *pp = allp[i];
		atomic_store(&pp->ngdelta, 0);
		atomic_store(&pp->runqhead, 0);
		atomic_store(&pp->runqtail, 0);
		atomic_store(&pp->runnext, NULL);
		/* The parent's sysmon may have asked for a slice to end: the
		 * child's first runtime_leave would yield for it. */
		atomic_store_explicit(&pp->preempt, false, memory_order_relaxed);
		memset(&pp->sysmontick, 0, sizeof pp->sysmontick);
		/* A thief of the parent's (sysmon) may have been deciding. */
		atomic_store(&pp->thief, 0);
		if (pp != mp->p) {
			pp->m = NULL;
			atomic_store(&pp->syscallm, NULL);
		}
	}

	/* Locks an M without a P may have held at the fork. */
	lock_reinit_afterfork(&allglock);
	lock_reinit_afterfork(&sched.gFreeLock);
	lock_reinit_afterfork(&sched.sudoglock);
	stack_afterforkinchild();
	netpoll_afterforkinchild();
	thread_afterforkinchild(me);
	tls_afterforkinchild(mp);

	unlock(&allmlock);
	if (procresize(atomic_load(&gomaxprocs)))
		throw("afterforkinchild: runnable P");
	/* startTheWorld without its wakep: a child that only execs starts no
	 * thread; the first goroutine made runnable starts an M. */
	atomic_store(&sched.gcwaiting, 0);
	unlock(&sched.lock);
	semrelease1(&worldsema, false);
	/* Timers made before the fork (go_after, a ticker, a context's
	 * deadline) need the netpoller to sleep on and sysmon to hand a P on:
	 * with none, the child starts both now. */
	if (timers_any()) {
		netpollGenericInit();
		sysmon_ensure();
	}
}

/* ---- deadlock detection (proc.go: checkdead) ------------------------ */

/* proc.go: incidlelocked. sysmon pretends to be one more running M while it
 * hands a retaken P on, so checkdead does not count that P as lost. */
void incidlelocked(int32_t v)
{
	lock(&sched.lock);
	sched.nmidlelocked += v;
	if (v > 0)
		checkdead();
	unlock(&sched.lock);
}

/* OS threads in this process, from /proc/self/stat (raw syscalls: this
 * runs with sched.lock held). -1 if unknown. */
static int process_threads(void)
{
	char buf[1024];
	int fd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/stat", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = syscall(SYS_read, fd, buf, sizeof buf - 1);
	syscall(SYS_close, fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	/* field 20 (num_threads); the comm field (2) may hold spaces, so count
	 * from the last ')' */
	char *p = strrchr(buf, ')');
	if (!p)
		return -1;
	int field = 2;
	for (; *p && field < 20; p++)
		if (*p == ' ')
			field++;
	return atoi(p);
}

/* Are the runtime's own threads (Ms, sysmon) the only ones so far? */
bool threads_all_runtime(void)
{
	int n = process_threads();
	return n > 0 && n <= atomic_load(&nthreads_own);
}

/* Check for deadlock situation. The check is based on number of running
 * M's, if 0 -> deadlock. sched.lock held. */
void checkdead(void)
{
	int32_t run = mcount() - sched.nmidle - sched.nmidlelocked - sched.nmsys;
	if (run > 0)
		return;
	if (run < 0) {
		printerr("runtime: checkdead: nmidle=%d nmidlelocked=%d mcount=%d nmsys=%d\n",
		         sched.nmidle, sched.nmidlelocked, mcount(), sched.nmsys);
		throw("checkdead: inconsistent counts");
	}
	/* A thread the runtime does not know may still call in and wake
	 * someone: then this is not a deadlock we can prove. */
	int threads = process_threads();
#ifdef GOSHIM_TSAN
	threads--; /* ThreadSanitizer's background thread never calls in */
#endif
	if (threads < 0 || threads > atomic_load(&nthreads_own))
		return;
	/* There are no goroutines running, so we can look at the P's timers:
	 * a goroutine waiting for a timer is not deadlocked. */
	if (timers_any())
		return;
	/* Nor one whose handler may post a semaphore (main in sem_wait, woken
	 * from a SIGALRM handler), as POSIX allows: natively it would wait. */
	if (sig_handlers_installed())
		return;
	int grunning = 0;
	bool pthreads = false;
	struct g *mg = atomic_load(&main_g);
	for (struct g *gp = __atomic_load_n(&allgs, __ATOMIC_ACQUIRE); gp; gp = gp->alllink) {
		if (gp->system)
			continue;
		switch (readgstatus(gp)) {
		case _Gwaiting:
			grunning++;
			if (gp->thread || (mg && gp == mg))
				pthreads = true;
			break;
		case _Grunnable:
		case _Grunning:
		case _Gsyscall:
			printerr("runtime: checkdead: find g %lld in status %u\n", (long long)gp->goid,
			         readgstatus(gp));
			throw("checkdead: runnable g");
		default:
			break;
		}
	}
	if (grunning == 0) /* possible if main goroutine calls runtime·Goexit() */
		fatal("no goroutines (main called runtime.Goexit) - deadlock!");
	/* Not in Go. A thread of the program waiting for ever (a pthread
	 * wait nobody will end) waits so natively, until a signal from
	 * outside ends the process: so does it here, the Ms asleep and
	 * sysmon letting such signals through. Only goroutines of the API
	 * get Go's verdict. */
	if (pthreads)
		return;
	fatal("all goroutines are asleep - deadlock!");
}

/* ---- start-up: schedinit, main adoption, needm ---------------------- */

/* Adopting a thread (cgo's needm + lockOSThread): a new M whose g0 runs on
 * a separate stack, and a goroutine for the code on the thread's own stack,
 * locked to that M. */
static struct m *adopt_m(void)
{
	struct m *mp = allocm();
	mp->incgo = true;
	struct g *g0 = mp->g0;
	if (!stackalloc(&g0->stack, 0))
		throw("needm: cannot allocate g0 stack");
	mp->g0buf.sp = g0->stack.hi & ~(uintptr_t)15;
	minit(mp);
	atomic_fetch_add(&nthreads_own, 1);
	return mp;
}

/* The adopted goroutine, _Grunning on mp, in foreign code without a P. */
static struct g *adopt_g(struct m *mp)
{
	struct g *gp = persistentalloc(sizeof *gp, CACHE_LINE);
	if (!gp)
		throw("needm: out of memory");
	atomic_store(&gp->atomicstatus, _Gidle);
	gp->adopted = true;
	gp->sched.tls = mp->tls;
	/* The thread's own stack: for tracebacks and for ASan's fiber
	 * switches (it must know where the goroutine's stack is). Not a
	 * stack the runtime owns: base and size stay 0. */
	uintptr_t lo, hi;
	if (real_thread_stack(&lo, &hi)) {
		gp->stack.lo = lo;
		gp->stack.hi = hi;
		gp->stack.touched_lo = hi;
	}
#ifdef GOSHIM_TSAN
	/* The thread's own fiber is the goroutine's; g0 gets a new one. */
	gp->tsan_fiber = mp->g0->tsan_fiber;
	mp->g0->tsan_fiber = __tsan_create_fiber(0);
#endif
	gp->goid = (int64_t)atomic_fetch_add(&sched.goidgen, 1) + 1;
	casgstatus(gp, _Gidle, _Gdead);
	allgadd(gp);
	atomic_fetch_add(&sched.ngoroutines, 1);
	gp->sigmask = mp->sigmask; /* the thread's (minit) */
	mp->curg = gp;
	gp->m = mp;
	mp->lockedInt = 1; /* internal: go_unlock_thread cannot release it */
	mp->lockedg = gp;
	gp->lockedm = mp;
	casgstatus(gp, _Gdead, _Grunning);
	mp->oldp = NULL;
	setg(gp);
	return gp;
}

static void needm_destructor(void *arg)
{
	/* The adopted thread is exiting: its goroutine and M end with it. */
	struct g *gp = arg;
	if (getg() != gp || readgstatus(gp) == _Gdead)
		return;
	runtime_enter();
	struct m *mp = gp->m;
	casgstatus(gp, _Grunning, _Gdead);
	atomic_fetch_sub(&sched.ngoroutines, 1);
	mp->lockedg = NULL;
	gp->lockedm = NULL;
	mp->curg = NULL;
	gp->m = NULL;
	setg(mp->g0);
	handoffp(releasep());
	lock(&sched.lock);
	sched.nmfreed++;
	unlock(&sched.lock);
	atomic_fetch_sub(&nthreads_own, 1);
	sigset_t all;
	sigfillset(&all);
	sigprocmask_raw(SIG_SETMASK, &all, NULL); /* the thread ends without an M */
	setg(NULL);
}

/* Returns with the calling thread a goroutine in foreign code without a
 * P: the caller's runtime_enter gets one. */
struct g *needm(void)
{
	if (!__atomic_load_n(&runtime_inited, __ATOMIC_ACQUIRE))
		schedinit();
	struct g *gp = getg();
	if (gp)
		return gp; /* schedinit adopted this thread as main */
	struct m *mp = adopt_m();
	gp = adopt_g(mp);
	pthread_setspecific(needm_key, gp);
	return gp;
}

void newm_sysmon(void)
{
	bool exp = false;
	if (atomic_load_explicit(&sysmon_started, memory_order_relaxed) ||
	    !atomic_compare_exchange_strong(&sysmon_started, &exp, true))
		return;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	sigset_t all, old;
	sigfillset(&all);
	sigprocmask_raw(SIG_SETMASK, &all, &old);
	atomic_fetch_add(&nthreads_own, 1);
	pthread_t t;
	int err = real_pthread_create(&t, &attr, sysmon_thread, NULL);
	sigprocmask_raw(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (err)
		throw("newosproc: cannot start sysmon");
}

/* DESIGN.md "The main thread": main becomes an ordinary goroutine that
 * any M runs, so a wake-up of main costs what any goroutine's does. It
 * keeps the process's first TCB as its identity (glibc's, with the pid
 * for tid); M0, the first thread, gets one of its own for the scheduler
 * and the go() goroutines it runs, which takes main's place on glibc's
 * thread list (setxid signals M0 by it, and main, like every identity,
 * is on no list). Process-directed signals find main through the router
 * (above). Called once, by main, once identities can be built
 * (tls_init); if one cannot, main stays locked to M0. */
void main_unlock(void)
{
	struct g *gp = getg();
	struct m *mp = gp->m;
	if (gp->lockedm != mp || mp->g0->stack.hi == 0)
		throw("main_unlock: not main");
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	size_t size = (tls_reserve() + pg - 1) & ~(pg - 1);
	void *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return;
	struct tls_stackinfo si = {
		.stackblock = mp->g0->stack.lo,
		.stackblock_size = mp->g0->stack.hi - mp->g0->stack.lo,
		.user_stack = true,
	};
	uintptr_t lo, tp = tls_build((uintptr_t)mem + size, &lo, mp->g0, &si);
	if (!tp) {
		munmap(mem, size);
		return;
	}
	tls_start_on(tp);
	tls_take_main_place(tp);
	main_pthread = pthread_self();
	mp->tls = tp;
	mp->g0buf.tls = tp;
	mp->lockedInt = 0;
	mp->lockedg = NULL;
	gp->lockedm = NULL;
	atomic_store(&main_g, gp);
	sig_catch_changed();
}

/* proc.go: schedinit. Runs once, from the library constructor (or the
 * first API call, if that comes first), on the thread that loads us. */
void schedinit(void)
{
	static _Atomic int once;
	int exp = 0;
	if (!atomic_compare_exchange_strong(&once, &exp, 1)) {
		while (!__atomic_load_n(&runtime_inited, __ATOMIC_ACQUIRE))
			syscall(SYS_sched_yield); /* never the interposed one */
		return;
	}
	goshim_arch_init();
	parse_env();
	asym_fence_init();
	g_mark_init();
	stack_init();
	sched.maxmcount = 10000;
	sched.starttime = nanotime();
	atomic_store(&sched.lastpoll, nanotime());
	pthread_key_create(&needm_key, needm_destructor);
	allp = calloc(MAX_PROCS, sizeof *allp);
	if (!allp)
		throw("schedinit: out of memory");
	int32_t procs = 0;
	cpu_set_t set;
	CPU_ZERO(&set);
	/* Raw: sched_getaffinity is interposed (a thread's affinity). */
	if (syscall(SYS_sched_getaffinity, 0, sizeof set, &set) > 0)
		procs = CPU_COUNT(&set);
	if (procs < 1)
		procs = 1;
	if (env_gomaxprocs > 0)
		procs = env_gomaxprocs;
	if (procs > MAX_PROCS)
		procs = MAX_PROCS;
	install_fatal_signals();
	sigset_t initial;
	sigprocmask_raw(SIG_SETMASK, NULL, &initial);
	initial_mask = sigmask_of(&initial);

	/* The loading thread (main) becomes M0 with the first P, and its code
	 * the first goroutine, as Go's runtime.main. */
	struct m *mp = adopt_m();
	lock(&sched.lock);
	if (procresize(procs))
		throw("schedinit: unexpected runnable P");
	unlock(&sched.lock);
	adopt_g(mp);
	runtime_leave();
	__atomic_store_n(&runtime_inited, true, __ATOMIC_RELEASE);
	atomic_store(&mainStarted, true);
}
