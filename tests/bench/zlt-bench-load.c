/* zlt-bench-load.c: the benchmarks' local services and load generators (see the header).
 * Plain POSIX sockets: the load generators want no overhead of their own. */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib-unix.h>

#include "zlt-bench-load.h"

gboolean bench_verbose;
static gint64 start_time;

/* ---- small helpers ---- */

void
bench_clock_start (void)
{
  start_time = g_get_monotonic_time ();
}

void
bench_note (const char *format, ...)
{
  va_list args;

  if (!bench_verbose)
    return;
  if (start_time == 0)
    start_time = g_get_monotonic_time ();
  fprintf (stderr, "[%7.3f] ", (double) (g_get_monotonic_time () - start_time) / G_USEC_PER_SEC);
  va_start (args, format);
  vfprintf (stderr, format, args);
  va_end (args);
  fputc ('\n', stderr);
}

double
bench_now_s (void)
{
  return (double) g_get_monotonic_time () / G_USEC_PER_SEC;
}

static int
cmp_double (gconstpointer a, gconstpointer b)
{
  double x = *(const double *) a, y = *(const double *) b;

  return x < y ? -1 : x > y ? 1 : 0;
}

double
bench_percentile (double *values, guint n, double p)
{
  guint rank;

  if (n == 0)
    return NAN;
  qsort (values, n, sizeof *values, cmp_double);
  rank = (guint) ceil (p / 100.0 * n);
  return values[CLAMP (rank, 1, n) - 1];
}

double
bench_median (GArray *values)
{
  g_autoptr (GArray) copy = NULL;

  if (values->len == 0)
    return NAN;
  copy = g_array_copy (values);
  qsort (copy->data, copy->len, sizeof (double), cmp_double);
  if (copy->len % 2 == 1)
    return g_array_index (copy, double, copy->len / 2);
  return (g_array_index (copy, double, copy->len / 2 - 1)
          + g_array_index (copy, double, copy->len / 2))
         / 2;
}

gint64
bench_read_rss_kib (void)
{
  g_autofree char *status = NULL;
  const char *line;

  if (!g_file_get_contents ("/proc/self/status", &status, NULL, NULL))
    return -1;
  line = strstr (status, "\nVmRSS:");
  if (line == NULL)
    return -1;
  return g_ascii_strtoll (line + strlen ("\nVmRSS:"), NULL, 10);
}

char *
bench_read_loadavg (void)
{
  g_autofree char *contents = NULL;
  g_auto (GStrv) fields = NULL;

  if (!g_file_get_contents ("/proc/loadavg", &contents, NULL, NULL))
    return g_strdup ("?");
  fields = g_strsplit (g_strstrip (contents), " ", 4);
  if (g_strv_length (fields) < 3)
    return g_strdup ("?");
  return g_strdup_printf ("%s %s %s", fields[0], fields[1], fields[2]);
}

char *
bench_read_cpu_model (void)
{
  g_autofree char *contents = NULL;
  const char *line, *colon, *end;

  if (!g_file_get_contents ("/proc/cpuinfo", &contents, NULL, NULL)
      || (line = strstr (contents, "model name")) == NULL || (colon = strchr (line, ':')) == NULL)
    return g_strdup ("unknown CPU");
  end = strchr (colon, '\n');
  return g_strstrip (g_strndup (colon + 1, end ? (gsize) (end - colon - 1) : strlen (colon + 1)));
}

char *
bench_fmt (double v, int decimals, const char *suffix)
{
  if (isnan (v))
    return g_strdup ("-");
  return g_strdup_printf ("%.*f%s", decimals, v, suffix);
}

/* ---- sockets ---- */

