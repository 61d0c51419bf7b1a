/*
 * Blocking I/O on sockets and pipes as goroutine parking (DESIGN.md,
 * "Netpoller and I/O"; Go's internal/poll/fd_unix.go is the model).
 *
 * The descriptors the process creates through these functions (socket,
 * socketpair, accept, accept4, pipe, pipe2, epoll_create, dup of one of
 * them) are made non-blocking underneath and get a pollDesc in the fd
 * table. A call on one tries the system call; when it would block and the
 * program did not ask for O_NONBLOCK itself, the goroutine parks on the
 * pollDesc until the netpoller sees the fd ready, then tries again.
 *
 * Invariants:
 *  - Only file descriptions no other program can see are non-blocking
 *    without the program asking: inherited descriptors (stdin, a socket
 *    from the parent) are never in the table and run as system calls with
 *    entersyscall, so their P moves on while they block; a descriptor of
 *    ours that another program could inherit (before fork, exec, spawn,
 *    system, popen) or that stdio uses (fdopen, dup2 onto 0-2) leaves the
 *    table and blocks again, for good (fd_make_plain).
 *  - The program's own view of O_NONBLOCK and of the socket timeouts
 *    lives in pollDesc.flags/rcvtimeo/sndtimeo, shared by the dups of one
 *    open file description (desc_set); F_SETFL and FIONBIO change the
 *    view, the description stays non-blocking.
 *  - fdtab[fd] holds one reference to its pollDesc, and every call in
 *    flight holds another from fd_acquire to its end (cancellation acts
 *    only after it is dropped, io_done): a close() that races with a
 *    parked read wakes it (EBADF), and the pollDesc is reused only when
 *    the last call has left.
 *  - A goroutine locked to its thread (main, an adopted thread) waits in
 *    the kernel (ppoll) between entersyscall and exitsyscall: its thread
 *    is its own either way, and a signal handler interrupts its wait as it
 *    would natively.
 *  - None of this runs where the runtime may not be entered
 *    (may_enter_runtime: a signal handler that interrupted the runtime, a
 *    fork child): glibc's own function runs instead.
 *
 * POSIX semantics kept: partial reads; a blocking write or send writes
 * everything unless an error or a timeout ends it (then the count so far);
 * SO_RCVTIMEO and SO_SNDTIMEO end a wait with EAGAIN (connect: EINPROGRESS);
 * connect's EINPROGRESS is waited out and SO_ERROR returned; MSG_DONTWAIT
 * and MSG_ERRQUEUE never wait and MSG_WAITALL waits for all on a stream;
 * errno is left alone on success; the waits are cancellation points. The
 * _FORTIFY_SOURCE entry points check their buffer sizes as glibc's do.
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "interpose/interpose.h"

extern void __chk_fail(void) __attribute__((noreturn));

/* glibc's functions, for pass-through and the blocking paths. */
#define IO_REAL_FNS(X)                                                                     \
	X(read) X(write) X(readv) X(writev) X(recv) X(recvfrom) X(recvmsg) X(recvmmsg)     \
	X(send) X(sendto) X(sendmsg) X(sendmmsg) X(accept) X(accept4) X(connect) X(poll)  \
	X(ppoll) X(select) X(pselect) X(epoll_wait) X(epoll_pwait) X(close) X(shutdown)   \
	X(socket) X(socketpair) X(pipe) X(pipe2) X(dup) X(dup2) X(dup3) X(fcntl) X(ioctl) \
	X(setsockopt) X(epoll_create) X(epoll_create1) X(pread) X(pwrite) X(preadv)       \
	X(pwritev) X(open) X(openat) X(creat) X(fsync) X(fdatasync) X(waitpid) X(wait)    \
	X(wait4) X(waitid) X(getaddrinfo) X(gethostbyname) X(gethostbyname_r)             \
	X(gethostbyname2) X(gethostbyname2_r) X(gethostbyaddr) X(gethostbyaddr_r)         \
	X(getnameinfo) X(sigwait) X(sigwaitinfo) X(sigtimedwait) X(sigsuspend) X(flock) X(lockf)        \
	X(sendfile) X(splice) X(tee) X(system) X(execve) X(fexecve) X(posix_spawn)        \
	X(posix_spawnp) X(sync) X(syncfs) X(execvpe) X(fdopen) X(popen) X(close_range) X(closefrom) \
	X(eventfd) X(timerfd_create) X(inotify_init1)

#define X_FIELD(name) __typeof(name) *name;
static struct {
	IO_REAL_FNS(X_FIELD)
} io_real;
#undef X_FIELD

static void atfork_register_ours(void);
static void fds_inherit(void);

