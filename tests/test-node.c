/* test-node.c: two zlayer-tunneld processes linked by a node-to-node tunnel.
 *
 * Node b runs a server role; node a runs no role of its own, only the node tunnel
 * "link" from a to b, which exposes a loopback echo service of the test on b's public
 * port. Each daemon owns org.zlayer.Tunnel1 on its own private dbus-daemon (the name
 * cannot be owned twice on one bus). The test watches a's Node object through
 * PropertiesChanged: connected, traffic checked byte for byte, counters and latency,
 * then b is stopped (SIGTERM) and started again with the same config, and a's state
 * must pass through disconnected back to connected, with traffic flowing again.
 * AddNodeTunnel and RemoveNodeTunnel are checked on a, with their named errors. With
 * ZLT_UNDER_VALGRIND set both daemons run under valgrind and must exit 0. */
#include "config.h"

#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>

#include "zlt-dbus-generated.h"
#include "zlt-test-util.h"

#define BUS_NAME "org.zlayer.Tunnel1"
#define BUS_PATH "/org/zlayer/Tunnel1"
#define ERROR_PREFIX "org.zlayer.Tunnel1.Error."
/* a block of 100 public ports, at random, above the blocks test-daemon and the CLI
 * test use */
#define PORT_BLOCKS_FIRST 24000
#define PORT_BLOCKS 40 /* 24000-27999: clear of the CLI test's 20000-23999 */

static gboolean under_valgrind;

static guint
timeout_ms (guint ms)
{
  return under_valgrind ? ms * 20 : ms;
}

typedef struct
{
  GSubprocess *bus_daemon;
  char *bus_address;
  GDBusConnection *bus;
  char *config_path;
  GSubprocess *daemon;
  GDBusObjectManager *om;
  ZltDbusManager *manager;
} Node;

typedef struct
{
  ZltTestHarness h; /* tmpdir, the server's token file, the echo service */
  guint16 port_base;
  guint16 server_port; /* node b's control port */
  char *url;
  char *token_file; /* the link's token, shared by both nodes */
  Node a;
  Node b;

  ZltDbusNode *link; /* a's Node object of the link, our own proxy */
  GPtrArray *states; /* every State a's link went through, as PropertiesChanged told */
} Fixture;

static void
die_with_parent (gpointer user_data)
{
  prctl (PR_SET_PDEATHSIG, SIGTERM);
}

static const char bus_config[]
    = "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN\"\n"
      " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
      "<busconfig>\n"
      "  <type>session</type>\n"
      "  <listen>unix:tmpdir=/tmp</listen>\n"
      "  <auth>EXTERNAL</auth>\n"
      "  <policy context=\"default\">\n"
      "    <allow user=\"*\"/>\n"
      "    <allow own=\"*\"/>\n"
      "    <allow send_destination=\"*\" eavesdrop=\"true\"/>\n"
      "    <allow eavesdrop=\"true\"/>\n"
      "  </policy>\n"
      "</busconfig>\n";

static void
wait_subprocess_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_subprocess_wait_finish (G_SUBPROCESS (source), result, NULL);
  *(gboolean *) user_data = TRUE;
}

static void
wait_subprocess (GSubprocess *process, guint ms)
{
  gboolean done = FALSE;

  g_subprocess_wait_async (process, NULL, wait_subprocess_done, &done);
  ZLT_TEST_WAIT_FOR (done, ms);
}

static void
start_bus (Fixture *f, Node *node)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *conf = g_build_filename (f->h.tmpdir, "bus.conf", NULL);
  g_autofree char *arg = g_strdup_printf ("--config-file=%s", conf);
  g_autoptr (GDataInputStream) out = NULL;
  g_autofree char *line = NULL;
  g_autoptr (GSubprocessLauncher) launcher
      = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE);

  g_file_set_contents (conf, bus_config, -1, &error);
  g_assert_no_error (error);
  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  node->bus_daemon = g_subprocess_launcher_spawn (launcher, &error, "dbus-daemon", arg, "--nofork",
                                                  "--print-address=1", NULL);
  g_assert_no_error (error);
  out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (node->bus_daemon));
  line = g_data_input_stream_read_line (out, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (line);
  node->bus_address = g_strdup (g_strstrip (line));
  node->bus = g_dbus_connection_new_for_address_sync (
      node->bus_address,
      G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT
          | G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
      NULL, NULL, &error);
  g_assert_no_error (error);
}

