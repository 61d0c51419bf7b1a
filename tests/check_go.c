/* The goroutine API of goshim.h: go_spawn, go(), go_self, go_count,
 * go_yield, go_exit, go_maxprocs, go_lock_thread, adoption of foreign
 * threads. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>

#include "goshim.h"
#include "testutil.h"

static void wait_for(_Atomic int *counter, int want)
{
	while (atomic_load(counter) < want)
		go_yield();
}

static void nop(void *arg) { (void)arg; }

/* Waits until only the main goroutine is left (earlier tests' goroutines
 * may still be finishing) and returns that count. */
static int settled_base(void)
{
	while (go_count() != 1)
		go_yield();
	return 1;
}

START_TEST(spawn_null_is_einval)
{
	ck_assert_int_eq(go_spawn(NULL, NULL), EINVAL);
	ck_assert_int_eq(go_spawn_ffi(NULL, 0, NULL), EINVAL);
}
END_TEST

static _Atomic int ran;
static void incr(void *arg) { atomic_fetch_add(&ran, (int)(intptr_t)arg); }

START_TEST(spawn_runs_each_once)
{
	atomic_store(&ran, 0);
	for (int i = 0; i < 1000; i++)
		ck_assert_int_eq(go_spawn(incr, (void *)(intptr_t)1), 0);
	wait_for(&ran, 1000);
	for (int i = 0; i < 100; i++)
		go_yield();
	ck_assert_int_eq(atomic_load(&ran), 1000);
}
END_TEST

/* go(): every argument arrives with its type and value. */
static _Atomic int mixed_ok;
static void mixed(int i, long l, double d, float f, void *p, char c, unsigned char uc,
                  short s, unsigned long long ull, const char *str, signed char sc,
                  unsigned short us, _Bool b, unsigned int ui, long long ll, double d2)
{
	int ok = i == -7 && l == 1234567890123L && d == 3.25 && f == 1.5f &&
	         p == (void *)&mixed_ok && c == 'x' && uc == 200 && s == -300 &&
	         ull == 18446744073709551615ull && strcmp(str, "hello") == 0 && sc == -5 &&
	         us == 65000 && b == 1 && ui == 4000000000u && ll == -9000000000000LL && d2 == -0.125;
	atomic_store(&mixed_ok, ok ? 1 : -1);
}

START_TEST(go_passes_mixed_arguments)
{
	atomic_store(&mixed_ok, 0);
	const char *str = "hello";
	ck_assert_int_eq(go(mixed, -7, 1234567890123L, 3.25, 1.5f, (void *)&mixed_ok, (char)'x',
	                    (unsigned char)200, (short)-300, 18446744073709551615ull, str,
	                    (signed char)-5, (unsigned short)65000, (_Bool)1, 4000000000u,
	                    -9000000000000LL, -0.125), 0);
	while (atomic_load(&mixed_ok) == 0)
		go_yield();
	ck_assert_int_eq(atomic_load(&mixed_ok), 1);
}
END_TEST

static _Atomic int noargs_ran;
static void noargs(void) { atomic_store(&noargs_ran, 1); }

START_TEST(go_with_no_arguments)
{
	ck_assert_int_eq(go(noargs), 0);
	wait_for(&noargs_ran, 1);
}
END_TEST

/* Go evaluates the arguments of a go statement at the go statement. */
static _Atomic int copied_value;
static void store_value(int v) { atomic_store(&copied_value, v); }

START_TEST(go_copies_arguments_at_spawn)
{
	int v = 41;
	ck_assert_int_eq(go(store_value, v), 0);
	v = 99;
	while (atomic_load(&copied_value) == 0)
		go_yield();
	ck_assert_int_eq(atomic_load(&copied_value), 41);
	(void)v;
}
END_TEST

static int64_t ids[64];
static _Atomic int ids_done;
static void record_id(void *arg)
{
	ids[(intptr_t)arg] = go_self();
	atomic_fetch_add(&ids_done, 1);
}

START_TEST(self_ids_positive_and_unique)
{
	int64_t me = go_self();
	ck_assert_int_gt(me, 0);
	ck_assert_int_eq(go_self(), me);
	atomic_store(&ids_done, 0);
	for (intptr_t i = 0; i < 64; i++)
		go_spawn(record_id, (void *)i);
	wait_for(&ids_done, 64);
	for (int i = 0; i < 64; i++) {
		ck_assert_int_gt(ids[i], 0);
		ck_assert_int_ne(ids[i], me);
		for (int j = 0; j < i; j++)
			ck_assert_int_ne(ids[i], ids[j]);
	}
}
END_TEST

static _Atomic int release_parked;
static _Atomic int started;
static void wait_release(void *arg)
{
	(void)arg;
	atomic_fetch_add(&started, 1);
	while (!atomic_load(&release_parked))
		go_yield();
}

START_TEST(count_tracks_goroutines)
{
	int base = settled_base(); /* main is a goroutine */
	atomic_store(&release_parked, 0);
	atomic_store(&started, 0);
	for (int i = 0; i < 50; i++)
		go_spawn(wait_release, NULL);
	/* created and not yet started count too, as in Go */
	ck_assert_int_eq(go_count(), base + 50);
	wait_for(&started, 50);
	ck_assert_int_eq(go_count(), base + 50);
	atomic_store(&release_parked, 1);
	while (go_count() != base)
		go_yield();
	ck_assert_int_eq(go_count(), base);
}
END_TEST

