/*
 * loss_optim.c - tests of lib/nn/loss and lib/nn/optim.
 *
 *   tests/loss_optim            the C-only checks: class weights on MURA's
 *                               counts, fallbacks, gradients against central
 *                               differences, extreme logits, errors, frozen
 *                               blocks, checkpoint slots round trip bit for bit
 *   tests/loss_optim --run DIR  compute the cases of DIR/cases.txt, written by
 *                               tests/py/loss_optim_ref.py, into DIR/NAME.c_*
 *                               for that script to compare with PyTorch
 *                               (tests/t-loss-optim.sh drives both)
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "nn/loss.h"
#include "nn/optim.h"
#include "rng.h"
#include "test.h"

/* ---- the C-only checks ---- */

static const uint64_t mura_ab[MURA_TYPE_COUNT] = {0, 2006, 1968, 661, 1484, 599, 4168, 3987};
static const uint64_t mura_no[MURA_TYPE_COUNT] = {0, 2925, 3138, 1164, 4059, 673, 4211, 5765};

static void test_weights(void)
{
	struct mura_class_weights cw;
	CHECK("weights per-type", mura_class_weights_compute(&cw, MURA_WEIGHTS_PER_TYPE, mura_ab, mura_no, 1.0) == 0);
	/* elbow: 2006 abnormal, 2925 normal */
	CHECK_NEAR("weights per-type elbow w1", cw.w1[MURA_TYPE_ELBOW], 2925.0 / 4931.0, 1e-7);
	CHECK_NEAR("weights per-type elbow w0", cw.w0[MURA_TYPE_ELBOW], 2006.0 / 4931.0, 1e-7);
	CHECK_NEAR("weights per-type humerus w1", cw.w1[MURA_TYPE_HUMERUS], 673.0 / 1272.0, 1e-7);
	/* unknown (no images) falls back to the pooled 14873 / 21935 */
	CHECK_NEAR("weights per-type unknown falls back to global", cw.w1[0], 21935.0 / 36808.0, 1e-7);
	CHECK_NEAR("weights per-type unknown w0", cw.w0[0], 14873.0 / 36808.0, 1e-7);

	CHECK("weights global", mura_class_weights_compute(&cw, MURA_WEIGHTS_GLOBAL, mura_ab, mura_no, 1.5) == 0);
	CHECK_NEAR("weights global boost on w1", cw.w1[MURA_TYPE_WRIST], 1.5 * 21935.0 / 36808.0, 1e-7);
	CHECK_NEAR("weights global w0 unboosted", cw.w0[MURA_TYPE_WRIST], 14873.0 / 36808.0, 1e-7);

	CHECK("weights none", mura_class_weights_compute(&cw, MURA_WEIGHTS_NONE, mura_ab, mura_no, 2.0) == 0);
	CHECK("weights none with boost", cw.w0[3] == 1.0f && cw.w1[3] == 2.0f);

	uint64_t ab[MURA_TYPE_COUNT] = {0, 10, 0, 5}, no[MURA_TYPE_COUNT] = {0, 30, 7, 0};
	mura_class_weights_compute(&cw, MURA_WEIGHTS_PER_TYPE, ab, no, 1.0);
	CHECK("weights one-class type falls back", cw.w1[2] == cw.w1[0] && cw.w1[3] == cw.w1[0] &&
	      fabs(cw.w1[0] - 37.0 / 52.0) < 1e-7);
	uint64_t none[MURA_TYPE_COUNT] = {0};
	mura_class_weights_compute(&cw, MURA_WEIGHTS_GLOBAL, ab, none, 1.0);
	CHECK("weights without normal images are 1", cw.w0[1] == 1.0f && cw.w1[1] == 1.0f);
	CHECK("weights refuse boost 0", mura_class_weights_compute(&cw, MURA_WEIGHTS_GLOBAL, ab, no, 0) < 0);
	CHECK("weights refuse boost NaN", mura_class_weights_compute(&cw, MURA_WEIGHTS_GLOBAL, ab, no, NAN) < 0);

	CHECK("parse per-type", mura_weights_mode_parse("per-type") == MURA_WEIGHTS_PER_TYPE);
	CHECK("parse bad mode", mura_weights_mode_parse("pertype") < 0 &&
	      strstr(mura_error_get(), "pertype") != NULL);
	CHECK("parse focal", mura_loss_kind_parse("focal") == MURA_LOSS_FOCAL);
	CHECK("name global", strcmp(mura_weights_mode_name(MURA_WEIGHTS_GLOBAL), "global") == 0);
	CHECK("parse adamw", mura_optim_kind_parse("adamw") == MURA_OPTIM_ADAMW);
	CHECK("parse bad optimizer", mura_optim_kind_parse("rmsprop") < 0);
}

