/*
 * runtime.h — the data structures of the scheduler, ported from Go's
 * runtime/runtime2.go, and the internal interface between runtime/ files.
 *
 * G: a goroutine. M: an OS thread (machine). P: a processor, the right to
 * run goroutines; GOMAXPROCS of them exist. An M must hold a P to run a
 * goroutine; an M without a P sleeps on its note or is in a syscall.
 *
 * Invariants kept from Go:
 *  - g.atomicstatus changes only through casgstatus (CAS), along the edges
 *    of Go's status machine (runtime2.go): Gidle -> Gdead -> Grunnable ->
 *    Grunning -> {Gwaiting, Gsyscall, Grunnable, Gdead}.
 *  - p.status is _Prunning only while an M owns it. _Psyscall means its M
 *    is in a syscall *or running foreign code*: sysmon may take it away
 *    (retake, to _Pidle; stopTheWorld, to _Pgcstop), and the M gets a P
 *    back in exitsyscall. Principle 3 of the design: the P moves, the
 *    goroutine keeps its M. Taking a P out of _Psyscall is proc.c's
 *    p_take_syscall for everyone but the M that left it, which takes it
 *    back without a locked instruction (exitsyscall_oldp) while the
 *    kernel offers membarrier.
 *  - Run queues: p.runq is a lock-free ring of 256 owned by its P (only the
 *    owner puts; anyone may steal with a CAS on runqhead). The global queue,
 *    the idle P and M lists and the G free list are under sched.lock.
 *  - An M spins (looks for work without a P's work) only while counted in
 *    sched.nmspinning; wakep starts a spinner only if none spins.
 *
 * Where Go code runs "on the system stack", this port runs on the M's g0
 * stack: schedule() and everything it calls run only on g0.
 */
#ifndef GOSHIM_RUNTIME_H
#define GOSHIM_RUNTIME_H

#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "runtime/arch.h"

#define HIDDEN __attribute__((visibility("hidden")))
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/* ---- lock_futex.c: Go's runtime/lock_futex.go ------------------------- */

typedef struct { _Atomic uint32_t key; } mutex_t;   /* Go's runtime.mutex */
typedef struct { _Atomic uint32_t key; } note_t;    /* Go's runtime.note */

/* Go's procyield: n rounds of the CPU's spin-wait hint. */
static inline void procyield(int n)
{
	while (n-- > 0) {
#if defined(__x86_64__)
		__asm__ volatile("pause" ::: "memory");
#else
		__asm__ volatile("yield" ::: "memory");
#endif
	}
}

void lock(mutex_t *l);
/* A lock whose holder is not in this fork child: free again. */
static inline void lock_reinit_afterfork(mutex_t *l) { atomic_store(&l->key, 0); }
void unlock(mutex_t *l);
void noteclear(note_t *n);
void notewakeup(note_t *n);
void notesleep(note_t *n);
void notesleep_spin(note_t *n, int64_t spin_ns);
bool notetsleep(note_t *n, int64_t ns); /* false on timeout */
int futexsleep(_Atomic uint32_t *addr, uint32_t val, int64_t ns);
void futexwakeup(_Atomic uint32_t *addr, int cnt);

/* ---- status machines (runtime2.go) ----------------------------------- */

enum gstatus {
	_Gidle = 0,     /* just allocated, not initialised */
	_Grunnable = 1, /* on a run queue, not running */
	_Grunning = 2,  /* running; has an M and a P */
	_Gsyscall = 3,  /* in a syscall (or foreign code after retake); has an M */
	_Gwaiting = 4,  /* parked (gopark); on some wait queue */
	_Gdead = 6,     /* unused: exited, or on a free list */
};

enum pstatus {
	_Pidle = 0,
	_Prunning = 1,
	_Psyscall = 2, /* M in a syscall or in foreign code: retake may steal it */
	_Pgcstop = 3,  /* stopped by procresize (stopTheWorld) */
	_Pdead = 4,    /* beyond GOMAXPROCS */
};

enum waitreason {
	waitReasonZero = 0,
	waitReasonChanReceive,
	waitReasonChanSend,
	waitReasonSelect,
	waitReasonSelectNoCases,
	waitReasonSleep,
	waitReasonSemacquire,
	waitReasonSyncMutexLock,
	waitReasonSyncCondWait,
	waitReasonIOWait,
	waitReasonCoroutine,
	waitReasonChanReceiveNilChan,
	waitReasonChanSendNilChan,
	waitReasonSyncWaitGroupWait,
	waitReasonForever, /* tests: parks with nobody to wake it */
	waitReasonLockedThread,
	waitReasonThreadJoin,
	waitReasonSyncRWMutexLock,
	waitReasonCount
};
extern const char *const waitReasonStrings[waitReasonCount];

