/*
 * goshim.h — Go's toolbox for C: goroutines on an M:N scheduler ported from
 * Go's runtime.
 *
 * Link with -lgoshim (pkg-config goshim). The runtime starts itself when the
 * library is loaded; nothing needs initialising. Any call works from any
 * thread: the first call from a thread the runtime does not know adopts that
 * thread (as cgo's needm does), and its code then runs as a goroutine locked
 * to that thread.
 *
 * Semantics follow Go wherever this header is silent. Misuse that Go turns
 * into a panic ends the process as an unrecovered panic does: the message on
 * stderr, a dump of every goroutine, exit status 2. So does a deadlock of
 * every goroutine ("fatal error: all goroutines are asleep - deadlock!").
 *
 * Environment, read once at start-up:
 *   GOMAXPROCS=N        number of Ps (default: the CPUs this process may use)
 *   GOSHIM_STACK=SIZE   stack reservation of go() goroutines (default 256K;
 *                       suffixes K, M); pages are committed on first touch
 *   GOSHIM_DEBUG=LIST   comma list: schedtrace=MS (print a SCHED line every
 *                       MS milliseconds), scheddetail=1 (add per-P, per-M and
 *                       per-goroutine lines)
 * SIGQUIT prints every goroutine with its state, wait reason, creator and
 * backtrace, and exits 2 (unless the program installed its own handler).
 */
#ifndef GOSHIM_H
#define GOSHIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GOSHIM_API __attribute__((visibility("default")))

/* ---- goroutines ------------------------------------------------------ */

/* Starts fn(arg) as a new goroutine (Go's `go fn(arg)`).
 * Returns 0, EINVAL when fn is NULL, or ENOMEM when no stack could be had. */
GOSHIM_API int go_spawn(void (*fn)(void *), void *arg);

/* runtime.Gosched: lets other goroutines run; the caller stays runnable. */
GOSHIM_API void go_yield(void);

/* runtime.Goexit: ends the calling goroutine. From the main goroutine the
 * others run on; when the last one ends the process exits as Go's does
 * ("no goroutines (main called runtime.Goexit) - deadlock!", status 2). */
GOSHIM_API __attribute__((noreturn)) void go_exit(void);

/* The calling goroutine's id: positive, unique, never reused. */
GOSHIM_API int64_t go_self(void);

/* runtime.NumGoroutine: goroutines that exist (running, runnable, waiting,
 * or created and not yet started), the main goroutine and adopted threads
 * included; the runtime's own are not counted. */
GOSHIM_API int go_count(void);

/* runtime.GOMAXPROCS: sets the number of Ps to n and returns the previous
 * value; n < 1 only queries. Values above 1024 are clamped to 1024. */
GOSHIM_API int go_maxprocs(int n);

/* runtime.LockOSThread / UnlockOSThread: wires the calling goroutine to its
 * OS thread (nests, as in Go 1.10+: as many unlocks as locks release it). A
 * goroutine that exits while locked takes its thread with it. */
GOSHIM_API void go_lock_thread(void);
GOSHIM_API void go_unlock_thread(void);

/* Called with the fatal message (e.g. "fatal error: all goroutines are
 * asleep - deadlock!") before the goroutine dump; if it returns, the dump
 * is printed and the process exits with status 2. NULL restores the
 * default (no handler). */
GOSHIM_API void go_set_fatal_handler(void (*fn)(const char *msg));

/* ---- time ------------------------------------------------------------ */

typedef struct go_chan go_chan;
typedef struct go_ticker go_ticker;
typedef struct go_ctx go_ctx;
typedef struct go_coro go_coro;
typedef struct go_iter go_iter;

/* The monotonic clock (CLOCK_MONOTONIC) in nanoseconds. */
GOSHIM_API int64_t go_now(void);

/* time.Sleep: parks the calling goroutine for at least ns nanoseconds; its
 * thread runs other goroutines meanwhile. ns <= 0 returns at once. */
GOSHIM_API void go_sleep(int64_t ns);

/* time.After: a channel (capacity 1, int64_t elements) that receives
 * go_now() once, ns nanoseconds from now (at once if ns <= 0). The caller
 * frees it with go_chan_free, which also cancels a timer not yet fired.
 * NULL with errno ENOMEM when out of memory. */
