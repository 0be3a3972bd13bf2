/* augment.c - random per-record transforms, mixup, and the spec grammar; see augment.h. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "augment.h"
#include "error.h"
#include "util.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

/*
 * Each transform's name in a spec, its identity value, what a single value
 * X means ([centre - X, centre + X]) and the bounds of X and of a range A:B.
 */
static const struct kind {
	const char *name;
	double identity;
	double x_max;        /* a single value X is in [0, x_max] */
	int x_open;          /* ... or [0, x_max) */
	double lo_min, hi_max; /* a range A:B has lo_min <= A <= B <= hi_max */
	int lo_open;         /* ... lo_min < A */
} kinds[MURA_AUG_COUNT] = {
	[MURA_AUG_FLIP] = {"flip", 0, 1, 0, 0, 0, 0},
	[MURA_AUG_ROTATE] = {"rotate", 0, 180, 0, -180, 180, 0},
	[MURA_AUG_ZOOM] = {"zoom", 1, 1, 1, 0, 10, 1},
	[MURA_AUG_TRANSLATE] = {"translate", 0, 1, 0, -1, 1, 0},
	[MURA_AUG_CONTRAST] = {"contrast", 1, 1, 0, 0, 10, 0},
	[MURA_AUG_BRIGHTNESS] = {"brightness", 0, 1, 0, -1, 1, 0},
};

void
mura_aug_spec_none(struct mura_aug_spec *s)
{
	memset(s, 0, sizeof *s);
	for (int k = 0; k < MURA_AUG_COUNT; k++)
		s->t[k] = (struct mura_aug_param){0, kinds[k].identity, kinds[k].identity};
}

void
mura_aug_spec_default(struct mura_aug_spec *s)
{
	mura_aug_spec_none(s);
	s->t[MURA_AUG_FLIP].p = 0.5;
	s->t[MURA_AUG_ROTATE] = (struct mura_aug_param){1, -30, 30};
	s->t[MURA_AUG_ZOOM] = (struct mura_aug_param){1, 0.9, 1.1};
	s->t[MURA_AUG_CONTRAST] = (struct mura_aug_param){1, 0.8, 1.2};
}

/* "X", "A:B", either followed by "@P". */
static int
parse_range(int k, const char *value, struct mura_aug_param *out)
{
	const struct kind *kd = &kinds[k];
	char buf[128], *at, *colon;
	double a, b, p = 1;

	if (strlen(value) >= sizeof buf)
		return mura_error("'%s' is too long", value);
	strcpy(buf, value);
	if ((at = strchr(buf, '@'))) {
		*at = 0;
		if (mura_parse_double(at + 1, 0, 1, &p) < 0)
			return mura_error_prefix("probability");
	}
	if ((colon = strchr(buf, ':'))) {
		*colon = 0;
		if (mura_parse_double(buf, kd->lo_min, kd->hi_max, &a) < 0 ||
		    mura_parse_double(colon + 1, kd->lo_min, kd->hi_max, &b) < 0)
			return -1;
		if (a > b)
			return mura_error("range %g:%g runs backwards", a, b);
		if (kd->lo_open && a <= kd->lo_min)
			return mura_error("%g must be above %g", a, kd->lo_min);
	} else {
		double x;
		if (mura_parse_double(buf, 0, 1e9, &x) < 0)
			return -1;
		if (x > kd->x_max || (kd->x_open && x >= kd->x_max))
			return mura_error("'%s': a single value is the largest change, 0 to %s %g "
			                  "(write a range of values as LO:HI)",
			                  buf, kd->x_open ? "below" : "at most", kd->x_max);
		a = kd->identity - x;
		b = kd->identity + x;
	}
	*out = (struct mura_aug_param){p, a, b};
	return 0;
}

