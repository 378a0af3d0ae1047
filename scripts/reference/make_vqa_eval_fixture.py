#!/usr/bin/env python3
"""VQA accuracy fixture for tests/test_eval_vqa.c, scored by both versions of the official
GT-Vision-Lab/VQA evaluation, run unmodified under Python 2.7.

Generates VQAv2-format data (questions, annotations, results) whose answers are noisy the way the
official normalization cares about: case, leading/trailing whitespace, '\\n', '\\t', '\\r', '\\v',
'\\f', '\\x1f' inside and around answers, punctuation of every class next to spaces or not, digit
commas ("1,000"), periods before digits and not, long period runs (the 32-deletion cap), articles,
number words, the contractions table ("dont", "cant", "yall'll" ...), answer sets whose ten answers
are all identical (raw, or identical only once stripped), sets with fewer or more than ten answers,
answer dicts with equal answer_ids (the official leave-one-out compares whole dicts), question ids
annotated twice with answers that a second processing changes (40 periods), 20 answer
types, 70 question types, question ids in shuffled order, question ids annotated twice and
predicted twice (the official dicts keep the last). Predictions: the majority answer raw or noisy,
another annotator's answer, a normalized form, an unrelated answer, empty and whitespace-only.
ASCII only (vlt's lower-casing and digits are ASCII; see eval/vqa.h).

Then runs scripts/reference/run_official_vqa_eval.py (Python 2) on the official vqa.py and
vqaEval.py of two commits of the repository, extracted with `git show`:
  vqaeval-2021: a013f00 "Fixed processing answers bug" (March 2021), the repository's head
  vqaeval-2016: a013f00^ (the code from 2016 to March 2021)

Writes tests/data/vqa_eval/{questions,annotations,results}.json.zst and official_2021.json.zst,
official_2016.json.zst (see run_official_vqa_eval.py for their contents).

Usage: python3 scripts/reference/make_vqa_eval_fixture.py --vqa-repo /path/to/VQA (a clone or a bare
       git dir of github.com/GT-Vision-Lab/VQA) [--python2 python2.7] [--questions 3000] [--seed 16]
       [--out tests/data/vqa_eval]       (needs git, zstd and a Python 2.7 interpreter)
"""
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))

COLORS = ["red", "blue", "green", "white", "black", "yellow", "brown", "gray", "orange", "pink", "purple", "tan"]
OBJECTS = ["dog", "cat", "t-shirt", "frisbee", "pizza", "man", "woman", "skateboard", "tennis racket", "fire hydrant",
           "x-ray", "hot dog", "teddy bear", "stop sign", "cell phone", "baseball bat", "yo-yo", "e-mail", "wi-fi"]
