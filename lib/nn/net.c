/*
 * net.c - what the parts of a model (densenet.c, resnet.c, head.c,
 * hybrid.c) build and plan with: the state's tensors registered by name
 * with their initialisation, and the activations laid out in the plan's
 * one arena.  net.h says how the two passes work.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "net.h"

/* ---- the state's tensors ------------------------------------------------ */

static struct net_tensor *
add_tensor(struct net_build *b, const char *prefix, const char *suffix, int kind, int ndim,
           const int64_t *shape, int init, int fan_in, int fan_out)
{
	struct mura_model *m = b->m;
	size_t n = 1;
	struct net_tensor *t = NULL;

	for (int i = 0; i < ndim; i++)
		n *= (size_t)shape[i];
	if (b->pass == 1) {
		t = &m->tensor[b->ntensor];
		if (suffix)
			snprintf(t->t.name, sizeof t->t.name, "%s.%s", prefix, suffix);
		else
			snprintf(t->t.name, sizeof t->t.name, "%s", prefix);
		t->t.kind = kind;
		t->t.ndim = ndim;
		memcpy(t->t.shape, shape, (size_t)ndim * sizeof *shape);
		t->t.n = n;
		t->t.head = b->head;
		t->init = init;
		t->fan_in = fan_in;
		t->fan_out = fan_out;
		switch (kind) {
		case MURA_TENSOR_PARAM:
			t->t.data = m->param + b->nparam;
			t->t.grad = m->grad + b->nparam;
			break;
		case MURA_TENSOR_BUFFER: t->t.data = m->buf + b->nbuf; break;
		case MURA_TENSOR_COUNT: t->t.count = m->count + b->ncount; break;
		}
	}
	if (b->head && m->head_first == (size_t)-1)
		m->head_first = b->ntensor;
	b->ntensor++;
	switch (kind) {
	case MURA_TENSOR_PARAM: b->nparam += n; break;
	case MURA_TENSOR_BUFFER: b->nbuf += n; break;
	case MURA_TENSOR_COUNT: b->ncount += n; break;
	}
	return t;
}

static float *
data_of(struct net_tensor *t)
{
	return t ? t->t.data : NULL;
}

static float *
grad_of(struct net_tensor *t)
{
	return t ? t->t.grad : NULL;
}

static float *
work(struct net_build *b, size_t n)
{
	float *p = b->pass == 1 ? b->m->work + b->nwork : NULL;
	b->nwork += n;
	return p;
}

void
net_conv(struct net_build *b, struct mura_conv *cv, const char *name, int cin, int cout, int k,
         int stride, int pad, int bias, int init)
{
	int64_t ws[4] = {cout, cin, k, k}, bs[1] = {cout};
	int fan_in = cin * k * k, fan_out = cout * k * k;
	struct net_tensor *w = add_tensor(b, name, "weight", MURA_TENSOR_PARAM, 4, ws, init, fan_in, fan_out);

	*cv = (struct mura_conv){cin, cout, k, stride, pad, data_of(w), grad_of(w), NULL, NULL};
	if (bias) {
		struct net_tensor *t = add_tensor(b, name, "bias", MURA_TENSOR_PARAM, 1, bs,
		                                  NET_INIT_UNIFORM_FANIN, fan_in, fan_out);
		cv->b = data_of(t);
		cv->gb = grad_of(t);
	}
}

void
net_bn(struct net_build *b, struct mura_bn *bn, const char *name, int c)
{
	int64_t s[1] = {c};
	struct net_tensor *w = add_tensor(b, name, "weight", MURA_TENSOR_PARAM, 1, s, NET_INIT_ONE, c, c);
	struct net_tensor *bi = add_tensor(b, name, "bias", MURA_TENSOR_PARAM, 1, s, NET_INIT_ZERO, c, c);
	struct net_tensor *rm = add_tensor(b, name, "running_mean", MURA_TENSOR_BUFFER, 1, s, NET_INIT_ZERO, c, c);
	struct net_tensor *rv = add_tensor(b, name, "running_var", MURA_TENSOR_BUFFER, 1, s, NET_INIT_ONE, c, c);
	struct net_tensor *nb = add_tensor(b, name, "num_batches_tracked", MURA_TENSOR_COUNT, 0, s,
	                                   NET_INIT_ZERO, 0, 0);

	bn->c = c;
	bn->w = data_of(w), bn->gw = grad_of(w);
	bn->b = data_of(bi), bn->gb = grad_of(bi);
	bn->rmean = data_of(rm), bn->rvar = data_of(rv);
	bn->nbt = nb ? nb->t.count : NULL;
	bn->mean = work(b, (size_t)c);
	bn->invstd = work(b, (size_t)c);
	bn->scale = work(b, (size_t)c);
	bn->shift = work(b, (size_t)c);
	bn->momentum = 0.1f;
	bn->eps = 1e-5f;
}

