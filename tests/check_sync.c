/* sync.WaitGroup (go_wg_*) and contexts (go_ctx_*): zero values, many
 * goroutines at GOMAXPROCS 1 and 2, reuse, Go's misuse panics (in child
 * processes), cancellation trees, timeouts, first cause sticking, timers
 * not left behind. */
#include <stdatomic.h>
#include <stdint.h>
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

/* Slow builds get more slack on upper bounds of time. */
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

/* main waits without keeping its P (it is locked to its thread) */
static void pause_brief(void)
{
	go_yield();
	usleep(100);
}

/* Waits until *flag >= want; false after timeout_ns. */
static bool wait_flag(_Atomic int *flag, int want, int64_t timeout_ns)
{
	int64_t end = mono_ns() + timeout_ns;
	while (atomic_load(flag) < want) {
		if (mono_ns() > end)
			return false;
		pause_brief();
	}
	return true;
}

static bool timers_settle(int64_t want)
{
	int64_t end = mono_ns() + slack(2000 * MS);
	while (ntimers_live() != want) {
		if (mono_ns() > end)
			return false;
		pause_brief();
	}
	return true;
}

/* Main waits on a WaitGroup, with a bound: a goroutine does the
 * go_wg_wait and main polls its flag. */
struct wg_watch {
	go_wg *wg;
	_Atomic int done;
};
static void wg_watcher(void *arg)
{
	struct wg_watch *w = arg;
	go_wg_wait(w->wg);
	atomic_store(&w->done, 1);
}
static bool wg_wait_bounded(go_wg *wg, int64_t timeout_ns)
{
	struct wg_watch *w = calloc(1, sizeof *w);
	w->wg = wg;
	if (go_spawn(wg_watcher, w) != 0)
		return false;
	if (!wait_flag(&w->done, 1, timeout_ns))
		return false; /* w leaks: the watcher may still use it */
	free(w);
	return true;
}

static uint32_t wg_waiters(go_wg *wg)
{
	return (uint32_t)__atomic_load_n(&wg->state_, __ATOMIC_RELAXED);
}
static int32_t wg_counter(go_wg *wg)
{
	return (int32_t)(__atomic_load_n(&wg->state_, __ATOMIC_RELAXED) >> 32);
}

static uint64_t rng_next(uint64_t *s)
{
	*s = *s * 6364136223846793005ull + 1442695040888963407ull;
	return *s >> 33;
}

/* Goroutines blocked receiving on c (internals: its receive queue). */
static bool has_receiver(go_chan *c)
{
	return __atomic_load_n(&((struct hchan *)c)->recvq.first, __ATOMIC_ACQUIRE) != NULL;
}

/* ---- WaitGroup ------------------------------------------------------------ */

static go_wg static_wg; /* zeroed */

START_TEST(wg_zero_values_are_empty)
{
	go_wg a = GO_WG_INIT;
	go_wg b;
	memset(&b, 0, sizeof b);
	int64_t t0 = go_now();
	go_wg_wait(&a);
	go_wg_wait(&b);
	go_wg_wait(&static_wg);
	/* waiting on a zero counter neither blocks nor registers a waiter */
	for (int i = 0; i < 1000; i++)
		go_wg_wait(&a);
	ck_assert_int_lt(go_now() - t0, slack(50 * MS));
	ck_assert_uint_eq(a.state_, 0);
	ck_assert_uint_eq(static_wg.state_, 0);
	/* each works as a WaitGroup */
	go_wg *wgs[] = { &a, &b, &static_wg };
	for (int i = 0; i < 3; i++) {
		go_wg_add(wgs[i], 3);
		ck_assert_int_eq(wg_counter(wgs[i]), 3);
		go_wg_done(wgs[i]);
		go_wg_add(wgs[i], -2);
		go_wg_wait(wgs[i]);
		ck_assert_uint_eq(wgs[i]->state_, 0);
	}
}
END_TEST

/* n workers, added by a coordinator goroutine that waits for them: when
 * its wait returns every worker has finished its work. Some workers add
 * a helper before finishing (the counter never touches zero early). */
struct wg_run {
	go_wg wg;
	_Atomic int finished, helpers;
	_Atomic int early; /* wait returned before all had finished */
	_Atomic int coord_done;
	int n;
};
static void wg_helper(void *arg)
{
	struct wg_run *r = arg;
	go_yield();
	atomic_fetch_add(&r->helpers, 1);
	go_wg_done(&r->wg);
}
static void wg_worker(void *arg)
{
	struct wg_run *r = arg;
	uint64_t s = (uint64_t)(uintptr_t)&s;
	int k = (int)(rng_next(&s) % 4);
	for (int i = 0; i < k; i++)
		go_yield();
	if (k == 0) {
		go_wg_add(&r->wg, 1);
		go_spawn(wg_helper, r);
	}
	atomic_fetch_add(&r->finished, 1);
	go_wg_done(&r->wg);
}
static void wg_coordinator(void *arg)
{
	struct wg_run *r = arg;
	go_wg_add(&r->wg, r->n);
	for (int i = 0; i < r->n; i++)
		go_spawn(wg_worker, r);
	go_wg_wait(&r->wg);
	if (atomic_load(&r->finished) != r->n)
		atomic_store(&r->early, 1);
	atomic_store(&r->coord_done, 1);
}

static void wg_many(int procs)
{
	int old = go_maxprocs(procs);
	int base = settled_base();
	struct wg_run *r = calloc(1, sizeof *r);
	r->n = SCALE(20000);
	go_spawn(wg_coordinator, r);
	ck_assert(wait_flag(&r->coord_done, 1, slack(20000 * MS)));
	ck_assert_int_eq(atomic_load(&r->early), 0);
	ck_assert_int_eq(atomic_load(&r->finished), r->n);
	ck_assert_uint_eq(r->wg.state_, 0);
	while (go_count() != base)
		go_yield();
	/* the helpers all finished before the wait returned too */
	go_maxprocs(old);
	free(r);
}

