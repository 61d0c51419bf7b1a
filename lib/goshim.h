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