void io_init(void)
{
#define X_RESOLVE(name)                                                                   \
	io_real.name = (__typeof(io_real.name))dlsym(RTLD_NEXT, #name);                    \
	if (!io_real.name) {                                                               \
		printerr("goshim: cannot resolve %s\n", #name);                            \
		abort();                                                                   \
	}
	IO_REAL_FNS(X_RESOLVE)
#undef X_RESOLVE
	atfork_register_ours();
}

/* Are these calls ours to park? Not in pass-through, not from a signal
 * handler that interrupted the runtime, not in a fork child: then they are
 * glibc's (interpose.h: may_enter_runtime). */
static inline bool io_on(void)
{
	return interposing() && may_enter_runtime();
}

/* ---- the fd table --------------------------------------------------- */

enum { FD_NONBLOCK = 1 }; /* pollDesc.flags: the program set O_NONBLOCK */

#define FDTAB_SHIFT 12
#define FDTAB_CHUNK (1 << FDTAB_SHIFT)
#define FDTAB_TOP 1024 /* 4M descriptors */
typedef _Atomic(struct pollDesc *) fdslot_t;
static _Atomic(fdslot_t *) fdtab[FDTAB_TOP];

static fdslot_t *fd_slot(int fd, bool create)
{
	if (fd < 0 || (fd >> FDTAB_SHIFT) >= FDTAB_TOP)
		return NULL;
	_Atomic(fdslot_t *) *top = &fdtab[fd >> FDTAB_SHIFT];
	fdslot_t *chunk = atomic_load_explicit(top, memory_order_acquire);
	if (!chunk && create) {
		fdslot_t *fresh = calloc(FDTAB_CHUNK, sizeof *fresh);
		if (!fresh)
			return NULL;
		if (atomic_compare_exchange_strong(top, &chunk, fresh))
			chunk = fresh;
		else
			free(fresh);
	}
	return chunk ? &chunk[fd & (FDTAB_CHUNK - 1)] : NULL;
}

/* The pollDesc of fd with a reference for the caller, or NULL if the fd
 * is not one of ours. */
static struct pollDesc *fd_acquire(int fd)
{
	fdslot_t *slot = fd_slot(fd, false);
	if (!slot)
		return NULL;
	for (;;) {
		struct pollDesc *pd = atomic_load_explicit(slot, memory_order_acquire);
		if (!pd)
			return NULL;
		if (pd_acquire(pd)) {
			if (atomic_load(slot) == pd)
				return pd;
			pd_release(pd);
		}
	}
}

/* The fds of ours that share an open file description (dups) are linked
 * in a ring through pollDesc.sibling_*, under desc_lock: O_NONBLOCK and
 * the socket timeouts belong to the description, so setting them through
 * one fd shows through every other. */
static mutex_t desc_lock;

static void desc_link(struct pollDesc *pd, struct pollDesc *sibling)
{
	lock(&desc_lock);
	pd->sibling_next = sibling->sibling_next;
	pd->sibling_prev = sibling;
	sibling->sibling_next->sibling_prev = pd;
	sibling->sibling_next = pd;
	unlock(&desc_lock);
}

static void desc_unlink(struct pollDesc *pd)
{
	lock(&desc_lock);
	pd->sibling_prev->sibling_next = pd->sibling_next;
	pd->sibling_next->sibling_prev = pd->sibling_prev;
	pd->sibling_next = pd->sibling_prev = pd;
	unlock(&desc_lock);
}

/* Sets an attribute of the description on all its fds of ours. */
static void desc_set(struct pollDesc *pd, size_t field, int64_t v)
{
	lock(&desc_lock);
	struct pollDesc *p = pd;
	do {
		if (field == offsetof(struct pollDesc, flags))
			atomic_store(&p->flags, (uint32_t)v);
		else
			atomic_store((_Atomic int64_t *)((char *)p + field), v);
		p = p->sibling_next;
	} while (p != pd);
	unlock(&desc_lock);
}

/* Takes fd out of the table and wakes its waiters: the fd is about to be
 * closed or replaced. The caller is in the runtime (it holds a P). */
static void fd_forget(int fd, bool closing)
{
	fdslot_t *slot = fd_slot(fd, false);
	struct pollDesc *pd = slot ? atomic_exchange(slot, NULL) : NULL;
	if (pd) {
		desc_unlink(pd);
		netpollevict(pd, closing);
		pd_release(pd);
	}
}

/* Puts a descriptor this process just created (already non-blocking
 * underneath) under the netpoller. user_nonblock: the program asked for
 * O_NONBLOCK. sibling: the pollDesc of the fd it is a dup of, or NULL. If
 * epoll refuses the fd, it goes back to the mode the program asked for
 * and stays a plain fd. */
static void fd_adopt(int fd, bool user_nonblock, int64_t rcvtimeo, int64_t sndtimeo,
                     struct pollDesc *sibling)
{
	int e = errno;
	interpose_enter();
	fd_forget(fd, true); /* a stale entry: that fd was closed behind our back */
	int err;
	fdslot_t *slot = fd_slot(fd, true);
	struct pollDesc *pd = slot ? netpollopen(fd, &err) : NULL;
	if (pd) {
		atomic_store(&pd->flags, user_nonblock ? FD_NONBLOCK : 0);
		atomic_store(&pd->rcvtimeo, rcvtimeo);
		atomic_store(&pd->sndtimeo, sndtimeo);
		if (sibling)
			desc_link(pd, sibling);
		struct pollDesc *old = atomic_exchange(slot, pd);
		if (old) { /* cannot happen: fd is ours until we return it */
			desc_unlink(old);
			netpollevict(old, true);
			pd_release(old);
		}
	} else if (!user_nonblock) {
		long fl = syscall(SYS_fcntl, fd, F_GETFL);
		if (fl >= 0)
			syscall(SYS_fcntl, fd, F_SETFL, fl & ~O_NONBLOCK);
	}
	interpose_leave();
	errno = e;
}

/* ---- waiting ---------------------------------------------------------- */

/* A call that may block in the kernel: its P is handed off while it does
 * (Go's entersyscall/exitsyscall). The caller is in foreign code, whose
 * P is already in _Psyscall: it moves to the system-call state and back
 * without taking the P (entersyscall_foreign, exitsyscall_foreign), so a
 * blocking call never waits for a P, nor for a stopped world (a fork
 * whose glibc part may wait for a lock this thread holds: a malloc arena,
 * when a signal handler that interrupted malloc calls waitpid). NULL when
 * not interposing. */
struct g *sys_begin(void)
{
	if (!io_on())
		return NULL;
	struct g *gp = getg();
	if (unlikely(!gp))
		gp = needm();
	entersyscall_foreign();
	return gp;
}

void sys_end(struct g *gp)
{
	if (!gp)
		return;
	int e = errno;
	exitsyscall_foreign();
	if (unlikely(atomic_load_explicit(&gp->sigpending, memory_order_relaxed)))
		sigpending_deliver(0);
	errno = e;
}

#define BLOCKING(expr)                                                                     \
	({                                                                                 \
		SYS_CALL_SCOPE(sc_);                                                       \
		__typeof__(expr) r_ = (expr);                                              \
		sys_call_end(&sc_);                                                        \
		r_;                                                                        \
	})

/* A wait for signals in the kernel, which takes the blocked signals in
 * take (sigwait's set; what sigsuspend's mask unblocks). Signals that
 * pthread_kill left pending for the goroutine and the call takes become
 * its M's, where the kernel finds them, and one sent during the call
 * reaches the M (runtime/proc.c: goroutine_kill reads g.callopen). The
 * system-call state and callopen are published before the pending set
 * is read; goroutine_kill sets its bit before it reads them: one of the
 * two sees the other. */
static void sigcall_begin(struct g *gp, uint64_t take)
{
	if (gp) {
		atomic_store(&gp->callopen, take);
		atomic_thread_fence(memory_order_seq_cst);
		proc_pending_claim(gp, take | ~gp->sigmask);
		if (atomic_load(&gp->sigpending))
			sigpending_deliver(take);
	}
}

static void sigcall_end(struct g *gp)
{
	if (gp)
		atomic_store(&gp->callopen, 0);
	sys_end(gp);
}

#define SIGCALL(take, expr)                                                                \
	({                                                                                 \
		SYS_CALL_SCOPE(sc_); /* before a handler run here may unwind */            \
		sigcall_begin(sc_.gp, take);                                               \
		__typeof__(expr) r_ = (expr);                                              \
		sc_.done = true;                                                           \
		sigcall_end(sc_.gp);                                                       \
		r_;                                                                        \
	})

static uint64_t set64(const sigset_t *set)
{
	uint64_t m = 0;
	if (set)
		memcpy(&m, set, sizeof m);
	return m;
}

static struct timespec *ts_until(int64_t deadline, struct timespec *ts)
{
	if (!deadline)
		return NULL;
	int64_t d = deadline - nanotime();
	if (d < 0)
		d = 0;
	ts->tv_sec = d / 1000000000;
	ts->tv_nsec = d % 1000000000;
	return ts;
}

/* sigs_restart when we do not know which signal it was: any but the
 * synchronous fault signals (the runtime's own stack-guard handler among
 * them), which never interrupt a system call. */
static bool handlers_restart(void)
{
	uint64_t faults = SIGBIT(SIGSEGV) | SIGBIT(SIGBUS) | SIGBIT(SIGFPE) | SIGBIT(SIGILL) |
	                  SIGBIT(SIGTRAP);
	return sigs_restart(~faults);
}

/* Waits until mode may be ready on pd (seen: pd_seq before the attempt
 * that would have blocked). 0: try again; else EBADF (closed under us),
 * ETIMEDOUT, ECANCELED (pthread_cancel: the caller acts on it once it
 * holds no reference, io_done), EINTR: a signal handler without
 * SA_RESTART ran (as one interrupts a socket call with a timeout whatever
 * its flags), or IO_RESTARTED: handlers with SA_RESTART ran, and the call
 * goes on unless it has moved data already (then the kernel's returns
 * the count). A thread-locked goroutine waits in the kernel, where the
 * signal finds it; a parked one's wait is ended by pthread_kill
 * (park_interrupt), and the handler runs as it leaves the runtime. */
#define IO_RESTARTED (-1)
static int io_wait(struct pollDesc *pd, uint32_t mode, uint32_t seen, int64_t deadline)
{
	if (!parks_here()) {
		struct pollfd p = {.fd = pd->fd, .events = mode == POLL_R ? POLLIN : POLLOUT};
		struct timespec ts;
		long n = BLOCKING(syscall(SYS_ppoll, &p, 1, ts_until(deadline, &ts), NULL, 0));
		if (n < 0)
			return errno == EINTR && !deadline && handlers_restart() ? IO_RESTARTED : errno;
		return n == 0 ? ETIMEDOUT : 0;
	}
	uint32_t flags = (cancel_enabled() ? PARK_CANCEL : 0) | PARK_INTR;
	struct g *gp = interpose_enter();
	int r = netpollwait(pd, mode, seen, deadline, flags);
	if (r == EINTR) {
		/* Decided before the handlers run, as the kernel does: one
		 * may reset its own action (SA_RESETHAND). */
		uint64_t sigs = park_sigs(gp);
		if (!sigs)
			r = 0; /* taken meanwhile: nothing to deliver */
		else if (!deadline && sigs_restart(sigs))
			r = IO_RESTARTED;
	}
	interpose_leave(); /* runs their handlers */
	return r;
}

/* The end of an interposed call that may have waited: a cancellation
 * that ended the wait acts now (it unwinds), when no reference is held;
 * on success errno is the caller's own (the attempts before a wait failed
 * with EAGAIN). */
static ssize_t io_done(ssize_t r, int saved_errno)
{
	if (r >= 0) {
		errno = saved_errno;
	} else if (errno == ECANCELED) {
		pthread_testcancel();
		errno = EINTR;
	}
	return r;
}

/* poll with a zero timeout (aarch64 has ppoll only). */
static long raw_poll0(struct pollfd *fds, nfds_t n)
{
	struct timespec zero = {0, 0};
	return syscall(SYS_ppoll, fds, n, &zero, NULL, 0);
}

static int64_t timeo_of(struct pollDesc *pd, uint32_t mode)
{
	return atomic_load(mode == POLL_R ? &pd->rcvtimeo : &pd->sndtimeo);
}

/* A socket error that arrived while a writer was parked (a reset, a peer
 * that closed with data unread): the kernel's own blocking send sees it
 * in its wait loop before it tries again, and so does a woken writer. 0
 * if none or not a socket. */
static int pending_error(int fd)
{
	int soerr = 0;
	socklen_t len = sizeof soerr;
	if (syscall(SYS_getsockopt, fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0)
		return 0;
	return soerr;
}

/* The heart of every call: try op on a descriptor of ours, park while it
 * would block (unless the program's view, or dontwait, says non-blocking),
 * until deadline (0: the socket timeout for mode, if any). The caller
 * holds a reference on pd throughout. Returns op's result, errno set when
 * it fails; ETIMEDOUT of a wait becomes timeout_errno. moved: the call
 * has moved data already, so a signal handler ends it (EINTR, for the
 * caller to return the count) even with SA_RESTART. */
static inline __attribute__((always_inline)) ssize_t
io_loop(struct pollDesc *pd, uint32_t mode, ssize_t (*op)(void *), void *a, int timeout_errno,
        bool dontwait, int64_t deadline, bool moved)
{
	bool nonblock = dontwait ||
	                (atomic_load_explicit(&pd->flags, memory_order_relaxed) & FD_NONBLOCK);
	int64_t timeo = deadline ? 0 : timeo_of(pd, mode);
	ssize_t r;
	for (;;) {
		uint32_t seen = pd_seq(pd, mode);
		r = op(a);
		if (r >= 0 || errno != EAGAIN || nonblock || atomic_load(&pd->evicted))
			return r;
		if (timeo && !deadline)
			deadline = nanotime() + timeo;
		int e = io_wait(pd, mode, seen, deadline);
		if (e == IO_RESTARTED)
			e = moved ? EINTR : 0;
		if (!e && mode == POLL_W)
			e = pending_error(pd->fd);
		if (e) {
			errno = e == ETIMEDOUT ? timeout_errno : e;
			return -1;
		}
	}
}

/* Releases the caller's reference, errno intact, and ends the call
 * (io_done). */
static ssize_t io_release_done(struct pollDesc *pd, ssize_t r, int saved_errno)
{
	int e = errno;
	pd_release(pd);
	errno = e;
	return io_done(r, saved_errno);
}

/* Every interposed read-like call on one descriptor: glibc's function
 * when the runtime is not in charge, a blocking system call when the fd
 * is not ours, else io_loop. */
#define IO_CALL(fd, mode, op, a, dontwait, passthrough)                                    \
	do {                                                                               \
		if (!io_on())                                                              \
			return passthrough;                                                \
		int saved_ = errno;                                                        \
		pthread_testcancel();                                                      \
		struct pollDesc *pd_ = fd_acquire(fd);                                     \
		if (!pd_)                                                                  \
			return BLOCKING(passthrough);                                      \
		return io_release_done(pd_, io_loop(pd_, mode, op, a, EAGAIN, dontwait, 0, false), \
		                       saved_);                                            \
	} while (0)

/* Flags with which a receive never waits: the error queue never blocks. */
#define RECV_NOWAIT (MSG_DONTWAIT | MSG_ERRQUEUE)

/* ---- read side -------------------------------------------------------- */

struct rw_args {
	int fd;
	void *buf;
	size_t n;
	int flags;
	struct sockaddr *addr;
	socklen_t *addrlen;
	const struct iovec *iov;
	int iovcnt;
	struct msghdr *msg;
};

static ssize_t op_read(void *p)
{
	struct rw_args *a = p;
	return syscall(SYS_read, a->fd, a->buf, a->n);
}

static ssize_t op_readv(void *p)
{
	struct rw_args *a = p;
	return syscall(SYS_readv, a->fd, a->iov, a->iovcnt);
}

static ssize_t op_recvfrom(void *p)
{
	struct rw_args *a = p;
	return syscall(SYS_recvfrom, a->fd, a->buf, a->n, a->flags, a->addr, a->addrlen);
}

static ssize_t op_recvmsg(void *p)
{
	struct rw_args *a = p;
	return syscall(SYS_recvmsg, a->fd, a->msg, a->flags);
}

EXPORT ssize_t read(int fd, void *buf, size_t n)
{
	struct rw_args a = {.fd = fd, .buf = buf, .n = n};
	IO_CALL(fd, POLL_R, op_read, &a, false, io_real.read(fd, buf, n));
}

EXPORT ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen)
{
	if (n > buflen)
		__chk_fail();
	return read(fd, buf, n);
}

EXPORT ssize_t readv(int fd, const struct iovec *iov, int iovcnt)
{
	struct rw_args a = {.fd = fd, .iov = iov, .iovcnt = iovcnt};
	IO_CALL(fd, POLL_R, op_readv, &a, false, io_real.readv(fd, iov, iovcnt));
}

static bool is_stream(int fd)
{
	int type = 0;
	socklen_t len = sizeof type;
	return syscall(SYS_getsockopt, fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 &&
	       type == SOCK_STREAM;
}

/* recv and recvfrom. MSG_WAITALL on a stream socket waits until n bytes
 * came, EOF, or an error (then what came so far); with MSG_PEEK until n
 * bytes can be peeked. */
static ssize_t recv_common(int fd, void *buf, size_t n, int flags, struct sockaddr *addr,
                           socklen_t *addrlen)
{
	if (!io_on())
		return io_real.recvfrom(fd, buf, n, flags, addr, addrlen);
	int saved = errno;
	pthread_testcancel();
	struct pollDesc *pd = fd_acquire(fd);
	if (!pd)
		return BLOCKING(io_real.recvfrom(fd, buf, n, flags, addr, addrlen));
	struct rw_args a = {.fd = fd, .buf = buf, .n = n, .flags = flags & ~MSG_WAITALL,
	                    .addr = addr, .addrlen = addrlen};
	bool dontwait = flags & RECV_NOWAIT;
	if (!(flags & MSG_WAITALL) || dontwait || (atomic_load(&pd->flags) & FD_NONBLOCK) ||
	    !is_stream(fd)) {
		a.flags = flags;
		return io_release_done(pd, io_loop(pd, POLL_R, op_recvfrom, &a, EAGAIN, dontwait, 0,
		                                   false),
		                       saved);
	}
	size_t got = 0;
	ssize_t r = 0;
	while (got < n) {
		if (flags & MSG_PEEK) {
			a.n = n;
			a.flags = flags & ~MSG_WAITALL;
		} else {
			a.buf = (char *)buf + got;
			a.n = n - got;
		}
		uint32_t seen = pd_seq(pd, POLL_R);
		r = io_loop(pd, POLL_R, op_recvfrom, &a, EAGAIN, false, 0, got > 0);
		if (r <= 0)
			break;
		if (flags & MSG_PEEK) {
			if ((size_t)r >= n)
				break;
			/* Not all there yet: wait for more, then peek again. */
			int e = io_wait(pd, POLL_R, seen, 0);
			if (e == IO_RESTARTED)
				continue; /* a peek has taken nothing */
			if (e) {
				errno = e;
				r = -1;
				break;
			}
			continue;
		}
		got += (size_t)r;
	}
	if (flags & MSG_PEEK)
		return io_release_done(pd, r, saved);
	return io_release_done(pd, got ? (ssize_t)got : r, saved);
}

EXPORT ssize_t recv(int fd, void *buf, size_t n, int flags)
{
	return recv_common(fd, buf, n, flags, NULL, NULL);
}

EXPORT ssize_t recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *addr,
                        socklen_t *addrlen)
{
	return recv_common(fd, buf, n, flags, addr, addrlen);
}

EXPORT ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags)
{
	if (n > buflen)
		__chk_fail();
	return recv_common(fd, buf, n, flags, NULL, NULL);
}

EXPORT ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags,
                              struct sockaddr *addr, socklen_t *addrlen)
{
	if (n > buflen)
		__chk_fail();
	return recv_common(fd, buf, n, flags, addr, addrlen);
}

