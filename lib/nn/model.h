/*
 * model.h - the networks: DenseNet 121/169/201 and ResNet 18/34/50 exactly
 * as torchvision builds them, with one of two classifier heads, and the
 * ResNet50 + Vision Transformer hybrid; trained and run on the CPU.  This
 * is the API mura-train and mura-score use.
 *
 * Life of a model:
 *   m = mura_model_create(&cfg)           torchvision's fresh initialisation
 *   mura_model_load(m, path, info, n)     or weights from a safetensors file
 *   mura_model_plan(m, batch, h, w, 1)    lay out every buffer for that size
 *   loop: mura_model_forward(m, x, n, 1, logits)      (n <= batch images)
 *         dlogits from lib/nn/loss.h
 *         mura_optim_zero_grad(&o); mura_model_backward(m, dlogits);
 *         mura_optim_step(&o)        (o built on mura_model_params())
 *   mura_model_save(m, path, ...)
 *   mura_model_free(m)
 *
 * Images go in as PyTorch lays them out: x[n][3][h][w], f32, already
 * normalised (the model only records the mean and std to use, in cfg).
 * Any size from 32 x 32 up works.  One logit per image comes out; the
 * probability of "abnormal" is its sigmoid.
 *
 * Names and shapes of the state (parameters, buffers) are exactly
 * torchvision's state_dict: features.conv0.weight, features.denseblock1.
 * denselayer1.norm1.running_var, features.transition1.conv.weight,
 * features.norm5.*, classifier.* (DenseNet); conv1.weight, bn1.*,
 * layer1.0.conv1.weight, layer1.0.downsample.0.weight, layer1.0.downsample.1.*,
 * fc.* (ResNet); every batch norm with weight, bias, running_mean,
 * running_var and num_batches_tracked.  With the fc head, a model saved
 * here loads into torchvision.models.densenet169(num_classes=1) (or
 * resnet50(num_classes=1)) with load_state_dict(strict=True).
 *
 * The two heads (enum mura_head) on the backbone's last feature map F:
 *   MURA_HEAD_FC    the MURA paper's and the seed's Figure 1: global average
 *                   pool, [dropout], fully connected to one logit:
 *                   classifier.weight [1][C], classifier.bias [1] (DenseNet),
 *                   fc.weight, fc.bias (ResNet).  For DenseNet, F is
 *                   relu(norm5(...)), as torchvision's forward pools it.
 *   MURA_HEAD_CONV  the seed's Figure 2, a convolutional classifier:
 *                     head.conv1   3x3 convolution, padding 1, C -> 256, no bias
 *                     head.norm1   batch norm (256), then ReLU
 *                     [dropout]
 *                     head.conv2   1x1 convolution, 256 -> 1, with bias
 *                     global average pool of that one-channel map = the logit
 *                   The 3x3 convolution lets each position's decision see its
 *                   neighbours (a fracture line crosses several cells of a
 *                   10 x 10 map); the 1x1 convolution gives a map of
 *                   per-position logits whose mean is the image's logit, so
 *                   the map itself shows where the evidence lies.  Its
 *                   layers start as torch.nn.Conv2d and BatchNorm2d do by
 *                   default.
 *
 * The hybrid (MURA_ARCH_HYBRID, "hybrid"; its head is MURA_HEAD_VIT, "vit")
 * is the seed paper's model: ResNet50 extracts features, a transformer
 * encoder relates them across the whole image, a linear head classifies.
 *   backbone     torchvision's resnet50 (same names) cut after layer3 or
 *                layer4 (cfg.hybrid_stage; 4 by default, the whole ResNet50
 *                as the seed used it: at 320 x 320 a 10 x 10 map of 2048
 *                channels; 3 gives 20 x 20 of 1024, ViT-hybrid's choice);
 *   patch_embed.proj   1x1 convolution with bias, C -> D (timm's HybridEmbed),
 *                the map flattened to tokens in raster order;
 *   cls_token [1, 1, D] prepended; pos_embed [1, 1 + gh gw, D] added, made
 *                for the gh x gw map of cfg.vit_grid_h/w (by default the
 *                map of cfg.input_h/w) and resampled bilinearly
 *                (align_corners=False) when the input gives another grid,
 *                as timm's resample_abs_pos_embed does (its class position
 *                kept as it is);
 *   blocks.0 ... blocks.L-1, pre-norm (timm's Block):
 *                x = x + drop(attn.proj(attention(attn.qkv(norm1(x)))))
 *                x = x + drop(mlp.fc2(drop(gelu(mlp.fc1(norm2(x))))))
 *                with H heads, fc1 D -> R D, exact (erf) GELU, LayerNorm eps
 *                1e-6, drop = dropout of probability cfg.dropout;
 *   norm         the final LayerNorm; head: linear D -> 1 on the [CLS]
 *                token, after dropout.
 * D, L, H, R are cfg.vit_dim, vit_depth, vit_heads, vit_mlp (256, 4, 8, 4
 * by default).  The transformer starts as timm's ViT does: Linear weights,
 * cls_token and pos_embed N(0, 0.02^2) truncated at +-2, biases 0,
 * LayerNorm 1 and 0; the projection as torch.nn.Conv2d.  Everything after
 * the ResNet is the "head": a frozen backbone trains the projection and
 * the transformer.  A torchvision resnet50 file loads into the backbone:
 * its fc.* (and with hybrid_stage 3 its layer4.*) are dropped, and the
 * transformer starts fresh.
 *
 * Threads: the model owns one pool (lib/nn/thread.h) of cfg.threads
 * threads (0: $MURA_THREADS, else every core), used by every operation and
 * matrix product; OpenBLAS is set to one thread.
 *
 * Memory: mura_model_plan() makes one allocation holding every activation,
 * gradient and scratch buffer for that batch and size (a training plan
 * keeps what backward needs; an evaluation plan shares buffers between
 * layers); forward and backward allocate nothing.
 */
