/* fault.c — the faults and their decisions (see fault.h). */
#include "serve/core/fault.h"

#include <stdio.h>
#include <string.h>

#include "proto/spec.h"

static const char *const kind_names[FAULT_KINDS] = {
    [FAULT_LATENCY] = "latency",
    [FAULT_RATE] = "rate",
    [FAULT_SLICE] = "slice",
    [FAULT_GREET_DELAY] = "greet-delay",
    [FAULT_CLOSE_AFTER] = "close-after",
    [FAULT_RESET_AFTER] = "reset-after",
    [FAULT_STALL_AFTER] = "stall-after",
    [FAULT_DROP] = "drop",
    [FAULT_DUP] = "dup",
};

const char *fault_kind_name(enum fault_kind k)
{
    return (unsigned)k < FAULT_KINDS ? kind_names[k] : "?";
}

int fault_kind_on_stream(enum fault_kind k)
{
    return k != FAULT_DROP && k != FAULT_DUP;
}

int fault_kind_on_dgram(enum fault_kind k)
{
    return k == FAULT_LATENCY || k == FAULT_RATE || k == FAULT_DROP || k == FAULT_DUP;
}

const struct fault_shape fault_shape_none = {
    .close_after = FAULT_NONE, .reset_after = FAULT_NONE, .stall_after = FAULT_NONE,
};

static void shape_clear(struct fault_shape *s)
{
    memset(s, 0, sizeof *s);
    s->close_after = s->reset_after = s->stall_after = FAULT_NONE;
}

void faults_clear(struct faults *f)
{
    shape_clear(&f->down);
    shape_clear(&f->up);
    f->drop = f->dup = 0;
    f->toxicity = 1;
}

/* ------------------------------------------------------------------ from options */

static uint32_t ms32(long ms)
{
    return ms < 0 ? 0 : ms > (long)UINT32_MAX ? UINT32_MAX : (uint32_t)ms;
}

/* One option of a shape's (the key without its "up-"); returns 0 if it is none. */
static int shape_option(struct fault_shape *s, const char *key, const struct spec_opt *o)
{
    if (strcmp(key, "latency") == 0) {
        s->latency_ms = ms32(o->ms);
        s->latency_jitter_ms = ms32(o->jitter_ms);
    } else if (strcmp(key, "rate") == 0) {
        s->rate = o->bytes;
    } else if (strcmp(key, "slice") == 0) {
        s->slice = o->bytes;
        s->slice_jitter = o->bytes ? o->jitter : 0;     /* slice=0 is none */
    } else if (strcmp(key, "slice-delay") == 0) {
        s->slice_delay_ms = ms32(o->ms);
    } else if (strcmp(key, "greet-delay") == 0) {
        s->greet_delay_ms = ms32(o->ms);
    } else if (strcmp(key, "close-after") == 0) {
        s->close_after = o->bytes;
    } else if (strcmp(key, "reset-after") == 0) {
        s->reset_after = o->bytes;
    } else if (strcmp(key, "stall-after") == 0) {
        s->stall_after = o->bytes;
    } else {
        return 0;
    }
    return 1;
}

void faults_from_spec(struct faults *f, const struct spec *sp)
{
    faults_clear(f);
    for (size_t i = 0; i < sp->nopts; i++) {
        const struct spec_opt *o = &sp->opts[i];
        const char *key = o->key->name;

        if (strncmp(key, "up-", 3) == 0 && shape_option(&f->up, key + 3, o))
            continue;
        if (shape_option(&f->down, key, o))
            continue;
        if (strcmp(key, "drop") == 0)
            f->drop = o->p;
        else if (strcmp(key, "dup") == 0)
            f->dup = o->p;
        else if (strcmp(key, "toxicity") == 0)
            f->toxicity = o->p;
    }
}

int fault_shape_active(const struct fault_shape *s)
{
    return s->latency_ms || s->latency_jitter_ms || s->rate || s->slice || s->slice_delay_ms ||
           s->greet_delay_ms || s->close_after != FAULT_NONE || s->reset_after != FAULT_NONE ||
           s->stall_after != FAULT_NONE;
}

int faults_active_stream(const struct faults *f)
{
    return f->toxicity > 0 && (fault_shape_active(&f->down) || fault_shape_active(&f->up));
}

int faults_active_dgram(const struct faults *f)
{
    const struct fault_shape *s = &f->down;

    return f->toxicity > 0 &&
           (s->latency_ms || s->latency_jitter_ms || s->rate || f->drop > 0 || f->dup > 0);
}

int faults_active(const struct faults *f)
{
    return faults_active_stream(f) || faults_active_dgram(f);
}

/* ------------------------------------------------------------------ as text */

struct text {
    char *out;
    size_t len, off;
};

