/* cli.c — see cli.h. */
#include "lib/cli.h"

#include <stdarg.h>
#include <string.h>

#include "lib/log.h"

const struct command commands[] = {
    { "serve", "run hello and echo services over tcp, udp and unix sockets", cmd_serve, help_serve },
    { "send", "send messages to an echo service and print each reply", cmd_send, help_send },
    { "connect", "relay stdin and stdout to a socket, like netcat", cmd_connect, help_connect },
    { "bench", "generate load and measure latency against an echo or hello service", cmd_bench, help_bench },
    { NULL, NULL, NULL, NULL },
};

const struct command *command_find(const char *name)
{
    for (const struct command *c = commands; c->name; c++)
        if (strcmp(c->name, name) == 0)
            return c;
    return NULL;
}

int usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_vusage(fmt, ap);
    va_end(ap);
    if (cmd)
        log_plain("Try 'kodama %s --help'.", cmd);
    else
        log_plain("Try 'kodama --help'.");
    return EXIT_USAGE;
}

static const char *long_name(int val, const struct option *longopts)
{
    for (const struct option *o = longopts; o && o->name; o++)
        if (o->val == val)
            return o->name;
    return NULL;
}

int option_error(const char *cmd, int c, char **argv, const struct option *longopts)
{
    const char *arg = argv[optind - 1];
    int is_long = strncmp(arg, "--", 2) == 0;

    if (c == ':') {
        if (is_long && long_name(optopt, longopts))
            return usage_error(cmd, "option '--%s' needs an argument", long_name(optopt, longopts));
        return usage_error(cmd, "option '-%c' needs an argument", optopt);
    }
    if (optopt != 0 && !is_long)
        return usage_error(cmd, "unknown option '-%c'", optopt);
    return usage_error(cmd, "unknown option '%.*s'", (int)strcspn(arg, "="), arg);
}
