/* zlt-tls-bench.c: what TLS costs per byte and per idle session, through glib-networking's
 * GTlsConnection (as the relay uses it) and through GnuTLS straight on the fd.
 *
 *   _build/tests/bench/zlt-tls-bench [--mode gtls|gnutls] [--mib 2048] [--chunk 262144]
 *       [--send record|cork] [--pull direct|buffered] [--sockbuf BYTES] [--sessions N]
 *
 * Two processes on a loopback TCP connection: the parent is the TLS server and sends
 * --mib MiB (the tunnel server's role in a one-stream run: it encrypts), the child is
 * the TLS client and reads them (the agent's role: it decrypts), checking a pinned
 * self-signed ECDSA certificate. Both use the priority the programs use
 * (zlt_tls_default_priority()). Each side prints its CPU time (user + system,
 * getrusage) per GiB moved.
 *
 * gtls: nonblocking reads of --chunk bytes (the relay's ZLT_RELAY_CHUNK_SIZE), record after
 * record until the buffer is full or the stream would block, then poll(2) on the socket;
 * writes of --chunk bytes through write_nonblocking, poll(2) for POLLOUT when it would
 * block. That is what the relay's pollable path does.
 * gnutls: gnutls_record_recv() into a --chunk buffer the same way; sending either one
 * 16 KiB record per gnutls_record_send() (--send record) or a whole chunk corked and
 * written at once (--send cork: gnutls_record_cork/uncork, one sendmsg for many records).
 * --pull buffered gives GnuTLS a pull function that reads up to --chunk bytes per
 * recv(2) and hands them out (GnuTLS itself asks for a record header, then its body: two
 * reads per record).
 *
 * --sessions N: instead of moving bytes, hold N handshaken sessions (one byte read on
 * each, so the client has its session tickets) and print each side's PSS growth per
 * session. gnutls mode shares the server's credentials and keeps no peer certificate on
 * the client (the pin is checked on the DER bytes during the handshake). */
#include "config.h"

#include <errno.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <glib-unix.h>

#include "zlt-test-util.h"
#include "zlt-tls.h"

#define RECORD 16384

static char *opt_mode = NULL;
static char *opt_send = NULL;
static char *opt_pull = NULL;
static gint opt_mib = 2048;
static gint opt_chunk = 256 * 1024;
static gint opt_sockbuf = 0;
static gint opt_sessions = 0;
static gboolean opt_no_tickets = FALSE;

static GOptionEntry entries[] = {
  { "mode", 'm', 0, G_OPTION_ARG_STRING, &opt_mode,
    "gtls (default), gnutls, or plain (no TLS: the kernel's share)", "MODE" },
  { "mib", 'n', 0, G_OPTION_ARG_INT, &opt_mib, "MiB to move (default 2048, at most 65536)", "N" },
  { "chunk", 'c', 0, G_OPTION_ARG_INT, &opt_chunk, "Read/write buffer (default 262144)", "B" },
  { "send", 's', 0, G_OPTION_ARG_STRING, &opt_send, "gnutls: record (default) or cork", "HOW" },
  { "pull", 'p', 0, G_OPTION_ARG_STRING, &opt_pull, "gnutls: direct (default) or buffered", "HOW" },
  { "sockbuf", 'b', 0, G_OPTION_ARG_INT, &opt_sockbuf, "SO_SNDBUF/SO_RCVBUF (default: kernel's)",
    "B" },
  { "sessions", 'i', 0, G_OPTION_ARG_INT, &opt_sessions, "Hold N idle sessions (at most 5000)",
    "N" },
  { "no-tickets", 't', 0, G_OPTION_ARG_NONE, &opt_no_tickets,
    "gnutls: no TLS 1.3 session tickets (GNUTLS_NO_TICKETS)", NULL },
  { NULL },
};

static char *cert_file;
static char *key_file;
static char *pin;
static const char *priority;
static gnutls_priority_t priority_cache; /* made once, shared by every session */

static double
cpu_seconds (void)
{
  struct rusage ru;

  getrusage (RUSAGE_SELF, &ru);
  return (double) ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double) ru.ru_stime.tv_sec
         + ru.ru_stime.tv_usec / 1e6;
}

static double
pss_kib (void)
{
  g_autofree char *text = NULL;
  const char *p;

  if (!g_file_get_contents ("/proc/self/smaps_rollup", &text, NULL, NULL))
    return 0;
  p = strstr (text, "\nPss:");
  return p != NULL ? g_ascii_strtod (p + 5, NULL) : 0;
}

