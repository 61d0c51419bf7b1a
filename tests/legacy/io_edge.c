/* Edge cases of blocking I/O that a runtime parking threads on a poller
 * easily gets wrong, one line of output per case: a read in the main
 * thread interrupted by a signal handler with SA_RESTART goes on (and one
 * without SA_RESTART returns EINTR); calls that succeed leave errno alone
 * (sleeps in the main thread, a read and a poll that waited, a TCP connect
 * that completed); MSG_DONTWAIT (recvmmsg, sendmsg, sendmmsg) and
 * MSG_ERRQUEUE return EAGAIN at once; MSG_WAITALL on a datagram socket
 * returns the datagram; an AF_UNIX connect to a full backlog waits (for
 * SO_SNDTIMEO, or until the listener accepts); an accepted socket inherits
 * the listener's SO_RCVTIMEO; recvmmsg with a timeout waits for its first
 * message; a fork child that closes its copy of a pipe's read end (close()
 * or a raw close system call) does not disturb a parent thread blocked in
 * read() on it; a program exec'd after fork (by execv or by a raw execve
 * system call) and the children of system() see the program's blocking
 * pipes as blocking; a signal handler that calls write() many times a
 * millisecond while threads use a mutex and a condition variable. See
 * legacy.h for the conventions.
 *
 * The programs a child execs are this program itself (/proc/self/exe, or
 * its path for system()), run as "io_edge --child WHAT ...": they exit with
 * _exit, report through their exit status and print nothing. The signal
 * cases run first, while the main thread is the program's only thread, so
 * that the process-directed signal interrupts it.
 *
 * "io_edge CASE..." runs only the cases named (for debugging). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "legacy.h"
#include "legacy_job.h"

extern char **environ;

/* ------------------------------------------------------------------------
 * Helpers. */

/* A call that must fail with errno want (nothing printed). */
#define CHECK_ERRNO(call, want) \
	do { errno = 0; long r_ = (long)(call); int e_ = errno; \
	     if (r_ != -1 || e_ != (want)) \
		FAIL("%s:%d: %s: returned %ld (%s), want -1 %s", __FILE__, __LINE__, #call, r_, \
		     r_ == -1 ? en(e_) : "no error", en(want)); \
	} while (0)

/* At least ms milliseconds have passed on CLOCK_MONOTONIC since t0. */
#define CHECK_WAITED(t0, ms) \
	do { struct timespec dl_ = ts_plus((t0), (ms)); \
	     CHECK_DEADLINE_PASSED(CLOCK_MONOTONIC, &dl_); } while (0)

/* The kernel keeps SO_RCVTIMEO and SO_SNDTIMEO in jiffies (10 ms at
 * HZ=100): a socket timeout is checked as "waited for it, less a jiffy",
 * which still tells a wait from an immediate return. */
#define JIFFY_MS 10

static void set_cloexec(int fd)
{
	SYS(fcntl(fd, F_SETFD, FD_CLOEXEC));
}

/* Waits for pid, which must exit with status 0. */
static void reap(pid_t pid, const char *what)
{
	int st;
	if (waitpid(pid, &st, 0) != pid)
		FAIL("%s: waitpid: %s", what, en(errno));
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		FAIL("%s: the child ended with status %#x, want exit 0", what, st);
}

JOB_FN(job_read, read(j->fd, j->buf, j->len))
JOB_FN(job_connect, connect(j->fd, j->peer, j->peerlen))

/* A thread that sleeps ms milliseconds, then writes len bytes to fd. */
struct later {
	pthread_t t;
	int fd;
	long ms;
	const char *data;
	size_t len;
	int use_send;
};

static void *later_thread(void *arg)
{
	struct later *l = arg;
	sleep_ms(l->ms);
	ssize_t r = l->use_send ? send(l->fd, l->data, l->len, 0) : write(l->fd, l->data, l->len);
	if (r != (ssize_t)l->len)
		FAIL("delayed write of %zu bytes returned %zd (%s)", l->len, r, en(errno));
	return NULL;
}

