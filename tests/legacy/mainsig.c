/* Signals sent to the process, and the main thread that takes them: the
 * kernel gives a process-directed signal to the main thread first, when
 * main lets it through, and a blocking call of main's ends as signal(7)
 * says (EINTR, or a restart under SA_RESTART). Under libgoshim main is a
 * goroutine that may be parked or running on any thread: the signal must
 * still reach main's handler, with its siginfo. Also: a handler that
 * posts the semaphore main waits on (no other thread exists: not a
 * deadlock), a signal main blocks taken by the thread that lets it
 * through, the action read back as it was set through signal, sysv_signal,
 * sigset, siginterrupt and SA_RESETHAND, and signals once main has called
 * pthread_exit. Every other thread blocks the signals sent, so natively
 * only the intended thread can take them. See legacy.h for the
 * conventions. */
#include "legacy.h"

#include <semaphore.h>
#pragma GCC diagnostic ignored "-Wdeprecated-declarations" /* sigset, siginterrupt: tested */
#include <signal.h>
#include <sys/time.h>

static pthread_t main_self;
static volatile sig_atomic_t hits, hits_in_main, hit_code_user, hit_pid_ours;
static volatile pthread_t hit_in;
static sem_t alarm_sem;

static sigset_t just(int sig)
{
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, sig);
	return s;
}

static void on_info(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	hit_in = pthread_self();
	hits_in_main += pthread_equal(pthread_self(), main_self) != 0;
	hit_code_user = si->si_code == SI_USER;
	hit_pid_ours = si->si_pid == getpid();
	hits++;
}

static void on_plain(int sig)
{
	(void)sig;
	hit_in = pthread_self();
	hits_in_main += pthread_equal(pthread_self(), main_self) != 0;
	hits++;
}

static void on_alarm(int sig)
{
	(void)sig;
	int saved = errno;
	sem_post(&alarm_sem);
	errno = saved;
}

static void set_handler(int sig, void (*fn)(int, siginfo_t *, void *), int flags)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = fn;
	sa.sa_flags = SA_SIGINFO | flags;
	CHECK(sigaction(sig, &sa, NULL) == 0);
}

/* ------------------------------------------------------------------------
 * Before any thread exists: main waits in sem_wait, and only a SIGALRM
 * handler will post. Nothing else could wake it, yet it is no deadlock. */

static void t_alarm_posts(void)
{
	CHECK(sem_init(&alarm_sem, 0, 0) == 0);
	CHECK(signal(SIGALRM, on_alarm) != SIG_ERR);
	struct itimerval it = { .it_value = { 0, 50000 } };
	CHECK(setitimer(ITIMER_REAL, &it, NULL) == 0);
	int rc, eintr = 0;
	while ((rc = sem_wait(&alarm_sem)) != 0 && errno == EINTR)
		eintr++;
	CHECK(rc == 0);
	printf("sem_wait in main, the only thread, posted by a SIGALRM handler: returned 0\n");
	CHECK(signal(SIGALRM, SIG_DFL) == on_alarm);
	CHECK(sem_destroy(&alarm_sem) == 0);
	alarm(60); /* legacy_start's watchdog, which setitimer replaced */
}

/* ------------------------------------------------------------------------
 * A thread (blocking the signal) sends it to the process, again every
 * 20 ms until main is back from its call: the first may come before main
 * is inside it. */

static volatile int main_back, sender_stop;

static void *kill_sender(void *arg)
{
	int sig = (int)(intptr_t)arg;
	sigset_t s = just(sig);
	CHECK0(pthread_sigmask(SIG_BLOCK, &s, NULL));
	while (!main_back) {
		CHECK(kill(getpid(), sig) == 0);
		usleep(20000);
	}
	return NULL;
}

/* Sends until a handler ran, then writes one byte to fd. */
static void *kill_then_write(void *arg)
{
	int fd = (int)(intptr_t)arg;
	sigset_t s = just(SIGUSR1);
	CHECK0(pthread_sigmask(SIG_BLOCK, &s, NULL));
	while (!hits) {
		CHECK(kill(getpid(), SIGUSR1) == 0);
		usleep(20000);
	}
	CHECK(write(fd, "x", 1) == 1);
	return NULL;
}

static pthread_t start_sender(void *(*fn)(void *), void *arg)
{
	pthread_t t;
	main_back = 0;
	hits = hits_in_main = 0;
	CHECK0(pthread_create(&t, NULL, fn, arg));
	return t;
}

static void stop_sender(pthread_t t)
{
	main_back = 1;
	CHECK0(pthread_join(t, NULL));
}

static void report(const char *what, int rc, int err)
{
	printf("%s: %s, handler ran in main %s, si_code SI_USER %d, si_pid ours %d\n", what,
	       rc == 0 ? "returned" : ename(err), hits_in_main == hits ? "every time" : "NOT",
	       (int)hit_code_user, (int)hit_pid_ours);
}

