/*
 * nn_model.c - the models of lib/nn/model.h without a peer: torchvision's
 * parameter counts and names, every architecture's forward and backward
 * at small and odd sizes, an evaluation plan giving what a training plan
 * gives, freezing, save and load, ImageNet import, the refusals of a file
 * that does not fit, and a few parameters' gradients against central
 * differences through a whole network.
 *
 * With arguments it is the C side of tests/t-parity.sh instead:
 *   nn_model parity ARCH HEAD MODEL.safetensors INPUT.safetensors OUT.safetensors [fp32|bf16]
 * loads a torchvision state dict, runs the input batch x through an
 * evaluation forward, a training forward and a backward from dlogits, takes
 * two SGD and (from the same start) two Adam steps, and writes everything
 * for tests/py/parity_models.py to compare with PyTorch; and saves the model
 * as it stands after the training forward to OUT.model, for PyTorch to load.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "nn/model.h"
#include "nn/ops.h"
#include "nn/optim.h"
#include "rng.h"
#include "safetensors.h"
#include "test.h"

static char tmpdir[] = "/tmp/nn_model.XXXXXX";

static struct mura_model *
make(int arch, int head, uint64_t seed)
{
	struct mura_model_config c;
	mura_model_config_default(&c);
	c.arch = arch;
	c.head = head;
	c.seed = seed;
	c.threads = 2;
	struct mura_model *m = mura_model_create(&c);
	if (!m)
		printf("FAIL: create %s: %s\n", mura_arch_name(arch), mura_error_get());
	return m;
}

static size_t
count_params(struct mura_model *m)
{
	size_t np, total = 0;
	struct mura_param *p = mura_model_params(m, &np);
	for (size_t i = 0; i < np; i++)
		total += p[i].n;
	return total;
}

/* torchvision's parameter counts with the classifier cut to one output */
static void
check_tables(void)
{
	static const struct {
		int arch;
		size_t params;
		const char *name, *absent;
	} want[] = {
		{MURA_ARCH_DENSENET121, 6954881, "features.denseblock4.denselayer16.conv2.weight", "features.denseblock4.denselayer17.norm1.weight"},
		{MURA_ARCH_DENSENET169, 12486145, "features.denseblock3.denselayer32.norm1.running_var", "features.transition4.conv.weight"},
		{MURA_ARCH_DENSENET201, 18094849, "features.transition3.conv.weight", "features.denseblock3.denselayer49.conv1.weight"},
		{MURA_ARCH_RESNET18, 11177025, "layer2.0.downsample.1.num_batches_tracked", "layer1.0.downsample.0.weight"},
		{MURA_ARCH_RESNET34, 21285185, "layer3.5.bn2.running_mean", "layer3.5.conv3.weight"},
		{MURA_ARCH_RESNET50, 23510081, "layer1.0.downsample.0.weight", "layer4.3.conv1.weight"},
	};
	char name[200];

	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
		struct mura_model *m = make(want[i].arch, MURA_HEAD_FC, 1);
		if (!m)
			continue;
		snprintf(name, sizeof name, "%s has torchvision's %zu parameters", mura_arch_name(want[i].arch),
		         want[i].params);
		CHECK(name, count_params(m) == want[i].params);
		snprintf(name, sizeof name, "%s has %s, not %s", mura_arch_name(want[i].arch), want[i].name,
		         want[i].absent);
		CHECK(name, mura_model_tensor_find(m, want[i].name) && !mura_model_tensor_find(m, want[i].absent));
		mura_model_free(m);
	}
	struct mura_model *m = make(MURA_ARCH_DENSENET121, MURA_HEAD_FC, 1);
	const struct mura_model_tensor *t = mura_model_tensor_find(m, "features.denseblock2.denselayer3.conv1.weight");
	CHECK("densenet121 denseblock2.denselayer3.conv1 is [128, 192, 1, 1]",
	      t && t->ndim == 4 && t->shape[0] == 128 && t->shape[1] == 192 && t->shape[2] == 1);
	t = mura_model_tensor_find(m, "classifier.weight");
	CHECK("densenet121 classifier.weight is [1, 1024]", t && t->ndim == 2 && t->shape[0] == 1 && t->shape[1] == 1024);
	t = mura_model_tensor_find(m, "classifier.bias");
	CHECK("densenet121 classifier.bias starts at 0 (torchvision)", t && t->data[0] == 0);
	t = mura_model_tensor_find(m, "features.norm5.num_batches_tracked");
	CHECK("num_batches_tracked is a scalar count", t && t->kind == MURA_TENSOR_COUNT && t->ndim == 0);
	/* kaiming_normal_ (fan_in) of conv0: std sqrt(2 / 147) */
	t = mura_model_tensor_find(m, "features.conv0.weight");
	double s = 0;
	for (size_t i = 0; i < t->n; i++)
		s += (double)t->data[i] * t->data[i];
	CHECK_NEAR("densenet conv0 init std = sqrt(2 / fan_in)", sqrt(s / t->n), sqrt(2.0 / 147), 0.01);
	mura_model_free(m);
	m = make(MURA_ARCH_RESNET50, MURA_HEAD_CONV, 1);
	t = mura_model_tensor_find(m, "layer3.0.conv2.weight");
	s = 0;
	for (size_t i = 0; i < t->n; i++)
		s += (double)t->data[i] * t->data[i];
	CHECK_NEAR("resnet conv init std = sqrt(2 / fan_out)", sqrt(s / t->n), sqrt(2.0 / (256 * 9)), 0.01);
	CHECK("resnet50 conv head: head.conv1 [256, 2048, 3, 3], no fc",
	      (t = mura_model_tensor_find(m, "head.conv1.weight")) && t->shape[1] == 2048 && t->shape[2] == 3 &&
	          !mura_model_tensor_find(m, "fc.weight") && mura_model_tensor_find(m, "head.conv2.bias"));
	mura_model_free(m);
}

