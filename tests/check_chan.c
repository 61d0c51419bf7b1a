/* Channels (goshim.h go_chan_*): Go's test/chan programs re-expressed in C
 * and run as child processes at GOMAXPROCS=1 and 2 (their output checked
 * exactly); the semantics of make, send, recv, trysend, tryrecv, close,
 * len, cap and free; the misuses Go turns into panics (exit 2 with Go's
 * message) and deadlock detection; stress with thousands of goroutines.
 * After every test: no goroutine left behind (go_count back to its base)
 * and no sudog left in use (sudogs_in_use() back to its value before). */
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

/* Output goes straight to the fd (no stdio buffer to lose on a fatal
 * exit); stdout and stderr are the same pipe. */
static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	char buf[8192];
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

/* Runs fn as a goroutine and waits for it with a WaitGroup: the main
 * goroutine is an adopted thread locked to its OS thread. */
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
static void run_main(void (*fn)(void))
{
	struct main_run r = { .fn = fn };
	go_wg_add(&r.wg, 1);
	if (go_spawn(main_tramp, &r) != 0)
		panicf("go_spawn");
	go_wg_wait(&r.wg);
}

/* Waits (at most 10 s) until only the main goroutine is left and the
 * sudogs in use are back to sudog0. */
static bool settle(int base, int64_t sudog0)
{
	int64_t end = go_now() + 10 * SEC;
	while (go_count() != base || sudogs_in_use() != sudog0) {
		if (go_now() > end)
			return false;
		go_sleep(100000);
	}
	return true;
}

/* A child running one of Go's programs: its main in a goroutine; for the
 * programs whose goroutines all end, a leak check (goroutines, sudogs)
 * afterwards. */
static void child_program(void (*fn)(void), bool terminates)
{
	int64_t sudog0 = sudogs_in_use();
	run_main(fn);
	if (terminates) {
		if (!settle(1, sudog0))
			panicf("leak: %d goroutines, %lld sudogs in use (want 1, %lld)", go_count(),
			     (long long)sudogs_in_use(), (long long)sudog0);
		say("leaks: none\n");
	}
}

static const int primes100[25] = { 2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41,
                                   43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97 };
#define PRIMES_LINE "2 3 5 7 11 13 17 19 23 29 31 37 41 43 47 53 59 61 67 71 73 79 83 89 97\n"

/* ---- sieve1.go: the classical inefficient concurrent prime sieve -------- */

/* Send the sequence 2, 3, 4, ... to channel 'ch'. */
static void s1_generate(go_chan *ch)
{
	for (int i = 2;; i++)
		go_chan_send(ch, &i);
}

/* Copy the values from channel 'in' to channel 'out', removing those
 * divisible by 'prime'. */
static void s1_filter(go_chan *in, go_chan *out, int prime)
{
	int i;
	while (go_chan_recv(in, &i)) /* for i := range in */
		if (i % prime != 0)
			go_chan_send(out, &i);
}

/* The prime sieve: Daisy-chain Filter processes together. */
static void s1_sieve(go_chan *primes)
{
	go_chan *ch = mkchan(sizeof(int), 0);
	GO(s1_generate, ch);
	for (;;) {
		/* Note that ch is different on each iteration. */
		int prime = recv_int(ch);
		go_chan_send(primes, &prime);
		go_chan *ch1 = mkchan(sizeof(int), 0);
		GO(s1_filter, ch, ch1, prime);
		ch = ch1;
	}
}

static void prog_sieve1(void)
{
	go_chan *primes = mkchan(sizeof(int), 0);
	GO(s1_sieve, primes);
	char line[256] = "sieve1:";
	for (int i = 0; i < 25; i++) {
		int x = recv_int(primes);
		if (x != primes100[i])
			panicf("%d != %d", x, primes100[i]);
		snprintf(line + strlen(line), sizeof line - strlen(line), " %d", x);
	}
	say("%s\n", line);
}

/* ---- sieve2.go: Eratosthenes with a heap of channels and a proxy -------- */

static void s2_odds_gen(go_chan *out)
{
	for (int n = 5;; n += 2)
		go_chan_send(out, &n);
}

/* Return a chan of odd numbers, starting from 5. */
static go_chan *s2_odds(void)
{
	go_chan *out = mkchan(sizeof(int), 50);
	GO(s2_odds_gen, out);
	return out;
}

static void s2_multiples_gen(go_chan *out, int p)
{
	for (int n = p * p;; n += 2 * p)
		go_chan_send(out, &n);
}

/* Return a chan of odd multiples of the prime number p, starting from p*p. */
static go_chan *s2_multiples(int p)
{
	go_chan *out = mkchan(sizeof(int), 10);
	GO(s2_multiples_gen, out, p);
	return out;
}

struct peekch {
	int head;
	go_chan *ch;
};

/* container/heap over PeekChHeap, sorting by head values. */
struct peekheap {
	struct peekch **a;
	int n, cap;
};

static void heap_swap(struct peekheap *h, int i, int j)
{
	struct peekch *t = h->a[i];
	h->a[i] = h->a[j];
	h->a[j] = t;
}

static void heap_push(struct peekheap *h, struct peekch *x)
{
	if (h->n == h->cap) {
		h->cap = h->cap ? 2 * h->cap : 16;
		h->a = realloc(h->a, (size_t)h->cap * sizeof *h->a);
		CHECK(h->a);
	}
	int j = h->n++;
	h->a[j] = x;
	while (j > 0) { /* up */
		int i = (j - 1) / 2;
		if (i == j || !(h->a[j]->head < h->a[i]->head))
			break;
		heap_swap(h, i, j);
		j = i;
	}
}

static struct peekch *heap_pop(struct peekheap *h)
{
	CHECK(h->n > 0);
	int n = h->n - 1;
	heap_swap(h, 0, n);
	int i = 0; /* down(h, 0, n) */
	for (;;) {
		int j1 = 2 * i + 1;
		if (j1 >= n)
			break;
		int j = j1;
		if (j1 + 1 < n && h->a[j1 + 1]->head < h->a[j1]->head)
			j = j1 + 1;
		if (!(h->a[j]->head < h->a[i]->head))
			break;
		heap_swap(h, i, j);
		i = j;
	}
	return h->a[--h->n];
}

/* The proxy goroutine: receives values from 'proxy' and stores them in an
 * expanding circular buffer (Go's container/ring, grown by n each time it
 * fills, n doubling), so that sending to 'out' never blocks. */
static void s2_proxy(go_chan *proxy, go_chan *out)
{
	int n = 16; /* the allocated size of the circular queue */
	int size = n;
	int *ring = calloc((size_t)size, sizeof *ring);
	CHECK(ring);
	int first = 0, last = 0;
	for (;;) {
		go_chan *c = out;
		int e = 0, in;
		if (first == last)
			c = NULL; /* buffer empty: disable output */
		else
			e = ring[first];
		go_case cases[2] = { GO_RECV(proxy, &in), GO_SEND(c, &e) };
		switch (go_select(cases, 2)) {
		case 0:
			ring[last] = in;
			if ((last + 1) % size == first) {
				/* buffer full: expand it */
				int *bigger = calloc((size_t)(size + n), sizeof *bigger);
				CHECK(bigger);
				for (int k = 0; k < size; k++)
					bigger[k] = ring[(first + k) % size];
				free(ring);
				ring = bigger;
				first = 0;
				last = size - 1;
				size += n;
				n *= 2;
			}
			last = (last + 1) % size;
			break;
		case 1:
			first = (first + 1) % size;
			break;
		default:
			panicf("sendproxy: select returned a bad index");
		}
	}
}

/* Return a channel to serve as a sending proxy to 'out'. */
static go_chan *s2_sendproxy(go_chan *out)
{
	go_chan *proxy = mkchan(sizeof(int), 10);
	GO(s2_proxy, proxy, out);
	return proxy;
}

/* Merge channels of multiples of 'primes' into 'composites'. */
static void s2_merge(go_chan *primes, go_chan *composites)
{
	struct peekheap h = { 0 };
	int min = 15;
	for (;;) {
		go_chan *m = s2_multiples(recv_int(primes));
		int head = recv_int(m);
		while (min < head) {
			go_chan_send(composites, &min);
			struct peekch *minchan = heap_pop(&h);
			min = minchan->head;
			minchan->head = recv_int(minchan->ch);
			heap_push(&h, minchan);
		}
		while (min == head) {
			struct peekch *minchan = heap_pop(&h);
			min = minchan->head;
			minchan->head = recv_int(minchan->ch);
			heap_push(&h, minchan);
		}
		go_chan_send(composites, &head);
		struct peekch *pc = malloc(sizeof *pc);
		CHECK(pc);
		pc->head = recv_int(m);
		pc->ch = m;
		heap_push(&h, pc);
	}
}

/* Sieve out 'composites' from 'candidates'. The merging goroutine
 * receives from 'primes' much slower than this one sends to it: the proxy
 * buffers them without bound. */
static void s2_sift(go_chan *primes0, go_chan *composites, go_chan *out)
{
	go_chan *primes = s2_sendproxy(primes0);
	go_chan *candidates = s2_odds();
	int p = recv_int(candidates);
	for (;;) {
		int c = recv_int(composites);
		while (p < c) {
			go_chan_send(primes, &p);
			go_chan_send(out, &p);
			p = recv_int(candidates);
		}
		if (p == c)
			p = recv_int(candidates);
	}
}

/* Return a chan int of primes. */
static go_chan *s2_sieve(void)
{
	go_chan *out = mkchan(sizeof(int), 10); /* The output values. */
	send_int(out, 2);
	send_int(out, 3);
	/* The channel of all composites to be eliminated in increasing order. */
	go_chan *composites = mkchan(sizeof(int), 50);
	/* The feedback loop. */
	go_chan *primes = mkchan(sizeof(int), 10);
	send_int(primes, 3);
	GO(s2_merge, primes, composites);
	GO(s2_sift, primes, composites, out);
	return out;
}

