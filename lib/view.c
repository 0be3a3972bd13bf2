/* view.c - a record as an 8-bit PNG (mura-info --png). */
#include <math.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "util.h"
#include "view.h"

/* The value of channel ch at pixel i, as a double. */
static double
at(const struct mura_record *r, uint32_t ch, size_t i)
{
	size_t k = (size_t)ch * r->h * r->w + i;
	switch (r->dtype) {
	case MURA_DTYPE_U8: return ((const uint8_t *)r->data)[k];
	case MURA_DTYPE_U16: return ((const uint16_t *)r->data)[k] / 257.0;
	default: return ((const float *)r->data)[k];
	}
}

int
mura_record_save_png(const struct mura_record *r, const char *path)
{
	int nc = r->c == 3 ? 3 : 1;
	size_t npix = (size_t)r->h * r->w;
	double lo = 0, scale = 1;
	unsigned char *pix = malloc(npix * nc);
	png_structp png = NULL;
	png_infop info = NULL;
	struct mura_out o;
	int rc = -1;

	if (!pix)
		return mura_error("%s: out of memory", path);
	if (r->dtype == MURA_DTYPE_F32) {
		double hi = -INFINITY;
		lo = INFINITY;
		for (int ch = 0; ch < nc; ch++)
			for (size_t i = 0; i < npix; i++) {
				double v = at(r, ch, i);
				lo = v < lo ? v : lo;
				hi = v > hi ? v : hi;
			}
		scale = hi > lo ? 255.0 / (hi - lo) : 0;
	}
	for (int ch = 0; ch < nc; ch++)
		for (size_t i = 0; i < npix; i++)
			pix[i * nc + ch] = (unsigned char)lround(fmin(255, fmax(0, (at(r, ch, i) - lo) * scale)));
	if (mura_out_open(&o, path) < 0)
		goto out;
	png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
	if (!png || !(info = png_create_info_struct(png))) {
		mura_error("%s: out of memory", path);
		goto fail;
	}
	if (setjmp(png_jmpbuf(png))) {
		mura_error("%s: libpng failed to write the image", path);
		goto fail;
	}
	png_init_io(png, o.f);
	png_set_IHDR(png, info, r->w, r->h, 8, nc == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY,
	             PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
	png_write_info(png, info);
	for (uint32_t y = 0; y < r->h; y++)
		png_write_row(png, pix + (size_t)y * r->w * nc);
	png_write_end(png, NULL);
	png_destroy_write_struct(&png, &info);
	rc = mura_out_commit(&o);
	goto out;
fail:
	png_destroy_write_struct(&png, &info);
	mura_out_abort(&o);
out:
	free(pix);
	return rc;
}
