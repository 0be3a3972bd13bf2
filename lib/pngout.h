/*
 * pngout.h - write PNG files with libpng: 8- or 16-bit gray and 8-bit RGB,
 * the three kinds of PNG that MURA-v1.1 holds.
 *
 * The file appears under its name only when complete: it is written to
 * "PATH.tmp.PID" in the same folder and renamed into place, so a reader
 * never sees half an image and a failure leaves nothing behind.
 */
#ifndef MURA_PNGOUT_H
#define MURA_PNGOUT_H

enum mura_png_format {
	MURA_PNG_GRAY8 = 1,  /* one uint8_t a pixel */
	MURA_PNG_GRAY16,     /* one uint16_t a pixel, in host byte order */
	MURA_PNG_RGB8,       /* three uint8_t a pixel: R, G, B */
};

/* Bytes one pixel of this format takes in memory; 0 for an unknown format. */
int mura_png_pixel_bytes(int format);

/*
 * Write width x height pixels, rows top to bottom with no padding between
 * them, as a PNG file at path.  Returns 0, or -1 with mura_error set
 * ("PATH: reason").  Safe to call from several threads at once for
 * different paths.
 */
int mura_png_write(const char *path, const void *pixels, int width, int height, int format);

#endif
