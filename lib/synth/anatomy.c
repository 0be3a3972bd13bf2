/*
 * anatomy.c - the body in body units: the scene's primitives (local frames,
 * tubes, balls, slabs, arcs, soft tissue, joints) and the builders that make
 * a body part of them, one a study type.  See synth_int.h.
 */
#include <string.h>

#include "synth_int.h"
#include "tensor.h"

/* ------------------------------------------------------------------------
 * The scene: primitives in body units, later posed into pixels (the structs
 * are in synth_int.h).
 */

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

struct prim *
synth_add(struct scene *sc, int kind)
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
	struct prim *p = synth_add(sc, PK_TUBE);
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
	struct prim *p = synth_add(sc, kind);
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
	struct prim *p = synth_add(sc, PK_SOFT_TUBE);

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
	struct prim *p = synth_add(sc, PK_ARC);

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
void
synth_tube_axis(const struct prim *p, float *ux, float *uy, float *len)
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
		p = synth_add(sc, PK_CAST);
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

void
synth_build_anatomy(struct scene *sc, int type, const struct anat *an, const struct view *v, struct mura_rng r)
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