/* ---- stacks (stack.c) ------------------------------------------------- */

struct g;
struct m;
struct p;

struct stack {
	uintptr_t lo;   /* lowest usable address (just above the guard) */
	uintptr_t hi;   /* one past the highest address */
	uintptr_t base; /* the reservation: guard page(s) at base */
	size_t size;    /* of the reservation, guard included */
	uintptr_t touched_lo; /* deepest address handed out dirty, for reuse */
};

#define STACK_GUARD 4096u

bool stackalloc(struct stack *s, size_t size);
void stackfree(struct stack *s);
void stackcache_flush(struct p *pp);
bool stack_guard_hit(uintptr_t addr, int64_t *goid);
void stack_init(void);
size_t stack_default_size(void);

/* ---- G, M, P ---------------------------------------------------------- */

struct g;
struct m;
struct p;
struct hchan;
struct timer;
struct coro;

/* runtime2.go: sudog, a goroutine on a wait list (channel queue, select,
 * semaphore treap). One G may be on many lists (select), hence a separate
 * object; they come from per-P caches. */
struct sudog {
	struct g *g;
	struct sudog *next, *prev;
	void *elem;              /* data element (may point to a stack) */
	int64_t acquiretime;
	uint32_t ticket;         /* sema: treap priority; handoff flag */
	bool isSelect;           /* g is in a select: g.selectDone must be CAS'd to win */
	bool success;            /* woken by a value (true) or by close (false) */
	int16_t casi;            /* select: index of the case this sudog is for */
	struct sudog *parent;    /* semaRoot binary tree */
	struct sudog *waitlink;  /* g.waiting list or semaRoot */
	struct sudog *waittail;  /* semaRoot */
	struct hchan *c;         /* channel */
	struct parkq *parkq;     /* the park queue it is on (parkq.c) */
};

struct g {
	struct gobuf sched;      /* saved context while not running */
	struct stack stack;
	_Atomic uint32_t atomicstatus;
	int64_t goid;
	struct m *m;             /* current M; NULL when not running */
	struct m *lockedm;       /* lockOSThread */
	struct g *schedlink;     /* run queue / free list link */
	struct g *alllink;       /* allgs */
	void (*startfn)(void *);
	void *startarg;
	uint8_t waitreason;
	bool system;             /* runtime-internal: not in go_count */
	bool adopted;            /* runs on a foreign thread's own stack (needm) */
	bool exiting;            /* in goexit: its last switch frees sanitizer state */
	int64_t waitsince;       /* when it parked (nanotime) */
	int64_t parentgoid;
	uintptr_t gopc;          /* where it was created */
	void *param;             /* passed by whoever readies it */
	uint32_t lockedExt, lockedInt;
	struct sudog *waiting;   /* sudogs this g waits on (valid while parked) */
	_Atomic uint32_t selectDone; /* are we participating in a select and did someone win the race? */
	struct timer *timer;     /* go_sleep's timer, made on first use */
	int64_t sleepwhen;       /* when the sleep ends (resetForSleep) */
	struct coro *coroarg;    /* argument during coroutine transfers */
	bool coroexit;           /* exit after coroutine transfer */
	struct coro *corog;      /* the coro this goroutine runs (corostart) */
	volatile bool inruntime; /* between runtime_enter and runtime_leave: a signal
	                          * handler's interposed call must not re-enter */
	volatile bool insyscall_foreign; /* in a system call for the program
	                          * (entersyscall_foreign): nothing of the
	                          * runtime's is held, so a cancellation may
	                          * unwind out of it (syscall_unwound) */
	volatile uintptr_t handler_sp; /* the router's frame while a program's handler
	                          * runs here (stale, and above the stack pointer,
	                          * once the handler longjmp'd out) */
	_Atomic uint32_t parkstate; /* parkq.c: PARK_* */
	int64_t parkdeadline;    /* parkq.c: nanotime deadline, 0 for none */
	_Atomic bool parkcommitted; /* parkq.c: parked for good (a canceller may ready it) */
	struct timer *parktimer; /* parkq.c: the deadline's timer, made on first use */
	struct gthread *thread;  /* thread.c: the pthread this goroutine is, if any */
	int user_errno;          /* interpose/: the caller's errno, kept across the runtime */
	uint64_t sigmask;        /* its signal mask (kernel sigset), applied to its M
	                          * while it runs (sigmask_apply); inherited by the
	                          * goroutines it creates */
	_Atomic uint64_t sigpending; /* pthread_kill'ed signals not yet raised on its M */
	_Atomic uint64_t siginflight; /* sent marked to its M, not yet landed there
	                          * (proc.c: tgkill_goroutine) */
	_Atomic uint64_t callopen;   /* blocked signals its system call takes (sigwait's set) */
	_Atomic bool cancelsig;      /* an asynchronous cancel sent it SIGCANCEL (tls.c) */
	bool forking;            /* interpose/io.c: between its fork's atfork handlers */
	bool forkgone;           /* a fork child's copy of another thread's goroutine:
	                          * it never runs, and wakers skip it (afterforkinchild) */
	/* sanitizer fiber state */
	void *asan_fake_stack;
	void *tsan_fiber;
};