static void prog_sieve2(void)
{
	go_chan *primes = s2_sieve();
	char line[256] = "sieve2:";
	for (int i = 0; i < 25; i++) {
		int x = recv_int(primes);
		if (x != primes100[i])
			panicf("%d != %d", x, primes100[i]);
		snprintf(line + strlen(line), sizeof line - strlen(line), " %d", x);
	}
	say("%s\n", line);
}

/* ---- nonblock.go: non-blocking operations on several element types ------ */

struct gostring { char s[24]; }; /* Go's string, as a value of 24 bytes */

struct nb_kind {
	const char *name;
	size_t size;
	const void *to_receiver; /* what main sends; the receiver checks it */
	const void *from_sender; /* what the sender sends; main checks it */
};

static const int32_t nb_i32_in = 123, nb_i32_out = 234;
static const int64_t nb_i64_in = 123456, nb_i64_out = 234567;
static const bool nb_b_in = true, nb_b_out = true;
static const struct gostring nb_s_in = { "hello" }, nb_s_out = { "hello again" };
static const struct nb_kind nb_kinds[4] = {
	{ "i32", sizeof(int32_t), &nb_i32_in, &nb_i32_out },
	{ "i64", sizeof(int64_t), &nb_i64_in, &nb_i64_out },
	{ "b", sizeof(bool), &nb_b_in, &nb_b_out },
	{ "s", sizeof(struct gostring), &nb_s_in, &nb_s_out },
};

static void nb_receiver(go_chan *c, go_chan *strobe, const struct nb_kind *k)
{
	char v[sizeof(struct gostring)];
	go_chan_recv(c, v);
	if (memcmp(v, k->to_receiver, k->size) != 0)
		panicf("%s value", k->name);
	bool t = true;
	go_chan_send(strobe, &t);
}

static void nb_sender(go_chan *c, go_chan *strobe, const struct nb_kind *k)
{
	go_chan_send(c, k->from_sender);
	bool t = true;
	go_chan_send(strobe, &t);
}

static go_ticker *nb_ticker; /* time.Tick(10 * 1000): 10 us */
static void nb_sleep(void)
{
	go_chan_recv(go_ticker_chan(nb_ticker), NULL);
	go_chan_recv(go_ticker_chan(nb_ticker), NULL);
	go_yield();
	go_yield();
	go_yield();
}

enum { maxTries = 10000 }; /* Up to 100ms per test. */

static void prog_nonblock(void)
{
	nb_ticker = go_ticker_new(10000);
	CHECK(nb_ticker);
	go_chan *sync = mkchan(sizeof(bool), 0);
	for (int buffer = 0; buffer < 2; buffer++) {
		go_chan *c[4];
		for (int i = 0; i < 4; i++)
			c[i] = mkchan(nb_kinds[i].size, (size_t)buffer);
		for (int i = 0; i < 4; i++) {
			char v[sizeof(struct gostring)];
			go_case rc = GO_RECV(c[i], v);
			if (go_select_nb(&rc, 1) != -1)
				panicf("blocked %ssender", nb_kinds[i].name);
		}
		for (int i = 0; i < 4; i++) {
			const struct nb_kind *k = &nb_kinds[i];
			GO(nb_receiver, c[i], sync, k);
			int try = 0;
			for (;;) {
				go_case sc = GO_SEND(c[i], k->to_receiver);
				if (go_select_nb(&sc, 1) == 0)
					break;
				if (++try > maxTries)
					panicf("%sreceiver buffer=%d", k->name, buffer);
				nb_sleep();
			}
			go_chan_recv(sync, NULL);

			GO(nb_sender, c[i], sync, k);
			if (buffer > 0)
				go_chan_recv(sync, NULL);
			try = 0;
			char v[sizeof(struct gostring)];
			for (;;) {
				go_case rc = GO_RECV(c[i], v);
				if (go_select_nb(&rc, 1) == 0) {
					CHECK(rc.ok);
					break;
				}
				if (++try > maxTries)
					panicf("%ssender buffer=%d", k->name, buffer);
				nb_sleep();
			}
			if (memcmp(v, k->from_sender, k->size) != 0)
				panicf("%ssender value", k->name);
			if (buffer == 0)
				go_chan_recv(sync, NULL);
		}
		for (int i = 0; i < 4; i++)
			go_chan_free(c[i]);
		say("nonblock: buffer %d ok\n", buffer);
	}
	go_ticker_free(nb_ticker);
	go_chan_free(sync);
}

/* ---- doubleselect.go: two cases of one select must never both run ------ */

/* sender sends a counter to one of four different channels. If two cases
 * both end up running in the same iteration, the same value will be sent
 * to two different channels. */
static void ds_sender(int n, go_chan *c1, go_chan *c2, go_chan *c3, go_chan *c4)
{
	for (int i = 0; i < n; i++) {
		go_case cases[4] = { GO_SEND(c1, &i), GO_SEND(c2, &i), GO_SEND(c3, &i), GO_SEND(c4, &i) };
		go_select(cases, 4);
	}
	/* the defers, last first */
	go_chan_close(c4);
	go_chan_close(c3);
	go_chan_close(c2);
	go_chan_close(c1);
}

/* mux receives the values from sender and forwards them onto another channel. */
static void ds_mux(go_chan *out, go_chan *in, go_chan *done)
{
	int v;
	while (go_chan_recv(in, &v))
		go_chan_send(out, &v);
	bool t = true;
	go_chan_send(done, &t);
}

static void ds_closer(go_chan *done, go_chan *cmux)
{
	for (int i = 0; i < 4; i++)
		go_chan_recv(done, NULL);
	go_chan_close(cmux);
}

static void prog_doubleselect(void)
{
	const int n = SCALE(100000);
	go_chan *c[4], *done = mkchan(sizeof(bool), 0), *cmux = mkchan(sizeof(int), 0);
	for (int i = 0; i < 4; i++)
		c[i] = mkchan(sizeof(int), 0);
	GO(ds_sender, n, c[0], c[1], c[2], c[3]);
	for (int i = 0; i < 4; i++)
		GO(ds_mux, cmux, c[i], done);
	GO(ds_closer, done, cmux);
	/* recver: checks for duplicates (and, beyond Go's test, for losses) */
	char *seen = calloc((size_t)n, 1);
	CHECK(seen);
	int v, count = 0;
	while (go_chan_recv(cmux, &v)) {
		if (v < 0 || v >= n)
			panicf("got bad value: %d", v);
		if (seen[v])
			panicf("got duplicate value: %d", v);
		seen[v] = 1;
		count++;
	}
	if (count != n)
		panicf("got %d values, want %d", count, n);
	free(seen);
	say("doubleselect: every value once\n");
}

/* ---- fifo.go: channels act as pure FIFOs ------------------------------- */

enum { FIFO_N = 10 };

static void fifo_asynch(void)
{
	go_chan *ch = mkchan(sizeof(int), FIFO_N);
	for (int i = 0; i < FIFO_N; i++)
		send_int(ch, i);
	for (int i = 0; i < FIFO_N; i++)
		if (recv_int(ch) != i)
			panicf("bad receive");
	go_chan_free(ch);
}

static void fifo_chain(go_chan *ch, int val, go_chan *in, go_chan *out)
{
	recv_int(in);
	int v = recv_int(ch);
	if (v != val)
		panicf("chain %d got %d", val, v);
	send_int(out, 1);
}

/* thread together a daisy chain to read the elements in sequence */
static void fifo_synch(void)
{
	go_chan *ch = mkchan(sizeof(int), 0);
	go_chan *in = mkchan(sizeof(int), 0);
	go_chan *start = in;
	for (int i = 0; i < FIFO_N; i++) {
		go_chan *out = mkchan(sizeof(int), 0);
		GO(fifo_chain, ch, i, in, out);
		in = out;
	}
	send_int(start, 0);
	for (int i = 0; i < FIFO_N; i++)
		send_int(ch, i);
	recv_int(in);
}

static void prog_fifo(void)
{
	fifo_asynch();
	say("fifo: asynch ok\n");
	fifo_synch();
	say("fifo: synch ok\n");
}

/* ---- goroutines.go: a long chain of goroutines, torn down cleanly ------- */

static void gr_f(go_chan *left, go_chan *right)
{
	send_int(left, recv_int(right));
}

static void gr_one(go_chan *c)
{
	send_int(c, 1);
}

static void prog_goroutines(void)
{
	const int n = SCALE(10000);
	go_chan *leftmost = mkchan(sizeof(int), 0);
	go_chan *right = leftmost, *left = leftmost;
	for (int i = 0; i < n; i++) {
		right = mkchan(sizeof(int), 0);
		GO(gr_f, left, right);
		left = right;
	}
	GO(gr_one, right);
	int v = recv_int(leftmost);
	if (v != 1)
		panicf("got %d", v);
	say("goroutines: 1 came through the chain\n");
}

/* ---- zerosize.go: channels of a zero-sized type ------------------------ */

static void prog_zerosize(void)
{
	go_chan *a = mkchan(0, 0); /* chan [0]byte */
	go_chan *b = mkchan(0, 1);
	go_chan *c = mkchan(0, 0); /* chan struct{} */
	go_chan *d = mkchan(0, 1);
	/* beyond Go's test: they work */
	go_chan_send(b, NULL);
	CHECK(go_chan_len(b) == 1 && go_chan_cap(b) == 1);
	CHECK(go_chan_recv(b, NULL));
	CHECK(go_chan_trysend(d, NULL));
	CHECK(!go_chan_trysend(d, NULL));
	CHECK(go_chan_tryrecv(d, NULL) == GO_OK);
	CHECK(go_chan_tryrecv(a, NULL) == GO_EMPTY);
	go_chan_close(c);
	CHECK(go_chan_tryrecv(c, NULL) == GO_CLOSED);
	go_chan_free(a);
	go_chan_free(b);
	go_chan_free(c);
	go_chan_free(d);
	say("zerosize: ok\n");
}

/* ---- powser1.go: power series (Doug McIlroy's Squinting at Power Series) */

