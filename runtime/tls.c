/*
 * Thread identity for pthread-goroutines (design: "Thread identity"; facts
 * in ../shared/notes/thread-identity-spike.md).
 *
 * glibc finds "the current thread" through the thread pointer (FS base on
 * x86-64, TPIDR_EL0 on aarch64): errno, __thread variables, pthread_self,
 * keys, cancellation state, malloc's tcache, stdio lock owners. A goroutine
 * that stands in for a pthread therefore gets a complete identity of its
 * own -- a static TLS block and a struct pthread (the TCB) -- built at the
 * top of its stack exactly where NPTL's allocate_stack puts them, and the
 * context switch installs its thread pointer (gobuf.tls).
 *
 * struct pthread is private to glibc. Its layout is checked at start-up
 * against the descriptors glibc exports for debuggers (_thread_db_*) and
 * against the running thread; any difference disables interposition with
 * one warning (the program then runs on plain pthreads).
 *
 * Invariants:
 *  - The TCB is built by the creator, on its own identity, and only the
 *    fields NPTL's allocate_stack and start_thread set are filled in; the
 *    rest is zero, as in a fresh NPTL thread.
 *  - Code that runs on the identity (tls_start, tls_exit) runs on the
 *    goroutine itself, whose thread pointer is the identity's.
 *  - A recycled identity keeps libc's own TLS block (malloc's tcache and
 *    arena, which glibc only releases through a private exit path) and its
 *    made-up tid, and gets everything else afresh; errno, the ctype tables
 *    and the locale are reset at start. A destroyed identity leaves its
 *    libc block and tid to the next one built (struct libc_ident), so tids
 *    and tcaches are bounded by the most threads alive at once.
 *  - The runtime's own TLS slot (goshim_g) in each identity is preset to
 *    the goroutine, so getg() is right whichever identity is installed.
 *  - On x86-64 glibc's static TLS surplus is cut to SURPLUS_KEPT bytes
 *    before the first identity is built (shrink_static_surplus), for
 *    every thread made afterwards, native ones too: glibc itself then
 *    refuses a module that needs more.
 */
#include <dlfcn.h>
#include <errno.h>
#include <gnu/libc-version.h>
#include <link.h>
#include <locale.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/single_threaded.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "runtime/runtime.h"

/* struct pthread offsets for glibc 2.36 (verified in tls_init). On aarch64
 * the 512-byte x86-64 TCB header (tcbhead_t with its SSE save area) is a
 * 192-byte padding union, so every offset after it is 512 lower. */
#if defined(__x86_64__)
#define PD_DELTA 0
#define PTHREAD_SIZE 2368
#else
#define PD_DELTA 512
#define PTHREAD_SIZE 1856
#endif
#define OFF_LIST (704 - PD_DELTA)
#define OFF_TID (720 - PD_DELTA)
#define OFF_ROBUST_PREV (728 - PD_DELTA)
#define OFF_ROBUST_HEAD (736 - PD_DELTA)
#define OFF_CLEANUP_JMP_BUF (768 - PD_DELTA)
#define OFF_CANCELHANDLING (776 - PD_DELTA)
/* cancelhandling's bits (nptl/descr.h) */
#define CANCELSTATE_BITMASK 1 /* cancellation disabled */
#define CANCELTYPE_BITMASK 2  /* asynchronous (also inside glibc's cancellation points) */
#define CANCELING_BITMASK 4
#define CANCELED_BITMASK 8
#define EXITING_BITMASK 16
#define TERMINATED_BITMASK 32
#define OFF_FLAGS (780 - PD_DELTA)
#define OFF_SCHEDPARAM (1584 - PD_DELTA)
#define ATTR_FLAG_SCHED_SET 0x20
#define ATTR_FLAG_POLICY_SET 0x40
#define OFF_SPECIFIC_1STBLOCK (784 - PD_DELTA)
#define OFF_SPECIFIC (1296 - PD_DELTA)
#define OFF_SPECIFIC_USED (1552 - PD_DELTA)
#define OFF_USER_STACK (1554 - PD_DELTA)
#define OFF_SCHEDPOLICY (1588 - PD_DELTA)
#define OFF_START_ROUTINE (1592 - PD_DELTA)
#define OFF_ARG (1600 - PD_DELTA)
#define OFF_STACKBLOCK (1680 - PD_DELTA)
#define OFF_STACKBLOCK_SIZE (1688 - PD_DELTA)
#define OFF_GUARDSIZE (1696 - PD_DELTA)
#define OFF_REPORTED_GUARDSIZE (1704 - PD_DELTA)
#define OFF_RES (1720 - PD_DELTA)
#define OFF_STRSIGNAL_BUF (2304 - PD_DELTA)
#define OFF_STRERROR_L_BUF (2312 - PD_DELTA)
#define OFF_RSEQ (2336 - PD_DELTA)
#define RSEQ_CPU_ID_REGISTRATION_FAILED (-2)
#if defined(__x86_64__)
#define RSEQ_SIG 0x53053053 /* glibc's bits/rseq.h */
#else
#define RSEQ_SIG 0xd428bc00 /* BRK #0x45E0, little-endian */
#endif

