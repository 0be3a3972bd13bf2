/* ckpt.c - lib/ckpt's train_state and train_settings: texts that mura-train
 * wrote before lib/ckpt existed read back and written again byte for byte
 * (the state then with the key they lack, epochs=0), structs through
 * format, parse and format, values refused by key, optional keys, and the
 * settings compared key by key, each difference as its option says it. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "ckpt.h"
#include "error.h"
#include "test.h"

/* Texts of checkpoints that mura-train wrote with train.c's snprintf
 * formats before this module: a state mid-epoch with a top list, one at an
 * epoch's start, one (made up) validating epoch 1 without a best yet; and
 * settings of SGD with focal loss, of a stream, of AdamW unfrozen. */
static const char *const golden_state[] = {
	"epoch=2\nphase=0\nstep=6\nlr=0.001\nloss_sum=11.19978443230989\ncorrect=15\nseen=24\n"
	"seconds=0.62185499700001401\ntrain_seconds=0.62185351499999797\nplateau_best=0.36420327994138602\n"
	"plateau_bad=0\nbest=0.36420327994138602\nbest_epoch=1\nwait=0\ntotal_steps=19\nthreads=2\n"
	"top=0.36420327994138602:1\n",
	"epoch=3\nphase=0\nstep=0\nlr=0.01\nloss_sum=0\ncorrect=0\nseen=0\nseconds=0\ntrain_seconds=0\n"
	"plateau_best=0.63227513227513232\nplateau_bad=1\nbest=0.63227513227513232\nbest_epoch=1\nwait=1\n"
	"total_steps=14\nthreads=2\ntop=2.4897425635505428:1,20.415848724002647:2\n",
	"epoch=1\nphase=1\nstep=7\nlr=0.0001\nloss_sum=5.5\ncorrect=3\nseen=56\nseconds=1.5\ntrain_seconds=1\n"
	"plateau_best=inf\nplateau_bad=0\nbest=inf\nbest_epoch=0\nwait=0\ntotal_steps=7\nthreads=16\ntop=\n",
};
static const char *const golden_settings[] = {
	"batch=8\nseed=11\noptimizer=sgd\nmomentum=0.90000000000000002\ndampening=0\nnesterov=1\n"
	"weight_decay=0.00029999999999999997\nbetas=0.90000000000000002,0.999\neps=1e-08\namsgrad=0\nloss=focal\n"
	"gamma=2\nalpha=0.25\nclass_weights=global\nboost=1.5\naugment=none\nmonitor=val_auc\nplateau_factor=0.5\n"
	"plateau_patience=1\nearly_stop=1\nkeep_top=3\nfreeze_backbone=0\nunfreeze_at=0\nlr_after_unfreeze=-1\n"
	"train=51 records\ninput=32x32\nvalid=39 records\n",
	"batch=8\nseed=1\noptimizer=adam\nmomentum=0\ndampening=0\nnesterov=0\nweight_decay=0\n"
	"betas=0.90000000000000002,0.999\neps=1e-08\namsgrad=0\nloss=bce\ngamma=2\nalpha=-1\nclass_weights=none\n"
	"boost=1\naugment=flip=0.5,rotate=-30:30,zoom=0.9:1.1,contrast=0.8:1.2\nmonitor=val_loss\n"
	"plateau_factor=0.10000000000000001\nplateau_patience=1\nearly_stop=0\nkeep_top=0\nfreeze_backbone=0\n"
	"unfreeze_at=0\nlr_after_unfreeze=-1\ntrain=a stream\ninput=32x32\nvalid=0 records\n",
	"batch=8\nseed=1\noptimizer=adamw\nmomentum=0\ndampening=0\nnesterov=0\nweight_decay=0.01\n"
	"betas=0.80000000000000004,0.98999999999999999\neps=1e-08\namsgrad=0\nloss=bce\ngamma=2\nalpha=-1\n"
	"class_weights=per-type\nboost=1\naugment=flip=0.5,rotate=-30:30,zoom=0.9:1.1,contrast=0.8:1.2\n"
	"monitor=val_loss\nplateau_factor=0.10000000000000001\nplateau_patience=1\nearly_stop=0\nkeep_top=0\n"
	"freeze_backbone=1\nunfreeze_at=2\nlr_after_unfreeze=0.00050000000000000001\ntrain=51 records\n"
	"input=32x32\nvalid=0 records\n",
};

