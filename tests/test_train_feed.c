// Tests for the trainer's batch feed (train/feed.h): the slot rotation and ownership rules on the
// host with copies that run late (each only when something waits for it, as on a stream) and a
// loader-like host ring that scribbles over a batch as soon as it is handed back, so that a missing
// wait shows as wrong data; the refusals of any other order; the trainer's feed (the CPU route,
// VLT_TRAIN_U8_FEED=1) trains to the plain run's losses and a run checkpointed with a batch
// fetched ahead resumes to the uninterrupted run bit for bit. GPU only (skip without a device):
// a few steps with the async feed equal the synchronous feed (VLT_TRAIN_SYNC_FEED=1) bit for bit,
// and a resumed GPU run with the feed follows the uninterrupted one bit for bit.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "autograd/device.h"
#include "train/feed.h"
#include "train/trainer.h"
#include "tests/cuda_compare.h"
#include "tests/train_fixture.h"

#define BYTES 64
#define HOST_SLOTS 3   // the loader's prefetch + 1

// A recording backend around the host one: counts the calls and checks, at each upload, that the
// slot's previous batch was consumed (the side stream's wait has an event to wait for).
typedef struct {
    vlt_feed_host_ctx host;
    vlt_feed_backend inner;
    int uploads[VLT_FEED_SLOTS], consumed[VLT_FEED_SLOTS], host_waits, compute_waits;
} rec_ctx;

static void rec_upload(void *ctx, int slot, void *dst, const void *src, size_t bytes) {
    rec_ctx *r = ctx;
    assert_int_equal(r->uploads[slot], r->consumed[slot]);   // the slot's last batch was read
    r->uploads[slot]++;
    r->inner.upload(r->inner.ctx, slot, dst, src, bytes);
}
static void rec_compute_wait(void *ctx, int slot) {
    rec_ctx *r = ctx;
    r->compute_waits++;
    r->inner.compute_wait(r->inner.ctx, slot);
}
static void rec_consumed(void *ctx, int slot) {
    rec_ctx *r = ctx;
    r->consumed[slot]++;
    r->inner.consumed(r->inner.ctx, slot);
}
static void rec_host_wait(void *ctx, int slot) {
    rec_ctx *r = ctx;
    r->host_waits++;
    r->inner.host_wait(r->inner.ctx, slot);
}

static void rec_backend(vlt_feed_backend *be, rec_ctx *r) {
    memset(r, 0, sizeof *r);
    vlt_feed_host_backend(&r->inner, &r->host);
    be->ctx = r;
    be->upload = rec_upload;
    be->compute_wait = rec_compute_wait;
    be->consumed = rec_consumed;
    be->host_wait = rec_host_wait;
}

// A loader-like ring of host batches: batch k lies in host slot k % HOST_SLOTS and is valid until
// the next fetch, which scribbles over it (the collator refilling a free slot).
typedef struct {
    uint8_t mem[HOST_SLOTS][BYTES];
    int next, held;
} host_ring;

static const uint8_t *ring_fetch(host_ring *h, int k) {
    if (h->held >= 0) memset(h->mem[h->held], 0xEE, BYTES);
    int s = h->next;
    h->next = (s + 1) % HOST_SLOTS;
    h->held = s;
    for (int i = 0; i < BYTES; i++) h->mem[s][i] = (uint8_t)(k * 31 + i);
    return h->mem[s];
}

static void check_batch(const uint8_t *dev, int k) {
    for (int i = 0; i < BYTES; i++)
        if (dev[i] != (uint8_t)(k * 31 + i)) fail_msg("batch %d: byte %d is %d, expected %d", k, i, dev[i], (uint8_t)(k * 31 + i));
}

// The trainer's order over many steps: fetch 0; then per step k: take k, (normalise), consumed,
// release + fetch k+1. Every step sees its own batch although the copies run late and the host
// memory is scribbled over when handed back.
static void test_rotation_delivers_each_batch(void **state) {
    (void)state;
    uint8_t dev[VLT_FEED_SLOTS][BYTES];
    void *bufs[VLT_FEED_SLOTS] = {dev[0], dev[1]};
    vlt_feed_backend be;
    rec_ctx r;
    rec_backend(&be, &r);
    vlt_feed f;
    vlt_feed_init(&f, &be, bufs, BYTES);
    host_ring h = {.held = -1};
    vlt_feed_release(&f);   // nothing pending: no wait
    assert_int_equal(r.host_waits, 0);
    assert_int_equal(vlt_feed_upload(&f, ring_fetch(&h, 0), BYTES), VLT_OK);
    const int steps = 11;
    for (int k = 0; k < steps; k++) {
        assert_int_equal(vlt_feed_staged(&f), 1);
        void *d;
        int slot;
        assert_int_equal(vlt_feed_take(&f, &d, &slot), VLT_OK);
        assert_int_equal(slot, k % VLT_FEED_SLOTS);
        assert_ptr_equal(d, dev[k % VLT_FEED_SLOTS]);
        check_batch(d, k);
        assert_int_equal(vlt_feed_consumed(&f, slot), VLT_OK);
        vlt_feed_release(&f);   // before the loader's next call
        assert_int_equal(vlt_feed_upload(&f, ring_fetch(&h, k + 1), BYTES), VLT_OK);
    }
    assert_int_equal(r.compute_waits, steps);
    assert_int_equal(r.host_waits, steps);
    assert_int_equal(r.uploads[0] + r.uploads[1], steps + 1);
    assert_true(f.uploads == steps + 1 && f.takes == steps);
}