/* ---- descriptors passed in SCM_RIGHTS --------------------------------- */

/* A description of ours sent in SCM_RIGHTS stays non-blocking underneath:
 * we cannot know who receives it. When it comes back to this process, the
 * receiving fd joins the table with the view the sending fd had, found by
 * the description's (st_dev, st_ino) among the last SENT_RING sent. */
#define SENT_RING 64
static struct {
	mutex_t lock;
	unsigned int next;
	struct sent_desc {
		dev_t dev;
		ino_t ino;
		uint32_t view;
	} ring[SENT_RING];
} sent;

static int *rights_fds(struct cmsghdr *c, size_t *n)
{
	if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
		return NULL;
	*n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
	return (int *)(void *)CMSG_DATA(c);
}

static void note_sent_fds(const struct msghdr *msg)
{
	if (!msg->msg_control || msg->msg_controllen < sizeof(struct cmsghdr))
		return;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR((struct msghdr *)msg, c)) {
		size_t n;
		int *fds = rights_fds(c, &n);
		for (size_t i = 0; fds && i < n; i++) {
			struct pollDesc *pd = fd_acquire(fds[i]);
			struct stat st;
			if (pd && syscall(SYS_fstat, fds[i], &st) == 0) {
				lock(&sent.lock);
				sent.ring[sent.next++ % SENT_RING] = (struct sent_desc){
					st.st_dev, st.st_ino, atomic_load(&pd->flags)};
				unlock(&sent.lock);
			}
			if (pd)
				pd_release(pd);
		}
	}
}

static void adopt_received_fds(struct msghdr *msg)
{
	if (!msg->msg_control || msg->msg_controllen < sizeof(struct cmsghdr))
		return;
	int e = errno;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
		size_t n;
		int *fds = rights_fds(c, &n);
		for (size_t i = 0; fds && i < n; i++) {
			struct stat st;
			if (syscall(SYS_fstat, fds[i], &st) != 0)
				continue;
			bool found = false;
			uint32_t view = 0;
			lock(&sent.lock);
			for (int k = 0; k < SENT_RING && !found; k++) {
				struct sent_desc *d = &sent.ring[k];
				if (d->ino == st.st_ino && d->dev == st.st_dev && d->ino) {
					found = true;
					view = d->view;
				}
			}
			unlock(&sent.lock);
			if (found)
				fd_adopt(fds[i], view & FD_NONBLOCK, 0, 0, NULL);
		}
	}
	errno = e;
}

EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
	if (!io_on())
		return io_real.recvmsg(fd, msg, flags);
	int saved = errno;
	pthread_testcancel();
	ssize_t r;
	struct pollDesc *pd = fd_acquire(fd);
	if (!pd) {
		r = BLOCKING(io_real.recvmsg(fd, msg, flags));
	} else {
		struct rw_args a = {.fd = fd, .msg = msg, .flags = flags};
		r = io_release_done(pd, io_loop(pd, POLL_R, op_recvmsg, &a, EAGAIN,
		                                 flags & RECV_NOWAIT, 0, false), saved);
	}
	if (r >= 0)
		adopt_received_fds(msg);
	return r;
}

/* ---- write side --------------------------------------------------------- */

static ssize_t op_write(void *p)
{
	struct rw_args *a = p;
	return syscall(SYS_write, a->fd, a->buf, a->n);
}

static ssize_t op_sendto(void *p)
{
	struct rw_args *a = p;
	return syscall(SYS_sendto, a->fd, a->buf, a->n, a->flags, a->addr,
	               (socklen_t)(uintptr_t)a->addrlen);
}

static ssize_t op_writev(void *p)
{
	struct rw_args *a = p;
	return syscall(SYS_writev, a->fd, a->iov, a->iovcnt);
}

static ssize_t op_sendmsg(void *p)
{
	struct rw_args *a = p;
	return syscall(SYS_sendmsg, a->fd, a->msg, a->flags);
}

/* The deadline of a whole blocking send: SO_SNDTIMEO bounds the call, not
 * each part of it. */
static int64_t send_deadline(struct pollDesc *pd)
{
	int64_t t = timeo_of(pd, POLL_W);
	return t ? nanotime() + t : 0;
}

/* A blocking write writes everything: the rest of a partial write goes out
 * as room appears, and an error or timeout after a partial write returns
 * the count so far (as the kernel's own blocking write does). */
static ssize_t write_all(struct pollDesc *pd, ssize_t (*op)(void *), struct rw_args *a,
                         bool dontwait)
{
	bool nonblock = dontwait || (atomic_load(&pd->flags) & FD_NONBLOCK);
	int64_t deadline = nonblock ? 0 : send_deadline(pd);
	size_t done = 0, n = a->n;
	for (;;) {
		ssize_t r = io_loop(pd, POLL_W, op, a, EAGAIN, nonblock, deadline, done > 0);
		if (r < 0)
			return done ? (ssize_t)done : r;
		done += (size_t)r;
		if (nonblock || done >= n || r == 0)
			return (ssize_t)done;
		a->buf = (char *)a->buf + r;
		a->n -= (size_t)r;
	}
}

static ssize_t send_common(int fd, const void *buf, size_t n, int flags,
                           const struct sockaddr *addr, socklen_t addrlen, bool is_write)
{
	if (!io_on())
		return is_write ? io_real.write(fd, buf, n)
		                : io_real.sendto(fd, buf, n, flags, addr, addrlen);
	int saved = errno;
	pthread_testcancel();
	struct pollDesc *pd = fd_acquire(fd);
	if (!pd)
		return is_write ? BLOCKING(io_real.write(fd, buf, n))
		                : BLOCKING(io_real.sendto(fd, buf, n, flags, addr, addrlen));
	struct rw_args a = {.fd = fd, .buf = (void *)buf, .n = n, .flags = flags,
	                    .addr = (struct sockaddr *)addr,
	                    .addrlen = (socklen_t *)(uintptr_t)addrlen};
	ssize_t r = write_all(pd, is_write ? op_write : op_sendto, &a, flags & MSG_DONTWAIT);
	return io_release_done(pd, r, saved);
}

EXPORT ssize_t write(int fd, const void *buf, size_t n)
{
	return send_common(fd, buf, n, 0, NULL, 0, true);
}

EXPORT ssize_t send(int fd, const void *buf, size_t n, int flags)
{
	return send_common(fd, buf, n, flags, NULL, 0, false);
}

EXPORT ssize_t sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *addr,
                      socklen_t addrlen)
{
	return send_common(fd, buf, n, flags, addr, addrlen, false);
}

/* writev and sendmsg: the iovec array advances past a partial write on a
 * copy, never in the program's own array. */
static ssize_t writev_all(struct pollDesc *pd, struct rw_args *a, bool is_msg)
{
	const struct iovec *iov = is_msg ? a->msg->msg_iov : a->iov;
	int cnt = is_msg ? (int)a->msg->msg_iovlen : a->iovcnt;
	if (cnt < 0 || cnt > IOV_MAX || (is_msg && a->msg->msg_iovlen > IOV_MAX)) {
		errno = is_msg ? EMSGSIZE : EINVAL;
		return -1;
	}
	bool nonblock = (is_msg && (a->flags & MSG_DONTWAIT)) ||
	                (atomic_load(&pd->flags) & FD_NONBLOCK);
	int64_t deadline = nonblock ? 0 : send_deadline(pd);
	ssize_t (*op)(void *) = is_msg ? op_sendmsg : op_writev;
	size_t total = 0;
	for (int i = 0; i < cnt; i++)
		total += iov[i].iov_len;
	ssize_t r = io_loop(pd, POLL_W, op, a, EAGAIN, nonblock, deadline, false);
	if (r < 0 || (size_t)r >= total || nonblock)
		return r;
	struct iovec copy[cnt];
	struct msghdr m;
	if (is_msg) {
		m = *a->msg;
		m.msg_control = NULL; /* ancillary data went with the first part */
		m.msg_controllen = 0;
		m.msg_name = NULL;
		m.msg_namelen = 0;
		a->msg = &m;
	}
	size_t done = (size_t)r;
	while (done < total) {
		size_t skip = done;
		int first = 0;
		while (skip >= iov[first].iov_len)
			skip -= iov[first++].iov_len;
		memcpy(copy, iov + first, (size_t)(cnt - first) * sizeof *copy);
		copy[0].iov_base = (char *)copy[0].iov_base + skip;
		copy[0].iov_len -= skip;
		if (is_msg) {
			m.msg_iov = copy;
			m.msg_iovlen = (size_t)(cnt - first);
		} else {
			a->iov = copy;
			a->iovcnt = cnt - first;
		}
		r = io_loop(pd, POLL_W, op, a, EAGAIN, false, deadline, true);
		if (r <= 0)
			break;
		done += (size_t)r;
	}
	return (ssize_t)done;
}

EXPORT ssize_t writev(int fd, const struct iovec *iov, int iovcnt)
{
	if (!io_on())
		return io_real.writev(fd, iov, iovcnt);
	int saved = errno;
	pthread_testcancel();
	struct pollDesc *pd = fd_acquire(fd);
	if (!pd)
		return BLOCKING(io_real.writev(fd, iov, iovcnt));
	struct rw_args a = {.fd = fd, .iov = iov, .iovcnt = iovcnt};
	return io_release_done(pd, writev_all(pd, &a, false), saved);
}

EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	if (!io_on())
		return io_real.sendmsg(fd, msg, flags);
	int saved = errno;
	pthread_testcancel();
	note_sent_fds(msg);
	struct pollDesc *pd = fd_acquire(fd);
	if (!pd)
		return BLOCKING(io_real.sendmsg(fd, msg, flags));
	struct rw_args a = {.fd = fd, .msg = (struct msghdr *)msg, .flags = flags};
	return io_release_done(pd, writev_all(pd, &a, true), saved);
}

