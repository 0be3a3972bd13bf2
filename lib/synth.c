/*
 * synth.c - radiograph-like images in MURA-v1.1's layout; see synth.h.
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
#include "tensor.h"
#include "util.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

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
 * Small numeric helpers.
 */

static float lerpf(float a, float b, float t) { return a + (b - a) * t; }
static float clampf(float x, float lo, float hi) { return x < lo ? lo : x > hi ? hi : x; }
static float sqf(float x) { return x * x; }
static float sqrtp(float x) { return x > 0 ? sqrtf(x) : 0; }
/* 0 at and below -0.5, 1 at and above 0.5: a one-pixel anti-aliased step. */
static float step1(float x) { return clampf(x + 0.5f, 0, 1); }
static float unif(struct mura_rng *r, double lo, double hi) { return (float)mura_rng_uniform(r, lo, hi); }
static int chance(struct mura_rng *r, double p) { return mura_rng_double(r) < p; }

/* Index drawn from weights w[0..n-1] by u in [0, 1); -1 if all are zero. */
static int
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

static uint32_t
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
static float
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
 * The scene: primitives in body units, later posed into pixels.
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

/* A local frame: body = o + s R(a) local. */
struct frame {
	float ox, oy, s, c, sn;
};

static struct frame
frame_make(float ox, float oy, float s, float a)
{
	struct frame f = {ox, oy, s, cosf(a), sinf(a)};
	return f;
}

static void
fpt(const struct frame *f, float x, float y, float *bx, float *by)
{
	*bx = f->ox + f->s * (f->c * x - f->sn * y);
	*by = f->oy + f->s * (f->sn * x + f->c * y);
}

/* A frame inside another: child local -> parent local -> body. */
static struct frame
frame_in(const struct frame *p, float ox, float oy, float s, float a)
{
	struct frame f;
	fpt(p, ox, oy, &f.ox, &f.oy);
	f.s = p->s * s;
	f.c = p->c * cosf(a) - p->sn * sinf(a);
	f.sn = p->sn * cosf(a) + p->c * sinf(a);
	return f;
}

static float frame_angle(const struct frame *f) { return atan2f(f->sn, f->c); }

static struct prim *
add(struct scene *sc, int kind)
{
	struct prim *p;

	if (sc->n == MAX_PRIMS)
		return &sc->p[MAX_PRIMS - 1]; /* never reached: the builders stay well below */
	p = &sc->p[sc->n++];
	memset(p, 0, sizeof *p);
	p->kind = kind;
	p->seed = hash2(sc->n, kind, sc->seed);
	p->tlo = 0.15f;
	p->thi = 0.85f;
	return p;
}

/* A long bone from a to b (local coordinates), shaft radius r0, end radii ra, rb. */
static struct prim *
tube(struct scene *sc, const struct frame *f, float ax, float ay, float bx, float by,
     float r0, float ra, float rb)
{
	struct prim *p = add(sc, PK_TUBE);
	float k = f->s * sc->bscale;

	fpt(f, ax, ay, &p->ax, &p->ay);
	fpt(f, bx, by, &p->bx, &p->by);
	p->r0 = r0 * k;
	p->ra = ra * k;
	p->rb = rb * k;
	p->wa = p->wb = 0.12f;
	p->capa = p->capb = 0.7f;
	p->cort = sc->cort;
	p->dens = sc->bdens;
	p->trab = 0.3f;
	return p;
}

static struct prim *
ellipse(struct scene *sc, int kind, const struct frame *f, float cx, float cy, float rx, float ry, float ang)
{
	struct prim *p = add(sc, kind);
	float k = f->s * (kind == PK_BALL || kind == PK_SLAB ? sc->bscale : 1);

	fpt(f, cx, cy, &p->ax, &p->ay);
	p->rx = rx * k;
	p->ry = ry * k;
	p->ang = ang + frame_angle(f);
	p->cort = 0.14f;
	p->dens = sc->bdens;
	p->trab = 0.55f;
	return p;
}

static struct prim *
ball(struct scene *sc, const struct frame *f, float cx, float cy, float rx, float ry, float ang)
{
	return ellipse(sc, PK_BALL, f, cx, cy, rx, ry, ang);
}

static struct prim *
soft_tube(struct scene *sc, const struct frame *f, float ax, float ay, float bx, float by, float ra, float rb)
{
	struct prim *p = add(sc, PK_SOFT_TUBE);

	fpt(f, ax, ay, &p->ax, &p->ay);
	fpt(f, bx, by, &p->bx, &p->by);
	p->ra = ra * f->s * sc->ssize;
	p->rb = rb * f->s * sc->ssize;
	p->dens = sc->sdens;
	return p;
}

static struct prim *
soft_ball(struct scene *sc, const struct frame *f, float cx, float cy, float rx, float ry, float ang)
{
	struct prim *p = ellipse(sc, PK_SOFT_BALL, f, cx, cy, rx * sc->ssize, ry * sc->ssize, ang);
	p->dens = sc->sdens;
	return p;
}

static struct prim *
arc(struct scene *sc, const struct frame *f, float cx, float cy, float radius, float a0, float a1, float thick)
{
	struct prim *p = add(sc, PK_ARC);

	fpt(f, cx, cy, &p->ax, &p->ay);
	p->rx = radius * f->s;
	p->ry = thick * f->s * sc->bscale;
	p->a0 = a0 + frame_angle(f);
	p->a1 = a1 + frame_angle(f);
	p->cort = 0.35f;
	p->dens = sc->bdens * 0.6f;
	return p;
}

/* The middle of tube p in body units, its axis direction and length. */
static void
tube_axis(const struct prim *p, float *ux, float *uy, float *len)
{
	float dx = p->bx - p->ax, dy = p->by - p->ay;
	*len = sqrtf(dx * dx + dy * dy);
	*ux = dx / *len;
	*uy = dy / *len;
}

/*
 * Declare a joint at local (cx, cy) whose line runs along local (dx, dy),
 * halfw wide, with nominal gap `gap`.  Returns the gap to build with: the
 * narrowed one if this is the joint the study's finding picked.
 */
static float
joint(struct scene *sc, const struct frame *f, float cx, float cy, float dx, float dy,
      float halfw, float gap, float weight)
{
	struct joint *j;
	float n = sqrtf(dx * dx + dy * dy);
	int i = sc->nj;

	if (sc->nj == MAX_JOINTS)
		return gap;
	j = &sc->j[sc->nj++];
	fpt(f, cx, cy, &j->cx, &j->cy);
	j->dx = f->c * dx / n - f->sn * dy / n;
	j->dy = f->sn * dx / n + f->c * dy / n;
	j->halfw = halfw * f->s;
	j->gap = gap * f->s;
	j->weight = weight;
	return i == sc->narrow ? gap * sc->narrow_by : gap;
}

/* ------------------------------------------------------------------------
 * Anatomy.  The builders take every random choice from `r` (a copy, so that
 * a second build for a narrowed joint repeats the first exactly) and from
 * the study's anatomy.
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

/* Give a tube an open growth plate (children): at ta from its start, else tb from its end. */
static void
physes(struct prim *p, int young, float ta, float tb)
{
	if (!young || p->kind != PK_TUBE)
		return;
	p->phys.on = 1;
	p->phys.t = ta > 0 ? ta : 1 - tb;
	p->phys.gap = 0.16f;
	p->phys.depth = 0.72f;
	p->phys.jag = 0.05f;
	p->phys.curve = 0.35f;
	p->phys.side = 1;
	p->phys.seed = p->seed ^ 0x5bd1e995u;
}

/* Fracture, lesion and hardware weights of a bone, and where along it. */
static void
cand(struct prim *p, float wf, float wl, float wh, float tlo, float thi)
{
	p->wf = wf;
	p->wl = wl;
	p->wh = wh;
	p->tlo = tlo;
	p->thi = thi;
}

/*
 * The hand in its own frame: the radiocarpal joint at the origin, fingers
 * towards -y, the thumb on the -x side; a hand is about 1 unit long.
 * `rays` limits which rays get fracture and joint weight (bit i: ray i).
 */
struct hand_geo {
	float bx[5], by[5], ang[5];  /* ray bases and directions */
	float len[5][4], rad[5][4];  /* metacarpal and phalanges: length, radius */
	int nbones[5];
};

static const float hand_base[5][2] = {
	{-0.058f, -0.085f}, {-0.03f, -0.112f}, {-0.006f, -0.118f}, {0.018f, -0.111f}, {0.04f, -0.098f},
};
static const float hand_ang[5] = {-0.62f, -0.12f, 0.0f, 0.1f, 0.21f};
static const float hand_len[5][4] = {
	{0.16f, 0.125f, 0.095f, 0}, {0.25f, 0.155f, 0.09f, 0.068f}, {0.245f, 0.17f, 0.105f, 0.072f},
	{0.225f, 0.16f, 0.098f, 0.07f}, {0.205f, 0.128f, 0.072f, 0.064f},
};
static const float hand_rad[5][4] = {
	{0.0135f, 0.0115f, 0.0095f, 0}, {0.0115f, 0.0102f, 0.0082f, 0.0066f}, {0.0118f, 0.0105f, 0.0085f, 0.0068f},
	{0.0105f, 0.0098f, 0.0078f, 0.0064f}, {0.0098f, 0.0088f, 0.0068f, 0.006f},
};

static void
hand_layout(struct hand_geo *h, const struct anat *an, const struct view *v)
{
	float squeeze = v->kind == 1 ? 0.3f : v->kind == 2 ? 0.7f : 1.0f;
	for (int i = 0; i < 5; i++) {
		h->bx[i] = hand_base[i][0] * squeeze;
		h->by[i] = hand_base[i][1];
		h->ang[i] = (hand_ang[i] + an->spread * (i - 2) * 0.06f) * (i == 0 ? 1.0f : squeeze);
		h->nbones[i] = i == 0 ? 3 : 4;
		for (int k = 0; k < 4; k++) {
			h->len[i][k] = hand_len[i][k] * an->length;
			h->rad[i][k] = hand_rad[i][k] * 1.35f;
		}
	}
}

