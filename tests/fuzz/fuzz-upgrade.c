/* fuzz-upgrade.c: the raw HTTP bytes an agent (or anyone) sends to the server's port,
 * fed to the real websocket plugin's listener: data-connection upgrades on
 * /tunnel/v1/data, control upgrades on /tunnel/v1, and whatever else arrives.
 *
 * Once: the plugins are loaded from ZLT_PLUGIN_DIR (the build tree's by default), and
 * one control listener is made on 127.0.0.1:0 through the websocket control transport,
 * with handlers for its signals that answer as the server would for one known tunnel
 * and connection (a fixed session key; the seed corpus holds a valid MAC for them).
 * Per input: a new TCP connection writes the bytes, half-closes, and reads the answer
 * until the server closes, spinning the main context meanwhile.
 *
 * Standby connections (X-Zlt-Standby, PROTOCOL-v2.md §8) of the same tunnel are parked
 * when their number is even, refused as over the bound (503) when it is odd.
 *
 * Checks, besides "no crash, no leak": the server closes every connection the client
 * half-closed within the listener's handshake deadline (plus margin); an answer is an
 * HTTP status line; a 101 matches an accepted data or standby request or a control
 * channel; every accepted data request yields exactly one data stream, every accepted
 * standby request at most one standby stream (none when the client sent bytes before
 * its binding); every control channel ends once its peer hung up; no file descriptors
 * pile up. */
#include "config.h"

#include <string.h>

#include "zlt-fuzz.h"

#define TUNNEL_ID "6ba7b810-9dad-11d1-80b4-00c04fd430c8"
#define CONNECTION_ID "f47ac10b-58cc-4372-a567-0e02b2c3d479"
#define GONE_CONNECTION_ID "0f8fad5b-d9cb-469f-a165-70867728950e" /* answered 503 */
#define ACCESS_SERVICE "web"
#define HANDSHAKE_TIMEOUT_MS 2000
#define INPUT_DEADLINE_MS (HANDSHAKE_TIMEOUT_MS + 3000)
#define MAX_REPLY (256 * 1024)
#define FD_SLACK 32

static struct
{
  ZltPluginLoader *loader;
  ZltControlTransport *transport;
  ZltControlListener *listener;
  GSocketAddress *address;
  guint8 session_key[ZLT_HASH_SIZE];
  ZltUuid tunnel_id, connection_id, gone_id;
  GPtrArray *channels; /* open control channels */
  guint n_channels, n_requests, n_accepted, n_streams, n_messages;
  guint n_standby_accepted, n_standby_streams;
  guint baseline_fds;
} fuzz;

/* ---- the server's side ---- */

static ZltDataVerdict
on_data_request (ZltControlListener *listener, const char *tunnel_id, const char *connection_id,
                 const char *mac_hex, const char *service, gboolean probe, gpointer user_data)
{
  ZltUuid tid, cid;
  guint8 mac[ZLT_HASH_SIZE], expected[ZLT_HASH_SIZE];

  fuzz.n_requests++;
  ZLT_FUZZ_CHECK (tunnel_id != NULL && connection_id != NULL && mac_hex != NULL,
                  "data-request without its three headers");
  if (!zlt_uuid_parse (tunnel_id, &tid) || !zlt_uuid_parse (connection_id, &cid)
      || !zlt_hash_from_hex (mac_hex, mac))
    return ZLT_DATA_MALFORMED;
  if (service != NULL && !zlt_service_name_is_valid (service))
    return ZLT_DATA_MALFORMED;
  if (!zlt_uuid_equal (&tid, &fuzz.tunnel_id))
    return ZLT_DATA_FORBIDDEN;
  zlt_data_mac (fuzz.session_key, &tid, &cid, expected);
  if (!zlt_secure_equal (expected, sizeof expected, mac, sizeof mac))
    return ZLT_DATA_FORBIDDEN;
  if (service != NULL)
    {
      if (!g_str_equal (service, ACCESS_SERVICE))
        return ZLT_DATA_NO_SUCH_SERVICE;
      /* a probe asks whether a stream would pass: it never becomes one */
      if (probe)
        return ZLT_DATA_PROBE_OK;
    }
  else if (zlt_uuid_equal (&cid, &fuzz.gone_id))
    return ZLT_DATA_UNAVAILABLE;
  else if (!zlt_uuid_equal (&cid, &fuzz.connection_id))
    return ZLT_DATA_FORBIDDEN;
  fuzz.n_accepted++;
  return ZLT_DATA_ACCEPT;
}