/* ---- several messages ---------------------------------------------------- */

struct mmsg_args {
	int fd;
	struct mmsghdr *v;
	unsigned int n;
	int flags;
};

static ssize_t op_recvmmsg(void *p)
{
	struct mmsg_args *a = p;
	return syscall(SYS_recvmmsg, a->fd, a->v, a->n, a->flags | MSG_DONTWAIT, NULL);
}

static ssize_t op_sendmmsg(void *p)
{
	struct mmsg_args *a = p;
	return syscall(SYS_sendmmsg, a->fd, a->v, a->n, a->flags | MSG_DONTWAIT);
}

/* A blocking recvmmsg waits for vlen messages (MSG_WAITFORONE: for one);
 * a timeout is looked at after each message, as Linux does (it never
 * bounds the wait for the first one), and gets the time left. A blocking
 * sendmmsg sends them all. An error after some returns the count. */
static int mmsg_all(int fd, struct mmsghdr *v, unsigned int n, int flags, uint32_t mode,
                    struct timespec *tmo)
{
	int saved = errno;
	pthread_testcancel();
	struct pollDesc *pd = fd_acquire(fd);
	if (!pd)
		return mode == POLL_R ? BLOCKING(io_real.recvmmsg(fd, v, n, flags, tmo))
		                      : BLOCKING(io_real.sendmmsg(fd, v, n, flags));
	bool once = (flags & (mode == POLL_R ? RECV_NOWAIT : MSG_DONTWAIT)) ||
	            (atomic_load(&pd->flags) & FD_NONBLOCK);
	int64_t deadline = tmo ? nanotime() + (int64_t)tmo->tv_sec * 1000000000 + tmo->tv_nsec : 0;
	unsigned int done = 0;
	ssize_t r;
	for (;;) {
		struct mmsg_args a = {.fd = fd, .v = v + done, .n = n - done, .flags = flags};
		r = io_loop(pd, mode, mode == POLL_R ? op_recvmmsg : op_sendmmsg, &a, EAGAIN, once,
		            0, done > 0);
		if (r <= 0)
			break;
		done += (unsigned int)r;
		if (once || done >= n || (mode == POLL_R && (flags & MSG_WAITFORONE)) ||
		    (deadline && nanotime() >= deadline))
			break;
	}
	if (tmo) {
		int64_t left = deadline - nanotime();
		if (left < 0)
			left = 0;
		tmo->tv_sec = left / 1000000000;
		tmo->tv_nsec = left % 1000000000;
	}
	return (int)io_release_done(pd, done ? (ssize_t)done : r, saved);
}

EXPORT int recvmmsg(int fd, struct mmsghdr *v, unsigned int n, int flags, struct timespec *tmo)
{
	if (!io_on())
		return io_real.recvmmsg(fd, v, n, flags, tmo);
	if (tmo && (tmo->tv_sec < 0 || tmo->tv_nsec < 0 || tmo->tv_nsec >= 1000000000)) {
		errno = EINVAL;
		return -1;
	}
	return mmsg_all(fd, v, n, flags, POLL_R, tmo);
}

EXPORT int sendmmsg(int fd, struct mmsghdr *v, unsigned int n, int flags)
{
	if (!io_on())
		return io_real.sendmmsg(fd, v, n, flags);
	return mmsg_all(fd, v, n, flags, POLL_W, NULL);
}

/* ---- connections ------------------------------------------------------------ */

static ssize_t op_accept4(void *p)
{
	struct rw_args *a = p;
	return syscall(SYS_accept4, a->fd, a->addr, a->addrlen, a->flags | SOCK_NONBLOCK);
}

/* The accepted socket inherits the listener's socket timeouts, as in
 * Linux. */
static int accept_common(int fd, struct sockaddr *addr, socklen_t *addrlen, int flags)
{
	if (!io_on())
		return io_real.accept4(fd, addr, addrlen, flags);
	int saved = errno;
	pthread_testcancel();
	struct pollDesc *pd = fd_acquire(fd);
	if (!pd)
		return BLOCKING(io_real.accept4(fd, addr, addrlen, flags));
	struct rw_args a = {.fd = fd, .addr = addr, .addrlen = addrlen, .flags = flags};
	int nfd = (int)io_loop(pd, POLL_R, op_accept4, &a, EAGAIN, false, 0, false);
	if (nfd >= 0)
		fd_adopt(nfd, flags & SOCK_NONBLOCK, atomic_load(&pd->rcvtimeo),
		         atomic_load(&pd->sndtimeo), NULL);
	return (int)io_release_done(pd, nfd, saved);
}

EXPORT int accept(int fd, struct sockaddr *addr, socklen_t *addrlen)
{
	return accept_common(fd, addr, addrlen, 0);
}

EXPORT int accept4(int fd, struct sockaddr *addr, socklen_t *addrlen, int flags)
{
	if (flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) {
		errno = EINVAL;
		return -1;
	}
	return accept_common(fd, addr, addrlen, flags);
}

/* What connect_in_kernel must undo, if a cancel unwinds out of it too:
 * the description's flags, and the caller's reference. */
struct kernel_connect {
	int fd;
	long fl;
	struct pollDesc *pd;
	bool done;
};

static void kernel_connect_unwound(struct kernel_connect *k)
{
	if (k->done)
		return;
	syscall(SYS_fcntl, k->fd, F_SETFL, k->fl);
	pd_release(k->pd);
}

/* A blocking connect in the kernel, the description made blocking for
 * the call: an AF_UNIX connect to a full backlog waits there (honouring
 * SO_SNDTIMEO) instead of failing with EAGAIN. */
static int connect_in_kernel(struct pollDesc *pd, int fd, const struct sockaddr *addr,
                             socklen_t len)
{
	long fl = syscall(SYS_fcntl, fd, F_GETFL);
	if (fl < 0)
		return -1;
	syscall(SYS_fcntl, fd, F_SETFL, fl & ~O_NONBLOCK);
	struct kernel_connect k __attribute__((cleanup(kernel_connect_unwound))) = {
		fd, fl, pd, false };
	int r = BLOCKING(io_real.connect(fd, addr, len));
	int e = errno;
	k.done = true;
	syscall(SYS_fcntl, fd, F_SETFL, fl);
	errno = e;
	return r;
}

/* connect: EINPROGRESS is waited out and the outcome is SO_ERROR
 * (fd_unix.go: connect); SO_SNDTIMEO ends the wait with EINPROGRESS, as
 * Linux's blocking connect does. */
