/* The load generator for tests/demo/echo_server (scripts/demo,
 * tests/legacy/echo.sh): one thread, epoll, non-blocking sockets, so it
 * stays cheap at 10,000 connections and costs the same whichever server
 * it drives. It is never preloaded.
 *
 * It opens CONNS connections (each is up once a short hello has been
 * echoed, which proves the server accepted it), and once all are up, each
 * one does round trips: send MSGSIZE bytes that encode (connection, round),
 * wait for the same bytes back, verify them, repeat. One message
 * outstanding per connection, so every round trip is a latency sample.
 *
 * Results go to stdout as "key value" lines; progress (unless -q) and the
 * first few error reasons go to stderr. Exit status 1 if any error, if
 * fewer than CONNS connections were established, or if nothing progressed
 * for 30 s. */
#include <errno.h>
#include <dirent.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

/* Connections being set up at once. A connection counts as set up once a
 * small hello message has come back, i.e. once the server has accepted it:
 * the kernel completes connects into the accept queue whether or not the
 * server keeps up, and past the backlog it drops SYNs, each a 1 s
 * retransmit. */
#define CONNECT_BATCH 500
#define HELLO_SIZE 8 /* at most; not a round trip, not in the results */
#define HELLO_ROUND UINT32_MAX
#define STALL_NS (30 * 1000000000LL)
#define MAX_SAMPLES (1 << 20) /* latency samples kept: 8 MiB, then a reservoir */
#define MAX_ERRORS_SHOWN 10
#define IOBUF 65536

enum { C_NEW, C_CONNECTING, C_HELLO, C_IDLE, C_ACTIVE, C_DONE, C_FAILED };

struct conn {
	int fd;
	uint8_t state;
	bool wantout;   /* EPOLLOUT in the interest set: a send hit EAGAIN */
	uint32_t round; /* round trips completed */
	uint32_t sent, got;
	int64_t t0;     /* when the current message started */
};

static struct conn *conns;
static uint32_t nconns, msgsize = 64, rounds;
static int ep;
static bool quiet;
static uint64_t errors, round_trips, bytes;
static uint32_t established, connecting, active; /* connecting: incl. C_HELLO */
static uint32_t kicked;  /* connections that entered the measured phase */
static uint32_t settled; /* of those: the ones with >= 1 round trip, or failed */
static int64_t last_progress;
static unsigned char wbuf[IOBUF], rbuf[IOBUF];

