/* verdict.c — see verdict.h. */
#include "lib/verdict.h"

#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>

#include "lib/log.h"

static const char *const names[V_COUNT] = {
    [V_OK] = "ok",
    [V_MISMATCH] = "mismatch",
    [V_USAGE] = "usage",
    [V_REFUSED] = "refused",
    [V_TIMEOUT] = "timeout",
    [V_RESET] = "reset",
    [V_RESOLVE] = "resolve",
    [V_TLS] = "tls",
    [V_UNREACHABLE] = "unreachable",
    [V_LOCAL] = "local",
};

const char *verdict_name(int v)
{
    return v >= 0 && v < V_COUNT ? names[v] : "?";
}

const char *verdict_summary(void)
{
    return "  0 ok, 1 mismatch, 2 usage, 3 refused, 4 timeout, 5 reset, 6 resolve,\n"
           "  7 tls, 8 unreachable, 9 local";
}

/* Shortages of this host: whatever call hit them, the path is not to blame. */
static int local_shortage(int err)
{
    return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM ||
           err == EADDRINUSE || err == EADDRNOTAVAIL || err == EAFNOSUPPORT ||
           err == EPROTONOSUPPORT || err == EBADF || err == EINVAL || err == ENOTSOCK;
}

enum verdict verdict_of_errno(int err)
{
    switch (err) {
    case 0:
        return V_OK;
    case ECONNREFUSED:
    case ENOENT:            /* a unix socket path nobody made */
        return V_REFUSED;
    case ETIMEDOUT:
        return V_TIMEOUT;
    case ECONNRESET:
    case EPIPE:
    case ECONNABORTED:
        return V_RESET;
    default:
        return local_shortage(err) ? V_LOCAL : V_UNREACHABLE;
    }
}

enum verdict verdict_of_local_errno(int err)
{
    if (err == ECONNREFUSED || err == ETIMEDOUT || err == ECONNRESET)
        return verdict_of_errno(err);
    return V_LOCAL;
}

enum verdict verdict_of_gai(int rc, int err)
{
    if (rc == EAI_MEMORY || (rc == EAI_SYSTEM && local_shortage(err)))
        return V_LOCAL;
    return V_RESOLVE;
}

/* ------------------------------------------------------------------ JSON */

void json_begin(struct json_obj *j)
{
    j->buf[0] = '{';
    j->buf[1] = '\0';
    j->len = 1;
    j->fields = 0;
}

/* Append one "key":value whose value text is already made; left out if it does not
 * fit with room for the closing "}\n". */
static void json_field(struct json_obj *j, const char *key, const char *value)
{
    int n = snprintf(j->buf + j->len, sizeof j->buf - j->len, "%s\"%s\":%s",
                     j->fields ? "," : "", key, value);

    if (n < 0 || (size_t)n + 3 > sizeof j->buf - j->len) {
        j->buf[j->len] = '\0';
        return;
    }
    j->len += (size_t)n;
    j->fields++;
}

void json_str(struct json_obj *j, const char *key, const char *value)
{
    /* As big as the object: an escape cut short by it could not fit anyway. */
    char esc[JSON_OBJ_MAX];
    size_t n;

    if (value == NULL) {
        json_field(j, key, "null");
        return;
    }
    esc[0] = '"';
    n = json_escape(value, esc + 1, sizeof esc - 2);
    esc[n + 1] = '"';
    esc[n + 2] = '\0';
    json_field(j, key, esc);
}

void json_uint(struct json_obj *j, const char *key, uint64_t value)
{
    char num[24];

    snprintf(num, sizeof num, "%" PRIu64, value);
    json_field(j, key, num);
}

void json_int(struct json_obj *j, const char *key, int64_t value)
{
    char num[24];

    snprintf(num, sizeof num, "%" PRId64, value);
    json_field(j, key, num);
}

void json_bool(struct json_obj *j, const char *key, int value)
{
    json_field(j, key, value ? "true" : "false");
}

void json_ms(struct json_obj *j, const char *key, double value)
{
    char num[40];

    if (value < 0) {
        json_field(j, key, "null");
        return;
    }
    snprintf(num, sizeof num, "%.3f", value);
    json_field(j, key, num);
}

const char *json_end(struct json_obj *j)
{
    j->buf[j->len++] = '}';
    j->buf[j->len++] = '\n';
    j->buf[j->len] = '\0';
    return j->buf;
}