#ifndef MURA_NN_MODEL_H
#define MURA_NN_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "optim.h"
#include "safetensors.h"

enum mura_arch {
	MURA_ARCH_DENSENET121 = 1,
	MURA_ARCH_DENSENET169,
	MURA_ARCH_DENSENET201,
	MURA_ARCH_RESNET18,
	MURA_ARCH_RESNET34,
	MURA_ARCH_RESNET50,
	MURA_ARCH_HYBRID,    /* ResNet50 + ViT */
	MURA_ARCH_COUNT
};

enum mura_head {
	MURA_HEAD_FC = 1,
	MURA_HEAD_CONV,
	MURA_HEAD_VIT,       /* the hybrid's transformer, and only the hybrid's */
	MURA_HEAD_COUNT
};

/* How a model's convolutions and matrix products run.  BF16: bf16 operands
 * summed in fp32, as PyTorch's CPU autocast (torch.cpu.amp.autocast(dtype=
 * torch.bfloat16)); weights, optimizer state, batch-norm statistics, losses
 * and every other operation stay fp32, and model files are fp32 either way.
 * It needs AVX512-BF16 (mura_bf16_supported, ops.h).  AUTO is BF16 where the
 * CPU has it, else FP32 (mura_precision_resolve). */
enum mura_precision {
	MURA_PRECISION_FP32,
	MURA_PRECISION_BF16,
	MURA_PRECISION_AUTO,
	MURA_PRECISION_COUNT
};

/* "fp32", "bf16", "auto": the enum value, or -1 with mura_error set. */
int mura_precision_parse(const char *s);
const char *mura_precision_name(int precision);
/* AUTO made FP32 or BF16 as this CPU allows; *fell_back set when AUTO
 * became FP32 for want of AVX512-BF16 (the tool says so).  BF16 on a CPU
 * without AVX512-BF16: -1 with mura_error set. */
int mura_precision_resolve(int precision, int *fell_back);