static int64_t *samples;
static size_t nsamples, samples_cap;
static uint64_t samples_seen, rng = 0x9e3779b97f4a7c15ULL;

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void info(const char *fmt, ...)
{
	if (quiet)
		return;
	va_list ap;
	va_start(ap, fmt);
	fputs("echo_client: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* Byte i of connection c's message in round r. The first 8 bytes are c
 * and r themselves; every byte depends on both, so a reply meant for
 * another connection or another round cannot pass for this one. */
static inline unsigned char msg_byte(uint32_t c, uint32_t r, uint32_t i)
{
	if (i < 4)
		return (unsigned char)(c >> (8 * i));
	if (i < 8)
		return (unsigned char)(r >> (8 * (i - 4)));
	uint32_t x = c * 2654435761u ^ r * 40503u;
	return (unsigned char)((x >> (8 * (i & 3))) + i);
}

static void record_latency(int64_t ns)
{
	samples_seen++;
	if (nsamples < samples_cap) {
		samples[nsamples++] = ns;
		return;
	}
	if (samples_cap < MAX_SAMPLES) {
		size_t cap = samples_cap ? samples_cap * 2 : 4096;
		int64_t *p = realloc(samples, cap * sizeof *p);
		if (p) {
			samples = p;
			samples_cap = cap;
			samples[nsamples++] = ns;
			return;
		}
	}
	/* Full: a uniform reservoir (Algorithm R) keeps the percentiles honest. */
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	uint64_t j = rng % samples_seen;
	if (j < nsamples)
		samples[j] = ns;
}

static void set_events(struct conn *c, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.u32 = (uint32_t)(c - conns)};
	epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void fail(struct conn *c, const char *what, int err)
{
	if (errors++ < MAX_ERRORS_SHOWN) {
		char when[32] = "setting up";
		if (c->state >= C_IDLE)
			snprintf(when, sizeof when, "round %u", c->round);
		fprintf(stderr, "echo_client: connection %u (%s): %s%s%s\n", (unsigned)(c - conns),
		        when, what, err ? ": " : "", err ? strerror(err) : "");
	}
	if (c->state == C_CONNECTING || c->state == C_HELLO)
		connecting--;
	if (c->state == C_ACTIVE) {
		active--;
		if (c->round == 0)
			settled++;
	}
	if (c->fd >= 0)
		close(c->fd); /* also leaves the epoll set */
	c->fd = -1;
	c->state = C_FAILED;
}

static void start_round(struct conn *c, int64_t now);

static inline uint32_t cur_len(const struct conn *c)
{
	return c->state == C_HELLO ? (msgsize < HELLO_SIZE ? msgsize : HELLO_SIZE) : msgsize;
}

static inline uint32_t cur_round(const struct conn *c)
{
	return c->state == C_HELLO ? HELLO_ROUND : c->round;
}

static void do_write(struct conn *c)
{
	uint32_t idx = (uint32_t)(c - conns), size = cur_len(c), r = cur_round(c);
	while (c->sent < size) {
		uint32_t len = size - c->sent < IOBUF ? size - c->sent : IOBUF;
		for (uint32_t i = 0; i < len; i++)
			wbuf[i] = msg_byte(idx, r, c->sent + i);
		ssize_t n = send(c->fd, wbuf, len, MSG_NOSIGNAL);
		if (n > 0) {
			c->sent += (uint32_t)n;
			last_progress = now_ns();
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (!c->wantout) {
				c->wantout = true;
				set_events(c, EPOLLIN | EPOLLOUT);
			}
			return;
		} else {
			fail(c, "send", n < 0 ? errno : 0);
			return;
		}
	}
	if (c->wantout) {
		c->wantout = false;
		set_events(c, EPOLLIN);
	}
}

static void complete_round(struct conn *c, int64_t now, int64_t deadline)
{
	record_latency(now - c->t0);
	round_trips++;
	if (++c->round == 1)
		settled++;
	if ((rounds && c->round >= rounds) || (deadline && now >= deadline)) {
		/* Kept open (not closed) until the end, so the server's thread
		 * count is not flattered by connections that finished early. */
		epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
		c->state = C_DONE;
		active--;
		return;
	}
	start_round(c, now);
}

static void do_read(struct conn *c, int64_t deadline)
{
	uint32_t idx = (uint32_t)(c - conns), size = cur_len(c), r = cur_round(c);
	for (;;) {
		uint32_t want = size - c->got < IOBUF ? size - c->got : IOBUF;
		ssize_t n = read(c->fd, rbuf, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n < 0) {
			fail(c, "read", errno);
			return;
		}
		if (n == 0) {
			fail(c, "unexpected EOF", 0);
			return;
		}
		if ((c->state != C_ACTIVE && c->state != C_HELLO) || c->got + (uint32_t)n > c->sent) {
			fail(c, "data nobody asked for", 0);
			return;
		}
		for (uint32_t i = 0; i < (uint32_t)n; i++) {
			if (rbuf[i] != msg_byte(idx, r, c->got + i)) {
				char what[96];
				snprintf(what, sizeof what, "byte %u is 0x%02x, not 0x%02x", c->got + i,
				         rbuf[i], msg_byte(idx, r, c->got + i));
				fail(c, what, 0);
				return;
			}
		}
		c->got += (uint32_t)n;
		int64_t now = now_ns();
		last_progress = now;
		if (c->state == C_HELLO) {
			if (c->got == size) {
				connecting--;
				established++;
				c->state = C_IDLE;
				return;
			}
			continue;
		}
		bytes += (uint64_t)n;
		if (c->got == size) {
			/* The reply to the next message cannot be there yet:
			 * no point reading until EAGAIN. */
			complete_round(c, now, deadline);
			return;
		}
		if ((uint32_t)n < want)
			return; /* drained; level-triggered epoll says when there is more */
	}
}

static void start_round(struct conn *c, int64_t now)
{
	c->sent = c->got = 0;
	c->t0 = now;
	do_write(c);
}

static void start_connect(struct conn *c, const struct addrinfo *ai)
{
	c->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		fail(c, "socket", errno);
		return;
	}
	/* Each message is one send; never let Nagle hold back a remainder. */
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	c->state = C_CONNECTING;
	connecting++;
	struct epoll_event ev = {.events = EPOLLOUT, .data.u32 = (uint32_t)(c - conns)};
	if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
		fail(c, "epoll_ctl", errno);
		return;
	}
	if (connect(c->fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS)
		fail(c, "connect", errno);
	/* Even an immediate success is reported by EPOLLOUT; one path. */
}

static void connect_done(struct conn *c)
{
	int err = 0;
	socklen_t len = sizeof err;
	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
		err = errno;
	if (err) {
		fail(c, "connect", err);
		return;
	}
	c->state = C_HELLO;
	c->sent = c->got = 0;
	set_events(c, EPOLLIN);
	last_progress = now_ns();
	do_write(c);
}

static void handle(struct conn *c, uint32_t events, int64_t deadline)
{
	if (c->state == C_CONNECTING) {
		connect_done(c);
		return;
	}
	if (c->state == C_FAILED || c->state == C_DONE)
		return; /* closed earlier in this batch of events */
	if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
		do_read(c, deadline);
	if ((c->state == C_ACTIVE || c->state == C_HELLO) && (events & EPOLLOUT) &&
	    c->sent < cur_len(c))
		do_write(c);
}

/* OS threads of the server: the entries of /proc/PID/task. */
static long server_threads(long pid)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%ld/task", pid);
	DIR *d = opendir(path);
	if (!d)
		return -1;
	long n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static long server_rss_kib(long pid)
{
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/%ld/status", pid);
	FILE *f = fopen(path, "r");
	long kib = -1;
	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "VmRSS: %ld", &kib) == 1)
			break;
	if (f)
		fclose(f);
	return kib;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