/* glibc's key table entry (nptl: struct pthread_key_struct) and a thread's
 * slot (struct pthread_key_data). */
struct key_struct { uintptr_t seq; void (*destr)(void *); };
struct key_data { uintptr_t seq; void *data; };
#define KEYS_MAX 1024
#define KEY_2NDLEVEL_SIZE 32
#define KEY_1STLEVEL_SIZE (KEYS_MAX / KEY_2NDLEVEL_SIZE)
#define DESTRUCTOR_ITERATIONS 4

bool tls_enabled;
static size_t static_size, static_align; /* the static TLS blocks, without the TCB */
static intptr_t goshim_g_off;        /* &goshim_g - thread pointer */
static intptr_t resp_off;            /* &__resp - thread pointer */
static intptr_t libc_tls_off;        /* libc's TLS block - thread pointer */
static size_t libc_tls_size;
#if defined(__x86_64__)
static uintptr_t stack_guard, pointer_guard; /* tcbhead_t's, copied */
static uint32_t feature_1;
#endif
static _Atomic int32_t next_tid = 0x20000000;
static int sched_policy, sched_priority; /* the process's, inherited */

/* libc TLS blocks of destroyed identities (with their made-up tids), kept
 * for the next identity built: malloc's tcache lives there, and glibc frees
 * it only on its private thread-exit path. */
struct libc_ident {
	struct libc_ident *next;
	int tid;
	char block[];
};
static mutex_t identlock;
static struct libc_ident *idents;

static void *(*dl_allocate_tls)(void *);
static void (*dl_deallocate_tls)(void *, bool);
static void (*dl_get_tls_static_info)(size_t *, size_t *);
static void (*call_tls_dtors)(void);
static void (*ctype_init)(void);
static struct key_struct *pthread_keys;

static inline char *pd_of(uintptr_t tp) { return (char *)tp - (PD_DELTA ? PTHREAD_SIZE : 0); }
#define PD_FIELD(tp, off, type) (*(type *)(pd_of(tp) + (off)))

static void *private_sym(const char *name)
{
	return dlvsym(RTLD_DEFAULT, name, "GLIBC_PRIVATE");
}

/* One of glibc's debugger descriptors: {bits, count, offset}. */
static bool db_offset_is(const char *field, uint32_t want)
{
	const uint32_t *d = private_sym(field);
	return d && d[2] == want;
}

struct libc_tls_search { uintptr_t data; size_t size; };

static int find_libc_tls(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct libc_tls_search *s = arg;
	const char *slash = strrchr(info->dlpi_name, '/');
	const char *base = slash ? slash + 1 : info->dlpi_name;
	if (strcmp(base, "libc.so.6") != 0)
		return 0;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		if (info->dlpi_phdr[i].p_type == PT_TLS) {
			s->data = (uintptr_t)info->dlpi_tls_data;
			s->size = info->dlpi_phdr[i].p_memsz;
		}
	}
	return 1;
}

static bool disable(const char *why)
{
	printerr("goshim: pthreads stay OS threads: %s (glibc %s is not the verified 2.36 layout)\n",
	         why, gnu_get_libc_version());
	tls_enabled = false;
	return false;
}

#if defined(__x86_64__)
/* Bytes of glibc's static TLS surplus kept for modules dlopen'ed later
 * with initial-exec TLS (glibc's default keeps 1,664; its tunables can
 * take it down to 288). */
#define SURPLUS_KEPT 512

/* The bytes of static TLS the modules loaded so far use: the farthest
 * below the thread pointer a fresh identity's DTV points. */
static size_t static_tls_used(size_t size)
{
	uintptr_t tp = (uintptr_t)dl_allocate_tls(NULL);
	if (!tp)
		return 0;
	/* tcbhead_t.dtv points at dtv[0] (the generation); dtv[-1] holds
	 * the length; each entry is {val, to_free}: in words, the length is
	 * at [-2] and entry i's val at [2 * i]. */
	const uintptr_t *dtv = *(const uintptr_t **)(tp + 8);
	size_t used = 0;
	for (size_t i = 1; i <= dtv[-2]; i++) {
		uintptr_t val = dtv[2 * i];
		if (val < tp && tp - val <= size - PTHREAD_SIZE && tp - val > used)
			used = tp - val;
	}
	dl_deallocate_tls((void *)tp, true);
	return used;
}

struct relro_search { uintptr_t page; size_t pg; bool inside; };

/* Is the page inside the pages its object protects as RELRO? */
static int page_in_relro(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	struct relro_search *r = arg;
	uintptr_t mask = ~(uintptr_t)(r->pg - 1);
	bool mine = false, inside = false;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
		if (ph->p_type == PT_LOAD && r->page >= (lo & mask) && r->page < hi)
			mine = true;
		if (ph->p_type == PT_GNU_RELRO)
			inside = r->page >= (lo & mask) && r->page + r->pg <= (hi & mask);
	}
	if (mine)
		r->inside = inside;
	return mine;
}

