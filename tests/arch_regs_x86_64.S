/*
 * Test helpers for tests/check_arch.c, x86-64 (System V ABI).
 *
 * int goshim_test_regs_survive(struct gobuf *save, const struct gobuf *load,
 *                              uint64_t seed)
 *   Puts a pattern derived from seed in every callee-saved register (rbx
 *   rbp r12-r15: seed XOR goshim_test_reg_xor[i]) and in the FP controls
 *   (MXCSR and the x87 control word, both non-default, chosen by seed & 1),
 *   calls goshim_swtch(save, load), and once resumed checks each register
 *   in turn. Returns 0, or the first one lost:
 *     1 rbx  2 rbp  3 r12  4 r13  5 r14  6 r15  7 MXCSR  8 x87 control word
 *   The other side of the switch runs the same routine with a seed of the
 *   other parity, so before it switches back every one of these registers
 *   holds a different value: a register goshim_swtch forgot to save or
 *   restore comes back wrong instead of by luck.
 *   The caller's own callee-saved registers and FP controls are saved in
 *   the helper's frame first and restored before it returns.
 *
 *   Frame, from %rsp upward after the prologue:
 *     0 caller's MXCSR   4 caller's x87 CW   8 seed   16 scratch
 *     24 r15 r14 r13 r12 rbx rbp, return address
 *   %rsp is 16-byte aligned at the call to goshim_swtch, as at any call.
 *
 * goshim_test_regs_resume: the address just after that call, i.e. the
 *   saved return pc of a context suspended in the helper (checked through
 *   goshim_arch_saved_frame, whose saved fp is then the rbp pattern).
 *
 * uintptr_t goshim_test_sp(void): the caller's %rsp at the call, which the
 *   ABI requires to be 16-byte aligned; used to prove a context was entered
 *   with an aligned stack.
 */

/* The two MXCSR patterns: all exceptions masked, no flags set, and a
 * rounding mode other than the default round-to-nearest (0x1f80):
 * round-down + flush-to-zero, and round-toward-zero. */
#define MXCSR_PAT0 0xbf80
#define MXCSR_PAT1 0x7f80
/* The two x87 control words: all exceptions masked, precision and rounding
 * both differing from the default 0x037f (64-bit mantissa, nearest):
 * double precision + round-up, and single precision + round-down. */
#define FPCW_PAT0 0x0a7f
#define FPCW_PAT1 0x047f
/* Bits of the control word compared after the switch: the exception masks,
 * precision and rounding control (bit 6 and bits 12-15 are reserved). */
#define FPCW_MASK 0x0f3f

	.section .rodata
	.p2align 3
	.globl goshim_test_reg_xor
	.hidden goshim_test_reg_xor
	.type goshim_test_reg_xor, @object
goshim_test_reg_xor: /* rbx rbp r12 r13 r14 r15 */
	.quad 0x9e3779b97f4a7c15
	.quad 0xc2b2ae3d27d4eb4f
	.quad 0x165667b19e3779f9
	.quad 0xd6e8feb86659fd93
	.quad 0xa0761d6478bd642f
	.quad 0xe7037ed1a0b428db
	.size goshim_test_reg_xor, .-goshim_test_reg_xor

	.p2align 2
fpctl_patterns: /* MXCSR[2] at 0, x87 CW[2] at 8 */
	.long MXCSR_PAT0, MXCSR_PAT1
	.short FPCW_PAT0, FPCW_PAT1

	.text
	.globl goshim_test_regs_survive
	.hidden goshim_test_regs_survive
	.globl goshim_test_regs_resume
	.hidden goshim_test_regs_resume
	.type goshim_test_regs_survive, @function
	.p2align 4
goshim_test_regs_survive:
	pushq %rbp
	pushq %rbx
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	subq $24, %rsp
	stmxcsr 0(%rsp)
	fnstcw 4(%rsp)
	movq %rdx, 8(%rsp)

	/* Patterns. %rdi and %rsi (save, load) are left for the call. */
	movl %edx, %eax
	andl $1, %eax
	leaq fpctl_patterns(%rip), %rcx
	ldmxcsr (%rcx,%rax,4)
	fldcw 8(%rcx,%rax,2)
	leaq goshim_test_reg_xor(%rip), %rcx
	movq 0(%rcx), %rbx
	xorq %rdx, %rbx
	movq 8(%rcx), %rbp
	xorq %rdx, %rbp
	movq 16(%rcx), %r12
	xorq %rdx, %r12
	movq 24(%rcx), %r13
	xorq %rdx, %r13
	movq 32(%rcx), %r14
	xorq %rdx, %r14
	movq 40(%rcx), %r15
	xorq %rdx, %r15

	call goshim_swtch
goshim_test_regs_resume:

	/* Everything but the callee-saved registers may have been changed by
	 * the call: reload the seed from the frame. */
	movq 8(%rsp), %rdx
	leaq goshim_test_reg_xor(%rip), %rcx
	.macro CHECK reg, off, code
	movl $\code, %eax
	movq \off(%rcx), %rsi
	xorq %rdx, %rsi
	cmpq %rsi, \reg
	jne 9f
	.endm
	CHECK %rbx, 0, 1
	CHECK %rbp, 8, 2
	CHECK %r12, 16, 3
	CHECK %r13, 24, 4
	CHECK %r14, 32, 5
	CHECK %r15, 40, 6

	movl %edx, %edi
	andl $1, %edi
	leaq fpctl_patterns(%rip), %r8
	movl $7, %eax
	stmxcsr 16(%rsp)
	movl 16(%rsp), %esi
	cmpl (%r8,%rdi,4), %esi
	jne 9f
	movl $8, %eax
	fnstcw 16(%rsp)
	movzwl 16(%rsp), %esi
	andl $FPCW_MASK, %esi
	movzwl 8(%r8,%rdi,2), %r9d
	andl $FPCW_MASK, %r9d
	cmpl %r9d, %esi
	jne 9f
	xorl %eax, %eax

9:	ldmxcsr 0(%rsp)
	fldcw 4(%rsp)
	addq $24, %rsp
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %rbx
	popq %rbp
	ret
	.size goshim_test_regs_survive, .-goshim_test_regs_survive

	.globl goshim_test_sp
	.hidden goshim_test_sp
	.type goshim_test_sp, @function
	.p2align 4
goshim_test_sp:
	leaq 8(%rsp), %rax /* above our return address: the caller's %rsp */
	ret
	.size goshim_test_sp, .-goshim_test_sp

	.section .note.GNU-stack,"",@progbits
