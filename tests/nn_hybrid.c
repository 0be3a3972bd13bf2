/*
 * nn_hybrid.c - the ResNet50 + ViT hybrid of lib/nn/model.h without a peer:
 * its state's names and shapes (torchvision's for the backbone, timm's for
 * the transformer), timm's initialisation, the metadata that records its
 * shape, a torchvision resnet50 file as its backbone, an evaluation plan
 * giving what a training plan gives, freezing, dropout, the refusals of a
 * configuration that does not fit, and parameter gradients against central
 * differences through the whole network, at the size its position
 * embeddings were made for and at another.
 *
 * With arguments it is the C side of tests/t-hybrid.sh instead:
 *   nn_hybrid parity MODEL.safetensors INPUT.safetensors OUT.safetensors [fp32|bf16]
 * loads a model file written by tests/py/hybrid_ref.py (its configuration
 * from its metadata), runs the input batch x through an evaluation plan's
 * forward, then in a training plan an evaluation forward, a training
 * forward and a backward from dlogits, then with the backbone frozen a
 * training forward and a backward; writes the logits, the state after the
 * training forward and the gradients to OUT, and the model as it stands
 * after the training forward to OUT.model.  bf16: the model's precision
 * (model.h's enum mura_precision; an error where the CPU lacks AVX512-BF16).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "nn/model.h"
#include "rng.h"
#include "safetensors.h"
#include "test.h"

static char tmpdir[] = "/tmp/nn_hybrid.XXXXXX";

static void
small(struct mura_model_config *c, int stage, int arch)
{
	mura_model_config_default(c);
	c->arch = arch;
	c->threads = 2;
	c->seed = 3;
	c->input_h = c->input_w = 64;
	c->hybrid_stage = stage;
	c->vit_dim = 32, c->vit_depth = 2, c->vit_heads = 4, c->vit_mlp = 2;
}

static struct mura_model *
make_small(int stage)
{
	struct mura_model_config c;
	small(&c, stage, MURA_ARCH_HYBRID);
	struct mura_model *m = mura_model_create(&c);
	if (!m)
		printf("FAIL: create a hybrid: %s\n", mura_error_get());
	return m;
}

static float *
random_batch(int n, int h, int w, uint64_t seed)
{
	struct mura_rng r;
	size_t sz = (size_t)n * 3 * h * w;
	float *x = malloc(sz * sizeof *x);

	mura_rng_seed(&r, seed);
	for (size_t i = 0; i < sz; i++)
		x[i] = (float)mura_rng_normal(&r);
	return x;
}

static int
shape_is(const struct mura_model_tensor *t, int ndim, int64_t a, int64_t b, int64_t c, int64_t d)
{
	int64_t want[4] = {a, b, c, d};
	if (!t || t->ndim != ndim)
		return 0;
	for (int i = 0; i < ndim; i++)
		if (t->shape[i] != want[i])
			return 0;
	return 1;
}

static double
max_abs(const float *v, size_t n)
{
	double m = 0;
	for (size_t i = 0; i < n; i++)
		m = fmax(m, fabs(v[i]));
	return m;
}

/* ---- the state ------------------------------------------------------------ */
static void
check_state(void)
{
	struct mura_model *m = make_small(3);
	const struct mura_model_tensor *t;

	if (!m)
		return;
	CHECK("hybrid: config says head vit", mura_model_config(m)->head == MURA_HEAD_VIT);
	CHECK("hybrid stage 3: no layer4, layer3.5 is the last block",
	      !mura_model_tensor_find(m, "layer4.0.conv1.weight") &&
	          mura_model_tensor_find(m, "layer3.5.bn3.running_var"));
	CHECK("hybrid: cls_token [1, 1, 32], pos_embed [1, 17, 32] (a 4x4 grid at 64x64)",
	      shape_is(mura_model_tensor_find(m, "cls_token"), 3, 1, 1, 32, 0) &&
	          shape_is(mura_model_tensor_find(m, "pos_embed"), 3, 1, 17, 32, 0));
	CHECK("hybrid: patch_embed.proj 1x1 1024 -> 32 with bias",
	      shape_is(mura_model_tensor_find(m, "patch_embed.proj.weight"), 4, 32, 1024, 1, 1) &&
	          shape_is(mura_model_tensor_find(m, "patch_embed.proj.bias"), 1, 32, 0, 0, 0));
	CHECK("hybrid: blocks.1 has timm's names and shapes",
	      shape_is(mura_model_tensor_find(m, "blocks.1.norm1.weight"), 1, 32, 0, 0, 0) &&
	          shape_is(mura_model_tensor_find(m, "blocks.1.attn.qkv.weight"), 2, 96, 32, 0, 0) &&
	          shape_is(mura_model_tensor_find(m, "blocks.1.attn.qkv.bias"), 1, 96, 0, 0, 0) &&
	          shape_is(mura_model_tensor_find(m, "blocks.1.attn.proj.weight"), 2, 32, 32, 0, 0) &&
	          shape_is(mura_model_tensor_find(m, "blocks.1.norm2.bias"), 1, 32, 0, 0, 0) &&
	          shape_is(mura_model_tensor_find(m, "blocks.1.mlp.fc1.weight"), 2, 64, 32, 0, 0) &&
	          shape_is(mura_model_tensor_find(m, "blocks.1.mlp.fc2.weight"), 2, 32, 64, 0, 0) &&
	          !mura_model_tensor_find(m, "blocks.2.norm1.weight"));
	CHECK("hybrid: norm and a one-output head",
	      shape_is(mura_model_tensor_find(m, "norm.weight"), 1, 32, 0, 0, 0) &&
	          shape_is(mura_model_tensor_find(m, "head.weight"), 2, 1, 32, 0, 0) &&
	          shape_is(mura_model_tensor_find(m, "head.bias"), 1, 1, 0, 0, 0));
	/* the head, for freezing, starts at cls_token and runs to the end */
	int head_ok = 1, seen = 0;
	for (size_t i = 0; i < mura_model_tensor_count(m); i++) {
		t = mura_model_tensor_at(m, i);
		seen |= strcmp(t->name, "cls_token") == 0;
		head_ok &= t->head == seen;
	}
	CHECK("hybrid: the projection and the transformer are the head, the ResNet the backbone", head_ok && seen);

	/* timm's initialisation */
	double s = 0, ss = 0, big = 0, b = 0;
	size_t cnt = 0;
	const char *normal[] = {"blocks.0.attn.qkv.weight", "blocks.0.mlp.fc1.weight", "blocks.1.mlp.fc2.weight",
	                        "pos_embed", "cls_token", "head.weight"};
	for (size_t k = 0; k < sizeof normal / sizeof normal[0]; k++) {
		t = mura_model_tensor_find(m, normal[k]);
		for (size_t i = 0; i < t->n; i++)
			s += t->data[i], ss += (double)t->data[i] * t->data[i], big = fmax(big, fabs(t->data[i]));
		cnt += t->n;
	}
	double sd = sqrt(ss / cnt - (s / cnt) * (s / cnt));
	printf("  linear weights, cls_token, pos_embed: mean %.2g, std %.4f, max |w| %.3f over %zu\n", s / cnt,
	       sd, big, cnt);
	CHECK("hybrid init: Linear weights, cls_token, pos_embed ~ N(0, 0.02^2)",
	      fabs(sd - 0.02) < 0.001 && fabs(s / cnt) < 0.001 && big < 0.15);
	const char *zero[] = {"blocks.0.attn.qkv.bias", "blocks.1.mlp.fc1.bias", "head.bias", "norm.bias",
	                      "blocks.0.norm2.bias"};
	for (size_t k = 0; k < sizeof zero / sizeof zero[0]; k++)
		b = fmax(b, max_abs(mura_model_tensor_find(m, zero[k])->data, mura_model_tensor_find(m, zero[k])->n));
	t = mura_model_tensor_find(m, "blocks.1.norm1.weight");
	int ones = 1;
	for (size_t i = 0; i < t->n; i++)
		ones &= t->data[i] == 1;
	CHECK("hybrid init: biases 0, LayerNorm weight 1", b == 0 && ones);
	t = mura_model_tensor_find(m, "patch_embed.proj.weight");
	CHECK("hybrid init: the projection as torch.nn.Conv2d, U(+-1/sqrt(1024))",
	      max_abs(t->data, t->n) <= 1 / 32.0 && max_abs(t->data, t->n) > 0.9 / 32.0);
	mura_model_free(m);
}

