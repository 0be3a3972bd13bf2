# mura.mk - the whole pipeline for a MURA folder, real or from mura-synth:
# preprocess -> train -> score -> report.
#
#   make -f pipelines/mura.mk MURA=/data/MURA-v1.1 [OUT=out/run] [ARCH=densenet169] ...
#   make -f pipelines/mura.mk MURA=... baseline     # the paper's recipes, each in out/NAME
#   make -f pipelines/mura.mk MURA=... tune         # a mura-tune search, in out/tune
#
# Stages and the files they write (each under a temporary name, renamed when
# complete; .DELETE_ON_ERROR removes what a failed stage leaves):
#   PREP/train.mt valid.mt test.mt    pipelines/preprocess.mk (SIZE, FIT, ...)
#   OUT/model*.safetensors, log.tsv   mura-train on train.mt, validated on valid.mt
#                                     (--progress: a line every 30 s of an epoch)
#   OUT/trained                       the models to score, once training ended well
#   OUT/valid.scores.tsv test.scores.tsv
#                                     mura-score (the ensemble, TTA)
#   OUT/report/                       metrics.md, metrics.tsv, valid.md, valid.tsv,
#                                     roc/*.png, curves.png, thresholds.tsv (with TUNE=yes),
#                                     calibration/, operating.tsv, gallery/
#   OUT/report/index.html             the run's page (pipelines/report.sh): all of the
#                                     above, the galleries' heat maps, the provenance
# Each stage's variables are kept in OUT/NAME.params, rewritten only when they
# change: changing EPOCHS retrains and re-evaluates without preprocessing, and
# changing SIZE preprocesses again.  A second make does nothing.
#
# A training run that was stopped (Ctrl-C, a crash) resumes from its
# checkpoint OUT/model.ckpt.safetensors on the next make, when that checkpoint
# is newer than the training stage's inputs; the options go again, and
# mura-train checks that they agree with the checkpoint.  Otherwise the old
# run's files are removed first (mura-train refuses to start a run over a
# checkpoint without --force).

MURA     ?= $(error set MURA to the MURA-v1.1 folder, e.g. MURA=/data/MURA-v1.1)
OUT      ?= out/run
PREP     ?= $(dir $(OUT))prep

# Training: the MURA baseline's recipe unless told otherwise.
ARCH          ?= densenet169
HEAD          ?= fc
DROPOUT       ?= 0
WEIGHTS       ?=
EPOCHS        ?= 10
BATCH         ?= 8
OPTIMIZER     ?= adam
LR            ?= 0.0001
MOMENTUM      ?= 0
WEIGHT_DECAY  ?= 0
LOSS          ?= bce
GAMMA         ?= 2
CLASS_WEIGHTS ?= per-type
BOOST         ?= 1
# The MURA baseline's augmentation: lateral flips and rotations up to 30
# degrees.  mura-train's own default (--augment default) adds the seed paper's
# zoom and contrast: AUGMENT=default asks for it.
AUGMENT       ?= flip=0.5,rotate=30
MONITOR       ?= val_loss
PLATEAU_FACTOR   ?= 0.1
PLATEAU_PATIENCE ?= 1
# The rate's schedule (mura-train(1)'s "Learning-rate schedules"): plateau
# (ReduceLROnPlateau, with PLATEAU_*), cosine (T_MAX: empty for the epochs,
# MIN_LR), step (STEP_SIZE, LR_GAMMA), exponential (LR_GAMMA), onecycle
# (MAX_LR: empty for LR, PCT_START); WARMUP steps of linear warm-up from
# WARMUP_FACTOR times the rate.  LABEL_SMOOTHING: targets y (1 - E) + E/2.
# ACCUMULATE: batches of BATCH whose gradients make one step.
SCHEDULE      ?= plateau
STEP_SIZE     ?= 10
LR_GAMMA      ?= 0.1
T_MAX         ?=
MIN_LR        ?= 0
MAX_LR        ?=
PCT_START     ?= 0.3
WARMUP        ?= 0
WARMUP_FACTOR ?= 0.01
LABEL_SMOOTHING ?= 0
ACCUMULATE    ?= 1
EARLY_STOP    ?= 0
KEEP_TOP      ?= 5
SEED          ?= 1
# PRECISION=bf16: mura-train and mura-score in bf16 mixed precision (CPUs
# with AVX512-BF16; auto: bf16 where the CPU has it); the default fp32.
PRECISION     ?= fp32
TRAIN_FLAGS   ?=
# Several processes, on this machine or on the machines of a hostfile (the
# README's "Training on several machines"): NP processes under MPIRUN with
# MPIFLAGS, each with THREADS threads (empty: every core mpirun lets it use).
# With HOSTS, one process per machine in turn, free to use all its cores;
# without, mpirun's own placement (2 processes: one core each).  BATCH stays
# the global batch.  NP is not a setting of the run: a run stopped under one
# NP resumes under another.  SYNC_BN=yes: batch statistics over the global
# batch (mura-train --sync-bn).
NP            ?= 1
MPIRUN        ?= mpirun
HOSTS         ?=
MPIFLAGS      ?= $(if $(HOSTS),--hostfile $(HOSTS) --map-by node --bind-to none)
THREADS       ?=
SYNC_BN       ?= no
# Evaluation: ENSEMBLE=top scores with the KEEP_TOP models of lowest validation
# loss (the MURA paper's ensemble), best with the best one, last with the last.
ENSEMBLE      ?= top
TTA           ?= none
AGGREGATE     ?= mean
TUNE          ?= no
BOOTSTRAP     ?= 1000
# The page: operating points chosen on valid (mura-kappa --operating-point), and
# galleries of at most GALLERY test studies per type and kind (false positives,
# false negatives, true positives, true negatives), each image with its map by
# mura-cam (CAM_METHOD, at CAM_LAYER: empty for the backbone's last layer).
OPERATING_POINTS ?= sens=0.9 spec=0.95
GALLERY       ?= 4
CAM_METHOD    ?= gradcam
CAM_LAYER     ?=

