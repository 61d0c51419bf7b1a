/* Coroutines (go_coro_*) and pull iterators (go_iter_*, Go's iter.Pull):
 * lazy start, lockstep switching, exit, the thread of a coroutine made on
 * a locked thread, stop semantics, misuse that Go makes fatal (in child
 * processes), no goroutine left behind. */
#include <stdatomic.h>
#include <stdint.h>
#include <setjmp.h>
#include <sys/syscall.h>
#include <time.h>

#include "goshim.h"
#include "runtime/runtime.h"
#include "testutil.h"

#define MS 1000000LL

/* TSan and qemu runs (TEST_SCALE=D) use the same tests at a smaller
 * scale, as check_sched.c does. */
static int scale(int n)
{
	const char *d = getenv("TEST_SCALE");
	if (d && atoi(d) > 1)
		n /= atoi(d);
#ifdef GOSHIM_TSAN
	if (n / 25 < 4000)
		n /= 25;
	else
		n = 4000;
#endif
	return n > 0 ? n : 1;
}
#define SCALE(n) scale(n)

static int64_t slack(int64_t ns)
{
	const char *d = getenv("TEST_SCALE");
	int64_t k = d && atoi(d) > 1 ? 5 : 1;
#if defined(GOSHIM_TSAN) || defined(GOSHIM_ASAN)
	k = 5;
#endif
	return ns * k;
}

static int settled_base(void)
{
	while (go_count() != 1)
		go_yield();
	return 1;
}

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static long gettid_(void)
{
	return (long)syscall(SYS_gettid);
}

/* main waits for a goroutine's flag without keeping its P; false after
 * timeout_ns. */
static bool wait_flag(_Atomic int *flag, int want, int64_t timeout_ns)
{
	int64_t end = mono_ns() + timeout_ns;
	while (atomic_load(flag) < want) {
		if (mono_ns() > end)
			return false;
		go_yield();
		usleep(100);
	}
	return true;
}

/* Runs fn(arg) in a goroutine and waits for it (bounded). */
struct in_g {
	void (*fn)(void *);
	void *arg;
	_Atomic int done;
};
static void in_g_tramp(void *arg)
{
	struct in_g *x = arg;
	x->fn(x->arg);
	atomic_store(&x->done, 1);
}
static bool run_in_goroutine(void (*fn)(void *), void *arg, int64_t timeout_ns)
{
	struct in_g *x = calloc(1, sizeof *x);
	x->fn = fn;
	x->arg = arg;
	if (go_spawn(in_g_tramp, x) != 0)
		return false;
	if (!wait_flag(&x->done, 1, timeout_ns))
		return false; /* x leaks: the goroutine may still use it */
	free(x);
	return true;
}

/* ---- coroutines ---------------------------------------------------------- */

static void nop_coro(go_coro *c, void *arg)
{
	(void)c;
	(void)arg;
}

START_TEST(coro_new_null_is_einval)
{
	errno = 0;
	ck_assert_ptr_null(go_coro_new(NULL, NULL));
	ck_assert_int_eq(errno, EINVAL);
	go_coro_free(NULL);
	/* a valid one, run to its end and freed */
	go_coro *c = go_coro_new(nop_coro, NULL);
	ck_assert_ptr_nonnull(c);
	go_coro_switch(c);
	go_coro_free(c);
}
END_TEST

/* fn runs only at the first switch; each switch hands over in lockstep;
 * when fn returns the switcher resumes. */
struct lazy {
	_Atomic int started, steps, returned;
	int64_t self;
};
static void lazy_fn(go_coro *c, void *arg)
{
	struct lazy *l = arg;
	atomic_store(&l->started, 1);
	l->self = go_self();
	atomic_store(&l->steps, 1);
	go_coro_switch(c);
	atomic_store(&l->steps, 2);
	go_coro_switch(c);
	atomic_store(&l->steps, 3);
	atomic_store(&l->returned, 1);
}

static void coro_lazy_body(void *arg)
{
	(void)arg;
	int base = go_count();
	struct lazy l = {0};
	go_coro *c = go_coro_new(lazy_fn, &l);
	ck_assert_ptr_nonnull(c);
	/* the coroutine's goroutine exists, blocked, not started */
	ck_assert_int_eq(go_count(), base + 1);
	for (int i = 0; i < 100; i++)
		go_yield();
	go_sleep(5 * MS);
	ck_assert_int_eq(atomic_load(&l.started), 0);
	go_coro_switch(c);
	ck_assert_int_eq(atomic_load(&l.started), 1);
	ck_assert_int_eq(atomic_load(&l.steps), 1);
	ck_assert_int_ne(l.self, go_self());
	/* it does not run on its own between switches */
	go_sleep(5 * MS);
	ck_assert_int_eq(atomic_load(&l.steps), 1);
	go_coro_switch(c);
	ck_assert_int_eq(atomic_load(&l.steps), 2);
	ck_assert_int_eq(atomic_load(&l.returned), 0);
	go_coro_switch(c); /* fn returns: we resume */
	ck_assert_int_eq(atomic_load(&l.steps), 3);
	ck_assert_int_eq(atomic_load(&l.returned), 1);
	go_coro_free(c);
	ck_assert_int_eq(go_count(), base);
}