START_TEST(wg_many_goroutines_p1) { wg_many(1); }
END_TEST
START_TEST(wg_many_goroutines_p2) { wg_many(2); }
END_TEST

/* Several goroutines wait on one WaitGroup: all are released, none
 * before the counter reaches zero. */
static go_wg multi_wg;
static _Atomic int multi_released;
static void multi_waiter(void *arg)
{
	(void)arg;
	go_wg_wait(&multi_wg);
	atomic_fetch_add(&multi_released, 1);
}

static void multiple_waiters(int procs)
{
	int old = go_maxprocs(procs);
	settled_base();
	const int k = 100;
	atomic_store(&multi_released, 0);
	go_wg_add(&multi_wg, 2);
	for (int i = 0; i < k; i++)
		go_spawn(multi_waiter, NULL);
	/* all registered as waiters */
	int64_t end = mono_ns() + slack(5000 * MS);
	while (wg_waiters(&multi_wg) < (uint32_t)k && mono_ns() < end)
		pause_brief();
	ck_assert_uint_eq(wg_waiters(&multi_wg), k);
	go_wg_done(&multi_wg);
	go_sleep(10 * MS);
	ck_assert_int_eq(atomic_load(&multi_released), 0);
	go_wg_done(&multi_wg);
	ck_assert(wait_flag(&multi_released, k, slack(5000 * MS)));
	ck_assert_uint_eq(multi_wg.state_, 0);
	settled_base();
	go_maxprocs(old);
}

START_TEST(wg_multiple_waiters_released_p1) { multiple_waiters(1); }
END_TEST
START_TEST(wg_multiple_waiters_released_p2) { multiple_waiters(2); }
END_TEST

/* Go's TestWaitGroup: two WaitGroups reused over rounds as barriers. */
static go_wg barrier1, barrier2;
static go_chan *exited;
static void barrier_member(void *arg)
{
	(void)arg;
	go_wg_done(&barrier1);
	go_wg_wait(&barrier2);
	bool t = true;
	go_chan_send(exited, &t);
}

static _Atomic int reuse_done, reuse_bad;
static void reuse_rounds(void *arg)
{
	(void)arg;
	const int n = 16;
	exited = go_chan_make(sizeof(bool), n);
	for (int round = 0; round < 200; round++) {
		go_wg_add(&barrier1, n);
		go_wg_add(&barrier2, n);
		for (int i = 0; i < n; i++)
			go_spawn(barrier_member, NULL);
		go_wg_wait(&barrier1);
		for (int i = 0; i < n; i++) {
			if (go_chan_tryrecv(exited, NULL) != GO_EMPTY)
				atomic_store(&reuse_bad, 1); /* released too soon */
			go_wg_done(&barrier2);
		}
		for (int i = 0; i < n; i++)
			go_chan_recv(exited, NULL);
	}
	go_chan_free(exited);
	atomic_store(&reuse_done, 1);
}

START_TEST(wg_reused_across_rounds)
{
	int old = go_maxprocs(2);
	atomic_store(&reuse_done, 0);
	atomic_store(&reuse_bad, 0);
	go_spawn(reuse_rounds, NULL);
	ck_assert(wait_flag(&reuse_done, 1, slack(20000 * MS)));
	ck_assert_int_eq(atomic_load(&reuse_bad), 0);
	ck_assert_uint_eq(barrier1.state_, 0);
	ck_assert_uint_eq(barrier2.state_, 0);
	go_maxprocs(old);
}
END_TEST

/* Go's TestWaitGroupRace: no spurious wake-up of Wait. */
static _Atomic int race_n, race_bad, race_done;
static void race_incr(void *arg)
{
	go_wg *wg = arg;
	atomic_fetch_add(&race_n, 1);
	go_wg_done(wg);
}
static void race_rounds(void *arg)
{
	(void)arg;
	for (int i = 0; i < SCALE(5000); i++) {
		go_wg wg = GO_WG_INIT;
		atomic_store(&race_n, 0);
		go_wg_add(&wg, 1);
		go_spawn(race_incr, &wg);
		go_wg_add(&wg, 1);
		go_spawn(race_incr, &wg);
		go_wg_wait(&wg);
		if (atomic_load(&race_n) != 2)
			atomic_store(&race_bad, 1);
	}
	atomic_store(&race_done, 1);
}

START_TEST(wg_no_spurious_wakeup)
{
	int old = go_maxprocs(2);
	go_spawn(race_rounds, NULL);
	ck_assert(wait_flag(&race_done, 1, slack(20000 * MS)));
	ck_assert_int_eq(atomic_load(&race_bad), 0);
	go_maxprocs(old);
}
END_TEST

/* Fatal misuse: in children. */
static void scenario_wg_negative(void)
{
	go_wg wg = GO_WG_INIT;
	go_wg_add(&wg, -1);
	printf("FAIL: survived\n");
}

static go_wg neg_wg;
static void neg_done_twice(void *arg)
{
	(void)arg;
	go_wg_done(&neg_wg);
	go_wg_done(&neg_wg);
}
static void scenario_wg_done_twice(void)
{
	go_wg_add(&neg_wg, 1);
	go_spawn(neg_done_twice, NULL);
	go_sleep(2000 * MS);
	printf("FAIL: survived\n");
}

/* sync.WaitGroup: a waiter released by the counter reaching zero finds
 * the WaitGroup already reused (Add) when it runs: Go panics "WaitGroup is
 * reused before previous Wait has returned". At GOMAXPROCS=1 the released
 * waiter cannot run before the releaser's Add. */
static go_wg reuse_wg;
static void reuse_waiter(void *arg)
{
	(void)arg;
	go_wg_wait(&reuse_wg);
	printf("FAIL: waiter returned\n");
	fflush(stdout);
}
static void reuse_releaser(void *arg)
{
	(void)arg;
	while (wg_waiters(&reuse_wg) == 0)
		go_yield();
	go_wg_done(&reuse_wg); /* releases the waiter (runnable, not running) */
	go_wg_add(&reuse_wg, 1); /* reused at once */
	go_yield();
}
static void scenario_wg_reused_early(void)
{
	go_wg_add(&reuse_wg, 1);
	go_spawn(reuse_waiter, NULL);
	go_spawn(reuse_releaser, NULL);
	go_sleep(2000 * MS);
	printf("FAIL: survived\n");
}

