/*
 * score.h - trained models at work: a record made into the network's
 * input, and batched inference by an ensemble of models with test-time
 * augmentation (what mura-score runs).
 *
 * An image's probability of being abnormal is the arithmetic mean, over
 * every model and every view, of sigmoid(logit): the models' and views'
 * probabilities are averaged, not their logits, as the MURA paper averages
 * its ensemble's.
 */
#ifndef MURA_SCORE_H
#define MURA_SCORE_H

#include <stddef.h>
#include <stdio.h>

#include "nn/model.h"
#include "normalize.h"
#include "tensor.h"

/*
 * x[3][h][w] from a record of 1 or 3 channels (one channel is replicated to
 * three): u8 and u16 records normalised by n (lib/normalize.h, as
 * mura-normalize does it; n->channels must be 3), f32 records taken as they
 * are (already normalised, by mura-normalize say).  scratch is an owned
 * record reused from call to call.  Returns 0, or -1 with mura_error set
 * for another channel count or dtype.
 */
int mura_input_from_record(float *x, const struct mura_record *r, const struct mura_norm *n,
                           struct mura_record *scratch);
/* Whether mura_input_from_record takes records of this dtype and channels:
 * 0, or -1 with mura_error saying why not. */
int mura_input_check(const struct mura_record *r);
/* The normalisation a model records (its mean and std), ready to apply. */
int mura_input_norm(struct mura_norm *n, const struct mura_model_config *c);

/* A model file ready for inference, as mura-score loads it: the
 * configuration its metadata records (or arch, with the fc head and
 * ImageNet's statistics, for a plain torchvision file; 0 refuses one), no
 * dropout, every weight finite.  *sized (may be NULL): its file records the
 * input size it was trained at.  What the load dropped or made fresh goes
 * to info.  NULL with mura_error set. */
struct mura_model *mura_model_open(const char *path, int arch, int threads, int *sized, char *info,
                                   size_t infolen);

/* Test-time augmentation: a set of flags. */
enum mura_tta {
	MURA_TTA_NONE = 0,
	MURA_TTA_FLIP = 1,  /* add the mirror image (a lateral flip) */
	MURA_TTA_ROT = 2,   /* add the image turned by -MURA_TTA_DEGREES and +MURA_TTA_DEGREES */
};
#define MURA_TTA_DEGREES 10.0  /* bilinear, black (0) outside the image */
/* "none", "flip", "rot", "flip,rot" (either order): the flags, or -1 with
 * mura_error set. */
int mura_tta_parse(const char *s);
/* How many views a setting gives: 1, 2 (flip), 3 (rot) or 4 (flip,rot:
 * the image, its mirror, and the image turned both ways). */
int mura_tta_views(int tta);

struct mura_scorer_config {
	const char *const *models;  /* model files */
	size_t nmodels;
	int arch;                   /* for a file without our metadata; 0: refuse one */
	int tta;                    /* enum mura_tta flags */
	int batch;                  /* records per forward */
	int threads;                /* 0: $MURA_THREADS, else all cores */
	int precision;              /* enum mura_precision (nn/model.h) */
	int any_size;               /* score records of another size than a model was
	                               trained at (info says so); else refuse them */
};

struct mura_scorer;

/* Load every model.  info(arg, msg) is told what a load dropped or made
 * fresh (the engine's sentence, prefixed by the file), and may be NULL.
 * NULL with mura_error set. */
struct mura_scorer *mura_scorer_create(const struct mura_scorer_config *c,
                                       void (*info)(void *arg, const char *msg), void *arg);
void mura_scorer_free(struct mura_scorer *s);

/*
 * Score every record of rd: one row of the scores table (metrics.h) per
 * record, in the order read, written to out (the header is the caller's).
 * Records may change size from one to the next: a batch holds records of
 * one size, and the models are planned again when the size changes.  A
 * size other than the one a model's file records (input_size) is refused
 * unless c->any_size.  A model whose weights are not finite is refused when
 * loaded, and a logit that is not finite is an error naming the model.
 * Returns the number of records scored, or -1 with mura_error set
 * ("NAME: record N: what").
 */
long long mura_scorer_run(struct mura_scorer *s, struct mura_reader *rd, FILE *out);

#endif
