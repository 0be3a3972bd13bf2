/*
 * json.c - the strict pull parser and string writer declared in json.h.
 *
 * Every read is bounded by j->len: a scan first finds a string's closing
 * quote, and the decoder then never looks past it.
 */
#include <assert.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "json.h"

static int
is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/* A byte as a message shows it: 'x' if printable ASCII, else its hex value. */
static const char *
show(unsigned char c, char buf[16])
{
	if (c >= 0x20 && c < 0x7f)
		snprintf(buf, 16, "'%c'", c);
	else
		snprintf(buf, 16, "byte 0x%02x", c);
	return buf;
}

static int
syntax(size_t at, const char *fmt, ...) MURA_PRINTF(2, 3);

static int
syntax(size_t at, const char *fmt, ...)
{
	char what[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	return mura_error("bad JSON at byte %zu: %s", at, what);
}

static void
ws(struct mura_json *j)
{
	while (j->pos < j->len) {
		char c = j->s[j->pos];
		if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
			break;
		j->pos++;
	}
}

/* Length (1 to 4) of the valid UTF-8 sequence at p, reading at most avail
 * bytes; 0 if invalid (RFC 3629: no overlong forms, no surrogates). */
static size_t
utf8_len(const unsigned char *p, size_t avail)
{
	unsigned c = p[0];
	uint32_t cp;
	size_t n;

	if (c < 0x80)
		return 1;
	if (c < 0xc2)
		return 0;
	if (c < 0xe0)
		n = 2, cp = c & 0x1f;
	else if (c < 0xf0)
		n = 3, cp = c & 0x0f;
	else if (c < 0xf5)
		n = 4, cp = c & 0x07;
	else
		return 0;
	if (avail < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if (n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff)))
		return 0;
	if (n == 4 && (cp < 0x10000 || cp > 0x10ffff))
		return 0;
	return n;
}

int
mura_json_utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;

	for (size_t i = 0, k; i < len; i += k)
		if (!(k = utf8_len(p + i, len - i)))
			return 0;
	return 1;
}

/* Four hex digits at s[at, at + 4), all before end. */
static int
hex4(const unsigned char *s, size_t at, size_t end, uint32_t *cp)
{
	uint32_t v = 0;

	if (at + 4 > end)
		return -1;
	for (size_t i = at; i < at + 4; i++) {
		unsigned c = s[i], d;
		if (is_digit(c))
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			return -1;
		v = v << 4 | d;
	}
	*cp = v;
	return 0;
}

/* Encode a code point (not a surrogate, at most 0x10ffff) as UTF-8 into d
 * (if not NULL); returns its length. */
static size_t
put_utf8(unsigned char *d, uint32_t cp)
{
	unsigned char b[4];
	size_t n;

	if (cp < 0x80)
		b[0] = cp, n = 1;
	else if (cp < 0x800)
		b[0] = 0xc0 | cp >> 6, b[1] = 0x80 | (cp & 0x3f), n = 2;
	else if (cp < 0x10000)
		b[0] = 0xe0 | cp >> 12, b[1] = 0x80 | (cp >> 6 & 0x3f), b[2] = 0x80 | (cp & 0x3f), n = 3;
	else
		b[0] = 0xf0 | cp >> 18, b[1] = 0x80 | (cp >> 12 & 0x3f), b[2] = 0x80 | (cp >> 6 & 0x3f),
		b[3] = 0x80 | (cp & 0x3f), n = 4;
	if (d)
		memcpy(d, b, n);
	return n;
}

/*
 * The string whose opening quote is at j->pos: validated, and decoded into a
 * malloc'd *out unless out is NULL.  The decoded form is never longer than
 * the raw one (an escape of 2, 6 or 12 bytes gives 1, at most 3, or 4), so
 * the raw length bounds the allocation.
 */
