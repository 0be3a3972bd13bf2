/*
 * tune.c - the search space, the study's settings and its journal (the
 * formats are specified in tune.h).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "error.h"
#include "tune.h"
#include "util.h"

#define STUDY_MAGIC "mura-tune study 1"

static const char *const kind_name[] = {"uniform", "log-uniform", "int-uniform", "choice"};
static const char *const state_name[] = {"running", "complete", "pruned", "paused", "failed"};
static const char *const sampler_name[] = {"tpe", "random"};
static const char *const pruner_name[] = {"none", "median", "asha"};
_Static_assert(sizeof kind_name / sizeof kind_name[0] == MURA_TUNE_KIND_COUNT, "kind_name");
_Static_assert(sizeof state_name / sizeof state_name[0] == MURA_TUNE_STATE_COUNT, "state_name");
_Static_assert(sizeof sampler_name / sizeof sampler_name[0] == MURA_TUNE_SAMPLER_COUNT, "sampler_name");
_Static_assert(sizeof pruner_name / sizeof pruner_name[0] == MURA_TUNE_PRUNER_COUNT, "pruner_name");

/* The columns of mura-train's log that a study may monitor, and whether
 * higher is better. */
static const struct {
	const char *name;
	int maximize;
} metrics[] = {
	{"val_loss", 0}, {"val_auc", 1}, {"val_kappa", 1}, {"train_loss", 0}, {"train_acc", 1},
};

/* The index of s in names, or -1 with mura_error naming the choices. */
static int
lookup(const char *const *names, int n, const char *s, const char *what)
{
	char list[256] = "";

	for (int i = 0; i < n; i++)
		if (!strcmp(names[i], s))
			return i;
	for (int i = 0; i < n; i++)
		snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", names[i]);
	return mura_error("unknown %s '%s' (%s)", what, s, list);
}

const char *mura_tune_state_name(int k) { return k >= 0 && k < MURA_TUNE_STATE_COUNT ? state_name[k] : "?"; }
const char *mura_tune_sampler_name(int k) { return k >= 0 && k < MURA_TUNE_SAMPLER_COUNT ? sampler_name[k] : "?"; }
const char *mura_tune_pruner_name(int k) { return k >= 0 && k < MURA_TUNE_PRUNER_COUNT ? pruner_name[k] : "?"; }
int mura_tune_sampler_parse(const char *s) { return lookup(sampler_name, MURA_TUNE_SAMPLER_COUNT, s, "sampler"); }
int mura_tune_pruner_parse(const char *s) { return lookup(pruner_name, MURA_TUNE_PRUNER_COUNT, s, "pruner"); }

void
mura_tune_settings_default(struct mura_tune_settings *c)
{
	memset(c, 0, sizeof *c);
	snprintf(c->metric, sizeof c->metric, "val_loss");
	c->sampler = MURA_TUNE_TPE;
	c->pruner = MURA_TUNE_MEDIAN;
	c->seed = 1;
	c->startup = 10;
	c->epochs = 10;
	c->eta = 3;
	c->min_epochs = 1;
}

int
mura_tune_metric_set(struct mura_tune_settings *c, const char *name)
{
	for (size_t i = 0; i < sizeof metrics / sizeof metrics[0]; i++)
		if (!strcmp(metrics[i].name, name)) {
			snprintf(c->metric, sizeof c->metric, "%s", name);
			c->maximize = metrics[i].maximize;
			return 0;
		}
	return mura_error("unknown metric '%s' (val_loss, val_auc, val_kappa, train_loss, train_acc)", name);
}

/* ---- the space ---------------------------------------------------------------- */

void
mura_tune_space_free(struct mura_tune_space *s)
{
	for (int i = 0; i < s->n; i++)
		for (int k = 0; k < s->p[i].nchoice; k++)
			free(s->p[i].choice[k]);
	free(s->text);
	memset(s, 0, sizeof *s);
}

