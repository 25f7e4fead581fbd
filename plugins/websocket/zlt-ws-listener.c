/* zlt-ws-listener.c: the server's one port. Accepts TCP itself (ZltAcceptLoop), does
 * TLS itself, hands each connection to a SoupServer for its one HTTP request, and
 * takes it back at the upgrade.
 *
 * Everything before the upgrade is open to anyone, so every connection is held as
 * cheaply as we can, and for a bounded time:
 *
 * - a deadline (handshake_timeout_ms) runs from accept and covers the TLS handshake and
 *   the HTTP request; when it fires the connection is closed, whatever it was doing
 *   (a handshake in progress is cancelled first);
 * - caps on connections not yet upgraded, in total and per source (the base class's
 *   max-pending and max-pending-per-source): above them a connection is closed at once;
 * - until its first bytes arrive (on TLS: its whole first record, the ClientHello) a
 *   connection costs a descriptor and a small struct: the kernel holds the bytes
 *   (SO_RCVLOWAT keeps poll quiet until the record is complete, MSG_PEEK reads its
 *   header), so silent and slow-drip peers wake nothing;
 * - a TLS handshake runs in a GLib worker thread (glib-networking's only way), so only
 *   max-handshakes run at once, and at most max-handshakes-per-source from one source;
 *   the others wait their turn in arrival order;
 * - the request head of a data or standby connection (the form our agents send) we read
 *   ourselves (zlt-ws-upgrade-head.c), to at most ZLT_WS_MAX_REQUEST_HEAD bytes, and
 *   answer it ourselves: the same verdicts, statuses and texts as libsoup's path below,
 *   for a fifth of the server's CPU per public connection; any other head, or anything
 *   odd, goes to libsoup with the bytes read so far;
 * - libsoup gets a ZltWsStream: exactly one request head of at most
 *   ZLT_WS_MAX_REQUEST_HEAD bytes, nothing after it until answered, and a request with
 *   a body is answered 413 (and the connection closed) before a byte of the body is read;
 *   any answer but the 101 closes the connection.
 *
 * Accepting ourselves rather than through soup_server_listen() also gives TCP_NODELAY on
 * every socket, and the plain GSocketConnection of a data connection, so the relay can
 * splice it. */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <glib/gi18n-lib.h>

#include "zlt-ws-channel.h"
#include "zlt-ws-listener.h"
#include "zlt-ws-stream.h"
#include "zlt-ws-upgrade-head.h"

#define TLS_RECORD_HEADER 5
#define TLS_RECORD_HANDSHAKE 0x16
/* a ClientHello is a plaintext record: 2^14 bytes at most */
#define TLS_MAX_PLAINTEXT 16384
/* what a peer that answered 413 may still send before we stop reading it */
#define LINGER_DISCARD_MAX (256 * 1024)

typedef enum
{
  CONN_WAITING,     /* accepted; waiting for its first bytes (TLS: its first record) */
  CONN_QUEUED,      /* TLS: the ClientHello is in; waiting for a handshake slot */
  CONN_HANDSHAKING, /* TLS: handshake in a worker thread */
  CONN_HEAD,        /* we read its request head: a data or standby upgrade of ours? */
  CONN_HTTP,        /* libsoup reads its request */
  CONN_LINGER,      /* answered 413 and shut for writing; reading the rest away */
} ConnState;

struct _ZltWsListener
{
  ZltControlListener parent_instance;

  ZltAcceptLoop *loop;
  SoupServer *soup;
  GTlsCertificate *certificate;
  guint handshake_timeout_ms;
  guint max_handshakes;
  guint max_handshakes_per_source;
  gboolean closed;

  /* every connection not yet upgraded, in accept order, which is deadline order;
   * expired handshakes leave it while their cancellation completes */
  GQueue conns;
  GSource *deadline;
  GQueue handshake_queue; /* CONN_QUEUED, in arrival order */
  GQueue handshaking;     /* CONN_HANDSHAKING */
  /* ZltPendingSource → handshakes in progress from it */
  GHashTable *handshakes_by_source;
  /* peer address → ZltWsConn, in CONN_HTTP */
  GHashTable *by_peer;
  /* data and standby upgrades: read and answered here, not by libsoup */
  gboolean own_upgrades;
  guint64 n_own_requests;
  /* the Date of our answers, as libsoup writes it, made once a second */
  char *date;
  gint64 date_second;
};

G_DEFINE_FINAL_TYPE (ZltWsListener, zlt_ws_listener, ZLT_TYPE_CONTROL_LISTENER)

enum
{
  PROP_0,
  PROP_MAX_HANDSHAKES,
  PROP_MAX_HANDSHAKES_PER_SOURCE,
  PROP_N_HANDSHAKES,
  PROP_N_HANDSHAKES_QUEUED,
  PROP_OWN_UPGRADES,
  PROP_N_OWN_REQUESTS,
  N_PROPS
};
static GParamSpec *props[N_PROPS];

typedef struct
{
  ZltWsListener *self; /* unowned; NULL once the listener closed under a handshake */
  ConnState state;
  gboolean expired; /* the deadline fired during the handshake */
  GSocketConnection *connection;
  ZltPendingSource *source;
  gint64 deadline;
  GList link;       /* in self->conns */
  GList queue_link; /* in self->handshake_queue or self->handshaking */
  GSource *watch;
  guint lowat;
  GTlsConnection *tls;
  gboolean data_tls; /* its ClientHello is a data connection's: GnuTLS on the socket */
  GCancellable *cancellable;
  ZltWsStream *stream;
  char *peer;
  gsize discarded;
  GByteArray *head; /* CONN_HEAD: what the peer sent so far */
} ZltWsConn;

static void conn_start_http (ZltWsConn *conn, GBytes *read_ahead);
static void conn_start_request (ZltWsConn *conn);
static void pump_handshakes (ZltWsListener *self);

static int
conn_fd (ZltWsConn *conn)
{
  return g_socket_get_fd (g_socket_connection_get_socket (conn->connection));
}

static void
conn_set_lowat (ZltWsConn *conn, guint lowat)
{
  int value = lowat;

  if (conn->lowat == lowat)
    return;
  if (setsockopt (conn_fd (conn), SOL_SOCKET, SO_RCVLOWAT, &value, sizeof value) != 0)
    g_debug ("cannot set SO_RCVLOWAT: %s", g_strerror (errno));
  conn->lowat = lowat;
}

static void
conn_watch (ZltWsConn *conn, GSocketSourceFunc func)
{
  g_return_if_fail (conn->watch == NULL);

  conn->watch
      = g_socket_create_source (g_socket_connection_get_socket (conn->connection), G_IO_IN, NULL);
  g_source_set_callback (conn->watch, G_SOURCE_FUNC (func), conn, NULL);
  /* GLib blocks a source that cannot recurse while it dispatches: its fd leaves the
   * poll set and comes back, each a write to the context's wakeup fd */
  g_source_set_can_recurse (conn->watch, TRUE);
  g_source_attach (conn->watch, g_main_context_get_thread_default ());
}

