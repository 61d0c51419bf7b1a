/*
 * select, ported from Go's runtime/select.go (selectgo, sellock, selunlock,
 * selparkcommit).
 *
 * The cases come in the API's order (sends and receives mixed), not Go's
 * compiler order (sends first); each case carries its direction.
 *
 * Invariants (select.go):
 *  - Cases are polled in a random permutation (pollorder, cheaprand), so
 *    of several ready cases each is chosen with equal probability.
 *  - Channels are locked in address order (lockorder, a heap sort that
 *    starts from pollorder so duplicates keep a random order); a channel
 *    that appears in several cases is locked once.
 *  - A blocked select enqueues one sudog per case, linked on gp.waiting in
 *    lock order; whoever completes a case first wins the CAS on
 *    gp.selectDone (waitq_dequeue) and the others skip its sudogs. After
 *    wake-up the selecting goroutine relocks every channel and dequeues
 *    the sudogs of the cases that did not run.
 *  - A NULL channel is never ready and is left out of both orders.
 */
#include <stdlib.h>
#include <string.h>

#include "runtime/runtime.h"

struct selctx {
	struct scase *scases;
	uint16_t *lockorder;
	int n;
};

static void sellock(struct scase *scases, const uint16_t *lockorder, int n)
{
	struct hchan *c = NULL;
	for (int i = 0; i < n; i++) {
		struct hchan *c0 = scases[lockorder[i]].c;
		if (c0 != c) {
			c = c0;
			lock(&c->lock);
		}
	}
}

static void selunlock(struct scase *scases, const uint16_t *lockorder, int n)
{
	/* We must be very careful here to not touch sel after we have
	 * unlocked the last lock, because sel can be freed right after the
	 * last unlock. Consider the following situation. First M calls
	 * runtime·park() in runtime·selectgo() passing the sel. Once
	 * runtime·park() has unlocked the last lock, another M makes the G
	 * that calls select runnable again and schedules it for execution.
	 * When the G runs on another M, it locks all the locks and frees sel.
	 * Now if the first M touches sel, it will access freed memory. */
	for (int i = n - 1; i >= 0; i--) {
		struct hchan *c = scases[lockorder[i]].c;
		if (i > 0 && c == scases[lockorder[i - 1]].c)
			continue; /* will unlock it on the next iteration */
		unlock(&c->lock);
	}
}

/* After a blocked select is done with its channels (pass 3 and the
 * unlock): drop the references its sudogs held (hchan.nref), one per
 * case; nothing of a channel is touched after its last drop. */
static void selrelease(struct scase *scases, const uint16_t *lockorder, int n)
{
	for (int i = 0; i < n; i++)
		atomic_fetch_sub_explicit(&scases[lockorder[i]].c->nref, 1, memory_order_release);
}

static void selunlock_cb(void *arg)
{
	struct selctx *s = arg;
	selunlock(s->scases, s->lockorder, s->n);
}

static bool selparkcommit(struct g *gp, void *unused)
{
	(void)unused;
	/* This must not access gp's stack (see gopark). In particular, it
	 * must not access the *hselect. That's okay, because by the time this
	 * is called, gp.waiting has all channels in lock order. */
	struct hchan *lastc = NULL;
	for (struct sudog *sg = gp->waiting; sg; sg = sg->waitlink) {
		if (sg->c != lastc && lastc) {
			/* As soon as we unlock the channel, fields in any sudog
			 * with that channel may change, including c and
			 * waitlink. Since multiple sudogs may have the same
			 * channel, we unlock only after we've passed the last
			 * instance of a channel. */
			unlock(&lastc->lock);
		}
		lastc = sg->c;
	}
	if (lastc)
		unlock(&lastc->lock);
	return true;
}

static inline uintptr_t sortkey(struct hchan *c)
{
	return (uintptr_t)c;
}

/* selectgo runs the select; returns the index of the chosen case, or -1
 * when !block and nothing was ready. A receive case's *recvOK is set. At
 * most 65536 cases. */
