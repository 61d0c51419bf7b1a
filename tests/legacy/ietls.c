/* dlopen of a module with initial-exec TLS while threads exist: usage
 * "ietls small" (480 bytes of it, libietls_small) or "ietls big" (1,024,
 * libietls_big). Prints whether the module loaded, or glibc's reason.
 * Once loaded, threads created after the dlopen each find the module's
 * TLS initialised (7 and 9 at its ends) and keep their own copy across
 * blocking calls that move them between kernel threads. (Threads that
 * existed before the dlopen are not asked: under libgoshim their copy is
 * not initialised; README, "Not yet supported".) See legacy.h for the
 * conventions; tests/legacy/ietls.sh runs it. */
#include "legacy.h"

#include <dlfcn.h>
#include <libgen.h>

#define NAFTER 20
#define ROUNDS 5

static int (*mod_get)(void);
static void (*mod_set)(int);
static struct gate finish = GATE_INIT;

static void *before(void *arg)
{
	gate_wait(&finish); /* parked across the dlopen */
	return arg;
}

static void *after(void *arg)
{
	int idx = (int)(intptr_t)arg;
	if (mod_get() != 709)
		FAIL("thread %d: the module's TLS reads %d, not its initial 709", idx, mod_get());
	int mine = 1000 + idx * 101;
	mod_set(mine);
	for (int r = 0; r < ROUNDS; r++) {
		usleep(100);
		sched_yield();
		if (mod_get() != mine)
			FAIL("thread %d: the module's TLS changed across a blocking call", idx);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	legacy_start();
	if (argc != 2 || (strcmp(argv[1], "small") != 0 && strcmp(argv[1], "big") != 0))
		FAIL("usage: ietls small|big");
	char self[4096], path[4200];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	CHECK(n > 0);
	self[n] = 0;
	snprintf(path, sizeof path, "%s/.libs/libietls_%s.so", dirname(self), argv[1]);

	pthread_t b;
	CHECK0(pthread_create(&b, NULL, before, NULL));
	gate_await_waiters(&finish, 1);
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		const char *err = dlerror();
		const char *why = strstr(err, "cannot allocate memory in static TLS block");
		printf("dlopen of %s initial-exec TLS: %s\n", argv[1], why ? why : err);
		gate_open(&finish);
		CHECK0(pthread_join(b, NULL));
		return 0;
	}
	mod_get = (int (*)(void))dlsym(h, "ietls_get");
	mod_set = (void (*)(int))dlsym(h, "ietls_set");
	CHECK(mod_get && mod_set);
	printf("dlopen of %s initial-exec TLS: loaded\n", argv[1]);
	pthread_t t[NAFTER];
	for (int i = 0; i < NAFTER; i++)
		CHECK0(pthread_create(&t[i], NULL, after, (void *)(intptr_t)i));
	for (int i = 0; i < NAFTER; i++)
		CHECK0(pthread_join(t[i], NULL));
	gate_open(&finish);
	CHECK0(pthread_join(b, NULL));
	printf("%d threads made after it found its TLS initialised and kept their own "
	       "over %d blocking calls\n", NAFTER, ROUNDS);
	return 0;
}
