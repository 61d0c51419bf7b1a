/* Blocking I/O on sockets and pipes with several threads, as POSIX and
 * Linux define it: a reader blocked before the data is written, partial
 * reads, one blocking write() of 4 MiB to a slow reader, EOF and EPIPE
 * (SIGPIPE ignored and handled), ECONNRESET, SO_RCVTIMEO/SO_SNDTIMEO, the
 * program's own O_NONBLOCK (fcntl, ioctl FIONBIO, dup'ed descriptors),
 * shutdown() and close() from another thread while one is blocked, accept
 * and accept4 (several threads on one listener), connect (refused,
 * non-blocking), poll/ppoll/select/pselect, epoll_wait in several threads,
 * send/recv/sendto/recvfrom/sendmsg/recvmsg (SCM_RIGHTS)/readv/writev/
 * sendmmsg/recvmmsg, descriptor numbers reused after close and dup2, and
 * 200 socketpairs echoed by 400 threads. See legacy.h for the conventions.
 * EINTR from a signal sent to the blocked thread is tests/legacy/eintr's. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include "legacy.h"
#include "legacy_job.h"

/* ------------------------------------------------------------------------
 * Helpers. */

/* A system call that must fail with errno want; prints "what: -1 NAME". */
#define EXPECT_ERRNO(what, call, want) \
	do { errno = 0; long r_ = (long)(call); int e_ = errno; \
	     if (r_ != -1 || e_ != (want)) \
		FAIL("%s:%d: %s: returned %ld (%s), want -1 %s", __FILE__, __LINE__, (what), r_, \
		     r_ == -1 ? en(e_) : "no error", en(want)); \
	     printf("%s: -1 %s\n", (what), en(want)); \
	} while (0)

/* At least ms milliseconds have passed on CLOCK_MONOTONIC since t0. */
#define CHECK_WAITED(t0, ms) \
	do { struct timespec dl_ = ts_plus((t0), (ms)); \
	     CHECK_DEADLINE_PASSED(CLOCK_MONOTONIC, &dl_); } while (0)

/* The kernel keeps SO_RCVTIMEO and SO_SNDTIMEO in whole jiffies: the value
 * read back may be rounded up by one (10 ms at HZ=100) when the HZ does not
 * divide it. (The timeouts themselves are never early: the timer wheel
 * rounds expiry times up.) */
#define JIFFY_MS 10

static void set_nonblock(int fd, int on)
{
	int fl = (int)SYS(fcntl(fd, F_GETFL));
	SYS(fcntl(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK));
}

static void write_full(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n > 0) {
		ssize_t r = write(fd, c, n);
		if (r <= 0)
			FAIL("write_full: write returned %zd (%s)", r, en(errno));
		c += r;
		n -= (size_t)r;
	}
}

/* Reads exactly n bytes; returns 0 at EOF before the first byte. */
static size_t read_full(int fd, void *p, size_t n)
{
	char *c = p;
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, c + got, n - got);
		if (r == 0 && got == 0)
			return 0;
		if (r <= 0)
			FAIL("read_full: read returned %zd (%s) after %zu of %zu bytes", r,
			     en(errno), got, n);
		got += (size_t)r;
	}
	return got;
}

/* A descriptor number that is surely not open, chosen far above the ones
 * the program (or a runtime underneath it) allocates, so that no other
 * thread can open it between the check and its use. It was open for a
 * moment: the descriptor table covers it (select ignores numbers past the
 * end of the table instead of reporting EBADF). */
static int closed_fd(void)
{
	for (int fd = 600; fd < 1000; fd++)
		if (fcntl(fd, F_GETFD) == -1 && errno == EBADF) {
			SYS(dup2(1, fd));
			SYS(close(fd));
			return fd;
		}
	FAIL("no free descriptor number in [600, 1000)");
}

static int tcp_connect(const struct sockaddr_in *a)
{
	int fd = (int)SYS(socket(AF_INET, SOCK_STREAM, 0));
	SYS(connect(fd, (const struct sockaddr *)a, sizeof *a));
	return fd;
}

/* A connected TCP pair over loopback. */
static void tcp_pair(int *client, int *server)
{
	struct sockaddr_in a;
	int l = tcp_listener(&a, 4);
	*client = tcp_connect(&a);
	*server = (int)SYS(accept(l, NULL, NULL));
	SYS(close(l));
}

static int udp_socket(struct sockaddr_in *a)
{
	int fd = (int)SYS(socket(AF_INET, SOCK_DGRAM, 0));
	socklen_t len = sizeof *a;
	memset(a, 0, sizeof *a);
	a->sin_family = AF_INET;
	a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	SYS(bind(fd, (struct sockaddr *)a, sizeof *a));
	SYS(getsockname(fd, (struct sockaddr *)a, &len));
	return fd;
}

JOB_FN(job_read, read(j->fd, j->buf, j->len))
JOB_FN(job_write, write(j->fd, j->buf, j->len))
JOB_FN(job_recv, recv(j->fd, j->buf, j->len, j->flags))
JOB_FN(job_readv, readv(j->fd, j->iov, 3))
JOB_FN(job_accept, accept(j->fd, NULL, NULL))
JOB_FN(job_accept4, accept4(j->fd, NULL, NULL, j->flags))
JOB_FN(job_recvfrom, (j->addrlen = sizeof j->addr,
		      recvfrom(j->fd, j->buf, j->len, 0, (struct sockaddr *)&j->addr, &j->addrlen)))
JOB_FN(job_recvmmsg, recvmmsg(j->fd, j->mm, 3, j->flags, NULL))
JOB_FN(job_poll, poll((struct pollfd *)j->buf, (nfds_t)j->len, -1))

/* A reader blocked in read() gets the bytes written afterwards. */
static void expect_blocked_read(const char *what, int rfd, int wfd)
{
	char buf[100];
	struct job j;
	job_start(&j, job_read, rfd, buf, sizeof buf);
	job_blocked(&j);
	CHECK(SYS(write(wfd, "0123456789", 10)) == 10);
	if (job_join(&j) != 10 || memcmp(buf, "0123456789", 10) != 0)
		FAIL("%s: blocked read returned %ld (%s), want 10", what, j.ret, en(j.err));
	printf("%s: a reader blocked in read() got the 10 bytes written later "
	       "(a partial read of its 100-byte buffer)\n", what);
}

/* ------------------------------------------------------------------------
 * Blocked readers, partial reads. */