static void t_main_blocked_calls(void)
{
	int p[2];
	char c;
	CHECK(pipe(p) == 0);

	set_handler(SIGUSR1, on_info, 0);
	pthread_t t = start_sender(kill_sender, (void *)(intptr_t)SIGUSR1);
	ssize_t n = read(p[0], &c, 1);
	int err = errno;
	stop_sender(t);
	CHECK(n == -1 && hits > 0);
	report("read of an empty pipe in main, a signal to the process", -1, err);

	t = start_sender(kill_sender, (void *)(intptr_t)SIGUSR1);
	struct timespec ts = { 30, 0 }, rem = { 0, 0 };
	int rc = nanosleep(&ts, &rem);
	err = errno;
	stop_sender(t);
	CHECK(rc == -1 && hits > 0 && rem.tv_sec > 0);
	report("nanosleep of 30 s in main", rc, err);

	t = start_sender(kill_sender, (void *)(intptr_t)SIGUSR1);
	rc = pause();
	err = errno;
	stop_sender(t);
	report("pause in main", rc, err);

	sem_t s;
	CHECK(sem_init(&s, 0, 0) == 0);
	t = start_sender(kill_sender, (void *)(intptr_t)SIGUSR1);
	rc = sem_wait(&s);
	err = errno;
	stop_sender(t);
	report("sem_wait in main", rc, err);
	CHECK(sem_destroy(&s) == 0);

	/* SA_RESTART: the read goes on after the handler and gets the byte
	 * written once the handler ran. */
	set_handler(SIGUSR1, on_info, SA_RESTART);
	main_back = 0;
	hits = hits_in_main = 0;
	CHECK0(pthread_create(&t, NULL, kill_then_write, (void *)(intptr_t)p[1]));
	n = read(p[0], &c, 1);
	CHECK0(pthread_join(t, NULL));
	CHECK(n == 1 && c == 'x');
	printf("read in main under SA_RESTART: restarted after the handler ran in main %s, got 1 byte\n",
	       hits_in_main == hits ? "every time" : "NOT");

	/* A condvar wait: the handler runs in main; the wait then goes on
	 * (or returns 0, a spurious wake-up), as POSIX allows either. */
	static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
	static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
	t = start_sender(kill_sender, (void *)(intptr_t)SIGUSR1);
	CHECK0(pthread_mutex_lock(&m));
	while (hits == 0) {
		struct timespec dl = ts_after(CLOCK_REALTIME, 50);
		rc = pthread_cond_timedwait(&cv, &m, &dl);
		CHECK(rc == 0 || rc == ETIMEDOUT);
	}
	CHECK0(pthread_mutex_unlock(&m));
	stop_sender(t);
	printf("pthread_cond_timedwait in main: handler ran in main %s\n",
	       hits_in_main == hits ? "every time" : "NOT");

	close(p[0]);
	close(p[1]);
}

/* ------------------------------------------------------------------------
 * main blocks SIGUSR2: the thread that lets it through takes it. */

static volatile int pauser_ready;

static void *pauser(void *arg)
{
	(void)arg;
	sigset_t s = just(SIGUSR2);
	CHECK0(pthread_sigmask(SIG_UNBLOCK, &s, NULL));
	pauser_ready = 1;
	int rc = pause();
	CHECK(rc == -1 && errno == EINTR);
	return (void *)pthread_self();
}

static void t_main_blocks(void)
{
	set_handler(SIGUSR2, on_info, 0);
	sigset_t s = just(SIGUSR2);
	CHECK0(pthread_sigmask(SIG_BLOCK, &s, NULL));
	hits = hits_in_main = 0;
	pthread_t w, snd;
	CHECK0(pthread_create(&w, NULL, pauser, NULL));
	SPIN_UNTIL(pauser_ready);
	main_back = 0;
	CHECK0(pthread_create(&snd, NULL, kill_sender, (void *)(intptr_t)SIGUSR2));
	void *ret;
	CHECK0(pthread_join(w, &ret));
	stop_sender(snd);
	printf("SIGUSR2 to the process, blocked by main: taken by the pausing thread %s, in main %d\n",
	       pthread_equal(hit_in, w) ? "yes" : "no", (int)hits_in_main);
	CHECK0(pthread_sigmask(SIG_UNBLOCK, &s, NULL));
	CHECK(signal(SIGUSR2, SIG_DFL) != SIG_ERR);
}

/* The same with the only thread that lets SIGUSR2 through parked in a
 * condvar wait: the kernel gives the signal to that thread; its handler
 * runs there and the wait goes on (or returns 0). */
static pthread_mutex_t cw_m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cw_c = PTHREAD_COND_INITIALIZER;
static volatile int cw_ready;
static int cw_release;

