/* mura-cam - where a model looks: Grad-CAM or CAM maps, their peaks, overlays, the pointing game. */
#define _GNU_SOURCE
#include <errno.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cam.h"
#include "image.h"
#include "mura.h"
#include "nn/model.h"
#include "pngout.h"
#include "tool.h"
#include "util.h"

enum {
	OPT_PNG = 256, OPT_CMAP, OPT_OPACITY, OPT_ROOT, OPT_FIT, OPT_ANNOT, OPT_TSV, OPT_POINTING,
};

static const struct tool_option options[] = {
	{'m', "model", "FILE", "the model (safetensors)"},
	{'a', "arch", "A", "architecture of a plain torchvision file (no metadata)"},
	{'M', "method", "M", "gradcam (default) or cam (a global-pool + linear head)"},
	{'l', "layer", "NAME", "the layer, by its state-dict name (default: the\nbackbone's last: features.norm5, layer4)"},
	{'b', "batch", "N", "images per pass (8)"},
	{'j', "threads", "N", "threads (MURA_THREADS, else every core)"},
	{'o', "out", "FILE", "the maps (default: stdout)"},
	{OPT_TSV, "tsv", "FILE", "one row per image: path, type, label, probability,\npeak x and y, overlay; '-': stdout"},
	{OPT_PNG, "png", "DIR", "an overlay per image in DIR"},
	{OPT_CMAP, "cmap", "C", "the overlay's colour map: viridis (default), inferno"},
	{OPT_OPACITY, "opacity", "A", "the colour's opacity over the radiograph (0.45)"},
	{OPT_ROOT, "root", "DIR", "the folder the records' paths are relative to: peaks\nin the original images' pixels"},
	{OPT_FIT, "fit", "F", "how mura-resize fitted them: stretch (default), pad, crop"},
	{OPT_ANNOT, "annotations", "FILE", "findings' boxes (mura-synth's annotations.csv): the\npointing game; --root defaults to its folder"},
	{OPT_POINTING, "pointing", "FILE", "the pointing game's table (default: stdout)"},
	{'h', "help", NULL, "show this help"},
	{'V', "version", NULL, "show the version"},
	{0, NULL, NULL, NULL},
};

static void
usage(FILE *f)
{
	fprintf(f,
	        "usage: %s --model MODEL [options] [FILE]\n"
	        "Class activation maps of image records (stdin when no file or '-'): one f32\n"
	        "map a record, with its metadata, the size of its image.\n",
	        argv0);
	tool_usage_options(f, options);
}

struct opts {
	struct mura_cam_config cam;
	const char *out, *tsv, *png, *root, *annot, *pointing;
	int cmap, fit;
	float opacity;
};

static void
parse_options(int argc, char **argv, struct opts *o)
{
	double d;
	long v;
	int ch;

	o->cam.method = MURA_CAM_GRADCAM;
	o->cam.batch = 8;
	o->cmap = MURA_CMAP_VIRIDIS;
	o->opacity = 0.45f;
	o->fit = MURA_FIT_STRETCH;
	while ((ch = tool_getopt(argc, argv, options)) != -1) {
		switch (ch) {
		case 'm': o->cam.model = optarg; break;
		case 'a':
			if ((o->cam.arch = mura_arch_parse(optarg)) < 0)
				die_usage("--arch: %s", mura_error_get());
			break;
		case 'M':
			if ((o->cam.method = mura_cam_method_parse(optarg)) < 0)
				die_usage("--method: %s", mura_error_get());
			break;
		case 'l': o->cam.layer = optarg; break;
		case 'b':
			if (mura_parse_long(optarg, 1, 4096, &v) < 0)
				die_usage("--batch: %s", mura_error_get());
			o->cam.batch = (int)v;
			break;
		case 'j':
			if (mura_parse_long(optarg, 1, 1024, &v) < 0)
				die_usage("--threads: %s", mura_error_get());
			o->cam.threads = (int)v;
			break;
		case 'o': o->out = optarg; break;
		case OPT_TSV: o->tsv = optarg; break;
		case OPT_PNG: o->png = optarg; break;
		case OPT_CMAP:
			if ((o->cmap = mura_cmap_parse(optarg)) < 0)
				die_usage("--cmap: %s", mura_error_get());
			break;
		case OPT_OPACITY:
			if (mura_parse_double(optarg, 0, 1, &d) < 0)
				die_usage("--opacity: %s", mura_error_get());
			o->opacity = (float)d;
			break;
		case OPT_ROOT: o->root = optarg; break;
		case OPT_FIT:
			if ((o->fit = mura_fit_parse(optarg)) < 0)
				die_usage("--fit: %s", mura_error_get());
			break;
		case OPT_ANNOT: o->annot = optarg; break;
		case OPT_POINTING: o->pointing = optarg; break;
		TOOL_COMMON_OPTIONS;
		}
	}
	if (!o->cam.model)
		die_usage("--model FILE is required");
	int to_stdout = (!o->out || !strcmp(o->out, "-")) + (o->tsv && !strcmp(o->tsv, "-")) +
	                (o->annot && (!o->pointing || !strcmp(o->pointing, "-")));
	if (to_stdout > 1)
		die_usage("the maps, --tsv and --pointing cannot all go to stdout: give --out FILE (or "
		          "--pointing FILE)");
}

