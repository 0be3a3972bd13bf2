/*
 * ops.h - the engine's operations, each with its forward and its backward.
 *
 * Feature maps are kept channel-major with the batch inside: [C][N][H][W]
 * ("CNHW"), not PyTorch's [N][C][H][W].  In that layout
 *   - a 1x1 convolution over the whole batch is one matrix product
 *     (Y[Cout][N*H*W] = W[Cout][Cin] X[Cin][N*H*W]) and a k x k one is one
 *     product after im2col, so small late-stage maps (7x7, 10x10) still
 *     give GEMMs with N*H*W columns;
 *   - channel concatenation is contiguity: channels [0, c) of a buffer are
 *     a feature map, so a DenseNet block appends each layer's output after
 *     the previous ones in one buffer and never copies (mura_concat exists
 *     for the general case);
 *   - batch norm statistics run over one contiguous span per channel.
 * Models convert to and from NCHW only at their input (3 channels).
 *
 * Conventions: parameter gradients are always accumulated (+=), as in
 * PyTorch, so a step zeroes them first.  Input gradients are written, or
 * added when `acc` is non-zero (a DenseNet layer adds its input's gradient
 * into the block's).  A NULL input gradient pointer means "not needed".
 * Parallel loops and GEMMs run on ctx->threads; scratch memory comes from
 * ctx->scratch, sized at plan time with the *_scratch() functions, so no
 * operation allocates.
 */
#ifndef MURA_NN_OPS_H
#define MURA_NN_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "rng.h"
#include "thread.h"

/* A feature map [c][n][h][w], contiguous. */
struct mura_fm {
	float *d;
	int c, n, h, w;
};

static inline size_t mura_fm_plane(const struct mura_fm *f) { return (size_t)f->n * f->h * f->w; }
static inline size_t mura_fm_size(const struct mura_fm *f) { return (size_t)f->c * mura_fm_plane(f); }
/* Channels [c0, c0 + c) of f, as a feature map of its own (no copy). */
static inline struct mura_fm
mura_fm_slice(const struct mura_fm *f, int c0, int c)
{
	struct mura_fm s = {f->d ? f->d + (size_t)c0 * mura_fm_plane(f) : NULL, c, f->n, f->h, f->w};
	return s;
}

/* A function compiled once more for each named target (say
 * "arch=x86-64-v3", AVX2 + FMA) besides the default, the best the CPU runs
 * picked at load time: GCC's target_clones, through glibc's ifunc.  For
 * loops whose results do not depend on the instructions chosen. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define MURA_CLONES(...) __attribute__((target_clones(__VA_ARGS__, "default")))
#else
#define MURA_CLONES(...)
#endif

/* Time spent per kind of operation, when a caller asks (ctx->prof). */
enum mura_prof_kind {
	/* convolutions by shape: 1x1 stride 1, 3x3 stride 1 ("same"), others */
	MURA_PROF_CONV1_FWD,
	MURA_PROF_CONV3_FWD,
	MURA_PROF_CONVK_FWD,     /* GEMMs and im2col of the forward */
	MURA_PROF_IM2COL,        /* im2col before a forward GEMM, also that of 3x3 dx (a part of those) */
	MURA_PROF_CONV1_BWD,
	MURA_PROF_CONV3_BWD,
	MURA_PROF_CONVK_BWD,     /* GEMMs, im2col and col2im of the backward */
	MURA_PROF_BN_FWD,        /* batch norm (+ ReLU) */
	MURA_PROF_BN_BWD,
	MURA_PROF_POOL,          /* max, average and global average pooling, both ways */
	MURA_PROF_ELEMENTWISE,   /* ReLU, add, dropout, sigmoid, copies, both ways; the
	                            transformer's layer norm, GELU, softmax, tokens */
	MURA_PROF_LINEAR,        /* fully connected layers, both ways */
	MURA_PROF_ATTENTION,     /* attention and batched products (vit.h), both ways */
	MURA_PROF_KINDS
};

