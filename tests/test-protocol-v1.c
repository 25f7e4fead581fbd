/* test-protocol-v1.c: a v1 peer, built by hand from the PROTOCOL.md layouts and test
 * vectors (not from our codec), against a real server on loopback. What it sends and
 * what it gets back must match the v1 wire format byte for byte: in particular the
 * server must never append a v2 extension block for a peer that did not show v2. */
#include "config.h"

#include <string.h>

#include "zlt-test-util.h"

#define PORT_FIRST 32000
#define PORT_LAST 32099
#define VECTOR_CLIENT_ID "550e8400-e29b-41d4-a716-446655440000"
#define VECTOR_TIMESTAMP G_GUINT64_CONSTANT (1705320000000)

/* PROTOCOL.md §1.4 */
#define VECTOR_AUTH                                                                                \
  "01 00 00 00 1C 00 0A 74 75 6E 5F 61 62 63 31 32 33"                                             \
  "55 0E 84 00 E2 9B 41 D4 A7 16 44 66 55 44 00 00"
#define VECTOR_REGISTER_SSH "10 00 00 00 09 03 73 73 68 00 00 16 08 AE"
#define VECTOR_REGISTER_GAME "10 00 00 00 0A 04 67 61 6D 65 01 69 87 00 00"
#define VECTOR_HEARTBEAT "30 00 00 00 08 00 00 01 8D 0C FE 2A 00"

typedef struct
{
  ZltTestHarness h;
} Fixture;

typedef struct
{
  gboolean allow_legacy;
} Params;

static const Params legacy_allowed = { TRUE };
static const Params legacy_refused = { FALSE };

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  const Params *params = data;

  zlt_test_harness_init (&f->h, "32000-32099");
  g_key_file_set_boolean (f->h.server_keyfile, "server", "allow-legacy-auth", params->allow_legacy);
  /* v1 has no data plane: public connections wait this long, then close */
  g_key_file_set_integer (f->h.server_keyfile, "server", "connect-timeout", 1);
  zlt_test_harness_start_server (&f->h);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  zlt_test_harness_clear (&f->h);
}

/* ---- a v1 encoder written from the layout tables, independent of the codec ---- */

static void
put_u8 (GByteArray *out, guint8 v)
{
  g_byte_array_append (out, &v, 1);
}

static void
put_u16 (GByteArray *out, guint16 v)
{
  guint8 b[2] = { v >> 8, v & 0xff };
  g_byte_array_append (out, b, sizeof b);
}

