/*
 * synth_int.h - the inside of the generator in synth.h, shared by the files
 * of lib/synth/.  Not a public header.
 *
 * An image is drawn as an X-ray would form it, crudely: every bone, soft
 * tissue and piece of metal is a primitive (a tube, an ellipsoid, a slab, an
 * arc, a box) whose projected thickness at each pixel is known in closed
 * form; a hollow tube gives the bright cortex along a shaft's edges and the
 * dimmer, textured medulla between them.  The attenuations add up, and
 * 1 - exp(-A) with a random window, gamma, blur and noise turns them into a
 * picture.  Body parts are built in "body units" (the long side of the
 * picture is 1) by one function a study type, then posed (rotated, scaled,
 * mirrored for the left side, shifted) into pixels.
 *
 * Randomness comes in three streams, each derived from the seed and a key,
 * never from the order of work: the plan (patients, studies, labels), a
 * study (anatomy, the finding and which images show it) and an image (view,
 * pose, exposure, noise, size and format).
 *
 * What lives where:
 *   anatomy.c   the scene's primitives in body units (local frames, tubes,
 *               balls, slabs, arcs, soft tissue, joints) and the body part
 *               built of them, one builder a study type
 *   findings.c  fracture, lytic lesion, hardware and narrowed joint,
 *               attached to a built scene
 *   raster.c    posing a scene into pixels, a finding's box in pixels, and
 *               the attenuation of each pixel by layer
 *   image.c     one image: its plan (size, format, view, pose, exposure),
 *               the picture developed from the layers, the side marker;
 *               mura_synth_render
 *   dataset.c   MURA-v1.1's figures by study type, the study (its anatomy
 *               and finding), the plan of patients and studies, drawing in
 *               threads, the CSV files; mura_synth_write
 * The small numeric helpers and noise below are inline, for every file.
 */
#ifndef MURA_SYNTH_INT_H
#define MURA_SYNTH_INT_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "rng.h"
#include "synth.h"

/* ------------------------------------------------------------------------
 * Small numeric helpers.
 */

static inline float lerpf(float a, float b, float t) { return a + (b - a) * t; }
static inline float clampf(float x, float lo, float hi) { return x < lo ? lo : x > hi ? hi : x; }
static inline float sqf(float x) { return x * x; }
static inline float sqrtp(float x) { return x > 0 ? sqrtf(x) : 0; }
/* 0 at and below -0.5, 1 at and above 0.5: a one-pixel anti-aliased step. */
static inline float step1(float x) { return clampf(x + 0.5f, 0, 1); }
static inline float unif(struct mura_rng *r, double lo, double hi) { return (float)mura_rng_uniform(r, lo, hi); }
static inline int chance(struct mura_rng *r, double p) { return mura_rng_double(r) < p; }

/* Index drawn from weights w[0..n-1] by u in [0, 1); -1 if all are zero. */
static inline int
pick(const double *w, int n, double u)
{
	double sum = 0, acc = 0;

	for (int i = 0; i < n; i++)
		sum += w[i];
	if (sum <= 0)
		return -1;
	u *= sum;
	for (int i = 0; i < n; i++) {
		acc += w[i];
		if (w[i] > 0 && u < acc)
			return i;
	}
	for (int i = n - 1; i >= 0; i--)
		if (w[i] > 0)
			return i;
	return -1;
}

static inline uint32_t
hash2(int32_t x, int32_t y, uint32_t seed)
{
	uint32_t h = seed ^ ((uint32_t)x * 0x8da6b343u) ^ ((uint32_t)y * 0xd8163841u);
	h ^= h >> 15;
	h *= 0x2c1b3c6du;
	h ^= h >> 12;
	h *= 0x297a2d39u;
	h ^= h >> 15;
	return h;
}

/* Value noise in [-1, 1] with smooth interpolation between lattice points. */
static inline float
vnoise(float x, float y, uint32_t seed)
{
	float fx = floorf(x), fy = floorf(y), tx = x - fx, ty = y - fy;
	int32_t ix = (int32_t)fx, iy = (int32_t)fy;
	float a = (float)(hash2(ix, iy, seed) >> 8), b = (float)(hash2(ix + 1, iy, seed) >> 8);
	float c = (float)(hash2(ix, iy + 1, seed) >> 8), d = (float)(hash2(ix + 1, iy + 1, seed) >> 8);

	tx = tx * tx * (3 - 2 * tx);
	ty = ty * ty * (3 - 2 * ty);
	a += (b - a) * tx;
	c += (d - c) * tx;
	return (a + (c - a) * ty) * (2.0f / 16777216.0f) - 1.0f;
}