/* Ray i's joint k (0: carpometacarpal base, 1: MCP, 2: PIP, ...), local. */
static void
hand_joint_pos(const struct hand_geo *h, const struct view *v, int i, int k, float *x, float *y, float *a)
{
	float px = h->bx[i], py = h->by[i], ang = h->ang[i];

	for (int b = 0; b < k && b < h->nbones[i]; b++) {
		px += sinf(ang) * (h->len[i][b] + 0.011f);
		py -= cosf(ang) * (h->len[i][b] + 0.011f);
		if (b >= 1)
			ang += v->flex * (i == 0 ? 0.5f : 1.0f);
	}
	*x = px;
	*y = py;
	*a = ang;
}

static void
build_hand(struct scene *sc, const struct frame *f, const struct anat *an, const struct view *v,
           int type, unsigned rays, struct mura_rng *r)
{
	struct hand_geo h;
	float squeeze = v->kind == 1 ? 0.3f : v->kind == 2 ? 0.7f : 1.0f;
	int wrist = type == MURA_TYPE_WRIST, finger = type == MURA_TYPE_FINGER;
	float g, gj;
	struct prim *p;

	hand_layout(&h, an, v);
	/* soft tissue: forearm, palm, thumb web, fingers */
	soft_tube(sc, f, 0.01f, 0.05f, 0.01f, 0.75f, 0.095f, 0.11f);
	soft_ball(sc, f, 0.004f * squeeze, -0.2f, 0.1f * (0.35f + 0.65f * squeeze), 0.21f, 0);
	for (int i = 0; i < 5; i++) {
		float x0, y0, a0, x1, y1, a1;
		hand_joint_pos(&h, v, i, i == 0 ? 0 : 1, &x0, &y0, &a0);
		hand_joint_pos(&h, v, i, h.nbones[i], &x1, &y1, &a1);
		x1 += sinf(a1) * 0.02f;
		y1 -= cosf(a1) * 0.02f;
		soft_tube(sc, f, x0, y0, x1, y1, i == 0 ? 0.03f : 0.026f, i == 0 ? 0.022f : 0.019f);
	}
	/* distal radius and ulna; a finger's study is about the finger alone */
	g = joint(sc, f, -0.014f * squeeze, 0.004f, 1, 0, 0.04f, 0.02f, wrist ? 3 : finger ? 0 : 0.6f);
	p = tube(sc, f, -0.018f * squeeze, 0.7f, -0.016f * squeeze, 0.022f + g, 0.026f, 0.026f, 0.045f);
	p->wa = 0.02f;
	p->wb = 0.09f;
	p->capb = 0.25f;
	if (!finger)
		cand(p, wrist ? 3 : 0.5f, wrist ? 0.8f : 0.2f, wrist ? 3 : 0.3f, 0.72f, 0.93f);
	physes(p, an->young, 0, 0.035f);
	p = tube(sc, f, 0.045f * squeeze, 0.7f, 0.036f * squeeze, 0.04f + g, 0.018f, 0.018f, 0.02f);
	p->wa = 0.02f;
	p->capb = 0.6f;
	if (!finger)
		cand(p, wrist ? 0.8f : 0.1f, wrist ? 0.3f : 0.1f, wrist ? 0.4f : 0, 0.75f, 0.92f);
	physes(p, an->young, 0, 0.03f);
	/* carpals, two rows */
	{
		static const float carp[8][5] = {
			{-0.042f, -0.018f, 0.024f, 0.015f, 0.7f}, {-0.012f, -0.012f, 0.018f, 0.016f, 0},
			{0.016f, -0.02f, 0.016f, 0.014f, 0.3f}, {0.028f, -0.032f, 0.01f, 0.01f, 0},
			{-0.052f, -0.064f, 0.017f, 0.015f, 0.4f}, {-0.031f, -0.074f, 0.013f, 0.013f, 0},
			{-0.007f, -0.07f, 0.015f, 0.024f, 0}, {0.019f, -0.066f, 0.017f, 0.021f, 0.2f},
		};
		for (int i = 0; i < 8; i++) {
			p = ball(sc, f, carp[i][0] * squeeze + unif(r, -0.002, 0.002), carp[i][1] - g + 0.018f,
			         1.2f * carp[i][2] * (0.5f + 0.5f * squeeze), 1.2f * carp[i][3], carp[i][4]);
			p->dens *= 0.95f;
			cand(p, 0, wrist || type == MURA_TYPE_HAND ? 0.4f : 0, i == 0 && wrist ? 0.8f : 0, 0, 1);
		}
	}
	/* rays: metacarpal then phalanges */
	for (int i = 0; i < 5; i++) {
		int on = (rays >> i) & 1;
		float x, y, a;
		hand_joint_pos(&h, v, i, 0, &x, &y, &a);
		for (int b = 0; b < h.nbones[i]; b++) {
			float L = h.len[i][b], rr = h.rad[i][b], ex, ey, dx = sinf(a), dy = -cosf(a);
			int distal = b == h.nbones[i] - 1;
			ex = x + dx * L;
			ey = y + dy * L;
			p = tube(sc, f, x, y, ex, ey, rr, rr * (b == 0 ? 1.35f : 1.5f), rr * (distal ? 1.25f : 1.45f));
			p->capa = 0.35f;
			p->capb = distal ? 0.5f : 1.0f;
			p->wa = 0.14f;
			p->wb = distal ? 0.1f : 0.13f;
			{
				float wf = on ? (b == 0 ? (finger ? 0.4f : 1.0f) : distal ? 0.6f : 1.2f) : 0;
				float wl = on ? 0.6f : 0, wh = on ? (b == 0 ? 1.0f : 0.8f) : 0;
				if (wrist && b > 0)
					wf = wl = wh = 0;
				else if (wrist) /* in a wrist study the metacarpals are seldom the point */
					wf *= 0.3f, wl *= 0.5f, wh *= 0.3f;
				cand(p, wf, wl, wh, 0.2f, 0.8f);
			}
			physes(p, an->young, 0.06f, 0);
			if (b == 0 && on && !wrist)
				joint(sc, f, x, y, cosf(a), sinf(a), rr * 1.4f, 0.011f, 0); /* CMC: never narrowed */
			x = ex;
			y = ey;
			if (!distal) {
				float w = on ? (finger ? 1.0f : 0.6f) : 0;
				gj = joint(sc, f, x + dx * 0.0055f, y + dy * 0.0055f, cosf(a), sinf(a), rr * 1.5f, 0.011f,
				           wrist ? 0 : w);
				x += dx * gj;
				y += dy * gj;
				if (b >= 1)
					a += v->flex * (i == 0 ? 0.5f : 1.0f);
			}
		}
	}
}

static void
build_wrist(struct scene *sc, const struct anat *an, const struct view *v, struct mura_rng *r)
{
	struct frame f = frame_make(0, 0.08f, 2.1f, 0);
	build_hand(sc, &f, an, v, MURA_TYPE_WRIST, 0x1f, r);
}

static void
build_handtype(struct scene *sc, const struct anat *an, const struct view *v, struct mura_rng *r)
{
	struct frame f = frame_make(0, 0.42f, 1.0f, 0);
	build_hand(sc, &f, an, v, MURA_TYPE_HAND, 0x1f, r);
}

static void
build_finger(struct scene *sc, const struct anat *an, const struct view *v, struct mura_rng *r)
{
	struct hand_geo h;
	float x, y, a, s = 2.6f, ox, oy;
	struct frame f;
	int i = an->focus;

	hand_layout(&h, an, v);
	hand_joint_pos(&h, v, i, 2, &x, &y, &a); /* centre the picture on the PIP joint */
	f = frame_make(0, 0, s, -a);
	fpt(&f, x, y, &ox, &oy);
	f = frame_make(-ox, -oy + 0.05f, s, -a);
	build_hand(sc, &f, an, v, MURA_TYPE_FINGER, 1u << i, r);
}

/* Radius and ulna from elbow (y = 0) to wrist (y = 1) in a local frame. */
static void
forearm_bones(struct scene *sc, const struct frame *f, const struct anat *an, const struct view *v,
              int type, float gtop)
{
	float sep = v->kind == 1 ? 0.25f : v->kind == 2 ? 0.6f : 1.0f;
	float cross = v->roll;
	struct prim *p;
	int fa = type == MURA_TYPE_FOREARM, el = type == MURA_TYPE_ELBOW;

	/* radius: narrow head at the elbow, wide at the wrist */
	p = tube(sc, f, -0.045f * sep, 0.035f + gtop, (-0.05f + cross) * sep, 0.97f, 0.026f, 0.034f, 0.05f);
	p->wa = 0.05f;
	p->wb = 0.1f;
	p->capa = 0.35f;
	p->capb = 0.3f;
	cand(p, fa ? 1.0f : el ? 1.0f : 0, fa ? 1 : el ? 0.5f : 0, fa ? 1 : el ? 0.3f : 0,
	     el ? 0.05f : 0.2f, el ? 0.25f : 0.85f);
	physes(p, an->young, 0.04f, 0.04f);
	/* ulna: the olecranon at the elbow, narrow at the wrist */
	p = tube(sc, f, 0.035f * sep, -0.025f + gtop, (0.045f - cross) * sep, 0.95f, 0.025f, 0.04f, 0.022f);
	p->wa = 0.09f;
	p->wb = 0.04f;
	p->capa = 0.9f;
	cand(p, fa ? 0.8f : el ? 0.8f : 0, fa ? 0.8f : el ? 0.4f : 0, fa ? 0.8f : el ? 0.3f : 0,
	     el ? 0.04f : 0.2f, el ? 0.22f : 0.85f);
	physes(p, an->young, 0.03f, 0.03f);
}

