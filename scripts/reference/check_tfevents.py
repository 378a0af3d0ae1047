#!/usr/bin/env python3
"""Checks TensorBoard event files written by vlt with the real `tensorboard` package.

  /work/venv/bin/python scripts/reference/check_tfevents.py RUN_DIR [--require-tag TAG ...]

RUN_DIR is a vlt run directory (event files under RUN_DIR/tensorboard/, metrics.jsonl beside
them) or any directory holding events.out.tfevents.* files. For every event file it
  1. reads the TFRecord framing itself and checks both masked CRC32Cs of every record with
     tensorboard's masked_crc32c, parses every record with tensorboard's Event protobuf class,
     and checks that the first one is file_version "brain.Event:2";
  2. loads the directory with tensorboard's EventAccumulator (what `tensorboard --logdir` uses)
     and lists the scalar tags;
  3. when RUN_DIR/metrics.jsonl exists, checks that the scalars are exactly the jsonl's: each key
     but step/epoch/time/wall_time is a tag (train/<key>, or the key itself when it holds a '/'),
     with the same steps in the same order, float32(value) equal (a jsonl null is NaN or inf),
     and event wall_time within 5 s of the line's wall_time.
Exits 1 on the first kind of mismatch it finds, printing what differs.

The unit tests leave such a directory on request:
  VLT_METRICS_LOG_OUT_DIR=/tmp/vlt_tb_check make test TESTS=train_metrics_log
  /work/venv/bin/python scripts/reference/check_tfevents.py /tmp/vlt_tb_check
"""
import argparse
import glob
import json
import math
import os
import struct
import sys

import numpy as np
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.compat.proto import event_pb2
from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c

NOT_SCALARS = {"step", "epoch", "time", "wall_time"}


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def read_records(path):
    """Every Event in the file, checking the framing and CRCs by hand."""
    events = []
    with open(path, "rb") as f:
        data = f.read()
    pos = 0
    while pos < len(data):
        if pos + 12 > len(data):
            fail(f"{path}: truncated record header at byte {pos}")
        header = data[pos:pos + 8]
        (length,) = struct.unpack("<Q", header)
        (hcrc,) = struct.unpack("<I", data[pos + 8:pos + 12])
        if hcrc != masked_crc32c(header):
            fail(f"{path}: record {len(events)}: length crc {hcrc:#x} != {masked_crc32c(header):#x}")
        body = data[pos + 12:pos + 12 + length]
        if len(body) != length or pos + 16 + length > len(data):
            fail(f"{path}: record {len(events)} truncated")
        (dcrc,) = struct.unpack("<I", data[pos + 12 + length:pos + 16 + length])
        if dcrc != masked_crc32c(body):
            fail(f"{path}: record {len(events)}: data crc {dcrc:#x} != {masked_crc32c(body):#x}")
        events.append(event_pb2.Event.FromString(body))
        pos += 16 + length
    if not events or events[0].file_version != "brain.Event:2":
        fail(f"{path}: first record is not file_version brain.Event:2")
    return events


def expected_from_jsonl(path):
    """tag -> [(step, value, wall_time)], with TensorBoard's purge of steps that a resume repeats."""
    want = {}
    latest = None
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            row = json.loads(line)
            step = int(row["step"])
            if latest is not None and step < latest:  # EventAccumulator drops orphaned steps
                for tag in want:
                    want[tag] = [p for p in want[tag] if p[0] < step]
            latest = step
            for key, value in row.items():
                if key in NOT_SCALARS:
                    continue
                tag = key if "/" in key else "train/" + key
                want.setdefault(tag, []).append((step, value, row["wall_time"]))
    return want


def same_value(got, want):
    if want is None:
        return not math.isfinite(got)
    return float(np.float32(want)) == got or (math.isnan(got) and math.isnan(float(want)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run_dir")
    ap.add_argument("--require-tag", action="append", default=[], help="a scalar tag that must be present")
    args = ap.parse_args()

    tb_dir = os.path.join(args.run_dir, "tensorboard")
    if not os.path.isdir(tb_dir):
        tb_dir = args.run_dir
    files = sorted(glob.glob(os.path.join(tb_dir, "events.out.tfevents.*")))
    if not files:
        fail(f"no events.out.tfevents.* in {tb_dir}")
    n_records = 0
    for path in files:
        events = read_records(path)
        n_records += len(events)
        print(f"{os.path.basename(path)}: {len(events)} records, CRCs ok, first is file_version brain.Event:2")

    acc = event_accumulator.EventAccumulator(tb_dir, size_guidance={event_accumulator.SCALARS: 0})
    acc.Reload()
    tags = sorted(acc.Tags()["scalars"])
    got = {tag: acc.Scalars(tag) for tag in tags}
    print(f"EventAccumulator: {len(tags)} scalar tags")
    for tag in tags:
        s = got[tag]
        print(f"  {tag:24s} {len(s):5d} points, steps {s[0].step}..{s[-1].step}, last {s[-1].value:.6g}")
    for tag in args.require_tag:
        if tag not in got:
            fail(f"required tag {tag} missing")

    jsonl = os.path.join(args.run_dir, "metrics.jsonl")
    if not os.path.exists(jsonl):
        print("no metrics.jsonl: tags listed, values not compared")
        return
    want = expected_from_jsonl(jsonl)
    if set(want) != set(got):
        fail(f"tags differ: only in jsonl {sorted(set(want) - set(got))}, only in events {sorted(set(got) - set(want))}")
    n = 0
    for tag in tags:
        g, w = got[tag], want[tag]
        if [e.step for e in g] != [p[0] for p in w]:
            fail(f"{tag}: steps {[e.step for e in g]} != jsonl {[p[0] for p in w]}")
        for e, (step, value, wall) in zip(g, w):
            if not same_value(e.value, value):
                fail(f"{tag} step {step}: event value {e.value!r} != jsonl {value!r}")
            if abs(e.wall_time - wall) > 5:
                fail(f"{tag} step {step}: event wall_time {e.wall_time} vs jsonl {wall}")
            n += 1
    print(f"OK: {n} scalars in {len(tags)} tags equal metrics.jsonl (float32), {n_records} records in {len(files)} file(s)")


if __name__ == "__main__":
    main()
