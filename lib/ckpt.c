/*
 * ckpt.c - the checkpoint's train_state and train_settings texts of
 * ckpt.h.  Each text is one table of rows (key, type, place in its struct),
 * in the order the keys are written; the same rows drive writing, reading
 * and the comparison of settings, so the three cannot disagree on a key or
 * its format.  The types' formats are the ones ckpt.h specifies.
 */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt.h"
#include "error.h"

enum ckpt_kind {
	CKPT_INT,      /* int */
	CKPT_LONG,     /* long */
	CKPT_U64,      /* uint64_t */
	CKPT_DOUBLE,   /* double */
	CKPT_FLOAT,    /* float */
	CKPT_STRING,   /* char[N] */
	CKPT_PAIR,     /* double[2] */
	CKPT_SIZE,     /* uint32_t[2]: h, w */
	CKPT_RECORDS,  /* uint64_t, or MURA_CKPT_STREAM */
	CKPT_TOP,      /* struct mura_ckpt_top_list */
	CKPT_KIND_COUNT
};

/* The member each kind takes (0: any, a string's array), and what a value
 * that does not parse is not. */
static const struct {
	size_t size;
	const char *what;
} kinds[] = {
	[CKPT_INT] = {sizeof(int), "an integer"},
	[CKPT_LONG] = {sizeof(long), "an integer"},
	[CKPT_U64] = {sizeof(uint64_t), "an unsigned integer"},
	[CKPT_DOUBLE] = {sizeof(double), "a number"},
	[CKPT_FLOAT] = {sizeof(float), "a number"},
	[CKPT_STRING] = {0, NULL},  /* too long, the only fault */
	[CKPT_PAIR] = {2 * sizeof(double), "two numbers A,B"},
	[CKPT_SIZE] = {2 * sizeof(uint32_t), "HxW"},
	[CKPT_RECORDS] = {sizeof(uint64_t), "'N records' or 'a stream'"},
	[CKPT_TOP] = {sizeof(struct mura_ckpt_top_list), "a list LOSS:EPOCH,..."},
};
_Static_assert(sizeof kinds / sizeof kinds[0] == CKPT_KIND_COUNT, "a row of kinds[] for every kind");

struct field {
	const char *key;
	enum ckpt_kind kind;
	int optional;      /* may be absent: the member is zeroed */
	size_t off, size;  /* the member's place and size in the struct */
};

struct text {
	const char *name;  /* the metadata key, for messages */
	const struct field *f;
	size_t n;
};

