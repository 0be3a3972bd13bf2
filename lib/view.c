/* view.c - a record as an 8-bit PNG (mura-info --png). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "pngout.h"
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
	int nc = r->c == 3 ? 3 : 1, rc;
	size_t npix = (size_t)r->h * r->w;
	double lo = 0, scale = 1;
	unsigned char *pix = malloc(npix * nc);

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
	rc = mura_png_write(path, pix, (int)r->w, (int)r->h, nc == 3 ? MURA_PNG_RGB8 : MURA_PNG_GRAY8);
	free(pix);
	return rc;
}
