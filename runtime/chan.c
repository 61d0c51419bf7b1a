/*
 * Channels, ported from Go's runtime/chan.go (Go 1.19), and the sudog
 * caches of runtime/proc.go (acquireSudog, releaseSudog).
 *
 * Invariants (chan.go):
 *  At least one of c.sendq and c.recvq is empty, except for an unbuffered
 *  channel with a single goroutine blocked on it for both sending and
 *  receiving using a select statement, in which case the length of
 *  c.sendq and c.recvq is limited only by the size of the select.
 *  For buffered channels, also:
 *   c.qcount > 0 implies that c.recvq is empty.
 *   c.qcount < c.dataqsiz implies that c.sendq is empty.
 *
 * Every function here runs inside the runtime: its caller holds a P
 * (runtime_enter). A blocked sender or receiver parks with its sudog on the
 * channel's queue; the goroutine that completes the operation copies the
 * element straight to or from the parked goroutine's memory (sendDirect,
 * recvDirect) and readies it. sudog.elem points into the parked
 * goroutine's own frame, which stays valid while it is parked.
 *
 * Go's panics (send on closed channel, close of closed or nil channel) end
 * the process through gopanic, after the channel lock is released.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/runtime.h"

#define maxElemSize 65536u

/* ---- sudog caches (proc.go) ----------------------------------------- */

struct sudog *acquireSudog(void)
{
	struct m *mp = getg()->m;
	struct p *pp = mp->p;
	if (unlikely(!pp))
		throw("acquireSudog: no P");
	if (pp->nsudogcache == 0) {
		/* First, try to grab a batch from central cache. */
		lock(&sched.sudoglock);
		while (pp->nsudogcache < (int32_t)(sizeof pp->sudogcache / sizeof pp->sudogcache[0]) / 2 &&
		       sched.sudogcache) {
			struct sudog *s = sched.sudogcache;
			sched.sudogcache = s->next;
			s->next = NULL;
			pp->sudogcache[pp->nsudogcache++] = s;
		}
		unlock(&sched.sudoglock);
		/* If the central cache is empty, allocate a new one. */
		if (pp->nsudogcache == 0) {
			/* A cache line each: a parked goroutine's sudog is
			 * written by its waker, and neighbours belong to other
			 * goroutines. */
			struct sudog *s = persistentalloc(sizeof *s, 64);
			if (!s)
				throw("acquireSudog: out of memory");
			pp->sudogcache[pp->nsudogcache++] = s;
		}
	}
	struct sudog *s = pp->sudogcache[--pp->nsudogcache];
	pp->sudogcache[pp->nsudogcache] = NULL;
	if (unlikely(s->elem))
		throw("acquireSudog: found s.elem != nil in cache");
	atomic_store_explicit(&pp->nsudog, atomic_load_explicit(&pp->nsudog, memory_order_relaxed) + 1,
	                      memory_order_relaxed);
	return s;
}

void releaseSudog(struct sudog *s)
{
	if (unlikely(s->elem))
		throw("runtime: sudog with non-nil elem");
	if (unlikely(s->isSelect))
		throw("runtime: sudog with non-false isSelect");
	if (unlikely(s->next))
		throw("runtime: sudog with non-nil next");
	if (unlikely(s->prev))
		throw("runtime: sudog with non-nil prev");
	if (unlikely(s->waitlink))
		throw("runtime: sudog with non-nil waitlink");
	if (unlikely(s->c))
		throw("runtime: sudog with non-nil c");
	struct g *gp = getg();
	if (unlikely(gp->param))
		throw("runtime: releaseSudog with non-nil gp.param");
	s->g = NULL;
	s->parent = NULL;
	s->waittail = NULL;
	s->ticket = 0;
	s->success = false;
	struct p *pp = gp->m->p;
	const int32_t cap = (int32_t)(sizeof pp->sudogcache / sizeof pp->sudogcache[0]);
	if (pp->nsudogcache == cap) {
		/* Transfer half of local cache to the central cache. */
		struct sudog *first = NULL, *last = NULL;
		while (pp->nsudogcache > cap / 2) {
			struct sudog *p = pp->sudogcache[--pp->nsudogcache];
			pp->sudogcache[pp->nsudogcache] = NULL;
			if (!first)
				first = p;
			else
				last->next = p;
			last = p;
		}
		lock(&sched.sudoglock);
		last->next = sched.sudogcache;
		sched.sudogcache = first;
		unlock(&sched.sudoglock);
	}
	pp->sudogcache[pp->nsudogcache++] = s;
	atomic_store_explicit(&pp->nsudog, atomic_load_explicit(&pp->nsudog, memory_order_relaxed) - 1,
	                      memory_order_relaxed);
}

