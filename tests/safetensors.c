/*
 * safetensors.c - the JSON reader and the safetensors reader and writer:
 * the reference implementation's own serialisation tests byte for byte,
 * round trips, every half and bfloat16 converted, every malformed header
 * refused with its message, truncated and corrupted images never read
 * out of bounds (each image sits in a malloc'd block of its exact size, so
 * valgrind sees any overrun).
 *
 * With arguments it is the C side of tests/t-safetensors.sh:
 *   --list FILE      one line per tensor, "NAME DTYPE [d0,d1,...]" in the
 *                    header's order, then "meta KEY=VALUE" lines
 *   --copy IN OUT    read IN, write OUT: floats as F32, integers as I64,
 *                    same order and metadata
 *   --f32 IN OUT     the same with every tensor as F32
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"
#include "mura.h"
#include "safetensors.h"
#include "test.h"

static char dir[4096];

/* PASS if the last message begins with prefix and contains want. */
static void
check_msg(const char *name, int r, const char *prefix, const char *want)
{
	const char *m = mura_error_get();

	if (r == -1 && !strncmp(m, prefix, strlen(prefix)) && strstr(m, want)) {
		printf("PASS: %s\n", name);
	} else {
		printf("FAIL: %s: returned %d, message '%s', want '%s...%s'\n", name, r, m, prefix, want);
		test_failures++;
	}
	mura_error_clear();
}

static int
read_file(const char *path, unsigned char **data, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	FILE *m = open_memstream(&buf, len);
	int c;

	if (!f || !m)
		return -1;
	while ((c = getc(f)) != EOF)
		putc(c, m);
	fclose(f);
	fclose(m);
	*data = (unsigned char *)buf;
	return 0;
}

static void
write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	if (!f || fwrite(data, 1, len, f) != len || fclose(f)) {
		printf("FAIL: write %s\n", path);
		test_failures++;
	}
}

/* ---- JSON ---- */

/* Check a whole text: one value and nothing after it. */
static int
json_valid(const char *text, size_t len)
{
	struct mura_json j;

	mura_json_init(&j, text, len);
	return mura_json_skip(&j) < 0 || mura_json_end(&j) < 0 ? -1 : 0;
}

/* The text copied into a block of exactly its length (no NUL after it). */
static int
json_valid_exact(const char *text, size_t len)
{
	char *p = malloc(len ? len : 1);
	int r;

	memcpy(p, text, len);
	r = json_valid(p, len);
	free(p);
	return r;
}

static void
test_json_walk(void)
{
	static const char text[] =
		" {\"a\\\"b\" : \"x\\\\y\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\\u0000z\",\n"
		"\"n\":[0, 1,18446744073709551615],\t\"o\":{\"p\":[true,false,null,-1.5e+3,{}, []]},\r\"e\":[]} ";
	static const char want[] = "x\\y/\b\f\n\r\t\xc3\xa9\xf0\x9f\x98\x80\0z";
	struct mura_json j;
	uint64_t v[3] = {7, 7, 7};
	char *k1 = NULL, *k2 = NULL, *s = NULL;
	size_t klen = 0, slen = 0;
	int ok = 1, n = 0, r;

	mura_json_init(&j, text, sizeof text - 1);
	ok &= mura_json_peek(&j) == MURA_JSON_OBJECT;
	ok &= mura_json_object_begin(&j) == 0;
	ok &= mura_json_object_next(&j, &k1, &klen) == 1 && klen == 3 && !strcmp(k1, "a\"b");
	ok &= mura_json_string(&j, &s, &slen) == 0 && slen == sizeof want - 1 && !memcmp(s, want, slen);
	ok &= mura_json_object_next(&j, &k2, NULL) == 1 && !strcmp(k2, "n");
	ok &= mura_json_array_begin(&j) == 0;
	while ((r = mura_json_array_next(&j)) > 0 && n < 3)
		ok &= mura_json_u64(&j, &v[n++]) == 0;
	ok &= r == 0 && n == 3 && v[0] == 0 && v[1] == 1 && v[2] == UINT64_MAX;
	ok &= mura_json_object_next(&j, NULL, NULL) == 1 && mura_json_skip(&j) == 0;
	ok &= mura_json_object_next(&j, NULL, NULL) == 1 && mura_json_peek(&j) == MURA_JSON_ARRAY;
	ok &= mura_json_skip(&j) == 0;
	ok &= mura_json_object_next(&j, NULL, NULL) == 0 && mura_json_end(&j) == 0;
	if (!ok)
		printf("# %s\n", mura_error_get());
	CHECK("json: walk an object with escapes, surrogate pairs, u64, nesting", ok);
	free(k1);
	free(k2);
	free(s);
}