GOSHIM_API go_chan *go_after(int64_t ns);

/* time.NewTicker: a channel (capacity 1, int64_t elements, go_now() at each
 * tick) that ticks every period_ns; ticks are dropped while the channel is
 * full, as Go does for slow receivers. NULL with errno EINVAL if
 * period_ns <= 0, ENOMEM when out of memory. */
GOSHIM_API go_ticker *go_ticker_new(int64_t period_ns);
GOSHIM_API go_chan *go_ticker_chan(go_ticker *t);
/* No more ticks; the channel stays valid (a tick already in it stays). */
GOSHIM_API void go_ticker_stop(go_ticker *t);
/* Stops the ticker and frees it with its channel. NULL is a no-op. */
GOSHIM_API void go_ticker_free(go_ticker *t);

/* ---- channels ---------------------------------------------------------- */

/* make(chan T, cap) with sizeof(T) == elem_size: values are copied in and
 * out. elem_size 0 is Go's chan struct{} (element pointers may be NULL).
 * cap 0 is unbuffered: a send waits for a receiver and the value passes
 * directly between them. NULL with errno EINVAL if elem_size > 65536, or
 * ENOMEM if elem_size * cap overflows or memory is short. */
GOSHIM_API go_chan *go_chan_make(size_t elem_size, size_t cap);

/* ch <- *elem. Blocks until a receiver takes it or buffer space frees. A
 * NULL channel blocks forever. Sending on a closed channel, now or while
 * blocked, is fatal: "panic: send on closed channel". */
GOSHIM_API void go_chan_send(go_chan *c, const void *elem);

/* *elem, ok = <-ch. Blocks until a value arrives; returns true with the
 * value, or false once the channel is closed and drained (elem zeroed).
 * elem may be NULL to discard the value. A NULL channel blocks forever. */
GOSHIM_API bool go_chan_recv(go_chan *c, void *elem);

/* select { case ch <- *elem: default: }: true if sent, false if it would
 * block (or c is NULL). Fatal on a closed channel, as a send is. */
GOSHIM_API bool go_chan_trysend(go_chan *c, const void *elem);

enum { GO_OK = 0, GO_EMPTY = 1, GO_CLOSED = 2 };
/* select { case v, ok := <-ch: default: }: GO_OK with a value, GO_EMPTY if
 * it would block (or c is NULL), GO_CLOSED if closed and drained (elem
 * zeroed). elem may be NULL. */
GOSHIM_API int go_chan_tryrecv(go_chan *c, void *elem);

/* close(ch): receivers drain the buffer and then get false; blocked
 * senders die ("panic: send on closed channel"). Closing a closed channel
 * ("panic: close of closed channel") or NULL ("panic: close of nil
 * channel") is fatal, and so is closing a go_after or ticker channel,
 * which Go makes receive-only ("panic: close of a timer channel ..."). */
GOSHIM_API void go_chan_close(go_chan *c);

/* len(ch) and cap(ch); 0 for NULL. */
GOSHIM_API size_t go_chan_len(go_chan *c);
GOSHIM_API size_t go_chan_cap(go_chan *c);

/* Frees a channel (and the timer of a go_after channel). Values left in
 * the buffer are dropped. NULL is a no-op. Fatal if a goroutine is
 * blocked on it ("panic: go_chan_free of a channel with waiting
 * goroutines"); goroutines just woken from it (a close, a select that took
 * another case) are waited for. Using it afterwards is undefined, as any
 * use after free. */
GOSHIM_API void go_chan_free(go_chan *c);

/* ---- select ------------------------------------------------------------ */

typedef struct {
	go_chan *chan; /* NULL: the case is never ready */
	int op;        /* GO_OP_SEND or GO_OP_RECV */
	void *elem;    /* value to send, or where to receive (may be NULL) */
	bool ok;       /* after a receive case ran: false if closed */
} go_case;
enum { GO_OP_SEND = 1, GO_OP_RECV = 2 };
#define GO_SEND(c, p) ((go_case){ .chan = (c), .op = GO_OP_SEND, .elem = (void *)(p) })
#define GO_RECV(c, p) ((go_case){ .chan = (c), .op = GO_OP_RECV, .elem = (p) })

