/* mura-synth - write a radiograph-like data set in MURA-v1.1's layout. */
#define _GNU_SOURCE
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mura.h"
#include "synth.h"
#include "tool.h"

/* What the command line says. */
struct options {
	struct mura_synth_opts synth;
	const char *out;
	int verbose;
};

static void
usage(FILE *f)
{
	fprintf(f,
	        "usage: %s --out DIR [--seed S] [--patients N] [--difficulty D] [--threads N] [--force] [--verbose]\n"
	        "Write a radiograph-like data set in MURA-v1.1's layout under DIR.\n"
	        "  -o, --out DIR         where to write DIR/MURA-v1.1 and DIR/annotations.csv\n"
	        "  -s, --seed S          seed; the same seed gives the same bytes (default 1)\n"
	        "  -p, --patients N      patients, %d to %d (default %d: about 1300 images)\n"
	        "  -d, --difficulty D    0 (plain findings) to 1 (faint, small ones) (default %.1f)\n"
	        "  -j, --threads N       images drawn at once (default 2)\n"
	        "  -f, --force           write into a non-empty DIR, replacing its MURA-v1.1\n"
	        "  -v, --verbose         say what was written, on stderr\n"
	        "  -h, --help            show this help\n"
	        "  -V, --version         show the version\n",
	        argv0, MURA_SYNTH_MIN_PATIENTS, MURA_SYNTH_MAX_PATIENTS, MURA_SYNTH_PATIENTS,
	        MURA_SYNTH_DIFFICULTY);
}

static void
parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{"out", required_argument, NULL, 'o'},
		{"seed", required_argument, NULL, 's'},
		{"patients", required_argument, NULL, 'p'},
		{"difficulty", required_argument, NULL, 'd'},
		{"threads", required_argument, NULL, 'j'},
		{"force", no_argument, NULL, 'f'},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{0},
	};
	long v;
	int c;

	mura_synth_opts_init(&o->synth);
	while ((c = getopt_long(argc, argv, "o:s:p:d:j:fvhV", longopts, NULL)) != -1) {
		switch (c) {
		case 'o':
			o->out = optarg;
			break;
		case 's':
			if (mura_parse_long(optarg, 0, LONG_MAX, &v) < 0)
				die_usage("--seed: %s", mura_error_get());
			o->synth.seed = (uint64_t)v;
			break;
		case 'p':
			if (mura_parse_long(optarg, MURA_SYNTH_MIN_PATIENTS, MURA_SYNTH_MAX_PATIENTS, &o->synth.patients) < 0)
				die_usage("--patients: %s", mura_error_get());
			break;
		case 'd':
			if (mura_parse_double(optarg, 0, 1, &o->synth.difficulty) < 0)
				die_usage("--difficulty: %s", mura_error_get());
			break;
		case 'j':
			if (mura_parse_long(optarg, 1, 64, &v) < 0)
				die_usage("--threads: %s", mura_error_get());
			o->synth.threads = (int)v;
			break;
		case 'f':
			o->synth.force = 1;
			break;
		case 'v':
			o->verbose = 1;
			break;
		TOOL_COMMON_OPTIONS;
		}
	}
	if (!o->out)
		die_usage("--out DIR is required");
	if (optind < argc)
		die_usage("unexpected argument '%s'", argv[optind]);
}

int
main(int argc, char **argv)
{
	struct options o = {0};
	struct mura_synth_stats st;

	set_argv0(argv[0]);
	parse_options(argc, argv, &o);
	if (mura_synth_write(o.out, &o.synth, &st) < 0)
		die_lib();
	if (o.verbose)
		warn("%s: %ld images of %ld studies (%ld abnormal) of %ld patients in train, "
		     "%ld images of %ld studies (%ld abnormal) of %ld patients in valid, %ld findings marked",
		     o.out, st.images[0], st.studies[0], st.abnormal[0], st.patients[0], st.images[1], st.studies[1],
		     st.abnormal[1], st.patients[1], st.findings);
	return 0;
}