.DELETE_ON_ERROR:
.PHONY: all report clean baseline sgd-boost hybrid tune

all: $(OUT)/report/index.html

include $(dir $(lastword $(MAKEFILE_LIST)))preprocess.mk

THIS := $(abspath $(firstword $(MAKEFILE_LIST)))
# mura-train's options for the schedule, the warm-up, smoothing and
# accumulation; in the stage's parameters only where not the defaults, so
# that runs made before these existed are not retrained.
SCHED_ARGS := --schedule $(SCHEDULE) \
	$(if $(filter plateau,$(SCHEDULE)),--plateau-factor $(PLATEAU_FACTOR) --plateau-patience $(PLATEAU_PATIENCE)) \
	$(if $(filter step,$(SCHEDULE)),--step-size $(STEP_SIZE)) \
	$(if $(filter step exponential,$(SCHEDULE)),--lr-gamma $(LR_GAMMA)) \
	$(if $(filter cosine,$(SCHEDULE)),$(if $(T_MAX),--t-max $(T_MAX)) --min-lr $(MIN_LR)) \
	$(if $(filter onecycle,$(SCHEDULE)),$(if $(MAX_LR),--max-lr $(MAX_LR)) --pct-start $(PCT_START)) \
	$(if $(filter-out 0,$(WARMUP)),--warmup $(WARMUP) --warmup-factor $(WARMUP_FACTOR)) \
	--label-smoothing $(LABEL_SMOOTHING) --accumulate $(ACCUMULATE)
RECIPE_PARAMS := $(if $(filter-out plateau,$(SCHEDULE)),schedule=$(SCHEDULE) step_size=$(STEP_SIZE) \
	lr_gamma=$(LR_GAMMA) t_max=$(T_MAX) min_lr=$(MIN_LR) max_lr=$(MAX_LR) pct_start=$(PCT_START)) \
	$(if $(filter-out 0,$(WARMUP)),warmup=$(WARMUP)/$(WARMUP_FACTOR)) \
	$(if $(filter-out 0,$(LABEL_SMOOTHING)),label_smoothing=$(LABEL_SMOOTHING)) \
	$(if $(filter-out 1,$(ACCUMULATE)),accumulate=$(ACCUMULATE))
# In the parameters only when not the default, so existing runs are not redone.
PRECISION_PARAMS := $(if $(filter-out fp32,$(PRECISION)),precision=$(PRECISION))
PRECISION_ARG := $(if $(filter-out fp32,$(PRECISION)),--precision $(PRECISION))
TRAIN_PARAMS := $(call params,$(OUT)/train.params,arch=$(ARCH) head=$(HEAD) dropout=$(DROPOUT) \
	weights=$(WEIGHTS) epochs=$(EPOCHS) batch=$(BATCH) optimizer=$(OPTIMIZER) lr=$(LR) \
	momentum=$(MOMENTUM) weight_decay=$(WEIGHT_DECAY) loss=$(LOSS) gamma=$(GAMMA) \
	class_weights=$(CLASS_WEIGHTS) boost=$(BOOST) augment=$(AUGMENT) monitor=$(MONITOR) \
	plateau=$(PLATEAU_FACTOR)/$(PLATEAU_PATIENCE) early_stop=$(EARLY_STOP) keep_top=$(KEEP_TOP) \
	seed=$(SEED) sync_bn=$(SYNC_BN) $(RECIPE_PARAMS) $(PRECISION_PARAMS) $(TRAIN_FLAGS))
