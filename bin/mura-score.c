/* mura-score - the probability of abnormality of every image, by a model or an ensemble. */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "mura.h"
#include "score.h"
#include "tool.h"

#define MAX_MODELS 64

static void
usage(FILE *f)
{
	fprintf(f,
	        "usage: %s --model MODEL [--model MODEL ...] [options] [FILE]\n"
	        "Score image records (stdin when no file or '-'): one row per image, with a\n"
	        "header, as mura-kappa(1) reads it.  With several models and views, the\n"
	        "probability is the mean of their probabilities.\n"
	        "  -m, --model FILE      a model (safetensors); repeat for an ensemble\n"
	        "  -a, --arch A          architecture of a plain torchvision file (no metadata)\n"
	        "  -t, --tta T           test-time views: none, flip, rot or flip,rot (none)\n"
	        "  -b, --batch N         images per forward pass (16)\n"
	        "  -j, --threads N       threads (MURA_THREADS, else every core)\n"
	        "      --precision P     fp32, bf16 (AVX512-BF16 CPUs) or auto (fp32)\n"
	        "      --any-size        score records of another size than a model was\n"
	        "                        trained at (refused otherwise)\n"
	        "  -h, --help            show this help\n"
	        "  -V, --version         show the version\n",
	        argv0);
}

static void
say(void *arg, const char *msg)
{
	(void)arg;
	warn("%s", msg);
}

static void
parse_options(int argc, char **argv, struct mura_scorer_config *c, const char **models)
{
	enum { OPT_ANY_SIZE = 256, OPT_PRECISION };
	static const struct option longopts[] = {
		{"model", required_argument, NULL, 'm'},
		{"arch", required_argument, NULL, 'a'},
		{"tta", required_argument, NULL, 't'},
		{"batch", required_argument, NULL, 'b'},
		{"threads", required_argument, NULL, 'j'},
		{"any-size", no_argument, NULL, OPT_ANY_SIZE},
		{"precision", required_argument, NULL, OPT_PRECISION},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{0},
	};
	long v;
	int ch;

	c->models = models;
	c->batch = 16;
	while ((ch = getopt_long(argc, argv, "m:a:t:b:j:hV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'm':
			if (c->nmodels == MAX_MODELS)
				die_usage("--model: at most %d models", MAX_MODELS);
			models[c->nmodels++] = optarg;
			break;
		case 'a':
			if ((c->arch = mura_arch_parse(optarg)) < 0)
				die_usage("--arch: %s", mura_error_get());
			break;
		case 't':
			if ((c->tta = mura_tta_parse(optarg)) < 0)
				die_usage("--tta: %s", mura_error_get());
			break;
		case 'b':
			if (mura_parse_long(optarg, 1, 4096, &v) < 0)
				die_usage("--batch: %s", mura_error_get());
			c->batch = (int)v;
			break;
		case OPT_ANY_SIZE:
			c->any_size = 1;
			break;
		case OPT_PRECISION:
			if ((c->precision = mura_precision_parse(optarg)) < 0)
				die_usage("--precision: %s", mura_error_get());
			break;
		case 'j':
			if (mura_parse_long(optarg, 1, 1024, &v) < 0)
				die_usage("--threads: %s", mura_error_get());
			c->threads = (int)v;
			break;
		TOOL_COMMON_OPTIONS;
		}
	}
	if (!c->nmodels)
		die_usage("--model FILE is required");
	precision_resolve(&c->precision);
}

int
main(int argc, char **argv)
{
	const char *models[MAX_MODELS];
	struct mura_scorer_config c = {0};
	struct mura_scorer *s;
	struct mura_reader rd;
	char *buf = NULL;
	size_t len = 0;
	FILE *mem;
	long long n;

	set_argv0(argv[0]);
	parse_options(argc, argv, &c, models);
	if (mura_reader_open(&rd, tool_input(argc, argv, "at most one input file")) < 0)
		die_lib();
	if (!(s = mura_scorer_create(&c, say, NULL)))
		die_lib();
	/* The rows wait in memory, so that a failure writes nothing. */
	if (!(mem = open_memstream(&buf, &len)))
		die("out of memory");
	if (mura_scores_write_header(mem) < 0 || (n = mura_scorer_run(s, &rd, mem)) < 0)
		die_lib();
	if (fclose(mem) != 0)
		die("out of memory");
	mura_scorer_free(s);
	mura_reader_free(&rd);
	if (fwrite(buf, 1, len, stdout) != len)
		die("stdout: write error");
	free(buf);
	return close_stdout();
}
