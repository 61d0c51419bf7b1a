/* Time: go_now, go_sleep, go_after, tickers; timers are not deadlocks;
 * timers survive GOMAXPROCS changes; no timer is left behind
 * (ntimers_live). Scenarios that must run at a given GOMAXPROCS, or that
 * end the process, run in child processes of this suite. */
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

/* Slow builds (sanitizers, emulators) get more slack on upper bounds of
 * lateness; lower bounds (never early) are exact everywhere. */
static int64_t slack(int64_t ns)
{
	const char *d = getenv("TEST_SCALE");
	int64_t k = d && atoi(d) > 1 ? 5 : 1;
#if defined(GOSHIM_TSAN) || defined(GOSHIM_ASAN)
	k = 5;
#endif
	return ns * k;
}

/* Waits until only the main goroutine is left and returns that count. */
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

/* A pause of main's that needs no timer and leaves its P to others (main
 * is locked to its thread: in plain C code it would keep its P). */
static void pause_brief(void)
{
	go_yield();
	usleep(100);
}

/* Waits (without timers: the clock is polled) until ntimers_live() is
 * want; false after 2 s. */
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

/* go_wg_wait with a bound that does not depend on timers: a goroutine
 * waits on wg, main polls its flag. False if wg did not reach zero in
 * timeout_ns (the waiter is then left behind: the test fails anyway). */
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
	int64_t end = mono_ns() + timeout_ns;
	while (!atomic_load(&w->done)) {
		if (mono_ns() > end)
			return false; /* w leaks: the watcher may still use it */
		pause_brief();
	}
	/* The watcher has set done and does not touch w again. */
	free(w);
	return true;
}

static uint64_t rng_next(uint64_t *s)
{
	*s = *s * 6364136223846793005ull + 1442695040888963407ull;
	return *s >> 33;
}

/* ---- go_now, go_sleep --------------------------------------------------- */

START_TEST(now_is_monotonic_clock)
{
	int64_t prev = go_now();
	ck_assert_int_gt(prev, 0);
	for (int i = 0; i < 200000; i++) {
		int64_t n = go_now();
		ck_assert_int_ge(n, prev);
		prev = n;
	}
	/* It is CLOCK_MONOTONIC: bracketed by direct reads. */
	for (int i = 0; i < 1000; i++) {
		int64_t a = mono_ns(), n = go_now(), b = mono_ns();
		ck_assert_int_le(a, n);
		ck_assert_int_le(n, b);
	}
	/* and it advances */
	int64_t a = go_now();
	usleep(2000);
	ck_assert_int_ge(go_now() - a, 2 * MS);
}
END_TEST

START_TEST(sleep_nonpositive_returns_at_once)
{
	int64_t base = ntimers_live();
	int64_t t0 = go_now();
	for (int i = 0; i < 1000; i++) {
		go_sleep(0);
		go_sleep(-1);
		go_sleep(INT64_MIN);
	}
	/* At once: no timer was made (how fast is scripts/bench's business). */
	ck_assert_int_eq(ntimers_live(), base);
	/* a positive sleep on main (a locked thread) does sleep */
	t0 = go_now();
	go_sleep(20 * MS);
	ck_assert_int_ge(go_now() - t0, 20 * MS);
	t0 = go_now();
	go_sleep(1);
	ck_assert_int_ge(go_now() - t0, 1);
	ck_assert(timers_settle(base));
}
END_TEST

/* N goroutines each sleep a random 1-50 ms: none wakes early, all wake
 * (how late is timer_p99 in scripts/bench: a shared machine's load makes
 * any bound here flaky). Runs in a child at the GOMAXPROCS of its
 * environment. */
static go_wg sleepers_wg;
static _Atomic int sleepers_woke, sleepers_early;
static _Atomic int64_t sleepers_maxlate;
static void sleeper(void *arg)
{
	int64_t ns = (int64_t)(intptr_t)arg;
	int64_t t0 = go_now();
	go_sleep(ns);
	int64_t el = go_now() - t0;
	if (el < ns)
		atomic_fetch_add(&sleepers_early, 1);
	int64_t late = el - ns, m = atomic_load(&sleepers_maxlate);
	while (late > m && !atomic_compare_exchange_weak(&sleepers_maxlate, &m, late))
		;
	atomic_fetch_add(&sleepers_woke, 1);
	go_wg_done(&sleepers_wg);
}

