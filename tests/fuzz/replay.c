/*
 * replay.c - a main() for the fuzz harnesses without libFuzzer: each FILE
 * given (a folder: each file in it, in name order) goes once through
 * LLVMFuzzerTestOneInput, from a buffer of exactly its size, so that a
 * sanitizer sees any read past the end.  A crash, an abort or a sanitizer
 * report ends the run; otherwise it says how many inputs it ran and exits 0.
 */
#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

static int
run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	long n;

	if (!f || fseek(f, 0, SEEK_END) < 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) < 0) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	buf = malloc(n ? (size_t)n : 1);
	if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
		fprintf(stderr, "replay: %s: cannot read\n", path);
		return -1;
	}
	fclose(f);
	LLVMFuzzerTestOneInput(buf, (size_t)n);
	free(buf);
	return 0;
}

int
main(int argc, char **argv)
{
	unsigned long runs = 0;

	for (int i = 1; i < argc; i++) {
		struct dirent **e;
		struct stat st;
		int n;

		if (stat(argv[i], &st) < 0) {
			fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
			return 1;
		}
		if (!S_ISDIR(st.st_mode)) {
			if (run_file(argv[i]) < 0)
				return 1;
			runs++;
			continue;
		}
		if ((n = scandir(argv[i], &e, NULL, alphasort)) < 0) {
			fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
			return 1;
		}
		for (int k = 0; k < n; k++) {
			char path[4096];
			if (e[k]->d_name[0] != '.') {
				snprintf(path, sizeof path, "%s/%s", argv[i], e[k]->d_name);
				if (run_file(path) < 0)
					return 1;
				runs++;
			}
			free(e[k]);
		}
		free(e);
	}
	fprintf(stderr, "replay: %lu inputs\n", runs);
	return 0;
}
