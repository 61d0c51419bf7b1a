/*
 * The goroutine part of the API face (goshim.h): go_spawn, go() through
 * libffi, and the runtime package's functions.
 *
 * Every entry point brackets its work with runtime_enter/runtime_leave:
 * the caller's P is its own only inside (see runtime/proc.c). A thread the
 * runtime does not know is adopted first (needm).
 */
#include <errno.h>
#include <ffi.h>
#include <stdlib.h>
#include <string.h>

#include "goshim.h"
#include "lib/api.h"

__attribute__((constructor)) static void goshim_init(void)
{
	schedinit();
}

static int spawn(void (*fn)(void *), void *arg, uintptr_t pc)
{
	int err;
	api_enter();
	newm_sysmon();
	newproc(fn, arg, pc, &err);
	api_leave();
	return err;
}

GOSHIM_API int go_spawn(void (*fn)(void *), void *arg)
{
	if (!fn)
		return EINVAL;
	return spawn(fn, arg, (uintptr_t)__builtin_return_address(0));
}

/* go(): the call is described once with libffi; the block holds the cif,
 * the argument types, value pointers and the copied values. */
struct ffi_call_block {
	ffi_cif cif;
	void (*fn)(void);
	size_t nargs;
	ffi_type *types[16];
	void *values[16];
	go_arg args[16];
};

static ffi_type *ffi_type_of(go_argtype t)
{
	switch (t) {
	case GO_ARG_BOOL: return &ffi_type_uint8;
	case GO_ARG_CHAR: return (char)-1 < 0 ? &ffi_type_sint8 : &ffi_type_uint8;
	case GO_ARG_SCHAR: return &ffi_type_sint8;
	case GO_ARG_UCHAR: return &ffi_type_uint8;
	case GO_ARG_SHORT: return &ffi_type_sshort;
	case GO_ARG_USHORT: return &ffi_type_ushort;
	case GO_ARG_INT: return &ffi_type_sint;
	case GO_ARG_UINT: return &ffi_type_uint;
	case GO_ARG_LONG: return &ffi_type_slong;
	case GO_ARG_ULONG: return &ffi_type_ulong;
	case GO_ARG_LLONG: return &ffi_type_sint64;
	case GO_ARG_ULLONG: return &ffi_type_uint64;
	case GO_ARG_FLOAT: return &ffi_type_float;
	case GO_ARG_DOUBLE: return &ffi_type_double;
	case GO_ARG_PTR: return &ffi_type_pointer;
	}
	return NULL;
}

/* Converts the widened value in a go_arg to its own type in place, so
 * libffi reads the right bytes. */
_Static_assert(sizeof(long long) == 8, "go_arg holds 64-bit values");

static void *narrow(go_arg *a)
{
	void *v = &a->v;
	switch (a->type) {
	case GO_ARG_BOOL: *(uint8_t *)v = (uint8_t)(a->v.ll != 0); break;
	case GO_ARG_CHAR: case GO_ARG_SCHAR: *(int8_t *)v = (int8_t)a->v.ll; break;
	case GO_ARG_UCHAR: *(uint8_t *)v = (uint8_t)a->v.ull; break;
	case GO_ARG_SHORT: *(short *)v = (short)a->v.ll; break;
	case GO_ARG_USHORT: *(unsigned short *)v = (unsigned short)a->v.ull; break;
	case GO_ARG_INT: *(int *)v = (int)a->v.ll; break;
	case GO_ARG_UINT: *(unsigned *)v = (unsigned)a->v.ull; break;
	case GO_ARG_LONG: case GO_ARG_LLONG: break;
	case GO_ARG_ULONG: case GO_ARG_ULLONG: break;
	case GO_ARG_FLOAT: case GO_ARG_DOUBLE: case GO_ARG_PTR: break;
	}
	return v;
}

static void ffi_trampoline(void *arg)
{
	struct ffi_call_block *b = arg;
	ffi_call(&b->cif, b->fn, NULL, b->nargs ? b->values : NULL);
	free(b);
}

GOSHIM_API int go_spawn_ffi(void (*fn)(void), size_t nargs, const go_arg *args)
{
	if (!fn || nargs > 16)
		return EINVAL;
	struct ffi_call_block *b = malloc(sizeof *b);
	if (!b)
		return ENOMEM;
	b->fn = fn;
	b->nargs = nargs;
	for (size_t i = 0; i < nargs; i++) {
		b->args[i] = args[i];
		b->types[i] = ffi_type_of(args[i].type);
		if (!b->types[i]) {
			free(b);
			return EINVAL;
		}
		b->values[i] = narrow(&b->args[i]);
	}
	if (ffi_prep_cif(&b->cif, FFI_DEFAULT_ABI, (unsigned)nargs, &ffi_type_void,
	                 b->types) != FFI_OK) {
		free(b);
		return EINVAL;
	}
	int err = spawn(ffi_trampoline, b, (uintptr_t)fn);
	if (err)
		free(b);
	return err;
}

GOSHIM_API void go_yield(void)
{
	api_enter();
	gosched();
	api_leave();
}

GOSHIM_API void go_exit(void)
{
	api_enter();
	goexit1();
}

GOSHIM_API int64_t go_self(void)
{
	struct g *gp = getg();
	if (unlikely(!gp)) {
		gp = api_enter();
		api_leave();
	}
	return gp->goid;
}

GOSHIM_API int go_count(void)
{
	if (unlikely(!getg())) {
		api_enter();
		api_leave();
	}
	return gcount();
}

GOSHIM_API int go_maxprocs(int n)
{
	api_enter();
	int old = atomic_load(&gomaxprocs);
	if (n >= 1)
		old = procresize_set(n);
	api_leave();
	return old;
}

GOSHIM_API void go_lock_thread(void)
{
	api_enter();
	lockOSThread();
	api_leave();
}

GOSHIM_API void go_unlock_thread(void)
{
	api_enter();
	unlockOSThread();
	api_leave();
}

GOSHIM_API void go_set_fatal_handler(void (*fn)(const char *msg))
{
	__atomic_store_n(&fatal_handler, fn, __ATOMIC_RELEASE);
}
