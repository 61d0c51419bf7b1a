/* Thread lifecycle of an unmodified pthread program: create, join, detach,
 * exit with cleanup handlers and key destructors, once, the _np joins,
 * attributes (stack size, user stack, detach state, guard size), names,
 * deferred cancellation, yield. See legacy.h for the conventions. */
#include "legacy.h"

#include <limits.h>
#include <sched.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <sys/mman.h>

static void *return_arg(void *arg)
{
	return arg;
}

static void t_create_join(void)
{
	void *ret = run_in_thread(return_arg, (void *)(uintptr_t)0x1234);
	CHECK(ret == (void *)(uintptr_t)0x1234);
	printf("create/join: return value passed through\n");
}

/* ------------------------------------------------------------------------ */

#define NMANY 1000

static void t_many(void)
{
	static pthread_t t[NMANY];
	for (uintptr_t i = 0; i < NMANY; i++)
		CHECK0(pthread_create(&t[i], NULL, return_arg, (void *)i));
	for (uintptr_t i = 0; i < NMANY; i++) {
		void *ret;
		CHECK0(pthread_join(t[i], &ret));
		if (ret != (void *)i)
			FAIL("thread %lu returned %p", (unsigned long)i, ret);
	}
	printf("%d threads created and joined, each returned its index\n", NMANY);
}

/* ------------------------------------------------------------------------ */

struct detach_arg {
	struct gate gate;
	sem_t done;
	int self_detach;
	int self_detach_rc;
};

static void *detach_thread(void *p)
{
	struct detach_arg *a = p;
	if (a->self_detach)
		a->self_detach_rc = pthread_detach(pthread_self());
	gate_wait(&a->gate);
	sem_post(&a->done);
	return NULL;
}

static void t_detach(void)
{
	static struct detach_arg a;	/* outlives the detached threads */
	pthread_t t;

	gate_init(&a.gate);
	CHECK(sem_init(&a.done, 0, 0) == 0);
	a.self_detach = 0;
	CHECK0(pthread_create(&t, NULL, detach_thread, &a));
	gate_await_waiters(&a.gate, 1);
	EXPECT("pthread_detach of a running thread", pthread_detach(t), 0);
	EXPECT("pthread_detach again (still running)", pthread_detach(t), EINVAL);
	EXPECT("pthread_join of a detached running thread", pthread_join(t, NULL), EINVAL);
	gate_open(&a.gate);
	CHECK(sem_wait(&a.done) == 0);
	printf("detached thread ran to its end\n");

	gate_init(&a.gate);
	a.self_detach = 1;
	a.self_detach_rc = -1;
	CHECK0(pthread_create(&t, NULL, detach_thread, &a));
	gate_await_waiters(&a.gate, 1);
	EXPECT("pthread_detach(pthread_self())", a.self_detach_rc, 0);
	gate_open(&a.gate);
	CHECK(sem_wait(&a.done) == 0);
	printf("self-detached thread ran to its end\n");
}

/* ------------------------------------------------------------------------
 * pthread_exit and cleanup handlers. */

static char cleanup_log[64];
static int cleanup_n;

static void cleanup_record(void *name)
{
	cleanup_log[cleanup_n++] = *(const char *)name;
	printf("cleanup handler %s\n", (const char *)name);
}

__attribute__((noinline)) static void exit_level2(uintptr_t v)
{
	pthread_exit((void *)v);
}

__attribute__((noinline)) static void exit_level1(uintptr_t v)
{
	exit_level2(v + 7);
	__asm__ volatile("" ::: "memory");	/* not a tail call */
}

static void *exit_thread(void *arg)
{
	pthread_cleanup_push(cleanup_record, "A");
	pthread_cleanup_push(cleanup_record, "B");
	pthread_cleanup_push(cleanup_record, "X");
	pthread_cleanup_pop(0);	/* X: removed, not run */
	pthread_cleanup_push(cleanup_record, "C");
	pthread_cleanup_pop(1);	/* C: run now */
	pthread_cleanup_push(cleanup_record, "D");
	exit_level1(70);
	pthread_cleanup_pop(0);
	pthread_cleanup_pop(0);
	pthread_cleanup_pop(0);
	return NULL;
}