static void later_start(struct later *l, int fd, long ms, const char *data, int use_send)
{
	memset(l, 0, sizeof *l);
	l->fd = fd;
	l->ms = ms;
	l->data = data;
	l->len = strlen(data);
	l->use_send = use_send;
	CHECK0(pthread_create(&l->t, NULL, later_thread, l));
}

static void later_join(struct later *l)
{
	CHECK0(pthread_join(l->t, NULL));
}

/* ------------------------------------------------------------------------
 * The programs the children exec: this one, as "--child WHAT ...". They
 * print nothing and report through the exit status. */

/* say: writes "hi\n" to stdout after 100 ms. */
static int child_say(void)
{
	sleep_ms(100);
	return write(1, "hi\n", 3) == 3 ? 0 : 1;
}

/* fdflags FD: 0 if FD is blocking, 1 if O_NONBLOCK is set, 2 on error. */
static int child_fdflags(const char *arg)
{
	int fl = fcntl(atoi(arg), F_GETFL);
	return fl < 0 ? 2 : (fl & O_NONBLOCK) ? 1 : 0;
}

/* filter: stdin and stdout must be blocking (3, 4 if not); writes
 * "ready\n", then reads 6 bytes from stdin, which must wait for them
 * (5: EAGAIN, 6: EOF or another error), and writes them back. */
static int child_filter(void)
{
	char buf[6];
	size_t got = 0;
	int fl0 = fcntl(0, F_GETFL), fl1 = fcntl(1, F_GETFL);
	if (fl0 < 0 || (fl0 & O_NONBLOCK))
		return 3;
	if (fl1 < 0 || (fl1 & O_NONBLOCK))
		return 4;
	if (write(1, "ready\n", 6) != 6)
		return 7;
	while (got < sizeof buf) {
		ssize_t r = read(0, buf + got, sizeof buf - got);
		if (r < 0 && errno == EAGAIN)
			return 5;
		if (r <= 0)
			return 6;
		got += (size_t)r;
	}
	return write(1, buf, sizeof buf) == (ssize_t)sizeof buf ? 0 : 7;
}

static void child_main(int argc, char **argv)
{
	int st = 2;
	if (argc >= 3 && strcmp(argv[2], "say") == 0)
		st = child_say();
	else if (argc >= 4 && strcmp(argv[2], "fdflags") == 0)
		st = child_fdflags(argv[3]);
	else if (argc >= 3 && strcmp(argv[2], "filter") == 0)
		st = child_filter();
	_exit(st);
}

/* ------------------------------------------------------------------------
 * A signal handler interrupts the main thread blocked in read(). Only the
 * main thread exists here; the signal comes from a fork child (kill), to
 * the process. The socket is close-on-exec, as a program's private
 * sockets often are: a runtime that hands inheritable descriptors back to
 * the kernel at fork (goshim does) keeps this one, so the read is its own
 * wait, not the kernel's. */

static volatile sig_atomic_t fired;

static void on_usr1(int sig)
{
	(void)sig;
	fired++;
}

static void set_usr1(void (*fn)(int), int flags)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = fn;
	sa.sa_flags = flags;
	sigemptyset(&sa.sa_mask);
	SYS(sigaction(SIGUSR1, &sa, NULL));
}

