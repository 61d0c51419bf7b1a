/* Debuggability: Go's fatal errors (deadlock, Goexit from main, stack
 * overflow), the SIGQUIT goroutine dump, schedtrace, the fatal handler,
 * and the start-up checks of the environment. Each scenario runs in a
 * child process of this suite. */
#include <stdatomic.h>
#include <stdint.h>

#include "goshim.h"
#include "runtime/runtime.h"
#include "testutil.h"

/* ---- scenarios (children) ---- */

static void park_forever_g(void *arg)
{
	(void)arg;
	runtime_enter();
	gopark(NULL, NULL, waitReasonForever);
	runtime_leave();
}

static void scenario_deadlock(void)
{
	go_spawn(park_forever_g, NULL);
	go_spawn(park_forever_g, NULL);
	park_forever_g(NULL); /* main too: nothing can wake anyone */
}

static void scenario_goexit_main_alone(void)
{
	go_exit();
}

static _Atomic int others_ran;
static void short_lived(void *arg)
{
	(void)arg;
	for (int i = 0; i < 10; i++)
		go_yield();
	atomic_fetch_add(&others_ran, 1);
	if (atomic_load(&others_ran) == 3)
		printf("others finished\n"), fflush(stdout);
}

static void scenario_goexit_main_others_run(void)
{
	for (int i = 0; i < 3; i++)
		go_spawn(short_lived, NULL);
	go_exit();
}

static void fatal_handler_cb(const char *msg)
{
	printf("handler got: %s\n", msg);
	fflush(stdout);
}

static void scenario_fatal_handler(void)
{
	go_set_fatal_handler(fatal_handler_cb);
	scenario_deadlock();
}

static _Atomic int quit_ready;
static void sleeper_for_dump(void *arg)
{
	(void)arg;
	atomic_store(&quit_ready, 1);
	runtime_enter();
	gopark(NULL, NULL, waitReasonForever);
	runtime_leave();
}

static void scenario_sigquit(void)
{
	go_spawn(sleeper_for_dump, NULL);
	while (!atomic_load(&quit_ready))
		go_yield();
	printf("ready\n");
	fflush(stdout);
	/* main stays busy in foreign code until the signal kills us */
	for (;;)
		usleep(1000);
}

static int depth_sink;
static __attribute__((noinline)) int recurse(int n)
{
	volatile char buf[512];
	buf[0] = (char)n;
	depth_sink += buf[0];
	return recurse(n + 1) + buf[0];
}

static void overflow_g(void *arg)
{
	(void)arg;
	printf("overflowing goroutine %lld\n", (long long)go_self());
	fflush(stdout);
	recurse(0);
}

static void scenario_stack_overflow(void)
{
	go_spawn(overflow_g, NULL);
	for (;;)
		go_yield();
}

static void scenario_schedtrace(void)
{
	/* keep sysmon alive for a while so it prints a few lines */
	go_spawn(short_lived, NULL);
	usleep(300 * 1000);
}

static void scenario_print_maxprocs(void)
{
	printf("maxprocs=%d\n", go_maxprocs(0));
}

static const struct scenario scenarios[] = {
	{ "deadlock", scenario_deadlock },
	{ "goexit_main_alone", scenario_goexit_main_alone },
	{ "goexit_main_others_run", scenario_goexit_main_others_run },
	{ "fatal_handler", scenario_fatal_handler },
	{ "sigquit", scenario_sigquit },
	{ "stack_overflow", scenario_stack_overflow },
	{ "schedtrace", scenario_schedtrace },
	{ "print_maxprocs", scenario_print_maxprocs },
	{ NULL, NULL },
};

/* ---- tests (parent) ---- */

static struct child_result r;

START_TEST(deadlock_is_fatal)
{
	static const char *const p1[] = { "GOMAXPROCS=1", NULL };
	static const char *const p2[] = { "GOMAXPROCS=2", NULL };
	const char *const *envs[] = { p1, p2 };
	for (int i = 0; i < 2; i++) {
		run_child("deadlock", envs[i], &r);
		ck_assert_exit_status(&r, 2);
		ck_assert_output_has(&r, "fatal error: all goroutines are asleep - deadlock!");
		ck_assert_output_has(&r, "goroutine 1 [forever]:");
		ck_assert_output_has(&r, "[forever]:");
		ck_assert_output_has(&r, "created by");
	}
}
END_TEST

