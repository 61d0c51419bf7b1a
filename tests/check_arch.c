/*
 * Suite "arch": the per-CPU floor (arch/<cpu>/switch.S and context.c) on
 * its own, without the scheduler: register preservation across
 * goshim_swtch, first frames, goshim_gogo, goshim_mcall,
 * goshim_systemstack, the TLS-base switch and a long ping-pong.
 *
 * The runner is CK_NOFORK (the runtime runs threads, and the contexts
 * here live in this process), so a failed ck_assert longjmps back to the
 * runner. That must only ever happen on the main stack: code that runs on
 * a test context records what it saw in globals, switches back, and the
 * test asserts on the main stack afterwards. A context still suspended
 * when its test ends is simply abandoned with its stack.
 *
 * Register patterns come from the assembly helper
 * tests/arch_regs_<cpu>.S (goshim_test_regs_survive), which loads every
 * callee-saved register and the FP control state before switching and
 * checks them after; both sides of a switch run it with different seeds,
 * so each side clobbers everything the other must get back.
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/auxv.h>
#include <sys/mman.h>

#include "runtime/arch.h"

#ifdef GOSHIM_ASAN
#include <sanitizer/asan_interface.h>
#endif

#ifdef STANDALONE_ARCH_TEST
/* In the library the runtime defines and sets it at start-up. */
uint8_t goshim_have_fsgsbase;
#endif

#ifndef AT_HWCAP2
#define AT_HWCAP2 26
#endif

/* tests/arch_regs_<cpu>.S */
int goshim_test_regs_survive(struct gobuf *save, const struct gobuf *load,
                             uint64_t seed);
uintptr_t goshim_test_sp(void);
extern const char goshim_test_regs_resume[];
extern const uint64_t goshim_test_reg_xor[];
/* arch/<cpu>/switch.S: where every first frame resumes. */
void goshim_gostart(void);

/* Code run while the TLS base is a fake one may not touch anything that
 * goes through the thread pointer: no stack-protector canary (read from
 * %fs:0x28 on x86-64), no sanitizer run-time. */
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

/* For functions that end in goshim_gogo on a test stack. AddressSanitizer
 * calls __asan_handle_no_return before any noreturn call, which assumes
 * the thread's own stack (or an annotated fiber); these stacks are bare,
 * as this suite tests the primitives without the runtime's fiber
 * annotations, so those functions are left uninstrumented. */
#define ENDS_IN_GOGO __attribute__((noinline, no_sanitize_address))

#if defined(__x86_64__)
static const char *const reg_names[] = {
	"nothing", "rbx", "rbp", "r12", "r13", "r14", "r15",
	"MXCSR", "x87 control word",
};
enum { FP_REG_XOR = 1 }; /* rbp's entry in goshim_test_reg_xor */

struct fpctl {
	uint32_t mxcsr;
	uint16_t fpcw;
};

static struct fpctl fpctl_get(void)
{
	struct fpctl c;
	__asm__ volatile("stmxcsr %0" : "=m"(c.mxcsr));
	__asm__ volatile("fnstcw %0" : "=m"(c.fpcw));
	return c;
}

static void fpctl_set(struct fpctl c)
{
	__asm__ volatile("ldmxcsr %0" : : "m"(c.mxcsr));
	__asm__ volatile("fldcw %0" : : "m"(c.fpcw));
}

/* Round-toward-zero in both units, double precision for x87. */
static const struct fpctl fpctl_unusual = { 0x7f80, 0x0e7f };

static int fpctl_eq(struct fpctl a, struct fpctl b)
{
	/* Ignore the MXCSR exception flags and reserved control-word bits. */
	return (a.mxcsr & ~0x3fu) == (b.mxcsr & ~0x3fu) &&
	       (a.fpcw & 0x0f3f) == (b.fpcw & 0x0f3f);
}

static inline __attribute__((always_inline)) uintptr_t fake_tls_word(uintptr_t off)
{
	uintptr_t v;
	__asm__ volatile("movq %%fs:(%1), %0" : "=r"(v) : "r"(off));
	return v;
}