struct mura_model_config {
	int arch;            /* enum mura_arch */
	int head;            /* enum mura_head */
	float dropout;       /* probability, before the head's last layer; 0: none */
	int threads;         /* 0: $MURA_THREADS, else all cores */
	int precision;       /* enum mura_precision (not saved; AUTO resolved at creation;
	                        BF16 without AVX512-BF16 is an error) */
	uint64_t seed;       /* fresh initialisation and dropout masks */
	/* Recorded in saved files for whoever uses the model; not applied here. */
	int input_h, input_w;        /* the size it is meant to see */
	float mean[3], std[3];       /* the normalisation its inputs had */
	int input_dtype;             /* enum mura_dtype of the records it learnt from; 0: not said */
	int norm_unknown;            /* f32 records normalised before training, in a way mean
	                                and std do not tell (then neither is saved) */
	/* The hybrid's shape (other architectures ignore it). */
	int hybrid_stage;            /* the ResNet50 ends with layer3 or layer4 */
	int vit_dim, vit_depth;      /* D (a multiple of vit_heads), L blocks */
	int vit_heads, vit_mlp;      /* H, and R: the MLP's width is R D */
	int vit_grid_h, vit_grid_w;  /* pos_embed's grid; 0: input_h/w's map */
};

/* densenet169, fc head, no dropout, all threads, seed 1, 320 x 320,
 * ImageNet's mean and std; for the hybrid stage 4, D 256, L 4, H 8, R 4. */
void mura_model_config_default(struct mura_model_config *c);
/* "densenet121" ... "resnet50", "hybrid" and "fc", "conv", "vit": the enum
 * value, or -1 with mura_error set. */
int mura_arch_parse(const char *s);
int mura_head_parse(const char *s);
const char *mura_arch_name(int arch);
const char *mura_head_name(int head);

/*
 * The configuration a model file records in its metadata (arch, head,
 * dropout, input size, normalisation, the hybrid's shape; see
 * mura_model_save), over the
 * values c already holds.  Returns 1 if the file had our metadata, 0 if it
 * had none (a plain torchvision or timm file: c unchanged), -1 on error.
 */
int mura_model_config_read(const struct mura_st_file *f, struct mura_model_config *c);
/*
 * The architecture of a file without our metadata (a plain torchvision or
 * timm state dict), from its tensors' names: a DenseNet by the layers of
 * each dense block (features.denseblock3.denselayer24, 32 or 48 the last
 * of the third), a ResNet by the blocks of each layer (layer3.5 is 34's and
 * 50's last of the third) and the bottleneck's third convolution
 * (layer1.0.conv3, 50's).  The hybrid is not guessed: its backbone's file
 * is a resnet50's.  Returns the enum mura_arch, or -1 with mura_error set
 * when no architecture fits, or more than one ("... give its --arch").
 */
int mura_model_arch_guess(const struct mura_st_file *f);

struct mura_model;

/* A fresh model, initialised as torchvision initialises it (DenseNet:
 * kaiming_normal_ convolutions, batch norm weight 1 and bias 0, classifier
 * bias 0; ResNet: kaiming_normal_ fan_out convolutions, fc as
 * torch.nn.Linear; the hybrid's transformer as timm's ViT), from
 * cfg->seed.  The hybrid takes the default head, fc, as its own (vit); the
 * conv head is refused for it, and vit for the others.  NULL with
 * mura_error set. */
struct mura_model *mura_model_create(const struct mura_model_config *cfg);
void mura_model_free(struct mura_model *m);
const struct mura_model_config *mura_model_config(const struct mura_model *m);

/*
 * Load weights from an open safetensors file (F32, F16 or BF16; I64 or any
 * number type for num_batches_tracked).  Every tensor of the model must be
 * there with its exact shape, and every tensor there must belong to the
 * model, else -1 with a message naming the tensor; except:
 *   - a torchvision classifier (classifier.* or fc.*) with other than one
 *     output (ImageNet's 1000), or any such classifier when the model has
 *     the convolutional head, is dropped, and the model's head keeps a fresh
 *     initialisation (torch.nn.Linear's default for the fc head);
 *   - a file with no head tensors at all gives a fresh head likewise;
 *   - the hybrid drops fc.* (and with hybrid_stage 3, layer4.*): it takes
 *     a torchvision resnet50 file as its backbone;
 *   - a missing num_batches_tracked (old torchvision files) is taken as 0;
 *   - tensors named "optim.*" (an optimizer's state in a checkpoint) are
 *     left to the caller.
 * What was dropped or made fresh is said in info (a sentence, empty if
 * nothing); the library prints nothing.  On error the model's weights may
 * be partly overwritten.  Returns 0 or -1.
 */
