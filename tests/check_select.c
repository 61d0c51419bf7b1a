/* select (goshim.h go_select, go_select_nb): Go's test/chan select programs
 * re-expressed in C and run as child processes at GOMAXPROCS=1 and 2 (their
 * output checked exactly); fairness among ready cases, duplicate and NULL
 * channels, closed channels, wake-ups by close, many cases, timer channels,
 * misuse that is fatal, and many goroutines selecting on shared channels.
 * After every test of the suite itself: go_count back to its base, no
 * sudog left in use (sudogs_in_use()) and no timer left set (ntimers_live).
 *
 * select5.go is not ported: it is a generator that prints a Go program
 * (text/template) whose thousands of generated functions each do one send
 * or receive, phrased in the ways the Go compiler may rewrite (select with
 * one case, with default, assignments with conversions, ...). What it
 * tests is the compiler's lowering of those phrasings; in C every phrasing
 * is the same call, and the operations themselves are covered here and in
 * check_chan.c. */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>

#include "goshim.h"
#include "runtime/runtime.h"
#include "testutil.h"

/* As in check_sched.c: smaller goroutine counts under TSan (8128 live
 * fibers at most) and with TEST_SCALE=D (qemu): divide by D. */
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
	return n < 1 ? 1 : n;
}
#define SCALE(n) scale(n)

/* Loads for assertions (Check prints the expression: keep it short). */
static int ldi(_Atomic int *p) { return atomic_load(p); }
static int64_t ld64(_Atomic int64_t *p) { return atomic_load(p); }

#define MS 1000000LL
#define SEC 1000000000LL

/* ---- helpers for code that runs in a child (a Go program's main) -------- */

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	char buf[4096];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof buf - 1)
		n = (int)sizeof buf - 1;
	for (int off = 0; off < n;) {
		ssize_t k = write(1, buf + off, (size_t)(n - off));
		if (k <= 0)
			break;
		off += (int)k;
	}
}

/* Go's panic("...") in a test program: the child fails with status 1. */
static __attribute__((noreturn, format(printf, 1, 2))) void panicf(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	say("FAIL: %s\n", buf);
	_exit(1);
}
#define CHECK(cond) do { if (!(cond)) panicf("%s:%d: %s", __FILE__, __LINE__, #cond); } while (0)
#define GO(...) do { if (go(__VA_ARGS__) != 0) panicf("go() failed at line %d", __LINE__); } while (0)

static go_chan *mkchan(size_t elem, size_t cap)
{
	go_chan *c = go_chan_make(elem, cap);
	if (!c)
		panicf("go_chan_make(%zu, %zu): errno %d", elem, cap, errno);
	return c;
}

static void send_int(go_chan *c, int v) { go_chan_send(c, &v); }
static int recv_int(go_chan *c)
{
	int v = -1;
	go_chan_recv(c, &v);
	return v;
}

struct main_run {
	void (*fn)(void);
	go_wg wg;
};
static void main_tramp(void *arg)
{
	struct main_run *r = arg;
	r->fn();
	go_wg_done(&r->wg);
}
/* Runs fn as a goroutine and waits for it: the main goroutine is an
 * adopted thread locked to its OS thread. */
static void run_main(void (*fn)(void))
{
	struct main_run r = { .fn = fn };
	go_wg_add(&r.wg, 1);
	if (go_spawn(main_tramp, &r) != 0)
		panicf("go_spawn");
	go_wg_wait(&r.wg);
}

/* Waits (at most 10 s) until go_count, the sudogs in use and the live
 * timers are back to their bases. */
static bool settle(int base, int64_t sudog0, int64_t timers0)
{
	int64_t end = go_now() + 10 * SEC;
	while (go_count() != base || sudogs_in_use() != sudog0 || ntimers_live() != timers0) {
		if (go_now() > end)
			return false;
		go_sleep(100000);
	}
	return true;
}

static void child_program(void (*fn)(void), bool terminates)
{
	int64_t sudog0 = sudogs_in_use(), timers0 = ntimers_live();
	run_main(fn);
	if (terminates) {
		if (!settle(1, sudog0, timers0))
			panicf("leak: %d goroutines, %lld sudogs in use, %lld timers (want 1, %lld, %lld)",
			       go_count(), (long long)sudogs_in_use(),
			       (long long)ntimers_live(), (long long)sudog0, (long long)timers0);
		say("leaks: none\n");
	}
}

/* ---- select.go: simple non-blocking selects; send values evaluated ------ */

static unsigned counter, shift;

static unsigned GetValue(void)
{
	counter++;
	return 1u << shift;
}

static int Send(go_chan *a, go_chan *b)
{
	int i = 0;
	for (;;) {
		/* Go evaluates every case's send expression on entry, nil
		 * channel or not */
		unsigned va = GetValue(), vb = GetValue();
		go_case cases[2] = { GO_SEND(a, &va), GO_SEND(b, &vb) };
		int k = go_select_nb(cases, 2);
		if (k == 0) {
			i++;
			a = NULL;
		} else if (k == 1) {
			i++;
			b = NULL;
		} else if (k == -1) {
			break;
		} else {
			panicf("select returned %d", k);
		}
		shift++;
	}
	return i;
}

static void prog_select(void)
{
	go_chan *a = mkchan(sizeof(unsigned), 1);
	go_chan *b = mkchan(sizeof(unsigned), 1);
	int v = Send(a, b);
	if (v != 2)
		panicf("Send returned %d != 2", v);
	unsigned av = 0, bv = 0;
	go_chan_recv(a, &av);
	go_chan_recv(b, &bv);
	if ((av | bv) != 3)
		panicf("bad values %u %u", av, bv);
	v = Send(a, NULL);
	if (v != 1)
		panicf("Send returned %d != 1", v);
	if (counter != 10)
		panicf("counter is %u != 10", counter);
	go_chan_free(a);
	go_chan_free(b);
	say("select: ok\n");
}

/* ---- select3.go: which operations block, and which panic --------------- */

enum { NEVER = 1, ALWAYS = 2 }; /* "function did", "function did not" */

static go_chan *nilch; /* var nilch chan int */
static go_chan *closedch;

static void unreachable(void) { panicf("control flow shouldn't reach here"); }

static void tb_run(void (*f)(void), go_chan *c)
{
	f();
	send_int(c, NEVER); /* f didn't block */
}

/* The watchdog: reports ALWAYS once its go_after channel fires, unless
 * cancelled first (then it frees its timer and ends). */
static void tb_watchdog(int64_t ns, go_chan *c, go_chan *cancel)
{
	go_chan *t = go_after(ns);
	CHECK(t);
	go_case cases[2] = { GO_RECV(t, NULL), GO_RECV(cancel, NULL) };
	if (go_select(cases, 2) == 0)
		send_int(c, ALWAYS); /* f blocked always */
	go_chan_free(t);
}

/* Calls f in a goroutine and verifies empirically that it always/never
 * blocks depending on signal. */
static void testBlock(int signal, void (*f)(void), const char *what)
{
	go_chan *c = mkchan(sizeof(int), 2), *cancel = mkchan(0, 0);
	GO(tb_run, f, c);
	/* Wait a long time to make sure that we don't miss our window by
	 * accident on a slow machine; as short a time as we can without
	 * false negatives otherwise. */
	GO(tb_watchdog, signal == NEVER ? 10 * SEC : 10 * MS, c, cancel);
	int got = recv_int(c);
	go_chan_close(cancel);
	if (got != signal)
		panicf("%s: %s block", what, signal == ALWAYS ? "always" : "never");
}

static void f_nil_send(void) { send_int(nilch, 7); }
static void f_nil_recv(void) { recv_int(nilch); }

static void f_async_send(void)
{
	go_chan *ch = mkchan(sizeof(int), 1);
	send_int(ch, 7);
	go_chan_free(ch);
}

static void f_closed_recv(void)
{
	for (int i = 0; i < 10; i++) {
		if (recv_int(closedch) != 0)
			panicf("expected zero value when reading from closed channel");
		int x = 5;
		bool ok = go_chan_recv(closedch, &x);
		if (x != 0 || ok)
			panicf("closedch: %d %d: expected 0, false from closed channel", x, ok);
	}
}

static void f_recv_nonready(void)
{
	go_chan *ch = mkchan(sizeof(int), 0);
	recv_int(ch);
}

static void f_select_empty(void) { go_select(NULL, 0); }

static void f_select_nil_recv(void)
{
	go_case c = GO_RECV(nilch, NULL);
	go_select(&c, 1);
	unreachable();
}

static void f_select_nil_send(void)
{
	int v = 7;
	go_case c = GO_SEND(nilch, &v);
	go_select(&c, 1);
	unreachable();
}