START_TEST(coro_starts_at_first_switch_main) { coro_lazy_body(NULL); }
END_TEST

START_TEST(coro_starts_at_first_switch_goroutine)
{
	settled_base();
	ck_assert(run_in_goroutine(coro_lazy_body, NULL, slack(5000 * MS)));
	settled_base();
}
END_TEST

/* Ping-pong through shared memory: the switcher writes 2i, the coroutine
 * checks it and writes 2i+1; exactly one side runs at a time. */
struct pingpong {
	int64_t val;
	int n;
	_Atomic int active; /* sides running: always 1 */
	_Atomic int bad;
	long driver_tid;   /* the thread the driver switched from */
	_Atomic int tid_mismatch;
	bool check_tid;
};
static void pong(go_coro *c, void *arg)
{
	struct pingpong *p = arg;
	for (int i = 0; i < p->n; i++) {
		if (atomic_fetch_add(&p->active, 1) != 0)
			atomic_store(&p->bad, 1);
		if (p->check_tid && gettid_() != p->driver_tid)
			atomic_fetch_add(&p->tid_mismatch, 1);
		if (p->val != 2 * (int64_t)i)
			atomic_store(&p->bad, 2);
		p->val = 2 * (int64_t)i + 1;
		atomic_fetch_sub(&p->active, 1);
		go_coro_switch(c);
	}
}

static void pingpong_body(void *arg)
{
	struct pingpong *p = arg;
	go_coro *c = go_coro_new(pong, p);
	for (int i = 0; i < p->n; i++) {
		if (atomic_fetch_add(&p->active, 1) != 0)
			atomic_store(&p->bad, 3);
		p->val = 2 * (int64_t)i;
		p->driver_tid = gettid_();
		atomic_fetch_sub(&p->active, 1);
		go_coro_switch(c);
		if (p->val != 2 * (int64_t)i + 1)
			atomic_store(&p->bad, 4);
	}
	go_coro_switch(c); /* the loop ends, fn returns */
	go_coro_free(c);
}

/* Times sysmon took a P away from its goroutine (runtime/sysmon.c retake)
 * or had its goroutine yield it on leaving the runtime (runtime_leave).
 * A goroutine whose P was retaken gets a P back at its next runtime call,
 * and one that yielded runs again where a P picks it up, maybe on another
 * thread either way: go_coro_switch is such a call, so the thread a
 * goroutine records before switching is only certain to be the one the
 * switch runs on when neither happened in between. */
static uint64_t total_retaken(void)
{
	uint64_t n = 0;
	for (int i = 0; i < 1024 && __atomic_load_n(&allp[i], __ATOMIC_ACQUIRE); i++)
		n += atomic_load(&allp[i]->retaken) + atomic_load(&allp[i]->preempted);
	return n;
}

static void pingpong_check(bool from_main)
{
	int base = settled_base();
	struct pingpong p = { .n = SCALE(50000), .check_tid = true };
	uint64_t retaken0 = total_retaken();
	if (from_main)
		pingpong_body(&p);
	else
		ck_assert(run_in_goroutine(pingpong_body, &p, slack(20000 * MS)));
	uint64_t retakes = total_retaken() - retaken0;
	ck_assert_int_eq(atomic_load(&p.bad), 0);
	ck_assert_int_eq(p.val, 2 * (int64_t)(p.n - 1) + 1);
	/* the switch hands the thread over: the coroutine runs on the thread
	 * that switched to it. main is locked to its thread and never moves;
	 * a goroutine may move once per retake of its P (each retake can
	 * move the driver or the coroutine: at most two mismatches). */
	if (from_main)
		ck_assert_int_eq(atomic_load(&p.tid_mismatch), 0);
	else
		ck_assert_int_le(atomic_load(&p.tid_mismatch), 2 * (int64_t)retakes);
	settled_base();
	ck_assert_int_eq(go_count(), base);
}

/* 2 x 50,000 = 100,000 switches each */
START_TEST(coro_pingpong_from_main) { pingpong_check(true); }
END_TEST
START_TEST(coro_pingpong_from_goroutine) { pingpong_check(false); }
END_TEST

/* Several goroutines ping-pong their own coroutines at once at
 * GOMAXPROCS=2. */
static _Atomic int pp_done;
static void pingpong_g(void *arg)
{
	pingpong_body(arg);
	atomic_fetch_add(&pp_done, 1);
}

START_TEST(coro_pingpong_concurrent_p2)
{
	int old = go_maxprocs(2);
	settled_base();
	struct pingpong p[8];
	memset(p, 0, sizeof p);
	atomic_store(&pp_done, 0);
	uint64_t retaken0 = total_retaken();
	for (int i = 0; i < 8; i++) {
		p[i].n = SCALE(10000);
		p[i].check_tid = true;
		go_spawn(pingpong_g, &p[i]);
	}
	ck_assert(wait_flag(&pp_done, 8, slack(20000 * MS)));
	/* 8 ping-pongs on 2 Ps: sysmon retakes the P of a pair that runs
	 * 10 ms without passing through the scheduler while others wait (a
	 * coroutine switch does not), and the pair may move threads then;
	 * see pingpong_check. */
	int64_t mismatches = 0;
	for (int i = 0; i < 8; i++) {
		ck_assert_int_eq(atomic_load(&p[i].bad), 0);
		mismatches += atomic_load(&p[i].tid_mismatch);
	}
	ck_assert_int_le(mismatches, 2 * (int64_t)(total_retaken() - retaken0));
	settled_base();
	go_maxprocs(old);
}
END_TEST