/* What formatting adds to a golden text: the optional keys it lacks, as
 * read when absent. */
#define STATE_SINCE "epochs=0\nranks=0\nsync_bn=0\nbase_lr=0\nsched_steps=0\nstep_lr=0\nprecision=\n"
#define SETTINGS_SINCE                                                                                   \
	"schedule=plateau\nstep_size=0\nlr_gamma=0.10000000000000001\nt_max=0\nmin_lr=0\nmax_lr=0\n"         \
	"pct_start=0.29999999999999999\nwarmup=0\nwarmup_factor=0.01\nlabel_smoothing=0\naccumulate=1\n"

/* text with the line of key replaced by "key=value" (or dropped when value
 * is NULL), into buf. */
static const char *
with(char *buf, size_t len, const char *text, const char *key, const char *value)
{
	size_t k = strlen(key), o = 0;

	buf[0] = 0;
	for (const char *p = text; *p;) {
		size_t n = strcspn(p, "\n");
		n += p[n] == '\n';
		if (strncmp(p, key, k) == 0 && p[k] == '=') {
			if (value)
				o += (size_t)snprintf(buf + o, len - o, "%s=%s\n", key, value);
		} else
			o += (size_t)snprintf(buf + o, len - o, "%.*s", (int)n, p);
		p += n;
	}
	return buf;
}

/* Whether rc is -1 with a message that is exactly want. */
static int
fails_with(int rc, const char *want)
{
	if (rc == -1 && strcmp(mura_error_get(), want) == 0)
		return 1;
	printf("    got rc %d, message '%s', want '%s'\n", rc, rc ? mura_error_get() : "", want);
	return 0;
}

static void
test_golden(void)
{
	char buf[MURA_CKPT_TEXT_MAX], name[160];

	for (size_t i = 0; i < sizeof golden_state / sizeof golden_state[0]; i++) {
		struct mura_ckpt_state s;
		char want[MURA_CKPT_TEXT_MAX];
		snprintf(name, sizeof name, "golden train_state %zu: parse, format: the same bytes, then the "
		         "optional keys it lacks", i + 1);
		snprintf(want, sizeof want, "%s" STATE_SINCE, golden_state[i]);
		CHECK(name, mura_ckpt_state_parse(&s, golden_state[i]) == 0 && s.epochs == 0 &&
		                mura_ckpt_state_format(&s, buf, sizeof buf) == 0 && !strcmp(buf, want));
	}
	for (size_t i = 0; i < sizeof golden_settings / sizeof golden_settings[0]; i++) {
		struct mura_ckpt_settings s, s2;
		struct mura_ckpt_diff d[1];
		char want[MURA_CKPT_TEXT_MAX];
		snprintf(name, sizeof name, "golden train_settings %zu: parse, format: the same bytes, then the "
		         "optional keys it lacks, as it ran", i + 1);
		snprintf(want, sizeof want, "%s" SETTINGS_SINCE, golden_settings[i]);
		CHECK(name, mura_ckpt_settings_parse(&s, golden_settings[i]) == 0 &&
		                mura_ckpt_settings_format(&s, buf, sizeof buf) == 0 && !strcmp(buf, want));
		snprintf(name, sizeof name, "golden train_settings %zu: no difference with itself", i + 1);
		CHECK(name, mura_ckpt_settings_parse(&s2, golden_settings[i]) == 0 &&
		                mura_ckpt_settings_diff(&s, &s2, d, 1) == 0);
	}
}

