/*
 * cam.c - class activation maps (cam.h): Grad-CAM and CAM over the model
 * API's explaining forward and layer capture (lib/nn/model.h), the maps'
 * peaks and overlays, and the findings' boxes of the pointing game.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cam.h"
#include "cam_cmap.h"
#include "error.h"
#include "nn/model.h"
#include "normalize.h"
#include "score.h"
#include "util.h"

struct mura_cam {
	struct mura_cam_config c;
	struct mura_model *m;
	struct mura_norm norm;
	char layer[128];
	int lc, lh, lw;            /* the layer's shape, for the planned size */
	uint32_t ph, pw;           /* planned input size; 0: none yet */
	const float *cls_w;        /* CAM: the classifier's weights [C] */
	float *x, *logits, *dl, *act, *grad, *low;
	struct mura_record scratch;
};

int
mura_cam_method_parse(const char *s)
{
	if (strcmp(s, "gradcam") == 0)
		return MURA_CAM_GRADCAM;
	if (strcmp(s, "cam") == 0)
		return MURA_CAM_CAM;
	return mura_error("unknown method '%s' (gradcam, cam)", s);
}

int
mura_cmap_parse(const char *s)
{
	if (strcmp(s, "viridis") == 0)
		return MURA_CMAP_VIRIDIS;
	if (strcmp(s, "inferno") == 0)
		return MURA_CMAP_INFERNO;
	return mura_error("unknown colour map '%s' (viridis, inferno)", s);
}

void
mura_cam_free(struct mura_cam *c)
{
	if (!c)
		return;
	mura_model_free(c->m);
	mura_record_free(&c->scratch);
	free(c->x);
	free(c->logits);
	free(c->dl);
	free(c->act);
	free(c->grad);
	free(c->low);
	free(c);
}

struct mura_cam *
mura_cam_create(const struct mura_cam_config *cfg, char *info, size_t infolen)
{
	struct mura_cam *c;

	if (cfg->batch < 1 || cfg->batch > 4096) {
		mura_error("batch %d is out of range [1, 4096]", cfg->batch);
		return NULL;
	}
	if (!(c = calloc(1, sizeof *c))) {
		mura_error("out of memory");
		return NULL;
	}
	c->c = *cfg;
	mura_record_init(&c->scratch);
	if (!(c->m = mura_model_open(cfg->model, cfg->arch, cfg->threads, NULL, info, infolen)))
		goto fail;
	const struct mura_model_config *mc = mura_model_config(c->m);
	if (mura_input_norm(&c->norm, mc) < 0)
		goto fail;
	snprintf(c->layer, sizeof c->layer, "%s", cfg->layer ? cfg->layer : mura_model_last_layer(c->m));
	if (cfg->method == MURA_CAM_CAM) {
		/* CAM needs logit = w . gap(F) + b on the backbone's output F */
		const struct mura_model_tensor *t = mura_model_tensor_find(c->m, "classifier.weight");
		if (!t)
			t = mura_model_tensor_find(c->m, "fc.weight");
		if (mc->head != MURA_HEAD_FC || !t) {
			mura_error("%s: CAM needs a global-average-pool + linear head (fc), not %s: use gradcam",
			           cfg->model, mura_head_name(mc->head));
			goto fail;
		}
		if (cfg->layer && strcmp(cfg->layer, mura_model_last_layer(c->m)) != 0) {
			mura_error("CAM is of the backbone's last layer (%s), not %s: use gradcam for others",
			           mura_model_last_layer(c->m), cfg->layer);
			goto fail;
		}
		c->cls_w = t->data;
	}
	return c;
fail:
	mura_cam_free(c);
	return NULL;
}

const char *
mura_cam_layer(const struct mura_cam *c)
{
	return c->layer;
}

int
mura_cam_batch_size(const struct mura_cam *c)
{
	return c->c.batch;
}

static int
plan(struct mura_cam *c, uint32_t h, uint32_t w)
{
	const int b = c->c.batch;

	c->ph = c->pw = 0;
	/* Grad-CAM needs what backward keeps: a training plan */
	if (mura_model_plan(c->m, b, (int)h, (int)w, c->c.method == MURA_CAM_GRADCAM) < 0 ||
	    mura_model_capture(c->m, c->layer, &c->lc, &c->lh, &c->lw) < 0)
		return -1;
	size_t nx = (size_t)b * 3 * h * w, nl = (size_t)c->lc * c->lh * c->lw;
	free(c->x), free(c->act), free(c->grad), free(c->low), free(c->logits), free(c->dl);
	c->x = malloc(nx * sizeof *c->x);
	c->act = malloc(nl * sizeof *c->act);
	c->grad = malloc(nl * sizeof *c->grad);
	c->low = malloc((size_t)c->lh * c->lw * sizeof *c->low);
	c->logits = malloc((size_t)b * sizeof *c->logits);
	c->dl = malloc((size_t)b * sizeof *c->dl);
	if (!c->x || !c->act || !c->grad || !c->low || !c->logits || !c->dl)
		return mura_error("out of memory");
	for (int i = 0; i < b; i++)
		c->dl[i] = 1;  /* images are independent in evaluation: one backward gives each its own */
	c->ph = h, c->pw = w;
	return 0;
}