static void
on_name_appeared (GDBusConnection *connection, const char *name, const char *owner,
                  gpointer user_data)
{
  *(gboolean *) user_data = TRUE;
}

static void
start_daemon (Node *node)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GSubprocessLauncher) launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr (GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  const char *daemon = g_getenv ("ZLT_TUNNELD");
  gboolean appeared = FALSE;
  guint watch;

  g_assert_nonnull (daemon);
  g_assert_null (node->daemon);
  if (under_valgrind)
    {
      const char *srcdir = g_getenv ("G_TEST_SRCDIR");

      g_ptr_array_add (argv, g_strdup ("valgrind"));
      g_ptr_array_add (argv, g_strdup ("--tool=memcheck"));
      g_ptr_array_add (argv, g_strdup ("--leak-check=full"));
      g_ptr_array_add (argv, g_strdup ("--show-leak-kinds=definite,indirect"));
      g_ptr_array_add (argv, g_strdup ("--errors-for-leak-kinds=definite,indirect"));
      g_ptr_array_add (argv, g_strdup ("--error-exitcode=1"));
      g_ptr_array_add (argv, g_strdup ("--num-callers=30"));
      g_ptr_array_add (argv, g_strdup_printf ("--suppressions=%s/valgrind.supp", srcdir));
      g_ptr_array_add (argv, g_strdup ("--suppressions=/usr/share/glib-2.0/valgrind/glib.supp"));
    }
  g_ptr_array_add (argv, g_strdup (daemon));
  g_ptr_array_add (argv, g_strdup ("--session"));
  g_ptr_array_add (argv, g_strdup ("--config"));
  g_ptr_array_add (argv, g_strdup (node->config_path));
  g_ptr_array_add (argv, NULL);

  g_subprocess_launcher_setenv (launcher, "DBUS_SESSION_BUS_ADDRESS", node->bus_address, TRUE);
  g_subprocess_launcher_setenv (launcher, "G_SLICE", "always-malloc", TRUE);
  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  node->daemon = g_subprocess_launcher_spawnv (launcher, (const char *const *) argv->pdata, &error);
  g_assert_no_error (error);

  watch = g_bus_watch_name_on_connection (node->bus, BUS_NAME, G_BUS_NAME_WATCHER_FLAGS_NONE,
                                          on_name_appeared, NULL, &appeared, NULL);
  ZLT_TEST_WAIT_FOR (appeared, timeout_ms (10000));
  g_bus_unwatch_name (watch);

  g_clear_object (&node->om);
  node->om = zlt_dbus_object_manager_client_new_sync (
      node->bus, G_DBUS_OBJECT_MANAGER_CLIENT_FLAGS_DO_NOT_AUTO_START, BUS_NAME, BUS_PATH, NULL,
      &error);
  g_assert_no_error (error);
  g_clear_object (&node->manager);
  node->manager = zlt_dbus_manager_proxy_new_sync (node->bus, G_DBUS_PROXY_FLAGS_DO_NOT_AUTO_START,
                                                   BUS_NAME, BUS_PATH, NULL, &error);
  g_assert_no_error (error);
}

static void
stop_daemon (Node *node)
{
  if (node->daemon == NULL)
    return;
  g_subprocess_send_signal (node->daemon, SIGTERM);
  wait_subprocess (node->daemon, timeout_ms (10000));
  g_assert_true (g_subprocess_get_if_exited (node->daemon));
  g_assert_cmpint (g_subprocess_get_exit_status (node->daemon), ==, 0);
  g_clear_object (&node->daemon);
}