START_TEST(wg_negative_counter_is_fatal)
{
	const char *names[] = { "wg_negative", "wg_done_twice" };
	for (int i = 0; i < 2; i++) {
		struct child_result r;
		run_child(names[i], NULL, &r);
		ck_assert_exit_status(&r, 2);
		ck_assert_output_has(&r, "panic: sync: negative WaitGroup counter");
		ck_assert(strstr(r.out, "FAIL") == NULL);
	}
}
END_TEST

START_TEST(wg_reuse_before_wait_returned_is_fatal)
{
	struct child_result r;
	const char *env[] = { "GOMAXPROCS=1", NULL };
	run_child("wg_reused_early", env, &r);
	ck_assert_exit_status(&r, 2);
	ck_assert_output_has(&r, "panic: sync: WaitGroup is reused before previous Wait has returned");
	ck_assert(strstr(r.out, "FAIL") == NULL);
}
END_TEST

/* ---- contexts: background, cancel ---------------------------------------- */

START_TEST(ctx_background_never_done)
{
	go_ctx *bg = go_ctx_background();
	ck_assert_ptr_nonnull(bg);
	ck_assert_ptr_eq(go_ctx_background(), bg);
	ck_assert_ptr_null(go_ctx_done(bg));
	ck_assert_int_eq(go_ctx_err(bg), 0);
	go_ctx_cancel(bg);
	go_ctx_free(bg);
	go_ctx_free(bg);
	ck_assert_int_eq(go_ctx_err(bg), 0);
	ck_assert_ptr_null(go_ctx_done(bg));
	/* still a parent: a child of it works */
	go_ctx *c = go_ctx_with_cancel(bg);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(go_ctx_err(c), 0);
	go_ctx_cancel(c);
	ck_assert_int_eq(go_ctx_err(c), ECANCELED);
	ck_assert_int_eq(go_ctx_err(bg), 0);
	go_ctx_free(c);
	go_ctx_free(NULL);
}
END_TEST

static go_chan *blocked_done;
static _Atomic int blocked_woke;
static _Atomic int blocked_ok;
static void recv_on_done(void *arg)
{
	(void)arg;
	bool ok = go_chan_recv(blocked_done, NULL);
	atomic_store(&blocked_ok, ok ? 1 : 0);
	atomic_store(&blocked_woke, 1);
}

START_TEST(ctx_cancel_closes_done)
{
	settled_base();
	go_ctx *c = go_ctx_with_cancel(NULL);
	ck_assert_ptr_nonnull(c);
	go_chan *d = go_ctx_done(c);
	ck_assert_ptr_nonnull(d);
	ck_assert_ptr_eq(go_ctx_done(c), d);
	ck_assert_int_eq(go_ctx_err(c), 0);
	ck_assert_int_eq(go_chan_tryrecv(d, NULL), GO_EMPTY);
	/* a goroutine blocks on done */
	blocked_done = d;
	atomic_store(&blocked_woke, 0);
	atomic_store(&blocked_ok, -1);
	go_spawn(recv_on_done, NULL);
	int64_t end = mono_ns() + slack(2000 * MS);
	while (!has_receiver(d) && mono_ns() < end)
		pause_brief();
	ck_assert(has_receiver(d));
	go_sleep(5 * MS);
	ck_assert_int_eq(atomic_load(&blocked_woke), 0);
	go_ctx_cancel(c);
	/* closed when cancel returns */
	ck_assert_int_eq(go_chan_tryrecv(d, NULL), GO_CLOSED);
	ck_assert_int_eq(go_ctx_err(c), ECANCELED);
	ck_assert(wait_flag(&blocked_woke, 1, slack(2000 * MS)));
	ck_assert_int_eq(atomic_load(&blocked_ok), 0); /* woken by the close */
	/* idempotent: a second cancel is no double close */
	go_ctx_cancel(c);
	go_ctx_cancel(c);
	ck_assert_int_eq(go_ctx_err(c), ECANCELED);
	ck_assert_int_eq(go_chan_tryrecv(d, NULL), GO_CLOSED);
	settled_base();
	go_ctx_free(c);
}
END_TEST

/* A tree of three levels below a root, fan-out 4; some nodes have long
 * timeouts. Cancelling an inner node cancels its subtree only; cancelling
 * the root cancels everything, every done closed when cancel returns, and
 * stops the timers. */
#define FAN 4
struct tree {
	go_ctx *root;
	go_ctx *l1[FAN], *l2[FAN][FAN], *l3[FAN][FAN][FAN];
};

static void tree_make(struct tree *t)
{
	t->root = go_ctx_with_cancel(NULL);
	for (int i = 0; i < FAN; i++) {
		t->l1[i] = i == 1 ? go_ctx_with_timeout(t->root, 10000 * MS) : go_ctx_with_cancel(t->root);
		for (int j = 0; j < FAN; j++) {
			t->l2[i][j] = j == 2 ? go_ctx_with_timeout(t->l1[i], 20000 * MS)
			                     : go_ctx_with_cancel(t->l1[i]);
			for (int k = 0; k < FAN; k++)
				t->l3[i][j][k] = k == 3 ? go_ctx_with_timeout(t->l2[i][j], 30000 * MS)
				                        : go_ctx_with_cancel(t->l2[i][j]);
		}
	}
}

static int ctx_state(go_ctx *c)
{
	int r = go_chan_tryrecv(go_ctx_done(c), NULL);
	int err = go_ctx_err(c);
	/* done closed exactly when err is set */
	ck_assert_msg((r == GO_CLOSED) == (err != 0), "done %d with err %d", r, err);
	ck_assert_int_ne(r, GO_OK);
	return err;
}