static void *cond_waiter(void *arg)
{
	(void)arg;
	sigset_t s = just(SIGUSR2);
	CHECK0(pthread_sigmask(SIG_UNBLOCK, &s, NULL));
	CHECK0(pthread_mutex_lock(&cw_m));
	cw_ready = 1;
	while (!cw_release)
		CHECK0(pthread_cond_wait(&cw_c, &cw_m));
	CHECK0(pthread_mutex_unlock(&cw_m));
	return NULL;
}

static void *release_after_hit(void *arg)
{
	(void)arg;
	while (!hits) {
		CHECK(kill(getpid(), SIGUSR2) == 0);
		usleep(20000);
	}
	CHECK0(pthread_mutex_lock(&cw_m));
	cw_release = 1;
	CHECK0(pthread_cond_signal(&cw_c));
	CHECK0(pthread_mutex_unlock(&cw_m));
	return NULL;
}

static void t_parked_taker(void)
{
	set_handler(SIGUSR2, on_info, SA_RESTART);
	sigset_t s = just(SIGUSR2);
	CHECK0(pthread_sigmask(SIG_BLOCK, &s, NULL));
	hits = hits_in_main = 0;
	pthread_t w, snd;
	CHECK0(pthread_create(&w, NULL, cond_waiter, NULL));
	SPIN_UNTIL(cw_ready);
	CHECK0(pthread_create(&snd, NULL, release_after_hit, NULL));
	CHECK0(pthread_join(snd, NULL));
	CHECK0(pthread_join(w, NULL));
	printf("SIGUSR2 to the process, let through only by a thread parked in "
	       "pthread_cond_wait: taken by it %s, in main %d\n",
	       pthread_equal(hit_in, w) ? "yes" : "no", (int)hits_in_main);
	CHECK0(pthread_sigmask(SIG_UNBLOCK, &s, NULL));
	CHECK(signal(SIGUSR2, SIG_DFL) != SIG_ERR);
}

/* ------------------------------------------------------------------------
 * sigpause in main: SIGUSR1, blocked by every thread, is sent to the
 * process and stays pending; main's sigpause(SIGUSR1) lets it through
 * for the wait and takes it. */

static void *kill_once(void *arg)
{
	(void)arg;
	CHECK(kill(getpid(), SIGUSR1) == 0);
	return NULL;
}

static void t_sigpause(void)
{
	set_handler(SIGUSR1, on_info, 0);
	sigset_t s = just(SIGUSR1), pending;
	CHECK0(pthread_sigmask(SIG_BLOCK, &s, NULL));
	hits = hits_in_main = 0;
	pthread_t t;
	CHECK0(pthread_create(&t, NULL, kill_once, NULL)); /* inherits the block */
	CHECK0(pthread_join(t, NULL));
	CHECK(sigpending(&pending) == 0);
	printf("SIGUSR1 sent to the process, blocked everywhere: pending %d, handler ran %d\n",
	       sigismember(&pending, SIGUSR1), (int)hits);
	int rc = sigpause(SIGUSR1);
	int err = errno;
	printf("sigpause(SIGUSR1) in main: %d %s, handler ran in main %d time(s)\n", rc, ename(err),
	       (int)hits_in_main);
	sigset_t cur;
	CHECK0(pthread_sigmask(SIG_BLOCK, NULL, &cur));
	printf("after sigpause: SIGUSR1 blocked %d\n", sigismember(&cur, SIGUSR1));
	CHECK0(pthread_sigmask(SIG_UNBLOCK, &s, NULL));

	CHECK(sigignore(SIGUSR1) == 0);
	struct sigaction sa;
	CHECK(sigaction(SIGUSR1, NULL, &sa) == 0);
	printf("sigignore(SIGUSR1): handler %s\n", sa.sa_handler == SIG_IGN ? "SIG_IGN" : "other");
	CHECK(kill(getpid(), SIGUSR1) == 0);
	printf("SIGUSR1 to the process while ignored: handler ran %d time(s) in all\n", (int)hits);
	CHECK(signal(SIGUSR1, SIG_DFL) != SIG_ERR);
}

/* ------------------------------------------------------------------------
 * The action read back, and SA_RESETHAND carried out. */

static const char *hname(void (*h)(int))
{
	if (h == SIG_DFL)
		return "SIG_DFL";
	if (h == SIG_IGN)
		return "SIG_IGN";
	if (h == SIG_ERR)
		return "SIG_ERR";
	if (h == SIG_HOLD)
		return "SIG_HOLD";
	if (h == on_plain)
		return "on_plain";
	if (h == (void (*)(int))on_info)
		return "on_info";
	return "other";
}

