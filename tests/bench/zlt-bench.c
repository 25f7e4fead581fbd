/* zlt-bench.c: the project's benchmark. Measures a direct loopback connection, the
 * tunnel and the tunnel over TLS side by side in one run: one-stream throughput, time
 * to the first echoed byte of a new connection, HTTP keep-alive requests per second
 * and resident memory per idle connection (see "Performance targets" in DESIGN.md).
 *
 * The server and the agent run on the main thread's main context; every load
 * generator and every local service (sink, echo, HTTP responder) runs in threads of
 * its own with blocking or epoll sockets, so the main loop only runs the tunnel.
 * Everything talks to 127.0.0.1; every loop is bounded in count and in time. */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <malloc.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib-unix.h>
#include <json-glib/json-glib.h>

#include "zlt-test-util.h"

#define BENCH_PORT_RANGE "30800-30899"
#define SOCKET_TIMEOUT_S 10
#define THROUGHPUT_CHUNK (256 * 1024)
/* below the listen backlog of 10 that GSocketListener uses by default: bigger bursts
 * measure SYN retransmission timers instead of memory (see the burst metric) */
#define IDLE_BATCH 8
/* the idle metric stops opening connections past this much RSS growth */
#define IDLE_RSS_GUARD_KIB (1024 * 1024)
#define FDS_PER_TUNNEL_CONN 6 /* client, public, data (2), local, echo */

/* ---- options ---- */

static gboolean opt_quick;
static gboolean opt_json;
static gboolean opt_no_tls;
static gboolean opt_verbose;
static gint opt_throughput_mib = 512;
static gint opt_throughput_cap_s = 20;
static gint opt_ttfb_count = 1000;
static gint opt_ttfb_cap_s = 30;
static gint opt_http_requests = 50000;
static gint opt_http_connections = 4;
static gdouble opt_http_cap_s = 2.0;
static gint opt_idle = 2000;
static gint opt_idle_cap_s = 60;
static gint opt_burst = 64;
static gint opt_runs = 3;
static char *opt_only;
static char *opt_modes;

static GOptionEntry entries[] = {
  { "quick", 'q', 0, G_OPTION_ARG_NONE, &opt_quick, "Small sizes, one run: a smoke run", NULL },
  { "json", 0, 0, G_OPTION_ARG_NONE, &opt_json, "Print a JSON object instead of a table", NULL },
  { "only", 0, 0, G_OPTION_ARG_STRING, &opt_only, "Only these metrics (comma-separated)",
    "throughput|ttfb|http|idle" },
  { "modes", 0, 0, G_OPTION_ARG_STRING, &opt_modes, "Only these paths (comma-separated)",
    "direct|tunnel|tls" },
  { "no-tls", 0, 0, G_OPTION_ARG_NONE, &opt_no_tls, "Skip the TLS tunnel", NULL },
  { "throughput-mib", 0, 0, G_OPTION_ARG_INT, &opt_throughput_mib,
    "MiB written per throughput run (default 512, each run capped at 20 s)", "N" },
  { "ttfb-count", 0, 0, G_OPTION_ARG_INT, &opt_ttfb_count,
    "Sequential connections for time to first byte (default 1000, capped at 30 s)", "N" },
  { "http-requests", 0, 0, G_OPTION_ARG_INT, &opt_http_requests,
    "Requests per HTTP run (default 50000, capped at 2 s)", "N" },
  { "http-connections", 0, 0, G_OPTION_ARG_INT, &opt_http_connections,
    "Keep-alive connections of the multi-connection HTTP row (default 4)", "N" },
  { "idle", 0, 0, G_OPTION_ARG_INT, &opt_idle,
    "Concurrent idle connections for the memory metric (default 2000, at most 10000)", "N" },
  { "burst", 0, 0, G_OPTION_ARG_INT, &opt_burst,
    "Connections opened at once for the burst metric (default 64, 0 skips it)", "N" },
  { "runs", 0, 0, G_OPTION_ARG_INT, &opt_runs, "Runs per metric, the median is reported", "N" },
  { "verbose", 'v', 0, G_OPTION_ARG_NONE, &opt_verbose, "Print each run on stderr", NULL },
  { NULL }
};

static gint64 start_time;

static void note (const char *format, ...) G_GNUC_PRINTF (1, 2);

static void
note (const char *format, ...)
{
  va_list args;

  if (!opt_verbose)
    return;
  if (start_time == 0)
    start_time = g_get_monotonic_time ();
  fprintf (stderr, "[%7.3f] ", (double) (g_get_monotonic_time () - start_time) / G_USEC_PER_SEC);
  va_start (args, format);
  vfprintf (stderr, format, args);
  va_end (args);
  fputc ('\n', stderr);
}

/* ---- small helpers ---- */

static double
now_s (void)
{
  return (double) g_get_monotonic_time () / G_USEC_PER_SEC;
}

static int
cmp_double (gconstpointer a, gconstpointer b)
{
  double x = *(const double *) a, y = *(const double *) b;

  return x < y ? -1 : x > y ? 1 : 0;
}

/* Nearest-rank percentile of @n values (sorted in place); NAN when empty. */
static double
percentile (double *values, guint n, double p)
{
  guint rank;

  if (n == 0)
    return NAN;
  qsort (values, n, sizeof *values, cmp_double);
  rank = (guint) ceil (p / 100.0 * n);
  return values[CLAMP (rank, 1, n) - 1];
}

static double
median (GArray *values)
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

static gint64
read_rss_kib (void)
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

static char *
read_loadavg (void)
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

static char *
read_cpu_model (void)
{
  g_autofree char *contents = NULL;
  const char *line, *colon, *end;

  if (!g_file_get_contents ("/proc/cpuinfo", &contents, NULL, NULL)
      || (line = strstr (contents, "model name")) == NULL || (colon = strchr (line, ':')) == NULL)
    return g_strdup ("unknown CPU");
  end = strchr (colon, '\n');
  return g_strstrip (g_strndup (colon + 1, end ? (gsize) (end - colon - 1) : strlen (colon + 1)));
}

