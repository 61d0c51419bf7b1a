/* switch_floor: libgoshim's raw context switch (goshim_swtch, arch/<cpu>/
 * switch.S) against the floor of a bare register switch, on the main
 * thread, without goroutines or the scheduler (issue 2: "the context switch
 * itself, with the TLS-base switch, within 2x of a bare register-switch
 * loop measured in the same run").
 *
 *   switch_floor [MODE] [SIZE]
 *
 * SIZE round trips (two switches each) between the main context and a
 * second one on its own mmap'd stack, in three loops of the same shape:
 *   bare    floor_swtch below: push the callee-saved registers, swap stack
 *           pointers, pop, resume with pop+jmp (x86-64) / br (aarch64) as
 *           switch.S does; no FP control state, no TLS. On aarch64 it keeps
 *           d8-d15 too (callee-saved there), not FPCR.
 *   goshim  goshim_swtch, both gobufs with tls = 0 (the base is kept).
 *   tls     goshim_swtch with the TLS base changed on every switch: the
 *           main context runs on the thread's own base, the other on a copy
 *           of the TCB header (x86-64: %fs:0 self pointer, stack and
 *           pointer guards), so each switch takes switch.S's real path
 *           (wrfsbase with FSGSBASE, else arch_prctl(ARCH_SET_FS); msr
 *           tpidr_el0 on aarch64). The other context runs nothing but its
 *           loop (no libc, no TLS access), and every signal is blocked
 *           while the loops run, so no handler ever sees the copy.
 * MODE is bare, goshim, tls or all (the default): each times its loop(s),
 * 3 rounds after a warm-up, and reports the fastest round in ns per
 * switch. Output (RESULT <metric> <value> <unit>):
 *   bare    switch_bare; switch_raw and switch_raw_tls (the native cells of
 *           scripts/bench's metrics) with the same value
 *   goshim  switch_goshim; switch_raw
 *   tls     switch_goshim_tls; switch_raw_tls
 *   all     switch_bare, switch_goshim, switch_goshim_tls (rounds
 *           interleaved), switch_ratio = goshim/bare and switch_tls_ratio =
 *           goshim_tls/bare, all from this one process.
 * Linked to the convenience library libgoshim_core.la (goshim_swtch is
 * internal), which has no constructor: the runtime does not start, so main
 * calls goshim_arch_init itself, or switch.S would take the arch_prctl
 * path even where the kernel offers wrfsbase. */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <unistd.h>
#include <sys/mman.h>

#include "runtime/arch.h"
#include "tests/bench/bench.h"

enum { ROUNDS = 3, STACK_SIZE = 256 * 1024 };

/* Code that may run on the fake TLS base: nothing through the thread
 * pointer (no canary, no sanitizer run-time). */
#if defined(__has_attribute)
#if __has_attribute(no_stack_protector)
#define NO_STACK_PROTECTOR __attribute__((no_stack_protector))
#endif
#endif
#ifndef NO_STACK_PROTECTOR
#define NO_STACK_PROTECTOR __attribute__((optimize("no-stack-protector")))
#endif
#define FAKE_TLS_SAFE __attribute__((noinline)) NO_STACK_PROTECTOR \
	__attribute__((no_sanitize("address", "thread", "undefined")))

/* ------------------------------------------------------------------------
 * The bare switch: void floor_swtch(uintptr_t *save_sp, const uintptr_t
 * *load_sp), and floor_start, where a first frame resumes (fn in
 * r12/x19, arg in r13/x20, as goshim_gostart). */
void floor_swtch(uintptr_t *save_sp, const uintptr_t *load_sp);
void floor_start(void);