static void tree_free(struct tree *t)
{
	for (int i = 0; i < FAN; i++) {
		for (int j = 0; j < FAN; j++) {
			for (int k = 0; k < FAN; k++)
				go_ctx_free(t->l3[i][j][k]);
			go_ctx_free(t->l2[i][j]);
		}
		go_ctx_free(t->l1[i]);
	}
	go_ctx_free(t->root);
}

START_TEST(ctx_cancel_tree)
{
	int64_t base = ntimers_live();
	struct tree t;
	tree_make(&t);
	/* (children whose timeout ends after an ancestor's need no timer of
	 * their own, as in Go's WithDeadline) */
	int64_t armed = ntimers_live();
	ck_assert_int_gt(armed, base);
	/* cancel one inner node: its subtree only */
	go_ctx_cancel(t.l2[2][1]);
	for (int i = 0; i < FAN; i++) {
		ck_assert_int_eq(ctx_state(t.l1[i]), 0);
		for (int j = 0; j < FAN; j++) {
			int want = i == 2 && j == 1 ? ECANCELED : 0;
			ck_assert_int_eq(ctx_state(t.l2[i][j]), want);
			for (int k = 0; k < FAN; k++)
				ck_assert_int_eq(ctx_state(t.l3[i][j][k]), want);
		}
	}
	ck_assert_int_eq(ctx_state(t.root), 0);
	ck_assert_int_eq(ntimers_live(), armed - 1); /* l3[2][1][3]'s timer */
	/* cancel the root: all, at once */
	go_ctx_cancel(t.root);
	ck_assert_int_eq(ctx_state(t.root), ECANCELED);
	for (int i = 0; i < FAN; i++) {
		ck_assert_int_eq(ctx_state(t.l1[i]), ECANCELED);
		for (int j = 0; j < FAN; j++) {
			ck_assert_int_eq(ctx_state(t.l2[i][j]), ECANCELED);
			for (int k = 0; k < FAN; k++)
				ck_assert_int_eq(ctx_state(t.l3[i][j][k]), ECANCELED);
		}
	}
	ck_assert_int_eq(ntimers_live(), base);
	tree_free(&t);
	ck_assert_int_eq(ntimers_live(), base);
}
END_TEST

/* Goroutines blocked on every done of a tree are all woken by one
 * cancel of the root. */
static _Atomic int tree_woken;
static void wait_done(void *arg)
{
	go_chan_recv(go_ctx_done(arg), NULL);
	atomic_fetch_add(&tree_woken, 1);
}

START_TEST(ctx_cancel_tree_wakes_waiters)
{
	int old = go_maxprocs(2);
	settled_base();
	struct tree t;
	tree_make(&t);
	atomic_store(&tree_woken, 0);
	int n = 0;
	for (int i = 0; i < FAN; i++)
		for (int j = 0; j < FAN; j++)
			for (int k = 0; k < FAN; k++, n++)
				go_spawn(wait_done, t.l3[i][j][k]);
	for (int i = 0; i < FAN; i++, n++)
		go_spawn(wait_done, t.l1[i]);
	/* all blocked on their done channels */
	int64_t end = mono_ns() + slack(2000 * MS);
	for (int i = 0; i < FAN; i++) {
		while (!has_receiver(go_ctx_done(t.l1[i])) && mono_ns() < end)
			pause_brief();
		ck_assert(has_receiver(go_ctx_done(t.l1[i])));
		for (int j = 0; j < FAN; j++)
			for (int k = 0; k < FAN; k++) {
				go_chan *d = go_ctx_done(t.l3[i][j][k]);
				while (!has_receiver(d) && mono_ns() < end)
					pause_brief();
				ck_assert(has_receiver(d));
			}
	}
	ck_assert_int_eq(atomic_load(&tree_woken), 0);
	go_ctx_cancel(t.root);
	ck_assert(wait_flag(&tree_woken, n, slack(5000 * MS)));
	settled_base();
	tree_free(&t);
	go_maxprocs(old);
}
END_TEST

START_TEST(ctx_child_of_cancelled_parent_born_cancelled)
{
	int64_t base = ntimers_live();
	go_ctx *p = go_ctx_with_cancel(NULL);
	go_ctx_cancel(p);
	go_ctx *c1 = go_ctx_with_cancel(p);
	go_ctx *c2 = go_ctx_with_timeout(p, 10000 * MS);
	ck_assert_int_eq(go_ctx_err(c1), ECANCELED);
	ck_assert_int_eq(go_chan_tryrecv(go_ctx_done(c1), NULL), GO_CLOSED);
	ck_assert_int_eq(go_ctx_err(c2), ECANCELED);
	ck_assert_int_eq(go_chan_tryrecv(go_ctx_done(c2), NULL), GO_CLOSED);
	ck_assert_int_eq(ntimers_live(), base);
	go_ctx *g1 = go_ctx_with_cancel(c1);
	ck_assert_int_eq(go_ctx_err(g1), ECANCELED);
	go_ctx_free(g1);
	go_ctx_free(c1);
	go_ctx_free(c2);
	go_ctx_free(p);

	/* a parent that expired passes on ETIMEDOUT */
	p = go_ctx_with_timeout(NULL, 0);
	ck_assert_int_eq(go_ctx_err(p), ETIMEDOUT);
	c1 = go_ctx_with_cancel(p);
	c2 = go_ctx_with_timeout(p, 10000 * MS);
	ck_assert_int_eq(go_ctx_err(c1), ETIMEDOUT);
	ck_assert_int_eq(go_ctx_err(c2), ETIMEDOUT);
	ck_assert_int_eq(go_chan_tryrecv(go_ctx_done(c2), NULL), GO_CLOSED);
	go_ctx_cancel(c1); /* stays ETIMEDOUT */
	ck_assert_int_eq(go_ctx_err(c1), ETIMEDOUT);
	ck_assert_int_eq(ntimers_live(), base);
	go_ctx_free(c1);
	go_ctx_free(c2);
	go_ctx_free(p);
	ck_assert_int_eq(ntimers_live(), base);
}
END_TEST

/* ---- contexts: timeouts --------------------------------------------------- */