static float *
random_batch(int n, int h, int w, uint64_t seed)
{
	struct mura_rng r;
	float *x = malloc((size_t)n * 3 * h * w * sizeof *x);
	mura_rng_seed(&r, seed);
	for (size_t i = 0; i < (size_t)n * 3 * h * w; i++)
		x[i] = (float)mura_rng_normal(&r);
	return x;
}

static int
all_finite(const float *x, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isfinite(x[i]))
			return 0;
	return 1;
}

static double
max_abs(const float *x, size_t n)
{
	double m = 0;
	for (size_t i = 0; i < n; i++)
		m = fmax(m, fabs(x[i]));
	return m;
}

/* forward and backward run, and an evaluation plan computes what a training plan does */
static void
check_run(int arch, int head, int n, int h, int w)
{
	char name[200];
	const char *an = mura_arch_name(arch), *hn = mura_head_name(head);
	struct mura_model *m = make(arch, head, 7);
	float *x = random_batch(n, h, w, 3), logits[8], logits_eval[8], logits_eval2[8], dl[8];

	snprintf(name, sizeof name, "%s %s head plans for %d x %dx%d", an, hn, n, h, w);
	CHECK(name, mura_model_plan(m, n, h, w, 1) == 0);
	int ok = mura_model_forward(m, x, n, 0, logits_eval) == 0 &&
	         mura_model_forward(m, x, n, 1, logits) == 0;
	for (int i = 0; i < n; i++)
		dl[i] = (float)(i + 1) / n;
	mura_model_zero_grad(m);
	ok = ok && mura_model_backward(m, dl) == 0;
	snprintf(name, sizeof name, "%s %s head: forward and backward at %dx%d", an, hn, h, w);
	CHECK(name, ok && all_finite(logits, (size_t)n) && all_finite(logits_eval, (size_t)n));
	size_t np, zero = 0;
	struct mura_param *p = mura_model_params(m, &np);
	for (size_t i = 0; i < np; i++)
		zero += max_abs(p[i].g, p[i].n) == 0;
	snprintf(name, sizeof name, "%s %s head: every parameter gets a gradient", an, hn);
	CHECK(name, zero == 0);
	if (zero)
		for (size_t i = 0; i < np; i++)
			if (max_abs(p[i].g, p[i].n) == 0)
				printf("  no gradient: %s\n", p[i].name);

	/* the running statistics moved, so compare two evaluation forwards now */
	mura_model_forward(m, x, n, 0, logits_eval);
	size_t train_bytes = mura_model_plan_bytes(m);
	CHECK("plan for evaluation", mura_model_plan(m, n, h, w, 0) == 0);
	mura_model_forward(m, x, n, 0, logits_eval2);
	double err = 0;
	for (int i = 0; i < n; i++)
		err = fmax(err, fabs(logits_eval[i] - logits_eval2[i]));
	snprintf(name, sizeof name, "%s %s head: evaluation plan (%zu MB, training %zu MB) agrees", an, hn,
	         mura_model_plan_bytes(m) >> 20, train_bytes >> 20);
	CHECK(name, err == 0 && mura_model_plan_bytes(m) < train_bytes);
	/* packed weights kept between forwards: the same logits, first and second time */
	mura_model_keep_packed(m, 1);
	double kerr = 0;
	for (int r = 0; r < 2; r++) {
		mura_model_forward(m, x, n, 0, logits);
		for (int i = 0; i < n; i++)
			kerr = fmax(kerr, fabs(logits[i] - logits_eval2[i]));
	}
	mura_model_keep_packed(m, 0);
	snprintf(name, sizeof name, "%s %s head: packed weights kept between forwards agree", an, hn);
	CHECK(name, kerr == 0);
	CHECK("a training forward on an evaluation plan is refused",
	      mura_model_forward(m, x, n, 1, logits) < 0 && strstr(mura_error_get(), "training plan"));
	/* fewer images than planned, one at a time: the same logits */
	if (n > 1) {
		float one;
		mura_model_forward(m, x + (size_t)3 * h * w, 1, 0, &one);
		snprintf(name, sizeof name, "%s %s head: one image alone gives its logit in the batch", an, hn);
		CHECK_NEAR(name, one, logits_eval[1], 1e-4);
	}
	mura_model_free(m);
	free(x);
}