static void t_main_signal(void)
{
	int sv[2];
	char c;
	sigset_t usr1;
	pid_t pid;

	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	CHECK0(pthread_sigmask(SIG_UNBLOCK, &usr1, NULL));
	SYS(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));

	/* SA_RESTART: the signal after 100 ms, the byte after 300 ms. */
	set_usr1(on_usr1, SA_RESTART);
	fired = 0;
	pid = (pid_t)SYS(fork());
	if (pid == 0) {
		sleep_ms(100);
		kill(getppid(), SIGUSR1);
		sleep_ms(200);
		_exit(write(sv[1], "x", 1) == 1 ? 0 : 1);
	}
	errno = 0;
	ssize_t r = read(sv[0], &c, 1);
	int e = errno;
	reap(pid, "SA_RESTART signal sender");
	if (r != 1 || c != 'x')
		FAIL("main thread's read, SA_RESTART handler: returned %zd (%s), want the 1 byte "
		     "written after the signal", r, r < 0 ? en(e) : "no error");
	if (fired != 1)
		FAIL("SA_RESTART: the handler ran %d times, want 1", (int)fired);

	/* No SA_RESTART: EINTR. The child signals every 100 ms until killed
	 * (in case the first signal came before the read began). */
	set_usr1(on_usr1, 0);
	fired = 0;
	pid = (pid_t)SYS(fork());
	if (pid == 0) {
		for (;;) {
			sleep_ms(100);
			kill(getppid(), SIGUSR1);
		}
	}
	errno = 0;
	r = read(sv[0], &c, 1);
	e = errno;
	SYS(kill(pid, SIGKILL));
	if (waitpid(pid, NULL, 0) != pid)
		FAIL("waitpid: %s", en(errno));
	if (r != -1 || e != EINTR)
		FAIL("main thread's read, handler without SA_RESTART: returned %zd (%s), want -1 EINTR",
		     r, r < 0 ? en(e) : "no error");
	if (fired < 1)
		FAIL("no SA_RESTART: the handler did not run");
	set_usr1(SIG_IGN, 0);	/* (a signal sent before the kill may still come) */
	SYS(close(sv[0]));
	SYS(close(sv[1]));
	printf("main thread blocked in read() on a socket, signal handled: with SA_RESTART the "
	       "read went on and returned the byte written later; without it, -1 EINTR\n");
}

/* ------------------------------------------------------------------------
 * Calls that succeed leave errno alone. */

static void *errno_thread(void *arg)
{
	int sv[2], c, s, l;
	char ch;
	struct later w;
	struct sockaddr_in a;
	(void)arg;

	SYS(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	later_start(&w, sv[1], 50, "x", 0);
	errno = 42;
	ssize_t r = read(sv[0], &ch, 1);
	if (r != 1 || errno != 42)
		FAIL("a read that waited: returned %zd, errno %s, want 1 and errno 42", r, en(errno));
	later_join(&w);

	struct pollfd p = { sv[0], POLLIN, 0 };
	later_start(&w, sv[1], 50, "x", 0);
	errno = 42;
	r = poll(&p, 1, -1);
	if (r != 1 || errno != 42)
		FAIL("a poll that waited: returned %zd, errno %s, want 1 and errno 42", r, en(errno));
	later_join(&w);
	CHECK(SYS(read(sv[0], &ch, 1)) == 1);
	SYS(close(sv[0]));
	SYS(close(sv[1]));

	/* TCP connect over loopback: a non-blocking attempt would say
	 * EINPROGRESS first. */
	l = tcp_listener(&a, 4);
	c = (int)SYS(socket(AF_INET, SOCK_STREAM, 0));
	errno = 42;
	r = connect(c, (struct sockaddr *)&a, sizeof a);
	if (r != 0 || errno != 42)
		FAIL("a TCP connect that succeeded: returned %zd, errno %s, want 0 and errno 42", r,
		     en(errno));
	errno = 42;
	s = accept(l, NULL, NULL);
	if (s < 0 || errno != 42)
		FAIL("accept: returned %d, errno %s, want a socket and errno 42", s, en(errno));
	SYS(close(s));
	SYS(close(c));
	SYS(close(l));
	return NULL;
}

static void t_errno(void)
{
	struct timespec ts = { 0, 1000000 };

	errno = 42;
	CHECK(usleep(1000) == 0);
	if (errno != 42)
		FAIL("usleep(1000) in the main thread: errno %s, want 42", en(errno));
	errno = 42;
	CHECK(nanosleep(&ts, NULL) == 0);
	if (errno != 42)
		FAIL("nanosleep 1 ms in the main thread: errno %s, want 42", en(errno));
	errno = 42;
	CHECK(clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL) == 0);
	if (errno != 42)
		FAIL("clock_nanosleep 1 ms in the main thread: errno %s, want 42", en(errno));
	run_in_thread(errno_thread, NULL);
	printf("errno 42 kept by calls that succeeded: usleep, nanosleep and clock_nanosleep in the "
	       "main thread; in a thread, a read and a poll that waited, a TCP connect, accept\n");
}

/* ------------------------------------------------------------------------
 * MSG_DONTWAIT and MSG_ERRQUEUE never wait. */

