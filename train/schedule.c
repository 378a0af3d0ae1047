// schedule.c — learning-rate schedules (see schedule.h).
#include "train/schedule.h"

#include <math.h>

double vlt_schedule_lr(const vlt_schedule *s, int64_t step) {
    if (step < s->warmup) return s->lr * (double)(step + 1) / (double)s->warmup;
    int64_t e = step - s->warmup;
    switch (s->kind) {
    case VLT_SCHED_CONST: return s->lr;
    case VLT_SCHED_CONST_COOLDOWN: {
        int64_t start = s->steps - s->cooldown;
        if (step < start) return s->lr;
        double frac = (double)(step - start) / (double)s->cooldown;
        if (frac > 1) frac = 1;
        return s->lr + (s->lr_min - s->lr) * frac;
    }
    case VLT_SCHED_COSINE:
    default: {
        int64_t es = s->steps - s->warmup;
        if (es <= 0) return s->lr;
        double frac = (double)e / (double)es;
        if (frac > 1) frac = 1;
        return s->lr_min + (s->lr - s->lr_min) * 0.5 * (1.0 + cos(M_PI * frac));
    }
    }
}