int mura_model_load(struct mura_model *m, const struct mura_st_file *f, char *info, size_t infolen);
int mura_model_load_path(struct mura_model *m, const char *path, char *info, size_t infolen);

/*
 * Save the state as safetensors (F32, num_batches_tracked as I64 scalars),
 * with metadata "arch", "head", "dropout", "input_size" ("HxW"),
 * "normalize_mean", "normalize_std" (not with norm_unknown), "input_dtype"
 * ("u8", "u16" or "f32", when known) and "format" ("mura-model 1") (the
 * hybrid's also "hybrid_stage", "vit_dim", "vit_depth", "vit_heads",
 * "vit_mlp" and "vit_grid", "GHxGW"), then the
 * caller's n_meta pairs (which must not reuse those keys), and the caller's
 * n_extra additional tensors (an optimizer's slots, say).  Atomic.
 */
int mura_model_save(const struct mura_model *m, const char *path,
                    const char *const *meta_key, const char *const *meta_val, size_t n_meta,
                    const struct mura_st_entry *extra, size_t n_extra);

/*
 * Lay out every buffer for batches of up to `batch` images of h x w.
 * training = 0 plans for evaluation only (far less memory: forward with
 * train set is then refused).  Re-planning frees the previous layout.
 * Returns 0, or -1 (too small an image, out of memory).
 */
int mura_model_plan(struct mura_model *m, int batch, int h, int w, int training);
/* Bytes the current plan holds. */
size_t mura_model_plan_bytes(const struct mura_model *m);

/*
 * Forward n <= batch images x[n][3][h][w] into logits[n].  train: batch
 * statistics (running ones updated), dropout on, and whatever backward
 * needs kept; else running statistics, no dropout.  A frozen backbone runs
 * in evaluation mode either way.  Returns 0 or -1.
 */
int mura_model_forward(struct mura_model *m, const float *x, int n, int train, float *logits);
/*
 * Backward from dlogits[n] (dL/dlogit, n as the last forward, which must
 * have been a training one): adds every trainable parameter's gradient to
 * its .g (zero them first: mura_optim_zero_grad or mura_model_zero_grad).
 * With the backbone frozen only the head's gradients are computed.
 */
int mura_model_backward(struct mura_model *m, const float *dlogits);
void mura_model_zero_grad(struct mura_model *m);

/*
 * Explaining a prediction (Grad-CAM and the like).  An evaluation forward
 * (running statistics, no dropout: the logits of mura_model_forward with
 * train 0) that keeps what backward needs, on a training plan; the
 * mura_model_backward after it gives the gradients of that evaluated
 * network, its batch norms the fixed affine maps they are in evaluation.
 * With a layer captured, that backward stops at the layer (the parameters'
 * gradients are then partial).  Returns 0 or -1.
 */
int mura_model_forward_explain(struct mura_model *m, const float *x, int n, float *logits);
/*
 * Capture the output of the backbone layer named name in the forwards that
 * follow, and its gradient in explaining backwards, until another capture
 * (name NULL: none).  Names are the state dict's: "layer1" to "layer4"
 * (the last block of a stage; the hybrid's up to its last stage) or a block
 * "layer3.2" of a ResNet; "features.denseblock1" to 4, "features.transition1"
 * to 3 and "features.norm5" (after torchvision's ReLU: what the head pools)
 * of a DenseNet.  After a plan (a new plan drops the capture).  The layer's
 * channels, height and width go to c, h, w.  Returns 0, or -1 with
 * mura_error naming the layers there are.
 */
int mura_model_capture(struct mura_model *m, const char *name, int *c, int *h, int *w);
/* The backbone's last layer, what the head reads: "features.norm5",
 * "layer4" (or the hybrid's "layer3"). */