/* ---- configuration ------------------------------------------------------------ */
static void
check_config(void)
{
	struct mura_model_config c;
	struct mura_model *m;

	small(&c, 3, MURA_ARCH_HYBRID);
	c.vit_heads = 5;
	m = mura_model_create(&c);
	CHECK("hybrid: D not a multiple of H is refused",
	      !m && strstr(mura_error_get(), "not a multiple of H"));
	small(&c, 5, MURA_ARCH_HYBRID);
	m = mura_model_create(&c);
	CHECK("hybrid: stage 5 is refused", !m && strstr(mura_error_get(), "layer3 or layer4"));
	small(&c, 4, MURA_ARCH_HYBRID);
	c.head = MURA_HEAD_CONV;
	m = mura_model_create(&c);
	CHECK("hybrid: the conv head is refused", !m && strstr(mura_error_get(), "transformer head"));
	small(&c, 4, MURA_ARCH_RESNET50);
	c.head = MURA_HEAD_VIT;
	m = mura_model_create(&c);
	CHECK("resnet50 with the vit head is refused", !m && strstr(mura_error_get(), "hybrid"));
	CHECK("mura_arch_parse(\"hybrid\"), mura_head_parse(\"vit\")",
	      mura_arch_parse("hybrid") == MURA_ARCH_HYBRID && mura_head_parse("vit") == MURA_HEAD_VIT);
	mura_model_config_default(&c);
	CHECK("defaults: stage 4, D 256, L 4, H 8, R 4",
	      c.hybrid_stage == 4 && c.vit_dim == 256 && c.vit_depth == 4 && c.vit_heads == 8 && c.vit_mlp == 4);
	c.arch = MURA_ARCH_HYBRID;
	c.threads = 1;
	m = mura_model_create(&c);
	const struct mura_model_tensor *t = m ? mura_model_tensor_find(m, "pos_embed") : NULL;
	CHECK("default hybrid at 320x320: a 10x10 grid of 256 (pos_embed [1, 101, 256])",
	      shape_is(t, 3, 1, 101, 256, 0) && mura_model_config(m)->vit_grid_h == 10);
	mura_model_free(m);
}

