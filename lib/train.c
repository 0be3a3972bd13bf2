/*
 * train.c - the training loop of train.h.
 *
 * An epoch: the order (a seeded permutation of the file's records), then
 * batches of `batch` records, each copied out of the mapping, augmented in
 * place, mixed up across the batch when asked, normalised into the input;
 * forward, loss, backward, and after every `accumulate` batches an
 * optimizer step at the schedule's rate (lib/lrsched.h).  Then validation,
 * the callbacks, the epoch schedules and the files.  The learning-rate
 * range test (mura_train_find_lr) runs steps of the same code.
 *
 * Whatever decides the next step is either derived from (seed, epoch,
 * step, path) or saved in the checkpoint; that is what makes a resumed run
 * end with the weights of an uninterrupted one.
 *
 * The checkpoint's metadata holds train_state (where the loop is, the
 * callbacks' memory, the run's number of epochs), train_settings (the
 * run's options, which a resumed run takes and must not contradict), both
 * of ckpt.h, and train_history (the log's rows so far).
 */
#define _GNU_SOURCE
#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "augment.h"
#include "ckpt.h"
#include "dist.h"
#include "error.h"
#include "metrics.h"
#include "normalize.h"
#include "rng.h"
#include "safetensors.h"
#include "score.h"
#include "nn/thread.h"
#include "tensor.h"
#include "train.h"
#include "util.h"

#define LOG_HEADER "epoch\tlr\ttrain_loss\ttrain_acc\tval_loss\tval_auc\tval_kappa\tseconds\timages_per_s\n"
/* torch.optim.lr_scheduler.ReduceLROnPlateau's defaults: relative
 * threshold, and the smallest change of the rate that is applied. */
#define PLATEAU_THRESHOLD 1e-4
#define PLATEAU_EPS 1e-8

int
mura_monitor_parse(const char *s)
{
	if (!strcmp(s, "val_loss"))
		return MURA_MONITOR_VAL_LOSS;
	if (!strcmp(s, "val_auc"))
		return MURA_MONITOR_VAL_AUC;
	return mura_error("unknown monitor '%s' (val_loss, val_auc)", s);
}

const char *
mura_monitor_name(int monitor)
{
	return monitor == MURA_MONITOR_VAL_AUC ? "val_auc" : "val_loss";
}

void
mura_train_config_default(struct mura_train_config *c)
{
	memset(c, 0, sizeof *c);
	mura_model_config_default(&c->model);
	c->model.arch = 0;
	c->model.head = 0;
	c->model.dropout = -1;
	c->model.hybrid_stage = c->model.vit_dim = c->model.vit_depth = 0;
	c->model.vit_heads = c->model.vit_mlp = 0;
	c->lr_after_unfreeze = -1;
	mura_optim_config_default(&c->optim, MURA_OPTIM_ADAM);
	c->optim.lr = 1e-4;
	c->sched.kind = MURA_SCHED_PLATEAU;
	c->sched.gamma = 0.1;        /* StepLR's */
	c->sched.pct_start = 0.3;    /* OneCycleLR's */
	c->sched.warmup_factor = 0.01;  /* torchvision's references' --lr-warmup-decay */
	c->batch = 8;
	c->accumulate = 1;
	c->epochs = 10;
	mura_loss_init(&c->loss);
	c->weights_mode = MURA_WEIGHTS_PER_TYPE;
	c->boost = 1;
	c->seed = 1;
	c->monitor = MURA_MONITOR_VAL_LOSS;
	c->plateau_factor = 0.1;
	c->plateau_patience = 1;
}

int
mura_train_path(char *buf, size_t len, const char *out, const char *tag)
{
	static const char ext[] = ".safetensors";
	size_t n = strlen(out), e = sizeof ext - 1;
	int k;

	if (n > e && strcmp(out + n - e, ext) == 0)
		k = snprintf(buf, len, "%.*s.%s%s", (int)(n - e), out, tag, ext);
	else
		k = snprintf(buf, len, "%s.%s", out, tag);
	if (k < 0 || (size_t)k >= len)
		return mura_error("%s: path too long", out);
	return 0;
}

/* ---- the run's state ---------------------------------------------------- */

/* The training records: a mapped file (random access) or a pipe. */
struct source {
	const char *name;
	int pipe;
	struct mura_file mf;
	struct mura_reader rd;
	struct mura_record ahead;  /* the pipe's first record, read to learn the size */
	int have_ahead, eof;
	uint64_t n;                /* records: of the file, or read so far from the pipe */
	uint32_t h, w;
	int dtype;                 /* record 1's: the kind every record must be */
	uint64_t abnormal[MURA_TYPE_COUNT], normal[MURA_TYPE_COUNT];
};

struct run {
	const struct mura_train_config *c;
	int epochs;                   /* c->epochs, or the checkpoint's */
	struct source src;
	struct mura_file valid;
	int has_valid, valid_kappa;   /* validation; its kappa computable */
	struct mura_model *m;
	struct mura_optim opt;
	int has_opt;
	struct mura_sched sched;      /* c->sched resolved: lr, t_max, max_lr, total_steps */
	struct mura_loss loss;
	struct mura_aug aug;
	int augment;
	struct mura_norm norm;
	int threads;
	int precision;                /* c->model.precision resolved: FP32 or BF16 */
	int batch;
	int local;                    /* images one process takes at a time: its share of batch */
	size_t one;                   /* floats of one input image */
	float *x, *y, *logits, *dz;
	uint8_t *type;
	struct mura_record *recs;     /* the batch, owned copies */
	struct mura_record view, scratch;
	uint64_t *order;
	double *vprob;
	int *vlabel;
	struct mura_scores vs;
	struct mura_ckpt_settings settings;
	char weights_text[1024];      /* the class weights, for the metadata */
	char aug_text[512];
	char command[MURA_CKPT_TEXT_MAX];
	char ckpt[4200];
	int ckpt_epoch;               /* epochs done in the last checkpoint written, -1: none */
	struct mura_ckpt_state st;    /* st.threads: threads, for the checkpoint */
	char *history;                /* the log's rows so far */
	size_t hlen, hcap;
	/* several processes (lib/dist.h) */
	struct mura_dist *d;
	int rank, ranks;              /* this process's, of ranks (1: alone) */
	int agreed;                   /* a failure every process knows of */
	int stop_seen;                /* the last step's: some process was asked to stop */
	int finding;                  /* mura_train_find_lr: no files, divergence is a result */
	size_t *shares;               /* ranks: validation records of each */
};

/* The hybrid's options, members of struct mura_model_config; 0: not given. */
static const struct {
	const char *option;
	size_t off;
} hybrid_fields[] = {
	{"--hybrid-stage", offsetof(struct mura_model_config, hybrid_stage)},
	{"--vit-dim", offsetof(struct mura_model_config, vit_dim)},
	{"--vit-depth", offsetof(struct mura_model_config, vit_depth)},
	{"--vit-heads", offsetof(struct mura_model_config, vit_heads)},
	{"--vit-mlp", offsetof(struct mura_model_config, vit_mlp)},
};
#define HYBRID_FIELDS (sizeof hybrid_fields / sizeof hybrid_fields[0])

static int
hybrid_get(const struct mura_model_config *mc, size_t i)
{
	return *(const int *)(const void *)((const char *)mc + hybrid_fields[i].off);
}

static void
hybrid_set(struct mura_model_config *mc, size_t i, int v)
{
	*(int *)(void *)((char *)mc + hybrid_fields[i].off) = v;
}

static double
now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

static void MURA_PRINTF(2, 3)
info(struct run *r, const char *fmt, ...)
{
	struct mura_train_report rep = {0};
	char msg[2048];
	va_list ap;

	if (!r->c->report)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	rep.event = MURA_TRAIN_INFO;
	rep.msg = msg;
	rep.epoch = r->st.epoch;
	rep.epochs = r->epochs;
	r->c->report(r->c->report_arg, &rep);
}

static int
stop_asked(const struct run *r)
{
	return r->c->stop && *r->c->stop;
}

/* stop_asked of any process (a collective in a job of several). */
static int
stop_any(struct run *r)
{
	double v = stop_asked(r);

	mura_dist_sum(r->d, &v, 1);
	return v > 0;
}

/* rc, a result every process has reached at the same point: -1 on every
 * process when it is -1 on any, the message said by the first that
 * failed (the others' is empty). */
static int
agree(struct run *r, int rc)
{
	int first;

	if (r->ranks < 2)
		return rc;
	if ((first = mura_dist_first_failed(r->d, rc < 0)) < 0)
		return rc;
	r->agreed = 1;
	if (first != r->rank)
		mura_error_clear();
	return -1;
}

/* The share [*lo, *hi) of n items (from pos) that is this process's. */
static void
share(const struct run *r, uint64_t pos, uint64_t n, uint64_t *lo, uint64_t *hi)
{
	*lo = pos + n * (uint64_t)r->rank / (uint64_t)r->ranks;
	*hi = pos + n * ((uint64_t)r->rank + 1) / (uint64_t)r->ranks;
}

/* ---- records ------------------------------------------------------------- */

/* What a training or validation record must be: a size the plan fits, a
 * dtype and channel count the input takes, a label. */
static int
check_record(const char *name, uint64_t recno, const struct mura_record *rec, uint32_t h, uint32_t w,
             int dtype, const char *first, int binary)
{
	if (mura_input_check(rec) < 0)
		return mura_error_prefix("%s: record %llu", name, (unsigned long long)recno);
	if (rec->h != h || rec->w != w)
		return mura_error("%s: record %llu: %ux%u, but %s %ux%u: every record must have one size "
		                  "(mura-resize --size N)",
		                  name, (unsigned long long)recno, rec->h, rec->w, first, h, w);
	if ((rec->dtype == MURA_DTYPE_F32) != (dtype == MURA_DTYPE_F32))
		return mura_error("%s: record %llu: %s, but %s %s: the records of a run are all integer "
		                  "(u8, u16: normalised here) or all f32 (normalised before)",
		                  name, (unsigned long long)recno, mura_dtype_name(rec->dtype), first,
		                  mura_dtype_name(dtype));
	if (!(rec->label >= 0 && rec->label <= 1))
		return mura_error("%s: record %llu: label %g: training and validation need labels "
		                  "(0 normal, 1 abnormal)", name, (unsigned long long)recno, rec->label);
	if (binary && rec->label != 0 && rec->label != 1)
		return mura_error("%s: record %llu: label %g: validation labels must be 0 or 1", name,
		                  (unsigned long long)recno, rec->label);
	return 0;
}

static void
count(struct source *s, const struct mura_record *rec)
{
	int t = rec->type < MURA_TYPE_COUNT ? rec->type : 0;
	if (rec->label >= 0.5f)
		s->abnormal[t]++;
	else
		s->normal[t]++;
}

