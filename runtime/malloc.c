/*
 * persistentalloc (malloc.go): small objects the runtime never frees, cut
 * from chunks it maps itself. Go's sudogs are never freed, only cached;
 * ours come from here rather than from malloc because the runtime often
 * allocates while running on a pthread-goroutine's glibc identity, and
 * glibc gives each identity that first calls malloc a tcache of its own
 * (about 650 bytes, in an arena): a parked pthread that never allocated
 * would carry one just for the runtime's sake.
 *
 * Invariant: [persistent.cur, persistent.end) is unused memory of the
 * current chunk, guarded by persistent.lock; chunks are never unmapped.
 */
#include <sys/mman.h>
#ifdef GOSHIM_ASAN
#include <sanitizer/lsan_interface.h>
#endif

#include "runtime/runtime.h"

#define PERSISTENT_CHUNK (256 << 10)

static struct {
	mutex_t lock;
	uintptr_t cur, end;
} persistent;

/* Zeroed memory of size bytes aligned to align (a power of two), or NULL
 * when the system has none. */
void *persistentalloc(size_t size, size_t align)
{
	size = (size + align - 1) & ~(align - 1);
	lock(&persistent.lock);
	uintptr_t p = (persistent.cur + align - 1) & ~(uintptr_t)(align - 1);
	if (!persistent.cur || p + size > persistent.end) {
		size_t chunk = size > PERSISTENT_CHUNK ? size : PERSISTENT_CHUNK;
		void *mem = mmap(NULL, chunk, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		                 -1, 0);
		if (mem == MAP_FAILED) {
			unlock(&persistent.lock);
			return NULL;
		}
#ifdef GOSHIM_ASAN
		/* Ms, Ps and Gs live here and hold the only pointers to some
		 * malloc'd memory (a P's timer heap): LeakSanitizer must scan
		 * the chunk as it scans malloc'd blocks. */
		__lsan_register_root_region(mem, chunk);
#endif
		p = (uintptr_t)mem;
		persistent.end = p + chunk;
	}
	persistent.cur = p + size;
	unlock(&persistent.lock);
	return (void *)p;
}
