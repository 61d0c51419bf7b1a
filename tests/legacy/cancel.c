/* Deferred cancellation of threads blocked in the waits that are
 * cancellation points: pthread_cond_wait (the cleanup handler runs with the
 * mutex held again), sem_wait, pthread_join; and a thread with cancellation
 * disabled is not cancelled by its wait. Asynchronous cancellation of a
 * thread in a loop that calls nothing, of one asleep in nanosleep, and of
 * one that had cancellation disabled and enables it again; and a
 * cancellation that reaches its target after it moved on cancels nobody
 * else. Deferred cancellation of threads in system calls that are
 * cancellation points and cannot park (fcntl F_OFD_SETLKW on a lock that
 * another open file description holds until the thread has ended, pause):
 * the call ends at once, and a cancel that came before the call acts as
 * it begins. (Not waitpid: forking a threaded program trips qemu-user's
 * assertions in the aarch64 run.) See legacy.h for the conventions. */
#include <semaphore.h>
#include <fcntl.h>

#include "legacy.h"

static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t c = PTHREAD_COND_INITIALIZER;
static sem_t s;
static int cleanups, trylock_in_handler = -1;
static struct gate blocked = GATE_INIT;

static void cleanup(void *arg)
{
	(void)arg;
	cleanups++;
	/* The cancelled waiter holds the mutex again: trylock says EBUSY. */
	trylock_in_handler = pthread_mutex_trylock(&m);
	CHECK0(pthread_mutex_unlock(&m));
}

static void *cond_waiter(void *arg)
{
	(void)arg;
	CHECK0(pthread_mutex_lock(&m));
	pthread_cleanup_push(cleanup, NULL);
	for (;;)
		pthread_cond_wait(&c, &m);
	pthread_cleanup_pop(0);
	return NULL;
}

static void *sem_waiter(void *arg)
{
	(void)arg;
	sem_wait(&s);
	return (void *)1;
}

static void *joiner(void *arg)
{
	pthread_join(*(pthread_t *)arg, NULL);
	return (void *)1;
}

static void *uncancellable(void *arg)
{
	int old;
	(void)arg;
	CHECK0(pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old));
	gate_wait(&blocked);
	while (sem_wait(&s) != 0)
		;
	return (void *)5;
}

/* ------------------------------------------------------------------------
 * Asynchronous cancellation. The threads signal readiness through atomics
 * (no pthread call, which an asynchronous cancel may not interrupt). */

static volatile long spins;
static _Atomic int async_cleanups, async_ready, reenable;

static void async_cleanup(void *arg)
{
	(void)arg;
	async_cleanups++;
}

/* Spins in a loop that calls nothing: only an asynchronous cancel ends it. */
static void *spinner(void *arg)
{
	(void)arg;
	pthread_cleanup_push(async_cleanup, NULL);
	CHECK0(pthread_setcanceltype(PTHREAD_CANCEL_ASYNCHRONOUS, NULL));
	async_ready++;
	for (;;)
		spins++;
	pthread_cleanup_pop(0);
	return NULL;
}

static void *async_sleeper(void *arg)
{
	(void)arg;
	pthread_cleanup_push(async_cleanup, NULL);
	CHECK0(pthread_setcanceltype(PTHREAD_CANCEL_ASYNCHRONOUS, NULL));
	async_ready++;
	struct timespec ts = { 30, 0 };
	nanosleep(&ts, NULL);
	pthread_cleanup_pop(0);
	return (void *)1;
}

/* Asynchronous, but disabled when cancelled: cancelled once it enables. */
static void *async_disabled(void *arg)
{
	(void)arg;
	pthread_cleanup_push(async_cleanup, NULL);
	CHECK0(pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL));
	CHECK0(pthread_setcanceltype(PTHREAD_CANCEL_ASYNCHRONOUS, NULL));
	async_ready++;
	while (!reenable)
		spins++;
	CHECK0(pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL));
	for (;;)
		spins++;
	pthread_cleanup_pop(0);
	return NULL;
}

/* Deferred, busy with condvar hand-offs to a partner (they move between
 * kernel threads when preloaded), while asynchronous spinners around them
 * are cancelled: a cancel that reaches a kernel thread after its target
 * left must not cancel a bystander. */
static pthread_mutex_t by_m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t by_c = PTHREAD_COND_INITIALIZER;
static int by_turn, by_stop;

static void *bystander(void *arg)
{
	int me = (int)(intptr_t)arg;
	CHECK0(pthread_mutex_lock(&by_m));
	while (!by_stop) {
		while (by_turn != me && !by_stop)
			CHECK0(pthread_cond_wait(&by_c, &by_m));
		by_turn = !me;
		CHECK0(pthread_cond_broadcast(&by_c));
	}
	CHECK0(pthread_mutex_unlock(&by_m));
	return (void *)7;
}