static void f_select_nil_both(void)
{
	int v = 7;
	go_case c[2] = { GO_RECV(nilch, NULL), GO_SEND(nilch, &v) };
	go_select(c, 2);
	unreachable();
}

static void f_select_nonready(void)
{
	go_chan *ch = mkchan(sizeof(int), 0);
	go_case c = GO_RECV(ch, NULL);
	go_select(&c, 1);
	unreachable();
}

static void f_select_default(void)
{
	if (go_select_nb(NULL, 0) != -1)
		unreachable();
}

static void f_select_nil_recv_default(void)
{
	go_case c = GO_RECV(nilch, NULL);
	if (go_select_nb(&c, 1) != -1)
		unreachable();
}

static void f_select_nil_send_default(void)
{
	int v = 7;
	go_case c = GO_SEND(nilch, &v);
	if (go_select_nb(&c, 1) != -1)
		unreachable();
}

static void f_select_ready_send(void)
{
	go_chan *ch = mkchan(sizeof(int), 1);
	int v = 7;
	go_case c = GO_SEND(ch, &v);
	if (go_select_nb(&c, 1) != 0)
		unreachable();
	go_chan_free(ch);
}

static void f_select_ready_recv(void)
{
	go_chan *ch = mkchan(sizeof(int), 1);
	send_int(ch, 7);
	int v = 0;
	go_case c = GO_RECV(ch, &v);
	if (go_select_nb(&c, 1) != 0 || v != 7 || !c.ok)
		unreachable();
	go_chan_free(ch);
}

static void f_select_closed_recv(void) /* case <-closedch: */
{
	go_case c = GO_RECV(closedch, NULL);
	go_select(&c, 1);
}

static void f_select_closed_recv_x(void) /* case x := (<-closedch): */
{
	int x = 3;
	go_case c = GO_RECV(closedch, &x);
	go_select(&c, 1);
	CHECK(x == 0);
}

static void f_select_closed_recv_x_ok(void) /* case x, ok := (<-closedch): */
{
	int x = 3;
	go_case c = GO_RECV(closedch, &x);
	c.ok = true;
	go_select(&c, 1);
	CHECK(x == 0 && !c.ok);
}

static void f_select_self(void) /* select should not get confused if it sees itself */
{
	go_chan *c = mkchan(sizeof(int), 0);
	int one = 1, x;
	go_case cases[2] = { GO_SEND(c, &one), GO_RECV(c, &x) };
	go_select(cases, 2);
}

static void prog_select3(void)
{
	closedch = mkchan(sizeof(int), 0);
	go_chan_close(closedch);

	/* sending/receiving from a nil channel blocks */
	testBlock(ALWAYS, f_nil_send, "nilch <- 7");
	testBlock(ALWAYS, f_nil_recv, "<-nilch");

	/* sending/receiving from a nil channel inside a select is never
	 * selected (testPanic(never, ...): it returns) */
	f_select_nil_send_default();
	f_select_nil_recv_default();

	/* sending to an async channel with free buffer space never blocks */
	testBlock(NEVER, f_async_send, "async send");

	/* receiving from a closed channel never blocks */
	testBlock(NEVER, f_closed_recv, "<-closedch");

	/* sending to a closed channel panics: the select3_panic_* scenarios */

	/* receiving from a non-ready channel always blocks */
	testBlock(ALWAYS, f_recv_nonready, "<-ch");

	/* empty selects always block */
	testBlock(ALWAYS, f_select_empty, "select {}");

	/* selects with only nil channels always block */
	testBlock(ALWAYS, f_select_nil_recv, "select { <-nilch }");
	testBlock(ALWAYS, f_select_nil_send, "select { nilch <- 7 }");
	testBlock(ALWAYS, f_select_nil_both, "select { <-nilch; nilch <- 7 }");

	/* selects with non-ready non-nil channels always block */
	testBlock(ALWAYS, f_select_nonready, "select { <-ch }");

	/* selects with default cases don't block */
	testBlock(NEVER, f_select_default, "select { default }");
	testBlock(NEVER, f_select_nil_recv_default, "select { <-nilch; default }");
	testBlock(NEVER, f_select_nil_send_default, "select { nilch <- 7; default }");

	/* selects with ready channels don't block */
	testBlock(NEVER, f_select_ready_send, "select { ch <- 7; default }");
	testBlock(NEVER, f_select_ready_recv, "select { <-ch; default }");

	/* selects with closed channels behave like ordinary operations */
	testBlock(NEVER, f_select_closed_recv, "select { <-closedch }");
	testBlock(NEVER, f_select_closed_recv_x, "select { x := <-closedch }");
	testBlock(NEVER, f_select_closed_recv_x_ok, "select { x, ok := <-closedch }");

	/* select should not get confused if it sees itself */
	testBlock(ALWAYS, f_select_self, "select { c <- 1; <-c }");
	say("select3: ok\n");
}

/* select3's testPanic(always, ...) cases: a panic ends the process. */
static void select3_panic_send(void)
{
	closedch = mkchan(sizeof(int), 0);
	go_chan_close(closedch);
	send_int(closedch, 7);
	say("NOT REACHED\n");
}

static void select3_panic_select_send(void)
{
	closedch = mkchan(sizeof(int), 0);
	go_chan_close(closedch);
	int v = 7;
	go_case c = GO_SEND(closedch, &v);
	go_select(&c, 1);
	say("NOT REACHED\n");
}

/* ---- select4.go: a select proceeds when a value is ready --------------- */

/* In Go the left-hand side of the case that does not run (*f() = <-c1)
 * is never evaluated; in C the destinations are pointers given up front,
 * so what is checked is that the other destination is left untouched. */
static void prog_select4(void)
{
	struct {
		int a;
	} x = { 0 };
	int other = -7;
	go_chan *c = mkchan(sizeof(int), 1);
	go_chan *c1 = mkchan(sizeof(int), 0);
	send_int(c, 42);
	go_case cases[2] = { GO_RECV(c1, &other), GO_RECV(c, &x.a) };
	int k = go_select(cases, 2);
	if (k != 1)
		panicf("chose case %d", k);
	if (x.a != 42)
		panicf("BUG: %d", x.a);
	if (other != -7)
		panicf("BUG: wrote the other case's destination");
	go_chan_free(c);
	go_chan_free(c1);
	say("select4: ok\n");
}

/* ---- select6.go: issue 2075, failed cases must not corrupt queues ------ */

/* A bug in select corrupts channel queues of failed cases if there are
 * multiple waiters on those channels and the select is the last in the
 * queue. If further waits are made on the channel without draining it
 * first then those waiters will never wake up. c1 is such a channel. */
static void s6_recv1(go_chan *c1) { go_chan_recv(c1, NULL); }

static void s6_select(go_chan *c1, go_chan *c2, go_chan *c3)
{
	go_case cases[2] = { GO_RECV(c1, NULL), GO_RECV(c2, NULL) };
	int k = go_select(cases, 2);
	if (k == 0)
		panicf("dummy");
	bool t = true;
	go_chan_send(c3, &t);
	go_chan_recv(c1, NULL);
}

static void s6_send2(go_chan *c2)
{
	bool t = true;
	go_chan_send(c2, &t);
}

static void prog_select6(void)
{
	go_chan *c1 = mkchan(sizeof(bool), 0), *c2 = mkchan(sizeof(bool), 0),
		*c3 = mkchan(sizeof(bool), 0);
	GO(s6_recv1, c1);
	GO(s6_select, c1, c2, c3);
	GO(s6_send2, c2);
	go_chan_recv(c3, NULL);
	bool t = true;
	go_chan_send(c1, &t);
	go_chan_send(c1, &t);
	say("select6: ok\n");
}

/* ---- select7.go: selects that discard the value ------------------------ */

static void recv1(go_chan *c) { go_chan_recv(c, NULL); }

static void recv2(go_chan *c)
{
	go_case k = GO_RECV(c, NULL);
	go_select(&k, 1);
}

static void recv3(go_chan *c)
{
	go_chan *c2 = mkchan(sizeof(int), 0);
	go_case k[2] = { GO_RECV(c, NULL), GO_RECV(c2, NULL) };
	go_select(k, 2);
	go_chan_free(c2);
}

static void send1(void (*recv)(go_chan *))
{
	go_chan *c = mkchan(sizeof(int), 0);
	GO(recv, c);
	go_yield();
	send_int(c, 1);
}

static void send2(void (*recv)(go_chan *))
{
	go_chan *c = mkchan(sizeof(int), 0);
	GO(recv, c);
	go_yield();
	int one = 1;
	go_case k = GO_SEND(c, &one);
	CHECK(go_select(&k, 1) == 0);
}