/* dL/dz against central differences of the double loss, on moderate logits. */
static void gradcheck(const char *name, const struct mura_loss *l)
{
	enum { N = 24 };
	struct mura_rng r;
	float z[N], y[N], dz[N], zp[N];
	uint8_t t[N];
	mura_rng_seed(&r, 7);
	for (int i = 0; i < N; i++) {
		z[i] = (float)(mura_rng_normal(&r) * 3);
		y[i] = i % 3 == 0 ? mura_rng_float(&r) : (float)(i % 2);
		t[i] = (uint8_t)mura_rng_below(&r, MURA_TYPE_COUNT);
	}
	double loss, worst = 0;
	mura_loss_compute(l, z, y, t, N, &loss, dz);
	for (int i = 0; i < N; i++) {
		double lp, lm;
		float h = 1e-3f * fmaxf(1, fabsf(z[i]));
		memcpy(zp, z, sizeof(z));
		zp[i] = z[i] + h;
		mura_loss_compute(l, zp, y, t, N, &lp, NULL);
		double hp = (double)zp[i] - z[i];
		zp[i] = z[i] - h;
		mura_loss_compute(l, zp, y, t, N, &lm, NULL);
		double fd = (lp - lm) / (hp + ((double)z[i] - zp[i]));
		worst = fmax(worst, fabs(fd - dz[i]) / fmax(fabs(fd), 1e-3));
	}
	char msg[128];
	snprintf(msg, sizeof(msg), "%s: gradient vs central differences (worst %.1e)", name, worst);
	CHECK(msg, worst < 1e-4);
}

static void test_loss(void)
{
	struct mura_loss l;
	mura_loss_init(&l);
	gradcheck("bce", &l);
	mura_class_weights_compute(&l.cw, MURA_WEIGHTS_PER_TYPE, mura_ab, mura_no, 1.5);
	gradcheck("bce per-type", &l);
	l.kind = MURA_LOSS_FOCAL;
	gradcheck("focal gamma 2 per-type", &l);
	l.alpha = 0.25f;
	l.gamma = 0.5f;
	gradcheck("focal gamma 0.5 alpha 0.25", &l);

	/* Extreme logits: exact values, finite gradients. */
	mura_loss_init(&l);
	float z[4] = {100, -100, 1e4f, -1e4f}, y[4] = {0, 1, 0, 1}, dz[4];
	double loss;
	CHECK("bce extreme", mura_loss_compute(&l, z, y, NULL, 4, &loss, dz) == 0);
	CHECK_NEAR("bce extreme value", loss, (100 + 100 + 1e4 + 1e4) / 4.0, 1e-15);
	CHECK("bce extreme gradient", dz[0] == 0.25f && dz[1] == -0.25f && dz[2] == 0.25f && dz[3] == -0.25f);
	float yr[4] = {1, 0, 1, 0};
	mura_loss_compute(&l, z, yr, NULL, 4, &loss, dz);
	CHECK("bce extreme, right side", isfinite(loss) && loss >= 0 && loss < 1e-40 && fabsf(dz[0]) < 1e-40f);
	l.kind = MURA_LOSS_FOCAL;
	l.gamma = 0.5f;
	CHECK("focal extreme", mura_loss_compute(&l, z, yr, NULL, 4, &loss, dz) == 0 &&
	      isfinite(loss) && isfinite(dz[0]) && isfinite(dz[2]) && dz[2] == 0);
	mura_loss_compute(&l, z, y, NULL, 4, &loss, dz);
	CHECK_NEAR("focal extreme, wrong side", loss, (100 + 100 + 1e4 + 1e4) / 4.0, 1e-15);

	/* focal with gamma 0 and no alpha is BCE */
	float zz[3] = {0.3f, -2, 5}, yy[3] = {0.2f, 1, 0}, d1[3], d2[3];
	double l1, l2;
	l.gamma = 0;
	l.alpha = -1;
	mura_loss_compute(&l, zz, yy, NULL, 3, &l1, d1);
	l.kind = MURA_LOSS_BCE;
	mura_loss_compute(&l, zz, yy, NULL, 3, &l2, d2);
	CHECK("focal gamma 0 is bce", fabs(l1 - l2) < 1e-15 && memcmp(d1, d2, sizeof(d1)) == 0);

	float bad[2] = {0, -1};
	dz[0] = 42;
	CHECK("label -1 refused", mura_loss_compute(&l, zz, bad, NULL, 2, &loss, dz) < 0 &&
	      strstr(mura_error_get(), "image 1") && dz[0] == 42);
	float nan[1] = {NAN};
	CHECK("NaN logit refused", mura_loss_compute(&l, nan, yy, NULL, 1, &loss, dz) < 0);
	uint8_t t9[1] = {9};
	CHECK("type 9 refused", mura_loss_compute(&l, zz, yy, t9, 1, &loss, dz) < 0);
	CHECK("empty batch refused", mura_loss_compute(&l, zz, yy, NULL, 0, &loss, dz) < 0);
}