static void
build_forearm(struct scene *sc, const struct anat *an, const struct view *v, struct mura_rng *r)
{
	struct frame f = frame_make(0, -0.47f, 0.95f, 0);
	float sep = v->kind == 1 ? 0.25f : v->kind == 2 ? 0.6f : 1.0f;
	struct prim *p;

	(void)r;
	soft_tube(sc, &f, 0, -0.2f, 0, 1.2f, 0.11f, 0.075f);
	/* elbow end: humeral condyles; wrist end: a row of carpals */
	p = tube(sc, &f, 0, -0.5f, 0, -0.045f, 0.035f, 0.035f, 0.085f);
	p->capb = 0.3f;
	p->wb = 0.2f;
	forearm_bones(sc, &f, an, v, MURA_TYPE_FOREARM, 0.02f);
	for (int i = 0; i < 4; i++)
		ball(sc, &f, (-0.05f + 0.032f * i) * sep, 1.025f + 0.004f * (i & 1), 0.017f, 0.015f, 0);
	if (an->cast) {
		p = add(sc, PK_CAST);
		fpt(&f, 0, 0.3f, &p->ax, &p->ay);
		fpt(&f, 0, 1.1f, &p->bx, &p->by);
		p->ra = 0.125f * f.s * sc->ssize;
		p->rb = 0.025f * f.s;
		p->dens = 0.55f;
	}
}

static void
build_humerus(struct scene *sc, const struct anat *an, const struct view *v, struct mura_rng *r)
{
	struct frame f = frame_make(0, 0, 1.0f, 0);
	float lat = v->kind == 1 ? 0.4f : 1.0f;
	struct prim *p;

	(void)r;
	soft_tube(sc, &f, 0, -0.6f, 0, 0.62f, 0.15f, 0.12f);
	soft_ball(sc, &f, 0.02f, -0.46f, 0.2f, 0.14f, 0);
	/* the shaft: flared at the neck and at the condyles */
	p = tube(sc, &f, 0, -0.4f, 0.005f, 0.4f, 0.033f, 0.05f, 0.05f * lat + 0.02f);
	p->wa = 0.1f;
	p->wb = 0.08f;
	p->capb = 0.3f;
	cand(p, 1.0f, 1.0f, 1.0f, 0.2f, 0.8f);
	physes(p, an->young, 0.05f, 0);
	p = ball(sc, &f, 0.03f * lat, -0.43f, 0.07f, 0.072f, 0);
	cand(p, 0, 0.3f, 0, 0, 1);
	ball(sc, &f, -0.045f * lat, -0.41f, 0.03f, 0.035f, 0);
	/* the scapula's glenoid, medial and above */
	p = ellipse(sc, PK_SLAB, &f, 0.15f, -0.45f, 0.03f, 0.09f, 0.2f);
	p->dens *= 0.8f;
	/* the elbow below: condyles, then the forearm leaving the picture */
	ball(sc, &f, -0.035f * lat, 0.42f, 0.026f, 0.024f, 0);
	ball(sc, &f, 0.03f * lat, 0.425f, 0.028f, 0.025f, 0);
	tube(sc, &f, -0.03f * lat, 0.47f, -0.035f * lat, 0.8f, 0.02f, 0.03f, 0.02f);
	tube(sc, &f, 0.03f * lat, 0.44f, 0.035f * lat, 0.8f, 0.02f, 0.032f, 0.02f);
}

static void
build_elbow(struct scene *sc, const struct anat *an, const struct view *v, struct mura_rng *r)
{
	struct frame f = frame_make(0, -0.05f, 1.25f, 0), ff;
	int lat = v->kind == 1;
	float g, bend = lat ? v->flex : v->flex * 0.15f;
	struct prim *p;

	(void)r;
	/* soft tissue of arm and forearm */
	soft_tube(sc, &f, 0, -0.6f, 0, 0.0f, 0.12f, 0.1f);
	ff = frame_in(&f, 0, 0.02f, 1.0f, bend);
	soft_tube(sc, &ff, 0, -0.02f, 0, 0.7f, 0.1f, 0.085f);
	soft_ball(sc, &f, 0, 0.0f, 0.11f, 0.1f, 0);
	g = joint(sc, &f, 0, 0.0f, 1, 0, lat ? 0.05f : 0.07f, 0.022f, 1.0f);
	/* humerus down to the joint */
	p = tube(sc, &f, 0, -0.6f, 0, -0.03f, 0.034f, 0.034f, lat ? 0.05f : 0.075f);
	p->wb = 0.22f;
	p->capb = 0.25f;
	cand(p, 1.0f, 0.6f, 0.6f, 0.7f, 0.92f);
	physes(p, an->young, 0, 0.05f);
	if (lat) {
		ball(sc, &f, 0.005f, -0.03f, 0.042f, 0.04f, 0);
	} else {
		ball(sc, &f, -0.04f, -0.03f, 0.03f, 0.028f, 0);    /* capitulum */
		ball(sc, &f, 0.03f, -0.028f, 0.036f, 0.03f, 0);    /* trochlea */
		p = ball(sc, &f, 0.085f, -0.07f, 0.018f, 0.016f, 0); /* medial epicondyle */
		p->dens *= 0.9f;
	}
	/* forearm: radius and ulna from the joint */
	ff = frame_in(&f, 0, 0.0f, 1.0f, bend);
	forearm_bones(sc, &ff, an, v, MURA_TYPE_ELBOW, g);
	if (lat) /* the olecranon wraps behind the humerus */
		ball(sc, &ff, 0.045f, -0.03f, 0.028f, 0.035f, 0.3f)->dens *= 0.8f;
}

static void
build_shoulder(struct scene *sc, const struct anat *an, const struct view *v, struct mura_rng *r)
{
	struct frame f = frame_make(0.02f, 0.02f, 1.0f, 0);
	float rot = v->kind == 1 ? 0.5f : 1.0f; /* internal rotation hides the tuberosity */
	float g;
	struct prim *p;

	/* trunk and arm; the lung darkens the medial part */
	soft_ball(sc, &f, 0.5f, 0.25f, 0.72f, 0.95f, 0);
	soft_tube(sc, &f, -0.12f, -0.05f, -0.24f, 0.8f, 0.16f, 0.14f);
	soft_ball(sc, &f, -0.08f, -0.04f, 0.22f, 0.24f, 0.3f);
	p = ellipse(sc, PK_LUNG, &f, 0.58f, 0.35f, 0.3f, 0.5f, 0.1f);
	p->dens = unif(r, 0.3, 0.5);
	/* posterior ribs behind, arching up and out */
	for (int i = 0; i < 5; i++) {
		p = arc(sc, &f, 0.62f, 0.02f + 0.16f * i, 0.42f, -2.75f, -1.45f, 0.013f);
		p->dens *= 0.75f;
	}
	/* humerus: head, neck, shaft, greater tuberosity */
	g = joint(sc, &f, 0.02f, -0.05f, 0, 1, 0.08f, 0.022f, 1.0f);
	p = ball(sc, &f, -0.09f, -0.05f, 0.1f, 0.105f, 0);
	p->cort = 0.08f;
	cand(p, 0, 0.6f, 0.6f, 0, 1);
	p = tube(sc, &f, -0.11f, 0.0f, -0.19f, 0.75f, 0.04f, 0.08f, 0.04f);
	p->wa = 0.1f;
	p->capa = 0.3f;
	cand(p, 2.0f, 0.6f, 0.8f, 0.06f, 0.3f);
	physes(p, an->young, 0.04f, 0);
	p = ball(sc, &f, -0.175f + 0.05f * (1 - rot), -0.06f, 0.045f, 0.05f, 0);
	p->dens *= 0.8f;
	/* glenoid: a dense rim facing the head; scapular neck and body */
	p = ellipse(sc, PK_SLAB, &f, 0.045f + g, -0.05f, 0.028f, 0.085f, 0.08f);
	p->dens *= 1.2f;
	p = ellipse(sc, PK_SLAB, &f, 0.2f, 0.16f, 0.11f, 0.27f, 0.45f);
	p->dens *= 0.75f;
	/* acromion over the head, coracoid, clavicle */
	p = tube(sc, &f, 0.06f, -0.2f, -0.2f, -0.2f, 0.024f, 0.03f, 0.03f);
	p->dens *= 0.85f;
	cand(p, 0.3f, 0.2f, 0.2f, 0.3f, 0.7f);
	tube(sc, &f, 0.05f, -0.13f, 0.11f, -0.16f, 0.02f, 0.024f, 0.022f)->dens *= 0.8f;
	p = tube(sc, &f, -0.13f, -0.25f, 0.6f, -0.37f, 0.024f, 0.032f, 0.034f);
	cand(p, 1.2f, 0.3f, 0.5f, 0.3f, 0.7f);
}

static void
build_anatomy(struct scene *sc, int type, const struct anat *an, const struct view *v, struct mura_rng r)
{
	sc->n = sc->nj = 0;
	switch (type) {
	case MURA_TYPE_ELBOW: build_elbow(sc, an, v, &r); break;
	case MURA_TYPE_FINGER: build_finger(sc, an, v, &r); break;
	case MURA_TYPE_FOREARM: build_forearm(sc, an, v, &r); break;
	case MURA_TYPE_HAND: build_handtype(sc, an, v, &r); break;
	case MURA_TYPE_HUMERUS: build_humerus(sc, an, v, &r); break;
	case MURA_TYPE_SHOULDER: build_shoulder(sc, an, v, &r); break;
	default: build_wrist(sc, an, v, &r); break;
	}
}

/* ------------------------------------------------------------------------
 * Studies: the anatomy and the finding all images of a study share.
 */

#define STUDY_U 12

struct study {
	int nimages;
	int kind;            /* MURA_SYNTH_NONE for a normal study */
	unsigned shown;      /* bit k - 1: image k shows the finding */
	struct anat an;
	double u[STUDY_U];   /* the finding's own choices, shared by all views */
};

static void
study_key(char *buf, size_t n, int type, uint32_t patient, int study)
{
	snprintf(buf, n, "%s/patient%05u/study%d", mura_type_folder(type), (unsigned)patient, study);
}

