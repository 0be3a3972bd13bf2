/* normalize.c - u8/u16 records to normalised f32, and a stream's statistics; see normalize.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "normalize.h"

static const double imagenet_mean[3] = {0.485, 0.456, 0.406};
static const double imagenet_std[3] = {0.229, 0.224, 0.225};

void
mura_norm_default(struct mura_norm *n, int channels)
{
	memset(n, 0, sizeof *n);
	n->channels = channels;
	for (int c = 0; c < MURA_NORM_MAX_CHANNELS; c++) {
		n->mean[c] = channels == 1 ? 0.449 : imagenet_mean[c];
		n->std[c] = channels == 1 ? 0.226 : imagenet_std[c];
	}
}

int
mura_norm_init(struct mura_norm *n)
{
	if (n->channels < 1 || n->channels > MURA_NORM_MAX_CHANNELS)
		return mura_error("%d channels: 1 to %d allowed", n->channels, MURA_NORM_MAX_CHANNELS);
	for (int c = 0; c < n->channels; c++) {
		if (!isfinite(n->mean[c]))
			return mura_error("mean of channel %d is not a finite number", c + 1);
		if (!isfinite(n->std[c]) || !(n->std[c] > 0))
			return mura_error("standard deviation of channel %d is %g: it must be positive", c + 1,
			                  n->std[c]);
		for (int v = 0; v < 256; v++)
			n->lut[c][v] = (float)((v / 255.0 - n->mean[c]) / n->std[c]);
	}
	return 0;
}

/* Refuse what cannot be normalised, saying what the record has. */
static int
check(int channels, const struct mura_record *r)
{
	if (r->dtype != MURA_DTYPE_U8 && r->dtype != MURA_DTYPE_U16)
		return mura_error("dtype %s cannot be normalised (u8 or u16 expected)", mura_dtype_name(r->dtype));
	if (r->c != 1 && r->c != (uint32_t)channels)
		return mura_error("%u channels cannot become %d (1 or %d expected)", r->c, channels, channels);
	return 0;
}

int
mura_norm_apply(const struct mura_norm *n, const struct mura_record *in, struct mura_record *out)
{
	size_t plane = (size_t)in->h * in->w;

	if (check(n->channels, in) < 0 ||
	    mura_record_alloc(out, MURA_DTYPE_F32, (uint32_t)n->channels, in->h, in->w) < 0 ||
	    mura_record_copy_meta(out, in) < 0)
		return -1;
	for (int c = 0; c < n->channels; c++) {
		float *o = (float *)out->data + c * plane;
		size_t from = in->c == 1 ? 0 : c * plane;

		if (in->dtype == MURA_DTYPE_U8) {
			const uint8_t *p = (const uint8_t *)in->data + from;
			const float *lut = n->lut[c];
			for (size_t i = 0; i < plane; i++)
				o[i] = lut[p[i]];
		} else {
			const uint16_t *p = (const uint16_t *)in->data + from;
			for (size_t i = 0; i < plane; i++)
				o[i] = (float)((p[i] / 65535.0 - n->mean[c]) / n->std[c]);
		}
	}
	return 0;
}

int
mura_norm_stats_init(struct mura_norm_stats *s, int channels)
{
	memset(s, 0, sizeof *s);
	if (channels < 1 || channels > MURA_NORM_MAX_CHANNELS)
		return mura_error("%d channels: 1 to %d allowed", channels, MURA_NORM_MAX_CHANNELS);
	s->channels = channels;
	if (!(s->hist8 = calloc((size_t)channels * 256, sizeof *s->hist8)))
		return mura_error("out of memory");
	return 0;
}

void
mura_norm_stats_free(struct mura_norm_stats *s)
{
	free(s->hist8);
	free(s->hist16);
	memset(s, 0, sizeof *s);
}

int
mura_norm_stats_add(struct mura_norm_stats *s, const struct mura_record *r)
{
	size_t plane = (size_t)r->h * r->w;

	if (check(s->channels, r) < 0)
		return -1;
	if (r->dtype == MURA_DTYPE_U16 && !s->hist16 &&
	    !(s->hist16 = calloc((size_t)s->channels * 65536, sizeof *s->hist16)))
		return mura_error("out of memory");
	for (int c = 0; c < s->channels; c++) {
		size_t from = r->c == 1 ? 0 : c * plane;
		if (r->dtype == MURA_DTYPE_U8) {
			const uint8_t *p = (const uint8_t *)r->data + from;
			uint64_t *h = s->hist8 + (size_t)c * 256;
			for (size_t i = 0; i < plane; i++)
				h[p[i]]++;
		} else {
			const uint16_t *p = (const uint16_t *)r->data + from;
			uint64_t *h = s->hist16 + (size_t)c * 65536;
			for (size_t i = 0; i < plane; i++)
				h[p[i]]++;
		}
	}
	return 0;
}

/* Add up sum(count * f(v)) over a histogram of `bins` values scaled by 1/max. */
static void
moments(const uint64_t *h, int bins, double mean, double *count, double *sum, double *sq)
{
	double max = bins - 1;

	for (int v = 0; v < bins; v++) {
		double x = v / max, d = x - mean;
		if (!h[v])
			continue;
		*count += (double)h[v];
		*sum += (double)h[v] * x;
		*sq += (double)h[v] * d * d;
	}
}

int
mura_norm_stats_result(const struct mura_norm_stats *s, struct mura_norm *n)
{
	mura_norm_default(n, s->channels);
	for (int c = 0; c < s->channels; c++) {
		double count = 0, sum = 0, sq = 0, mean;

		/* Two passes: the mean first, then squared deviations from it,
		 * which keeps the variance accurate however many values. */
		moments(s->hist8 + (size_t)c * 256, 256, 0, &count, &sum, &sq);
		if (s->hist16)
			moments(s->hist16 + (size_t)c * 65536, 65536, 0, &count, &sum, &sq);
		if (count == 0)
			return mura_error("no values to compute statistics from");
		mean = sum / count;
		count = sum = sq = 0;
		moments(s->hist8 + (size_t)c * 256, 256, mean, &count, &sum, &sq);
		if (s->hist16)
			moments(s->hist16 + (size_t)c * 65536, 65536, mean, &count, &sum, &sq);
		n->mean[c] = mean;
		n->std[c] = sqrt(sq / count);
	}
	return 0;
}
