/* mura-train - train a network on labelled image records (lib/train.h does the work). */
#define _GNU_SOURCE
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "augment.h"
#include "mura.h"
#include "dist.h"
#include "train.h"
#include "util.h"
#include "tool.h"

static volatile sig_atomic_t stop_signal;

static void
on_signal(int sig)
{
	stop_signal = sig;
}

enum {
	OPT_HEAD = 256, OPT_DROPOUT, OPT_FREEZE, OPT_UNFREEZE_AT, OPT_LR_AFTER, OPT_MEAN, OPT_STD,
	OPT_AUGMENT, OPT_OPTIMIZER, OPT_MOMENTUM, OPT_NESTEROV, OPT_BETAS, OPT_WD, OPT_LOSS, OPT_GAMMA,
	OPT_ALPHA, OPT_CW, OPT_BOOST, OPT_MONITOR, OPT_PF, OPT_PP, OPT_ES, OPT_TOP, OPT_LOG,
	OPT_STAGE, OPT_VIT_DIM, OPT_VIT_DEPTH, OPT_VIT_HEADS, OPT_VIT_MLP, OPT_FORCE, OPT_PROGRESS, OPT_SYNC_BN, OPT_BUCKET,
	OPT_SCHEDULE, OPT_STEP_SIZE, OPT_LR_GAMMA, OPT_T_MAX, OPT_MIN_LR, OPT_MAX_LR, OPT_PCT_START, OPT_WARMUP,
	OPT_WARMUP_FACTOR, OPT_SMOOTHING, OPT_ACCUMULATE, OPT_FIND_LR, OPT_PRECISION,
};

