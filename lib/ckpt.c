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
#include "util.h"

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
	int optional;      /* may be absent: the member is zeroed, or absent's value */
	size_t off, size;  /* the member's place and size in the struct */
	/* A setting's mura-train option (NULL: none, the data's), for
	 * messages: its value as written when the option is not given (NULL:
	 * it always has one), and whether it is a flag without an argument. */
	const char *option, *unset;
	int flag;
	const char *absent;  /* an optional key's value when it is absent (NULL: zero) */
};

struct text {
	const char *name;  /* the metadata key, for messages */
	const struct field *f;
	size_t n;
};

/* A row: the key is the member's name. */
#define ROW(type, member, kind, optional, option, unset, flag, absent) \
	{#member, kind, optional, offsetof(type, member), sizeof(((type *)0)->member), option, unset, flag, absent}
#define STATE(member, kind, optional) ROW(struct mura_ckpt_state, member, kind, optional, NULL, NULL, 0, NULL)
/* A setting, the option that sets it and its text when not given. */
#define SETTING(member, kind, option, unset) ROW(struct mura_ckpt_settings, member, kind, 0, option, unset, 0, NULL)
#define FLAG(member, option) ROW(struct mura_ckpt_settings, member, CKPT_INT, 0, option, "0", 1, NULL)
/* A setting newer than some checkpoints: absent, it is what those runs did. */
#define SETTING_SINCE(member, kind, option, unset, absent) \
	ROW(struct mura_ckpt_settings, member, kind, 1, option, unset, 0, absent)

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
	STATE(epochs, CKPT_INT, 1),
	STATE(ranks, CKPT_INT, 1),
	STATE(sync_bn, CKPT_INT, 1),
	STATE(base_lr, CKPT_DOUBLE, 1),
	STATE(sched_steps, CKPT_LONG, 1),
	STATE(step_lr, CKPT_DOUBLE, 1),
	STATE(precision, CKPT_STRING, 1),
};

