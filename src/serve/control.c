/* control.c — the fault API of --control (see control.h): binding its socket,
 * routing a request that proto/http.c has parsed, and JSON out. httpd.c serves
 * it. */
#include "serve/control.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/net.h"
#include "lib/utf8.h"
#include "lib/util.h"
#include "proto/http.h"
#include "proto/spec.h"
#include "serve/core/worker.h"
#include "serve/httpd.h"

#define JSON_TEXT_MAX (2 * FAULT_TEXT_MAX)

struct control {
    const struct worker_set *ws;
    struct httpd *httpd;
    char what[32 + ADDR_TEXT_MAX];  /* "control tcp 127.0.0.1:9000": for log lines */
};

/* ------------------------------------------------------------------ binding */

static int is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;

        return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
    }
    return 0;
}

/* unix:PATH or unix:@NAME; the file is the user's alone (mode 0600). A text that
 * is not one is a usage error (*usage), as a SPEC's would be. */
static int listen_unix(const char *text, struct control_listen *cl, int *usage, char *err,
                       size_t errlen)
{
    const char *path = text + 5;
    int abstract = path[0] == '@';
    char why[NET_ERR_LEN];
    mode_t old;

    if (abstract)
        path++;
    if (path[0] == '\0' || strlen(path) > SPEC_PATH_MAX) {
        snprintf(err, errlen, "--control '%s': not unix:PATH (at most %zu bytes)", text,
                 (size_t)SPEC_PATH_MAX);
        return -1;
    }
    *usage = 0;
    old = umask(0177);      /* start-up is one thread: nothing else creates files now */
    cl->fd = net_unix_listen(path, abstract, why, sizeof why);
    umask(old);
    if (cl->fd < 0) {
        snprintf(err, errlen, "cannot listen on control unix %s: %s", text, why);
        return -1;
    }
    cl->kind = "unix";
    snprintf(cl->addr, sizeof cl->addr, "%s", text);
    cl->unlink_path = abstract ? NULL : xstrdup(path);
    return 0;
}

/* Returns 0, -1 if no address binds, -2 if one is not loopback (a usage error). */
static int bind_addrinfo(const struct addrinfo *res, const char *text, int any,
                         struct control_listen *cl, char *err, size_t errlen)
{
    char why[NET_ERR_LEN] = "no address", shown[ADDR_TEXT_MAX];

    for (const struct addrinfo *ai = res; ai; ai = ai->ai_next)
        if (!any && !is_loopback(ai->ai_addr)) {
            snprintf(err, errlen, "--control '%s': %s is not a loopback address, and the control "
                     "API has no authentication (--control-any allows it)", text,
                     addr_host(ai->ai_addr, shown, sizeof shown));
            return -2;
        }
    for (const struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;

        cl->fd = net_tcp_listen(ai->ai_addr, ai->ai_addrlen, ai->ai_family == AF_INET6 ? 1 : -1,
                                0, why, sizeof why);
        if (cl->fd < 0)
            continue;
        if (getsockname(cl->fd, (struct sockaddr *)&ss, &len) == 0)
            addr_format((struct sockaddr *)&ss, len, cl->addr, sizeof cl->addr);
        cl->kind = "tcp";
        return 0;
    }
    snprintf(err, errlen, "cannot listen on control tcp %s: %s", text, why);
    return -1;
}