/* A power series is a channel, along which flow rational coefficients. A
 * denominator of zero signifies the end. */
typedef struct {
	int64_t num, den; /* numerator, denominator */
} rat;

/* Output of the print mode, written at the end. */
static char ps_out[4096];
static void ps_print(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void ps_print(const char *fmt, ...)
{
	size_t len = strlen(ps_out);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(ps_out + len, sizeof ps_out - len, fmt, ap);
	va_end(ap);
}

static void pr(rat u)
{
	if (u.den == 1)
		ps_print("%lld", (long long)u.num);
	else
		ps_print("%lld/%lld", (long long)u.num, (long long)u.den);
	ps_print(" ");
}

static bool eq(rat u, rat c) { return u.num == c.num && u.den == c.den; }

typedef struct dch {
	go_chan *req; /* chan int */
	go_chan *dat; /* chan rat */
	int nam;
} dch;

typedef struct {
	dch *d[2];
} dch2;

/* Go's globals are written by many goroutines (racily, in Go): atomics. */
static const char *chnames;
static _Atomic int chnameserial;
static _Atomic int seqno;

static dch *mkdch(void)
{
	int c = atomic_fetch_add(&chnameserial, 1) % (int)strlen(chnames);
	dch *d = malloc(sizeof *d);
	CHECK(d);
	d->req = mkchan(sizeof(int), 0);
	d->dat = mkchan(sizeof(rat), 0);
	d->nam = c;
	return d;
}

static dch2 *mkdch2(void)
{
	dch2 *d2 = malloc(sizeof *d2);
	CHECK(d2);
	d2->d[0] = mkdch();
	d2->d[1] = mkdch();
	return d2;
}

/* split reads a single demand channel and replicates its output onto two,
 * which may be read at different rates. A process is created at first
 * demand for a rat and dies after the rat has been sent to both outputs.
 *
 * When multiple generations of split exist, the newest will service
 * requests on one channel, which is always renamed to be out[0]; the
 * oldest will service requests on the other channel, out[1]. All
 * generations but the newest hold queued data that has already been sent
 * to out[0]. When data has finally been sent to out[1], a signal on the
 * release-wait channel tells the next newer generation to begin servicing
 * out[1]. */
static void dosplit(dch *in, dch2 *out, go_chan *wait)
{
	bool both = false; /* do not service both channels */
	go_case c1[2] = { GO_RECV(out->d[0]->req, NULL), GO_RECV(wait, NULL) };
	if (go_select(c1, 2) == 1) {
		both = true;
		go_case c2[2] = { GO_RECV(out->d[0]->req, NULL), GO_RECV(out->d[1]->req, NULL) };
		if (go_select(c2, 2) == 1) {
			dch *t = out->d[0];
			out->d[0] = out->d[1];
			out->d[1] = t;
		}
	}
	int s = atomic_fetch_add(&seqno, 1) + 1;
	go_chan_send(in->req, &s);
	go_chan *release = mkchan(sizeof(int), 0);
	GO(dosplit, in, out, release);
	rat dat;
	go_chan_recv(in->dat, &dat);
	go_chan_send(out->d[0]->dat, &dat);
	if (!both)
		go_chan_recv(wait, NULL);
	go_chan_recv(out->d[1]->req, NULL);
	go_chan_send(out->d[1]->dat, &dat);
	send_int(release, 0);
}

static void split(dch *in, dch2 *out)
{
	go_chan *release = mkchan(sizeof(int), 0);
	GO(dosplit, in, out, release);
	send_int(release, 0);
}

static void put(rat dat, dch *out)
{
	go_chan_recv(out->req, NULL);
	go_chan_send(out->dat, &dat);
}

static rat get(dch *in)
{
	int s = atomic_fetch_add(&seqno, 1) + 1;
	go_chan_send(in->req, &s);
	rat r;
	go_chan_recv(in->dat, &r);
	return r;
}

/* Get one rat from each of n demand channels */
static void getn(dch *in[], int n, rat out[])
{
	if (n != 2)
		panicf("bad n in getn");
	go_chan *req[2], *dat[2];
	rat it;
	for (int i = 0; i < n; i++) {
		req[i] = in[i]->req;
		dat[i] = NULL;
	}
	for (n = 2 * n; n > 0; n--) {
		int s = atomic_fetch_add(&seqno, 1) + 1;
		go_case cases[4] = {
			GO_SEND(req[0], &s), GO_SEND(req[1], &s), GO_RECV(dat[0], &it), GO_RECV(dat[1], &it),
		};
		switch (go_select(cases, 4)) {
		case 0:
			dat[0] = in[0]->dat;
			req[0] = NULL;
			break;
		case 1:
			dat[1] = in[1]->dat;
			req[1] = NULL;
			break;
		case 2:
			out[0] = it;
			dat[0] = NULL;
			break;
		case 3:
			out[1] = it;
			dat[1] = NULL;
			break;
		default:
			panicf("getn: bad select index");
		}
	}
}

/* Get one rat from each of 2 demand channels */
static void get2(dch *in0, dch *in1, rat out[2])
{
	dch *in[2] = { in0, in1 };
	getn(in, 2, out);
}

static __attribute__((noreturn)) void ps_copy(dch *in, dch *out)
{
	for (;;) {
		go_chan_recv(out->req, NULL);
		rat r = get(in);
		go_chan_send(out->dat, &r);
	}
}

static void repeat(int64_t num, int64_t den, dch *out)
{
	for (;;)
		put((rat){ num, den }, out);
}

typedef dch *PS; /* power series */

static PS Ones, Twos;

static PS mkPS(void) { return mkdch(); }
static dch2 *mkPS2(void) { return mkdch2(); }

/* Integer gcd; needed for rational arithmetic */
static int64_t gcd(int64_t u, int64_t v)
{
	if (u < 0)
		return gcd(-u, v);
	if (u == 0)
		return v;
	return gcd(v % u, u);
}

/* Make a rational from two ints and from one int */
static rat i2tor(int64_t u, int64_t v)
{
	int64_t g = gcd(u, v);
	rat r;
	if (v > 0) {
		r.num = u / g;
		r.den = v / g;
	} else {
		r.num = -u / g;
		r.den = -v / g;
	}
	return r;
}

static rat itor(int64_t u) { return i2tor(u, 1); }

static rat zero, one;
static rat finis; /* End mark */

static int64_t end(rat u) { return u.den == 0 ? 1 : 0; }

/* Operations on rationals */
static rat add(rat u, rat v)
{
	int64_t g = gcd(u.den, v.den);
	return i2tor(u.num * (v.den / g) + v.num * (u.den / g), u.den * (v.den / g));
}

static rat mul(rat u, rat v)
{
	int64_t g1 = gcd(u.num, v.den);
	int64_t g2 = gcd(u.den, v.num);
	rat r;
	r.num = (u.num / g1) * (v.num / g2);
	r.den = (u.den / g2) * (v.den / g1);
	return r;
}

static rat neg(rat u) { return i2tor(-u.num, u.den); }
static rat sub(rat u, rat v) { return add(u, neg(v)); }

static rat inv(rat u) /* invert a rat */
{
	if (u.num == 0)
		panicf("zero divide in inv");
	return i2tor(u.den, u.num);
}

/* Print n terms of a power series */
static void printn(PS U, int n)
{
	bool done = false;
	for (; !done && n > 0; n--) {
		rat u = get(U);
		if (end(u) != 0)
			done = true;
		else
			pr(u);
	}
	ps_print("\n");
}

/* Evaluate n terms of power series U at x=c */
static rat eval(rat c, PS U, int n)
{
	if (n == 0)
		return zero;
	rat y = get(U);
	if (end(y) != 0)
		return zero;
	return add(y, mul(c, eval(c, U, n - 1)));
}

/* Power-series constructors return channels on which power series flow.
 * They start an encapsulated generator that puts the terms of the series
 * on the channel. */

/* Make a pair of power series identical to a given power series */
static dch2 *Split(PS U)
{
	dch2 *UU = mkdch2();
	GO(split, U, UU);
	return UU;
}

/* Add two power series */
static void add_g(PS U, PS V, PS Z)
{
	for (;;) {
		go_chan_recv(Z->req, NULL);
		rat uv[2];
		get2(U, V, uv);
		switch (end(uv[0]) + 2 * end(uv[1])) {
		case 0: {
			rat s = add(uv[0], uv[1]);
			go_chan_send(Z->dat, &s);
			break;
		}
		case 1:
			go_chan_send(Z->dat, &uv[1]);
			ps_copy(V, Z);
		case 2:
			go_chan_send(Z->dat, &uv[0]);
			ps_copy(U, Z);
		case 3:
			go_chan_send(Z->dat, &finis);
		}
	}
}

static PS Add(PS U, PS V)
{
	PS Z = mkPS();
	GO(add_g, U, V, Z);
	return Z;
}

/* Multiply a power series by a constant */
static void cmul_g(int64_t cnum, int64_t cden, PS U, PS Z)
{
	rat c = { cnum, cden };
	bool done = false;
	while (!done) {
		go_chan_recv(Z->req, NULL);
		rat u = get(U);
		if (end(u) != 0) {
			done = true;
		} else {
			rat m = mul(c, u);
			go_chan_send(Z->dat, &m);
		}
	}
	go_chan_send(Z->dat, &finis);
}

static PS Cmul(rat c, PS U)
{
	PS Z = mkPS();
	GO(cmul_g, c.num, c.den, U, Z);
	return Z;
}

/* Subtract */
static PS Sub(PS U, PS V) { return Add(U, Cmul(neg(one), V)); }

/* Multiply a power series by the monomial x^n */
static void monmul_g(PS U, int n, PS Z)
{
	for (; n > 0; n--)
		put(zero, Z);
	ps_copy(U, Z);
}

static PS Monmul(PS U, int n)
{
	PS Z = mkPS();
	GO(monmul_g, U, n, Z);
	return Z;
}

/* Multiply by x */
static PS Xmul(PS U) { return Monmul(U, 1); }

static PS Rep(rat c)
{
	PS Z = mkPS();
	GO(repeat, c.num, c.den, Z);
	return Z;
}

/* Monomial c*x^n */
static void mon_g(int64_t cnum, int64_t cden, int n, PS Z)
{
	rat c = { cnum, cden };
	if (c.num != 0) {
		for (; n > 0; n = n - 1)
			put(zero, Z);
		put(c, Z);
	}
	put(finis, Z);
}

static PS Mon(rat c, int n)
{
	PS Z = mkPS();
	GO(mon_g, c.num, c.den, n, Z);
	return Z;
}

static void shift_g(int64_t cnum, int64_t cden, PS U, PS Z)
{
	put((rat){ cnum, cden }, Z);
	ps_copy(U, Z);
}

static PS Shift(rat c, PS U)
{
	PS Z = mkPS();
	GO(shift_g, c.num, c.den, U, Z);
	return Z;
}

/* Multiply. The algorithm is
 *	let U = u + x*UU
 *	let V = v + x*VV
 *	then UV = u*v + x*(u*VV+v*UU) + x*x*UU*VV */
static PS Mul(PS U, PS V);
static void mul_g(PS U, PS V, PS Z)
{
	go_chan_recv(Z->req, NULL);
	rat uv[2];
	get2(U, V, uv);
	if (end(uv[0]) != 0 || end(uv[1]) != 0) {
		go_chan_send(Z->dat, &finis);
	} else {
		rat m = mul(uv[0], uv[1]);
		go_chan_send(Z->dat, &m);
		dch2 *UU = Split(U);
		dch2 *VV = Split(V);
		PS W = Add(Cmul(uv[0], VV->d[0]), Cmul(uv[1], UU->d[0]));
		go_chan_recv(Z->req, NULL);
		rat w = get(W);
		go_chan_send(Z->dat, &w);
		ps_copy(Add(W, Mul(UU->d[1], VV->d[1])), Z);
	}
}

static PS Mul(PS U, PS V)
{
	PS Z = mkPS();
	GO(mul_g, U, V, Z);
	return Z;
}

/* Differentiate */
static void diff_g(PS U, PS Z)
{
	go_chan_recv(Z->req, NULL);
	rat u = get(U);
	if (end(u) == 0) {
		bool done = false;
		for (int i = 1; !done; i++) {
			u = get(U);
			if (end(u) != 0) {
				done = true;
			} else {
				rat d = mul(itor(i), u);
				go_chan_send(Z->dat, &d);
				go_chan_recv(Z->req, NULL);
			}
		}
	}
	go_chan_send(Z->dat, &finis);
}

static PS Diff(PS U)
{
	PS Z = mkPS();
	GO(diff_g, U, Z);
	return Z;
}

/* Integrate, with const of integration */
static void integ_g(int64_t cnum, int64_t cden, PS U, PS Z)
{
	put((rat){ cnum, cden }, Z);
	bool done = false;
	for (int i = 1; !done; i++) {
		go_chan_recv(Z->req, NULL);
		rat u = get(U);
		if (end(u) != 0)
			done = true;
		rat t = mul(i2tor(1, i), u);
		go_chan_send(Z->dat, &t);
	}
	go_chan_send(Z->dat, &finis);
}

static PS Integ(rat c, PS U)
{
	PS Z = mkPS();
	GO(integ_g, c.num, c.den, U, Z);
	return Z;
}

/* Binomial theorem (1+x)^c */
static void binom_g(int64_t cnum, int64_t cden, PS Z)
{
	rat c = { cnum, cden };
	int n = 1;
	rat t = itor(1);
	while (c.num != 0) {
		put(t, Z);
		t = mul(mul(t, c), i2tor(1, n));
		c = sub(c, one);
		n++;
	}
	put(finis, Z);
}

static PS Binom(rat c)
{
	PS Z = mkPS();
	GO(binom_g, c.num, c.den, Z);
	return Z;
}

/* Reciprocal of a power series
 *	let U = u + x*UU
 *	let Z = z + x*ZZ
 *	(u+x*UU)*(z+x*ZZ) = 1
 *	z = 1/u
 *	u*ZZ + z*UU +x*UU*ZZ = 0
 *	ZZ = -UU*(z+x*ZZ)/u */
static void recip_g(PS U, PS Z)
{
	dch2 *ZZ = mkPS2();
	go_chan_recv(Z->req, NULL);
	rat z = inv(get(U));
	go_chan_send(Z->dat, &z);
	split(Mul(Cmul(neg(z), U), Shift(z, ZZ->d[0])), ZZ);
	ps_copy(ZZ->d[1], Z);
}

static PS Recip(PS U)
{
	PS Z = mkPS();
	GO(recip_g, U, Z);
	return Z;
}

/* Exponential of a power series with constant term 0 (nonzero constant
 * term would make nonrational coefficients); bug: the constant term is
 * simply ignored
 *	Z = exp(U)
 *	DZ = Z*DU
 *	integrate to get Z */
static PS Exp(PS U)
{
	dch2 *ZZ = mkPS2();
	split(Integ(one, Mul(ZZ->d[0], Diff(U))), ZZ);
	return ZZ->d[1];
}

/* Substitute V for x in U, where the leading term of V is zero
 *	let U = u + x*UU
 *	let V = v + x*VV
 *	then S(U,V) = u + VV*S(V,UU)
 * bug: a nonzero constant term is ignored */
static PS Subst(PS U, PS V);
static void subst_g(PS U, PS V, PS Z)
{
	dch2 *VV = Split(V);
	go_chan_recv(Z->req, NULL);
	rat u = get(U);
	go_chan_send(Z->dat, &u);
	if (end(u) == 0) {
		if (end(get(VV->d[0])) != 0)
			put(finis, Z);
		else
			ps_copy(Mul(VV->d[0], Subst(U, VV->d[1])), Z);
	}
}

static PS Subst(PS U, PS V)
{
	PS Z = mkPS();
	GO(subst_g, U, V, Z);
	return Z;
}

/* Monomial Substitution: U(c x^n). Each Ui is multiplied by c^i and
 * followed by n-1 zeros */
static void monsubst_g(PS U, int64_t c0num, int64_t c0den, int n, PS Z)
{
	rat c0 = { c0num, c0den };
	rat c = one;
	for (;;) {
		go_chan_recv(Z->req, NULL);
		rat u = get(U);
		rat m = mul(u, c);
		go_chan_send(Z->dat, &m);
		c = mul(c, c0);
		if (end(u) != 0) {
			go_chan_send(Z->dat, &finis);
			break;
		}
		for (int i = 1; i < n; i++) {
			go_chan_recv(Z->req, NULL);
			go_chan_send(Z->dat, &zero);
		}
	}
}

static PS MonSubst(PS U, rat c0, int n)
{
	PS Z = mkPS();
	GO(monsubst_g, U, c0.num, c0.den, n, Z);
	return Z;
}

static void Init(void)
{
	atomic_store(&chnameserial, -1);
	atomic_store(&seqno, 0);
	chnames = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
	zero = itor(0);
	one = itor(1);
	finis = i2tor(1, 0);
	Ones = Rep(one);
	Twos = Rep(itor(2));
}

static void check(PS U, rat c, int count, const char *str)
{
	for (int i = 0; i < count; i++) {
		rat r = get(U);
		if (!eq(r, c))
			panicf("%s: got %lld/%lld should get %lld/%lld", str, (long long)r.num,
			     (long long)r.den, (long long)c.num, (long long)c.den);
	}
}

enum { PS_N = 10 };

static void checka(PS U, const rat *a, const char *str)
{
	for (int i = 0; i < PS_N; i++)
		check(U, a[i], 1, str);
}

/* The test mode of powser1.go's main. */
static void prog_powser1(void)
{
	Init();
	check(Ones, one, 5, "Ones");
	check(Add(Ones, Ones), itor(2), 0, "Add Ones Ones"); /* 1 1 1 1 1 */
	check(Add(Ones, Twos), itor(3), 0, "Add Ones Twos"); /* 3 3 3 3 3 */
	rat a[PS_N];
	PS d = Diff(Ones);
	for (int i = 0; i < PS_N; i++)
		a[i] = itor(i + 1);
	checka(d, a, "Diff"); /* 1 2 3 4 5 */
	PS in = Integ(zero, Ones);
	a[0] = zero; /* integration constant */
	for (int i = 1; i < PS_N; i++)
		a[i] = i2tor(1, i);
	checka(in, a, "Integ");                               /* 0 1 1/2 1/3 1/4 1/5 */
	check(Cmul(neg(one), Twos), itor(-2), 10, "CMul");    /* -1 -1 -1 -1 -1 */
	check(Sub(Ones, Twos), itor(-1), 0, "Sub Ones Twos"); /* -1 -1 -1 -1 -1 */
	PS m = Mul(Ones, Ones);
	for (int i = 0; i < PS_N; i++)
		a[i] = itor(i + 1);
	checka(m, a, "Mul"); /* 1 2 3 4 5 */
	PS e = Exp(Ones);
	a[0] = itor(1);
	a[1] = itor(1);
	a[2] = i2tor(3, 2);
	a[3] = i2tor(13, 6);
	a[4] = i2tor(73, 24);
	a[5] = i2tor(167, 40);
	a[6] = i2tor(4051, 720);
	a[7] = i2tor(37633, 5040);
	a[8] = i2tor(43817, 4480);
	a[9] = i2tor(4596553, 362880);
	checka(e, a, "Exp"); /* 1 1 3/2 13/6 73/24 */
	PS at = Integ(zero, MonSubst(Ones, neg(one), 2));
	for (int c = 1, i = 0; i < PS_N; i++) {
		if (i % 2 == 0) {
			a[i] = zero;
		} else {
			a[i] = i2tor(c, i);
			c *= -1;
		}
	}
	checka(at, a, "ATan"); /* 0 -1 0 -1/3 0 -1/5 */
	say("powser1: ok\n");
}

/* The print mode of powser1.go's main (run with an argument), then the
 * constructors its main does not use; the expected output is Go's. */
static void prog_powser1_print(void)
{
	Init();
	ps_out[0] = 0;
	ps_print("Ones: ");
	printn(Ones, 10);
	ps_print("Twos: ");
	printn(Twos, 10);
	ps_print("Add: ");
	printn(Add(Ones, Twos), 10);
	ps_print("Diff: ");
	printn(Diff(Ones), 10);
	ps_print("Integ: ");
	printn(Integ(zero, Ones), 10);
	ps_print("CMul: ");
	printn(Cmul(neg(one), Ones), 10);
	ps_print("Sub: ");
	printn(Sub(Ones, Twos), 10);
	ps_print("Mul: ");
	printn(Mul(Ones, Ones), 10);
	ps_print("Exp: ");
	printn(Exp(Ones), 15);
	ps_print("MonSubst: ");
	printn(MonSubst(Ones, neg(one), 2), 10);
	ps_print("ATan: ");
	printn(Integ(zero, MonSubst(Ones, neg(one), 2)), 10);
	/* beyond Go's main */
	ps_print("Recip: ");
	printn(Recip(Ones), 10);
	ps_print("Xmul: ");
	printn(Xmul(Ones), 10);
	ps_print("Mon: ");
	printn(Mon(i2tor(3, 2), 3), 10);
	ps_print("Binom: ");
	printn(Binom(i2tor(1, 2)), 8);
	ps_print("Binom3: ");
	printn(Binom(itor(3)), 10);
	ps_print("Subst: ");
	printn(Subst(Ones, Xmul(Ones)), 10);
	ps_print("Monmul: ");
	printn(Monmul(Twos, 3), 8);
	ps_print("RecipBinom: ");
	printn(Recip(Binom(itor(2))), 8);
	ps_print("Eval: ");
	pr(eval(i2tor(1, 2), Ones, 10));
	ps_print("\n");
	say("%s", ps_out);
}

#define POWSER1_PRINT \
	"Ones: 1 1 1 1 1 1 1 1 1 1 \n" \
	"Twos: 2 2 2 2 2 2 2 2 2 2 \n" \
	"Add: 3 3 3 3 3 3 3 3 3 3 \n" \
	"Diff: 1 2 3 4 5 6 7 8 9 10 \n" \
	"Integ: 0 1 1/2 1/3 1/4 1/5 1/6 1/7 1/8 1/9 \n" \
	"CMul: -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 \n" \
	"Sub: -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 \n" \
	"Mul: 1 2 3 4 5 6 7 8 9 10 \n" \
	"Exp: 1 1 3/2 13/6 73/24 167/40 4051/720 37633/5040 43817/4480 4596553/362880 " \
	"58941091/3628800 274691047/13305600 12470162233/479001600 202976401213/6227020800 " \
	"1178339174801/29059430400 \n" \
	"MonSubst: 1 0 -1 0 1 0 -1 0 1 0 \n" \
	"ATan: 0 1 0 -1/3 0 1/5 0 -1/7 0 1/9 \n" \
	"Recip: 1 -1 0 0 0 0 0 0 0 0 \n" \
	"Xmul: 0 1 1 1 1 1 1 1 1 1 \n" \
	"Mon: 0 0 0 3/2 \n" \
	"Binom: 1 1/2 -1/8 1/16 -5/128 7/256 -21/1024 33/2048 \n" \
	"Binom3: 1 3 3 \n" \
	"Subst: 1 1 2 4 8 16 32 64 128 256 \n" \
	"Monmul: 0 0 0 2 2 2 2 2 \n" \
	"RecipBinom: 1 -2 4 -8 16 -32 64 -128 \n" \
	"Eval: 1023/512 \n"

/* ---- sendstmt.go: send is a statement ---------------------------------- */

static void prog_sendstmt(void)
{
	/* chanchan: select { case <-cc <- 2: default: panic } */
	go_chan *cc = mkchan(sizeof(go_chan *), 1);
	go_chan *c = mkchan(sizeof(int), 1);
	go_chan_send(cc, &c);
	go_chan *got = NULL;
	go_chan_recv(cc, &got); /* the channel expression is evaluated first */
	int two = 2;
	go_case sc = GO_SEND(got, &two);
	if (go_select_nb(&sc, 1) != 0)
		panicf("nonblock");
	if (recv_int(c) != 2)
		panicf("bad receive");
	/* sendprec: c <- false || true */
	go_chan *cb = mkchan(sizeof(bool), 1);
	bool v = false || true;
	go_chan_send(cb, &v);
	bool r = false;
	go_chan_recv(cb, &r);
	if (!r)
		panicf("sent false");
	go_chan_free(cc);
	go_chan_free(c);
	go_chan_free(cb);
	say("sendstmt: ok\n");
}

/* ---- perm.go ----------------------------------------------------------- */

/* perm.go checks at compile time that send-only and receive-only channels
 * are used in their direction only; C has one channel type, so those
 * errors cannot be expressed. What runs: the nil channels the program
 * declares, aliases (cr = c, cs = c) that are the same channel, every
 * operation the program marks "ok", close through the send view and what
 * a receive view sees afterwards. */
static void prog_perm(void)
{
	go_chan *cr = NULL, *cs = NULL, *c = NULL; /* var cr <-chan int; ... */
	int x = 7;
	CHECK(go_chan_len(c) == 0 && go_chan_cap(c) == 0);
	CHECK(go_chan_len(cr) == 0 && go_chan_cap(cs) == 0);
	CHECK(go_chan_tryrecv(cr, &x) == GO_EMPTY && x == 7);
	CHECK(!go_chan_trysend(cs, &x));

	c = mkchan(sizeof(int), 3);
	cr = c; /* ok */
	cs = c; /* ok */
	send_int(c, 0); /* c <- 0: ok */
	CHECK(recv_int(c) == 0); /* <-c: ok */
	send_int(c, 5);
	bool ok = go_chan_recv(c, &x); /* x, ok := <-c: ok */
	CHECK(ok && x == 5);
	send_int(cs, 6); /* cs <- 0: ok */
	CHECK(recv_int(cr) == 6); /* <-cr: ok */
	send_int(cs, 8);
	ok = go_chan_recv(cr, &x); /* x, ok = <-cr: ok */
	CHECK(ok && x == 8);
	CHECK(go_chan_len(cr) == 0 && go_chan_cap(cs) == 3);

	/* select over the allowed cases: c <- 0, <-c, <-cr, cs <- 0. The
	 * channel is empty: only a send can run. */
	int zero = 0, y = -1;
	for (int i = 0; i < 30; i++) {
		go_case cases[4] = { GO_SEND(c, &zero), GO_RECV(c, &y), GO_RECV(cr, &y), GO_SEND(cs, &zero) };
		int k = go_select(cases, 4);
		CHECK(k == 0 || k == 3);
		CHECK(go_chan_len(c) == 1);
		CHECK(recv_int(cr) == 0);
	}

	send_int(cs, 1);
	send_int(cs, 2);
	CHECK(go_chan_len(cr) == 2);
	go_chan_close(cs); /* close(cs): ok (close(cr) is a compile error) */
	int sum = 0, n = 0;
	while (go_chan_recv(cr, &x)) { /* for x := range cr */
		sum += x;
		n++;
	}
	CHECK(n == 2 && sum == 3);
	x = 42;
	ok = go_chan_recv(cr, &x);
	CHECK(!ok && x == 0);
	CHECK(go_chan_len(cr) == 0 && go_chan_cap(cr) == 3);
	go_chan_free(c);
	say("perm: ok\n");
}

/* ---- the programs, as scenarios ---------------------------------------- */

#define CHILD_PROG(name, terminates) \
	static void child_##name(void) { child_program(prog_##name, terminates); }
CHILD_PROG(sieve1, false)
CHILD_PROG(sieve2, false)
CHILD_PROG(nonblock, true)
CHILD_PROG(doubleselect, true)
CHILD_PROG(fifo, true)
CHILD_PROG(goroutines, true)
CHILD_PROG(zerosize, true)
CHILD_PROG(powser1, false)
CHILD_PROG(powser1_print, false)
CHILD_PROG(sendstmt, true)
CHILD_PROG(perm, true)

static const struct program {
	const char *name;
	const char *want; /* the whole output */
} programs[] = {
	{ "sieve1", "sieve1: " PRIMES_LINE },
	{ "sieve2", "sieve2: " PRIMES_LINE },
	{ "nonblock", "nonblock: buffer 0 ok\nnonblock: buffer 1 ok\nleaks: none\n" },
	{ "doubleselect", "doubleselect: every value once\nleaks: none\n" },
	{ "fifo", "fifo: asynch ok\nfifo: synch ok\nleaks: none\n" },
	{ "goroutines", "goroutines: 1 came through the chain\nleaks: none\n" },
	{ "zerosize", "zerosize: ok\nleaks: none\n" },
	{ "powser1", "powser1: ok\n" },
	{ "powser1_print", POWSER1_PRINT },
	{ "sendstmt", "sendstmt: ok\nleaks: none\n" },
	{ "perm", "perm: ok\nleaks: none\n" },
};
#define NPROGRAMS ((int)(sizeof programs / sizeof programs[0]))

static struct child_result result; /* 64K: not on the stack */

/* Each program at GOMAXPROCS=1 and at GOMAXPROCS=2: exit 0, exact output. */
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
static int64_t base_sudogs;

static void leak_setup(void)
{
	int64_t end = go_now() + 10 * SEC;
	while (go_count() != 1 && go_now() < end)
		go_sleep(100000);
	ck_assert_int_eq(go_count(), 1);
	base_count = 1;
	base_sudogs = sudogs_in_use();
}

static void leak_teardown(void)
{
	bool ok = settle(base_count, base_sudogs);
	ck_assert_msg(ok, "leak: %d goroutines (want %d), %lld sudogs in use (want %lld)", go_count(),
	              base_count, (long long)sudogs_in_use(), (long long)base_sudogs);
}

/* Waits (bounded) until n more sudogs than at the start are in use: that
 * many goroutines are parked on channels. */
static void wait_sudogs(int64_t n)
{
	int64_t end = go_now() + 10 * SEC;
	while (sudogs_in_use() < base_sudogs + n) {
		ck_assert_msg(go_now() < end, "only %lld of %lld goroutines blocked",
		              (long long)(sudogs_in_use() - base_sudogs), (long long)n);
		go_sleep(50000);
	}
	ck_assert_int_eq(sudogs_in_use(), base_sudogs + n);
}

/* ---- semantics --------------------------------------------------------- */

START_TEST(buffered_fifo_order)
{
	go_chan *c = go_chan_make(sizeof(int), 7);
	ck_assert_ptr_nonnull(c);
	/* across the ring's wrap-around many times, with 1..7 values queued */
	int next_in = 0, next_out = 0;
	for (int round = 0; round < 200; round++) {
		int k = round % 7 + 1;
		for (int i = 0; i < k; i++) {
			ck_assert(go_chan_trysend(c, &next_in));
			next_in++;
			ck_assert_uint_eq(go_chan_len(c), (size_t)i + 1);
		}
		for (int i = 0; i < k; i++) {
			int v = -1;
			ck_assert(go_chan_recv(c, &v));
			ck_assert_int_eq(v, next_out);
			next_out++;
		}
		ck_assert_uint_eq(go_chan_len(c), 0);
	}
	go_chan_free(c);
}
END_TEST

/* Senders blocked on a full buffered channel: each receive takes the head
 * of the buffer and moves the first blocked sender's value to the tail,
 * so the order is kept (chan.go's recv on a full channel). */
static void send_one(go_chan *c, int v) { go_chan_send(c, &v); }

START_TEST(blocked_senders_keep_order)
{
	go_chan *c = go_chan_make(sizeof(int), 3);
	for (int i = 0; i < 3; i++)
		go_chan_send(c, &i);
	for (int i = 3; i < 8; i++) {
		/* one at a time, so that they queue in this order */
		ck_assert_int_eq(go(send_one, c, i), 0);
		wait_sudogs(i - 2);
	}
	ck_assert_uint_eq(go_chan_len(c), 3);
	for (int i = 0; i < 8; i++) {
		int v = -1;
		ck_assert(go_chan_recv(c, &v));
		ck_assert_int_eq(v, i);
	}
	ck_assert_int_eq(go_chan_tryrecv(c, NULL), GO_EMPTY);
	go_chan_free(c);
}
END_TEST

/* An unbuffered send waits for a receiver; the value passes directly. */
static _Atomic int handoff_sent;
static void handoff_sender(go_chan *c)
{
	int64_t v = 0x1122334455667788LL;
	go_chan_send(c, &v);
	atomic_store(&handoff_sent, 1);
}

START_TEST(unbuffered_send_waits_for_receiver)
{
	atomic_store(&handoff_sent, 0);
	go_chan *c = go_chan_make(sizeof(int64_t), 0);
	ck_assert_int_eq(go(handoff_sender, c), 0);
	wait_sudogs(1);
	go_sleep(5 * MS);
	ck_assert_int_eq(ldi(&handoff_sent), 0);
	ck_assert_uint_eq(go_chan_len(c), 0);
	int64_t v = 0;
	ck_assert(go_chan_recv(c, &v));
	ck_assert_int_eq(v, 0x1122334455667788LL);
	while (!atomic_load(&handoff_sent))
		go_yield();
	go_chan_free(c);
}
END_TEST

/* close wakes every blocked receiver with the zero value and ok = false. */
struct closed_recv {
	go_chan *c;
	go_wg wg;
	_Atomic int woken_ok;   /* got false and a zeroed element */
	_Atomic int woken_bad;
};
struct big { uint64_t w[5]; };
static void recv_until_closed(struct closed_recv *s)
{
	struct big v;
	memset(&v, 0xa5, sizeof v);
	bool ok = go_chan_recv(s->c, &v);
	struct big z = { { 0 } };
	if (!ok && memcmp(&v, &z, sizeof v) == 0)
		atomic_fetch_add(&s->woken_ok, 1);
	else
		atomic_fetch_add(&s->woken_bad, 1);
	go_wg_done(&s->wg);
}

static void close_wakes_all(size_t cap)
{
	static struct closed_recv s;
	memset(&s, 0, sizeof s);
	s.c = go_chan_make(sizeof(struct big), cap);
	const int n = 100;
	go_wg_add(&s.wg, n);
	for (int i = 0; i < n; i++)
		ck_assert_int_eq(go(recv_until_closed, &s), 0);
	wait_sudogs(n);
	ck_assert_int_eq(ldi(&s.woken_ok) + ldi(&s.woken_bad), 0);
	go_chan_close(s.c);
	go_wg_wait(&s.wg);
	ck_assert_int_eq(ldi(&s.woken_ok), n);
	ck_assert_int_eq(ldi(&s.woken_bad), 0);
	go_chan_free(s.c);
}

START_TEST(close_wakes_all_receivers_unbuffered) { close_wakes_all(0); }
END_TEST
START_TEST(close_wakes_all_receivers_buffered) { close_wakes_all(4); }
END_TEST

START_TEST(buffer_drained_before_closed)
{
	go_chan *c = go_chan_make(sizeof(int), 5);
	for (int i = 1; i <= 3; i++)
		go_chan_send(c, &i);
	go_chan_close(c);
	ck_assert_uint_eq(go_chan_len(c), 3);
	ck_assert_uint_eq(go_chan_cap(c), 5);
	int v = 0;
	ck_assert(go_chan_recv(c, &v));
	ck_assert_int_eq(v, 1);
	ck_assert_int_eq(go_chan_tryrecv(c, &v), GO_OK);
	ck_assert_int_eq(v, 2);
	go_case rc = GO_RECV(c, &v);
	ck_assert_int_eq(go_select_nb(&rc, 1), 0);
	ck_assert(rc.ok);
	ck_assert_int_eq(v, 3);
	ck_assert_uint_eq(go_chan_len(c), 0);
	v = 99;
	ck_assert(!go_chan_recv(c, &v));
	ck_assert_int_eq(v, 0);
	v = 99;
	ck_assert_int_eq(go_chan_tryrecv(c, &v), GO_CLOSED);
	ck_assert_int_eq(v, 0);
	ck_assert(!go_chan_recv(c, NULL));
	go_chan_free(c);
}
END_TEST

static void send_later(go_chan *c, int v)
{
	go_sleep(MS);
	go_chan_send(c, &v);
}

START_TEST(tryrecv_ok_empty_closed)
{
	int v = 5;
	ck_assert_int_eq(go_chan_tryrecv(NULL, &v), GO_EMPTY);
	ck_assert_int_eq(v, 5);
	go_chan *c = go_chan_make(sizeof(int), 2);
	ck_assert_int_eq(go_chan_tryrecv(c, &v), GO_EMPTY);
	ck_assert_int_eq(v, 5);
	int w = 17;
	go_chan_send(c, &w);
	ck_assert_int_eq(go_chan_tryrecv(c, &v), GO_OK);
	ck_assert_int_eq(v, 17);
	ck_assert_int_eq(go_chan_tryrecv(c, &v), GO_EMPTY);
	go_chan_send(c, &w);
	ck_assert_int_eq(go_chan_tryrecv(c, NULL), GO_OK); /* discarded */
	ck_assert_uint_eq(go_chan_len(c), 0);
	go_chan_close(c);
	v = 5;
	ck_assert_int_eq(go_chan_tryrecv(c, &v), GO_CLOSED);
	ck_assert_int_eq(v, 0);
	go_chan_free(c);

	/* unbuffered: GO_OK only from a sender already blocked */
	go_chan *u = go_chan_make(sizeof(int), 0);
	ck_assert_int_eq(go_chan_tryrecv(u, &v), GO_EMPTY);
	ck_assert_int_eq(go(send_later, u, 31), 0);
	wait_sudogs(1);
	ck_assert_int_eq(go_chan_tryrecv(u, &v), GO_OK);
	ck_assert_int_eq(v, 31);
	ck_assert_int_eq(go_chan_tryrecv(u, &v), GO_EMPTY);
	go_chan_close(u);
	ck_assert_int_eq(go_chan_tryrecv(u, &v), GO_CLOSED);
	settle(base_count, base_sudogs);
	go_chan_free(u);
}
END_TEST

static void recv_into(go_chan *c, _Atomic int *out)
{
	int v = -1;
	go_chan_recv(c, &v);
	atomic_store(out, v);
}

START_TEST(trysend_states)
{
	int v = 3;
	ck_assert(!go_chan_trysend(NULL, &v));
	go_chan *c = go_chan_make(sizeof(int), 2);
	ck_assert(go_chan_trysend(c, &v));
	ck_assert(go_chan_trysend(c, &v));
	ck_assert(!go_chan_trysend(c, &v)); /* full */
	ck_assert_uint_eq(go_chan_len(c), 2);
	ck_assert_int_eq(go_chan_tryrecv(c, NULL), GO_OK);
	ck_assert(go_chan_trysend(c, &v));
	go_chan_free(c); /* values left in the buffer are dropped */

	go_chan *u = go_chan_make(sizeof(int), 0);
	ck_assert(!go_chan_trysend(u, &v)); /* no receiver */
	static _Atomic int got;
	atomic_store(&got, 0);
	ck_assert_int_eq(go(recv_into, u, &got), 0);
	wait_sudogs(1);
	v = 77;
	ck_assert(go_chan_trysend(u, &v));
	while (atomic_load(&got) == 0)
		go_yield();
	ck_assert_int_eq(ldi(&got), 77);
	ck_assert(!go_chan_trysend(u, &v));
	go_chan_free(u);
}
END_TEST

START_TEST(len_cap_and_null)
{
	ck_assert_uint_eq(go_chan_len(NULL), 0);
	ck_assert_uint_eq(go_chan_cap(NULL), 0);
	go_chan *u = go_chan_make(sizeof(int), 0);
	ck_assert_uint_eq(go_chan_len(u), 0);
	ck_assert_uint_eq(go_chan_cap(u), 0);
	go_chan *c = go_chan_make(sizeof(double), 1000);
	ck_assert_uint_eq(go_chan_cap(c), 1000);
	for (int i = 0; i < 1000; i++) {
		double d = i;
		go_chan_send(c, &d);
		ck_assert_uint_eq(go_chan_len(c), (size_t)i + 1);
	}
	ck_assert(!go_chan_trysend(c, &(double){ 1 }));
	for (int i = 999; i >= 0; i--) {
		double d;
		ck_assert(go_chan_recv(c, &d));
		ck_assert(d == 999 - i);
		ck_assert_uint_eq(go_chan_len(c), (size_t)i);
	}
	go_chan_close(c);
	ck_assert_uint_eq(go_chan_cap(c), 1000);
	go_chan_free(c);
	go_chan_free(u);
	go_chan_free(NULL); /* no-op */
}
END_TEST

START_TEST(make_errors)
{
	errno = 0;
	ck_assert_ptr_null(go_chan_make(65537, 1));
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_ptr_null(go_chan_make(65537, 0));
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_ptr_null(go_chan_make(8, SIZE_MAX));
	ck_assert_int_eq(errno, ENOMEM);
	errno = 0;
	ck_assert_ptr_null(go_chan_make(65536, SIZE_MAX / 65536 + 1));
	ck_assert_int_eq(errno, ENOMEM);
	errno = 0;
	ck_assert_ptr_null(go_chan_make(1, SIZE_MAX));
	ck_assert_int_eq(errno, ENOMEM);
	/* the largest element works */
	go_chan *c = go_chan_make(65536, 2);
	ck_assert_ptr_nonnull(c);
	go_chan_free(c);
}
END_TEST

/* 64 KiB elements pass intact, through the buffer and directly. */
struct huge { unsigned char b[65536]; };
static void huge_sender(go_chan *c, int seed)
{
	static struct huge h[2];
	struct huge *p = &h[seed & 1];
	for (size_t i = 0; i < sizeof p->b; i++)
		p->b[i] = (unsigned char)(i * 7 + (size_t)seed);
	go_chan_send(c, p);
}

START_TEST(largest_elements_intact)
{
	static struct huge got;
	for (size_t cap = 0; cap < 2; cap++) {
		go_chan *c = go_chan_make(sizeof(struct huge), cap);
		ck_assert_ptr_nonnull(c);
		ck_assert_int_eq(go(huge_sender, c, (int)cap + 1), 0);
		memset(&got, 0, sizeof got);
		ck_assert(go_chan_recv(c, &got));
		for (size_t i = 0; i < sizeof got.b; i++)
			ck_assert_uint_eq(got.b[i], (unsigned char)(i * 7 + cap + 1));
		settle(base_count, base_sudogs);
		go_chan_free(c);
	}
}
END_TEST

/* chan struct{}: element pointers may be NULL everywhere. */
static void zs_worker(go_chan *in, go_chan *out, int n)
{
	for (int i = 0; i < n; i++) {
		go_chan_recv(in, NULL);
		go_chan_send(out, NULL);
	}
	go_chan_close(out);
}

START_TEST(zero_size_elements)
{
	go_chan *b = go_chan_make(0, 3);
	ck_assert_ptr_nonnull(b);
	for (int i = 0; i < 3; i++)
		ck_assert(go_chan_trysend(b, NULL));
	ck_assert(!go_chan_trysend(b, NULL));
	ck_assert_uint_eq(go_chan_len(b), 3);
	ck_assert_int_eq(go_chan_tryrecv(b, NULL), GO_OK);
	ck_assert(go_chan_recv(b, NULL));
	go_case cs[2] = { GO_RECV(b, NULL), GO_SEND(b, NULL) };
	int k = go_select_nb(cs, 2);
	ck_assert(k == 0 || k == 1);
	go_chan_close(b);
	while (go_chan_recv(b, NULL))
		;
	ck_assert_int_eq(go_chan_tryrecv(b, NULL), GO_CLOSED);
	go_chan_free(b);

	/* unbuffered, between goroutines */
	go_chan *in = go_chan_make(0, 0), *out = go_chan_make(0, 0);
	ck_assert_int_eq(go(zs_worker, in, out, 1000), 0);
	int n = 0;
	for (int i = 0; i < 1000; i++) {
		go_chan_send(in, NULL);
		if (go_chan_recv(out, NULL))
			n++;
	}
	ck_assert_int_eq(n, 1000);
	ck_assert(!go_chan_recv(out, NULL)); /* closed by the worker */
	settle(base_count, base_sudogs);
	go_chan_free(in);
	go_chan_free(out);
}
END_TEST

/* close, then go_chan_free at once: the receivers it woke are no longer
 * blocked (no fatal), and go_chan_free waits until they are off the
 * channel: its memory, reused by the program right after (malloc hands
 * back the block just freed), is never written again. */
static _Atomic int woken_closed, woken_other;
static void recv_count(go_chan *c)
{
	int v = 5;
	if (!go_chan_recv(c, &v) && v == 0)
		atomic_fetch_add(&woken_closed, 1);
	else
		atomic_fetch_add(&woken_other, 1);
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

START_TEST(free_right_after_close)
{
	const size_t size = (sizeof(struct hchan) + 15) & ~(size_t)15; /* makechan, cap 0 */
	const int n = 8;
	/* at GOMAXPROCS=1 the woken receivers wait in the run queue while
	 * main (on its own thread) frees; at 2 some may run at once */
	int old = go_maxprocs(1), hits = 0;
	for (int round = 0; round < 100; round++) {
		if (round == 50)
			go_maxprocs(2);
		atomic_store(&woken_closed, 0);
		atomic_store(&woken_other, 0);
		go_chan *c = go_chan_make(sizeof(int), 0);
		for (int i = 0; i < n; i++)
			ck_assert_int_eq(go(recv_count, c), 0);
		wait_sudogs(n);
		go_chan_close(c);
		go_chan_free(c);
		if (reuse_block(c, size))
			hits++;
		int64_t end = go_now() + 5 * SEC;
		while (ldi(&woken_closed) + ldi(&woken_other) < n && go_now() < end)
			go_yield();
		ck_assert_int_eq(ldi(&woken_closed), n);
		ck_assert_int_eq(ldi(&woken_other), 0);
		ck_assert_msg(reused_intact(size), "round %d: the freed channel was written", round);
	}
	go_maxprocs(old);
#if !defined(GOSHIM_ASAN) && !defined(GOSHIM_TSAN)
	ck_assert_int_gt(hits, 0); /* the check above did check something */
#endif
}
END_TEST

/* ---- stress ------------------------------------------------------------ */

/* producers -> c1 -> relays -> c2 -> consumers; every value arrives once. */
struct stress {
	go_chan *c1, *c2;
	int per;
	go_wg prod, relay;
	_Atomic int64_t sum, count;
	_Atomic int consumers_done;
};

static void st_producer(struct stress *s, int id)
{
	for (int k = 0; k < s->per; k++) {
		int64_t v = (int64_t)id * s->per + k + 1;
		go_chan_send(s->c1, &v);
	}
	go_wg_done(&s->prod);
}

static void st_relay(struct stress *s)
{
	int64_t v;
	while (go_chan_recv(s->c1, &v))
		go_chan_send(s->c2, &v);
	go_wg_done(&s->relay);
}

static void st_consumer(struct stress *s)
{
	int64_t v, sum = 0, n = 0;
	while (go_chan_recv(s->c2, &v)) {
		sum += v;
		n++;
	}
	atomic_fetch_add(&s->sum, sum);
	atomic_fetch_add(&s->count, n);
	atomic_fetch_add(&s->consumers_done, 1);
}

static void st_closer(go_wg *wg, go_chan *c)
{
	go_wg_wait(wg);
	go_chan_close(c);
}

static void stress(int procs, bool flip, size_t cap1, size_t cap2)
{
	int old = go_maxprocs(procs);
	static struct stress s;
	memset(&s, 0, sizeof s);
	const int np = SCALE(2000), nr = SCALE(300) + 1, nc = SCALE(500) + 1;
	s.per = 25;
	s.c1 = go_chan_make(sizeof(int64_t), cap1);
	s.c2 = go_chan_make(sizeof(int64_t), cap2);
	go_wg_add(&s.prod, np);
	go_wg_add(&s.relay, nr);
	for (int i = 0; i < nc; i++)
		ck_assert_int_eq(go(st_consumer, &s), 0);
	for (int i = 0; i < nr; i++)
		ck_assert_int_eq(go(st_relay, &s), 0);
	ck_assert_int_eq(go(st_closer, &s.prod, s.c1), 0);
	ck_assert_int_eq(go(st_closer, &s.relay, s.c2), 0);
	int flips = 0;
	for (int i = 0; i < np; i++) {
		ck_assert_int_eq(go(st_producer, &s, i), 0);
		if (flip && i == np / 2) /* at least one change while values flow */
			go_maxprocs(++flips % 2 ? 2 : 1);
	}
	int64_t end = go_now() + 60 * SEC;
	while (atomic_load(&s.consumers_done) < nc) {
		ck_assert_msg(go_now() < end, "stress stuck: %lld values counted",
		              (long long)atomic_load(&s.count));
		if (flip) {
			go_maxprocs(++flips % 2 ? 2 : 1);
			go_sleep(200000);
		} else {
			go_sleep(MS);
		}
	}
	int64_t n = (int64_t)np * s.per;
	ck_assert_int_eq(ld64(&s.count), n);
	ck_assert_int_eq(ld64(&s.sum), n * (n + 1) / 2);
	if (flip)
		ck_assert_int_ge(flips, 1);
	ck_assert(settle(base_count, base_sudogs));
	go_chan_free(s.c1);
	go_chan_free(s.c2);
	go_maxprocs(old);
}

START_TEST(stress_unbuffered_p1) { stress(1, false, 0, 0); }
END_TEST
START_TEST(stress_unbuffered_p2) { stress(2, false, 0, 0); }
END_TEST
START_TEST(stress_buffered_p1) { stress(1, false, 16, 64); }
END_TEST
START_TEST(stress_buffered_p2) { stress(2, false, 16, 64); }
END_TEST
START_TEST(stress_maxprocs_changing) { stress(1, true, 0, 8); }
END_TEST

/* A ring of goroutines passing one token around, many laps. */
static void ring_node(go_chan *in, go_chan *out, int laps)
{
	int v;
	for (int i = 0; i < laps; i++) {
		go_chan_recv(in, &v);
		v++;
		go_chan_send(out, &v);
	}
}

static void ring(int procs)
{
	int old = go_maxprocs(procs);
	const int n = SCALE(1000), laps = 20;
	go_chan **c = calloc((size_t)n + 1, sizeof *c);
	for (int i = 0; i <= n; i++)
		c[i] = go_chan_make(sizeof(int), (size_t)(i % 3)); /* mixed capacities */
	for (int i = 0; i < n; i++)
		ck_assert_int_eq(go(ring_node, c[i], c[i + 1], laps), 0);
	int v = 0;
	for (int lap = 0; lap < laps; lap++) {
		go_chan_send(c[0], &v);
		go_chan_recv(c[n], &v);
	}
	ck_assert_int_eq(v, n * laps);
	ck_assert(settle(base_count, base_sudogs));
	for (int i = 0; i <= n; i++)
		go_chan_free(c[i]);
	free(c);
	go_maxprocs(old);
}

START_TEST(token_ring_p1) { ring(1); }
END_TEST
START_TEST(token_ring_p2) { ring(2); }
END_TEST

/* ---- fatal misuse: child scenarios ------------------------------------- */

static void fatal_send_closed(void)
{
	go_chan *c = go_chan_make(sizeof(int), 1);
	go_chan_close(c);
	say("ready\n");
	int v = 1;
	go_chan_send(c, &v);
	say("NOT REACHED\n");
}

static void fatal_trysend_closed(void)
{
	go_chan *c = go_chan_make(sizeof(int), 1);
	go_chan_close(c);
	int v = 1;
	go_chan_trysend(c, &v);
	say("NOT REACHED\n");
}

static void blocked_sender(go_chan *c)
{
	int v = 1;
	say("sender blocks\n");
	go_chan_send(c, &v);
	say("NOT REACHED: send returned\n");
}

/* A sender blocked on c when another goroutine closes it. */
static void blocked_send_then_close(size_t cap)
{
	go_chan *c = go_chan_make(sizeof(int), cap);
	for (size_t i = 0; i < cap; i++)
		go_chan_send(c, &(int){ 0 });
	int64_t s0 = sudogs_in_use();
	GO(blocked_sender, c);
	while (sudogs_in_use() == s0)
		go_sleep(100000);
	say("closing\n");
	go_chan_close(c);
	go_sleep(5 * SEC); /* the sender's panic ends the process first */
	say("NOT REACHED: main survived\n");
}
static void fatal_blocked_send_closed(void) { blocked_send_then_close(0); }
static void fatal_blocked_send_closed_buffered(void) { blocked_send_then_close(2); }

static void fatal_close_closed(void)
{
	go_chan *c = go_chan_make(0, 0);
	go_chan_close(c);
	go_chan_close(c);
	say("NOT REACHED\n");
}

static void fatal_close_nil(void)
{
	go_chan_close(NULL);
	say("NOT REACHED\n");
}

static void blocked_receiver(go_chan *c)
{
	go_chan_recv(c, NULL);
	say("NOT REACHED: receive returned\n");
}

static void fatal_free_waiting(void)
{
	go_chan *c = go_chan_make(sizeof(int), 0);
	int64_t s0 = sudogs_in_use();
	GO(blocked_receiver, c);
	while (sudogs_in_use() == s0)
		go_sleep(100000);
	go_chan_free(c);
	say("NOT REACHED\n");
}

static void fatal_free_waiting_sender(void)
{
	go_chan *c = go_chan_make(sizeof(int), 0);
	int64_t s0 = sudogs_in_use();
	GO(blocked_sender, c);
	while (sudogs_in_use() == s0)
		go_sleep(100000);
	go_chan_free(c);
	say("NOT REACHED\n");
}

/* main blocks on one channel, another goroutine on another: nobody can
 * ever wake either. */
static void fatal_deadlock(void)
{
	go_chan *c = go_chan_make(sizeof(int), 0), *d = go_chan_make(sizeof(int), 1);
	GO(blocked_receiver, c);
	go_chan_recv(d, NULL);
	say("NOT REACHED\n");
}

static void fatal_deadlock_nil(void)
{
	go_chan_send(NULL, &(int){ 1 });
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

START_TEST(fatal_send_on_closed)
{
	expect_fatal("fatal_send_closed", "panic: send on closed channel\n");
	ck_assert_output_has(&fres, "ready\n");
	expect_fatal("fatal_trysend_closed", "panic: send on closed channel\n");
}
END_TEST

START_TEST(fatal_blocked_sender_closed)
{
	expect_fatal("fatal_blocked_send_closed", "panic: send on closed channel\n");
	ck_assert_output_has(&fres, "closing\n");
	expect_fatal("fatal_blocked_send_closed_buffered", "panic: send on closed channel\n");
	ck_assert_output_has(&fres, "closing\n");
}
END_TEST

START_TEST(fatal_close_twice_or_nil)
{
	expect_fatal("fatal_close_closed", "panic: close of closed channel\n");
	expect_fatal("fatal_close_nil", "panic: close of nil channel\n");
}
END_TEST

START_TEST(fatal_free_with_waiters)
{
	expect_fatal("fatal_free_waiting", "go_chan_free of a channel with waiting goroutines\n");
	expect_fatal("fatal_free_waiting_sender", "go_chan_free of a channel with waiting goroutines\n");
}
END_TEST

START_TEST(fatal_all_asleep)
{
	expect_fatal("fatal_deadlock", "fatal error: all goroutines are asleep - deadlock!\n");
	ck_assert_output_has(&fres, "[chan receive]:");
	expect_fatal("fatal_deadlock_nil", "fatal error: all goroutines are asleep - deadlock!\n");
	ck_assert_output_has(&fres, "[chan send (nil chan)]:");
}
END_TEST

static const struct scenario scenarios[] = {
	{ "sieve1", child_sieve1 },
	{ "sieve2", child_sieve2 },
	{ "nonblock", child_nonblock },
	{ "doubleselect", child_doubleselect },
	{ "fifo", child_fifo },
	{ "goroutines", child_goroutines },
	{ "zerosize", child_zerosize },
	{ "powser1", child_powser1 },
	{ "powser1_print", child_powser1_print },
	{ "sendstmt", child_sendstmt },
	{ "perm", child_perm },
	{ "fatal_send_closed", fatal_send_closed },
	{ "fatal_trysend_closed", fatal_trysend_closed },
	{ "fatal_blocked_send_closed", fatal_blocked_send_closed },
	{ "fatal_blocked_send_closed_buffered", fatal_blocked_send_closed_buffered },
	{ "fatal_close_closed", fatal_close_closed },
	{ "fatal_close_nil", fatal_close_nil },
	{ "fatal_free_waiting", fatal_free_waiting },
	{ "fatal_free_waiting_sender", fatal_free_waiting_sender },
	{ "fatal_deadlock", fatal_deadlock },
	{ "fatal_deadlock_nil", fatal_deadlock_nil },
	{ NULL, NULL },
};

static Suite *chan_suite(void)
{
	Suite *s = suite_create("chan");

	TCase *tc = tcase_create("programs");
	tcase_set_timeout(tc, 300);
	tcase_add_checked_fixture(tc, leak_setup, leak_teardown);
	tcase_add_loop_test(tc, go_test_programs, 0, 2 * NPROGRAMS);
	suite_add_tcase(s, tc);

	tc = tcase_create("semantics");
	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, leak_setup, leak_teardown);
	tcase_add_test(tc, buffered_fifo_order);
	tcase_add_test(tc, blocked_senders_keep_order);
	tcase_add_test(tc, unbuffered_send_waits_for_receiver);
	tcase_add_test(tc, close_wakes_all_receivers_unbuffered);
	tcase_add_test(tc, close_wakes_all_receivers_buffered);
	tcase_add_test(tc, buffer_drained_before_closed);
	tcase_add_test(tc, tryrecv_ok_empty_closed);
	tcase_add_test(tc, trysend_states);
	tcase_add_test(tc, len_cap_and_null);
	tcase_add_test(tc, make_errors);
	tcase_add_test(tc, largest_elements_intact);
	tcase_add_test(tc, zero_size_elements);
	tcase_add_test(tc, free_right_after_close);
	suite_add_tcase(s, tc);

	tc = tcase_create("fatal");
	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, leak_setup, leak_teardown);
	tcase_add_test(tc, fatal_send_on_closed);
	tcase_add_test(tc, fatal_blocked_sender_closed);
	tcase_add_test(tc, fatal_close_twice_or_nil);
	tcase_add_test(tc, fatal_free_with_waiters);
	tcase_add_test(tc, fatal_all_asleep);
	suite_add_tcase(s, tc);

	tc = tcase_create("stress");
	tcase_set_timeout(tc, 300);
	tcase_add_checked_fixture(tc, leak_setup, leak_teardown);
	tcase_add_test(tc, stress_unbuffered_p1);
	tcase_add_test(tc, stress_unbuffered_p2);
	tcase_add_test(tc, stress_buffered_p1);
	tcase_add_test(tc, stress_buffered_p2);
	tcase_add_test(tc, stress_maxprocs_changing);
	tcase_add_test(tc, token_ring_p1);
	tcase_add_test(tc, token_ring_p2);
	suite_add_tcase(s, tc);
	return s;
}

int main(int argc, char **argv)
{
	return test_main(argc, argv, chan_suite, scenarios);
}
