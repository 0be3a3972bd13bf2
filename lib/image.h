/*
 * image.h - decoding image files into u8 records of one gray channel,
 * resized to N x N: what mura-resize does to each line of a MURA path list.
 *
 * Decoding is libvips' (PNG of every colour type and bit depth, JPEG, and the
 * other formats libvips trusts); the header is read first, so an image with
 * more pixels than allowed is refused before any pixel is decoded.  The
 * encoded file is read whole (at most MURA_IMAGE_MAX_FILE bytes); pixels
 * then stream through in strips of rows, so the decoded image is never held:
 * memory grows with the width of the image and the output size, not with
 * its height, and not with the number of images decoded.
 *
 * Conversion to one gray channel, in this order:
 *   - alpha flattened on black: v * alpha / alpha_max (a transparent pixel
 *     is black, as the background of a radiograph);
 *   - RGB to gray with ITU-R BT.601 luma, 0.299 R + 0.587 G + 0.114 B, as
 *     Pillow's convert("L") and torchvision's rgb_to_grayscale do; palette
 *     images are expanded to RGB first, CMYK converted to sRGB;
 *   - 16-bit samples scaled to 8 bits by v * 255 / 65535, rounded (so 65535
 *     is 255 and 257 k is k), after resizing, so no precision is lost before.
 * Resizing is a separable convolution with a triangle (bilinear) kernel
 * widened by the reduction factor, so downscaling averages every input pixel
 * (antialiased, no nearest-neighbour aliasing) and upscaling is bilinear
 * interpolation between pixel centres: the filter of Pillow's
 * resize(BILINEAR) and of torchvision's Resize(antialias=True).  Values stay
 * in float until the end and are rounded once.
 */
#ifndef MURA_IMAGE_H
#define MURA_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "tensor.h"

#define MURA_IMAGE_SIZE 320
#define MURA_IMAGE_MAX_SIZE 8192
#define MURA_IMAGE_MAX_PIXELS 50000000ull
#define MURA_IMAGE_MAX_FILE (1ull << 30) /* bytes of an encoded image */

/* How the image's aspect ratio meets the square output. */
enum mura_fit {
	MURA_FIT_STRETCH, /* scale each side to N independently (the MURA paper) */
	MURA_FIT_PAD,     /* scale the longer side to N, centre, pad with 0 (black) */
	MURA_FIT_CROP,    /* scale the shorter side to N, keep the centre N x N */
};

/* "stretch", "pad", "crop" -> enum mura_fit; -1 with mura_error set if none. */
int mura_fit_parse(const char *s);
const char *mura_fit_name(int fit);

struct mura_image_opts {
	uint32_t size;       /* the output's side N, 1 to MURA_IMAGE_MAX_SIZE */
	int fit;             /* enum mura_fit */
	uint64_t max_pixels; /* refuse images with more pixels (width x height) */
};

/* The taps of a one-dimensional resampling filter: output i is the sum over
 * k < taps of w[i * taps + k] times input start[i] + k. */
struct mura_image_filter {
	float *w;
	int *start;
	int *n; /* scratch while building: the taps each output needs */
	int taps;
	size_t w_cap, start_cap, n_cap;
};

/* A decoder: its options and scratch buffers, which grow to the largest
 * image seen and are reused, so a stream of images allocates little. */
struct mura_image {
	struct mura_image_opts opt;
	unsigned char *file; /* the encoded file, read whole */
	size_t file_len, file_cap;
	float *row; /* one input row, as gray */
	float *tmp; /* that row after the horizontal pass */
	float *acc; /* the output rows being accumulated */
	size_t row_cap, tmp_cap, acc_cap;
	struct mura_image_filter h, v;
};

/* Start libvips once per process (single-threaded, no operation cache, only
 * the loaders libvips marks as trusted) and set up a decoder.
 * Returns 0, or -1 with mura_error set. */
int mura_image_init(struct mura_image *im, const struct mura_image_opts *opt);
void mura_image_free(struct mura_image *im);

/* Decode the image in `file` into r as a 1 x N x N u8 record.  Only the
 * shape, dtype and data are set; the metadata is the caller's.  Returns 0, or
 * -1 with mura_error set to "FILE: reason" (missing, empty, not an image,
 * too many pixels, truncated or corrupt). */
int mura_image_load(struct mura_image *im, const char *file, struct mura_record *r);

/* The width and height of the image in file, from its header. Returns 0,
 * or -1 with mura_error set. */
int mura_image_size(struct mura_image *im, const char *file, int *w, int *h);

/* Where the centre of pixel (x, y) of the n x n record that opt's fit made
 * from a w x h image lies in that image, in its pixels (the inverse of
 * mura_image_load's placement).  0, or -1 when it falls on pad's border. */
int mura_image_to_source(int fit, int w, int h, int n, int x, int y, double *sx, double *sy);

#endif
