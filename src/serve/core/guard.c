/* guard.c — see guard.h.
 *
 * Connections per address: an exact count in a chained hash table (an entry lives
 * while its address has a connection open, so the table is bounded by --max-conns).
 * Datagrams per address: token buckets in a fixed set-associative table, oldest
 * entry replaced; forgetting a quiet source only gives it a fresh bucket, and a
 * flood of spoofed sources cannot grow memory. Both are shared by the workers
 * under a mutex, taken only for sources the rules apply to. */
#include "serve/core/guard.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "lib/addr.h"
#include "lib/util.h"

#define BUCKET_SETS 2048            /* udp: sets of BUCKET_WAYS sources; a power of two */
#define BUCKET_WAYS 4
#define MILLI 1000                  /* a bucket counts thousandths of a datagram */

/* A source as the rules see it: an IPv4 address (as ::ffff:a.b.c.d) or an IPv6 /64. */
struct addr_key {
    uint8_t b[16];
};

struct ip_count {
    struct addr_key key;
    unsigned count;
    struct ip_count *next;
};

struct udp_bucket {
    struct addr_key key;
    int64_t last_ms;                /* 0: unused */
    uint64_t tokens;                /* in thousandths */
};

struct guard {
    struct guard_config cfg;
    uint64_t seed[2];
    atomic_size_t conns;
    pthread_mutex_t ip_lock;
    struct ip_count **ip_table;
    size_t ip_mask;
    pthread_mutex_t udp_lock;
    struct udp_bucket *buckets;     /* BUCKET_SETS * BUCKET_WAYS, made when first needed */
    uint16_t *ports;                /* the ports we serve on */
    size_t nports;
    struct log_limit logs[DROP_REASONS];
};

static const char *const reason_names[DROP_REASONS] = {
    [DROP_MAX_CONNS] = "max_conns",
    [DROP_PER_IP] = "per_ip",
    [DROP_IDLE] = "idle_timeout",
    [DROP_SEND_TIMEOUT] = "send_timeout",
    [DROP_BAD_PROXY] = "bad_proxy_header",
    [DROP_BAD_TLS] = "tls_handshake",
    [DROP_RELAY_TARGET] = "relay_target",
    [DROP_UDP_PORT] = "udp_source_port",
    [DROP_UDP_OWN_PORT] = "udp_own_port",
    [DROP_UDP_RATE] = "udp_rate",
    [DROP_UDP_SHORT] = "udp_short_request",
};

const char *drop_reason_name(enum drop_reason r)
{
    return (unsigned)r < DROP_REASONS ? reason_names[r] : "?";
}

/* Returns 0 and the key, or -1 for addresses no rule counts (unix sockets). */
static int addr_key(const struct sockaddr *sa, socklen_t len, struct addr_key *k, int *loopback)
{
    memset(k, 0, sizeof *k);
    if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

        k->b[10] = k->b[11] = 0xff;
        memcpy(k->b + 12, &in->sin_addr, 4);
    } else if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;

        if (IN6_IS_ADDR_LOOPBACK(a)) {
            *loopback = 1;
            return 0;
        }
        /* A dual-stack socket's IPv4 clients are IPv4 clients; a v6 host has a /64. */
        memcpy(k->b, a->s6_addr, IN6_IS_ADDR_V4MAPPED(a) ? 16 : 8);
    } else {
        return -1;
    }
    *loopback = k->b[10] == 0xff && k->b[11] == 0xff && k->b[12] == 127 &&
                memcmp(k->b, "\0\0\0\0\0\0\0\0\0\0", 10) == 0;
    return 0;
}

static uint64_t key_hash(const struct guard *g, const struct addr_key *k)
{
    uint64_t a, b, h;

    memcpy(&a, k->b, 8);
    memcpy(&b, k->b + 8, 8);
    /* Seeded, so that no one can pick addresses that share a chain. */
    h = (a ^ g->seed[0]) * 0x9e3779b97f4a7c15u;
    h ^= (b ^ g->seed[1]) + (h >> 29);
    h *= 0xbf58476d1ce4e5b9u;
    return h ^ (h >> 31);
}

static size_t ip_table_size(size_t max_conns)
{
    size_t want = max_conns ? max_conns / 2 : 4096, n = 64;

    if (want > ((size_t)1 << 20))
        want = (size_t)1 << 20;
    while (n < want)
        n <<= 1;
    return n;
}