#elif defined(__aarch64__)
static const char *const reg_names[] = {
	"nothing", "x19", "x20", "x21", "x22", "x23", "x24", "x25", "x26",
	"x27", "x28", "x29", "d8", "d9", "d10", "d11", "d12", "d13", "d14",
	"d15", "FPCR",
};
enum { FP_REG_XOR = 10 }; /* x29's entry in goshim_test_reg_xor */

struct fpctl {
	uint64_t fpcr;
};

static struct fpctl fpctl_get(void)
{
	struct fpctl c;
	__asm__ volatile("mrs %0, fpcr" : "=r"(c.fpcr));
	return c;
}

static void fpctl_set(struct fpctl c)
{
	__asm__ volatile("msr fpcr, %0" : : "r"(c.fpcr));
}

/* Round-toward-zero. */
static const struct fpctl fpctl_unusual = { 3u << 22 };

static int fpctl_eq(struct fpctl a, struct fpctl b)
{
	return a.fpcr == b.fpcr;
}

static inline __attribute__((always_inline)) uintptr_t fake_tls_word(uintptr_t off)
{
	uintptr_t tp;
	__asm__ volatile("mrs %0, tpidr_el0" : "=r"(tp));
	return *(volatile uintptr_t *)(tp + off);
}

#else
#error "check_arch: no test helpers for this CPU"
#endif

#define NREGS ((int)(sizeof reg_names / sizeof reg_names[0]))

static const char *reg_name(int code)
{
	return code >= 0 && code < NREGS ? reg_names[code] : "an unknown register";
}

/* ------------------------------------------------------------------------
 * Stacks: 64 KiB each, mmap'd, with an inaccessible page below so that an
 * overflow faults instead of corrupting a neighbour. */
enum { STACK_SIZE = 64 * 1024, NSTACKS = 3 };

struct stack {
	char *map;
	size_t maplen;
	uintptr_t lo, top;
};

static struct stack stacks[NSTACKS];

static void stacks_setup(void)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);

	for (int i = 0; i < NSTACKS; i++) {
		struct stack *s = &stacks[i];
		s->maplen = STACK_SIZE + page;
		s->map = mmap(NULL, s->maplen, PROT_READ | PROT_WRITE,
		              MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
		ck_assert_ptr_ne(s->map, MAP_FAILED);
		ck_assert_int_eq(mprotect(s->map, page, PROT_NONE), 0);
		s->lo = (uintptr_t)s->map + page;
		s->top = s->lo + STACK_SIZE;
#ifdef GOSHIM_ASAN
		/* AddressSanitizer keeps the shadow of unmapped memory: frames
		 * abandoned on a previous test's stack at this address would still
		 * be poisoned. */
		ASAN_UNPOISON_MEMORY_REGION((void *)s->lo, STACK_SIZE);
#endif
	}
}

static void stacks_teardown(void)
{
	for (int i = 0; i < NSTACKS; i++) {
		if (stacks[i].map && stacks[i].map != MAP_FAILED)
			munmap(stacks[i].map, stacks[i].maplen);
		memset(&stacks[i], 0, sizeof stacks[i]);
	}
}

static int on_stack(const struct stack *s, uintptr_t addr)
{
	return addr >= s->lo && addr < s->top;
}

/* ------------------------------------------------------------------------
 * (a) Every callee-saved register, and the FP control state, survives
 * goshim_swtch in both directions. Main and a second context take turns
 * in goshim_test_regs_survive; main's seeds are even and the other's odd
 * (so the FP control patterns differ as well as every integer and vector
 * pattern). While main is suspended, the other context also checks what
 * goshim_arch_saved_frame reports for it: the frame pointer is the
 * pattern main's helper put in rbp/x29, the pc the helper's resume
 * address. */
enum { REGS_ROUNDS = 8 };

static struct gobuf regs_main, regs_other;
static int regs_other_result[REGS_ROUNDS];
static int regs_other_done;
static int regs_frame_ok[REGS_ROUNDS];

static uint64_t regs_seed(int round, int other)
{
	uint64_t s = 0x0123456789abcdefull * (uint64_t)(2 * round + 3);
	return other ? ~s | 1 : s & ~(uint64_t)1;
}

/* A lost register usually also breaks compiled code later on, and with
 * CK_NOFORK a crash in a later test ends the process before the runner
 * prints its summary: name the register on stderr as soon as it is known. */
