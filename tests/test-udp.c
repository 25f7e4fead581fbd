/* test-udp.c: the "udp" transport: framed flows, the listener, flows through the relay
 * (directly and over TCP), the idle timeout, overload and malformed frames, against a
 * UDP echo server on 127.0.0.1 */
#include "config.h"

#include <string.h>
#include <sys/socket.h>

#include "zlayer-tunnel.h"
#include "zlt-test-util.h"
#include "zlt-relay.h" /* private */

#define WAIT_MS 20000
#define MAX_DATAGRAM 65507
/* the plugin's inbound queue bounds (plugins/udp/zlt-udp-util.h) */
#define QUEUE_MAX_DATAGRAMS 256
#define QUEUE_MAX_BYTES (1024 * 1024)
#define N_PEERS 4

static const gsize sizes[] = { 1, 1400, 8000, MAX_DATAGRAM };

typedef struct
{
  ZltPluginLoader *loader;
  ZltTransport *udp;

  /* the echo server */
  GSocket *echo;
  GSource *echo_source;
  guint16 echo_port;
  guint8 *echo_buf;

  ZltListener *listener;
  GSocketAddress *listener_address;
  GPtrArray *incoming; /* GIOStream, in order of arrival */
  GPtrArray *peers;    /* GSocketAddress, alongside */

  /* relays the incoming handler made */
  gboolean relay_over_tcp;
  guint idle_timeout_ms;
  GSocketListener *tcp_listener;
  guint16 tcp_port;
  guint relays_started;
  guint relays_finished;
} Fixture;

/* ---------------------------------------------------------------------------------
 * datagrams and frames */

static void
fill_payload (guint8 *buf, gsize len, guint32 seed)
{
  for (gsize i = 0; i < len; i++)
    buf[i] = (guint8) ((seed * 131u) ^ (i * 7u) ^ (i >> 9));
  /* a sequence number where there is room */
  if (len >= 4)
    {
      buf[0] = (guint8) (seed >> 24);
      buf[1] = (guint8) (seed >> 16);
      buf[2] = (guint8) (seed >> 8);
      buf[3] = (guint8) seed;
    }
}

static void
append_frame (GByteArray *wire, gsize len, guint32 seed)
{
  guint8 header[2] = { (guint8) (len >> 8), (guint8) (len & 0xff) };
  guint old = wire->len;

  g_byte_array_append (wire, header, 2);
  g_byte_array_set_size (wire, old + 2 + len);
  fill_payload (wire->data + old + 2, len, seed);
}

/* Complete frames at the start of @acc; fails on a length no datagram can have. */
static guint
count_frames (GByteArray *acc)
{
  gsize off = 0;
  guint n = 0;

  while (off + 2 <= acc->len)
    {
      gsize len = ((gsize) acc->data[off] << 8) | acc->data[off + 1];

      g_assert_cmpuint (len, <=, MAX_DATAGRAM);
      if (off + 2 + len > acc->len)
        break;
      off += 2 + len;
      n++;
    }
  return n;
}

/* The @index-th frame of @acc is @len bytes made from @seed. */
static void
assert_frame (GByteArray *acc, guint index, gsize len, guint32 seed)
{
  g_autofree guint8 *expected = g_malloc (MAX (len, 1));
  gsize off = 0;
  gsize got;

  for (guint i = 0; i < index; i++)
    off += 2 + (((gsize) acc->data[off] << 8) | acc->data[off + 1]);
  g_assert_cmpuint (off + 2, <=, acc->len);
  got = ((gsize) acc->data[off] << 8) | acc->data[off + 1];
  g_assert_cmpuint (got, ==, len);
  g_assert_cmpuint (off + 2 + len, <=, acc->len);
  fill_payload (expected, len, seed);
  g_assert_true (memcmp (acc->data + off + 2, expected, len) == 0);
}

/* Reads what the flow has now, in odd-sized pieces so frames straddle reads. Returns
 * TRUE once the input ended. */
static gboolean
pump_input (GIOStream *flow, GByteArray *acc)
{
  GPollableInputStream *in = G_POLLABLE_INPUT_STREAM (g_io_stream_get_input_stream (flow));
  guint8 buf[7001];

  for (;;)
    {
      g_autoptr (GError) error = NULL;
      gssize n = g_pollable_input_stream_read_nonblocking (in, buf, sizeof buf, NULL, &error);

      if (n < 0)
        {
          g_assert_error (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK);
          return FALSE;
        }
      if (n == 0)
        return TRUE;
      g_byte_array_append (acc, buf, (guint) n);
    }
}

static guint64
get_u64 (gpointer object, const char *name)
{
  guint64 v = 0;

  g_object_get (object, name, &v, NULL);
  return v;
}

static guint
get_uint (gpointer object, const char *name)
{
  guint v = 0;

  g_object_get (object, name, &v, NULL);
  return v;
}

/* ---------------------------------------------------------------------------------
 * client sockets */

static GSocket *
client_new (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) any = g_inet_socket_address_new (lo, 0);
  GSocket *socket
      = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM, G_SOCKET_PROTOCOL_UDP, &error);

  g_assert_no_error (error);
  g_assert_true (g_socket_bind (socket, any, FALSE, &error));
  g_assert_no_error (error);
  g_socket_set_blocking (socket, FALSE);
  g_socket_set_option (socket, SOL_SOCKET, SO_RCVBUF, 4 * 1024 * 1024, NULL);
  return socket;
}