/* ---- files ----------------------------------------------------------------------- */
static void
check_files(void)
{
	struct mura_model *m = make_small(4), *r50 = NULL, *h3 = NULL;
	struct mura_model_config c;
	struct mura_st_file f;
	char path[300], info[512];

	if (!m)
		return;
	snprintf(path, sizeof path, "%s/h.safetensors", tmpdir);
	mura_model_config_default(&c);
	CHECK("hybrid: saved, its metadata gives its shape back",
	      mura_model_save(m, path, NULL, NULL, 0, NULL, 0) == 0 && mura_st_open(&f, path) == 0 &&
	          mura_model_config_read(&f, &c) == 1 && c.arch == MURA_ARCH_HYBRID && c.head == MURA_HEAD_VIT &&
	          c.hybrid_stage == 4 && c.vit_dim == 32 && c.vit_depth == 2 && c.vit_heads == 4 && c.vit_mlp == 2 &&
	          c.vit_grid_h == 2 && c.vit_grid_w == 2 && !strcmp(mura_st_meta(&f, "vit_grid"), "2x2"));
	mura_st_free(&f);
	/* the grid stays what the file says whatever input size the user has now */
	c.input_h = c.input_w = 96;
	c.threads = 2;
	struct mura_model *back = mura_model_create(&c);
	CHECK("hybrid: loads back into the model its metadata describes, at another input size",
	      back && mura_model_load_path(back, path, info, sizeof info) == 0 && !info[0] &&
	          !memcmp(mura_model_tensor_find(back, "pos_embed")->data,
	                  mura_model_tensor_find(m, "pos_embed")->data, 5 * 32 * sizeof(float)));
	mura_model_free(back);

	/* A torchvision resnet50 file: our resnet50's tensors, an ImageNet fc, no metadata. */
	small(&c, 4, MURA_ARCH_RESNET50);
	c.seed = 9;
	r50 = mura_model_create(&c);
	size_t nt = mura_model_tensor_count(r50);
	struct mura_st_entry *e = calloc(nt, sizeof *e);
	float *fc = calloc((size_t)1000 * 2048, sizeof *fc);
	for (size_t i = 0; i < nt; i++) {
		const struct mura_model_tensor *t = mura_model_tensor_at(r50, i);
		e[i].name = t->name;
		e[i].ndim = t->ndim;
		memcpy(e[i].shape, t->shape, sizeof t->shape);
		e[i].dtype = t->kind == MURA_TENSOR_COUNT ? MURA_ST_I64 : MURA_ST_F32;
		e[i].data = t->kind == MURA_TENSOR_COUNT ? (const void *)t->count : (const void *)t->data;
		if (!strcmp(t->name, "fc.weight"))
			e[i].shape[0] = 1000, e[i].data = fc;
		if (!strcmp(t->name, "fc.bias"))
			e[i].shape[0] = 1000, e[i].data = fc;
	}
	snprintf(path, sizeof path, "%s/resnet50.safetensors", tmpdir);
	mura_st_write(path, e, nt, NULL, NULL, 0);
	float cls0 = mura_model_tensor_find(m, "cls_token")->data[3];
	int rc = mura_model_load_path(m, path, info, sizeof info);
	printf("  stage 4: %s\n", info);
	CHECK("a torchvision resnet50 into the hybrid's backbone: fc dropped, a fresh transformer",
	      rc == 0 && strstr(info, "fc.* dropped") && strstr(info, "fresh transformer") && !strstr(info, "layer4") &&
	          !memcmp(mura_model_tensor_find(m, "layer4.2.conv3.weight")->data,
	                  mura_model_tensor_find(r50, "layer4.2.conv3.weight")->data, 2048 * 512 * sizeof(float)) &&
	          mura_model_tensor_find(m, "cls_token")->data[3] != cls0);
	h3 = make_small(3);
	rc = h3 ? mura_model_load_path(h3, path, info, sizeof info) : -1;
	printf("  stage 3: %s\n", info);
	CHECK("... and into a hybrid cut after layer3: layer4 dropped too",
	      rc == 0 && strstr(info, "fc.* dropped") && strstr(info, "layer4.* dropped") &&
	          !memcmp(mura_model_tensor_find(h3, "layer3.5.bn3.running_var")->data,
	                  mura_model_tensor_find(r50, "layer3.5.bn3.running_var")->data, 1024 * sizeof(float)));
	snprintf(path, sizeof path, "%s/ours50.safetensors", tmpdir);
	mura_model_save(r50, path, NULL, NULL, 0, NULL, 0);
	CHECK("... but not our own resnet50 model (its metadata says resnet50)",
	      mura_model_load_path(m, path, info, sizeof info) < 0 && strstr(mura_error_get(), "a resnet50 model"));
	free(e), free(fc);
	mura_model_free(r50), mura_model_free(h3), mura_model_free(m);
}