/* Accumulation's promise at the loss: K batches, each with the step's
 * total images, give one batch of them's gradient on every logit, bit for
 * bit (and so the same weights' gradients where the model sums the images
 * in one order), and its loss to rounding; label smoothing 0 is none. */
static void test_accumulate(void)
{
	enum { K = 3, B = 8, N = K * B };
	struct mura_loss l;
	struct mura_rng r;
	float z[N], y[N], big[N], acc[N], plain[N];
	uint8_t t[N];
	double lb, la = 0, lp;

	mura_rng_seed(&r, 11);
	for (int i = 0; i < N; i++) {
		z[i] = (float)(mura_rng_normal(&r) * 2);
		y[i] = i % 4 == 0 ? mura_rng_float(&r) : (float)(i % 2);
		t[i] = (uint8_t)mura_rng_below(&r, MURA_TYPE_COUNT);
	}
	mura_loss_init(&l);
	mura_loss_compute(&l, z, y, t, N, &lp, plain);
	l.smoothing = 0;
	mura_loss_compute(&l, z, y, t, N, &lb, big);
	CHECK("label smoothing 0: the loss without smoothing, bit for bit", lb == lp && !memcmp(big, plain, sizeof big));
	l.kind = MURA_LOSS_FOCAL;
	l.alpha = 0.25f;
	l.smoothing = 0.1;
	mura_class_weights_compute(&l.cw, MURA_WEIGHTS_PER_TYPE, mura_ab, mura_no, 1.5);
	mura_loss_compute(&l, z, y, t, N, &lb, big);
	for (int k = 0; k < K; k++) {
		double sum;
		mura_loss_part(&l, z + k * B, y + k * B, t + k * B, B, N, &sum, acc + k * B);
		la += sum;
	}
	la *= 1.0 / N;
	CHECK("accumulate 3 batches of 8 (focal, per-type, smoothing 0.1): the gradient of one batch of 24, bit for bit",
	      !memcmp(big, acc, sizeof big));
	CHECK_NEAR("... and its loss", la, lb, 1e-15 * fabs(lb));
	l.smoothing = 1.5;
	CHECK("label smoothing 1.5 refused", mura_loss_compute(&l, z, y, t, N, &lb, big) < 0 &&
	      strstr(mura_error_get(), "smoothing"));
}

/* Three blocks, random weights and gradients. */
struct model {
	float w[3][50], g[3][50];
	struct mura_param p[3];
};

static void model_init(struct model *m, uint64_t seed)
{
	static const char *names[3] = {"a.weight", "a.bias", "b.weight"};
	static const size_t n[3] = {50, 3, 17};
	struct mura_rng r;
	mura_rng_seed(&r, seed);
	memset(m, 0, sizeof(*m));
	for (int b = 0; b < 3; b++) {
		m->p[b] = (struct mura_param){.name = names[b], .w = m->w[b], .g = m->g[b], .n = n[b]};
		for (size_t i = 0; i < n[b]; i++)
			m->w[b][i] = (float)mura_rng_normal(&r);
	}
}

static void model_grads(struct model *m, int step)
{
	struct mura_rng r;
	mura_rng_seed(&r, 1000 + (uint64_t)step);
	for (int b = 0; b < 3; b++)
		for (size_t i = 0; i < m->p[b].n; i++)
			m->g[b][i] = (float)mura_rng_normal(&r);
}