static void
test_json_refused(void)
{
	static const struct {
		const char *text;
		size_t len;                  /* 0: strlen */
		const char *want;
	} c[] = {
		{"", 0, "byte 0: unexpected end of text"},
		{"   ", 0, "byte 3: unexpected end of text"},
		{"{} x", 0, "byte 3: 'x' after the end of the value"},
		{"{}\0", 3, "byte 2: byte 0x00 after the end"},
		{"{\"a\":1,}", 0, "byte 7: expected a string key, found '}'"},
		{"{,}", 0, "expected a string key"},
		{"{\"a\" 1}", 0, "expected ':' after a key"},
		{"{\"a\":1", 0, "unexpected end of text, expected ',' or '}'"},
		{"{\"a\":1]", 0, "expected ',' or '}', found ']'"},
		{"{1:2}", 0, "expected a string key"},
		{"[1,]", 0, "byte 3: unexpected ']', expected a value"},
		{"[1 2]", 0, "expected ',' or ']', found '2'"},
		{"[", 0, "unexpected end of text"},
		{"\"abc", 0, "byte 0: unterminated string"},
		{"\"abc\\\"", 0, "unterminated string"},
		{"\"abc\\", 0, "unterminated string"},
		{"\"a\\qb\"", 0, "bad escape '\\' followed by 'q'"},
		{"\"\\u12\"", 0, "bad \\u escape"},
		{"\"\\u12g4\"", 0, "bad \\u escape"},
		{"\"\\ud800\"", 0, "unpaired surrogate \\ud800"},
		{"\"\\udc00\"", 0, "unpaired surrogate \\udc00"},
		{"\"\\ud800\\u0041\"", 0, "unpaired surrogate"},
		{"\"\\ud800\\\"\"", 0, "unpaired surrogate"},
		{"\"a\x01\"", 0, "control character 0x01"},
		{"\"a\nb\"", 0, "control character 0x0a"},
		{"\"\xc0\xaf\"", 0, "invalid UTF-8"},
		{"\"\xed\xa0\x80\"", 0, "invalid UTF-8"},
		{"\"\xf4\x90\x80\x80\"", 0, "invalid UTF-8"},
		{"\"\xe2\x82\"", 0, "invalid UTF-8"},
		{"\"\x80\"", 0, "invalid UTF-8"},
		{"\"\xff\"", 0, "invalid UTF-8"},
		{"01", 0, "leading zero"},
		{"-01", 0, "leading zero"},
		{"1.", 0, "no digit after '.'"},
		{"1.e3", 0, "no digit after '.'"},
		{"1e", 0, "no digit in the exponent"},
		{"1e+", 0, "no digit in the exponent"},
		{"-", 0, "bad number: no digit"},
		{"+1", 0, "unexpected '+'"},
		{".5", 0, "unexpected '.'"},
		{"tru", 0, "bad literal, expected 'true'"},
		{"nul", 0, "bad literal, expected 'null'"},
		{"True", 0, "unexpected 'T'"},
		{"\xef\xbb\xbf{}", 0, "unexpected byte 0xef"},
		{"{}{}", 0, "'{' after the end"},
	};
	char name[128];

	for (size_t i = 0; i < sizeof c / sizeof *c; i++) {
		size_t len = c[i].len ? c[i].len : strlen(c[i].text);
		snprintf(name, sizeof name, "json: refuses case %zu (%s)", i, c[i].want);
		check_msg(name, json_valid_exact(c[i].text, len), "bad JSON at byte", c[i].want);
	}
}

static void
test_json_depth(void)
{
	char text[2 * MURA_JSON_MAX_DEPTH + 4];
	int d = MURA_JSON_MAX_DEPTH;

	memset(text, '[', d);
	memset(text + d, ']', d);
	CHECK("json: nesting of MURA_JSON_MAX_DEPTH accepted", json_valid_exact(text, 2 * d) == 0);
	memset(text, '[', d + 1);
	memset(text + d + 1, ']', d + 1);
	check_msg("json: nesting beyond MURA_JSON_MAX_DEPTH refused", json_valid_exact(text, 2 * d + 2),
	          "bad JSON at byte 32", "nested deeper than 32 levels");
}

static int
u64_of(const char *text, uint64_t *v)
{
	struct mura_json j;

	mura_json_init(&j, text, strlen(text));
	return mura_json_u64(&j, v) < 0 || mura_json_end(&j) < 0 ? -1 : 0;
}

static void
test_json_u64(void)
{
	static const struct {
		const char *text, *want;
	} bad[] = {
		{"18446744073709551616", "byte 0: 18446744073709551616 is larger than 2^64 - 1"},
		{"99999999999999999999999", "is larger than 2^64 - 1"},
		{"-1", "byte 0: -1 is not a non-negative integer"},
		{"-0", "-0 is not a non-negative integer"},
		{"1.0", "1.0 is not a non-negative integer"},
		{"1e3", "1e3 is not a non-negative integer"},
		{"\"1\"", "byte 0: expected a number, found a string"},
		{"[1]", "expected a number, found an array"},
	};
	uint64_t v = 1;
	char name[128];

	CHECK("json: u64 0", u64_of("0", &v) == 0 && v == 0);
	CHECK("json: u64 2^64 - 1", u64_of(" 18446744073709551615 ", &v) == 0 && v == UINT64_MAX);
	CHECK("json: u64 2^63", u64_of("9223372036854775808", &v) == 0 && v == (uint64_t)1 << 63);
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		snprintf(name, sizeof name, "json: u64 refuses %s", bad[i].text);
		check_msg(name, u64_of(bad[i].text, &v), "byte 0: ", bad[i].want);
	}
}

static void
test_json_write(void)
{
	static const char in[] = "a\"b\\c\n\x01\x1f\x7f\xc3\xa9/\t\b\f\r";
	static const char want[] = "\"a\\\"b\\\\c\\n\\u0001\\u001f\x7f\xc3\xa9/\\t\\b\\f\\r\"";
	char all[128], *buf = NULL, *back = NULL;
	size_t len = 0, blen = 0;
	struct mura_json j;
	FILE *f;
	int r;

	f = open_memstream(&buf, &len);
	r = mura_json_write_string(f, in, sizeof in - 1);
	fclose(f);
	CHECK("json: write escapes as serde_json does", r == 0 && len == sizeof want - 1 && !memcmp(buf, want, len));
	free(buf);

	/* Every byte 0x01 to 0x7f, written then read back. */
	for (int c = 1; c < 128; c++)
		all[c - 1] = (char)c;
	f = open_memstream(&buf, &len);
	mura_json_write_string(f, all, 127);
	fclose(f);
	mura_json_init(&j, buf, len);
	r = mura_json_string(&j, &back, &blen);
	CHECK("json: every ASCII byte survives write then read", r == 0 && blen == 127 && !memcmp(back, all, 127));
	free(buf);
	free(back);

	buf = NULL;
	f = open_memstream(&buf, &len);
	r = mura_json_write_string(f, "a\xff", 2);
	fclose(f);
	check_msg("json: write refuses invalid UTF-8", r, "", "not valid UTF-8");
	CHECK("json: nothing written for invalid UTF-8", len == 0);
	free(buf);
}