static void
node_clear (Node *node)
{
  stop_daemon (node);
  g_clear_object (&node->manager);
  g_clear_object (&node->om);
  if (node->bus != NULL)
    g_dbus_connection_close_sync (node->bus, NULL, NULL);
  g_clear_object (&node->bus);
  if (node->bus_daemon != NULL)
    {
      g_subprocess_send_signal (node->bus_daemon, SIGTERM);
      wait_subprocess (node->bus_daemon, 10000);
      g_clear_object (&node->bus_daemon);
    }
  g_free (node->bus_address);
  g_free (node->config_path);
}

/* ---- finding objects ---- */

/* The object path of the Node object called @name, NULL when there is none. */
static char *
find_node_path (Node *node, const char *name)
{
  GList *objects = g_dbus_object_manager_get_objects (node->om);
  char *found = NULL;

  for (GList *l = objects; l != NULL; l = l->next)
    {
      ZltDbusNode *iface = zlt_dbus_object_peek_node (ZLT_DBUS_OBJECT (l->data));

      if (iface != NULL && found == NULL && g_strcmp0 (zlt_dbus_node_get_name (iface), name) == 0)
        found = g_strdup (g_dbus_object_get_object_path (G_DBUS_OBJECT (l->data)));
    }
  g_list_free_full (objects, g_object_unref);
  return found;
}

static gboolean
has_node (Node *node, const char *name)
{
  g_autofree char *path = find_node_path (node, name);

  return path != NULL;
}

static ZltDbusNode *
peek_node (Node *node, const char *name)
{
  g_autofree char *path = find_node_path (node, name);
  g_autoptr (GDBusObject) object = NULL;

  if (path == NULL)
    return NULL;
  object = g_dbus_object_manager_get_object (node->om, path);
  return object != NULL ? zlt_dbus_object_peek_node (ZLT_DBUS_OBJECT (object)) : NULL;
}

/* b's server lists the link's service on @port */
static gboolean
service_open (Node *node, const char *name, guint16 port)
{
  GList *objects = g_dbus_object_manager_get_objects (node->om);
  gboolean found = FALSE;

  for (GList *l = objects; l != NULL; l = l->next)
    {
      ZltDbusService *service = zlt_dbus_object_peek_service (ZLT_DBUS_OBJECT (l->data));

      if (service != NULL && g_strcmp0 (zlt_dbus_service_get_name (service), name) == 0
          && zlt_dbus_service_get_assigned_port (service) == port)
        found = TRUE;
    }
  g_list_free_full (objects, g_object_unref);
  return found;
}

static gboolean
node_in_state (Node *node, const char *name, const char *state)
{
  ZltDbusNode *iface = peek_node (node, name);

  return iface != NULL && g_strcmp0 (zlt_dbus_node_get_state (iface), state) == 0;
}

/* ---- a's link, followed through PropertiesChanged ---- */

static void
on_link_properties_changed (GDBusProxy *proxy, GVariant *changed, const char *const *invalidated,
                            gpointer user_data)
{
  Fixture *f = user_data;
  const char *state = NULL;

  if (g_variant_lookup (changed, "State", "&s", &state))
    {
      g_test_message ("a: link %s", state);
      g_ptr_array_add (f->states, g_strdup (state));
    }
}

/* index of @state in the recorded states at or after @from, -1 when absent */
static gint
state_seen (Fixture *f, const char *state, guint from)
{
  for (guint i = from; i < f->states->len; i++)
    if (g_str_equal (g_ptr_array_index (f->states, i), state))
      return (gint) i;
  return -1;
}

static const char *
link_state (Fixture *f)
{
  return zlt_dbus_node_get_state (f->link);
}

