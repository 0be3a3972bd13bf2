/*
 * image.c - one image: its plan (size, format, view, pose, exposure), the
 * study's body and finding drawn, posed and rasterised, the picture
 * developed from the layers, the side marker; mura_synth_render.  See
 * synth_int.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "pngout.h"
#include "synth_int.h"
#include "tensor.h"
#include "util.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

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
int
synth_draw(struct mura_synth_image *im, uint64_t seed, float diff, int type, uint32_t patient, int study,
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

	synth_study_make(&st, seed, type, patient, study, abnormal);
	synth_study_key(key, sizeof key, type, patient, study);
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
	synth_build_anatomy(body, type, &st.an, &ip.v, br);
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
			synth_build_anatomy(body, type, &st.an, &ip.v, br);
			synth_attach_joint_extras(body, &fd, diff, &st);
		}
	} else if (fd.kind == MURA_SYNTH_FRACTURE)
		synth_attach_fracture(body, &fd, &st, diff);
	else if (fd.kind == MURA_SYNTH_LESION)
		synth_attach_lesion(body, &fd, &st, diff);
	else if (fd.kind == MURA_SYNTH_HARDWARE)
		synth_attach_hardware(body, &fd, &st, diff, type);
	if (fd.kind && fd.kind != MURA_SYNTH_JOINT && fd.prim < 0)
		fd.kind = 0;

	/* pose; if the finding falls off the picture, slide the body back in */
	synth_pose_scene(posed, body, &ip.q, ip.w, ip.h);
	if (fd.kind && synth_finding_box(&fd, posed, &ip.q, box)) {
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
			synth_pose_scene(posed, body, &ip.q, ip.w, ip.h);
			synth_finding_box(&fd, posed, &ip.q, box);
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
	synth_rasterise(&L, posed);
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
	return synth_draw(im, o->seed, (float)o->difficulty, pi.type, pi.patient, pi.study, pi.label > 0.5f, pi.image);
}

void
mura_synth_image_free(struct mura_synth_image *im)
{
	free(im->pixels);
	im->pixels = NULL;
}
