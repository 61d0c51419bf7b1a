/* main ends before the process does, five ways, or never (argv[1]):
 *   exit    main calls pthread_exit with a value
 *   cancel  another thread cancels main, parked in pthread_cond_wait
 *   syscall another thread cancels main, waiting in fcntl for a file lock
 *           (a cancellation point run as a system call)
 *   async   another thread cancels main, asynchronous type, in a busy loop
 *   detach  another thread detaches main, which then calls pthread_exit
 *   term    main calls pthread_exit, and SIGTERM comes later (see term())
 *   stuck   every thread waits for ever, and SIGTERM comes (see stuck())
 * Each time, as with NPTL: main's cleanup handlers run as its stack
 * unwinds, then its keys' destructors (not its thread_local destructors:
 * the thread that calls exit runs its own, and a thread that has joined
 * main is never left waiting for main to be counted gone, so the last
 * thread is not main; detached, either may be last, and main registers
 * none); a thread that joins main gets the value or PTHREAD_CANCELED; a
 * detached main cannot be joined; the process lives on until its last
 * thread returns, which ends it with status 0 (atexit handlers run then).
 * Before main ends, the joins of main from main itself and from another
 * thread give NPTL's errors. Under libgoshim main is a goroutine whose
 * stack is the process's own: its unwinding must end the goroutine, not
 * the kernel thread it happens to run on. See legacy.h for the
 * conventions. */
#include "legacy.h"

#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>

extern int __cxa_thread_atexit_impl(void (*)(void *), void *, void *);
extern void *__dso_handle;

static pthread_t main_thread;
static pthread_key_t key;
static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t never = PTHREAD_COND_INITIALIZER;
static volatile int main_waiting, main_ended, joiner_done, detached = 1, early_done;
static int key_value = 5;

static void cleanup(void *arg)
{
	printf("main's cleanup handler ran (%s)\n", (const char *)arg);
}

static void cond_cleanup(void *arg)
{
	(void)arg;
	printf("main's cond_wait cleanup: the mutex is %s\n",
	       pthread_mutex_unlock(&m) == 0 ? "held again, now released" : "not held");
}

static void key_destructor(void *v)
{
	printf("main's key destructor ran with %d\n", *(int *)v);
	main_ended = 1;
}

static void tls_destructor(void *v)
{
	(void)v;
	printf("FAIL: main's thread_local destructor ran\n");
}

static void at_exit(void)
{
	printf("atexit handler ran: the process ends after its last thread\n");
}

/* Joins main once it has ended; tells what it returned. */
static void *joiner(void *arg)
{
	(void)arg;
	void *r;
	CHECK0(pthread_join(main_thread, &r));
	if (r == PTHREAD_CANCELED)
		printf("joined main: PTHREAD_CANCELED\n");
	else
		printf("joined main: \"%s\"\n", (const char *)r);
	joiner_done = 1;
	return NULL;
}

/* While main runs: the errors of joins that cannot wait for it. main is
 * not joining this thread meanwhile (that would be EDEADLK). */
static void *early_joiner(void *arg)
{
	(void)arg;
	EXPECT("tryjoin of a running main", pthread_tryjoin_np(main_thread, NULL), EBUSY);
	struct timespec t = ts_after(CLOCK_REALTIME, 20);
	EXPECT("timedjoin of a running main", pthread_timedjoin_np(main_thread, NULL, &t), ETIMEDOUT);
	early_done = 1;
	return NULL;
}

static void *last(void *arg)
{
	(void)arg;
	SPIN_UNTIL(main_ended && joiner_done);
	printf("the last thread returns\n");
	return NULL;
}

static void *canceller(void *arg)
{
	(void)arg;
	SPIN_UNTIL(main_waiting);
	usleep(20000); /* main is in its loop, or parked in its wait */
	CHECK0(pthread_cancel(main_thread));
	return NULL;
}

static void *detacher(void *arg)
{
	(void)arg;
	EXPECT("pthread_detach(main)", pthread_detach(main_thread), 0);
	EXPECT("join of a detached main", pthread_join(main_thread, NULL), EINVAL);
	detached = 1;
	SPIN_UNTIL(main_ended);
	joiner_done = 1;
	return NULL;
}

/* term: what is left once main has ended is a thread that blocks one
 * unrelated signal and waits on a pipe for ever; tests/legacy/mainexit.sh
 * then sends SIGTERM from outside, whose default action ends the process
 * (exit status 143), as natively. */
static int term_pipe[2];
static volatile int term_blocked;

static void *term_waiter(void *arg)
{
	(void)arg;
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGUSR2);
	CHECK0(pthread_sigmask(SIG_BLOCK, &s, NULL));
	term_blocked = 1;
	char b;
	for (;;)
		if (read(term_pipe[0], &b, 1) == 0)
			break;
	return NULL;
}

