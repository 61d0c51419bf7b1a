/* Helpers of the legacy I/O programs (io.c, io_edge.c): the errno names
 * of sockets, SYS, and jobs. A job is one blocking call made by a new
 * thread. The thread announces that it is about to block (an open gate
 * only counts arrivals); job_blocked waits for that and then 50 ms more,
 * so that the call is in all likelihood blocked when the main thread acts
 * (in most cases the outcome checked is the same if it is not; where not,
 * the case says so). */
#ifndef GOSHIM_LEGACY_JOB_H
#define GOSHIM_LEGACY_JOB_H

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "legacy.h"

/* ename() and the errno values of sockets and descriptors. */
static const char *en(int e)
{
	switch (e) {
	case EBADF: return "EBADF";
	case EPIPE: return "EPIPE";
	case ECONNRESET: return "ECONNRESET";
	case ECONNREFUSED: return "ECONNREFUSED";
	case EINPROGRESS: return "EINPROGRESS";
	case EALREADY: return "EALREADY";
	case EISCONN: return "EISCONN";
	case ENOTCONN: return "ENOTCONN";
	case ENOTSOCK: return "ENOTSOCK";
	case EFAULT: return "EFAULT";
	case EMSGSIZE: return "EMSGSIZE";
	}
	return ename(e);
}

/* A system call that must not fail (return -1); yields its result. */
#define SYS(call) \
	({ long r_ = (long)(call); \
	   if (r_ == -1) FAIL("%s:%d: %s: %s", __FILE__, __LINE__, #call, en(errno)); \
	   r_; })

/* A loopback TCP listener on a free port; *a gets its address. */
static inline int tcp_listener(struct sockaddr_in *a, int backlog)
{
	int one = 1, fd = (int)SYS(socket(AF_INET, SOCK_STREAM, 0));
	socklen_t len = sizeof *a;
	memset(a, 0, sizeof *a);
	a->sin_family = AF_INET;
	a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	SYS(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one));
	SYS(bind(fd, (struct sockaddr *)a, sizeof *a));
	SYS(listen(fd, backlog));
	SYS(getsockname(fd, (struct sockaddr *)a, &len));
	return fd;
}

static inline int is_nonblock(int fd)
{
	return ((int)SYS(fcntl(fd, F_GETFL)) & O_NONBLOCK) != 0;
}

struct job {
	struct gate g;
	pthread_t t;
	int fd;
	int flags;
	void *buf;
	size_t len;
	long ret;
	int err;
	struct sockaddr_in addr;        /* filled in by the call */
	socklen_t addrlen;
	const struct sockaddr *peer;    /* given to the call */
	socklen_t peerlen;
	struct iovec iov[3];
	struct mmsghdr mm[3];
};

/* job_init, then set any other fields the call uses, then job_run. */
static inline void job_init(struct job *j, int fd, void *buf, size_t len)
{
	memset(j, 0, sizeof *j);
	gate_init(&j->g);
	j->g.open = 1;
	j->fd = fd;
	j->buf = buf;
	j->len = len;
	j->ret = -2;
}

static inline void job_run(struct job *j, void *(*fn)(void *))
{
	CHECK0(pthread_create(&j->t, NULL, fn, j));
}

static inline void job_start(struct job *j, void *(*fn)(void *), int fd, void *buf, size_t len)
{
	job_init(j, fd, buf, len);
	job_run(j, fn);
}

static inline void job_about_to_block(struct job *j)
{
	gate_wait(&j->g);
	errno = 0;
}

static inline void job_blocked(struct job *j)
{
	gate_await_waiters(&j->g, 1);
	sleep_ms(50);
}

static inline long job_join(struct job *j)
{
	CHECK0(pthread_join(j->t, NULL));
	CHECK0(pthread_mutex_destroy(&j->g.m));
	CHECK0(pthread_cond_destroy(&j->g.c));
	return j->ret;
}

/* A job function: the thread makes call and keeps its result and errno. */
#define JOB_FN(name, call) \
	static void *name(void *arg) \
	{ \
		struct job *j = arg; \
		job_about_to_block(j); \
		j->ret = (long)(call); \
		j->err = errno; \
		return NULL; \
	}

#endif
