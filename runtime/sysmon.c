/*
 * sysmon: the system monitor, ported from Go's runtime/proc.go (sysmon,
 * retake, schedtrace). It runs on its own thread without a P, so it keeps
 * working when every P is busy or blocked.
 *
 * Its loop sleeps 20 µs, doubling after 1 ms without retaking anything, up
 * to 10 ms; when every P is idle it parks on sched.sysmonnote until a P
 * wakes (exitsyscallfast), as Go does.
 *
 * retake takes a P away from an M that cannot use it:
 *  - in a syscall (entersyscall): as soon as work waits, or after 10 ms;
 *  - in foreign code (between runtime calls): after 10 ms without
 *    returning to the runtime (Go's forcePreemptNS), when work waits on
 *    its run queue or the global one. Go would preempt the goroutine; C
 *    code cannot be preempted safely, so the P moves to another M and the
 *    goroutine keeps its thread (design principle 3). It gets a P back at
 *    its next runtime call (runtime_enter -> exitsyscall slow path).
 */
#include <stdio.h>
#include <string.h>

#include "runtime/runtime.h"

#define forcePreemptNS (10 * 1000 * 1000)


static uint32_t retake(int64_t now)
{
	uint32_t n = 0;
	int32_t procs = atomic_load(&gomaxprocs);
	for (int32_t i = 0; i < procs; i++) {
		struct p *pp = __atomic_load_n(&allp[i], __ATOMIC_ACQUIRE);
		if (!pp)
			continue;
		uint32_t s = atomic_load(&pp->status);
		bool sysretake = false;
		if (s == _Prunning || s == _Psyscall) {
			/* A goroutine that has not been through the scheduler for
			 * forcePreemptNS: Go preempts it. One that keeps calling
			 * the runtime without blocking (a polling loop) changes
			 * syscalltick on every call, so this check, not the
			 * syscalltick one, is what catches it. */
			uint32_t st = atomic_load_explicit(&pp->schedtick, memory_order_relaxed);
			if (pp->sysmontick.schedtick != st) {
				pp->sysmontick.schedtick = st;
				pp->sysmontick.schedwhen = now;
			} else if (pp->sysmontick.schedwhen + forcePreemptNS <= now) {
				/* preemptone: the next scheduling point on pp
				 * ends the slice (schedule). In case of syscall,
				 * that doesn't work, because there is no M wired
				 * to P. */
				atomic_store_explicit(&pp->preempt, true, memory_order_relaxed);
				sysretake = true;
			}
		}
		if (s != _Psyscall) {
			pp->sysmontick.syscalltick = UINT32_MAX;
			continue;
		}
		/* Retake P from syscall if it's there for more than 1 sysmon
		 * tick (at least 20us). */
		uint32_t t = atomic_load_explicit(&pp->syscalltick, memory_order_relaxed);
		if (!sysretake && pp->sysmontick.syscalltick != t) {
			pp->sysmontick.syscalltick = t;
			pp->sysmontick.syscallwhen = now;
			continue;
		}
		/* Timers due on pp are work too: only its holder runs them
		 * (or a spinning M stealing them), and Go would preempt. */
		int64_t tw = timers_wakeTime(pp);
		bool work = !runqempty(pp) || sched.runq.n > 0 || (tw != 0 && tw <= now);
		bool foreign = atomic_load_explicit(&pp->inforeign, memory_order_relaxed);
		if (foreign) {
			/* Running foreign code: only a long run that holds up work
			 * costs the P. */
			if (!work || (!sysretake && now - pp->sysmontick.syscallwhen < forcePreemptNS))
				continue;
		} else {
			/* On the one hand we don't want to retake Ps if there is no
			 * other work to do, but on the other hand we want to retake
			 * them eventually because they can prevent the sysmon thread
			 * from deep sleep. */
			if (!work && atomic_load(&sched.nmspinning) + atomic_load(&sched.npidle) > 0 &&
			    pp->sysmontick.syscallwhen + forcePreemptNS > now)
				continue;
		}
		/* Need to decrement number of idle locked M's (pretending
		 * that one more is running) before the CAS. Otherwise the M
		 * from which we retake can exit the syscall, increment nmidle
		 * and report deadlock. */
		incidlelocked(-1);
		if (p_take_syscall(pp, _Pidle)) {
			n++;
			atomic_fetch_add(&pp->retaken, 1);
			atomic_fetch_add_explicit(&pp->syscalltick, 1, memory_order_relaxed);
			handoffp(pp);
		}
		incidlelocked(1);
	}
	return n;
}