struct mura_nn_prof {
	double sec[MURA_PROF_KINDS];
	double flop[MURA_PROF_KINDS];   /* multiply-adds count 2 */
	long calls[MURA_PROF_KINDS];
};

extern const char *const mura_prof_names[MURA_PROF_KINDS];

/* What every operation runs with.  A zeroed context (no pool, no scratch)
 * runs an operation on the caller's thread: enough for everything but a
 * convolution, which needs the scratch mura_conv_scratch() sized. */
struct mura_nn_ctx {
	struct mura_threads *threads;
	float *scratch;     /* scratch_n floats, shared by all operations in turn */
	size_t scratch_n;
	struct mura_nn_prof *prof;  /* NULL: no timing */
	/* Non-NULL while the weights are constant (inference): convolutions
	 * keep their packed weights here between calls (conv3.c). */
	struct mura_packs *packs;
	/* Non-NULL: training batch norms take their statistics over several
	 * processes (model.h's mura_model_sync_bn; bn.c). */
	struct mura_bn_sync *sync;
	/* Mixed precision (bf16.c): convolutions and matrix products take bf16
	 * operands and sum in fp32 (mura_gemm); everything else stays fp32.
	 * Set only where mura_bf16_supported(). */
	int bf16;
};

/* bf16.c: whether this CPU has AVX512-BF16 (checked at run time); f
 * rounded to bf16 (to nearest, ties to even), as an fp32 value. */
int mura_bf16_supported(void);
/* Whether mura_sbgemm runs on AMX tiles (bf16.c; MURA_SIMD=avx512 says no). */
int mura_bf16_amx(void);
float mura_bf16_round(float f);
/* d[i] = mura_bf16_round(s[i]) for i < n; d may be s. */
void mura_bf16_round_n(float *d, const float *s, size_t n);
/* d[i] = bf16(a[i]) | bf16(b[i]) << 16 for i < n: the pairs vdpbf16ps
 * multiplies, from two rows (b NULL: zeros). */
void mura_bf16_pair_n(uint32_t *d, const float *a, const float *b, size_t n);
/* d[i] = the bits of bf16(s[i]) for i < n. */
void mura_bf16_n(uint16_t *d, const float *s, size_t n);
/* mura_sgemm's product with A and B rounded to bf16 and the sums in fp32
 * (PyTorch autocast's precision); only where mura_bf16_supported(). */
void mura_sbgemm(struct mura_threads *p, int trans_a, int trans_b, int m, int n, int k,
                 float alpha, const float *a, int lda, const float *b, int ldb,
                 float beta, float *c, int ldc);
struct mura_bn_post;  /* below, with the batch norm */
/* C (m x n) = A relu(B ka + kb), A m x k and B k x n row-major, ka and kb
 * per row of B, applied (without contraction) while B is packed: a batch
 * norm + ReLU folded into a 1x1 convolution (mura_conv_forward_bn); ka
 * NULL: B as it is.  Then, where post is not NULL, C taken through it
 * (bn.c's mura_bn_post, add with C's row stride) a block at a time as its
 * products complete, bit for bit mura_bn_post's values. */
void mura_sbgemm_bn(struct mura_threads *p, int m, int n, int k, const float *a, int lda, const float *b,
                    int ldb, const float *ka, const float *kb, float *c, int ldc,
                    const struct mura_bn_post *post);
/* C = A im2col(x) + beta C for a k x k "same" convolution (stride 1) of x
 * [kin][images][h][w], C m x images h w: im2col read as it is packed, never
 * written; post as for mura_sbgemm_bn.  Only where mura_bf16_supported(). */
void mura_sbgemm_conv(struct mura_threads *p, int m, int kin, const float *a, const float *x, int images,
                      int h, int w, int k, float beta, float *c, const struct mura_bn_post *post);
/* gw (m x (r1 - r0), row stride ldg) += dy im2col(x)^T over im2col's rows
 * [r0, r1) for the same convolution: its weight gradient, im2col read as
 * it is packed.  On the caller's thread; only where mura_bf16_supported(). */