#if defined(__x86_64__)
__asm__(
	"	.text\n"
	"	.p2align 4\n"
	"	.globl floor_swtch\n"
	"	.hidden floor_swtch\n"
	"	.type floor_swtch, @function\n"
	"floor_swtch:\n"
	"	pushq %rbp\n"
	"	pushq %rbx\n"
	"	pushq %r12\n"
	"	pushq %r13\n"
	"	pushq %r14\n"
	"	pushq %r15\n"
	"	movq %rsp, (%rdi)\n"
	"	movq (%rsi), %rsp\n"
	"	popq %r15\n"
	"	popq %r14\n"
	"	popq %r13\n"
	"	popq %r12\n"
	"	popq %rbx\n"
	"	popq %rbp\n"
	"	popq %rcx\n"
	"	jmp *%rcx\n"
	"	.size floor_swtch, .-floor_swtch\n"
	"	.p2align 4\n"
	"	.globl floor_start\n"
	"	.hidden floor_start\n"
	"	.type floor_start, @function\n"
	"floor_start:\n"
	"	xorl %ebp, %ebp\n"
	"	movq %r13, %rdi\n"
	"	call *%r12\n"
	"	ud2\n"
	"	.size floor_start, .-floor_start\n");

static void floor_frame(uintptr_t *sp_out, uintptr_t top, void (*fn)(void *), void *arg)
{
	/* rsp is 16-byte aligned after the final pop, as at a call site. */
	uintptr_t *sp = (uintptr_t *)((top & ~(uintptr_t)15) - 16);
	*--sp = (uintptr_t)floor_start;
	*--sp = 0;              /* rbp */
	*--sp = 0;              /* rbx */
	*--sp = (uintptr_t)fn;  /* r12 */
	*--sp = (uintptr_t)arg; /* r13 */
	*--sp = 0;              /* r14 */
	*--sp = 0;              /* r15 */
	*sp_out = (uintptr_t)sp;
}

static uintptr_t tls_base(void)
{
	uintptr_t tp;
	__asm__ volatile("movq %%fs:0, %0" : "=r"(tp));
	return tp;
}

#elif defined(__aarch64__)
#if defined(__ARM_FEATURE_BTI_DEFAULT) && __ARM_FEATURE_BTI_DEFAULT
#define FLOOR_BTI_C "	hint 34\n"
#define FLOOR_RESUME "	ret x30\n"
#else
#define FLOOR_BTI_C ""
#define FLOOR_RESUME "	br x30\n"
#endif
__asm__(
	"	.text\n"
	"	.p2align 4\n"
	"	.globl floor_swtch\n"
	"	.hidden floor_swtch\n"
	"	.type floor_swtch, %function\n"
	"floor_swtch:\n"
	FLOOR_BTI_C
	"	stp x29, x30, [sp, #-160]!\n"
	"	stp x19, x20, [sp, #16]\n"
	"	stp x21, x22, [sp, #32]\n"
	"	stp x23, x24, [sp, #48]\n"
	"	stp x25, x26, [sp, #64]\n"
	"	stp x27, x28, [sp, #80]\n"
	"	stp d8, d9, [sp, #96]\n"
	"	stp d10, d11, [sp, #112]\n"
	"	stp d12, d13, [sp, #128]\n"
	"	stp d14, d15, [sp, #144]\n"
	"	mov x9, sp\n"
	"	str x9, [x0]\n"
	"	ldr x9, [x1]\n"
	"	mov sp, x9\n"
	"	ldp d8, d9, [sp, #96]\n"
	"	ldp d10, d11, [sp, #112]\n"
	"	ldp d12, d13, [sp, #128]\n"
	"	ldp d14, d15, [sp, #144]\n"
	"	ldp x19, x20, [sp, #16]\n"
	"	ldp x21, x22, [sp, #32]\n"
	"	ldp x23, x24, [sp, #48]\n"
	"	ldp x25, x26, [sp, #64]\n"
	"	ldp x27, x28, [sp, #80]\n"
	"	ldp x29, x30, [sp], #160\n"
	FLOOR_RESUME
	"	.size floor_swtch, .-floor_swtch\n"
	"	.p2align 4\n"
	"	.globl floor_start\n"
	"	.hidden floor_start\n"
	"	.type floor_start, %function\n"
	"floor_start:\n"
	"	mov x29, xzr\n"
	"	mov x0, x20\n"
	"	blr x19\n"
	"	udf #0\n"
	"	.size floor_start, .-floor_start\n");