static void send3(void (*recv)(go_chan *))
{
	go_chan *c = mkchan(sizeof(int), 0);
	GO(recv, c);
	go_yield();
	go_chan *c2 = mkchan(sizeof(int), 0);
	int one = 1;
	go_case k[2] = { GO_SEND(c, &one), GO_SEND(c2, &one) };
	CHECK(go_select(k, 2) == 0);
	go_chan_free(c2);
}

static void prog_select7(void)
{
	send1(recv1);
	send2(recv1);
	send3(recv1);
	send1(recv2);
	send2(recv2);
	send3(recv2);
	send1(recv3);
	send2(recv3);
	send3(recv3);
	say("select7: ok\n");
}

/* ---- select8.go: break in 1-, 2- and 3-case selects --------------------- */

/* C's break leaves the switch on the result; what is checked is that the
 * selects complete with a case that can run. */
static go_chan *s8_ch;

static void s8_sender(void)
{
	for (;;)
		send_int(s8_ch, 5);
}

static void prog_select8(void)
{
	s8_ch = mkchan(sizeof(int), 0);
	GO(s8_sender);
	int v = 0, ten = 10;

	go_case a = GO_RECV(s8_ch, &v);
	switch (go_select(&a, 1)) {
	case 0:
		CHECK(v == 5);
		break;
	default:
		panicf("unreachable");
	}

	switch (go_select_nb(NULL, 0)) { /* select { default: } */
	case -1:
		break;
	default:
		panicf("unreachable");
	}

	v = 0;
	go_case b = GO_RECV(s8_ch, &v);
	switch (go_select_nb(&b, 1)) {
	case 0:
		CHECK(v == 5);
		break;
	case -1: /* the sender may not be back yet */
		break;
	default:
		panicf("unreachable");
	}

	v = 0;
	go_case c[2] = { GO_RECV(s8_ch, &v), GO_SEND(s8_ch, &ten) };
	switch (go_select_nb(c, 2)) {
	case 0:
		CHECK(v == 5);
		break;
	case 1: /* nobody receives on ch */
		panicf("unreachable");
	case -1:
		break;
	default:
		panicf("unreachable");
	}
	say("select8: ok\n");
}

/* ---- the programs, as scenarios ---------------------------------------- */

#define CHILD_PROG(name, terminates) \
	static void child_##name(void) { child_program(prog_##name, terminates); }
CHILD_PROG(select, true)
CHILD_PROG(select3, false)
CHILD_PROG(select4, true)
CHILD_PROG(select6, true)
CHILD_PROG(select7, true)
CHILD_PROG(select8, false)

static const struct program {
	const char *name;
	const char *want;
} programs[] = {
	{ "select", "select: ok\nleaks: none\n" },
	{ "select3", "select3: ok\n" },
	{ "select4", "select4: ok\nleaks: none\n" },
	{ "select6", "select6: ok\nleaks: none\n" },
	{ "select7", "select7: ok\nleaks: none\n" },
	{ "select8", "select8: ok\n" },
};
#define NPROGRAMS ((int)(sizeof programs / sizeof programs[0]))

static struct child_result result;

START_TEST(go_test_programs)
{
	const struct program *p = &programs[_i / 2];
	const char *procs = _i % 2 ? "GOMAXPROCS=2" : "GOMAXPROCS=1";
	/* Go frees what its programs leave behind by garbage collection; here
	 * their channels (some in use by goroutines blocked forever) are never
	 * freed: no LeakSanitizer report at the child's exit. */
	static char asan[512];
	const char *prev = getenv("ASAN_OPTIONS");
	snprintf(asan, sizeof asan, "ASAN_OPTIONS=%s%sdetect_leaks=0", prev ? prev : "",
	         prev && *prev ? ":" : "");
	const char *env[] = { procs, asan, NULL };
	int64_t t0 = go_now();
	run_child(p->name, env, &result);
	ck_assert_msg(WIFEXITED(result.status) && WEXITSTATUS(result.status) == 0,
	              "%s at %s: status 0x%x, output:\n%s", p->name, procs, result.status,
	              out_tail(&result));
	ck_assert_msg(strcmp(result.out, p->want) == 0, "%s at %s: output\n%s\nwant\n%s", p->name,
	              procs, out_tail(&result), p->want);
	if (getenv("CHECK_VERBOSE"))
		fprintf(stderr, "%s at %s: %.3f s\n", p->name, procs, (go_now() - t0) / 1e9);
}
END_TEST

/* ---- leak check around every test of the suite itself ------------------ */

static int base_count;
static int64_t base_sudogs, base_timers;

static void leak_setup(void)
{
	int64_t end = go_now() + 10 * SEC;
	while (go_count() != 1 && go_now() < end)
		go_sleep(100000);
	ck_assert_int_eq(go_count(), 1);
	base_count = 1;
	base_sudogs = sudogs_in_use();
	base_timers = ntimers_live();
}

static void leak_teardown(void)
{
	bool ok = settle(base_count, base_sudogs, base_timers);
	ck_assert_msg(ok, "leak: %d goroutines (want %d), %lld sudogs in use (want %lld), "
	              "%lld timers (want %lld)", go_count(), base_count,
	              (long long)sudogs_in_use(), (long long)base_sudogs,
	              (long long)ntimers_live(), (long long)base_timers);
}

/* Waits (bounded) until n more sudogs than at the start are in use. */
static void wait_sudogs(int64_t n)
{
	int64_t end = go_now() + 10 * SEC;
	while (sudogs_in_use() < base_sudogs + n) {
		ck_assert_msg(go_now() < end, "only %lld of %lld sudogs in use",
		              (long long)(sudogs_in_use() - base_sudogs), (long long)n);
		go_sleep(50000);
	}
	ck_assert_int_eq(sudogs_in_use(), base_sudogs + n);
}

/* Each of the counts within 5% of n/ways (a statistical bound: for 100,000
 * selects between two cases 5% is 2,500, more than 15 standard
 * deviations). */
static void assert_fair(const int *counts, int ways, int n)
{
	double want = (double)n / ways;
	for (int i = 0; i < ways; i++)
		ck_assert_msg(counts[i] > want * 0.95 && counts[i] < want * 1.05,
		              "case %d chosen %d times of %d (want %.0f +- 5%%)", i, counts[i], n, want);
}

/* ---- fairness ---------------------------------------------------------- */

START_TEST(fair_two_closed_channels)
{
	go_chan *a = go_chan_make(sizeof(int), 0), *b = go_chan_make(sizeof(int), 0);
	go_chan_close(a);
	go_chan_close(b);
	int counts[2] = { 0, 0 }, x, y;
	const int n = 100000;
	for (int i = 0; i < n; i++) {
		go_case cases[2] = { GO_RECV(a, &x), GO_RECV(b, &y) };
		int k = go_select(cases, 2);
		ck_assert(k == 0 || k == 1);
		ck_assert(!cases[k].ok);
		counts[k]++;
	}
	assert_fair(counts, 2, n);
	go_chan_free(a);
	go_chan_free(b);
}
END_TEST

/* A send case with buffer space and a receive case with a value: both
 * ready every time; the buffers show which ran. */
START_TEST(fair_send_and_recv_nb)
{
	const int n = 100000;
	go_chan *out = go_chan_make(sizeof(int), (size_t)n);
	go_chan *in = go_chan_make(sizeof(int), 1);
	int counts[2] = { 0, 0 }, got;
	for (int i = 0; i < n; i++) {
		if (go_chan_len(in) == 0)
			ck_assert(go_chan_trysend(in, &i));
		go_case cases[2] = { GO_SEND(out, &i), GO_RECV(in, &got) };
		int k = go_select_nb(cases, 2);
		ck_assert(k == 0 || k == 1);
		counts[k]++;
	}
	ck_assert_uint_eq(go_chan_len(out), (size_t)counts[0]);
	assert_fair(counts, 2, n);
	go_chan_free(out);
	go_chan_free(in);
}
END_TEST

/* Four ready cases, one of them a duplicate channel. */
START_TEST(fair_four_cases)
{
	go_chan *a = go_chan_make(0, 0), *b = go_chan_make(0, 0), *c = go_chan_make(0, 0);
	go_chan_close(a);
	go_chan_close(b);
	go_chan_close(c);
	int counts[4] = { 0 };
	const int n = 100000;
	for (int i = 0; i < n; i++) {
		go_case cases[4] = { GO_RECV(a, NULL), GO_RECV(b, NULL), GO_RECV(c, NULL), GO_RECV(a, NULL) };
		counts[go_select(cases, 4)]++;
	}
	assert_fair(counts, 4, n);
	go_chan_free(a);
	go_chan_free(b);
	go_chan_free(c);
}
END_TEST

/* ---- duplicates, NULL channels, n == 0 -------------------------------- */

