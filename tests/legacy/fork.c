/* fork() in a threaded program, as POSIX defines it: the child has one
 * thread, a copy of the one that called fork, and may create threads of its
 * own; mutexes and condition variables it copied are usable where no other
 * thread held or waited on them (or once pthread_atfork handlers or the
 * child reset them); the parent's threads go on undisturbed and none of
 * them runs in the child. Cases: fork from a single-threaded main (and a
 * grandchild), fork while threads are parked in the parent (condvar, pipe
 * read, nanosleep) or busy on a CPU, fork from a thread other than main,
 * pthread_atfork (handler order and the lock-in-prepare pattern), 50 forks
 * while 4 threads work, fork + exec, descriptors both processes wait on,
 * joining a parent's thread in the child, fork from a thread glibc made
 * itself, and forks while a signal handler that interrupted malloc calls
 * waitpid. See legacy.h for the conventions.
 *
 * Every child gets its own alarm(30) (alarms are not inherited), prints
 * only "FAIL: ..." lines and reports through its exit status; the parent
 * waits for it and prints the case's line. stdout is flushed before every
 * fork so that no buffered line is written twice.
 *
 * A thread of the parent that ran in a child would be a bug: the parent's
 * threads check getpid() after each blocking call, and the children set the
 * predicates those threads wait for, so such a thread would return and say
 * so.
 *
 * glibc's condition variables count their waiters: in a child of a process
 * with threads blocked in pthread_cond_wait on C, lock, broadcast, signal
 * and unlock work (nothing to wake), but new waiters on C would hang the
 * child natively (glibc 2.36 waits for the parent's waiters to leave the
 * group it switches away from). So the child re-initialises C before its
 * own threads wait on it, which is what POSIX leaves it to do anyway.
 *
 * Arguments (optional): the cases to run, by name or number; all by
 * default. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "legacy.h"
#include "legacy_job.h"

static pid_t main_pid;

/* ------------------------------------------------------------------------
 * Helpers. */

static void write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	while (n > 0) {
		ssize_t r = write(fd, p, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			FAIL("write(%d): %s", fd, r < 0 ? en(errno) : "returned 0");
		p += r;
		n -= (size_t)r;
	}
}

/* Reads until n bytes or EOF; returns the count. */
static size_t read_full(int fd, void *buf, size_t n)
{
	char *p = buf;
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, p + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			FAIL("read(%d): %s", fd, en(errno));
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return got;
}

/* fork with stdout flushed; the child arms its own alarm. */
static pid_t fork_child(void)
{
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0)
		FAIL("fork: %s", ename(errno));
	if (pid == 0)
		alarm(30);
	return pid;
}

/* Waits for pid, which must have exited with code want. */
static void wait_exit(pid_t pid, int want, const char *what)
{
	int st;
	pid_t r;
	while ((r = waitpid(pid, &st, 0)) < 0 && errno == EINTR)
		;
	if (r != pid)
		FAIL("%s: waitpid: %s", what, ename(errno));
	if (WIFSIGNALED(st))
		FAIL("%s: the child was killed by signal %d%s", what, WTERMSIG(st),
		     WTERMSIG(st) == SIGALRM ? " (SIGALRM: it hung)" : "");
	if (!WIFEXITED(st) || WEXITSTATUS(st) != want)
		FAIL("%s: the child exited with status %d, want %d", what, WEXITSTATUS(st), want);
}

/* For the parent's threads: they never run in a fork child. */
static void in_parent(const char *who)
{
	if (getpid() != main_pid)
		FAIL("%s: a thread of the parent ran in a fork child", who);
}

/* ------------------------------------------------------------------------
 * The child's work in case 1: 4 pairs of threads taking turns with a
 * mutex and a condvar, a thread echoing over a new socketpair, and a thread
 * that sleeps 10 ms. */

#define NPAIRS 4
#define PP_ROUNDS 1000
#define ECHO_MSGS 64
#define ECHO_LEN 1024

struct pair {
	pthread_mutex_t m;
	pthread_cond_t c;
	int turn;	/* 0 or 1 */
	int rounds[2];
};

struct side {
	struct pair *p;
	int me;
};

static void *pingpong(void *arg)
{
	struct side *s = arg;
	struct pair *p = s->p;
	for (int i = 0; i < PP_ROUNDS; i++) {
		CHECK0(pthread_mutex_lock(&p->m));
		while (p->turn != s->me)
			CHECK0(pthread_cond_wait(&p->c, &p->m));
		p->turn = 1 - s->me;
		p->rounds[s->me]++;
		CHECK0(pthread_cond_signal(&p->c));
		CHECK0(pthread_mutex_unlock(&p->m));
	}
	return NULL;
}

