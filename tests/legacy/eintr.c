/* A signal sent with pthread_kill to a thread blocked in a call: its
 * handler runs in that thread during the call, and the call then fails
 * with EINTR or goes on, as signal(7) says for each call: read, write,
 * recv, accept and sem_wait go on under SA_RESTART unless the socket has a
 * timeout; poll, select, epoll_wait, sleeps and sem_timedwait always fail;
 * pthread_cond_wait, the mutex and rwlock locks and pthread_join never do.
 * Preloaded, the blocked threads are parked goroutines with no OS thread
 * to interrupt.
 *
 * A call that has moved data returns the count, SA_RESTART or not; the
 * restart is decided before the handler runs (an SA_RESETHAND handler
 * without SA_RESTART interrupts); pthread_kill from a signal handler
 * (SIGALRM, wherever it lands) interrupts as well.
 *
 * The signal is sent again until the call has returned (or, for the calls
 * that go on, until the handler ran), so a signal that arrives before the
 * thread entered its call cannot hang the test. */
#include <sys/time.h>
#include "legacy.h"
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <semaphore.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>

static volatile sig_atomic_t hit;
static pthread_t hit_in;

static void on_usr1(int sig)
{
	(void)sig;
	hit_in = pthread_self();
	hit = 1;
}

static void handler(int flags)
{
	struct sigaction sa = {.sa_handler = on_usr1, .sa_flags = flags};
	sigemptyset(&sa.sa_mask);
	CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
}

/* The objects the calls block on, made afresh for each case. */
static int pipefd[2], sockpair[2], listener, epfd;
static struct sockaddr_in listen_addr;
static sem_t sem;
static pthread_mutex_t cm = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int cond_release;
static pthread_mutex_t held = PTHREAD_MUTEX_INITIALIZER;
static pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
static int held_by_main; /* held and rw */
static pthread_t joined;
static volatile int joined_release;

static void *joined_thread(void *arg)
{
	while (!joined_release)
		usleep(1000);
	return arg;
}

static void make_objects(void)
{
	CHECK(pipe(pipefd) == 0);
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sockpair) == 0);
	listener = socket(AF_INET, SOCK_STREAM, 0);
	CHECK(listener >= 0);
	listen_addr.sin_family = AF_INET;
	listen_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	listen_addr.sin_port = 0;
	CHECK(bind(listener, (struct sockaddr *)&listen_addr, sizeof listen_addr) == 0);
	socklen_t len = sizeof listen_addr;
	CHECK(getsockname(listener, (struct sockaddr *)&listen_addr, &len) == 0);
	CHECK(listen(listener, 4) == 0);
	epfd = epoll_create1(0);
	CHECK(epfd >= 0);
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = pipefd[0]};
	CHECK(epoll_ctl(epfd, EPOLL_CTL_ADD, pipefd[0], &ev) == 0);
	CHECK(sem_init(&sem, 0, 0) == 0);
	cond_release = 0;
	CHECK0(pthread_mutex_lock(&held));
	CHECK0(pthread_rwlock_wrlock(&rw));
	held_by_main = 1;
	joined_release = 0;
	CHECK0(pthread_create(&joined, NULL, joined_thread, NULL));
}

static void free_objects(void)
{
	close(pipefd[0]);
	close(pipefd[1]);
	close(sockpair[0]);
	close(sockpair[1]);
	close(listener);
	close(epfd);
	sem_destroy(&sem);
	if (held_by_main) {
		CHECK0(pthread_mutex_unlock(&held));
		CHECK0(pthread_rwlock_unlock(&rw));
	}
	joined_release = 1;
	if (joined)
		CHECK0(pthread_join(joined, NULL));
}

static struct timespec in_seconds(clockid_t c, int s)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	ts.tv_sec += s;
	return ts;
}

/* ---- the calls: each returns its result, errno as it left it ---------- */

static long c_read(void)
{
	char b;
	return read(pipefd[0], &b, 1);
}

static long c_write_full(void)
{
	/* Fill the pipe without blocking, then block in write. */
	int fl = fcntl(pipefd[1], F_GETFL);
	CHECK(fcntl(pipefd[1], F_SETFL, fl | O_NONBLOCK) == 0);
	static char chunk[4096];
	while (write(pipefd[1], chunk, sizeof chunk) > 0)
		;
	CHECK(errno == EAGAIN);
	CHECK(fcntl(pipefd[1], F_SETFL, fl) == 0);
	return write(pipefd[1], chunk, sizeof chunk);
}