static void regs_lost_now(const char *side, int round, int code)
{
	fprintf(stderr, "check_arch: round %d: %s of the %s side lost across "
	        "goshim_swtch\n", round, reg_name(code), side);
	fflush(stderr);
}

static ENDS_IN_GOGO void regs_other_fn(void *arg)
{
	(void)arg;
	for (int n = 0; n < REGS_ROUNDS; n++) {
		uintptr_t fp, pc;

		goshim_arch_saved_frame(&regs_main, &fp, &pc);
		regs_frame_ok[n] =
			fp == (regs_seed(n, 0) ^ goshim_test_reg_xor[FP_REG_XOR]) &&
			pc == (uintptr_t)goshim_test_regs_resume;
		regs_other_result[n] =
			goshim_test_regs_survive(&regs_other, &regs_main, regs_seed(n, 1));
		regs_other_done = n + 1;
	}
	goshim_gogo(&regs_main);
}

START_TEST(test_callee_saved_survive_swtch)
{
	regs_other_done = 0;
	memset(regs_other_result, -1, sizeof regs_other_result);
	memset(regs_frame_ok, 0, sizeof regs_frame_ok);
	regs_main.tls = 0;
	goshim_gostart_frame(&regs_other, stacks[0].top, regs_other_fn, NULL);
	regs_other.tls = 0;

	for (int n = 0; n < REGS_ROUNDS; n++) {
		int r = goshim_test_regs_survive(&regs_main, &regs_other, regs_seed(n, 0));
		if (r != 0) /* said now too: see regs_lost_now */
			regs_lost_now("switching-out", n, r);
		ck_assert_msg(r == 0, "round %d: %s of the switching-out side lost "
		              "across goshim_swtch", n, reg_name(r));
		ck_assert_msg(regs_frame_ok[n], "round %d: goshim_arch_saved_frame of "
		              "a suspended context is not its saved fp/pc", n);
	}
	/* The other side's last check runs when it is resumed once more. */
	goshim_swtch(&regs_main, &regs_other);
	ck_assert_int_eq(regs_other_done, REGS_ROUNDS);
	for (int n = 0; n < REGS_ROUNDS; n++)
		if (regs_other_result[n] != 0)
			regs_lost_now("resumed", n, regs_other_result[n]);
	for (int n = 0; n < REGS_ROUNDS; n++)
		ck_assert_msg(regs_other_result[n] == 0, "round %d: %s of the "
		              "resumed side lost across goshim_swtch", n,
		              reg_name(regs_other_result[n]));
}
END_TEST

/* ------------------------------------------------------------------------
 * (b) goshim_gogo into a fresh frame from goshim_gostart_frame: fn gets
 * arg intact, on a 16-byte aligned stack inside its own stack, with the
 * creator's FP control state, and a zero frame pointer above it; it can
 * switch back, and be resumed again. */
struct fresh_arg {
	uint64_t magic1;
	int payload[5];
	uint64_t magic2;
};

static struct gobuf fresh_main, fresh_tramp, fresh_ctx;
static struct {
	void *arg;
	uint64_t magic1, magic2;
	uintptr_t sp, frame, parent_fp, local;
	struct fpctl fpctl;
	int entered, resumed;
} fresh_seen;

static ENDS_IN_GOGO void fresh_fn(void *arg)
{
	volatile int local = 0;
	struct fresh_arg *a = arg;

	fresh_seen.fpctl = fpctl_get(); /* before any FP work */
	fresh_seen.entered++;
	fresh_seen.arg = arg;
	fresh_seen.magic1 = a->magic1;
	fresh_seen.magic2 = a->magic2;
	fresh_seen.sp = goshim_test_sp();
	fresh_seen.frame = (uintptr_t)__builtin_frame_address(0);
	/* The caller's frame pointer, as saved by our prologue: goshim_gostart
	 * must have made it 0 so frame-pointer walks stop. */
	fresh_seen.parent_fp = *(uintptr_t *)__builtin_frame_address(0);
	fresh_seen.local = (uintptr_t)&local;
	goshim_swtch(&fresh_ctx, &fresh_main);
	fresh_seen.resumed++;
	goshim_gogo(&fresh_main);
}

