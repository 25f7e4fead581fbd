/* test-standby.c: standby data connections (PROTOCOL-v2.md §8) between a real server and
 * a real agent on loopback, and raw peers that ask for them by hand */
#include "config.h"

#include <string.h>

#include "zlt-binding.h"
#include "zlt-test-util.h"

#define PORT_RANGE "31700-31799"

/* Every log line, and those a user sees without -v (message level and above). */
static GPtrArray *shown_lines;

static GLogWriterOutput
capture_writer (GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer user_data)
{
  if ((level & (G_LOG_LEVEL_DEBUG | G_LOG_LEVEL_INFO)) == 0)
    for (gsize i = 0; i < n_fields; i++)
      if (g_strcmp0 (fields[i].key, "MESSAGE") == 0)
        g_ptr_array_add (shown_lines, fields[i].length < 0
                                          ? g_strdup (fields[i].value)
                                          : g_strndup (fields[i].value, fields[i].length));
  return g_log_writer_default (level, fields, n_fields, user_data);
}

static gboolean
shown_since (guint first, const char *needle)
{
  for (guint i = first; i < shown_lines->len; i++)
    if (strstr (g_ptr_array_index (shown_lines, i), needle) != NULL)
      return TRUE;
  return FALSE;
}

typedef struct
{
  ZltTestHarness h;
} Fixture;

/* @data: TRUE to run everything over ::1 */
static void
fixture_setup (Fixture *f, gconstpointer data)
{
  zlt_test_use_ipv6 (GPOINTER_TO_INT (data));
  zlt_test_harness_init (&f->h, PORT_RANGE);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  zlt_test_harness_clear (&f->h);
  zlt_test_use_ipv6 (FALSE);
}

static void
set_server (Fixture *f, const char *key, gint value)
{
  g_key_file_set_integer (f->h.server_keyfile, "server", key, value);
}

static void
set_agent (Fixture *f, const char *key, gint value)
{
  g_key_file_set_integer (f->h.agent_keyfile, "agent", key, value);
}

/* A server and an agent with the echo service; waits until the agent's pool of
 * @parked standby connections is parked at the server. Returns the public port. */
static guint16
start_echo (Fixture *f, guint parked)
{
  guint16 port;

  zlt_test_harness_start_server (&f->h);
  zlt_test_harness_add_service (&f->h, "echo", zlt_test_echo_get_port (f->h.echo), 0);
  zlt_test_harness_start_agent (&f->h);
  port = zlt_test_harness_wait_registered (&f->h, "echo");
  ZLT_TEST_WAIT_FOR (zlt_server_get_n_standby (f->h.server) == parked
                         && zlt_agent_get_n_standby (f->h.agent) == parked,
                     10000);
  return port;
}

/* @n connections at once, each sending @n_bytes and half-closing; asserts every echo
 * came back byte for byte, and its end after it */
static void
transfer (guint16 port, gsize n_bytes, guint n)
{
  ZltTestTransfer t = { 0 };
  GThread *thread;

  t.port = port;
  t.n_bytes = n_bytes;
  t.n_connections = n;
  thread = zlt_test_transfer_start (&t);
  zlt_test_transfer_finish (thread, &t, 60000);
  g_assert_null (t.error);
  g_assert_true (t.ok);
  g_assert_cmpuint (t.received, ==, n_bytes * n);
}

/* ---- raw peers ---- */

/* A v2 session of @token by hand, with @caps; its AuthOk in @ok and key in @key. */
static ZltTestWs *
login (Fixture *f, const char *token, guint32 caps, ZltMessage **ok, guint8 key[ZLT_HASH_SIZE])
{
  ZltTestWs *ws = zlt_test_ws_connect (zlt_server_get_port (f->h.server), "/tunnel/v1");

  *ok = zlt_test_ws_v2_auth (ws, token, caps, -1, key);
  g_assert_cmpint ((*ok)->type, ==, ZLT_MESSAGE_AUTH_OK);
  return ws;
}

typedef struct
{
  GSocketConnection *conn;
  GString *head;
  gboolean eof;
} Upgrade;

static gboolean
upgrade_answered (Upgrade *u)
{
  char buf[1024];
  g_autoptr (GError) error = NULL;
  GSocket *socket = g_socket_connection_get_socket (u->conn);
  gssize n;

  while ((n = g_socket_receive_with_blocking (socket, buf, sizeof buf, FALSE, NULL, &error)) > 0)
    g_string_append_len (u->head, buf, n);
  if (n == 0 || (n < 0 && !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK)))
    u->eof = TRUE;
  return u->eof || strstr (u->head->str, "\r\n\r\n") != NULL;
}

static void
upgrade_clear (Upgrade *u)
{
  if (u->conn != NULL)
    g_io_stream_close (G_IO_STREAM (u->conn), NULL, NULL);
  g_clear_object (&u->conn);
  if (u->head != NULL)
    g_string_free (u->head, TRUE);
  u->head = NULL;
}

