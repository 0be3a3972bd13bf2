/*
 * loss.h - the training losses on a batch of logits: binary cross-entropy,
 * class-weighted as the MURA paper weights it, and focal loss.
 *
 * A batch is n logits z[i] (one per image, before the sigmoid), labels y[i]
 * in [0, 1] (fractional after mixup) and study types t[i] (enum mura_type,
 * 0 unknown .. 7 wrist).  With p = sigmoid(z), sp(x) = log(1 + e^x) computed
 * stably as max(x, 0) + log1p(e^-|x|), and w0, w1 the class weights of the
 * image's type (normal and abnormal terms):
 *
 *   bce_i   = w1 y sp(-z) + w0 (1 - y) sp(z)
 *           = -(w1 y log p + w0 (1 - y) log(1 - p))
 *   focal_i = a_t (1 - p_t)^gamma bce_i,   p_t = p y + (1 - p)(1 - y),
 *             a_t = alpha y + (1 - alpha)(1 - y), or 1 when alpha < 0
 *
 * The loss is the MEAN over the batch: the sum divided by n, not by the sum of
 * the weights, as PyTorch's BCEWithLogitsLoss(weight=...) and
 * torchvision.ops.sigmoid_focal_loss(reduction="mean") divide.  With weights
 * 1 and alpha < 0, gamma = 0 focal is plain BCE; the class weights multiply
 * inside the focal term, so for a label of 0 or 1 they act as a per-class
 * factor beside alpha (focal_i = w_y a_t (1 - p_t)^gamma bce_i, unweighted bce).
 * Label smoothing E replaces every target y by y (1 - E) + E / 2 (in double)
 * before all of the above, as a PyTorch user smooths the target tensor
 * given to BCEWithLogitsLoss or sigmoid_focal_loss: the class weight is
 * still chosen by the image's type, and w1 and w0 weigh the smoothed
 * target's two terms, alpha its two focal terms.
 * The value is accumulated in double; the gradient dL/dz[i] (including the
 * 1/n) is written in float.  Extreme logits (|z| = 100 and beyond) give
 * finite, exact values.
 */
#ifndef MURA_NN_LOSS_H
#define MURA_NN_LOSS_H

#include <stddef.h>
#include <stdint.h>

#include "tensor.h"

enum mura_loss_kind {
	MURA_LOSS_BCE = 1,
	MURA_LOSS_FOCAL,
};

/* How the class weights come from the training counts (--class-weights). */
enum mura_weights_mode {
	MURA_WEIGHTS_NONE = 1,  /* w0 = w1 = 1 */
	MURA_WEIGHTS_GLOBAL,    /* the paper's formula on all types pooled */
	MURA_WEIGHTS_PER_TYPE,  /* the paper's formula per study type */
};

/* The weights of the normal (w0) and abnormal (w1) terms, by study type. */
struct mura_class_weights {
	float w0[MURA_TYPE_COUNT];
	float w1[MURA_TYPE_COUNT];
};

struct mura_loss {
	int kind;         /* enum mura_loss_kind */
	float gamma;      /* focal exponent, >= 0 */
	float alpha;      /* focal: weight of positives (1 - alpha on negatives); < 0 none */
	double smoothing; /* label smoothing E in [0, 1]: targets y (1 - E) + E / 2 */
	struct mura_class_weights cw;
};

/*
 * The class weights from training image counts per type (index enum
 * mura_type; index 0, unknown, may hold images too).  For a group with A
 * abnormal and N normal images, as the MURA paper:
 *     w1 = B N / (A + N),   w0 = A / (A + N)
 * with B = boost (the seed paper's "class weights boost", 1 for none), which
 * multiplies the abnormal weight in every mode, `none` included (w0 = 1,
 * w1 = B).  `global` pools every type; `per-type` uses each type's own counts.
 * Fallbacks, since a zero weight would silence a whole group: a type without
 * images of both classes (and type 0, unknown, when it has none) gets the
 * global weights; if the pooled counts lack a class, the global weights are
 * 1 and 1 (times the boost).  Returns 0, or -1 if boost is not positive and
 * finite or mode is unknown.
 */
int mura_class_weights_compute(struct mura_class_weights *cw, int mode,
                               const uint64_t abnormal[MURA_TYPE_COUNT],
                               const uint64_t normal[MURA_TYPE_COUNT], double boost);
/* All weights 1. */
void mura_class_weights_none(struct mura_class_weights *cw);

/* "none", "global", "per-type" -> enum mura_weights_mode; "bce", "focal" ->
 * enum mura_loss_kind.  Return the value, or -1 with mura_error set. */
int mura_weights_mode_parse(const char *s);
int mura_loss_kind_parse(const char *s);
const char *mura_weights_mode_name(int mode);
const char *mura_loss_kind_name(int kind);

/* BCE, all weights 1, gamma 2 and alpha -1 (ready for focal if kind is set). */
void mura_loss_init(struct mura_loss *l);

/*
 * The mean loss of a batch of n >= 1 images into *loss and, when dz is not
 * NULL, dL/dz[i] into dz[i].  type may be NULL (all unknown: weights of index
 * 0).  Returns 0, or -1 with mura_error naming the index if a label is not in
 * [0, 1] (NaN, or -1 "unknown"), a logit is not finite, or a type is beyond
 * MURA_TYPE_COUNT; nothing is written then.
 */
/* Part of a batch of total images (the rest on other processes): *sum is
 * the sum of the n images' terms, dz their share of the batch's gradient
 * (divided by total).  mura_loss_compute is this with total = n. */
int mura_loss_part(const struct mura_loss *l, const float *z, const float *y, const uint8_t *type,
                   size_t n, size_t total, double *sum, float *dz);
int mura_loss_compute(const struct mura_loss *l, const float *z, const float *y,
                      const uint8_t *type, size_t n, double *loss, float *dz);

#endif
