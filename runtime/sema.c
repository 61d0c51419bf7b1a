/*
 * Semaphores, ported from Go's runtime/sema.go (semacquire1, semrelease1
 * and the semaRoot treap).
 *
 * A semaphore is any uint32 in memory; semacquire waits until *addr > 0 and
 * decrements it, semrelease increments it and wakes a waiter. Waiters are
 * kept in one of 251 semaRoots chosen by address; each root is a treap of
 * distinct addresses (sudogs, priority s.ticket), and each treap node
 * heads the list of waiters for its address (waitlink/waittail), so the
 * cost of a wake-up does not grow with the number of waiters on other
 * addresses that hash to the same root.
 *
 * Invariants:
 *  - root.nwait counts waiters (queued or about to be) on the root; a
 *    release that sees 0 skips the lock. A waiter increments nwait before
 *    its last cansemacquire check, so a release either sees the waiter or
 *    the waiter sees the count.
 *  - handoff (semrelease1 with handoff): the releaser acquires the count
 *    for the waiter (s.ticket = 1) and yields to it, as starving
 *    sync.Mutex needs.
 *
 * Used by WaitGroup now and by the interposed pthread mutex, condvar and
 * semaphores.
 */
#include "runtime/runtime.h"

#define semTabSize 251

struct semaRoot {
	mutex_t lock;
	struct sudog *treap;     /* root of balanced tree of unique waiters */
	_Atomic uint32_t nwait;  /* Number of waiters. Read w/o the lock. */
	char pad[64 - sizeof(mutex_t) - sizeof(void *) - sizeof(uint32_t)];
};

static struct semaRoot semtable[semTabSize];

static struct semaRoot *rootFor(_Atomic uint32_t *addr)
{
	return &semtable[((uintptr_t)addr >> 3) % semTabSize];
}

static bool cansemacquire(_Atomic uint32_t *addr)
{
	for (;;) {
		uint32_t v = atomic_load(addr);
		if (v == 0)
			return false;
		if (atomic_compare_exchange_weak(addr, &v, v - 1))
			return true;
	}
}

static void rotateLeft(struct semaRoot *root, struct sudog *x)
{
	/* p -> (x a (y b c)) */
	struct sudog *p = x->parent, *y = x->next, *b = y->prev;
	y->prev = x;
	x->parent = y;
	x->next = b;
	if (b)
		b->parent = x;
	y->parent = p;
	if (!p)
		root->treap = y;
	else if (p->prev == x)
		p->prev = y;
	else {
		if (p->next != x)
			throw("semaRoot rotateLeft");
		p->next = y;
	}
}

static void rotateRight(struct semaRoot *root, struct sudog *y)
{
	/* p -> (y (x a b) c) */
	struct sudog *p = y->parent, *x = y->prev, *b = x->next;
	x->next = y;
	y->parent = x;
	y->prev = b;
	if (b)
		b->parent = y;
	x->parent = p;
	if (!p)
		root->treap = x;
	else if (p->prev == y)
		p->prev = x;
	else {
		if (p->next != y)
			throw("semaRoot rotateRight");
		p->next = x;
	}
}

/* queue adds s to the blocked goroutines in semaRoot. */
static void semaroot_queue(struct semaRoot *root, _Atomic uint32_t *addr, struct sudog *s, bool lifo)
{
	s->g = getg();
	s->elem = (void *)addr;
	s->next = NULL;
	s->prev = NULL;

	struct sudog *last = NULL;
	struct sudog **pt = &root->treap;
	for (struct sudog *t = *pt; t; t = *pt) {
		if (t->elem == (void *)addr) {
			/* Already have addr in list. */
			if (lifo) {
				/* Substitute s in t's place in treap. */
				*pt = s;
				s->ticket = t->ticket;
				s->acquiretime = t->acquiretime;
				s->parent = t->parent;
				s->prev = t->prev;
				s->next = t->next;
				if (s->prev)
					s->prev->parent = s;
				if (s->next)
					s->next->parent = s;
				/* Add t first in s's wait list. */
				s->waitlink = t;
				s->waittail = t->waittail;
				if (!s->waittail)
					s->waittail = t;
				t->parent = NULL;
				t->prev = NULL;
				t->next = NULL;
				t->waittail = NULL;
			} else {
				/* Add s to end of t's wait list. */
				if (!t->waittail)
					t->waitlink = s;
				else
					t->waittail->waitlink = s;
				t->waittail = s;
				s->waitlink = NULL;
			}
			return;
		}
		last = t;
		if ((uintptr_t)addr < (uintptr_t)t->elem)
			pt = &t->prev;
		else
			pt = &t->next;
	}
	/* Add s as new leaf in tree of unique addrs. The balanced tree is a
	 * treap using ticket as the random heap priority. That is, it is a
	 * binary tree ordered according to the elem addresses, but then
	 * among the space of possible binary trees respecting those
	 * addresses, it is kept balanced on average by maintaining a heap
	 * ordering on the ticket: s.ticket <= both s.prev.ticket and
	 * s.next.ticket. */
	s->ticket = cheaprand() | 1;
	s->parent = last;
	*pt = s;
	/* Rotate up into tree according to ticket (priority). */
	while (s->parent && s->parent->ticket > s->ticket) {
		if (s->parent->prev == s) {
			rotateRight(root, s->parent);
		} else {
			if (s->parent->next != s)
				throw("semaRoot queue");
			rotateLeft(root, s->parent);
		}
	}
}

