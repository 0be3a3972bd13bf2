/*
 * augment.h - random transforms of image records, one record at a time, and
 * mixup of records in small batches: what mura-augment does to a stream and
 * what mura-train calls in-process.
 *
 * Per record, in this order (each with its own probability and range):
 *   contrast    v = (v - m) * c + m, m the mean of the record's channel
 *   brightness  v = v + b * S, S the full scale: 255 for u8, 1 for f32
 *   then one geometric warp about the image's centre, which composes
 *   flip        horizontal (left-right) mirror
 *   rotate      by an angle in degrees, counter-clockwise as seen
 *   zoom        by a scale factor, > 1 enlarges the content
 *   translate   by fractions of the width and height, + is right and down
 * sampled with bilinear interpolation.  Output pixels that come from
 * outside the image take the fill value (0 unless set: black for u8 from
 * mura-resize, the mean gray of the normalisation for f32 from
 * mura-normalize, so augment before normalising for black); a sample
 * between the border and the outside blends the two.  Values stay in float
 * until the end; u8 results are rounded and clamped to [0, 255] once, f32
 * ones are not clamped.  A record that draws no transform is left as it is,
 * byte for byte, and a flip or a rotation by a multiple of 90 degrees of a
 * square record moves pixels exactly.
 *
 * The randomness of a record comes from mura_rng_derive(seed, epoch, path),
 * so a record gets the same transform wherever it is in the stream and
 * however the stream was split, and another epoch gets another one.  Every
 * record draws the same numbers in the same order (see mura_aug_draw), so
 * changing one transform's probability leaves the others' draws as they were.
 *
 * Mixup (Zhang et al., 2018): in a batch of n records of one shape and
 * dtype, record i becomes lam x_i + (1 - lam) x_j and its label
 * lam y_i + (1 - lam) y_j, with j from a random permutation of the batch and
 * lam = max(l, 1 - l), l ~ Beta(alpha, alpha), drawn per record.  Since
 * lam >= 0.5, record i keeps its own metadata (path, patient, study, image,
 * study type): it is the larger part of the mix.  Labels must be known.
 *
 * The spec grammar (mura-augment(1) documents it for users):
 *   spec  = item *("," item)          no spaces
 *   item  = "none" | "default" | name "=" value
 *   flip=P                            probability P of a mirror, 0 to 1
 *   rotate=X | rotate=A:B [@P]        degrees: X gives [-X, X]
 *   zoom=X | zoom=A:B [@P]            scale: X gives [1 - X, 1 + X]
 *   translate=X | translate=A:B [@P]  fraction of the size, each axis
 *   contrast=X | contrast=A:B [@P]    factor: X gives [1 - X, 1 + X]
 *   brightness=X | brightness=A:B [@P]  fraction of full scale: X gives [-X, X]
 *   fill=V                            the border fill, in the record's units
 *   mixup=ALPHA                       Beta parameter; 0 is no mixup
 * "rot" is accepted for "rotate".  A spec starts from "none": only what it
 * names is on; "default" stands for the paper's set and later items change
 * it ("default,translate=0.05").  @P is the probability, 1 when not given.
 */
#ifndef MURA_AUGMENT_H
#define MURA_AUGMENT_H

#include <stddef.h>
#include <stdint.h>

#include "rng.h"
#include "tensor.h"

enum mura_aug_kind {
	MURA_AUG_FLIP,
	MURA_AUG_ROTATE,
	MURA_AUG_ZOOM,
	MURA_AUG_TRANSLATE,
	MURA_AUG_CONTRAST,
	MURA_AUG_BRIGHTNESS,
	MURA_AUG_COUNT
};

/* With probability p, a value uniform in [lo, hi] (flip uses p only). */
struct mura_aug_param {
	double p, lo, hi;
};

struct mura_aug_spec {
	struct mura_aug_param t[MURA_AUG_COUNT];
	double fill;  /* value of pixels from outside the image */
	double mixup; /* Beta(alpha, alpha) of mixup; 0: off */
};

/* What one record drew: the identity is {0, 0, 1, 0, 0, 1, 0}. */
struct mura_aug_draw {
	int flip;
	double angle;      /* degrees, counter-clockwise */
	double scale;      /* > 1 enlarges */
	double tx, ty;     /* fractions of width and height */
	double contrast;   /* factor about the channel mean */
	double brightness; /* fraction of full scale, added */
};

/* Nothing on. */
void mura_aug_spec_none(struct mura_aug_spec *s);
/* The paper's set: flip=0.5, rotate=30 (the MURA baseline's "lateral
 * inversions and rotations of up to 30 degrees"), and the zoom and contrast
 * the seed paper adds, as moderate as it says: zoom=0.1, contrast=0.2.
 * Brightness, translation and mixup are off. */
void mura_aug_spec_default(struct mura_aug_spec *s);
/* Parse a whole spec into s (starting from none).  Returns 0, or -1 with
 * mura_error set naming the item at fault; s is undefined then. */
int mura_aug_spec_parse(struct mura_aug_spec *s, const char *spec);
/* Set one item, as "name=value" in a spec would ("default" and "none" need
 * no value: pass NULL). */
int mura_aug_spec_set(struct mura_aug_spec *s, const char *name, const char *value);
/* The spec in its canonical form, which parses back to the same spec.
 * Returns the length it needs, as snprintf does. */
int mura_aug_spec_format(const struct mura_aug_spec *s, char *buf, size_t size);

/* Draw one record's transform from rng. */
void mura_aug_draw(const struct mura_aug_spec *s, struct mura_rng *rng, struct mura_aug_draw *d);

/* An augmenter: a spec and the scratch it reuses from record to record. */
struct mura_aug {
	struct mura_aug_spec spec;
	float *buf; /* one record as float */
	size_t buf_cap;
	unsigned char *mix; /* copies of a mixup batch */
	size_t mix_cap;
	size_t *perm;    /* the batch's permutation */
	float *label;    /* the batch's labels before mixing */
	size_t perm_cap, label_cap;
};

void mura_aug_init(struct mura_aug *a, const struct mura_aug_spec *s);
void mura_aug_free(struct mura_aug *a);
/* Apply a drawn transform to r in place (u8 or f32, any channels).
 * Returns 0, or -1 with mura_error set if r's dtype is not handled. */
int mura_aug_apply(struct mura_aug *a, const struct mura_aug_draw *d, struct mura_record *r);
/* Draw from (seed, epoch, r->path) and apply: the per-record entry point. */
int mura_aug_record(struct mura_aug *a, struct mura_record *r, uint64_t seed, uint64_t epoch);
/* Whether r can be mixed in a batch whose first record is first (itself
 * included): dtype u8 or f32, the same shape, a known label.  Returns 0, or
 * -1 with mura_error set saying what r has. */
int mura_aug_mixable(const struct mura_record *first, const struct mura_record *r);
/* Mixup of recs[0..n) in place with a->spec.mixup as alpha (nothing if 0).
 * All must share dtype (u8 or f32) and shape and have known labels; else
 * -1 with mura_error set naming the first record (from 1) at fault. */
int mura_aug_mixup(struct mura_aug *a, struct mura_record *recs, size_t n, struct mura_rng *rng);

#endif
