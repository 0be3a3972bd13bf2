/*
 * image.c - decode an image file with libvips, convert it to one gray
 * channel and resize it to an N x N u8 record; see image.h for the
 * conversions and the filter.
 *
 * libvips decodes; the resampling is ours.  vips_resize() (shrink, then a
 * lanczos3 reduce, or an affine transform to upscale) cost 1 to 2 ms per
 * MURA-sized image here, more than the PNG decoding itself, because every
 * image builds a new pipeline of operations; the separable triangle filter
 * below does the same job in a tenth of that.  Pixels are pulled straight
 * from a VipsRegion in the calling thread, so no worker thread or sink is
 * started per image.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vips/vips.h>

#include "error.h"
#include "util.h"
#include "image.h"

/* Bytes of decoded input pulled from libvips at a time. */
#define STRIP_BYTES (1 << 16)

static const char *const fit_names[] = {"stretch", "pad", "crop"};

int
mura_fit_parse(const char *s)
{
	for (int i = 0; i < (int)(sizeof fit_names / sizeof *fit_names); i++)
		if (!strcmp(s, fit_names[i]))
			return i;
	return mura_error("'%s' is not a fit (stretch, pad or crop)", s);
}

const char *
mura_fit_name(int fit)
{
	return fit >= 0 && fit <= MURA_FIT_CROP ? fit_names[fit] : "unknown";
}

/* libvips is a process-wide library: it is started once, and its settings
 * (no operation cache, so a stream of files holds no decoded images; one
 * thread, since we pull pixels ourselves; trusted loaders only, as the
 * files come from outside) are set then and never changed. */
static pthread_once_t vips_once = PTHREAD_ONCE_INIT;
static int vips_started;

/* libvips reports a loader's details (libpng's "not enough data", "bad
 * adaptive filter value") as GLib warnings, which would go to stderr.  The
 * library does not print: the first warning of the current decode is kept
 * here, per thread as mura_error's message is, and joins the error message
 * if the decode fails. */
static _Thread_local char vips_warning[160];

static void
keep_warning(const char *domain, GLogLevelFlags level, const char *msg, void *data)
{
	(void)domain, (void)level, (void)data;
	if (!vips_warning[0] && strncmp(msg, "error in tile", 13))
		snprintf(vips_warning, sizeof vips_warning, "%s", msg);
}

static void
start_vips(void)
{
	if (VIPS_INIT("mura") != 0)
		return;
	g_log_set_handler("VIPS", G_LOG_LEVEL_WARNING | G_LOG_LEVEL_MESSAGE | G_LOG_LEVEL_INFO |
	                  G_LOG_LEVEL_DEBUG, keep_warning, NULL);
	vips_cache_set_max(0);
	vips_concurrency_set(1);
	vips_block_untrusted_set(TRUE);
	vips_started = 1;
}

int
mura_image_init(struct mura_image *im, const struct mura_image_opts *opt)
{
	memset(im, 0, sizeof *im);
	if (opt->size < 1 || opt->size > MURA_IMAGE_MAX_SIZE)
		return mura_error("size %u out of range [1, %d]", opt->size, MURA_IMAGE_MAX_SIZE);
	if (opt->fit < MURA_FIT_STRETCH || opt->fit > MURA_FIT_CROP)
		return mura_error("unknown fit %d", opt->fit);
	if (!opt->max_pixels)
		return mura_error("max_pixels must be positive");
	im->opt = *opt;
	pthread_once(&vips_once, start_vips);
	if (!vips_started) {
		vips_error_clear();
		return mura_error("libvips failed to start");
	}
	return 0;
}

static void
filter_free(struct mura_image_filter *f)
{
	free(f->w);
	free(f->start);
	free(f->n);
}

void
mura_image_free(struct mura_image *im)
{
	free(im->file);
	free(im->row);
	free(im->tmp);
	free(im->acc);
	filter_free(&im->h);
	filter_free(&im->v);
	memset(im, 0, sizeof *im);
}

static double
triangle(double x)
{
	x = fabs(x);
	return x < 1.0 ? 1.0 - x : 0.0;
}

