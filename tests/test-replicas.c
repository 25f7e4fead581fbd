/* test-replicas.c: several agents serve one service name behind one public port
 *
 * Agents whose tokens own a name (the token file's owns=) register it as replicas: the
 * server gives them one public port (or one hostname on the shared HTTP port), spreads
 * new connections over the replicas whose agent is connected and on time (round robin,
 * or least connections), and keeps the port while any replica remains.
 */
#include "config.h"

#include <signal.h>
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

/* What a test needs of the server beyond the harness's defaults. */
typedef enum
{
  SETUP_DEFAULT = 0,
  SETUP_LEAST_CONNECTIONS = 1 << 0, /* replica-balance=least-connections */
  SETUP_PATIENT = 1 << 1,           /* heartbeats late long before they are dead */
  SETUP_HOSTNAMES = 1 << 2,         /* a shared HTTP port, hostnames under apps.example.test */
  SETUP_CONNECT_ONLY = 1 << 3,      /* no standby connections: each by Connect; a patient
                                       connect-timeout */
} Setup;

#define HOSTNAME "web.apps.example.test"

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  Setup setup = GPOINTER_TO_UINT (data);
  const char *owner = setup & SETUP_HOSTNAMES
                          ? "name=acme register=web owns=web hostnames=*.apps.example.test"
                          : "name=acme register=web owns=web";

  zlt_test_harness_init (&f->h, "29400-29419");
  /* two tokens of one principal that owns the name; the harness's own does not */
  f->token[0] = zlt_test_harness_add_token (&f->h, owner);
  f->token[1] = zlt_test_harness_add_token (&f->h, owner);
  f->token[2] = zlt_test_harness_add_token (&f->h, "name=plain register=web2");
  if (setup & SETUP_LEAST_CONNECTIONS)
    g_key_file_set_string (f->h.server_keyfile, "server", "replica-balance", "least-connections");
  if (setup & SETUP_PATIENT)
    {
      /* late after 1 s of heartbeat plus a 1 s margin; dead only after 60 s */
      g_key_file_set_integer (f->h.server_keyfile, "server", "heartbeat-timeout", 60);
      g_key_file_set_integer (f->h.agent_keyfile, "agent", "heartbeat-timeout", 60);
    }
  if (setup & SETUP_CONNECT_ONLY)
    {
      g_key_file_set_integer (f->h.server_keyfile, "server", "connect-timeout", 60);
      g_key_file_set_integer (f->h.agent_keyfile, "agent", "standby-connections", 0);
    }
  if (setup & SETUP_HOSTNAMES)
    {
      g_key_file_set_string (f->h.server_keyfile, "server", "http-listen", "127.0.0.1:0");
      g_key_file_set_string (f->h.server_keyfile, "server", "hostname-domains",
                             "*.apps.example.test");
    }
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

/* The server's side of the replica whose agent serves @local_port. */
static ZltService *
server_replica (Fixture *f, guint16 local_port)
{
  g_autoptr (GPtrArray) tunnels = zlt_registry_get_tunnels (zlt_server_get_registry (f->h.server));

  for (guint i = 0; i < tunnels->len; i++)
    {
      ZltService *service = zlt_tunnel_lookup_service (g_ptr_array_index (tunnels, i), "web");

      if (service != NULL && zlt_service_get_local_port (service) == local_port)
        return service;
    }
  return NULL;
}

static ZltReplicaState
replica_state (Fixture *f, guint i)
{
  ZltService *service = server_replica (f, zlt_test_echo_get_port (f->echo[i]));

  return service != NULL ? zlt_server_get_replica_state (f->h.server, service)
                         : ZLT_REPLICA_STATE_AWAY;
}

static guint64
relayed_by (Fixture *f, guint i)
{
  ZltService *service = server_replica (f, zlt_test_echo_get_port (f->echo[i]));

  return service != NULL ? zlt_service_get_total_connections (service) : 0;
}