/* Echoes what it reads on fd until EOF, then shuts its side down. */
static void *echo_server(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[4096];
	for (;;) {
		ssize_t n = read(fd, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			FAIL("echo server: read: %s", en(errno));
		if (n == 0) {
			SYS(shutdown(fd, SHUT_WR));
			return NULL;
		}
		write_all(fd, buf, (size_t)n);
	}
}

static void fill(unsigned char *buf, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		buf[i] = (unsigned char)(seed * 131u + i * 7u + (i >> 8));
}

static void *sleep_10ms(void *arg)
{
	(void)arg;
	struct timespec dl = ts_after(CLOCK_MONOTONIC, 10);
	sleep_ms(10);
	CHECK_DEADLINE_PASSED(CLOCK_MONOTONIC, &dl);
	return (void *)1;
}

static void child_work(void)
{
	struct pair pairs[NPAIRS];
	struct side sides[NPAIRS][2];
	pthread_t pt[NPAIRS][2], echo, sleeper;
	unsigned char out[ECHO_LEN], in[ECHO_LEN];
	int sv[2];
	void *ret;

	for (int i = 0; i < NPAIRS; i++) {
		CHECK0(pthread_mutex_init(&pairs[i].m, NULL));
		CHECK0(pthread_cond_init(&pairs[i].c, NULL));
		pairs[i].turn = 0;
		pairs[i].rounds[0] = pairs[i].rounds[1] = 0;
		for (int k = 0; k < 2; k++) {
			sides[i][k].p = &pairs[i];
			sides[i][k].me = k;
			CHECK0(pthread_create(&pt[i][k], NULL, pingpong, &sides[i][k]));
		}
	}
	SYS(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	CHECK0(pthread_create(&echo, NULL, echo_server, (void *)(intptr_t)sv[1]));
	CHECK0(pthread_create(&sleeper, NULL, sleep_10ms, NULL));

	for (unsigned m = 0; m < ECHO_MSGS; m++) {
		fill(out, sizeof out, m);
		write_all(sv[0], out, sizeof out);
		if (read_full(sv[0], in, sizeof in) != sizeof in)
			FAIL("child: echo %u: short reply", m);
		if (memcmp(in, out, sizeof in) != 0)
			FAIL("child: echo %u: the reply differs", m);
	}
	SYS(shutdown(sv[0], SHUT_WR));
	CHECK0(pthread_join(echo, NULL));
	CHECK(read(sv[0], in, 1) == 0);
	SYS(close(sv[0]));
	SYS(close(sv[1]));

	CHECK0(pthread_join(sleeper, &ret));
	CHECK(ret == (void *)1);
	for (int i = 0; i < NPAIRS; i++) {
		CHECK0(pthread_join(pt[i][0], NULL));
		CHECK0(pthread_join(pt[i][1], NULL));
		CHECK(pairs[i].rounds[0] == PP_ROUNDS && pairs[i].rounds[1] == PP_ROUNDS);
		CHECK0(pthread_mutex_destroy(&pairs[i].m));
		CHECK0(pthread_cond_destroy(&pairs[i].c));
	}
}

/* 1. fork from main while it is the only thread: the child runs threads
 * (mutex, condvar, socketpair, nanosleep), joins them, forks a grandchild
 * that does the same, and both exit 0. */
static void t_single(void)
{
	pid_t pid = fork_child();
	if (pid == 0) {
		child_work();
		pid_t g = fork_child();
		if (g == 0) {
			child_work();
			exit(0);
		}
		wait_exit(g, 0, "single: grandchild");
		exit(0);
	}
	wait_exit(pid, 0, "single: child");
	printf("fork from a single-threaded main: the child and then its own child each ran "
	       "%d threads taking %d turns a pair (mutex+condvar), a socketpair echo of %d bytes "
	       "and a 10 ms nanosleep, joined them and exited 0\n",
	       2 * NPAIRS, PP_ROUNDS, ECHO_MSGS * ECHO_LEN);
}

/* ------------------------------------------------------------------------
 * 2. fork while the parent has threads parked in pthread_cond_wait (on C
 * with M), in read() on a pipe, in nanosleep(200 ms), and 2 threads
 * spinning on a flag without calls. The child locks M, broadcasts and
 * signals C (wakes nobody), unlocks; re-initialises C (see the header) and
 * has 4 new threads pass a token with M and C (pthread_cond_signal);
 * closes its copy of the pipe's read end; sleeps 300 ms (past the parent
 * sleeper's 200 ms); runs 4 threads again; exits with exit(0), then in a
 * second round with _exit(0). The parent then releases its threads: the
 * waiters return, the reader gets exactly the bytes written, the sleeper
 * slept at least 200 ms. */

#define NWAITERS 4
#define NBUSY 2
#define TOKEN_ROUNDS 100
static const char pipe_msg[] = "sixteen bytes ok";	/* 16 bytes */

static pthread_mutex_t M = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t C = PTHREAD_COND_INITIALIZER;
static int released;		/* the parent's predicate on C */
static int tokens, passes;	/* the child's, on C after re-initialising it */
static volatile int busy;
static struct gate arrived;	/* open: counts the parent's threads */
static int P[2];

static void *cond_waiter(void *arg)
{
	(void)arg;
	CHECK0(pthread_mutex_lock(&M));
	gate_wait(&arrived);	/* under M: main's next lock of M finds it in the wait */
	while (!released) {
		CHECK0(pthread_cond_wait(&C, &M));
		in_parent("cond waiter");
	}
	CHECK0(pthread_mutex_unlock(&M));
	in_parent("cond waiter");
	return (void *)1;
}

struct reader {
	int fd;
	char buf[64];
	size_t got;
};

static void *pipe_reader(void *arg)
{
	struct reader *r = arg;
	gate_wait(&arrived);
	r->got = read_full(r->fd, r->buf, sizeof r->buf);
	in_parent("pipe reader");
	return (void *)1;
}

static void *sleep_200ms(void *arg)
{
	(void)arg;
	struct timespec dl = ts_after(CLOCK_MONOTONIC, 200);
	gate_wait(&arrived);
	sleep_ms(200);
	in_parent("sleeper");
	CHECK_DEADLINE_PASSED(CLOCK_MONOTONIC, &dl);
	return (void *)1;
}

static void *busy_loop(void *arg)
{
	(void)arg;
	unsigned long spins = 0;
	gate_wait(&arrived);
	while (busy)
		spins++;
	in_parent("busy loop");
	return (void *)(spins | 1);
}

static void *token_passer(void *arg)
{
	(void)arg;
	for (int i = 0; i < TOKEN_ROUNDS; i++) {
		CHECK0(pthread_mutex_lock(&M));
		while (tokens == 0)
			CHECK0(pthread_cond_wait(&C, &M));
		tokens--;
		CHECK0(pthread_mutex_unlock(&M));
		CHECK0(pthread_mutex_lock(&M));
		passes++;
		tokens++;
		CHECK0(pthread_cond_signal(&C));
		CHECK0(pthread_mutex_unlock(&M));
	}
	return NULL;
}

/* In the child: 4 threads pass one token around with M and C. */
static void pass_tokens(void)
{
	pthread_t t[4];
	CHECK0(pthread_mutex_lock(&M));
	tokens = 0;
	passes = 0;
	CHECK0(pthread_mutex_unlock(&M));
	for (int i = 0; i < 4; i++)
		CHECK0(pthread_create(&t[i], NULL, token_passer, NULL));
	CHECK0(pthread_mutex_lock(&M));
	tokens = 1;
	CHECK0(pthread_cond_signal(&C));
	CHECK0(pthread_mutex_unlock(&M));
	for (int i = 0; i < 4; i++)
		CHECK0(pthread_join(t[i], NULL));
	if (passes != 4 * TOKEN_ROUNDS || tokens != 1)
		FAIL("threads: child: %d passes, %d tokens, want %d and 1", passes, tokens,
		     4 * TOKEN_ROUNDS);
}

static void threads_child(int use__exit)
{
	CHECK0(pthread_mutex_lock(&M));
	released = 1;	/* a parent's waiter running here would return and FAIL */
	CHECK0(pthread_cond_broadcast(&C));
	CHECK0(pthread_cond_signal(&C));
	CHECK0(pthread_mutex_unlock(&M));
	busy = 0;	/* likewise a parent's busy loop */

	CHECK0(pthread_cond_init(&C, NULL));
	pass_tokens();
	SYS(close(P[0]));
	sleep_ms(300);
	pass_tokens();
	if (use__exit)
		_exit(0);
	exit(0);
}

static void threads_round(int use__exit)
{
	pthread_t w[NWAITERS], rd, sl, bz[NBUSY];
	struct reader r;
	void *ret;
	int n = 0;

	gate_init(&arrived);
	arrived.open = 1;
	CHECK0(pthread_mutex_init(&M, NULL));
	CHECK0(pthread_cond_init(&C, NULL));
	released = 0;
	busy = 1;
	SYS(pipe(P));
	memset(&r, 0, sizeof r);
	r.fd = P[0];

	for (int i = 0; i < NWAITERS; i++, n++)
		CHECK0(pthread_create(&w[i], NULL, cond_waiter, NULL));
	CHECK0(pthread_create(&rd, NULL, pipe_reader, &r));
	CHECK0(pthread_create(&sl, NULL, sleep_200ms, NULL));
	for (int i = 0; i < NBUSY; i++, n++)
		CHECK0(pthread_create(&bz[i], NULL, busy_loop, NULL));
	n += 2;
	gate_await_waiters(&arrived, n);
	CHECK0(pthread_mutex_lock(&M));	/* every waiter is in pthread_cond_wait */
	CHECK0(pthread_mutex_unlock(&M));
	sleep_ms(50);	/* the reader and the sleeper in all likelihood blocked */

	pid_t pid = fork_child();
	if (pid == 0)
		threads_child(use__exit);
	wait_exit(pid, 0, use__exit ? "threads (_exit): child" : "threads (exit): child");

	CHECK0(pthread_mutex_lock(&M));
	released = 1;
	CHECK0(pthread_cond_broadcast(&C));
	CHECK0(pthread_mutex_unlock(&M));
	write_all(P[1], pipe_msg, strlen(pipe_msg));
	SYS(close(P[1]));
	busy = 0;

	for (int i = 0; i < NWAITERS; i++) {
		CHECK0(pthread_join(w[i], &ret));
		CHECK(ret == (void *)1);
	}
	CHECK0(pthread_join(rd, &ret));
	CHECK(ret == (void *)1);
	if (r.got != strlen(pipe_msg) || memcmp(r.buf, pipe_msg, r.got) != 0)
		FAIL("threads: the parent's reader got %zu bytes \"%.*s\", want \"%s\"", r.got,
		     (int)r.got, r.buf, pipe_msg);
	CHECK0(pthread_join(sl, &ret));
	CHECK(ret == (void *)1);
	for (int i = 0; i < NBUSY; i++) {
		CHECK0(pthread_join(bz[i], &ret));
		CHECK(ret != NULL);
	}
	SYS(close(P[0]));
	CHECK0(pthread_cond_destroy(&C));
	CHECK0(pthread_mutex_destroy(&M));
	CHECK0(pthread_mutex_destroy(&arrived.m));
	CHECK0(pthread_cond_destroy(&arrived.c));
}

static void t_threads(void)
{
	threads_round(0);
	threads_round(1);
	printf("fork with %d threads in pthread_cond_wait, 1 in read, 1 in nanosleep and %d "
	       "spinning: the child used their mutex and condvar with %d new threads, slept past "
	       "the sleeper's timer and exited 0 (exit, then _exit); the parent's threads then "
	       "returned: the reader got the %zu bytes written, the sleeper slept 200 ms\n",
	       NWAITERS, NBUSY, 4, strlen(pipe_msg));
}

/* ------------------------------------------------------------------------
 * 3. fork from a thread other than main (main waits in pthread_join): in
 * the child that thread is the only one, with the same pthread_self() and
 * the process's id as its kernel thread id; it creates and joins 4
 * threads and exits with exit(0). */

static pthread_mutex_t cm = PTHREAD_MUTEX_INITIALIZER;
static int cm_count;

static void *small_work(void *arg)
{
	(void)arg;
	CHECK0(pthread_mutex_lock(&cm));
	cm_count++;
	CHECK0(pthread_mutex_unlock(&cm));
	sleep_ms(1);
	return (void *)1;
}

static void *forker(void *arg)
{
	(void)arg;
	pthread_t self = pthread_self();
	pid_t pid = fork_child();
	if (pid == 0) {
		pthread_t t[4];
		void *ret;
		if (!pthread_equal(pthread_self(), self))
			FAIL("from a thread: pthread_self() changed in the child");
		if (syscall(SYS_gettid) != getpid())
			FAIL("from a thread: in the child, gettid() != getpid()");
		cm_count = 0;
		for (int i = 0; i < 4; i++)
			CHECK0(pthread_create(&t[i], NULL, small_work, NULL));
		for (int i = 0; i < 4; i++) {
			CHECK0(pthread_join(t[i], &ret));
			CHECK(ret == (void *)1);
		}
		CHECK(cm_count == 4);
		exit(0);
	}
	wait_exit(pid, 0, "from a thread: child");
	in_parent("forker");
	return (void *)1;
}

static void t_from_thread(void)
{
	CHECK(run_in_thread(forker, NULL) == (void *)1);
	printf("fork from a thread: in the child it is the only thread, with the same "
	       "pthread_self() and gettid() == getpid(); it ran 4 threads and exited 0\n");
}

/* ------------------------------------------------------------------------
 * 4. pthread_atfork: three registrations; prepare handlers run in the
 * reverse order of registration, parent and child handlers in order. The
 * first registration's prepare (so the last to run) locks afm, which a
 * thread keeps locking to update a and b together; its parent and child
 * handlers unlock it. So the child finds afm unlocked and a == b, and its
 * new threads use afm. Forks from main and from a thread. */

static pthread_mutex_t afm = PTHREAD_MUTEX_INITIALIZER;
static long af_a, af_b;
static int af_armed, af_stop;
static char af_log[64];
static int af_len;

static void af_note(char what, char which)
{
	if (af_len < (int)sizeof af_log - 2) {
		af_log[af_len++] = what;
		af_log[af_len++] = which;
		af_log[af_len] = 0;
	}
}

#define AF_HANDLERS(n) \
	static void af_prepare##n(void) { if (af_armed) af_note('p', '0' + n); } \
	static void af_parent##n(void) { if (af_armed) af_note('a', '0' + n); } \
	static void af_child##n(void) { if (af_armed) af_note('c', '0' + n); }
AF_HANDLERS(2)
AF_HANDLERS(3)

static void af_prepare1(void)
{
	if (!af_armed)
		return;
	af_note('p', '1');
	CHECK0(pthread_mutex_lock(&afm));
}

static void af_parent1(void)
{
	if (!af_armed)
		return;
	af_note('a', '1');
	CHECK0(pthread_mutex_unlock(&afm));
}

static void af_child1(void)
{
	if (!af_armed)
		return;
	af_note('c', '1');
	CHECK0(pthread_mutex_unlock(&afm));
}

/* Keeps a == b under afm, yielding inside and outside the lock. */
static void *af_hammer(void *arg)
{
	(void)arg;
	while (!__atomic_load_n(&af_stop, __ATOMIC_ACQUIRE)) {
		CHECK0(pthread_mutex_lock(&afm));
		af_a++;
		sched_yield();
		af_b++;
		CHECK0(pthread_mutex_unlock(&afm));
		sched_yield();
	}
	in_parent("atfork hammer");
	return (void *)1;
}

#define AF_ROUNDS 1000

static void *af_user(void *arg)
{
	(void)arg;
	for (int i = 0; i < AF_ROUNDS; i++) {
		CHECK0(pthread_mutex_lock(&afm));
		af_a++;
		af_b++;
		CHECK0(pthread_mutex_unlock(&afm));
	}
	return (void *)1;
}

static void atfork_child_checks(void)
{
	pthread_t t[4];
	if (strcmp(af_log, "p3p2p1c1c2c3") != 0)
		FAIL("atfork: the child's handlers ran as %s, want p3p2p1c1c2c3", af_log);
	int rc = pthread_mutex_trylock(&afm);
	if (rc != 0)
		FAIL("atfork: in the child, trylock of the mutex gave %s, want 0", ename(rc));
	if (af_a != af_b)
		FAIL("atfork: in the child, a != b: forked inside the critical section");
	long a0 = af_a;
	CHECK0(pthread_mutex_unlock(&afm));
	for (int i = 0; i < 4; i++)
		CHECK0(pthread_create(&t[i], NULL, af_user, NULL));
	for (int i = 0; i < 4; i++)
		CHECK0(pthread_join(t[i], NULL));
	CHECK(af_a == a0 + 4 * AF_ROUNDS && af_b == af_a);
	exit(0);
}

static void *af_fork(void *arg)
{
	const char *what = arg;
	af_len = 0;
	af_log[0] = 0;
	pid_t pid = fork_child();
	if (pid == 0)
		atfork_child_checks();
	if (strcmp(af_log, "p3p2p1a1a2a3") != 0)
		FAIL("atfork: the parent's handlers ran as %s, want p3p2p1a1a2a3", af_log);
	wait_exit(pid, 0, what);
	return (void *)1;
}

static void t_atfork(void)
{
	pthread_t h;
	void *ret;

	CHECK0(pthread_atfork(af_prepare1, af_parent1, af_child1));
	CHECK0(pthread_atfork(af_prepare2, af_parent2, af_child2));
	CHECK0(pthread_atfork(af_prepare3, af_parent3, af_child3));
	af_armed = 1;
	af_stop = 0;
	CHECK0(pthread_create(&h, NULL, af_hammer, NULL));
	af_fork("atfork: child of main");
	CHECK(run_in_thread(af_fork, "atfork: child of a thread") == (void *)1);
	__atomic_store_n(&af_stop, 1, __ATOMIC_RELEASE);
	CHECK0(pthread_join(h, &ret));
	CHECK(ret == (void *)1);
	af_armed = 0;	/* the handlers stay registered; later forks skip them */
	CHECK0(pthread_mutex_lock(&afm));
	CHECK(af_a == af_b);
	CHECK0(pthread_mutex_unlock(&afm));
	printf("pthread_atfork: prepare handlers ran in reverse order, parent and child handlers "
	       "in order; the mutex locked in prepare and unlocked in parent and child was "
	       "consistent and usable by 4 new threads in the child (fork from main and from a "
	       "thread)\n");
}

/* ------------------------------------------------------------------------
 * 5. 50 forks in a row while 4 threads of the parent work: two take turns
 * with a mutex and a condvar, two echo over a socketpair, all four count
 * under a shared mutex. Each child has 2 new threads lock a mutex of its
 * own and pass a token over a new pipe, and exits 0. The parent's work is
 * checked at the end. */

#define NFORKS 50
#define STRESS_LEN 256

static struct {
	pthread_mutex_t m;	/* the turn-takers' */
	pthread_cond_t c;
	int turn, stop;
	long rounds[2];
	pthread_mutex_t sm;	/* the shared counter's */
	long shared, own[4];
	int sv[2];
	long echoes;
	struct gate warm;	/* open: counts threads past their first round */
} st = {
	PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, { 0, 0 },
	PTHREAD_MUTEX_INITIALIZER, 0, { 0 }, { -1, -1 }, 0, GATE_INIT,
};

static int stress_stopped(void)
{
	return __atomic_load_n(&st.stop, __ATOMIC_ACQUIRE);
}

static void stress_count(int who)
{
	CHECK0(pthread_mutex_lock(&st.sm));
	st.shared++;
	st.own[who]++;
	CHECK0(pthread_mutex_unlock(&st.sm));
}

static void *stress_turns(void *arg)
{
	int me = (int)(intptr_t)arg;
	for (long i = 0;; i++) {
		CHECK0(pthread_mutex_lock(&st.m));
		while (st.turn != me && !st.stop)
			CHECK0(pthread_cond_wait(&st.c, &st.m));
		in_parent("stress: turn-taker");
		if (st.stop) {
			CHECK0(pthread_mutex_unlock(&st.m));
			return (void *)1;
		}
		st.turn = 1 - me;
		st.rounds[me]++;
		CHECK0(pthread_cond_signal(&st.c));
		CHECK0(pthread_mutex_unlock(&st.m));
		stress_count(me);
		if (i == 0)
			gate_wait(&st.warm);
	}
}

static void *stress_client(void *arg)
{
	unsigned char out[STRESS_LEN], in[STRESS_LEN];
	(void)arg;
	for (unsigned i = 0; !stress_stopped(); i++) {
		fill(out, sizeof out, i);
		write_all(st.sv[0], out, sizeof out);
		if (read_full(st.sv[0], in, sizeof in) != sizeof in)
			FAIL("stress: echo %u: short reply", i);
		in_parent("stress: echo client");
		if (memcmp(in, out, sizeof in) != 0)
			FAIL("stress: echo %u: the reply differs", i);
		st.echoes++;
		stress_count(2);
		if (i == 0)
			gate_wait(&st.warm);
	}
	SYS(shutdown(st.sv[0], SHUT_WR));
	if (read(st.sv[0], in, 1) != 0)
		FAIL("stress: echo client: no EOF after shutdown");
	return (void *)1;
}

static void *stress_server(void *arg)
{
	char buf[STRESS_LEN];
	(void)arg;
	for (long i = 0;; i++) {
		ssize_t n = read(st.sv[1], buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			FAIL("stress: echo server: read: %s", en(errno));
		in_parent("stress: echo server");
		if (n == 0)
			break;
		write_all(st.sv[1], buf, (size_t)n);
		stress_count(3);
		if (i == 0)
			gate_wait(&st.warm);
	}
	SYS(shutdown(st.sv[1], SHUT_WR));
	return (void *)1;
}

/* In each child: a mutex of its own and a token over a new pipe. */
static pthread_mutex_t km = PTHREAD_MUTEX_INITIALIZER;
static int kcount, kpipe[2];

static void *token_sender(void *arg)
{
	int token = (int)(intptr_t)arg;
	CHECK0(pthread_mutex_lock(&km));
	kcount++;
	CHECK0(pthread_mutex_unlock(&km));
	write_all(kpipe[1], &token, sizeof token);
	return (void *)1;
}

static void *token_receiver(void *arg)
{
	int token = -1;
	if (read_full(kpipe[0], &token, sizeof token) != sizeof token)
		FAIL("stress: child: no token");
	if (token != (int)(intptr_t)arg)
		FAIL("stress: child: got token %d, want %d", token, (int)(intptr_t)arg);
	CHECK0(pthread_mutex_lock(&km));
	kcount++;
	CHECK0(pthread_mutex_unlock(&km));
	return (void *)1;
}

static void stress_child(int i)
{
	pthread_t s, r;
	void *rs, *rr;
	SYS(pipe(kpipe));
	CHECK0(pthread_create(&r, NULL, token_receiver, (void *)(intptr_t)i));
	CHECK0(pthread_create(&s, NULL, token_sender, (void *)(intptr_t)i));
	CHECK0(pthread_join(s, &rs));
	CHECK0(pthread_join(r, &rr));
	CHECK(rs == (void *)1 && rr == (void *)1);
	CHECK(kcount == 2);
	exit(0);
}

static void t_stress(void)
{
	pthread_t t[4];
	pid_t pids[NFORKS];
	void *ret;
	char what[64];

	st.warm.open = 1;
	SYS(socketpair(AF_UNIX, SOCK_STREAM, 0, st.sv));
	CHECK0(pthread_create(&t[0], NULL, stress_turns, (void *)0));
	CHECK0(pthread_create(&t[1], NULL, stress_turns, (void *)1));
	CHECK0(pthread_create(&t[2], NULL, stress_client, NULL));
	CHECK0(pthread_create(&t[3], NULL, stress_server, NULL));
	gate_await_waiters(&st.warm, 4);	/* all four are working */

	for (int i = 0; i < NFORKS; i++) {
		pids[i] = fork_child();
		if (pids[i] == 0)
			stress_child(i);
	}
	for (int i = 0; i < NFORKS; i++) {
		snprintf(what, sizeof what, "stress: child %d", i);
		wait_exit(pids[i], 0, what);
	}

	CHECK0(pthread_mutex_lock(&st.m));
	__atomic_store_n(&st.stop, 1, __ATOMIC_RELEASE);
	CHECK0(pthread_cond_broadcast(&st.c));
	CHECK0(pthread_mutex_unlock(&st.m));
	for (int i = 0; i < 4; i++) {
		CHECK0(pthread_join(t[i], &ret));
		CHECK(ret == (void *)1);
	}
	SYS(close(st.sv[0]));
	SYS(close(st.sv[1]));
	/* Turns alternate starting with 0; every round and echo was counted. */
	CHECK(st.rounds[0] >= 1 && (st.rounds[0] == st.rounds[1] || st.rounds[0] == st.rounds[1] + 1));
	CHECK(st.own[0] == st.rounds[0] && st.own[1] == st.rounds[1]);
	CHECK(st.echoes >= 1 && st.own[2] == st.echoes && st.own[3] == st.echoes);
	CHECK(st.shared == st.own[0] + st.own[1] + st.own[2] + st.own[3]);
	printf("%d forks while 4 threads took turns, echoed over a socketpair and counted under "
	       "a mutex: every child ran 2 threads (a mutex, a token over a pipe) and exited 0; "
	       "the parent's turns, echoes and counts all add up\n", NFORKS);
}

/* ------------------------------------------------------------------------
 * 6. fork + exec with threads parked (2 in pthread_cond_wait, 1 in read on
 * a pipe): the child runs /bin/sh -c 'exit 7'; the parent gets status 7
 * and its threads go on. */

static pthread_mutex_t xm = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t xc = PTHREAD_COND_INITIALIZER;
static int x_released;
static struct gate x_arrived = GATE_INIT;

static void *x_waiter(void *arg)
{
	(void)arg;
	CHECK0(pthread_mutex_lock(&xm));
	gate_wait(&x_arrived);
	while (!x_released)
		CHECK0(pthread_cond_wait(&xc, &xm));
	CHECK0(pthread_mutex_unlock(&xm));
	in_parent("exec: cond waiter");
	return (void *)1;
}

static void *x_reader(void *arg)
{
	struct reader *r = arg;
	gate_wait(&x_arrived);
	r->got = read_full(r->fd, r->buf, sizeof r->buf);
	in_parent("exec: pipe reader");
	return (void *)1;
}

static void t_exec(void)
{
	pthread_t w[2], rd;
	struct reader r;
	int p[2];
	void *ret;

	x_arrived.open = 1;
	SYS(pipe(p));
	memset(&r, 0, sizeof r);
	r.fd = p[0];
	for (int i = 0; i < 2; i++)
		CHECK0(pthread_create(&w[i], NULL, x_waiter, NULL));
	CHECK0(pthread_create(&rd, NULL, x_reader, &r));
	gate_await_waiters(&x_arrived, 3);
	CHECK0(pthread_mutex_lock(&xm));
	CHECK0(pthread_mutex_unlock(&xm));
	sleep_ms(50);

	pid_t pid = fork_child();
	if (pid == 0) {
		execl("/bin/sh", "sh", "-c", "exit 7", (char *)NULL);
		printf("FAIL: exec: execl /bin/sh: %s\n", en(errno));
		fflush(stdout);
		_exit(127);
	}
	wait_exit(pid, 7, "exec: child");

	CHECK0(pthread_mutex_lock(&xm));
	x_released = 1;
	CHECK0(pthread_cond_broadcast(&xc));
	CHECK0(pthread_mutex_unlock(&xm));
	write_all(p[1], pipe_msg, strlen(pipe_msg));
	SYS(close(p[1]));
	for (int i = 0; i < 2; i++) {
		CHECK0(pthread_join(w[i], &ret));
		CHECK(ret == (void *)1);
	}
	CHECK0(pthread_join(rd, &ret));
	CHECK(ret == (void *)1);
	if (r.got != strlen(pipe_msg) || memcmp(r.buf, pipe_msg, r.got) != 0)
		FAIL("exec: the parent's reader got %zu bytes, want %zu", r.got, strlen(pipe_msg));
	SYS(close(p[0]));
	printf("fork + exec with threads parked: /bin/sh -c 'exit 7' exited 7; the parent's "
	       "waiters and reader went on\n");
}

/* ------------------------------------------------------------------------
 * Case 7: descriptors that both processes keep (close-on-exec, so that a
 * preloaded runtime keeps them as its own). A parent thread stays parked in
 * read() on one across the fork; the child waits in read() on another
 * one, which the parent had waited on before, and closes its copy of the
 * first. Neither process's waiting disturbs the other's: the child's
 * reader gets the child's bytes, then the parent's reader its own. */

static int sa[2], sb[2];
static volatile int s_started;

static void *s_reader(void *arg)
{
	int fd = *(int *)arg;
	char buf[8] = { 0 };
	if (fd == sa[1])
		s_started = 1;
	size_t n = read_full(fd, buf, 5);
	if (getpid() == main_pid)
		in_parent("shared_fd reader");
	if (n != 5)
		FAIL("shared_fd: read %zu bytes, want 5", n);
	return strdup(buf);
}

static void t_shared_fd(void)
{
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sa) ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sb))
		FAIL("socketpair: %s", en(errno));
	/* The parent waits on sb[1] once before the fork. */
	pthread_t t;
	pthread_create(&t, NULL, s_reader, &sb[1]);
	sleep_ms(20);
	write_all(sb[0], "first", 5);
	void *got;
	pthread_join(t, &got);
	if (strcmp(got, "first") != 0)
		FAIL("shared_fd: parent read '%s' before the fork", (char *)got);
	free(got);
	/* A parent thread parked on sa[1] across the fork. */
	pthread_t ta;
	pthread_create(&ta, NULL, s_reader, &sa[1]);
	while (!s_started)
		sched_yield();
	sleep_ms(50); /* into its read (a later start only weakens the case) */
	pid_t pid = fork_child();
	if (pid == 0) {
		close(sa[1]);
		pthread_t tc;
		pthread_create(&tc, NULL, s_reader, &sb[1]);
		sleep_ms(50);
		write_all(sb[0], "child", 5);
		void *cgot;
		pthread_join(tc, &cgot);
		if (strcmp(cgot, "child") != 0)
			FAIL("shared_fd: the child's reader got '%s'", (char *)cgot);
		exit(0);
	}
	wait_exit(pid, 0, "shared_fd: child");
	write_all(sa[0], "paren", 5);
	pthread_join(ta, &got);
	if (strcmp(got, "paren") != 0)
		FAIL("shared_fd: the parent's reader got '%s'", (char *)got);
	free(got);
	close(sa[0]);
	close(sa[1]);
	close(sb[0]);
	close(sb[1]);
	printf("shared descriptors: the child waited on one the parent had waited on, the "
	       "parent's reader parked across the fork got its bytes\n");
}

