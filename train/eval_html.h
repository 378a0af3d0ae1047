// eval_html.h — the HTML page of `vlt eval checkpoint --html DIR` (see eval_html.c).
#ifndef VLT_TRAIN_EVAL_HTML_H
#define VLT_TRAIN_EVAL_HTML_H

#include "eval/retrieval.h"
#include "data/tokenizer.h"
#include "layers/model.h"
#include "train/evaluate.h"
#include "train/vqa_eval.h"

// DIR/index.html (written whole or not at all) and DIR/img/*.jpg from the evaluation's
// embeddings, metrics and (ce, may be NULL) captions; `what` names the checkpoint, `shards` the
// evaluated shard spec (read again for the thumbnails). m and tok (may be NULL): the model, for
// relevance maps of the sampled queries when it has them (VLT_CAP_EXPLAIN). rr (may be NULL): the
// recall after re-ranking each query's top rerank_k by the model's matching head (ALBEF's ITM).
vlt_status vlt_eval_html_checkpoint(const char *dir, const char *what, const char *shards, const vlt_embedded_pairs *p,
                                    const vlt_eval_retrieval_result *r, const vlt_eval_retrieval_result *rr,
                                    int rerank_k, const vlt_caption_eval *ce, vlt_model *m, const vlt_tokenizer *tok);

// The page of a VQA model's evaluation (vqa_eval.h): the official accuracy overall, per answer
// type and per question type; per question type its questions with thumbnails, the predicted and
// the annotators' answers and the question's accuracy, the wrong ones first.
vlt_status vlt_eval_html_vqa(const char *dir, const char *what, const char *shards, const vlt_vqa_predictions *p,
                             const vlt_eval_vqa_result *r);

#endif
