/*
 * model.c - the model API of model.h: configuration, the state's tensors
 * and their initialisation, safetensors load and save, the memory plan,
 * and forward and backward dispatched to the backbone and the head.
 */
#define _GNU_SOURCE  /* madvise, MADV_HUGEPAGE */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "error.h"
#include "net.h"
#include "tensor.h"
#include "util.h"

#define FORMAT "mura-model 1"

/* Every architecture: its name, backbone, and the file names torchvision
 * gives its classifier.  A new one is a new part (net.h) and a row here. */
static const struct net_arch archs[] = {
	[0] = {"unknown", NULL, 0, NULL, 0},
	[MURA_ARCH_DENSENET121] = {"densenet121", &net_densenet, 0, "classifier", NET_INIT_ZERO},
	[MURA_ARCH_DENSENET169] = {"densenet169", &net_densenet, 0, "classifier", NET_INIT_ZERO},
	[MURA_ARCH_DENSENET201] = {"densenet201", &net_densenet, 0, "classifier", NET_INIT_ZERO},
	[MURA_ARCH_RESNET18] = {"resnet18", &net_resnet, 0, "fc", NET_INIT_UNIFORM_FANIN},
	[MURA_ARCH_RESNET34] = {"resnet34", &net_resnet, 0, "fc", NET_INIT_UNIFORM_FANIN},
	[MURA_ARCH_RESNET50] = {"resnet50", &net_resnet, 0, "fc", NET_INIT_UNIFORM_FANIN},
	[MURA_ARCH_HYBRID] = {"hybrid", &net_resnet, MURA_HEAD_VIT, "fc", NET_INIT_UNIFORM_FANIN},
};
_Static_assert(sizeof archs / sizeof archs[0] == MURA_ARCH_COUNT, "a row for every enum mura_arch");

static const struct {
	const char *name;
	const struct net_part *part;
} heads[] = {
	[0] = {"unknown", NULL},
	[MURA_HEAD_FC] = {"fc", &net_head},
	[MURA_HEAD_CONV] = {"conv", &net_head},
	[MURA_HEAD_VIT] = {"vit", &net_hybrid},
};
_Static_assert(sizeof heads / sizeof heads[0] == MURA_HEAD_COUNT, "a row for every enum mura_head");

/* The architecture has the transformer head (the hybrid's own). */
static int
has_vit(int arch)
{
	return archs[arch].own_head == MURA_HEAD_VIT;
}

void
mura_model_config_default(struct mura_model_config *c)
{
	static const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};

	memset(c, 0, sizeof *c);
	c->arch = MURA_ARCH_DENSENET169;
	c->head = MURA_HEAD_FC;
	c->seed = 1;
	c->input_h = c->input_w = 320;
	c->hybrid_stage = 4;
	c->vit_dim = 256, c->vit_depth = 4, c->vit_heads = 8, c->vit_mlp = 4;
	memcpy(c->mean, mean, sizeof mean);
	memcpy(c->std, std, sizeof std);
}

int
mura_arch_parse(const char *s)
{
	for (int i = 1; i < MURA_ARCH_COUNT; i++)
		if (strcmp(s, archs[i].name) == 0)
			return i;
	return mura_error("unknown architecture '%s' (densenet121, densenet169, densenet201, "
	                  "resnet18, resnet34, resnet50, hybrid)", s);
}

int
mura_head_parse(const char *s)
{
	for (int i = 1; i < MURA_HEAD_COUNT; i++)
		if (strcmp(s, heads[i].name) == 0)
			return i;
	return mura_error("unknown head '%s' (fc, conv; vit for the hybrid)", s);
}

const char *
mura_arch_name(int arch)
{
	return archs[arch > 0 && arch < MURA_ARCH_COUNT ? arch : 0].name;
}

static const char *const precision_names[MURA_PRECISION_COUNT] = {
	[MURA_PRECISION_FP32] = "fp32",
	[MURA_PRECISION_BF16] = "bf16",
	[MURA_PRECISION_AUTO] = "auto",
};

int
mura_precision_parse(const char *s)
{
	for (int i = 0; i < MURA_PRECISION_COUNT; i++)
		if (strcmp(s, precision_names[i]) == 0)
			return i;
	return mura_error("unknown precision '%s' (fp32, bf16, auto)", s);
}

const char *
mura_precision_name(int precision)
{
	return precision >= 0 && precision < MURA_PRECISION_COUNT ? precision_names[precision] : "?";
}

