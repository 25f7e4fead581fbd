/* test-access.c: on-demand access sessions (PROTOCOL-v2.md §6) on loopback: a server,
 * an agent with an internal echo service, and an access manager whose local port
 * reaches that service through the server */
#include "config.h"

#include <string.h>

#include "zlt-test-util.h"
#include "zlt-util.h"

typedef struct
{
  ZltTestHarness h;
  char *tokens_before_access; /* the token file without the access token's line */
  ZltAccessManager *manager;
} Fixture;

/* @data: TRUE to run server, agent and clients on ::1 */
static void
fixture_setup (Fixture *f, gconstpointer data)
{
  zlt_test_use_ipv6 (GPOINTER_TO_INT (data));
  zlt_test_harness_init (&f->h, "32400-32499");
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  g_clear_object (&f->manager);
  g_free (f->tokens_before_access);
  zlt_test_harness_clear (&f->h);
  zlt_test_use_ipv6 (FALSE);
}

static void
write_private (const char *path, const char *contents)
{
  g_autoptr (GError) error = NULL;

  g_file_set_contents_full (path, contents, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600, &error);
  g_assert_no_error (error);
}

static void
on_flag (gpointer instance, gpointer user_data)
{
  *(gboolean *) user_data = TRUE;
}

/* for signals with one argument */
static void
on_flag1 (gpointer instance, gpointer arg, gpointer user_data)
{
  *(gboolean *) user_data = TRUE;
}

/* Server, agent with the internal service "echo", and an access manager whose token
 * line carries @access_fields ("%e" stands for an expiry an hour from now). */
static void
start (Fixture *f, const char *access_fields)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *fields = NULL;
  g_autofree char *token = NULL;
  g_autofree char *token_path = g_build_filename (f->h.tmpdir, "access-token", NULL);
  g_autoptr (GKeyFile) keyfile = g_key_file_new ();
  g_autofree char *data = NULL;
  g_autoptr (ZltClientConfig) config = NULL;
  g_autofree char *expires
      = g_strdup_printf ("%" G_GINT64_FORMAT, g_get_real_time () / G_USEC_PER_SEC + 3600);
  g_auto (GStrv) parts = g_strsplit (access_fields, "%e", -1);
  ZltService *service;
  ZltService *server_service;
  ZltRegistry *registry;
  gboolean registered = FALSE;

  g_file_get_contents (f->h.token_file, &f->tokens_before_access, NULL, &error);
  g_assert_no_error (error);
  fields = g_strjoinv (expires, parts);
  token = zlt_test_harness_add_token (&f->h, fields);
  write_private (token_path, token);

  zlt_test_harness_start_server (&f->h);
  zlt_test_harness_add_service (&f->h, "echo", zlt_test_echo_get_port (f->h.echo), 0);
  g_key_file_set_string (f->h.agent_keyfile, "service:echo", "expose", "internal");
  zlt_test_harness_start_agent (&f->h);
  g_signal_connect (f->h.agent, "registered", G_CALLBACK (on_flag1), &registered);
  ZLT_TEST_WAIT_FOR (registered, 10000);
  service = zlt_tunnel_lookup_service (zlt_agent_get_tunnel (f->h.agent), "echo");
  g_assert_nonnull (service);

  /* internal: no public port, no listener anywhere in the range */
  g_assert_cmpuint (zlt_service_get_assigned_port (service), ==, 0);
  registry = zlt_server_get_registry (f->h.server);
  server_service = zlt_registry_lookup_service_by_name (registry, "echo", &error);
  g_assert_no_error (error);
  g_assert_cmpint (zlt_service_get_expose (server_service), ==, ZLT_EXPOSE_INTERNAL);
  g_assert_cmpuint (zlt_service_get_assigned_port (server_service), ==, 0);
  for (guint port = 32400; port <= 32499; port++)
    g_assert_null (zlt_registry_lookup_service_by_port (registry, ZLT_PROTOCOL_TCP, port));

  /* the access client: the agent's settings, its own token; its services are ignored */
  data = g_key_file_to_data (f->h.agent_keyfile, NULL, NULL);
  g_key_file_load_from_data (keyfile, data, (gsize) -1, G_KEY_FILE_NONE, &error);
  g_assert_no_error (error);
  g_key_file_set_string (keyfile, "agent", "token-file", token_path);
  config = zlt_client_config_new_from_keyfile (keyfile, &error);
  g_assert_no_error (error);
  f->manager = zlt_access_manager_new (config, f->h.loader, &error);
  g_assert_no_error (error);
}

