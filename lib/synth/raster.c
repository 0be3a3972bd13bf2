/*
 * raster.c - a scene from body units to pixels: posing, the pixel box of a
 * finding, and rasterising every primitive's projected thickness into
 * layers of attenuation.  See synth_int.h.
 */
#include "synth_int.h"

/* ------------------------------------------------------------------------
 * Posing: body units to pixels.
 */

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
void
synth_pose_scene(struct scene *dst, const struct scene *src, const struct pose *q, int w, int h)
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
int
synth_finding_box(const struct finding *fd, const struct scene *ps, const struct pose *q, float *b)
{
	b[0] = b[1] = 1e30f;
	b[2] = b[3] = -1e30f;
	if (fd->kind == MURA_SYNTH_FRACTURE || fd->kind == MURA_SYNTH_LESION) {
		const struct prim *p = &ps->p[fd->prim];
		if (p->kind == PK_TUBE) {
			float ux, uy, len, t, rt, along, across;
			synth_tube_axis(p, &ux, &uy, &len);
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
void
synth_rasterise(struct layers *L, const struct scene *sc)
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