START_TEST(duplicate_channel_cases)
{
	/* three receive cases on one channel holding one value: exactly one
	 * runs, and each gets its turn */
	go_chan *c = go_chan_make(sizeof(int), 1);
	int counts[3] = { 0 };
	for (int i = 0; i < 3000; i++) {
		go_chan_send(c, &i);
		int v[3] = { -1, -1, -1 };
		go_case cases[3] = { GO_RECV(c, &v[0]), GO_RECV(c, &v[1]), GO_RECV(c, &v[2]) };
		int k = go_select(cases, 3);
		ck_assert(k >= 0 && k < 3);
		ck_assert_int_eq(v[k], i);
		for (int j = 0; j < 3; j++)
			if (j != k)
				ck_assert_int_eq(v[j], -1);
		ck_assert_uint_eq(go_chan_len(c), 0);
		counts[k]++;
	}
	for (int j = 0; j < 3; j++)
		ck_assert_int_gt(counts[j], 800);

	/* a send and a receive case on one half-full channel: both ready */
	go_chan *d = go_chan_make(sizeof(int), 2);
	int seven = 7, r, sends = 0, recvs = 0;
	go_chan_send(d, &seven);
	for (int i = 0; i < 2000; i++) {
		go_case cases[2] = { GO_SEND(d, &seven), GO_RECV(d, &r) };
		int k = go_select(cases, 2);
		if (k == 0) {
			sends++;
			ck_assert_uint_eq(go_chan_len(d), 2);
			ck_assert_int_eq(go_chan_tryrecv(d, &r), GO_OK);
		} else {
			recvs++;
			ck_assert_int_eq(r, 7);
			ck_assert_uint_eq(go_chan_len(d), 0);
			go_chan_send(d, &seven);
		}
	}
	ck_assert_int_gt(sends, 800);
	ck_assert_int_gt(recvs, 800);
	go_chan_free(c);
	go_chan_free(d);
}
END_TEST

/* A goroutine blocked in a select with several cases on one channel is
 * woken once; the sudogs of the other cases leave the queues. */
struct dupsel {
	go_chan *c, *d;
	_Atomic int chosen, value;
};
static void dup_selector(struct dupsel *s)
{
	int v[4] = { -1, -1, -1, -1 };
	go_case cases[4] = { GO_RECV(s->c, &v[0]), GO_RECV(s->c, &v[1]), GO_RECV(s->d, &v[2]),
	                     GO_RECV(s->c, &v[3]) };
	int k = go_select(cases, 4);
	atomic_store(&s->value, v[k]);
	atomic_store(&s->chosen, k);
}

START_TEST(duplicate_channels_blocked)
{
	static struct dupsel s;
	for (int round = 0; round < 200; round++) {
		s.c = go_chan_make(sizeof(int), 0);
		s.d = go_chan_make(sizeof(int), 0);
		atomic_store(&s.chosen, -1);
		ck_assert_int_eq(go(dup_selector, &s), 0);
		wait_sudogs(4);
		int v = 1000 + round;
		go_chan_send(s.c, &v);
		while (atomic_load(&s.chosen) == -1)
			go_yield();
		int k = atomic_load(&s.chosen);
		ck_assert(k == 0 || k == 1 || k == 3);
		ck_assert_int_eq(ldi(&s.value), v);
		/* no stale sudog left on c or d: nobody receives any more */
		ck_assert(!go_chan_trysend(s.c, &v));
		ck_assert(!go_chan_trysend(s.d, &v));
		ck_assert(settle(base_count, base_sudogs, base_timers));
		go_chan_free(s.c);
		go_chan_free(s.d);
	}
}
END_TEST

/* select { case c <- 1: case <-c: } blocks (it does not pair with
 * itself), and another goroutine's receive completes the send case. */
static _Atomic int self_chosen;
static void self_selector(go_chan *c)
{
	int one = 1, x = -1;
	go_case cases[2] = { GO_SEND(c, &one), GO_RECV(c, &x) };
	atomic_store(&self_chosen, go_select(cases, 2));
}

START_TEST(select_sees_itself)
{
	go_chan *c = go_chan_make(sizeof(int), 0);
	atomic_store(&self_chosen, -1);
	ck_assert_int_eq(go(self_selector, c), 0);
	wait_sudogs(2);
	go_sleep(10 * MS);
	ck_assert_int_eq(ldi(&self_chosen), -1);
	int v = 0;
	ck_assert(go_chan_recv(c, &v));
	ck_assert_int_eq(v, 1);
	while (atomic_load(&self_chosen) == -1)
		go_yield();
	ck_assert_int_eq(ldi(&self_chosen), 0);
	ck_assert(settle(base_count, base_sudogs, base_timers));
	go_chan_free(c);
}
END_TEST

static void send_after(go_chan *c, int v, int64_t ns)
{
	go_sleep(ns);
	go_chan_send(c, &v);
}

START_TEST(null_channels_never_ready)
{
	int v = 5;
	go_case all_null[3] = { GO_RECV(NULL, &v), GO_SEND(NULL, &v), GO_SEND(NULL, NULL) };
	ck_assert_int_eq(go_select_nb(all_null, 3), -1);
	ck_assert_int_eq(v, 5);

	go_chan *closed = go_chan_make(sizeof(int), 0);
	go_chan_close(closed);
	for (int i = 0; i < 1000; i++) {
		go_case cases[4] = { GO_RECV(NULL, &v), GO_SEND(NULL, &v), GO_RECV(closed, NULL),
		                     GO_RECV(NULL, NULL) };
		ck_assert_int_eq(go_select_nb(cases, 4), 2);
		ck_assert_int_eq(go_select(cases, 4), 2);
	}

	/* blocking: NULL cases around one channel that gets a value later */
	go_chan *c = go_chan_make(sizeof(int), 0);
	ck_assert_int_eq(go(send_after, c, 99, 2 * MS), 0);
	int got = 0;
	go_case cases[3] = { GO_SEND(NULL, &v), GO_RECV(c, &got), GO_RECV(NULL, &v) };
	ck_assert_int_eq(go_select(cases, 3), 1);
	ck_assert_int_eq(got, 99);
	ck_assert(cases[1].ok);
	ck_assert_int_eq(v, 5);
	ck_assert(settle(base_count, base_sudogs, base_timers));
	go_chan_free(c);
	go_chan_free(closed);
}
END_TEST

START_TEST(nb_zero_cases)
{
	go_case cases[1] = { GO_RECV(NULL, NULL) };
	ck_assert_int_eq(go_select_nb(NULL, 0), -1);
	ck_assert_int_eq(go_select_nb(cases, 0), -1);
	ck_assert_int_eq(go_select_nb(cases, 1), -1);
}
END_TEST

/* ---- closed channels ---------------------------------------------------- */

struct big { uint64_t w[5]; };

START_TEST(recv_case_on_closed_channel)
{
	go_chan *c = go_chan_make(sizeof(struct big), 2);
	struct big one = { { 1, 2, 3, 4, 5 } }, v, zero = { { 0 } };
	go_chan_send(c, &one);
	go_chan_close(c);
	/* the buffered value first, with ok = true */
	memset(&v, 0xab, sizeof v);
	go_case k = GO_RECV(c, &v);
	k.ok = false;
	ck_assert_int_eq(go_select(&k, 1), 0);
	ck_assert(k.ok);
	ck_assert_mem_eq(&v, &one, sizeof v);
	/* then the zero value with ok = false, blocking or not */
	for (int nb = 0; nb < 2; nb++) {
		memset(&v, 0xab, sizeof v);
		go_case k2 = GO_RECV(c, &v);
		k2.ok = true;
		ck_assert_int_eq(nb ? go_select_nb(&k2, 1) : go_select(&k2, 1), 0);
		ck_assert(!k2.ok);
		ck_assert_mem_eq(&v, &zero, sizeof v);
	}
	/* NULL destination */
	go_case k3 = GO_RECV(c, NULL);
	k3.ok = true;
	ck_assert_int_eq(go_select(&k3, 1), 0);
	ck_assert(!k3.ok);
	go_chan_free(c);
}
END_TEST

/* A value received through a select sets ok; a case that did not run
 * keeps its ok and its element. */
START_TEST(recv_case_sets_ok)
{
	go_chan *a = go_chan_make(sizeof(int), 1), *b = go_chan_make(sizeof(int), 1);
	int x = 42, va = -1, vb = -1;
	go_chan_send(b, &x);
	go_case cases[2] = { GO_RECV(a, &va), GO_RECV(b, &vb) };
	cases[0].ok = true;
	cases[1].ok = false;
	ck_assert_int_eq(go_select(cases, 2), 1);
	ck_assert(cases[1].ok);
	ck_assert_int_eq(vb, 42);
	ck_assert(cases[0].ok);
	ck_assert_int_eq(va, -1);
	go_chan_free(a);
	go_chan_free(b);
}
END_TEST

