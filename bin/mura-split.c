/* mura-split - keep one part of a MURA CSV list, split by patient and stratified by type. */
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
	struct mura_split_list l;
	const char *name;
	FILE *in;

	set_argv0(argv[0]);
	parse_options(argc, argv, &o);
	in = tool_open_lines(argc, argv, &name);
	mura_split_list_init(&l);
	if (mura_split_read(&l, in, name) < 0 ||
	    mura_split_assign(l.items, l.n, o.fraction, (uint64_t)o.seed) < 0)
		die_lib();
	if (in != stdin)
		fclose(in);
	for (size_t i = 0; i < l.n; i++)
		if (l.items[i].part == o.part)
			printf("%s\n", l.lines[i]);
	mura_split_list_free(&l);
	return close_stdout();
}