/*
 * The taps mapping the input interval [in0, in1) of an axis of in_size
 * pixels onto out_size pixels, as Pillow's precompute_coeffs() places them:
 * output i is centred on in0 + (i + 0.5) * scale, and the triangle is
 * stretched by the reduction factor when shrinking.  Taps that would fall
 * outside the image are left out and the rest renormalised, so the edges
 * keep their brightness.  Every output gets the same number of taps (the
 * most any needs, zero-weighted where it needs fewer, shifted inside the
 * image at the edges), so the loops over taps have a fixed length.
 */
static int
filter_make(struct mura_image_filter *f, int in_size, double in0, double in1, int out_size)
{
	double scale = (in1 - in0) / out_size, fscale = scale < 1.0 ? 1.0 : scale;
	double support = fscale; /* the triangle's support is 1 */
	int taps = 1, most = (int)ceil(support) * 2 + 1;

	if (mura_grow(&f->w, &f->w_cap, (size_t)out_size * most, sizeof *f->w) < 0 ||
	    mura_grow(&f->start, &f->start_cap, (size_t)out_size, sizeof *f->start) < 0 ||
	    mura_grow(&f->n, &f->n_cap, (size_t)out_size, sizeof *f->n) < 0)
		return -1;
	for (int i = 0; i < out_size; i++) {
		double centre = in0 + (i + 0.5) * scale;
		int lo = (int)(centre - support + 0.5), hi = (int)(centre + support + 0.5);

		if (lo < 0)
			lo = 0;
		if (hi > in_size)
			hi = in_size;
		while (hi - lo > 1 && triangle((hi - 1 - centre + 0.5) / fscale) == 0)
			hi--;
		while (hi - lo > 1 && triangle((lo - centre + 0.5) / fscale) == 0)
			lo++;
		f->start[i] = lo;
		f->n[i] = hi - lo;
		if (hi - lo > taps)
			taps = hi - lo;
	}
	f->taps = taps;
	for (int i = 0; i < out_size; i++) {
		double centre = in0 + (i + 0.5) * scale, sum = 0;
		int lo = f->start[i], hi = lo + f->n[i], s = lo;
		float *w = f->w + (size_t)i * taps;

		if (s + taps > in_size)
			s = in_size - taps;
		for (int j = lo; j < hi; j++)
			sum += triangle((j - centre + 0.5) / fscale);
		for (int k = 0; k < taps; k++) {
			int j = s + k;
			w[k] = j < lo || j >= hi ? 0.0f : (float)(sum > 0 ? triangle((j - centre + 0.5) / fscale) / sum : 1.0 / (hi - lo));
		}
		f->start[i] = s;
	}
	return 0;
}

/* The first line of libvips' error buffer after "FILE: what", then clear it. */
static int
vips_fail(const char *file, const char *what)
{
	const char *e = vips_error_buffer();
	int n = (int)strcspn(e, "\n");

	while (n > 0 && (e[n - 1] == ' ' || e[n - 1] == '.'))
		n--;
	mura_error("%s: %s%s%.*s%s%s%s", file, what, n ? ": " : "", n, e, vips_warning[0] ? " (" : "",
	           vips_warning, vips_warning[0] ? ")" : "");
	vips_error_clear();
	return -1;
}

/* Read the whole file into im->file: one open and one read, where
 * libvips' own file source would seek and read in small pieces. */
static int
read_file(struct mura_image *im, const char *file)
{
	struct stat st;
	size_t got = 0;
	int fd = open(file, O_RDONLY);

	if (fd < 0)
		return mura_error("%s: %s", file, strerror(errno));
	if (fstat(fd, &st) < 0) {
		mura_error("%s: %s", file, strerror(errno));
		goto fail;
	}
	if (S_ISDIR(st.st_mode)) {
		mura_error("%s: is a directory", file);
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		mura_error("%s: not a regular file", file);
		goto fail;
	}
	if (st.st_size == 0) {
		mura_error("%s: empty file", file);
		goto fail;
	}
	if ((uint64_t)st.st_size > MURA_IMAGE_MAX_FILE) {
		mura_error("%s: file larger than %llu bytes", file, (unsigned long long)MURA_IMAGE_MAX_FILE);
		goto fail;
	}
	if (mura_grow(&im->file, &im->file_cap, (size_t)st.st_size, 1) < 0) {
		mura_error_prefix("%s", file);
		goto fail;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, im->file + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			mura_error("%s: %s", file, n < 0 ? strerror(errno) : "file shrank while read");
			goto fail;
		}
		got += (size_t)n;
	}
	im->file_len = got;
	close(fd);
	return 0;
