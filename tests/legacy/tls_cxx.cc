// C++ runtime state per thread: thread_local objects (constructed on first
// use, destroyed at thread exit), exception handling (the caught-exception
// stack, `throw;`, std::uncaught_exceptions, std::exception_ptr) across
// blocking calls, std::mutex / std::condition_variable / std::shared_mutex.
// The kernel thread under each thread_local check is recorded and the moves
// counted: natively none; preloaded at GOMAXPROCS=2 there must be some, or
// the checks proved nothing (LD_PRELOAD and GOMAXPROCS are read for that
// one check; the output is the same either way).
// Plain std::thread code; see legacy.h for the conventions.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <shared_mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>
#include <cstring>
#include <sys/syscall.h>
#include <unistd.h>

#define FAIL(...)                                 \
	do {                                      \
		std::printf("FAIL: " __VA_ARGS__); \
		std::printf("\n");                \
		std::fflush(stdout);              \
		_exit(1);                         \
	} while (0)
#define CHECK(cond)                                                          \
	do {                                                                 \
		if (!(cond))                                                 \
			FAIL("%s:%d: %s", __FILE__, __LINE__, #cond);        \
	} while (0)

static const int NTHREADS = 1000;	// even: 2k and 2k+1 are partners
static std::atomic<long> moves{0};	// checks on another kernel thread than the last

static std::atomic<int> constructed{0}, destructed{0}, live_max{0}, live{0};

struct Tracker {
	int owner = -1;
	std::uintptr_t self;
	Tracker()
	{
		self = reinterpret_cast<std::uintptr_t>(this);
		constructed++;
		int l = ++live;
		int m = live_max.load();
		while (l > m && !live_max.compare_exchange_weak(m, l))
			;
	}
	~Tracker()
	{
		if (self != reinterpret_cast<std::uintptr_t>(this))
			FAIL("thread_local object destroyed at another address");
		destructed++;
		live--;
	}
};

static thread_local Tracker tracker;
static thread_local int tl_counter = 1000;	// dynamic-free initializer

// Partners alternate through one mutex + condition_variable.
struct Pair {
	std::mutex m;
	std::condition_variable cv;
	int turn = 0;
};
static Pair pairs[NTHREADS / 2];

static void handoff(int idx)
{
	Pair &p = pairs[idx / 2];
	int me = idx & 1;
	std::unique_lock<std::mutex> lk(p.m);
	p.cv.wait(lk, [&] { return p.turn == me; });
	p.turn = !me;
	p.cv.notify_one();
}

struct Err {
	int v;
};

static std::atomic<int> guard_saw_one{0};

struct UnwindGuard {
	int idx;
	~UnwindGuard()
	{
		// Runs during unwinding: exactly one uncaught exception in this thread,
		// even while the partner is unwinding too, and after blocking.
		if (std::uncaught_exceptions() != 1)
			FAIL("thread %d: uncaught_exceptions %d in an unwinding destructor", idx,
			     std::uncaught_exceptions());
		handoff(idx);
		if (std::uncaught_exceptions() != 1)
			FAIL("thread %d: uncaught_exceptions %d after blocking while unwinding", idx,
			     std::uncaught_exceptions());
		guard_saw_one++;
	}
};

__attribute__((noinline)) static void throw_through_guard(int idx)
{
	UnwindGuard g{idx};
	throw std::runtime_error("unwound " + std::to_string(idx));
}

static std::exception_ptr captured[NTHREADS];
static std::mutex counter_mutex;
static long counter;

static void worker(int idx)
{
	// thread_local: constructed here, in this thread, on first use.
	if (tracker.owner != -1 || tl_counter != 1000)
		FAIL("thread %d: thread_local state not fresh", idx);
	tracker.owner = idx;
	tl_counter += idx;
	std::uintptr_t where = reinterpret_cast<std::uintptr_t>(&tracker);
	long kernel_tid = syscall(SYS_gettid);

	for (int r = 0; r < 5; r++) {
		try {
			throw Err{idx};
		} catch (const Err &outer) {
			handoff(idx);	// block while handling an exception
			try {
				throw Err{idx + 100000};
			} catch (const Err &inner) {
				handoff(idx);
				if (inner.v != idx + 100000)
					FAIL("thread %d: nested exception value %d", idx, inner.v);
			}
			if (!std::current_exception())
				FAIL("thread %d: no current exception in a handler", idx);
			try {
				throw;	// the outer one again
			} catch (const Err &again) {
				if (again.v != idx || &again != &outer)
					FAIL("thread %d: throw; rethrew %d, not its own exception", idx,
					     again.v);
			}
		}
		if (std::current_exception())
			FAIL("thread %d: current exception outside any handler", idx);

		try {
			throw_through_guard(idx);
		} catch (const std::runtime_error &e) {
			if (std::string(e.what()) != "unwound " + std::to_string(idx))
				FAIL("thread %d: caught '%s'", idx, e.what());
		}
		if (std::uncaught_exceptions() != 0)
			FAIL("thread %d: uncaught_exceptions not 0 after the catch", idx);

		for (int i = 0; i < 200; i++) {
			std::lock_guard<std::mutex> lk(counter_mutex);
			counter++;
		}
		if (tracker.owner != idx || reinterpret_cast<std::uintptr_t>(&tracker) != where ||
		    tl_counter != 1000 + idx)
			FAIL("thread %d: thread_local changed across blocking calls", idx);
		long tid = syscall(SYS_gettid);
		if (tid != kernel_tid)
			moves++;
		kernel_tid = tid;
	}

	try {
		throw std::logic_error("from thread " + std::to_string(idx));
	} catch (...) {
		captured[idx] = std::current_exception();
	}
}

// std::shared_mutex: all readers inside at once, writers alone.
static void shared_mutex_checks()
{
	const int NR = 8, NW = 4, ITER = 2000;
	std::shared_mutex sm;
	std::mutex m;
	std::condition_variable cv;
	int inside = 0;

	std::vector<std::thread> ts;
	for (int i = 0; i < NR; i++)
		ts.emplace_back([&] {
			std::shared_lock<std::shared_mutex> rl(sm);
			std::unique_lock<std::mutex> lk(m);
			inside++;
			cv.notify_all();
			// Only returns if all NR readers hold the shared lock together.
			cv.wait(lk, [&] { return inside == NR; });
		});
	for (auto &t : ts)
		t.join();
	ts.clear();
	std::printf("std::shared_mutex: %d readers held it at once\n", NR);

	std::atomic<int> readers{0}, writers{0}, bad{0};
	long value = 0;
	for (int i = 0; i < NW; i++)
		ts.emplace_back([&] {
			for (int k = 0; k < ITER; k++) {
				std::unique_lock<std::shared_mutex> wl(sm);
				if (writers.fetch_add(1) != 0 || readers.load() != 0)
					bad++;
				value++;
				writers.fetch_sub(1);
				if (k % 64 == 0) {
					wl.unlock();
					std::this_thread::yield();
				}
			}
		});
	for (int i = 0; i < NR; i++)
		ts.emplace_back([&] {
			for (int k = 0; k < ITER; k++) {
				std::shared_lock<std::shared_mutex> rl(sm);
				readers++;
				if (writers.load() != 0)
					bad++;
				readers--;
			}
		});
	for (auto &t : ts)
		t.join();
	if (bad.load() != 0)
		FAIL("std::shared_mutex: %d exclusion violations", bad.load());
	if (value != NW * ITER)
		FAIL("std::shared_mutex: %ld writes, want %d", value, NW * ITER);
	std::printf("std::shared_mutex: %d writers x %d exclusive, %d readers never saw a writer\n",
		    NW, ITER, NR);

	std::shared_mutex sm2;
	sm2.lock();
	bool got = true;
	std::thread([&] { got = sm2.try_lock_shared(); }).join();
	CHECK(!got);
	sm2.unlock();
	sm2.lock_shared();
	std::thread([&] { got = sm2.try_lock(); }).join();
	CHECK(!got);
	std::thread([&] {
		got = sm2.try_lock_shared();
		if (got)
			sm2.unlock_shared();
	}).join();
	CHECK(got);
	sm2.unlock_shared();
	std::printf("std::shared_mutex try_lock_shared fails while exclusively held, "
		    "try_lock fails while shared\n");
}

int main()
{
	alarm(60);
	std::setvbuf(stdout, nullptr, _IOLBF, 0);

	std::vector<std::thread> ts;
	for (int i = 0; i < NTHREADS; i++)
		ts.emplace_back(worker, i);
	for (auto &t : ts)
		t.join();

	if (constructed.load() != NTHREADS || destructed.load() != NTHREADS)
		FAIL("thread_local: %d constructed, %d destroyed, want %d each", constructed.load(),
		     destructed.load(), NTHREADS);
	if (live_max.load() < 1)
		FAIL("thread_local: no object was ever alive");
	const char *pre = std::getenv("LD_PRELOAD"), *procs = std::getenv("GOMAXPROCS");
	bool preloaded = pre && std::strstr(pre, "libgoshim");
	if (!preloaded && moves.load() != 0)
		FAIL("natively, threads moved between kernel threads %ld times", moves.load());
	if (preloaded && procs && std::strcmp(procs, "2") == 0 && moves.load() == 0)
		FAIL("preloaded at GOMAXPROCS=2, no thread resumed its thread_local checks on "
		     "another kernel thread");
	std::printf("%d std::threads: each thread_local constructed in and destroyed with its "
		    "thread (%d/%d)\n", NTHREADS, constructed.load(), destructed.load());
	std::printf("nested try/catch, throw; and unwinding destructors across blocking "
		    "hand-offs: %d unwinding destructors saw exactly one uncaught exception\n",
		    guard_saw_one.load());
	if (counter != (long)NTHREADS * 5 * 200)
		FAIL("std::mutex counter %ld", counter);
	std::printf("std::mutex: %ld increments, none lost\n", counter);

	for (int i = 0; i < NTHREADS; i++) {
		try {
			std::rethrow_exception(captured[i]);
		} catch (const std::logic_error &e) {
			if (std::string(e.what()) != "from thread " + std::to_string(i))
				FAIL("exception_ptr from thread %d carried '%s'", i, e.what());
		}
		captured[i] = nullptr;
	}
	std::printf("std::exception_ptr from each thread rethrown in main\n");

	shared_mutex_checks();
	std::printf("tls_cxx: all checks passed\n");
	return 0;
}