static void spawn_sleepers(void *arg)
{
	int n = (int)(intptr_t)arg;
	uint64_t s = (uint64_t)mono_ns();
	for (int i = 0; i < n; i++) {
		int64_t ns = (int64_t)(1 + rng_next(&s) % 50) * MS + (int64_t)(rng_next(&s) % MS);
		if (go_spawn(sleeper, (void *)(intptr_t)ns) != 0) {
			printf("spawn failed\n");
			exit(1);
		}
	}
}

static void scenario_sleepers(void)
{
	const int n = SCALE(10000);
	int64_t base = ntimers_live();
	go_wg_add(&sleepers_wg, n);
	int64_t t0 = go_now();
	/* spawned from a goroutine: main is a locked thread */
	go_spawn(spawn_sleepers, (void *)(intptr_t)n);
	bool all = wg_wait_bounded(&sleepers_wg, slack(30000 * MS));
	int64_t el = go_now() - t0;
	printf("procs=%d n=%d woke=%d early=%d maxlate_ms=%lld total_ms=%lld\n", go_maxprocs(0), n,
	       atomic_load(&sleepers_woke), atomic_load(&sleepers_early),
	       (long long)(atomic_load(&sleepers_maxlate) / MS), (long long)(el / MS));
	if (!all || atomic_load(&sleepers_woke) != n || atomic_load(&sleepers_early) != 0) {
		printf("FAIL: not all woke, or some woke early\n");
		exit(1);
	}
	if (!timers_settle(base)) {
		printf("FAIL: %lld timers left (base %lld)\n", (long long)ntimers_live(), (long long)base);
		exit(1);
	}
	printf("sleepers ok\n");
}

static void sleepers_at(const char *procs_env, const char *want)
{
	struct child_result r;
	const char *env[] = { procs_env, NULL };
	run_child("sleepers", env, &r);
	ck_assert_exit_status(&r, 0);
	ck_assert_output_has(&r, want);
	ck_assert_output_has(&r, "sleepers ok");
}

START_TEST(ten_thousand_sleepers_p1) { sleepers_at("GOMAXPROCS=1", "procs=1 "); }
END_TEST
START_TEST(ten_thousand_sleepers_p2) { sleepers_at("GOMAXPROCS=2", "procs=2 "); }
END_TEST

/* A sleep of INT64_MAX (when overflows) never ends; a go_after(INT64_MAX)
 * never fires. In a child: the sleeper never ends. */
static _Atomic int forever_woke;
static void sleep_forever(void *arg)
{
	(void)arg;
	go_sleep(INT64_MAX);
	atomic_store(&forever_woke, 1);
}
static void scenario_sleep_overflow(void)
{
	go_spawn(sleep_forever, NULL);
	go_spawn(sleep_forever, NULL);
	go_chan *c = go_after(INT64_MAX);
	go_sleep(100 * MS);
	if (atomic_load(&forever_woke) || go_chan_tryrecv(c, NULL) != GO_EMPTY) {
		printf("FAIL: an INT64_MAX timer fired\n");
		exit(1);
	}
	go_chan_free(c);
	printf("overflow ok\n");
	fflush(stdout);
	exit(0);
}

START_TEST(huge_durations_never_fire)
{
	struct child_result r;
	run_child("sleep_overflow", NULL, &r);
	ck_assert_exit_status(&r, 0);
	ck_assert_output_has(&r, "overflow ok");
}
END_TEST

/* ---- go_after ------------------------------------------------------------- */

START_TEST(after_delivers_once)
{
	int64_t base = ntimers_live();
	int64_t t0 = go_now();
	go_chan *c = go_after(30 * MS);
	ck_assert_ptr_nonnull(c);
	ck_assert_uint_eq(go_chan_cap(c), 1);
	ck_assert_int_eq(ntimers_live(), base + 1);
	ck_assert_int_eq(go_chan_tryrecv(c, NULL), GO_EMPTY);
	int64_t v = 0;
	ck_assert(go_chan_recv(c, &v));
	int64_t t1 = go_now();
	ck_assert_int_ge(v, t0 + 30 * MS);
	ck_assert_int_le(v, t1);
	ck_assert_int_ge(t1 - t0, 30 * MS);
	ck_assert_int_eq(ntimers_live(), base);
	/* once: nothing more comes, and the channel is not closed */
	go_sleep(60 * MS);
	ck_assert_int_eq(go_chan_tryrecv(c, &v), GO_EMPTY);
	ck_assert_uint_eq(go_chan_len(c), 0);
	go_chan_free(c);
	ck_assert_int_eq(ntimers_live(), base);
}
END_TEST