/* A coroutine made on main (a locked thread) runs on main's thread only,
 * even when it blocks or yields inside. */
struct locked_check {
	long main_tid;
	long tids[6];
	int64_t self;
};
static void locked_fn(go_coro *c, void *arg)
{
	struct locked_check *l = arg;
	l->self = go_self();
	l->tids[0] = gettid_();
	go_yield();
	l->tids[1] = gettid_();
	go_sleep(2 * MS);
	l->tids[2] = gettid_();
	go_coro_switch(c);
	l->tids[3] = gettid_();
	go_chan *a = go_after(MS);
	go_chan_recv(a, NULL);
	go_chan_free(a);
	l->tids[4] = gettid_();
	go_coro_switch(c);
	l->tids[5] = gettid_();
}

START_TEST(coro_on_main_runs_on_main_thread)
{
	int old = go_maxprocs(2);
	/* other goroutines keep both Ps busy meanwhile */
	struct locked_check l = { .main_tid = gettid_() };
	go_coro *c = go_coro_new(locked_fn, &l);
	go_coro_switch(c);
	ck_assert_int_eq(gettid_(), l.main_tid);
	go_coro_switch(c);
	ck_assert_int_eq(gettid_(), l.main_tid);
	go_coro_switch(c);
	ck_assert_int_eq(gettid_(), l.main_tid);
	go_coro_free(c);
	ck_assert_int_ne(l.self, go_self());
	for (int i = 0; i < 6; i++)
		ck_assert_msg(l.tids[i] == l.main_tid, "step %d ran on thread %ld, main is %ld", i,
		              l.tids[i], l.main_tid);
	go_maxprocs(old);
}
END_TEST

/* A coroutine blocked inside (sleep) keeps its switcher blocked: the
 * switch returns only when the coroutine switches back. */
static void sleepy_fn(go_coro *c, void *arg)
{
	(void)arg;
	go_sleep(10 * MS);
	go_coro_switch(c);
}

START_TEST(coro_blocking_inside_keeps_switcher_waiting)
{
	go_coro *c = go_coro_new(sleepy_fn, NULL);
	int64_t t0 = go_now();
	go_coro_switch(c);
	ck_assert_int_ge(go_now() - t0, 10 * MS);
	go_coro_switch(c);
	go_coro_free(c);
}
END_TEST

/* Go lets any goroutine switch to a coroutine (one at a time): made by
 * one goroutine, driven by a second, then by a third, which sees it end. */
struct handoff {
	go_coro *c;
	int seq; /* advanced by the coroutine at each resume */
	int seen[2][20];
	go_chan *turn[2];
	_Atomic int done;
	bool freed;
};
static void counting_fn(go_coro *c, void *arg)
{
	struct handoff *h = arg;
	for (;;) {
		h->seq++;
		if (h->seq == 40)
			return;
		go_coro_switch(c);
	}
}
static void make_counting(void *arg)
{
	struct handoff *h = arg;
	h->c = go_coro_new(counting_fn, h);
}
struct driver { struct handoff *h; int which; };
static void handoff_driver(void *arg)
{
	struct driver *d = arg;
	struct handoff *h = d->h;
	go_chan_recv(h->turn[d->which], NULL);
	for (int i = 0; i < 20; i++) {
		go_coro_switch(h->c);
		h->seen[d->which][i] = h->seq;
	}
	if (d->which == 0) {
		go_chan_send(h->turn[1], NULL);
	} else {
		go_coro_free(h->c); /* exited at seq 40 */
		h->freed = true;
	}
	atomic_fetch_add(&h->done, 1);
}

START_TEST(coro_switched_from_several_goroutines)
{
	int old = go_maxprocs(2);
	int base = settled_base();
	struct handoff *h = calloc(1, sizeof *h);
	h->turn[0] = go_chan_make(0, 1);
	h->turn[1] = go_chan_make(0, 1);
	ck_assert(run_in_goroutine(make_counting, h, slack(2000 * MS)));
	ck_assert_ptr_nonnull(h->c);
	struct driver d[2] = { { h, 0 }, { h, 1 } };
	go_spawn(handoff_driver, &d[0]);
	go_spawn(handoff_driver, &d[1]);
	go_chan_send(h->turn[0], NULL);
	ck_assert(wait_flag(&h->done, 2, slack(5000 * MS)));
	ck_assert(h->freed);
	for (int w = 0; w < 2; w++)
		for (int i = 0; i < 20; i++)
			ck_assert_int_eq(h->seen[w][i], w * 20 + i + 1);
	settled_base();
	ck_assert_int_eq(go_count(), base);
	go_chan_free(h->turn[0]);
	go_chan_free(h->turn[1]);
	free(h);
	go_maxprocs(old);
}
END_TEST

/* ---- fatal misuse (children) ---------------------------------------------- */

static void scenario_switch_exited(void)
{
	go_coro *c = go_coro_new(nop_coro, NULL);
	go_coro_switch(c);
	printf("returned from the last switch\n");
	fflush(stdout);
	go_coro_switch(c);
	printf("FAIL: switched to an exited coro\n");
}

