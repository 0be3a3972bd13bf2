/*
 * tool.h - what every mura tool shares: its name for messages, die() and
 * warn() in the "mura-X: context: reason" style, and the exit codes
 * (0 success, 1 failure, 2 usage error), the option table, and gnuplot
 * run from a pipe (the plots of mura-kappa and mura-tune).  Only tools
 * include this; the library never exits (see lib/error.h).
 */
#ifndef MURA_TOOL_H
#define MURA_TOOL_H

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "error.h"
#include "nn/model.h"

#define EXIT_USAGE 2

static const char *argv0 = "mura";

static void
vwarn_(const char *fmt, va_list ap)
{
	fprintf(stderr, "%s: ", argv0);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

static void __attribute__((unused, format(printf, 1, 2)))
warn(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vwarn_(fmt, ap);
	va_end(ap);
}

static void __attribute__((unused, noreturn, format(printf, 1, 2)))
die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vwarn_(fmt, ap);
	va_end(ap);
	exit(1);
}

/* Print the library's last message, prefixed by the tool's name, and exit 1. */
static void __attribute__((unused, noreturn))
die_lib(void)
{
	die("%s", mura_error_get());
}

/* A bad option value: message and exit 2. */
static void __attribute__((unused, noreturn, format(printf, 1, 2)))
die_usage(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vwarn_(fmt, ap);
	va_end(ap);
	fprintf(stderr, "Try '%s --help' for more information.\n", argv0);
	exit(EXIT_USAGE);
}

/* --precision's value made fp32 or bf16 (nn/model.h's mura_precision_resolve):
 * auto on a CPU without AVX512-BF16 says so and runs fp32; bf16 there is an
 * error (exit 1). */
static void __attribute__((unused))
precision_resolve(int *precision)
{
	int fell_back;

	if ((*precision = mura_precision_resolve(*precision, &fell_back)) < 0)
		die("--precision: %s", mura_error_get());
	if (fell_back)
		warn("--precision auto: this CPU has no AVX512-BF16: running in fp32");
}

static void __attribute__((unused))
set_argv0(const char *a)
{
	const char *s = strrchr(a, '/');
	argv0 = s ? s + 1 : a;
}

/*
 * The cases every tool's getopt switch ends with: -h/--help prints usage on
 * stdout and -V/--version the version (exit 0, stdout checked); anything
 * else is a usage error (usage on stderr, exit 2).  The tool defines
 * `static void usage(FILE *)` before using it.
 */
#define TOOL_COMMON_OPTIONS                                    \
	case 'h':                                                  \
		usage(stdout);                                         \
		exit(close_stdout());                                  \
	case 'V':                                                  \
		printf("%s %s\n", argv0, MURA_VERSION_STRING);         \
		exit(close_stdout());                                  \
	default:                                                   \
		usage(stderr);                                         \
		exit(EXIT_USAGE)

/* The one input a filter takes after its options: argv[optind], or "-"
 * (stdin) when there is none.  A second is a usage error naming it, with
 * the tool's rule ("at most one input file"). */
static __attribute__((unused)) const char *
tool_input(int argc, char **argv, const char *rule)
{
	if (argc - optind > 1)
		die_usage("unexpected argument '%s': %s", argv[optind + 1], rule);
	return optind < argc ? argv[optind] : "-";
}

/* tool_input's file opened for reading lines, or stdin; *name is its
 * name for messages ("stdin" or the path).  A file that cannot be opened
 * is a failure (exit 1). */
static __attribute__((unused)) FILE *
tool_open_lines(int argc, char **argv, const char **name)
{
	const char *path = tool_input(argc, argv, "at most one input file");
	FILE *f;

	*name = "stdin";
	if (!strcmp(path, "-"))
		return stdin;
	if (!(f = fopen(path, "r")))
		die("%s: %m", path);
	*name = path;
	return f;
}

