/*
 * The channel, select and time parts of the API face (goshim.h): thin
 * wrappers over runtime/chan.c, select.c and time.c that enter the
 * runtime, check arguments the way Go's compiler or runtime would, and
 * leave.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/api.h"

static inline struct hchan *H(go_chan *c) { return (struct hchan *)c; }

static void check_elem(struct hchan *c, const void *elem, const char *who)
{
	if (unlikely(c && c->elemsize && !elem))
		fatal("%s: NULL element for a channel of %u-byte elements", who, c->elemsize);
}

/* ---- channels -------------------------------------------------------- */

GOSHIM_API go_chan *go_chan_make(size_t elem_size, size_t cap)
{
	int err;
	api_enter();
	struct hchan *c = makechan(elem_size, cap, &err);
	api_leave();
	if (!c)
		errno = err;
	return (go_chan *)c;
}

GOSHIM_API void go_chan_send(go_chan *c, const void *elem)
{
	check_elem(H(c), elem, "go_chan_send");
	if (chansend_buffered(H(c), elem))
		return;
	api_enter();
	chansend(H(c), elem, true);
	api_leave();
}

GOSHIM_API bool go_chan_recv(go_chan *c, void *elem)
{
	bool selected, received;
	if (chanrecv_buffered(H(c), elem))
		return true;
	api_enter();
	chanrecv(H(c), elem, true, &selected, &received);
	api_leave();
	return received;
}

GOSHIM_API bool go_chan_trysend(go_chan *c, const void *elem)
{
	check_elem(H(c), elem, "go_chan_trysend");
	if (chansend_buffered(H(c), elem))
		return true;
	api_enter();
	bool ok = chansend(H(c), elem, false);
	api_leave();
	return ok;
}

GOSHIM_API int go_chan_tryrecv(go_chan *c, void *elem)
{
	bool selected, received;
	if (chanrecv_buffered(H(c), elem))
		return GO_OK;
	api_enter();
	chanrecv(H(c), elem, false, &selected, &received);
	api_leave();
	if (!selected)
		return GO_EMPTY;
	return received ? GO_OK : GO_CLOSED;
}

GOSHIM_API void go_chan_close(go_chan *c)
{
	if (c && H(c)->timer) {
		/* Go's time.After and Ticker.C are receive-only: closing one
		 * does not compile. Here it would make the timer's next send
		 * panic on the scheduler's stack. */
		api_enter();
		gopanic("close of a timer channel (go_after and go_ticker channels are receive-only)");
	}
	api_enter();
	closechan(H(c));
	api_leave();
}

GOSHIM_API size_t go_chan_len(go_chan *c)
{
	return c ? __atomic_load_n(&H(c)->qcount, __ATOMIC_RELAXED) : 0;
}

GOSHIM_API size_t go_chan_cap(go_chan *c)
{
	return c ? H(c)->dataqsiz : 0;
}

GOSHIM_API void go_chan_free(go_chan *c)
{
	if (!c)
		return;
	api_enter();
	freechan(H(c));
	api_leave();
}

/* ---- select ------------------------------------------------------------ */

static int do_select(go_case *cases, size_t n, bool block)
{
	if (n > 65536)
		fatal("go_select: %zu cases (at most 65536)", n);
	if (n && !cases)
		fatal("go_select: NULL cases with n = %zu", n);
	struct scase small[16];
	struct scase *sc = small;
	if (n > 16) {
		sc = malloc(n * sizeof *sc);
		if (!sc)
			fatal("go_select: out of memory for %zu cases", n);
	}
	for (size_t i = 0; i < n; i++) {
		go_case *k = &cases[i];
		if (k->op != GO_OP_SEND && k->op != GO_OP_RECV)
			fatal("go_select: case %zu has op %d (want GO_OP_SEND or GO_OP_RECV)", i, k->op);
		if (k->op == GO_OP_SEND)
			check_elem(H(k->chan), k->elem, "go_select");
		sc[i] = (struct scase){H(k->chan), k->elem, k->op, &k->ok};
	}
	api_enter();
	int chosen = selectgo(sc, (int)n, block);
	api_leave();
	if (sc != small)
		free(sc);
	return chosen;
}

GOSHIM_API int go_select(go_case *cases, size_t n)
{
	return do_select(cases, n, true);
}

GOSHIM_API int go_select_nb(go_case *cases, size_t n)
{
	return do_select(cases, n, false);
}

/* ---- time -------------------------------------------------------------- */

GOSHIM_API int64_t go_now(void)
{
	return nanotime();
}

GOSHIM_API void go_sleep(int64_t ns)
{
	if (ns <= 0)
		return;
	api_enter();
	timeSleep(ns);
	api_leave();
}

/* time.go: sendTime, a timer function on g0: a non-blocking send of the
 * current time, dropped if the buffer is full. */
static void sendTime(void *arg, uintptr_t seq, int64_t delay)
{
	(void)seq;
	(void)delay;
	int64_t now = nanotime();
	chansend(arg, &now, false);
}

/* A channel of cap 1 and int64_t, fed by a timer owned by the channel
 * (freechan destroys it). Called inside the runtime. */
static struct hchan *timer_chan(int64_t when, int64_t period, int *err)
{
	struct hchan *c = makechan(sizeof(int64_t), 1, err);
	if (!c)
		return NULL;
	struct timer *t = malloc(sizeof *t);
	if (!t) {
		freechan(c);
		*err = ENOMEM;
		return NULL;
	}
	timer_init_chan(t, sendTime, c);
	c->timer = t;
	timer_modify(t, when, period);
	return c;
}

GOSHIM_API go_chan *go_after(int64_t ns)
{
	int err;
	api_enter();
	int64_t when = ns <= 0 ? nanotime() : nanotime() + ns;
	if (when < 0)
		when = INT64_MAX;
	struct hchan *c = timer_chan(when, 0, &err);
	api_leave();
	if (!c)
		errno = err;
	return (go_chan *)c;
}

struct go_ticker {
	struct hchan *c; /* owns the timer */
};

GOSHIM_API go_ticker *go_ticker_new(int64_t period_ns)
{
	if (period_ns <= 0) {
		errno = EINVAL;
		return NULL;
	}
	go_ticker *t = malloc(sizeof *t);
	if (!t) {
		errno = ENOMEM;
		return NULL;
	}
	int err;
	api_enter();
	int64_t when = nanotime() + period_ns;
	if (when < 0)
		when = INT64_MAX;
	t->c = timer_chan(when, period_ns, &err);
	api_leave();
	if (!t->c) {
		free(t);
		errno = err;
		return NULL;
	}
	return t;
}

GOSHIM_API go_chan *go_ticker_chan(go_ticker *t)
{
	return t ? (go_chan *)t->c : NULL;
}

GOSHIM_API void go_ticker_stop(go_ticker *t)
{
	if (!t)
		return;
	api_enter();
	timer_stop(t->c->timer);
	api_leave();
}

GOSHIM_API void go_ticker_free(go_ticker *t)
{
	if (!t)
		return;
	api_enter();
	freechan(t->c);
	api_leave();
	free(t);
}
