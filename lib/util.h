/*
 * util.h - small helpers shared by the library and the tools: checked
 * number parsing, atomic output files, MURA path parsing.
 */
#ifndef MURA_UTIL_H
#define MURA_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Parse a whole string as a number within [lo, hi].  Return 0, or -1 with
 * mura_error set ("'abc' is not a number", "'7' is out of range [0, 5]"). */
int mura_parse_long(const char *s, long lo, long hi, long *out);
int mura_parse_double(const char *s, double lo, double hi, double *out);
/* A comma-separated list of exactly n numbers ("0.485,0.456,0.406"). */
int mura_parse_doubles(const char *s, int n, double *out);
/* v as the shortest %g text that reads back as the same value ("0.9", not
 * "0.90000000000000002"); read back as a float when is_float.  For
 * messages that show a value as a user would type it. */
void mura_format_shortest(char *buf, size_t len, double v, int is_float);

/*
 * An output file that appears under its name only when complete: data goes
 * to "NAME.tmp.PID" in the same folder, and mura_out_commit() flushes, fsyncs
 * and renames it into place.  mura_out_abort() removes the temporary file.
 * "-" (or NULL) means stdout, which commit only flushes (and checks).  So
 * is a path that names something other than a regular file (/dev/null, a
 * FIFO, a terminal): it is written in place, since a rename would replace
 * it (as root, even /dev/null).
 */
struct mura_out {
	FILE *f;
	char path[4200];
	char tmp[4300];
	int is_stdout;  /* or another file that is not a regular one: written in place */
};
int mura_out_open(struct mura_out *o, const char *path);
int mura_out_commit(struct mura_out *o);
void mura_out_abort(struct mura_out *o);
/* Remove what mura_out_open left behind in folder dir when its process was
 * killed: the files "NAME.tmp.PID" for which ours(NAME, arg) is true and
 * PID is this process's or names no process (kill(PID, 0) fails with
 * ESRCH).  A live process's (a run writing now) are kept.  done(PATH, arg),
 * if not NULL, is told of each removed.  Returns how many were, or -1
 * with mura_error set. */
int mura_out_clean(const char *dir, int (*ours)(const char *name, void *arg),
                   void (*done)(const char *path, void *arg), void *arg);

/* Make the buffer *pp (a pointer to any pointer) hold at least `need`
 * elements of `es` bytes, *cap counting what it holds: to exactly `need` the
 * first time, else at least doubling, so appending one at a time is
 * amortised.  Returns 0, or -1 with mura_error set ("out of memory"). */
int mura_grow(void *pp, size_t *cap, size_t need, size_t es);

/* Make every missing folder of path (like mkdir -p).  Return 0 or -1. */
int mura_mkdirs(const char *path, int mode);

/*
 * What a MURA path says: ".../XR_WRIST/patient00001/study1_positive/image2.png"
 * gives type wrist, patient 1, study 1, label 1, image 2.  Fields that the
 * path does not carry are left as unknown (0, and label -1).  Returns 0 if
 * at least the study type was found, else -1 with mura_error set.
 */
struct mura_path_info {
	int type;
	uint32_t patient;
	uint16_t study, image;
	float label;
};
int mura_path_parse(const char *path, struct mura_path_info *pi);

#endif