static void put(struct text *t, const char *fmt, unsigned long long a, unsigned long long b,
                const char *key, const char *prefix)
{
    int n;

    if (t->off >= t->len)
        return;
    n = snprintf(t->out + t->off, t->len - t->off, "%s%s%s=", t->off ? "," : "", prefix, key);
    if (n < 0)
        return;
    t->off += (size_t)n;
    if (t->off >= t->len)
        return;
    n = snprintf(t->out + t->off, t->len - t->off, fmt, a, b);
    if (n > 0)
        t->off += (size_t)n;
}

static void put_shape(struct text *t, const struct fault_shape *s, const char *prefix)
{
    if (s->latency_ms || s->latency_jitter_ms) {
        if (s->latency_jitter_ms)
            put(t, "%llums~%llums", s->latency_ms, s->latency_jitter_ms, "latency", prefix);
        else
            put(t, "%llums", s->latency_ms, 0, "latency", prefix);
    }
    if (s->rate)
        put(t, "%llu", s->rate, 0, "rate", prefix);
    if (s->slice) {
        if (s->slice_jitter)
            put(t, "%llu~%llu", s->slice, s->slice_jitter, "slice", prefix);
        else
            put(t, "%llu", s->slice, 0, "slice", prefix);
    }
    if (s->slice_delay_ms)
        put(t, "%llums", s->slice_delay_ms, 0, "slice-delay", prefix);
    if (s->greet_delay_ms)
        put(t, "%llums", s->greet_delay_ms, 0, "greet-delay", prefix);
    if (s->close_after != FAULT_NONE)
        put(t, "%llu", s->close_after, 0, "close-after", prefix);
    if (s->reset_after != FAULT_NONE)
        put(t, "%llu", s->reset_after, 0, "reset-after", prefix);
    if (s->stall_after != FAULT_NONE)
        put(t, "%llu", s->stall_after, 0, "stall-after", prefix);
}

/* A probability as the grammar reads it: at most nine decimals. */
static void put_p(struct text *t, const char *key, double p)
{
    char num[32];
    int n;

    snprintf(num, sizeof num, "%.9f", p);
    for (n = (int)strlen(num); n > 1 && num[n - 1] == '0'; n--)
        num[n - 1] = '\0';
    if (n > 1 && num[n - 1] == '.')
        num[n - 1] = '\0';
    if (t->off >= t->len)
        return;
    n = snprintf(t->out + t->off, t->len - t->off, "%s%s=%s", t->off ? "," : "", key, num);
    if (n > 0)
        t->off += (size_t)n;
}

char *faults_format(const struct faults *f, char *out, size_t len)
{
    struct text t = { .out = out, .len = len };

    if (len == 0)
        return out;
    out[0] = '\0';
    put_shape(&t, &f->down, "");
    if (f->drop > 0)
        put_p(&t, "drop", f->drop);
    if (f->dup > 0)
        put_p(&t, "dup", f->dup);
    if (f->toxicity < 1)
        put_p(&t, "toxicity", f->toxicity);
    put_shape(&t, &f->up, "up-");
    if (t.off >= len)
        out[len - 1] = '\0';
    return out;
}

/* ------------------------------------------------------------------ randomness */

/* The time ms after now (µs). The clock is in µs so that a wait is never short
 * by the part of a ms that a clock cut to the ms loses, nor padded by a ms
 * against it. */
static int64_t after(int64_t now, uint64_t ms)
{
    return now + (int64_t)ms * 1000;
}

void fault_rng_seed(struct fault_rng *r, uint64_t seed, uint64_t worker)
{
    r->s = seed ^ (worker * 0x9e3779b97f4a7c15ULL);
    (void)fault_rng_next(r);
}