static int
source_open(struct source *s, const char *path)
{
	struct mura_record rec;
	int rc;

	memset(s, 0, sizeof *s);
	mura_record_init(&s->ahead);
	if (!strcmp(path, "-")) {
		s->pipe = 1;
		if (mura_reader_open(&s->rd, "-") < 0)
			return -1;
		s->name = s->rd.name;
		if ((rc = mura_read(&s->rd, &s->ahead)) < 0)
			return -1;
		if (rc == 0)
			return mura_error("%s: no records to train on", s->name);
		s->have_ahead = 1;
		s->n = 1;
		s->h = s->ahead.h, s->w = s->ahead.w, s->dtype = s->ahead.dtype;
		return check_record(s->name, 1, &s->ahead, s->h, s->w, s->dtype, "record 1 is", 0);
	}
	if (mura_file_open(&s->mf, path) < 0)
		return -1;
	s->name = s->mf.name;
	s->n = s->mf.n;
	if (s->n == 0)
		return mura_error("%s: no records to train on", s->name);
	mura_record_init(&rec);
	for (uint64_t i = 0; i < s->n; i++) {
		if (mura_file_get(&s->mf, i, &rec) < 0)
			return -1;
		if (i == 0)
			s->h = rec.h, s->w = rec.w, s->dtype = rec.dtype;
		if (check_record(s->name, i + 1, &rec, s->h, s->w, s->dtype, "record 1 is", 0) < 0)
			return -1;
		count(s, &rec);
	}
	mura_record_free(&rec);
	return 0;
}

static void
source_free(struct source *s)
{
	if (s->pipe)
		mura_reader_free(&s->rd);
	else if (s->name)
		mura_file_free(&s->mf);
	mura_record_free(&s->ahead);
}

/* Copy src (perhaps pointing into a mapping) into the owned dst. */
static int
copy_record(struct mura_record *dst, const struct mura_record *src)
{
	if (mura_record_copy_meta(dst, src) < 0 || mura_record_alloc(dst, src->dtype, src->c, src->h, src->w) < 0)
		return -1;
	memcpy(dst->data, src->data, mura_record_nbytes(src));
	return 0;
}

/* The next record of the pipe into dst: 1, 0 at its end, -1. */
static int
pipe_next(struct source *s, struct mura_record *dst)
{
	int rc;

	if (s->have_ahead) {
		s->have_ahead = 0;
		return copy_record(dst, &s->ahead) < 0 ? -1 : 1;
	}
	if (s->eof)
		return 0;
	if ((rc = mura_read(&s->rd, dst)) <= 0) {
		s->eof = rc == 0;
		return rc;
	}
	s->n++;
	if (check_record(s->name, s->rd.recno, dst, s->h, s->w, s->dtype, "record 1 is", 0) < 0)
		return -1;
	return 1;
}

/* ---- the settings a resumed run takes from its checkpoint --------------------- */

/* The settings that are members of the configuration as they are, copied
 * either way by copy_same; the others (enums by name, the
 * augmentation's text, the data) have lines of their own. */
#define SAME(cm, sm)                                                                                     \
	{offsetof(struct mura_train_config, cm), offsetof(struct mura_ckpt_settings, sm),                    \
	 sizeof(((struct mura_train_config *)0)->cm), sizeof(((struct mura_ckpt_settings *)0)->sm)}
static const struct {
	size_t c, s, csize, ssize;
} same[] = {
	SAME(batch, batch),
	SAME(seed, seed),
	SAME(optim.momentum, momentum),
	SAME(optim.dampening, dampening),
	SAME(optim.nesterov, nesterov),
	SAME(optim.weight_decay, weight_decay),
	SAME(optim.beta1, betas[0]),
	SAME(optim.beta2, betas[1]),
	SAME(optim.eps, eps),
	SAME(optim.amsgrad, amsgrad),
	SAME(loss.gamma, gamma),
	SAME(loss.alpha, alpha),
	SAME(boost, boost),
	SAME(plateau_factor, plateau_factor),
	SAME(plateau_patience, plateau_patience),
	SAME(early_stop, early_stop),
	SAME(keep_top, keep_top),
	SAME(freeze_backbone, freeze_backbone),
	SAME(unfreeze_at, unfreeze_at),
	SAME(lr_after_unfreeze, lr_after_unfreeze),
	SAME(sched.step_size, step_size),
	SAME(sched.gamma, lr_gamma),
	SAME(sched.t_max, t_max),
	SAME(sched.min_lr, min_lr),
	SAME(sched.max_lr, max_lr),
	SAME(sched.pct_start, pct_start),
	SAME(sched.warmup, warmup),
	SAME(sched.warmup_factor, warmup_factor),
	SAME(loss.smoothing, label_smoothing),
	SAME(accumulate, accumulate),
};

/* The members of same[] from src into dst: a configuration's into
 * settings, or (into_config) settings into a configuration. */
static void
copy_same(void *dst, const void *src, int into_config)
{
	for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
		assert(same[i].csize == same[i].ssize);
		memcpy((char *)dst + (into_config ? same[i].c : same[i].s),
		       (const char *)src + (into_config ? same[i].s : same[i].c), same[i].csize);
	}
}

/* r->settings from the options and the data, for train_settings. */
static void
make_settings(struct run *r)
{
	const struct mura_train_config *c = r->c;
	struct mura_ckpt_settings *s = &r->settings;

	memset(s, 0, sizeof *s);
	copy_same(s, c, 0);
	snprintf(s->optimizer, sizeof s->optimizer, "%s", mura_optim_kind_name(c->optim.kind));
	snprintf(s->loss, sizeof s->loss, "%s", mura_loss_kind_name(c->loss.kind));
	snprintf(s->class_weights, sizeof s->class_weights, "%s", mura_weights_mode_name(c->weights_mode));
	snprintf(s->augment, sizeof s->augment, "%s", r->aug_text);
	snprintf(s->monitor, sizeof s->monitor, "%s", mura_monitor_name(c->monitor));
	snprintf(s->schedule, sizeof s->schedule, "%s", mura_sched_kind_name(c->sched.kind));
	s->t_max = r->sched.t_max;    /* as resolved */
	s->max_lr = r->sched.max_lr;
	s->train = r->src.pipe ? MURA_CKPT_STREAM : r->src.n;
	s->input[0] = r->src.h, s->input[1] = r->src.w;
	s->valid = r->has_valid ? r->valid.n : 0;
}

/* The train_state and train_settings texts of f, a checkpoint (which has
 * train_history too).  Returns 0, or -1 with mura_error set. */
static int
ckpt_texts(const struct mura_st_file *f, const char **state, const char **settings)
{
	if (!(*state = mura_st_meta(f, "train_state")) || !(*settings = mura_st_meta(f, "train_settings")) ||
	    !mura_st_meta(f, "train_history"))
		return mura_error("%s: not a checkpoint of mura-train (no train_state): resume from the "
		                  "*.ckpt.safetensors file", f->path);
	return 0;
}

int
mura_train_config_from_ckpt(struct mura_train_config *c, struct mura_ckpt_settings *s, const char *path)
{
	struct mura_st_file f;
	struct mura_ckpt_state st;
	const char *state, *text;
	int optimizer, loss, weights_mode, monitor, sched, rc = -1;

	if (mura_st_open(&f, path) < 0)
		return -1;
	if (ckpt_texts(&f, &state, &text) < 0)
		goto done;
	if (mura_ckpt_settings_parse(s, text) < 0 || (optimizer = mura_optim_kind_parse(s->optimizer)) < 0 ||
	    (loss = mura_loss_kind_parse(s->loss)) < 0 ||
	    (weights_mode = mura_weights_mode_parse(s->class_weights)) < 0 ||
	    (monitor = mura_monitor_parse(s->monitor)) < 0 || (sched = mura_sched_kind_parse(s->schedule)) < 0) {
		mura_error_prefix("%s", path);
		goto done;
	}
	if (mura_ckpt_state_parse(&st, state) < 0) {
		mura_error_prefix("%s", path);
		goto done;
	}
	copy_same(c, s, 1);
	c->sync_bn = st.sync_bn;
	if (st.precision[0] && (c->model.precision = mura_precision_parse(st.precision)) < 0) {
		mura_error_prefix("%s: train_state: precision", path);
		goto done;
	}
	c->optim.kind = optimizer;
	c->loss.kind = loss;
	c->weights_mode = weights_mode;
	c->augment = s->augment;
	c->monitor = monitor;
	c->sched.kind = sched;
	c->epochs = 0;
	rc = 0;
done:
	mura_st_free(&f);
	return rc;
}

/* ---- files ----------------------------------------------------------------- */

/* s as metadata: valid UTF-8 is kept, a string that is not gets '?' for
 * every byte outside printable ASCII. */
static void
utf8_text(char *dst, size_t len, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	int ok = 1;

	while (*p && ok) {
		int n = *p < 0x80 ? 0 : (*p >> 5) == 6 ? 1 : (*p >> 4) == 14 ? 2 : (*p >> 3) == 30 ? 3 : -1;
		if (n < 0)
			ok = 0;
		for (int i = 1; ok && i <= n; i++)
			ok = (p[i] & 0xc0) == 0x80;
		p += ok ? n + 1 : 0;
	}
	snprintf(dst, len, "%s", s);
	if (!ok)
		for (unsigned char *q = (unsigned char *)dst; *q; q++)
			if (*q >= 0x80)
				*q = '?';
}

static void
fmt_num(char *buf, size_t len, double v)
{
	if (isnan(v))
		snprintf(buf, len, "n/a");
	else
		snprintf(buf, len, "%.8g", v);
}

/* Save the model to path: with the loop's state and the optimizer's slots
 * when ckpt.  val_*: the epoch's validation (NAN if none). */