int
mura_precision_resolve(int precision, int *fell_back)
{
	*fell_back = 0;
	if (precision == MURA_PRECISION_BF16 && !mura_bf16_supported())
		return mura_error("precision bf16: this CPU has no AVX512-BF16 (fp32 runs everywhere)");
	if (precision != MURA_PRECISION_AUTO)
		return precision;
	if (mura_bf16_supported())
		return MURA_PRECISION_BF16;
	*fell_back = 1;
	return MURA_PRECISION_FP32;
}

const char *
mura_head_name(int head)
{
	return heads[head > 0 && head < MURA_HEAD_COUNT ? head : 0].name;
}

static int
build(struct mura_model *m, struct net_build *b)
{
	m->head_first = (size_t)-1;
	if (m->bb->build(m, b) < 0)
		return -1;
	return m->hd->build(m, b);
}

/* Memory for big buffers, in 2 MB pages where the kernel gives them on
 * request (transparent huge pages in "madvise" mode, Debian's default):
 * fewer TLB misses in the convolutions' strided rows.  Batch 8, 320 px,
 * training step: resnet50 1.199 -> 1.183 s, densenet169 1.064 -> 1.048 s. */
static void *
huge_alloc(size_t bytes)
{
	const size_t huge = (size_t)2 << 20;
	void *p;

	if (bytes < huge)
		return aligned_alloc(64, (bytes + 63) / 64 * 64);
	bytes = (bytes + huge - 1) / huge * huge;
	if (!(p = aligned_alloc(huge, bytes)))
		return NULL;
	madvise(p, bytes, MADV_HUGEPAGE);  /* a hint: nothing to do if refused */
	return p;
}

static void *
alloc_floats(size_t n)
{
	void *p = NULL;
	size_t bytes = (n * sizeof(float) + 63) / 64 * 64;

	p = huge_alloc(bytes ? bytes : 64);
	if (p)
		memset(p, 0, bytes);
	return p;
}

/* The head an architecture with its own head (the hybrid's transformer)
 * must have, and the vit head refused elsewhere. */
static int
head_config(struct mura_model_config *c)
{
	if (!archs[c->arch].own_head) {
		if (c->head == MURA_HEAD_VIT)
			return mura_error("the vit head is the hybrid's (--arch hybrid), not %s's",
			                  mura_arch_name(c->arch));
		return 0;
	}
	if (c->head == MURA_HEAD_CONV)
		return mura_error("the hybrid has its transformer head (vit), not the conv head");
	c->head = archs[c->arch].own_head;
	return hybrid_config_check(c);
}

struct mura_model *
mura_model_create(const struct mura_model_config *cfg)
{
	struct mura_model *m;
	struct net_build b = {0};

	if (cfg->arch <= 0 || cfg->arch >= MURA_ARCH_COUNT) {
		mura_error("unknown architecture %d", cfg->arch);
		return NULL;
	}
	if (cfg->head <= 0 || cfg->head >= MURA_HEAD_COUNT) {
		mura_error("unknown head %d", cfg->head);
		return NULL;
	}
	if (!(cfg->dropout >= 0 && cfg->dropout < 1)) {
		mura_error("dropout %g is not in [0, 1)", cfg->dropout);
		return NULL;
	}
	int fell_back;
	struct mura_model_config c = *cfg;
	if (c.precision < 0 || c.precision >= MURA_PRECISION_COUNT) {
		mura_error("unknown precision %d", c.precision);
		return NULL;
	}
	if ((c.precision = mura_precision_resolve(c.precision, &fell_back)) < 0)
		return NULL;
	if (head_config(&c) < 0)
		return NULL;
	if (!(m = calloc(1, sizeof *m))) {
		mura_error("out of memory");
		return NULL;
	}
	m->cfg = c;
	m->cap.id = -1;
	m->arch = &archs[c.arch];
	m->bb = m->arch->backbone;
	m->hd = heads[c.head].part;
	mura_rng_seed(&m->rng, cfg->seed);
	if (!(m->threads = mura_threads_create(cfg->threads)))
		goto fail;
	m->ctx.threads = m->threads;
	m->ctx.bf16 = c.precision == MURA_PRECISION_BF16;

	b.m = m;
	if (build(m, &b) < 0)
		goto fail;
	m->ntensor = b.ntensor;
	m->nparam = b.nparam, m->nbuf = b.nbuf, m->ncount = b.ncount;
	m->tensor = calloc(b.ntensor, sizeof *m->tensor);
	m->param = alloc_floats(b.nparam);
	m->grad = alloc_floats(b.nparam);
	m->buf = alloc_floats(b.nbuf);
	m->work = alloc_floats(b.nwork);
	m->count = calloc(b.ncount + 1, sizeof *m->count);
	if (!m->tensor || !m->param || !m->grad || !m->buf || !m->work || !m->count) {
		mura_error("out of memory");
		goto fail;
	}
	b = (struct net_build){m, 1, 0, 0, 0, 0, 0, 0};
	if (build(m, &b) < 0)
		goto fail;

	for (size_t i = 0; i < m->ntensor; i++) {
		net_init_tensor(m, &m->tensor[i], m->tensor[i].init);
		if (m->tensor[i].t.kind == MURA_TENSOR_PARAM)
			m->nparams++;
	}
	if (!(m->params = calloc(m->nparams, sizeof *m->params))) {
		mura_error("out of memory");
		goto fail;
	}
	for (size_t i = 0, k = 0; i < m->ntensor; i++) {
		const struct mura_model_tensor *t = &m->tensor[i].t;
		if (t->kind == MURA_TENSOR_PARAM)
			m->params[k++] = (struct mura_param){t->name, t->data, t->grad, t->n, 0, 0};
	}
	return m;
fail:
	mura_model_free(m);
	return NULL;
}

