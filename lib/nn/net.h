/*
 * net.h - the inside of a model: what model.c (the API, weights, files)
 * calls the parts through, and what the parts build and plan with (net.c).
 * Not a public header.
 *
 * A model is a backbone and a head, each a part (struct net_part): a table
 * of five functions that model.c calls and nothing else does:
 *   build     make its layers and register their tensors (state names)
 *   plan      lay out its activations for a batch size and input size
 *   forward   backbone: m->in -> m->feat;  head: m->feat -> m->logits
 *   backward  head: m->dlogits -> m->dfeat (and parameter gradients);
 *             backbone: m->dfeat -> parameter gradients
 *   free      its own struct (m->backbone or m->head)
 * The parts are net_densenet (densenet.c), net_resnet (resnet.c), net_head
 * (head.c: the fc and conv classifiers) and net_hybrid (hybrid.c: the
 * hybrid's transformer).  An architecture (struct net_arch, model.c's
 * table indexed by enum mura_arch) names its backbone and, for the hybrid,
 * the head it always has.  A new architecture is a new part and one row
 * of that table.  The parts call only net.c, never model.c.
 *
 * Both build and plan run twice, the same code each time: a first pass
 * that only counts (pointers come back NULL) and a second that hands out
 * pointers into the one allocation the first pass sized.  So the sizes can
 * never disagree with the layout.
 */
#ifndef MURA_NN_NET_H
#define MURA_NN_NET_H

#include "model.h"
#include "ops.h"
#include "rng.h"

/* ---- building: the state's tensors --------------------------------------- */
enum net_init {
	NET_INIT_ZERO = 1,
	NET_INIT_ONE,
	NET_INIT_KAIMING_IN,     /* N(0, 2 / fan_in): kaiming_normal_, torchvision DenseNet convs */
	NET_INIT_KAIMING_OUT,    /* N(0, 2 / fan_out): torchvision ResNet convs */
	NET_INIT_UNIFORM_FANIN,  /* U(+-1/sqrt(fan_in)): torch.nn.Linear and Conv2d defaults */
	NET_INIT_TRUNC_NORMAL,   /* N(0, 0.02^2) cut at +-2: timm's trunc_normal_(std=.02) (ViT) */
};

struct net_tensor {
	struct mura_model_tensor t;   /* what the API shows */
	int init;                     /* enum net_init */
	int fan_in, fan_out;
};

struct net_build {
	struct mura_model *m;
	int pass;                /* 0: count; 1: assign */
	int head;                /* registering the head's tensors now */
	size_t nparam, nbuf, nwork, ncount, ntensor;
};

/* Register name.{weight,bias} and so on and fill the layer's pointers. */
void net_conv(struct net_build *b, struct mura_conv *cv, const char *name, int cin, int cout,
              int k, int stride, int pad, int bias, int init);
void net_bn(struct net_build *b, struct mura_bn *bn, const char *name, int c);
void net_linear(struct net_build *b, struct mura_linear *l, const char *name, int in, int out,
                int bias_init);
/* A parameter prefix.suffix (suffix NULL: prefix) of that shape; its data
 * and its gradient (NULL in the counting pass). */
float *net_param(struct net_build *b, const char *prefix, const char *suffix, int ndim,
                 const int64_t *shape, int init, float **grad);

/* ---- planning: activations --------------------------------------------- */
/* Shared slots: a backbone numbers its own from 0, a head from NET_SLOT_HEAD. */
#define NET_SLOTS 32
#define NET_SLOT_HEAD 24

struct net_plan {
	int pass;                /* 0: measure; 1: assign */
	int training;
	char *base;
	size_t off;              /* bytes handed out so far, after the slots */
	size_t slot[NET_SLOTS];  /* bytes of each shared slot (max over users) */
	size_t slot_off[NET_SLOTS];
	size_t scratch;          /* floats of op scratch (max over ops) */
	int nthreads;
};

/* Memory of its own for this plan (NULL in pass 0). */
float *net_take(struct net_plan *p, size_t nfloats);
/* Memory shared with every other user of the same slot (a buffer whose
 * contents are dead by the time the next user writes it). */
float *net_slot(struct net_plan *p, int slot, size_t nfloats);
/* Kept for backward when training, else shared in slot. */
float *net_keep(struct net_plan *p, int slot, size_t nfloats);
/* Record a convolution's scratch need on input x. */
void net_conv_scratch(struct net_plan *p, const struct mura_conv *cv, const struct mura_fm *x);

