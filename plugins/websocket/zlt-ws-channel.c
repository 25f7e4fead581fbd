/* zlt-ws-channel.c: binary WebSocket messages in, binary messages out */
#include "config.h"

#include <glib/gi18n-lib.h>

#include "zlt-ws-channel.h"
#include "zlt-ws-stream.h"

struct _ZltWsChannel
{
  ZltChannel parent_instance;

  SoupWebsocketConnection *connection;
  GError *error; /* first error seen, reported with ::closed */
  /* queue accounting, when the connection writes through a ZltWsStream (the server's
   * side): frames handed to libsoup against bytes the stream passed on since */
  ZltWsStream *stream;
  guint64 written_before; /* the stream's count when the channel began */
  guint64 queued;         /* bytes of the frames we sent */
};

G_DEFINE_FINAL_TYPE (ZltWsChannel, zlt_ws_channel, ZLT_TYPE_CHANNEL)

static void
on_message (SoupWebsocketConnection *connection, gint type, GBytes *message, gpointer user_data)
{
  ZltWsChannel *self = user_data;

  if (type != SOUP_WEBSOCKET_DATA_BINARY)
    {
      /* v1 peers never send text: anything else is a protocol violation */
      if (self->error == NULL)
        self->error = g_error_new (ZLT_ERROR, ZLT_ERROR_PROTOCOL,
                                   _ ("peer sent a text message on the control channel"));
      soup_websocket_connection_close (connection, SOUP_WEBSOCKET_CLOSE_UNSUPPORTED_DATA,
                                       "binary frames only");
      return;
    }
  zlt_channel_emit_message (ZLT_CHANNEL (self), message);
}

static void
on_error (SoupWebsocketConnection *connection, GError *error, gpointer user_data)
{
  ZltWsChannel *self = user_data;

  if (self->error == NULL)
    self->error = g_error_copy (error);
  /* libsoup drops the connection without a word when a message is over the limit;
   * say why first (1009), while the connection still takes a frame */
  if (g_error_matches (error, SOUP_WEBSOCKET_ERROR, SOUP_WEBSOCKET_CLOSE_TOO_BIG)
      && soup_websocket_connection_get_state (connection) == SOUP_WEBSOCKET_STATE_OPEN)
    soup_websocket_connection_close (connection, SOUP_WEBSOCKET_CLOSE_TOO_BIG, "message too big");
}

static void
on_closed (SoupWebsocketConnection *connection, gpointer user_data)
{
  ZltWsChannel *self = user_data;
  gushort code = soup_websocket_connection_get_close_code (connection);

  if (self->error == NULL && code != SOUP_WEBSOCKET_CLOSE_NORMAL
      && code != SOUP_WEBSOCKET_CLOSE_GOING_AWAY && code != 0)
    {
      const char *data = soup_websocket_connection_get_close_data (connection);
      self->error = g_error_new (ZLT_ERROR, ZLT_ERROR_CLOSED, _ ("connection closed (code %u%s%s)"),
                                 code, data && *data ? ": " : "", data ? data : "");
    }
  zlt_channel_emit_closed (ZLT_CHANNEL (self), self->error);
}

/* Bytes of our frames that libsoup holds and the socket (or TLS) has not taken yet.
 * libsoup also writes frames of its own (pongs, the close): once more was written than
 * we queued, the excess was theirs and is forgotten, so their bytes can hide ours only
 * until the next send or call. */
static gsize
zlt_ws_channel_get_pending (ZltChannel *channel)
{
  ZltWsChannel *self = ZLT_WS_CHANNEL (channel);
  guint64 written;

  if (self->stream == NULL)
    return 0;
  written = zlt_ws_stream_get_n_written (self->stream) - self->written_before;
  if (written >= self->queued)
    {
      self->written_before += written - self->queued;
      return 0;
    }
  return (gsize) (self->queued - written);
}

