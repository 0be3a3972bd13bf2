/* mura-normalize - u8 (or u16) records to f32, scaled to [0, 1] and normalised per channel. */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mura.h"
#include "normalize.h"
#include "tool.h"

struct options {
	long channels;
	const char *mean, *std; /* as given; parsed once channels is known */
	int fit;
	const char *input;
};

static void
usage(FILE *f)
{
	fprintf(f,
	        "usage: %s [--channels 1|3] [--mean M[,M,M]] [--std S[,S,S]] [--fit] [FILE]\n"
	        "Turn u8 or u16 records into f32: scale to [0, 1], subtract the mean and divide\n"
	        "by the standard deviation of each channel; a gray record is replicated.\n"
	        "  -c, --channels N   output channels, 1 or 3 (default 3)\n"
	        "  -m, --mean LIST    per-channel mean, one number or one per channel\n"
	        "                     (default 0.485,0.456,0.406, ImageNet's; 0.449 for 1 channel)\n"
	        "  -s, --std LIST     per-channel standard deviation, likewise\n"
	        "                     (default 0.229,0.224,0.225; 0.226 for 1 channel)\n"
	        "  -f, --fit          print the stream's own mean and std as flags, write no records\n"
	        "  -h, --help         show this help\n"
	        "  -V, --version      show the version\n",
	        argv0);
}

static void
parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{"channels", required_argument, NULL, 'c'},
		{"mean", required_argument, NULL, 'm'},
		{"std", required_argument, NULL, 's'},
		{"fit", no_argument, NULL, 'f'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{0},
	};
	int c;

	while ((c = getopt_long(argc, argv, "c:m:s:fhV", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			if (mura_parse_long(optarg, 1, 3, &o->channels) < 0 || o->channels == 2)
				die_usage("--channels: '%s' is neither 1 nor 3", optarg);
			break;
		case 'm':
			o->mean = optarg;
			break;
		case 's':
			o->std = optarg;
			break;
		case 'f':
			o->fit = 1;
			break;
		TOOL_COMMON_OPTIONS;
		}
	}
	o->input = tool_input(argc, argv, "at most one input file");
}

/* One number for every channel, or one per channel. */
static void
parse_list(const char *flag, const char *s, int channels, double *out)
{
	if (mura_parse_doubles(s, 1, out) == 0) {
		for (int c = 1; c < channels; c++)
			out[c] = out[0];
		return;
	}
	if (mura_parse_doubles(s, channels, out) < 0)
		die_usage("%s: '%s' is not 1 or %d comma-separated numbers", flag, s, channels);
}

static void
print_list(const char *flag, const double *v, int n)
{
	printf("%s ", flag);
	for (int c = 0; c < n; c++)
		printf("%s%.6f", c ? "," : "", v[c]);
}

int
main(int argc, char **argv)
{
	struct options o = {.channels = 3};
	struct mura_norm norm;
	struct mura_norm_stats stats;
	struct mura_reader rd;
	struct mura_record in, out;
	int got;

	set_argv0(argv[0]);
	parse_options(argc, argv, &o);
	mura_norm_default(&norm, (int)o.channels);
	if (o.mean)
		parse_list("--mean", o.mean, (int)o.channels, norm.mean);
	if (o.std)
		parse_list("--std", o.std, (int)o.channels, norm.std);
	if (mura_norm_init(&norm) < 0)
		die_usage("%s", mura_error_get());
	if (o.fit && mura_norm_stats_init(&stats, (int)o.channels) < 0)
		die_lib();
	if (mura_reader_open(&rd, o.input) < 0)
		die_lib();
	mura_record_init(&in);
	mura_record_init(&out);
	while ((got = mura_read(&rd, &in)) > 0) {
		if (o.fit ? mura_norm_stats_add(&stats, &in) < 0 : mura_norm_apply(&norm, &in, &out) < 0)
			die("%s: record %llu: %s", rd.name, (unsigned long long)rd.recno, mura_error_get());
		if (!o.fit && mura_write(stdout, &out) < 0)
			die("stdout: %s", mura_error_get());
	}
	if (got < 0)
		die_lib();
	if (o.fit) {
		if (mura_norm_stats_result(&stats, &norm) < 0)
			die("%s: %s", rd.name, mura_error_get());
		print_list("--mean", norm.mean, norm.channels);
		putchar(' ');
		print_list("--std", norm.std, norm.channels);
		putchar('\n');
		mura_norm_stats_free(&stats);
	}
	mura_reader_free(&rd);
	mura_record_free(&in);
	mura_record_free(&out);
	return close_stdout();
}