static int
valid_name(const char *w)
{
	size_t n = strlen(w);
	if (!n || n > 31 || w[0] == '-')
		return 0;
	return strspn(w, "abcdefghijklmnopqrstuvwxyz0123456789-") == n;
}

/* One line's words, split at blanks, in place; at most max. */
static int
split_words(char *line, char **w, int max)
{
	int n = 0;
	for (char *p = strtok(line, " \t\r"); p; p = strtok(NULL, " \t\r")) {
		if (n == max)
			return max + 1;
		w[n++] = p;
	}
	return n;
}

static int
parse_line(struct mura_tune_space *s, char *line)
{
	char *w[MURA_TUNE_MAX_CHOICES + 3];
	struct mura_tune_param *p;
	int n, kind;

	if ((n = split_words(line, w, MURA_TUNE_MAX_CHOICES + 2)) == 0)
		return 0;
	if (n > MURA_TUNE_MAX_CHOICES + 2)
		return mura_error("more than %d choices", MURA_TUNE_MAX_CHOICES);
	if (!valid_name(w[0]))
		return mura_error("'%s' is not an option name (letters, digits and '-', at most 31)", w[0]);
	for (int i = 0; i < s->n; i++)
		if (!strcmp(s->p[i].name, w[0]))
			return mura_error("%s: given twice", w[0]);
	if (n < 2)
		return mura_error("%s: no distribution (uniform, log-uniform, int-uniform or choice)", w[0]);
	if ((kind = lookup(kind_name, MURA_TUNE_KIND_COUNT, w[1], "distribution")) < 0)
		return mura_error_prefix("%s", w[0]);
	if (s->n == MURA_TUNE_MAX_PARAMS)
		return mura_error("more than %d parameters", MURA_TUNE_MAX_PARAMS);
	p = &s->p[s->n];
	memset(p, 0, sizeof *p);
	snprintf(p->name, sizeof p->name, "%s", w[0]);
	p->kind = kind;
	if (kind == MURA_TUNE_CHOICE) {
		if (n < 4)
			return mura_error("%s: choice needs at least two words", w[0]);
		for (int i = 2; i < n; i++) {
			if (strspn(w[i], "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._+-") != strlen(w[i]))
				return mura_error("%s: choice '%s': letters, digits and ._+- only", w[0], w[i]);
			for (int k = 2; k < i; k++)
				if (!strcmp(w[k], w[i]))
					return mura_error("%s: choice '%s' given twice", w[0], w[i]);
			if (!(p->choice[p->nchoice] = strdup(w[i])))
				return mura_error("out of memory");
			p->nchoice++;
		}
	} else {
		if (n != 4)
			return mura_error("%s: %s takes two numbers, LO and HI", w[0], w[1]);
		if (mura_parse_double(w[2], -1e300, 1e300, &p->lo) < 0 || mura_parse_double(w[3], -1e300, 1e300, &p->hi) < 0)
			return mura_error_prefix("%s", w[0]);
		if (!(p->lo < p->hi))
			return mura_error("%s: LO %s is not below HI %s", w[0], w[2], w[3]);
		if (kind == MURA_TUNE_LOG_UNIFORM && !(p->lo > 0))
			return mura_error("%s: log-uniform needs LO above 0", w[0]);
		if (kind == MURA_TUNE_INT_UNIFORM &&
		    (p->lo != floor(p->lo) || p->hi != floor(p->hi) || fabs(p->lo) > 1e15 || fabs(p->hi) > 1e15))
			return mura_error("%s: int-uniform takes integers", w[0]);
	}
	s->n++;
	return 0;
}

int
mura_tune_space_parse(struct mura_tune_space *s, const char *text, const char *name)
{
	char *copy, *line, *next;
	int lineno = 0;

	memset(s, 0, sizeof *s);
	if (!(s->text = strdup(text)) || !(copy = strdup(text)))
		return mura_error("out of memory");
	for (line = copy; line; line = next) {
		char *hash;
		if ((next = strchr(line, '\n')))
			*next++ = 0;
		lineno++;
		if ((hash = strchr(line, '#')))
			*hash = 0;
		if (parse_line(s, line) < 0) {
			free(copy);
			mura_error_prefix("%s: line %d", name, lineno);
			mura_tune_space_free(s);
			return -1;
		}
	}
	free(copy);
	if (!s->n) {
		mura_tune_space_free(s);
		return mura_error("%s: no parameters", name);
	}
	return 0;
}

