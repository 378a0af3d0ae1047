// schedule.h — learning-rate schedules as open_clip's: linear warmup from 0, then
//   cosine:          lr_min + (lr - lr_min) · ½(1 + cos(π · e / (steps - warmup)))
//   const:           lr
//   const-cooldown:  lr until steps - cooldown, then a linear decay to lr_min at `steps`.
// step counts from 0; during warmup lr · (step + 1) / warmup (open_clip's _warmup_lr).
#ifndef VLT_SCHEDULE_H
#define VLT_SCHEDULE_H

#include <stdint.h>

typedef enum { VLT_SCHED_COSINE, VLT_SCHED_CONST, VLT_SCHED_CONST_COOLDOWN } vlt_schedule_kind;

typedef struct {
    vlt_schedule_kind kind;
    double lr, lr_min;
    int64_t steps, warmup, cooldown;
} vlt_schedule;

double vlt_schedule_lr(const vlt_schedule *s, int64_t step);

#endif
