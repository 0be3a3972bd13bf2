/* util.c - checked number parsing, atomic output files (and the temporaries
 * of killed ones), MURA paths. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "tensor.h"
#include "util.h"

int
mura_parse_long(const char *s, long lo, long hi, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (!*s || *end || errno)
		return mura_error("'%s' is not an integer", s);
	if (v < lo || v > hi)
		return mura_error("'%s' is out of range [%ld, %ld]", s, lo, hi);
	*out = v;
	return 0;
}

int
mura_parse_double(const char *s, double lo, double hi, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (!*s || *end || errno || !isfinite(v))
		return mura_error("'%s' is not a number", s);
	if (v < lo || v > hi)
		return mura_error("'%s' is out of range [%g, %g]", s, lo, hi);
	*out = v;
	return 0;
}

int
mura_parse_doubles(const char *s, int n, double *out)
{
	const char *p = s;

	for (int i = 0; i < n; i++) {
		char *end;
		errno = 0;
		out[i] = strtod(p, &end);
		if (end == p || errno || !isfinite(out[i]))
			return mura_error("'%s' is not a list of %d numbers", s, n);
		p = end;
		if (i < n - 1) {
			if (*p != ',')
				return mura_error("'%s' is not a list of %d numbers", s, n);
			p++;
		}
	}
	if (*p)
		return mura_error("'%s' is not a list of %d numbers", s, n);
	return 0;
}

void
mura_format_shortest(char *buf, size_t len, double v, int is_float)
{
	for (int digits = 1; digits <= 17; digits++) {
		snprintf(buf, len, "%.*g", digits, v);
		if (is_float ? strtof(buf, NULL) == (float)v : strtod(buf, NULL) == v)
			return;
	}
}

int
mura_out_open(struct mura_out *o, const char *path)
{
	struct stat st;

	memset(o, 0, sizeof *o);
	if (!path || !strcmp(path, "-")) {
		o->f = stdout;
		o->is_stdout = 1;
		snprintf(o->path, sizeof o->path, "stdout");
		return 0;
	}
	if (strlen(path) >= sizeof o->path)
		return mura_error("%s: path too long", path);
	snprintf(o->path, sizeof o->path, "%s", path);
	if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
		if (S_ISDIR(st.st_mode))
			return mura_error("%s: is a folder", path);
		if (!(o->f = fopen(path, "wb")))
			return mura_error("%s: %s", path, strerror(errno));
		o->is_stdout = 1;
		return 0;
	}
	snprintf(o->tmp, sizeof o->tmp, "%s.tmp.%ld", path, (long)getpid());
	if (!(o->f = fopen(o->tmp, "wb")))
		return mura_error("%s: %s", o->tmp, strerror(errno));
	return 0;
}

int
mura_out_commit(struct mura_out *o)
{
	int bad;

	if (o->is_stdout) {
		bad = fflush(o->f) != 0 || ferror(o->f);
		if (o->f != stdout)
			bad |= fclose(o->f) != 0;
		o->f = NULL;
		return bad ? mura_error("%s: write error: %s", o->path, strerror(errno)) : 0;
	}
	bad = fflush(o->f) != 0 || ferror(o->f) || fsync(fileno(o->f)) != 0;
	bad |= fclose(o->f) != 0;
	o->f = NULL;
	if (bad) {
		int e = errno;
		unlink(o->tmp);
		return mura_error("%s: write error: %s", o->path, strerror(e));
	}
	if (rename(o->tmp, o->path) < 0) {
		int e = errno;
		unlink(o->tmp);
		return mura_error("%s: rename: %s", o->path, strerror(e));
	}
	return 0;
}

void
mura_out_abort(struct mura_out *o)
{
	if (!o->f)
		return;
	if (!o->is_stdout) {
		fclose(o->f);
		unlink(o->tmp);
	} else if (o->f != stdout)
		fclose(o->f);
	o->f = NULL;
}

/* Is pid this process (whose temporaries are not open when it cleans) or
 * none at all? */
static int
gone(long pid)
{
	return pid == (long)getpid() || (pid > 0 && kill((pid_t)pid, 0) < 0 && errno == ESRCH);
}

