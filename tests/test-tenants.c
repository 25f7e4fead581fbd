/* test-tenants.c: several tokens on one server, each kept to what it was granted: who
 * may register and who may reach a service, who owns a name, each token's share of the
 * server's pools, and grants that change or run out while their tunnels live. Every
 * case runs against a real server on loopback with raw clients that send what the
 * test says, and real agents where the agent's own behaviour matters. */
#include "config.h"

#include <string.h>

#include "zlt-test-util.h"

#define PORT_RANGE "31600-31699"

typedef struct
{
  ZltTestHarness h;
} Fixture;

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  zlt_test_harness_init (&f->h, PORT_RANGE);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  zlt_test_harness_clear (&f->h);
}

static void
set_server (Fixture *f, const char *key, guint value)
{
  g_key_file_set_integer (f->h.server_keyfile, "server", key, (gint) value);
}

static ZltRegistry *
registry_of (Fixture *f)
{
  return zlt_server_get_registry (f->h.server);
}

/* A raw v2 client of @token; @caps as it claims them. Returns the AuthOk. */
static ZltTestWs *
login (Fixture *f, const char *token, guint32 caps, gint64 access_ttl, ZltMessage **ok_out)
{
  ZltTestWs *ws = zlt_test_ws_connect (zlt_server_get_port (f->h.server), "/tunnel/v1");
  ZltMessage *ok = zlt_test_ws_v2_auth (ws, token, caps, access_ttl, NULL);

  g_assert_cmpint (ok->type, ==, ZLT_MESSAGE_AUTH_OK);
  if (ok_out != NULL)
    *ok_out = ok;
  else
    zlt_message_free (ok);
  return ws;
}

/* Sends Register and returns the reply, RegisterOk or RegisterFail. */
static ZltMessage *
register_service (ZltTestWs *ws, const char *name, guint16 remote_port, ZltExpose expose)
{
  g_autoptr (ZltMessage) reg = zlt_message_new_register (name, ZLT_PROTOCOL_TCP, 7, remote_port);
  g_autoptr (GBytes) reply = NULL;
  ZltMessage *msg;

  zlt_message_set_expose (reg, expose);
  zlt_test_ws_send_message (ws, reg);
  reply = zlt_test_ws_next (ws, 10000);
  g_assert_nonnull (reply);
  msg = zlt_message_decode (g_bytes_get_data (reply, NULL), g_bytes_get_size (reply), NULL, NULL);
  g_assert_nonnull (msg);
  g_assert_true (msg->type == ZLT_MESSAGE_REGISTER_OK || msg->type == ZLT_MESSAGE_REGISTER_FAIL);
  return msg;
}

static guint16
register_ok (Fixture *f, ZltTestWs *ws, const char *name, guint16 remote_port)
{
  g_autoptr (ZltMessage) reply = register_service (ws, name, remote_port, ZLT_EXPOSE_PUBLIC);

  if (reply->type != ZLT_MESSAGE_REGISTER_OK)
    g_error ("register %s refused: %s", name, reply->reason);
  g_assert_true (zlt_message_has_ext_fields (reply, ZLT_EXT_ASSIGNED_PORT));
  return reply->ext.assigned_port;
}

static void
register_refused (ZltTestWs *ws, const char *name, guint16 remote_port, ZltReasonCode code,
                  const char *why)
{
  g_autoptr (ZltMessage) reply = register_service (ws, name, remote_port, ZLT_EXPOSE_PUBLIC);

  g_assert_cmpint (reply->type, ==, ZLT_MESSAGE_REGISTER_FAIL);
  g_assert_cmpuint (reply->ext.code, ==, code);
  if (why != NULL && strstr (reply->reason, why) == NULL)
    g_error ("refusal of %s says “%s”, not “%s”", name, reply->reason, why);
}

static void
write_private (const char *path, const char *contents)
{
  g_autoptr (GError) error = NULL;

  g_file_set_contents_full (path, contents, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600, &error);
  g_assert_no_error (error);
}