/* PyTorch's source index of a bilinear resize, align_corners=False. */
static void
src_index(int dst, int in, int out, int *i0, int *i1, float *l1)
{
	float s = ((float)dst + 0.5f) * ((float)in / (float)out) - 0.5f;
	if (s < 0)
		s = 0;
	*i0 = (int)s;
	*i1 = *i0 + (*i0 < in - 1);
	*l1 = s - (float)*i0;
}

/* low [lh][lw] resized bilinearly to out [h][w]. */
static void
upsample(const float *low, int lh, int lw, float *out, int h, int w)
{
	for (int y = 0; y < h; y++) {
		int y0, y1, x0, x1;
		float ly, lx;
		src_index(y, lh, h, &y0, &y1, &ly);
		for (int x = 0; x < w; x++) {
			src_index(x, lw, w, &x0, &x1, &lx);
			float top = (1 - lx) * low[y0 * lw + x0] + lx * low[y0 * lw + x1];
			float bot = (1 - lx) * low[y1 * lw + x0] + lx * low[y1 * lw + x1];
			out[(size_t)y * w + x] = (1 - ly) * top + ly * bot;
		}
	}
}

/* The map of one image at the layer's size: relu(sum_c weight_c A_c), with
 * weight_c the mean gradient (Grad-CAM) or the classifier's weight (CAM). */
static void
low_map(struct mura_cam *c)
{
	const size_t plane = (size_t)c->lh * c->lw;

	memset(c->low, 0, plane * sizeof *c->low);
	for (int ch = 0; ch < c->lc; ch++) {
		double wt = 0;
		if (c->c.method == MURA_CAM_CAM) {
			wt = c->cls_w[ch];
		} else {
			for (size_t k = 0; k < plane; k++)
				wt += c->grad[ch * plane + k];
			wt /= (double)plane;
		}
		const float a = (float)wt, *A = c->act + ch * plane;
		for (size_t k = 0; k < plane; k++)
			c->low[k] += a * A[k];
	}
	for (size_t k = 0; k < plane; k++)
		c->low[k] = c->low[k] > 0 ? c->low[k] : 0;
}

int
mura_cam_run(struct mura_cam *c, const struct mura_record *in, int n, struct mura_record *out, float *prob)
{
	if (n < 1 || n > c->c.batch)
		return mura_error("%d records, the batch is 1 to %d", n, c->c.batch);
	for (int i = 1; i < n; i++)
		if (in[i].h != in[0].h || in[i].w != in[0].w)
			return mura_error("records of %ux%u and %ux%u in one batch", in[0].h, in[0].w, in[i].h, in[i].w);
	if ((in[0].h != c->ph || in[0].w != c->pw) && plan(c, in[0].h, in[0].w) < 0)
		return -1;
	const size_t one = (size_t)3 * c->ph * c->pw;
	for (int i = 0; i < n; i++)
		if (mura_input_from_record(c->x + i * one, &in[i], &c->norm, &c->scratch) < 0)
			return -1;
	if (c->c.method == MURA_CAM_GRADCAM) {
		mura_model_zero_grad(c->m);
		if (mura_model_forward_explain(c->m, c->x, n, c->logits) < 0 ||
		    mura_model_backward(c->m, c->dl) < 0)
			return -1;
	} else if (mura_model_forward(c->m, c->x, n, 0, c->logits) < 0) {
		return -1;
	}
	for (int i = 0; i < n; i++) {
		if (!isfinite(c->logits[i]))
			return mura_error("the model's logit is %g", (double)c->logits[i]);
		prob[i] = 1 / (1 + expf(-c->logits[i]));
		if (mura_model_captured(c->m, i, c->act, c->c.method == MURA_CAM_GRADCAM ? c->grad : NULL) < 0)
			return -1;
		low_map(c);
		if (mura_record_copy_meta(&out[i], &in[i]) < 0 ||
		    mura_record_alloc(&out[i], MURA_DTYPE_F32, 1, in[i].h, in[i].w) < 0)
			return -1;
		upsample(c->low, c->lh, c->lw, out[i].data, (int)in[i].h, (int)in[i].w);
	}
	return 0;
}

int
mura_cam_peak(const struct mura_record *map, int *x, int *y)
{
	const float *v = map->data;
	size_t best = 0, n = (size_t)map->h * map->w;

	for (size_t k = 1; k < n; k++)
		if (v[k] > v[best])
			best = k;
	*x = (int)(best % map->w), *y = (int)(best / map->w);
	return v[best] > 0;
}