struct m {
	struct g *g0;            /* scheduling stack */
	struct gobuf g0buf;      /* g0's stack top and TLS base, for mcall */
	struct g *curg;          /* the goroutine running on this M */
	struct p *p;             /* attached P; NULL when none */
	struct p *nextp;
	struct p *oldp;          /* P before entering a syscall */
	uint32_t oldp_tick;      /* its syscalltick then: changed once it is not ours */
	_Atomic(struct p *) reclaiming; /* exitsyscall_oldp: taking this P back */
	int64_t id;
	bool spinning;
	bool blocked;            /* sleeping on park */
	bool incgo;              /* an adopted foreign thread (needm) */
	note_t park;
	struct m *schedlink;
	struct m *alllink;
	struct g *lockedg;
	uint32_t lockedExt, lockedInt;
	uint64_t fastrand;
	uintptr_t tls;           /* the TLS base of its g0 (its own identity) */
	pid_t procid;
	void (*mstartfn)(void);
	int locks;               /* > 0: holds runtime locks, no preemption */
	int64_t syscallwhen;
	/* work handed from g0 to the goroutine side of mcall */
	bool (*waitunlockf)(struct g *, void *);
	void *waitlock;
	bool ownthread;          /* a thread newm created: mexit may end it */
	void *tsan_thread_fiber; /* the thread's own TSan fiber, never destroyed */
	uint64_t sigmask;        /* the thread's signal mask, as last set by the runtime */
	_Atomic uint32_t mask_epoch; /* proc.c: sigmask_used's epoch it has seen */
	struct g *lastg;         /* the goroutine it ran last (sigmask_switch) */
	bool exited;             /* mexit: the thread is gone (the struct stays in allm) */
};

#define RUNQ_SIZE 256

struct p {
	int32_t id;
	_Atomic uint32_t status;
	struct p *link;
	_Atomic uint32_t schedtick;   /* incremented on every scheduler call */
	_Atomic uint32_t syscalltick; /* incremented on every re-entry from foreign code */
	struct { uint32_t schedtick; int64_t schedwhen; uint32_t syscalltick; int64_t syscallwhen; } sysmontick;
	struct m *m;                  /* back-link to the M (NULL if idle) */
	_Atomic uint32_t runqhead;
	_Atomic uint32_t runqtail;
	_Atomic(struct g *) runq[RUNQ_SIZE];
	_Atomic(struct g *) runnext;
	struct g *gFree;              /* dead Gs with stacks */
	int32_t gFreeN;
	struct stack stackcache[32];
	int32_t nstackcache;
	_Atomic uint64_t nrun;        /* goroutines this P has run (tests, schedtrace) */
	_Atomic uint32_t retaken;     /* times sysmon took this P from its M */
	_Atomic uint32_t preempted;   /* times its goroutine yielded at sysmon's request */
	_Atomic bool inforeign;       /* _Psyscall means foreign code, not a syscall */
	_Atomic(struct m *) syscallm; /* the M that put it in _Psyscall */
	_Atomic uint32_t thief;       /* p_take_syscall is deciding (one at a time) */
	_Atomic bool preempt;         /* sysmon: the time slice is over (Go's preemptone) */
	struct sudog *sudogcache[128];
	int32_t nsudogcache;
	/* sudogs acquired minus released on this P (sudogs_in_use sums them;
	 * one may go negative, as a goroutine may release on another P).
	 * Written only by the P's owner: no atomic update on the hot path. */
	_Atomic int64_t nsudog;
	struct timers *timers;        /* time.c: this P's timer heap */
	/* proc.go: goidcache — goroutine ids are taken from sched.goidgen in
	 * batches so that spawning does not bounce one cache line. */
	uint64_t goidcache, goidcacheend;
	/* Goroutines started minus goroutines ended on this P; written only
	 * by the P's owner, summed by go_count (Go counts allgs instead). */
	_Atomic int64_t ngdelta;
};

