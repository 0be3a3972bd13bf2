/*
 * dataset.c - the data set of mura_synth_write: MURA-v1.1's figures by
 * study type, the study (its anatomy and finding, shared by its images),
 * the plan of patients, studies and labels, drawing in threads, the CSV
 * files and the commit.  See synth_int.h.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <dirent.h>
#include <unistd.h>

#include "error.h"
#include "pngout.h"
#include "rng.h"
#include "synth.h"
#include "synth_int.h"
#include "tensor.h"
#include "util.h"

/* ------------------------------------------------------------------------
 * What MURA-v1.1 looks like, by study type (index: enum mura_type).
 */

/* Studies of each type in MURA-v1.1 (train + valid): how patients are shared out. */
static const double type_studies[MURA_TYPE_COUNT] = {
	0, 1912, 2110, 1010, 2185, 727, 3015, 3697,
};
/* Share of abnormal studies in MURA-v1.1's train split. */
static const double type_abnormal[MURA_TYPE_COUNT] = {
	0, 0.376, 0.338, 0.327, 0.258, 0.458, 0.516, 0.383,
};
/* How often each kind of finding makes a study of this type abnormal. */
static const double type_kinds[MURA_TYPE_COUNT][MURA_SYNTH_KIND_COUNT] = {
	[MURA_TYPE_ELBOW] = {0, 0.43, 0.25, 0.07, 0.25},
	[MURA_TYPE_FINGER] = {0, 0.48, 0.15, 0.07, 0.30},
	[MURA_TYPE_FOREARM] = {0, 0.55, 0.35, 0.10, 0},
	[MURA_TYPE_HAND] = {0, 0.43, 0.15, 0.07, 0.35},
	[MURA_TYPE_HUMERUS] = {0, 0.50, 0.38, 0.12, 0},
	[MURA_TYPE_SHOULDER] = {0, 0.33, 0.30, 0.07, 0.30},
	[MURA_TYPE_WRIST] = {0, 0.48, 0.25, 0.07, 0.20},
};
/* Chance that one image of an abnormal study shows its finding (at least one does). */
static const double kind_shown[MURA_SYNTH_KIND_COUNT] = {0, 0.80, 0.95, 0.75, 0.85};
static const char *const kind_names[MURA_SYNTH_KIND_COUNT] = {
	NULL, "fracture", "hardware", "lesion", "joint",
};
/* The order MURA's own CSV files list the types in. */
static const int csv_order[2][MURA_TYPE_COUNT - 1] = {
	{MURA_TYPE_SHOULDER, MURA_TYPE_HUMERUS, MURA_TYPE_FINGER, MURA_TYPE_ELBOW,
	 MURA_TYPE_WRIST, MURA_TYPE_FOREARM, MURA_TYPE_HAND},
	{MURA_TYPE_WRIST, MURA_TYPE_FOREARM, MURA_TYPE_ELBOW, MURA_TYPE_FINGER,
	 MURA_TYPE_HAND, MURA_TYPE_HUMERUS, MURA_TYPE_SHOULDER},
};
static const char *const split_names[2] = {"train", "valid"};

/* Valid gets 10% of a type's patients as in MURA, but at least this many
 * (and at most half), so that a 30% test part of valid has studies enough. */
#define VALID_MIN_PATIENTS 13

void
mura_synth_opts_init(struct mura_synth_opts *o)
{
	o->seed = 1;
	o->patients = MURA_SYNTH_PATIENTS;
	o->difficulty = MURA_SYNTH_DIFFICULTY;
	o->threads = 2;
	o->force = 0;
}

const char *
mura_synth_kind_name(int kind)
{
	return kind > 0 && kind < MURA_SYNTH_KIND_COUNT ? kind_names[kind] : NULL;
}

/* ------------------------------------------------------------------------
 * Studies: the anatomy and the finding all images of a study share (struct
 * study is in synth_int.h).
 */

void
synth_study_key(char *buf, size_t n, int type, uint32_t patient, int study)
{
	snprintf(buf, n, "%s/patient%05u/study%d", mura_type_folder(type), (unsigned)patient, study);
}

