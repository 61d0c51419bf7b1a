/*
 * Fatal errors and goroutine dumps, ported from Go's runtime/panic.go
 * (throw, fatal, fatalthrow, startpanic_m, dopanic_m), runtime/traceback.go
 * (goroutineheader, traceback, tracebackothers, printcreatedby) and
 * runtime/signal_unix.go (sighandler's SIGQUIT dump, the sigaltstack set-up
 * of minitSignalStack, sigfwd's chaining to the program's own handler).
 *
 * Design:
 *  - One thread dies. The first caller of the fatal path wins a CAS on
 *    dying_tid and prints; every later caller (another fatal, a SIGQUIT, a
 *    fault) blocks forever on a futex, as Go's second thrower does, so the
 *    winner's output is not interleaved and the exit status is its own.
 *  - The fatal path may be entered holding sched.lock or allglock, or from a
 *    signal handler on the alternate signal stack: it takes no lock, calls no
 *    malloc and no stdio FILE, and writes with raw write(2) (raw_write_all).
 *    allgs is walked as Go's forEachGRace does: the list is append-only and
 *    published with a release store, so an acquire load of the head gives a
 *    list whose links never change.
 *  - Backtraces follow the frame-pointer chain (everything is built with
 *    -fno-omit-frame-pointer): a frame record is [saved fp, return pc] on
 *    both x86-64 and aarch64. Other goroutines change their stacks under us
 *    (the world is not stopped, unlike Go's freezetheworld), so every walk
 *    is bounded (alignment, strictly increasing within a stack, inside the
 *    stack's known bounds, a frame budget) and every read of a frame goes
 *    through safe_read, which reports an unmapped address instead of
 *    faulting.
 *  - Symbols come from dladdr. Runtime internals are hidden and test
 *    programs are not linked with -rdynamic, so dladdr alone would name few
 *    frames; when it has no name the object's own .symtab is read (mapped
 *    once, read-only, with raw syscalls) as Go reads its pclntab.
 */
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <ucontext.h>
#include <unistd.h>

#include "runtime/runtime.h"

/* Go's runtime/runtime2.go waitReasonStrings, in enum waitreason order. */
const char *const waitReasonStrings[waitReasonCount] = {
	[waitReasonZero] = "",
	[waitReasonChanReceive] = "chan receive",
	[waitReasonChanSend] = "chan send",
	[waitReasonSelect] = "select",
	[waitReasonSelectNoCases] = "select (no cases)",
	[waitReasonSleep] = "sleep",
	[waitReasonSemacquire] = "semacquire",
	[waitReasonSyncMutexLock] = "sync.Mutex.Lock",
	[waitReasonSyncCondWait] = "sync.Cond.Wait",
	[waitReasonIOWait] = "IO wait",
	[waitReasonCoroutine] = "coroutine",
	[waitReasonChanReceiveNilChan] = "chan receive (nil chan)",
	[waitReasonChanSendNilChan] = "chan send (nil chan)",
	[waitReasonSyncWaitGroupWait] = "sync.WaitGroup.Wait",
	[waitReasonForever] = "forever",
	[waitReasonLockedThread] = "locked thread",
	[waitReasonThreadJoin] = "pthread join",
	[waitReasonSyncRWMutexLock] = "sync.RWMutex.Lock",
};

void (*fatal_handler)(const char *msg);

/* The first frame of every goroutine and M (arch/<cpu>/switch.S). */
HIDDEN void goshim_gostart(void);

/* The trampoline is a handful of instructions (clear fp, move the
 * argument, call the entry); a return address this close after its start
 * is the call inside it. */
#define GOSTART_SPAN 32

#define MAX_FRAMES 100                  /* Go prints at most 100 frames: */
#define INNER_FRAMES 50                 /* the innermost 50 and the */
#define OUTER_FRAMES 50                 /* outermost 50 (traceback.go) */
#define COUNT_MAX (1 << 20)             /* frames counted before giving up */
#define UNBOUNDED_SPAN (8u << 20)       /* a stack of unknown bounds: 8 MiB */
#define UNBOUNDED_FRAMES 64
#define SAVED_CONTEXT_BYTES 512         /* covers any arch's switch frame */
#define SIGSTACK_SIZE (64u * 1024)
#define LINE_MAX_ 1024                  /* one formatted line */
#define MSG_MAX 1024                    /* a fatal message */

/* x86-64 guarantees 16-byte frames only at ABI call boundaries, and
 * hand-written assembly may push a frame at 8; aarch64's SP, and so every
 * frame record, is 16-byte aligned. */
#if defined(__aarch64__)
#define FP_ALIGN 16
#else
#define FP_ALIGN 8
#endif