/* An evaluation forward with no backward to come applies each batch norm
 * (and a residual block's end) as its convolution computes (in bf16 a
 * block of the product at a time: mura_conv_forward_post); an explaining
 * forward, which backward follows, writes every map out as before.  Both
 * must give the same logits bit for bit, on a training and an evaluation
 * plan, after a training step has moved the running statistics. */
static void
check_infer(int arch, int head, int n, int h, int w, int precision)
{
	char name[200];
	struct mura_model_config c;
	const char *pn = mura_precision_name(precision);

	snprintf(name, sizeof name, "%s %s, evaluation with its batch norms applied by the convolutions: "
	         "the explaining forward's logits bit for bit", mura_arch_name(arch), pn);
	if (precision == MURA_PRECISION_BF16 && !mura_bf16_supported()) {
		printf("SKIPPED: %s: this CPU has no AVX512-BF16\n", name);
		return;
	}
	mura_model_config_default(&c);
	c.arch = arch, c.head = head, c.seed = 5, c.threads = 2, c.precision = precision;
	struct mura_model *m = mura_model_create(&c);
	float *x = random_batch(n, h, w, 9), la[8], lb[8], lc[8], dl[8] = {0};
	int ok = m && mura_model_plan(m, n, h, w, 1) == 0 && mura_model_forward(m, x, n, 1, la) == 0 &&
	         mura_model_backward(m, dl) == 0 && mura_model_forward(m, x, n, 0, la) == 0 &&
	         mura_model_forward_explain(m, x, n, lb) == 0 && mura_model_plan(m, n, h, w, 0) == 0 &&
	         mura_model_forward(m, x, n, 0, lc) == 0;
	ok = ok && all_finite(la, (size_t)n) && memcmp(la, lb, (size_t)n * sizeof *la) == 0 &&
	     memcmp(la, lc, (size_t)n * sizeof *la) == 0;
	if (!ok && m)
		for (int i = 0; i < n; i++)
			printf("  image %d: %.9g fused, %.9g explaining, %.9g on an evaluation plan\n", i, la[i], lb[i],
			       lc[i]);
	CHECK(name, ok);
	mura_model_free(m);
	free(x);
}