/* p.destroy: a P's sudogs go to the central cache. */
void sudogcache_flush(struct p *pp)
{
	lock(&sched.sudoglock);
	while (pp->nsudogcache > 0) {
		struct sudog *s = pp->sudogcache[--pp->nsudogcache];
		pp->sudogcache[pp->nsudogcache] = NULL;
		s->next = sched.sudogcache;
		sched.sudogcache = s;
	}
	unlock(&sched.sudoglock);
}

/* ---- wait queues ----------------------------------------------------- */

/* q->first is read without the lock by the fast paths (full, empty): every
 * store to it is atomic. */
static inline void set_first(struct waitq *q, struct sudog *s)
{
	__atomic_store_n(&q->first, s, __ATOMIC_RELAXED);
}

void waitq_enqueue(struct waitq *q, struct sudog *sgp)
{
	sgp->next = NULL;
	struct sudog *x = q->last;
	if (!x) {
		sgp->prev = NULL;
		set_first(q, sgp);
		q->last = sgp;
		return;
	}
	sgp->prev = x;
	x->next = sgp;
	q->last = sgp;
}

struct sudog *waitq_dequeue(struct waitq *q)
{
	for (;;) {
		struct sudog *sgp = q->first;
		if (!sgp)
			return NULL;
		struct sudog *y = sgp->next;
		if (!y) {
			set_first(q, NULL);
			q->last = NULL;
		} else {
			y->prev = NULL;
			set_first(q, y);
			sgp->next = NULL; /* mark as removed (see dequeueSudoG) */
		}
		if (unlikely(sgp->g->forkgone)) {
			/* another thread's, in a fork child (afterforkinchild):
			 * its goroutine will never drop its reference */
			atomic_fetch_sub_explicit(&sgp->c->nref, 1, memory_order_relaxed);
			continue;
		}
		/* If a goroutine was put on this queue because of a select,
		 * there is a small window between the goroutine being woken up
		 * by a different case and it grabbing the channel locks. Once
		 * it has the lock it removes itself from the queue, so we won't
		 * see it after that. We use a flag in the G struct to tell us
		 * when someone else has won the race to signal this goroutine
		 * but the goroutine hasn't removed itself from the queue yet. */
		if (sgp->isSelect) {
			uint32_t exp = 0;
			if (!atomic_compare_exchange_strong(&sgp->g->selectDone, &exp, 1))
				continue;
		}
		return sgp;
	}
}

/* select.go: waitq.dequeueSudoG */
void waitq_dequeueSudoG(struct waitq *q, struct sudog *sgp)
{
	struct sudog *x = sgp->prev, *y = sgp->next;
	if (x) {
		if (y) {
			/* middle of queue */
			x->next = y;
			y->prev = x;
			sgp->next = NULL;
			sgp->prev = NULL;
			return;
		}
		/* end of queue */
		x->next = NULL;
		q->last = x;
		sgp->prev = NULL;
		return;
	}
	if (y) {
		/* start of queue */
		y->prev = NULL;
		set_first(q, y);
		sgp->next = NULL;
		return;
	}
	/* x==y==nil. Either sgp is the only element in the queue, or it has
	 * already been removed. Use q.first to disambiguate. */
	if (q->first == sgp) {
		set_first(q, NULL);
		q->last = NULL;
	}
}

/* ---- make / free ----------------------------------------------------- */