int
mura_aug_spec_set(struct mura_aug_spec *s, const char *name, const char *value)
{
	if (!strcmp(name, "none") || !strcmp(name, "default")) {
		if (value)
			return mura_error("'%s' takes no value", name);
		if (*name == 'n')
			mura_aug_spec_none(s);
		else
			mura_aug_spec_default(s);
		return 0;
	}
	if (!value)
		return mura_error("'%s' needs a value (%s=...)", name, name);
	if (!strcmp(name, "fill"))
		return mura_parse_double(value, -1e30, 1e30, &s->fill) < 0 ? mura_error_prefix("fill") : 0;
	if (!strcmp(name, "mixup"))
		return mura_parse_double(value, 0, 1000, &s->mixup) < 0 ? mura_error_prefix("mixup") : 0;
	if (!strcmp(name, "flip"))
		return mura_parse_double(value, 0, 1, &s->t[MURA_AUG_FLIP].p) < 0 ? mura_error_prefix("flip") : 0;
	if (!strcmp(name, "rot"))
		name = "rotate";
	for (int k = MURA_AUG_ROTATE; k < MURA_AUG_COUNT; k++)
		if (!strcmp(name, kinds[k].name))
			return parse_range(k, value, &s->t[k]) < 0 ? mura_error_prefix("%s", name) : 0;
	return mura_error("unknown transform '%s' (flip, rotate, zoom, translate, contrast, brightness, "
	                  "fill, mixup, none, default)",
	                  name);
}

int
mura_aug_spec_parse(struct mura_aug_spec *s, const char *spec)
{
	const char *p = spec;

	mura_aug_spec_none(s);
	if (!*spec)
		return mura_error("empty augmentation spec (use 'none')");
	while (*p) {
		size_t n = strcspn(p, ",");
		char item[160], *eq;

		if (n == 0 || n >= sizeof item)
			return mura_error("'%s': %s item", spec, n ? "overlong" : "empty");
		memcpy(item, p, n);
		item[n] = 0;
		if ((eq = strchr(item, '=')))
			*eq = 0;
		if (mura_aug_spec_set(s, item, eq ? eq + 1 : NULL) < 0)
			return mura_error_prefix("'%s'", spec);
		p += n;
		if (*p == ',' && !*++p)
			return mura_error("'%s': empty item at the end", spec);
	}
	return 0;
}

/* Append to buf as snprintf would, tracking the length needed. */
static void __attribute__((format(printf, 4, 5)))
appendf(char *buf, size_t size, size_t *len, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(*len < size ? buf + *len : NULL, *len < size ? size - *len : 0, fmt, ap);
	va_end(ap);
	if (n > 0)
		*len += (size_t)n;
}

int
mura_aug_spec_format(const struct mura_aug_spec *s, char *buf, size_t size)
{
	size_t len = 0;

	if (size)
		buf[0] = 0;
	if (s->t[MURA_AUG_FLIP].p > 0)
		appendf(buf, size, &len, "flip=%.15g", s->t[MURA_AUG_FLIP].p);
	for (int k = MURA_AUG_ROTATE; k < MURA_AUG_COUNT; k++) {
		const struct mura_aug_param *t = &s->t[k];
		if (t->p == 0 || (t->lo == kinds[k].identity && t->hi == kinds[k].identity))
			continue;
		appendf(buf, size, &len, "%s%s=%.15g:%.15g", len ? "," : "", kinds[k].name, t->lo, t->hi);
		if (t->p < 1)
			appendf(buf, size, &len, "@%.15g", t->p);
	}
	if (s->fill != 0)
		appendf(buf, size, &len, "%sfill=%.15g", len ? "," : "", s->fill);
	if (s->mixup > 0)
		appendf(buf, size, &len, "%smixup=%.15g", len ? "," : "", s->mixup);
	if (!len)
		appendf(buf, size, &len, "none");
	return (int)len;
}

void
mura_aug_draw(const struct mura_aug_spec *s, struct mura_rng *rng, struct mura_aug_draw *d)
{
	double u[MURA_AUG_COUNT], v[MURA_AUG_COUNT], ty;

	/* Every record draws the same numbers in the same order, applied or not. */
	for (int k = 0; k < MURA_AUG_COUNT; k++) {
		u[k] = mura_rng_double(rng);
		v[k] = mura_rng_uniform(rng, s->t[k].lo, s->t[k].hi);
	}
	ty = mura_rng_uniform(rng, s->t[MURA_AUG_TRANSLATE].lo, s->t[MURA_AUG_TRANSLATE].hi);
	d->flip = u[MURA_AUG_FLIP] < s->t[MURA_AUG_FLIP].p;
#define DRAWN(k, id) (u[k] < s->t[k].p ? v[k] : (id))
	d->angle = DRAWN(MURA_AUG_ROTATE, 0);
	d->scale = DRAWN(MURA_AUG_ZOOM, 1);
	d->tx = DRAWN(MURA_AUG_TRANSLATE, 0);
	d->ty = u[MURA_AUG_TRANSLATE] < s->t[MURA_AUG_TRANSLATE].p ? ty : 0;
	d->contrast = DRAWN(MURA_AUG_CONTRAST, 1);
	d->brightness = DRAWN(MURA_AUG_BRIGHTNESS, 0);
#undef DRAWN
}

