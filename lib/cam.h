/*
 * cam.h - where a model looks: class activation maps of its prediction
 * (what mura-cam runs), their peak, the pointing game against a finding's
 * box, and the overlay of a map on its radiograph.
 *
 * Grad-CAM (Selvaraju et al. 2017) on a layer of output A [C][h][w], with
 * y the abnormal logit (before the sigmoid) of the network in evaluation
 * mode:
 *     alpha_c = mean over (h, w) of dy/dA_c,   map = relu(sum_c alpha_c A_c);
 * CAM (Zhou et al. 2016), for the fc head on the backbone's output F:
 *     map = relu(sum_c w_c F_c), w the classifier's weights.
 * The map is then resized to the record's H x W as PyTorch's
 * F.interpolate(mode="bilinear", align_corners=False) does, and kept as it
 * is (not normalised): so maps of different images compare, and what
 * pytorch-grad-cam computes before its min-max scaling is what we write.
 */
#ifndef MURA_CAM_H
#define MURA_CAM_H

#include <stdint.h>

#include "tensor.h"

enum mura_cam_method {
	MURA_CAM_GRADCAM = 1,
	MURA_CAM_CAM,
};

/* "gradcam", "cam": the enum value, or -1 with mura_error set. */
int mura_cam_method_parse(const char *s);

struct mura_cam_config {
	const char *model;   /* a model file */
	int arch;            /* for a file without our metadata; 0: refuse one */
	int method;          /* enum mura_cam_method */
	const char *layer;   /* state-dict name of the layer; NULL: the backbone's last */
	int batch;           /* records per pass */
	int threads;         /* 0: $MURA_THREADS, else all cores */
};

struct mura_cam;

/* The model loaded (info as mura_model_open's).  NULL with mura_error set,
 * also for CAM on a model whose head is not global pooling + linear. */
struct mura_cam *mura_cam_create(const struct mura_cam_config *c, char *info, size_t infolen);
void mura_cam_free(struct mura_cam *c);
/* The layer the maps are of (its state-dict name). */
const char *mura_cam_layer(const struct mura_cam *c);
int mura_cam_batch_size(const struct mura_cam *c);

/*
 * Maps of n <= batch records (u8, u16 or f32 images of one size, made into
 * the network's input as mura-score makes them): out[i] becomes an f32
 * record of 1 x H x W with in[i]'s metadata, prob[i] the probability of
 * "abnormal" (the sigmoid of the logit).  Returns 0, or -1 with mura_error.
 */
int mura_cam_run(struct mura_cam *c, const struct mura_record *in, int n, struct mura_record *out,
                 float *prob);

/* The position of the largest value of a map (the first in raster order):
 * 1, or 0 when the map holds nothing above 0 (no peak). */
int mura_cam_peak(const struct mura_record *map, int *x, int *y);

/* Colour maps for the overlay: 256-entry tables of matplotlib's. */
enum mura_cmap {
	MURA_CMAP_VIRIDIS = 1,
	MURA_CMAP_INFERNO,
};
int mura_cmap_parse(const char *s);
/*
 * The record's image (gray, u8 or f32 of any scale: stretched to its own
 * minimum and maximum) as RGB with the map (the same H x W) over it:
 *     rgb = (1 - opacity) * gray + opacity * cmap(map / max(map))
 * rgb holds 3 H W bytes.  Returns 0, or -1 for shapes that differ.
 */
int mura_cam_overlay(const struct mura_record *img, const struct mura_record *map, int cmap,
                     float opacity, unsigned char *rgb);

/*
 * The pointing game (Zhang et al. 2016): findings' boxes by image path, as
 * mura-synth's annotations.csv lists them (header "path,kind,x0,y0,x1,y1",
 * then one line a box, in the original image's pixels, x1 and y1
 * exclusive).
 */
struct mura_box {
	char *path;
	int x0, y0, x1, y1;
};
struct mura_boxes {
	struct mura_box *b;
	size_t n;
};
/* Read a file; 0, or -1 with mura_error ("FILE: line N: what"). */
int mura_boxes_read(struct mura_boxes *bx, const char *file);
void mura_boxes_free(struct mura_boxes *bx);
/* The boxes of one path: *first and the count (0: none).  Matched on the
 * path as written, or on its end after a '/' (a record's path may carry the
 * folder the annotations sit beside, or not). */
size_t mura_boxes_of(const struct mura_boxes *bx, const char *path, size_t *first);

#endif