/* Sends a standby upgrade with these header values (NULL: left out) and returns the
 * answer's status; @u keeps the connection (open after a 101). */
static guint
standby_upgrade (Fixture *f, Upgrade *u, const char *tunnel_id, const char *standby_id,
                 const char *mac_hex)
{
  g_autoptr (GSocketClient) client = g_socket_client_new ();
  g_autoptr (GError) error = NULL;
  g_autofree char *authority
      = zlt_net_join_host_port (zlt_test_loopback (), zlt_server_get_port (f->h.server));
  GString *request = g_string_new (NULL);
  guint status = 0;

  g_string_append_printf (request,
                          "GET /tunnel/v1/data HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\n"
                          "Upgrade: zlt-data/2\r\n",
                          authority);
  if (tunnel_id != NULL)
    g_string_append_printf (request, "X-Zlt-Tunnel: %s\r\n", tunnel_id);
  if (standby_id != NULL)
    g_string_append_printf (request, "X-Zlt-Standby: %s\r\n", standby_id);
  if (mac_hex != NULL)
    g_string_append_printf (request, "X-Zlt-Mac: %s\r\n", mac_hex);
  g_string_append (request, "\r\n");

  memset (u, 0, sizeof *u);
  u->head = g_string_new (NULL);
  u->conn = g_socket_client_connect_to_host (client, authority, 0, NULL, &error);
  g_assert_no_error (error);
  g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (u->conn)), request->str,
                             request->len, NULL, NULL, &error);
  g_assert_no_error (error);
  g_string_free (request, TRUE);
  ZLT_TEST_WAIT_FOR (upgrade_answered (u), 10000);
  if (u->head->len >= 12 && g_str_has_prefix (u->head->str, "HTTP/1.1 "))
    status = (guint) g_ascii_strtoull (u->head->str + 9, NULL, 10);
  return status;
}

/* The same, for a session's standby id @id with its right MAC under @key. */
static guint
standby_upgrade_for (Fixture *f, Upgrade *u, const ZltUuid *tunnel_id, const guint8 *key,
                     guint64 id)
{
  char tid[ZLT_UUID_STRING_LEN + 1];
  g_autofree char *id_str = g_strdup_printf ("%" G_GUINT64_FORMAT, id);
  guint8 mac[ZLT_HASH_SIZE];
  g_autofree char *mac_hex = NULL;

  zlt_uuid_format (tunnel_id, tid);
  zlt_standby_mac (key, tunnel_id, id, mac);
  mac_hex = zlt_hex_encode (mac, sizeof mac);
  return standby_upgrade (f, u, tid, id_str, mac_hex);
}

/* ---- the binding ---- */

static void
test_binding_layout (void)
{
  ZltUuid cid, sid;
  guint8 out[ZLT_BINDING_MAX_SIZE];
  g_autoptr (GBytes) expected
      = zlt_test_bytes_from_hex ("B1 F4 7A C1 0B 58 CC 43 72 A5 67 0E 02 B2 C3 D4 79"
                                 "12 3E 45 67 E8 9B 12 D3 A4 56 42 66 14 17 40 00"
                                 "0F 32 30 33 2E 30 2E 31 31 33 2E 37 3A 34 34 33");
  ZltBinding binding;
  gsize len, consumed = 99;

  g_assert_true (zlt_uuid_parse ("f47ac10b-58cc-4372-a567-0e02b2c3d479", &cid));
  g_assert_true (zlt_uuid_parse ("123e4567-e89b-12d3-a456-426614174000", &sid));
  len = zlt_binding_encode (&cid, &sid, "203.0.113.7:443", out);
  g_assert_cmpmem (out, len, g_bytes_get_data (expected, NULL), g_bytes_get_size (expected));

  /* every shorter prefix asks for more; the whole decodes, whatever follows it */
  for (gsize i = 0; i < len; i++)
    g_assert_cmpint (zlt_binding_decode (out, i, &binding, &consumed), ==,
                     i == 0 || out[0] == ZLT_BINDING_MAGIC ? ZLT_BINDING_INCOMPLETE
                                                           : ZLT_BINDING_INVALID);
  out[len] = 'x';
  g_assert_cmpint (zlt_binding_decode (out, len + 1, &binding, &consumed), ==,
                   ZLT_BINDING_COMPLETE);
  g_assert_cmpuint (consumed, ==, len);
  g_assert_true (zlt_uuid_equal (&binding.connection_id, &cid));
  g_assert_true (zlt_uuid_equal (&binding.service_id, &sid));
  g_assert_cmpstr (binding.client_addr, ==, "203.0.113.7:443");

  /* no address at all */
  len = zlt_binding_encode (&cid, &sid, NULL, out);
  g_assert_cmpuint (len, ==, ZLT_BINDING_FIXED_SIZE);
  g_assert_cmpint (zlt_binding_decode (out, len, &binding, &consumed), ==, ZLT_BINDING_COMPLETE);
  g_assert_cmpstr (binding.client_addr, ==, "");
}