void
mura_model_free(struct mura_model *m)
{
	if (!m)
		return;
	if (m->bb)
		m->bb->free(m->backbone);
	if (m->hd)
		m->hd->free(m->head);
	mura_threads_free(m->threads);
	mura_packs_free(m->ctx.packs);
	free(m->tensor);
	free(m->param);
	free(m->grad);
	free(m->buf);
	free(m->work);
	free(m->count);
	free(m->params);
	free(m->arena);
	if (m->ctx.sync)
		free(m->ctx.sync->buf);
	free(m->ctx.sync);
	free(m->cap.act);
	free(m->cap.grad);
	free(m);
}

const struct mura_model_config *
mura_model_config(const struct mura_model *m)
{
	return &m->cfg;
}

size_t
mura_model_tensor_count(const struct mura_model *m)
{
	return m->ntensor;
}

const struct mura_model_tensor *
mura_model_tensor_at(const struct mura_model *m, size_t i)
{
	return i < m->ntensor ? &m->tensor[i].t : NULL;
}

const struct mura_model_tensor *
mura_model_tensor_find(const struct mura_model *m, const char *name)
{
	for (size_t i = 0; i < m->ntensor; i++)
		if (strcmp(m->tensor[i].t.name, name) == 0)
			return &m->tensor[i].t;
	return NULL;
}

struct mura_param *
mura_model_params(struct mura_model *m, size_t *n)
{
	*n = m->nparams;
	return m->params;
}

void
mura_model_zero_grad(struct mura_model *m)
{
	memset(m->grad, 0, m->nparam * sizeof *m->grad);
}

void
mura_model_flat(struct mura_model *m, struct mura_model_flat *f)
{
	*f = (struct mura_model_flat){m->param, m->grad, m->nparam, m->buf, m->nbuf, m->count, m->ncount};
}

void
mura_model_on_grads(struct mura_model *m, void (*fn)(void *arg, size_t off), void *arg)
{
	m->grads_fn = fn;
	m->grads_arg = arg;
}

int
mura_model_sync_bn(struct mura_model *m, void (*fn)(void *arg, double *v, size_t n), void *arg)
{
	size_t c = 0;

	if (m->ctx.sync)
		free(m->ctx.sync->buf);
	free(m->ctx.sync);
	m->ctx.sync = NULL;
	if (!fn)
		return 0;
	/* the widest batch norm: its running_mean's length */
	for (size_t i = 0; i < m->ntensor; i++)
		if (m->tensor[i].t.kind == MURA_TENSOR_BUFFER && m->tensor[i].t.n > c)
			c = m->tensor[i].t.n;
	if (!(m->ctx.sync = calloc(1, sizeof *m->ctx.sync)) ||
	    !(m->ctx.sync->buf = malloc(MURA_BN_SYNC_FLOATS(c) * sizeof *m->ctx.sync->buf))) {
		free(m->ctx.sync);
		m->ctx.sync = NULL;
		return mura_error("out of memory");
	}
	m->ctx.sync->fn = fn;
	m->ctx.sync->arg = arg;
	m->ctx.sync->c = c;
	return 0;
}

void
mura_model_freeze_backbone(struct mura_model *m, int frozen)
{
	m->frozen = !!frozen;
	for (size_t i = 0, k = 0; i < m->ntensor; i++)
		if (m->tensor[i].t.kind == MURA_TENSOR_PARAM)
			m->params[k++].frozen = m->frozen && !m->tensor[i].t.head;
}

int
mura_model_backbone_frozen(const struct mura_model *m)
{
	return m->frozen;
}