static void
check_freeze(void)
{
	struct mura_model *m = make(MURA_ARCH_RESNET18, MURA_HEAD_FC, 3);
	float *x = random_batch(2, 40, 40, 5), lg[2], dl[2] = {1, -0.5f};
	size_t np;
	struct mura_param *p = mura_model_params(m, &np);

	mura_model_plan(m, 2, 40, 40, 1);
	mura_model_freeze_backbone(m, 1);
	const struct mura_model_tensor *rm = mura_model_tensor_find(m, "layer1.0.bn1.running_mean");
	float before = rm->data[0];
	mura_model_zero_grad(m);
	mura_model_forward(m, x, 2, 1, lg);
	mura_model_backward(m, dl);
	int backbone_zero = 1, head_set = 1, flags = 1;
	for (size_t i = 0; i < np; i++) {
		int head = strncmp(p[i].name, "fc.", 3) == 0;
		if (head)
			head_set &= max_abs(p[i].g, p[i].n) > 0;
		else
			backbone_zero &= max_abs(p[i].g, p[i].n) == 0;
		flags &= p[i].frozen == !head;
	}
	CHECK("frozen backbone: no backbone gradient, head gradients", backbone_zero && head_set);
	CHECK("frozen backbone: the optimizer's blocks are marked", flags);
	CHECK("frozen backbone: batch norm stays in evaluation mode", rm->data[0] == before);
	mura_model_freeze_backbone(m, 0);
	mura_model_forward(m, x, 2, 1, lg);
	mura_model_backward(m, dl);
	int all = 1;
	for (size_t i = 0; i < np; i++)
		all &= !p[i].frozen && max_abs(p[i].g, p[i].n) > 0;
	CHECK("unfrozen again: every parameter trains", all && rm->data[0] != before);
	CHECK("a second backward is refused", mura_model_backward(m, dl) < 0);
	mura_model_free(m);
	free(x);
}

/* Write a model's state under other names or shapes, for the load checks. */
static int
write_variant(struct mura_model *m, const char *path, const char *drop, const char *add,
              const char *reshape, int64_t cls_out)
{
	size_t nt = mura_model_tensor_count(m), k = 0;
	struct mura_st_entry *e = calloc(nt + 1, sizeof *e);
	float *big = NULL;

	for (size_t i = 0; i < nt; i++) {
		const struct mura_model_tensor *t = mura_model_tensor_at(m, i);
		if (drop && strcmp(t->name, drop) == 0)
			continue;
		e[k].name = t->name;
		e[k].ndim = t->ndim;
		memcpy(e[k].shape, t->shape, sizeof t->shape);
		e[k].dtype = t->kind == MURA_TENSOR_COUNT ? MURA_ST_I64 : MURA_ST_F32;
		e[k].data = t->kind == MURA_TENSOR_COUNT ? (void *)t->count : (void *)t->data;
		if (reshape && strcmp(t->name, reshape) == 0)
			e[k].shape[0] += 1, e[k].data = big = calloc(t->n * 2, sizeof(float));
		if (cls_out && (strcmp(t->name, "fc.weight") == 0 || strcmp(t->name, "fc.bias") == 0)) {
			e[k].shape[0] = cls_out;
			if (!big)
				big = calloc((size_t)cls_out * 2048, sizeof(float));
			e[k].data = big;
		}
		k++;
	}
	if (add) {
		e[k] = e[0];
		e[k++].name = add;
	}
	int rc = mura_st_write(path, e, k, NULL, NULL, 0);
	free(e);
	free(big);
	return rc;
}

