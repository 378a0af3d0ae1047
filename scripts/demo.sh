#!/usr/bin/env bash
# `make demo`: synthetic captioned shapes -> webdataset shards -> train a small CLIP, a small CoCa
# and a small ALBEF on the CPU -> held-out retrieval recall@k (ALBEF's also re-ranked by its
# image-text matching head), and BLEU-4 / CIDEr-D of CoCa's greedy captions with a few of them
# next to the true captions. Everything lands under runs/demo/ (data, and a
# run directory per model with config.yaml, checkpoints/, metrics.jsonl, tensorboard/, and the
# HTML reports under report/).
# About 5 minutes on 2 cores (README: The demo); longer when other work shares the cores.
set -euo pipefail
cd "$(dirname "$0")/.."
VLT=${VLT:-build/vlt}
OUT=runs/demo
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc)}

echo "== 1. synthetic data: 8,000 training and 1,000 held-out image-caption pairs (64 px)"
rm -rf "$OUT/data"
$VLT synth --out "$OUT/data/train" --samples 8000 --shard-size 1000 --image-size 64 --seed 1
$VLT synth --out "$OUT/data/val" --samples 1000 --shard-size 500 --image-size 64 --seed 1 \
    --first-index 1000000 --prefix val-

echo "== 2. train a small CLIP (configs/run/demo-clip.yaml, model configs/model/demo-clip.json)"
rm -rf "$OUT/clip"
time $VLT train --config configs/run/demo-clip.yaml

echo "== 3. train a small CoCa captioner (configs/run/demo-coca.yaml, model configs/model/demo-coca.json)"
rm -rf "$OUT/coca"
time $VLT train --config configs/run/demo-coca.yaml

echo "== 4. train a small ALBEF (configs/run/demo-albef.yaml, model configs/model/demo-albef.json): ITC with a"
echo "   feature queue and momentum distillation, ITM on hard negatives, MLM"
rm -rf "$OUT/albef"
time $VLT train --config configs/run/demo-albef.yaml

echo "== 5. reports: each run's curves, and what each model retrieves (CLIP: and where it looked; CoCa: and its captions) on held-out images (HTML, offline)"
$VLT report "$OUT/clip"
$VLT report "$OUT/coca"
$VLT report "$OUT/albef"
$VLT eval checkpoint --checkpoint "$OUT/coca" --shards "$OUT/data/val/val-{00000..00001}.tar" --limit 200 \
    --html "$OUT/coca/report/eval" >/dev/null
$VLT eval checkpoint --checkpoint "$OUT/clip" --shards "$OUT/data/val/val-{00000..00001}.tar" --limit 200 \
    --html "$OUT/clip/report/eval" >/dev/null
$VLT eval checkpoint --checkpoint "$OUT/albef" --shards "$OUT/data/val/val-{00000..00001}.tar" --limit 200 \
    --rerank-k 16 --html "$OUT/albef/report/eval" >/dev/null
echo "   open $OUT/{clip,coca,albef}/report/index.html (curves) and $OUT/{clip,coca,albef}/report/eval/index.html"
echo "   (retrieval, where CLIP looked, CoCa's captions, ALBEF's ITM re-ranking)"

echo "== done: run directories $OUT/clip, $OUT/coca and $OUT/albef (config.yaml, checkpoints/, metrics.jsonl, tensorboard/)"
echo "   continue a run with: ./vlt train --config configs/run/demo-clip.yaml --resume latest --set schedule.steps=1000"
