/*
 * sync.WaitGroup (Go's sync/waitgroup.go) and contexts (Go's
 * context/context.go: cancelCtx, timerCtx) for the API face.
 *
 * WaitGroup: state holds the counter in the high 32 bits and the number
 * of waiters in the low 32; waiters sleep on the sema word through
 * runtime/sema.c. Add and a Wait on a zero counter touch only the state
 * word and never enter the runtime.
 *
 * Contexts: a tree. Cancelling a context closes its done channel and
 * cancels its children. The links of the tree (parent, children,
 * siblings) are guarded by one lock, ctxtree, taken before any context's
 * own lock: a child freed while its parent is freed (or cancelled) cannot
 * reach a parent that is gone, which a per-parent lock could not promise
 * without a reference count. A child registers with its parent at
 * creation and unregisters when freed. A timeout is a runtime timer whose
 * function (on g0) cancels with ETIMEDOUT; go_ctx_free destroys it before
 * the memory goes.
 */
#include <errno.h>
#include <stdlib.h>

#include "lib/api.h"

/* ---- WaitGroup --------------------------------------------------------- */

static inline _Atomic uint64_t *wg_state(go_wg *wg) { return (_Atomic uint64_t *)&wg->state_; }
static inline _Atomic uint32_t *wg_sema(go_wg *wg) { return (_Atomic uint32_t *)&wg->sema_; }

static __attribute__((noreturn)) void wg_panic(const char *msg)
{
	api_enter();
	gopanic(msg);
}

GOSHIM_API void go_wg_add(go_wg *wg, int delta)
{
	uint64_t state = atomic_fetch_add(wg_state(wg), (uint64_t)(int64_t)delta << 32) +
	                 ((uint64_t)(int64_t)delta << 32);
	int32_t v = (int32_t)(state >> 32);
	uint32_t w = (uint32_t)state;
	if (v < 0)
		wg_panic("sync: negative WaitGroup counter");
	if (w != 0 && delta > 0 && v == delta)
		wg_panic("sync: WaitGroup misuse: Add called concurrently with Wait");
	if (v > 0 || w == 0)
		return;
	/* This goroutine has set counter to 0 when waiters > 0. Now there
	 * can't be concurrent mutations of state: Adds must not happen
	 * concurrently with Wait, Wait does not increment waiters if it sees
	 * counter == 0. Still do a cheap sanity check to detect WaitGroup
	 * misuse. */
	if (atomic_load(wg_state(wg)) != state)
		wg_panic("sync: WaitGroup misuse: Add called concurrently with Wait");
	/* Reset waiters count to 0. */
	atomic_store(wg_state(wg), 0);
	api_enter();
	for (; w != 0; w--)
		semrelease1(wg_sema(wg), false);
	api_leave();
}

GOSHIM_API void go_wg_done(go_wg *wg)
{
	go_wg_add(wg, -1);
}

GOSHIM_API void go_wg_wait(go_wg *wg)
{
	for (;;) {
		uint64_t state = atomic_load(wg_state(wg));
		int32_t v = (int32_t)(state >> 32);
		if (v == 0)
			return; /* Counter is 0, no need to wait. */
		/* Increment waiters count. */
		if (atomic_compare_exchange_weak(wg_state(wg), &state, state + 1)) {
			api_enter();
			semacquire1(wg_sema(wg), false, waitReasonSyncWaitGroupWait);
			if (atomic_load(wg_state(wg)) != 0)
				gopanic("sync: WaitGroup is reused before previous Wait has returned");
			api_leave();
			return;
		}
	}
}

/* ---- contexts ---------------------------------------------------------- */

struct go_ctx {
	/* under ctxtree */
	struct go_ctx *parent;   /* NULL for background and detached children */
	struct go_ctx *children; /* live children, linked through next/prev */
	struct go_ctx *next, *prev;
	mutex_t mu;              /* protects the fields below */
	struct hchan *done;      /* closed once, when err is set */
	int err;                 /* 0, ECANCELED or ETIMEDOUT */
	struct timer *timer;     /* WithTimeout */
	int64_t deadline;        /* 0: none */
};

static struct go_ctx background = {0};
static mutex_t ctxtree; /* the tree's links */

GOSHIM_API go_ctx *go_ctx_background(void)
{
	return &background;
}

/* cancelCtx.cancel: closes done, cancels each child. ctxtree held. */
static void ctx_cancel_locked(struct go_ctx *c, int err)
{
	lock(&c->mu);
	if (c->err) {
		unlock(&c->mu); /* already canceled */
		return;
	}
	c->err = err;
	closechan(c->done);
	if (c->timer)
		timer_stop(c->timer);
	unlock(&c->mu);
	for (struct go_ctx *child = c->children; child; child = child->next)
		ctx_cancel_locked(child, err);
}