/* Goroutines blocked in selects are woken by a close of one of their
 * channels: that case runs, with ok = false and a zeroed element. */
struct closewake {
	go_chan *a, *b;
	go_wg wg;
	_Atomic int good, bad;
};
static void close_selector(struct closewake *s)
{
	struct big va, vb, zero = { { 0 } };
	memset(&va, 0x5a, sizeof va);
	memset(&vb, 0x5a, sizeof vb);
	go_case cases[2] = { GO_RECV(s->a, &va), GO_RECV(s->b, &vb) };
	cases[1].ok = true;
	int k = go_select(cases, 2);
	if (k == 1 && !cases[1].ok && memcmp(&vb, &zero, sizeof vb) == 0 && va.w[0] == 0x5a5a5a5a5a5a5a5aull)
		atomic_fetch_add(&s->good, 1);
	else
		atomic_fetch_add(&s->bad, 1);
	go_wg_done(&s->wg);
}

START_TEST(blocked_selects_woken_by_close)
{
	static struct closewake s;
	for (int n = 1; n <= 64; n *= 4) {
		memset(&s, 0, sizeof s);
		s.a = go_chan_make(sizeof(struct big), 0);
		s.b = go_chan_make(sizeof(struct big), 1);
		go_wg_add(&s.wg, n);
		for (int i = 0; i < n; i++)
			ck_assert_int_eq(go(close_selector, &s), 0);
		wait_sudogs(2 * n);
		go_chan_close(s.b);
		go_wg_wait(&s.wg);
		ck_assert_int_eq(ldi(&s.good), n);
		ck_assert_int_eq(ldi(&s.bad), 0);
		ck_assert(settle(base_count, base_sudogs, base_timers));
		/* a's queue is empty again: a send would block */
		ck_assert(!go_chan_trysend(s.a, &(struct big){ { 0 } }));
		go_chan_free(s.a);
		go_chan_free(s.b);
	}
}
END_TEST

/* ---- direct hand-off through selects ----------------------------------- */

static void plain_recv_into(go_chan *c, _Atomic int64_t *out)
{
	int64_t v = 0;
	go_chan_recv(c, &v);
	atomic_store(out, v);
}

static void plain_send(go_chan *c, int64_t v) { go_chan_send(c, &v); }

START_TEST(select_pairs_with_blocked_peer)
{
	static _Atomic int64_t got;
	go_chan *c = go_chan_make(sizeof(int64_t), 0), *never = go_chan_make(sizeof(int64_t), 0);
	for (int i = 0; i < 100; i++) {
		/* a select's send case hands the value to a blocked receiver */
		atomic_store(&got, 0);
		ck_assert_int_eq(go(plain_recv_into, c, &got), 0);
		wait_sudogs(1);
		int64_t v = 1000000007LL * (i + 1), w = -1;
		go_case cases[2] = { GO_RECV(never, &w), GO_SEND(c, &v) };
		ck_assert_int_eq(go_select(cases, 2), 1);
		while (atomic_load(&got) == 0)
			go_yield();
		ck_assert_int_eq(ld64(&got), v);
		ck_assert_int_eq(w, -1);
		/* a select's receive case takes it from a blocked sender */
		ck_assert_int_eq(go(plain_send, c, v + 1), 0);
		wait_sudogs(1);
		int64_t r = 0;
		go_case cases2[2] = { GO_SEND(never, &w), GO_RECV(c, &r) };
		ck_assert_int_eq(go_select_nb(cases2, 2), 1);
		ck_assert(cases2[1].ok);
		ck_assert_int_eq(r, v + 1);
		ck_assert(settle(base_count, base_sudogs, base_timers));
	}
	go_chan_free(c);
	go_chan_free(never);
}
END_TEST

/* ---- many cases ------------------------------------------------------- */

#define NC 100
struct hundred {
	go_chan *c[NC];
	_Atomic int chosen, value;
};
static void hundred_selector(struct hundred *h)
{
	int v[NC];
	go_case cases[NC];
	for (int i = 0; i < NC; i++) {
		v[i] = -1;
		cases[i] = GO_RECV(h->c[i], &v[i]);
	}
	int k = go_select(cases, NC);
	atomic_store(&h->value, k >= 0 && k < NC ? v[k] : -2);
	atomic_store(&h->chosen, k);
}

START_TEST(select_100_cases)
{
	static struct hundred h;
	for (int i = 0; i < NC; i++)
		h.c[i] = go_chan_make(sizeof(int), i % 2); /* half buffered */
	/* blocking: each case in turn is the one that becomes ready */
	for (int k = 0; k < NC; k++) {
		atomic_store(&h.chosen, -1);
		ck_assert_int_eq(go(hundred_selector, &h), 0);
		wait_sudogs(NC);
		int v = 500 + k;
		go_chan_send(h.c[k], &v);
		while (atomic_load(&h.chosen) == -1)
			go_yield();
		ck_assert_int_eq(ldi(&h.chosen), k);
		ck_assert_int_eq(ldi(&h.value), v);
		ck_assert(settle(base_count, base_sudogs, base_timers));
	}
	/* non-blocking: only case k ready; a mix of sends and receives */
	for (int k = 0; k < NC; k++) {
		int v[NC], s = 1;
		go_case cases[NC];
		if (k % 2) /* buffered: a value to receive */
			go_chan_send(h.c[k], &k);
		for (int i = 0; i < NC; i++) {
			v[i] = -1;
			/* sends on unbuffered channels (no receiver), receives
			 * on the empty ones */
			cases[i] = i % 2 == 0 ? GO_SEND(h.c[i], &s) : GO_RECV(h.c[i], &v[i]);
		}
		int got = go_select_nb(cases, NC);
		if (k % 2) {
			ck_assert_int_eq(got, k);
			ck_assert_int_eq(v[k], k);
		} else {
			ck_assert_int_eq(got, -1);
		}
	}
	for (int i = 0; i < NC; i++)
		go_chan_free(h.c[i]);
}
END_TEST

/* The most cases a select takes, over 256 channels (duplicates), with a
 * quarter NULL; blocked, then woken by one send. */
#define MAXC 65536
#define NCH 256
static go_case maxcases[MAXC];
static int maxvals[MAXC];
static _Atomic int max_chosen;
static void max_selector(go_chan **chans)
{
	for (int i = 0; i < MAXC; i++) {
		maxvals[i] = -1;
		maxcases[i] = GO_RECV(i % 4 == 3 ? NULL : chans[i % NCH], &maxvals[i]);
	}
	atomic_store(&max_chosen, go_select(maxcases, MAXC));
}

START_TEST(select_65536_cases)
{
	static go_chan *chans[NCH];
	for (int i = 0; i < NCH; i++)
		chans[i] = go_chan_make(sizeof(int), 0);
	atomic_store(&max_chosen, -1);
	ck_assert_int_eq(go(max_selector, chans), 0);
	wait_sudogs(MAXC / 4 * 3);
	int v = 4242;
	go_chan_send(chans[201], &v);
	while (atomic_load(&max_chosen) == -1)
		go_yield();
	int k = atomic_load(&max_chosen);
	ck_assert_int_ge(k, 0);
	ck_assert_int_lt(k, MAXC);
	ck_assert_int_eq(k % NCH, 201);
	ck_assert_int_eq(maxvals[k], v);
	ck_assert(settle(base_count, base_sudogs, base_timers));
	for (int i = 0; i < NCH; i++) {
		ck_assert(!go_chan_trysend(chans[i], &v)); /* no stale sudogs */
		go_chan_free(chans[i]);
	}
}
END_TEST

/* ---- timer channels --------------------------------------------------- */