static void show(const char *how, int sig)
{
	struct sigaction sa;
	CHECK(sigaction(sig, NULL, &sa) == 0);
	int f = sa.sa_flags;
	printf("%s: handler %s%s%s%s%s\n", how, hname(sa.sa_handler),
	       f & SA_SIGINFO ? " SA_SIGINFO" : "", f & SA_RESTART ? " SA_RESTART" : "",
	       f & SA_RESETHAND ? " SA_RESETHAND" : "", f & SA_NODEFER ? " SA_NODEFER" : "");
}

static void t_readback(void)
{
	printf("signal returns the previous: %s\n", hname(signal(SIGUSR1, on_plain)));
	show("after signal(SIGUSR1, on_plain)", SIGUSR1);
	printf("signal again returns: %s\n", hname(signal(SIGUSR1, SIG_IGN)));
	show("after signal(SIGUSR1, SIG_IGN)", SIGUSR1);
	CHECK(siginterrupt(SIGUSR1, 1) == 0);
	show("after siginterrupt(SIGUSR1, 1)", SIGUSR1);
	CHECK(signal(SIGUSR1, on_plain) != SIG_ERR);
	show("signal after siginterrupt(SIGUSR1, 1)", SIGUSR1);
	CHECK(siginterrupt(SIGUSR1, 0) == 0);
	show("after siginterrupt(SIGUSR1, 0)", SIGUSR1);
	void (*h)(int) = signal(SIGKILL, on_plain);
	printf("signal(SIGKILL): %s %s\n", hname(h), ename(errno));
	h = signal(65, on_plain);
	printf("signal(65): %s %s\n", hname(h), ename(errno));

	printf("sysv_signal returns the previous: %s\n", hname(sysv_signal(SIGUSR1, on_plain)));
	show("after sysv_signal", SIGUSR1);
	hits = hits_in_main = 0;
	CHECK(raise(SIGUSR1) == 0);
	printf("raise once: handler ran %d time(s) in main\n", (int)hits_in_main);
	show("after the handler (one-shot)", SIGUSR1);

	set_handler(SIGUSR1, on_info, SA_RESETHAND);
	show("sigaction SA_SIGINFO|SA_RESETHAND", SIGUSR1);
	hits = hits_in_main = 0;
	CHECK(kill(getpid(), SIGUSR1) == 0);
	printf("kill to the process once: handler ran %d time(s) in main\n", (int)hits_in_main);
	show("after the handler (SA_RESETHAND)", SIGUSR1);

	printf("sigset returns the previous: %s\n", hname(sigset(SIGUSR2, on_plain)));
	show("after sigset", SIGUSR2);
	CHECK(sighold(SIGUSR2) == 0);
	sigset_t cur;
	CHECK0(pthread_sigmask(SIG_BLOCK, NULL, &cur));
	printf("sighold: SIGUSR2 blocked %d\n", sigismember(&cur, SIGUSR2));
	printf("sigset(SIG_HOLD) returns: %s\n", hname(sigset(SIGUSR2, SIG_HOLD)));
	CHECK(sigrelse(SIGUSR2) == 0);
	CHECK0(pthread_sigmask(SIG_BLOCK, NULL, &cur));
	printf("sigrelse: SIGUSR2 blocked %d\n", sigismember(&cur, SIGUSR2));
	CHECK(signal(SIGUSR1, SIG_DFL) != SIG_ERR);
	CHECK(signal(SIGUSR2, SIG_DFL) != SIG_ERR);
}

/* ------------------------------------------------------------------------
 * After main's pthread_exit: a signal to the process goes to a thread
 * that lets it through, and the process lives on until the last thread. */

static void *last_pauser(void *arg)
{
	(void)arg;
	int rc = pause();
	CHECK(rc == -1 && errno == EINTR);
	printf("around main's pthread_exit: a signal to the process ran its handler in the "
	       "pausing thread %s\n", pthread_equal(hit_in, pthread_self()) ? "yes" : "no");
	main_back = 1;
	fflush(stdout);
	return NULL;
}

static void *late_sender(void *arg)
{
	(void)arg;
	sigset_t s = just(SIGUSR1);
	CHECK0(pthread_sigmask(SIG_BLOCK, &s, NULL));
	while (!main_back) {
		CHECK(kill(getpid(), SIGUSR1) == 0);
		usleep(20000);
	}
	printf("mainsig: all checks passed\n");
	return NULL;
}

int main(void)
{
	legacy_start();
	main_self = pthread_self();
	t_alarm_posts();
	t_main_blocked_calls();
	t_main_blocks();
	t_parked_taker();
	t_sigpause();
	t_readback();

	set_handler(SIGUSR1, on_info, 0);
	main_back = 0;
	pthread_t a, b;
	CHECK0(pthread_create(&a, NULL, last_pauser, NULL));
	CHECK0(pthread_create(&b, NULL, late_sender, NULL));
	CHECK0(pthread_detach(a));
	CHECK0(pthread_detach(b));
	pthread_exit(NULL);
}