fail:
	close(fd);
	return -1;
}

/* Where the image lands in the N x N output: the input box [x0, x1) x
 * [y0, y1) is resampled to ow x oh pixels placed at (ox, oy). */
struct placement {
	double x0, x1, y0, y1;
	int ow, oh, ox, oy;
};

static void
place(int fit, int w, int h, int n, struct placement *p)
{
	double s;

	*p = (struct placement){0, w, 0, h, n, n, 0, 0};
	if (fit == MURA_FIT_PAD) {
		s = fmin((double)n / w, (double)n / h);
		p->ow = w >= h ? n : (int)fmax(1, lround(w * s));
		p->oh = h >= w ? n : (int)fmax(1, lround(h * s));
		p->ox = (n - p->ow) / 2;
		p->oy = (n - p->oh) / 2;
	} else if (fit == MURA_FIT_CROP) {
		double side = w < h ? w : h; /* the centred square of the shorter side */
		p->x0 = (w - side) / 2;
		p->x1 = p->x0 + side;
		p->y0 = (h - side) / 2;
		p->y1 = p->y0 + side;
	}
}

/*
 * The inner loops below run over blocks of 8 with restrict pointers, a
 * shape that GCC's -O2 vectoriser takes (it does not version loops for
 * aliasing, nor add an epilogue); the remainder is done one by one.
 */
#define BLOCK 8

#define LUMA(r, g, b) (0.299f * (r) + 0.587f * (g) + 0.114f * (b))

/* One row of `bands` samples of type T to gray float, alpha flattened on black. */
#define GRAY_ROW(T)                                                            \
	do {                                                                       \
		const T *restrict p = src;                                             \
		int x = 0;                                                             \
		switch (bands) {                                                       \
		case 1:                                                                \
			for (; x + BLOCK <= w; x += BLOCK)                                 \
				for (int j = 0; j < BLOCK; j++)                                \
					dst[x + j] = p[x + j];                                     \
			for (; x < w; x++)                                                 \
				dst[x] = p[x];                                                 \
			break;                                                             \
		case 2:                                                                \
			for (; x < w; x++)                                                 \
				dst[x] = p[2 * x] * (p[2 * x + 1] * amax_inv);                 \
			break;                                                             \
		case 3:                                                                \
			for (; x < w; x++)                                                 \
				dst[x] = LUMA(p[3 * x], p[3 * x + 1], p[3 * x + 2]);           \
			break;                                                             \
		default:                                                               \
			for (; x < w; x++)                                                 \
				dst[x] = LUMA(p[4 * x], p[4 * x + 1], p[4 * x + 2]) *          \
				         (p[4 * x + 3] * amax_inv);                            \
		}                                                                      \
	} while (0)

static void
gray_row(const void *src, int fmt, int bands, int w, float *restrict dst)
{
	if (fmt == VIPS_FORMAT_UCHAR) {
		const float amax_inv = 1.0f / 255;
		GRAY_ROW(unsigned char);
	} else {
		const float amax_inv = 1.0f / 65535;
		GRAY_ROW(unsigned short);
	}
}

/* out[x] = sum of the taps of x over row; T taps, known when inlined. */
static inline void
horizontal_taps(const struct mura_image_filter *f, const float *restrict row, int ow,
                float *restrict out, const int T)
{
	for (int x = 0; x < ow; x++) {
		const float *w = f->w + (size_t)x * T, *p = row + f->start[x];
		float s = 0;
		for (int k = 0; k < T; k++)
			s += w[k] * p[k];
		out[x] = s;
	}
}

static void
horizontal(const struct mura_image_filter *f, const float *row, int ow, float *out)
{
	switch (f->taps) {
	case 1: horizontal_taps(f, row, ow, out, 1); break;
	case 2: horizontal_taps(f, row, ow, out, 2); break;
	case 3: horizontal_taps(f, row, ow, out, 3); break;
	case 4: horizontal_taps(f, row, ow, out, 4); break;
	case 5: horizontal_taps(f, row, ow, out, 5); break;
	case 6: horizontal_taps(f, row, ow, out, 6); break;
	default: horizontal_taps(f, row, ow, out, f->taps);
	}
}