/* A whole small text file; NULL with mura_error set. */
static char *
slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t n = 0, cap = 0;
	int c;

	if (!f) {
		mura_error("%s: %s", path, strerror(errno));
		return NULL;
	}
	while ((c = getc(f)) != EOF) {
		if (n + 2 > cap && mura_grow(&buf, &cap, n + 2, 1) < 0)
			break;
		if (!c) {
			mura_error("%s: a NUL byte: not a text file", path);
			break;
		}
		buf[n++] = (char)c;
	}
	if (c != EOF || ferror(f)) {
		if (ferror(f))
			mura_error("%s: read error", path);
		free(buf);
		fclose(f);
		return NULL;
	}
	fclose(f);
	if (!buf && !(buf = malloc(1))) {
		mura_error("out of memory");
		return NULL;
	}
	buf[n] = 0;
	return buf;
}

int
mura_tune_space_read(struct mura_tune_space *s, const char *path)
{
	char *text = slurp(path);
	int rc;

	if (!text)
		return -1;
	rc = mura_tune_space_parse(s, text, path);
	free(text);
	return rc;
}

void
mura_tune_value_format(const struct mura_tune_param *p, double x, char *buf, size_t len)
{
	if (p->kind == MURA_TUNE_CHOICE)
		snprintf(buf, len, "%s", p->choice[(int)x]);
	else if (p->kind == MURA_TUNE_INT_UNIFORM)
		snprintf(buf, len, "%.0f", x);
	else
		mura_format_shortest(buf, len, x, 0);
}

int
mura_tune_value_parse(const struct mura_tune_param *p, const char *s, double *x)
{
	if (p->kind == MURA_TUNE_CHOICE) {
		for (int k = 0; k < p->nchoice; k++)
			if (!strcmp(p->choice[k], s))
				return *x = k, 0;
		return mura_error("%s: '%s' is not one of its choices", p->name, s);
	}
	if (mura_parse_double(s, p->lo, p->hi, x) < 0)
		return mura_error_prefix("%s", p->name);
	return 0;
}

/* ---- the study ---------------------------------------------------------------- */

static int
write_text(const char *dir, const char *name, const char *text)
{
	char path[4200];
	struct mura_out o;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	if (mura_out_open(&o, path) < 0)
		return -1;
	fputs(text, o.f);
	return mura_out_commit(&o);
}

static int
write_settings(const struct mura_tune_study *s)
{
	const struct mura_tune_settings *c = &s->set;
	char text[1024];

	snprintf(text, sizeof text,
	         STUDY_MAGIC "\nmetric %s\nsampler %s\npruner %s\nseed %ld\nstartup %d\nepochs %d\neta %d\n"
	         "min-epochs %d\n",
	         c->metric, sampler_name[c->sampler], pruner_name[c->pruner], c->seed, c->startup, c->epochs, c->eta,
	         c->min_epochs);
	return write_text(s->dir, "study", text);
}