static void
follow_link (Fixture *f)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *path = NULL;

  ZLT_TEST_WAIT_FOR (has_node (&f->a, "link"), timeout_ms (10000));
  path = find_node_path (&f->a, "link");
  f->link = zlt_dbus_node_proxy_new_sync (f->a.bus, G_DBUS_PROXY_FLAGS_DO_NOT_AUTO_START, BUS_NAME,
                                          path, NULL, &error);
  g_assert_no_error (error);
  g_signal_connect (f->link, "g-properties-changed", G_CALLBACK (on_link_properties_changed), f);
  g_ptr_array_add (f->states, g_strdup (link_state (f)));
}

/* ---- fixture ---- */

static char *
write_config (Fixture *f, GKeyFile *config, const char *name)
{
  g_autoptr (GError) error = NULL;
  char *path = g_build_filename (f->h.tmpdir, name, NULL);

  g_key_file_save_to_file (config, path, &error);
  g_assert_no_error (error);
  return path;
}

static void
write_token (const char *path, const char *token)
{
  g_autoptr (GError) error = NULL;

  g_file_set_contents (path, token, -1, &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_chmod (path, 0600), ==, 0);
}

static void
set_link (Fixture *f, GKeyFile *config)
{
  g_key_file_set_string (config, "node:link", "from", "a");
  g_key_file_set_string (config, "node:link", "to", "b");
  g_key_file_set_string (config, "node:link", "token-file", f->token_file);
  g_key_file_set_integer (config, "node:link", "local-port", zlt_test_echo_get_port (f->h.echo));
  g_key_file_set_integer (config, "node:link", "remote-port", f->port_base);
  g_key_file_set_string (config, "node:link", "protocol", "tcp");
  g_key_file_set_string (config, "node:link", "exposure", "public");
}

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  g_autoptr (GKeyFile) a = g_key_file_new ();
  g_autoptr (GKeyFile) b = g_key_file_new ();
  g_autofree char *range = NULL;
  g_autofree char *listen = NULL;
  g_autofree char *token = NULL;

  f->port_base = PORT_BLOCKS_FIRST + 100 * g_random_int_range (0, PORT_BLOCKS);
  range = g_strdup_printf ("%u-%u", f->port_base, f->port_base + 99);
  zlt_test_harness_init (&f->h, range);
  f->server_port = zlt_test_closed_port ();
  f->url = g_strdup_printf ("ws://127.0.0.1:%u/tunnel/v1", f->server_port);
  f->token_file = g_build_filename (f->h.tmpdir, "link-token", NULL);
  token = g_strdup_printf ("node-link-%08x%08x%08x%08x", g_random_int (), g_random_int (),
                           g_random_int (), g_random_int ());
  write_token (f->token_file, token);
  f->states = g_ptr_array_new_with_free_func (g_free);

  /* b: a server whose token file knows nothing of the link */
  g_key_file_set_string (b, "daemon", "node-name", "b");
  listen = g_strdup_printf ("127.0.0.1:%u", f->server_port);
  g_key_file_set_string (b, "server", "listen", listen);
  g_key_file_set_string (b, "server", "public-bind-address", "127.0.0.1");
  g_key_file_set_string (b, "server", "port-range", range);
  g_key_file_set_integer (b, "server", "heartbeat-interval", 1);
  g_key_file_set_integer (b, "server", "heartbeat-timeout", 2);
  g_key_file_set_string (b, "server", "validator", "token-file");
  g_key_file_set_string (b, "validator:token-file", "path", f->h.token_file);
  set_link (f, b);
  f->b.config_path = write_config (f, b, "b.conf");

  /* a: no role of its own, only the link */
  g_key_file_set_string (a, "daemon", "node-name", "a");
  set_link (f, a);
  g_key_file_set_string (a, "node:link", "server", f->url);
  g_key_file_set_integer (a, "node:link", "heartbeat-interval", 1);
  g_key_file_set_integer (a, "node:link", "heartbeat-timeout", 2);
  g_key_file_set_double (a, "node:link", "backoff-min", 0.05);
  g_key_file_set_double (a, "node:link", "backoff-max", 0.5);
  f->a.config_path = write_config (f, a, "a.conf");

  start_bus (f, &f->a);
  start_bus (f, &f->b);
  start_daemon (&f->b);
  start_daemon (&f->a);
  follow_link (f);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  g_clear_object (&f->link);
  node_clear (&f->a);
  node_clear (&f->b);
  g_clear_pointer (&f->states, g_ptr_array_unref);
  g_free (f->url);
  g_free (f->token_file);
  zlt_test_harness_clear (&f->h);
}

