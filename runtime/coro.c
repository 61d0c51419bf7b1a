/*
 * Coroutines, ported from Go's runtime/coro.go (Go 1.23): goroutines that
 * run in lockstep, handing the M directly to each other.
 *
 * A coro is a goroutine blocked on it (c.gp). coroswitch(c) wakes c.gp and
 * blocks the caller on c in one step on g0 (coroswitch_m in proc.c): no
 * run queue, no other P, no wake-up of another M. When the coroutine's
 * function returns, the goroutine blocked on c resumes and c.gp becomes
 * NULL: switching to it again is fatal ("coroswitch on exited coro").
 *
 * Invariants (coro.go):
 *  - Exactly one goroutine is blocked on a live coro; the switch swaps the
 *    caller in with a CAS, so two goroutines switching on one coro at
 *    once is caught rather than lost.
 *  - A coroutine created by a goroutine locked to its thread runs locked to
 *    that thread, and only that thread may switch to it.
 */
#include <errno.h>
#include <stdlib.h>

#include "runtime/runtime.h"

/* corostart is the entry func for a new coroutine. It runs the coroutine
 * user function f passed to corostart and then calls coroexit to remove
 * the extra concurrency. Runs as user code (outside the runtime). */
static void corostart(void *arg)
{
	struct coro *c = arg;
	/* The goroutine may run on another thread after f: keep its g
	 * rather than read the thread's slot through an address the
	 * compiler computed before the call. */
	struct g *gp = getg();
	gp->corog = c;
	c->f(c, c->arg);
	runtime_enter();
	gp->corog = NULL;
	/* coroexit */
	coroswitch_mcall(c, true);
	throw("coroexit returned");
}

/* Go defers coroexit in corostart, so a Goexit in f still hands the
 * thread to the goroutine blocked on c; goexit1 calls this. */
void coroexit_goexit(void)
{
	struct g *gp = getg();
	struct coro *c = gp->corog;
	gp->corog = NULL;
	c->goexited = true;
	coroswitch_mcall(c, true);
	throw("coroexit returned");
}

/* newcoro creates a new coro containing a goroutine blocked waiting to
 * run f. Called inside the runtime (holding a P). */
struct coro *newcoro(void (*f)(struct coro *, void *), void *arg, uintptr_t pc, int *err)
{
	struct coro *c = calloc(1, sizeof *c);
	if (!c) {
		*err = ENOMEM;
		return NULL;
	}
	c->f = f;
	c->arg = arg;
	struct g *gp = getg();
	struct m *mp = gp->m;
	struct g *ng = newproc_parked(corostart, c, pc, err);
	if (!ng) {
		free(c);
		return NULL;
	}
	if (mp->lockedExt + mp->lockedInt != 0) {
		c->mp = mp;
		c->lockedExt = mp->lockedExt;
		c->lockedInt = mp->lockedInt;
	}
	atomic_store(&c->gp, ng);
	return c;
}

/* coroswitch switches to the goroutine blocked on c and then blocks the
 * current goroutine on c. */
void coroswitch(struct coro *c)
{
	if (!atomic_load(&c->gp))
		fatal("coroswitch on exited coro");
	coroswitch_mcall(c, false);
}