static void
conn_unwatch (ZltWsConn *conn)
{
  if (conn->watch == NULL)
    return;
  g_source_destroy (conn->watch);
  g_clear_pointer (&conn->watch, g_source_unref);
}

static void on_stream_closed (ZltWsStream *stream, gpointer user_data);

/* Takes @conn out of the listener's books: it is no longer pending. */
static void
conn_detach (ZltWsConn *conn)
{
  ZltWsListener *self = conn->self;

  if (self == NULL)
    return;
  if (conn->link.data != NULL)
    {
      g_queue_unlink (&self->conns, &conn->link);
      conn->link.data = NULL;
    }
  if (conn->state == CONN_QUEUED)
    g_queue_unlink (&self->handshake_queue, &conn->queue_link);
  if (conn->peer != NULL && g_hash_table_lookup (self->by_peer, conn->peer) == conn)
    g_hash_table_remove (self->by_peer, conn->peer);
  if (conn->source != NULL)
    zlt_control_listener_release (ZLT_CONTROL_LISTENER (self), g_steal_pointer (&conn->source));
  conn->self = NULL;
}

/* Frees @conn; with @close, closes its connection first. */
static void
conn_free (ZltWsConn *conn, gboolean close)
{
  conn_detach (conn);
  conn_unwatch (conn);
  if (conn->stream != NULL)
    g_signal_handlers_disconnect_by_func (conn->stream, on_stream_closed, conn);
  if (close)
    {
      /* the socket first: a TLS close then cannot block on it */
      g_socket_close (g_socket_connection_get_socket (conn->connection), NULL);
      if (conn->stream != NULL)
        g_io_stream_close (G_IO_STREAM (conn->stream), NULL, NULL);
      else if (conn->tls != NULL)
        g_io_stream_close (G_IO_STREAM (conn->tls), NULL, NULL);
    }
  g_clear_object (&conn->stream);
  g_clear_object (&conn->tls);
  g_clear_object (&conn->cancellable);
  g_clear_object (&conn->connection);
  g_clear_pointer (&conn->head, g_byte_array_unref);
  g_free (conn->peer);
  g_free (conn);
}

static void
conn_close (ZltWsConn *conn)
{
  conn_free (conn, TRUE);
}

static void
arm_deadline (ZltWsListener *self)
{
  ZltWsConn *head = g_queue_peek_head (&self->conns);

  g_source_set_ready_time (self->deadline, head != NULL ? head->deadline : -1);
}

static gboolean
on_deadline (gpointer user_data)
{
  ZltWsListener *self = user_data;
  gint64 now = g_get_monotonic_time ();
  ZltWsConn *conn;

  while ((conn = g_queue_peek_head (&self->conns)) != NULL && conn->deadline <= now)
    {
      g_debug ("closing %s: no upgrade within %u ms", conn->peer ? conn->peer : "a connection",
               self->handshake_timeout_ms);
      if (conn->state == CONN_HANDSHAKING)
        {
          /* the worker thread uses the socket until the handshake returns, so it is
           * closed then; shut down now, the peer sees the end at the deadline
           * whatever the thread is doing */
          g_queue_unlink (&self->conns, &conn->link);
          conn->link.data = NULL;
          conn->expired = TRUE;
          g_cancellable_cancel (conn->cancellable);
          shutdown (conn_fd (conn), SHUT_RDWR);
        }
      else
        conn_close (conn);
    }
  arm_deadline (self);
  return G_SOURCE_CONTINUE;
}

static gboolean
deadline_dispatch (GSource *source, GSourceFunc callback, gpointer user_data)
{
  return callback (user_data);
}

/* one source for all deadlines, ready at the earliest (the others follow in order) */
static GSourceFuncs deadline_funcs = { NULL, NULL, deadline_dispatch, NULL, NULL, NULL };

/* ---- TLS: the first record, then the handshake ---- */

static guint
handshakes_of (ZltWsListener *self, ZltPendingSource *source)
{
  return GPOINTER_TO_UINT (g_hash_table_lookup (self->handshakes_by_source, source));
}

static void
count_handshake (ZltWsListener *self, ZltPendingSource *source, gint delta)
{
  guint n = handshakes_of (self, source) + delta;

  if (n == 0)
    g_hash_table_remove (self->handshakes_by_source, source);
  else
    g_hash_table_insert (self->handshakes_by_source, source, GUINT_TO_POINTER (n));
}

static void
handshake_done (GObject *object, GAsyncResult *result, gpointer user_data)
{
  ZltWsConn *conn = user_data;
  ZltWsListener *self = conn->self;
  g_autoptr (GError) error = NULL;
  gboolean ok = g_tls_connection_handshake_finish (G_TLS_CONNECTION (object), result, &error);

  if (self == NULL)
    {
      /* the listener closed meanwhile and let go of it */
      conn_close (conn);
      return;
    }
  g_queue_unlink (&self->handshaking, &conn->queue_link);
  count_handshake (self, conn->source, -1);
  if (conn->expired)
    conn_close (conn);
  else if (!ok)
    {
      g_debug ("TLS handshake failed: %s", error->message);
      conn_close (conn);
    }
  else
    conn_start_request (conn);
  pump_handshakes (self);
  g_object_notify_by_pspec (G_OBJECT (self), props[PROP_N_HANDSHAKES]);
}

static void
start_handshake (ZltWsListener *self, ZltWsConn *conn)
{
  g_autoptr (GError) error = NULL;
  GIOStream *tls;

  /* a data connection's TLS costs a fraction of glib-networking's memory per connection */
  if (conn->data_tls)
    tls = zlt_tls_data_server_new (conn->connection, self->certificate, &error);
  else
    tls = zlt_tls_server_connection_new (G_IO_STREAM (conn->connection), self->certificate, &error);
  if (tls == NULL)
    {
      g_debug ("cannot start TLS: %s", error->message);
      conn_close (conn);
      return;
    }
  conn->tls = G_TLS_CONNECTION (tls);
  conn->cancellable = g_cancellable_new ();
  conn->state = CONN_HANDSHAKING;
  g_queue_push_tail_link (&self->handshaking, &conn->queue_link);
  count_handshake (self, conn->source, +1);
  g_tls_connection_handshake_async (conn->tls, G_PRIORITY_DEFAULT, conn->cancellable,
                                    handshake_done, conn);
}

/* Starts queued handshakes while slots are free, in arrival order, passing over
 * sources that hold their share of the slots. */