START_TEST(after_zero_fires_promptly)
{
	int64_t base = ntimers_live();
	int64_t delays[] = { 0, -1, -1000000000, INT64_MIN, 1 };
	for (size_t i = 0; i < sizeof delays / sizeof delays[0]; i++) {
		int64_t t0 = go_now(), v = 0;
		go_chan *c = go_after(delays[i]);
		ck_assert_ptr_nonnull(c);
		ck_assert(go_chan_recv(c, &v));
		int64_t t1 = go_now();
		ck_assert_int_ge(v, t0);
		ck_assert_int_le(v, t1);
		go_chan_free(c);
	}
	/* without anyone blocked on it, it is in the buffer promptly too */
	go_chan *c = go_after(0);
	int64_t end = mono_ns() + slack(10000 * MS); /* a hang, not a speed bound */
	while (go_chan_len(c) == 0 && mono_ns() < end)
		go_yield();
	ck_assert_uint_eq(go_chan_len(c), 1);
	go_chan_free(c);
	ck_assert(timers_settle(base));
}
END_TEST

START_TEST(after_free_before_fire_cancels)
{
	int64_t base = ntimers_live();
	go_chan *c = go_after(50 * MS);
	ck_assert_int_eq(ntimers_live(), base + 1);
	go_chan_free(c);
	ck_assert_int_eq(ntimers_live(), base);
	/* many, freed in another order than made */
	go_chan *cs[256];
	for (int i = 0; i < 256; i++)
		cs[i] = go_after((20 + i % 30) * MS);
	ck_assert_int_eq(ntimers_live(), base + 256);
	for (int i = 255; i >= 0; i -= 2)
		go_chan_free(cs[i]);
	for (int i = 0; i < 256; i += 2)
		go_chan_free(cs[i]);
	ck_assert_int_eq(ntimers_live(), base);
	/* past their time nothing fires into freed memory */
	go_sleep(80 * MS);
	ck_assert_int_eq(ntimers_live(), base);
}
END_TEST

/* At GOMAXPROCS=2: channels made by one goroutine and freed by another
 * (other P, other heap) around the time they fire: the free waits out a
 * timer function in progress. ASan would see a use after free. */
static go_chan *_Atomic handoff[64];
static go_wg race_wg;
static void after_maker(void *arg)
{
	uint64_t s = (uint64_t)(uintptr_t)arg;
	for (int i = 0; i < 3000; i++) {
		go_chan *c = go_after((int64_t)(rng_next(&s) % 300) * 1000);
		int k = (int)(rng_next(&s) % 64);
		go_chan *old = atomic_exchange(&handoff[k], c);
		if (old)
			go_chan_free(old);
		if (i % 16 == 0)
			go_yield();
	}
	go_wg_done(&race_wg);
}
static void after_freer(void *arg)
{
	uint64_t s = (uint64_t)(uintptr_t)arg;
	for (int i = 0; i < 3000; i++) {
		int k = (int)(rng_next(&s) % 64);
		go_chan *old = atomic_exchange(&handoff[k], NULL);
		if (old) {
			/* either it fired or not: never more than one value */
			go_chan_tryrecv(old, NULL);
			go_chan_free(old);
		}
		for (volatile int j = 0; j < 200; j++)
			;
	}
	go_wg_done(&race_wg);
}

START_TEST(after_free_races_with_firing)
{
	int old = go_maxprocs(2);
	settled_base();
	int64_t base = ntimers_live();
	go_wg_add(&race_wg, 4);
	go_spawn(after_maker, (void *)(uintptr_t)1);
	go_spawn(after_maker, (void *)(uintptr_t)2);
	go_spawn(after_freer, (void *)(uintptr_t)3);
	go_spawn(after_freer, (void *)(uintptr_t)4);
	ck_assert(wg_wait_bounded(&race_wg, slack(20000 * MS)));
	for (int k = 0; k < 64; k++) {
		go_chan *c = atomic_exchange(&handoff[k], NULL);
		go_chan_free(c);
	}
	ck_assert_int_eq(ntimers_live(), base);
	go_maxprocs(old);
}
END_TEST

