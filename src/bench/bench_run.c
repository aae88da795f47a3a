/* bench_run.c — start the workers, wait for the end, a signal or a failure while
 * printing progress, then merge what they measured. See bench.h. */
#include "bench/bench.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench_worker.h"
#include "lib/log.h"
#include "lib/util.h"

#define SUPERVISE_NS (100 * NS_PER_MS)

/* Connections split as evenly as they go; the rate in proportion to them. */
static void plan(const struct bench_config *cfg, struct bench_shared *sh, struct bench_thread *t)
{
    for (unsigned i = 0; i < cfg->threads; i++) {
        t[i].cfg = cfg;
        t[i].traffic = cfg->mode == BENCH_UDP ? &bench_udp_traffic : &bench_stream_traffic;
        t[i].sh = sh;
        t[i].index = i;
        t[i].nconns = cfg->conns / cfg->threads + (i < cfg->conns % cfg->threads);
        t[i].rate = (double)cfg->rate * (double)t[i].nconns / (double)cfg->conns;
        t[i].hist = xmalloc(sizeof *t[i].hist);
        hist_init(t[i].hist);
        if (cfg->progress) {
            t[i].pub = xmalloc(sizeof *t[i].pub);
            hist_init(t[i].pub);
        }
        pthread_mutex_init(&t[i].pub_lock, NULL);
    }
}

static void write_stderr(const char *s, size_t len)
{
    while (len > 0) {
        ssize_t n = write(STDERR_FILENO, s, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        s += n;
        len -= (size_t)n;
    }
}

struct progress {
    int64_t next;
    int64_t last_at;
    uint64_t last_msgs;
    int shown;
    struct histogram *merged;
};

static void show_progress(const struct bench_config *cfg, struct bench_shared *sh,
                          struct bench_thread *t, struct progress *p, int64_t now)
{
    uint64_t msgs = 0, errors = 0;
    char line[160];
    int len;

    if (!cfg->progress || now < p->next)
        return;
    p->next += NS_PER_S;
    hist_init(p->merged);
    for (unsigned i = 0; i < cfg->threads; i++) {
        msgs += atomic_load_explicit(&t[i].live_msgs, memory_order_relaxed);
        errors += atomic_load_explicit(&t[i].live_errors, memory_order_relaxed);
        if (pthread_mutex_lock(&t[i].pub_lock) == 0) {
            hist_merge(p->merged, t[i].pub);
            pthread_mutex_unlock(&t[i].pub_lock);
        }
    }
    len = bench_progress_line(line, sizeof line, (double)(now - sh->start) / NS_PER_S,
                              (double)(msgs - p->last_msgs) * NS_PER_S / (double)(now - p->last_at),
                              hist_percentile(p->merged, 99), errors, now < sh->measure);
    p->last_msgs = msgs;
    p->last_at = now;
    if (len > 0) {
        write_stderr(line, (size_t)len < sizeof line ? (size_t)len : sizeof line - 1);
        p->shown = 1;
    }
}

/* Until every worker has returned: signals stop the run, progress each second. */
static int supervise(const struct bench_config *cfg, struct bench_shared *sh,
                     struct bench_thread *t, const sigset_t *sigs)
{
    struct progress p = { .next = sh->start + NS_PER_S, .last_at = sh->start };
    struct timespec tick = { 0, SUPERVISE_NS };
    int interrupted = 0;

    if (cfg->progress)
        p.merged = xmalloc(sizeof *p.merged);
    while (atomic_load(&sh->finished) < (int)cfg->threads) {
        int sig = sigtimedwait(sigs, NULL, &tick);

        if (sig == SIGINT || sig == SIGTERM) {
            interrupted = 1;
            bench_stop(sh, clock_ns());
        }
        show_progress(cfg, sh, t, &p, clock_ns());
    }
    if (p.shown)
        write_stderr("\r\033[K", 4);
    free(p.merged);
    return interrupted;
}

static void collect(const struct bench_config *cfg, struct bench_shared *sh,
                    struct bench_thread *t, unsigned started, struct bench_result *res)
{
    int64_t stop = atomic_load(&sh->stop_at), until = sh->end;

    res->hist = xmalloc(sizeof *res->hist);
    hist_init(res->hist);
    for (unsigned i = 0; i < started; i++) {
        const struct bench_counts *n = &t[i].n;

        pthread_join(t[i].tid, NULL);
        res->n.msgs += n->msgs;
        res->n.bytes += n->bytes;
        res->n.connections += n->connections;
        res->n.corrupt += n->corrupt;
        res->n.lost += n->lost;
        res->n.resets += n->resets;
        res->n.timeouts += n->timeouts;
        res->n.handshakes += n->handshakes;
        res->n.resumed += n->resumed;
        hist_merge(res->hist, t[i].hist);
    }
    for (unsigned i = 0; i < cfg->threads; i++) {
        free(t[i].hist);
        free(t[i].pub);
        pthread_mutex_destroy(&t[i].pub_lock);
    }
    if (stop != 0 && stop < until)
        until = stop;
    res->duration_s = until > sh->measure ? (double)(until - sh->measure) / NS_PER_S : 0.0;
    res->end_unix = sh->measure_unix + res->duration_s;
    res->start_unix = sh->measure_unix;
    res->overlap_s = res->duration_s;
    res->runs = 1;
    if (atomic_load(&sh->failed)) {
        res->failed = 1;
        snprintf(res->fail_msg, sizeof res->fail_msg, "%s", sh->fail_msg);
        res->fail_verdict = sh->fail_verdict;
    }
}

/* The real-time clock, for the report's start and end: runs on several machines
 * are merged by it (the monotonic clock is each machine's own). */
static double wall_seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int bench_run(const struct bench_config *cfg, struct bench_result *res)
{
    struct bench_shared *sh = xcalloc(1, sizeof *sh);
    struct bench_thread *t = xcalloc(cfg->threads, sizeof *t);
    unsigned started = 0;
    sigset_t sigs;
    int rc = 0;

    /* The workers inherit the mask: only this thread takes SIGINT and SIGTERM. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    memset(res, 0, sizeof *res);
    sh->start = clock_ns();
    sh->measure = sh->start + cfg->warmup_ns;
    sh->measure_unix = wall_seconds() + (double)cfg->warmup_ns / NS_PER_S;
    sh->end = sh->measure + cfg->duration_ns;
    plan(cfg, sh, t);
    for (; started < cfg->threads; started++) {
        int err = pthread_create(&t[started].tid, NULL, bw_main, &t[started]);
        if (err != 0) {
            log_msg("bench: cannot start a thread: %s", strerror(err));
            bench_stop(sh, clock_ns());
            atomic_fetch_add(&sh->finished, (int)(cfg->threads - started));
            rc = -1;
            break;
        }
    }
    res->interrupted = supervise(cfg, sh, t, &sigs);
    collect(cfg, sh, t, started, res);
    free(t);
    free(sh);
    return rc;
}
