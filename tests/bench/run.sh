#!/bin/sh
# run.sh - `make bench`: every benchmark in turn (not part of `make check`:
# benchmarks print figures and judge nothing).
#
#   sh tests/bench/run.sh
set -eu
DIR=$(dirname "$0")
sh "$DIR/engine.sh"
sh "$DIR/pipeline.sh"
sh "$DIR/scaling.sh"
