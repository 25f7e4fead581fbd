/* test-log-events.c: the events an operator searches the journal for carry their
 * MESSAGE_ID and the TUNNEL_ID, SERVICE and PEER fields, read back from a log writer
 * while a real server, agent and access client run on loopback */
#include "config.h"

#include <string.h>

#include "zlt-test-util.h"
#include "zlt-util.h"

#define WAIT_MS 10000

/* ---- the writer: every structured record with a MESSAGE_ID, then the default ---- */

typedef struct
{
  GLogLevelFlags level;
  GHashTable *fields; /* key → value, both owned */
} Record;

static GMutex records_lock;
static GPtrArray *records; /* Record* */

static void
record_free (Record *r)
{
  g_hash_table_unref (r->fields);
  g_free (r);
}

static GLogWriterOutput
capture_writer (GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer data)
{
  Record *r = NULL;

  for (gsize i = 0; i < n_fields; i++)
    if (g_strcmp0 (fields[i].key, "MESSAGE_ID") == 0)
      {
        r = g_new0 (Record, 1);
        r->level = level & G_LOG_LEVEL_MASK;
        r->fields = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
        break;
      }
  if (r != NULL)
    {
      for (gsize i = 0; i < n_fields; i++)
        if (fields[i].length < 0)
          g_hash_table_insert (r->fields, g_strdup (fields[i].key), g_strdup (fields[i].value));
      g_mutex_lock (&records_lock);
      g_ptr_array_add (records, r);
      g_mutex_unlock (&records_lock);
    }
  /* printed as usual, and fatal-warnings still applies */
  return g_log_writer_default (level, fields, n_fields, data);
}

/* The first record of @event whose MESSAGE contains @text (NULL: any), as a new
 * reference, or NULL. */
static GHashTable *
find_event (ZltLogEvent event, const char *text)
{
  GHashTable *found = NULL;

  g_mutex_lock (&records_lock);
  for (guint i = 0; i < records->len && found == NULL; i++)
    {
      Record *r = g_ptr_array_index (records, i);
      const char *message = g_hash_table_lookup (r->fields, "MESSAGE");

      if (g_strcmp0 (g_hash_table_lookup (r->fields, "MESSAGE_ID"), zlt_log_event_id (event)) != 0)
        continue;
      if (text != NULL && (message == NULL || strstr (message, text) == NULL))
        continue;
      found = g_hash_table_ref (r->fields);
    }
  g_mutex_unlock (&records_lock);
  return found;
}

static GHashTable *
wait_event (ZltLogEvent event, const char *text)
{
  GHashTable *fields = NULL;

  ZLT_TEST_WAIT_FOR ((fields = find_event (event, text)) != NULL, WAIT_MS);
  return fields;
}

static guint
count_events (ZltLogEvent event)
{
  guint n = 0;

  g_mutex_lock (&records_lock);
  for (guint i = 0; i < records->len; i++)
    {
      Record *r = g_ptr_array_index (records, i);

      if (g_strcmp0 (g_hash_table_lookup (r->fields, "MESSAGE_ID"), zlt_log_event_id (event)) == 0)
        n++;
    }
  g_mutex_unlock (&records_lock);
  return n;
}

#define assert_field(fields, key, expected)                                                        \
  g_assert_cmpstr (g_hash_table_lookup ((fields), (key)), ==, (expected))

/* the server's PEER: the agent's address and port on loopback */
static void
assert_loopback_peer (GHashTable *fields)
{
  const char *peer = g_hash_table_lookup (fields, "PEER");

  g_assert_nonnull (peer);
  g_assert_true (g_str_has_prefix (peer, "127.0.0.1:"));
}

/* ---- fixture ---- */

typedef struct
{
  ZltTestHarness h;
  char *url; /* the agent's [agent] server */
  ZltAccessManager *manager;
} Fixture;

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  g_mutex_lock (&records_lock);
  g_ptr_array_set_size (records, 0);
  g_mutex_unlock (&records_lock);
  zlt_test_harness_init (&f->h, "29100-29149");
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  g_clear_object (&f->manager);
  zlt_test_harness_clear (&f->h);
  g_free (f->url);
}

