/* Per-thread signal masks and pthread_kill, as POSIX and NPTL give them:
 * a thread's mask is its own (inherited from its creator, unchanged when
 * the thread blocks and resumes), a process-directed signal that every
 * thread blocks waits for sigwait, and pthread_kill reaches the thread it
 * names: a handler runs in that thread (pthread_self), whether it is
 * computing, parked in a condvar wait, blocked in a system call, waiting
 * in sigwait or sigsuspend, or has the signal blocked until it unblocks
 * it, or parks and wakes all the time; a signal the kernel leaves pending
 * for a thread that blocks it stays that thread's. See legacy.h for the
 * conventions. */
#include "legacy.h"
#include <semaphore.h>
#include <signal.h>
#include <sys/syscall.h>

static sigset_t just(int sig)
{
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, sig);
	return s;
}

static int blocked(int sig)
{
	sigset_t cur;
	CHECK0(pthread_sigmask(SIG_SETMASK, NULL, &cur));
	return sigismember(&cur, sig);
}

/* ------------------------------------------------------------------------
 * Masks: each thread's own, across blocking calls (which may move a
 * preloaded thread to another OS thread). */

static void *mask_thread(void *arg)
{
	int mine = (int)(intptr_t)arg, other = mine == SIGUSR1 ? SIGUSR2 : SIGUSR1;
	if (blocked(SIGUSR1) || blocked(SIGUSR2))
		FAIL("a new thread does not start with its creator's mask");
	sigset_t s = just(mine);
	CHECK0(pthread_sigmask(SIG_BLOCK, &s, NULL));
	for (int i = 0; i < 200; i++) {
		usleep(100);
		if (!blocked(mine) || blocked(other))
			FAIL("thread blocking %d: mask changed after a sleep (round %d)", mine, i);
	}
	return NULL;
}

static void *attr_mask_thread(void *arg)
{
	printf("a thread made with pthread_attr_setsigmask_np(SIGUSR2) by one blocking SIGUSR1: "
	       "SIGUSR1 blocked %d, SIGUSR2 blocked %d\n", blocked(SIGUSR1), blocked(SIGUSR2));
	return arg;
}

static void t_masks(void)
{
	pthread_t t[8];
	for (int i = 0; i < 8; i++)
		CHECK0(pthread_create(&t[i], NULL, mask_thread, (void *)(intptr_t)(i % 2 ? SIGUSR1 : SIGUSR2)));
	for (int i = 0; i < 8; i++)
		CHECK0(pthread_join(t[i], NULL));
	printf("masks: 8 threads each kept their own mask over 200 sleeps\n");

	sigset_t s = just(SIGUSR1), old;
	EXPECT("pthread_sigmask with a bad how", pthread_sigmask(12345, &s, NULL), EINVAL);
	errno = 0;
	int rc = sigprocmask(12345, &s, NULL);
	printf("sigprocmask with a bad how: %d %s\n", rc, ename(errno));
	CHECK0(pthread_sigmask(SIG_BLOCK, &s, &old));
	CHECK(!sigismember(&old, SIGUSR1) && blocked(SIGUSR1));
	CHECK0(pthread_sigmask(SIG_UNBLOCK, &s, &old));
	CHECK(sigismember(&old, SIGUSR1) && !blocked(SIGUSR1));
	sigset_t all;
	sigfillset(&all);
	CHECK0(sigprocmask(SIG_SETMASK, &all, &old));
	printf("SIG_SETMASK all: SIGKILL blocked %d, SIGSTOP blocked %d, SIGTERM blocked %d\n",
	       blocked(SIGKILL), blocked(SIGSTOP), blocked(SIGTERM));
	CHECK0(sigprocmask(SIG_SETMASK, &old, NULL));
	CHECK(!blocked(SIGTERM));

	/* pthread_attr_setsigmask_np: the attribute's mask, not the creator's. */
	pthread_attr_t a;
	CHECK0(pthread_attr_init(&a));
	s = just(SIGUSR2);
	CHECK0(pthread_attr_setsigmask_np(&a, &s));
	sigset_t usr1 = just(SIGUSR1);
	CHECK0(pthread_sigmask(SIG_BLOCK, &usr1, NULL)); /* the creator's, not passed on */
	pthread_t at;
	CHECK0(pthread_create(&at, &a, attr_mask_thread, NULL));
	CHECK0(pthread_join(at, NULL));
	CHECK0(pthread_sigmask(SIG_UNBLOCK, &usr1, NULL));
	CHECK0(pthread_attr_destroy(&a));
}

