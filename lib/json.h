/*
 * json.h - a small strict JSON reader (a pull parser) and string writer,
 * enough for safetensors headers (RFC 8259).
 *
 * The reader walks the text in place: the caller asks for the value it
 * expects next (an object, an array, a string, an integer), so nothing is
 * built that the caller does not keep, and memory stays proportional to what
 * the caller keeps, never to the text.  It reads only text[0, len): the text
 * needs no terminating NUL and is never read past len.
 *
 * Strict: whitespace is only space, tab, LF and CR; strings must be valid
 * UTF-8 with no raw control characters; escapes are the eight of RFC 8259
 * plus \uXXXX, whose surrogates must pair; numbers follow the RFC grammar
 * (no leading zeros, no "+", no "1."); nesting is limited to
 * MURA_JSON_MAX_DEPTH.  A string may decode to bytes containing NUL (from
 * \u0000): the length returned says where it ends.
 *
 * Messages (mura_error): syntax errors read "bad JSON at byte N: what", a
 * value of the wrong kind "byte N: what"; N counts from the text's start.
 */
#ifndef MURA_JSON_H
#define MURA_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define MURA_JSON_MAX_DEPTH 32

enum mura_json_type {
	MURA_JSON_NULL = 1,
	MURA_JSON_BOOL,
	MURA_JSON_NUMBER,
	MURA_JSON_STRING,
	MURA_JSON_ARRAY,
	MURA_JSON_OBJECT,
};

struct mura_json {
	const char *s;
	size_t len, pos;
	int depth;                       /* containers open */
	uint32_t fresh;                  /* bit d-1: container at depth d has no member yet */
};

void mura_json_init(struct mura_json *j, const char *text, size_t len);
/* The kind of the next value (a MURA_JSON_* type), without consuming it;
 * -1 at the end of the text or at a character that starts no value. */
int mura_json_peek(struct mura_json *j);
const char *mura_json_type_name(int type);   /* "an object", "a string", ... */

/*
 * Containers.  After *_begin, call *_next before each member: it returns 1
 * when a member follows (for an object, with its key decoded into a malloc'd,
 * NUL-terminated *key of *klen bytes, which the caller frees, and the ':'
 * consumed), 0 when the container has ended (its bracket consumed), -1 on
 * error.  The caller must consume each member's value (read or skip it)
 * before calling *_next again.  klen may be NULL.
 */
int mura_json_object_begin(struct mura_json *j);
int mura_json_object_next(struct mura_json *j, char **key, size_t *klen);
int mura_json_array_begin(struct mura_json *j);
int mura_json_array_next(struct mura_json *j);

/* A string value, decoded into a malloc'd, NUL-terminated *out of *len
 * bytes (len may be NULL).  Returns 0 or -1. */
int mura_json_string(struct mura_json *j, char **out, size_t *len);
/* A number that is a non-negative integer up to 2^64 - 1 ("-1", "1.0",
 * "1e3" and 18446744073709551616 are refused).  Returns 0 or -1. */
int mura_json_u64(struct mura_json *j, uint64_t *out);
/* Consume any one value, checking its syntax.  Returns 0 or -1. */
int mura_json_skip(struct mura_json *j);
/* Nothing but whitespace may follow the value read.  Returns 0 or -1. */
int mura_json_end(struct mura_json *j);

/* Whether s[0, len) is valid UTF-8 (no overlong forms, no surrogates). */
int mura_json_utf8_valid(const char *s, size_t len);
/* Write s[0, len) as a JSON string, escaped as serde_json does ('"', '\\',
 * control characters; other UTF-8 as is).  Returns -1 with a message if s
 * is not valid UTF-8 (nothing written then), else 0; write errors show in
 * ferror(f). */
int mura_json_write_string(FILE *f, const char *s, size_t len);

#endif