static void
test_binding_invalid (void)
{
  ZltUuid id = { { 0 } };
  guint8 out[ZLT_BINDING_MAX_SIZE + 8];
  g_autofree char *filler = g_strnfill (ZLT_BINDING_ADDR_MAX - 1, 'a');
  g_autofree char *long_addr = g_strconcat (filler, "é:1", NULL);
  ZltBinding binding;
  gsize len, consumed;

  /* not a binding: HTTP, a wrong magic byte */
  g_assert_cmpint (zlt_binding_decode ((const guint8 *) "HTTP/1.1 200", 12, &binding, &consumed),
                   ==, ZLT_BINDING_INVALID);
  len = zlt_binding_encode (&id, &id, "[::1]:5", out);
  out[0] = 0xB3; /* 0xB2 is format 2 (PROTOCOL-v2.md §9) */
  g_assert_cmpint (zlt_binding_decode (out, len, &binding, &consumed), ==, ZLT_BINDING_INVALID);
  /* an address with a NUL, or that is not UTF-8 */
  len = zlt_binding_encode (&id, &id, "[::1]:5", out);
  out[ZLT_BINDING_FIXED_SIZE + 2] = '\0';
  g_assert_cmpint (zlt_binding_decode (out, len, &binding, &consumed), ==, ZLT_BINDING_INVALID);
  len = zlt_binding_encode (&id, &id, "[::1]:5", out);
  out[ZLT_BINDING_FIXED_SIZE + 2] = 0xC3;
  g_assert_cmpint (zlt_binding_decode (out, len, &binding, &consumed), ==, ZLT_BINDING_INVALID);

  /* a long address is cut at a character boundary, never mid-character */
  len = zlt_binding_encode (&id, &id, long_addr, out);
  g_assert_cmpuint (len, ==, ZLT_BINDING_FIXED_SIZE + ZLT_BINDING_ADDR_MAX - 1);
  g_assert_cmpint (zlt_binding_decode (out, len, &binding, &consumed), ==, ZLT_BINDING_COMPLETE);
  g_assert_cmpuint (strlen (binding.client_addr), ==, ZLT_BINDING_ADDR_MAX - 1);
}

/* ---- joining ---- */

/* A public connection is joined to a parked connection: no Connect, every byte echoed
 * both ways with the client's half-close after them, and the pool refills. */
static void
test_join (Fixture *f, gconstpointer data)
{
  guint16 port = start_echo (f, 8);
  ZltService *service;

  g_assert_cmpuint (zlt_server_get_n_connects_sent (f->h.server), ==, 0);
  transfer (port, 1024 * 1024, 1);
  g_assert_cmpuint (zlt_server_get_n_connects_sent (f->h.server), ==, 0);
  g_assert_cmpuint (zlt_server_get_n_standby_joins (f->h.server), ==, 1);
  /* the relays end with the client's end, and the pool is full again */
  ZLT_TEST_WAIT_FOR (zlt_server_get_n_relays (f->h.server) == 0
                         && zlt_agent_get_n_relays (f->h.agent) == 0
                         && zlt_server_get_n_standby (f->h.server) == 8
                         && zlt_agent_get_n_standby (f->h.agent) == 8,
                     10000);
  service = zlt_registry_lookup_service_by_port (zlt_server_get_registry (f->h.server),
                                                 ZLT_PROTOCOL_TCP, port);
  g_assert_cmpuint (zlt_service_get_bytes_in (service), ==, 1024 * 1024);
  g_assert_cmpuint (zlt_service_get_bytes_out (service), ==, 1024 * 1024);
  g_assert_cmpuint (zlt_service_get_total_connections (service), ==, 1);
  g_assert_cmpuint (zlt_test_echo_get_n_accepted (f->h.echo), ==, 1);
}

/* Connections one after the other each take a parked connection, and the pool is
 * back to its size after each: not one Connect. */
static void
test_refill (Fixture *f, gconstpointer data)
{
  guint16 port;

  set_agent (f, "standby-connections", 3);
  port = start_echo (f, 3);
  for (guint i = 0; i < 12; i++)
    {
      transfer (port, 4096, 1);
      ZLT_TEST_WAIT_FOR (zlt_server_get_n_standby (f->h.server) == 3, 10000);
    }
  g_assert_cmpuint (zlt_server_get_n_connects_sent (f->h.server), ==, 0);
  g_assert_cmpuint (zlt_server_get_n_standby_joins (f->h.server), ==, 12);
  /* three at once: the whole pool, and it refills */
  transfer (port, 4096, 3);
  g_assert_cmpuint (zlt_server_get_n_standby_joins (f->h.server), ==, 15);
  ZLT_TEST_WAIT_FOR (zlt_server_get_n_standby (f->h.server) == 3
                         && zlt_agent_get_n_standby (f->h.agent) == 3,
                     10000);
  g_assert_cmpuint (zlt_server_get_n_connects_sent (f->h.server), ==, 0);
}