/* Runs on its own context so that main's side can be saved first: goshim_gogo
 * itself saves nothing. */
static ENDS_IN_GOGO void gogo_fn(void *arg)
{
	goshim_gogo(arg);
}

START_TEST(test_gogo_fresh_frame)
{
	static struct fresh_arg farg = {
		0xfeedfacecafebeefull, { 1, 2, 3, 4, 5 }, 0x0ddba11deadc0deull,
	};
	struct fpctl saved = fpctl_get();
	uintptr_t fp, pc;

	memset(&fresh_seen, 0, sizeof fresh_seen);
	/* A misaligned top: the frame must align itself. The creator's
	 * unusual rounding mode must be inherited by the new context. */
	fpctl_set(fpctl_unusual);
	goshim_gostart_frame(&fresh_ctx, stacks[1].top - 24, fresh_fn, &farg);
	fpctl_set(saved);
	fresh_ctx.tls = 0;

	goshim_arch_saved_frame(&fresh_ctx, &fp, &pc);
	ck_assert_msg(fp == 0, "a fresh frame's saved fp is %#lx, not 0",
	              (unsigned long)fp);
	ck_assert_msg(pc == (uintptr_t)goshim_gostart,
	              "a fresh frame does not resume in goshim_gostart");

	goshim_gostart_frame(&fresh_tramp, stacks[0].top, gogo_fn, &fresh_ctx);
	fresh_tramp.tls = 0;
	fresh_main.tls = 0;
	goshim_swtch(&fresh_main, &fresh_tramp);

	ck_assert_int_eq(fresh_seen.entered, 1);
	ck_assert_ptr_eq(fresh_seen.arg, &farg);
	ck_assert(fresh_seen.magic1 == farg.magic1);
	ck_assert(fresh_seen.magic2 == farg.magic2);
	ck_assert_msg(fresh_seen.sp % 16 == 0, "fn entered with sp %% 16 == %d",
	              (int)(fresh_seen.sp % 16));
	ck_assert_msg(fresh_seen.frame % 16 == 0, "fn's frame address is misaligned");
	ck_assert(on_stack(&stacks[1], fresh_seen.sp));
	ck_assert(on_stack(&stacks[1], fresh_seen.local));
	ck_assert_msg(fresh_seen.parent_fp == 0,
	              "goshim_gostart left frame pointer %#lx for fn's frame record",
	              (unsigned long)fresh_seen.parent_fp);
	ck_assert_msg(fpctl_eq(fresh_seen.fpctl, fpctl_unusual),
	              "the new context did not inherit its creator's FP control");
	ck_assert_msg(fpctl_eq(fpctl_get(), saved), "main's FP control changed");

	/* fresh_fn is now suspended in its goshim_swtch call. */
	goshim_arch_saved_frame(&fresh_ctx, &fp, &pc);
	ck_assert_msg(fp == fresh_seen.frame, "saved fp %#lx, fn's frame %#lx",
	              (unsigned long)fp, (unsigned long)fresh_seen.frame);
	ck_assert_msg(pc > (uintptr_t)fresh_fn && pc < (uintptr_t)fresh_fn + 4096,
	              "saved pc %#lx is not in fresh_fn", (unsigned long)pc);

	goshim_swtch(&fresh_main, &fresh_ctx);
	ck_assert_int_eq(fresh_seen.resumed, 1);
	ck_assert_int_eq(fresh_seen.entered, 1);
}
END_TEST

/* ------------------------------------------------------------------------
 * (c) goshim_mcall: fn runs on the g0 stack with arg intact, an aligned
 * stack and a zero frame pointer above it; goshim_gogo from there resumes
 * the caller as if goshim_mcall had returned. Run twice: with g0.tls = 0
 * and with g0.tls = the current base (the "already installed" path). */
struct mcall_arg {
	uint64_t magic;
	struct gobuf *resume;
};

static struct gobuf mcall_main, mcall_g0;
static struct {
	void *arg;
	uint64_t magic;
	uintptr_t local, sp, parent_fp, tls;
	int calls;
} mcall_seen;