static guint16
socket_port (GSocket *socket)
{
  g_autoptr (GSocketAddress) address = g_socket_get_local_address (socket, NULL);

  return g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (address));
}

static guint16
address_port (GSocketAddress *address)
{
  return g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (address));
}

static void
client_send (GSocket *socket, GSocketAddress *to, gsize len, guint32 seed)
{
  g_autoptr (GError) error = NULL;
  g_autofree guint8 *buf = g_malloc (MAX (len, 1));
  gssize n;

  fill_payload (buf, len, seed);
  n = g_socket_send_to (socket, to, (const char *) buf, len, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (n, ==, (gssize) len);
}

/* Waits for the next datagram on @socket and checks it is @len bytes from @seed. */
static void
client_expect (GSocket *socket, gsize len, guint32 seed)
{
  g_autoptr (GError) error = NULL;
  g_autofree guint8 *buf = g_malloc (MAX_DATAGRAM + 1);
  g_autofree guint8 *expected = g_malloc (MAX (len, 1));
  gssize n;

  ZLT_TEST_WAIT_FOR ((g_socket_condition_check (socket, G_IO_IN) & G_IO_IN) != 0, WAIT_MS);
  n = g_socket_receive (socket, (char *) buf, MAX_DATAGRAM + 1, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (n, ==, (gssize) len);
  fill_payload (expected, len, seed);
  g_assert_true (memcmp (buf, expected, len) == 0);
}

static void
client_expect_nothing (GSocket *socket)
{
  g_assert_cmpint (g_socket_condition_check (socket, G_IO_IN) & G_IO_IN, ==, 0);
}

/* ---------------------------------------------------------------------------------
 * the echo server: every datagram goes back to its sender */

static gboolean
echo_readable (GSocket *socket, GIOCondition condition, gpointer user_data)
{
  Fixture *f = user_data;

  for (;;)
    {
      g_autoptr (GSocketAddress) from = NULL;
      g_autoptr (GError) error = NULL;
      gssize n = g_socket_receive_from (socket, &from, (char *) f->echo_buf, 65536, NULL, &error);

      if (n < 0)
        {
          g_assert_error (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK);
          return G_SOURCE_CONTINUE;
        }
      g_socket_send_to (socket, from, (const char *) f->echo_buf, (gsize) n, NULL, &error);
      g_assert_no_error (error);
    }
}

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  f->loader = zlt_plugin_loader_new (NULL);
  g_assert_true (zlt_plugin_loader_load_all (f->loader, &error));
  g_assert_no_error (error);
  f->udp = zlt_plugin_loader_new_transport (f->loader, "udp", &error);
  g_assert_no_error (error);
  g_assert_nonnull (f->udp);

  f->echo = client_new ();
  f->echo_port = socket_port (f->echo);
  f->echo_buf = g_malloc (65536);
  f->echo_source = g_socket_create_source (f->echo, G_IO_IN, NULL);
  g_source_set_callback (f->echo_source, G_SOURCE_FUNC (echo_readable), f, NULL);
  g_source_attach (f->echo_source, NULL);

  f->incoming = g_ptr_array_new_with_free_func (g_object_unref);
  f->peers = g_ptr_array_new_with_free_func (g_object_unref);
}

/* Runs the main context until nothing is ready. */
static void
spin_quiet (void)
{
  while (g_main_context_iteration (NULL, FALSE))
    ;
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  if (f->listener != NULL)
    zlt_listener_close (f->listener);
  /* closing the listener ends its flows, which ends every relay */
  ZLT_TEST_WAIT_FOR (f->relays_finished == f->relays_started, WAIT_MS);
  for (guint i = 0; i < f->incoming->len; i++)
    g_io_stream_close (g_ptr_array_index (f->incoming, i), NULL, NULL);
  g_ptr_array_unref (f->incoming);
  g_ptr_array_unref (f->peers);
  g_clear_object (&f->listener);
  g_clear_object (&f->listener_address);
  if (f->tcp_listener != NULL)
    g_socket_listener_close (f->tcp_listener);
  g_clear_object (&f->tcp_listener);

  g_source_destroy (f->echo_source);
  g_source_unref (f->echo_source);
  g_object_unref (f->echo);
  g_free (f->echo_buf);
  spin_quiet ();
  g_clear_object (&f->udp);
  g_clear_object (&f->loader);
}

static void
dialed_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  GIOStream **out = user_data;
  g_autoptr (GError) error = NULL;

  *out = zlt_transport_dial_finish (ZLT_TRANSPORT (source), result, &error);
  g_assert_no_error (error);
  g_assert_nonnull (*out);
}

static GIOStream *
dial (Fixture *f, const char *host, guint16 port)
{
  GIOStream *flow = NULL;

  zlt_transport_dial_async (f->udp, host, port, NULL, dialed_cb, &flow);
  ZLT_TEST_WAIT_FOR (flow != NULL, WAIT_MS);
  return flow;
}

static void
on_incoming_collect (ZltListener *listener, GIOStream *stream, GSocketAddress *peer,
                     gpointer user_data)
{
  Fixture *f = user_data;

  g_ptr_array_add (f->incoming, g_object_ref (stream));
  g_ptr_array_add (f->peers, g_object_ref (peer));
}

static void
start_listener (Fixture *f)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);

  f->listener = zlt_transport_listen (f->udp, "127.0.0.1", 0, &error);
  g_assert_no_error (error);
  g_assert_nonnull (f->listener);
  g_assert_cmpuint (zlt_listener_get_port (f->listener), !=, 0);
  f->listener_address = g_inet_socket_address_new (lo, zlt_listener_get_port (f->listener));
}

