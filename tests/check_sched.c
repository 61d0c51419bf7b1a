/* The scheduler under load: many goroutines, both Ps used, a goroutine
 * stuck in foreign code does not hold up its P's other goroutines,
 * GOMAXPROCS changes while goroutines run, park/ready of thousands. */
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "goshim.h"
#include "runtime/runtime.h"
#include "testutil.h"

/* ThreadSanitizer gives each goroutine a fiber and allows 8128 live ones,
 * and qemu-user keeps state per guest page of every stack reservation: the
 * TSan build, and runs with TEST_SCALE=D (divide by D), use the same tests
 * at a smaller scale. */
static int scale(int n)
{
	const char *d = getenv("TEST_SCALE");
	if (d && atoi(d) > 1)
		n /= atoi(d);
#ifdef GOSHIM_TSAN
	if (n / 25 < 4000)
		n /= 25;
	else
		n = 4000;
#endif
	return n;
}
#define SCALE(n) scale(n)

static void wait_for(_Atomic int *counter, int want)
{
	while (atomic_load(counter) < want)
		go_yield();
}

static void settle_count(int base)
{
	while (go_count() != base)
		go_yield();
}

/* Waits until only the main goroutine is left and returns that count. */
static int settled_base(void)
{
	settle_count(1);
	return 1;
}

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* 100,000 goroutines each do some work and yield; all complete. They
 * first wait (yielding) until all exist, so that there is work for every
 * P whatever the timing. */
static _Atomic int finished;
static _Atomic int start_work;
static _Atomic uint64_t checksum;
static void worker(void *arg)
{
	uint64_t x = (uint64_t)(uintptr_t)arg;
	while (!atomic_load(&start_work))
		go_yield();
	for (int r = 0; r < 3; r++) {
		for (int i = 0; i < 50; i++)
			x = x * 6364136223846793005ull + 1442695040888963407ull;
		go_yield();
	}
	atomic_fetch_add(&checksum, (uint64_t)(uintptr_t)arg);
	atomic_fetch_add(&finished, 1);
	(void)x;
}

static void many_goroutines(int procs)
{
	int old = go_maxprocs(procs);
	int base = settled_base();
	uint64_t ran0[2] = { atomic_load(&allp[0]->nrun), procs > 1 ? atomic_load(&allp[1]->nrun) : 0 };
	atomic_store(&finished, 0);
	atomic_store(&start_work, 0);
	atomic_store(&checksum, 0);
	const int n = SCALE(100000);
	for (int i = 0; i < n; i++)
		ck_assert_int_eq(go_spawn(worker, (void *)(uintptr_t)i), 0);
	atomic_store(&start_work, 1);
	wait_for(&finished, n);
	ck_assert_uint_eq(atomic_load(&checksum), (uint64_t)n * (n - 1) / 2);
	settle_count(base);
	if (procs > 1) {
		/* both Ps ran goroutines */
		ck_assert_uint_gt(atomic_load(&allp[0]->nrun) - ran0[0], 0);
		ck_assert_uint_gt(atomic_load(&allp[1]->nrun) - ran0[1], 0);
	}
	go_maxprocs(old);
}

START_TEST(hundred_thousand_goroutines_p1) { many_goroutines(1); }
END_TEST
START_TEST(hundred_thousand_goroutines_p2) { many_goroutines(2); }
END_TEST

/* Spawned from inside a goroutine: the spawner's P fills and the other P
 * must steal. */
static _Atomic int stolen_done;
static _Atomic int spawned_all;
static void spin_a_little(void *arg)
{
	(void)arg;
	while (!atomic_load(&spawned_all))
		go_yield();
	volatile uint64_t x = 0;
	for (int i = 0; i < 20000; i++)
		x += (uint64_t)i;
	atomic_fetch_add(&stolen_done, 1);
}
static void spawner(void *arg)
{
	(void)arg;
	for (int i = 0; i < 2000; i++)
		go_spawn(spin_a_little, NULL);
	atomic_store(&spawned_all, 1);
}

START_TEST(idle_p_steals_work)
{
	int old = go_maxprocs(2);
	uint64_t r0 = atomic_load(&allp[0]->nrun), r1 = atomic_load(&allp[1]->nrun);
	atomic_store(&stolen_done, 0);
	atomic_store(&spawned_all, 0);
	go_spawn(spawner, NULL);
	wait_for(&stolen_done, 2000);
	ck_assert_uint_gt(atomic_load(&allp[0]->nrun) - r0, 1);
	ck_assert_uint_gt(atomic_load(&allp[1]->nrun) - r1, 1);
	go_maxprocs(old);
}
END_TEST

/* A goroutine spinning in plain C code (no runtime calls) does not stop
 * the other goroutines of its P at GOMAXPROCS=1: sysmon retakes the P
 * and another M runs them. The spinner spins until it sees them done;
 * the 5 s bound only keeps a broken runtime from hanging the suite. */