static void
transfer (Fixture *f, guint16 port, gsize n_bytes)
{
  ZltTestTransfer t = { .port = port, .n_bytes = n_bytes, .n_connections = 2 };
  GThread *thread = zlt_test_transfer_start (&t);

  zlt_test_transfer_finish (thread, &t, timeout_ms (20000));
  if (!t.ok)
    g_error ("transfer through port %u failed: %s", port, t.error);
  g_free (t.error);
}

static void
wait_linked (Fixture *f)
{
  ZLT_TEST_WAIT_FOR (g_strcmp0 (link_state (f), "connected") == 0, timeout_ms (10000));
  ZLT_TEST_WAIT_FOR (service_open (&f->b, "node-link", f->port_base), timeout_ms (10000));
  ZLT_TEST_WAIT_FOR (node_in_state (&f->b, "link", "connected"), timeout_ms (10000));
}

/* ---- tests ---- */

static void
test_link (Fixture *f, gconstpointer data)
{
  ZltDbusNode *b_link;
  guint64 in, out;
  gint mark;

  wait_linked (f);
  g_assert_cmpstr (zlt_dbus_node_get_last_error (f->link), ==, "");
  g_assert_cmpstr (zlt_dbus_node_get_direction (f->link), ==, "outbound");
  g_assert_cmpstr (zlt_dbus_node_get_from_node (f->link), ==, "a");
  g_assert_cmpstr (zlt_dbus_node_get_to_node (f->link), ==, "b");
  g_assert_cmpstr (zlt_dbus_node_get_server (f->link), ==, f->url);
  g_assert_cmpuint (zlt_dbus_node_get_local_port (f->link), ==, zlt_test_echo_get_port (f->h.echo));
  g_assert_cmpuint (zlt_dbus_node_get_remote_port (f->link), ==, f->port_base);
  g_assert_cmpstr (zlt_dbus_node_get_protocol (f->link), ==, "tcp");
  g_assert_cmpstr (zlt_dbus_node_get_exposure (f->link), ==, "public");
  b_link = peek_node (&f->b, "link");
  g_assert_nonnull (b_link);
  g_assert_cmpstr (zlt_dbus_node_get_direction (b_link), ==, "inbound");

  /* traffic through b's public port reaches a's echo service */
  transfer (f, f->port_base, 256 * 1024);
  ZLT_TEST_WAIT_FOR (zlt_dbus_node_get_bytes_in (f->link) >= 2 * 256 * 1024
                         && zlt_dbus_node_get_bytes_out (f->link) >= 2 * 256 * 1024,
                     timeout_ms (5000));
  /* the heartbeat's round trip */
  ZLT_TEST_WAIT_FOR (zlt_dbus_node_get_latency_us (f->link) >= 0, timeout_ms (10000));
  in = zlt_dbus_node_get_bytes_in (f->link);
  out = zlt_dbus_node_get_bytes_out (f->link);

  /* b goes away: a's link is disconnected (and retrying), not failed */
  mark = (gint) f->states->len;
  stop_daemon (&f->b);
  ZLT_TEST_WAIT_FOR (state_seen (f, "disconnected", mark) >= 0, timeout_ms (10000));
  g_assert_cmpint (state_seen (f, "failed", mark), <, 0);
  g_assert_cmpstr (zlt_dbus_node_get_last_error (f->link), !=, "");

  /* b is back with the same config: connected again, and traffic flows */
  mark = state_seen (f, "disconnected", mark);
  start_daemon (&f->b);
  ZLT_TEST_WAIT_FOR (state_seen (f, "connected", mark) >= 0, timeout_ms (15000));
  wait_linked (f);
  transfer (f, f->port_base, 64 * 1024);
  ZLT_TEST_WAIT_FOR (zlt_dbus_node_get_bytes_in (f->link) > in
                         && zlt_dbus_node_get_bytes_out (f->link) > out,
                     timeout_ms (5000));
}