/* Every option, once: getopt's lists and the usage text come from here. */
static const struct tool_option option_table[] = {
	{0, NULL, NULL, "Model:"},
	{'a', "arch", "A", "densenet121 densenet169 densenet201 resnet18\n"
	                   "resnet34 resnet50 hybrid (densenet169, or --weights')"},
	{OPT_HEAD, "head", "fc|conv", "classifier head (fc; the hybrid's is its transformer)"},
	{OPT_DROPOUT, "dropout", "P", "dropout before the head's last layer, and in the\n"
	                              "hybrid's transformer blocks (0)"},
	{OPT_STAGE, "hybrid-stage", "3|4", "hybrid: the ResNet50 ends with layer3 or layer4 (4)"},
	{OPT_VIT_DIM, "vit-dim", "D", "hybrid: the transformer's width (256)"},
	{OPT_VIT_DEPTH, "vit-depth", "L", "hybrid: its number of blocks (4)"},
	{OPT_VIT_HEADS, "vit-heads", "H", "hybrid: attention heads, dividing D (8)"},
	{OPT_VIT_MLP, "vit-mlp", "R", "hybrid: the MLP's width is R D (4)"},
	{'w', "weights", "FILE", "start from an ImageNet import or a model"},
	{OPT_FREEZE, "freeze-backbone", NULL, "train the head only"},
	{OPT_UNFREEZE_AT, "unfreeze-at", "E", "unfreeze the backbone at the start of epoch E"},
	{OPT_LR_AFTER, "lr-after-unfreeze", "X", "learning rate from that epoch on"},
	{OPT_MEAN, "mean", "M,M,M", "normalisation of u8 and u16 records (ImageNet's,"},
	{OPT_STD, "std", "S,S,S", "or what --weights records)"},
	{0, NULL, NULL, "Data:"},
	{'v', "valid", "FILE", "validation records, evaluated after every epoch"},
	{OPT_AUGMENT, "augment", "SPEC", "as mura-augment(1) takes it, or none (default:\n"
	                                 "flips, rotations up to 30 degrees, zoom, contrast)"},
	{0, NULL, NULL, "Optimisation:"},
	{OPT_OPTIMIZER, "optimizer", "O", "sgd, adam or adamw (adam)"},
	{'l', "lr", "X", "learning rate (0.0001)"},
	{OPT_MOMENTUM, "momentum", "X", "SGD momentum (0)"},
	{OPT_NESTEROV, "nesterov", NULL, "SGD: Nesterov momentum"},
	{OPT_BETAS, "betas", "B1,B2", "Adam and AdamW betas (0.9,0.999)"},
	{OPT_WD, "weight-decay", "X", "L2, decoupled for adamw (0; adamw 0.01)"},
	{'b', "batch", "N", "images per batch (8)"},
	{OPT_ACCUMULATE, "accumulate", "K", "sum the gradients of K batches, then step (1)"},
	{'e', "epochs", "N", "epochs (10; 1 for a stream; resuming: the\n"
	                     "checkpoint's, more to extend the run)"},
	{OPT_LOSS, "loss", "bce|focal", "loss (bce)"},
	{OPT_SMOOTHING, "label-smoothing", "E", "targets y (1 - E) + E/2 (0)"},
	{OPT_GAMMA, "gamma", "G", "focal loss exponent (2)"},
	{OPT_ALPHA, "alpha", "A", "focal loss weight of abnormal images (none)"},
	{OPT_CW, "class-weights", "W", "none, global or per-type (per-type)"},
	{OPT_BOOST, "boost", "B", "factor on the abnormal weight (1)"},
	{'s', "seed", "S", "initialisation, order, augmentation (1)"},
	{'j', "threads", "N", "threads (MURA_THREADS, else every core this\n"
	                      "process may use)"},
	{OPT_PRECISION, "precision", "P", "fp32, bf16 (mixed, AVX512-BF16 CPUs) or auto\n"
	                                  "(bf16 where the CPU has it; fp32)"},
	{0, NULL, NULL, "Learning-rate schedule (PyTorch's; see mura-train(1)):"},
	{OPT_SCHEDULE, "schedule", "S", "plateau, cosine, step, exponential or onecycle\n"
	                                "(plateau: the callbacks' ReduceLROnPlateau)"},
	{OPT_STEP_SIZE, "step-size", "N", "step: multiply the rate by --lr-gamma every N\nepochs"},
	{OPT_LR_GAMMA, "lr-gamma", "G", "step, exponential: the factor (step: 0.1)"},
	{OPT_T_MAX, "t-max", "N", "cosine: epochs down to --min-lr (--epochs)"},
	{OPT_MIN_LR, "min-lr", "X", "cosine: the lowest rate (0)"},
	{OPT_MAX_LR, "max-lr", "X", "onecycle: the peak rate (--lr)"},
	{OPT_PCT_START, "pct-start", "P", "onecycle: the share of steps rising (0.3)"},
	{OPT_WARMUP, "warmup", "N", "linear warm-up over the first N steps (0)"},
	{OPT_WARMUP_FACTOR, "warmup-factor", "F", "the warm-up's first rate is F times --lr (0.01)"},
	{0, NULL, NULL, "Several processes (under mpirun; see mura-train(1)):"},
	{OPT_SYNC_BN, "sync-bn", NULL, "batch statistics over the global batch\n"
	                               "(SyncBatchNorm; default: each process's share)"},
	{OPT_BUCKET, "bucket-mb", "MB", "gradients summed in buckets of MB MiB (25)"},
	{0, NULL, NULL, "Callbacks (with --valid):"},
	{OPT_MONITOR, "monitor", "M", "val_loss or val_auc: best model, plateau, early\nstopping (val_loss)"},
	{OPT_PF, "plateau-factor", "F", "on a plateau, multiply the rate by F; 1: never (0.1)"},
	{OPT_PP, "plateau-patience", "N", "epochs without improvement tolerated (1)"},
	{OPT_ES, "early-stop", "N", "stop after N epochs without improvement (0: never)"},
	{OPT_TOP, "keep-top", "K", "keep the K models of lowest val_loss (0)"},
	{0, NULL, NULL, "Files:"},
	{'o', "out", "MODEL", "the model after the last epoch; MODEL.best,\n"
	                      ".topN and .ckpt beside it (see mura-train(1))"},
	{OPT_LOG, "log", "FILE", "one TSV row per epoch"},
	{OPT_PROGRESS, "progress", NULL, "progress always: the bar on a terminal, else a\n"
	                                 "line every 30 s (default: the bar on a terminal,\n"
	                                 "else a line per epoch)"},
	{'r', "resume", "CKPT", "continue a run from its checkpoint, with its\n"
	                        "options (those given must agree)"},
	{OPT_FIND_LR, "find-lr", "NAME", "the learning-rate range test instead of a run:\n"
	                                  "NAME.tsv, NAME.png, the suggested rate on stdout"},
	{OPT_FORCE, "force", NULL, "start over though MODEL.ckpt exists (a run\n"
	                           "stopped or done; refused without)"},
	{'h', "help", NULL, "show this help"},
	{'V', "version", NULL, "show the version"},
	{0, NULL, NULL, NULL},
};

static void
usage(FILE *f)
{
	fprintf(f,
	        "usage: %s [options] --out MODEL.safetensors TRAIN.mt\n"
	        "       %s --resume CKPT [--valid VALID.mt] [--epochs N] --out MODEL.safetensors TRAIN.mt\n"
	        "       %s --find-lr NAME [options] TRAIN.mt\n"
	        "Train a network on labelled image records (TRAIN '-': stdin, one epoch).\n",
	        argv0, argv0, argv0);
	tool_usage_options(f, option_table);
}

/* What the command line says, before it becomes a mura_train_config. */
struct options {
	struct mura_train_config c;
	int optimizer;
	double lr, momentum, beta[2], wd;
	int nesterov;
	int progress;    /* --progress */
	const char *find_lr;  /* --find-lr NAME */
	int given[512];  /* by option code */
	struct mura_ckpt_settings ckpt;  /* resuming: its settings, where c.augment points */
};

/* The progress display: a bar on a terminal, one line per epoch otherwise;
 * with --progress and no terminal, also a plain line every `every`
 * seconds (MURA_TRAIN_PROGRESS_SECONDS, 30 by default). */
struct progress {
	int tty;
	int lines;           /* --progress without a terminal: plain lines */
	double every;
	int bar;             /* a bar is on the line now */
	double last;         /* when it was drawn, or the last plain line written */
	int epoch;           /* the epoch of the last step seen */
	long steps;          /* steps taken by this process */
	long stop_after;     /* MURA_TRAIN_STOP_AFTER_STEPS, 0: none */
	int told;            /* the interruption was announced */
};

