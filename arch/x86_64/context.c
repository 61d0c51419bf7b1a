/* x86-64: the first frame of a new context, laid out as switch.S pops it. */
#include <sys/auxv.h>

#include "runtime/arch.h"

uint8_t goshim_have_fsgsbase;

void goshim_arch_init(void)
{
	goshim_have_fsgsbase = (getauxval(AT_HWCAP2) & 2) != 0; /* HWCAP2_FSGSBASE */
}

void goshim_gostart(void);

void goshim_gostart_frame(struct gobuf *buf, uintptr_t stack_top,
                          void (*fn)(void *), void *arg)
{
	/* After the final "pop %rcx" the stack pointer must be 16-byte aligned,
	 * as at a call site, so that goshim_gostart's call is ABI-aligned. */
	uintptr_t *sp = (uintptr_t *)((stack_top & ~(uintptr_t)15) - 16);
	uint32_t mxcsr;
	uint16_t fpcw;

	/* A new thread inherits its creator's floating-point environment. */
	__asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
	__asm__ volatile("fnstcw %0" : "=m"(fpcw));
	*--sp = (uintptr_t)goshim_gostart;
	*--sp = 0;                  /* rbp: ends frame-pointer walks */
	*--sp = 0;                  /* rbx */
	*--sp = (uintptr_t)fn;      /* r12 */
	*--sp = (uintptr_t)arg;     /* r13 */
	*--sp = 0;                  /* r14 */
	*--sp = 0;                  /* r15 */
	*--sp = (uintptr_t)mxcsr | ((uintptr_t)fpcw << 32);
	buf->sp = (uintptr_t)sp;
}

uintptr_t goshim_arch_tls_base(void)
{
	uintptr_t tp;
	__asm__ volatile("movq %%fs:0, %0" : "=r"(tp));
	return tp;
}

void goshim_arch_saved_frame(const struct gobuf *buf, uintptr_t *fp, uintptr_t *pc)
{
	const uintptr_t *sp = (const uintptr_t *)buf->sp;
	*fp = sp[6]; /* above fpctl, r15, r14, r13, r12, rbx */
	*pc = sp[7];
}