/* Every proper prefix of a valid text is refused, read within its bounds. */
static void
test_json_prefixes(void)
{
	static const char text[] =
		"{\"__metadata__\":{\"k\":\"v\\u00e9\\ud83d\\ude00\"},\"w\":{\"dtype\":\"F32\","
		"\"shape\":[2,3],\"data_offsets\":[0,24]},\"x\":[true,false,null,-1.5e-3,\"\xc3\xa9\"]}";
	size_t n = sizeof text - 1, refused = 0;

	for (size_t len = 0; len < n; len++)
		refused += json_valid_exact(text, len) < 0;
	mura_error_clear();
	CHECK("json: the whole text is valid", json_valid_exact(text, n) == 0);
	CHECK("json: every proper prefix refused", refused == n);
}

/* ---- safetensors ---- */

/* A file image: size field, header, then buf_size zero bytes. */
static unsigned char *
image(const char *hdr, size_t buf_size, size_t *len)
{
	size_t h = strlen(hdr);
	unsigned char *p = calloc(1, 8 + h + buf_size);

	for (int b = 0; b < 8; b++)
		p[b] = (unsigned char)((uint64_t)h >> 8 * b);
	memcpy(p + 8, hdr, h);
	*len = 8 + h + buf_size;
	return p;
}

/* The image must be refused with want in the message, from memory (in a
 * block of its exact size) and from a file. */
static void
expect_refused(const char *name, const unsigned char *img, size_t len, const char *want)
{
	struct mura_st_file f;
	unsigned char *copy = malloc(len ? len : 1);
	char path[4200], title[300], prefix[4300];

	memcpy(copy, img, len);
	snprintf(title, sizeof title, "refused from memory: %s", name);
	check_msg(title, mura_st_open_mem(&f, copy, len, "mem"), "mem: ", want);
	snprintf(title, sizeof title, "refused, the struct left empty: %s", name);
	CHECK(title, f.n == 0 && !f.t && !f.path && !f.by_name && !f.meta_key);
	mura_st_free(&f);
	free(copy);

	snprintf(path, sizeof path, "%s/bad.safetensors", dir);
	write_file(path, img, len);
	snprintf(title, sizeof title, "refused from a file: %s", name);
	snprintf(prefix, sizeof prefix, "%s: ", path);
	check_msg(title, mura_st_open(&f, path), prefix, want);
	mura_st_free(&f);
	unlink(path);
}

static void
refuse_header(const char *name, const char *hdr, size_t buf_size, const char *want)
{
	size_t len;
	unsigned char *img = image(hdr, buf_size, &len);

	expect_refused(name, img, len, want);
	free(img);
}