static void
study_make(struct study *s, uint64_t seed, int type, uint32_t patient, int study, int abnormal)
{
	static const double nimg[4] = {0.12, 0.33, 0.40, 0.15};
	char key[128];
	struct mura_rng r;

	study_key(key, sizeof key, type, patient, study);
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
 * Findings, attached to the built scene in body units.
 */

struct finding {
	int kind;
	int prim;            /* the bone it is on, or -1 */
	int first, last;     /* metal primitives [first, last) */
	int joint;
	float jx0, jy0, jx1, jy1, jx2, jy2, jx3, jy3; /* joint box corners, body units */
};

/* Size of a bone, body units: its shaft radius, or an ellipsoid's smaller half-axis. */
static float
bone_size(const struct prim *p)
{
	return p->kind == PK_TUBE ? p->r0 : fminf(p->rx, p->ry);
}

/*
 * The bone a finding goes on (which: 0 fracture, 1 lesion, 2 hardware).
 * The easier the setting, the more the choice favours big bones, whose
 * findings survive being scaled down.
 */
static int
pick_prim(const struct scene *sc, int which, double u, float d)
{
	double w[MAX_PRIMS];

	for (int i = 0; i < sc->n; i++) {
		const struct prim *p = &sc->p[i];
		w[i] = which == 0 ? p->wf : which == 1 ? p->wl : p->wh;
		if (w[i] > 0)
			w[i] *= pow(bone_size(p), 3.0 * (1.0 - d));
	}
	return pick(w, sc->n, u);
}

/* Soft-tissue swelling around a finding at (x, y), body units. */
static void
swelling(struct scene *sc, float x, float y, float rx, float ry, float ang, float amount)
{
	struct prim *w;

	if (amount <= 0)
		return;
	w = add(sc, PK_SWELL);
	w->ax = x;
	w->ay = y;
	w->rx = rx;
	w->ry = ry;
	w->ang = ang;
	w->dens = amount;
}

static void
attach_fracture(struct scene *sc, struct finding *fd, const struct study *s, float d)
{
	struct prim *p;
	const double *u = s->u;
	int i = pick_prim(sc, 0, u[0], d);

	if (i < 0 || sc->p[i].kind != PK_TUBE)
		return;
	p = &sc->p[i];
	fd->prim = i;
	p->fr.on = 1;
	p->fr.t = lerpf(p->tlo, p->thi, (float)u[1]);
	p->fr.tilt = lerpf(-0.6f, 0.6f, (float)u[2]);
	p->fr.gap = lerpf(1.2f, 0.12f, d);
	p->fr.shift = lerpf(2.5f, 0.0f, d) * lerpf(0.6f, 1.0f, (float)u[3]) * (u[4] < 0.5 ? -1 : 1);
	p->fr.slide = lerpf(-1.0f, 0.0f, d) * (float)u[5];
	p->fr.bend = lerpf(0.7f, 0.03f, d) * lerpf(0.6f, 1.0f, (float)u[6]) * (u[7] < 0.5 ? -1 : 1);
	p->fr.partial = u[8] < d * d ? lerpf(1.0f, 0.5f, d) : 0;
	p->fr.side = u[9] < 0.5 ? -1 : 1;
	p->fr.jag = lerpf(0.35f, 0.1f, d);
	{
		float ux, uy, len, r = fmaxf(p->r0, 0.012f);
		tube_axis(p, &ux, &uy, &len);
		swelling(sc, p->ax + ux * len * p->fr.t, p->ay + uy * len * p->fr.t, 7 * r, 4 * r, atan2f(uy, ux),
		         lerpf(1.3f, 0.0f, d));
	}
	p->fr.depth = 1.0f;
	p->fr.seed = p->seed ^ 0x27d4eb2fu;
	/* a broken bone never has the growth plate in the same place */
	if (p->phys.on && fabsf(p->phys.t - p->fr.t) < 0.15f)
		p->phys.on = 0;
}

static void
attach_lesion(struct scene *sc, struct finding *fd, const struct study *s, float d)
{
	struct prim *p;
	const double *u = s->u;
	int i = pick_prim(sc, 1, u[0], d);
	float size = lerpf(2.4f, 0.4f, d);

	if (i < 0)
		return;
	p = &sc->p[i];
	fd->prim = i;
	p->hole.on = 1;
	p->hole.depth = lerpf(1.0f, 0.3f, d);
	p->hole.rim = lerpf(0.6f, 0.05f, d);
	p->hole.grow = lerpf(0.6f, 0.0f, d);
	if (p->kind == PK_TUBE) {
		p->hole.t = lerpf(fmaxf(p->tlo, 0.12f), fminf(p->thi, 0.88f), (float)u[1]);
		p->hole.v = lerpf(-0.2f, 0.2f, (float)u[2]);
		p->hole.rx = size * lerpf(1.4f, 2.2f, (float)u[3]);
		p->hole.ry = size * lerpf(0.85f, 0.95f, (float)u[4]);
	} else {
		p->hole.t = lerpf(-0.3f, 0.3f, (float)u[1]);
		p->hole.v = lerpf(-0.3f, 0.3f, (float)u[2]);
		p->hole.rx = 0.5f * size * lerpf(0.8f, 1.2f, (float)u[3]);
		p->hole.ry = 0.5f * size * lerpf(0.8f, 1.2f, (float)u[4]);
	}
}

static struct prim *
metal_box(struct scene *sc, float cx, float cy, float hl, float hw, float ang, float thread)
{
	struct prim *p = add(sc, PK_METAL_BOX);
	p->ax = cx;
	p->ay = cy;
	p->rx = hl;
	p->ry = hw;
	p->ang = ang;
	p->thread = thread;
	p->dens = 5.0f;
	return p;
}

static struct prim *
metal_disc(struct scene *sc, float cx, float cy, float rx, float ry, float ang)
{
	struct prim *p = add(sc, PK_METAL_DISC);
	p->ax = cx;
	p->ay = cy;
	p->rx = rx;
	p->ry = ry;
	p->ang = ang;
	p->dens = 5.0f;
	return p;
}

/* A screw across bone p at (x, y), its axis turned `ang` from the bone's normal. */
static void
screw(struct scene *sc, float x, float y, float nx, float ny, float r, float ang)
{
	float a = atan2f(ny, nx) + ang;
	metal_box(sc, x, y, 1.15f * r, 0.2f * r, a, 0.35f);
	metal_disc(sc, x - cosf(a) * 1.15f * r, y - sinf(a) * 1.15f * r, 0.16f * r, 0.36f * r, a);
}

static void
attach_hardware(struct scene *sc, struct finding *fd, const struct study *s, float d, int type)
{
	const double *u = s->u;
	int i = pick_prim(sc, 2, u[0], d);
	float big = lerpf(1.0f, 0.3f, d);
	struct prim *p;

	if (i < 0)
		return;
	p = &sc->p[i];
	fd->prim = i;
	fd->first = sc->n;
	if (p->kind == PK_BALL) {
		float r = fminf(p->rx, p->ry);
		if (type == MURA_TYPE_SHOULDER && u[1] < 0.6 && d < 0.6) {
			/* a humeral head prosthesis with its stem down the shaft */
			struct prim *q = metal_disc(sc, p->ax, p->ay, p->rx * 0.95f, p->ry * 0.95f, p->ang);
			q->dens = 7;
			metal_box(sc, p->ax - 0.03f, p->ay + p->ry * 1.6f, p->ry * 1.4f, 0.2f * r, 1.45f, 0)->dens = 7;
		} else {
			int n = u[2] < 0.5 ? 1 : 2;
			for (int k = 0; k < n; k++)
				screw(sc, p->ax + (k - 0.5f * (n - 1)) * 0.5f * r, p->ay, 0, 1, r * 0.9f * fmaxf(big, 0.5f),
				      lerpf(-0.4f, 0.4f, (float)u[3 + k]));
		}
	} else {
		float ux, uy, len, nx, ny;
		float r = p->r0, tc = lerpf(fmaxf(p->tlo, 0.25f), fminf(p->thi, 0.75f), (float)u[1]);
		/* the harder, the more the small kinds (wires, one screw) */
		float cx, cy, kindu = (float)u[2] * lerpf(0.85f, 1.0f, d) + lerpf(0.0f, 0.15f, d);

		tube_axis(p, &ux, &uy, &len);
		nx = -uy;
		ny = ux;
		cx = p->ax + ux * len * tc;
		cy = p->ay + uy * len * tc;
		if (len > 12 * r && kindu < 0.6f && d < 0.75f) {
			/* a plate along the bone, screws through it */
			float hl = fmaxf(len * 0.25f * big, 3 * r), off = lerpf(-0.5f, 0.5f, (float)u[3]) * r;
			int n = (int)(2 * hl / (1.6f * r));
			n = n < 2 ? 2 : n > 8 ? 8 : n;
			metal_box(sc, cx + nx * off, cy + ny * off, hl, lerpf(0.75f, 0.25f, d) * r, atan2f(uy, ux), 0);
			for (int k = 0; k < n; k++) {
				float t = (k + 0.5f) / n * 2 - 1;
				screw(sc, cx + ux * hl * 0.9f * t - nx * r, cy + uy * hl * 0.9f * t - ny * r, nx, ny, r,
				      0.08f * t);
			}
		} else if (len > 12 * r && kindu < 0.85f && d < 0.75f) {
			/* an intramedullary nail with locking screws */
			float hl = len * 0.42f * big;
			metal_box(sc, p->ax + ux * len * 0.5f, p->ay + uy * len * 0.5f, hl, 0.3f * r, atan2f(uy, ux), 0);
			for (int k = -1; k <= 1; k += 2)
				screw(sc, p->ax + ux * len * (0.5f + k * 0.42f * big * 0.85f) - nx * r,
				      p->ay + uy * len * (0.5f + k * 0.42f * big * 0.85f) - ny * r, nx, ny, r, 0.1f);
		} else if (kindu < 0.95f) {
			/* crossed Kirschner wires */
			float wl = r * lerpf(5.0f, 2.5f, d), w = fmaxf(lerpf(0.22f, 0.08f, d) * r, 0.0012f);
			for (int k = -1; k <= 1; k += 2)
				metal_box(sc, cx, cy, wl, w, atan2f(uy, ux) + k * lerpf(0.5f, 0.8f, (float)u[4]), 0);
		} else {
			/* one screw */
			screw(sc, cx - nx * r, cy - ny * r, nx, ny, r * 1.1f, lerpf(-0.5f, 0.5f, (float)u[3]));
		}
	}
	fd->last = sc->n;
}

/* Narrowed joint: sclerosis along both surfaces and osteophytes at its edges. */
static void
attach_joint_extras(struct scene *sc, struct finding *fd, float d, const struct study *s)
{
	const struct joint *j = &sc->j[sc->narrow];
	float nx = -j->dy, ny = j->dx, w = j->halfw, th = lerpf(0.4f, 0.1f, d) * w;
	float ost = lerpf(0.65f, 0.08f, d) * w;
	struct prim *p;

	fd->joint = sc->narrow;
	swelling(sc, j->cx, j->cy, 1.6f * w, 1.2f * w, atan2f(j->dy, j->dx), lerpf(0.6f, 0.0f, d));
	fd->first = sc->n;
	for (int k = -1; k <= 1; k += 2) {
		p = add(sc, PK_SLAB);
		p->ax = j->cx + nx * k * (j->gap * sc->narrow_by * 0.5f + th * 0.6f);
		p->ay = j->cy + ny * k * (j->gap * sc->narrow_by * 0.5f + th * 0.6f);
		p->rx = w * 0.9f;
		p->ry = th;
		p->ang = atan2f(j->dy, j->dx);
		p->dens = sc->bdens * lerpf(1.6f, 0.25f, d);
	}
	for (int k = 0; k < 4; k++) {
		float side = k & 1 ? 1.0f : -1.0f, up = k & 2 ? 1.0f : -1.0f;
		float sz = ost * lerpf(0.6f, 1.3f, (float)s->u[5 + k]);
		if (s->u[5 + k] < 0.25)
			continue;
		p = add(sc, PK_BALL);
		p->ax = j->cx + j->dx * side * (w + sz * 0.4f) + nx * up * (j->gap * 0.8f);
		p->ay = j->cy + j->dy * side * (w + sz * 0.4f) + ny * up * (j->gap * 0.8f);
		p->rx = sz;  /* a spur: long and thin, leaning out of the joint */
		p->ry = sz * 0.45f;
		p->ang = atan2f(j->dy, j->dx) + up * side * 0.5f;
		p->cort = 0.3f;
		p->dens = sc->bdens;
		p->trab = 0.6f;
	}
	fd->last = sc->n;
	{
		float e = w + ost * 1.5f, h = j->gap * 0.5f + th * 1.3f + ost;
		fd->jx0 = j->cx - j->dx * e - nx * h, fd->jy0 = j->cy - j->dy * e - ny * h;
		fd->jx1 = j->cx + j->dx * e - nx * h, fd->jy1 = j->cy + j->dy * e - ny * h;
		fd->jx2 = j->cx + j->dx * e + nx * h, fd->jy2 = j->cy + j->dy * e + ny * h;
		fd->jx3 = j->cx - j->dx * e + nx * h, fd->jy3 = j->cy - j->dy * e + ny * h;
	}
}

/* ------------------------------------------------------------------------
 * Posing: body units to pixels.
 */

struct pose {
	float cx, cy;   /* where body (0, 0) lands */
	float s;        /* pixels per body unit */
	float c, sn;    /* rotation */
	float mx;       /* -1 mirrors (left side) */
};

static void
pose_pt(const struct pose *q, float x, float y, float *px, float *py)
{
	x *= q->mx;
	*px = q->cx + q->s * (q->c * x - q->sn * y);
	*py = q->cy + q->s * (q->sn * x + q->c * y);
}

static float
pose_angle(const struct pose *q, float a)
{
	float dx = q->mx * cosf(a), dy = sinf(a);
	return atan2f(q->sn * dx + q->c * dy, q->c * dx - q->sn * dy);
}

/* Pose every primitive of src into dst and give each its pixel box. */
static void
pose_scene(struct scene *dst, const struct scene *src, const struct pose *q, int w, int h)
{
	*dst = *src;
	for (int i = 0; i < dst->n; i++) {
		struct prim *p = &dst->p[i];
		const struct prim *o = &src->p[i];
		float m;
		pose_pt(q, o->ax, o->ay, &p->ax, &p->ay);
		pose_pt(q, o->bx, o->by, &p->bx, &p->by);
		p->r0 = o->r0 * q->s, p->ra = o->ra * q->s, p->rb = o->rb * q->s;
		p->rx = o->rx * q->s, p->ry = o->ry * q->s;
		p->ang = pose_angle(q, o->ang);
		if (p->kind == PK_ARC) {
			/* from here on: the middle direction and half the range */
			p->ang = pose_angle(q, 0.5f * (o->a0 + o->a1));
			p->a0 = 0.5f * fabsf(o->a1 - o->a0);
		}
		switch (p->kind) {
		case PK_TUBE: {
			float len = hypotf(p->bx - p->ax, p->by - p->ay);
			m = fmaxf(p->r0, fmaxf(p->ra, p->rb)) * 1.6f + 2;
			if (p->fr.on)
				m += fabsf(p->fr.shift) * p->r0 + fabsf(sinf(p->fr.bend)) * len + fabsf(p->fr.slide) * p->r0;
			p->x0 = (int)floorf(fminf(p->ax, p->bx) - m);
			p->x1 = (int)ceilf(fmaxf(p->ax, p->bx) + m);
			p->y0 = (int)floorf(fminf(p->ay, p->by) - m);
			p->y1 = (int)ceilf(fmaxf(p->ay, p->by) + m);
			break;
		}
		case PK_SOFT_TUBE:
		case PK_CAST:
			m = fmaxf(p->ra, p->rb) * 1.3f + 2;
			p->x0 = (int)floorf(fminf(p->ax, p->bx) - m);
			p->x1 = (int)ceilf(fmaxf(p->ax, p->bx) + m);
			p->y0 = (int)floorf(fminf(p->ay, p->by) - m);
			p->y1 = (int)ceilf(fmaxf(p->ay, p->by) + m);
			break;
		case PK_ARC:
			m = p->rx + p->ry + 2;
			p->x0 = (int)floorf(p->ax - m), p->x1 = (int)ceilf(p->ax + m);
			p->y0 = (int)floorf(p->ay - m), p->y1 = (int)ceilf(p->ay + m);
			break;
		default:
			m = fmaxf(p->rx, p->ry) * (p->kind == PK_SWELL ? 1.6f : 1) + 2;
			p->x0 = (int)floorf(p->ax - m), p->x1 = (int)ceilf(p->ax + m);
			p->y0 = (int)floorf(p->ay - m), p->y1 = (int)ceilf(p->ay + m);
			break;
		}
		p->x0 = p->x0 < 0 ? 0 : p->x0;
		p->y0 = p->y0 < 0 ? 0 : p->y0;
		p->x1 = p->x1 > w ? w : p->x1;
		p->y1 = p->y1 > h ? h : p->y1;
	}
}

/* Grow box b[4] (x0, y0, x1, y1) to hold point (x, y). */
static void
box_add(float *b, float x, float y)
{
	b[0] = fminf(b[0], x), b[1] = fminf(b[1], y);
	b[2] = fmaxf(b[2], x), b[3] = fmaxf(b[3], y);
}

static void
box_ellipse(float *b, float cx, float cy, float rx, float ry, float ang)
{
	float c = cosf(ang), s = sinf(ang);
	float ex = sqrtf(sqf(rx * c) + sqf(ry * s)), ey = sqrtf(sqf(rx * s) + sqf(ry * c));
	box_add(b, cx - ex, cy - ey);
	box_add(b, cx + ex, cy + ey);
}

/* The pixel box of a finding in posed scene ps (pose q); 0 if none. */
static int
finding_box(const struct finding *fd, const struct scene *ps, const struct pose *q, float *b)
{
	b[0] = b[1] = 1e30f;
	b[2] = b[3] = -1e30f;
	if (fd->kind == MURA_SYNTH_FRACTURE || fd->kind == MURA_SYNTH_LESION) {
		const struct prim *p = &ps->p[fd->prim];
		if (p->kind == PK_TUBE) {
			float ux, uy, len, t, rt, along, across;
			tube_axis(p, &ux, &uy, &len);
			if (fd->kind == MURA_SYNTH_FRACTURE) {
				t = p->fr.t;
				rt = p->r0 * 1.25f;
				along = p->r0 * (fabsf(tanf(p->fr.tilt)) + p->fr.gap + 0.6f + fabsf(p->fr.slide));
				across = rt + fabsf(p->fr.shift) * p->r0 * 0.5f;
			} else {
				t = p->hole.t;
				rt = p->r0;
				along = p->hole.rx * p->r0 * 1.15f;
				across = p->hole.ry * p->r0 * 1.15f;
			}
			{
				float cx = p->ax + ux * len * t, cy = p->ay + uy * len * t, nx = -uy, ny = ux;
				float off = fd->kind == MURA_SYNTH_LESION ? p->hole.v * p->r0 : 0;
				cx += nx * off, cy += ny * off;
				for (int k = 0; k < 4; k++) {
					float sa = k & 1 ? along : -along, sc = k & 2 ? across : -across;
					box_add(b, cx + ux * sa + nx * sc, cy + uy * sa + ny * sc);
				}
			}
		} else {
			float c = cosf(p->ang), s = sinf(p->ang);
			float lx = p->hole.t * p->rx, ly = p->hole.v * p->ry;
			box_ellipse(b, p->ax + c * lx - s * ly, p->ay + s * lx + c * ly, p->hole.rx * p->rx * 1.15f,
			            p->hole.ry * p->ry * 1.15f, p->ang);
		}
	} else if (fd->kind == MURA_SYNTH_HARDWARE) {
		for (int i = fd->first; i < fd->last; i++) {
			const struct prim *p = &ps->p[i];
			float c = cosf(p->ang), s = sinf(p->ang);
			if (p->kind == PK_METAL_DISC) {
				box_ellipse(b, p->ax, p->ay, p->rx, p->ry, p->ang);
				continue;
			}
			for (int k = 0; k < 4; k++) {
				float sa = k & 1 ? p->rx : -p->rx, sc = k & 2 ? p->ry : -p->ry;
				box_add(b, p->ax + c * sa - s * sc, p->ay + s * sa + c * sc);
			}
		}
	} else if (fd->kind == MURA_SYNTH_JOINT) {
		float x, y;
		pose_pt(q, fd->jx0, fd->jy0, &x, &y), box_add(b, x, y);
		pose_pt(q, fd->jx1, fd->jy1, &x, &y), box_add(b, x, y);
		pose_pt(q, fd->jx2, fd->jy2, &x, &y), box_add(b, x, y);
		pose_pt(q, fd->jx3, fd->jy3, &x, &y), box_add(b, x, y);
		for (int i = fd->first; i < fd->last; i++)
			if (ps->p[i].kind == PK_BALL)
				box_ellipse(b, ps->p[i].ax, ps->p[i].ay, ps->p[i].rx, ps->p[i].ry, ps->p[i].ang);
	} else
		return 0;
	return b[2] > b[0];
}

/* ------------------------------------------------------------------------
 * Rasterising: attenuation per pixel, by layer.
 */

struct layers {
	int w, h;
	float *soft, *bone, *metal, *extra;
	float tex;      /* trabecular texture scale, pixels */
	uint32_t seed;
};

/* Cortex and medulla a tube contributes at (s, d): s along, d across (pixels). */
static float
tube_at(const struct prim *p, float len, float s, float d, float tex)
{
	float t = s / len, tc = clampf(t, 0, 1);
	float ea = expf(-sqf(tc / p->wa)), eb = expf(-sqf((1 - tc) / p->wb));
	float r = (p->r0 + (p->ra - p->r0) * ea + (p->rb - p->r0) * eb) * (1 + 0.04f * vnoise(s / (6 * p->r0), 0.5f, p->seed + 2));
	if (p->hole.on && p->hole.grow > 0) /* an expansile lesion thins and bulges the cortex */
		r += p->hole.grow * p->r0 * expf(-sqf((s - p->hole.t * len) / (p->hole.rx * p->r0)));
	float c = p->cort * (1 - 0.8f * fmaxf(ea, eb));
	float de2 = d * d, outer, inner, ri, cort, med, n;

	if (s < 0)
		de2 += sqf(s / p->capa);
	else if (s > len)
		de2 += sqf((s - len) / p->capb);
	outer = r * r - de2;
	if (outer <= 0)
		return 0;
	ri = r * (1 - c);
	inner = ri * ri - de2;
	cort = 3 * (sqrtf(outer) - sqrtp(inner)); /* cortex is denser than the medulla's average */
	med = 2 * sqrtp(inner);
	n = 0.65f * vnoise(s / (3.0f * tex), d / tex, p->seed) + 0.35f * vnoise(s / (1.2f * tex), d / (0.6f * tex), p->seed + 1);
	med *= p->trab * (1 + 0.45f * n) * (1 + 0.35f * fmaxf(ea, eb));
	return p->dens * (cort + med) / (2 * sqrtf(r * p->r0));
}

/* Signed distance past a break line, in pixels; > 0 on the far side. */
static float
frac_side(const struct frac *f, float r0, float sf, float s, float d)
{
	float v = (s - sf) * cosf(f->tilt) + d * sinf(f->tilt);
	v += f->jag * r0 * vnoise(d / (0.35f * r0) + 7.3f, 0.5f, f->seed);
	v += f->curve * r0 * sqf(d / r0);
	return v;
}

/* Weight (0 .. 1) of the bone left by a gap of half-width hw around v. */
static float
gap_keep(float v, float hw)
{
	return 1 - clampf(hw - fabsf(v) + 0.5f, 0, 1);
}

static float
tube_value(const struct prim *p, float px, float py, float tex)
{
	float dx = p->bx - p->ax, dy = p->by - p->ay, len = sqrtf(dx * dx + dy * dy);
	float ux = dx / len, uy = dy / len;
	float s = (px - p->ax) * ux + (py - p->ay) * uy, d = -(px - p->ax) * uy + (py - p->ay) * ux;
	float v;

	if (!p->fr.on || p->fr.partial > 0) {
		v = tube_at(p, len, s, d, tex);
		if (v > 0 && p->fr.on) {
			float rr = p->r0 * (1 - p->fr.partial);
			if (d * p->fr.side > rr) {
				float e = frac_side(&p->fr, p->r0, p->fr.t * len, s, d);
				v *= 1 - p->fr.depth * (1 - gap_keep(e, 0.5f * p->fr.gap * p->r0));
			}
		}
	} else {
		/* near part up to the break; far part moved and turned, then cut */
		const struct frac *f = &p->fr;
		float sf = f->t * len, hw = 0.5f * f->gap * p->r0;
		float e = frac_side(f, p->r0, sf, s, d);
		float cb = cosf(f->bend), sb = sinf(f->bend);
		float s1 = s - sf - f->slide * p->r0, d1 = d - f->shift * p->r0;
		float s2 = cb * s1 + sb * d1 + sf, d2 = -sb * s1 + cb * d1;
		float e2 = frac_side(f, p->r0, sf, s2, d2);
		v = 0;
		if (e < hw + 1)
			v += tube_at(p, len, s, d, tex) * clampf(-e - hw + 0.5f, 0, 1);
		if (e2 > -hw - 1)
			v += tube_at(p, len, s2, d2, tex) * clampf(e2 - hw + 0.5f, 0, 1);
		s = s2 * (e2 > 0) + s * (e2 <= 0);
		d = d2 * (e2 > 0) + d * (e2 <= 0);
	}
	if (v > 0 && p->phys.on) {
		float e = frac_side(&p->phys, p->r0, p->phys.t * len, s, d);
		v *= 1 - p->phys.depth * (1 - gap_keep(e, 0.5f * p->phys.gap * p->r0));
	}
	if (v > 0 && p->hole.on) {
		float a = (s - p->hole.t * len) / (p->hole.rx * p->r0), b = (d - p->hole.v * p->r0) / (p->hole.ry * p->r0);
		float q = sqrtf(a * a + b * b);
		v *= 1 - p->hole.depth * clampf((1 - q) * 3, 0, 1) + p->hole.rim * expf(-sqf((q - 1.05f) / 0.18f));
	}
	return v;
}

static float
ball_value(const struct prim *p, float px, float py, float tex)
{
	float c = cosf(p->ang), s = sinf(p->ang), x = px - p->ax, y = py - p->ay;
	float u = (c * x + s * y) / p->rx, v = (-s * x + c * y) / p->ry, q = u * u + v * v;
	float outer, inner, n, val;

	if (q >= 1.3f)
		return 0;
	q *= 1 + 0.12f * vnoise(u * 1.7f, v * 1.7f, p->seed + 3); /* no bone is a perfect ellipsoid */
	if (q >= 1)
		return 0;
	outer = sqrtf(1 - q);
	inner = sqrtp(sqf(1 - p->cort) - q);
	n = 0.6f * vnoise(x / (1.6f * tex), y / (1.6f * tex), p->seed) + 0.4f * vnoise(x / (0.7f * tex), y / (0.7f * tex), p->seed + 1);
	val = p->dens * (1.5f * (outer - inner) + inner * p->trab * (1 + 0.45f * n)) * 0.9f;
	if (p->hole.on) {
		float a = (u - p->hole.t) / p->hole.rx, b = (v - p->hole.v) / p->hole.ry, h = sqrtf(a * a + b * b);
		val *= 1 - p->hole.depth * clampf((1 - h) * 3, 0, 1) + p->hole.rim * expf(-sqf((h - 1.05f) / 0.18f));
	}
	return val;
}

/* Rasterise posed scene sc.  Soft tissue takes the thickest part under a
 * pixel (limbs do not overlap), everything else adds up. */
static void
rasterise(struct layers *L, const struct scene *sc)
{
	int w = L->w;

	for (int i = 0; i < sc->n; i++) {
		const struct prim *p = &sc->p[i];
		float c = cosf(p->ang), s = sinf(p->ang);
		for (int y = p->y0; y < p->y1; y++) {
			for (int x = p->x0; x < p->x1; x++) {
				float px = x + 0.5f, py = y + 0.5f, v;
				size_t k = (size_t)y * w + x;
				switch (p->kind) {
				case PK_TUBE:
					L->bone[k] += tube_value(p, px, py, L->tex);
					break;
				case PK_BALL:
					L->bone[k] += ball_value(p, px, py, L->tex);
					break;
				case PK_SLAB: {
					float u = (c * (px - p->ax) + s * (py - p->ay)) / p->rx;
					float vv = (-s * (px - p->ax) + c * (py - p->ay)) / p->ry, q = sqrtf(u * u + vv * vv);
					if (q < 1)
						L->bone[k] += p->dens * (0.35f + 0.55f * expf(-sqf((1 - q) / 0.12f))) * sqrtf(1 - q * q * q * q);
					break;
				}
				case PK_ARC: {
					float dx = px - p->ax, dy = py - p->ay, dist = sqrtf(dx * dx + dy * dy);
					float dd = dist - p->rx, cosang = (dx * cosf(p->ang) + dy * sinf(p->ang)) / dist;
					float th = p->ry, fade = clampf((cosang - cosf(p->a0)) * 20, 0, 1);
					if (fabsf(dd) < th && fade > 0) {
						float ri = th * (1 - p->cort);
						v = sqrtf(th * th - dd * dd);
						v = (2 * (v - sqrtp(ri * ri - dd * dd)) + 0.5f * sqrtp(ri * ri - dd * dd)) / (2 * th);
						L->bone[k] += p->dens * v * fade;
					}
					break;
				}
				case PK_SOFT_TUBE: {
					float dx = p->bx - p->ax, dy = p->by - p->ay, len = sqrtf(dx * dx + dy * dy);
					float sa = ((px - p->ax) * dx + (py - p->ay) * dy) / len, d = (-(px - p->ax) * dy + (py - p->ay) * dx) / len;
					float t = clampf(sa / len, 0, 1), r = p->ra + (p->rb - p->ra) * t, de2 = d * d;
					if (sa < 0)
						de2 += sa * sa;
					else if (sa > len)
						de2 += sqf(sa - len);
					v = 1 - de2 / (r * r);
					if (v > 0)
						L->soft[k] = fmaxf(L->soft[k], p->dens * sqrtf(v));
					break;
				}
				case PK_SOFT_BALL:
				case PK_LUNG: {
					float u = (c * (px - p->ax) + s * (py - p->ay)) / p->rx;
					float vv = (-s * (px - p->ax) + c * (py - p->ay)) / p->ry;
					v = 1 - u * u - vv * vv;
					if (v > 0 && p->kind == PK_SOFT_BALL)
						L->soft[k] = fmaxf(L->soft[k], p->dens * sqrtf(v));
					break;
				}
				case PK_CAST: {
					float dx = p->bx - p->ax, dy = p->by - p->ay, len = sqrtf(dx * dx + dy * dy);
					float sa = ((px - p->ax) * dx + (py - p->ay) * dy) / len, d = (-(px - p->ax) * dy + (py - p->ay) * dx) / len;
					float ri = p->ra - p->rb;
					if (sa > 0 && sa < len && fabsf(d) < p->ra) {
						v = 2 * (sqrtf(p->ra * p->ra - d * d) - sqrtp(ri * ri - d * d)) / (4 * p->rb);
						v *= 1 + 0.15f * sinf(sa * 0.9f) * sinf(d * 0.9f);
						L->extra[k] += p->dens * v * clampf(fminf(sa, len - sa) / p->rb, 0, 1);
					}
					break;
				}
				case PK_METAL_BOX: {
					float u = c * (px - p->ax) + s * (py - p->ay), vv = -s * (px - p->ax) + c * (py - p->ay);
					float hw = p->ry, pitch = fmaxf(p->ry * 1.2f, 1.5f);
					if (p->thread > 0 && u > -p->rx * 0.7f) {
						float ph = u / pitch - floorf(u / pitch);
						hw *= 1 - p->thread * fabsf(2 * ph - 1);
					}
					v = step1(p->rx - fabsf(u)) * clampf(hw - fabsf(vv) + 0.5f, 0, 1);
					L->metal[k] += p->dens * v;
					break;
				}
				case PK_SWELL: {
					float u = (c * (px - p->ax) + s * (py - p->ay)) / p->rx;
					float vv = (-s * (px - p->ax) + c * (py - p->ay)) / p->ry;
					L->extra[k] += p->dens * expf(-2 * (u * u + vv * vv));
					break;
				}
				case PK_METAL_DISC: {
					float u = (c * (px - p->ax) + s * (py - p->ay)) / p->rx;
					float vv = (-s * (px - p->ax) + c * (py - p->ay)) / p->ry;
					v = (1 - sqrtf(u * u + vv * vv)) * fminf(p->rx, p->ry);
					L->metal[k] += p->dens * clampf(v + 0.5f, 0, 1);
					break;
				}
				}
			}
		}
	}
	/* air in the lungs thins the soft tissue under it */
	for (int i = 0; i < sc->n; i++) {
		const struct prim *p = &sc->p[i];
		float c = cosf(p->ang), s = sinf(p->ang);
		if (p->kind != PK_LUNG)
			continue;
		for (int y = p->y0; y < p->y1; y++)
			for (int x = p->x0; x < p->x1; x++) {
				float u = (c * (x + 0.5f - p->ax) + s * (y + 0.5f - p->ay)) / p->rx;
				float vv = (-s * (x + 0.5f - p->ax) + c * (y + 0.5f - p->ay)) / p->ry;
				float v = 1 - u * u - vv * vv;
				if (v > 0)
					L->soft[(size_t)y * L->w + x] *= 1 - p->dens * sqrtf(v);
			}
	}
}

/* ------------------------------------------------------------------------
 * An image: view, pose, findings, picture.
 */

static const unsigned char glyph_l[7] = {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1f};
static const unsigned char glyph_r[7] = {0x1e, 0x11, 0x11, 0x1e, 0x14, 0x12, 0x11};

/* Draw the side marker: a letter, boxed or not, into the picture. */
static void
draw_marker(float *img, int w, int h, struct mura_rng *r, int left, const float (*avoid)[4], int navoid)
{
	const unsigned char *g = left ? glyph_l : glyph_r;
	int shorter = w < h ? w : h;
	int cell = (int)fmaxf(1, roundf(shorter * unif(r, 0.008, 0.016)));
	int bw = 7 * cell, bh = 9 * cell, style = (int)mura_rng_below(r, 3);
	float fg = unif(r, 0.85, 1.0), bg = unif(r, 0.75, 0.95);
	int corner = (int)mura_rng_below(r, 4), x0 = 0, y0 = 0;

	if (bw + 4 > w || bh + 4 > h)
		return;
	for (int tries = 0; tries < 4; tries++, corner = (corner + 1) & 3) {
		int m = (int)(shorter * 0.04f) + 1, ok = 1;
		x0 = corner & 1 ? w - bw - m : m;
		y0 = corner & 2 ? h - bh - m : m;
		for (int i = 0; i < navoid; i++)
			if (x0 < avoid[i][2] && x0 + bw > avoid[i][0] && y0 < avoid[i][3] && y0 + bh > avoid[i][1])
				ok = 0;
		if (ok)
			break;
	}
	for (int y = 0; y < bh; y++)
		for (int x = 0; x < bw; x++) {
			int gx = x / cell - 1, gy = y / cell - 1;
			int on = gx >= 0 && gx < 5 && gy >= 0 && gy < 7 && (g[gy] >> (4 - gx) & 1);
			int edge = x < cell / 2 + 1 || y < cell / 2 + 1 || x >= bw - cell / 2 - 1 || y >= bh - cell / 2 - 1;
			float *px = &img[(size_t)(y0 + y) * w + x0 + x];
			if (style == 0 && on)
				*px = fg;
			else if (style == 1)
				*px = on ? 0.08f : bg;
			else if (style == 2 && (on || edge))
				*px = fg;
		}
}

struct imgplan {
	int w, h, format;
	struct view v;
	struct pose q;
	float gamma, lo, hi, noise, fog, blur, heel, heelx, heely;
	int collimate;
	float col[4];   /* collimator box: centre offset, half sizes (share of size) */
	float col_level, col_ang;
};

static void
image_plan(struct imgplan *ip, int type, int image, const struct anat *an, struct mura_rng *r)
{
	float u = (float)mura_rng_double(r), longer, aspect, base, jit;
	int land;

	longer = u < 0.72f ? 512 : u < 0.92f ? unif(r, 300, 512) : unif(r, 89, 300);
	aspect = unif(r, 0.55, 1.0);
	land = chance(r, type == MURA_TYPE_SHOULDER ? 0.55 : 0.15);
	ip->w = (int)roundf(land ? longer : fmaxf(89, longer * aspect));
	ip->h = (int)roundf(land ? fmaxf(89, longer * aspect) : longer);
	u = (float)mura_rng_double(r);
	ip->format = u < 0.08f ? MURA_PNG_RGB8 : u < 0.15f ? MURA_PNG_GRAY16 : MURA_PNG_GRAY8;

	ip->v.kind = (image - 1 + (int)mura_rng_below(r, 2) * (image > 3)) % 3;
	ip->v.flex = ip->v.kind == 1 ? unif(r, 0.9, 1.7) : unif(r, -0.15, 0.15);
	if (type == MURA_TYPE_HAND || type == MURA_TYPE_FINGER || type == MURA_TYPE_WRIST)
		ip->v.flex = ip->v.kind == 1 ? unif(r, 0.1, 0.45) : unif(r, -0.05, 0.12);
	ip->v.roll = ip->v.kind == 0 ? unif(r, 0, 0.04) : unif(r, -0.02, 0.02);

	/* the limb runs along the longer side, give or take */
	base = land && type != MURA_TYPE_SHOULDER ? (chance(r, 0.5) ? 0.5f : -0.5f) * (float)M_PI : 0;
	if (chance(r, 0.06))
		base += (float)M_PI;
	jit = clampf((float)mura_rng_normal(r) * 0.18f, -0.5f, 0.5f);
	ip->q.c = cosf(base + jit);
	ip->q.sn = sinf(base + jit);
	ip->q.mx = an->side ? -1 : 1;
	ip->q.s = fmaxf(ip->w, ip->h) * unif(r, 0.85, 1.2);
	ip->q.cx = ip->w * (0.5f + unif(r, -0.08, 0.08));
	ip->q.cy = ip->h * (0.5f + unif(r, -0.08, 0.08));

	ip->gamma = unif(r, 0.75, 1.35);
	ip->lo = unif(r, 0.0, 0.12);
	ip->hi = unif(r, 0.85, 1.05);
	ip->fog = unif(r, 0.0, 0.08);
	ip->noise = unif(r, 0.01, 0.035);
	ip->blur = unif(r, 0, 1) < 0.5f ? unif(r, 0.3, 1.0) : 0;
	ip->heel = unif(r, 0, 0.12);
	ip->heelx = unif(r, -1, 1);
	ip->heely = unif(r, -1, 1);
	ip->collimate = chance(r, type == MURA_TYPE_FINGER ? 0.2 : 0.08);
	ip->col[0] = unif(r, -0.05, 0.05);
	ip->col[1] = unif(r, -0.05, 0.05);
	ip->col[2] = unif(r, 0.3, 0.46);
	ip->col[3] = unif(r, 0.3, 0.46);
	ip->col_level = unif(r, 0.55, 0.95);
	ip->col_ang = unif(r, -0.06, 0.06);
}

/* Turn attenuation into the picture: exposure, window, blur, heel effect,
 * collimation, noise. */
static void
develop(float *img, const struct layers *L, const struct imgplan *ip, struct mura_rng *r)
{
	int w = L->w, h = L->h;
	size_t n = (size_t)w * h;

	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++) {
			size_t k = (size_t)y * w + x;
			float soft = L->soft[k], a;
			/* muscle and fat are not uniform */
			if (soft > 0)
				soft *= 1 + 0.1f * vnoise(x / (14 * L->tex), y / (14 * L->tex), L->seed);
			a = 0.75f * soft + L->bone[k] + L->extra[k] + L->metal[k];
			img[k] = 1 - expf(-1.1f * a);
		}
	if (ip->blur > 0) {
		/* one pass of a [b, 1, b] kernel across and down */
		float b = ip->blur * 0.5f, nrm = 1 / (1 + 2 * b);
		float *row = malloc(sizeof *row * (size_t)(w > h ? w : h));
		if (row) {
			for (int y = 0; y < h; y++) {
				float *p = img + (size_t)y * w;
				for (int x = 0; x < w; x++)
					row[x] = (p[x] + b * (p[x > 0 ? x - 1 : x] + p[x < w - 1 ? x + 1 : x])) * nrm;
				memcpy(p, row, sizeof *row * (size_t)w);
			}
			for (int x = 0; x < w; x++) {
				for (int y = 0; y < h; y++) {
					float c = img[(size_t)y * w + x];
					float u = img[(size_t)(y > 0 ? y - 1 : y) * w + x], d = img[(size_t)(y < h - 1 ? y + 1 : y) * w + x];
					row[y] = (c + b * (u + d)) * nrm;
				}
				for (int y = 0; y < h; y++)
					img[(size_t)y * w + x] = row[y];
			}
			free(row);
		}
	}
	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++) {
			size_t k = (size_t)y * w + x;
			float v = img[k], fx = (x + 0.5f) / w - 0.5f, fy = (y + 0.5f) / h - 0.5f;
			v *= 1 + ip->heel * (ip->heelx * fx + ip->heely * fy);
			v = ip->fog + (1 - ip->fog) * v;
			v = clampf((v - ip->lo) / (ip->hi - ip->lo), 0, 1);
			v = powf(v, ip->gamma);
			if (ip->collimate) {
				float c = cosf(ip->col_ang), s = sinf(ip->col_ang);
				float u = fx - ip->col[0], vv = fy - ip->col[1];
				float e = fmaxf(fabsf(c * u + s * vv) - ip->col[2], fabsf(-s * u + c * vv) - ip->col[3]);
				float m = clampf(e * fminf(w, h) + 0.5f, 0, 1);
				v = v * (1 - m * 0.85f) + ip->col_level * m * 0.85f;
			}
			img[k] = v;
		}
	/* quantum noise, stronger where the image is dark (fewer photons
	 * through bone show as less noise after the inverted display) */
	for (size_t k = 0; k < n; k += 4) {
		uint64_t z = mura_rng_u64(r), z2 = mura_rng_u64(r);
		for (int j = 0; j < 4 && k + j < n; j++) {
			/* the sum of two uniforms: near enough a normal, and cheap */
			float g = ((float)((z >> (16 * j)) & 0xffff) / 65536.0f - 0.5f) * 3.4641f;
			g += ((float)((z2 >> (16 * j)) & 0xffff) / 65536.0f - 0.5f) * 3.4641f;
			img[k + j] = clampf(img[k + j] + ip->noise * 0.7071f * g * (1.1f - 0.5f * img[k + j]), 0, 1);
		}
	}
}