/* The from-node restarts (systemctl restart: SIGTERM, then start) well inside the
 * server's resume grace: its link comes back on the same port, never failed, and both
 * ends say connected. */
static void
test_from_restart (Fixture *f, gconstpointer data)
{
  wait_linked (f);
  transfer (f, f->port_base, 64 * 1024);

  g_clear_object (&f->link);
  stop_daemon (&f->a);
  /* the goodbye reached b: nothing is held for the old session */
  ZLT_TEST_WAIT_FOR (!node_in_state (&f->b, "link", "connected"), timeout_ms (10000));
  start_daemon (&f->a);
  g_ptr_array_set_size (f->states, 0);
  follow_link (f);
  wait_linked (f);
  g_assert_cmpint (state_seen (f, "failed", 0), <, 0);
  g_assert_cmpstr (zlt_dbus_node_get_last_error (f->link), ==, "");
  g_assert_cmpuint (zlt_dbus_node_get_remote_port (f->link), ==, f->port_base);
  transfer (f, f->port_base, 64 * 1024);
}

static void
add_node_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  *(GAsyncResult **) user_data = g_object_ref (result);
}

static gboolean
add_node_tunnel (Fixture *f, const char *name, GVariant *definition, char **path, GError **error)
{
  g_autoptr (GAsyncResult) result = NULL;

  zlt_dbus_manager_call_add_node_tunnel (f->a.manager, name, definition, G_DBUS_CALL_FLAGS_NONE, -1,
                                         NULL, add_node_done, &result);
  ZLT_TEST_WAIT_FOR (result != NULL, timeout_ms (10000));
  return zlt_dbus_manager_call_add_node_tunnel_finish (f->a.manager, path, result, error);
}

static gboolean
remove_node_tunnel (Fixture *f, const char *name, GError **error)
{
  g_autoptr (GAsyncResult) result = NULL;

  zlt_dbus_manager_call_remove_node_tunnel (f->a.manager, name, G_DBUS_CALL_FLAGS_NONE, -1, NULL,
                                            add_node_done, &result);
  ZLT_TEST_WAIT_FOR (result != NULL, timeout_ms (10000));
  return zlt_dbus_manager_call_remove_node_tunnel_finish (f->a.manager, result, error);
}

static void
assert_remote_error (const GError *error, const char *name)
{
  g_autofree char *remote = NULL;

  g_assert_nonnull (error);
  remote = g_dbus_error_get_remote_error (error);
  g_assert_cmpstr (remote, ==, name);
}

static GVariant *
definition (Fixture *f, const char *to, const char *token_file)
{
  g_auto (GVariantBuilder) b = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);

  g_variant_builder_add (&b, "{sv}", "from", g_variant_new_string ("a"));
  g_variant_builder_add (&b, "{sv}", "to", g_variant_new_string (to));
  g_variant_builder_add (&b, "{sv}", "server", g_variant_new_string (f->url));
  g_variant_builder_add (&b, "{sv}", "local-port",
                         g_variant_new_uint16 (zlt_test_echo_get_port (f->h.echo)));
  g_variant_builder_add (&b, "{sv}", "token-file", g_variant_new_string (token_file));
  g_variant_builder_add (&b, "{sv}", "exposure", g_variant_new_string ("internal"));
  g_variant_builder_add (&b, "{sv}", "backoff-min", g_variant_new_double (0.05));
  g_variant_builder_add (&b, "{sv}", "backoff-max", g_variant_new_double (0.5));
  return g_variant_builder_end (&b);
}

