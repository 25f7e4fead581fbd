/* test-tunnel-e2e.c: a real server and a real agent on loopback, carrying real TCP
 * connections to a local echo service */
#include "config.h"

#include "zlt-test-util.h"

typedef struct
{
  ZltTestHarness h;
} Fixture;

/* @data: TRUE to run the whole tunnel over ::1 (control channel, data connections,
 * public ports), FALSE for 127.0.0.1 */
static void
fixture_setup (Fixture *f, gconstpointer data)
{
  zlt_test_use_ipv6 (GPOINTER_TO_INT (data));
  zlt_test_harness_init (&f->h, "31000-31199");
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  zlt_test_harness_clear (&f->h);
  zlt_test_use_ipv6 (FALSE);
}

static guint16
start_echo_tunnel (Fixture *f)
{
  zlt_test_harness_start_server (&f->h);
  zlt_test_harness_add_service (&f->h, "echo", zlt_test_echo_get_port (f->h.echo), 0);
  zlt_test_harness_start_agent (&f->h);
  return zlt_test_harness_wait_registered (&f->h, "echo");
}

static void
test_large_transfer (Fixture *f, gconstpointer data)
{
  ZltTestTransfer t = { 0 };
  GThread *thread;
  ZltService *agent_service;
  ZltService *server_service;
  ZltRegistry *registry;

  t.port = start_echo_tunnel (f);
  g_assert_cmpuint (t.port, >=, 31000);
  g_assert_cmpuint (t.port, <=, 31199);
  t.n_bytes = 8 * 1024 * 1024;
  t.n_connections = 1;
  thread = zlt_test_transfer_start (&t);
  zlt_test_transfer_finish (thread, &t, 60000);
  g_assert_null (t.error);
  g_assert_true (t.ok);
  g_assert_cmpuint (t.received, ==, t.n_bytes);

  /* both ends counted every byte, once the relays have finished */
  agent_service = zlt_tunnel_lookup_service (zlt_agent_get_tunnel (f->h.agent), "echo");
  registry = zlt_server_get_registry (f->h.server);
  server_service = zlt_registry_lookup_service_by_port (registry, ZLT_PROTOCOL_TCP, t.port);
  g_assert_nonnull (server_service);
  ZLT_TEST_WAIT_FOR (zlt_server_get_n_relays (f->h.server) == 0
                         && zlt_agent_get_n_relays (f->h.agent) == 0,
                     10000);
  g_assert_cmpuint (zlt_service_get_bytes_in (server_service), ==, t.n_bytes);
  g_assert_cmpuint (zlt_service_get_bytes_out (server_service), ==, t.n_bytes);
  g_assert_cmpuint (zlt_service_get_bytes_in (agent_service), ==, t.n_bytes);
  g_assert_cmpuint (zlt_service_get_bytes_out (agent_service), ==, t.n_bytes);
  g_assert_cmpuint (zlt_service_get_total_connections (server_service), ==, 1);
  g_assert_cmpuint (zlt_service_get_active_connections (server_service), ==, 0);
}

static void
on_connection_opened (ZltTunnel *tunnel, ZltService *service, gpointer user_data)
{
  guint *count = user_data;
  (*count)++;
}

static void
test_concurrent_connections (Fixture *f, gconstpointer data)
{
  ZltTestTransfer t = { 0 };
  GThread *thread;
  guint opened = 0;
  GPtrArray *tunnels;

  t.port = start_echo_tunnel (f);
  tunnels = zlt_registry_get_tunnels (zlt_server_get_registry (f->h.server));
  g_assert_cmpuint (tunnels->len, ==, 1);
  g_signal_connect (g_ptr_array_index (tunnels, 0), "connection-opened",
                    G_CALLBACK (on_connection_opened), &opened);
  t.n_bytes = 16 * 1024;
  t.n_connections = 200;
  thread = zlt_test_transfer_start (&t);
  zlt_test_transfer_finish (thread, &t, 120000);
  g_assert_null (t.error);
  g_assert_true (t.ok);
  g_assert_cmpuint (t.received, ==, t.n_bytes * 200);
  g_assert_cmpuint (opened, ==, 200);
  g_assert_cmpuint (zlt_test_echo_get_n_accepted (f->h.echo), ==, 200);
  ZLT_TEST_WAIT_FOR (zlt_server_get_n_relays (f->h.server) == 0, 10000);
  g_assert_cmpuint (zlt_server_get_n_pending (f->h.server), ==, 0);
  g_ptr_array_unref (tunnels);
}