/* ---------------------------------------------------------------------------------
 * tests */

/* the typed idle timeout the server sets (zlt_listener_set_idle_timeout): the udp
 * listener takes it, a tcp listener has none */
static void
test_listener_idle_timeout (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (ZltTransport) tcp = zlt_plugin_loader_new_transport (f->loader, "tcp", &error);
  g_autoptr (ZltListener) tcp_listener = NULL;

  g_assert_no_error (error);
  start_listener (f);
  g_assert_cmpuint (get_uint (f->listener, "idle-timeout-ms"), !=, 1234);
  g_assert_true (zlt_listener_set_idle_timeout (f->listener, 1234));
  g_assert_cmpuint (get_uint (f->listener, "idle-timeout-ms"), ==, 1234);

  tcp_listener = zlt_transport_listen (tcp, "127.0.0.1", 0, &error);
  g_assert_no_error (error);
  g_assert_false (zlt_listener_set_idle_timeout (tcp_listener, 1234));
  zlt_listener_close (tcp_listener);
}

static void
test_transport (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (ZltListener) second = NULL;
  g_autoptr (ZltListener) bad = NULL;
  g_autoptr (GIOStream) flow = NULL;
  g_autoptr (GSocketAddress) peer = NULL;

  g_assert_cmpstr (zlt_transport_get_name (f->udp), ==, "udp");
  g_assert_cmpint (zlt_transport_get_protocol (f->udp), ==, ZLT_PROTOCOL_UDP);

  start_listener (f);
  second = zlt_transport_listen (f->udp, "127.0.0.1", zlt_listener_get_port (f->listener), &error);
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_PORT_IN_USE);
  g_assert_null (second);
  g_clear_error (&error);
  bad = zlt_transport_listen (f->udp, "not an address", 0, &error);
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG);
  g_assert_null (bad);
  g_clear_error (&error);

  /* a name goes through the resolver */
  flow = dial (f, "localhost", f->echo_port);
  g_object_get (flow, "peer-address", &peer, NULL);
  g_assert_true (g_inet_address_get_is_loopback (
      g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (peer))));
  g_assert_cmpuint (address_port (peer), ==, f->echo_port);
  g_assert_cmpuint (get_uint (flow, "idle-timeout-ms"), ==, 60000);
  g_assert_true (g_io_stream_close (flow, NULL, &error));
  g_assert_no_error (error);
}

/* stores the byte count, or minus the GIOErrorEnum code */
static void
read_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  gssize *out = user_data;
  g_autoptr (GError) error = NULL;
  gssize n = g_input_stream_read_finish (G_INPUT_STREAM (source), result, &error);

  if (n < 0)
    {
      g_assert_true (error->domain == G_IO_ERROR);
      n = -error->code;
    }
  *out = n;
}