static guint
open_at (Fixture *f, guint i)
{
  ZltService *service = server_replica (f, zlt_test_echo_get_port (f->echo[i]));

  return service != NULL ? zlt_service_get_active_connections (service) : 0;
}

static gboolean
agent_registered (ZltAgent *agent)
{
  ZltService *service = zlt_tunnel_lookup_service (zlt_agent_get_tunnel (agent), "web");

  return service != NULL && zlt_service_get_state (service) == ZLT_SERVICE_STATE_REGISTERED;
}

/* Waits until the three replicas (@a and @b in this process, the third a process of
 * its own) serve, and warms them with @n connections of which the third relays some.
 * Returns the shared public port. */
static guint16
three_replicas_ready (Fixture *f, ZltAgent *a, ZltAgent *b, guint n)
{
  ZltTestTransfer t;
  guint16 port;

  ZLT_TEST_WAIT_FOR (n_connected (f) == 3 && agent_registered (a) && agent_registered (b)
                         && replica_state (f, 2) == ZLT_REPLICA_STATE_READY,
                     WAIT_MS);
  port
      = zlt_service_get_assigned_port (zlt_tunnel_lookup_service (zlt_agent_get_tunnel (a), "web"));
  transfer (port, n, &t);
  g_assert_true (t.ok);
  g_free (t.error);
  g_assert_cmpuint (relayed_by (f, 2), >, 0);
  return port;
}

/* A replica whose agent stops answering heartbeats (its process stopped with SIGSTOP)
 * is late long before it is dead: from the moment the server notices, new connections
 * go to the other two only; it serves again as soon as its heartbeats come back. */
static void
test_late_heartbeat (Fixture *f, gconstpointer data)
{
  g_autoptr (ZltAgent) a = replica_agent (f, f->token[0], 0);
  g_autoptr (ZltAgent) b = replica_agent (f, f->token[1], 1);
  g_autoptr (GSubprocess) c = replica_process (f, f->token[0], 2);
  ZltTestTransfer t;
  guint64 before_ab, before_c;
  gint64 stopped, resumed;
  guint16 port;

  port = three_replicas_ready (f, a, b, 30);

  /* the agent process stops (SIGSTOP to the process we started): its socket stays
   * open, only its heartbeats stop */
  before_c = relayed_by (f, 2);
  g_subprocess_send_signal (c, SIGSTOP);
  stopped = g_get_monotonic_time ();
  ZLT_TEST_WAIT_FOR (replica_state (f, 2) == ZLT_REPLICA_STATE_LATE, WAIT_MS);
  g_test_message ("late %.0f ms after SIGSTOP (heartbeat 1 s, margin 1 s)",
                  (g_get_monotonic_time () - stopped) / 1000.0);

  /* connections keep coming: every one is relayed by the two on time */
  before_ab = relayed_by (f, 0) + relayed_by (f, 1);
  for (guint round = 0; round < 3; round++)
    {
      transfer (port, 10, &t);
      if (!t.ok)
        g_error ("round %u while a replica is late: %s", round, t.error);
      g_free (t.error);
    }
  g_assert_cmpuint (relayed_by (f, 0) + relayed_by (f, 1) - before_ab, ==, 30);
  g_assert_cmpuint (relayed_by (f, 2), ==, before_c);
  g_assert_cmpuint (zlt_server_get_n_pending (f->h.server), ==, 0);
  /* late is not dead: it is still a connected replica */
  g_assert_cmpint (replica_state (f, 2), ==, ZLT_REPLICA_STATE_LATE);
  g_assert_cmpuint (n_connected (f), ==, 3);

  /* it resumes: its answer to the heartbeats makes it ready, and it serves again */
  g_subprocess_send_signal (c, SIGCONT);
  resumed = g_get_monotonic_time ();
  ZLT_TEST_WAIT_FOR (replica_state (f, 2) == ZLT_REPLICA_STATE_READY, WAIT_MS);
  g_test_message ("ready %.0f ms after SIGCONT", (g_get_monotonic_time () - resumed) / 1000.0);
  transfer (port, 30, &t);
  g_assert_true (t.ok);
  g_free (t.error);
  g_test_message ("after it resumed it relayed %" G_GUINT64_FORMAT " of 30",
                  relayed_by (f, 2) - before_c);
  g_assert_cmpuint (relayed_by (f, 2), >, before_c);

  g_subprocess_force_exit (c);
  g_assert_true (zlt_test_process_wait (c, WAIT_MS));
  zlt_agent_stop (a);
  zlt_agent_stop (b);
}