/* select { case ...: }: blocks until one case can run, runs it and returns
 * its index. Of several ready cases one is chosen uniformly at random. A
 * channel may appear in several cases. n == 0 blocks forever (select {}).
 * A send case on a closed channel is fatal, as a send is. At most 65536
 * cases; an op other than GO_OP_SEND/GO_OP_RECV is fatal. */
GOSHIM_API int go_select(go_case *cases, size_t n);

/* select with a default: runs a ready case and returns its index, or
 * returns -1 at once if none is ready. */
GOSHIM_API int go_select_nb(go_case *cases, size_t n);

/* ---- sync.WaitGroup ---------------------------------------------------- */

/* All-zero is a valid, empty WaitGroup (static, automatic with GO_WG_INIT,
 * or memset). Must not be copied once used. */
typedef struct go_wg {
	uint64_t state_; /* private: counter (high 32 bits), waiters (low 32) */
	uint32_t sema_;  /* private */
	uint32_t pad_;
} go_wg;
#define GO_WG_INIT { 0, 0, 0 }

/* Adds delta (may be negative) to the counter; when it reaches zero every
 * goroutine blocked in go_wg_wait is released. A negative counter is fatal
 * ("panic: sync: negative WaitGroup counter"), as is an Add that races
 * with a Wait on a zero counter (Go's misuse panics). */
GOSHIM_API void go_wg_add(go_wg *wg, int delta);
/* go_wg_add(wg, -1). */
GOSHIM_API void go_wg_done(go_wg *wg);
/* Blocks until the counter is zero. Reusing the WaitGroup (Add) before
 * every Wait has returned is fatal ("panic: sync: WaitGroup is reused
 * before previous Wait has returned"). */
GOSHIM_API void go_wg_wait(go_wg *wg);

/* ---- context ----------------------------------------------------------- */

/* context.Background(): never cancelled, no deadline; free is a no-op. */
GOSHIM_API go_ctx *go_ctx_background(void);
/* context.WithCancel(parent): cancelled by go_ctx_cancel or when its parent
 * is. NULL parent means background. NULL with errno ENOMEM. */
GOSHIM_API go_ctx *go_ctx_with_cancel(go_ctx *parent);
/* context.WithTimeout(parent, ns): also cancelled, with ETIMEDOUT, ns
 * nanoseconds from now (at once if ns <= 0). */
GOSHIM_API go_ctx *go_ctx_with_timeout(go_ctx *parent, int64_t ns);
/* Cancels ctx and every descendant (err ECANCELED, unless already done):
 * all their done channels are closed before it returns. Idempotent. */
GOSHIM_API void go_ctx_cancel(go_ctx *ctx);
/* ctx.Done(): a channel (elem_size 0) closed exactly once, when ctx is
 * cancelled or expires. NULL (never ready) for background. Owned by ctx. */
GOSHIM_API go_chan *go_ctx_done(go_ctx *ctx);
/* ctx.Err(): 0 while live, then ECANCELED or ETIMEDOUT; the first cause
 * sticks. */
GOSHIM_API int go_ctx_err(go_ctx *ctx);
/* Cancels ctx (as go_ctx_cancel) and frees it; goroutines blocked on its
 * done channel are woken by the cancel, and the free waits until they are
 * off it. Free children before their parent; a parent freed first
 * detaches its live children (they keep their own state). NULL and
 * background are no-ops. */
GOSHIM_API void go_ctx_free(go_ctx *ctx);

/* ---- coroutines and pull iterators --------------------------------------- */

/* A coroutine (Go's runtime coro): fn(c, arg) runs in its own goroutine in
 * lockstep with its callers. It starts at the first go_coro_switch(c).
 * go_coro_switch(c) wakes the goroutine blocked on c and blocks the caller
 * on c, handing the thread over directly (no run queue). When fn returns,
 * the goroutine blocked on c resumes and c is exited: switching to it
 * again is fatal ("fatal error: coroswitch on exited coro"). A coroutine
 * created on a locked thread runs on that thread only, and a goroutine
 * locked to a thread can switch only to coroutines created on that thread
 * (otherwise: "fatal error: coroswitch on thread locked to another
 * goroutine"). The main thread and adopted threads are locked goroutines,
 * so a coroutine or iterator made in a go() goroutine cannot be driven
 * from main, and one made on main only from main. NULL with errno EINVAL
 * (NULL fn) or ENOMEM. */