/* The ConnectAcks the agent sends, seen on their way out of its WebSocket channel (the
 * channel class's send, wrapped for one test: only an agent sends ConnectAck). */
static GArray *sent_acks;
static gboolean (*real_send) (ZltChannel *self, GBytes *message, GError **error);

static gboolean
recording_send (ZltChannel *self, GBytes *message, GError **error)
{
  gsize len;
  const guint8 *data = g_bytes_get_data (message, &len);
  g_autoptr (ZltMessage) msg = zlt_message_decode (data, len, NULL, NULL);

  if (msg != NULL && msg->type == ZLT_MESSAGE_CONNECT_ACK)
    g_array_append_val (sent_acks, msg->connection_id);
  return real_send (self, message, error);
}

/* The agent answers every binding with one ConnectAck (sent once its relay runs, from
 * an idle, a burst's together): as many as connections joined, each id once. */
static void
test_acks (Fixture *f, gconstpointer data)
{
  ZltChannelClass *klass;
  guint16 port;

  set_agent (f, "standby-connections", 3);
  port = start_echo (f, 3);
  klass = g_type_class_ref (g_type_from_name ("ZltWsChannel"));
  sent_acks = g_array_new (FALSE, FALSE, sizeof (ZltUuid));
  real_send = klass->send;
  klass->send = recording_send;

  for (guint i = 0; i < 6; i++)
    {
      transfer (port, 4096, 1);
      ZLT_TEST_WAIT_FOR (zlt_server_get_n_standby (f->h.server) == 3, 10000);
    }
  transfer (port, 4096, 3);
  g_assert_cmpuint (zlt_server_get_n_connects_sent (f->h.server), ==, 0);
  g_assert_cmpuint (zlt_server_get_n_standby_joins (f->h.server), ==, 9);
  ZLT_TEST_WAIT_FOR (sent_acks->len >= 9 && zlt_agent_get_n_relays (f->h.agent) == 0
                         && zlt_server_get_n_relays (f->h.server) == 0,
                     10000);
  g_assert_cmpuint (sent_acks->len, ==, 9);
  for (guint i = 0; i < sent_acks->len; i++)
    for (guint j = i + 1; j < sent_acks->len; j++)
      g_assert_false (zlt_uuid_equal (&g_array_index (sent_acks, ZltUuid, i),
                                      &g_array_index (sent_acks, ZltUuid, j)));

  klass->send = real_send;
  g_type_class_unref (klass);
  g_clear_pointer (&sent_acks, g_array_unref);
}

/* A pool larger than the keeper opens at once fills all the same, and refills after a
 * burst that takes all of it. */
static void
test_large_pool (Fixture *f, gconstpointer data)
{
  guint16 port;

  set_agent (f, "standby-connections", 20);
  port = start_echo (f, 20);
  transfer (port, 1024, 20);
  g_assert_cmpuint (zlt_server_get_n_standby_joins (f->h.server), ==, 20);
  g_assert_cmpuint (zlt_server_get_n_connects_sent (f->h.server), ==, 0);
  ZLT_TEST_WAIT_FOR (zlt_server_get_n_standby (f->h.server) == 20
                         && zlt_agent_get_n_standby (f->h.agent) == 20,
                     10000);
}

/* More connections at once than are parked: those beyond take the Connect path, and
 * every one carries its bytes. The pool then grows toward the burst, within the
 * server's bound, and shrinks back to the agent's floor once idle. */
static void
test_fallback_and_growth (Fixture *f, gconstpointer data)
{
  guint16 port;
  guint64 joins, connects;

  set_agent (f, "standby-connections", 2);
  set_server (f, "standby-connections", 6);
  port = start_echo (f, 2);
  transfer (port, 16 * 1024, 24);
  joins = zlt_server_get_n_standby_joins (f->h.server);
  connects = zlt_server_get_n_connects_sent (f->h.server);
  g_test_message ("24 at once: %" G_GUINT64_FORMAT " joined, %" G_GUINT64_FORMAT " by Connect",
                  joins, connects);
  g_assert_cmpuint (joins + connects, ==, 24);
  g_assert_cmpuint (joins, >=, 2);
  g_assert_cmpuint (connects, >=, 1);
  g_assert_cmpuint (zlt_test_echo_get_n_accepted (f->h.echo), ==, 24);
  ZLT_TEST_WAIT_FOR (zlt_server_get_n_relays (f->h.server) == 0
                         && zlt_agent_get_n_relays (f->h.agent) == 0,
                     10000);

  /* the misses made the pool grow, within the server's bound ... */
  ZLT_TEST_WAIT_FOR (zlt_server_get_n_standby (f->h.server) > 2, 10000);
  g_assert_cmpuint (zlt_server_get_n_standby (f->h.server), <=, 6);
  /* ... and unused connections retired above the floor are not replaced */
  zlt_server_set_standby_lifetime (f->h.server, 300);
  ZLT_TEST_WAIT_FOR (zlt_server_get_n_standby (f->h.server) == 2
                         && zlt_server_get_n_standby_retired (f->h.server) >= 1,
                     10000);
  transfer (port, 4096, 2);
}