static void t_exit_cleanup(void)
{
	void *ret = run_in_thread(exit_thread, NULL);
	CHECK(ret == (void *)(uintptr_t)77);
	cleanup_log[cleanup_n] = 0;
	if (strcmp(cleanup_log, "CDBA") != 0)
		FAIL("cleanup handlers ran as %s, want CDBA", cleanup_log);
	printf("pthread_exit from a nested call: join got 77, handlers ran %s\n", cleanup_log);
}

/* ------------------------------------------------------------------------
 * Key destructors, after cleanup handlers. */

static pthread_key_t key_plain, key_null, key_twice, key_forever, key_deleted;
static int dtor_plain, dtor_null, dtor_twice, dtor_forever, dtor_deleted;
static int dtor_plain_saw_null, dtor_before_cleanup;
static int exit_cleanup_ran;
static struct gate key_gate;

static void d_plain(void *v)
{
	dtor_plain++;
	if (v != (void *)(uintptr_t)0x11)
		FAIL("destructor got %p, want 0x11", v);
	/* The value is set to NULL before the destructor is called. */
	if (pthread_getspecific(key_plain) == NULL)
		dtor_plain_saw_null = 1;
	if (!exit_cleanup_ran)
		dtor_before_cleanup = 1;
}

static void d_null(void *v)
{
	dtor_null++;
}

static void d_twice(void *v)
{
	dtor_twice++;
	if (v != (void *)&dtor_twice)
		FAIL("re-setting destructor got %p", v);
	if (dtor_twice < 3)
		CHECK0(pthread_setspecific(key_twice, &dtor_twice));
}

static void d_forever(void *v)
{
	dtor_forever++;
	if (dtor_forever > 1000)
		FAIL("a destructor that always re-sets its value ran 1000 times");
	CHECK0(pthread_setspecific(key_forever, &dtor_forever));
}

static void d_deleted(void *v)
{
	dtor_deleted++;
}

static void mark_cleanup(void *unused)
{
	exit_cleanup_ran = 1;
}

static void *key_thread(void *exit_via_pthread_exit)
{
	CHECK(pthread_getspecific(key_plain) == NULL);
	CHECK0(pthread_setspecific(key_plain, (void *)(uintptr_t)0x11));
	CHECK0(pthread_setspecific(key_null, NULL));
	CHECK0(pthread_setspecific(key_twice, &dtor_twice));
	CHECK0(pthread_setspecific(key_forever, &dtor_forever));
	CHECK0(pthread_setspecific(key_deleted, &dtor_deleted));
	CHECK(pthread_getspecific(key_plain) == (void *)(uintptr_t)0x11);
	gate_wait(&key_gate);	/* main deletes key_deleted meanwhile */
	pthread_cleanup_push(mark_cleanup, NULL);
	if (exit_via_pthread_exit)
		pthread_exit(NULL);
	pthread_cleanup_pop(0);
	return NULL;
}