/* ---- tickers -------------------------------------------------------------- */

START_TEST(ticker_new_invalid)
{
	errno = 0;
	ck_assert_ptr_null(go_ticker_new(0));
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_ptr_null(go_ticker_new(-1));
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_ptr_null(go_ticker_new(INT64_MIN));
	ck_assert_int_eq(errno, EINVAL);
	go_ticker_free(NULL);
}
END_TEST

START_TEST(ticker_ticks_at_period)
{
	int64_t base = ntimers_live();
	const int64_t period = 20 * MS;
	int64_t t0 = go_now();
	go_ticker *t = go_ticker_new(period);
	ck_assert_ptr_nonnull(t);
	go_chan *c = go_ticker_chan(t);
	ck_assert_ptr_nonnull(c);
	ck_assert_uint_eq(go_chan_cap(c), 1);
	ck_assert_int_eq(ntimers_live(), base + 1);
	int64_t prev = t0;
	for (int i = 1; i <= 5; i++) {
		int64_t v;
		ck_assert(go_chan_recv(c, &v));
		/* tick i is due at t0 + i*period at the earliest */
		ck_assert_msg(v >= t0 + i * period, "tick %d at +%lld us", i, (long long)((v - t0) / 1000));
		ck_assert_int_gt(v, prev);
		ck_assert_int_le(v, go_now());
		prev = v;
	}
	int64_t el = go_now() - t0;
	ck_assert_int_ge(el, 5 * period);
	ck_assert_int_eq(ntimers_live(), base + 1); /* a ticker stays pending */
	go_ticker_free(t);
	ck_assert_int_eq(ntimers_live(), base);
}
END_TEST

START_TEST(ticker_drops_ticks_for_slow_receiver)
{
	int64_t base = ntimers_live();
	const int64_t period = 10 * MS;
	int64_t t0 = go_now();
	go_ticker *t = go_ticker_new(period);
	go_chan *c = go_ticker_chan(t);
	go_sleep(10 * period + period / 2);
	int64_t t1 = go_now();
	/* ten periods passed: one tick is buffered, the rest were dropped */
	ck_assert_uint_eq(go_chan_len(c), 1);
	int64_t v;
	ck_assert_int_eq(go_chan_tryrecv(c, &v), GO_OK);
	/* the one kept is the first, not a late one */
	ck_assert_int_ge(v, t0 + period);
	ck_assert_msg(v < t0 + period + slack(5 * period), "kept tick at +%lld ms",
	              (long long)((v - t0) / MS));
	/* the next comes within about a period, on the ticker's phase: no
	 * backlog of dropped ticks is delivered */
	int64_t v2, v3;
	ck_assert(go_chan_recv(c, &v2));
	ck_assert_int_ge(v2, t1);
	ck_assert_msg(v2 - t1 < period + slack(100 * MS), "next tick %lld ms after the sleep",
	              (long long)((v2 - t1) / MS));
	ck_assert(go_chan_recv(c, &v3));
	ck_assert_int_ge(v3, v2);
	/* v3 is a separate tick, due a period after v2's */
	ck_assert_int_ge(v3 - t0, 12 * period);
	go_ticker_free(t);
	ck_assert_int_eq(ntimers_live(), base);
}
END_TEST