static void scenario_free_unstarted(void)
{
	go_coro *c = go_coro_new(nop_coro, NULL);
	go_coro_free(c);
	printf("FAIL: freed a live coro\n");
}

static void suspend_once(go_coro *c, void *arg)
{
	(void)arg;
	go_coro_switch(c);
}
static void scenario_free_suspended(void)
{
	go_coro *c = go_coro_new(suspend_once, NULL);
	go_coro_switch(c);
	go_coro_free(c);
	printf("FAIL: freed a live coro\n");
}

/* A coroutine made on main's locked thread, switched to from another
 * goroutine (Go: "coro: OS thread locking must match locking at
 * coroutine creation"). */
static go_coro *main_coro;
static void foreign_switcher(void *arg)
{
	(void)arg;
	go_coro_switch(main_coro);
	printf("FAIL: switched from another thread\n");
	fflush(stdout);
}
static void scenario_switch_from_other_thread(void)
{
	main_coro = go_coro_new(suspend_once, NULL);
	go_spawn(foreign_switcher, NULL);
	go_sleep(2000 * MS);
	printf("FAIL: survived\n");
}

/* Main switches to a coroutine that blocks forever: every goroutine is
 * asleep. */
static void block_forever_fn(go_coro *c, void *arg)
{
	(void)c;
	(void)arg;
	go_chan *ch = go_chan_make(0, 0);
	go_chan_recv(ch, NULL);
}
static void scenario_coro_deadlock(void)
{
	go_coro *c = go_coro_new(block_forever_fn, NULL);
	go_coro_switch(c);
	printf("FAIL: woke up\n");
}

/* go_exit inside a coroutine's fn: Go's corostart runs coroexit in a
 * defer, so runtime.Goexit in fn ends the coroutine as a return does and
 * the goroutine blocked on it resumes. */
static void goexit_fn(go_coro *c, void *arg)
{
	(void)c;
	(void)arg;
	printf("in fn\n");
	fflush(stdout);
	go_exit();
}
static void scenario_coro_goexit(void)
{
	alarm(5);
	go_coro *c = go_coro_new(goexit_fn, NULL);
	go_coro_switch(c);
	printf("switcher resumed\n");
	go_coro_free(c);
	printf("freed\n");
}

/* go_exit inside a generator: Go's iter.Pull propagates the Goexit to the
 * consumer (next calls runtime.Goexit): the consumer goroutine ends, and
 * nothing after its next runs. */
static void gen_goexit(go_iter *it, void *arg)
{
	(void)arg;
	int v = 1;
	go_iter_yield(it, &v);
	go_exit();
}
static _Atomic int consumer_after;
static void goexit_consumer(void *arg)
{
	(void)arg;
	/* made here: one made on main would be tied to main's thread */
	go_iter *it = go_iter_new(gen_goexit, NULL, sizeof(int));
	int v;
	go_iter_next(it, &v);
	go_iter_next(it, &v); /* the generator calls go_exit */
	atomic_store(&consumer_after, 1);
	printf("FAIL: consumer went on after next\n");
	fflush(stdout);
}
static void scenario_iter_goexit(void)
{
	alarm(5);
	go_spawn(goexit_consumer, NULL);
	int64_t end = mono_ns() + 2000 * MS;
	while (go_count() != 1 && mono_ns() < end) {
		go_yield();
		usleep(100);
	}
	printf(go_count() == 1 ? "consumer ended\n" : "consumer stuck (go_count %d)\n", go_count());
}

/* Under ASan: main switches to a coroutine and back (and sleeps), then
 * longjmps out of poisoned frames (as Check does for a failed
 * assertion). ASan must know main's stack to unpoison it
 * (__asan_handle_no_return); then a deep frame reusing that stack is
 * clean. Built without ASan it just runs. */
static jmp_buf ljb;
static void (*volatile deep_next)(int);
static __attribute__((noinline)) void deep_longjmp(int depth)
{
	volatile char pad[256];
	pad[0] = (char)depth;
	if (depth == 0)
		longjmp(ljb, 1);
	deep_next(depth - 1);
	(void)pad[0];
}
static __attribute__((noinline)) int touch_stack(void)
{
	volatile char big[16384];
	memset((char *)big, 1, sizeof big);
	return big[100];
}
static void scenario_longjmp_after_switch(void)
{
	go_coro *c = go_coro_new(suspend_once, NULL);
	go_coro_switch(c);
	go_coro_switch(c);
	go_coro_free(c);
	go_sleep(MS);
	deep_next = deep_longjmp;
	if (!setjmp(ljb))
		deep_longjmp(20);
	printf("touched %d\n", touch_stack());
}

static void expect_fatal(const char *name, const char *msg)
{
	struct child_result r;
	run_child(name, NULL, &r);
	ck_assert_exit_status(&r, 2);
	ck_assert_output_has(&r, msg);
	ck_assert_msg(strstr(r.out, "FAIL") == NULL, "%s", out_tail(&r));
}

START_TEST(coro_switch_after_exit_is_fatal)
{
	expect_fatal("switch_exited", "fatal error: coroswitch on exited coro");
	struct child_result r;
	run_child("switch_exited", NULL, &r);
	ck_assert_output_has(&r, "returned from the last switch");
}
END_TEST