/* Parked connections the server retires after their lifetime are replaced: the pool
 * stays full and keeps working. */
static void
test_lifetime (Fixture *f, gconstpointer data)
{
  guint16 port;

  set_agent (f, "standby-connections", 4);
  zlt_test_harness_start_server (&f->h);
  zlt_server_set_standby_lifetime (f->h.server, 200);
  zlt_test_harness_add_service (&f->h, "echo", zlt_test_echo_get_port (f->h.echo), 0);
  zlt_test_harness_start_agent (&f->h);
  port = zlt_test_harness_wait_registered (&f->h, "echo");
  ZLT_TEST_WAIT_FOR (zlt_server_get_n_standby_retired (f->h.server) >= 12
                         && zlt_server_get_n_standby (f->h.server) == 4,
                     10000);
  /* (a join, unless the four were all being replaced at that moment) */
  transfer (port, 4096, 1);
  g_assert_cmpuint (zlt_server_get_n_connects_sent (f->h.server)
                        + zlt_server_get_n_standby_joins (f->h.server),
                    ==, 1);
}

/* A UDP echo service on 127.0.0.1, served from the main context. */
static gboolean
udp_echo_ready (GSocket *socket, GIOCondition condition, gpointer user_data)
{
  guint8 buf[2048];
  gssize n;

  while (TRUE)
    {
      g_autoptr (GSocketAddress) from = NULL;

      n = g_socket_receive_from (socket, &from, (char *) buf, sizeof buf, NULL, NULL);
      if (n < 0)
        break;
      g_socket_send_to (socket, from, (const char *) buf, (gsize) n, NULL, NULL);
    }
  return G_SOURCE_CONTINUE;
}

typedef struct
{
  guint16 port;
  gboolean ok;
  gint done;
} UdpPeer;

/* sends a datagram until its echo comes back, a bounded number of times */
static gpointer
udp_peer_thread (gpointer user_data)
{
  UdpPeer *p = user_data;
  g_autoptr (GSocket) socket
      = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM, G_SOCKET_PROTOCOL_UDP, NULL);
  g_autoptr (GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) server = g_inet_socket_address_new (lo, p->port);
  static const char ping[] = "standby over udp";
  char buf[64];

  g_socket_set_timeout (socket, 1);
  for (guint attempt = 0; attempt < 10 && !p->ok; attempt++)
    {
      gssize n;

      g_socket_send_to (socket, server, ping, sizeof ping, NULL, NULL);
      n = g_socket_receive (socket, buf, sizeof buf, NULL, NULL);
      p->ok = n == sizeof ping && memcmp (buf, ping, sizeof ping) == 0;
    }
  g_atomic_int_set (&p->done, 1);
  return NULL;
}

/* A UDP flow takes a standby connection too: the datagram framing follows the binding. */
static void
test_udp (Fixture *f, gconstpointer data)
{
  g_autoptr (GSocket) echo = NULL;
  g_autoptr (GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) any = g_inet_socket_address_new (lo, 0);
  g_autoptr (GSocketAddress) bound = NULL;
  g_autoptr (GError) error = NULL;
  GSource *source;
  UdpPeer peer = { 0 };
  GThread *thread;

  echo = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM, G_SOCKET_PROTOCOL_UDP, &error);
  g_assert_no_error (error);
  g_socket_set_blocking (echo, FALSE);
  g_socket_bind (echo, any, FALSE, &error);
  g_assert_no_error (error);
  bound = g_socket_get_local_address (echo, &error);
  g_assert_no_error (error);
  source = g_socket_create_source (echo, G_IO_IN, NULL);
  g_source_set_callback (source, G_SOURCE_FUNC (udp_echo_ready), NULL, NULL);
  g_source_attach (source, NULL);

  zlt_test_harness_start_server (&f->h);
  zlt_test_harness_add_service (&f->h, "game",
                                g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound)), 0);
  g_key_file_set_string (f->h.agent_keyfile, "service:game", "protocol", "udp");
  zlt_test_harness_start_agent (&f->h);
  peer.port = zlt_test_harness_wait_registered (&f->h, "game");
  ZLT_TEST_WAIT_FOR (zlt_server_get_n_standby (f->h.server) == 8, 10000);

  thread = g_thread_new ("udp-peer", udp_peer_thread, &peer);
  ZLT_TEST_WAIT_FOR (g_atomic_int_get (&peer.done), 20000);
  g_thread_join (thread);
  g_assert_true (peer.ok);
  g_assert_cmpuint (zlt_server_get_n_standby_joins (f->h.server), ==, 1);
  g_assert_cmpuint (zlt_server_get_n_connects_sent (f->h.server), ==, 0);
  g_source_destroy (source);
  g_source_unref (source);
}

/* A local service that refuses: the public client gets a reset, the server logs the
 * agent's ConnectFail, and the pool refills. */
