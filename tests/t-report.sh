#!/bin/sh
# The report stage of pipelines/mura.mk (pipelines/report.sh) on a tiny
# generated run: the page and its parts are made, incrementally; the
# galleries hold the studies mura-kappa counted, in order and bounded; the
# page fetches nothing; and headless Chromium opens it, finds every table
# and every image loaded (a negative control proves the check can fail),
# and takes a screenshot.
. "$(dirname "$0")/lib.sh"

cd "$T" || exit 1
mura-synth --out data --patients 40 --seed 4 >/dev/null 2>&1
MK="make --no-print-directory -f $MURA_TOP/pipelines/mura.mk MURA=$T/data/MURA-v1.1 OUT=$T/run \
	SIZE=32 ARCH=resnet18 EPOCHS=1 BATCH=16 LR=0.001 KEEP_TOP=2 BOOTSTRAP=50 CAM_LAYER=layer2"

$MK GALLERY=1 >log1 2>&1
check_eq "the pipeline makes the page" "$?" 0
R=run/report
for f in index.html metrics.tsv valid.tsv operating.tsv calibration/calibration.tsv \
	calibration/reliability.png gallery/gallery.tsv curves.png roc/roc-all.png; do
	check "report file $f exists" test -s "$R/$f"
done
check_eq "nothing is left under a temporary name" "$(find run -name '*.tmp*' | wc -l)" 0

# ---- the galleries against mura-kappa's counts ----
# Per type and kind, the total gallery.tsv gives is the type's TP, FP, TN or
# FN in metrics.tsv (columns 24 to 27), counted there by mura-kappa.
check_eq "gallery totals per type and kind are mura-kappa's confusion counts" \
	"$(awk -F '\t' 'NR > 1 { print $1, $2, $4 }' $R/gallery/gallery.tsv | sort -u)" \
	"$(awk -F '\t' 'NR > 1 && $1 != "all" {
		if ($24) print $1, "TP", $24; if ($25) print $1, "FP", $25
		if ($26) print $1, "TN", $26; if ($27) print $1, "FN", $27 }' $R/metrics.tsv | sort)"
check_eq "at most GALLERY=1 study per type and kind" \
	"$(awk -F '\t' 'NR > 1 && $3 > 1' $R/gallery/gallery.tsv | wc -l)" 0
check "... and some kind has more studies, so the bound was used" \
	awk -F '\t' 'NR > 1 && $4 > 1 { found = 1 } END { exit !found }' $R/gallery/gallery.tsv
check_eq "every gallery image has its overlay" \
	"$(awk -F '\t' 'NR > 1 { print "'$R'/gallery/" $11 }' $R/gallery/gallery.tsv | xargs ls 2>&1 >/dev/null | wc -l)" 0

# ---- incremental, like the rest ----
stamp() { ls -l --time-style=+%s.%N "$@" | awk '{print $6, $7}'; }
before=$(stamp run/model.safetensors run/test.scores.tsv $R/metrics.md)
page=$(stamp $R/gallery/gallery.tsv $R/index.html)
$MK GALLERY=1 >log2 2>&1
check_eq "a second make does nothing" "$(cat log2)" "make: Nothing to be done for 'all'."
$MK GALLERY=2 >log3 2>&1
check_eq "GALLERY=2: the page again, without training, scoring or the metrics again" \
	"$?:$(stamp run/model.safetensors run/test.scores.tsv $R/metrics.md)" "0:$before"
check "... with a new gallery and page" test "$(stamp $R/gallery/gallery.tsv $R/index.html)" != "$page"
check_eq "... of at most 2 studies per type and kind" \
	"$(awk -F '\t' 'NR > 1 && $3 > 2' $R/gallery/gallery.tsv | wc -l)" 0
check "... and some of them second" awk -F '\t' 'NR > 1 && $3 == 2 { found = 1 } END { exit !found }' \
	$R/gallery/gallery.tsv