int control_listen(const char *text, int any, struct control_listen *cl, int *usage,
                   char *err, size_t errlen)
{
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV | AI_PASSIVE };
    struct addrinfo *res;
    char spec_text[SPEC_HOST_MAX + 64], port[8];
    struct spec *sp;
    int rc;

    memset(cl, 0, sizeof *cl);
    cl->fd = -1;
    *usage = 1;
    if (strncmp(text, "unix:", 5) == 0)
        return listen_unix(text, cl, usage, err, errlen);
    if (strlen(text) > SPEC_HOST_MAX + 8 || strpbrk(text, "/,+\\") != NULL) {
        snprintf(err, errlen, "--control '%s': not unix:PATH, PORT, HOST:PORT or [IPV6]:PORT",
                 text);
        return -1;
    }
    sp = xcalloc(1, sizeof *sp);
    snprintf(spec_text, sizeof spec_text, "control@%s/tcp", text);
    if (spec_parse(spec_text, sp, err, errlen) < 0 || sp->port != sp->port_last) {
        char *made_up = strstr(err, " in 'control@");

        if (sp->port != sp->port_last)
            snprintf(err, errlen, "one port, not a range");
        else if (made_up) {
            /* the SPEC is ours, not the user's: name only ADDR, and drop the ',' that
             * led to the quote ("... as in [::1]:7007, in '...'") */
            *made_up = '\0';
            if (made_up > err && made_up[-1] == ',')
                made_up[-1] = '\0';
        }
        {
            char why[KODAMA_ERR_LEN];

            snprintf(why, sizeof why, "%s", err);
            snprintf(err, errlen, "--control '%s': %s", text, why);
        }
        free(sp);
        return -1;
    }
    *usage = 0;
    snprintf(port, sizeof port, "%u", sp->port);
    rc = getaddrinfo(sp->kind == ADDR_ANY ? "127.0.0.1" : sp->host, port, &hints, &res);
    free(sp);
    if (rc != 0) {
        snprintf(err, errlen, "cannot listen on control tcp %s: %s", text,
                 rc == EAI_SYSTEM ? "system error" : gai_strerror(rc));
        return -1;
    }
    rc = bind_addrinfo(res, text, any, cl, err, errlen);
    freeaddrinfo(res);
    *usage = rc == -2;
    return rc < 0 ? -1 : 0;
}

void control_listen_close(struct control_listen *cl)
{
    if (cl->fd >= 0)
        close(cl->fd);
    cl->fd = -1;
    if (cl->unlink_path) {
        if (unlink(cl->unlink_path) < 0)
            log_msg("cannot remove the control socket file %s: %s", cl->unlink_path,
                    strerror(errno));
        free(cl->unlink_path);
        cl->unlink_path = NULL;
    }
}

/* ------------------------------------------------------------------ JSON out */

static void json_string(FILE *out, const char *s)
{
    char buf[JSON_TEXT_MAX];

    json_escape(s, buf, sizeof buf);
    fprintf(out, "\"%s\"", buf);
}

/* Listener i of worker 0 is the first of its slot's? */
static int first_of_slot(const struct listener *ls, size_t i)
{
    for (size_t j = 0; j < i; j++)
        if (ls[j].slot == ls[i].slot)
            return 0;
    return ls[i].slot != NULL;
}

static void json_slot(FILE *out, const struct listener *ls, size_t n, struct fault_slot *slot)
{
    char text[FAULT_TEXT_MAX];
    struct faults f;
    int any = 0;

    fault_slot_get(slot, &f);
    fputs("{\"name\":", out);
    json_string(out, slot->name);
    fputs(",\"service\":", out);
    json_string(out, slot->svc->name);
    fputs(",\"sockets\":[", out);
    for (size_t i = 0; i < n; i++) {
        if (ls[i].slot != slot)
            continue;
        fprintf(out, "%s{\"proto\":\"%s\",\"address\":", any++ ? "," : "",
                listener_kind_name(ls[i].kind));
        json_string(out, ls[i].addr);
        fputc('}', out);
    }
    fputc(']', out);
    for (size_t i = 0; i < n; i++)
        if (ls[i].slot == slot && ls[i].relay) {
            fputs(",\"to\":", out);
            json_string(out, ls[i].relay->to_text);
            break;
        }
    fputs(",\"faults\":", out);
    json_string(out, faults_format(&f, text, sizeof text));
    fprintf(out, ",\"version\":%llu}",
            (unsigned long long)atomic_load_explicit(&slot->version, memory_order_relaxed));
}

