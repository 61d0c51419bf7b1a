/* switch, native floor: swapcontext(3) ping-pong between the main context
 * and one other, N switches each way — libc's user-level switch (it saves
 * and restores the signal mask, one syscall per switch).
 * RESULT switch <ns per swapcontext> ns/op */
#include <ucontext.h>

#include "bench.h"

static ucontext_t main_ctx, co_ctx;
static long rounds;

static void co(void)
{
	for (;;)
		swapcontext(&co_ctx, &main_ctx);
}

int main(int argc, char **argv)
{
	rounds = bench_size(argc, argv, 1000000);
	static char stack[64 * 1024];
	if (getcontext(&co_ctx))
		BENCH_DIE("getcontext: %s", strerror(errno));
	co_ctx.uc_stack.ss_sp = stack;
	co_ctx.uc_stack.ss_size = sizeof stack;
	co_ctx.uc_link = NULL;
	makecontext(&co_ctx, co, 0);
	int64_t t0 = bench_now_ns();
	for (long i = 0; i < rounds; i++)
		swapcontext(&main_ctx, &co_ctx);
	int64_t t1 = bench_now_ns();
	bench_result("switch", (double)(t1 - t0) / (2.0 * rounds), "ns/op");
	return 0;
}