/* ------------------------------------------------------------------------
 * The sigwait pattern: main blocks SIGUSR1 before it creates any thread,
 * so every thread inherits the block, and one thread takes the
 * process-directed signals with sigwait. A thread that let SIGUSR1
 * through would die of it (its default action). */

static pthread_mutex_t sw_m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t sw_c = PTHREAD_COND_INITIALIZER;
static int sw_got, sw_stop;

static void *sigwaiter(void *arg)
{
	sigset_t s = just(SIGUSR1);
	for (;;) {
		int sig = 0;
		CHECK0(sigwait(&s, &sig));
		CHECK(sig == SIGUSR1);
		pthread_mutex_lock(&sw_m);
		sw_got++;
		int stop = sw_stop;
		pthread_cond_broadcast(&sw_c);
		pthread_mutex_unlock(&sw_m);
		if (stop)
			return arg;
	}
}

static void *sw_worker(void *arg)
{
	for (int i = 0; i < 100; i++) {
		usleep(200);
		if (!blocked(SIGUSR1))
			FAIL("a worker lost the inherited block of SIGUSR1");
	}
	return arg;
}

static void t_sigwait(void)
{
	sigset_t s = just(SIGUSR1), old;
	CHECK0(pthread_sigmask(SIG_BLOCK, &s, &old));
	pthread_t w[8], sw;
	CHECK0(pthread_create(&sw, NULL, sigwaiter, NULL));
	for (int i = 0; i < 8; i++)
		CHECK0(pthread_create(&w[i], NULL, sw_worker, NULL));
	for (int i = 1; i <= 50; i++) {
		pthread_mutex_lock(&sw_m);
		sw_stop = i == 50;
		pthread_mutex_unlock(&sw_m);
		CHECK(kill(getpid(), SIGUSR1) == 0);
		pthread_mutex_lock(&sw_m);
		while (sw_got < i)
			pthread_cond_wait(&sw_c, &sw_m);
		pthread_mutex_unlock(&sw_m);
	}
	for (int i = 0; i < 8; i++)
		CHECK0(pthread_join(w[i], NULL));
	CHECK0(pthread_join(sw, NULL));
	CHECK0(pthread_sigmask(SIG_SETMASK, &old, NULL));
	printf("sigwait: 50 process-directed signals, all taken by the sigwait thread\n");
}

/* ------------------------------------------------------------------------
 * pthread_kill. The handler notes which thread it ran in. */

static volatile sig_atomic_t hit;
static pthread_t hit_in;

static void on_usr2(int sig)
{
	(void)sig;
	hit_in = pthread_self();
	hit = 1;
}

static void expect_hit(const char *what, pthread_t t)
{
	if (!hit)
		FAIL("%s: the handler did not run", what);
	if (!pthread_equal(hit_in, t))
		FAIL("%s: the handler ran in another thread", what);
	printf("pthread_kill, %s: the handler ran in the target\n", what);
	hit = 0;
}

static volatile int spin_go;

static void *spinner(void *arg)
{
	while (!hit)
		spin_go = 1;
	expect_hit("a thread computing", pthread_self());
	return arg;
}

static pthread_mutex_t pk_m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pk_c = PTHREAD_COND_INITIALIZER;
static int pk_ready, pk_release;

static void *cond_parked(void *arg)
{
	pthread_mutex_lock(&pk_m);
	pk_ready = 1;
	pthread_cond_broadcast(&pk_c);
	while (!pk_release)
		pthread_cond_wait(&pk_c, &pk_m);
	pthread_mutex_unlock(&pk_m);
	expect_hit("a thread parked in pthread_cond_wait, once woken", pthread_self());
	return arg;
}