/* ---- plans, freezing, dropout -------------------------------------------------------- */
static void
check_run(int stage, int n, int h, int w)
{
	struct mura_model *m = make_small(stage);
	float *x = random_batch(n, h, w, 17), a[4], b[4], t1[4], dl[4] = {0.5f, -1, 0.25f, 1};
	char name[200];

	if (!m)
		return;
	int ok = mura_model_plan(m, n, h, w, 0) == 0 && mura_model_forward(m, x, n, 0, a) == 0;
	ok = ok && mura_model_plan(m, n, h, w, 1) == 0 && mura_model_forward(m, x, n, 0, b) == 0;
	double e = 0;
	for (int i = 0; i < n; i++)
		e = fmax(e, fabs(a[i] - b[i]));
	snprintf(name, sizeof name, "hybrid stage %d %dx%dx%d: an evaluation plan gives what a training plan gives",
	         stage, n, h, w);
	CHECK(name, ok && e <= 1e-6 * fmax(1, max_abs(b, (size_t)n)));

	/* frozen: the backbone gets no gradient, the transformer and projection do */
	mura_model_freeze_backbone(m, 1);
	mura_model_zero_grad(m);
	ok = mura_model_forward(m, x, n, 1, t1) == 0 && mura_model_backward(m, dl) == 0;
	double gb = 0, gh = 1;
	for (size_t i = 0; i < mura_model_tensor_count(m); i++) {
		const struct mura_model_tensor *t = mura_model_tensor_at(m, i);
		if (t->kind != MURA_TENSOR_PARAM)
			continue;
		if (t->head)
			gh = fmin(gh, max_abs(t->grad, t->n));
		else
			gb = fmax(gb, max_abs(t->grad, t->n));
	}
	size_t np, frozen = 0, backbone = 0;
	struct mura_param *p = mura_model_params(m, &np);
	for (size_t i = 0; i < np; i++)
		frozen += p[i].frozen;
	for (size_t i = 0; i < mura_model_tensor_count(m); i++)
		backbone += mura_model_tensor_at(m, i)->kind == MURA_TENSOR_PARAM && !mura_model_tensor_at(m, i)->head;
	snprintf(name, sizeof name, "hybrid stage %d frozen: every head tensor has a gradient, the backbone none", stage);
	CHECK(name, ok && gb == 0 && gh > 0 && frozen == backbone);
	mura_model_freeze_backbone(m, 0);
	mura_model_free(m);
	free(x);
}

