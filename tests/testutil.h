/* Shared by the Check suites: running a scenario in a child process of the
 * suite itself (fatal errors end a process, so they are observed from
 * outside), and a main() that runs the suite without forking (the runtime
 * owns threads; Check's fork mode would lose them). */
#ifndef GOSHIM_TESTUTIL_H
#define GOSHIM_TESTUTIL_H

#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

struct child_result {
	int status;        /* as from waitpid */
	char out[65536];   /* stdout and stderr, merged */
};

struct scenario {
	const char *name;
	void (*fn)(void);
};

static const char *test_argv0;

/* Runs "<self> --child name" with extra environment (NAME=VALUE strings,
 * NULL-terminated); sends sig to it after delay_ms if sig != 0. */
static inline void run_child_sig(const char *name, const char *const *env, int sig, int delay_ms,
                                 struct child_result *r)
{
	int pipefd[2];
	ck_assert_int_eq(pipe(pipefd), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		dup2(pipefd[1], 1);
		dup2(pipefd[1], 2);
		close(pipefd[0]);
		close(pipefd[1]);
		for (const char *const *e = env; e && *e; e++)
			putenv((char *)*e);
		const char *emu = getenv("TEST_EMULATOR");
		char *argv[16];
		int n = 0;
		char *emucopy = NULL;
		if (emu && *emu) {
			emucopy = strdup(emu);
			for (char *t = strtok(emucopy, " "); t && n < 10; t = strtok(NULL, " "))
				argv[n++] = t;
		}
		argv[n++] = (char *)test_argv0;
		argv[n++] = (char *)"--child";
		argv[n++] = (char *)name;
		argv[n] = NULL;
		execvp(argv[0], argv);
		_exit(127);
	}
	close(pipefd[1]);
	size_t len = 0;
	bool signalled = false;
	for (;;) {
		ssize_t k = read(pipefd[0], r->out + len, sizeof r->out - 1 - len);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		len += (size_t)k;
		r->out[len] = 0;
		/* The child prints "ready" when it wants the signal. */
		if (sig && !signalled && strstr(r->out, "ready\n")) {
			usleep((useconds_t)delay_ms * 1000);
			kill(pid, sig);
			signalled = true;
		}
		if (len == sizeof r->out - 1)
			break;
	}
	r->out[len] = 0;
	close(pipefd[0]);
	while (waitpid(pid, &r->status, 0) < 0 && errno == EINTR)
		;
}

static inline void run_child(const char *name, const char *const *env, struct child_result *r)
{
	run_child_sig(name, env, 0, 0, r);
}

/* Check cannot carry long messages: show the last part of the output. */
static inline const char *out_tail(const struct child_result *r)
{
	size_t n = strlen(r->out);
	return n > 3000 ? r->out + n - 3000 : r->out;
}

#define ck_assert_exit_status(r, code) do { \
	ck_assert_msg(WIFEXITED((r)->status) && WEXITSTATUS((r)->status) == (code), \
		"child status 0x%x, want exit %d; output:\n%s", (r)->status, (code), out_tail(r)); \
} while (0)

#define ck_assert_output_has(r, s) \
	ck_assert_msg(strstr((r)->out, (s)) != NULL, "output lacks \"%s\":\n%s", (s), out_tail(r))

/* main(): "--child NAME" runs a scenario; otherwise the suite runs. */
static inline int test_main(int argc, char **argv, Suite *(*make)(void),
                            const struct scenario *scenarios)
{
	test_argv0 = argv[0];
	if (argc == 3 && strcmp(argv[1], "--child") == 0) {
		for (const struct scenario *s = scenarios; s && s->name; s++) {
			if (strcmp(s->name, argv[2]) == 0) {
				alarm(120);
				s->fn();
				return 0;
			}
		}
		fprintf(stderr, "unknown scenario %s\n", argv[2]);
		return 126;
	}
	/* Check enforces no timeouts without fork: a hung suite is killed by
	 * SIGALRM (TEST_TIMEOUT seconds, default 900) instead of hanging CI. */
	const char *t = getenv("TEST_TIMEOUT");
	alarm(t && atoi(t) > 0 ? (unsigned)atoi(t) : 900);
	SRunner *sr = srunner_create(make());
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}

#endif
