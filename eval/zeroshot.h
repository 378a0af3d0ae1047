// zeroshot.h — zero-shot classification from embeddings: the class classifier built from
// prompt-template text embeddings, and top-1 / top-5 accuracy of image embeddings against it.
//
// As open_clip's build_zero_shot_classifier: each template embedding is L2-normalized, the
// templates of a class are averaged, and the mean is L2-normalized again. Scores are dot
// products of image embeddings with the class vectors. Top-k counts a hit when fewer than k
// other classes score >= the true class (ties count against the truth, as in retrieval.h;
// torch.topk leaves tie order unspecified).
#ifndef VLT_EVAL_ZEROSHOT_H
#define VLT_EVAL_ZEROSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "autograd/error.h"

// cls (n_classes, dim) from text (n_classes, n_templates, dim).
vlt_status vlt_eval_zeroshot_classifier(float *cls, const float *text, int n_classes, int n_templates, int dim);

// top1/top5 fractions over the n images (img (n, dim), labels (n) in [0, n_classes)).
vlt_status vlt_eval_zeroshot_accuracy(const float *img, const int32_t *labels, int n, const float *cls, int n_classes,
                                      int dim, double *top1, double *top5);

// ---- the class-name and template lists vlt ships ----
// $VLT_ASSETS/zeroshot/<NAME>_classnames.txt and <NAME>_templates.txt (VLT_ASSETS: vlt's data
// folder's assets/, as the tokenizer's vocabulary; "assets" when unset): imagenet1k (open_clip's
// IMAGENET_CLASSNAMES and OPENAI_IMAGENET_TEMPLATES; imagenet1k_simple: its 7
// SIMPLE_IMAGENET_TEMPLATES), cifar10 and cifar100 (OpenAI CLIP's data/prompts.md). See
// assets/zeroshot/README.md.

// The file for a --classes (kind "classnames") or --templates (kind "templates") argument: a
// bare name (letters, digits, '_' and '-' only) of a shipped list resolves to that list; anything
// else, or a bare name that is not shipped, is a path as given. An argument that is neither a
// shipped name nor a readable file is refused, naming it and the shipped names. *shipped (may be
// NULL) is set when the argument named a shipped list.
vlt_status vlt_eval_zeroshot_list_path(const char *arg, const char *kind, char *out, size_t cap, int *shipped);

// The names of the shipped lists of a kind, comma-separated, into buf ("" when none).
const char *vlt_eval_zeroshot_shipped(const char *kind, char *buf, size_t cap);

#endif