static int
save(struct run *r, const char *path, int ckpt, int epochs_done, double vl, double va, double vk)
{
	const char *keys[9], *vals[9];
	char epoch[32], b[3][40], state[MURA_CKPT_TEXT_MAX], settings[MURA_CKPT_TEXT_MAX];
	struct mura_optim_slot *sl = NULL;
	struct mura_st_entry *e = NULL;
	size_t nk = 0, ne = 0;
	int rc;

	if (r->rank != 0)  /* process 0 writes for all */
		return 0;
	snprintf(epoch, sizeof epoch, "%d", epochs_done);
	fmt_num(b[0], sizeof b[0], vl);
	fmt_num(b[1], sizeof b[1], va);
	fmt_num(b[2], sizeof b[2], vk);
	keys[nk] = "train_epoch", vals[nk++] = epoch;
	keys[nk] = "train_val_loss", vals[nk++] = b[0];
	keys[nk] = "train_val_auc", vals[nk++] = b[1];
	keys[nk] = "train_val_kappa", vals[nk++] = b[2];
	keys[nk] = "train_class_weights", vals[nk++] = r->weights_text;
	keys[nk] = "train_command", vals[nk++] = r->command;
	if (ckpt) {
		size_t n = mura_optim_slot_count(&r->opt);
		if (mura_ckpt_state_format(&r->st, state, sizeof state) < 0 ||
		    mura_ckpt_settings_format(&r->settings, settings, sizeof settings) < 0)
			return -1;
		keys[nk] = "train_state", vals[nk++] = state;
		keys[nk] = "train_settings", vals[nk++] = settings;
		keys[nk] = "train_history", vals[nk++] = r->history ? r->history : "";
		/* The slots hold the names the entries point to. */
		sl = calloc(n ? n : 1, sizeof *sl);
		e = calloc(n ? n : 1, sizeof *e);
		if (!sl || !e) {
			free(sl);
			free(e);
			return mura_error("out of memory");
		}
		for (; ne < n; ne++) {
			if (mura_optim_slot(&r->opt, ne, &sl[ne]) < 0) {
				free(sl);
				free(e);
				return -1;
			}
			e[ne].name = sl[ne].name;
			e[ne].dtype = sl[ne].f32 ? MURA_ST_F32 : MURA_ST_I64;
			e[ne].ndim = sl[ne].f32 ? 1 : 0;
			e[ne].shape[0] = (int64_t)sl[ne].n;
			e[ne].data = sl[ne].f32 ? (const void *)sl[ne].f32 : (const void *)sl[ne].i64;
		}
	}
	rc = mura_model_save(r->m, path, keys, vals, nk, e, ne);
	free(sl);
	free(e);
	return rc;
}

static int
write_ckpt(struct run *r, int epochs_done)
{
	if (save(r, r->ckpt, 1, epochs_done, NAN, NAN, NAN) < 0)
		return -1;
	r->ckpt_epoch = epochs_done;
	return 0;
}

static int
write_log(const struct run *r)
{
	struct mura_out o;

	if (!r->c->log || r->rank != 0)
		return 0;
	if (mura_out_open(&o, r->c->log) < 0)
		return -1;
	fputs(LOG_HEADER, o.f);
	if (r->history)
		fputs(r->history, o.f);
	return mura_out_commit(&o);
}

/* The optimizer's state from a checkpoint. */
static int
load_slots(struct run *r, const struct mura_st_file *f)
{
	size_t n = mura_optim_slot_count(&r->opt);

	for (size_t i = 0; i < n; i++) {
		struct mura_optim_slot sl;
		const struct mura_st_tensor *t;
		if (mura_optim_slot(&r->opt, i, &sl) < 0)
			return -1;
		if (!(t = mura_st_find(f, sl.name)))
			return mura_error("%s: no optimizer state %s (a checkpoint of another optimizer?)", f->path,
			                  sl.name);
		if (t->nelem != sl.n)
			return mura_error("%s: optimizer state %s has %llu values, not %zu", f->path, sl.name,
			                  (unsigned long long)t->nelem, sl.n);
		if ((sl.f32 ? mura_st_to_f32(t, sl.f32, sl.n) : mura_st_to_i64(t, sl.i64, 1)) < 0)
			return -1;
	}
	return 0;
}

/* ---- setting up ---------------------------------------------------------------- */

/* The folder of path ("." for none), and the name in it. */
static const char *
dir_of(char *dir, size_t len, const char *path)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		snprintf(dir, len, ".");
	else
		snprintf(dir, len, "%.*s", (int)(slash - path ? slash - path : 1), path);
	return slash ? slash + 1 : path;
}

/* The folder of path must take new files: found out now, not after an epoch. */
static int
writable_dir(const char *path, const char *what)
{
	char dir[4200];

	dir_of(dir, sizeof dir, path);
	if (access(dir, W_OK | X_OK) < 0)
		return mura_error("%s %s: folder %s: %s", what, path, dir, strerror(errno));
	return 0;
}

/* What mura_out_clean's callbacks are given: the run, and the name (in
 * its folder) of out or of the log. */
struct ours {
	struct run *r;
	const char *name;
};

/* Is name one of out's model files: itself, .best, .ckpt, .top1 ...
 * .top100? */
static int
model_file(const char *name, void *arg)
{
	const char *out = ((const struct ours *)arg)->name;
	char path[4200], tag[16];

	if (strcmp(name, out) == 0)
		return 1;
	for (int k = -1; k <= MURA_CKPT_TOP_MAX; k++) {
		snprintf(tag, sizeof tag, k < 0 ? "best" : k == 0 ? "ckpt" : "top%d", k);
		if (mura_train_path(path, sizeof path, out, tag) == 0 && strcmp(name, path) == 0)
			return 1;
	}
	return 0;
}

static int
log_file(const char *name, void *arg)
{
	return strcmp(name, ((const struct ours *)arg)->name) == 0;
}

static void
removed(const char *path, void *arg)
{
	info(((struct ours *)arg)->r, "%s: removed, the temporary file of a run that was killed", path);
}

/* The temporaries (util.h's NAME.tmp.PID) of this run's files, the model
 * files and the log, that killed runs left: removed; those of live
 * processes stay. */
static int
clean_temporaries(struct run *r)
{
	const struct mura_train_config *c = r->c;
	char dir[4200];
	struct ours o = {r, dir_of(dir, sizeof dir, c->out)};

	if (mura_out_clean(dir, model_file, removed, &o) < 0)
		return -1;
	if (c->log && strcmp(c->log, "-") != 0) {
		o.name = dir_of(dir, sizeof dir, c->log);
		if (mura_out_clean(dir, log_file, removed, &o) < 0)
			return -1;
	}
	return 0;
}

/* out's checkpoint is another run's, which this one would overwrite: it
 * exists and is not the one resumed.  A fresh run over it is refused
 * unless forced. */
static int
ckpt_in_the_way(const struct run *r)
{
	const struct mura_train_config *c = r->c;
	struct stat mine, theirs;

	if (c->force || stat(r->ckpt, &mine) < 0)
		return 0;
	if (!c->resume)
		return mura_error("%s exists: a run with this --out was stopped or is done; continue it with "
		                  "--resume %s, or start over with --force (which overwrites it and the models "
		                  "beside it)", r->ckpt, r->ckpt);
	if (stat(c->resume, &theirs) == 0 && (mine.st_dev != theirs.st_dev || mine.st_ino != theirs.st_ino))
		return mura_error("%s exists, and is not the checkpoint resumed (%s): give another --out, or "
		                  "--force to overwrite it", r->ckpt, c->resume);
	return 0;
}

static int
class_weights(struct run *r)
{
	const struct mura_train_config *c = r->c;
	char line[512];
	size_t o = 0;

	r->loss = c->loss;
	if (r->src.pipe && c->weights_mode != MURA_WEIGHTS_NONE)
		return mura_error("%s: --class-weights %s needs the counts of the whole training set, which a "
		                  "stream read once cannot give: use a file, or --class-weights none",
		                  r->src.name, mura_weights_mode_name(c->weights_mode));
	if (mura_class_weights_compute(&r->loss.cw, c->weights_mode, r->src.abnormal, r->src.normal, c->boost) < 0)
		return -1;
	/* By type where the file has images of it; a stream has no counts,
	 * so its (unweighted) weights are those of type 0, every type's. */
	o = (size_t)snprintf(r->weights_text, sizeof r->weights_text, "%s, boost %g:",
	                     mura_weights_mode_name(c->weights_mode), c->boost);
	line[0] = 0;
	for (int t = 0, k = 0; t < MURA_TYPE_COUNT; t++) {
		if (r->src.pipe ? t > 0 : !r->src.abnormal[t] && !r->src.normal[t])
			continue;
		if (o < sizeof r->weights_text)
			o += (size_t)snprintf(r->weights_text + o, sizeof r->weights_text - o, " %s %.6g/%.6g",
			                      r->src.pipe ? "all" : mura_type_name(t), r->loss.cw.w0[t],
			                      r->loss.cw.w1[t]);
		if (!r->src.pipe && k < (int)sizeof line)
			k += snprintf(line + k, sizeof line - (size_t)k, "%s%s %llu/%llu", k ? ", " : "; images ",
			              mura_type_name(t), (unsigned long long)r->src.normal[t],
			              (unsigned long long)r->src.abnormal[t]);
	}
	info(r, "class weights (normal/abnormal) %s%s", r->weights_text, line);
	return 0;
}

static int
open_valid(struct run *r)
{
	struct mura_record rec;
	struct mura_studies st;
	char first[64];

	if (!r->c->valid)
		return 0;
	if (mura_file_open(&r->valid, r->c->valid) < 0)
		return -1;
	r->has_valid = 1;
	if (r->valid.n == 0)
		return mura_error("%s: no records to validate on", r->c->valid);
	if (!(r->vprob = malloc(r->valid.n * sizeof *r->vprob)) ||
	    !(r->vlabel = malloc(r->valid.n * sizeof *r->vlabel)))
		return mura_error("out of memory");
	snprintf(first, sizeof first, "the training records are");
	mura_record_init(&rec);
	mura_scores_clear(&r->vs);
	for (uint64_t i = 0; i < r->valid.n; i++) {
		if (mura_file_get(&r->valid, i, &rec) < 0 ||
		    check_record(r->valid.name, i + 1, &rec, r->src.h, r->src.w, r->src.dtype, first, 1) < 0)
			return -1;
		r->vlabel[i] = (int)rec.label;
		if (mura_scores_add(&r->vs, rec.path, rec.type, rec.patient, rec.study, rec.image,
		                    r->vlabel[i], 0.5) < 0)
			return mura_error_prefix("%s: record %llu", r->valid.name, (unsigned long long)i + 1);
	}
	mura_record_free(&rec);
	/* Studies need patient and study numbers that agree with the labels. */
	if (mura_studies_aggregate(&st, &r->vs, MURA_AGGREGATE_MEAN) < 0)
		info(r, "%s: no study-level kappa: %s", r->valid.name, mura_error_get());
	else {
		r->valid_kappa = 1;
		mura_studies_free(&st);
	}
	return 0;
}

/* The hybrid's shape: what the options give (> 0) over what the file says
 * (a checkpoint's is the same: resume_check); other architectures have
 * none. */
static int
hybrid_options(const struct mura_train_config *c, struct mura_model_config *mc)
{
	for (size_t i = 0; i < HYBRID_FIELDS; i++) {
		int given = hybrid_get(&c->model, i);
		if (given <= 0)
			continue;
		if (mc->arch != MURA_ARCH_HYBRID)
			return mura_error("%s is for the hybrid, not %s", hybrid_fields[i].option,
			                  mura_arch_name(mc->arch));
		hybrid_set(mc, i, given);
	}
	return 0;
}

/* The model: fresh, from --weights, or from the checkpoint; and its
 * optimizer.  f is the checkpoint when resuming. */
