/* CPU affinity of threads: pthread_setaffinity_np/pthread_getaffinity_np
 * on other threads and on the caller, sched_setaffinity(0)/
 * sched_getaffinity(0) in a thread, the attribute at creation,
 * inheritance by the threads a thread creates, pthread_getattr_np, and
 * the errors: a set of no online CPU (EINVAL), a size below the kernel's
 * mask (EINVAL). The same answers natively and preloaded (where the mask
 * is recorded, not applied: goroutines move between threads). Uses CPU 0
 * and, if online, the last CPU the process may use. */
#include "legacy.h"
#include <sched.h>

static int last_cpu;

static cpu_set_t only(int cpu)
{
	cpu_set_t s;
	CPU_ZERO(&s);
	CPU_SET(cpu, &s);
	return s;
}

static const char *which(const cpu_set_t *s)
{
	if (CPU_COUNT(s) == 1 && CPU_ISSET(0, s))
		return "{cpu 0}";
	if (CPU_COUNT(s) == 1 && CPU_ISSET(last_cpu, s))
		return "{last cpu}";
	return "another set";
}

static const char *mine_then(void)
{
	cpu_set_t s;
	CHECK0(pthread_getaffinity_np(pthread_self(), sizeof s, &s));
	return which(&s);
}

static volatile int release;

static void *idle(void *arg)
{
	while (!release)
		usleep(1000);
	return arg;
}

static void *child_reports(void *arg)
{
	printf("  a thread it created: %s\n", mine_then());
	return arg;
}

static void *self_setter(void *arg)
{
	cpu_set_t s = only(last_cpu), got;
	CHECK(sched_setaffinity(0, sizeof s, &s) == 0);
	CHECK(sched_getaffinity(0, sizeof got, &got) == 0);
	printf("sched_setaffinity(0) in a thread, then sched_getaffinity(0): %s\n", which(&got));
	printf("  pthread_getaffinity_np(pthread_self()): %s\n", mine_then());
	usleep(2000); /* may move to another thread preloaded */
	printf("  after a sleep: %s\n", mine_then());
	pthread_t c;
	CHECK0(pthread_create(&c, NULL, child_reports, NULL));
	CHECK0(pthread_join(c, NULL));
	return arg;
}

int main(void)
{
	legacy_start();
	cpu_set_t all;
	CHECK(sched_getaffinity(0, sizeof all, &all) == 0);
	last_cpu = 0;
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &all))
			last_cpu = c;

	pthread_t t;
	CHECK0(pthread_create(&t, NULL, idle, NULL));
	cpu_set_t s = only(last_cpu), got;
	EXPECT("pthread_setaffinity_np of another thread to one CPU",
	       pthread_setaffinity_np(t, sizeof s, &s), 0);
	CHECK0(pthread_getaffinity_np(t, sizeof got, &got));
	printf("  pthread_getaffinity_np: %s\n", which(&got));
	pthread_attr_t a;
	CHECK0(pthread_getattr_np(t, &a));
	CPU_ZERO(&got);
	CHECK0(pthread_attr_getaffinity_np(&a, sizeof got, &got));
	printf("  pthread_getattr_np's affinity: %s\n", which(&got));
	CHECK0(pthread_attr_destroy(&a));

	cpu_set_t none;
	CPU_ZERO(&none);
	EXPECT("pthread_setaffinity_np to no CPU", pthread_setaffinity_np(t, sizeof none, &none),
	       EINVAL);
	cpu_set_t far = only(CPU_SETSIZE - 1);
	EXPECT("pthread_setaffinity_np to a CPU that is not there",
	       pthread_setaffinity_np(t, sizeof far, &far), EINVAL);
	EXPECT("pthread_getaffinity_np with a 1-byte set", pthread_getaffinity_np(t, 1, &got),
	       EINVAL);
	CHECK0(pthread_getaffinity_np(t, sizeof got, &got));
	printf("  unchanged by the failures: %s\n", which(&got));
	release = 1;
	CHECK0(pthread_join(t, NULL));

	CHECK0(pthread_create(&t, NULL, self_setter, NULL));
	CHECK0(pthread_join(t, NULL));

	CHECK0(pthread_attr_init(&a));
	s = only(0);
	CHECK0(pthread_attr_setaffinity_np(&a, sizeof s, &s));
	printf("pthread_create with pthread_attr_setaffinity_np {cpu 0}:\n");
	fflush(stdout);
	CHECK0(pthread_create(&t, &a, child_reports, NULL));
	CHECK0(pthread_join(t, NULL));
	CHECK0(pthread_attr_destroy(&a));
	printf("affinity: all checks passed\n");
	return 0;
}
