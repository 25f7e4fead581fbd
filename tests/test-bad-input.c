/* test-bad-input.c: peers that misbehave, by mistake or on purpose. Each case has a
 * defined outcome; afterwards the server still serves a well-behaved agent end to end,
 * and every peer, waiting connection and relay of the bad client is gone. */
#include "config.h"

#include <string.h>

#include "zlt-test-util.h"

#define PORT_RANGE "32100-32189"
/* a range of exactly two ports, inside ours and outside the one above */
#define SMALL_RANGE "32190-32191"

/* Every log line this process wrote, to check that nothing a peer sent forged one; and
 * those a user sees without -v (message level and above). */
static GPtrArray *log_lines;
static GPtrArray *shown_lines;

static GLogWriterOutput
capture_writer (GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer user_data)
{
  for (gsize i = 0; i < n_fields; i++)
    if (g_strcmp0 (fields[i].key, "MESSAGE") == 0)
      {
        char *line = fields[i].length < 0 ? g_strdup (fields[i].value)
                                          : g_strndup (fields[i].value, fields[i].length);

        if ((level & (G_LOG_LEVEL_DEBUG | G_LOG_LEVEL_INFO)) == 0)
          g_ptr_array_add (shown_lines, g_strdup (line));
        g_ptr_array_add (log_lines, line);
      }
  return g_log_writer_default (level, fields, n_fields, user_data);
}

/* Whether a line shown without -v since @first holds @needle (and, if set, @needle2). */
static gboolean
shown_since (guint first, const char *needle, const char *needle2)
{
  for (guint i = first; i < shown_lines->len; i++)
    {
      const char *line = g_ptr_array_index (shown_lines, i);

      if (strstr (line, needle) != NULL && (needle2 == NULL || strstr (line, needle2) != NULL))
        return TRUE;
    }
  return FALSE;
}

typedef struct
{
  ZltTestHarness h;
  guint16 echo_port; /* the good agent's public port */
} Fixture;

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  zlt_test_harness_init (&f->h, PORT_RANGE);
  /* raw clients below speak v1; the good agent still uses v2 */
  g_key_file_set_boolean (f->h.server_keyfile, "server", "allow-legacy-auth", TRUE);
  /* a v2 agent that leaves has its tunnel held this long for a resume */
  g_key_file_set_integer (f->h.server_keyfile, "server", "resume-grace", 1);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  zlt_test_harness_clear (&f->h);
}

/* The server and a good v2 agent with an echo service, connected. */
static void
start (Fixture *f)
{
  zlt_test_harness_start_server (&f->h);
  zlt_test_harness_add_service (&f->h, "echo", zlt_test_echo_get_port (f->h.echo), 0);
  zlt_test_harness_start_agent (&f->h);
  f->echo_port = zlt_test_harness_wait_registered (&f->h, "echo");
}

/* Nothing of the bad clients is left, and the good agent still carries bytes. */
static void
assert_good (Fixture *f)
{
  ZltTestTransfer t = { 0 };
  GThread *thread;
  ZltServer *server = f->h.server;

  /* the good agent is the only peer and has the only tunnel (held ones expire after
   * the resume grace); nothing waits, nothing relays */
  ZLT_TEST_WAIT_FOR (zlt_server_get_n_peers (server) == 1 && zlt_server_get_n_pending (server) == 0
                         && zlt_server_get_n_relays (server) == 0
                         && zlt_registry_get_n_tunnels (zlt_server_get_registry (server)) == 1,
                     10000);
  /* ...and it never lost its session to someone else's mistakes */
  g_assert_cmpuint (zlt_agent_get_n_sessions (f->h.agent), ==, 1);
  g_assert_cmpint (zlt_agent_get_state (f->h.agent), ==, ZLT_TUNNEL_STATE_CONNECTED);

  t.port = f->echo_port;
  t.n_bytes = 64 * 1024;
  t.n_connections = 1;
  thread = zlt_test_transfer_start (&t);
  zlt_test_transfer_finish (thread, &t, 30000);
  g_assert_null (t.error);
  g_assert_true (t.ok);
  ZLT_TEST_WAIT_FOR (zlt_server_get_n_relays (server) == 0, 10000);
  g_assert_cmpuint (zlt_server_get_n_pending (server), ==, 0);
  g_assert_cmpuint (zlt_server_get_n_peers (server), ==, 1);
}

static ZltTestWs *
ws_connect (Fixture *f)
{
  return zlt_test_ws_connect (zlt_server_get_port (f->h.server), "/tunnel/v1");
}

/* A raw v1 client authenticated with @token (raw-token Auth). */
static ZltTestWs *
v1_session (Fixture *f, const char *token)
{
  ZltTestWs *ws = ws_connect (f);
  ZltUuid client_id;
  g_autoptr (ZltMessage) auth = NULL;
  g_autoptr (ZltMessage) ok = NULL;

  zlt_uuid_generate (&client_id);
  auth = zlt_message_new_auth (token, &client_id);
  zlt_test_ws_send_message (ws, auth);
  ok = zlt_test_ws_expect (ws, ZLT_MESSAGE_AUTH_OK, NULL, 10000);
  g_assert_false (ok->has_ext);
  return ws;
}

/* A raw v2 client: challenge proof, no token on the wire. Returns the session key. */
static ZltTestWs *
v2_session (Fixture *f, const char *token, ZltUuid *tunnel_id, guint8 session_key[ZLT_HASH_SIZE])
{
  ZltTestWs *ws = ws_connect (f);
  g_autoptr (ZltMessage) ok = zlt_test_ws_v2_auth (ws, token, ZLT_CAP_DATA_RAW, -1, session_key);

  g_assert_cmpint (ok->type, ==, ZLT_MESSAGE_AUTH_OK);
  *tunnel_id = ok->tunnel_id;
  return ws;
}