static void
pump_handshakes (ZltWsListener *self)
{
  GList *l = self->handshake_queue.head;
  gboolean started = FALSE;

  while (l != NULL && g_queue_get_length (&self->handshaking) < self->max_handshakes)
    {
      ZltWsConn *conn = l->data;

      l = l->next;
      if (handshakes_of (self, conn->source) >= self->max_handshakes_per_source)
        continue;
      g_queue_unlink (&self->handshake_queue, &conn->queue_link);
      start_handshake (self, conn);
      started = TRUE;
    }
  if (started)
    {
      g_object_notify_by_pspec (G_OBJECT (self), props[PROP_N_HANDSHAKES]);
      g_object_notify_by_pspec (G_OBJECT (self), props[PROP_N_HANDSHAKES_QUEUED]);
    }
}

/* Whether the first record (@len bytes, all in the kernel) is a data connection's
 * ClientHello (zlt_tls_is_data_client_hello()). */
static gboolean
first_record_is_data (ZltWsConn *conn, guint len)
{
  g_autofree guint8 *record = g_malloc (len);
  gssize n = recv (conn_fd (conn), record, len, MSG_PEEK);

  return n == (gssize) len && zlt_tls_is_data_client_hello (record, len);
}

/* Waits (in the kernel) for the whole first TLS record, then queues the handshake. */
static gboolean
on_first_record (GSocket *socket, GIOCondition condition, gpointer user_data)
{
  ZltWsConn *conn = user_data;
  ZltWsListener *self = conn->self;
  guint8 header[TLS_RECORD_HEADER];
  gssize n;
  guint needed;
  int available = 0;

  n = recv (conn_fd (conn), header, sizeof header, MSG_PEEK);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
    return G_SOURCE_CONTINUE;
  /* fewer bytes than the low-water mark wake us only at EOF or an error */
  if (n < (gssize) sizeof header)
    {
      conn_close (conn);
      return G_SOURCE_REMOVE;
    }
  needed = TLS_RECORD_HEADER + ((guint) header[3] << 8 | header[4]);
  if (header[0] != TLS_RECORD_HANDSHAKE || header[1] != 3 || needed == TLS_RECORD_HEADER
      || needed > TLS_RECORD_HEADER + TLS_MAX_PLAINTEXT)
    {
      g_debug ("closing a connection that does not start with a TLS handshake record");
      conn_close (conn);
      return G_SOURCE_REMOVE;
    }
  if (ioctl (conn_fd (conn), FIONREAD, &available) != 0)
    available = 0;
  if ((guint) available < needed)
    {
      if (conn->lowat == needed)
        {
          /* woken below the mark: the peer closed before the record was complete */
          conn_close (conn);
          return G_SOURCE_REMOVE;
        }
      conn_set_lowat (conn, needed);
      return G_SOURCE_CONTINUE;
    }
  conn_set_lowat (conn, 1);
  conn->data_tls = first_record_is_data (conn, needed);
  g_clear_pointer (&conn->watch, g_source_unref);
  conn->state = CONN_QUEUED;
  g_queue_push_tail_link (&self->handshake_queue, &conn->queue_link);
  pump_handshakes (self);
  g_object_notify_by_pspec (G_OBJECT (self), props[PROP_N_HANDSHAKES_QUEUED]);
  return G_SOURCE_REMOVE;
}

/* ---- plain: the first byte ---- */

static gboolean
on_first_byte (GSocket *socket, GIOCondition condition, gpointer user_data)
{
  ZltWsConn *conn = user_data;
  guint8 byte;
  gssize n = recv (conn_fd (conn), &byte, 1, MSG_PEEK);

  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
    return G_SOURCE_CONTINUE;
  g_clear_pointer (&conn->watch, g_source_unref);
  if (n <= 0)
    conn_close (conn);
  else
    conn_start_request (conn);
  return G_SOURCE_REMOVE;
}

/* ---- HTTP ---- */

static void
on_stream_closed (ZltWsStream *stream, gpointer user_data)
{
  ZltWsConn *conn = user_data;

  /* libsoup is done with it (after an answer other than 101, or a bad request) */
  g_signal_handlers_disconnect_by_func (stream, on_stream_closed, conn);
  conn_free (conn, FALSE);
}

static void
conn_start_http (ZltWsConn *conn, GBytes *read_ahead)
{
  ZltWsListener *self = conn->self;
  g_autoptr (GError) error = NULL;
  g_autoptr (GSocketAddress) local = NULL;
  g_autoptr (GSocketAddress) remote = NULL;
  GIOStream *base = conn->tls ? G_IO_STREAM (conn->tls) : G_IO_STREAM (conn->connection);

  local = g_socket_connection_get_local_address (conn->connection, NULL);
  remote = g_socket_connection_get_remote_address (conn->connection, NULL);
  conn->peer = remote != NULL ? zlt_net_format_address (remote) : NULL;
  if (local == NULL || conn->peer == NULL)
    {
      conn_close (conn);
      return;
    }
  conn->state = CONN_HTTP;
  conn->stream = zlt_ws_stream_new (base, ZLT_WS_MAX_REQUEST_HEAD, read_ahead);
  g_signal_connect (conn->stream, "closed", G_CALLBACK (on_stream_closed), conn);
  g_hash_table_replace (self->by_peer, conn->peer, conn);
  if (!soup_server_accept_iostream (self->soup, G_IO_STREAM (conn->stream), local, remote, &error))
    {
      g_debug ("failed to accept %s: %s", conn->peer, error->message);
      conn_close (conn);
    }
}

static ZltWsConn *
conn_of_message (ZltWsListener *self, SoupServerMessage *msg)
{
  g_autofree char *peer = zlt_net_format_address (soup_server_message_get_remote_address (msg));

  return peer != NULL ? g_hash_table_lookup (self->by_peer, peer) : NULL;
}

static gboolean
on_linger_readable (GSocket *socket, GIOCondition condition, gpointer user_data)
{
  ZltWsConn *conn = user_data;
  guint8 scratch[16384];
  gssize n = recv (conn_fd (conn), scratch, sizeof scratch, 0);

  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
    return G_SOURCE_CONTINUE;
  if (n <= 0)
    {
      /* the peer is gone or read our answer and closed */
      conn_close (conn);
      return G_SOURCE_REMOVE;
    }
  conn->discarded += n;
  if (conn->discarded < LINGER_DISCARD_MAX)
    return G_SOURCE_CONTINUE;
  /* enough: leave the rest in the kernel until the deadline closes it */
  g_clear_pointer (&conn->watch, g_source_unref);
  return G_SOURCE_REMOVE;
}