static _Atomic int others_done;
static _Atomic int spinner_saw_others;
static _Atomic int spinner_done;
static void spinner(void *arg)
{
	(void)arg;
	int64_t end = mono_ns() + 5000000000LL;
	while (mono_ns() < end) {
		if (atomic_load(&others_done) == 10) {
			atomic_store(&spinner_saw_others, 1);
			break;
		}
	}
	atomic_store(&spinner_done, 1);
}
static void other(void *arg)
{
	(void)arg;
	atomic_fetch_add(&others_done, 1);
}
static void start_spinner(void *arg)
{
	(void)arg;
	go_spawn(spinner, NULL);
	for (int i = 0; i < 10; i++)
		go_spawn(other, NULL);
	/* spinner runs next (runnext was the last spawned, so yield to
	 * whichever is first: the point is that the spinner holds the P) */
}

START_TEST(spinner_does_not_block_its_p)
{
	int old = go_maxprocs(1);
	uint32_t retaken0 = atomic_load(&allp[0]->retaken);
	atomic_store(&others_done, 0);
	atomic_store(&spinner_saw_others, 0);
	atomic_store(&spinner_done, 0);
	go_spawn(start_spinner, NULL);
	wait_for(&spinner_done, 1);
	ck_assert_int_eq(atomic_load(&spinner_saw_others), 1);
	ck_assert_uint_gt(atomic_load(&allp[0]->retaken), retaken0);
	go_maxprocs(old);
}
END_TEST

/* GOMAXPROCS goes 1 -> 2 -> 1 ... while goroutines run; nothing is lost. */
static _Atomic int resize_done;
static _Atomic long resize_steps;
static void resize_worker(void *arg)
{
	(void)arg;
	for (int i = 0; i < 100; i++) {
		atomic_fetch_add(&resize_steps, 1);
		go_yield();
	}
	atomic_fetch_add(&resize_done, 1);
}

START_TEST(maxprocs_changes_while_running)
{
	int old = go_maxprocs(1);
	int base = settled_base();
	atomic_store(&resize_done, 0);
	atomic_store(&resize_steps, 0);
	for (int i = 0; i < 1000; i++)
		go_spawn(resize_worker, NULL);
	int flips = 0;
	while (atomic_load(&resize_done) < 1000) {
		go_maxprocs(flips % 2 ? 1 : 2);
		flips++;
		go_yield();
	}
	ck_assert_int_gt(flips, 1);
	ck_assert_int_eq(atomic_load(&resize_steps), 100000);
	settle_count(base);
	go_maxprocs(old);
}
END_TEST

/* Two goroutines change GOMAXPROCS at the same time, over and over: each
 * stop-the-world must wait for the other's (Go's worldsema), not for the
 * other's P (which deadlocked both). */
static _Atomic int flippers_done;
static void flipper(void *arg)
{
	int a = (int)(intptr_t)arg;
	for (int i = 0; i < SCALE(2000); i++)
		go_maxprocs(i % 2 ? a : 3 - a);
	atomic_fetch_add(&flippers_done, 1);
}

START_TEST(concurrent_maxprocs_changes)
{
	int old = go_maxprocs(2);
	int base = settled_base();
	atomic_store(&flippers_done, 0);
	go_spawn(flipper, (void *)(intptr_t)1);
	go_spawn(flipper, (void *)(intptr_t)2);
	int64_t deadline = go_now() + 60LL * 1000000000;
	while (atomic_load(&flippers_done) < 2 && go_now() < deadline)
		go_yield();
	ck_assert_int_eq(atomic_load(&flippers_done), 2);
	settle_count(base);
	go_maxprocs(old);
}
END_TEST

/* A goroutine that polls in a loop of non-blocking runtime calls never
 * goes through the scheduler: at GOMAXPROCS=1 sysmon must take its P
 * (Go's preemption after 10 ms) so the goroutine it waits for runs.
 * go_yield is not called anywhere in the loop. */
static go_chan *poll_done;
static void poll_worker(void *arg)
{
	(void)arg;
	go_chan_close(poll_done);
}
static _Atomic int poll_loops_done;
static void poller(void *arg)
{
	(void)arg;
	poll_done = go_chan_make(0, 0);
	go_spawn(poll_worker, NULL); /* goes to runnext: only our P runs it */
	while (go_chan_tryrecv(poll_done, NULL) == GO_EMPTY)
		;
	go_chan_free(poll_done);
	atomic_fetch_add(&poll_loops_done, 1);
}

START_TEST(polling_loop_is_preempted_p1)
{
	int old = go_maxprocs(1);
	int base = settled_base();
	atomic_store(&poll_loops_done, 0);
	go_spawn(poller, NULL);
	int64_t deadline = go_now() + 30LL * 1000000000;
	while (atomic_load(&poll_loops_done) < 1 && go_now() < deadline)
		usleep(1000);
	ck_assert_int_eq(atomic_load(&poll_loops_done), 1);
	settle_count(base);
	go_maxprocs(old);
}
END_TEST

