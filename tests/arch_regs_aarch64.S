/*
 * Test helpers for tests/check_arch.c, AArch64 (AAPCS64).
 *
 * int goshim_test_regs_survive(struct gobuf *save, const struct gobuf *load,
 *                              uint64_t seed)
 *   Puts a pattern derived from seed in every callee-saved register
 *   (x19-x29 and d8-d15: seed XOR goshim_test_reg_xor[i]) and in FPCR (a
 *   non-default rounding mode plus FZ or DN, chosen by seed & 1), calls
 *   goshim_swtch(save, load), and once resumed checks each register in
 *   turn. Returns 0, or the first one lost:
 *     1-10 x19-x28   11 x29   12-19 d8-d15   20 FPCR
 *   The other side of the switch runs the same routine with a seed of the
 *   other parity, so before it switches back every one of these registers
 *   holds a different value: a register goshim_swtch forgot to save or
 *   restore comes back wrong instead of by luck.
 *   The caller's own callee-saved registers and FPCR are saved in the
 *   helper's frame first and restored before it returns.
 *
 *   Frame (176 bytes), from sp upward:
 *     0 caller's x29, x30   16-88 caller's x19-x28   96-152 caller's d8-d15
 *     160 caller's FPCR     168 seed
 *
 * goshim_test_regs_resume: the address just after that call, i.e. the
 *   saved x30 of a context suspended in the helper (checked through
 *   goshim_arch_saved_frame, whose saved fp is then the x29 pattern).
 *
 * uintptr_t goshim_test_sp(void): the caller's sp at the call; the
 *   architecture faults on a misaligned sp only when it is used for a
 *   memory access, so this is how a test sees the value itself.
 */

#if defined(__ARM_FEATURE_BTI_DEFAULT) && __ARM_FEATURE_BTI_DEFAULT
#define BTI_C hint 34
#else
#define BTI_C
#endif

/* FPCR patterns: RMode (bits 23:22) other than round-to-nearest, plus one
 * more control bit. 0: round-toward-zero + FZ (bit 24); 1: round-up + DN
 * (bit 25). No trap-enable bits: they may be RAZ/WI. */
#define FPCR_PAT0 0x01c00000
#define FPCR_PAT1 0x02400000

	.section .rodata
	.p2align 3
	.globl goshim_test_reg_xor
	.hidden goshim_test_reg_xor
	.type goshim_test_reg_xor, %object
goshim_test_reg_xor: /* x19-x29, then d8-d15 */
	.quad 0x9e3779b97f4a7c15, 0xc2b2ae3d27d4eb4f, 0x165667b19e3779f9
	.quad 0xd6e8feb86659fd93, 0xa0761d6478bd642f, 0xe7037ed1a0b428db
	.quad 0x8ebc6af09c88c6e3, 0x589965cc75374cc3, 0x1d8e4e27c47d124f
	.quad 0x5851f42d4c957f2d, 0x14057b7ef767814f
	.quad 0x3ff3b5a7c1d2e9f0, 0x400921fb54442d18, 0xc05fe3b1a2c4d6e8
	.quad 0x7ff4000000000123, 0x0000000000badf00, 0x8000000000000001
	.quad 0x3c6a5f0e9b2d4c81, 0xbfe62e42fefa39ef
	.size goshim_test_reg_xor, .-goshim_test_reg_xor
fpcr_patterns:
	.quad FPCR_PAT0, FPCR_PAT1

	.text
	.globl goshim_test_regs_survive
	.hidden goshim_test_regs_survive
	.globl goshim_test_regs_resume
	.hidden goshim_test_regs_resume
	.type goshim_test_regs_survive, %function
	.p2align 4