/* A queue of Gs linked through schedlink. n is atomic because Go reads
 * the global queue's size without the lock ("racy read") to skip it. */
struct gqueue { struct g *head, *tail; _Atomic int32_t n; };

struct schedt {
	_Atomic uint64_t goidgen;
	_Atomic int64_t lastpoll;

	mutex_t lock;
	struct m *midle;              /* idle Ms waiting for work */
	int32_t nmidle;
	int32_t nmidlelocked;         /* locked Ms waiting for their G */
	int64_t mnext;                /* Ms created so far; next M id */
	int32_t maxmcount;
	int32_t nmsys;                /* system Ms (sysmon) not counted for deadlock */
	int64_t nmfreed;

	struct p *pidle;
	_Atomic int32_t npidle;
	_Atomic int32_t nmspinning;

	struct gqueue runq;           /* global run queue */

	_Alignas(64) mutex_t gFreeLock; /* own cache line: Ps move Gs through it */
	struct g *gFree;
	_Atomic int32_t gFreeN;        /* read without the lock to skip it */

	_Alignas(64) _Atomic uint32_t gcwaiting; /* procresize is stopping the world */
	int32_t stopwait;
	note_t stopnote;
	_Atomic uint32_t sysmonwait;
	note_t sysmonnote;

	_Atomic int32_t ngoroutines;  /* user goroutines (go_count): adopted ones, and
	                                 the ngdelta of Ps that were destroyed */
	int32_t procresizetime;
	mutex_t sudoglock;            /* central sudog cache */
	struct sudog *sudogcache;
	_Atomic int64_t pollUntil;    /* time the blocked netpoll wakes; 0 if none */
	bool deadlock_checks;         /* false once a foreign thread could wake someone */
	int64_t starttime;
};

extern struct schedt sched;
extern struct p **allp;
extern _Atomic int32_t gomaxprocs;
extern int32_t nallp;
extern mutex_t allglock;
extern struct g *allgs;
extern mutex_t allmlock;
extern struct m *allm;
extern bool runtime_inited;

/* The goroutine running on this thread (Go's getg()). Each OS thread's TLS
 * holds it; it is read with a fresh thread-pointer access each time, never
 * from an address cached across a switch. */
extern __thread struct g *goshim_g __attribute__((tls_model("initial-exec")));
#ifdef GOSHIM_TSAN
/* Out of line and not instrumented (proc.c): each thread's slot is only
 * ever touched by code running on that thread, but ThreadSanitizer charges
 * the accesses to the goroutine fibers, which move between threads and are
 * destroyed and re-created with each goroutine life; it then reports a
 * fiber that has finished against the slot's next writer. */
struct g *getg(void);
void setg(struct g *gp);
#elif defined(__aarch64__)
/* The compiler may compute &goshim_g (mrs tpidr_el0 + offset) once per
 * function and reuse it after a call during which the goroutine moved to
 * another thread: read the thread pointer afresh each time. The offset
 * from the thread pointer is the same on every thread (initial-exec). */
static inline __attribute__((always_inline)) struct g **goshim_g_slot(void)
{
	uintptr_t tp, off;
	__asm__ volatile("mrs %0, tpidr_el0\n\t"
	                 "adrp %1, :gottprel:goshim_g\n\t"
	                 "ldr %1, [%1, #:gottprel_lo12:goshim_g]"
	                 : "=r"(tp), "=r"(off) :: "memory");
	return (struct g **)(tp + off);
}
static inline __attribute__((always_inline)) struct g *getg(void)
{
	return *(struct g *volatile *)goshim_g_slot();
}
static inline __attribute__((always_inline)) void setg(struct g *gp)
{
	*(struct g *volatile *)goshim_g_slot() = gp;
}
#else
static inline __attribute__((always_inline)) struct g *getg(void)
{
	struct g *gp;
	__asm__ volatile("" ::: "memory");
	gp = *(struct g *volatile *)&goshim_g;
	return gp;
}
static inline void setg(struct g *gp) { *(struct g *volatile *)&goshim_g = gp; }
#endif

/* ---- proc.c ----------------------------------------------------------- */

typedef bool (*unlockf_t)(struct g *gp, void *lock);