/* Re-reads the token file now (the file monitor would too, a little later). */
static void
reload_tokens (Fixture *f)
{
  gboolean ok = FALSE;

  g_signal_emit_by_name (zlt_server_get_validator (f->h.server), "reload", &ok);
  g_assert_true (ok);
}

/* A connection through a public port that echoed "ping" and now waits for the end. */
static GThread *
open_live_connection (guint16 port, ZltTestRaw *raw)
{
  raw->port = port;
  raw->request = "ping";
  return zlt_test_raw_start (raw);
}

/* ---- who may register, who may reach ---- */

/* A name belongs to the token that registered it: another token cannot take it, not
 * while it lives and not for name-hold after; a name owns= reserves is nobody else's
 * even before its owner came; the owner gets its old port back, and the port is kept
 * from others meanwhile. */
static void
test_owner_names (Fixture *f, gconstpointer data)
{
  g_autofree char *alice = zlt_test_harness_add_token (&f->h, "name=alice");
  g_autofree char *bob = zlt_test_harness_add_token (&f->h, "name=bob");
  g_autofree char *carol = zlt_test_harness_add_token (&f->h, "name=carol owns=vault,carol-*");
  ZltTestWs *a;
  g_autoptr (ZltTestWs) b = NULL;
  g_autoptr (ZltTestWs) c = NULL;
  g_autoptr (ZltTestWs) a2 = NULL;
  guint16 port, again;

  zlt_test_harness_start_server (&f->h);
  a = login (f, alice, ZLT_CAP_DATA_RAW, -1, NULL);
  b = login (f, bob, ZLT_CAP_DATA_RAW, -1, NULL);
  port = register_ok (f, a, "db", 0);

  register_refused (b, "db", 0, ZLT_REASON_NOT_ALLOWED, "belongs to another token");
  register_refused (b, "vault", 0, ZLT_REASON_NOT_ALLOWED, "reserved to another token");
  register_refused (b, "carol-web", 0, ZLT_REASON_NOT_ALLOWED, "reserved to another token");
  c = login (f, carol, ZLT_CAP_DATA_RAW, -1, NULL);
  register_ok (f, c, "vault", 0);

  /* alice goes (no resume: nothing is held) and her name stays hers */
  zlt_test_ws_free (a);
  ZLT_TEST_WAIT_FOR (zlt_registry_get_n_tunnels (registry_of (f)) == 2, 5000);
  g_assert_true (zlt_test_connect_refused (port));
  register_refused (b, "db", 0, ZLT_REASON_NOT_ALLOWED, "belongs to another token");
  /* her port is kept for her, asked for or not */
  register_refused (b, "other", port, ZLT_REASON_PORT_IN_USE, "kept for its previous holder");
  g_assert_cmpuint (register_ok (f, b, "other", 0), !=, port);

  /* back, she gets the name and the very same port */
  a2 = login (f, alice, ZLT_CAP_DATA_RAW, -1, NULL);
  again = register_ok (f, a2, "db", 0);
  g_assert_cmpuint (again, ==, port);
}

/* Registering and reaching are separate rights: reach= does not let a token register
 * the service (and so take its access streams), register= does not let it reach one;
 * ACCESS comes from the grant, whatever the client's caps claim. */
static void
test_reach_is_not_register (Fixture *f, gconstpointer data)
{
  g_autofree char *reader = zlt_test_harness_add_token (&f->h, "name=reader reach=db");
  g_autofree char *owner = zlt_test_harness_add_token (&f->h, "name=owner register=db");
  g_autoptr (ZltTestWs) r = NULL;
  g_autoptr (ZltTestWs) o = NULL;
  g_autoptr (ZltMessage) r_ok = NULL;
  g_autoptr (ZltMessage) o_ok = NULL;
  g_autoptr (ZltMessage) reply = NULL;

  zlt_test_harness_start_server (&f->h);
  /* the reader does not even claim ACCESS; the owner claims it */
  r = login (f, reader, ZLT_CAP_DATA_RAW, -1, &r_ok);
  o = login (f, owner, ZLT_CAP_DATA_RAW | ZLT_CAP_ACCESS, -1, &o_ok);
  g_assert_true (r_ok->ext.caps & ZLT_CAP_ACCESS);
  g_assert_false (o_ok->ext.caps & ZLT_CAP_ACCESS);

  register_refused (r, "db", 0, ZLT_REASON_NOT_ALLOWED, "not allowed to register");
  reply = register_service (o, "db", 0, ZLT_EXPOSE_INTERNAL);
  g_assert_cmpint (reply->type, ==, ZLT_MESSAGE_REGISTER_OK);
  register_refused (o, "web", 0, ZLT_REASON_NOT_ALLOWED, "not allowed to register");
}

