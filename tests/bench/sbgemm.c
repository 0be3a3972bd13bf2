/*
 * sbgemm.c - the measure behind lib/nn/bf16.c's choice (tests/bench/sbgemm.sh
 * builds and runs it): C = A B with bf16 operands and fp32 sums by our
 * kernel (mura_sbgemm, fp32 operands rounded as it packs them), by oneDNN's
 * matmul primitive (the C API of libdnnl 2.6, plain row-major bf16 A and B,
 * fp32 C), that one also with the fp32 -> bf16 conversion of A and B it
 * needs first (our layers hold fp32), and mura_sgemm (OpenBLAS fp32) for
 * scale, on the engine's threads (oneDNN's OpenMP: OMP_NUM_THREADS).
 *
 *   sbgemm [M N K ...]      shapes (default: 2048^3 and three of resnet50's
 *                           convolutions at 320 px, batch 8, as im2col GEMMs)
 * Prints per shape the GFLOP/s of each, the best of 5 runs after a warm-up.
 */
#define _POSIX_C_SOURCE 200809L
#include <dnnl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nn/ops.h"

static double
now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

static void
to_bf16(const float *x, uint16_t *y, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		float r = mura_bf16_round(x[i]);
		uint32_t u;
		memcpy(&u, &r, sizeof u);
		y[i] = (uint16_t)(u >> 16);
	}
}

#define OK(call) do { if ((call) != dnnl_success) { fprintf(stderr, "sbgemm: %s failed\n", #call); exit(1); } } while (0)

int
main(int argc, char **argv)
{
	static const int def[][3] = {{2048, 2048, 2048}, {256, 3200, 2304}, {64, 51200, 576}, {1024, 3200, 256}};
	int ns = argc > 1 ? (argc - 1) / 3 : 4;
	struct mura_threads *p = mura_threads_create(0);
	dnnl_engine_t eng;
	dnnl_stream_t st;

	if (!mura_bf16_supported()) {
		printf("sbgemm: this CPU has no AVX512-BF16: nothing to measure\n");
		return 0;
	}
	OK(dnnl_engine_create(&eng, dnnl_cpu, 0));
	OK(dnnl_stream_create(&st, eng, dnnl_stream_default_flags));
	printf("%-18s %10s %10s %12s %10s   (GFLOP/s, %d threads)\n", "M x N x K", "ours bf16", "oneDNN",
	       "oneDNN+conv", "sgemm", mura_threads_size(p));
	for (int s = 0; s < ns; s++) {
		int m = argc > 1 ? atoi(argv[1 + 3 * s]) : def[s][0];
		int n = argc > 1 ? atoi(argv[2 + 3 * s]) : def[s][1];
		int k = argc > 1 ? atoi(argv[3 + 3 * s]) : def[s][2];
		float *a = malloc((size_t)m * k * 4), *b = malloc((size_t)k * n * 4), *c = malloc((size_t)m * n * 4);
		uint16_t *a16 = malloc((size_t)m * k * 2), *b16 = malloc((size_t)k * n * 2);
		for (size_t i = 0; i < (size_t)m * k; i++)
			a[i] = (float)(i % 17) / 17 - 0.5f;
		for (size_t i = 0; i < (size_t)k * n; i++)
			b[i] = (float)(i % 13) / 13 - 0.5f;
		dnnl_memory_desc_t amd, bmd, cmd;
		dnnl_dims_t ad = {m, k}, bd = {k, n}, cd = {m, n};
		OK(dnnl_memory_desc_init_by_tag(&amd, 2, ad, dnnl_bf16, dnnl_ab));
		OK(dnnl_memory_desc_init_by_tag(&bmd, 2, bd, dnnl_bf16, dnnl_ab));
		OK(dnnl_memory_desc_init_by_tag(&cmd, 2, cd, dnnl_f32, dnnl_ab));
		dnnl_matmul_desc_t md;
		dnnl_primitive_desc_t pd;
		dnnl_primitive_t prim;
		dnnl_memory_t am, bm, cm;
		OK(dnnl_matmul_desc_init(&md, &amd, &bmd, NULL, &cmd));
		OK(dnnl_primitive_desc_create(&pd, &md, NULL, eng, NULL));
		OK(dnnl_primitive_create(&prim, pd));
		OK(dnnl_memory_create(&am, &amd, eng, a16));
		OK(dnnl_memory_create(&bm, &bmd, eng, b16));
		OK(dnnl_memory_create(&cm, &cmd, eng, c));
		dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}};
		double best[4] = {0}, flop = 2.0 * m * n * (double)k;
		to_bf16(a, a16, (size_t)m * k);
		to_bf16(b, b16, (size_t)k * n);
		for (int it = 0; it < 6; it++) {
			double t[5];
			t[0] = now();
			mura_sbgemm(p, 0, 0, m, n, k, 1.0f, a, k, b, n, 0.0f, c, n);
			t[1] = now();
			OK(dnnl_primitive_execute(prim, st, 3, args));
			OK(dnnl_stream_wait(st));
			t[2] = now();
			to_bf16(a, a16, (size_t)m * k);  /* one thread: as a layer would, before the call */
			to_bf16(b, b16, (size_t)k * n);
			OK(dnnl_primitive_execute(prim, st, 3, args));
			OK(dnnl_stream_wait(st));
			t[3] = now();
			mura_sgemm(p, 0, 0, m, n, k, 1.0f, a, k, b, n, 0.0f, c, n);
			t[4] = now();
			for (int q = 0; it && q < 4; q++)
				if (flop / (t[q + 1] - t[q]) * 1e-9 > best[q])
					best[q] = flop / (t[q + 1] - t[q]) * 1e-9;
		}
		char shape[64];
		snprintf(shape, sizeof shape, "%dx%dx%d", m, n, k);
		printf("%-18s %10.1f %10.1f %12.1f %10.1f\n", shape, best[0], best[1], best[2], best[3]);
		dnnl_primitive_destroy(prim);
		dnnl_primitive_desc_destroy(pd);
		dnnl_memory_destroy(am), dnnl_memory_destroy(bm), dnnl_memory_destroy(cm);
		free(a), free(b), free(c), free(a16), free(b16);
	}
	dnnl_stream_destroy(st);
	dnnl_engine_destroy(eng);
	mura_threads_free(p);
	return 0;
}
