#!/bin/sh
# report.sh - the parts of a run's HTML report that pipelines/mura.mk's report
# stage makes, with the tools of this project and POSIX sh and awk:
#
#   sh report.sh operating run=OUT aggregate=A points='sens=0.9 spec=0.95'
#       OUT/report/operating.tsv: per operating point and type, the threshold
#       chosen on OUT/valid.scores.tsv (mura-kappa --operating-point) and what
#       it gives there and on OUT/test.scores.tsv.
#   sh report.sh gallery run=OUT root=ROOT size=S fit=F aggregate=A n=N \
#       [thresholds=FILE] [layer=L] [method=M]
#       OUT/report/gallery/: the test studies called wrongly and rightly, per
#       type: false positives and false negatives, the most confident first,
#       then true positives and true negatives; at most N studies per type and
#       kind; each image of them resized again from ROOT as preprocess.mk
#       did, its Grad-CAM overlay (mura-cam --png, with the run's first model),
#       and gallery.tsv listing them.
#   sh report.sh page run=OUT prep=PREP mura=MURA top=TOP
#       OUT/report/index.html: one static page (HTML and CSS, nothing fetched)
#       of what OUT/report holds: the metrics beside the MURA baseline and the
#       radiologists, operating points, ROC, calibration and training curves,
#       the galleries, and the run's provenance.
#
# Every file is written under a temporary name and renamed when complete; the
# gallery is made in a folder of its own and swapped in.  Errors go to stderr
# as "report.sh: what", and the exit status is 1.
set -eu

me=report.sh
die() { printf '%s: %s\n' "$me" "$*" >&2; exit 1; }

[ $# -ge 1 ] || die "usage: report.sh operating|gallery|page name=value..."
cmd=$1; shift
run='' prep='' mura='' top='' root='' size='' fit='' aggregate=mean n=4 thresholds='' layer='' method=gradcam
points='sens=0.9 spec=0.95'
for a; do
	case $a in
	run=*) run=${a#run=} ;;
	prep=*) prep=${a#prep=} ;;
	mura=*) mura=${a#mura=} ;;
	top=*) top=${a#top=} ;;
	root=*) root=${a#root=} ;;
	size=*) size=${a#size=} ;;
	fit=*) fit=${a#fit=} ;;
	aggregate=*) aggregate=${a#aggregate=} ;;
	n=*) n=${a#n=} ;;
	thresholds=*) thresholds=${a#thresholds=} ;;
	layer=*) layer=${a#layer=} ;;
	method=*) method=${a#method=} ;;
	points=*) points=${a#points=} ;;
	*) die "unknown argument '$a'" ;;
	esac
done
[ -n "$run" ] || die "run= is missing"
rep=$run/report
tmp=.tmp.$$
trap 'rm -rf "$rep"/*"$tmp"' EXIT
trap 'exit 1' HUP INT TERM

# ---- operating points ----
operating() {
	mkdir -p "$rep"
	out=$rep/operating.tsv$tmp
	printf 'point\ttype\tthreshold\tvalid_sensitivity\tvalid_specificity\ttest_sensitivity\ttest_specificity\ttest_kappa\ttest_studies\tnote\n' >"$out"
	for p in $points; do
		# The TSV's columns: 1 type, 2 studies, 5 threshold, 6 kappa, 12
		# sensitivity, 15 specificity, 31 note.
		mura-kappa --aggregate "$aggregate" --bootstrap 0 -u "$run/valid.scores.tsv" \
			--operating-point "$p" -f tsv "$run/valid.scores.tsv" >"$rep/opv$tmp"
		mura-kappa --aggregate "$aggregate" --bootstrap 0 -u "$run/valid.scores.tsv" \
			--operating-point "$p" -f tsv "$run/test.scores.tsv" 2>/dev/null >"$rep/opt$tmp"
		awk -F '\t' -v OFS='\t' -v p="$p" 'FNR == 1 { next }
			NR == FNR { vs[$1] = $12; vp[$1] = $15; next }
			{ print p, $1, $5, ($1 in vs ? vs[$1] : "n/a"), ($1 in vp ? vp[$1] : "n/a"), $12, $15, $6, $2, $31 }' \
			"$rep/opv$tmp" "$rep/opt$tmp" >>"$out"
	done
	rm -f "$rep/opv$tmp" "$rep/opt$tmp"
	mv "$out" "$rep/operating.tsv"
}

