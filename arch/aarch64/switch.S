/*
 * AArch64 context switch: the roles of Go's gogo, gosave, mcall and
 * systemstack (runtime/asm_arm64.s), for C goroutines. The C interface is
 * runtime/arch.h, the same as arch/x86_64/switch.S.
 *
 * A saved context is the goroutine's own stack: everything AAPCS64 makes
 * callee-saved is stored in one 176-byte frame on it, and struct gobuf keeps
 * the stack pointer (offset 0) and the TLS base to install (offset 8; 0
 * means "keep the current one").
 *
 * Layout of a saved frame, from gobuf.sp upward (byte offsets):
 *     0  x29 (fp)   8  x30 (lr: where the context resumes)
 *    16  x19       24  x20
 *    32  x21       40  x22
 *    48  x23       56  x24
 *    64  x25       72  x26
 *    80  x27       88  x28
 *    96  d8       104  d9
 *   112  d10      120  d11
 *   128  d12      136  d13
 *   144  d14      152  d15
 *   160  FPCR     168  (padding, keeps the frame a multiple of 16)
 * x29/x30 sit at the bottom, as an ordinary prologue's frame record does,
 * so goshim_arch_saved_frame reads them at sp[0] and sp[1], and
 * arch/aarch64/context.c builds first frames in exactly this shape.
 *
 * Invariants:
 *  - sp is 16-byte aligned at all times (the architecture checks it on
 *    every sp-based access), so gobuf.sp of a saved context is too, and a
 *    resumed context gets back exactly the sp it had at its call.
 *  - Only the low 64 bits of v8-v15 (d8-d15) are callee-saved by AAPCS64;
 *    the rest of the vector state, FPSR (status flags) and x18 are
 *    caller-saved on Linux, so nothing else needs to survive a call.
 *  - FPCR (rounding mode, flush-to-zero, default-NaN) is preserved across
 *    calls by AAPCS64, and a goroutine may change it (fesetround), so it
 *    belongs to the context like d8-d15. Writing FPCR can serialise the
 *    pipeline on some cores, and contexts nearly always share it, so
 *    restoring it is skipped when it is unchanged.
 *  - The TLS base is switched after the stack, by msr tpidr_el0 (no
 *    syscall on this architecture), and only when the wanted base is
 *    nonzero and differs from the current one.
 *  - AAPCS64 on Linux has no red zone: every store goes above sp, so the
 *    frame is allocated (pre-indexed stp) before it is written, and a
 *    signal arriving at any instruction finds the saved words safe.
 *
 * Resuming: by default with "br x30", not "ret". A ret predicts its target
 * from the return-address stack, whose top is the call site of the
 * goshim_swtch/goshim_gogo just made by the context going out; the context
 * coming in resumes at its own, different call site, so a ret would miss
 * nearly every time (the reason arch/x86_64/switch.S ends with jmp, not
 * ret). A br is predicted by the indirect-branch predictor, which learns
 * the recurring patterns of a scheduler. The exception is a build with
 * branch target identification (-mbranch-protection=bti or standard,
 * __ARM_FEATURE_BTI_DEFAULT): on BTI-guarded pages a br may only land on a
 * "bti j" landing pad, and a return site after a bl is not one, so there
 * the resume must be "ret x30", which BTI does not check; such a build
 * also gets "bti c" landing pads on the entry points and the GNU property
 * note that keeps the linked object BTI-enabled. Return-address signing
 * (pac-ret) is not used on the saved x30: the first frame is laid out by C
 * (context.c), which cannot sign it.
 */

#if defined(__ARM_FEATURE_BTI_DEFAULT) && __ARM_FEATURE_BTI_DEFAULT
#define BTI_C hint 34 /* bti c: entry point reached by blr */
#define RESUME ret x30
#else
#define BTI_C
#define RESUME br x30
#endif

#define FRAME 176 /* bytes of a saved context, see the layout above */

	.text