/* Goroutine fields are read while their owners change them (Go's
 * forEachGRace): one untorn load each, and no sanitizer reports for reads
 * the dump makes on purpose. */
#define READ_ONCE(x) (*(const volatile __typeof__(x) *)&(x))
#define NO_SANITIZE __attribute__((no_sanitize("address", "thread")))

/* ---- output --------------------------------------------------------- */

static void vfdprintf_raw(int fd, const char *fmt, va_list ap)
{
	char buf[LINE_MAX_];
	vsnprintf(buf, sizeof buf, fmt, ap);
	raw_write_all(fd, buf);
}

static void fdprintf_raw(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fdprintf_raw(int fd, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfdprintf_raw(fd, fmt, ap);
	va_end(ap);
}

void printerr(const char *fmt, ...)
{
	char buf[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	raw_write_all(2, buf);
}

/* ---- reading memory that may be gone -------------------------------- */

/* process_vm_readv on ourselves copies or fails with EFAULT, never faults;
 * it is refused only by seccomp filters or emulators (EPERM, ENOSYS), in
 * which case mincore tells at least whether the pages are mapped. */
static _Atomic int vmread_state; /* 0 untried, 1 works, -1 unavailable */

NO_SANITIZE static bool safe_read(uintptr_t addr, void *out, size_t n)
{
	if (addr == 0 || addr + n < addr)
		return false;
	if (atomic_load_explicit(&vmread_state, memory_order_relaxed) >= 0) {
		struct iovec local = { out, n };
		struct iovec remote = { (void *)addr, n };
		long r = syscall(SYS_process_vm_readv, (long)syscall(SYS_getpid), &local, 1UL,
		                 &remote, 1UL, 0UL);
		if (r == (long)n) {
			atomic_store_explicit(&vmread_state, 1, memory_order_relaxed);
			return true;
		}
		if (r >= 0 || (errno != ENOSYS && errno != EPERM))
			return false;
		atomic_store_explicit(&vmread_state, -1, memory_order_relaxed);
	}
	uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
	uintptr_t first = addr & ~(pg - 1), last = (addr + n - 1) & ~(pg - 1);
	unsigned char vec[2];
	if (last - first > pg || mincore((void *)first, last - first + pg, vec) != 0)
		return false;
	memcpy(out, (const void *)addr, n);
	return true;
}

/* ---- symbols ---------------------------------------------------------- */

/* An object's .symtab, mapped read-only on first use and kept: the dump
 * may symbolize thousands of pcs, and unmapping buys nothing in a process
 * about to exit. */
struct symfile {
	const struct link_map *lm; /* key: the object's link map */
	bool ok;
	const ElfW(Sym) *syms;
	size_t nsyms;
	const char *strs;
	size_t strsz;
};
static struct symfile symfiles[16];
static int nsymfiles;
/* Two threads dumping at once (dumpgoroutines outside the fatal path): the
 * loser symbolizes with dladdr alone rather than wait, so no thread ever
 * blocks on this, the dying one included. */
static atomic_flag symfiles_busy = ATOMIC_FLAG_INIT;

static bool symfile_load(struct symfile *sf, const struct link_map *lm)
{
	/* The main program's link map has an empty name. */
	const char *path = lm->l_name && lm->l_name[0] ? lm->l_name : "/proc/self/exe";
	int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	struct stat st;
	void *map = MAP_FAILED;
	if (syscall(SYS_fstat, fd, &st) == 0 && st.st_size >= (off_t)sizeof(ElfW(Ehdr)))
		map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	syscall(SYS_close, fd);
	if (map == MAP_FAILED)
		return false;
	size_t size = (size_t)st.st_size;
	const unsigned char *base = map;
	const ElfW(Ehdr) *eh = map;
	const ElfW(Shdr) *sh;
	if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_shentsize != sizeof *sh ||
	    eh->e_shoff == 0 || eh->e_shoff > size ||
	    (size - eh->e_shoff) / sizeof *sh < eh->e_shnum)
		goto fail;
	sh = (const ElfW(Shdr) *)(base + eh->e_shoff);
	for (unsigned i = 0; i < eh->e_shnum; i++) {
		if (sh[i].sh_type != SHT_SYMTAB || sh[i].sh_entsize != sizeof(ElfW(Sym)) ||
		    sh[i].sh_link >= eh->e_shnum)
			continue;
		const ElfW(Shdr) *str = &sh[sh[i].sh_link];
		if (sh[i].sh_offset > size || size - sh[i].sh_offset < sh[i].sh_size ||
		    str->sh_offset > size || size - str->sh_offset < str->sh_size || str->sh_size == 0)
			goto fail;
		sf->syms = (const ElfW(Sym) *)(base + sh[i].sh_offset);
		sf->nsyms = sh[i].sh_size / sizeof(ElfW(Sym));
		sf->strs = (const char *)(base + str->sh_offset);
		sf->strsz = str->sh_size;
		return true;
	}
fail: /* stripped, or not an ELF file we can read */
	munmap(map, size);
	return false;
}

/* The function symbol of lm's .symtab containing addr. */
static bool symtab_lookup(const struct link_map *lm, uintptr_t addr,
                          const char **name, uintptr_t *start)
{
	if (atomic_flag_test_and_set_explicit(&symfiles_busy, memory_order_acquire))
		return false;
	struct symfile *sf = NULL;
	for (int i = 0; i < nsymfiles; i++)
		if (symfiles[i].lm == lm)
			sf = &symfiles[i];
	if (!sf && nsymfiles < (int)(sizeof symfiles / sizeof symfiles[0])) {
		sf = &symfiles[nsymfiles++];
		sf->lm = lm;
		sf->ok = symfile_load(sf, lm);
	}
	bool found = false;
	if (sf && sf->ok) {
		uintptr_t best = 0;
		for (size_t i = 0; i < sf->nsyms; i++) {
			const ElfW(Sym) *s = &sf->syms[i];
			if (ELF64_ST_TYPE(s->st_info) != STT_FUNC || s->st_shndx == SHN_UNDEF ||
			    s->st_name >= sf->strsz)
				continue;
			uintptr_t lo = lm->l_addr + s->st_value;
			if (addr < lo || (s->st_size ? addr - lo >= s->st_size : addr != lo))
				continue;
			if (!found || lo > best) {
				best = lo;
				*name = sf->strs + s->st_name;
				*start = lo;
				found = true;
			}
		}
		/* The name must end inside the string table. */
		if (found && !memchr(*name, 0, sf->strsz - (size_t)(*name - sf->strs)))
			found = false;
	}
	atomic_flag_clear_explicit(&symfiles_busy, memory_order_release);
	return found;
}

struct syminfo {
	const char *name;  /* NULL: unknown */
	uintptr_t start;   /* of the function */
	const char *obj;   /* basename of the object; NULL: unknown */
	uintptr_t objoff;  /* pc as an address of the object file (addr2line) */
};

/* lookup is the address to identify: a return address minus one, so that a
 * call that ends its function (a noreturn call) names the caller. */
static void symbolize(uintptr_t lookup, uintptr_t pc, struct syminfo *si)
{
	Dl_info info;
	struct link_map *lm = NULL;
	si->name = NULL;
	si->obj = NULL;
	if (!dladdr1((void *)lookup, &info, (void **)&lm, RTLD_DL_LINKMAP) || !lm)
		return;
	if (info.dli_fname && info.dli_fname[0]) {
		const char *slash = strrchr(info.dli_fname, '/');
		si->obj = slash ? slash + 1 : info.dli_fname;
	}
	si->objoff = pc - lm->l_addr;
	if (info.dli_sname && info.dli_saddr) {
		si->name = info.dli_sname;
		si->start = (uintptr_t)info.dli_saddr;
	} else {
		symtab_lookup(lm, lookup, &si->name, &si->start);
	}
}

/* One frame: "func+0xOFF (object)", or "? 0xPC (object+0xOFF)". */
static void print_frame(int fd, const char *prefix, uintptr_t pc, bool is_ret)
{
	struct syminfo si;
	symbolize(is_ret ? pc - 1 : pc, pc, &si);
	if (si.name)
		fdprintf_raw(fd, "%s%s+0x%lx (%s)\n", prefix, si.name, (unsigned long)(pc - si.start),
		             si.obj ? si.obj : "?");
	else if (si.obj)
		fdprintf_raw(fd, "%s? 0x%lx (%s+0x%lx)\n", prefix, (unsigned long)pc, si.obj,
		             (unsigned long)si.objoff);
	else
		fdprintf_raw(fd, "%s? 0x%lx\n", prefix, (unsigned long)pc);
}

/* ---- frame-pointer walks -------------------------------------------- */

static bool is_gostart(uintptr_t pc)
{
	return pc - (uintptr_t)goshim_gostart < GOSTART_SPAN;
}

/* A walk moves through at most a few stacks (a g0 stack, then the
 * goroutine's, when the runtime switched stacks inside the goroutine).
 * Within a stack frame pointers strictly increase; each stack is entered at
 * most once, so no chain can loop. */
#define MAX_REGIONS 4
struct region { uintptr_t lo, hi; int maxframes; const struct g *owner; };
struct walker {
	int fd;
	struct region r[MAX_REGIONS];
	int nr;
	bool used[MAX_REGIONS];
	int cur;        /* region of the last frame; -1 before the first */
	int nframes;    /* frames seen */
	int rframes;    /* frames seen in the current region */
	uintptr_t prev; /* last frame pointer */
	bool unbounded_ok; /* may the first frame open a region of unknown bounds */
	bool counting;  /* first pass: count the frames, print nothing */
	bool truncated; /* the walk stopped at a frame budget, not at the end */
	int total;      /* frames the counting pass saw */
};

static void walker_init(struct walker *w, int fd)
{
	memset(w, 0, sizeof *w);
	w->fd = fd;
	w->cur = -1;
}

static void walker_add_stack(struct walker *w, const struct g *gp)
{
	if (!gp || w->nr == MAX_REGIONS)
		return;
	uintptr_t lo = READ_ONCE(gp->stack.lo), hi = READ_ONCE(gp->stack.hi);
	if (lo == 0 || hi <= lo)
		return; /* unknown bounds: the thread's own stack */
	w->r[w->nr++] = (struct region){ lo, hi, COUNT_MAX, gp };
}

static bool region_has(const struct region *r, uintptr_t fp)
{
	return fp >= r->lo && fp < r->hi && r->hi - fp >= 2 * sizeof(uintptr_t);
}

/* May the walk read a frame record at fp? */
static bool walker_enter(struct walker *w, uintptr_t fp)
{
	if (fp == 0 || (fp & (FP_ALIGN - 1)) != 0)
		return false;
	if (w->cur >= 0 && fp > w->prev && region_has(&w->r[w->cur], fp))
		return true;
	for (int j = 0; j < w->nr; j++) {
		if (j != w->cur && !w->used[j] && region_has(&w->r[j], fp)) {
			w->cur = j;
			w->used[j] = true;
			w->rframes = 0;
			return true;
		}
	}
	/* Adopted threads and the main goroutine run on stacks whose bounds
	 * the runtime does not know: trust the start, and only so far. */
	if (w->cur < 0 && w->unbounded_ok && w->nr < MAX_REGIONS) {
		w->r[w->nr] = (struct region){ fp, fp + UNBOUNDED_SPAN, UNBOUNDED_FRAMES, NULL };
		if (w->r[w->nr].hi < fp)
			w->r[w->nr].hi = UINTPTR_MAX;
		w->cur = w->nr;
		w->used[w->nr++] = true;
		w->rframes = 0;
		return true;
	}
	return false;
}

/* Counts or prints pc; false when the walk ends here. A deep stack (a
 * runaway recursion) prints as Go's does: the innermost frames, a count of
 * those left out, the outermost frames, so that both where it overflowed
 * and where it began are seen. */
static bool walker_emit(struct walker *w, uintptr_t pc, bool is_ret)
{
	if (pc == 0 || is_gostart(pc))
		return false;
	int rmax = w->cur >= 0 ? w->r[w->cur].maxframes : COUNT_MAX;
	if (w->rframes >= rmax || (w->counting && w->nframes >= COUNT_MAX)) {
		w->truncated = true;
		return false;
	}
	if (!w->counting) {
		if (w->nframes >= w->total)
			return false; /* the stack changed since it was counted */
		if (w->total <= MAX_FRAMES || w->nframes < INNER_FRAMES ||
		    w->nframes >= w->total - OUTER_FRAMES)
			print_frame(w->fd, "", pc, is_ret);
		else if (w->nframes == INNER_FRAMES)
			fdprintf_raw(w->fd, "...%d frames elided...\n",
			             w->total - INNER_FRAMES - OUTER_FRAMES);
	}
	w->nframes++;
	w->rframes++;
	return true;
}

NO_SANITIZE static void walk_pass(struct walker *w, uintptr_t pc, bool pc_is_ret, uintptr_t fp)
{
	if (pc && !walker_emit(w, pc, pc_is_ret))
		return;
	while (walker_enter(w, fp)) {
		uintptr_t rec[2]; /* saved frame pointer, return address */
		if (!safe_read(fp, rec, sizeof rec))
			return;
		if (!walker_emit(w, rec[1], true))
			return;
		w->prev = fp;
		fp = rec[0];
	}
}

/* Walks from an optional first pc (exact when !pc_is_ret) and a frame
 * pointer: once to count, once to print. */
static void walk(struct walker *w, uintptr_t pc, bool pc_is_ret, uintptr_t fp)
{
	struct walker count = *w;
	count.counting = true;
	walk_pass(&count, pc, pc_is_ret, fp);
	w->total = count.nframes;
	walk_pass(w, pc, pc_is_ret, fp);
	if (count.truncated)
		raw_write_all(w->fd, "...additional frames elided...\n");
}

/* A goroutine that is not running: its context is saved on its stack. */
NO_SANITIZE static void walk_saved(int fd, const struct g *gp)
{
	struct gobuf buf = { READ_ONCE(gp->sched.sp), 0 };
	uintptr_t lo = READ_ONCE(gp->stack.lo), hi = READ_ONCE(gp->stack.hi);
	if (buf.sp == 0 || (buf.sp & 7) != 0)
		return;
	if (lo) {
		if (buf.sp < lo || buf.sp >= hi)
			return;
	} else {
		/* On a thread's own stack: make sure the switch frame is there
		 * before the arch code reads it. */
		unsigned char probe[SAVED_CONTEXT_BYTES];
		if (!safe_read(buf.sp, probe, sizeof probe))
			return;
	}
	uintptr_t fp = 0, pc = 0;
	goshim_arch_saved_frame(&buf, &fp, &pc);
	if (pc == (uintptr_t)goshim_gostart) {
		/* Created, never run: Go shows the function it will start in. */
		uintptr_t fn = (uintptr_t)READ_ONCE(gp->startfn);
		if (fn)
			print_frame(fd, "", fn, false);
		return;
	}
	struct walker w;
	walker_init(&w, fd);
	walker_add_stack(&w, gp);
	w.unbounded_ok = lo == 0;
	walk(&w, pc, true, fp);
}

/* ---- goroutine dump (traceback.go) ---------------------------------- */

/* traceback.go: goroutineheader. */
NO_SANITIZE static void print_header(int fd, const struct g *gp)
{
	uint32_t st = atomic_load_explicit(&((struct g *)gp)->atomicstatus, memory_order_acquire);
	const char *status;
	switch (st) {
	case _Gidle: status = "idle"; break;
	case _Grunnable: status = "runnable"; break;
	case _Grunning: status = "running"; break;
	case _Gsyscall: status = "syscall"; break;
	case _Gwaiting: status = "waiting"; break;
	case _Gdead: status = "dead"; break;
	default: status = "???"; break;
	}
	int64_t minutes = 0;
	if (st == _Gwaiting) {
		uint8_t wr = READ_ONCE(gp->waitreason);
		if (wr != waitReasonZero && wr < waitReasonCount)
			status = waitReasonStrings[wr];
		int64_t since = READ_ONCE(gp->waitsince);
		if (since != 0)
			minutes = (nanotime() - since) / 60000000000LL;
	}
	if (minutes >= 1)
		fdprintf_raw(fd, "goroutine %lld [%s, %lld minutes]:\n", (long long)READ_ONCE(gp->goid),
		             status, (long long)minutes);
	else
		fdprintf_raw(fd, "goroutine %lld [%s]:\n", (long long)READ_ONCE(gp->goid), status);
}

/* traceback.go: printcreatedby. Adopted threads were created by nobody
 * the runtime knows. */
NO_SANITIZE static void print_createdby(int fd, const struct g *gp)
{
	if (READ_ONCE(gp->adopted) || READ_ONCE(gp->goid) == 1) {
		raw_write_all(fd, "adopted thread\n");
		return;
	}
	uintptr_t pc = READ_ONCE(gp->gopc);
	struct syminfo si = { 0 };
	if (pc)
		symbolize(pc - 1, pc, &si);
	fdprintf_raw(fd, "created by %s in goroutine %lld\n", si.name ? si.name : "?",
	             (long long)READ_ONCE(gp->parentgoid));
	if (pc)
		print_frame(fd, "\t", pc, true);
}

NO_SANITIZE static void dump_one(int fd, const struct g *gp)
{
	uint32_t st = atomic_load_explicit(&((struct g *)gp)->atomicstatus, memory_order_acquire);
	if (st == _Gdead || READ_ONCE(gp->system))
		return;
	print_header(fd, gp);
	if (st == _Grunning || st == _Gsyscall)
		raw_write_all(fd, "\tgoroutine running on other thread; stack unavailable\n");
	else if (st == _Grunnable || st == _Gwaiting)
		walk_saved(fd, gp);
	print_createdby(fd, gp);
	raw_write_all(fd, "\n");
}

/* traceback.go: tracebackothers, in creation order as Go prints them.
 * allgs is pushed at its head, so it is read backwards: without memory to
 * spare, a window of DUMP_BATCH entries at a time, from the end. The list
 * from one snapshot of the head never changes, whatever is added later. */
#define DUMP_BATCH 256
NO_SANITIZE static void dump_others(int fd, const struct g *skip)
{
	struct g *head = __atomic_load_n(&allgs, __ATOMIC_ACQUIRE);
	size_t n = 0;
	for (struct g *gp = head; gp; gp = READ_ONCE(gp->alllink))
		n++;
	const struct g *batch[DUMP_BATCH];
	for (size_t end = n; end > 0;) {
		size_t start = end > DUMP_BATCH ? end - DUMP_BATCH : 0, i = 0, k = 0;
		struct g *gp = head;
		for (; gp && i < start; i++)
			gp = READ_ONCE(gp->alllink);
		for (; gp && i < end; i++, gp = READ_ONCE(gp->alllink))
			batch[k++] = gp;
		while (k > 0) {
			const struct g *g1 = batch[--k];
			if (g1 != skip)
				dump_one(fd, g1);
		}
		end = start;
	}
}

/*
 * The dump: the goroutine of the calling thread first, walked from (pc,
 * fp) — pc is an exact pc (a signal's) or 0, fp the frame to start from —
 * then every other one (traceback.go: tracebackothers). sysstack: print the
 * g0 frames as "runtime stack:" when called on g0 (Go does so for runtime
 * throws and signals, not for user-level fatal errors).
 */
NO_SANITIZE static void dump_all(int fd, uintptr_t pc, uintptr_t fp, bool sysstack)
{
	struct g *me = getg();
	struct m *mp = me ? READ_ONCE(me->m) : NULL;
	struct g *cur = NULL;
	if (me && mp && me == READ_ONCE(mp->g0)) {
		cur = READ_ONCE(mp->curg);
		bool into_cur = false;
		if (sysstack) {
			struct walker w;
			walker_init(&w, fd);
			walker_add_stack(&w, me);
			walker_add_stack(&w, cur);
			w.unbounded_ok = true;
			raw_write_all(fd, "runtime stack:\n");
			walk(&w, pc, false, fp);
			raw_write_all(fd, "\n");
			for (int j = 0; j < w.nr; j++)
				if (w.used[j] && cur && w.r[j].owner == cur)
					into_cur = true;
		}
		if (cur) {
			/* mcall saved cur's context when it switched to g0; if the
			 * chain above went on into cur's stack, its frames are shown. */
			print_header(fd, cur);
			if (!into_cur)
				walk_saved(fd, cur);
			print_createdby(fd, cur);
			raw_write_all(fd, "\n");
		}
	} else if (me) {
		cur = me;
		struct walker w;
		walker_init(&w, fd);
		walker_add_stack(&w, me);
		if (mp)
			walker_add_stack(&w, READ_ONCE(mp->g0));
		w.unbounded_ok = true;
		print_header(fd, me);
		walk(&w, pc, false, fp);
		print_createdby(fd, me);
		raw_write_all(fd, "\n");
	}

	dump_others(fd, cur);
}

void dumpgoroutines(int fd)
{
	dump_all(fd, 0, (uintptr_t)__builtin_frame_address(0), false);
}

/* ---- the fatal path (panic.go) -------------------------------------- */

static _Atomic pid_t dying_tid; /* the thread printing a fatal error */

static pid_t raw_gettid(void) { return (pid_t)syscall(SYS_gettid); }

static __attribute__((noreturn)) void die_exit(void)
{
	for (;;)
		syscall(SYS_exit_group, 2);
}

/* Parks a thread that lost the race to die: the winner exits the process. */
static __attribute__((noreturn)) void block_forever(void)
{
	for (;;) {
		pid_t v = atomic_load(&dying_tid);
		syscall(SYS_futex, &dying_tid, FUTEX_WAIT_PRIVATE, v, NULL, NULL, 0);
	}
}

/* panic.go: startpanic_m. Returns on the one thread that prints. A thread
 * that fails again while printing (its fatal_handler called fatal, or the
 * dump itself threw) prints the new message and exits at once, as Go's
 * "panic during panic" does. */
static void die_begin(const char *msg)
{
	pid_t me = raw_gettid(), exp = 0;
	if (atomic_compare_exchange_strong(&dying_tid, &exp, me))
		return;
	if (exp == me) {
		fdprintf_raw(2, "fatal error: %s\nfatal error during fatal error\n", msg);
		die_exit();
	}
	block_forever();
}

static __attribute__((noreturn)) void die_kind(const char *kind, const char *prefix,
                                                const char *msg, bool dump, bool sysstack,
                                                uintptr_t pc, uintptr_t fp)
{
	char full[MSG_MAX + 32];
	die_begin(msg);
	snprintf(full, sizeof full, "%s: %s", kind, msg);
	void (*h)(const char *) = __atomic_load_n(&fatal_handler, __ATOMIC_ACQUIRE);
	if (h)
		h(full);
	if (prefix)
		raw_write_all(2, prefix);
	raw_write_all(2, full);
	raw_write_all(2, "\n");
	if (dump) {
		raw_write_all(2, "\n");
		dump_all(2, pc, fp, sysstack);
	}
	die_exit();
}

static __attribute__((noreturn)) void die(const char *prefix, const char *msg, bool dump,
                                           bool sysstack, uintptr_t pc, uintptr_t fp)
{
	die_kind("fatal error", prefix, msg, dump, sysstack, pc, fp);
}

/* panic.go: an unrecovered panic (there is no recover in C): "panic: msg",
 * the goroutine dump, exit 2. */
void gopanic(const char *msg)
{
	die_kind("panic", NULL, msg, true, false, 0, (uintptr_t)__builtin_frame_address(0));
}

void fatal(const char *fmt, ...)
{
	char msg[MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	die(NULL, msg, true, false, 0, (uintptr_t)__builtin_frame_address(0));
}

void fatal_nodump(const char *fmt, ...)
{
	char msg[MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	die(NULL, msg, false, false, 0, 0);
}

/* panic.go: throw, a runtime-internal error: the g0 frames are shown too. */
void throw(const char *msg)
{
	die(NULL, msg, true, true, 0, (uintptr_t)__builtin_frame_address(0));
}

/* ---- signals (signal_unix.go) --------------------------------------- */

static struct sigaction old_segv, old_bus;
/* glibc's own entry: sigaction itself is interposed (interpose/signal.c),
 * and the runtime's handlers are not the program's to route. */
extern int __sigaction(int, const struct sigaction *, struct sigaction *);

static void context_regs(const void *uctx, uintptr_t *pc, uintptr_t *fp)
{
	const ucontext_t *uc = uctx;
#if defined(__x86_64__)
	*pc = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
	*fp = (uintptr_t)uc->uc_mcontext.gregs[REG_RBP];
#elif defined(__aarch64__)
	*pc = (uintptr_t)uc->uc_mcontext.pc;
	*fp = (uintptr_t)uc->uc_mcontext.regs[29];
#else
#error "libgoshim supports x86_64 and aarch64 only"
#endif
}

/* SIGQUIT: Go's crash dump ("SIGQUIT: quit", the pc, every goroutine). */
static void sigquit_handler(int sig, siginfo_t *si, void *uctx)
{
	int saved_errno = errno;
	pid_t me = raw_gettid(), exp = 0;
	if (!atomic_compare_exchange_strong(&dying_tid, &exp, me)) {
		if (exp == me) { /* this thread is printing already: let it finish */
			errno = saved_errno;
			return;
		}
		block_forever();
	}
	uintptr_t pc, fp;
	context_regs(uctx, &pc, &fp);
	struct g *gp = getg();
	struct m *mp = gp ? gp->m : NULL;
	fdprintf_raw(2, "SIGQUIT: quit\nPC=0x%lx m=%lld sigcode=%d\n\n", (unsigned long)pc,
	             mp ? (long long)mp->id : -1LL, si->si_code);
	dump_all(2, pc, fp, true);
	die_exit();
}

/* SIGSEGV, SIGBUS: a goroutine ran into its stack's guard page (Go's
 * "stack overflow"), or someone else's fault, which goes back to the
 * program's own disposition. */
static void fault_handler(int sig, siginfo_t *si, void *uctx)
{
	int saved_errno = errno;
	pid_t me = raw_gettid();
	pid_t owner = atomic_load(&dying_tid);
	if (owner == me) {
		/* Printing the dump faulted (safe_read's mincore fallback
		 * cannot see PROT_NONE pages): nothing more can be shown. */
		raw_write_all(2, "\nruntime: unexpected signal while printing a fatal error\n");
		die_exit();
	}
	if (owner != 0)
		block_forever(); /* the dying thread is about to exit the process */

	int64_t goid = 0;
	uintptr_t addr = (uintptr_t)si->si_addr;
	if (si->si_code > 0 && stack_guard_hit(addr, &goid)) {
		char prefix[128];
		uintptr_t pc, fp;
		context_regs(uctx, &pc, &fp);
		snprintf(prefix, sizeof prefix, "runtime: goroutine %lld stack overflow (guard page at 0x%lx)\n",
		         (long long)goid, (unsigned long)(addr & ~(uintptr_t)(STACK_GUARD - 1)));
		die(prefix, "stack overflow", true, true, pc, fp);
	}

	/* Not ours: put back what the program had (its handler, or SIG_DFL)
	 * and return, so that the faulting instruction runs again and meets
	 * it natively. A signal sent with kill() does not recur by itself. */
	__sigaction(sig, sig == SIGBUS ? &old_bus : &old_segv, NULL);
	if (si->si_code <= 0)
		syscall(SYS_tgkill, (long)syscall(SYS_getpid), (long)me, (long)sig);
	errno = saved_errno;
}

void install_fatal_signals(void)
{
	static atomic_flag done = ATOMIC_FLAG_INIT;
	if (atomic_flag_test_and_set(&done))
		return;
	struct sigaction sa, cur;
	memset(&sa, 0, sizeof sa);
	/* Nothing interrupts the dump; synchronous faults stay deliverable,
	 * since a blocked one kills the process without a word. */
	sigfillset(&sa.sa_mask);
	sigdelset(&sa.sa_mask, SIGSEGV);
	sigdelset(&sa.sa_mask, SIGBUS);
	sigdelset(&sa.sa_mask, SIGFPE);
	sigdelset(&sa.sa_mask, SIGILL);
	sigdelset(&sa.sa_mask, SIGTRAP);

	/* A program that handles (or ignores) SIGQUIT keeps it. */
	if (__sigaction(SIGQUIT, NULL, &cur) == 0 && !(cur.sa_flags & SA_SIGINFO) &&
	    cur.sa_handler == SIG_DFL) {
		sa.sa_sigaction = sigquit_handler;
		sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
		__sigaction(SIGQUIT, &sa, NULL);
	}

	/* SA_NODEFER: a fault inside the handler reaches it again (and ends
	 * the process with a message) instead of killing it silently. */
	sa.sa_sigaction = fault_handler;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
	__sigaction(SIGSEGV, &sa, &old_segv);
	__sigaction(SIGBUS, &sa, &old_bus);
}

/* Is h the runtime's own SIGQUIT dump, which wakes no goroutine? */
bool sig_handler_is_runtime(void *h)
{
	return h == (void *)sigquit_handler;
}

/* The alternate signal stack this thread got from minit_signalstack, if
 * any (Go: m.gsignal's stack). */
static __thread void *own_sigstack __attribute__((tls_model("initial-exec")));

/* signal_unix.go: minitSignalStack. A guard-page fault happens with the
 * stack pointer in the guard, so the handler needs a stack of its own. A
 * thread that already has one (a foreign thread the program set up) keeps
 * it, as Go keeps a cgo thread's. Without memory for one, the thread runs
 * on without: a stack overflow then kills it natively, unreported. */
void minit_signalstack(void)
{
	/* signal_unix.go: minitSignalMask. A synchronous fault that is blocked
	 * kills the thread's process without running any handler (threads
	 * created with every signal blocked start so), so these are never
	 * left blocked; Go unblocks them on every M, cgo threads included. */
	sigset_t sync;
	sigemptyset(&sync);
	sigaddset(&sync, SIGSEGV);
	sigaddset(&sync, SIGBUS);
	sigaddset(&sync, SIGFPE);
	sigaddset(&sync, SIGILL);
	sigaddset(&sync, SIGTRAP);
	sigprocmask_raw(SIG_UNBLOCK, &sync, NULL);

	stack_t st;
	if (sigaltstack(NULL, &st) == 0 && !(st.ss_flags & SS_DISABLE))
		return;
	void *mem = mmap(NULL, SIGSTACK_SIZE, PROT_READ | PROT_WRITE,
	                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
	if (mem == MAP_FAILED)
		return;
	memset(&st, 0, sizeof st);
	st.ss_sp = mem;
	st.ss_size = SIGSTACK_SIZE;
	if (sigaltstack(&st, NULL) != 0) {
		munmap(mem, SIGSTACK_SIZE);
		return;
	}
	own_sigstack = mem;
}

/* signal_unix.go: unminitSignals. For a thread leaving the runtime (an
 * exiting M, a dropped foreign thread): disables and frees the stack that
 * minit_signalstack gave it, and leaves any other alone. */
void unminit_signalstack(void)
{
	if (!own_sigstack)
		return;
	stack_t st, cur;
	if (sigaltstack(NULL, &cur) != 0 || cur.ss_sp != own_sigstack || (cur.ss_flags & SS_ONSTACK))
		return;
	memset(&st, 0, sizeof st);
	st.ss_flags = SS_DISABLE;
	if (sigaltstack(&st, NULL) != 0)
		return;
	munmap(own_sigstack, SIGSTACK_SIZE);
	own_sigstack = NULL;
}