/* acc[x] += wt * row[x] */
static void
accumulate(float *restrict acc, const float *restrict row, float wt, int n)
{
	int x = 0;

	for (; x + BLOCK <= n; x += BLOCK)
		for (int j = 0; j < BLOCK; j++)
			acc[x + j] += wt * row[x + j];
	for (; x < n; x++)
		acc[x] += wt * row[x];
}

/* q[x] = acc[x] * scale, rounded half up and clamped to [0, 255] */
static void
store_u8(const float *restrict acc, float scale, int n, uint8_t *restrict q)
{
	int x = 0;

	for (; x + BLOCK <= n; x += BLOCK)
		for (int j = 0; j < BLOCK; j++) {
			float v = acc[x + j] * scale + 0.5f;
			q[x + j] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
		}
	for (; x < n; x++) {
		float v = acc[x] * scale + 0.5f;
		q[x] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
	}
}

/* Decode `in` strip by strip; every input row is converted, passed through
 * the horizontal filter and added to each output row whose taps include it,
 * so the whole image is never held. */
static int
resample(struct mura_image *im, const char *file, VipsImage *in, struct mura_record *r)
{
	const int w = in->Xsize, h = in->Ysize, bands = in->Bands, n = (int)im->opt.size;
	const int fmt = in->BandFmt;
	const float oscale = fmt == VIPS_FORMAT_USHORT ? 1.0f / 257 : 1.0f;
	const struct mura_image_filter *vf = &im->v;
	struct placement p;
	VipsRegion *reg;
	size_t rowbytes = VIPS_IMAGE_SIZEOF_LINE(in);
	int strip = (int)(STRIP_BYTES / rowbytes), first = 0, y_end, rc = 0;
	uint8_t *out;

	place(im->opt.fit, w, h, n, &p);
	if (filter_make(&im->h, w, p.x0, p.x1, p.ow) < 0 || filter_make(&im->v, h, p.y0, p.y1, p.oh) < 0 ||
	    mura_grow(&im->row, &im->row_cap, (size_t)w, sizeof *im->row) < 0 ||
	    mura_grow(&im->tmp, &im->tmp_cap, (size_t)p.ow, sizeof *im->tmp) < 0 ||
	    mura_grow(&im->acc, &im->acc_cap, (size_t)p.ow * p.oh, sizeof *im->acc) < 0 ||
	    mura_record_alloc(r, MURA_DTYPE_U8, 1, (uint32_t)n, (uint32_t)n) < 0)
		return mura_error_prefix("%s", file);
	memset(im->acc, 0, (size_t)p.ow * p.oh * sizeof *im->acc);
	if (strip < 1)
		strip = 1;
	y_end = vf->start[p.oh - 1] + vf->taps;
	if (!(reg = vips_region_new(in)))
		return vips_fail(file, "cannot decode");
	for (int y0 = vf->start[0]; y0 < y_end && !rc; y0 += strip) {
		VipsRect rect = {0, y0, w, y0 + strip < y_end ? strip : y_end - y0};

		if (vips_region_prepare(reg, &rect)) {
			rc = vips_fail(file, "cannot decode");
			break;
		}
		for (int y = y0; y < rect.top + rect.height; y++) {
			gray_row(VIPS_REGION_ADDR(reg, 0, y), fmt, bands, w, im->row);
			horizontal(&im->h, im->row, p.ow, im->tmp);
			while (first < p.oh && vf->start[first] + vf->taps <= y)
				first++;
			for (int o = first; o < p.oh && vf->start[o] <= y; o++) {
				float wt = vf->w[(size_t)o * vf->taps + (y - vf->start[o])];
				if (wt != 0)
					accumulate(im->acc + (size_t)o * p.ow, im->tmp, wt, p.ow);
			}
		}
	}
	g_object_unref(reg);
	if (rc)
		return rc;
	out = r->data;
	memset(out, 0, (size_t)n * n);
	for (int o = 0; o < p.oh; o++)
		store_u8(im->acc + (size_t)o * p.ow, oscale, p.ow, out + (size_t)(p.oy + o) * n + p.ox);
	return 0;
}