/* glibc reserves 1,664 bytes below the TLS blocks of every thread for
 * modules dlopen'ed later with initial-exec TLS. Nothing touches them
 * until such a module comes, but they lie between the blocks in use and
 * the stack, so a parked thread's few frames fall on a second page. With
 * SURPLUS_KEPT bytes instead, the TCB, the blocks and the frames of a
 * parked pthread share one page, and every thread reserves 1 KiB less.
 * glibc's static TLS size is read-only after start-up
 * (_rtld_global_ro, found as the word pair _dl_get_tls_static_info
 * returns, and checked through it afterwards). A module that needs more
 * than is left fails to dlopen with glibc's own "cannot allocate memory
 * in static TLS block". A program that sets glibc's tunables for the
 * surplus (GLIBC_TUNABLES=glibc.rtld.optional_static_tls=... or
 * glibc.rtld.nns=...) keeps glibc's size. */
static void shrink_static_surplus(void)
{
	const char *tunables = getenv("GLIBC_TUNABLES");
	if (tunables && (strstr(tunables, "glibc.rtld.nns") ||
	                 strstr(tunables, "glibc.rtld.optional_static_tls")))
		return;
	/* The scan and the write are not under glibc's loader lock: another
	 * thread of the program (a constructor's) could load a module in
	 * between, beyond the new size. */
	if (!threads_all_runtime())
		return;
	size_t size, align;
	dl_get_tls_static_info(&size, &align);
	size_t used = static_tls_used(size);
	size_t want = PTHREAD_SIZE + ((used + SURPLUS_KEPT + align - 1) & ~(align - 1));
	if (used == 0 || want >= size)
		return;
	size_t *ro = private_sym("_rtld_global_ro");
	Dl_info info;
	const ElfW(Sym) *sym = NULL;
	if (!ro || !dladdr1(ro, &info, (void **)&sym, RTLD_DL_SYMENT) || !sym)
		return;
	size_t *field = NULL;
	for (size_t i = 0; i + 1 < sym->st_size / sizeof *ro; i++) {
		if (ro[i] == size && ro[i + 1] == align) {
			if (field)
				return; /* ambiguous: leave glibc alone */
			field = &ro[i];
		}
	}
	if (!field)
		return;
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	void *page = (void *)((uintptr_t)field & ~(uintptr_t)(pg - 1));
	/* Only a page glibc made read-only after relocation (_dl_protect_relro),
	 * which is what it goes back to. */
	struct relro_search r = { (uintptr_t)page, pg, false };
	dl_iterate_phdr(page_in_relro, &r);
	if (!r.inside || mprotect(page, pg, PROT_READ | PROT_WRITE) != 0)
		return;
	*field = want;
	size_t now, now_align;
	dl_get_tls_static_info(&now, &now_align);
	if (now != want)
		*field = size;
	mprotect(page, pg, PROT_READ);
}
#endif

/* Resolves glibc's private entry points and checks the layout this file
 * assumes against the running glibc and the running thread. */
bool tls_init(void)
{
#if defined(GOSHIM_ASAN) || defined(GOSHIM_TSAN)
	/* The sanitizers keep their own per-thread state keyed by the real
	 * thread; identities they never saw created would confuse them. */
	return tls_enabled = false;
#endif
	if (strcmp(gnu_get_libc_version(), "2.36") != 0)
		return disable("unknown glibc");
	dl_allocate_tls = private_sym("_dl_allocate_tls");
	dl_deallocate_tls = private_sym("_dl_deallocate_tls");
	dl_get_tls_static_info = private_sym("_dl_get_tls_static_info");
	call_tls_dtors = private_sym("__call_tls_dtors");
	ctype_init = private_sym("__ctype_init");
	pthread_keys = private_sym("__pthread_keys");
	void **resp = private_sym("__resp");
	const uint32_t *sizeof_pthread = private_sym("_thread_db_sizeof_pthread");
	const int *rseq_offset = dlsym(RTLD_DEFAULT, "__rseq_offset");
	if (!dl_allocate_tls || !dl_deallocate_tls || !dl_get_tls_static_info || !call_tls_dtors ||
	    !ctype_init || !pthread_keys || !resp || !sizeof_pthread || !rseq_offset)
		return disable("a private glibc symbol is missing");
	if (*sizeof_pthread != PTHREAD_SIZE || !db_offset_is("_thread_db_pthread_tid", OFF_TID) ||
	    !db_offset_is("_thread_db_pthread_list", OFF_LIST) ||
	    !db_offset_is("_thread_db_pthread_specific", OFF_SPECIFIC) ||
	    !db_offset_is("_thread_db_pthread_cancelhandling", OFF_CANCELHANDLING) ||
	    !db_offset_is("_thread_db_pthread_schedpolicy", OFF_SCHEDPOLICY) ||
	    !db_offset_is("_thread_db_pthread_start_routine", OFF_START_ROUTINE) ||
	    !db_offset_is("_thread_db_pthread_report_events", 1553 - PD_DELTA))
		return disable("struct pthread differs");

	uintptr_t tp = goshim_arch_tls_base();
	char *pd = pd_of(tp);
	if ((uintptr_t)pd != (uintptr_t)pthread_self() ||
	    *(int *)(pd + OFF_TID) != (int)syscall(SYS_gettid) ||
	    *(void **)(pd + OFF_SPECIFIC) != pd + OFF_SPECIFIC_1STBLOCK ||
	    (char *)tp + *rseq_offset != pd + OFF_RSEQ)
		return disable("the running thread does not match struct pthread");
	/* tls_cancel_enabled reads the state bit pthread_setcancelstate
	 * sets (CANCELSTATE_BITMASK, bit 0 of cancelhandling). */
	int oldstate, ignored;
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &oldstate);
	bool disabled_bit = PD_FIELD(tp, OFF_CANCELHANDLING, int) & CANCELSTATE_BITMASK;
	pthread_setcancelstate(oldstate, &ignored);
	if (!disabled_bit || tls_cancel_enabled(tp) != (oldstate == PTHREAD_CANCEL_ENABLE))
		return disable("the cancellation state bit differs");