static ZltSession *
start_session (Fixture *f, const char *service, guint ttl_seconds)
{
  g_autoptr (GError) error = NULL;
  ZltSession *session;

  session = zlt_access_manager_start_session (f->manager, service, 0, ttl_seconds, &error);
  g_assert_no_error (error);
  g_assert_nonnull (session);
  g_assert_cmpuint (zlt_access_manager_get_local_port (f->manager, session), !=, 0);
  return session;
}

static gboolean
access_connected (Fixture *f)
{
  return zlt_agent_get_state (zlt_access_manager_get_agent (f->manager))
         == ZLT_TUNNEL_STATE_CONNECTED;
}

/* A connection through @session that has echoed "hello\n" and stays open. */
static GThread *
open_idle_connection (Fixture *f, ZltSession *session, ZltTestRaw *raw)
{
  GThread *thread;

  raw->port = zlt_access_manager_get_local_port (f->manager, session);
  raw->request = "hello\n";
  thread = zlt_test_raw_start (raw);
  ZLT_TEST_WAIT_FOR (zlt_session_get_active_connections (session) == 1
                         && zlt_session_get_bytes_in (session) == 6,
                     10000);
  g_assert_cmpuint (zlt_server_get_n_relays (f->h.server), ==, 1);
  return thread;
}

/* (1) the internal service is reachable through the session, and counted */
static void
test_reaches_internal (Fixture *f, gconstpointer data)
{
  g_autoptr (ZltSession) session = NULL;
  g_autoptr (GPtrArray) sessions = NULL;
  g_autofree char *id = NULL;
  ZltTestTransfer t = { 0 };
  GThread *thread;
  ZltService *server_service;

  start (f, "name=access reach=echo expires=%e");
  session = start_session (f, "echo", 3600);
  g_assert_cmpstr (zlt_session_get_remote_service (session), ==, "echo");
  sessions = zlt_access_manager_get_sessions (f->manager);
  g_assert_cmpuint (sessions->len, ==, 1);
  g_assert_true (g_ptr_array_index (sessions, 0) == session);
  id = zlt_session_dup_id_string (session);
  g_assert_true (zlt_access_manager_lookup_session (f->manager, id) == session);

  t.port = zlt_access_manager_get_local_port (f->manager, session);
  t.n_bytes = 1024 * 1024;
  t.n_connections = 1;
  thread = zlt_test_transfer_start (&t);
  zlt_test_transfer_finish (thread, &t, 60000);
  g_assert_null (t.error);
  g_assert_true (t.ok);
  g_assert_cmpuint (t.received, ==, t.n_bytes);

  /* every byte counted once the relays have finished, on both ends */
  ZLT_TEST_WAIT_FOR (zlt_access_manager_get_n_relays (f->manager) == 0
                         && zlt_server_get_n_relays (f->h.server) == 0,
                     10000);
  g_assert_cmpuint (zlt_session_get_bytes_out (session), ==, t.n_bytes);
  g_assert_cmpuint (zlt_session_get_bytes_in (session), ==, t.n_bytes);
  g_assert_cmpuint (zlt_session_get_total_connections (session), ==, 1);
  g_assert_cmpuint (zlt_session_get_active_connections (session), ==, 0);
  g_assert_null (zlt_session_get_last_error (session));
  server_service
      = zlt_registry_lookup_service_by_name (zlt_server_get_registry (f->h.server), "echo", NULL);
  g_assert_cmpuint (zlt_service_get_bytes_in (server_service), ==, t.n_bytes);
  g_assert_cmpuint (zlt_service_get_bytes_out (server_service), ==, t.n_bytes);
  g_assert_cmpuint (zlt_service_get_total_connections (server_service), ==, 1);
  g_assert_cmpuint (zlt_test_echo_get_n_accepted (f->h.echo), ==, 1);
}

