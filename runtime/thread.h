/* pthread-goroutines (runtime/thread.c), shared with interpose/. */
#ifndef GOSHIM_RUNTIME_THREAD_H
#define GOSHIM_RUNTIME_THREAD_H

#include <pthread.h>

#include "runtime/runtime.h"

enum {
	THREAD_EXITED = 1,   /* result stored, joiners woken */
	THREAD_GONE = 2,     /* the goroutine no longer runs on the unit */
	THREAD_DETACHED = 4,
	THREAD_JOINED = 8,
};

#define THREAD_CPU_WORDS 16 /* 1,024 CPUs */

struct gthread {
	uint64_t magic;
	struct g *g;              /* owned for good */
	uintptr_t tp;             /* thread pointer of the identity == pthread_t */
	uintptr_t hi;             /* top of the unit, where the identity sits */
	struct stack mem;         /* the unit's mapping (size 0: user stack) */
	struct tls_stackinfo si;
	size_t stacksize;         /* as asked for */
	void *(*start)(void *);
	void *arg;
	void *result;
	bool exit_called;         /* pthread_exit stored result */
	_Atomic uint32_t state;   /* THREAD_* bits, only ever added */
	mutex_t lock;             /* guards joinq, joining */
	struct parkq joinq;
	bool joining;             /* a joiner waits */
	struct gthread *joining_target; /* whom this thread waits to join */
	struct gthread *next;     /* unit pool */
	char name[16];            /* pthread_setname_np */
	bool has_cpus;            /* interpose/thread.c: pthread_setaffinity_np's */
	uint64_t cpus[THREAD_CPU_WORDS]; /* mask, recorded */
	void **robust;            /* robust mutexes held (interpose/mutex.c) */
	int nrobust, robustcap;
};

/* What pthread_create's attributes ask for. */
struct thread_attr {
	size_t stacksize;         /* 0: the default */
	void *stackaddr;          /* lowest address of a user stack, or NULL */
	size_t guardsize;
	bool detached;
	bool has_sigmask;         /* pthread_attr_setsigmask_np: its mask, */
	uint64_t sigmask;         /* else the creator's */
	bool has_cpus;            /* an affinity to record: the attribute's, */
	uint64_t cpus[THREAD_CPU_WORDS]; /* else the creator's */
};

/* Set by interpose/: releases the robust mutexes an ending thread holds. */
extern void (*thread_robust_exit)(struct gthread *);

void thread_init(void);
size_t thread_default_stacksize(void);
struct gthread *thread_of(pthread_t t);
struct gthread *thread_self(void);
int thread_create(const struct thread_attr *a, void *(*start)(void *), void *arg,
                  pthread_t *out, uintptr_t pc);
int thread_join(struct gthread *th, int64_t deadline, bool try, bool cancelable, void **ret);
int thread_detach(struct gthread *th);
void thread_main_init(void);
struct gthread *thread_joinable_of(pthread_t t);
struct gthread *thread_of_g(struct g *gp);
struct gthread *thread_self_or_main(void);
void thread_main_ending(void);
__attribute__((noreturn)) void thread_main_exit(void *result);

#endif
