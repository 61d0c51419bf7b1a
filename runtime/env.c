/*
 * The environment the runtime reads at start-up, in the manner of Go's
 * runtime/runtime1.go (parsedebugvars: GODEBUG as a comma list of
 * key=value) and proc.go's schedinit (GOMAXPROCS).
 *
 *   GOMAXPROCS=N       a positive decimal integer; above 1024 it is clamped
 *                      to 1024, as go_maxprocs clamps (Go clamps to
 *                      _MaxGomaxprocs the same way)
 *   GOSHIM_STACK=SIZE  goroutine stack reservation, bytes or a K/M/G
 *                      suffix (powers of 1024), from 16K to 1G
 *   GOSHIM_DEBUG=LIST  schedtrace=MS, scheddetail=0|1, asyncpreempt=0|1,
 *                      interpose=0|1, membarrier=0|1 (0: no asymmetric
 *                      fences: a goroutine takes its P back from foreign
 *                      code with a CAS and a park fences, proc.c)
 *
 * Unlike Go, which ignores a malformed value silently, a value that is set
 * but wrong is reported on stderr (the program's author typed it and would
 * otherwise be left guessing), and the default is kept. An empty variable
 * counts as unset, as an empty GOMAXPROCS does in Go.
 *
 * Runs once, from schedinit, before any other thread of ours exists:
 * getenv is safe here, and the globals need no synchronisation for their
 * later readers (thread creation orders them).
 */
#include <stdlib.h>
#include <string.h>

#include "runtime/runtime.h"

#define MAX_GOMAXPROCS 1024
#define STACK_MIN ((size_t)16 << 10)
#define STACK_MAX ((size_t)1 << 30)
#define STACK_DEFAULT ((size_t)256 << 10)

int32_t env_gomaxprocs;                 /* 0: unset, the CPU count decides */
size_t env_stacksize = STACK_DEFAULT;
int64_t debug_schedtrace_ms;            /* 0: no SCHED lines */
bool debug_scheddetail;
bool debug_asyncpreempt;                /* off: foreign code is never signalled */
bool debug_exitstats;                   /* print the interposition count at exit */
bool debug_interpose = true;            /* blocking libc calls go through the runtime */
bool debug_membarrier = true;           /* asymmetric fences (proc.c) may use membarrier */

/* Parses s[0..n) as a decimal number without sign; false if it is not one
 * or does not fit in an int64. */
static bool parse_decimal(const char *s, size_t n, int64_t *out)
{
	if (n == 0)
		return false;
	int64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		int d = s[i] - '0';
		if (v > (INT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

static void parse_gomaxprocs(const char *s)
{
	size_t n = strlen(s);
	int64_t v = 0;
	if (strspn(s, "0123456789") != n)
		goto bad;
	/* All digits but too long for int64: a positive integer all the same,
	 * and far above the cap. */
	if (!parse_decimal(s, n, &v))
		v = MAX_GOMAXPROCS;
	if (v <= 0)
		goto bad;
	env_gomaxprocs = (int32_t)(v > MAX_GOMAXPROCS ? MAX_GOMAXPROCS : v);
	return;
bad:
	printerr("goshim: invalid GOMAXPROCS=\"%s\": not a positive integer; using the default\n", s);
}

static void parse_stacksize(const char *s)
{
	size_t n = strlen(s);
	uint64_t mult = 1;
	if (n > 0) {
		switch (s[n - 1]) {
		case 'k': case 'K': mult = (uint64_t)1 << 10; n--; break;
		case 'm': case 'M': mult = (uint64_t)1 << 20; n--; break;
		case 'g': case 'G': mult = (uint64_t)1 << 30; n--; break;
		default: break;
		}
	}
	int64_t v;
	if (!parse_decimal(s, n, &v)) {
		printerr("goshim: invalid GOSHIM_STACK=\"%s\": not a size (bytes, or a number with K, M or G); "
		         "using the default\n", s);
		return;
	}
	if ((uint64_t)v > STACK_MAX / mult || (uint64_t)v * mult < STACK_MIN) {
		printerr("goshim: invalid GOSHIM_STACK=\"%s\": must be between 16K and 1G; using the default\n", s);
		return;
	}
	env_stacksize = (size_t)((uint64_t)v * mult);
}

static bool parse_flag(const char *v, size_t n, bool *out)
{
	if (n == 1 && (v[0] == '0' || v[0] == '1')) {
		*out = v[0] == '1';
		return true;
	}
	return false;
}

/* One key=value item of GOSHIM_DEBUG (runtime1.go: parsedebugvars). */
static void parse_debug_item(const char *item, size_t len)
{
	const char *eq = memchr(item, '=', len);
	size_t klen = eq ? (size_t)(eq - item) : len;
	const char *v = eq ? eq + 1 : NULL;
	size_t vlen = eq ? len - klen - 1 : 0;
	bool ok = false, known = true;
	int64_t ms;
#define KEY(name) (klen == sizeof(name) - 1 && memcmp(item, name, klen) == 0)
	if (KEY("schedtrace")) {
		ok = v && parse_decimal(v, vlen, &ms);
		if (ok)
			debug_schedtrace_ms = ms;
	} else if (KEY("scheddetail")) {
		ok = v && parse_flag(v, vlen, &debug_scheddetail);
	} else if (KEY("asyncpreempt")) {
		ok = v && parse_flag(v, vlen, &debug_asyncpreempt);
	} else if (KEY("exitstats")) {
		ok = v && parse_flag(v, vlen, &debug_exitstats);
	} else if (KEY("interpose")) {
		ok = v && parse_flag(v, vlen, &debug_interpose);
	} else if (KEY("membarrier")) {
		ok = v && parse_flag(v, vlen, &debug_membarrier);
	} else {
		known = false;
	}
#undef KEY
	if (ok)
		return;
	/* An unknown key is named alone; a known key with a bad value is named
	 * with the value, which is the part that is wrong. */
	printerr("goshim: GOSHIM_DEBUG: unknown setting \"%.*s\"\n", (int)(known ? len : klen), item);
}

static void parse_debug(const char *s)
{
	while (*s) {
		size_t len = strcspn(s, ",");
		const char *item = s;
		size_t n = len;
		/* Tolerate "a=1, b=2". */
		while (n > 0 && (*item == ' ' || *item == '\t')) {
			item++;
			n--;
		}
		while (n > 0 && (item[n - 1] == ' ' || item[n - 1] == '\t'))
			n--;
		if (n > 0) /* empty items (",,", a trailing comma) are nothing */
			parse_debug_item(item, n);
		s += len;
		if (*s == ',')
			s++;
	}
}

void parse_env(void)
{
	static bool done;
	if (done)
		return;
	done = true;
	const char *s;
	if ((s = getenv("GOMAXPROCS")) && *s)
		parse_gomaxprocs(s);
	if ((s = getenv("GOSHIM_STACK")) && *s)
		parse_stacksize(s);
	if ((s = getenv("GOSHIM_DEBUG")) && *s)
		parse_debug(s);
}