/* dequeue searches for and finds the first goroutine in semaRoot blocked
 * on addr. If the sudog was being profiled, dequeue returns the time at
 * which it was woken up as now. Otherwise now is 0. */
static struct sudog *semaroot_dequeue(struct semaRoot *root, _Atomic uint32_t *addr)
{
	struct sudog **ps = &root->treap;
	struct sudog *s = *ps;
	for (; s; s = *ps) {
		if (s->elem == (void *)addr)
			goto Found;
		if ((uintptr_t)addr < (uintptr_t)s->elem)
			ps = &s->prev;
		else
			ps = &s->next;
	}
	return NULL;

Found:;
	struct sudog *t = s->waitlink;
	if (t) {
		/* Substitute t, also waiting on addr, for s in root tree of
		 * unique addrs. */
		*ps = t;
		t->ticket = s->ticket;
		t->parent = s->parent;
		t->prev = s->prev;
		if (t->prev)
			t->prev->parent = t;
		t->next = s->next;
		if (t->next)
			t->next->parent = t;
		if (t->waitlink)
			t->waittail = s->waittail;
		else
			t->waittail = NULL;
		s->waitlink = NULL;
		s->waittail = NULL;
	} else {
		/* Rotate s down to be leaf of tree for removal, respecting
		 * priorities. */
		while (s->next || s->prev) {
			if (!s->next || (s->prev && s->prev->ticket < s->next->ticket))
				rotateRight(root, s);
			else
				rotateLeft(root, s);
		}
		/* Remove s, now a leaf. */
		if (s->parent) {
			if (s->parent->prev == s)
				s->parent->prev = NULL;
			else
				s->parent->next = NULL;
		} else {
			root->treap = NULL;
		}
	}
	s->parent = NULL;
	s->elem = NULL;
	s->next = NULL;
	s->prev = NULL;
	s->ticket = 0;
	return s;
}

static bool semaparkcommit(struct g *gp, void *l)
{
	(void)gp;
	unlock((mutex_t *)l);
	return true;
}

/* Called from a goroutine inside the runtime (holding its P). */
void semacquire1(_Atomic uint32_t *addr, bool lifo, enum waitreason reason)
{
	struct g *gp = getg();
	if (unlikely(gp != gp->m->curg))
		throw("semacquire not on the G stack");
	/* Easy case. */
	if (cansemacquire(addr))
		return;
	/* Harder case:
	 *	increment waiter count
	 *	try cansemacquire one more time, return if succeeded
	 *	enqueue itself as a waiter
	 *	sleep
	 *	(waiter descriptor is dequeued by signaler) */
	struct sudog *s = acquireSudog();
	struct semaRoot *root = rootFor(addr);
	s->acquiretime = 0;
	s->ticket = 0;
	for (;;) {
		lock(&root->lock);
		/* Add ourselves to nwait to disable "easy case" in semrelease. */
		atomic_fetch_add(&root->nwait, 1);
		/* Check cansemacquire to avoid missed wakeup. */
		if (cansemacquire(addr)) {
			atomic_fetch_sub(&root->nwait, 1);
			unlock(&root->lock);
			break;
		}
		/* Any semrelease after the cansemacquire knows we're waiting
		 * (we set nwait above), so go to sleep. */
		semaroot_queue(root, addr, s, lifo);
		gopark(semaparkcommit, &root->lock, reason);
		if (s->ticket != 0 || cansemacquire(addr))
			break;
	}
	releaseSudog(s);
}

void semrelease1(_Atomic uint32_t *addr, bool handoff)
{
	struct semaRoot *root = rootFor(addr);
	atomic_fetch_add(addr, 1);
	/* Easy case: no waiters? This check must happen after the xadd, to
	 * avoid a missed wakeup (see loop in semacquire). */
	if (atomic_load(&root->nwait) == 0)
		return;
	/* Harder case: search for a waiter and wake it. */
	lock(&root->lock);
	if (atomic_load(&root->nwait) == 0) {
		/* The count is already consumed by another goroutine, so no
		 * need to wake up another goroutine. */
		unlock(&root->lock);
		return;
	}
	struct sudog *s;
	do {
		s = semaroot_dequeue(root, addr);
		if (s)
			atomic_fetch_sub(&root->nwait, 1);
		/* A fork child's copy of another thread's waiter: the count
		 * stays for a waiter of the child. */
	} while (s && unlikely(s->g->forkgone));
	unlock(&root->lock);
	if (s) { /* May be slow or even yield, so unlock first */
		if (s->ticket != 0)
			throw("corrupted semaphore ticket");
		bool handed = handoff && cansemacquire(addr);
		if (handed)
			s->ticket = 1;
		/* s belongs to the waiter again once it runs: read nothing of
		 * it after goready. */
		goready(s->g);
		if (handed && getg()->m->locks == 0 && getg() == getg()->m->curg) {
			/* Direct G handoff: readyWithTime has added the waiter
			 * G as runnext in the current P; we now call the
			 * scheduler so that we start running the waiter G
			 * immediately. */
			goyield();
		}
	}
}