void schedinit(void);
struct g *newproc(void (*fn)(void *), void *arg, uintptr_t callerpc, int *err);
__attribute__((noreturn)) void goexit1(void);
void gopark(unlockf_t unlockf, void *lock, enum waitreason reason);
void goready(struct g *gp);
void gosched(void);
void casgstatus(struct g *gp, uint32_t oldval, uint32_t newval);
uint32_t readgstatus(struct g *gp);
void runqput(struct p *pp, struct g *gp, bool next);
bool runqempty(struct p *pp);
void globrunqput(struct g *gp);
void wakep(void);
void handoffp(struct p *pp);
struct p *releasep(void);
void acquirep(struct p *pp);
void startm(struct p *pp, bool spinning);
void entersyscall(void);
void exitsyscall(void);
bool p_take_syscall(struct p *pp, uint32_t to);
bool fence_heavy(void);
void entersyscall_foreign(void);
void exitsyscall_foreign(void);
void runtime_enter(void);   /* foreign code -> runtime: exitsyscall for user code */
void runtime_leave(void);   /* runtime -> foreign code: entersyscall for user code */
int procresize_set(int32_t n);
/* Signal masks (proc.c): each goroutine has its own, which its M takes
 * while it runs. sigmask_fix drops what the kernel or glibc never lets a
 * thread block (SIGKILL, SIGSTOP, glibc's SIGCANCEL and SIGSETXID). */
#define SIGBIT(s) (UINT64_C(1) << ((s) - 1)) /* sig in a kernel sigset */
#define SIGCANCEL_NO 32                       /* glibc's SIGCANCEL (__SIGRTMIN) */
uint64_t sigmask_fix(uint64_t mask);
void sigmask_apply(struct m *mp, uint64_t mask);
void sigmask_resync(void);
void goroutine_setmask(struct g *gp, uint64_t mask);
/* The calling thread's mask by system call (the kernel's 64 signals): the
 * runtime never calls the interposed pthread_sigmask, a goroutine's view. */
void sigprocmask_raw(int how, const sigset_t *set, sigset_t *old);
/* pthread_kill of another goroutine (the caller holds a P), and the
 * delivery of what is pending for the calling one (in foreign code). */
bool goroutine_kill(struct g *gp, int sig);
uint64_t park_sigs(struct g *gp);
void sigpending_deliver(uint64_t also);
/* The signals no thread blocks, and those the kernel sends to the thread
 * that faulted: never routed, never blocked by an M. */
#define SIG_NEVER_BLOCKED (SIGBIT(SIGKILL) | SIGBIT(SIGSTOP) | SIGBIT(SIGCANCEL_NO) | SIGBIT(33))
#define SIG_SYNCHRONOUS                                                                    \
	(SIGBIT(SIGSEGV) | SIGBIT(SIGBUS) | SIGBIT(SIGFPE) | SIGBIT(SIGILL) | SIGBIT(SIGTRAP) | \
	 SIGBIT(SIGSYS))
/* main as a migratable goroutine, and the router of process-directed
 * signals to it (proc.c; the handlers' side is interpose/signal.c). */
extern _Atomic(struct g *) main_g;
extern _Atomic bool main_ended; /* thread_main_exit: sysmon stands in for the threads left */
extern pthread_t main_pthread;
void main_unlock(void);
enum { SIG_ROUTE_HERE, SIG_ROUTE_SENT };
int sig_route(int sig, siginfo_t *si);
void proc_pending_claim(struct g *gp, uint64_t open);
uint64_t proc_pending_sigs(void);
void siginfo_self(siginfo_t *si, int sig, int code);
void sig_unroute_begin(int sig, bool wait);
void sig_unroute_end(int sig);
bool main_info_take(int sig, siginfo_t *si);
void main_info_put(int sig, const siginfo_t *si);
void sig_catch_changed(void);
void sysmon_sigmask(uint32_t *seen, uint64_t *applied);
void sysmon_sleep(int64_t usec, uint32_t seen);
bool sig_catch_stale(uint32_t seen);
extern void *sig_router_fn;
bool sig_handlers_installed(void);
bool sig_handler_is_runtime(void *h);
extern __thread bool on_sysmon __attribute__((tls_model("initial-exec")));

