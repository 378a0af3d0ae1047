#!/usr/bin/env bash
# `make demo-vqa`: synthetic VQA on the demo shapes -> VQA shards -> the demo CLIP fine-tuned with the
# classifier answer head (configs/run/demo-vqa.yaml) -> official VQA accuracy on held-out questions,
# per question type, beside the majority baseline (each question answered with the most frequent
# answer of its question type in the training split). Everything lands under runs/demo-vqa/.
# The towers start from the demo CLIP of `make demo` (runs/demo/clip) when it is there, else from
# scratch. Training is 51,200 questions; 47 minutes on the shared, heavily loaded 2 cores of
# 2026-12-05, an estimated 3 minutes on idle ones, not yet timed (README: The VQA demo).
# When `make demo` has trained its ALBEF (runs/demo/albef), ALBEF VQA (configs/run/demo-albef-vqa.yaml:
# the answer decoder started from its fusion layers) is fine-tuned from it too, 600 steps of 32
# (about 2 minutes), and its accuracy printed beside the classifier's.
set -euo pipefail
cd "$(dirname "$0")/.."
VLT=${VLT:-build/vlt}
OUT=runs/demo-vqa
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc)}

echo "== 1. synthetic VQA: 4,000 training and 500 held-out pictures, 3 questions each, ten annotators' answers"
rm -rf "$OUT/data"
$VLT synth --vqa --out "$OUT/data/syn-train" --samples 4000 --image-size 64 --seed 1
$VLT synth --vqa --out "$OUT/data/syn-val" --samples 500 --image-size 64 --seed 1 --first-index 1000000
$VLT shards --vqa-questions "$OUT/data/syn-train/questions.json" --vqa-annotations "$OUT/data/syn-train/annotations.json" \
    --images "$OUT/data/syn-train/images" --out "$OUT/data/train" --shard-size 1000 --vqa-vocab 3129
$VLT shards --vqa-questions "$OUT/data/syn-val/questions.json" --vqa-annotations "$OUT/data/syn-val/annotations.json" \
    --images "$OUT/data/syn-val/images" --out "$OUT/data/val" --shard-size 750 --prefix val-
VAL="$OUT/data/val/val-{00000..00001}.tar"

CLIP=runs/demo/clip/checkpoints/latest/model.safetensors
INIT=()
if [ -f "$CLIP" ]; then
    echo "== 2. fine-tune the demo CLIP ($CLIP) with the classifier head (configs/run/demo-vqa.yaml)"
    INIT=(--set "model.init_from=$CLIP")
else
    # a random question tower cannot stay locked: it is trained with the rest
    echo "== 2. no demo CLIP (make demo trains one): train the CLIP towers and the classifier head from scratch"
    INIT=(--set model.lock_text=false)
fi
rm -rf "$OUT/run"
time $VLT train --config configs/run/demo-vqa.yaml "${INIT[@]}"

ALBEF=runs/demo/albef/checkpoints/latest/model.safetensors
rm -rf "$OUT/albef"
if [ -f "$ALBEF" ]; then
    echo "== 2b. fine-tune the demo ALBEF ($ALBEF) as ALBEF VQA (configs/run/demo-albef-vqa.yaml)"
    time $VLT train --config configs/run/demo-albef-vqa.yaml --set "model.init_from=$ALBEF"
else
    echo "== 2b. no demo ALBEF (make demo trains one): ALBEF VQA left out"
fi

echo "== 3. held-out answers (official results format), scored by the official accuracy, beside the majority baseline"
$VLT vqa --checkpoint "$OUT/run" --shards "$VAL" --out "$OUT/results.json"
$VLT vqa --majority-of "$OUT/data/train/{00000..00011}.tar" --shards "$VAL" --out "$OUT/majority.json"
$VLT eval vqa --pred "$OUT/results.json" --refs "$OUT/data/syn-val/annotations.json" --out "$OUT/eval.json" > "$OUT/eval.txt"
$VLT eval vqa --pred "$OUT/majority.json" --refs "$OUT/data/syn-val/annotations.json" > "$OUT/majority.txt"
TABLES=("$OUT/eval.txt")
HEAD="classifier"
if [ -d "$OUT/albef" ]; then
    $VLT vqa --checkpoint "$OUT/albef" --shards "$VAL" --out "$OUT/albef-results.json"
    $VLT eval vqa --pred "$OUT/albef-results.json" --refs "$OUT/data/syn-val/annotations.json" \
        --out "$OUT/albef-eval.json" > "$OUT/albef-eval.txt"
    TABLES+=("$OUT/albef-eval.txt")
    HEAD="classifier ALBEF-VQA"
fi
TABLES+=("$OUT/majority.txt")
# the tables side by side: type, questions, each model's accuracy, the majority's accuracy
echo
for f in "${TABLES[@]}"; do tail -n +2 "$f" > "$f.body"; done
paste -d'\t' "${TABLES[@]/%/.body}" |
    awk -F'\t' -v head="$HEAD majority" '{
        n = split($1, f, " "); h = split(head, hd, " ")
        if (f[n] == "accuracy") {
            printf "  %-24s %9s", f[1] " " f[2], "questions"; for (k = 1; k <= h; k++) printf " %11s", hd[k]; printf "\n"; next }
        name = f[1]; for (i = 2; i <= n - 2; i++) name = name " " f[i]
        printf "  %-24s %9s", name, f[n - 1]
        for (k = 1; k <= NF; k++) { m = split($k, g, " "); printf " %11s", g[m] }
        printf "\n" }'
rm -f "${TABLES[@]/%/.body}"
echo
mkdir -p "$OUT/report"
$VLT eval checkpoint --checkpoint "$OUT/run" --shards "$VAL" --html "$OUT/report/eval" >/dev/null
echo "== done: $OUT/run (config.yaml, answer_vocab.json, checkpoints/, metrics.jsonl); answers $OUT/results.json;"
echo "   the questions per question type, wrong answers first: $OUT/report/eval/index.html"
