/* mura.h - the library's public headers in one include. */
#ifndef MURA_H
#define MURA_H
#include "error.h"
#include "keyset.h"
#include "rng.h"
#include "summary.h"
#include "tensor.h"
#include "util.h"
#include "view.h"
#endif