static int
read_settings(struct mura_tune_study *s)
{
	struct mura_tune_settings *c = &s->set;
	char path[4200], *text, *line, *next;
	int lineno = 0, rc = -1;

	snprintf(path, sizeof path, "%s/study", s->dir);
	if (!(text = slurp(path)))
		return -1;
	mura_tune_settings_default(c);
	for (line = text; line && *line; line = next) {
		char *key, *val;
		long v;
		if ((next = strchr(line, '\n')))
			*next++ = 0;
		if (++lineno == 1) {
			if (strcmp(line, STUDY_MAGIC) != 0) {
				mura_error("%s: not a study of this mura-tune (first line '%.40s', want '" STUDY_MAGIC "')",
				           path, line);
				goto out;
			}
			continue;
		}
		key = line;
		if (!(val = strchr(line, ' '))) {
			mura_error("%s: line %d: no value", path, lineno);
			goto out;
		}
		*val++ = 0;
		if (!strcmp(key, "metric")) {
			if (mura_tune_metric_set(c, val) < 0)
				goto bad;
		} else if (!strcmp(key, "sampler")) {
			if ((c->sampler = mura_tune_sampler_parse(val)) < 0)
				goto bad;
		} else if (!strcmp(key, "pruner")) {
			if ((c->pruner = mura_tune_pruner_parse(val)) < 0)
				goto bad;
		} else {
			if (mura_parse_long(val, 0, 1L << 40, &v) < 0)
				goto bad;
			if (!strcmp(key, "seed"))
				c->seed = v;
			else if (!strcmp(key, "startup"))
				c->startup = (int)v;
			else if (!strcmp(key, "epochs") && v >= 1 && v < 1000000)
				c->epochs = (int)v;
			else if (!strcmp(key, "eta") && v >= 2 && v < 1000)
				c->eta = (int)v;
			else if (!strcmp(key, "min-epochs") && v >= 1 && v < 1000000)
				c->min_epochs = (int)v;
			else {
				mura_error("%s: line %d: unknown key or value '%s %s'", path, lineno, key, val);
				goto out;
			}
		}
		continue;
	bad:
		mura_error_prefix("%s: line %d", path, lineno);
		goto out;
	}
	if (lineno == 0) {
		mura_error("%s: empty", path);
		goto out;
	}
	rc = 0;
out:
	free(text);
	return rc;
}

int
mura_tune_study_exists(const char *dir)
{
	char path[4200];
	struct stat st;

	snprintf(path, sizeof path, "%s/study", dir);
	return stat(path, &st) == 0;
}

static int
set_dir(struct mura_tune_study *s, const char *dir)
{
	if (strlen(dir) + 64 > sizeof s->dir)
		return mura_error("%s: path too long", dir);
	for (const char *p = dir; *p; p++)
		if ((unsigned char)*p < 32)
			return mura_error("study folder: a control character in its name");
	snprintf(s->dir, sizeof s->dir, "%s", dir);
	return 0;
}

int
mura_tune_study_create(struct mura_tune_study *s, const char *dir, const struct mura_tune_settings *set,
                       const char *space_path, int argc, char **argv)
{
	char *cmd = NULL;
	size_t len = 1;

	memset(s, 0, sizeof *s);
	if (set_dir(s, dir) < 0)
		return -1;
	if (mura_tune_study_exists(dir))
		return mura_error("%s: holds a study already", dir);
	if (argc < 1 || argc > MURA_TUNE_MAX_ARGS)
		return mura_error("the trainer's command has %d arguments (1 to %d)", argc, MURA_TUNE_MAX_ARGS);
	s->set = *set;
	if (mura_tune_space_read(&s->space, space_path) < 0)
		return -1;
	for (int i = 0; i < argc; i++) {
		for (const char *p = argv[i]; *p; p++)
			if (*p == '\n')
				return mura_error("the trainer's argument %d holds a line break", i + 1);
		len += strlen(argv[i]) + 1;
	}
	if (!(cmd = malloc(len)))
		return mura_error("out of memory");
	cmd[0] = 0;
	for (int i = 0; i < argc; i++) {
		strcat(cmd, argv[i]);
		strcat(cmd, "\n");
		if (!(s->argv[i] = strdup(argv[i]))) {
			free(cmd);
			return mura_error("out of memory");
		}
	}
	s->argc = argc;
	if (mura_mkdirs(dir, 0777) < 0 || write_text(dir, "space", s->space.text) < 0 ||
	    write_text(dir, "command", cmd) < 0 || mura_tune_journal_write(s) < 0 || write_settings(s) < 0) {
		free(cmd);
		return -1;
	}
	free(cmd);
	return 0;
}