/* A request with a body: these endpoints are GET upgrades, nothing of a body is read.
 * libsoup would read it whatever status we set here, so we take the connection back,
 * answer 413 ourselves and shut it for writing; what the peer still sends is read away
 * briefly (closing with unread bytes would reset the connection, and with it perhaps our
 * answer), then the deadline closes it. */
static void
refuse_body (ZltWsListener *self, SoupServerMessage *msg)
{
  static const char answer[] = "HTTP/1.1 413 Content Too Large\r\n"
                               "Connection: close\r\n"
                               "Content-Type: text/plain\r\n"
                               "Content-Length: 28\r\n"
                               "\r\n"
                               "no request body is accepted\n";
  ZltWsConn *conn = conn_of_message (self, msg);
  g_autoptr (GIOStream) stolen = NULL;
  GOutputStream *output;

  if (conn == NULL)
    {
      /* not ours (cannot happen): let libsoup answer, and close after */
      soup_server_message_set_status (msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE, NULL);
      soup_message_headers_replace (soup_server_message_get_response_headers (msg), "Connection",
                                    "close");
      return;
    }
  g_debug ("refusing a request with a body from %s", conn->peer);
  /* libsoup forgets the connection (the stolen wrapper does not close ours) */
  g_signal_handlers_disconnect_by_func (conn->stream, on_stream_closed, conn);
  stolen = soup_server_message_steal_connection (msg);
  g_hash_table_remove (self->by_peer, conn->peer);
  conn->state = CONN_LINGER;
  output = g_io_stream_get_output_stream (G_IO_STREAM (conn->stream));
  /* a few bytes on a connection that had none to send: the socket takes them */
  if (g_pollable_output_stream_write_nonblocking (G_POLLABLE_OUTPUT_STREAM (output), answer,
                                                  sizeof answer - 1, NULL, NULL)
      != sizeof answer - 1)
    {
      conn_close (conn);
      return;
    }
  g_socket_shutdown (g_socket_connection_get_socket (conn->connection), FALSE, TRUE, NULL);
  conn_watch (conn, on_linger_readable);
}

static void
on_got_headers (SoupServerMessage *msg, gpointer user_data)
{
  ZltWsListener *self = ZLT_WS_LISTENER (user_data);
  SoupMessageHeaders *req = soup_server_message_get_request_headers (msg);

  if (soup_message_headers_get_one (req, "Transfer-Encoding") != NULL
      || soup_message_headers_get_content_length (req) > 0)
    refuse_body (self, msg);
}

static void
on_got_body (SoupServerMessage *msg, gpointer user_data)
{
  /* after the handlers: one request per connection, unless it upgrades */
  if (soup_server_message_get_status (msg) != SOUP_STATUS_SWITCHING_PROTOCOLS)
    soup_message_headers_replace (soup_server_message_get_response_headers (msg), "Connection",
                                  "close");
}

static void
on_request_started (SoupServer *server, SoupServerMessage *msg, gpointer user_data)
{
  /* after libsoup's own handlers of these signals, which it connects first */
  g_signal_connect_object (msg, "got-headers", G_CALLBACK (on_got_headers), user_data, 0);
  g_signal_connect_object (msg, "got-body", G_CALLBACK (on_got_body), user_data, 0);
}

/* Takes a connection back from libsoup once the 101 is on the wire; it is no longer
 * pending. Returns our stream (nothing of it is buffered in libsoup: it never got
 * past the request head). */
static ZltWsStream *
take_back (ZltWsListener *self, SoupServerMessage *msg, ZltPendingSource **source)
{
  ZltWsConn *conn = conn_of_message (self, msg);
  g_autoptr (GIOStream) stolen = NULL;
  ZltWsStream *stream;

  if (conn == NULL)
    return NULL;
  g_signal_handlers_disconnect_by_func (conn->stream, on_stream_closed, conn);
  stolen = soup_server_message_steal_connection (msg);
  stream = g_steal_pointer (&conn->stream);
  zlt_ws_stream_open (stream);
  /* a control channel keeps its place among the connections waiting to authenticate */
  if (source != NULL)
    *source = g_steal_pointer (&conn->source);
  conn_free (conn, FALSE);
  return stream;
}

typedef struct
{
  ZltControlListener *listener;
  ZltPendingSource *source;
} Admission;

static void
admission_end (gpointer data)
{
  Admission *admission = data;

  zlt_control_listener_release (admission->listener, admission->source);
  g_object_unref (admission->listener);
  g_free (admission);
}

static void
control_upgrade_written (SoupServerMessage *msg, gpointer user_data)
{
  ZltWsListener *self = ZLT_WS_LISTENER (user_data);
  g_autofree char *peer = NULL;
  g_autoptr (ZltWsStream) stream = NULL;
  g_autoptr (SoupWebsocketConnection) ws = NULL;
  g_autoptr (ZltChannel) channel = NULL;
  g_autoptr (GBytes) nonce = NULL;
  ZltPendingSource *source = NULL;
  GBytes *stored;

  g_signal_handlers_disconnect_by_func (msg, control_upgrade_written, user_data);
  stored = g_object_get_data (G_OBJECT (msg), "zlt-nonce");
  nonce = stored ? g_bytes_ref (stored) : NULL;
  peer = zlt_net_format_address (soup_server_message_get_remote_address (msg));
  stream = take_back (self, msg, &source);
  if (stream == NULL)
    return;
  ws = soup_websocket_connection_new (G_IO_STREAM (stream), soup_server_message_get_uri (msg),
                                      SOUP_WEBSOCKET_CONNECTION_SERVER, NULL, NULL, NULL);
  channel = zlt_ws_channel_new (ws, peer, nonce);
  if (source != NULL)
    {
      Admission *admission = g_new0 (Admission, 1);

      admission->listener = g_object_ref (ZLT_CONTROL_LISTENER (self));
      admission->source = source;
      zlt_channel_set_admission (channel, admission_end, admission);
    }
  zlt_control_listener_emit_channel (ZLT_CONTROL_LISTENER (self), channel);
}

static void
handle_control (ZltWsListener *self, SoupServerMessage *msg)
{
  g_autoptr (GError) error = NULL;
  guint8 nonce[ZLT_NONCE_SIZE];
  g_autofree char *nonce_hex = NULL;

  if (!soup_websocket_server_check_handshake (msg, NULL, NULL, NULL, &error))
    {
      soup_server_message_set_status (msg, SOUP_STATUS_BAD_REQUEST, NULL);
      soup_server_message_set_response (msg, "text/plain", SOUP_MEMORY_COPY, error->message,
                                        strlen (error->message));
      return;
    }
  if (!soup_websocket_server_process_handshake (msg, NULL, NULL, NULL, NULL))
    return;
  zlt_random_bytes (nonce, sizeof nonce);
  nonce_hex = zlt_hex_encode (nonce, sizeof nonce);
  soup_message_headers_replace (soup_server_message_get_response_headers (msg), "X-Zlt-Nonce",
                                nonce_hex);
  /* the validator needs the token itself (PROTOCOL-v2.md §2a) */
  if (zlt_control_listener_get_bearer_auth (ZLT_CONTROL_LISTENER (self)))
    soup_message_headers_replace (soup_server_message_get_response_headers (msg), "X-Zlt-Auth",
                                  "bearer");
  g_object_set_data_full (G_OBJECT (msg), "zlt-nonce", g_bytes_new (nonce, sizeof nonce),
                          (GDestroyNotify) g_bytes_unref);
  g_signal_connect_object (msg, "wrote-informational", G_CALLBACK (control_upgrade_written), self,
                           0);
}