static double
now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

static void
clear_bar(struct progress *p)
{
	if (p->bar) {
		fputs("\r\033[K", stderr);
		p->bar = 0;
	}
}

static const char *
num(char *buf, size_t len, const char *fmt, double v)
{
	if (isnan(v))
		snprintf(buf, len, "n/a");
	else
		snprintf(buf, len, fmt, v);
	return buf;
}

/* The time left as "M:SS left" or "H:MM:SS left", "?" if unknown. */
static const char *
eta_text(char *buf, size_t len, double eta)
{
	int s = (int)eta;

	if (eta < 0)
		snprintf(buf, len, "?");
	else if (s >= 3600)
		snprintf(buf, len, "%d:%02d:%02d left", s / 3600, s / 60 % 60, s % 60);
	else
		snprintf(buf, len, "%d:%02d left", s / 60, s % 60);
	return buf;
}

static void
report(void *arg, const struct mura_train_report *r)
{
	struct progress *p = arg;
	char b[8][32];

	switch (r->event) {
	case MURA_TRAIN_INFO:
		clear_bar(p);
		warn("%s", r->msg);
		break;
	case MURA_TRAIN_STEP:
		p->steps++;
		if (p->stop_after > 0 && p->steps == p->stop_after)
			raise(SIGTERM);
		if (stop_signal && !p->told) {
			clear_bar(p);
			warn("%s: finishing the step, then writing a checkpoint (again to quit without one)",
			     stop_signal == SIGINT ? "interrupt" : "terminated");
			p->told = 1;
		}
		if (r->epoch != p->epoch) {  /* the interval of plain lines starts with the epoch */
			p->epoch = r->epoch;
			if (p->lines)
				p->last = now();
		}
		if (r->steps > 0)
			snprintf(b[1], sizeof b[1], "%ld/%ld", r->step, r->steps);
		else
			snprintf(b[1], sizeof b[1], "%ld", r->step);
		if (p->tty && (now() - p->last > 0.2 || r->step == r->steps)) {
			int width = 20, fill = r->steps > 0 ? (int)(width * r->step / r->steps) : 0;
			char bar[32];
			memset(bar, '#', (size_t)fill);
			memset(bar + fill, '.', (size_t)(width - fill));
			bar[width] = 0;
			fprintf(stderr, "\r\033[Kepoch %d/%d [%s] %s lr %g loss %s acc %s %s img/s %s", r->epoch, r->epochs,
			        bar, b[1], r->lr, num(b[2], sizeof b[2], "%.4f", r->loss), num(b[3], sizeof b[3], "%.3f", r->acc),
			        num(b[4], sizeof b[4], "%.1f", r->images_per_s), eta_text(b[0], sizeof b[0], r->eta));
			p->bar = 1;
			p->last = now();
		} else if (p->lines && now() - p->last >= p->every) {
			fprintf(stderr, "epoch %d/%d: step %s, lr %g, loss %s, acc %s, %s img/s, %s\n", r->epoch, r->epochs,
			        b[1], r->lr, num(b[2], sizeof b[2], "%.4f", r->loss), num(b[3], sizeof b[3], "%.3f", r->acc),
			        num(b[4], sizeof b[4], "%.1f", r->images_per_s), eta_text(b[0], sizeof b[0], r->eta));
			p->last = now();
		}
		break;
	case MURA_TRAIN_VALIDATING:
		if (p->tty) {
			fprintf(stderr, "\r\033[Kepoch %d/%d validating", r->epoch, r->epochs);
			p->bar = 1;
		} else if (p->lines)
			fprintf(stderr, "epoch %d/%d: validating\n", r->epoch, r->epochs);
		break;
	case MURA_TRAIN_EPOCH:
		clear_bar(p);
		fprintf(stderr, "epoch %d/%d: lr %g, loss %s, acc %s, val_loss %s, val_auc %s, val_kappa %s, "
		                "%.1f s, %s img/s%s%s\n",
		        r->epoch, r->epochs, r->lr, num(b[0], sizeof b[0], "%.4f", r->loss),
		        num(b[1], sizeof b[1], "%.3f", r->acc), num(b[2], sizeof b[2], "%.4f", r->val_loss),
		        num(b[3], sizeof b[3], "%.4f", r->val_auc), num(b[4], sizeof b[4], "%.4f", r->val_kappa),
		        r->seconds, num(b[5], sizeof b[5], "%.1f", r->images_per_s), r->best ? " (best)" : "",
		        r->lr_reduced ? " (lr reduced)" : "");
		break;
	}
	fflush(stderr);
}