struct guard *guard_new(const struct guard_config *cfg, const uint16_t *ports, size_t nports)
{
    struct guard *g = xcalloc(1, sizeof *g);
    size_t n = ip_table_size(cfg->max_conns);

    g->cfg = *cfg;
    if (getrandom(g->seed, sizeof g->seed, 0) != (ssize_t)sizeof g->seed) {
        g->seed[0] = (uint64_t)now_ms();     /* only the chains' balance depends on it */
        g->seed[1] = (uint64_t)(uintptr_t)g;
    }
    atomic_init(&g->conns, 0);
    pthread_mutex_init(&g->ip_lock, NULL);
    pthread_mutex_init(&g->udp_lock, NULL);
    g->ip_table = xcalloc(n, sizeof *g->ip_table);
    g->ip_mask = n - 1;
    g->ports = xcalloc(nports ? nports : 1, sizeof *g->ports);
    if (nports)
        memcpy(g->ports, ports, nports * sizeof *ports);
    g->nports = nports;
    return g;
}

void guard_free(struct guard *g)
{
    if (g == NULL)
        return;
    for (size_t i = 0; i <= g->ip_mask; i++) {
        while (g->ip_table[i]) {
            struct ip_count *e = g->ip_table[i];

            g->ip_table[i] = e->next;
            free(e);
        }
    }
    free(g->ip_table);
    free(g->buckets);
    free(g->ports);
    pthread_mutex_destroy(&g->ip_lock);
    pthread_mutex_destroy(&g->udp_lock);
    free(g);
}

/* Under ip_lock. Returns the address's entry, made if needed; NULL when out of memory. */
static struct ip_count *ip_lookup(struct guard *g, const struct addr_key *k)
{
    struct ip_count **head = &g->ip_table[key_hash(g, k) & g->ip_mask], *e;

    for (e = *head; e; e = e->next)
        if (memcmp(&e->key, k, sizeof *k) == 0)
            return e;
    e = calloc(1, sizeof *e);
    if (e == NULL)
        return NULL;
    e->key = *k;
    e->next = *head;
    *head = e;
    return e;
}

static void ip_remove(struct guard *g, struct ip_count *gone)
{
    struct ip_count **p = &g->ip_table[key_hash(g, &gone->key) & g->ip_mask];

    while (*p != gone)
        p = &(*p)->next;
    *p = gone->next;
    free(gone);
}

/* Counts the connection against its address; -1 when that address is at its limit. */
static int ip_admit(struct guard *g, const struct addr_key *k, struct ip_count **slot)
{
    struct ip_count *e;
    int rc = -1;

    pthread_mutex_lock(&g->ip_lock);
    e = ip_lookup(g, k);
    if (e && e->count < g->cfg.max_per_ip) {
        e->count++;
        *slot = e;
        rc = 0;
    }
    pthread_mutex_unlock(&g->ip_lock);
    return rc;
}

int guard_conn_admit_addr(struct guard *g, const struct sockaddr *addr, socklen_t len,
                          struct ip_count **slot, enum drop_reason *why)
{
    struct addr_key k;
    int loopback = 0;

    *slot = NULL;
    if (g->cfg.max_per_ip == 0 || len == 0 || addr_key(addr, len, &k, &loopback) < 0 ||
        (loopback && !g->cfg.limit_loopback))
        return 0;
    if (ip_admit(g, &k, slot) == 0)
        return 0;
    *why = DROP_PER_IP;
    return -1;
}

int guard_conn_admit(struct guard *g, const struct sockaddr *peer, socklen_t len,
                     struct ip_count **slot, enum drop_reason *why)
{
    *slot = NULL;
    if (g->cfg.max_conns && atomic_fetch_add(&g->conns, 1) >= g->cfg.max_conns) {
        atomic_fetch_sub(&g->conns, 1);
        *why = DROP_MAX_CONNS;
        return -1;
    }
    if (guard_conn_admit_addr(g, peer, len, slot, why) == 0)
        return 0;
    if (g->cfg.max_conns)
        atomic_fetch_sub(&g->conns, 1);
    return -1;
}

