/* mura-resize - decode the images of a MURA path list into gray N x N u8 records. */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"
#include "mura.h"
#include "tool.h"

struct options {
	const char *root; /* NULL: paths are relative to the current folder */
	struct mura_image_opts img;
	int skip_bad;
};

/* The messages of the files skipped under --skip-bad, printed at the end. */
struct skipped {
	char *text;
	size_t len, cap;
	unsigned long n;
};

static void
usage(FILE *f)
{
	fprintf(f,
	        "usage: %s [--root DIR] [--size N] [--fit stretch|pad|crop] [--max-pixels N]\n"
	        "       [--skip-bad] [FILE]\n"
	        "Read image paths, one a line (as in MURA's *_image_paths.csv), and write one\n"
	        "gray N x N u8 record per image, with the study type, patient, study, image\n"
	        "number, label and path taken from the path.\n"
	        "  -r, --root DIR        folder the paths are relative to (default .)\n"
	        "  -s, --size N          side of the output in pixels (default %d)\n"
	        "  -f, --fit F           stretch (default), pad (letterbox, black) or crop (centre)\n"
	        "  -m, --max-pixels N    refuse images with more pixels (default %llu)\n"
	        "  -k, --skip-bad        skip unreadable images, list them at the end\n"
	        "  -h, --help            show this help\n"
	        "  -V, --version         show the version\n",
	        argv0, MURA_IMAGE_SIZE, (unsigned long long)MURA_IMAGE_MAX_PIXELS);
}

static void
parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{"root", required_argument, NULL, 'r'},
		{"size", required_argument, NULL, 's'},
		{"fit", required_argument, NULL, 'f'},
		{"max-pixels", required_argument, NULL, 'm'},
		{"skip-bad", no_argument, NULL, 'k'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{0},
	};
	long v;
	int c;

	while ((c = getopt_long(argc, argv, "r:s:f:m:khV", longopts, NULL)) != -1) {
		switch (c) {
		case 'r':
			o->root = optarg;
			break;
		case 's':
			if (mura_parse_long(optarg, 1, MURA_IMAGE_MAX_SIZE, &v) < 0)
				die_usage("--size: %s", mura_error_get());
			o->img.size = (uint32_t)v;
			break;
		case 'f':
			if ((o->img.fit = mura_fit_parse(optarg)) < 0)
				die_usage("--fit: %s", mura_error_get());
			break;
		case 'm':
			if (mura_parse_long(optarg, 1, 1L << 40, &v) < 0)
				die_usage("--max-pixels: %s", mura_error_get());
			o->img.max_pixels = (uint64_t)v;
			break;
		case 'k':
			o->skip_bad = 1;
			break;
		TOOL_COMMON_OPTIONS;
		}
	}
}

static void
skip(struct skipped *s, const char *msg)
{
	size_t n = strlen(msg) + 1;

	if (s->len + n > s->cap) {
		s->cap = 2 * (s->len + n);
		if (!(s->text = realloc(s->text, s->cap)))
			die("out of memory");
	}
	memcpy(s->text + s->len, msg, n);
	s->len += n;
	s->n++;
}

int
main(int argc, char **argv)
{
	struct options o = {.img = {MURA_IMAGE_SIZE, MURA_FIT_STRETCH, MURA_IMAGE_MAX_PIXELS}};
	struct skipped bad = {0};
	struct mura_image im;
	struct mura_record r;
	const char *name;
	char *line = NULL, *file = NULL;
	size_t lcap = 0, fcap = 0;
	unsigned long lineno = 0, ok = 0;
	FILE *in;
	ssize_t len;

	set_argv0(argv[0]);
	parse_options(argc, argv, &o);
	in = tool_open_lines(argc, argv, &name);
	if (mura_image_init(&im, &o.img) < 0)
		die_lib();
	mura_record_init(&r);
	while ((len = getline(&line, &lcap, in)) >= 0) {
		struct mura_path_info pi;

		lineno++;
		while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = 0;
		if (!len)
			continue;
		if (mura_record_set_path(&r, line) < 0)
			die("%s: line %lu: %s", name, lineno, mura_error_get());
		if (o.root && line[0] != '/') {
			if (fcap < strlen(o.root) + len + 2 && !(file = realloc(file, fcap = strlen(o.root) + len + 2)))
				die("out of memory");
			sprintf(file, "%s/%s", o.root, line);
		}
		if (mura_image_load(&im, o.root && line[0] != '/' ? file : line, &r) < 0) {
			if (!o.skip_bad) {
				warn("%s", mura_error_get());
				die("%s: line %lu: stopped, %lu record%s written before it (--skip-bad goes on)",
				    name, lineno, ok, ok == 1 ? "" : "s");
			}
			skip(&bad, mura_error_get());
			continue;
		}
		/* Paths outside the MURA layout are fine: their fields stay unknown. */
		mura_path_parse(line, &pi);
		r.type = (uint8_t)pi.type;
		r.patient = pi.patient;
		r.study = pi.study;
		r.image = pi.image;
		r.label = pi.label;
		if (mura_write(stdout, &r) < 0)
			die("stdout: %s", mura_error_get());
		ok++;
	}
	if (ferror(in))
		die("%s: read error", name);
	for (size_t off = 0; off < bad.len; off += strlen(bad.text + off) + 1)
		warn("%s", bad.text + off);
	if (bad.n)
		warn("skipped %lu of %lu images", bad.n, bad.n + ok);
	mura_image_free(&im);
	mura_record_free(&r);
	free(line);
	free(file);
	free(bad.text);
	if (close_stdout())
		return 1;
	return bad.n && !ok ? 1 : 0;
}
