/*
 * holdconns: opens N TCP connections to an echo server, checks that each one
 * is served (one byte out, the same byte back), holds them idle, and closes
 * them all at once on SIGUSR1.  The idle-connection and mass-close cases of
 * bench/compare.sh; not part of the product.
 *
 * Usage: holdconns [-n N] [-b BATCH] [-w SECS] [-t SECS] HOST PORT
 *   -n N      connections (default 10000)
 *   -b BATCH  connections being opened at a time (default 100)
 *   -w SECS   how long a batch may take (default 5)
 *   -t SECS   how long opening them all may take (default 30); the ones not
 *             tried by then count as failed
 * Prints "opened=N failed=N open_ms=N" once every connection is up, then
 * waits for SIGUSR1, closes every connection in one loop and prints
 * "closed=N close_ms=N".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Waits until every fd in p[0..n) has one of the events or fails, or the
 * deadline passes; got[i] is what happened to p[i] (0: nothing yet). */
static void wait_all(struct pollfd *p, short *got, int n, short events, double deadline)
{
	int left = n;

	for (int i = 0; i < n; i++) {
		p[i].events = p[i].fd >= 0 ? events : 0;
		got[i] = 0;
	}
	while (left > 0) {
		double ms = deadline - now_ms();
		if (ms <= 0)
			break;
		int r = poll(p, (nfds_t)n, (int)ms + 1);
		if (r < 0 && errno != EINTR)
			break;
		left = 0;
		for (int i = 0; i < n; i++) {
			if (p[i].fd < 0 || p[i].events == 0)
				continue;
			if (p[i].revents) {
				got[i] = p[i].revents;
				p[i].events = 0; /* done: ready or failed */
			} else {
				left++;
			}
		}
	}
}

/* Opens the connections fds[0..n) to ai and echoes one byte on each; a
 * failed one is -1.  Returns how many failed. */
static int open_batch(const struct addrinfo *ai, int *fds, int n, int secs)
{
	struct pollfd p[n];
	short got[n];
	double deadline = now_ms() + secs * 1e3;
	int failed = 0;

	for (int i = 0; i < n; i++) {
		fds[i] = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fds[i] >= 0 && connect(fds[i], ai->ai_addr, ai->ai_addrlen) < 0 &&
		    errno != EINPROGRESS) {
			close(fds[i]);
			fds[i] = -1;
		}
		p[i].fd = fds[i];
	}
	wait_all(p, got, n, POLLOUT, deadline);
	for (int i = 0; i < n; i++) {
		int err = 0;
		socklen_t len = sizeof err;
		if (fds[i] < 0)
			continue;
		if (!(got[i] & POLLOUT) || (got[i] & (POLLERR | POLLHUP)) ||
		    getsockopt(fds[i], SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err ||
		    send(fds[i], "x", 1, MSG_NOSIGNAL) != 1) {
			close(fds[i]);
			fds[i] = -1;
		}
		p[i].fd = fds[i];
	}
	wait_all(p, got, n, POLLIN, deadline);
	for (int i = 0; i < n; i++) {
		char c = 0;
		if (fds[i] >= 0 && (!(got[i] & POLLIN) || recv(fds[i], &c, 1, 0) != 1 || c != 'x')) {
			close(fds[i]);
			fds[i] = -1;
		}
		if (fds[i] < 0)
			failed++;
	}
	return failed;
}

static void usage(void)
{
	fprintf(stderr, "usage: holdconns [-n N] [-b BATCH] [-w SECS] [-t SECS] HOST PORT\n");
	exit(2);
}

int main(int argc, char **argv)
{
	int n = 10000, batch = 100, secs = 5, total = 30, o, failed = 0, rc;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai;
	struct rlimit rl;
	sigset_t set;

	while ((o = getopt(argc, argv, "n:b:w:t:")) != -1) {
		switch (o) {
		case 'n': n = atoi(optarg); break;
		case 'b': batch = atoi(optarg); break;
		case 'w': secs = atoi(optarg); break;
		case 't': total = atoi(optarg); break;
		default: usage();
		}
	}
	if (argc - optind != 2 || n < 1 || batch < 1 || batch > 1000 || secs < 1 || total < 1)
		usage();
	rc = getaddrinfo(argv[optind], argv[optind + 1], &hints, &ai);
	if (rc) {
		fprintf(stderr, "holdconns: %s: %s\n", argv[optind], gai_strerror(rc));
		return 1;
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, NULL); /* for sigwait; SIGTERM still ends it */

	int *fds = calloc((size_t)n, sizeof *fds);
	if (!fds)
		return 1;
	double t0 = now_ms();
	for (int i = 0; i < n; i += batch) {
		int k = n - i < batch ? n - i : batch;
		if (now_ms() - t0 > total * 1e3) {
			for (int j = i; j < n; j++)
				fds[j] = -1;
			failed += n - i;
			break;
		}
		failed += open_batch(ai, fds + i, k, secs);
	}
	printf("opened=%d failed=%d open_ms=%.0f\n", n - failed, failed, now_ms() - t0);
	fflush(stdout);

	int sig = 0;
	sigwait(&set, &sig);
	t0 = now_ms();
	for (int i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	printf("closed=%d close_ms=%.1f\n", n - failed, now_ms() - t0);
	return 0;
}