# ---- galleries ----
gallery() {
	[ -n "$root" ] && [ -n "$size" ] && [ -n "$fit" ] || die "gallery: root=, size= and fit= are needed"
	[ -s "$run/test.scores.tsv" ] || die "$run/test.scores.tsv: missing or empty"
	model=$(sed -n 1p "$run/trained")
	[ -n "$model" ] || die "$run/trained: no model"
	g=$rep/gallery$tmp
	rm -rf "$g"
	mkdir -p "$g"
	# Studies from the image rows (a study's probability as mura-kappa makes
	# it: the mean in the rows' order, or the maximum), called with the
	# report's thresholds; per type and kind, the first n by confidence.
	awk -F '\t' -v OFS='\t' -v agg="$aggregate" -v thrfile="$thresholds" -v n="$n" '
		BEGIN {
			if (thrfile != "")
				while ((getline line < thrfile) > 0) {
					split(line, f, "\t")
					if (f[1] != "type") thr[f[1]] = f[2] + 0
				}
		}
		NR == 1 { next }
		{
			k = $2 SUBSEP $3 SUBSEP $4
			if (!(k in cnt)) { order[++nk] = k; lab[k] = $6; sum[k] = 0; mx[k] = $7 + 0 }
			cnt[k]++; sum[k] += $7; if ($7 + 0 > mx[k]) mx[k] = $7 + 0
			img[k, cnt[k]] = $1 "\t" $7
		}
		END {
			for (i = 1; i <= nk; i++) {
				k = order[i]; split(k, f, SUBSEP)
				p = agg == "max" ? mx[k] : sum[k] / cnt[k]
				t = f[1] in thr ? thr[f[1]] : 0.5
				call = p > t
				kind = call ? (lab[k] ? "TP" : "FP") : (lab[k] ? "FN" : "TN")
				# The most confident first: the highest probability of a
				# call abnormal, the lowest of a call normal.
				key = call ? 1 - p : p
				printf "%s\t%s\t%.17g\t%s\t%s\t%.17g\t%s", f[1], kind, key, f[2], f[3], p, lab[k]
				for (j = 1; j <= cnt[k]; j++) printf "\t%s", img[k, j]
				printf "\n"
			}
		}' "$run/test.scores.tsv" |
	sort -t "$(printf '\t')" -k1,1 -k2,2 -k3,3g -k4,4n -k5,5n |
	awk -F '\t' -v OFS='\t' -v n="$n" '
		{ line[NR] = $0; tot[$1, $2]++ }
		END {
			for (i = 1; i <= NR; i++) {
				split(line[i], f, "\t")
				r = ++rank[f[1], f[2]]
				if (r > n) continue
				for (j = 8; j in f; j += 2)
					print f[1], f[2], r, tot[f[1], f[2]], f[4], f[5], f[6], f[7], f[j], f[j + 1]
			}
		}' >"$g/selected.tsv"
	cut -f 9 "$g/selected.tsv" >"$g/paths.csv"
	if [ -s "$g/paths.csv" ]; then
		mura-resize --root "$root" --size "$size" --fit "$fit" <"$g/paths.csv" >"$g/selected.mt"
		mura-cam --model "$model" --method "$method" ${layer:+--layer "$layer"} --png "$g" \
			--tsv "$g/cam.tsv" --out /dev/null "$g/selected.mt"
	else
		printf 'path\ttype\tlabel\tprob\tpeak_x\tpeak_y\toverlay\n' >"$g/cam.tsv"
	fi
	# gallery.tsv: the selection with each image's overlay and the map's model.
	awk -F '\t' -v OFS='\t' -v model="$model" '
		BEGIN { print "type", "kind", "rank", "of", "patient", "study", "study_prob", "label", "path", "image_prob", "overlay", "model" }
		NR == FNR { if (FNR > 1) ov[$1] = $7; next }
		{ print $0, ($9 in ov ? ov[$9] : ""), model }' "$g/cam.tsv" "$g/selected.tsv" >"$g/gallery.tsv"
	rm -f "$g/selected.tsv" "$g/paths.csv" "$g/selected.mt" "$g/cam.tsv"
	[ ! -d "$rep/gallery" ] || mv "$rep/gallery" "$rep/gallery.old$tmp"
	mv "$g" "$rep/gallery"
}