/* (2) at its expiry the session closes its listener and its open connection, and
 * leaves the manager by itself */
static void
test_ttl_expiry (Fixture *f, gconstpointer data)
{
  g_autoptr (ZltSession) session = NULL;
  g_autoptr (GPtrArray) sessions = NULL;
  ZltTestRaw raw = { 0 };
  GThread *thread;
  gboolean expired = FALSE, removed = FALSE;
  guint16 port;

  start (f, "name=access reach=echo expires=%e");
  session = start_session (f, "echo", 2);
  port = zlt_access_manager_get_local_port (f->manager, session);
  g_signal_connect (session, "expired", G_CALLBACK (on_flag), &expired);
  g_signal_connect (f->manager, "session-removed", G_CALLBACK (on_flag1), &removed);
  thread = open_idle_connection (f, session, &raw);
  g_assert_false (expired);

  ZLT_TEST_WAIT_FOR (expired, 10000);
  g_assert_true (removed);
  zlt_test_raw_finish (thread, &raw, 10000);
  g_assert_true (raw.closed);
  g_assert_cmpstr (raw.reply->str, ==, "hello\n");
  g_assert_true (zlt_test_connect_refused (port));
  sessions = zlt_access_manager_get_sessions (f->manager);
  g_assert_cmpuint (sessions->len, ==, 0);
  g_assert_cmpuint (zlt_session_get_active_connections (session), ==, 0);
  /* the server's side of the connection went too */
  ZLT_TEST_WAIT_FOR (zlt_server_get_n_relays (f->h.server) == 0, 10000);
  zlt_test_raw_clear (&raw);
}

/* A session the server will not serve ends at once, before anyone relies on its
 * port: the server is asked when it starts (a probe: nothing reaches the service),
 * and the session's last error says why. */
static void
assert_refused_at_start (Fixture *f, const char *service, const char *why)
{
  g_autoptr (ZltSession) session = NULL;
  g_autoptr (GPtrArray) sessions = NULL;
  gboolean removed = FALSE, ready = FALSE;
  guint16 port;

  g_signal_connect (f->manager, "session-removed", G_CALLBACK (on_flag1), &removed);
  g_signal_connect (f->manager, "session-ready", G_CALLBACK (on_flag1), &ready);
  session = start_session (f, service, 3600);
  port = zlt_access_manager_get_local_port (f->manager, session);
  ZLT_TEST_WAIT_FOR (removed, 10000);
  g_assert_false (ready);
  g_assert_nonnull (zlt_session_get_last_error (session));
  if (strstr (zlt_session_get_last_error (session), why) == NULL)
    g_error ("the session ended with “%s”, not “%s”", zlt_session_get_last_error (session), why);
  g_assert_true (zlt_test_connect_refused (port));
  sessions = zlt_access_manager_get_sessions (f->manager);
  g_assert_cmpuint (sessions->len, ==, 0);
  g_assert_cmpuint (zlt_session_get_total_connections (session), ==, 0);
  g_assert_cmpuint (zlt_test_echo_get_n_accepted (f->h.echo), ==, 0);
  g_assert_cmpuint (zlt_server_get_n_pending (f->h.server), ==, 0);
  g_signal_handlers_disconnect_by_data (f->manager, &removed);
  g_signal_handlers_disconnect_by_data (f->manager, &ready);
}

/* (3) a token that does not reach the service */
static void
test_out_of_scope (Fixture *f, gconstpointer data)
{
  start (f, "name=access reach=other expires=%e");
  assert_refused_at_start (f, "echo", "does not reach it");
}

/* a service nobody registered */
static void
test_unknown_service (Fixture *f, gconstpointer data)
{
  start (f, "name=access reach=* expires=%e");
  /* in words: the core speaks no HTTP, so no "(404)" */
  assert_refused_at_start (f, "nosuch",
                           "the server has no service “nosuch”: no agent has registered it");
}

