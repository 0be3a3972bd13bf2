/*
 * blas.c - tests of the engine's choice of OpenBLAS kernels (lib/nn/thread.c,
 * mura_blas_core): with OPENBLAS_CORETYPE unset, OpenBLAS must run kernels
 * no older than the CPU's vector units (Debian's 0.3.21 fell back to SSE3
 * "Prescott" on Emerald Rapids, 3x slower); a user's OPENBLAS_CORETYPE is
 * kept; and starting the program again for it loses neither the arguments
 * nor standard input.  Each case runs this program again as a child
 * ("child" as its first argument), which prints what it sees.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nn/thread.h"
#include "test.h"

/* Kernel names of OpenBLAS 0.3.21 older than AVX2 + FMA, and those with AVX-512. */
static const char *const old[] = {"Unknown", "Katmai", "Coppermine", "Northwood", "Banias",
                                  "Athlon", "Nano", "Prescott", "Core2", "Penryn", "Dunnington", "Nehalem",
                                  "Atom", "Sandybridge", "Opteron", "Opteron(SSE3)",
                                  "Barcelona", "Bobcat", "Bulldozer", "Piledriver",
                                  "Steamroller", NULL};
static const char *const avx512[] = {"SkylakeX", "Cooperlake", "SapphireRapids", NULL};

static int
in(const char *name, const char *const *list)
{
	for (; *list; list++)
		if (!strcmp(name, *list))
			return 1;
	return 0;
}

static int
child(int argc, char **argv)
{
	char line[256] = "";

	if (!fgets(line, sizeof line, stdin))
		strcpy(line, "(none)\n");
	printf("core %s\nargc %d\nargv2 %s\nstdin %s", mura_blas_core(), argc,
	       argc > 2 ? argv[2] : "", line);
	return 0;
}

/* Run `printf 'x y\n' | ENV self child 'a b'`; its output in out. */
static int
run(const char *self, const char *env, char *out, size_t size)
{
	char cmd[4096];
	FILE *f;
	size_t n;

	snprintf(cmd, sizeof cmd, "printf 'x y\\n' | env %s '%s' child 'a b'", env, self);
	if (!(f = popen(cmd, "r")))
		return -1;
	n = fread(out, 1, size - 1, f);
	out[n] = 0;
	return pclose(f);
}

static void
field(const char *out, const char *key, char *val, size_t size)
{
	const char *p = strstr(out, key);

	*val = 0;
	if (p && (p == out || p[-1] == '\n')) {
		p += strlen(key) + 1;
		size_t n = strcspn(p, "\n");
		snprintf(val, size, "%.*s", (int)(n < size ? n : size - 1), p);
	}
}

int
main(int argc, char **argv)
{
	char self[4096], out[1024], core[64], v[64];
	ssize_t n;

	if (argc > 1 && !strcmp(argv[1], "child"))
		return child(argc, argv);
	if ((n = readlink("/proc/self/exe", self, sizeof self - 1)) < 0) {
		CHECK("blas: /proc/self/exe readable", 0);
		return test_status();
	}
	self[n] = 0;

	__builtin_cpu_init();
	int cpu512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
	             __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
	int cpu2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");

	int st = run(self, "-u OPENBLAS_CORETYPE", out, sizeof out);
	field(out, "core", core, sizeof core);
	printf("# OPENBLAS_CORETYPE unset: OpenBLAS runs its %s kernels (CPU: %s)\n", core,
	       cpu512 ? "AVX-512" : cpu2 ? "AVX2 + FMA" : "older than AVX2");
	CHECK("blas: the child ran", st == 0 && *core);
	if (cpu512)
		CHECK("blas: OPENBLAS_CORETYPE unset, an AVX-512 CPU: AVX-512 kernels", in(core, avx512));
	else if (cpu2)
		CHECK("blas: OPENBLAS_CORETYPE unset, an AVX2 CPU: kernels no older", !in(core, old));
	else
		printf("SKIPPED: blas: this CPU has neither AVX2 nor AVX-512: any kernels will do\n");
	field(out, "argc", v, sizeof v);
	CHECK("blas: the arguments survive (count)", !strcmp(v, "3"));
	field(out, "argv2", v, sizeof v);
	CHECK("blas: the arguments survive (one with a space)", !strcmp(v, "a b"));
	field(out, "stdin", v, sizeof v);
	CHECK("blas: standard input survives, unread", !strcmp(v, "x y"));

	st = run(self, "OPENBLAS_CORETYPE=Prescott", out, sizeof out);
	field(out, "core", core, sizeof core);
	CHECK("blas: a user's OPENBLAS_CORETYPE=Prescott is kept", st == 0 && !strcmp(core, "Prescott"));
	if (cpu2) {
		st = run(self, "OPENBLAS_CORETYPE=Haswell", out, sizeof out);
		field(out, "core", core, sizeof core);
		CHECK("blas: a user's OPENBLAS_CORETYPE=Haswell is kept", st == 0 && !strcmp(core, "Haswell"));
	}
	return test_status();
}
