/* verdict.h — how a client command's run ended, in one table: the exit status of
 * send, connect, ping and bench, its name in --json and the messages, and where each
 * comes from (an errno, a getaddrinfo code). Plus the little JSON writer the clients
 * print their one object per run with.
 *
 *   0 ok           every exchange as expected
 *   1 mismatch     the reply differs from what was sent or expected, or more came back
 *   2 usage        bad options (EXIT_USAGE, cli.h)
 *   3 refused      ECONNREFUSED; for udp, the ICMP port unreachable on the socket
 *   4 timeout      connect, or a reply, not within -w
 *   5 reset        ECONNRESET / EPIPE, or the peer closed before the whole reply came
 *   6 resolve      the name did not resolve
 *   7 tls          a TLS handshake or certificate check failed, or a TLS alert
 *   8 unreachable  ENETUNREACH, EHOSTUNREACH and other errors of the path
 *   9 local        a local failure: a --source bind, out of descriptors, stdout gone */
#ifndef KODAMA_VERDICT_H
#define KODAMA_VERDICT_H

#include <stddef.h>
#include <stdint.h>

enum verdict {
    V_OK = 0,
    V_MISMATCH = 1,
    V_USAGE = 2,
    V_REFUSED = 3,
    V_TIMEOUT = 4,
    V_RESET = 5,
    V_RESOLVE = 6,
    V_TLS = 7,
    V_UNREACHABLE = 8,
    V_LOCAL = 9,
    V_COUNT
};

/* "ok", "mismatch", ..., "local"; "?" for anything else. */
const char *verdict_name(int v);

/* The verdict of an error the socket reported (connect's SO_ERROR, recv, send). An
 * errno that is neither the peer's doing nor a local shortage is the path's:
 * unreachable. ENOENT is a unix socket path with nothing there: refused. */
enum verdict verdict_of_errno(int err);

/* The verdict of an error of a local call (socket, bind, poll, writing stdout):
 * local, except where the errno says otherwise (EADDRNOTAVAIL is still local). */
enum verdict verdict_of_local_errno(int err);

/* A getaddrinfo failure (its EAI_* code; EAI_SYSTEM with errno): resolve, or local
 * when the system ran out of something (EAI_MEMORY, EAI_SYSTEM with EMFILE...). */
enum verdict verdict_of_gai(int rc, int err);

/* The table for --help: "  0 ok, 1 mismatch, 2 usage, ..., 9 local", on two lines
 * indented by two spaces, without a final newline. */
const char *verdict_summary(void);

/* ------------------------------------------------------------------ JSON */

/* One JSON object on one line, built key by key into a fixed buffer: keys are
 * snake_case literals, strings are escaped (json_escape: bytes that are not UTF-8
 * become U+FFFD). What does not fit is left out whole, never cut mid-value. */
#define JSON_OBJ_MAX 4096

struct json_obj {
    char buf[JSON_OBJ_MAX];
    size_t len;
    int fields;
};

void json_begin(struct json_obj *j);
void json_str(struct json_obj *j, const char *key, const char *value);     /* NULL: null */
void json_uint(struct json_obj *j, const char *key, uint64_t value);
void json_int(struct json_obj *j, const char *key, int64_t value);
void json_bool(struct json_obj *j, const char *key, int value);
/* A number with 3 decimals (milliseconds, percentages); negative: null. */
void json_ms(struct json_obj *j, const char *key, double value);
/* Close the object and add a newline; returns the text (NUL-terminated). */
const char *json_end(struct json_obj *j);

#endif