static void *dontwait_thread(void *arg)
{
	int sv[2], u, n;
	char buf[64], cbuf[256];
	struct iovec iov = { buf, sizeof buf };
	struct msghdr m;
	struct mmsghdr mm;
	(void)arg;

	memset(buf, 'd', sizeof buf);
	memset(&m, 0, sizeof m);
	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	memset(&mm, 0, sizeof mm);
	mm.msg_hdr = m;
	SYS(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv));

	CHECK_ERRNO(recvmmsg(sv[0], &mm, 1, MSG_DONTWAIT, NULL), EAGAIN);
	/* Datagrams until the peer's queue is full, then EAGAIN. */
	for (n = 0;; n++) {
		ssize_t r = sendmsg(sv[0], &m, MSG_DONTWAIT);
		if (r == -1 && errno == EAGAIN)
			break;
		if (r != (ssize_t)sizeof buf)
			FAIL("sendmsg(MSG_DONTWAIT) #%d: returned %zd (%s)", n, r, en(errno));
		if (n > 1000000)
			FAIL("sendmsg(MSG_DONTWAIT): the queue never filled");
	}
	CHECK(n > 0);
	CHECK_ERRNO(sendmsg(sv[0], &m, MSG_DONTWAIT), EAGAIN);
	CHECK_ERRNO(sendmmsg(sv[0], &mm, 1, MSG_DONTWAIT), EAGAIN);
	SYS(close(sv[0]));
	SYS(close(sv[1]));

	u = (int)SYS(socket(AF_INET, SOCK_DGRAM, 0));
	m.msg_control = cbuf;
	m.msg_controllen = sizeof cbuf;
	CHECK_ERRNO(recvmsg(u, &m, MSG_ERRQUEUE), EAGAIN);
	SYS(close(u));
	return NULL;
}

static void t_dontwait(void)
{
	run_in_thread(dontwait_thread, NULL);
	printf("MSG_DONTWAIT: recvmmsg on an empty datagram socket, sendmsg and sendmmsg on a full "
	       "one: -1 EAGAIN at once; recvmsg(MSG_ERRQUEUE), empty error queue: -1 EAGAIN\n");
}

/* ------------------------------------------------------------------------
 * MSG_WAITALL on a datagram socket: one datagram, however short. */

static void *waitall_thread(void *arg)
{
	int sv[2];
	char buf[100];
	(void)arg;

	SYS(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv));
	CHECK(SYS(send(sv[1], "abc", 3, 0)) == 3);
	ssize_t r = recv(sv[0], buf, sizeof buf, MSG_WAITALL);
	if (r != 3 || memcmp(buf, "abc", 3) != 0)
		FAIL("datagram recv(100, MSG_WAITALL): returned %zd (%s), want the 3-byte datagram", r,
		     r < 0 ? en(errno) : "no error");
	SYS(close(sv[0]));
	SYS(close(sv[1]));
	return NULL;
}

static void t_waitall_dgram(void)
{
	run_in_thread(waitall_thread, NULL);
	printf("AF_UNIX datagram socket: recv of 100 bytes with MSG_WAITALL returned the 3-byte "
	       "datagram\n");
}

/* ------------------------------------------------------------------------
 * AF_UNIX connect to a listener whose backlog is full: a blocking connect
 * waits for room (or for SO_SNDTIMEO: EAGAIN). */

#define MAXQ 64