/* fork (proc.c): around glibc's fork, from its pthread_atfork handlers. */
void beforefork(void);
void afterfork(void);
void afterforkinchild(void);
void netpoll_afterforkinchild(void);
void stack_afterforkinchild(void);
void thread_afterforkinchild(struct g *me);
void tls_afterforkinchild(struct m *mp);
void lockOSThread(void);
void unlockOSThread(void);
struct g *needm(void);      /* adopts the calling foreign thread */
uint32_t cheaprand(void);
int64_t nanotime(void);
int64_t nanotime_coarse(void);
void usleep_raw(int64_t usec);
void newm_sysmon(void);
bool threads_all_runtime(void);
void syscall_unwound(void);
void *sysmon_thread(void *arg);
void minit_signalstack(void);
void unminit_signalstack(void);
void checkdead(void);       /* called with sched.lock held */
void incidlelocked(int32_t v);
int32_t mcount(void);
int32_t gcount(void);       /* go_count */
void injectglist(struct gqueue *q);
void sysmon_wake(void);
void gq_push(struct gqueue *q, struct g *gp);
struct g *gq_pop(struct gqueue *q);

void goyield(void);          /* gosched to the local run queue (sema handoff) */

/* chan.c (chan.go) */
struct waitq { struct sudog *first, *last; };
struct hchan {
	size_t qcount;           /* total data in the queue */
	size_t dataqsiz;         /* size of the circular queue */
	char *buf;               /* dataqsiz elements */
	uint32_t elemsize;
	_Atomic uint32_t closed;
	size_t sendx, recvx;
	struct waitq recvq, sendq;
	struct timer *timer;     /* go_after/ticker: the timer feeding this channel */
	/* Not in Go (its GC keeps a channel alive): sudogs that point at this
	 * channel, queued or woken and not yet off it. freechan waits for the
	 * woken ones and refuses queued ones. */
	_Atomic int32_t nref;
	mutex_t lock;
};
struct sudog *acquireSudog(void);
void releaseSudog(struct sudog *s);
void sudogcache_flush(struct p *pp);
int64_t sudogs_in_use(void); /* tests: leak checks, when all is quiet */
struct hchan *makechan(size_t elemsize, size_t cap, int *err);
void freechan(struct hchan *c);
bool chansend(struct hchan *c, const void *ep, bool block);
bool chansend_buffered(struct hchan *c, const void *ep); /* no P needed */
bool chanrecv_buffered(struct hchan *c, void *ep);       /* no P needed */
void chanrecv(struct hchan *c, void *ep, bool block, bool *selected, bool *received);
void closechan(struct hchan *c);
void waitq_enqueue(struct waitq *q, struct sudog *s);
struct sudog *waitq_dequeue(struct waitq *q);
void waitq_dequeueSudoG(struct waitq *q, struct sudog *s);
bool chanparkcommit(struct g *gp, void *chanlock);
void chan_send_locked(struct hchan *c, struct sudog *sg, const void *ep,
                      void (*unlockf)(void *), void *ul);
void chan_recv_locked(struct hchan *c, struct sudog *sg, void *ep,
                      void (*unlockf)(void *), void *ul);
static inline char *chanbuf(struct hchan *c, size_t i) { return c->buf + i * c->elemsize; }

/* select.c (select.go): cases in the API's order; op 1 send, 2 recv */
struct scase { struct hchan *c; void *elem; int op; bool *recvOK; };
int selectgo(struct scase *cases, int ncases, bool block);

/* sema.c (sema.go) */
void semacquire1(_Atomic uint32_t *addr, bool lifo, enum waitreason reason);
void semrelease1(_Atomic uint32_t *addr, bool handoff);

/* time.c (time.go) */
struct timers;
struct timer {
	mutex_t mu;
	_Atomic uint8_t astate;  /* mirror of state, read without mu */
	uint8_t state;           /* timerHeaped | timerModified | timerZombie */
	int32_t heapidx;         /* index in ts->heap while heaped */
	int64_t when;            /* 0: not set */
	int64_t period;          /* > 0: repeats every period ns */
	void (*f)(void *arg, uintptr_t seq, int64_t delay); /* runs on g0 with a P: must not block */
	void *arg;
	uintptr_t seq;
	struct timers *ts;       /* heap this timer is in, NULL if none */
	_Atomic int32_t running; /* f is being called */
	bool isChan;             /* f sends on a channel: no send after stop/modify */
	mutex_t sendLock;        /* isChan: held across f, and by stop/modify */
};
void timer_init(struct timer *t, void (*f)(void *, uintptr_t, int64_t), void *arg);
void timer_init_chan(struct timer *t, void (*f)(void *, uintptr_t, int64_t), void *arg);
bool timer_modify(struct timer *t, int64_t when, int64_t period);
bool timer_reset(struct timer *t, int64_t when);
bool timer_stop(struct timer *t);
void timer_destroy(struct timer *t); /* stops it, removes it, waits out a running f */
int64_t checkTimers(struct p *pp, int64_t now, int64_t *pollUntil, bool *ran);
int64_t timers_wakeTime(struct p *pp);
int64_t timeSleepUntil(void);
bool timers_any(void);
void timers_take(struct p *dst, struct p *src);
void timers_pinit(struct p *pp);
void timeSleep(int64_t ns);
int64_t ntimers_live(void);