#if defined(__x86_64__)
	if (*(uintptr_t *)(tp + 0x10) != tp)
		return disable("tcbhead_t.self differs");
	stack_guard = *(uintptr_t *)(tp + 0x28);
	pointer_guard = *(uintptr_t *)(tp + 0x30);
	feature_1 = *(uint32_t *)(tp + 0x48);
#endif
	struct libc_tls_search s = {0, 0};
	dl_iterate_phdr(find_libc_tls, &s);
	if (!s.data || !s.size)
		return disable("libc's TLS block not found");
	/* Every check has passed: identities will be built. */
#if defined(__x86_64__)
	shrink_static_surplus();
#endif
	dl_get_tls_static_info(&static_size, &static_align);
	if (static_align < 16)
		static_align = 16;
#if defined(__x86_64__)
	/* glibc's static size counts the TCB (TLS_TCB_SIZE, struct pthread)
	 * above the thread pointer; the blocks are below it. */
	if (static_size <= PTHREAD_SIZE)
		return disable("the static TLS size does not hold struct pthread");
	static_size -= PTHREAD_SIZE;
#endif
	libc_tls_off = (intptr_t)(s.data - tp);
	libc_tls_size = s.size;
	resp_off = (intptr_t)((uintptr_t)resp - tp);
	goshim_g_off = (intptr_t)((uintptr_t)&goshim_g - tp);
	/* NPTL's new threads inherit their creator's scheduling; goroutines
	 * get the process's, recorded in the TCB (glibc would otherwise ask
	 * the kernel about a made-up tid). */
	struct sched_param sp = {0};
	sched_policy = sched_getscheduler(0);
	if (sched_policy < 0 || sched_getparam(0, &sp) != 0)
		sched_policy = SCHED_OTHER;
	sched_priority = sp.sched_priority;
	/* Other threads exist from now on, whatever glibc thinks. */
	__libc_single_threaded = 0;
	tls_enabled = true;
	return true;
}

/* Bytes a stack gives up at its top for an identity. */
size_t tls_reserve(void)
{
	return static_size + PTHREAD_SIZE + 2 * static_align;
}

/* nptl allocate_stack's placement below hi: returns the thread pointer
 * and *lo, the lowest byte the identity uses. */
static uintptr_t place(uintptr_t hi, uintptr_t *lo)
{
	uintptr_t mask = ~(uintptr_t)(static_align - 1);
#if defined(__x86_64__)
	uintptr_t tp = (hi - PTHREAD_SIZE) & mask;
	*lo = (tp - static_size) & mask;
#else
	uintptr_t tp = (hi - static_size) & mask;
	*lo = tp - PTHREAD_SIZE;
#endif
	return tp;
}

/* The fields NPTL's allocate_stack and create_thread set. */
static void fill(uintptr_t tp, struct g *gp, const struct tls_stackinfo *si, int tid)
{
	char *pd = pd_of(tp);
#if defined(__x86_64__)
	*(uintptr_t *)(tp + 0x00) = tp;          /* header.tcb */
	*(uintptr_t *)(tp + 0x10) = tp;          /* header.self */
	*(int *)(tp + 0x18) = 1;                 /* header.multiple_threads */
	*(uintptr_t *)(tp + 0x28) = stack_guard;
	*(uintptr_t *)(tp + 0x30) = pointer_guard;
	*(uint32_t *)(tp + 0x48) = feature_1;
#else
	*(int *)pd = 1;                          /* header.multiple_threads */
#endif
	void **list = (void **)(pd + OFF_LIST);
	list[0] = list[1] = list;
	*(int *)(pd + OFF_TID) = tid ? tid : atomic_fetch_add(&next_tid, 1);
	*(int *)(pd + OFF_FLAGS) = ATTR_FLAG_SCHED_SET | ATTR_FLAG_POLICY_SET;
	*(int *)(pd + OFF_SCHEDPOLICY) = sched_policy;
	*(int *)(pd + OFF_SCHEDPARAM) = sched_priority;
	/* An empty robust list: {head = &head, futex_offset, pending = NULL}. */
	void **robust = (void **)(pd + OFF_ROBUST_HEAD);
	robust[0] = robust;
	robust[1] = (void *)(intptr_t)-(intptr_t)offsetof(struct __pthread_mutex_s, __list);
	robust[2] = NULL;
	*(void **)(pd + OFF_ROBUST_PREV) = robust;
	*(void **)(pd + OFF_SPECIFIC) = pd + OFF_SPECIFIC_1STBLOCK;
	*(bool *)(pd + OFF_USER_STACK) = si->user_stack;
	*(void **)(pd + OFF_STACKBLOCK) = (void *)si->stackblock;
	*(size_t *)(pd + OFF_STACKBLOCK_SIZE) = si->stackblock_size;
	*(size_t *)(pd + OFF_GUARDSIZE) = si->guardsize;
	*(size_t *)(pd + OFF_REPORTED_GUARDSIZE) = si->guardsize;
	*(int *)(pd + OFF_RSEQ + 4) = RSEQ_CPU_ID_REGISTRATION_FAILED;
	*(void **)(tp + resp_off) = pd + OFF_RES;
	*(struct g **)(tp + goshim_g_off) = gp;
}