static ENDS_IN_GOGO void mcall_fn(void *arg)
{
	volatile int local = 0;
	struct mcall_arg *a = arg;

	mcall_seen.calls++;
	mcall_seen.arg = arg;
	mcall_seen.magic = a->magic;
	mcall_seen.local = (uintptr_t)&local;
	mcall_seen.sp = goshim_test_sp();
	mcall_seen.parent_fp = *(uintptr_t *)__builtin_frame_address(0);
	mcall_seen.tls = goshim_arch_tls_base();
	goshim_gogo(a->resume);
}

START_TEST(test_mcall)
{
	struct mcall_arg marg = { 0x5eed5eed12345678ull, &mcall_main };
	uintptr_t base = goshim_arch_tls_base();

	for (int pass = 0; pass < 2; pass++) {
		volatile uint64_t canary = 0xa5a5a5a55a5a5a5aull ^ (uint64_t)pass;
		uintptr_t sp_before = goshim_test_sp();

		memset(&mcall_seen, 0, sizeof mcall_seen);
		mcall_main.tls = 0;
		mcall_g0.sp = stacks[2].top - (uintptr_t)pass * 4096;
		mcall_g0.tls = pass ? base : 0;
		goshim_mcall(&mcall_main, mcall_fn, &marg, &mcall_g0);

		ck_assert_int_eq(mcall_seen.calls, 1);
		ck_assert_ptr_eq(mcall_seen.arg, &marg);
		ck_assert(mcall_seen.magic == marg.magic);
		ck_assert_msg(on_stack(&stacks[2], mcall_seen.local) &&
		              mcall_seen.local < mcall_g0.sp,
		              "fn's local %#lx is not on the g0 stack",
		              (unsigned long)mcall_seen.local);
		ck_assert(on_stack(&stacks[2], mcall_seen.sp));
		ck_assert_msg(mcall_seen.sp % 16 == 0, "fn on g0 with sp %% 16 == %d",
		              (int)(mcall_seen.sp % 16));
		ck_assert_msg(mcall_seen.parent_fp == 0, "goshim_mcall left frame "
		              "pointer %#lx", (unsigned long)mcall_seen.parent_fp);
		ck_assert(mcall_seen.tls == base);
		ck_assert(goshim_arch_tls_base() == base);
		ck_assert(canary == (0xa5a5a5a55a5a5a5aull ^ (uint64_t)pass));
		ck_assert_msg(goshim_test_sp() == sp_before,
		              "the stack pointer moved across goshim_mcall");
	}
}
END_TEST

/* ------------------------------------------------------------------------
 * (d) goshim_systemstack runs fn(arg) on the given stack (deep enough to
 * use a good part of it) and returns to the caller's stack unchanged. The
 * frame record it leaves on the caller's stack links fn's frame chain back
 * there. */
static struct {
	void *arg;
	uintptr_t local, sp, parent_fp;
	int sum, calls;
} sys_seen;

static __attribute__((noinline)) int sys_recurse(int n)
{
	volatile char buf[512];
	buf[0] = (char)n;
	buf[sizeof buf - 1] = 1;
	return n ? sys_recurse(n - 1) + buf[0] + buf[sizeof buf - 1] - 1 : 0;
}

static __attribute__((noinline)) void sys_fn(void *arg)
{
	volatile int local = 0;

	sys_seen.calls++;
	sys_seen.arg = arg;
	sys_seen.local = (uintptr_t)&local;
	sys_seen.sp = goshim_test_sp();
	sys_seen.parent_fp = *(uintptr_t *)__builtin_frame_address(0);
	sys_seen.sum = sys_recurse(40); /* ~ 22 KiB of stack */
}

