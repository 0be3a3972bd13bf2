/* mura-info - summarise a mura tensor stream, list its records, or show one. */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "mura.h"
#include "tool.h"

struct options {
	int list;
	long png_record; /* 1-based; 0 = none */
	const char *png_out;
};

static void
usage(FILE *f)
{
	fprintf(f,
	        "usage: %s [--list] [--png N OUT.png] [FILE...]\n"
	        "Summarise mura tensor streams (stdin when no FILE or '-').\n"
	        "  -l, --list         one line per record instead of the summary\n"
	        "  -p, --png N OUT    write record N (counting from 1) as a PNG image\n"
	        "  -h, --help         show this help\n"
	        "  -V, --version      show the version\n",
	        argv0);
}

static void
print_summary(const struct mura_summary *s, int nfiles)
{
	printf("records  %llu in %d stream%s, %.1f MB of data\n", (unsigned long long)s->records, nfiles,
	       nfiles == 1 ? "" : "s", s->bytes / 1e6);
	printf("dtypes  ");
	for (int d = 1; d < 4; d++)
		if (s->dtype[d])
			printf(" %s %llu", mura_dtype_name(d), (unsigned long long)s->dtype[d]);
	printf("\nshapes  ");
	for (int i = 0; i < s->nshape; i++)
		printf(" %ux%ux%u %llu", s->shape[i].c, s->shape[i].h, s->shape[i].w,
		       (unsigned long long)s->shape[i].n);
	if (s->other_shapes)
		printf(" (other shapes %llu)", (unsigned long long)s->other_shapes);
	printf("\n\n%-9s %8s %8s %8s %8s %8s %8s %8s %8s\n", "type", "images", "abnormal", "normal",
	       "mixed", "unknown", "studies", "abn.st", "patients");
	for (int t = 0; t <= MURA_TYPE_COUNT; t++) {
		const struct mura_summary_type *st = &s->type[t];
		if (!st->images && t != MURA_TYPE_COUNT)
			continue;
		printf("%-9s %8llu %8llu %8llu %8llu %8llu %8zu %8zu %8zu\n",
		       t == MURA_TYPE_COUNT ? "all" : mura_type_name(t), (unsigned long long)st->images,
		       (unsigned long long)st->abnormal, (unsigned long long)st->normal,
		       (unsigned long long)st->mixed, (unsigned long long)st->unknown,
		       mura_keyset_count(&st->studies), mura_keyset_count(&st->abnormal_studies),
		       mura_keyset_count(&st->patients));
	}
}

static void
print_line(unsigned long long n, const struct mura_record *r)
{
	printf("%llu\t%s\t%ux%ux%u\t%g\t%s\t%u\t%u\t%u\t%s\n", n, mura_dtype_name(r->dtype), r->c, r->h,
	       r->w, r->label, mura_type_name(r->type), r->patient, r->study, r->image, r->path);
}

static void
parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{"list", no_argument, NULL, 'l'},
		{"png", required_argument, NULL, 'p'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{0},
	};
	int c;

	while ((c = getopt_long(argc, argv, "lp:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'l':
			o->list = 1;
			break;
		case 'p':
			if (mura_parse_long(optarg, 1, LONG_MAX, &o->png_record) < 0)
				die_usage("--png: %s", mura_error_get());
			if (optind >= argc)
				die_usage("--png needs a record number and an output file");
			o->png_out = argv[optind++];
			break;
		TOOL_COMMON_OPTIONS;
		}
	}
	if (o->list && o->png_out)
		die_usage("--list and --png cannot be combined");
}

int
main(int argc, char **argv)
{
	struct options o = {0};
	struct mura_summary sum;
	struct mura_record r;
	unsigned long long n = 0;
	int nfiles, found = 0;

	set_argv0(argv[0]);
	parse_options(argc, argv, &o);

	mura_summary_init(&sum);
	mura_record_init(&r);
	nfiles = optind < argc ? argc - optind : 1;
	if (o.list)
		printf("record\tdtype\tshape\tlabel\ttype\tpatient\tstudy\timage\tpath\n");
	for (int i = 0; i < nfiles && !found; i++) {
		const char *path = optind < argc ? argv[optind + i] : "-";
		struct mura_reader rd;
		int rc;

		if (mura_reader_open(&rd, path) < 0)
			die_lib();
		while ((rc = mura_read(&rd, &r)) > 0) {
			n++;
			if (o.list)
				print_line(n, &r);
			else if (o.png_out) {
				if ((long)n == o.png_record) {
					if (mura_record_save_png(&r, o.png_out) < 0)
						die_lib();
					found = 1;
					break;
				}
			} else if (mura_summary_add(&sum, &r) < 0)
				die_lib();
		}
		if (rc < 0)
			die_lib();
		mura_reader_free(&rd);
	}
	if (o.png_out && !found)
		die("--png: record %ld: out of range (%llu records)", o.png_record, n);
	if (!o.list && !o.png_out)
		print_summary(&sum, nfiles);
	mura_record_free(&r);
	mura_summary_free(&sum);
	return close_stdout();
}