goshim_test_regs_survive:
	BTI_C
	stp x29, x30, [sp, #-176]!
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
	stp x9, x2, [sp, #160]

	/* Patterns. x0 and x1 (save, load) are left for the call. */
	adrp x9, goshim_test_reg_xor
	add x9, x9, :lo12:goshim_test_reg_xor
	.macro LOADX r1, r2, off
	ldp \r1, \r2, [x9, #\off]
	eor \r1, \r1, x2
	eor \r2, \r2, x2
	.endm
	.macro LOADD d1, d2, off
	ldp x10, x11, [x9, #\off]
	eor x10, x10, x2
	eor x11, x11, x2
	fmov \d1, x10
	fmov \d2, x11
	.endm
	LOADX x19, x20, 0
	LOADX x21, x22, 16
	LOADX x23, x24, 32
	LOADX x25, x26, 48
	LOADX x27, x28, 64
	ldr x29, [x9, #80]
	eor x29, x29, x2
	LOADD d8, d9, 88
	LOADD d10, d11, 104
	LOADD d12, d13, 120
	LOADD d14, d15, 136
	adrp x11, fpcr_patterns
	add x11, x11, :lo12:fpcr_patterns
	and x10, x2, #1
	ldr x10, [x11, x10, lsl #3]
	msr fpcr, x10

	bl goshim_swtch
goshim_test_regs_resume:

	/* Everything but the callee-saved registers may have been changed by
	 * the call: reload the seed from the frame. */
	ldr x2, [sp, #168]
	adrp x9, goshim_test_reg_xor
	add x9, x9, :lo12:goshim_test_reg_xor
	.macro CHECKX reg, off, code
	mov w0, #\code
	ldr x10, [x9, #\off]
	eor x10, x10, x2
	cmp \reg, x10
	b.ne 9f
	.endm
	.macro CHECKD reg, off, code
	mov w0, #\code
	ldr x10, [x9, #\off]
	eor x10, x10, x2
	fmov x11, \reg
	cmp x11, x10
	b.ne 9f
	.endm
	CHECKX x19, 0, 1
	CHECKX x20, 8, 2
	CHECKX x21, 16, 3
	CHECKX x22, 24, 4
	CHECKX x23, 32, 5
	CHECKX x24, 40, 6
	CHECKX x25, 48, 7
	CHECKX x26, 56, 8
	CHECKX x27, 64, 9
	CHECKX x28, 72, 10
	CHECKX x29, 80, 11
	CHECKD d8, 88, 12
	CHECKD d9, 96, 13
	CHECKD d10, 104, 14
	CHECKD d11, 112, 15
	CHECKD d12, 120, 16
	CHECKD d13, 128, 17
	CHECKD d14, 136, 18
	CHECKD d15, 144, 19
	mov w0, #20
	adrp x11, fpcr_patterns
	add x11, x11, :lo12:fpcr_patterns
	and x10, x2, #1
	ldr x10, [x11, x10, lsl #3]
	mrs x12, fpcr
	cmp x12, x10
	b.ne 9f
	mov w0, #0

9:	ldr x9, [sp, #160]
	msr fpcr, x9
	ldp d8, d9, [sp, #96]
	ldp d10, d11, [sp, #112]
	ldp d12, d13, [sp, #128]
	ldp d14, d15, [sp, #144]
	ldp x19, x20, [sp, #16]
	ldp x21, x22, [sp, #32]
	ldp x23, x24, [sp, #48]
	ldp x25, x26, [sp, #64]
	ldp x27, x28, [sp, #80]
	ldp x29, x30, [sp], #176
	ret
	.size goshim_test_regs_survive, .-goshim_test_regs_survive

	.globl goshim_test_sp
	.hidden goshim_test_sp
	.type goshim_test_sp, %function
	.p2align 4
goshim_test_sp:
	BTI_C
	mov x0, sp
	ret
	.size goshim_test_sp, .-goshim_test_sp

#if defined(__ARM_FEATURE_BTI_DEFAULT) && __ARM_FEATURE_BTI_DEFAULT
	.pushsection .note.gnu.property, "a"
	.p2align 3
	.long 4, 16, 5 /* n_namesz, n_descsz, NT_GNU_PROPERTY_TYPE_0 */
	.asciz "GNU"
	.long 0xc0000000, 4, 1, 0 /* FEATURE_1_AND: BTI */
	.popsection
#endif

	.section .note.GNU-stack,"",%progbits
