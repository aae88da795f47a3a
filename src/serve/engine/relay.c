/* relay.c — relay@ADDR,to=TARGET: each accepted client is connected to the target
 * and the bytes are copied both ways (see relay.h), on the readiness path of
 * either engine. relay_open.c starts a relay; this file moves its bytes and
 * closes it.
 *
 * Each direction (up: client to target; down: target to client) moves its bytes
 * one of two ways. With no fault on it, splice(2) through a pipe of its own, so
 * the bytes never cross user space and the pipe (64 KiB) bounds what it holds.
 * With a fault, a buffer from the worker's pool (--max-buffer) and a shaper, as
 * conn.c's; a direction changes way when the control API changes its faults, once
 * what the old way holds is out. A direction reads only while it has room: a peer
 * that never reads stops the other's input, and memory stays bounded.
 *
 * A FIN from one side becomes a shutdown(SHUT_WR) of the other once what came
 * before it is delivered; when both have passed, both sockets are closed. A reset
 * (or a write that fails) on one side is passed on as a reset of the other
 * (SO_LINGER 0), and both are closed. A target that refuses or does not answer
 * within connect-timeout resets the client at once, counted as relay_target. */
#include "serve/engine/relay.h"
#include "serve/engine/relay_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/net.h"
#include "lib/ring.h"
#include "lib/util.h"
#include "proto/proxy.h"
#include "serve/engine/stream.h"

#define STEPS_PER_EVENT 16          /* pumps per event before the others' turn */
#define RESET_POLL_MS 5
#define PIPE_CAP_DEFAULT 65536


static struct relay *relay_of_dir(struct relay_dir *d)
{
    return d->up ? container_of(d, struct relay, up) : container_of(d, struct relay, down);
}

static int src_fd(const struct relay *r, const struct relay_dir *d)
{
    return d->up ? r->s.fd : r->tw.fd;
}

static int dst_fd(const struct relay *r, const struct relay_dir *d)
{
    return d->up ? r->tw.fd : r->s.fd;
}

/* The faults on d now: the listener's (up- keys toward the target), as the control
 * API last set them, unless the toxicity roll leaves the connection out. */
const struct fault_shape *relay_dir_faults(struct relay *r, const struct relay_dir *d)
{
    struct listener *l = r->s.l;

    listener_faults_fresh(l);
    if (r->roll >= l->faults.toxicity)
        return &fault_shape_none;
    return d->up ? &l->faults.up : &l->faults.down;
}

static size_t dir_held(const struct relay_dir *d)
{
    return d->in_pipe + ring_used(&d->buf);
}

/* ------------------------------------------------------------------ closing */

static void dir_free(struct worker *wk, struct relay_dir *d)
{
    worker_wait_del(wk, &d->wait);
    if (d->pipe[0] >= 0) {
        close(d->pipe[0]);
        close(d->pipe[1]);
    }
    if (d->buf.data) {
        d->buf.len = 0;
        pool_put(&wk->pool, ring_detach(&d->buf));
    }
}

/* Close both sides; a reset on those asked for (a reset passed on, or given up). */
static void relay_close(struct relay *r, int reset_client, int reset_target)
{
    struct worker *wk = relay_wk(r);
    struct ip_count *ipc = r->s.ipc;
    int rc;

    r->closed = 1;
    loop_unwatch(wk->loop, &r->cw);
    loop_unwatch(wk->loop, &r->tw);
    worker_wait_del(wk, &r->connect_wait);
    if (reset_client)
        net_reset_on_close(r->s.fd);
    rc = close(r->s.fd);
    if (TRACE_ON)
        trace_fd("close(%d)", r->s.fd, rc);
    if (r->tw.fd >= 0) {
        if (reset_target)
            net_reset_on_close(r->tw.fd);
        rc = close(r->tw.fd);
        if (TRACE_ON)
            trace_fd("close(%d)", r->tw.fd, rc);
    }
    dir_free(wk, &r->up);
    dir_free(wk, &r->down);
    stream_retire(&r->s);
    free(r);
    stream_freed(wk, ipc);
}