static void
test_local_refuses (Fixture *f, gconstpointer data)
{
  ZltTestRaw raw = { 0 };
  GThread *thread;
  guint16 port;
  guint first;

  zlt_test_harness_start_server (&f->h);
  zlt_test_harness_add_service (&f->h, "down", zlt_test_closed_port (), 0);
  zlt_test_harness_start_agent (&f->h);
  port = zlt_test_harness_wait_registered (&f->h, "down");
  ZLT_TEST_WAIT_FOR (zlt_server_get_n_standby (f->h.server) == 8, 10000);

  first = shown_lines->len;
  raw.port = port;
  raw.request = "hello";
  thread = zlt_test_raw_start (&raw);
  zlt_test_raw_finish (thread, &raw, 10000);
  /* a reset, which may come before the client's connect() has even returned (the raw
   * client reports that as a reset too) */
  g_assert_null (raw.error);
  g_assert_true (raw.closed);
  g_assert_true (raw.reset);
  g_assert_cmpuint (raw.reply->len, ==, 0);
  g_assert_cmpuint (zlt_server_get_n_standby_joins (f->h.server), ==, 1);
  g_assert_cmpuint (zlt_server_get_n_connects_sent (f->h.server), ==, 0);
  ZLT_TEST_WAIT_FOR (shown_since (first, "the agent could not reach it"), 5000);
  ZLT_TEST_WAIT_FOR (zlt_server_get_n_relays (f->h.server) == 0
                         && zlt_server_get_n_standby (f->h.server) == 8,
                     10000);
  zlt_test_raw_clear (&raw);
}

/* ---- what the server accepts ---- */

/* A session gets at most STANDBY_MAX parked (the rest are refused, not parked), each
 * standby id once, and only with its own tunnel's MAC. */
static void
test_bound_and_replay (Fixture *f, gconstpointer data)
{
  g_autoptr (ZltTestWs) ws = NULL;
  g_autoptr (ZltMessage) ok = NULL;
  guint8 key[ZLT_HASH_SIZE];
  Upgrade u[6] = { { 0 } };
  char tid[ZLT_UUID_STRING_LEN + 1];
  guint8 mac[ZLT_HASH_SIZE];
  g_autofree char *mac_hex = NULL;

  /* the agent wishes for more than the server parks: it gets the server's bound */
  set_server (f, "standby-connections", 3);
  set_agent (f, "standby-connections", 10);
  start_echo (f, 3);

  ws = login (f, f->h.token, ZLT_CAP_DATA_RAW | ZLT_CAP_STANDBY, &ok, key);
  g_assert_cmpuint (ok->ext.caps & ZLT_CAP_STANDBY, ==, ZLT_CAP_STANDBY);
  g_assert_true (zlt_message_has_ext_fields (ok, ZLT_EXT_STANDBY_MAX));
  g_assert_cmpuint (ok->ext.standby_max, ==, 3);

  /* ids in any order; past the bound: 503 */
  g_assert_cmpuint (standby_upgrade_for (f, &u[0], &ok->tunnel_id, key, 7), ==, 101);
  g_assert_cmpuint (standby_upgrade_for (f, &u[1], &ok->tunnel_id, key, 5), ==, 101);
  g_assert_cmpuint (standby_upgrade_for (f, &u[2], &ok->tunnel_id, key, 6), ==, 101);
  ZLT_TEST_WAIT_FOR (zlt_server_get_n_standby (f->h.server) == 6, 5000);
  g_assert_cmpuint (standby_upgrade_for (f, &u[3], &ok->tunnel_id, key, 8), ==, 503);
  g_assert_true (u[3].eof || strstr (u[3].head->str, "Connection: close") != NULL);
  upgrade_clear (&u[3]);

  /* one goes: its place is free again, but never for an id seen before */
  upgrade_clear (&u[1]);
  ZLT_TEST_WAIT_FOR (zlt_server_get_n_standby (f->h.server) == 5, 5000);
  g_assert_cmpuint (standby_upgrade_for (f, &u[3], &ok->tunnel_id, key, 5), ==, 403);
  upgrade_clear (&u[3]);
  g_assert_cmpuint (standby_upgrade_for (f, &u[3], &ok->tunnel_id, key, 9), ==, 101);
  ZLT_TEST_WAIT_FOR (zlt_server_get_n_standby (f->h.server) == 6, 5000);

  /* the agent's own MAC does not pass for this session, nor this one's under another
   * tunnel id; malformed ids are 400 */
  zlt_uuid_format (&ok->tunnel_id, tid);
  zlt_standby_mac (key, &ok->tunnel_id, 10, mac);
  mac[0] ^= 1;
  mac_hex = zlt_hex_encode (mac, sizeof mac);
  upgrade_clear (&u[2]);
  g_assert_cmpuint (standby_upgrade (f, &u[4], tid, "10", mac_hex), ==, 403);
  upgrade_clear (&u[4]);
  g_assert_cmpuint (standby_upgrade_for (
                        f, &u[4], zlt_tunnel_get_id (zlt_agent_get_tunnel (f->h.agent)), key, 11),
                    ==, 403);
  upgrade_clear (&u[4]);
  g_assert_cmpuint (standby_upgrade (f, &u[4], tid, "012", mac_hex), ==, 400);
  upgrade_clear (&u[4]);
  g_assert_cmpuint (standby_upgrade (f, &u[4], "not-a-uuid", "12", mac_hex), ==, 400);
  upgrade_clear (&u[4]);
  g_assert_cmpuint (standby_upgrade (f, &u[4], tid, "12", NULL), ==, 400);
  upgrade_clear (&u[4]);
  ZLT_TEST_WAIT_FOR (zlt_server_get_n_standby (f->h.server) == 5, 5000);

  /* a parked connection that speaks before its binding is closed */
  g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (u[0].conn)), "x", 1, NULL,
                             NULL, NULL);
  ZLT_TEST_WAIT_FOR (zlt_server_get_n_standby (f->h.server) == 4, 5000);
  for (guint i = 0; i < 6; i++)
    upgrade_clear (&u[i]);
  ZLT_TEST_WAIT_FOR (zlt_server_get_n_standby (f->h.server) == 3, 5000);
}

