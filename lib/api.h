/*
 * What every API entry point (every lib/ file) shares: entering and leaving the
 * runtime. User code runs with its P in _Psyscall (foreign code, see
 * runtime/proc.c); api_enter takes the P back (exitsyscall) and api_leave
 * hands it out again (entersyscall). A thread the runtime does not know is
 * adopted first (needm).
 */
#ifndef GOSHIM_LIB_API_H
#define GOSHIM_LIB_API_H

#include "goshim.h"
#include "runtime/runtime.h"

static inline struct g *api_enter(void)
{
	struct g *gp = getg();
	if (unlikely(!gp))
		gp = needm();
	else if (unlikely(gp == gp->m->g0))
		throw("goshim API called from the scheduler's own stack");
	runtime_enter();
	return gp;
}

static inline void api_leave(void)
{
	runtime_leave();
}

#endif