/* A row: the key is the member's name. */
#define ROW(type, member, kind, optional) \
	{#member, kind, optional, offsetof(type, member), sizeof(((type *)0)->member)}
#define STATE(member, kind, optional) ROW(struct mura_ckpt_state, member, kind, optional)
#define SETTING(member, kind) ROW(struct mura_ckpt_settings, member, kind, 0)

static const struct field state_fields[] = {
	STATE(epoch, CKPT_INT, 0),
	STATE(phase, CKPT_INT, 0),
	STATE(step, CKPT_LONG, 0),
	STATE(lr, CKPT_DOUBLE, 0),
	STATE(loss_sum, CKPT_DOUBLE, 0),
	STATE(correct, CKPT_U64, 0),
	STATE(seen, CKPT_U64, 0),
	STATE(seconds, CKPT_DOUBLE, 0),
	STATE(train_seconds, CKPT_DOUBLE, 0),
	STATE(plateau_best, CKPT_DOUBLE, 0),
	STATE(plateau_bad, CKPT_INT, 0),
	STATE(best, CKPT_DOUBLE, 0),
	STATE(best_epoch, CKPT_INT, 0),
	STATE(wait, CKPT_INT, 0),
	STATE(total_steps, CKPT_LONG, 0),
	STATE(threads, CKPT_INT, 1),
	STATE(top, CKPT_TOP, 1),
};

static const struct field settings_fields[] = {
	SETTING(batch, CKPT_INT),
	SETTING(seed, CKPT_U64),
	SETTING(optimizer, CKPT_STRING),
	SETTING(momentum, CKPT_DOUBLE),
	SETTING(dampening, CKPT_DOUBLE),
	SETTING(nesterov, CKPT_INT),
	SETTING(weight_decay, CKPT_DOUBLE),
	SETTING(betas, CKPT_PAIR),
	SETTING(eps, CKPT_DOUBLE),
	SETTING(amsgrad, CKPT_INT),
	SETTING(loss, CKPT_STRING),
	SETTING(gamma, CKPT_FLOAT),
	SETTING(alpha, CKPT_FLOAT),
	SETTING(class_weights, CKPT_STRING),
	SETTING(boost, CKPT_DOUBLE),
	SETTING(augment, CKPT_STRING),
	SETTING(monitor, CKPT_STRING),
	SETTING(plateau_factor, CKPT_DOUBLE),
	SETTING(plateau_patience, CKPT_INT),
	SETTING(early_stop, CKPT_INT),
	SETTING(keep_top, CKPT_INT),
	SETTING(freeze_backbone, CKPT_INT),
	SETTING(unfreeze_at, CKPT_INT),
	SETTING(lr_after_unfreeze, CKPT_DOUBLE),
	SETTING(train, CKPT_RECORDS),
	SETTING(input, CKPT_SIZE),
	SETTING(valid, CKPT_RECORDS),
};

static const struct text state_text = {"train_state", state_fields,
                                       sizeof state_fields / sizeof state_fields[0]};
static const struct text settings_text = {"train_settings", settings_fields,
                                          sizeof settings_fields / sizeof settings_fields[0]};

/* ---- writing ------------------------------------------------------------ */

/* An output buffer that counts what did not fit, as snprintf does. */
struct out {
	char *buf;
	size_t len, o;
};

static void MURA_PRINTF(2, 3)
add(struct out *w, const char *fmt, ...)
{
	va_list ap;
	int k;

	va_start(ap, fmt);
	k = vsnprintf(w->o < w->len ? w->buf + w->o : NULL, w->o < w->len ? w->len - w->o : 0, fmt, ap);
	va_end(ap);
	w->o += k > 0 ? (size_t)k : 0;
}

/* The value of f in obj, as ckpt.h writes its type. */
static void
put(struct out *w, const struct field *f, const void *obj)
{
	const void *m = (const char *)obj + f->off;

	assert(!kinds[f->kind].size || kinds[f->kind].size == f->size);
	switch (f->kind) {
	case CKPT_INT:
		add(w, "%d", *(const int *)m);
		break;
	case CKPT_LONG:
		add(w, "%ld", *(const long *)m);
		break;
	case CKPT_U64:
		add(w, "%llu", (unsigned long long)*(const uint64_t *)m);
		break;
	case CKPT_DOUBLE:
		add(w, "%.17g", *(const double *)m);
		break;
	case CKPT_FLOAT:
		add(w, "%.9g", (double)*(const float *)m);
		break;
	case CKPT_STRING:
		add(w, "%s", (const char *)m);
		break;
	case CKPT_PAIR:
		add(w, "%.17g,%.17g", ((const double *)m)[0], ((const double *)m)[1]);
		break;
	case CKPT_SIZE:
		add(w, "%ux%u", ((const uint32_t *)m)[0], ((const uint32_t *)m)[1]);
		break;
	case CKPT_RECORDS:
		if (*(const uint64_t *)m == MURA_CKPT_STREAM)
			add(w, "a stream");
		else
			add(w, "%llu records", (unsigned long long)*(const uint64_t *)m);
		break;
	case CKPT_TOP: {
		const struct mura_ckpt_top_list *t = m;
		for (int i = 0; i < t->n; i++)
			add(w, "%s%.17g:%d", i ? "," : "", t->e[i].loss, t->e[i].epoch);
		break;
	}
	case CKPT_KIND_COUNT:
		assert(!"a field of no kind");
	}
}

static int
format(const struct text *t, const void *obj, char *buf, size_t len)
{
	struct out w = {buf, len, 0};

	assert(len > 0);
	buf[0] = 0;
	for (size_t i = 0; i < t->n; i++) {
		const struct field *f = &t->f[i];
		if (f->kind == CKPT_STRING) {
			const char *s = (const char *)obj + f->off;
			assert(memchr(s, 0, f->size));
			if (strchr(s, '\n'))
				return mura_error("%s: %s holds a newline", t->name, f->key);
		}
		add(&w, "%s=", f->key);
		put(&w, f, obj);
		add(&w, "\n");
	}
	if (w.o >= len)
		return mura_error("%s: %zu bytes, more than %zu", t->name, w.o, len - 1);
	return 0;
}

int
mura_ckpt_state_format(const struct mura_ckpt_state *s, char *buf, size_t len)
{
	return format(&state_text, s, buf, len);
}

int
mura_ckpt_settings_format(const struct mura_ckpt_settings *s, char *buf, size_t len)
{
	return format(&settings_text, s, buf, len);
}

/* ---- reading ------------------------------------------------------------ */

/* The value of key in a text of "key=value" lines: where it starts, *n its
 * length; NULL if the key is not there.  The first occurrence counts. */
static const char *
find(const char *text, const char *key, size_t *n)
{
	size_t k = strlen(key);

	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (strncmp(p, key, k) == 0 && p[k] == '=') {
			*n = strcspn(p + k + 1, "\n");
			return p + k + 1;
		}
	}
	return NULL;
}

