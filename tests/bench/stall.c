/*
 * stall: the worst delay resolver calls inflict on other threads. size
 * threads each call getaddrinfo("localhost") and then sleep 1 ms, over
 * and over (the machine is not saturated), while two threads pass one
 * byte back and forth over a socketpair for 2 s; prints the longest round
 * trip:
 *   RESULT resolver_stall <us> us
 * A plain pthread program: run natively and under LD_PRELOAD=libgoshim.so,
 * where getaddrinfo runs as a system call with handoff, so a blocked
 * resolver holds up the echo for at most a sysmon retake.
 */
#define _GNU_SOURCE
#include <netdb.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static atomic_bool stop;
static int sv[2];

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void *resolver(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop)) {
		struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
		if (getaddrinfo("localhost", "80", &hints, &res) != 0) {
			fprintf(stderr, "stall: getaddrinfo(localhost) failed\n");
			exit(1);
		}
		freeaddrinfo(res);
		usleep(1000);
	}
	return NULL;
}

static void *echo(void *arg)
{
	(void)arg;
	char c;
	while (read(sv[1], &c, 1) == 1 && c)
		if (write(sv[1], &c, 1) != 1)
			break;
	return NULL;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 100;
	if (n < 1 || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) {
		fprintf(stderr, "usage: stall NTHREADS\n");
		return 2;
	}
	pthread_t e, *r = calloc((size_t)n, sizeof *r);
	pthread_create(&e, NULL, echo, NULL);
	for (int i = 0; i < n; i++)
		pthread_create(&r[i], NULL, resolver, NULL);
	double worst = 0, end = now_us() + 2e6;
	long trips = 0;
	for (double t = now_us(); t < end; t = now_us(), trips++) {
		char c = 1;
		if (write(sv[0], &c, 1) != 1 || read(sv[0], &c, 1) != 1) {
			fprintf(stderr, "stall: echo failed\n");
			return 1;
		}
		double rt = now_us() - t;
		if (rt > worst)
			worst = rt;
	}
	atomic_store(&stop, true);
	char z = 0;
	if (write(sv[0], &z, 1) != 1)
		return 1;
	pthread_join(e, NULL);
	for (int i = 0; i < n; i++)
		pthread_join(r[i], NULL);
	fprintf(stderr, "stall: %ld round trips, %d resolver threads\n", trips, n);
	printf("RESULT resolver_stall %.1f us\n", worst);
	return 0;
}