/* Unknown tunnels and sessions without the capability get the one 403; nothing is
 * parked for them. */
static void
test_refused (Fixture *f, gconstpointer data)
{
  g_autoptr (ZltTestWs) ws = NULL;
  g_autoptr (ZltMessage) ok = NULL;
  guint8 key[ZLT_HASH_SIZE];
  Upgrade u;
  ZltUuid unknown;

  start_echo (f, 8);
  /* a session that did not ask: AuthOk as before, no STANDBY, no STANDBY_MAX */
  ws = login (f, f->h.token, ZLT_CAP_DATA_RAW | ZLT_CAP_RESUME, &ok, key);
  g_assert_cmpuint (ok->ext.caps & ZLT_CAP_STANDBY, ==, 0);
  g_assert_false (zlt_message_has_ext_fields (ok, ZLT_EXT_STANDBY_MAX));
  g_assert_cmpuint (standby_upgrade_for (f, &u, &ok->tunnel_id, key, 1), ==, 403);
  upgrade_clear (&u);
  zlt_uuid_generate (&unknown);
  g_assert_cmpuint (standby_upgrade_for (f, &u, &unknown, key, 1), ==, 403);
  upgrade_clear (&u);
  /* the header of a data connection and of a standby one together: neither */
  g_assert_cmpuint (zlt_test_http_status (
                        zlt_server_get_port (f->h.server),
                        "GET /tunnel/v1/data HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                        "Upgrade: zlt-data/2\r\nX-Zlt-Tunnel: 6ba7b810-9dad-11d1-80b4-00c04fd430c8"
                        "\r\nX-Zlt-Standby: 1\r\nX-Zlt-Connection: "
                        "f47ac10b-58cc-4372-a567-0e02b2c3d479\r\nX-Zlt-Mac: 00\r\n\r\n",
                        5000),
                    ==, 400);
  g_assert_cmpuint (zlt_server_get_n_standby (f->h.server), ==, 8);
}

/* Agents without standby connections (their config, or the server's) work the old way. */
static void
disabled (Fixture *f, gboolean server_side)
{
  guint16 port;

  if (server_side)
    set_server (f, "standby-connections", 0);
  else
    set_agent (f, "standby-connections", 0);
  port = start_echo (f, 0);
  transfer (port, 64 * 1024, 3);
  g_assert_cmpuint (zlt_server_get_n_connects_sent (f->h.server), ==, 3);
  g_assert_cmpuint (zlt_server_get_n_standby_joins (f->h.server), ==, 0);
  g_assert_cmpuint (zlt_server_get_n_standby (f->h.server), ==, 0);
}

static void
test_disabled_agent (Fixture *f, gconstpointer data)
{
  disabled (f, FALSE);
}

static void
test_disabled_server (Fixture *f, gconstpointer data)
{
  disabled (f, TRUE);
}

/* ---- the end of a session ---- */

static void
test_end_stop (Fixture *f, gconstpointer data)
{
  start_echo (f, 8);
  zlt_agent_stop (f->h.agent);
  ZLT_TEST_WAIT_FOR (zlt_server_get_n_standby (f->h.server) == 0, 5000);
  g_assert_cmpuint (zlt_agent_get_n_standby (f->h.agent), ==, 0);
  ZLT_TEST_WAIT_FOR (zlt_registry_get_n_tunnels (zlt_server_get_registry (f->h.server)) == 0, 5000);
}

/* A session that drops without a goodbye is held for a resume: its parked connections
 * are closed all the same (nobody could answer for them), and come back with the
 * resumed session, under its new key. */