/* Values at the edges of their types: format, parse, format. */
static void
test_round_trip(void)
{
	struct mura_ckpt_state s = {0}, s2;
	struct mura_ckpt_settings c = {0}, c2;
	char t1[MURA_CKPT_TEXT_MAX], t2[MURA_CKPT_TEXT_MAX];

	s.epoch = 7, s.phase = 1, s.step = 2147483648L, s.lr = 1e-300, s.loss_sum = 0.1;
	s.correct = UINT64_MAX, s.seen = 12345678901234567890u, s.seconds = DBL_MIN / 4;
	s.train_seconds = -0.0, s.plateau_best = -INFINITY, s.plateau_bad = -3, s.best = 1.0 / 3;
	s.best_epoch = 6, s.wait = 2, s.total_steps = -1, s.threads = 64, s.epochs = 1000000;
	for (s.top.n = 0; s.top.n < MURA_CKPT_TOP_MAX; s.top.n++)
		s.top.e[s.top.n] = (struct mura_ckpt_top){1.0 / (s.top.n + 1), 2 * s.top.n - 5};
	CHECK("a state: format, parse, format: the same text",
	      mura_ckpt_state_format(&s, t1, sizeof t1) == 0 && mura_ckpt_state_parse(&s2, t1) == 0 &&
	          mura_ckpt_state_format(&s2, t2, sizeof t2) == 0 && !strcmp(t1, t2));
	CHECK("... and the same values", s2.step == s.step && s2.lr == s.lr && s2.correct == UINT64_MAX &&
	                                     s2.seen == s.seen && s2.seconds == s.seconds &&
	                                     signbit(s2.train_seconds) && s2.plateau_best == -INFINITY &&
	                                     s2.best == s.best && s2.total_steps == -1 && s2.threads == 64 && s2.epochs == 1000000 &&
	                                     s2.top.n == MURA_CKPT_TOP_MAX && s2.top.e[99].loss == 0.01 &&
	                                     s2.top.e[99].epoch == 193 && s2.top.e[0].epoch == -5);

	c.batch = 3, c.seed = UINT64_MAX;
	strcpy(c.optimizer, "adamw");
	c.momentum = 0.9, c.dampening = 0.1, c.nesterov = 1, c.weight_decay = 5e-4;
	c.betas[0] = 0.9, c.betas[1] = 1 - 1e-12, c.eps = 1e-8, c.amsgrad = 1;
	strcpy(c.loss, "focal");
	c.gamma = 0.1f, c.alpha = -1.f / 3;
	strcpy(c.class_weights, "per-type");
	c.boost = 2.5;
	memset(c.augment, 'a', sizeof c.augment - 1);
	strcpy(c.monitor, "val_auc");
	c.plateau_factor = 0.1, c.plateau_patience = 4, c.early_stop = 5, c.keep_top = 100;
	c.freeze_backbone = 1, c.unfreeze_at = 3, c.lr_after_unfreeze = -1;
	c.train = MURA_CKPT_STREAM, c.input[0] = UINT32_MAX, c.input[1] = 1, c.valid = MURA_CKPT_STREAM - 1;
	CHECK("settings: format, parse, format: the same text",
	      mura_ckpt_settings_format(&c, t1, sizeof t1) == 0 && mura_ckpt_settings_parse(&c2, t1) == 0 &&
	          mura_ckpt_settings_format(&c2, t2, sizeof t2) == 0 && !strcmp(t1, t2));
	CHECK("... and the same values",
	      c2.seed == UINT64_MAX && !strcmp(c2.optimizer, "adamw") && c2.betas[1] == c.betas[1] &&
	          c2.gamma == 0.1f && c2.alpha == c.alpha && !strcmp(c2.augment, c.augment) &&
	          c2.train == MURA_CKPT_STREAM && c2.input[0] == UINT32_MAX && c2.input[1] == 1 &&
	          c2.valid == MURA_CKPT_STREAM - 1 && c2.keep_top == 100 && c2.amsgrad == 1);
	struct mura_ckpt_diff d[1];
	CHECK("... no difference between the two", mura_ckpt_settings_diff(&c, &c2, d, 1) == 0);

	mura_error_clear();
	CHECK("a text that does not fit is refused",
	      mura_ckpt_state_format(&s, t1, 100) == -1 && !strncmp(mura_error_get(), "train_state: ", 13) &&
	          strstr(mura_error_get(), " bytes, more than 99"));
	strcpy(c.loss, "bce\nx=1");
	CHECK("a string with a newline is refused",
	      fails_with(mura_ckpt_settings_format(&c, t1, sizeof t1), "train_settings: loss holds a newline"));
}

/* Where a parse through the two wrappers below writes. */
static union {
	struct mura_ckpt_state s;
	struct mura_ckpt_settings c;
} scratch;

static int
parse_state(void *s, const char *text)
{
	return mura_ckpt_state_parse(s, text);
}