/* The tissue, bone and metal of one image, posed; and the finding's box. */
static int
draw(struct mura_synth_image *im, uint64_t seed, float diff, int type, uint32_t patient, int study,
     int abnormal, int image)
{
	struct study st;
	struct imgplan ip;
	struct mura_rng r, br;
	char key[160];
	struct scene *body = NULL, *posed = NULL;
	struct finding fd = {0};
	struct layers L = {0};
	float *img = NULL, box[4] = {0}, avoid[1][4];
	int shown, nbox = 0, rc = -1;
	size_t n;

	study_make(&st, seed, type, patient, study, abnormal);
	study_key(key, sizeof key, type, patient, study);
	snprintf(key + strlen(key), sizeof key - strlen(key), "/image%d", image);
	mura_rng_derive(&r, seed, 1, key);
	image_plan(&ip, type, image, &st.an, &r);
	shown = st.kind && image >= 1 && image <= 32 && (st.shown >> (image - 1) & 1);

	body = malloc(sizeof *body);
	posed = malloc(sizeof *posed);
	if (!body || !posed) {
		mura_error("out of memory");
		goto out;
	}
	memset(body, 0, sizeof *body);
	body->seed = hash2((int32_t)patient, study * 8 + image, (uint32_t)seed);
	body->bscale = st.an.size;
	body->bdens = 0.75f * st.an.dens;
	body->cort = st.an.cort;
	body->sdens = 0.55f * st.an.softd;
	body->ssize = st.an.soft;
	body->narrow = -1;
	body->narrow_by = lerpf(0.0f, 0.6f, diff);
	br = r;
	build_anatomy(body, type, &st.an, &ip.v, br);
	fd.kind = shown ? st.kind : 0;
	fd.prim = fd.joint = -1;
	if (fd.kind == MURA_SYNTH_JOINT) {
		double w[MAX_JOINTS];
		for (int i = 0; i < body->nj; i++) /* big joints first when easy, as bones in pick_prim */
			w[i] = body->j[i].weight * pow(body->j[i].halfw, 3.0 * (1.0 - diff));
		body->narrow = pick(w, body->nj, st.u[0]);
		if (body->narrow < 0)
			fd.kind = 0;
		else {
			build_anatomy(body, type, &st.an, &ip.v, br);
			attach_joint_extras(body, &fd, diff, &st);
		}
	} else if (fd.kind == MURA_SYNTH_FRACTURE)
		attach_fracture(body, &fd, &st, diff);
	else if (fd.kind == MURA_SYNTH_LESION)
		attach_lesion(body, &fd, &st, diff);
	else if (fd.kind == MURA_SYNTH_HARDWARE)
		attach_hardware(body, &fd, &st, diff, type);
	if (fd.kind && fd.kind != MURA_SYNTH_JOINT && fd.prim < 0)
		fd.kind = 0;

	/* pose; if the finding falls off the picture, slide the body back in */
	pose_scene(posed, body, &ip.q, ip.w, ip.h);
	if (fd.kind && finding_box(&fd, posed, &ip.q, box)) {
		float m = 0.03f * fminf(ip.w, ip.h), sx = 0, sy = 0;
		if (box[2] - box[0] > ip.w - 2 * m)
			sx = 0.5f * ip.w - 0.5f * (box[0] + box[2]);
		else if (box[0] < m)
			sx = m - box[0];
		else if (box[2] > ip.w - m)
			sx = ip.w - m - box[2];
		if (box[3] - box[1] > ip.h - 2 * m)
			sy = 0.5f * ip.h - 0.5f * (box[1] + box[3]);
		else if (box[1] < m)
			sy = m - box[1];
		else if (box[3] > ip.h - m)
			sy = ip.h - m - box[3];
		if (sx != 0 || sy != 0) {
			ip.q.cx += sx;
			ip.q.cy += sy;
			pose_scene(posed, body, &ip.q, ip.w, ip.h);
			finding_box(&fd, posed, &ip.q, box);
		}
	}

	n = (size_t)ip.w * ip.h;
	L.w = ip.w;
	L.h = ip.h;
	L.tex = fmaxf(1.0f, ip.q.s * 0.0028f);
	L.seed = body->seed ^ 0x68e31da4u;
	L.soft = calloc(n, sizeof *L.soft);
	L.bone = calloc(n, sizeof *L.bone);
	L.metal = calloc(n, sizeof *L.metal);
	L.extra = calloc(n, sizeof *L.extra);
	img = malloc(n * sizeof *img);
	if (!L.soft || !L.bone || !L.metal || !L.extra || !img) {
		mura_error("out of memory");
		goto out;
	}
	if (ip.collimate && fd.kind) {
		/* the collimator never hides the finding */
		float c = cosf(ip.col_ang), s = sinf(ip.col_ang);
		for (int k = 0; k < 4; k++) {
			float u = (k & 1 ? box[2] : box[0]) / ip.w - 0.5f - ip.col[0];
			float v = (k & 2 ? box[3] : box[1]) / ip.h - 0.5f - ip.col[1];
			ip.col[2] = fmaxf(ip.col[2], fabsf(c * u + s * v) + 0.03f);
			ip.col[3] = fmaxf(ip.col[3], fabsf(-s * u + c * v) + 0.03f);
		}
	}
	rasterise(&L, posed);
	develop(img, &L, &ip, &r);
	{
		/* clip the finding's box to the picture */
		box[0] = fmaxf(0, floorf(box[0]));
		box[1] = fmaxf(0, floorf(box[1]));
		box[2] = fminf(ip.w, ceilf(box[2]));
		box[3] = fminf(ip.h, ceilf(box[3]));
		if (fd.kind && box[2] - box[0] >= 1 && box[3] - box[1] >= 1) {
			memcpy(avoid[0], box, sizeof box);
			nbox = 1;
		}
	}
	draw_marker(img, ip.w, ip.h, &r, st.an.side, (const float (*)[4])avoid, nbox);

	im->width = ip.w;
	im->height = ip.h;
	im->format = ip.format;
	im->nboxes = 0;
	im->pixels = malloc(n * (size_t)mura_png_pixel_bytes(ip.format));
	if (!im->pixels) {
		mura_error("out of memory");
		goto out;
	}
	for (size_t k = 0; k < n; k++) {
		float v = img[k];
		if (ip.format == MURA_PNG_GRAY16)
			((uint16_t *)im->pixels)[k] = (uint16_t)lrintf(v * 65535.0f);
		else if (ip.format == MURA_PNG_RGB8)
			memset((unsigned char *)im->pixels + 3 * k, (int)lrintf(v * 255.0f), 3);
		else
			((unsigned char *)im->pixels)[k] = (unsigned char)lrintf(v * 255.0f);
	}
	if (nbox) {
		struct mura_synth_box *b = &im->boxes[im->nboxes++];
		b->kind = fd.kind;
		b->x0 = (int)box[0], b->y0 = (int)box[1], b->x1 = (int)box[2], b->y1 = (int)box[3];
	}
	rc = 0;
out:
	free(body);
	free(posed);
	free(L.soft);
	free(L.bone);
	free(L.metal);
	free(L.extra);
	free(img);
	return rc;
}

int
mura_synth_render(struct mura_synth_image *im, const struct mura_synth_opts *o, const char *path)
{
	struct mura_path_info pi;

	memset(im, 0, sizeof *im);
	if (mura_path_parse(path, &pi) < 0)
		return -1;
	if (!pi.patient || !pi.study || !pi.image || pi.label < 0)
		return mura_error("%s: not a MURA image path (XR_<TYPE>/patientN/studyK_positive|negative/imageK.png)", path);
	return draw(im, o->seed, (float)o->difficulty, pi.type, pi.patient, pi.study, pi.label > 0.5f, pi.image);
}

void
mura_synth_image_free(struct mura_synth_image *im)
{
	free(im->pixels);
	im->pixels = NULL;
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
					study_make(&st, o->seed, type, patient, s, lab[k]);
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
		rc = draw(&im, wk->o->seed, (float)wk->o->difficulty, it->type, it->patient, it->study,
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
