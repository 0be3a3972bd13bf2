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

int
main(int argc, char **argv)
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
	struct mura_synth_opts o;
	struct mura_synth_stats st;
	const char *out = NULL;
	int verbose = 0, c;
	long v;

	set_argv0(argv[0]);
	mura_synth_opts_init(&o);
	while ((c = getopt_long(argc, argv, "o:s:p:d:j:fvhV", longopts, NULL)) != -1) {
		switch (c) {
		case 'o':
			out = optarg;
			break;
		case 's':
			if (mura_parse_long(optarg, 0, LONG_MAX, &v) < 0)
				die_usage("--seed: %s", mura_error_get());
			o.seed = (uint64_t)v;
			break;
		case 'p':
			if (mura_parse_long(optarg, MURA_SYNTH_MIN_PATIENTS, MURA_SYNTH_MAX_PATIENTS, &o.patients) < 0)
				die_usage("--patients: %s", mura_error_get());
			break;
		case 'd':
			if (mura_parse_double(optarg, 0, 1, &o.difficulty) < 0)
				die_usage("--difficulty: %s", mura_error_get());
			break;
		case 'j':
			if (mura_parse_long(optarg, 1, 64, &v) < 0)
				die_usage("--threads: %s", mura_error_get());
			o.threads = (int)v;
			break;
		case 'f':
			o.force = 1;
			break;
		case 'v':
			verbose = 1;
			break;
		TOOL_COMMON_OPTIONS;
		}
	}
	if (!out)
		die_usage("--out DIR is required");
	if (optind < argc)
		die_usage("unexpected argument '%s'", argv[optind]);
	if (mura_synth_write(out, &o, &st) < 0)
		die_lib();
	if (verbose)
		warn("%s: %ld images of %ld studies (%ld abnormal) of %ld patients in train, "
		     "%ld images of %ld studies (%ld abnormal) of %ld patients in valid, %ld findings marked",
		     out, st.images[0], st.studies[0], st.abnormal[0], st.patients[0], st.images[1], st.studies[1],
		     st.abnormal[1], st.patients[1], st.findings);
	return 0;
}