/* ---- sockets (plain POSIX: the load generators want no overhead of their own) ---- */

static void
set_timeouts (int fd, int seconds)
{
  struct timeval tv = { seconds, 0 };

  setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  /* also bounds a blocking connect(2) */
  setsockopt (fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

static void
set_nodelay (int fd)
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

static int
listen_loopback (guint16 *port)
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

/* A blocking client socket with bounded waits; -1 with errno on failure. */
static int
connect_loopback (guint16 port, gboolean nodelay)
{
  struct sockaddr_in sin = loopback_address (port);
  int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

  if (fd < 0)
    return -1;
  set_timeouts (fd, SOCKET_TIMEOUT_S);
  if (nodelay)
    set_nodelay (fd);
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
send_all (int fd, const void *data, gsize len)
{
  const char *p = data;

  while (len > 0)
    {
      ssize_t n = send (fd, p, len, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return FALSE;
      p += n;
      len -= (gsize) n;
    }
  return TRUE;
}

static gboolean
recv_all (int fd, void *data, gsize len)
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

/* ---- local services, each in threads of its own ---- */

typedef struct
{
  int sink_fd, echo_fd, http_fd, epoll_fd;
  guint16 sink_port, echo_port, http_port;
  GThread *sink_thread, *echo_thread, *http_thread;
  gint stop;
} Services;

/* sink: reads to EOF as fast as it can, then answers with the byte count (8 bytes) */
static gpointer
sink_conn_thread (gpointer data)
{
  int fd = GPOINTER_TO_INT (data);
  g_autofree char *buf = g_malloc (THROUGHPUT_CHUNK);
  guint64 total = 0;
  ssize_t n;

  /* a stalled tunnel must not park this thread for ever */
  set_timeouts (fd, SOCKET_TIMEOUT_S * 3);
  while ((n = recv (fd, buf, THROUGHPUT_CHUNK, 0)) > 0 || (n < 0 && errno == EINTR))
    if (n > 0)
      total += (guint64) n;
  if (n == 0)
    send_all (fd, &total, sizeof total);
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

static gpointer
http_conn_thread (gpointer data)
{
  int fd = GPOINTER_TO_INT (data);
  char buf[16384];
  gsize len = 0;

  set_nodelay (fd);
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
          off = (gsize) (end - buf) + 4;
          if (!send_all (fd, http_response, sizeof http_response - 1))
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
  Services *services;
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

/* echo: one epoll thread for any number of connections (no memory per connection, so
 * thousands of idle ones cost nothing here) */
static gpointer
echo_thread (gpointer data)
{
  Services *s = data;
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
                  set_nodelay (conn);
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
                  close (fd);
                  break;
                }
              if (r < 0 && (errno == EAGAIN || errno == EINTR))
                break;
              close (fd); /* EOF or error; close also leaves the epoll set */
              break;
            }
        }
    }
  return NULL;
}

static void
services_start (Services *s)
{
  struct epoll_event ev = { .events = EPOLLIN };
  Acceptor *sink = g_new0 (Acceptor, 1);
  Acceptor *http = g_new0 (Acceptor, 1);

  memset (s, 0, sizeof *s);
  s->sink_fd = listen_loopback (&s->sink_port);
  s->http_fd = listen_loopback (&s->http_port);
  s->echo_fd = listen_loopback (&s->echo_port);
  g_unix_set_fd_nonblocking (s->echo_fd, TRUE, NULL);
  s->epoll_fd = epoll_create1 (EPOLL_CLOEXEC);
  ev.data.fd = s->echo_fd;
  epoll_ctl (s->epoll_fd, EPOLL_CTL_ADD, s->echo_fd, &ev);

  *sink = (Acceptor){ s, s->sink_fd, sink_conn_thread, "bench-sink" };
  *http = (Acceptor){ s, s->http_fd, http_conn_thread, "bench-http" };
  s->sink_thread = g_thread_new ("bench-sink-acc", accept_thread, sink);
  s->http_thread = g_thread_new ("bench-http-acc", accept_thread, http);
  s->echo_thread = g_thread_new ("bench-echo", echo_thread, s);
}

static void
services_stop (Services *s)
{
  g_atomic_int_set (&s->stop, 1);
  /* wakes the blocking accept(2) calls */
  shutdown (s->sink_fd, SHUT_RDWR);
  shutdown (s->http_fd, SHUT_RDWR);
  g_thread_join (s->sink_thread);
  g_thread_join (s->http_thread);
  g_thread_join (s->echo_thread);
  close (s->sink_fd);
  close (s->http_fd);
  close (s->echo_fd);
  close (s->epoll_fd);
}

/* ---- running client work in a thread while the main loop runs the tunnel ---- */

typedef struct
{
  GThreadFunc func;
  gpointer data;
  gint done;
} Job;

static gpointer
job_thread (gpointer data)
{
  Job *job = data;

  job->func (job->data);
  g_atomic_int_set (&job->done, 1);
  g_main_context_wakeup (NULL);
  return NULL;
}

/* Every job bounds itself (counts, deadlines, socket timeouts), so this returns. */
static void
run_job (const char *name, GThreadFunc func, gpointer data)
{
  Job job = { func, data, 0 };
  GThread *thread = g_thread_new (name, job_thread, &job);

  while (!g_atomic_int_get (&job.done))
    g_main_context_iteration (NULL, TRUE);
  g_thread_join (thread);
}

/* Spins the main context until @cond holds or @timeout_ms passes. */
typedef gboolean (*CondFunc) (gpointer data);

static gboolean
spin_until (CondFunc cond, gpointer data, guint timeout_ms)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) timeout_ms * 1000;
  GSource *tick = g_timeout_source_new (10);

  g_source_set_callback (tick, zlt_test_tick, NULL, NULL);
  g_source_attach (tick, NULL);
  while (!(cond != NULL && cond (data)) && g_get_monotonic_time () < deadline)
    g_main_context_iteration (NULL, TRUE);
  g_source_destroy (tick);
  g_source_unref (tick);
  return cond != NULL && cond (data);
}