START_TEST(ticker_stop_stops_ticks)
{
	int64_t base = ntimers_live();
	const int64_t period = 10 * MS;
	go_ticker *t = go_ticker_new(period);
	go_chan *c = go_ticker_chan(t);
	ck_assert(go_chan_recv(c, NULL));
	ck_assert(go_chan_recv(c, NULL));
	go_ticker_stop(t);
	ck_assert_int_eq(ntimers_live(), base);
	/* one tick may have been buffered before the stop */
	size_t buffered = go_chan_len(c);
	ck_assert_uint_le(buffered, 1);
	go_sleep(3 * period);
	ck_assert_uint_eq(go_chan_len(c), buffered);
	if (buffered)
		ck_assert_int_eq(go_chan_tryrecv(c, NULL), GO_OK);
	go_sleep(3 * period);
	/* no tick, and the channel stays open (Go does not close it) */
	ck_assert_int_eq(go_chan_tryrecv(c, NULL), GO_EMPTY);
	go_ticker_stop(t); /* again: harmless */
	ck_assert_int_eq(ntimers_live(), base);
	go_ticker_free(t);

	/* a stopped ticker with a tick left: the tick stays */
	t = go_ticker_new(MS);
	c = go_ticker_chan(t);
	go_sleep(5 * MS);
	go_ticker_stop(t);
	ck_assert_uint_eq(go_chan_len(c), 1);
	go_sleep(5 * MS);
	ck_assert_int_eq(go_chan_tryrecv(c, NULL), GO_OK);
	ck_assert_int_eq(go_chan_tryrecv(c, NULL), GO_EMPTY);
	go_ticker_free(t);
	ck_assert_int_eq(ntimers_live(), base);
}
END_TEST

/* go_ticker_stop while the tick is being sent by another thread: Go (both
 * the 1.23 channel timers, through t.seq, and earlier ones, whose deltimer
 * waited for a running timer) guarantees that no value is sent after Stop
 * returns. A producer goroutine makes tickers (their timers go to its P's
 * heap and its M fires them between its yields); the stopper spins in C
 * code, catches the timer function in flight (timer.running) and stops
 * the ticker at that moment: the channel must not gain a tick after
 * go_ticker_stop returned. */
static _Atomic int stop_races, late_ticks, stop_tries, stop_quit, stop_want;
static go_ticker *_Atomic stop_published;
static go_wg stop_wg;

static void ticker_producer(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop_quit)) {
		if (atomic_exchange(&stop_want, 0)) {
			/* A stopper that gave up waiting asks again: a ticker it
			 * never took must not be overwritten (and leaked). */
			go_ticker *t = go_ticker_new(300 * 1000), *none = NULL;
			if (!atomic_compare_exchange_strong(&stop_published, &none, t))
				go_ticker_free(t);
		}
		go_yield();
	}
	go_wg_done(&stop_wg);
}

static void ticker_stopper(void *arg)
{
	(void)arg;
	/* until 20 stops caught a tick in flight, or 3 s */
	int64_t stop_at = go_now() + slack(3000 * MS);
	while (atomic_load(&stop_races) < 20 && go_now() < stop_at) {
		atomic_store(&stop_want, 1);
		go_ticker *t;
		int64_t end = go_now() + 100 * MS;
		while (!(t = atomic_exchange(&stop_published, NULL)) && go_now() < end)
			;
		if (!t)
			continue;
		go_chan *c = go_ticker_chan(t);
		struct timer *tm = ((struct hchan *)c)->timer;
		end = go_now() + 5 * MS;
		while (atomic_load(&tm->running) == 0 && go_chan_len(c) == 0 && go_now() < end)
			;
		go_ticker_stop(t);
		size_t len0 = go_chan_len(c);
		int64_t until = go_now() + MS;
		while (go_now() < until)
			;
		atomic_fetch_add(&stop_tries, 1);
		if (len0 == 0)
			atomic_fetch_add(&stop_races, 1);
		if (go_chan_len(c) > len0)
			atomic_fetch_add(&late_ticks, 1);
		go_ticker_free(t);
	}
	atomic_store(&stop_quit, 1);
	go_wg_done(&stop_wg);
}

START_TEST(ticker_stop_no_tick_after_return)
{
	int old = go_maxprocs(2);
	settled_base();
	int64_t base = ntimers_live();
	go_wg_add(&stop_wg, 2);
	go_spawn(ticker_stopper, NULL);
	go_spawn(ticker_producer, NULL);
	go_wg_wait(&stop_wg);
	go_ticker_free(atomic_exchange(&stop_published, NULL));
	go_maxprocs(old);
	ck_assert_int_eq(ntimers_live(), base);
	ck_assert_msg(atomic_load(&late_ticks) == 0,
	              "%d of %d stopped tickers got a tick after go_ticker_stop returned (%d had "
	              "an empty channel when stopped)",
	              atomic_load(&late_ticks), atomic_load(&stop_tries), atomic_load(&stop_races));
}
END_TEST

/* ---- timers and deadlock detection ---------------------------------------- */

static void scenario_main_sleeps(void)
{
	go_sleep(50 * MS);
	printf("slept\n");
}