START_TEST(ctx_timeout_expires)
{
	int64_t base = ntimers_live();
	int64_t t0 = go_now();
	go_ctx *c = go_ctx_with_timeout(NULL, 30 * MS);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(go_ctx_err(c), 0);
	ck_assert_int_eq(ntimers_live(), base + 1);
	ck_assert(!go_chan_recv(go_ctx_done(c), NULL));
	int64_t el = go_now() - t0;
	ck_assert_int_ge(el, 30 * MS);
	ck_assert_msg(el < slack(1000 * MS), "30 ms timeout took %lld ms", (long long)(el / MS));
	ck_assert_int_eq(go_ctx_err(c), ETIMEDOUT);
	ck_assert_int_eq(ntimers_live(), base);
	go_ctx_free(c);
}
END_TEST

/* A goroutine blocked on a timeout's done, at GOMAXPROCS 1 and 2. */
static _Atomic int64_t to_woke_at;
static void wait_timeout(void *arg)
{
	go_chan_recv(go_ctx_done(arg), NULL);
	atomic_store(&to_woke_at, go_now());
}
static void timeout_wakes(int procs)
{
	int old = go_maxprocs(procs);
	atomic_store(&to_woke_at, 0);
	int64_t t0 = go_now();
	go_ctx *c = go_ctx_with_timeout(NULL, 20 * MS);
	go_spawn(wait_timeout, c);
	int64_t end = mono_ns() + slack(2000 * MS);
	while (!atomic_load(&to_woke_at) && mono_ns() < end)
		pause_brief();
	ck_assert_int_ge(atomic_load(&to_woke_at) - t0, 20 * MS);
	ck_assert_int_eq(go_ctx_err(c), ETIMEDOUT);
	settled_base();
	go_ctx_free(c);
	go_maxprocs(old);
}
START_TEST(ctx_timeout_wakes_waiter_p1) { timeout_wakes(1); }
END_TEST
START_TEST(ctx_timeout_wakes_waiter_p2) { timeout_wakes(2); }
END_TEST

START_TEST(ctx_first_cause_sticks)
{
	int64_t base = ntimers_live();
	/* timeout first, cancel after */
	go_ctx *a = go_ctx_with_timeout(NULL, 10 * MS);
	ck_assert(!go_chan_recv(go_ctx_done(a), NULL));
	ck_assert_int_eq(go_ctx_err(a), ETIMEDOUT);
	go_ctx_cancel(a);
	ck_assert_int_eq(go_ctx_err(a), ETIMEDOUT);
	go_ctx_free(a);
	/* cancel first, the timeout passes after */
	go_ctx *b = go_ctx_with_timeout(NULL, 10 * MS);
	go_ctx_cancel(b);
	ck_assert_int_eq(go_ctx_err(b), ECANCELED);
	ck_assert_int_eq(ntimers_live(), base); /* its timer stopped */
	go_sleep(30 * MS);
	ck_assert_int_eq(go_ctx_err(b), ECANCELED);
	/* a parent's later cancel does not change an expired child's cause */
	go_ctx *p = go_ctx_with_cancel(NULL);
	go_ctx *c = go_ctx_with_timeout(p, 5 * MS);
	ck_assert(!go_chan_recv(go_ctx_done(c), NULL));
	go_ctx_cancel(p);
	ck_assert_int_eq(go_ctx_err(c), ETIMEDOUT);
	ck_assert_int_eq(go_ctx_err(p), ECANCELED);
	go_ctx_free(c);
	go_ctx_free(p);
	go_ctx_free(b);
	ck_assert_int_eq(ntimers_live(), base);
}
END_TEST

START_TEST(ctx_child_timeout_bounded_by_parent)
{
	int64_t base = ntimers_live();
	int64_t t0 = go_now();
	go_ctx *p = go_ctx_with_timeout(NULL, 30 * MS);
	go_ctx *c = go_ctx_with_timeout(p, 10000 * MS);   /* longer: ends with p */
	go_ctx *g = go_ctx_with_cancel(c);                 /* inherits the deadline */
	go_ctx *s = go_ctx_with_timeout(p, 10 * MS);       /* shorter: ends first */
	ck_assert(!go_chan_recv(go_ctx_done(s), NULL));
	ck_assert_int_eq(go_ctx_err(s), ETIMEDOUT);
	ck_assert_int_ge(go_now() - t0, 10 * MS);
	/* the parent and the long child are not done yet (unless this thread
	 * was delayed past 30 ms) */
	if (go_now() - t0 < 25 * MS) {
		ck_assert_int_eq(go_ctx_err(p), 0);
		ck_assert_int_eq(go_ctx_err(c), 0);
	}
	ck_assert(!go_chan_recv(go_ctx_done(c), NULL));
	int64_t el = go_now() - t0;
	ck_assert_int_ge(el, 30 * MS);
	ck_assert_msg(el < slack(1000 * MS), "child of a 30 ms parent ended after %lld ms",
	              (long long)(el / MS));
	ck_assert_int_eq(go_ctx_err(c), ETIMEDOUT);
	ck_assert_int_eq(go_ctx_err(p), ETIMEDOUT);
	ck_assert_int_eq(go_ctx_err(g), ETIMEDOUT);
	ck_assert_int_eq(go_chan_tryrecv(go_ctx_done(g), NULL), GO_CLOSED);
	ck_assert_int_eq(ntimers_live(), base);
	go_ctx_free(g);
	go_ctx_free(c);
	go_ctx_free(s);
	go_ctx_free(p);
	ck_assert_int_eq(ntimers_live(), base);
}
END_TEST