static void floor_frame(uintptr_t *sp_out, uintptr_t top, void (*fn)(void *), void *arg)
{
	uintptr_t *sp = (uintptr_t *)((top & ~(uintptr_t)15) - 160);
	memset(sp, 0, 160);
	sp[0] = 0;                      /* x29 */
	sp[1] = (uintptr_t)floor_start; /* x30 */
	sp[2] = (uintptr_t)fn;          /* x19 */
	sp[3] = (uintptr_t)arg;         /* x20 */
	*sp_out = (uintptr_t)sp;
}

static uintptr_t tls_base(void)
{
	uintptr_t tp;
	__asm__ volatile("mrs %0, tpidr_el0" : "=r"(tp));
	return tp;
}

#else
#error "switch_floor: no bare switch for this CPU"
#endif

/* ------------------------------------------------------------------------
 * The loops. The other context counts its turns, so a lost or doubled
 * switch shows up. */
static volatile long other_count;
static volatile uintptr_t tls_seen;

static uintptr_t bare_main, bare_other;
static struct gobuf gs_main, gs_other;   /* tls = 0 */
static struct gobuf tls_main, tls_other; /* the real base / the copy */

static FAKE_TLS_SAFE void bare_fn(void *arg)
{
	(void)arg;
	for (;;) {
		other_count++;
		floor_swtch(&bare_other, &bare_main);
	}
}

static FAKE_TLS_SAFE void goshim_fn(void *arg)
{
	(void)arg;
	for (;;) {
		other_count++;
		goshim_swtch(&gs_other, &gs_main);
	}
}

static FAKE_TLS_SAFE void tls_fn(void *arg)
{
	(void)arg;
	tls_seen = tls_base();
	for (;;) {
		other_count++;
		goshim_swtch(&tls_other, &tls_main);
	}
}

static __attribute__((noinline)) void loop_bare(long n)
{
	for (long i = 0; i < n; i++)
		floor_swtch(&bare_main, &bare_other);
}

static __attribute__((noinline)) void loop_goshim(long n)
{
	for (long i = 0; i < n; i++)
		goshim_swtch(&gs_main, &gs_other);
}

static __attribute__((noinline)) void loop_tls(long n)
{
	for (long i = 0; i < n; i++)
		goshim_swtch(&tls_main, &tls_other);
}

enum { BARE, GOSHIM, TLS, NLOOPS };
static const char *const loop_names[NLOOPS] = { "bare", "goshim", "tls" };
static const char *const loop_metrics[NLOOPS] = {
	"switch_bare", "switch_goshim", "switch_goshim_tls",
};
static void (*const loops[NLOOPS])(long) = { loop_bare, loop_goshim, loop_tls };

/* ns per switch of one timed run of loop k, checked. */
static double time_loop(int k, long n)
{
	long before = other_count;
	int64_t t0 = bench_now_ns();
	loops[k](n);
	int64_t t1 = bench_now_ns();
	if (other_count - before != n)
		BENCH_DIE("switch_floor: %s: the other context ran %ld times, not %ld",
		          loop_names[k], other_count - before, n);
	return (double)(t1 - t0) / (2.0 * (double)n);
}

static uintptr_t new_stack(void)
{
	void *p = mmap(NULL, STACK_SIZE, PROT_READ | PROT_WRITE,
	               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		BENCH_DIE("switch_floor: mmap: %s", strerror(errno));
	return (uintptr_t)p + STACK_SIZE;
}

/* The copy of the TCB the tls loop's other context runs on: a page-aligned
 * page with an accessible page below it (x86-64 TLS variables sit below
 * the thread pointer); x86-64's header words that a thread-pointer read
 * could reach (self pointers, stack and pointer guards) as glibc's. */
static uintptr_t fake_tls(uintptr_t orig)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	char *map = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE,
	                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (map == MAP_FAILED)
		BENCH_DIE("switch_floor: mmap: %s", strerror(errno));
	uintptr_t *fake = (uintptr_t *)(map + page);
#if defined(__x86_64__)
	memcpy(fake, (void *)orig, 64); /* tcbhead_t up to the guards */
	fake[0] = (uintptr_t)fake;      /* tcb: %fs:0 */
	fake[2] = (uintptr_t)fake;      /* self */
#else
	memcpy(fake, (void *)orig, 16); /* dtv, private */
#endif
	return (uintptr_t)fake;
}

