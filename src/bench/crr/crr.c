/*
 * slbench-crr: new TCP connections per second, like netperf's TCP_CRR.
 *
 *   slbench-crr server -b ADDR -p PORT [-q REQ] [-r RESP]
 *   slbench-crr client -c ADDR -p PORT -t SECONDS [-q REQ] [-r RESP] [-w TIMEOUT_MS]
 *
 * One transaction: connect, write a request of REQ bytes (default 1), read a response of
 * RESP bytes (default 1), close. The client closes with SO_LINGER 0 (an RST instead of a
 * FIN), so no socket stays in TIME_WAIT on either end and a few seconds at tens of
 * thousands of connections per second cannot run out of ephemeral ports; no sysctl is
 * changed. One transaction is in flight at a time (as TCP_CRR).
 *
 * The server is one thread with epoll: accept, read the request, write the response, and
 * close once the client has closed (EOF or reset). It runs until SIGTERM or SIGINT.
 *
 * The client prints one line of JSON on stdout when its SECONDS are up:
 *   {"transactions":N,"seconds":S,"errors":E,"first_error":"connect: Connection refused"}
 * (first_error null when E is 0). A transaction that fails (refused, reset, timed out
 * after TIMEOUT_MS, default 1000, a short read) counts as an error, not a transaction.
 * Exit status 0 whenever the JSON was printed, 2 on a usage error, 1 on a setup failure.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define MAX_MSG 65536

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig) {
  (void)sig;
  stop_requested = 1;
}

static void usage(void) {
  fprintf(stderr,
          "usage: slbench-crr server -b ADDR -p PORT [-q REQ] [-r RESP]\n"
          "       slbench-crr client -c ADDR -p PORT -t SECONDS [-q REQ] [-r RESP] [-w TIMEOUT_MS]\n");
  exit(2);
}

static long number(const char *flag, const char *s, long min, long max) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || *s == '\0' || *end != '\0' || v < min || v > max) {
    fprintf(stderr, "slbench-crr: %s %s: expected a whole number from %ld to %ld\n", flag, s, min, max);
    exit(2);
  }
  return v;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct sockaddr_in address(const char *ip, long port) {
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((unsigned short)port);
  if (inet_pton(AF_INET, ip, &a.sin_addr) != 1) {
    fprintf(stderr, "slbench-crr: %s: not an IPv4 address\n", ip);
    exit(2);
  }
  return a;
}

/* ------------------------------------------------------------------------------ server */

struct conn {
  int fd;
  size_t got; /* request bytes read */
  int answered;
};

static int serve(const char *ip, long port, size_t req, size_t resp) {
  struct sockaddr_in a = address(ip, port);
  int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  if (ls < 0 || setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
      bind(ls, (struct sockaddr *)&a, sizeof a) < 0 || listen(ls, 4096) < 0) {
    fprintf(stderr, "slbench-crr server: %s:%ld: %s\n", ip, port, strerror(errno));
    return 1;
  }
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
  if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev) < 0) {
    fprintf(stderr, "slbench-crr server: epoll: %s\n", strerror(errno));
    return 1;
  }
  static char buf[MAX_MSG];
  static char out[MAX_MSG];
  memset(out, 'r', sizeof out);
  unsigned long served = 0, failed = 0;
  struct epoll_event evs[64];
  while (!stop_requested) {
    int n = epoll_wait(ep, evs, 64, 200);
    if (n < 0) {
      if (errno == EINTR) continue;
      fprintf(stderr, "slbench-crr server: epoll_wait: %s\n", strerror(errno));
      return 1;
    }
    for (int i = 0; i < n; i++) {
      struct conn *c = evs[i].data.ptr;
      if (c == NULL) { /* the listening socket */
        for (;;) {
          int fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (fd < 0) break; /* EAGAIN, or a connection reset before accept */
          setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          struct conn *nc = calloc(1, sizeof *nc);
          if (nc == NULL) {
            close(fd);
            continue;
          }
          nc->fd = fd;
          struct epoll_event cev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = nc};
          if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev) < 0) {
            close(fd);
            free(nc);
          }
        }
        continue;
      }
      int done = 0;
      for (;;) {
        ssize_t r = read(c->fd, buf, sizeof buf);
        if (r > 0) {
          c->got += (size_t)r;
          if (!c->answered && c->got >= req) {
            /* A small response into an empty send buffer: one write does it. */
            if (write(c->fd, out, resp) == (ssize_t)resp) {
              c->answered = 1;
              served++;
            } else {
              failed++;
              done = 1;
              break;
            }
          }
          continue;
        }
        if (r == 0 || (errno != EAGAIN && errno != EINTR)) done = 1; /* EOF or reset: the client is gone */
        if (r < 0 && errno == EINTR) continue;
        break;
      }
      if (done) {
        if (!c->answered) failed++;
        close(c->fd); /* also removes it from the epoll set */
        free(c);
      }
    }
  }
  fprintf(stderr, "slbench-crr server: %lu transactions served, %lu connections closed before an answer\n", served, failed);
  return 0;
}

