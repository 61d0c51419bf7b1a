/*
 * The network poller's core, ported from Go's runtime/netpoll.go and
 * netpoll_epoll.go: one epoll instance and an eventfd to break a blocked
 * poll (netpollBreak).
 *
 * The scheduler uses it as Go does: the last M with nothing to run blocks
 * in netpoll(delay) until the earliest timer is due (findrunnable), and
 * whoever adds an earlier timer wakes it (wakeNetPoller). Descriptors and
 * their pollDescs join this file with the I/O interposition; until then
 * netpoll returns no goroutines and serves as the timed sleep of the
 * scheduler.
 *
 * Invariants (netpoll.go):
 *  - sched.lastpoll == 0 while an M is blocked in netpoll; at most one M
 *    blocks there (findrunnable swaps lastpoll to 0 to enter).
 *  - sched.pollUntil is the deadline of that blocked poll, or 0: a timer
 *    earlier than it must break the poll, a later one need not.
 *  - netpollWakeSig: at most one break is pending, so the eventfd never
 *    fills up.
 *
 * Raw system calls only: the runtime never calls an interposed symbol.
 */
#include <errno.h>
#include <stdint.h>
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
		if (ev->data.ptr == &netpollEventFd) {
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
	}
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