/* ---- the parts ---------------------------------------------------------------- */
struct net_part {
	const char *name;
	int (*build)(struct mura_model *m, struct net_build *b);
	/* n images of h x w at the input (a head reads its input's size in m->feat) */
	int (*plan)(struct mura_model *m, struct net_plan *p, int n, int h, int w);
	void (*forward)(struct mura_model *m, int n, int train);
	void (*backward)(struct mura_model *m, int n);
	void (*free)(void *part);
	/* A backbone's: has f the tensors of arch's by their names (a plain
	 * torchvision file, for mura_model_arch_guess)?  NULL for a head. */
	int (*fits)(const struct mura_st_file *f, int arch);
	/* A backbone's, after a plan: the id (>= 0) of the layer named name
	 * (state-dict names: "layer4", "layer3.1"; "features.denseblock2",
	 * "features.norm5") and its output's c, h, w in *shape; -1 with
	 * mura_error listing the names it knows.  NULL for a head. */
	int (*layer)(struct mura_model *m, const char *name, struct mura_fm *shape);
};

extern const struct net_part net_densenet, net_resnet, net_head, net_hybrid;

struct net_arch {
	const char *name;                /* mura_arch_name() */
	const struct net_part *backbone;
	int own_head;                    /* the head it always has (enum mura_head), or 0: cfg.head */
	const char *classifier;          /* torchvision's classifier: "classifier" or "fc" */
	int classifier_bias_init;        /* DenseNet zeroes its bias, ResNet keeps nn.Linear's */
};

/* ---- capturing a layer (Grad-CAM) ------------------------------------------ */
/* The output of one backbone layer, and its gradient, copied out as the
 * forward and backward pass it (mura_model_capture).  id -1: none. */
struct net_capture {
	int id;
	int c, h, w;
	float *act, *grad;       /* [c][n][h][w] of the plan's batch, or NULL */
	int have_act, have_grad;
};

/* The parts call these where layer id's output a, or its gradient g, is
 * complete; they copy it when it is the captured layer.  net_capture_grad
 * returns 1 when backward may stop there: an explaining backward (see
 * mura_model_forward_explain) wants nothing below it. */
void net_capture_act(struct mura_model *m, int id, const struct mura_fm *a);
int net_capture_grad(struct mura_model *m, int id, const struct mura_fm *g);

/* ---- the model -------------------------------------------------------------- */
struct mura_model {
	struct mura_model_config cfg;
	const struct net_arch *arch;
	const struct net_part *bb, *hd;  /* the backbone's and head's functions */
	struct mura_threads *threads;
	struct mura_nn_ctx ctx;
	struct mura_rng rng;

	struct net_tensor *tensor;   /* the state, in torchvision's order */
	size_t ntensor;
	size_t head_first;           /* tensors [head_first, ntensor) are the head's */
	float *param, *grad, *buf, *work;
	int64_t *count;
	size_t nparam, nbuf, ncount;
	struct mura_param *params;   /* for the optimizer */
	void (*grads_fn)(void *arg, size_t off);  /* mura_model_on_grads */
	void *grads_arg;
	size_t nparams;

	void *backbone, *head;       /* the parts' own structs */
	int feat_c;                  /* channels of the backbone's output */
	int frozen;

	/* the plan */
	void *arena;
	size_t arena_bytes;
	int plan_n, plan_h, plan_w, plan_training;
	struct mura_fm in;           /* [3][n][h][w] */
	struct mura_fm feat, dfeat;  /* the backbone's output and its gradient */
	float *logits, *dlogits;     /* [n] */
	int last_n, last_train;      /* of the last forward */
	int explain;                 /* the last forward was mura_model_forward_explain's:
	                                evaluation mode, kept for a backward */
	struct net_capture cap;
};

/* Backward has made the gradients from g (a parameter's, in m->grad) to
 * the end final: a part says so after each of its blocks, whose
 * parameters follow those of the blocks before it (mura_model_on_grads). */
static inline void net_grads_final(const struct mura_model *m, const float *g)
{
	if (m->grads_fn)
		m->grads_fn(m->grads_arg, (size_t)(g - m->grad));
}

/* The mode the batch norms of the last forward ran in, for their backward:
 * batch statistics (1), or running ones (0) after an explaining forward. */
static inline int net_bn_train(const struct mura_model *m)
{
	return !m->explain;
}

/* Training mode of the backbone's layers in a forward with `train`. */
static inline int net_backbone_train(const struct mura_model *m, int train)
{
	return train && !m->frozen;
}

/* The side of a ResNet's map after `stages` stages, for an input side of in
 * (< 1: too small). */
int resnet_out_size(int in, int stages);

/* hybrid.c: the hybrid's configuration checked and completed (its grid),
 * and read from a model file's metadata (1, or -1). */
int hybrid_config_check(struct mura_model_config *c);
int hybrid_config_read(const struct mura_st_file *f, struct mura_model_config *c);

/* net.c: a tensor's initialisation as enum net_init says; bytes of the
 * arena that n floats take (64-byte aligned). */
void net_init_tensor(struct mura_model *m, struct net_tensor *t, int init);
size_t net_bytes(size_t nfloats);

#endif