void
mura_model_profile(struct mura_model *m, struct mura_nn_prof *p)
{
	m->ctx.prof = p;
}

void
mura_model_keep_packed(struct mura_model *m, int keep)
{
	mura_packs_free(m->ctx.packs);
	m->ctx.packs = keep ? mura_packs_new() : NULL;  /* NULL: pack every time, as without */
}

void
mura_model_seed_dropout(struct mura_model *m, uint64_t seed, uint64_t step)
{
	mura_rng_derive(&m->rng, seed, step, "dropout");
}

/* ---- files ------------------------------------------------------------------- */

static void
shape_str(char *buf, size_t len, int ndim, const int64_t *shape)
{
	size_t o = (size_t)snprintf(buf, len, "[");
	for (int i = 0; i < ndim && o < len; i++)
		o += (size_t)snprintf(buf + o, len - o, "%s%lld", i ? ", " : "", (long long)shape[i]);
	if (o < len)
		snprintf(buf + o, len - o, "]");
}

/* Append a sentence to info (len bytes, possibly 0). */
static void
info_add(char *info, size_t len, const char *s)
{
	size_t o = len ? strlen(info) : 0;

	if (o + 2 < len)
		snprintf(info + o, len - o, "%s%s", o ? " " : "", s);
}

int
mura_model_config_read(const struct mura_st_file *f, struct mura_model_config *c)
{
	const char *fmt = mura_st_meta(f, "format"), *v;
	double d;

	if (!fmt)
		return 0;
	if (strcmp(fmt, FORMAT) != 0)
		return mura_error("%s: unknown model format '%s' (this is %s)", f->path, fmt, FORMAT);
	if (!(v = mura_st_meta(f, "arch")) || (c->arch = mura_arch_parse(v)) < 0)
		return mura_error_prefix("%s: metadata arch", f->path);
	if (!(v = mura_st_meta(f, "head")) || (c->head = mura_head_parse(v)) < 0)
		return mura_error_prefix("%s: metadata head", f->path);
	if ((v = mura_st_meta(f, "dropout"))) {
		if (mura_parse_double(v, 0, 0.999999, &d) < 0)
			return mura_error_prefix("%s: metadata dropout", f->path);
		c->dropout = (float)d;
	}
	if ((v = mura_st_meta(f, "input_size"))) {
		int h, w, end = 0;
		if (sscanf(v, "%dx%d%n", &h, &w, &end) != 2 || v[end] || h < 1 || w < 1)
			return mura_error("%s: metadata input_size '%s' is not HxW", f->path, v);
		c->input_h = h, c->input_w = w;
	}
	double t[3];
	if ((v = mura_st_meta(f, "normalize_mean"))) {
		if (mura_parse_doubles(v, 3, t) < 0)
			return mura_error_prefix("%s: metadata normalize_mean", f->path);
		for (int i = 0; i < 3; i++)
			c->mean[i] = (float)t[i];
	}
	if ((v = mura_st_meta(f, "normalize_std"))) {
		if (mura_parse_doubles(v, 3, t) < 0)
			return mura_error_prefix("%s: metadata normalize_std", f->path);
		for (int i = 0; i < 3; i++)
			c->std[i] = (float)t[i];
	}
	c->input_dtype = 0;
	if ((v = mura_st_meta(f, "input_dtype")) && (c->input_dtype = mura_dtype_parse(v)) < 0)
		return mura_error("%s: metadata input_dtype '%s' is not u8, u16 or f32", f->path, v);
	/* A model that learnt from f32 records without saying how they were
	 * normalised: its mean and std (left at the defaults) mean nothing. */
	c->norm_unknown = c->input_dtype == MURA_DTYPE_F32 && !mura_st_meta(f, "normalize_mean");
	if (has_vit(c->arch))
		return hybrid_config_read(f, c);
	return 1;
}

int
mura_model_arch_guess(const struct mura_st_file *f)
{
	char names[256];
	int fit[MURA_ARCH_COUNT], n = 0;
	size_t o = 0;

	names[0] = 0;
	for (int a = 1; a < MURA_ARCH_COUNT; a++) {
		if (archs[a].own_head)
			continue;
		if (archs[a].backbone->fits(f, a))
			fit[n++] = a;
		if (o < sizeof names)
			o += (size_t)snprintf(names + o, sizeof names - o, "%s%s", o ? ", " : "", archs[a].name);
	}
	if (n == 1)
		return fit[0];
	if (n > 1)
		return mura_error("%s: no mura metadata, and its tensors fit %s and %s alike: give its --arch", f->path,
		                  archs[fit[0]].name, archs[fit[1]].name);
	return mura_error("%s: no mura metadata, and its tensors are none of %s: give its --arch", f->path, names);
}

