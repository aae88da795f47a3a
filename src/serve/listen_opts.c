/* listen_opts.c — names, faults and relay targets of listeners (see listen_opts.h). */
#include "serve/listen_opts.h"

#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/addr.h"
#include "lib/net.h"
#include "lib/util.h"

/* to=HOST:PORT: the first address the name resolves to (like a client would). */
static int resolve_host(const struct spec_target *t, struct relay_conf *rc, char *err,
                        size_t errlen)
{
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
    struct addrinfo *res;
    char port[8];
    int rc_gai;

    snprintf(port, sizeof port, "%u", t->port);
    rc_gai = getaddrinfo(t->host, port, &hints, &res);
    if (rc_gai != 0) {
        snprintf(err, errlen, "cannot resolve the relay's to=%s%s%s:%u: %s",
                 strchr(t->host, ':') ? "[" : "", t->host, strchr(t->host, ':') ? "]" : "",
                 t->port, rc_gai == EAI_SYSTEM ? "system error" : gai_strerror(rc_gai));
        return -1;
    }
    memcpy(&rc->to, res->ai_addr, res->ai_addrlen);
    rc->to_len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

static struct relay_conf *relay_conf_new(const struct spec *sp, char *err, size_t errlen)
{
    const struct spec_opt *to = spec_opt(sp, "to"), *ct = spec_opt(sp, "connect-timeout");
    struct relay_conf *rc = xcalloc(1, sizeof *rc);
    struct spec_target t;

    if (to == NULL || spec_target_parse(to->text, &t, err, errlen) < 0)
        goto bad;       /* not reached: spec.c checked to= */
    if (t.kind == ADDR_UNIX) {
        socklen_t len = net_unix_addr(t.path, t.abstract, (struct sockaddr_un *)&rc->to);

        if (len == (socklen_t)-1)
            goto bad;
        rc->to_len = len;
    } else if (resolve_host(&t, rc, err, errlen) < 0) {
        goto bad;
    }
    addr_format((struct sockaddr *)&rc->to, rc->to_len, rc->to_text, sizeof rc->to_text);
    rc->connect_timeout_ms = ct ? ct->ms : RELAY_CONNECT_TIMEOUT_MS;
    rc->send_proxy = spec_opt(sp, "send-proxy-v2") ? 2 : spec_opt(sp, "send-proxy") ? 1 : 0;
    return rc;
bad:
    free(rc);
    return NULL;
}

int listen_group(struct listener *ls, size_t n, const struct spec *sp, char *err,
                 size_t errlen)
{
    const struct spec_opt *name = spec_opt(sp, "name");
    struct fault_slot *slot;
    struct relay_conf *relay = NULL;

    if (n == 0)
        return 0;
    if (ls[0].svc->relay && (relay = relay_conf_new(sp, err, errlen)) == NULL)
        return -1;
    slot = xcalloc(1, sizeof *slot);
    pthread_mutex_init(&slot->lock, NULL);
    slot->svc = ls[0].svc;
    slot->protos = sp->protos;
    if (name) {
        snprintf(slot->name, sizeof slot->name, "%.*s", SPEC_NAME_MAX, name->text);
        slot->named = 1;
    }
    faults_from_spec(&slot->cfg, sp);
    for (size_t i = 0; i < n; i++) {
        ls[i].slot = slot;
        ls[i].relay = relay;
        ls[i].owns_slot = i == 0;
    }
    return 0;
}

void listen_group_free(struct listener *l)
{
    if (!l->owns_slot)
        return;
    if (l->slot) {
        pthread_mutex_destroy(&l->slot->lock);
        free(l->slot);
    }
    free((void *)l->relay);
    l->slot = NULL;
    l->relay = NULL;
    l->owns_slot = 0;
}

static int name_taken(const struct listener *ls, size_t n, const struct fault_slot *self,
                      const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (ls[i].owns_slot && ls[i].slot != self && ls[i].slot->name[0] &&
            strcmp(ls[i].slot->name, name) == 0)
            return 1;
    return 0;
}

/* SERVICE-PORT of the slot's first socket, or SERVICE-unix. */
static void default_name(const struct listener *l, char *out, size_t len)
{
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof ss;

    if (l->kind == LISTEN_UNIX || l->w.fd < 0 ||
        getsockname(l->w.fd, (struct sockaddr *)&ss, &sslen) < 0)
        snprintf(out, len, "%s-unix", l->svc->name);
    else
        snprintf(out, len, "%s-%d", l->svc->name, addr_port((struct sockaddr *)&ss));
}

int listen_names(struct listener *ls, size_t n, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        struct fault_slot *slot = ls[i].slot;

        if (ls[i].owns_slot && slot->named && name_taken(ls, i, slot, slot->name)) {
            snprintf(err, errlen, "name=%s is given to two listeners: each needs its own",
                     slot->name);
            return -1;
        }
    }
    for (size_t i = 0; i < n; i++) {
        struct fault_slot *slot = ls[i].slot;
        char base[SPEC_NAME_MAX + 1], name[SPEC_NAME_MAX + 1];

        if (!ls[i].owns_slot || slot->named)
            continue;
        default_name(&ls[i], base, sizeof base);
        snprintf(name, sizeof name, "%s", base);
        for (unsigned k = 2; name_taken(ls, n, slot, name); k++)
            snprintf(name, sizeof name, "%.50s-%u", base, k);
        memcpy(slot->name, name, sizeof slot->name);
    }
    return 0;
}