# ---- the page ----

# Text as HTML: & < > " escaped.
esc() { sed 's/&/\&amp;/g; s/</\&lt;/g; s/>/\&gt;/g; s/"/\&quot;/g'; }

# An awk program's functions for the tables: esc(s), url(s) (a relative
# link, every byte but [A-Za-z0-9._/-] percent-encoded) and num(s) (three
# decimals, n/a kept).
AWK_LIB='
function esc(s) { gsub(/&/, "\\&amp;", s); gsub(/</, "\\&lt;", s); gsub(/>/, "\\&gt;", s); gsub(/"/, "\\&quot;", s); return s }
function url(s,   i, c, o) {
	if (!("A" in ORD)) for (i = 1; i < 256; i++) ORD[sprintf("%c", i)] = i
	o = ""
	for (i = 1; i <= length(s); i++) {
		c = substr(s, i, 1)
		o = o (c ~ /[A-Za-z0-9._\/-]/ ? c : sprintf("%%%02X", ORD[c]))
	}
	return o
}
function num(s) { return s == "n/a" || s == "" ? "n/a" : sprintf("%.3f", s) }
function ci(lo, hi) { return lo == "n/a" ? "" : "<br><span class=\"ci\">[" num(lo) ", " num(hi) "]</span>" }
'

# A mura-kappa TSV report as an HTML table: the metrics, then the MURA
# baseline's and the radiologists' kappa, then the note.
metrics_table() {
	awk -F '\t' "$AWK_LIB"'
		NR == 1 { print "<div class=\"scroll\"><table class=\"metrics\">\n<thead><tr><th>type</th><th>studies</th><th>abnormal</th><th>threshold</th><th>kappa</th><th>AUC</th><th>sens</th><th>spec</th><th>acc</th><th>F1</th><th>TP</th><th>FP</th><th>TN</th><th>FN</th><th class=\"ref\">Stanford<br>baseline</th><th class=\"ref\">worst<br>radiologist</th><th class=\"ref\">best<br>radiologist</th><th>note</th></tr></thead>\n<tbody>"; next }
		{
			cls = $31 != "" ? " class=\"warn\"" : ($1 == "all" ? " class=\"all\"" : "")
			printf "<tr%s><th>%s</th><td>%s</td><td>%s</td><td>%s</td>", cls, esc($1), $2, $3, $5 == "n/a" ? "per type" : num($5)
			printf "<td>%s%s</td><td>%s%s</td>", num($6), ci($7, $8), num($9), ci($10, $11)
			printf "<td>%s</td><td>%s</td><td>%s</td><td>%s</td>", num($12), num($15), num($18), num($21)
			printf "<td>%s</td><td>%s</td><td>%s</td><td>%s</td>", $24, $25, $26, $27
			printf "<td class=\"ref\">%s</td><td class=\"ref\">%s</td><td class=\"ref\">%s</td>", num($28), num($29), num($30)
			printf "<td class=\"note\">%s</td></tr>\n", esc($31)
		}
		END { print "</tbody>\n</table></div>" }' "$1"
}

# The lines of a mura-kappa Markdown report before its table, and the
# footnote after it, as paragraphs.
md_head() { sed '/^$/q' "$1" | sed '/^$/d' | esc | sed 's/^/<p class="small">/; s/$/<\/p>/'; }
md_foot() { sed -n '/^note:/,$p' "$1" | esc | tr '\n' ' ' | sed 's/^\(..*\)$/<p class="small warn">\1<\/p>\n/'; }

operating_table() {
	awk -F '\t' "$AWK_LIB"'
		NR == 1 { print "<div class=\"scroll\"><table class=\"metrics\">\n<thead><tr><th>operating point</th><th>type</th><th>threshold (chosen on valid)</th><th>valid sens</th><th>valid spec</th><th>test sens</th><th>test spec</th><th>test kappa</th><th>test studies</th><th>note</th></tr></thead>\n<tbody>"; next }
		{
			cls = $10 != "" ? " class=\"warn\"" : ($2 == "all" ? " class=\"all\"" : "")
			printf "<tr%s><td>%s</td><th>%s</th><td>%s</td>", cls, esc($1), esc($2), $3 == "n/a" ? "per type" : num($3)
			printf "<td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td class=\"note\">%s</td></tr>\n", num($4), num($5), num($6), num($7), num($8), $9, esc($10)
		}
		END { print "</tbody>\n</table></div>" }' "$1"
}

calibration_table() {
	awk -F '\t' "$AWK_LIB"'
		NR == 1 { print "<div class=\"scroll\"><table class=\"metrics\">\n<thead><tr><th>type</th><th>studies</th><th>Brier</th><th>ECE</th><th>note</th></tr></thead>\n<tbody>"; next }
		{ printf "<tr%s><th>%s</th><td>%s</td><td>%.4f</td><td>%.4f</td><td class=\"note\">%s</td></tr>\n", $5 != "" ? " class=\"warn\"" : "", esc($1), $2, $3, $4, esc($5) }
		END { print "</tbody>\n</table></div>" }' "$1"
}

gallery_html() {
	awk -F '\t' "$AWK_LIB"'
		BEGIN {
			nt = split("elbow finger forearm hand humerus shoulder wrist unknown", types, " ")
			split("FP FN TP TN", kinds, " ")
			name["FP"] = "false positives (normal, called abnormal)"
			name["FN"] = "false negatives (abnormal, called normal)"
			name["TP"] = "true positives"; name["TN"] = "true negatives"
		}
		NR == 1 { next }
		{
			k = $1 SUBSEP $2
			if (!(k in nstudy)) nstudy[k] = 0
			total[k] = $4
			s = k SUBSEP $3
			if (!(s in seen)) { seen[s] = 1; nstudy[k]++; head[s] = sprintf("patient %s, study %s: p = %.3f", $5, $6, $7) }
			m = split($9, parts, "/")
			body[s] = body[s] sprintf("<figure><img src=\"gallery/%s\" alt=\"%s\" title=\"%s\" width=\"160\" height=\"160\"><figcaption>%s: p = %.3f</figcaption></figure>", url($11), esc($9), esc($9), esc(parts[m]), $10)
			present[$1] = 1
		}
		END {
			for (i = 1; i <= nt; i++) {
				t = types[i]
				if (!(t in present)) continue
				printf "<h3 id=\"gallery-%s\">%s</h3>\n", t, t
				for (j = 1; j <= 4; j++) {
					k = t SUBSEP kinds[j]
					if (!(k in nstudy)) { printf "<h4>%s: none</h4>\n", name[kinds[j]]; continue }
					printf "<h4>%s: %d of %d stud%s shown</h4>\n", name[kinds[j]], nstudy[k], total[k], total[k] == 1 ? "y" : "ies"
					for (r = 1; (k SUBSEP r) in seen; r++)
						printf "<div class=\"study %s\"><p>%s</p><div class=\"imgs\">%s</div></div>\n", kinds[j], head[k SUBSEP r], body[k SUBSEP r]
				}
			}
		}' "$1"
}

# A figure of an image beside the page, when it is there.
fig() { # FILE CAPTION [CLASS]
	[ -s "$rep/$1" ] || return 0
	printf '<figure><img src="%s" alt="%s"%s><figcaption>%s</figcaption></figure>\n' "$1" "$2" \
		"${3:+ class=\"$3\"}" "$2"
}

page() {
	[ -n "$prep" ] && [ -n "$mura" ] || die "page: prep= and mura= are needed"
	for f in metrics.tsv metrics.md valid.tsv valid.md; do
		[ -s "$rep/$f" ] || die "$rep/$f: missing or empty"
	done
	out=$rep/index.html$tmp
	now=$(date -u '+%Y-%m-%d %H:%M:%S UTC')
	{
		cat <<EOF
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mura report: $(printf '%s' "$run" | esc)</title>
<style>
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5em auto; max-width: 1400px; padding: 0 1em; color: #1a1a1a; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; margin-top: 2em; } h4 { margin: 1em 0 0.3em; }
nav a { margin-right: 1em; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: 0.5em 0; font-variant-numeric: tabular-nums; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 2px 4px; text-align: right; white-space: nowrap; }
thead th { background: #f2f2f2; text-align: center; }
tbody th { text-align: left; }
td.note { text-align: left; color: #8a4b00; white-space: normal; min-width: 7em; }
tr.warn td, tr.warn th { color: #777; } tr.warn td.note { color: #8a4b00; }
tr.all th, tr.all td { font-weight: bold; border-top: 2px solid #999; }
.ref { background: #f7f7fb; }
.ci { color: #666; font-size: 90%; }
.small { font-size: 90%; color: #444; margin: 0.2em 0; }
.warn { color: #8a4b00; }
.figs { display: flex; flex-wrap: wrap; gap: 1em; }
.figs img { width: 320px; height: auto; border: 1px solid #ddd; }
.figs img.wide { width: 640px; }
figure { margin: 0; } figcaption { font-size: 85%; color: #444; max-width: 320px; overflow-wrap: anywhere; }
.study { display: inline-block; vertical-align: top; border: 1px solid #ddd; border-left: 4px solid #999; margin: 0 0.6em 0.6em 0; padding: 0.3em 0.5em; }
.study p { margin: 0 0 0.3em; font-size: 90%; }
.study.FP, .study.FN { border-left-color: #c0392b; } .study.TP, .study.TN { border-left-color: #2e7d32; }
.imgs { display: flex; gap: 0.4em; }
.imgs figure { width: 160px; } .imgs img { image-rendering: pixelated; border: 1px solid #ccc; }
.imgs figcaption { font-size: 75%; max-width: 160px; }
pre { background: #f7f7f7; padding: 0.5em; overflow-x: auto; font-size: 85%; }
dl { display: grid; grid-template-columns: max-content auto; gap: 0.2em 1em; } dt { font-weight: bold; } dd { margin: 0; }
</style>
</head>
<body>
<h1>mura report</h1>
<p class="small">run <code>$(printf '%s' "$run" | esc)</code>, page made $now</p>
<nav><a href="#metrics">metrics</a><a href="#operating">operating points</a><a href="#roc">ROC</a><a href="#calibration">calibration</a><a href="#training">training</a><a href="#gallery">galleries</a><a href="#provenance">provenance</a></nav>

<h2 id="metrics">Study-level metrics on the test split</h2>
EOF
		md_head "$rep/metrics.md"
		metrics_table "$rep/metrics.tsv"
		md_foot "$rep/metrics.md"
		cat <<'EOF'
<p class="small">Stanford baseline, worst and best radiologist: the study-level kappa of the MURA
paper's DenseNet169 and of its radiologists (Rajpurkar et al., arXiv:1712.06957; the seed paper's
Table 1), on the official test set, not on this split.</p>
<h3>On the validation split (the models were chosen on it)</h3>
EOF
		md_head "$rep/valid.md"
		metrics_table "$rep/valid.tsv"
		md_foot "$rep/valid.md"

		printf '\n<h2 id="operating">Operating points</h2>\n'
		if [ -f "$rep/operating.tsv" ] && [ "$(wc -l <"$rep/operating.tsv")" -gt 1 ]; then
			printf '<p class="small">Per type, the threshold chosen on the validation split for a target sensitivity (sens=T: the highest threshold that reaches it) or specificity (spec=T: the lowest), and what it gives on the test split (mura-kappa --operating-point).</p>\n'
			operating_table "$rep/operating.tsv"
		else
			printf '<p>none asked for (OPERATING_POINTS is empty)</p>\n'
		fi

		printf '\n<h2 id="roc">ROC curves (test split)</h2>\n<div class="figs">\n'
		for t in all elbow finger forearm hand humerus shoulder wrist unknown; do
			fig "roc/roc-$t.png" "ROC, $t"
		done
		printf '</div>\n\n<h2 id="calibration">Calibration (test split)</h2>\n<div class="figs">\n'
		fig calibration/reliability.png "reliability diagram, every study: mean predicted probability against the fraction abnormal, bins of 0.1"
		printf '<div>\n'
		[ ! -s "$rep/calibration/calibration.tsv" ] || calibration_table "$rep/calibration/calibration.tsv"
		printf '<p class="small">Brier score: the mean of (p - y)<sup>2</sup>; ECE: the expected calibration error over 10 equal bins.</p>\n</div>\n</div>\n'
		printf '\n<h2 id="training">Training</h2>\n<div class="figs">\n'
		fig curves.png "loss per epoch (training and validation), validation AUC and kappa" wide
		printf '</div>\n'

		printf '\n<h2 id="gallery">Galleries (test split)</h2>\n'
		if [ -f "$rep/gallery/gallery.tsv" ] && [ "$(wc -l <"$rep/gallery/gallery.tsv")" -gt 1 ]; then
			model=$(awk -F '\t' 'NR == 2 { print $12; exit }' "$rep/gallery/gallery.tsv")
			printf '<p class="small">Per type: the studies called wrongly, the most confident first (false positives by the highest probability, false negatives by the lowest), then those called rightly; at most %s studies of each kind, every image of them with its Grad-CAM map over it (mura-cam, %s%s, model <code>%s</code>). p: the ensemble'"'"'s probability of abnormality of the image; a study'"'"'s is the %s of its images'"'"'.</p>\n' \
				"$n" "$method" "${layer:+, layer $layer}" "$(printf '%s' "$model" | esc)" "$aggregate"
			printf '<nav>'
			cut -f 1 "$rep/gallery/gallery.tsv" | sed 1d | uniq | while read -r t; do printf '<a href="#gallery-%s">%s</a>' "$t" "$t"; done
			printf '</nav>\n'
			gallery_html "$rep/gallery/gallery.tsv"
		else
			printf '<p>none (GALLERY=%s)</p>\n' "$n"
		fi

		printf '\n<h2 id="provenance">Provenance</h2>\n<dl>\n'
		printf '<dt>run</dt><dd><code>%s</code></dd>\n' "$(cd "$run" && pwd | esc)"
		printf '<dt>data</dt><dd><code>%s</code>: %s training images, %s validation and %s test images</dd>\n' \
			"$(cd "$mura" && pwd | esc)" "$(wc -l <"$mura/train_image_paths.csv" | tr -d ' ')" \
			"$(wc -l <"$prep/valid_paths.csv" | tr -d ' ')" "$(wc -l <"$prep/test_paths.csv" | tr -d ' ')"
		printf '<dt>preprocessed</dt><dd><code>%s</code></dd>\n' "$(cd "$prep" && pwd | esc)"
		for p in "$prep/split.params" "$prep/resize.params" "$run/train.params" "$run/score.params" \
			"$run/report.params" "$run/page.params"; do
			[ -f "$p" ] && printf '<dt>%s</dt><dd><code>%s</code></dd>\n' "$(basename "$p")" "$(esc <"$p")"
		done
		printf '<dt>made</dt><dd>%s on %s</dd>\n' "$now" "$(uname -srm | esc)"
		if [ -n "$top" ] && command -v git >/dev/null && git -C "$top" rev-parse --git-dir >/dev/null 2>&1; then
			printf '<dt>mura source</dt><dd><code>%s</code> at %s</dd>\n' "$(printf '%s' "$top" | esc)" \
				"$(git -C "$top" describe --always --dirty 2>/dev/null | esc)"
		fi
		printf '<dt>tools</dt><dd>'
		for t in mura-split mura-resize mura-train mura-score mura-kappa mura-cam; do
			printf '<code>%s</code> (%s) ' "$($t --version 2>&1 | esc)" "$(command -v $t | esc)"
		done
		printf '<code>%s</code></dd>\n' "$(gnuplot --version 2>&1 | esc)"
		printf '</dl>\n<h3>Models</h3>\n<p class="small">The ensemble scored (<code>trained</code>); <code>mura-info</code> of each:</p>\n'
		while read -r m; do
			printf '<pre>%s</pre>\n' "$(mura-info "$m" 2>&1 | esc)"
		done <"$run/trained"
		printf '</body>\n</html>\n'
	} >"$out"
	mv "$out" "$rep/index.html"
}

case $cmd in
operating) operating ;;
gallery) gallery ;;
page) page ;;
*) die "unknown command '$cmd' (operating, gallery or page)" ;;
esac
