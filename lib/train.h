/*
 * train.h - the training loop of mura-train as a library: epochs over a
 * training stream (shuffled, augmented, normalised in-process), batches
 * through lib/nn's model, loss and optimizer, validation every epoch, the
 * callbacks (learning rate reduced on plateau, early stopping, the best and
 * the top-K checkpoints by validation loss), a resumable checkpoint, and a
 * TSV log.  The library prints nothing: progress goes to the caller's
 * report function, and an interruption is asked for through a flag the
 * caller's signal handler sets.
 *
 * Files written, all atomically (temporary name, then rename), for
 * out = "model.safetensors" (the name before ".safetensors", or the whole
 * name if it has no such ending, gets the tag):
 *   model.safetensors            the model at the end of the last epoch done
 *   model.best.safetensors       the epoch with the best monitored value
 *                                (only with validation)
 *   model.top1.safetensors ...   the K epochs of lowest validation loss,
 *   model.topK.safetensors       top1 the lowest (with keep_top = K)
 *   model.ckpt.safetensors       the resumable checkpoint: the model, the
 *                                optimizer's slots (tensors "optim.*"), and
 *                                the loop's state in the metadata (keys
 *                                "train_*", specified in ckpt.h); written
 *                                at the end of every epoch and when
 *                                interrupted
 * Every model file is a plain model file for mura-score and PyTorch, with
 * metadata "train_epoch", "train_val_loss", "train_val_auc",
 * "train_val_kappa", "train_class_weights" and "train_command".
 *
 * Randomness, derived from the seed so that an interrupted run resumes
 * exactly: the epoch's order from (seed, epoch, "shuffle"); a record's
 * augmentation from (seed, epoch, its path), as `mura-augment --seed S
 * --epoch E` draws it (epochs count from 1); mixup within a batch from
 * (seed, epoch, step).  Dropout draws from the model's own stream, which
 * model.h does not let a checkpoint save yet: with dropout, a resumed run
 * is not bit for bit the uninterrupted one.
 */
#ifndef MURA_TRAIN_H
#define MURA_TRAIN_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "ckpt.h"
#include "nn/loss.h"
#include "nn/model.h"
#include "nn/optim.h"
#include "lrsched.h"

enum mura_monitor {
	MURA_MONITOR_VAL_LOSS = 1,  /* lower is better */
	MURA_MONITOR_VAL_AUC,       /* higher is better */
};
/* "val_loss", "val_auc" -> enum value, or -1 with mura_error set. */
int mura_monitor_parse(const char *s);
const char *mura_monitor_name(int monitor);

enum mura_train_event {
	MURA_TRAIN_INFO = 1,    /* a message worth showing once (msg) */
	MURA_TRAIN_STEP,        /* an optimizer step is done */
	MURA_TRAIN_VALIDATING,  /* validation of the epoch starts */
	MURA_TRAIN_EPOCH,       /* an epoch is done, validated, saved */
};

/* What the report function is told.  NAN where not known. */
struct mura_train_report {
	int event;
	const char *msg;          /* INFO */
	int epoch, epochs;        /* 1-based */
	long step, steps;         /* steps done in this epoch; steps -1: unknown (a pipe) */
	double loss, acc;         /* this epoch's training mean so far */
	double lr;
	double images_per_s;      /* this epoch's training images per second */
	double eta;               /* seconds left in this epoch's training, or -1 */
	/* EPOCH only */
	double seconds;           /* the epoch's training and validation time */
	double val_loss, val_auc, val_kappa;
	int best;                 /* this epoch is the new best */
	int lr_reduced;           /* the rate was reduced after this epoch */
	int stopping;             /* early stopping ends the run after this epoch */
};

typedef void mura_train_report_fn(void *arg, const struct mura_train_report *r);

struct mura_train_config {
	/* The model.  arch, head 0 and dropout < 0 mean: as the --weights file
	 * says if it has our metadata, else densenet169, fc, 0.  input_h/w are
	 * set from the records. */
	struct mura_model_config model;
	int norm_given;            /* model.mean/std given; else the weights file's, else ImageNet's */
	const char *weights;       /* initial weights (ImageNet import, a model), or NULL */
	int freeze_backbone;
	int unfreeze_at;           /* the backbone thaws at the start of this epoch; 0: never */
	double lr_after_unfreeze;  /* the rate from then on; < 0: unchanged */

	/* Data. */
	const char *train;         /* a file, or "-" (stdin): one epoch, read in order */
	const char *valid;         /* a file, or NULL */
	const char *augment;       /* the transforms, as mura-augment's --augment SPEC;
	                              NULL: the MURA recipe; "none": no augmentation */

	/* Optimisation. */
	struct mura_optim_config optim;
	/* The rate's schedule (lrsched.h): kind and parameters; its lr is
	 * optim.lr, t_max 0 means the run's epochs, max_lr 0 means optim.lr,
	 * total_steps is the run's (computed).  onecycle cycles SGD's
	 * momentum or Adam's beta1, which optim must hold at
	 * MURA_SCHED_MAX_MOMENTUM as OneCycleLR sets it. */
	struct mura_sched sched;
	int batch;
	int accumulate;            /* batches whose gradients make one step (>= 1) */
	int epochs;                /* resuming: 0 goes on to the checkpoint's count; more
	                              than it extends the run, less shortens it */
	struct mura_loss loss;     /* kind, gamma, alpha, smoothing; the weights are computed here */
	int weights_mode;          /* enum mura_weights_mode */
	double boost;
	uint64_t seed;