SCORE_PARAMS := $(call params,$(OUT)/score.params,ensemble=$(ENSEMBLE) tta=$(TTA) $(PRECISION_PARAMS))
REPORT_PARAMS := $(call params,$(OUT)/report.params,aggregate=$(AGGREGATE) tune=$(TUNE) bootstrap=$(BOOTSTRAP))
PAGE_PARAMS := $(call params,$(OUT)/page.params,operating_points=$(OPERATING_POINTS) gallery=$(GALLERY) \
	cam_method=$(CAM_METHOD) cam_layer=$(CAM_LAYER))
REPORT_SH := $(dir $(THIS))report.sh

MODEL = $(OUT)/model.safetensors
CKPT  = $(OUT)/model.ckpt.safetensors

$(OUT)/trained: $(PREP)/train.mt $(PREP)/valid.mt $(TRAIN_PARAMS) $(WEIGHTS)
	@rm -f $@; resume=; \
	if [ -f $(CKPT) ] && (for f in $^; do [ $(CKPT) -nt $$f ] || exit 1; done); then \
	    echo "mura.mk: resuming from $(CKPT)"; resume="--resume $(CKPT)"; \
	else \
	    rm -f $(OUT)/model*.safetensors $(OUT)/log.tsv; \
	fi; \
	set -x; $(if $(filter-out 1,$(NP)),$(MPIRUN) -np $(NP) $(MPIFLAGS) )mura-train \
	    $$resume $(if $(THREADS),--threads $(THREADS)) $(if $(filter yes,$(SYNC_BN)),--sync-bn) \
	    --arch $(ARCH) --head $(HEAD) --dropout $(DROPOUT) \
	    $(if $(WEIGHTS),--weights $(WEIGHTS)) --epochs $(EPOCHS) --batch $(BATCH) \
	    --optimizer $(OPTIMIZER) --lr $(LR) $(if $(filter sgd,$(OPTIMIZER)),--momentum $(MOMENTUM)) \
	    --weight-decay $(WEIGHT_DECAY) --loss $(LOSS) $(if $(filter focal,$(LOSS)),--gamma $(GAMMA)) \
	    --class-weights $(CLASS_WEIGHTS) --boost $(BOOST) --augment '$(AUGMENT)' \
	    --valid $(PREP)/valid.mt --monitor $(MONITOR) $(strip $(SCHED_ARGS)) \
	    --early-stop $(EARLY_STOP) --keep-top $(KEEP_TOP) \
	    --seed $(SEED) $(PRECISION_ARG) $(TRAIN_FLAGS) --progress --log $(OUT)/log.tsv --out $(MODEL) $(PREP)/train.mt
	@case $(ENSEMBLE) in \
	top) ls $(OUT)/model.top*.safetensors 2>/dev/null | sort -V ;; \
	best) ls $(OUT)/model.best.safetensors 2>/dev/null ;; \
	esac > $@.tmp; [ -s $@.tmp ] || echo $(MODEL) > $@.tmp; mv $@.tmp $@

$(OUT)/%.scores.tsv: $(OUT)/trained $(PREP)/%.mt $(SCORE_PARAMS)
	mura-score $$(sed 's/^/--model /' $(OUT)/trained) --tta $(TTA) $(PRECISION_ARG) $(PREP)/$*.mt > $@.tmp
	@mv $@.tmp $@

KAPPA = mura-kappa --aggregate $(AGGREGATE) --bootstrap $(BOOTSTRAP) \
	$(if $(filter yes,$(TUNE)),--tune-thresholds $(OUT)/valid.scores.tsv)