START_TEST(select_on_after_channel)
{
	go_chan *never = go_chan_make(sizeof(int), 0);
	/* the timer fires: its case runs, with go_now() of the firing */
	int64_t t0 = go_now();
	go_chan *t = go_after(20 * MS);
	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(ntimers_live(), base_timers + 1);
	int64_t when = 0;
	int x;
	go_case cases[2] = { GO_RECV(never, &x), GO_RECV(t, &when) };
	ck_assert_int_eq(go_select(cases, 2), 1);
	int64_t t1 = go_now();
	ck_assert(cases[1].ok);
	ck_assert_int_ge(t1 - t0, 20 * MS);
	ck_assert_int_ge(when, t0 + 20 * MS);
	ck_assert_int_le(when, t1);
	go_chan_free(t);
	ck_assert_int_eq(ntimers_live(), base_timers);

	/* go_after(0) is ready at once (as soon as the timer runs) */
	t = go_after(0);
	go_case c0 = GO_RECV(t, &when);
	ck_assert_int_eq(go_select(&c0, 1), 0);
	go_chan_free(t);

	/* a channel ready before the timer wins; freeing the channel
	 * cancels the timer */
	go_chan *c = go_chan_make(sizeof(int), 0);
	ck_assert_int_eq(go(send_after, c, 7, 2 * MS), 0);
	t = go_after(10 * SEC);
	int v = 0;
	go_case cases2[2] = { GO_RECV(t, &when), GO_RECV(c, &v) };
	t0 = go_now();
	ck_assert_int_eq(go_select(cases2, 2), 1);
	ck_assert_int_eq(v, 7);
	ck_assert_int_lt(go_now() - t0, 5 * SEC);
	ck_assert_int_eq(go_chan_len(t), 0);
	go_chan_free(t);
	ck_assert(settle(base_count, base_sudogs, base_timers));

	/* a timer that fired before the select: its value waits in the
	 * buffer, and a non-blocking select takes it */
	t = go_after(MS);
	while (go_chan_len(t) == 0)
		go_sleep(MS);
	go_case c1 = GO_RECV(t, &when);
	ck_assert_int_eq(go_select_nb(&c1, 1), 0);
	ck_assert_int_eq(go_select_nb(&c1, 1), -1); /* once only */
	go_chan_free(t);
	go_chan_free(c);
	go_chan_free(never);
}
END_TEST

/* A ticker channel in a select loop with a quit channel. */
static void quit_after(go_chan *quit, int64_t ns)
{
	go_sleep(ns);
	go_chan_close(quit);
}

START_TEST(select_ticker_until_quit)
{
	const int64_t period = MS;
	go_ticker *tk = go_ticker_new(period);
	ck_assert_ptr_nonnull(tk);
	go_chan *quit = go_chan_make(0, 0);
	int64_t t0 = go_now();
	ck_assert_int_eq(go(quit_after, quit, 50 * MS), 0);
	int ticks = 0;
	int64_t last = t0;
	for (;;) {
		int64_t when = 0;
		go_case cases[2] = { GO_RECV(go_ticker_chan(tk), &when), GO_RECV(quit, NULL) };
		int k = go_select(cases, 2);
		if (k == 1)
			break;
		ck_assert_int_eq(k, 0);
		ck_assert_int_gt(when, last);
		ck_assert_int_le(when, go_now());
		last = when;
		ticks++;
	}
	int64_t elapsed = go_now() - t0;
	ck_assert_int_ge(elapsed, 50 * MS);
	/* ticks are dropped while the channel is full, never made up */
	ck_assert_int_ge(ticks, 1);
	ck_assert_int_le(ticks, elapsed / period + 1);
	go_ticker_free(tk);
	go_chan_free(quit);
}
END_TEST

/* ---- select2.go: repeated selects do not pile up sudogs ---------------- */

static void s2_sender(go_chan *c, int n)
{
	int one = 1;
	for (int i = 0; i < n; i++)
		go_chan_send(c, &one);
}

struct s2 {
	go_chan *c, *dummy;
	int n;
	_Atomic int64_t maxsudogs;
	_Atomic int dummy_chosen;
	go_wg wg;
};
static void s2_receiver(struct s2 *s)
{
	int64_t max = 0;
	for (int i = 0; i < s->n; i++) {
		go_case cases[2] = { GO_RECV(s->c, NULL), GO_RECV(s->dummy, NULL) };
		if (go_select(cases, 2) == 1)
			atomic_store(&s->dummy_chosen, 1);
		int64_t inuse = sudogs_in_use();
		if (inuse > max)
			max = inuse;
	}
	atomic_store(&s->maxsudogs, max);
	go_wg_done(&s->wg);
}

static void select2(int procs)
{
	int old = go_maxprocs(procs);
	static struct s2 s;
	memset(&s, 0, sizeof s);
	s.c = go_chan_make(sizeof(int), 0);
	s.dummy = go_chan_make(sizeof(int), 0);
	s.n = SCALE(100000);
	for (int round = 0; round < 2; round++) { /* warm up, then again */
		go_wg_add(&s.wg, 1);
		ck_assert_int_eq(go(s2_sender, s.c, s.n), 0);
		ck_assert_int_eq(go(s2_receiver, &s), 0);
		go_wg_wait(&s.wg);
		ck_assert_int_eq(ldi(&s.dummy_chosen), 0);
		/* at most the sender's one and the receiver's two */
		ck_assert_int_le(ld64(&s.maxsudogs), base_sudogs + 3);
		ck_assert(settle(base_count, base_sudogs, base_timers));
	}
	go_chan_free(s.c);
	go_chan_free(s.dummy);
	go_maxprocs(old);
}

START_TEST(select2_sudogs_bounded_p1) { select2(1); }
END_TEST
START_TEST(select2_sudogs_bounded_p2) { select2(2); }
END_TEST

/* ---- many goroutines selecting on shared channels ---------------------- */

/* Producers send through selects over an unbuffered and a buffered
 * channel (one of them twice); consumers receive through selects over the
 * same two plus a quit channel, closed when every value has arrived. */
struct many {
	go_chan *a, *b, *quit;
	int per;
	int64_t total;
	_Atomic int64_t sum, count;
	go_wg wg;
};

static void many_producer(struct many *m, int id)
{
	for (int k = 0; k < m->per; k++) {
		int64_t v = (int64_t)id * m->per + k + 1;
		go_case cases[3] = { GO_SEND(m->a, &v), GO_SEND(m->b, &v), GO_SEND(m->a, &v) };
		go_select(cases, 3);
	}
	go_wg_done(&m->wg);
}

static void many_consumer(struct many *m)
{
	for (;;) {
		int64_t v = 0;
		go_case cases[4] = { GO_RECV(m->a, &v), GO_RECV(m->quit, NULL), GO_RECV(m->b, &v),
		                     GO_RECV(m->a, &v) };
		int k = go_select(cases, 4);
		if (k == 1)
			break;
		atomic_fetch_add(&m->sum, v);
		if (atomic_fetch_add(&m->count, 1) + 1 == m->total)
			go_chan_close(m->quit);
	}
	go_wg_done(&m->wg);
}

static void many_selectors(int procs, bool flip)
{
	int old = go_maxprocs(procs);
	static struct many m;
	memset(&m, 0, sizeof m);
	const int np = SCALE(2000), nc = SCALE(400) + 1;
	m.per = 20;
	m.total = (int64_t)np * m.per;
	m.a = go_chan_make(sizeof(int64_t), 0);
	m.b = go_chan_make(sizeof(int64_t), 8);
	m.quit = go_chan_make(0, 0);
	go_wg_add(&m.wg, np + nc);
	for (int i = 0; i < nc; i++)
		ck_assert_int_eq(go(many_consumer, &m), 0);
	for (int i = 0; i < np; i++)
		ck_assert_int_eq(go(many_producer, &m, i), 0);
	if (flip) {
		int64_t end = go_now() + 60 * SEC;
		for (int flips = 0; go_count() > base_count; flips++) {
			ck_assert_msg(go_now() < end, "stuck at %lld values",
			              (long long)atomic_load(&m.count));
			go_maxprocs(flips % 2 ? 1 : 2);
			go_sleep(200000);
		}
	}
	go_wg_wait(&m.wg);
	ck_assert_int_eq(ld64(&m.count), m.total);
	ck_assert_int_eq(ld64(&m.sum), m.total * (m.total + 1) / 2);
	ck_assert_uint_eq(go_chan_len(m.b), 0);
	ck_assert(settle(base_count, base_sudogs, base_timers));
	go_chan_free(m.a);
	go_chan_free(m.b);
	go_chan_free(m.quit);
	go_maxprocs(old);
}

START_TEST(many_selectors_p1) { many_selectors(1, false); }
END_TEST
START_TEST(many_selectors_p2) { many_selectors(2, false); }
END_TEST
START_TEST(many_selectors_maxprocs_changing) { many_selectors(2, true); }
END_TEST

/* Goroutines whose selects have a send and a receive case on the same
 * unbuffered channel pair with each other (never with themselves) until
 * quit is closed: every value sent is received once. */
struct sym {
	go_chan *c, *quit;
	_Atomic int64_t sent, recvd, sumsent, sumrecvd;
	go_wg wg;
};

static void sym_worker(struct sym *s, int id)
{
	for (int64_t n = 0;; n++) {
		int64_t out = (int64_t)id * 1000003 + n, in = -1;
		go_case cases[3] = { GO_SEND(s->c, &out), GO_RECV(s->c, &in), GO_RECV(s->quit, NULL) };
		int k = go_select(cases, 3);
		if (k == 2)
			break;
		if (k == 0) {
			atomic_fetch_add(&s->sent, 1);
			atomic_fetch_add(&s->sumsent, out);
		} else {
			atomic_fetch_add(&s->recvd, 1);
			atomic_fetch_add(&s->sumrecvd, in);
		}
	}
	go_wg_done(&s->wg);
}