static void
on_data_stream (ZltControlListener *listener, const char *connection_id, GIOStream *stream,
                gpointer user_data)
{
  static const char hello[] = "zlt-fuzz data stream\n";

  fuzz.n_streams++;
  ZLT_FUZZ_CHECK (connection_id != NULL && G_IS_IO_STREAM (stream), "data-stream without a stream");
  /* the relay would start here; a few bytes show the stream is the client's */
  g_output_stream_write_all (g_io_stream_get_output_stream (stream), hello, sizeof hello - 1, NULL,
                             NULL, NULL);
  g_io_stream_close (stream, NULL, NULL);
}

static ZltDataVerdict
on_standby_request (ZltControlListener *listener, const char *tunnel_id, const char *standby_id,
                    const char *mac_hex, gpointer user_data)
{
  ZltUuid tid;
  guint64 id;
  guint8 mac[ZLT_HASH_SIZE], expected[ZLT_HASH_SIZE];

  ZLT_FUZZ_CHECK (tunnel_id != NULL && standby_id != NULL && mac_hex != NULL,
                  "standby-request without its three headers");
  if (!zlt_uuid_parse (tunnel_id, &tid) || !zlt_standby_id_parse (standby_id, &id)
      || !zlt_hash_from_hex (mac_hex, mac))
    return ZLT_DATA_MALFORMED;
  if (!zlt_uuid_equal (&tid, &fuzz.tunnel_id))
    return ZLT_DATA_FORBIDDEN;
  zlt_standby_mac (fuzz.session_key, &tid, id, expected);
  if (!zlt_secure_equal (expected, sizeof expected, mac, sizeof mac))
    return ZLT_DATA_FORBIDDEN;
  if (id % 2 == 1)
    return ZLT_DATA_UNAVAILABLE;
  fuzz.n_standby_accepted++;
  return ZLT_DATA_ACCEPT;
}

static void
on_standby_stream (ZltControlListener *listener, const char *tunnel_id, const char *standby_id,
                   GIOStream *stream, gpointer user_data)
{
  static const guint8 binding[] = { 0xB1 };

  fuzz.n_standby_streams++;
  ZLT_FUZZ_CHECK (tunnel_id != NULL && standby_id != NULL && G_IS_IO_STREAM (stream),
                  "standby-stream without its ids and stream");
  /* the binding would come here, later; a byte shows the stream is the client's */
  g_output_stream_write_all (g_io_stream_get_output_stream (stream), binding, sizeof binding, NULL,
                             NULL, NULL);
  g_io_stream_close (stream, NULL, NULL);
}

static void
on_channel_message (ZltChannel *channel, GBytes *message, gpointer user_data)
{
  fuzz.n_messages++;
}

static void
on_channel_closed (ZltChannel *channel, const GError *error, gpointer user_data)
{
  g_signal_handlers_disconnect_by_data (channel, &fuzz);
  g_ptr_array_remove (fuzz.channels, channel);
}

static void
on_channel (ZltControlListener *listener, ZltChannel *channel, gpointer user_data)
{
  fuzz.n_channels++;
  ZLT_FUZZ_CHECK (zlt_channel_get_nonce (channel) != NULL
                      && g_bytes_get_size (zlt_channel_get_nonce (channel)) == ZLT_NONCE_SIZE,
                  "a control channel without a %u-byte nonce", (guint) ZLT_NONCE_SIZE);
  g_ptr_array_add (fuzz.channels, g_object_ref (channel));
  g_signal_connect (channel, "message", G_CALLBACK (on_channel_message), &fuzz);
  g_signal_connect (channel, "closed", G_CALLBACK (on_channel_closed), &fuzz);
}

/* ---- setup ---- */