static void
check_dropout(void)
{
	struct mura_model_config c;
	struct mura_model *m0, *m1;
	float *x = random_batch(2, 64, 64, 4), e0[2], e1[2], t1[2], t2[2];

	small(&c, 4, MURA_ARCH_HYBRID);
	m0 = mura_model_create(&c);
	c.dropout = 0.3f;
	m1 = mura_model_create(&c);
	mura_model_plan(m0, 2, 64, 64, 1);
	mura_model_plan(m1, 2, 64, 64, 1);
	mura_model_forward(m0, x, 2, 0, e0);
	mura_model_forward(m1, x, 2, 0, e1);
	mura_model_forward(m1, x, 2, 1, t1);
	mura_model_forward(m1, x, 2, 1, t2);
	CHECK("hybrid dropout: off in evaluation (the same logits as without)", e0[0] == e1[0] && e0[1] == e1[1]);
	CHECK("hybrid dropout: on in training (two forwards differ)", t1[0] != t2[0] && t1[1] != t2[1]);
	float dl[2] = {1, -1};
	mura_model_zero_grad(m1);
	CHECK("hybrid dropout: backward runs", mura_model_backward(m1, dl) == 0 &&
	      max_abs(mura_model_tensor_find(m1, "blocks.0.mlp.fc1.weight")->grad, 64 * 32) > 0);
	mura_model_free(m0), mura_model_free(m1);
	free(x);
}