static void t_blocked_read(void)
{
	int sv[2], p[2];
	char buf[100];

	SYS(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	expect_blocked_read("socketpair", sv[0], sv[1]);
	CHECK(SYS(write(sv[1], "abcdefghij", 10)) == 10);
	CHECK(SYS(read(sv[0], buf, sizeof buf)) == 10);
	CHECK(memcmp(buf, "abcdefghij", 10) == 0);
	printf("socketpair: 10 bytes already there, read(100) returned 10\n");
	SYS(close(sv[0]));
	SYS(close(sv[1]));

	SYS(pipe(p));
	expect_blocked_read("pipe", p[0], p[1]);
	CHECK(SYS(write(p[1], "abcdefghij", 10)) == 10);
	CHECK(SYS(read(p[0], buf, 4)) == 4);
	CHECK(SYS(read(p[0], buf + 4, sizeof buf - 4)) == 6);
	CHECK(memcmp(buf, "abcdefghij", 10) == 0);
	printf("pipe: 10 bytes read as 4 then the remaining 6\n");
	SYS(close(p[0]));
	SYS(close(p[1]));

	int c, s;
	tcp_pair(&c, &s);
	expect_blocked_read("TCP loopback", c, s);
	CHECK(SYS(write(c, "back", 4)) == 4);
	CHECK(SYS(read(s, buf, sizeof buf)) == 4);
	SYS(close(c));
	SYS(close(s));
}

/* ------------------------------------------------------------------------
 * One blocking write of many bytes to a slow reader. */

static unsigned char pattern(size_t i)
{
	return (unsigned char)(i * 7 + (i >> 12) * 13 + (i >> 20));
}

/* FNV-1a, from 2166136261. */
#define CHECKSUM_INIT 2166136261u
static uint32_t checksum(uint32_t sum, unsigned char b)
{
	return (sum ^ b) * 16777619u;
}

struct slow {
	int fd;
	size_t total;
	size_t got;
	uint32_t sum;
	long eof;
};

static void *slow_reader(void *arg)
{
	struct slow *s = arg;
	unsigned char buf[4096];
	unsigned n = 0;

	sleep_ms(20);	/* let the writer fill the buffer and block */
	while (s->got < s->total) {
		size_t want = s->total - s->got < sizeof buf ? s->total - s->got : sizeof buf;
		ssize_t r = read(s->fd, buf, want);
		if (r <= 0)
			FAIL("slow reader: read returned %zd (%s) after %zu bytes", r, en(errno),
			     s->got);
		for (ssize_t i = 0; i < r; i++) {
			if (buf[i] != pattern(s->got + (size_t)i))
				FAIL("slow reader: byte %zu is %u, want %u", s->got + (size_t)i,
				     buf[i], pattern(s->got + (size_t)i));
			s->sum = checksum(s->sum, buf[i]);
		}
		s->got += (size_t)r;
		if (++n % 64 == 0)
			sleep_ms(1);
	}
	s->eof = read(s->fd, buf, sizeof buf);	/* 0 once the writer closes */
	return NULL;
}

static void slow_reader_case(const char *what, int rfd, int wfd, size_t total)
{
	unsigned char *data = malloc(total);
	struct slow s = { rfd, total, 0, CHECKSUM_INIT, -2 };
	pthread_t t;
	uint32_t want = CHECKSUM_INIT;

	CHECK(data != NULL);
	for (size_t i = 0; i < total; i++) {
		data[i] = pattern(i);
		want = checksum(want, data[i]);
	}
	CHECK0(pthread_create(&t, NULL, slow_reader, &s));
	ssize_t w = write(wfd, data, total);
	if (w != (ssize_t)total)
		FAIL("%s: write of %zu bytes returned %zd (%s)", what, total, w, en(errno));
	SYS(close(wfd));
	CHECK0(pthread_join(t, NULL));
	if (s.got != total || s.sum != want)
		FAIL("%s: reader got %zu bytes, checksum %08x, want %zu, %08x", what, s.got,
		     s.sum, total, want);
	if (s.eof != 0)
		FAIL("%s: read after the writer closed returned %ld, want 0", what, s.eof);
	printf("%s: one blocking write() of %zu bytes returned %zd; a slow reader got them all "
	       "intact (checksum %08x), then EOF\n", what, total, w, s.sum);
	SYS(close(rfd));
	free(data);
}

static void t_slow_reader(void)
{
	int sv[2], p[2];
	SYS(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	slow_reader_case("socketpair", sv[0], sv[1], 4u << 20);
	SYS(pipe(p));
	slow_reader_case("pipe", p[0], p[1], 1u << 20);
	int c, s;
	tcp_pair(&c, &s);
	slow_reader_case("TCP loopback", c, s, 4u << 20);
}

/* ------------------------------------------------------------------------
 * Peer close: EOF, EPIPE, SIGPIPE. */

static volatile sig_atomic_t sigpipes;

static void on_sigpipe(int sig)
{
	(void)sig;
	sigpipes++;
}

/* Fills a socket's or a pipe's buffer, with O_NONBLOCK set for the time. */
static void fill(int fd)
{
	static char junk[4096];
	set_nonblock(fd, 1);
	for (;;) {
		ssize_t r = write(fd, junk, sizeof junk);
		if (r == -1 && errno == EAGAIN)
			break;
		if (r <= 0)
			FAIL("fill: write returned %zd (%s)", r, en(errno));
	}
	/* Small writes until not even one byte fits. */
	for (;;) {
		ssize_t r = write(fd, junk, 1);
		if (r == -1 && errno == EAGAIN)
			break;
		if (r != 1)
			FAIL("fill: write of 1 byte returned %zd (%s)", r, en(errno));
	}
	set_nonblock(fd, 0);
}

static void t_peer_close(void)
{
	int sv[2], p[2];
	char buf[16];
	struct job j;

	SYS(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	job_start(&j, job_read, sv[0], buf, sizeof buf);
	job_blocked(&j);
	SYS(close(sv[1]));
	if (job_join(&j) != 0)
		FAIL("socketpair peer close: blocked read returned %ld (%s), want 0", j.ret,
		     en(j.err));
	printf("socketpair: a reader blocked in read() got 0 (EOF) when the peer closed\n");
	CHECK(SYS(read(sv[0], buf, sizeof buf)) == 0);
	printf("socketpair: read after the peer closed: 0 again\n");
	EXPECT_ERRNO("socketpair: write to a closed peer, SIGPIPE ignored", write(sv[0], "x", 1),
		     EPIPE);
	SYS(close(sv[0]));

	SYS(pipe(p));
	job_start(&j, job_read, p[0], buf, sizeof buf);
	job_blocked(&j);
	SYS(close(p[1]));
	if (job_join(&j) != 0)
		FAIL("pipe writer close: blocked read returned %ld (%s), want 0", j.ret, en(j.err));
	printf("pipe: a reader blocked in read() got 0 (EOF) when the write end closed\n");
	SYS(close(p[0]));
	SYS(pipe(p));
	SYS(close(p[0]));
	EXPECT_ERRNO("pipe: write with the read end closed, SIGPIPE ignored", write(p[1], "x", 1),
		     EPIPE);
	SYS(close(p[1]));

	/* SIGPIPE handled: it is sent to the thread that wrote. */
	struct sigaction sa, old;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_sigpipe;
	sigemptyset(&sa.sa_mask);
	SYS(sigaction(SIGPIPE, &sa, &old));

	SYS(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	SYS(close(sv[1]));
	sigpipes = 0;
	EXPECT_ERRNO("socketpair: write to a closed peer, SIGPIPE handled", write(sv[0], "x", 1),
		     EPIPE);
	if (sigpipes != 1)
		FAIL("SIGPIPE handler ran %d times, want 1", (int)sigpipes);
	printf("SIGPIPE handler ran once\n");
	EXPECT_ERRNO("send(MSG_NOSIGNAL) to a closed peer", send(sv[0], "x", 1, MSG_NOSIGNAL),
		     EPIPE);
	if (sigpipes != 1)
		FAIL("SIGPIPE handler ran %d times after MSG_NOSIGNAL, want 1", (int)sigpipes);
	printf("MSG_NOSIGNAL: no SIGPIPE\n");
	SYS(close(sv[0]));

	/* A writer blocked on a full pipe; the reader closes. */
	SYS(pipe(p));
	fill(p[1]);
	sigpipes = 0;
	job_start(&j, job_write, p[1], "x", 1);
	job_blocked(&j);
	SYS(close(p[0]));
	if (job_join(&j) != -1 || j.err != EPIPE)
		FAIL("blocked write, reader closed: returned %ld (%s), want -1 EPIPE", j.ret,
		     en(j.err));
	if (sigpipes != 1)
		FAIL("blocked write, reader closed: SIGPIPE handler ran %d times, want 1",
		     (int)sigpipes);
	printf("pipe: a writer blocked on a full pipe got EPIPE when the read end closed; "
	       "its SIGPIPE handler ran once\n");
	SYS(close(p[1]));

	/* A writer blocked on a full socket; the peer closes with that data
	 * unread, which Linux reports to the writer as a reset: the close sets
	 * the socket's error (ECONNRESET), which the blocked write sees first,
	 * with no SIGPIPE. (A write begun after the close would get EPIPE and
	 * SIGPIPE instead, so a runtime that retries the write after the wakeup
	 * has to look at SO_ERROR first.) */
	SYS(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	fill(sv[0]);
	sigpipes = 0;
	job_start(&j, job_write, sv[0], "x", 1);
	job_blocked(&j);
	SYS(close(sv[1]));
	if (job_join(&j) != -1 || j.err != ECONNRESET)
		FAIL("blocked write, peer closed: returned %ld (%s), want -1 ECONNRESET", j.ret,
		     en(j.err));
	if (sigpipes != 0)
		FAIL("blocked write, peer closed: SIGPIPE handler ran %d times, want 0",
		     (int)sigpipes);
	printf("socketpair: a writer blocked on a full buffer got ECONNRESET (no SIGPIPE) when "
	       "the peer closed with data unread\n");
	SYS(close(sv[0]));
	SYS(sigaction(SIGPIPE, &old, NULL));
}

/* ------------------------------------------------------------------------
 * Connection reset. */

static void t_reset(void)
{
	int c, s;
	char buf[16];
	struct job j;
	struct linger lg = { 1, 0 };

	tcp_pair(&c, &s);
	job_start(&j, job_read, c, buf, sizeof buf);
	job_blocked(&j);
	SYS(setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg));
	SYS(close(s));
	if (job_join(&j) != -1 || j.err != ECONNRESET)
		FAIL("reset: blocked read returned %ld (%s), want -1 ECONNRESET", j.ret, en(j.err));
	printf("TCP: a reader blocked in read() got ECONNRESET when the peer closed with "
	       "SO_LINGER {1, 0}\n");
	SYS(close(c));
}

/* ------------------------------------------------------------------------
 * SO_RCVTIMEO and SO_SNDTIMEO. */

static void check_timeo_opt(int fd, int opt, const char *name)
{
	struct timeval tv;
	socklen_t len = sizeof tv;
	SYS(getsockopt(fd, SOL_SOCKET, opt, &tv, &len));
	CHECK(len == sizeof tv);
	long us = tv.tv_sec * 1000000L + tv.tv_usec;
	if (us < 100000 || us >= 100000 + JIFFY_MS * 1000)
		FAIL("getsockopt %s: %ld us, want 100000", name, us);
	printf("getsockopt %s: 100 ms, as set\n", name);
}

static void *rcvtimeo_thread(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[16];
	struct timespec t0 = mono();
	errno = 0;
	ssize_t r = read(fd, buf, sizeof buf);
	if (r != -1 || errno != EAGAIN)
		FAIL("SO_RCVTIMEO in a thread: read returned %zd (%s), want -1 EAGAIN", r, en(errno));
	CHECK_WAITED(t0, 100);
	return NULL;
}

static void t_timeouts(void)
{
	int sv[2];
	char buf[16];
	struct timeval tv = { 0, 100000 };
	struct timespec t0;

	SYS(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	SYS(setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));
	check_timeo_opt(sv[0], SO_RCVTIMEO, "SO_RCVTIMEO");
	t0 = mono();
	EXPECT_ERRNO("SO_RCVTIMEO 100 ms, no data: read", read(sv[0], buf, sizeof buf), EAGAIN);
	CHECK_WAITED(t0, 100);
	t0 = mono();
	EXPECT_ERRNO("SO_RCVTIMEO 100 ms, no data: recv", recv(sv[0], buf, sizeof buf, 0), EAGAIN);
	CHECK_WAITED(t0, 100);
	run_in_thread(rcvtimeo_thread, (void *)(intptr_t)sv[0]);
	printf("SO_RCVTIMEO 100 ms, no data: read in another thread: -1 EAGAIN\n");

	/* Data within the timeout is returned. */
	struct timeval tv1 = { 5, 0 };
	struct job j;
	SYS(setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv1, sizeof tv1));
	job_start(&j, job_read, sv[0], buf, sizeof buf);
	job_blocked(&j);
	CHECK(SYS(write(sv[1], "in time", 7)) == 7);
	if (job_join(&j) != 7 || memcmp(buf, "in time", 7) != 0)
		FAIL("SO_RCVTIMEO 5 s: read returned %ld (%s), want 7", j.ret, en(j.err));
	printf("SO_RCVTIMEO 5 s, data written after 50 ms: read returned 7\n");

	/* SO_SNDTIMEO: the first big write fills the buffer and returns what
	 * it wrote (or EAGAIN if nothing fit), the next one times out. */
	static char big[1 << 20];
	SYS(setsockopt(sv[1], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv));
	check_timeo_opt(sv[1], SO_SNDTIMEO, "SO_SNDTIMEO");
	errno = 0;
	ssize_t w = write(sv[1], big, sizeof big);
	if (!((w > 0 && w < (ssize_t)sizeof big) || (w == -1 && errno == EAGAIN)))
		FAIL("SO_SNDTIMEO: first write of %zu returned %zd (%s), want a partial count or "
		     "-1 EAGAIN", sizeof big, w, en(errno));
	printf("SO_SNDTIMEO 100 ms: a 1 MiB write returned a partial count or -1 EAGAIN\n");
	t0 = mono();
	EXPECT_ERRNO("SO_SNDTIMEO 100 ms, full socket: write", write(sv[1], big, sizeof big),
		     EAGAIN);
	CHECK_WAITED(t0, 100);
	SYS(close(sv[0]));
	SYS(close(sv[1]));

	/* accept honours SO_RCVTIMEO as well. */
	struct sockaddr_in a;
	int l = tcp_listener(&a, 4);
	SYS(setsockopt(l, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));
	t0 = mono();
	EXPECT_ERRNO("SO_RCVTIMEO 100 ms on a listener: accept", accept(l, NULL, NULL), EAGAIN);
	CHECK_WAITED(t0, 100);
	SYS(close(l));
}

/* ------------------------------------------------------------------------
 * The program's own O_NONBLOCK. */

static void t_nonblock(void)
{
	int p[2], sv[2];
	char buf[16];

	SYS(pipe(p));
	CHECK(((int)SYS(fcntl(p[0], F_GETFL)) & O_ACCMODE) == O_RDONLY);
	CHECK(((int)SYS(fcntl(p[1], F_GETFL)) & O_ACCMODE) == O_WRONLY);
	if (is_nonblock(p[0]) || is_nonblock(p[1]))
		FAIL("new pipe: O_NONBLOCK set");
	printf("new pipe: F_GETFL: O_NONBLOCK not set\n");
	expect_blocked_read("pipe before O_NONBLOCK", p[0], p[1]);
	if (is_nonblock(p[0]) || is_nonblock(p[1]))
		FAIL("pipe after a blocking read: O_NONBLOCK set");
	CHECK(((int)SYS(fcntl(p[0], F_GETFL)) & O_ACCMODE) == O_RDONLY);
	printf("pipe after a blocking read: F_GETFL: O_NONBLOCK not set\n");

	set_nonblock(p[0], 1);
	CHECK(is_nonblock(p[0]));
	CHECK(!is_nonblock(p[1]));
	printf("pipe: F_SETFL O_NONBLOCK on the read end: F_GETFL shows it there only\n");
	EXPECT_ERRNO("pipe with O_NONBLOCK, no data: read", read(p[0], buf, sizeof buf), EAGAIN);
	/* O_NONBLOCK belongs to the open file description, which dup shares. */
	int d = (int)SYS(dup(p[0]));
	CHECK(is_nonblock(d));
	EXPECT_ERRNO("dup of it (same open file description): read", read(d, buf, sizeof buf),
		     EAGAIN);
	set_nonblock(d, 0);
	if (is_nonblock(p[0]) || is_nonblock(d))
		FAIL("O_NONBLOCK cleared through the dup: still set");
	printf("O_NONBLOCK cleared through the dup: F_GETFL clear on both\n");
	expect_blocked_read("pipe after O_NONBLOCK was cleared", p[0], p[1]);
	SYS(close(d));

	int one = 1, zero = 0;
	SYS(ioctl(p[0], FIONBIO, &one));
	CHECK(is_nonblock(p[0]));
	EXPECT_ERRNO("pipe after ioctl FIONBIO 1: read", read(p[0], buf, sizeof buf), EAGAIN);
	SYS(ioctl(p[0], FIONBIO, &zero));
	CHECK(!is_nonblock(p[0]));
	printf("ioctl FIONBIO 1 then 0: F_GETFL shows O_NONBLOCK set then clear\n");
	expect_blocked_read("pipe after FIONBIO 0", p[0], p[1]);

	/* A full pipe with O_NONBLOCK on the write end. */
	set_nonblock(p[1], 1);
	static char junk[4096];
	long total = 0;
	for (;;) {
		ssize_t r = write(p[1], junk, sizeof junk);
		if (r == -1 && errno == EAGAIN)
			break;
		if (r <= 0)
			FAIL("filling a non-blocking pipe: write returned %zd (%s)", r, en(errno));
		total += r;
	}
	CHECK(total > 0);
	printf("non-blocking write end: writes until -1 EAGAIN when the pipe is full\n");
	set_nonblock(p[1], 0);
	CHECK(!is_nonblock(p[1]));
	SYS(close(p[0]));
	SYS(close(p[1]));

	SYS(pipe2(p, O_NONBLOCK));
	CHECK(is_nonblock(p[0]) && is_nonblock(p[1]));
	EXPECT_ERRNO("pipe2(O_NONBLOCK): read", read(p[0], buf, sizeof buf), EAGAIN);
	SYS(close(p[0]));
	SYS(close(p[1]));

	SYS(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv));
	CHECK(is_nonblock(sv[0]) && is_nonblock(sv[1]));
	EXPECT_ERRNO("socketpair(SOCK_NONBLOCK): read", read(sv[0], buf, sizeof buf), EAGAIN);
	SYS(close(sv[0]));
	SYS(close(sv[1]));
	SYS(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	CHECK(!is_nonblock(sv[0]) && !is_nonblock(sv[1]));
	expect_blocked_read("plain socketpair", sv[0], sv[1]);
	CHECK(!is_nonblock(sv[0]) && !is_nonblock(sv[1]));
	set_nonblock(sv[0], 1);
	EXPECT_ERRNO("socketpair with O_NONBLOCK set by fcntl: recv", recv(sv[0], buf, sizeof buf, 0),
		     EAGAIN);
	set_nonblock(sv[0], 0);
	CHECK(!is_nonblock(sv[0]));
	SYS(close(sv[0]));
	SYS(close(sv[1]));
	int s = (int)SYS(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0));
	CHECK(is_nonblock(s));
	SYS(close(s));
	s = (int)SYS(socket(AF_INET, SOCK_STREAM, 0));
	CHECK(!is_nonblock(s));
	SYS(close(s));
	printf("socket/socketpair/pipe2: F_GETFL shows O_NONBLOCK exactly when it was asked for\n");
}

/* ------------------------------------------------------------------------
 * shutdown() and close() from another thread. */

static void t_shutdown(void)
{
	static const struct { int how; const char *name; } hows[] = {
		{ SHUT_RD, "SHUT_RD" }, { SHUT_RDWR, "SHUT_RDWR" },
	};
	char buf[16];
	struct job j;

	for (unsigned i = 0; i < sizeof hows / sizeof hows[0]; i++) {
		int c, s;
		tcp_pair(&c, &s);
		job_start(&j, job_read, c, buf, sizeof buf);
		job_blocked(&j);
		SYS(shutdown(c, hows[i].how));
		if (job_join(&j) != 0)
			FAIL("TCP shutdown(%s): blocked read returned %ld (%s), want 0",
			     hows[i].name, j.ret, en(j.err));
		printf("TCP: shutdown(%s) by another thread: the blocked reader got 0\n",
		       hows[i].name);
		SYS(close(c));
		SYS(close(s));
	}

	int sv[2];
	SYS(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	job_start(&j, job_read, sv[0], buf, sizeof buf);
	job_blocked(&j);
	SYS(shutdown(sv[0], SHUT_RD));
	if (job_join(&j) != 0)
		FAIL("socketpair shutdown(SHUT_RD): blocked read returned %ld (%s), want 0", j.ret,
		     en(j.err));
	printf("socketpair: shutdown(SHUT_RD) by another thread: the blocked reader got 0\n");
	SYS(close(sv[0]));
	SYS(close(sv[1]));

	/* A listener shut down under a blocked accept. */
	struct sockaddr_in a;
	int l = tcp_listener(&a, 4);
	job_start(&j, job_accept, l, NULL, 0);
	job_blocked(&j);
	SYS(shutdown(l, SHUT_RDWR));
	if (job_join(&j) != -1 || j.err != EINVAL)
		FAIL("listener shutdown: blocked accept returned %ld (%s), want -1 EINVAL", j.ret,
		     en(j.err));
	printf("TCP listener: shutdown(SHUT_RDWR) by another thread: the blocked accept got "
	       "-1 EINVAL\n");
	SYS(close(l));
}

/* close() of the descriptor a reader is blocked on. Natively Linux leaves
 * the reader blocked (the read holds its own reference to the file); a
 * runtime that parks the reader may wake it with EBADF instead. Either is
 * accepted: the file was dup'ed first and the dup is shut down 200 ms
 * later, which wakes a reader still blocked with 0. */
static void t_close_while_blocked(void)
{
	int c, s;
	char buf[16];
	struct job j;

	tcp_pair(&c, &s);
	int d = (int)SYS(dup(c));
	job_start(&j, job_read, c, buf, sizeof buf);
	job_blocked(&j);
	SYS(close(c));
	sleep_ms(200);
	SYS(shutdown(d, SHUT_RDWR));
	job_join(&j);
	if (!(j.ret == 0 || (j.ret == -1 && j.err == EBADF)))
		FAIL("close while blocked: read returned %ld (%s), want 0 or -1 EBADF", j.ret,
		     en(j.err));
	printf("close() by another thread while a reader was blocked in read(): reader woke\n");
	SYS(close(d));
	SYS(close(s));
}

/* ------------------------------------------------------------------------
 * accept. */

#define NACCEPT 8

static struct {
	pthread_mutex_t m;
	int seen[NACCEPT];
	int bad;
} acc = { PTHREAD_MUTEX_INITIALIZER };

static void *acceptor(void *arg)
{
	struct job *j = arg;
	unsigned char id;
	job_about_to_block(j);
	int fd = accept(j->fd, NULL, NULL);
	if (fd < 0)
		FAIL("acceptor: accept returned %d (%s)", fd, en(errno));
	if (read_full(fd, &id, 1) != 1)
		FAIL("acceptor: EOF before the id");
	CHECK0(pthread_mutex_lock(&acc.m));
	if (id < NACCEPT)
		acc.seen[id]++;
	else
		acc.bad++;
	CHECK0(pthread_mutex_unlock(&acc.m));
	SYS(close(fd));
	return NULL;
}

static void t_accept(void)
{
	struct sockaddr_in a;
	struct job j;
	char buf[16];
	int l = tcp_listener(&a, 64);

	job_start(&j, job_accept, l, NULL, 0);
	job_blocked(&j);
	int c = tcp_connect(&a);
	int s = (int)job_join(&j);
	if (s < 0)
		FAIL("blocked accept returned %d (%s)", s, en(j.err));
	CHECK(!is_nonblock(s));
	CHECK(((int)SYS(fcntl(s, F_GETFD)) & FD_CLOEXEC) == 0);
	CHECK(SYS(write(c, "hi", 2)) == 2);
	CHECK(SYS(read(s, buf, sizeof buf)) == 2);
	printf("accept: a thread blocked in accept() got the connection made later "
	       "(no O_NONBLOCK, no FD_CLOEXEC); data flows\n");
	SYS(close(c));
	SYS(close(s));

	job_init(&j, l, NULL, 0);
	j.flags = SOCK_NONBLOCK | SOCK_CLOEXEC;
	job_run(&j, job_accept4);
	job_blocked(&j);
	c = tcp_connect(&a);
	s = (int)job_join(&j);
	if (s < 0)
		FAIL("blocked accept4 returned %d (%s)", s, en(j.err));
	CHECK(is_nonblock(s));
	CHECK(((int)SYS(fcntl(s, F_GETFD)) & FD_CLOEXEC) != 0);
	EXPECT_ERRNO("accept4(SOCK_NONBLOCK|SOCK_CLOEXEC): fd has O_NONBLOCK and FD_CLOEXEC; read",
		     read(s, buf, sizeof buf), EAGAIN);
	SYS(close(c));
	SYS(close(s));

	set_nonblock(l, 1);
	EXPECT_ERRNO("accept on a non-blocking listener, nothing pending", accept(l, NULL, NULL),
		     EAGAIN);
	set_nonblock(l, 0);

	/* Several threads blocked in accept on one listener. */
	struct job js[NACCEPT];
	for (int i = 0; i < NACCEPT; i++)
		job_start(&js[i], acceptor, l, NULL, 0);
	for (int i = 0; i < NACCEPT; i++)
		gate_await_waiters(&js[i].g, 1);
	sleep_ms(50);
	int cs[NACCEPT];
	for (int i = 0; i < NACCEPT; i++) {
		unsigned char id = (unsigned char)i;
		cs[i] = tcp_connect(&a);
		CHECK(SYS(write(cs[i], &id, 1)) == 1);
	}
	for (int i = 0; i < NACCEPT; i++)
		job_join(&js[i]);
	CHECK(acc.bad == 0);
	for (int i = 0; i < NACCEPT; i++)
		if (acc.seen[i] != 1)
			FAIL("connection %d accepted %d times", i, acc.seen[i]);
	printf("accept: %d threads blocked in accept() on one listener, %d connections: each "
	       "thread got exactly one\n", NACCEPT, NACCEPT);
	for (int i = 0; i < NACCEPT; i++)
		SYS(close(cs[i]));
	SYS(close(l));
}

/* ------------------------------------------------------------------------
 * connect. */

static void t_connect(void)
{
	struct sockaddr_in a, closed;
	char buf[16];
	int l = tcp_listener(&a, 4);

	int c = (int)SYS(socket(AF_INET, SOCK_STREAM, 0));
	long rc = connect(c, (struct sockaddr *)&a, sizeof a);
	if (rc != 0)
		FAIL("connect to a listening port: %s", en(errno));
	printf("connect to a listening loopback port: 0\n");
	int s = (int)SYS(accept(l, NULL, NULL));
	EXPECT_ERRNO("connect again on the connected socket", connect(c, (struct sockaddr *)&a,
		     sizeof a), EISCONN);
	SYS(close(c));
	SYS(close(s));

	/* A bound socket that is not listening: its port refuses. */
	int b = (int)SYS(socket(AF_INET, SOCK_STREAM, 0));
	socklen_t len = sizeof closed;
	memset(&closed, 0, sizeof closed);
	closed.sin_family = AF_INET;
	closed.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	SYS(bind(b, (struct sockaddr *)&closed, sizeof closed));
	SYS(getsockname(b, (struct sockaddr *)&closed, &len));
	c = (int)SYS(socket(AF_INET, SOCK_STREAM, 0));
	EXPECT_ERRNO("connect to a closed loopback port", connect(c, (struct sockaddr *)&closed,
		     sizeof closed), ECONNREFUSED);
	SYS(close(c));

	/* Non-blocking connect (the program set O_NONBLOCK). */
	c = (int)SYS(socket(AF_INET, SOCK_STREAM, 0));
	set_nonblock(c, 1);
	errno = 0;
	rc = connect(c, (struct sockaddr *)&a, sizeof a);
	if (!(rc == 0 || (rc == -1 && errno == EINPROGRESS)))
		FAIL("non-blocking connect: %ld (%s), want 0 or -1 EINPROGRESS", rc, en(errno));
	struct pollfd pf = { c, POLLOUT, 0 };
	CHECK(SYS(poll(&pf, 1, -1)) == 1);
	CHECK(pf.revents == POLLOUT);
	int soerr = -1;
	len = sizeof soerr;
	SYS(getsockopt(c, SOL_SOCKET, SO_ERROR, &soerr, &len));
	if (soerr != 0)
		FAIL("non-blocking connect: SO_ERROR %s", en(soerr));
	CHECK(is_nonblock(c));
	printf("non-blocking connect: 0 or EINPROGRESS, then POLLOUT and SO_ERROR 0\n");
	s = (int)SYS(accept(l, NULL, NULL));
	CHECK(SYS(write(s, "ok", 2)) == 2);
	pf.events = POLLIN;
	CHECK(SYS(poll(&pf, 1, -1)) == 1);
	CHECK(SYS(read(c, buf, sizeof buf)) == 2);
	EXPECT_ERRNO("non-blocking socket, data read, nothing more: read", read(c, buf, sizeof buf),
		     EAGAIN);
	SYS(close(c));
	SYS(close(s));

	c = (int)SYS(socket(AF_INET, SOCK_STREAM, 0));
	set_nonblock(c, 1);
	errno = 0;
	rc = connect(c, (struct sockaddr *)&closed, sizeof closed);
	int err = errno;
	if (rc == -1 && err == EINPROGRESS) {
		pf.fd = c;
		pf.events = POLLOUT;
		CHECK(SYS(poll(&pf, 1, -1)) == 1);
		CHECK((pf.revents & (POLLOUT | POLLERR)) != 0);
		len = sizeof soerr;
		SYS(getsockopt(c, SOL_SOCKET, SO_ERROR, &soerr, &len));
		err = soerr;
	} else if (rc != -1) {
		err = 0;
	}
	if (err != ECONNREFUSED)
		FAIL("non-blocking connect to a closed port: %s, want ECONNREFUSED", en(err));
	printf("non-blocking connect to a closed port: ECONNREFUSED (at once or as SO_ERROR)\n");
	SYS(close(c));
	SYS(close(b));
	SYS(close(l));
}

/* ------------------------------------------------------------------------
 * poll, ppoll, select, pselect. */

struct delayed_write {
	int fd;
	long ms;
};

static void *delayed_writer(void *arg)
{
	struct delayed_write *d = arg;
	sleep_ms(d->ms);
	CHECK(SYS(write(d->fd, "!", 1)) == 1);
	return NULL;
}

static void t_poll(void)
{
	int a[2], b[2], p[2];
	char buf[16];
	struct timespec t0;
	pthread_t t;

	SYS(socketpair(AF_UNIX, SOCK_STREAM, 0, a));
	SYS(socketpair(AF_UNIX, SOCK_STREAM, 0, b));

	struct pollfd pf[3] = { { a[0], POLLIN, 0 }, { b[0], POLLIN, 0 } };
	t0 = mono();
	CHECK(SYS(poll(pf, 2, 50)) == 0);
	CHECK_WAITED(t0, 50);
	CHECK(pf[0].revents == 0 && pf[1].revents == 0);
	printf("poll, no data, 50 ms: 0 after the timeout\n");

	t0 = mono();
	CHECK(SYS(poll(NULL, 0, 50)) == 0);
	CHECK_WAITED(t0, 50);
	printf("poll with no descriptors, 50 ms: 0 after the timeout\n");

	struct delayed_write dw = { b[1], 50 };
	CHECK0(pthread_create(&t, NULL, delayed_writer, &dw));
	long n = SYS(poll(pf, 2, -1));
	CHECK0(pthread_join(t, NULL));
	if (n != 1 || pf[0].revents != 0 || pf[1].revents != POLLIN)
		FAIL("poll: %ld, revents %#x %#x, want 1, 0 POLLIN", n, pf[0].revents,
		     pf[1].revents);
	printf("poll on two sockets, data on the second from another thread after 50 ms: 1, "
	       "POLLIN on the second only\n");
	CHECK(SYS(read(b[0], buf, sizeof buf)) == 1);

	/* A thread blocked in poll, woken by data. */
	struct pollfd pj[2] = { { a[0], POLLIN, 0 }, { b[0], POLLIN, 0 } };
	struct job j;
	job_start(&j, job_poll, -1, pj, 2);
	job_blocked(&j);
	CHECK(SYS(write(a[1], "x", 1)) == 1);
	if (job_join(&j) != 1 || pj[0].revents != POLLIN || pj[1].revents != 0)
		FAIL("blocked poll: %ld (%s), revents %#x %#x", j.ret, en(j.err), pj[0].revents,
		     pj[1].revents);
	printf("a thread blocked in poll: 1, POLLIN on the socket written\n");
	CHECK(SYS(read(a[0], buf, sizeof buf)) == 1);

	/* A pipe without data and a regular file (always ready). */
	char path[] = "/tmp/goshim-legacy-io-XXXXXX";
	int f = (int)SYS(mkstemp(path));
	SYS(unlink(path));
	CHECK(SYS(write(f, "file", 4)) == 4);
	SYS(pipe(p));
	pf[0] = (struct pollfd){ p[0], POLLIN, 0 };
	pf[1] = (struct pollfd){ f, POLLIN | POLLOUT, 0 };
	n = SYS(poll(pf, 2, -1));
	if (n != 1 || pf[0].revents != 0 || pf[1].revents != (POLLIN | POLLOUT))
		FAIL("poll pipe + file: %ld, revents %#x %#x", n, pf[0].revents, pf[1].revents);
	printf("poll on an empty pipe and a regular file, no timeout: 1 at once, the file "
	       "POLLIN|POLLOUT\n");

	/* Negative descriptors are ignored. */
	CHECK(SYS(write(a[1], "y", 1)) == 1);
	pf[0] = (struct pollfd){ -1, POLLIN, 0 };
	pf[1] = (struct pollfd){ a[0], POLLIN, 0 };
	pf[2] = (struct pollfd){ -5, POLLIN | POLLOUT, 0 };
	n = SYS(poll(pf, 3, -1));
	if (n != 1 || pf[0].revents != 0 || pf[1].revents != POLLIN || pf[2].revents != 0)
		FAIL("poll with fd -1: %ld, revents %#x %#x %#x", n, pf[0].revents, pf[1].revents,
		     pf[2].revents);
	printf("poll with negative fds: ignored (revents 0), the socket POLLIN\n");
	CHECK(SYS(read(a[0], buf, sizeof buf)) == 1);

	/* A closed descriptor: POLLNVAL. */
	int bad = closed_fd();
	pf[0] = (struct pollfd){ bad, POLLIN, 0 };
	pf[1] = (struct pollfd){ a[0], POLLIN, 0 };
	n = SYS(poll(pf, 2, 1000));
	if (n != 1 || pf[0].revents != POLLNVAL || pf[1].revents != 0)
		FAIL("poll closed fd: %ld, revents %#x %#x", n, pf[0].revents, pf[1].revents);
	printf("poll on a closed fd: 1, POLLNVAL\n");

	/* Writable, and the end of a pipe whose writer is gone. */
	pf[0] = (struct pollfd){ a[0], POLLOUT, 0 };
	CHECK(SYS(poll(pf, 1, -1)) == 1 && pf[0].revents == POLLOUT);
	SYS(close(p[1]));
	pf[0] = (struct pollfd){ p[0], POLLIN, 0 };
	CHECK(SYS(poll(pf, 1, -1)) == 1 && pf[0].revents == POLLHUP);
	printf("poll: POLLOUT on an idle socket; POLLHUP on a pipe whose write end closed\n");
	SYS(close(p[0]));
	SYS(pipe(p));

	/* ppoll. */
	struct timespec to = { 0, 50000000L };
	pf[0] = (struct pollfd){ a[0], POLLIN, 0 };
	t0 = mono();
	CHECK(SYS(ppoll(pf, 1, &to, NULL)) == 0);
	CHECK_WAITED(t0, 50);
	printf("ppoll, no data, timespec 50 ms: 0 after the timeout\n");
	dw.fd = a[1];
	CHECK0(pthread_create(&t, NULL, delayed_writer, &dw));
	sigset_t none;
	sigemptyset(&none);
	to.tv_sec = 30;
	CHECK(SYS(ppoll(pf, 1, &to, &none)) == 1 && pf[0].revents == POLLIN);
	CHECK0(pthread_join(t, NULL));
	CHECK(SYS(read(a[0], buf, sizeof buf)) == 1);
	printf("ppoll with a signal mask, data after 50 ms: 1, POLLIN\n");

	/* select. */
	fd_set rd, wr;
	struct timeval tv = { 0, 50000 };
	int maxfd = a[0] > b[0] ? a[0] : b[0];
	FD_ZERO(&rd);
	FD_SET(a[0], &rd);
	FD_SET(b[0], &rd);
	t0 = mono();
	CHECK(SYS(select(maxfd + 1, &rd, NULL, NULL, &tv)) == 0);
	CHECK_WAITED(t0, 50);
	CHECK(!FD_ISSET(a[0], &rd) && !FD_ISSET(b[0], &rd));
	printf("select, no data, 50 ms: 0 after the timeout, sets cleared\n");
	tv = (struct timeval){ 0, 50000 };
	t0 = mono();
	CHECK(SYS(select(0, NULL, NULL, NULL, &tv)) == 0);
	CHECK_WAITED(t0, 50);
	printf("select with no descriptors, 50 ms: 0 after the timeout\n");

	CHECK(SYS(write(b[1], "z", 1)) == 1);
	FD_ZERO(&rd);
	FD_ZERO(&wr);
	FD_SET(a[0], &rd);
	FD_SET(b[0], &rd);
	FD_SET(p[0], &rd);
	FD_SET(a[1], &wr);
	maxfd = a[0];
	int all[] = { a[1], b[0], p[0], f };
	for (unsigned i = 0; i < sizeof all / sizeof all[0]; i++)
		if (all[i] > maxfd)
			maxfd = all[i];
	tv = (struct timeval){ 5, 0 };
	n = SYS(select(maxfd + 1, &rd, &wr, NULL, &tv));
	if (n != 2 || FD_ISSET(a[0], &rd) || !FD_ISSET(b[0], &rd) || FD_ISSET(p[0], &rd) ||
	    !FD_ISSET(a[1], &wr))
		FAIL("select: %ld, read set a %d b %d pipe %d, write set %d", n,
		     FD_ISSET(a[0], &rd), FD_ISSET(b[0], &rd), FD_ISSET(p[0], &rd),
		     FD_ISSET(a[1], &wr));
	printf("select: 2, the socket with data in readfds, the idle socket in writefds\n");
	CHECK(SYS(read(b[0], buf, sizeof buf)) == 1);

	FD_ZERO(&rd);
	FD_SET(p[0], &rd);
	FD_SET(f, &rd);
	n = SYS(select(maxfd + 1, &rd, NULL, NULL, NULL));
	CHECK(n == 1 && FD_ISSET(f, &rd) && !FD_ISSET(p[0], &rd));
	printf("select on an empty pipe and a regular file, no timeout: 1, the file\n");

	FD_ZERO(&rd);
	FD_SET(a[0], &rd);
	FD_SET(bad, &rd);
	tv = (struct timeval){ 1, 0 };
	EXPECT_ERRNO("select with a closed fd in readfds", select(bad + 1, &rd, NULL, NULL, &tv),
		     EBADF);

	/* A thread blocked in select (no timeout) woken by data. */
	dw.fd = b[1];
	CHECK0(pthread_create(&t, NULL, delayed_writer, &dw));
	FD_ZERO(&rd);
	FD_SET(a[0], &rd);
	FD_SET(b[0], &rd);
	n = SYS(select(maxfd + 1, &rd, NULL, NULL, NULL));
	CHECK0(pthread_join(t, NULL));
	CHECK(n == 1 && FD_ISSET(b[0], &rd) && !FD_ISSET(a[0], &rd));
	CHECK(SYS(read(b[0], buf, sizeof buf)) == 1);
	printf("select without a timeout, data from another thread after 50 ms: 1, that socket\n");

	/* pselect. */
	struct timespec pto = { 0, 50000000L };
	FD_ZERO(&rd);
	FD_SET(a[0], &rd);
	t0 = mono();
	CHECK(SYS(pselect(a[0] + 1, &rd, NULL, NULL, &pto, NULL)) == 0);
	CHECK_WAITED(t0, 50);
	CHECK(pto.tv_sec == 0 && pto.tv_nsec == 50000000L);
	printf("pselect, no data, 50 ms: 0 after the timeout (the timespec is left alone)\n");
	dw.fd = a[1];
	CHECK0(pthread_create(&t, NULL, delayed_writer, &dw));
	FD_ZERO(&rd);
	FD_SET(a[0], &rd);
	pto = (struct timespec){ 30, 0 };
	CHECK(SYS(pselect(a[0] + 1, &rd, NULL, NULL, &pto, &none)) == 1 && FD_ISSET(a[0], &rd));
	CHECK0(pthread_join(t, NULL));
	CHECK(SYS(read(a[0], buf, sizeof buf)) == 1);
	printf("pselect with a signal mask, data after 50 ms: 1\n");

	SYS(close(f));
	SYS(close(p[0]));
	SYS(close(p[1]));
	for (int i = 0; i < 2; i++) {
		SYS(close(a[i]));
		SYS(close(b[i]));
	}
}

/* ------------------------------------------------------------------------
 * epoll. */

#define NEP 4		/* waiting threads, and socketpairs */
#define EP_ROUNDS 100
#define EP_STOP 1000

static struct {
	pthread_mutex_t m;
	pthread_cond_t c;
	int ep;
	int sv[NEP][2];
	int stop[2];
	int et;		/* EPOLLET (non-blocking sockets) instead of EPOLLONESHOT */
	long bytes[NEP];
	unsigned long sum[NEP];
	long total;
} ep = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER };

static void *epoll_worker(void *arg)
{
	(void)arg;
	for (;;) {
		struct epoll_event ev;
		int n = epoll_wait(ep.ep, &ev, 1, -1);
		if (n != 1)
			FAIL("epoll worker: epoll_wait returned %d (%s)", n, en(errno));
		if (ev.data.u32 == EP_STOP)
			return NULL;
		CHECK(ev.data.u32 < NEP);
		int i = (int)ev.data.u32;
		unsigned char buf[64];
		long got = 0;
		unsigned long sum = 0;
		for (;;) {
			ssize_t r = read(ep.sv[i][1], buf, sizeof buf);
			if (r == -1 && errno == EAGAIN && ep.et)
				break;
			if (r <= 0)
				FAIL("epoll worker: read returned %zd (%s)", r, en(errno));
			for (ssize_t k = 0; k < r; k++)
				sum += buf[k];
			got += r;
			if (!ep.et)
				break;
		}
		CHECK0(pthread_mutex_lock(&ep.m));
		ep.bytes[i] += got;
		ep.sum[i] += sum;
		ep.total += got;
		CHECK0(pthread_cond_broadcast(&ep.c));
		CHECK0(pthread_mutex_unlock(&ep.m));
		if (!ep.et) {
			struct epoll_event re = { EPOLLIN | EPOLLONESHOT, { .u32 = (uint32_t)i } };
			SYS(epoll_ctl(ep.ep, EPOLL_CTL_MOD, ep.sv[i][1], &re));
		}
	}
}

static void epoll_threads(int et)
{
	pthread_t t[NEP];

	memset(ep.bytes, 0, sizeof ep.bytes);
	memset(ep.sum, 0, sizeof ep.sum);
	ep.total = 0;
	ep.et = et;
	ep.ep = (int)SYS(epoll_create1(EPOLL_CLOEXEC));
	for (int i = 0; i < NEP; i++) {
		SYS(socketpair(AF_UNIX, SOCK_STREAM | (et ? SOCK_NONBLOCK : 0), 0, ep.sv[i]));
		struct epoll_event ev = { EPOLLIN | (et ? EPOLLET : EPOLLONESHOT),
					  { .u32 = (uint32_t)i } };
		SYS(epoll_ctl(ep.ep, EPOLL_CTL_ADD, ep.sv[i][1], &ev));
	}
	SYS(pipe(ep.stop));
	struct epoll_event sev = { EPOLLIN, { .u32 = EP_STOP } };
	SYS(epoll_ctl(ep.ep, EPOLL_CTL_ADD, ep.stop[0], &sev));
	for (int i = 0; i < NEP; i++)
		CHECK0(pthread_create(&t[i], NULL, epoll_worker, NULL));
	sleep_ms(50);	/* let them block in epoll_wait */
	unsigned long want_sum[NEP] = { 0 };
	for (int r = 0; r < EP_ROUNDS; r++) {
		for (int i = 0; i < NEP; i++) {
			unsigned char b = (unsigned char)(r * NEP + i + 1);
			if (et) {
				/* Blocking here would need the runtime's help too. */
				struct pollfd pf = { ep.sv[i][0], POLLOUT, 0 };
				CHECK(SYS(poll(&pf, 1, -1)) == 1);
			}
			CHECK(SYS(write(ep.sv[i][0], &b, 1)) == 1);
			want_sum[i] += b;
		}
		if (r % 10 == 9)
			sleep_ms(1);
	}
	CHECK0(pthread_mutex_lock(&ep.m));
	while (ep.total < (long)NEP * EP_ROUNDS)
		CHECK0(pthread_cond_wait(&ep.c, &ep.m));
	CHECK0(pthread_mutex_unlock(&ep.m));
	CHECK(SYS(write(ep.stop[1], "s", 1)) == 1);
	for (int i = 0; i < NEP; i++)
		CHECK0(pthread_join(t[i], NULL));
	CHECK(ep.total == (long)NEP * EP_ROUNDS);
	for (int i = 0; i < NEP; i++)
		if (ep.bytes[i] != EP_ROUNDS || ep.sum[i] != want_sum[i])
			FAIL("epoll %s: socket %d: %ld bytes sum %lu, want %d sum %lu",
			     et ? "EPOLLET" : "EPOLLONESHOT", i, ep.bytes[i], ep.sum[i], EP_ROUNDS,
			     want_sum[i]);
	printf("epoll_wait in %d threads on one epoll fd, %s on %d socketpairs: all %ld bytes "
	       "delivered, each once\n", NEP, et ? "EPOLLET" : "EPOLLONESHOT", NEP, ep.total);
	for (int i = 0; i < NEP; i++) {
		SYS(close(ep.sv[i][0]));
		SYS(close(ep.sv[i][1]));
	}
	SYS(close(ep.stop[0]));
	SYS(close(ep.stop[1]));
	SYS(close(ep.ep));
}

static void t_epoll(void)
{
	struct epoll_event evs[8];
	struct timespec t0;
	int sv[NEP][2];
	char buf[16];

	int e = (int)SYS(epoll_create1(0));
	t0 = mono();
	CHECK(SYS(epoll_wait(e, evs, 8, 50)) == 0);
	CHECK_WAITED(t0, 50);
	printf("epoll_wait on an empty set, 50 ms: 0 after the timeout\n");

	for (int i = 0; i < NEP; i++) {
		SYS(socketpair(AF_UNIX, SOCK_STREAM, 0, sv[i]));
		struct epoll_event ev = { EPOLLIN, { .u32 = (uint32_t)i } };
		SYS(epoll_ctl(e, EPOLL_CTL_ADD, sv[i][0], &ev));
	}
	t0 = mono();
	CHECK(SYS(epoll_pwait(e, evs, 8, 50, NULL)) == 0);
	CHECK_WAITED(t0, 50);
	printf("epoll_pwait on %d idle sockets, 50 ms: 0 after the timeout\n", NEP);

	for (int i = 0; i < NEP; i++)
		CHECK(SYS(write(sv[i][1], "e", 1)) == 1);
	long n = SYS(epoll_wait(e, evs, 8, -1));
	unsigned mask = 0;
	for (int k = 0; k < n; k++) {
		CHECK(evs[k].events == EPOLLIN && evs[k].data.u32 < NEP);
		mask |= 1u << evs[k].data.u32;
	}
	if (n != NEP || mask != (1u << NEP) - 1)
		FAIL("epoll_wait, %d ready: %ld events, mask %#x", NEP, n, mask);
	printf("epoll_wait with %d sockets ready: %d events at once\n", NEP, NEP);

	/* A thread blocked in poll on the epoll fd itself. */
	for (int i = 0; i < NEP; i++)
		CHECK(SYS(read(sv[i][0], buf, sizeof buf)) == 1);
	struct pollfd pe = { e, POLLIN, 0 };
	struct job j;
	job_start(&j, job_poll, -1, &pe, 1);
	job_blocked(&j);
	CHECK(SYS(write(sv[2][1], "e", 1)) == 1);
	if (job_join(&j) != 1 || pe.revents != POLLIN)
		FAIL("poll on an epoll fd: %ld (%s), revents %#x", j.ret, en(j.err), pe.revents);
	CHECK(SYS(epoll_wait(e, evs, 8, 0)) == 1 && evs[0].data.u32 == 2);
	printf("a thread blocked in poll on an epoll fd: POLLIN when a member became ready\n");
	for (int i = 0; i < NEP; i++) {
		SYS(close(sv[i][0]));
		SYS(close(sv[i][1]));
	}
	SYS(close(e));

	epoll_threads(0);
	epoll_threads(1);
}

/* ------------------------------------------------------------------------
 * send/recv and friends. */

static void t_sendrecv(void)
{
	int sv[2];
	char buf[64];
	struct job j;

	SYS(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	CHECK(SYS(send(sv[0], "hello", 5, 0)) == 5);
	CHECK(SYS(recv(sv[1], buf, sizeof buf, 0)) == 5 && memcmp(buf, "hello", 5) == 0);
	printf("socketpair: send 5, recv 5\n");
	EXPECT_ERRNO("recv(MSG_DONTWAIT) on an empty blocking socket",
		     recv(sv[1], buf, sizeof buf, MSG_DONTWAIT), EAGAIN);
	CHECK(!is_nonblock(sv[1]));

	job_init(&j, sv[1], buf, sizeof buf);
	j.flags = MSG_PEEK;
	job_run(&j, job_recv);
	job_blocked(&j);
	CHECK(SYS(send(sv[0], "peekaboo", 8, 0)) == 8);
	if (job_join(&j) != 8 || memcmp(buf, "peekaboo", 8) != 0)
		FAIL("blocked recv(MSG_PEEK): %ld (%s)", j.ret, en(j.err));
	memset(buf, 0, sizeof buf);
	CHECK(SYS(read(sv[1], buf, sizeof buf)) == 8 && memcmp(buf, "peekaboo", 8) == 0);
	printf("a thread blocked in recv(MSG_PEEK) saw 8 bytes; read then returned the same 8\n");

	job_init(&j, sv[1], buf, 30);
	j.flags = MSG_WAITALL;
	job_run(&j, job_recv);
	job_blocked(&j);
	for (int i = 0; i < 3; i++) {
		CHECK(SYS(send(sv[0], "0123456789", 10, 0)) == 10);
		sleep_ms(20);
	}
	if (job_join(&j) != 30)
		FAIL("recv(MSG_WAITALL) of 30, sent as 3 x 10: %ld (%s)", j.ret, en(j.err));
	printf("recv(MSG_WAITALL) of 30 bytes sent as 3 x 10 with pauses: 30\n");

	/* writev / readv. */
	struct iovec wv[3] = { { "ab", 2 }, { "cde", 3 }, { "fghi", 4 } };
	char r0[4], r1[4], r2[4];
	job_init(&j, sv[1], NULL, 0);
	j.iov[0] = (struct iovec){ r0, sizeof r0 };
	j.iov[1] = (struct iovec){ r1, sizeof r1 };
	j.iov[2] = (struct iovec){ r2, sizeof r2 };
	job_run(&j, job_readv);
	job_blocked(&j);
	CHECK(SYS(writev(sv[0], wv, 3)) == 9);
	if (job_join(&j) != 9 || memcmp(r0, "abcd", 4) != 0 || memcmp(r1, "efgh", 4) != 0 ||
	    r2[0] != 'i')
		FAIL("blocked readv: %ld (%s)", j.ret, en(j.err));
	printf("writev of 2+3+4 bytes; a thread blocked in readv into 4+4+4 got 9, split 4/4/1\n");

	/* sendmsg / recvmsg with iovecs and a descriptor (SCM_RIGHTS). */
	int p[2];
	SYS(pipe(p));
	union {
		char b[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	memset(&ctl, 0, sizeof ctl);
	struct msghdr mh = { 0 };
	struct iovec sv_iov[2] = { { "msg", 3 }, { "hdr", 3 } };
	mh.msg_iov = sv_iov;
	mh.msg_iovlen = 2;
	mh.msg_control = ctl.b;
	mh.msg_controllen = sizeof ctl.b;
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &p[1], sizeof(int));
	CHECK(SYS(sendmsg(sv[0], &mh, 0)) == 6);
	SYS(close(p[1]));

	union {
		char b[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} rctl;
	char m0[2], m1[8];
	struct iovec rv[2] = { { m0, sizeof m0 }, { m1, sizeof m1 } };
	struct msghdr rh = { 0 };
	rh.msg_iov = rv;
	rh.msg_iovlen = 2;
	rh.msg_control = rctl.b;
	rh.msg_controllen = sizeof rctl.b;
	CHECK(SYS(recvmsg(sv[1], &rh, MSG_CMSG_CLOEXEC)) == 6);
	CHECK(memcmp(m0, "ms", 2) == 0 && memcmp(m1, "ghdr", 4) == 0);
	cm = CMSG_FIRSTHDR(&rh);
	CHECK(cm != NULL && cm->cmsg_type == SCM_RIGHTS);
	int got;
	memcpy(&got, CMSG_DATA(cm), sizeof got);
	CHECK(((int)SYS(fcntl(got, F_GETFD)) & FD_CLOEXEC) != 0);
	/* The same open file description as the pipe's write end, which the
	 * program never made non-blocking. */
	CHECK(!is_nonblock(got));
	expect_blocked_read("pipe whose write end came by SCM_RIGHTS", p[0], got);
	SYS(close(got));
	CHECK(SYS(read(p[0], buf, sizeof buf)) == 0);
	printf("sendmsg/recvmsg: 6 bytes over 2 iovecs each way and a descriptor that works\n");
	SYS(close(p[0]));
	SYS(close(sv[0]));
	SYS(close(sv[1]));

	/* UDP over loopback. */
	struct sockaddr_in aa, ba, from;
	socklen_t flen;
	int a = udp_socket(&aa), b = udp_socket(&ba);
	CHECK(SYS(sendto(a, "ping", 4, 0, (struct sockaddr *)&ba, sizeof ba)) == 4);
	flen = sizeof from;
	memset(&from, 0, sizeof from);
	CHECK(SYS(recvfrom(b, buf, sizeof buf, 0, (struct sockaddr *)&from, &flen)) == 4);
	CHECK(flen == sizeof from && from.sin_family == AF_INET && from.sin_port == aa.sin_port &&
	      from.sin_addr.s_addr == htonl(INADDR_LOOPBACK));
	printf("UDP: sendto 4, recvfrom 4 from AF_INET 127.0.0.1, the sender's port\n");
	EXPECT_ERRNO("UDP: recv(MSG_DONTWAIT), nothing queued", recv(b, buf, sizeof buf,
		     MSG_DONTWAIT), EAGAIN);

	job_start(&j, job_recvfrom, b, buf, sizeof buf);
	job_blocked(&j);
	CHECK(SYS(sendto(a, "pong!", 5, 0, (struct sockaddr *)&ba, sizeof ba)) == 5);
	if (job_join(&j) != 5 || j.addr.sin_family != AF_INET || j.addr.sin_port != aa.sin_port)
		FAIL("blocked recvfrom: %ld (%s)", j.ret, en(j.err));
	printf("UDP: a thread blocked in recvfrom got the datagram and the sender's address\n");

	/* A datagram larger than the buffer: truncated, MSG_TRUNC. */
	CHECK(SYS(sendto(a, "0123456789", 10, 0, (struct sockaddr *)&ba, sizeof ba)) == 10);
	char small[4];
	struct iovec siov = { small, sizeof small };
	struct msghdr th = { 0 };
	th.msg_iov = &siov;
	th.msg_iovlen = 1;
	CHECK(SYS(recvmsg(b, &th, 0)) == 4 && (th.msg_flags & MSG_TRUNC) &&
	      memcmp(small, "0123", 4) == 0);
	printf("UDP: a 10-byte datagram into 4 bytes: recvmsg 4, MSG_TRUNC\n");

	/* sendmmsg / recvmmsg of 3 datagrams. */
	SYS(connect(a, (struct sockaddr *)&ba, sizeof ba));
	struct mmsghdr mm[3];
	struct iovec miov[3] = { { "1", 1 }, { "22", 2 }, { "333", 3 } };
	memset(mm, 0, sizeof mm);
	for (int i = 0; i < 3; i++) {
		mm[i].msg_hdr.msg_iov = &miov[i];
		mm[i].msg_hdr.msg_iovlen = 1;
	}
	CHECK(SYS(sendmmsg(a, mm, 3, 0)) == 3);
	char rb[3][8];
	struct iovec riov[3];
	struct mmsghdr rm[3];
	memset(rm, 0, sizeof rm);
	for (int i = 0; i < 3; i++) {
		riov[i] = (struct iovec){ rb[i], sizeof rb[i] };
		rm[i].msg_hdr.msg_iov = &riov[i];
		rm[i].msg_hdr.msg_iovlen = 1;
	}
	CHECK(SYS(recvmmsg(b, rm, 3, 0, NULL)) == 3);
	for (int i = 0; i < 3; i++)
		CHECK(rm[i].msg_len == (unsigned)i + 1 && rb[i][0] == "123"[i]);
	printf("UDP: sendmmsg of 3 datagrams: 3; recvmmsg: 3, lengths 1 2 3\n");

	/* Blocking recvmmsg without MSG_WAITFORONE waits for all 3. */
	job_init(&j, b, NULL, 0);
	for (int i = 0; i < 3; i++) {
		j.iov[i] = (struct iovec){ rb[i], sizeof rb[i] };
		j.mm[i].msg_hdr.msg_iov = &j.iov[i];
		j.mm[i].msg_hdr.msg_iovlen = 1;
	}
	job_run(&j, job_recvmmsg);
	job_blocked(&j);
	for (int i = 0; i < 3; i++) {
		CHECK(SYS(send(a, "xyz", (size_t)i + 1, 0)) == i + 1);
		sleep_ms(20);
	}
	if (job_join(&j) != 3)
		FAIL("blocking recvmmsg of 3, sent one by one: %ld (%s)", j.ret, en(j.err));
	for (int i = 0; i < 3; i++)
		CHECK(j.mm[i].msg_len == (unsigned)i + 1);
	printf("UDP: a thread blocked in recvmmsg(3) got all 3 datagrams sent one by one\n");

	/* MSG_WAITFORONE: back after the first. */
	job_init(&j, b, NULL, 0);
	for (int i = 0; i < 3; i++) {
		j.iov[i] = (struct iovec){ rb[i], sizeof rb[i] };
		j.mm[i].msg_hdr.msg_iov = &j.iov[i];
		j.mm[i].msg_hdr.msg_iovlen = 1;
	}
	j.flags = MSG_WAITFORONE;
	job_run(&j, job_recvmmsg);
	job_blocked(&j);
	CHECK(SYS(send(a, "w", 1, 0)) == 1);
	if (job_join(&j) != 1 || j.mm[0].msg_len != 1)
		FAIL("blocking recvmmsg(MSG_WAITFORONE), one datagram: %ld (%s)", j.ret, en(j.err));
	printf("UDP: a thread blocked in recvmmsg(3, MSG_WAITFORONE) returned 1 for one datagram\n");
	SYS(close(a));
	SYS(close(b));
}

/* ------------------------------------------------------------------------
 * Descriptor numbers reused: after close, and replaced by dup2. */

static void t_fd_reuse(void)
{
	for (int round = 0; round < 12; round++) {
		int sv[2];
		SYS(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
		char buf[16];
		struct job j;
		job_start(&j, job_read, sv[round % 2], buf, sizeof buf);
		if (round % 3 == 0)
			job_blocked(&j);
		CHECK(SYS(write(sv[1 - round % 2], "r", 1)) == 1);
		if (job_join(&j) != 1)
			FAIL("fd reuse round %d: read returned %ld (%s)", round, j.ret, en(j.err));
		SYS(close(sv[0]));
		SYS(close(sv[1]));
	}
	printf("12 rounds of socketpair, a read blocked or not, close: each new pair worked\n");

	/* dup2 replaces a descriptor that was used for a blocking read. */
	int x[2], y[2], p[2];
	SYS(socketpair(AF_UNIX, SOCK_STREAM, 0, x));
	SYS(socketpair(AF_UNIX, SOCK_STREAM, 0, y));
	expect_blocked_read("socketpair before dup2", x[0], x[1]);
	int keep = (int)SYS(dup(x[0]));	/* keeps the replaced socket open */
	SYS(dup2(y[0], x[0]));
	expect_blocked_read("after dup2 of another socketpair over it", x[0], y[1]);
	CHECK(SYS(write(x[1], "old", 3)) == 3);
	EXPECT_ERRNO("the replaced socket's data is not readable there",
		     recv(x[0], (char[8]){ 0 }, 8, MSG_DONTWAIT), EAGAIN);
	SYS(pipe(p));
	SYS(dup2(p[0], x[0]));
	expect_blocked_read("after dup2 of a pipe over it", x[0], p[1]);
	SYS(close(p[0]));
	SYS(close(p[1]));
	CHECK(SYS(read(keep, (char[8]){ 0 }, 8)) == 3);
	printf("the replaced socket still has its data through another descriptor\n");
	SYS(close(keep));
	SYS(close(x[0]));
	SYS(close(x[1]));
	SYS(close(y[0]));
	SYS(close(y[1]));
}

/* ------------------------------------------------------------------------
 * A regular file read and written by threads. */

static void *file_thread(void *arg)
{
	int f = (int)(intptr_t)arg;
	char buf[64];
	CHECK(SYS(pwrite(f, "regular file data", 17, 100)) == 17);
	CHECK(SYS(lseek(f, 100, SEEK_SET)) == 100);
	CHECK(SYS(read(f, buf, sizeof buf)) == 17 && memcmp(buf, "regular file data", 17) == 0);
	CHECK(SYS(read(f, buf, sizeof buf)) == 0);
	return NULL;
}

static void t_file(void)
{
	char path[] = "/tmp/goshim-legacy-io-XXXXXX";
	int f = (int)SYS(mkstemp(path));
	SYS(unlink(path));
	run_in_thread(file_thread, (void *)(intptr_t)f);
	struct stat st;
	SYS(fstat(f, &st));
	CHECK(st.st_size == 117);
	CHECK(!is_nonblock(f));
	printf("regular file: pwrite, lseek, read to EOF in a thread; size 117\n");
	SYS(close(f));
}

/* ------------------------------------------------------------------------
 * Many threads: echo over 200 socketpairs. */

#define NECHO 200
#define ECHO_MSGS 100
#define ECHO_LEN 64

struct echo_pair {
	int sv[2];
	uint32_t sum;
};

static void *echoer(void *arg)
{
	struct echo_pair *e = arg;
	char buf[ECHO_LEN];
	while (read_full(e->sv[1], buf, sizeof buf) == sizeof buf)
		write_full(e->sv[1], buf, sizeof buf);
	return NULL;
}

static void *echo_client(void *arg)
{
	struct echo_pair *e = arg;
	unsigned char out[ECHO_LEN], in[ECHO_LEN];
	for (int k = 0; k < ECHO_MSGS; k++) {
		for (int i = 0; i < ECHO_LEN; i++)
			out[i] = (unsigned char)(e->sv[0] * 131 + k * 7 + i);
		write_full(e->sv[0], out, sizeof out);
		if (read_full(e->sv[0], in, sizeof in) != sizeof in || memcmp(in, out, sizeof in))
			FAIL("echo: message %d came back different", k);
		for (int i = 0; i < ECHO_LEN; i++)
			e->sum = checksum(e->sum, in[i]);
	}
	SYS(shutdown(e->sv[0], SHUT_WR));
	return NULL;
}

static void t_echo(void)
{
	static struct echo_pair ps[NECHO];
	static pthread_t ct[NECHO], et[NECHO];
	for (int i = 0; i < NECHO; i++) {
		SYS(socketpair(AF_UNIX, SOCK_STREAM, 0, ps[i].sv));
		ps[i].sum = CHECKSUM_INIT;
	}
	for (int i = 0; i < NECHO; i++) {
		CHECK0(pthread_create(&et[i], NULL, echoer, &ps[i]));
		CHECK0(pthread_create(&ct[i], NULL, echo_client, &ps[i]));
	}
	int bad = 0;
	for (int i = 0; i < NECHO; i++) {
		CHECK0(pthread_join(ct[i], NULL));
		CHECK0(pthread_join(et[i], NULL));
		uint32_t want = CHECKSUM_INIT;
		for (int k = 0; k < ECHO_MSGS; k++)
			for (int b = 0; b < ECHO_LEN; b++)
				want = checksum(want, (unsigned char)(ps[i].sv[0] * 131 + k * 7 + b));
		if (ps[i].sum != want)
			bad++;
		SYS(close(ps[i].sv[0]));
		SYS(close(ps[i].sv[1]));
	}
	if (bad)
		FAIL("echo: %d pairs with a wrong checksum", bad);
	printf("%d socketpairs, %d client and %d echo threads, %d messages of %d bytes each way: "
	       "all intact\n", NECHO, NECHO, NECHO, ECHO_MSGS, ECHO_LEN);
}

/* And over TCP loopback, a thread per connection on the server side. */
#define NTCP 32
#define TCP_MSGS 50

static struct sockaddr_in tcp_echo_addr;

static void *tcp_echo_client(void *arg)
{
	int id = (int)(intptr_t)arg, one = 1;
	int fd = tcp_connect(&tcp_echo_addr);
	unsigned char out[ECHO_LEN], in[ECHO_LEN];
	SYS(setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one));
	for (int k = 0; k < TCP_MSGS; k++) {
		for (int i = 0; i < ECHO_LEN; i++)
			out[i] = (unsigned char)(id * 37 + k * 3 + i);
		write_full(fd, out, sizeof out);
		if (read_full(fd, in, sizeof in) != sizeof in || memcmp(in, out, sizeof in))
			FAIL("TCP echo: client %d message %d came back different", id, k);
	}
	SYS(close(fd));
	return NULL;
}

static void *tcp_echo_server(void *arg)
{
	int fd = (int)(intptr_t)arg, one = 1;
	char buf[ECHO_LEN];
	SYS(setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one));
	while (read_full(fd, buf, sizeof buf) == sizeof buf)
		write_full(fd, buf, sizeof buf);
	SYS(close(fd));
	return NULL;
}

static void *tcp_acceptor(void *arg)
{
	int l = (int)(intptr_t)arg;
	pthread_t st[NTCP];
	for (int i = 0; i < NTCP; i++) {
		int fd = (int)SYS(accept(l, NULL, NULL));
		CHECK0(pthread_create(&st[i], NULL, tcp_echo_server, (void *)(intptr_t)fd));
	}
	for (int i = 0; i < NTCP; i++)
		CHECK0(pthread_join(st[i], NULL));
	return NULL;
}

static void t_tcp_echo(void)
{
	pthread_t at, ct[NTCP];
	int l = tcp_listener(&tcp_echo_addr, 128);
	CHECK0(pthread_create(&at, NULL, tcp_acceptor, (void *)(intptr_t)l));
	for (int i = 0; i < NTCP; i++)
		CHECK0(pthread_create(&ct[i], NULL, tcp_echo_client, (void *)(intptr_t)i));
	for (int i = 0; i < NTCP; i++)
		CHECK0(pthread_join(ct[i], NULL));
	CHECK0(pthread_join(at, NULL));
	SYS(close(l));
	printf("TCP loopback: %d clients, an accepting thread and a thread per connection, "
	       "%d echoed messages each: all intact\n", NTCP, TCP_MSGS);
}

int main(void)
{
	legacy_start();
	signal(SIGPIPE, SIG_IGN);

	t_blocked_read();
	t_slow_reader();
	t_peer_close();
	t_reset();
	t_timeouts();
	t_nonblock();
	t_shutdown();
	t_close_while_blocked();
	t_accept();
	t_connect();
	t_poll();
	t_epoll();
	t_sendrecv();
	t_fd_reuse();
	t_file();
	t_echo();
	t_tcp_echo();
	printf("io: all checks passed\n");
	return 0;
}