START_TEST(coro_free_live_is_fatal)
{
	expect_fatal("free_unstarted", "fatal error: ");
	expect_fatal("free_suspended", "fatal error: ");
}
END_TEST

START_TEST(coro_switch_from_other_thread_is_fatal)
{
	expect_fatal("switch_from_other_thread", "fatal error: ");
}
END_TEST

START_TEST(coro_longjmp_on_main_after_switch)
{
	struct child_result r;
	run_child("longjmp_after_switch", NULL, &r);
	ck_assert_exit_status(&r, 0);
	ck_assert_output_has(&r, "touched 1");
	ck_assert_msg(strstr(r.out, "AddressSanitizer") == NULL, "%s", out_tail(&r));
}
END_TEST

START_TEST(coro_goexit_in_fn_resumes_switcher)
{
	struct child_result r;
	run_child("coro_goexit", NULL, &r);
	ck_assert_exit_status(&r, 0);
	ck_assert_output_has(&r, "switcher resumed");
	ck_assert_output_has(&r, "freed");
}
END_TEST

START_TEST(iter_goexit_in_generator_ends_consumer)
{
	struct child_result r;
	run_child("iter_goexit", NULL, &r);
	ck_assert_exit_status(&r, 0);
	ck_assert_output_has(&r, "consumer ended");
	ck_assert(strstr(r.out, "FAIL") == NULL);
}
END_TEST

START_TEST(coro_blocked_forever_is_deadlock)
{
	expect_fatal("coro_deadlock", "fatal error: all goroutines are asleep - deadlock!");
}
END_TEST

/* ---- iterators -------------------------------------------------------------- */

struct gen_state {
	int n;             /* values to yield: 0..n-1 */
	_Atomic int called, returned, saw_false, yields;
	int64_t self;
};

static void gen_count(go_iter *it, void *arg)
{
	struct gen_state *g = arg;
	atomic_store(&g->called, 1);
	g->self = go_self();
	for (int i = 0; i < g->n; i++) {
		atomic_fetch_add(&g->yields, 1);
		if (!go_iter_yield(it, &i)) {
			atomic_store(&g->saw_false, 1);
			break;
		}
	}
	atomic_store(&g->returned, 1);
}

static void gen_nop(go_iter *it, void *arg)
{
	(void)it;
	(void)arg;
}

START_TEST(iter_new_invalid)
{
	errno = 0;
	ck_assert_ptr_null(go_iter_new(NULL, NULL, 4));
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_ptr_null(go_iter_new(gen_nop, NULL, 65537));
	ck_assert_int_eq(errno, EINVAL);
	go_iter *it = go_iter_new(gen_nop, NULL, 65536);
	ck_assert_ptr_nonnull(it);
	go_iter_free(it);
	go_iter_free(NULL);
}
END_TEST

START_TEST(iter_yields_in_order_lazily)
{
	int base = settled_base();
	struct gen_state g = { .n = 1000 };
	go_iter *it = go_iter_new(gen_count, &g, sizeof(int));
	ck_assert_ptr_nonnull(it);
	go_sleep(5 * MS);
	ck_assert_int_eq(atomic_load(&g.called), 0); /* lazy */
	for (int i = 0; i < g.n; i++) {
		int v = -1;
		ck_assert(go_iter_next(it, &v));
		ck_assert_int_eq(v, i);
		ck_assert_int_eq(atomic_load(&g.yields), i + 1); /* lockstep */
		if (i == 0)
			ck_assert_int_eq(atomic_load(&g.called), 1);
	}
	ck_assert_int_eq(atomic_load(&g.returned), 0);
	int v = 0x5a5a5a5a;
	ck_assert(!go_iter_next(it, &v));
	ck_assert_int_eq(v, 0); /* zeroed */
	ck_assert_int_eq(atomic_load(&g.returned), 1);
	ck_assert_int_eq(atomic_load(&g.saw_false), 0);
	v = 77;
	ck_assert(!go_iter_next(it, &v));
	ck_assert_int_eq(v, 0);
	ck_assert(!go_iter_next(it, NULL));
	ck_assert_int_ne(g.self, go_self());
	go_iter_stop(it); /* after the end: harmless */
	go_iter_free(it);
	ck_assert_int_eq(go_count(), base);
}
END_TEST

START_TEST(iter_stop_while_suspended)
{
	int base = settled_base();
	struct gen_state g = { .n = 1000 };
	go_iter *it = go_iter_new(gen_count, &g, sizeof(int));
	int v;
	for (int i = 0; i < 3; i++) {
		ck_assert(go_iter_next(it, &v));
		ck_assert_int_eq(v, i);
	}
	ck_assert_int_eq(atomic_load(&g.returned), 0);
	go_iter_stop(it);
	/* before stop returned, the generator saw yield return false and
	 * returned */
	ck_assert_int_eq(atomic_load(&g.saw_false), 1);
	ck_assert_int_eq(atomic_load(&g.returned), 1);
	ck_assert_int_eq(g.yields, 3); /* suspended in the 3rd yield */
	v = 99;
	ck_assert(!go_iter_next(it, &v));
	ck_assert_int_eq(v, 0);
	go_iter_stop(it); /* twice: fine */
	ck_assert(!go_iter_next(it, &v));
	go_iter_free(it);
	ck_assert_int_eq(go_count(), base);
}
END_TEST

