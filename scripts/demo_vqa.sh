#!/usr/bin/env bash
# `make demo-vqa`: synthetic VQA on the demo shapes -> VQA shards -> the demo CLIP fine-tuned with the
# classifier answer head (configs/run/demo-vqa.yaml) -> official VQA accuracy on held-out questions,
# per question type, beside the majority baseline (each question answered with the most frequent
# answer of its question type in the training split). Everything lands under runs/demo-vqa/.
# The towers start from the demo CLIP of `make demo` (runs/demo/clip) when it is there, else from
# scratch. Training is 51,200 questions; 47 minutes on the shared, heavily loaded 2 cores of
# 2026-12-05, an estimated 3 minutes on idle ones, not yet timed (README: The VQA demo).
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

echo "== 3. held-out answers (official results format), scored by the official accuracy, beside the majority baseline"
$VLT vqa --checkpoint "$OUT/run" --shards "$VAL" --out "$OUT/results.json"
$VLT vqa --majority-of "$OUT/data/train/{00000..00011}.tar" --shards "$VAL" --out "$OUT/majority.json"
$VLT eval vqa --pred "$OUT/results.json" --refs "$OUT/data/syn-val/annotations.json" --out "$OUT/eval.json" > "$OUT/eval.txt"
$VLT eval vqa --pred "$OUT/majority.json" --refs "$OUT/data/syn-val/annotations.json" > "$OUT/majority.txt"
# the two tables side by side: type, questions, model accuracy, majority accuracy
echo
paste -d'\t' <(tail -n +2 "$OUT/eval.txt") <(tail -n +2 "$OUT/majority.txt") |
    awk -F'\t' '{ n = split($1, f, " "); m = split($2, g, " ")
                  if (f[n] == "accuracy") { printf "  %-24s %9s %10s %10s\n", f[1] " " f[2], "questions", "model", "majority"; next }
                  name = f[1]; for (i = 2; i <= n - 2; i++) name = name " " f[i]
                  printf "  %-24s %9s %10s %10s\n", name, f[n - 1], f[n], g[m] }'
echo
mkdir -p "$OUT/report"
$VLT eval checkpoint --checkpoint "$OUT/run" --shards "$VAL" --html "$OUT/report/eval" >/dev/null
echo "== done: $OUT/run (config.yaml, answer_vocab.json, checkpoints/, metrics.jsonl); answers $OUT/results.json;"
echo "   the questions per question type, wrong answers first: $OUT/report/eval/index.html"