START_TEST(ctx_free_child_then_parent)
{
	int64_t base = ntimers_live();
	go_ctx *p = go_ctx_with_cancel(NULL);
	go_ctx *c[8];
	for (int i = 0; i < 8; i++)
		c[i] = i % 2 ? go_ctx_with_timeout(p, 10000 * MS) : go_ctx_with_cancel(p);
	/* children freed (in any order) while the parent lives: each freed
	 * child is cancelled and unlinked, its siblings untouched */
	go_ctx_free(c[3]);
	go_ctx_free(c[0]);
	go_ctx_free(c[7]);
	ck_assert_int_eq(go_ctx_err(p), 0);
	for (int i = 0; i < 8; i++)
		if (i != 0 && i != 3 && i != 7)
			ck_assert_int_eq(ctx_state(c[i]), 0);
	/* cancelling the parent reaches the children still linked (a freed
	 * one would be a use after free) */
	go_ctx_cancel(p);
	for (int i = 0; i < 8; i++)
		if (i != 0 && i != 3 && i != 7)
			ck_assert_int_eq(ctx_state(c[i]), ECANCELED);
	for (int i = 1; i < 7; i++)
		if (i != 3)
			go_ctx_free(c[i]);
	go_ctx_free(p);
	ck_assert_int_eq(ntimers_live(), base);

	/* a parent freed first: its children stay valid objects, cancelled
	 * (free cancels, as go_ctx_cancel) and freed later */
	p = go_ctx_with_cancel(NULL);
	go_ctx *a = go_ctx_with_cancel(p);
	go_ctx *b = go_ctx_with_timeout(p, 10000 * MS);
	go_ctx *ga = go_ctx_with_cancel(a);
	go_ctx_free(p);
	ck_assert_int_eq(ctx_state(a), ECANCELED);
	ck_assert_int_eq(ctx_state(b), ECANCELED);
	ck_assert_int_eq(ctx_state(ga), ECANCELED);
	go_ctx_free(a); /* before its own child: ga is detached */
	ck_assert_int_eq(ctx_state(ga), ECANCELED);
	go_ctx_free(ga);
	go_ctx_free(b);
	ck_assert_int_eq(ntimers_live(), base);
}
END_TEST

START_TEST(ctx_free_pending_timeout_stops_timer)
{
	int64_t base = ntimers_live();
	go_ctx *c = go_ctx_with_timeout(NULL, 30 * MS);
	ck_assert_int_eq(ntimers_live(), base + 1);
	go_ctx_free(c);
	ck_assert_int_eq(ntimers_live(), base);
	/* many, with timeouts about to fire while being freed */
	go_ctx *cs[200];
	for (int i = 0; i < 200; i++)
		cs[i] = go_ctx_with_timeout(NULL, (i % 20) * 100 * 1000);
	go_sleep(MS);
	for (int i = 0; i < 200; i++)
		go_ctx_free(cs[i]);
	ck_assert_int_eq(ntimers_live(), base);
	go_sleep(5 * MS); /* nothing fires into freed memory */
	ck_assert_int_eq(ntimers_live(), base);
}
END_TEST

START_TEST(ctx_timeout_nonpositive_born_expired)
{
	int64_t base = ntimers_live();
	int64_t ns[] = { 0, -1, -1000 * MS, INT64_MIN };
	for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
		go_ctx *c = go_ctx_with_timeout(NULL, ns[i]);
		ck_assert_ptr_nonnull(c);
		ck_assert_int_eq(go_ctx_err(c), ETIMEDOUT);
		ck_assert_int_eq(go_chan_tryrecv(go_ctx_done(c), NULL), GO_CLOSED);
		ck_assert_int_eq(ntimers_live(), base);
		go_ctx_cancel(c);
		ck_assert_int_eq(go_ctx_err(c), ETIMEDOUT);
		go_ctx_free(c);
	}
	/* a timeout too far to represent does not overflow into the past */
	go_ctx *c = go_ctx_with_timeout(NULL, INT64_MAX);
	go_sleep(5 * MS);
	ck_assert_int_eq(go_ctx_err(c), 0);
	ck_assert_int_eq(go_chan_tryrecv(go_ctx_done(c), NULL), GO_EMPTY);
	go_ctx *d = go_ctx_with_timeout(c, INT64_MAX - 1);
	ck_assert_int_eq(go_ctx_err(d), 0);
	go_ctx_free(d);
	go_ctx_free(c);
	ck_assert_int_eq(ntimers_live(), base);
}
END_TEST

/* Main waiting on a timeout's done is not a deadlock. */
static void scenario_main_waits_ctx_timeout(void)
{
	go_ctx *c = go_ctx_with_timeout(NULL, 50 * MS);
	go_chan_recv(go_ctx_done(c), NULL);
	printf("expired err=%d\n", go_ctx_err(c));
	go_ctx_free(c);
}

START_TEST(ctx_timeout_wait_is_not_deadlock)
{
	struct child_result r;
	run_child("main_waits_ctx_timeout", NULL, &r);
	ck_assert_exit_status(&r, 0);
	char want[64];
	snprintf(want, sizeof want, "expired err=%d", ETIMEDOUT);
	ck_assert_output_has(&r, want);
}
END_TEST

/* ---- contexts with select -------------------------------------------------- */

/* Workers select on a work channel and a ctx's done at GOMAXPROCS=2; a
 * producer sends items, then cancels. Every item sent is handled once,
 * every worker leaves on done. */
struct pool {
	go_ctx *ctx;
	go_chan *work;
	go_wg wg;
	_Atomic long handled, sum, sent, left_on_done;
	int items;
	bool producer_selects; /* sends in a select with done (timeout run) */
	_Atomic int producer_done;
};

static void pool_worker(void *arg)
{
	struct pool *p = arg;
	for (;;) {
		int v = 0;
		go_case cs[2] = { GO_RECV(p->work, &v), GO_RECV(go_ctx_done(p->ctx), NULL) };
		int i = go_select(cs, 2);
		if (i == 1) {
			if (cs[1].ok)
				abort(); /* done only ever closes */
			atomic_fetch_add(&p->left_on_done, 1);
			break;
		}
		atomic_fetch_add(&p->handled, 1);
		atomic_fetch_add(&p->sum, v);
	}
	go_wg_done(&p->wg);
}