/* ---- 1. throughput ---- */

typedef struct
{
  guint16 port;
  guint64 bytes;
  double cap_s;
  /* results */
  double gbps;
  guint64 sent;
  char *error;
} Throughput;

static gpointer
throughput_job (gpointer data)
{
  Throughput *t = data;
  g_autofree char *buf = g_malloc (THROUGHPUT_CHUNK);
  guint64 counted = 0;
  double t0, t1;
  int fd;

  for (gsize i = 0; i < THROUGHPUT_CHUNK; i++)
    buf[i] = (char) (i * 31 + 7);
  fd = connect_loopback (t->port, FALSE);
  if (fd < 0)
    {
      t->error = g_strdup_printf ("connect: %s", g_strerror (errno));
      return NULL;
    }
  t0 = now_s ();
  while (t->sent < t->bytes && now_s () - t0 < t->cap_s)
    {
      gsize len = MIN (THROUGHPUT_CHUNK, t->bytes - t->sent);
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
  if (!recv_all (fd, &counted, sizeof counted))
    {
      t->error
          = g_strdup_printf ("no byte count from the sink: %s", errno ? g_strerror (errno) : "EOF");
      goto out;
    }
  t1 = now_s ();
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

typedef struct
{
  guint16 port;
  guint count;
  double cap_s;
  /* results */
  GArray *ms;
  char *error;
} Ttfb;

static gpointer
ttfb_job (gpointer data)
{
  Ttfb *t = data;
  double start = now_s ();

  t->ms = g_array_sized_new (FALSE, FALSE, sizeof (double), t->count);
  for (guint i = 0; i < t->count && now_s () - start < t->cap_s; i++)
    {
      double t0 = now_s (), ms;
      char byte = 'x';
      int fd = connect_loopback (t->port, TRUE);

      if (fd < 0)
        {
          t->error = g_strdup_printf ("connect %u: %s", i, g_strerror (errno));
          return NULL;
        }
      if (!send_all (fd, &byte, 1) || !recv_all (fd, &byte, 1))
        {
          t->error = g_strdup_printf ("connection %u: no echo (%s)", i,
                                      errno ? g_strerror (errno) : "EOF");
          close (fd);
          return NULL;
        }
      ms = (now_s () - t0) * 1000;
      g_array_append_val (t->ms, ms);
      close (fd);
    }
  return NULL;
}

/* Opens @count connections at once, sends a byte on each, waits for every echo. */
typedef struct
{
  guint16 port;
  guint count;
  /* results */
  double ms;
  char *error;
} Burst;

static gpointer
burst_job (gpointer data)
{
  Burst *b = data;
  g_autofree int *fds = g_new (int, b->count);
  guint n = 0;
  double t0 = now_s ();

  for (; n < b->count; n++)
    if ((fds[n] = connect_loopback (b->port, TRUE)) < 0 || !send_all (fds[n], "x", 1))
      {
        b->error = g_strdup_printf ("burst connection %u: %s", n, g_strerror (errno));
        n += fds[n] >= 0;
        goto out;
      }
  for (guint i = 0; i < n; i++)
    {
      char byte;
      if (!recv_all (fds[i], &byte, 1))
        {
          b->error = g_strdup_printf ("burst connection %u: no echo (%s)", i,
                                      errno ? g_strerror (errno) : "EOF");
          goto out;
        }
    }
  b->ms = (now_s () - t0) * 1000;
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

typedef struct
{
  int fd;
  char buf[4096];
  gsize len;
} HttpClient;

/* One request, one full response (head plus Content-Length bytes of body). */
static gboolean
http_roundtrip (HttpClient *c)
{
  gsize head_len = 0, body_len = 0;

  if (!send_all (c->fd, http_request, sizeof http_request - 1))
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

typedef struct Http Http;

typedef struct
{
  Http *http;
  guint done;
  gboolean failed;
} HttpWorker;

struct Http
{
  guint16 port;
  guint connections;
  guint requests;
  double cap_s;
  /* shared */
  GMutex lock;
  GCond cond;
  guint ready;
  gboolean go;
  gint remaining;
  double deadline;
  /* results */
  double rps;
  guint completed;
  char *error;
};

static gpointer
http_worker_thread (gpointer data)
{
  HttpWorker *w = data;
  Http *h = w->http;
  HttpClient c = { 0 };

  /* connect and warm up (the tunnel sets the connection up) before the clock runs */
  c.fd = connect_loopback (h->port, TRUE);
  if (c.fd < 0 || !http_roundtrip (&c))
    w->failed = TRUE;
  g_mutex_lock (&h->lock);
  h->ready++;
  g_cond_broadcast (&h->cond);
  while (!h->go)
    g_cond_wait (&h->cond, &h->lock);
  g_mutex_unlock (&h->lock);

  while (!w->failed && g_atomic_int_add (&h->remaining, -1) > 0)
    {
      if (!http_roundtrip (&c))
        {
          w->failed = TRUE;
          break;
        }
      w->done++;
      /* the clock is read once every 64 requests */
      if (w->done % 64 == 0 && now_s () > h->deadline)
        break;
    }
  if (c.fd >= 0)
    close (c.fd);
  return NULL;
}

static gpointer
http_job (gpointer data)
{
  Http *h = data;
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
  t0 = now_s ();
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
  h->rps = h->completed / (now_s () - t0);
  g_mutex_clear (&h->lock);
  g_cond_clear (&h->cond);
  return NULL;
}

/* ---- 4. idle connections ---- */

typedef struct
{
  guint16 port;
  guint count;
  double cap_s;
  /* results */
  GArray *fds;
  char *error;
} Idle;

/* Opens @count connections, in batches, each exchanging one byte, and keeps them. */
static gpointer
idle_open_job (gpointer data)
{
  Idle *t = data;
  double start = now_s ();
  gint64 rss_start = read_rss_kib ();

  while (t->fds->len < t->count)
    {
      guint first = t->fds->len;
      guint batch = MIN (IDLE_BATCH, t->count - first);

      /* out of time or memory: measure what is open */
      if (now_s () - start > t->cap_s)
        {
          note ("idle: only %u connections in %.0f s", first, t->cap_s);
          return NULL;
        }
      if (read_rss_kib () - rss_start > IDLE_RSS_GUARD_KIB)
        {
          note ("idle: stopped at %u connections, RSS grew by more than %d MiB", first,
                IDLE_RSS_GUARD_KIB / 1024);
          return NULL;
        }
      for (guint i = 0; i < batch; i++)
        {
          int fd = connect_loopback (t->port, TRUE);
          if (fd < 0)
            {
              t->error = g_strdup_printf ("connect %u: %s", t->fds->len, g_strerror (errno));
              return NULL;
            }
          g_array_append_val (t->fds, fd);
          if (!send_all (fd, "x", 1))
            {
              t->error = g_strdup_printf ("send %u: %s", t->fds->len, g_strerror (errno));
              return NULL;
            }
        }
      for (guint i = first; i < t->fds->len; i++)
        {
          char byte;
          if (!recv_all (g_array_index (t->fds, int, i), &byte, 1))
            {
              t->error = g_strdup_printf ("connection %u: no echo (%s)", i,
                                          errno ? g_strerror (errno) : "EOF");
              return NULL;
            }
        }
    }
  return NULL;
}

/* ---- the paths under test ---- */

typedef enum
{
  MODE_DIRECT,
  MODE_TUNNEL,
  MODE_TLS,
  N_MODES
} Mode;

static const char *const mode_names[N_MODES] = { "direct", "tunnel", "tls" };

typedef struct
{
  Mode mode;
  ZltTestHarness h;
  gboolean up;
  guint16 sink_port, echo_port, http_port;
} Path;

static void
path_setup (Path *p, Mode mode, Services *s)
{
  memset (p, 0, sizeof *p);
  p->mode = mode;
  if (mode == MODE_DIRECT)
    {
      p->sink_port = s->sink_port;
      p->echo_port = s->echo_port;
      p->http_port = s->http_port;
      return;
    }
  zlt_test_harness_init (&p->h, BENCH_PORT_RANGE);
  /* the harness's 1 s heartbeats are for tests; keep them out of the measurements */
  g_key_file_set_integer (p->h.server_keyfile, "server", "heartbeat-interval", 15);
  g_key_file_set_integer (p->h.server_keyfile, "server", "heartbeat-timeout", 60);
  g_key_file_set_integer (p->h.agent_keyfile, "agent", "heartbeat-interval", 15);
  g_key_file_set_integer (p->h.agent_keyfile, "agent", "heartbeat-timeout", 60);
  if (mode == MODE_TLS)
    {
      g_autofree char *cert = NULL, *key = NULL, *pin = NULL;
      g_autoptr (GTlsCertificate) certificate = NULL;
      g_autoptr (GError) error = NULL;

      if (!zlt_test_make_certificate (p->h.tmpdir, &cert, &key))
        g_error ("could not make a certificate with certtool");
      certificate = g_tls_certificate_new_from_file (cert, &error);
      g_assert_no_error (error);
      pin = zlt_tls_certificate_fingerprint (certificate);
      g_key_file_set_string (p->h.server_keyfile, "server", "tls-certificate", cert);
      g_key_file_set_string (p->h.server_keyfile, "server", "tls-key", key);
      g_key_file_set_string (p->h.agent_keyfile, "agent", "tls-pinned-sha256", pin);
    }
  zlt_test_harness_start_server (&p->h);
  zlt_test_harness_add_service (&p->h, "sink", s->sink_port, 0);
  zlt_test_harness_add_service (&p->h, "echo", s->echo_port, 0);
  zlt_test_harness_add_service (&p->h, "http", s->http_port, 0);
  zlt_test_harness_start_agent (&p->h);
  p->sink_port = zlt_test_harness_wait_registered (&p->h, "sink");
  p->echo_port = zlt_test_harness_wait_registered (&p->h, "echo");
  p->http_port = zlt_test_harness_wait_registered (&p->h, "http");
  p->up = TRUE;
}

static gboolean
path_quiet (gpointer data)
{
  Path *p = data;

  return !p->up
         || (zlt_server_get_n_relays (p->h.server) == 0 && zlt_agent_get_n_relays (p->h.agent) == 0
             && zlt_server_get_n_pending (p->h.server) == 0);
}

/* Lets the tunnel finish tearing down what the last run closed. */
static void
path_settle (Path *p)
{
  if (!spin_until (path_quiet, p, 10000))
    note ("%s: relays still open after 10 s (server %u, agent %u)", mode_names[p->mode],
          zlt_server_get_n_relays (p->h.server), zlt_agent_get_n_relays (p->h.agent));
}

static void
path_clear (Path *p)
{
  if (p->up)
    zlt_test_harness_clear (&p->h);
  p->up = FALSE;
}

/* ---- results ---- */

typedef struct
{
  double throughput_gbps;
  double ttfb_p50_ms, ttfb_p99_ms;
  guint ttfb_n;
  double burst_ms; /* opening opt_burst connections at once, until the last echo */
  double http_rps_1, http_rps_n;
  double idle_kib_per_conn;     /* RSS growth per connection, minus direct for tunnels */
  double idle_raw_kib_per_conn; /* the same without subtracting direct */
  gint64 idle_rss_kib;          /* process RSS with the path up and no connections */
  guint idle_n;
  GArray *throughput_runs, *http_runs_1, *http_runs_n;
  GPtrArray *errors;
} Result;

static void
result_init (Result *r)
{
  memset (r, 0, sizeof *r);
  r->throughput_gbps = r->ttfb_p50_ms = r->ttfb_p99_ms = r->burst_ms = NAN;
  r->http_rps_1 = r->http_rps_n = NAN;
  r->idle_kib_per_conn = r->idle_raw_kib_per_conn = NAN;
  r->idle_rss_kib = -1;
  r->throughput_runs = g_array_new (FALSE, FALSE, sizeof (double));
  r->http_runs_1 = g_array_new (FALSE, FALSE, sizeof (double));
  r->http_runs_n = g_array_new (FALSE, FALSE, sizeof (double));
  r->errors = g_ptr_array_new_with_free_func (g_free);
}

static void
result_clear (Result *r)
{
  g_array_unref (r->throughput_runs);
  g_array_unref (r->http_runs_1);
  g_array_unref (r->http_runs_n);
  g_ptr_array_unref (r->errors);
}

static void
result_error (Result *r, Mode mode, const char *metric, char *message)
{
  g_ptr_array_add (r->errors, g_strdup_printf ("%s %s: %s", mode_names[mode], metric, message));
  g_printerr ("zlt-bench: %s %s: %s\n", mode_names[mode], metric, message);
  g_free (message);
}

/* ---- the measurements of one path ---- */

static void
measure_throughput (Path *p, Result *r)
{
  double spent = 0;

  /* runs stop early once they have used the cap between them (at least one run) */
  for (gint run = 0; run < opt_runs && spent < opt_throughput_cap_s; run++)
    {
      Throughput t
          = { p->sink_port, (guint64) opt_throughput_mib * 1024 * 1024, opt_throughput_cap_s };
      double t0 = now_s ();

      run_job ("bench-stream", throughput_job, &t);
      spent += now_s () - t0;
      path_settle (p);
      if (t.error != NULL)
        {
          result_error (r, p->mode, "throughput", t.error);
          return;
        }
      note ("%s throughput run %d: %.2f Gbit/s (%" G_GUINT64_FORMAT " MiB)", mode_names[p->mode],
            run + 1, t.gbps, t.sent >> 20);
      g_array_append_val (r->throughput_runs, t.gbps);
    }
  r->throughput_gbps = median (r->throughput_runs);
}

static void
measure_ttfb (Path *p, Result *r)
{
  Ttfb t = { p->echo_port, (guint) opt_ttfb_count, opt_ttfb_cap_s };

  run_job ("bench-ttfb", ttfb_job, &t);
  path_settle (p);
  if (t.error != NULL)
    result_error (r, p->mode, "ttfb", t.error);
  else
    {
      r->ttfb_n = t.ms->len;
      r->ttfb_p50_ms = percentile ((double *) t.ms->data, t.ms->len, 50);
      r->ttfb_p99_ms = percentile ((double *) t.ms->data, t.ms->len, 99);
      note ("%s ttfb: n=%u p50=%.3f ms p99=%.3f ms max=%.3f ms", mode_names[p->mode], r->ttfb_n,
            r->ttfb_p50_ms, r->ttfb_p99_ms, g_array_index (t.ms, double, t.ms->len - 1));
    }
  g_array_unref (t.ms);

  if (opt_burst > 0)
    {
      Burst b = { p->echo_port, (guint) opt_burst };

      run_job ("bench-burst", burst_job, &b);
      path_settle (p);
      if (b.error != NULL)
        result_error (r, p->mode, "burst", b.error);
      else
        {
          r->burst_ms = b.ms;
          note ("%s burst: %u connections echoed in %.1f ms", mode_names[p->mode], b.count, b.ms);
        }
    }
}

static void
measure_http (Path *p, Result *r)
{
  guint conns[2] = { 1, (guint) MAX (opt_http_connections, 1) };

  for (guint c = 0; c < G_N_ELEMENTS (conns); c++)
    {
      GArray *runs = c == 0 ? r->http_runs_1 : r->http_runs_n;

      for (gint run = 0; run < opt_runs; run++)
        {
          Http h = { p->http_port, conns[c], (guint) opt_http_requests, opt_http_cap_s };

          run_job ("bench-http", http_job, &h);
          path_settle (p);
          if (h.error != NULL)
            {
              result_error (r, p->mode, "http", h.error);
              return;
            }
          note ("%s http run %d, %u connection(s): %.0f req/s (%u requests)", mode_names[p->mode],
                run + 1, conns[c], h.rps, h.completed);
          g_array_append_val (runs, h.rps);
        }
      if (c == 0)
        r->http_rps_1 = median (runs);
      else
        r->http_rps_n = median (runs);
    }
}

static gint64
trimmed_rss_kib (void)
{
  /* give freed heap pages back first, so growth counts live memory, not garbage */
  for (int i = 0; i < 10 && g_main_context_iteration (NULL, FALSE); i++)
    ;
  malloc_trim (0);
  return read_rss_kib ();
}

typedef struct
{
  Path *path;
  guint n;
} RelayCount;

static gboolean
relays_up (gpointer data)
{
  RelayCount *c = data;

  /* every connection already carried its byte; this only waits for bookkeeping */
  return !c->path->up || zlt_server_get_n_relays (c->path->h.server) >= c->n;
}

static void
measure_idle (Path *p, Result *r, guint n)
{
  Idle t = { p->echo_port, n, opt_idle_cap_s };
  RelayCount count = { p, 0 };
  gint64 before, after;

  t.fds = g_array_sized_new (FALSE, FALSE, sizeof (int), n);
  r->idle_rss_kib = trimmed_rss_kib ();
  before = r->idle_rss_kib;
  run_job ("bench-idle", idle_open_job, &t);
  if (t.error != NULL)
    result_error (r, p->mode, "idle", t.error);
  else if (t.fds->len > 0)
    {
      n = t.fds->len;
      count.n = n;
      if (!spin_until (relays_up, &count, 10000))
        note ("%s idle: %u connections but %u server and %u agent relays", mode_names[p->mode], n,
              zlt_server_get_n_relays (p->h.server), zlt_agent_get_n_relays (p->h.agent));
      /* a moment for the last callbacks, then measure */
      spin_until (NULL, NULL, 200);
      after = trimmed_rss_kib ();
      r->idle_n = n;
      r->idle_raw_kib_per_conn = (double) (after - before) / n;
      note ("%s idle: %u connections, RSS %" G_GINT64_FORMAT " -> %" G_GINT64_FORMAT " KiB",
            mode_names[p->mode], n, before, after);
    }
  for (guint i = 0; i < t.fds->len; i++)
    close (g_array_index (t.fds, int, i));
  g_array_unref (t.fds);
  path_settle (p);
}

/* ---- limits ---- */

/* Raises the soft fd limit to the hard one (and the hard one too when allowed), and
 * returns how many idle tunnelled connections fit. */
static guint
raise_nofile (guint wanted_conns, char **limit_note)
{
  struct rlimit rl;
  rlim_t need = (rlim_t) wanted_conns * FDS_PER_TUNNEL_CONN + 1024;

  if (getrlimit (RLIMIT_NOFILE, &rl) < 0)
    return wanted_conns;
  if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need)
    {
      struct rlimit more = { need, need };
      if (setrlimit (RLIMIT_NOFILE, &more) == 0)
        return wanted_conns;
    }
  rl.rlim_cur = rl.rlim_max;
  setrlimit (RLIMIT_NOFILE, &rl);
  getrlimit (RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need)
    {
      guint fit = (guint) ((rl.rlim_cur - MIN (rl.rlim_cur, 1024)) / FDS_PER_TUNNEL_CONN);
      *limit_note = g_strdup_printf ("idle connections limited to %u by RLIMIT_NOFILE (%lu)", fit,
                                     (unsigned long) rl.rlim_cur);
      return fit;
    }
  return wanted_conns;
}

/* ---- output ---- */

static char *
fmt (double v, int decimals, const char *suffix)
{
  if (isnan (v))
    return g_strdup ("-");
  return g_strdup_printf ("%.*f%s", decimals, v, suffix);
}

static void
print_row (const char *metric, const Result *results, const gboolean *ran, gsize offset,
           int decimals, gboolean lower_is_better, gboolean with_ratio)
{
  double direct = *(const double *) ((const char *) &results[MODE_DIRECT] + offset);
  g_autoptr (GString) line = g_string_new (NULL);

  g_string_append_printf (line, "%-40s", metric);
  for (Mode m = MODE_DIRECT; m < N_MODES; m++)
    {
      double v = *(const double *) ((const char *) &results[m] + offset);
      g_autofree char *cell = fmt (ran[m] ? v : NAN, decimals, "");

      g_string_append_printf (line, " %11s", cell);
      if (m != MODE_DIRECT)
        {
          /* a ratio to an almost-zero direct cost says nothing: memory rows have none */
          g_autofree char *ratio
              = fmt (ran[m] && ran[MODE_DIRECT] && direct > 0 && with_ratio ? v / direct : NAN, 2,
                     lower_is_better ? "x" : "");
          g_string_append_printf (line, " %7s", ratio);
        }
    }
  g_print ("%s\n", line->str);
}

static void
print_table (const Result *results, const gboolean *ran, const char *load_before,
             const char *load_after, gint64 rss_base, const char *limit_note)
{
  g_autofree char *cpu = read_cpu_model ();
  g_autofree char *idle_row = g_strdup_printf (
      "idle conns: RSS KiB per conn (N=%u)",
      results[MODE_TUNNEL].idle_n ? results[MODE_TUNNEL].idle_n : results[MODE_DIRECT].idle_n);
  g_autofree char *http_row
      = g_strdup_printf ("HTTP keep-alive req/s, %d conns", MAX (opt_http_connections, 1));

  g_print ("zlayer-tunnel benchmark: 127.0.0.1, %u CPUs (%s), load average %s before, %s after\n",
           g_get_num_processors (), cpu, load_before, load_after);
  g_print ("runs per metric %d (median), throughput %d MiB per run (cap %d s), "
           "%d sequential connections for first byte (cap %d s)\n\n",
           opt_runs, opt_throughput_mib, opt_throughput_cap_s, opt_ttfb_count, opt_ttfb_cap_s);
  g_print ("%-40s %11s %11s %7s %11s %7s\n", "metric", "direct", "tunnel", "ratio", "tunnel+TLS",
           "ratio");
  print_row ("throughput, one stream (Gbit/s)", results, ran,
             G_STRUCT_OFFSET (Result, throughput_gbps), 2, FALSE, TRUE);
  print_row ("connect + first echoed byte p50 (ms)", results, ran,
             G_STRUCT_OFFSET (Result, ttfb_p50_ms), 3, TRUE, TRUE);
  print_row ("connect + first echoed byte p99 (ms)", results, ran,
             G_STRUCT_OFFSET (Result, ttfb_p99_ms), 3, TRUE, TRUE);
  if (opt_burst > 0)
    {
      g_autofree char *burst_row
          = g_strdup_printf ("%d connects at once, last echo (ms)", opt_burst);
      print_row (burst_row, results, ran, G_STRUCT_OFFSET (Result, burst_ms), 1, TRUE, TRUE);
    }
  print_row ("HTTP keep-alive req/s, 1 conn", results, ran, G_STRUCT_OFFSET (Result, http_rps_1), 0,
             FALSE, TRUE);
  print_row (http_row, results, ran, G_STRUCT_OFFSET (Result, http_rps_n), 0, FALSE, TRUE);
  print_row (idle_row, results, ran, G_STRUCT_OFFSET (Result, idle_kib_per_conn), 1, TRUE, FALSE);

  g_print ("\nratios: to direct; for ms and KiB rows lower is better (\"x\" = times direct)\n");
  g_print ("idle memory: server, agent, echo service and clients share this process; the tunnel\n"
           "  columns subtract the RSS growth of the same number of direct connections to the\n"
           "  echo service (raw growth per conn: direct %.1f, tunnel %.1f, TLS %.1f KiB;\n"
           "  connections: %u, %u, %u); malloc_trim(0) runs before each reading\n",
           results[MODE_DIRECT].idle_raw_kib_per_conn, results[MODE_TUNNEL].idle_raw_kib_per_conn,
           results[MODE_TLS].idle_raw_kib_per_conn, results[MODE_DIRECT].idle_n,
           results[MODE_TUNNEL].idle_n, results[MODE_TLS].idle_n);
  g_print ("process RSS: bench alone %" G_GINT64_FORMAT " KiB", rss_base);
  if (results[MODE_TUNNEL].idle_rss_kib >= 0)
    g_print ("; with idle server + agent, no connections %" G_GINT64_FORMAT
             " KiB (+%" G_GINT64_FORMAT " KiB)",
             results[MODE_TUNNEL].idle_rss_kib, results[MODE_TUNNEL].idle_rss_kib - rss_base);
  if (results[MODE_TLS].idle_rss_kib >= 0)
    g_print ("; TLS %" G_GINT64_FORMAT " KiB (+%" G_GINT64_FORMAT " KiB)",
             results[MODE_TLS].idle_rss_kib, results[MODE_TLS].idle_rss_kib - rss_base);
  g_print ("\n");
  if (limit_note != NULL)
    g_print ("%s\n", limit_note);
  for (Mode m = MODE_DIRECT; m < N_MODES; m++)
    for (guint i = 0; i < results[m].errors->len; i++)
      g_print ("error: %s\n", (const char *) g_ptr_array_index (results[m].errors, i));
}

static void
json_add_double (JsonBuilder *b, const char *name, double v)
{
  json_builder_set_member_name (b, name);
  if (isnan (v))
    json_builder_add_null_value (b);
  else
    json_builder_add_double_value (b, v);
}

static void
json_add_runs (JsonBuilder *b, const char *name, GArray *runs)
{
  json_builder_set_member_name (b, name);
  json_builder_begin_array (b);
  for (guint i = 0; i < runs->len; i++)
    json_builder_add_double_value (b, g_array_index (runs, double, i));
  json_builder_end_array (b);
}

static void
print_json (const Result *results, const gboolean *ran, const char *load_before,
            const char *load_after, gint64 rss_base, const char *limit_note)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = NULL;
  g_autofree char *text = NULL;
  g_autofree char *cpu = read_cpu_model ();

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "machine");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "cpus");
  json_builder_add_int_value (b, g_get_num_processors ());
  json_builder_set_member_name (b, "cpu_model");
  json_builder_add_string_value (b, cpu);
  json_builder_set_member_name (b, "load_before");
  json_builder_add_string_value (b, load_before);
  json_builder_set_member_name (b, "load_after");
  json_builder_add_string_value (b, load_after);
  json_builder_end_object (b);

  json_builder_set_member_name (b, "parameters");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "runs");
  json_builder_add_int_value (b, opt_runs);
  json_builder_set_member_name (b, "throughput_mib");
  json_builder_add_int_value (b, opt_throughput_mib);
  json_builder_set_member_name (b, "ttfb_count");
  json_builder_add_int_value (b, opt_ttfb_count);
  json_builder_set_member_name (b, "http_requests");
  json_builder_add_int_value (b, opt_http_requests);
  json_builder_set_member_name (b, "http_connections");
  json_builder_add_int_value (b, MAX (opt_http_connections, 1));
  json_builder_set_member_name (b, "burst");
  json_builder_add_int_value (b, opt_burst);
  json_builder_set_member_name (b, "idle");
  json_builder_add_int_value (b, results[MODE_DIRECT].idle_n ? results[MODE_DIRECT].idle_n
                                                             : results[MODE_TUNNEL].idle_n);
  json_builder_end_object (b);

  json_builder_set_member_name (b, "rss_bench_kib");
  json_builder_add_int_value (b, rss_base);
  if (limit_note != NULL)
    {
      json_builder_set_member_name (b, "note");
      json_builder_add_string_value (b, limit_note);
    }

  for (Mode m = MODE_DIRECT; m < N_MODES; m++)
    {
      const Result *r = &results[m];

      if (!ran[m])
        continue;
      json_builder_set_member_name (b, mode_names[m]);
      json_builder_begin_object (b);
      json_add_double (b, "throughput_gbps", r->throughput_gbps);
      json_add_runs (b, "throughput_runs", r->throughput_runs);
      json_add_double (b, "ttfb_p50_ms", r->ttfb_p50_ms);
      json_add_double (b, "ttfb_p99_ms", r->ttfb_p99_ms);
      json_builder_set_member_name (b, "ttfb_count");
      json_builder_add_int_value (b, r->ttfb_n);
      json_add_double (b, "burst_ms", r->burst_ms);
      json_add_double (b, "http_rps_1_conn", r->http_rps_1);
      json_add_runs (b, "http_runs_1_conn", r->http_runs_1);
      json_add_double (b, "http_rps_n_conns", r->http_rps_n);
      json_add_runs (b, "http_runs_n_conns", r->http_runs_n);
      json_add_double (b, "idle_kib_per_conn", r->idle_kib_per_conn);
      json_add_double (b, "idle_raw_kib_per_conn", r->idle_raw_kib_per_conn);
      if (m != MODE_DIRECT)
        {
          json_builder_set_member_name (b, "idle_process_rss_kib");
          json_builder_add_int_value (b, r->idle_rss_kib);
          if (ran[MODE_DIRECT])
            {
              json_add_double (b, "throughput_ratio",
                               r->throughput_gbps / results[MODE_DIRECT].throughput_gbps);
              json_add_double (b, "http_ratio_1_conn",
                               r->http_rps_1 / results[MODE_DIRECT].http_rps_1);
              json_add_double (b, "http_ratio_n_conns",
                               r->http_rps_n / results[MODE_DIRECT].http_rps_n);
            }
        }
      json_builder_set_member_name (b, "errors");
      json_builder_begin_array (b);
      for (guint i = 0; i < r->errors->len; i++)
        json_builder_add_string_value (b, g_ptr_array_index (r->errors, i));
      json_builder_end_array (b);
      json_builder_end_object (b);
    }
  json_builder_end_object (b);

  root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  json_generator_set_pretty (gen, TRUE);
  text = json_generator_to_data (gen, NULL);
  g_print ("%s\n", text);
}

