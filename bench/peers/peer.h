/*
 * peer.h: the shared start of the tutorial floors in bench/peers/.
 * Parses "[ADDRESS] PORT" (IPv4 or IPv6 literal, default 127.0.0.1), binds,
 * listens and prints "listening ADDRESS:PORT" with the port the kernel chose.
 * Returns the listening socket; exits with status 2 on bad arguments and 1 on
 * failure.
 */
#ifndef PEER_H
#define PEER_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* Fills *ss from "[ADDRESS] PORT"; returns its length, or 0 on bad arguments. */
static inline socklen_t peer_addr(int argc, char **argv, struct sockaddr_storage *ss)
{
	const char *host = argc == 3 ? argv[1] : "127.0.0.1";
	const char *port = argv[argc - 1];
	char *end;
	long p;

	if (argc < 2 || argc > 3)
		return 0;
	p = strtol(port, &end, 10);
	if (*port == '\0' || *end != '\0' || p < 0 || p > 65535)
		return 0;
	memset(ss, 0, sizeof *ss);
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((unsigned short)p);
		return sizeof *sin;
	}
	if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((unsigned short)p);
		return sizeof *sin6;
	}
	return 0;
}

/* Prints "listening ADDRESS:PORT" for the bound socket fd. */
static inline void peer_print(int fd, const char *name)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	char host[INET6_ADDRSTRLEN];
	unsigned port;

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
		fprintf(stderr, "%s: getsockname: ", name);
		perror(NULL);
		exit(1);
	}
	if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
		inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof host);
		port = ntohs(sin6->sin6_port);
		printf("listening [%s]:%u\n", host, port);
	} else {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof host);
		port = ntohs(sin->sin_port);
		printf("listening %s:%u\n", host, port);
	}
	fflush(stdout);
}

/* Binds a socket of the given type to "[ADDRESS] PORT"; returns it. */
static inline int peer_bind(int argc, char **argv, const char *name, int type)
{
	struct sockaddr_storage ss;
	socklen_t len = peer_addr(argc, argv, &ss);
	int one = 1, fd;

	if (len == 0) {
		fprintf(stderr, "usage: %s [ADDRESS] PORT\n", name);
		exit(2);
	}
	fd = socket(ss.ss_family, type, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    bind(fd, (struct sockaddr *)&ss, len) < 0) {
		fprintf(stderr, "%s: bind %s: ", name, argv[argc - 1]);
		perror(NULL);
		exit(1);
	}
	return fd;
}

static void on_sigchld(int sig)
{
	int saved = errno;

	(void)sig;
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	errno = saved;
}

/* Reaps exited children with waitpid() from a SIGCHLD handler, the classic
 * way (SIG_IGN would too, but then their CPU time never reaches the parent's
 * cutime, where compare.sh reads it). */
static inline void reap_children(void)
{
	struct sigaction sa = { .sa_handler = on_sigchld, .sa_flags = SA_RESTART | SA_NOCLDSTOP };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGCHLD, &sa, NULL);
}

static inline int listen_tcp(int argc, char **argv, const char *name)
{
	int fd = peer_bind(argc, argv, name, SOCK_STREAM);

	if (listen(fd, SOMAXCONN) < 0) {
		fprintf(stderr, "%s: listen: ", name);
		perror(NULL);
		exit(1);
	}
	peer_print(fd, name);
	return fd;
}

#endif