static long c_recv(void)
{
	char b;
	return recv(sockpair[0], &b, 1, 0);
}

static long c_recv_timeo(void)
{
	struct timeval tv = {30, 0};
	CHECK(setsockopt(sockpair[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0);
	char b;
	return recv(sockpair[0], &b, 1, 0);
}

static long c_accept(void)
{
	int fd = accept(listener, NULL, NULL);
	if (fd >= 0) {
		close(fd);
		return 0;
	}
	return fd;
}

static long c_poll(void)
{
	struct pollfd p = {.fd = pipefd[0], .events = POLLIN};
	return poll(&p, 1, -1);
}

static long c_select(void)
{
	fd_set r;
	FD_ZERO(&r);
	FD_SET(pipefd[0], &r);
	return select(pipefd[0] + 1, &r, NULL, NULL, NULL);
}

static long c_epoll(void)
{
	struct epoll_event ev;
	return epoll_wait(epfd, &ev, 1, -1);
}

static long c_nanosleep(void)
{
	struct timespec req = {30, 0}, rem = {-1, -1};
	int r = nanosleep(&req, &rem);
	int e = errno;
	if (r == -1 && (rem.tv_sec < 0 || rem.tv_sec > 30 || rem.tv_nsec < 0 ||
	                rem.tv_nsec >= 1000000000L || (rem.tv_sec == 0 && rem.tv_nsec == 0)))
		FAIL("nanosleep: the time left is not within the request");
	errno = e;
	return r;
}

static long c_clock_nanosleep_abs(void)
{
	struct timespec t = in_seconds(CLOCK_MONOTONIC, 30);
	int r = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL);
	errno = r;
	return r ? -1 : 0;
}

static long c_sleep(void)
{
	unsigned left = sleep(30);
	if (left < 1 || left > 30)
		FAIL("sleep returned %u, want the seconds left (1 to 30)", left);
	errno = EINTR;
	return -1; /* as the others say it: interrupted */
}

static long c_sem_wait(void)
{
	return sem_wait(&sem);
}

static long c_sem_timedwait(void)
{
	struct timespec t = in_seconds(CLOCK_REALTIME, 30);
	return sem_timedwait(&sem, &t);
}

static long c_cond_wait(void)
{
	pthread_mutex_lock(&cm);
	while (!cond_release)
		CHECK0(pthread_cond_wait(&cv, &cm));
	pthread_mutex_unlock(&cm);
	return 0;
}

static long c_write_big(void)
{
	/* 1 MiB into an empty pipe: the pipe takes its capacity, then the
	 * write blocks with that much written. */
	static char big[1 << 20];
	return write(pipefd[1], big, sizeof big);
}

static long c_recv_waitall(void)
{
	CHECK(write(sockpair[1], "abc", 3) == 3);
	char b[8];
	return recv(sockpair[0], b, sizeof b, MSG_WAITALL);
}

static long c_mutex_lock(void)
{
	CHECK0(pthread_mutex_lock(&held));
	CHECK0(pthread_mutex_unlock(&held));
	return 0;
}

static long c_rdlock(void)
{
	CHECK0(pthread_rwlock_rdlock(&rw));
	CHECK0(pthread_rwlock_unlock(&rw));
	return 0;
}

static long c_wrlock(void)
{
	CHECK0(pthread_rwlock_wrlock(&rw));
	CHECK0(pthread_rwlock_unlock(&rw));
	return 0;
}

static long c_timedjoin(void)
{
	struct timespec t = in_seconds(CLOCK_REALTIME, 30);
	CHECK0(pthread_timedjoin_np(joined, NULL, &t));
	joined = 0;
	return 0;
}

/* ---- what lets a call that went on return ----------------------------- */

static void feed_pipe(void)
{
	CHECK(write(pipefd[1], "x", 1) == 1);
}

static void feed_sock(void)
{
	CHECK(write(sockpair[1], "x", 1) == 1);
}

static void feed_connect(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	CHECK(fd >= 0);
	CHECK(connect(fd, (struct sockaddr *)&listen_addr, sizeof listen_addr) == 0);
	close(fd);
}

static void feed_sem(void)
{
	CHECK(sem_post(&sem) == 0);
}

static void feed_cond(void)
{
	pthread_mutex_lock(&cm);
	cond_release = 1;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&cm);
}

static void feed_locks(void)
{
	CHECK0(pthread_mutex_unlock(&held));
	CHECK0(pthread_rwlock_unlock(&rw));
	held_by_main = 0;
}