static void *pauser(void *arg)
{
	spin_go = 1;
	/* If the handler ran before pause started, there is nothing to wait
	 * for (the caller sleeps 20 ms first, so the signal normally finds
	 * the thread in pause). */
	while (!hit) {
		int rc = pause();
		int e = errno;
		if (rc != -1 || e != EINTR)
			FAIL("pause: %d %s, want -1 EINTR", rc, ename(e));
	}
	expect_hit("a thread blocked in pause, which returned EINTR", pthread_self());
	return arg;
}

static void *waiter_usr2(void *arg)
{
	sigset_t s = just(SIGUSR2);
	CHECK0(pthread_sigmask(SIG_BLOCK, &s, NULL));
	spin_go = 1;
	int sig = 0;
	CHECK0(sigwait(&s, &sig));
	printf("pthread_kill, a thread in sigwait: it took signal %s\n", sig == SIGUSR2 ? "SIGUSR2" : "?");
	return arg;
}

static void *blocker(void *arg)
{
	sigset_t s = just(SIGUSR2);
	CHECK0(pthread_sigmask(SIG_BLOCK, &s, NULL));
	spin_go = 1;
	while (spin_go != 2)
		usleep(100);
	if (hit)
		FAIL("pthread_kill: a blocked signal's handler ran");
	CHECK0(pthread_sigmask(SIG_UNBLOCK, &s, NULL));
	expect_hit("a thread that blocked it, once it unblocked it", pthread_self());
	return arg;
}

static volatile int live_release;

static void *live(void *arg)
{
	while (!live_release)
		usleep(1000);
	return arg;
}

static void start_and_wait(pthread_t *t, void *(*fn)(void *))
{
	spin_go = 0;
	CHECK0(pthread_create(t, NULL, fn, NULL));
	while (!spin_go)
		sched_yield();
	usleep(20000); /* into its loop or call */
}

static void t_kill(void)
{
	struct sigaction sa = { .sa_handler = on_usr2 };
	sigemptyset(&sa.sa_mask);
	CHECK(sigaction(SIGUSR2, &sa, NULL) == 0);
	pthread_t t;

	/* A live thread: glibc returns 0 for any number to one that exited. */
	live_release = 0;
	CHECK0(pthread_create(&t, NULL, live, NULL));
	EXPECT("pthread_kill signal 0 to a live thread", pthread_kill(t, 0), 0);
	EXPECT("pthread_kill signal 65", pthread_kill(t, 65), EINVAL);
	EXPECT("pthread_kill signal -1", pthread_kill(t, -1), EINVAL);
	EXPECT("pthread_kill SIGCANCEL (32, glibc's own)", pthread_kill(t, 32), EINVAL);
	live_release = 1;
	CHECK0(pthread_join(t, NULL));

	start_and_wait(&t, spinner);
	CHECK0(pthread_kill(t, SIGUSR2));
	CHECK0(pthread_join(t, NULL));

	pk_ready = pk_release = 0;
	CHECK0(pthread_create(&t, NULL, cond_parked, NULL));
	pthread_mutex_lock(&pk_m);
	while (!pk_ready)
		pthread_cond_wait(&pk_c, &pk_m);
	pthread_mutex_unlock(&pk_m);
	usleep(20000);
	CHECK0(pthread_kill(t, SIGUSR2));
	pthread_mutex_lock(&pk_m);
	pk_release = 1;
	pthread_cond_broadcast(&pk_c);
	pthread_mutex_unlock(&pk_m);
	CHECK0(pthread_join(t, NULL));

	start_and_wait(&t, pauser);
	CHECK0(pthread_kill(t, SIGUSR2));
	CHECK0(pthread_join(t, NULL));

	start_and_wait(&t, waiter_usr2);
	CHECK0(pthread_kill(t, SIGUSR2));
	CHECK0(pthread_join(t, NULL));
	if (hit)
		FAIL("pthread_kill to a thread in sigwait: the handler ran");

	start_and_wait(&t, blocker);
	CHECK0(pthread_kill(t, SIGUSR2));
	spin_go = 2;
	CHECK0(pthread_join(t, NULL));

	CHECK0(pthread_kill(pthread_self(), SIGUSR2));
	expect_hit("itself", pthread_self());
}