/* ------------------------------------------------------------------------
 * Case 8: in the child, a thread of the parent does not exist: joining it
 * returns at once (glibc's fork child marks such threads ended). */

static void *long_sleeper(void *arg)
{
	sleep_ms(300);
	return arg;
}

static void t_join_gone(void)
{
	pthread_t t;
	CHECK0(pthread_create(&t, NULL, long_sleeper, (void *)1));
	sleep_ms(20);
	pid_t pid = fork_child();
	if (pid == 0) {
		void *r = (void *)7;
		int e = pthread_join(t, &r);
		if (e != 0)
			FAIL("join_gone: pthread_join in the child: %s", ename(e));
		exit(0);
	}
	wait_exit(pid, 0, "join_gone: child");
	void *r = NULL;
	CHECK0(pthread_join(t, &r));
	CHECK(r == (void *)1);
	printf("join of a parent's thread in the child returns at once; the parent's join gets "
	       "its result\n");
}

/* ------------------------------------------------------------------------
 * Case 9: fork from a thread glibc makes itself (a SIGEV_THREAD timer's
 * notification thread), which a preloaded runtime never created. */

static volatile int notify_status = -1;

static void notify_fork(union sigval sv)
{
	(void)sv;
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0)
		_exit(42);
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	notify_status = WIFEXITED(st) ? WEXITSTATUS(st) : -2;
}