START_TEST(test_systemstack)
{
	volatile uint64_t canary = 0x0123456789abcdefull;
	int arg;
	uintptr_t sp_before = goshim_test_sp();
	struct fpctl fp_before = fpctl_get();

	memset(&sys_seen, 0, sizeof sys_seen);
	goshim_systemstack(sys_fn, &arg, stacks[2].top);

	ck_assert_int_eq(sys_seen.calls, 1);
	ck_assert_ptr_eq(sys_seen.arg, &arg);
	ck_assert(on_stack(&stacks[2], sys_seen.local));
	ck_assert(on_stack(&stacks[2], sys_seen.sp));
	ck_assert_msg(sys_seen.sp % 16 == 0, "fn on the system stack with sp %% 16 == %d",
	              (int)(sys_seen.sp % 16));
	ck_assert_int_eq(sys_seen.sum, 40 * 41 / 2);
	ck_assert_msg(sys_seen.parent_fp < sp_before && sys_seen.parent_fp >= sp_before - 256,
	              "fn's frame chain leads to %#lx, not to the caller's stack "
	              "(sp %#lx)", (unsigned long)sys_seen.parent_fp,
	              (unsigned long)sp_before);
	ck_assert_msg(goshim_test_sp() == sp_before,
	              "the stack pointer moved across goshim_systemstack");
	ck_assert(canary == 0x0123456789abcdefull);
	ck_assert(fpctl_eq(fpctl_get(), fp_before));
}
END_TEST

/* ------------------------------------------------------------------------
 * (e) The TLS-base switch. A context whose gobuf.tls is a fake thread
 * block runs with that base installed, and switching back with tls = the
 * original base restores it; libc's TLS (errno, stdio locks, __thread
 * variables) works afterwards.
 *
 * The fake block is a page-aligned page with an accessible page below it
 * (TLS variables of the main executable would be at negative offsets on
 * x86-64). On x86-64 its first word points to itself, as glibc's TCB
 * header does (%fs:0 is how goshim_arch_tls_base and switch.S read the
 * current base), and the rest of the header (stack guard, pointer guard)
 * is copied from the real one. A marker word further in proves that
 * thread-pointer-relative loads really go to the fake block.
 *
 * On x86-64 both ways of setting the FS base are run where the machine
 * has them: arch_prctl always, wrfsbase when the kernel enabled FSGSBASE. */
enum { TLS_MARKER_OFF = 0x200 };
static const uintptr_t TLS_MARKER = (uintptr_t)0x7e57ab1e5eed0001ull;

static struct gobuf tls_main, tls_ctx;
static volatile uintptr_t tls_seen_base, tls_seen_marker;
static __thread int tls_var = 42;

static FAKE_TLS_SAFE void tls_fn(void *arg)
{
	(void)arg;
	/* The thread pointer is the fake block: no libc, no errno, no
	 * canary, nothing that could go through TLS. Read and go back. */
	tls_seen_base = goshim_arch_tls_base();
	tls_seen_marker = fake_tls_word(TLS_MARKER_OFF);
	goshim_swtch(&tls_ctx, &tls_main);
}

START_TEST(test_tls_switch)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	uintptr_t orig = goshim_arch_tls_base();
	int *errno_addr = &errno;
	int *tls_var_addr = &tls_var;
	uint8_t saved_fsgsbase = goshim_have_fsgsbase;
	int npaths = 1;
	char buf[64];

#if defined(__x86_64__)
	if (getauxval(AT_HWCAP2) & 2)
		npaths = 2;
#endif
	ck_assert(orig != 0);
	for (int path = 0; path < npaths; path++) {
		char *map = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE,
		                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		uintptr_t *fake;

		ck_assert_ptr_ne(map, MAP_FAILED);
		fake = (uintptr_t *)(map + page);
		ck_assert((uintptr_t)fake % 4096 == 0);
#if defined(__x86_64__)
		memcpy(fake, (void *)orig, 64); /* tcbhead_t, up to the guards */
		fake[0] = (uintptr_t)fake;      /* tcb: %fs:0 */
		fake[2] = (uintptr_t)fake;      /* self */
		goshim_have_fsgsbase = (uint8_t)path;
#endif
		fake[TLS_MARKER_OFF / sizeof *fake] = TLS_MARKER;
		tls_seen_base = 0;
		tls_seen_marker = 0;

		goshim_gostart_frame(&tls_ctx, stacks[0].top, tls_fn, NULL);
		tls_ctx.tls = (uintptr_t)fake;
		tls_main.tls = orig;
		goshim_swtch(&tls_main, &tls_ctx);
		goshim_have_fsgsbase = saved_fsgsbase;

		ck_assert_msg(goshim_arch_tls_base() == orig,
		              "TLS base %#lx after switching back, not %#lx",
		              (unsigned long)goshim_arch_tls_base(), (unsigned long)orig);
		ck_assert_msg(tls_seen_base == (uintptr_t)fake,
		              "path %d: the context saw TLS base %#lx, not %p", path,
		              (unsigned long)tls_seen_base, (void *)fake);
		ck_assert_msg(tls_seen_marker == TLS_MARKER,
		              "path %d: a thread-pointer-relative load did not reach "
		              "the fake block", path);

		/* libc's TLS is the thread's own again. */
		ck_assert_ptr_eq(&errno, errno_addr);
		errno = ERANGE;
		ck_assert_int_eq(errno, ERANGE);
		errno = 0;
		ck_assert_ptr_eq(&tls_var, tls_var_addr);
		ck_assert_int_eq(tls_var, 42);
		ck_assert_int_eq(snprintf(buf, sizeof buf, "%s-%d", "tls", path), 5);
		ck_assert_str_eq(buf, path ? "tls-1" : "tls-0");
		FILE *f = fopen("/dev/null", "w");
		ck_assert_ptr_nonnull(f);
		ck_assert_int_gt(fprintf(f, "%d %s\n", 12345, buf), 0);
		ck_assert_int_eq(fclose(f), 0);
		ck_assert_int_eq(fflush(stdout), 0);
		ck_assert_int_eq(munmap(map, 2 * page), 0);
	}
}
END_TEST