static void run_key_thread(int via_exit)
{
	pthread_t t;

	dtor_plain = dtor_null = dtor_twice = dtor_forever = dtor_deleted = 0;
	dtor_plain_saw_null = dtor_before_cleanup = exit_cleanup_ran = 0;
	CHECK0(pthread_key_create(&key_plain, d_plain));
	CHECK0(pthread_key_create(&key_null, d_null));
	CHECK0(pthread_key_create(&key_twice, d_twice));
	CHECK0(pthread_key_create(&key_forever, d_forever));
	CHECK0(pthread_key_create(&key_deleted, d_deleted));
	gate_init(&key_gate);
	CHECK0(pthread_create(&t, NULL, key_thread, (void *)(uintptr_t)via_exit));
	gate_await_waiters(&key_gate, 1);
	CHECK0(pthread_key_delete(key_deleted));
	gate_open(&key_gate);
	CHECK0(pthread_join(t, NULL));

	const char *how = via_exit ? "pthread_exit" : "return";
	if (dtor_plain != 1)
		FAIL("%s: destructor ran %d times, want 1", how, dtor_plain);
	if (!dtor_plain_saw_null)
		FAIL("%s: the value was not NULL inside its destructor", how);
	if (via_exit && (!exit_cleanup_ran || dtor_before_cleanup))
		FAIL("%s: destructors did not run after the cleanup handlers", how);
	if (dtor_null != 0)
		FAIL("%s: destructor ran for a NULL value", how);
	if (dtor_twice != 3)
		FAIL("%s: destructor re-setting twice ran %d times, want 3", how, dtor_twice);
	if (dtor_forever < 1 || dtor_forever > PTHREAD_DESTRUCTOR_ITERATIONS)
		FAIL("%s: destructor re-setting always ran %d times, want 1..%d", how,
		     dtor_forever, PTHREAD_DESTRUCTOR_ITERATIONS);
	if (dtor_deleted != 0)
		FAIL("%s: destructor of a deleted key ran", how);
	printf("key destructors at %s: non-NULL value once (value NULL inside it)%s, "
	       "NULL value never, re-set twice -> 3 calls, always re-set -> at most "
	       "PTHREAD_DESTRUCTOR_ITERATIONS, deleted key never\n",
	       how, via_exit ? ", after cleanup handlers" : "");
	CHECK0(pthread_key_delete(key_plain));
	CHECK0(pthread_key_delete(key_null));
	CHECK0(pthread_key_delete(key_twice));
	CHECK0(pthread_key_delete(key_forever));
}

static void t_key_destructors(void)
{
	run_key_thread(1);
	run_key_thread(0);
}

/* ------------------------------------------------------------------------ */

static pthread_t self_seen;

static void *record_self(void *arg)
{
	self_seen = pthread_self();
	return NULL;
}

static void t_self_equal(void)
{
	pthread_t t;
	CHECK0(pthread_create(&t, NULL, record_self, NULL));
	CHECK0(pthread_join(t, NULL));
	CHECK(pthread_equal(t, self_seen));
	CHECK(!pthread_equal(pthread_self(), self_seen));
	CHECK(pthread_equal(pthread_self(), pthread_self()));
	printf("pthread_self in the thread equals the id from pthread_create, not main's\n");
}

/* ------------------------------------------------------------------------ */

#define NONCE 8
static pthread_once_t once = PTHREAD_ONCE_INIT;
static atomic_int once_runs, once_done, once_seen_early;
static struct gate once_gate;

static void once_init(void)
{
	atomic_fetch_add(&once_runs, 1);
	sleep_ms(20);	/* the others must wait for this to finish */
	atomic_store(&once_done, 1);
}

static void *once_thread(void *arg)
{
	gate_wait(&once_gate);
	CHECK0(pthread_once(&once, once_init));
	if (!atomic_load(&once_done))
		atomic_fetch_add(&once_seen_early, 1);
	return NULL;
}

static void t_once(void)
{
	pthread_t t[NONCE];
	gate_init(&once_gate);
	for (int i = 0; i < NONCE; i++)
		CHECK0(pthread_create(&t[i], NULL, once_thread, NULL));
	gate_await_waiters(&once_gate, NONCE);
	gate_open(&once_gate);
	for (int i = 0; i < NONCE; i++)
		CHECK0(pthread_join(t[i], NULL));
	CHECK0(pthread_once(&once, once_init));
	if (atomic_load(&once_runs) != 1)
		FAIL("pthread_once init ran %d times", atomic_load(&once_runs));
	if (atomic_load(&once_seen_early))
		FAIL("pthread_once returned before init finished");
	printf("pthread_once: init ran once for %d racing threads, none returned before it finished\n",
	       NONCE);
}

