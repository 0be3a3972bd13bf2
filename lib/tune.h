/*
 * tune.h - hyperparameter search over training runs: the search space, the
 * study's journal, the samplers (TPE and random), the pruners (median and
 * ASHA) and the runner that starts each trial as a mura-train process.
 * mura-tune(1) is a thin shell over it.
 *
 * The space file, one parameter a line ('#' starts a comment; blank lines
 * are skipped); NAME is the trainer's long option without "--" (letters,
 * digits and '-', at most 31 characters), each at most once:
 *   NAME uniform LO HI       a real in [LO, HI]
 *   NAME log-uniform LO HI   a real whose logarithm is uniform (0 < LO)
 *   NAME int-uniform LO HI   an integer in [LO, HI]
 *   NAME choice W1 W2 ...    one of 2 to 64 words (letters, digits and ._+-),
 *                            given as they are
 * LO < HI, both finite.  At most 32 parameters.
 *
 * The study is a folder DIR:
 *   DIR/study        the settings: the line "mura-tune study 1", then
 *                    "KEY VALUE" lines (metric, sampler, pruner, seed,
 *                    startup, epochs, eta, min-epochs); a reader rejects
 *                    another first line or an unknown key, naming it
 *   DIR/space        the space file, as given
 *   DIR/command      the trainer's command line, one argument a line
 *   DIR/trials.tsv   the journal: a header line, then one row per trial:
 *                      trial   its number, from 0
 *                      state   running, complete, pruned, paused (ASHA: stopped
 *                              at a rung, may be promoted) or failed
 *                      value   the best metric over its epochs ("nan": none)
 *                      epochs  how many epochs its curve holds
 *                      rung    ASHA: the rungs it was recorded at
 *                      pid     its process while running, else 0
 *                      NAME... one column per parameter, in the space's order
 *                      curve   the metric after each epoch, comma-separated
 *   DIR/trial-N/     trial N's files: model.safetensors and the rest that
 *                    mura-train writes beside it, log.tsv, stderr
 * Every file is written to a temporary name and renamed; the journal is
 * rewritten after every event, so a study killed at any moment continues
 * from it.
 */
#ifndef MURA_TUNE_H
#define MURA_TUNE_H

#include <signal.h>
#include <stddef.h>

#define MURA_TUNE_MAX_PARAMS 32
#define MURA_TUNE_MAX_CHOICES 64
#define MURA_TUNE_MAX_ARGS 256

enum mura_tune_kind {
	MURA_TUNE_UNIFORM,
	MURA_TUNE_LOG_UNIFORM,
	MURA_TUNE_INT_UNIFORM,
	MURA_TUNE_CHOICE,
	MURA_TUNE_KIND_COUNT
};

struct mura_tune_param {
	char name[32];
	int kind;
	double lo, hi;                 /* the numeric kinds */
	int nchoice;                   /* choice */
	char *choice[MURA_TUNE_MAX_CHOICES];
};

struct mura_tune_space {
	struct mura_tune_param p[MURA_TUNE_MAX_PARAMS];
	int n;
	char *text;                    /* the file as read */
};

/* Read a space file; name is used in messages ("space: line 3: ...").
 * Returns 0, or -1 with mura_error set. */
int mura_tune_space_read(struct mura_tune_space *s, const char *path);
int mura_tune_space_parse(struct mura_tune_space *s, const char *text, const char *name);
void mura_tune_space_free(struct mura_tune_space *s);
/* A value as the trainer's option takes it (a choice: its word). */
void mura_tune_value_format(const struct mura_tune_param *p, double x, char *buf, size_t len);
/* The inverse, for the journal; 0 or -1 with mura_error set. */
int mura_tune_value_parse(const struct mura_tune_param *p, const char *s, double *x);

enum mura_tune_state {
	MURA_TUNE_RUNNING,
	MURA_TUNE_COMPLETE,
	MURA_TUNE_PRUNED,
	MURA_TUNE_PAUSED,
	MURA_TUNE_FAILED,
	MURA_TUNE_STATE_COUNT
};
const char *mura_tune_state_name(int state);

enum mura_tune_sampler { MURA_TUNE_TPE, MURA_TUNE_RANDOM, MURA_TUNE_SAMPLER_COUNT };
enum mura_tune_pruner { MURA_TUNE_PRUNE_NONE, MURA_TUNE_MEDIAN, MURA_TUNE_ASHA, MURA_TUNE_PRUNER_COUNT };
int mura_tune_sampler_parse(const char *s);
int mura_tune_pruner_parse(const char *s);
const char *mura_tune_sampler_name(int k);
const char *mura_tune_pruner_name(int k);

