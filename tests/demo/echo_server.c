/* A stock thread-per-connection TCP echo server (scripts/demo,
 * tests/legacy/echo.sh): plain POSIX, blocking I/O, one detached pthread
 * per connection. Nothing here knows about libgoshim; preloaded, its
 * threads become goroutines and its blocking reads park them.
 *
 * usage: echo_server [-a ADDR] [-p PORT] [-f FILE]
 *   -a ADDR  numeric address to listen on (default 127.0.0.1)
 *   -p PORT  port, 0 = any free one (default 0)
 *   -f FILE  write the bound port number to FILE (atomically) */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Small stacks so that 10,000 native threads fit in memory and in the
 * address space; the connection thread needs little more than its buffer. */
#define THREAD_STACK (64 * 1024)
#define BUF_SIZE 4096

static void *serve(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[BUF_SIZE];
	for (;;) {
		ssize_t n = read(fd, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(fd, buf + off, (size_t)(n - off));
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				goto out;
			off += w;
		}
	}
out:
	close(fd);
	return NULL;
}

static void write_port_file(const char *path, unsigned port)
{
	/* Written aside and renamed, so a script polling for the file never
	 * reads a partial number. */
	size_t len = strlen(path) + 5;
	char *tmp = malloc(len);
	if (!tmp) {
		perror("malloc");
		exit(1);
	}
	snprintf(tmp, len, "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	if (!f || fprintf(f, "%u\n", port) < 0 || fclose(f) != 0 || rename(tmp, path) != 0) {
		perror(path);
		exit(1);
	}
	free(tmp);
}

static void usage(void)
{
	fprintf(stderr, "usage: echo_server [-a ADDR] [-p PORT] [-f FILE]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *addr = "127.0.0.1", *port = "0", *portfile = NULL;
	int opt;
	while ((opt = getopt(argc, argv, "a:p:f:h")) != -1) {
		switch (opt) {
		case 'a': addr = optarg; break;
		case 'p': port = optarg; break;
		case 'f': portfile = optarg; break;
		default: usage();
		}
	}
	if (optind != argc)
		usage();

	/* One descriptor per connection: allow as many as the hard limit. */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	/* A client that goes away mid-write must cost an EPIPE, not the process. */
	signal(SIGPIPE, SIG_IGN);

	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
	                         .ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV};
	struct addrinfo *ai;
	int gai = getaddrinfo(addr, port, &hints, &ai);
	if (gai != 0) {
		fprintf(stderr, "echo_server: %s:%s: %s\n", addr, port, gai_strerror(gai));
		return 1;
	}
	int lfd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
	if (lfd < 0) {
		perror("socket");
		return 1;
	}
	int one = 1;
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(lfd, ai->ai_addr, ai->ai_addrlen) != 0) {
		perror("bind");
		return 1;
	}
	freeaddrinfo(ai);
	/* A deep backlog (the kernel caps it at net.core.somaxconn) so bursts of
	 * thousands of connects wait in the queue instead of losing SYNs. */
	if (listen(lfd, 4096) != 0) {
		perror("listen");
		return 1;
	}
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof ss;
	if (getsockname(lfd, (struct sockaddr *)&ss, &sslen) != 0) {
		perror("getsockname");
		return 1;
	}
	unsigned bound = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
	                                                 : ((struct sockaddr_in *)&ss)->sin_port);
	if (portfile)
		write_port_file(portfile, bound);
	printf("listening on %s:%u\n", addr, bound);
	fflush(stdout);

	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, THREAD_STACK);
	unsigned long create_failures = 0;
	for (;;) {
		int fd = accept(lfd, NULL, NULL);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				/* Out of descriptors or memory: let connections finish,
				 * then retry, rather than spin or die. */
				nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
				continue;
			}
			/* A client gone before accept, or (accept(2)) a pending
			 * network error on the new socket: not ours to die for. */
			if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO ||
			    errno == ENETDOWN || errno == ENETUNREACH || errno == EHOSTUNREACH)
				continue;
			perror("accept");
			return 1;
		}
		pthread_t t;
		int err = pthread_create(&t, &attr, serve, (void *)(intptr_t)fd);
		if (err) {
			/* Out of threads or memory: drop this client, keep serving;
			 * say so once, not once per client. */
			if (create_failures++ == 0)
				fprintf(stderr, "echo_server: pthread_create: %s (dropping clients)\n",
				        strerror(err));
			close(fd);
		}
	}
}