// Without the host wait the late copy would read the scribbled memory: the rule matters (this is
// what the ring and the late backend catch).
static void test_missing_release_is_caught(void **state) {
    (void)state;
    uint8_t dev[VLT_FEED_SLOTS][BYTES];
    void *bufs[VLT_FEED_SLOTS] = {dev[0], dev[1]};
    vlt_feed_backend be;
    vlt_feed_host_ctx hc;
    vlt_feed_host_backend(&be, &hc);
    vlt_feed f;
    vlt_feed_init(&f, &be, bufs, BYTES);
    host_ring h = {.held = -1};
    assert_int_equal(vlt_feed_upload(&f, ring_fetch(&h, 0), BYTES), VLT_OK);
    ring_fetch(&h, 1);   // the loader asked again without vlt_feed_release: batch 0's memory is gone
    void *d;
    int slot;
    assert_int_equal(vlt_feed_take(&f, &d, &slot), VLT_OK);
    assert_int_equal(((uint8_t *)d)[0], 0xEE);   // the late copy read the scribble
}

// Any other order is refused with VLT_ERR_STATE and a message.
static void test_refusals(void **state) {
    (void)state;
    uint8_t dev[VLT_FEED_SLOTS][BYTES], host[BYTES] = {0};
    void *bufs[VLT_FEED_SLOTS] = {dev[0], dev[1]};
    vlt_feed_backend be;
    rec_ctx r;
    rec_backend(&be, &r);
    vlt_feed f;
    vlt_feed_init(&f, &be, bufs, BYTES);
    void *d;
    int slot;
    assert_int_equal(vlt_feed_take(&f, &d, &slot), VLT_ERR_STATE);   // nothing uploaded
    assert_int_equal(vlt_feed_upload(&f, host, BYTES + 1), VLT_ERR_STATE);   // larger than a slot
    assert_non_null(strstr(vlt_error_message(), "bytes"));
    assert_int_equal(vlt_feed_upload(&f, host, BYTES), VLT_OK);
    assert_int_equal(vlt_feed_upload(&f, host, BYTES), VLT_ERR_STATE);   // not released
    assert_non_null(strstr(vlt_error_message(), "released"));
    vlt_feed_release(&f);
    assert_int_equal(vlt_feed_upload(&f, host, BYTES), VLT_OK);   // slot 1
    vlt_feed_release(&f);
    assert_int_equal(vlt_feed_upload(&f, host, BYTES), VLT_ERR_STATE);   // slot 0 not taken yet
    assert_non_null(strstr(vlt_error_message(), "taken"));
    assert_int_equal(vlt_feed_take(&f, &d, &slot), VLT_OK);
    assert_int_equal(slot, 0);
    assert_int_equal(vlt_feed_upload(&f, host, BYTES), VLT_ERR_STATE);   // slot 0 taken, not consumed
    assert_non_null(strstr(vlt_error_message(), "consumed"));
    assert_int_equal(vlt_feed_consumed(&f, 1), VLT_ERR_STATE);   // slot 1 was not taken
    assert_int_equal(vlt_feed_consumed(&f, 0), VLT_OK);
    assert_int_equal(vlt_feed_consumed(&f, 0), VLT_ERR_STATE);   // twice
    assert_int_equal(vlt_feed_upload(&f, host, BYTES), VLT_OK);
    assert_int_equal(vlt_feed_staged(&f), 2);
    assert_int_equal(r.uploads[0], 2);
    assert_int_equal(r.consumed[0], 1);
}

// --- the trainer's feed ------------------------------------------------------------------------------

static const float *train_run(const char *out, const char *device, const char *env, int steps, vlt_trainer **keep) {
    vlt_run_config c;
    train_fixture_config(&c, out);
    snprintf(c.device, sizeof c.device, "%s", device);
    c.steps = steps;
    c.warmup = 2;
    c.flip = 1;
    c.samples_per_epoch = 320;   // 10 steps an epoch
    if (env) setenv(env, "1", 1);
    vlt_trainer_opts o = {.quiet = 1};
    vlt_trainer *t;
    vlt_status s = vlt_trainer_create(&c, &o, &t);
    if (env) unsetenv(env);
    if (s != VLT_OK) fail_msg("%s: %s", out, vlt_error_message());
    if (vlt_trainer_run(t) != VLT_OK) fail_msg("%s: %s", out, vlt_error_message());
    int64_t n;
    const float *l = vlt_trainer_losses(t, &n);
    assert_int_equal(n, steps);
    *keep = t;
    return l;
}

