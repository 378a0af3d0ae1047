#!/usr/bin/env python3
"""Caption-metric fixtures for tests/test_eval_captions.c, made with the real pycocoevalcap.

Generates a few hundred images x 5 reference captions from a small grammar (fixed seed; with
punctuation, clitics, quotes, parentheses, hyphens and numbers) and one candidate per image of
varied quality (exact copies, partial, shuffled, unrelated, empty, one-word, perturbed), then runs
pycocoevalcap's PTBTokenizer (Stanford CoreNLP 3.4.1 through Java) and its Bleu(4) and Cider
scorers exactly as COCOEvalCap.evaluate does.

Writes under tests/data/eval/:
  captions_refs.json     COCO annotation format {images, annotations}
  captions_pred.json     COCO results format [{image_id, caption}]
  captions_tokenized.json {image_id: {"refs": [...], "pred": "..."}} (the PTB tokenizer's output)
  captions_scores.json   {bleu: [4], cider, per_image: [{image_id, bleu: [4], cider}]}
  ptb_cases.json         [{raw, tokenized}] extra tokenizer edge cases, tokenized by the same jar

Usage: /work/venv/bin/python scripts/reference/make_caption_fixtures.py [--out tests/data/eval]
       [--images 300] [--seed 4]
The module also exposes make_dataset() for scripts/bench/bench_caption_metrics.py.
"""
import argparse
import json
import os
import random

SUBJ = ["a man", "a woman", "two dogs", "the dog", "a little girl", "three children", "an old man",
        "a black-and-white cat", "a group of people", "12 people", "a tennis player", "the man's dog",
        "a double-decker bus", "a brown horse", "some kids", "one giraffe", "a 3-year-old boy",
        "a well-dressed woman", "the players", "a yellow school bus", "a baby elephant", "two men"]
VERB = ["is riding", "is sitting on", "rides", "stands next to", "is holding", "isn't eating",
        "looks at", "walks past", "is playing with", "jumps over", "can't reach", "won't leave",
        "is eating", "'s carrying", "sits beside", "is parked near", "chases", "is flying"]
OBJ = ["a skateboard", "a red kite", "the beach", "a slice of pizza", "a tennis racket",
       "a wooden bench", "the train", "a large bowl of soup", "a 1,000-pound statue", "2.5 pizzas",
       "a frisbee", "the ocean", "a cell phone", "an umbrella", "a half-eaten sandwich",
       "a stop sign", "the giraffe's neck", "a surfboard", "a plate of food", "the snow"]
PLACE = ["in a park", "on the street", "at 10:30", "near the river", "in the kitchen",
         "on a sunny day", "by the lake", "in front of a building", "at the zoo", "under a tree",
         "in the U.S.", "on the 5th floor", "at the station"]
EXTRA = ["(near a tree)", "(brown and white)", "; it's sunny", ", and they're happy",
         ": a great shot", "-- wow", " - nice", ', "cool"', ", which isn't bad", " & friends",
         ", they've fun", ", we'll see", ", she'd say", ", I'm sure", "'s shadow"]
END = [".", ".", ".", "", "", "!", "?", "...", " .", "!!"]


def sentence(rng):
    s = f"{rng.choice(SUBJ)} {rng.choice(VERB)} {rng.choice(OBJ)}"
    if s.split(" ")[-1] == "'s":
        s = s.replace(" 's", "'s")
    if rng.random() < 0.6:
        s += " " + rng.choice(PLACE)
    if rng.random() < 0.35:
        e = rng.choice(EXTRA)
        s += e if e[0] in ";,:'" else " " + e
    if rng.random() < 0.15:
        w = s.split(" ")
        i = rng.randrange(len(w))
        w[i] = '"' + w[i] + '"'
        s = " ".join(w)
    s += rng.choice(END)
    r = rng.random()
    if r < 0.5:
        s = s[0].upper() + s[1:]
    elif r < 0.6:
        s = s.upper()
    if rng.random() < 0.1:
        s = s.replace(" ", "  ", 1)
    if rng.random() < 0.05:
        s = "  " + s + " "
    return s


