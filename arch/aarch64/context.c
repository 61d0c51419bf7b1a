/* AArch64: the first frame of a new context, laid out as switch.S loads it
 * (the layout is described at the top of arch/aarch64/switch.S). */
#include "runtime/arch.h"

__attribute__((visibility("hidden"))) void goshim_gostart(void);

/* Word indexes into a saved frame; must match switch.S. */
enum {
	FRAME_X29 = 0,
	FRAME_X30 = 1,
	FRAME_X19 = 2,
	FRAME_X20 = 3,
	FRAME_FPCR = 20,
	FRAME_WORDS = 22, /* 176 bytes, a multiple of 16 */
};

void goshim_gostart_frame(struct gobuf *buf, uintptr_t stack_top,
                          void (*fn)(void *), void *arg)
{
	/* switch.S pops the whole frame, so the first instruction of
	 * goshim_gostart runs with sp = the aligned top: 16-byte aligned, as
	 * AAPCS64 requires at every instruction, and nothing above it is used. */
	uintptr_t *sp = (uintptr_t *)(stack_top & ~(uintptr_t)15) - FRAME_WORDS;
	uint64_t fpcr;

	/* A new thread inherits its creator's floating-point environment. */
	__asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
	for (int i = 0; i < FRAME_WORDS; i++)
		sp[i] = 0; /* x21-x28 and d8-d15 start as zero */
	sp[FRAME_X29] = 0; /* ends frame-pointer walks */
	sp[FRAME_X30] = (uintptr_t)goshim_gostart;
	sp[FRAME_X19] = (uintptr_t)fn;
	sp[FRAME_X20] = (uintptr_t)arg;
	sp[FRAME_FPCR] = fpcr;
	buf->sp = (uintptr_t)sp;
}

uintptr_t goshim_arch_tls_base(void)
{
	uintptr_t tp;
	__asm__ volatile("mrs %0, tpidr_el0" : "=r"(tp));
	return tp;
}

void goshim_arch_saved_frame(const struct gobuf *buf, uintptr_t *fp, uintptr_t *pc)
{
	const uintptr_t *sp = (const uintptr_t *)buf->sp;
	*fp = sp[FRAME_X29];
	*pc = sp[FRAME_X30];
}

/* TPIDR_EL0 is always writable from user space: nothing to detect, and
 * the x86-64 flag (declared for every target in arch.h) stays 0. */
uint8_t goshim_have_fsgsbase;

void goshim_arch_init(void)
{
}