/* Decimal digits at *p, at most max: 0 and *p past them, or -1. */
static int
digits(const char **p, uint64_t max, uint64_t *out)
{
	const char *s = *p;
	uint64_t v = 0;

	if (*s < '0' || *s > '9')
		return -1;
	for (; *s >= '0' && *s <= '9'; s++) {
		unsigned d = (unsigned)(*s - '0');
		if (v > (max - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*p = s;
	*out = v;
	return 0;
}

/* An integer at *p within [lo, hi]: 0 and *p past it, or -1. */
static int
integer(const char **p, long long lo, long long hi, long long *out)
{
	char *end;

	errno = 0;
	*out = strtoll(*p, &end, 10);
	if (end == *p || errno || *out < lo || *out > hi)
		return -1;
	*p = end;
	return 0;
}

/* A number at *p: 0 and *p past it, or -1. */
static int
number(const char **p, double *out)
{
	char *end;

	*out = strtod(*p, &end);
	if (end == *p)
		return -1;
	*p = end;
	return 0;
}

/* Parse v, the whole value of f, into obj's member: 0, or -1. */
static int
get(const struct field *f, const char *v, void *obj)
{
	void *m = (char *)obj + f->off;
	const char *p = v;
	long long ll;
	uint64_t u, h, w;
	char *end;

	assert(!kinds[f->kind].size || kinds[f->kind].size == f->size);
	switch (f->kind) {
	case CKPT_INT:
		if (integer(&p, INT_MIN, INT_MAX, &ll) < 0 || *p)
			return -1;
		*(int *)m = (int)ll;
		return 0;
	case CKPT_LONG:
		if (integer(&p, LONG_MIN, LONG_MAX, &ll) < 0 || *p)
			return -1;
		*(long *)m = (long)ll;
		return 0;
	case CKPT_U64:
		if (digits(&p, UINT64_MAX, &u) < 0 || *p)
			return -1;
		*(uint64_t *)m = u;
		return 0;
	case CKPT_DOUBLE:
		return number(&p, (double *)m) < 0 || *p ? -1 : 0;
	case CKPT_FLOAT:
		*(float *)m = strtof(v, &end);
		return end == v || *end ? -1 : 0;
	case CKPT_STRING:
		if (strlen(v) >= f->size)
			return -1;
		memcpy(m, v, strlen(v) + 1);
		return 0;
	case CKPT_PAIR:
		return number(&p, (double *)m) < 0 || *p++ != ',' || number(&p, (double *)m + 1) < 0 || *p ? -1 : 0;
	case CKPT_SIZE:
		if (digits(&p, UINT32_MAX, &h) < 0 || *p++ != 'x' || digits(&p, UINT32_MAX, &w) < 0 || *p)
			return -1;
		((uint32_t *)m)[0] = (uint32_t)h, ((uint32_t *)m)[1] = (uint32_t)w;
		return 0;
	case CKPT_RECORDS:
		if (strcmp(v, "a stream") == 0)
			u = MURA_CKPT_STREAM;
		else if (digits(&p, MURA_CKPT_STREAM - 1, &u) < 0 || strcmp(p, " records") != 0)
			return -1;
		*(uint64_t *)m = u;
		return 0;
	case CKPT_TOP: {
		struct mura_ckpt_top_list *t = m;
		for (t->n = 0; *p; t->n++) {
			if (t->n == MURA_CKPT_TOP_MAX || number(&p, &t->e[t->n].loss) < 0 || *p++ != ':' ||
			    integer(&p, INT_MIN, INT_MAX, &ll) < 0)
				return -1;
			t->e[t->n].epoch = (int)ll;
			if (*p == ',' && p[1])
				p++;
			else if (*p)
				return -1;
		}
		return 0;
	}
	case CKPT_KIND_COUNT:
		break;
	}
	assert(!"a field of no kind");
	return -1;
}

static int
parse(const struct text *t, void *obj, const char *text)
{
	char v[MURA_CKPT_TEXT_MAX];

	for (size_t i = 0; i < t->n; i++) {
		const struct field *f = &t->f[i];
		size_t n;
		const char *p = find(text, f->key, &n);
		if (!p) {
			if (!f->optional)
				return mura_error("%s: no %s", t->name, f->key);
			memset((char *)obj + f->off, 0, f->size);
			continue;
		}
		if (n >= sizeof v)
			return mura_error("%s: %s: a value of %zu bytes, more than %zu", t->name, f->key, n,
			                  sizeof v - 1);
		memcpy(v, p, n);
		v[n] = 0;
		if (get(f, v, obj) < 0) {
			if (f->kind == CKPT_STRING)
				return mura_error("%s: %s '%s' is longer than %zu bytes", t->name, f->key, v, f->size - 1);
			return mura_error("%s: %s '%s' is not %s", t->name, f->key, v, kinds[f->kind].what);
		}
	}
	return 0;
}

int
mura_ckpt_state_parse(struct mura_ckpt_state *s, const char *text)
{
	if (parse(&state_text, s, text) < 0)
		return -1;
	if (s->epoch < 1 || s->step < 0 || (s->phase != 0 && s->phase != 1))
		return mura_error("%s: epoch %d, step %ld, phase %d make no sense", state_text.name, s->epoch,
		                  s->step, s->phase);
	return 0;
}

int
mura_ckpt_settings_parse(struct mura_ckpt_settings *s, const char *text)
{
	return parse(&settings_text, s, text);
}

/* ---- comparing ----------------------------------------------------------- */

int
mura_ckpt_settings_compare(const struct mura_ckpt_settings *mine, const char *theirs)
{
	char v[MURA_CKPT_TEXT_MAX];

	for (size_t i = 0; i < settings_text.n; i++) {
		const struct field *f = &settings_text.f[i];
		struct out w = {v, sizeof v, 0};
		size_t n;
		const char *old = find(theirs, f->key, &n);
		put(&w, f, mine);
		if (!old)
			return mura_error("the checkpoint does not record %s", f->key);
		if (n != strlen(v) || memcmp(old, v, n) != 0)
			return mura_error("the checkpoint was made with %s=%.*s, this run has %s=%s: "
			                  "resume with the options of the interrupted run",
			                  f->key, (int)n, old, f->key, v);
	}
	return 0;
}
