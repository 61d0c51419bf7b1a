/*
 * The network poller's core, ported from Go's runtime/netpoll.go and
 * netpoll_epoll.go: one epoll instance and an eventfd to break a blocked
 * poll (netpollBreak).
 *
 * The scheduler uses it as Go does: the last M with nothing to run blocks
 * in netpoll(delay) until the earliest timer is due (findrunnable), and
 * whoever adds an earlier timer wakes it (wakeNetPoller). Each descriptor
 * the interposed I/O made non-blocking (interpose/io.c) has a pollDesc,
 * registered once, edge-triggered, for EPOLLIN|EPOLLOUT|EPOLLRDHUP; a
 * goroutine whose call would block parks on it (netpollwait) and netpoll
 * hands the ready ones to the scheduler.
 *
 * Invariants (netpoll.go):
 *  - sched.lastpoll == 0 while an M is blocked in netpoll; at most one M
 *    blocks there (findrunnable swaps lastpoll to 0 to enter).
 *  - sched.pollUntil is the deadline of that blocked poll, or 0: a timer
 *    earlier than it must break the poll, a later one need not.
 *  - netpollWakeSig: at most one break is pending, so the eventfd never
 *    fills up.
 *  - A pollDesc's waiters are linked and unlinked under pd.lock, and each
 *    waiter is between park_prepare and the end of park_wait while
 *    linked: netpollready claims it with park_wake, so a goroutine is
 *    readied at most once however many descriptors it waits on.
 *  - No lost edge: rseq/wseq move under pd.lock before waiters are
 *    claimed, and netpollarm refuses (EAGAIN) a waiter whose snapshot,
 *    taken before its failed attempt, is out of date.
 *  - epoll's data is the pollDesc tagged with its fdseq: an event queued
 *    before a reuse is recognised as stale and dropped (netpoll.go's
 *    taggedPointer).
 *
 * Raw system calls only: the runtime never calls an interposed symbol.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "runtime/runtime.h"

static int epfd = -1;
static int netpollEventFd = -1;
static _Atomic uint32_t netpollInited;
static _Atomic uint32_t netpollWakeSig; /* used to avoid duplicate calls of netpollBreak */
static mutex_t netpollInitLock;
_Atomic uint32_t netpollWaiters;

/* epoll data: a pollDesc's address, tagged with its fdseq in the top bits
 * (user addresses fit in 48 bits on x86-64 and aarch64). */
#define TAG_SHIFT 48
#define TAG_PTR_MASK ((UINT64_C(1) << TAG_SHIFT) - 1)
#define TAG_SEQ_MASK 0xffffu

static void netpollready(struct gqueue *toRun, struct pollDesc *pd, uint32_t mode);

static void netpollinit(void)
{
	epfd = (int)syscall(SYS_epoll_create1, EPOLL_CLOEXEC);
	if (epfd < 0)
		fatal("runtime: netpollinit failed: epoll_create1 errno %d", errno);
	netpollEventFd = (int)syscall(SYS_eventfd2, 0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (netpollEventFd < 0)
		fatal("runtime: netpollinit failed: eventfd errno %d", errno);
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &netpollEventFd};
	if (syscall(SYS_epoll_ctl, epfd, EPOLL_CTL_ADD, netpollEventFd, &ev) != 0)
		fatal("runtime: netpollinit failed: epoll_ctl errno %d", errno);
}

void netpollGenericInit(void)
{
	if (atomic_load(&netpollInited) == 0) {
		lock(&netpollInitLock);
		if (atomic_load(&netpollInited) == 0) {
			netpollinit();
			atomic_store(&netpollInited, 1);
		}
		unlock(&netpollInitLock);
	}
}

bool netpollinited(void)
{
	return atomic_load(&netpollInited) != 0;
}

/* netpollBreak interrupts an epollwait. */
void netpollBreak(void)
{
	/* Failing to cas indicates there is an in-flight wakeup, so we're
	 * done here. */
	uint32_t exp = 0;
	if (!atomic_compare_exchange_strong(&netpollWakeSig, &exp, 1))
		return;
	uint64_t one = 1;
	for (;;) {
		long n = syscall(SYS_write, netpollEventFd, &one, sizeof one);
		if (n == (long)sizeof one)
			break;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		fatal("runtime: netpollBreak write failed with errno %d", errno);
	}
}