GOSHIM_API go_coro *go_coro_new(void (*fn)(go_coro *c, void *arg), void *arg);
GOSHIM_API void go_coro_switch(go_coro *c);
/* Frees an exited coroutine (NULL is a no-op); fatal if it has not exited. */
GOSHIM_API void go_coro_free(go_coro *c);

/* iter.Pull: gen(it, arg) produces values with go_iter_yield; the consumer
 * pulls them with go_iter_next. The generator starts at the first next (or
 * stop) and runs in lockstep with the consumer, on a coroutine. elem_size
 * is the size of one value (0 allowed). NULL with errno EINVAL (NULL gen,
 * elem_size > 65536) or ENOMEM. */
GOSHIM_API go_iter *go_iter_new(void (*gen)(go_iter *it, void *arg), void *arg,
                                size_t elem_size);
/* In the generator: hands *elem to the consumer and waits for the next
 * pull. Returns false when the consumer stopped: the generator should
 * return. A generator that calls go_exit ends the consumer's goroutine
 * too (in its go_iter_next or go_iter_stop), as iter.Pull propagates
 * runtime.Goexit. */
GOSHIM_API bool go_iter_yield(go_iter *it, const void *elem);
/* In the consumer: true with the next value in *elem (elem may be NULL), or
 * false (elem zeroed) once the generator returned or the iterator was
 * stopped. */
GOSHIM_API bool go_iter_next(go_iter *it, void *elem);
/* Stops the iterator: a suspended generator sees go_iter_yield return
 * false and runs to its end before go_iter_stop returns. May be called
 * more than once; go_iter_next returns false afterwards. */
GOSHIM_API void go_iter_stop(go_iter *it);
/* Stops it if needed, then frees it. NULL is a no-op. */
GOSHIM_API void go_iter_free(go_iter *it);

/* Internal: go()'s libffi trampoline. Use go() instead. */
typedef enum {
	GO_ARG_SCHAR, GO_ARG_UCHAR, GO_ARG_SHORT, GO_ARG_USHORT, GO_ARG_INT,
	GO_ARG_UINT, GO_ARG_LONG, GO_ARG_ULONG, GO_ARG_LLONG, GO_ARG_ULLONG,
	GO_ARG_FLOAT, GO_ARG_DOUBLE, GO_ARG_PTR, GO_ARG_BOOL, GO_ARG_CHAR
} go_argtype;
typedef struct {
	go_argtype type;
	union {
		long long ll; unsigned long long ull; double d; float f; void *p;
	} v;
} go_arg;
GOSHIM_API int go_spawn_ffi(void (*fn)(void), size_t nargs, const go_arg *args);

/* go(fn, a, b, ...): Go's `go fn(a, b, ...)`. Evaluates to an int like
 * go_spawn. The arguments are evaluated now and copied; each is passed with
 * the type of its expression (integer types, float, double, pointers), so
 * fn's parameters must have exactly those types — cast literals:
 * go(f, (char)'x', 1L). 0 to 16 arguments; long double and _Complex are
 * rejected at compile time. The call is made through libffi. */
#ifndef __cplusplus /* go() needs C11 _Generic; C++ calls go_spawn */
#define GO_ARG_(x) _Generic((x), \
	_Bool: (go_arg){ GO_ARG_BOOL, { .ll = (long long)(x) } }, \
	char: (go_arg){ GO_ARG_CHAR, { .ll = (long long)(x) } }, \
	signed char: (go_arg){ GO_ARG_SCHAR, { .ll = (long long)(x) } }, \
	unsigned char: (go_arg){ GO_ARG_UCHAR, { .ull = (unsigned long long)(x) } }, \
	short: (go_arg){ GO_ARG_SHORT, { .ll = (long long)(x) } }, \
	unsigned short: (go_arg){ GO_ARG_USHORT, { .ull = (unsigned long long)(x) } }, \
	int: (go_arg){ GO_ARG_INT, { .ll = (long long)(x) } }, \
	unsigned int: (go_arg){ GO_ARG_UINT, { .ull = (unsigned long long)(x) } }, \
	long: (go_arg){ GO_ARG_LONG, { .ll = (long long)(x) } }, \
	unsigned long: (go_arg){ GO_ARG_ULONG, { .ull = (unsigned long long)(x) } }, \
	long long: (go_arg){ GO_ARG_LLONG, { .ll = (long long)(x) } }, \
	unsigned long long: (go_arg){ GO_ARG_ULLONG, { .ull = (unsigned long long)(x) } }, \
	float: (go_arg){ GO_ARG_FLOAT, { .f = go_arg_float_((x)) } }, \
	double: (go_arg){ GO_ARG_DOUBLE, { .d = go_arg_double_((x)) } }, \
	default: (go_arg){ GO_ARG_PTR, { .p = (void *)go_arg_ptr_((x)) } })