// A run stopped after a checkpoint taken while the next batch was already fetched (and uploaded)
// resumes with the uninterrupted run's losses: the checkpoint holds the position before that batch.
// data.samples_per_epoch 320 at batch 32 is 10 steps an epoch: a checkpoint at step 5 (mid-epoch)
// and one at 10, whose fetched-ahead batch is the next epoch's first.
static void resume_check(const char *device, const char *env, const char *tag) {
    const int total = 14, ats[2] = {5, 10};
    char name[64];
    snprintf(name, sizeof name, "%s-whole", tag);
    vlt_trainer *w;
    const float *lw = train_run(name, device, env, total, &w);
    vlt_set_default_device(VLT_CPU);
    for (int k = 0; k < 2; k++) {
        int at = ats[k];
        vlt_run_config c;
        snprintf(name, sizeof name, "%s-parts%d", tag, at);
        train_fixture_config(&c, name);
        snprintf(c.device, sizeof c.device, "%s", device);
        c.steps = total;
        c.warmup = 2;
        c.flip = 1;
        c.samples_per_epoch = 320;
        c.checkpoint_every = at;
        if (env) setenv(env, "1", 1);
        vlt_trainer_opts o = {.quiet = 1};
        vlt_trainer *a;
        assert_int_equal(vlt_trainer_create(&c, &o, &a), VLT_OK);
        assert_int_equal(vlt_trainer_run_steps(a, at + 2), VLT_OK);
        vlt_trainer_free(a);
        vlt_set_default_device(VLT_CPU);
        vlt_trainer_opts r = {.quiet = 1, .resume = "latest"};
        vlt_trainer *b;
        vlt_status s = vlt_trainer_create(&c, &r, &b);
        if (env) unsetenv(env);
        if (s != VLT_OK) fail_msg("%s", vlt_error_message());
        assert_int_equal(vlt_trainer_step(b), at);
        assert_int_equal(vlt_trainer_run_steps(b, 3), VLT_OK);
        int64_t nb;
        const float *lb = vlt_trainer_losses(b, &nb);
        assert_int_equal(nb, 3);
        for (int i = 0; i < 3; i++)
            if (memcmp(&lb[i], &lw[at + i], sizeof(float)))
                fail_msg("%s: resumed at %d, step %d: loss %.9g, uninterrupted %.9g", tag, at, at + i, lb[i], lw[at + i]);
        vlt_set_default_device(VLT_CPU);
        vlt_trainer_free(b);
    }
    vlt_trainer_free(w);
}

static void test_trainer_feed_matches_plain_run(void **state) {
    (void)state;
    vlt_trainer *p, *f;
    const float *lp = train_run("plain", "cpu", NULL, 6, &p), *lf = train_run("fed", "cpu", "VLT_TRAIN_U8_FEED", 6, &f);
    assert_memory_equal(lp, lf, 6 * sizeof(float));
    vlt_trainer_free(p);
    vlt_trainer_free(f);
}

static void test_trainer_feed_resumes(void **state) {
    (void)state;
    resume_check("cpu", "VLT_TRAIN_U8_FEED", "cpu-feed");
}

// GPU: pinned memory and the side-stream copy give the synchronous feed's losses bit for bit.
static void test_gpu_async_feed_equals_sync_feed(void **state) {
    (void)state;
    NEED_GPU();
    vlt_trainer *a, *s;
    const float *la = train_run("gpu-async", "cuda", NULL, 8, &a);
    vlt_set_default_device(VLT_CPU);
    const float *ls = train_run("gpu-sync", "cuda", "VLT_TRAIN_SYNC_FEED", 8, &s);
    vlt_set_default_device(VLT_CPU);
    print_message("GPU feed, 8 steps: loss %.6f -> %.6f async, %.6f -> %.6f synchronous\n", la[0], la[7], ls[0], ls[7]);
    assert_memory_equal(la, ls, 8 * sizeof(float));
    vlt_trainer_free(a);
    vlt_trainer_free(s);
}

static void test_gpu_feed_resumes(void **state) {
    (void)state;
    NEED_GPU();
    resume_check("cuda", NULL, "gpu-feed");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rotation_delivers_each_batch),
        cmocka_unit_test(test_missing_release_is_caught),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_trainer_feed_matches_plain_run),
        cmocka_unit_test(test_trainer_feed_resumes),
        cmocka_unit_test(test_gpu_async_feed_equals_sync_feed),
        cmocka_unit_test(test_gpu_feed_resumes),
    };
    return cmocka_run_group_tests(tests, train_fixture_setup, train_fixture_teardown);
}