/* Inside the runtime (or on g0, from the timer). */
static void ctx_cancel(struct go_ctx *c, int err)
{
	lock(&ctxtree);
	ctx_cancel_locked(c, err);
	unlock(&ctxtree);
}

static void ctx_timeout(void *arg, uintptr_t seq, int64_t delay)
{
	(void)seq;
	(void)delay;
	ctx_cancel(arg, ETIMEDOUT);
}

static go_ctx *ctx_new(go_ctx *parent, int64_t timeout_ns, bool with_timeout)
{
	if (!parent)
		parent = &background;
	struct go_ctx *c = calloc(1, sizeof *c);
	if (!c) {
		errno = ENOMEM;
		return NULL;
	}
	int err;
	api_enter();
	c->done = makechan(0, 0, &err);
	if (!c->done) {
		api_leave();
		free(c);
		errno = err;
		return NULL;
	}
	int64_t now = nanotime();
	int64_t deadline = 0;
	if (with_timeout) {
		deadline = timeout_ns <= 0 ? now : now + timeout_ns;
		if (deadline < 0)
			deadline = INT64_MAX;
	}
	/* WithDeadline: if the parent's deadline is already earlier than the
	 * new one, this is just a WithCancel. */
	if (parent->deadline && (!deadline || parent->deadline <= deadline))
		deadline = 0;
	c->deadline = deadline ? deadline : parent->deadline;
	if (deadline > now) {
		c->timer = malloc(sizeof *c->timer);
		if (!c->timer) {
			freechan(c->done);
			api_leave();
			free(c);
			errno = ENOMEM;
			return NULL;
		}
		timer_init(c->timer, ctx_timeout, c);
	}
	/* propagateCancel: arrange for c to be canceled when parent is. */
	int perr = 0;
	if (parent != &background) {
		lock(&ctxtree);
		lock(&parent->mu);
		perr = parent->err;
		unlock(&parent->mu);
		if (!perr) {
			c->parent = parent;
			c->next = parent->children;
			if (c->next)
				c->next->prev = c;
			parent->children = c;
		}
		unlock(&ctxtree);
	}
	if (perr) {
		/* parent has already been canceled */
		ctx_cancel(c, perr);
	} else if (deadline) {
		if (deadline <= now) {
			ctx_cancel(c, ETIMEDOUT); /* deadline has already passed */
		} else {
			lock(&c->mu);
			if (!c->err)
				timer_modify(c->timer, deadline, 0);
			unlock(&c->mu);
		}
	}
	api_leave();
	return c;
}

GOSHIM_API go_ctx *go_ctx_with_cancel(go_ctx *parent)
{
	return ctx_new(parent, 0, false);
}

GOSHIM_API go_ctx *go_ctx_with_timeout(go_ctx *parent, int64_t ns)
{
	return ctx_new(parent, ns, true);
}

GOSHIM_API void go_ctx_cancel(go_ctx *ctx)
{
	if (!ctx || ctx == &background)
		return;
	api_enter();
	ctx_cancel(ctx, ECANCELED);
	api_leave();
}

GOSHIM_API go_chan *go_ctx_done(go_ctx *ctx)
{
	if (!ctx || ctx == &background)
		return NULL;
	return (go_chan *)ctx->done;
}

GOSHIM_API int go_ctx_err(go_ctx *ctx)
{
	if (!ctx || ctx == &background)
		return 0;
	api_enter();
	lock(&ctx->mu);
	int err = ctx->err;
	unlock(&ctx->mu);
	api_leave();
	return err;
}

GOSHIM_API void go_ctx_free(go_ctx *ctx)
{
	if (!ctx || ctx == &background)
		return;
	api_enter();
	ctx_cancel(ctx, ECANCELED);
	if (ctx->timer) {
		timer_destroy(ctx->timer); /* waits out a running ctx_timeout */
		free(ctx->timer);
		ctx->timer = NULL;
	}
	lock(&ctxtree);
	/* removeChild */
	struct go_ctx *parent = ctx->parent;
	if (parent) {
		if (ctx->prev)
			ctx->prev->next = ctx->next;
		else
			parent->children = ctx->next;
		if (ctx->next)
			ctx->next->prev = ctx->prev;
		ctx->parent = NULL;
	}
	/* Detach children that outlive us. */
	for (struct go_ctx *child = ctx->children, *next; child; child = next) {
		next = child->next;
		child->parent = NULL;
		child->next = child->prev = NULL;
	}
	ctx->children = NULL;
	unlock(&ctxtree);
	freechan(ctx->done);
	api_leave();
	free(ctx);
}