START_TEST(iter_stop_before_first_next)
{
	int base = settled_base();
	struct gen_state g = { .n = 10 };
	go_iter *it = go_iter_new(gen_count, &g, sizeof(int));
	ck_assert_int_eq(go_count(), base + 1);
	go_iter_stop(it);
	/* iter.Pull: the sequence function is never called */
	ck_assert_int_eq(atomic_load(&g.called), 0);
	ck_assert_int_eq(atomic_load(&g.returned), 0);
	int v = 5;
	ck_assert(!go_iter_next(it, &v));
	ck_assert_int_eq(v, 0);
	ck_assert_int_eq(atomic_load(&g.called), 0);
	go_iter_stop(it);
	go_iter_free(it);
	ck_assert_int_eq(atomic_load(&g.called), 0);
	ck_assert_int_eq(go_count(), base);
}
END_TEST

START_TEST(iter_free_unfinished_stops_it)
{
	int base = settled_base();
	/* suspended in a yield */
	struct gen_state g = { .n = 100 };
	go_iter *it = go_iter_new(gen_count, &g, sizeof(int));
	int v;
	ck_assert(go_iter_next(it, &v));
	go_iter_free(it);
	ck_assert_int_eq(atomic_load(&g.saw_false), 1);
	ck_assert_int_eq(atomic_load(&g.returned), 1);
	/* never started */
	struct gen_state h = { .n = 100 };
	it = go_iter_new(gen_count, &h, sizeof(int));
	go_iter_free(it);
	ck_assert_int_eq(atomic_load(&h.called), 0);
	settled_base();
	ck_assert_int_eq(go_count(), base);
}
END_TEST

/* A generator that ignores false keeps getting false and runs to its end
 * within stop. */
static _Atomic int stubborn_falses, stubborn_returned;
static void gen_stubborn(go_iter *it, void *arg)
{
	(void)arg;
	for (int i = 0; i < 10; i++)
		if (!go_iter_yield(it, &i))
			atomic_fetch_add(&stubborn_falses, 1);
	atomic_store(&stubborn_returned, 1);
}

START_TEST(iter_yield_after_stop_keeps_false)
{
	go_iter *it = go_iter_new(gen_stubborn, NULL, sizeof(int));
	int v;
	ck_assert(go_iter_next(it, &v));
	ck_assert(go_iter_next(it, &v));
	ck_assert_int_eq(v, 1);
	go_iter_stop(it);
	ck_assert_int_eq(atomic_load(&stubborn_returned), 1);
	ck_assert_int_eq(atomic_load(&stubborn_falses), 9); /* yields 1..9 after stop: false */
	ck_assert(!go_iter_next(it, &v));
	go_iter_free(it);
}
END_TEST

/* elem_size 0: values carry nothing, only their count. */
static void gen_units(go_iter *it, void *arg)
{
	int n = (int)(intptr_t)arg;
	for (int i = 0; i < n; i++)
		if (!go_iter_yield(it, NULL))
			return;
}

START_TEST(iter_elem_size_zero)
{
	go_iter *it = go_iter_new(gen_units, (void *)(intptr_t)5, 0);
	ck_assert_ptr_nonnull(it);
	unsigned char buf[8];
	memset(buf, 0xcc, sizeof buf);
	int n = 0;
	while (go_iter_next(it, n % 2 ? buf : NULL))
		n++;
	ck_assert_int_eq(n, 5);
	for (size_t i = 0; i < sizeof buf; i++)
		ck_assert_uint_eq(buf[i], 0xcc); /* nothing written */
	go_iter_free(it);
	it = go_iter_new(gen_units, (void *)(intptr_t)5, 0);
	ck_assert(go_iter_next(it, NULL));
	go_iter_free(it);
}
END_TEST

/* Large elements are copied whole. */
struct big { uint32_t w[16384]; }; /* 65536 bytes */
static void gen_big(go_iter *it, void *arg)
{
	(void)arg;
	struct big *b = malloc(sizeof *b);
	for (uint32_t k = 0; k < 3; k++) {
		for (uint32_t i = 0; i < 16384; i++)
			b->w[i] = i * 2654435761u + k;
		if (!go_iter_yield(it, b))
			break;
	}
	free(b);
}

START_TEST(iter_large_elements)
{
	go_iter *it = go_iter_new(gen_big, NULL, sizeof(struct big));
	ck_assert_ptr_nonnull(it);
	struct big *b = malloc(sizeof *b);
	for (uint32_t k = 0; k < 3; k++) {
		ck_assert(go_iter_next(it, b));
		for (uint32_t i = 0; i < 16384; i++)
			ck_assert_uint_eq(b->w[i], i * 2654435761u + k);
	}
	ck_assert(!go_iter_next(it, b));
	for (uint32_t i = 0; i < 16384; i++)
		ck_assert_uint_eq(b->w[i], 0);
	free(b);
	go_iter_free(it);
}
END_TEST

/* Many iterators pulled round-robin, and nested iterators (a generator
 * that pulls from another); then stop an outer one while its inner is
 * suspended. */
