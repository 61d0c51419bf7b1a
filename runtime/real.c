/*
 * The libc functions the runtime itself needs, resolved once past any
 * interposition (design: runtime/ never calls an interposed symbol).
 * Thread creation goes to glibc's own pthread_create; output goes through
 * raw write(2) syscalls so that a fatal error can be printed from any
 * state, signal handlers included.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "runtime/runtime.h"

typedef int (*pthread_create_fn)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
static pthread_create_fn real_pthread_create_p;

int real_pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
	pthread_create_fn f = __atomic_load_n(&real_pthread_create_p, __ATOMIC_ACQUIRE);
	if (!f) {
		/* The default version of the next definition: glibc's newest, or
		 * a sanitizer's interceptor (unversioned), which must see every
		 * thread. */
		f = (pthread_create_fn)dlsym(RTLD_NEXT, "pthread_create");
		if (!f)
			f = pthread_create;
		__atomic_store_n(&real_pthread_create_p, f, __ATOMIC_RELEASE);
	}
	return f(t, attr, fn, arg);
}

/* The calling thread's stack [lo, hi), from glibc (adopted threads run
 * their goroutine on it). false if unknown. */
bool real_thread_stack(uintptr_t *lo, uintptr_t *hi)
{
	typedef int (*getattr_fn)(pthread_t, pthread_attr_t *);
	static getattr_fn f;
	getattr_fn fn = __atomic_load_n(&f, __ATOMIC_ACQUIRE);
	if (!fn) {
		fn = (getattr_fn)dlsym(RTLD_NEXT, "pthread_getattr_np");
		if (!fn)
			fn = pthread_getattr_np;
		__atomic_store_n(&f, fn, __ATOMIC_RELEASE);
	}
	pthread_attr_t attr;
	if (fn(pthread_self(), &attr) != 0)
		return false;
	void *addr;
	size_t size;
	int err = pthread_attr_getstack(&attr, &addr, &size);
	pthread_attr_destroy(&attr);
	if (err)
		return false;
	*lo = (uintptr_t)addr;
	*hi = (uintptr_t)addr + size;
	return true;
}

ssize_t raw_write(int fd, const void *buf, size_t n)
{
	return syscall(SYS_write, fd, buf, n);
}

void raw_write_all(int fd, const char *s)
{
	size_t n = strlen(s);
	while (n > 0) {
		ssize_t w = raw_write(fd, s, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		s += w;
		n -= (size_t)w;
	}
}
