/*
 * Coroutines and pull iterators for the API face: go_coro_* wraps
 * runtime/coro.c; go_iter_* is Go's iter.Pull (iter/iter.go) on top of
 * it, with the same state flags (done, yieldNext) and the same lockstep:
 * exactly one of consumer and generator runs at a time, so the flags need
 * no locks.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/api.h"

/* ---- coroutines -------------------------------------------------------- */

struct go_coro {
	struct coro *c;
	void (*fn)(go_coro *, void *);
	void *arg;
};

static void coro_trampoline(struct coro *c, void *arg)
{
	(void)c;
	go_coro *gc = arg;
	gc->fn(gc, gc->arg);
}

GOSHIM_API go_coro *go_coro_new(void (*fn)(go_coro *c, void *arg), void *arg)
{
	if (!fn) {
		errno = EINVAL;
		return NULL;
	}
	go_coro *gc = malloc(sizeof *gc);
	if (!gc) {
		errno = ENOMEM;
		return NULL;
	}
	gc->fn = fn;
	gc->arg = arg;
	int err;
	api_enter();
	gc->c = newcoro(coro_trampoline, gc, (uintptr_t)__builtin_return_address(0), &err);
	api_leave();
	if (!gc->c) {
		free(gc);
		errno = err;
		return NULL;
	}
	return gc;
}

GOSHIM_API void go_coro_switch(go_coro *c)
{
	api_enter();
	coroswitch(c->c);
	api_leave();
}

GOSHIM_API void go_coro_free(go_coro *c)
{
	if (!c)
		return;
	if (atomic_load(&c->c->gp)) {
		api_enter();
		fatal("go_coro_free of a coroutine that has not exited");
	}
	free(c->c);
	free(c);
}

/* ---- iter.Pull --------------------------------------------------------- */

struct go_iter {
	struct coro *c;
	void (*gen)(go_iter *, void *);
	void *arg;
	size_t elem_size;
	bool done;      /* the generator returned, or stop was called */
	bool yieldNext; /* next is waiting for a yield */
	bool ok;        /* v holds a value */
	unsigned char v[];
};

static void iter_body(struct coro *c, void *arg)
{
	(void)c;
	go_iter *it = arg;
	if (it->done)
		return;
	it->gen(it, it->arg);
	if (it->elem_size)
		memset(it->v, 0, it->elem_size);
	it->ok = false;
	it->done = true;
}

GOSHIM_API go_iter *go_iter_new(void (*gen)(go_iter *it, void *arg), void *arg, size_t elem_size)
{
	if (!gen || elem_size > 65536) {
		errno = EINVAL;
		return NULL;
	}
	go_iter *it = calloc(1, sizeof *it + elem_size);
	if (!it) {
		errno = ENOMEM;
		return NULL;
	}
	it->gen = gen;
	it->arg = arg;
	it->elem_size = elem_size;
	int err;
	api_enter();
	it->c = newcoro(iter_body, it, (uintptr_t)__builtin_return_address(0), &err);
	api_leave();
	if (!it->c) {
		free(it);
		errno = err;
		return NULL;
	}
	return it;
}

GOSHIM_API bool go_iter_yield(go_iter *it, const void *elem)
{
	if (it->done)
		return false;
	api_enter();
	if (!it->yieldNext)
		gopanic("iter.Pull: yield called again before next");
	it->yieldNext = false;
	if (it->elem_size)
		memcpy(it->v, elem, it->elem_size);
	it->ok = true;
	coroswitch(it->c);
	api_leave();
	return !it->done;
}

GOSHIM_API bool go_iter_next(go_iter *it, void *elem)
{
	if (it->done) {
		if (elem && it->elem_size)
			memset(elem, 0, it->elem_size);
		return false;
	}
	api_enter();
	if (it->yieldNext)
		gopanic("iter.Pull: next called again before yield");
	it->yieldNext = true;
	coroswitch(it->c);
	if (it->c->goexited) {
		/* iter.Pull: propagate runtime.Goexit from the generator. */
		it->done = true;
		goexit1();
	}
	api_leave();
	bool ok = it->ok;
	it->ok = false;
	if (elem && it->elem_size) {
		if (ok)
			memcpy(elem, it->v, it->elem_size);
		else
			memset(elem, 0, it->elem_size);
	}
	return ok;
}

GOSHIM_API void go_iter_stop(go_iter *it)
{
	if (!it || it->done)
		return;
	it->done = true;
	api_enter();
	coroswitch(it->c);
	if (it->c->goexited)
		goexit1(); /* iter.Pull: propagate runtime.Goexit from the generator */
	api_leave();
}

GOSHIM_API void go_iter_free(go_iter *it)
{
	if (!it)
		return;
	go_iter_stop(it);
	/* A generator that never started was run to its end by stop; one that
	 * returned exited its coroutine. */
	if (atomic_load(&it->c->gp)) {
		api_enter();
		fatal("go_iter_free: the generator goroutine has not exited");
	}
	free(it->c);
	free(it);
}