/* Open the header of the file in im->file.  PNG, MURA's format, goes
 * straight to its loader; anything else is sniffed by every trusted loader
 * in turn.  Returns 0, or -1 with mura_error set. */
static int
open_image(struct mura_image *im, const char *file, VipsImage **in)
{
	static const unsigned char png[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

	if (im->file_len >= 8 && !memcmp(im->file, png, 8)) {
		if (vips_pngload_buffer(im->file, im->file_len, in, "access", VIPS_ACCESS_SEQUENTIAL, "fail_on",
		                        VIPS_FAIL_ON_ERROR, NULL))
			return vips_fail(file, "cannot read the header");
		return 0;
	}
	if (!vips_foreign_find_load_buffer(im->file, im->file_len)) {
		vips_error_clear();
		return mura_error("%s: not a known image format", file);
	}
	if (!(*in = vips_image_new_from_buffer(im->file, im->file_len, "", "access", VIPS_ACCESS_SEQUENTIAL,
	                                       "fail_on", VIPS_FAIL_ON_ERROR, NULL)))
		return vips_fail(file, "cannot read the header");
	return 0;
}

int
mura_image_load(struct mura_image *im, const char *file, struct mura_record *r)
{
	VipsImage *in, *t;
	int rc;

	if (read_file(im, file) < 0)
		return -1;
	vips_warning[0] = 0;
	if (open_image(im, file, &in) < 0)
		return -1;
	/* The header alone says how big the image is: refuse a decompression
	 * bomb before a single pixel is decoded. */
	if ((uint64_t)in->Xsize * in->Ysize > im->opt.max_pixels) {
		rc = mura_error("%s: %d x %d = %llu pixels exceed the limit of %llu", file, in->Xsize,
		                in->Ysize, (unsigned long long)in->Xsize * in->Ysize,
		                (unsigned long long)im->opt.max_pixels);
		goto done;
	}
	if (in->Xsize > (int)MURA_MAX_DIM || in->Ysize > (int)MURA_MAX_DIM) {
		rc = mura_error("%s: %d x %d: a side exceeds %u pixels", file, in->Xsize, in->Ysize, MURA_MAX_DIM);
		goto done;
	}
	if (in->Type == VIPS_INTERPRETATION_CMYK) {
		if (vips_colourspace(in, &t, VIPS_INTERPRETATION_sRGB, NULL)) {
			rc = vips_fail(file, "cannot convert CMYK");
			goto done;
		}
		g_object_unref(in);
		in = t;
	}
	if (in->BandFmt != VIPS_FORMAT_UCHAR && in->BandFmt != VIPS_FORMAT_USHORT) {
		rc = mura_error("%s: %s samples are not supported (8 or 16-bit integers only)", file,
		                vips_enum_nick(VIPS_TYPE_BAND_FORMAT, in->BandFmt));
		goto done;
	}
	if (in->Bands < 1 || in->Bands > 4) {
		rc = mura_error("%s: %d bands are not supported (gray, gray and alpha, RGB, RGBA)", file,
		                in->Bands);
		goto done;
	}
	rc = resample(im, file, in, r);
done:
	g_object_unref(in);
	return rc;
}

int
mura_image_size(struct mura_image *im, const char *file, int *w, int *h)
{
	VipsImage *in;

	if (read_file(im, file) < 0)
		return -1;
	vips_warning[0] = 0;
	if (open_image(im, file, &in) < 0)
		return -1;
	*w = in->Xsize, *h = in->Ysize;
	g_object_unref(in);
	return 0;
}

int
mura_image_to_source(int fit, int w, int h, int n, int x, int y, double *sx, double *sy)
{
	struct placement p;

	place(fit, w, h, n, &p);
	if (x < p.ox || x >= p.ox + p.ow || y < p.oy || y >= p.oy + p.oh)
		return -1;
	*sx = p.x0 + (x - p.ox + 0.5) * (p.x1 - p.x0) / p.ow;
	*sy = p.y0 + (y - p.oy + 0.5) * (p.y1 - p.y0) / p.oh;
	return 0;
}
