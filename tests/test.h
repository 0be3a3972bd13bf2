/*
 * test.h - the C tests' few macros.  Each check prints one line that
 * tests/run.sh counts: "PASS: name" or "FAIL: name: detail".
 * A test program returns test_status() from main.
 */
#ifndef MURA_TEST_H
#define MURA_TEST_H

#include <math.h>
#include <stdio.h>

static int test_failures;

#define CHECK(name, cond)                                                     \
	do {                                                                      \
		if (cond)                                                             \
			printf("PASS: %s\n", (name));                                     \
		else {                                                                \
			printf("FAIL: %s: %s (%s:%d)\n", (name), #cond, __FILE__, __LINE__); \
			test_failures++;                                                  \
		}                                                                     \
		fflush(stdout);                                                       \
	} while (0)

/* |got - want| <= tol * max(1, |want|) */
#define CHECK_NEAR(name, got, want, tol)                                      \
	do {                                                                      \
		double g_ = (got), w_ = (want), t_ = (tol) * fmax(1.0, fabs(w_));     \
		if (fabs(g_ - w_) <= t_)                                              \
			printf("PASS: %s\n", (name));                                     \
		else {                                                                \
			printf("FAIL: %s: got %.9g, want %.9g (tol %.3g) (%s:%d)\n", (name), \
			       g_, w_, t_, __FILE__, __LINE__);                           \
			test_failures++;                                                  \
		}                                                                     \
		fflush(stdout);                                                       \
	} while (0)

static inline int test_status(void) { return test_failures != 0; }

#endif