static void
data_upgrade_written (SoupServerMessage *msg, gpointer user_data)
{
  ZltWsListener *self = ZLT_WS_LISTENER (user_data);
  g_autoptr (ZltWsStream) stream = NULL;
  g_autofree char *connection_id = g_strdup (g_object_get_data (G_OBJECT (msg), "zlt-connection"));

  g_signal_handlers_disconnect_by_func (msg, data_upgrade_written, user_data);
  stream = take_back (self, msg, NULL);
  if (stream == NULL)
    return;
  if (zlt_ws_stream_get_n_buffered (stream) > 0)
    {
      /* the peer did not wait for our 101: relay through our stream, which holds
       * what it sent early */
      zlt_control_listener_emit_data_stream (ZLT_CONTROL_LISTENER (self), connection_id,
                                             G_IO_STREAM (stream));
      return;
    }
  /* relay the socket (or TLS) connection itself, so a plain socket can be spliced */
  zlt_ws_stream_detach (stream);
  zlt_control_listener_emit_data_stream (ZLT_CONTROL_LISTENER (self), connection_id,
                                         zlt_ws_stream_get_base (stream));
}

static void
standby_upgrade_written (SoupServerMessage *msg, gpointer user_data)
{
  ZltWsListener *self = ZLT_WS_LISTENER (user_data);
  g_autoptr (ZltWsStream) stream = NULL;
  g_autofree char *tunnel_id = g_strdup (g_object_get_data (G_OBJECT (msg), "zlt-tunnel"));
  g_autofree char *standby_id = g_strdup (g_object_get_data (G_OBJECT (msg), "zlt-standby"));

  g_signal_handlers_disconnect_by_func (msg, standby_upgrade_written, user_data);
  stream = take_back (self, msg, NULL);
  if (stream == NULL)
    return;
  zlt_ws_stream_detach (stream);
  if (zlt_ws_stream_get_n_buffered (stream) > 0)
    {
      /* an agent sends nothing on a standby connection before the server binds it
       * (PROTOCOL-v2.md §8): this is not one */
      g_debug ("closing a standby connection whose agent did not wait for its binding");
      zlt_net_close_with_reset (zlt_ws_stream_get_base (stream));
      return;
    }
  zlt_control_listener_emit_standby_stream (ZLT_CONTROL_LISTENER (self), tunnel_id, standby_id,
                                            zlt_ws_stream_get_base (stream));
}

static void
reply_text (SoupServerMessage *msg, guint status, const char *text)
{
  soup_server_message_set_status (msg, status, NULL);
  soup_server_message_set_response (msg, "text/plain", SOUP_MEMORY_COPY, text, strlen (text));
}

/* The server speaks of verdicts; we speak HTTP (PROTOCOL-v2.md §3, §6). */
static guint
status_of_verdict (ZltDataVerdict verdict)
{
  switch (verdict)
    {
    case ZLT_DATA_ACCEPT:
      return SOUP_STATUS_SWITCHING_PROTOCOLS;
    case ZLT_DATA_PROBE_OK:
      return SOUP_STATUS_NO_CONTENT;
    case ZLT_DATA_MALFORMED:
      return SOUP_STATUS_BAD_REQUEST;
    case ZLT_DATA_NO_SUCH_SERVICE:
      return SOUP_STATUS_NOT_FOUND;
    case ZLT_DATA_CONFLICT:
      return SOUP_STATUS_CONFLICT;
    case ZLT_DATA_UNAVAILABLE:
      return SOUP_STATUS_SERVICE_UNAVAILABLE;
    case ZLT_DATA_FORBIDDEN:
    default:
      return SOUP_STATUS_FORBIDDEN;
    }
}

/* A standby data connection (PROTOCOL-v2.md §8): X-Zlt-Standby instead of
 * X-Zlt-Connection, and nothing of an access stream. */
static void
handle_standby (ZltWsListener *self, SoupServerMessage *msg, const char *tunnel_id,
                const char *standby_id, const char *mac)
{
  SoupMessageHeaders *req = soup_server_message_get_request_headers (msg);
  SoupMessageHeaders *resp = soup_server_message_get_response_headers (msg);
  ZltDataVerdict verdict;

  if (tunnel_id == NULL || mac == NULL
      || soup_message_headers_get_one (req, "X-Zlt-Connection") != NULL
      || soup_message_headers_get_one (req, "X-Zlt-Service") != NULL
      || soup_message_headers_get_one (req, "X-Zlt-Probe") != NULL)
    {
      reply_text (msg, SOUP_STATUS_BAD_REQUEST, "not a zlt standby upgrade");
      return;
    }
  verdict = zlt_control_listener_emit_standby_request (ZLT_CONTROL_LISTENER (self), tunnel_id,
                                                       standby_id, mac);
  if (verdict != ZLT_DATA_ACCEPT)
    {
      reply_text (msg, status_of_verdict (verdict), "standby connection refused");
      return;
    }
  soup_server_message_set_status (msg, SOUP_STATUS_SWITCHING_PROTOCOLS, NULL);
  soup_message_headers_replace (resp, "Upgrade", ZLT_WS_DATA_UPGRADE);
  soup_message_headers_replace (resp, "Connection", "Upgrade");
  g_object_set_data_full (G_OBJECT (msg), "zlt-tunnel", g_strdup (tunnel_id), g_free);
  g_object_set_data_full (G_OBJECT (msg), "zlt-standby", g_strdup (standby_id), g_free);
  g_signal_connect_object (msg, "wrote-informational", G_CALLBACK (standby_upgrade_written), self,
                           0);
}