$(OUT)/report/metrics.md: $(OUT)/test.scores.tsv $(OUT)/valid.scores.tsv $(REPORT_PARAMS) \
		$(OUT)/report/curves.png
	@mkdir -p $(OUT)/report
	$(KAPPA) --format markdown --roc $(OUT)/report/roc $(OUT)/test.scores.tsv > $@.tmp
	$(KAPPA) --format tsv $(OUT)/test.scores.tsv > $(OUT)/report/metrics.tsv.tmp
	mura-kappa --aggregate $(AGGREGATE) --bootstrap 0 --format markdown $(OUT)/valid.scores.tsv \
	    > $(OUT)/report/valid.md.tmp
	@$(if $(filter yes,$(TUNE)),mura-kappa --tune-thresholds $(OUT)/valid.scores.tsv \
	    --write-thresholds $(OUT)/report/thresholds.tsv --bootstrap 0 $(OUT)/test.scores.tsv >/dev/null)
	@mv $(OUT)/report/metrics.tsv.tmp $(OUT)/report/metrics.tsv
	@mv $(OUT)/report/valid.md.tmp $(OUT)/report/valid.md
	@mv $@.tmp $@

$(OUT)/report/valid.tsv: $(OUT)/valid.scores.tsv $(REPORT_PARAMS)
	@mkdir -p $(OUT)/report
	mura-kappa --aggregate $(AGGREGATE) --bootstrap 0 --format tsv $< > $@.tmp
	@mv $@.tmp $@

# Calibration of the test split's study probabilities (each file atomic; the
# diagram last).
$(OUT)/report/calibration/reliability.png: $(OUT)/test.scores.tsv $(REPORT_PARAMS)
	mura-kappa --aggregate $(AGGREGATE) --bootstrap 0 --calibration $(OUT)/report/calibration \
	    $(OUT)/test.scores.tsv > /dev/null

$(OUT)/report/operating.tsv: $(OUT)/test.scores.tsv $(OUT)/valid.scores.tsv $(REPORT_PARAMS) $(PAGE_PARAMS)
	sh $(REPORT_SH) operating run=$(OUT) aggregate=$(AGGREGATE) points='$(OPERATING_POINTS)'

# The galleries' studies are called with the thresholds of the metrics.
$(OUT)/report/gallery/gallery.tsv: $(OUT)/report/metrics.md $(OUT)/trained $(PREP)/test.mt \
		$(RESIZE_PARAMS) $(PAGE_PARAMS)
	sh $(REPORT_SH) gallery run=$(OUT) root='$(ROOT)' size=$(SIZE) fit=$(FIT) \
	    aggregate=$(AGGREGATE) n=$(GALLERY) method=$(CAM_METHOD) layer=$(CAM_LAYER) \
	    thresholds=$(if $(filter yes,$(TUNE)),$(OUT)/report/thresholds.tsv)

$(OUT)/report/index.html: $(OUT)/report/metrics.md $(OUT)/report/valid.tsv $(OUT)/report/curves.png \
		$(OUT)/report/calibration/reliability.png $(OUT)/report/operating.tsv \
		$(OUT)/report/gallery/gallery.tsv $(PAGE_PARAMS) $(REPORT_SH)
	sh $(REPORT_SH) page run=$(OUT) prep=$(PREP) mura='$(MURA)' top=$(TOP) \
	    aggregate=$(AGGREGATE) n=$(GALLERY) method=$(CAM_METHOD) layer=$(CAM_LAYER)

# Training curves from the log: loss, and validation AUC and kappa, per epoch.
$(OUT)/report/curves.png: $(OUT)/trained
	@mkdir -p $(OUT)/report
	gnuplot -e "set terminal pngcairo size 960,400; set output '$@.tmp'; \
	  set datafile separator '\t'; set multiplot layout 1,2; set xlabel 'epoch'; \
	  set xtics 1; set grid; set key top right; set title 'loss'; \
	  plot '$(OUT)/log.tsv' using 'epoch':'train_loss' with linespoints title 'training', \
	       '' using 'epoch':'val_loss' with linespoints title 'validation'; \
	  set title 'validation'; set yrange [0:1]; set key bottom right; \
	  plot '$(OUT)/log.tsv' using 'epoch':'val_auc' with linespoints title 'AUC', \
	       '' using 'epoch':'val_kappa' with linespoints title 'kappa'; unset multiplot"
	@mv $@.tmp $@

report: $(OUT)/report/index.html
	@cat $(OUT)/report/metrics.md
	@echo "page: $<"

# The paper's recipes, each a run of its own beside the default one.
RUNS ?= out
baseline:   # MURA: DenseNet169, Adam 1e-4, per-type weights, plateau /10, 5-model ensemble
	$(MAKE) -f $(THIS) OUT=$(RUNS)/baseline PREP=$(PREP) ARCH=densenet169 OPTIMIZER=adam \
	    LR=0.0001 CLASS_WEIGHTS=per-type MONITOR=val_loss PLATEAU_FACTOR=0.1 KEEP_TOP=5 ENSEMBLE=top