static void test_optim_kind(int kind, double momentum, int amsgrad)
{
	char name[160];
	struct mura_optim_config c;
	mura_optim_config_default(&c, kind);
	c.momentum = momentum;
	c.amsgrad = amsgrad;
	c.weight_decay = 1e-2;
	snprintf(name, sizeof(name), "%s momentum %g amsgrad %d", mura_optim_kind_name(kind), momentum, amsgrad);

	/* A runs 5 steps; B runs 3, is checkpointed into C, which runs 2. */
	struct model a, b, cm;
	struct mura_optim oa, ob, oc;
	model_init(&a, 1);
	model_init(&b, 1);
	model_init(&cm, 1);
	if (mura_optim_init(&oa, &c, a.p, 3) || mura_optim_init(&ob, &c, b.p, 3) ||
	    mura_optim_init(&oc, &c, cm.p, 3)) {
		CHECK(name, 0);
		return;
	}
	a.p[1].frozen = b.p[1].frozen = 1;
	float bias0[3];
	memcpy(bias0, a.w[1], sizeof(bias0));
	for (int s = 0; s < 5; s++) {
		model_grads(&a, s);
		if (s == 2)
			a.p[1].frozen = 0;
		mura_optim_step(&oa);
		if (s == 1) {
			char msg[200];
			snprintf(msg, sizeof(msg), "%s: frozen block untouched", name);
			CHECK(msg, memcmp(bias0, a.w[1], sizeof(bias0)) == 0 && oa.s[1].step == 0);
		}
	}
	for (int s = 0; s < 3; s++) {
		model_grads(&b, s);
		if (s == 2)
			b.p[1].frozen = 0;
		mura_optim_step(&ob);
	}
	/* Checkpoint: weights as the model file would, state through the slots. */
	memcpy(cm.w, b.w, sizeof(b.w));
	size_t ns = mura_optim_slot_count(&ob);
	int ok = ns == mura_optim_slot_count(&oc);
	for (size_t i = 0; ok && i < ns; i++) {
		struct mura_optim_slot sb, sc;
		ok = mura_optim_slot(&ob, i, &sb) == 0 && mura_optim_slot(&oc, i, &sc) == 0 &&
		     strcmp(sb.name, sc.name) == 0 && sb.n == sc.n;
		if (ok && sb.f32)
			memcpy(sc.f32, sb.f32, sb.n * sizeof(float));
		else if (ok)
			*sc.i64 = *sb.i64;
	}
	for (int s = 3; s < 5; s++) {
		model_grads(&cm, s);
		mura_optim_step(&oc);
	}
	snprintf(name + strlen(name), sizeof(name) - strlen(name), ": resumed from slots, bit for bit");
	CHECK(name, ok && memcmp(a.w, cm.w, sizeof(a.w)) == 0);
	mura_optim_free(&oa);
	mura_optim_free(&ob);
	mura_optim_free(&oc);
}

static void test_optim(void)
{
	test_optim_kind(MURA_OPTIM_SGD, 0, 0);
	test_optim_kind(MURA_OPTIM_SGD, 0.9, 0);
	test_optim_kind(MURA_OPTIM_ADAM, 0, 0);
	test_optim_kind(MURA_OPTIM_ADAM, 0, 1);
	test_optim_kind(MURA_OPTIM_ADAMW, 0, 1);

	struct model m;
	struct mura_optim o;
	struct mura_optim_config c;
	model_init(&m, 3);
	mura_optim_config_default(&c, MURA_OPTIM_ADAM);
	c.amsgrad = 1;
	mura_optim_init(&o, &c, m.p, 3);
	struct mura_optim_slot s;
	CHECK("slots adam amsgrad", mura_optim_slot_count(&o) == 12);
	mura_optim_slot(&o, 6, &s);
	CHECK("slot name max_exp_avg_sq", strcmp(s.name, "optim.a.bias.max_exp_avg_sq") == 0 && s.n == 3 && s.f32);
	mura_optim_slot(&o, 11, &s);
	CHECK("slot name step", strcmp(s.name, "optim.b.weight.step") == 0 && s.i64 && !s.f32);
	mura_optim_free(&o);

	c.kind = MURA_OPTIM_SGD;
	c.momentum = 0;
	mura_optim_init(&o, &c, m.p, 3);
	CHECK("slots sgd without momentum", mura_optim_slot_count(&o) == 3);
	mura_optim_free(&o);

	char longname[300];
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = 0;
	m.p[0].name = longname;
	mura_optim_init(&o, &c, m.p, 3);
	CHECK("slot name too long refused", mura_optim_slot(&o, 0, &s) < 0);
	mura_optim_free(&o);

	c.nesterov = 1;
	CHECK("nesterov without momentum refused", mura_optim_init(&o, &c, m.p, 3) < 0);
	mura_optim_config_default(&c, MURA_OPTIM_ADAM);
	c.beta2 = 1;
	CHECK("beta2 1 refused", mura_optim_init(&o, &c, m.p, 3) < 0 && strstr(mura_error_get(), "beta"));
	c.beta2 = 0.999;
	c.lr = -1;
	CHECK("negative lr refused", mura_optim_init(&o, &c, m.p, 3) < 0);
}