static void t_glibc_thread(void)
{
	struct sigevent sev;
	memset(&sev, 0, sizeof sev);
	sev.sigev_notify = SIGEV_THREAD;
	sev.sigev_notify_function = notify_fork;
	timer_t tm;
	if (timer_create(CLOCK_MONOTONIC, &sev, &tm) != 0)
		FAIL("timer_create: %s", ename(errno));
	struct itimerspec its = { { 0, 0 }, { 0, 10 * 1000 * 1000 } };
	timer_settime(tm, 0, &its, NULL);
	for (int i = 0; i < 2000 && notify_status == -1; i++)
		sleep_ms(5);
	timer_delete(tm);
	if (notify_status != 42)
		FAIL("glibc_thread: the child exited %d, want 42", notify_status);
	printf("fork from glibc's SIGEV_THREAD notification thread: the child exited 42\n");
}

/* ------------------------------------------------------------------------
 * Case 10: 200 forks while main allocates and frees, and a thread keeps
 * signalling main, whose handler calls waitpid (async-signal-safe). fork
 * takes malloc's locks: a handler that interrupted malloc must be able to
 * finish while another thread forks. */

static volatile int ms_stop;
static pid_t ms_main_tid;

static void ms_handler(int sig)
{
	(void)sig;
	int e = errno;
	waitpid(-1234567, NULL, WNOHANG); /* no such child: ECHILD at once */
	errno = e;
}