/* The command line, quoted for a shell, for the models' metadata. */
static void
command_line(char *buf, size_t len, int argc, char **argv)
{
	size_t o = 0;

	buf[0] = 0;
	for (int i = 0; i < argc && o + 4 < len; i++) {
		const char *a = i ? argv[i] : argv0;
		int plain = *a && strspn(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
		                            "-_./,=:@+%") == strlen(a);
		if (i)
			buf[o++] = ' ';
		if (!plain)
			buf[o++] = '\'';
		for (; *a && o + 5 < len; a++) {
			if (*a == '\'' && !plain) {
				memcpy(buf + o, "'\\''", 4);
				o += 4;
			} else
				buf[o++] = *a;
		}
		if (!plain)
			buf[o++] = '\'';
		buf[o] = 0;
	}
}

static double
parse_num(const char *opt, const char *s, double lo, double hi)
{
	double v;
	if (mura_parse_double(s, lo, hi, &v) < 0)
		die_usage("%s: %s", opt, mura_error_get());
	return v;
}

static int
parse_int(const char *opt, const char *s, long lo, long hi)
{
	long v;
	if (mura_parse_long(s, lo, hi, &v) < 0)
		die_usage("%s: %s", opt, mura_error_get());
	return (int)v;
}

static void
parse_options(int argc, char **argv, struct options *o)
{
	struct mura_train_config *c = &o->c;
	struct mura_aug_spec spec;
	double d[3];
	long v;
	int ch;

	while ((ch = tool_getopt(argc, argv, option_table)) != -1) {
		if (ch > 0 && ch < 512)
			o->given[ch] = 1;
		switch (ch) {
		case 'a':
			if ((c->model.arch = mura_arch_parse(optarg)) < 0)
				die_usage("--arch: %s", mura_error_get());
			break;
		case OPT_HEAD:
			if ((c->model.head = mura_head_parse(optarg)) < 0)
				die_usage("--head: %s", mura_error_get());
			break;
		case OPT_DROPOUT:
			c->model.dropout = (float)parse_num("--dropout", optarg, 0, 0.99);
			break;
		case OPT_STAGE:
			c->model.hybrid_stage = parse_int("--hybrid-stage", optarg, 3, 4);
			break;
		case OPT_VIT_DIM:
			c->model.vit_dim = parse_int("--vit-dim", optarg, 1, 65536);
			break;
		case OPT_VIT_DEPTH:
			c->model.vit_depth = parse_int("--vit-depth", optarg, 1, 1000);
			break;
		case OPT_VIT_HEADS:
			c->model.vit_heads = parse_int("--vit-heads", optarg, 1, 65536);
			break;
		case OPT_VIT_MLP:
			c->model.vit_mlp = parse_int("--vit-mlp", optarg, 1, 64);
			break;
		case 'w':
			c->weights = optarg;
			break;
		case OPT_FREEZE:
			c->freeze_backbone = 1;
			break;
		case OPT_UNFREEZE_AT:
			c->unfreeze_at = parse_int("--unfreeze-at", optarg, 1, INT_MAX);
			break;
		case OPT_LR_AFTER:
			c->lr_after_unfreeze = parse_num("--lr-after-unfreeze", optarg, 0, 1e300);
			break;
		case OPT_MEAN:
		case OPT_STD:
			if (mura_parse_doubles(optarg, 3, d) < 0)
				die_usage("%s: %s", ch == OPT_MEAN ? "--mean" : "--std", mura_error_get());
			for (int i = 0; i < 3; i++) {
				if (ch == OPT_STD && !(d[i] > 0))
					die_usage("--std: %g is not positive", d[i]);
				(ch == OPT_MEAN ? c->model.mean : c->model.std)[i] = (float)d[i];
			}
			c->norm_given = 1;
			break;
		case 'v':
			c->valid = optarg;
			break;
		case OPT_AUGMENT:
			if (mura_aug_spec_parse(&spec, optarg) < 0)
				die_usage("--augment: %s", mura_error_get());
			c->augment = optarg;
			break;
		case OPT_OPTIMIZER:
			if ((o->optimizer = mura_optim_kind_parse(optarg)) < 0)
				die_usage("--optimizer: %s", mura_error_get());
			break;
		case 'l':
			o->lr = parse_num("--lr", optarg, 0, 1e300);
			break;
		case OPT_MOMENTUM:
			o->momentum = parse_num("--momentum", optarg, 0, 1);
			break;
		case OPT_NESTEROV:
			o->nesterov = 1;
			break;
		case OPT_BETAS:
			if (mura_parse_doubles(optarg, 2, o->beta) < 0)
				die_usage("--betas: %s", mura_error_get());
			break;
		case OPT_WD:
			o->wd = parse_num("--weight-decay", optarg, 0, 1e6);
			break;
		case 'b':
			c->batch = parse_int("--batch", optarg, 1, 65536);
			break;
		case 'e':
			c->epochs = parse_int("--epochs", optarg, 1, 1000000);
			break;
		case OPT_ACCUMULATE:
			c->accumulate = parse_int("--accumulate", optarg, 1, 65536);
			break;
		case OPT_SMOOTHING:
			c->loss.smoothing = parse_num("--label-smoothing", optarg, 0, 1);
			break;
		case OPT_SCHEDULE:
			if ((c->sched.kind = mura_sched_kind_parse(optarg)) < 0)
				die_usage("--schedule: %s", mura_error_get());
			break;
		case OPT_STEP_SIZE:
			c->sched.step_size = parse_int("--step-size", optarg, 1, INT_MAX);
			break;
		case OPT_LR_GAMMA:
			c->sched.gamma = parse_num("--lr-gamma", optarg, 1e-300, 1e300);
			break;
		case OPT_T_MAX:
			c->sched.t_max = parse_int("--t-max", optarg, 1, INT_MAX);
			break;
		case OPT_MIN_LR:
			c->sched.min_lr = parse_num("--min-lr", optarg, 0, 1e300);
			break;
		case OPT_MAX_LR:
			c->sched.max_lr = parse_num("--max-lr", optarg, 1e-300, 1e300);
			break;
		case OPT_PCT_START:
			c->sched.pct_start = parse_num("--pct-start", optarg, 0, 1);
			break;
		case OPT_WARMUP:
			c->sched.warmup = parse_int("--warmup", optarg, 0, INT_MAX);
			break;
		case OPT_WARMUP_FACTOR:
			c->sched.warmup_factor = parse_num("--warmup-factor", optarg, 1e-300, 1);
			break;
		case OPT_LOSS:
			if ((c->loss.kind = mura_loss_kind_parse(optarg)) < 0)
				die_usage("--loss: %s", mura_error_get());
			break;
		case OPT_GAMMA:
			c->loss.gamma = (float)parse_num("--gamma", optarg, 0, 100);
			break;
		case OPT_ALPHA:
			c->loss.alpha = (float)parse_num("--alpha", optarg, 0, 1);
			break;
		case OPT_CW:
			if ((c->weights_mode = mura_weights_mode_parse(optarg)) < 0)
				die_usage("--class-weights: %s", mura_error_get());
			break;
		case OPT_BOOST:
			c->boost = parse_num("--boost", optarg, 1e-6, 1e6);
			break;
		case 's':
			if (mura_parse_long(optarg, 0, LONG_MAX, &v) < 0)
				die_usage("--seed: %s", mura_error_get());
			c->seed = (uint64_t)v;
			break;
		case 'j':
			c->model.threads = parse_int("--threads", optarg, 1, 1024);
			break;
		case OPT_PRECISION:
			if ((c->model.precision = mura_precision_parse(optarg)) < 0)
				die_usage("--precision: %s", mura_error_get());
			break;
		case OPT_SYNC_BN:
			c->sync_bn = 1;
			break;
		case OPT_BUCKET:
			c->bucket_mb = parse_num("--bucket-mb", optarg, 0.001, 4096);
			break;
		case OPT_MONITOR:
			if ((c->monitor = mura_monitor_parse(optarg)) < 0)
				die_usage("--monitor: %s", mura_error_get());
			break;
		case OPT_PF:
			c->plateau_factor = parse_num("--plateau-factor", optarg, 0, 1);
			if (c->plateau_factor <= 0)
				die_usage("--plateau-factor: 0 would stop learning; 1 turns the reduction off");
			break;
		case OPT_PP:
			c->plateau_patience = parse_int("--plateau-patience", optarg, 0, INT_MAX);
			break;
		case OPT_ES:
			c->early_stop = parse_int("--early-stop", optarg, 0, INT_MAX);
			break;
		case OPT_TOP:
			c->keep_top = parse_int("--keep-top", optarg, 0, 100);
			break;
		case 'o':
			c->out = optarg;
			break;
		case OPT_LOG:
			c->log = optarg;
			break;
		case 'r':
			c->resume = optarg;
			break;
		case OPT_FORCE:
			c->force = 1;
			break;
		case OPT_PROGRESS:
			o->progress = 1;
			break;
		case OPT_FIND_LR:
			o->find_lr = optarg;
			break;
		TOOL_COMMON_OPTIONS;
		}
	}
}