static void pool_producer(void *arg)
{
	struct pool *p = arg;
	for (int v = 1; v <= p->items || p->producer_selects; v++) {
		if (p->producer_selects) {
			go_case cs[2] = { GO_SEND(p->work, &v), GO_RECV(go_ctx_done(p->ctx), NULL) };
			if (go_select(cs, 2) == 1)
				break;
		} else {
			go_chan_send(p->work, &v);
		}
		atomic_fetch_add(&p->sent, 1);
		atomic_fetch_add(&p->sum, -v);
	}
	if (!p->producer_selects)
		go_ctx_cancel(p->ctx);
	atomic_store(&p->producer_done, 1);
}

static void run_pool(bool by_timeout)
{
	int old = go_maxprocs(2);
	settled_base();
	int64_t base = ntimers_live();
	struct pool *p = calloc(1, sizeof *p);
	p->ctx = by_timeout ? go_ctx_with_timeout(NULL, 100 * MS) : go_ctx_with_cancel(NULL);
	p->work = go_chan_make(sizeof(int), 0);
	p->items = SCALE(50000);
	p->producer_selects = by_timeout;
	const int nw = SCALE(200);
	go_wg_add(&p->wg, nw);
	for (int i = 0; i < nw; i++)
		go_spawn(pool_worker, p);
	go_spawn(pool_producer, p);
	ck_assert(wg_wait_bounded(&p->wg, slack(20000 * MS)));
	ck_assert(wait_flag(&p->producer_done, 1, slack(2000 * MS)));
	ck_assert_int_eq(atomic_load(&p->left_on_done), nw);
	ck_assert_int_eq(atomic_load(&p->handled), atomic_load(&p->sent));
	ck_assert_int_eq(atomic_load(&p->sum), 0);
	if (!by_timeout)
		ck_assert_int_eq(atomic_load(&p->sent), p->items);
	else
		ck_assert_int_gt(atomic_load(&p->sent), 0);
	ck_assert_int_eq(go_ctx_err(p->ctx), by_timeout ? ETIMEDOUT : ECANCELED);
	settled_base();
	go_ctx_free(p->ctx);
	go_chan_free(p->work);
	free(p);
	ck_assert(timers_settle(base));
	go_maxprocs(old);
}

START_TEST(ctx_select_workers_cancel) { run_pool(false); }
END_TEST
START_TEST(ctx_select_workers_timeout) { run_pool(true); }
END_TEST

/* Goroutines make, cancel and free children of one parent while it is
 * cancelled: no child is missed (each is cancelled when the parent is,
 * or born cancelled after), nothing is corrupted, no timer is left. */
struct churn {
	go_ctx *parent;
	_Atomic int parent_cancelled;
	_Atomic int missed, done;
	go_wg wg;
};
static void ctx_churner(void *arg)
{
	struct churn *ch = arg;
	uint64_t s = (uint64_t)(uintptr_t)&s;
	for (int i = 0; i < SCALE(3000); i++) {
		go_ctx *c = rng_next(&s) % 2 ? go_ctx_with_cancel(ch->parent)
		                             : go_ctx_with_timeout(ch->parent, (int64_t)(rng_next(&s) % 2000) * 1000);
		go_ctx *g = go_ctx_with_cancel(c);
		bool was = atomic_load(&ch->parent_cancelled);
		if (was && (go_ctx_err(c) == 0 || go_ctx_err(g) == 0))
			atomic_fetch_add(&ch->missed, 1);
		switch (rng_next(&s) % 3) {
		case 0:
			go_ctx_cancel(c);
			if (go_ctx_err(g) == 0)
				atomic_fetch_add(&ch->missed, 1);
			break;
		case 1:
			go_yield();
			break;
		default:
			break;
		}
		if (rng_next(&s) % 2) {
			go_ctx_free(g);
			go_ctx_free(c);
		} else {
			go_ctx_free(c); /* parent first: g is detached */
			go_ctx_free(g);
		}
	}
	go_wg_done(&ch->wg);
}

START_TEST(ctx_concurrent_children_and_cancel)
{
	int old = go_maxprocs(2);
	settled_base();
	int64_t base = ntimers_live();
	struct churn *ch = calloc(1, sizeof *ch);
	ch->parent = go_ctx_with_timeout(NULL, 10000 * MS);
	go_wg_add(&ch->wg, 4);
	for (int i = 0; i < 4; i++)
		go_spawn(ctx_churner, ch);
	go_sleep(20 * MS);
	go_ctx_cancel(ch->parent);
	atomic_store(&ch->parent_cancelled, 1);
	ck_assert(wg_wait_bounded(&ch->wg, slack(20000 * MS)));
	ck_assert_int_eq(atomic_load(&ch->missed), 0);
	go_ctx_free(ch->parent);
	free(ch);
	ck_assert(timers_settle(base));
	go_maxprocs(old);
}
END_TEST

/* go_ctx_free races with a goroutine that a go_select on {work, done}
 * has just chosen for the work case but that has not yet left the select:
 * select still holds the done channel in its cases (it locks every case's
 * channel again to dequeue itself, select.go pass 3). Freeing the channel
 * under that goroutine would be a use after free: go_ctx_free must wait
 * for it. At GOMAXPROCS=1 the chosen goroutine cannot run before main's
 * free unless the free lets it. The freed memory is then reused (poisoned)
 * as any later malloc would: the worker must come out of its select
 * cleanly -- no hang, crash or ASan report. */
static go_chan *race_work;
static go_ctx *race_ctx;
static _Atomic int race_worker_out;
static void select_worker_once(void *arg)
{
	(void)arg;
	int v = 0;
	go_case cs[2] = { GO_RECV(race_work, &v), GO_RECV(go_ctx_done(race_ctx), NULL) };
	int i = go_select(cs, 2);
	printf("worker chose case %d (v=%d)\n", i, v);
	fflush(stdout);
	atomic_store(&race_worker_out, 1);
}
static void scenario_ctx_free_under_select(void)
{
	alarm(4); /* a hang ends the child (SIGALRM) */
	race_ctx = go_ctx_with_cancel(NULL);
	race_work = go_chan_make(sizeof(int), 0);
	go_chan *done = go_ctx_done(race_ctx);
	go_spawn(select_worker_once, NULL);
	while (!has_receiver(done) || !has_receiver(race_work))
		go_yield();
	int v = 7;
	go_chan_send(race_work, &v); /* the worker is chosen, runnable */
	go_ctx_free(race_ctx);       /* frees done under its select */
	void *reuse[16];
	for (int i = 0; i < 16; i++) {
		reuse[i] = malloc(sizeof(struct hchan));
		memset(reuse[i], 0xA5, sizeof(struct hchan));
	}
	int64_t end = mono_ns() + 2000 * MS;
	while (!atomic_load(&race_worker_out) && mono_ns() < end)
		pause_brief();
	printf(atomic_load(&race_worker_out) ? "worker out\n" : "worker stuck\n");
	for (int i = 0; i < 16; i++)
		free(reuse[i]);
}