static void *ms_signaller(void *arg)
{
	while (!ms_stop) {
		syscall(SYS_tgkill, main_pid, ms_main_tid, SIGUSR1);
		usleep(50);
	}
	return arg;
}

static _Atomic int ms_forks;

static void *ms_forker(void *arg)
{
	for (int i = 0; i < 200; i++) {
		pid_t pid = fork();
		if (pid < 0)
			FAIL("signal_malloc: fork: %s", ename(errno));
		if (pid == 0)
			_exit(0);
		int st;
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		ms_forks++;
	}
	return arg;
}

static void t_signal_malloc(void)
{
	struct sigaction sa, old;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = ms_handler;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGUSR1, &sa, &old);
	ms_main_tid = (pid_t)syscall(SYS_gettid);
	ms_stop = 0;
	fflush(stdout);
	pthread_t s, f;
	CHECK0(pthread_create(&s, NULL, ms_signaller, NULL));
	CHECK0(pthread_create(&f, NULL, ms_forker, NULL));
	static void *p[1024];
	while (ms_forks < 200) {
		for (int i = 0; i < 1024; i++)
			p[i] = malloc(64 + (i % 7) * 1024);
		for (int i = 0; i < 1024; i++)
			free(p[i]);
	}
	CHECK0(pthread_join(f, NULL));
	ms_stop = 1;
	CHECK0(pthread_join(s, NULL));
	sigaction(SIGUSR1, &old, NULL);
	printf("200 forks while main's signal handler, interrupting malloc, calls waitpid\n");
}

/* ------------------------------------------------------------------------ */

static const struct {
	const char *name;
	void (*fn)(void);
} cases[] = {
	{ "single", t_single },	/* first: main is the only thread */
	{ "threads", t_threads },
	{ "from_thread", t_from_thread },
	{ "atfork", t_atfork },
	{ "stress", t_stress },
	{ "exec", t_exec },
	{ "shared_fd", t_shared_fd },
	{ "join_gone", t_join_gone },
	{ "glibc_thread", t_glibc_thread },
	{ "signal_malloc", t_signal_malloc },
};
#define NCASES ((int)(sizeof cases / sizeof cases[0]))

int main(int argc, char **argv)
{
	legacy_start();
	main_pid = getpid();
	for (int i = 0; i < NCASES; i++) {
		int run = argc < 2;
		for (int a = 1; a < argc; a++)
			if (strcmp(argv[a], cases[i].name) == 0 || atoi(argv[a]) == i + 1)
				run = 1;
		if (run)
			cases[i].fn();
	}
	printf("fork: all checks passed\n");
	return 0;
}
