/* cmd_send.c — `kodama send`: the tutorial's echo client. Each MESSAGE goes out as is
 * and exactly as many bytes must come back, equal to it; each reply is printed on a
 * line of its own. Over a stream, after the last reply our side is shut down and the
 * peer's FIN awaited (for at most -w), so that a byte more than was sent is caught.
 * Anything else (a different or longer reply, an early close, silence for -w
 * seconds) ends the run with one line saying which, and the exit status says it too
 * (lib/verdict.h). */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/client.h"
#include "client/peer_io.h"
#include "client/sock.h"
#include "lib/cli.h"
#include "lib/log.h"
#include "lib/net.h"
#include "lib/util.h"

void help_send(FILE *out)
{
    fprintf(out,
        "Usage: kodama send [-u] [-4|-6] [-v] [-w SECS] [OPTION...] HOST PORT MESSAGE...\n"
        "       kodama send [-v] [-w SECS] [OPTION...] -U PATH MESSAGE...\n\n"
        "Send each MESSAGE to an echo service, read back exactly as many bytes, check\n"
        "they are the same and print them, one line per MESSAGE. Over tcp (and unix)\n"
        "all messages share one connection, and after the last reply the write side is\n"
        "shut down and the peer's close awaited (up to -w): a byte more is a mismatch.\n"
        "With -u each MESSAGE is one datagram.\n\n"
        "Options:\n"
        "  -u                 udp\n"
        "  -4, -6             IPv4 or IPv6 only\n"
        "  -U PATH            a unix stream socket (@NAME: abstract)\n"
        "  -w SECS            connect timeout and wait for each reply (default 5)\n"
        "  -v                 print 'Received N bytes from ADDR' on stderr for each reply\n"
        "      --source ADDR  connect from this local address\n"
        "      --source-port PORT  connect from this local port\n"
        "      --json         print one JSON object (the verdict, addresses, bytes and\n"
        "                     times) instead of the replies\n"
        "      --trace        narrate each socket call on stderr\n");
    client_tls_help(out, 6, 21, 0);
    fprintf(out,
        "  -h, --help         show this help\n\n"
        "Exit status (the verdict):\n%s\n"
        "(see 'man kodama', EXIT STATUS).\n", verdict_summary());
}

struct send_run {
    struct client_opts c;
    char **msgs;
    int nmsgs;
    struct peer p;
    struct report r;
    char *buf;                  /* a reply, and room for more */
    size_t cap;
};

static int fail(struct send_run *s, enum verdict v, const char *fmt, const char *arg)
    __attribute__((format(printf, 3, 0)));

/* One failure line naming the peer: fmt has one %s for its name, arg fills a
 * second one if the format has it. */
static int fail(struct send_run *s, enum verdict v, const char *fmt, const char *arg)
{
    char text[300];

    snprintf(text, sizeof text, fmt, s->p.name, arg);
    return report_fail(&s->r, 0, v, "%s", text);
}

static int no_reply(struct send_run *s)
{
    return fail(s, V_TIMEOUT, "no reply from %s within %s s", s->c.wait_text);
}

static int write_reply(struct send_run *s, const char *data, size_t len)
{
    if (s->c.t.verbose)
        log_plain("Received %zu bytes from %s", len, s->p.addr);
    if (s->c.json)
        return V_OK;    /* the object replaces the replies */
    if (fwrite(data, 1, len, stdout) != len || putchar('\n') == EOF || fflush(stdout) == EOF)
        return report_stdout_failed(&s->r, errno);
    return V_OK;
}

/* poll one socket until deadline; returns its revents, 0 on timeout, -1 on error. */
static int wait_fd(int fd, short events, int64_t deadline)
{
    struct pollfd pfd = { .fd = fd, .events = events };
    int rc;

    do {
        int64_t left = deadline - now_ms();

        rc = sk_poll(&pfd, 1, left > 0 ? (int)left : 0);
    } while (rc < 0 && errno == EINTR);
    return rc <= 0 ? rc : pfd.revents;
}

/* A received piece of the reply to msg (len bytes, got of them in so far). */
static int check_piece(struct send_run *s, const char *msg, size_t len, size_t got, size_t n)
{
    report_first_byte(&s->r);
    s->r.bytes_in += n;
    if (memcmp(s->buf + got, msg + got, (got + n > len ? len : got + n) - got) != 0)
        return fail(s, V_MISMATCH, "reply from %s differs from the message sent", NULL);
    if (got + n > len)
        return fail(s, V_MISMATCH, "reply from %s is longer than the message sent", NULL);
    return V_OK;
}