static int
parse_settings(void *s, const char *text)
{
	return mura_ckpt_settings_parse(s, text);
}

/* A value that does not parse, in golden_state[0] or golden_settings[0]:
 * refused with a message that names the text and the key. */
static void
test_refused(void)
{
	static const struct {
		int settings;
		const char *key, *value, *want;
	} t[] = {
		{0, "step", "x", "train_state: step 'x' is not an integer"},
		{0, "step", "", "train_state: step '' is not an integer"},
		{0, "epoch", "2.5", "train_state: epoch '2.5' is not an integer"},
		{0, "epoch", "2147483648", "train_state: epoch '2147483648' is not an integer"},
		{0, "total_steps", "99999999999999999999",
		 "train_state: total_steps '99999999999999999999' is not an integer"},
		{0, "correct", "-1", "train_state: correct '-1' is not an unsigned integer"},
		{0, "seen", "18446744073709551616",
		 "train_state: seen '18446744073709551616' is not an unsigned integer"},
		{0, "lr", "fast", "train_state: lr 'fast' is not a number"},
		{0, "best", "1e-3x", "train_state: best '1e-3x' is not a number"},
		{0, "top", "0.5:1,", "train_state: top '0.5:1,' is not a list LOSS:EPOCH,..."},
		{0, "top", "0.5;1", "train_state: top '0.5;1' is not a list LOSS:EPOCH,..."},
		{0, "top", "0.5:1.5", "train_state: top '0.5:1.5' is not a list LOSS:EPOCH,..."},
		{0, "threads", "two", "train_state: threads 'two' is not an integer"},
		{0, "epoch", "0", "train_state: epoch 0, step 6, phase 0 make no sense"},
		{0, "phase", "2", "train_state: epoch 2, step 6, phase 2 make no sense"},
		{0, "step", "-1", "train_state: epoch 2, step -1, phase 0 make no sense"},
		{1, "batch", "eight", "train_settings: batch 'eight' is not an integer"},
		{1, "gamma", "2,5", "train_settings: gamma '2,5' is not a number"},
		{1, "betas", "0.9", "train_settings: betas '0.9' is not two numbers A,B"},
		{1, "betas", "0.9,0.999,1", "train_settings: betas '0.9,0.999,1' is not two numbers A,B"},
		{1, "input", "32x", "train_settings: input '32x' is not HxW"},
		{1, "input", "32x-32", "train_settings: input '32x-32' is not HxW"},
		{1, "input", "4294967296x1", "train_settings: input '4294967296x1' is not HxW"},
		{1, "train", "51", "train_settings: train '51' is not 'N records' or 'a stream'"},
		{1, "valid", "a river", "train_settings: valid 'a river' is not 'N records' or 'a stream'"},
		{1, "optimizer", "a-name-of-16-byt",
		 "train_settings: optimizer 'a-name-of-16-byt' is longer than 15 bytes"},
	};
	char buf[MURA_CKPT_TEXT_MAX], name[128];

	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		const char *text = t[i].settings ? golden_settings[0] : golden_state[0];
		int (*parse)(void *, const char *) = t[i].settings ? parse_settings : parse_state;
		snprintf(name, sizeof name, "%s %s=%s is refused, naming the key",
		         t[i].settings ? "train_settings" : "train_state", t[i].key, t[i].value);
		mura_error_clear();
		CHECK(name, fails_with(parse(&scratch, with(buf, sizeof buf, text, t[i].key, t[i].value)), t[i].want));
	}
}

/* Each key of a golden text left out: refused, naming it, unless it is
 * one of the optional (" key key ... "). */
static void
test_missing(const char *what, const char *text, const char *optional, int (*parse)(void *, const char *))
{
	char buf[MURA_CKPT_TEXT_MAX], key[64], spaced[80], want[128], name[128];
	int n = 0, bad = 0;

	for (const char *p = text; *p; p += strcspn(p, "\n") + 1, n++) {
		snprintf(key, sizeof key, "%.*s", (int)strcspn(p, "="), p);
		snprintf(spaced, sizeof spaced, " %s ", key);
		snprintf(want, sizeof want, "%s: no %s", what, key);
		int rc = parse(&scratch, with(buf, sizeof buf, text, key, NULL));
		if (strstr(optional, spaced) ? rc != 0 : rc != -1 || strcmp(mura_error_get(), want) != 0) {
			printf("    without %s: rc %d, '%s'\n", key, rc, rc ? mura_error_get() : "");
			bad++;
		}
	}
	snprintf(name, sizeof name, "%s without any one of its %d keys: refused, naming it (optional:%s)", what,
	         n, optional);
	CHECK(name, bad == 0 && n > 10);
}