static void
check_files(void)
{
	char path[300], info[512];
	struct mura_model *a = make(MURA_ARCH_RESNET18, MURA_HEAD_FC, 11), *b = make(MURA_ARCH_RESNET18, MURA_HEAD_FC, 12);
	const char *keys[] = {"epoch"}, *vals[] = {"3"};

	/* make the buffers differ from the fresh ones */
	float *x = random_batch(2, 32, 32, 9), lg[2];
	mura_model_plan(a, 2, 32, 32, 1);
	mura_model_forward(a, x, 2, 1, lg);
	snprintf(path, sizeof path, "%s/a.safetensors", tmpdir);
	CHECK("save", mura_model_save(a, path, keys, vals, 1, NULL, 0) == 0);
	/* b keeps packed weights, then loads a's: its packs must be a's */
	float la[2], lb[2];
	mura_model_plan(a, 2, 32, 32, 0);
	mura_model_forward(a, x, 2, 0, la);
	mura_model_plan(b, 2, 32, 32, 0);
	mura_model_keep_packed(b, 1);
	mura_model_forward(b, x, 2, 0, lb);
	CHECK("load what was saved", mura_model_load_path(b, path, info, sizeof info) == 0 && !info[0]);
	mura_model_forward(b, x, 2, 0, lb);
	CHECK("packed weights kept, then a load: the loaded weights' logits", la[0] == lb[0] && la[1] == lb[1]);
	int same = 1;
	for (size_t i = 0; i < mura_model_tensor_count(a); i++) {
		const struct mura_model_tensor *s = mura_model_tensor_at(a, i), *t = mura_model_tensor_at(b, i);
		same &= s->kind == MURA_TENSOR_COUNT ? *s->count == *t->count && *s->count == 1
		                                     : memcmp(s->data, t->data, s->n * sizeof(float)) == 0;
	}
	CHECK("save and load: every tensor, buffers and counts too, comes back", same);
	struct mura_st_file f;
	struct mura_model_config c;
	mura_model_config_default(&c);
	CHECK("the saved metadata gives the configuration",
	      mura_st_open(&f, path) == 0 && mura_model_config_read(&f, &c) == 1 &&
	          c.arch == MURA_ARCH_RESNET18 && c.head == MURA_HEAD_FC && c.input_h == 320 &&
	          fabsf(c.std[2] - 0.225f) < 1e-7f && strcmp(mura_st_meta(&f, "epoch"), "3") == 0);
	mura_st_free(&f);
	CHECK("a metadata key of the model's own is refused",
	      mura_model_save(a, path, (const char *[]){"arch"}, vals, 1, NULL, 0) < 0);
	struct mura_model *d = make(MURA_ARCH_RESNET34, MURA_HEAD_FC, 1);
	CHECK("a resnet18 file is refused by a resnet34 model",
	      mura_model_load_path(d, path, info, sizeof info) < 0 && strstr(mura_error_get(), "resnet18 model"));
	mura_model_free(d);

	snprintf(path, sizeof path, "%s/missing.safetensors", tmpdir);
	write_variant(a, path, "layer3.1.bn2.running_var", NULL, NULL, 0);
	CHECK("a missing tensor is refused, naming it",
	      mura_model_load_path(b, path, info, sizeof info) < 0 &&
	          strstr(mura_error_get(), "missing tensor layer3.1.bn2.running_var"));
	snprintf(path, sizeof path, "%s/extra.safetensors", tmpdir);
	write_variant(a, path, NULL, "layer5.0.conv1.weight", NULL, 0);
	CHECK("an unexpected tensor is refused, naming it",
	      mura_model_load_path(b, path, info, sizeof info) < 0 &&
	          strstr(mura_error_get(), "unexpected tensor layer5.0.conv1.weight"));
	snprintf(path, sizeof path, "%s/shape.safetensors", tmpdir);
	write_variant(a, path, NULL, NULL, "layer2.0.conv1.weight", 0);
	CHECK("a wrong shape is refused, naming the tensor and both shapes",
	      mura_model_load_path(b, path, info, sizeof info) < 0 &&
	          strstr(mura_error_get(), "layer2.0.conv1.weight has shape [129, 64, 3, 3], resnet18 needs [128, 64, 3, 3]"));
	snprintf(path, sizeof path, "%s/nbt.safetensors", tmpdir);
	write_variant(a, path, "bn1.num_batches_tracked", NULL, NULL, 0);
	CHECK("a missing num_batches_tracked is taken as 0, and said",
	      mura_model_load_path(b, path, info, sizeof info) == 0 && strstr(info, "num_batches_tracked") &&
	          *mura_model_tensor_find(b, "bn1.num_batches_tracked")->count == 0);
	mura_model_free(b);

	/* ImageNet: a 1000-output fc is dropped, the new one is nn.Linear's */
	struct mura_model *r50 = make(MURA_ARCH_RESNET50, MURA_HEAD_FC, 1);
	struct mura_model *imp = make(MURA_ARCH_RESNET50, MURA_HEAD_FC, 2);
	snprintf(path, sizeof path, "%s/imagenet.safetensors", tmpdir);
	write_variant(r50, path, NULL, NULL, NULL, 1000);
	int rc = mura_model_load_path(imp, path, info, sizeof info);
	CHECK("an ImageNet resnet50 file loads", rc == 0);
	if (rc)
		printf("  %s\n", mura_error_get());
	CHECK("the 1000-class fc is dropped, and said", strstr(info, "fc.* of shape [1000, 2048] dropped") != NULL);
	printf("  info: %s\n", info);
	const struct mura_model_tensor *fb = mura_model_tensor_find(imp, "fc.bias");
	const struct mura_model_tensor *fw = mura_model_tensor_find(imp, "fc.weight");
	double bound = 1 / sqrt(2048.0);
	CHECK("the fresh fc is U(-1/sqrt(2048), 1/sqrt(2048)), bias too (nn.Linear)",
	      fb->data[0] != 0 && fabs(fb->data[0]) <= bound && max_abs(fw->data, fw->n) <= bound &&
	          max_abs(fw->data, fw->n) > 0.9 * bound);
	CHECK("the backbone's weights are the file's",
	      memcmp(mura_model_tensor_find(imp, "layer4.2.conv3.weight")->data,
	             mura_model_tensor_find(r50, "layer4.2.conv3.weight")->data, 512 * 2048 * sizeof(float)) == 0);
	struct mura_model *ch = make(MURA_ARCH_RESNET50, MURA_HEAD_CONV, 2);
	CHECK("the same file into a conv-head model: fc dropped, a fresh head",
	      mura_model_load_path(ch, path, info, sizeof info) == 0 && strstr(info, "convolutional head"));
	mura_model_free(ch);
	mura_model_free(r50);
	mura_model_free(imp);
	mura_model_free(a);
	free(x);
}