void guard_conn_release(struct guard *g, struct ip_count *slot)
{
    if (g->cfg.max_conns)
        atomic_fetch_sub(&g->conns, 1);
    if (slot == NULL)
        return;
    pthread_mutex_lock(&g->ip_lock);
    if (--slot->count == 0)
        ip_remove(g, slot);
    pthread_mutex_unlock(&g->ip_lock);
}

/* Under udp_lock: the bucket of k, taking over the oldest of its set if k has none. */
static struct udp_bucket *bucket_of(struct guard *g, const struct addr_key *k)
{
    struct udp_bucket *set = &g->buckets[(key_hash(g, k) & (BUCKET_SETS - 1)) * BUCKET_WAYS];
    struct udp_bucket *oldest = set;

    for (int i = 0; i < BUCKET_WAYS; i++) {
        if (set[i].last_ms != 0 && memcmp(&set[i].key, k, sizeof *k) == 0)
            return &set[i];
        if (set[i].last_ms < oldest->last_ms)
            oldest = &set[i];
    }
    oldest->key = *k;
    oldest->last_ms = 0;
    return oldest;
}

/* A bucket holds up to one second of the rate and refills
 * continuously; each datagram answered takes one. */
static int rate_allows(struct guard *g, const struct addr_key *k)
{
    uint64_t cap = (uint64_t)g->cfg.udp_rate * MILLI;
    int64_t now = now_ms();
    struct udp_bucket *b;
    int ok;

    pthread_mutex_lock(&g->udp_lock);
    if (g->buckets == NULL)
        g->buckets = calloc((size_t)BUCKET_SETS * BUCKET_WAYS, sizeof *g->buckets);
    if (g->buckets == NULL) {
        pthread_mutex_unlock(&g->udp_lock);
        return 0;   /* no memory to keep track: refuse rather than reflect */
    }
    b = bucket_of(g, k);
    if (b->last_ms == 0) {
        b->tokens = cap;
    } else if (now > b->last_ms) {
        b->tokens += (uint64_t)(now - b->last_ms) * g->cfg.udp_rate;
        if (b->tokens > cap)
            b->tokens = cap;
    }
    b->last_ms = now > 0 ? now : 1;
    ok = b->tokens >= MILLI;
    if (ok)
        b->tokens -= MILLI;
    pthread_mutex_unlock(&g->udp_lock);
    return ok;
}

static int is_own_port(const struct guard *g, unsigned port)
{
    for (size_t i = 0; i < g->nports; i++)
        if (g->ports[i] == port)
            return 1;
    return 0;
}

int guard_udp_check(struct guard *g, const struct sockaddr *src, socklen_t len,
                    enum drop_reason *why)
{
    struct addr_key k;
    int loopback = 0, port;

    if (!g->cfg.udp_guard)
        return 0;
    port = addr_port(src);
    /* Port 0 cannot be answered; below 1024 live the services that answer back
     * (echo, chargen, DNS, NTP): a spoofed source would set us talking to them. */
    if (port < 1024) {
        *why = DROP_UDP_PORT;
        return -1;
    }
    if (is_own_port(g, (unsigned)port)) {
        *why = DROP_UDP_OWN_PORT;
        return -1;
    }
    if (g->cfg.udp_rate == 0 || addr_key(src, len, &k, &loopback) < 0 ||
        (loopback && !g->cfg.limit_loopback))
        return 0;
    if (rate_allows(g, &k))
        return 0;
    *why = DROP_UDP_RATE;
    return -1;
}

size_t guard_udp_overhead(const struct sockaddr *peer)
{
    if (peer->sa_family == AF_INET6 &&
        !IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *)peer)->sin6_addr))
        return UDP_WIRE_V6;
    return UDP_WIRE_V4;
}

size_t guard_udp_reply_max(const struct guard *g, size_t in_len, size_t overhead,
                           unsigned copies, size_t reply_len)
{
    size_t budget, each;

    if (!g->cfg.udp_guard)
        return reply_len;
    budget = GUARD_UDP_FACTOR * (in_len + overhead);
    each = copies > 0 ? budget / copies : budget;
    if (each <= overhead)
        return 0;
    return reply_len < each - overhead ? reply_len : each - overhead;
}

struct log_limit *guard_log_limit(struct guard *g, enum drop_reason r)
{
    return &g->logs[r];
}
