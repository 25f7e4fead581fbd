/* test-replicas.c: several agents serve one service name behind one public port
 *
 * Agents whose tokens own a name (the token file's owns=) register it as replicas: the
 * server gives them one public port, spreads new connections over the replicas whose
 * agent is connected, and keeps the port while any replica remains.
 */
#include "config.h"

#include <string.h>

#include "zlayer-tunnel.h"
#include "zlt-test-util.h"

#define WAIT_MS 15000

/* ---- the registry: who shares a port, and when it goes back ---- */

static ZltTunnel *
add_tunnel (ZltRegistry *registry, const char *owner)
{
  g_autoptr (ZltTunnel) tunnel = zlt_tunnel_new (ZLT_ROLE_SERVER);
  g_autoptr (GError) error = NULL;

  zlt_tunnel_set_token_name (tunnel, owner);
  g_assert_true (zlt_registry_add_tunnel (registry, tunnel, &error));
  g_assert_no_error (error);
  return tunnel; /* the registry holds it */
}

static void
test_registry (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (ZltRegistry) registry = zlt_registry_new_from_ranges ("30000-30003", &error);
  ZltPortPool *tcp = zlt_registry_get_port_pool (registry, ZLT_PROTOCOL_TCP);
  ZltTunnel *one, *two, *three, *other;
  ZltService *a, *b, *c, *solo;
  g_autoptr (GPtrArray) replicas = NULL;

  g_assert_no_error (error);
  one = add_tunnel (registry, "acme");
  two = add_tunnel (registry, "acme");
  three = add_tunnel (registry, "acme");
  other = add_tunnel (registry, "acme");

  a = zlt_registry_register_replica (registry, one, "web", ZLT_PROTOCOL_TCP, 8000, 0,
                                     ZLT_EXPOSE_PUBLIC, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (zlt_service_get_assigned_port (a), ==, 30000);
  /* port 0 or the shared port: a replica */
  b = zlt_registry_register_replica (registry, two, "web", ZLT_PROTOCOL_TCP, 8001, 0,
                                     ZLT_EXPOSE_PUBLIC, &error);
  g_assert_no_error (error);
  c = zlt_registry_register_replica (registry, three, "web", ZLT_PROTOCOL_TCP, 8002, 30000,
                                     ZLT_EXPOSE_PUBLIC, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (zlt_service_get_assigned_port (b), ==, 30000);
  g_assert_cmpuint (zlt_service_get_assigned_port (c), ==, 30000);
  g_assert_cmpuint (zlt_port_pool_get_n_free (tcp), ==, 3);
  replicas = zlt_registry_get_replicas (registry, b);
  g_assert_cmpuint (replicas->len, ==, 3);
  g_assert_true (g_ptr_array_index (replicas, 0) == b);
  /* for access sessions the replicas are one service */
  g_assert_nonnull (zlt_registry_lookup_service_by_name (registry, "web", &error));
  g_assert_no_error (error);

  /* other terms are refused, with the reason, and take nothing */
  g_assert_null (zlt_registry_register_replica (registry, other, "web", ZLT_PROTOCOL_UDP, 8003, 0,
                                                ZLT_EXPOSE_PUBLIC, &error));
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_IN_USE);
  g_test_message ("refused: %s", error->message);
  g_assert_nonnull (strstr (error->message, "same protocol"));
  g_clear_error (&error);
  g_assert_null (zlt_registry_register_replica (registry, other, "web", ZLT_PROTOCOL_TCP, 8003,
                                                30002, ZLT_EXPOSE_PUBLIC, &error));
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_IN_USE);
  g_clear_error (&error);
  g_assert_null (zlt_registry_register_replica (registry, other, "web", ZLT_PROTOCOL_TCP, 8003, 0,
                                                ZLT_EXPOSE_INTERNAL, &error));
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_IN_USE);
  g_clear_error (&error);
  g_assert_cmpuint (zlt_tunnel_get_n_services (other), ==, 0);
  g_assert_cmpuint (zlt_port_pool_get_n_free (tcp), ==, 3);

  /* without owning the name (zlt_registry_register_service()), as before: a port of
   * its own */
  solo = zlt_registry_register_service (registry, other, "web", ZLT_PROTOCOL_TCP, 8003, 0,
                                        ZLT_EXPOSE_PUBLIC, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (zlt_service_get_assigned_port (solo), ==, 30001);
  g_clear_pointer (&replicas, g_ptr_array_unref);
  replicas = zlt_registry_get_replicas (registry, solo);
  g_assert_cmpuint (replicas->len, ==, 1);
  g_assert_true (zlt_registry_unregister_service (registry, solo, NULL));

  /* the port stays while a replica remains, whichever goes first */
  g_assert_true (zlt_registry_unregister_service (registry, a, NULL));
  g_assert_true (zlt_port_pool_is_allocated (tcp, 30000));
  g_assert_true (zlt_registry_lookup_service_by_port (registry, ZLT_PROTOCOL_TCP, 30000) != NULL);
  g_assert_true (zlt_registry_remove_tunnel (registry, three));
  g_assert_true (zlt_port_pool_is_allocated (tcp, 30000));
  g_assert_true (zlt_registry_lookup_service_by_port (registry, ZLT_PROTOCOL_TCP, 30000) == b);
  g_assert_true (zlt_registry_unregister_service (registry, b, NULL));
  g_assert_false (zlt_port_pool_is_allocated (tcp, 30000));
  g_assert_null (zlt_registry_lookup_service_by_port (registry, ZLT_PROTOCOL_TCP, 30000));
}