/* ------------------------------------------------------------------------
 * A thread-directed signal the kernel leaves pending for a thread that
 * blocks it stays that thread's: a thread blocking SIGPIPE writes to a
 * pipe nobody reads (EPIPE, SIGPIPE pending for it), then sleeps while
 * other threads, which take SIGPIPE with its default action, keep running
 * (preloaded: on the OS thread it left). The process must live. */

static volatile int pipe_stop;

static void *pipe_writer(void *arg)
{
	sigset_t s = just(SIGPIPE);
	CHECK0(pthread_sigmask(SIG_BLOCK, &s, NULL));
	int p[2];
	CHECK(pipe(p) == 0);
	close(p[0]);
	errno = 0;
	if (write(p[1], "x", 1) != -1 || errno != EPIPE)
		FAIL("write to a pipe without a reader: want EPIPE, got %s", ename(errno));
	close(p[1]);
	usleep(200000);
	sigset_t pend;
	CHECK(sigpending(&pend) == 0);
	printf("SIGPIPE blocked and pending for its thread only: pending there %d\n",
	       sigismember(&pend, SIGPIPE));
	return arg;
}

static void *pipe_bystander(void *arg)
{
	while (!pipe_stop)
		usleep(300);
	return arg;
}

static void t_thread_pending(void)
{
	pthread_t b[4], w;
	for (int i = 0; i < 4; i++)
		CHECK0(pthread_create(&b[i], NULL, pipe_bystander, NULL));
	CHECK0(pthread_create(&w, NULL, pipe_writer, NULL));
	CHECK0(pthread_join(w, NULL));
	pipe_stop = 1;
	for (int i = 0; i < 4; i++)
		CHECK0(pthread_join(b[i], NULL));
}

/* ------------------------------------------------------------------------
 * The classic wait: block SIGUSR2, then sigsuspend with the old mask until
 * the handler ran; another thread's pthread_kill ends it. */

static volatile int ss_ready;

static void *suspender(void *arg)
{
	sigset_t s = just(SIGUSR2), old;
	CHECK0(pthread_sigmask(SIG_BLOCK, &s, &old));
	ss_ready = 1;
	while (!hit) {
		int rc = sigsuspend(&old);
		if (rc != -1 || errno != EINTR)
			FAIL("sigsuspend: %d %s, want -1 EINTR", rc, ename(errno));
	}
	expect_hit("a thread in sigsuspend with the signal blocked outside it", pthread_self());
	return arg;
}

static void t_sigsuspend(void)
{
	pthread_t t;
	ss_ready = 0;
	CHECK0(pthread_create(&t, NULL, suspender, NULL));
	while (!ss_ready)
		sched_yield();
	usleep(20000);
	CHECK0(pthread_kill(t, SIGUSR2));
	CHECK0(pthread_join(t, NULL));
}

/* ------------------------------------------------------------------------
 * pthread_kill, over and over, of a thread that parks and wakes all the
 * time (a semaphore ping-pong with a partner): wherever each signal finds
 * it -- computing, on its way into a wait, parked, on its way out -- the
 * handler runs in that thread, never in another. */

#define FLOOD_KILLS 3000
static pthread_t flood_target;
static volatile sig_atomic_t flood_hits, flood_elsewhere;
static volatile int flood_stop;
static sem_t flood_ping, flood_pong;

static volatile sig_atomic_t flood_bad_info;

static void on_flood(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	if (!pthread_equal(pthread_self(), flood_target))
		flood_elsewhere = 1;
	if (si->si_code != SI_TKILL || si->si_pid != getpid())
		flood_bad_info = 1;
	flood_hits = flood_hits + 1;
}