/* The schedule's options: each with the kinds that use it. */
static void
check_schedule(const struct options *o)
{
	static const struct {
		int code;
		const char *name;
		unsigned kinds;  /* bits 1 << enum mura_sched_kind */
	} use[] = {
		{OPT_STEP_SIZE, "--step-size", 1u << MURA_SCHED_STEP},
		{OPT_LR_GAMMA, "--lr-gamma", 1u << MURA_SCHED_STEP | 1u << MURA_SCHED_EXPONENTIAL},
		{OPT_T_MAX, "--t-max", 1u << MURA_SCHED_COSINE},
		{OPT_MIN_LR, "--min-lr", 1u << MURA_SCHED_COSINE},
		{OPT_MAX_LR, "--max-lr", 1u << MURA_SCHED_ONECYCLE},
		{OPT_PCT_START, "--pct-start", 1u << MURA_SCHED_ONECYCLE},
		{OPT_PF, "--plateau-factor", 1u << MURA_SCHED_PLATEAU},
		{OPT_PP, "--plateau-patience", 1u << MURA_SCHED_PLATEAU},
	};
	const struct mura_train_config *c = &o->c;
	int kind = c->sched.kind;

	for (size_t i = 0; i < sizeof use / sizeof use[0]; i++)
		if (o->given[use[i].code] && !(use[i].kinds & 1u << kind))
			die_usage("%s is not for --schedule %s", use[i].name, mura_sched_kind_name(kind));
	if (kind == MURA_SCHED_STEP && c->sched.step_size < 1)
		die_usage("--schedule step needs --step-size N");
	if (kind == MURA_SCHED_EXPONENTIAL && !o->given[OPT_LR_GAMMA] && !c->resume)
		die_usage("--schedule exponential needs --lr-gamma G (ExponentialLR has no default)");
	if (o->given[OPT_WARMUP_FACTOR] && c->sched.warmup == 0)
		die_usage("--warmup-factor needs --warmup N");
	if (kind == MURA_SCHED_ONECYCLE && c->sched.warmup > 0)
		die_usage("--warmup is not for --schedule onecycle, which warms up by itself (--pct-start)");
	if (kind == MURA_SCHED_ONECYCLE && o->given[OPT_LR_AFTER])
		die_usage("--lr-after-unfreeze is not for --schedule onecycle, which sets the rate at every step");
}