static gboolean
zlt_ws_channel_send (ZltChannel *channel, GBytes *message, GError **error)
{
  ZltWsChannel *self = ZLT_WS_CHANNEL (channel);
  gsize len;
  gconstpointer data;

  if (soup_websocket_connection_get_state (self->connection) != SOUP_WEBSOCKET_STATE_OPEN)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_CLOSED, _ ("connection is closing"));
      return FALSE;
    }
  data = g_bytes_get_data (message, &len);
  zlt_ws_channel_get_pending (channel);
  /* what goes on the wire: libsoup sends each message as one unmasked frame (a
   * server's) with no extension, behind a 2, 4 or 10 byte header */
  self->queued += len + (len < 126 ? 2 : len <= G_MAXUINT16 ? 4 : 10);
  soup_websocket_connection_send_binary (self->connection, data, len);
  return TRUE;
}

static void
zlt_ws_channel_close (ZltChannel *channel, guint16 code, const char *reason)
{
  ZltWsChannel *self = ZLT_WS_CHANNEL (channel);

  if (soup_websocket_connection_get_state (self->connection) == SOUP_WEBSOCKET_STATE_OPEN)
    soup_websocket_connection_close (self->connection, code ? code : SOUP_WEBSOCKET_CLOSE_NORMAL,
                                     reason);
}

static void
zlt_ws_channel_dispose (GObject *object)
{
  ZltWsChannel *self = ZLT_WS_CHANNEL (object);

  if (self->connection != NULL)
    {
      g_signal_handlers_disconnect_by_data (self->connection, self);
      if (soup_websocket_connection_get_state (self->connection) == SOUP_WEBSOCKET_STATE_OPEN)
        soup_websocket_connection_close (self->connection, SOUP_WEBSOCKET_CLOSE_GOING_AWAY, NULL);
      g_clear_object (&self->connection);
    }
  g_clear_object (&self->stream);
  G_OBJECT_CLASS (zlt_ws_channel_parent_class)->dispose (object);
}

static void
zlt_ws_channel_finalize (GObject *object)
{
  ZltWsChannel *self = ZLT_WS_CHANNEL (object);

  g_clear_error (&self->error);
  G_OBJECT_CLASS (zlt_ws_channel_parent_class)->finalize (object);
}

static void
zlt_ws_channel_class_init (ZltWsChannelClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  ZltChannelClass *channel_class = ZLT_CHANNEL_CLASS (klass);

  object_class->dispose = zlt_ws_channel_dispose;
  object_class->finalize = zlt_ws_channel_finalize;
  channel_class->send = zlt_ws_channel_send;
  channel_class->close = zlt_ws_channel_close;
  channel_class->get_pending = zlt_ws_channel_get_pending;
}

static void
zlt_ws_channel_init (ZltWsChannel *self)
{
}

ZltChannel *
zlt_ws_channel_new (SoupWebsocketConnection *connection, const char *peer_address, GBytes *nonce)
{
  ZltWsChannel *self;
  GIOStream *stream;

  g_return_val_if_fail (SOUP_IS_WEBSOCKET_CONNECTION (connection), NULL);

  self = g_object_new (ZLT_TYPE_WS_CHANNEL, "peer-address", peer_address, NULL);
  self->connection = g_object_ref (connection);
  stream = soup_websocket_connection_get_io_stream (connection);
  if (ZLT_IS_WS_STREAM (stream))
    {
      self->stream = g_object_ref (ZLT_WS_STREAM (stream));
      self->written_before = zlt_ws_stream_get_n_written (self->stream);
    }
  zlt_channel_set_nonce (ZLT_CHANNEL (self), nonce);
  soup_websocket_connection_set_max_incoming_payload_size (connection, ZLT_WS_MAX_INCOMING);
  /* heartbeats are the protocol's own; no WebSocket pings */
  soup_websocket_connection_set_keepalive_interval (connection, 0);
  g_signal_connect (connection, "message", G_CALLBACK (on_message), self);
  g_signal_connect (connection, "error", G_CALLBACK (on_error), self);
  g_signal_connect (connection, "closed", G_CALLBACK (on_closed), self);
  return ZLT_CHANNEL (self);
}
