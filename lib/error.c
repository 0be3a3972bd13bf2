/* error.c - the thread-local message behind mura_error(); see error.h. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "error.h"

static _Thread_local char msg[2048];

int
mura_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return -1;
}

int
mura_error_prefix(const char *fmt, ...)
{
	char old[sizeof msg], pre[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(pre, sizeof pre, fmt, ap);
	va_end(ap);
	memcpy(old, msg, sizeof old);
	/* Both parts are bounded; a very long message is cut, never overrun. */
	size_t n = strlen(pre);
	if (n > sizeof msg - 3)
		n = sizeof msg - 3;
	memcpy(msg, pre, n);
	memcpy(msg + n, ": ", 2);
	strncpy(msg + n + 2, old, sizeof msg - n - 3);
	msg[sizeof msg - 1] = 0;
	return -1;
}

const char *
mura_error_get(void)
{
	return msg[0] ? msg : "unknown error";
}

void
mura_error_clear(void)
{
	msg[0] = 0;
}

int
mura_error_pending(void)
{
	return msg[0] != 0;
}