static void
put_u32 (GByteArray *out, guint32 v)
{
  guint8 b[4] = { v >> 24, (v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff };
  g_byte_array_append (out, b, sizeof b);
}

static void
put_u64 (GByteArray *out, guint64 v)
{
  put_u32 (out, (guint32) (v >> 32));
  put_u32 (out, (guint32) v);
}

static void
put_str16 (GByteArray *out, const char *s)
{
  put_u16 (out, (guint16) strlen (s));
  g_byte_array_append (out, (const guint8 *) s, strlen (s));
}

static void
put_str8 (GByteArray *out, const char *s)
{
  put_u8 (out, (guint8) strlen (s));
  g_byte_array_append (out, (const guint8 *) s, strlen (s));
}

static void
put_uuid (GByteArray *out, const ZltUuid *id)
{
  g_byte_array_append (out, id->bytes, ZLT_UUID_SIZE);
}

/* Wraps a payload into a frame: type · u32 length · payload. */
static GBytes *
frame (guint8 type, GByteArray *payload)
{
  g_autoptr (GByteArray) out = g_byte_array_new ();

  put_u8 (out, type);
  put_u32 (out, payload->len);
  g_byte_array_append (out, payload->data, payload->len);
  return g_byte_array_free_to_bytes (g_steal_pointer (&out));
}

static GBytes *
v1_auth (const char *token, const ZltUuid *client_id)
{
  g_autoptr (GByteArray) p = g_byte_array_new ();

  put_str16 (p, token);
  put_uuid (p, client_id);
  return frame (0x01, p);
}

static GBytes *
v1_register (const char *name, guint8 protocol, guint16 local_port, guint16 remote_port)
{
  g_autoptr (GByteArray) p = g_byte_array_new ();

  put_str8 (p, name);
  put_u8 (p, protocol);
  put_u16 (p, local_port);
  put_u16 (p, remote_port);
  return frame (0x10, p);
}

static GBytes *
v1_heartbeat (guint8 type, guint64 timestamp)
{
  g_autoptr (GByteArray) p = g_byte_array_new ();

  put_u64 (p, timestamp);
  return frame (type, p);
}

static GBytes *
v1_uuid_frame (guint8 type, const ZltUuid *id)
{
  g_autoptr (GByteArray) p = g_byte_array_new ();

  put_uuid (p, id);
  return frame (type, p);
}

static ZltUuid
uuid (const char *str)
{
  ZltUuid u;

  g_assert_true (zlt_uuid_parse (str, &u));
  return u;
}

static void
assert_bytes_equal (GBytes *got, GBytes *expected)
{
  gsize got_len, expected_len;
  const guint8 *got_data = g_bytes_get_data (got, &got_len);
  const guint8 *expected_data = g_bytes_get_data (expected, &expected_len);

  g_assert_cmpmem (got_data, got_len, expected_data, expected_len);
}

/* The frame's header: its type and a length that covers exactly the rest. */
static void
assert_v1_frame (GBytes *bytes, guint8 type, gsize payload_len)
{
  gsize len;
  const guint8 *d = g_bytes_get_data (bytes, &len);

  g_assert_cmpuint (len, ==, ZLT_HEADER_SIZE + payload_len);
  g_assert_cmpuint (d[0], ==, type);
  g_assert_cmpuint ((guint32) d[1] << 24 | (guint32) d[2] << 16 | (guint32) d[3] << 8 | d[4], ==,
                    payload_len);
}

/* ---- a v1 session ---- */

/* Connects and authenticates with the raw token, as a v1 agent does (it ignores the
 * nonce header it does not know); returns the tunnel id from AuthOk. */
static ZltTestWs *
v1_connect (Fixture *f, ZltUuid *tunnel_id)
{
  ZltTestWs *ws = zlt_test_ws_connect (zlt_server_get_port (f->h.server), "/tunnel/v1");
  ZltUuid client_id = uuid (VECTOR_CLIENT_ID);
  g_autoptr (GBytes) auth = v1_auth (f->h.token, &client_id);
  g_autoptr (GBytes) raw = NULL;
  g_autoptr (ZltMessage) ok = NULL;

  zlt_test_ws_send_bytes (ws, auth);
  ok = zlt_test_ws_expect (ws, ZLT_MESSAGE_AUTH_OK, &raw, 10000);
  /* exactly the v1 AuthOk: 5 + 16, no extension block */
  assert_v1_frame (raw, ZLT_MESSAGE_AUTH_OK, ZLT_UUID_SIZE);
  g_assert_false (ok->has_ext);
  g_assert_false (zlt_uuid_is_nil (&ok->tunnel_id));
  if (tunnel_id != NULL)
    *tunnel_id = ok->tunnel_id;
  return ws;
}

/* Registers one TCP service on any port; returns its id (RegisterOk checked v1-exact). */
static ZltUuid
v1_register_ok (ZltTestWs *ws, const char *name, guint16 local_port)
{
  g_autoptr (GBytes) reg = v1_register (name, 0, local_port, 0);
  g_autoptr (GBytes) raw = NULL;
  g_autoptr (ZltMessage) ok = NULL;

  zlt_test_ws_send_bytes (ws, reg);
  ok = zlt_test_ws_expect (ws, ZLT_MESSAGE_REGISTER_OK, &raw, 10000);
  assert_v1_frame (raw, ZLT_MESSAGE_REGISTER_OK, ZLT_UUID_SIZE);
  g_assert_false (ok->has_ext);
  return ok->service_id;
}

/* ---- tests ---- */

static void
test_builder_matches_vectors (Fixture *f, gconstpointer data)
{
  ZltUuid client_id = uuid (VECTOR_CLIENT_ID);
  g_autoptr (GBytes) auth = v1_auth ("tun_abc123", &client_id);
  g_autoptr (GBytes) auth_vector = zlt_test_bytes_from_hex (VECTOR_AUTH);
  g_autoptr (GBytes) ssh = v1_register ("ssh", 0, 22, 2222);
  g_autoptr (GBytes) ssh_vector = zlt_test_bytes_from_hex (VECTOR_REGISTER_SSH);
  g_autoptr (GBytes) game = v1_register ("game", 1, 27015, 0);
  g_autoptr (GBytes) game_vector = zlt_test_bytes_from_hex (VECTOR_REGISTER_GAME);
  g_autoptr (GBytes) hb = v1_heartbeat (0x30, VECTOR_TIMESTAMP);
  g_autoptr (GBytes) hb_vector = zlt_test_bytes_from_hex (VECTOR_HEARTBEAT);
  g_autoptr (ZltMessage) codec_auth = zlt_message_new_auth ("tun_abc123", &client_id);
  g_autoptr (GBytes) codec_bytes = NULL;
  g_autoptr (GError) error = NULL;

  /* the hand-written builder is the vector, byte for byte... */
  assert_bytes_equal (auth, auth_vector);
  assert_bytes_equal (ssh, ssh_vector);
  assert_bytes_equal (game, game_vector);
  assert_bytes_equal (hb, hb_vector);
  /* ...and so is our codec, so the two agree on what a v1 Auth is */
  codec_bytes = zlt_message_encode_bytes (codec_auth, &error);
  g_assert_no_error (error);
  assert_bytes_equal (codec_bytes, auth_vector);
}

static void
test_auth (Fixture *f, gconstpointer data)
{
  ZltUuid tunnel_id;
  g_autoptr (ZltTestWs) ws = v1_connect (f, &tunnel_id);
  ZltTunnel *tunnel
      = zlt_registry_lookup_tunnel (zlt_server_get_registry (f->h.server), &tunnel_id);

  /* the nonce header is there (a v2 server), and a v1 peer that ignores it still works */
  g_assert_nonnull (zlt_test_ws_get_nonce (ws));
  g_assert_nonnull (tunnel);
  g_assert_cmpstr (zlt_tunnel_get_client_id (tunnel), ==, VECTOR_CLIENT_ID);
  g_assert_cmpstr (zlt_tunnel_get_token_name (tunnel), ==, "test");
  g_assert_cmpint (zlt_tunnel_get_state (tunnel), ==, ZLT_TUNNEL_STATE_CONNECTED);
  g_assert_cmpuint (zlt_server_get_n_peers (f->h.server), ==, 1);
}

static void
test_register (Fixture *f, gconstpointer data)
{
  ZltUuid tunnel_id, service_id;
  g_autoptr (ZltTestWs) ws = v1_connect (f, &tunnel_id);
  ZltService *service;
  guint16 port;

  service_id = v1_register_ok (ws, "ssh", 22);
  service = zlt_registry_lookup_service (zlt_server_get_registry (f->h.server), &service_id);
  g_assert_nonnull (service);
  g_assert_cmpstr (zlt_service_get_name (service), ==, "ssh");
  g_assert_cmpint (zlt_service_get_protocol (service), ==, ZLT_PROTOCOL_TCP);
  g_assert_cmpuint (zlt_service_get_local_port (service), ==, 22);
  g_assert_true (zlt_uuid_equal (zlt_tunnel_get_id (zlt_service_get_tunnel (service)), &tunnel_id));
  port = zlt_service_get_assigned_port (service);
  g_assert_cmpuint (port, >=, PORT_FIRST);
  g_assert_cmpuint (port, <=, PORT_LAST);
  /* and the public port is really open */
  g_assert_false (zlt_test_connect_refused (port));
}

static void
test_register_order (Fixture *f, gconstpointer data)
{
  g_autoptr (ZltTestWs) ws = v1_connect (f, NULL);
  g_autoptr (GByteArray) batch = g_byte_array_new ();
  ZltRegistry *registry = zlt_server_get_registry (f->h.server);
  struct
  {
    const char *name;
    guint16 remote_port;
    gboolean ok;
  } regs[] = {
    { "alpha", 0, TRUE },         { "alpha", 0, FALSE }, /* same name in the same tunnel */
    { "beta", 1, FALSE },                                /* outside the port range */
    { "gamma", PORT_LAST, TRUE },                        /* a requested port inside it */
    { "delta", 0, TRUE },
  };

  /* all of them back to back in one WebSocket message */
  for (guint i = 0; i < G_N_ELEMENTS (regs); i++)
    {
      g_autoptr (GBytes) reg = v1_register (regs[i].name, 0, 1000 + i, regs[i].remote_port);
      g_byte_array_append (batch, g_bytes_get_data (reg, NULL), g_bytes_get_size (reg));
    }
  zlt_test_ws_send (ws, batch->data, batch->len);

  /* one reply per Register, in request order */
  for (guint i = 0; i < G_N_ELEMENTS (regs); i++)
    {
      g_autoptr (GBytes) raw = NULL;
      g_autoptr (ZltMessage) reply = NULL;

      if (regs[i].ok)
        {
          ZltService *service;

          reply = zlt_test_ws_expect (ws, ZLT_MESSAGE_REGISTER_OK, &raw, 10000);
          assert_v1_frame (raw, ZLT_MESSAGE_REGISTER_OK, ZLT_UUID_SIZE);
          service = zlt_registry_lookup_service (registry, &reply->service_id);
          g_assert_nonnull (service);
          g_assert_cmpstr (zlt_service_get_name (service), ==, regs[i].name);
          g_assert_cmpuint (zlt_service_get_local_port (service), ==, 1000 + i);
          if (regs[i].remote_port != 0)
            g_assert_cmpuint (zlt_service_get_assigned_port (service), ==, regs[i].remote_port);
        }
      else
        {
          reply = zlt_test_ws_expect (ws, ZLT_MESSAGE_REGISTER_FAIL, &raw, 10000);
          /* a reason, and no code block for a v1 peer */
          g_assert_cmpstr (reply->reason, !=, "");
          g_assert_false (reply->has_ext);
          assert_v1_frame (raw, ZLT_MESSAGE_REGISTER_FAIL, 2 + strlen (reply->reason));
        }
    }
  g_assert_cmpuint (zlt_test_ws_get_n_queued (ws), ==, 0);
  g_assert_false (zlt_test_ws_is_closed (ws));
}

static void
test_server_heartbeat (Fixture *f, gconstpointer data)
{
  g_autoptr (ZltTestWs) ws = v1_connect (f, NULL);
  ZltServerConfig *config = zlt_server_get_config (f->h.server);
  guint timeout_ms = zlt_server_config_get_heartbeat_timeout (config) * 1000;
  gint64 start = g_get_monotonic_time ();
  guint answered = 0;
  g_autoptr (GBytes) raw = NULL;
  g_autoptr (ZltMessage) bye = NULL;

  g_assert_cmpuint (zlt_server_config_get_heartbeat_interval (config), ==, 1);
  zlt_test_ws_set_auto_ack (ws, FALSE);
  /* answer every Heartbeat by hand for twice the server's timeout */
  while (g_get_monotonic_time () - start < 2 * (gint64) timeout_ms * 1000)
    {
      g_autoptr (GBytes) hb_raw = NULL;
      g_autoptr (ZltMessage) hb = zlt_test_ws_expect (ws, ZLT_MESSAGE_HEARTBEAT, &hb_raw, 10000);
      g_autoptr (GBytes) ack = v1_heartbeat (0x31, hb->timestamp);
      gint64 now_ms = g_get_real_time () / 1000;

      /* the v1 Heartbeat: 5 + u64, a Unix time in ms */
      assert_v1_frame (hb_raw, ZLT_MESSAGE_HEARTBEAT, 8);
      g_assert_cmpint ((gint64) hb->timestamp, >, now_ms - 60000);
      g_assert_cmpint ((gint64) hb->timestamp, <, now_ms + 60000);
      zlt_test_ws_send_bytes (ws, ack);
      answered++;
    }
  g_assert_cmpuint (answered, >=, 3);
  g_assert_false (zlt_test_ws_is_closed (ws));
  g_assert_cmpuint (zlt_server_get_n_peers (f->h.server), ==, 1);

  /* now stay silent: the server drops us (Heartbeats keep coming until then) */
  while (TRUE)
    {
      g_autoptr (ZltMessage) msg = NULL;
      g_clear_pointer (&raw, g_bytes_unref);
      raw = zlt_test_ws_next (ws, 2 * timeout_ms + 5000);
      g_assert_nonnull (raw);
      msg = zlt_message_decode (g_bytes_get_data (raw, NULL), g_bytes_get_size (raw), NULL, NULL);
      g_assert_nonnull (msg);
      if (msg->type != ZLT_MESSAGE_HEARTBEAT)
        {
          bye = g_steal_pointer (&msg);
          break;
        }
    }
  g_assert_cmpint (bye->type, ==, ZLT_MESSAGE_DISCONNECT);
  g_assert_nonnull (strstr (bye->reason, "heartbeat"));
  assert_v1_frame (raw, ZLT_MESSAGE_DISCONNECT, 2 + strlen (bye->reason));
  g_assert_cmpuint (zlt_test_ws_wait_closed (ws, 5000), ==, SOUP_WEBSOCKET_CLOSE_NORMAL);
  ZLT_TEST_WAIT_FOR (zlt_server_get_n_peers (f->h.server) == 0, 5000);
  /* a v1 tunnel is not held for a resume */
  g_assert_cmpuint (zlt_registry_get_n_tunnels (zlt_server_get_registry (f->h.server)), ==, 0);
}

static void
test_client_heartbeat (Fixture *f, gconstpointer data)
{
  g_autoptr (ZltTestWs) ws = v1_connect (f, NULL);
  g_autoptr (GBytes) hb = zlt_test_bytes_from_hex (VECTOR_HEARTBEAT);
  g_autoptr (GBytes) expected = v1_heartbeat (0x31, VECTOR_TIMESTAMP);
  g_autoptr (GBytes) raw = NULL;
  g_autoptr (ZltMessage) ack = NULL;

  zlt_test_ws_send_bytes (ws, hb);
  ack = zlt_test_ws_expect (ws, ZLT_MESSAGE_HEARTBEAT_ACK, &raw, 10000);
  g_assert_cmpuint (ack->timestamp, ==, VECTOR_TIMESTAMP);
  assert_bytes_equal (raw, expected);
}

static void
test_unregister (Fixture *f, gconstpointer data)
{
  ZltUuid tunnel_id, ssh_id, other_id, unknown_id;
  g_autoptr (ZltTestWs) ws = v1_connect (f, &tunnel_id);
  ZltRegistry *registry = zlt_server_get_registry (f->h.server);
  g_autoptr (GBytes) unreg = NULL;
  g_autoptr (GBytes) unknown = NULL;
  g_autoptr (GBytes) hb = zlt_test_bytes_from_hex (VECTOR_HEARTBEAT);
  g_autoptr (ZltMessage) ack = NULL;
  g_autoptr (ZltMessage) connect = NULL;
  guint16 port;

  ssh_id = v1_register_ok (ws, "ssh", 22);
  other_id = v1_register_ok (ws, "other", 23);
  port = zlt_service_get_assigned_port (zlt_registry_lookup_service (registry, &ssh_id));
  g_assert_false (zlt_test_connect_refused (port));
  /* that probe was a public connection: the server announced it */
  connect = zlt_test_ws_expect (ws, ZLT_MESSAGE_CONNECT, NULL, 10000);
  g_assert_true (zlt_uuid_equal (&connect->service_id, &ssh_id));

  /* v1 Unregister gets no reply; an unknown id is ignored, not an error */
  zlt_uuid_generate (&unknown_id);
  unknown = v1_uuid_frame (0x40, &unknown_id);
  zlt_test_ws_send_bytes (ws, unknown);
  unreg = v1_uuid_frame (0x40, &ssh_id);
  zlt_test_ws_send_bytes (ws, unreg);
  ZLT_TEST_WAIT_FOR (zlt_registry_lookup_service (registry, &ssh_id) == NULL, 5000);
  g_assert_true (zlt_test_connect_refused (port));

  /* the session and the other service go on */
  zlt_test_ws_send_bytes (ws, hb);
  ack = zlt_test_ws_expect (ws, ZLT_MESSAGE_HEARTBEAT_ACK, NULL, 10000);
  g_assert_cmpuint (ack->timestamp, ==, VECTOR_TIMESTAMP);
  g_assert_cmpuint (zlt_server_get_n_pending (f->h.server), ==, 0);
  g_assert_nonnull (zlt_registry_lookup_service (registry, &other_id));
  g_assert_nonnull (zlt_registry_lookup_tunnel (registry, &tunnel_id));
}

static void
test_legacy_refused (Fixture *f, gconstpointer data)
{
  g_autoptr (ZltTestWs) ws = zlt_test_ws_connect (zlt_server_get_port (f->h.server), "/tunnel/v1");
  ZltUuid client_id = uuid (VECTOR_CLIENT_ID);
  g_autoptr (GBytes) auth = v1_auth (f->h.token, &client_id);
  g_autoptr (GBytes) raw = NULL;
  g_autoptr (ZltMessage) fail = NULL;

  zlt_test_ws_send_bytes (ws, auth);
  fail = zlt_test_ws_expect (ws, ZLT_MESSAGE_AUTH_FAIL, &raw, 10000);
  /* a reason a human can read, and no v2 code block for a v1 peer */
  g_assert_cmpstr (fail->reason, !=, "");
  g_assert_false (fail->has_ext);
  assert_v1_frame (raw, ZLT_MESSAGE_AUTH_FAIL, 2 + strlen (fail->reason));
  g_assert_cmpuint (zlt_test_ws_wait_closed (ws, 5000), ==, SOUP_WEBSOCKET_CLOSE_NORMAL);
  ZLT_TEST_WAIT_FOR (zlt_server_get_n_peers (f->h.server) == 0, 5000);
  g_assert_cmpuint (zlt_registry_get_n_tunnels (zlt_server_get_registry (f->h.server)), ==, 0);
}

static void
test_public_connect (Fixture *f, gconstpointer data)
{
  ZltUuid service_id;
  g_autoptr (ZltTestWs) ws = v1_connect (f, NULL);
  ZltService *service;
  ZltTestRaw public_client = { 0 };
  GThread *thread;
  g_autoptr (GBytes) raw = NULL;
  g_autoptr (ZltMessage) connect = NULL;
  g_autoptr (GBytes) connect_ack = NULL;
  g_autoptr (GRegex) addr_re = g_regex_new ("^127\\.0\\.0\\.1:[0-9]{1,5}$", 0, 0, NULL);

  service_id = v1_register_ok (ws, "web", 80);
  service = zlt_registry_lookup_service (zlt_server_get_registry (f->h.server), &service_id);

  /* a public client connects and sends nothing */
  public_client.port = zlt_service_get_assigned_port (service);
  thread = zlt_test_raw_start (&public_client);
  connect = zlt_test_ws_expect (ws, ZLT_MESSAGE_CONNECT, &raw, 10000);
  g_assert_true (zlt_uuid_equal (&connect->service_id, &service_id));
  g_assert_false (zlt_uuid_is_nil (&connect->connection_id));
  g_assert_true (g_regex_match (addr_re, connect->client_addr, 0, NULL));
  assert_v1_frame (raw, ZLT_MESSAGE_CONNECT, 2 * ZLT_UUID_SIZE + 2 + strlen (connect->client_addr));
  g_assert_cmpuint (zlt_server_get_n_pending (f->h.server), ==, 1);

  /* a v1 agent acknowledges, but has no way to carry the bytes: after the connect
   * timeout the server gives up on the public connection */
  connect_ack = v1_uuid_frame (0x21, &connect->connection_id);
  zlt_test_ws_send_bytes (ws, connect_ack);
  zlt_test_raw_finish (thread, &public_client, 10000);
  g_assert_null (public_client.error);
  g_assert_true (public_client.connected);
  g_assert_true (public_client.closed);
  g_assert_cmpuint (public_client.reply->len, ==, 0);
  ZLT_TEST_WAIT_FOR (zlt_server_get_n_pending (f->h.server) == 0, 5000);
  g_assert_cmpuint (zlt_server_get_n_relays (f->h.server), ==, 0);
  zlt_test_raw_clear (&public_client);

  /* and the session is unharmed */
  g_assert_false (zlt_test_ws_is_closed (ws));
  g_assert_cmpuint (zlt_server_get_n_peers (f->h.server), ==, 1);
}

static void
test_close_removes_tunnel (Fixture *f, gconstpointer data)
{
  ZltTestWs *ws = v1_connect (f, NULL);
  ZltRegistry *registry = zlt_server_get_registry (f->h.server);
  ZltUuid service_id = v1_register_ok (ws, "ssh", 22);
  guint16 port
      = zlt_service_get_assigned_port (zlt_registry_lookup_service (registry, &service_id));

  /* a v1 peer that goes away has its tunnel and ports released at once */
  zlt_test_ws_free (ws);
  ZLT_TEST_WAIT_FOR (zlt_server_get_n_peers (f->h.server) == 0, 5000);
  g_assert_cmpuint (zlt_registry_get_n_tunnels (registry), ==, 0);
  g_assert_null (zlt_registry_lookup_service (registry, &service_id));
  g_assert_true (zlt_test_connect_refused (port));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  zlt_init ();
#define ADD(path, params, func)                                                                    \
  g_test_add ("/protocol-v1/" path, Fixture, params, fixture_setup, func, fixture_teardown)
  ADD ("builder-matches-vectors", &legacy_allowed, test_builder_matches_vectors);
  ADD ("auth", &legacy_allowed, test_auth);
  ADD ("register", &legacy_allowed, test_register);
  ADD ("register-order", &legacy_allowed, test_register_order);
  ADD ("server-heartbeat", &legacy_allowed, test_server_heartbeat);
  ADD ("client-heartbeat", &legacy_allowed, test_client_heartbeat);
  ADD ("unregister", &legacy_allowed, test_unregister);
  ADD ("legacy-refused", &legacy_refused, test_legacy_refused);
  ADD ("public-connect", &legacy_allowed, test_public_connect);
  ADD ("close-removes-tunnel", &legacy_allowed, test_close_removes_tunnel);
#undef ADD
  return g_test_run ();
}
