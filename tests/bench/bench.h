/* Shared helpers of the benchmark programs (scripts/bench).
 *
 * Protocol: a program takes its size (iteration count) as argv[1] and prints
 * one line per measurement on stdout:  RESULT <metric> <value> <unit>
 * scripts/bench knows per unit whether lower (ns/op, us, ms, KiB) or higher
 * (ops/s) is better. Errors go to stderr, with a nonzero exit status. */
#ifndef BENCH_H
#define BENCH_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static inline int64_t bench_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* argv[1] as a positive count, or def when absent; exits 2 on garbage. */
static inline long bench_size(int argc, char **argv, long def)
{
	if (argc < 2)
		return def;
	char *end;
	errno = 0;
	long n = strtol(argv[1], &end, 10);
	if (errno || *end || n <= 0) {
		fprintf(stderr, "%s: size must be a positive integer, not '%s'\n", argv[0], argv[1]);
		exit(2);
	}
	return n;
}

static inline void bench_result(const char *metric, double value, const char *unit)
{
	printf("RESULT %s %.3f %s\n", metric, value, unit);
	fflush(stdout);
}

/* Sleep lengths of timer_p99: uniform in [1 ms, 50 ms], from a fixed
 * sequence (splitmix64 of the index), the same in every implementation
 * written in C. */
static inline int64_t bench_sleep_ns(long i)
{
	uint64_t z = (uint64_t)i * 0x9e3779b97f4a7c15u + 0x9e3779b97f4a7c15u;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	z ^= z >> 31;
	return 1000000 + (int64_t)(z % 49000001u);
}

static inline int bench_cmp_i64_(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/* The p-th percentile (1 <= p <= 100; nearest rank: the ceil(p n / 100)-th
 * smallest) of v[0..n-1], n >= 1; sorts v. */
static inline int64_t bench_percentile(int64_t *v, long n, int p)
{
	qsort(v, (size_t)n, sizeof *v, bench_cmp_i64_);
	long k = ((long)p * n + 99) / 100;
	return v[k < 1 ? 0 : k - 1];
}

#define BENCH_DIE(...) do { fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); exit(1); } while (0)

#endif