struct seq_arg {
	int id, n;
	_Atomic int returned;
};
static void gen_seq(go_iter *it, void *arg)
{
	struct seq_arg *s = arg;
	for (int k = 0; k < s->n; k++) {
		int v = s->id * 100000 + k;
		if (!go_iter_yield(it, &v))
			break;
	}
	atomic_store(&s->returned, 1);
}

struct map_arg {
	go_iter *inner;
	_Atomic int returned, saw_false;
};
static void gen_double(go_iter *it, void *arg)
{
	struct map_arg *m = arg;
	int v;
	while (go_iter_next(m->inner, &v)) {
		v *= 2;
		if (!go_iter_yield(it, &v)) {
			atomic_store(&m->saw_false, 1);
			go_iter_stop(m->inner); /* clean up, as a deferred stop would */
			break;
		}
	}
	atomic_store(&m->returned, 1);
}

static void interleaved_body(void *arg)
{
	(void)arg;
	int base = go_count();
	enum { K = 100, N = 50 };
	static struct seq_arg sa[K];
	go_iter *its[K];
	for (int i = 0; i < K; i++) {
		sa[i] = (struct seq_arg){ .id = i, .n = N };
		its[i] = go_iter_new(gen_seq, &sa[i], sizeof(int));
	}
	ck_assert_int_eq(go_count(), base + K);
	for (int k = 0; k < N; k++)
		for (int i = 0; i < K; i++) {
			int v;
			ck_assert(go_iter_next(its[i], &v));
			ck_assert_int_eq(v, i * 100000 + k);
		}
	for (int i = 0; i < K; i++) {
		ck_assert(!go_iter_next(its[i], NULL));
		ck_assert_int_eq(atomic_load(&sa[i].returned), 1);
		go_iter_free(its[i]);
	}
	ck_assert_int_eq(go_count(), base);

	/* nested: outer doubles inner's values */
	struct seq_arg in = { .id = 3, .n = 20 };
	struct map_arg m = { .inner = go_iter_new(gen_seq, &in, sizeof(int)) };
	go_iter *outer = go_iter_new(gen_double, &m, sizeof(int));
	for (int k = 0; k < 20; k++) {
		int v;
		ck_assert(go_iter_next(outer, &v));
		ck_assert_int_eq(v, 2 * (300000 + k));
	}
	ck_assert(!go_iter_next(outer, NULL));
	ck_assert_int_eq(atomic_load(&m.returned), 1);
	ck_assert_int_eq(atomic_load(&in.returned), 1);
	go_iter_free(outer);
	go_iter_free(m.inner);

	/* stop the outer while both are suspended */
	struct seq_arg in2 = { .id = 4, .n = 20 };
	struct map_arg m2 = { .inner = go_iter_new(gen_seq, &in2, sizeof(int)) };
	outer = go_iter_new(gen_double, &m2, sizeof(int));
	int v;
	ck_assert(go_iter_next(outer, &v));
	ck_assert(go_iter_next(outer, &v));
	ck_assert_int_eq(v, 2 * 400001);
	go_iter_stop(outer);
	ck_assert_int_eq(atomic_load(&m2.saw_false), 1);
	ck_assert_int_eq(atomic_load(&m2.returned), 1);
	ck_assert_int_eq(atomic_load(&in2.returned), 1); /* inner stopped within */
	go_iter_free(outer);
	go_iter_free(m2.inner);
	ck_assert_int_eq(go_count(), base);
}

START_TEST(iter_many_interleaved_main) { interleaved_body(NULL); }
END_TEST
START_TEST(iter_many_interleaved_goroutine)
{
	settled_base();
	ck_assert(run_in_goroutine(interleaved_body, NULL, slack(20000 * MS)));
	settled_base();
}
END_TEST

/* Goroutines at GOMAXPROCS=2 each pull many iterators; a generator may
 * block (sleep) between yields. */
static _Atomic int iter_workers_done, iter_workers_bad;
static void gen_sleepy(go_iter *it, void *arg)
{
	(void)arg;
	for (int i = 0; i < 3; i++) {
		if (i == 1)
			go_sleep(100 * 1000);
		if (!go_iter_yield(it, &i))
			return;
	}
}
static void iter_worker(void *arg)
{
	(void)arg;
	for (int r = 0; r < SCALE(300); r++) {
		struct gen_state g = { .n = 20 };
		go_iter *a = go_iter_new(gen_count, &g, sizeof(int));
		go_iter *b = go_iter_new(gen_sleepy, NULL, sizeof(int));
		int sum = 0, v;
		while (go_iter_next(a, &v)) {
			sum += v;
			if (v == 10 && r % 2)
				go_iter_stop(a);
		}
		int bs = 0;
		while (go_iter_next(b, &v))
			bs += v;
		if ((r % 2 ? sum != 55 : sum != 190) || bs != 3 || !atomic_load(&g.returned))
			atomic_store(&iter_workers_bad, 1);
		go_iter_free(a);
		go_iter_free(b);
	}
	atomic_fetch_add(&iter_workers_done, 1);
}

