/* main is a thread like the others: under libgoshim it is a goroutine that
 * resumes on whichever kernel thread runs it next, and must stay the same
 * thread to the program (pthread_self, errno, __thread variables, keys)
 * wherever it runs. Here main parks while the kernel thread it ran on is
 * held by another thread's blocking system call (a process-shared
 * semaphore, which blocks in the kernel), so at GOMAXPROCS=1 it can only
 * resume elsewhere: when preloaded at GOMAXPROCS=1 that move is required
 * (the program reads LD_PRELOAD and GOMAXPROCS for that one check, and
 * prints the same either way). Then, from wherever main runs: setegid
 * reaches every kernel thread of the process, fork gives a child that
 * works, and pthread_exit leaves the process to the other threads. See
 * legacy.h for the conventions. */
#include "legacy.h"

#include <dirent.h>
#include <semaphore.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>

static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t c = PTHREAD_COND_INITIALIZER;
static int woken;
static volatile int holder_in;
static sem_t held; /* process-shared: its wait blocks the kernel thread */
static __thread int tl_value = 7;
static pthread_key_t key;

static void *holder(void *arg)
{
	holder_in = 1;
	while (sem_wait(&held) != 0)
		CHECK(errno == EINTR);
	return arg;
}

static void *waker(void *arg)
{
	/* Runs when main has parked; lets the holder block first. */
	SPIN_UNTIL(holder_in);
	CHECK0(pthread_mutex_lock(&m));
	woken = 1;
	CHECK0(pthread_cond_signal(&c));
	CHECK0(pthread_mutex_unlock(&m));
	return arg;
}

static int must_move(void)
{
	const char *pre = getenv("LD_PRELOAD"), *procs = getenv("GOMAXPROCS");
	return pre && strstr(pre, "libgoshim") && procs && strcmp(procs, "1") == 0;
}

static void t_move(void)
{
	CHECK(sem_init(&held, 1, 0) == 0);
	CHECK0(pthread_key_create(&key, NULL));
	CHECK0(pthread_setspecific(key, &key));
	pthread_t self = pthread_self();
	int *errno_addr = &errno;
	int *tl_addr = &tl_value;
	tl_value = 42;
	long tid0 = syscall(SYS_gettid);

	pthread_t h, w;
	CHECK0(pthread_create(&h, NULL, holder, NULL));
	CHECK0(pthread_create(&w, NULL, waker, NULL));
	CHECK0(pthread_mutex_lock(&m));
	while (!woken)
		CHECK0(pthread_cond_wait(&c, &m));
	CHECK0(pthread_mutex_unlock(&m));
	long tid1 = syscall(SYS_gettid);
	CHECK(sem_post(&held) == 0);
	CHECK0(pthread_join(h, NULL));
	CHECK0(pthread_join(w, NULL));
	CHECK(sem_destroy(&held) == 0);

	if (must_move() && tid1 == tid0)
		FAIL("main resumed on the kernel thread that another thread's system call held");
	CHECK(pthread_equal(pthread_self(), self));
	CHECK(&errno == errno_addr && &tl_value == tl_addr && tl_value == 42);
	CHECK(pthread_getspecific(key) == &key);
	printf("main woke while its thread was held: pthread_self, errno, __thread and key "
	       "value unchanged\n");
}

/* Every kernel thread's effective gid, from /proc: all equal to want? */
static int all_egid(gid_t want)
{
	DIR *d = opendir("/proc/self/task");
	CHECK(d != NULL);
	struct dirent *e;
	int ok = 1, n = 0;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char path[300], line[256];
		snprintf(path, sizeof path, "/proc/self/task/%s/status", e->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue; /* exited meanwhile */
		while (fgets(line, sizeof line, f)) {
			unsigned r, eff;
			if (sscanf(line, "Gid: %u %u", &r, &eff) == 2) {
				n++;
				ok &= eff == want;
			}
		}
		fclose(f);
	}
	closedir(d);
	return ok && n > 0;
}

static void *idle_thread(void *arg)
{
	usleep(200000);
	return arg;
}

static void t_credentials(void)
{
	if (geteuid() != 0) {
		printf("setegid: not root, skipped\n");
		return;
	}
	pthread_t t[4];
	for (int i = 0; i < 4; i++)
		CHECK0(pthread_create(&t[i], NULL, idle_thread, NULL));
	gid_t was = getegid();
	CHECK(setegid(4321) == 0);
	int ok = all_egid(4321);
	CHECK(setegid(was) == 0);
	ok &= all_egid(was);
	for (int i = 0; i < 4; i++)
		CHECK0(pthread_join(t[i], NULL));
	printf("setegid from main, 4 threads sleeping: every kernel thread's gid changed and "
	       "came back %s\n", ok ? "yes" : "no");
}

static void *child_thread(void *arg)
{
	return (void *)((intptr_t)arg + 1);
}

static void t_fork(void)
{
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		/* As a child does before exec: block, unblock, block. */
		sigset_t s;
		sigemptyset(&s);
		sigaddset(&s, SIGTERM);
		sigaddset(&s, SIGINT);
		if (sigprocmask(SIG_BLOCK, &s, NULL) != 0 || sigprocmask(SIG_UNBLOCK, &s, NULL) != 0 ||
		    sigprocmask(SIG_BLOCK, &s, NULL) != 0)
			_exit(4);
		pthread_t t;
		void *r;
		if (pthread_create(&t, NULL, child_thread, (void *)41) != 0 || pthread_join(t, &r) != 0 ||
		    (intptr_t)r != 42 || tl_value != 42 || pthread_getspecific(key) != &key)
			_exit(3);
		_exit(0);
	}
	int st;
	CHECK(waitpid(pid, &st, 0) == pid);
	printf("fork from main: the child changed its mask, made and joined a thread, kept main's "
	       "__thread and key: "
	       "%s\n", WIFEXITED(st) && WEXITSTATUS(st) == 0 ? "yes" : "no");
}

static void *survivor(void *arg)
{
	(void)arg;
	usleep(50000);
	printf("main called pthread_exit; the last thread ends the process with status 0\n");
	return NULL;
}

int main(void)
{
	legacy_start();
	t_move();
	t_credentials();
	t_fork();
	pthread_t s;
	CHECK0(pthread_create(&s, NULL, survivor, NULL));
	pthread_exit(NULL);
}
