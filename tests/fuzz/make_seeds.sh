#!/usr/bin/env bash
# make_seeds.sh — writes the committed seed corpora of the fuzz targets that have none of their
# own (tests/fuzz/seeds/NAME/) from the project's fixtures and configs and from small hand-written
# inputs. Run from the repository root; rerun only to change the seeds. The loader positions of
# the state seeds were printed by vlt_loader_position_json for the loader fuzz_state.c builds.
set -euo pipefail
S=tests/fuzz/seeds
w() { mkdir -p "$(dirname "$1")"; printf '%b' "$2" > "$1"; }

# image: first byte = DCT-scaling hint, then the file (every format and mode of the PIL fixtures).
mkdir -p $S/image
for f in tests/data/data/image/*.{jpg,png,webp}; do
  { printf '\x00'; cat "$f"; } > "$S/image/$(basename "$f")"
done
{ printf '\x10'; cat tests/data/data/image/rgb420.jpg; } > $S/image/scaled_rgb420.jpg

# shardspec
w $S/shardspec/range      '/data/shards/{000000..000009}.tar'
w $S/shardspec/join       'a/{0..3}.tar::b/x-{a,b,{c..e}}.tar.zst,c.tar'
w $S/shardspec/step       'd/{10..0..5}.tar::d/{08..10}.tar'
w $S/shardspec/glob       '/nonexistent-dir/*.tar'
w $S/shardspec/typo_range 'd/a{000..0009000900}.tar'
w $S/shardspec/list       '@list\n\na.tar\n# comment\n\nsub/{1..2}.tar\n/abs/c.tar\n'

# state: "STATE\\n--\\nPOSITION"
for k in 0 1 2 3; do
  pos=$(cat "tests/fuzz/seed_src/position$k.json")
  printf '{"step": 7, "epoch": 0, "loader": [%s]}\n--\n%s' "$pos" "$pos" > $S/state/pos$k
done
w $S/state/plain '{"step": 7}\n--\n{}'

# captions: "RESULTS\\n--\\nREFERENCES"
w $S/captions/coco '[{"image_id": 1, "caption": "A cat sits on a mat."}, {"image_id": 2, "caption": "two dogs, running!"}]\n--\n{"images": [{"id": 1}, {"id": 2}], "annotations": [{"image_id": 1, "caption": "a cat on a mat"}, {"image_id": 1, "caption": "The cat is sitting."}, {"image_id": 2, "caption": "Dogs run in a park."}]}'
w $S/captions/subset '[{"image_id": 2, "caption": "dogs"}]\n--\n{"annotations": [{"image_id": 1, "caption": "x"}, {"image_id": 2, "caption": "dogs run"}]}'

# vqa: "PREDICTIONS\\n--\\nREFERENCES"
w $S/vqa/strings '[{"question_id": 1, "answer": "Yes"}, {"question_id": 2, "answer": "two"}]\n--\n{"annotations": [{"question_id": 1, "question_type": "is the", "answer_type": "yes/no", "answers": ["yes","yes","yes","no","no","no","no","no","no","no"]}, {"question_id": 2, "answer_type": "number", "answers": ["2","2","2","2","2","2","2","2","2","2"]}]}'
w $S/vqa/objects '[{"question_id": 5, "answer": "red "}]\n--\n{"annotations": [{"question_id": 5, "answers": [{"answer": "red"}, {"answer": "Red."}, {"answer": "dark red"}]}]}'
w $S/vqa/empty_answer '[{"question_id": 1, "answer": ""}]\n--\n{"annotations": [{"question_id": 1, "answers": ["", "1,000", "x"]}]}'

# ptb: captions separated by NUL bytes
w $S/ptb/plain   'A man riding a wave on top of a surfboard.\0Two dogs (brown and white) run, etc.\0She said "hi" -- and left...'
w $S/ptb/tricky  "It's 3:30 p.m. in the U.S.A.\0gonna wanna :-) http://x.org/a?b=c e-mail@x.com\0\xc3\xa9t\xc3\xa9 \xe2\x80\x9cquoted\xe2\x80\x9d 1/2 \$5"

# safetensors: the checkpoint fixtures written by PyTorch
mkdir -p $S/safetensors
cp tests/data/checkpoints/py_meta.safetensors tests/data/checkpoints/py_mixed.safetensors $S/safetensors/

# model_config: the shipped configs
mkdir -p $S/model_config
for f in tiny-clip tiny-coca demo-clip coca_ViT-B-32; do cp configs/model/$f.json $S/model_config/; done

# run_config: "YAML\\n--\\nSET lines"
mkdir -p $S/run_config
{ cat configs/run/demo-clip.yaml; printf '\n--\noptim.lr=1e-3\ndata.batch_size=8\n'; } > $S/run_config/demo-clip
{ cat configs/run/demo-coca.yaml; printf '\n--\nloss.caption_weight=2\n'; } > $S/run_config/demo-coca

# pack: first byte = source (0 COCO, 1 Karpathy, 2 TSV, 3 folder) and options
w $S/pack/coco      '\x00{"images": [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "b.png"}, {"id": 3, "file_name": "../x.jpg"}], "annotations": [{"image_id": 1, "caption": "a grey square"}, {"image_id": 2, "caption": "  "}, {"image_id": 3, "caption": "outside"}]}'
w $S/pack/coco_each '\x04{"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": [{"image_id": 1, "caption": "one"}, {"image_id": 1, "caption": "two"}]}'
w $S/pack/karpathy  '\x01{"images": [{"filepath": "", "filename": "a.jpg", "split": "train", "sentences": [{"raw": "a grey square"}]}, {"filepath": "", "filename": "c.jpg", "split": "restval", "sentences": [{"raw": "empty file"}]}]}'
w $S/pack/tsv       '\x12a.jpg\ta grey square\nb.png\tanother\nno tab here\nc.jpg\tbroken image\n'
w $S/pack/folder    '\x03x.txt\0a caption\0x.jpg\0\xff\xd8\xff\xe0 not really\0y.txt\0\0'

# zeroshot: "CLASSES\\n--\\nTEMPLATES"
w $S/zeroshot/basic '"cat"\ndog\n\ngolden retriever\n--\na photo of a {}.\n{} in the wild\na {} and a {}\n'