/* Send as much of msg as the socket takes now. Returns V_OK or the failure. */
static int send_some(struct send_run *s, const char *msg, size_t len, size_t *sent)
{
    ssize_t n = peer_send(&s->p, msg + *sent, len - *sent);

    if (n >= 0) {
        *sent += (size_t)n;
        s->r.bytes_out += (uint64_t)n;
        return V_OK;
    }
    if (errno == EAGAIN || errno == EINTR)
        return V_OK;
    return peer_fail(&s->r, 0, &s->p, errno, "send to");
}

/* Read what came of the reply. Returns V_OK or the failure. */
static int recv_some(struct send_run *s, const char *msg, size_t len, size_t *got)
{
    size_t room = s->cap - *got;
    ssize_t n = peer_recv(&s->p, s->buf + *got, room < SK_RECV_CHUNK ? room : SK_RECV_CHUNK);

    if (n > 0) {
        int v = check_piece(s, msg, len, *got, (size_t)n);

        *got += (size_t)n;
        return v;
    }
    if (n == 0) {
        char text[64];

        snprintf(text, sizeof text, "%zu of %zu", *got, len);
        return fail(s, V_RESET, "%s closed the connection after %s bytes", text);
    }
    if (errno == EAGAIN || errno == EINTR)
        return V_OK;
    return peer_fail(&s->r, 0, &s->p, errno, "receive from");
}

/* Send msg and read its echo on a stream, both at once: a long message would
 * otherwise fill both directions' buffers and wait forever. Sends are tried before
 * any wait (the trace shows a full socket as EAGAIN); reads wait for poll. */
static int exchange_stream(struct send_run *s, const char *msg, size_t len)
{
    size_t sent = 0, got = 0;
    int64_t deadline = now_ms() + s->c.wait_ms;
    int v = V_OK;

    while (v == V_OK && got < len) {
        int ev;

        if (sent < len && (v = send_some(s, msg, len, &sent)) != V_OK)
            break;
        ev = peer_recv_events(&s->p);
        ev = ev == 0 ? POLLIN      /* TLS holds decrypted bytes: read them first */
                     : wait_fd(s->p.fd, (short)(ev | (sent < len ? POLLOUT : 0)), deadline);
        if (ev == 0)
            return no_reply(s);
        if (ev < 0)
            return report_fail(&s->r, 0, V_LOCAL, "poll: %s", strerror(errno));
        if (ev & (POLLIN | POLLHUP | POLLERR)) {
            size_t before = got;

            v = recv_some(s, msg, len, &got);
            if (got > before)
                deadline = now_ms() + s->c.wait_ms;
        }
    }
    return v;
}

/* Our side's end: the FIN (TLS: close_notify first, which may have to wait for
 * room). Returns 1 when done, 0 when the peer has gone already, or the failure. */
static int shut_our_side(struct send_run *s, int64_t deadline)
{
    while (peer_shutdown_wr(&s->p) < 0) {
        if (errno != EAGAIN)
            return 0;   /* ENOTCONN: the peer has gone already, every reply in */
        if (wait_fd(s->p.fd, POLLOUT, deadline) <= 0)
            return 0;
    }
    return 1;
}

/* After the last reply: our FIN, then the peer's, for at most -w. A byte more is a
 * mismatch; a peer that keeps the connection open past -w still passes. */
static int drain_stream(struct send_run *s)
{
    int64_t deadline = now_ms() + s->c.wait_ms;

    if (shut_our_side(s, deadline) != 1)
        return V_OK;
    for (;;) {
        short want = peer_recv_events(&s->p);
        int ev = want ? wait_fd(s->p.fd, want, deadline) : POLLIN;
        ssize_t n;

        if (ev <= 0)
            return V_OK;
        n = peer_recv(&s->p, s->buf, SK_RECV_CHUNK);
        if (n == 0)
            return V_OK;
        if (n > 0) {
            s->r.bytes_in += (uint64_t)n;
            return fail(s, V_MISMATCH, "reply from %s is longer than the message sent", NULL);
        }
        if (errno != EAGAIN && errno != EINTR)
            return peer_fail(&s->r, 0, &s->p, errno, "receive from");
    }
}