/* ------------------------------------------------------------------------
 * The scene: primitives in body units, later posed into pixels.  Built in
 * anatomy.c and findings.c, posed and rasterised in raster.c.
 */

enum prim_kind {
	PK_TUBE,       /* a long bone: hollow cylinder with flared ends and rounded caps */
	PK_BALL,       /* an ellipsoid bone: carpal, humeral head, condyle */
	PK_SLAB,       /* a flat bone seen face on (scapula, glenoid): thin with a dense rim */
	PK_ARC,        /* a thin curved bone (rib) */
	PK_SOFT_TUBE,  /* soft tissue around a limb segment, radii from ra to rb */
	PK_SOFT_BALL,  /* soft tissue: palm, deltoid, the trunk */
	PK_LUNG,       /* air in the chest: thins the soft tissue it covers */
	PK_CAST,       /* a plaster or fibreglass cast: hollow, faintly meshed */
	PK_METAL_BOX,  /* plate, screw, nail, wire: a bright box, threaded if asked */
	PK_METAL_DISC, /* a screw head, a prosthetic head */
	PK_SWELL,      /* soft-tissue swelling: a soft bump added to the tissue */
};

/* A break across a tube, or (depth < 1, no shift) an open growth plate.
 * Lengths are in shaft radii, so they survive posing unchanged. */
struct frac {
	int on;
	float t;       /* where along the axis, 0 .. 1 */
	float tilt;    /* angle of the break from the perpendicular (radians) */
	float gap;     /* width of the gap */
	float shift;   /* far part moved across the axis */
	float slide;   /* far part moved along the axis (overlap if < 0) */
	float bend;    /* far part turned about the break (radians) */
	float partial; /* 0: right through; else only the cortex on side `side`, this deep */
	float side;    /* +1 or -1 */
	float jag;     /* roughness of the line */
	float curve;   /* bow of the line (growth plates) */
	float depth;   /* share of the bone the gap takes away */
	uint32_t seed;
};

/* A lytic lesion: in tube coordinates (t along, v across in radii) or, on a
 * ball, in its unit coordinates. */
struct hole {
	int on;
	float t, v, rx, ry; /* centre and half-axes: along and across */
	float depth;        /* share of the bone removed at the centre */
	float rim;          /* sclerotic rim around it */
	float grow;         /* how far it blows the bone out (tubes), shaft radii */
};

struct prim {
	int kind;
	float ax, ay, bx, by;   /* axis ends; the centre of an ellipse kind is (ax, ay) */
	float r0, ra, rb;       /* tube: shaft and end radii; soft tube: ra, rb */
	float wa, wb;           /* tube: how far the ends' flare reaches (share of length) */
	float capa, capb;       /* tube: cap length at each end (end radii) */
	float rx, ry, ang;      /* ellipse kinds: half-axes and angle; arc: ry = thickness */
	float a0, a1;           /* arc: angular range (radians, about (ax, ay), radius rx) */
	float cort;             /* cortex thickness, share of the radius */
	float dens;             /* attenuation scale */
	float trab;             /* medulla density relative to cortex */
	float thread;           /* metal box: depth of the thread notches (share of width) */
	struct frac fr, phys;
	struct hole hole;
	/* what findings may use this bone, with weights: fracture, lesion, hardware */
	float wf, wl, wh;
	float tlo, thi;         /* where along it a fracture or lesion may sit */
	uint32_t seed;
	int x0, y0, x1, y1;     /* pixels it may touch (after posing) */
};

struct joint {
	float cx, cy;           /* centre, body units */
	float dx, dy;           /* unit vector along the joint line */
	float halfw;            /* half its width */
	float gap;              /* the nominal gap */
	float weight;           /* chance of being the narrowed one */
};

#define MAX_PRIMS 160
#define MAX_JOINTS 24