/* (4) an expired grant: the access client never authenticates, the session ends */
static void
test_expired_grant (Fixture *f, gconstpointer data)
{
  g_autofree char *fields = g_strdup_printf ("name=access reach=echo expires=%" G_GINT64_FORMAT,
                                             g_get_real_time () / G_USEC_PER_SEC - 60);

  start (f, fields);
  assert_refused_at_start (f, "echo", "expired");
  g_assert_cmpuint (zlt_agent_get_n_sessions (zlt_access_manager_get_agent (f->manager)), ==, 0);
}

/* (5) stopping a session tears its live connection down */
static void
test_stop_session (Fixture *f, gconstpointer data)
{
  g_autoptr (ZltSession) session = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) sessions = NULL;
  ZltTestRaw raw = { 0 };
  GThread *thread;
  gboolean removed = FALSE;
  guint16 port;

  start (f, "name=access reach=echo expires=%e");
  session = start_session (f, "echo", 3600);
  port = zlt_access_manager_get_local_port (f->manager, session);
  g_signal_connect (f->manager, "session-removed", G_CALLBACK (on_flag1), &removed);
  thread = open_idle_connection (f, session, &raw);

  g_assert_true (zlt_access_manager_stop_session (f->manager, session, &error));
  g_assert_no_error (error);
  g_assert_true (removed);
  zlt_test_raw_finish (thread, &raw, 10000);
  g_assert_true (raw.closed);
  g_assert_true (zlt_test_connect_refused (port));
  sessions = zlt_access_manager_get_sessions (f->manager);
  g_assert_cmpuint (sessions->len, ==, 0);
  ZLT_TEST_WAIT_FOR (zlt_server_get_n_relays (f->h.server) == 0, 10000);
  /* stopped once is stopped */
  g_assert_false (zlt_access_manager_stop_session (f->manager, session, &error));
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_NOT_FOUND);
  zlt_test_raw_clear (&raw);
}

/* (6) revoking the token on the server ends the session it holds: the port closes,
 * live connections are cut, and the session says why (the agent that owns the
 * service, re-checked too, stays) */
static void
test_revocation (Fixture *f, gconstpointer data)
{
  g_autoptr (ZltSession) session = NULL;
  ZltTestRaw raw = { 0 };
  GThread *thread;
  gboolean reloaded = FALSE, removed = FALSE, ready = FALSE;
  guint16 port;

  start (f, "name=access reach=echo expires=%e");
  g_signal_connect (f->manager, "session-ready", G_CALLBACK (on_flag1), &ready);
  session = start_session (f, "echo", 3600);
  port = zlt_access_manager_get_local_port (f->manager, session);
  ZLT_TEST_WAIT_FOR (ready, 10000);
  thread = open_idle_connection (f, session, &raw);
  g_assert_true (access_connected (f));
  g_signal_connect (f->manager, "session-removed", G_CALLBACK (on_flag1), &removed);

  /* the line goes; reload now rather than wait for the file monitor */
  write_private (f->h.token_file, f->tokens_before_access);
  g_signal_emit_by_name (zlt_server_get_validator (f->h.server), "reload", &reloaded);
  g_assert_true (reloaded);

  zlt_test_raw_finish (thread, &raw, 10000);
  g_assert_true (raw.closed);
  ZLT_TEST_WAIT_FOR (removed, 10000);
  g_assert_nonnull (strstr (zlt_session_get_last_error (session), "unknown token"));
  g_assert_false (zlt_session_is_expired (session));
  g_assert_true (zlt_test_connect_refused (port));
  ZLT_TEST_WAIT_FOR (zlt_server_get_n_relays (f->h.server) == 0
                         && zlt_access_manager_get_n_relays (f->manager) == 0,
                     10000);
  g_assert_false (access_connected (f));
  g_assert_cmpint (zlt_agent_get_state (f->h.agent), ==, ZLT_TUNNEL_STATE_CONNECTED);
  zlt_test_raw_clear (&raw);
}

static void
count_access_tunnels (ZltRegistry *registry, ZltTunnel *tunnel, gpointer user_data)
{
  if (g_strcmp0 (zlt_tunnel_get_token_name (tunnel), "access") == 0)
    (*(guint *) user_data)++;
}