int
mura_out_clean(const char *dir, int (*ours)(const char *name, void *arg),
               void (*done)(const char *path, void *arg), void *arg)
{
	static const char tmp[] = ".tmp.";
	const size_t t = sizeof tmp - 1;
	struct dirent *e;
	DIR *d;
	int n = 0;

	if (!(d = opendir(dir)))
		return mura_error("%s: %s", dir, strerror(errno));
	while ((e = readdir(d))) {
		char name[4200], path[8400];
		size_t len = strlen(e->d_name), k = len;
		long pid;

		while (k > 0 && e->d_name[k - 1] >= '0' && e->d_name[k - 1] <= '9')
			k--;
		if (k == len || len - k > 9 || k <= t || memcmp(e->d_name + k - t, tmp, t) != 0 ||
		    k - t >= sizeof name)
			continue;
		snprintf(name, sizeof name, "%.*s", (int)(k - t), e->d_name);
		pid = strtol(e->d_name + k, NULL, 10);
		if (!ours(name, arg) || !gone(pid))
			continue;
		if (strcmp(dir, ".") == 0)
			snprintf(path, sizeof path, "%s", e->d_name);
		else
			snprintf(path, sizeof path, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", e->d_name);
		if (unlink(path) < 0 && errno != ENOENT) {
			int err = errno;
			closedir(d);
			return mura_error("%s: %s", path, strerror(err));
		}
		n++;
		if (done)
			done(path, arg);
	}
	closedir(d);
	return n;
}

int
mura_grow(void *pp, size_t *cap, size_t need, size_t es)
{
	void **p = pp, *q;
	size_t c = *cap;

	if (need <= c)
		return 0;
	c = c && c <= SIZE_MAX / 2 / es && 2 * c > need ? 2 * c : need;
	if (c > SIZE_MAX / es || !(q = realloc(*p, c * es)))
		return mura_error("out of memory");
	*p = q;
	*cap = c;
	return 0;
}

int
mura_mkdirs(const char *path, int mode)
{
	char buf[4200];
	size_t n = strlen(path);

	if (n >= sizeof buf)
		return mura_error("%s: path too long", path);
	memcpy(buf, path, n + 1);
	for (char *p = buf + 1; ; p++) {
		if (*p == '/' || !*p) {
			char c = *p;
			*p = 0;
			if (mkdir(buf, mode) < 0 && errno != EEXIST)
				return mura_error("%s: %s", buf, strerror(errno));
			if (!c)
				break;
			*p = c;
		}
	}
	return 0;
}

/* If s starts with prefix followed by digits, parse them; else return -1. */
static long
after(const char *s, const char *prefix, const char **end)
{
	size_t n = strlen(prefix);
	char *e;
	long v;

	if (strncmp(s, prefix, n) || s[n] < '0' || s[n] > '9')
		return -1;
	v = strtol(s + n, &e, 10);
	*end = e;
	return v;
}

int
mura_path_parse(const char *path, struct mura_path_info *pi)
{
	const char *p = path;

	pi->type = 0;
	pi->patient = 0;
	pi->study = pi->image = 0;
	pi->label = MURA_LABEL_UNKNOWN;
	while (*p) {
		const char *seg = p, *slash = strchr(p, '/'), *end;
		size_t len = slash ? (size_t)(slash - p) : strlen(p);
		char name[256];
		long v;

		if (len < sizeof name) {
			memcpy(name, seg, len);
			name[len] = 0;
			if (!strncmp(name, "XR_", 3) && mura_type_parse(name) > 0)
				pi->type = mura_type_parse(name);
			else if ((v = after(name, "patient", &end)) >= 0 && !*end && v <= UINT32_MAX)
				pi->patient = (uint32_t)v;
			else if ((v = after(name, "study", &end)) >= 0 && v <= UINT16_MAX) {
				pi->study = (uint16_t)v;
				if (!strcmp(end, "_positive"))
					pi->label = 1;
				else if (!strcmp(end, "_negative"))
					pi->label = 0;
			} else if ((v = after(name, "image", &end)) >= 0 && *end == '.' && v <= UINT16_MAX)
				pi->image = (uint16_t)v;
		}
		p = slash ? slash + 1 : p + len;
	}
	if (!pi->type)
		return mura_error("%s: no XR_<TYPE> folder in the path", path);
	return 0;
}
