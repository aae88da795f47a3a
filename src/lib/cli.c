/* cli.c — see cli.h. */
#include "lib/cli.h"

#include <stdarg.h>
#include <string.h>

#include "lib/log.h"

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