void
mura_tune_study_free(struct mura_tune_study *s)
{
	for (int i = 0; i < s->n; i++)
		free(s->t[i].curve);
	free(s->t);
	for (int i = 0; i < s->argc; i++)
		free(s->argv[i]);
	mura_tune_space_free(&s->space);
	memset(s, 0, sizeof *s);
}

struct mura_tune_trial *
mura_tune_trial_add(struct mura_tune_study *s)
{
	struct mura_tune_trial *t;

	if (mura_grow(&s->t, &s->cap, (size_t)s->n + 1, sizeof *s->t) < 0)
		return NULL;
	t = &s->t[s->n];
	memset(t, 0, sizeof *t);
	t->number = s->n++;
	t->state = MURA_TUNE_RUNNING;
	t->value = NAN;
	return t;
}

int
mura_tune_better(const struct mura_tune_study *s, double a, double b)
{
	if (isnan(a))
		return 0;
	if (isnan(b))
		return 1;
	return s->set.maximize ? a > b : a < b;
}

int
mura_tune_trial_push(struct mura_tune_study *s, struct mura_tune_trial *t, double v)
{
	if (mura_grow(&t->curve, &t->cap, (size_t)t->epochs + 1, sizeof *t->curve) < 0)
		return -1;
	t->curve[t->epochs++] = v;
	if (mura_tune_better(s, v, t->value))
		t->value = v;
	return 0;
}

const struct mura_tune_trial *
mura_tune_best(const struct mura_tune_study *s)
{
	const struct mura_tune_trial *best = NULL;

	for (int pass = 0; pass < 2 && !best; pass++)
		for (int i = 0; i < s->n; i++) {
			const struct mura_tune_trial *t = &s->t[i];
			if ((pass == 0 && t->state != MURA_TUNE_COMPLETE) || isnan(t->value))
				continue;
			if (!best || mura_tune_better(s, t->value, best->value))
				best = t;
		}
	return best;
}

/* ---- the journal -------------------------------------------------------------- */

int
mura_tune_journal_write(const struct mura_tune_study *s)
{
	char path[4200], b[64];
	struct mura_out o;

	snprintf(path, sizeof path, "%s/trials.tsv", s->dir);
	if (mura_out_open(&o, path) < 0)
		return -1;
	fputs("trial\tstate\tvalue\tepochs\trung\tpid", o.f);
	for (int k = 0; k < s->space.n; k++)
		fprintf(o.f, "\t%s", s->space.p[k].name);
	fputs("\tcurve\n", o.f);
	for (int i = 0; i < s->n; i++) {
		const struct mura_tune_trial *t = &s->t[i];
		mura_format_shortest(b, sizeof b, t->value, 0);
		fprintf(o.f, "%d\t%s\t%s\t%d\t%d\t%ld", t->number, state_name[t->state], isnan(t->value) ? "nan" : b,
		        t->epochs, t->rung, t->pid);
		for (int k = 0; k < s->space.n; k++) {
			mura_tune_value_format(&s->space.p[k], t->x[k], b, sizeof b);
			fprintf(o.f, "\t%s", b);
		}
		fputc('\t', o.f);
		for (int e = 0; e < t->epochs; e++) {
			mura_format_shortest(b, sizeof b, t->curve[e], 0);
			fprintf(o.f, "%s%s", e ? "," : "", isnan(t->curve[e]) ? "nan" : b);
		}
		fputc('\n', o.f);
	}
	return mura_out_commit(&o);
}

/* A number of the journal, "nan" allowed. */
static int
journal_number(const char *s, double *v)
{
	if (!strcmp(s, "nan"))
		return *v = NAN, 0;
	return mura_parse_double(s, -1e300, 1e300, v);
}