/* Connections announced to a replica whose agent then turns out late (stopped before
 * it answered) are not left to wait out connect-timeout (60 s here): once the server
 * sees the heartbeat late, they go to the replicas on time. */
static void
test_late_pending (Fixture *f, gconstpointer data)
{
  g_autoptr (ZltAgent) a = replica_agent (f, f->token[0], 0);
  g_autoptr (ZltAgent) b = replica_agent (f, f->token[1], 1);
  g_autoptr (GSubprocess) c = replica_process (f, f->token[0], 2);
  ZltTestTransfer t;
  guint64 before_c;
  gint64 stopped;
  guint16 port;

  port = three_replicas_ready (f, a, b, 9);
  before_c = relayed_by (f, 2);

  /* stopped, and at once 9 connections in turn: a third are announced to it */
  g_subprocess_send_signal (c, SIGSTOP);
  stopped = g_get_monotonic_time ();
  transfer (port, 9, &t);
  if (!t.ok)
    g_error ("connections while a replica stopped: %s", t.error);
  g_free (t.error);
  g_test_message ("all 9 echoed %.0f ms after SIGSTOP (heartbeat 1 s, margin 1 s)",
                  (g_get_monotonic_time () - stopped) / 1000.0);
  g_assert_cmpint (replica_state (f, 2), ==, ZLT_REPLICA_STATE_LATE);
  g_assert_cmpuint (relayed_by (f, 2), ==, before_c);
  g_assert_cmpuint (zlt_server_get_n_pending (f->h.server), ==, 0);

  g_subprocess_send_signal (c, SIGCONT);
  g_subprocess_force_exit (c);
  g_assert_true (zlt_test_process_wait (c, WAIT_MS));
  zlt_agent_stop (a);
  zlt_agent_stop (b);
}

/* Connections a thread opens one after the other (each echoes a byte before the next
 * is opened) and holds until it is told to let go. */
typedef struct
{
  guint16 port;
  guint n;
  /* results */
  gint opened;
  char *error;
  /* the main thread's word */
  GMutex mutex;
  GCond cond;
  gboolean release;
  GThread *thread;
} Holder;

static gpointer
holder_thread (gpointer data)
{
  Holder *h = data;
  g_autoptr (GSocketClient) client = g_socket_client_new ();
  g_autoptr (GPtrArray) held = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr (GError) error = NULL;
  gint64 deadline;

  g_socket_client_set_timeout (client, 10);
  for (guint i = 0; i < h->n && error == NULL; i++)
    {
      g_autoptr (GSocketConnection) conn
          = g_socket_client_connect_to_host (client, "127.0.0.1", h->port, NULL, &error);
      char c = 'x';
      gsize n = 0;

      if (conn == NULL)
        break;
      if (g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (conn)), &c, 1,
                                     NULL, NULL, &error)
          && g_input_stream_read_all (g_io_stream_get_input_stream (G_IO_STREAM (conn)), &c, 1, &n,
                                      NULL, &error)
          && n == 1)
        {
          g_ptr_array_add (held, g_steal_pointer (&conn));
          g_atomic_int_inc (&h->opened);
        }
      else if (error == NULL)
        g_set_error_literal (&error, G_IO_ERROR, G_IO_ERROR_CLOSED, "closed before the echo");
    }
  if (error != NULL)
    g_atomic_pointer_set (&h->error, g_strdup (error->message));
  /* bounded: a test lets go within seconds */
  deadline = g_get_monotonic_time () + 60 * G_USEC_PER_SEC;
  g_mutex_lock (&h->mutex);
  while (!h->release)
    if (!g_cond_wait_until (&h->cond, &h->mutex, deadline))
      break;
  g_mutex_unlock (&h->mutex);
  return NULL; /* closes them */
}