static void
wait_fd (int fd, short events)
{
  struct pollfd pfd = { fd, events, 0 };

  /* bounded: a peer that stops for 30 s ends the run */
  if (poll (&pfd, 1, 30000) != 1)
    g_error ("peer stalled (poll: %s)", g_strerror (errno));
}

static void
tune_socket (int fd)
{
  int one = 1;

  setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (opt_sockbuf > 0)
    {
      setsockopt (fd, SOL_SOCKET, SO_SNDBUF, &opt_sockbuf, sizeof opt_sockbuf);
      setsockopt (fd, SOL_SOCKET, SO_RCVBUF, &opt_sockbuf, sizeof opt_sockbuf);
    }
}

/* ---- glib-networking ---- */

static GIOStream *
gtls_wrap (int fd, gboolean server, GTlsCertificate *certificate)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GSocket) socket = g_socket_new_from_fd (fd, &error);
  g_autoptr (GSocketConnection) base = NULL;
  g_autoptr (GIOStream) tls = NULL;

  g_assert_no_error (error);
  base = g_socket_connection_factory_create_connection (socket);
  if (server)
    tls = zlt_tls_server_connection_new (G_IO_STREAM (base), certificate, &error);
  else
    {
      ZltTlsOptions options = { NULL, pin, FALSE };
      tls = zlt_tls_client_connection_new (G_IO_STREAM (base), NULL, &options, &error);
    }
  g_assert_no_error (error);
  if (!g_tls_connection_handshake (G_TLS_CONNECTION (tls), NULL, &error))
    g_error ("handshake: %s", error->message);
  return g_steal_pointer (&tls);
}