static void t_unix_backlog(void)
{
	struct sockaddr_un a;
	socklen_t alen = sizeof a;
	int l, q[MAXQ], nq = 0, c, s;
	struct timeval tv = { 0, 200000 };
	struct timespec t0;
	struct job j;

	/* An abstract address of the kernel's choosing (autobind). */
	memset(&a, 0, sizeof a);
	a.sun_family = AF_UNIX;
	l = (int)SYS(socket(AF_UNIX, SOCK_STREAM, 0));
	SYS(bind(l, (struct sockaddr *)&a, sizeof(sa_family_t)));
	SYS(getsockname(l, (struct sockaddr *)&a, &alen));
	SYS(listen(l, 0));
	for (;;) {
		c = (int)SYS(socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0));
		if (connect(c, (struct sockaddr *)&a, alen) != 0) {
			if (errno != EAGAIN)
				FAIL("filling the backlog: connect: %s, want EAGAIN once full",
				     en(errno));
			SYS(close(c));
			break;
		}
		if (nq == MAXQ)
			FAIL("the backlog of listen(fd, 0) took more than %d connections", MAXQ);
		q[nq++] = c;
	}
	CHECK(nq > 0);

	c = (int)SYS(socket(AF_UNIX, SOCK_STREAM, 0));
	SYS(setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv));
	t0 = mono();
	CHECK_ERRNO(connect(c, (struct sockaddr *)&a, alen), EAGAIN);
	CHECK_WAITED(t0, 200 - JIFFY_MS);
	SYS(close(c));

	c = (int)SYS(socket(AF_UNIX, SOCK_STREAM, 0));
	job_init(&j, c, NULL, 0);
	j.peer = (struct sockaddr *)&a;
	j.peerlen = alen;
	job_run(&j, job_connect);
	job_blocked(&j);
	s = (int)SYS(accept(l, NULL, NULL));
	if (job_join(&j) != 0)
		FAIL("a connect blocked on a full backlog, one connection accepted: returned %ld (%s), "
		     "want 0", j.ret, en(j.err));
	SYS(close(s));
	SYS(close(c));
	for (int i = 0; i < nq; i++)
		SYS(close(q[i]));
	SYS(close(l));
	printf("AF_UNIX connect to a full backlog: with SO_SNDTIMEO 200 ms, -1 EAGAIN after the "
	       "timeout; without, it waited until the listener accepted, then returned 0\n");
}

/* ------------------------------------------------------------------------
 * An accepted socket inherits the listener's SO_RCVTIMEO. */

static void *accept_timeo_thread(void *arg)
{
	struct sockaddr_in a;
	struct timeval tv = { 0, 200000 }, got;
	socklen_t len = sizeof got;
	struct timespec t0;
	char buf[8];
	int l, c, s;
	(void)arg;

	l = tcp_listener(&a, 4);
	SYS(setsockopt(l, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));
	c = (int)SYS(socket(AF_INET, SOCK_STREAM, 0));
	SYS(connect(c, (struct sockaddr *)&a, sizeof a));
	s = (int)SYS(accept(l, NULL, NULL));
	SYS(getsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &got, &len));
	if (got.tv_sec * 1000000L + got.tv_usec < 200000)
		FAIL("accepted socket: SO_RCVTIMEO %ld us, want 200000", (long)(got.tv_sec * 1000000L +
										 got.tv_usec));
	t0 = mono();
	CHECK_ERRNO(read(s, buf, sizeof buf), EAGAIN);
	CHECK_WAITED(t0, 200 - JIFFY_MS);
	SYS(close(s));
	SYS(close(c));
	SYS(close(l));
	return NULL;
}

static void t_accept_timeo(void)
{
	run_in_thread(accept_timeo_thread, NULL);
	printf("a socket accepted from a listener with SO_RCVTIMEO 200 ms has it: read with no "
	       "data returned -1 EAGAIN after the timeout\n");
}

/* ------------------------------------------------------------------------
 * recvmmsg with a timeout waits for its first message. */

static void *mmsg_timeout_thread(void *arg)
{
	int sv[2];
	char buf[8];
	struct iovec iov = { buf, sizeof buf };
	struct mmsghdr mm;
	struct timespec tmo = { 1, 0 };
	struct later w;
	(void)arg;

	memset(&mm, 0, sizeof mm);
	mm.msg_hdr.msg_iov = &iov;
	mm.msg_hdr.msg_iovlen = 1;
	SYS(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv));
	later_start(&w, sv[1], 100, "x", 1);
	int r = recvmmsg(sv[0], &mm, 1, 0, &tmo);
	if (r != 1 || mm.msg_len != 1 || buf[0] != 'x')
		FAIL("recvmmsg(vlen 1, timeout 1 s), a datagram sent after 100 ms: returned %d (%s), "
		     "want 1", r, r < 0 ? en(errno) : "no error");
	later_join(&w);
	SYS(close(sv[0]));
	SYS(close(sv[1]));
	return NULL;
}