static void symmetric_selects(int procs)
{
	int old = go_maxprocs(procs);
	static struct sym s;
	memset(&s, 0, sizeof s);
	s.c = go_chan_make(sizeof(int64_t), 0);
	s.quit = go_chan_make(0, 0);
	const int n = SCALE(500) + 1;
	go_wg_add(&s.wg, n);
	for (int i = 0; i < n; i++)
		ck_assert_int_eq(go(sym_worker, &s, i), 0);
	int64_t end = go_now() + 30 * SEC;
	while (ld64(&s.recvd) < 50000 && go_now() < end)
		go_sleep(MS);
	go_chan_close(s.quit);
	go_wg_wait(&s.wg);
	ck_assert_int_ge(ld64(&s.recvd), 50000);
	ck_assert_int_eq(ld64(&s.sent), ld64(&s.recvd));
	ck_assert_int_eq(ld64(&s.sumsent), ld64(&s.sumrecvd));
	ck_assert(settle(base_count, base_sudogs, base_timers));
	go_chan_free(s.c);
	go_chan_free(s.quit);
	go_maxprocs(old);
}

START_TEST(symmetric_selects_p1) { symmetric_selects(1); }
END_TEST
START_TEST(symmetric_selects_p2) { symmetric_selects(2); }
END_TEST

/* ---- go_chan_free once a select's case has run -------------------------- */

/* goshim.h: go_chan_free is fatal only if a goroutine is blocked on the
 * channel; goroutines just woken from it are waited for. A goroutine whose
 * select case was completed by another goroutine (a value, a close) is no
 * longer blocked, and the program no longer uses the channel: freeing it
 * right then must work, and nothing may touch its memory afterwards. Go's
 * selectgo, after gopark returns, relocks every channel of the select and
 * dequeues the sudogs of the cases that did not run (pass 3): in C that
 * is a use after free unless go_chan_free waits for it (hchan.nref). These
 * failed with the original port (the select locked the freed channel, or
 * go_chan_free died "with waiting goroutines" on a runnable goroutine). */
static _Atomic int selector_done;

static void recv_selector(go_chan *a)
{
	int v;
	go_case k = GO_RECV(a, &v);
	go_select(&k, 1);
	atomic_fetch_add(&selector_done, 1);
}

static void recv2_selector(go_chan *a, go_chan *b)
{
	int v, w;
	go_case k[2] = { GO_RECV(a, &v), GO_RECV(b, &w) };
	go_select(k, 2);
	atomic_fetch_add(&selector_done, 1);
}

static bool wait_selector(int n)
{
	int64_t end = go_now() + 2 * SEC;
	while (ldi(&selector_done) < n && go_now() < end)
		go_yield();
	return ldi(&selector_done) >= n;
}

/* After go_chan_free(c) the program reuses the memory: allocates blocks of
 * c's size until malloc hands back c's own block (kept in reused), which
 * is filled with bytes of 1 (a lock word that reads as held). Nothing may
 * write it afterwards. False if malloc did not give the block back (ASan's
 * quarantine; ASan reports any use after free itself). */
static void *volatile reused; /* volatile: the compiler keeps malloc and memset */
static bool reuse_block(void *freed, size_t size)
{
	void *others[256];
	int n = 0;
	reused = NULL;
	while (n < 256) {
		void *p = malloc(size);
		if (!p)
			break;
		if (p == freed) {
			reused = p;
			memset(p, 1, size);
			break;
		}
		others[n++] = p;
	}
	while (n > 0)
		free(others[--n]);
	return reused != NULL;
}

/* Whether the reused block still holds only bytes of 1; frees it. */
static bool reused_intact(size_t size)
{
	bool ok = true;
	if (reused) {
		for (size_t i = 0; i < size; i++)
			if (((volatile unsigned char *)reused)[i] != 1)
				ok = false;
		free(reused);
		reused = NULL;
	}
	return ok;
}

static const size_t unbuffered_size = (sizeof(struct hchan) + 15) & ~(size_t)15; /* makechan */

static void check_reused(int round)
{
	if (!reused_intact(unbuffered_size))
		panicf("round %d: the freed channel was written after go_chan_free", round);
}

/* The selecting receiver's case has run (a sender gave it a value, or a
 * close woke it); the channel is freed at once. */
static void free_after_select_woken(bool by_close)
{
	for (int i = 0; i < 100; i++) {
		go_chan *a = mkchan(sizeof(int), 0);
		int64_t s0 = sudogs_in_use();
		GO(recv_selector, a);
		while (sudogs_in_use() < s0 + 1)
			go_yield();
		if (by_close)
			go_chan_close(a); /* nobody waits on a any more */
		else
			send_int(a, i); /* the selector's case has run */
		go_chan_free(a);
		reuse_block(a, unbuffered_size);
		if (!wait_selector(i + 1))
			panicf("round %d: the select did not return: it locked the freed channel", i);
		check_reused(i);
	}
	say("ok\n");
}
static void free_after_select_completed(void) { free_after_select_woken(false); }
static void close_free_after_select(void) { free_after_select_woken(true); }

/* The case on a ran; the program frees b, which the select no longer
 * waits on (the selector is runnable, not blocked). */
static void free_after_select_decided(void)
{
	for (int i = 0; i < 100; i++) {
		go_chan *a = mkchan(sizeof(int), 0), *b = mkchan(sizeof(int), 0);
		int64_t s0 = sudogs_in_use();
		GO(recv2_selector, a, b);
		while (sudogs_in_use() < s0 + 2)
			go_yield();
		send_int(a, i); /* the select is decided: case 0 ran */
		go_chan_free(b);
		reuse_block(b, unbuffered_size);
		if (!wait_selector(i + 1))
			panicf("round %d: the select did not return", i);
		check_reused(i);
		go_chan_free(a);
	}
	say("ok\n");
}

/* Many selectors blocked on quit (and their own channel) are woken by
 * close(quit), which is freed at once: the quit-channel pattern. */
static void free_quit_after_close(void)
{
	enum { N = 16 };
	for (int i = 0; i < 30; i++) {
		go_chan *quit = mkchan(sizeof(int), 0), *own[N];
		int64_t s0 = sudogs_in_use();
		int base = ldi(&selector_done);
		for (int k = 0; k < N; k++) {
			own[k] = mkchan(sizeof(int), 0);
			GO(recv2_selector, own[k], quit);
		}
		while (sudogs_in_use() < s0 + 2 * N)
			go_yield();
		go_chan_close(quit);
		go_chan_free(quit);
		reuse_block(quit, unbuffered_size);
		if (!wait_selector(base + N))
			panicf("round %d: the selects did not return", i);
		check_reused(i);
		for (int k = 0; k < N; k++)
			go_chan_free(own[k]);
	}
	say("ok\n");
}

START_TEST(free_channel_after_select_completed)
{
	run_child("free_after_select_completed", NULL, &result);
	ck_assert_exit_status(&result, 0);
	ck_assert_output_has(&result, "ok\n");
}
END_TEST

START_TEST(close_and_free_channel_of_blocked_select)
{
	run_child("close_free_after_select", NULL, &result);
	ck_assert_exit_status(&result, 0);
	ck_assert_output_has(&result, "ok\n");
}
END_TEST

START_TEST(free_quit_channel_right_after_close)
{
	run_child("free_quit_after_close", NULL, &result);
	ck_assert_exit_status(&result, 0);
	ck_assert_output_has(&result, "ok\n");
}
END_TEST

START_TEST(free_other_channel_after_select_decided)
{
	run_child("free_after_select_decided", NULL, &result);
	ck_assert_exit_status(&result, 0);
	ck_assert_output_has(&result, "ok\n");
}
END_TEST

/* ---- fatal misuse: child scenarios ------------------------------------- */

static void select_send_closed_nb(void)
{
	go_chan *c = mkchan(sizeof(int), 1), *other = mkchan(sizeof(int), 0);
	go_chan_close(c);
	int v = 1, x;
	go_case cases[2] = { GO_RECV(other, &x), GO_SEND(c, &v) };
	go_select_nb(cases, 2);
	say("NOT REACHED\n");
}

static void select_send_closed_blocking(void)
{
	go_chan *c = mkchan(sizeof(int), 0), *other = mkchan(sizeof(int), 0);
	go_chan_close(c);
	int v = 1, x;
	go_case cases[3] = { GO_RECV(other, &x), GO_SEND(c, &v), GO_RECV(NULL, &x) };
	go_select(cases, 3);
	say("NOT REACHED\n");
}

