/*
 * x86-64 context switch: the roles of Go's gogo, gosave, mcall and
 * systemstack (runtime/asm_amd64.s), for C goroutines.
 *
 * A saved context is the goroutine's own stack: the callee-saved integer
 * registers (rbp rbx r12-r15), then MXCSR and the x87 control word, are
 * pushed on it and struct gobuf keeps the stack pointer (offset 0) and the
 * TLS base to install (offset 8; 0 means "keep the current one").
 *
 * Layout of a saved stack, from gobuf.sp upward:
 *   [mxcsr:4 fpcw:4] r15 r14 r13 r12 rbx rbp return-pc
 *
 * Resuming ends with "pop %rcx; jmp *%rcx", not "ret": a ret into another
 * stack always misses the return-stack predictor (3 ns against 10 ns a
 * switch on these machines, notes/anchor-figures.md).
 *
 * The TLS base is switched in the same routine, after the stack: with
 * wrfsbase when the kernel enabled FSGSBASE (AT_HWCAP2 bit 1, recorded in
 * goshim_have_fsgsbase at start-up), else with arch_prctl(ARCH_SET_FS).
 * %fs:0 is the TCB's self pointer (glibc's tcbhead_t.tcb), so comparing it
 * skips the switch when the base does not change.
 */
#define ARCH_SET_FS 0x1002
#define SYS_arch_prctl 158

	.hidden goshim_have_fsgsbase
	.text

/* Common tail: %rsp is the saved stack of the context to resume, %rdi the
 * TLS base it wants (0: keep). */
	.p2align 4
	.type goshim_restore_tail, @function
goshim_restore_tail:
	testq %rdi, %rdi
	jz 2f
	cmpq %fs:0, %rdi
	je 2f
	cmpb $0, goshim_have_fsgsbase(%rip)
	je 1f
	wrfsbase %rdi
	jmp 2f
1:	movq %rdi, %rsi
	movl $ARCH_SET_FS, %edi
	movl $SYS_arch_prctl, %eax
	syscall
2:	ldmxcsr (%rsp)
	fldcw 4(%rsp)
	addq $8, %rsp
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %rbx
	popq %rbp
	popq %rcx
	jmp *%rcx
	.size goshim_restore_tail, .-goshim_restore_tail

#define SAVE_CONTEXT \
	pushq %rbp; pushq %rbx; pushq %r12; pushq %r13; pushq %r14; pushq %r15; \
	subq $8, %rsp; stmxcsr (%rsp); fnstcw 4(%rsp)

/* void goshim_swtch(struct gobuf *save, const struct gobuf *load)
 * gosave(save) + gogo(load): returns when someone resumes save. */
	.globl goshim_swtch
	.hidden goshim_swtch
	.type goshim_swtch, @function
	.p2align 4
goshim_swtch:
	SAVE_CONTEXT
	movq %rsp, 0(%rdi)
	movq 0(%rsi), %rsp
	movq 8(%rsi), %rdi
	jmp goshim_restore_tail
	.size goshim_swtch, .-goshim_swtch

/* void goshim_gogo(const struct gobuf *load): never returns. */
	.globl goshim_gogo
	.hidden goshim_gogo
	.type goshim_gogo, @function
	.p2align 4
goshim_gogo:
	movq 0(%rdi), %rsp
	movq 8(%rdi), %rdi
	jmp goshim_restore_tail
	.size goshim_gogo, .-goshim_gogo

/* void goshim_mcall(struct gobuf *save, void (*fn)(void *), void *arg,
 *                   const struct gobuf *g0)
 * Saves the caller's context in save, switches to the g0 stack and TLS
 * described by g0 and calls fn(arg) there; fn must not return (it resumes
 * some context with goshim_gogo). */
	.globl goshim_mcall
	.hidden goshim_mcall
	.type goshim_mcall, @function
	.p2align 4
goshim_mcall:
	SAVE_CONTEXT
	movq %rsp, 0(%rdi)
	movq %rsi, %r12
	movq %rdx, %r13
	movq 0(%rcx), %rsp
	movq 8(%rcx), %rdi
	xorl %ebp, %ebp
	testq %rdi, %rdi
	jz 2f
	cmpq %fs:0, %rdi
	je 2f
	cmpb $0, goshim_have_fsgsbase(%rip)
	je 1f
	wrfsbase %rdi
	jmp 2f
1:	movq %rdi, %rsi
	movl $ARCH_SET_FS, %edi
	movl $SYS_arch_prctl, %eax
	syscall
2:	movq %r13, %rdi
	call *%r12
	ud2
	.size goshim_mcall, .-goshim_mcall

/* void goshim_systemstack(void (*fn)(void *), void *arg, uintptr_t sp)
 * Runs fn(arg) on the stack whose top is sp (16-byte aligned) and returns
 * to the caller's stack. */
	.globl goshim_systemstack
	.hidden goshim_systemstack
	.type goshim_systemstack, @function
	.p2align 4
goshim_systemstack:
	.cfi_startproc
	pushq %rbp
	.cfi_def_cfa_offset 16
	.cfi_offset %rbp, -16
	movq %rsp, %rbp
	.cfi_def_cfa_register %rbp
	movq %rdx, %rsp
	movq %rdi, %rax
	movq %rsi, %rdi
	call *%rax
	movq %rbp, %rsp
	popq %rbp
	.cfi_def_cfa %rsp, 8
	ret
	.cfi_endproc
	.size goshim_systemstack, .-goshim_systemstack

/* First frame of every goroutine: goshim_gostart_frame put the entry
 * function in r12 and its argument in r13. The entry never returns. */
	.globl goshim_gostart
	.hidden goshim_gostart
	.type goshim_gostart, @function
	.p2align 4
goshim_gostart:
	.cfi_startproc
	.cfi_undefined %rip
	xorl %ebp, %ebp
	movq %r13, %rdi
	call *%r12
	ud2
	.cfi_endproc
	.size goshim_gostart, .-goshim_gostart

	.section .note.GNU-stack,"",@progbits
