/* cmd_send.c — `kodama send`: the tutorial's echo client. Each MESSAGE goes out as is
 * and exactly as many bytes must come back, equal to it; each reply is printed on a
 * line of its own. Anything else (a different reply, an early close, silence for
 * -w seconds) is a failure with one line saying which. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/cli.h"
#include "client/client.h"
#include "lib/log.h"
#include "lib/net.h"
#include "lib/util.h"

void help_send(FILE *out)
{
    fprintf(out,
        "Usage: kodama send [-u] [-4|-6] [-v] [-w SECS] HOST PORT MESSAGE...\n"
        "       kodama send [-v] [-w SECS] -U PATH MESSAGE...\n\n"
        "Send each MESSAGE to an echo service, read back exactly as many bytes, check\n"
        "they are the same and print them, one line per MESSAGE. Over tcp (and unix)\n"
        "all messages share one connection; with -u each is one datagram.\n\n"
        "Options:\n"
        "  -u          udp\n"
        "  -4, -6      IPv4 or IPv6 only\n"
        "  -U PATH     a unix stream socket (@NAME: abstract)\n"
        "  -w SECS     connect timeout and wait for each reply (default 5)\n"
        "  -v          print 'Received N bytes from ADDR' on stderr for each reply\n"
        "  -h, --help  show this help\n\n"
        "Exit status: 0 every reply matched, 1 failure, 2 usage error.\n");
}

struct send_opts {
    struct client_opts c;
    char **msgs;
    int nmsgs;
};

static int write_reply(const char *data, size_t len)
{
    if (fwrite(data, 1, len, stdout) != len || putchar('\n') == EOF || fflush(stdout) == EOF) {
        log_msg("cannot write to stdout: %s", strerror(errno));
        return -1;
    }
    return 0;
}

static int wait_fd(int fd, short events, int64_t deadline)
{
    struct pollfd pfd = { .fd = fd, .events = events };
    int64_t left;
    int rc;

    do {
        left = deadline - now_ms();
        if (left < 0)
            left = 0;
        rc = poll(&pfd, 1, (int)left);
    } while (rc < 0 && errno == EINTR);
    return rc < 0 ? -1 : pfd.revents;
}

static int no_reply(const struct send_opts *o, const struct peer *p)
{
    log_msg("no reply from %s within %s s", p->name, o->c.wait_text);
    return EXIT_FAIL;
}

/* Send msg and read its echo on a stream, both at once: a long message would
 * otherwise fill both directions' buffers and wait forever. */
static int exchange_stream(const struct send_opts *o, const struct peer *p, const char *msg,
                           char *reply)
{
    size_t len = strlen(msg), sent = 0, got = 0;
    int64_t deadline = now_ms() + o->c.wait_ms;

    while (got < len) {
        int ev = wait_fd(p->fd, (short)(POLLIN | (sent < len ? POLLOUT : 0)), deadline);
        ssize_t n;

        if (ev == 0)
            return no_reply(o, p);
        if (ev > 0 && (ev & POLLOUT) && sent < len) {
            n = send(p->fd, msg + sent, len - sent, MSG_NOSIGNAL);
            if (n < 0 && errno != EAGAIN && errno != EINTR) {
                log_msg("send to %s failed: %s", p->name, strerror(errno));
                return EXIT_FAIL;
            }
            sent += n > 0 ? (size_t)n : 0;
        }
        if (ev > 0 && !(ev & (POLLIN | POLLHUP | POLLERR)))
            continue;
        n = recv(p->fd, reply + got, len - got, 0);
        if (n == 0) {
            log_msg("%s closed the connection after %zu of %zu bytes", p->name, got, len);
            return EXIT_FAIL;
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            log_msg("receive from %s failed: %s", p->name, strerror(errno));
            return EXIT_FAIL;
        }
        if (n > 0) {
            got += (size_t)n;
            deadline = now_ms() + o->c.wait_ms;
        }
    }
    return EXIT_OK;
}

static int exchange_udp(const struct send_opts *o, const struct peer *p, const char *msg,
                        char *reply, size_t *rlen)
{
    size_t len = strlen(msg);
    int64_t deadline;
    ssize_t n;

    if (send(p->fd, msg, len, MSG_NOSIGNAL) < 0) {
        log_msg("send to %s failed: %s", p->name, strerror(errno));
        return EXIT_FAIL;
    }
    deadline = now_ms() + o->c.wait_ms;
    for (;;) {
        int ev = wait_fd(p->fd, POLLIN, deadline);

        if (ev == 0)
            return no_reply(o, p);
        n = recv(p->fd, reply, NET_DGRAM_MAX, MSG_DONTWAIT);
        if (n >= 0)
            break;
        if (errno != EAGAIN && errno != EINTR) {
            /* A connected udp socket hears the ICMP "port unreachable" as this. */
            log_msg("no reply from %s: %s", p->name, strerror(errno));
            return EXIT_FAIL;
        }
    }
    *rlen = (size_t)n;
    return EXIT_OK;
}

static int send_all(const struct send_opts *o, const struct peer *p)
{
    char *reply = xmalloc(NET_DGRAM_MAX + 1);
    int rc = EXIT_OK;

    for (int i = 0; i < o->nmsgs && rc == EXIT_OK; i++) {
        size_t len = strlen(o->msgs[i]), rlen = len;

        if (len > NET_DGRAM_MAX && !o->c.t.udp) {
            free(reply);
            reply = xmalloc(len + 1);
        }
        rc = o->c.t.udp ? exchange_udp(o, p, o->msgs[i], reply, &rlen)
                      : exchange_stream(o, p, o->msgs[i], reply);
        if (rc != EXIT_OK)
            break;
        if (rlen != len || memcmp(reply, o->msgs[i], len) != 0) {
            log_msg("reply from %s differs from the message sent", p->name);
            rc = EXIT_FAIL;
            break;
        }
        if (o->c.t.verbose)
            log_plain("Received %zu bytes from %s", rlen, p->addr);
        if (write_reply(reply, rlen) < 0)
            rc = EXIT_FAIL;
    }
    free(reply);
    return rc;
}

static int parse_send_args(int argc, char **argv, struct send_opts *o)
{
    int rc = client_parse_options("send", argc, argv, &o->c, help_send);

    if (rc == EXIT_OK && !o->c.t.unix_path)
        rc = client_take_host_port("send", argc, argv, &o->c.t);
    if (rc != EXIT_OK)
        return rc;
    o->msgs = argv + optind;
    o->nmsgs = argc - optind;
    if (o->nmsgs == 0)
        return usage_error("send", "missing MESSAGE");
    if (o->c.t.udp)
        for (int i = 0; i < o->nmsgs; i++)
            if (strlen(o->msgs[i]) > NET_UDP_PAYLOAD_MAX)
                return usage_error("send", "MESSAGE %d is longer than a udp datagram (65507 bytes)", i + 1);
    return EXIT_OK;
}

int cmd_send(int argc, char **argv)
{
    struct send_opts o = { .c = { .t.family = AF_UNSPEC, .wait_text = "5", .wait_ms = 5000 } };
    struct peer p;
    int rc = parse_send_args(argc, argv, &o);

    if (rc != EXIT_OK)
        return rc;
    o.c.t.timeout_ms = o.c.wait_ms;
    if (client_connect(&o.c.t, &p) < 0)
        return EXIT_FAIL;
    rc = send_all(&o, &p);
    close(p.fd);
    return rc;
}