static void blocked_send_selector(go_chan *c, go_chan *other)
{
	int v = 1, x;
	go_case cases[2] = { GO_RECV(other, &x), GO_SEND(c, &v) };
	say("selector blocks\n");
	go_select(cases, 2);
	say("NOT REACHED: select returned\n");
}

/* A select blocked with a send case on c, when another goroutine closes c. */
static void select_blocked_send_closed(void)
{
	go_chan *c = mkchan(sizeof(int), 0), *other = mkchan(sizeof(int), 0);
	int64_t s0 = sudogs_in_use();
	GO(blocked_send_selector, c, other);
	while (sudogs_in_use() < s0 + 2)
		go_sleep(100000);
	say("closing\n");
	go_chan_close(c);
	go_sleep(5 * SEC); /* the selector's panic ends the process first */
	say("NOT REACHED: main survived\n");
}

static void select_too_many_cases(void)
{
	static go_case cases[65537];
	for (int i = 0; i < 65537; i++)
		cases[i] = GO_RECV(NULL, NULL);
	go_select_nb(cases, 65537);
	say("NOT REACHED\n");
}

static void select_bad_op(void)
{
	go_case cases[2] = { GO_RECV(NULL, NULL), { .chan = NULL, .op = 3 } };
	go_select_nb(cases, 2);
	say("NOT REACHED\n");
}

static void select_null_send_elem(void)
{
	go_chan *c = mkchan(sizeof(int), 1);
	go_case k = GO_SEND(c, NULL);
	go_select_nb(&k, 1);
	say("NOT REACHED\n");
}

static void select_free_waiting(void)
{
	go_chan *a = mkchan(sizeof(int), 0), *b = mkchan(sizeof(int), 0);
	int64_t s0 = sudogs_in_use();
	GO(recv2_selector, a, b);
	while (sudogs_in_use() < s0 + 2)
		go_sleep(100000);
	go_chan_free(b);
	say("NOT REACHED\n");
}

static void select_deadlock(void)
{
	go_chan *c = mkchan(sizeof(int), 0), *d = mkchan(sizeof(int), 1);
	int x;
	go_case cases[3] = { GO_RECV(c, &x), GO_RECV(d, &x), GO_SEND(c, &x) };
	go_select(cases, 3);
	say("NOT REACHED\n");
}

static void select_no_cases_deadlock(void)
{
	go_select(NULL, 0);
	say("NOT REACHED\n");
}

static struct child_result fres;

static void expect_fatal(const char *name, const char *msg)
{
	run_child(name, NULL, &fres);
	ck_assert_exit_status(&fres, 2);
	ck_assert_output_has(&fres, msg);
	ck_assert_msg(!strstr(fres.out, "NOT REACHED"), "%s went on:\n%s", name, out_tail(&fres));
}

START_TEST(fatal_send_case_on_closed)
{
	expect_fatal("select_send_closed_nb", "panic: send on closed channel\n");
	expect_fatal("select_send_closed_blocking", "panic: send on closed channel\n");
	expect_fatal("select3_panic_send", "panic: send on closed channel\n");
	expect_fatal("select3_panic_select_send", "panic: send on closed channel\n");
}
END_TEST

START_TEST(fatal_blocked_send_case_closed)
{
	expect_fatal("select_blocked_send_closed", "panic: send on closed channel\n");
	ck_assert_output_has(&fres, "closing\n");
}
END_TEST

START_TEST(fatal_bad_cases)
{
	expect_fatal("select_too_many_cases", "fatal error: go_select: 65537 cases (at most 65536)\n");
	expect_fatal("select_bad_op",
	             "fatal error: go_select: case 1 has op 3 (want GO_OP_SEND or GO_OP_RECV)\n");
	expect_fatal("select_null_send_elem",
	             "fatal error: go_select: NULL element for a channel of 4-byte elements\n");
}
END_TEST

START_TEST(fatal_free_with_blocked_select)
{
	expect_fatal("select_free_waiting", "panic: go_chan_free of a channel with waiting goroutines\n");
}
END_TEST

START_TEST(fatal_select_deadlock)
{
	expect_fatal("select_deadlock", "fatal error: all goroutines are asleep - deadlock!\n");
	ck_assert_output_has(&fres, "[select]:");
	expect_fatal("select_no_cases_deadlock", "fatal error: all goroutines are asleep - deadlock!\n");
	ck_assert_output_has(&fres, "[select (no cases)]:");
}
END_TEST

static const struct scenario scenarios[] = {
	{ "select", child_select },
	{ "select3", child_select3 },
	{ "select4", child_select4 },
	{ "select6", child_select6 },
	{ "select7", child_select7 },
	{ "select8", child_select8 },
	{ "select3_panic_send", select3_panic_send },
	{ "select3_panic_select_send", select3_panic_select_send },
	{ "select_send_closed_nb", select_send_closed_nb },
	{ "select_send_closed_blocking", select_send_closed_blocking },
	{ "select_blocked_send_closed", select_blocked_send_closed },
	{ "select_too_many_cases", select_too_many_cases },
	{ "select_bad_op", select_bad_op },
	{ "select_null_send_elem", select_null_send_elem },
	{ "select_free_waiting", select_free_waiting },
	{ "free_after_select_completed", free_after_select_completed },
	{ "free_after_select_decided", free_after_select_decided },
	{ "close_free_after_select", close_free_after_select },
	{ "free_quit_after_close", free_quit_after_close },
	{ "select_deadlock", select_deadlock },
	{ "select_no_cases_deadlock", select_no_cases_deadlock },
	{ NULL, NULL },
};

static Suite *select_suite(void)
{
	Suite *s = suite_create("select");

	TCase *tc = tcase_create("programs");
	tcase_set_timeout(tc, 300);
	tcase_add_checked_fixture(tc, leak_setup, leak_teardown);
	tcase_add_loop_test(tc, go_test_programs, 0, 2 * NPROGRAMS);
	suite_add_tcase(s, tc);

	tc = tcase_create("semantics");
	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, leak_setup, leak_teardown);
	tcase_add_test(tc, fair_two_closed_channels);
	tcase_add_test(tc, fair_send_and_recv_nb);
	tcase_add_test(tc, fair_four_cases);
	tcase_add_test(tc, duplicate_channel_cases);
	tcase_add_test(tc, duplicate_channels_blocked);
	tcase_add_test(tc, select_sees_itself);
	tcase_add_test(tc, null_channels_never_ready);
	tcase_add_test(tc, nb_zero_cases);
	tcase_add_test(tc, recv_case_on_closed_channel);
	tcase_add_test(tc, recv_case_sets_ok);
	tcase_add_test(tc, blocked_selects_woken_by_close);
	tcase_add_test(tc, select_pairs_with_blocked_peer);
	tcase_add_test(tc, select_100_cases);
	tcase_add_test(tc, select_65536_cases);
	tcase_add_test(tc, select_on_after_channel);
	tcase_add_test(tc, select_ticker_until_quit);
	suite_add_tcase(s, tc);

	tc = tcase_create("fatal");
	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, leak_setup, leak_teardown);
	tcase_add_test(tc, fatal_send_case_on_closed);
	tcase_add_test(tc, fatal_blocked_send_case_closed);
	tcase_add_test(tc, fatal_bad_cases);
	tcase_add_test(tc, fatal_free_with_blocked_select);
	tcase_add_test(tc, fatal_select_deadlock);
	suite_add_tcase(s, tc);

	tc = tcase_create("stress");
	tcase_set_timeout(tc, 300);
	tcase_add_checked_fixture(tc, leak_setup, leak_teardown);
	tcase_add_test(tc, select2_sudogs_bounded_p1);
	tcase_add_test(tc, select2_sudogs_bounded_p2);
	tcase_add_test(tc, many_selectors_p1);
	tcase_add_test(tc, many_selectors_p2);
	tcase_add_test(tc, many_selectors_maxprocs_changing);
	tcase_add_test(tc, symmetric_selects_p1);
	tcase_add_test(tc, symmetric_selects_p2);
	suite_add_tcase(s, tc);

	/* go_chan_free right after a select's case ran (see
	 * free_after_select_woken): children, as a failure may hang. */
	tc = tcase_create("free_after_select");
	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, leak_setup, leak_teardown);
	tcase_add_test(tc, free_channel_after_select_completed);
	tcase_add_test(tc, close_and_free_channel_of_blocked_select);
	tcase_add_test(tc, free_other_channel_after_select_decided);
	tcase_add_test(tc, free_quit_channel_right_after_close);
	suite_add_tcase(s, tc);
	return s;
}

int main(int argc, char **argv)
{
	return test_main(argc, argv, select_suite, scenarios);
}