/* Stores the callee-saved state in a new frame below sp and leaves sp
 * pointing at it; x9 is the only other register used. */
	.macro SAVE_CONTEXT
	stp x29, x30, [sp, #-FRAME]!
	stp x19, x20, [sp, #16]
	stp x21, x22, [sp, #32]
	stp x23, x24, [sp, #48]
	stp x25, x26, [sp, #64]
	stp x27, x28, [sp, #80]
	stp d8, d9, [sp, #96]
	stp d10, d11, [sp, #112]
	stp d12, d13, [sp, #128]
	stp d14, d15, [sp, #144]
	mrs x9, fpcr
	str x9, [sp, #160]
	.endm

/* Installs the TLS base in \base unless it is 0 or already current;
 * \tmp is clobbered. */
	.macro SET_TLS base, tmp
	cbz \base, 1f
	mrs \tmp, tpidr_el0
	cmp \tmp, \base
	b.eq 1f
	msr tpidr_el0, \base
1:
	.endm

/* Common tail: sp is the saved frame of the context to resume, x0 the TLS
 * base it wants (0: keep). Reached only by direct branches. */
	.p2align 4
	.type goshim_restore_tail, %function
goshim_restore_tail:
	SET_TLS x0, x9
	ldr x10, [sp, #160]
	mrs x11, fpcr
	cmp x10, x11
	b.eq 2f
	msr fpcr, x10
2:	ldp d8, d9, [sp, #96]
	ldp d10, d11, [sp, #112]
	ldp d12, d13, [sp, #128]
	ldp d14, d15, [sp, #144]
	ldp x19, x20, [sp, #16]
	ldp x21, x22, [sp, #32]
	ldp x23, x24, [sp, #48]
	ldp x25, x26, [sp, #64]
	ldp x27, x28, [sp, #80]
	ldp x29, x30, [sp], #FRAME
	RESUME
	.size goshim_restore_tail, .-goshim_restore_tail

/* void goshim_swtch(struct gobuf *save, const struct gobuf *load)
 * gosave(save) + gogo(load): returns when someone resumes save. */
	.globl goshim_swtch
	.hidden goshim_swtch
	.type goshim_swtch, %function
	.p2align 4
goshim_swtch:
	BTI_C
	SAVE_CONTEXT
	mov x9, sp
	str x9, [x0]
	ldp x9, x0, [x1] /* load->sp, load->tls */
	mov sp, x9
	b goshim_restore_tail
	.size goshim_swtch, .-goshim_swtch

/* void goshim_gogo(const struct gobuf *load): never returns. */
	.globl goshim_gogo
	.hidden goshim_gogo
	.type goshim_gogo, %function
	.p2align 4
goshim_gogo:
	BTI_C
	ldp x9, x0, [x0] /* Rt2 == Rn is well defined without writeback */
	mov sp, x9
	b goshim_restore_tail
	.size goshim_gogo, .-goshim_gogo

/* void goshim_mcall(struct gobuf *save, void (*fn)(void *), void *arg,
 *                   const struct gobuf *g0)
 * Saves the caller's context in save, switches to the g0 stack and TLS
 * described by g0 and calls fn(arg) there; fn must not return (it resumes
 * some context with goshim_gogo). x1-x3 survive SAVE_CONTEXT (it only uses
 * x9) and SET_TLS (no call), so no callee-saved register is needed. */
	.globl goshim_mcall
	.hidden goshim_mcall
	.type goshim_mcall, %function
	.p2align 4
goshim_mcall:
	BTI_C
	SAVE_CONTEXT
	mov x9, sp
	str x9, [x0]
	ldp x9, x10, [x3]
	mov sp, x9
	SET_TLS x10, x11
	mov x29, xzr /* fn's frame record ends frame-pointer walks here */
	mov x0, x2
	blr x1
	udf #0 /* fn returned: there is no frame to return to */
	.size goshim_mcall, .-goshim_mcall

/* void goshim_systemstack(void (*fn)(void *), void *arg, uintptr_t sp)
 * Runs fn(arg) on the stack whose top is sp (16-byte aligned) and returns
 * to the caller's stack. The frame record stays on the caller's stack and
 * x29 points at it, so a frame-pointer walk from fn continues into the
 * caller, and the CFI lets unwinders do the same. */
	.globl goshim_systemstack
	.hidden goshim_systemstack
	.type goshim_systemstack, %function
	.p2align 4
goshim_systemstack:
	.cfi_startproc
	BTI_C
	stp x29, x30, [sp, #-16]!
	.cfi_def_cfa_offset 16
	.cfi_offset x29, -16
	.cfi_offset x30, -8
	mov x29, sp
	.cfi_def_cfa_register x29
	mov sp, x2
	mov x9, x0
	mov x0, x1
	blr x9
	mov sp, x29
	.cfi_def_cfa_register sp
	ldp x29, x30, [sp], #16
	.cfi_def_cfa_offset 0
	.cfi_restore x29
	.cfi_restore x30
	ret
	.cfi_endproc
	.size goshim_systemstack, .-goshim_systemstack

/* First frame of every goroutine: goshim_gostart_frame put the entry
 * function in x19 and its argument in x20, and x29 = 0 in the frame. It is
 * entered by RESUME, never called, so it needs no landing pad (a br lands
 * here only in builds without BTI). The entry never returns; the CFI marks
 * this frame as the outermost for unwinders. */
	.globl goshim_gostart
	.hidden goshim_gostart
	.type goshim_gostart, %function
	.p2align 4
goshim_gostart:
	.cfi_startproc
	.cfi_undefined x30
	mov x29, xzr
	mov x0, x20
	blr x19
	udf #0
	.cfi_endproc
	.size goshim_gostart, .-goshim_gostart

#if defined(__ARM_FEATURE_BTI_DEFAULT) && __ARM_FEATURE_BTI_DEFAULT
/* GNU_PROPERTY_AARCH64_FEATURE_1_AND = BTI: without it the linker would
 * drop BTI protection from the whole binary because of this one object. */
	.pushsection .note.gnu.property, "a"
	.p2align 3
	.long 4          /* n_namesz */
	.long 16         /* n_descsz */
	.long 5          /* NT_GNU_PROPERTY_TYPE_0 */
	.asciz "GNU"
	.long 0xc0000000 /* GNU_PROPERTY_AARCH64_FEATURE_1_AND */
	.long 4          /* pr_datasz */
	.long 1          /* GNU_PROPERTY_AARCH64_FEATURE_1_BTI */
	.long 0          /* pad to 8 */
	.popsection
#endif

	.section .note.GNU-stack,"",%progbits