void
mura_aug_init(struct mura_aug *a, const struct mura_aug_spec *s)
{
	memset(a, 0, sizeof *a);
	a->spec = *s;
}

void
mura_aug_free(struct mura_aug *a)
{
	free(a->buf);
	free(a->mix);
	free(a->perm);
	free(a->label);
	memset(a, 0, sizeof *a);
}

static int
check_dtype(const struct mura_record *r)
{
	if (r->dtype != MURA_DTYPE_U8 && r->dtype != MURA_DTYPE_F32)
		return mura_error("dtype %s cannot be augmented (u8 or f32 expected)", mura_dtype_name(r->dtype));
	return 0;
}

static uint8_t
round_u8(float v)
{
	v += 0.5f;
	return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* Within a millionth of a pixel centre is on it: rotations by multiples of
 * 90 degrees then move pixels exactly, whatever cos(pi/2) rounds to. */
static double
snap(double v)
{
	double r = nearbyint(v);
	return fabs(v - r) < 1e-6 ? r : v;
}

/*
 * The warp, by inverse mapping: output pixel (x, y) takes the input at
 *   c + F(R(-angle) (p - c - t) / scale)
 * with c = ((w - 1) / 2, (h - 1) / 2) the centre, t the translation in
 * pixels, R a counter-clockwise rotation as seen (y points down) and F the
 * mirror x -> -x when flipping.  Bilinear between the four neighbours, a
 * neighbour outside the image counting as the fill value.
 */
static void
warp(const struct mura_aug_draw *d, const float *src, struct mura_record *r, float fill)
{
	const int w = (int)r->w, h = (int)r->h, c = (int)r->c;
	const size_t plane = (size_t)w * h;
	const double th = d->angle * M_PI / 180, cs = cos(th) / d->scale, sn = sin(th) / d->scale;
	const double cx = (w - 1) / 2.0, cy = (h - 1) / 2.0, tx = d->tx * w, ty = d->ty * h;

	for (int y = 0; y < h; y++) {
		for (int x = 0; x < w; x++) {
			double dx = x - cx - tx, dy = y - cy - ty;
			double ux = dx * cs - dy * sn, uy = dx * sn + dy * cs;
			double sx = snap(cx + (d->flip ? -ux : ux)), sy = snap(cy + uy);
			double fx0 = floor(sx), fy0 = floor(sy);
			size_t o = (size_t)y * w + x;
			int x0, y0;
			float fx, fy, w00, w10, w01, w11;

			if (fx0 < -1 || fx0 >= w || fy0 < -1 || fy0 >= h) {
				for (int k = 0; k < c; k++)
					if (r->dtype == MURA_DTYPE_U8)
						((uint8_t *)r->data)[k * plane + o] = round_u8(fill);
					else
						((float *)r->data)[k * plane + o] = fill;
				continue;
			}
			x0 = (int)fx0;
			y0 = (int)fy0;
			fx = (float)(sx - fx0);
			fy = (float)(sy - fy0);
			w00 = (1 - fx) * (1 - fy);
			w10 = fx * (1 - fy);
			w01 = (1 - fx) * fy;
			w11 = fx * fy;
			for (int k = 0; k < c; k++) {
				const float *p = src + k * plane;
#define AT(xx, yy) ((xx) >= 0 && (xx) < w && (yy) >= 0 && (yy) < h ? p[(size_t)(yy) * w + (xx)] : fill)
				float v = w00 * AT(x0, y0) + w10 * AT(x0 + 1, y0) + w01 * AT(x0, y0 + 1) +
				          w11 * AT(x0 + 1, y0 + 1);
#undef AT
				if (r->dtype == MURA_DTYPE_U8)
					((uint8_t *)r->data)[k * plane + o] = round_u8(v);
				else
					((float *)r->data)[k * plane + o] = v;
			}
		}
	}
}

int
mura_aug_apply(struct mura_aug *a, const struct mura_aug_draw *d, struct mura_record *r)
{
	const size_t plane = (size_t)r->h * r->w, n = plane * r->c;
	const float full = r->dtype == MURA_DTYPE_U8 ? 255.0f : 1.0f;
	int geometric = d->flip || d->angle != 0 || d->scale != 1 || d->tx != 0 || d->ty != 0;
	int photometric = d->contrast != 1 || d->brightness != 0;

	if (check_dtype(r) < 0)
		return -1;
	if (!geometric && !photometric)
		return 0;
	if (mura_grow(&a->buf, &a->buf_cap, n, sizeof *a->buf) < 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		a->buf[i] = r->dtype == MURA_DTYPE_U8 ? ((const uint8_t *)r->data)[i] : ((const float *)r->data)[i];
	if (photometric) {
		for (uint32_t k = 0; k < r->c; k++) {
			float *p = a->buf + k * plane, mean, off;
			double sum = 0;
			for (size_t i = 0; i < plane; i++)
				sum += p[i];
			mean = (float)(sum / plane);
			off = (float)(mean * (1 - d->contrast) + d->brightness * full);
			for (size_t i = 0; i < plane; i++)
				p[i] = p[i] * (float)d->contrast + off;
		}
	}
	if (geometric) {
		warp(d, a->buf, r, (float)a->spec.fill);
		return 0;
	}
	for (size_t i = 0; i < n; i++)
		if (r->dtype == MURA_DTYPE_U8)
			((uint8_t *)r->data)[i] = round_u8(a->buf[i]);
		else
			((float *)r->data)[i] = a->buf[i];
	return 0;
}

int
mura_aug_record(struct mura_aug *a, struct mura_record *r, uint64_t seed, uint64_t epoch)
{
	struct mura_rng rng;
	struct mura_aug_draw d;

	mura_rng_derive(&rng, seed, epoch, r->path);
	mura_aug_draw(&a->spec, &rng, &d);
	return mura_aug_apply(a, &d, r);
}

int
mura_aug_mixable(const struct mura_record *first, const struct mura_record *r)
{
	if (check_dtype(r) < 0)
		return -1;
	if (r->dtype != first->dtype || r->c != first->c || r->h != first->h || r->w != first->w)
		return mura_error("%s %ux%ux%u differs from the batch's first record, %s %ux%ux%u: "
		                  "mixup needs one shape",
		                  mura_dtype_name(r->dtype), r->c, r->h, r->w, mura_dtype_name(first->dtype),
		                  first->c, first->h, first->w);
	if (!(r->label >= 0 && r->label <= 1))
		return mura_error("label unknown: mixup needs labels");
	return 0;
}

int
mura_aug_mixup(struct mura_aug *a, struct mura_record *recs, size_t n, struct mura_rng *rng)
{
	const double alpha = a->spec.mixup;
	size_t bytes;

	if (alpha <= 0 || n == 0)
		return 0;
	bytes = mura_record_nbytes(&recs[0]);
	for (size_t i = 0; i < n; i++)
		if (mura_aug_mixable(&recs[0], &recs[i]) < 0)
			return mura_error_prefix("record %zu", i + 1);
	if (mura_grow(&a->mix, &a->mix_cap, n * bytes, 1) < 0 || mura_grow(&a->perm, &a->perm_cap, n, sizeof *a->perm) < 0 ||
	    mura_grow(&a->label, &a->label_cap, n, sizeof *a->label) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		memcpy(a->mix + i * bytes, recs[i].data, bytes);
		a->perm[i] = i;
		a->label[i] = recs[i].label;
	}
	for (size_t i = n - 1; i > 0; i--) { /* Fisher-Yates */
		size_t j = (size_t)mura_rng_below(rng, i + 1), t = a->perm[i];
		a->perm[i] = a->perm[j];
		a->perm[j] = t;
	}
	for (size_t i = 0; i < n; i++) {
		size_t j = a->perm[i], m = bytes / mura_dtype_size(recs[i].dtype);
		double l = mura_rng_beta(rng, alpha, alpha), lam = l > 0.5 ? l : 1 - l;
		float fl = (float)lam, fm = (float)(1 - lam);

		if (recs[i].dtype == MURA_DTYPE_U8) {
			const uint8_t *x = a->mix + i * bytes, *y = a->mix + j * bytes;
			uint8_t *o = recs[i].data;
			for (size_t e = 0; e < m; e++)
				o[e] = round_u8(fl * x[e] + fm * y[e]);
		} else {
			const float *x = (const float *)(a->mix + i * bytes), *y = (const float *)(a->mix + j * bytes);
			float *o = recs[i].data;
			for (size_t e = 0; e < m; e++)
				o[e] = fl * x[e] + fm * y[e];
		}
		recs[i].label = (float)fmin(1, lam * a->label[i] + (1 - lam) * a->label[j]);
	}
	return 0;
}