/* A side failed or reset (err): the other gets a reset too, as a direct
 * connection's peer would have. */
static void relay_broken(struct relay *r, int client_side)
{
    relay_close(r, !client_side, client_side);
}

/* ------------------------------------------------------------------ the target */

void relay_target_failed(struct relay *r, const char *what, int err)
{
    char detail[ADDR_TEXT_MAX + 96];

    snprintf(detail, sizeof detail, "the relay's target %s %s (%s)", r->s.l->relay->to_text,
             what, strerror(err));
    worker_drop_detail(relay_wk(r), r->s.l, DROP_RELAY_TARGET, r->s.fd, NULL, 0, detail);
    relay_close(r, 1, 0);
}

void relay_connect_timed_out(struct worker_wait *w)
{
    struct relay *r = container_of(w, struct relay, connect_wait);

    relay_target_failed(r, "did not answer in time", ETIMEDOUT);
}

static void connected(struct relay *r)
{
    int err = 0;
    socklen_t len = sizeof err;

    if (getsockopt(r->tw.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (err) {
        relay_target_failed(r, net_reset_after_handshake(err) ? "accepted, then reset" : "refused",
                            err);
        return;
    }
    r->connecting = 0;
    worker_wait_del(relay_wk(r), &r->connect_wait);
    relay_step(r);
}

/* ------------------------------------------------------------------ moving bytes */

static void count_in(struct relay *r, struct relay_dir *d, size_t n)
{
    if (!d->up)
        return;
    r->s.in += n;
    counter_add(&r->s.l->stats.bytes_in, n);
}

static void count_out(struct relay *r, struct relay_dir *d, size_t n)
{
    if (!d->up)
        stream_sent(&r->s, n);
}

/* An error of a read or write on fd: which side failed. */
static int side_of(const struct relay *r, int fd)
{
    return fd == r->s.fd;
}

/* What a read (readv or splice) of n bytes from d's source means: the bytes,
 * counted; 0 for none now, or for EOF (flagged); -1 if the relay is closed. */
static ssize_t took_in(struct relay *r, struct relay_dir *d, ssize_t n)
{
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    if (n < 0) {
        relay_broken(r, side_of(r, src_fd(r, d)));
        return -1;
    }
    if (n == 0) {
        d->eof = 1;
        return 0;
    }
    count_in(r, d, (size_t)n);
    return n;
}

/* Read into the buffer (shaped), or discard. Returns bytes, 0 for none now (or
 * EOF, flagged), -1 if the relay is closed. */
static ssize_t fill_buffer(struct relay *r, struct relay_dir *d, const struct fault_shape *f)
{
    char discard[4096], *into = discard;
    size_t room = sizeof discard;
    struct iovec iov[2];
    ssize_t n;
    int cnt = 1;

    if (!d->discard) {
        if (d->buf.data == NULL) {
            char *b = pool_get(&relay_wk(r)->pool);

            if (b == NULL) {
                relay_broken(r, 1);
                return -1;
            }
            ring_attach(&d->buf, b, relay_wk(r)->cfg->max_buffer);
        }
        cnt = ring_space_iov(&d->buf, iov);
        if (cnt == 0)
            return 0;
    } else {
        iov[0].iov_base = into;
        iov[0].iov_len = room;
    }
    n = readv(src_fd(r, d), iov, cnt);
    if (TRACE_ON)
        trace_io("recv", src_fd(r, d), n, room);
    n = took_in(r, d, n);
    if (n > 0 && !d->discard) {
        ring_produce(&d->buf, (size_t)n);
        shape_made(&d->sh, f, (uint64_t)n, now_us(), &relay_wk(r)->rng);
    }
    return n;
}

/* splice(2) from the source into the pipe: no copy through user space. */
static ssize_t fill_pipe(struct relay *r, struct relay_dir *d)
{
    ssize_t n;

    if (d->in_pipe >= d->pipe_cap)
        return 0;
    n = splice(src_fd(r, d), NULL, d->pipe[1], NULL, d->pipe_cap - d->in_pipe,
               SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (TRACE_ON)
        trace_io("splice in", src_fd(r, d), n, d->pipe_cap - d->in_pipe);
    n = took_in(r, d, n);
    if (n > 0) {
        d->in_pipe += (size_t)n;
        shape_made(&d->sh, &fault_shape_none, (uint64_t)n, now_us(), &relay_wk(r)->rng);
    }
    return n;
}

/* A pipe for splicing, made when first needed; without one (out of descriptors)
 * the direction copies through its buffer instead. */
static int dir_pipe(struct relay_dir *d)
{
    int cap;

    if (d->pipe[0] >= 0)
        return 0;
    if (pipe2(d->pipe, O_NONBLOCK | O_CLOEXEC) < 0) {
        d->pipe[0] = d->pipe[1] = -1;
        return -1;
    }
    cap = fcntl(d->pipe[0], F_GETPIPE_SZ);
    d->pipe_cap = cap > 0 ? (size_t)cap : PIPE_CAP_DEFAULT;
    return 0;
}

static int dir_wants_input(const struct relay *r, const struct relay_dir *d)
{
    if (r->connecting || r->stalled || d->eof || d->resetting)
        return 0;
    if (d->discard)
        return 1;
    if (d->in_pipe > 0)
        return d->in_pipe < d->pipe_cap;
    return d->buf.data == NULL || ring_space(&d->buf) > 0;
}

static ssize_t dir_fill(struct relay *r, struct relay_dir *d, const struct fault_shape *f)
{
    if (!dir_wants_input(r, d))
        return 0;
    if (!d->discard && !fault_shape_active(f) && ring_empty(&d->buf) && dir_pipe(d) == 0)
        return fill_pipe(r, d);
    if (d->in_pipe > 0)
        return 0;       /* faults came: what the pipe holds goes first */
    return fill_buffer(r, d, f);
}

/* A send to d's sink took less than offered, or nothing: the sink is full. */
static void dir_full(struct relay *r, struct relay_dir *d)
{
    d->full_unsent = net_unsent(dst_fd(r, d));
    d->full_out = d->sh.out;
}

/* Returns bytes sent, 0 for none now, -1 if the relay is closed. */
static ssize_t flush_pipe(struct relay *r, struct relay_dir *d)
{
    ssize_t n = splice(d->pipe[0], NULL, dst_fd(r, d), NULL, d->in_pipe,
                       SPLICE_F_MOVE | SPLICE_F_NONBLOCK);

    if (TRACE_ON)
        trace_io("splice out", dst_fd(r, d), n, d->in_pipe);

    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        if (errno == EAGAIN)
            dir_full(r, d);
        d->want_write = 1;
        return 0;
    }
    if (n <= 0) {
        relay_broken(r, side_of(r, dst_fd(r, d)));
        return -1;
    }
    d->in_pipe -= (size_t)n;
    d->want_write = d->in_pipe > 0;
    shape_sent(&d->sh, &fault_shape_none, (size_t)n, now_us());
    if (d->want_write)
        dir_full(r, d);
    count_out(r, d, (size_t)n);
    return n;
}

/* What the shaper lets go from the buffer, or a wait on the heap for the rest. */
static ssize_t flush_buffer(struct relay *r, struct relay_dir *d, const struct fault_shape *f)
{
    struct worker *wk = relay_wk(r);
    int64_t now = now_us();
    struct iovec iov[2];
    size_t allow, left;
    int64_t wait;
    int cnt;
    ssize_t n;

    allow = shape_allow(&d->sh, f, ring_used(&d->buf), now, &wk->rng, &wait);
    if (allow == 0) {
        d->want_write = 0;      /* the heap wakes it, not a writable socket */
        if (wait > 0 && worker_wait_set(wk, &d->wait, now + wait) < 0) {
            relay_broken(r, 1);
            return -1;
        }
        return 0;
    }
    cnt = ring_data_iov(&d->buf, iov);
    left = allow;
    for (int i = 0; i < cnt; i++) {
        if (iov[i].iov_len > left)
            iov[i].iov_len = left;
        left -= iov[i].iov_len;
    }
    n = sendmsg(dst_fd(r, d), &(struct msghdr){ .msg_iov = iov, .msg_iovlen = (size_t)cnt },
                MSG_NOSIGNAL | MSG_DONTWAIT);
    if (TRACE_ON)
        trace_io("send", dst_fd(r, d), n, allow - left);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        if (errno == EAGAIN)
            dir_full(r, d);
        d->want_write = 1;
        return 0;
    }
    if (n < 0) {
        relay_broken(r, side_of(r, dst_fd(r, d)));
        return -1;
    }
    shape_sent(&d->sh, f, (size_t)n, now);
    ring_consume(&d->buf, (size_t)n);
    d->want_write = (size_t)n < allow;
    if (d->want_write)
        dir_full(r, d);
    if (ring_empty(&d->buf))
        pool_put(&wk->pool, ring_detach(&d->buf));
    count_out(r, d, (size_t)n);
    return n;
}

/* send-proxy: the header goes to the target before any byte of the client's. */
static ssize_t flush_header(struct relay *r)
{
    ssize_t n = send(r->tw.fd, r->hdr + r->hdr_off, (size_t)(r->hdr_len - r->hdr_off),
                     MSG_NOSIGNAL | MSG_DONTWAIT);

    if (TRACE_ON)
        trace_io("send", r->tw.fd, n, (size_t)(r->hdr_len - r->hdr_off));

    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        r->up.want_write = 1;
        return 0;
    }
    if (n < 0) {
        relay_broken(r, 0);
        return -1;
    }
    r->hdr_off = (uint8_t)(r->hdr_off + n);
    return n;
}