EXPORT int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	if (!io_on())
		return io_real.connect(fd, addr, len);
	int saved = errno;
	pthread_testcancel();
	struct pollDesc *pd = fd_acquire(fd);
	if (!pd)
		return BLOCKING(io_real.connect(fd, addr, len));
	int r = (int)syscall(SYS_connect, fd, addr, len);
	if (r == 0 || (atomic_load(&pd->flags) & FD_NONBLOCK) ||
	    (errno != EINPROGRESS && errno != EAGAIN))
		return (int)io_release_done(pd, r, saved);
	if (errno == EAGAIN)
		return (int)io_release_done(pd, connect_in_kernel(pd, fd, addr, len), saved);
	int64_t deadline = send_deadline(pd);
	for (;;) {
		uint32_t seen = pd_seq(pd, POLL_W);
		struct pollfd p = {.fd = fd, .events = POLLOUT};
		if (raw_poll0(&p, 1) > 0) {
			int soerr = 0;
			socklen_t sl = sizeof soerr;
			if (syscall(SYS_getsockopt, fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
				soerr = errno;
			/* The kernel marks the socket connected at the next
			 * connect, as a blocking connect does before it returns:
			 * then one more connect gives EISCONN, as natively. */
			if (!soerr)
				syscall(SYS_connect, fd, addr, len);
			r = soerr ? -1 : 0;
			errno = soerr;
			break;
		}
		int w = io_wait(pd, POLL_W, seen, deadline);
		if (w == IO_RESTARTED)
			continue; /* the kernel's restarted connect waits on */
		if (w) {
			r = -1;
			errno = w == ETIMEDOUT ? EINPROGRESS : w;
			break;
		}
	}
	return (int)io_release_done(pd, r, saved);
}

/* ---- descriptors ---------------------------------------------------------- */

static int64_t timeo_ns(const struct timeval *tv)
{
	return (int64_t)tv->tv_sec * 1000000000 + (int64_t)tv->tv_usec * 1000;
}

EXPORT int socket(int domain, int type, int protocol)
{
	if (!io_on())
		return io_real.socket(domain, type, protocol);
	int fd = io_real.socket(domain, type | SOCK_NONBLOCK, protocol);
	if (fd >= 0)
		fd_adopt(fd, type & SOCK_NONBLOCK, 0, 0, NULL);
	return fd;
}

EXPORT int socketpair(int domain, int type, int protocol, int sv[2])
{
	if (!io_on())
		return io_real.socketpair(domain, type, protocol, sv);
	int r = io_real.socketpair(domain, type | SOCK_NONBLOCK, protocol, sv);
	if (r == 0) {
		fd_adopt(sv[0], type & SOCK_NONBLOCK, 0, 0, NULL);
		fd_adopt(sv[1], type & SOCK_NONBLOCK, 0, 0, NULL);
	}
	return r;
}

EXPORT int pipe2(int fds[2], int flags)
{
	if (!io_on())
		return io_real.pipe2(fds, flags);
	int r = io_real.pipe2(fds, flags | O_NONBLOCK);
	if (r == 0) {
		fd_adopt(fds[0], flags & O_NONBLOCK, 0, 0, NULL);
		fd_adopt(fds[1], flags & O_NONBLOCK, 0, 0, NULL);
	}
	return r;
}

EXPORT int pipe(int fds[2])
{
	return pipe2(fds, 0);
}

/* eventfd, timerfd and inotify descriptors are read (eventfd: and written)
 * like pipes: ours, non-blocking underneath, so a blocked read parks.
 * Their flags' NONBLOCK is O_NONBLOCK. glibc's eventfd_read and
 * eventfd_write call its read and write internally: ours here. */
EXPORT int eventfd(unsigned int initval, int flags)
{
	if (!io_on())
		return io_real.eventfd(initval, flags);
	int fd = io_real.eventfd(initval, flags | EFD_NONBLOCK);
	if (fd >= 0)
		fd_adopt(fd, flags & EFD_NONBLOCK, 0, 0, NULL);
	return fd;
}

EXPORT int eventfd_read(int fd, eventfd_t *value)
{
	return read(fd, value, sizeof *value) == sizeof *value ? 0 : -1;
}

EXPORT int eventfd_write(int fd, eventfd_t value)
{
	return write(fd, &value, sizeof value) == sizeof value ? 0 : -1;
}

EXPORT int timerfd_create(int clockid, int flags)
{
	if (!io_on())
		return io_real.timerfd_create(clockid, flags);
	int fd = io_real.timerfd_create(clockid, flags | TFD_NONBLOCK);
	if (fd >= 0)
		fd_adopt(fd, flags & TFD_NONBLOCK, 0, 0, NULL);
	return fd;
}

EXPORT int inotify_init1(int flags)
{
	if (!io_on())
		return io_real.inotify_init1(flags);
	int fd = io_real.inotify_init1(flags | IN_NONBLOCK);
	if (fd >= 0)
		fd_adopt(fd, flags & IN_NONBLOCK, 0, 0, NULL);
	return fd;
}

#if defined(__x86_64__) /* aarch64's glibc has inotify_init1 only */
EXPORT int inotify_init(void)
{
	return inotify_init1(0);
}
SYMVER(inotify_init, V_2_4);
#endif

/* The program's epoll instances are watched too, so epoll_wait parks. */
EXPORT int epoll_create1(int flags)
{
	int fd = io_real.epoll_create1(flags);
	if (fd >= 0 && io_on())
		fd_adopt(fd, false, 0, 0, NULL);
	return fd;
}

EXPORT int epoll_create(int size)
{
	int fd = io_real.epoll_create(size);
	if (fd >= 0 && io_on())
		fd_adopt(fd, false, 0, 0, NULL);
	return fd;
}

static bool fd_ours(int fd)
{
	fdslot_t *slot = fd_slot(fd, false);
	return slot && atomic_load(slot);
}

/* fd is about to be closed, or replaced by dup2/dup3: it leaves the table
 * and its waiters wake with EBADF. */
static void fd_closing(int fd)
{
	if (fd_ours(fd)) {
		interpose_enter();
		fd_forget(fd, true);
		interpose_leave();
	}
}

EXPORT int close(int fd)
{
	if (io_on())
		fd_closing(fd);
	return io_real.close(fd);
}

/* newfd now refers to what oldfd does: a descriptor of ours makes newfd
 * one of ours, with the same view. */
static void fd_dup_view(int oldfd, int newfd)
{
	struct pollDesc *pd = fd_acquire(oldfd);
	if (!pd)
		return;
	fd_adopt(newfd, atomic_load(&pd->flags) & FD_NONBLOCK, atomic_load(&pd->rcvtimeo),
	         atomic_load(&pd->sndtimeo), pd);
	pd_release(pd);
}

/* stdio reads and writes inside glibc, past these functions: a stream
 * (fdopen) or a standard descriptor (dup2 onto 0, 1 or 2) must block in
 * the kernel as the program expects, so its description goes back to
 * blocking and the fd leaves the table (its calls then run as system
 * calls with handoff). */
static void fd_make_plain(int fd)
{
	struct pollDesc *pd = fd_acquire(fd);
	if (!pd)
		return;
	int e = errno;
	if (!(atomic_load(&pd->flags) & FD_NONBLOCK)) {
		long fl = syscall(SYS_fcntl, fd, F_GETFL);
		if (fl >= 0)
			syscall(SYS_fcntl, fd, F_SETFL, fl & ~O_NONBLOCK);
	}
	/* Every fd of the description: it blocks now. */
	enum { max = 64 };
	int fds[max], n = 0;
	lock(&desc_lock);
	struct pollDesc *p = pd;
	do {
		if (n < max)
			fds[n++] = p->fd;
		p = p->sibling_next;
	} while (p != pd);
	unlock(&desc_lock);
	pd_release(pd);
	interpose_enter();
	for (int i = 0; i < n; i++)
		fd_forget(fds[i], false);
	interpose_leave();
	errno = e;
}

EXPORT FILE *fdopen(int fd, const char *mode)
{
	if (io_on())
		fd_make_plain(fd);
	return io_real.fdopen(fd, mode);
}

EXPORT int dup(int oldfd)
{
	int fd = io_real.dup(oldfd);
	if (fd >= 0 && io_on())
		fd_dup_view(oldfd, fd);
	return fd;
}

EXPORT int dup3(int oldfd, int newfd, int flags)
{
	if (!io_on())
		return io_real.dup3(oldfd, newfd, flags);
	if (oldfd != newfd && syscall(SYS_fcntl, oldfd, F_GETFD) >= 0)
		fd_closing(newfd);
	int fd = io_real.dup3(oldfd, newfd, flags);
	if (fd >= 0)
		fd_dup_view(oldfd, fd);
	if (fd >= 0 && fd <= 2)
		fd_make_plain(fd);
	return fd;
}

EXPORT int dup2(int oldfd, int newfd)
{
	if (!io_on() || oldfd == newfd)
		return io_real.dup2(oldfd, newfd);
	if (syscall(SYS_fcntl, oldfd, F_GETFD) >= 0)
		fd_closing(newfd);
	int fd = io_real.dup2(oldfd, newfd);
	if (fd >= 0)
		fd_dup_view(oldfd, fd);
	if (fd >= 0 && fd <= 2)
		fd_make_plain(fd);
	return fd;
}

static int fcntl_common(int fd, int cmd, void *arg)
{
	if (!io_on())
		return io_real.fcntl(fd, cmd, arg);
	switch (cmd) {
	case F_GETFL:
	case F_SETFL: {
		struct pollDesc *pd = fd_acquire(fd);
		if (!pd)
			break;
		int r;
		if (cmd == F_GETFL) {
			r = io_real.fcntl(fd, F_GETFL);
			if (r >= 0)
				r = (r & ~O_NONBLOCK) |
				    ((atomic_load(&pd->flags) & FD_NONBLOCK) ? O_NONBLOCK : 0);
		} else {
			int fl = (int)(intptr_t)arg;
			r = io_real.fcntl(fd, F_SETFL, fl | O_NONBLOCK);
			if (r == 0)
				desc_set(pd, offsetof(struct pollDesc, flags),
				         (fl & O_NONBLOCK) ? FD_NONBLOCK : 0);
		}
		int e = errno;
		pd_release(pd);
		errno = e;
		return r;
	}
	case F_DUPFD:
	case F_DUPFD_CLOEXEC: {
		int nfd = io_real.fcntl(fd, cmd, arg);
		if (nfd >= 0)
			fd_dup_view(fd, nfd);
		return nfd;
	}
	case F_SETLKW:
	case F_OFD_SETLKW:
		return BLOCKING(io_real.fcntl(fd, cmd, arg));
	}
	return io_real.fcntl(fd, cmd, arg);
}

EXPORT int fcntl(int fd, int cmd, ...)
{
	va_list ap;
	va_start(ap, cmd);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	return fcntl_common(fd, cmd, arg);
}

EXPORT int fcntl64(int fd, int cmd, ...)
{
	va_list ap;
	va_start(ap, cmd);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	return fcntl_common(fd, cmd, arg);
}

EXPORT int ioctl(int fd, unsigned long req, ...)
{
	va_list ap;
	va_start(ap, req);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	if (req == FIONBIO && io_on()) {
		struct pollDesc *pd = fd_acquire(fd);
		if (pd) {
			/* The description stays non-blocking; only the view changes
			 * (after the kernel validated fd and arg). */
			int on = 1;
			int r = io_real.ioctl(fd, FIONBIO, &on);
			if (r == 0)
				desc_set(pd, offsetof(struct pollDesc, flags),
				         *(int *)arg ? FD_NONBLOCK : 0);
			int e = errno;
			pd_release(pd);
			errno = e;
			return r;
		}
	}
	return io_real.ioctl(fd, req, arg);
}

EXPORT int setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
	int r = io_real.setsockopt(fd, level, name, val, len);
	if (r == 0 && level == SOL_SOCKET && (name == SO_RCVTIMEO || name == SO_SNDTIMEO) &&
	    io_on() && len >= sizeof(struct timeval)) {
		struct pollDesc *pd = fd_acquire(fd);
		if (pd) {
			desc_set(pd,
			         name == SO_RCVTIMEO ? offsetof(struct pollDesc, rcvtimeo)
			                             : offsetof(struct pollDesc, sndtimeo),
			         timeo_ns(val));
			pd_release(pd);
		}
	}
	return r;
}

EXPORT int shutdown(int fd, int how)
{
	/* The peer's and our own waiters see the shutdown through epoll
	 * (EPOLLRDHUP/EPOLLHUP). */
	return io_real.shutdown(fd, how);
}

/* ---- readiness: poll, select, epoll_wait -------------------------------- */

/* Does every fd in the set belong to the netpoller? Then a wait can park;
 * otherwise it runs in the kernel. */
static bool all_ours(const int *fds, int n)
{
	for (int i = 0; i < n; i++) {
		if (fds[i] >= 0 && !fd_ours(fds[i]))
			return false;
	}
	return true;
}

static uint32_t poll_mode(short events)
{
	uint32_t m = 0;
	if (events & (POLLIN | POLLPRI | POLLRDHUP | POLLRDNORM | POLLRDBAND))
		m |= POLL_R;
	if (events & (POLLOUT | POLLWRNORM | POLLWRBAND))
		m |= POLL_W;
	return m ? m : POLL_R | POLL_W; /* errors and hang-ups wake both */
}

#define WAIT_IN_KERNEL (-2)

/* Parks until one of fds[i] (modes[i]) may be ready, check() says so, or
 * the deadline. WAIT_IN_KERNEL when one of the fds stopped being ours (it
 * was closed, or blocks in the kernel now): the caller's kernel call must
 * do the waiting. check runs after the waiters are armed, so no readiness
 * is missed between it and the park. Returns check's non-zero result, 0
 * at the deadline, or -1 with EINTR once the handler of a signal for the
 * goroutine (pthread_kill ended the park) has run. */
static long wait_any(const int *fds, const uint32_t *modes, int n, int64_t deadline,
                     long (*check)(void *), void *arg)
{
	struct pollWaiter small_w[16];
	struct pollDesc *small_pd[16];
	struct pollWaiter *w = small_w;
	struct pollDesc **pds = small_pd;
	if (n > 16) {
		w = malloc((size_t)n * sizeof *w);
		pds = malloc((size_t)n * sizeof *pds);
		if (!w || !pds) {
			free(w);
			free(pds);
			errno = ENOMEM;
			return -1;
		}
	}
	uint32_t flags = (cancel_enabled() ? PARK_CANCEL : 0) | PARK_INTR;
	int saved = errno;
	long r;
	for (;;) {
		struct g *gp = interpose_enter();
		park_prepare(deadline, flags);
		bool closed = false, gone = false;
		for (int i = 0; i < n; i++) {
			pds[i] = fds[i] >= 0 ? fd_acquire(fds[i]) : NULL;
			if (fds[i] >= 0 && !pds[i])
				gone = true; /* closed, or blocking now: no longer ours */
			if (pds[i] && netpollarm(pds[i], &w[i], modes[i], NULL) != 0) {
				pd_release(pds[i]);
				pds[i] = NULL;
				closed = true;
			}
		}
		r = check(arg);
		int e = r < 0 ? errno : saved, st;
		if (r == 0 && gone)
			r = WAIT_IN_KERNEL;
		if (r != 0 || closed) {
			park_abort();
			st = 0;
		} else {
			st = netpollpark();
		}
		for (int i = 0; i < n; i++) {
			if (pds[i]) {
				netpolldisarm(pds[i], &w[i]);
				pd_release(pds[i]);
			}
		}
		uint64_t sigs = st == EINTR ? park_sigs(gp) : 0;
		gp->user_errno = e;
		interpose_leave(); /* runs their handlers */
		if (r != 0)
			break;
		if (st == ECANCELED || sigs) {
			/* poll, select and epoll_wait are never restarted. */
			r = -1;
			errno = st;
			break;
		}
		if (st == ETIMEDOUT) {
			r = check(arg); /* what is ready at the deadline */
			break;
		}
	}
	if (w != small_w) {
		free(w);
		free(pds);
	}
	return r == WAIT_IN_KERNEL ? r : io_done(r, saved);
}

/* 0 for none (a negative timeout waits for ever). */
static int64_t deadline_ms(int timeout)
{
	return timeout < 0 ? 0 : nanotime() + (int64_t)timeout * 1000000;
}