/* A few parameters' gradients through a whole network, by central
 * differences of sum(r * logits) in a training forward (batch statistics):
 * the whole chain of backward calls, not only each op.  A step moves
 * thousands of ReLU inputs; those that cross 0 would make the difference
 * meaningless, so every batch norm's bias is set to +-2 first (most inputs
 * then lie far from the kink, a few in each channel's tail still cross). */
static void
check_model_grad(int arch, int head)
{
	const int n = 3, h = 67, w = 65;
	struct mura_model *m = make(arch, head, 5);
	float *x = random_batch(n, h, w, 21), lg[3], r[3] = {0.7f, -1.1f, 0.4f};
	char name[200];

	for (size_t i = 0; i < mura_model_tensor_count(m); i++) {
		const struct mura_model_tensor *t = mura_model_tensor_at(m, i);
		size_t len = strlen(t->name);
		if (t->kind == MURA_TENSOR_BUFFER && len > 12 && strcmp(t->name + len - 12, "running_mean") == 0) {
			char bias[200];
			snprintf(bias, sizeof bias, "%.*sbias", (int)(len - 12), t->name);
			float *b = mura_model_tensor_find(m, bias)->data;
			for (size_t k = 0; k < t->n; k++)
				b[k] = (mura_hash_str(bias, k) & 1) ? 2.0f : -2.0f;
		}
	}
	mura_model_plan(m, n, h, w, 1);
	mura_model_zero_grad(m);
	mura_model_forward(m, x, n, 1, lg);
	mura_model_backward(m, r);
	size_t np;
	struct mura_param *p = mura_model_params(m, &np);
	size_t pick[4] = {0, np / 3, 2 * np / 3, np - 2};
	double worst = 0;
	for (int k = 0; k < 4; k++) {
		struct mura_param *q = &p[pick[k]];
		/* the largest of a few gradient entries, so the difference is not all noise */
		size_t j = (size_t)mura_hash_str(q->name, 0) % q->n, best = j;
		for (int t = 0; t < 16; t++, j = (j + 7919) % q->n)
			if (fabsf(q->g[j]) > fabsf(q->g[best]))
				best = j;
		j = best;
		double gmax = max_abs(q->g, q->n), eps = 1e-2 * fmax(max_abs(q->w, q->n), 1e-2);
		float keep = q->w[j];
		double l[2];
		for (int s = 0; s < 2; s++) {
			q->w[j] = keep + (float)(s ? -eps : eps);
			mura_model_forward(m, x, n, 1, lg);
			l[s] = 0;
			for (int i = 0; i < n; i++)
				l[s] += (double)r[i] * lg[i];
		}
		q->w[j] = keep;
		double num = (l[0] - l[1]) / (2 * eps), err = fabs(num - q->g[j]) / fmax(gmax, 1e-12);
		if (err > 2e-2)
			printf("  %s[%zu]: numeric %.6g, backward %.6g (max |grad| %.3g)\n", q->name, j, num, q->g[j], gmax);
		worst = fmax(worst, err);
	}
	snprintf(name, sizeof name, "%s %s head: parameter gradients = central differences", mura_arch_name(arch),
	         mura_head_name(head));
	CHECK(name, worst <= 2e-2);
	mura_model_free(m);
	free(x);
}

/* ---- the parity driver --------------------------------------------------------- */

static int
fail(const char *what)
{
	fprintf(stderr, "nn_model: %s: %s\n", what, mura_error_get());
	return 1;
}

struct outfile {
	struct mura_st_entry *e;
	size_t n, cap;
	char **names;
	void **bufs;
};