/* ---- --run DIR: the PyTorch comparison cases ---- */

static const char *dir;

static void *slurp(const char *name, const char *ext, size_t size, size_t n)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/%s.%s", dir, name, ext);
	FILE *f = fopen(path, "rb");
	void *p = malloc(size * n + 1);
	if (!f || !p || fread(p, size, n, f) != n) {
		fprintf(stderr, "loss_optim: %s: cannot read %zu values\n", path, n);
		exit(1);
	}
	fclose(f);
	return p;
}

static void spill(const char *name, const char *ext, const void *p, size_t size, size_t n)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/%s.%s", dir, name, ext);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(p, size, n, f) != n || fclose(f) != 0) {
		fprintf(stderr, "loss_optim: %s: cannot write\n", path);
		exit(1);
	}
}

/* The value of key=VALUE among the case's words, or die. */
static const char *field(char **words, int nw, const char *key)
{
	size_t k = strlen(key);
	for (int i = 2; i < nw; i++)
		if (strncmp(words[i], key, k) == 0 && words[i][k] == '=')
			return words[i] + k + 1;
	fprintf(stderr, "loss_optim: case %s: no %s\n", words[1], key);
	exit(1);
}

static double num(char **w, int nw, const char *key) { return atof(field(w, nw, key)); }

static void run_loss(char **w, int nw)
{
	const char *name = w[1];
	size_t n = (size_t)num(w, nw, "n");
	struct mura_loss l;
	mura_loss_init(&l);
	if ((l.kind = mura_loss_kind_parse(field(w, nw, "kind"))) < 0)
		exit(1);
	l.gamma = (float)num(w, nw, "gamma");
	l.alpha = (float)num(w, nw, "alpha");
	l.smoothing = num(w, nw, "smoothing");
	/* accum: k batches, each with the step's n images' scale */
	size_t k = strcmp(w[0], "accum") == 0 ? (size_t)num(w, nw, "k") : 1;
	int mode = mura_weights_mode_parse(field(w, nw, "weights"));
	uint64_t *counts = slurp(name, "counts", sizeof(uint64_t), 2 * MURA_TYPE_COUNT);
	if (mode < 0 || mura_class_weights_compute(&l.cw, mode, counts, counts + MURA_TYPE_COUNT,
	                                           num(w, nw, "boost")) < 0) {
		fprintf(stderr, "loss_optim: %s: %s\n", name, mura_error_get());
		exit(1);
	}
	float *z = slurp(name, "z", sizeof(float), n), *y = slurp(name, "y", sizeof(float), n);
	uint8_t *t = slurp(name, "t", 1, n);
	float *dz = malloc(n * sizeof(float));
	double loss = 0;
	for (size_t i = 0, b = n / k; i < k; i++) {
		double sum;
		if (mura_loss_part(&l, z + i * b, y + i * b, t + i * b, b, n, &sum, dz + i * b) < 0) {
			fprintf(stderr, "loss_optim: %s: %s\n", name, mura_error_get());
			exit(1);
		}
		loss += sum;
	}
	loss *= 1.0 / (double)n;
	spill(name, "c_loss", &loss, sizeof(loss), 1);
	spill(name, "c_dz", dz, sizeof(float), n);
	spill(name, "c_w", l.cw.w0, sizeof(float), MURA_TYPE_COUNT);
	char path[4200];
	snprintf(path, sizeof(path), "%s/%s.c_w", dir, name);
	FILE *f = fopen(path, "ab");
	if (!f || fwrite(l.cw.w1, sizeof(float), MURA_TYPE_COUNT, f) != MURA_TYPE_COUNT || fclose(f))
		exit(1);
	free(counts), free(z), free(y), free(t), free(dz);
}