START_TEST(iter_concurrent_goroutines_p2)
{
	int old = go_maxprocs(2);
	int base = settled_base();
	atomic_store(&iter_workers_done, 0);
	for (int i = 0; i < 8; i++)
		go_spawn(iter_worker, NULL);
	ck_assert(wait_flag(&iter_workers_done, 8, slack(20000 * MS)));
	ck_assert_int_eq(atomic_load(&iter_workers_bad), 0);
	settled_base();
	ck_assert_int_eq(go_count(), base);
	go_maxprocs(old);
}
END_TEST

/* iter.Pull's misuse panics. */
static go_iter *self_iter;
static void gen_calls_next(go_iter *it, void *arg)
{
	(void)arg;
	go_iter_next(it, NULL); /* next from inside the sequence */
	printf("FAIL: next inside the generator returned\n");
}
static void scenario_next_inside_gen(void)
{
	self_iter = go_iter_new(gen_calls_next, NULL, 0);
	go_iter_next(self_iter, NULL);
	printf("FAIL: survived\n");
}
static void scenario_yield_outside_gen(void)
{
	go_iter *it = go_iter_new(gen_nop, NULL, sizeof(int));
	int v = 1;
	go_iter_yield(it, &v); /* no next waits for it */
	printf("FAIL: survived\n");
}

START_TEST(iter_misuse_is_fatal)
{
	expect_fatal("next_inside_gen", "panic: iter.Pull: next called again before yield");
	expect_fatal("yield_outside_gen", "panic: iter.Pull: yield called again before next");
}
END_TEST

/* Last: every coroutine goroutine is gone. */
START_TEST(no_goroutines_left)
{
	int64_t end = mono_ns() + slack(2000 * MS);
	while (go_count() != 1 && mono_ns() < end)
		go_yield();
	ck_assert_int_eq(go_count(), 1);
	ck_assert_int_eq(ntimers_live(), 0);
}
END_TEST

static const struct scenario scenarios[] = {
	{ "switch_exited", scenario_switch_exited },
	{ "free_unstarted", scenario_free_unstarted },
	{ "free_suspended", scenario_free_suspended },
	{ "switch_from_other_thread", scenario_switch_from_other_thread },
	{ "coro_deadlock", scenario_coro_deadlock },
	{ "coro_goexit", scenario_coro_goexit },
	{ "iter_goexit", scenario_iter_goexit },
	{ "longjmp_after_switch", scenario_longjmp_after_switch },
	{ "next_inside_gen", scenario_next_inside_gen },
	{ "yield_outside_gen", scenario_yield_outside_gen },
	{ NULL, NULL },
};

static Suite *coro_suite(void)
{
	Suite *s = suite_create("coro");
	TCase *tc = tcase_create("coro");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, coro_new_null_is_einval);
	tcase_add_test(tc, coro_starts_at_first_switch_main);
	tcase_add_test(tc, coro_starts_at_first_switch_goroutine);
	tcase_add_test(tc, coro_pingpong_from_main);
	tcase_add_test(tc, coro_pingpong_from_goroutine);
	tcase_add_test(tc, coro_pingpong_concurrent_p2);
	tcase_add_test(tc, coro_on_main_runs_on_main_thread);
	tcase_add_test(tc, coro_blocking_inside_keeps_switcher_waiting);
	tcase_add_test(tc, coro_switched_from_several_goroutines);
	tcase_add_test(tc, coro_switch_after_exit_is_fatal);
	tcase_add_test(tc, coro_free_live_is_fatal);
	tcase_add_test(tc, coro_switch_from_other_thread_is_fatal);
	tcase_add_test(tc, coro_blocked_forever_is_deadlock);
	suite_add_tcase(s, tc);
	TCase *ti = tcase_create("iter");
	tcase_set_timeout(ti, 300);
	tcase_add_test(ti, iter_new_invalid);
	tcase_add_test(ti, iter_yields_in_order_lazily);
	tcase_add_test(ti, iter_stop_while_suspended);
	tcase_add_test(ti, iter_stop_before_first_next);
	tcase_add_test(ti, iter_free_unfinished_stops_it);
	tcase_add_test(ti, iter_yield_after_stop_keeps_false);
	tcase_add_test(ti, iter_elem_size_zero);
	tcase_add_test(ti, iter_large_elements);
	tcase_add_test(ti, iter_many_interleaved_main);
	tcase_add_test(ti, iter_many_interleaved_goroutine);
	tcase_add_test(ti, iter_concurrent_goroutines_p2);
	tcase_add_test(ti, iter_misuse_is_fatal);
	tcase_add_test(ti, no_goroutines_left);
	suite_add_tcase(s, ti);
	/* go_exit inside a coroutine or generator. Last: a failed check
	 * longjmps on main's stack, and under ASan that leaves stale stack
	 * poisoning after goroutine switches (the runtime gives ASan no bounds
	 * for an adopted thread's stack), so later tests could see false
	 * reports. */
	TCase *tx = tcase_create("tail");
	tcase_set_timeout(tx, 60);
	tcase_add_test(tx, coro_goexit_in_fn_resumes_switcher);
	tcase_add_test(tx, iter_goexit_in_generator_ends_consumer);
	tcase_add_test(tx, coro_longjmp_on_main_after_switch);
	suite_add_tcase(s, tx);
	return s;
}

int main(int argc, char **argv)
{
	return test_main(argc, argv, coro_suite, scenarios);
}