/* The options that only make sense together, and the optimizer. */
static void
check(struct options *o, int argc, char **argv)
{
	struct mura_train_config *c = &o->c;
	const int *g = o->given;
	struct mura_optim probe;

	if (o->find_lr) {
		static const int no[] = {'o', 'r', OPT_LOG, 'v', OPT_FORCE, OPT_ACCUMULATE, OPT_SCHEDULE, OPT_WARMUP};
		static const char *const names[] = {"--out", "--resume", "--log", "--valid", "--force",
		                                    "--accumulate", "--schedule", "--warmup"};
		for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
			if (g[no[i]])
				die_usage("--find-lr writes no model and sets every step's rate: not with %s", names[i]);
	} else if (!c->out)
		die_usage("--out MODEL.safetensors is required");
	if (optind >= argc)
		die_usage("no training file (give TRAIN.mt, or '-' for stdin)");
	if (optind + 1 < argc)
		die_usage("unexpected argument '%s'", argv[optind + 1]);
	c->train = argv[optind];
	if (!strcmp(c->train, "-")) {
		if (g['e'] && c->epochs > 1)
			die_usage("a stream ('-') is read once: one epoch, not %d (give a file for more)", c->epochs);
		c->epochs = 1;
		if (c->weights_mode != MURA_WEIGHTS_NONE)
			die_usage("--class-weights %s needs the counts of the whole training set, which a stream "
			          "read once cannot give: give a file, or --class-weights none",
			          mura_weights_mode_name(c->weights_mode));
	}
	if (c->weights && c->resume)
		die_usage("--weights and --resume exclude each other (a checkpoint holds the weights)");
	if (c->unfreeze_at && !c->freeze_backbone)
		die_usage("--unfreeze-at needs --freeze-backbone");
	if (g[OPT_LR_AFTER] && !c->unfreeze_at)
		die_usage("--lr-after-unfreeze needs --unfreeze-at");
	if ((g[OPT_GAMMA] || g[OPT_ALPHA]) && c->loss.kind != MURA_LOSS_FOCAL)
		die_usage("--gamma and --alpha are for --loss focal (the schedule's factor is --lr-gamma)");
	check_schedule(o);
	if (!c->valid) {
		static const struct {
			int code;
			const char *name;
		} need[] = {{OPT_MONITOR, "--monitor"}, {OPT_PF, "--plateau-factor"}, {OPT_PP, "--plateau-patience"},
		            {OPT_ES, "--early-stop"}, {OPT_TOP, "--keep-top"}};
		for (size_t i = 0; i < sizeof need / sizeof need[0]; i++)
			if (g[need[i].code])
				die_usage("%s needs --valid", need[i].name);
	}

	/* The optimizer: the kind's defaults (resuming: the checkpoint's
	 * settings, and another kind is refused), then what was given. */
	if (!c->resume)
		mura_optim_config_default(&c->optim, o->optimizer);
	c->optim.kind = o->optimizer;
	c->optim.lr = g['l'] ? o->lr : 1e-4;
	if (g[OPT_MOMENTUM] || g[OPT_NESTEROV]) {
		if (o->optimizer != MURA_OPTIM_SGD)
			die_usage("--momentum and --nesterov are for --optimizer sgd");
		c->optim.momentum = o->momentum;
		c->optim.nesterov = o->nesterov;
	}
	if (g[OPT_BETAS]) {
		if (o->optimizer == MURA_OPTIM_SGD)
			die_usage("--betas are for --optimizer adam and adamw");
		c->optim.beta1 = o->beta[0];
		c->optim.beta2 = o->beta[1];
	}
	if (g[OPT_WD])
		c->optim.weight_decay = o->wd;
	/* OneCycleLR's cycle_momentum: the momentum (SGD) or beta1 (Adam)
	 * starts at its max_momentum, whatever was given */
	if (c->sched.kind == MURA_SCHED_ONECYCLE) {
		if (o->optimizer == MURA_OPTIM_SGD)
			c->optim.momentum = MURA_SCHED_MAX_MOMENTUM;
		else
			c->optim.beta1 = MURA_SCHED_MAX_MOMENTUM;
	}
	if (mura_optim_init(&probe, &c->optim, NULL, 0) < 0)
		die_usage("--optimizer %s: %s", mura_optim_kind_name(o->optimizer), mura_error_get());
	mura_optim_free(&probe);
}