/* The server cuts an access session at its max-access-ttl, shorter than the client
 * asked: the session ends with the server's reason, and the client does not come back
 * for more (each new control session would get another max-access-ttl). */
static void
test_server_ttl_ends_session (Fixture *f, gconstpointer data)
{
  g_autoptr (ZltSession) session = NULL;
  gboolean removed = FALSE, ready = FALSE;
  guint n_tunnels = 0;
  ZltAgent *client;

  g_key_file_set_integer (f->h.server_keyfile, "server", "max-access-ttl", 1);
  start (f, "name=access reach=echo expires=%e");
  g_signal_connect (zlt_server_get_registry (f->h.server), "tunnel-added",
                    G_CALLBACK (count_access_tunnels), &n_tunnels);
  g_signal_connect (f->manager, "session-ready", G_CALLBACK (on_flag1), &ready);
  g_signal_connect (f->manager, "session-removed", G_CALLBACK (on_flag1), &removed);
  session = start_session (f, "echo", 3600);
  ZLT_TEST_WAIT_FOR (ready, 10000);
  ZLT_TEST_WAIT_FOR (removed, 10000);
  g_test_message ("session ended: %s", zlt_session_get_last_error (session));
  g_assert_nonnull (strstr (zlt_session_get_last_error (session), "time to live"));
  g_assert_false (zlt_session_is_expired (session));
  client = zlt_access_manager_get_agent (f->manager);
  g_assert_cmpint (zlt_agent_get_state (client), !=, ZLT_TUNNEL_STATE_CONNECTED);
  /* nothing comes back: one access control session in all, and none left */
  ZLT_TEST_WAIT_FOR (zlt_registry_get_n_tunnels (zlt_server_get_registry (f->h.server)) == 1, 5000);
  g_assert_cmpuint (n_tunnels, <=, 1);
  g_assert_cmpuint (zlt_agent_get_retry_delay_ms (client), ==, 0);
}

/* (7) TTLs on the command line */
static void
test_parse_duration (void)
{
  struct
  {
    const char *text;
    guint seconds;
  } good[] = {
    { "90", 90 },    { "90s", 90 },     { "30m", 1800 }, { "2h", 7200 },
    { "1d", 86400 }, { "1h30m", 5400 }, { "0s", 0 },     { "1d2h3m4s", 93784 },
  };
  const char *bad[] = { "",    "m",   "-5s",          "5x",         "1h30",  "1.5h",
                        " 5s", "5s ", "99999999999s", "4294967296", "50000d" };

  for (guint i = 0; i < G_N_ELEMENTS (good); i++)
    {
      g_autoptr (GError) error = NULL;
      guint seconds = 12345;

      g_assert_true (zlt_parse_duration (good[i].text, &seconds, &error));
      g_assert_no_error (error);
      g_assert_cmpuint (seconds, ==, good[i].seconds);
    }
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr (GError) error = NULL;
      guint seconds = 12345;

      g_assert_false (zlt_parse_duration (bad[i], &seconds, &error));
      g_assert_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG);
      g_assert_cmpuint (seconds, ==, 12345);
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  zlt_init ();

#define ADD(path, func) g_test_add (path, Fixture, NULL, fixture_setup, func, fixture_teardown)
  ADD ("/access/reaches-internal", test_reaches_internal);
  g_test_add ("/access/reaches-internal/ipv6", Fixture, GINT_TO_POINTER (TRUE), fixture_setup,
              test_reaches_internal, fixture_teardown);
  ADD ("/access/ttl-expiry", test_ttl_expiry);
  ADD ("/access/out-of-scope", test_out_of_scope);
  ADD ("/access/unknown-service", test_unknown_service);
  ADD ("/access/expired-grant", test_expired_grant);
  ADD ("/access/stop-session", test_stop_session);
  ADD ("/access/revocation", test_revocation);
  ADD ("/access/server-ttl-ends-session", test_server_ttl_ends_session);
#undef ADD
  g_test_add_func ("/access/parse-duration", test_parse_duration);
  return g_test_run ();
}
