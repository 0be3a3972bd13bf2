/* pngout.c - PNG writer on libpng, written atomically; see pngout.h. */
#include <errno.h>
#include <png.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "pngout.h"
#include "util.h"

int
mura_png_pixel_bytes(int format)
{
	switch (format) {
	case MURA_PNG_GRAY8: return 1;
	case MURA_PNG_GRAY16: return 2;
	case MURA_PNG_RGB8: return 3;
	}
	return 0;
}

/* libpng reports errors through a callback that must not return: keep its
 * message and jump back to mura_png_write. */
static void
on_error(png_structp png, png_const_charp msg)
{
	mura_error("libpng: %s", msg);
	png_longjmp(png, 1);
}

static void
on_warning(png_structp png, png_const_charp msg)
{
	(void)png;
	(void)msg;
}

/* Everything that needs libpng; returns 0 or -1 with mura_error set. */
static int
write_stream(FILE *f, const unsigned char *pixels, int width, int height, int format)
{
	png_structp png;
	png_infop info = NULL;
	size_t stride = (size_t)width * (size_t)mura_png_pixel_bytes(format);
	volatile int ok = 0;

	png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, on_error, on_warning);
	if (!png || !(info = png_create_info_struct(png))) {
		png_destroy_write_struct(&png, NULL);
		return mura_error("libpng: out of memory");
	}
	if (setjmp(png_jmpbuf(png)) == 0) {
		png_init_io(png, f);
		/* Level 3 with the default adaptive filters: on noisy radiographs
		 * higher levels cost twice the time for a few per cent less. */
		png_set_compression_level(png, 3);
		png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height,
		             format == MURA_PNG_GRAY16 ? 16 : 8,
		             format == MURA_PNG_RGB8 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY,
		             PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
		png_write_info(png, info);
		{
			const uint16_t probe = 1;
			/* PNG stores 16-bit samples big-endian. */
			if (format == MURA_PNG_GRAY16 && *(const unsigned char *)&probe == 1)
				png_set_swap(png);
		}
		for (int y = 0; y < height; y++)
			png_write_row(png, pixels + (size_t)y * stride);
		png_write_end(png, NULL);
		ok = 1;
	}
	png_destroy_write_struct(&png, &info);
	return ok ? 0 : -1;
}

int
mura_png_write(const char *path, const void *pixels, int width, int height, int format)
{
	struct mura_out o;

	if (!mura_png_pixel_bytes(format))
		return mura_error("%s: unknown PNG format %d", path, format);
	if (width < 1 || height < 1 || width > 1 << 20 || height > 1 << 20)
		return mura_error("%s: bad image size %d x %d", path, width, height);
	if (mura_out_open(&o, path) < 0)
		return -1;
	if (write_stream(o.f, pixels, width, height, format) < 0) {
		mura_out_abort(&o);
		return mura_error_prefix("%s", path);
	}
	return mura_out_commit(&o);
}