static void
handle_data (ZltWsListener *self, SoupServerMessage *msg)
{
  SoupMessageHeaders *req = soup_server_message_get_request_headers (msg);
  SoupMessageHeaders *resp = soup_server_message_get_response_headers (msg);
  const char *tunnel_id = soup_message_headers_get_one (req, "X-Zlt-Tunnel");
  const char *connection_id = soup_message_headers_get_one (req, "X-Zlt-Connection");
  const char *mac = soup_message_headers_get_one (req, "X-Zlt-Mac");
  /* present on access streams only (PROTOCOL-v2.md §6) */
  const char *service = soup_message_headers_get_one (req, "X-Zlt-Service");
  gboolean probe = g_strcmp0 (soup_message_headers_get_one (req, "X-Zlt-Probe"), "1") == 0;
  /* a standby connection to park (PROTOCOL-v2.md §8) */
  const char *standby_id = soup_message_headers_get_one (req, "X-Zlt-Standby");
  ZltDataVerdict verdict;

  if (soup_server_message_get_method (msg) == SOUP_METHOD_GET
      && soup_message_headers_header_contains (req, "Upgrade", ZLT_WS_DATA_UPGRADE)
      && soup_message_headers_header_contains (req, "Connection", "Upgrade") && standby_id != NULL)
    {
      handle_standby (self, msg, tunnel_id, standby_id, mac);
      return;
    }
  if (soup_server_message_get_method (msg) != SOUP_METHOD_GET
      || !soup_message_headers_header_contains (req, "Upgrade", ZLT_WS_DATA_UPGRADE)
      || !soup_message_headers_header_contains (req, "Connection", "Upgrade") || tunnel_id == NULL
      || connection_id == NULL || mac == NULL)
    {
      reply_text (msg, SOUP_STATUS_BAD_REQUEST, "not a zlt data upgrade");
      return;
    }
  verdict = zlt_control_listener_emit_data_request (ZLT_CONTROL_LISTENER (self), tunnel_id,
                                                    connection_id, mac, service, probe);
  if (verdict == ZLT_DATA_PROBE_OK)
    {
      soup_server_message_set_status (msg, SOUP_STATUS_NO_CONTENT, NULL);
      return;
    }
  if (verdict != ZLT_DATA_ACCEPT)
    {
      reply_text (msg, status_of_verdict (verdict), "data connection refused");
      return;
    }
  soup_server_message_set_status (msg, SOUP_STATUS_SWITCHING_PROTOCOLS, NULL);
  soup_message_headers_replace (resp, "Upgrade", ZLT_WS_DATA_UPGRADE);
  soup_message_headers_replace (resp, "Connection", "Upgrade");
  g_object_set_data_full (G_OBJECT (msg), "zlt-connection", g_strdup (connection_id), g_free);
  g_signal_connect_object (msg, "wrote-informational", G_CALLBACK (data_upgrade_written), self, 0);
}

static void
server_callback (SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query,
                 gpointer user_data)
{
  ZltWsListener *self = user_data;

  if (g_strcmp0 (path, ZLT_WS_CONTROL_PATH) == 0)
    handle_control (self, msg);
  else if (g_strcmp0 (path, ZLT_WS_DATA_PATH) == 0)
    handle_data (self, msg);
  else
    reply_text (msg, SOUP_STATUS_NOT_FOUND, "not found");
}

/* ---- data and standby upgrades, read and answered here ---- */

static GIOStream *
conn_base (ZltWsConn *conn)
{
  return conn->tls ? G_IO_STREAM (conn->tls) : G_IO_STREAM (conn->connection);
}

/* The Date header's value, as libsoup writes it on its answers. */
static const char *
http_date (ZltWsListener *self)
{
  gint64 second = g_get_real_time () / G_USEC_PER_SEC;

  if (self->date == NULL || second != self->date_second)
    {
      g_autoptr (GDateTime) now = g_date_time_new_from_unix_utc (second);

      g_free (self->date);
      self->date = soup_date_time_to_string (now, SOUP_DATE_HTTP);
      self->date_second = second;
    }
  return self->date;
}

/* Writes @answer (a few hundred bytes on a connection that never sent anything: the
 * socket takes them at once). */
static gboolean
conn_write_answer (ZltWsConn *conn, const char *answer)
{
  GOutputStream *output = g_io_stream_get_output_stream (conn_base (conn));
  g_autoptr (GError) error = NULL;
  gsize len = strlen (answer);
  gssize n = g_pollable_output_stream_write_nonblocking (G_POLLABLE_OUTPUT_STREAM (output), answer,
                                                         len, NULL, &error);

  if (n != (gssize) len)
    {
      g_debug ("cannot answer an upgrade: %s", error ? error->message : "short write");
      return FALSE;
    }
  return TRUE;
}

static void
refused_closed (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_io_stream_close_finish (G_IO_STREAM (source), result, NULL);
  g_object_unref (source);
}

/* Answers a refusal as libsoup's path does (reply_text(), then "Connection: close"
 * and the close) and lets go of @conn. */
static void
conn_refuse (ZltWsListener *self, ZltWsConn *conn, guint status, const char *text)
{
  g_autofree char *answer = g_strdup_printf ("HTTP/1.1 %u %s\r\n"
                                             "Date: %s\r\n"
                                             "Content-Type: text/plain\r\n"
                                             "Connection: close\r\n"
                                             "Content-Length: %zu\r\n"
                                             "\r\n"
                                             "%s",
                                             status, soup_status_get_phrase (status),
                                             http_date (self), strlen (text), text);
  GIOStream *base;

  if (!conn_write_answer (conn, answer))
    {
      conn_close (conn);
      return;
    }
  /* closed as libsoup closes it: on TLS with a close_notify */
  base = g_object_ref (conn_base (conn));
  conn_free (conn, FALSE);
  g_io_stream_close_async (base, G_PRIORITY_DEFAULT, NULL, refused_closed, NULL);
}

/* Answers a head of ours: the server's verdict, then the 101 and the connection
 * handed on as data_upgrade_written() and standby_upgrade_written() hand it, or the
 * refusal handle_data() and handle_standby() give. */
static void
conn_answer_own (ZltWsConn *conn, const ZltWsUpgradeHead *head)
{
  g_autoptr (ZltWsListener) self = g_object_ref (conn->self);
  ZltControlListener *listener = ZLT_CONTROL_LISTENER (self);
  g_autofree char *answer = NULL;
  g_autoptr (GIOStream) base = NULL;
  ZltDataVerdict verdict;

  self->n_own_requests++;
  /* no longer pending: whatever the server's handlers do (even close this listener)
   * leaves it to us */
  conn_detach (conn);
  if (head->standby_id != NULL)
    verdict = zlt_control_listener_emit_standby_request (listener, head->tunnel_id,
                                                         head->standby_id, head->mac);
  else
    verdict = zlt_control_listener_emit_data_request (
        listener, head->tunnel_id, head->connection_id, head->mac, head->service, FALSE);
  if (verdict != ZLT_DATA_ACCEPT)
    {
      conn_refuse (self, conn, status_of_verdict (verdict),
                   head->standby_id != NULL ? "standby connection refused"
                                            : "data connection refused");
      return;
    }
  answer = g_strdup_printf ("HTTP/1.1 101 Switching Protocols\r\n"
                            "Date: %s\r\n"
                            "Upgrade: " ZLT_WS_DATA_UPGRADE "\r\n"
                            "Connection: Upgrade\r\n"
                            "\r\n",
                            http_date (self));
  if (!conn_write_answer (conn, answer))
    {
      conn_close (conn);
      return;
    }
  /* no longer pending; nothing was read past its head */
  base = g_object_ref (conn_base (conn));
  conn_free (conn, FALSE);
  if (head->standby_id != NULL)
    zlt_control_listener_emit_standby_stream (listener, head->tunnel_id, head->standby_id, base);
  else
    zlt_control_listener_emit_data_stream (listener, head->connection_id, base);
}