/* ---- three agents, one public port ---- */

typedef struct
{
  ZltTestHarness h;
  ZltTestEcho *echo[3];
  char *token[3];
} Fixture;

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  zlt_test_harness_init (&f->h, "29400-29419");
  /* two tokens of one principal that owns the name; the harness's own does not */
  f->token[0] = zlt_test_harness_add_token (&f->h, "name=acme register=web owns=web");
  f->token[1] = zlt_test_harness_add_token (&f->h, "name=acme register=web owns=web");
  f->token[2] = zlt_test_harness_add_token (&f->h, "name=plain register=web2");
  zlt_test_harness_start_server (&f->h);
  for (guint i = 0; i < 3; i++)
    f->echo[i] = zlt_test_echo_new ();
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  zlt_test_harness_clear (&f->h);
  for (guint i = 0; i < 3; i++)
    g_clear_pointer (&f->echo[i], zlt_test_echo_free);
  for (guint i = 0; i < 3; i++)
    g_free (f->token[i]);
}

static ZltAgent *
replica_agent (Fixture *f, const char *token, guint i)
{
  g_autofree char *entry = g_strdup_printf ("web:%u", zlt_test_echo_get_port (f->echo[i]));
  const char *services[] = { entry, NULL };
  ZltAgent *agent = zlt_test_harness_new_agent (&f->h, token, services);

  zlt_agent_start (agent);
  return agent;
}

/* An agent as a process of its own, to be killed without a word. */
static GSubprocess *
replica_process (Fixture *f, const char *token, guint i)
{
  g_autoptr (GKeyFile) kf = g_key_file_new ();
  g_autofree char *data = g_key_file_to_data (f->h.agent_keyfile, NULL, NULL);
  g_autofree char *path = g_build_filename (f->h.tmpdir, "replica-token", NULL);
  g_autoptr (GError) error = NULL;

  g_file_set_contents_full (path, token, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600, &error);
  g_assert_no_error (error);
  g_key_file_load_from_data (kf, data, (gsize) -1, G_KEY_FILE_NONE, &error);
  g_assert_no_error (error);
  g_key_file_set_string (kf, "agent", "token-file", path);
  g_key_file_set_string (kf, "service:web", "protocol", "tcp");
  g_key_file_set_integer (kf, "service:web", "local-port", zlt_test_echo_get_port (f->echo[i]));
  return zlt_test_spawn_cli ("agent", kf, f->h.tmpdir, FALSE, NULL);
}