	/* Callbacks (with valid only). */
	int monitor;               /* enum mura_monitor */
	double plateau_factor;     /* 1: no reduction */
	int plateau_patience;
	int early_stop;            /* epochs without improvement; 0: never stop early */
	int keep_top;              /* K; 0: none */

	/* Files. */
	const char *out;
	const char *log;           /* TSV, or NULL */
	const char *resume;        /* a checkpoint, or NULL; its settings must be these
	                              (mura_train_config_from_ckpt), its model what
	                              model says of it */
	const char *command;       /* recorded in the files' metadata */
	int force;                 /* overwrite out's checkpoint, which is else refused
	                              unless it is the one resumed */

	/* Several processes (lib/dist.h): NULL, or a job of one, trains alone.
	 * In a job of N, every process runs mura_train_run with the same
	 * configuration; process 0's weights are everyone's at the start; each
	 * takes its share of every batch (batch is the global batch) and the
	 * gradients are summed before the step; validation is shared out too.
	 * Files are written by process 0 alone; train and valid must be files
	 * that every process can read. */
	struct mura_dist *dist;
	int sync_bn;               /* batch statistics over the global batch (SyncBatchNorm);
	                              0: each process's share's (DistributedDataParallel's) */
	double bucket_mb;          /* gradients summed in buckets of this many MiB; 0: 25 */

	/* The caller's hooks. */
	mura_train_report_fn *report;
	void *report_arg;
	volatile sig_atomic_t *stop;  /* nonzero: checkpoint after this step, return */
};

/* The defaults of mura-train(1): densenet169 (from the weights file if
 * any), fc head, the MURA augmentation, Adam lr 1e-4, batch 8, 10 epochs,
 * BCE, per-type class weights, boost 1, seed 1, val_loss, plateau 0.1
 * patience 1, no early stopping, no top-K. */
void mura_train_config_default(struct mura_train_config *c);

/* c's settings as the checkpoint at path records them (ckpt.h's
 * train_settings: batch, seed, the optimizer, the loss, class weights,
 * augmentation, callbacks, freezing), into s and from s into c (c->augment
 * points into s), and c->epochs 0: what a resumed run starts from before
 * the options given.  The model needs nothing: it comes from the checkpoint
 * unless an option says otherwise.  Returns 0, or -1 with mura_error set
 * (not a checkpoint, a setting that does not parse). */
int mura_train_config_from_ckpt(struct mura_train_config *c, struct mura_ckpt_settings *s, const char *path);

/* The values mura_train_run returns besides -1. */
enum mura_train_status {
	MURA_TRAIN_DONE = 0,     /* every epoch ran, or early stopping ended the run */
	MURA_TRAIN_STOPPED = 1,  /* *stop was set: a checkpoint was written */
	MURA_TRAIN_ABORT = -2,   /* in a job of several processes, this one failed where the
	                            others cannot learn of it (mid-step): say mura_error's
	                            message and stop the job (mura_dist_abort) */
};

/* Train.  Returns a mura_train_status, or -1 with mura_error set (a bad
 * input, a write error, a loss that is not finite; resuming, a checkpoint
 * whose settings, model or data differ from c's, all of them named).  In a
 * job of several processes -1 means that every process stopped, and the
 * message is set on the first that failed only (the others' is empty).  A
 * resumed run that is done (every epoch of its count, or ended by early
 * stopping) and is not extended returns MURA_TRAIN_DONE at once, having
 * written nothing, and says so. */
int mura_train_run(const struct mura_train_config *c);

/* The learning-rate range test (Smith, "Cyclical Learning Rates for
 * Training Neural Networks", 2017), as fastai 2's Learner.lr_find does it:
 * from the run's starting weights (fresh or --weights), `iters` training
 * steps of one batch each (in the run's order, augmentation and loss; past
 * an epoch, the next one's order), step i at the rate start (end /
 * start)^(i / iters); the loss smoothed as fastai's AvgSmoothLoss (an
 * exponential average with beta, debiased by 1 - beta^count); stopped
 * after the step whose smoothed loss is above diverge times its lowest so
 * far, or whose loss is not finite.  The suggestion is fastai's "steep":
 * among the points past the first iters / 10 and before the last 5, the
 * rate where the smoothed loss falls fastest against log(rate).  Nothing
 * is written: the caller has c->out NULL; resume, accumulate, the
 * schedule and several processes do not apply (refused, or ignored: the
 * schedule and accumulate). */
struct mura_lr_find {
	double start, end;  /* 1e-7, 10 */
	int iters;          /* 100 */
	double beta;        /* 0.98 */
	double diverge;     /* 4 */
	/* the result, n points (lr, loss, smooth: arrays owned) */
	int n;
	double *lr, *loss, *smooth;
	int stopped;        /* 1: stopped by divergence before iters */
	int suggested;      /* the index of the suggestion, -1: too few points */
};
/* fastai's defaults. */
void mura_lr_find_init(struct mura_lr_find *f);
/* Returns 0, or -1 with mura_error set. */
int mura_train_find_lr(const struct mura_train_config *c, struct mura_lr_find *f);
void mura_lr_find_free(struct mura_lr_find *f);

/* out with ".TAG" inserted before ".safetensors" (or appended): "best",
 * "ckpt", "top3".  Returns 0, or -1 if it does not fit. */
int mura_train_path(char *buf, size_t len, const char *out, const char *tag);

#endif