/* Server, then the agent with the service "echo"; @agent_token replaces the harness's
 * own token when set. */
static void
start (Fixture *f, const char *agent_token)
{
  zlt_test_harness_start_server (&f->h);
  zlt_test_harness_add_service (&f->h, "echo", zlt_test_echo_get_port (f->h.echo), 0);
  if (agent_token != NULL)
    zlt_test_harness_set_agent_token (&f->h, agent_token);
  f->url = g_key_file_get_string (f->h.agent_keyfile, "agent", "server", NULL);
  g_assert_nonnull (f->url);
  zlt_test_harness_start_agent (&f->h);
}

static void
on_flag1 (gpointer instance, gpointer arg, gpointer user_data)
{
  *(gboolean *) user_data = TRUE;
}

/* Up, registered and down, on both ends, with the tunnel's id in TUNNEL_ID. */
static void
test_tunnel_up_down (Fixture *f, gconstpointer data)
{
  g_autoptr (GHashTable) server_up = NULL;
  g_autoptr (GHashTable) agent_up = NULL;
  g_autoptr (GHashTable) server_registered = NULL;
  g_autoptr (GHashTable) agent_registered = NULL;
  g_autoptr (GHashTable) server_down = NULL;
  g_autoptr (GHashTable) agent_down = NULL;
  g_autofree char *tunnel_id = NULL;
  g_autofree char *expected = NULL;
  g_autofree char *expected_down = NULL;
  gboolean registered = FALSE;

  start (f, NULL);
  g_signal_connect (f->h.agent, "registered", G_CALLBACK (on_flag1), &registered);
  ZLT_TEST_WAIT_FOR (registered, WAIT_MS);
  tunnel_id = zlt_tunnel_dup_id_string (zlt_agent_get_tunnel (f->h.agent));

  /* the server's "tunnel … opened for PEER (token)" */
  server_up = wait_event (ZLT_LOG_EVENT_TUNNEL_UP, " opened for ");
  assert_field (server_up, "TUNNEL_ID", tunnel_id);
  assert_field (server_up, "GLIB_DOMAIN", "zlt");
  assert_loopback_peer (server_up);
  expected = g_strdup_printf ("tunnel %s opened for %s (test)", tunnel_id,
                              (char *) g_hash_table_lookup (server_up, "PEER"));
  assert_field (server_up, "MESSAGE", expected);
  g_assert_false (g_hash_table_contains (server_up, "SERVICE"));
  /* the agent's "tunnel … established", its PEER the server */
  agent_up = wait_event (ZLT_LOG_EVENT_TUNNEL_UP, " established");
  assert_field (agent_up, "TUNNEL_ID", tunnel_id);
  assert_field (agent_up, "PEER", f->url);

  server_registered = wait_event (ZLT_LOG_EVENT_SERVICE_REGISTERED, "tunnel ");
  assert_field (server_registered, "SERVICE", "echo");
  assert_field (server_registered, "TUNNEL_ID", tunnel_id);
  assert_loopback_peer (server_registered);
  agent_registered = wait_event (ZLT_LOG_EVENT_SERVICE_REGISTERED, "service echo registered");
  assert_field (agent_registered, "SERVICE", "echo");
  assert_field (agent_registered, "TUNNEL_ID", tunnel_id);
  assert_field (agent_registered, "PEER", f->url);
  g_assert_cmpuint (count_events (ZLT_LOG_EVENT_TUNNEL_DOWN), ==, 0);

  /* a deliberate stop: the agent says goodbye, the server closes the tunnel */
  zlt_agent_stop (f->h.agent);
  agent_down = wait_event (ZLT_LOG_EVENT_TUNNEL_DOWN, "the agent was stopped");
  assert_field (agent_down, "TUNNEL_ID", tunnel_id);
  expected_down = g_strdup_printf ("tunnel %s closed: the agent was stopped", tunnel_id);
  assert_field (agent_down, "MESSAGE", expected_down);
  assert_field (agent_down, "PEER", f->url);
  /* a deliberate stop is not a failure */
  g_assert_false (g_hash_table_contains (agent_down, "ZLT_PRIORITY"));
  server_down = wait_event (ZLT_LOG_EVENT_TUNNEL_DOWN, " closed for ");
  assert_field (server_down, "TUNNEL_ID", tunnel_id);
  assert_loopback_peer (server_down);
  g_assert_nonnull (
      strstr (g_hash_table_lookup (server_down, "MESSAGE"), "the agent is leaving: agent stopped"));
  g_assert_cmpint (count_events (ZLT_LOG_EVENT_TUNNEL_DOWN), ==, 2);
}

