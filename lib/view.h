/* view.h - turning a record into a picture a person can look at. */
#ifndef MURA_VIEW_H
#define MURA_VIEW_H

#include "tensor.h"

/*
 * Write record r as an 8-bit PNG at path (atomically): one channel as gray,
 * three as RGB, any other count as its first channel.  u8 is written as is,
 * u16 scaled by 1/257, f32 stretched from its minimum to its maximum.
 * Returns 0, or -1 with mura_error set.
 */
int mura_record_save_png(const struct mura_record *r, const char *path);

#endif
