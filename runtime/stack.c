/*
 * Goroutine stacks (design: "Stacks"). Go grows stacks by copying; C
 * cannot move a stack, so a goroutine gets a large reservation that the
 * kernel commits page by page on first touch.
 *
 * - Stacks of the default size (GOSHIM_STACK) are carved from arenas of
 *   ARENA_STACKS stacks each: one mmap per arena, not per stack.
 * - Each stack's lowest page is a guard. MADV_GUARD_INSTALL (Linux 6.13+)
 *   installs it without splitting the mapping, so vm.max_map_count (65530)
 *   does not cap how many goroutines exist; older kernels fall back to
 *   mprotect(PROT_NONE), which costs two mappings a stack.
 * - Free stacks go to a per-P cache first (no lock), then to a global free
 *   list. A stack whose goroutine was seen deeper than STACK_HOT_BYTES gives
 *   its deep pages back (MADV_DONTNEED) when freed, and every stack entering
 *   the global list does, so cached stacks do not pin memory.
 * - Other sizes (pthread attrs later) are mapped one by one and unmapped
 *   when freed.
 * - An arena's stacks are never unmapped, so stack_guard_hit may walk the
 *   arena list from a signal handler without a lock.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "runtime/runtime.h"

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

#define ARENA_STACKS 64
#define STACK_HOT_BYTES (16u * 1024)
#define STACKCACHE_MAX 32

struct arena {
	uintptr_t base;
	size_t stacksize;
	struct arena *_Atomic next;
};

static size_t default_stacksize;
static bool guard_madvise = true;
static struct arena *_Atomic arenas;
static mutex_t stacklock;
static struct arena *cur_arena;
static int cur_arena_used;
static void release_deep_pages(struct stack *s)
{
	uintptr_t keep = s->hi - STACK_HOT_BYTES;
	if (keep > s->lo)
		madvise((void *)s->lo, keep - s->lo, MADV_DONTNEED);
	s->touched_lo = s->hi;
}

/* The global free list links nodes kept at the top of each free stack. */
struct freestack {
	struct stack s;
	struct freestack *next;
};
static struct freestack *freestacks;
static int nfreestacks;

static void freelist_push(struct stack *s)
{
	struct freestack *n = (struct freestack *)(s->hi - sizeof(struct freestack));
	release_deep_pages(s);
	n->s = *s;
	lock(&stacklock);
	n->next = freestacks;
	freestacks = n;
	nfreestacks++;
	unlock(&stacklock);
}

size_t stack_default_size(void) { return default_stacksize; }

void stack_init(void)
{
	long pg = sysconf(_SC_PAGESIZE);
	size_t sz = env_stacksize ? env_stacksize : 256 * 1024;
	sz = (sz + (size_t)pg - 1) & ~((size_t)pg - 1);
	default_stacksize = sz;
}

/* Is the page at base really inaccessible? An emulator (qemu-user) may
 * accept MADV_GUARD_INSTALL and install nothing: read the page through
 * process_vm_readv, which reports EFAULT instead of faulting. */
static bool guard_effective(uintptr_t base)
{
	char byte;
	struct iovec local = { &byte, 1 }, remote = { (void *)base, 1 };
	ssize_t n = syscall(SYS_process_vm_readv, getpid(), &local, 1UL, &remote, 1UL, 0UL);
	return n < 0 && errno == EFAULT;
}

static bool install_guard(uintptr_t base)
{
	static bool guard_checked;
	if (guard_madvise) {
		if (madvise((void *)base, STACK_GUARD, MADV_GUARD_INSTALL) == 0) {
			if (guard_checked)
				return true;
			guard_checked = true;
			if (guard_effective(base))
				return true;
		} else if (errno != EINVAL) {
			return false;
		}
		guard_madvise = false; /* no guard regions here: mprotect instead */
	}
	return mprotect((void *)base, STACK_GUARD, PROT_NONE) == 0;
}

static void stack_from(struct stack *s, uintptr_t base, size_t size)
{
	s->base = base;
	s->size = size;
	s->lo = base + STACK_GUARD;
	s->hi = base + size;
	s->touched_lo = s->hi;
}