static void
holder_start (Holder *h, guint16 port, guint n)
{
  memset (h, 0, sizeof *h);
  h->port = port;
  h->n = n;
  g_mutex_init (&h->mutex);
  g_cond_init (&h->cond);
  h->thread = g_thread_new ("holder", holder_thread, h);
  ZLT_TEST_WAIT_FOR ((guint) g_atomic_int_get (&h->opened) == n
                         || g_atomic_pointer_get (&h->error) != NULL,
                     WAIT_MS);
  if (h->error != NULL)
    g_error ("holding %u connections: %s", n, h->error);
}

static void
holder_release (Holder *h)
{
  if (h->thread == NULL)
    return;
  g_mutex_lock (&h->mutex);
  h->release = TRUE;
  g_cond_signal (&h->cond);
  g_mutex_unlock (&h->mutex);
  /* it closes what it holds on the way out; the server sees those ends on this loop */
  g_thread_join (g_steal_pointer (&h->thread));
  g_mutex_clear (&h->mutex);
  g_cond_clear (&h->cond);
  g_free (h->error);
}

/* least-connections: with long-held connections on one replica, new ones go to the
 * others until they carry as many (ties in turn), and to it again once it is free. */
static void
test_least_connections (Fixture *f, gconstpointer data)
{
  g_autoptr (ZltAgent) a = replica_agent (f, f->token[0], 0);
  g_autoptr (ZltAgent) b = NULL;
  g_autoptr (ZltAgent) c = NULL;
  Holder first, second, third;
  guint16 port;

  g_assert_cmpint (zlt_server_config_get_replica_balance (zlt_server_get_config (f->h.server)), ==,
                   ZLT_REPLICA_BALANCE_LEAST_CONNECTIONS);
  ZLT_TEST_WAIT_FOR (agent_registered (a), WAIT_MS);
  port
      = zlt_service_get_assigned_port (zlt_tunnel_lookup_service (zlt_agent_get_tunnel (a), "web"));
  /* four long connections on the only replica */
  holder_start (&first, port, 4);
  ZLT_TEST_WAIT_FOR (open_at (f, 0) == 4, WAIT_MS);

  b = replica_agent (f, f->token[1], 1);
  c = replica_agent (f, f->token[0], 2);
  ZLT_TEST_WAIT_FOR (n_connected (f) == 3 && agent_registered (b) && agent_registered (c), WAIT_MS);
  /* six more: the other two get three each, the busy one none */
  holder_start (&second, port, 6);
  ZLT_TEST_WAIT_FOR (open_at (f, 1) + open_at (f, 2) == 6, WAIT_MS);
  g_test_message ("open: %u, %u, %u", open_at (f, 0), open_at (f, 1), open_at (f, 2));
  g_assert_cmpuint (open_at (f, 0), ==, 4);
  g_assert_cmpuint (open_at (f, 1), ==, 3);
  g_assert_cmpuint (open_at (f, 2), ==, 3);
  g_assert_cmpuint (zlt_test_echo_get_n_accepted (f->echo[0]), ==, 4);
  g_assert_cmpuint (zlt_test_echo_get_n_accepted (f->echo[1]), ==, 3);
  g_assert_cmpuint (zlt_test_echo_get_n_accepted (f->echo[2]), ==, 3);

  /* the first four end: the least loaded is now the first replica, for three more */
  holder_release (&first);
  ZLT_TEST_WAIT_FOR (open_at (f, 0) == 0, WAIT_MS);
  holder_start (&third, port, 3);
  ZLT_TEST_WAIT_FOR (open_at (f, 0) == 3, WAIT_MS);
  g_assert_cmpuint (open_at (f, 1), ==, 3);
  g_assert_cmpuint (open_at (f, 2), ==, 3);
  g_assert_cmpuint (zlt_test_echo_get_n_accepted (f->echo[0]), ==, 7);

  holder_release (&second);
  holder_release (&third);
  ZLT_TEST_WAIT_FOR (open_at (f, 0) + open_at (f, 1) + open_at (f, 2) == 0, WAIT_MS);
  zlt_agent_stop (a);
  zlt_agent_stop (b);
  zlt_agent_stop (c);
}