/* netpoll.c (netpoll.go, netpoll_epoll.go) */
void netpollGenericInit(void);
bool netpollinited(void);
void netpoll(int64_t delay, struct gqueue *toRun);
void netpollBreak(void);
void wakeNetPoller(int64_t when);
extern _Atomic uint32_t netpollWaiters;

/* A descriptor the netpoller watches (netpoll.go's pollDesc). Go lets one
 * goroutine at a time wait per direction (its fdMutex serialises readers);
 * POSIX lets any number of threads block on one fd, so a pollDesc keeps a
 * list of waiters instead of rg/wg, and a count of readiness events per
 * direction: a waiter that saw no change in the count since before its
 * failed attempt may sleep, any other retries (no lost edge). pollDescs
 * are never freed, only reused (fdseq), so a stale pointer stays safe to
 * read; refs counts the fd table's reference and every I/O call in
 * flight, and the last one out returns it to the cache. */
enum { POLL_R = 1, POLL_W = 2 };
struct pollWaiter {
	struct pollWaiter *next, *prev;
	struct g *g;
	uint32_t mode;          /* POLL_R | POLL_W it waits for */
};
struct pollDesc {
	struct pollDesc *link;  /* in the cache */
	mutex_t lock;           /* guards closing and waiters */
	int fd;
	uint32_t fdseq;         /* bumped on reuse: stale epoll events are ignored */
	uint32_t epgen;         /* the netpollGen it was registered under */
	_Atomic uint32_t refs;
	_Atomic bool closing;   /* the fd is being closed: waiters get EBADF */
	_Atomic bool evicted;   /* out of the netpoller (closing, or blocking now) */
	_Atomic uint32_t rseq, wseq; /* readiness events seen, per direction */
	struct pollWaiter *waiters;
	/* The program's view of the fd (interpose/io.c), and the other fds of
	 * its open file description. */
	struct pollDesc *sibling_next, *sibling_prev;
	_Atomic uint32_t flags;
	_Atomic int64_t rcvtimeo, sndtimeo; /* ns; 0: none */
};
struct pollDesc *netpollopen(int fd, int *err);
void netpollevict(struct pollDesc *pd, bool closed);
bool pd_acquire(struct pollDesc *pd);
void pd_release(struct pollDesc *pd);
int netpollarm(struct pollDesc *pd, struct pollWaiter *w, uint32_t mode, const uint32_t *seen);
void netpolldisarm(struct pollDesc *pd, struct pollWaiter *w);
int netpollpark(void);
int netpollwait(struct pollDesc *pd, uint32_t mode, uint32_t seen, int64_t deadline,
                uint32_t flags);
static inline uint32_t pd_seq(struct pollDesc *pd, uint32_t mode)
{
	return atomic_load(mode == POLL_R ? &pd->rseq : &pd->wseq);
}

/* coro.c (coro.go) */
struct coro {
	_Atomic(struct g *) gp;  /* the goroutine blocked on the coro; NULL once exited */
	void (*f)(struct coro *, void *);
	void *arg;
	struct m *mp;            /* the M the creator was locked to, if any */
	uint32_t lockedExt, lockedInt;
	bool goexited;           /* f ended by go_exit, not by returning */
};
void coroexit_goexit(void);  /* goexit1: a coroutine's goroutine exits */
struct coro *newcoro(void (*fn)(struct coro *, void *), void *arg, uintptr_t pc, int *err);
void coroswitch(struct coro *c);
struct g *newproc_parked(void (*fn)(void *), void *arg, uintptr_t callerpc, int *err);
void coroswitch_mcall(struct coro *c, bool exit);

/* malloc.c (malloc.go): never freed, never from glibc's malloc. */
/* A cache line: structs written by different threads start on their own. */
#define CACHE_LINE 64
void *persistentalloc(size_t size, size_t align);

/* sysmon.c */
void sysmon(void);
void schedtrace(bool detailed);
extern int64_t debug_schedtrace_ms;
extern bool debug_scheddetail;