/* ------------------------------------------------------------------------------ client */

static void json_string(const char *s) {
  putchar('"');
  for (; *s; s++) {
    if (*s == '"' || *s == '\\') printf("\\%c", *s);
    else if ((unsigned char)*s < 0x20) printf("\\u%04x", (unsigned char)*s);
    else putchar(*s);
  }
  putchar('"');
}

/* One transaction; 0 on success, else errno, and *what names the step that failed. */
static int transact(const struct sockaddr_in *a, size_t req, size_t resp, int timeout_ms, const char **what) {
  static char out[MAX_MSG];
  static char in[MAX_MSG];
  static int filled;
  if (!filled) {
    memset(out, 'q', sizeof out);
    filled = 1;
  }
  int err = 0;
  *what = "socket";
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno;
  int one = 1;
  struct linger lg = {.l_onoff = 1, .l_linger = 0};
  struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  /* SO_SNDTIMEO bounds connect() too: a dropped SYN fails after timeout_ms, not minutes. */
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  *what = "connect";
  if (connect(fd, (const struct sockaddr *)a, sizeof *a) < 0) {
    err = errno == EINPROGRESS ? ETIMEDOUT : errno;
    goto out;
  }
  *what = "write";
  ssize_t w = write(fd, out, req);
  if (w != (ssize_t)req) {
    err = w < 0 ? errno : EIO;
    goto out;
  }
  *what = "read";
  size_t got = 0;
  while (got < resp) {
    ssize_t r = read(fd, in, sizeof in);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      err = r == 0 ? ECONNABORTED : (errno == EAGAIN ? ETIMEDOUT : errno);
      if (r == 0) *what = "read (closed before the whole response)";
      goto out;
    }
    got += (size_t)r;
  }
out:
  close(fd);
  return err;
}

static int client(const char *ip, long port, long seconds, size_t req, size_t resp, int timeout_ms) {
  struct sockaddr_in a = address(ip, port);
  unsigned long transactions = 0, errors = 0;
  char first[256] = "";
  double start = now_s(), end = start + (double)seconds, t = start;
  while (!stop_requested && (t = now_s()) < end) {
    const char *what = "";
    int err = transact(&a, req, resp, timeout_ms, &what);
    if (err == 0) {
      transactions++;
    } else {
      if (errors++ == 0) snprintf(first, sizeof first, "%s: %s", what, strerror(err));
      /* A refused connection returns at once: do not spin a CPU on it at full speed. */
      if (err == ECONNREFUSED || err == ENETUNREACH || err == EHOSTUNREACH) usleep(1000);
    }
  }
  t = now_s();
  printf("{\"transactions\":%lu,\"seconds\":%.6f,\"errors\":%lu,\"first_error\":", transactions, t - start, errors);
  if (errors) json_string(first);
  else fputs("null", stdout);
  puts("}");
  return fflush(stdout) == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
  if (argc < 2) usage();
  const char *mode = argv[1];
  int is_server = strcmp(mode, "server") == 0;
  if (!is_server && strcmp(mode, "client") != 0) usage();
  const char *ip = NULL;
  long port = -1, seconds = -1, req = 1, resp = 1, timeout_ms = 1000;
  int opt;
  optind = 2;
  while ((opt = getopt(argc, argv, "b:c:p:t:q:r:w:")) != -1) {
    switch (opt) {
    case 'b': if (!is_server) usage(); ip = optarg; break;
    case 'c': if (is_server) usage(); ip = optarg; break;
    case 'p': port = number("-p", optarg, 1, 65535); break;
    case 't': seconds = number("-t", optarg, 1, 3600); break;
    case 'q': req = number("-q", optarg, 1, MAX_MSG); break;
    case 'r': resp = number("-r", optarg, 1, MAX_MSG); break;
    case 'w': timeout_ms = number("-w", optarg, 1, 60000); break;
    default: usage();
    }
  }
  if (optind != argc || ip == NULL || port < 0 || (!is_server && seconds < 0)) usage();
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal; /* no SA_RESTART: epoll_wait and the client's calls return EINTR */
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  return is_server ? serve(ip, port, (size_t)req, (size_t)resp) : client(ip, port, seconds, (size_t)req, (size_t)resp, (int)timeout_ms);
}