/* What glibc allocated for an identity: its DTV (and dynamic TLS blocks)
 * and the strsignal/strerror_l buffers. */
static void release_heap_parts(uintptr_t tp)
{
	char *pd = pd_of(tp);
	free(*(void **)(pd + OFF_STRSIGNAL_BUF));
	free(*(void **)(pd + OFF_STRERROR_L_BUF));
	dl_deallocate_tls((void *)tp, false);
}

/* Builds an identity in fresh (zeroed) memory below hi. Returns the
 * thread pointer, or 0 without memory; *lo is the lowest byte it uses. */
uintptr_t tls_build(uintptr_t hi, uintptr_t *lo, struct g *gp, const struct tls_stackinfo *si)
{
	uintptr_t tp = place(hi, lo);
	if (!dl_allocate_tls((void *)tp))
		return 0;
	lock(&identlock);
	struct libc_ident *id = idents;
	if (id)
		idents = id->next;
	unlock(&identlock);
	int tid = 0;
	if (id) {
		memcpy((void *)(tp + libc_tls_off), id->block, libc_tls_size);
		tid = id->tid;
		free(id);
	}
	fill(tp, gp, si, tid);
	return tp;
}

/* Gives an identity that ran a thread to the next one (same memory, same
 * placement): libc's block is kept, everything else starts afresh. Returns
 * false without memory (the identity is then freed). */
bool tls_recycle(uintptr_t hi, uintptr_t tp, struct g *gp, const struct tls_stackinfo *si)
{
	uintptr_t lo;
	if (place(hi, &lo) != tp)
		throw("tls_recycle: identity moved");
	char libc_block[libc_tls_size];
	memcpy(libc_block, (void *)(tp + libc_tls_off), libc_tls_size);
	char *pd = pd_of(tp);
	int tid = *(int *)(pd + OFF_TID);
	release_heap_parts(tp);
	memset((void *)lo, 0, hi - lo);
	if (!dl_allocate_tls((void *)tp))
		return false;
	memcpy((void *)(tp + libc_tls_off), libc_block, libc_tls_size);
	fill(tp, gp, si, tid);
	return true;
}

/* Frees an identity's heap parts (the memory itself is the caller's);
 * its libc block and tid go to the next identity built. */
void tls_free(uintptr_t tp)
{
	char *pd = pd_of(tp);
	struct libc_ident *id = malloc(sizeof *id + libc_tls_size);
	if (id) {
		id->tid = *(int *)(pd + OFF_TID);
		memcpy(id->block, (void *)(tp + libc_tls_off), libc_tls_size);
		lock(&identlock);
		id->next = idents;
		idents = id;
		unlock(&identlock);
	}
	release_heap_parts(tp);
}

/* pthread_t is the struct pthread: the thread pointer on x86-64, below it
 * on aarch64. */
uintptr_t tls_pthread_of(uintptr_t tp)
{
	return (uintptr_t)pd_of(tp);
}

uintptr_t tls_tp_of(uintptr_t pthread)
{
	return pthread + (PD_DELTA ? PTHREAD_SIZE : 0);
}

/* The thread's owner id for the interposed locks: the kernel tid of an
 * OS thread, the made-up tid of a pthread-goroutine. */
int tls_self_tid(void)
{
	return PD_FIELD(goshim_arch_tls_base(), OFF_TID, int);
}

/* Our record behind a pthread_t, if it is one of ours (the TCB's
 * start_routine is the marker, arg the record). */
void *tls_thread_record(uintptr_t tp, void *marker)
{
	if (PD_FIELD(tp, OFF_START_ROUTINE, void *) != marker)
		return NULL;
	return PD_FIELD(tp, OFF_ARG, void *);
}

void tls_set_record(uintptr_t tp, void *marker, void *rec)
{
	PD_FIELD(tp, OFF_START_ROUTINE, void *) = marker;
	PD_FIELD(tp, OFF_ARG, void *) = rec;
}

/* nptl start_thread's per-thread set-up, on the new identity. */
void tls_start(void)
{
	ctype_init();
	uselocale(LC_GLOBAL_LOCALE);
	errno = 0;
}

