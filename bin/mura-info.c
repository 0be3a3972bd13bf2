/* mura-info - summarise a mura tensor stream, list its records, or show one. */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "mura.h"
#include "nn/model.h"
#include "safetensors.h"
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
	        "Summarise mura tensor streams (stdin when no FILE or '-'), or describe a\n"
	        "model file (.safetensors).\n"
	        "  -l, --list         one line per record instead of the summary\n"
	        "  -p, --png N OUT    write record N (counting from 1) as a PNG image\n"
	        "  -h, --help         show this help\n"
	        "  -V, --version      show the version\n",
	        argv0);
}

/* Is path a safetensors file (a model) rather than a stream?  A stream
 * starts with "MURA"; safetensors with its header's length, then '{'. */
static int
is_model(const char *path)
{
	unsigned char b[9];
	FILE *f;
	int yes;

	if (!strcmp(path, "-") || !(f = fopen(path, "rb")))
		return 0;
	yes = fread(b, 1, sizeof b, f) == sizeof b && memcmp(b, "MURA", 4) != 0 && b[8] == '{';
	fclose(f);
	return yes;
}

/* What a model file holds: its configuration, and what training recorded. */
static void
describe_model(const char *path)
{
	static const char *const trained[][2] = {
		{"train_epoch", "epoch"}, {"train_val_loss", "val_loss"}, {"train_val_auc", "val_auc"},
		{"train_val_kappa", "val_kappa"}, {"train_class_weights", "class weights"},
		{"train_command", "command"},
	};
	struct mura_model_config c;
	struct mura_st_file f;
	unsigned long long nparam = 0;
	const char *v;
	int ours;

	if (mura_st_open(&f, path) < 0)
		die_lib();
	mura_model_config_default(&c);
	if ((ours = mura_model_config_read(&f, &c)) < 0)
		die_lib();
	for (size_t i = 0; i < f.n; i++)
		if (strncmp(f.t[i].name, "optim.", 6) != 0)
			nparam += f.t[i].nelem;
	printf("file       %s\n", path);
	printf("tensors    %zu, %llu values\n", f.n, nparam);
	if (!ours) {
		printf("model      no mura metadata: a plain state dict (mura-score and mura-train take "
		       "it with --arch)\n");
		mura_st_free(&f);
		return;
	}
	printf("model      %s, head %s, dropout %g\n", mura_arch_name(c.arch), mura_head_name(c.head),
	       c.dropout);
	if (mura_st_meta(&f, "hybrid_stage"))
		printf("hybrid     stage %d, D %d, L %d, H %d, R %d, grid %dx%d\n", c.hybrid_stage, c.vit_dim,
		       c.vit_depth, c.vit_heads, c.vit_mlp, c.vit_grid_h, c.vit_grid_w);
	printf("input      %dx%d %s records", c.input_h, c.input_w,
	       c.input_dtype ? mura_dtype_name(c.input_dtype) : "(dtype not recorded)");
	if (c.norm_unknown)
		printf(", normalised before training in a way the model does not record\n");
	else
		printf(", mean %g,%g,%g, std %g,%g,%g\n", c.mean[0], c.mean[1], c.mean[2], c.std[0], c.std[1],
		       c.std[2]);
	for (size_t i = 0; i < sizeof trained / sizeof trained[0]; i++)
		if ((v = mura_st_meta(&f, trained[i][0])))
			printf("%-10s %s\n", trained[i][1], v);
	if (mura_st_meta(&f, "train_state"))
		printf("checkpoint resumable: mura-train --resume %s\n", path);
	mura_st_free(&f);
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
	int nfiles, found = 0, models = 0;

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

		if (!o.list && !o.png_out && is_model(path)) {
			describe_model(path);
			models++;
			continue;
		}
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
	if (!o.list && !o.png_out && nfiles > models)
		print_summary(&sum, nfiles - models);
	mura_record_free(&r);
	mura_summary_free(&sum);
	return close_stdout();
}