/* ---- each token's share ---- */

static void
test_quotas (Fixture *f, gconstpointer data)
{
  g_autofree char *greedy = zlt_test_harness_add_token (&f->h, "name=greedy");
  g_autofree char *modest = zlt_test_harness_add_token (&f->h, "name=modest");
  g_autoptr (ZltTestWs) g1 = NULL;
  g_autoptr (ZltTestWs) g2 = NULL;
  g_autoptr (ZltTestWs) m = NULL;
  g_autoptr (ZltTestWs) refused = NULL;
  g_autoptr (ZltMessage) fail = NULL;
  ZltTestRaw waiting[2] = { { 0 }, { 0 } };
  GThread *threads[2];
  guint16 port;

  set_server (f, "token-max-tunnels", 2);
  set_server (f, "token-max-services", 3);
  set_server (f, "token-max-pending", 2);
  set_server (f, "connect-timeout", 30);
  zlt_test_harness_start_server (&f->h);

  /* tunnels: two, and the third is refused with the key to raise */
  g1 = login (f, greedy, ZLT_CAP_DATA_RAW, -1, NULL);
  g2 = login (f, greedy, ZLT_CAP_DATA_RAW, -1, NULL);
  refused = zlt_test_ws_connect (zlt_server_get_port (f->h.server), "/tunnel/v1");
  fail = zlt_test_ws_v2_auth (refused, greedy, ZLT_CAP_DATA_RAW, -1, NULL);
  g_assert_cmpint (fail->type, ==, ZLT_MESSAGE_AUTH_FAIL);
  g_assert_cmpuint (fail->ext.code, ==, ZLT_REASON_LIMIT);
  g_assert_nonnull (strstr (fail->reason, "token-max-tunnels"));
  /* another token's share is untouched */
  m = login (f, modest, ZLT_CAP_DATA_RAW, -1, NULL);

  /* services: three across both tunnels, then no more */
  port = register_ok (f, g1, "s1", 0);
  register_ok (f, g1, "s2", 0);
  register_ok (f, g2, "s3", 0);
  register_refused (g2, "s4", 0, ZLT_REASON_LIMIT, "token-max-services");
  register_ok (f, m, "m1", 0);

  /* waiting connections: the agent never opens data connections; two wait, the third
   * is closed at once */
  for (guint i = 0; i < 2; i++)
    {
      g_autoptr (ZltMessage) connect = NULL;

      waiting[i].port = port;
      threads[i] = zlt_test_raw_start (&waiting[i]);
      connect = zlt_test_ws_expect (g1, ZLT_MESSAGE_CONNECT, NULL, 10000);
    }
  g_assert_cmpuint (zlt_server_get_n_pending (f->h.server), ==, 2);
  g_assert_true (zlt_test_expect_closed (port, 10000));
  g_assert_cmpuint (zlt_server_get_n_pending (f->h.server), ==, 2);
  g_assert_cmpuint (zlt_test_ws_get_n_queued (g1), ==, 0);

  /* what a token lets go of counts no more */
  g_clear_pointer (&g1, zlt_test_ws_free);
  for (guint i = 0; i < 2; i++)
    {
      zlt_test_raw_finish (threads[i], &waiting[i], 10000);
      g_assert_true (waiting[i].closed);
      zlt_test_raw_clear (&waiting[i]);
    }
  ZLT_TEST_WAIT_FOR (zlt_server_get_n_pending (f->h.server) == 0, 5000);
  g_clear_pointer (&refused, zlt_test_ws_free);
  refused = login (f, greedy, ZLT_CAP_DATA_RAW, -1, NULL);
  register_ok (f, refused, "s5", 0);
  register_ok (f, refused, "s6", 0);
}