/* The whole body, malloc'd: one slot's object, or (slot NULL) the array of all. */
static char *json_body(const struct control *c, struct fault_slot *slot, size_t *len)
{
    const struct worker *w0 = &c->ws->workers[0];
    char *text = NULL;
    FILE *out = open_memstream(&text, len);
    int any = 0;

    if (out == NULL)
        return NULL;
    if (slot) {
        json_slot(out, w0->listeners, w0->nlisteners, slot);
    } else {
        fputc('[', out);
        for (size_t i = 0; i < w0->nlisteners; i++) {
            if (!first_of_slot(w0->listeners, i))
                continue;
            if (any++)
                fputc(',', out);
            json_slot(out, w0->listeners, w0->nlisteners, w0->listeners[i].slot);
        }
        fputc(']', out);
    }
    fputc('\n', out);
    if (fclose(out) != 0) {
        free(text);
        return NULL;
    }
    return text;
}

/* ------------------------------------------------------------------ requests */

/* why as the body's line: it may quote the request's bytes, so control characters
 * become '?' and what is not UTF-8 becomes U+FFFD, as the charset promises. */
static size_t text_line(const char *why, char *out, size_t outlen)
{
    const unsigned char *p = (const unsigned char *)why;
    size_t left = strlen(why), n = 0;

    while (left > 0 && n + sizeof UTF8_REPLACEMENT + 1 < outlen) {
        size_t seq = utf8_seq_len(p, left);

        if (seq == 0) {
            memcpy(out + n, UTF8_REPLACEMENT, sizeof UTF8_REPLACEMENT - 1);
            n += sizeof UTF8_REPLACEMENT - 1;
            seq = 1;
        } else if (seq == 1 && (*p < 0x20 || *p == 0x7f)) {
            out[n++] = '?';
        } else {
            memcpy(out + n, p, seq);
            n += seq;
        }
        p += seq;
        left -= seq;
    }
    out[n++] = '\n';
    return n;
}

static int answer_text(int status, const char *extra_head, const char *why, char **out,
                       size_t *out_len)
{
    char body[3 * KODAMA_ERR_LEN + 8];
    size_t len = text_line(why, body, sizeof body);

    *out = httpd_response(status, "text/plain; charset=utf-8", extra_head, body, len, 0,
                          out_len);
    return 1;
}

static int answer_json(const struct control *c, struct fault_slot *slot, int head_only,
                       char **out, size_t *out_len)
{
    size_t len = 0;
    char *body = json_body(c, slot, &len);

    if (body == NULL)
        return answer_text(500, "", "out of memory", out, out_len);
    *out = httpd_response(200, "application/json", "", body, len, head_only, out_len);
    free(body);
    return 1;
}

static struct fault_slot *find_slot(const struct control *c, const char *name, size_t len)
{
    const struct worker *w0 = &c->ws->workers[0];

    for (size_t i = 0; i < w0->nlisteners; i++) {
        struct fault_slot *slot = w0->listeners[i].slot;

        if (slot && strlen(slot->name) == len && memcmp(slot->name, name, len) == 0)
            return slot;
    }
    return NULL;
}

/* PUT's body: the option text, as a SPEC's after its ',' (a final newline is fine). */
static int put_faults(struct fault_slot *slot, const struct http_request *r, char *why,
                      size_t whylen)
{
    char text[CONTROL_BODY_MAX + 1];
    size_t n = r->body_len;
    struct spec *sp;
    struct faults f;
    int rc;

    if (memchr(r->body, '\0', n)) {
        snprintf(why, whylen, "the body has a NUL byte");
        return -1;
    }
    while (n > 0 && strchr(" \t\r\n", r->body[n - 1]))
        n--;
    memcpy(text, r->body, n);
    text[n] = '\0';
    sp = xcalloc(1, sizeof *sp);
    snprintf(sp->service, sizeof sp->service, "%s", slot->svc->name);
    sp->protos = slot->protos;
    rc = spec_parse_options(text, sp, 0, why, whylen);
    if (rc == 0) {
        faults_from_spec(&f, sp);
        fault_slot_set(slot, &f);
        log_msg("control: the faults of %s are now '%s'", slot->name,
                faults_format(&f, text, sizeof text));
    }
    free(sp);
    return rc;
}