static void sem_take(sem_t *s)
{
	while (sem_wait(s) != 0)
		CHECK(errno == EINTR); /* the handler ran: wait again */
}

static void *flood_player(void *arg)
{
	sem_t *mine = arg == NULL ? &flood_ping : &flood_pong;
	sem_t *theirs = arg == NULL ? &flood_pong : &flood_ping;
	while (!flood_stop) {
		sem_take(mine);
		CHECK(sem_post(theirs) == 0);
	}
	return NULL;
}

static void t_kill_flood(void)
{
	struct sigaction sa = { .sa_sigaction = on_flood, .sa_flags = SA_SIGINFO };
	sigemptyset(&sa.sa_mask);
	CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
	CHECK(sem_init(&flood_ping, 0, 1) == 0 && sem_init(&flood_pong, 0, 0) == 0);
	pthread_t partner;
	/* The partner blocks SIGUSR1 (inherited from main's mask here). */
	sigset_t s = just(SIGUSR1), old;
	CHECK0(pthread_sigmask(SIG_BLOCK, &s, &old));
	CHECK0(pthread_create(&partner, NULL, flood_player, (void *)1));
	CHECK0(pthread_sigmask(SIG_SETMASK, &old, NULL));
	CHECK0(pthread_create(&flood_target, NULL, flood_player, NULL));
	for (int i = 0; i < FLOOD_KILLS; i++) {
		CHECK0(pthread_kill(flood_target, SIGUSR1));
		if (i % 8 == 0)
			sched_yield();
	}
	flood_stop = 1;
	/* Both may be parked: one more turn each lets them see the flag. */
	CHECK(sem_post(&flood_ping) == 0 && sem_post(&flood_pong) == 0);
	CHECK0(pthread_join(flood_target, NULL));
	CHECK0(pthread_join(partner, NULL));
	if (!flood_hits)
		FAIL("pthread_kill flood: the handler never ran");
	if (flood_elsewhere)
		FAIL("pthread_kill flood: a handler ran in another thread than the target");
	if (flood_bad_info)
		FAIL("pthread_kill flood: a handler's siginfo was not pthread_kill's (SI_TKILL, our pid)");
	CHECK(sem_destroy(&flood_ping) == 0 && sem_destroy(&flood_pong) == 0);
	CHECK(signal(SIGUSR1, SIG_DFL) != SIG_ERR);
	printf("pthread_kill, %d times, of a thread parking and waking: every handler ran in it\n",
	       FLOOD_KILLS);
}

/* pthread_kill of a thread waiting in sigwaitinfo for the signal: the
 * wait takes it, with the siginfo of a pthread_kill (glibc's sigwaitinfo
 * reports a tgkill's SI_TKILL as SI_USER). */
static volatile int sw_ready;

static void *info_waiter(void *arg)
{
	sigset_t s = just(SIGUSR2);
	CHECK0(pthread_sigmask(SIG_BLOCK, &s, NULL));
	sw_ready = 1;
	siginfo_t si;
	int sig = sigwaitinfo(&s, &si);
	CHECK(sig == SIGUSR2);
	printf("pthread_kill of a thread in sigwaitinfo: taken, si_code SI_USER %d, si_pid ours %d\n",
	       si.si_code == SI_USER, si.si_pid == getpid());
	return arg;
}

static void t_kill_sigwaitinfo(void)
{
	pthread_t t;
	sw_ready = 0;
	CHECK0(pthread_create(&t, NULL, info_waiter, NULL));
	while (!sw_ready)
		sched_yield();
	usleep(20000); /* into its call, most likely */
	CHECK0(pthread_kill(t, SIGUSR2));
	CHECK0(pthread_join(t, NULL));
}

int main(void)
{
	legacy_start();
	t_masks();
	t_sigwait();
	t_kill();
	t_thread_pending();
	t_sigsuspend();
	t_kill_sigwaitinfo();
	t_kill_flood();
	printf("signal: all checks passed\n");
	return 0;
}