/* A token the server does not know: both ends log the failure with its reason. */
static void
test_auth_failed (Fixture *f, gconstpointer data)
{
  g_autoptr (GHashTable) server_failed = NULL;
  g_autoptr (GHashTable) agent_failed = NULL;
  const char *message;

  start (f, "zlt_0123456789abcdef0123456789abcdef0123456789abcdef");
  server_failed = wait_event (ZLT_LOG_EVENT_AUTH_FAILED, "authentication failed for ");
  assert_loopback_peer (server_failed);
  g_assert_false (g_hash_table_contains (server_failed, "TUNNEL_ID"));
  message = g_hash_table_lookup (server_failed, "MESSAGE");
  /* the reason follows the peer */
  g_assert_true (g_str_has_suffix (message, ": unknown token"));
  /* nothing of the token reaches the log */
  g_assert_null (strstr (message, "0123456789abcdef0123"));

  /* failures ask the journal for warning priority, on both ends */
  assert_field (server_failed, "ZLT_PRIORITY", "4");
  agent_failed = wait_event (ZLT_LOG_EVENT_AUTH_FAILED, "authentication failed: ");
  assert_field (agent_failed, "PEER", f->url);
  assert_field (agent_failed, "ZLT_PRIORITY", "4");
  g_assert_cmpuint (count_events (ZLT_LOG_EVENT_TUNNEL_UP), ==, 0);

  /* the reason as a field of its own, machine-readable: the protocol's code (as the
   * metrics label it), the same on both ends */
  assert_field (server_failed, "REASON", "bad_token");
  assert_field (agent_failed, "REASON", "bad_token");
}

/* An expired token: REASON says so, where the message is prose. */
static void
test_auth_failed_expired (Fixture *f, gconstpointer data)
{
  g_autofree char *token
      = zlt_test_harness_add_token (&f->h, "name=old expires=2000-01-01T00:00:00Z");
  g_autoptr (GHashTable) server_failed = NULL;
  g_autoptr (GHashTable) agent_failed = NULL;

  start (f, token);
  server_failed = wait_event (ZLT_LOG_EVENT_AUTH_FAILED, "authentication failed for ");
  assert_field (server_failed, "REASON", "expired_token");
  agent_failed = wait_event (ZLT_LOG_EVENT_AUTH_FAILED, "authentication failed: ");
  assert_field (agent_failed, "REASON", "expired_token");
}

/* A name the token may not register: refused, on both ends, with SERVICE. */
static void
test_service_refused (Fixture *f, gconstpointer data)
{
  g_autofree char *token = zlt_test_harness_add_token (&f->h, "name=limited register=other");
  g_autoptr (GHashTable) server_refused = NULL;
  g_autoptr (GHashTable) agent_refused = NULL;
  g_autoptr (GHashTable) up = NULL;
  const char *tunnel_id;

  start (f, token);
  up = wait_event (ZLT_LOG_EVENT_TUNNEL_UP, " opened for ");
  tunnel_id = g_hash_table_lookup (up, "TUNNEL_ID");
  server_refused = wait_event (ZLT_LOG_EVENT_SERVICE_REFUSED, "tunnel ");
  assert_field (server_refused, "SERVICE", "echo");
  /* REASON is the auth failure's field only */
  g_assert_false (g_hash_table_contains (server_refused, "REASON"));
  assert_field (server_refused, "TUNNEL_ID", tunnel_id);
  assert_loopback_peer (server_refused);
  g_assert_nonnull (
      strstr (g_hash_table_lookup (server_refused, "MESSAGE"), "not allowed to register service"));
  agent_refused = wait_event (ZLT_LOG_EVENT_SERVICE_REFUSED, "server refused service echo");
  assert_field (agent_refused, "SERVICE", "echo");
  assert_field (agent_refused, "TUNNEL_ID", tunnel_id);
  assert_field (agent_refused, "PEER", f->url);
  g_assert_cmpuint (count_events (ZLT_LOG_EVENT_SERVICE_REGISTERED), ==, 0);
}