static int cancelhandling(uintptr_t tp)
{
	return __atomic_load_n(&PD_FIELD(tp, OFF_CANCELHANDLING, int), __ATOMIC_ACQUIRE);
}

/* Has pthread_cancel been called on the identity (and it is not exiting)? */
bool tls_canceled(uintptr_t tp)
{
	int ch = cancelhandling(tp);
	return (ch & CANCELED_BITMASK) && !(ch & (EXITING_BITMASK | TERMINATED_BITMASK));
}

/* pthread_setcancelstate's state, read without its two atomic updates. */
bool tls_cancel_enabled(uintptr_t tp)
{
	return !(cancelhandling(tp) & CANCELSTATE_BITMASK);
}

void *tls_cleanup_jmp_buf_slot(void)
{
	return pd_of(goshim_arch_tls_base()) + OFF_CLEANUP_JMP_BUF;
}

/* nptl: __nptl_deallocate_tsd. Calls the destructor of every key with a
 * value, up to PTHREAD_DESTRUCTOR_ITERATIONS rounds. */
static void deallocate_tsd(char *pd)
{
	bool *used = (bool *)(pd + OFF_SPECIFIC_USED);
	if (!*used)
		return;
	struct key_data **specific = (struct key_data **)(pd + OFF_SPECIFIC);
	for (int round = 0; round < DESTRUCTOR_ITERATIONS && *used; round++) {
		*used = false;
		for (size_t i = 0; i < KEY_1STLEVEL_SIZE; i++) {
			struct key_data *level2 = specific[i];
			if (!level2)
				continue;
			for (size_t j = 0; j < KEY_2NDLEVEL_SIZE; j++) {
				void *data = level2[j].data;
				if (!data)
					continue;
				level2[j].data = NULL;
				size_t key = i * KEY_2NDLEVEL_SIZE + j;
				struct key_struct *k = &pthread_keys[key];
				if (level2[j].seq == k->seq && k->destr)
					k->destr(data);
			}
		}
	}
	/* Free the second-level blocks (the first is inside the TCB). */
	for (size_t i = 1; i < KEY_1STLEVEL_SIZE; i++) {
		free(specific[i]);
		specific[i] = NULL;
	}
	*used = false;
	memset(pd + OFF_SPECIFIC_1STBLOCK, 0, KEY_2NDLEVEL_SIZE * sizeof(struct key_data));
}

/* nptl start_thread's exit path, on the identity itself: thread_local
 * destructors, then key destructors. */
void tls_exit(void)
{
	call_tls_dtors();
	tls_exit_keys();
}

/* nptl __libc_start_call_main's, when main ends by pthread_exit or
 * cancellation: key destructors only (its thread_local objects are never
 * destroyed, unless main is the thread that calls exit). */
void tls_exit_keys(void)
{
	deallocate_tsd(pd_of(goshim_arch_tls_base()));
}

/* ---- glibc's SIGSETXID handler ---------------------------------------
 * setuid() and friends in a multi-threaded process signal every thread in
 * glibc's lists; each handler clears a flag in THREAD_SELF, and the caller
 * repeats until no flag is left. The signal is aimed at the kernel thread
 * (an M), but the handler may run while a pthread-goroutine's identity is
 * installed, so it would clear the goroutine's flag and the caller would
 * loop for ever. The wrapper runs glibc's handler on the M's own identity.
 * glibc's sigaction refuses its internal signals: the kernel's is used. */
#define SIGSETXID_NO (__SIGRTMIN + 1)

struct ksigaction {
	void *handler;
	unsigned long flags;
	void *restorer;
	uint64_t mask;
};

static void (*glibc_setxid_handler)(int, siginfo_t *, void *);

static void set_thread_pointer(uintptr_t tp)
{
#if defined(__x86_64__)
	if (goshim_have_fsgsbase)
		__asm__ volatile("wrfsbase %0" ::"r"(tp) : "memory");
	else
		syscall(SYS_arch_prctl, 0x1002 /* ARCH_SET_FS */, tp);
#else
	__asm__ volatile("msr tpidr_el0, %0" ::"r"(tp) : "memory");
#endif
}

static void setxid_on_own_identity(int sig, siginfo_t *si, void *uc)
{
	int saved = errno;
	uintptr_t cur = goshim_arch_tls_base();
	struct g *gp = goshim_g;
	uintptr_t own = gp && gp->m && gp->m->tls ? gp->m->tls : cur;
	if (own != cur)
		set_thread_pointer(own);
	glibc_setxid_handler(sig, si, uc);
	if (own != cur)
		set_thread_pointer(cur);
	errno = saved;
}