/* The replicas of "web" the server lists, and how many have their agent connected. */
static guint
n_replicas (Fixture *f, guint *n_connected)
{
  ZltRegistry *registry = zlt_server_get_registry (f->h.server);
  g_autoptr (GPtrArray) tunnels = zlt_registry_get_tunnels (registry);
  g_autoptr (GPtrArray) replicas = NULL;
  ZltService *any = NULL;

  for (guint i = 0; any == NULL && i < tunnels->len; i++)
    any = zlt_tunnel_lookup_service (g_ptr_array_index (tunnels, i), "web");
  if (n_connected != NULL)
    *n_connected = 0;
  if (any == NULL)
    return 0;
  replicas = zlt_registry_get_replicas (registry, any);
  for (guint i = 0; n_connected != NULL && i < replicas->len; i++)
    {
      ZltTunnel *tunnel = zlt_service_get_tunnel (g_ptr_array_index (replicas, i));

      if (tunnel != NULL && zlt_tunnel_get_state (tunnel) == ZLT_TUNNEL_STATE_CONNECTED
          && !zlt_registry_is_held (registry, tunnel))
        (*n_connected)++;
    }
  return replicas->len;
}

static guint
n_connected (Fixture *f)
{
  guint n = 0;

  n_replicas (f, &n);
  return n;
}

static void
transfer (guint16 port, guint n_connections, ZltTestTransfer *t)
{
  GThread *thread;

  memset (t, 0, sizeof *t);
  t->port = port;
  t->n_bytes = 16 * 1024;
  t->n_connections = n_connections;
  thread = zlt_test_transfer_start (t);
  zlt_test_transfer_finish (thread, t, WAIT_MS);
}

static void
test_spread_and_failover (Fixture *f, gconstpointer data)
{
  g_autoptr (ZltAgent) a = replica_agent (f, f->token[0], 0);
  g_autoptr (ZltAgent) b = NULL;
  g_autoptr (GSubprocess) c = NULL;
  ZltTestTransfer t;
  guint before[3], n_connections = 0;
  guint16 port;
  gint64 killed;

  ZLT_TEST_WAIT_FOR (n_connected (f) == 1, WAIT_MS);
  b = replica_agent (f, f->token[1], 1);
  c = replica_process (f, f->token[0], 2);
  ZLT_TEST_WAIT_FOR (n_connected (f) == 3, WAIT_MS);
  /* connected is not yet registered: wait for the in-process replicas' answers */
  ZLT_TEST_WAIT_FOR (
      zlt_service_get_state (zlt_tunnel_lookup_service (zlt_agent_get_tunnel (a), "web"))
              == ZLT_SERVICE_STATE_REGISTERED
          && zlt_service_get_state (zlt_tunnel_lookup_service (zlt_agent_get_tunnel (b), "web"))
                 == ZLT_SERVICE_STATE_REGISTERED,
      WAIT_MS);
  port
      = zlt_service_get_assigned_port (zlt_tunnel_lookup_service (zlt_agent_get_tunnel (a), "web"));
  g_assert_cmpuint (port, !=, 0);
  g_assert_cmpuint (
      zlt_service_get_assigned_port (zlt_tunnel_lookup_service (zlt_agent_get_tunnel (b), "web")),
      ==, port);

  /* spread: every replica's service sees some of them, and all are echoed */
  transfer (port, 30, &t);
  g_assert_true (t.ok);
  g_free (t.error);
  for (guint i = 0; i < 3; i++)
    {
      g_test_message ("replica %u: %u connections", i, zlt_test_echo_get_n_accepted (f->echo[i]));
      g_assert_cmpuint (zlt_test_echo_get_n_accepted (f->echo[i]), >, 0);
      n_connections += zlt_test_echo_get_n_accepted (f->echo[i]);
    }
  g_assert_cmpuint (n_connections, ==, 30);

  /* the process agent dies without a word, while connections come */
  memset (&t, 0, sizeof t);
  t.port = port;
  t.n_bytes = 256 * 1024;
  t.n_connections = 20;
  {
    GThread *thread = zlt_test_transfer_start (&t);

    g_subprocess_force_exit (c); /* SIGKILL, to the process we started */
    killed = g_get_monotonic_time ();
    zlt_test_transfer_finish (thread, &t, WAIT_MS);
  }
  g_test_message ("during the kill: %s", t.ok ? "all echoed" : t.error);
  g_free (t.error);
  g_assert_true (zlt_test_process_wait (c, WAIT_MS));
  /* the server notices (here the socket closes; heartbeats bound it otherwise) */
  ZLT_TEST_WAIT_FOR (n_connected (f) == 2, WAIT_MS);
  g_test_message ("server noticed %.0f ms after the kill",
                  (g_get_monotonic_time () - killed) / 1000.0);
  g_assert_cmpuint (n_replicas (f, NULL), >=, 2);

  /* after that no new connection is lost, and only the live replicas see them */
  for (guint i = 0; i < 3; i++)
    before[i] = zlt_test_echo_get_n_accepted (f->echo[i]);
  for (guint round = 0; round < 3; round++)
    {
      transfer (port, 20, &t);
      if (!t.ok)
        g_error ("round %u after failover: %s", round, t.error);
      g_free (t.error);
    }
  /* the echoes may still accept what agents dialled for the connections of the kill
   * (their backlog): the 60 went to the live two, both of them */
  g_test_message ("after failover: %u, %u, and %u late accepts at the dead one's service",
                  zlt_test_echo_get_n_accepted (f->echo[0]) - before[0],
                  zlt_test_echo_get_n_accepted (f->echo[1]) - before[1],
                  zlt_test_echo_get_n_accepted (f->echo[2]) - before[2]);
  g_assert_cmpuint (zlt_test_echo_get_n_accepted (f->echo[0]) - before[0]
                        + zlt_test_echo_get_n_accepted (f->echo[1]) - before[1],
                    >=, 60);
  g_assert_cmpuint (zlt_test_echo_get_n_accepted (f->echo[0]), >, before[0]);
  g_assert_cmpuint (zlt_test_echo_get_n_accepted (f->echo[1]), >, before[1]);

  /* one replica leaves: the port stays open and carries everything */
  zlt_agent_stop (b);
  ZLT_TEST_WAIT_FOR (n_connected (f) == 1, WAIT_MS);
  transfer (port, 10, &t);
  g_assert_true (t.ok);
  g_free (t.error);

  /* the last one leaves: once the killed one's resume grace is over too, the port
   * closes */
  zlt_agent_stop (a);
  ZLT_TEST_WAIT_FOR (n_replicas (f, NULL) == 0, WAIT_MS);
  g_assert_true (zlt_test_connect_refused (port));
}

