/* test-relay.c: the bidirectional relay over real loopback sockets */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <gio/gfiledescriptorbased.h>
#include <glib/gstdio.h>

#include "zlt-test-util.h"
#include "zlayer-tunnel.h"
#include "zlt-relay.h" /* private */

#define DEADLINE_S 60

static gboolean under_valgrind;

/* How the relay's two streams are presented, which decides its modes. */
typedef enum
{
  MODE_ZERO_COPY, /* both plain socket connections: splice */
  MODE_POLLABLE,  /* b wrapped in a GSimpleIOStream: pollable userspace both ways */
  MODE_MIXED,     /* a's input behind a GBufferedInputStream: async one way, pollable back */
  MODE_ASYNC,     /* both inputs buffered: async both ways */
  MODE_TLS,       /* b a TLS connection (the server's end speaks TLS): pollable, over fds */
  MODE_DATA_TLS,  /* as MODE_TLS, both TLS ends data connections' own (zlt-tls-stream.c) */
} Mode;

static const char *const mode_names[]
    = { "zero-copy", "pollable", "mixed", "async", "tls", "data-tls" };

#define MODE_IS_TLS(m) ((m) == MODE_TLS || (m) == MODE_DATA_TLS)

/* ---------------------------------------------------------------------------------
 * main context helpers: wait on conditions, never sleep */

static gboolean
wake_cb (gpointer user_data)
{
  return G_SOURCE_CONTINUE;
}