static void t_mmsg_timeout(void)
{
	run_in_thread(mmsg_timeout_thread, NULL);
	printf("recvmmsg with a 1 s timeout, a datagram sent 100 ms later: it waited and returned "
	       "1 message\n");
}

/* ------------------------------------------------------------------------
 * fork and exec: a parent thread blocked in read() on a pipe while a fork
 * child closes its copy of the read end, makes the write end its stdout
 * and execs a program that writes to it. */

static void fork_close_one(int raw_close)
{
	int p[2];
	char buf[16];
	struct job j;

	SYS(pipe(p));
	job_start(&j, job_read, p[0], buf, sizeof buf);
	job_blocked(&j);
	fflush(stdout);
	pid_t pid = (pid_t)SYS(fork());
	if (pid == 0) {
		if (raw_close)
			syscall(SYS_close, p[0]);
		else
			close(p[0]);
		dup2(p[1], 1);
		close(p[1]);
		execl("/proc/self/exe", "io_edge", "--child", "say", (char *)NULL);
		_exit(127);
	}
	SYS(close(p[1]));
	if (job_join(&j) != 3 || memcmp(buf, "hi\n", 3) != 0)
		FAIL("fork child %s the read end: the parent's blocked read returned %ld (%s), want "
		     "the child's 3 bytes", raw_close ? "closed (raw system call)" : "closed",
		     j.ret, j.ret < 0 ? en(j.err) : "no error");
	CHECK(SYS(read(p[0], buf, sizeof buf)) == 0);
	reap(pid, "the writing child");
	SYS(close(p[0]));
}

static void t_fork_close(void)
{
	fork_close_one(0);
	fork_close_one(1);
	printf("a thread blocked in read() on a pipe while a fork child closed its copy of the "
	       "read end (close(), then a raw close system call) and exec'd a writer: it got the "
	       "child's bytes, then EOF\n");
}

/* A program exec'd by a fork child (the execve system call made
 * directly, or execv) sees the program's blocking pipe as blocking; the
 * parent then still uses the pipe and its duplicate as before. */
static void t_fork_exec_flags(void)
{
	int p[2], d, st;
	char fdarg[16], buf[16];
	char *argv[] = { "io_edge", "--child", "fdflags", fdarg, NULL };
	struct job j;

	SYS(pipe(p));
	d = (int)SYS(fcntl(p[0], F_DUPFD_CLOEXEC, 0));
	snprintf(fdarg, sizeof fdarg, "%d", p[0]);
	/* The execve system call first: an execv wrapper that changed the
	 * shared description would hide what the other child sees. */
	for (int raw = 1; raw >= 0; raw--) {
		fflush(stdout);
		pid_t pid = (pid_t)SYS(fork());
		if (pid == 0) {
			if (raw)
				syscall(SYS_execve, "/proc/self/exe", argv, environ);
			else
				execv("/proc/self/exe", argv);
			_exit(127);
		}
		if (waitpid(pid, &st, 0) != pid)
			FAIL("waitpid: %s", en(errno));
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			FAIL("a program exec'd (%s) after fork: the inherited pipe %s (status %#x)",
			     raw ? "execve system call" : "execv",
			     WIFEXITED(st) && WEXITSTATUS(st) == 1 ? "has O_NONBLOCK set"
								  : "could not be checked", st);
	}
	CHECK(!is_nonblock(p[0]) && !is_nonblock(d));

	/* The parent's pipe still blocks and wakes its reader. */
	job_start(&j, job_read, p[0], buf, sizeof buf);
	job_blocked(&j);
	CHECK(SYS(write(p[1], "0123456789", 10)) == 10);
	if (job_join(&j) != 10 || memcmp(buf, "0123456789", 10) != 0)
		FAIL("after fork and exec: a blocked read returned %ld (%s), want 10", j.ret,
		     en(j.err));
	/* O_NONBLOCK set through the duplicate: the pipe's description has it. */
	SYS(fcntl(d, F_SETFL, O_NONBLOCK));
	CHECK(is_nonblock(p[0]));
	CHECK_ERRNO(read(p[0], buf, sizeof buf), EAGAIN);
	SYS(close(d));
	SYS(close(p[0]));
	SYS(close(p[1]));
	printf("programs exec'd after fork (by the execve system call, by execv) saw the inherited "
	       "pipe blocking; the parent's reader then still got what was written, and O_NONBLOCK "
	       "set on its duplicate made read() return -1 EAGAIN\n");
}