struct hchan *makechan(size_t elemsize, size_t cap, int *err)
{
	if (elemsize > maxElemSize) {
		*err = EINVAL;
		return NULL;
	}
	size_t mem;
	if (__builtin_mul_overflow(elemsize, cap, &mem) || mem > ((size_t)1 << 47) ||
	    cap > ((size_t)1 << 47)) {
		*err = ENOMEM;
		return NULL;
	}
	/* One allocation for the header and the buffer, as Go does for
	 * pointer-free elements; elements aligned for any scalar. */
	size_t hdr = (sizeof(struct hchan) + 15) & ~(size_t)15;
	struct hchan *c = calloc(1, hdr + mem);
	if (!c) {
		*err = ENOMEM;
		return NULL;
	}
	c->buf = mem ? (char *)c + hdr : (char *)c; /* zero-size: buf is never read */
	c->elemsize = (uint32_t)elemsize;
	c->dataqsiz = cap;
	*err = 0;
	return c;
}

/* go_chan_free: only a channel nobody waits on may go. */
/* Is a goroutine blocked on q? A select that another case has already
 * won (selectDone) is not: it is about to take its sudog off. c.lock
 * held. */
static bool waitq_blocked(struct waitq *q)
{
	for (struct sudog *sg = q->first; sg; sg = sg->next)
		if (!sg->isSelect || atomic_load(&sg->g->selectDone) == 0)
			return true;
	return false;
}

/* A fork child's copies of other threads' waiters leave the queue, with
 * the references their goroutines will never drop. c.lock held. */
static void waitq_drop_gone(struct hchan *c, struct waitq *q)
{
	struct sudog *sg = q->first, *next;
	for (; sg; sg = next) {
		next = sg->next;
		if (unlikely(sg->g->forkgone)) {
			waitq_dequeueSudoG(q, sg);
			atomic_fetch_sub_explicit(&c->nref, 1, memory_order_relaxed);
		}
	}
}

void freechan(struct hchan *c)
{
	for (;;) {
		lock(&c->lock);
		waitq_drop_gone(c, &c->recvq);
		waitq_drop_gone(c, &c->sendq);
		bool waiters = waitq_blocked(&c->recvq) || waitq_blocked(&c->sendq);
		unlock(&c->lock);
		if (waiters)
			gopanic("go_chan_free of a channel with waiting goroutines");
		if (atomic_load(&c->nref) == 0)
			break;
		/* Goroutines woken from c (by a close, or a select that chose
		 * another case) still have to take their sudogs off it. They
		 * are runnable: let them. */
		gosched();
	}
	if (c->timer) {
		timer_destroy(c->timer);
		free(c->timer);
		c->timer = NULL;
	}
	free(c);
}

/* full reports whether a send on c would block (that is, the channel is
 * full). It uses a single word-sized read of mutable state, so although
 * the answer is instantaneously true, the correct answer may have changed
 * by the time the calling function receives the return value. */
static bool full(struct hchan *c)
{
	if (c->dataqsiz == 0)
		return __atomic_load_n(&c->recvq.first, __ATOMIC_RELAXED) == NULL;
	return __atomic_load_n(&c->qcount, __ATOMIC_RELAXED) == c->dataqsiz;
}

static bool empty(struct hchan *c)
{
	if (c->dataqsiz == 0)
		return __atomic_load_n(&c->sendq.first, __ATOMIC_RELAXED) == NULL;
	return __atomic_load_n(&c->qcount, __ATOMIC_RELAXED) == 0;
}

static inline void set_qcount(struct hchan *c, size_t v)
{
	__atomic_store_n(&c->qcount, v, __ATOMIC_RELAXED);
}

bool chanparkcommit(struct g *gp, void *chanLock)
{
	(void)gp;
	unlock((mutex_t *)chanLock);
	return true;
}

/* ---- buffered fast paths, without a P -------------------------------- */