static guint
count_fds (void)
{
  g_autoptr (GDir) dir = g_dir_open ("/proc/self/fd", 0, NULL);
  guint n = 0;

  if (dir == NULL)
    return 0;
  while (g_dir_read_name (dir) != NULL)
    n++;
  return n;
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (ZltTransport) transport = NULL;
  g_autoptr (GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  const char *dir = g_getenv ("ZLT_PLUGIN_DIR");

  zlt_fuzz_setup_logging ();
  if (dir == NULL)
    g_setenv ("ZLT_PLUGIN_DIR", ZLT_FUZZ_PLUGIN_DIR, TRUE);

  fuzz.loader = zlt_plugin_loader_new (NULL);
  if (!zlt_plugin_loader_load_all (fuzz.loader, &error))
    g_error ("cannot load the plugins: %s", error->message);
  transport = zlt_plugin_loader_new_transport (fuzz.loader, "websocket", &error);
  if (transport == NULL)
    g_error ("no websocket transport: %s", error->message);
  fuzz.transport = ZLT_CONTROL_TRANSPORT (g_steal_pointer (&transport));
  fuzz.listener = zlt_control_transport_listen_control (fuzz.transport, "127.0.0.1", 0, NULL,
                                                        HANDSHAKE_TIMEOUT_MS, &error);
  if (fuzz.listener == NULL)
    g_error ("cannot listen: %s", error->message);
  g_signal_connect (fuzz.listener, "data-request", G_CALLBACK (on_data_request), NULL);
  g_signal_connect (fuzz.listener, "data-stream", G_CALLBACK (on_data_stream), NULL);
  g_signal_connect (fuzz.listener, "channel", G_CALLBACK (on_channel), NULL);
  g_signal_connect (fuzz.listener, "standby-request", G_CALLBACK (on_standby_request), NULL);
  g_signal_connect (fuzz.listener, "standby-stream", G_CALLBACK (on_standby_stream), NULL);
  fuzz.address
      = g_inet_socket_address_new (loopback, zlt_listener_get_port (ZLT_LISTENER (fuzz.listener)));
  fuzz.channels = g_ptr_array_new_with_free_func (g_object_unref);

  memset (fuzz.session_key, 0x5a, sizeof fuzz.session_key);
  if (!zlt_uuid_parse (TUNNEL_ID, &fuzz.tunnel_id)
      || !zlt_uuid_parse (CONNECTION_ID, &fuzz.connection_id)
      || !zlt_uuid_parse (GONE_CONNECTION_ID, &fuzz.gone_id))
    g_assert_not_reached ();
  fuzz.baseline_fds = count_fds ();
  return 0;
}

/* ---- the client's side ---- */

typedef struct
{
  GSocket *socket;
  GString *reply;
  gboolean closed; /* EOF or reset */
  gboolean timed_out;
} Client;

static gboolean
on_readable (GSocket *socket, GIOCondition condition, gpointer user_data)
{
  Client *c = user_data;
  char buf[16384];

  for (;;)
    {
      g_autoptr (GError) error = NULL;
      gssize n = g_socket_receive (socket, buf, sizeof buf, NULL, &error);

      if (n > 0)
        {
          if (c->reply->len < MAX_REPLY)
            g_string_append_len (c->reply, buf, n);
          continue;
        }
      if (n < 0 && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        return G_SOURCE_CONTINUE;
      c->closed = TRUE; /* EOF, or a reset */
      return G_SOURCE_REMOVE;
    }
}

static gboolean
on_deadline (gpointer user_data)
{
  Client *c = user_data;

  c->timed_out = TRUE;
  return G_SOURCE_REMOVE;
}

/* "HTTP/1.x NNN ..." → NNN; 0 when the reply is empty */
static guint
reply_status (const GString *reply)
{
  if (reply->len == 0)
    return 0;
  ZLT_FUZZ_CHECK (reply->len >= 12
                      && (g_str_has_prefix (reply->str, "HTTP/1.1 ")
                          || g_str_has_prefix (reply->str, "HTTP/1.0 "))
                      && g_ascii_isdigit (reply->str[9]) && g_ascii_isdigit (reply->str[10])
                      && g_ascii_isdigit (reply->str[11]),
                  "the answer does not start with a status line: \"%.40s\"", reply->str);
  return (guint) ((reply->str[9] - '0') * 100 + (reply->str[10] - '0') * 10
                  + (reply->str[11] - '0'));
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autoptr (GError) error = NULL;
  GMainContext *context = g_main_context_get_thread_default ();
  Client c = { 0 };
  GSource *readable, *deadline;
  guint accepted = fuzz.n_accepted, streams = fuzz.n_streams, channels = fuzz.n_channels;
  guint standby_accepted = fuzz.n_standby_accepted, standby_streams = fuzz.n_standby_streams;
  guint status, fds;
  gsize sent = 0;

  c.socket
      = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);
  ZLT_FUZZ_CHECK (c.socket != NULL, "socket: %s", error->message);
  /* blocking: loopback connects and buffers a few kB at once, without the listener */
  ZLT_FUZZ_CHECK (g_socket_connect (c.socket, fuzz.address, NULL, &error), "connect: %s",
                  error->message);
  while (sent < size)
    {
      gssize n = g_socket_send (c.socket, (const char *) data + sent, size - sent, NULL, &error);
      if (n <= 0)
        break; /* the server may close on a bad request before reading it all */
      sent += (gsize) n;
    }
  g_clear_error (&error);
  g_socket_shutdown (c.socket, FALSE, TRUE, NULL);
  g_socket_set_blocking (c.socket, FALSE);

  c.reply = g_string_new (NULL);
  readable = g_socket_create_source (c.socket, G_IO_IN | G_IO_HUP | G_IO_ERR, NULL);
  g_source_set_callback (readable, (GSourceFunc) (GCallback) on_readable, &c, NULL);
  g_source_attach (readable, context);
  deadline = g_timeout_source_new (INPUT_DEADLINE_MS);
  g_source_set_callback (deadline, on_deadline, &c, NULL);
  g_source_attach (deadline, context);
  while (!c.closed && !c.timed_out)
    g_main_context_iteration (context, TRUE);
  g_source_destroy (readable);
  g_source_unref (readable);
  g_source_destroy (deadline);
  g_source_unref (deadline);

  ZLT_FUZZ_CHECK (c.closed,
                  "the server kept a half-closed connection open for %u ms (%" G_GSIZE_FORMAT
                  " bytes in, answer \"%.40s\")",
                  INPUT_DEADLINE_MS, size, c.reply->str);
  status = reply_status (c.reply);
  g_message ("%" G_GSIZE_FORMAT " bytes in: status %u, %" G_GSIZE_FORMAT " bytes back", size,
             status, c.reply->len);
  g_socket_close (c.socket, NULL);
  g_object_unref (c.socket);

  /* what the server's side still has to do after the close (a stream handed over, a
   * channel's close) runs from the main context */
  zlt_fuzz_settle (1000);
  if (status == 101)
    ZLT_FUZZ_CHECK (fuzz.n_accepted > accepted || fuzz.n_channels > channels
                        || fuzz.n_standby_accepted > standby_accepted,
                    "a 101 that neither a data or standby request handler nor a control upgrade "
                    "gave");
  ZLT_FUZZ_CHECK (
      fuzz.n_standby_streams - standby_streams <= fuzz.n_standby_accepted - standby_accepted,
      "%u standby requests accepted, %u standby streams handed over",
      fuzz.n_standby_accepted - standby_accepted, fuzz.n_standby_streams - standby_streams);
  ZLT_FUZZ_CHECK (fuzz.n_accepted - accepted == fuzz.n_streams - streams,
                  "%u data requests accepted, %u data streams handed over",
                  fuzz.n_accepted - accepted, fuzz.n_streams - streams);
  {
    gint64 end = g_get_monotonic_time () + INPUT_DEADLINE_MS * 1000;
    while (fuzz.channels->len > 0 && g_get_monotonic_time () < end)
      if (!g_main_context_iteration (context, FALSE))
        g_usleep (1000);
  }
  ZLT_FUZZ_CHECK (fuzz.channels->len == 0,
                  "%u control channels still open after their peer hung up", fuzz.channels->len);
  fds = count_fds ();
  ZLT_FUZZ_CHECK (fds <= fuzz.baseline_fds + FD_SLACK, "%u file descriptors open, %u at the start",
                  fds, fuzz.baseline_fds);
  g_string_free (c.reply, TRUE);
  return 0;
}