static void
test_end_held (Fixture *f, gconstpointer data)
{
  g_autoptr (ZltMessage) ok = NULL;
  guint8 key[ZLT_HASH_SIZE];
  ZltTestWs *ws;
  Upgrade u[2] = { { 0 } };
  ZltTunnel *tunnel;
  g_autoptr (GPtrArray) tunnels = NULL;

  set_server (f, "resume-grace", 600);
  zlt_test_harness_start_server (&f->h);
  ws = login (f, f->h.token, ZLT_CAP_DATA_RAW | ZLT_CAP_RESUME | ZLT_CAP_STANDBY, &ok, key);
  g_assert_cmpuint (standby_upgrade_for (f, &u[0], &ok->tunnel_id, key, 1), ==, 101);
  g_assert_cmpuint (standby_upgrade_for (f, &u[1], &ok->tunnel_id, key, 2), ==, 101);
  ZLT_TEST_WAIT_FOR (zlt_server_get_n_standby (f->h.server) == 2, 5000);

  tunnels = zlt_registry_get_tunnels (zlt_server_get_registry (f->h.server));
  tunnel = g_ptr_array_index (tunnels, 0);
  zlt_test_ws_free (ws);
  ZLT_TEST_WAIT_FOR (zlt_registry_is_held (zlt_server_get_registry (f->h.server), tunnel), 5000);
  ZLT_TEST_WAIT_FOR (zlt_server_get_n_standby (f->h.server) == 0, 5000);
  /* the agent's ends see theirs closed */
  for (guint i = 0; i < 2; i++)
    {
      ZLT_TEST_WAIT_FOR (upgrade_answered (&u[i]) && u[i].eof, 5000);
      upgrade_clear (&u[i]);
    }
  /* and the old session's ids are nothing now */
  g_assert_cmpuint (standby_upgrade_for (f, &u[0], &ok->tunnel_id, key, 3), ==, 403);
  upgrade_clear (&u[0]);
}

/* Revoking the token ends its session and every connection it had parked. */
static void
test_end_revoked (Fixture *f, gconstpointer data)
{
  g_autofree char *before = NULL;
  g_autofree char *token = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (ZltAgent) other = NULL;
  g_autofree char *entry = g_strdup_printf ("echo2:%u", zlt_test_echo_get_port (f->h.echo));
  const char *services[] = { entry, NULL };
  gboolean ok = FALSE;

  g_file_get_contents (f->h.token_file, &before, NULL, &error);
  g_assert_no_error (error);
  token = zlt_test_harness_add_token (&f->h, "name=leaving register=*");
  start_echo (f, 8);
  other = zlt_test_harness_new_agent (&f->h, token, services);
  zlt_agent_start (other);
  ZLT_TEST_WAIT_FOR (
      zlt_server_get_n_standby (f->h.server) == 16 && zlt_agent_get_n_standby (other) == 8, 10000);

  g_file_set_contents_full (f->h.token_file, before, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600,
                            &error);
  g_assert_no_error (error);
  g_signal_emit_by_name (zlt_server_get_validator (f->h.server), "reload", &ok);
  g_assert_true (ok);
  /* the other token's eight go; the harness's agent keeps its own */
  ZLT_TEST_WAIT_FOR (
      zlt_server_get_n_standby (f->h.server) == 8 && zlt_agent_get_n_standby (other) == 0, 10000);
  zlt_agent_stop (other);
  g_assert_cmpuint (zlt_agent_get_n_standby (f->h.agent), ==, 8);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  shown_lines = g_ptr_array_new_with_free_func (g_free);
  g_log_set_writer_func (capture_writer, NULL, NULL);
  zlt_init ();
  g_test_add_func ("/standby/binding/layout", test_binding_layout);
  g_test_add_func ("/standby/binding/invalid", test_binding_invalid);
#define ADD(path, func, data)                                                                      \
  g_test_add ("/standby/" path, Fixture, GINT_TO_POINTER (data), fixture_setup, func,              \
              fixture_teardown)
  ADD ("join", test_join, FALSE);
  ADD ("join/ipv6", test_join, TRUE);
  ADD ("refill", test_refill, FALSE);
  ADD ("acks", test_acks, FALSE);
  ADD ("large-pool", test_large_pool, FALSE);
  ADD ("fallback-and-growth", test_fallback_and_growth, FALSE);
  ADD ("lifetime", test_lifetime, FALSE);
  ADD ("udp", test_udp, FALSE);
  ADD ("local-refuses", test_local_refuses, FALSE);
  ADD ("bound-and-replay", test_bound_and_replay, FALSE);
  ADD ("bound-and-replay/ipv6", test_bound_and_replay, TRUE);
  ADD ("refused", test_refused, FALSE);
  ADD ("disabled/agent", test_disabled_agent, FALSE);
  ADD ("disabled/server", test_disabled_server, FALSE);
  ADD ("end/stop", test_end_stop, FALSE);
  ADD ("end/held", test_end_held, FALSE);
  ADD ("end/revoked", test_end_revoked, FALSE);
#undef ADD
  return g_test_run ();
}