static ssize_t dir_flush(struct relay *r, struct relay_dir *d, const struct fault_shape *f)
{
    if (d->up && r->hdr_off < r->hdr_len)
        return flush_header(r);
    if (d->in_pipe > 0)
        return flush_pipe(r, d);
    if (!ring_empty(&d->buf))
        return flush_buffer(r, d, f);
    d->want_write = 0;
    return 0;
}

/* ------------------------------------------------------------------ the byte counts */

/* reset-after: what was sent must reach the peer first, then both sides reset. */
static int dir_reset_when_delivered(struct relay *r, struct relay_dir *d)
{
    if (net_undelivered(dst_fd(r, d)) > 0 &&
        worker_wait_set(relay_wk(r), &d->wait, now_us() + RESET_POLL_MS * 1000) == 0) {
        d->resetting = 1;
        return 0;
    }
    relay_close(r, 1, 1);
    return -1;
}

/* Drop what d holds and pass its FIN now: close-after. */
static void dir_cut(struct relay *r, struct relay_dir *d)
{
    struct worker *wk = relay_wk(r);

    d->discard = 1;
    if (d->buf.data) {
        d->buf.len = 0;
        pool_put(&wk->pool, ring_detach(&d->buf));
    }
    if (d->in_pipe > 0) {       /* a new, empty pipe if it is used again */
        close(d->pipe[0]);
        close(d->pipe[1]);
        d->pipe[0] = d->pipe[1] = -1;
        d->in_pipe = 0;
    }
}

