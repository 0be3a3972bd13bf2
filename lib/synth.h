/*
 * synth.h - a generator of radiograph-like data in MURA-v1.1's layout.
 *
 * mura_synth_write() writes DIR/MURA-v1.1/{train,valid}/XR_<TYPE>/
 * patientNNNNN/studyK_{positive,negative}/imageK.png with MURA's four CSV
 * files, and DIR/annotations.csv with a bounding box for every finding
 * drawn.  Everything is a function of the options: the plan of patients,
 * studies and labels comes from the seed, and each image from the seed, the
 * difficulty and its own path, so the bytes depend neither on the order the
 * images are drawn in nor on the number of threads.
 *
 * What an image holds: a dark background, the soft-tissue silhouette of the
 * body part, its bones (cortex, trabecular texture, joints) shaped by study
 * type, a side marker, a random pose, exposure and noise.  An abnormal study
 * has one finding (fracture, hardware, lytic lesion or narrowed joint) that
 * most but not all of its images show; the difficulty (0 to 1) sets how
 * large and how contrasted a finding is.
 */
#ifndef MURA_SYNTH_H
#define MURA_SYNTH_H

#include <stdint.h>

#define MURA_SYNTH_PATIENTS 400      /* default: about 1300 images */
#define MURA_SYNTH_MIN_PATIENTS 14   /* two a type: one for train, one for valid */
#define MURA_SYNTH_MAX_PATIENTS 99999
#define MURA_SYNTH_DIFFICULTY 0.2
#define MURA_SYNTH_MAX_BOXES 4

enum mura_synth_kind {
	MURA_SYNTH_NONE = 0,
	MURA_SYNTH_FRACTURE,  /* a break across a bone, its far part displaced and angled */
	MURA_SYNTH_HARDWARE,  /* metal: plate and screws, nail, wires, prosthesis */
	MURA_SYNTH_LESION,    /* a lytic lesion: a dark hole in a bone */
	MURA_SYNTH_JOINT,     /* a narrowed joint with sclerosis and osteophytes */
	MURA_SYNTH_KIND_COUNT
};

struct mura_synth_opts {
	uint64_t seed;
	long patients;     /* MURA_SYNTH_MIN_PATIENTS .. MURA_SYNTH_MAX_PATIENTS */
	double difficulty; /* 0 (findings large and plain) .. 1 (small and faint) */
	int threads;       /* images drawn at once, >= 1 */
	int force;         /* replace DIR/MURA-v1.1 and DIR/annotations.csv */
};

/* What mura_synth_write wrote, by split (0 train, 1 valid). */
struct mura_synth_stats {
	long patients[2], studies[2], abnormal[2], images[2], findings;
};

/* A finding's bounding box in pixels: x0, y0 inclusive, x1, y1 exclusive. */
struct mura_synth_box {
	int kind;
	int x0, y0, x1, y1;
};

/* One drawn image; pixels as mura_png_write takes them (pngout.h). */
struct mura_synth_image {
	int width, height;
	int format;        /* enum mura_png_format */
	void *pixels;
	int nboxes;
	struct mura_synth_box boxes[MURA_SYNTH_MAX_BOXES];
};

void mura_synth_opts_init(struct mura_synth_opts *o);
const char *mura_synth_kind_name(int kind); /* "fracture", ...; NULL if none */

/*
 * Write the data set under dir (created if missing).  A dir that is not
 * empty is refused unless o->force; then only DIR/MURA-v1.1 and
 * DIR/annotations.csv are replaced.  The tree is built under a hidden
 * temporary name and renamed into place when complete.  Returns 0, or -1
 * with mura_error set; st may be NULL.
 */
int mura_synth_write(const char *dir, const struct mura_synth_opts *o, struct mura_synth_stats *st);

/*
 * Draw, in memory, the image that a MURA path names (".../XR_HAND/
 * patient00012/study1_positive/image2.png"): its type, patient, study, label
 * and number select it, as they do in mura_synth_write.  Returns 0, or -1
 * with mura_error set; free with mura_synth_image_free.
 */
int mura_synth_render(struct mura_synth_image *im, const struct mura_synth_opts *o, const char *path);
void mura_synth_image_free(struct mura_synth_image *im);

#endif
