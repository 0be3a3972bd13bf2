/* mura-augment - random flips, rotations, zooms, shifts, contrast, brightness and mixup of records. */
#define _GNU_SOURCE
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "augment.h"
#include "mura.h"
#include "tool.h"

#define MIXUP_BUFFER 16

struct options {
	struct mura_aug_spec spec;
	long seed, epoch, buffer;
	int print_spec;
	const char *input;
};

static void
usage(FILE *f)
{
	fprintf(f,
	        "usage: %s [--augment SPEC] [--flip P] [--rotate R] [--zoom Z] [--translate T]\n"
	        "       [--contrast C] [--brightness B] [--fill V] [--mixup ALPHA] [--mixup-buffer N]\n"
	        "       [--seed S] [--epoch E] [--print-spec] [FILE]\n"
	        "Transform each u8 or f32 record at random, the same way for the same seed, epoch\n"
	        "and record path.  Default: the paper's set, flip=0.5,rotate=30,zoom=0.1,contrast=0.2.\n"
	        "A range R is X (for [-X, X] about no change) or LO:HI, and may end in @P, the\n"
	        "probability (default 1).\n"
	        "  -a, --augment SPEC     the whole set, as name=value items joined by commas, or none\n"
	        "      --flip P           probability of a left-right mirror\n"
	        "      --rotate R         rotation, degrees counter-clockwise\n"
	        "      --zoom R           scale factor (X: [1-X, 1+X]), > 1 enlarges\n"
	        "      --translate R      shift, fraction of width and of height\n"
	        "      --contrast R       factor about the mean (X: [1-X, 1+X])\n"
	        "      --brightness R     offset, fraction of full scale (255 for u8, 1 for f32)\n"
	        "      --fill V           value of pixels from outside the image (default 0)\n"
	        "  -m, --mixup ALPHA      mix record pairs, weight from Beta(ALPHA, ALPHA); 0: off\n"
	        "  -b, --mixup-buffer N   records mixed among each other (default %d)\n"
	        "  -s, --seed S           seed (default 0)\n"
	        "  -e, --epoch E          epoch, another draw for each (default 0)\n"
	        "  -p, --print-spec       print the spec in effect and exit\n"
	        "  -h, --help             show this help\n"
	        "  -V, --version          show the version\n",
	        argv0, MIXUP_BUFFER);
}

static void
parse_options(int argc, char **argv, struct options *o)
{
	enum { FLIP = 256, ROTATE, ZOOM, TRANSLATE, CONTRAST, BRIGHTNESS, FILL };
	static const struct option longopts[] = {
		{"augment", required_argument, NULL, 'a'},
		{"flip", required_argument, NULL, FLIP},
		{"rotate", required_argument, NULL, ROTATE},
		{"zoom", required_argument, NULL, ZOOM},
		{"translate", required_argument, NULL, TRANSLATE},
		{"contrast", required_argument, NULL, CONTRAST},
		{"brightness", required_argument, NULL, BRIGHTNESS},
		{"fill", required_argument, NULL, FILL},
		{"mixup", required_argument, NULL, 'm'},
		{"mixup-buffer", required_argument, NULL, 'b'},
		{"seed", required_argument, NULL, 's'},
		{"epoch", required_argument, NULL, 'e'},
		{"print-spec", no_argument, NULL, 'p'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{0},
	};
	static const char *const names[] = {"flip", "rotate", "zoom", "translate", "contrast", "brightness", "fill"};
	int c, idx;

	/* Options act in order: --augment replaces the set, the others change one item. */
	while ((c = getopt_long(argc, argv, "a:m:b:s:e:phV", longopts, &idx)) != -1) {
		switch (c) {
		case 'a':
			if (mura_aug_spec_parse(&o->spec, optarg) < 0)
				die_usage("--augment: %s", mura_error_get());
			break;
		case FLIP: case ROTATE: case ZOOM: case TRANSLATE: case CONTRAST: case BRIGHTNESS: case FILL:
			if (mura_aug_spec_set(&o->spec, names[c - FLIP], optarg) < 0)
				die_usage("--%s: %s", names[c - FLIP], mura_error_get());
			break;
		case 'm':
			if (mura_aug_spec_set(&o->spec, "mixup", optarg) < 0)
				die_usage("--mixup: %s", mura_error_get());
			break;
		case 'b':
			if (mura_parse_long(optarg, 1, 4096, &o->buffer) < 0)
				die_usage("--mixup-buffer: %s", mura_error_get());
			break;
		case 's':
			if (mura_parse_long(optarg, 0, LONG_MAX, &o->seed) < 0)
				die_usage("--seed: %s", mura_error_get());
			break;
		case 'e':
			if (mura_parse_long(optarg, 0, LONG_MAX, &o->epoch) < 0)
				die_usage("--epoch: %s", mura_error_get());
			break;
		case 'p':
			o->print_spec = 1;
			break;
		TOOL_COMMON_OPTIONS;
		}
	}
	o->input = tool_input(argc, argv, "at most one input file");
}

/* Mix a batch of n records, with randomness from the seed, the epoch and
 * the first record's path, and write them out. */
static void
flush(struct mura_aug *aug, const struct options *o, struct mura_record *batch, size_t n)
{
	char key[MURA_PATH_MAX + 8];
	struct mura_rng rng;

	if (!n)
		return;
	snprintf(key, sizeof key, "mixup:%s", batch[0].path);
	mura_rng_derive(&rng, (uint64_t)o->seed, (uint64_t)o->epoch, key);
	if (mura_aug_mixup(aug, batch, n, &rng) < 0)
		die_lib(); /* each record was checked with mura_aug_mixable as it came */
	for (size_t i = 0; i < n; i++)
		if (mura_write(stdout, &batch[i]) < 0)
			die("stdout: %s", mura_error_get());
}

int
main(int argc, char **argv)
{
	struct options o = {.buffer = MIXUP_BUFFER};
	struct mura_aug aug;
	struct mura_reader rd;
	struct mura_record *batch;
	size_t n = 0, size;
	int got;

	set_argv0(argv[0]);
	mura_aug_spec_default(&o.spec);
	parse_options(argc, argv, &o);
	if (o.print_spec) {
		char buf[1024];
		mura_aug_spec_format(&o.spec, buf, sizeof buf);
		puts(buf);
		return close_stdout();
	}
	size = o.spec.mixup > 0 ? (size_t)o.buffer : 1;
	if (!(batch = calloc(size, sizeof *batch)))
		die("out of memory");
	for (size_t i = 0; i < size; i++)
		mura_record_init(&batch[i]);
	mura_aug_init(&aug, &o.spec);
	if (mura_reader_open(&rd, o.input) < 0)
		die_lib();
	while ((got = mura_read(&rd, &batch[n])) > 0) {
		struct mura_record *r = &batch[n];
		if (mura_aug_record(&aug, r, (uint64_t)o.seed, (uint64_t)o.epoch) < 0 ||
		    (o.spec.mixup > 0 && mura_aug_mixable(&batch[0], r) < 0))
			die("%s: record %llu: %s", rd.name, (unsigned long long)rd.recno, mura_error_get());
		if (o.spec.mixup <= 0) {
			if (mura_write(stdout, r) < 0)
				die("stdout: %s", mura_error_get());
		} else if (++n == size) {
			flush(&aug, &o, batch, n);
			n = 0;
		}
	}
	if (got < 0)
		die_lib();
	flush(&aug, &o, batch, n);
	mura_reader_free(&rd);
	mura_aug_free(&aug);
	for (size_t i = 0; i < size; i++)
		mura_record_free(&batch[i]);
	free(batch);
	return close_stdout();
}