/* ---- grants that change or end while their tunnels live ---- */

/* A token that expires takes its tunnel, services and live connections with it at
 * once, and the agent is told why. */
static void
test_expiry_ends_tunnel (Fixture *f, gconstpointer data)
{
  gint64 expires = g_get_real_time () / G_USEC_PER_SEC + 3;
  g_autofree char *fields = g_strdup_printf ("name=brief expires=%" G_GINT64_FORMAT, expires);
  g_autofree char *token = zlt_test_harness_add_token (&f->h, fields);
  ZltTestRaw live = { 0 };
  GThread *thread;
  guint16 port;

  zlt_test_harness_start_server (&f->h);
  zlt_test_harness_set_agent_token (&f->h, token);
  zlt_test_harness_add_service (&f->h, "echo", zlt_test_echo_get_port (f->h.echo), 0);
  zlt_test_harness_start_agent (&f->h);
  port = zlt_test_harness_wait_registered (&f->h, "echo");
  thread = open_live_connection (port, &live);
  ZLT_TEST_WAIT_FOR (zlt_server_get_n_relays (f->h.server) == 1, 10000);

  /* the code under test ends it at the expiry; this only waits */
  ZLT_TEST_WAIT_FOR (zlt_registry_get_n_tunnels (registry_of (f)) == 0, 10000);
  g_assert_cmpint (g_get_real_time () / G_USEC_PER_SEC, >=, expires);
  zlt_test_raw_finish (thread, &live, 10000);
  g_assert_true (live.closed);
  g_assert_true (g_str_has_prefix (live.reply->str, "ping"));
  g_assert_cmpuint (zlt_server_get_n_relays (f->h.server), ==, 0);
  g_assert_true (zlt_test_connect_refused (port));
  ZLT_TEST_WAIT_FOR (zlt_agent_get_last_error (f->h.agent) != NULL
                         && strstr (zlt_agent_get_last_error (f->h.agent), "expired") != NULL,
                     10000);
  g_assert_true (zlt_agent_get_fatal (f->h.agent));
  zlt_test_raw_clear (&live);
}

/* A reload that narrows register= removes what the token no longer covers, live
 * connections included; the rest of its tunnel carries on. */
static void
test_narrowed_scope (Fixture *f, gconstpointer data)
{
  g_autofree char *before = NULL;
  g_autofree char *token = NULL;
  g_autofree char *line = NULL;
  g_autofree char *hash = NULL;
  g_autoptr (GError) error = NULL;
  ZltTestRaw live = { 0 };
  ZltTestTransfer t = { 0 };
  GThread *thread;
  guint16 web, ssh;

  g_file_get_contents (f->h.token_file, &before, NULL, &error);
  g_assert_no_error (error);
  token = zlt_test_harness_add_token (&f->h, "name=narrow register=web,ssh");
  zlt_test_harness_start_server (&f->h);
  zlt_test_harness_set_agent_token (&f->h, token);
  zlt_test_harness_add_service (&f->h, "web", zlt_test_echo_get_port (f->h.echo), 0);
  zlt_test_harness_add_service (&f->h, "ssh", zlt_test_echo_get_port (f->h.echo), 0);
  zlt_test_harness_start_agent (&f->h);
  web = zlt_test_harness_wait_registered (&f->h, "web");
  ssh = zlt_test_harness_wait_registered (&f->h, "ssh");
  thread = open_live_connection (web, &live);
  ZLT_TEST_WAIT_FOR (zlt_server_get_n_relays (f->h.server) == 1, 10000);

  hash = zlt_token_hash_hex (token);
  line = g_strdup_printf ("%s%s name=narrow register=ssh\n", before, hash);
  write_private (f->h.token_file, line);
  reload_tokens (f);

  zlt_test_raw_finish (thread, &live, 10000);
  g_assert_true (live.closed);
  ZLT_TEST_WAIT_FOR (zlt_test_connect_refused (web), 5000);
  g_assert_cmpint (zlt_agent_get_state (f->h.agent), ==, ZLT_TUNNEL_STATE_CONNECTED);
  g_assert_cmpuint (zlt_agent_get_n_sessions (f->h.agent), ==, 1);
  t.port = ssh;
  t.n_bytes = 4096;
  t.n_connections = 1;
  thread = zlt_test_transfer_start (&t);
  zlt_test_transfer_finish (thread, &t, 10000);
  g_assert_true (t.ok);
  zlt_test_raw_clear (&live);
}