/* Returns -1 if the relay is closed, 1 if it stalled, 0 to go on. */
static int dir_act(struct relay *r, struct relay_dir *d, const struct fault_shape *f)
{
    struct listener_stats *st = &r->s.l->stats;

    if (d->resetting)
        return dir_reset_when_delivered(r, d);
    switch (shape_act(&d->sh, f)) {
    case SHAPE_GO:
        return 0;
    case SHAPE_FIN:
        if (!d->discard) {
            counter_add(&st->faults[FAULT_CLOSE_AFTER], 1);
            dir_cut(r, d);
        }
        return 0;
    case SHAPE_RESET:
        counter_add(&st->faults[FAULT_RESET_AFTER], 1);
        dir_cut(r, d);
        return dir_reset_when_delivered(r, d);
    case SHAPE_STALL:
        counter_add(&st->faults[FAULT_STALL_AFTER], 1);
        r->stalled = 1;
        return 1;
    }
    return 0;
}

/* ------------------------------------------------------------------ the steps */

/* One round for one direction: out, then in, then out again, the faults' byte
 * counts acted on after each send (a count the round's last send reached must not
 * wait for an event that may never come). Returns 1 if bytes moved, 0 if not, -1
 * if the relay is closed. */
static int dir_pump(struct relay *r, struct relay_dir *d)
{
    const struct fault_shape *f = relay_dir_faults(r, d);
    ssize_t a, b, c;
    int act = dir_act(r, d, f);

    if (act != 0 || d->resetting)
        return act < 0 ? -1 : 0;
    if ((a = dir_flush(r, d, f)) < 0)
        return -1;
    if ((act = dir_act(r, d, f)) != 0 || d->resetting)
        return act < 0 ? -1 : 0;
    if ((b = dir_fill(r, d, f)) < 0 || (c = dir_flush(r, d, f)) < 0)
        return -1;
    if (c > 0 && dir_act(r, d, f) < 0)
        return -1;
    return a > 0 || b > 0 || c > 0;
}