static void feed_join(void)
{
	joined_release = 1;
}

static void feed_drain_pipe(void)
{
	static char buf[65536];
	int fl = fcntl(pipefd[0], F_GETFL);
	CHECK(fcntl(pipefd[0], F_SETFL, fl | O_NONBLOCK) == 0);
	while (read(pipefd[0], buf, sizeof buf) > 0)
		;
	CHECK(fcntl(pipefd[0], F_SETFL, fl) == 0);
}

/* ---- the harness ------------------------------------------------------ */

struct tcase {
	const char *name;
	long (*call)(void);
	void (*feed)(void); /* lets it return once it went on */
};

static struct tcase *cur;
static volatile int entered, done;
static long result;
static int result_errno;
static int hit_before_return;

static void *blocked_thread(void *arg)
{
	(void)arg;
	entered = 1;
	long r = cur->call();
	int e = errno;
	hit_before_return = hit && pthread_equal(hit_in, pthread_self());
	result = r;
	result_errno = e;
	__atomic_store_n(&done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* Waits up to ms for *flag; true if it was set. */
static int wait_for(volatile int *flag, int ms)
{
	for (int i = 0; i < ms; i++) {
		if (__atomic_load_n(flag, __ATOMIC_ACQUIRE))
			return 1;
		usleep(1000);
	}
	return __atomic_load_n(flag, __ATOMIC_ACQUIRE);
}

/* Sends SIGUSR1 until the thread returned (goes_on == 0) or the handler
 * ran in it (goes_on): the first signal may come before it blocked. */
static int rearm, rearm_flags; /* SA_RESETHAND: installed again before each signal */

static void kill_until(pthread_t t, int goes_on)
{
	for (int tries = 0; tries < 50; tries++) {
		if (rearm)
			handler(rearm_flags);
		CHECK0(pthread_kill(t, SIGUSR1));
		if (goes_on) {
			for (int i = 0; i < 200 && !hit; i++)
				usleep(1000);
			if (hit)
				return;
		} else if (wait_for(&done, 200)) {
			return;
		}
	}
	FAIL("%s: no effect of 50 signals", cur->name);
}

/* A call with feed goes on after the handler (feed lets it return); one
 * without fails. */
static void run(struct tcase *c, int sa_flags)
{
	const char *how = sa_flags ? "SA_RESTART" : "no SA_RESTART";
	cur = c;
	make_objects();
	hit = 0;
	entered = done = 0;
	pthread_t t;
	CHECK0(pthread_create(&t, NULL, blocked_thread, NULL));
	while (!entered)
		sched_yield();
	usleep(20000); /* into its call, most likely */
	if (c->feed) {
		kill_until(t, 1);
		if (wait_for(&done, 100))
			FAIL("%s, %s: returned %ld %s after the handler; it should go on", c->name,
			     how, result, ename(result_errno));
		if (!pthread_equal(hit_in, t))
			FAIL("%s, %s: the handler ran in another thread", c->name, how);
		c->feed();
		CHECK0(pthread_join(t, NULL));
		if (result < 0)
			FAIL("%s, %s: returned %ld %s once fed", c->name, how, result,
			     ename(result_errno));
		printf("%s, %s: the handler ran in the thread, and the call went on\n", c->name, how);
	} else {
		kill_until(t, 0);
		CHECK0(pthread_join(t, NULL));
		if (!hit_before_return)
			FAIL("%s, %s: returned %ld %s, the handler did not run in the thread first",
			     c->name, how, result, ename(result_errno));
		printf("%s, %s: the handler ran in the thread, then %ld%s%s\n", c->name, how, result,
		       result < 0 ? " " : "", result < 0 ? ename(result_errno) : "");
	}
	free_objects();
}

/* pthread_kill from a SIGALRM handler, which lands on whichever thread
 * the kernel picks (preloaded, often an idle OS thread with no goroutine
 * on it), to a thread blocked in read while main is parked in a join. */
static pthread_t alarm_target;

static void on_alarm(int sig)
{
	(void)sig;
	int e = errno;
	pthread_kill(alarm_target, SIGUSR1);
	errno = e;
}

static void t_from_handler(void)
{
	struct sigaction sa = {.sa_handler = on_alarm};
	sigemptyset(&sa.sa_mask);
	CHECK(sigaction(SIGALRM, &sa, NULL) == 0);
	cur = &(struct tcase){"read of a pipe, pthread_kill from a SIGALRM handler", c_read, NULL};
	make_objects();
	hit = 0;
	entered = done = 0;
	CHECK0(pthread_create(&alarm_target, NULL, blocked_thread, NULL));
	while (!entered)
		sched_yield();
	/* Every 50 ms until it returned: the first may come before its read. */
	struct itimerval it = {{0, 50000}, {0, 50000}};
	CHECK(setitimer(ITIMER_REAL, &it, NULL) == 0);
	CHECK0(pthread_join(alarm_target, NULL));
	struct itimerval off = {{0, 0}, {0, 0}};
	CHECK(setitimer(ITIMER_REAL, &off, NULL) == 0);
	if (!hit_before_return)
		FAIL("%s: returned %ld %s, the handler did not run in the thread first", cur->name,
		     result, ename(result_errno));
	printf("%s: the handler ran in the thread, then %ld %s\n", cur->name, result,
	       ename(result_errno));
	free_objects();
}

int main(void)
{
	legacy_start();
	struct tcase fails[] = {
		{"read of a pipe", c_read, NULL},
		{"write to a full pipe", c_write_full, NULL},
		{"recv", c_recv, NULL},
		{"recv with SO_RCVTIMEO", c_recv_timeo, NULL},
		{"accept", c_accept, NULL},
		{"poll", c_poll, NULL},
		{"select", c_select, NULL},
		{"epoll_wait", c_epoll, NULL},
		{"nanosleep", c_nanosleep, NULL},
		{"clock_nanosleep TIMER_ABSTIME", c_clock_nanosleep_abs, NULL},
		{"sleep", c_sleep, NULL},
		{"sem_wait", c_sem_wait, NULL},
		{"sem_timedwait", c_sem_timedwait, NULL},
	};
	handler(0);
	for (size_t i = 0; i < sizeof fails / sizeof *fails; i++)
		run(&fails[i], 0);
	/* These never fail with EINTR: the handler runs during the wait. */
	struct tcase never[] = {
		{"pthread_cond_wait", c_cond_wait, feed_cond},
		{"pthread_mutex_lock", c_mutex_lock, feed_locks},
		{"pthread_rwlock_rdlock", c_rdlock, feed_locks},
		{"pthread_rwlock_wrlock", c_wrlock, feed_locks},
		{"pthread_timedjoin_np", c_timedjoin, feed_join},
	};
	for (size_t i = 0; i < sizeof never / sizeof *never; i++)
		run(&never[i], 0);

	/* SA_RESTART: these go on (fed afterwards so that they return)... */
	struct tcase goes_on[] = {
		{"read of a pipe", c_read, feed_pipe},
		{"write to a full pipe", c_write_full, feed_drain_pipe},
		{"recv", c_recv, feed_sock},
		{"accept", c_accept, feed_connect},
		{"sem_wait", c_sem_wait, feed_sem},
	};
	handler(SA_RESTART);
	for (size_t i = 0; i < sizeof goes_on / sizeof *goes_on; i++)
		run(&goes_on[i], SA_RESTART);
	/* ...and these fail all the same. */
	struct tcase still_fail[] = {
		{"recv with SO_RCVTIMEO", c_recv_timeo, NULL},
		{"poll", c_poll, NULL},
		{"select", c_select, NULL},
		{"epoll_wait", c_epoll, NULL},
		{"nanosleep", c_nanosleep, NULL},
		{"sem_timedwait", c_sem_timedwait, NULL},
	};
	for (size_t i = 0; i < sizeof still_fail / sizeof *still_fail; i++)
		run(&still_fail[i], SA_RESTART);
	/* Data moved before the signal: the count, whatever SA_RESTART says. */
	struct tcase partial[] = {
		{"1 MiB write to an empty pipe", c_write_big, NULL},
		{"recv MSG_WAITALL of 8 with 3 there", c_recv_waitall, NULL},
	};
	for (size_t i = 0; i < sizeof partial / sizeof *partial; i++)
		run(&partial[i], SA_RESTART);
	/* SA_RESETHAND: the handler resets itself to SIG_DFL as it runs; the
	 * call was interrupted by a handler without SA_RESTART. */
	rearm = 1;
	rearm_flags = (int)SA_RESETHAND;
	run(&(struct tcase){"read of a pipe, SA_RESETHAND", c_read, NULL}, 0);
	rearm = 0;
	handler(0);
	t_from_handler();
	printf("eintr: all checks passed\n");
	return 0;
}