static int
journal_row(struct mura_tune_study *s, char *line)
{
	int ncol = 7 + s->space.n;
	char *f[7 + MURA_TUNE_MAX_PARAMS], *p = line;
	struct mura_tune_trial *t;
	long v;
	int k;

	for (k = 0; k < ncol && p; k++) {
		f[k] = p;
		if ((p = strchr(p, '\t')))
			*p++ = 0;
	}
	if (k != ncol || p)
		return mura_error("%s fields, want %d", p ? "more" : "fewer", ncol);
	if (!(t = mura_tune_trial_add(s)))
		return -1;
	if (mura_parse_long(f[0], 0, 1 << 30, &v) < 0 || v != t->number)
		return mura_error("trial '%s', want %d", f[0], t->number);
	for (t->state = 0; t->state < MURA_TUNE_STATE_COUNT; t->state++)
		if (!strcmp(f[1], state_name[t->state]))
			break;
	if (t->state == MURA_TUNE_STATE_COUNT)
		return mura_error("unknown state '%s'", f[1]);
	if (mura_parse_long(f[4], 0, 1000, &v) < 0)
		return mura_error_prefix("rung");
	t->rung = (int)v;
	if (mura_parse_long(f[5], 0, 1L << 40, &t->pid) < 0)
		return mura_error_prefix("pid");
	for (k = 0; k < s->space.n; k++)
		if (mura_tune_value_parse(&s->space.p[k], f[6 + k], &t->x[k]) < 0)
			return -1;
	for (char *c = f[6 + s->space.n], *n; *c; c = n) {
		double x;
		if ((n = strchr(c, ',')))
			*n++ = 0;
		else
			n = c + strlen(c);
		if (journal_number(c, &x) < 0)
			return mura_error_prefix("curve");
		if (mura_tune_trial_push(s, t, x) < 0)
			return -1;
	}
	if (mura_parse_long(f[3], 0, 1 << 30, &v) < 0 || v != t->epochs)
		return mura_error("epochs '%s', but the curve has %d", f[3], t->epochs);
	return 0;
}

int
mura_tune_study_open(struct mura_tune_study *s, const char *dir)
{
	char path[4200], *text = NULL, *line, *next, header[2048];
	int lineno = 0;

	memset(s, 0, sizeof *s);
	if (set_dir(s, dir) < 0 || read_settings(s) < 0)
		goto fail;
	snprintf(path, sizeof path, "%s/space", dir);
	if (mura_tune_space_read(&s->space, path) < 0)
		goto fail;
	snprintf(path, sizeof path, "%s/command", dir);
	if (!(text = slurp(path)))
		goto fail;
	for (line = text; line && *line; line = next) {
		if ((next = strchr(line, '\n')))
			*next++ = 0;
		if (s->argc == MURA_TUNE_MAX_ARGS) {
			mura_error("%s: more than %d arguments", path, MURA_TUNE_MAX_ARGS);
			goto fail;
		}
		if (!(s->argv[s->argc++] = strdup(line))) {
			mura_error("out of memory");
			goto fail;
		}
	}
	if (!s->argc) {
		mura_error("%s: empty", path);
		goto fail;
	}
	free(text);
	snprintf(path, sizeof path, "%s/trials.tsv", dir);
	if (!(text = slurp(path)))
		goto fail;
	snprintf(header, sizeof header, "trial\tstate\tvalue\tepochs\trung\tpid");
	for (int k = 0; k < s->space.n; k++)
		snprintf(header + strlen(header), sizeof header - strlen(header), "\t%s", s->space.p[k].name);
	strcat(header, "\tcurve");
	for (line = text; line && *line; line = next) {
		if ((next = strchr(line, '\n')))
			*next++ = 0;
		if (++lineno == 1) {
			if (strcmp(line, header) != 0) {
				mura_error("%s: header does not match the study's space (%s/space)", path, dir);
				goto fail;
			}
		} else if (journal_row(s, line) < 0) {
			mura_error_prefix("%s: line %d", path, lineno);
			goto fail;
		}
	}
	if (!lineno) {
		mura_error("%s: empty", path);
		goto fail;
	}
	free(text);
	return 0;
fail:
	free(text);
	mura_tune_study_free(s);
	return -1;
}
