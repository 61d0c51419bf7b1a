/*
 * The per-CPU floor (arch/<cpu>/): context switch and TLS-base switch.
 * Go's roles: goshim_gogo = gogo, goshim_swtch = gosave + gogo,
 * goshim_mcall = mcall, goshim_systemstack = systemstack.
 *
 * struct gobuf is read by the assembly: sp at offset 0, tls at offset 8.
 * Everything else of a suspended context lives on its own stack.
 */
#ifndef GOSHIM_RUNTIME_ARCH_H
#define GOSHIM_RUNTIME_ARCH_H

#include <stdint.h>
#include <stdbool.h>

struct gobuf {
	uintptr_t sp;  /* saved stack pointer; the saved registers are above it */
	uintptr_t tls; /* TLS base (FS base / TPIDR_EL0) to install; 0: keep */
};

_Static_assert(__builtin_offsetof(struct gobuf, sp) == 0, "gobuf.sp");
_Static_assert(__builtin_offsetof(struct gobuf, tls) == 8, "gobuf.tls");

/* Set by goshim_arch_init: the kernel lets user space write the FS base
 * directly (x86-64 AT_HWCAP2 bit 1). Read by switch.S. */
extern uint8_t goshim_have_fsgsbase;

/* Reads what the CPU and kernel offer (goshim_have_fsgsbase); schedinit
 * calls it before any switch, and so must a program that uses
 * goshim_swtch without the runtime (tests/bench/switch_floor). */
void goshim_arch_init(void);

void goshim_swtch(struct gobuf *save, const struct gobuf *load);
__attribute__((noreturn)) void goshim_gogo(const struct gobuf *load);
void goshim_mcall(struct gobuf *save, void (*fn)(void *), void *arg,
                  const struct gobuf *g0);
void goshim_systemstack(void (*fn)(void *), void *arg, uintptr_t sp);

/* Lays out the first frame of a context that will run fn(arg) on the stack
 * ending at stack_top; fn must never return. buf->tls is left as it is. */
void goshim_gostart_frame(struct gobuf *buf, uintptr_t stack_top,
                          void (*fn)(void *), void *arg);

/* The calling thread's TLS base (the thread pointer). */
uintptr_t goshim_arch_tls_base(void);

/* Where a suspended context's frame-pointer chain starts, for tracebacks:
 * its saved frame pointer and return address. */
void goshim_arch_saved_frame(const struct gobuf *buf, uintptr_t *fp, uintptr_t *pc);

#endif