/* (a) frames of every size, written at once and in odd pieces, come back intact */
static void
test_framing (Fixture *f, gconstpointer data)
{
  static const gsize chunks[] = { 1, 2, 3, 5, 7, 11, 13, 1021, 4099, 65535, 17 };
  g_autoptr (GIOStream) flow = dial (f, "127.0.0.1", f->echo_port);
  GOutputStream *out = g_io_stream_get_output_stream (flow);
  g_autoptr (GByteArray) wire = g_byte_array_new ();
  g_autoptr (GByteArray) acc = g_byte_array_new ();
  g_autoptr (GError) error = NULL;
  g_autoptr (GCancellable) cancellable = g_cancellable_new ();
  guint8 first[3];
  gssize first_n = 0;
  gsize written = 0;
  gsize off = 0;
  guint c = 0;

  g_assert_true (G_IS_POLLABLE_INPUT_STREAM (g_io_stream_get_input_stream (flow)));
  g_assert_true (G_IS_POLLABLE_OUTPUT_STREAM (out));

  /* an async read waits for the first datagram */
  g_input_stream_read_async (g_io_stream_get_input_stream (flow), first, sizeof first,
                             G_PRIORITY_DEFAULT, NULL, read_cb, &first_n);

  /* one write holding every frame, an empty datagram included */
  append_frame (wire, 0, 99);
  for (guint i = 0; i < G_N_ELEMENTS (sizes); i++)
    append_frame (wire, sizes[i], i);
  g_assert_true (g_output_stream_write_all (out, wire->data, wire->len, &written, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (written, ==, wire->len);
  ZLT_TEST_WAIT_FOR (first_n != 0, WAIT_MS);
  g_assert_cmpint (first_n, ==, sizeof first);
  g_byte_array_append (acc, first, sizeof first);
  ZLT_TEST_WAIT_FOR ((pump_input (flow, acc), acc->len >= wire->len), WAIT_MS);
  g_assert_cmpuint (acc->len, ==, wire->len);
  g_assert_cmpuint (count_frames (acc), ==, 5);
  g_assert_true (memcmp (acc->data, wire->data, wire->len) == 0);

  /* the same frames cut into odd pieces */
  g_byte_array_set_size (acc, 0);
  while (off < wire->len)
    {
      gsize n = MIN (chunks[c++ % G_N_ELEMENTS (chunks)], wire->len - off);

      g_assert_true (g_output_stream_write_all (out, wire->data + off, n, &written, NULL, &error));
      g_assert_no_error (error);
      off += n;
    }
  ZLT_TEST_WAIT_FOR ((pump_input (flow, acc), acc->len >= wire->len), WAIT_MS);
  g_assert_cmpuint (acc->len, ==, wire->len);
  g_assert_true (memcmp (acc->data, wire->data, wire->len) == 0);

  g_assert_cmpuint (get_u64 (flow, "datagrams-out"), ==, 10);
  g_assert_cmpuint (get_u64 (flow, "datagrams-in"), ==, 10);
  g_assert_cmpuint (get_u64 (flow, "bytes-out"), ==, get_u64 (flow, "bytes-in"));
  g_assert_cmpuint (get_u64 (flow, "bytes-out"), ==, 2 * (wire->len - 10));
  g_assert_cmpuint (get_u64 (flow, "dropped"), ==, 0);
  g_assert_cmpuint (get_uint (flow, "queued-datagrams"), ==, 0);

  /* a waiting read can be cancelled */
  first_n = 0;
  g_input_stream_read_async (g_io_stream_get_input_stream (flow), first, sizeof first,
                             G_PRIORITY_DEFAULT, cancellable, read_cb, &first_n);
  g_cancellable_cancel (cancellable);
  ZLT_TEST_WAIT_FOR (first_n != 0, WAIT_MS);
  g_assert_cmpint (first_n, ==, -G_IO_ERROR_CANCELLED);

  g_assert_true (g_io_stream_close (flow, NULL, &error));
  g_assert_no_error (error);
}

/* Many whole frames in one write go out as that many datagrams, in order (the flow
 * sends them in batches), and come back from the echo. */
static void
test_many_frames (Fixture *f, gconstpointer data)
{
  const guint n = 200;
  g_autoptr (GIOStream) flow = dial (f, "127.0.0.1", f->echo_port);
  g_autoptr (GByteArray) wire = g_byte_array_new ();
  g_autoptr (GByteArray) acc = g_byte_array_new ();
  g_autoptr (GError) error = NULL;
  gsize written = 0;

  for (guint i = 0; i < n; i++)
    append_frame (wire, 1 + (i * 13) % 200, i);
  g_assert_true (g_output_stream_write_all (g_io_stream_get_output_stream (flow), wire->data,
                                            wire->len, &written, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (written, ==, wire->len);
  g_assert_cmpuint (get_u64 (flow, "datagrams-out"), ==, n);
  g_assert_cmpuint (get_u64 (flow, "bytes-out"), ==, wire->len - 2 * n);
  g_assert_cmpuint (get_u64 (flow, "dropped"), ==, 0);
  ZLT_TEST_WAIT_FOR ((pump_input (flow, acc), acc->len >= wire->len), WAIT_MS);
  g_assert_cmpuint (acc->len, ==, wire->len);
  g_assert_cmpuint (count_frames (acc), ==, n);
  g_assert_true (memcmp (acc->data, wire->data, wire->len) == 0);
  g_assert_true (g_io_stream_close (flow, NULL, &error));
  g_assert_no_error (error);
}

/* (b) one flow per peer, each peer's datagrams framed in its flow, replies to the right
 * peer only */
static void
test_listener (Fixture *f, gconstpointer data)
{
  GSocket *clients[N_PEERS];

  start_listener (f);
  g_signal_connect (f->listener, "incoming", G_CALLBACK (on_incoming_collect), f);
  for (guint p = 0; p < N_PEERS; p++)
    clients[p] = client_new ();

  for (guint i = 0; i < G_N_ELEMENTS (sizes); i++)
    for (guint p = 0; p < N_PEERS; p++)
      {
        client_send (clients[p], f->listener_address, sizes[i], p * 16 + i);
        ZLT_TEST_WAIT_FOR (f->incoming->len > p
                               && get_u64 (g_ptr_array_index (f->incoming, p), "datagrams-in")
                                      == i + 1,
                           WAIT_MS);
      }
  g_assert_cmpuint (f->incoming->len, ==, N_PEERS);
  g_assert_cmpuint (get_uint (f->listener, "n-flows"), ==, N_PEERS);

  for (guint p = 0; p < N_PEERS; p++)
    {
      GIOStream *flow = g_ptr_array_index (f->incoming, p);
      g_autoptr (GByteArray) acc = g_byte_array_new ();
      g_autoptr (GByteArray) replies = g_byte_array_new ();
      g_autoptr (GError) error = NULL;
      gsize written = 0;

      g_assert_cmpuint (address_port (g_ptr_array_index (f->peers, p)), ==,
                        socket_port (clients[p]));
      g_assert_false (pump_input (flow, acc));
      g_assert_cmpuint (count_frames (acc), ==, G_N_ELEMENTS (sizes));
      for (guint i = 0; i < G_N_ELEMENTS (sizes); i++)
        assert_frame (acc, i, sizes[i], p * 16 + i);

      /* replies, largest first, in one write */
      for (guint i = G_N_ELEMENTS (sizes); i-- > 0;)
        append_frame (replies, sizes[i], 1000 + p * 16 + i);
      g_assert_true (g_output_stream_write_all (g_io_stream_get_output_stream (flow), replies->data,
                                                replies->len, &written, NULL, &error));
      g_assert_no_error (error);
      g_assert_cmpuint (get_u64 (flow, "datagrams-out"), ==, G_N_ELEMENTS (sizes));
    }
  for (guint p = 0; p < N_PEERS; p++)
    for (guint i = G_N_ELEMENTS (sizes); i-- > 0;)
      client_expect (clients[p], sizes[i], 1000 + p * 16 + i);
  for (guint p = 0; p < N_PEERS; p++)
    {
      client_expect_nothing (clients[p]);
      g_object_unref (clients[p]);
    }
  g_assert_cmpuint (f->incoming->len, ==, N_PEERS);
  g_assert_cmpuint (get_u64 (f->listener, "dropped"), ==, 0);
}

/* beyond max-flows new peers are dropped; closing the listener ends its flows */
static void
test_max_flows (Fixture *f, gconstpointer data)
{
  GSocket *clients[3];
  g_autoptr (GByteArray) acc = g_byte_array_new ();
  g_autoptr (GError) error = NULL;
  static const guint8 frame[] = { 0, 1, 'x' };

  start_listener (f);
  g_object_set (f->listener, "max-flows", 2, NULL);
  g_signal_connect (f->listener, "incoming", G_CALLBACK (on_incoming_collect), f);
  for (guint p = 0; p < 3; p++)
    {
      clients[p] = client_new ();
      client_send (clients[p], f->listener_address, 10, p);
    }
  /* the socket is read in order: once the second peer's second datagram is in, all is */
  client_send (clients[1], f->listener_address, 10, 7);
  ZLT_TEST_WAIT_FOR (f->incoming->len == 2
                         && get_u64 (g_ptr_array_index (f->incoming, 1), "datagrams-in") == 2,
                     WAIT_MS);
  g_assert_cmpuint (get_u64 (f->listener, "dropped"), ==, 1);
  g_assert_cmpuint (get_uint (f->listener, "n-flows"), ==, 2);

  /* a closed listener ends its flows: queued datagrams, then end-of-stream */
  zlt_listener_close (f->listener);
  g_assert_true (pump_input (g_ptr_array_index (f->incoming, 0), acc));
  g_assert_cmpuint (count_frames (acc), ==, 1);
  assert_frame (acc, 0, 10, 0);
  g_assert_cmpuint (get_uint (f->listener, "n-flows"), ==, 0);
  /* and nothing can be sent on its socket any more */
  g_output_stream_write (g_io_stream_get_output_stream (g_ptr_array_index (f->incoming, 0)), frame,
                         sizeof frame, NULL, &error);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CLOSED);
  for (guint p = 0; p < 3; p++)
    g_object_unref (clients[p]);
}

/* ---- (c) listener flow ↔ relay ↔ dialed flow to the echo server ---- */

typedef struct
{
  Fixture *f;
  GIOStream *flow;
} Pending;

static void
on_relay_finished (ZltRelay *relay, const GError *error, gpointer user_data)
{
  Fixture *f = user_data;

  f->relays_finished++;
}

static void
start_relay (Fixture *f, GIOStream *a, GIOStream *b)
{
  g_autoptr (ZltRelay) relay = zlt_relay_new (a, b);

  g_signal_connect (relay, "finished", G_CALLBACK (on_relay_finished), f);
  f->relays_started++;
  zlt_relay_start (relay);
}

static void
tcp_pair (Fixture *f, GSocketConnection **client, GSocketConnection **server)
{
  g_autoptr (GSocketClient) sc = g_socket_client_new ();
  g_autoptr (GError) error = NULL;

  g_socket_client_set_enable_proxy (sc, FALSE);
  if (f->tcp_listener == NULL)
    {
      g_autoptr (GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
      g_autoptr (GSocketAddress) any = g_inet_socket_address_new (lo, 0);
      g_autoptr (GSocketAddress) effective = NULL;

      f->tcp_listener = g_socket_listener_new ();
      g_socket_listener_add_address (f->tcp_listener, any, G_SOCKET_TYPE_STREAM,
                                     G_SOCKET_PROTOCOL_TCP, NULL, &effective, &error);
      g_assert_no_error (error);
      f->tcp_port = address_port (effective);
    }
  /* loopback connects complete in the kernel, so accepting afterwards does not block */
  *client = g_socket_client_connect_to_host (sc, "127.0.0.1", f->tcp_port, NULL, &error);
  g_assert_no_error (error);
  *server = g_socket_listener_accept (f->tcp_listener, NULL, NULL, &error);
  g_assert_no_error (error);
}

static void
relay_dialed (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Pending *p = user_data;
  Fixture *f = p->f;
  g_autoptr (GError) error = NULL;
  g_autoptr (GIOStream) dialed = zlt_transport_dial_finish (ZLT_TRANSPORT (source), result, &error);

  g_assert_no_error (error);
  if (f->idle_timeout_ms != 0)
    g_object_set (dialed, "idle-timeout-ms", f->idle_timeout_ms, NULL);
  if (f->relay_over_tcp)
    {
      g_autoptr (GSocketConnection) client = NULL;
      g_autoptr (GSocketConnection) server = NULL;

      tcp_pair (f, &client, &server);
      start_relay (f, p->flow, G_IO_STREAM (client));
      start_relay (f, G_IO_STREAM (server), dialed);
    }
  else
    {
      start_relay (f, p->flow, dialed);
    }
  g_object_unref (p->flow);
  g_free (p);
}

static void
on_incoming_relay (ZltListener *listener, GIOStream *stream, GSocketAddress *peer,
                   gpointer user_data)
{
  Fixture *f = user_data;
  Pending *p = g_new0 (Pending, 1);

  /* datagrams wait in the flow's queue until the relay starts */
  on_incoming_collect (listener, stream, peer, f);
  if (f->idle_timeout_ms != 0)
    g_object_set (stream, "idle-timeout-ms", f->idle_timeout_ms, NULL);
  p->f = f;
  p->flow = g_object_ref (stream);
  zlt_transport_dial_async (f->udp, "127.0.0.1", f->echo_port, NULL, relay_dialed, p);
}

static void
test_relay (Fixture *f, gconstpointer data)
{
  GSocket *clients[N_PEERS];

  f->relay_over_tcp = GPOINTER_TO_INT (data);
  start_listener (f);
  g_signal_connect (f->listener, "incoming", G_CALLBACK (on_incoming_relay), f);
  for (guint p = 0; p < N_PEERS; p++)
    clients[p] = client_new ();

  for (guint i = 0; i < G_N_ELEMENTS (sizes); i++)
    for (guint p = 0; p < N_PEERS; p++)
      {
        client_send (clients[p], f->listener_address, sizes[i], p * 16 + i);
        client_expect (clients[p], sizes[i], p * 16 + i);
      }
  /* a burst of small ones, each peer in turn, echoed in order */
  for (guint k = 0; k < 8; k++)
    for (guint p = 0; p < N_PEERS; p++)
      client_send (clients[p], f->listener_address, 100 + k, 500 + p * 16 + k);
  for (guint p = 0; p < N_PEERS; p++)
    for (guint k = 0; k < 8; k++)
      client_expect (clients[p], 100 + k, 500 + p * 16 + k);

  for (guint p = 0; p < N_PEERS; p++)
    {
      client_expect_nothing (clients[p]);
      g_object_unref (clients[p]);
    }
  g_assert_cmpuint (f->incoming->len, ==, N_PEERS);
  g_assert_cmpuint (f->relays_started, ==, N_PEERS * (f->relay_over_tcp ? 2 : 1));
  g_assert_cmpuint (f->relays_finished, ==, 0);
}

/* ---- (d) idle timeout ---- */

static void
test_idle_read (Fixture *f, gconstpointer data)
{
  g_autoptr (GSocket) client = client_new ();
  g_autoptr (GByteArray) acc = g_byte_array_new ();
  GIOStream *first;

  start_listener (f);
  g_object_set (f->listener, "idle-timeout-ms", 200, NULL);
  g_signal_connect (f->listener, "incoming", G_CALLBACK (on_incoming_collect), f);

  client_send (client, f->listener_address, 1400, 1);
  ZLT_TEST_WAIT_FOR (f->incoming->len == 1, WAIT_MS);
  first = g_ptr_array_index (f->incoming, 0);
  g_assert_cmpuint (get_uint (first, "idle-timeout-ms"), ==, 200);
  /* what was queued is read first, then the end */
  ZLT_TEST_WAIT_FOR (pump_input (first, acc), WAIT_MS);
  g_assert_cmpuint (count_frames (acc), ==, 1);
  assert_frame (acc, 0, 1400, 1);
  g_assert_cmpuint (get_uint (f->listener, "n-flows"), ==, 0);

  /* the listener forgot the peer: its next datagram starts a new flow */
  client_send (client, f->listener_address, 8000, 2);
  ZLT_TEST_WAIT_FOR (f->incoming->len == 2, WAIT_MS);
  g_assert_true (g_ptr_array_index (f->incoming, 1) != (gpointer) first);
  g_byte_array_set_size (acc, 0);
  ZLT_TEST_WAIT_FOR ((pump_input (g_ptr_array_index (f->incoming, 1), acc), acc->len == 8002),
                     WAIT_MS);
  assert_frame (acc, 0, 8000, 2);
}

static void
test_idle_relay (Fixture *f, gconstpointer data)
{
  g_autoptr (GSocket) client = client_new ();

  f->idle_timeout_ms = 200;
  start_listener (f);
  g_signal_connect (f->listener, "incoming", G_CALLBACK (on_incoming_relay), f);

  client_send (client, f->listener_address, 1400, 1);
  client_expect (client, 1400, 1);
  /* both flows go idle, the relay ends by itself and closes them */
  ZLT_TEST_WAIT_FOR (f->relays_started == 1 && f->relays_finished == 1, WAIT_MS);
  ZLT_TEST_WAIT_FOR (g_io_stream_is_closed (g_ptr_array_index (f->incoming, 0)), WAIT_MS);
  g_assert_cmpuint (get_uint (f->listener, "n-flows"), ==, 0);

  /* and a new datagram makes a new flow with a new relay */
  client_send (client, f->listener_address, 8000, 2);
  client_expect (client, 8000, 2);
  g_assert_cmpuint (f->incoming->len, ==, 2);
  ZLT_TEST_WAIT_FOR (f->relays_finished == 2, WAIT_MS);
}

/* ---- (e) overload: nobody reads, the queue stays bounded and drops the rest ---- */

/* Sends @n datagrams of @len, letting the listener drain the socket every few sends so
 * that the flow's queue, not the kernel's, is what overflows. */
static void
burst (Fixture *f, GSocket *client, guint n, gsize len, guint every)
{
  for (guint k = 0; k < n; k++)
    {
      client_send (client, f->listener_address, len, k);
      if (k % every == every - 1)
        spin_quiet ();
    }
}

static void
test_overload (Fixture *f, gconstpointer data)
{
  g_autoptr (GSocket) small = client_new ();
  g_autoptr (GSocket) large = client_new ();
  g_autoptr (GSocket) marker = client_new ();
  g_autoptr (GByteArray) acc = g_byte_array_new ();
  GIOStream *flow;
  guint64 in;
  guint64 dropped;

  start_listener (f);
  g_signal_connect (f->listener, "incoming", G_CALLBACK (on_incoming_collect), f);

  burst (f, small, 1000, 1400, 16);
  burst (f, large, 1000, 8000, 4);
  /* the socket is read in order: once the marker's flow exists, all before it is seen */
  client_send (marker, f->listener_address, 1, 0);
  ZLT_TEST_WAIT_FOR (f->incoming->len == 3, WAIT_MS);

  /* the count bound */
  flow = g_ptr_array_index (f->incoming, 0);
  in = get_u64 (flow, "datagrams-in");
  dropped = get_u64 (flow, "dropped");
  g_test_message ("1400-byte datagrams: %" G_GUINT64_FORMAT " queued, %" G_GUINT64_FORMAT
                  " dropped of 1000",
                  in, dropped);
  g_assert_cmpuint (dropped, >, 0);
  g_assert_cmpuint (in + dropped, <=, 1000);
  g_assert_cmpuint (in, ==, QUEUE_MAX_DATAGRAMS);
  g_assert_cmpuint (get_uint (flow, "queued-datagrams"), ==, QUEUE_MAX_DATAGRAMS);
  g_assert_cmpuint (get_u64 (flow, "queued-bytes"), ==, QUEUE_MAX_DATAGRAMS * 1400);

  /* the byte bound */
  flow = g_ptr_array_index (f->incoming, 1);
  in = get_u64 (flow, "datagrams-in");
  dropped = get_u64 (flow, "dropped");
  g_test_message ("8000-byte datagrams: %" G_GUINT64_FORMAT " queued, %" G_GUINT64_FORMAT
                  " dropped of 1000",
                  in, dropped);
  g_assert_cmpuint (dropped, >, 0);
  g_assert_cmpuint (in + dropped, <=, 1000);
  g_assert_cmpuint (in, ==, QUEUE_MAX_BYTES / 8000);
  g_assert_cmpuint (get_u64 (flow, "queued-bytes"), <=, QUEUE_MAX_BYTES);
  g_assert_cmpuint (get_u64 (f->listener, "dropped"), ==, 0);
  /* the listener's budget sees all of it: both queues and the marker */
  g_assert_cmpuint (get_u64 (f->listener, "queued-bytes"), ==,
                    QUEUE_MAX_DATAGRAMS * 1400 + (QUEUE_MAX_BYTES / 8000) * 8000 + 1);

  /* what was queued is intact and in order (dropping never reorders) */
  flow = g_ptr_array_index (f->incoming, 0);
  g_assert_false (pump_input (flow, acc));
  g_assert_cmpuint (count_frames (acc), ==, QUEUE_MAX_DATAGRAMS);
  {
    gsize off = 0;
    guint32 last = 0;

    for (guint k = 0; k < QUEUE_MAX_DATAGRAMS; k++)
      {
        const guint8 *d = acc->data + off + 2;
        guint32 seq
            = ((guint32) d[0] << 24) | ((guint32) d[1] << 16) | ((guint32) d[2] << 8) | d[3];

        if (k > 0)
          g_assert_cmpuint (seq, >, last);
        assert_frame (acc, k, 1400, seq);
        last = seq;
        off += 2 + 1400;
      }
  }
  g_assert_cmpuint (get_uint (flow, "queued-datagrams"), ==, 0);
  g_assert_cmpuint (get_u64 (flow, "queued-bytes"), ==, 0);
  g_assert_cmpuint (get_u64 (f->listener, "queued-bytes"), ==, (QUEUE_MAX_BYTES / 8000) * 8000 + 1);

  /* room again: the next datagram is taken */
  g_byte_array_set_size (acc, 0);
  client_send (small, f->listener_address, 1400, 5000);
  ZLT_TEST_WAIT_FOR ((pump_input (flow, acc), count_frames (acc) == 1), WAIT_MS);
  assert_frame (acc, 0, 1400, 5000);
  g_assert_cmpuint (f->incoming->len, ==, 3);
}

/* all flows of a listener share one budget */
static void
test_listener_budget (Fixture *f, gconstpointer data)
{
  g_autoptr (GSocket) a = client_new ();
  g_autoptr (GSocket) b = client_new ();
  g_autoptr (GByteArray) acc = g_byte_array_new ();
  GIOStream *fa;
  GIOStream *fb;

  start_listener (f);
  g_object_set (f->listener, "max-queued-bytes", (guint64) 20000, NULL);
  g_signal_connect (f->listener, "incoming", G_CALLBACK (on_incoming_collect), f);
  for (guint k = 0; k < 3; k++)
    client_send (a, f->listener_address, 8000, k);
  client_send (b, f->listener_address, 8000, 10);
  client_send (b, f->listener_address, 1, 11);
  ZLT_TEST_WAIT_FOR (f->incoming->len == 2
                         && get_u64 (g_ptr_array_index (f->incoming, 1), "datagrams-in")
                                    + get_u64 (g_ptr_array_index (f->incoming, 1), "dropped")
                                == 2,
                     WAIT_MS);
  fa = g_ptr_array_index (f->incoming, 0);
  fb = g_ptr_array_index (f->incoming, 1);
  g_assert_cmpuint (get_u64 (fa, "datagrams-in"), ==, 2);
  g_assert_cmpuint (get_u64 (fa, "dropped"), ==, 1);
  g_assert_cmpuint (get_u64 (fb, "datagrams-in"), ==, 1); /* the 1-byte one still fits */
  g_assert_cmpuint (get_u64 (fb, "dropped"), ==, 1);
  g_assert_cmpuint (get_u64 (f->listener, "queued-bytes"), ==, 16001);

  /* reading frees the budget for every flow */
  g_assert_false (pump_input (fa, acc));
  g_assert_cmpuint (get_u64 (f->listener, "queued-bytes"), ==, 1);
  client_send (b, f->listener_address, 8000, 12);
  ZLT_TEST_WAIT_FOR (get_u64 (fb, "datagrams-in") == 2, WAIT_MS);
  g_assert_cmpuint (get_u64 (f->listener, "queued-bytes"), ==, 8001);
  /* a flow that ends gives its share back */
  g_io_stream_close (fb, NULL, NULL);
  g_assert_cmpuint (get_u64 (f->listener, "queued-bytes"), ==, 0);
}

/* ---- (f) malformed frames ---- */

static void
test_oversized (Fixture *f, gconstpointer data)
{
  g_autoptr (GIOStream) flow = dial (f, "127.0.0.1", f->echo_port);
  g_autoptr (GIOStream) flow2 = dial (f, "127.0.0.1", f->echo_port);
  GOutputStream *out = g_io_stream_get_output_stream (flow);
  static const guint8 too_long[] = { 0xff, 0xff, 1, 2, 3 };
  static const guint8 just_over[] = { (MAX_DATAGRAM + 1) >> 8, (MAX_DATAGRAM + 1) & 0xff };
  g_autoptr (GError) error = NULL;
  gssize n;

  n = g_output_stream_write (out, too_long, sizeof too_long, NULL, &error);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
  g_assert_cmpint (n, ==, -1);
  g_clear_error (&error);
  /* the stream stays broken */
  n = g_output_stream_write (out, "\0\1x", 3, NULL, &error);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
  g_clear_error (&error);
  g_assert_cmpuint (get_u64 (flow, "datagrams-out"), ==, 0);

  /* one byte over the limit, its length split across writes */
  out = g_io_stream_get_output_stream (flow2);
  n = g_output_stream_write (out, just_over, 1, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (n, ==, 1);
  n = g_output_stream_write (out, just_over + 1, 1, NULL, &error);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
  g_assert_cmpint (n, ==, -1);
  g_assert_cmpuint (get_u64 (flow2, "datagrams-out"), ==, 0);
}

/* a relay whose other side writes a malformed frame ends with that error */
static void
on_relay_finished_error (ZltRelay *relay, const GError *error, gpointer user_data)
{
  GError **out = user_data;

  g_assert_nonnull (error);
  *out = g_error_copy (error);
}

static void
test_oversized_relay (Fixture *f, gconstpointer data)
{
  g_autoptr (GIOStream) flow = dial (f, "127.0.0.1", f->echo_port);
  g_autoptr (GSocketConnection) client = NULL;
  g_autoptr (GSocketConnection) server = NULL;
  g_autoptr (ZltRelay) relay = NULL;
  g_autoptr (GError) finished = NULL;
  g_autoptr (GError) error = NULL;
  static const guint8 bad[] = { 0, 3, 'a', 'b', 'c', 0xff, 0xf0, 0 };

  tcp_pair (f, &client, &server);
  relay = zlt_relay_new (G_IO_STREAM (server), flow);
  g_signal_connect (relay, "finished", G_CALLBACK (on_relay_finished_error), &finished);
  zlt_relay_start (relay);
  g_assert_true (g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (client)),
                                            bad, sizeof bad, NULL, NULL, &error));
  g_assert_no_error (error);
  ZLT_TEST_WAIT_FOR (finished != NULL, WAIT_MS);
  g_assert_error (finished, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
  /* the good frame before it went out */
  g_assert_cmpuint (get_u64 (flow, "datagrams-out"), ==, 1);
  ZLT_TEST_WAIT_FOR (g_io_stream_is_closed (flow), WAIT_MS);
  g_io_stream_close (G_IO_STREAM (client), NULL, NULL);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add ("/udp/transport", Fixture, NULL, fixture_setup, test_transport, fixture_teardown);
  g_test_add ("/udp/framing", Fixture, NULL, fixture_setup, test_framing, fixture_teardown);
  g_test_add ("/udp/many-frames", Fixture, NULL, fixture_setup, test_many_frames, fixture_teardown);
  g_test_add ("/udp/listener", Fixture, NULL, fixture_setup, test_listener, fixture_teardown);
  g_test_add ("/udp/listener-idle-timeout", Fixture, NULL, fixture_setup,
              test_listener_idle_timeout, fixture_teardown);
  g_test_add ("/udp/max-flows", Fixture, NULL, fixture_setup, test_max_flows, fixture_teardown);
  g_test_add ("/udp/relay/direct", Fixture, GINT_TO_POINTER (FALSE), fixture_setup, test_relay,
              fixture_teardown);
  g_test_add ("/udp/relay/over-tcp", Fixture, GINT_TO_POINTER (TRUE), fixture_setup, test_relay,
              fixture_teardown);
  g_test_add ("/udp/idle/read", Fixture, NULL, fixture_setup, test_idle_read, fixture_teardown);
  g_test_add ("/udp/idle/relay", Fixture, NULL, fixture_setup, test_idle_relay, fixture_teardown);
  g_test_add ("/udp/overload", Fixture, NULL, fixture_setup, test_overload, fixture_teardown);
  g_test_add ("/udp/listener-budget", Fixture, NULL, fixture_setup, test_listener_budget,
              fixture_teardown);
  g_test_add ("/udp/oversized", Fixture, NULL, fixture_setup, test_oversized, fixture_teardown);
  g_test_add ("/udp/oversized-relay", Fixture, NULL, fixture_setup, test_oversized_relay,
              fixture_teardown);

  return g_test_run ();
}