static int
make_model(struct run *r, const struct mura_st_file *ckpt)
{
	const struct mura_train_config *c = r->c;
	struct mura_model_config mc;
	struct mura_st_file wf;
	const struct mura_st_file *f = ckpt;
	char msg[1024];
	int ours = 0, rc = -1;

	memset(&wf, 0, sizeof wf);
	mura_model_config_default(&mc);
	if (!f && c->weights) {
		if (mura_st_open(&wf, c->weights) < 0)
			return -1;
		f = &wf;
	}
	if (f && (ours = mura_model_config_read(f, &mc)) < 0)
		goto done;
	if (ckpt && !ours) {
		mura_error("%s: not a checkpoint of mura-train (no model metadata)", ckpt->path);
		goto done;
	}
	if (f && !ours && c->model.arch <= 0) {  /* a plain torchvision file: which is it? */
		if ((mc.arch = mura_model_arch_guess(f)) < 0)
			goto done;
		info(r, "%s: a %s (from its tensors)", f->path, mura_arch_name(mc.arch));
	}
	/* What the options say, over what the file says (a checkpoint's
	 * model is what they say: resume_check). */
	if (c->model.arch > 0)
		mc.arch = c->model.arch;
	if (c->model.head > 0)
		mc.head = c->model.head;
	if (c->model.dropout >= 0)
		mc.dropout = c->model.dropout;
	if (c->norm_given) {
		memcpy(mc.mean, c->model.mean, sizeof mc.mean);
		memcpy(mc.std, c->model.std, sizeof mc.std);
	}
	if (hybrid_options(c, &mc) < 0)
		goto done;
	mc.threads = r->threads;  /* what the checkpoint records */
	mc.precision = c->model.precision;
	mc.seed = c->seed;
	mc.input_h = (int)r->src.h, mc.input_w = (int)r->src.w;
	/* What the model learns from, for mura-score: f32 records come
	 * normalised, and only --mean/--std can say how. */
	mc.input_dtype = r->src.dtype;
	mc.norm_unknown = r->src.dtype == MURA_DTYPE_F32 && !c->norm_given;
	if (mura_input_norm(&r->norm, &mc) < 0) {
		mura_error_prefix("--mean/--std");
		goto done;
	}
	if (!(r->m = mura_model_create(&mc)))
		goto done;
	if (f) {
		if (mura_model_load(r->m, f, msg, sizeof msg) < 0)
			goto done;
		if (msg[0])
			info(r, "%s: %s", f->path, msg);
		else if (!ckpt)
			info(r, "%s: every tensor loaded", f->path);
	}
	if (mura_model_plan(r->m, r->local, (int)r->src.h, (int)r->src.w, 1) < 0) {
		mura_error_prefix("%s: records of %ux%u", r->src.name, r->src.h, r->src.w);
		goto done;
	}
	size_t np;
	struct mura_param *p = mura_model_params(r->m, &np);
	if (mura_optim_init(&r->opt, &c->optim, p, np) < 0) {
		mura_error_prefix("optimizer");
		goto done;
	}
	r->has_opt = 1;
	rc = 0;
done:
	if (f == &wf)
		mura_st_free(&wf);
	return rc;
}

static int
alloc_batch(struct run *r)
{
	size_t b = (size_t)r->local;

	r->one = 3 * (size_t)r->src.h * r->src.w;
	r->x = malloc(b * r->one * sizeof *r->x);
	r->y = malloc(b * sizeof *r->y);
	r->logits = malloc(b * sizeof *r->logits);
	r->dz = malloc(b * sizeof *r->dz);
	r->type = malloc(b);
	r->recs = calloc(b, sizeof *r->recs);
	if (!r->src.pipe)
		r->order = malloc(r->src.n * sizeof *r->order);
	if (!r->x || !r->y || !r->logits || !r->dz || !r->type || !r->recs || (!r->src.pipe && !r->order))
		return mura_error("out of memory");
	for (size_t i = 0; i < b; i++)
		mura_record_init(&r->recs[i]);
	return 0;
}

static void
run_free(struct run *r)
{
	source_free(&r->src);
	if (r->has_valid)
		mura_file_free(&r->valid);
	if (r->has_opt)
		mura_optim_free(&r->opt);
	mura_model_free(r->m);
	mura_aug_free(&r->aug);
	for (int i = 0; r->recs && i < r->local; i++)
		mura_record_free(&r->recs[i]);
	mura_record_free(&r->view);
	mura_record_free(&r->scratch);
	mura_scores_free(&r->vs);
	free(r->recs);
	free(r->x);
	free(r->y);
	free(r->logits);
	free(r->dz);
	free(r->type);
	free(r->order);
	free(r->vprob);
	free(r->vlabel);
	free(r->history);
	free(r->shares);
}

/* ---- one epoch --------------------------------------------------------------- */

/* The loss went bad: say where, and what is left (nothing is written
 * after this, so the files of the last epoch done stay as they were). */
static int
diverged(struct run *r, const char *what)
{
	char where[64], left[9000];

	if (r->st.phase == 0)
		snprintf(where, sizeof where, "epoch %d, step %ld", r->st.epoch, r->st.step + 1);
	else
		snprintf(where, sizeof where, "epoch %d, validation", r->st.epoch);
	if (r->ckpt_epoch > 0)
		snprintf(left, sizeof left, "the last good state is %s (epoch %d) and %s", r->c->out, r->ckpt_epoch,
		         r->ckpt);
	else if (r->ckpt_epoch == 0)
		snprintf(left, sizeof left, "no epoch was completed; %s, from before, is left as it was", r->ckpt);
	else
		snprintf(left, sizeof left, "no epoch was completed, nothing was saved");
	return mura_error("%s: %s: training stopped (try a lower --lr); %s", where, what, left);
}

/* Fill the batch's input from recs[0..nb), augmenting and mixing first. */
static int
make_batch(struct run *r, int nb)
{
	const struct mura_train_config *c = r->c;

	for (int k = 0; k < nb; k++)
		if (r->augment && mura_aug_record(&r->aug, &r->recs[k], c->seed, (uint64_t)r->st.epoch) < 0)
			return mura_error_prefix("%s: %s", r->src.name, r->recs[k].path);
	if (r->augment && r->aug.spec.mixup > 0) {
		struct mura_rng rng;
		char key[64];
		/* each process mixes its own share, as each of DDP's does */
		if (r->ranks > 1)
			snprintf(key, sizeof key, "mixup/%ld/%d", r->st.step, r->rank);
		else
			snprintf(key, sizeof key, "mixup/%ld", r->st.step);
		mura_rng_derive(&rng, c->seed, (uint64_t)r->st.epoch, key);
		if (mura_aug_mixup(&r->aug, r->recs, (size_t)nb, &rng) < 0)
			return mura_error_prefix("%s: epoch %d, step %ld: mixup", r->src.name, r->st.epoch, r->st.step + 1);
	}
	for (int k = 0; k < nb; k++) {
		if (mura_input_from_record(r->x + (size_t)k * r->one, &r->recs[k], &r->norm, &r->scratch) < 0)
			return mura_error_prefix("%s: %s", r->src.name, r->recs[k].path);
		r->y[k] = r->recs[k].label;
		r->type[k] = r->recs[k].type < MURA_TYPE_COUNT ? r->recs[k].type : 0;
	}
	return 0;
}

/* One batch on this process's nb images, of the step's total images (the
 * global batch's, or the K batches' it accumulates); first: the step's
 * first batch (the gradients start from zero), last: its last (the
 * optimizer steps, at the rate and momentum of the schedule). */
static int
step(struct run *r, int nb, int total, int first, int last)
{
	double sum = 0, v[6] = {0};

	/* dropout masks a function of the step alone, so that a resumed run
	 * draws the ones the uninterrupted run drew (and of the process) */
	mura_model_seed_dropout(r->m, r->c->seed, (uint64_t)r->st.step * (uint64_t)r->ranks + (uint64_t)r->rank);
	if (mura_model_forward(r->m, r->x, nb, 1, r->logits) < 0)
		return -1;
	for (int k = 0; k < nb; k++)
		if (!isfinite(r->logits[k]))
			v[isnan(r->logits[k]) ? 4 : 5] = 1;
	if (r->ranks < 2 && (v[4] || v[5]))
		return r->finding ? 2 : diverged(r, v[4] ? "a logit is nan" : "a logit is infinite");
	if (v[4] || v[5])  /* go on to the sums, where every process learns of it */
		memset(r->dz, 0, (size_t)nb * sizeof *r->dz);
	else if (mura_loss_part(&r->loss, r->logits, r->y, r->type, (size_t)nb, (size_t)total, &sum, r->dz) < 0)
		return -1;
	if (r->ranks < 2 && !isfinite(sum))
		return r->finding ? 2 : diverged(r, isnan(sum) ? "the loss is nan" : "the loss is infinite");
	if (first)
		mura_optim_zero_grad(&r->opt);
	if (mura_model_backward(r->m, r->dz) < 0 || mura_dist_grads_sum(r->d) < 0)
		return -1;
	/* what the processes learnt, summed: stop, loss, right, images, nan, inf */
	v[0] = stop_asked(r);
	v[1] = sum;
	for (int k = 0; k < nb; k++)
		v[2] += (r->logits[k] > 0) == (r->y[k] >= 0.5f);
	v[3] = nb;
	mura_dist_sum(r->d, v, 6);
	if (v[4] || v[5] || !isfinite(v[1])) {
		/* every process stops here, process 0 says why */
		r->agreed = 1;
		diverged(r, v[4] ? "a logit is nan" : v[5] ? "a logit is infinite" : isnan(v[1]) ? "the loss is nan"
		                                                                    : "the loss is infinite");
		if (r->rank != 0)
			mura_error_clear();
		return -1;
	}
	if (last) {
		double m;
		r->opt.cfg.lr = r->st.lr;
		if (mura_sched_momentum(&r->sched, r->st.total_steps, &m)) {
			if (r->opt.cfg.kind == MURA_OPTIM_SGD)
				r->opt.cfg.momentum = m;
			else
				r->opt.cfg.beta1 = m;
		}
		mura_optim_step(&r->opt);
		r->st.step_lr = r->st.lr;
		r->st.total_steps++;
		mura_sched_step(&r->sched, r->st.total_steps, &r->st.lr);
	}
	r->stop_seen = v[0] > 0;
	r->st.loss_sum += v[1] * (1.0 / (double)total) * total;
	r->st.correct += (uint64_t)v[2];
	r->st.seen += (uint64_t)v[3];
	return 0;
}