void *sysmon_thread(void *arg)
{
	(void)arg;
	minit_signalstack();
	on_sysmon = true;
	uint32_t mask_seen = UINT32_MAX;       /* sysmon_sigmask's state */
	uint64_t mask_applied = ~UINT64_C(0); /* created with every signal blocked */
	int64_t lasttrace = 0;
	int idle = 0;   /* how many cycles in succession we had not retaken */
	int64_t delay = 0;
	for (;;) {
		if (idle == 0) /* start with 20us sleep... */
			delay = 20;
		else if (idle > 50) /* start doubling the sleep after 1ms... */
			delay *= 2;
		if (delay > 10 * 1000) /* up to 10ms */
			delay = 10 * 1000;
		sysmon_sleep(delay, mask_seen);
		sysmon_sigmask(&mask_seen, &mask_applied);
		int64_t now = nanotime();
		if (debug_schedtrace_ms <= 0 &&
		    (atomic_load(&sched.gcwaiting) ||
		     atomic_load(&sched.npidle) == atomic_load(&gomaxprocs))) {
			lock(&sched.lock);
			if (atomic_load(&sched.gcwaiting) ||
			    atomic_load(&sched.npidle) == atomic_load(&gomaxprocs)) {
				bool syscallWake = false;
				int64_t next = timeSleepUntil();
				if (next > now) {
					atomic_store(&sched.sysmonwait, 1);
					unlock(&sched.lock);
					/* Make wake-up period small enough for the
					 * sampling to be correct: Go's forcegcperiod/2
					 * is 60 s; nothing here needs a period. */
					int64_t sleep = 60LL * 1000 * 1000 * 1000;
					if (next - now < sleep)
						sleep = next - now;
					/* A mask change for main that sysmon_wake
					 * missed (it found sysmonwait 0) is taken
					 * first. */
					if (sig_catch_stale(mask_seen))
						sleep = 0;
					syscallWake = notetsleep(&sched.sysmonnote, sleep);
					lock(&sched.lock);
					atomic_store(&sched.sysmonwait, 0);
					noteclear(&sched.sysmonnote);
				}
				if (syscallWake) {
					idle = 0;
					delay = 20;
				}
			}
			unlock(&sched.lock);
		}
		/* pthread_kill from signal handlers that could not ready
		 * their targets */
		struct gqueue interrupted = {0};
		park_interrupts_take(&interrupted);
		if (interrupted.n) {
			incidlelocked(-1);
			injectglist(&interrupted);
			incidlelocked(1);
		}
		/* poll network if not polled for more than 10ms */
		int64_t lastpoll = atomic_load(&sched.lastpoll);
		if (netpollinited() && lastpoll != 0 && lastpoll + 10 * 1000 * 1000 < now) {
			atomic_compare_exchange_strong(&sched.lastpoll, &lastpoll, now);
			struct gqueue list;
			netpoll(0, &list); /* non-blocking - returns list of goroutines */
			if (list.head) {
				/* Need to decrement number of idle locked M's
				 * (pretending that one more is running) before
				 * injectglist. Otherwise it can lead to the
				 * following situation: injectglist grabs all P's
				 * but before it starts M's to run the P's, another
				 * M returns from syscall, finishes running its G,
				 * observes that there is no work to do and no
				 * other running M's and reports deadlock. */
				incidlelocked(-1);
				injectglist(&list);
				incidlelocked(1);
			}
		}
		/* Timers overdue while every M sleeps (their P idle, nobody in
		 * netpoll): start an M to run them, as Go's sysmon does where
		 * the poller cannot be relied on. */
		{
			int64_t next = timeSleepUntil();
			if (next < now && atomic_load(&sched.npidle) > 0 &&
			    atomic_load(&sched.nmspinning) == 0)
				startm(NULL, false);
		}
		/* retake P's blocked in syscalls or stuck in foreign code */
		if (retake(now) != 0)
			idle = 0;
		else
			idle++;
		if (debug_schedtrace_ms > 0 && lasttrace + debug_schedtrace_ms * 1000000 <= now) {
			lasttrace = now;
			schedtrace(debug_scheddetail);
		}
	}
	return NULL;
}

