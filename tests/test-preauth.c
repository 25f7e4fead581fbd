/* test-preauth.c: the server's port before any upgrade, against peers that never
 * finish (or never start) what they began. Real listeners from the websocket plugin,
 * real sockets from several loopback addresses, real TLS with a test certificate.
 *
 * What it shows: silent and slow-drip connections cost no thread and little memory and
 * are closed at the deadline; TLS handshakes in progress are capped (and per source);
 * the caps on pending connections hold; a request with a body is answered 413 before
 * its body is read; a request head is bounded and nothing after it is read before the
 * 101; the control channel counts what it could not write yet; and a good agent gets
 * its tunnel and its data connections through all of that at once. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "zlt-test-util.h"

#define MIB (1024 * 1024)

/* ---- process figures ---- */

static guint64
status_field (const char *name)
{
  g_autofree char *contents = NULL;
  g_auto (GStrv) lines = NULL;
  gsize len = strlen (name);

  g_assert_true (g_file_get_contents ("/proc/self/status", &contents, NULL, NULL));
  lines = g_strsplit (contents, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    if (strncmp (lines[i], name, len) == 0 && lines[i][len] == ':')
      return g_ascii_strtoull (lines[i] + len + 1, NULL, 10);
  g_assert_not_reached ();
}

static guint
n_threads (void)
{
  return (guint) status_field ("Threads");
}

static guint64
rss_kib (void)
{
  return status_field ("VmRSS");
}

/* ---- raw clients: plain sockets, bound to a loopback source address ---- */

/* Connects from @source (127.x.y.z) to 127.0.0.1:@port; the socket is non-blocking. */
static int
raw_connect (const char *source, guint16 port)
{
  struct sockaddr_in from = { 0 }, to = { 0 };
  int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

  g_assert_cmpint (fd, >=, 0);
  from.sin_family = AF_INET;
  g_assert_cmpint (inet_pton (AF_INET, source, &from.sin_addr), ==, 1);
  g_assert_cmpint (bind (fd, (struct sockaddr *) &from, sizeof from), ==, 0);
  to.sin_family = AF_INET;
  to.sin_port = g_htons (port);
  to.sin_addr.s_addr = g_htonl (INADDR_LOOPBACK);
  /* completes through the backlog, whether the server accepted yet or not */
  g_assert_cmpint (connect (fd, (struct sockaddr *) &to, sizeof to), ==, 0);
  g_assert_cmpint (fcntl (fd, F_SETFL, O_NONBLOCK), ==, 0);
  return fd;
}

/* Whether the peer closed (EOF or reset); never blocks, reads away what came before. */
static gboolean
raw_closed (int fd)
{
  char buf[4096];
  gssize n;

  while ((n = recv (fd, buf, sizeof buf, MSG_DONTWAIT)) > 0)
    ;
  return n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
}

static void
raw_send (int fd, const void *data, gsize len)
{
  g_assert_cmpint (send (fd, data, len, MSG_NOSIGNAL), ==, (gssize) len);
}

/* Reads what is there into @into; returns FALSE once the peer closed. */
static gboolean
raw_read (int fd, GString *into)
{
  char buf[65536];

  while (TRUE)
    {
      gssize n = recv (fd, buf, sizeof buf, MSG_DONTWAIT);

      if (n > 0)
        {
          g_string_append_len (into, buf, n);
          continue;
        }
      return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
    }
}

static void
close_all (GArray *fds)
{
  for (guint i = 0; i < fds->len; i++)
    close (g_array_index (fds, int, i));
  g_array_set_size (fds, 0);
}

static guint
count_closed (GArray *fds)
{
  guint n = 0;

  for (guint i = 0; i < fds->len; i++)
    n += raw_closed (g_array_index (fds, int, i));
  return n;
}

static gboolean
all_closed (GArray *fds)
{
  return count_closed (fds) == fds->len;
}

/* @n connections spread over 127.0.0.@first.. (@per_source each) */
static GArray *
open_silent (guint16 port, guint n, guint first, guint per_source)
{
  GArray *fds = g_array_new (FALSE, FALSE, sizeof (int));

  for (guint i = 0; i < n; i++)
    {
      g_autofree char *source = g_strdup_printf ("127.0.0.%u", first + i / per_source);
      int fd = raw_connect (source, port);

      g_array_append_val (fds, fd);
    }
  return fds;
}

/* ---- TLS ---- */

static void
handshake_ended (GObject *source, GAsyncResult *result, gpointer user_data)
{
  gboolean *done = user_data;

  g_tls_connection_handshake_finish (G_TLS_CONNECTION (source), result, NULL);
  *done = TRUE;
}

/* A real ClientHello (the first TLS record of glib-networking's client), captured on
 * a plain socket of our own. */
static GBytes *
capture_client_hello (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GSocketListener) listener = g_socket_listener_new ();
  g_autoptr (GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) any = g_inet_socket_address_new (lo, 0);
  g_autoptr (GSocketAddress) address = NULL;
  g_autoptr (GSocketClient) client = g_socket_client_new ();
  g_autoptr (GSocketConnection) connection = NULL;
  g_autoptr (GSocketConnection) accepted = NULL;
  g_autoptr (GIOStream) tls = NULL;
  g_autoptr (GCancellable) cancellable = g_cancellable_new ();
  GInputStream *in;
  guint8 record[5 + 16384];
  gsize got = 0, len;
  gboolean done = FALSE;

  g_socket_listener_add_address (listener, any, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL,
                                 &address, &error);
  g_assert_no_error (error);
  connection = g_socket_client_connect (client, G_SOCKET_CONNECTABLE (address), NULL, &error);
  g_assert_no_error (error);
  accepted = g_socket_listener_accept (listener, NULL, NULL, &error);
  g_assert_no_error (error);
  tls = g_tls_client_connection_new (G_IO_STREAM (connection), NULL, &error);
  g_assert_no_error (error);
  g_tls_connection_handshake_async (G_TLS_CONNECTION (tls), G_PRIORITY_DEFAULT, cancellable,
                                    handshake_ended, &done);
  in = g_io_stream_get_input_stream (G_IO_STREAM (accepted));
  g_input_stream_read_all (in, record, 5, &got, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (record[0], ==, 0x16);
  len = (gsize) record[3] << 8 | record[4];
  g_input_stream_read_all (in, record + 5, len, &got, NULL, &error);
  g_assert_no_error (error);
  g_cancellable_cancel (cancellable);
  g_io_stream_close (G_IO_STREAM (accepted), NULL, NULL);
  ZLT_TEST_WAIT_FOR (done, 10000);
  return g_bytes_new (record, 5 + len);
}

static gboolean
accept_any_certificate (GTlsConnection *tls, GTlsCertificate *peer, GTlsCertificateFlags errors,
                        gpointer user_data)
{
  return TRUE;
}

/* A blocking TLS client in a thread: handshake, then @request, then (with body_bytes)
 * as much of a body as the peer takes, then the status line of the answer. */
typedef struct
{
  guint16 port;
  const char *source;
  const char *request;
  gsize body_bytes;
  /* results */
  guint status;
  GString *reply;
  gsize body_sent;
  gint64 handshake_ms;
  gint64 status_ms;
  char *error;
  gint done;
} TlsClient;

static gpointer
tls_client_thread (gpointer user_data)
{
  TlsClient *c = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (GSocket) socket = NULL;
  g_autoptr (GSocketConnection) connection = NULL;
  g_autoptr (GIOStream) tls = NULL;
  g_autofree guint8 *body = NULL;
  gint64 started = g_get_monotonic_time ();
  GOutputStream *out;
  GInputStream *in;
  char buf[4096];
  gssize n;

  socket = g_socket_new_from_fd (raw_connect (c->source, c->port), &error);
  if (socket == NULL)
    goto fail;
  g_socket_set_timeout (socket, 20);
  connection = g_socket_connection_factory_create_connection (socket);
  tls = g_tls_client_connection_new (G_IO_STREAM (connection), NULL, &error);
  if (tls == NULL)
    goto fail;
  g_signal_connect (tls, "accept-certificate", G_CALLBACK (accept_any_certificate), NULL);
  if (!g_tls_connection_handshake (G_TLS_CONNECTION (tls), NULL, &error))
    goto fail;
  c->handshake_ms = (g_get_monotonic_time () - started) / 1000;
  out = g_io_stream_get_output_stream (tls);
  in = g_io_stream_get_input_stream (tls);
  if (!g_output_stream_write_all (out, c->request, strlen (c->request), NULL, NULL, &error))
    goto fail;
  body = g_malloc0 (65536);
  while (c->body_sent < c->body_bytes)
    {
      /* the peer may stop reading (and close) at any point: that ends the body */
      n = g_output_stream_write (out, body, MIN (65536, c->body_bytes - c->body_sent), NULL, NULL);
      if (n <= 0)
        break;
      c->body_sent += n;
    }
  while ((n = g_input_stream_read (in, buf, sizeof buf, NULL, &error)) > 0)
    {
      g_string_append_len (c->reply, buf, n);
      if (c->status == 0 && strstr (c->reply->str, "\r\n") != NULL)
        {
          c->status_ms = (g_get_monotonic_time () - started) / 1000;
          if (g_str_has_prefix (c->reply->str, "HTTP/1.1 "))
            c->status = (guint) g_ascii_strtoull (c->reply->str + 9, NULL, 10);
        }
    }
  /* EOF, or the reset that may follow our unread body: the answer came before */
  g_atomic_int_set (&c->done, 1);
  return NULL;

fail:
  c->error = g_strdup (error ? error->message : "failed");
  g_atomic_int_set (&c->done, 1);
  return NULL;
}

static GThread *
tls_client_start (TlsClient *c)
{
  c->reply = g_string_new (NULL);
  return g_thread_new ("tls-client", tls_client_thread, c);
}

static void
tls_client_finish (GThread *thread, TlsClient *c, guint timeout_ms)
{
  ZLT_TEST_WAIT_FOR (g_atomic_int_get (&c->done), timeout_ms);
  g_thread_join (thread);
}

static void
tls_client_clear (TlsClient *c)
{
  g_string_free (c->reply, TRUE);
  g_free (c->error);
}

/* ---- fixture: one listener of the websocket plugin ---- */

typedef struct
{
  ZltPluginLoader *loader;
  ZltControlTransport *transport;
  ZltControlListener *listener;
  char *tmpdir;
  char *cert_file;
  char *key_file;
  GTlsCertificate *certificate;
  GPtrArray *channels;
  GPtrArray *data_streams;
  GPtrArray *standby_streams;
  GPtrArray *requests; /* what the verdict handlers were asked, as text */
  ZltDataVerdict data_verdict;
} Fixture;

static void
on_channel (ZltControlListener *listener, ZltChannel *channel, gpointer user_data)
{
  Fixture *f = user_data;

  g_ptr_array_add (f->channels, g_object_ref (channel));
}

static guint
on_data_request (ZltControlListener *listener, const char *tunnel_id, const char *connection_id,
                 const char *mac, const char *service, gboolean probe, gpointer user_data)
{
  Fixture *f = user_data;

  g_ptr_array_add (f->requests,
                   g_strdup_printf ("data [%s] [%s] [%s] [%s] %d", tunnel_id, connection_id, mac,
                                    service ? service : "(none)", probe));
  return f->data_verdict;
}

static guint
on_standby_request (ZltControlListener *listener, const char *tunnel_id, const char *standby_id,
                    const char *mac, gpointer user_data)
{
  Fixture *f = user_data;

  g_ptr_array_add (f->requests,
                   g_strdup_printf ("standby [%s] [%s] [%s]", tunnel_id, standby_id, mac));
  return f->data_verdict;
}

static void
on_standby_stream (ZltControlListener *listener, const char *tunnel_id, const char *standby_id,
                   GIOStream *stream, gpointer user_data)
{
  Fixture *f = user_data;

  g_ptr_array_add (f->standby_streams, g_object_ref (stream));
}

static void
on_data_stream (ZltControlListener *listener, const char *connection_id, GIOStream *stream,
                gpointer user_data)
{
  Fixture *f = user_data;

  g_ptr_array_add (f->data_streams, g_object_ref (stream));
}

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  f->loader = zlt_plugin_loader_new (NULL);
  zlt_plugin_loader_load_all (f->loader, &error);
  g_assert_no_error (error);
  f->transport
      = ZLT_CONTROL_TRANSPORT (zlt_plugin_loader_new_transport (f->loader, "websocket", &error));
  g_assert_no_error (error);
  f->tmpdir = g_dir_make_tmp ("zlt-preauth-XXXXXX", &error);
  g_assert_no_error (error);
  if (!zlt_test_make_certificate (f->tmpdir, &f->cert_file, &f->key_file))
    g_error ("certtool (gnutls-bin) failed to make a test certificate");
  f->certificate = zlt_tls_load_server_certificate (f->cert_file, f->key_file, &error);
  g_assert_no_error (error);
  f->channels = g_ptr_array_new_with_free_func (g_object_unref);
  f->data_streams = g_ptr_array_new_with_free_func (g_object_unref);
  f->standby_streams = g_ptr_array_new_with_free_func (g_object_unref);
  f->requests = g_ptr_array_new_with_free_func (g_free);
  f->data_verdict = ZLT_DATA_NO_SUCH_SERVICE;
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  if (f->listener != NULL)
    {
      zlt_listener_close (ZLT_LISTENER (f->listener));
      g_assert_cmpuint (zlt_control_listener_get_n_pending (f->listener), ==, 0);
    }
  g_clear_object (&f->listener);
  g_ptr_array_unref (f->channels);
  g_ptr_array_unref (f->data_streams);
  g_ptr_array_unref (f->standby_streams);
  g_ptr_array_unref (f->requests);
  g_clear_object (&f->transport);
  g_clear_object (&f->loader);
  g_clear_object (&f->certificate);
  g_unlink (f->cert_file);
  g_unlink (f->key_file);
  {
    g_autofree char *cfg = g_build_filename (f->tmpdir, "cert.cfg", NULL);
    g_unlink (cfg);
  }
  g_rmdir (f->tmpdir);
  g_free (f->tmpdir);
  g_free (f->cert_file);
  g_free (f->key_file);
  /* let cancelled handshakes and closes run their last callbacks */
  while (g_main_context_iteration (NULL, FALSE))
    ;
}