START_TEST(ctx_free_under_select_is_safe)
{
	struct child_result r;
	const char *env[] = { "GOMAXPROCS=1", NULL };
	run_child("ctx_free_under_select", env, &r);
	bool fatal_exit = WIFEXITED(r.status) && WEXITSTATUS(r.status) == 2 &&
	                  (strstr(r.out, "fatal error: ") || strstr(r.out, "panic: "));
	bool clean = WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0 &&
	             strstr(r.out, "worker chose case 0 (v=7)") && strstr(r.out, "worker out");
	/* go_chan_free waits for goroutines woken from the channel (hchan
	 * nref), so the free is safe: the worker must come out cleanly. */
	(void)fatal_exit;
	ck_assert_msg(clean,
	              "go_ctx_free under a select that holds the done channel: child status 0x%x "
	              "(not a clean exit); output:\n%s",
	              r.status, out_tail(&r));
}
END_TEST

/* A child freed while its parent is freed from another goroutine: the
 * tree's links must not lead the child's free into the parent's freed
 * memory (ASan reports it; natively it corrupts the heap). Children are
 * freed before parents in the documented order, so the two frees race
 * only in a program that breaks it -- the header still promises that a
 * parent freed first detaches its children. */
static go_ctx *race_parent_ctx;
static _Atomic int race_child_freed;
static void free_child(void *arg)
{
	go_ctx_free(arg);
	atomic_store(&race_child_freed, 1);
}

START_TEST(ctx_parent_and_child_freed_concurrently)
{
	int old = go_maxprocs(2);
	settled_base();
	for (int i = 0; i < SCALE(2000); i++) {
		race_parent_ctx = go_ctx_with_cancel(NULL);
		go_ctx *child = go_ctx_with_timeout(race_parent_ctx, 1000 * MS);
		atomic_store(&race_child_freed, 0);
		go_spawn(free_child, child);
		go_ctx_free(race_parent_ctx);
		while (!atomic_load(&race_child_freed))
			go_yield();
	}
	settled_base();
	go_maxprocs(old);
}
END_TEST

/* Last: nothing left pending. */
START_TEST(no_timers_left)
{
	settled_base();
	ck_assert(timers_settle(0));
}
END_TEST

static const struct scenario scenarios[] = {
	{ "wg_negative", scenario_wg_negative },
	{ "wg_done_twice", scenario_wg_done_twice },
	{ "wg_reused_early", scenario_wg_reused_early },
	{ "main_waits_ctx_timeout", scenario_main_waits_ctx_timeout },
	{ "ctx_free_under_select", scenario_ctx_free_under_select },
	{ NULL, NULL },
};

static Suite *sync_suite(void)
{
	Suite *s = suite_create("sync");
	TCase *wg = tcase_create("waitgroup");
	tcase_set_timeout(wg, 300);
	tcase_add_test(wg, wg_zero_values_are_empty);
	tcase_add_test(wg, wg_many_goroutines_p1);
	tcase_add_test(wg, wg_many_goroutines_p2);
	tcase_add_test(wg, wg_multiple_waiters_released_p1);
	tcase_add_test(wg, wg_multiple_waiters_released_p2);
	tcase_add_test(wg, wg_reused_across_rounds);
	tcase_add_test(wg, wg_no_spurious_wakeup);
	tcase_add_test(wg, wg_negative_counter_is_fatal);
	tcase_add_test(wg, wg_reuse_before_wait_returned_is_fatal);
	suite_add_tcase(s, wg);
	TCase *ctx = tcase_create("context");
	tcase_set_timeout(ctx, 300);
	tcase_add_test(ctx, ctx_background_never_done);
	tcase_add_test(ctx, ctx_cancel_closes_done);
	tcase_add_test(ctx, ctx_cancel_tree);
	tcase_add_test(ctx, ctx_cancel_tree_wakes_waiters);
	tcase_add_test(ctx, ctx_child_of_cancelled_parent_born_cancelled);
	tcase_add_test(ctx, ctx_timeout_expires);
	tcase_add_test(ctx, ctx_timeout_wakes_waiter_p1);
	tcase_add_test(ctx, ctx_timeout_wakes_waiter_p2);
	tcase_add_test(ctx, ctx_first_cause_sticks);
	tcase_add_test(ctx, ctx_child_timeout_bounded_by_parent);
	tcase_add_test(ctx, ctx_free_child_then_parent);
	tcase_add_test(ctx, ctx_free_pending_timeout_stops_timer);
	tcase_add_test(ctx, ctx_timeout_nonpositive_born_expired);
	tcase_add_test(ctx, ctx_timeout_wait_is_not_deadlock);
	tcase_add_test(ctx, ctx_select_workers_cancel);
	tcase_add_test(ctx, ctx_select_workers_timeout);
	tcase_add_test(ctx, ctx_concurrent_children_and_cancel);
	tcase_add_test(ctx, ctx_parent_and_child_freed_concurrently);
	tcase_add_test(ctx, no_timers_left);
	/* Last: a failed check longjmps on main's stack, and under ASan that
	 * leaves stale stack poisoning after goroutine switches (the runtime
	 * gives ASan no bounds for an adopted thread's stack). */
	tcase_add_test(ctx, ctx_free_under_select_is_safe);
	suite_add_tcase(s, ctx);
	return s;
}

int main(int argc, char **argv)
{
	return test_main(argc, argv, sync_suite, scenarios);
}
