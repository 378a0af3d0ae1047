# -*- coding: utf-8 -*-
"""Python 2.7: scores a results file with the official GT-Vision-Lab/VQA evaluation, unmodified.

Usage: python2.7 run_official_vqa_eval.py DIR COMMIT annotations.json questions.json results.json out.json
DIR holds the official vqa.py and vqaEval.py of one commit (make_vqa_eval_fixture.py extracts
them). They run as the official vqaEvalDemo.py runs them: VQA(annFile, quesFile), loadRes,
VQAEval(vqa, vqaRes, n=2).evaluate(). Nothing in them is changed; setEvalQA is wrapped on the
instance only to record each question's unrounded accuracy as evaluate() passes it, in order.

Writes {"commit", "accuracy": the official accuracy dict (rounded as the official),
        "evalQA": the official per-question dict (rounded),
        "scorings": [[question_id, unrounded accuracy], ...] in evaluate()'s order (a question id
                    annotated twice is scored twice),
        "overall": float(sum(accuracies)) / len(accuracies) as setAccuracy computes it, unrounded,
        "per_question_type" / "per_answer_type": the same per type, unrounded}
"""
import json
import sys

d, commit, ann_file, ques_file, res_file, out_file = sys.argv[1:7]
sys.path.insert(0, d)
from vqa import VQA  # noqa: E402
from vqaEval import VQAEval  # noqa: E402

vqa = VQA(ann_file, ques_file)
vqa_res = vqa.loadRes(res_file, ques_file)
ev = VQAEval(vqa, vqa_res, n=2)
scorings = []
qtypes, atypes = {}, {}
official_set_eval_qa = ev.setEvalQA


def record(ques_id, acc):
    scorings.append([ques_id, acc])
    official_set_eval_qa(ques_id, acc)


ev.setEvalQA = record
ev.evaluate()
for ques_id, acc in scorings:
    ann = vqa.qa[ques_id]
    qtypes.setdefault(ann['question_type'], []).append(acc)
    atypes.setdefault(ann['answer_type'], []).append(acc)
accs = [a for _, a in scorings]
out = {
    "commit": commit,
    "accuracy": ev.accuracy,
    "evalQA": ev.evalQA,
    "scorings": scorings,
    "overall": float(sum(accs)) / len(accs),
    "per_question_type": dict((k, float(sum(v)) / len(v)) for k, v in qtypes.items()),
    "per_answer_type": dict((k, float(sum(v)) / len(v)) for k, v in atypes.items()),
}
with open(out_file, "w") as f:
    json.dump(out, f)
