/*
 * ckpt.h - the checkpoint of mura-train: what a resumed run reads back, as
 * texts in a safetensors file's metadata (lib/safetensors.h), beside the
 * model's own metadata and tensors (lib/nn/model.h).
 *
 * Every model file mura-train writes (MODEL.safetensors, .best, .topK)
 * carries these metadata keys, all strings:
 *   train_epoch          %d      epochs done
 *   train_val_loss       %.8g    the epoch's validation loss, "n/a" without
 *   train_val_auc        %.8g    its image AUC, "n/a" without
 *   train_val_kappa      %.8g    its study kappa, "n/a" without or not computable
 *   train_class_weights  text    "MODE, boost B: TYPE W0/W1 ..." as used
 *   train_command        text    the command line; bytes outside printable
 *                                ASCII become '?' unless it is valid UTF-8
 * The checkpoint (MODEL.ckpt.safetensors) has these too (the val_* are
 * "n/a" there), and:
 *   train_state          text    where the loop is, below
 *   train_settings       text    the run's options, which a resumed run takes, below
 *   train_history        text    the log's rows so far (mura-train(1)'s
 *                                --log, without its header line)
 *   optim.P.SLOT         tensors the optimizer's state of parameter P, as
 *                                lib/nn/optim.h lists them: momentum_buffer;
 *                                exp_avg, exp_avg_sq, max_exp_avg_sq (F32, as
 *                                P); step (I64 scalar)
 *
 * train_state and train_settings are lines "key=value\n", keys in the
 * order below, each once.  A reader finds a key at the start of a line and
 * takes its first occurrence; it ignores keys it does not know, refuses a
 * missing key (but those marked optional) and a value that does not parse,
 * naming the text and the key ("train_state: step 'x' is not an integer").
 * Types, as written:
 *   int, long    %d, %ld            u64     %llu (no sign)
 *   double       %.17g (exact; "inf", "-inf", "nan" as printf writes them)
 *   float        %.9g (exact)       string  up to its field's size, no newline
 *   pair         two doubles "%.17g,%.17g"
 *   size         "HxW", two u32
 *   records      "N records" (u64), or "a stream" (MURA_CKPT_STREAM)
 *   top          "LOSS:EPOCH,..." (double:int), lowest loss first; may be empty
 *
 * train_state (struct mura_ckpt_state):
 *   epoch          int     the epoch in progress, >= 1
 *   phase          int     0 training, 1 validating
 *   step           long    steps done in this epoch, >= 0
 *   lr             double  the learning rate now
 *   loss_sum       double  this epoch's sum over steps of the batch's mean
 *                          loss times its images
 *   correct        u64     this epoch's training images classified right
 *   seen           u64     this epoch's training images
 *   seconds        double  spent on this epoch so far
 *   train_seconds  double  of which training
 *   plateau_best   double  the monitored value's best, for the plateau
 *   plateau_bad    int     epochs without improvement, for the plateau
 *   best           double  the monitored value's best (the best model's)
 *   best_epoch     int     its epoch, 0: none yet
 *   wait           int     epochs without improvement, for early stopping
 *   total_steps    long    steps over the whole run
 *   threads        int     the run's threads (optional; 0 when absent):
 *                          another count gives other rounding
 *   top            top     the K epochs of lowest validation loss, at most
 *                          MURA_CKPT_TOP_MAX (optional; empty when absent)
 *   epochs         int     the run's number of epochs, which a resumed run
 *                          goes on to unless told otherwise (optional; 0
 *                          when absent: a checkpoint of an older mura-train)
 *   ranks          int     the processes that trained it (optional; 0 when
 *                          absent: one); another count gives other rounding,
 *                          and without sync_bn other batch statistics
 *   sync_bn        int     1: batch statistics over every process's share
 *                          of the batch (--sync-bn; optional, 0 when absent;
 *                          kept by a resumed run, whatever its processes)
 *   base_lr        double  the schedule's base rate, --lr at the start
 *                          (PyTorch's initial_lr; optional, 0 when absent:
 *                          a run of the plateau, which needs none)
 *   sched_steps    long    onecycle: the run's optimizer steps (optional)
 *   step_lr        double  the rate of the last step taken, the log's lr
 *                          (optional; 0 when absent: then lr)
 *   precision      string  fp32 or bf16, what the run last trained in
 *                          (--precision, resolved; optional, empty when
 *                          absent: fp32); a resumed run keeps it unless
 *                          told otherwise
 *
 * train_settings (struct mura_ckpt_settings), with the mura-train option
 * that sets each; a resumed run takes them, and its own must equal them,
 * key by key as text:
 *   batch              int     --batch            images per step
 *   seed               u64     --seed             the seed of initialisation,
 *                                                 order, augmentation
 *   optimizer          string  --optimizer        sgd, adam, adamw
 *   momentum           double  --momentum         SGD
 *   dampening          double                     SGD
 *   nesterov           int     --nesterov         SGD: 0 or 1
 *   weight_decay       double  --weight-decay
 *   betas              pair    --betas            Adam's and AdamW's
 *   eps                double                     Adam's and AdamW's
 *   amsgrad            int                        0 or 1
 *   loss               string  --loss             bce, focal
 *   gamma              float   --gamma            focal exponent
 *   alpha              float   --alpha            focal weight of abnormal
 *                                                 images, -1: none
 *   class_weights      string  --class-weights    none, global, per-type
 *   boost              double  --boost            factor on the abnormal weight
 *   augment            string  --augment          the transforms as
 *                                                 mura-augment(1)'s --augment
 *                                                 takes them, or "none"
 *   monitor            string  --monitor          val_loss, val_auc
 *   plateau_factor     double  --plateau-factor   1: no reduction
 *   plateau_patience   int     --plateau-patience
 *   early_stop         int     --early-stop       0: never
 *   keep_top           int     --keep-top         K, 0: none
 *   freeze_backbone    int     --freeze-backbone  0 or 1
 *   unfreeze_at        int     --unfreeze-at      the epoch the backbone
 *                                                 thaws, 0: never
 *   lr_after_unfreeze  double  --lr-after-unfreeze  -1: unchanged
 *   train              records the training records, or a stream
 *   input              size    of every record
 *   valid              records the validation records, 0 without
 * and, optional (a checkpoint of an older mura-train has none: the value
 * after "absent" is what it did):
 *   schedule           string  --schedule         plateau, cosine, step,
 *                                                 exponential, onecycle;
 *                                                 absent plateau
 *   step_size          int     --step-size        absent 0
 *   lr_gamma           double  --lr-gamma         absent 0.1
 *   t_max              int     --t-max            cosine's, the run's
 *                                                 epochs if not given; absent 0
 *   min_lr             double  --min-lr           absent 0
 *   max_lr             double  --max-lr           onecycle's, --lr if not
 *                                                 given; absent 0
 *   pct_start          double  --pct-start        absent 0.3
 *   warmup             long    --warmup           steps, absent 0
 *   warmup_factor      double  --warmup-factor    absent 0.01
 *   label_smoothing    double  --label-smoothing  absent 0
 *   accumulate         int     --accumulate       batches a step, absent 1
 */