static double percentile_us(double q)
{
	if (nsamples == 0)
		return 0;
	size_t rank = (size_t)(q * (double)nsamples + 0.999999); /* nearest rank */
	if (rank < 1)
		rank = 1;
	if (rank > nsamples)
		rank = nsamples;
	return (double)samples[rank - 1] / 1000.0;
}

static void usage(void)
{
	fprintf(stderr,
	        "usage: echo_client [-a ADDR] -p PORT -c CONNS [-s MSGSIZE] [-r ROUNDS | -d SECONDS]\n"
	        "                   [-P PID] [-q]\n"
	        "  -a ADDR     server address (default 127.0.0.1)\n"
	        "  -p PORT     server port\n"
	        "  -c CONNS    connections to open\n"
	        "  -s MSGSIZE  bytes per message (default 64)\n"
	        "  -r ROUNDS   round trips per connection (default 1)\n"
	        "  -d SECONDS  instead: run for SECONDS once all connections are up\n"
	        "  -P PID      report the server's OS threads and RSS once every\n"
	        "              connection has done a round trip\n"
	        "  -q          no progress messages\n");
	exit(2);
}

static unsigned long number(const char *s, unsigned long min, unsigned long max)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || v < min || v > max)
		usage();
	return v;
}

int main(int argc, char **argv)
{
	const char *addr = "127.0.0.1", *port = NULL;
	unsigned long seconds = 0;
	long pid = 0;
	int opt;
	while ((opt = getopt(argc, argv, "a:p:c:s:r:d:P:qh")) != -1) {
		switch (opt) {
		case 'a': addr = optarg; break;
		case 'p': port = optarg; number(optarg, 1, 65535); break;
		case 'c': nconns = (uint32_t)number(optarg, 1, 10000000); break;
		case 's': msgsize = (uint32_t)number(optarg, 1, 1 << 30); break;
		case 'r': rounds = (uint32_t)number(optarg, 1, UINT32_MAX); break;
		case 'd': seconds = number(optarg, 1, 1000000); break;
		case 'P': pid = (long)number(optarg, 1, 1 << 30); break;
		case 'q': quiet = true; break;
		default: usage();
		}
	}
	if (optind != argc || !port || !nconns || (rounds && seconds))
		usage();
	if (!rounds && !seconds)
		rounds = 1;

	/* One descriptor per connection: allow as many as the hard limit. */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur < (rlim_t)nconns + 16)
		fprintf(stderr, "echo_client: warning: %lu descriptors allowed (ulimit -Hn), "
		        "%u connections need about %u\n", (unsigned long)rl.rlim_cur, nconns, nconns + 16);
	signal(SIGPIPE, SIG_IGN);

	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
	                         .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV};
	struct addrinfo *ai;
	int gai = getaddrinfo(addr, port, &hints, &ai);
	if (gai != 0) {
		fprintf(stderr, "echo_client: %s:%s: %s\n", addr, port, gai_strerror(gai));
		return 2;
	}
	conns = calloc(nconns, sizeof *conns);
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (!conns || ep < 0) {
		perror("echo_client");
		return 2;
	}
	for (uint32_t i = 0; i < nconns; i++)
		conns[i].fd = -1;

	enum { MAXEV = 1024 };
	static struct epoll_event evs[MAXEV];
	bool stalled = false;

	/* Connect everything first, so the measured phase is all round trips
	 * and the server holds every connection when it is sampled. */
	info("connecting %u connections to %s:%s", nconns, addr, port);
	int64_t t_connect = now_ns();
	last_progress = t_connect;
	uint32_t next = 0;
	while (next < nconns || connecting > 0) {
		while (next < nconns && connecting < CONNECT_BATCH)
			start_connect(&conns[next++], ai);
		int n = epoll_wait(ep, evs, MAXEV, 1000);
		for (int i = 0; i < n; i++)
			handle(&conns[evs[i].data.u32], evs[i].events, 0);
		if (now_ns() - last_progress > STALL_NS) {
			fprintf(stderr, "echo_client: no progress for 30 s: %u of %u connections up, "
			        "%u connecting\n", established, nconns, connecting);
			stalled = true;
			break;
		}
	}
	int64_t t0 = now_ns();
	double connect_s = (double)(t0 - t_connect) / 1e9;
	info("%u of %u connections up in %.2f s; %s", established, nconns, connect_s,
	     stalled ? "giving up" : "running");

	/* The measured phase. */
	int64_t deadline = seconds ? t0 + (int64_t)seconds * 1000000000 : 0;
	int64_t paused = 0; /* time spent reading /proc, not charged to the server */
	long threads = -1, rss = -1;
	bool sampled = false;
	for (uint32_t i = 0; i < nconns && !stalled; i++) {
		struct conn *c = &conns[i];
		if (c->state != C_IDLE)
			continue;
		c->state = C_ACTIVE;
		active++;
		kicked++;
		start_round(c, now_ns());
	}
	last_progress = now_ns();
	while (!stalled && active > 0) {
		int64_t now = now_ns();
		if (deadline && now >= deadline)
			break;
		int timeout = 1000;
		if (deadline && (deadline - now) / 1000000 + 1 < timeout)
			timeout = (int)((deadline - now) / 1000000 + 1);
		int n = epoll_wait(ep, evs, MAXEV, timeout);
		for (int i = 0; i < n; i++)
			handle(&conns[evs[i].data.u32], evs[i].events, deadline);
		if (!sampled && pid && settled >= kicked) {
			/* Every live connection has done a round trip, so a
			 * thread-per-connection server now has all its threads. */
			int64_t ts = now_ns();
			threads = server_threads(pid);
			rss = server_rss_kib(pid);
			sampled = true;
			int64_t took = now_ns() - ts;
			paused += took;
			if (deadline)
				deadline += took;
		}
		if (now_ns() - last_progress > STALL_NS) {
			fprintf(stderr, "echo_client: no progress for 30 s: %u connections still waiting\n",
			        active);
			stalled = true;
		}
	}
	int64_t t_end = now_ns();
	if (!stalled && deadline && deadline < t_end)
		t_end = deadline;
	else if (!stalled && !deadline)
		t_end = last_progress; /* the last reply or send */
	/* A stall fails whatever was still waiting, so errors tells it too. */
	for (uint32_t i = 0; i < nconns && stalled; i++)
		if (conns[i].state == C_CONNECTING || conns[i].state == C_HELLO ||
		    conns[i].state == C_ACTIVE)
			fail(&conns[i], "no reply for 30 s", 0);
	if (pid && !sampled) {
		threads = server_threads(pid);
		rss = server_rss_kib(pid);
	}
	double elapsed = (double)(t_end - t0 - paused) / 1e9;
	if (elapsed <= 0)
		elapsed = 1e-9;
	for (uint32_t i = 0; i < nconns; i++)
		if (conns[i].fd >= 0)
			close(conns[i].fd);

	qsort(samples, nsamples, sizeof *samples, cmp_i64);
	printf("connections %u\n", established);
	printf("round_trips %llu\n", (unsigned long long)round_trips);
	printf("bytes %llu\n", (unsigned long long)bytes);
	printf("errors %llu\n", (unsigned long long)errors);
	printf("rt_per_s %.1f\n", (double)round_trips / elapsed);
	printf("p50_us %.1f\n", percentile_us(0.50));
	printf("p99_us %.1f\n", percentile_us(0.99));
	if (pid) {
		printf("server_threads %ld\n", threads);
		printf("server_rss_kib %ld\n", rss);
	}
	printf("connect_s %.3f\n", connect_s);
	printf("elapsed_s %.3f\n", elapsed);
	fflush(stdout);
	freeaddrinfo(ai);
	return errors > 0 || established < nconns || stalled ? 1 : 0;
}
