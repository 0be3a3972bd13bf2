# preprocess.mk - from a MURA folder, real or from mura-synth, to resized
# tensor streams: PREP/train.mt, PREP/valid.mt and PREP/test.mt.
#
#   make -f pipelines/preprocess.mk MURA=/data/MURA-v1.1 OUT=prep [SIZE=320] ...
#
# The output folder is PREP, which is OUT when this file is run on its own
# (pipelines/mura.mk includes it with PREP set and OUT naming its run).
#
# train is MURA's train; test is TEST_FRACTION of each study type of MURA's
# valid, whole patients (mura-split part 2), as the seed paper reserved it;
# valid is the rest of MURA's valid (part 1).  The images are resized by
# mura-resize under GNU parallel, BLOCK paths per process, in order.
#
# MURA is the MURA-v1.1 folder itself; its lists name images as
# "MURA-v1.1/train/...", so mura-resize reads them from ROOT, the folder
# above (set ROOT if the folder is named otherwise).
#
# Every stage writes a real file under a temporary name and renames it when
# complete; when it fails, the temporary file and the stage's previous output
# (made from other inputs) are removed, so nothing is left that looks finished
# (mura-resize stops at the first unreadable image; RESIZE_FLAGS=--skip-bad
# goes on).  A second run does nothing.  Each stage's parameters are kept in
# PREP/NAME.params, a file rewritten only when they change, so the stage's
# outputs depend on them as on any input: SIZE=224 resizes again but keeps
# the split, SPLIT_SEED=1 splits and resizes valid and test again, not train.

MURA          ?= $(error set MURA to the MURA-v1.1 folder, e.g. MURA=/data/MURA-v1.1)
ROOT          ?= $(MURA)/..
PREP          ?= $(or $(OUT),out/preprocess)
SIZE          ?= 320
FIT           ?= stretch
TEST_FRACTION ?= 0.3
SPLIT_SEED    ?= 0
BLOCK         ?= 500
JOBS          ?=
RESIZE_FLAGS  ?=

# The tools of this checkout first, then those installed.
TOP := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))..)
export PATH := $(TOP)/bin:$(PATH)

.DELETE_ON_ERROR:
.PHONY: all clean FORCE

# Recipes run under bash with pipefail, so that a pipe whose first tool
# fails (mura-resize on an unreadable image, say) fails its stage.  This
# holds for the rules of a makefile that includes this one, too.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c

all: $(PREP)/train.mt $(PREP)/valid.mt $(PREP)/test.mt

# $(call params,FILE,TEXT): make FILE hold TEXT, touching it only when it
# holds something else, and expand to its name.  Done while the makefile is
# read, so that an unchanged stage leaves make nothing to do.  A dry run
# (make -n) writes nothing: a stage whose parameters would change also
# depends on FORCE then, so that make -n shows its recipe, and the file
# keeps its old text (rewriting it would make the next real make rebuild,
# or delete, what is finished).
DRY_RUN = $(findstring n,$(firstword -$(MAKEFLAGS)))
params = $(shell f='$(1)' && \
	if [ "$$(cat "$$f" 2>/dev/null)" = '$(strip $(2))' ]; then echo "$$f"; \
	elif [ -n '$(DRY_RUN)' ]; then echo "$$f FORCE"; \
	else mkdir -p '$(dir $(1))' && printf '%s\n' '$(strip $(2))' >"$$f" && echo "$$f"; fi)
FORCE:
SPLIT_PARAMS  := $(call params,$(PREP)/split.params,fraction=$(TEST_FRACTION) seed=$(SPLIT_SEED))
RESIZE_PARAMS := $(call params,$(PREP)/resize.params,root=$(ROOT) size=$(SIZE) fit=$(FIT) $(RESIZE_FLAGS))

SPLIT  = mura-split --fraction $(TEST_FRACTION) --seed $(SPLIT_SEED)
RESIZE = parallel --pipe -k -N $(BLOCK) $(if $(JOBS),-j $(JOBS)) --halt now,fail=1 \
         mura-resize --root '$(ROOT)' --size $(SIZE) --fit $(FIT) $(RESIZE_FLAGS)

$(PREP)/valid_paths.csv: $(MURA)/valid_image_paths.csv $(SPLIT_PARAMS)
	$(SPLIT) --part 1 <$< >$@.tmp || { rm -f $@.tmp $@; exit 1; }
	mv $@.tmp $@

$(PREP)/test_paths.csv: $(MURA)/valid_image_paths.csv $(SPLIT_PARAMS)
	$(SPLIT) --part 2 <$< >$@.tmp || { rm -f $@.tmp $@; exit 1; }
	mv $@.tmp $@

$(PREP)/train.mt: $(MURA)/train_image_paths.csv $(RESIZE_PARAMS)
	$(RESIZE) <$< >$@.tmp || { rm -f $@.tmp $@; exit 1; }
	mv $@.tmp $@

$(PREP)/valid.mt: $(PREP)/valid_paths.csv $(RESIZE_PARAMS)
	$(RESIZE) <$< >$@.tmp || { rm -f $@.tmp $@; exit 1; }
	mv $@.tmp $@

$(PREP)/test.mt: $(PREP)/test_paths.csv $(RESIZE_PARAMS)
	$(RESIZE) <$< >$@.tmp || { rm -f $@.tmp $@; exit 1; }
	mv $@.tmp $@

clean::
	rm -f $(addprefix $(PREP)/,train.mt valid.mt test.mt valid_paths.csv test_paths.csv \
	      split.params resize.params)