static void term_key_destructor(void *v)
{
	(void)v;
	printf("main ended; one thread waits\n");
}

static void term(void)
{
	CHECK0(pipe(term_pipe));
	pthread_key_t k;
	CHECK0(pthread_key_create(&k, term_key_destructor));
	CHECK0(pthread_setspecific(k, &k));
	pthread_t t;
	CHECK0(pthread_create(&t, NULL, term_waiter, NULL));
	SPIN_UNTIL(term_blocked);
	pthread_exit(NULL);
}

/* stuck: every thread waits for ever on a condvar nobody signals, main
 * in pthread_join of it; tests/legacy/mainexit.sh then sends SIGTERM from
 * outside, whose default action ends the process (exit status 143).
 * Natively the process waits until then; under libgoshim it must too,
 * where Go would call it a deadlock. */
static pthread_mutex_t stuck_m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t stuck_c = PTHREAD_COND_INITIALIZER;

static void *stuck_waiter(void *arg)
{
	CHECK0(pthread_mutex_lock(&stuck_m));
	for (;;)
		CHECK0(pthread_cond_wait(&stuck_c, &stuck_m));
	return arg;
}

static void stuck(void)
{
	pthread_t t;
	CHECK0(pthread_create(&t, NULL, stuck_waiter, NULL));
	printf("every thread waits for ever\n");
	fflush(stdout);
	pthread_join(t, NULL);
	FAIL("the join of a thread that waits for ever returned");
}

int main(int argc, char **argv)
{
	legacy_start();
	const char *how = argc > 1 ? argv[1] : "exit";
	if (strcmp(how, "term") == 0)
		term();
	if (strcmp(how, "stuck") == 0)
		stuck();
	main_thread = pthread_self();
	CHECK0(atexit(at_exit));
	CHECK0(pthread_key_create(&key, key_destructor));
	CHECK0(pthread_setspecific(key, &key_value));
	bool detach = strcmp(how, "detach") == 0;
	if (!detach)
		CHECK0(__cxa_thread_atexit_impl(tls_destructor, NULL, &__dso_handle));
	EXPECT("main joins itself", pthread_join(pthread_self(), NULL), EDEADLK);
	pthread_t t;
	CHECK0(pthread_create(&t, NULL, early_joiner, NULL));
	SPIN_UNTIL(early_done);
	CHECK0(pthread_join(t, NULL));
	CHECK0(pthread_create(&t, NULL, last, NULL));
	CHECK0(pthread_detach(t));
	if (detach) {
		detached = 0;
		CHECK0(pthread_create(&t, NULL, detacher, NULL));
	} else {
		CHECK0(pthread_create(&t, NULL, joiner, NULL));
	}
	CHECK0(pthread_detach(t));

	pthread_cleanup_push(cleanup, (void *)how);
	if (strcmp(how, "exit") == 0 || detach) {
		SPIN_UNTIL(detached);
		pthread_exit("main's result");
	} else if (strcmp(how, "cancel") == 0) {
		CHECK0(pthread_create(&t, NULL, canceller, NULL));
		CHECK0(pthread_detach(t));
		CHECK0(pthread_mutex_lock(&m));
		pthread_cleanup_push(cond_cleanup, NULL);
		main_waiting = 1;
		for (;;)
			pthread_cond_wait(&never, &m);
		pthread_cleanup_pop(0);
	} else if (strcmp(how, "syscall") == 0) {
		/* A cancellation point that cannot park: a wait for a file
		 * lock that another open file description of the file holds
		 * for good. */
		char path[] = "/tmp/goshim-mainexit-XXXXXX", again[64];
		int holder = mkstemp(path);
		CHECK(holder >= 0);
		snprintf(again, sizeof again, "/proc/self/fd/%d", holder);
		int fd = open(again, O_RDWR);
		CHECK(fd >= 0);
		CHECK(unlink(path) == 0);
		struct flock fl;
		memset(&fl, 0, sizeof fl);
		fl.l_type = F_WRLCK;
		fl.l_whence = SEEK_SET;
		CHECK(fcntl(holder, F_OFD_SETLK, &fl) == 0);
		CHECK0(pthread_create(&t, NULL, canceller, NULL));
		CHECK0(pthread_detach(t));
		main_waiting = 1;
		fcntl(fd, F_OFD_SETLKW, &fl);
		FAIL("fcntl returned in main");
	} else if (strcmp(how, "async") == 0) {
		CHECK0(pthread_setcanceltype(PTHREAD_CANCEL_ASYNCHRONOUS, NULL));
		CHECK0(pthread_create(&t, NULL, canceller, NULL));
		CHECK0(pthread_detach(t));
		main_waiting = 1;
		for (volatile unsigned long spin = 0;; spin++)
			;
	}
	pthread_cleanup_pop(0);
	FAIL("unknown way for main to end: %s", how);
}