int selectgo(struct scase *scases, int ncases, bool block)
{
	if (ncases == 0 || !scases) {
		if (!block)
			return -1;
		gopark(NULL, NULL, waitReasonSelectNoCases); /* forever */
		throw("unreachable");
	}
	if (ncases > 65536)
		gopanic("select: too many cases (more than 65536)");

	uint16_t order_small[2 * 16];
	uint16_t *order0 = order_small;
	if (ncases > 16) {
		order0 = malloc(2 * sizeof(uint16_t) * (size_t)ncases);
		if (!order0)
			throw("selectgo: out of memory");
	}
	uint16_t *pollorder = order0;
	uint16_t *lockorder = order0 + ncases;

	/* generate permuted order */
	int norder = 0;
	for (int i = 0; i < ncases; i++) {
		struct scase *cas = &scases[i];
		/* Omit cases without channels from the poll and lock orders. */
		if (!cas->c)
			continue;
		uint32_t j = (uint32_t)(((uint64_t)cheaprand() * (uint64_t)(norder + 1)) >> 32);
		pollorder[norder] = pollorder[j];
		pollorder[j] = (uint16_t)i;
		norder++;
	}
	if (norder == 0) {
		if (order0 != order_small)
			free(order0);
		if (!block)
			return -1;
		gopark(NULL, NULL, waitReasonSelectNoCases);
		throw("unreachable");
	}

	/* sort the cases by Hchan address to get the locking order. simple
	 * heap sort, to guarantee n log n time and constant stack footprint. */
	for (int i = 0; i < norder; i++) {
		int j = i;
		/* Start with the pollorder to permute cases on the same channel. */
		struct hchan *c = scases[pollorder[i]].c;
		while (j > 0 && sortkey(scases[lockorder[(j - 1) / 2]].c) < sortkey(c)) {
			int k = (j - 1) / 2;
			lockorder[j] = lockorder[k];
			j = k;
		}
		lockorder[j] = pollorder[i];
	}
	for (int i = norder - 1; i >= 0; i--) {
		uint16_t o = lockorder[i];
		struct hchan *c = scases[o].c;
		lockorder[i] = lockorder[0];
		int j = 0;
		for (;;) {
			int k = j * 2 + 1;
			if (k >= i)
				break;
			if (k + 1 < i && sortkey(scases[lockorder[k]].c) < sortkey(scases[lockorder[k + 1]].c))
				k++;
			if (sortkey(c) < sortkey(scases[lockorder[k]].c)) {
				lockorder[j] = lockorder[k];
				j = k;
				continue;
			}
			break;
		}
		lockorder[j] = o;
	}

	struct selctx ctx = {scases, lockorder, norder};
	/* lock all the channels involved in the select */
	sellock(scases, lockorder, norder);

	struct g *gp;
	struct sudog *sg;
	struct hchan *c;
	int casi = -1;
	struct scase *cas = NULL;
	bool caseSuccess = false;
	bool recvOK = false;

	/* pass 1 - look for something already waiting */
	for (int pi = 0; pi < norder; pi++) {
		casi = pollorder[pi];
		cas = &scases[casi];
		c = cas->c;
		if (cas->op == 2) {
			sg = waitq_dequeue(&c->sendq);
			if (sg)
				goto recv;
			if (c->qcount > 0)
				goto bufrecv;
			if (c->closed)
				goto rclose;
		} else {
			if (c->closed)
				goto sclose;
			sg = waitq_dequeue(&c->recvq);
			if (sg)
				goto send;
			if (c->qcount < c->dataqsiz)
				goto bufsend;
		}
	}

	if (!block) {
		selunlock(scases, lockorder, norder);
		casi = -1;
		goto retc;
	}

	/* pass 2 - enqueue on all chans */
	gp = getg();
	if (gp->waiting)
		throw("gp.waiting != nil");
	struct sudog **nextp = &gp->waiting;
	for (int li = 0; li < norder; li++) {
		casi = lockorder[li];
		cas = &scases[casi];
		c = cas->c;
		sg = acquireSudog();
		sg->g = gp;
		sg->isSelect = true;
		sg->elem = cas->elem;
		sg->c = c;
		atomic_fetch_add_explicit(&c->nref, 1, memory_order_relaxed);
		sg->casi = (int16_t)casi;
		/* Construct waiting list in lock order. */
		*nextp = sg;
		nextp = &sg->waitlink;
		if (cas->op == 1)
			waitq_enqueue(&c->sendq, sg);
		else
			waitq_enqueue(&c->recvq, sg);
	}

	/* wait for someone to wake us up */
	gp->param = NULL;
	gopark(selparkcommit, NULL, waitReasonSelect);

	sellock(scases, lockorder, norder);

	atomic_store(&gp->selectDone, 0);
	sg = gp->param;
	gp->param = NULL;

	/* pass 3 - dequeue from unsuccessful chans otherwise they stack up on
	 * quiet channels; record the successful case, if any. We singly-linked
	 * up the SudoGs in lock order. */
	casi = -1;
	cas = NULL;
	caseSuccess = false;
	struct sudog *sglist = gp->waiting;
	/* Clear all elem before unlinking from gp.waiting. */
	for (struct sudog *sg1 = gp->waiting; sg1; sg1 = sg1->waitlink) {
		sg1->isSelect = false;
		sg1->elem = NULL;
		sg1->c = NULL;
	}
	gp->waiting = NULL;

	for (int li = 0; li < norder; li++) {
		struct scase *k = &scases[lockorder[li]];
		if (sg == sglist) {
			/* sg has already been dequeued by the G that woke us up. */
			casi = lockorder[li];
			cas = k;
			caseSuccess = sglist->success;
		} else {
			c = k->c;
			if (k->op == 1)
				waitq_dequeueSudoG(&c->sendq, sglist);
			else
				waitq_dequeueSudoG(&c->recvq, sglist);
		}
		struct sudog *sgnext = sglist->waitlink;
		sglist->waitlink = NULL;
		releaseSudog(sglist);
		sglist = sgnext;
	}
	if (!cas)
		throw("selectgo: bad wakeup");
	c = cas->c;
	if (cas->op == 1) {
		if (!caseSuccess)
			goto sclose_woken;
	} else {
		recvOK = caseSuccess;
	}
	selunlock(scases, lockorder, norder);
	selrelease(scases, lockorder, norder);
	goto retc;

bufrecv:
	/* can receive from buffer */
	recvOK = true;
	{
		char *qp = chanbuf(c, c->recvx);
		if (c->elemsize) {
			if (cas->elem)
				memcpy(cas->elem, qp, c->elemsize);
			memset(qp, 0, c->elemsize);
		}
	}
	if (++c->recvx == c->dataqsiz)
		c->recvx = 0;
	__atomic_store_n(&c->qcount, c->qcount - 1, __ATOMIC_RELAXED);
	selunlock(scases, lockorder, norder);
	goto retc;

bufsend:
	/* can send to buffer */
	if (c->elemsize)
		memcpy(chanbuf(c, c->sendx), cas->elem, c->elemsize);
	if (++c->sendx == c->dataqsiz)
		c->sendx = 0;
	__atomic_store_n(&c->qcount, c->qcount + 1, __ATOMIC_RELAXED);
	selunlock(scases, lockorder, norder);
	goto retc;

recv:
	/* can receive from sleeping sender (sg) */
	chan_recv_locked(c, sg, cas->elem, selunlock_cb, &ctx);
	recvOK = true;
	goto retc;

rclose:
	/* read at end of closed channel */
	selunlock(scases, lockorder, norder);
	recvOK = false;
	if (cas->elem && c->elemsize)
		memset(cas->elem, 0, c->elemsize);
	goto retc;

send:
	/* can send to a sleeping receiver (sg) */
	chan_send_locked(c, sg, cas->elem, selunlock_cb, &ctx);
	goto retc;

retc:
	if (casi >= 0 && scases[casi].op == 2 && scases[casi].recvOK)
		*scases[casi].recvOK = recvOK;
	if (order0 != order_small)
		free(order0);
	return casi;

sclose_woken:
	selunlock(scases, lockorder, norder);
	selrelease(scases, lockorder, norder);
	goto sclose_unlocked;
sclose:
	/* send on closed channel */
	selunlock(scases, lockorder, norder);
sclose_unlocked:
	if (order0 != order_small)
		free(order0);
	gopanic("send on closed channel");
}