void
synth_study_make(struct study *s, uint64_t seed, int type, uint32_t patient, int study, int abnormal)
{
	static const double nimg[4] = {0.12, 0.33, 0.40, 0.15};
	char key[128];
	struct mura_rng r;

	synth_study_key(key, sizeof key, type, patient, study);
	mura_rng_derive(&r, seed, 2, key);
	memset(s, 0, sizeof *s);
	s->nimages = 1 + pick(nimg, 4, mura_rng_double(&r));
	s->an.size = unif(&r, 0.85, 1.15);
	s->an.dens = unif(&r, 0.8, 1.2);
	s->an.cort = unif(&r, 0.2, 0.34);
	s->an.soft = unif(&r, 0.85, 1.3);
	s->an.softd = unif(&r, 0.8, 1.2);
	s->an.young = chance(&r, 0.15);
	s->an.side = chance(&r, 0.5);
	s->an.focus = (int)mura_rng_below(&r, 5);
	s->an.spread = unif(&r, -1, 1.5);
	s->an.length = unif(&r, 0.92, 1.08);
	s->an.cast = chance(&r, abnormal ? 0.1 : 0.04);
	for (int i = 0; i < STUDY_U; i++)
		s->u[i] = mura_rng_double(&r);
	if (!abnormal)
		return;
	s->kind = pick(type_kinds[type], MURA_SYNTH_KIND_COUNT, mura_rng_double(&r));
	for (int k = 0; k < s->nimages; k++)
		if (chance(&r, kind_shown[s->kind]))
			s->shown |= 1u << k;
	if (!s->shown)
		s->shown = 1u << mura_rng_below(&r, (uint64_t)s->nimages);
}

/* ------------------------------------------------------------------------
 * The data set: plan, draw in threads, CSV files, commit.
 */

struct item {
	char rel[112];       /* MURA-v1.1/train/XR_.../imageK.png */
	int type, split, study, image, abnormal;
	uint32_t patient;
	int nboxes;
	struct mura_synth_box boxes[MURA_SYNTH_MAX_BOXES];
};

struct plan {
	struct item *items;
	size_t n, cap;
	long patients[2], studies[2], abnormal[2];
};

static int
plan_push(struct plan *pl, const struct item *it)
{
	if (pl->n == pl->cap) {
		size_t cap = pl->cap ? 2 * pl->cap : 1024;
		struct item *p = realloc(pl->items, cap * sizeof *p);
		if (!p)
			return mura_error("out of memory");
		pl->items = p;
		pl->cap = cap;
	}
	pl->items[pl->n++] = *it;
	return 0;
}

static void
shuffle_ints(int *a, int n, struct mura_rng *r)
{
	for (int i = n - 1; i > 0; i--) {
		int j = (int)mura_rng_below(r, (uint64_t)i + 1), t = a[i];
		a[i] = a[j];
		a[j] = t;
	}
}

/*
 * Patients by type (shares as MURA's studies), valid patients by type,
 * studies by patient, labels by study (an exact share of each type and
 * split, as MURA's), images by study; numbered in MURA's order.
 */
static int
plan_make(struct plan *pl, const struct mura_synth_opts *o)
{
	long ntype[MURA_TYPE_COUNT] = {0}, nvalid[MURA_TYPE_COUNT] = {0}, total = 0, given = 0;
	double rem[MURA_TYPE_COUNT] = {0};
	uint32_t patient = 1;
	struct mura_rng r;

	memset(pl, 0, sizeof *pl);
	for (int t = 1; t < MURA_TYPE_COUNT; t++)
		total += (long)type_studies[t];
	/* largest remainder, after two patients a type */
	for (int t = 1; t < MURA_TYPE_COUNT; t++) {
		double want = (double)(o->patients - 2 * (MURA_TYPE_COUNT - 1)) * type_studies[t] / (double)total;
		ntype[t] = 2 + (long)want;
		rem[t] = want - floor(want);
		given += ntype[t];
	}
	while (given < o->patients) {
		int best = 1;
		for (int t = 2; t < MURA_TYPE_COUNT; t++)
			if (rem[t] > rem[best])
				best = t;
		ntype[best]++;
		rem[best] = -1;
		given++;
	}
	for (int t = 1; t < MURA_TYPE_COUNT; t++) {
		long v = lround(0.1 * (double)ntype[t]), floor_v = ntype[t] / 2;
		floor_v = floor_v < VALID_MIN_PATIENTS ? floor_v : VALID_MIN_PATIENTS;
		nvalid[t] = v > floor_v ? v : floor_v;
		if (nvalid[t] < 1)
			nvalid[t] = 1;
	}
	mura_rng_derive(&r, o->seed, 0, "plan");
	for (int split = 0; split < 2; split++) {
		for (int ti = 0; ti < MURA_TYPE_COUNT - 1; ti++) {
			int type = csv_order[split][ti];
			long np = split ? nvalid[type] : ntype[type] - nvalid[type];
			int nst = 0, *lab, *order;
			int *per = malloc(sizeof *per * (size_t)np);
			if (!per)
				return mura_error("out of memory");
			for (long i = 0; i < np; i++) {
				double u = mura_rng_double(&r);
				per[i] = u < 0.80 ? 1 : u < 0.96 ? 2 : 3;
				nst += per[i];
			}
			/* exactly round(share * studies) abnormal, in shuffled places */
			lab = calloc((size_t)nst, sizeof *lab);
			order = malloc(sizeof *order * (size_t)nst);
			if (!lab || !order) {
				free(per), free(lab), free(order);
				return mura_error("out of memory");
			}
			for (int i = 0; i < nst; i++)
				order[i] = i;
			shuffle_ints(order, nst, &r);
			for (long i = 0, na = lround(type_abnormal[type] * nst); i < na; i++)
				lab[order[i]] = 1;
			for (long i = 0, k = 0; i < np; i++, patient++) {
				for (int s = 1; s <= per[i]; s++, k++) {
					struct study st;
					synth_study_make(&st, o->seed, type, patient, s, lab[k]);
					for (int im = 1; im <= st.nimages; im++) {
						struct item it = {.type = type, .split = split, .patient = patient,
						                  .study = s, .image = im, .abnormal = lab[k]};
						snprintf(it.rel, sizeof it.rel, "MURA-v1.1/%s/%s/patient%05u/study%d_%s/image%d.png",
						         split_names[split], mura_type_folder(type), (unsigned)patient, s,
						         lab[k] ? "positive" : "negative", im);
						if (plan_push(pl, &it) < 0) {
							free(per), free(lab), free(order);
							return -1;
						}
					}
					pl->studies[split]++;
					pl->abnormal[split] += lab[k];
				}
				pl->patients[split]++;
			}
			free(per), free(lab), free(order);
		}
	}
	return 0;
}

