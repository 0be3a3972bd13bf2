/*
 * lrsched.h - learning-rate schedules with the exact arithmetic of PyTorch
 * 1.13's torch.optim.lr_scheduler (torch/optim/lr_scheduler.py), the
 * "chainable" forms that scheduler.step() computes (each rate from the
 * last, in double, in the Python code's order of operations), so that a
 * run's rates equal PyTorch's to the last bit.
 *
 * A run of mura-train takes optimizer steps s = 1, 2, ... over epochs
 * e = 1, 2, ...; the rate of step s is `lr` when the step runs.  What
 * PyTorch's loop would be, and what these functions are:
 *
 *     opt = Adam(params, lr=LR)                      lr = mura_sched_start()
 *     warm = LinearLR(opt, start_factor=F, total_iters=N)   (with a warm-up)
 *     main = <the schedule>(opt, ...)
 *     for epoch in 1..E:
 *         for batch in epoch:
 *             train step with opt.param_groups[0]["lr"]
 *             if s <= N: warm.step()                 mura_sched_step(s)
 *             onecycle: main.step()                  (the same call)
 *         validate
 *         cosine, step, exponential: main.step()     mura_sched_epoch(e)
 *
 * The kinds and their PyTorch counterparts:
 *   plateau      none here: ReduceLROnPlateau, in lib/train.c (it needs
 *                the validation), the only one mura-train had before
 *   cosine       CosineAnnealingLR(T_max=t_max, eta_min=min_lr), per epoch
 *   step         StepLR(step_size, gamma), per epoch
 *   exponential  ExponentialLR(gamma), per epoch
 *   onecycle     OneCycleLR(max_lr, total_steps, pct_start), per step, with
 *                its defaults: anneal_strategy "cos", div_factor 25,
 *                final_div_factor 1e4, three_phase False, cycle_momentum
 *                True (base 0.85, max 0.95: SGD's momentum or Adam's beta1
 *                follows mura_sched_momentum)
 * The warm-up (warmup > 0 steps) is LinearLR(start_factor=warmup_factor,
 * end_factor=1, total_iters=warmup), stepped after each of the first
 * `warmup` optimizer steps; it and the schedule both scale the optimizer's
 * one rate, as two PyTorch schedulers on one optimizer do.  OneCycleLR sets
 * the rate outright every step (its own warm-up is pct_start): no warm-up
 * with it.
 *
 * The state is the rate itself (kept by the caller, exactly) and the
 * counters: steps and epochs done.  So a checkpoint that holds the rate in
 * full (%.17g) resumes on the curve bit for bit.
 */
#ifndef MURA_SCHED_H
#define MURA_SCHED_H

enum mura_sched_kind {
	MURA_SCHED_PLATEAU = 1,
	MURA_SCHED_COSINE,
	MURA_SCHED_STEP,
	MURA_SCHED_EXPONENTIAL,
	MURA_SCHED_ONECYCLE,
	MURA_SCHED_KIND_END
};

struct mura_sched {
	int kind;              /* enum mura_sched_kind */
	double lr;             /* the base rate (the optimizer's lr: initial_lr) */
	int step_size;         /* step: epochs between decays, >= 1 */
	double gamma;          /* step, exponential: the factor */
	int t_max;             /* cosine: epochs from the base rate to min_lr, >= 1 */
	double min_lr;         /* cosine: eta_min */
	double max_lr;         /* onecycle: the peak; it starts at max_lr / 25 */
	double pct_start;      /* onecycle: the share of steps going up */
	long total_steps;      /* onecycle: the run's optimizer steps, >= 1 */
	long warmup;           /* steps of linear warm-up; 0: none */
	double warmup_factor;  /* the warm-up's first factor, in (0, 1] */
};

/* "plateau", "cosine", ... -> enum value, or -1 with mura_error set. */
int mura_sched_kind_parse(const char *s);
const char *mura_sched_kind_name(int kind);

/* Check the values the kind uses (PyTorch's constructors' checks, and
 * warm-up with onecycle refused).  Returns 0, or -1 with mura_error set,
 * naming the option (--step-size, --lr-gamma, --t-max, --min-lr,
 * --max-lr, --pct-start, --warmup, --warmup-factor). */
int mura_sched_check(const struct mura_sched *s);

/* The rate of the first step: the schedulers' constructors' initial step. */
double mura_sched_start(const struct mura_sched *s);

/* After optimizer step number `done` (1 for the first of the run): the
 * warm-up's and onecycle's step, *lr the rate of the next step. */
void mura_sched_step(const struct mura_sched *s, long done, double *lr);

/* After epoch number `done` (1 for the first): cosine's, step's and
 * exponential's step. */
void mura_sched_epoch(const struct mura_sched *s, int done, double *lr);

/* onecycle's momentum (SGD) or beta1 (Adam, AdamW) for the step after
 * `done` steps, into *m: 1; other kinds leave the optimizer's own: 0. */
int mura_sched_momentum(const struct mura_sched *s, long done, double *m);

/* OneCycleLR's max_momentum: what the optimizer's momentum or beta1 is set
 * to when it is built. */
#define MURA_SCHED_MAX_MOMENTUM 0.95
#define MURA_SCHED_BASE_MOMENTUM 0.85

#endif