int
mura_cam_overlay(const struct mura_record *img, const struct mura_record *map, int cmap, float opacity,
                 unsigned char *rgb)
{
	const size_t n = (size_t)map->h * map->w;
	const unsigned char(*tab)[3] = cmap == MURA_CMAP_INFERNO ? cmap_inferno : cmap_viridis;
	const float *mv = map->data;
	float lo = INFINITY, hi = -INFINITY, mmax = 0;

	if (img->h != map->h || img->w != map->w || map->dtype != MURA_DTYPE_F32)
		return mura_error("an image of %ux%u and a map of %ux%u", img->w, img->h, map->w, map->h);
	/* the first channel of the image, as gray */
	for (size_t k = 0; k < n; k++) {
		float g = img->dtype == MURA_DTYPE_U8    ? ((const uint8_t *)img->data)[k]
		          : img->dtype == MURA_DTYPE_U16 ? ((const uint16_t *)img->data)[k]
		                                         : ((const float *)img->data)[k];
		lo = g < lo ? g : lo, hi = g > hi ? g : hi;
		mmax = mv[k] > mmax ? mv[k] : mmax;
	}
	for (size_t k = 0; k < n; k++) {
		float g = img->dtype == MURA_DTYPE_U8    ? ((const uint8_t *)img->data)[k]
		          : img->dtype == MURA_DTYPE_U16 ? ((const uint16_t *)img->data)[k]
		                                         : ((const float *)img->data)[k];
		g = hi > lo ? (g - lo) / (hi - lo) * 255.0f : 0;
		int idx = mmax > 0 ? (int)lrintf(mv[k] / mmax * 255.0f) : 0;
		idx = idx < 0 ? 0 : idx > 255 ? 255 : idx;
		for (int ch = 0; ch < 3; ch++)
			rgb[3 * k + (size_t)ch] = (unsigned char)lrintf((1 - opacity) * g + opacity * tab[idx][ch]);
	}
	return 0;
}

/* ---- the findings' boxes -------------------------------------------------- */

void
mura_boxes_free(struct mura_boxes *bx)
{
	for (size_t i = 0; i < bx->n; i++)
		free(bx->b[i].path);
	free(bx->b);
	bx->b = NULL;
	bx->n = 0;
}

int
mura_boxes_read(struct mura_boxes *bx, const char *file)
{
	FILE *f = fopen(file, "r");
	char *line = NULL;
	size_t cap = 0, alloc = 0;
	long lineno = 0;
	ssize_t len;
	int rc = -1;

	bx->b = NULL;
	bx->n = 0;
	if (!f)
		return mura_error("%s: cannot open: %s", file, strerror(errno));
	while ((len = getline(&line, &cap, f)) > 0) {
		lineno++;
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = 0;
		if (lineno == 1) {
			if (strcmp(line, "path,kind,x0,y0,x1,y1") != 0) {
				mura_error("%s: line 1: not the header path,kind,x0,y0,x1,y1", file);
				goto done;
			}
			continue;
		}
		char *c1 = strchr(line, ','), *c2 = c1 ? strchr(c1 + 1, ',') : NULL;
		struct mura_box b;
		int end = 0;
		if (!c2 || sscanf(c2 + 1, "%d,%d,%d,%d%n", &b.x0, &b.y0, &b.x1, &b.y1, &end) != 4 || c2[1 + end] ||
		    b.x0 < 0 || b.y0 < 0 || b.x1 <= b.x0 || b.y1 <= b.y0) {
			mura_error("%s: line %ld: not path,kind,x0,y0,x1,y1 with 0 <= x0 < x1, 0 <= y0 < y1", file,
			           lineno);
			goto done;
		}
		if (bx->n == alloc) {
			struct mura_box *nb = realloc(bx->b, (alloc = alloc ? 2 * alloc : 256) * sizeof *nb);
			if (!nb) {
				mura_error("out of memory");
				goto done;
			}
			bx->b = nb;
		}
		*c1 = 0;
		if (!(b.path = strdup(line))) {
			mura_error("out of memory");
			goto done;
		}
		bx->b[bx->n++] = b;
	}
	if (ferror(f))
		mura_error("%s: read error", file);
	else if (lineno == 0)
		mura_error("%s: empty (no header line)", file);
	else
		rc = 0;
done:
	free(line);
	fclose(f);
	if (rc < 0)
		mura_boxes_free(bx);
	return rc;
}

/* a equals b, or ends with "/b", or b ends with "/a" */
static int
same_path(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	if (la == lb)
		return strcmp(a, b) == 0;
	if (la < lb) {
		const char *t = a;
		a = b, b = t;
		size_t l = la;
		la = lb, lb = l;
	}
	return a[la - lb - 1] == '/' && strcmp(a + la - lb, b) == 0;
}

size_t
mura_boxes_of(const struct mura_boxes *bx, const char *path, size_t *first)
{
	size_t k = 0;

	/* boxes of one image are adjacent in the file mura-synth writes */
	for (size_t i = 0; i < bx->n; i++)
		if (same_path(bx->b[i].path, path)) {
			if (!k)
				*first = i;
			k++;
		} else if (k) {
			break;
		}
	return k;
}