static void cancel_and_join(pthread_t t)
{
	void *ret;
	CHECK0(pthread_cancel(t));
	CHECK0(pthread_join(t, &ret));
	CHECK(ret == PTHREAD_CANCELED);
}

static _Atomic int in_syscall;
static char lock_path[] = "/tmp/goshim-cancel-XXXXXX";
static int holder_fd;

static struct flock whole_file(short type)
{
	struct flock fl;
	memset(&fl, 0, sizeof fl);
	fl.l_type = type;
	fl.l_whence = SEEK_SET;
	return fl;
}

/* The lock may be this description's by the time the cancel acts: the
 * close lets it go. The handler then waits for a mutex that the
 * canceller holds a while, as a cleanup handler may. */
static pthread_mutex_t cleanup_m = PTHREAD_MUTEX_INITIALIZER;

static void close_and_count(void *fd)
{
	close(*(int *)fd);
	CHECK0(pthread_mutex_lock(&cleanup_m));
	async_cleanups++;
	CHECK0(pthread_mutex_unlock(&cleanup_m));
}

/* A thread waiting for the lock in fcntl. With a non-NULL arg it first
 * computes until the cancel has been sent, so that the cancellation
 * point acts as the call begins. */
static _Atomic int cancel_sent;

static void *lock_waiter(void *late)
{
	int fd = open(lock_path, O_RDWR);
	CHECK(fd >= 0);
	pthread_cleanup_push(close_and_count, &fd);
	in_syscall = 1;
	while (late && !cancel_sent)
		; /* no cancellation point here */
	struct flock fl = whole_file(F_WRLCK);
	fcntl(fd, F_OFD_SETLKW, &fl); /* blocks: holder_fd's description has it */
	pthread_cleanup_pop(0);
	return (void *)1;
}

/* One round: lock_waiter(late) is cancelled, with cleanup_m held for
 * 20 ms from then on, and ends cancelled with its cleanup run. The lock
 * stays held until the thread has ended: the cancel must end the call
 * (a hang here is the failure). */
static void lock_round(void *late)
{
	async_cleanups = 0;
	in_syscall = 0;
	cancel_sent = 0;
	holder_fd = open(lock_path, O_RDWR);
	CHECK(holder_fd >= 0);
	struct flock fl = whole_file(F_WRLCK);
	CHECK(fcntl(holder_fd, F_OFD_SETLK, &fl) == 0);
	pthread_t t;
	CHECK0(pthread_create(&t, NULL, lock_waiter, late));
	SPIN_UNTIL(in_syscall);
	if (!late)
		sleep_ms(20); /* in fcntl by now, most likely */
	CHECK0(pthread_mutex_lock(&cleanup_m));
	CHECK0(pthread_cancel(t));
	cancel_sent = 1;
	sleep_ms(20);
	CHECK0(pthread_mutex_unlock(&cleanup_m));
	void *ret;
	CHECK0(pthread_join(t, &ret));
	CHECK(ret == PTHREAD_CANCELED);
	CHECK(close(holder_fd) == 0);
	CHECK(async_cleanups == 1);
}

static void *pauser(void *arg)
{
	(void)arg;
	pthread_cleanup_push(async_cleanup, NULL);
	in_syscall = 1;
	for (;;)
		pause();
	pthread_cleanup_pop(0);
	return (void *)1;
}

static void t_syscall_cancel(void)
{
	pthread_t t;
	int tmp = mkstemp(lock_path);
	CHECK(tmp >= 0);
	CHECK(close(tmp) == 0);
	for (int round = 0; round < 4; round++)
		lock_round(NULL);
	printf("deferred: a thread waiting for a lock in fcntl cancelled in the call, cleanup ran\n");
	for (int round = 0; round < 4; round++)
		lock_round((void *)1);
	CHECK(unlink(lock_path) == 0);
	printf("deferred: a thread cancelled before it calls fcntl is cancelled as the call "
	       "begins, cleanup ran\n");

	for (int round = 0; round < 10; round++) {
		async_cleanups = 0;
		in_syscall = 0;
		CHECK0(pthread_create(&t, NULL, pauser, NULL));
		SPIN_UNTIL(in_syscall);
		if (round % 2)
			sleep_ms(5);
		cancel_and_join(t);
		CHECK(async_cleanups == 1);
	}
	printf("deferred: a thread in pause cancelled, cleanup ran\n");
}