/* ---- glibc's SIGCANCEL handler ---------------------------------------
 * For an asynchronous cancel, glibc's pthread_cancel marks the target
 * CANCELING and signals its tid, which for a pthread-goroutine is made up;
 * goroutine_cancel_async signals the M it runs on instead and leaves
 * SIGCANCEL pending for it. glibc's handler acts on whatever identity is
 * installed: it marks it CANCELED and, if its type is asynchronous,
 * unwinds it. The wrapper lets it act only on the goroutine the signal was
 * sent for (g.cancelsig, and its identity CANCELING), so a signal that
 * reaches an M after its goroutine moved on cancels nobody else, and only
 * outside the runtime: inside, the goroutine keeps the signal pending and
 * takes it on its way out (interpose_leave, sys_end). One in a system call
 * made for the program (sys_begin) inside glibc's cancellable wrapper,
 * whose type is asynchronous for the call, is unwound now by glibc's
 * handler, as NPTL's would be; the wrapper's scope leaves the system call
 * as the unwind passes it (SYS_CALL_SCOPE). One in any other system call
 * is marked CANCELED now, as glibc's handler would mark it (glibc's
 * wrapper waits on a futex after the call while a cancel is CANCELING but
 * not CANCELED), and unwound once it has left the call. */
#define CANCEL_OVER (EXITING_BITMASK | TERMINATED_BITMASK)

static void (*glibc_sigcancel_handler)(int, siginfo_t *, void *);

bool tls_async_cancel_pending(uintptr_t tp)
{
	return (cancelhandling(tp) & (CANCELING_BITMASK | CANCELED_BITMASK | CANCEL_OVER)) ==
	       CANCELING_BITMASK;
}