static void
test_refused(void)
{
	static const struct {
		const char *name, *hdr;
		size_t buf;
		const char *want;
	} c[] = {
		{"bad JSON", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}", 4,
		 "header: bad JSON at byte 53: unexpected end of text, expected ',' or '}'"},
		{"bad JSON in an entry", "{\"a\":{\"dtype\":\"F32\" \"shape\":[1]}}", 4,
		 "tensor 'a': bad JSON at byte 20: expected ',' or '}', found '\"'"},
		{"not an object", "[1,2]", 0, "header: an array, not a JSON object"},
		{"empty header", "", 0, "header: bad JSON at byte 0: unexpected end of text"},
		{"trailing garbage", "{}  x", 0, "header: bad JSON at byte 4: 'x' after the end of the value"},
		{"byte order mark", "\xef\xbb\xbf{}", 0, "header: bad JSON at byte 0: unexpected byte 0xef"},
		{"unknown dtype", "{\"w\":{\"dtype\":\"F33\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
		 "tensor 'w': unknown dtype 'F33'"},
		{"unsupported dtype", "{\"w\":{\"dtype\":\"F8_E4M3\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1,
		 "tensor 'w': dtype F8_E4M3 is not supported"},
		{"dtype not a string", "{\"w\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
		 "tensor 'w': dtype: byte 14: expected a string, found a number"},
		{"negative dimension", "{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4,
		 "tensor 'w': shape: byte 29: -1 is not a non-negative integer"},
		{"fractional dimension", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4,
		 "tensor 'w': shape: byte 29: 1.5 is not a non-negative integer"},
		{"dimension beyond 2^64", "{\"w\":{\"dtype\":\"F32\",\"shape\":[18446744073709551616],\"data_offsets\":[0,4]}}", 4,
		 "tensor 'w': shape: byte 29: 18446744073709551616 is larger than 2^64 - 1"},
		{"dimension beyond int64", "{\"w\":{\"dtype\":\"F32\",\"shape\":[9223372036854775808],\"data_offsets\":[0,4]}}", 4,
		 "tensor 'w': shape: dimension 9223372036854775808 is too large"},
		{"too many dimensions", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4,
		 "tensor 'w': shape has more than 8 dimensions"},
		{"shape not an array", "{\"w\":{\"dtype\":\"F32\",\"shape\":3,\"data_offsets\":[0,4]}}", 4,
		 "tensor 'w': shape: byte 28: expected an array, found a number"},
		{"shape overflows", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],\"data_offsets\":[0,4]}}", 4,
		 "tensor 'w': shape [4294967296, 4294967296, 16] has too many elements"},
		{"bytes overflow", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904],\"data_offsets\":[0,4]}}", 4,
		 "tensor 'w': shape [4611686018427387904] has too many elements"},
		{"offsets beyond the buffer", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4,
		 "tensor 'w': data_offsets [0, 8] go beyond the 4-byte data buffer"},
		{"offsets at 2^64 - 1", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,18446744073709551615]}}", 8,
		 "tensor 'w': data_offsets [0, 18446744073709551615] go beyond the 8-byte data buffer"},
		{"begin after end", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 4,
		 "tensor 'w': data_offsets [4, 0]: begin is after end"},
		{"negative offset", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 4,
		 "tensor 'w': data_offsets: byte 48: -4 is not a non-negative integer"},
		{"three offsets", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 8,
		 "tensor 'w': data_offsets has more than 2 numbers"},
		{"one offset", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4]}}", 4,
		 "tensor 'w': data_offsets has 1 number, not 2"},
		{"size not dtype times shape", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]}}", 20,
		 "tensor 'w': data_offsets [0, 20] hold 20 bytes, but F32 of shape [2, 3] needs 24"},
		{"scalar of the wrong size", "{\"w\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[0,4]}}", 4,
		 "tensor 'w': data_offsets [0, 4] hold 4 bytes, but I64 of shape [] needs 8"},
		{"overlapping tensors",
		 "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
		 "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12,
		 "tensor 'b': data_offsets [4, 12] overlap those of tensor 'a' [0, 8]"},
		{"same offsets twice",
		 "{\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
		 "\"a\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
		 "data_offsets [0, 4] overlap those of tensor '"},
		{"gap between tensors",
		 "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
		 "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 12,
		 "header: bytes [4, 8) of the data buffer belong to no tensor (before tensor 'b')"},
		{"gap at the start", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8,
		 "header: bytes [0, 4) of the data buffer belong to no tensor (before tensor 'a')"},
		{"buffer not covered", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8,
		 "header: bytes [4, 8) of the data buffer belong to no tensor"},
		{"bytes but no tensor", "{}", 4, "header: bytes [0, 4) of the data buffer belong to no tensor"},
		{"a name twice",
		 "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
		 "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8,
		 "tensor 'a': appears twice in the header"},
		{"a name with NUL", "{\"a\\u0000b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
		 "header: the name 'a...' holds a NUL byte"},
		{"a name not UTF-8", "{\"a\xff\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
		 "header: bad JSON at byte 3: invalid UTF-8 in a string"},
		{"entry not an object", "{\"w\":5}", 0, "tensor 'w': entry is a number, not an object"},
		{"unexpected key",
		 "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"extra\":1}}", 4,
		 "tensor 'w': unexpected key 'extra' (want dtype, shape and data_offsets)"},
		{"missing key", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "tensor 'w': no data_offsets"},
		{"missing dtype", "{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "tensor 'w': no dtype"},
		{"repeated key",
		 "{\"w\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
		 "tensor 'w': key 'dtype' appears twice"},
		{"metadata not an object", "{\"__metadata__\":\"x\"}", 0,
		 "header: __metadata__: a string, not an object"},
		{"metadata null", "{\"__metadata__\":null}", 0, "header: __metadata__: null, not an object"},
		{"metadata value not a string", "{\"__metadata__\":{\"k\":\"v\",\"n\":1}}", 0,
		 "header: __metadata__: the value of 'n' is a number, not a string"},
		{"metadata value an object", "{\"__metadata__\":{\"k\":{}}}", 0,
		 "header: __metadata__: the value of 'k' is an object, not a string"},
		{"metadata key twice", "{\"__metadata__\":{\"k\":\"a\",\"j\":\"b\",\"k\":\"c\"}}", 0,
		 "header: __metadata__: key 'k' appears twice"},
		{"metadata twice", "{\"__metadata__\":{},\"__metadata__\":{}}", 0, "header: __metadata__ appears twice"},
		{"metadata value with NUL", "{\"__metadata__\":{\"k\":\"a\\u0000\"}}", 0,
		 "header: __metadata__: the value of 'k' holds a NUL byte"},
	};

	for (size_t i = 0; i < sizeof c / sizeof *c; i++)
		refuse_header(c[i].name, c[i].hdr, c[i].buf, c[i].want);
}

/* The size field itself: too short a file, absurd and overlong sizes. */
static void
test_refused_size(void)
{
	unsigned char img[64] = {0};

	expect_refused("empty file", img, 0, "header: the file has 0 bytes, too few for the 8-byte header size");
	expect_refused("7-byte file", img, 7, "header: the file has 7 bytes, too few");
	img[7] = 0x80;                   /* 2^63: refused before any allocation */
	expect_refused("header size 2^63", img, 64, "header: size 9223372036854775808 is more than the 100000000 allowed");
	memset(img, 0xff, 8);
	expect_refused("header size 2^64 - 1", img, 64, "header: size 18446744073709551615 is more than");
	memset(img, 0, 8);
	img[0] = 0x01;
	img[1] = 0xe1;                   /* 57601 */
	img[2] = 0xf5;
	img[3] = 0x05;                   /* 100000001 */
	expect_refused("header size above the limit", img, 64, "header: size 100000001 is more than the 100000000 allowed");
	memset(img, 0, 8);
	img[0] = 57;
	memcpy(img + 8, "{}", 2);
	expect_refused("header size beyond the file", img, 64,
	               "header: size 57 goes beyond the end of the file (56 bytes follow)");
	memset(img, 0, sizeof img);
	img[0] = 8;
	memcpy(img + 8, "{}", 2);        /* padded with NULs, not spaces */
	expect_refused("header padded with NUL", img, 16, "header: bad JSON at byte 2: byte 0x00 after the end of the value");
	memcpy(img + 10, "\t\r\n     ", 6);
	{
		struct mura_st_file f;
		CHECK("header padded with JSON whitespace accepted", mura_st_open_mem(&f, img, 16, "ws") == 0 && f.n == 0);
		mura_st_free(&f);
	}
}