struct mura_tune_settings {
	char metric[32];       /* a column of mura-train's log (val_loss) */
	int maximize;          /* from the metric: 0 for *_loss, else 1 */
	int sampler, pruner;
	long seed;
	int startup;           /* TPE: random trials first (10) */
	int epochs;            /* each trial's --epochs (10) */
	int eta, min_epochs;   /* ASHA: reduction factor (3), first rung (1) */
};
void mura_tune_settings_default(struct mura_tune_settings *c);
/* Set the metric and its direction; -1 with mura_error for a name that is
 * not a column of mura-train's log. */
int mura_tune_metric_set(struct mura_tune_settings *c, const char *name);

struct mura_tune_trial {
	int number, state;
	double x[MURA_TUNE_MAX_PARAMS];  /* a choice: its index */
	double *curve;                   /* the metric after epoch 1, 2, ... */
	int epochs;                      /* curve's length */
	size_t cap;
	int rung;                        /* ASHA: rungs recorded at */
	long pid;
	double value;                    /* best of curve, NaN when empty */
	/* the runner's: what it asked of the running process */
	int stopping;                    /* SIGTERM sent: pruned or paused */
	int promoted;                    /* ASHA: resumed past its last rung */
};

struct mura_tune_study {
	char dir[4096];
	struct mura_tune_settings set;
	struct mura_tune_space space;
	char *argv[MURA_TUNE_MAX_ARGS + 1];  /* the trainer's command, NULL-ended */
	int argc;
	struct mura_tune_trial *t;
	int n;
	size_t cap;
};

/* A new study in dir (made if missing; refused if it holds one). */
int mura_tune_study_create(struct mura_tune_study *s, const char *dir, const struct mura_tune_settings *set,
                           const char *space_path, int argc, char **argv);
/* An existing study: its settings, space, command and journal. */
int mura_tune_study_open(struct mura_tune_study *s, const char *dir);
int mura_tune_study_exists(const char *dir);
void mura_tune_study_free(struct mura_tune_study *s);
/* Rewrite DIR/trials.tsv (atomically). */
int mura_tune_journal_write(const struct mura_tune_study *s);
/* A new trial at the end of the journal (state running, no curve). */
struct mura_tune_trial *mura_tune_trial_add(struct mura_tune_study *s);
/* Append one epoch's metric; keeps value the best so far. */
int mura_tune_trial_push(struct mura_tune_study *s, struct mura_tune_trial *t, double v);
/* Whether a is better than b in the study's direction (NaN is worst). */
int mura_tune_better(const struct mura_tune_study *s, double a, double b);
/* The best complete trial (or best of any with a value), NULL if none. */
const struct mura_tune_trial *mura_tune_best(const struct mura_tune_study *s);

/* ---- tune_tpe.c: samplers and pruners ---- */

/*
 * Draw trial `number`'s parameters into x from the study's finished trials
 * (complete and pruned; running and failed ones are left out).  The draw is
 * a function of the seed, the number and those trials only, so a study
 * continued after a kill draws what it would have drawn.
 */
void mura_tune_sample(const struct mura_tune_study *s, int number, double *x);
/* Median pruner: whether trial t stops after its epoch `step` (1-based). */
int mura_tune_median_prune(const struct mura_tune_study *s, const struct mura_tune_trial *t, int step);
/* ASHA: the epoch of rung k (min_epochs * eta^k), or 0 past the last
 * (the last rung lies below the run's epochs). */
int mura_tune_asha_rung_epoch(const struct mura_tune_settings *c, int k);
/* ASHA: whether trial t, recorded at rung k, is in the top 1/eta of the
 * trials recorded there (those not promoted yet may be promoted). */
int mura_tune_asha_promotable(const struct mura_tune_study *s, const struct mura_tune_trial *t, int k);

/* ---- tune_run.c: the runner ---- */

enum mura_tune_event {
	MURA_TUNE_EV_START = 1, MURA_TUNE_EV_RESUME, MURA_TUNE_EV_EPOCH, MURA_TUNE_EV_COMPLETE,
	MURA_TUNE_EV_PRUNED, MURA_TUNE_EV_PAUSED, MURA_TUNE_EV_FAILED, MURA_TUNE_EV_INFO,
};

struct mura_tune_run {
	int trials;                /* how many the study should hold */
	int jobs, threads;         /* trials at once; each one's --threads */
	double poll;               /* seconds between looks at the logs (0.1) */
	volatile sig_atomic_t *stop;
	void (*report)(void *arg, int event, const struct mura_tune_trial *t, const char *msg);
	void *report_arg;
};

/*
 * Run the study until it holds `trials` trials, none running or promotable:
 * trials left running by a killed mura-tune first (resumed from their
 * checkpoints), then new ones, `jobs` at a time.  Returns 0, 1 when *stop
 * was raised (the running trials were stopped through SIGTERM and stay
 * "running" in the journal, to be resumed), or -1 with mura_error set.
 */
int mura_tune_study_run(struct mura_tune_study *s, const struct mura_tune_run *r);

#endif