static void
out_add(struct outfile *o, const char *prefix, const char *name, int dtype, int ndim,
        const int64_t *shape, const void *data, size_t bytes)
{
	if (o->n == o->cap) {
		o->cap = o->cap ? 2 * o->cap : 256;
		o->e = realloc(o->e, o->cap * sizeof *o->e);
		o->names = realloc(o->names, o->cap * sizeof *o->names);
		o->bufs = realloc(o->bufs, o->cap * sizeof *o->bufs);
	}
	size_t len = strlen(prefix) + strlen(name) + 1;
	o->names[o->n] = malloc(len);
	snprintf(o->names[o->n], len, "%s%s", prefix, name);
	o->bufs[o->n] = malloc(bytes ? bytes : 1);
	memcpy(o->bufs[o->n], data, bytes);
	struct mura_st_entry *e = &o->e[o->n++];
	memset(e, 0, sizeof *e);
	e->name = o->names[o->n - 1];
	e->dtype = dtype;
	e->ndim = ndim;
	memcpy(e->shape, shape, (size_t)ndim * sizeof *shape);
	e->data = o->bufs[o->n - 1];
}

/* Every tensor of the state (prefix.NAME), or every gradient. */
static void
out_state(struct outfile *o, struct mura_model *m, const char *prefix, int grads)
{
	for (size_t i = 0; i < mura_model_tensor_count(m); i++) {
		const struct mura_model_tensor *t = mura_model_tensor_at(m, i);
		if (grads && t->kind != MURA_TENSOR_PARAM)
			continue;
		if (t->kind == MURA_TENSOR_COUNT)
			out_add(o, prefix, t->name, MURA_ST_I64, 0, t->shape, t->count, sizeof(int64_t));
		else
			out_add(o, prefix, t->name, MURA_ST_F32, t->ndim, t->shape, grads ? t->grad : t->data,
			        t->n * sizeof(float));
	}
}

static int
optim_steps(struct mura_model *m, int kind, const float *w0)
{
	struct mura_optim o;
	struct mura_optim_config c;
	size_t np;
	struct mura_param *p = mura_model_params(m, &np);

	mura_optim_config_default(&c, kind);
	c.lr = kind == MURA_OPTIM_SGD ? 0.1 : 0.01;
	c.momentum = kind == MURA_OPTIM_SGD ? 0.9 : 0;
	c.weight_decay = 1e-4;
	for (size_t i = 0, off = 0; i < np; off += p[i].n, i++)
		memcpy(p[i].w, w0 + off, p[i].n * sizeof(float));
	if (mura_optim_init(&o, &c, p, np) < 0)
		return -1;
	mura_optim_step(&o);
	mura_optim_step(&o);
	mura_optim_free(&o);
	return 0;
}