/* ---- main ---- */

static gboolean
wanted (const char *list, const char *name)
{
  g_auto (GStrv) items = NULL;

  if (list == NULL)
    return TRUE;
  items = g_strsplit (list, ",", -1);
  return g_strv_contains ((const char *const *) items, name);
}

static gboolean
check_list (const char *list, const char *const *known, GError **error)
{
  g_auto (GStrv) items = NULL;

  if (list == NULL)
    return TRUE;
  items = g_strsplit (list, ",", -1);
  for (guint i = 0; items[i] != NULL; i++)
    if (!g_strv_contains (known, items[i]))
      {
        g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "unknown item ‘%s’",
                     items[i]);
        return FALSE;
      }
  return TRUE;
}

int
main (int argc, char **argv)
{
  static const char *const metrics[] = { "throughput", "ttfb", "http", "idle", NULL };
  static const char *const modes[] = { "direct", "tunnel", "tls", NULL };
  g_autoptr (GOptionContext) context = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *load_before = NULL, *load_after = NULL, *limit_note = NULL;
  Result results[N_MODES];
  gboolean ran[N_MODES] = { FALSE };
  Services services;
  gint64 rss_base;
  guint idle_n;

  context = g_option_context_new ("- measure the tunnel against direct loopback connections");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error)
      || !check_list (opt_only, metrics, &error) || !check_list (opt_modes, modes, &error))
    {
      g_printerr ("zlt-bench: %s\n", error->message);
      return 2;
    }
  if (opt_quick)
    {
      opt_throughput_mib = MIN (opt_throughput_mib, 64);
      opt_ttfb_count = MIN (opt_ttfb_count, 50);
      opt_http_requests = MIN (opt_http_requests, 2000);
      opt_http_cap_s = 0.5;
      opt_idle = MIN (opt_idle, 100);
      opt_runs = 1;
      opt_burst = 0;
      opt_throughput_cap_s = 2;
      opt_ttfb_cap_s = 2;
      opt_idle_cap_s = 4;
    }
  opt_runs = CLAMP (opt_runs, 1, 15);
  opt_throughput_mib = CLAMP (opt_throughput_mib, 1, 1024 * 1024);
  opt_ttfb_count = CLAMP (opt_ttfb_count, 1, 100000);
  opt_http_requests = CLAMP (opt_http_requests, 1, 10000000);
  opt_http_connections = CLAMP (opt_http_connections, 1, 64);
  opt_idle = CLAMP (opt_idle, 1, 10000);
  opt_burst = CLAMP (opt_burst, 0, 1000);
  idle_n = raise_nofile ((guint) opt_idle, &limit_note);

  start_time = g_get_monotonic_time ();
  load_before = read_loadavg ();
  services_start (&services);
  rss_base = trimmed_rss_kib ();

  for (Mode m = MODE_DIRECT; m < N_MODES; m++)
    {
      Path path;

      result_init (&results[m]);
      if (!wanted (opt_modes, mode_names[m]) || (m == MODE_TLS && opt_no_tls))
        continue;
      ran[m] = TRUE;
      path_setup (&path, m, &services);
      note ("%s: sink %u, echo %u, http %u", mode_names[m], path.sink_port, path.echo_port,
            path.http_port);
      /* memory first, before the other metrics leave their garbage in the heap */
      if (wanted (opt_only, "idle") && idle_n > 0)
        measure_idle (&path, &results[m], idle_n);
      if (wanted (opt_only, "ttfb"))
        measure_ttfb (&path, &results[m]);
      if (wanted (opt_only, "http"))
        measure_http (&path, &results[m]);
      if (wanted (opt_only, "throughput"))
        measure_throughput (&path, &results[m]);
      path_clear (&path);
    }
  /* tunnels minus what the same direct connections cost */
  for (Mode m = MODE_DIRECT; m < N_MODES; m++)
    results[m].idle_kib_per_conn
        = m == MODE_DIRECT || !ran[MODE_DIRECT]
              ? results[m].idle_raw_kib_per_conn
              : results[m].idle_raw_kib_per_conn - results[MODE_DIRECT].idle_raw_kib_per_conn;
  services_stop (&services);
  load_after = read_loadavg ();

  if (opt_json)
    print_json (results, ran, load_before, load_after, rss_base, limit_note);
  else
    print_table (results, ran, load_before, load_after, rss_base, limit_note);

  for (Mode m = MODE_DIRECT; m < N_MODES; m++)
    if (results[m].errors->len > 0)
      {
        for (Mode k = MODE_DIRECT; k < N_MODES; k++)
          result_clear (&results[k]);
        return 1;
      }
  for (Mode m = MODE_DIRECT; m < N_MODES; m++)
    result_clear (&results[m]);
  return 0;
}