static int exchange_udp(struct send_run *s, const char *msg, size_t len, size_t *rlen)
{
    int64_t deadline;
    ssize_t n;

    if (sk_send(s->p.fd, msg, len) < 0)
        return report_fail(&s->r, 0, verdict_of_errno(errno), "send to %s failed: %s",
                           s->p.name, strerror(errno));
    s->r.bytes_out += len;
    deadline = now_ms() + s->c.wait_ms;
    for (;;) {
        int ev = wait_fd(s->p.fd, POLLIN, deadline);

        if (ev == 0)
            return no_reply(s);
        n = sk_recv(s->p.fd, s->buf, NET_DGRAM_MAX);
        if (n >= 0)
            break;
        if (errno != EAGAIN && errno != EINTR)
            /* A connected udp socket hears the ICMP "port unreachable" as this. */
            return report_fail(&s->r, 0, verdict_of_errno(errno), "no reply from %s: %s",
                               s->p.name, strerror(errno));
    }
    report_first_byte(&s->r);
    s->r.bytes_in += (uint64_t)n;
    *rlen = (size_t)n;
    if (*rlen > len && memcmp(s->buf, msg, len) == 0)
        return fail(s, V_MISMATCH, "reply from %s is longer than the message sent", NULL);
    if (*rlen != len || memcmp(s->buf, msg, len) != 0)
        return fail(s, V_MISMATCH, "reply from %s differs from the message sent", NULL);
    return V_OK;
}

static int send_all(struct send_run *s)
{
    int v = V_OK;

    for (int i = 0; i < s->nmsgs && v == V_OK; i++) {
        size_t len = strlen(s->msgs[i]), rlen = len;

        if (!s->c.t.udp && len + SK_RECV_CHUNK > s->cap) {
            free(s->buf);
            s->cap = len + SK_RECV_CHUNK;
            s->buf = xmalloc(s->cap);
        }
        v = s->c.t.udp ? exchange_udp(s, s->msgs[i], len, &rlen)
                       : exchange_stream(s, s->msgs[i], len);
        if (v == V_OK)
            v = write_reply(s, s->buf, rlen);
    }
    if (v == V_OK && !s->c.t.udp)
        v = drain_stream(s);
    return v;
}

static int parse_send_args(int argc, char **argv, struct send_run *s)
{
    const struct client_cmd cmd = { .name = "send", .help = help_send };
    int rc = client_parse_options(&cmd, argc, argv, &s->c);

    if (rc == EXIT_OK && !s->c.t.unix_path)
        rc = client_take_host_port("send", argc, argv, &s->c.t);
    if (rc != EXIT_OK)
        return rc;
    s->msgs = argv + optind;
    s->nmsgs = argc - optind;
    if (s->nmsgs == 0)
        return usage_error("send", "missing MESSAGE");
    if (s->c.t.udp)
        for (int i = 0; i < s->nmsgs; i++)
            if (strlen(s->msgs[i]) > NET_UDP_PAYLOAD_MAX)
                return usage_error("send", "MESSAGE %d is longer than a udp datagram (65507 bytes)", i + 1);
    return EXIT_OK;
}

int cmd_send(int argc, char **argv)
{
    struct send_run s = { .c = { .t.family = AF_UNSPEC, .wait_text = "5", .wait_ms = 5000 } };
    char err[CLIENT_TLS_ERR_LEN];
    int rc = parse_send_args(argc, argv, &s);

    if (rc != EXIT_OK)
        return rc;
    s.c.t.timeout_ms = s.c.wait_ms;
    report_start(&s.r, &s.c.t);
    rc = client_tls_setup(&s.c.tls, err, sizeof err);
    if (rc != V_OK)
        report_fail(&s.r, 0, rc, "%s", err);
    if (rc == V_OK)
        rc = client_connect(&s.c.t, &s.p, &s.r);
    if (rc == V_OK) {
        s.cap = NET_DGRAM_MAX;
        s.buf = xmalloc(s.cap);
        rc = send_all(&s);
        peer_close(&s.p);
        free(s.buf);
    }
    client_tls_free(&s.c.tls);
    s.r.t_end = now_ns();
    if (s.c.json && report_print(&s.r, stdout) < 0 && rc == V_OK)
        rc = report_stdout_failed(&s.r, errno);
    return rc;
}