/* ---- gradients through the whole network -------------------------------------------- */
static void
check_model_grad(int stage, int h, int w)
{
	const int n = 3;
	struct mura_model *m = make_small(stage);
	float *x = random_batch(n, h, w, 23), lg[3], r[3] = {0.7f, -1.1f, 0.4f};
	const char *names[] = {"cls_token", "pos_embed", "patch_embed.proj.weight", "blocks.0.norm1.weight",
	                       "blocks.0.attn.qkv.weight", "blocks.0.attn.proj.bias", "blocks.1.mlp.fc1.weight",
	                       "blocks.1.mlp.fc2.bias", "norm.weight", "head.weight", "layer3.0.conv2.weight", "layer2.1.conv1.weight",
	                       "layer3.5.bn3.bias"};
	char name[200];

	if (!m)
		return;
	/* larger weights than timm's 0.02, so the transformer's non-linear parts
	 * matter; batch norm biases of +-2, so few ReLU inputs lie near the kink
	 * (where a difference of eps crosses it) */
	struct mura_rng rr;
	mura_rng_seed(&rr, 77);
	for (size_t i = 0; i < mura_model_tensor_count(m); i++) {
		const struct mura_model_tensor *t = mura_model_tensor_at(m, i);
		size_t len = strlen(t->name);
		if (!t->head && len > 4 && !strcmp(t->name + len - 4, "bias"))  /* the ResNet's are batch norms' */
			for (size_t k = 0; k < t->n; k++)
				t->data[k] = (mura_hash_str(t->name, k) & 1) ? 2.0f : -2.0f;
		if (t->head && t->kind == MURA_TENSOR_PARAM && strcmp(t->name, "patch_embed.proj.weight"))
			for (size_t k = 0; k < t->n; k++)
				t->data[k] = (strstr(t->name, "norm") && strstr(t->name, "weight") ? 1.0f : 0.0f) +
				             (float)mura_rng_uniform(&rr, -0.3, 0.3);
	}
	mura_model_plan(m, n, h, w, 1);
	mura_model_zero_grad(m);
	mura_model_forward(m, x, n, 1, lg);
	mura_model_backward(m, r);
	double worst = 0;
	for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
		const struct mura_model_tensor *q = mura_model_tensor_find(m, names[k]);
		size_t j = (size_t)mura_hash_str(q->name, 0) % q->n, best = j;
		for (int t = 0; t < 16; t++, j = (j + 7919) % q->n)
			if (fabsf(q->grad[j]) > fabsf(q->grad[best]))
				best = j;
		j = best;
		double gmax = max_abs(q->grad, q->n), eps = 1e-2 * fmax(max_abs(q->data, q->n), 1e-2);
		float keep = q->data[j];
		double l[2];
		for (int s = 0; s < 2; s++) {
			q->data[j] = keep + (float)(s ? -eps : eps);
			mura_model_forward(m, x, n, 1, lg);
			l[s] = 0;
			for (int i = 0; i < n; i++)
				l[s] += (double)r[i] * lg[i];
		}
		q->data[j] = keep;
		double num = (l[0] - l[1]) / (2 * eps), err = fabs(num - q->grad[j]) / fmax(gmax, 1e-12);
		if (err > 2e-2)
			printf("  %s[%zu]: numeric %.6g, backward %.6g (max |grad| %.3g)\n", q->name, j, num, q->grad[j], gmax);
		worst = fmax(worst, err);
	}
	snprintf(name, sizeof name, "hybrid stage %d at %dx%d (grid %dx%d): parameter gradients = central differences",
	         stage, h, w, mura_model_config(m)->vit_grid_h, mura_model_config(m)->vit_grid_w);
	CHECK(name, worst <= 2e-2);
	mura_model_free(m);
	free(x);
}

/* ---- the parity driver ------------------------------------------------------------------ */

static int
fail(const char *what)
{
	fprintf(stderr, "nn_hybrid: %s: %s\n", what, mura_error_get());
	return 1;
}

struct outfile {
	struct mura_st_entry e[4096];
	size_t n;
};

/* Entries point into the model or the caller's buffers: written before they change. */
static void
out_add(struct outfile *o, const char *name, int ndim, const int64_t *shape, const void *data, int dtype)
{
	struct mura_st_entry *e = &o->e[o->n++];
	e->name = strdup(name);
	e->dtype = dtype;
	e->ndim = ndim;
	memcpy(e->shape, shape, (size_t)ndim * sizeof *shape);
	e->data = data;
}

static float *
copy_of(const float *v, size_t n)
{
	float *c = malloc(n * sizeof *c);
	memcpy(c, v, n * sizeof *c);
	return c;
}

/* prefix + each parameter's gradient (head only: only the head's), or each tensor's value */
static void
out_state(struct outfile *o, struct mura_model *m, const char *prefix, int grads, int head_only)
{
	char name[300];
	for (size_t i = 0; i < mura_model_tensor_count(m); i++) {
		const struct mura_model_tensor *t = mura_model_tensor_at(m, i);
		if ((grads && t->kind != MURA_TENSOR_PARAM) || (head_only && !t->head))
			continue;
		snprintf(name, sizeof name, "%s%s", prefix, t->name);
		if (t->kind == MURA_TENSOR_COUNT)
			out_add(o, name, 0, t->shape, t->count, MURA_ST_I64);
		else
			out_add(o, name, t->ndim, t->shape, copy_of(grads ? t->grad : t->data, t->n), MURA_ST_F32);
	}
}