void mura_sbgemm_conv_gw(int m, const float *dy, const float *x, int images, int h, int w, int k,
                         size_t r0, size_t r1, float *gw, size_t ldg);
/* The product in the precision bf16 says: mura_sbgemm, else mura_sgemm. */
static inline void
mura_gemm(int bf16, struct mura_threads *p, int trans_a, int trans_b, int m, int n, int k,
          float alpha, const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc)
{
	(bf16 ? mura_sbgemm : mura_sgemm)(p, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

/* fn sums v[0..n) over the processes; buf holds MURA_BN_SYNC_FLOATS(c)
 * doubles for batch norms of up to c channels. */
struct mura_bn_sync {
	void (*fn)(void *arg, double *v, size_t n);
	void *arg;
	double *buf;
	size_t c;
};
#define MURA_BN_SYNC_FLOATS(c) (5 * (size_t)(c) + 1)

/* conv3.c: an empty set of kept packed weights (NULL when out of memory),
 * and its release. */
struct mura_packs;
struct mura_packs *mura_packs_new(void);
void mura_packs_free(struct mura_packs *p);

double mura_nn_clock(void);  /* seconds, monotonic */

static inline double
mura_prof_start(const struct mura_nn_ctx *ctx)
{
	return ctx->prof ? mura_nn_clock() : 0;
}

static inline void
mura_prof_stop(struct mura_nn_ctx *ctx, int kind, double t0, double flop)
{
	if (ctx->prof) {
		ctx->prof->sec[kind] += mura_nn_clock() - t0;
		ctx->prof->flop[kind] += flop;
		ctx->prof->calls[kind]++;
	}
}

/* Run fn(arg, lo, hi) over [0, n) on ctx's threads in parts of at least
 * grain items, its time counted under kind (enum mura_prof_kind): the
 * driver of the elementwise, pooling and transformer loops. */
static inline void
mura_nn_for(struct mura_nn_ctx *ctx, int kind, size_t n, size_t grain,
            void (*fn)(void *arg, size_t lo, size_t hi), void *arg)
{
	const double t0 = mura_prof_start(ctx);

	mura_threads_for(ctx->threads, n, grain, fn, arg);
	mura_prof_stop(ctx, kind, t0, 0);
}

/* An elementwise loop's operands: y[i] = f(a[i], b[i]) (b may be unused),
 * added into y when acc.  Parts hold at least MURA_EW_GRAIN values: below
 * that, handing a part to another thread costs more than it saves. */
#define MURA_EW_GRAIN 32768
struct mura_ew_job {
	const float *a, *b;
	float *y;
	int acc;
};

/* Output size along one axis of a k-wide window moved by stride over in
 * values padded by pad on both sides (floor mode); < 1 when in is too small. */
static inline int mura_window_out(int in, int k, int stride, int pad)
{
	return in + 2 * pad < k ? 0 : (in + 2 * pad - k) / stride + 1;
}

/* ---- conv.c: 2-D convolution ------------------------------------------ */
struct mura_conv {
	int cin, cout, k, stride, pad;
	float *w, *gw;   /* [cout][cin][k][k], torchvision's layout */
	float *b, *gb;   /* [cout], or NULL without bias */
};
/* Floats of ctx scratch that forward and backward need for input x. */
size_t mura_conv_scratch(const struct mura_conv *cv, const struct mura_fm *x, int nthreads);
void mura_conv_forward(struct mura_nn_ctx *ctx, const struct mura_conv *cv,
                       const struct mura_fm *x, struct mura_fm *y);
/* A 1x1 convolution without bias in bf16 (ctx->bf16) of relu(x ka + kb),
 * ka and kb per channel of x (mura_bn_map): the batch norm + ReLU folded
 * into the product, the same values bit for bit as mura_bn_forward then
 * mura_conv_forward.  Only where mura_conv_folds_bn. */
int mura_conv_folds_bn(const struct mura_nn_ctx *ctx, const struct mura_conv *cv);
void mura_conv_forward_bn(struct mura_nn_ctx *ctx, const struct mura_conv *cv, const struct mura_fm *x,
                          const float *ka, const float *kb, struct mura_fm *y);
/* y = post(conv(x)) in evaluation, no bias: the convolution's batch norm
 * + ReLU and a residual block's shortcut (mura_bn_post), x taken as
 * relu(x xa + xb) where xa is not NULL (as mura_conv_forward_bn; only where
 * mura_conv_folds_bn).  In bf16 through the GEMM, post is applied to each
 * block of the product while it is in cache, the convolution's own output
 * never written; else after it.  The values of mura_conv_forward (or
 * _bn) then mura_bn_post, bit for bit. */
void mura_conv_forward_post(struct mura_nn_ctx *ctx, const struct mura_conv *cv, const struct mura_fm *x,
                            const float *xa, const float *xb, const struct mura_bn_post *post,
                            struct mura_fm *y);
/* Adds to cv->gw (and cv->gb); writes (acc: adds to) dx unless dx is NULL. */
void mura_conv_backward(struct mura_nn_ctx *ctx, const struct mura_conv *cv,
                        const struct mura_fm *x, const struct mura_fm *dy,
                        struct mura_fm *dx, int acc);

/* conv3.c: the 3x3, stride 1, padding 1 convolution without im2col, for
 * conv.c: y = conv(x), dx (+)= the convolution's dx, gw += its weight
 * gradient (not gb).  Each uses at most mura_conv3_scratch floats of ctx
 * scratch.  mura_conv3_pays: whether the forward kernel (and so dx) beats
 * im2col + GEMM for cout output channels of h x w (measured: see conv3.c). */
size_t mura_conv3_scratch(int cin, int cout, int n, int h, int w);
int mura_conv3_pays(int cout, int h, int w);
/* Whether the forward kernel (and so dx) runs on bf16 pairs in ctx's
 * precision (bf16 with AVX512-BF16, the AVX-512 kernel picked); elsewhere
 * in bf16 conv3.c's kernels run in fp32 on operands rounded to bf16. */
int mura_conv3_bf16(const struct mura_nn_ctx *ctx);
void mura_conv3_forward(struct mura_nn_ctx *ctx, const struct mura_conv *cv,
                        const struct mura_fm *x, struct mura_fm *y);
void mura_conv3_dx(struct mura_nn_ctx *ctx, const struct mura_conv *cv, const struct mura_fm *dy,
                   struct mura_fm *dx, int acc);
void mura_conv3_grad_w(struct mura_nn_ctx *ctx, const struct mura_conv *cv,
                       const struct mura_fm *x, const struct mura_fm *dy);
/* conv3.c's kernel by channels, for any window, stride and padding: y (acc:
 * +=) conv(x), or with flip (a "same" convolution) the dx from x = dy, where
 * mura_convc_pays (measured: see conv3.c). */
int mura_convc_pays(const struct mura_conv *cv, int flip);
size_t mura_convc_scratch(const struct mura_conv *cv, const struct mura_fm *x, int flip);
void mura_convc_forward(struct mura_nn_ctx *ctx, const struct mura_conv *cv, int flip,
                        const struct mura_fm *x, float *y, int acc);
/* Its weight gradient, gw += (not gb), with mura_convc_grad_w_scratch
 * floats, where mura_convc_grad_w_pays (measured: see conv3.c). */
int mura_convc_grad_w_pays(const struct mura_conv *cv);
size_t mura_convc_grad_w_scratch(const struct mura_conv *cv, const struct mura_fm *x);
void mura_convc_grad_w(struct mura_nn_ctx *ctx, const struct mura_conv *cv, const struct mura_fm *x,
                       const struct mura_fm *dy);

/* ---- bn.c: 2-D batch normalisation, optionally followed by ReLU --------- */
struct mura_bn {
	int c;
	float *w, *gw, *b, *gb;      /* affine weight and bias, and their gradients */
	float *rmean, *rvar;         /* running statistics (buffers) */
	int64_t *nbt;                /* num_batches_tracked */
	float *mean, *invstd;        /* of the last training forward, for backward */
	float momentum, eps;         /* 0.1 and 1e-5, as torch.nn.BatchNorm2d */
	float *scale, *shift;        /* the last training forward's y = x * scale + shift
	                                (before the ReLU), for mura_bn_forward_saved; NULL:
	                                not kept */
};
/* train: batch statistics, running ones updated (needs n*h*w > 1); else the
 * running statistics.  relu: y = max(0, bn(x)).  y must not alias x. */
void mura_bn_forward(struct mura_nn_ctx *ctx, const struct mura_bn *bn, const struct mura_fm *x,
                     struct mura_fm *y, int train, int relu);
/* Per-channel batch statistics of a training forward (the mean and the
 * biased variance, in double), kept for the channels [0, known) of a buffer
 * that several batch norms normalise prefixes of; mean and var hold c
 * values.  known = 0 whenever those channels change. */
struct mura_bn_stats {
	double *mean, *var;
	int c, known;
};
/* mura_bn_forward(train = 1), bit for bit, except that the statistics of x's
 * channels [0, st->known) are taken from st, and those of the others computed
 * and stored there (st->known becomes x->c when that is more). */
void mura_bn_forward_cached(struct mura_nn_ctx *ctx, const struct mura_bn *bn,
                            const struct mura_fm *x, struct mura_fm *y, int relu,
                            struct mura_bn_stats *st);
/* mura_bn_forward (st NULL) or mura_bn_forward_cached (train, st), all but
 * y: the per-channel map y = relu(x ka + kb) it would apply, into ka and kb
 * (x->c floats each; in training bn->scale and bn->shift are kept too), for
 * mura_conv_forward_bn to apply. */
void mura_bn_map(struct mura_nn_ctx *ctx, const struct mura_bn *bn, const struct mura_fm *x, int train,
                 struct mura_bn_stats *st, float *ka, float *kb);
/* What follows a convolution c: its batch norm (ka, kb per channel:
 * mura_bn_map's), a residual block's shortcut r where add is not NULL, and
 * the ReLU: y = relu(c ka + kb), or relu((c ka + kb) + r) with r = add (c's
 * layout) or, where da is not NULL, (add da + db) (the shortcut's own
 * batch norm).  What mura_bn_forward of each, then mura_add_relu_forward,
 * give, bit for bit, without writing the normalised maps. */
struct mura_bn_post {
	const float *ka, *kb, *add, *da, *db;
};
/* y = p applied to c, in one pass; y may be c->d. */
void mura_bn_post(struct mura_nn_ctx *ctx, const struct mura_fm *c, const struct mura_bn_post *p, float *y);
/* The last training forward's y again, from the same x, with the affine map
 * that forward applied (bn->scale, bn->shift): bit-identical to it, and no
 * statistics computed or updated, nor num_batches_tracked.  For recomputing
 * an output in backward instead of keeping it. */
void mura_bn_forward_saved(struct mura_nn_ctx *ctx, const struct mura_bn *bn,
                           const struct mura_fm *x, struct mura_fm *y, int relu);
/* Needs x and the forward's y (for the ReLU's mask); same train and relu.
 * dx may be NULL (only the parameters' gradients), or alias dy. */
void mura_bn_backward(struct mura_nn_ctx *ctx, const struct mura_bn *bn, const struct mura_fm *x,
                      const struct mura_fm *y, const struct mura_fm *dy, struct mura_fm *dx,
                      int train, int relu, int acc);

/* ---- pool.c: pooling ------------------------------------------------------ */
struct mura_maxpool {
	int k, stride, pad;
	int32_t *arg;    /* per output value, the index in its input plane of the max,
	                    for backward; NULL: not kept (evaluation) */
};
void mura_maxpool_forward(struct mura_nn_ctx *ctx, struct mura_maxpool *mp,
                          const struct mura_fm *x, struct mura_fm *y);
void mura_maxpool_backward(struct mura_nn_ctx *ctx, const struct mura_maxpool *mp,
                           const struct mura_fm *dy, struct mura_fm *dx, int acc);
/* Average pooling, k x k window, no padding (DenseNet's transitions). */
void mura_avgpool_forward(struct mura_nn_ctx *ctx, int k, int stride,
                          const struct mura_fm *x, struct mura_fm *y);
void mura_avgpool_backward(struct mura_nn_ctx *ctx, int k, int stride,
                           const struct mura_fm *dy, struct mura_fm *dx, int acc);
/* Global average pooling: x [c][n][h][w] -> y [n][c], row-major. */
void mura_gap_forward(struct mura_nn_ctx *ctx, const struct mura_fm *x, float *y);
void mura_gap_backward(struct mura_nn_ctx *ctx, const float *dy, struct mura_fm *dx, int acc);

/* ---- linear.c: fully connected layer, x [n][in] -> y [n][out] ----------- */
struct mura_linear {
	int in, out;
	float *w, *gw;   /* [out][in] */
	float *b, *gb;   /* [out], or NULL */
};
void mura_linear_forward(struct mura_nn_ctx *ctx, const struct mura_linear *l, int n,
                         const float *x, float *y);
void mura_linear_backward(struct mura_nn_ctx *ctx, const struct mura_linear *l, int n,
                          const float *x, const float *dy, float *dx, int acc);

/* ---- act.c: elementwise operations over n values --------------------------- */
void mura_relu_forward(struct mura_nn_ctx *ctx, size_t n, const float *x, float *y);
/* Uses the forward's output y; dx may alias dy. */
void mura_relu_backward(struct mura_nn_ctx *ctx, size_t n, const float *y, const float *dy,
                        float *dx, int acc);
/* g = g where y > 0, else 0, in place, and copy = the same (no aliasing). */
void mura_relu_backward_tee(struct mura_nn_ctx *ctx, size_t n, const float *y, float *g, float *copy);
void mura_sigmoid_forward(struct mura_nn_ctx *ctx, size_t n, const float *x, float *y);
void mura_sigmoid_backward(struct mura_nn_ctx *ctx, size_t n, const float *y, const float *dy,
                           float *dx, int acc);
/* Residual addition y = a + b (y may alias a or b); its backward hands dy
 * to both inputs, which is mura_add_backward once per input. */
void mura_add_forward(struct mura_nn_ctx *ctx, size_t n, const float *a, const float *b, float *y);
/* y = relu(a + b), as the two in turn; y may alias a or b. */
void mura_add_relu_forward(struct mura_nn_ctx *ctx, size_t n, const float *a, const float *b,
                           float *y);
void mura_add_backward(struct mura_nn_ctx *ctx, size_t n, const float *dy, float *dx, int acc);
/* Inverted dropout as torch.nn.Dropout: each value kept with probability
 * 1 - p and scaled by 1 / (1 - p); mask (n floats) keeps the factors. */
void mura_dropout_forward(struct mura_nn_ctx *ctx, size_t n, float p, struct mura_rng *rng,
                          const float *x, float *mask, float *y);
void mura_dropout_backward(struct mura_nn_ctx *ctx, size_t n, const float *mask,
                           const float *dy, float *dx, int acc);

/* ---- concat.c: channel concatenation -------------------------------------- */
/* y gets x[0], ..., x[nx - 1] one after the other along channels. */
void mura_concat_forward(struct mura_nn_ctx *ctx, int nx, const struct mura_fm *x, struct mura_fm *y);
/* dx[i] gets its channels of dy; a dx[i].d of NULL is skipped. */
void mura_concat_backward(struct mura_nn_ctx *ctx, int nx, const struct mura_fm *dy,
                          struct mura_fm *dx, int acc);

/* ---- concat.c, too: to and from PyTorch's [n][c][h][w] ------------------------- */
void mura_fm_from_nchw(struct mura_nn_ctx *ctx, const float *src, struct mura_fm *dst);
void mura_fm_to_nchw(struct mura_nn_ctx *ctx, const struct mura_fm *src, float *dst);

#endif