/* Names and values that need escaping, in the header's order. */
static void
test_round_trip(void)
{
	static const char *const names[] = {
		"conv1.weight", "bn1.num_batches_tracked", "scalar", "empty",
		"we\"ird\\ na\nme \xc3\xa9\xf0\x9f\x98\x80", "ints", "a",
	};
	static const char *const mk[] = {"arch", "note", "empty"};
	static const char *const mv[] = {"resnet18", "quote \" backslash \\ newline \n tab \t \xc3\xa9 \x01", ""};
	float w[24], s = 3.25f, wz[1], f[24];
	int64_t nbt = 123456789012345, ints[3] = {-1, INT64_MIN, INT64_MAX}, g[3];
	float two[2] = {-0.0f, 1e-45f}, one = 7;
	struct mura_st_entry e[7] = {
		{names[0], MURA_ST_F32, 4, {2, 3, 2, 2}, w},
		{names[1], MURA_ST_I64, 0, {0}, &nbt},
		{names[2], MURA_ST_F32, 0, {0}, &s},
		{names[3], MURA_ST_F32, 2, {0, 4}, wz},
		{names[4], MURA_ST_F32, 1, {2}, two},
		{names[5], MURA_ST_I64, 1, {3}, ints},
		{names[6], MURA_ST_F32, 1, {1}, &one},
	};
	struct mura_st_file st;
	const struct mura_st_tensor *t;
	char path[4200];
	unsigned char *raw;
	size_t rawlen;
	int ok = 1;

	for (int i = 0; i < 24; i++)
		w[i] = (float)i * 0.5f - 3.0f;
	snprintf(path, sizeof path, "%s/rt.safetensors", dir);
	CHECK("write: a file with every dtype written, a scalar, an empty tensor",
	      mura_st_write(path, e, 7, mk, mv, 3) == 0);
	if (mura_st_open(&st, path) < 0) {
		printf("FAIL: read back: %s\n", mura_error_get());
		test_failures++;
		return;
	}
	CHECK("read back: 7 tensors, 3 metadata entries", st.n == 7 && st.n_meta == 3);
	for (size_t i = 0; i < st.n && i < 7; i++) {
		t = &st.t[i];
		ok &= !strcmp(t->name, names[i]) && t->dtype == e[i].dtype && t->ndim == e[i].ndim &&
		      !memcmp(t->shape, e[i].shape, sizeof(int64_t) * e[i].ndim) && mura_st_find(&st, names[i]) == t &&
		      !strcmp(t->path, path);
	}
	CHECK("read back: names (escaped), order, dtypes, shapes", ok);
	for (int i = 0; i < 3; i++)
		ok &= st.meta_key[i] && !strcmp(st.meta_key[i], mk[i]) && mura_st_meta(&st, mk[i]) &&
		      !strcmp(mura_st_meta(&st, mk[i]), mv[i]);
	CHECK("read back: metadata (escaped), in order", ok && !mura_st_meta(&st, "nope"));
	CHECK("find: an absent name gives NULL", !mura_st_find(&st, "nope") && !mura_st_find(&st, ""));

	t = &st.t[0];
	CHECK("F32 [2, 3, 2, 2]: 24 values, exact",
	      t->nelem == 24 && t->nbytes == 96 && mura_st_to_f32(t, f, 24) == 0 && !memcmp(f, w, sizeof w));
	t = &st.t[1];
	CHECK("I64 scalar: one value, exact as i64", t->nelem == 1 && mura_st_to_i64(t, g, 1) == 0 && g[0] == nbt);
	CHECK("I64 scalar as f32", mura_st_to_f32(t, f, 1) == 0 && f[0] == (float)nbt);
	t = &st.t[2];
	CHECK("F32 scalar", t->ndim == 0 && t->nelem == 1 && mura_st_to_f32(t, f, 1) == 0 && f[0] == 3.25f);
	t = &st.t[3];
	CHECK("F32 [0, 4]: no values", t->nelem == 0 && t->nbytes == 0 && mura_st_to_f32(t, f, 0) == 0);
	t = &st.t[4];
	CHECK("F32 -0 and the smallest subnormal, bit for bit",
	      mura_st_to_f32(t, f, 2) == 0 && !memcmp(f, two, sizeof two));
	t = &st.t[5];
	CHECK("I64 -1, INT64_MIN, INT64_MAX", mura_st_to_i64(t, g, 3) == 0 && !memcmp(g, ints, sizeof ints));
	check_msg("to_f32: a wrong count named", mura_st_to_f32(&st.t[0], f, 23), path,
	          ": tensor 'conv1.weight': holds 24 values, not 23");
	check_msg("to_i64: a float dtype refused", mura_st_to_i64(&st.t[0], g, 24), path,
	          ": tensor 'conv1.weight': F32 is not an integer dtype");
	mura_st_free(&st);

	if (read_file(path, &raw, &rawlen) == 0) {
		uint64_t h = 0;
		for (int b = 0; b < 8; b++)
			h |= (uint64_t)raw[b] << 8 * b;
		CHECK("write: header padded with spaces to a multiple of 8",
		      h % 8 == 0 && raw[8] == '{' && (raw[8 + h - 1] == ' ' || raw[8 + h - 1] == '}'));
		CHECK("write: __metadata__ first", !memcmp(raw + 8, "{\"__metadata__\":{\"arch\":\"resnet18\"", 34));
		free(raw);
	}
	snprintf(path, sizeof path, "%s/rt.safetensors.tmp.%ld", dir, (long)getpid());
	CHECK("write: no temporary file left", access(path, F_OK) != 0);
	snprintf(path, sizeof path, "%s/rt.safetensors", dir);
	unlink(path);
}

/* The reference implementation's serialisation tests (tensor.rs,
 * test_serialization, test_serialization_forced_alignement, test_empty). */