/* ------------------------------------------------------------------------
 * The _np joins. */

static void *gated_return(void *g)
{
	gate_wait(g);
	return (void *)(uintptr_t)42;
}

static void t_tryjoin(void)
{
	struct gate g;
	pthread_t t;
	void *ret = NULL;
	int rc;

	gate_init(&g);
	CHECK0(pthread_create(&t, NULL, gated_return, &g));
	gate_await_waiters(&g, 1);
	EXPECT("pthread_tryjoin_np while running", pthread_tryjoin_np(t, &ret), EBUSY);
	gate_open(&g);
	for (int i = 0; (rc = pthread_tryjoin_np(t, &ret)) == EBUSY; i++) {
		if (i == 20000)
			FAIL("pthread_tryjoin_np still EBUSY 20 s after the thread was released");
		sleep_ms(1);
	}
	EXPECT("pthread_tryjoin_np after the thread ended", rc, 0);
	CHECK(ret == (void *)(uintptr_t)42);
}

static void t_timedjoin(void)
{
	struct gate g;
	pthread_t t;
	void *ret = NULL;
	struct timespec dl;

	gate_init(&g);
	CHECK0(pthread_create(&t, NULL, gated_return, &g));
	gate_await_waiters(&g, 1);
	dl = ts_after(CLOCK_REALTIME, 30);
	EXPECT("pthread_timedjoin_np on a blocked thread", pthread_timedjoin_np(t, &ret, &dl),
	       ETIMEDOUT);
	CHECK_DEADLINE_PASSED(CLOCK_REALTIME, &dl);
	/* Not checked: tv_nsec out of range. glibc 2.36 does not validate it and
	 * retries the futex wait, which fails with EINVAL, forever (a busy loop
	 * until the thread ends). */
	gate_open(&g);
	dl = ts_after(CLOCK_REALTIME, 30000);
	EXPECT("pthread_timedjoin_np after release", pthread_timedjoin_np(t, &ret, &dl), 0);
	CHECK(ret == (void *)(uintptr_t)42);

	gate_init(&g);
	CHECK0(pthread_create(&t, NULL, gated_return, &g));
	gate_await_waiters(&g, 1);
	dl = ts_after(CLOCK_MONOTONIC, 30);
	EXPECT("pthread_clockjoin_np CLOCK_MONOTONIC on a blocked thread",
	       pthread_clockjoin_np(t, &ret, CLOCK_MONOTONIC, &dl), ETIMEDOUT);
	CHECK_DEADLINE_PASSED(CLOCK_MONOTONIC, &dl);
	gate_open(&g);
	dl = ts_after(CLOCK_MONOTONIC, 30000);
	EXPECT("pthread_clockjoin_np CLOCK_MONOTONIC after release",
	       pthread_clockjoin_np(t, &ret, CLOCK_MONOTONIC, &dl), 0);
	CHECK(ret == (void *)(uintptr_t)42);
}

/* ------------------------------------------------------------------------ */

static void *self_join(void *arg)
{
	return (void *)(intptr_t)pthread_join(pthread_self(), NULL);
}

static void t_join_errors(void)
{
	EXPECT("pthread_join(pthread_self()) in main", pthread_join(pthread_self(), NULL), EDEADLK);
	EXPECT("pthread_join(pthread_self()) in a thread",
	       (int)(intptr_t)run_in_thread(self_join, NULL), EDEADLK);
}

/* ------------------------------------------------------------------------
 * Attributes. */

#define ATTR_STACK (256 * 1024)

