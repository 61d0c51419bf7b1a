/* A module with __thread data dlopen'ed while threads exist (all created
 * before it, parked): each of them, and main, finds the module's TLS
 * initialised in its own copy (42), keeps its own value and address
 * across blocking calls that move it between kernel threads, and the
 * threads created after the dlopen do too; dlclose then works. The
 * module (tlsmod.c, general-dynamic TLS) is the libtool module built
 * beside this program. See legacy.h for the conventions. */
#include "legacy.h"

#include <dlfcn.h>
#include <libgen.h>

#define NBEFORE 200
#define NAFTER 50
#define ROUNDS 5

static int (*mod_get)(void);
static void (*mod_set)(int);
static void *(*mod_addr)(void);

static struct gate loaded = GATE_INIT, finish = GATE_INIT;
static void *addrs[NBEFORE + NAFTER + 1];

static void *worker(void *arg)
{
	int idx = (int)(intptr_t)arg;
	if (idx < NBEFORE)
		gate_wait(&loaded); /* parked until the module is loaded */
	if (mod_get() != 42)
		FAIL("thread %d: the module's __thread reads %d, not its initial 42", idx, mod_get());
	void *addr = mod_addr();
	mod_set(1000 + idx);
	for (int r = 0; r < ROUNDS; r++) {
		usleep(100);
		sched_yield();
		if (mod_get() != 1000 + idx || mod_addr() != addr)
			FAIL("thread %d: the module's __thread changed across a blocking call", idx);
	}
	addrs[idx] = addr;
	gate_wait(&finish); /* all alive at once for the address check */
	return NULL;
}

static int cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
	return x < y ? -1 : x > y;
}

int main(void)
{
	legacy_start();
	char self[4096], path[4200];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	CHECK(n > 0);
	self[n] = 0;
	snprintf(path, sizeof path, "%s/.libs/libtlsmod.so", dirname(self));

	pthread_t t[NBEFORE + NAFTER];
	for (int i = 0; i < NBEFORE; i++)
		CHECK0(pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i));
	gate_await_waiters(&loaded, NBEFORE);

	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h)
		FAIL("dlopen %s: %s", path, dlerror());
	mod_get = (int (*)(void))dlsym(h, "tlsmod_get");
	mod_set = (void (*)(int))dlsym(h, "tlsmod_set");
	mod_addr = (void *(*)(void))dlsym(h, "tlsmod_addr");
	CHECK(mod_get && mod_set && mod_addr);
	CHECK(mod_get() == 42);
	addrs[NBEFORE + NAFTER] = mod_addr();

	gate_open(&loaded);
	for (int i = NBEFORE; i < NBEFORE + NAFTER; i++)
		CHECK0(pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i));
	gate_await_waiters(&finish, NBEFORE + NAFTER);
	qsort(addrs, NBEFORE + NAFTER + 1, sizeof addrs[0], cmp_ptr);
	for (int i = 1; i < NBEFORE + NAFTER + 1; i++)
		CHECK(addrs[i] != addrs[i - 1]);
	gate_open(&finish);
	for (int i = 0; i < NBEFORE + NAFTER; i++)
		CHECK0(pthread_join(t[i], NULL));
	printf("dlopen after %d threads existed: each of them, %d made later and main read the "
	       "module's __thread as 42 and kept their own value over %d blocking calls, "
	       "at %d distinct addresses\n",
	       NBEFORE, NAFTER, ROUNDS, NBEFORE + NAFTER + 1);
	CHECK(dlclose(h) == 0);
	printf("dlclose: 0\ndlopen_tls: all checks passed\n");
	return 0;
}
