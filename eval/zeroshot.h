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

#include <stdint.h>

#include "autograd/error.h"

// cls (n_classes, dim) from text (n_classes, n_templates, dim).
vlt_status vlt_eval_zeroshot_classifier(float *cls, const float *text, int n_classes, int n_templates, int dim);

// top1/top5 fractions over the n images (img (n, dim), labels (n) in [0, n_classes)).
vlt_status vlt_eval_zeroshot_accuracy(const float *img, const int32_t *labels, int n, const float *cls, int n_classes,
                                      int dim, double *top1, double *top5);

#endif