#define SPIN_UNTIL(cond)                                                                           \
  G_STMT_START                                                                                     \
  {                                                                                                \
    gint64 deadline_ = g_get_monotonic_time () + DEADLINE_S * G_USEC_PER_SEC;                      \
    guint wake_ = g_timeout_add (50, wake_cb, NULL);                                               \
    while (!(cond))                                                                                \
      {                                                                                            \
        if (g_get_monotonic_time () > deadline_)                                                   \
          g_error ("timed out waiting for %s", #cond);                                             \
        g_main_context_iteration (NULL, TRUE);                                                     \
      }                                                                                            \
    g_source_remove (wake_);                                                                       \
  }                                                                                                \
  G_STMT_END

/* Runs the context until nothing is ready for @idle_rounds iterations in a row. Fails if
 * that never happens: something is spinning. */
static void
spin_until_quiet (guint idle_rounds)
{
  gint64 deadline = g_get_monotonic_time () + DEADLINE_S * G_USEC_PER_SEC;
  guint idle = 0;

  while (idle < idle_rounds)
    {
      if (g_main_context_iteration (NULL, FALSE))
        idle = 0;
      else
        idle++;
      if (g_get_monotonic_time () > deadline)
        g_error ("the main context never went quiet");
    }
}

/* ---------------------------------------------------------------------------------
 * sockets */

static GSocketListener *listener;
static GSocketAddress *listen_address;

static void
make_pair (GSocketConnection **client, GSocketConnection **server)
{
  g_autoptr (GSocketClient) sc = g_socket_client_new ();
  g_autoptr (GError) error = NULL;

  if (listener == NULL)
    {
      g_autoptr (GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
      g_autoptr (GSocketAddress) addr = g_inet_socket_address_new (lo, 0);

      listener = g_socket_listener_new ();
      g_socket_listener_set_backlog (listener, 512);
      g_socket_listener_add_address (listener, addr, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP,
                                     NULL, &listen_address, &error);
      g_assert_no_error (error);
    }
  /* loopback: the handshake completes in the backlog, so connect and accept in turn */
  *client = g_socket_client_connect (sc, G_SOCKET_CONNECTABLE (listen_address), NULL, &error);
  g_assert_no_error (error);
  *server = g_socket_listener_accept (listener, NULL, NULL, &error);
  g_assert_no_error (error);
}

static GSocket *
conn_socket (GSocketConnection *conn)
{
  return g_socket_connection_get_socket (conn);
}

static void
set_buffers (GSocketConnection *conn, int size)
{
  g_autoptr (GError) error = NULL;

  g_socket_set_option (conn_socket (conn), SOL_SOCKET, SO_SNDBUF, size, &error);
  g_assert_no_error (error);
  g_socket_set_option (conn_socket (conn), SOL_SOCKET, SO_RCVBUF, size, &error);
  g_assert_no_error (error);
}

static GIOStream *
wrap (GSocketConnection *conn, gboolean buffered)
{
  GInputStream *in = g_io_stream_get_input_stream (G_IO_STREAM (conn));
  g_autoptr (GInputStream) bin = NULL;

  if (buffered)
    {
      bin = g_buffered_input_stream_new (in);
      in = bin;
    }
  return g_simple_io_stream_new (in, g_io_stream_get_output_stream (G_IO_STREAM (conn)));
}

static GBytes *
random_bytes (gsize size, guint32 seed)
{
  g_autoptr (GRand) rand = g_rand_new_with_seed (seed);
  guint32 *data = g_malloc (size);

  for (gsize i = 0; i < size / 4; i++)
    data[i] = g_rand_int (rand);
  return g_bytes_new_take (data, size);
}

static char *
sha256_of (GBytes *prefix, GBytes *data)
{
  g_autoptr (GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);

  if (prefix != NULL)
    g_checksum_update (sum, g_bytes_get_data (prefix, NULL), g_bytes_get_size (prefix));
  if (data != NULL)
    g_checksum_update (sum, g_bytes_get_data (data, NULL), g_bytes_get_size (data));
  return g_strdup (g_checksum_get_string (sum));
}

/* ---------------------------------------------------------------------------------
 * an output stream that counts the writes it passes on to a socket's output stream
 * (pollable, and over the same fd, so the relay still waits on the fd) */

#define TYPE_COUNTING_OUTPUT (counting_output_get_type ())
G_DECLARE_FINAL_TYPE (CountingOutput, counting_output, COUNTING, OUTPUT, GOutputStream)

struct _CountingOutput
{
  GOutputStream parent_instance;
  GOutputStream *base;
  guint n_writes; /* that took bytes */
  guint64 written;
};

static void counting_output_pollable_init (GPollableOutputStreamInterface *iface);
static void counting_output_fd_init (GFileDescriptorBasedIface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (CountingOutput, counting_output, G_TYPE_OUTPUT_STREAM,
                               G_IMPLEMENT_INTERFACE (G_TYPE_POLLABLE_OUTPUT_STREAM,
                                                      counting_output_pollable_init)
                                   G_IMPLEMENT_INTERFACE (G_TYPE_FILE_DESCRIPTOR_BASED,
                                                          counting_output_fd_init))

static void
counting_output_add (CountingOutput *self, gssize n)
{
  if (n > 0)
    {
      self->n_writes++;
      self->written += (guint64) n;
    }
}

static gssize
counting_output_write (GOutputStream *stream, const void *buffer, gsize count,
                       GCancellable *cancellable, GError **error)
{
  CountingOutput *self = COUNTING_OUTPUT (stream);
  gssize n = g_output_stream_write (self->base, buffer, count, cancellable, error);

  counting_output_add (self, n);
  return n;
}

/* the socket belongs to its connection: closing this stream leaves it alone */
static gboolean
counting_output_close (GOutputStream *stream, GCancellable *cancellable, GError **error)
{
  return TRUE;
}

static gboolean
counting_output_is_writable (GPollableOutputStream *stream)
{
  return g_pollable_output_stream_is_writable (
      G_POLLABLE_OUTPUT_STREAM (COUNTING_OUTPUT (stream)->base));
}

static GSource *
counting_output_create_source (GPollableOutputStream *stream, GCancellable *cancellable)
{
  CountingOutput *self = COUNTING_OUTPUT (stream);
  g_autoptr (GSource) base
      = g_pollable_output_stream_create_source (G_POLLABLE_OUTPUT_STREAM (self->base), NULL);

  return g_pollable_source_new_full (self, base, cancellable);
}

static gssize
counting_output_write_nonblocking (GPollableOutputStream *stream, const void *buffer, gsize count,
                                   GError **error)
{
  CountingOutput *self = COUNTING_OUTPUT (stream);
  gssize n = g_pollable_output_stream_write_nonblocking (G_POLLABLE_OUTPUT_STREAM (self->base),
                                                         buffer, count, NULL, error);

  counting_output_add (self, n);
  return n;
}

static int
counting_output_get_fd (GFileDescriptorBased *stream)
{
  return g_file_descriptor_based_get_fd (G_FILE_DESCRIPTOR_BASED (COUNTING_OUTPUT (stream)->base));
}

static void
counting_output_pollable_init (GPollableOutputStreamInterface *iface)
{
  iface->is_writable = counting_output_is_writable;
  iface->create_source = counting_output_create_source;
  iface->write_nonblocking = counting_output_write_nonblocking;
}

static void
counting_output_fd_init (GFileDescriptorBasedIface *iface)
{
  iface->get_fd = counting_output_get_fd;
}

static void
counting_output_finalize (GObject *object)
{
  g_clear_object (&COUNTING_OUTPUT (object)->base);
  G_OBJECT_CLASS (counting_output_parent_class)->finalize (object);
}

static void
counting_output_class_init (CountingOutputClass *klass)
{
  GOutputStreamClass *stream_class = G_OUTPUT_STREAM_CLASS (klass);

  G_OBJECT_CLASS (klass)->finalize = counting_output_finalize;
  stream_class->write_fn = counting_output_write;
  stream_class->close_fn = counting_output_close;
}

static void
counting_output_init (CountingOutput *self)
{
}

static CountingOutput *
counting_output_new (GOutputStream *base)
{
  CountingOutput *self = g_object_new (TYPE_COUNTING_OUTPUT, NULL);

  self->base = g_object_ref (base);
  return self;
}

/* ---------------------------------------------------------------------------------
 * TLS: a real handshake over loopback through glib-networking, with a test certificate */

static GTlsCertificate *tls_certificate;

static gboolean
accept_any_certificate (GTlsConnection *conn, GTlsCertificate *cert, GTlsCertificateFlags errors,
                        gpointer user_data)
{
  return TRUE;
}

static void
handshake_done (GObject *source, GAsyncResult *res, gpointer user_data)
{
  guint *n_done = user_data;
  g_autoptr (GError) error = NULL;

  g_tls_connection_handshake_finish (G_TLS_CONNECTION (source), res, &error);
  g_assert_no_error (error);
  (*n_done)++;
}

/* A TLS client over @client_conn and a TLS server over @server_conn, handshaken. */
static void
tls_pair (GSocketConnection *client_conn, GSocketConnection *server_conn, GIOStream **client,
          GIOStream **server)
{
  g_autoptr (GError) error = NULL;
  guint n_done = 0;

  *client = g_tls_client_connection_new (G_IO_STREAM (client_conn), NULL, &error);
  g_assert_no_error (error);
  g_signal_connect (*client, "accept-certificate", G_CALLBACK (accept_any_certificate), NULL);
  *server = g_tls_server_connection_new (G_IO_STREAM (server_conn), tls_certificate, &error);
  g_assert_no_error (error);
  g_tls_connection_handshake_async (G_TLS_CONNECTION (*client), G_PRIORITY_DEFAULT, NULL,
                                    handshake_done, &n_done);
  g_tls_connection_handshake_async (G_TLS_CONNECTION (*server), G_PRIORITY_DEFAULT, NULL,
                                    handshake_done, &n_done);
  SPIN_UNTIL (n_done == 2);
}

static char *tls_pin; /* the test certificate's SHA-256 */

/* The same with the data connections' TLS on both ends (GnuTLS on the sockets), the
 * client trusting the certificate by its pin. */
static void
data_tls_pair (GSocketConnection *client_conn, GSocketConnection *server_conn, GIOStream **client,
               GIOStream **server)
{
  g_autoptr (GError) error = NULL;
  ZltTlsOptions options = { NULL, tls_pin, FALSE };
  guint n_done = 0;

  *client = zlt_tls_data_client_new (client_conn, "127.0.0.1", &options, &error);
  g_assert_no_error (error);
  *server = zlt_tls_data_server_new (server_conn, tls_certificate, &error);
  g_assert_no_error (error);
  g_assert_true (G_IS_TLS_CONNECTION (*client));
  g_tls_connection_handshake_async (G_TLS_CONNECTION (*client), G_PRIORITY_DEFAULT, NULL,
                                    handshake_done, &n_done);
  g_tls_connection_handshake_async (G_TLS_CONNECTION (*server), G_PRIORITY_DEFAULT, NULL,
                                    handshake_done, &n_done);
  SPIN_UNTIL (n_done == 2);
}

/* ---------------------------------------------------------------------------------
 * an endpoint: sends some bytes, reads to the end, hashes what it got */

typedef struct
{
  GSocketConnection *conn;
  GIOStream *stream; /* conn, or a TLS connection over it */
  GCancellable *cancellable;
  GBytes *send;
  gboolean send_after_eof;      /* reply only once the peer has finished */
  gboolean shutdown_after_send; /* shut the write side once all is sent */
  gboolean paused;              /* not reading */
  gboolean reading;
  gboolean sent;
  gboolean eof;
  guint pending;
  guint64 received;
  GChecksum *sum;
  GError *error;
  guint8 *rbuf;
} Endpoint;

#define ENDPOINT_READ_SIZE (64 * 1024)

static void endpoint_read (Endpoint *ep);
static void endpoint_send (Endpoint *ep);

static Endpoint *
endpoint_new (GSocketConnection *conn, GBytes *send)
{
  Endpoint *ep = g_new0 (Endpoint, 1);

  ep->conn = g_object_ref (conn);
  ep->stream = g_object_ref (G_IO_STREAM (conn));
  ep->cancellable = g_cancellable_new ();
  ep->send = send != NULL ? g_bytes_ref (send) : NULL;
  ep->shutdown_after_send = TRUE;
  ep->sum = g_checksum_new (G_CHECKSUM_SHA256);
  ep->rbuf = g_malloc (ENDPOINT_READ_SIZE);
  return ep;
}

static void
endpoint_set_error (Endpoint *ep, GError *error)
{
  if (ep->error == NULL)
    ep->error = error;
  else
    g_error_free (error);
}

static void
endpoint_close_out_done (GObject *source, GAsyncResult *res, gpointer user_data)
{
  Endpoint *ep = user_data;
  GError *error = NULL;

  ep->pending--;
  if (!g_output_stream_close_finish (G_OUTPUT_STREAM (source), res, &error))
    endpoint_set_error (ep, error);
}

/* Ends the write side: FIN, or for TLS close_notify (reading goes on). */
static void
endpoint_shutdown (Endpoint *ep)
{
  if (G_IS_TLS_CONNECTION (ep->stream))
    {
      ep->pending++;
      g_output_stream_close_async (g_io_stream_get_output_stream (ep->stream), G_PRIORITY_DEFAULT,
                                   ep->cancellable, endpoint_close_out_done, ep);
      return;
    }
  g_socket_shutdown (conn_socket (ep->conn), FALSE, TRUE, NULL);
}

static void
endpoint_write_done (GObject *source, GAsyncResult *res, gpointer user_data)
{
  Endpoint *ep = user_data;
  GError *error = NULL;

  ep->pending--;
  if (!g_output_stream_write_all_finish (G_OUTPUT_STREAM (source), res, NULL, &error))
    {
      endpoint_set_error (ep, error);
      return;
    }
  ep->sent = TRUE;
  if (ep->shutdown_after_send)
    endpoint_shutdown (ep);
}

static void
endpoint_send (Endpoint *ep)
{
  GOutputStream *out = g_io_stream_get_output_stream (ep->stream);

  if (ep->send == NULL)
    {
      ep->sent = TRUE;
      if (ep->shutdown_after_send)
        endpoint_shutdown (ep);
      return;
    }
  ep->pending++;
  g_output_stream_write_all_async (out, g_bytes_get_data (ep->send, NULL),
                                   g_bytes_get_size (ep->send), G_PRIORITY_DEFAULT, ep->cancellable,
                                   endpoint_write_done, ep);
}

static void
endpoint_read_done (GObject *source, GAsyncResult *res, gpointer user_data)
{
  Endpoint *ep = user_data;
  GError *error = NULL;
  gssize n = g_input_stream_read_finish (G_INPUT_STREAM (source), res, &error);

  ep->pending--;
  ep->reading = FALSE;
  if (n < 0)
    {
      endpoint_set_error (ep, error);
      return;
    }
  if (n == 0)
    {
      ep->eof = TRUE;
      if (ep->send_after_eof)
        endpoint_send (ep);
      return;
    }
  g_checksum_update (ep->sum, ep->rbuf, n);
  ep->received += n;
  if (!ep->paused)
    endpoint_read (ep);
}

static void
endpoint_read (Endpoint *ep)
{
  GInputStream *in = g_io_stream_get_input_stream (ep->stream);

  ep->reading = TRUE;
  ep->pending++;
  g_input_stream_read_async (in, ep->rbuf, ENDPOINT_READ_SIZE, G_PRIORITY_DEFAULT, ep->cancellable,
                             endpoint_read_done, ep);
}

static void
endpoint_start (Endpoint *ep)
{
  if (!ep->send_after_eof)
    endpoint_send (ep);
  if (!ep->paused)
    endpoint_read (ep);
}

static void
endpoint_resume (Endpoint *ep)
{
  ep->paused = FALSE;
  if (!ep->reading && !ep->eof && ep->error == NULL)
    endpoint_read (ep);
}

/* reached the end of its input, cleanly or not */
static gboolean
endpoint_ended (Endpoint *ep)
{
  return ep->eof || (ep->error != NULL && !ep->reading);
}

static void
endpoint_free (Endpoint *ep)
{
  g_cancellable_cancel (ep->cancellable);
  SPIN_UNTIL (ep->pending == 0);
  g_io_stream_close (ep->stream, NULL, NULL);
  g_io_stream_close (G_IO_STREAM (ep->conn), NULL, NULL);
  g_object_unref (ep->stream);
  g_object_unref (ep->conn);
  g_object_unref (ep->cancellable);
  g_clear_pointer (&ep->send, g_bytes_unref);
  g_checksum_free (ep->sum);
  g_clear_error (&ep->error);
  g_free (ep->rbuf);
  g_free (ep);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Endpoint, endpoint_free)

/* ---------------------------------------------------------------------------------
 * a relay between client and server:
 *   client <-> relay_a  [ZltRelay]  relay_b <-> server */

typedef struct
{
  GSocketConnection *client;
  GSocketConnection *relay_a;
  GSocketConnection *relay_b;
  GSocketConnection *server;
  GIOStream *server_stream; /* server, or the TLS connection over it */
  GIOStream *a;
  GIOStream *b;
  gboolean count_writes; /* a's output counts the writes (set before fixture_init) */
  gboolean a_no_fd;      /* a's input is not over an fd (a UDP flow's shape; ditto) */
  CountingOutput *a_out; /* then that output */
  ZltRelay *relay;       /* a weak pointer once started */
  guint finished;
  GError *error;
  guint64 counted_ab;
  guint64 counted_ba;
  gsize max_buffered;
  gboolean counter_destroyed;
  /* as the relay had them at ::finished */
  guint64 final_ab;
  guint64 final_ba;
  gsize final_buffered;
} Fixture;

static void
on_finished (ZltRelay *relay, const GError *error, gpointer user_data)
{
  Fixture *f = user_data;

  f->finished++;
  g_clear_error (&f->error);
  if (error != NULL)
    f->error = g_error_copy (error);
  g_assert_false (zlt_relay_is_running (relay));
  g_object_get (relay, "bytes-a-to-b", &f->final_ab, "bytes-b-to-a", &f->final_ba, NULL);
  g_assert_cmpuint (f->final_ab, ==, zlt_relay_get_bytes_a_to_b (relay));
  g_assert_cmpuint (f->final_ba, ==, zlt_relay_get_bytes_b_to_a (relay));
  f->final_buffered = zlt_relay_get_buffered_bytes (relay);
  /* the counter func has heard of every byte by now */
  g_assert_cmpuint (f->counted_ab, ==, f->final_ab);
  g_assert_cmpuint (f->counted_ba, ==, f->final_ba);
}

static void
on_counter (guint64 a_to_b, guint64 b_to_a, gpointer user_data)
{
  Fixture *f = user_data;

  g_assert_true (a_to_b > 0 || b_to_a > 0);
  f->counted_ab += a_to_b;
  f->counted_ba += b_to_a;
  f->max_buffered = MAX (f->max_buffered, zlt_relay_get_buffered_bytes (f->relay));
}

static void
on_counter_destroy (gpointer user_data)
{
  Fixture *f = user_data;

  f->counter_destroyed = TRUE;
}

static void
fixture_init (Fixture *f, Mode mode, int buffer_size)
{
  make_pair (&f->client, &f->relay_a);
  make_pair (&f->relay_b, &f->server);
  if (buffer_size > 0)
    {
      set_buffers (f->client, buffer_size);
      set_buffers (f->relay_a, buffer_size);
      set_buffers (f->relay_b, buffer_size);
      set_buffers (f->server, buffer_size);
    }
  switch (mode)
    {
    case MODE_ZERO_COPY:
      f->a = g_object_ref (G_IO_STREAM (f->relay_a));
      f->b = g_object_ref (G_IO_STREAM (f->relay_b));
      break;
    case MODE_POLLABLE:
      f->a = g_object_ref (G_IO_STREAM (f->relay_a));
      f->b = wrap (f->relay_b, FALSE);
      break;
    case MODE_MIXED:
      f->a = wrap (f->relay_a, TRUE);
      f->b = g_object_ref (G_IO_STREAM (f->relay_b));
      break;
    case MODE_ASYNC:
      f->a = wrap (f->relay_a, TRUE);
      f->b = wrap (f->relay_b, TRUE);
      break;
    case MODE_TLS:
      f->a = g_object_ref (G_IO_STREAM (f->relay_a));
      tls_pair (f->relay_b, f->server, &f->b, &f->server_stream);
      break;
    case MODE_DATA_TLS:
      f->a = g_object_ref (G_IO_STREAM (f->relay_a));
      data_tls_pair (f->relay_b, f->server, &f->b, &f->server_stream);
      break;
    default:
      g_assert_not_reached ();
    }
  if (f->server_stream == NULL)
    f->server_stream = g_object_ref (G_IO_STREAM (f->server));
  if (f->count_writes)
    {
      g_assert_true (mode == MODE_POLLABLE || MODE_IS_TLS (mode));
      g_clear_object (&f->a);
      f->a_out = counting_output_new (g_io_stream_get_output_stream (G_IO_STREAM (f->relay_a)));
      f->a = g_simple_io_stream_new (g_io_stream_get_input_stream (G_IO_STREAM (f->relay_a)),
                                     G_OUTPUT_STREAM (f->a_out));
    }
  if (f->a_no_fd)
    {
      g_autoptr (GInputStream) bin
          = g_buffered_input_stream_new (g_io_stream_get_input_stream (G_IO_STREAM (f->relay_a)));
      GOutputStream *out = f->a_out != NULL
                               ? G_OUTPUT_STREAM (f->a_out)
                               : g_io_stream_get_output_stream (G_IO_STREAM (f->relay_a));

      g_clear_object (&f->a);
      f->a = g_simple_io_stream_new (bin, out);
    }
  f->relay = zlt_relay_new (f->a, f->b);
  g_assert_cmpint (zlt_relay_is_zero_copy (f->relay), ==, mode == MODE_ZERO_COPY);
  g_signal_connect (f->relay, "finished", G_CALLBACK (on_finished), f);
  zlt_relay_set_counter_func (f->relay, on_counter, f, on_counter_destroy);
}

/* Starts the relay and drops our reference: it must keep itself alive. */
static void
fixture_start (Fixture *f)
{
  zlt_relay_start (f->relay);
  g_assert_true (zlt_relay_is_running (f->relay));
  g_object_add_weak_pointer (G_OBJECT (f->relay), (gpointer *) &f->relay);
  g_object_unref (f->relay);
  g_assert_nonnull (f->relay);
}

static void
fixture_clear (Fixture *f)
{
  /* the relay went away once it had finished, and let go of the counter's data */
  SPIN_UNTIL (f->relay == NULL);
  g_assert_true (f->counter_destroyed);
  g_assert_cmpuint (f->finished, ==, 1);
  /* its streams were closed */
  SPIN_UNTIL (g_io_stream_is_closed (f->a) && g_io_stream_is_closed (f->b));
  g_io_stream_close (G_IO_STREAM (f->relay_a), NULL, NULL);
  g_io_stream_close (G_IO_STREAM (f->relay_b), NULL, NULL);
  g_clear_object (&f->a);
  g_clear_object (&f->b);
  g_clear_object (&f->client);
  g_clear_object (&f->relay_a);
  g_clear_object (&f->relay_b);
  g_clear_object (&f->server);
  g_clear_object (&f->server_stream);
  g_clear_object (&f->a_out);
  g_clear_error (&f->error);
  spin_until_quiet (10);
}

/* An endpoint on the server's end of the fixture (TLS in the TLS modes). */
static Endpoint *
server_endpoint_new (Fixture *f, GBytes *send)
{
  Endpoint *ep = endpoint_new (f->server, send);

  g_set_object (&ep->stream, f->server_stream);
  return ep;
}

/* ---------------------------------------------------------------------------------
 * tests */

#define BIG (8 * 1024 * 1024)

static void
test_transfer (gconstpointer data)
{
  Mode mode = GPOINTER_TO_INT (data);
  Fixture f = { 0 };
  g_autoptr (GBytes) up = random_bytes (BIG, 1);
  g_autoptr (GBytes) down = random_bytes (BIG, 2);
  g_autoptr (GBytes) prefix_up = g_bytes_new_static ("GET / HTTP/1.1\r\n", 16);
  g_autoptr (GBytes) prefix_down = g_bytes_new_static ("HTTP/1.1 101 Switching\r\n", 24);
  g_autoptr (Endpoint) client = NULL;
  g_autoptr (Endpoint) server = NULL;
  g_autofree char *want_up = sha256_of (prefix_up, up);
  g_autofree char *want_down = sha256_of (prefix_down, down);

  fixture_init (&f, mode, 0);
  zlt_relay_set_prefix (f.relay, ZLT_RELAY_A_TO_B, prefix_up);
  zlt_relay_set_prefix (f.relay, ZLT_RELAY_B_TO_A, prefix_down);
  client = endpoint_new (f.client, up);
  server = server_endpoint_new (&f, down);
  endpoint_start (client);
  endpoint_start (server);
  fixture_start (&f);

  SPIN_UNTIL (f.finished > 0 && client->eof && server->eof);
  g_assert_no_error (f.error);
  g_assert_no_error (client->error);
  g_assert_no_error (server->error);
  g_assert_cmpuint (server->received, ==, BIG + 16);
  g_assert_cmpuint (client->received, ==, BIG + 24);
  g_assert_cmpstr (g_checksum_get_string (server->sum), ==, want_up);
  g_assert_cmpstr (g_checksum_get_string (client->sum), ==, want_down);

  /* counters: properties, getters and the counter func agree (see on_finished) */
  g_assert_cmpuint (f.final_ab, ==, BIG + 16);
  g_assert_cmpuint (f.final_ba, ==, BIG + 24);
  g_assert_cmpuint (f.final_buffered, ==, 0);
  g_assert_cmpuint (f.finished, ==, 1);

  fixture_clear (&f);
}

static void
test_half_close (gconstpointer data)
{
  Mode mode = GPOINTER_TO_INT (data);
  Fixture f = { 0 };
  g_autoptr (GBytes) request = random_bytes (100 * 1024, 3);
  g_autoptr (GBytes) reply = random_bytes (1024 * 1024, 4);
  g_autoptr (Endpoint) client = NULL;
  g_autoptr (Endpoint) server = NULL;
  g_autofree char *want_request = sha256_of (NULL, request);
  g_autofree char *want_reply = sha256_of (NULL, reply);

  fixture_init (&f, mode, 0);
  client = endpoint_new (f.client, request);
  server = server_endpoint_new (&f, reply);
  server->send_after_eof = TRUE; /* answers only after the request has ended */
  endpoint_start (client);
  endpoint_start (server);
  fixture_start (&f);

  /* the request arrives whole and ends; the relay goes on for the reply */
  SPIN_UNTIL (server->eof);
  g_assert_cmpstr (g_checksum_get_string (server->sum), ==, want_request);
  g_assert_cmpuint (f.finished, ==, 0);

  SPIN_UNTIL (client->eof && f.finished > 0);
  g_assert_no_error (f.error);
  g_assert_no_error (client->error);
  g_assert_no_error (server->error);
  g_assert_true (server->sent);
  g_assert_cmpuint (client->received, ==, 1024 * 1024);
  g_assert_cmpstr (g_checksum_get_string (client->sum), ==, want_reply);

  spin_until_quiet (10);
  g_assert_cmpuint (f.finished, ==, 1);
  fixture_clear (&f);
}

static void
test_backpressure (gconstpointer data)
{
  Mode mode = GPOINTER_TO_INT (data);
  Fixture f = { 0 };
  gsize total = 16 * 1024 * 1024;
  g_autoptr (GBytes) up = random_bytes (total, 5);
  g_autoptr (Endpoint) client = NULL;
  g_autoptr (Endpoint) server = NULL;
  g_autofree char *want = sha256_of (NULL, up);
  gsize bound = mode == MODE_ZERO_COPY ? ZLT_RELAY_PIPE_SIZE : ZLT_RELAY_CHUNK_SIZE;

  /* small kernel buffers, so 16 MiB cannot hide in them */
  fixture_init (&f, mode, 64 * 1024);
  client = endpoint_new (f.client, up);
  server = server_endpoint_new (&f, NULL);
  server->paused = TRUE;
  endpoint_start (client);
  endpoint_start (server);
  fixture_start (&f);

  /* the server reads nothing: everything stalls, and nothing spins */
  spin_until_quiet (200);
  g_assert_false (client->sent);
  g_assert_cmpuint (server->received, ==, 0);
  g_assert_cmpuint (zlt_relay_get_bytes_a_to_b (f.relay), <, total / 2);
  g_assert_cmpuint (zlt_relay_get_buffered_bytes (f.relay), <=, bound);
  g_test_message ("stalled after %" G_GUINT64_FORMAT " bytes relayed, %" G_GSIZE_FORMAT
                  " buffered in the relay",
                  zlt_relay_get_bytes_a_to_b (f.relay), zlt_relay_get_buffered_bytes (f.relay));

  endpoint_resume (server);
  SPIN_UNTIL (server->eof && client->eof && f.finished > 0);
  g_assert_no_error (f.error);
  g_assert_no_error (server->error);
  g_assert_cmpuint (server->received, ==, total);
  g_assert_cmpstr (g_checksum_get_string (server->sum), ==, want);
  g_assert_cmpuint (f.max_buffered, <=, bound);

  fixture_clear (&f);
}

/* The same the other way: the server sends, the client does not read. In TLS mode this
 * is the decrypting direction, which reads several records per write: it must still
 * stop reading while the client takes nothing. */
static void
test_backpressure_back (gconstpointer data)
{
  Mode mode = GPOINTER_TO_INT (data);
  Fixture f = { 0 };
  gsize total = 16 * 1024 * 1024;
  g_autoptr (GBytes) down = random_bytes (total, 10);
  g_autoptr (Endpoint) client = NULL;
  g_autoptr (Endpoint) server = NULL;
  g_autofree char *want = sha256_of (NULL, down);
  gsize bound = mode == MODE_ZERO_COPY ? ZLT_RELAY_PIPE_SIZE : ZLT_RELAY_CHUNK_SIZE;

  fixture_init (&f, mode, 64 * 1024);
  client = endpoint_new (f.client, NULL);
  client->paused = TRUE;
  server = server_endpoint_new (&f, down);
  endpoint_start (client);
  endpoint_start (server);
  fixture_start (&f);

  spin_until_quiet (200);
  g_assert_false (server->sent);
  g_assert_cmpuint (client->received, ==, 0);
  g_assert_cmpuint (zlt_relay_get_bytes_b_to_a (f.relay), <, total / 2);
  g_assert_cmpuint (zlt_relay_get_buffered_bytes (f.relay), <=, bound);
  g_test_message ("stalled after %" G_GUINT64_FORMAT " bytes relayed, %" G_GSIZE_FORMAT
                  " buffered in the relay",
                  zlt_relay_get_bytes_b_to_a (f.relay), zlt_relay_get_buffered_bytes (f.relay));

  endpoint_resume (client);
  SPIN_UNTIL (server->eof && client->eof && f.finished > 0);
  g_assert_no_error (f.error);
  g_assert_no_error (client->error);
  g_assert_cmpuint (client->received, ==, total);
  g_assert_cmpstr (g_checksum_get_string (client->sum), ==, want);
  g_assert_cmpuint (f.max_buffered, <=, bound);

  fixture_clear (&f);
}

#define TLS_RECORD (16 * 1024)

/* A TLS source is read record after record until the chunk buffer is full or the
 * source would block, then written at once: records queued before the relay starts
 * reach the plain side in a few writes, not one each. */
static void
test_tls_batching (gconstpointer mode_data)
{
  Fixture f = { .count_writes = TRUE };
  gsize n_records = 24;
  gsize size = n_records * TLS_RECORD;
  g_autoptr (GBytes) down = random_bytes (size, 11);
  g_autoptr (GBytes) rest = NULL;
  g_autoptr (Endpoint) client = NULL;
  g_autoptr (Endpoint) server = NULL;
  g_autofree char *want = sha256_of (NULL, down);
  const guint8 *data = g_bytes_get_data (down, NULL);
  GPollableOutputStream *out;
  gsize queued = 0;
  guint max_writes;

  fixture_init (&f, GPOINTER_TO_INT (mode_data), 1024 * 1024);
  /* all of it into the kernel's buffers before the relay runs (what does not fit goes
   * once it runs) */
  out = G_POLLABLE_OUTPUT_STREAM (g_io_stream_get_output_stream (f.server_stream));
  while (queued < size)
    {
      g_autoptr (GError) error = NULL;
      gssize n = g_pollable_output_stream_write_nonblocking (out, data + queued, size - queued,
                                                             NULL, &error);

      if (n < 0)
        {
          g_assert_error (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK);
          break;
        }
      queued += (gsize) n;
    }
  g_test_message ("%" G_GSIZE_FORMAT " of %" G_GSIZE_FORMAT " bytes queued before the start",
                  queued, size);
  g_assert_cmpuint (queued, >=, size / 2);
  rest = g_bytes_new_from_bytes (down, queued, size - queued);
  client = endpoint_new (f.client, NULL);
  server = server_endpoint_new (&f, rest);
  endpoint_start (client);
  endpoint_start (server);
  fixture_start (&f);

  SPIN_UNTIL (server->eof && client->eof && f.finished > 0);
  g_assert_no_error (f.error);
  g_assert_no_error (client->error);
  g_assert_no_error (server->error);
  g_assert_cmpuint (client->received, ==, size);
  g_assert_cmpstr (g_checksum_get_string (client->sum), ==, want);
  g_assert_cmpuint (f.a_out->written, ==, size);
  /* the queued records: a chunk's worth per write; the rest may come one by one */
  max_writes = 2 + (queued + ZLT_RELAY_CHUNK_SIZE - 1) / ZLT_RELAY_CHUNK_SIZE
               + (size - queued + TLS_RECORD - 1) / TLS_RECORD;
  g_test_message ("%zu records in %u writes", n_records, f.a_out->n_writes);
  g_assert_cmpuint (f.a_out->n_writes, <=, max_writes);
  g_assert_cmpuint (f.a_out->n_writes, <, n_records);

  fixture_clear (&f);
}

/* Many small TLS records both ways, queued before the relay starts so that they come
 * off the sockets many at a time: nothing is lost or reordered. Our data TLS reads
 * ahead (many records per recv) and the relay reads on while whole records wait in it,
 * so the records reach the plain side in a few large writes, also when that side has no
 * fd (a UDP flow's shape: the relay waits on the TLS socket's fd for input and on the
 * plain side's own source for output). glib-networking's reads a record at a time. */
typedef enum
{
  SMALL_DATA_TLS,       /* our TLS, both sides over fds */
  SMALL_DATA_TLS_NO_FD, /* our TLS, the plain side without an fd */
  SMALL_TLS,            /* glib-networking's, both over fds */
} SmallVariant;

static GBytes *
small_messages (guint n, guint seed, GArray *sizes)
{
  g_autoptr (GByteArray) all = g_byte_array_new ();

  for (guint i = 0; i < n; i++)
    {
      guint len = 1 + (i * 37 + seed) % 300;

      g_array_append_val (sizes, len);
      for (guint k = 0; k < len; k++)
        {
          guint8 b = (guint8) (i * 7 + k + seed);

          g_byte_array_append (all, &b, 1);
        }
    }
  return g_byte_array_free_to_bytes (g_steal_pointer (&all));
}

static void
test_small_records (gconstpointer data)
{
  SmallVariant variant = GPOINTER_TO_INT (data);
  Fixture f = { .count_writes = variant != SMALL_DATA_TLS_NO_FD,
                .a_no_fd = variant == SMALL_DATA_TLS_NO_FD };
  guint n = under_valgrind ? 300 : 2000;
  g_autoptr (GArray) down_sizes = g_array_new (FALSE, FALSE, sizeof (guint));
  g_autoptr (GArray) up_sizes = g_array_new (FALSE, FALSE, sizeof (guint));
  g_autoptr (GBytes) down = small_messages (n, 3, down_sizes);
  g_autoptr (GBytes) up = small_messages (n, 11, up_sizes);
  g_autofree char *want_down = sha256_of (NULL, down);
  g_autofree char *want_up = sha256_of (NULL, up);
  g_autoptr (Endpoint) client = NULL;
  g_autoptr (Endpoint) server = NULL;
  GPollableOutputStream *out;
  const guint8 *p;
  gsize off;

  fixture_init (&f, variant == SMALL_TLS ? MODE_TLS : MODE_DATA_TLS, 1024 * 1024);
  /* one record per message from the server's end, one send per message from the client */
  out = G_POLLABLE_OUTPUT_STREAM (g_io_stream_get_output_stream (f.server_stream));
  p = g_bytes_get_data (down, NULL);
  off = 0;
  for (guint i = 0; i < n; i++)
    {
      g_autoptr (GError) error = NULL;
      guint len = g_array_index (down_sizes, guint, i);
      gssize w = g_pollable_output_stream_write_nonblocking (out, p + off, len, NULL, &error);

      g_assert_no_error (error);
      g_assert_cmpint (w, ==, len);
      off += len;
    }
  p = g_bytes_get_data (up, NULL);
  off = 0;
  for (guint i = 0; i < n; i++)
    {
      g_autoptr (GError) error = NULL;
      guint len = g_array_index (up_sizes, guint, i);
      gssize w = g_socket_send (conn_socket (f.client), (const char *) p + off, len, NULL, &error);

      g_assert_no_error (error);
      g_assert_cmpint (w, ==, len);
      off += len;
    }
  client = endpoint_new (f.client, NULL);
  server = server_endpoint_new (&f, NULL);
  endpoint_start (client);
  endpoint_start (server);
  fixture_start (&f);

  SPIN_UNTIL (server->eof && client->eof && f.finished > 0);
  g_assert_no_error (f.error);
  g_assert_no_error (client->error);
  g_assert_no_error (server->error);
  g_assert_cmpuint (client->received, ==, g_bytes_get_size (down));
  g_assert_cmpstr (g_checksum_get_string (client->sum), ==, want_down);
  g_assert_cmpuint (server->received, ==, g_bytes_get_size (up));
  g_assert_cmpstr (g_checksum_get_string (server->sum), ==, want_up);
  if (f.a_out != NULL)
    {
      g_assert_cmpuint (f.a_out->written, ==, g_bytes_get_size (down));
      g_test_message ("%u records in %u writes", n, f.a_out->n_writes);
      if (variant != SMALL_TLS)
        g_assert_cmpuint (f.a_out->n_writes, <=, n / 8);
    }

  fixture_clear (&f);
}

/* Busy-waits (the main context iterating, nothing else attached) for @len bytes. */
static void
stream_read_exact (GIOStream *stream, gsize len)
{
  GPollableInputStream *in = G_POLLABLE_INPUT_STREAM (g_io_stream_get_input_stream (stream));
  gint64 deadline = g_get_monotonic_time () + DEADLINE_S * G_USEC_PER_SEC;
  char buf[64];
  gsize got = 0;

  g_assert_cmpuint (len, <=, sizeof buf);
  while (got < len)
    {
      g_autoptr (GError) error = NULL;
      gssize n = g_pollable_input_stream_read_nonblocking (in, buf + got, len - got, NULL, &error);

      g_assert_cmpint (n, !=, 0);
      if (n > 0)
        {
          got += (gsize) n;
          continue;
        }
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK);
      if (g_get_monotonic_time () > deadline)
        g_error ("timed out waiting for %" G_GSIZE_FORMAT " bytes", len);
      g_main_context_iteration (NULL, FALSE);
    }
}

static void
stream_write (GIOStream *stream, const char *data, gsize len)
{
  GPollableOutputStream *out = G_POLLABLE_OUTPUT_STREAM (g_io_stream_get_output_stream (stream));
  g_autoptr (GError) error = NULL;

  /* a few bytes into an empty socket buffer */
  g_assert_cmpint (g_pollable_output_stream_write_nonblocking (out, data, len, NULL, &error), ==,
                   (gssize) len);
  g_assert_no_error (error);
}

/* The id the next source attached to the main context gets: GLib counts them. */
static guint
next_source_id (void)
{
  g_autoptr (GSource) probe = g_idle_source_new ();
  guint id = g_source_attach (probe, NULL);

  g_source_destroy (probe);
  return id;
}

/* Request and response: a relay whose directions wait on fds (zero copy, sockets,
 * TLS over sockets) makes no GSource per wait: its own stays attached throughout. */
static void
test_no_source_churn (gconstpointer data)
{
  Mode mode = GPOINTER_TO_INT (data);
  Fixture f = { 0 };
  guint rounds = 50;
  guint first;
  guint made;

  fixture_init (&f, mode, 0);
  fixture_start (&f);
  /* once round: the relay's start may make what it needs */
  stream_write (G_IO_STREAM (f.client), "ping", 4);
  stream_read_exact (f.server_stream, 4);
  stream_write (f.server_stream, "pong", 4);
  stream_read_exact (G_IO_STREAM (f.client), 4);

  first = next_source_id ();
  for (guint i = 0; i < rounds; i++)
    {
      stream_write (G_IO_STREAM (f.client), "ping", 4);
      stream_read_exact (f.server_stream, 4);
      stream_write (f.server_stream, "pong", 4);
      stream_read_exact (G_IO_STREAM (f.client), 4);
    }
  made = next_source_id () - first - 1;
  g_test_message ("%u round trips: %u sources attached", rounds, made);
  g_assert_cmpuint (made, <, 4);
  g_assert_cmpuint (zlt_relay_get_bytes_a_to_b (f.relay), ==, 4 * (rounds + 1));
  g_assert_cmpuint (f.counted_ba, ==, 4 * (rounds + 1));

  zlt_relay_close (f.relay);
  fixture_clear (&f);
}

static void
test_close (gconstpointer data)
{
  Mode mode = GPOINTER_TO_INT (data);
  Fixture f = { 0 };
  g_autoptr (GBytes) ping = g_bytes_new_static ("ping", 4);
  g_autoptr (Endpoint) client = NULL;
  g_autoptr (Endpoint) server = NULL;

  fixture_init (&f, mode, 0);
  client = endpoint_new (f.client, ping);
  client->shutdown_after_send = FALSE;
  server = server_endpoint_new (&f, NULL);
  server->shutdown_after_send = FALSE;
  endpoint_start (client);
  endpoint_start (server);
  fixture_start (&f);

  SPIN_UNTIL (server->received == 4);
  g_assert_cmpuint (f.finished, ==, 0);
  zlt_relay_close (f.relay);
  g_assert_cmpuint (f.finished, ==, 1);
  g_assert_error (f.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);

  /* both peers see the end; for wrapped streams the socket goes when its owner closes it */
  if (mode != MODE_ZERO_COPY)
    {
      SPIN_UNTIL (g_io_stream_is_closed (f.a) && g_io_stream_is_closed (f.b));
      g_io_stream_close (G_IO_STREAM (f.relay_a), NULL, NULL);
      g_io_stream_close (G_IO_STREAM (f.relay_b), NULL, NULL);
    }
  SPIN_UNTIL (endpoint_ended (client) && endpoint_ended (server));
  if (f.relay != NULL)
    zlt_relay_close (f.relay); /* a no-op once finished */
  g_assert_cmpuint (f.finished, ==, 1);
  fixture_clear (&f);
}

static void
test_reset (gconstpointer data)
{
  Mode mode = GPOINTER_TO_INT (data);
  Fixture f = { 0 };
  g_autoptr (GBytes) some = random_bytes (64 * 1024, 6);
  g_autoptr (Endpoint) client = NULL;
  g_autoptr (Endpoint) server = NULL;
  g_autoptr (GError) error = NULL;

  fixture_init (&f, mode, 0);
  client = endpoint_new (f.client, some);
  client->shutdown_after_send = FALSE;
  server = server_endpoint_new (&f, NULL);
  server->shutdown_after_send = FALSE;
  endpoint_start (client);
  endpoint_start (server);
  fixture_start (&f);

  SPIN_UNTIL (server->received == 64 * 1024);
  /* SO_LINGER 0: close sends RST */
  {
    struct linger lg = { .l_onoff = 1, .l_linger = 0 };

    g_assert_true (
        setsockopt (g_socket_get_fd (conn_socket (f.client)), SOL_SOCKET, SO_LINGER, &lg, sizeof lg)
        == 0);
  }
  g_cancellable_cancel (client->cancellable);
  SPIN_UNTIL (client->pending == 0);
  g_socket_close (conn_socket (f.client), &error);
  g_assert_no_error (error);

  SPIN_UNTIL (f.finished > 0);
  g_assert_nonnull (f.error);
  g_test_message ("relay ended with: %s", f.error->message);
  g_assert_false (g_error_matches (f.error, G_IO_ERROR, G_IO_ERROR_CANCELLED));
  if (mode != MODE_ZERO_COPY)
    {
      SPIN_UNTIL (g_io_stream_is_closed (f.a) && g_io_stream_is_closed (f.b));
      g_io_stream_close (G_IO_STREAM (f.relay_a), NULL, NULL);
      g_io_stream_close (G_IO_STREAM (f.relay_b), NULL, NULL);
    }
  SPIN_UNTIL (endpoint_ended (server));
  g_assert_cmpuint (f.finished, ==, 1);
  fixture_clear (&f);
}

static void
test_close_before_start (void)
{
  Fixture f = { 0 };

  fixture_init (&f, MODE_ZERO_COPY, 0);
  zlt_relay_close (f.relay);
  g_assert_cmpuint (f.finished, ==, 1);
  g_assert_error (f.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_false (zlt_relay_is_running (f.relay));
  g_clear_object (&f.relay);
  fixture_clear (&f);
}

#define N_CONCURRENT 200
#define SMALL (64 * 1024)

static guint
count_done (Fixture *fs, Endpoint **clients, Endpoint **servers)
{
  guint n = 0;

  for (guint i = 0; i < N_CONCURRENT; i++)
    if (fs[i].finished > 0 && clients[i]->eof && servers[i]->eof)
      n++;
  return n;
}

static void
test_concurrent (gconstpointer data)
{
  Mode mode = GPOINTER_TO_INT (data);
  Fixture *fs = g_new0 (Fixture, N_CONCURRENT);
  Endpoint *clients[N_CONCURRENT];
  Endpoint *servers[N_CONCURRENT];
  GBytes *ups[N_CONCURRENT];
  GBytes *downs[N_CONCURRENT];
  guint n_done = 0;

  for (guint i = 0; i < N_CONCURRENT; i++)
    {
      fixture_init (&fs[i], mode, 0);
      ups[i] = random_bytes (SMALL, 100 + i);
      downs[i] = random_bytes (SMALL, 1000 + i);
      clients[i] = endpoint_new (fs[i].client, ups[i]);
      servers[i] = server_endpoint_new (&fs[i], downs[i]);
    }
  for (guint i = 0; i < N_CONCURRENT; i++)
    {
      endpoint_start (clients[i]);
      endpoint_start (servers[i]);
      fixture_start (&fs[i]);
    }

  SPIN_UNTIL ((n_done = count_done (fs, clients, servers)) == N_CONCURRENT);

  for (guint i = 0; i < N_CONCURRENT; i++)
    {
      g_autofree char *want_up = sha256_of (NULL, ups[i]);
      g_autofree char *want_down = sha256_of (NULL, downs[i]);

      g_assert_no_error (fs[i].error);
      g_assert_cmpuint (servers[i]->received, ==, SMALL);
      g_assert_cmpuint (clients[i]->received, ==, SMALL);
      g_assert_cmpstr (g_checksum_get_string (servers[i]->sum), ==, want_up);
      g_assert_cmpstr (g_checksum_get_string (clients[i]->sum), ==, want_down);
      endpoint_free (clients[i]);
      endpoint_free (servers[i]);
      g_bytes_unref (ups[i]);
      g_bytes_unref (downs[i]);
      fixture_clear (&fs[i]);
    }
  g_free (fs);
}

/* ---------------------------------------------------------------------------------
 * how a relay ends, as the peers see it: FIN after a clean end, a TCP reset after a
 * failure (a peer's reset, zlt_relay_close(), the idle timeout) */

static int
conn_fd (GSocketConnection *conn)
{
  return g_socket_get_fd (conn_socket (conn));
}

static struct linger
get_linger (GSocketConnection *conn)
{
  struct linger lg = { 0 };
  socklen_t len = sizeof lg;

  g_assert_cmpint (getsockopt (conn_fd (conn), SOL_SOCKET, SO_LINGER, &lg, &len), ==, 0);
  return lg;
}

static gboolean
fd_ready (int fd)
{
  struct pollfd pfd = { .fd = fd, .events = POLLIN };

  return poll (&pfd, 1, 0) > 0;
}

/* Reads @conn (raw, nonblocking, spinning the main context while nothing is there) until
 * its peer ends it; returns 0 for a clean EOF, otherwise the errno of the failed read.
 * @n_read (optional) gets the bytes read on the way. */
static int
wait_end (GSocketConnection *conn, gsize *n_read)
{
  int fd = conn_fd (conn);
  gsize total = 0;
  char buf[16384];

  for (;;)
    {
      gssize n;

      SPIN_UNTIL (fd_ready (fd));
      n = recv (fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0)
        {
          total += (gsize) n;
          continue;
        }
      if (n < 0 && (errno == EAGAIN || errno == EINTR))
        continue;
      if (n_read != NULL)
        *n_read = total;
      return n == 0 ? 0 : errno;
    }
}

static void
send_raw (GSocketConnection *conn, const char *data, gsize len)
{
  g_assert_cmpint (send (conn_fd (conn), data, len, MSG_NOSIGNAL), ==, (gssize) len);
}

static void
recv_raw (GSocketConnection *conn, gsize len)
{
  char buf[256];
  gsize got = 0;

  g_assert_cmpuint (len, <=, sizeof buf);
  while (got < len)
    {
      gssize n;

      SPIN_UNTIL (fd_ready (conn_fd (conn)));
      n = recv (conn_fd (conn), buf + got, len - got, MSG_DONTWAIT);
      g_assert_cmpint (n, >, 0);
      got += (gsize) n;
    }
}

static void
reset_now (GSocketConnection *conn)
{
  struct linger lg = { .l_onoff = 1, .l_linger = 0 };

  g_assert_cmpint (setsockopt (conn_fd (conn), SOL_SOCKET, SO_LINGER, &lg, sizeof lg), ==, 0);
  g_socket_close (conn_socket (conn), NULL);
}

/* After the end: a stream that does not own its socket (the wrapped modes) leaves the
 * socket to its owner, whose close is what the peer sees. */
static void
fixture_owner_close (Fixture *f)
{
  SPIN_UNTIL (g_io_stream_is_closed (f->a) && g_io_stream_is_closed (f->b));
  g_io_stream_close (G_IO_STREAM (f->relay_a), NULL, NULL);
  g_io_stream_close (G_IO_STREAM (f->relay_b), NULL, NULL);
}

/* While it runs, the relay's sockets reset if the process dies; a clean end gives
 * linger back before closing, so bytes still queued in the kernel arrive, then FIN. */
static void
test_linger (gconstpointer data)
{
  Mode mode = GPOINTER_TO_INT (data);
  Fixture f = { 0 };
  gsize size = 256 * 1024;
  g_autoptr (GBytes) up = random_bytes (size, 7);
  g_autoptr (Endpoint) client = NULL;
  g_autoptr (Endpoint) server = NULL;
  g_autofree char *want = sha256_of (NULL, up);
  struct linger lg;
  /* small enough that the upload cannot all be in the server's receive queue, large
   * enough that TCP's window opens by whole segments: a few KiB against loopback's 64 KiB
   * MSS left the sender in zero-window probes, 6 s per case */
  int small = 65536;
  int queued_at_server = 0;

  fixture_init (&f, mode, 0);
  /* the server takes nothing until resumed: the upload ends up queued in the relay's
   * socket to it when the relay ends */
  g_socket_set_option (conn_socket (f.server), SOL_SOCKET, SO_RCVBUF, small, NULL);
  g_socket_set_option (conn_socket (f.relay_b), SOL_SOCKET, SO_SNDBUF, 4 * 1024 * 1024, NULL);
  lg = get_linger (f.relay_a);
  g_assert_cmpint (lg.l_onoff, ==, 0);
  client = endpoint_new (f.client, up);
  server = server_endpoint_new (&f, NULL);
  server->paused = TRUE;
  endpoint_start (client);
  endpoint_start (server);
  fixture_start (&f);

  /* running: both sockets reset on close */
  lg = get_linger (f.relay_a);
  g_assert_cmpint (lg.l_onoff, ==, 1);
  g_assert_cmpint (lg.l_linger, ==, 0);
  lg = get_linger (f.relay_b);
  g_assert_cmpint (lg.l_onoff, ==, 1);
  g_assert_cmpint (lg.l_linger, ==, 0);

  SPIN_UNTIL (f.finished > 0 && client->eof);
  g_assert_no_error (f.error);
  g_assert_cmpuint (f.final_ab, ==, size);
  g_assert_cmpuint (server->received, <, size);
  /* what the server's kernel holds is less than the upload: the rest was still queued
   * in the relay's socket when the relay ended, and must arrive all the same */
  g_assert_cmpint (ioctl (conn_fd (f.server), FIONREAD, &queued_at_server), ==, 0);
  g_test_message ("at the relay's end the server held %d of %" G_GSIZE_FORMAT " bytes",
                  queued_at_server, size);
  g_assert_cmpuint (server->received + queued_at_server, <, size);
  /* the sockets the relay did not close itself have linger off again */
  if (mode != MODE_ZERO_COPY)
    {
      SPIN_UNTIL (g_io_stream_is_closed (f.a) && g_io_stream_is_closed (f.b));
      if (!g_socket_is_closed (conn_socket (f.relay_a)))
        g_assert_cmpint (get_linger (f.relay_a).l_onoff, ==, 0);
      if (!g_socket_is_closed (conn_socket (f.relay_b)))
        g_assert_cmpint (get_linger (f.relay_b).l_onoff, ==, 0);
    }
  fixture_owner_close (&f);

  /* all queued bytes arrive after the close, then a clean EOF */
  endpoint_resume (server);
  SPIN_UNTIL (endpoint_ended (server));
  g_assert_no_error (server->error);
  g_assert_true (server->eof);
  g_assert_cmpuint (server->received, ==, size);
  g_assert_cmpstr (g_checksum_get_string (server->sum), ==, want);
  fixture_clear (&f);
}

/* One peer resets: the relay fails, and the other peer's read fails with ECONNRESET
 * instead of a clean EOF. Both ways round. */
static void
test_reset_propagates (gconstpointer data)
{
  Mode mode = GPOINTER_TO_INT (data);

  for (guint side = 0; side < 2; side++)
    {
      Fixture f = { 0 };
      GSocketConnection *resetter;
      GSocketConnection *other;
      gsize n_read = 0;

      fixture_init (&f, mode, 0);
      resetter = side == 0 ? f.client : f.server;
      other = side == 0 ? f.server : f.client;
      fixture_start (&f);

      send_raw (f.client, "ping", 4);
      recv_raw (f.server, 4);
      send_raw (f.server, "pong", 4);
      recv_raw (f.client, 4);
      /* bytes in flight toward the peer that resets: dropped with it */
      send_raw (other, "more", 4);
      reset_now (resetter);

      SPIN_UNTIL (f.finished > 0);
      g_assert_nonnull (f.error);
      g_test_message ("%s reset: relay ended with: %s", side == 0 ? "client" : "server",
                      f.error->message);
      g_assert_false (g_error_matches (f.error, G_IO_ERROR, G_IO_ERROR_CANCELLED));
      fixture_owner_close (&f);
      g_assert_cmpint (wait_end (other, &n_read), ==, ECONNRESET);
      g_assert_cmpuint (n_read, ==, 0);
      fixture_clear (&f);
    }
}

static gboolean
fd_hung_up (int fd)
{
  struct pollfd pfd = { .fd = fd, .events = POLLIN };

  return poll (&pfd, 1, 0) > 0 && (pfd.revents & (POLLHUP | POLLERR)) != 0;
}

/* zlt_relay_close() on a live relay is a cut: both peers see a reset. Then the same with
 * one direction already half-closed (its FIN delivered): that direction was complete, and
 * TCP reads after a FIN return 0 even when a reset follows, so the cut shows on the
 * other direction: its writer's next write fails, its reader's read fails. */
static void
test_close_resets (gconstpointer data)
{
  Mode mode = GPOINTER_TO_INT (data);

  for (guint half_closed = 0; half_closed < 2; half_closed++)
    {
      Fixture f = { 0 };

      fixture_init (&f, mode, 0);
      fixture_start (&f);
      send_raw (f.client, "ping", 4);
      recv_raw (f.server, 4);
      if (half_closed)
        {
          g_socket_shutdown (conn_socket (f.server), FALSE, TRUE, NULL);
          g_assert_cmpint (wait_end (f.client, NULL), ==, 0);
        }

      zlt_relay_close (f.relay);
      g_assert_cmpuint (f.finished, ==, 1);
      g_assert_error (f.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
      fixture_owner_close (&f);
      g_assert_cmpint (wait_end (f.server, NULL), ==, ECONNRESET);
      if (!half_closed)
        {
          g_assert_cmpint (wait_end (f.client, NULL), ==, ECONNRESET);
        }
      else
        {
          SPIN_UNTIL (fd_hung_up (conn_fd (f.client)));
          g_assert_cmpint (send (conn_fd (f.client), "x", 1, MSG_NOSIGNAL), ==, -1);
          g_assert_cmpint (errno, ==, EPIPE);
        }
      fixture_clear (&f);
    }
}

/* A stalled direction whose source has ended (FIN after ours: POLLHUP) or was reset
 * (POLLERR) while its bytes wait for a slow destination: poll reports those whatever
 * events are asked for, so the relay must not wake on them for nothing (it goes quiet).
 * A reset ends it at once in zero-copy mode (the userspace modes see it once the
 * destination has taken what waits), and the destination gets a reset, not an EOF. */
static void
test_hup_stalled (gconstpointer data)
{
  Mode mode = GPOINTER_TO_INT (data);

  for (guint reset = 0; reset < 2; reset++)
    {
      Fixture f = { 0 };
      /* fits in the kernel buffers and the relay's own, so the server gets it all out */
      gsize size = 256 * 1024;
      g_autoptr (GBytes) down = random_bytes (size, 8);
      g_autoptr (Endpoint) client = NULL;
      g_autoptr (Endpoint) server = NULL;
      g_autofree char *want = sha256_of (NULL, down);
      gsize n_read = 0;

      fixture_init (&f, mode, 64 * 1024);
      client = endpoint_new (f.client, NULL); /* sends nothing: a→b ends at once */
      client->paused = TRUE;
      server = server_endpoint_new (&f, down);
      server->send_after_eof = TRUE; /* its FIN comes after ours */
      server->shutdown_after_send = !reset;
      endpoint_start (client);
      endpoint_start (server);
      fixture_start (&f);

      SPIN_UNTIL (server->sent);
      if (reset)
        {
          g_cancellable_cancel (server->cancellable);
          SPIN_UNTIL (server->pending == 0);
          reset_now (f.server);
          if (mode == MODE_ZERO_COPY)
            SPIN_UNTIL (f.finished > 0);
          else
            spin_until_quiet (200);
          /* the client takes what waits (raw reads; its endpoint never read) */
          while (f.finished == 0)
            {
              char buf[16384];
              gssize n;

              SPIN_UNTIL (fd_ready (conn_fd (f.client)) || f.finished > 0);
              n = recv (conn_fd (f.client), buf, sizeof buf, MSG_DONTWAIT);
              if (n > 0)
                n_read += (gsize) n;
            }
          g_assert_nonnull (f.error);
          g_test_message ("stalled relay ended with: %s (client read %" G_GSIZE_FORMAT " bytes)",
                          f.error->message, n_read);
          fixture_owner_close (&f);
          g_assert_cmpint (wait_end (f.client, NULL), ==, ECONNRESET);
        }
      else
        {
          spin_until_quiet (200);
          g_assert_cmpuint (f.finished, ==, 0);
          endpoint_resume (client);
          SPIN_UNTIL (client->eof && f.finished > 0);
          g_assert_no_error (f.error);
          g_assert_cmpuint (client->received, ==, size);
          g_assert_cmpstr (g_checksum_get_string (client->sum), ==, want);
        }
      fixture_clear (&f);
    }
}

/* ---- idle timeout ---- */

typedef struct
{
  GSocketConnection *conn;
  gint64 last_sent;
  guint n_sent;
} Ticker;

static gboolean
ticker_cb (gpointer user_data)
{
  Ticker *t = user_data;

  send_raw (t->conn, "tick", 4);
  t->last_sent = g_get_monotonic_time ();
  t->n_sent++;
  return G_SOURCE_CONTINUE;
}

static gboolean
deadline_cb (gpointer user_data)
{
  *(gboolean *) user_data = TRUE;
  return G_SOURCE_REMOVE;
}

/* Three relays with the same limit: an idle one is cut (TIMED_OUT, both peers reset,
 * not before the limit), one with bytes moving one way is not, nor one whose limit was
 * set back to 0. Once its bytes stop, the active one is cut as well. */
/* A socket timeout left on a stream by whoever made it (GSocketClient's connect
 * timeout stays on the socket it dials) must not end a relay that is merely idle: the
 * relay keeps its own time (zlt_relay_set_idle_timeout). Found: wss:// connections
 * reset after 10 s without bytes. */
static void
test_socket_timeout (gconstpointer data)
{
  Mode mode = GPOINTER_TO_INT (data);
  Fixture f = { 0 };
  g_autoptr (GBytes) ping = g_bytes_new_static ("ping", 4);
  g_autoptr (Endpoint) client = NULL;
  g_autoptr (Endpoint) server = NULL;
  gboolean waited = FALSE;

  fixture_init (&f, mode, 0);
  g_socket_set_timeout (conn_socket (f.relay_a), 1);
  g_socket_set_timeout (conn_socket (f.relay_b), 1);
  fixture_start (&f);
  /* idle past the socket timeout */
  g_timeout_add (1500, deadline_cb, &waited);
  while (!waited)
    g_main_context_iteration (NULL, TRUE);
  g_assert_cmpuint (f.finished, ==, 0);

  /* and still carrying bytes */
  client = endpoint_new (f.client, ping);
  client->shutdown_after_send = FALSE;
  server = server_endpoint_new (&f, NULL);
  server->shutdown_after_send = FALSE;
  endpoint_start (client);
  endpoint_start (server);
  SPIN_UNTIL (server->received == 4);
  g_assert_cmpuint (f.finished, ==, 0);
  zlt_relay_close (f.relay);
  fixture_clear (&f);
}

static void
test_idle_timeout (gconstpointer data)
{
  Mode mode = GPOINTER_TO_INT (data);
  guint timeout_ms = under_valgrind ? 2000 : 400;
  Fixture idle = { 0 };
  Fixture active = { 0 };
  Fixture unlimited = { 0 };
  Ticker ticker = { 0 };
  gint64 start;
  gint64 idle_end = 0;
  gboolean waited = FALSE;
  guint tick;

  fixture_init (&idle, mode, 0);
  fixture_init (&active, mode, 0);
  fixture_init (&unlimited, mode, 0);
  zlt_relay_set_idle_timeout (idle.relay, timeout_ms);
  g_assert_cmpuint (zlt_relay_get_idle_timeout (idle.relay), ==, timeout_ms);
  zlt_relay_set_idle_timeout (unlimited.relay, timeout_ms);
  zlt_relay_set_idle_timeout (unlimited.relay, 0);
  start = g_get_monotonic_time ();
  fixture_start (&idle);
  fixture_start (&active);
  fixture_start (&unlimited);
  zlt_relay_set_idle_timeout (active.relay, timeout_ms); /* while running */

  /* bytes one way only, well within the limit, for three times the limit */
  ticker.conn = active.server;
  ticker.last_sent = start;
  tick = g_timeout_add (timeout_ms / 10, ticker_cb, &ticker);
  g_timeout_add (3 * timeout_ms, deadline_cb, &waited);
  while (!waited)
    {
      g_main_context_iteration (NULL, TRUE);
      if (idle.finished > 0 && idle_end == 0)
        idle_end = g_get_monotonic_time ();
    }
  g_source_remove (tick);

  g_assert_cmpuint (idle.finished, ==, 1);
  g_assert_error (idle.error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  g_assert_cmpint (idle_end - start, >=, (gint64) timeout_ms * 1000);
  g_test_message ("idle relay cut after %" G_GINT64_FORMAT " ms (limit %u ms)",
                  (idle_end - start) / 1000, timeout_ms);
  g_assert_cmpuint (active.finished, ==, 0);
  g_assert_cmpuint (unlimited.finished, ==, 0);
  g_assert_cmpuint (ticker.n_sent, >=, 20);
  g_assert_cmpuint (zlt_relay_get_bytes_b_to_a (active.relay), ==, 4 * ticker.n_sent);

  fixture_owner_close (&idle);
  g_assert_cmpint (wait_end (idle.client, NULL), ==, ECONNRESET);
  g_assert_cmpint (wait_end (idle.server, NULL), ==, ECONNRESET);

  /* the bytes stop: the active relay goes the same way, not before its limit */
  SPIN_UNTIL (active.finished > 0);
  g_assert_error (active.error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  g_assert_cmpint (g_get_monotonic_time () - ticker.last_sent, >=, (gint64) timeout_ms * 1000);
  fixture_owner_close (&active);
  g_assert_cmpint (wait_end (active.server, NULL), ==, ECONNRESET);
  g_assert_cmpint (wait_end (active.client, NULL), ==, ECONNRESET);

  /* the unlimited one still runs, and ends cleanly */
  g_assert_cmpuint (unlimited.finished, ==, 0);
  g_socket_shutdown (conn_socket (unlimited.client), FALSE, TRUE, NULL);
  g_socket_shutdown (conn_socket (unlimited.server), FALSE, TRUE, NULL);
  SPIN_UNTIL (unlimited.finished > 0);
  g_assert_no_error (unlimited.error);
  fixture_owner_close (&unlimited);
  g_assert_cmpint (wait_end (unlimited.client, NULL), ==, 0);
  g_assert_cmpint (wait_end (unlimited.server, NULL), ==, 0);

  fixture_clear (&idle);
  fixture_clear (&active);
  fixture_clear (&unlimited);
}

/* ---------------------------------------------------------------------------------
 * perf (-m perf): one 256 MiB stream, endpoints in threads as real peers would be */

#define PERF_SIZE ((guint64) 256 * 1024 * 1024)
#define PERF_CHUNK (256 * 1024)

static gpointer
perf_send_thread (gpointer data)
{
  GSocket *sock = data;
  g_autofree char *buf = g_malloc0 (PERF_CHUNK);
  guint64 left = PERF_SIZE;

  while (left > 0)
    {
      gssize n = g_socket_send (sock, buf, MIN (left, PERF_CHUNK), NULL, NULL);

      g_assert_cmpint (n, >, 0);
      left -= n;
    }
  g_socket_shutdown (sock, FALSE, TRUE, NULL);
  return NULL;
}

static gpointer
perf_recv_thread (gpointer data)
{
  GSocket *sock = data;
  g_autofree char *buf = g_malloc (PERF_CHUNK);
  guint64 got = 0;
  gssize n;

  while ((n = g_socket_receive (sock, buf, PERF_CHUNK, NULL, NULL)) > 0)
    got += n;
  g_assert_cmpint (n, ==, 0);
  g_socket_shutdown (sock, FALSE, TRUE, NULL); /* so the relay's other direction ends */
  return GSIZE_TO_POINTER ((gsize) (got == PERF_SIZE));
}

static double
perf_run (int how)
{
  GSocketConnection *client, *ra, *rb, *server;
  g_autoptr (GIOStream) a = NULL;
  g_autoptr (GIOStream) b = NULL;
  ZltRelay *relay = NULL;
  GThread *sender, *receiver;
  gint64 start;
  double secs;
  gboolean ok = FALSE;

  make_pair (&client, &ra);
  make_pair (&rb, &server);
  start = g_get_monotonic_time ();
  if (how == 0)
    {
      /* direct: client straight to its peer */
      sender = g_thread_new ("send", perf_send_thread, conn_socket (client));
      receiver = g_thread_new ("recv", perf_recv_thread, conn_socket (ra));
    }
  else
    {
      a = g_object_ref (G_IO_STREAM (ra));
      b = how == 1 ? g_object_ref (G_IO_STREAM (rb)) : wrap (rb, how == 3);
      if (how == 3)
        {
          g_clear_object (&a);
          a = wrap (ra, TRUE);
        }
      relay = zlt_relay_new (a, b);
      g_object_add_weak_pointer (G_OBJECT (relay), (gpointer *) &relay);
      zlt_relay_start (relay);
      g_object_unref (relay);
      sender = g_thread_new ("send", perf_send_thread, conn_socket (client));
      receiver = g_thread_new ("recv", perf_recv_thread, conn_socket (server));
      SPIN_UNTIL (relay == NULL);
    }
  ok = GPOINTER_TO_SIZE (g_thread_join (receiver)) != 0;
  secs = (g_get_monotonic_time () - start) / (double) G_USEC_PER_SEC;
  g_thread_join (sender);
  g_assert_true (ok);
  spin_until_quiet (10);
  g_io_stream_close (G_IO_STREAM (ra), NULL, NULL);
  g_io_stream_close (G_IO_STREAM (rb), NULL, NULL);
  g_object_unref (client);
  g_object_unref (ra);
  g_object_unref (rb);
  g_object_unref (server);
  return PERF_SIZE * 8 / secs / 1e9;
}

static void
test_perf (void)
{
  static const char *const names[]
      = { "direct", "relay zero-copy", "relay pollable", "relay async" };
  double direct = 0;

  if (!g_test_perf ())
    {
      g_test_skip ("only with -m perf");
      return;
    }
  for (int how = 0; how < 4; how++)
    {
      double best = 0;

      for (int i = 0; i < 3; i++)
        best = MAX (best, perf_run (how));
      if (how == 0)
        direct = best;
      g_test_message ("%-16s %6.2f Gbit/s  (%.2fx direct)", names[how], best, best / direct);
      g_printerr ("%-16s %6.2f Gbit/s  (%.2fx direct)\n", names[how], best, best / direct);
    }
}

/* ---------------------------------------------------------------------------------
 * many idle relays beside a busy one: what a wakeup costs when the context holds many
 * relays (perf only: prints round trips per second with 0 and with N idle relays) */

static gint echo_stop;

static gpointer
echo_thread (gpointer data)
{
  int fd = GPOINTER_TO_INT (data);

  /* the socket is non-blocking (GSocket's): wait with poll, until told to stop */
  while (!g_atomic_int_get (&echo_stop))
    {
      struct pollfd pfd = { .fd = fd, .events = POLLIN };
      char c;

      if (poll (&pfd, 1, 100) != 1)
        continue;
      if (recv (fd, &c, 1, MSG_DONTWAIT) != 1 || send (fd, &c, 1, MSG_NOSIGNAL) != 1)
        break;
    }
  return NULL;
}

static double
crowd_round_trips (guint n_idle, guint rounds)
{
  Fixture busy = { 0 };
  g_autofree Fixture *idle = g_new0 (Fixture, MAX (n_idle, 1));
  g_autoptr (GThread) echo = NULL;
  int client_fd;
  gint64 start;
  double elapsed;

  for (guint i = 0; i < n_idle; i++)
    {
      fixture_init (&idle[i], MODE_ZERO_COPY, 0);
      fixture_start (&idle[i]);
    }
  fixture_init (&busy, MODE_ZERO_COPY, 0);
  fixture_start (&busy);
  echo = g_thread_new ("echo", echo_thread,
                       GINT_TO_POINTER (g_socket_get_fd (conn_socket (busy.server))));
  client_fd = g_socket_get_fd (conn_socket (busy.client));
  g_atomic_int_set (&echo_stop, 0);
  start = g_get_monotonic_time ();
  for (guint i = 0; i < rounds; i++)
    {
      char c = 'x';
      gint64 deadline = g_get_monotonic_time () + DEADLINE_S * G_USEC_PER_SEC;

      g_assert_cmpint (send (client_fd, &c, 1, MSG_NOSIGNAL), ==, 1);
      /* the relay's wakeups end each wait; the deadline is checked between them */
      while (recv (client_fd, &c, 1, MSG_DONTWAIT) != 1)
        {
          if (g_get_monotonic_time () > deadline)
            g_error ("no echo within %d s", DEADLINE_S);
          g_main_context_iteration (NULL, TRUE);
        }
    }
  elapsed = (g_get_monotonic_time () - start) / (double) G_USEC_PER_SEC;
  g_atomic_int_set (&echo_stop, 1);
  zlt_relay_close (busy.relay);
  g_thread_join (g_steal_pointer (&echo));
  fixture_clear (&busy);
  for (guint i = 0; i < n_idle; i++)
    {
      g_assert_cmpuint (idle[i].finished, ==, 0);
      zlt_relay_close (idle[i].relay);
      fixture_clear (&idle[i]);
    }
  return rounds / elapsed;
}

static void
test_perf_crowd (void)
{
  static const guint crowds[] = { 0, 1000, 3000 };
  double alone = 0;

  if (!g_test_perf ())
    {
      g_test_skip ("only with -m perf");
      return;
    }
  for (guint i = 0; i < G_N_ELEMENTS (crowds); i++)
    {
      double rate = crowd_round_trips (crowds[i], 3000);

      if (i == 0)
        alone = rate;
      g_test_message ("%5u idle relays: %8.0f round trips/s (%.2fx alone)", crowds[i], rate,
                      rate / alone);
      g_printerr ("%5u idle relays: %8.0f round trips/s (%.2fx alone)\n", crowds[i], rate,
                  rate / alone);
    }
}

int
main (int argc, char **argv)
{
  static const char *const tests[]
      = { "transfer", "half-close",       "backpressure", "close",        "reset",
          "linger",   "reset-propagates", "close-resets", "idle-timeout", "hup-stalled" };
  static const GTestDataFunc funcs[]
      = { test_transfer,     test_half_close, test_backpressure,     test_close,
          test_reset,        test_linger,     test_reset_propagates, test_close_resets,
          test_idle_timeout, test_hup_stalled };
  /* the tests whose peers take a TLS server end (the others write raw bytes to it) */
  static const gboolean tls_ok[]
      = { TRUE, TRUE, TRUE, TRUE, TRUE, TRUE, FALSE, FALSE, FALSE, FALSE };
  g_autofree char *tls_dir = NULL;
  g_autofree char *cert_file = NULL;
  g_autofree char *key_file = NULL;
  g_autofree char *cert_cfg = NULL;
  struct rlimit rl;
  int ret;

  G_STATIC_ASSERT (G_N_ELEMENTS (tests) == G_N_ELEMENTS (funcs));
  G_STATIC_ASSERT (G_N_ELEMENTS (tests) == G_N_ELEMENTS (tls_ok));

  /* 200 relays: 800 sockets and their pipes */
  if (getrlimit (RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max)
    {
      rl.rlim_cur = rl.rlim_max;
      setrlimit (RLIMIT_NOFILE, &rl);
    }

  under_valgrind = g_getenv ("ZLT_UNDER_VALGRIND") != NULL;
  g_test_init (&argc, &argv, NULL);

  /* a test certificate for the TLS mode */
  tls_dir = g_dir_make_tmp ("test-relay-XXXXXX", NULL);
  g_assert_nonnull (tls_dir);
  g_assert_true (zlt_test_make_certificate (tls_dir, &cert_file, &key_file));
  tls_certificate = g_tls_certificate_new_from_files (cert_file, key_file, NULL);
  g_assert_nonnull (tls_certificate);
  tls_pin = zlt_tls_certificate_fingerprint (tls_certificate);

  for (guint t = 0; t < G_N_ELEMENTS (tests); t++)
    for (int m = MODE_ZERO_COPY; m <= MODE_DATA_TLS; m++)
      {
        g_autofree char *path = g_strdup_printf ("/relay/%s/%s", tests[t], mode_names[m]);

        if (MODE_IS_TLS (m) && !tls_ok[t])
          continue;
        g_test_add_data_func (path, GINT_TO_POINTER (m), funcs[t]);
      }
  g_test_add_func ("/relay/close-before-start", test_close_before_start);
  for (int m = MODE_ZERO_COPY; m <= MODE_DATA_TLS; m++)
    {
      g_autofree char *path = g_strdup_printf ("/relay/socket-timeout/%s", mode_names[m]);

      g_test_add_data_func (path, GINT_TO_POINTER (m), test_socket_timeout);
    }
  for (int m = MODE_ZERO_COPY; m <= MODE_DATA_TLS; m++)
    {
      g_autofree char *path = g_strdup_printf ("/relay/backpressure-back/%s", mode_names[m]);

      g_test_add_data_func (path, GINT_TO_POINTER (m), test_backpressure_back);
    }
  for (int m = MODE_ZERO_COPY; m <= MODE_DATA_TLS; m++)
    {
      g_autofree char *path = NULL;

      if (m == MODE_MIXED || m == MODE_ASYNC)
        continue;
      path = g_strdup_printf ("/relay/no-source-churn/%s", mode_names[m]);
      g_test_add_data_func (path, GINT_TO_POINTER (m), test_no_source_churn);
    }
  g_test_add_data_func ("/relay/tls-batching/tls", GINT_TO_POINTER (MODE_TLS), test_tls_batching);
  g_test_add_data_func ("/relay/tls-batching/data-tls", GINT_TO_POINTER (MODE_DATA_TLS),
                        test_tls_batching);
  g_test_add_data_func ("/relay/small-records/data-tls", GINT_TO_POINTER (SMALL_DATA_TLS),
                        test_small_records);
  g_test_add_data_func ("/relay/small-records/data-tls-no-fd",
                        GINT_TO_POINTER (SMALL_DATA_TLS_NO_FD), test_small_records);
  g_test_add_data_func ("/relay/small-records/tls", GINT_TO_POINTER (SMALL_TLS),
                        test_small_records);
  g_test_add_data_func ("/relay/concurrent/zero-copy", GINT_TO_POINTER (MODE_ZERO_COPY),
                        test_concurrent);
  g_test_add_data_func ("/relay/concurrent/pollable", GINT_TO_POINTER (MODE_POLLABLE),
                        test_concurrent);
  g_test_add_func ("/relay/perf/throughput", test_perf);
  g_test_add_func ("/relay/perf/idle-crowd", test_perf_crowd);
  ret = g_test_run ();

  if (listener != NULL)
    g_socket_listener_close (listener);
  g_clear_object (&listener);
  g_clear_object (&listen_address);
  g_clear_object (&tls_certificate);
  g_free (tls_pin);
  g_unlink (cert_file);
  g_unlink (key_file);
  cert_cfg = g_build_filename (tls_dir, "cert.cfg", NULL);
  g_unlink (cert_cfg);
  g_rmdir (tls_dir);
  return ret;
}