static void t_async(void)
{
	pthread_t t;

	for (int round = 0; round < 20; round++) {
		async_cleanups = 0;
		async_ready = 0;
		CHECK0(pthread_create(&t, NULL, spinner, NULL));
		SPIN_UNTIL(async_ready == 1);
		if (round % 2)
			sleep_ms(2);
		cancel_and_join(t);
		CHECK(async_cleanups == 1);
	}
	printf("asynchronous: a thread in a loop that calls nothing cancelled, cleanup ran\n");

	for (int round = 0; round < 10; round++) {
		async_cleanups = 0;
		async_ready = 0;
		CHECK0(pthread_create(&t, NULL, async_sleeper, NULL));
		SPIN_UNTIL(async_ready == 1);
		if (round % 2)
			sleep_ms(5);
		cancel_and_join(t);
		CHECK(async_cleanups == 1);
	}
	printf("asynchronous: a thread asleep in nanosleep cancelled, cleanup ran\n");

	async_cleanups = 0;
	async_ready = 0;
	CHECK0(pthread_create(&t, NULL, async_disabled, NULL));
	SPIN_UNTIL(async_ready == 1);
	CHECK0(pthread_cancel(t));
	sleep_ms(10);
	CHECK(async_cleanups == 0);
	reenable = 1;
	void *ret;
	CHECK0(pthread_join(t, &ret));
	CHECK(ret == PTHREAD_CANCELED);
	CHECK(async_cleanups == 1);
	printf("asynchronous but disabled: cancelled when it enabled cancellation\n");

	pthread_t by[2], sp[8];
	for (int i = 0; i < 2; i++)
		CHECK0(pthread_create(&by[i], NULL, bystander, (void *)(intptr_t)i));
	for (int round = 0; round < 10; round++) {
		async_ready = 0;
		for (int i = 0; i < 8; i++)
			CHECK0(pthread_create(&sp[i], NULL, spinner, NULL));
		SPIN_UNTIL(async_ready == 8);
		for (int i = 0; i < 8; i++)
			cancel_and_join(sp[i]);
	}
	CHECK0(pthread_mutex_lock(&by_m));
	by_stop = 1;
	CHECK0(pthread_cond_broadcast(&by_c));
	CHECK0(pthread_mutex_unlock(&by_m));
	for (int i = 0; i < 2; i++) {
		CHECK0(pthread_join(by[i], &ret));
		if (ret != (void *)7)
			FAIL("a deferred bystander ended with %p, not 7", ret);
	}
	printf("asynchronous: 80 spinners cancelled around two busy deferred threads, "
	       "which ended normally\n");
}

int main(void)
{
	pthread_t a, b, j, u;
	void *ret;

	legacy_start();
	CHECK(sem_init(&s, 0, 0) == 0);

	for (int round = 0; round < 20; round++) {
		cleanups = 0;
		trylock_in_handler = -1;
		CHECK0(pthread_create(&a, NULL, cond_waiter, NULL));
		if (round % 2)
			sleep_ms(5); /* sometimes blocked already, sometimes not yet */
		CHECK0(pthread_cancel(a));
		CHECK0(pthread_join(a, &ret));
		CHECK(ret == PTHREAD_CANCELED);
		CHECK(cleanups == 1);
		if (trylock_in_handler != EBUSY)
			FAIL("cleanup handler: trylock gave %s, want EBUSY", ename(trylock_in_handler));
	}
	printf("pthread_cond_wait: cancelled, cleanup handler ran with the mutex held\n");

	for (int round = 0; round < 20; round++) {
		CHECK0(pthread_create(&b, NULL, sem_waiter, NULL));
		if (round % 2)
			sleep_ms(5);
		CHECK0(pthread_cancel(b));
		CHECK0(pthread_join(b, &ret));
		CHECK(ret == PTHREAD_CANCELED);
	}
	printf("sem_wait: cancelled\n");

	CHECK0(pthread_create(&u, NULL, uncancellable, NULL));
	gate_await_waiters(&blocked, 1);
	for (int round = 0; round < 10; round++) {
		CHECK0(pthread_create(&j, NULL, joiner, &u));
		if (round % 2)
			sleep_ms(5);
		CHECK0(pthread_cancel(j));
		CHECK0(pthread_join(j, &ret));
		CHECK(ret == PTHREAD_CANCELED);
	}
	printf("pthread_join: cancelled\n");

	CHECK0(pthread_cancel(u));
	gate_open(&blocked);
	sleep_ms(20);
	CHECK(sem_post(&s) == 0);
	CHECK0(pthread_join(u, &ret));
	CHECK((intptr_t)ret == 5);
	printf("cancellation disabled: the thread waited on and returned its value\n");
	t_async();
	t_syscall_cancel();
	printf("cancel: all checks passed\n");
	return 0;
}
