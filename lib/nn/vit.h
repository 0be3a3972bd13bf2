/*
 * vit.h - the operations of a Vision Transformer, each with its forward and
 * its backward, for the ResNet50 + ViT hybrid (hybrid.c).
 *
 * A transformer works on tokens, not feature maps: a sequence of T vectors
 * of D values per image, kept as row-major matrices [n][T][D] (one row per
 * token, the batch outside), so that each linear layer is one matrix
 * product of n*T rows (mura_linear, ops.h) and each head of the attention
 * reads its queries, keys and values as strided sub-matrices of the qkv
 * projection, with no copy.  The feature map enters through
 * mura_tokens_forward, which transposes [D][n][h][w] into that layout.
 *
 * The conventions are ops.h's: parameter gradients accumulate (+=); input
 * gradients are written, or added when `acc` is non-zero; a NULL input
 * gradient means "not needed"; loops and GEMMs run on ctx->threads; scratch
 * comes from ctx->scratch, sized with the *_scratch() functions.
 */
#ifndef MURA_NN_VIT_H
#define MURA_NN_VIT_H

#include <stddef.h>

#include "ops.h"

/* ---- layer normalisation over the last axis (torch.nn.LayerNorm(d)) ------- */
struct mura_layernorm {
	int d;
	float eps;                /* timm's ViT: 1e-6 */
	float *w, *gw, *b, *gb;   /* [d] */
};
/* y = (x - mean) / sqrt(var + eps) * w + b for each of `rows` rows of d
 * values (biased variance, as PyTorch).  mean and rstd ([rows], kept for
 * backward) may be NULL when no backward follows.  y may alias x. */
void mura_layernorm_forward(struct mura_nn_ctx *ctx, const struct mura_layernorm *ln, size_t rows,
                            const float *x, float *y, float *mean, float *rstd);
/* Needs the forward's x (not aliased by its y), mean and rstd.  dx may
 * alias dy. */
void mura_layernorm_backward(struct mura_nn_ctx *ctx, const struct mura_layernorm *ln, size_t rows,
                             const float *x, const float *mean, const float *rstd,
                             const float *dy, float *dx, int acc);

/* ---- GELU, the exact form: y = x/2 (1 + erf(x / sqrt 2)) ------------------ */
void mura_gelu_forward(struct mura_nn_ctx *ctx, size_t n, const float *x, float *y);
/* Uses the forward's input x. */
void mura_gelu_backward(struct mura_nn_ctx *ctx, size_t n, const float *x, const float *dy,
                        float *dx, int acc);

/* ---- softmax along rows: rows x cols, row-major ------------------------------ */
/* y may alias x. */
void mura_softmax_forward(struct mura_nn_ctx *ctx, size_t rows, int cols, const float *x, float *y);
/* Uses the forward's output y; dx may alias dy. */
void mura_softmax_backward(struct mura_nn_ctx *ctx, size_t rows, int cols, const float *y,
                           const float *dy, float *dx, int acc);

/* ---- batched matrix products ---------------------------------------------- */
/* Matrix b of a batch sits at d + b * stride, its rows ld floats apart. */
struct mura_mat {
	float *d;
	int ld;
	size_t stride;
};
/* C_b = alpha op(A_b) op(B_b) + beta C_b for b in [0, batch); op(A_b) is
 * m x k (A_b, or its transpose with ta), op(B_b) k x n. */
void mura_bmm_forward(struct mura_nn_ctx *ctx, int batch, int ta, int tb, int m, int n, int k,
                      float alpha, struct mura_mat a, struct mura_mat b, float beta, struct mura_mat c);
/* From dC_b, the gradients of C_b = alpha op(A_b) op(B_b): dA_b and dB_b
 * written (acc: added); a .d of NULL is skipped. */
void mura_bmm_backward(struct mura_nn_ctx *ctx, int batch, int ta, int tb, int m, int n, int k,
                       float alpha, struct mura_mat a, struct mura_mat b, struct mura_mat dc,
                       struct mura_mat da, struct mura_mat db, int acc);

/* ---- multi-head self-attention (timm's Attention, between qkv and proj) ---- */
struct mura_attention {
	int heads, tokens, dim;   /* H, T, D; D a multiple of H */
};
/* Floats of ctx scratch that forward (p NULL) and backward need. */
size_t mura_attention_scratch(const struct mura_attention *a, int nthreads);
/*
 * qkv [n][T][3D] is the qkv linear's output: row t holds q(t), k(t), v(t),
 * each D values, head h at columns [h D/H, (h + 1) D/H) of each.  Per image
 * and head, P = softmax(Q K^T / sqrt(D/H)) and O = P V; o [n][T][D] gets
 * head h's O at those columns (timm's transpose(1, 2).reshape).  p
 * [n][H][T][T] keeps P for backward; NULL: not kept (scratch is used).
 */
void mura_attention_forward(struct mura_nn_ctx *ctx, const struct mura_attention *a, int n,
                            const float *qkv, float *p, float *o);
void mura_attention_backward(struct mura_nn_ctx *ctx, const struct mura_attention *a, int n,
                             const float *qkv, const float *p, const float *dout, float *dqkv, int acc);

/* ---- tokens: a feature map to a sequence with a [CLS] token in front ---------- */
/* f [D][n][h][w] -> y [n][1 + h w][D]: row 0 of each image is cls [D], row
 * 1 + t is f's position t in raster order (timm's flatten(2).transpose(1, 2)
 * and torch.cat((cls_token, x), 1)). */
void mura_tokens_forward(struct mura_nn_ctx *ctx, const struct mura_fm *f, const float *cls, float *y);
/* dcls (if not NULL) gets the sum over images of row 0 (+=); df (if not
 * NULL) the other rows, transposed back (acc: added). */
void mura_tokens_backward(struct mura_nn_ctx *ctx, const float *dy, struct mura_fm *df, float *dcls,
                          int acc);

/* ---- position embeddings ---------------------------------------------------- */
/* y[i][t][c] = x[i][t][c] + pos[t][c] for each of n images of T tokens of
 * D values; y may alias x. */
void mura_posembed_forward(struct mura_nn_ctx *ctx, int n, int t, int d, const float *x,
                           const float *pos, float *y);
/* dpos (if not NULL) += the sum over images of dy; dx (if not NULL) gets dy
 * (acc: added); dx may alias dy. */
void mura_posembed_backward(struct mura_nn_ctx *ctx, int n, int t, int d, const float *dy,
                            float *dx, float *dpos, int acc);
/*
 * A grid of vectors src [gh][gw][D] resampled to dst [h][w][D] as
 * torch.nn.functional.interpolate(mode='bilinear', align_corners=False,
 * antialias=False) resamples the map [1][D][gh][gw]: what timm's
 * resample_abs_pos_embed does (with bilinear) when a ViT meets another
 * input size than the one its position embeddings were made for.
 */
void mura_resample_forward(struct mura_nn_ctx *ctx, int gh, int gw, int h, int w, int d,
                           const float *src, float *dst);
/* dsrc += what each source vector contributed to dst, weighted by ddst. */
void mura_resample_backward(struct mura_nn_ctx *ctx, int gh, int gw, int h, int w, int d,
                            const float *ddst, float *dsrc);

#endif