static void
test_optional(void)
{
	char buf[MURA_CKPT_TEXT_MAX], b2[MURA_CKPT_TEXT_MAX], out[MURA_CKPT_TEXT_MAX];
	struct mura_ckpt_state s;

	memset(&s, 0xff, sizeof s);
	with(b2, sizeof b2, golden_state[1], "threads", NULL);
	CHECK("train_state without threads, top and epochs: read, as 0, an empty list and 0",
	      mura_ckpt_state_parse(&s, with(buf, sizeof buf, b2, "top", NULL)) == 0 && s.threads == 0 &&
	          s.top.n == 0 && s.epoch == 3 && s.epochs == 0);
	snprintf(buf, sizeof buf, "future=1\nepoch=9\n%sepoch=4\n", golden_state[1]);
	CHECK("an unknown key is ignored, the first of a repeated key counts",
	      mura_ckpt_state_parse(&s, buf) == 0 && s.epoch == 9 && s.top.n == 2 &&
	          mura_ckpt_state_format(&s, out, sizeof out) == 0 &&
	          !strncmp(out, with(b2, sizeof b2, golden_state[1], "epoch", "9"), strlen(b2)) &&
	          !strcmp(out + strlen(b2), STATE_SINCE));
}

/* d[i] is key with these texts, or say what it is. */
static int
diff_is(const struct mura_ckpt_diff *d, const char *key, const char *option, const char *mine, const char *theirs)
{
	if (!strcmp(d->key, key) && (option ? d->option && !strcmp(d->option, option) : !d->option) &&
	    !strcmp(d->mine, mine) && !strcmp(d->theirs, theirs))
		return 1;
	printf("    got %s (%s): '%s' / '%s', want %s: '%s' / '%s'\n", d->key, d->option ? d->option : "no option",
	       d->mine, d->theirs, key, mine, theirs);
	return 0;
}

static void
test_diff(void)
{
	struct mura_ckpt_settings theirs, mine;
	struct mura_ckpt_diff d[8];

	mura_ckpt_settings_parse(&theirs, golden_settings[0]);
	mine = theirs;
	mine.batch = 4;
	mine.momentum = 0.95;
	mine.nesterov = 0;
	mine.gamma = 2.0000002f;
	mine.alpha = -1;
	strcpy(mine.augment, "flip=0.5");
	mine.valid = 12;
	CHECK("diff: every setting that differs, in the order of the keys",
	      mura_ckpt_settings_diff(&mine, &theirs, d, 8) == 7);
	CHECK("... as the options say them: a value, shortest where exact is long",
	      diff_is(&d[0], "batch", "--batch", "--batch 4", "--batch 8") &&
	          diff_is(&d[1], "momentum", "--momentum", "--momentum 0.95", "--momentum 0.9") &&
	          diff_is(&d[3], "gamma", "--gamma", "--gamma 2.0000002", "--gamma 2") &&
	          diff_is(&d[5], "augment", "--augment", "--augment flip=0.5", "--augment none"));
	CHECK("... a flag, and an option not given",
	      diff_is(&d[2], "nesterov", "--nesterov", "no --nesterov", "--nesterov") &&
	          diff_is(&d[4], "alpha", "--alpha", "no --alpha", "--alpha 0.25"));
	CHECK("... the data's as key=value", diff_is(&d[6], "valid", NULL, "valid=12 records", "valid=39 records"));
	CHECK("... the count of them all, even beyond the room given",
	      mura_ckpt_settings_diff(&mine, &theirs, d, 2) == 7 && !strcmp(d[1].key, "momentum"));
}

int
main(void)
{
	test_golden();
	test_round_trip();
	test_refused();
	test_missing("train_state", golden_state[0], " threads top ", parse_state);
	test_missing("train_settings", golden_settings[0], " ", parse_settings);
	test_optional();
	test_diff();
	return test_status();
}