static void
gtls_send (GIOStream *tls, int fd, guint64 total)
{
  GPollableOutputStream *out = G_POLLABLE_OUTPUT_STREAM (g_io_stream_get_output_stream (tls));
  g_autofree guint8 *buf = g_malloc0 (opt_chunk);
  guint64 sent = 0;

  while (sent < total)
    {
      gsize want = MIN ((guint64) opt_chunk, total - sent);
      gsize off = 0;

      while (off < want)
        {
          g_autoptr (GError) error = NULL;
          gssize n = g_pollable_output_stream_write_nonblocking (out, buf + off, want - off, NULL,
                                                                 &error);
          if (n < 0 && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
            wait_fd (fd, POLLOUT);
          else if (n < 0)
            g_error ("write: %s", error->message);
          else
            off += (gsize) n;
        }
      sent += want;
    }
}

static guint64
gtls_receive (GIOStream *tls, int fd)
{
  GPollableInputStream *in = G_POLLABLE_INPUT_STREAM (g_io_stream_get_input_stream (tls));
  g_autofree guint8 *buf = g_malloc (opt_chunk);
  guint64 total = 0;

  for (;;)
    {
      gsize len = 0;

      /* record after record while a whole one fits, as the relay's dir_poll_read() */
      while ((gsize) opt_chunk - len >= RECORD)
        {
          g_autoptr (GError) error = NULL;
          gssize n = g_pollable_input_stream_read_nonblocking (in, buf + len, opt_chunk - len, NULL,
                                                               &error);
          if (n < 0 && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
            {
              if (len == 0)
                wait_fd (fd, POLLIN);
              break;
            }
          if (n < 0)
            g_error ("read: %s", error->message);
          if (n == 0)
            return total + len;
          len += (gsize) n;
        }
      total += len;
    }
}

/* ---- GnuTLS on the fd ---- */

typedef struct
{
  gnutls_session_t session;
  int fd;
  /* --pull buffered */
  guint8 *in;
  gsize in_off;
  gsize in_len;
} Raw;

static ssize_t
raw_pull (gnutls_transport_ptr_t ptr, void *data, size_t size)
{
  Raw *raw = ptr;
  gsize n;

  if (raw->in_off == raw->in_len)
    {
      ssize_t got = recv (raw->fd, raw->in, opt_chunk, 0);

      if (got < 0)
        {
          gnutls_transport_set_errno (raw->session, errno);
          return -1;
        }
      raw->in_off = 0;
      raw->in_len = (gsize) got;
      if (got == 0)
        return 0;
    }
  n = MIN (size, raw->in_len - raw->in_off);
  memcpy (data, raw->in + raw->in_off, n);
  raw->in_off += n;
  return (ssize_t) n;
}

static ssize_t
raw_push (gnutls_transport_ptr_t ptr, const giovec_t *iov, int iovcnt)
{
  Raw *raw = ptr;
  struct msghdr msg = { .msg_iov = (struct iovec *) iov, .msg_iovlen = (size_t) iovcnt };
  ssize_t n = sendmsg (raw->fd, &msg, MSG_NOSIGNAL);

  if (n < 0)
    gnutls_transport_set_errno (raw->session, errno);
  return n;
}

static int
raw_pull_timeout (gnutls_transport_ptr_t ptr, unsigned int ms)
{
  Raw *raw = ptr;
  struct pollfd pfd = { raw->fd, POLLIN, 0 };

  if (raw->in_off < raw->in_len)
    return 1;
  return poll (&pfd, 1, ms == GNUTLS_INDEFINITE_TIMEOUT ? -1 : (int) ms);
}

/* the client's whole trust decision: the leaf's DER against the pin */
static int
raw_verify_pin (gnutls_session_t session)
{
  unsigned int n = 0;
  const gnutls_datum_t *peers = gnutls_certificate_get_peers (session, &n);
  g_autofree char *fingerprint = NULL;

  if (peers == NULL || n == 0)
    return GNUTLS_E_CERTIFICATE_ERROR;
  fingerprint = g_compute_checksum_for_data (G_CHECKSUM_SHA256, peers[0].data, peers[0].size);
  return g_strcmp0 (fingerprint, pin) == 0 ? 0 : GNUTLS_E_CERTIFICATE_ERROR;
}

static void
raw_handshake (Raw *raw)
{
  int rc;

  do
    {
      rc = gnutls_handshake (raw->session);
      if (rc == GNUTLS_E_AGAIN)
        wait_fd (raw->fd, gnutls_record_get_direction (raw->session) ? POLLOUT : POLLIN);
    }
  while (rc < 0 && !gnutls_error_is_fatal (rc));
  if (rc < 0)
    g_error ("handshake: %s", gnutls_strerror (rc));
}

static Raw *
raw_new (int fd, gboolean server, gnutls_certificate_credentials_t creds)
{
  Raw *raw = g_new0 (Raw, 1);
  int rc;

  raw->fd = fd;
  rc = gnutls_init (&raw->session, (server ? GNUTLS_SERVER : GNUTLS_CLIENT) | GNUTLS_NONBLOCK
                                       | (opt_no_tickets ? GNUTLS_NO_TICKETS : 0));
  g_assert_cmpint (rc, ==, 0);
  if (priority_cache == NULL && gnutls_priority_init (&priority_cache, priority, NULL) < 0)
    g_error ("bad priority %s", priority);
  rc = gnutls_priority_set (raw->session, priority_cache);
  g_assert_cmpint (rc, ==, 0);
  gnutls_credentials_set (raw->session, GNUTLS_CRD_CERTIFICATE, creds);
  if (!server && g_strcmp0 (opt_pull, "buffered") == 0)
    {
      raw->in = g_malloc (opt_chunk);
      gnutls_transport_set_ptr (raw->session, raw);
      gnutls_transport_set_pull_function (raw->session, raw_pull);
      gnutls_transport_set_pull_timeout_function (raw->session, raw_pull_timeout);
      gnutls_transport_set_vec_push_function (raw->session, raw_push);
    }
  else
    gnutls_transport_set_int (raw->session, fd);
  raw_handshake (raw);
  return raw;
}

static void
raw_free (Raw *raw)
{
  gnutls_deinit (raw->session);
  g_free (raw->in);
  g_free (raw);
}

static void
raw_flush (Raw *raw)
{
  int rc;

  while ((rc = gnutls_record_uncork (raw->session, 0)) == GNUTLS_E_AGAIN
         || rc == GNUTLS_E_INTERRUPTED)
    wait_fd (raw->fd, POLLOUT);
  if (rc < 0)
    g_error ("uncork: %s", gnutls_strerror (rc));
}

static void
raw_send (Raw *raw, guint64 total)
{
  g_autofree guint8 *buf = g_malloc0 (opt_chunk);
  gboolean cork = g_strcmp0 (opt_send, "cork") == 0;
  guint64 sent = 0;

  while (sent < total)
    {
      gsize want = MIN ((guint64) opt_chunk, total - sent);
      gsize off = 0;

      if (cork)
        gnutls_record_cork (raw->session);
      while (off < want)
        {
          ssize_t n = gnutls_record_send (raw->session, buf + off, MIN (want - off, RECORD));
          if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
            wait_fd (raw->fd, POLLOUT);
          else if (n < 0)
            g_error ("send: %s", gnutls_strerror ((int) n));
          else
            off += (gsize) n;
        }
      if (cork)
        raw_flush (raw);
      sent += want;
    }
}

static guint64
raw_receive (Raw *raw)
{
  g_autofree guint8 *buf = g_malloc (opt_chunk);
  guint64 total = 0;

  for (;;)
    {
      gsize len = 0;

      while ((gsize) opt_chunk - len >= RECORD)
        {
          ssize_t n = gnutls_record_recv (raw->session, buf + len, opt_chunk - len);
          if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
            {
              if (len == 0)
                wait_fd (raw->fd, POLLIN);
              break;
            }
          if (n < 0)
            g_error ("recv: %s", gnutls_strerror ((int) n));
          if (n == 0)
            return total + len;
          len += (gsize) n;
        }
      total += len;
    }
}

static void
raw_bye (Raw *raw)
{
  int rc;

  while ((rc = gnutls_bye (raw->session, GNUTLS_SHUT_WR)) == GNUTLS_E_AGAIN)
    wait_fd (raw->fd, POLLOUT);
}

/* ---- no TLS: what the two TCP ends cost by themselves ---- */

static void
plain_send (int fd, guint64 total)
{
  g_autofree guint8 *buf = g_malloc0 (opt_chunk);
  guint64 sent = 0;

  while (sent < total)
    {
      ssize_t n = send (fd, buf, MIN ((guint64) opt_chunk, total - sent), MSG_NOSIGNAL);

      if (n < 0 && errno == EAGAIN)
        wait_fd (fd, POLLOUT);
      else if (n < 0)
        g_error ("send: %s", g_strerror (errno));
      else
        sent += (guint64) n;
    }
  shutdown (fd, SHUT_WR);
}

static guint64
plain_receive (int fd)
{
  g_autofree guint8 *buf = g_malloc (opt_chunk);
  guint64 total = 0;

  for (;;)
    {
      ssize_t n = recv (fd, buf, opt_chunk, 0);

      if (n < 0 && errno == EAGAIN)
        wait_fd (fd, POLLIN);
      else if (n < 0)
        g_error ("recv: %s", g_strerror (errno));
      else if (n == 0)
        return total;
      else
        total += (guint64) n;
    }
}

/* ---- the two sides ---- */

static int
accept_one (int listener)
{
  int fd = accept (listener, NULL, NULL);

  if (fd < 0)
    g_error ("accept: %s", g_strerror (errno));
  tune_socket (fd);
  return fd;
}

static int
connect_one (guint16 port)
{
  struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons (port) };
  int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

  addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  if (connect (fd, (struct sockaddr *) &addr, sizeof addr) < 0)
    g_error ("connect: %s", g_strerror (errno));
  tune_socket (fd);
  return fd;
}

static void
set_nonblocking (int fd)
{
  g_autoptr (GError) error = NULL;

  if (!g_unix_set_fd_nonblocking (fd, TRUE, &error))
    g_error ("%s", error->message);
}

static void
report (const char *side, double cpu, guint64 bytes)
{
  double gib = bytes / (1024.0 * 1024 * 1024);

  g_print ("%-6s %-6s %.2f GiB, CPU %.3f s = %.3f s per GiB\n", opt_mode, side, gib, cpu,
           cpu / gib);
}

static void
report_sessions (const char *side, double before, double after)
{
  g_print ("%-6s %-6s %d sessions, PSS +%.0f KiB = %.1f KiB per session\n", opt_mode, side,
           opt_sessions, after - before, (after - before) / opt_sessions);
}

static void
run_server (int listener, int sync_fd)
{
  gboolean raw = g_strcmp0 (opt_mode, "gnutls") == 0;
  guint64 total = (guint64) opt_mib * 1024 * 1024;
  g_autoptr (GError) error = NULL;
  g_autoptr (GTlsCertificate) certificate = NULL;
  gnutls_certificate_credentials_t creds = NULL;
  g_autoptr (GPtrArray) held = NULL;
  double pss0 = pss_kib (), cpu0;
  char byte;

  if (raw)
    {
      gnutls_certificate_allocate_credentials (&creds);
      if (gnutls_certificate_set_x509_key_file (creds, cert_file, key_file, GNUTLS_X509_FMT_PEM)
          < 0)
        g_error ("cannot load %s", cert_file);
      held = g_ptr_array_new_with_free_func ((GDestroyNotify) raw_free);
    }
  else
    {
      certificate = zlt_tls_load_server_certificate (cert_file, key_file, &error);
      g_assert_no_error (error);
      held = g_ptr_array_new_with_free_func (g_object_unref);
    }

  if (opt_sessions > 0)
    {
      /* one session to warm up whatever is made once, outside the measure */
      for (gint i = 0; i <= opt_sessions; i++)
        {
          int fd = accept_one (listener);

          if (i == 1)
            pss0 = pss_kib ();
          if (raw)
            {
              Raw *r;

              set_nonblocking (fd);
              r = raw_new (fd, TRUE, creds);
              while (gnutls_record_send (r->session, "x", 1) == GNUTLS_E_AGAIN)
                wait_fd (fd, POLLOUT);
              g_ptr_array_add (held, r);
            }
          else
            {
              GIOStream *tls = gtls_wrap (fd, TRUE, certificate);

              g_output_stream_write_all (g_io_stream_get_output_stream (tls), "x", 1, NULL, NULL,
                                         &error);
              g_assert_no_error (error);
              g_ptr_array_add (held, tls);
            }
        }
      /* the client has read its byte on every one */
      if (read (sync_fd, &byte, 1) != 1)
        g_error ("client failed");
      report_sessions ("server", pss0, pss_kib ());
      return;
    }

  {
    int fd = accept_one (listener);

    set_nonblocking (fd);
    if (g_strcmp0 (opt_mode, "plain") == 0)
      {
        cpu0 = cpu_seconds ();
        plain_send (fd, total);
        report ("server", cpu_seconds () - cpu0, total);
      }
    else if (raw)
      {
        Raw *r = raw_new (fd, TRUE, creds);

        cpu0 = cpu_seconds ();
        raw_send (r, total);
        report ("server", cpu_seconds () - cpu0, total);
        raw_bye (r);
        g_ptr_array_add (held, r);
      }
    else
      {
        GIOStream *tls = gtls_wrap (fd, TRUE, certificate);

        cpu0 = cpu_seconds ();
        gtls_send (tls, fd, total);
        report ("server", cpu_seconds () - cpu0, total);
        g_output_stream_close (g_io_stream_get_output_stream (tls), NULL, NULL);
        g_ptr_array_add (held, tls);
      }
    if (read (sync_fd, &byte, 1) != 1)
      g_error ("client failed");
  }
  g_clear_pointer (&held, g_ptr_array_unref);
  if (creds != NULL)
    gnutls_certificate_free_credentials (creds);
}

static void
run_client (guint16 port, int sync_fd)
{
  gboolean raw = g_strcmp0 (opt_mode, "gnutls") == 0;
  gnutls_certificate_credentials_t creds = NULL;
  g_autoptr (GPtrArray) held = NULL;
  double pss0 = pss_kib (), cpu0;
  guint64 got;

  if (raw)
    {
      gnutls_certificate_allocate_credentials (&creds);
      gnutls_certificate_set_verify_function (creds, raw_verify_pin);
      held = g_ptr_array_new_with_free_func ((GDestroyNotify) raw_free);
    }
  else
    held = g_ptr_array_new_with_free_func (g_object_unref);

  if (opt_sessions > 0)
    {
      for (gint i = 0; i <= opt_sessions; i++)
        {
          int fd = connect_one (port);
          char byte;

          if (i == 1)
            pss0 = pss_kib ();
          set_nonblocking (fd);
          if (raw)
            {
              Raw *r = raw_new (fd, FALSE, creds);
              ssize_t n;

              while ((n = gnutls_record_recv (r->session, &byte, 1)) == GNUTLS_E_AGAIN)
                wait_fd (fd, POLLIN);
              g_assert_cmpint (n, ==, 1);
              g_ptr_array_add (held, r);
            }
          else
            {
              g_autoptr (GError) error = NULL;
              GIOStream *tls = gtls_wrap (fd, FALSE, NULL);

              /* the base socket is blocking (GSocket's own); read one byte */
              g_input_stream_read_all (g_io_stream_get_input_stream (tls), &byte, 1, NULL, NULL,
                                       &error);
              g_assert_no_error (error);
              g_ptr_array_add (held, tls);
            }
        }
      report_sessions ("client", pss0, pss_kib ());
      if (write (sync_fd, "k", 1) != 1)
        g_error ("sync");
      /* hold them until the server has measured */
      (void) !read (sync_fd, &got, 1);
      return;
    }

  {
    int fd = connect_one (port);

    set_nonblocking (fd);
    if (g_strcmp0 (opt_mode, "plain") == 0)
      {
        cpu0 = cpu_seconds ();
        got = plain_receive (fd);
        report ("client", cpu_seconds () - cpu0, got);
      }
    else if (raw)
      {
        Raw *r = raw_new (fd, FALSE, creds);

        cpu0 = cpu_seconds ();
        got = raw_receive (r);
        report ("client", cpu_seconds () - cpu0, got);
        g_ptr_array_add (held, r);
      }
    else
      {
        GIOStream *tls = gtls_wrap (fd, FALSE, NULL);

        cpu0 = cpu_seconds ();
        got = gtls_receive (tls, fd);
        report ("client", cpu_seconds () - cpu0, got);
        g_ptr_array_add (held, tls);
      }
    if (got != (guint64) opt_mib * 1024 * 1024)
      g_error ("received %" G_GUINT64_FORMAT " bytes", got);
    if (write (sync_fd, "k", 1) != 1)
      g_error ("sync");
  }
  g_clear_pointer (&held, g_ptr_array_unref);
  if (creds != NULL)
    gnutls_certificate_free_credentials (creds);
}

int
main (int argc, char **argv)
{
  g_autoptr (GOptionContext) context = g_option_context_new ("- TLS cost per byte and session");
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = NULL;
  g_autofree char *cfg = NULL;
  g_autoptr (GTlsCertificate) certificate = NULL;
  struct sockaddr_in addr = { .sin_family = AF_INET };
  socklen_t addr_len = sizeof addr;
  int listener, sync_fds[2];
  pid_t child;
  int status = 0;

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("%s\n", error->message);
      return 2;
    }
  opt_mib = CLAMP (opt_mib, 1, 65536);
  opt_chunk = CLAMP (opt_chunk, 2 * RECORD, 16 * 1024 * 1024);
  opt_sessions = CLAMP (opt_sessions, 0, 5000);
  if (opt_mode == NULL)
    opt_mode = g_strdup ("gtls");
  if (g_strcmp0 (opt_mode, "plain") == 0)
    opt_sessions = 0;

  /* the programs' priority, given to both paths */
  priority = zlt_tls_default_priority ();
  if (priority == NULL)
    priority = g_getenv ("G_TLS_GNUTLS_PRIORITY");
  if (priority == NULL)
    priority = "NORMAL:%COMPAT";
  g_setenv ("G_TLS_GNUTLS_PRIORITY", priority, TRUE);

  dir = g_dir_make_tmp ("zlt-tls-bench-XXXXXX", &error);
  g_assert_no_error (error);
  if (!zlt_test_make_certificate (dir, &cert_file, &key_file))
    g_error ("certtool failed");
  certificate = g_tls_certificate_new_from_file (cert_file, &error);
  g_assert_no_error (error);
  pin = zlt_tls_certificate_fingerprint (certificate);

  listener = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  if (bind (listener, (struct sockaddr *) &addr, sizeof addr) < 0 || listen (listener, 1024) < 0
      || getsockname (listener, (struct sockaddr *) &addr, &addr_len) < 0)
    g_error ("listen: %s", g_strerror (errno));
  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sync_fds) < 0)
    g_error ("socketpair: %s", g_strerror (errno));

  g_print ("priority %s, chunk %d, %s\n", priority, opt_chunk,
           opt_sessions > 0 ? "idle sessions" : "one stream");
  child = fork ();
  if (child < 0)
    g_error ("fork: %s", g_strerror (errno));
  if (child == 0)
    {
      close (listener);
      close (sync_fds[0]);
      run_client (ntohs (addr.sin_port), sync_fds[1]);
      _exit (0);
    }
  close (sync_fds[1]);
  run_server (listener, sync_fds[0]);
  close (sync_fds[0]);
  waitpid (child, &status, 0);
  g_unlink (cert_file);
  g_unlink (key_file);
  cfg = g_build_filename (dir, "cert.cfg", NULL);
  g_unlink (cfg);
  g_rmdir (dir);
  return WIFEXITED (status) ? WEXITSTATUS (status) : 1;
}