static int route_one(const struct control *c, const struct http_request *r, char **out,
                     size_t *out_len)
{
    const char *name = r->target + 8;
    size_t nlen = r->target_len - 8;
    struct fault_slot *slot = find_slot(c, name, nlen);
    char why[KODAMA_ERR_LEN];

    if (slot == NULL) {
        snprintf(why, sizeof why, "no listener is named '%.*s' (GET /faults lists them)",
                 (int)(nlen > 64 ? 64 : nlen), name);
        return answer_text(404, "", why, out, out_len);
    }
    if (strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0)
        return answer_json(c, slot, r->method[0] == 'H', out, out_len);
    if (strcmp(r->method, "PUT") == 0) {
        if (put_faults(slot, r, why, sizeof why) < 0)
            return answer_text(400, "", why, out, out_len);
        return answer_json(c, slot, 0, out, out_len);
    }
    if (strcmp(r->method, "DELETE") == 0) {
        struct faults none;

        faults_clear(&none);
        fault_slot_set(slot, &none);
        log_msg("control: the faults of %s are cleared", slot->name);
        return answer_json(c, slot, 0, out, out_len);
    }
    return answer_text(405, "Allow: GET, HEAD, PUT, DELETE\r\n",
                       "GET, PUT or DELETE /faults/NAME", out, out_len);
}

static int route(const struct control *c, const struct http_request *r, char **out,
                 size_t *out_len)
{
    if (r->target_len == 7 && memcmp(r->target, "/faults", 7) == 0) {
        if (strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0)
            return answer_json(c, NULL, r->method[0] == 'H', out, out_len);
        return answer_text(405, "Allow: GET, HEAD\r\n", "GET /faults, or PUT and DELETE "
                           "/faults/NAME", out, out_len);
    }
    if (r->target_len > 8 && memcmp(r->target, "/faults/", 8) == 0 &&
        memchr(r->target + 8, '/', r->target_len - 8) == NULL)
        return route_one(c, r, out, out_len);
    return answer_text(404, "", "kodama serves /faults and /faults/NAME here", out, out_len);
}

int control_respond(void *ctl, const char *req, size_t len, int full, char **out,
                    size_t *out_len)
{
    struct http_request r;

    switch (http_parse_request(req, len, CONTROL_BODY_MAX, &r)) {
    case HTTP_INCOMPLETE:
        if (!full)
            return 0;
        return answer_text(400, "", "the request is not whole", out, out_len);
    case HTTP_BAD:
        return answer_text(r.status, "", r.why, out, out_len);
    case HTTP_DONE:
        break;
    }
    return route(ctl, &r, out, out_len);
}

/* ------------------------------------------------------------------ the thread */

struct control *control_start(const struct control_listen *cl, const struct worker_set *ws)
{
    struct control *c = xcalloc(1, sizeof *c);

    c->ws = ws;
    /* Its log lines name the address, as a listener's do. */
    snprintf(c->what, sizeof c->what, "control %s %s", cl->kind, cl->addr);
    c->httpd = httpd_start(cl->fd, c->what, HTTP_HEAD_MAX + CONTROL_BODY_MAX, control_respond, c);
    if (c->httpd == NULL) {
        free(c);
        return NULL;
    }
    return c;
}

void control_stop(struct control *c)
{
    if (c == NULL)
        return;
    httpd_stop(c->httpd);
    free(c);
}