/* runtime.Gosched at GOMAXPROCS=1: two goroutines alternate. */
static char trace[64];
static _Atomic int tracelen;
static _Atomic int alternators_done;
static void alternate(void *arg)
{
	char c = (char)(intptr_t)arg;
	for (int i = 0; i < 5; i++) {
		trace[atomic_fetch_add(&tracelen, 1)] = c;
		go_yield();
	}
	atomic_fetch_add(&alternators_done, 1);
}

static void alternate_main(void *arg)
{
	(void)arg;
	go_spawn(alternate, (void *)(intptr_t)'a');
	go_spawn(alternate, (void *)(intptr_t)'b');
}

START_TEST(yield_alternates_on_one_p)
{
	int old = go_maxprocs(1);
	atomic_store(&tracelen, 0);
	atomic_store(&alternators_done, 0);
	/* Spawned from one goroutine so that both land on the same P. */
	go_spawn(alternate_main, NULL);
	wait_for(&alternators_done, 2);
	go_maxprocs(old);
	trace[10] = 0;
	/* Each yield lets the other run: the two strictly alternate. */
	for (int i = 1; i < 10; i++)
		ck_assert_msg(trace[i] != trace[i - 1], "trace %s", trace);
}
END_TEST

START_TEST(maxprocs_query_and_set)
{
	int cur = go_maxprocs(0);
	ck_assert_int_ge(cur, 1);
	ck_assert_int_eq(go_maxprocs(-3), cur);
	ck_assert_int_eq(go_maxprocs(3), cur);
	ck_assert_int_eq(go_maxprocs(0), 3);
	ck_assert_int_eq(go_maxprocs(cur), 3);
	ck_assert_int_eq(go_maxprocs(0), cur);
}
END_TEST

/* go_exit ends the goroutine; nothing after it runs. */
static _Atomic int after_exit, before_exit;
static void exits_early(void *arg)
{
	(void)arg;
	atomic_store(&before_exit, 1);
	go_exit();
	atomic_store(&after_exit, 1);
}

START_TEST(exit_ends_goroutine)
{
	int base = settled_base();
	go_spawn(exits_early, NULL);
	wait_for(&before_exit, 1);
	while (go_count() != base)
		go_yield();
	ck_assert_int_eq(atomic_load(&after_exit), 0);
}
END_TEST

/* LockOSThread: a locked goroutine stays on its thread across yields,
 * while others keep moving; locks nest. */
static _Atomic int lock_ok, lock_done;
static void locked_worker(void *arg)
{
	(void)arg;
	go_lock_thread();
	go_lock_thread();
	go_unlock_thread(); /* still locked once */
	long tid = syscall(SYS_gettid);
	int ok = 1;
	for (int i = 0; i < 200; i++) {
		go_yield();
		if (syscall(SYS_gettid) != tid)
			ok = 0;
	}
	go_unlock_thread();
	atomic_store(&lock_ok, ok);
	atomic_store(&lock_done, 1);
}

static _Atomic int churn_stop;
static void churn(void *arg)
{
	(void)arg;
	while (!atomic_load(&churn_stop))
		go_yield();
}

START_TEST(lock_thread_keeps_thread)
{
	int old = go_maxprocs(2);
	atomic_store(&churn_stop, 0);
	for (int i = 0; i < 4; i++)
		go_spawn(churn, NULL);
	go_spawn(locked_worker, NULL);
	wait_for(&lock_done, 1);
	atomic_store(&churn_stop, 1);
	go_maxprocs(old);
	ck_assert_int_eq(atomic_load(&lock_ok), 1);
}
END_TEST

/* A thread the runtime does not know becomes a goroutine at its first
 * call, and stops being one when it exits. */
static _Atomic int foreign_ran;
static int64_t foreign_id;
static void *foreign_thread(void *arg)
{
	(void)arg;
	foreign_id = go_self();
	go_spawn(incr, (void *)(intptr_t)0);
	for (int i = 0; i < 10; i++)
		go_yield();
	if (go_spawn(nop, NULL) == 0)
		atomic_store(&foreign_ran, 1);
	return NULL;
}

START_TEST(foreign_thread_is_adopted)
{
	int base = settled_base();
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, foreign_thread, NULL), 0);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_int_eq(atomic_load(&foreign_ran), 1);
	ck_assert_int_gt(foreign_id, 0);
	ck_assert_int_ne(foreign_id, go_self());
	while (go_count() != base)
		go_yield();
}
END_TEST

static Suite *go_suite(void)
{
	Suite *s = suite_create("go");
	TCase *tc = tcase_create("api");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, spawn_null_is_einval);
	tcase_add_test(tc, spawn_runs_each_once);
	tcase_add_test(tc, go_passes_mixed_arguments);
	tcase_add_test(tc, go_with_no_arguments);
	tcase_add_test(tc, go_copies_arguments_at_spawn);
	tcase_add_test(tc, self_ids_positive_and_unique);
	tcase_add_test(tc, count_tracks_goroutines);
	tcase_add_test(tc, yield_alternates_on_one_p);
	tcase_add_test(tc, maxprocs_query_and_set);
	tcase_add_test(tc, exit_ends_goroutine);
	tcase_add_test(tc, lock_thread_keeps_thread);
	tcase_add_test(tc, foreign_thread_is_adopted);
	suite_add_tcase(s, tc);
	return s;
}

int main(int argc, char **argv)
{
	return test_main(argc, argv, go_suite, NULL);
}