/* ------------------------------------------------------------------------
 * system(): the command's stdin and stdout are pipes of the program's,
 * which must be blocking there: the command reads stdin before the data is
 * written. */

struct feeder {
	int in, out;	/* the program's ends: write to in, read from out */
	char got[16];	/* what the command wrote: "ready\nhello\n" */
	size_t n;
	int wrote;	/* the input was written */
};

/* Reads the command's output until EOF (the command has exited) or n
 * bytes in all. */
static void feeder_read(struct feeder *f, size_t n)
{
	while (f->n < n) {
		ssize_t r = read(f->out, f->got + f->n, n - f->n);
		if (r < 0)
			FAIL("system: reading the command's output: %s", en(errno));
		if (r == 0)
			break;
		f->n += (size_t)r;
	}
}

/* Waits for "ready\n", then 100 ms (the command waits for its input
 * meanwhile), writes "hello\n" and reads the echo. If the command fails
 * first, its output ends early: the main thread reports its status. */
static void *feeder_thread(void *arg)
{
	struct feeder *f = arg;
	feeder_read(f, 6);
	if (f->n < 6 || memcmp(f->got, "ready\n", 6) != 0)
		return NULL;
	sleep_ms(100);
	if (write(f->in, "hello\n", 6) != 6)
		FAIL("system: writing the command's input: %s", en(errno));
	f->wrote = 1;
	feeder_read(f, 12);
	return NULL;
}

static void t_system(void)
{
	char self[PATH_MAX], cmd[3 * PATH_MAX + 64], *o = cmd;
	int in[2], out[2];
	struct feeder f;
	pthread_t t;

	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n <= 0)
		FAIL("readlink /proc/self/exe: %s", en(errno));
	self[n] = 0;
	SYS(pipe(in));
	SYS(pipe(out));
	set_cloexec(in[1]);
	set_cloexec(out[0]);
	/* exec FILE --child filter <&IN >&OUT, FILE in single quotes. */
	o += sprintf(o, "exec '");
	for (const char *s = self; *s; s++)
		o += *s == '\'' ? sprintf(o, "'\\''") : sprintf(o, "%c", *s);
	sprintf(o, "' --child filter <&%d >&%d", in[0], out[1]);

	memset(&f, 0, sizeof f);
	f.in = in[1];
	f.out = out[0];
	CHECK0(pthread_create(&t, NULL, feeder_thread, &f));
	fflush(stdout);
	int st = system(cmd);
	SYS(close(in[0]));
	SYS(close(out[1]));	/* the feeder sees EOF */
	CHECK0(pthread_join(t, NULL));
	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		const char *why = "";
		if (st != -1 && WIFEXITED(st))
			switch (WEXITSTATUS(st)) {
			case 3: why = ": its stdin has O_NONBLOCK set"; break;
			case 4: why = ": its stdout has O_NONBLOCK set"; break;
			case 5: why = ": reading stdin returned EAGAIN"; break;
			}
		FAIL("system(\"exec ... <&%d >&%d\"): status %#x%s", in[0], out[1], st, why);
	}
	if (!f.wrote || f.n != 12 || memcmp(f.got, "ready\nhello\n", 12) != 0)
		FAIL("system: the command wrote %zu bytes, want ready and hello", f.n);
	SYS(close(in[1]));
	SYS(close(out[0]));
	printf("system(): a command whose stdin and stdout are pipes of the program found them "
	       "blocking; its read waited for the input written 100 ms later and it echoed it\n");
}

/* ------------------------------------------------------------------------
 * A signal handler that writes: a timer signal every 50 us while four
 * threads use a mutex and a condition variable; the handler write()s one
 * byte to /dev/null, then to a non-blocking pipe nobody reads. The signal
 * lands on whichever thread runs, at any point of the threads' calls. */

#define WORKERS 4
#define WORK_MIN 100000	/* iterations per thread, at least */
#define HITS_MIN 300	/* and until the handler has run this often */