static void scenario_main_waits_after(void)
{
	go_chan *c = go_after(50 * MS);
	int64_t v;
	if (!go_chan_recv(c, &v))
		exit(1);
	go_chan_free(c);
	printf("after fired\n");
}

static void scenario_main_waits_ticker(void)
{
	go_ticker *t = go_ticker_new(20 * MS);
	for (int i = 0; i < 3; i++)
		go_chan_recv(go_ticker_chan(t), NULL);
	go_ticker_free(t);
	printf("ticked\n");
}

static go_chan *sleeping_sender_ch;
static void block_on_nil(void *arg)
{
	(void)arg;
	go_chan_recv(NULL, NULL); /* a nil channel: forever */
}
static void sleeping_sender(void *arg)
{
	(void)arg;
	go_sleep(50 * MS);
	int v = 42;
	go_chan_send(sleeping_sender_ch, &v);
}
static void scenario_sleeping_sender(void)
{
	sleeping_sender_ch = go_chan_make(sizeof(int), 0);
	/* every other goroutine blocked forever, one asleep on a timer */
	for (int i = 0; i < 3; i++)
		go_spawn(block_on_nil, NULL);
	go_spawn(sleeping_sender, NULL);
	int v = 0;
	go_chan_recv(sleeping_sender_ch, &v);
	printf("received %d\n", v);
}

static go_chan *never_ch;
static void block_forever(void *arg)
{
	(void)arg;
	go_chan_recv(never_ch, NULL);
}
static void scenario_all_blocked(void)
{
	never_ch = go_chan_make(sizeof(int), 0);
	for (int i = 0; i < 4; i++)
		go_spawn(block_forever, NULL);
	go_chan_recv(never_ch, NULL);
	printf("FAIL: woke up\n");
}

/* Timers that fired, were freed or stopped keep nobody alive. */
static void scenario_all_blocked_after_timers(void)
{
	never_ch = go_chan_make(sizeof(int), 0);
	go_sleep(10 * MS);
	go_chan *a = go_after(10 * MS);
	go_chan_recv(a, NULL);
	go_chan *b = go_after(10 * 1000 * MS);
	go_chan_free(b);
	go_ticker *t = go_ticker_new(5 * MS);
	go_chan_recv(go_ticker_chan(t), NULL);
	go_ticker_stop(t); /* stopped, not freed: no more ticks can come */
	for (int i = 0; i < 4; i++)
		go_spawn(block_forever, NULL);
	go_chan_recv(never_ch, NULL);
	printf("FAIL: woke up\n");
}

static void expect_clean_exit(const char *name, const char *procs, const char *want)
{
	struct child_result r;
	const char *env[] = { procs, NULL };
	run_child(name, env, &r);
	ck_assert_exit_status(&r, 0);
	ck_assert_output_has(&r, want);
}

static void expect_deadlock(const char *name, const char *procs)
{
	struct child_result r;
	const char *env[] = { procs, NULL };
	run_child(name, env, &r);
	ck_assert_exit_status(&r, 2);
	ck_assert_output_has(&r, "fatal error: all goroutines are asleep - deadlock!");
	ck_assert(strstr(r.out, "FAIL") == NULL);
}

START_TEST(timer_wait_is_not_deadlock)
{
	const char *procs[] = { "GOMAXPROCS=1", "GOMAXPROCS=2" };
	for (int i = 0; i < 2; i++) {
		expect_clean_exit("main_sleeps", procs[i], "slept");
		expect_clean_exit("main_waits_after", procs[i], "after fired");
		expect_clean_exit("main_waits_ticker", procs[i], "ticked");
		expect_clean_exit("sleeping_sender", procs[i], "received 42");
	}
}
END_TEST

START_TEST(blocked_forever_is_deadlock)
{
	const char *procs[] = { "GOMAXPROCS=1", "GOMAXPROCS=2" };
	for (int i = 0; i < 2; i++) {
		expect_deadlock("all_blocked", procs[i]);
		expect_deadlock("all_blocked_after_timers", procs[i]);
	}
}
END_TEST

/* ---- timers across GOMAXPROCS changes -------------------------------------- */

/* Goroutines sleep or wait on go_after; then GOMAXPROCS changes under
 * them (a shrink moves P1's heap to P0): every timer still fires, none
 * early. For a shrink, sleepers are added in batches until P1's heap
 * holds some of their timers. */