static void
report_step(struct run *r, long steps, int event)
{
	struct mura_train_report rep = {0};
	double t = r->st.train_seconds;

	if (!r->c->report)
		return;
	rep.event = event;
	rep.epoch = r->st.epoch;
	rep.epochs = r->epochs;
	rep.step = r->st.step;
	rep.steps = steps;
	rep.loss = r->st.seen ? r->st.loss_sum / (double)r->st.seen : NAN;
	rep.acc = r->st.seen ? (double)r->st.correct / (double)r->st.seen : NAN;
	rep.lr = r->st.step_lr > 0 ? r->st.step_lr : r->st.lr;
	rep.images_per_s = t > 0 ? (double)r->st.seen / t : NAN;
	rep.eta = steps > 0 && r->st.step > 0 ? t / (double)r->st.step * (double)(steps - r->st.step) : -1;
	rep.val_loss = rep.val_auc = rep.val_kappa = NAN;
	r->c->report(r->c->report_arg, &rep);
}

/* The batches of an epoch of the training file, and its images into *n:
 * a last batch of one image is left out (batch statistics need two;
 * shared out, it must give each process two, or one with --sync-bn if
 * the whole has two).  Optimizer steps: accumulate of them make one. */
static long
epoch_batches(const struct run *r, uint64_t *n)
{
	uint64_t need = r->ranks < 2 ? 2 : r->c->sync_bn ? (uint64_t)(r->ranks > 2 ? r->ranks : 2)
	                                                 : 2 * (uint64_t)r->ranks;
	uint64_t last;

	*n = r->src.n;
	last = *n % (uint64_t)r->batch;
	if (r->batch > 1 && *n > 1 && last > 0 && last < need)
		*n -= last;
	return (long)((*n + (uint64_t)r->batch - 1) / (uint64_t)r->batch);
}

/* r->order: the permutation of epoch r->st.epoch, from the seed. */
static void
shuffle(struct run *r)
{
	struct mura_rng rng;

	for (uint64_t i = 0; i < r->src.n; i++)
		r->order[i] = i;
	mura_rng_derive(&rng, r->c->seed, (uint64_t)r->st.epoch, "shuffle");
	for (uint64_t i = r->src.n - 1; i > 0; i--) {
		uint64_t j = mura_rng_below(&rng, i + 1), t = r->order[i];
		r->order[i] = r->order[j];
		r->order[j] = t;
	}
}

/* The epoch's training part.  Returns 0 when done, 1 when asked to stop
 * (after a step), -1 on error. */
static int
train_epoch(struct run *r)
{
	const struct mura_train_config *c = r->c;
	long steps = -1;
	uint64_t n = r->src.n;
	uint64_t group = (uint64_t)r->batch * (uint64_t)c->accumulate;  /* images of a step */

	if (!r->src.pipe) {
		steps = epoch_batches(r, &n);
		shuffle(r);
	} else if (r->st.step > 0) {
		/* Resuming from a pipe: the same stream again, past what was used. */
		uint64_t skip = (uint64_t)r->st.step * (uint64_t)r->batch;
		for (uint64_t i = 0; i < skip; i++) {
			int rc = pipe_next(&r->src, &r->recs[0]);
			if (rc < 0)
				return -1;
			if (rc == 0)
				return mura_error("%s: the stream ended after %llu records; the checkpoint had used %llu",
				                  r->src.name, (unsigned long long)i, (unsigned long long)skip);
		}
	}
	while (steps < 0 || r->st.step < steps) {
		double t0 = now();
		int nb = 0, total;
		int first = 1, last = 1;
		if (!r->src.pipe) {
			/* the global batch [pos, pos + nb), this process's share of
			 * it; the step's images are its group's, K batches' */
			uint64_t pos = (uint64_t)r->st.step * (uint64_t)r->batch, lo, hi, g0;
			uint64_t nbatch = n - pos < (uint64_t)r->batch ? n - pos : (uint64_t)r->batch;
			g0 = pos / group * group;
			total = (int)(n - g0 < group ? n - g0 : group);
			first = r->st.step % c->accumulate == 0;
			last = r->st.step % c->accumulate == c->accumulate - 1 || r->st.step == steps - 1;
			share(r, pos, nbatch, &lo, &hi);
			for (; lo + (uint64_t)nb < hi; nb++) {
				if (mura_file_get(&r->src.mf, r->order[lo + (uint64_t)nb], &r->view) < 0 ||
				    copy_record(&r->recs[nb], &r->view) < 0)
					return -1;
			}
		} else {
			int rc = 1;
			while (nb < r->batch && (rc = pipe_next(&r->src, &r->recs[nb])) == 1)
				nb++;
			if (rc < 0)
				return -1;
			if (nb == 0 || (nb == 1 && r->batch > 1)) {
				if (nb == 1)
					info(r, "%s: the last record was left out: a batch of one has no batch statistics",
					     r->src.name);
				break;
			}
			total = nb;
		}
		if (make_batch(r, nb) < 0 || step(r, nb, total, first, last) < 0)
			return -1;
		r->st.step++;
		r->st.train_seconds += now() - t0;
		r->st.seconds += now() - t0;
		report_step(r, steps, MURA_TRAIN_STEP);
		/* Alone, a stop asked for during the report is seen at once; in a
		 * job, by every process at the next step's sums.  Only between
		 * optimizer steps: the gradients of a part of one are not saved. */
		if (last && (r->stop_seen || (r->ranks < 2 && stop_asked(r))))
			return 1;
	}
	return 0;
}

/* Loss, image AUC and study kappa on the validation records.  Returns 0,
 * 1 when asked to stop, -1. */
static int
validate_all(struct run *r, double *vl, double *auc, double *kappa)
{
	double sum = 0, bad[3] = {0};
	uint64_t n = r->valid.n, lo, hi;

	report_step(r, -1, MURA_TRAIN_VALIDATING);
	/* this process's share of the records, a batch at a time */
	share(r, 0, n, &lo, &hi);
	for (uint64_t pos = lo; pos < hi; pos += (uint64_t)r->local) {
		int nb = (int)(hi - pos < (uint64_t)r->local ? hi - pos : (uint64_t)r->local);
		double l;
		for (int k = 0; k < nb; k++) {
			if (mura_file_get(&r->valid, pos + (uint64_t)k, &r->view) < 0 ||
			    mura_input_from_record(r->x + (size_t)k * r->one, &r->view, &r->norm, &r->scratch) < 0)
				return mura_error_prefix("%s: record %llu", r->valid.name,
				                         (unsigned long long)(pos + (uint64_t)k + 1));
			r->y[k] = r->view.label;
			r->type[k] = r->view.type < MURA_TYPE_COUNT ? r->view.type : 0;
		}
		if (mura_model_forward(r->m, r->x, nb, 0, r->logits) < 0)
			return -1;
		for (int k = 0; k < nb; k++)
			if (!isfinite(r->logits[k]))
				bad[isnan(r->logits[k]) ? 1 : 2] = 1;
		if (bad[1] || bad[2]) {
			if (r->ranks < 2)
				return diverged(r, bad[1] ? "a logit is nan" : "a logit is infinite");
			continue;  /* to the sums, where every process learns of it */
		}
		if (mura_loss_compute(&r->loss, r->logits, r->y, r->type, (size_t)nb, &l, NULL) < 0)
			return -1;
		sum += l * nb;
		for (int k = 0; k < nb; k++) {
			double p = 1.0 / (1.0 + exp(-(double)r->logits[k]));
			r->vprob[pos + (uint64_t)k] = p;
			r->vs.v[pos + (uint64_t)k].prob = p;
		}
		if (r->ranks < 2 && stop_asked(r))
			return 1;
	}
	if (r->ranks > 1) {
		/* every process gets every probability, and so the same metrics */
		bad[0] = sum;
		mura_dist_sum(r->d, bad, 3);
		if (bad[1] || bad[2]) {
			r->agreed = 1;
			diverged(r, bad[1] ? "a logit is nan" : "a logit is infinite");
			if (r->rank != 0)
				mura_error_clear();
			return -1;
		}
		sum = bad[0];
		for (int k = 0; k < r->ranks; k++)
			r->shares[k] = (size_t)(n * ((uint64_t)k + 1) / (uint64_t)r->ranks - n * (uint64_t)k / (uint64_t)r->ranks);
		mura_dist_gather(r->d, r->vprob, r->shares);
		for (uint64_t i = 0; i < n; i++)
			r->vs.v[i].prob = r->vprob[i];
	}
	*vl = sum / (double)n;
	if (mura_auc(r->vprob, r->vlabel, (size_t)n, auc) < 0)
		return -1;
	*kappa = NAN;
	if (r->valid_kappa) {
		struct mura_studies st;
		struct mura_eval_opts eo;
		struct mura_report rep;
		if (mura_studies_aggregate(&st, &r->vs, MURA_AGGREGATE_MEAN) < 0)
			return -1;
		mura_eval_opts_init(&eo);
		int rc = mura_evaluate(&rep, &st, &eo);
		mura_studies_free(&st);
		if (rc < 0)
			return -1;
		*kappa = rep.group[MURA_GROUP_ALL].value[MURA_METRIC_KAPPA];
	}
	return 0;
}

/* validate_all with the convolutions' packed weights kept from batch to
 * batch: the weights do not change until the next training step. */
static int
validate(struct run *r, double *vl, double *auc, double *kappa)
{
	/* Each process's batch statistics updated its own running ones:
	 * every process validates process 0's, the model it saves (as DDP's
	 * broadcast_buffers gives every process). */
	if (r->ranks > 1 && !r->c->sync_bn) {
		struct mura_model_flat f;
		mura_model_flat(r->m, &f);
		mura_dist_bcast(r->d, f.buf, f.nbuf * sizeof *f.buf);
	}
	mura_model_keep_packed(r->m, 1);
	int rc = validate_all(r, vl, auc, kappa);
	mura_model_keep_packed(r->m, 0);
	return rc;
}

/* ---- the end of an epoch: callbacks and files ----------------------------------- */

static int
better(int monitor, double v, double best)
{
	return monitor == MURA_MONITOR_VAL_AUC ? v > best : v < best;
}

/* Put this epoch among the K lowest validation losses, shifting the files
 * of the ranks below it.  Returns the rank (1-based) taken, 0 for none. */