static guint16
start_listener (Fixture *f, gboolean tls, guint timeout_ms)
{
  g_autoptr (GError) error = NULL;

  f->listener = zlt_control_transport_listen_control (
      f->transport, "127.0.0.1", 0, tls ? f->certificate : NULL, timeout_ms, &error);
  g_assert_no_error (error);
  g_signal_connect (f->listener, "channel", G_CALLBACK (on_channel), f);
  g_signal_connect (f->listener, "data-request", G_CALLBACK (on_data_request), f);
  g_signal_connect (f->listener, "data-stream", G_CALLBACK (on_data_stream), f);
  g_signal_connect (f->listener, "standby-request", G_CALLBACK (on_standby_request), f);
  g_signal_connect (f->listener, "standby-stream", G_CALLBACK (on_standby_stream), f);
  return zlt_listener_get_port (ZLT_LISTENER (f->listener));
}

static guint
get_uint (gpointer object, const char *property)
{
  guint value = 0;

  g_object_get (object, property, &value, NULL);
  return value;
}

/* ---- silent and slow connections ---- */

#define N_SILENT 400
#define SILENT_TIMEOUT_MS 2000

static void
test_silent_tls (Fixture *f, gconstpointer data)
{
  guint16 port = start_listener (f, TRUE, SILENT_TIMEOUT_MS);
  g_autoptr (GArray) fds = NULL;
  TlsClient warm = { .port = port,
                     .source = "127.0.0.1",
                     .request = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" };
  GThread *thread;
  guint threads_before, threads_held;
  guint64 rss_before, rss_held;
  gint64 opened;

  /* one whole handshake first, so TLS and GLib's pools are warm when we measure */
  thread = tls_client_start (&warm);
  tls_client_finish (thread, &warm, 20000);
  g_assert_null (warm.error);
  g_assert_cmpuint (warm.status, ==, 404);
  tls_client_clear (&warm);
  ZLT_TEST_WAIT_FOR (zlt_control_listener_get_n_pending (f->listener) == 0, 5000);

  threads_before = n_threads ();
  rss_before = rss_kib ();
  opened = g_get_monotonic_time ();
  /* 8 sources of 50 each: far from the per-source cap */
  fds = open_silent (port, N_SILENT, 2, 50);
  ZLT_TEST_WAIT_FOR (zlt_control_listener_get_n_pending (f->listener) == N_SILENT, 5000);
  threads_held = n_threads ();
  rss_held = rss_kib ();
  g_test_message ("%u silent TLS connections held: threads %u -> %u, RSS %" G_GUINT64_FORMAT
                  " -> %" G_GUINT64_FORMAT " KiB (%.0f bytes per connection)",
                  N_SILENT, threads_before, threads_held, rss_before, rss_held,
                  (rss_held - MIN (rss_held, rss_before)) * 1024.0 / N_SILENT);
  /* no handshake started, no thread taken */
  g_assert_cmpuint (get_uint (f->listener, "n-handshakes"), ==, 0);
  g_assert_cmpuint (threads_held, <=, threads_before + 1);
  g_assert_cmpuint (rss_held - MIN (rss_held, rss_before), <, N_SILENT * 4);
  g_assert_cmpuint (zlt_control_listener_get_n_refused (f->listener), ==, 0);

  /* all of them closed at the deadline, and not before */
  ZLT_TEST_WAIT_FOR (all_closed (fds), SILENT_TIMEOUT_MS + 5000);
  g_assert_cmpint (g_get_monotonic_time () - opened, >=, (SILENT_TIMEOUT_MS - 50) * 1000);
  ZLT_TEST_WAIT_FOR (zlt_control_listener_get_n_pending (f->listener) == 0, 5000);
  g_test_message ("all closed %.0f ms after they connected",
                  (g_get_monotonic_time () - opened) / 1000.0);
  close_all (fds);
}

typedef struct
{
  GArray *fds;
  GBytes *hello;
  gsize offset;
  guint max_handshakes_seen;
  guint max_threads_seen;
  guint64 max_rss_seen;
  ZltControlListener *listener;
} Drip;

static gboolean
drip_tick (gpointer user_data)
{
  Drip *d = user_data;
  const guint8 *hello = g_bytes_get_data (d->hello, NULL);

  /* one more byte of the ClientHello on each connection; never the whole record */
  if (d->offset + 1 < g_bytes_get_size (d->hello))
    {
      for (guint i = 0; i < d->fds->len; i++)
        send (g_array_index (d->fds, int, i), hello + d->offset, 1, MSG_NOSIGNAL);
      d->offset++;
    }
  if (d->listener != NULL)
    d->max_handshakes_seen = MAX (d->max_handshakes_seen, get_uint (d->listener, "n-handshakes"));
  d->max_threads_seen = MAX (d->max_threads_seen, n_threads ());
  d->max_rss_seen = MAX (d->max_rss_seen, zlt_test_rss_kib ());
  return G_SOURCE_CONTINUE;
}

static void
test_slow_drip (Fixture *f, gconstpointer data)
{
  guint16 port = start_listener (f, TRUE, SILENT_TIMEOUT_MS);
  g_autoptr (GBytes) hello = capture_client_hello ();
  Drip d = { 0 };
  guint source_id;
  guint threads_before;
  gint64 opened;

  g_test_message ("captured a ClientHello of %" G_GSIZE_FORMAT " bytes", g_bytes_get_size (hello));
  threads_before = n_threads ();
  d.hello = hello;
  d.listener = f->listener;
  opened = g_get_monotonic_time ();
  d.fds = open_silent (port, 20, 2, 10);
  source_id = g_timeout_add (50, drip_tick, &d);
  ZLT_TEST_WAIT_FOR (all_closed (d.fds), SILENT_TIMEOUT_MS + 5000);
  g_source_remove (source_id);
  g_test_message ("%u drips of one byte each; max handshakes %u, threads %u -> max %u",
                  (guint) d.offset, d.max_handshakes_seen, threads_before, d.max_threads_seen);
  /* a record never complete starts no handshake and takes no thread */
  g_assert_cmpuint (d.offset, >=, 10);
  g_assert_cmpuint (d.max_handshakes_seen, ==, 0);
  g_assert_cmpuint (d.max_threads_seen, <=, threads_before + 1);
  g_assert_cmpint (g_get_monotonic_time () - opened, >=, (SILENT_TIMEOUT_MS - 50) * 1000);
  ZLT_TEST_WAIT_FOR (zlt_control_listener_get_n_pending (f->listener) == 0, 5000);
  close_all (d.fds);
  g_array_unref (d.fds);
}

/* Whole ClientHellos that never go on: each holds a handshake (and a thread) until the
 * deadline. The caps bound them, and one source cannot take every slot. */
static void
test_handshake_cap (Fixture *f, gconstpointer data)
{
  guint16 port = start_listener (f, TRUE, 4000);
  g_autoptr (GBytes) hello = capture_client_hello ();
  g_autoptr (GArray) stalled = NULL;
  TlsClient good = { .port = port,
                     .source = "127.0.0.9",
                     .request = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" };
  GThread *thread;
  guint threads_before, threads_stalled;

  g_object_set (f->listener, "max-handshakes", 4, "max-handshakes-per-source", 2, NULL);
  threads_before = n_threads ();
  /* 6 from 127.0.0.2 and 2 from 127.0.0.3 */
  stalled = open_silent (port, 6, 2, 6);
  for (guint i = 0; i < 2; i++)
    {
      int fd = raw_connect ("127.0.0.3", port);
      g_array_append_val (stalled, fd);
    }
  for (guint i = 0; i < stalled->len; i++)
    raw_send (g_array_index (stalled, int, i), g_bytes_get_data (hello, NULL),
              g_bytes_get_size (hello));
  /* two per source run; the other four of 127.0.0.2 wait */
  ZLT_TEST_WAIT_FOR (get_uint (f->listener, "n-handshakes") == 4
                         && get_uint (f->listener, "n-handshakes-queued") == 4,
                     5000);
  threads_stalled = n_threads ();
  g_test_message ("8 stalled handshakes, 4 running: threads %u -> %u", threads_before,
                  threads_stalled);
  g_assert_cmpuint (threads_stalled, <=, threads_before + 4 + 2);

  /* a slot frees when the cap is raised: the queue moves, by source share */
  g_object_set (f->listener, "max-handshakes", 5, NULL);
  ZLT_TEST_WAIT_FOR (get_uint (f->listener, "n-handshakes") == 4, 5000);
  g_assert_cmpuint (get_uint (f->listener, "n-handshakes-queued"), ==, 4);

  /* a good client from elsewhere takes the free slot at once, long before the
   * deadline frees the stalled ones */
  thread = tls_client_start (&good);
  tls_client_finish (thread, &good, 20000);
  g_assert_null (good.error);
  g_assert_cmpuint (good.status, ==, 404);
  g_test_message ("a good TLS client got its answer in %" G_GINT64_FORMAT " ms", good.status_ms);
  g_assert_cmpint (good.status_ms, <, 3000);
  tls_client_clear (&good);
  g_assert_false (raw_closed (g_array_index (stalled, int, 0)));

  /* the deadline cancels the running handshakes and drops the queued ones */
  ZLT_TEST_WAIT_FOR (all_closed (stalled), 10000);
  ZLT_TEST_WAIT_FOR (get_uint (f->listener, "n-handshakes") == 0
                         && get_uint (f->listener, "n-handshakes-queued") == 0
                         && zlt_control_listener_get_n_pending (f->listener) == 0,
                     5000);
  close_all (stalled);
}

/* ---- caps ---- */

static void
test_caps (Fixture *f, gconstpointer data)
{
  guint16 port = start_listener (f, FALSE, 30000);
  g_autoptr (GArray) a = NULL;
  g_autoptr (GArray) b = NULL;
  g_autoptr (GArray) c = NULL;
  int fd;

  g_assert_cmpuint (zlt_control_listener_get_max_pending (f->listener), ==,
                    ZLT_CONTROL_LISTENER_MAX_PENDING);
  g_assert_cmpuint (zlt_control_listener_get_max_pending_per_source (f->listener), ==,
                    ZLT_CONTROL_LISTENER_MAX_PENDING_PER_SOURCE);
  g_object_set (f->listener, "max-pending-per-source", 5, "max-pending", 10, NULL);
  g_assert_cmpuint (zlt_control_listener_get_max_pending_per_source (f->listener), ==, 5);

  /* 7 from one address: 5 held, 2 closed at once */
  a = open_silent (port, 7, 2, 7);
  ZLT_TEST_WAIT_FOR (zlt_control_listener_get_n_refused (f->listener) == 2, 5000);
  ZLT_TEST_WAIT_FOR (count_closed (a) == 2, 5000);
  g_assert_cmpuint (zlt_control_listener_get_n_pending (f->listener), ==, 5);

  /* another address has its own share... */
  b = open_silent (port, 4, 3, 4);
  ZLT_TEST_WAIT_FOR (zlt_control_listener_get_n_pending (f->listener) == 9, 5000);
  g_assert_false (raw_closed (g_array_index (b, int, 3)));
  /* ...up to the total of 10 */
  c = open_silent (port, 3, 4, 3);
  ZLT_TEST_WAIT_FOR (zlt_control_listener_get_n_refused (f->listener) == 4, 5000);
  g_assert_cmpuint (zlt_control_listener_get_n_pending (f->listener), ==, 10);

  /* a connection that goes away gives its place back */
  close_all (a);
  ZLT_TEST_WAIT_FOR (zlt_control_listener_get_n_pending (f->listener) == 5, 5000);
  fd = raw_connect ("127.0.0.2", port);
  g_array_append_val (a, fd);
  ZLT_TEST_WAIT_FOR (zlt_control_listener_get_n_pending (f->listener) == 6, 5000);
  g_assert_cmpuint (zlt_control_listener_get_n_refused (f->listener), ==, 4);
  close_all (a);
  close_all (b);
  close_all (c);
  ZLT_TEST_WAIT_FOR (zlt_control_listener_get_n_pending (f->listener) == 0, 5000);
}

/* ---- HTTP before the upgrade ---- */

/* Sends @request on a new plain connection and reads until the server closes. */
static GString *
http_exchange (guint16 port, const char *request, gsize len, gint64 *elapsed_ms)
{
  int fd = raw_connect ("127.0.0.1", port);
  GString *reply = g_string_new (NULL);
  gint64 started = g_get_monotonic_time ();

  raw_send (fd, request, len);
  ZLT_TEST_WAIT_FOR (!raw_read (fd, reply), 20000);
  if (elapsed_ms != NULL)
    *elapsed_ms = (g_get_monotonic_time () - started) / 1000;
  close (fd);
  return reply;
}

static void
assert_413 (GString *reply)
{
  g_assert_true (g_str_has_prefix (reply->str, "HTTP/1.1 413 "));
  g_assert_nonnull (strstr (reply->str, "\r\nConnection: close\r\n"));
}

typedef struct
{
  int fd;
  gsize sent;
  gsize limit;
  gboolean stopped;
} Pump;

static gboolean
pump_tick (gpointer user_data)
{
  Pump *p = user_data;
  static const guint8 zeros[65536];

  while (!p->stopped && p->sent < p->limit)
    {
      gssize n = send (p->fd, zeros, sizeof zeros, MSG_NOSIGNAL | MSG_DONTWAIT);

      if (n > 0)
        p->sent += n;
      else
        {
          if (errno != EAGAIN && errno != EWOULDBLOCK)
            p->stopped = TRUE;
          break;
        }
    }
  return G_SOURCE_CONTINUE;
}

static void
test_body_refused (Fixture *f, gconstpointer data)
{
  guint16 port = start_listener (f, FALSE, 3000);
  const char *paths[] = { "/tunnel/v1", "/tunnel/v1/data", "/other" };
  g_autoptr (GString) reply = NULL;
  Pump pump = { 0 };
  guint id;
  guint64 rss_before;
  gint64 elapsed_ms, started;

  for (guint i = 0; i < G_N_ELEMENTS (paths); i++)
    {
      g_autofree char *post = g_strdup_printf ("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                               "Content-Length: 1000000000\r\n\r\n",
                                               paths[i]);
      g_autofree char *chunked
          = g_strdup_printf ("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                             "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
                             paths[i]);
      g_autofree char *get = g_strdup_printf ("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                              "Content-Length: 5\r\n\r\nhello",
                                              paths[i]);
      GString *r;

      r = http_exchange (port, post, strlen (post), &elapsed_ms);
      assert_413 (r);
      /* an answer, and before the deadline (which would close without one) */
      g_assert_cmpint (elapsed_ms, <, 3000);
      g_string_free (r, TRUE);
      r = http_exchange (port, chunked, strlen (chunked), NULL);
      assert_413 (r);
      g_string_free (r, TRUE);
      r = http_exchange (port, get, strlen (get), NULL);
      assert_413 (r);
      g_string_free (r, TRUE);
    }
  /* a body of zero bytes is no body */
  reply = http_exchange (
      port, "GET /other HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n",
      strlen ("GET /other HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n"), NULL);
  g_assert_true (g_str_has_prefix (reply->str, "HTTP/1.1 404 "));

  /* 1 GB announced, and pushed as fast as the server takes it: it takes nothing
   * (the kernel's buffers and a brief discard after the answer), memory stays flat */
  rss_before = rss_kib ();
  pump.fd = raw_connect ("127.0.0.2", port);
  pump.limit = 1000000000;
  g_string_truncate (reply, 0);
  started = g_get_monotonic_time ();
  raw_send (pump.fd,
            "POST /tunnel/v1 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000000000\r\n\r\n",
            strlen ("POST /tunnel/v1 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: "
                    "1000000000\r\n\r\n"));
  id = g_timeout_add (10, pump_tick, &pump);
  ZLT_TEST_WAIT_FOR ((raw_read (pump.fd, reply), strstr (reply->str, "\r\n\r\n") != NULL), 5000);
  elapsed_ms = (g_get_monotonic_time () - started) / 1000;
  assert_413 (reply);
  /* keep pushing a while: a server that read bodies would read hundreds of MiB */
  while (g_get_monotonic_time () - started < G_USEC_PER_SEC)
    g_main_context_iteration (NULL, TRUE);
  g_source_remove (id);
  g_test_message ("413 after %" G_GINT64_FORMAT " ms; the client got %" G_GSIZE_FORMAT
                  " bytes of its body out in 1 s; RSS %" G_GUINT64_FORMAT " -> %" G_GUINT64_FORMAT
                  " KiB",
                  elapsed_ms, pump.sent, rss_before, rss_kib ());
  g_assert_cmpuint (pump.sent, <, 64 * MIB);
  g_assert_cmpuint (rss_kib (), <, rss_before + 8 * 1024);
  close (pump.fd);
  ZLT_TEST_WAIT_FOR (zlt_control_listener_get_n_pending (f->listener) == 0, 10000);
}

static GString *
padded_request (const char *path, gsize header_bytes, gboolean complete)
{
  GString *s = g_string_new (NULL);

  g_string_append_printf (s, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n", path);
  while (s->len < header_bytes)
    g_string_append (s, "X-Pad: 0123456789012345678901234567890123456789012345678901234567\r\n");
  if (complete)
    g_string_append (s, "\r\n");
  return s;
}

static void
test_request_head (Fixture *f, gconstpointer data)
{
  guint16 port = start_listener (f, FALSE, 5000);
  g_autoptr (GString) big = padded_request ("/other", 12 * 1024, TRUE);
  g_autoptr (GString) huge = padded_request ("/other", 20 * 1024, FALSE);
  g_autoptr (GString) reply = NULL;
  g_autoptr (GString) two = NULL;
  gint64 elapsed_ms;
  gsize n_answers = 0;
  const char *p;

  /* 12 KiB of headers is still a request */
  reply = http_exchange (port, big->str, big->len, NULL);
  g_assert_true (g_str_has_prefix (reply->str, "HTTP/1.1 404 "));
  g_string_free (g_steal_pointer (&reply), TRUE);

  /* 20 KiB without an end: cut off at 16 KiB at once (libsoup alone would wait for 64
   * KiB, and then the deadline) */
  reply = http_exchange (port, huge->str, huge->len, &elapsed_ms);
  g_test_message ("a 20 KiB head was cut off after %" G_GINT64_FORMAT " ms", elapsed_ms);
  g_assert_cmpint (elapsed_ms, <, 2500);
  g_assert_false (g_str_has_prefix (reply->str, "HTTP/1.1 2"));
  g_string_free (g_steal_pointer (&reply), TRUE);

  /* two requests in one write: one answer, then the connection closes */
  two = g_string_new ("GET /a HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
                      "GET /b HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  reply = http_exchange (port, two->str, two->len, &elapsed_ms);
  for (p = reply->str; (p = strstr (p, "HTTP/1.1 ")) != NULL; p++)
    n_answers++;
  g_assert_cmpuint (n_answers, ==, 1);
  g_assert_true (g_str_has_prefix (reply->str, "HTTP/1.1 404 "));
  g_assert_nonnull (strstr (reply->str, "\r\nConnection: close\r\n"));
  g_assert_cmpint (elapsed_ms, <, 2500);
  ZLT_TEST_WAIT_FOR (zlt_control_listener_get_n_pending (f->listener) == 0, 5000);
}

#define DATA_REQUEST                                                                               \
  "GET /tunnel/v1/data HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\n"                     \
  "Upgrade: zlt-data/2\r\nX-Zlt-Tunnel: t\r\nX-Zlt-Connection: c\r\nX-Zlt-Mac: m\r\n\r\n"

static void
check_data_upgrade (Fixture *f, guint16 port, const char *early)
{
  g_autofree char *request = g_strconcat (DATA_REQUEST, early, NULL);
  g_autoptr (GString) reply = g_string_new (NULL);
  g_autoptr (GString) got = g_string_new (NULL);
  GIOStream *stream;
  GInputStream *in;
  char buf[64];
  int fd = raw_connect ("127.0.0.1", port);

  g_ptr_array_set_size (f->data_streams, 0);
  raw_send (fd, request, strlen (request));
  ZLT_TEST_WAIT_FOR (f->data_streams->len == 1, 5000);
  raw_read (fd, reply);
  g_assert_true (g_str_has_prefix (reply->str, "HTTP/1.1 101 "));
  g_assert_cmpuint (zlt_control_listener_get_n_pending (f->listener), ==, 0);
  stream = g_ptr_array_index (f->data_streams, 0);
  in = g_io_stream_get_input_stream (stream);
  if (*early == '\0')
    {
      /* nothing was read ahead: the plain socket itself, fit for splice */
      g_assert_true (G_IS_SOCKET_CONNECTION (stream));
      raw_send (fd, "late", 4);
    }
  else
    g_assert_false (G_IS_SOCKET_CONNECTION (stream));
  /* what the peer sent, early or late, arrives whole */
  ZLT_TEST_WAIT_FOR (({
                       gssize n = g_pollable_input_stream_read_nonblocking (
                           G_POLLABLE_INPUT_STREAM (in), buf, sizeof buf, NULL, NULL);
                       if (n > 0)
                         g_string_append_len (got, buf, n);
                       got->len >= strlen (*early ? early : "late");
                     }),
                     5000);
  g_assert_cmpstr (got->str, ==, *early ? early : "late");
  /* and the other way */
  g_output_stream_write_all (g_io_stream_get_output_stream (stream), "back", 4, NULL, NULL, NULL);
  g_string_truncate (reply, 0);
  ZLT_TEST_WAIT_FOR ((raw_read (fd, reply), reply->len == 4), 5000);
  g_assert_cmpstr (reply->str, ==, "back");
  close (fd);
}

static void
test_data_upgrade (Fixture *f, gconstpointer data)
{
  guint16 port = start_listener (f, FALSE, 5000);

  f->data_verdict = ZLT_DATA_ACCEPT;
  check_data_upgrade (f, port, "");
  /* a peer that does not wait for the 101 loses nothing */
  check_data_upgrade (f, port, "early bytes");
}

/* ---- data and standby heads read by the listener itself ---- */

#define UPGRADE_START                                                                              \
  "GET /tunnel/v1/data HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\n"                     \
  "Upgrade: zlt-data/2\r\n"
#define STANDBY_REQUEST UPGRADE_START "X-Zlt-Tunnel: t\r\nX-Zlt-Standby: 7\r\nX-Zlt-Mac: m\r\n\r\n"

typedef struct
{
  const char *request;
  gboolean ours; /* read and answered by the listener itself, not by libsoup */
} Head;

static const Head heads[] = {
  { DATA_REQUEST, TRUE },
  { STANDBY_REQUEST, TRUE },
  /* an access stream, an IPv6 Host, a header nobody reads */
  { "GET /tunnel/v1/data HTTP/1.1\r\nHost: [::1]:3679\r\nConnection: Upgrade\r\n"
    "Upgrade: zlt-data/2\r\nX-Zlt-Tunnel: t\r\nX-Zlt-Connection: c\r\nX-Zlt-Mac: m\r\n"
    "X-Zlt-Service: web\r\nUser-Agent: zlayer-tunnel/1\r\n\r\n",
    TRUE },
  /* other spellings of a standby request: names in lower case, lists, white space */
  { "GET /tunnel/v1/data HTTP/1.1\r\nhost:127.0.0.1\r\nconnection: keep-alive, upgrade\r\n"
    "upgrade:  h2c, ZLT-DATA/2 \r\nx-zlt-tunnel:\tt \r\nx-zlt-standby: 7\r\nx-zlt-mac: m\r\n\r\n",
    TRUE },
  /* an empty value is a value (the server's verdict refuses it) */
  { UPGRADE_START "X-Zlt-Tunnel: t\r\nX-Zlt-Standby: 7\r\nX-Zlt-Mac:\r\n\r\n", TRUE },
  /* libsoup's to answer: missing headers */
  { UPGRADE_START "X-Zlt-Tunnel: t\r\nX-Zlt-Connection: c\r\n\r\n", FALSE },
  { UPGRADE_START "X-Zlt-Connection: c\r\nX-Zlt-Mac: m\r\n\r\n", FALSE },
  { UPGRADE_START "X-Zlt-Tunnel: t\r\nX-Zlt-Standby: 7\r\n\r\n", FALSE },
  { "GET /tunnel/v1/data HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\n"
    "X-Zlt-Tunnel: t\r\nX-Zlt-Connection: c\r\nX-Zlt-Mac: m\r\n\r\n",
    FALSE },
  { "GET /tunnel/v1/data HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: zlt-data/2\r\n"
    "X-Zlt-Tunnel: t\r\nX-Zlt-Connection: c\r\nX-Zlt-Mac: m\r\n\r\n",
    FALSE },
  /* headers that do not go together, or not with us */
  { UPGRADE_START "X-Zlt-Tunnel: t\r\nX-Zlt-Standby: 7\r\nX-Zlt-Connection: c\r\n"
                  "X-Zlt-Mac: m\r\n\r\n",
    FALSE },
  { UPGRADE_START "X-Zlt-Tunnel: t\r\nX-Zlt-Standby: 7\r\nX-Zlt-Service: web\r\n"
                  "X-Zlt-Mac: m\r\n\r\n",
    FALSE },
  { UPGRADE_START "X-Zlt-Tunnel: t\r\nX-Zlt-Connection: c\r\nX-Zlt-Mac: m\r\n"
                  "X-Zlt-Service: web\r\nX-Zlt-Probe: 1\r\n\r\n",
    FALSE },
  { UPGRADE_START "X-Zlt-Tunnel: t\r\nX-Zlt-Standby: 7\r\nX-Zlt-Mac: m\r\nX-Zlt-Mac: n\r\n\r\n",
    FALSE },
  { UPGRADE_START
    "X-Zlt-Tunnel: t\r\nX-Zlt-Standby: 7\r\nX-Zlt-Mac: m\r\nContent-Length: 0\r\n\r\n",
    FALSE },
  /* another method, version, target, upgrade */
  { "POST /tunnel/v1/data HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\n"
    "Upgrade: zlt-data/2\r\nX-Zlt-Tunnel: t\r\nX-Zlt-Standby: 7\r\nX-Zlt-Mac: m\r\n\r\n",
    FALSE },
  { "GET /tunnel/v1/data HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\n"
    "Upgrade: zlt-data/2\r\nX-Zlt-Tunnel: t\r\nX-Zlt-Standby: 7\r\nX-Zlt-Mac: m\r\n\r\n",
    FALSE },
  { "GET /tunnel/v1/data?x=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\n"
    "Upgrade: zlt-data/2\r\nX-Zlt-Tunnel: t\r\nX-Zlt-Standby: 7\r\nX-Zlt-Mac: m\r\n\r\n",
    FALSE },
  { "GET /tunnel/v1/data HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\n"
    "Upgrade: h2c\r\nX-Zlt-Tunnel: t\r\nX-Zlt-Standby: 7\r\nX-Zlt-Mac: m\r\n\r\n",
    FALSE },
  /* odd forms: bare LF line ends, a folded line, bytes outside ASCII */
  { "GET /tunnel/v1/data HTTP/1.1\nHost: 127.0.0.1\nConnection: Upgrade\n"
    "Upgrade: zlt-data/2\nX-Zlt-Tunnel: t\nX-Zlt-Standby: 7\nX-Zlt-Mac: m\n\n",
    FALSE },
  { UPGRADE_START "X-Zlt-Tunnel: t\r\nX-Zlt-Standby: 7\r\nX-Zlt-Mac:\r\n m\r\n\r\n", FALSE },
  { UPGRADE_START "X-Zlt-Tunnel: t\r\nX-Zlt-Standby: 7\r\nX-Zlt-Mac: m\r\n"
                  "User-Agent: caf\xc3\xa9\r\n\r\n",
    FALSE },
};

static guint64
n_own_requests (Fixture *f)
{
  guint64 n = 0;

  g_object_get (f->listener, "n-own-requests", &n, NULL);
  return n;
}

/* The answer without its Date line (the only part that may differ between two). */
static char *
answer_without_date (const GString *reply)
{
  g_autoptr (GRegex) date = g_regex_new ("\r\nDate: [^\r]*", 0, 0, NULL);

  return g_regex_replace_literal (date, reply->str, reply->len, 0, "", 0, NULL);
}

/* Every head, under every refusal, answered by the listener's own reader and by
 * libsoup: the same bytes (but the Date), the same questions to the server, and the
 * reader takes exactly the heads it should. */
static void
test_own_heads (Fixture *f, gconstpointer data)
{
  guint16 port = start_listener (f, FALSE, 5000);
  const ZltDataVerdict verdicts[]
      = { ZLT_DATA_MALFORMED, ZLT_DATA_FORBIDDEN, ZLT_DATA_NO_SUCH_SERVICE, ZLT_DATA_CONFLICT,
          ZLT_DATA_UNAVAILABLE };

  for (guint v = 0; v < G_N_ELEMENTS (verdicts); v++)
    for (guint i = 0; i < G_N_ELEMENTS (heads); i++)
      {
        g_autofree char *answers[2] = { NULL, NULL };
        g_autofree char *asked[2] = { NULL, NULL };

        f->data_verdict = verdicts[v];
        for (guint own = 0; own < 2; own++)
          {
            g_autoptr (GString) reply = NULL;
            guint64 before;

            g_object_set (f->listener, "own-upgrades", (gboolean) own, NULL);
            before = n_own_requests (f);
            g_ptr_array_set_size (f->requests, 0);
            reply = http_exchange (port, heads[i].request, strlen (heads[i].request), NULL);
            g_assert_true (g_str_has_prefix (reply->str, "HTTP/1."));
            g_assert_cmpuint (n_own_requests (f) - before, ==, own && heads[i].ours ? 1 : 0);
            answers[own] = answer_without_date (reply);
            g_ptr_array_add (f->requests, NULL);
            asked[own] = g_strjoinv ("; ", (char **) f->requests->pdata);
            g_ptr_array_set_size (f->requests, 0);
          }
        if (g_strcmp0 (answers[0], answers[1]) != 0 || g_strcmp0 (asked[0], asked[1]) != 0)
          g_test_message ("head %u, verdict %u:\nlibsoup: %s\n(%s)\nours: %s\n(%s)", i, verdicts[v],
                          answers[0], asked[0], answers[1], asked[1]);
        g_assert_cmpstr (answers[1], ==, answers[0]);
        g_assert_cmpstr (asked[1], ==, asked[0]);
        /* a head of ours reached the server's verdict */
        if (heads[i].ours)
          g_assert_cmpstr (asked[1], !=, "");
      }
  ZLT_TEST_WAIT_FOR (zlt_control_listener_get_n_pending (f->listener) == 0, 5000);
}

/* Upgraded both ways: the same 101, and the plain socket handed on. */
static void
test_own_upgrade (Fixture *f, gconstpointer data)
{
  guint16 port = start_listener (f, FALSE, 5000);
  const char *requests[] = { DATA_REQUEST, STANDBY_REQUEST };

  f->data_verdict = ZLT_DATA_ACCEPT;
  for (guint i = 0; i < G_N_ELEMENTS (requests); i++)
    {
      g_autofree char *answers[2] = { NULL, NULL };

      for (guint own = 0; own < 2; own++)
        {
          GPtrArray *streams = i == 0 ? f->data_streams : f->standby_streams;
          g_autoptr (GString) reply = g_string_new (NULL);
          int fd = raw_connect ("127.0.0.1", port);
          guint64 before;

          g_object_set (f->listener, "own-upgrades", (gboolean) own, NULL);
          before = n_own_requests (f);
          g_ptr_array_set_size (streams, 0);
          raw_send (fd, requests[i], strlen (requests[i]));
          ZLT_TEST_WAIT_FOR (streams->len == 1, 5000);
          ZLT_TEST_WAIT_FOR ((raw_read (fd, reply), strstr (reply->str, "\r\n\r\n") != NULL), 5000);
          g_assert_cmpuint (n_own_requests (f) - before, ==, own);
          g_assert_true (G_IS_SOCKET_CONNECTION (g_ptr_array_index (streams, 0)));
          g_assert_cmpuint (zlt_control_listener_get_n_pending (f->listener), ==, 0);
          answers[own] = answer_without_date (reply);
          g_ptr_array_set_size (streams, 0);
          close (fd);
        }
      g_assert_cmpstr (answers[0], ==,
                       "HTTP/1.1 101 Switching Protocols\r\nUpgrade: zlt-data/2\r\n"
                       "Connection: Upgrade\r\n\r\n");
      g_assert_cmpstr (answers[1], ==, answers[0]);
    }
}

/* Sends @len bytes of @data in pieces of @piece bytes, letting the listener read each
 * before the next. */
static void
send_in_pieces (int fd, const char *data, gsize len, gsize piece)
{
  for (gsize sent = 0; sent < len; sent += piece)
    {
      raw_send (fd, data + sent, MIN (piece, len - sent));
      /* loopback delivers at once: one pass over the context reads it */
      while (g_main_context_iteration (NULL, FALSE))
        ;
    }
}

/* A head split over many reads is the same head; one that stops halfway is closed at
 * the deadline; one over the limit is cut off at once; none costs a verdict. */
static void
test_own_split (Fixture *f, gconstpointer data)
{
  guint16 port = start_listener (f, FALSE, 1500);
  g_autoptr (GString) huge = padded_request ("/tunnel/v1/data", 20 * 1024, FALSE);
  const gsize pieces[] = { 1, 7, 64 };
  g_autoptr (GString) reply = NULL;
  gint64 started, elapsed_ms;
  int fd;

  f->data_verdict = ZLT_DATA_ACCEPT;
  for (guint i = 0; i < G_N_ELEMENTS (pieces); i++)
    {
      guint64 before = n_own_requests (f);

      reply = g_string_new (NULL);
      g_ptr_array_set_size (f->standby_streams, 0);
      fd = raw_connect ("127.0.0.1", port);
      send_in_pieces (fd, STANDBY_REQUEST, strlen (STANDBY_REQUEST), pieces[i]);
      ZLT_TEST_WAIT_FOR (f->standby_streams->len == 1, 5000);
      ZLT_TEST_WAIT_FOR ((raw_read (fd, reply), strstr (reply->str, "\r\n\r\n") != NULL), 5000);
      g_assert_true (g_str_has_prefix (reply->str, "HTTP/1.1 101 "));
      g_assert_cmpuint (n_own_requests (f) - before, ==, 1);
      g_assert_true (G_IS_SOCKET_CONNECTION (g_ptr_array_index (f->standby_streams, 0)));
      close (fd);
      g_string_free (g_steal_pointer (&reply), TRUE);
    }

  /* half a head, then nothing: closed at the deadline, without an answer or a verdict */
  g_ptr_array_set_size (f->requests, 0);
  reply = g_string_new (NULL);
  fd = raw_connect ("127.0.0.1", port);
  started = g_get_monotonic_time ();
  send_in_pieces (fd, STANDBY_REQUEST, strlen (STANDBY_REQUEST) / 2, 5);
  g_assert_cmpuint (zlt_control_listener_get_n_pending (f->listener), ==, 1);
  ZLT_TEST_WAIT_FOR (!raw_read (fd, reply), 6000);
  elapsed_ms = (g_get_monotonic_time () - started) / 1000;
  g_test_message ("half a head closed after %" G_GINT64_FORMAT " ms", elapsed_ms);
  g_assert_cmpint (elapsed_ms, >=, 1400);
  g_assert_cmpuint (reply->len, ==, 0);
  g_assert_cmpuint (f->requests->len, ==, 0);
  close (fd);
  g_string_free (g_steal_pointer (&reply), TRUE);

  /* 20 KiB of data-path head without an end, in 1 KiB pieces: cut off at 16 KiB,
   * long before the deadline */
  fd = raw_connect ("127.0.0.1", port);
  reply = g_string_new (NULL);
  started = g_get_monotonic_time ();
  send_in_pieces (fd, huge->str, 16 * 1024, 1024);
  raw_send (fd, huge->str + 16 * 1024, huge->len - 16 * 1024);
  ZLT_TEST_WAIT_FOR (!raw_read (fd, reply), 6000);
  elapsed_ms = (g_get_monotonic_time () - started) / 1000;
  g_assert_cmpint (elapsed_ms, <, 1400);
  g_assert_false (g_str_has_prefix (reply->str, "HTTP/1.1 1"));
  g_assert_false (g_str_has_prefix (reply->str, "HTTP/1.1 2"));
  g_assert_cmpuint (f->requests->len, ==, 0);
  close (fd);
  ZLT_TEST_WAIT_FOR (zlt_control_listener_get_n_pending (f->listener) == 0, 5000);
}

/* On TLS too: the head is read from the TLS stream, the TLS connection handed on. */
static void
test_own_upgrade_tls (Fixture *f, gconstpointer data)
{
  guint16 port = start_listener (f, TRUE, 5000);
  TlsClient c = { .port = port, .source = "127.0.0.1", .request = STANDBY_REQUEST };
  TlsClient refused = { .port = port, .source = "127.0.0.1", .request = DATA_REQUEST };
  GThread *thread;

  f->data_verdict = ZLT_DATA_ACCEPT;
  thread = tls_client_start (&c);
  ZLT_TEST_WAIT_FOR (f->standby_streams->len == 1, 10000);
  g_assert_true (G_IS_TLS_CONNECTION (g_ptr_array_index (f->standby_streams, 0)));
  g_assert_cmpuint (n_own_requests (f), ==, 1);
  /* the client reads until the end: give it one */
  g_io_stream_close (g_ptr_array_index (f->standby_streams, 0), NULL, NULL);
  tls_client_finish (thread, &c, 10000);
  g_assert_null (c.error);
  g_assert_cmpuint (c.status, ==, 101);

  /* a refusal ends with the answer, and the TLS session closed in order */
  f->data_verdict = ZLT_DATA_FORBIDDEN;
  thread = tls_client_start (&refused);
  tls_client_finish (thread, &refused, 10000);
  g_assert_null (refused.error);
  g_assert_cmpuint (refused.status, ==, 403);
  g_assert_true (g_str_has_suffix (refused.reply->str, "\r\n\r\ndata connection refused"));
  g_assert_cmpuint (n_own_requests (f), ==, 2);
  tls_client_clear (&c);
  tls_client_clear (&refused);
  ZLT_TEST_WAIT_FOR (zlt_control_listener_get_n_pending (f->listener) == 0, 5000);
}

/* ---- the control channel's queue ---- */

#define CONTROL_UPGRADE                                                                            \
  "GET /tunnel/v1 HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"    \
  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"

static void
test_pending_bytes (Fixture *f, gconstpointer data)
{
  guint16 port = start_listener (f, FALSE, 5000);
  int fd = raw_connect ("127.0.0.1", port);
  g_autoptr (GString) reply = g_string_new (NULL);
  g_autoptr (GBytes) message = NULL;
  g_autofree guint8 *payload = g_malloc0 (65536);
  ZltChannel *channel;
  gsize pending = 0, previous = 0, frames = 0;
  guint n_sent = 0, n_grew = 0;
  gsize read_total;

  raw_send (fd, CONTROL_UPGRADE, strlen (CONTROL_UPGRADE));
  ZLT_TEST_WAIT_FOR (f->channels->len == 1, 5000);
  ZLT_TEST_WAIT_FOR ((raw_read (fd, reply), strstr (reply->str, "\r\n\r\n") != NULL), 5000);
  g_assert_true (g_str_has_prefix (reply->str, "HTTP/1.1 101 "));
  read_total = reply->len - (strstr (reply->str, "\r\n\r\n") + 4 - reply->str);
  channel = g_ptr_array_index (f->channels, 0);
  g_assert_cmpuint (zlt_channel_get_pending (channel), ==, 0);

  /* the peer reads nothing: once the socket buffers are full, each send stays queued */
  message = g_bytes_new_static (payload, 65536);
  while (pending < 8 * MIB && n_sent < 2048)
    {
      g_assert_true (zlt_channel_send (channel, message, NULL));
      n_sent++;
      frames += 65536 + 10; /* a payload of 64 KiB takes a 10-byte frame header */
      for (guint i = 0; i < 5; i++)
        g_main_context_iteration (NULL, FALSE);
      pending = zlt_channel_get_pending (channel);
      g_assert_cmpuint (pending, <=, frames);
      n_grew += previous > 0 && pending >= previous + 65536;
      previous = pending;
    }
  g_test_message ("%u messages of 64 KiB sent to a peer that reads nothing: %" G_GSIZE_FORMAT
                  " bytes queued (%u sends grew it by a whole message)",
                  n_sent, pending, n_grew);
  g_assert_cmpuint (pending, >=, 8 * MIB);
  g_assert_cmpuint (n_grew, >=, 64);

  /* the peer reads it all: the queue empties */
  g_string_truncate (reply, 0);
  ZLT_TEST_WAIT_FOR (({
                       raw_read (fd, reply);
                       read_total + reply->len >= frames &&zlt_channel_get_pending (channel) == 0;
                     }),
                     20000);
  g_assert_cmpuint (read_total + reply->len, ==, frames);
  close (fd);
  ZLT_TEST_WAIT_FOR (zlt_channel_is_closed (channel), 5000);
}

/* An upgraded channel keeps its connection's place in the pre-auth count until its
 * peer authenticates or it closes; one dropped before either (the server stopping while
 * a login is under way) gives the place back too, rather than leaking it. */
static void
test_channel_dropped (Fixture *f, gconstpointer data)
{
  guint16 port = start_listener (f, FALSE, 5000);
  int fd = raw_connect ("127.0.0.1", port);
  g_autoptr (GString) reply = g_string_new (NULL);

  raw_send (fd, CONTROL_UPGRADE, strlen (CONTROL_UPGRADE));
  ZLT_TEST_WAIT_FOR (f->channels->len == 1, 5000);
  ZLT_TEST_WAIT_FOR ((raw_read (fd, reply), strstr (reply->str, "\r\n\r\n") != NULL), 5000);
  g_assert_true (g_str_has_prefix (reply->str, "HTTP/1.1 101 "));
  g_assert_false (zlt_channel_is_closed (g_ptr_array_index (f->channels, 0)));
  g_assert_cmpuint (zlt_control_listener_get_n_pending (f->listener), ==, 1);

  g_ptr_array_remove_index (f->channels, 0);
  g_assert_cmpuint (zlt_control_listener_get_n_pending (f->listener), ==, 0);
  close (fd);
}

/* ---- all at once, against the real server and a good agent ---- */

#define LOAD_TIMEOUT_S 4

static void
test_hostile_load (void)
{
  ZltTestHarness h;
  g_autofree char *cert_file = NULL;
  g_autofree char *key_file = NULL;
  g_autoptr (GBytes) hello = NULL;
  g_autoptr (GArray) silent = NULL;
  ZltTestTransfer t = { 0 };
  TlsClient post = { 0 };
  GThread *post_thread, *transfer_thread;
  Drip d = { 0 };
  guint drip_id;
  guint16 port, public_port;
  guint threads_before;
  gint64 opened, started, echo_ms;
  g_autofree char *request = NULL;
  ZltTestFlooder flood = { 0 }, inject = { 0 };
  GThread *flood_thread, *inject_thread;
  guint64 rss_before;

  zlt_test_harness_init (&h, "31400-31499");
  g_assert_true (zlt_test_make_certificate (h.tmpdir, &cert_file, &key_file));
  g_key_file_set_string (h.server_keyfile, "server", "tls-certificate", cert_file);
  g_key_file_set_string (h.server_keyfile, "server", "tls-key", key_file);
  g_key_file_set_integer (h.server_keyfile, "server", "auth-timeout", LOAD_TIMEOUT_S);
  zlt_test_harness_start_server (&h);
  port = zlt_server_get_port (h.server);
  hello = capture_client_hello ();
  threads_before = n_threads ();
  rss_before = zlt_test_rss_kib ();

  /* 400 silent connections from 8 addresses, 10 slow-drip ClientHellos, and a POST
   * announcing 1 GB */
  opened = g_get_monotonic_time ();
  silent = open_silent (port, N_SILENT, 2, 50);
  d.hello = hello;
  d.fds = open_silent (port, 10, 10, 10);
  drip_id = g_timeout_add (100, drip_tick, &d);
  request = g_strdup ("POST /tunnel/v1 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      "Content-Length: 1000000000\r\n\r\n");
  post.port = port;
  post.source = "127.0.0.11";
  post.request = request;
  /* some of the body: a server reading bodies would take it, ours answers first */
  post.body_bytes = 256 * 1024;
  post_thread = tls_client_start (&post);

  /* logged-in peers misbehave too: one floods Heartbeats and never reads, one tries to
   * forge log lines with a service name, then floods as well */
  flood.port = port;
  flood.tls = TRUE;
  flood.token = h.token;
  flood.n_heartbeats = 5000;
  flood.max_messages = 2000;
  flood_thread = zlt_test_flooder_start (&flood);
  inject.port = port;
  inject.tls = TRUE;
  inject.token = h.token;
  inject.register_name = "web\nzlt-Message: tunnel 0 opened for 10.0.0.1:1 (root)\x1b[2J";
  inject.n_heartbeats = 5000;
  inject.max_messages = 2000;
  inject_thread = zlt_test_flooder_start (&inject);

  /* meanwhile a good agent connects, registers, and carries a public connection */
  started = g_get_monotonic_time ();
  zlt_test_harness_add_service (&h, "echo", zlt_test_echo_get_port (h.echo), 0);
  g_key_file_set_string (h.agent_keyfile, "agent", "tls-ca-file", cert_file);
  zlt_test_harness_start_agent (&h);
  public_port = zlt_test_harness_wait_registered (&h, "echo");
  g_test_message ("agent registered %.0f ms after the attack began",
                  (g_get_monotonic_time () - started) / 1000.0);
  started = g_get_monotonic_time ();
  t.port = public_port;
  t.n_bytes = 64 * 1024;
  t.n_connections = 4;
  transfer_thread = zlt_test_transfer_start (&t);
  zlt_test_transfer_finish (transfer_thread, &t, 30000);
  echo_ms = (g_get_monotonic_time () - started) / 1000;
  g_assert_null (t.error);
  g_assert_true (t.ok);
  g_test_message ("4 public connections echoed through the tunnel in %" G_GINT64_FORMAT " ms",
                  echo_ms);
  /* well inside the deadline: the data connections' handshakes were not starved */
  g_assert_cmpint ((g_get_monotonic_time () - opened) / 1000, <, LOAD_TIMEOUT_S * 1000);
  g_assert_false (raw_closed (g_array_index (silent, int, 0)));

  /* the flooders were dropped, the forged name refused */
  zlt_test_flooder_finish (flood_thread, &flood, 30000);
  zlt_test_flooder_finish (inject_thread, &inject, 30000);
  g_assert_null (flood.error);
  g_assert_null (inject.error);
  g_assert_true (flood.logged_in && flood.dropped && inject.dropped);
  g_assert_true (inject.register_refused);
  g_test_message ("flooders dropped after %u and %u messages of 5000 Heartbeats", flood.n_messages,
                  inject.n_messages);

  tls_client_finish (post_thread, &post, 20000);
  g_assert_null (post.error);
  g_test_message ("POST of 1 GB: %u after %" G_GINT64_FORMAT " ms, %" G_GSIZE_FORMAT
                  " bytes of body went out",
                  post.status, post.status_ms, post.body_sent);
  g_assert_cmpuint (post.status, ==, 413);
  g_assert_nonnull (strstr (post.reply->str, "\r\nConnection: close\r\n"));

  /* the silent ones are closed at the deadline, not before */
  ZLT_TEST_WAIT_FOR (all_closed (silent) && all_closed (d.fds), LOAD_TIMEOUT_S * 1000 + 10000);
  g_assert_cmpint (g_get_monotonic_time () - opened, >=, (LOAD_TIMEOUT_S * 1000 - 50) * 1000);
  g_source_remove (drip_id);
  g_test_message ("threads: %u before, at most %u during (the agent's own included)",
                  threads_before, d.max_threads_seen);
  g_assert_cmpuint (d.max_threads_seen, <=, threads_before + 16);
  /* the server, the agent and every attacker's socket in this one process: the
   * attack as a whole costs a few MiB, nowhere near what the peers sent (hundreds) */
  g_test_message ("RSS: %" G_GUINT64_FORMAT " KiB before, at most %" G_GUINT64_FORMAT " KiB during",
                  rss_before, d.max_rss_seen);
  g_assert_cmpuint (d.max_rss_seen, <, rss_before + 64 * 1024);
  /* and the tunnel still works */
  ZLT_TEST_WAIT_FOR (zlt_agent_get_state (h.agent) == ZLT_TUNNEL_STATE_CONNECTED, 5000);
  g_assert_cmpuint (zlt_agent_get_n_sessions (h.agent), ==, 1);

  close_all (silent);
  close_all (d.fds);
  g_array_unref (d.fds);
  tls_client_clear (&post);
  g_free (flood.error);
  g_free (inject.error);
  g_free (t.error);
  g_unlink (cert_file);
  g_unlink (key_file);
  {
    g_autofree char *cfg = g_build_filename (h.tmpdir, "cert.cfg", NULL);
    g_unlink (cfg);
  }
  zlt_test_harness_clear (&h);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  zlt_init ();
  /* hundreds of sockets on both ends live in this one process */
  zlt_raise_fd_limit ();
#define ADD(path, func)                                                                            \
  g_test_add ("/preauth/" path, Fixture, NULL, fixture_setup, func, fixture_teardown)
  ADD ("silent-tls", test_silent_tls);
  ADD ("slow-drip", test_slow_drip);
  ADD ("handshake-cap", test_handshake_cap);
  ADD ("caps", test_caps);
  ADD ("body-refused", test_body_refused);
  ADD ("request-head", test_request_head);
  ADD ("data-upgrade", test_data_upgrade);
  ADD ("own-heads", test_own_heads);
  ADD ("own-upgrade", test_own_upgrade);
  ADD ("own-split", test_own_split);
  ADD ("own-upgrade-tls", test_own_upgrade_tls);
  ADD ("pending-bytes", test_pending_bytes);
  ADD ("channel-dropped", test_channel_dropped);
#undef ADD
  g_test_add_func ("/preauth/hostile-load", test_hostile_load);
  return g_test_run ();
}