/* Is this file tensor part of a torchvision classifier we drop? */
static int
is_classifier(const char *name, const char *prefix)
{
	size_t n = strlen(prefix);
	return strncmp(name, prefix, n) == 0 && (strcmp(name + n, "weight") == 0 || strcmp(name + n, "bias") == 0);
}

/* A tensor of a ResNet50 file that a hybrid cut after layer3 has not. */
static int
hybrid_unused(const struct mura_model *m, const char *name)
{
	return has_vit(m->cfg.arch) && m->cfg.hybrid_stage == 3 && strncmp(name, "layer4.", 7) == 0;
}

int
mura_model_load(struct mura_model *m, const struct mura_st_file *f, char *info, size_t infolen)
{
	if (m->ctx.packs)  /* packed from the weights being replaced */
		mura_model_keep_packed(m, 1);
	char cls[32], clsw[48], a[256], b[96];
	const struct mura_st_tensor *st;
	int drop = 0, has_head = 0;

	snprintf(cls, sizeof cls, "%s.", m->arch->classifier);
	if (infolen)
		info[0] = 0;
	const char *arch = mura_st_meta(f, "arch");
	if (mura_st_meta(f, "format") && arch && strcmp(arch, mura_arch_name(m->cfg.arch)) != 0)
		return mura_error("%s: a %s model, not %s", f->path, arch, mura_arch_name(m->cfg.arch));

	/* The torchvision classifier in the file: kept only if it is ours (one output). */
	snprintf(clsw, sizeof clsw, "%sweight", cls);
	if ((st = mura_st_find(f, clsw))) {
		if (has_vit(m->cfg.arch)) {
			drop = 1;
			snprintf(a, sizeof a, "%s* dropped (the hybrid classifies with its transformer's head)", cls);
		} else if (m->cfg.head != MURA_HEAD_FC) {
			drop = 1;
			snprintf(a, sizeof a, "%s* dropped (this model has the convolutional head)", cls);
		} else if (st->ndim != 2 || st->shape[0] != 1) {
			drop = 1;
			shape_str(b, sizeof b, st->ndim, st->shape);
			snprintf(a, sizeof a, "%s* of shape %s dropped (an ImageNet classifier, not one output)",
			         cls, b);
		}
		if (drop)
			info_add(info, infolen, a);
	}
	for (size_t i = 0; i < f->n; i++)
		if (hybrid_unused(m, f->t[i].name)) {
			info_add(info, infolen, "layer4.* dropped (the hybrid's ResNet50 ends with layer3)");
			break;
		}
	for (size_t i = m->head_first; i < m->ntensor; i++)
		if (mura_st_find(f, m->tensor[i].t.name) && !(drop && is_classifier(m->tensor[i].t.name, cls)))
			has_head = 1;

	/* Everything in the file must be ours. */
	for (size_t i = 0; i < f->n; i++) {
		const char *name = f->t[i].name;
		if (strncmp(name, "optim.", 6) == 0 || (drop && is_classifier(name, cls)) || hybrid_unused(m, name))
			continue;
		if (!mura_model_tensor_find(m, name))
			return mura_error("%s: unexpected tensor %s (not part of %s with the %s head)", f->path,
			                  name, mura_arch_name(m->cfg.arch), mura_head_name(m->cfg.head));
	}
	/* Everything of ours must be in the file, with its shape: checked
	 * before anything is copied. */
	int missing_count = 0;
	for (size_t i = 0; i < m->ntensor; i++) {
		const struct mura_model_tensor *t = &m->tensor[i].t;
		if (t->head && !has_head)
			continue;
		if (!(st = mura_st_find(f, t->name))) {
			if (t->kind == MURA_TENSOR_COUNT) {
				missing_count = 1;
				continue;
			}
			return mura_error("%s: missing tensor %s", f->path, t->name);
		}
		int same = st->ndim == t->ndim;
		for (int k = 0; same && k < t->ndim; k++)
			same = st->shape[k] == t->shape[k];
		if (t->kind == MURA_TENSOR_COUNT)  /* a scalar, or PyTorch < 1.x's [1] */
			same = st->nelem == 1;
		if (!same) {
			shape_str(a, sizeof a, st->ndim, st->shape);
			shape_str(b, sizeof b, t->ndim, t->shape);
			return mura_error("%s: tensor %s has shape %s, %s needs %s", f->path, t->name, a,
			                  mura_arch_name(m->cfg.arch), b);
		}
	}
	for (size_t i = 0; i < m->ntensor; i++) {
		const struct mura_model_tensor *t = &m->tensor[i].t;
		if ((t->head && !has_head) || !(st = mura_st_find(f, t->name))) {
			if (t->kind == MURA_TENSOR_COUNT)
				*t->count = 0;
			continue;
		}
		int rc = t->kind == MURA_TENSOR_COUNT ? mura_st_to_i64(st, t->count, 1)
		                                      : mura_st_to_f32(st, t->data, t->n);
		if (rc < 0)
			return mura_error_prefix("%s", f->path);
	}
	if (!has_head) {
		/* A new head as the user would make it in PyTorch:
		 * model.classifier = nn.Linear(C, 1), or our conv head's defaults. */
		for (size_t i = m->head_first; i < m->ntensor; i++) {
			struct net_tensor *t = &m->tensor[i];
			net_init_tensor(m, t, m->cfg.head == MURA_HEAD_FC ? NET_INIT_UNIFORM_FANIN : t->init);
		}
		info_add(info, infolen,
		         m->cfg.head == MURA_HEAD_FC     ? "A fresh one-output classifier, initialised as torch.nn.Linear."
		         : m->cfg.head == MURA_HEAD_VIT ? "A fresh transformer (patch_embed, cls_token, pos_embed, "
		                                          "blocks, norm, head), initialised as timm's ViT."
		                                        : "A fresh convolutional head.");
	}
	if (missing_count)
		info_add(info, infolen, "num_batches_tracked missing in the file: taken as 0.");
	return 0;
}