def candidate(rng, refs, other_refs, kind):
    words = rng.choice(refs).split()
    if kind == "exact":
        return rng.choice(refs)
    if kind == "partial":
        return " ".join(words[: max(1, len(words) // 2)])
    if kind == "shuffled":
        rng.shuffle(words)
        return " ".join(words)
    if kind == "unrelated":
        return rng.choice(other_refs)
    if kind == "empty":
        return ""
    if kind == "one-word":
        return rng.choice(words).strip('".,!?;:')
    if kind == "perturbed":
        i = rng.randrange(len(words))
        words[i] = rng.choice(["cat", "dog", "a", "the", "red"])
        return " ".join(words)
    return sentence(rng)  # "fresh": another sentence of the grammar


KINDS = ["exact", "partial", "shuffled", "unrelated", "empty", "one-word", "perturbed", "fresh"]


def make_dataset(n_images, seed, n_refs=5):
    """Returns (image_ids, refs{id: [str]}, preds{id: str}) from the grammar with a fixed seed."""
    rng = random.Random(seed)
    ids = [1000 + 7 * i for i in range(n_images)]
    refs = {i: [sentence(rng) for _ in range(n_refs)] for i in ids}
    preds = {}
    for k, i in enumerate(ids):
        kind = KINDS[k % len(KINDS)] if k + 1 < n_images else "fresh"  # last line non-empty (see below)
        other = refs[ids[(k + 1 + rng.randrange(n_images - 1)) % n_images]]
        preds[i] = candidate(rng, refs[i], other, kind)
    return ids, refs, preds


PTB_CASES = [
    "A man's dog isn't running; they're happy.",
    "Two dogs (brown and white) play in the park!",
    'He said "hello" to the cat, and she\'d reply...',
    "A black-and-white photo of a 3.5-inch screen -- wow.",
    "There are 1,000 people at 10:30 in the U.S.",
    "He can't go; he won't, I cannot.",
    "It's 50% off $5.99 & more / less: yes",
    "'Single quoted' text and `backtick' here",
    "A DOG'S bone  and  the DOGS' bones.",
    "we've i'm you'll he'd they'd've ain't don't won't can't",
    "DON'T WON'T He's HE'S i'M Dog's",
    "semi-colon; colon: comma, a-b-c x-ray 3-d t-shirt",
    "twenty-one 100th 1st 2nd 9am 5pm 3.5. 1,000. 7.",
    "why?! wow!! hmm... really.. ok....",
    "[square] {curly} (round)",
    "A dog.",
    "the end .",
    "  leading and trailing spaces  ",
    "tab\there",
    "a cat ; a dog , a bird : a fish ? a frog !",
    "Mr. Smith and Dr. Who",
    "the dog's. the dogs'.",
    "a man with a 2-liter bottle",
    "well-known - hyphen -- dash --- triple",
    # free-form captions in the style of COCO, written for this list
    'A man riding a wave on top of a surfboard.',
    'A kitchen with stainless steel appliances and granite counter tops.',
    'Two giraffes standing next to each other in a field',
    'a cat laying on a bed next to a laptop computer',
    'An airplane flying through a blue sky with contrails.',
    'A plate of food with broccoli, carrots and rice.',
    'The bathroom has a toilet, sink, and a shower.',
    'There is a stop sign that says "STOP" on the corner.',
    "A person's hand holding a half-eaten donut.",
    "Children's toys are scattered across the floor.",
    'A woman in a pink shirt is playing Wii.',
    'A 747 jet is parked at the gate at JFK airport.',
    "People are walking down the street at night; it's raining.",
    'Several motorcycles parked next to each other on a street...',
    'a red double decker bus driving down a street',
    "Men's and women's bathrooms side-by-side.",
    'A train on tracks near a station (with passengers).',
    'A baseball player swinging a bat at a ball!!',
    'What a beautiful day at the beach!',
    'A large clock tower in the middle of a city - at dusk.',
    'A living room filled with furniture & a TV.',
    'A sandwich cut in half on a white plate w/ chips.',
    'two people in wet suits carrying surf boards.',
    'A boy is doing a trick on his skateboard at the skate-park.',
    "An elephant's trunk is reaching for some food.",
    "The dog is wearing a santa hat and it's cute.",
    'A teddy bear sitting on top of a wooden chair next to a window .',
    "A horse-drawn carriage on a cobblestone street in the 1800's.",
    'The pizza has pepperoni, olives,and mushrooms on it.',
    'A kid at a table eating a slice of pizza.A pizza on the table.',
    'a view of a living room with a couch , a table and a lamp',
    'a black and white photo of people on a street circa 1950s',
    'A couple of zebras standing in the grass at the zoo?',
    'a bird perched on a branch of a tree -- looking around',
    "Who's that at the door?",
    "It isn't a cat;it's a dog.",
    '3 dogs and 2 cats.',
]


def ptb_tokenize(captions):
    """pycocoevalcap's PTBTokenizer on {key: [str]} -> {key: [tokenized str]}."""
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer
    return PTBTokenizer().tokenize({k: [{"caption": c} for c in v] for k, v in captions.items()})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/data/eval")
    ap.add_argument("--images", type=int, default=300)
    ap.add_argument("--seed", type=int, default=4)
    a = ap.parse_args()
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider

    ids, refs, preds = make_dataset(a.images, a.seed)
    os.makedirs(a.out, exist_ok=True)
    coco = {"images": [{"id": i} for i in ids],
            "annotations": [{"image_id": i, "id": 10 * i + r, "caption": c}
                            for i in ids for r, c in enumerate(refs[i])]}
    res = [{"image_id": i, "caption": preds[i]} for i in ids]
    # As COCOEvalCap.evaluate: tokenize references and results separately, then score.
    gts_tok = ptb_tokenize(refs)
    res_tok = ptb_tokenize({i: [preds[i]] for i in ids})
    bleu, bleu_img = Bleu(4).compute_score(gts_tok, res_tok, verbose=0)
    cider, cider_img = Cider().compute_score(gts_tok, res_tok)
    keys = list(gts_tok.keys())
    scores = {"bleu": [float(b) for b in bleu], "cider": float(cider),
              "per_image": [{"image_id": k, "bleu": [float(bleu_img[n][j]) for n in range(4)],
                             "cider": float(cider_img[j])} for j, k in enumerate(keys)]}
    tok = {str(i): {"refs": gts_tok[i], "pred": res_tok[i][0]} for i in ids}
    cases_tok = ptb_tokenize({j: [c] for j, c in enumerate(PTB_CASES)})
    cases = [{"raw": c, "tokenized": cases_tok[j][0]} for j, c in enumerate(PTB_CASES)]

    def dump(name, obj):
        with open(os.path.join(a.out, name), "w") as f:
            json.dump(obj, f, indent=1)
            f.write("\n")
    dump("captions_refs.json", coco)
    dump("captions_pred.json", res)
    dump("captions_tokenized.json", tok)
    dump("captions_scores.json", scores)
    dump("ptb_cases.json", cases)
    print(f"BLEU-1..4 {scores['bleu']}  CIDEr-D {scores['cider']}  ({len(ids)} images)")


if __name__ == "__main__":
    main()