/*
 * Options declared once (git's OPT_* tables): one array of struct
 * tool_option yields getopt_long's long options and short string, and the
 * usage text, so what --help says cannot drift from what is parsed.
 *   code   the short letter, or a code >= 256 for a long-only option; 0
 *          for a heading line (help is the heading)
 *   name   the long name without "--"
 *   arg    the argument as the usage shows it ("FILE"), NULL for none
 *   help   the text; '\n' continues it on the next line
 * The table ends with an entry whose name and help are NULL.
 */
struct tool_option {
	int code;
	const char *name, *arg, *help;
};

/* getopt_long over the table: the next option's code, -1 at the end. */
static int __attribute__((unused))
tool_getopt(int argc, char **argv, const struct tool_option *t)
{
	static struct option lo[256];
	static char so[2 * 256 + 1];
	static const struct tool_option *built;
	size_t nl = 0, ns = 0;

	if (built != t) {
		for (; t[nl].name || t[nl].help; nl++)
			;
		for (size_t i = 0, k = 0; i < nl; i++) {
			if (!t[i].code)
				continue;
			if (k + 1 >= sizeof lo / sizeof lo[0])
				abort();  /* a table larger than this: make the arrays larger */
			lo[k++] = (struct option){t[i].name, t[i].arg ? required_argument : no_argument, NULL,
			                          t[i].code};
			lo[k] = (struct option){0};
			if (t[i].code < 256) {
				so[ns++] = (char)t[i].code;
				if (t[i].arg)
					so[ns++] = ':';
			}
		}
		so[ns] = 0;
		built = t;
	}
	return getopt_long(argc, argv, so, lo, NULL);
}

/* The table as usage lines: "  -a, --arch A" or "      --head H", the help
 * from column 29, continuation lines indented to it. */
static void __attribute__((unused))
tool_usage_options(FILE *f, const struct tool_option *t)
{
	char left[64];

	for (; t->name || t->help; t++) {
		if (!t->code) {
			fprintf(f, "%s\n", t->help);
			continue;
		}
		if (t->code < 256)
			snprintf(left, sizeof left, "  -%c, --%s%s%s", t->code, t->name, t->arg ? " " : "",
			         t->arg ? t->arg : "");
		else
			snprintf(left, sizeof left, "      --%s%s%s", t->name, t->arg ? " " : "", t->arg ? t->arg : "");
		fprintf(f, "%-27s ", left);
		for (const char *p = t->help; *p; p++) {
			fputc(*p, f);
			if (*p == '\n')
				fprintf(f, "%28s", "");
		}
		fputc('\n', f);
	}
}

/* Close stdout and check it, so a full disk or a closed pipe is a failure. */
static int __attribute__((unused))
close_stdout(void)
{
	if (fflush(stdout) != 0 || ferror(stdout) || fclose(stdout) != 0) {
		warn("stdout: write error");
		return 1;
	}
	return 0;
}

/*
 * gnuplot reading its script from a pipe, started in the folder dir.  The
 * script then names files inside dir by the group's name alone (a constant
 * of ours), so no text given by the user ever reaches gnuplot's parser,
 * where a line break in a path would start a command of its own ("system").
 */
static __attribute__((unused)) FILE *
gnuplot_open(const char *dir, pid_t *pid)
{
	int fd[2];
	FILE *gp;

	if (pipe(fd) < 0)
		die("gnuplot: pipe: %s", strerror(errno));
	if ((*pid = fork()) < 0)
		die("gnuplot: fork: %s", strerror(errno));
	if (!*pid) {
		close(fd[1]);
		if (dup2(fd[0], STDIN_FILENO) < 0 || chdir(dir) < 0)
			_exit(126);
		if (fd[0] != STDIN_FILENO) /* it is, when our stdin was closed */
			close(fd[0]);
		execlp("gnuplot", "gnuplot", (char *)NULL);
		_exit(127);
	}
	close(fd[0]);
	if (!(gp = fdopen(fd[1], "w")))
		die("gnuplot: %s", strerror(errno));
	return gp;
}

/* Close the script and wait for gnuplot; its exit status, or -1. */
static int __attribute__((unused))
gnuplot_close(FILE *gp, pid_t pid)
{
	int st;

	fclose(gp);
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

#endif
