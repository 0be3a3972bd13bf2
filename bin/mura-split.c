/* mura-split - keep one part of a MURA CSV list, split by patient and stratified by type. */
#define _GNU_SOURCE
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mura.h"
#include "split.h"
#include "tool.h"

struct options {
	double fraction;
	long seed;
	long part;
};

static void
usage(FILE *f)
{
	fprintf(f,
	        "usage: %s [--fraction F] [--seed S] [--part 1|2] [FILE]\n"
	        "Filter MURA CSV lines (image paths or labeled studies) into one of two parts,\n"
	        "by patient and stratified by study type.\n"
	        "  -f, --fraction F   share of each type's studies in part 2 (default 0.3)\n"
	        "  -s, --seed S       seed of the patient order (default 0)\n"
	        "  -p, --part P       the part to print: 2 = the fraction, 1 = the rest (default 2)\n"
	        "  -h, --help         show this help\n"
	        "  -V, --version      show the version\n",
	        argv0);
}

static void
parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{"fraction", required_argument, NULL, 'f'},
		{"seed", required_argument, NULL, 's'},
		{"part", required_argument, NULL, 'p'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{0},
	};
	int c;

	while ((c = getopt_long(argc, argv, "f:s:p:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			if (mura_parse_double(optarg, 0, 1, &o->fraction) < 0)
				die_usage("--fraction: %s", mura_error_get());
			break;
		case 's':
			if (mura_parse_long(optarg, 0, LONG_MAX, &o->seed) < 0)
				die_usage("--seed: %s", mura_error_get());
			break;
		case 'p':
			if (mura_parse_long(optarg, 1, 2, &o->part) < 0)
				die_usage("--part: %s", mura_error_get());
			break;
		TOOL_COMMON_OPTIONS;
		}
	}
}

int
main(int argc, char **argv)
{
	struct options o = {.fraction = 0.3, .seed = 0, .part = 2};
	struct mura_split_item *items = NULL;
	char **lines = NULL, *line = NULL;
	size_t n = 0, cap = 0, lcap = 0;
	const char *name;
	FILE *in;
	ssize_t len;

	set_argv0(argv[0]);
	parse_options(argc, argv, &o);
	in = tool_open_lines(argc, argv, &name);
	while ((len = getline(&line, &lcap, in)) >= 0) {
		struct mura_path_info pi;
		char *comma;

		if (len && line[len - 1] == '\n')
			line[--len] = 0;
		if (len && line[len - 1] == '\r')
			line[--len] = 0;
		if (n == cap) {
			cap = cap ? 2 * cap : 1024;
			if (!(items = realloc(items, cap * sizeof *items)) || !(lines = realloc(lines, cap * sizeof *lines)))
				die("out of memory");
		}
		if (!(lines[n] = strdup(line)))
			die("out of memory");
		if ((comma = strchr(line, ',')))
			*comma = 0;
		if (mura_path_parse(line, &pi) < 0 || !pi.patient || !pi.study)
			die("%s: line %zu: '%s' is not a MURA path with XR_<TYPE>/patientN/studyK", name, n + 1, lines[n]);
		items[n].type = pi.type;
		items[n].patient = pi.patient;
		items[n].study = pi.study;
		n++;
	}
	if (ferror(in))
		die("%s: read error", name);
	if (mura_split_assign(items, n, o.fraction, (uint64_t)o.seed) < 0)
		die_lib();
	for (size_t i = 0; i < n; i++)
		if (items[i].part == o.part)
			printf("%s\n", lines[i]);
	return close_stdout();
}
