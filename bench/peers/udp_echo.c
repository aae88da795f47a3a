/*
 * udp_echo: the tutorial UDP echo server, as a floor for bench/compare.sh.
 * One socket, a recvfrom()/sendto() loop.
 *
 * Usage: udp_echo [ADDRESS] PORT   (default ADDRESS 127.0.0.1; PORT 0 = any)
 * Prints "listening ADDRESS:PORT" on stdout once bound.
 * Test with: kodama send -u 127.0.0.1 PORT hello
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/socket.h>

#include "peer.h"

int main(int argc, char **argv)
{
	int fd = peer_bind(argc, argv, "udp_echo", SOCK_DGRAM);
	char buf[65536];

	peer_print(fd, "udp_echo");
	for (;;) {
		struct sockaddr_storage from;
		socklen_t len = sizeof from;
		ssize_t n = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &len);
		if (n < 0)
			continue;
		sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&from, len);
	}
}