/* Ends a bad client's story: the frame that says why (if any) and the close. */
static ZltMessage *
expect_refusal (ZltTestWs *ws, ZltMessageType type)
{
  ZltMessage *msg = zlt_test_ws_expect (ws, type, NULL, 10000);

  g_assert_cmpstr (msg->reason, !=, "");
  g_assert_cmpuint (zlt_test_ws_wait_closed (ws, 10000), ==, SOUP_WEBSOCKET_CLOSE_NORMAL);
  return msg;
}

/* ---- malformed frames ---- */

static void
test_garbage_before_auth (Fixture *f, gconstpointer data)
{
  g_autoptr (ZltTestWs) ws = NULL;
  g_autoptr (GBytes) reply = NULL;
  guint8 garbage[64];

  start (f);
  ws = ws_connect (f);
  g_assert_cmpuint (zlt_server_get_n_peers (f->h.server), ==, 2);
  for (guint i = 0; i < sizeof garbage; i++)
    garbage[i] = (guint8) g_test_rand_int_range (0, 256);
  zlt_test_ws_send (ws, garbage, sizeof garbage);
  /* AuthFail, or a plain close: never an answer as if it meant something */
  reply = zlt_test_ws_next (ws, 10000);
  if (reply != NULL)
    {
      g_autoptr (ZltMessage) fail = zlt_message_decode (g_bytes_get_data (reply, NULL),
                                                        g_bytes_get_size (reply), NULL, NULL);
      g_assert_nonnull (fail);
      g_assert_cmpint (fail->type, ==, ZLT_MESSAGE_AUTH_FAIL);
    }
  zlt_test_ws_wait_closed (ws, 10000);
  assert_good (f);
}

/* Hex frames that must end a session: before Auth with AuthFail, after with
 * Disconnect, the channel closed either way. */
static const char *const bad_frames[] = {
  "FF 00 00 00 00",                                        /* unknown type */
  "05 00 00 00 02 00 00",                                  /* unknown type, with payload */
  "01 00 00 00 64 00 01 02 03 04 05 06 07 08 09",          /* says 100, 10 follow */
  "01 FF FF FF FF",                                        /* payload too large */
  "30 00 00",                                              /* shorter than a header */
  "30 00 00 00 09 00 00 01 8D 0C FE 2A 00 00",             /* Heartbeat one byte too long */
  "10 00 00 00 09 03 73 73 68 07 00 16 08 AE",             /* Register, protocol 7 */
  "10 00 00 00 09 03 FF FE FD 00 00 16 08 AE",             /* Register, name not UTF-8 */
  "30 00 00 00 08 00 00 01 8D 0C FE 2A 00 FF 00 00 00 00", /* a good frame, then a bad one */
};

static void
test_bad_frames (Fixture *f, gconstpointer data)
{
  start (f);
  for (guint i = 0; i < G_N_ELEMENTS (bad_frames); i++)
    {
      g_autoptr (GBytes) bytes = zlt_test_bytes_from_hex (bad_frames[i]);

      g_test_message ("frame %s", bad_frames[i]);
      /* before authentication */
      {
        g_autoptr (ZltTestWs) ws = ws_connect (f);
        g_autoptr (ZltMessage) fail = NULL;

        zlt_test_ws_send_bytes (ws, bytes);
        fail = expect_refusal (ws, ZLT_MESSAGE_AUTH_FAIL);
        g_assert_false (fail->has_ext);
      }
      /* and after it */
      {
        g_autoptr (ZltTestWs) ws = v1_session (f, f->h.token);
        g_autoptr (ZltMessage) bye = NULL;

        g_assert_cmpuint (zlt_registry_get_n_tunnels (zlt_server_get_registry (f->h.server)), ==,
                          2);
        zlt_test_ws_send_bytes (ws, bytes);
        bye = expect_refusal (ws, ZLT_MESSAGE_DISCONNECT);
        g_assert_nonnull (strstr (bye->reason, "protocol error"));
        g_assert_false (bye->has_ext);
      }
      ZLT_TEST_WAIT_FOR (zlt_server_get_n_peers (f->h.server) == 1, 5000);
    }
  assert_good (f);
}

static void
test_server_only_types (Fixture *f, gconstpointer data)
{
  ZltUuid id;
  g_autoptr (GPtrArray) frames = g_ptr_array_new_with_free_func ((GDestroyNotify) zlt_message_free);

  zlt_uuid_generate (&id);
  g_ptr_array_add (frames, zlt_message_new_auth_ok (&id));
  g_ptr_array_add (frames, zlt_message_new_auth_fail ("no"));
  g_ptr_array_add (frames, zlt_message_new_register_ok (&id));
  g_ptr_array_add (frames, zlt_message_new_register_fail ("no"));
  g_ptr_array_add (frames, zlt_message_new_connect (&id, &id, "127.0.0.1:1"));

  start (f);
  for (guint i = 0; i < frames->len; i++)
    {
      ZltMessage *msg = g_ptr_array_index (frames, i);
      g_autoptr (ZltTestWs) ws = v1_session (f, f->h.token);
      g_autoptr (ZltMessage) bye = NULL;

      g_test_message ("client sends %s", zlt_message_type_to_string (msg->type));
      zlt_test_ws_send_message (ws, msg);
      bye = expect_refusal (ws, ZLT_MESSAGE_DISCONNECT);
      g_assert_nonnull (strstr (bye->reason, "not sent by agents"));
      ZLT_TEST_WAIT_FOR (zlt_server_get_n_peers (f->h.server) == 1, 5000);
    }
  /* Disconnect from an agent is its goodbye (v2 agents send it when they stop): the
   * channel closes without an answer and its tunnel goes at once */
  {
    g_autoptr (ZltTestWs) ws = v1_session (f, f->h.token);
    g_autoptr (ZltMessage) bye = zlt_message_new_disconnect ("agent stopped\n");

    zlt_test_ws_send_message (ws, bye);
    zlt_test_ws_wait_closed (ws, 10000);
    g_assert_cmpuint (zlt_test_ws_get_n_queued (ws), ==, 0);
    ZLT_TEST_WAIT_FOR (zlt_server_get_n_peers (f->h.server) == 1
                           && zlt_registry_get_n_tunnels (zlt_server_get_registry (f->h.server))
                                  == 1,
                       5000);
  }
  /* Auth again after AuthOk is no better */
  {
    g_autoptr (ZltTestWs) ws = v1_session (f, f->h.token);
    g_autoptr (ZltMessage) auth = zlt_message_new_auth (f->h.token, &id);
    g_autoptr (ZltMessage) bye = NULL;

    zlt_test_ws_send_message (ws, auth);
    bye = expect_refusal (ws, ZLT_MESSAGE_DISCONNECT);
  }
  assert_good (f);
}