/* An access session's start and end, and the end of one the server refuses. */
static void
test_access (Fixture *f, gconstpointer data)
{
  g_autofree char *fields = g_strdup_printf ("name=access reach=echo expires=%" G_GINT64_FORMAT,
                                             g_get_real_time () / G_USEC_PER_SEC + 3600);
  g_autofree char *token = zlt_test_harness_add_token (&f->h, fields);
  g_autofree char *token_path = g_build_filename (f->h.tmpdir, "access-token", NULL);
  g_autoptr (GKeyFile) keyfile = g_key_file_new ();
  g_autoptr (ZltClientConfig) config = NULL;
  g_autoptr (ZltSession) session = NULL;
  g_autoptr (ZltSession) refused = NULL;
  g_autoptr (GHashTable) started = NULL;
  g_autoptr (GHashTable) ended = NULL;
  g_autoptr (GHashTable) refused_end = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *text = NULL;
  gboolean registered = FALSE;
  guint16 port;

  start (f, NULL);
  g_signal_connect (f->h.agent, "registered", G_CALLBACK (on_flag1), &registered);
  ZLT_TEST_WAIT_FOR (registered, WAIT_MS);
  g_file_set_contents_full (token_path, token, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600, &error);
  g_assert_no_error (error);
  g_key_file_set_string (keyfile, "agent", "server", f->url);
  g_key_file_set_string (keyfile, "agent", "token-file", token_path);
  config = zlt_client_config_new_from_keyfile (keyfile, &error);
  g_assert_no_error (error);
  f->manager = zlt_access_manager_new (config, f->h.loader, &error);
  g_assert_no_error (error);

  session = zlt_access_manager_start_session (f->manager, "echo", 0, 3600, &error);
  g_assert_no_error (error);
  port = zlt_access_manager_get_local_port (f->manager, session);
  started = wait_event (ZLT_LOG_EVENT_ACCESS_STARTED, NULL);
  assert_field (started, "SERVICE", "echo");
  assert_field (started, "PEER", f->url);
  g_assert_nonnull (strstr (g_hash_table_lookup (started, "MESSAGE"), "access session to echo on"));
  /* its client's tunnel comes up on the server */
  ZLT_TEST_WAIT_FOR (zlt_agent_get_state (zlt_access_manager_get_agent (f->manager))
                         == ZLT_TUNNEL_STATE_CONNECTED,
                     WAIT_MS);
  g_assert_cmpuint (count_events (ZLT_LOG_EVENT_ACCESS_ENDED), ==, 0);

  g_assert_true (zlt_access_manager_stop_session (f->manager, session, &error));
  g_assert_no_error (error);
  ended = wait_event (ZLT_LOG_EVENT_ACCESS_ENDED, NULL);
  assert_field (ended, "SERVICE", "echo");
  assert_field (ended, "PEER", f->url);
  text = g_strdup_printf ("access session to echo on port %u ended", port);
  assert_field (ended, "MESSAGE", text);

  /* outside the token's reach: the session ends at once, the refusal its words */
  refused = zlt_access_manager_start_session (f->manager, "nope", 0, 3600, &error);
  g_assert_no_error (error);
  refused_end = wait_event (ZLT_LOG_EVENT_ACCESS_ENDED, "“nope”");
  assert_field (refused_end, "SERVICE", "nope");
  g_assert_cmpuint (count_events (ZLT_LOG_EVENT_ACCESS_STARTED), ==, 2);
  g_assert_cmpuint (count_events (ZLT_LOG_EVENT_ACCESS_ENDED), ==, 2);
}

/* A node tunnel whose token the other node's server does not know: connecting, then
 * failed with the refusal, each a NODE_STATE event naming the link's service. */