/* Helpers that make each _Generic branch type-check for every argument
 * type; a long double or _Complex argument fails in go_arg_ptr_. */
#define go_arg_float_(x) _Generic((x), float: (x), default: 0.0f)
#define go_arg_double_(x) _Generic((x), double: (x), default: 0.0)
#define go_arg_ptr_(x) _Generic((x), \
	_Bool: (void *)0, char: (void *)0, signed char: (void *)0, unsigned char: (void *)0, \
	short: (void *)0, unsigned short: (void *)0, int: (void *)0, unsigned int: (void *)0, \
	long: (void *)0, unsigned long: (void *)0, long long: (void *)0, \
	unsigned long long: (void *)0, float: (void *)0, double: (void *)0, \
	default: (x))

#define GO_NARGS_(...) GO_NARGS_I_(__VA_ARGS__ __VA_OPT__(,) 16, 15, 14, 13, 12, 11, 10, \
	9, 8, 7, 6, 5, 4, 3, 2, 1, 0)
#define GO_NARGS_I_(a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, \
	a15, a16, n, ...) n
#define GO_MAP_0_(...)
#define GO_MAP_1_(a) GO_ARG_(a)
#define GO_MAP_2_(a, ...) GO_ARG_(a), GO_MAP_1_(__VA_ARGS__)
#define GO_MAP_3_(a, ...) GO_ARG_(a), GO_MAP_2_(__VA_ARGS__)
#define GO_MAP_4_(a, ...) GO_ARG_(a), GO_MAP_3_(__VA_ARGS__)
#define GO_MAP_5_(a, ...) GO_ARG_(a), GO_MAP_4_(__VA_ARGS__)
#define GO_MAP_6_(a, ...) GO_ARG_(a), GO_MAP_5_(__VA_ARGS__)
#define GO_MAP_7_(a, ...) GO_ARG_(a), GO_MAP_6_(__VA_ARGS__)
#define GO_MAP_8_(a, ...) GO_ARG_(a), GO_MAP_7_(__VA_ARGS__)
#define GO_MAP_9_(a, ...) GO_ARG_(a), GO_MAP_8_(__VA_ARGS__)
#define GO_MAP_10_(a, ...) GO_ARG_(a), GO_MAP_9_(__VA_ARGS__)
#define GO_MAP_11_(a, ...) GO_ARG_(a), GO_MAP_10_(__VA_ARGS__)
#define GO_MAP_12_(a, ...) GO_ARG_(a), GO_MAP_11_(__VA_ARGS__)
#define GO_MAP_13_(a, ...) GO_ARG_(a), GO_MAP_12_(__VA_ARGS__)
#define GO_MAP_14_(a, ...) GO_ARG_(a), GO_MAP_13_(__VA_ARGS__)
#define GO_MAP_15_(a, ...) GO_ARG_(a), GO_MAP_14_(__VA_ARGS__)
#define GO_MAP_16_(a, ...) GO_ARG_(a), GO_MAP_15_(__VA_ARGS__)
#define GO_CAT_(a, b) GO_CAT_I_(a, b)
#define GO_CAT_I_(a, b) a##b
#define go(fn, ...) go_spawn_ffi((void (*)(void))(fn), GO_NARGS_(__VA_ARGS__), \
	(const go_arg[]){ GO_CAT_(GO_CAT_(GO_MAP_, GO_NARGS_(__VA_ARGS__)), _)(__VA_ARGS__) \
	__VA_OPT__(,) (go_arg){ GO_ARG_INT, { 0 } } })
#endif

#ifdef __cplusplus
}
#endif
#endif