/* traceback.c */
__attribute__((noreturn)) void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
__attribute__((noreturn)) void fatal_nodump(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
__attribute__((noreturn)) void throw(const char *msg);
__attribute__((noreturn)) void gopanic(const char *msg);
void dumpgoroutines(int fd);
void install_fatal_signals(void);
void printerr(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
extern void (*fatal_handler)(const char *msg);

/* env.c */
void parse_env(void);
extern int32_t env_gomaxprocs;
extern size_t env_stacksize;
extern bool debug_asyncpreempt;
extern bool debug_interpose;
extern bool debug_membarrier;
extern bool debug_exitstats;

/* parkq.c: FIFO queues of parked goroutines with deadlines, guarded by a
 * mutex_t the caller holds. */
struct parkq { struct sudog *head, *tail; };
/* g.parkstate: a state, and flags saying what else may end the wait. */
enum { PARK_IDLE, PARK_WAITING, PARK_WOKEN, PARK_TIMEDOUT, PARK_CANCELED, PARK_INTERRUPTED,
       PARK_PREPARING,
       PARK_GONE /* forkgone: no claim succeeds */ };
#define PARK_STATE 0xfu
#define PARK_CANCEL 0x10u /* pthread_cancel ends it (ECANCELED) */
#define PARK_INTR 0x20u   /* a signal for the goroutine ends it (EINTR) */
bool parkq_wait(struct parkq *q, mutex_t *l, int64_t deadline, bool lifo,
                enum waitreason reason, uintptr_t *val);
int parkq_wait_then(struct parkq *q, mutex_t *l, int64_t deadline, bool lifo, uint32_t flags,
                    enum waitreason reason, uintptr_t *val, void (*enqueued)(void *), void *arg);
void parkq_cancel(struct g *gp);
bool park_interrupt(struct g *gp);
void park_interrupt_later(struct g *gp);
void park_interrupts_take(struct gqueue *q);
struct g *parkq_wake(struct parkq *q, uintptr_t val);
bool parkq_blocked(struct parkq *q, bool *leaving);
void parkq_wake_all(struct parkq *q, mutex_t *l);
struct g *parkq_wake_all_locked(struct parkq *q);
void goready_list(struct g *first);
void park_prepare(int64_t deadline, uint32_t flags);
bool park_wake(struct g *gp);
int park_wait(enum waitreason reason);
void park_abort(void);

/* tls.c: a glibc thread identity (static TLS + struct pthread) per
 * pthread-goroutine. */
struct tls_stackinfo {
	uintptr_t stackblock;
	size_t stackblock_size;
	size_t guardsize;
	bool user_stack;
};
extern bool tls_enabled;
bool tls_init(void);
size_t tls_reserve(void);
uintptr_t tls_build(uintptr_t hi, uintptr_t *lo, struct g *gp, const struct tls_stackinfo *si);
bool tls_recycle(uintptr_t hi, uintptr_t tp, struct g *gp, const struct tls_stackinfo *si);
void tls_free(uintptr_t tp);
uintptr_t tls_pthread_of(uintptr_t tp);
uintptr_t tls_tp_of(uintptr_t pthread);
int tls_self_tid(void);
void *tls_thread_record(uintptr_t tp, void *marker);
void tls_set_record(uintptr_t tp, void *marker, void *rec);
void tls_start(void);
void tls_start_on(uintptr_t tp);
void tls_take_main_place(uintptr_t tp);
void tls_exit(void);
void tls_exit_keys(void);
void *tls_cleanup_jmp_buf_slot(void);
bool tls_canceled(uintptr_t tp);
bool tls_cancel_enabled(uintptr_t tp);
void tls_wrap_setxid(void);
void tls_wrap_sigcancel(void);
void tls_mark_exiting(uintptr_t tp);
bool tls_async_cancel_pending(uintptr_t tp);
void goroutine_cancel_async(struct g *gp);

/* proc.c: starts gp (new or dead) as a pthread-goroutine, with the
 * creator's signal mask or sigmask. */
void newproc_thread(struct g *gp, void (*fn)(void *), void *arg, uintptr_t stack_top,
                    uintptr_t tls, uintptr_t callerpc, const uint64_t *sigmask);
/* thread.c: on g0, after gp (a pthread-goroutine) exited. */
void thread_gone(struct g *gp);

/* real.c: libc functions the runtime may call, resolved past any
 * interposition. */
int real_pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg);
ssize_t raw_write(int fd, const void *buf, size_t n);
bool real_thread_stack(uintptr_t *lo, uintptr_t *hi);
void raw_write_all(int fd, const char *s);

#endif
