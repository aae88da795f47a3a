/*
 * fork_hello: the tutorial greeting server, as a floor for bench/compare.sh.
 * accept(), fork(), and in the child write the greeting and close.
 *
 * Usage: fork_hello [ADDRESS] PORT   (default ADDRESS 127.0.0.1; PORT 0 = any)
 * Prints "listening ADDRESS:PORT" on stdout once bound.
 * Test with: kodama connect 127.0.0.1 PORT </dev/null
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "peer.h"

static const char greeting[] = "Hello from server!\n";

int main(int argc, char **argv)
{
	int lfd = listen_tcp(argc, argv, "fork_hello");

	reap_children();
	signal(SIGPIPE, SIG_IGN);
	for (;;) {
		int fd = accept(lfd, NULL, NULL);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE)
				continue;
			perror("fork_hello: accept");
			return 1;
		}
		pid_t pid = fork();
		if (pid == 0) {
			close(lfd);
			if (write(fd, greeting, strlen(greeting)) < 0)
				_exit(1);
			close(fd);
			_exit(0);
		}
		if (pid < 0)
			perror("fork_hello: fork");
		close(fd);
	}
}