static go_wg resize_wg;
static _Atomic int resize_parked, resize_early, resize_woke;
static void resize_sleeper(void *arg)
{
	int64_t wake_at = (int64_t)(intptr_t)arg;
	/* 200 us of work first, so that both Ps pick sleepers up */
	int64_t spin = mono_ns() + 200 * 1000;
	while (mono_ns() < spin)
		;
	int64_t ns = wake_at - go_now();
	atomic_fetch_add(&resize_parked, 1);
	if (wake_at % 2) {
		go_sleep(ns);
	} else {
		go_chan *c = go_after(ns);
		go_chan_recv(c, NULL);
		go_chan_free(c);
	}
	if (go_now() < wake_at)
		atomic_fetch_add(&resize_early, 1);
	atomic_fetch_add(&resize_woke, 1);
	go_wg_done(&resize_wg);
}

struct batch { int64_t wake_at; int n; };
static void spawn_batch(void *arg)
{
	struct batch *b = arg;
	for (int i = 0; i < b->n; i++)
		go_spawn(resize_sleeper, (void *)(intptr_t)(b->wake_at + i * 1000 + (i % 2)));
}

static void timers_across_resize(int from, int to, bool flip)
{
	go_maxprocs(from);
	settled_base();
	int64_t base = ntimers_live();
	const int per = SCALE(50);
	int n = 0;
	atomic_store(&resize_parked, 0);
	atomic_store(&resize_early, 0);
	atomic_store(&resize_woke, 0);
	int64_t wake_at = go_now() + 400 * MS;
	static struct batch b[20];
	for (int batch = 0; batch < 20; batch++) {
		b[batch] = (struct batch){ wake_at + batch * MS, per };
		go_wg_add(&resize_wg, per);
		n += per;
		go_spawn(spawn_batch, &b[batch]);
		/* all asleep on their timers */
		int64_t end = mono_ns() + slack(2000 * MS);
		while ((atomic_load(&resize_parked) < n || ntimers_live() < base + n) &&
		       mono_ns() < end)
			pause_brief();
		ck_assert_int_eq(ntimers_live(), base + n);
		if (from == 1 || (timers_wakeTime(allp[0]) && timers_wakeTime(allp[1])))
			break;
	}
	ck_assert_int_eq(atomic_load(&resize_woke), 0);
	ck_assert_int_eq(ntimers_live(), base + n);
	if (from == 2)
		ck_assert_msg(timers_wakeTime(allp[1]) != 0, "no timer landed on P1");
	ck_assert_msg(go_now() < wake_at, "setting up took too long: the test is void");
	go_maxprocs(to);
	if (to == 1 && !flip)
		ck_assert_int_eq(timers_wakeTime(allp[1]), 0); /* moved to P0 */
	if (flip) {
		for (int k = 0; k < 20; k++) {
			go_maxprocs(k % 2 ? 2 : 1);
			usleep(1000);
		}
	}
	ck_assert(wg_wait_bounded(&resize_wg, slack(10000 * MS)));
	ck_assert_int_eq(atomic_load(&resize_woke), n);
	ck_assert_int_eq(atomic_load(&resize_early), 0);
	ck_assert(timers_settle(base));
}

START_TEST(timers_fire_after_shrink)
{
	int old = go_maxprocs(0);
	timers_across_resize(2, 1, false);
	go_maxprocs(old);
}
END_TEST
START_TEST(timers_fire_after_grow)
{
	int old = go_maxprocs(0);
	timers_across_resize(1, 2, false);
	go_maxprocs(old);
}
END_TEST
START_TEST(timers_fire_while_maxprocs_flips)
{
	int old = go_maxprocs(0);
	timers_across_resize(2, 1, true);
	go_maxprocs(old);
}
END_TEST

/* A ticker made on P1 keeps ticking after P1 goes away. */
static go_ticker *_Atomic p1_ticker;
static void make_ticker(void *arg)
{
	(void)arg;
	atomic_store(&p1_ticker, go_ticker_new(5 * MS));
}