static void run_optim(char **w, int nw)
{
	enum { MAXB = 16 };
	const char *name = w[1];
	struct mura_optim_config c;
	if ((c.kind = mura_optim_kind_parse(field(w, nw, "kind"))) < 0)
		exit(1);
	mura_optim_config_default(&c, c.kind);
	c.lr = num(w, nw, "lr");
	c.momentum = num(w, nw, "momentum");
	c.dampening = num(w, nw, "dampening");
	c.nesterov = (int)num(w, nw, "nesterov");
	c.weight_decay = num(w, nw, "wd");
	c.beta1 = num(w, nw, "beta1");
	c.beta2 = num(w, nw, "beta2");
	c.eps = num(w, nw, "eps");
	c.amsgrad = (int)num(w, nw, "amsgrad");
	int steps = (int)num(w, nw, "steps"), lr_at = (int)num(w, nw, "lr_at");
	double lr2 = num(w, nw, "lr2");

	struct mura_param p[MAXB];
	char frozen[MAXB][64], pname[MAXB][32];
	size_t nb = 0, total = 0;
	char *sizes = strdup(field(w, nw, "sizes")), *nodecay = strdup(field(w, nw, "nodecay"));
	char *fz = strdup(field(w, nw, "frozen")), *s1, *s2, *s3;
	for (char *a = strtok_r(sizes, ",", &s1), *b = strtok_r(nodecay, ",", &s2),
	          *f = strtok_r(fz, ",", &s3);
	     a && b && f && nb < MAXB;
	     a = strtok_r(NULL, ",", &s1), b = strtok_r(NULL, ",", &s2), f = strtok_r(NULL, ",", &s3)) {
		snprintf(pname[nb], sizeof(pname[nb]), "block%zu", nb);
		snprintf(frozen[nb], sizeof(frozen[nb]), "%s", f);
		p[nb] = (struct mura_param){.name = pname[nb], .n = (size_t)atol(a), .no_decay = atoi(b)};
		total += p[nb++].n;
	}
	float *wt = slurp(name, "w0", sizeof(float), total);
	float *g = slurp(name, "g", sizeof(float), total * (size_t)steps);
	for (size_t b = 0, off = 0; b < nb; off += p[b++].n)
		p[b].w = wt + off;

	struct mura_optim o;
	if (mura_optim_init(&o, &c, p, nb) < 0) {
		fprintf(stderr, "loss_optim: %s: %s\n", name, mura_error_get());
		exit(1);
	}
	for (int s = 0; s < steps; s++) {
		if (s == lr_at)
			o.cfg.lr = lr2;
		for (size_t b = 0, off = 0; b < nb; off += p[b++].n) {
			p[b].g = g + (size_t)s * total + off;
			p[b].frozen = frozen[b][s] == '1';
		}
		mura_optim_step(&o);
	}
	spill(name, "c_w", wt, sizeof(float), total);

	/* The state, through the checkpoint slots, in PyTorch's order. */
	float *state = malloc((total * 3 + 1) * sizeof(float));
	int64_t stepv[MAXB];
	size_t ns = 0, nsteps = 0;
	for (size_t i = 0; i < mura_optim_slot_count(&o); i++) {
		struct mura_optim_slot sl;
		if (mura_optim_slot(&o, i, &sl) < 0)
			exit(1);
		if (sl.f32) {
			memcpy(state + ns, sl.f32, sl.n * sizeof(float));
			ns += sl.n;
		} else {
			stepv[nsteps++] = *sl.i64;
		}
	}
	spill(name, "c_state", state, sizeof(float), ns);
	spill(name, "c_step", stepv, sizeof(int64_t), nsteps);
	mura_optim_free(&o);
	free(state), free(wt), free(g), free(sizes), free(nodecay), free(fz);
}

static int run_cases(void)
{
	char path[4200], line[4096];
	snprintf(path, sizeof(path), "%s/cases.txt", dir);
	FILE *f = fopen(path, "r");
	if (!f) {
		perror(path);
		return 1;
	}
	while (fgets(line, sizeof(line), f)) {
		char *words[64], *save;
		int nw = 0;
		for (char *t = strtok_r(line, " \n", &save); t && nw < 64; t = strtok_r(NULL, " \n", &save))
			words[nw++] = t;
		if (nw < 2)
			continue;
		if (strcmp(words[0], "loss") == 0 || strcmp(words[0], "accum") == 0)
			run_loss(words, nw);
		else if (strcmp(words[0], "optim") == 0)
			run_optim(words, nw);
	}
	fclose(f);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--run") == 0) {
		dir = argv[2];
		return run_cases();
	}
	test_weights();
	test_loss();
	test_accumulate();
	test_optim();
	return test_status();
}
