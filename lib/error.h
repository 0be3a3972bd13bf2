/*
 * error.h - how the library reports failure.
 *
 * The library never exits and never prints.  A function that fails returns
 * -1 (or NULL) and records one message, which the caller (a tool) prints with
 * its own name in front: "mura-info: train.mt: record 3: bad magic".
 * The message lives in a thread-local buffer, as libvips' error buffer does.
 */
#ifndef MURA_ERROR_H
#define MURA_ERROR_H

#if defined(__GNUC__)
#define MURA_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define MURA_PRINTF(a, b)
#endif

/* Record a message; returns -1 so that `return mura_error(...)` reads well. */
int mura_error(const char *fmt, ...) MURA_PRINTF(1, 2);
/* Put "prefix: " in front of the current message. */
int mura_error_prefix(const char *fmt, ...) MURA_PRINTF(1, 2);
const char *mura_error_get(void);
void mura_error_clear(void);
/* 1 if a message is recorded (mura_error_get says "unknown error" when not). */
int mura_error_pending(void);

#endif