START_TEST(ticker_survives_shrink)
{
	int old = go_maxprocs(2);
	int64_t base = ntimers_live();
	atomic_store(&p1_ticker, NULL);
	go_spawn(make_ticker, NULL);
	while (!atomic_load(&p1_ticker))
		go_yield();
	go_ticker *t = atomic_load(&p1_ticker);
	go_chan *c = go_ticker_chan(t);
	go_chan_recv(c, NULL);
	go_maxprocs(1);
	for (int i = 0; i < 3; i++) {
		int64_t v, t0 = go_now();
		go_chan_tryrecv(c, NULL);
		ck_assert(go_chan_recv(c, &v));
		ck_assert_msg(go_now() - t0 < slack(500 * MS), "tick took %lld ms",
		              (long long)((go_now() - t0) / MS));
	}
	go_maxprocs(2);
	go_chan_recv(c, NULL);
	go_ticker_free(t);
	ck_assert_int_eq(ntimers_live(), base);
	go_maxprocs(old);
}
END_TEST

/* Last: nothing any test did left a timer pending. */
START_TEST(no_timers_left)
{
	settled_base();
	ck_assert(timers_settle(0));
	ck_assert_int_eq(ntimers_live(), 0);
}
END_TEST

/* Go's timer channels are receive-only; closing one here is a panic at
 * the close (not a crash later, when the timer's send would find it
 * closed on the scheduler's stack). */
static void scenario_close_after_chan(void)
{
	go_chan *c = go_after(1000000);
	go_chan_close(c);
	printf("close returned\n");
}

START_TEST(close_of_timer_channel_is_fatal)
{
	struct child_result r;
	run_child("close_after_chan", NULL, &r);
	ck_assert_exit_status(&r, 2);
	ck_assert_output_has(&r, "panic: close of a timer channel");
	ck_assert_msg(!strstr(r.out, "close returned"), "close returned:\n%s", out_tail(&r));
}
END_TEST

static const struct scenario scenarios[] = {
	{ "close_after_chan", scenario_close_after_chan },
	{ "sleepers", scenario_sleepers },
	{ "sleep_overflow", scenario_sleep_overflow },
	{ "main_sleeps", scenario_main_sleeps },
	{ "main_waits_after", scenario_main_waits_after },
	{ "main_waits_ticker", scenario_main_waits_ticker },
	{ "sleeping_sender", scenario_sleeping_sender },
	{ "all_blocked", scenario_all_blocked },
	{ "all_blocked_after_timers", scenario_all_blocked_after_timers },
	{ NULL, NULL },
};

static Suite *time_suite(void)
{
	Suite *s = suite_create("time");
	TCase *tc = tcase_create("time");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, now_is_monotonic_clock);
	tcase_add_test(tc, sleep_nonpositive_returns_at_once);
	tcase_add_test(tc, ten_thousand_sleepers_p1);
	tcase_add_test(tc, ten_thousand_sleepers_p2);
	tcase_add_test(tc, huge_durations_never_fire);
	tcase_add_test(tc, after_delivers_once);
	tcase_add_test(tc, after_zero_fires_promptly);
	tcase_add_test(tc, after_free_before_fire_cancels);
	tcase_add_test(tc, after_free_races_with_firing);
	tcase_add_test(tc, ticker_new_invalid);
	tcase_add_test(tc, ticker_ticks_at_period);
	tcase_add_test(tc, ticker_drops_ticks_for_slow_receiver);
	tcase_add_test(tc, ticker_stop_stops_ticks);
	tcase_add_test(tc, timer_wait_is_not_deadlock);
	tcase_add_test(tc, blocked_forever_is_deadlock);
	tcase_add_test(tc, timers_fire_after_shrink);
	tcase_add_test(tc, timers_fire_after_grow);
	tcase_add_test(tc, timers_fire_while_maxprocs_flips);
	tcase_add_test(tc, ticker_survives_shrink);
	tcase_add_test(tc, close_of_timer_channel_is_fatal);
	tcase_add_test(tc, no_timers_left);
	/* Last: a failed check longjmps on main's stack, and under ASan that
	 * leaves stale stack poisoning after goroutine switches (the runtime
	 * gives ASan no bounds for an adopted thread's stack). */
	tcase_add_test(tc, ticker_stop_no_tick_after_return);
	suite_add_tcase(s, tc);
	return s;
}

int main(int argc, char **argv)
{
	return test_main(argc, argv, time_suite, scenarios);
}