static void
test_node_state (Fixture *f, gconstpointer data)
{
  g_autofree char *token_path = g_build_filename (f->h.tmpdir, "node-token", NULL);
  g_autoptr (GKeyFile) keyfile = g_key_file_new ();
  g_autoptr (ZltNodeTunnel) node = NULL;
  g_autoptr (GHashTable) connecting = NULL;
  g_autoptr (GHashTable) failed = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *url = NULL;

  zlt_test_harness_start_server (&f->h);
  url = g_key_file_get_string (f->h.agent_keyfile, "agent", "server", NULL);
  g_file_set_contents_full (token_path, "zlt_00112233445566778899aabbccddeeff0011223344556677", -1,
                            G_FILE_SET_CONTENTS_CONSISTENT, 0600, &error);
  g_assert_no_error (error);
  g_key_file_set_string (keyfile, "node:link", "from", "a");
  g_key_file_set_string (keyfile, "node:link", "to", "b");
  g_key_file_set_string (keyfile, "node:link", "server", url);
  g_key_file_set_string (keyfile, "node:link", "token-file", token_path);
  g_key_file_set_integer (keyfile, "node:link", "local-port", zlt_test_echo_get_port (f->h.echo));
  node = zlt_node_tunnel_new_from_keyfile (keyfile, "node:link", NULL, &error);
  g_assert_no_error (error);
  g_assert_true (zlt_node_tunnel_activate (node, "a", f->h.loader, NULL, &error));
  g_assert_no_error (error);
  zlt_node_tunnel_start (node);

  connecting = wait_event (ZLT_LOG_EVENT_NODE_STATE, "node tunnel link: connecting");
  assert_field (connecting, "SERVICE", "node-link");
  assert_field (connecting, "PEER", url);
  failed = wait_event (ZLT_LOG_EVENT_NODE_STATE, "node tunnel link: failed: ");
  assert_field (failed, "SERVICE", "node-link");
  g_assert_nonnull (strstr (g_hash_table_lookup (failed, "MESSAGE"), "unknown token"));
  g_assert_cmpint (zlt_node_tunnel_get_state (node), ==, ZLT_TUNNEL_STATE_FAILED);
  zlt_node_tunnel_stop (node);
  zlt_node_tunnel_deactivate (node);
}

/* Every MESSAGE_ID is documented where an operator looks: zlayer-tunneld(8). */
static void
test_documented (void)
{
  g_autofree char *page
      = g_test_build_filename (G_TEST_DIST, "..", "doc", "zlayer-tunneld.8.scd.in", NULL);
  g_autofree char *text = NULL;
  g_autoptr (GError) error = NULL;

  g_file_get_contents (page, &text, NULL, &error);
  g_assert_no_error (error);
  for (ZltLogEvent e = 0; e < ZLT_LOG_EVENT_N; e++)
    {
      g_autofree char *entry = g_strdup_printf ("\n*%s*\n\t", zlt_log_event_id (e));

      if (strstr (text, entry) == NULL)
        g_error ("MESSAGE_ID %s has no entry under LOGGING in %s", zlt_log_event_id (e), page);
    }
}

int
main (int argc, char **argv)
{
  int ret;

  g_test_init (&argc, &argv, NULL);
  zlt_init ();
  records = g_ptr_array_new_with_free_func ((GDestroyNotify) record_free);
  g_log_set_writer_func (capture_writer, NULL, NULL);
  g_test_add ("/log-events/tunnel-up-down", Fixture, NULL, fixture_setup, test_tunnel_up_down,
              fixture_teardown);
  g_test_add ("/log-events/auth-failed", Fixture, NULL, fixture_setup, test_auth_failed,
              fixture_teardown);
  g_test_add ("/log-events/auth-failed/expired", Fixture, NULL, fixture_setup,
              test_auth_failed_expired, fixture_teardown);
  g_test_add ("/log-events/service-refused", Fixture, NULL, fixture_setup, test_service_refused,
              fixture_teardown);
  g_test_add ("/log-events/access", Fixture, NULL, fixture_setup, test_access, fixture_teardown);
  g_test_add ("/log-events/node-state", Fixture, NULL, fixture_setup, test_node_state,
              fixture_teardown);
  g_test_add_func ("/log-events/documented", test_documented);
  ret = g_test_run ();
  g_ptr_array_unref (records);
  return ret;
}
