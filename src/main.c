/* main.c — kodama: a network test-service toolkit. Dispatches to a subcommand. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bench/bench.h"
#include "client/client.h"
#include "lib/cli.h"
#include "lib/verdict.h"
#include "serve/serve.h"

/* A subcommand: its entry point (argv[0] is its name) and its --help. */
struct command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
    void (*help)(FILE *out);
};

static const struct command commands[] = {
    { "serve", "run hello and echo services over tcp, udp and unix sockets", cmd_serve, help_serve },
    { "send", "send messages to an echo service and print each reply", cmd_send, help_send },
    { "connect", "relay stdin and stdout to a socket, like netcat; listen, scan",
      cmd_connect, help_connect },
    { "ping", "probe a port again and again, as ping(8) does a host", cmd_ping, help_ping },
    { "bench", "generate load and measure latency against an echo or hello service", cmd_bench, help_bench },
    { NULL, NULL, NULL, NULL },
};

static const struct command *command_find(const char *name)
{
    for (const struct command *c = commands; c->name; c++)
        if (strcmp(c->name, name) == 0)
            return c;
    return NULL;
}


static void usage(FILE *out)
{
    fprintf(out, "Usage: kodama COMMAND [OPTIONS] [ARGS...]\n"
                 "       kodama help COMMAND | --help | --version\n\n"
                 "A known-good peer on the network: hello and echo services, an echo\n"
                 "client and a netcat-style relay.\n\nCommands:\n");
    for (const struct command *c = commands; c->name; c++)
        fprintf(out, "  %-9s %s\n", c->name, c->summary);
    fprintf(out, "\nExit status of send, connect, ping and bench (the verdict):\n%s.\n"
                 "serve: 0 stopped by a signal, 1 failure, 2 usage error.\n"
                 "Run 'kodama COMMAND --help' for a command's options; 'man kodama' for more.\n",
            verdict_summary());
}

/* A descriptor 0, 1 or 2 that is not open would be handed to the first socket we
 * make, and the relay would then read its own socket as stdin. */
static void keep_std_fds_open(void)
{
    for (int fd = 0; fd <= 2; fd++)
        if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY) < 0)
            _exit(EXIT_FAIL);
}

static int help(int argc, char **argv)
{
    const struct command *c;

    if (argc < 2) {
        usage(stdout);
        return EXIT_OK;
    }
    c = command_find(argv[1]);
    if (c == NULL)
        return usage_error(NULL, "unknown command '%s'", argv[1]);
    c->help(stdout);
    return EXIT_OK;
}

int main(int argc, char **argv)
{
    const struct command *c;

    keep_std_fds_open();
    /* A peer that went away is an error code (EPIPE), never a reason to die. */
    signal(SIGPIPE, SIG_IGN);
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
        return help(1, argv);
    if (strcmp(argv[1], "--version") == 0) {
        printf("kodama %s\n", KODAMA_VERSION);
        return EXIT_OK;
    }
    if (strcmp(argv[1], "help") == 0)
        return help(argc - 1, argv + 1);
    c = command_find(argv[1]);
    if (c == NULL) {
        if (argv[1][0] == '-')
            return usage_error(NULL, "unknown option '%s'", argv[1]);
        return usage_error(NULL, "unknown command '%s'", argv[1]);
    }
    return c->run(argc - 1, argv + 1);
}