/* Carves one default-size stack; stacklock held. */
static bool carve(struct stack *s)
{
	size_t sz = default_stacksize;
	if (!cur_arena || cur_arena_used == ARENA_STACKS) {
		void *mem = mmap(NULL, sz * ARENA_STACKS, PROT_READ | PROT_WRITE,
		                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
		if (mem == MAP_FAILED)
			return false;
		/* The header lives apart: every page of the arena is a stack. */
		struct arena *a = mmap(NULL, sizeof *a, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (a == MAP_FAILED) {
			munmap(mem, sz * ARENA_STACKS);
			return false;
		}
		a->base = (uintptr_t)mem;
		a->stacksize = sz;
		a->next = atomic_load(&arenas);
		atomic_store(&arenas, a);
		cur_arena = a;
		cur_arena_used = 0;
	}
	uintptr_t base = cur_arena->base + (uintptr_t)cur_arena_used * sz;
	if (!install_guard(base))
		return false;
	cur_arena_used++;
	stack_from(s, base, sz);
	return true;
}

/* Go's stackalloc (runtime/stack.go), for fixed-size reservations. */
bool stackalloc(struct stack *s, size_t size)
{
	if (size == 0 || size == default_stacksize) {
		struct g *gp = getg();
		struct p *pp = gp && gp->m ? gp->m->p : NULL;
		if (pp && pp->nstackcache > 0) {
			*s = pp->stackcache[--pp->nstackcache];
			return true;
		}
		lock(&stacklock);
		bool ok = true;
		if (freestacks) {
			struct freestack *n = freestacks;
			freestacks = n->next;
			nfreestacks--;
			*s = n->s;
		} else {
			ok = carve(s);
		}
		unlock(&stacklock);
		return ok;
	}
	long pg = sysconf(_SC_PAGESIZE);
	size = (size + (size_t)pg - 1) & ~((size_t)pg - 1);
	size += STACK_GUARD;
	void *mem = mmap(NULL, size, PROT_READ | PROT_WRITE,
	                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
	if (mem == MAP_FAILED)
		return false;
	if (!install_guard((uintptr_t)mem)) {
		munmap(mem, size);
		return false;
	}
	stack_from(s, (uintptr_t)mem, size);
	return true;
}

/* Go's stackfree. */
void stackfree(struct stack *s)
{
	if (s->size != default_stacksize) {
		munmap((void *)s->base, s->size);
		return;
	}
	if (s->touched_lo < s->hi - STACK_HOT_BYTES)
		release_deep_pages(s);
	struct g *gp = getg();
	struct p *pp = gp && gp->m ? gp->m->p : NULL;
	if (pp && pp->nstackcache < STACKCACHE_MAX) {
		pp->stackcache[pp->nstackcache++] = *s;
		return;
	}
	freelist_push(s);
}

/* procresize: a P that goes away hands its cached stacks to the global list. */
void stackcache_flush(struct p *pp)
{
	while (pp->nstackcache > 0)
		freelist_push(&pp->stackcache[--pp->nstackcache]);
}

/* Signal-handler side: is addr inside the guard page of a goroutine's
 * stack, and whose? Walks the append-only arena list and allgs without
 * locks. */
bool stack_guard_hit(uintptr_t addr, int64_t *goid)
{
	*goid = 0;
	bool hit = false;
	for (struct arena *a = atomic_load(&arenas); a; a = atomic_load(&a->next)) {
		if (addr >= a->base && addr < a->base + a->stacksize * ARENA_STACKS) {
			uintptr_t off = (addr - a->base) % a->stacksize;
			hit = off < STACK_GUARD;
			break;
		}
	}
	for (struct g *gp = __atomic_load_n(&allgs, __ATOMIC_ACQUIRE); gp; gp = gp->alllink) {
		if (gp->stack.base && addr >= gp->stack.base && addr < gp->stack.base + STACK_GUARD) {
			if (readgstatus(gp) != _Gdead)
				*goid = gp->goid;
			return true;
		}
	}
	return hit;
}

/* afterforkinchild: a thread being adopted (needm) allocates its g0 stack
 * without a P, so the world being stopped does not keep it out. */
void stack_afterforkinchild(void)
{
	lock_reinit_afterfork(&stacklock);
}