PLACES = ["kitchen", "beach", "park", "living room", "street", "airport", "bathroom", "o'clock tower", "new york"]
WORDS = ["none", "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
CONTR = ["dont know", "don't know", "cant tell", "can't tell", "its raining", "yall'll", "y'allll", "isnt", "isn't",
         "thats right", "whats that", "hes", "Im", "Ive", "wont", "oclock", "somebody'd", "let's", "shouldnt've", "maam"]
NUMS = ["0", "1", "2", "3", "4", "5", "10", "12", "20", "100", "1,000", "1000", "2.5", "3.14", ".5", "1.0", "10:30", "1/2",
        "50%", "$5", "5 dollars", "2016", "3,4", "1, 2"]
PUNCT_BITS = [";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!",
              ".", "'", ":", "#", "*", "&"]
WS = [" ", "  ", "\n", "\t", "\r", "\v", "\f", "\x1f", "\x1c", " \n", "\t "]

ANSWER_TYPES = ["yes/no", "number", "other"] + ["extra type %d" % i for i in range(17)]  # 20: beyond the 16th
QTYPES = ["what color is the", "how many", "is the", "what is the", "are there", "what", "is this", "where is the",
          "what is", "does the", "none of the above"] + ["question type %02d" % i for i in range(59)]  # 70


def base_answer(rng):
    k = rng.random()
    if k < 0.2:
        return rng.choice(["yes", "no"])
    if k < 0.35:
        return rng.choice(NUMS + WORDS)
    if k < 0.5:
        return rng.choice(COLORS)
    if k < 0.65:
        return rng.choice(OBJECTS)
    if k < 0.75:
        return rng.choice(PLACES)
    if k < 0.85:
        return rng.choice(CONTR)
    return rng.choice(COLORS) + " " + rng.choice(OBJECTS)


def noisy(rng, a):
    """One annotator's spelling of a: several independent perturbations."""
    if rng.random() < 0.15:
        a = a.upper() if rng.random() < 0.3 else a.capitalize()
    if rng.random() < 0.12:
        a = rng.choice(["a ", "an ", "the ", "The ", "A "]) + a
    if rng.random() < 0.08:
        w = a.split(" ")
        i = rng.randrange(len(w))
        if w[i] in WORDS:
            w[i] = str(WORDS.index(w[i])) if w[i] != "none" else "0"
        elif w[i].isdigit() and int(w[i]) <= 10:
            w[i] = WORDS[int(w[i])]
        a = " ".join(w)
    if rng.random() < 0.15:  # punctuation somewhere: inside, at the end, next to a space or not
        p = rng.choice(PUNCT_BITS)
        pos = rng.choice(["end", "start", "mid", "spaced"])
        if pos == "end":
            a = a + p
        elif pos == "start":
            a = p + a
        elif pos == "mid" and len(a) > 1:
            i = rng.randrange(1, len(a))
            a = a[:i] + p + a[i:]
        else:
            a = a + " " + p + " " + rng.choice(COLORS)
    if rng.random() < 0.04:
        a = a + "." * rng.choice([2, 3, 33, 40])
    if rng.random() < 0.03:
        a = a + rng.choice([" 1,5", ",3", " 2.", "5.0."])
    if rng.random() < 0.15:  # whitespace around
        a = rng.choice(WS) + a if rng.random() < 0.5 else a + rng.choice(WS)
    if rng.random() < 0.06 and " " in a:  # whitespace inside
        a = a.replace(" ", rng.choice(WS), 1)
    return a


def make_answers(rng):
    n = 10
    r = rng.random()
    if r < 0.03:
        n = rng.choice([1, 3, 5, 12])
    base = base_answer(rng)
    kind = rng.random()
    if kind < 0.15:  # all identical raw strings (noisy or not)
        s = noisy(rng, base) if rng.random() < 0.7 else base
        return [s] * n
    if kind < 0.22:  # identical once stripped ('\n', '\t' -> ' ' then strip)
        return [rng.choice(["", " ", "\n", "\t", " \t"]) + base + rng.choice(["", " ", "\n", "\t"]) for _ in range(n)]
    others = [base_answer(rng) for _ in range(2)]
    agree = rng.choice([0.95, 0.8, 0.6, 0.4, 0.2])
    out = []
    for _ in range(n):
        if rng.random() < agree:
            out.append(noisy(rng, base) if rng.random() < 0.4 else base)
        else:
            out.append(noisy(rng, rng.choice(others)) if rng.random() < 0.3 else rng.choice(others))
    return out


def simple_norm(a):
    """A rough normal form for predictions (not the official one: only to vary the predictions)."""
    return " ".join(w for w in a.lower().replace("-", " ").strip(" .?!").split() if w not in ("a", "an", "the"))


def make_prediction(rng, answers):
    k = rng.random()
    if k < 0.35:
        return max(set(answers), key=answers.count)
    if k < 0.5:
        return noisy(rng, max(set(answers), key=answers.count))
    if k < 0.65:
        return rng.choice(answers)
    if k < 0.75:
        return simple_norm(rng.choice(answers))
    if k < 0.8:
        return rng.choice(["", " ", "\n", "\t\t"])
    return noisy(rng, base_answer(rng))


def generate(n_questions, seed):
    rng = random.Random(seed)
    qids = rng.sample(range(1, 10 * n_questions), n_questions)  # shuffled, not sorted
    anns, questions, results = [], [], []
    for qid in qids:
        img = rng.randrange(1, n_questions // 3)
        raw = make_answers(rng)
        eq_ids = rng.random() < 0.02  # equal answer dicts possible: same answer_id and confidence
        answers = [{"answer": a, "answer_confidence": "yes" if eq_ids else rng.choice(["yes", "maybe", "no"]),
                    "answer_id": 1 if eq_ids else j + 1} for j, a in enumerate(raw)]
        qtype = rng.choice(QTYPES)
        atype = rng.choice(ANSWER_TYPES[:3]) if rng.random() < 0.9 else rng.choice(ANSWER_TYPES)
        anns.append({"question_id": qid, "image_id": img, "question_type": qtype, "answer_type": atype,
                     "multiple_choice_answer": raw[0], "answers": answers})
        questions.append({"question_id": qid, "image_id": img, "question": qtype + " thing?"})
        results.append({"question_id": qid, "answer": make_prediction(rng, raw)})
    # Question ids annotated twice: a later annotation with other answers and types (the last wins).
    # The first few have answers that a second processing changes (the official code rewrites the
    # answers in place and scores the id once per appearance): 40 periods lose 32 per pass.
    twice_changed = {}
    for i, qid in enumerate(rng.sample(qids, max(2, n_questions // 75))):
        raw = make_answers(rng)
        if i < 6:
            raw = ["yes"] * 2 + ["yes" + "." * 40] * 3 + ["no"] * 5
            twice_changed[qid] = True
        anns.insert(rng.randrange(len(anns) + 1),
                    {"question_id": qid, "image_id": 1, "question_type": rng.choice(QTYPES), "answer_type": rng.choice(ANSWER_TYPES),
                     "multiple_choice_answer": raw[0],
                     "answers": [{"answer": a, "answer_confidence": "yes", "answer_id": j + 1} for j, a in enumerate(raw)]})
    for r in results:
        if r["question_id"] in twice_changed:
            r["answer"] = "yes"
    # Question ids predicted twice: the last prediction wins.
    for qid in rng.sample([q for q in qids if q not in twice_changed], max(2, n_questions // 100)):
        results.insert(rng.randrange(len(results) + 1), {"question_id": qid, "answer": base_answer(rng)})
    rng.shuffle(results)
    info = {"description": "vlt synthetic VQAv2-format fixture", "version": "2.0", "year": 2026}
    qfile = {"info": info, "task_type": "Open-Ended", "data_type": "mscoco", "data_subtype": "vlt2026",
             "license": {"name": "CC0"}, "questions": questions}
    afile = {"info": info, "data_type": "mscoco", "data_subtype": "vlt2026", "license": {"name": "CC0"},
             "annotations": anns}
    return qfile, afile, results


def git_show(repo, rev, path):
    return subprocess.check_output(["git", "--git-dir", repo, "show", "%s:%s" % (rev, path)])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vqa-repo", required=True)
    ap.add_argument("--python2", default="python2.7")
    ap.add_argument("--questions", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--out", default=os.path.join(HERE, "..", "..", "tests", "data", "vqa_eval"))
    args = ap.parse_args()
    repo = args.vqa_repo
    if os.path.isdir(os.path.join(repo, ".git")):
        repo = os.path.join(repo, ".git")
    os.makedirs(args.out, exist_ok=True)
    qfile, afile, results = generate(args.questions, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for name, obj in (("questions", qfile), ("annotations", afile), ("results", results)):
            paths[name] = os.path.join(tmp, name + ".json")
            with open(paths[name], "w") as f:
                json.dump(obj, f, separators=(",", ":"))
        for tag, rev in (("2021", "a013f00"), ("2016", "a013f00^")):
            d = os.path.join(tmp, "official_" + tag)
            os.makedirs(d)
            commit = subprocess.check_output(["git", "--git-dir", repo, "rev-parse", rev]).decode().strip()
            with open(os.path.join(d, "vqa.py"), "wb") as f:
                f.write(git_show(repo, commit, "PythonHelperTools/vqaTools/vqa.py"))
            with open(os.path.join(d, "vqaEval.py"), "wb") as f:
                f.write(git_show(repo, commit, "PythonEvaluationTools/vqaEvaluation/vqaEval.py"))
            paths["official_" + tag] = os.path.join(tmp, "official_%s.json" % tag)
            subprocess.check_call([args.python2, os.path.join(HERE, "run_official_vqa_eval.py"), d, commit,
                                   paths["annotations"], paths["questions"], paths["results"], paths["official_" + tag]],
                                  stdout=subprocess.DEVNULL)
        for name, p in paths.items():
            subprocess.check_call(["zstd", "-q", "-19", "-f", p, "-o", os.path.join(args.out, name + ".json.zst")])
    n_ann = len(afile["annotations"])
    print("wrote %s: %d annotations (%d distinct question ids), %d predictions" %
          (args.out, n_ann, len(set(a["question_id"] for a in afile["annotations"])), len(results)))


if __name__ == "__main__":
    main()