static void
test_local_service_down (Fixture *f, gconstpointer data)
{
  guint16 port;

  /* the agent answers ConnectFail and the server closes the public side at once
   * (the connect timeout is the default 10 s; the wait below is shorter) */
  zlt_test_harness_start_server (&f->h);
  zlt_test_harness_add_service (&f->h, "down", zlt_test_closed_port (), 0);
  zlt_test_harness_start_agent (&f->h);
  port = zlt_test_harness_wait_registered (&f->h, "down");
  g_assert_true (zlt_test_expect_closed (port, 5000));
  ZLT_TEST_WAIT_FOR (zlt_server_get_n_pending (f->h.server) == 0, 5000);
  /* and the public client can tell: a reset, not a clean end of an empty answer */
  {
    ZltTestRaw raw = { 0 };
    GThread *thread;

    raw.port = port;
    raw.request = "hello";
    thread = zlt_test_raw_start (&raw);
    zlt_test_raw_finish (thread, &raw, 10000);
    g_assert_null (raw.error);
    g_assert_true (raw.closed);
    g_assert_true (raw.reset);
    g_assert_cmpuint (raw.reply->len, ==, 0);
    zlt_test_raw_clear (&raw);
  }
}

static void
test_requested_port_and_unregister (Fixture *f, gconstpointer data)
{
  guint16 port;
  g_autoptr (GError) error = NULL;

  zlt_test_harness_start_server (&f->h);
  zlt_test_harness_add_service (&f->h, "fixed", zlt_test_echo_get_port (f->h.echo), 31150);
  zlt_test_harness_start_agent (&f->h);
  port = zlt_test_harness_wait_registered (&f->h, "fixed");
  g_assert_cmpuint (port, ==, 31150);
  g_assert_false (zlt_test_connect_refused (port));

  /* unregistering closes the public port */
  zlt_agent_remove_service (f->h.agent, "fixed", &error);
  g_assert_no_error (error);
  ZLT_TEST_WAIT_FOR (zlt_registry_lookup_service_by_port (zlt_server_get_registry (f->h.server),
                                                          ZLT_PROTOCOL_TCP, 31150)
                         == NULL,
                     5000);
  g_assert_true (zlt_test_connect_refused (port));
}

static void
test_server_counts_connections (Fixture *f, gconstpointer data)
{
  ZltTestTransfer t = { 0 };
  GThread *thread;
  ZltService *service;

  t.port = start_echo_tunnel (f);
  service = zlt_registry_lookup_service_by_port (zlt_server_get_registry (f->h.server),
                                                 ZLT_PROTOCOL_TCP, t.port);
  t.n_bytes = 1000;
  t.n_connections = 3;
  thread = zlt_test_transfer_start (&t);
  zlt_test_transfer_finish (thread, &t, 30000);
  g_assert_true (t.ok);
  ZLT_TEST_WAIT_FOR (zlt_service_get_active_connections (service) == 0, 5000);
  g_assert_cmpuint (zlt_service_get_total_connections (service), ==, 3);
  g_assert_cmpuint (zlt_service_get_bytes_in (service), ==, 3000);
  g_assert_cmpuint (zlt_service_get_bytes_out (service), ==, 3000);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  zlt_init ();
  /* every case over IPv4 and over IPv6 */
  for (guint v6 = 0; v6 <= 1; v6++)
    {
#define ADD(path, func)                                                                            \
  G_STMT_START                                                                                     \
  {                                                                                                \
    g_autofree char *full = g_strdup_printf ("/tunnel/%s%s", v6 ? "ipv6/" : "", path);             \
    g_test_add (full, Fixture, GINT_TO_POINTER (v6), fixture_setup, func, fixture_teardown);       \
  }                                                                                                \
  G_STMT_END
      ADD ("large-transfer-half-close", test_large_transfer);
      ADD ("200-concurrent", test_concurrent_connections);
      ADD ("local-service-down", test_local_service_down);
      ADD ("requested-port-and-unregister", test_requested_port_and_unregister);
      ADD ("counters", test_server_counts_connections);
#undef ADD
    }
  return g_test_run ();
}