static int64_t deadline_ts(const struct timespec *ts)
{
	if (!ts)
		return 0;
	if (ts->tv_sec > (INT64_MAX - nanotime()) / 1000000000 - 1)
		return INT64_MAX;
	return nanotime() + (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

struct poll_args {
	struct pollfd *fds;
	nfds_t n;
};

static long check_poll(void *p)
{
	struct poll_args *a = p;
	return raw_poll0(a->fds, a->n);
}

/* poll and ppoll without a signal mask: park when every fd is ours. */
static int poll_common(struct pollfd *fds, nfds_t n, int64_t deadline, bool forever,
                       int (*kernel)(struct pollfd *, nfds_t, void *), void *karg)
{
	long r = raw_poll0(fds, n);
	if (r != 0 || (!forever && deadline <= nanotime()))
		return (int)r;
	if (n > (nfds_t)INT32_MAX || !parks_here())
		return BLOCKING(kernel(fds, n, karg));
	int small_fd[16];
	uint32_t small_mode[16];
	int *fdv = n > 16 ? malloc(n * sizeof *fdv) : small_fd;
	uint32_t *modes = n > 16 ? malloc(n * sizeof *modes) : small_mode;
	if (!fdv || !modes) {
		if (fdv != small_fd)
			free(fdv);
		if (modes != small_mode)
			free(modes);
		return BLOCKING(kernel(fds, n, karg));
	}
	for (nfds_t i = 0; i < n; i++) {
		fdv[i] = fds[i].fd;
		modes[i] = poll_mode(fds[i].events);
	}
	r = WAIT_IN_KERNEL;
	if (all_ours(fdv, (int)n)) {
		struct poll_args a = {fds, n};
		r = wait_any(fdv, modes, (int)n, forever ? 0 : deadline, check_poll, &a);
	}
	/* Freed before a wait in the kernel, which a cancel may unwind. */
	if (fdv != small_fd) {
		free(fdv);
		free(modes);
	}
	if (r == WAIT_IN_KERNEL)
		r = BLOCKING(kernel(fds, n, karg));
	return (int)r;
}

static int kernel_poll(struct pollfd *fds, nfds_t n, void *arg)
{
	return io_real.poll(fds, n, *(int *)arg);
}

EXPORT int poll(struct pollfd *fds, nfds_t n, int timeout)
{
	if (!io_on())
		return io_real.poll(fds, n, timeout);
	pthread_testcancel();
	return poll_common(fds, n, deadline_ms(timeout), timeout < 0, kernel_poll, &timeout);
}

EXPORT int __poll_chk(struct pollfd *fds, nfds_t n, int timeout, size_t fdslen)
{
	if (fdslen / sizeof *fds < n)
		__chk_fail();
	return poll(fds, n, timeout);
}

static int kernel_ppoll(struct pollfd *fds, nfds_t n, void *arg)
{
	return io_real.ppoll(fds, n, arg, NULL);
}

EXPORT int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *tmo, const sigset_t *mask)
{
	if (!io_on())
		return io_real.ppoll(fds, n, tmo, mask);
	if (mask) /* the mask swap must be atomic with the wait: the kernel's */
		return SIGCALL(~set64(mask), io_real.ppoll(fds, n, tmo, mask));
	if (tmo && (tmo->tv_sec < 0 || tmo->tv_nsec < 0 || tmo->tv_nsec >= 1000000000)) {
		errno = EINVAL;
		return -1;
	}
	pthread_testcancel();
	return poll_common(fds, n, deadline_ts(tmo), !tmo, kernel_ppoll, (void *)tmo);
}

EXPORT int __ppoll_chk(struct pollfd *fds, nfds_t n, const struct timespec *tmo,
                       const sigset_t *mask, size_t fdslen)
{
	if (fdslen / sizeof *fds < n)
		__chk_fail();
	return ppoll(fds, n, tmo, mask);
}

struct select_args {
	int nfds;
	size_t bytes; /* of each set that select may touch: a program may
	               * allocate only that much */
	fd_set *sets[3], saved[3];
};

static long check_select(void *p)
{
	struct select_args *a = p;
	fd_set work[3];
	for (int i = 0; i < 3; i++)
		if (a->sets[i])
			work[i] = a->saved[i];
	struct timespec zero = {0, 0};
	long r = syscall(SYS_pselect6, a->nfds, a->sets[0] ? &work[0] : NULL,
	                 a->sets[1] ? &work[1] : NULL, a->sets[2] ? &work[2] : NULL, &zero, NULL);
	if (r != 0) /* ready or an error: the results are the caller's */
		for (int i = 0; i < 3; i++)
			if (a->sets[i])
				memcpy(a->sets[i], r > 0 ? &work[i] : &a->saved[i], a->bytes);
	return r;
}

/* The fds of the sets and what each waits for. */
static int select_fds(const struct select_args *a, int *fds, uint32_t *modes)
{
	int cnt = 0;
	for (int fd = 0; fd < a->nfds; fd++) {
		uint32_t m = 0;
		if (a->sets[0] && FD_ISSET(fd, &a->saved[0]))
			m |= POLL_R;
		if (a->sets[1] && FD_ISSET(fd, &a->saved[1]))
			m |= POLL_W;
		if (a->sets[2] && FD_ISSET(fd, &a->saved[2]))
			m |= POLL_R;
		if (m) {
			fds[cnt] = fd;
			modes[cnt++] = m;
		}
	}
	return cnt;
}

/* select and pselect without a mask: one try, then park when every fd in
 * the sets is ours; WAIT_IN_KERNEL when the kernel must wait instead. */
static int select_common(int nfds, fd_set *r, fd_set *w, fd_set *x, int64_t deadline, bool forever)
{
	if (nfds < 0) {
		errno = EINVAL;
		return -1;
	}
	if (nfds > FD_SETSIZE) /* larger sets than fd_set: the kernel's */
		return WAIT_IN_KERNEL;
	struct select_args a = {.nfds = nfds, .sets = {r, w, x},
	                        .bytes = (size_t)(nfds + NFDBITS - 1) / NFDBITS * sizeof(fd_mask)};
	for (int i = 0; i < 3; i++) {
		FD_ZERO(&a.saved[i]);
		if (a.sets[i])
			memcpy(&a.saved[i], a.sets[i], a.bytes);
	}
	long n = check_select(&a);
	if (n != 0)
		return (int)n;
	if (forever || deadline > nanotime()) {
		if (!parks_here())
			return WAIT_IN_KERNEL;
		int fds[FD_SETSIZE];
		uint32_t modes[FD_SETSIZE];
		int cnt = select_fds(&a, fds, modes);
		if (!all_ours(fds, cnt))
			return WAIT_IN_KERNEL;
		n = wait_any(fds, modes, cnt, forever ? 0 : deadline, check_select, &a);
	}
	if (n == 0) /* nothing ready at the deadline */
		for (int i = 0; i < 3; i++)
			if (a.sets[i])
				memset(a.sets[i], 0, a.bytes);
	return (int)n;
}

EXPORT int select(int nfds, fd_set *r, fd_set *w, fd_set *x, struct timeval *tv)
{
	if (!io_on())
		return io_real.select(nfds, r, w, x, tv);
	if (tv && (tv->tv_sec < 0 || tv->tv_usec < 0)) {
		errno = EINVAL;
		return -1;
	}
	pthread_testcancel();
	int64_t deadline = tv ? nanotime() + timeo_ns(tv) : 0;
	int n = select_common(nfds, r, w, x, deadline, !tv);
	if (n == WAIT_IN_KERNEL)
		return BLOCKING(io_real.select(nfds, r, w, x, tv));
	if (tv) { /* Linux reports the time not slept, also after EINTR */
		int64_t left = deadline - nanotime();
		if (left < 0)
			left = 0;
		tv->tv_sec = left / 1000000000;
		tv->tv_usec = (left % 1000000000) / 1000;
	}
	return n;
}

EXPORT int pselect(int nfds, fd_set *r, fd_set *w, fd_set *x, const struct timespec *ts,
                   const sigset_t *mask)
{
	if (!io_on())
		return io_real.pselect(nfds, r, w, x, ts, mask);
	if (mask)
		return SIGCALL(~set64(mask), io_real.pselect(nfds, r, w, x, ts, mask));
	if (ts && (ts->tv_sec < 0 || ts->tv_nsec < 0 || ts->tv_nsec >= 1000000000)) {
		errno = EINVAL;
		return -1;
	}
	pthread_testcancel();
	int n = select_common(nfds, r, w, x, deadline_ts(ts), !ts);
	if (n == WAIT_IN_KERNEL)
		n = BLOCKING(io_real.pselect(nfds, r, w, x, ts, NULL));
	return n;
}

struct epoll_args {
	int epfd;
	struct epoll_event *ev;
	int max;
};

static long check_epoll(void *p)
{
	struct epoll_args *a = p;
	return syscall(SYS_epoll_pwait, a->epfd, a->ev, a->max, 0, NULL, 0);
}

/* epoll_wait on an epoll instance of ours: its fd is readable when it has
 * events for the program. */
EXPORT int epoll_wait(int epfd, struct epoll_event *ev, int max, int timeout)
{
	if (!io_on())
		return io_real.epoll_wait(epfd, ev, max, timeout);
	pthread_testcancel();
	struct epoll_args a = {epfd, ev, max};
	long r = check_epoll(&a);
	if (r != 0 || timeout == 0)
		return (int)r;
	if (!parks_here() || !all_ours(&epfd, 1))
		return BLOCKING(io_real.epoll_wait(epfd, ev, max, timeout));
	uint32_t mode = POLL_R;
	r = wait_any(&epfd, &mode, 1, deadline_ms(timeout), check_epoll, &a);
	if (r == WAIT_IN_KERNEL)
		r = BLOCKING(io_real.epoll_wait(epfd, ev, max, timeout));
	return (int)r;
}

EXPORT int epoll_pwait(int epfd, struct epoll_event *ev, int max, int timeout,
                       const sigset_t *mask)
{
	if (!mask)
		return epoll_wait(epfd, ev, max, timeout);
	if (!io_on())
		return io_real.epoll_pwait(epfd, ev, max, timeout, mask);
	return SIGCALL(~set64(mask), io_real.epoll_pwait(epfd, ev, max, timeout, mask));
}

/* ---- calls that cannot be polled: system calls with handoff ------------- */

EXPORT ssize_t pread(int fd, void *buf, size_t n, off_t off)
{
	return BLOCKING(io_real.pread(fd, buf, n, off));
}

EXPORT ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
	return BLOCKING(io_real.pwrite(fd, buf, n, off));
}

EXPORT ssize_t __pread_chk(int fd, void *buf, size_t n, off_t off, size_t buflen)
{
	if (n > buflen)
		__chk_fail();
	return pread(fd, buf, n, off);
}

EXPORT ssize_t preadv(int fd, const struct iovec *iov, int cnt, off_t off)
{
	return BLOCKING(io_real.preadv(fd, iov, cnt, off));
}

EXPORT ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
	return BLOCKING(io_real.pwritev(fd, iov, cnt, off));
}

static mode_t open_mode(int flags, va_list ap)
{
	return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? va_arg(ap, mode_t) : 0;
}

EXPORT int open(const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	mode_t mode = open_mode(flags, ap);
	va_end(ap);
	return BLOCKING(io_real.open(path, flags, mode));
}

EXPORT int openat(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	mode_t mode = open_mode(flags, ap);
	va_end(ap);
	return BLOCKING(io_real.openat(dirfd, path, flags, mode));
}