static void
test_add_remove (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *path = NULL;
  g_autofree char *bad_token = g_build_filename (f->h.tmpdir, "bad-token", NULL);
  ZltDbusNode *second;

  wait_linked (f);
  write_token (bad_token, "not-the-link-token");

  /* a definition with a token b does not know: added, then failed with the reason */
  g_assert_true (add_node_tunnel (f, "second", definition (f, "b", bad_token), &path, &error));
  g_assert_no_error (error);
  g_assert_true (g_str_has_prefix (path, BUS_PATH "/Node/"));
  ZLT_TEST_WAIT_FOR (has_node (&f->a, "second"), timeout_ms (10000));
  second = peek_node (&f->a, "second");
  g_assert_cmpstr (zlt_dbus_node_get_exposure (second), ==, "internal");
  ZLT_TEST_WAIT_FOR (node_in_state (&f->a, "second", "failed"), timeout_ms (10000));
  second = peek_node (&f->a, "second");
  g_assert_cmpstr (zlt_dbus_node_get_last_error (second), !=, "");
  g_test_message ("second: %s", zlt_dbus_node_get_last_error (second));

  /* the same name again */
  g_assert_false (add_node_tunnel (f, "second", definition (f, "b", bad_token), NULL, &error));
  assert_remote_error (error, ERROR_PREFIX "DuplicateName");
  g_clear_error (&error);

  /* bad definitions: a loop, an unknown key, a wrong type, a bad name */
  g_assert_false (add_node_tunnel (f, "loop", definition (f, "a", f->token_file), NULL, &error));
  assert_remote_error (error, ERROR_PREFIX "InvalidConfig");
  g_clear_error (&error);
  {
    g_auto (GVariantBuilder) b = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);

    g_variant_builder_add (&b, "{sv}", "colour", g_variant_new_string ("blue"));
    g_assert_false (add_node_tunnel (f, "odd", g_variant_builder_end (&b), NULL, &error));
    assert_remote_error (error, "org.freedesktop.DBus.Error.InvalidArgs");
    g_clear_error (&error);
  }
  {
    g_auto (GVariantBuilder) b = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);

    g_variant_builder_add (&b, "{sv}", "local-port", g_variant_new_string ("80"));
    g_assert_false (add_node_tunnel (f, "odd", g_variant_builder_end (&b), NULL, &error));
    assert_remote_error (error, "org.freedesktop.DBus.Error.InvalidArgs");
    g_clear_error (&error);
  }
  g_assert_false (
      add_node_tunnel (f, "no spaces", definition (f, "b", f->token_file), NULL, &error));
  assert_remote_error (error, ERROR_PREFIX "InvalidConfig");
  g_clear_error (&error);
  g_assert_false (has_node (&f->a, "loop"));

  /* removing */
  g_assert_true (remove_node_tunnel (f, "second", &error));
  g_assert_no_error (error);
  ZLT_TEST_WAIT_FOR (!has_node (&f->a, "second"), timeout_ms (10000));
  g_assert_false (remove_node_tunnel (f, "second", &error));
  assert_remote_error (error, ERROR_PREFIX "NotFound");
  g_clear_error (&error);

  /* the link was left alone */
  g_assert_cmpstr (link_state (f), ==, "connected");
  transfer (f, f->port_base, 16 * 1024);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  under_valgrind = g_getenv ("ZLT_UNDER_VALGRIND") != NULL;
  zlt_init ();

  g_test_add ("/node/link", Fixture, NULL, fixture_setup, test_link, fixture_teardown);
  g_test_add ("/node/from-restart", Fixture, NULL, fixture_setup, test_from_restart,
              fixture_teardown);
  g_test_add ("/node/add-remove", Fixture, NULL, fixture_setup, test_add_remove, fixture_teardown);
  return g_test_run ();
}