/* A FIN that came is passed on once what came before it is out. */
static int dir_pass_fin(struct relay *r, struct relay_dir *d)
{
    int rc;

    /* reset-after: the sink gets a reset, not a FIN before it. */
    if (d->shut || d->resetting || (!d->eof && !d->discard) || dir_held(d) > 0 ||
        (d->up && r->hdr_off < r->hdr_len))
        return 0;
    d->shut = 1;
    rc = shutdown(dst_fd(r, d), SHUT_WR);
    if (TRACE_ON)
        trace_fd("shutdown(%d, SHUT_WR)", dst_fd(r, d), rc);
    if (rc < 0) {
        relay_broken(r, side_of(r, dst_fd(r, d)));
        return -1;
    }
    return 0;
}

static unsigned side_mask(const struct relay *r, const struct relay_dir *in,
                          const struct relay_dir *out)
{
    unsigned mask = 0;

    if (r->stalled)
        return 0;
    if (dir_wants_input(r, in))
        mask |= LOOP_READ;
    if (out->want_write && dir_held(out) + (out->up ? (size_t)(r->hdr_len - r->hdr_off) : 0))
        mask |= LOOP_WRITE;
    return mask;
}

/* Returns 0, or -1 if the relay is closed (a watch failed). */
int relay_watch(struct relay *r)
{
    struct worker *wk = relay_wk(r);
    unsigned tmask = r->connecting ? LOOP_WRITE : side_mask(r, &r->down, &r->up);

    if (loop_watch(wk->loop, &r->cw, r->connecting ? 0 : side_mask(r, &r->up, &r->down)) < 0 ||
        loop_watch(wk->loop, &r->tw, tmask) < 0) {
        relay_close(r, 1, 1);
        return -1;
    }
    return 0;
}

static void relay_schedule(struct relay *r, uint64_t in0, uint64_t out0, uint64_t up0)
{
    struct stream_set *set = stream_set_of(&r->s);
    int took = r->s.out != out0 || r->up.sh.out != up0;
    int moved = took || r->s.in != in0;

    if (r->stalled) {
        deadline_start_once(&set->idle, &r->s.timer);
        return;
    }
    if (r->up.shut && r->down.shut) {
        deadline_start_once(&set->lingering, &r->s.timer);
        return;
    }
    stream_schedule(&r->s, r->up.want_write || r->down.want_write, took, moved);
}

/* Both FINs passed both ways. A direction that discards (close-after) does not
 * wait for its source's FIN once the other side's came: a chargen target never
 * sends one, and the relay would go on reading and throwing away its stream, a
 * core's worth, until the linger clock ran out. (Its unread bytes make the
 * close a reset toward it, as a client's close does to chargen.) */
static int relay_done(const struct relay *r)
{
    const struct relay_dir *up = &r->up, *down = &r->down;

    return up->shut && down->shut && (up->eof || (up->discard && down->eof)) &&
           (down->eof || (down->discard && up->eof));
}