/* Requests by hand to the shared HTTP port, one after the other, each echoed whole by
 * whichever replica's echo service takes it. */
typedef struct
{
  guint16 port;
  guint n;
  guint ok;
  char *error;
  gint done;
} HostRequests;

static gpointer
host_requests_thread (gpointer data)
{
  HostRequests *r = data;
  g_autoptr (GSocketClient) client = g_socket_client_new ();
  const char *request = "GET / HTTP/1.1\r\nHost: " HOSTNAME "\r\n\r\n";

  g_socket_client_set_timeout (client, 10);
  for (guint i = 0; i < r->n && r->error == NULL; i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (GSocketConnection) conn
          = g_socket_client_connect_to_host (client, "127.0.0.1", r->port, NULL, &error);
      char reply[256];
      gsize n = 0;

      if (conn != NULL
          && g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (conn)), request,
                                        strlen (request), NULL, NULL, &error)
          && g_socket_shutdown (g_socket_connection_get_socket (conn), FALSE, TRUE, &error)
          && g_input_stream_read_all (g_io_stream_get_input_stream (G_IO_STREAM (conn)), reply,
                                      sizeof reply, &n, NULL, &error))
        {
          if (n == strlen (request) && memcmp (reply, request, n) == 0)
            r->ok++;
          else
            r->error = g_strdup_printf ("request %u: %zu bytes back, not the echo", i, n);
        }
      else
        r->error = g_strdup_printf ("request %u: %s", i, error->message);
    }
  g_atomic_int_set (&r->done, 1);
  return NULL;
}

static void
host_requests (Fixture *f, guint n)
{
  HostRequests r = { .port = zlt_server_get_http_port (f->h.server), .n = n };
  GThread *thread = g_thread_new ("requests", host_requests_thread, &r);

  ZLT_TEST_WAIT_FOR (g_atomic_int_get (&r.done), WAIT_MS * 2);
  g_thread_join (thread);
  if (r.error != NULL)
    g_error ("%s", r.error);
  g_assert_cmpuint (r.ok, ==, n);
}

/* Two agents of one owner claim the same hostname: both serve it as replicas on the
 * shared HTTP port, and when the one that claimed it first is killed, the other keeps
 * serving it, before and after the killed one's resume grace. */