void
bench_set_timeouts (int fd, int seconds)
{
  struct timeval tv = { seconds, 0 };

  setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  /* also bounds a blocking connect(2) */
  setsockopt (fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

void
bench_set_nodelay (int fd)
{
  int one = 1;

  setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static struct sockaddr_in
loopback_address (guint16 port)
{
  struct sockaddr_in sin = { 0 };

  sin.sin_family = AF_INET;
  sin.sin_port = htons (port);
  sin.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  return sin;
}

int
bench_listen_loopback (guint16 *port)
{
  struct sockaddr_in sin = loopback_address (0);
  socklen_t len = sizeof sin;
  int one = 1;
  int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

  if (fd < 0)
    g_error ("socket: %s", g_strerror (errno));
  setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind (fd, (struct sockaddr *) &sin, sizeof sin) < 0 || listen (fd, 4096) < 0
      || getsockname (fd, (struct sockaddr *) &sin, &len) < 0)
    g_error ("listening on 127.0.0.1: %s", g_strerror (errno));
  *port = ntohs (sin.sin_port);
  return fd;
}

int
bench_connect_loopback (guint16 port, gboolean nodelay)
{
  struct sockaddr_in sin = loopback_address (port);
  int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

  if (fd < 0)
    return -1;
  bench_set_timeouts (fd, BENCH_SOCKET_TIMEOUT_S);
  if (nodelay)
    bench_set_nodelay (fd);
  if (connect (fd, (struct sockaddr *) &sin, sizeof sin) < 0)
    {
      int saved = errno;
      close (fd);
      errno = saved;
      return -1;
    }
  return fd;
}

static gboolean
send_all_flags (int fd, const void *data, gsize len, int flags)
{
  const char *p = data;

  while (len > 0)
    {
      ssize_t n = send (fd, p, len, MSG_NOSIGNAL | flags);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return FALSE;
      p += n;
      len -= (gsize) n;
    }
  return TRUE;
}

gboolean
bench_send_all (int fd, const void *data, gsize len)
{
  return send_all_flags (fd, data, len, 0);
}

gboolean
bench_recv_all (int fd, void *data, gsize len)
{
  char *p = data;

  while (len > 0)
    {
      ssize_t n = recv (fd, p, len, 0);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return FALSE;
      p += n;
      len -= (gsize) n;
    }
  return TRUE;
}

/* ---- local services ---- */

/* sink: reads to EOF as fast as it can, then answers with the byte count (8 bytes) */
static gpointer
sink_conn_thread (gpointer data)
{
  int fd = GPOINTER_TO_INT (data);
  g_autofree char *buf = g_malloc (BENCH_THROUGHPUT_CHUNK);
  guint64 total = 0;
  ssize_t n;

  /* a stalled tunnel must not park this thread for ever */
  bench_set_timeouts (fd, BENCH_SOCKET_TIMEOUT_S * 3);
  while ((n = recv (fd, buf, BENCH_THROUGHPUT_CHUNK, 0)) > 0 || (n < 0 && errno == EINTR))
    if (n > 0)
      total += (guint64) n;
  if (n == 0)
    bench_send_all (fd, &total, sizeof total);
  close (fd);
  return NULL;
}

/* HTTP/1.1 keep-alive responder: one tiny response per request head */
static const char http_response[] = "HTTP/1.1 200 OK\r\n"
                                    "Content-Type: text/plain\r\n"
                                    "Content-Length: 13\r\n"
                                    "Connection: keep-alive\r\n"
                                    "\r\n"
                                    "Hello, world\n";
static const char http_bulk_head[] = "HTTP/1.1 200 OK\r\n"
                                     "Content-Type: application/octet-stream\r\n"
                                     "Content-Length: 1048576\r\n"
                                     "Connection: keep-alive\r\n"
                                     "\r\n";
G_STATIC_ASSERT (BENCH_BULK_BODY == 1048576); /* the Content-Length above */
static char *bulk_body; /* made once by bench_services_start(), read-only after */

static gboolean
http_answer (int fd, const char *head)
{
  if (g_str_has_prefix (head, "GET /bulk "))
    return send_all_flags (fd, http_bulk_head, sizeof http_bulk_head - 1, MSG_MORE)
           && bench_send_all (fd, bulk_body, BENCH_BULK_BODY);
  return bench_send_all (fd, http_response, sizeof http_response - 1);
}

static gpointer
http_conn_thread (gpointer data)
{
  int fd = GPOINTER_TO_INT (data);
  char buf[16384];
  gsize len = 0;

  bench_set_nodelay (fd);
  while (len < sizeof buf)
    {
      ssize_t n = recv (fd, buf + len, sizeof buf - len, 0);
      gsize off = 0;
      const char *end;

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        break;
      len += (gsize) n;
      while ((end = memmem (buf + off, len - off, "\r\n\r\n", 4)) != NULL)
        {
          gsize head = off;

          off = (gsize) (end - buf) + 4;
          buf[off - 1] = '\0'; /* the head as a string; its last \n is not needed */
          if (!http_answer (fd, buf + head))
            goto out;
        }
      memmove (buf, buf + off, len - off);
      len -= off;
    }
out:
  close (fd);
  return NULL;
}

typedef struct
{
  BenchServices *services;
  int fd;
  GThreadFunc handler;
  const char *name;
} Acceptor;

/* Accepts until the listening socket is shut down; a thread per connection. */
static gpointer
accept_thread (gpointer data)
{
  Acceptor *a = data;

  while (!g_atomic_int_get (&a->services->stop))
    {
      int fd = accept4 (a->fd, NULL, NULL, SOCK_CLOEXEC);
      if (fd < 0)
        {
          if (errno == EINTR || errno == ECONNABORTED)
            continue;
          break;
        }
      g_thread_unref (g_thread_new (a->name, a->handler, GINT_TO_POINTER (fd)));
    }
  g_free (a);
  return NULL;
}

/* Leaves the epoll set before closing. close() alone leaves it only when no other
 * descriptor shares the socket, and a child the bench is spawning holds a copy of every
 * descriptor until its exec: the set then kept reporting the old socket under a number
 * the bench had reused meanwhile (a child's stdout pipe, GLib's worker wakeup), and this
 * thread closed that instead, losing the child's output and its signals. */
static void
echo_drop (BenchServices *s, int fd)
{
  epoll_ctl (s->epoll_fd, EPOLL_CTL_DEL, fd, NULL);
  close (fd);
}

/* echo: one epoll thread for any number of connections (no memory per connection, so
 * thousands of idle ones cost nothing here) */
static gpointer
echo_thread (gpointer data)
{
  BenchServices *s = data;
  struct epoll_event events[256];
  char buf[65536];

  while (!g_atomic_int_get (&s->stop))
    {
      int n = epoll_wait (s->epoll_fd, events, G_N_ELEMENTS (events), 100);

      for (int i = 0; i < n; i++)
        {
          int fd = events[i].data.fd;

          if (fd == s->echo_fd)
            {
              int conn;
              while ((conn = accept4 (s->echo_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0)
                {
                  struct epoll_event ev = { .events = EPOLLIN, .data.fd = conn };
                  bench_set_nodelay (conn);
                  epoll_ctl (s->epoll_fd, EPOLL_CTL_ADD, conn, &ev);
                }
              continue;
            }
          while (TRUE)
            {
              ssize_t r = recv (fd, buf, sizeof buf, 0);
              if (r > 0)
                {
                  /* the bench only echoes a byte at a time, which always fits in the
                   * socket buffer; anything else ends the connection */
                  if (send (fd, buf, (gsize) r, MSG_NOSIGNAL | MSG_DONTWAIT) == r)
                    continue;
                  echo_drop (s, fd);
                  break;
                }
              if (r < 0 && (errno == EAGAIN || errno == EINTR))
                break;
              echo_drop (s, fd); /* EOF or error */
              break;
            }
        }
    }
  return NULL;
}

/* UDP echo: every datagram goes back to its sender, from one thread */
static gpointer
udp_echo_thread (gpointer data)
{
  BenchServices *s = data;
  char buf[65536];

  while (!g_atomic_int_get (&s->stop))
    {
      struct sockaddr_storage from;
      socklen_t from_len = sizeof from;
      ssize_t n = recvfrom (s->udp_fd, buf, sizeof buf, 0, (struct sockaddr *) &from, &from_len);

      /* the 100 ms receive timeout lets the loop see stop */
      if (n >= 0)
        sendto (s->udp_fd, buf, (gsize) n, MSG_DONTWAIT, (struct sockaddr *) &from, from_len);
    }
  return NULL;
}

/* The bench's own UDP sockets (echo, client) get the biggest buffers the kernel allows
 * (net.core.rmem_max / wmem_max), so that a moment of scheduling on a busy machine does
 * not count as the path's loss; the tunnel's sockets keep whatever it gives them. */
#define UDP_BUFFER_BYTES (4 * 1024 * 1024)

static void
udp_big_buffers (int fd)
{
  int size = UDP_BUFFER_BYTES;

  setsockopt (fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  setsockopt (fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
}

static int
udp_bind_loopback (guint16 *port)
{
  struct sockaddr_in sin = loopback_address (0);
  socklen_t len = sizeof sin;
  struct timeval tv = { 0, 100 * 1000 };
  int fd = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

  if (fd < 0)
    g_error ("socket: %s", g_strerror (errno));
  if (bind (fd, (struct sockaddr *) &sin, sizeof sin) < 0
      || getsockname (fd, (struct sockaddr *) &sin, &len) < 0)
    g_error ("binding UDP on 127.0.0.1: %s", g_strerror (errno));
  setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  udp_big_buffers (fd);
  *port = ntohs (sin.sin_port);
  return fd;
}

void
bench_services_start (BenchServices *s, gboolean udp)
{
  struct epoll_event ev = { .events = EPOLLIN };
  Acceptor *sink = g_new0 (Acceptor, 1);
  Acceptor *http = g_new0 (Acceptor, 1);

  memset (s, 0, sizeof *s);
  s->udp_fd = -1;
  if (bulk_body == NULL)
    {
      bulk_body = g_malloc (BENCH_BULK_BODY);
      for (gsize i = 0; i < BENCH_BULK_BODY; i++)
        bulk_body[i] = (char) (i * 31 + 7);
    }
  s->sink_fd = bench_listen_loopback (&s->sink_port);
  s->http_fd = bench_listen_loopback (&s->http_port);
  s->echo_fd = bench_listen_loopback (&s->echo_port);
  g_unix_set_fd_nonblocking (s->echo_fd, TRUE, NULL);
  s->epoll_fd = epoll_create1 (EPOLL_CLOEXEC);
  ev.data.fd = s->echo_fd;
  epoll_ctl (s->epoll_fd, EPOLL_CTL_ADD, s->echo_fd, &ev);

  *sink = (Acceptor){ s, s->sink_fd, sink_conn_thread, "bench-sink" };
  *http = (Acceptor){ s, s->http_fd, http_conn_thread, "bench-http" };
  s->sink_thread = g_thread_new ("bench-sink-acc", accept_thread, sink);
  s->http_thread = g_thread_new ("bench-http-acc", accept_thread, http);
  s->echo_thread = g_thread_new ("bench-echo", echo_thread, s);
  if (udp)
    {
      s->udp_fd = udp_bind_loopback (&s->udp_port);
      s->udp_thread = g_thread_new ("bench-udp-echo", udp_echo_thread, s);
    }
}

void
bench_services_stop (BenchServices *s)
{
  g_atomic_int_set (&s->stop, 1);
  /* wakes the blocking accept(2) calls */
  shutdown (s->sink_fd, SHUT_RDWR);
  shutdown (s->http_fd, SHUT_RDWR);
  g_thread_join (s->sink_thread);
  g_thread_join (s->http_thread);
  g_thread_join (s->echo_thread);
  if (s->udp_thread != NULL)
    g_thread_join (s->udp_thread);
  close (s->sink_fd);
  close (s->http_fd);
  close (s->echo_fd);
  close (s->epoll_fd);
  if (s->udp_fd >= 0)
    close (s->udp_fd);
}

/* ---- 1. throughput ---- */

gpointer
bench_throughput_job (gpointer data)
{
  BenchThroughput *t = data;
  g_autofree char *buf = g_malloc (BENCH_THROUGHPUT_CHUNK);
  guint64 counted = 0;
  double t0, t1;
  int fd;

  for (gsize i = 0; i < BENCH_THROUGHPUT_CHUNK; i++)
    buf[i] = (char) (i * 31 + 7);
  fd = bench_connect_loopback (t->port, FALSE);
  if (fd < 0)
    {
      t->error = g_strdup_printf ("connect: %s", g_strerror (errno));
      return NULL;
    }
  t0 = bench_now_s ();
  while (t->sent < t->bytes && bench_now_s () - t0 < t->cap_s)
    {
      gsize len = MIN (BENCH_THROUGHPUT_CHUNK, t->bytes - t->sent);
      ssize_t n = send (fd, buf, len, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        {
          t->error = g_strdup_printf ("send: %s", g_strerror (errno));
          goto out;
        }
      t->sent += (guint64) n;
    }
  shutdown (fd, SHUT_WR);
  if (!bench_recv_all (fd, &counted, sizeof counted))
    {
      t->error
          = g_strdup_printf ("no byte count from the sink: %s", errno ? g_strerror (errno) : "EOF");
      goto out;
    }
  t1 = bench_now_s ();
  if (counted != t->sent)
    {
      t->error = g_strdup_printf ("sink got %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT " bytes",
                                  counted, t->sent);
      goto out;
    }
  t->gbps = (double) t->sent * 8 / (t1 - t0) / 1e9;
out:
  close (fd);
  return NULL;
}

/* ---- 2. time to first byte ---- */

gpointer
bench_ttfb_job (gpointer data)
{
  BenchTtfb *t = data;
  double start = bench_now_s ();

  t->ms = g_array_sized_new (FALSE, FALSE, sizeof (double), t->count);
  for (guint i = 0; i < t->count && bench_now_s () - start < t->cap_s; i++)
    {
      double t0 = bench_now_s (), ms;
      char byte = 'x';
      int fd = bench_connect_loopback (t->port, TRUE);

      if (fd < 0)
        {
          t->error = g_strdup_printf ("connect %u: %s", i, g_strerror (errno));
          return NULL;
        }
      if (!bench_send_all (fd, &byte, 1) || !bench_recv_all (fd, &byte, 1))
        {
          t->error = g_strdup_printf ("connection %u: no echo (%s)", i,
                                      errno ? g_strerror (errno) : "EOF");
          close (fd);
          return NULL;
        }
      ms = (bench_now_s () - t0) * 1000;
      g_array_append_val (t->ms, ms);
      close (fd);
    }
  return NULL;
}

gpointer
bench_burst_job (gpointer data)
{
  BenchBurst *b = data;
  g_autofree int *fds = g_new (int, b->count);
  guint n = 0;
  double t0 = bench_now_s ();

  for (; n < b->count; n++)
    if ((fds[n] = bench_connect_loopback (b->port, TRUE)) < 0 || !bench_send_all (fds[n], "x", 1))
      {
        b->error = g_strdup_printf ("burst connection %u: %s", n, g_strerror (errno));
        n += fds[n] >= 0;
        goto out;
      }
  for (guint i = 0; i < n; i++)
    {
      char byte;
      if (!bench_recv_all (fds[i], &byte, 1))
        {
          b->error = g_strdup_printf ("burst connection %u: no echo (%s)", i,
                                      errno ? g_strerror (errno) : "EOF");
          goto out;
        }
    }
  b->ms = (bench_now_s () - t0) * 1000;
out:
  for (guint i = 0; i < n; i++)
    close (fds[i]);
  return NULL;
}

/* ---- 3. HTTP keep-alive requests per second ---- */

static const char http_request[] = "GET /bench HTTP/1.1\r\n"
                                   "Host: 127.0.0.1\r\n"
                                   "User-Agent: zlt-bench\r\n"
                                   "Accept: */*\r\n"
                                   "\r\n";
static const char http_bulk_request[] = "GET /bulk HTTP/1.1\r\n"
                                        "Host: 127.0.0.1\r\n"
                                        "User-Agent: zlt-bench\r\n"
                                        "Accept: */*\r\n"
                                        "\r\n";

typedef struct
{
  int fd;
  char buf[4096];
  gsize len;
  char *scratch; /* for bodies that do not fit buf */
} HttpClient;

/* Reads and drops @len bytes, never more (the next response must stay unread). */
static gboolean
http_skip (HttpClient *c, gsize len)
{
  if (c->scratch == NULL)
    c->scratch = g_malloc (BENCH_THROUGHPUT_CHUNK);
  while (len > 0)
    {
      ssize_t n = recv (c->fd, c->scratch, MIN (len, BENCH_THROUGHPUT_CHUNK), 0);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return FALSE;
      len -= (gsize) n;
    }
  return TRUE;
}

/* One request, one full response (head plus Content-Length bytes of body). */
static gboolean
http_roundtrip (HttpClient *c, gboolean bulk)
{
  gsize head_len = 0, body_len = 0;

  if (bulk ? !bench_send_all (c->fd, http_bulk_request, sizeof http_bulk_request - 1)
           : !bench_send_all (c->fd, http_request, sizeof http_request - 1))
    return FALSE;
  while (TRUE)
    {
      ssize_t n;

      if (head_len == 0)
        {
          const char *end = memmem (c->buf, c->len, "\r\n\r\n", 4);
          if (end != NULL)
            {
              const char *cl;
              head_len = (gsize) (end - c->buf) + 4;
              cl = g_strstr_len (c->buf, (gssize) head_len, "Content-Length:");
              if (cl == NULL)
                return FALSE;
              body_len = (gsize) g_ascii_strtoull (cl + strlen ("Content-Length:"), NULL, 10);
            }
        }
      if (head_len > 0 && c->len >= head_len + body_len)
        {
          gsize used = head_len + body_len;
          memmove (c->buf, c->buf + used, c->len - used);
          c->len -= used;
          return TRUE;
        }
      if (head_len > 0 && head_len + body_len > sizeof c->buf)
        {
          /* a body bigger than the buffer: what is buffered is all of this response
           * (one request at a time), the rest is read and dropped */
          gsize have = c->len - head_len;
          c->len = 0;
          return http_skip (c, body_len - have);
        }
      if (c->len == sizeof c->buf)
        return FALSE;
      n = recv (c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return FALSE;
      c->len += (gsize) n;
    }
}

typedef struct
{
  BenchHttp *http;
  guint done;
  gboolean failed;
} HttpWorker;

static gpointer
http_worker_thread (gpointer data)
{
  HttpWorker *w = data;
  BenchHttp *h = w->http;
  HttpClient c = { 0 };

  /* connect and warm up (the tunnel sets the connection up) before the clock runs */
  c.fd = bench_connect_loopback (h->port, TRUE);
  if (c.fd < 0 || !http_roundtrip (&c, h->bulk))
    w->failed = TRUE;
  g_mutex_lock (&h->lock);
  h->ready++;
  g_cond_broadcast (&h->cond);
  while (!h->go)
    g_cond_wait (&h->cond, &h->lock);
  g_mutex_unlock (&h->lock);

  while (!w->failed && g_atomic_int_add (&h->remaining, -1) > 0)
    {
      if (!http_roundtrip (&c, h->bulk))
        {
          w->failed = TRUE;
          break;
        }
      w->done++;
      /* the clock is read once every 64 requests (every one for bulk bodies) */
      if ((h->bulk || w->done % 64 == 0) && bench_now_s () > h->deadline)
        break;
    }
  if (c.fd >= 0)
    close (c.fd);
  g_free (c.scratch);
  return NULL;
}

gpointer
bench_http_job (gpointer data)
{
  BenchHttp *h = data;
  g_autofree HttpWorker *workers = g_new0 (HttpWorker, h->connections);
  g_autofree GThread **threads = g_new0 (GThread *, h->connections);
  double t0;

  g_mutex_init (&h->lock);
  g_cond_init (&h->cond);
  h->remaining = (gint) h->requests;
  for (guint i = 0; i < h->connections; i++)
    {
      workers[i].http = h;
      threads[i] = g_thread_new ("bench-http-cli", http_worker_thread, &workers[i]);
    }
  g_mutex_lock (&h->lock);
  while (h->ready < h->connections)
    g_cond_wait (&h->cond, &h->lock);
  t0 = bench_now_s ();
  h->deadline = t0 + h->cap_s;
  h->go = TRUE;
  g_cond_broadcast (&h->cond);
  g_mutex_unlock (&h->lock);
  for (guint i = 0; i < h->connections; i++)
    {
      g_thread_join (threads[i]);
      h->completed += workers[i].done;
      if (workers[i].failed && h->error == NULL)
        h->error
            = g_strdup_printf ("HTTP connection %u failed after %u requests", i, workers[i].done);
    }
  h->rps = h->completed / (bench_now_s () - t0);
  g_mutex_clear (&h->lock);
  g_cond_clear (&h->cond);
  return NULL;
}

/* ---- 4. idle connections ---- */

gpointer
bench_idle_open_job (gpointer data)
{
  BenchIdle *t = data;
  double start = bench_now_s ();
  gint64 rss_start = bench_read_rss_kib ();

  while (t->fds->len < t->count)
    {
      guint first = t->fds->len;
      guint batch = MIN (BENCH_IDLE_BATCH, t->count - first);

      /* out of time or memory: measure what is open */
      if (bench_now_s () - start > t->cap_s)
        {
          bench_note ("idle: only %u connections in %.0f s", first, t->cap_s);
          return NULL;
        }
      if (bench_read_rss_kib () - rss_start > BENCH_IDLE_RSS_GUARD_KIB)
        {
          bench_note ("idle: stopped at %u connections, RSS grew by more than %d MiB", first,
                      BENCH_IDLE_RSS_GUARD_KIB / 1024);
          return NULL;
        }
      for (guint i = 0; i < batch; i++)
        {
          int fd = bench_connect_loopback (t->port, TRUE);
          if (fd < 0)
            {
              t->error = g_strdup_printf ("connect %u: %s", t->fds->len, g_strerror (errno));
              return NULL;
            }
          g_array_append_val (t->fds, fd);
          if (!bench_send_all (fd, "x", 1))
            {
              t->error = g_strdup_printf ("send %u: %s", t->fds->len, g_strerror (errno));
              return NULL;
            }
        }
      for (guint i = first; i < t->fds->len; i++)
        {
          char byte;
          if (!bench_recv_all (g_array_index (t->fds, int, i), &byte, 1))
            {
              t->error = g_strdup_printf ("connection %u: no echo (%s)", i,
                                          errno ? g_strerror (errno) : "EOF");
              return NULL;
            }
        }
    }
  return NULL;
}

gpointer
bench_idle_check_job (gpointer data)
{
  BenchIdle *t = data;
  GArray *fds = t->fds;

  t->lost = 0;
  for (guint i = 0; i < fds->len; i++)
    if (!bench_send_all (g_array_index (fds, int, i), "y", 1))
      g_array_index (fds, int, i) = -g_array_index (fds, int, i) - 1;
  for (guint i = 0; i < fds->len; i++)
    {
      int fd = g_array_index (fds, int, i);
      char byte;

      if (fd < 0)
        {
          g_array_index (fds, int, i) = -fd - 1;
          t->lost++;
        }
      else if (!bench_recv_all (fd, &byte, 1))
        t->lost++;
    }
  return NULL;
}

/* ---- 5. UDP: the highest rate with less than max_loss lost ---- */

#define UDP_MAX_MBPS 100000.0
#define UDP_MIN_MBPS 0.5
#define UDP_DRAIN_S 0.3
#define UDP_QUIET_MS 200
#define UDP_QUIET_MAX_S 5

typedef struct
{
  int fd;
  gint stop;
  gint step;     /* datagrams of this step are counted */
  gint received; /* of the current step */
  gint target;   /* the sender waits for this many */
  gint64 base;   /* monotonic µs at the start */
  gint last_ms;  /* when the last datagram of any step came, ms after base */
  GMutex lock;
  GCond cond;
} UdpRx;

/* Every datagram starts with its step (u32) and sequence number (u32). */
static gpointer
udp_rx_thread (gpointer data)
{
  UdpRx *rx = data;
  char buf[2048];

  while (!g_atomic_int_get (&rx->stop))
    {
      ssize_t n = recv (rx->fd, buf, sizeof buf, 0);
      guint32 step;

      /* timeouts (100 ms) let the loop see stop; ECONNREFUSED reports an earlier
       * datagram nobody took, and the next may be taken */
      if (n < (ssize_t) sizeof step)
        continue;
      g_atomic_int_set (&rx->last_ms, (gint) ((g_get_monotonic_time () - rx->base) / 1000));
      memcpy (&step, buf, sizeof step);
      if ((gint) step != g_atomic_int_get (&rx->step))
        continue;
      if (g_atomic_int_add (&rx->received, 1) + 1 >= g_atomic_int_get (&rx->target))
        {
          g_mutex_lock (&rx->lock);
          g_cond_broadcast (&rx->cond);
          g_mutex_unlock (&rx->lock);
        }
    }
  return NULL;
}

/* Waits until @rx got its target or @until (monotonic µs). */
static void
udp_rx_wait (UdpRx *rx, gint64 until)
{
  g_mutex_lock (&rx->lock);
  while (g_atomic_int_get (&rx->received) < g_atomic_int_get (&rx->target)
         && g_get_monotonic_time () < until)
    g_cond_wait_until (&rx->cond, &rx->lock, until);
  g_mutex_unlock (&rx->lock);
}

/* Waits until no datagram came for UDP_QUIET_MS (at most UDP_QUIET_MAX_S): an overloaded
 * path may still hold a backlog of the last step, which the next must not queue behind.
 * Silence has no event to wait for: this sleeps, bounded. */
static void
udp_rx_quiet (UdpRx *rx)
{
  gint64 until = g_get_monotonic_time () + UDP_QUIET_MAX_S * G_USEC_PER_SEC;

  while (g_get_monotonic_time () < until)
    {
      gint64 quiet_ms
          = (g_get_monotonic_time () - rx->base) / 1000 - g_atomic_int_get (&rx->last_ms);

      if (quiet_ms >= UDP_QUIET_MS)
        return;
      g_usleep ((gulong) (UDP_QUIET_MS - quiet_ms) * 1000);
    }
}

static gboolean
udp_send (int fd, char *payload, guint32 step, guint32 seq)
{
  memcpy (payload, &step, sizeof step);
  memcpy (payload + sizeof step, &seq, sizeof seq);
  for (int tries = 0; tries < 3; tries++)
    {
      if (send (fd, payload, BENCH_UDP_PAYLOAD, 0) == BENCH_UDP_PAYLOAD)
        return TRUE;
      /* ECONNREFUSED belongs to an earlier datagram; ENOBUFS is a full queue */
      if (errno != EINTR && errno != ECONNREFUSED && errno != ENOBUFS && errno != EAGAIN)
        return FALSE;
    }
  return TRUE; /* offered; the kernel dropped it: that is loss */
}

/* Offers @mbps for @step_s as step @step; returns the loss (0..1), or -1 on error, and
 * in @offered what the sender managed to offer (Mbit/s). */
static double
udp_step (BenchUdp *u, UdpRx *rx, char *payload, gint step, double mbps, double *offered)
{
  double pps = mbps * 1e6 / (BENCH_UDP_PAYLOAD * 8);
  guint32 sent = 0;
  double t0, elapsed;

  g_atomic_int_set (&rx->target, G_MAXINT);
  g_atomic_int_set (&rx->received, 0);
  g_atomic_int_set (&rx->step, step);
  t0 = bench_now_s ();
  while ((elapsed = bench_now_s () - t0) < u->step_s)
    {
      guint32 due = (guint32) (pps * elapsed) + 1;
      double ahead;

      while (sent < due)
        if (!udp_send (rx->fd, payload, (guint32) step, sent++))
          {
            u->error = g_strdup_printf ("UDP send: %s", g_strerror (errno));
            return -1;
          }
      ahead = sent / pps - (bench_now_s () - t0);
      if (ahead > 0)
        g_usleep ((gulong) MIN (ahead * 1e6, 1000));
    }
  *offered = (double) sent * BENCH_UDP_PAYLOAD * 8 / elapsed / 1e6;
  g_atomic_int_set (&rx->target, (gint) sent);
  udp_rx_wait (rx, g_get_monotonic_time () + (gint64) (UDP_DRAIN_S * G_USEC_PER_SEC));
  g_atomic_int_set (&rx->step, -1);
  udp_rx_quiet (rx);
  return 1.0 - (double) MIN ((guint32) g_atomic_int_get (&rx->received), sent) / sent;
}

gpointer
bench_udp_job (gpointer data)
{
  BenchUdp *u = data;
  struct sockaddr_in sin = loopback_address (u->port);
  struct timeval tv = { 0, 100 * 1000 };
  g_autofree char *payload = g_malloc0 (BENCH_UDP_PAYLOAD);
  UdpRx rx = { 0 };
  GThread *thread;
  double lo = 0, hi = 0, mbps = u->start_mbps;
  gboolean echoed = FALSE;

  u->steps = g_string_new (NULL);
  u->best_mbps = 0;
  rx.fd = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (rx.fd < 0 || connect (rx.fd, (struct sockaddr *) &sin, sizeof sin) < 0)
    {
      u->error = g_strdup_printf ("UDP socket: %s", g_strerror (errno));
      if (rx.fd >= 0)
        close (rx.fd);
      return NULL;
    }
  setsockopt (rx.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  udp_big_buffers (rx.fd);
  g_mutex_init (&rx.lock);
  g_cond_init (&rx.cond);
  rx.step = 0;
  rx.base = g_get_monotonic_time ();
  thread = g_thread_new ("bench-udp-rx", udp_rx_thread, &rx);

  /* step 0 opens the flow (a tunnel sets it up on the first datagram) */
  for (guint32 i = 0; i < 10 && !echoed; i++)
    {
      g_atomic_int_set (&rx.target, 1);
      if (!udp_send (rx.fd, payload, 0, i))
        break;
      udp_rx_wait (&rx, g_get_monotonic_time () + G_USEC_PER_SEC / 2);
      echoed = g_atomic_int_get (&rx.received) > 0;
    }
  if (!echoed)
    {
      u->error = g_strdup ("no UDP echo in 5 s");
      goto out;
    }

  for (guint step = 1; step <= u->max_steps; step++)
    {
      double offered = 0;
      double loss = udp_step (u, &rx, payload, (gint) step, mbps, &offered);
      /* a sender that could not keep up offered less than asked */
      gboolean limited = offered < 0.9 * mbps;

      if (loss < 0)
        break;
      g_string_append_printf (u->steps, "%s%.0f:%.2f%%%s", u->steps->len ? " " : "", mbps,
                              loss * 100, limited ? "(sender-limited)" : "");
      bench_note ("udp port %u: %.0f Mbit/s offered, %.2f %% lost%s", u->port, mbps, loss * 100,
                  limited ? " (sender could not keep up)" : "");
      /* a sender that fell behind offered less than asked: what it did offer counts,
       * and it cannot offer more */
      if (limited && loss < u->max_loss)
        {
          u->sender_limited = TRUE;
          lo = MAX (lo, offered);
          break;
        }
      if (loss < u->max_loss)
        lo = mbps;
      else
        hi = limited ? MAX (offered, lo) : mbps;
      if (hi == 0)
        mbps *= 2;
      else if (lo == 0)
        mbps /= 2;
      else if (hi / lo < 1.1)
        break;
      else
        mbps = sqrt (lo * hi);
      if (mbps > UDP_MAX_MBPS || mbps < UDP_MIN_MBPS)
        break;
    }
  u->best_mbps = lo;
out:
  g_atomic_int_set (&rx.stop, 1);
  g_thread_join (thread);
  g_mutex_clear (&rx.lock);
  g_cond_clear (&rx.cond);
  close (rx.fd);
  return NULL;
}
