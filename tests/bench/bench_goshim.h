/* Helpers of the libgoshim benchmark programs (*_goshim.c).
 *
 * The main goroutine of a libgoshim program is the adopted main thread,
 * LOCKED to its OS thread: whenever it blocks or yields, the scheduler must
 * hand its P to another OS thread (and back), futex wake-ups included. Code
 * that main runs would pay those hand-offs, which Go's main never does. So
 * main only starts ONE driver goroutine and waits for it on a WaitGroup: a
 * single hand-off at the start and one at the end, both outside the timed
 * region. Everything timed runs in ordinary goroutines. */
#ifndef BENCH_GOSHIM_H
#define BENCH_GOSHIM_H

#include <goshim.h>

#include "bench.h"

/* go_spawn, or exit 1 with the reason. */
static inline void bench_go(void (*fn)(void *), void *arg)
{
	int err = go_spawn(fn, arg);
	if (err)
		BENCH_DIE("go_spawn: %s", strerror(err));
}

static go_wg bench_driver_wg;
static void (*bench_driver_fn)(void *);

static void bench_driver(void *arg)
{
	bench_driver_fn(arg);
	go_wg_done(&bench_driver_wg);
}

/* Runs fn(arg) in a driver goroutine; the main goroutine waits in
 * go_wg_wait until it has returned. */
static inline void bench_run_driver(void (*fn)(void *), void *arg)
{
	bench_driver_fn = fn;
	go_wg_add(&bench_driver_wg, 1);
	bench_go(bench_driver, arg);
	go_wg_wait(&bench_driver_wg);
}

#endif