#ifndef MURA_CKPT_H
#define MURA_CKPT_H

#include <stddef.h>
#include <stdint.h>

#define MURA_CKPT_TOP_MAX 100
/* Room for either text, and for train_command. */
#define MURA_CKPT_TEXT_MAX 8192
/* A records value that is a stream, not a count. */
#define MURA_CKPT_STREAM UINT64_MAX

struct mura_ckpt_top {
	double loss;
	int epoch;
};

struct mura_ckpt_top_list {
	int n;
	struct mura_ckpt_top e[MURA_CKPT_TOP_MAX];  /* lowest loss first */
};

/* The loop's state; the fields are train_state's keys, above. */
struct mura_ckpt_state {
	int epoch;
	int phase;
	long step;
	double lr;
	double loss_sum;
	uint64_t correct, seen;
	double seconds;
	double train_seconds;
	double plateau_best;
	int plateau_bad;
	double best;
	int best_epoch;
	int wait;
	long total_steps;
	int threads;
	struct mura_ckpt_top_list top;
	int epochs;
	int ranks;
	int sync_bn;
	double base_lr;
	long sched_steps;
	double step_lr;
	char precision[8];
};

/* The run's settings; the fields are train_settings' keys, above. */
struct mura_ckpt_settings {
	int batch;
	uint64_t seed;
	char optimizer[16];
	double momentum;
	double dampening;
	int nesterov;
	double weight_decay;
	double betas[2];
	double eps;
	int amsgrad;
	char loss[16];
	float gamma;
	float alpha;
	char class_weights[16];
	double boost;
	char augment[512];
	char monitor[16];
	double plateau_factor;
	int plateau_patience;
	int early_stop;
	int keep_top;
	int freeze_backbone;
	int unfreeze_at;
	double lr_after_unfreeze;
	uint64_t train;     /* records, or MURA_CKPT_STREAM */
	uint32_t input[2];  /* h, w */
	uint64_t valid;     /* records */
	char schedule[16];
	int step_size;
	double lr_gamma;
	int t_max;
	double min_lr;
	double max_lr;
	double pct_start;
	long warmup;
	double warmup_factor;
	double label_smoothing;
	int accumulate;
};

/* The text of s into buf (len bytes, NUL-terminated).  Returns 0, or -1
 * with mura_error set if it does not fit or a string holds a newline. */
int mura_ckpt_state_format(const struct mura_ckpt_state *s, char *buf, size_t len);
int mura_ckpt_settings_format(const struct mura_ckpt_settings *s, char *buf, size_t len);

/* Every key of text into s.  Returns 0, or -1 with mura_error set, naming
 * the key ("train_state: no epoch"); s is then partly written.  A state
 * must also make sense: epoch >= 1, step >= 0, phase 0 or 1. */
int mura_ckpt_state_parse(struct mura_ckpt_state *s, const char *text);
int mura_ckpt_settings_parse(struct mura_ckpt_settings *s, const char *text);

/* A setting on which two runs differ: its key, the option that sets it
 * (NULL for train, input and valid, the data's), and each run's value as
 * the option says it ("--batch 8", "--nesterov", "no --nesterov", "no
 * --alpha"; numbers in the shortest text that reads back as the same
 * value: "--momentum 0.9") or, for the data, as key=value, as written
 * ("train=51 records"). */
struct mura_ckpt_diff {
	const char *key, *option;
	char mine[600], theirs[600];
};

/* The settings on which mine and theirs differ, compared key by key as
 * text, as written, into d[0 .. max) in the order of the keys.  Returns
 * how many differ (which may be more than max). */
size_t mura_ckpt_settings_diff(const struct mura_ckpt_settings *mine, const struct mura_ckpt_settings *theirs,
                               struct mura_ckpt_diff *d, size_t max);

#endif