static int
parity(char **argv)
{
	struct mura_model_config c;
	struct mura_st_file mf, in;
	char info[512];
	static struct outfile o;
	int64_t sh[1];

	mura_model_config_default(&c);
	if (mura_st_open(&mf, argv[2]) < 0 || mura_model_config_read(&mf, &c) != 1)
		return fail(argv[2]);
	c.threads = 0;
	if (argv[5] && (c.precision = mura_precision_parse(argv[5])) < 0)
		return fail(argv[5]);
	struct mura_model *m = mura_model_create(&c);
	if (!m || mura_model_load(m, &mf, info, sizeof info) < 0)
		return fail(argv[2]);
	if (info[0]) {
		fprintf(stderr, "nn_hybrid: %s: not a plain load: %s\n", argv[2], info);
		return 1;
	}
	if (mura_st_open(&in, argv[3]) < 0)
		return fail(argv[3]);
	const struct mura_st_tensor *tx = mura_st_find(&in, "x"), *td = mura_st_find(&in, "dlogits");
	if (!tx || tx->ndim != 4 || tx->shape[1] != 3 || !td || td->nelem != (uint64_t)tx->shape[0]) {
		fprintf(stderr, "nn_hybrid: %s: needs x [n, 3, h, w] and dlogits [n]\n", argv[3]);
		return 1;
	}
	int n = (int)tx->shape[0], h = (int)tx->shape[2], w = (int)tx->shape[3];
	float *x = malloc(tx->nelem * sizeof *x), *dl = malloc((size_t)n * sizeof *dl);
	float *lp = malloc((size_t)n * sizeof *lp), *le = malloc((size_t)n * sizeof *le);
	float *lt = malloc((size_t)n * sizeof *lt), *lf = malloc((size_t)n * sizeof *lf);
	mura_st_to_f32(tx, x, tx->nelem);
	mura_st_to_f32(td, dl, (uint64_t)n);
	sh[0] = n;
	if (mura_model_plan(m, n, h, w, 0) < 0 || mura_model_forward(m, x, n, 0, lp) < 0 ||
	    mura_model_plan(m, n, h, w, 1) < 0 || mura_model_forward(m, x, n, 0, le) < 0 ||
	    mura_model_forward(m, x, n, 1, lt) < 0)
		return fail("forward");
	char saved[4200];
	snprintf(saved, sizeof saved, "%s.model", argv[4]);
	if (mura_model_save(m, saved, NULL, NULL, 0, NULL, 0) < 0)
		return fail(saved);
	out_state(&o, m, "state.", 0, 0);
	mura_model_zero_grad(m);
	if (mura_model_backward(m, dl) < 0)
		return fail("backward");
	out_state(&o, m, "grad.", 1, 0);
	mura_model_freeze_backbone(m, 1);
	mura_model_zero_grad(m);
	if (mura_model_forward(m, x, n, 1, lf) < 0 || mura_model_backward(m, dl) < 0)
		return fail("frozen");
	out_state(&o, m, "frozen_grad.", 1, 1);
	out_add(&o, "logits_evalplan", 1, sh, lp, MURA_ST_F32);
	out_add(&o, "logits_eval", 1, sh, le, MURA_ST_F32);
	out_add(&o, "logits_train", 1, sh, lt, MURA_ST_F32);
	out_add(&o, "logits_frozen", 1, sh, lf, MURA_ST_F32);
	if (mura_st_write(argv[4], o.e, o.n, NULL, NULL, 0) < 0)
		return fail(argv[4]);
	mura_st_free(&in), mura_st_free(&mf);
	mura_model_free(m);
	free(x);
	free(dl);
	return 0;
}

int
main(int argc, char **argv)
{
	if ((argc == 5 || argc == 6) && strcmp(argv[1], "parity") == 0)
		return parity(argv);
	if (argc != 1) {
		fprintf(stderr, "usage: nn_hybrid [parity MODEL INPUT OUT [fp32|bf16]]\n");
		return 2;
	}
	if (!mkdtemp(tmpdir))
		return 1;
	check_state();
	check_config();
	check_files();
	check_run(3, 2, 64, 64);
	check_run(4, 3, 96, 80);
	check_dropout();
	check_model_grad(3, 64, 64);
	check_model_grad(4, 100, 70);
	char cmd[400];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		printf("  could not remove %s\n", tmpdir);
	return test_status();
}