/* A name the token does not own stays today's: each agent gets a port of its own. */
static void
test_not_owned (Fixture *f, gconstpointer data)
{
  g_autofree char *entry = g_strdup_printf ("web2:%u", zlt_test_echo_get_port (f->echo[0]));
  const char *services[] = { entry, NULL };
  g_autoptr (ZltAgent) a = zlt_test_harness_new_agent (&f->h, f->token[2], services);
  g_autoptr (ZltAgent) b = zlt_test_harness_new_agent (&f->h, f->token[2], services);
  ZltService *sa, *sb;

  zlt_agent_start (a);
  zlt_agent_start (b);
  sa = zlt_tunnel_lookup_service (zlt_agent_get_tunnel (a), "web2");
  sb = zlt_tunnel_lookup_service (zlt_agent_get_tunnel (b), "web2");
  ZLT_TEST_WAIT_FOR (
      zlt_service_get_assigned_port (sa) != 0 && zlt_service_get_assigned_port (sb) != 0, WAIT_MS);
  g_assert_cmpuint (zlt_service_get_assigned_port (sa), !=, zlt_service_get_assigned_port (sb));
  zlt_agent_stop (a);
  zlt_agent_stop (b);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  zlt_init ();
  g_test_add_func ("/replicas/registry", test_registry);
#define ADD(path, func)                                                                            \
  g_test_add ("/replicas/" path, Fixture, NULL, fixture_setup, func, fixture_teardown)
  ADD ("spread-and-failover", test_spread_and_failover);
  ADD ("not-owned", test_not_owned);
  return g_test_run ();
}