int
mura_model_load_path(struct mura_model *m, const char *path, char *info, size_t infolen)
{
	struct mura_st_file f;

	if (mura_st_open(&f, path) < 0)
		return -1;
	int rc = mura_model_load(m, &f, info, infolen);
	mura_st_free(&f);
	return rc;
}

/* The shortest decimal that reads back as v ("0.485", not "0.485000014"). */
static void
put_float(char *buf, size_t len, float v)
{
	for (int prec = 6; prec <= 9; prec++) {
		snprintf(buf, len, "%.*g", prec, v);
		if (strtof(buf, NULL) == v)
			return;
	}
}

/* "a,b,c" of three floats, each as put_float writes it. */
static void
put_floats3(char *buf, size_t len, const float *v)
{
	char a[3][32];

	for (int i = 0; i < 3; i++)
		put_float(a[i], sizeof a[i], v[i]);
	snprintf(buf, len, "%s,%s,%s", a[0], a[1], a[2]);
}

int
mura_model_save(const struct mura_model *m, const char *path,
                const char *const *meta_key, const char *const *meta_val, size_t n_meta,
                const struct mura_st_entry *extra, size_t n_extra)
{
	static const char *const ours[] = {"format", "arch", "head", "dropout", "input_size",
	                                   "normalize_mean", "normalize_std", "input_dtype",
	                                   "hybrid_stage", "vit_dim", "vit_depth", "vit_heads",
	                                   "vit_mlp", "vit_grid"};
	enum { NOURS = sizeof ours / sizeof ours[0], NPLAIN = 8 };  /* the hybrid's come last */
	const struct mura_model_config *c = &m->cfg;
	char vals[NOURS][128];
	int skip[NOURS] = {0};
	const char **keys = NULL, **values = NULL;
	struct mura_st_entry *e = NULL;
	size_t nk = 0;
	int rc = -1;

	for (size_t i = 0; i < n_meta; i++)
		for (size_t k = 0; k < NOURS; k++)
			if (strcmp(meta_key[i], ours[k]) == 0)
				return mura_error("%s: metadata key '%s' is the model's own", path, meta_key[i]);
	snprintf(vals[0], sizeof vals[0], "%s", FORMAT);
	snprintf(vals[1], sizeof vals[1], "%s", mura_arch_name(c->arch));
	snprintf(vals[2], sizeof vals[2], "%s", mura_head_name(c->head));
	put_float(vals[3], sizeof vals[3], c->dropout);
	snprintf(vals[4], sizeof vals[4], "%dx%d", c->input_h, c->input_w);
	put_floats3(vals[5], sizeof vals[5], c->mean);
	put_floats3(vals[6], sizeof vals[6], c->std);
	snprintf(vals[7], sizeof vals[7], "%s", c->input_dtype ? mura_dtype_name(c->input_dtype) : "");
	snprintf(vals[8], sizeof vals[8], "%d", c->hybrid_stage);
	snprintf(vals[9], sizeof vals[9], "%d", c->vit_dim);
	snprintf(vals[10], sizeof vals[10], "%d", c->vit_depth);
	snprintf(vals[11], sizeof vals[11], "%d", c->vit_heads);
	snprintf(vals[12], sizeof vals[12], "%d", c->vit_mlp);
	snprintf(vals[13], sizeof vals[13], "%dx%d", c->vit_grid_h, c->vit_grid_w);
	skip[5] = skip[6] = c->norm_unknown;
	skip[7] = !c->input_dtype;
	for (size_t k = NPLAIN; k < NOURS; k++)
		skip[k] = !has_vit(c->arch);

	keys = calloc(NOURS + n_meta, sizeof *keys);
	values = calloc(NOURS + n_meta, sizeof *values);
	e = calloc(m->ntensor + n_extra, sizeof *e);
	if (!keys || !values || !e) {
		mura_error("out of memory");
		goto done;
	}
	for (size_t k = 0; k < NOURS; k++)
		if (!skip[k])
			keys[nk] = ours[k], values[nk++] = vals[k];
	for (size_t i = 0; i < n_meta; i++)
		keys[nk] = meta_key[i], values[nk++] = meta_val[i];
	for (size_t i = 0; i < m->ntensor; i++) {
		const struct mura_model_tensor *t = &m->tensor[i].t;
		e[i].name = t->name;
		e[i].ndim = t->ndim;
		memcpy(e[i].shape, t->shape, (size_t)t->ndim * sizeof *t->shape);
		e[i].dtype = t->kind == MURA_TENSOR_COUNT ? MURA_ST_I64 : MURA_ST_F32;
		e[i].data = t->kind == MURA_TENSOR_COUNT ? (const void *)t->count : (const void *)t->data;
	}
	for (size_t i = 0; i < n_extra; i++)
		e[m->ntensor + i] = extra[i];
	rc = mura_st_write(path, e, m->ntensor + n_extra, keys, values, nk);
done:
	free(keys);
	free(values);
	free(e);
	return rc;
}