static void
test_golden(void)
{
	static const unsigned char attn0[] = {
		64, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 46, 48, 34, 58, 123, 34, 100,
		116, 121, 112, 101, 34, 58, 34, 70, 51, 50, 34, 44, 34, 115, 104, 97, 112, 101, 34,
		58, 91, 49, 44, 50, 44, 51, 93, 44, 34, 100, 97, 116, 97, 95, 111, 102, 102, 115,
		101, 116, 115, 34, 58, 91, 48, 44, 50, 52, 93, 125, 125, 0, 0, 0, 0, 0, 0, 128, 63,
		0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0, 160, 64,
	};
	static const unsigned char aligned[] = {
		72, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 48, 34, 58, 123, 34, 100, 116,
		121, 112, 101, 34, 58, 34, 70, 51, 50, 34, 44, 34, 115, 104, 97, 112, 101, 34, 58,
		91, 49, 44, 49, 44, 50, 44, 51, 93, 44, 34, 100, 97, 116, 97, 95, 111, 102, 102,
		115, 101, 116, 115, 34, 58, 91, 48, 44, 50, 52, 93, 125, 125, 32, 32, 32, 32, 32,
		32, 32, 0, 0, 0, 0, 0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0,
		160, 64,
	};
	static const unsigned char empty[] = {8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32};
	static const unsigned char framework[] = {
		40, 0, 0, 0, 0, 0, 0, 0, 123, 34, 95, 95, 109, 101, 116, 97, 100, 97, 116, 97, 95,
		95, 34, 58, 123, 34, 102, 114, 97, 109, 101, 119, 111, 114, 107, 34, 58, 34, 112,
		116, 34, 125, 125, 32, 32, 32, 32, 32,
	};
	static const float v[6] = {0, 1, 2, 3, 4, 5};
	static const char *const fk[] = {"framework"}, *const fv[] = {"pt"};
	struct mura_st_entry a = {"attn.0", MURA_ST_F32, 3, {1, 2, 3}, v};
	struct mura_st_entry b = {"attn0", MURA_ST_F32, 4, {1, 1, 2, 3}, v};
	static const struct {
		const char *name;
		const unsigned char *want;
		size_t len;
	} g[] = {
		{"golden: test_serialization", attn0, sizeof attn0},
		{"golden: test_serialization_forced_alignement", aligned, sizeof aligned},
		{"golden: test_empty without metadata", empty, sizeof empty},
		{"golden: test_empty with metadata", framework, sizeof framework},
	};
	char path[4200];

	snprintf(path, sizeof path, "%s/golden.safetensors", dir);
	for (int i = 0; i < 4; i++) {
		unsigned char *raw = NULL;
		size_t len = 0;
		struct mura_st_file f;
		float back[6];
		int r;

		r = i == 0 ? mura_st_write(path, &a, 1, NULL, NULL, 0)
		  : i == 1 ? mura_st_write(path, &b, 1, NULL, NULL, 0)
		  : i == 2 ? mura_st_write(path, NULL, 0, NULL, NULL, 0)
		           : mura_st_write(path, NULL, 0, fk, fv, 1);
		CHECK(g[i].name, r == 0 && read_file(path, &raw, &len) == 0 && len == g[i].len &&
		                 !memcmp(raw, g[i].want, len));
		free(raw);
		raw = malloc(g[i].len);
		memcpy(raw, g[i].want, g[i].len);
		r = mura_st_open_mem(&f, raw, g[i].len, "golden");
		if (i < 2)
			r |= f.n != 1 || mura_st_to_f32(&f.t[0], back, 6) || memcmp(back, v, sizeof v);
		else
			r |= f.n != 0 || (i == 3 && strcmp(mura_st_meta(&f, "framework"), "pt"));
		CHECK("golden: the reference's bytes read back", r == 0);
		mura_st_free(&f);
		free(raw);
	}
	unlink(path);
}

/* A one-tensor image of the given dtype holding data. */
static int
open_one(struct mura_st_file *f, unsigned char **img, const char *dtype, size_t n, const void *data, size_t nb)
{
	char hdr[200];
	size_t len;

	snprintf(hdr, sizeof hdr, "{\"t\":{\"dtype\":\"%s\",\"shape\":[%zu],\"data_offsets\":[0,%zu]}}",
	         dtype, n, nb);
	*img = image(hdr, nb, &len);
	memcpy(*img + len - nb, data, nb);
	return mura_st_open_mem(f, *img, len, "conv");
}

static uint32_t
bits(float f)
{
	uint32_t u;

	memcpy(&u, &f, 4);
	return u;
}