/* ---- WebSocket-level abuse ---- */

static void
test_oversized_message (Fixture *f, gconstpointer data)
{
  g_autoptr (ZltTestWs) ws = NULL;
  gsize len = 256 * 1024 + 1;
  g_autofree guint8 *big = g_malloc0 (len);

  start (f);
  ws = v1_session (f, f->h.token);
  big[0] = ZLT_MESSAGE_HEARTBEAT;
  zlt_test_ws_send (ws, big, len);
  g_assert_cmpuint (zlt_test_ws_wait_closed (ws, 10000), ==, SOUP_WEBSOCKET_CLOSE_TOO_BIG);
  assert_good (f);
}

static void
test_text_message (Fixture *f, gconstpointer data)
{
  start (f);
  /* before authentication and after it */
  {
    g_autoptr (ZltTestWs) ws = ws_connect (f);
    zlt_test_ws_send_text (ws, "hello");
    g_assert_cmpuint (zlt_test_ws_wait_closed (ws, 10000), ==,
                      SOUP_WEBSOCKET_CLOSE_UNSUPPORTED_DATA);
  }
  {
    g_autoptr (ZltTestWs) ws = v1_session (f, f->h.token);
    zlt_test_ws_send_text (ws, "{\"type\": \"auth\"}");
    g_assert_cmpuint (zlt_test_ws_wait_closed (ws, 10000), ==,
                      SOUP_WEBSOCKET_CLOSE_UNSUPPORTED_DATA);
  }
  assert_good (f);
}

/* ---- silence ---- */

static void
test_no_auth (Fixture *f, gconstpointer data)
{
  g_autoptr (ZltTestWs) ws = NULL;
  g_autoptr (ZltMessage) fail = NULL;
  gint64 start_time;

  g_key_file_set_integer (f->h.server_keyfile, "server", "auth-timeout", 1);
  start (f);
  start_time = g_get_monotonic_time ();
  ws = ws_connect (f);
  g_assert_cmpuint (zlt_server_get_n_peers (f->h.server), ==, 2);
  /* the server's own deadline: wait for it */
  fail = expect_refusal (ws, ZLT_MESSAGE_AUTH_FAIL);
  g_assert_nonnull (strstr (fail->reason, "timeout"));
  g_assert_cmpint (g_get_monotonic_time () - start_time, >=, 900 * 1000);
  assert_good (f);
}

static void
test_silent_tcp (Fixture *f, gconstpointer data)
{
  ZltTestRaw raw = { 0 };
  ZltTestRaw half = { 0 };
  GThread *thread, *half_thread;

  g_key_file_set_integer (f->h.server_keyfile, "server", "auth-timeout", 1);
  start (f);
  /* no HTTP at all, and half a request: both closed at the handshake deadline */
  raw.port = zlt_server_get_port (f->h.server);
  half.port = raw.port;
  half.request = "GET /tunnel/v1 HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  thread = zlt_test_raw_start (&raw);
  half_thread = zlt_test_raw_start (&half);
  zlt_test_raw_finish (thread, &raw, 10000);
  zlt_test_raw_finish (half_thread, &half, 10000);
  g_assert_null (raw.error);
  g_assert_true (raw.connected);
  g_assert_true (raw.closed);
  g_assert_cmpuint (raw.reply->len, ==, 0);
  g_assert_cmpint (raw.elapsed_ms, >=, 900);
  g_assert_null (half.error);
  g_assert_true (half.closed);
  g_assert_cmpint (half.elapsed_ms, >=, 900);
  zlt_test_raw_clear (&raw);
  zlt_test_raw_clear (&half);
  assert_good (f);
}

/* ---- HTTP ---- */

