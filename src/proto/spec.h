/* spec.h — the SPEC grammar: what `serve` listens on, and how.
 *
 *   SERVICE@ADDRESS[/tcp|/udp][+proxy][+tls][,KEY=VALUE...]
 *
 * ADDRESS is PORT, PORT-PORT, HOST:PORT[-PORT], [IPV6]:PORT[-PORT], unix:PATH or
 * unix:@NAME (abstract). Without /tcp or /udp a network address means both; a unix
 * address is a stream socket. "+proxy" (stream only) makes each connection start
 * with a PROXY protocol header; "+tls" (stream only) makes it speak TLS; with both,
 * "+proxy+tls": the header comes before the ClientHello. Options follow the first
 * ',' that is not written "\,": each is KEY=VALUE, checked against the table of
 * known keys (spec.c) and its type:
 *   a duration    seconds, with fractions ("0.25") or a suffix ("250ms", "2s");
 *   a size        bytes, with a k or m suffix for KiB and MiB ("64k");
 *   ~JITTER       after a duration or a size: plus or minus this, uniformly;
 *   a probability 0 to 1 ("0.05"), or a percentage ("5%");
 *   a name        letters, digits, '.', '_' and '-' (a listener's name=);
 *   a flag        the key alone, without '=' ("send-proxy").
 * A key means something on tcp or udp sockets or both; on a SPEC of one protocol, a
 * key of the other alone is an error (a SPEC of both keeps it for the sockets it
 * applies to). Keys marked "relay" are for the relay service only, which is a
 * stream service: "relay@7000" is tcp alone, and it needs to=.
 * In the address and the values, "\," is a comma and "\\" a backslash; any other
 * backslash is itself. A trailing "/tcp" ends a unix path, so "unix:/x/tcp/tcp"
 * is the path "/x/tcp", and "unix:/x+tls/tcp" the path "/x+tls".
 *
 * Parsing is pure (no name resolution, no sockets), so it is unit-tested and fuzzed
 * on its own. */
#ifndef KODAMA_SPEC_H
#define KODAMA_SPEC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

enum proto_mask { PROTO_TCP = 1, PROTO_UDP = 2 };

enum addr_kind {
    ADDR_ANY,   /* PORT alone: every local address */
    ADDR_HOST,  /* HOST:PORT or [IPV6]:PORT: host is a name or a literal */
    ADDR_UNIX,  /* unix:PATH or unix:@NAME */
};

#define SPEC_HOST_MAX 255
/* A path's bytes and its NUL fill sun_path; an abstract name has no NUL (it starts
 * with one instead), so both are at most 107 bytes. */
#define SPEC_PATH_MAX (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)
#define SPEC_SERVICE_MAX 31
#define SPEC_PORTS_MAX 1024         /* ports in one PORT-PORT range */
#define SPEC_OPTS_MAX 32
#define SPEC_KEY_MAX 31
#define SPEC_VALUE_MAX 255

/* The keys a SPEC may carry, each with the type of its value. */
enum spec_type {
    SPEC_DURATION,          /* ms */
    SPEC_DURATION_JITTER,   /* ms, ~ms */
    SPEC_SIZE,              /* bytes */
    SPEC_SIZE_JITTER,       /* bytes, ~bytes */
    SPEC_PROBABILITY,       /* 0 to 1 */
    SPEC_TEXT,              /* printable, no space */
    SPEC_NAME,              /* [A-Za-z0-9._-], at most SPEC_NAME_MAX */
    SPEC_FLAG,              /* no value */
};

#define SPEC_NAME_MAX 63
#define SPEC_RELAY_SERVICE "relay"

enum spec_key_flags {
    SPEC_KEY_RELAY = 1,     /* for the relay service only */
    SPEC_KEY_FIXED = 2,     /* set when the listener is made; not at run time */
};