/* A tunnel held for a resume has no peer to ask; revoking its token still ends it now,
 * not when the hold runs out. */
static void
test_revoked_while_held (Fixture *f, gconstpointer data)
{
  g_autofree char *before = NULL;
  g_autofree char *token = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) tunnels = NULL;
  ZltTestWs *ws;
  guint16 port;
  ZltTunnel *tunnel;

  set_server (f, "resume-grace", 600);
  g_file_get_contents (f->h.token_file, &before, NULL, &error);
  g_assert_no_error (error);
  token = zlt_test_harness_add_token (&f->h, "name=leaving");
  zlt_test_harness_start_server (&f->h);
  ws = login (f, token, ZLT_CAP_DATA_RAW | ZLT_CAP_RESUME, -1, NULL);
  port = register_ok (f, ws, "echo", 0);

  /* the connection drops without a goodbye (as in a crash): the tunnel is held */
  tunnels = zlt_registry_get_tunnels (registry_of (f));
  tunnel = g_ptr_array_index (tunnels, 0);
  zlt_test_ws_free (ws);
  ZLT_TEST_WAIT_FOR (zlt_registry_is_held (registry_of (f), tunnel), 10000);
  g_assert_false (zlt_test_connect_refused (port));

  write_private (f->h.token_file, before);
  reload_tokens (f);
  ZLT_TEST_WAIT_FOR (zlt_registry_get_n_tunnels (registry_of (f)) == 0, 5000);
  g_assert_true (zlt_test_connect_refused (port));
}

/* ---- what a peer may send ---- */

/* Thousands of Heartbeats packed into one message: the first ten seconds' worth are
 * answered, then the peer is told why and dropped. */
static void
test_frame_flood (Fixture *f, gconstpointer data)
{
  g_autoptr (ZltTestWs) ws = NULL;
  g_autoptr (GByteArray) flood = g_byte_array_new ();
  g_autoptr (ZltMessage) hb = zlt_message_new_heartbeat (1);
  guint n_acks = 0;
  ZltMessage *last = NULL;

  set_server (f, "max-frame-rate", 20);
  zlt_test_harness_start_server (&f->h);
  ws = login (f, f->h.token, ZLT_CAP_DATA_RAW, -1, NULL);
  for (guint i = 0; i < 4000; i++)
    g_assert_true (zlt_message_encode (hb, flood, NULL));
  zlt_test_ws_send (ws, flood->data, flood->len);

  while (TRUE)
    {
      g_autoptr (GBytes) reply = zlt_test_ws_next (ws, 10000);
      ZltMessage *msg;

      if (reply == NULL)
        break;
      msg = zlt_message_decode (g_bytes_get_data (reply, NULL), g_bytes_get_size (reply), NULL,
                                NULL);
      g_assert_nonnull (msg);
      if (msg->type == ZLT_MESSAGE_HEARTBEAT_ACK)
        n_acks++;
      g_clear_pointer (&last, zlt_message_free);
      last = msg;
    }
  /* ten seconds' worth at 20 per second, give or take the time the test took */
  g_assert_cmpuint (n_acks, >=, 200);
  g_assert_cmpuint (n_acks, <, 260);
  g_assert_nonnull (last);
  g_assert_cmpint (last->type, ==, ZLT_MESSAGE_DISCONNECT);
  g_assert_cmpuint (last->ext.code, ==, ZLT_REASON_LIMIT);
  g_assert_nonnull (strstr (last->reason, "too many frames"));
  zlt_message_free (last);
  ZLT_TEST_WAIT_FOR (zlt_registry_get_n_tunnels (registry_of (f)) == 0, 5000);
}