void relay_step(struct relay *r)
{
    uint64_t in0 = r->s.in, out0 = r->s.out, up0 = r->up.sh.out;
    int moved = 1;

    for (int i = 0; i < STEPS_PER_EVENT && moved && !r->stalled; i++) {
        int u = dir_pump(r, &r->up), d;

        if (u < 0)
            return;
        d = dir_pump(r, &r->down);
        if (d < 0)
            return;
        moved = u || d;
    }
    if (moved) {
        /* Out of turns with bytes still to go: a writable event brings us back, after
         * the others' turn (nothing else might: a full buffer does not read). */
        r->up.want_write = r->up.want_write || dir_held(&r->up) > 0;
        r->down.want_write = r->down.want_write || dir_held(&r->down) > 0;
    }
    if (!r->stalled && (dir_pass_fin(r, &r->up) < 0 || dir_pass_fin(r, &r->down) < 0))
        return;
    if (relay_done(r)) {
        relay_close(r, 0, 0);
        return;
    }
    if (relay_watch(r) == 0)
        relay_schedule(r, in0, out0, up0);
}

/* ------------------------------------------------------------------ events */

void relay_client_event(struct loop *loop, struct watch *w, unsigned events)
{
    (void)loop;
    (void)events;
    relay_step(container_of(w, struct relay, cw));
}

void relay_target_event(struct loop *loop, struct watch *w, unsigned events)
{
    struct relay *r = container_of(w, struct relay, tw);

    (void)loop;
    (void)events;
    if (r->connecting)
        connected(r);
    else
        relay_step(r);
}

void relay_dir_due(struct worker_wait *w)
{
    struct relay_dir *d = container_of(w, struct relay_dir, wait);

    relay_step(relay_of_dir(d));
}

/* ------------------------------------------------------------------ clocks, stop */

static void linger_expired(struct deadline_list *dl, struct deadline *dd)
{
    (void)dl;
    relay_close(container_of(dd, struct relay, s.timer), 0, 0);
}

/* Silent too long (or stalled until now): goodbye both ways. */
static void idle_expired(struct deadline_list *dl, struct deadline *dd)
{
    struct relay *r = container_of(dd, struct relay, s.timer);

    (void)dl;
    stream_idle_expired(&r->s);
    if (r->stalled || r->connecting) {
        relay_close(r, 0, 0);
        return;
    }
    r->up.discard = r->down.discard = 1;
    relay_step(r);
}

/* Whether d's sink, if bytes wait for it, took some since it was found full (or
 * since the last check), though none of ours went: as stream.c's check, per side. */
static int dir_sink_reads(struct relay *r, struct relay_dir *d)
{
    int unsent;

    if (!d->want_write)
        return 1;
    if (d->full_unsent < 0 || d->full_out != d->sh.out)
        return 0;
    unsent = net_unsent(dst_fd(r, d));
    if (unsent < 0 || unsent >= d->full_unsent)
        return 0;
    d->full_unsent = unsent;
    return 1;
}

/* A side reads nothing while the other's bytes wait for it: give up on both. A
 * side that reads slowly is not that. */
static void stall_expired(struct deadline_list *dl, struct deadline *dd)
{
    struct relay *r = container_of(dd, struct relay, s.timer);
    int up_reads = dir_sink_reads(r, &r->up), down_reads = dir_sink_reads(r, &r->down);

    (void)dl;
    if ((r->up.want_write || r->down.want_write) && up_reads && down_reads) {
        deadline_start(&stream_set_of(&r->s)->stalled, &r->s.timer);
        return;
    }
    if (stream_stall_expired(&r->s))
        relay_close(r, 1, 1);
}

/* The server is stopping: what is held is delivered, then both sides are told
 * goodbye and the relay lingers for theirs. */
static void relay_stop(struct stream *s)
{
    struct relay *r = container_of(s, struct relay, s);

    r->s.stopping = 1;
    if (r->connecting || r->stalled) {
        relay_close(r, 0, 0);
        return;
    }
    r->up.discard = r->down.discard = 1;
    relay_step(r);
}

static void relay_close_now(struct stream *s)
{
    relay_close(container_of(s, struct relay, s), 0, 0);
}

void relay_engine_init(struct worker *wk)
{
    stream_set_init(wk, STREAM_RELAY, linger_expired, idle_expired, stall_expired, relay_stop,
                    relay_close_now);
}