static const struct field settings_fields[] = {
	SETTING(batch, CKPT_INT, "--batch", NULL),
	SETTING(seed, CKPT_U64, "--seed", NULL),
	SETTING(optimizer, CKPT_STRING, "--optimizer", NULL),
	SETTING(momentum, CKPT_DOUBLE, "--momentum", NULL),
	SETTING(dampening, CKPT_DOUBLE, NULL, NULL),
	FLAG(nesterov, "--nesterov"),
	SETTING(weight_decay, CKPT_DOUBLE, "--weight-decay", NULL),
	SETTING(betas, CKPT_PAIR, "--betas", NULL),
	SETTING(eps, CKPT_DOUBLE, NULL, NULL),
	SETTING(amsgrad, CKPT_INT, NULL, NULL),
	SETTING(loss, CKPT_STRING, "--loss", NULL),
	SETTING(gamma, CKPT_FLOAT, "--gamma", NULL),
	SETTING(alpha, CKPT_FLOAT, "--alpha", "-1"),
	SETTING(class_weights, CKPT_STRING, "--class-weights", NULL),
	SETTING(boost, CKPT_DOUBLE, "--boost", NULL),
	SETTING(augment, CKPT_STRING, "--augment", NULL),
	SETTING(monitor, CKPT_STRING, "--monitor", NULL),
	SETTING(plateau_factor, CKPT_DOUBLE, "--plateau-factor", NULL),
	SETTING(plateau_patience, CKPT_INT, "--plateau-patience", NULL),
	SETTING(early_stop, CKPT_INT, "--early-stop", NULL),
	SETTING(keep_top, CKPT_INT, "--keep-top", NULL),
	FLAG(freeze_backbone, "--freeze-backbone"),
	SETTING(unfreeze_at, CKPT_INT, "--unfreeze-at", "0"),
	SETTING(lr_after_unfreeze, CKPT_DOUBLE, "--lr-after-unfreeze", "-1"),
	SETTING(train, CKPT_RECORDS, NULL, NULL),
	SETTING(input, CKPT_SIZE, NULL, NULL),
	SETTING(valid, CKPT_RECORDS, NULL, NULL),
	SETTING_SINCE(schedule, CKPT_STRING, "--schedule", NULL, "plateau"),
	SETTING_SINCE(step_size, CKPT_INT, "--step-size", "0", "0"),
	SETTING_SINCE(lr_gamma, CKPT_DOUBLE, "--lr-gamma", NULL, "0.1"),
	SETTING_SINCE(t_max, CKPT_INT, "--t-max", "0", "0"),
	SETTING_SINCE(min_lr, CKPT_DOUBLE, "--min-lr", NULL, "0"),
	SETTING_SINCE(max_lr, CKPT_DOUBLE, "--max-lr", "0", "0"),
	SETTING_SINCE(pct_start, CKPT_DOUBLE, "--pct-start", NULL, "0.3"),
	SETTING_SINCE(warmup, CKPT_LONG, "--warmup", "0", "0"),
	SETTING_SINCE(warmup_factor, CKPT_DOUBLE, "--warmup-factor", NULL, "0.01"),
	SETTING_SINCE(label_smoothing, CKPT_DOUBLE, "--label-smoothing", "0", "0"),
	SETTING_SINCE(accumulate, CKPT_INT, "--accumulate", NULL, "1"),
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

/* A double or float: exact, as ckpt.h writes it, or short (for messages). */
static void
add_real(struct out *w, double v, int is_float, int shortest)
{
	char b[40];

	if (shortest) {
		mura_format_shortest(b, sizeof b, v, is_float);
		add(w, "%s", b);
	} else
		add(w, is_float ? "%.9g" : "%.17g", v);
}

/* The value of f in obj, as ckpt.h writes its type; numbers in their
 * shortest text when shortest. */
static void
put(struct out *w, const struct field *f, const void *obj, int shortest)
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
		add_real(w, *(const double *)m, 0, shortest);
		break;
	case CKPT_FLOAT:
		add_real(w, (double)*(const float *)m, 1, shortest);
		break;
	case CKPT_STRING:
		add(w, "%s", (const char *)m);
		break;
	case CKPT_PAIR:
		add_real(w, ((const double *)m)[0], 0, shortest);
		add(w, ",");
		add_real(w, ((const double *)m)[1], 0, shortest);
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
		put(&w, f, obj, 0);
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
			if (f->absent && get(f, f->absent, obj) < 0)
				assert(!"an absent value that does not parse");
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

/* How a differing setting reads in a message: as its option says it
 * ("--batch 8", "--nesterov", "no --alpha"), or as key=value
 * ("train=51 records"). */
static void
show(char *buf, size_t len, const struct field *f, const void *obj)
{
	struct out w = {buf, len, 0};
	char v[MURA_CKPT_TEXT_MAX];
	struct out wv = {v, sizeof v, 0};

	put(&wv, f, obj, 0);
	if (!f->option)
		add(&w, "%s=%s", f->key, v);
	else if (f->unset && strcmp(v, f->unset) == 0)
		add(&w, "no %s", f->option);
	else if (f->flag)
		add(&w, "%s", f->option);
	else {
		add(&w, "%s ", f->option);
		put(&w, f, obj, 1);
	}
}
_Static_assert(sizeof(((struct mura_ckpt_diff *)0)->mine) > sizeof(((struct mura_ckpt_settings *)0)->augment) + 32,
               "room for the longest setting and its option");

size_t
mura_ckpt_settings_diff(const struct mura_ckpt_settings *mine, const struct mura_ckpt_settings *theirs,
                        struct mura_ckpt_diff *d, size_t max)
{
	char a[MURA_CKPT_TEXT_MAX], b[MURA_CKPT_TEXT_MAX];
	size_t n = 0;

	for (size_t i = 0; i < settings_text.n; i++) {
		const struct field *f = &settings_text.f[i];
		struct out wa = {a, sizeof a, 0}, wb = {b, sizeof b, 0};
		put(&wa, f, mine, 0);
		put(&wb, f, theirs, 0);
		if (strcmp(a, b) == 0)
			continue;
		if (n < max) {
			d[n].key = f->key;
			d[n].option = f->option;
			show(d[n].mine, sizeof d[n].mine, f, mine);
			show(d[n].theirs, sizeof d[n].theirs, f, theirs);
		}
		n++;
	}
	return n;
}