/* Resuming: the checkpoint's settings are where the options start from,
 * and those given go over them (the library refuses those that differ,
 * naming them all). */
static void
resume_options(struct options *o, int argc, char **argv)
{
	const char *ckpt = o->c.resume;

	memset(o, 0, sizeof *o);
	mura_train_config_default(&o->c);
	if (mura_train_config_from_ckpt(&o->c, &o->ckpt, ckpt) < 0)
		die_lib();
	o->optimizer = o->c.optim.kind;
	o->momentum = o->c.optim.momentum;
	o->nesterov = o->c.optim.nesterov;
	o->beta[0] = o->c.optim.beta1, o->beta[1] = o->c.optim.beta2;
	o->wd = o->c.optim.weight_decay;
	optind = 0;  /* glibc: parse again from the start */
	parse_options(argc, argv, o);
}

/* The range test's curve: NAME.tsv, and NAME.png drawn by gnuplot from
 * inline data (no path reaches its script), each written to a temporary
 * name and renamed. */
static void
find_lr_files(const char *name, const struct mura_lr_find *f)
{
	char path[4200], dir[4200], tmp[64], tmpath[8400];
	struct mura_out o;
	const char *slash = strrchr(name, '/');
	double sug = f->suggested >= 0 ? f->lr[f->suggested] : NAN;
	FILE *gp;
	pid_t pid;
	int st;

	if ((size_t)snprintf(path, sizeof path, "%s.tsv", name) >= sizeof path)
		die("%s: name too long", name);
	if (mura_out_open(&o, path) < 0)
		die_lib();
	fprintf(o.f, "step\tlr\tloss\tsmoothed_loss\n");
	for (int i = 0; i < f->n; i++)
		fprintf(o.f, "%d\t%.17g\t%.9g\t%.9g\n", i + 1, f->lr[i], f->loss[i], f->smooth[i]);
	if (mura_out_commit(&o) < 0)
		die_lib();
	snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - name ? slash - name : 1) : 1, slash ? name : ".");
	snprintf(tmp, sizeof tmp, "lr-find.png.tmp.%ld", (long)getpid());
	snprintf(tmpath, sizeof tmpath, "%s/%s", dir, tmp);
	snprintf(path, sizeof path, "%s.png", name);
	gp = gnuplot_open(dir, &pid);
	fprintf(gp, "if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {\n"
	            "  set terminal pngcairo size 800,560\n"
	            "} else {\n"
	            "  set terminal png size 800,560\n"
	            "}\n"
	            "set output '%s'\n"
	            "set title \"learning-rate range test: %d steps, suggested rate %g\"\n"
	            "set xlabel 'learning rate'\nset ylabel 'training loss'\nset logscale x\nset grid\n"
	            "set format x '%%.0e'\nset key top left\n", tmp, f->n, sug);
	if (!isnan(sug))
		fprintf(gp, "set arrow from %.17g, graph 0 to %.17g, graph 1 nohead dt 2 lc rgb 'red'\n", sug, sug);
	/* up to 1.5 times the smoothed loss's highest: a last step's raw loss
	 * may be far above and flatten the curve */
	double top = 0;
	for (int i = 0; i < f->n; i++)
		top = f->smooth[i] > top ? f->smooth[i] : top;
	if (top > 0 && isfinite(top))
		fprintf(gp, "set yrange [0:%.9g]\n", 1.5 * top);
	fprintf(gp, "plot '-' using 1:2 with lines lc rgb 'gray' title 'loss', "
	            "'-' using 1:2 with lines lw 2 lc rgb 'blue' title 'smoothed'\n");
	for (int k = 0; k < 2; k++) {
		for (int i = 0; i < f->n; i++)
			fprintf(gp, "%.17g %.9g\n", f->lr[i], k ? f->smooth[i] : f->loss[i]);
		fprintf(gp, "e\n");
	}
	st = gnuplot_close(gp, pid);
	if (st != 0) {
		unlink(tmpath);
		die("%s: gnuplot %s", path, st == 127 ? "not found (install gnuplot-nox)" : "failed");
	}
	if (rename(tmpath, path) < 0) {
		unlink(tmpath);
		die("%s: %s", path, strerror(errno));
	}
}

static int
find_lr(struct options *o, struct progress *p)
{
	struct mura_lr_find f;

	mura_lr_find_init(&f);
	o->c.report = report;
	o->c.report_arg = p;
	if (mura_train_find_lr(&o->c, &f) < 0)
		die_lib();
	clear_bar(p);
	find_lr_files(o->find_lr, &f);
	if (f.suggested < 0)
		die("--find-lr: %d points before the loss diverged, too few for a suggestion (fastai's: past the "
		    "first %d and before the last 5); the curve is in %s.tsv", f.n, f.iters / 10, o->find_lr);
	warn("--find-lr: %d steps from %g to %g%s; suggested learning rate %g (the steepest descent of the "
	     "smoothed loss); the curve in %s.tsv and %s.png", f.n, f.lr[0], f.lr[f.n - 1],
	     f.stopped ? " (then the loss diverged)" : "", f.lr[f.suggested], o->find_lr, o->find_lr);
	printf("%g\n", f.lr[f.suggested]);
	mura_lr_find_free(&f);
	if (fclose(stdout) != 0)
		die("stdout: %s", strerror(errno));
	return 0;
}