/* gopark / goready: 10,000 goroutines park, all are readied and finish. */
#define NPARK_MAX 10000
#define NPARK SCALE(NPARK_MAX)
static struct g *_Atomic parked[NPARK_MAX];
static _Atomic int nparked, npark_done;
static bool park_commit(struct g *gp, void *slot)
{
	atomic_store((struct g *_Atomic *)slot, gp);
	atomic_fetch_add(&nparked, 1);
	return true;
}
static void parker(void *arg)
{
	intptr_t i = (intptr_t)arg;
	runtime_enter();
	gopark(park_commit, (void *)&parked[i], waitReasonForever);
	runtime_leave();
	atomic_fetch_add(&npark_done, 1);
}

static void park_ready(int procs)
{
	int old = go_maxprocs(procs);
	int base = settled_base();
	atomic_store(&nparked, 0);
	atomic_store(&npark_done, 0);
	for (intptr_t i = 0; i < NPARK; i++) {
		atomic_store(&parked[i], NULL);
		go_spawn(parker, (void *)i);
	}
	wait_for(&nparked, NPARK);
	ck_assert_int_eq(atomic_load(&npark_done), 0);
	ck_assert_int_eq(go_count(), base + NPARK);
	runtime_enter();
	for (int i = 0; i < NPARK; i++)
		goready(atomic_load(&parked[i]));
	runtime_leave();
	wait_for(&npark_done, NPARK);
	settle_count(base);
	go_maxprocs(old);
}

START_TEST(park_ready_p1) { park_ready(1); }
END_TEST
START_TEST(park_ready_p2) { park_ready(2); }
END_TEST

/* sysmon takes Ps from goroutines in system calls while they take them
 * back (proc.c: p_take_syscall against exitsyscall_oldp's plain store).
 * Eight goroutines on 2 Ps each stay in a "system call" for 20-80 us,
 * long enough for sysmon to see one through a tick with work waiting, and
 * then, holding a P again, stamp it with their number and check the stamp
 * for a while: two Ms holding one P would overwrite each other's. */
#define RECLAIMERS 8
static _Atomic int reclaimers_done;
static _Atomic long p_stamp[2]; /* by P id, at GOMAXPROCS=2 */
static _Atomic long stamp_clashes;
static void reclaimer(void *arg)
{
	long me = (long)(intptr_t)arg + 1;
	uint32_t r = (uint32_t)me;
	int64_t end = mono_ns() + 300LL * 1000000 / (SCALE(100) < 100 ? 4 : 1);
	while (mono_ns() < end) {
		runtime_enter();
		entersyscall();
		r = r * 1103515245u + 12345u;
		int64_t until = mono_ns() + 20000 + (r >> 8) % 60000;
		while (mono_ns() < until)
			;
		exitsyscall();
		struct m *mp = getg()->m;
		struct p *pp = mp->p;
		if (pp->m != mp || atomic_load(&pp->status) != _Prunning)
			atomic_fetch_add(&stamp_clashes, 1);
		atomic_store(&p_stamp[pp->id], me);
		for (int i = 0; i < 1000; i++) {
			if (atomic_load(&p_stamp[pp->id]) != me) {
				atomic_fetch_add(&stamp_clashes, 1);
				break;
			}
		}
		runtime_leave();
	}
	atomic_fetch_add(&reclaimers_done, 1);
}

START_TEST(retake_races_reclaim_p2)
{
	int old = go_maxprocs(2);
	int base = settled_base();
	uint64_t retaken0 = atomic_load(&allp[0]->retaken) + atomic_load(&allp[1]->retaken);
	atomic_store(&reclaimers_done, 0);
	atomic_store(&stamp_clashes, 0);
	for (intptr_t i = 0; i < RECLAIMERS; i++)
		go_spawn(reclaimer, (void *)i);
	wait_for(&reclaimers_done, RECLAIMERS);
	ck_assert_int_eq(atomic_load(&stamp_clashes), 0);
	ck_assert_uint_gt(atomic_load(&allp[0]->retaken) + atomic_load(&allp[1]->retaken), retaken0);
	settle_count(base);
	go_maxprocs(old);
}
END_TEST

static Suite *sched_suite(void)
{
	Suite *s = suite_create("sched");
	TCase *tc = tcase_create("sched");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, hundred_thousand_goroutines_p1);
	tcase_add_test(tc, hundred_thousand_goroutines_p2);
	tcase_add_test(tc, idle_p_steals_work);
	tcase_add_test(tc, spinner_does_not_block_its_p);
	tcase_add_test(tc, maxprocs_changes_while_running);
	tcase_add_test(tc, concurrent_maxprocs_changes);
	tcase_add_test(tc, polling_loop_is_preempted_p1);
	tcase_add_test(tc, park_ready_p1);
	tcase_add_test(tc, park_ready_p2);
	tcase_add_test(tc, retake_races_reclaim_p2);
	suite_add_tcase(s, tc);
	return s;
}

int main(int argc, char **argv)
{
	return test_main(argc, argv, sched_suite, NULL);
}