static int
string_at(struct mura_json *j, char **out, size_t *olen)
{
	const unsigned char *s = (const unsigned char *)j->s;
	size_t start = j->pos, end, i, n = 0;
	unsigned char *d = NULL;
	char b[16];

	for (end = start + 1; end < j->len && s[end] != '"'; end++)
		if (s[end] == '\\')
			end++;
	if (end >= j->len)
		return syntax(start, "unterminated string");
	if (out && !(d = malloc(end - start)))
		return mura_error("out of memory for a %zu-byte string", end - start);
	for (i = start + 1; i < end;) {
		unsigned c = s[i];
		uint32_t cp, lo;

		if (c == '\\') {
			/* The scan above guarantees s[i + 1] lies before end. */
			switch (s[i + 1]) {
			case '"': cp = '"'; break;
			case '\\': cp = '\\'; break;
			case '/': cp = '/'; break;
			case 'b': cp = '\b'; break;
			case 'f': cp = '\f'; break;
			case 'n': cp = '\n'; break;
			case 'r': cp = '\r'; break;
			case 't': cp = '\t'; break;
			case 'u':
				if (hex4(s, i + 2, end, &cp) < 0) {
					syntax(i, "bad \\u escape (want 4 hex digits)");
					goto fail;
				}
				if (cp >= 0xdc00 && cp <= 0xdfff) {
					syntax(i, "unpaired surrogate \\u%04x", (unsigned)cp);
					goto fail;
				}
				if (cp >= 0xd800 && cp <= 0xdbff) {
					if (i + 7 >= end || s[i + 6] != '\\' || s[i + 7] != 'u' ||
					    hex4(s, i + 8, end, &lo) < 0 || lo < 0xdc00 || lo > 0xdfff) {
						syntax(i, "unpaired surrogate \\u%04x", (unsigned)cp);
						goto fail;
					}
					cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
					i += 6;
				}
				n += put_utf8(d ? d + n : NULL, cp);
				i += 6;
				continue;
			default:
				syntax(i, "bad escape '\\' followed by %s", show(s[i + 1], b));
				goto fail;
			}
			if (d)
				d[n] = (unsigned char)cp;
			n++;
			i += 2;
			continue;
		}
		if (c < 0x20) {
			syntax(i, "control character 0x%02x in a string (must be escaped)", c);
			goto fail;
		}
		size_t k = utf8_len(s + i, end - i);
		if (!k) {
			syntax(i, "invalid UTF-8 in a string");
			goto fail;
		}
		if (d)
			memcpy(d + n, s + i, k);
		n += k;
		i += k;
	}
	if (d) {
		d[n] = 0;
		*out = (char *)d;
	}
	if (olen)
		*olen = n;
	j->pos = end + 1;
	return 0;
fail:
	free(d);
	return -1;
}

/* The number at j->pos, per the RFC grammar; returns 1 if it is written as a
 * non-negative integer (no '-', fraction or exponent), 0 if not, -1 if it is
 * not a number.  j->pos ends after it. */
static int
number_at(struct mura_json *j)
{
	const unsigned char *s = (const unsigned char *)j->s;
	size_t p = j->pos, len = j->len;
	int plain = 1;

	if (p < len && s[p] == '-')
		p++, plain = 0;
	if (p >= len || !is_digit(s[p]))
		return syntax(p, "bad number: no digit");
	if (s[p] == '0') {
		if (++p < len && is_digit(s[p]))
			return syntax(j->pos, "bad number: leading zero");
	} else {
		while (p < len && is_digit(s[p]))
			p++;
	}
	if (p < len && s[p] == '.') {
		plain = 0;
		if (++p >= len || !is_digit(s[p]))
			return syntax(p, "bad number: no digit after '.'");
		while (p < len && is_digit(s[p]))
			p++;
	}
	if (p < len && (s[p] == 'e' || s[p] == 'E')) {
		plain = 0;
		if (++p < len && (s[p] == '+' || s[p] == '-'))
			p++;
		if (p >= len || !is_digit(s[p]))
			return syntax(p, "bad number: no digit in the exponent");
		while (p < len && is_digit(s[p]))
			p++;
	}
	j->pos = p;
	return plain;
}

void
mura_json_init(struct mura_json *j, const char *text, size_t len)
{
	memset(j, 0, sizeof *j);
	j->s = text;
	j->len = len;
}

const char *
mura_json_type_name(int type)
{
	switch (type) {
	case MURA_JSON_NULL: return "null";
	case MURA_JSON_BOOL: return "a boolean";
	case MURA_JSON_NUMBER: return "a number";
	case MURA_JSON_STRING: return "a string";
	case MURA_JSON_ARRAY: return "an array";
	case MURA_JSON_OBJECT: return "an object";
	}
	return "nothing";
}

int
mura_json_peek(struct mura_json *j)
{
	char b[16];
	unsigned char c;

	ws(j);
	if (j->pos >= j->len)
		return syntax(j->pos, "unexpected end of text, expected a value");
	c = (unsigned char)j->s[j->pos];
	switch (c) {
	case '{': return MURA_JSON_OBJECT;
	case '[': return MURA_JSON_ARRAY;
	case '"': return MURA_JSON_STRING;
	case 't': case 'f': return MURA_JSON_BOOL;
	case 'n': return MURA_JSON_NULL;
	case '-': return MURA_JSON_NUMBER;
	}
	if (is_digit(c))
		return MURA_JSON_NUMBER;
	return syntax(j->pos, "unexpected %s, expected a value", show(c, b));
}

/* The next value must be of this type; returns 0 or -1 with a message. */
static int
expect(struct mura_json *j, int type)
{
	int t = mura_json_peek(j);

	if (t < 0)
		return -1;
	if (t != type)
		return mura_error("byte %zu: expected %s, found %s", j->pos,
		                  mura_json_type_name(type), mura_json_type_name(t));
	return 0;
}

static int
begin(struct mura_json *j, int type)
{
	if (expect(j, type) < 0)
		return -1;
	if (j->depth >= MURA_JSON_MAX_DEPTH)
		return syntax(j->pos, "nested deeper than %d levels", MURA_JSON_MAX_DEPTH);
	j->pos++;
	j->depth++;
	j->fresh |= 1u << (j->depth - 1);
	return 0;
}

/* Before a member of the innermost container: 1 if one follows (its comma
 * consumed), 0 if the container closes here (the bracket consumed). */
