/* Threads blocked reading eventfd, timerfd and inotify descriptors: the
 * reads block until the event, return what the kernel's would, and the
 * descriptors' own O_NONBLOCK (EFD_NONBLOCK, TFD_NONBLOCK, IN_NONBLOCK)
 * is kept. Preloaded, the blocked threads must be parked goroutines, not
 * OS threads blocked in the kernel: while 40 of them wait, the process
 * has fewer than 20 OS threads (checked only when preloaded; the output
 * is the same either way). See legacy.h for the conventions. */
#include "legacy.h"
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/timerfd.h>

#define NREADERS 40

static int os_threads(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	int n = -1;
	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "Threads: %d", &n) == 1)
			break;
	if (f)
		fclose(f);
	return n;
}

static int preloaded(void)
{
	const char *p = getenv("LD_PRELOAD");
	return p && strstr(p, "goshim");
}

static volatile int started;

static void wait_started(int n)
{
	while (__atomic_load_n(&started, __ATOMIC_ACQUIRE) < n)
		usleep(1000);
	usleep(50000); /* into their reads */
}

/* ------------------------------------------------------------------------
 * eventfd: NREADERS threads each block on their own counter; eventfd_read
 * and read both; EFD_SEMAPHORE; a writer blocked by a full counter. */

static int efd[NREADERS];
static uint64_t got[NREADERS];

static void *efd_reader(void *arg)
{
	int i = (int)(intptr_t)arg;
	__atomic_add_fetch(&started, 1, __ATOMIC_RELEASE);
	if (i % 2) {
		eventfd_t v;
		CHECK(eventfd_read(efd[i], &v) == 0);
		got[i] = v;
	} else {
		CHECK(read(efd[i], &got[i], 8) == 8);
	}
	return NULL;
}

static void *efd_full_writer(void *arg)
{
	int fd = *(int *)arg;
	__atomic_add_fetch(&started, 1, __ATOMIC_RELEASE);
	CHECK(eventfd_write(fd, 5) == 0); /* blocks: the counter is full */
	return NULL;
}

static void t_eventfd(void)
{
	pthread_t t[NREADERS];
	started = 0;
	for (int i = 0; i < NREADERS; i++) {
		efd[i] = eventfd(0, EFD_CLOEXEC);
		CHECK(efd[i] >= 0);
		CHECK0(pthread_create(&t[i], NULL, efd_reader, (void *)(intptr_t)i));
	}
	wait_started(NREADERS);
	if (preloaded() && os_threads() >= 20)
		FAIL("%d OS threads while %d threads wait on eventfds", os_threads(), NREADERS);
	printf("eventfd: %d readers blocked\n", NREADERS);
	for (int i = 0; i < NREADERS; i++)
		CHECK(eventfd_write(efd[i], (eventfd_t)i + 1) == 0);
	for (int i = 0; i < NREADERS; i++) {
		CHECK0(pthread_join(t[i], NULL));
		if (got[i] != (uint64_t)i + 1)
			FAIL("eventfd %d read %llu", i, (unsigned long long)got[i]);
		close(efd[i]);
	}
	printf("eventfd: each reader got its own counter\n");

	int fd = eventfd(3, EFD_SEMAPHORE);
	uint64_t v = 0;
	CHECK(read(fd, &v, 8) == 8 && v == 1);
	CHECK(read(fd, &v, 8) == 8 && v == 1);
	CHECK(read(fd, &v, 8) == 8 && v == 1);
	printf("eventfd EFD_SEMAPHORE: three reads of 1\n");
	int fl = fcntl(fd, F_GETFL);
	printf("eventfd without EFD_NONBLOCK: O_NONBLOCK %d\n", (fl & O_NONBLOCK) != 0);
	close(fd);

	fd = eventfd(0, EFD_NONBLOCK);
	errno = 0;
	ssize_t r = read(fd, &v, 8);
	printf("eventfd EFD_NONBLOCK, empty: read %zd %s, O_NONBLOCK %d\n", r, ename(errno),
	       (fcntl(fd, F_GETFL) & O_NONBLOCK) != 0);
	close(fd);

	fd = eventfd(0, 0);
	CHECK(eventfd_write(fd, UINT64_MAX - 1) == 0); /* the largest count */
	pthread_t w;
	started = 0;
	CHECK0(pthread_create(&w, NULL, efd_full_writer, &fd));
	wait_started(1);
	CHECK(read(fd, &v, 8) == 8 && v == UINT64_MAX - 1);
	CHECK0(pthread_join(w, NULL));
	CHECK(read(fd, &v, 8) == 8 && v == 5);
	printf("eventfd: a writer blocked by a full counter went on once it was read\n");
	close(fd);
}