static void *big_frame(void *arg)
{
	volatile char buf[64 * 1024];
	unsigned sum = 0;
	pthread_attr_t a;
	size_t size;
	void *addr;

	for (size_t i = 0; i < sizeof buf; i++)
		buf[i] = (char)i;
	for (size_t i = 0; i < sizeof buf; i += 97)
		sum += (unsigned char)buf[i];

	CHECK0(pthread_getattr_np(pthread_self(), &a));
	CHECK0(pthread_attr_getstack(&a, &addr, &size));
	CHECK0(pthread_attr_destroy(&a));
	if (size < ATTR_STACK)
		FAIL("pthread_getattr_np: stack size %zu < requested %d", size, ATTR_STACK);
	if ((char *)&buf[0] < (char *)addr || (char *)&buf[sizeof buf - 1] >= (char *)addr + size)
		FAIL("pthread_getattr_np: the thread's locals are not inside the stack it reports");
	return (void *)(uintptr_t)sum;
}

static uintptr_t local_address;

static void *where_am_i(void *arg)
{
	volatile int local = 0;
	local_address = (uintptr_t)&local;
	return NULL;
}

static void t_attr(void)
{
	pthread_attr_t a;
	pthread_t t;
	size_t size;
	void *ret;
	int ds;

	CHECK0(pthread_attr_init(&a));
	EXPECT("pthread_attr_setstacksize below PTHREAD_STACK_MIN",
	       pthread_attr_setstacksize(&a, PTHREAD_STACK_MIN - 1), EINVAL);
	EXPECT("pthread_attr_setstacksize 256 KiB", pthread_attr_setstacksize(&a, ATTR_STACK), 0);
	CHECK0(pthread_attr_getstacksize(&a, &size));
	CHECK(size == ATTR_STACK);
	CHECK0(pthread_create(&t, &a, big_frame, NULL));
	CHECK0(pthread_join(t, &ret));
	CHECK0(pthread_attr_destroy(&a));
	unsigned sum = 0;
	for (size_t i = 0; i < 64 * 1024; i += 97)
		sum += (unsigned char)(char)i;
	CHECK((uintptr_t)ret == sum);
	printf("256 KiB stack: thread used a 64 KiB local array; pthread_getattr_np reports "
	       ">= 256 KiB around its locals\n");

	/* A stack of our own. */
	size_t ssize = 1024 * 1024;
	char *stack = mmap(NULL, ssize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(stack != MAP_FAILED);
	CHECK0(pthread_attr_init(&a));
	EXPECT("pthread_attr_setstack 1 MiB", pthread_attr_setstack(&a, stack, ssize), 0);
	CHECK0(pthread_create(&t, &a, where_am_i, NULL));
	CHECK0(pthread_join(t, NULL));
	CHECK0(pthread_attr_destroy(&a));
	if (local_address < (uintptr_t)stack || local_address >= (uintptr_t)stack + ssize)
		FAIL("a thread given its own stack ran on another one");
	printf("user stack: the thread's local lies inside the provided region\n");
	CHECK(munmap(stack, ssize) == 0);

	/* Created detached (its gate and semaphore outlive this function). */
	static struct detach_arg d;
	gate_init(&d.gate);
	CHECK(sem_init(&d.done, 0, 0) == 0);
	d.self_detach = 0;
	CHECK0(pthread_attr_init(&a));
	CHECK0(pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED));
	CHECK0(pthread_attr_getdetachstate(&a, &ds));
	CHECK(ds == PTHREAD_CREATE_DETACHED);
	EXPECT("pthread_attr_setdetachstate(42)", pthread_attr_setdetachstate(&a, 42), EINVAL);
	CHECK0(pthread_create(&t, &a, detach_thread, &d));
	CHECK0(pthread_attr_destroy(&a));
	gate_await_waiters(&d.gate, 1);
	EXPECT("pthread_join of a thread created detached", pthread_join(t, NULL), EINVAL);
	gate_open(&d.gate);
	CHECK(sem_wait(&d.done) == 0);

	/* Guard size. */
	size_t guard = 2 * (size_t)sysconf(_SC_PAGESIZE);
	CHECK0(pthread_attr_init(&a));
	EXPECT("pthread_attr_setguardsize 2 pages", pthread_attr_setguardsize(&a, guard), 0);
	CHECK0(pthread_attr_getguardsize(&a, &size));
	CHECK(size == guard);
	CHECK0(pthread_create(&t, &a, return_arg, (void *)(uintptr_t)5));
	CHECK0(pthread_join(t, &ret));
	CHECK(ret == (void *)(uintptr_t)5);
	CHECK0(pthread_attr_destroy(&a));
	printf("guard size attribute: thread created and joined\n");
}