static int
keep_top(struct run *r, double vl, int epoch, double va, double vk)
{
	struct mura_ckpt_state *s = &r->st;
	int k = r->c->keep_top, rank;
	char from[4200], to[4200], tag[16];

	if (k <= 0 || isnan(vl))
		return 0;
	for (rank = 0; rank < s->top.n && !(vl < s->top.e[rank].loss); rank++)
		;
	if (rank >= k)
		return 0;
	for (int i = (s->top.n < k ? s->top.n : k - 1) - 1; i >= rank; i--) {
		snprintf(tag, sizeof tag, "top%d", i + 1);
		if (mura_train_path(from, sizeof from, r->c->out, tag) < 0)
			return -1;
		snprintf(tag, sizeof tag, "top%d", i + 2);
		if (mura_train_path(to, sizeof to, r->c->out, tag) < 0)
			return -1;
		if (r->rank == 0 && rename(from, to) < 0 && errno != ENOENT)
			return mura_error("%s: rename to %s: %s", from, to, strerror(errno));
		s->top.e[i + 1] = s->top.e[i];
	}
	s->top.e[rank] = (struct mura_ckpt_top){vl, epoch};
	if (s->top.n < k)
		s->top.n++;
	snprintf(tag, sizeof tag, "top%d", rank + 1);
	if (mura_train_path(to, sizeof to, r->c->out, tag) < 0 || save(r, to, 0, epoch, vl, va, vk) < 0)
		return -1;
	return rank + 1;
}

static int
history_add(struct run *r, const char *row)
{
	size_t n = strlen(row);

	if (r->hlen + n + 1 > r->hcap) {
		size_t cap = (r->hlen + n + 1) * 2;
		char *h = realloc(r->history, cap);
		if (!h)
			return mura_error("out of memory");
		r->history = h;
		r->hcap = cap;
	}
	memcpy(r->history + r->hlen, row, n + 1);
	r->hlen += n;
	return 0;
}

/* Callbacks, files and the report after epoch e's validation.  Sets
 * *stop_early.  Returns 0 or -1. */
static int
end_epoch(struct run *r, double vl, double va, double vk, int *stop_early)
{
	const struct mura_train_config *c = r->c;
	struct mura_ckpt_state *s = &r->st;
	struct mura_train_report rep = {0};
	int e = s->epoch, best = 0, reduced = 0;
	/* the rate the epoch's last step trained with */
	double lr = s->step_lr > 0 ? s->step_lr : s->lr, seconds = s->seconds;
	double loss = s->seen ? s->loss_sum / (double)s->seen : NAN;
	double acc = s->seen ? (double)s->correct / (double)s->seen : NAN;
	double ips = s->train_seconds > 0 ? (double)s->seen / s->train_seconds : NAN;
	char path[4200], row[512], b[7][40];

	*stop_early = 0;
	if (r->has_valid) {
		double v = c->monitor == MURA_MONITOR_VAL_AUC ? va : vl;
		/* The best checkpoint, and early stopping (Keras' EarlyStopping,
		 * min_delta 0): improvement is strict. */
		if (better(c->monitor, v, s->best)) {
			s->best = v, s->best_epoch = e, s->wait = 0;
			best = 1;
		} else if (c->early_stop > 0 && ++s->wait >= c->early_stop)
			*stop_early = 1;
		/* torch.optim.lr_scheduler.ReduceLROnPlateau, threshold_mode
		 * "rel", threshold 1e-4, cooldown 0, min_lr 0. */
		if (c->plateau_factor < 1 && r->sched.kind == MURA_SCHED_PLATEAU) {
			int imp = c->monitor == MURA_MONITOR_VAL_AUC ? v > s->plateau_best * (1 + PLATEAU_THRESHOLD)
			                                             : v < s->plateau_best * (1 - PLATEAU_THRESHOLD);
			if (imp)
				s->plateau_best = v, s->plateau_bad = 0;
			else
				s->plateau_bad++;
			if (s->plateau_bad > c->plateau_patience) {
				double nl = s->lr * c->plateau_factor;
				if (s->lr - nl > PLATEAU_EPS) {
					s->lr = nl;
					reduced = 1;
				}
				s->plateau_bad = 0;
			}
		}
	}
	/* the epoch schedules' step (the same on every process: it depends
	 * on the epoch and the rate alone) */
	mura_sched_epoch(&r->sched, e, &s->lr);
	if (r->ranks > 1) {
		struct mura_model_flat f;
		mura_model_flat(r->m, &f);
		if (!mura_dist_same(r->d, f.param, f.nparam * sizeof *f.param))
			return mura_error("epoch %d: the processes' weights differ: MPI's sums of the gradients were "
			                  "not the same everywhere, nothing is saved", e);
	}
	if (save(r, c->out, 0, e, vl, va, vk) < 0 || mura_train_path(path, sizeof path, c->out, "best") < 0)
		return -1;
	if (best && save(r, path, 0, e, vl, va, vk) < 0)
		return -1;
	if (r->has_valid && keep_top(r, vl, e, va, vk) < 0)
		return -1;

	fmt_num(b[0], sizeof b[0], lr);
	fmt_num(b[1], sizeof b[1], loss);
	fmt_num(b[2], sizeof b[2], acc);
	fmt_num(b[3], sizeof b[3], vl);
	fmt_num(b[4], sizeof b[4], va);
	fmt_num(b[5], sizeof b[5], vk);
	fmt_num(b[6], sizeof b[6], ips);
	snprintf(row, sizeof row, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%.3f\t%s\n", e, b[0], b[1], b[2], b[3], b[4],
	         b[5], seconds, b[6]);
	if (history_add(r, row) < 0)
		return -1;

	/* The next epoch starts here. */
	s->epoch = e + 1;
	s->phase = 0;
	s->step = 0;
	s->loss_sum = 0;
	s->correct = s->seen = 0;
	s->seconds = s->train_seconds = 0;
	if (write_ckpt(r, e) < 0 || write_log(r) < 0)
		return -1;

	if (c->report) {
		rep.event = MURA_TRAIN_EPOCH;
		rep.epoch = e;
		rep.epochs = r->epochs;
		rep.step = rep.steps = -1;
		rep.loss = loss;
		rep.acc = acc;
		rep.lr = lr;
		rep.images_per_s = ips;
		rep.eta = 0;
		rep.seconds = seconds;
		rep.val_loss = vl;
		rep.val_auc = va;
		rep.val_kappa = vk;
		rep.best = best;
		rep.lr_reduced = reduced;
		rep.stopping = *stop_early;
		c->report(c->report_arg, &rep);
	}
	if (reduced)
		info(r, "%s did not improve for %d epoch%s: learning rate %g -> %g", mura_monitor_name(c->monitor),
		     c->plateau_patience + 1, c->plateau_patience ? "s" : "", lr, s->lr);
	if (*stop_early)
		info(r, "early stopping: %s did not improve for %d epoch%s (best %.6g at epoch %d, in %s)",
		     mura_monitor_name(c->monitor), s->wait, s->wait > 1 ? "s" : "", s->best, s->best_epoch, path);
	return 0;
}

/* ---- several processes ----------------------------------------------------------- */

/* The hook of the model's backward: lib/dist.c's, on r's job. */
static void
grads_final(void *arg, size_t off)
{
	mura_dist_grads_final(((struct run *)arg)->d, off);
}

static void
sum_stats(void *arg, double *v, size_t n)
{
	mura_dist_sum(((struct run *)arg)->d, v, n);
}

/* The gradients' buckets, over the trainable parameters (all, or the
 * head's with the backbone frozen): PyTorch DDP's sizes, 1 MiB first
 * (sent while backward goes on), then bucket_mb (25 MiB). */
static int
plan_grads(struct run *r)
{
	struct mura_model_flat f;
	size_t np, *start, lo = 0, k = 0;
	struct mura_param *p = mura_model_params(r->m, &np);
	double mb = r->c->bucket_mb > 0 ? r->c->bucket_mb : 25;
	int rc;

	mura_model_flat(r->m, &f);
	if (!(start = malloc((np ? np : 1) * sizeof *start)))
		return mura_error("out of memory");
	for (size_t i = 0; i < np; i++) {
		if (p[i].frozen) {
			lo = (size_t)(p[i].g - f.grad) + p[i].n;
			continue;
		}
		start[k++] = (size_t)(p[i].g - f.grad);
	}
	rc = mura_dist_grads_plan(r->d, f.grad, lo, f.nparam, start, k, (size_t)1 << 20,
	                          (size_t)(mb * (1 << 20)));
	free(start);
	return rc;
}

/* Every process starts from process 0's weights and buffers, and sums
 * its gradients (and with sync_bn its batch statistics) with the others'. */
static int
join_job(struct run *r)
{
	struct mura_model_flat f;

	if (!r->d)
		return 0;
	mura_model_flat(r->m, &f);
	mura_dist_bcast(r->d, f.param, f.nparam * sizeof *f.param);
	mura_dist_bcast(r->d, f.buf, f.nbuf * sizeof *f.buf);
	mura_dist_bcast(r->d, f.count, f.ncount * sizeof *f.count);
	mura_model_on_grads(r->m, grads_final, r);
	if (r->ranks > 1 && r->c->sync_bn && mura_model_sync_bn(r->m, sum_stats, r) < 0)
		return -1;
	return 0;
}

/* ---- resuming ----------------------------------------------------------------- */

/* The run's epochs when resuming: c->epochs, or the checkpoint's when 0.
 * A run that is done (every epoch, or ended by early stopping) goes on
 * only for an --epochs above its own.  Returns 0 to train, 1 when there is
 * nothing to do (said), -1. */
static int
resume_epochs(struct run *r, const struct mura_ckpt_settings *s)
{
	const char *path = r->c->resume;
	int had = r->st.epochs, done = r->st.epoch - 1;
	int stopped = s->early_stop > 0 && r->st.wait >= s->early_stop && r->st.phase == 0 && r->st.step == 0 &&
	              done > 0;

	if (!had && !r->c->epochs)
		return mura_error("%s does not record the run's number of epochs (a checkpoint of an older "
		                  "mura-train): give --epochs", path);
	r->epochs = r->c->epochs ? r->c->epochs : had;
	if (had && r->epochs > had && r->sched.kind == MURA_SCHED_ONECYCLE)
		return mura_error("%s: --epochs %d: a one-cycle schedule ends with its run's %ld steps (%d "
		                  "epochs); it cannot be extended", path, r->epochs, r->sched.total_steps, had);
	if (had && r->epochs > had) {
		info(r, "%s: extending the run from %d to %d epochs", path, had, r->epochs);
		return 0;
	}
	if (stopped) {
		info(r, "%s: early stopping ended the run after epoch %d of %d: nothing to do (to train on, "
		        "give --epochs above %d)", path, done, had, had);
		return 1;
	}
	if (done >= r->epochs) {
		if (done > r->epochs)
			info(r, "%s: %d epochs are done, more than --epochs %d: nothing to do", path, done, r->epochs);
		else
			info(r, "%s: the run is done (%d of %d epochs): nothing to do (to train on, give --epochs above %d)",
			     path, done, r->epochs, r->epochs);
		return 1;
	}
	if (had && r->epochs < had)
		info(r, "%s: shortening the run from %d to %d epochs", path, had, r->epochs);
	return 0;
}

/* The checkpoint to resume from, opened into ck: its state into r->st, its
 * settings into theirs.  Returns 0 or -1. */