void
net_linear(struct net_build *b, struct mura_linear *l, const char *name, int in, int out, int bias_init)
{
	int64_t ws[2] = {out, in}, bs[1] = {out};
	struct net_tensor *w = add_tensor(b, name, "weight", MURA_TENSOR_PARAM, 2, ws,
	                                  NET_INIT_UNIFORM_FANIN, in, out);
	struct net_tensor *bi = add_tensor(b, name, "bias", MURA_TENSOR_PARAM, 1, bs, bias_init, in, out);

	*l = (struct mura_linear){in, out, data_of(w), grad_of(w), data_of(bi), grad_of(bi)};
}

float *
net_param(struct net_build *b, const char *prefix, const char *suffix, int ndim, const int64_t *shape,
          int init, float **grad)
{
	int fan_in = ndim > 1 ? (int)shape[ndim - 1] : (int)shape[0];
	struct net_tensor *t = add_tensor(b, prefix, suffix, MURA_TENSOR_PARAM, ndim, shape, init, fan_in,
	                                  (int)shape[0]);

	*grad = grad_of(t);
	return data_of(t);
}

void
net_init_tensor(struct mura_model *m, struct net_tensor *t, int init)
{
	float *d = t->t.data;

	if (t->t.kind == MURA_TENSOR_COUNT) {
		*t->t.count = 0;
		return;
	}
	for (size_t i = 0; i < t->t.n; i++)
		switch (init) {
		case NET_INIT_ZERO: d[i] = 0; break;
		case NET_INIT_ONE: d[i] = 1; break;
		case NET_INIT_KAIMING_IN: d[i] = (float)(mura_rng_normal(&m->rng) * sqrt(2.0 / t->fan_in)); break;
		case NET_INIT_KAIMING_OUT: d[i] = (float)(mura_rng_normal(&m->rng) * sqrt(2.0 / t->fan_out)); break;
		case NET_INIT_UNIFORM_FANIN: {
			double bound = 1.0 / sqrt((double)t->fan_in);
			d[i] = (float)mura_rng_uniform(&m->rng, -bound, bound);
			break;
		}
		case NET_INIT_TRUNC_NORMAL: {
			double v;
			do
				v = mura_rng_normal(&m->rng) * 0.02;
			while (fabs(v) > 2);
			d[i] = (float)v;
			break;
		}
		}
}

/* ---- planning: activations ---------------------------------------------- */

size_t
net_bytes(size_t nfloats)
{
	return (nfloats * sizeof(float) + 63) / 64 * 64;
}

float *
net_take(struct net_plan *p, size_t nfloats)
{
	size_t o = p->off;

	p->off += net_bytes(nfloats);
	return p->pass ? (float *)(p->base + o) : NULL;
}

float *
net_slot(struct net_plan *p, int slot, size_t nfloats)
{
	if (p->pass == 0) {
		if (net_bytes(nfloats) > p->slot[slot])
			p->slot[slot] = net_bytes(nfloats);
		return NULL;
	}
	return (float *)(p->base + p->slot_off[slot]);
}

float *
net_keep(struct net_plan *p, int slot, size_t nfloats)
{
	return p->training ? net_take(p, nfloats) : net_slot(p, slot, nfloats);
}

void
net_conv_scratch(struct net_plan *p, const struct mura_conv *cv, const struct mura_fm *x)
{
	size_t s = mura_conv_scratch(cv, x, p->nthreads);
	if (s > p->scratch)
		p->scratch = s;
}

/* ---- capturing a layer ------------------------------------------------------ */

void
net_capture_act(struct mura_model *m, int id, const struct mura_fm *a)
{
	struct net_capture *c = &m->cap;

	if (id != c->id || !c->act)
		return;
	memcpy(c->act, a->d, mura_fm_size(a) * sizeof *a->d);
	c->have_act = 1;
}

int
net_capture_grad(struct mura_model *m, int id, const struct mura_fm *g)
{
	struct net_capture *c = &m->cap;

	if (id != c->id || !c->grad || !m->explain)
		return 0;
	memcpy(c->grad, g->d, mura_fm_size(g) * sizeof *g->d);
	c->have_grad = 1;
	return 1;
}
