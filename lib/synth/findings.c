/*
 * findings.c - the findings of an abnormal study (fracture, lytic lesion,
 * hardware, narrowed joint), attached to a built scene in body units.  See
 * synth_int.h.
 */
#include "synth_int.h"
#include "tensor.h"

/* ------------------------------------------------------------------------
 * Findings, attached to the built scene in body units.
 */

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
	w = synth_add(sc, PK_SWELL);
	w->ax = x;
	w->ay = y;
	w->rx = rx;
	w->ry = ry;
	w->ang = ang;
	w->dens = amount;
}

void
synth_attach_fracture(struct scene *sc, struct finding *fd, const struct study *s, float d)
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
		synth_tube_axis(p, &ux, &uy, &len);
		swelling(sc, p->ax + ux * len * p->fr.t, p->ay + uy * len * p->fr.t, 7 * r, 4 * r, atan2f(uy, ux),
		         lerpf(1.3f, 0.0f, d));
	}
	p->fr.depth = 1.0f;
	p->fr.seed = p->seed ^ 0x27d4eb2fu;
	/* a broken bone never has the growth plate in the same place */
	if (p->phys.on && fabsf(p->phys.t - p->fr.t) < 0.15f)
		p->phys.on = 0;
}

void
synth_attach_lesion(struct scene *sc, struct finding *fd, const struct study *s, float d)
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
	struct prim *p = synth_add(sc, PK_METAL_BOX);
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
	struct prim *p = synth_add(sc, PK_METAL_DISC);
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

void
synth_attach_hardware(struct scene *sc, struct finding *fd, const struct study *s, float d, int type)
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

		synth_tube_axis(p, &ux, &uy, &len);
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
void
synth_attach_joint_extras(struct scene *sc, struct finding *fd, float d, const struct study *s)
{
	const struct joint *j = &sc->j[sc->narrow];
	float nx = -j->dy, ny = j->dx, w = j->halfw, th = lerpf(0.4f, 0.1f, d) * w;
	float ost = lerpf(0.65f, 0.08f, d) * w;
	struct prim *p;

	fd->joint = sc->narrow;
	swelling(sc, j->cx, j->cy, 1.6f * w, 1.2f * w, atan2f(j->dy, j->dx), lerpf(0.6f, 0.0f, d));
	fd->first = sc->n;
	for (int k = -1; k <= 1; k += 2) {
		p = synth_add(sc, PK_SLAB);
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
		p = synth_add(sc, PK_BALL);
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