/* An output file written to a temporary name, or stdout ("-", NULL). */
struct output {
	struct mura_out o;
	FILE *f;
	int file;
};

static void
output_open(struct output *out, const char *path)
{
	out->file = path && strcmp(path, "-") != 0;
	if (!out->file) {
		out->f = stdout;
		return;
	}
	if (mura_out_open(&out->o, path) < 0)
		die_lib();
	out->f = out->o.f;
}

static void
output_commit(struct output *out)
{
	if (out->file && mura_out_commit(&out->o) < 0)
		die_lib();
}

/* The overlay's file name: the record's path with '/' as '_', ".png". */
static void
png_name(char *buf, size_t len, const char *dir, const char *path, unsigned long long recno)
{
	char flat[MURA_PATH_MAX + 1];
	size_t k = 0;

	for (const char *p = path; *p && k < sizeof flat - 1; p++)
		flat[k++] = *p == '/' ? '_' : *p;
	flat[k] = 0;
	if (k > 4 && !strcmp(flat + k - 4, ".png"))
		flat[k - 4] = 0;
	if (!flat[0])
		snprintf(flat, sizeof flat, "record%llu", recno);
	snprintf(buf, len, "%s/%s.png", dir, flat);
}

/* The pointing game's counts, per study type (0: unknown) and overall. */
struct pointing {
	long n[MURA_TYPE_COUNT + 1], hit[MURA_TYPE_COUNT + 1], nobox[MURA_TYPE_COUNT + 1];
	double share[MURA_TYPE_COUNT + 1];  /* sum of box area shares: the random point's hits */
};

/* Share of the w x h image the union of boxes covers. */
static double
box_share(const struct mura_box *b, size_t nb, int w, int h)
{
	long in = 0;

	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++)
			for (size_t i = 0; i < nb; i++)
				if (x >= b[i].x0 && x < b[i].x1 && y >= b[i].y0 && y < b[i].y1) {
					in++;
					break;
				}
	return (double)in / ((double)w * h);
}

static void
pointing_write(FILE *f, const struct pointing *p)
{
	fprintf(f, "type\timages\thits\thit_rate\trandom_point\tno_box\n");
	for (int t = 1; t <= MURA_TYPE_COUNT; t++) {
		int k = t == MURA_TYPE_COUNT ? 0 : t;  /* unknown before the total */
		if (t == MURA_TYPE_COUNT) {
			k = MURA_TYPE_COUNT;
			fprintf(f, "all");
		} else {
			if (!p->n[k] && !p->nobox[k])
				continue;
			fprintf(f, "%s", mura_type_name(k));
		}
		if (p->n[k])
			fprintf(f, "\t%ld\t%ld\t%.3f\t%.3f\t%ld\n", p->n[k], p->hit[k], (double)p->hit[k] / p->n[k],
			        p->share[k] / p->n[k], p->nobox[k]);
		else
			fprintf(f, "\t0\t0\tNA\tNA\t%ld\n", p->nobox[k]);
	}
}

