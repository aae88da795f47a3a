/*
 * fork_echo: the tutorial TCP echo server, as a floor for bench/compare.sh.
 * accept(), fork(), and in the child a read()/write() loop until EOF.
 *
 * Usage: fork_echo [ADDRESS] PORT   (default ADDRESS 127.0.0.1; PORT 0 = any)
 * Prints "listening ADDRESS:PORT" on stdout once bound.
 * Test with: kodama send 127.0.0.1 PORT hello
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "peer.h"

static void serve(int fd)
{
	char buf[16384];
	ssize_t n;

	while ((n = read(fd, buf, sizeof buf)) > 0) {
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(fd, buf + off, (size_t)(n - off));
			if (w < 0)
				_exit(1);
			off += w;
		}
	}
	_exit(0);
}

int main(int argc, char **argv)
{
	int lfd = listen_tcp(argc, argv, "fork_echo");

	reap_children();
	for (;;) {
		int fd = accept(lfd, NULL, NULL);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE)
				continue;
			perror("fork_echo: accept");
			return 1;
		}
		pid_t pid = fork();
		if (pid == 0) {
			close(lfd);
			serve(fd);
		}
		if (pid < 0)
			perror("fork_echo: fork");
		close(fd);
	}
}