static int
resume_open(struct run *r, struct mura_st_file *ck, struct mura_ckpt_settings *theirs)
{
	const char *path = r->c->resume, *state, *settings;

	if (mura_st_open(ck, path) < 0 || ckpt_texts(ck, &state, &settings) < 0)
		return -1;
	if (mura_ckpt_state_parse(&r->st, state) < 0 || mura_ckpt_settings_parse(theirs, settings) < 0)
		return mura_error_prefix("%s", path);
	return 0;
}

/* items[0 .. n) as "A", "A and B", "A, B and C". */
static void
join(char *buf, size_t len, const char *const *items, int n)
{
	size_t o = 0;

	buf[0] = 0;
	for (int i = 0; i < n && o < len; i++)
		o += (size_t)snprintf(buf + o, len - o, "%s%s", i == 0 ? "" : i == n - 1 ? " and " : ", ", items[i]);
}

/* What the checkpoint says and what this run says, difference by
 * difference, for one message. */
struct differences {
	int n;
	const char *was[48], *now[48];
	char own[16][2][160];  /* the texts of the model's differences */
	int nown;
};

static void
differ(struct differences *d, const char *was, const char *now)
{
	if (d->n < (int)(sizeof d->was / sizeof d->was[0]))
		d->was[d->n] = was, d->now[d->n++] = now;
}

/* A difference of the model: "OPTION WAS", "OPTION NOW". */
static void
differ_model(struct differences *d, const char *option, const char *was, const char *now)
{
	char (*b)[160];

	if (d->nown == (int)(sizeof d->own / sizeof d->own[0]))
		return;
	b = d->own[d->nown++];
	snprintf(b[0], sizeof b[0], "%s %s", option, was);
	snprintf(b[1], sizeof b[1], "%s %s", option, now);
	differ(d, b[0], b[1]);
}

/* Three floats as --mean and --std take them. */
static void
floats3(char *buf, size_t len, const float *v)
{
	char b[3][32];

	for (int i = 0; i < 3; i++)
		mura_format_shortest(b[i], sizeof b[i], v[i], 1);
	snprintf(buf, len, "%s,%s,%s", b[0], b[1], b[2]);
}

/* The model's options given that differ from what the checkpoint's model
 * records, into d. */
static void
model_differences(const struct mura_train_config *c, const struct mura_model_config *mc, struct differences *d)
{
	const struct mura_model_config *my = &c->model;
	char a[96], b[96];

	if (my->arch > 0 && my->arch != mc->arch)
		differ_model(d, "--arch", mura_arch_name(mc->arch), mura_arch_name(my->arch));
	if (my->head > 0 && my->head != mc->head)
		differ_model(d, "--head", mura_head_name(mc->head), mura_head_name(my->head));
	if (my->dropout >= 0 && my->dropout != mc->dropout) {
		mura_format_shortest(a, sizeof a, mc->dropout, 1);
		mura_format_shortest(b, sizeof b, my->dropout, 1);
		differ_model(d, "--dropout", a, b);
	}
	if (c->norm_given && memcmp(my->mean, mc->mean, sizeof mc->mean) != 0) {
		floats3(a, sizeof a, mc->mean);
		floats3(b, sizeof b, my->mean);
		differ_model(d, "--mean", a, b);
	}
	if (c->norm_given && memcmp(my->std, mc->std, sizeof mc->std) != 0) {
		floats3(a, sizeof a, mc->std);
		floats3(b, sizeof b, my->std);
		differ_model(d, "--std", a, b);
	}
	if (mc->arch != MURA_ARCH_HYBRID)
		return;  /* another's refuses the hybrid's options (hybrid_options) */
	for (size_t i = 0; i < HYBRID_FIELDS; i++) {
		int mine = hybrid_get(my, i), theirs = hybrid_get(mc, i);
		if (mine > 0 && mine != theirs) {
			snprintf(a, sizeof a, "%d", theirs);
			snprintf(b, sizeof b, "%d", mine);
			differ_model(d, hybrid_fields[i].option, a, b);
		}
	}
}

/* A resumed run is the checkpoint's run: its model (what the options
 * given say of it), its settings (mura-train takes the options not given
 * from the checkpoint, so a difference is an option given otherwise) and
 * its data (the records' counts and size).  Every difference in one
 * message. */
static int
resume_check(struct run *r, const struct mura_st_file *ck, const struct mura_ckpt_settings *theirs)
{
	enum { MAX = 40 };
	const char *path = r->c->resume;
	struct mura_ckpt_diff diff[MAX];
	struct mura_model_config mc;
	struct differences opt = {0}, data = {0};
	char list[4][8192], msg[4 * 8192 + 256];
	size_t n, o = 0;
	int ours;

	mura_model_config_default(&mc);
	if ((ours = mura_model_config_read(ck, &mc)) < 0)
		return -1;
	if (ours)
		model_differences(r->c, &mc, &opt);
	n = mura_ckpt_settings_diff(&r->settings, theirs, diff, MAX);
	for (size_t i = 0; i < n && i < MAX; i++)
		differ(diff[i].option ? &opt : &data, diff[i].theirs, diff[i].mine);
	if (!opt.n && !data.n)
		return 0;
	join(list[0], sizeof list[0], opt.was, opt.n);
	join(list[1], sizeof list[1], opt.now, opt.n);
	join(list[2], sizeof list[2], data.was, data.n);
	join(list[3], sizeof list[3], data.now, data.n);
	if (opt.n)
		o = (size_t)snprintf(msg, sizeof msg, "%s was made with %s, this run says %s (leave out the options "
		                     "the checkpoint records)", path, list[0], list[1]);
	if (data.n && o < sizeof msg)
		snprintf(msg + o, sizeof msg - o, "%s%s with %s, this run has %s (resume with the interrupted "
		         "run's training and validation files)", opt.n ? "; " : path, opt.n ? "made" : " was made",
		         list[2], list[3]);
	return mura_error("%s", msg);
}

/* ---- the run ---------------------------------------------------------------------- */

/* r->sched from c->sched: the base rate (a resumed run's from its
 * checkpoint), t_max and max_lr where not given, onecycle's steps; and
 * accumulation's limits.  Returns 0, or -1 with mura_error set. */
static int
resolve_sched(struct run *r)
{
	const struct mura_train_config *c = r->c;
	struct mura_sched *s = &r->sched;
	uint64_t n;
	long k = c->accumulate;

	*s = c->sched;
	s->lr = c->resume && r->st.base_lr > 0 ? r->st.base_lr : c->optim.lr;
	if (s->kind == MURA_SCHED_COSINE && s->t_max == 0)
		s->t_max = r->epochs;
	if (s->kind == MURA_SCHED_ONECYCLE && s->max_lr == 0)
		s->max_lr = c->optim.lr;
	if (k < 1)
		return mura_error("--accumulate %ld: at least 1", k);
	if (k > 1 && r->src.pipe)
		return mura_error("%s: --accumulate %ld needs a file: a step's images must be counted before "
		                  "its first batch, which a stream cannot", r->src.name, k);
	if (k > 1 && r->ranks > 1)
		return mura_error("--accumulate %ld under mpirun (%d processes) is not supported: give a larger "
		                  "--batch, which the processes share out (each process then holds its share "
		                  "of it only)", k, r->ranks);
	if (s->kind == MURA_SCHED_ONECYCLE) {
		if (r->src.pipe)
			return mura_error("%s: --schedule onecycle needs the run's steps, which a stream cannot "
			                  "count: give a file", r->src.name);
		if (c->lr_after_unfreeze >= 0)
			return mura_error("--lr-after-unfreeze with --schedule onecycle: the cycle sets the rate "
			                  "at every step");
		if (c->optim.kind == MURA_OPTIM_SGD && c->optim.momentum == 0)
			return mura_error("--schedule onecycle cycles SGD's momentum: the optimizer must be built "
			                  "with one (momentum %g, OneCycleLR's max_momentum)", MURA_SCHED_MAX_MOMENTUM);
		if (c->resume && r->st.sched_steps > 0)
			s->total_steps = r->st.sched_steps;
		else
			s->total_steps = (long)r->epochs * ((epoch_batches(r, &n) + k - 1) / k);
	}
	return mura_sched_check(s);
}

/* Everything before the first step: the options checked, the checkpoint
 * read when resuming, the data opened, the model made.  Returns 0, 1 when
 * a resumed run has nothing to do (and nothing was written), -1. */