static void
test_hostname (Fixture *f, gconstpointer data)
{
  g_autoptr (GSubprocess) first = NULL;
  g_autoptr (ZltAgent) second = NULL;
  ZltService *holder;
  guint before[2];
  g_autofree char *unknown = NULL;

  /* one [service:web] with the hostname; each agent points it at its own echo */
  zlt_test_harness_add_service (&f->h, "web", zlt_test_echo_get_port (f->echo[0]), 0);
  g_key_file_set_string (f->h.agent_keyfile, "service:web", "hostname", HOSTNAME);
  first = replica_process (f, f->token[0], 1);
  ZLT_TEST_WAIT_FOR (zlt_server_lookup_hostname (f->h.server, HOSTNAME) != NULL, WAIT_MS);
  holder = zlt_server_lookup_hostname (f->h.server, HOSTNAME);
  g_assert_cmpuint (zlt_service_get_local_port (holder), ==, zlt_test_echo_get_port (f->echo[1]));
  second = zlt_test_harness_new_agent (&f->h, f->token[1], NULL);
  zlt_agent_start (second);
  ZLT_TEST_WAIT_FOR (agent_registered (second), WAIT_MS);
  g_assert_cmpuint (n_replicas (f, NULL), ==, 2);
  g_assert_cmpstr (
      zlt_service_get_hostname (server_replica (f, zlt_test_echo_get_port (f->echo[0]))), ==,
      HOSTNAME);

  /* spread: both replicas serve the hostname */
  host_requests (f, 20);
  g_test_message ("20 requests: %u and %u", zlt_test_echo_get_n_accepted (f->echo[0]),
                  zlt_test_echo_get_n_accepted (f->echo[1]));
  g_assert_cmpuint (zlt_test_echo_get_n_accepted (f->echo[0]), >, 0);
  g_assert_cmpuint (zlt_test_echo_get_n_accepted (f->echo[1]), >, 0);
  g_assert_cmpuint (zlt_test_echo_get_n_accepted (f->echo[0])
                        + zlt_test_echo_get_n_accepted (f->echo[1]),
                    ==, 20);

  /* the holder's agent is killed: once the server noticed, the other serves all */
  g_subprocess_force_exit (first);
  g_assert_true (zlt_test_process_wait (first, WAIT_MS));
  ZLT_TEST_WAIT_FOR (n_connected (f) == 1, WAIT_MS);
  before[0] = zlt_test_echo_get_n_accepted (f->echo[0]);
  before[1] = zlt_test_echo_get_n_accepted (f->echo[1]);
  host_requests (f, 10);
  g_assert_cmpuint (zlt_test_echo_get_n_accepted (f->echo[0]) - before[0], ==, 10);
  g_assert_cmpuint (zlt_test_echo_get_n_accepted (f->echo[1]), ==, before[1]);

  /* its resume grace ends: the hostname passes to the replica that remains */
  ZLT_TEST_WAIT_FOR (n_replicas (f, NULL) == 1, WAIT_MS);
  holder = zlt_server_lookup_hostname (f->h.server, HOSTNAME);
  g_assert_nonnull (holder);
  g_assert_cmpuint (zlt_service_get_local_port (holder), ==, zlt_test_echo_get_port (f->echo[0]));
  host_requests (f, 10);
  g_assert_cmpuint (zlt_test_echo_get_n_accepted (f->echo[0]) - before[0], ==, 20);

  /* the last one leaves: the hostname is unknown again */
  zlt_agent_stop (second);
  ZLT_TEST_WAIT_FOR (zlt_server_lookup_hostname (f->h.server, HOSTNAME) == NULL, WAIT_MS);
  unknown = g_strdup ("GET / HTTP/1.1\r\nHost: " HOSTNAME "\r\n\r\n");
  g_assert_cmpuint (zlt_test_http_status (zlt_server_get_http_port (f->h.server), unknown, WAIT_MS),
                    ==, 404);
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
#define ADD(path, setup, func)                                                                     \
  g_test_add ("/replicas/" path, Fixture, GUINT_TO_POINTER (setup), fixture_setup, func,           \
              fixture_teardown)
  ADD ("spread-and-failover", SETUP_DEFAULT, test_spread_and_failover);
  ADD ("not-owned", SETUP_DEFAULT, test_not_owned);
  ADD ("late-heartbeat", SETUP_PATIENT, test_late_heartbeat);
  ADD ("late-pending", SETUP_PATIENT | SETUP_CONNECT_ONLY, test_late_pending);
  ADD ("least-connections", SETUP_LEAST_CONNECTIONS, test_least_connections);
  ADD ("hostname", SETUP_HOSTNAMES, test_hostname);
  return g_test_run ();
}