int main(int argc, char **argv)
{
	const char *mode = "all";
	int first = 1;
	long n = 1000000;

	if (argc > 1 && (argv[1][0] < '0' || argv[1][0] > '9')) {
		mode = argv[1];
		first = 2;
	}
	if (argc > first)
		n = bench_size(2, argv + first - 1, n);
	if (argc > first + 1)
		BENCH_DIE("usage: %s [bare|goshim|tls|all] [SIZE]", argv[0]);

	bool run[NLOOPS] = { false };
	if (!strcmp(mode, "all"))
		run[BARE] = run[GOSHIM] = run[TLS] = true;
	else if (!strcmp(mode, "bare"))
		run[BARE] = true;
	else if (!strcmp(mode, "goshim"))
		run[GOSHIM] = true;
	else if (!strcmp(mode, "tls"))
		run[TLS] = true;
	else
		BENCH_DIE("%s: mode must be bare, goshim, tls or all, not '%s'", argv[0], mode);

	goshim_arch_init();
	uintptr_t orig = tls_base();
	if (orig == 0)
		BENCH_DIE("switch_floor: no TLS base");
	floor_frame(&bare_other, new_stack(), bare_fn, NULL);
	goshim_gostart_frame(&gs_other, new_stack(), goshim_fn, NULL);
	gs_main.tls = gs_other.tls = 0;
	goshim_gostart_frame(&tls_other, new_stack(), tls_fn, NULL);
	tls_main.tls = orig;
	tls_other.tls = fake_tls(orig);

	/* No signal handler may run while the loops do: one could find the
	 * fake TLS base installed. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);

	long warm = n < 10000 ? n : 10000;
	double best[NLOOPS];
	for (int k = 0; k < NLOOPS; k++) {
		best[k] = 0;
		if (run[k])
			(void)time_loop(k, warm);
	}
	for (int r = 0; r < ROUNDS; r++)
		for (int k = 0; k < NLOOPS; k++) {
			if (!run[k])
				continue;
			double ns = time_loop(k, n);
			if (r == 0 || ns < best[k])
				best[k] = ns;
		}

	uintptr_t after = tls_base();
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (after != orig)
		BENCH_DIE("switch_floor: TLS base %#lx after the loops, not %#lx",
		          (unsigned long)after, (unsigned long)orig);
	if (run[TLS] && tls_seen != tls_other.tls)
		BENCH_DIE("switch_floor: the tls loop's context saw base %#lx, not %#lx",
		          (unsigned long)tls_seen, (unsigned long)tls_other.tls);

#if defined(__x86_64__)
	if (run[TLS])
		fprintf(stderr, "switch_floor: TLS base set with %s\n",
		        goshim_have_fsgsbase ? "wrfsbase (FSGSBASE)" : "arch_prctl(ARCH_SET_FS)");
#endif
	for (int k = 0; k < NLOOPS; k++)
		if (run[k])
			bench_result(loop_metrics[k], best[k], "ns/op");
	if (!strcmp(mode, "all")) {
		bench_result("switch_ratio", best[GOSHIM] / best[BARE], "x");
		bench_result("switch_tls_ratio", best[TLS] / best[BARE], "x");
	} else if (run[BARE]) {
		/* The native cells of scripts/bench's switch_raw and switch_raw_tls. */
		bench_result("switch_raw", best[BARE], "ns/op");
		bench_result("switch_raw_tls", best[BARE], "ns/op");
	} else if (run[GOSHIM]) {
		bench_result("switch_raw", best[GOSHIM], "ns/op");
	} else {
		bench_result("switch_raw_tls", best[TLS], "ns/op");
	}
	return 0;
}