struct scene {
	struct prim p[MAX_PRIMS];
	int n;
	struct joint j[MAX_JOINTS];
	int nj;
	int narrow;             /* the joint to narrow, or -1 */
	float narrow_by;        /* its gap is multiplied by this */
	float bscale;           /* bone radii factor (anatomy) */
	float bdens, cort, sdens, ssize;
	uint32_t seed;
};

/* anatomy.c: a zeroed primitive of that kind appended to sc, its seed set;
 * the middle of tube p in body units, its axis direction and length. */
struct prim *synth_add(struct scene *sc, int kind);
void synth_tube_axis(const struct prim *p, float *ux, float *uy, float *len);

/* ------------------------------------------------------------------------
 * Anatomy (anatomy.c): what a study and an image choose of the body.
 */

struct anat {
	float size, dens, cort, soft, softd;
	int young;      /* open growth plates */
	int side;       /* 0 right, 1 left (mirrored) */
	int cast;
	int focus;      /* finger: which ray, 0 thumb .. 4 little */
	float spread;   /* hand: how far the fingers fan out */
	float length;   /* shape variation of long bones */
};

struct view {
	int kind;       /* 0 frontal (AP/PA), 1 lateral, 2 oblique */
	float flex;     /* joint flexion, radians */
	float roll;     /* forearm pronation etc.: how far paired bones cross */
};

/* The body part of a study type in sc, from a copy of r (see anatomy.c). */
void synth_build_anatomy(struct scene *sc, int type, const struct anat *an, const struct view *v,
                         struct mura_rng r);

/* ------------------------------------------------------------------------
 * Studies (dataset.c): the anatomy and the finding all images of a study
 * share.
 */

#define STUDY_U 12

struct study {
	int nimages;
	int kind;            /* MURA_SYNTH_NONE for a normal study */
	unsigned shown;      /* bit k - 1: image k shows the finding */
	struct anat an;
	double u[STUDY_U];   /* the finding's own choices, shared by all views */
};

/* A study's key ("XR_HAND/patient00012/study1"), and the study drawn from
 * its own stream. */
void synth_study_key(char *buf, size_t n, int type, uint32_t patient, int study);
void synth_study_make(struct study *s, uint64_t seed, int type, uint32_t patient, int study, int abnormal);

/* ------------------------------------------------------------------------
 * Findings (findings.c), attached to the built scene in body units; d is
 * the difficulty.
 */

struct finding {
	int kind;
	int prim;            /* the bone it is on, or -1 */
	int first, last;     /* metal primitives [first, last) */
	int joint;
	float jx0, jy0, jx1, jy1, jx2, jy2, jx3, jy3; /* joint box corners, body units */
};

void synth_attach_fracture(struct scene *sc, struct finding *fd, const struct study *s, float d);
void synth_attach_lesion(struct scene *sc, struct finding *fd, const struct study *s, float d);
void synth_attach_hardware(struct scene *sc, struct finding *fd, const struct study *s, float d, int type);
void synth_attach_joint_extras(struct scene *sc, struct finding *fd, float d, const struct study *s);

/* ------------------------------------------------------------------------
 * Posing (raster.c): body units to pixels.
 */

struct pose {
	float cx, cy;   /* where body (0, 0) lands */
	float s;        /* pixels per body unit */
	float c, sn;    /* rotation */
	float mx;       /* -1 mirrors (left side) */
};

/* Pose every primitive of src into dst and give each its pixel box. */
void synth_pose_scene(struct scene *dst, const struct scene *src, const struct pose *q, int w, int h);
/* The pixel box of a finding in posed scene ps (pose q); 0 if none. */
int synth_finding_box(const struct finding *fd, const struct scene *ps, const struct pose *q, float *b);

/* ------------------------------------------------------------------------
 * Rasterising (raster.c): attenuation per pixel, by layer.
 */

struct layers {
	int w, h;
	float *soft, *bone, *metal, *extra;
	float tex;      /* trabecular texture scale, pixels */
	uint32_t seed;
};

/* Rasterise posed scene sc into L's layers (zeroed by the caller). */
void synth_rasterise(struct layers *L, const struct scene *sc);

/* image.c: the image of that type, patient, study, label and number; 0, or
 * -1 with mura_error set. */
int synth_draw(struct mura_synth_image *im, uint64_t seed, float diff, int type, uint32_t patient, int study,
               int abnormal, int image);

#endif