uint64_t fault_rng_next(struct fault_rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

double fault_rng_unit(struct fault_rng *r)
{
    return (double)(fault_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

int fault_rng_chance(struct fault_rng *r, double p)
{
    if (p <= 0)
        return 0;
    if (p >= 1)
        return 1;
    return fault_rng_unit(r) < p;
}

uint64_t fault_rng_jitter(struct fault_rng *r, uint64_t base, uint64_t jitter, uint64_t min)
{
    uint64_t span, v;

    if (jitter == 0)
        return base < min ? min : base;
    if (jitter > UINT64_MAX / 4)
        jitter = UINT64_MAX / 4;
    span = 2 * jitter + 1;
    v = fault_rng_next(r) % span;   /* 0 .. 2J: base - J .. base + J */
    if (v < jitter && jitter - v > base)
        return min;                 /* below zero */
    v = base + v - jitter;
    return v < min ? min : v;
}

int64_t fault_delay_us(const struct fault_shape *s, struct fault_rng *r)
{
    return after(0, fault_rng_jitter(r, s->latency_ms, s->latency_jitter_ms, 0));
}

int fault_dgram_copies(const struct faults *f, struct fault_rng *r)
{
    if (fault_rng_chance(r, f->drop))
        return 0;
    return fault_rng_chance(r, f->dup) ? 2 : 1;
}

/* ------------------------------------------------------------------ the shaper */

#define RATE_STEP_PER_S 100        /* rate: a send carries 1/100 s worth of bytes */

void shape_open(struct shaper *sh, const struct fault_shape *f, int64_t now)
{
    memset(sh, 0, sizeof *sh);
    sh->next_us = after(now, f->greet_delay_ms);
}

static struct shape_mark *mark_at(struct shaper *sh, unsigned i)
{
    return &sh->marks[(sh->mhead + i) % SHAPE_MARKS];
}

void shape_made(struct shaper *sh, const struct fault_shape *f, uint64_t n, int64_t now,
                struct fault_rng *r)
{
    uint64_t start = sh->made;
    int64_t due = now;
    struct shape_mark *last = sh->mcount ? mark_at(sh, sh->mcount - 1u) : NULL;

    if (n == 0 || start == FAULT_NONE)
        return;
    sh->made = n == FAULT_NONE || start + n < start ? FAULT_NONE : start + n;
    if (f->latency_ms || f->latency_jitter_ms)
        due = after(now, fault_rng_jitter(r, f->latency_ms, f->latency_jitter_ms, 0));
    else if (last == NULL)
        return;                 /* no latency, none pending: free to go */
    if (last && due < last->due)
        due = last->due;        /* never before the bytes made earlier: order is kept */
    if (last && (due == last->due || sh->mcount == SHAPE_MARKS)) {
        last->end = sh->made;   /* full: the newest mark takes them, at its later time */
        last->due = due;
        return;
    }
    last = mark_at(sh, sh->mcount++);
    last->start = start;
    last->end = sh->made;
    last->due = due;
}

/* The smallest byte count not reached yet. */
static uint64_t next_count(const struct fault_shape *f)
{
    uint64_t c = f->close_after;

    if (f->reset_after < c)
        c = f->reset_after;
    if (f->stall_after < c)
        c = f->stall_after;
    return c;
}

/* How far the output may go now by the latency marks, or *wait_us until more may. */
static uint64_t due_end(struct shaper *sh, int64_t now, int64_t *wait_us)
{
    uint64_t end = sh->out;

    while (sh->mcount && mark_at(sh, 0)->end <= sh->out) {
        sh->mhead = (uint8_t)((sh->mhead + 1) % SHAPE_MARKS);
        sh->mcount--;
    }
    if (sh->mcount == 0)
        return FAULT_NONE;
    for (unsigned i = 0; i < sh->mcount; i++) {
        const struct shape_mark *m = mark_at(sh, i);

        if (m->start > end)
            end = m->start;     /* made without latency before the mark */
        if (m->due > now) {
            if (end == sh->out)
                *wait_us = m->due - now;
            return end;
        }
        end = m->end;
    }
    return FAULT_NONE;          /* every mark is due: the rest too */
}

static uint64_t min64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

size_t shape_allow(struct shaper *sh, const struct fault_shape *f, size_t pending, int64_t now,
                   struct fault_rng *r, int64_t *wait_us)
{
    uint64_t allow = pending, stop = next_count(f), end;

    *wait_us = -1;
    if (sh->out >= stop || pending == 0)
        return 0;
    allow = min64(allow, stop - sh->out);
    if (now < sh->next_us) {
        *wait_us = sh->next_us - now;
        return 0;
    }
    end = due_end(sh, now, wait_us);
    if (end != FAULT_NONE)
        allow = min64(allow, end - sh->out);
    if (allow == 0)
        return 0;
    if (f->rate) {
        if (sh->rate_at_us > now) {
            *wait_us = sh->rate_at_us - now;
            return 0;
        }
        allow = min64(allow, f->rate / RATE_STEP_PER_S ? f->rate / RATE_STEP_PER_S : 1);
    }
    if (f->slice) {
        if (sh->piece_left == 0)
            sh->piece_left = fault_rng_jitter(r, f->slice, f->slice_jitter, 1);
        allow = min64(allow, sh->piece_left);
    }
    return (size_t)allow;
}

void shape_sent(struct shaper *sh, const struct fault_shape *f, size_t n, int64_t now)
{
    if (n == 0)
        return;
    sh->out += n;
    if (f->rate) {
        if (sh->rate_at_us < now)
            sh->rate_at_us = now;
        sh->rate_at_us += (int64_t)(((uint64_t)n * 1000000u) / f->rate);
    }
    if (f->slice)
        sh->piece_left -= min64(n, sh->piece_left);
    if (f->slice_delay_ms && (f->slice == 0 || sh->piece_left == 0))
        sh->next_us = after(now, f->slice_delay_ms);
}

enum shape_act shape_act(const struct shaper *sh, const struct fault_shape *f)
{
    uint64_t stop = next_count(f);

    if (sh->out < stop)
        return SHAPE_GO;
    /* The first count reached; of equal ones, a reset says the most. */
    if (f->reset_after == stop)
        return SHAPE_RESET;
    if (f->close_after == stop)
        return SHAPE_FIN;
    return SHAPE_STALL;
}