/* ---- the plan ----------------------------------------------------------------- */

static int
plan_parts(struct mura_model *m, struct net_plan *p, int n, int h, int w)
{
	m->in = (struct mura_fm){net_take(p, (size_t)3 * n * h * w), 3, n, h, w};
	if (m->bb->plan(m, p, n, h, w) < 0)
		return -1;
	return m->hd->plan(m, p, n, h, w);
}

int
mura_model_plan(struct mura_model *m, int batch, int h, int w, int training)
{
	struct net_plan p = {0};

	free(m->arena);
	m->arena = NULL;
	m->arena_bytes = 0;
	m->last_train = 0;
	mura_model_capture(m, NULL, NULL, NULL, NULL);
	if (batch < 1 || batch > 65536)
		return mura_error("batch size %d is out of range [1, 65536]", batch);
	if (h < 32 || w < 32 || h > 16384 || w > 16384)
		return mura_error("input size %dx%d is out of range [32, 16384]", h, w);
	p.training = !!training;
	p.nthreads = mura_threads_size(m->threads);
	if (plan_parts(m, &p, batch, h, w) < 0)
		return -1;

	/* Pass 1 hands out: the slots, then the op scratch, then the rest. */
	size_t off = 0;
	for (int i = 0; i < NET_SLOTS; i++) {
		p.slot_off[i] = off;
		off += p.slot[i];
	}
	size_t scratch_off = off;
	off += net_bytes(p.scratch);
	size_t total = off + p.off;
	if (!(m->arena = huge_alloc(total ? total : 64)))
		return mura_error("out of memory for a plan of %zu MB (batch %d, %dx%d)", total >> 20,
		                  batch, h, w);
	p.pass = 1;
	p.base = (char *)m->arena;
	p.off = off;
	if (plan_parts(m, &p, batch, h, w) < 0) {
		free(m->arena);
		m->arena = NULL;
		return -1;
	}
	m->ctx.scratch = (float *)(p.base + scratch_off);
	m->ctx.scratch_n = p.scratch;
	m->arena_bytes = total;
	m->plan_n = batch, m->plan_h = h, m->plan_w = w, m->plan_training = p.training;
	return 0;
}

size_t
mura_model_plan_bytes(const struct mura_model *m)
{
	return m->arena_bytes;
}

/* ---- forward and backward -------------------------------------------------------- */