const char *mura_model_last_layer(const struct mura_model *m);
/* The captured layer's output of the last forward and (grad non-NULL) its
 * gradient from the last explaining backward, image i of the batch, as
 * [c][h][w] floats each.  Returns 0, or -1 when none was captured. */
int mura_model_captured(const struct mura_model *m, int i, float *act, float *grad);

/*
 * The parameters (not the buffers) as blocks for lib/nn/optim.h, in state
 * order; the array belongs to the model and lives as long as it does.
 * Frozen blocks are marked frozen.
 */
struct mura_param *mura_model_params(struct mura_model *m, size_t *n);

/* Freeze (1) or unfreeze (0) the backbone: frozen, its parameters get no
 * gradient and are skipped by the optimizer, its batch norms stay in
 * evaluation mode, and backward stops at the head. */
void mura_model_freeze_backbone(struct mura_model *m, int frozen);
int mura_model_backbone_frozen(const struct mura_model *m);

/* Add the time of every operation to *p from now on (NULL: stop); the
 * kinds are lib/nn/ops.h's enum mura_prof_kind.  For profiling. */
struct mura_nn_prof;
void mura_model_profile(struct mura_model *m, struct mura_nn_prof *p);

/* keep 1: the caller promises not to change the weights (inference) until
 * it calls this with 0 or loads others, and the convolutions keep their
 * packed weights between forwards rather than packing them for every batch
 * (mura-score at 64 px: a tenth of its time).  keep 0 releases them. */
void mura_model_keep_packed(struct mura_model *m, int keep);

/* The dropout masks of the forwards that follow come from a stream derived
 * from (seed, step) alone (mura_rng_derive): a training loop that calls this
 * before each step draws the same masks when it resumes at that step. */
void mura_model_seed_dropout(struct mura_model *m, uint64_t seed, uint64_t step);

/*
 * For data-parallel training (lib/dist.h), the state as flat arrays: every
 * parameter's data and gradient, every buffer (running statistics) and
 * every num_batches_tracked, each one array in state order (the tensors'
 * data, grad and count point into them).
 */
struct mura_model_flat {
	float *param, *grad;   /* nparam floats each */
	size_t nparam;
	float *buf;            /* nbuf floats */
	size_t nbuf;
	int64_t *count;        /* ncount values */
	size_t ncount;
};
void mura_model_flat(struct mura_model *m, struct mura_model_flat *f);

/* fn(arg, off) during each backward, whenever the gradients grad[off ..
 * nparam) of mura_model_flat are final (called with falling offsets, down
 * to the first trainable parameter's at the latest when backward returns):
 * so that a caller can start summing them across processes while backward
 * goes on.  NULL: none. */
void mura_model_on_grads(struct mura_model *m, void (*fn)(void *arg, size_t off), void *arg);

/* Batch statistics over several processes (SyncBatchNorm): with fn set,
 * every training batch norm sums its per-channel partial statistics, and in
 * backward its gradient sums, over the processes with fn(arg, v, n), which
 * must replace v[0..n) by the element-wise sum of every process's v (a
 * blocking allreduce; every process calls it in the same order).  NULL:
 * this process's batch alone.  Returns 0, or -1 out of memory. */
int mura_model_sync_bn(struct mura_model *m, void (*fn)(void *arg, double *v, size_t n), void *arg);

/* One tensor of the state, in torchvision's state_dict order. */
enum mura_tensor_kind {
	MURA_TENSOR_PARAM = 1,   /* trained: data and grad */
	MURA_TENSOR_BUFFER,      /* running_mean, running_var: data */
	MURA_TENSOR_COUNT,       /* num_batches_tracked: count, a scalar */
};

struct mura_model_tensor {
	char name[128];
	int kind;
	int ndim;
	int64_t shape[4];
	size_t n;            /* elements */
	float *data, *grad;  /* grad: PARAM only */
	int64_t *count;      /* COUNT only */
	int head;            /* part of the head (not the backbone) */
};

size_t mura_model_tensor_count(const struct mura_model *m);
const struct mura_model_tensor *mura_model_tensor_at(const struct mura_model *m, size_t i);
const struct mura_model_tensor *mura_model_tensor_find(const struct mura_model *m, const char *name);

#endif