/* Before it is signed in a peer gets one frame: Auth alone. */
static void
test_one_frame_before_auth (Fixture *f, gconstpointer data)
{
  g_autoptr (ZltTestWs) ws = NULL;
  g_autoptr (GByteArray) two = g_byte_array_new ();
  g_autoptr (ZltMessage) auth = NULL;
  g_autoptr (ZltMessage) reg = zlt_message_new_register ("web", ZLT_PROTOCOL_TCP, 80, 0);
  g_autoptr (ZltMessage) fail = NULL;
  ZltUuid client_id;

  set_server (f, "max-preauth", 64);
  zlt_test_harness_start_server (&f->h);
  ws = zlt_test_ws_connect (zlt_server_get_port (f->h.server), "/tunnel/v1");
  zlt_uuid_generate (&client_id);
  auth = zlt_message_new_auth ("0123456789abcdef", &client_id);
  g_assert_true (zlt_message_encode (auth, two, NULL));
  g_assert_true (zlt_message_encode (reg, two, NULL));
  zlt_test_ws_send (ws, two->data, two->len);
  fail = zlt_test_ws_expect (ws, ZLT_MESSAGE_AUTH_FAIL, NULL, 10000);
  g_assert_nonnull (strstr (fail->reason, "more than one frame before authentication"));
  zlt_test_ws_wait_closed (ws, 10000);
  g_assert_cmpuint (zlt_server_get_n_peers (f->h.server), ==, 0);
}

/* Connections that upgraded but never sign in count as waiting to authenticate until
 * they do: a few per source, and the next one is closed at once; one that signs in
 * makes room. */
static void
test_preauth_per_source (Fixture *f, gconstpointer data)
{
  ZltTestWs *silent[3];
  g_autoptr (ZltTestWs) extra = NULL;
  g_autoptr (ZltMessage) ok = NULL;
  g_autoptr (GError) error = NULL;

  set_server (f, "max-preauth-per-source", 3);
  zlt_test_harness_start_server (&f->h);
  for (guint i = 0; i < G_N_ELEMENTS (silent); i++)
    silent[i] = zlt_test_ws_connect (zlt_server_get_port (f->h.server), "/tunnel/v1");
  ZLT_TEST_WAIT_FOR (zlt_server_get_n_peers (f->h.server) == 3, 5000);
  extra = zlt_test_ws_try_connect (zlt_server_get_port (f->h.server), "/tunnel/v1", NULL, &error);
  g_assert_null (extra);
  g_assert_nonnull (error);
  g_clear_error (&error);
  g_assert_cmpuint (zlt_server_get_n_peers (f->h.server), ==, 3);

  /* one signs in: a newcomer from the same source is let in again */
  ok = zlt_test_ws_v2_auth (silent[0], f->h.token, ZLT_CAP_DATA_RAW, -1, NULL);
  g_assert_cmpint (ok->type, ==, ZLT_MESSAGE_AUTH_OK);
  extra = zlt_test_ws_connect (zlt_server_get_port (f->h.server), "/tunnel/v1");
  ZLT_TEST_WAIT_FOR (zlt_server_get_n_peers (f->h.server) == 4, 5000);
  g_assert_false (zlt_test_ws_is_closed (extra));
  /* and one that gives up leaves its place too */
  zlt_test_ws_free (silent[1]);
  silent[1] = NULL;
  ZLT_TEST_WAIT_FOR (zlt_server_get_n_peers (f->h.server) == 3, 5000);
  g_clear_pointer (&extra, zlt_test_ws_free);
  for (guint i = 0; i < 2; i++)
    {
      ZltTestWs *more = zlt_test_ws_connect (zlt_server_get_port (f->h.server), "/tunnel/v1");
      zlt_test_ws_free (more);
    }
  for (guint i = 0; i < G_N_ELEMENTS (silent); i++)
    if (silent[i] != NULL)
      zlt_test_ws_free (silent[i]);
}