/* ------------------------------------------------------------------------ */

struct name_arg {
	struct gate named_self;
	struct gate go;
	char inside[32];
	int inside_rc;
};

static void *name_thread(void *p)
{
	struct name_arg *a = p;
	CHECK0(pthread_setname_np(pthread_self(), "self-named"));
	gate_wait(&a->named_self);
	gate_wait(&a->go);
	a->inside_rc = pthread_getname_np(pthread_self(), a->inside, sizeof a->inside);
	return NULL;
}

static void t_names(void)
{
	struct name_arg a;
	pthread_t t;
	char buf[32], small[8];

	gate_init(&a.named_self);
	gate_init(&a.go);
	CHECK0(pthread_create(&t, NULL, name_thread, &a));
	gate_await_waiters(&a.named_self, 1);
	CHECK0(pthread_getname_np(t, buf, sizeof buf));
	printf("name set by the thread itself, read by main: %s\n", buf);
	gate_open(&a.named_self);
	gate_await_waiters(&a.go, 1);
	EXPECT("pthread_setname_np of another thread", pthread_setname_np(t, "legacy-worker"), 0);
	CHECK0(pthread_getname_np(t, buf, sizeof buf));
	printf("name set by main, read by main: %s\n", buf);
	EXPECT("pthread_setname_np with 16 characters", pthread_setname_np(t, "0123456789abcdef"),
	       ERANGE);
	EXPECT("pthread_getname_np into 8 bytes", pthread_getname_np(t, small, sizeof small), ERANGE);
	gate_open(&a.go);
	CHECK0(pthread_join(t, NULL));
	CHECK0(a.inside_rc);
	printf("name set by main, read by the thread: %s\n", a.inside);

	CHECK0(pthread_setname_np(pthread_self(), "legacy-main"));
	CHECK0(pthread_getname_np(pthread_self(), buf, sizeof buf));
	printf("main's own name: %s\n", buf);
}

/* ------------------------------------------------------------------------
 * Deferred cancellation. */

struct cancel_arg {
	struct gate ready;
	struct gate cancel_sent;
	int survived_disabled;
	int cleanup_ran;
	long loops;
};

static void cancel_cleanup(void *p)
{
	((struct cancel_arg *)p)->cleanup_ran = 1;
}

static void *cancel_thread(void *p)
{
	struct cancel_arg *a = p;
	int old;

	CHECK0(pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old));
	CHECK(old == PTHREAD_CANCEL_ENABLE);
	pthread_cleanup_push(cancel_cleanup, a);
	gate_wait(&a->ready);
	gate_wait(&a->cancel_sent);	/* blocks (a cancellation point) while disabled */
	pthread_testcancel();
	a->survived_disabled = 1;
	CHECK0(pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, &old));
	CHECK(old == PTHREAD_CANCEL_DISABLE);
	for (;;) {
		pthread_testcancel();
		if (++a->loops > 100000000L)
			FAIL("pthread_testcancel never acted on a pending cancel");
		sched_yield();
	}
	pthread_cleanup_pop(0);
	return NULL;
}

static void t_cancel(void)
{
	struct cancel_arg a = { .survived_disabled = 0 };
	pthread_t t;
	void *ret;

	gate_init(&a.ready);
	gate_init(&a.cancel_sent);
	CHECK0(pthread_create(&t, NULL, cancel_thread, &a));
	gate_await_waiters(&a.ready, 1);
	EXPECT("pthread_cancel of a thread with cancellation disabled", pthread_cancel(t), 0);
	gate_open(&a.ready);
	gate_open(&a.cancel_sent);
	CHECK0(pthread_join(t, &ret));
	if (ret != PTHREAD_CANCELED)
		FAIL("join of a cancelled thread returned %p, not PTHREAD_CANCELED", ret);
	CHECK(a.survived_disabled);
	CHECK(a.cleanup_ran);
	CHECK(a.loops == 0);
	printf("deferred cancel: ignored while disabled, acted on at the first pthread_testcancel "
	       "once enabled; join got PTHREAD_CANCELED, cleanup handler ran\n");
}