static int
next(struct mura_json *j, char close)
{
	uint32_t bit;
	char b[16];
	char c;

	assert(j->depth > 0);
	bit = 1u << (j->depth - 1);
	ws(j);
	if (j->pos >= j->len)
		return syntax(j->pos, "unexpected end of text, expected ',' or '%c'", close);
	c = j->s[j->pos];
	if (c == close) {
		j->pos++;
		j->fresh &= ~bit;
		j->depth--;
		return 0;
	}
	if (j->fresh & bit) {
		j->fresh &= ~bit;
		return 1;
	}
	if (c != ',')
		return syntax(j->pos, "expected ',' or '%c', found %s", close, show((unsigned char)c, b));
	j->pos++;
	return 1;
}

int
mura_json_object_begin(struct mura_json *j)
{
	return begin(j, MURA_JSON_OBJECT);
}

int
mura_json_array_begin(struct mura_json *j)
{
	return begin(j, MURA_JSON_ARRAY);
}

int
mura_json_array_next(struct mura_json *j)
{
	return next(j, ']');
}

int
mura_json_object_next(struct mura_json *j, char **key, size_t *klen)
{
	char b[16];
	int r;

	if ((r = next(j, '}')) <= 0)
		return r;
	ws(j);
	if (j->pos >= j->len)
		return syntax(j->pos, "unexpected end of text, expected a key");
	if (j->s[j->pos] != '"')
		return syntax(j->pos, "expected a string key, found %s",
		              show((unsigned char)j->s[j->pos], b));
	if (string_at(j, key, klen) < 0)
		return -1;
	ws(j);
	if (j->pos >= j->len || j->s[j->pos] != ':') {
		if (key) {
			free(*key);
			*key = NULL;
		}
		return syntax(j->pos, "expected ':' after a key");
	}
	j->pos++;
	return 1;
}

int
mura_json_string(struct mura_json *j, char **out, size_t *len)
{
	if (expect(j, MURA_JSON_STRING) < 0)
		return -1;
	return string_at(j, out, len);
}

int
mura_json_u64(struct mura_json *j, uint64_t *out)
{
	size_t start;
	uint64_t v = 0;
	int r;

	if (expect(j, MURA_JSON_NUMBER) < 0)
		return -1;
	start = j->pos;
	if ((r = number_at(j)) < 0)
		return -1;
	int shown = j->pos - start > 40 ? 40 : (int)(j->pos - start);
	if (!r)
		return mura_error("byte %zu: %.*s is not a non-negative integer", start, shown, j->s + start);
	for (size_t i = start; i < j->pos; i++) {
		unsigned d = (unsigned char)j->s[i] - '0';
		if (v > (UINT64_MAX - d) / 10)
			return mura_error("byte %zu: %.*s is larger than 2^64 - 1", start, shown,
			                  j->s + start);
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

static int
literal(struct mura_json *j, const char *word)
{
	size_t n = strlen(word);

	if (j->len - j->pos < n || memcmp(j->s + j->pos, word, n))
		return syntax(j->pos, "bad literal, expected '%s'", word);
	j->pos += n;
	return 0;
}

int
mura_json_skip(struct mura_json *j)
{
	int r;

	switch (mura_json_peek(j)) {
	case MURA_JSON_NULL:
		return literal(j, "null");
	case MURA_JSON_BOOL:
		return literal(j, j->s[j->pos] == 't' ? "true" : "false");
	case MURA_JSON_NUMBER:
		return number_at(j) < 0 ? -1 : 0;
	case MURA_JSON_STRING:
		return string_at(j, NULL, NULL);
	case MURA_JSON_ARRAY:
		/* Recursion is bounded: begin() refuses depth past the limit. */
		if (begin(j, MURA_JSON_ARRAY) < 0)
			return -1;
		while ((r = mura_json_array_next(j)) > 0)
			if (mura_json_skip(j) < 0)
				return -1;
		return r;
	case MURA_JSON_OBJECT:
		if (begin(j, MURA_JSON_OBJECT) < 0)
			return -1;
		while ((r = mura_json_object_next(j, NULL, NULL)) > 0)
			if (mura_json_skip(j) < 0)
				return -1;
		return r;
	}
	return -1;
}

int
mura_json_end(struct mura_json *j)
{
	char b[16];

	assert(j->depth == 0);
	ws(j);
	if (j->pos < j->len)
		return syntax(j->pos, "%s after the end of the value", show((unsigned char)j->s[j->pos], b));
	return 0;
}

int
mura_json_write_string(FILE *f, const char *s, size_t len)
{
	if (!mura_json_utf8_valid(s, len))
		return mura_error("not valid UTF-8");
	putc('"', f);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		switch (c) {
		case '"': fputs("\\\"", f); break;
		case '\\': fputs("\\\\", f); break;
		case '\b': fputs("\\b", f); break;
		case '\f': fputs("\\f", f); break;
		case '\n': fputs("\\n", f); break;
		case '\r': fputs("\\r", f); break;
		case '\t': fputs("\\t", f); break;
		default:
			if (c < 0x20)
				fprintf(f, "\\u%04x", c);
			else
				putc(c, f);
		}
	}
	putc('"', f);
	return 0;
}