/* A peer that sends and never reads: what we owe it piles up in our queue until the
 * bound, and then it is dropped; memory stays bounded. */
static void
test_queue_bound (Fixture *f, gconstpointer data)
{
  ZltTestFlooder fl = { 0 };
  GThread *thread;
  guint64 rss_before, rss_peak = 0;

  /* only the queue may stop it here, not the frame rate */
  set_server (f, "max-frame-rate", 1000000);
  set_server (f, "max-peer-queue", 65536);
  zlt_test_harness_start_server (&f->h);
  rss_before = zlt_test_rss_kib ();
  fl.port = zlt_server_get_port (f->h.server);
  fl.token = f->h.token;
  fl.n_heartbeats = 5000;
  fl.max_messages = 4000; /* 260 MB of frames, 300 MB of answers: far past any buffer */
  thread = zlt_test_flooder_start (&fl);
  ZLT_TEST_WAIT_FOR (({
                       rss_peak = MAX (rss_peak, zlt_test_rss_kib ());
                       g_atomic_int_get (&fl.done);
                     }),
                     60000);
  zlt_test_flooder_finish (thread, &fl, 1000);
  g_assert_null (fl.error);
  g_assert_true (fl.logged_in);
  g_assert_true (fl.dropped);
  g_test_message ("dropped after %u messages of 5000 Heartbeats; RSS %" G_GUINT64_FORMAT
                  " KiB before, at most %" G_GUINT64_FORMAT " KiB",
                  fl.n_messages, rss_before, rss_peak);
  g_assert_cmpuint (fl.n_messages, <, fl.max_messages);
  g_assert_cmpuint (rss_peak, <, rss_before + 32 * 1024);
  ZLT_TEST_WAIT_FOR (zlt_server_get_n_peers (f->h.server) == 0
                         && zlt_registry_get_n_tunnels (registry_of (f)) == 0,
                     5000);
}

/* ---- limits on a service's connections ---- */

/* The owner's own limits travel with its Register: at most max-connections at once
 * (the next is refused at once), and a connection silent for idle-timeout seconds is
 * cut with a reset. The server's own settings apply the same way. */
static void
test_service_limits (Fixture *f, gconstpointer data)
{
  gboolean from_server = GPOINTER_TO_INT (data);
  ZltTestRaw live[2] = { { 0 }, { 0 } };
  GThread *threads[2];
  guint16 port;
  gint64 opened;

  if (from_server)
    {
      set_server (f, "max-connections-per-service", 2);
      set_server (f, "idle-timeout", 1);
    }
  zlt_test_harness_start_server (&f->h);
  zlt_test_harness_add_service (&f->h, "echo", zlt_test_echo_get_port (f->h.echo), 0);
  if (!from_server)
    {
      g_key_file_set_integer (f->h.agent_keyfile, "service:echo", "max-connections", 2);
      g_key_file_set_integer (f->h.agent_keyfile, "service:echo", "idle-timeout", 1);
    }
  zlt_test_harness_start_agent (&f->h);
  port = zlt_test_harness_wait_registered (&f->h, "echo");

  opened = g_get_monotonic_time ();
  for (guint i = 0; i < 2; i++)
    threads[i] = open_live_connection (port, &live[i]);
  /* both ends: a standby connection is relayed at the server before the agent dialed */
  ZLT_TEST_WAIT_FOR (zlt_server_get_n_relays (f->h.server) == 2
                         && zlt_agent_get_n_relays (f->h.agent) == 2,
                     10000);
  /* a third is turned away at once, and the service never sees it */
  g_assert_true (zlt_test_expect_closed (port, 5000));
  g_assert_cmpuint (zlt_test_echo_get_n_accepted (f->h.echo), ==, 2);

  /* the two live ones said "ping" and went quiet: both are cut after a second */
  for (guint i = 0; i < 2; i++)
    {
      zlt_test_raw_finish (threads[i], &live[i], 10000);
      g_assert_true (live[i].closed);
      g_assert_true (g_str_has_prefix (live[i].reply->str, "ping"));
      zlt_test_raw_clear (&live[i]);
    }
  g_assert_cmpint (g_get_monotonic_time () - opened, >=, G_USEC_PER_SEC);
  ZLT_TEST_WAIT_FOR (zlt_server_get_n_relays (f->h.server) == 0, 5000);
  /* room again */
  memset (&live[0], 0, sizeof live[0]);
  threads[0] = open_live_connection (port, &live[0]);
  ZLT_TEST_WAIT_FOR (zlt_server_get_n_relays (f->h.server) == 1, 10000);
  zlt_test_raw_finish (threads[0], &live[0], 10000);
  zlt_test_raw_clear (&live[0]);
}