/* glibc's handler's mark, without its unwind. */
static void mark_canceled(uintptr_t tp)
{
	int *ch = &PD_FIELD(tp, OFF_CANCELHANDLING, int);
	int old = __atomic_load_n(ch, __ATOMIC_RELAXED);
	while (!(old & CANCEL_OVER) &&
	       !__atomic_compare_exchange_n(ch, &old, old | CANCELING_BITMASK | CANCELED_BITMASK,
	                                    true, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
		;
}

/* Before an unwind, which leaves the handler without restoring the mask:
 * the thread, which may go on to run other goroutines, must not keep
 * SIGCANCEL blocked (a nested one finds nothing to do). */
static void unblock_sigcancel(void)
{
	uint64_t cancel = SIGBIT(SIGCANCEL_NO);
	syscall(SYS_rt_sigprocmask, SIG_UNBLOCK, &cancel, NULL, sizeof cancel);
}

static void sigcancel_on_goroutine(int sig, siginfo_t *si, void *uc)
{
	uintptr_t tp = goshim_arch_tls_base();
	int ch = cancelhandling(tp);
	struct g *gp = goshim_g;
	bool on_g0 = gp && gp->m && gp == gp->m->g0;
	if (!gp || !gp->m || on_g0 || (!gp->thread && gp != atomic_load(&main_g))) {
		/* Neither a pthread-goroutine nor main: a thread on an identity
		 * of its own. glibc's handler marks whatever identity is
		 * installed, so it runs only where glibc's pthread_cancel left
		 * its mark (a stray that lands on g0 cancels nobody). */
		if (!on_g0 && tls_async_cancel_pending(tp)) {
			unblock_sigcancel();
			glibc_sigcancel_handler(sig, si, uc);
		}
		return;
	}
	if (!atomic_load(&gp->cancelsig) || !(ch & CANCELING_BITMASK) || (ch & CANCEL_OVER))
		return; /* not sent for the goroutine that runs here now */
	if (gp->inruntime) {
		/* In a system call for the program that glibc made
		 * asynchronously cancellable (a cancellation point), it acts
		 * now, as NPTL's: the unwind does sys_end's work as it leaves
		 * the wrapper (SYS_CALL_SCOPE). Elsewhere in the runtime it
		 * stays pending and is taken on the way out. */
		bool in_point = gp->insyscall_foreign && (ch & CANCELTYPE_BITMASK) &&
		                !(ch & CANCELSTATE_BITMASK);
		if (!in_point) {
			if (readgstatus(gp) == _Gsyscall)
				mark_canceled(tp);
			return;
		}
	}
	if (!atomic_exchange(&gp->cancelsig, false))
		return;
	atomic_fetch_and(&gp->sigpending, ~SIGBIT(SIGCANCEL_NO));
	unblock_sigcancel();
	if (ch & CANCELED_BITMASK)
		pthread_testcancel(); /* marked in a system call: its cancellation point */
	else
		glibc_sigcancel_handler(sig, si, uc);
}

/* After glibc installed its handler (its first pthread_cancel). Returns
 * once the wrapper is in place: a caller that lost the race to install
 * it must not signal anyone before, or glibc's own handler would act on
 * whichever identity it finds. */
void tls_wrap_sigcancel(void)
{
	enum { UNWRAPPED, WRAPPING, WRAPPED };
	static _Atomic int state;
	int exp = UNWRAPPED;
	if (atomic_load(&state) == WRAPPED)
		return;
	if (!atomic_compare_exchange_strong(&state, &exp, WRAPPING)) {
		while (atomic_load(&state) == WRAPPING)
			syscall(SYS_sched_yield); /* never the interposed one */
		return;
	}
	struct ksigaction old, act;
	if (syscall(SYS_rt_sigaction, SIGCANCEL_NO, NULL, &old, 8) == 0 && (old.flags & SA_SIGINFO) &&
	    old.handler != (void *)SIG_DFL && old.handler != (void *)SIG_IGN) {
		glibc_sigcancel_handler = (void (*)(int, siginfo_t *, void *))old.handler;
		act = old;
		act.handler = (void *)sigcancel_on_goroutine;
		syscall(SYS_rt_sigaction, SIGCANCEL_NO, &act, NULL, 8);
		atomic_store(&state, WRAPPED);
	} else {
		atomic_store(&state, UNWRAPPED); /* glibc has not installed it yet */
	}
}

/* nptl start_thread, once the start routine returned: the thread is
 * exiting, so a cancel that comes now does nothing (glibc's pthread_cancel
 * and its handler both look at EXITING). */
void tls_mark_exiting(uintptr_t tp)
{
	__atomic_fetch_or(&PD_FIELD(tp, OFF_CANCELHANDLING, int), EXITING_BITMASK, __ATOMIC_ACQ_REL);
}

/* tls_start for an identity that no goroutine starts on (M0's own, made
 * when main becomes migratable): installed just for the call. */
void tls_start_on(uintptr_t tp)
{
	uintptr_t cur = goshim_arch_tls_base();
	set_thread_pointer(tp);
	tls_start();
	set_thread_pointer(cur);
}

/* After glibc installed its handler (its first pthread_create). */
void tls_wrap_setxid(void)
{
	struct ksigaction old, act;
	if (syscall(SYS_rt_sigaction, SIGSETXID_NO, NULL, &old, 8) != 0 || !(old.flags & SA_SIGINFO) ||
	    old.handler == (void *)SIG_DFL || old.handler == (void *)SIG_IGN)
		return;
	glibc_setxid_handler = (void (*)(int, siginfo_t *, void *))old.handler;
	act = old;
	act.handler = (void *)setxid_on_own_identity;
	syscall(SYS_rt_sigaction, SIGSETXID_NO, &act, NULL, 8);
}

/* mpd, an M's own TCB, takes gpd's place on glibc's thread list (in the
 * stack cache, on no list, or self-linked before), with the thread's tid;
 * gpd, a goroutine's identity, is on no list, as an identity is built. */
static void take_list_place(char *mpd, char *gpd)
{
	struct list { struct list *next, *prev; };
	struct list *ml = (struct list *)(mpd + OFF_LIST), *gl = (struct list *)(gpd + OFF_LIST);
	/* Out of the stack cache. An adopted M's own TCB (a user stack) was
	 * on dl_stack_user, which glibc emptied: its links are stale then. */
	if (ml->next->prev == ml && ml->prev->next == ml) {
		ml->next->prev = ml->prev;
		ml->prev->next = ml->next;
	}
	ml->next = gl->next;       /* in the identity's place */
	ml->prev = gl->prev;
	gl->next->prev = ml;
	gl->prev->next = ml;
	gl->next = gl->prev = gl;  /* as an identity is built */
	*(int *)(mpd + OFF_TID) = (int)syscall(SYS_gettid);
}

/* main_unlock: M0's new TCB stands for the first thread on the list, in
 * place of main's, which main takes with it. Only the main thread's own
 * entry of dl_stack_user moves: threads that start meanwhile link into
 * dl_stack_used, under glibc's lock, and touch neither. */
void tls_take_main_place(uintptr_t tp)
{
	char *main_pd = pd_of(goshim_arch_tls_base());
	take_list_place(pd_of(tp), main_pd);
	/* The kernel's rseq area of this thread was main's: it would go on
	 * telling main this thread's CPU wherever main runs. As for every
	 * identity, sched_getcpu then asks the kernel. (The length glibc
	 * 2.35-2.39 registers; another one fails and the area stays.) */
	if (syscall(SYS_rseq, main_pd + OFF_RSEQ, 32, 1 /* RSEQ_FLAG_UNREGISTER */, RSEQ_SIG) == 0)
		*(int *)(main_pd + OFF_RSEQ + 4) = RSEQ_CPU_ID_REGISTRATION_FAILED;
}

/* afterforkinchild. glibc's fork child (reclaim_stacks) takes the TCB it
 * runs on for the only live thread: the forking goroutine's identity goes
 * on dl_stack_used, and the M's real TCB is taken for a dead thread's: its
 * tid is cleared and its stack, the M's live g0 stack, is put in the stack
 * cache for the next pthread_create. Swap them back: the M's TCB takes the
 * identity's place on the list (setxid signals it, as any M), with its
 * tid, and the identity is on no list again. Also, an identity may have
 * been in the making on another thread. */
void tls_afterforkinchild(struct m *mp)
{
	lock_reinit_afterfork(&identlock);
	char *mpd = pd_of(mp->tls), *gpd = pd_of(goshim_arch_tls_base());
	if (mpd == gpd)
		return; /* main, or no identities: glibc saw the M's own TCB */
	take_list_place(mpd, gpd);
	/* glibc's fork gave the kernel the identity's robust list, which may
	 * be recycled: the thread's own goes back. */
	syscall(SYS_set_robust_list, mpd + OFF_ROBUST_HEAD, (size_t)24);
}