static int
parity(char **argv)
{
	struct mura_model_config c;
	struct mura_st_file in;
	char info[512];
	struct outfile o = {0};
	int64_t sh[4];

	mura_model_config_default(&c);
	if ((c.arch = mura_arch_parse(argv[2])) < 0 || (c.head = mura_head_parse(argv[3])) < 0 ||
	    (argv[7] && (c.precision = mura_precision_parse(argv[7])) < 0))
		return fail("arguments");
	struct mura_model *m = mura_model_create(&c);
	if (!m || mura_model_load_path(m, argv[4], info, sizeof info) < 0)
		return fail(argv[4]);
	if (info[0]) {
		fprintf(stderr, "nn_model: %s: not a plain load: %s\n", argv[4], info);
		return 1;
	}
	if (mura_st_open(&in, argv[5]) < 0)
		return fail(argv[5]);
	const struct mura_st_tensor *tx = mura_st_find(&in, "x"), *td = mura_st_find(&in, "dlogits");
	if (!tx || tx->ndim != 4 || tx->shape[1] != 3 || !td || td->nelem != (uint64_t)tx->shape[0]) {
		fprintf(stderr, "nn_model: %s: needs x [n, 3, h, w] and dlogits [n]\n", argv[5]);
		return 1;
	}
	int n = (int)tx->shape[0], h = (int)tx->shape[2], w = (int)tx->shape[3];
	float *x = malloc(tx->nelem * sizeof *x), *dl = malloc((size_t)n * sizeof *dl);
	float *le = malloc((size_t)n * sizeof *le), *lt = malloc((size_t)n * sizeof *lt);
	mura_st_to_f32(tx, x, tx->nelem);
	mura_st_to_f32(td, dl, (uint64_t)n);
	if (mura_model_plan(m, n, h, w, 1) < 0 || mura_model_forward(m, x, n, 0, le) < 0 ||
	    mura_model_forward(m, x, n, 1, lt) < 0)
		return fail("forward");
	char saved[4200];
	snprintf(saved, sizeof saved, "%s.model", argv[6]);
	if (mura_model_save(m, saved, NULL, NULL, 0, NULL, 0) < 0)
		return fail(saved);
	mura_model_zero_grad(m);
	if (mura_model_backward(m, dl) < 0)
		return fail("backward");
	sh[0] = n;
	out_add(&o, "", "logits_eval", MURA_ST_F32, 1, sh, le, (size_t)n * sizeof(float));
	out_add(&o, "", "logits_train", MURA_ST_F32, 1, sh, lt, (size_t)n * sizeof(float));
	out_state(&o, m, "state.", 0);
	out_state(&o, m, "grad.", 1);

	size_t np, total = 0;
	struct mura_param *p = mura_model_params(m, &np);
	for (size_t i = 0; i < np; i++)
		total += p[i].n;
	float *w0 = malloc(total * sizeof *w0);
	for (size_t i = 0, off = 0; i < np; off += p[i].n, i++)
		memcpy(w0 + off, p[i].w, p[i].n * sizeof(float));
	if (optim_steps(m, MURA_OPTIM_SGD, w0) < 0)
		return fail("sgd");
	for (size_t i = 0; i < np; i++)
		out_add(&o, "sgd.", p[i].name, MURA_ST_F32, 1, (int64_t[]){(int64_t)p[i].n}, p[i].w,
		        p[i].n * sizeof(float));
	if (optim_steps(m, MURA_OPTIM_ADAM, w0) < 0)
		return fail("adam");
	for (size_t i = 0; i < np; i++)
		out_add(&o, "adam.", p[i].name, MURA_ST_F32, 1, (int64_t[]){(int64_t)p[i].n}, p[i].w,
		        p[i].n * sizeof(float));
	/* the state's order, to compare with torchvision's state_dict() */
	size_t len = 1;
	for (size_t i = 0; i < mura_model_tensor_count(m); i++)
		len += strlen(mura_model_tensor_at(m, i)->name) + 1;
	char *order = calloc(len, 1);
	for (size_t i = 0; i < mura_model_tensor_count(m); i++)
		strcat(strcat(order, i ? "\n" : ""), mura_model_tensor_at(m, i)->name);
	const char *key[] = {"state_order"}, *val[] = {order};
	if (mura_st_write(argv[6], o.e, o.n, key, val, 1) < 0)
		return fail(argv[6]);
	free(order);
	for (size_t i = 0; i < o.n; i++)
		free(o.names[i]), free(o.bufs[i]);
	free(o.e), free(o.names), free(o.bufs);
	free(x), free(dl), free(le), free(lt), free(w0);
	mura_st_free(&in);
	mura_model_free(m);
	return 0;
}

int
main(int argc, char **argv)
{
	if ((argc == 7 || argc == 8) && strcmp(argv[1], "parity") == 0)
		return parity(argv);
	if (argc != 1) {
		fprintf(stderr, "usage: nn_model [parity ARCH HEAD MODEL INPUT OUT [fp32|bf16]]\n");
		return 2;
	}
	if (!mkdtemp(tmpdir))
		return 1;
	check_tables();
	check_run(MURA_ARCH_DENSENET121, MURA_HEAD_FC, 2, 32, 32);
	check_run(MURA_ARCH_DENSENET121, MURA_HEAD_CONV, 3, 45, 38);
	check_run(MURA_ARCH_RESNET18, MURA_HEAD_FC, 3, 33, 47);
	check_run(MURA_ARCH_RESNET50, MURA_HEAD_CONV, 2, 32, 40);
	for (int p = MURA_PRECISION_FP32; p <= MURA_PRECISION_BF16; p++) {
		check_infer(MURA_ARCH_RESNET18, MURA_HEAD_FC, 3, 64, 72, p);
		check_infer(MURA_ARCH_RESNET50, MURA_HEAD_FC, 2, 64, 64, p);
		check_infer(MURA_ARCH_DENSENET121, MURA_HEAD_FC, 2, 64, 48, p);
	}
	check_freeze();
	check_files();
	check_model_grad(MURA_ARCH_RESNET18, MURA_HEAD_FC);
	check_model_grad(MURA_ARCH_DENSENET121, MURA_HEAD_CONV);
	char cmd[400];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		printf("  could not remove %s\n", tmpdir);
	return test_status();
}
