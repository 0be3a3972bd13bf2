/*
 * fuzz-scores.c - the scores table reader (lib/metrics.c) on any bytes,
 * read as mura-score writes it and as mura-kappa reads it.  A table it
 * accepts is written back and read again (the same rows, probabilities to
 * the bit), then evaluated as mura-kappa does: studies, a few bootstrap
 * resamples, threshold tuning and the report in every format.
 */
#include <string.h>

#include "error.h"
#include "fuzz.h"
#include "metrics.h"

static void
round_trip(const struct mura_scores *s)
{
	char *buf;
	size_t len;
	FILE *f = fuzz_memstream(&buf, &len);
	struct mura_scores back;

	FUZZ_ASSERT(mura_scores_write_header(f) == 0);
	for (size_t i = 0; i < s->n; i++)
		FUZZ_ASSERT(mura_scores_write_row(f, mura_scores_path(s, i), &s->v[i]) == 0);
	FUZZ_ASSERT(fclose(f) == 0);
	f = fuzz_file((const uint8_t *)buf, len);
	mura_scores_init(&back);
	FUZZ_ASSERT(mura_scores_read_file(&back, f, "written", 0) == 0);
	FUZZ_ASSERT(back.n == s->n);
	for (size_t i = 0; i < s->n; i++) {
		const struct mura_score *a = &s->v[i], *b = &back.v[i];
		FUZZ_ASSERT(a->type == b->type && a->patient == b->patient && a->study == b->study &&
		            a->image == b->image && a->label == b->label && a->prob == b->prob &&
		            !strcmp(mura_scores_path(s, i), mura_scores_path(&back, i)));
	}
	mura_scores_free(&back);
	fclose(f);
	free(buf);
}

static void
evaluate(const struct mura_scores *s)
{
	struct mura_studies st;
	struct mura_eval_opts o;
	struct mura_report rep;
	double base[MURA_TYPE_COUNT], tuned[MURA_TYPE_COUNT], kappa[MURA_TYPE_COUNT];
	struct mura_report_info info = {"fuzz", MURA_AGGREGATE_MEAN, "fuzz"};
	FILE *out = fopen("/dev/null", "w");

	FUZZ_ASSERT(out);
	for (int agg = MURA_AGGREGATE_MEAN; agg <= MURA_AGGREGATE_MAX; agg++) {
		if (mura_studies_aggregate(&st, s, agg) < 0)
			break; /* a label -1, or a study's labels differ */
		mura_eval_opts_init(&o);
		o.bootstrap = 3;
		FUZZ_ASSERT(mura_evaluate(&rep, &st, &o) == 0);
		for (int fmt = MURA_REPORT_TABLE; fmt <= MURA_REPORT_MARKDOWN; fmt++)
			FUZZ_ASSERT(mura_report_write(out, &rep, &info, fmt) == 0);
		memcpy(base, o.threshold, sizeof base);
		FUZZ_ASSERT(mura_thresholds_tune(&st, base, tuned, kappa) == 0);
		for (int t = 0; t < MURA_TYPE_COUNT; t++)
			FUZZ_ASSERT(tuned[t] >= 0 && tuned[t] <= 1);
		mura_studies_free(&st);
	}
	fclose(out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	for (int flags = 0; flags <= MURA_SCORES_LABELED; flags++) {
		FILE *f = fuzz_file(data, size);
		struct mura_scores s;

		mura_scores_init(&s);
		if (mura_scores_read_file(&s, f, "fuzz", flags) == 0) {
			round_trip(&s);
			evaluate(&s);
		} else {
			FUZZ_ASSERT(!strncmp(mura_error_get(), "fuzz: line ", 11));
		}
		mura_scores_free(&s);
		fclose(f);
	}
	return 0;
}