/* ------------------------------------------------------------------------
 * timerfd: readers block until their timer expires. */

static void *tfd_reader(void *arg)
{
	int fd = (int)(intptr_t)arg;
	__atomic_add_fetch(&started, 1, __ATOMIC_RELEASE);
	uint64_t n = 0;
	CHECK(read(fd, &n, 8) == 8);
	CHECK(n >= 1);
	return NULL;
}

static void t_timerfd(void)
{
	int fd[NREADERS];
	pthread_t t[NREADERS];
	started = 0;
	for (int i = 0; i < NREADERS; i++) {
		fd[i] = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
		CHECK(fd[i] >= 0);
		struct itimerspec its = {.it_value = {0, 300000000L + i * 1000000L}};
		CHECK(timerfd_settime(fd[i], 0, &its, NULL) == 0);
		CHECK0(pthread_create(&t[i], NULL, tfd_reader, (void *)(intptr_t)fd[i]));
	}
	wait_started(NREADERS);
	if (preloaded() && os_threads() >= 20)
		FAIL("%d OS threads while %d threads wait on timerfds", os_threads(), NREADERS);
	for (int i = 0; i < NREADERS; i++) {
		CHECK0(pthread_join(t[i], NULL));
		struct itimerspec left;
		CHECK(timerfd_gettime(fd[i], &left) == 0);
		CHECK(left.it_value.tv_sec == 0 && left.it_value.tv_nsec == 0);
		close(fd[i]);
	}
	printf("timerfd: %d readers blocked until their timers expired\n", NREADERS);

	int nb = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
	uint64_t n;
	errno = 0;
	ssize_t r = read(nb, &n, 8);
	printf("timerfd TFD_NONBLOCK, unarmed: read %zd %s\n", r, ename(errno));
	close(nb);
}

/* ------------------------------------------------------------------------
 * inotify: a reader blocks until a file appears in a watched directory. */

static char dir[64];

static void *inotify_reader(void *arg)
{
	int fd = (int)(intptr_t)arg;
	__atomic_add_fetch(&started, 1, __ATOMIC_RELEASE);
	char buf[sizeof(struct inotify_event) + 256] __attribute__((aligned(8)));
	ssize_t r = read(fd, buf, sizeof buf);
	CHECK(r >= (ssize_t)sizeof(struct inotify_event));
	struct inotify_event *ev = (struct inotify_event *)buf;
	printf("inotify: the blocked reader saw %s of \"%s\"\n",
	       ev->mask & IN_CREATE ? "IN_CREATE" : "another event", ev->len ? ev->name : "");
	return NULL;
}

static void t_inotify(void)
{
	snprintf(dir, sizeof dir, "/tmp/goshim-fdkinds-XXXXXX");
	CHECK(mkdtemp(dir) != NULL);
	int fd = inotify_init1(IN_CLOEXEC);
	CHECK(fd >= 0);
	CHECK(inotify_add_watch(fd, dir, IN_CREATE) >= 0);
	pthread_t t;
	started = 0;
	CHECK0(pthread_create(&t, NULL, inotify_reader, (void *)(intptr_t)fd));
	wait_started(1);
	char path[96];
	snprintf(path, sizeof path, "%s/created", dir);
	int f = open(path, O_CREAT | O_WRONLY, 0600);
	CHECK(f >= 0);
	close(f);
	CHECK0(pthread_join(t, NULL));
	close(fd);
	unlink(path);
	rmdir(dir);

	fd = inotify_init1(IN_NONBLOCK);
	char buf[512];
	errno = 0;
	ssize_t r = read(fd, buf, sizeof buf);
	printf("inotify IN_NONBLOCK, no event: read %zd %s\n", r, ename(errno));
	close(fd);
}

int main(void)
{
	legacy_start();
	t_eventfd();
	t_timerfd();
	t_inotify();
	printf("fdkinds: all checks passed\n");
	return 0;
}