sgd-boost:  # the seed: SGD with momentum and class weights boosted 1.5
	$(MAKE) -f $(THIS) OUT=$(RUNS)/sgd-boost PREP=$(PREP) ARCH=densenet169 OPTIMIZER=sgd \
	    LR=0.001 MOMENTUM=0.9 CLASS_WEIGHTS=per-type BOOST=1.5 MONITOR=val_auc ENSEMBLE=best
# The seed's hybrid (ResNet50 + ViT, mura-train --arch hybrid): the ResNet50, from
# WEIGHTS (torchvision's ImageNet resnet50 as safetensors), frozen while the
# transformer learns at 0.00019 with the abnormal weight boosted 1.5; unfrozen at
# epoch UNFREEZE_AT at LR_AFTER_UNFREEZE; early stopping and plateaus on val_auc.
UNFREEZE_AT       ?= 4
LR_AFTER_UNFREEZE ?= 0.00001
hybrid:
	$(if $(WEIGHTS),,$(error hybrid: set WEIGHTS to an ImageNet resnet50 .safetensors file))
	$(MAKE) -f $(THIS) OUT=$(RUNS)/hybrid PREP=$(PREP) ARCH=hybrid HEAD=fc LR=0.00019 BOOST=1.5 \
	    MONITOR=val_auc EARLY_STOP=3 ENSEMBLE=best TRAIN_FLAGS='--freeze-backbone \
	    --unfreeze-at $(UNFREEZE_AT) --lr-after-unfreeze $(LR_AFTER_UNFREEZE) $(TRAIN_FLAGS)'

# A search of the training options with mura-tune(1): the parameters of SPACE
# (the seed's hybrid search by default: learning rate and class-weight boost),
# TUNE_TRIALS trials TUNE_JOBS at a time, TUNE_EPOCHS epochs each, on
# TUNE_METRIC, pruned by TUNE_PRUNER; the trainer's other options are ARCH,
# HEAD, WEIGHTS, AUGMENT, CLASS_WEIGHTS, MONITOR and TUNE_FLAGS (--freeze-backbone
# for the hybrid), mura-train's defaults for the rest.  The study is STUDY: a
# stopped search continues on the next make; its report is STUDY/report.txt,
# with the plots beside it.  A change of the data or of these settings starts
# a new study (the old one is removed).
SPACE       ?= $(dir $(THIS))hybrid.space
STUDY       ?= $(RUNS)/tune
TUNE_TRIALS ?= 20
TUNE_JOBS   ?= 1
TUNE_EPOCHS ?= 9
TUNE_METRIC ?= val_auc
TUNE_PRUNER ?= asha
TUNE_FLAGS  ?= $(if $(filter hybrid,$(ARCH)),--freeze-backbone)
TUNE_PARAMS := $(call params,$(STUDY).params,space=$(SPACE) trials=$(TUNE_TRIALS) epochs=$(TUNE_EPOCHS) \
	metric=$(TUNE_METRIC) pruner=$(TUNE_PRUNER) arch=$(ARCH) head=$(HEAD) weights=$(WEIGHTS) \
	augment=$(AUGMENT) class_weights=$(CLASS_WEIGHTS) monitor=$(MONITOR) seed=$(SEED) $(TUNE_FLAGS))
$(STUDY)/report.txt: $(PREP)/train.mt $(PREP)/valid.mt $(SPACE) $(TUNE_PARAMS) $(WEIGHTS)
	@if [ -f $(STUDY)/study ] && ! (for f in $^; do [ $(STUDY)/study -nt $$f ] || exit 1; done); then \
	    echo "mura.mk: $(STUDY): the data or the settings changed: a new study"; rm -rf $(STUDY); \
	fi
	mura-tune --study $(STUDY) --space $(SPACE) --trials $(TUNE_TRIALS) --jobs $(TUNE_JOBS) \
	    --epochs $(TUNE_EPOCHS) --metric $(TUNE_METRIC) --pruner $(TUNE_PRUNER) --seed $(SEED) -- \
	    mura-train --arch $(ARCH) --head $(HEAD) $(if $(WEIGHTS),--weights $(WEIGHTS)) \
	    --augment '$(AUGMENT)' --class-weights $(CLASS_WEIGHTS) --monitor $(MONITOR) --seed $(SEED) \
	    $(TUNE_FLAGS) --valid $(abspath $(PREP)/valid.mt) $(abspath $(PREP)/train.mt)
	mura-tune --study $(STUDY) --report > $@.tmp
	@mv $@.tmp $@
tune: $(STUDY)/report.txt
	@cat $<

clean::
	rm -rf $(OUT)