struct work {
	const struct mura_synth_opts *o;
	struct plan *pl;
	const char *root;    /* the temporary MURA-v1.1 folder */
	atomic_size_t next;
	atomic_int failed;
	pthread_mutex_t lock;
	char err[2048];
};

static void *
worker(void *arg)
{
	struct work *wk = arg;
	size_t i;

	while (!atomic_load(&wk->failed) && (i = atomic_fetch_add(&wk->next, 1)) < wk->pl->n) {
		struct item *it = &wk->pl->items[i];
		struct mura_synth_image im;
		char path[4300];
		int rc;

		memset(&im, 0, sizeof im);
		snprintf(path, sizeof path, "%s%s", wk->root, it->rel + strlen("MURA-v1.1"));
		rc = synth_draw(&im, wk->o->seed, (float)wk->o->difficulty, it->type, it->patient, it->study,
		                it->abnormal, it->image);
		if (rc == 0)
			rc = mura_png_write(path, im.pixels, im.width, im.height, im.format);
		else
			mura_error_prefix("%s", it->rel);
		if (rc == 0) {
			it->nboxes = im.nboxes;
			memcpy(it->boxes, im.boxes, sizeof im.boxes);
		}
		mura_synth_image_free(&im);
		if (rc < 0) {
			pthread_mutex_lock(&wk->lock);
			if (!atomic_load(&wk->failed))
				snprintf(wk->err, sizeof wk->err, "%s", mura_error_get());
			atomic_store(&wk->failed, 1);
			pthread_mutex_unlock(&wk->lock);
		}
	}
	return NULL;
}

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	return (flag == FTW_DP ? rmdir(path) : unlink(path)) < 0 ? -1 : 0;
}

static int
rm_tree(const char *path)
{
	return nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* 1 if dir has entries, 0 if empty, -1 on error. */
static int
dir_used(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int used = 0;

	if (!d)
		return mura_error("%s: %s", dir, strerror(errno));
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			used = 1;
			break;
		}
	closedir(d);
	return used;
}

static int
write_csvs(const struct plan *pl, const char *root)
{
	char path[4300];
	struct mura_out out;

	for (int split = 0; split < 2; split++) {
		/* image paths */
		snprintf(path, sizeof path, "%s/%s_image_paths.csv", root, split_names[split]);
		if (mura_out_open(&out, path) < 0)
			return -1;
		for (size_t i = 0; i < pl->n; i++)
			if (pl->items[i].split == split)
				fprintf(out.f, "%s\n", pl->items[i].rel);
		if (mura_out_commit(&out) < 0)
			return -1;
		/* labeled studies: the folder with its slash, then the label */
		snprintf(path, sizeof path, "%s/%s_labeled_studies.csv", root, split_names[split]);
		if (mura_out_open(&out, path) < 0)
			return -1;
		for (size_t i = 0; i < pl->n; i++) {
			const struct item *it = &pl->items[i];
			if (it->split == split && it->image == 1)
				fprintf(out.f, "%.*s,%d\n", (int)(strrchr(it->rel, '/') - it->rel + 1), it->rel, it->abnormal);
		}
		if (mura_out_commit(&out) < 0)
			return -1;
	}
	return 0;
}