static int handler_fd;
static long hits;
static pthread_mutex_t work_m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t work_c = PTHREAD_COND_INITIALIZER;
static long work_count;

static void on_usr2(int sig)
{
	int e = errno;
	(void)sig;
	if (write(handler_fd, "x", 1) < 0 && errno != EAGAIN)
		abort();
	__atomic_add_fetch(&hits, 1, __ATOMIC_RELAXED);
	errno = e;
}

static void *worker(void *arg)
{
	long i;
	(void)arg;
	for (i = 0; i < WORK_MIN || __atomic_load_n(&hits, __ATOMIC_RELAXED) < HITS_MIN; i++) {
		CHECK0(pthread_mutex_lock(&work_m));
		work_count++;
		CHECK0(pthread_cond_signal(&work_c));
		CHECK0(pthread_mutex_unlock(&work_m));
		if (i % 64 == 0)
			sched_yield();
	}
	return (void *)i;
}

static void handler_writes(int fd)
{
	struct sigaction sa;
	struct sigevent sev;
	struct itimerspec it;
	timer_t timer;
	pthread_t t[WORKERS];
	long total = 0;

	handler_fd = fd;
	hits = 0;
	work_count = 0;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_usr2;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	SYS(sigaction(SIGUSR2, &sa, NULL));
	memset(&sev, 0, sizeof sev);
	sev.sigev_notify = SIGEV_SIGNAL;
	sev.sigev_signo = SIGUSR2;
	SYS(timer_create(CLOCK_MONOTONIC, &sev, &timer));
	memset(&it, 0, sizeof it);
	it.it_value.tv_nsec = 50000;
	it.it_interval.tv_nsec = 50000;
	SYS(timer_settime(timer, 0, &it, NULL));
	for (int i = 0; i < WORKERS; i++)
		CHECK0(pthread_create(&t[i], NULL, worker, NULL));
	for (int i = 0; i < WORKERS; i++) {
		void *n;
		CHECK0(pthread_join(t[i], &n));
		total += (long)n;
	}
	SYS(timer_delete(timer));
	sa.sa_handler = SIG_IGN;	/* (one may still be pending) */
	SYS(sigaction(SIGUSR2, &sa, NULL));
	if (work_count != total)
		FAIL("handler writes: the mutex-protected count is %ld, want %ld", work_count, total);
	CHECK(__atomic_load_n(&hits, __ATOMIC_RELAXED) >= HITS_MIN);
}

static void t_handler_write(void)
{
	int p[2];
	int null = (int)SYS(open("/dev/null", O_WRONLY | O_CLOEXEC));
	handler_writes(null);
	SYS(close(null));
	SYS(pipe2(p, O_NONBLOCK | O_CLOEXEC));
	handler_writes(p[1]);
	SYS(close(p[0]));
	SYS(close(p[1]));
	printf("a signal handler calling write() every 50 us (to /dev/null, then to a non-blocking "
	       "pipe) while %d threads locked a mutex and signalled a condition variable: "
	       "no hang, every increment counted\n", WORKERS);
}

/* ------------------------------------------------------------------------ */

static const struct {
	const char *name;
	void (*fn)(void);
} cases[] = {
	/* First: the main thread must be the only thread. */
	{ "main_signal", t_main_signal },
	{ "errno", t_errno },
	{ "dontwait", t_dontwait },
	{ "waitall_dgram", t_waitall_dgram },
	{ "unix_backlog", t_unix_backlog },
	{ "accept_timeo", t_accept_timeo },
	{ "mmsg_timeout", t_mmsg_timeout },
	{ "fork_close", t_fork_close },
	{ "fork_exec_flags", t_fork_exec_flags },
	{ "system", t_system },
	{ "handler_write", t_handler_write },
};

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "--child") == 0)
		child_main(argc, argv);
	legacy_start();
	signal(SIGPIPE, SIG_IGN);
	for (unsigned i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int run = argc < 2;
		for (int a = 1; a < argc && !run; a++)
			run = strcmp(argv[a], cases[i].name) == 0;
		if (run)
			cases[i].fn();
	}
	printf("io_edge: all checks passed\n");
	return 0;
}