/* Not in Go, where every goroutine holds its P: here user code runs with
 * its P handed out (_Psyscall), and taking it back costs a CAS. A send
 * into a buffer with room and nobody to wake, or a receive from a buffer
 * with no parked sender, needs only the channel lock, which works without
 * a P: these do just that and report false when the full path (chansend,
 * chanrecv, inside the runtime) is needed. */
bool chansend_buffered(struct hchan *c, const void *ep)
{
	if (!c || c->dataqsiz == 0 || full(c) ||
	    __atomic_load_n(&c->recvq.first, __ATOMIC_RELAXED) ||
	    atomic_load_explicit(&c->closed, memory_order_relaxed))
		return false;
	lock(&c->lock);
	if (c->closed || c->recvq.first || c->qcount == c->dataqsiz) {
		unlock(&c->lock);
		return false;
	}
	if (c->elemsize)
		memcpy(chanbuf(c, c->sendx), ep, c->elemsize);
	if (++c->sendx == c->dataqsiz)
		c->sendx = 0;
	set_qcount(c, c->qcount + 1);
	unlock(&c->lock);
	return true;
}

bool chanrecv_buffered(struct hchan *c, void *ep)
{
	if (!c || c->dataqsiz == 0 || empty(c) || __atomic_load_n(&c->sendq.first, __ATOMIC_RELAXED))
		return false;
	lock(&c->lock);
	if (c->qcount == 0 || c->sendq.first) {
		unlock(&c->lock);
		return false;
	}
	char *qp = chanbuf(c, c->recvx);
	if (c->elemsize) {
		if (ep)
			memcpy(ep, qp, c->elemsize);
		memset(qp, 0, c->elemsize);
	}
	if (++c->recvx == c->dataqsiz)
		c->recvx = 0;
	set_qcount(c, c->qcount - 1);
	unlock(&c->lock);
	return true;
}

/* ---- send ------------------------------------------------------------ */

/* send processes a send operation on an empty channel c. The value ep sent
 * by the sender is copied to the receiver sg. The receiver is then woken
 * up to go on its merry way. Channel c must be empty and locked; the
 * caller unlocks it (chan_send_locked does, before goready). */
void chan_send_locked(struct hchan *c, struct sudog *sg, const void *ep,
                      void (*unlockf)(void *), void *ul)
{
	if (c->dataqsiz != 0) {
		/* Pretend we go through the buffer, even though we copy
		 * directly. Note that we need to increment the head/tail
		 * locations only when raceenabled. */
		if (++c->recvx == c->dataqsiz)
			c->recvx = 0;
		c->sendx = c->recvx; /* c.sendx = (c.sendx+1) % c.dataqsiz */
	}
	if (sg->elem) {
		if (c->elemsize)
			memcpy(sg->elem, ep, c->elemsize); /* sendDirect */
		sg->elem = NULL;
	}
	struct g *gp = sg->g;
	unlockf(ul);
	gp->param = sg;
	sg->success = true;
	goready(gp);
}

static void unlock_chan(void *c)
{
	unlock(&((struct hchan *)c)->lock);
}