/* proc.go: schedtrace. Like Go's, it prints a snapshot read without
 * stopping anyone: fields other threads are changing are read racily on
 * purpose, hence no ThreadSanitizer instrumentation here. */
__attribute__((no_sanitize("thread"))) void schedtrace(bool detailed)
{
	char buf[4096];
	size_t o = 0;
	int64_t now = nanotime();
	lock(&sched.lock);
	int32_t procs = atomic_load(&gomaxprocs);
	o += (size_t)snprintf(buf + o, sizeof buf - o,
	        "SCHED %lldms: gomaxprocs=%d idleprocs=%d threads=%d spinningthreads=%d "
	        "idlethreads=%d runqueue=%d",
	        (long long)((now - sched.starttime) / 1000000), procs, atomic_load(&sched.npidle),
	        mcount(), atomic_load(&sched.nmspinning), sched.nmidle, sched.runq.n);
	if (!detailed)
		o += (size_t)snprintf(buf + o, sizeof buf - o, " [");
	for (int32_t i = 0; i < procs && o < sizeof buf - 128; i++) {
		struct p *pp = allp[i];
		uint32_t h = atomic_load(&pp->runqhead), t = atomic_load(&pp->runqtail);
		if (detailed) {
			struct m *mp = pp->m;
			o += (size_t)snprintf(buf + o, sizeof buf - o,
			        "\n  P%d: status=%u schedtick=%u syscalltick=%u m=%lld runqsize=%u gfreecnt=%d "
			        "ran=%llu retaken=%u",
			        pp->id, atomic_load(&pp->status), atomic_load(&pp->schedtick),
			        atomic_load(&pp->syscalltick), mp ? (long long)mp->id : -1LL, t - h,
			        pp->gFreeN, (unsigned long long)atomic_load(&pp->nrun),
			        atomic_load(&pp->retaken));
		} else {
			o += (size_t)snprintf(buf + o, sizeof buf - o, "%s%u", i ? " " : "", t - h);
		}
	}
	if (!detailed)
		o += (size_t)snprintf(buf + o, sizeof buf - o, "]");
	unlock(&sched.lock);
	if (o < sizeof buf - 1)
		buf[o++] = '\n';
	buf[o < sizeof buf ? o : sizeof buf - 1] = 0;
	raw_write_all(2, buf);
	if (!detailed)
		return;
	for (struct m *mp = __atomic_load_n(&allm, __ATOMIC_ACQUIRE); mp; mp = mp->alllink) {
		struct p *pp = mp->p;
		struct g *curg = mp->curg;
		struct g *lockedg = mp->lockedg;
		printerr("  M%lld: p=%d curg=%lld spinning=%d blocked=%d lockedg=%lld%s\n",
		         (long long)mp->id, pp ? pp->id : -1, curg ? (long long)curg->goid : -1LL,
		         mp->spinning, mp->blocked, lockedg ? (long long)lockedg->goid : -1LL,
		         mp->incgo ? " adopted" : "");
	}
	for (struct g *gp = __atomic_load_n(&allgs, __ATOMIC_ACQUIRE); gp; gp = gp->alllink) {
		uint32_t st = readgstatus(gp);
		if (st == _Gdead || gp->system)
			continue;
		struct m *mp = gp->m;
		struct m *lm = gp->lockedm;
		printerr("  G%lld: status=%u(%s) m=%lld lockedm=%lld\n", (long long)gp->goid, st,
		         waitReasonStrings[gp->waitreason < waitReasonCount ? gp->waitreason : 0],
		         mp ? (long long)mp->id : -1LL, lm ? (long long)lm->id : -1LL);
	}
}