/* ---- access sessions end when they said they would ---- */

/* The server holds an access client to the time to live it asked for. */
static void
test_access_ttl (Fixture *f, gconstpointer data)
{
  g_autofree char *reader = zlt_test_harness_add_token (&f->h, "name=reader reach=*");
  g_autoptr (ZltTestWs) ws = NULL;
  g_autoptr (ZltMessage) ok = NULL;
  g_autoptr (ZltMessage) bye = NULL;
  gint64 start;

  set_server (f, "max-access-ttl", 3600);
  zlt_test_harness_start_server (&f->h);
  start = g_get_monotonic_time ();
  ws = login (f, reader, ZLT_CAP_DATA_RAW | ZLT_CAP_ACCESS, 1, &ok);
  g_assert_true (zlt_message_has_ext_fields (ok, ZLT_EXT_ACCESS_TTL));
  g_assert_cmpuint (ok->ext.access_ttl, <=, 1);
  bye = zlt_test_ws_expect (ws, ZLT_MESSAGE_DISCONNECT, NULL, 10000);
  g_assert_cmpint (g_get_monotonic_time () - start, >=, G_USEC_PER_SEC);
  g_assert_nonnull (strstr (bye->reason, "time to live"));
  zlt_test_ws_wait_closed (ws, 5000);
  /* no resume for it: the tunnel is gone */
  ZLT_TEST_WAIT_FOR (zlt_registry_get_n_tunnels (registry_of (f)) == 0, 5000);

  /* the server's cap applies to what a client asks */
  g_clear_pointer (&ws, zlt_test_ws_free);
  g_clear_pointer (&ok, zlt_message_free);
  zlt_test_harness_stop_server (&f->h);
  set_server (f, "max-access-ttl", 2);
  zlt_test_harness_start_server (&f->h);
  ws = login (f, reader, ZLT_CAP_DATA_RAW | ZLT_CAP_ACCESS, 86400, &ok);
  g_assert_cmpuint (ok->ext.access_ttl, <=, 2);
  g_assert_cmpuint (ok->ext.access_ttl, >=, 1);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  zlt_init ();
#define ADD(path, func)                                                                            \
  g_test_add ("/tenants/" path, Fixture, NULL, fixture_setup, func, fixture_teardown)
  ADD ("owner-names", test_owner_names);
  ADD ("reach-is-not-register", test_reach_is_not_register);
  ADD ("quotas", test_quotas);
  ADD ("expiry-ends-tunnel", test_expiry_ends_tunnel);
  ADD ("narrowed-scope", test_narrowed_scope);
  ADD ("revoked-while-held", test_revoked_while_held);
  ADD ("frame-flood", test_frame_flood);
  ADD ("queue-bound", test_queue_bound);
  ADD ("one-frame-before-auth", test_one_frame_before_auth);
  ADD ("preauth-per-source", test_preauth_per_source);
  ADD ("access-ttl", test_access_ttl);
  g_test_add ("/tenants/service-limits/owner", Fixture, GINT_TO_POINTER (FALSE), fixture_setup,
              test_service_limits, fixture_teardown);
  g_test_add ("/tenants/service-limits/server", Fixture, GINT_TO_POINTER (TRUE), fixture_setup,
              test_service_limits, fixture_teardown);
#undef ADD
  return g_test_run ();
}