static gboolean on_head_readable (GObject *stream, gpointer user_data);

/* Reads what the peer sent; answers a head of ours, hands anything else to libsoup
 * with what was read. Returns TRUE while it waits for more. */
static gboolean
conn_read_head (ZltWsConn *conn)
{
  GPollableInputStream *input
      = G_POLLABLE_INPUT_STREAM (g_io_stream_get_input_stream (conn_base (conn)));
  g_auto (ZltWsUpgradeHead) head = { 0 };
  guint8 buffer[ZLT_WS_MAX_REQUEST_HEAD];
  ZltWsHeadKind kind = ZLT_WS_HEAD_INCOMPLETE;

  while (kind == ZLT_WS_HEAD_INCOMPLETE)
    {
      g_autoptr (GError) error = NULL;
      gssize n = g_pollable_input_stream_read_nonblocking (
          input, buffer, ZLT_WS_MAX_REQUEST_HEAD - (conn->head ? conn->head->len : 0), NULL,
          &error);

      if (n < 0 && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        {
          if (conn->watch == NULL)
            {
              conn->watch = zlt_net_input_source_new (conn_base (conn), NULL);
              g_source_set_callback (conn->watch, G_SOURCE_FUNC (on_head_readable), conn, NULL);
              g_source_attach (conn->watch, g_main_context_get_thread_default ());
            }
          return TRUE;
        }
      if (n <= 0)
        {
          /* closed, reset or broken before its head was complete */
          conn_close (conn);
          return FALSE;
        }
      /* made with the first bytes: a silent connection holds none */
      if (conn->head == NULL)
        conn->head = g_byte_array_sized_new (MAX ((guint) n, 512));
      g_byte_array_append (conn->head, buffer, n);
      kind = zlt_ws_upgrade_head_parse (conn->head->data, conn->head->len, ZLT_WS_MAX_REQUEST_HEAD,
                                        &head);
    }
  conn_unwatch (conn);
  /* with bytes after the head (a peer that did not wait for the 101), libsoup's path
   * keeps them for the relay, or refuses the standby connection */
  if (kind == ZLT_WS_HEAD_OURS && head.head_len == conn->head->len)
    conn_answer_own (conn, &head);
  else
    {
      g_autoptr (GBytes) read_ahead = g_byte_array_free_to_bytes (g_steal_pointer (&conn->head));

      conn_start_http (conn, read_ahead);
    }
  return FALSE;
}

static gboolean
on_head_readable (GObject *stream, gpointer user_data)
{
  ZltWsConn *conn = user_data;

  /* whatever ends the wait (conn_free(), libsoup) destroyed our source */
  return conn_read_head (conn) ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
}

/* The first bytes are in (on TLS: the handshake is done). */
static void
conn_start_request (ZltWsConn *conn)
{
  if (!conn->self->own_upgrades)
    {
      conn_start_http (conn, NULL);
      return;
    }
  conn->state = CONN_HEAD;
  conn_read_head (conn);
}

/* ---- accepting ---- */

static void
on_accepted (ZltAcceptLoop *loop, GSocketConnection *connection, gpointer user_data)
{
  ZltWsListener *self = user_data;
  g_autoptr (GSocketAddress) remote = g_socket_connection_get_remote_address (connection, NULL);
  ZltPendingSource *source;
  ZltWsConn *conn;

  source = zlt_control_listener_admit (ZLT_CONTROL_LISTENER (self), remote);
  if (source == NULL)
    {
      g_debug ("refusing a connection: too many not yet upgraded");
      g_io_stream_close (G_IO_STREAM (connection), NULL, NULL);
      return;
    }
  conn = g_new0 (ZltWsConn, 1);
  conn->self = self;
  conn->state = CONN_WAITING;
  conn->connection = g_object_ref (connection);
  conn->source = source;
  conn->deadline = g_get_monotonic_time () + (gint64) self->handshake_timeout_ms * 1000;
  conn->link.data = conn;
  conn->queue_link.data = conn;
  conn->lowat = 1;
  g_queue_push_tail_link (&self->conns, &conn->link);
  /* a deadline armed for a connection gone since is earlier than this one: it fires
   * first and arms the next (arming on every connection would cost a write to the
   * context's wakeup fd each) */
  if (self->conns.length == 1
      && (g_source_get_ready_time (self->deadline) == -1
          || g_source_get_ready_time (self->deadline) > conn->deadline))
    arm_deadline (self);
  if (self->certificate != NULL)
    {
      conn_set_lowat (conn, TLS_RECORD_HEADER);
      conn_watch (conn, on_first_record);
    }
  else
    conn_watch (conn, on_first_byte);
}

static void
zlt_ws_listener_close (ZltListener *listener)
{
  ZltWsListener *self = ZLT_WS_LISTENER (listener);
  ZltWsConn *conn;
  GList *link;

  self->closed = TRUE;
  if (self->loop != NULL)
    zlt_accept_loop_close (self->loop);
  /* handshakes in progress end in their worker threads: cancel them and let go;
   * handshake_done() frees what remains */
  while ((link = g_queue_pop_head_link (&self->handshaking)) != NULL)
    {
      conn = link->data;
      count_handshake (self, conn->source, -1);
      conn_detach (conn);
      g_cancellable_cancel (conn->cancellable);
    }
  while ((conn = g_queue_peek_head (&self->conns)) != NULL)
    conn_close (conn);
  if (self->soup != NULL)
    soup_server_disconnect (self->soup);
}

static void
zlt_ws_listener_dispose (GObject *object)
{
  ZltWsListener *self = ZLT_WS_LISTENER (object);

  zlt_listener_close (ZLT_LISTENER (self));
  g_clear_object (&self->loop);
  g_clear_object (&self->soup);
  g_clear_object (&self->certificate);
  if (self->deadline != NULL)
    {
      g_source_destroy (self->deadline);
      g_clear_pointer (&self->deadline, g_source_unref);
    }
  G_OBJECT_CLASS (zlt_ws_listener_parent_class)->dispose (object);
}

static void
zlt_ws_listener_finalize (GObject *object)
{
  ZltWsListener *self = ZLT_WS_LISTENER (object);

  g_hash_table_unref (self->by_peer);
  g_hash_table_unref (self->handshakes_by_source);
  g_free (self->date);
  G_OBJECT_CLASS (zlt_ws_listener_parent_class)->finalize (object);
}

static void
zlt_ws_listener_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  ZltWsListener *self = ZLT_WS_LISTENER (object);

  switch (prop_id)
    {
    case PROP_MAX_HANDSHAKES:
      g_value_set_uint (value, self->max_handshakes);
      break;
    case PROP_MAX_HANDSHAKES_PER_SOURCE:
      g_value_set_uint (value, self->max_handshakes_per_source);
      break;
    case PROP_N_HANDSHAKES:
      g_value_set_uint (value, g_queue_get_length (&self->handshaking));
      break;
    case PROP_N_HANDSHAKES_QUEUED:
      g_value_set_uint (value, g_queue_get_length (&self->handshake_queue));
      break;
    case PROP_OWN_UPGRADES:
      g_value_set_boolean (value, self->own_upgrades);
      break;
    case PROP_N_OWN_REQUESTS:
      g_value_set_uint64 (value, self->n_own_requests);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
zlt_ws_listener_set_property (GObject *object, guint prop_id, const GValue *value,
                              GParamSpec *pspec)
{
  ZltWsListener *self = ZLT_WS_LISTENER (object);

  switch (prop_id)
    {
    case PROP_MAX_HANDSHAKES:
      if (self->max_handshakes == g_value_get_uint (value))
        return;
      self->max_handshakes = g_value_get_uint (value);
      break;
    case PROP_MAX_HANDSHAKES_PER_SOURCE:
      if (self->max_handshakes_per_source == g_value_get_uint (value))
        return;
      self->max_handshakes_per_source = g_value_get_uint (value);
      break;
    case PROP_OWN_UPGRADES:
      if (self->own_upgrades == g_value_get_boolean (value))
        return;
      self->own_upgrades = g_value_get_boolean (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      return;
    }
  g_object_notify_by_pspec (object, pspec);
  pump_handshakes (self);
}

static void
zlt_ws_listener_class_init (ZltWsListenerClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  ZltListenerClass *listener_class = ZLT_LISTENER_CLASS (klass);

  object_class->dispose = zlt_ws_listener_dispose;
  object_class->finalize = zlt_ws_listener_finalize;
  object_class->get_property = zlt_ws_listener_get_property;
  object_class->set_property = zlt_ws_listener_set_property;
  listener_class->close = zlt_ws_listener_close;

  /**
   * ZltWsListener:max-handshakes:
   * TLS handshakes in progress at once, at most (each holds a worker thread).
   */
  props[PROP_MAX_HANDSHAKES]
      = g_param_spec_uint ("max-handshakes", NULL, NULL, 1, 1024, ZLT_WS_MAX_HANDSHAKES,
                           G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  /**
   * ZltWsListener:max-handshakes-per-source:
   * TLS handshakes in progress from one IPv4 address or IPv6 /64, at most.
   */
  props[PROP_MAX_HANDSHAKES_PER_SOURCE] = g_param_spec_uint (
      "max-handshakes-per-source", NULL, NULL, 1, 1024, ZLT_WS_MAX_HANDSHAKES_PER_SOURCE,
      G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  props[PROP_N_HANDSHAKES]
      = g_param_spec_uint ("n-handshakes", NULL, NULL, 0, G_MAXUINT, 0,
                           G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  props[PROP_N_HANDSHAKES_QUEUED]
      = g_param_spec_uint ("n-handshakes-queued", NULL, NULL, 0, G_MAXUINT, 0,
                           G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  /**
   * ZltWsListener:own-upgrades:
   * Whether data and standby upgrades in the form our agents send are read and
   * answered by the listener itself (the default) rather than by libsoup; the
   * answers are the same (tests compare both ways).
   */
  props[PROP_OWN_UPGRADES]
      = g_param_spec_boolean ("own-upgrades", NULL, NULL, TRUE,
                              G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  /**
   * ZltWsListener:n-own-requests:
   * Data and standby requests the listener read and answered itself so far, upgraded or
   * refused (not notified).
   */
  props[PROP_N_OWN_REQUESTS]
      = g_param_spec_uint64 ("n-own-requests", NULL, NULL, 0, G_MAXUINT64, 0,
                             G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, props);
}

static void
zlt_ws_listener_init (ZltWsListener *self)
{
  self->max_handshakes = ZLT_WS_MAX_HANDSHAKES;
  self->max_handshakes_per_source = ZLT_WS_MAX_HANDSHAKES_PER_SOURCE;
  self->own_upgrades = TRUE;
  self->by_peer = g_hash_table_new (g_str_hash, g_str_equal);
  self->handshakes_by_source = g_hash_table_new (NULL, NULL);
  self->deadline = g_source_new (&deadline_funcs, sizeof (GSource));
  g_source_set_callback (self->deadline, on_deadline, self, NULL);
}

ZltControlListener *
zlt_ws_listener_new (const char *bind_address, guint16 port, GTlsCertificate *certificate,
                     guint handshake_timeout_ms, GError **error)
{
  g_autoptr (ZltWsListener) self = NULL;
  g_autoptr (GInetAddress) inet = NULL;
  g_autoptr (GSocketAddress) address = NULL;

  inet = g_inet_address_new_from_string (bind_address);
  if (inet == NULL)
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                   _ ("“%s” is not an IP address to listen on"), bind_address);
      return NULL;
    }
  self = g_object_new (ZLT_TYPE_WS_LISTENER, NULL);
  self->certificate = certificate ? g_object_ref (certificate) : NULL;
  self->handshake_timeout_ms = handshake_timeout_ms;
  self->soup = soup_server_new ("server-header", NULL, NULL);
  soup_server_add_handler (self->soup, NULL, server_callback, self, NULL);
  g_signal_connect (self->soup, "request-started", G_CALLBACK (on_request_started), self);

  address = g_inet_socket_address_new (inet, port);
  self->loop = zlt_accept_loop_new (address, error);
  if (self->loop == NULL)
    {
      g_autofree char *where = zlt_net_join_host_port (bind_address, port);
      g_prefix_error (error, _ ("failed to listen on %s: "), where);
      return NULL;
    }
  zlt_listener_set_port (ZLT_LISTENER (self), zlt_accept_loop_get_port (self->loop));
  g_source_attach (self->deadline, g_main_context_get_thread_default ());
  zlt_accept_loop_start (self->loop, on_accepted, self);
  return ZLT_CONTROL_LISTENER (g_steal_pointer (&self));
}