/* A message of process rank of a job of several: which process says it. */
static void
die_rank(struct mura_dist *d, int abort_job)
{
	const char *msg = mura_error_get();

	/* The processes that did not fail first have nothing to say. */
	if (mura_error_pending() || mura_dist_size(d) == 1) {
		if (mura_dist_size(d) > 1)
			fprintf(stderr, "%s: process %d of %d (%s): %s\n", argv0, mura_dist_rank(d), mura_dist_size(d),
			        mura_dist_where(d), msg);
		else
			fprintf(stderr, "%s: %s\n", argv0, msg);
	}
	if (abort_job)
		mura_dist_abort(d, 1);
	mura_dist_end(d);
	exit(1);
}

int
main(int argc, char **argv)
{
	static struct options o;
	struct progress p = {0};
	struct sigaction sa;
	struct mura_dist *d;
	char cmd[8192];
	const char *e;
	int rc, fell_back;

	set_argv0(argv[0]);
	mura_train_config_default(&o.c);
	o.optimizer = MURA_OPTIM_ADAM;
	parse_options(argc, argv, &o);
	if (o.c.resume)
		resume_options(&o, argc, argv);
	check(&o, argc, argv);
	if (o.c.resume && !o.given[OPT_PRECISION] && o.c.model.precision == MURA_PRECISION_BF16 &&
	    mura_precision_resolve(MURA_PRECISION_BF16, &fell_back) < 0)
		die("%s was trained in bf16 and this CPU has no AVX512-BF16: resume it with --precision fp32",
		    o.c.resume);
	precision_resolve(&o.c.model.precision);
	command_line(cmd, sizeof cmd, argc, argv);
	o.c.command = cmd;

	p.tty = isatty(2);
	p.lines = o.progress && !p.tty;
	p.every = 30;
	if ((e = getenv("MURA_TRAIN_PROGRESS_SECONDS")) && *e && mura_parse_double(e, 0, 1e9, &p.every) < 0)
		die_usage("MURA_TRAIN_PROGRESS_SECONDS: %s", mura_error_get());
	if ((e = getenv("MURA_TRAIN_STOP_AFTER_STEPS")) && *e) {
		long v;
		if (mura_parse_long(e, 1, LONG_MAX, &v) < 0)
			die_usage("MURA_TRAIN_STOP_AFTER_STEPS: %s", mura_error_get());
		p.stop_after = v;
	}
	/* One process of a job under mpirun, or alone (lib/dist.h). */
	if (mura_dist_init(&d, &argc, &argv) < 0)
		die_lib();
	if (o.find_lr) {  /* one process: under mpirun, each would run a test of its own */
		int n = mura_dist_size(d);
		if (n > 1 && mura_dist_rank(d) == 0)
			fprintf(stderr, "%s: --find-lr runs in one process, not in a job of %d under mpirun\n",
			        argv0, n);
		mura_dist_end(d);
		if (n > 1)
			return 2;
		o.c.stop = &stop_signal;
		return find_lr(&o, &p);
	}
	o.c.dist = d;
	if (mura_dist_rank(d) == 0) {  /* the job's progress is process 0's */
		o.c.report = report;
		o.c.report_arg = &p;
	}
	o.c.stop = &stop_signal;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESTART | SA_RESETHAND;  /* a second signal acts at once */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	rc = mura_train_run(&o.c);
	clear_bar(&p);
	if (rc < 0)  /* alone, or every process stopping, or this one only */
		die_rank(d, rc == MURA_TRAIN_ABORT);
	if (getenv("MURA_DIST_STATS")) {
		struct mura_dist_stats st;
		mura_dist_stats(d, &st);
		fprintf(stderr, "%s: process %d of %d: %ld steps, %d buckets (%d started late), %.0f bytes "
		        "summed per step, %.6f s waiting per step\n", argv0, mura_dist_rank(d), mura_dist_size(d),
		        st.steps, st.buckets, st.late, st.steps ? st.bytes / (double)st.steps : 0,
		        st.steps ? st.wait_seconds / (double)st.steps : 0);
	}
	if (rc == MURA_TRAIN_STOPPED) {
		if (mura_dist_rank(d) == 0) {
			char ck[4200];
			mura_train_path(ck, sizeof ck, o.c.out, "ckpt");
			warn("%s: checkpoint written to %s; continue with --resume %s and the same training and "
			     "validation files", stop_signal == SIGINT ? "interrupted" : stop_signal ? "terminated"
			     : "stopped with another process", ck, ck);
		}
		mura_dist_end(d);
		return 128 + (stop_signal ? stop_signal : SIGTERM);
	}
	mura_dist_end(d);
	return 0;
}