EXPORT int creat(const char *path, mode_t mode)
{
	return BLOCKING(io_real.creat(path, mode));
}

EXPORT int fsync(int fd) { return BLOCKING(io_real.fsync(fd)); }
EXPORT int fdatasync(int fd) { return BLOCKING(io_real.fdatasync(fd)); }
EXPORT void sync(void) { BLOCKING((io_real.sync(), 0)); }
EXPORT int syncfs(int fd) { return BLOCKING(io_real.syncfs(fd)); }
EXPORT pid_t waitpid(pid_t pid, int *st, int opt) { return BLOCKING(io_real.waitpid(pid, st, opt)); }
EXPORT pid_t wait(int *st) { return BLOCKING(io_real.wait(st)); }

EXPORT pid_t wait4(pid_t pid, int *st, int opt, struct rusage *ru)
{
	return BLOCKING(io_real.wait4(pid, st, opt, ru));
}

EXPORT int waitid(idtype_t t, id_t id, siginfo_t *info, int opt)
{
	return BLOCKING(io_real.waitid(t, id, info, opt));
}

EXPORT int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                       struct addrinfo **res)
{
	return BLOCKING(io_real.getaddrinfo(node, service, hints, res));
}

EXPORT int getnameinfo(const struct sockaddr *sa, socklen_t salen, char *host, socklen_t hostlen,
                       char *serv, socklen_t servlen, int flags)
{
	return BLOCKING(io_real.getnameinfo(sa, salen, host, hostlen, serv, servlen, flags));
}

EXPORT struct hostent *gethostbyname(const char *name)
{
	return BLOCKING(io_real.gethostbyname(name));
}

EXPORT struct hostent *gethostbyname2(const char *name, int af)
{
	return BLOCKING(io_real.gethostbyname2(name, af));
}

EXPORT int gethostbyname_r(const char *name, struct hostent *ret, char *buf, size_t len,
                           struct hostent **result, int *herr)
{
	return BLOCKING(io_real.gethostbyname_r(name, ret, buf, len, result, herr));
}

EXPORT int gethostbyname2_r(const char *name, int af, struct hostent *ret, char *buf, size_t len,
                            struct hostent **result, int *herr)
{
	return BLOCKING(io_real.gethostbyname2_r(name, af, ret, buf, len, result, herr));
}

EXPORT struct hostent *gethostbyaddr(const void *addr, socklen_t len, int type)
{
	return BLOCKING(io_real.gethostbyaddr(addr, len, type));
}

EXPORT int gethostbyaddr_r(const void *addr, socklen_t alen, int type, struct hostent *ret,
                           char *buf, size_t len, struct hostent **result, int *herr)
{
	return BLOCKING(io_real.gethostbyaddr_r(addr, alen, type, ret, buf, len, result, herr));
}

EXPORT int sigwait(const sigset_t *set, int *sig)
{
	return SIGCALL(set64(set), io_real.sigwait(set, sig));
}

EXPORT int sigwaitinfo(const sigset_t *set, siginfo_t *info)
{
	return SIGCALL(set64(set), io_real.sigwaitinfo(set, info));
}

EXPORT int sigtimedwait(const sigset_t *set, siginfo_t *info, const struct timespec *ts)
{
	return SIGCALL(set64(set), io_real.sigtimedwait(set, info, ts));
}

EXPORT int sigsuspend(const sigset_t *mask)
{
	return SIGCALL(~set64(mask), io_real.sigsuspend(mask));
}

EXPORT int flock(int fd, int op) { return BLOCKING(io_real.flock(fd, op)); }
EXPORT int lockf(int fd, int cmd, off_t len) { return BLOCKING(io_real.lockf(fd, cmd, len)); }

/* sendfile, splice and tee between descriptors of ours and others: when
 * one of ours would block (and the program did not ask for non-blocking),
 * wait until either side may be ready and try again; with none of ours
 * involved, a system call with handoff. */
struct move_args {
	int in, out;
	loff_t *offin, *offout;
	off_t *off;
	size_t n;
	unsigned int fl;
	int kind;
};
enum { MOVE_SENDFILE, MOVE_SPLICE, MOVE_TEE };

static long op_move(void *p)
{
	struct move_args *a = p;
	switch (a->kind) {
	case MOVE_SENDFILE:
		return syscall(SYS_sendfile, a->out, a->in, a->off, a->n);
	case MOVE_SPLICE:
		return syscall(SYS_splice, a->in, a->offin, a->out, a->offout, a->n, a->fl);
	default:
		return syscall(SYS_tee, a->in, a->out, a->n, a->fl);
	}
}

/* The side that holds a move up: the input while it has nothing to read,
 * else the output (a full pipe or socket). */
static bool input_blocks(int in)
{
	struct pollfd p = {.fd = in, .events = POLLIN};
	return raw_poll0(&p, 1) == 0;
}

static bool output_blocks(int out)
{
	struct pollfd p = {.fd = out, .events = POLLOUT};
	return raw_poll0(&p, 1) == 0;
}

/* Waits for the side that holds the move up: ours on the netpoller, a
 * side that is not ours (a non-blocking pipe of another program) in the
 * kernel. */
/* A move (sendfile, splice, tee) tries once per wait: nothing moved yet. */
static int io_restart_as_retry(int e)
{
	return e == IO_RESTARTED ? 0 : e;
}

static int move_wait(struct move_args *a, struct pollDesc *pin, struct pollDesc *pout,
                     uint32_t rseen, uint32_t wseen)
{
	if (input_blocks(a->in)) {
		if (pin)
			return io_restart_as_retry(io_wait(pin, POLL_R, rseen, 0));
		struct pollfd p = {.fd = a->in, .events = POLLIN};
		return BLOCKING(syscall(SYS_ppoll, &p, 1, NULL, NULL, 0)) < 0 ? errno : 0;
	}
	if (output_blocks(a->out)) {
		if (pout)
			return io_restart_as_retry(io_wait(pout, POLL_W, wseen, 0));
		struct pollfd p = {.fd = a->out, .events = POLLOUT};
		return BLOCKING(syscall(SYS_ppoll, &p, 1, NULL, NULL, 0)) < 0 ? errno : 0;
	}
	return 0; /* both ready now: try again */
}

static ssize_t move_common(struct move_args *a)
{
	int saved = errno;
	pthread_testcancel();
	struct pollDesc *pin = fd_acquire(a->in), *pout = fd_acquire(a->out);
	if (!pin && !pout)
		return BLOCKING(op_move(a));
	bool nonblock = (pin && (atomic_load(&pin->flags) & FD_NONBLOCK)) ||
	                (pout && (atomic_load(&pout->flags) & FD_NONBLOCK)) ||
	                (a->kind != MOVE_SENDFILE && (a->fl & SPLICE_F_NONBLOCK));
	long r;
	for (;;) {
		uint32_t rseen = pin ? pd_seq(pin, POLL_R) : 0;
		uint32_t wseen = pout ? pd_seq(pout, POLL_W) : 0;
		r = op_move(a);
		if (r >= 0 || errno != EAGAIN || nonblock)
			break;
		int e = move_wait(a, pin, pout, rseen, wseen);
		if (e) {
			errno = e;
			r = -1;
			break;
		}
	}
	int e = errno;
	if (pin)
		pd_release(pin);
	if (pout)
		pd_release(pout);
	errno = e;
	return io_done(r, saved);
}

EXPORT ssize_t sendfile(int out, int in, off_t *off, size_t n)
{
	if (!io_on())
		return io_real.sendfile(out, in, off, n);
	struct move_args a = {.in = in, .out = out, .off = off, .n = n, .kind = MOVE_SENDFILE};
	return move_common(&a);
}

EXPORT ssize_t splice(int in, loff_t *offin, int out, loff_t *offout, size_t n, unsigned int fl)
{
	if (!io_on())
		return io_real.splice(in, offin, out, offout, n, fl);
	struct move_args a = {.in = in, .out = out, .offin = offin, .offout = offout, .n = n,
	                      .fl = fl, .kind = MOVE_SPLICE};
	return move_common(&a);
}

EXPORT ssize_t tee(int in, int out, size_t n, unsigned int fl)
{
	if (!io_on())
		return io_real.tee(in, out, n, fl);
	struct move_args a = {.in = in, .out = out, .n = n, .fl = fl, .kind = MOVE_TEE};
	return move_common(&a);
}

/* system and popen spawn a shell inside glibc: what it inherits blocks. */
EXPORT int system(const char *cmd)
{
	fds_inherit();
	return BLOCKING(io_real.system(cmd));
}

EXPORT FILE *popen(const char *cmd, const char *type)
{
	fds_inherit();
	return BLOCKING(io_real.popen(cmd, type));
}

/* vfork's child would share our memory and our epoll instance while it
 * runs interposed calls (close, dup2): it is a fork here, which POSIX
 * allows. */
EXPORT pid_t vfork(void)
{
	return fork();
}

/* Descriptors closed in bulk leave the table first. */
static void fds_forget_range(unsigned int lo, unsigned int hi)
{
	if (!io_on())
		return;
	int e = errno;
	interpose_enter();
	for (int t = 0; t < FDTAB_TOP; t++) {
		fdslot_t *chunk = atomic_load(&fdtab[t]);
		if (!chunk || ((unsigned int)(t + 1) << FDTAB_SHIFT) <= lo ||
		    ((unsigned int)t << FDTAB_SHIFT) > hi)
			continue;
		for (int i = 0; i < FDTAB_CHUNK; i++) {
			unsigned int fd = (unsigned int)t << FDTAB_SHIFT | (unsigned int)i;
			if (fd >= lo && fd <= hi && atomic_load(&chunk[i]))
				fd_forget((int)fd, true);
		}
	}
	interpose_leave();
	errno = e;
}

EXPORT int close_range(unsigned int lo, unsigned int hi, int flags)
{
	if (lo <= hi && !(flags & CLOSE_RANGE_CLOEXEC))
		fds_forget_range(lo, hi);
	return io_real.close_range(lo, hi, flags);
}

EXPORT void closefrom(int lo)
{
	if (lo >= 0)
		fds_forget_range((unsigned int)lo, ~0u);
	io_real.closefrom(lo);
}

/* ---- exec: nothing non-blocking leaks to another program ---------------- */

/* Every fd of ours that another program may inherit (not close-on-exec,
 * and blocking in the program's view) gets its blocking mode back for
 * good and leaves the table, as Go's os.File.Fd does: the description is
 * shared with the other program, which must not see O_NONBLOCK. Run
 * before fork (pthread_atfork), exec and spawn. In a fork child, where
 * the table is the parent's, only the mode changes, by raw system calls. */
static void fds_inherit(void)
{
	bool on = io_on();
	for (int t = 0; t < FDTAB_TOP; t++) {
		fdslot_t *chunk = atomic_load(&fdtab[t]);
		if (!chunk)
			continue;
		for (int i = 0; i < FDTAB_CHUNK; i++) {
			struct pollDesc *pd = atomic_load(&chunk[i]);
			if (!pd || (atomic_load(&pd->flags) & FD_NONBLOCK))
				continue;
			int fd = t << FDTAB_SHIFT | i;
			long fdfl = syscall(SYS_fcntl, fd, F_GETFD);
			if (fdfl < 0 || (fdfl & FD_CLOEXEC))
				continue;
			if (on) {
				fd_make_plain(fd);
			} else {
				long fl = syscall(SYS_fcntl, fd, F_GETFL);
				if (fl >= 0 && (fl & O_NONBLOCK))
					syscall(SYS_fcntl, fd, F_SETFL, fl & ~O_NONBLOCK);
			}
		}
	}
}

