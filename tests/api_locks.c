/* pthread locks taken by go() goroutines (a program linked to libgoshim):
 * each goroutine is its own owner. go() goroutines run on their M's glibc
 * identity, so two of them on one M share its tid; the owner checks of
 * recursive and errorcheck mutexes and of rwlocks must still tell them
 * apart. At GOMAXPROCS=1 the holder and the prober run on one M; the
 * round is repeated, and at least one round must have had them there
 * (else the test proved nothing). Not built in sanitizer builds (they pass
 * pthread calls through to glibc, whose owner is the M's tid). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "goshim.h"

#define ROUNDS 20

static pthread_mutex_t rec, ec;
static pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
static go_chan *locked, *release, *done, *round_over;
static pthread_t holder_self;
static int same_m;

static void fail(const char *what, int got, int want)
{
	printf("FAIL: %s: %d, want %d\n", what, got, want);
	exit(1);
}

static void holder(void)
{
	int one = 1;
	if (pthread_mutex_lock(&rec) || pthread_mutex_lock(&ec) || pthread_rwlock_wrlock(&rw))
		fail("holder's locks", -1, 0);
	holder_self = pthread_self();
	go_chan_send(locked, &one);
	go_chan_recv(release, &one);
	if (pthread_mutex_unlock(&rec) || pthread_mutex_unlock(&ec) || pthread_rwlock_unlock(&rw))
		fail("holder's unlocks", -1, 0);
	go_chan_send(done, &one);
}

static void prober(void)
{
	int one = 1;
	if (pthread_equal(pthread_self(), holder_self))
		same_m++;
	int r = pthread_mutex_trylock(&rec);
	if (r != EBUSY)
		fail("trylock of another goroutine's recursive mutex", r, EBUSY);
	r = pthread_mutex_unlock(&ec);
	if (r != EPERM)
		fail("unlock of another goroutine's errorcheck mutex", r, EPERM);
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	t.tv_nsec += 2000000;
	if (t.tv_nsec >= 1000000000L) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000L;
	}
	r = pthread_rwlock_timedwrlock(&rw, &t);
	if (r != ETIMEDOUT)
		fail("timed wrlock of another goroutine's rwlock", r, ETIMEDOUT);
	go_chan_send(release, &one);
	go_chan_send(done, &one);
}

/* One round, away from main (locked to its own thread). */
static void round_of_two(void)
{
	int one;
	go(holder);
	go_chan_recv(locked, &one);
	go(prober);
	go_chan_recv(done, &one);
	go_chan_recv(done, &one);
	go_chan_send(round_over, &one);
}

int main(void)
{
	go_maxprocs(1);
	pthread_mutexattr_t a;
	pthread_mutexattr_init(&a);
	pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&rec, &a);
	pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
	pthread_mutex_init(&ec, &a);
	locked = go_chan_make(sizeof(int), 0);
	release = go_chan_make(sizeof(int), 0);
	done = go_chan_make(sizeof(int), 0);
	round_over = go_chan_make(sizeof(int), 0);
	for (int i = 0; i < ROUNDS; i++) {
		int one;
		go(round_of_two);
		go_chan_recv(round_over, &one);
	}
	if (same_m == 0) {
		printf("FAIL: in %d rounds the two goroutines never shared an M\n", ROUNDS);
		return 1;
	}
	printf("api_locks: %d rounds passed, %d with both goroutines on one M\n", ROUNDS, same_m);
	return 0;
}
