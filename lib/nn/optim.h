/*
 * optim.h - SGD, Adam and AdamW with PyTorch 1.13's exact semantics
 * (torch/optim/sgd.py, adam.py, adamw.py, the single-tensor code path,
 * foreach=False), in the same float32 operation order, so that the same
 * weights, gradients and settings give the same weights, bit for bit where
 * the operation order allows (see optim.c).
 *
 * The model hands the optimizer an array of parameter blocks.  The
 * optimizer keeps a pointer to that array (it must outlive the optimizer) so
 * that the model can freeze and unfreeze blocks between steps: a frozen
 * block is skipped, its weights and state untouched, as PyTorch skips a
 * parameter whose .grad is None.  All state is allocated by mura_optim_init;
 * a step allocates nothing.
 *
 * Per element, with g the gradient, w the weight, all in float32:
 *   SGD    d = g + wd w;  buf = d at the first step, else buf = m buf + (1 - damp) d;
 *          d = nesterov ? d + m buf : buf (when m != 0);  w = w - lr d
 *   Adam   g = g + wd w;  s += 1;  m1 = b1 m1 + (1 - b1) g;  m2 = b2 m2 + (1 - b2) g g;
 *          denom = sqrt(m2) / sqrt(1 - b2^s) + eps  (amsgrad: max of m2 so far);
 *          w = w - (lr / (1 - b1^s)) m1 / denom
 *   AdamW  w = w (1 - lr wd) first, then Adam without the wd term.
 *
 * Checkpoints: the state is a fixed list of named slots (plain float arrays
 * and int64 step counts) pointing into the optimizer, so a caller saves it
 * by reading every slot and restores it bit for bit by writing every slot.
 */
#ifndef MURA_NN_OPTIM_H
#define MURA_NN_OPTIM_H

#include <stddef.h>
#include <stdint.h>

/* One parameter tensor of the model, seen flat. */
struct mura_param {
	const char *name;  /* stable, unique: torchvision's state_dict name */
	float *w;          /* n weights, updated in place */
	float *g;          /* n gradients, read only by the optimizer */
	size_t n;
	int frozen;        /* skipped: no update, no state change */
	int no_decay;      /* 1: weight decay not applied to this block (PyTorch's
	                      default, one param group, applies it to every block) */
};

enum mura_optim_kind {
	MURA_OPTIM_SGD = 1,
	MURA_OPTIM_ADAM,
	MURA_OPTIM_ADAMW,
};

struct mura_optim_config {
	int kind;             /* enum mura_optim_kind */
	double lr;
	double momentum;      /* SGD */
	double dampening;     /* SGD */
	int nesterov;         /* SGD: needs momentum > 0 and dampening 0 */
	double weight_decay;  /* L2 for SGD and Adam, decoupled for AdamW */
	double beta1, beta2;  /* Adam, AdamW */
	double eps;           /* Adam, AdamW */
	int amsgrad;          /* Adam, AdamW */
};

/* The state of one block (for the slots, see below). */
struct mura_optim_state {
	float *buf;     /* SGD momentum_buffer, or Adam exp_avg; NULL if unused */
	float *buf2;    /* Adam exp_avg_sq */
	float *buf3;    /* Adam max_exp_avg_sq (amsgrad) */
	int64_t step;   /* steps taken by this block (SGD too: buf exists iff step > 0) */
};

struct mura_optim {
	struct mura_optim_config cfg;  /* cfg.lr may be changed between steps */
	struct mura_param *p;          /* the caller's blocks, not owned */
	size_t np;
	struct mura_optim_state *s;    /* np states */
	float *arena;                  /* every state buffer, one allocation */
};

/* PyTorch's defaults for kind: lr 0.01 (SGD; PyTorch requires one) or 0.001,
 * momentum 0, dampening 0, betas (0.9, 0.999), eps 1e-8, weight decay 0
 * (0.01 for AdamW), no nesterov, no amsgrad. */
void mura_optim_config_default(struct mura_optim_config *c, int kind);
/* "sgd", "adam", "adamw" -> enum mura_optim_kind, or -1 with mura_error set. */
int mura_optim_kind_parse(const char *s);
const char *mura_optim_kind_name(int kind);

/* Check the config (as PyTorch's constructors do: lr >= 0, 0 <= betas < 1,
 * eps >= 0, weight decay >= 0, nesterov only with momentum and no dampening)
 * and allocate the zeroed state of np blocks.  Returns 0, or -1 with
 * mura_error set (nothing to free then). */
int mura_optim_init(struct mura_optim *o, const struct mura_optim_config *c,
                    struct mura_param *p, size_t np);
void mura_optim_free(struct mura_optim *o);
/* One step over every block that is not frozen. */
void mura_optim_step(struct mura_optim *o);
/* Zero the gradients of the blocks that are not frozen. */
void mura_optim_zero_grad(struct mura_optim *o);

/*
 * Checkpoint slots.  For each block, in block order, with P its name:
 *   SGD with momentum   "optim.P.momentum_buffer" (n floats), "optim.P.step"
 *   SGD without         "optim.P.step"
 *   Adam, AdamW         "optim.P.exp_avg", "optim.P.exp_avg_sq",
 *                       ["optim.P.max_exp_avg_sq" with amsgrad], "optim.P.step"
 * A step slot is one int64 (a scalar); PyTorch's names for the same state.
 * Frozen and never-stepped blocks have slots too (zeros, step 0), so the list
 * depends only on the config and the blocks, and a checkpoint restores into
 * an optimizer built the same way.
 */
#define MURA_OPTIM_NAME_MAX 256

struct mura_optim_slot {
	char name[MURA_OPTIM_NAME_MAX];
	float *f32;     /* n floats, or NULL for a step count */
	int64_t *i64;   /* the step count, or NULL */
	size_t n;       /* floats at f32; 1 for a step count */
};

size_t mura_optim_slot_count(const struct mura_optim *o);
/* Describe slot i < mura_optim_slot_count(o); reading s->f32/s->i64 exports
 * the state, writing them imports it.  Returns 0, or -1 with mura_error set
 * if the name would not fit MURA_OPTIM_NAME_MAX. */
int mura_optim_slot(struct mura_optim *o, size_t i, struct mura_optim_slot *s);

#endif