/* Every half and bfloat16, against the definition of each format. */
static void
test_convert(void)
{
	static unsigned char h[65536 * 2];
	static float got[65536];
	struct mura_st_file f;
	unsigned char *img;
	size_t bad = 0;

	for (unsigned i = 0; i < 65536; i++) {
		h[2 * i] = (unsigned char)i;
		h[2 * i + 1] = (unsigned char)(i >> 8);
	}
	if (open_one(&f, &img, "F16", 65536, h, sizeof h) == 0 && mura_st_to_f32(&f.t[0], got, 65536) == 0) {
		for (unsigned i = 0; i < 65536; i++) {
			unsigned s = i >> 15, e = i >> 10 & 31, m = i & 1023;
			double want = e == 0 ? ldexp(m, -24) : e < 31 ? ldexp(1024 + m, (int)e - 25) : INFINITY;
			uint32_t w = bits((float)(s ? -want : want));
			if (e == 31 && m)        /* NaN: sign and payload kept, quiet */
				w = (uint32_t)s << 31 | 0x7fc00000 | m << 13;
			bad += bits(got[i]) != w;
		}
		CHECK("F16: all 65536 values (subnormals, -0, inf, NaN) bit for bit", bad == 0);
	} else {
		printf("FAIL: F16: %s\n", mura_error_get());
		test_failures++;
	}
	mura_st_free(&f);
	free(img);

	bad = 0;
	if (open_one(&f, &img, "BF16", 65536, h, sizeof h) == 0 && mura_st_to_f32(&f.t[0], got, 65536) == 0) {
		for (unsigned i = 0; i < 65536; i++) {
			unsigned s = i >> 15, e = i >> 7 & 255, m = i & 127;
			double want = e == 0 ? ldexp(m, -133) : e < 255 ? ldexp(128 + m, (int)e - 134) : INFINITY;
			float w = (float)(s ? -want : want);
			if (e == 255 && m ? !isnan(got[i]) || !!signbit(got[i]) != !!s : bits(got[i]) != bits(w))
				bad++;
		}
		CHECK("BF16: all 65536 values exact", bad == 0);
	} else {
		printf("FAIL: BF16: %s\n", mura_error_get());
		test_failures++;
	}
	mura_st_free(&f);
	free(img);

	/* The other dtypes: little-endian bytes in, PyTorch's .float() out. */
	{
		static const unsigned char f64[] = {0, 0, 0, 0, 0, 0, 0xf0, 0x3f, /* 1.0 */
		                                    0x9a, 0x99, 0x99, 0x99, 0x99, 0x99, 0xb9, 0xbf}; /* -0.1 */
		static const unsigned char i32[] = {0xff, 0xff, 0xff, 0xff, 0x01, 0x00, 0x00, 0x01};
		static const unsigned char i16[] = {0x00, 0x80, 0x05, 0x00};
		static const unsigned char i8[] = {0x80, 0x7f};
		static const unsigned char u64[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
		static const unsigned char u32[] = {0xff, 0xff, 0xff, 0xff};
		static const unsigned char u16[] = {0xff, 0xff};
		static const unsigned char u8[] = {0xff, 0x00};
		static const unsigned char bo[] = {0x00, 0x01, 0x02};
		static const unsigned char i64[] = {0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x20, 0x00}; /* 2^53 + 1 */
		static const struct {
			const char *dtype;
			const unsigned char *data;
			size_t n, nb;
			float want[3];
		} c[] = {
			{"F64", f64, 2, 16, {1.0f, -0.1f}},
			{"I32", i32, 2, 8, {-1.0f, 16777217.0f}},
			{"I16", i16, 2, 4, {-32768.0f, 5.0f}},
			{"I8", i8, 2, 2, {-128.0f, 127.0f}},
			{"U64", u64, 1, 8, {18446744073709551615.0f}},
			{"U32", u32, 1, 4, {4294967295.0f}},
			{"U16", u16, 1, 2, {65535.0f}},
			{"U8", u8, 2, 2, {255.0f, 0.0f}},
			{"BOOL", bo, 3, 3, {0.0f, 1.0f, 1.0f}},
			{"I64", i64, 1, 8, {9007199254740992.0f}},
		};
		char name[100];
		float out[3];

		for (size_t i = 0; i < sizeof c / sizeof *c; i++) {
			int r = open_one(&f, &img, c[i].dtype, c[i].n, c[i].data, c[i].nb);
			snprintf(name, sizeof name, "%s to f32", c[i].dtype);
			CHECK(name, r == 0 && mura_st_to_f32(&f.t[0], out, c[i].n) == 0 &&
			            !memcmp(out, c[i].want, c[i].n * sizeof(float)));
			mura_st_free(&f);
			free(img);
		}
	}
	{
		static const unsigned char i8[] = {0x80, 0x7f}, u32[] = {0xff, 0xff, 0xff, 0xff};
		static const unsigned char u64[] = {0, 0, 0, 0, 0, 0, 0, 0x80};
		int64_t g[2];

		CHECK("I8 to i64", open_one(&f, &img, "I8", 2, i8, 2) == 0 && mura_st_to_i64(&f.t[0], g, 2) == 0 &&
		                   g[0] == -128 && g[1] == 127);
		mura_st_free(&f);
		free(img);
		CHECK("U32 to i64", open_one(&f, &img, "U32", 1, u32, 4) == 0 && mura_st_to_i64(&f.t[0], g, 1) == 0 &&
		                    g[0] == 4294967295);
		mura_st_free(&f);
		free(img);
		open_one(&f, &img, "U64", 1, u64, 8);
		check_msg("U64 above INT64_MAX refused as i64", mura_st_to_i64(&f.t[0], g, 1), "conv: tensor 't': ",
		          "value 9223372036854775808 does not fit in int64");
		mura_st_free(&f);
		free(img);
	}
}

/* Every truncation of a valid image refused; single-byte corruptions of its
 * header either refused or read, never out of bounds. */
static void
test_truncated(void)
{
	static const char hdr[] =
		"{\"__metadata__\":{\"k\":\"v\"},\"a\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[0,6]},"
		"\"b\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[6,14]}}";
	static const char subst[] = {'"', '{', '}', '[', ']', '\\', ',', ':', '9', ' ', 0, (char)0x80};
	struct mura_st_file f;
	size_t len, refused = 0, opened = 0, tries = 0;
	unsigned char *img = image(hdr, 14, &len), *p;

	CHECK("truncation: the whole image is valid", mura_st_open_mem(&f, img, len, "t") == 0 && f.n == 2);
	mura_st_free(&f);
	for (size_t l = 0; l < len; l++) {
		p = malloc(l ? l : 1);
		memcpy(p, img, l);
		refused += mura_st_open_mem(&f, p, l, "t") < 0;
		mura_st_free(&f);
		free(p);
	}
	CHECK("truncation: every shorter image refused", refused == len);
	for (size_t i = 8; i < 8 + sizeof hdr - 1; i++)
		for (size_t k = 0; k < sizeof subst; k++) {
			p = malloc(len);
			memcpy(p, img, len);
			p[i] = (unsigned char)subst[k];
			opened += mura_st_open_mem(&f, p, len, "t") == 0;
			tries++;
			mura_st_free(&f);
			free(p);
		}
	printf("# corruption: %zu of %zu one-byte changes still read\n", opened, tries);
	CHECK("corruption: most one-byte changes refused", opened < tries / 4);
	free(img);
	mura_error_clear();
}

static void
test_write_refused(void)
{
	float v[2] = {1, 2};
	int64_t iv = 1;
	struct mura_st_entry dup[2] = {{"a", MURA_ST_F32, 1, {2}, v}, {"a", MURA_ST_F32, 1, {2}, v}};
	struct mura_st_entry f16 = {"h", MURA_ST_F16, 1, {1}, v};
	struct mura_st_entry meta = {"__metadata__", MURA_ST_F32, 1, {1}, v};
	struct mura_st_entry utf = {"a\xff", MURA_ST_F32, 1, {1}, v};
	struct mura_st_entry neg = {"n", MURA_ST_I64, 2, {1, -1}, &iv};
	struct mura_st_entry dims = {"d", MURA_ST_F32, 9, {1}, v};
	struct mura_st_entry ok = {"ok", MURA_ST_F32, 1, {2}, v};
	static const char *const k2[] = {"k", "k"}, *const v2[] = {"a", "b"};
	static const char *const k1[] = {"k"}, *const vbad[] = {"\xc3"};
	char path[4200], prefix[4300];

	snprintf(path, sizeof path, "%s/w.safetensors", dir);
	snprintf(prefix, sizeof prefix, "%s: ", path);
	check_msg("write refuses a name given twice", mura_st_write(path, dup, 2, NULL, NULL, 0), prefix,
	          "tensor 'a': given twice");
	check_msg("write refuses F16", mura_st_write(path, &f16, 1, NULL, NULL, 0), prefix,
	          "tensor 'h': cannot write dtype F16 (only F32 and I64)");
	check_msg("write refuses the name __metadata__", mura_st_write(path, &meta, 1, NULL, NULL, 0), prefix,
	          "tensor '__metadata__': the name __metadata__ is reserved");
	check_msg("write refuses a name not UTF-8", mura_st_write(path, &utf, 1, NULL, NULL, 0), prefix,
	          "the name is not valid UTF-8");
	check_msg("write refuses a negative dimension", mura_st_write(path, &neg, 1, NULL, NULL, 0), prefix,
	          "tensor 'n': dimension 1 is negative (-1)");
	check_msg("write refuses 9 dimensions", mura_st_write(path, &dims, 1, NULL, NULL, 0), prefix,
	          "tensor 'd': 9 dimensions, not 0 to 8");
	check_msg("write refuses a metadata key twice", mura_st_write(path, &ok, 1, k2, v2, 2), prefix,
	          "header: metadata key 'k' given twice");
	check_msg("write refuses metadata not UTF-8", mura_st_write(path, &ok, 1, k1, vbad, 1), prefix,
	          "header: metadata 'k': not valid UTF-8");
	CHECK("write: nothing left after refusals", access(path, F_OK) != 0);
	snprintf(path, sizeof path, "%s/no/such/dir/w.safetensors", dir);
	check_msg("write reports an unwritable path", mura_st_write(path, &ok, 1, NULL, NULL, 0), path,
	          "No such file or directory");
	check_msg("open reports a missing file", mura_st_open(&(struct mura_st_file){0}, path), path,
	          "No such file or directory");
	check_msg("open refuses a folder", mura_st_open(&(struct mura_st_file){0}, dir), dir, "not a regular file");
}

/* ---- the C side of tests/t-safetensors.sh ---- */

static int
list(const char *path)
{
	struct mura_st_file f;

	if (mura_st_open(&f, path) < 0) {
		fprintf(stderr, "safetensors: %s\n", mura_error_get());
		return 1;
	}
	for (size_t i = 0; i < f.n; i++) {
		const struct mura_st_tensor *t = &f.t[i];
		printf("%s %s [", t->name, mura_st_dtype_name(t->dtype));
		for (int d = 0; d < t->ndim; d++)
			printf("%s%lld", d ? "," : "", (long long)t->shape[d]);
		printf("]\n");
	}
	for (size_t i = 0; i < f.n_meta; i++)
		printf("meta %s=%s\n", f.meta_key[i], f.meta_val[i]);
	mura_st_free(&f);
	return 0;
}

static int
copy(const char *in, const char *out, int all_f32)
{
	struct mura_st_file f;
	struct mura_st_entry *e;
	void **data;
	int r = 1;

	if (mura_st_open(&f, in) < 0) {
		fprintf(stderr, "safetensors: %s\n", mura_error_get());
		return 1;
	}
	e = calloc(f.n + 1, sizeof *e);
	data = calloc(f.n + 1, sizeof *data);
	for (size_t i = 0; i < f.n; i++) {
		const struct mura_st_tensor *t = &f.t[i];
		int integral = !all_f32 && t->dtype != MURA_ST_F32 && t->dtype != MURA_ST_F16 &&
		               t->dtype != MURA_ST_BF16 && t->dtype != MURA_ST_F64;
		data[i] = malloc(t->nelem ? t->nelem * 8 : 1);
		if (integral ? mura_st_to_i64(t, data[i], t->nelem) : mura_st_to_f32(t, data[i], t->nelem)) {
			fprintf(stderr, "safetensors: %s\n", mura_error_get());
			goto done;
		}
		e[i] = (struct mura_st_entry){t->name, integral ? MURA_ST_I64 : MURA_ST_F32, t->ndim, {0}, data[i]};
		memcpy(e[i].shape, t->shape, sizeof t->shape);
	}
	if (mura_st_write(out, e, f.n, (const char *const *)f.meta_key, (const char *const *)f.meta_val, f.n_meta) < 0)
		fprintf(stderr, "safetensors: %s\n", mura_error_get());
	else
		r = 0;
done:
	for (size_t i = 0; i < f.n; i++)
		free(data[i]);
	free(data);
	free(e);
	mura_st_free(&f);
	return r;
}

int
main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "--list"))
		return list(argv[2]);
	if (argc == 4 && !strcmp(argv[1], "--copy"))
		return copy(argv[2], argv[3], 0);
	if (argc == 4 && !strcmp(argv[1], "--f32"))
		return copy(argv[2], argv[3], 1);
	if (argc != 1) {
		fprintf(stderr, "usage: safetensors [--list FILE | --copy IN OUT | --f32 IN OUT]\n");
		return 2;
	}
	snprintf(dir, sizeof dir, "%s/mura-st.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(dir)) {
		printf("FAIL: mkdtemp %s\n", dir);
		return 1;
	}
	test_json_walk();
	test_json_refused();
	test_json_depth();
	test_json_u64();
	test_json_write();
	test_json_prefixes();
	test_golden();
	test_round_trip();
	test_convert();
	test_refused_size();
	test_refused();
	test_truncated();
	test_write_refused();
	rmdir(dir);
	return test_status();
}