START_TEST(goexit_from_main_alone)
{
	run_child("goexit_main_alone", NULL, &r);
	ck_assert_exit_status(&r, 2);
	ck_assert_output_has(&r, "fatal error: no goroutines (main called runtime.Goexit) - deadlock!");
}
END_TEST

START_TEST(goexit_from_main_lets_others_run)
{
	run_child("goexit_main_others_run", NULL, &r);
	ck_assert_exit_status(&r, 2);
	ck_assert_output_has(&r, "others finished");
	ck_assert_output_has(&r, "no goroutines (main called runtime.Goexit) - deadlock!");
}
END_TEST

START_TEST(fatal_handler_sees_message)
{
	run_child("fatal_handler", NULL, &r);
	ck_assert_exit_status(&r, 2);
	ck_assert_output_has(&r, "handler got: fatal error: all goroutines are asleep - deadlock!");
	/* the dump still follows the handler */
	ck_assert_output_has(&r, "goroutine 1 [");
}
END_TEST

START_TEST(sigquit_dumps_goroutines)
{
	run_child_sig("sigquit", NULL, SIGQUIT, 50, &r);
	ck_assert_exit_status(&r, 2);
	ck_assert_output_has(&r, "ready");
	ck_assert_output_has(&r, "SIGQUIT: quit");
	ck_assert_output_has(&r, "goroutine 1 [");
	ck_assert_output_has(&r, "[forever]:");
	ck_assert_output_has(&r, "sleeper_for_dump");
}
END_TEST

START_TEST(stack_overflow_names_goroutine)
{
	run_child("stack_overflow", NULL, &r);
	ck_assert_exit_status(&r, 2);
	ck_assert_output_has(&r, "fatal error: stack overflow");
	long long id = 0;
	const char *p = strstr(r.out, "overflowing goroutine ");
	ck_assert_ptr_nonnull(p);
	id = atoll(p + strlen("overflowing goroutine "));
	char want[64];
	snprintf(want, sizeof want, "goroutine %lld stack overflow", id);
	ck_assert_output_has(&r, want);
}
END_TEST

START_TEST(schedtrace_prints_sched_lines)
{
	static const char *const env[] = { "GOSHIM_DEBUG=schedtrace=50", "GOMAXPROCS=2", NULL };
	run_child("schedtrace", env, &r);
	ck_assert_exit_status(&r, 0);
	ck_assert_output_has(&r, "SCHED ");
	ck_assert_output_has(&r, "gomaxprocs=2 idleprocs=");
	static const char *const env2[] = { "GOSHIM_DEBUG=schedtrace=50,scheddetail=1", NULL };
	run_child("schedtrace", env2, &r);
	ck_assert_exit_status(&r, 0);
	ck_assert_output_has(&r, "  P0: status=");
	ck_assert_output_has(&r, "  M0: p=");
}
END_TEST

START_TEST(gomaxprocs_env)
{
	static const char *const good[] = { "GOMAXPROCS=3", NULL };
	run_child("print_maxprocs", good, &r);
	ck_assert_exit_status(&r, 0);
	ck_assert_output_has(&r, "maxprocs=3");
	static const char *const bad[] = { "GOMAXPROCS=abc", NULL };
	run_child("print_maxprocs", bad, &r);
	ck_assert_exit_status(&r, 0);
	ck_assert_output_has(&r, "invalid GOMAXPROCS=\"abc\"");
	static const char *const zero[] = { "GOMAXPROCS=0", NULL };
	run_child("print_maxprocs", zero, &r);
	ck_assert_output_has(&r, "invalid GOMAXPROCS=\"0\"");
}
END_TEST

static Suite *debug_suite(void)
{
	Suite *s = suite_create("debug");
	TCase *tc = tcase_create("fatal");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, deadlock_is_fatal);
	tcase_add_test(tc, goexit_from_main_alone);
	tcase_add_test(tc, goexit_from_main_lets_others_run);
	tcase_add_test(tc, fatal_handler_sees_message);
	tcase_add_test(tc, sigquit_dumps_goroutines);
	tcase_add_test(tc, stack_overflow_names_goroutine);
	tcase_add_test(tc, schedtrace_prints_sched_lines);
	tcase_add_test(tc, gomaxprocs_env);
	suite_add_tcase(s, tc);
	return s;
}

int main(int argc, char **argv)
{
	return test_main(argc, argv, debug_suite, scenarios);
}
