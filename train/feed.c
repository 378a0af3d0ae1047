// feed.c — the batch feed's slot rotation and ownership rules (see feed.h), and the host backend.
#include "train/feed.h"

#include <string.h>

void vlt_feed_init(vlt_feed *f, const vlt_feed_backend *be, void *const dev[VLT_FEED_SLOTS], size_t bytes) {
    memset(f, 0, sizeof *f);
    f->be = *be;
    for (int s = 0; s < VLT_FEED_SLOTS; s++) f->dev[s] = dev[s];
    f->bytes = bytes;
    f->host_slot = -1;
}

void vlt_feed_release(vlt_feed *f) {
    if (f->host_slot < 0) return;
    f->be.host_wait(f->be.ctx, f->host_slot);
    f->host_slot = -1;
}

vlt_status vlt_feed_upload(vlt_feed *f, const void *host, size_t bytes) {
    int s = f->next_upload;
    if (bytes > f->bytes)
        return vlt_error_set(VLT_ERR_STATE, "feed: a batch of %zu bytes for slots of %zu", bytes, f->bytes);
    if (f->host_slot >= 0)
        return vlt_error_set(VLT_ERR_STATE, "feed: the previous batch's host memory was not released (its copy "
                             "may still read it)");
    if (f->state[s] != VLT_FEED_EMPTY)
        return vlt_error_set(VLT_ERR_STATE, "feed: slot %d still holds a batch that was not %s", s,
                             f->state[s] == VLT_FEED_STAGED ? "taken" : "consumed");
    f->be.upload(f->be.ctx, s, f->dev[s], host, bytes);
    f->state[s] = VLT_FEED_STAGED;
    f->host_slot = s;
    f->next_upload = (s + 1) % VLT_FEED_SLOTS;
    f->uploads++;
    return VLT_OK;
}

vlt_status vlt_feed_take(vlt_feed *f, void **dev, int *slot) {
    int s = f->next_take;
    if (f->state[s] != VLT_FEED_STAGED) return vlt_error_set(VLT_ERR_STATE, "feed: no batch was uploaded");
    f->be.compute_wait(f->be.ctx, s);
    f->state[s] = VLT_FEED_IN_USE;
    f->next_take = (s + 1) % VLT_FEED_SLOTS;
    f->takes++;
    *dev = f->dev[s];
    *slot = s;
    return VLT_OK;
}

vlt_status vlt_feed_consumed(vlt_feed *f, int slot) {
    if (slot < 0 || slot >= VLT_FEED_SLOTS || f->state[slot] != VLT_FEED_IN_USE)
        return vlt_error_set(VLT_ERR_STATE, "feed: slot %d was not taken", slot);
    f->be.consumed(f->be.ctx, slot);
    f->state[slot] = VLT_FEED_EMPTY;
    return VLT_OK;
}

int vlt_feed_staged(const vlt_feed *f) {
    int n = 0;
    for (int s = 0; s < VLT_FEED_SLOTS; s++) n += f->state[s] == VLT_FEED_STAGED;
    return n;
}

// --- the host backend: copies run when waited for --------------------------------------------------

static void host_run(vlt_feed_host_ctx *h, int slot) {
    if (!h->copy[slot].pending) return;
    memcpy(h->copy[slot].dst, h->copy[slot].src, h->copy[slot].bytes);
    h->copy[slot].pending = 0;
}

static void host_upload(void *ctx, int slot, void *dst, const void *src, size_t bytes) {
    vlt_feed_host_ctx *h = ctx;
    h->copy[slot].dst = dst;
    h->copy[slot].src = src;
    h->copy[slot].bytes = bytes;
    h->copy[slot].pending = 1;
}

static void host_wait(void *ctx, int slot) { host_run(ctx, slot); }
static void host_consumed(void *ctx, int slot) { (void)ctx, (void)slot; }   // the host reads synchronously

void vlt_feed_host_backend(vlt_feed_backend *be, vlt_feed_host_ctx *ctx) {
    memset(ctx, 0, sizeof *ctx);
    be->ctx = ctx;
    be->upload = host_upload;
    be->compute_wait = host_wait;
    be->consumed = host_consumed;
    be->host_wait = host_wait;
}