/* netpoll checks for ready network connections. Returns list of
 * goroutines that become runnable in *toRun. delay < 0: blocks
 * indefinitely; delay == 0: does not block, just polls; delay > 0: block
 * for up to that many nanoseconds. */
void netpoll(int64_t delay, struct gqueue *toRun)
{
	toRun->head = toRun->tail = NULL;
	atomic_store(&toRun->n, 0);
	if (epfd == -1)
		return;
	int waitms;
	if (delay < 0)
		waitms = -1;
	else if (delay == 0)
		waitms = 0;
	else if (delay < 1000000)
		waitms = 1;
	else if (delay < 1000000000000LL)
		waitms = (int)(delay / 1000000);
	else
		/* An arbitrary cap on how long to wait for a timer. 1e9 ms ==
		 * ~11.5 days. */
		waitms = 1000000000;
	struct epoll_event events[128];
retry:;
	long n = syscall(SYS_epoll_pwait, epfd, events, 128, waitms, NULL, 0);
	if (n < 0) {
		if (errno != EINTR)
			fatal("runtime: netpoll failed: epoll_wait errno %d", errno);
		/* If a timed sleep was interrupted, just return to
		 * recalculate how long we should sleep now. */
		if (waitms > 0)
			return;
		goto retry;
	}
	for (long i = 0; i < n; i++) {
		struct epoll_event *ev = &events[i];
		if (ev->events == 0)
			continue;
		if (ev->data.u64 == (uint64_t)(uintptr_t)&netpollEventFd) {
			if (ev->events != EPOLLIN)
				fatal("runtime: netpoll: eventfd ready for %u", ev->events);
			if (delay != 0) {
				/* netpollBreak could be picked up by a nonblocking
				 * poll. Only call read and reset netpollWakeSig if
				 * blocking. */
				uint64_t one;
				(void)syscall(SYS_read, netpollEventFd, &one, sizeof one);
				atomic_store(&netpollWakeSig, 0);
			}
			continue;
		}
		uint32_t mode = 0;
		if (ev->events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
			mode |= POLL_R;
		if (ev->events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
			mode |= POLL_W;
		struct pollDesc *pd = (struct pollDesc *)(uintptr_t)(ev->data.u64 & TAG_PTR_MASK);
		if (mode && (uint32_t)(ev->data.u64 >> TAG_SHIFT) == (pd->fdseq & TAG_SEQ_MASK))
			netpollready(toRun, pd, mode);
	}
}

/* ---- pollDescs (netpoll.go: pollCache, poll_runtime_poll*) ----------- */

static struct {
	mutex_t lock;
	struct pollDesc *first;
	struct pollBlock *blocks; /* every pollDesc ever made (afterforkinchild) */
} pollcache;

enum { POLL_BLOCK_PDS = 4096 / sizeof(struct pollDesc) > 1 ? 4096 / sizeof(struct pollDesc) - 1 : 1 };
struct pollBlock {
	struct pollBlock *next;
	struct pollDesc pds[POLL_BLOCK_PDS];
};

/* Bumped by each fork child's new epoll instance (while it is the only
 * thread): a pollDesc registered with an older one registers again when
 * next armed (netpollarm). */
static uint32_t netpollGen;

static struct pollDesc *pollcache_alloc(void)
{
	lock(&pollcache.lock);
	if (!pollcache.first) {
		/* Never freed: a stale pointer must stay readable. */
		struct pollBlock *block = calloc(1, sizeof *block);
		if (!block) {
			unlock(&pollcache.lock);
			return NULL;
		}
		block->next = pollcache.blocks;
		pollcache.blocks = block;
		for (size_t i = 0; i < POLL_BLOCK_PDS; i++) {
			block->pds[i].link = pollcache.first;
			pollcache.first = &block->pds[i];
		}
	}
	struct pollDesc *pd = pollcache.first;
	pollcache.first = pd->link;
	unlock(&pollcache.lock);
	return pd;
}

static void pollcache_free(struct pollDesc *pd)
{
	pd->fdseq++;
	lock(&pollcache.lock);
	pd->link = pollcache.first;
	pollcache.first = pd;
	unlock(&pollcache.lock);
}

/* Registers pd's fd with the current epoll instance (netpollInitLock
 * held): 0 or an errno. */
static int netpollregister(struct pollDesc *pd)
{
	struct epoll_event ev = {
		.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
		.data.u64 = (uint64_t)(uintptr_t)pd | (uint64_t)(pd->fdseq & TAG_SEQ_MASK) << TAG_SHIFT,
	};
	if (syscall(SYS_epoll_ctl, epfd, EPOLL_CTL_ADD, pd->fd, &ev) != 0)
		return errno;
	pd->epgen = netpollGen;
	return 0;
}

/* poll_runtime_pollOpen: a pollDesc for fd, registered with epoll, holding
 * one reference (the fd table's). NULL with *err set if epoll refuses the
 * fd (EPERM: a regular file or a directory). */
struct pollDesc *netpollopen(int fd, int *err)
{
	netpollGenericInit();
	struct pollDesc *pd = pollcache_alloc();
	if (!pd) {
		*err = ENOMEM;
		return NULL;
	}
	pd->fd = fd;
	atomic_store(&pd->closing, false);
	atomic_store(&pd->evicted, false);
	atomic_store(&pd->flags, 0);
	atomic_store(&pd->rcvtimeo, 0);
	atomic_store(&pd->sndtimeo, 0);
	pd->waiters = NULL;
	pd->sibling_next = pd->sibling_prev = pd;
	atomic_store(&pd->refs, 1);
	lock(&netpollInitLock); /* against a fork child's netpollGen moving on */
	int r = netpollregister(pd);
	unlock(&netpollInitLock);
	if (r) {
		*err = r;
		atomic_store(&pd->refs, 0);
		pollcache_free(pd);
		return NULL;
	}
	return pd;
}

/* poll_runtime_pollUnblock + pollClose: pd leaves the netpoller and
 * every waiter wakes. closed: the fd is about to be closed, and they see
 * EBADF; otherwise (the fd stays open but blocks in the kernel from now
 * on) they try again. The caller holds a P and then drops the fd table's
 * reference. */
void netpollevict(struct pollDesc *pd, bool closed)
{
	struct gqueue list = {0};
	lock(&pd->lock);
	if (closed)
		atomic_store(&pd->closing, true);
	atomic_store(&pd->evicted, true);
	for (struct pollWaiter *w = pd->waiters; w; w = w->next)
		if (park_wake(w->g))
			gq_push(&list, w->g);
	unlock(&pd->lock);
	struct g *gp;
	while ((gp = gq_pop(&list)))
		goready(gp);
	(void)syscall(SYS_epoll_ctl, epfd, EPOLL_CTL_DEL, pd->fd, NULL);
}

/* A reference for an I/O call, unless the pollDesc is already free. */
bool pd_acquire(struct pollDesc *pd)
{
	uint32_t r = atomic_load(&pd->refs);
	while (r != 0)
		if (atomic_compare_exchange_weak(&pd->refs, &r, r + 1))
			return true;
	return false;
}

void pd_release(struct pollDesc *pd)
{
	if (atomic_fetch_sub(&pd->refs, 1) == 1)
		pollcache_free(pd);
}

/* netpollready: mode became ready on pd; the waiters for it go on toRun. */
static void netpollready(struct gqueue *toRun, struct pollDesc *pd, uint32_t mode)
{
	lock(&pd->lock);
	if (mode & POLL_R)
		atomic_fetch_add(&pd->rseq, 1);
	if (mode & POLL_W)
		atomic_fetch_add(&pd->wseq, 1);
	for (struct pollWaiter *w = pd->waiters; w; w = w->next)
		if ((w->mode & mode) && park_wake(w->g))
			gq_push(toRun, w->g);
	unlock(&pd->lock);
}

/* netpollarm in a fork child: pd was registered with the parent's epoll
 * instance; pd.lock held. 0 or EBADF. */
static int netpollreregister(struct pollDesc *pd)
{
	netpollGenericInit();
	lock(&netpollInitLock);
	int r = pd->epgen == netpollGen ? 0 : netpollregister(pd);
	unlock(&netpollInitLock);
	if (r && r != EBADF)
		fatal("runtime: netpoll: cannot register fd %d with the fork child's epoll: errno %d",
		      pd->fd, r);
	return r;
}

/* Links w (for the calling goroutine, which has called park_prepare) to
 * pd: 0; EBADF if pd is closing; EAGAIN if pd was evicted (the call now
 * blocks in the kernel), or seen is given and an event for mode arrived
 * since it was read: try again instead of waiting. */
int netpollarm(struct pollDesc *pd, struct pollWaiter *w, uint32_t mode, const uint32_t *seen)
{
	lock(&pd->lock);
	int r = 0;
	if (atomic_load(&pd->closing))
		r = EBADF;
	else if (atomic_load(&pd->evicted) || (seen && pd_seq(pd, mode) != *seen))
		r = EAGAIN;
	if (r == 0 && unlikely(pd->epgen != netpollGen))
		r = netpollreregister(pd);
	if (r == 0) {
		w->g = getg();
		w->mode = mode;
		w->prev = NULL;
		w->next = pd->waiters;
		if (pd->waiters)
			pd->waiters->prev = w;
		pd->waiters = w;
	}
	unlock(&pd->lock);
	return r;
}

void netpolldisarm(struct pollDesc *pd, struct pollWaiter *w)
{
	lock(&pd->lock);
	if (w->prev)
		w->prev->next = w->next;
	else
		pd->waiters = w->next;
	if (w->next)
		w->next->prev = w->prev;
	unlock(&pd->lock);
}

/* park_wait for goroutines armed on pollDescs (netpollarm): counted in
 * netpollWaiters, so that an idle M blocks in netpoll for them. */
int netpollpark(void)
{
	atomic_fetch_add(&netpollWaiters, 1);
	int r = park_wait(waitReasonIOWait);
	atomic_fetch_sub(&netpollWaiters, 1);
	return r;
}

/* netpollblock: parks the calling goroutine until mode is ready on pd
 * (seen: pd_seq before the attempt that would have blocked), the deadline
 * passes, or (cancelable) pthread_cancel. 0: try again; EBADF: closed;
 * ETIMEDOUT; ECANCELED. The caller holds a P. */
int netpollwait(struct pollDesc *pd, uint32_t mode, uint32_t seen, int64_t deadline,
                uint32_t flags)
{
	struct pollWaiter w;
	park_prepare(deadline, flags);
	int r = netpollarm(pd, &w, mode, &seen);
	if (r) {
		park_abort();
		return r == EAGAIN ? 0 : r;
	}
	r = netpollpark();
	netpolldisarm(pd, &w);
	return atomic_load(&pd->closing) ? EBADF : r;
}

/* wakeNetPoller wakes up the thread sleeping in the network poller if it
 * isn't going to wake up before the when argument; or it wakes an idle P
 * to service timers and the network poller if there isn't one already. */
void wakeNetPoller(int64_t when)
{
	if (atomic_load(&sched.lastpoll) == 0) {
		/* In findrunnable we ensure that when polling the pollUntil
		 * field is either zero or the time to which the current poll
		 * is expected to run. This can have a spurious wakeup but
		 * should never miss a wakeup. */
		int64_t pollerPollUntil = atomic_load(&sched.pollUntil);
		if (pollerPollUntil == 0 || pollerPollUntil > when)
			netpollBreak();
	} else {
		/* There are no threads in the network poller, try to get one
		 * there so it can handle new timers. */
		wakep();
	}
}

/* afterforkinchild: the epoll instance and the eventfd are the parent's
 * too (an epoll_ctl here would change the parent's registrations): drop
 * this process's copies, and let netpollGenericInit make new ones. Every
 * pollDesc's waiters were other threads' goroutines, and its lock may
 * have been held by an M that delivered readiness without a P. */
void netpoll_afterforkinchild(void)
{
	if (epfd >= 0) {
		syscall(SYS_close, epfd);
		syscall(SYS_close, netpollEventFd);
	}
	epfd = netpollEventFd = -1;
	netpollGen++;
	atomic_store(&netpollInited, 0);
	atomic_store(&netpollWakeSig, 0);
	atomic_store(&netpollWaiters, 0);
	lock_reinit_afterfork(&netpollInitLock);
	lock_reinit_afterfork(&pollcache.lock);
	for (struct pollBlock *b = pollcache.blocks; b; b = b->next) {
		for (size_t i = 0; i < POLL_BLOCK_PDS; i++) {
			lock_reinit_afterfork(&b->pds[i].lock);
			b->pds[i].waiters = NULL;
		}
	}
}