/* A thread that polls with calls that never block (pthread_mutex_trylock,
 * and pthread_cancel of a thread with cancellation disabled) does not
 * keep the others from running, however few CPUs: main takes a mutex
 * from a thread that holds it across a 1 ms sleep, round after round.
 * (Under libgoshim at GOMAXPROCS=1 the poller must give up its processor
 * at a safe point; it kept it for seconds per round, and alarm(60) ended
 * the test.) */
#define POLL_ROUNDS 100
static pthread_mutex_t poll_lock = PTHREAD_MUTEX_INITIALIZER;
static volatile int poll_held, poll_taken;
static int poll_stop;
static pthread_mutex_t poll_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t poll_cv = PTHREAD_COND_INITIALIZER;

static void *poll_holder(void *arg)
{
	(void)arg;
	for (int i = 1; i <= POLL_ROUNDS; i++) {
		CHECK0(pthread_mutex_lock(&poll_lock));
		poll_held = i;
		usleep(1000);
		CHECK0(pthread_mutex_unlock(&poll_lock));
		SPIN_UNTIL(poll_taken == i);
	}
	return NULL;
}

static void *poll_immune(void *arg)
{
	(void)arg;
	CHECK0(pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL));
	CHECK0(pthread_mutex_lock(&poll_mu));
	while (!poll_stop)
		CHECK0(pthread_cond_wait(&poll_cv, &poll_mu));
	CHECK0(pthread_mutex_unlock(&poll_mu));
	return NULL;
}

static void t_poll_fairness(void)
{
	pthread_t immune, holder;
	CHECK0(pthread_create(&immune, NULL, poll_immune, NULL));
	CHECK0(pthread_create(&holder, NULL, poll_holder, NULL));
	for (int i = 1; i <= POLL_ROUNDS; i++) {
		SPIN_UNTIL(poll_held == i);
		int err;
		while ((err = pthread_mutex_trylock(&poll_lock)) == EBUSY)
			CHECK0(pthread_cancel(immune));
		CHECK0(err);
		CHECK0(pthread_mutex_unlock(&poll_lock));
		poll_taken = i;
	}
	CHECK0(pthread_mutex_lock(&poll_mu));
	poll_stop = 1;
	CHECK0(pthread_cond_signal(&poll_cv));
	CHECK0(pthread_mutex_unlock(&poll_mu));
	CHECK0(pthread_join(holder, NULL));
	void *ret;
	CHECK0(pthread_join(immune, &ret));
	CHECK(ret == NULL);
	printf("polling with trylock and pthread_cancel, main took a mutex from a sleeping holder "
	       "%d times\n", POLL_ROUNDS);
}

/* ------------------------------------------------------------------------ */

static void *yield_thread(void *arg)
{
	return (void *)(intptr_t)sched_yield();
}

static void t_yield(void)
{
	EXPECT("sched_yield in main", sched_yield(), 0);
	EXPECT("sched_yield in a thread", (int)(intptr_t)run_in_thread(yield_thread, NULL), 0);
}

int main(void)
{
	legacy_start();
	t_create_join();
	t_many();
	t_detach();
	t_exit_cleanup();
	t_key_destructors();
	t_self_equal();
	t_once();
	t_tryjoin();
	t_timedjoin();
	t_join_errors();
	t_attr();
	t_names();
	t_cancel();
	t_poll_fairness();
	t_yield();
	printf("threads: all checks passed\n");
	return 0;
}