int
main(int argc, char **argv)
{
	struct opts o = {0};
	struct mura_reader rd;
	struct mura_cam *cam;
	struct mura_boxes boxes = {0};
	struct mura_image img;
	struct pointing pg = {0};
	struct output maps, tsv = {0}, pt = {0};
	char info[1024], root[MURA_PATH_MAX + 1] = "", file[2 * MURA_PATH_MAX + 2], png[2 * MURA_PATH_MAX + 16];

	set_argv0(argv[0]);
	parse_options(argc, argv, &o);
	if (mura_reader_open(&rd, tool_input(argc, argv, "at most one input file")) < 0)
		die_lib();
	if (!(cam = mura_cam_create(&o.cam, info, sizeof info)))
		die_lib();
	if (info[0])
		warn("%s: %s", o.cam.model, info);
	if (o.annot) {
		if (mura_boxes_read(&boxes, o.annot) < 0)
			die_lib();
		if (!o.root) {
			char tmp[MURA_PATH_MAX + 1];
			snprintf(tmp, sizeof tmp, "%s", o.annot);
			snprintf(root, sizeof root, "%s", dirname(tmp));
		}
	}
	if (o.root)
		snprintf(root, sizeof root, "%s", o.root);
	if (root[0]) {
		struct mura_image_opts io = {MURA_IMAGE_SIZE, o.fit, MURA_IMAGE_MAX_PIXELS};
		if (mura_image_init(&img, &io) < 0)
			die_lib();
	}
	if (o.png && mkdir(o.png, 0777) < 0 && errno != EEXIST)
		die("%s: %s", o.png, strerror(errno));

	const int b = mura_cam_batch_size(cam);
	struct mura_record *in = calloc((size_t)b, sizeof *in), *out = calloc((size_t)b, sizeof *out);
	float *prob = calloc((size_t)b, sizeof *prob);
	unsigned char *rgb = NULL;
	size_t rgb_cap = 0;
	if (!in || !out || !prob)
		die("out of memory");
	for (int i = 0; i < b; i++)
		mura_record_init(&in[i]), mura_record_init(&out[i]);

	output_open(&maps, o.out);
	if (o.tsv) {
		output_open(&tsv, o.tsv);
		fprintf(tsv.f, "path\ttype\tlabel\tprob\tpeak_x\tpeak_y\toverlay\n");
	}
	/* Batches of records of one size: a record of another size waits in
	 * pending for the next batch. */
	unsigned long long recno = 0;
	struct mura_record pending, t;
	int eof = 0, waiting = 0;
	mura_record_init(&pending);
	while (!eof || waiting) {
		int n = 0;
		if (waiting) {
			t = in[0], in[0] = pending, pending = t;
			waiting = 0;
			n = 1;
		}
		while (!eof && n < b) {
			int rc = mura_read(&rd, &pending);
			if (rc < 0)
				die_lib();
			if (rc == 0) {
				eof = 1;
				break;
			}
			if (n > 0 && (pending.h != in[0].h || pending.w != in[0].w)) {
				waiting = 1;
				break;
			}
			t = in[n], in[n] = pending, pending = t;
			n++;
		}
		if (!n)
			break;
		if (mura_cam_run(cam, in, n, out, prob) < 0)
			die("%s: record %llu: %s", rd.name, recno + 1, mura_error_get());
		for (int i = 0; i < n; i++) {
			int px, py, has = mura_cam_peak(&out[i], &px, &py), ow = 0, oh = 0;
			double sx = px + 0.5, sy = py + 0.5;  /* the pixel's centre */
			int placed = has;
			recno++;
			if (mura_write(maps.f, &out[i]) < 0)
				die_lib();
			if (has && root[0]) {
				snprintf(file, sizeof file, "%s/%s", root, in[i].path);
				if (in[i].path[0] == '/')
					snprintf(file, sizeof file, "%s", in[i].path);
				if (mura_image_size(&img, file, &ow, &oh) < 0)
					die("record %llu: %s", recno, mura_error_get());
				placed = mura_image_to_source(o.fit, ow, oh, (int)out[i].w, px, py, &sx, &sy) == 0;
			}
			if (o.png) {
				size_t need = (size_t)3 * out[i].h * out[i].w;
				if (need > rgb_cap && !(rgb = realloc(rgb, rgb_cap = need)))
					die("out of memory");
				png_name(png, sizeof png, o.png, in[i].path, recno);
				if (mura_cam_overlay(&in[i], &out[i], o.cmap, o.opacity, rgb) < 0 ||
				    mura_png_write(png, rgb, (int)out[i].w, (int)out[i].h, MURA_PNG_RGB8) < 0)
					die("record %llu: %s", recno, mura_error_get());
			}
			if (o.tsv) {
				fprintf(tsv.f, "%s\t%s\t%g\t%.6f\t", in[i].path, mura_type_name(in[i].type),
				        (double)in[i].label, (double)prob[i]);
				if (placed)
					fprintf(tsv.f, "%d\t%d", (int)sx, (int)sy);
				else
					fprintf(tsv.f, "NA\tNA");
				fprintf(tsv.f, "\t%s\n", o.png ? strrchr(png, '/') + 1 : "");
			}
			if (o.annot && in[i].label == 1 && prob[i] > 0.5f) {
				size_t first = 0, nb = mura_boxes_of(&boxes, in[i].path, &first);
				int t = in[i].type < MURA_TYPE_COUNT ? in[i].type : 0;
				if (!nb) {
					pg.nobox[t]++, pg.nobox[MURA_TYPE_COUNT]++;
					continue;
				}
				if (!ow) {
					snprintf(file, sizeof file, "%s/%s", root, in[i].path);
					if (mura_image_size(&img, file, &ow, &oh) < 0)
						die("record %llu: %s", recno, mura_error_get());
				}
				int hit = 0;
				for (size_t k = first; placed && k < first + nb; k++)
					hit |= sx >= boxes.b[k].x0 && sx < boxes.b[k].x1 && sy >= boxes.b[k].y0 &&
					       sy < boxes.b[k].y1;
				double share = box_share(boxes.b + first, nb, ow, oh);
				pg.n[t]++, pg.hit[t] += hit, pg.share[t] += share;
				pg.n[MURA_TYPE_COUNT]++, pg.hit[MURA_TYPE_COUNT] += hit, pg.share[MURA_TYPE_COUNT] += share;
			}
		}
	}
	mura_record_free(&pending);

	if (o.annot) {
		output_open(&pt, o.pointing);
		pointing_write(pt.f, &pg);
		output_commit(&pt);
	}
	if (o.tsv)
		output_commit(&tsv);
	output_commit(&maps);
	for (int i = 0; i < b; i++)
		mura_record_free(&in[i]), mura_record_free(&out[i]);
	free(in), free(out), free(prob), free(rgb);
	mura_boxes_free(&boxes);
	if (root[0])
		mura_image_free(&img);
	mura_cam_free(cam);
	mura_reader_free(&rd);
	return close_stdout();
}
