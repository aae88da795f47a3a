/* bench.h — the load generator behind `kodama bench`: the run's settings, its
 * results, and bench_run, which drives one worker thread per -t.
 *
 * Each worker owns its share of the connections, its own epoll loop and its own
 * histogram; nothing is shared on the fast path. The calling thread only waits
 * for signals, prints progress and merges the results at the end. */
#ifndef KODAMA_BENCH_H
#define KODAMA_BENCH_H

#include <stdint.h>
#include <sys/socket.h>

#include "lib/addr.h"
#include "lib/histogram.h"
#include "lib/tls.h"

enum bench_mode { BENCH_ECHO, BENCH_UDP, BENCH_HELLO };

#define BENCH_UDP_HEADER 16         /* sequence number, slot, check */
#define BENCH_UDP_MAX 65507
#define BENCH_SIZE_MAX (1ul << 20)

struct target;

struct bench_config {
    enum bench_mode mode;
    struct sockaddr_storage addr;   /* the address that answered the probe */
    socklen_t addrlen;
    char target[ADDR_TEXT_MAX];     /* it as text: 127.0.0.1:7007, unix:/path */
    unsigned long conns, size, depth, threads;
    unsigned long rate;             /* total msgs/s (hello: connections/s); 0: closed loop */
    int64_t duration_ns, warmup_ns;
    int64_t wait_ns;                /* connect timeout; udp reply timeout */
    int progress;                   /* a \r progress line on stderr each second */
    const struct target *source;    /* --source, --source-port (client.h), if given */
    /* --tls: a handshake on every connection before its traffic; NULL: plain. */
    SSL_CTX *tls_ctx;
    const struct tls_client_config *tls_cfg;
    const char *tls_host;           /* the name the certificate must be for, or NULL */
    int tls_resume;                 /* --resume: offer the worker's last session */
    const char *label;              /* --label: says which run a --json report is */
};

struct bench_counts {
    uint64_t msgs, bytes, connections;
    uint64_t corrupt, lost, resets, timeouts;
    uint64_t handshakes, resumed;   /* --tls: counted as connections are */
};

struct bench_result {
    struct bench_counts n;
    struct histogram *hist;         /* latencies in ns, all workers merged */
    double duration_s;              /* the measured time actually run */
    double start_unix, end_unix;    /* when it began and ended (s since the epoch) */
    unsigned runs;                  /* runs merged into this one (--merge); 1 */
    double overlap_s;               /* --merge: the time all the runs shared */
    double msgs_per_s, mib_per_s, conns_per_s;  /* --merge: the runs' sums; else 0 */
    int tls;                        /* --merge: a run was over TLS (handshakes count) */
    int interrupted;                /* SIGINT or SIGTERM */
    int failed;                     /* a worker stopped the run, for this reason: */
    char fail_msg[256];
    int fail_verdict;               /* its verdict (lib/verdict.h) */
};

static inline uint64_t bench_errors(const struct bench_counts *n)
{
    return n->corrupt + n->lost + n->resets + n->timeouts;
}

const char *bench_mode_name(enum bench_mode mode);

/* Run the benchmark described by cfg. Returns 0 with *res filled (res->hist is the
 * caller's to free), or -1 if it could not start (after printing one line). */
int bench_run(const struct bench_config *cfg, struct bench_result *res);

/* --merge: the reports in files (bench --json output, one a line, after any prefix
 * a log adds) summed into cfg and res (res->hist is the caller's to free). Returns
 * 0, or -1 after printing one line. */
int bench_merge(char *const *files, size_t nfiles, struct bench_config *cfg,
                struct bench_result *res);

/* The report on stdout: `key value` lines, or one JSON object. */
void bench_report_text(const struct bench_config *cfg, const struct bench_result *res);
void bench_report_json(const struct bench_config *cfg, const struct bench_result *res);
/* One progress line, "\r" first, for stderr. */
int bench_progress_line(char *buf, size_t len, double elapsed_s, double msgs_per_s,
                        uint64_t p99_ns, uint64_t errors, int warming);

/* `kodama bench` (main.c's table). */
#include <stdio.h>
int cmd_bench(int argc, char **argv);
void help_bench(FILE *out);

#endif