int
mura_model_forward(struct mura_model *m, const float *x, int n, int train, float *logits)
{
	if (!m->arena)
		return mura_error("the model has no plan (mura_model_plan)");
	if (n < 1 || n > m->plan_n)
		return mura_error("%d images, the plan is for 1 to %d", n, m->plan_n);
	if (train && !m->plan_training)
		return mura_error("a training forward needs a training plan");
	if (train && m->ctx.packs)  /* training changes the weights: keep nothing */
		mura_model_keep_packed(m, 0);
	if (train && !m->ctx.sync && (size_t)n * m->feat.h * m->feat.w < 2)
		return mura_error("batch norm in training needs more than one value per channel: "
		                  "%d image(s) give a %dx%d feature map", n, m->feat.h, m->feat.w);
	m->in.n = n;
	m->explain = 0;
	m->cap.have_act = m->cap.have_grad = 0;
	mura_fm_from_nchw(&m->ctx, x, &m->in);
	m->bb->forward(m, n, train);
	m->hd->forward(m, n, train);
	memcpy(logits, m->logits, (size_t)n * sizeof *logits);
	m->last_n = n;
	m->last_train = !!train;
	return 0;
}

int
mura_model_forward_explain(struct mura_model *m, const float *x, int n, float *logits)
{
	if (!m->arena)
		return mura_error("the model has no plan (mura_model_plan)");
	if (n < 1 || n > m->plan_n)
		return mura_error("%d images, the plan is for 1 to %d", n, m->plan_n);
	if (!m->plan_training)
		return mura_error("an explaining forward needs a training plan");
	m->in.n = n;
	m->explain = 1;
	m->cap.have_act = m->cap.have_grad = 0;
	mura_fm_from_nchw(&m->ctx, x, &m->in);
	m->bb->forward(m, n, 0);
	m->hd->forward(m, n, 0);
	memcpy(logits, m->logits, (size_t)n * sizeof *logits);
	m->last_n = n;
	m->last_train = 1;  /* a backward may follow */
	return 0;
}

int
mura_model_capture(struct mura_model *m, const char *name, int *c, int *h, int *w)
{
	struct net_capture *cap = &m->cap;
	struct mura_fm shape;
	int id;

	free(cap->act);
	free(cap->grad);
	*cap = (struct net_capture){.id = -1};
	if (!name)
		return 0;
	if (!m->arena)
		return mura_error("the model has no plan (mura_model_plan)");
	if ((id = m->bb->layer(m, name, &shape)) < 0)
		return -1;
	size_t nf = (size_t)shape.c * m->plan_n * shape.h * shape.w;
	cap->act = malloc(nf * sizeof *cap->act);
	cap->grad = malloc(nf * sizeof *cap->grad);
	if (!cap->act || !cap->grad) {
		free(cap->act);
		free(cap->grad);
		*cap = (struct net_capture){.id = -1};
		return mura_error("out of memory");
	}
	cap->id = id;
	cap->c = shape.c, cap->h = shape.h, cap->w = shape.w;
	*c = shape.c, *h = shape.h, *w = shape.w;
	return 0;
}

const char *
mura_model_last_layer(const struct mura_model *m)
{
	static const char *const stage[] = {"layer1", "layer2", "layer3", "layer4"};

	if (m->bb == &net_densenet)
		return "features.norm5";
	return stage[(has_vit(m->cfg.arch) ? m->cfg.hybrid_stage : 4) - 1];
}

int
mura_model_captured(const struct mura_model *m, int i, float *act, float *grad)
{
	const struct net_capture *cap = &m->cap;
	const size_t plane = (size_t)cap->h * cap->w, n = (size_t)m->last_n;

	if (cap->id < 0 || !cap->have_act || (grad && !cap->have_grad) || i < 0 || (size_t)i >= n)
		return mura_error("no layer captured in the last pass");
	/* [c][n][h][w] -> image i's [c][h][w] */
	for (int c = 0; c < cap->c; c++) {
		size_t o = ((size_t)c * n + (size_t)i) * plane;
		memcpy(act + (size_t)c * plane, cap->act + o, plane * sizeof *act);
		if (grad)
			memcpy(grad + (size_t)c * plane, cap->grad + o, plane * sizeof *grad);
	}
	return 0;
}

int
mura_model_backward(struct mura_model *m, const float *dlogits)
{
	if (!m->last_train)
		return mura_error("backward needs a training forward just before it");
	m->last_train = 0;
	memcpy(m->dlogits, dlogits, (size_t)m->last_n * sizeof *dlogits);
	m->hd->backward(m, m->last_n);
	for (size_t i = m->head_first; i < m->ntensor; i++)
		if (m->tensor[i].t.kind == MURA_TENSOR_PARAM) {
			net_grads_final(m, m->tensor[i].t.grad);
			break;
		}
	if (m->frozen)
		return 0;
	m->bb->backward(m, m->last_n);
	net_grads_final(m, m->grad);
	return 0;
}