static int
setup(struct run *r)
{
	const struct mura_train_config *c = r->c;
	struct mura_aug_spec spec;
	struct mura_ckpt_settings theirs;
	struct mura_st_file ck;
	int rc = -1, fell_back;

	memset(&ck, 0, sizeof ck);
	if (c->batch < 1 || c->epochs < (c->resume ? 0 : 1) || (!c->out && !r->finding) || !c->train)
		return mura_error("batch, epochs, out and train must be set");
	if (c->keep_top > MURA_CKPT_TOP_MAX)
		return mura_error("--keep-top %d: at most %d", c->keep_top, MURA_CKPT_TOP_MAX);
	r->batch = c->batch;
	r->epochs = c->epochs;
	r->d = c->dist;
	r->rank = mura_dist_rank(r->d);
	r->ranks = mura_dist_size(r->d);
	r->local = (r->batch + r->ranks - 1) / r->ranks;
	if ((r->threads = mura_threads_count(c->model.threads)) < 0 ||
	    (r->precision = mura_precision_resolve(c->model.precision, &fell_back)) < 0)
		return -1;
	r->ckpt_epoch = -1;
	utf8_text(r->command, sizeof r->command, c->command ? c->command : "");
	/* Only process 0 writes: the others need not see --out. */
	if (!r->finding && (mura_train_path(r->ckpt, sizeof r->ckpt, c->out, "ckpt") < 0 ||
	    (r->rank == 0 && (writable_dir(c->out, "--out") < 0 || (c->log && writable_dir(c->log, "--log") < 0) ||
	                      ckpt_in_the_way(r) < 0))))
		return -1;
	if (r->ranks > 1) {
		if (!strcmp(c->train, "-"))
			return mura_error("-: %d processes cannot share one standard input: give each the training "
			                  "records as a file", r->ranks);
		if (c->batch < r->ranks * (c->sync_bn ? 1 : 2))
			return mura_error("--batch %d: %d processes need at least %d images each%s (the batch "
			                  "is the global one, shared out)", c->batch, r->ranks, c->sync_bn ? 1 : 2,
			                  c->sync_bn ? "" : ", for their batch statistics");
		if (!(r->shares = calloc((size_t)r->ranks, sizeof *r->shares)))
			return mura_error("out of memory");
	}

	/* The state of a fresh run, or the checkpoint's. */
	r->st.epoch = 1;
	r->st.lr = c->optim.lr;
	r->st.best = c->monitor == MURA_MONITOR_VAL_AUC ? -INFINITY : INFINITY;
	r->st.plateau_best = r->st.best;
	if (c->resume && resume_open(r, &ck, &theirs) < 0)
		goto done;

	/* Augmentation. */
	if (!c->augment)
		mura_aug_spec_default(&spec);
	else if (mura_aug_spec_parse(&spec, c->augment) < 0) {
		mura_error_prefix("--augment");
		goto done;
	}
	mura_aug_init(&r->aug, &spec);
	mura_aug_spec_format(&spec, r->aug_text, sizeof r->aug_text);
	r->augment = strcmp(r->aug_text, "none") != 0;

	if (source_open(&r->src, c->train) < 0 || open_valid(r) < 0 || alloc_batch(r) < 0 ||
	    class_weights(r) < 0 || resolve_sched(r) < 0)
		goto done;
	make_settings(r);
	if (!c->resume) {
		r->st.lr = mura_sched_start(&r->sched);
		r->st.base_lr = r->sched.lr;
		r->st.sched_steps = r->sched.total_steps;
	}
	if (r->src.pipe)
		info(r, "%s: a stream is read once, in its order: one epoch, no shuffling", r->src.name);

	/* A resumed run: the checkpoint's in every respect, then perhaps one
	 * with nothing to do, decided before anything is made or written. */
	if (c->resume && (resume_check(r, &ck, &theirs) < 0 || (rc = resume_epochs(r, &theirs)) != 0))
		goto done;
	if (c->resume && r->st.threads && r->st.threads != r->threads)
		info(r, "%s was written with %d threads, this run has %d: the result will not equal "
		        "the uninterrupted run's bit for bit", c->resume, r->st.threads, r->threads);
	if (c->resume && (r->st.ranks ? r->st.ranks : 1) != r->ranks)
		info(r, "%s was written by %d process%s, this run has %d: the batches are the same, the rounding "
		        "%sis not", c->resume, r->st.ranks ? r->st.ranks : 1, r->st.ranks > 1 ? "es" : "", r->ranks,
		        c->sync_bn || r->ranks == 1 ? "" : "(and each process's batch statistics) ");
	const char *was = r->st.precision[0] ? r->st.precision : "fp32";  /* absent: an fp32 run */
	if (c->resume && strcmp(was, mura_precision_name(r->precision)))
		info(r, "%s was trained in %s, this run trains in %s", c->resume, was,
		     mura_precision_name(r->precision));
	snprintf(r->st.precision, sizeof r->st.precision, "%s", mura_precision_name(r->precision));
	r->st.threads = r->threads;
	r->st.ranks = r->ranks;
	r->st.sync_bn = c->sync_bn;
	r->st.epochs = r->epochs;
	rc = -1;
	if (r->rank == 0 && !r->finding && clean_temporaries(r) < 0)
		goto done;
	if (c->resume) {
		if (history_add(r, mura_st_meta(&ck, "train_history")) < 0 || make_model(r, &ck) < 0 ||
		    load_slots(r, &ck) < 0)
			goto done;
		r->ckpt_epoch = r->st.epoch - 1;
		if (strcmp(c->resume, r->ckpt) != 0)
			r->ckpt_epoch = -1;  /* ours is not written yet */
		info(r, "resuming %s at epoch %d, step %ld, learning rate %g", c->resume, r->st.epoch,
		     r->st.step, r->st.lr);
	} else if (make_model(r, NULL) < 0)
		goto done;
	rc = 0;
done:
	mura_st_free(&ck);
	return rc;
}

int
mura_train_run(const struct mura_train_config *c)
{
	struct run r;
	int rc = -1, planned = -1;

	memset(&r, 0, sizeof r);
	r.c = c;
	mura_record_init(&r.view);
	mura_record_init(&r.scratch);
	mura_scores_init(&r.vs);
	if ((rc = agree(&r, setup(&r))) != 0) {
		rc = rc > 0 ? MURA_TRAIN_DONE : -1;
		goto done;
	}
	rc = -1;
	if (join_job(&r) < 0)
		goto done;
	while (r.st.epoch <= r.epochs) {
		double vl = NAN, va = NAN, vk = NAN;
		int frozen, s, stop_early;

		if (stop_any(&r)) {
			rc = agree(&r, write_ckpt(&r, r.st.epoch - 1)) < 0 ? -1 : MURA_TRAIN_STOPPED;
			goto done;
		}
		frozen = c->freeze_backbone && !(c->unfreeze_at > 0 && r.st.epoch >= c->unfreeze_at);
		if (c->freeze_backbone && r.st.epoch == c->unfreeze_at && r.st.step == 0 && r.st.phase == 0) {
			if (c->lr_after_unfreeze >= 0)
				r.st.lr = c->lr_after_unfreeze;
			info(&r, "epoch %d: the backbone is unfrozen, learning rate %g", r.st.epoch, r.st.lr);
		}
		mura_model_freeze_backbone(r.m, frozen);
		if (r.d && frozen != planned) {
			if (plan_grads(&r) < 0)
				goto done;
			planned = frozen;
		}
		r.opt.cfg.lr = r.st.lr;

		if (r.st.phase == 0) {
			if ((s = train_epoch(&r)) < 0)
				goto done;
			if (s == 1) {
				rc = agree(&r, write_ckpt(&r, r.st.epoch - 1)) < 0 ? -1 : MURA_TRAIN_STOPPED;
				goto done;
			}
			r.st.phase = 1;
		}
		if (r.has_valid) {
			double t0 = now();
			s = validate(&r, &vl, &va, &vk);
			r.st.seconds += now() - t0;
			if (s < 0)
				goto done;
			if (s == 1) {
				rc = write_ckpt(&r, r.st.epoch - 1) < 0 ? -1 : MURA_TRAIN_STOPPED;
				goto done;
			}
		}
		if (agree(&r, end_epoch(&r, vl, va, vk, &stop_early)) < 0)
			goto done;
		if (stop_early)
			break;
	}
	rc = MURA_TRAIN_DONE;
done:
	if (rc == -1 && r.ranks > 1 && !r.agreed)
		rc = MURA_TRAIN_ABORT;
	run_free(&r);
	return rc;
}

/* ---- the learning-rate range test ----------------------------------------------- */

void
mura_lr_find_init(struct mura_lr_find *f)
{
	memset(f, 0, sizeof *f);
	f->start = 1e-7;
	f->end = 10;
	f->iters = 100;
	f->beta = 0.98;
	f->diverge = 4;
	f->suggested = -1;
}

void
mura_lr_find_free(struct mura_lr_find *f)
{
	free(f->lr);
	free(f->loss);
	free(f->smooth);
	f->lr = f->loss = f->smooth = NULL;
	f->n = 0;
}

/* fastai's "steep" suggestion: f->suggested. */
static void
steepest(struct mura_lr_find *f)
{
	int lo = f->iters / 10, hi = f->n - 5;  /* points [lo, hi) */
	double best = INFINITY;

	f->suggested = -1;
	for (int i = lo; i + 1 < hi; i++) {
		double g = (f->smooth[i + 1] - f->smooth[i]) / (log(f->lr[i + 1]) - log(f->lr[i]));
		if (g < best)
			best = g, f->suggested = i;
	}
}

int
mura_train_find_lr(const struct mura_train_config *c, struct mura_lr_find *f)
{
	struct run r;
	double avg = 0, best = INFINITY;
	uint64_t n = 0;
	long steps = 0;
	int rc = -1;

	memset(&r, 0, sizeof r);
	r.c = c;
	r.finding = 1;
	mura_record_init(&r.view);
	mura_record_init(&r.scratch);
	mura_scores_init(&r.vs);
	mura_lr_find_free(f);
	f->stopped = 0;
	f->suggested = -1;
	if (c->resume || (c->dist && mura_dist_size(c->dist) > 1)) {
		mura_error("--find-lr: from a fresh start or --weights, in one process (not --resume, not under mpirun)");
		goto done;
	}
	if (!strcmp(c->train, "-")) {
		mura_error("--find-lr: the training records must be a file (it reads them in epochs' orders)");
		goto done;
	}
	if (f->iters < 2 || !(f->start > 0 && f->end > f->start) || !(f->beta >= 0 && f->beta < 1)) {
		mura_error("--find-lr: %d steps from %g to %g, beta %g make no test", f->iters, f->start, f->end, f->beta);
		goto done;
	}
	if ((rc = setup(&r)) != 0) {
		rc = -1;
		goto done;
	}
	rc = -1;
	r.sched.kind = MURA_SCHED_PLATEAU;  /* the test sets every step's rate */
	r.sched.warmup = 0;
	if (!(f->lr = malloc((size_t)f->iters * sizeof *f->lr)) ||
	    !(f->loss = malloc((size_t)f->iters * sizeof *f->loss)) ||
	    !(f->smooth = malloc((size_t)f->iters * sizeof *f->smooth))) {
		mura_error("out of memory");
		goto done;
	}
	r.st.epoch = 0;
	mura_model_freeze_backbone(r.m, c->freeze_backbone);
	for (int it = 0; it < f->iters; it++) {
		double before, loss, sm;
		int nb = 0, total, s;
		uint64_t pos;
		if (it == 0 || r.st.step == steps) {  /* the next epoch's order */
			r.st.epoch++;
			r.st.step = 0;
			steps = epoch_batches(&r, &n);
			shuffle(&r);
		}
		pos = (uint64_t)r.st.step * (uint64_t)r.batch;
		total = (int)(n - pos < (uint64_t)r.batch ? n - pos : (uint64_t)r.batch);
		for (; nb < total; nb++)
			if (mura_file_get(&r.src.mf, r.order[pos + (uint64_t)nb], &r.view) < 0 ||
			    copy_record(&r.recs[nb], &r.view) < 0)
				goto done;
		r.st.lr = f->start * pow(f->end / f->start, (double)it / f->iters);
		before = r.st.loss_sum;
		if (make_batch(&r, nb) < 0 || (s = step(&r, nb, total, 1, 1)) < 0)
			goto done;
		r.st.step++;
		if (s == 2) {  /* not finite: diverged */
			f->stopped = 1;
			break;
		}
		loss = (r.st.loss_sum - before) / total;
		/* AvgSmoothLoss: torch.lerp(loss, val, beta), debiased */
		avg = loss + f->beta * (avg - loss);
		sm = avg / (1 - pow(f->beta, it + 1));
		f->lr[f->n] = r.st.lr, f->loss[f->n] = loss, f->smooth[f->n] = sm;
		f->n++;
		if (sm < best)
			best = sm;
		if (sm > f->diverge * best) {
			f->stopped = 1;
			break;
		}
		if (stop_asked(&r)) {
			mura_error("--find-lr: interrupted");
			goto done;
		}
	}
	steepest(f);
	rc = 0;
done:
	run_free(&r);
	return rc;
}