struct spec_key {
    const char *name;
    enum spec_type type;
    unsigned protos;        /* PROTO_TCP, PROTO_UDP: where it means something */
    unsigned flags;         /* enum spec_key_flags */
};

/* One KEY=VALUE, parsed. */
struct spec_opt {
    const struct spec_key *key;
    long ms, jitter_ms;                 /* durations */
    unsigned long bytes, jitter;        /* sizes */
    double p;                           /* probabilities */
    char text[SPEC_VALUE_MAX + 1];      /* the value as written, escapes decoded */
};

struct spec {
    char service[SPEC_SERVICE_MAX + 1];
    enum addr_kind kind;
    char host[SPEC_HOST_MAX + 1];   /* ADDR_HOST: without brackets */
    uint16_t port;                  /* ADDR_ANY, ADDR_HOST */
    uint16_t port_last;             /* the end of a PORT-PORT range; port if none */
    char path[SPEC_PATH_MAX + 1];   /* ADDR_UNIX: the path, or the name after '@' */
    int abstract;                   /* ADDR_UNIX: unix:@NAME */
    unsigned protos;                /* PROTO_TCP | PROTO_UDP; unix is always stream */
    int proxy;                      /* "+proxy": PROXY protocol header first */
    int tls;                        /* "+tls" */
    size_t nopts;
    struct spec_opt opts[SPEC_OPTS_MAX];
};

#define PROXY_SUFFIX "+proxy"
#define TLS_SUFFIX "+tls"

/* Parse text into *sp. Checks the syntax and the options' keys and values; whether
 * the service exists is the caller's business (the service table lives elsewhere).
 * Returns 0, or -1 with a one-line reason quoting the bad part, then the SPEC, in
 * err. */
int spec_parse(const char *text, struct spec *sp, char *err, size_t errlen);

/* PORT or PORT-PORT (the len bytes at s; a range from 1, never backwards, of at most
 * max_ports), for SPECs and for `connect -z`. Returns 0, or -1 with a reason in err
 * ("invalid port 'x'", "port range 9-7 runs backwards", ...). */
int spec_port_range(const char *s, size_t len, unsigned long max_ports, uint16_t *first,
                    uint16_t *last, char *err, size_t errlen);

/* A bare option list, "KEY=VALUE,..." (the part of a SPEC after its first ','; ""
 * is none), into sp->opts, checked as spec_parse checks a SPEC's: against
 * sp->service (relay keys) and sp->protos, which the caller sets. For the control
 * API and socket activation's FileDescriptorName=. With fixed 0, keys that cannot
 * change at run time (name=, the relay's to=, ...) are refused. Returns 0, or -1
 * with a reason ending by quoting text in err. */
int spec_parse_options(const char *text, struct spec *sp, int fixed, char *err,
                       size_t errlen);

/* A relay's to=: HOST:PORT, [IPV6]:PORT, unix:PATH or unix:@NAME (no port 0, no
 * range, no protocol). */
struct spec_target {
    enum addr_kind kind;            /* ADDR_HOST or ADDR_UNIX */
    char host[SPEC_HOST_MAX + 1];
    uint16_t port;
    char path[SPEC_PATH_MAX + 1];
    int abstract;
};

/* Parse a to= value. Returns 0, or -1 with a reason (no quote) in err. */
int spec_target_parse(const char *text, struct spec_target *t, char *err, size_t errlen);

/* The option named key, or NULL. */
const struct spec_opt *spec_opt(const struct spec *sp, const char *key);

/* The known keys, NULL-terminated (for --help and the fuzzer's dictionary). */
extern const struct spec_key spec_keys[];

/* The value types alone, for the CLI's options and the control API: each returns 0,
 * or -1 with a reason in err. A duration is at most a day. */
int spec_duration(const char *s, long *ms, char *err, size_t errlen);
int spec_size(const char *s, unsigned long *bytes, char *err, size_t errlen);
int spec_probability(const char *s, double *p, char *err, size_t errlen);

#endif