/* fork: the runtime goes on in the child (proc.c: beforefork). Only when
 * fork is called where the runtime cannot be entered (a signal handler
 * that interrupted it, pass-through) is the child left without it: then
 * forked_child sends every call there to glibc. Which kind of fork this
 * is, is the forking goroutine's (g.forking): glibc lets two forks'
 * handlers interleave. */
bool forked_child;

static void atfork_prepare(void)
{
	if (!io_on())
		return;
	fds_inherit();
	struct g *gp = interpose_enter(); /* adopts a thread the runtime never saw */
	gp->forking = true;
	beforefork();
}

static void atfork_parent(void)
{
	struct g *gp = getg();
	if (!gp || !gp->forking || !gp->inruntime)
		return;
	gp->forking = false;
	afterfork();
	interpose_leave();
}

static void atfork_child(void)
{
	struct g *gp = getg();
	if (!gp || !gp->forking || !gp->inruntime) {
		forked_child = true;
		return;
	}
	gp->forking = false;
	/* Taken without a P (so a stopped world did not keep their holders
	 * out): free again, their holders are not in this process. */
	desc_lock = (mutex_t){0};
	sent.lock = (mutex_t){0};
	afterforkinchild();
	interpose_leave();
}

/* glibc runs the prepare handlers in the reverse order of registration,
 * the parent's and child's in order: ours must be registered first, so
 * that the program's and its libraries' prepare handlers (which may lock
 * mutexes held by other threads) run before the world stops, and their
 * child handlers after the child's runtime is rebuilt. A library whose
 * constructor ran before ours registers through __register_atfork
 * (pthread_atfork's implementation in libc_nonshared), so ours goes in
 * on the first registration of anyone. */
static int (*real_register_atfork)(void (*)(void), void (*)(void), void (*)(void), void *);
extern void *__dso_handle;

static void atfork_register_ours(void)
{
	static _Atomic int state; /* 0, 1 registering, 2 done */
	int exp = 0;
	if (!atomic_compare_exchange_strong(&state, &exp, 1)) {
		while (atomic_load(&state) != 2)
			usleep_raw(10);
		return;
	}
	real_register_atfork = (__typeof(real_register_atfork))dlvsym(RTLD_NEXT, "__register_atfork", V_2_3_2);
	if (!real_register_atfork) {
		printerr("goshim: cannot resolve __register_atfork\n");
		abort();
	}
	real_register_atfork(atfork_prepare, atfork_parent, atfork_child, __dso_handle);
	atomic_store(&state, 2);
}

EXPORT int __register_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void),
                             void *dso)
{
	atfork_register_ours();
	return real_register_atfork(prepare, parent, child, dso);
}
SYMVER(__register_atfork, V_2_3_2);

EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
	fds_inherit();
	return io_real.execve(path, argv, envp);
}

EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
	fds_inherit();
	return io_real.fexecve(fd, argv, envp);
}

EXPORT int execv(const char *path, char *const argv[])
{
	return execve(path, argv, environ);
}

EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
	/* glibc's execvpe searches PATH and calls its internal execve. */
	fds_inherit();
	return io_real.execvpe(file, argv, envp);
}

EXPORT int execvp(const char *file, char *const argv[])
{
	return execvpe(file, argv, environ);
}

/* execl, execle, execlp: the argument list as an array. */
#define ARGV_FROM_VA(first, ap, argv, envp_out)                                            \
	size_t n_ = 1;                                                                     \
	va_start(ap, first);                                                               \
	while (va_arg(ap, char *))                                                         \
		n_++;                                                                      \
	va_end(ap);                                                                        \
	char *argv[n_ + 1];                                                                \
	argv[0] = (char *)(first);                                                         \
	va_start(ap, first);                                                               \
	for (size_t i_ = 1; i_ <= n_; i_++)                                                \
		argv[i_] = va_arg(ap, char *);                                             \
	envp_out;                                                                          \
	va_end(ap)

EXPORT int execl(const char *path, const char *arg, ...)
{
	va_list ap;
	ARGV_FROM_VA(arg, ap, argv, (void)0);
	return execve(path, argv, environ);
}

EXPORT int execlp(const char *file, const char *arg, ...)
{
	va_list ap;
	ARGV_FROM_VA(arg, ap, argv, (void)0);
	return execvpe(file, argv, environ);
}

EXPORT int execle(const char *path, const char *arg, ...)
{
	va_list ap;
	char **envp;
	ARGV_FROM_VA(arg, ap, argv, envp = va_arg(ap, char **));
	return execve(path, argv, envp);
}

/* posix_spawn runs the child's exec inside glibc: the descriptors that
 * the child inherits get their blocking mode back for the spawn (the
 * description is shared, so ours block for that moment too: a read then
 * waits in the kernel, which is still correct). */
EXPORT int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
                       const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	fds_inherit();
	return BLOCKING(io_real.posix_spawn(pid, path, fa, attr, argv, envp));
}

EXPORT int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa,
                        const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	fds_inherit();
	return BLOCKING(io_real.posix_spawnp(pid, file, fa, attr, argv, envp));
}

/* ---- the large-file and fortified names ---------------------------------- */

/* On LP64 the 64-bit offset names are the same functions. */
#define ALIAS_OF(name) __attribute__((alias(#name), visibility("default")))
extern __typeof(pread) pread64 ALIAS_OF(pread);
extern __typeof(pwrite) pwrite64 ALIAS_OF(pwrite);
extern __typeof(__pread_chk) __pread64_chk ALIAS_OF(__pread_chk);
extern __typeof(preadv) preadv64 ALIAS_OF(preadv);
extern __typeof(pwritev) pwritev64 ALIAS_OF(pwritev);
extern __typeof(open) open64 ALIAS_OF(open);
extern __typeof(openat) openat64 ALIAS_OF(openat);

/* __open_2: the fortified open without a mode (O_CREAT needs one). */
EXPORT int __open_2(const char *path, int flags)
{
	if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE)
		__chk_fail();
	return BLOCKING(io_real.open(path, flags));
}

EXPORT int __openat_2(int dirfd, const char *path, int flags)
{
	if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE)
		__chk_fail();
	return BLOCKING(io_real.openat(dirfd, path, flags));
}

extern __typeof(__open_2) __open64_2 ALIAS_OF(__open_2);
extern __typeof(__openat_2) __openat64_2 ALIAS_OF(__openat_2);
extern __typeof(creat) creat64 ALIAS_OF(creat);
extern __typeof(lockf) lockf64 ALIAS_OF(lockf);
extern __typeof(sendfile) sendfile64 ALIAS_OF(sendfile);

/* glibc's versions of every name above. */
SYMVER(read, V_BASE);
SYMVER(write, V_BASE);
SYMVER(readv, V_BASE);
SYMVER(writev, V_BASE);
SYMVER(recv, V_BASE);
SYMVER(recvfrom, V_BASE);
SYMVER(recvmsg, V_BASE);
SYMVER(recvmmsg, V_2_12);
SYMVER(send, V_BASE);
SYMVER(sendto, V_BASE);
SYMVER(sendmsg, V_BASE);
SYMVER(sendmmsg, V_2_14);
SYMVER(accept, V_BASE);
SYMVER(accept4, V_2_10);
SYMVER(connect, V_BASE);
SYMVER(poll, V_BASE);
SYMVER(ppoll, V_2_4);
SYMVER(select, V_BASE);
SYMVER(pselect, V_BASE);
SYMVER(epoll_wait, V_2_3_2);
SYMVER(epoll_pwait, V_2_6);
SYMVER(epoll_create, V_2_3_2);
SYMVER(epoll_create1, V_2_9);
SYMVER(close, V_BASE);
SYMVER(shutdown, V_BASE);
SYMVER(socket, V_BASE);
SYMVER(socketpair, V_BASE);
SYMVER(pipe, V_BASE);
SYMVER(pipe2, V_2_9);
SYMVER(dup, V_BASE);
SYMVER(dup2, V_BASE);
SYMVER(dup3, V_2_9);
SYMVER(fdopen, V_BASE);
SYMVER(fcntl, V_BASE);
SYMVER(fcntl64, V_2_28);
SYMVER(ioctl, V_BASE);
SYMVER(setsockopt, V_BASE);
SYMVER(pread, V_BASE);
SYMVER(pwrite, V_BASE);
SYMVER(pread64, V_BASE);
SYMVER(pwrite64, V_BASE);
SYMVER(preadv, V_2_10);
SYMVER(pwritev, V_2_10);
SYMVER(preadv64, V_2_10);
SYMVER(pwritev64, V_2_10);
SYMVER(open, V_BASE);
SYMVER(open64, V_BASE);
SYMVER(openat, V_2_4);
SYMVER(openat64, V_2_4);
SYMVER(creat, V_BASE);
SYMVER(creat64, V_BASE);
SYMVER(__open_2, V_2_7);
SYMVER(__open64_2, V_2_7);
SYMVER(__openat_2, V_2_7);
SYMVER(__openat64_2, V_2_7);
SYMVER(fsync, V_BASE);
SYMVER(fdatasync, V_BASE);
SYMVER(sync, V_BASE);
SYMVER(syncfs, V_2_14);
SYMVER(waitpid, V_BASE);
SYMVER(wait, V_BASE);
SYMVER(wait4, V_BASE);
SYMVER(waitid, V_BASE);
SYMVER(getaddrinfo, V_BASE);
SYMVER(getnameinfo, V_BASE);
SYMVER(gethostbyname, V_BASE);
SYMVER(gethostbyname2, V_BASE);
SYMVER(gethostbyname_r, V_BASE);
SYMVER(gethostbyname2_r, V_BASE);
SYMVER(gethostbyaddr, V_BASE);
SYMVER(gethostbyaddr_r, V_BASE);
SYMVER(sigwait, V_BASE);
SYMVER(sigwaitinfo, V_BASE);
SYMVER(sigsuspend, V_BASE);
SYMVER(sigtimedwait, V_BASE);
SYMVER(flock, V_BASE);
SYMVER(lockf, V_BASE);
SYMVER(lockf64, V_BASE);
SYMVER(sendfile, V_BASE);
SYMVER(eventfd, V_2_7);
SYMVER(eventfd_read, V_2_7);
SYMVER(eventfd_write, V_2_7);
SYMVER(timerfd_create, V_2_8);
SYMVER(inotify_init1, V_2_9);
SYMVER(sendfile64, V_2_3);
SYMVER(splice, V_2_5);
SYMVER(tee, V_2_5);
SYMVER(system, V_BASE);
SYMVER(popen, V_BASE);
SYMVER(vfork, V_BASE);
SYMVER(close_range, V_2_34);
SYMVER(closefrom, V_2_34);
SYMVER(execve, V_BASE);
SYMVER(fexecve, V_BASE);
SYMVER(execv, V_BASE);
SYMVER(execvp, V_BASE);
SYMVER(execvpe, V_2_11);
SYMVER(execl, V_BASE);
SYMVER(execlp, V_BASE);
SYMVER(execle, V_BASE);
SYMVER(posix_spawn, V_2_15);
SYMVER(posix_spawnp, V_2_15);
SYMVER(__read_chk, V_2_4);
SYMVER(__recv_chk, V_2_4);
SYMVER(__recvfrom_chk, V_2_4);
SYMVER(__poll_chk, V_2_16);
SYMVER(__ppoll_chk, V_2_16);
SYMVER(__pread_chk, V_2_4);
SYMVER(__pread64_chk, V_2_4);