static void
test_wrong_path (Fixture *f, gconstpointer data)
{
  guint16 port;
  guint status = 0;
  g_autoptr (GError) error = NULL;
  g_autoptr (ZltTestWs) ws = NULL;

  start (f);
  port = zlt_server_get_port (f->h.server);
  g_assert_cmpuint (
      zlt_test_http_status (port, "GET /other HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 10000), ==,
      404);
  g_assert_cmpuint (zlt_test_http_status (port, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 10000),
                    ==, 404);
  /* a WebSocket upgrade on a path that is not ours */
  ws = zlt_test_ws_try_connect (port, "/tunnel/v2", &status, &error);
  g_assert_null (ws);
  g_assert_nonnull (error);
  g_assert_cmpuint (status, ==, 404);
  /* a plain GET on the control path is no upgrade */
  g_assert_cmpuint (
      zlt_test_http_status (port, "GET /tunnel/v1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 10000), ==,
      400);
  assert_good (f);
}

static char *
data_request (const char *tunnel_id, const char *connection_id, const char *mac)
{
  GString *s = g_string_new ("GET /tunnel/v1/data HTTP/1.1\r\n"
                             "Host: 127.0.0.1\r\n"
                             "Connection: Upgrade\r\n"
                             "Upgrade: zlt-data/2\r\n");

  if (tunnel_id != NULL)
    g_string_append_printf (s, "X-Zlt-Tunnel: %s\r\n", tunnel_id);
  if (connection_id != NULL)
    g_string_append_printf (s, "X-Zlt-Connection: %s\r\n", connection_id);
  if (mac != NULL)
    g_string_append_printf (s, "X-Zlt-Mac: %s\r\n", mac);
  g_string_append (s, "\r\n");
  return g_string_free (s, FALSE);
}

static guint
data_status (Fixture *f, const char *tunnel_id, const char *connection_id, const char *mac)
{
  g_autofree char *request = data_request (tunnel_id, connection_id, mac);

  return zlt_test_http_status (zlt_server_get_port (f->h.server), request, 10000);
}

static void
test_data_upgrade (Fixture *f, gconstpointer data)
{
  ZltUuid tunnel_id, other_id;
  guint8 key[ZLT_HASH_SIZE], mac[ZLT_HASH_SIZE], raw_mac[ZLT_HASH_SIZE];
  g_autoptr (ZltTestWs) ws = NULL;
  g_autoptr (ZltMessage) reg = NULL;
  g_autoptr (ZltMessage) ok = NULL;
  g_autoptr (ZltMessage) connect = NULL;
  ZltTestRaw public_client = { 0 };
  GThread *thread;
  char tid[ZLT_UUID_STRING_LEN + 1], cid[ZLT_UUID_STRING_LEN + 1], oid[ZLT_UUID_STRING_LEN + 1];
  g_autofree char *good_mac = NULL;
  g_autofree char *bad_mac = NULL;
  g_autofree char *other_mac = NULL;
  g_autofree char *request = NULL;

  start (f);
  ws = v2_session (f, f->h.token, &tunnel_id, key);
  reg = zlt_message_new_register ("svc", ZLT_PROTOCOL_TCP, 9, 0);
  zlt_test_ws_send_message (ws, reg);
  ok = zlt_test_ws_expect (ws, ZLT_MESSAGE_REGISTER_OK, NULL, 10000);
  g_assert_true (zlt_message_has_ext_fields (ok, ZLT_EXT_ASSIGNED_PORT));

  /* a public client waits for its data connection */
  public_client.port = ok->ext.assigned_port;
  thread = zlt_test_raw_start (&public_client);
  connect = zlt_test_ws_expect (ws, ZLT_MESSAGE_CONNECT, NULL, 10000);
  g_assert_cmpuint (zlt_server_get_n_pending (f->h.server), ==, 1);
  zlt_uuid_format (&tunnel_id, tid);
  zlt_uuid_format (&connect->connection_id, cid);
  zlt_data_mac (key, &tunnel_id, &connect->connection_id, mac);
  good_mac = zlt_hex_encode (mac, sizeof mac);

  /* a MAC that is not this session's */
  zlt_random_bytes (raw_mac, sizeof raw_mac);
  bad_mac = zlt_hex_encode (raw_mac, sizeof raw_mac);
  g_assert_cmpuint (data_status (f, tid, cid, bad_mac), ==, 403);
  /* the right MAC presented for another tunnel */
  zlt_uuid_generate (&other_id);
  zlt_uuid_format (&other_id, oid);
  g_assert_cmpuint (data_status (f, oid, cid, good_mac), ==, 403);
  /* a connection id nobody announced, with a MAC that would be right for it: the same
   * answer as a wrong MAC, so a prober learns nothing about which ids are live */
  zlt_uuid_generate (&other_id);
  zlt_uuid_format (&other_id, oid);
  zlt_data_mac (key, &tunnel_id, &other_id, raw_mac);
  other_mac = zlt_hex_encode (raw_mac, sizeof raw_mac);
  g_assert_cmpuint (data_status (f, tid, oid, other_mac), ==, 403);
  /* malformed: headers missing, not a uuid, not hex, wrong length, wrong upgrade */
  g_assert_cmpuint (data_status (f, tid, cid, NULL), ==, 400);
  g_assert_cmpuint (data_status (f, NULL, cid, good_mac), ==, 400);
  g_assert_cmpuint (data_status (f, tid, NULL, good_mac), ==, 400);
  g_assert_cmpuint (data_status (f, "not-a-uuid", cid, good_mac), ==, 400);
  g_assert_cmpuint (data_status (f, tid, "0000", good_mac), ==, 400);
  g_assert_cmpuint (data_status (f, tid, cid, "zz"), ==, 400);
  g_assert_cmpuint (data_status (f, tid, cid, "abcd"), ==, 400);
  request = g_strdup_printf ("GET /tunnel/v1/data HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                             "Connection: Upgrade\r\nUpgrade: h2c\r\nX-Zlt-Tunnel: %s\r\n"
                             "X-Zlt-Connection: %s\r\nX-Zlt-Mac: %s\r\n\r\n",
                             tid, cid, good_mac);
  g_assert_cmpuint (zlt_test_http_status (zlt_server_get_port (f->h.server), request, 10000), ==,
                    400);
  /* none of that touched the waiting connection */
  g_assert_cmpuint (zlt_server_get_n_pending (f->h.server), ==, 1);
  g_assert_cmpuint (zlt_server_get_n_relays (f->h.server), ==, 0);

  /* the right one is let through (proving the 403s were about the MAC) and then ends */
  g_assert_cmpuint (data_status (f, tid, cid, good_mac), ==, 101);
  zlt_test_raw_finish (thread, &public_client, 10000);
  g_assert_null (public_client.error);
  g_assert_true (public_client.closed);
  zlt_test_raw_clear (&public_client);
  /* and a second upgrade for the same connection finds nothing */
  g_assert_cmpuint (data_status (f, tid, cid, good_mac), ==, 403);

  g_clear_pointer (&ws, zlt_test_ws_free);
  assert_good (f);
}

/* ---- tokens and scopes ---- */

static void
test_wrong_token_v1 (Fixture *f, gconstpointer data)
{
  g_autoptr (ZltTestWs) ws = NULL;
  g_autoptr (ZltMessage) auth = NULL;
  g_autoptr (ZltMessage) fail = NULL;
  ZltUuid client_id;

  start (f);
  ws = ws_connect (f);
  zlt_uuid_generate (&client_id);
  auth = zlt_message_new_auth ("tun_wrong", &client_id);
  zlt_test_ws_send_message (ws, auth);
  fail = expect_refusal (ws, ZLT_MESSAGE_AUTH_FAIL);
  g_assert_nonnull (strstr (fail->reason, "unknown token"));
  g_assert_false (fail->has_ext);
  assert_good (f);
}

static void
test_wrong_token_v2 (Fixture *f, gconstpointer data)
{
  g_autoptr (ZltAgent) agent = NULL;

  start (f);
  agent = zlt_test_harness_new_agent (&f->h, "zlt_not_in_the_file", NULL);
  zlt_agent_start (agent);
  ZLT_TEST_WAIT_FOR (
      zlt_agent_get_last_error (agent) != NULL && zlt_agent_get_retry_delay_ms (agent) != 0, 10000);
  g_assert_nonnull (strstr (zlt_agent_get_last_error (agent), "authentication"));
  g_assert_nonnull (strstr (zlt_agent_get_last_error (agent), "unknown token"));
  /* BAD_TOKEN: the agent waits its longest (backoff-max 0.5 s, jitter down to half) */
  g_assert_cmpuint (zlt_agent_get_retry_delay_ms (agent), >=, 250);
  g_assert_cmpuint (zlt_agent_get_n_sessions (agent), ==, 0);
  g_assert_cmpint (zlt_agent_get_state (agent), !=, ZLT_TUNNEL_STATE_CONNECTED);
  zlt_agent_stop (agent);
  g_clear_object (&agent);
  assert_good (f);
}

/* Peers decide how often they fail to log in, not how much the server logs: a burst
 * of bad logins is answered one by one, and logged a bounded number of times. */
static void
test_auth_failure_log (Fixture *f, gconstpointer data)
{
  guint first = log_lines->len, n_logged = 0;
  gboolean said_how_many = FALSE;

  start (f);
  for (guint i = 0; i < 40; i++)
    {
      g_autoptr (ZltTestWs) ws = ws_connect (f);
      g_autoptr (ZltMessage) fail
          = zlt_test_ws_v2_auth (ws, "zlt_not_in_the_file", ZLT_CAP_DATA_RAW, -1, NULL);

      g_assert_cmpint (fail->type, ==, ZLT_MESSAGE_AUTH_FAIL);
      g_assert_cmpuint (fail->ext.code, ==, ZLT_REASON_BAD_TOKEN);
    }
  for (guint i = first; i < log_lines->len; i++)
    {
      const char *line = g_ptr_array_index (log_lines, i);

      if (strstr (line, "authentication failed") != NULL)
        n_logged++;
      if (strstr (line, "failed logins not logged") != NULL)
        said_how_many = TRUE;
    }
  g_test_message ("40 failed logins, %u logged", n_logged);
  g_assert_cmpuint (n_logged, >=, 1);
  g_assert_cmpuint (n_logged, <=, 10);
  /* the next line that is written (a minute later) tells what was left out; within
   * this test's minute none is */
  g_assert_false (said_how_many);
  assert_good (f);
}

/* What goes wrong for a user's connection is said without -v, on both sides: the agent
 * whose local service refuses, the server that could not carry a public connection, a
 * held tunnel when it starts waiting for a resume and when its ports close for good. */
static void
test_failures_are_logged (Fixture *f, gconstpointer data)
{
  guint first = shown_lines->len;
  g_autoptr (ZltTestWs) ws = NULL;
  g_autoptr (ZltMessage) auth_ok = NULL;
  g_autoptr (ZltMessage) reg = NULL;
  g_autoptr (ZltMessage) ok = NULL;
  guint16 down_port, held_port;
  g_autofree char *held = NULL;

  zlt_test_harness_start_server (&f->h);
  zlt_test_harness_add_service (&f->h, "echo", zlt_test_echo_get_port (f->h.echo), 0);
  zlt_test_harness_add_service (&f->h, "down", zlt_test_closed_port (), 0);
  zlt_test_harness_start_agent (&f->h);
  f->echo_port = zlt_test_harness_wait_registered (&f->h, "echo");
  down_port = zlt_test_harness_wait_registered (&f->h, "down");

  /* nothing listens behind "down": the public client is closed, and both ends say why */
  g_assert_true (zlt_test_expect_closed (down_port, 10000));
  ZLT_TEST_WAIT_FOR (shown_since (first, "local service down refused", NULL)
                         && shown_since (first, "connection to down failed", "could not reach"),
                     10000);

  /* a v2 agent that vanishes without a goodbye: held for the 1 s grace, then released */
  ws = ws_connect (f);
  auth_ok = zlt_test_ws_v2_auth (ws, f->h.token, ZLT_CAP_DATA_RAW | ZLT_CAP_RESUME, -1, NULL);
  g_assert_cmpint (auth_ok->type, ==, ZLT_MESSAGE_AUTH_OK);
  reg = zlt_message_new_register ("held", ZLT_PROTOCOL_TCP, 9, 0);
  zlt_test_ws_send_message (ws, reg);
  ok = zlt_test_ws_expect (ws, ZLT_MESSAGE_REGISTER_OK, NULL, 10000);
  held_port = ok->ext.assigned_port;
  g_clear_pointer (&ws, zlt_test_ws_free);
  ZLT_TEST_WAIT_FOR (shown_since (first, "holding its services and ports", NULL), 10000);
  held = g_strdup_printf ("releasing held (port %u)", held_port);
  ZLT_TEST_WAIT_FOR (shown_since (first, "not resumed in time", held), 10000);
  g_assert_true (zlt_test_connect_refused (held_port));
  assert_good (f);
}

/* The key id a v2 Auth carries is 16 lowercase hex digits; anything else is refused
 * like an unknown token, before any validator sees it. */
static void
test_malformed_key_id (Fixture *f, gconstpointer data)
{
  const char *const ids[] = { "",
                              "0123456789ABCDEF",
                              "0123456789abcde",
                              "0123456789abcdef0",
                              "../../etc/passwd",
                              "line\nbreak00000",
                              NULL };

  start (f);
  for (guint i = 0; ids[i] != NULL; i++)
    {
      g_autoptr (ZltTestWs) ws = ws_connect (f);
      GBytes *nonce = zlt_test_ws_get_nonce (ws);
      guint8 proof[ZLT_HASH_SIZE] = { 0 };
      ZltUuid client_id;
      g_autoptr (ZltMessage) auth = NULL;
      g_autoptr (ZltMessage) fail = NULL;

      g_assert_nonnull (nonce);
      zlt_uuid_generate (&client_id);
      auth = zlt_message_new_auth (ids[i], &client_id);
      zlt_message_set_version (auth, ZLT_PROTOCOL_VERSION);
      zlt_message_set_proof (auth, proof);
      zlt_test_ws_send_message (ws, auth);
      fail = expect_refusal (ws, ZLT_MESSAGE_AUTH_FAIL);
      g_assert_cmpstr (fail->reason, ==, "unknown token");
      g_assert_cmpuint (fail->ext.code, ==, ZLT_REASON_BAD_TOKEN);
    }
  assert_good (f);
}

/* v2 peers get heartbeat times to the µs (TIMESTAMP_US), echoed as they were sent; a
 * v1 peer's Heartbeat stays the exact v1 frame (test-protocol-v1). */
static void
test_heartbeat_us (Fixture *f, gconstpointer data)
{
  ZltUuid tunnel_id;
  guint8 key[ZLT_HASH_SIZE];
  g_autoptr (ZltTestWs) ws = NULL;
  g_autoptr (ZltMessage) hb = zlt_message_new_heartbeat (1705320000000);
  g_autoptr (ZltMessage) ack = NULL;
  g_autoptr (ZltMessage) theirs = NULL;

  start (f);
  ws = v2_session (f, f->h.token, &tunnel_id, key);
  zlt_test_ws_set_auto_ack (ws, FALSE);
  zlt_message_set_timestamp_us (hb, G_GUINT64_CONSTANT (1705320000000123));
  zlt_test_ws_send_message (ws, hb);
  ack = zlt_test_ws_expect (ws, ZLT_MESSAGE_HEARTBEAT_ACK, NULL, 10000);
  g_assert_cmpuint (ack->timestamp, ==, G_GUINT64_CONSTANT (1705320000000));
  g_assert_true (zlt_message_has_ext_fields (ack, ZLT_EXT_TIMESTAMP_US));
  g_assert_cmpuint (ack->ext.timestamp_us, ==, G_GUINT64_CONSTANT (1705320000000123));
  /* and the server's own, within the harness's 1 s interval */
  theirs = zlt_test_ws_expect (ws, ZLT_MESSAGE_HEARTBEAT, NULL, 10000);
  g_assert_true (zlt_message_has_ext_fields (theirs, ZLT_EXT_TIMESTAMP_US));
  g_assert_cmpuint (theirs->ext.timestamp_us / 1000, ==, theirs->timestamp);
  g_clear_pointer (&ws, zlt_test_ws_free);
  assert_good (f);
}

static void
test_expired_token (Fixture *f, gconstpointer data)
{
  g_autofree char *token
      = zlt_test_harness_add_token (&f->h, "name=old expires=2000-01-01T00:00:00Z");
  g_autoptr (ZltAgent) agent = NULL;

  start (f);
  /* a v2 agent */
  agent = zlt_test_harness_new_agent (&f->h, token, NULL);
  zlt_agent_start (agent);
  ZLT_TEST_WAIT_FOR (
      zlt_agent_get_last_error (agent) != NULL && zlt_agent_get_retry_delay_ms (agent) != 0, 10000);
  g_assert_nonnull (strstr (zlt_agent_get_last_error (agent), "authentication"));
  g_assert_nonnull (strstr (zlt_agent_get_last_error (agent), "expired"));
  g_assert_cmpuint (zlt_agent_get_retry_delay_ms (agent), >=, 250);
  zlt_agent_stop (agent);
  g_clear_object (&agent);

  /* and a v1 peer with the same token */
  {
    g_autoptr (ZltTestWs) ws = ws_connect (f);
    g_autoptr (ZltMessage) auth = NULL;
    g_autoptr (ZltMessage) fail = NULL;
    ZltUuid client_id;

    zlt_uuid_generate (&client_id);
    auth = zlt_message_new_auth (token, &client_id);
    zlt_test_ws_send_message (ws, auth);
    fail = expect_refusal (ws, ZLT_MESSAGE_AUTH_FAIL);
    g_assert_nonnull (strstr (fail->reason, "expired"));
    g_assert_false (fail->has_ext);
  }
  assert_good (f);
}

typedef struct
{
  guint n;
  GError *error;
} RegisterFailed;

static void
on_register_failed (ZltAgent *agent, ZltService *service, const GError *error, gpointer user_data)
{
  RegisterFailed *rf = user_data;

  rf->n++;
  g_clear_error (&rf->error);
  rf->error = g_error_copy (error);
}

static void
test_out_of_scope (Fixture *f, gconstpointer data)
{
  g_autofree char *token = zlt_test_harness_add_token (&f->h, "name=scoped services=other");
  g_autoptr (ZltAgent) agent = NULL;
  RegisterFailed rf = { 0 };

  start (f);
  /* the same services as the good agent: echo, which this token may not register */
  agent = zlt_test_harness_new_agent (&f->h, token, NULL);
  g_signal_connect (agent, "register-failed", G_CALLBACK (on_register_failed), &rf);
  zlt_agent_start (agent);
  ZLT_TEST_WAIT_FOR (rf.n == 1, 10000);
  g_assert_error (rf.error, ZLT_ERROR, ZLT_ERROR_NOT_ALLOWED);
  /* the service says so, with the server's reason */
  {
    ZltService *echo = zlt_tunnel_lookup_service (zlt_agent_get_tunnel (agent), "echo");

    g_assert_cmpint (zlt_service_get_state (echo), ==, ZLT_SERVICE_STATE_REFUSED);
    g_assert_cmpstr (zlt_service_get_last_error (echo), ==, rf.error->message);
    echo = zlt_tunnel_lookup_service (zlt_agent_get_tunnel (f->h.agent), "echo");
    g_assert_cmpint (zlt_service_get_state (echo), ==, ZLT_SERVICE_STATE_REGISTERED);
    g_assert_null (zlt_service_get_last_error (echo));
  }
  /* a refused service does not end the session */
  g_assert_cmpint (zlt_agent_get_state (agent), ==, ZLT_TUNNEL_STATE_CONNECTED);
  g_assert_cmpuint (zlt_server_get_n_peers (f->h.server), ==, 2);
  g_assert_cmpuint (zlt_registry_get_n_tunnels (zlt_server_get_registry (f->h.server)), ==, 2);
  g_signal_handlers_disconnect_by_data (agent, &rf);
  zlt_agent_stop (agent);
  g_clear_object (&agent);
  g_clear_error (&rf.error);

  /* a v1 peer with that token, too: RegisterFail, session goes on */
  {
    g_autoptr (ZltTestWs) ws = v1_session (f, token);
    g_autoptr (ZltMessage) reg = zlt_message_new_register ("echo", ZLT_PROTOCOL_TCP, 7, 0);
    g_autoptr (ZltMessage) allowed = zlt_message_new_register ("other", ZLT_PROTOCOL_TCP, 7, 0);
    g_autoptr (ZltMessage) fail = NULL;
    g_autoptr (ZltMessage) ok = NULL;

    zlt_test_ws_send_message (ws, reg);
    fail = zlt_test_ws_expect (ws, ZLT_MESSAGE_REGISTER_FAIL, NULL, 10000);
    g_assert_nonnull (strstr (fail->reason, "not allowed"));
    zlt_test_ws_send_message (ws, allowed);
    ok = zlt_test_ws_expect (ws, ZLT_MESSAGE_REGISTER_OK, NULL, 10000);
  }
  assert_good (f);
}

static void
test_duplicate_name (Fixture *f, gconstpointer data)
{
  g_autoptr (ZltTestWs) ws = NULL;
  g_autoptr (ZltMessage) reg = zlt_message_new_register ("dup", ZLT_PROTOCOL_TCP, 7, 0);
  g_autoptr (ZltMessage) ok = NULL;
  g_autoptr (ZltMessage) fail = NULL;
  ZltService *service;

  start (f);
  ws = v1_session (f, f->h.token);
  zlt_test_ws_send_message (ws, reg);
  ok = zlt_test_ws_expect (ws, ZLT_MESSAGE_REGISTER_OK, NULL, 10000);
  zlt_test_ws_send_message (ws, reg);
  fail = zlt_test_ws_expect (ws, ZLT_MESSAGE_REGISTER_FAIL, NULL, 10000);
  g_assert_false (fail->has_ext);
  /* the first registration is untouched */
  service = zlt_registry_lookup_service (zlt_server_get_registry (f->h.server), &ok->service_id);
  g_assert_nonnull (service);
  g_assert_false (zlt_test_connect_refused (zlt_service_get_assigned_port (service)));
  g_clear_pointer (&ws, zlt_test_ws_free);
  /* the good agent's "echo" in another tunnel was never in the way, nor in danger */
  assert_good (f);
}

static void
test_ports_exhausted (Fixture *f, gconstpointer data)
{
  g_autofree char *token = zlt_test_harness_add_token (&f->h, "name=extra");
  const char *const extra[] = { "extra:9", NULL };
  g_autoptr (ZltAgent) agent = NULL;
  RegisterFailed rf = { 0 };

  g_key_file_set_string (f->h.server_keyfile, "server", "port-range", SMALL_RANGE);
  start (f); /* echo has one of the two ports */

  {
    g_autoptr (ZltTestWs) ws = v1_session (f, f->h.token);
    g_autoptr (ZltMessage) a = zlt_message_new_register ("a", ZLT_PROTOCOL_TCP, 7, 0);
    g_autoptr (ZltMessage) b = zlt_message_new_register ("b", ZLT_PROTOCOL_TCP, 7, 0);
    g_autoptr (ZltMessage) ok = NULL;
    g_autoptr (ZltMessage) fail = NULL;

    zlt_test_ws_send_message (ws, a);
    ok = zlt_test_ws_expect (ws, ZLT_MESSAGE_REGISTER_OK, NULL, 10000);
    /* the third service of the server */
    zlt_test_ws_send_message (ws, b);
    fail = zlt_test_ws_expect (ws, ZLT_MESSAGE_REGISTER_FAIL, NULL, 10000);
    g_assert_nonnull (strstr (fail->reason, "exhausted"));
    g_assert_false (fail->has_ext);

    /* a v2 agent is told the same with a code */
    agent = zlt_test_harness_new_agent (&f->h, token, extra);
    g_signal_connect (agent, "register-failed", G_CALLBACK (on_register_failed), &rf);
    zlt_agent_start (agent);
    ZLT_TEST_WAIT_FOR (rf.n == 1, 10000);
    g_assert_error (rf.error, ZLT_ERROR, ZLT_ERROR_PORTS_EXHAUSTED);
    g_assert_cmpint (zlt_agent_get_state (agent), ==, ZLT_TUNNEL_STATE_CONNECTED);
    g_signal_handlers_disconnect_by_data (agent, &rf);
    zlt_agent_stop (agent);
    g_clear_object (&agent);
    g_clear_error (&rf.error);
  }
  /* the v1 peer is gone: its port is free again */
  ZLT_TEST_WAIT_FOR (zlt_port_pool_get_n_free (zlt_registry_get_port_pool (
                         zlt_server_get_registry (f->h.server), ZLT_PROTOCOL_TCP))
                         == 1,
                     5000);
  assert_good (f);
}

/* ---- fields a logged-in peer controls ---- */

/* Names the config would refuse; each must get RegisterFail, never a crash, and must
 * reach no log line raw. */
static const char *const bad_names[] = {
  "",
  "two\nlines",
  "zlt-Message: forged\ntunnel 00000000 opened",
  "ansi\x1b[31mred",
  "tab\there",
  "../../etc",
  "%s%n%s%n",
  "space name",
  "dot.name",
  "caf\xc3\xa9",
  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", /* 65 */
};

static void
register_expect_invalid (ZltTestWs *ws, ZltMessage *reg, gboolean v2)
{
  g_autoptr (ZltMessage) fail = NULL;

  zlt_test_ws_send_message (ws, reg);
  fail = zlt_test_ws_expect (ws, ZLT_MESSAGE_REGISTER_FAIL, NULL, 10000);
  g_assert_nonnull (strstr (fail->reason, "invalid"));
  g_assert_null (strchr (fail->reason, '\n'));
  if (v2)
    {
      g_assert_true (zlt_message_has_ext_fields (fail, ZLT_EXT_CODE));
      g_assert_cmpuint (fail->ext.code, ==, ZLT_REASON_INVALID);
    }
  else
    g_assert_false (fail->has_ext);
  g_assert_false (zlt_test_ws_is_closed (ws));
}

static void
test_bad_names (Fixture *f, gconstpointer data)
{
  /* the frame from the report: Register "", TCP, local 8080, any port */
  g_autoptr (GBytes) empty_name = zlt_test_bytes_from_hex ("10 00 00 00 06 00 00 1f 90 00 00");
  ZltUuid tunnel_id;
  guint8 key[ZLT_HASH_SIZE];

  start (f);
  for (guint v2 = 0; v2 <= 1; v2++)
    {
      g_autoptr (ZltTestWs) ws
          = v2 ? v2_session (f, f->h.token, &tunnel_id, key) : v1_session (f, f->h.token);
      g_autoptr (ZltMessage) good
          = zlt_message_new_register ("good-name_1", ZLT_PROTOCOL_TCP, 7, 0);
      g_autoptr (ZltMessage) port0 = zlt_message_new_register ("port0", ZLT_PROTOCOL_TCP, 0, 0);
      g_autoptr (ZltMessage) fail = NULL;
      g_autoptr (ZltMessage) ok = NULL;

      zlt_test_ws_send_bytes (ws, empty_name);
      fail = zlt_test_ws_expect (ws, ZLT_MESSAGE_REGISTER_FAIL, NULL, 10000);
      g_assert_nonnull (strstr (fail->reason, "invalid"));
      for (guint i = 0; i < G_N_ELEMENTS (bad_names); i++)
        {
          g_autoptr (ZltMessage) reg
              = zlt_message_new_register (bad_names[i], ZLT_PROTOCOL_TCP, 7, 0);
          register_expect_invalid (ws, reg, v2);
        }
      register_expect_invalid (ws, port0, v2);
      /* the session is unharmed and a proper name still registers */
      zlt_test_ws_send_message (ws, good);
      ok = zlt_test_ws_expect (ws, ZLT_MESSAGE_REGISTER_OK, NULL, 10000);
      g_assert_nonnull (
          zlt_registry_lookup_service (zlt_server_get_registry (f->h.server), &ok->service_id));
    }
  for (guint i = 0; i < log_lines->len; i++)
    {
      const char *line = g_ptr_array_index (log_lines, i);
      g_assert_null (strchr (line, '\n'));
      g_assert_null (strchr (line, '\x1b'));
    }
  assert_good (f);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  log_lines = g_ptr_array_new_with_free_func (g_free);
  shown_lines = g_ptr_array_new_with_free_func (g_free);
  g_log_set_writer_func (capture_writer, NULL, NULL);
  zlt_init ();
#define ADD(path, func)                                                                            \
  g_test_add ("/bad-input/" path, Fixture, NULL, fixture_setup, func, fixture_teardown)
  ADD ("garbage-before-auth", test_garbage_before_auth);
  ADD ("bad-frames", test_bad_frames);
  ADD ("server-only-types", test_server_only_types);
  ADD ("oversized-message", test_oversized_message);
  ADD ("text-message", test_text_message);
  ADD ("no-auth", test_no_auth);
  ADD ("silent-tcp", test_silent_tcp);
  ADD ("wrong-path", test_wrong_path);
  ADD ("data-upgrade", test_data_upgrade);
  ADD ("wrong-token-v1", test_wrong_token_v1);
  ADD ("wrong-token-v2", test_wrong_token_v2);
  ADD ("expired-token", test_expired_token);
  ADD ("out-of-scope", test_out_of_scope);
  ADD ("duplicate-name", test_duplicate_name);
  ADD ("ports-exhausted", test_ports_exhausted);
  ADD ("bad-names", test_bad_names);
  ADD ("auth-failure-log", test_auth_failure_log);
  ADD ("failures-are-logged", test_failures_are_logged);
  ADD ("malformed-key-id", test_malformed_key_id);
  ADD ("heartbeat-us", test_heartbeat_us);
#undef ADD
  return g_test_run ();
}