check_eq "... the most confident first: FP and TP by falling, FN and TN by rising probability" \
	"$(awk -F '\t' 'NR > 1 { k = $1 " " $2; if (k == last && ($2 ~ /P$/ ? $7 > p : $7 < p)) print k, $3
		last = k; p = $7 }' $R/gallery/gallery.tsv)" ""

# ---- the page: nothing fetched, every file it names beside it ----
check_eq "the page names no remote resource" \
	"$(grep -Eoc '(src|href)="[a-z]+:' $R/index.html)" 0
srcs=$(grep -o 'src="[^"]*"' $R/index.html | sed 's/^src="//; s/"$//')
check_eq "every image it names is there" \
	"$(for s in $srcs; do [ -s "$R/$s" ] || echo "$s"; done)" ""
nimg=$(printf '%s\n' "$srcs" | grep -c .)
want=$(( $(ls $R/roc/*.png | wc -l) + 2 + $(sed 1d $R/gallery/gallery.tsv | wc -l) ))
check_eq "its images: the ROC curves, reliability, training curves and the gallery" "$nimg" "$want"
check "its provenance shows the models' settings (mura-info)" grep -q "^model *resnet18, head fc" $R/index.html
check "... and the data folder" grep -qF "$T/data/MURA-v1.1" $R/index.html

# ---- in a browser ----
if ! command -v chromium >/dev/null; then
	skip "the page in headless Chromium" "chromium not installed (apt-get install chromium; make deps does)"
	exit 0
fi
# A copy of the page beside it, with a script that counts, once everything
# has loaded, the images with a size and the tables, into the DOM.
check_script='<script>addEventListener("load", function () {
  var im = document.images, ok = 0, bad = [];
  for (var i = 0; i < im.length; i++)
    if (im[i].complete && im[i].naturalWidth > 0) ok++; else bad.push(im[i].getAttribute("src"));
  var p = document.createElement("pre"); p.id = "mura-check";
  p.textContent = "images=" + im.length + " loaded=" + ok + " tables=" + document.querySelectorAll("table").length +
    " rows=" + document.querySelectorAll("tbody tr").length + " sections=" + document.querySelectorAll("h2[id]").length +
    " bad=" + bad.join(",");
  document.body.appendChild(p);
});</script>'
inject() { # PAGE OUT [EXTRA HTML]
	awk -v s="$check_script${3:-}" '/^<\/body>/ { print s } { print }' "$1" >"$2"
}
chrome() {
	chromium --headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking \
		--user-data-dir="$T/chromium" --virtual-time-budget=5000 "$@" 2>>chromium.err
}
# One image more that cannot load: the negative control, in the same run.
inject $R/index.html $R/check.html '<img src="gallery/missing.png" alt="">'
chrome --dump-dom "file://$T/$R/check.html" >dom.html
got=$(sed -n 's/.*<pre id="mura-check">\([^<]*\)<\/pre>.*/\1/p' dom.html)
ntab=$(grep -c '<table' $R/index.html)
nrow=$(awk -F '\t' 'FNR > 1 { n++ } END { print n }' $R/metrics.tsv $R/valid.tsv $R/operating.tsv \
	$R/calibration/calibration.tsv)
check_eq "Chromium: every image of the page loaded (not the control), every table and section there" \
	"$got" "images=$((nimg + 1)) loaded=$nimg tables=$ntab rows=$nrow sections=7 bad=gallery/missing.png"
check_eq "... the four tables: test and validation metrics, operating points, calibration" "$ntab" 4
rm -f $R/check.html
chrome --screenshot="$T/shot.png" --window-size=1200,2000 "file://$T/$R/index.html" >/dev/null
check_eq "Chromium: a screenshot, a PNG of 1200 x 2000" \
	"$(od -An -c -N4 shot.png | tr -d ' '):$(od -An -tu1 -j16 -N8 shot.png | tr -s ' ' | sed 's/^ //')" \
	"211PNG:0 0 4 176 0 0 7 208"
check "... not blank (over 20 kB)" test "$(wc -c <shot.png)" -gt 20000
if [ -n "${MURA_REPORT_SHOT:-}" ]; then cp shot.png "$MURA_REPORT_SHOT"; fi