bool chansend(struct hchan *c, const void *ep, bool block)
{
	if (!c) {
		if (!block)
			return false;
		gopark(NULL, NULL, waitReasonChanSendNilChan);
		throw("unreachable");
	}
	/* Fast path: check for failed non-blocking operation without
	 * acquiring the lock. After observing that the channel is not closed,
	 * we observe that the channel is not ready for sending. */
	if (!block && atomic_load_explicit(&c->closed, memory_order_relaxed) == 0 && full(c))
		return false;

	lock(&c->lock);
	if (c->closed) {
		unlock(&c->lock);
		gopanic("send on closed channel");
	}
	struct sudog *sg = waitq_dequeue(&c->recvq);
	if (sg) {
		/* Found a waiting receiver. We pass the value we want to send
		 * directly to the receiver, bypassing the channel buffer. */
		chan_send_locked(c, sg, ep, unlock_chan, c);
		return true;
	}
	if (c->qcount < c->dataqsiz) {
		/* Space is available in the channel buffer. Enqueue the
		 * element to send. */
		if (c->elemsize)
			memcpy(chanbuf(c, c->sendx), ep, c->elemsize);
		if (++c->sendx == c->dataqsiz)
			c->sendx = 0;
		set_qcount(c, c->qcount + 1);
		unlock(&c->lock);
		return true;
	}
	if (!block) {
		unlock(&c->lock);
		return false;
	}
	/* Block on the channel. Some receiver will complete our operation
	 * for us. */
	struct g *gp = getg();
	struct sudog *mysg = acquireSudog();
	mysg->elem = (void *)ep;
	mysg->waitlink = NULL;
	mysg->g = gp;
	mysg->isSelect = false;
	mysg->c = c;
	atomic_fetch_add_explicit(&c->nref, 1, memory_order_relaxed);
	gp->waiting = mysg;
	gp->param = NULL;
	waitq_enqueue(&c->sendq, mysg);
	gopark(chanparkcommit, &c->lock, waitReasonChanSend);

	/* someone woke us up. */
	if (unlikely(mysg != gp->waiting))
		throw("G waiting list is corrupted");
	gp->waiting = NULL;
	bool closed = !mysg->success;
	gp->param = NULL;
	mysg->c = NULL;
	releaseSudog(mysg);
	if (closed && c->closed == 0)
		throw("chansend: spurious wakeup");
	atomic_fetch_sub_explicit(&c->nref, 1, memory_order_release); /* last use of c */
	if (closed)
		gopanic("send on closed channel");
	return true;
}

/* ---- receive --------------------------------------------------------- */

/* recv processes a receive operation on a full channel c. There are two
 * parts: 1) The value sent by the sender sg is put into the channel and
 * the sender is woken up to go on its merry way. 2) The value received by
 * the receiver (the current G) is written to ep. For synchronous channels,
 * both values are the same. For asynchronous channels, the receiver gets
 * its data from the channel buffer and the sender's data is put in the
 * channel buffer. Channel c must be full and locked. recv unlocks c. */
void chan_recv_locked(struct hchan *c, struct sudog *sg, void *ep,
                      void (*unlockf)(void *), void *ul)
{
	if (c->dataqsiz == 0) {
		if (ep && c->elemsize)
			memcpy(ep, sg->elem, c->elemsize); /* recvDirect */
	} else {
		/* Queue is full. Take the item at the head of the queue. Make
		 * the sender enqueue its item at the tail of the queue. Since
		 * the queue is full, those are both the same slot. */
		char *qp = chanbuf(c, c->recvx);
		if (c->elemsize) {
			if (ep)
				memcpy(ep, qp, c->elemsize);
			memcpy(qp, sg->elem, c->elemsize);
		}
		if (++c->recvx == c->dataqsiz)
			c->recvx = 0;
		c->sendx = c->recvx; /* c.sendx = (c.sendx+1) % c.dataqsiz */
	}
	sg->elem = NULL;
	struct g *gp = sg->g;
	unlockf(ul);
	gp->param = sg;
	sg->success = true;
	goready(gp);
}

/* chanrecv receives on channel c and writes the received data to ep. ep
 * may be NULL, in which case received data is ignored. If block == false
 * and no elements are available, returns (false, false). Otherwise, if c
 * is closed, zeros *ep and returns (true, false). Otherwise, fills in *ep
 * with an element and returns (true, true). */