/* One line a finding: its image, kind and box (see mura-synth(1)). */
static int
write_annotations(const struct plan *pl, const char *path)
{
	struct mura_out out;

	if (mura_out_open(&out, path) < 0)
		return -1;
	fprintf(out.f, "path,kind,x0,y0,x1,y1\n");
	for (size_t i = 0; i < pl->n; i++)
		for (int b = 0; b < pl->items[i].nboxes; b++) {
			const struct mura_synth_box *x = &pl->items[i].boxes[b];
			fprintf(out.f, "%s,%s,%d,%d,%d,%d\n", pl->items[i].rel, kind_names[x->kind], x->x0, x->y0, x->x1, x->y1);
		}
	return mura_out_commit(&out);
}

int
mura_synth_write(const char *dir, const struct mura_synth_opts *o, struct mura_synth_stats *st)
{
	char root[4200], final[4200], old[4200], annot[4200], path[4300];
	struct plan pl;
	struct work wk;
	struct stat sb;
	pthread_t th[64];
	int nth = o->threads < 1 ? 1 : o->threads > 64 ? 64 : o->threads, started = 0, rc = -1;
	long pid = (long)getpid();

	if (o->patients < MURA_SYNTH_MIN_PATIENTS || o->patients > MURA_SYNTH_MAX_PATIENTS)
		return mura_error("%ld patients: must be between %d and %d", o->patients, MURA_SYNTH_MIN_PATIENTS,
		                  MURA_SYNTH_MAX_PATIENTS);
	if (!(o->difficulty >= 0 && o->difficulty <= 1))
		return mura_error("difficulty %g: must be between 0 and 1", o->difficulty);
	if (strlen(dir) > 4000)
		return mura_error("%s: path too long", dir);
	if (stat(dir, &sb) == 0) {
		int used;
		if (!S_ISDIR(sb.st_mode))
			return mura_error("%s: not a directory", dir);
		if ((used = dir_used(dir)) < 0)
			return -1;
		if (used && !o->force)
			return mura_error("%s: directory not empty (use --force to replace MURA-v1.1 in it)", dir);
	} else if (errno != ENOENT)
		return mura_error("%s: %s", dir, strerror(errno));
	else if (mura_mkdirs(dir, 0777) < 0)
		return -1;
	snprintf(root, sizeof root, "%s/.MURA-v1.1.tmp.%ld", dir, pid);
	snprintf(final, sizeof final, "%s/MURA-v1.1", dir);
	snprintf(old, sizeof old, "%s/.MURA-v1.1.old.%ld", dir, pid);
	snprintf(annot, sizeof annot, "%s/annotations.csv", dir);

	if (plan_make(&pl, o) < 0)
		goto out;
	if (mkdir(root, 0777) < 0) {
		mura_error("%s: %s", root, strerror(errno));
		goto out;
	}
	for (size_t i = 0; i < pl.n; i++)
		if (pl.items[i].image == 1) {
			snprintf(path, sizeof path, "%s%s", root, pl.items[i].rel + strlen("MURA-v1.1"));
			*strrchr(path, '/') = 0;
			if (mura_mkdirs(path, 0777) < 0)
				goto fail;
		}

	memset(&wk, 0, sizeof wk);
	wk.o = o;
	wk.pl = &pl;
	wk.root = root;
	atomic_init(&wk.next, 0);
	atomic_init(&wk.failed, 0);
	pthread_mutex_init(&wk.lock, NULL);
	for (; started < nth; started++)
		if (pthread_create(&th[started], NULL, worker, &wk) != 0)
			break;
	if (started == 0)
		worker(&wk);
	for (int i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	pthread_mutex_destroy(&wk.lock);
	if (atomic_load(&wk.failed)) {
		mura_error("%s", wk.err);
		goto fail;
	}
	if (write_csvs(&pl, root) < 0)
		goto fail;
	if (stat(final, &sb) == 0 && rename(final, old) < 0) {
		mura_error("%s: %s", final, strerror(errno));
		goto fail;
	}
	if (rename(root, final) < 0) {
		mura_error("%s: %s", final, strerror(errno));
		rename(old, final);
		goto fail;
	}
	if (stat(old, &sb) == 0 && rm_tree(old) < 0) {
		mura_error("%s: cannot remove the old tree: %s", old, strerror(errno));
		goto out;
	}
	if (write_annotations(&pl, annot) < 0)
		goto out;
	if (st) {
		memset(st, 0, sizeof *st);
		for (int s = 0; s < 2; s++) {
			st->patients[s] = pl.patients[s];
			st->studies[s] = pl.studies[s];
			st->abnormal[s] = pl.abnormal[s];
		}
		for (size_t i = 0; i < pl.n; i++) {
			st->images[pl.items[i].split]++;
			st->findings += pl.items[i].nboxes;
		}
	}
	rc = 0;
	goto out;
fail:
	rm_tree(root);
out:
	free(pl.items);
	return rc;
}