/* ------------------------------------------------------------------------
 * (f) Ping-pong: 1,000,000 round trips between two contexts, with both
 * gobufs naming the current TLS base (the "already installed" path on
 * every switch). Each side counts in its own frame too, so a context
 * resumed with the wrong stack or registers shows up as a mismatch. */
enum { PINGPONG_ROUNDS = 1000000 };

static struct gobuf pp_main, pp_other;
static volatile long pp_main_count, pp_other_count, pp_other_bad;

static void pp_fn(void *arg)
{
	long mine = 0;

	(void)arg;
	for (;;) {
		mine++;
		pp_other_count++;
		if (mine != pp_other_count)
			pp_other_bad++;
		goshim_swtch(&pp_other, &pp_main);
	}
}

START_TEST(test_pingpong)
{
	uintptr_t base = goshim_arch_tls_base();
	struct timespec t0, t1;
	long mine = 0, bad = 0;

	pp_main_count = pp_other_count = pp_other_bad = 0;
	goshim_gostart_frame(&pp_other, stacks[1].top, pp_fn, NULL);
	pp_other.tls = base;
	pp_main.tls = base;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (long i = 0; i < PINGPONG_ROUNDS; i++) {
		mine++;
		pp_main_count++;
		goshim_swtch(&pp_main, &pp_other);
		if (mine != pp_other_count)
			bad++;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);

	ck_assert_int_eq(pp_main_count, PINGPONG_ROUNDS);
	ck_assert_int_eq(pp_other_count, PINGPONG_ROUNDS);
	ck_assert_int_eq(mine, PINGPONG_ROUNDS);
	ck_assert_int_eq(bad, 0);
	ck_assert_int_eq(pp_other_bad, 0);
	ck_assert(goshim_arch_tls_base() == base);

	double ns = (double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec);
	fprintf(stderr, "check_arch: %d round trips, %.1f ns per goshim_swtch\n",
	        PINGPONG_ROUNDS, ns / (2.0 * PINGPONG_ROUNDS));
}
END_TEST

static Suite *arch_suite(void)
{
	Suite *s = suite_create("arch");
	TCase *tc = tcase_create("switch");

	tcase_add_checked_fixture(tc, stacks_setup, stacks_teardown);
	tcase_set_timeout(tc, 120); /* the ping-pong runs under an emulator too */
	tcase_add_test(tc, test_callee_saved_survive_swtch);
	tcase_add_test(tc, test_gogo_fresh_frame);
	tcase_add_test(tc, test_mcall);
	tcase_add_test(tc, test_systemstack);
	tcase_add_test(tc, test_tls_switch);
	tcase_add_test(tc, test_pingpong);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr;
	int failed;

#ifdef STANDALONE_ARCH_TEST
	/* What the runtime does at start-up. */
	goshim_have_fsgsbase = (getauxval(AT_HWCAP2) & 2) != 0;
#endif
	sr = srunner_create(arch_suite());
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