void chanrecv(struct hchan *c, void *ep, bool block, bool *selected, bool *received)
{
	*selected = *received = false;
	if (!c) {
		if (!block)
			return;
		gopark(NULL, NULL, waitReasonChanReceiveNilChan);
		throw("unreachable");
	}
	/* Fast path: check for failed non-blocking operation without
	 * acquiring the lock. */
	if (!block && empty(c)) {
		/* After observing that the channel is not ready for receiving,
		 * we observe whether the channel is closed. The order matters:
		 * a channel is never reopened, so a later observation of
		 * "closed" implies it was closed while still empty. */
		if (atomic_load(&c->closed) == 0)
			return;
		/* The channel is irreversibly closed. Re-check whether the
		 * channel has any pending data to receive, which could have
		 * arrived between the empty and closed checks above. */
		if (empty(c)) {
			if (ep && c->elemsize)
				memset(ep, 0, c->elemsize);
			*selected = true;
			return;
		}
	}

	lock(&c->lock);
	if (c->closed) {
		if (c->qcount == 0) {
			unlock(&c->lock);
			if (ep && c->elemsize)
				memset(ep, 0, c->elemsize);
			*selected = true;
			return;
		}
		/* The channel has been closed, but the channel's buffer have
		 * data. */
	} else {
		/* Just found waiting sender with not closed. */
		struct sudog *sg = waitq_dequeue(&c->sendq);
		if (sg) {
			/* Found a waiting sender. If buffer is size 0, receive
			 * value directly from sender. Otherwise, receive from
			 * head of queue and add sender's value to the tail of
			 * the queue (both map to the same buffer slot because
			 * the queue is full). */
			chan_recv_locked(c, sg, ep, unlock_chan, c);
			*selected = *received = true;
			return;
		}
	}
	if (c->qcount > 0) {
		/* Receive directly from queue */
		char *qp = chanbuf(c, c->recvx);
		if (c->elemsize) {
			if (ep)
				memcpy(ep, qp, c->elemsize);
			memset(qp, 0, c->elemsize);
		}
		if (++c->recvx == c->dataqsiz)
			c->recvx = 0;
		set_qcount(c, c->qcount - 1);
		unlock(&c->lock);
		*selected = *received = true;
		return;
	}
	if (!block) {
		unlock(&c->lock);
		return;
	}
	/* no sender available: block on this channel. */
	struct g *gp = getg();
	struct sudog *mysg = acquireSudog();
	mysg->elem = ep;
	mysg->waitlink = NULL;
	gp->waiting = mysg;
	mysg->g = gp;
	mysg->isSelect = false;
	mysg->c = c;
	atomic_fetch_add_explicit(&c->nref, 1, memory_order_relaxed);
	gp->param = NULL;
	waitq_enqueue(&c->recvq, mysg);
	gopark(chanparkcommit, &c->lock, waitReasonChanReceive);

	/* someone woke us up */
	if (unlikely(mysg != gp->waiting))
		throw("G waiting list is corrupted");
	gp->waiting = NULL;
	bool success = mysg->success;
	gp->param = NULL;
	mysg->c = NULL;
	releaseSudog(mysg);
	atomic_fetch_sub_explicit(&c->nref, 1, memory_order_release); /* last use of c */
	*selected = true;
	*received = success;
}

/* ---- close ----------------------------------------------------------- */

void closechan(struct hchan *c)
{
	if (!c)
		gopanic("close of nil channel");
	lock(&c->lock);
	if (c->closed) {
		unlock(&c->lock);
		gopanic("close of closed channel");
	}
	atomic_store(&c->closed, 1);

	struct g *head = NULL, *tail = NULL; /* Go's glist */
	/* release all readers */
	for (;;) {
		struct sudog *sg = waitq_dequeue(&c->recvq);
		if (!sg)
			break;
		if (sg->elem) {
			if (c->elemsize)
				memset(sg->elem, 0, c->elemsize);
			sg->elem = NULL;
		}
		struct g *gp = sg->g;
		gp->param = sg;
		sg->success = false;
		gp->schedlink = NULL;
		if (tail)
			tail->schedlink = gp;
		else
			head = gp;
		tail = gp;
	}
	/* release all writers (they will panic) */
	for (;;) {
		struct sudog *sg = waitq_dequeue(&c->sendq);
		if (!sg)
			break;
		sg->elem = NULL;
		struct g *gp = sg->g;
		gp->param = sg;
		sg->success = false;
		gp->schedlink = NULL;
		if (tail)
			tail->schedlink = gp;
		else
			head = gp;
		tail = gp;
	}
	unlock(&c->lock);

	/* Ready all Gs now that we've dropped the channel lock. */
	while (head) {
		struct g *gp = head;
		head = gp->schedlink;
		gp->schedlink = NULL;
		goready(gp);
	}
}
