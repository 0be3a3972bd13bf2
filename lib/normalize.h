/*
 * normalize.h - integer image records to the f32 input of a network:
 * scaled to [0, 1] (u8 by 255, u16 by 65535), then per channel
 * (x - mean) / std, a gray record replicated to every channel.
 * And the statistics that choose mean and std for a data set.
 *
 * Defaults: with 3 channels ImageNet's mean (0.485, 0.456, 0.406) and
 * standard deviation (0.229, 0.224, 0.225), which the MURA baseline used
 * with its ImageNet-initialised DenseNet; with 1 channel the averages of
 * those, 0.449 and 0.226, the usual choice for gray input to a network
 * whose first layer was trained on ImageNet colour.
 */
#ifndef MURA_NORMALIZE_H
#define MURA_NORMALIZE_H

#include <stdint.h>

#include "tensor.h"

#define MURA_NORM_MAX_CHANNELS 3

struct mura_norm {
	int channels; /* output channels, 1 to MURA_NORM_MAX_CHANNELS */
	double mean[MURA_NORM_MAX_CHANNELS], std[MURA_NORM_MAX_CHANNELS];
	float lut[MURA_NORM_MAX_CHANNELS][256]; /* u8 value -> output, from mura_norm_init */
};

/* ImageNet's mean and std for 3 channels, their averages for 1. */
void mura_norm_default(struct mura_norm *n, int channels);
/* Check the parameters (channels in range, std > 0, all finite) and build
 * the u8 lookup tables.  Call after setting or changing mean and std.
 * Returns 0, or -1 with mura_error set. */
int mura_norm_init(struct mura_norm *n);
/* out = normalised in, an f32 record of n->channels channels with in's
 * metadata.  in must be u8 or u16, with 1 channel or n->channels.
 * Returns 0, or -1 with mura_error set saying what in has. */
int mura_norm_apply(const struct mura_norm *n, const struct mura_record *in, struct mura_record *out);

/* The statistics of a stream: exact histograms of the values, per output
 * channel, so the result does not depend on the order of the records. */
struct mura_norm_stats {
	int channels;
	uint64_t *hist8;  /* channels x 256 counts of u8 values */
	uint64_t *hist16; /* channels x 65536 counts of u16 values, allocated on first use */
};

int mura_norm_stats_init(struct mura_norm_stats *s, int channels);
void mura_norm_stats_free(struct mura_norm_stats *s);
/* Count a record's values (the rules of mura_norm_apply on dtype and channels). */
int mura_norm_stats_add(struct mura_norm_stats *s, const struct mura_record *r);
/* The mean and population standard deviation (numpy's default, ddof 0) of
 * the values scaled to [0, 1], per channel, into n (then mura_norm_init it).
 * Returns 0, or -1 if no value was counted. */
int mura_norm_stats_result(const struct mura_norm_stats *s, struct mura_norm *n);

#endif
