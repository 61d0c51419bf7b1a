/*
 * dlopen: a module that comes with static TLS (initial-exec, or given
 * static TLS by glibc) must find its TLS initialised in every thread, as
 * NPTL initialises it in every thread on its lists. The runtime does it
 * for the identities of pthread-goroutines and main (runtime/tls.c:
 * tls_dlopen_begin/end); this is the POSIX face.
 */
#include <dlfcn.h>

#include "interpose/interpose.h"

EXPORT void *goshim_dlopen(const char *file, int mode)
{
	if (!interposing() || !getg())
		return real.dlopen(file, mode);
	struct tls_dlopen d;
	interpose_enter();
	tls_dlopen_begin(&d);
	interpose_leave();
	void *h = real.dlopen(file, mode);
	int saved = errno;
	interpose_enter();
	tls_dlopen_end(&d);
	interpose_leave();
	errno = saved;
	return h;
}
INTERPOSE(dlopen, "GLIBC_2.34");
INTERPOSE_COMPAT(dlopen, V_BASE, base);
