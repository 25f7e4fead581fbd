/* test-daemon.c: zlayer-tunneld from the outside, on a private bus.
 *
 * Each test starts its own dbus-daemon (any user may connect, so a client can run as
 * another user), writes a config with a server role and an agent role exposing a
 * loopback echo service, starts the build-tree daemon with --session --config and
 * talks to it through the generated proxies and an object-manager client (the access
 * tests add an internal echo service, reachable only through access sessions, which
 * the daemon opens with its agent role's token). Clients that
 * are not ours (gdbus, busctl, and a Python client on the system's gi bindings) are run
 * against the same bus. Every test ends with SIGTERM and expects exit status 0; with
 * ZLT_UNDER_VALGRIND set (meson test --setup valgrind) the daemon itself runs under
 * valgrind, so any leak turns that exit status into 1. */
#include "config.h"

#include <glib/gstdio.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <string.h>
#include <unistd.h>

#include "zlt-dbus-generated.h"
#include <libsoup/soup.h>

#include "zlt-test-util.h"

#define BUS_NAME "org.zlayer.Tunnel1"
#define BUS_PATH "/org/zlayer/Tunnel1"
#define ERROR_PREFIX "org.zlayer.Tunnel1.Error."
/* Each fixture takes a block of 100 public ports below the ephemeral range, at random,
 * so runs of this test from several build directories rarely meet (the CLI test takes
 * its blocks from 20000 up). */
#define PORT_BLOCKS_FIRST 10000
#define PORT_BLOCKS 100
#define PYTHON "/usr/bin/python3"

static gboolean under_valgrind;

/* deadlines: valgrind slows the daemon down a lot */
static guint
timeout_ms (guint ms)
{
  return under_valgrind ? ms * 20 : ms;
}

typedef struct
{
  ZltTestHarness h;  /* tmpdir, token files, echo service */
  guint16 port_base; /* public ports: port_base .. port_base + 99 */
  GKeyFile *config;
  char *config_path;
  guint16 server_port;
  guint16 metrics_port;

  GSubprocess *bus_daemon;
  char *bus_address;
  GDBusConnection *bus;

  GSubprocess *daemon;
  gboolean daemon_exited;
  GDBusObjectManager *om;
  ZltDbusManager *manager;
  guint n_added;
  guint n_removed;
} Fixture;

/* child setup: a test that dies takes its bus and daemon along instead of leaving
 * them to hold the test runner's pipes */
static void
die_with_parent (gpointer user_data)
{
  prctl (PR_SET_PDEATHSIG, SIGTERM);
}

/* ---- the private bus ---- */

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
start_bus (Fixture *f)
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
  f->bus_daemon = g_subprocess_launcher_spawn (launcher, &error, "dbus-daemon", arg, "--nofork",
                                               "--print-address=1", NULL);
  g_assert_no_error (error);
  out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (f->bus_daemon));
  line = g_data_input_stream_read_line (out, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (line);
  f->bus_address = g_strdup (g_strstrip (line));
  f->bus = g_dbus_connection_new_for_address_sync (
      f->bus_address,
      G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT
          | G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
      NULL, NULL, &error);
  g_assert_no_error (error);
}

static void
wait_subprocess_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  gboolean *done = user_data;

  g_subprocess_wait_finish (G_SUBPROCESS (source), result, NULL);
  *done = TRUE;
}

static void
wait_subprocess (GSubprocess *process, guint ms)
{
  gboolean done = FALSE;

  g_subprocess_wait_async (process, NULL, wait_subprocess_done, &done);
  ZLT_TEST_WAIT_FOR (done, ms);
}

/* ---- the daemon ---- */

static void
write_config (Fixture *f)
{
  g_autoptr (GError) error = NULL;

  g_key_file_save_to_file (f->config, f->config_path, &error);
  g_assert_no_error (error);
}

static void
on_name_appeared (GDBusConnection *connection, const char *name, const char *owner,
                  gpointer user_data)
{
  *(gboolean *) user_data = TRUE;
}

static void
on_object_added (GDBusObjectManager *om, GDBusObject *object, gpointer user_data)
{
  ((Fixture *) user_data)->n_added++;
}

static void
on_object_removed (GDBusObjectManager *om, GDBusObject *object, gpointer user_data)
{
  ((Fixture *) user_data)->n_removed++;
}

/* A GDBusObjectManagerClient made while objects are being exported can see an object in
 * GetManagedObjects and again in a queued InterfacesAdded, and then replaces that
 * object's interface proxies, possibly with older property values. Tests therefore
 * look proxies up again after waiting, and the fixture makes a fresh client once the
 * daemon has settled. */
static void
make_object_manager (Fixture *f)
{
  g_autoptr (GError) error = NULL;

  g_clear_object (&f->om);
  f->om = zlt_dbus_object_manager_client_new_sync (
      f->bus, G_DBUS_OBJECT_MANAGER_CLIENT_FLAGS_DO_NOT_AUTO_START, BUS_NAME, BUS_PATH, NULL,
      &error);
  g_assert_no_error (error);
  g_signal_connect (f->om, "object-added", G_CALLBACK (on_object_added), f);
  g_signal_connect (f->om, "object-removed", G_CALLBACK (on_object_removed), f);
}

static void
start_daemon (Fixture *f)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GSubprocessLauncher) launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr (GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  const char *daemon = g_getenv ("ZLT_TUNNELD");
  gboolean appeared = FALSE;
  guint watch;

  g_assert_nonnull (daemon);
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
  g_ptr_array_add (argv, g_strdup (f->config_path));
  g_ptr_array_add (argv, NULL);

  g_subprocess_launcher_setenv (launcher, "DBUS_SESSION_BUS_ADDRESS", f->bus_address, TRUE);
  g_subprocess_launcher_setenv (launcher, "G_SLICE", "always-malloc", TRUE);
  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  f->daemon = g_subprocess_launcher_spawnv (launcher, (const char *const *) argv->pdata, &error);
  g_assert_no_error (error);

  watch = g_bus_watch_name_on_connection (f->bus, BUS_NAME, G_BUS_NAME_WATCHER_FLAGS_NONE,
                                          on_name_appeared, NULL, &appeared, NULL);
  ZLT_TEST_WAIT_FOR (appeared, timeout_ms (10000));
  g_bus_unwatch_name (watch);

  make_object_manager (f);
  f->manager = zlt_dbus_manager_proxy_new_sync (f->bus, G_DBUS_PROXY_FLAGS_DO_NOT_AUTO_START,
                                                BUS_NAME, BUS_PATH, NULL, &error);
  g_assert_no_error (error);
}

static void
stop_daemon (Fixture *f)
{
  if (f->daemon == NULL)
    return;
  g_subprocess_send_signal (f->daemon, SIGTERM);
  wait_subprocess (f->daemon, timeout_ms (10000));
  /* a clean exit: connections closed, and under valgrind no leaks */
  g_assert_true (g_subprocess_get_if_exited (f->daemon));
  g_assert_cmpint (g_subprocess_get_exit_status (f->daemon), ==, 0);
  g_clear_object (&f->daemon);
}

/* ---- finding objects ---- */

static ZltDbusTunnel *
find_tunnel (Fixture *f, const char *role)
{
  GList *objects = g_dbus_object_manager_get_objects (f->om);
  ZltDbusTunnel *found = NULL;

  for (GList *l = objects; l != NULL; l = l->next)
    {
      ZltDbusTunnel *tunnel = zlt_dbus_object_peek_tunnel (ZLT_DBUS_OBJECT (l->data));
      if (tunnel != NULL && g_strcmp0 (zlt_dbus_tunnel_get_role (tunnel), role) == 0)
        found = tunnel;
    }
  g_list_free_full (objects, g_object_unref);
  /* the manager holds the object */
  return found;
}

static const char *
proxy_path (gpointer proxy)
{
  return g_dbus_proxy_get_object_path (G_DBUS_PROXY (proxy));
}

/* The service called @name on the tunnel of @role ("agent" or "server"). */
static ZltDbusService *
find_service (Fixture *f, const char *name, const char *role)
{
  GList *objects = g_dbus_object_manager_get_objects (f->om);
  ZltDbusTunnel *tunnel = find_tunnel (f, role);
  ZltDbusService *found = NULL;

  for (GList *l = objects; l != NULL && tunnel != NULL; l = l->next)
    {
      ZltDbusService *service = zlt_dbus_object_peek_service (ZLT_DBUS_OBJECT (l->data));
      if (service != NULL && g_strcmp0 (zlt_dbus_service_get_name (service), name) == 0
          && g_strcmp0 (zlt_dbus_service_get_tunnel (service), proxy_path (tunnel)) == 0)
        found = service;
    }
  g_list_free_full (objects, g_object_unref);
  return found;
}

static gboolean
service_registered (Fixture *f, const char *name)
{
  ZltDbusService *agent = find_service (f, name, "agent");
  ZltDbusService *server = find_service (f, name, "server");

  return agent != NULL && server != NULL && zlt_dbus_service_get_assigned_port (agent) != 0
         && zlt_dbus_service_get_assigned_port (server)
                == zlt_dbus_service_get_assigned_port (agent);
}

static gboolean
tunnel_connected (Fixture *f, const char *role)
{
  ZltDbusTunnel *tunnel = find_tunnel (f, role);

  return tunnel != NULL && g_strcmp0 (zlt_dbus_tunnel_get_state (tunnel), "connected") == 0;
}

static void
assert_remote_error (const GError *error, const char *name)
{
  g_autofree char *remote = NULL;

  g_assert_nonnull (error);
  remote = g_dbus_error_get_remote_error (error);
  g_assert_cmpstr (remote, ==, name);
}

static void
ping_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GVariant) reply = NULL;
  g_autoptr (GError) error = NULL;

  reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);
  g_assert_no_error (error);
  *(gboolean *) user_data = TRUE;
}

/* Dispatches every signal the daemon sent so far. */
static void
settle (Fixture *f)
{
  gboolean done = FALSE;

  g_dbus_connection_call (f->bus, BUS_NAME, BUS_PATH, "org.freedesktop.DBus.Peer", "Ping", NULL,
                          NULL, G_DBUS_CALL_FLAGS_NONE, -1, NULL, ping_done, &done);
  ZLT_TEST_WAIT_FOR (done, timeout_ms (10000));
}

/* ---- fixture ---- */

/* ADD_ACCESS's fixture data: an internal service as well */
static const char access_service[] = "iecho";

static gboolean
internal_service_registered (Fixture *f, const char *name)
{
  ZltDbusService *agent = find_service (f, name, "agent");
  ZltDbusService *server = find_service (f, name, "server");

  return agent != NULL && server != NULL
         && g_strcmp0 (zlt_dbus_service_get_expose (server), "internal") == 0;
}

static gboolean
settled (Fixture *f, const char *internal)
{
  return tunnel_connected (f, "agent") && tunnel_connected (f, "server")
         && service_registered (f, "echo")
         && (internal == NULL || internal_service_registered (f, internal));
}

/* Until both ends are up with their services. A client made while objects are being
 * exported can keep an object's older values (see make_object_manager) and then hear of
 * no further change, so a client that has not seen it settle within a while is
 * replaced by a fresh one. */
static void
wait_settled (Fixture *f, const char *internal)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) timeout_ms (10000) * 1000;

  while (!settled (f, internal) && g_get_monotonic_time () < deadline)
    {
      gint64 refresh = g_get_monotonic_time () + 500 * 1000;

      ZLT_TEST_WAIT_FOR (settled (f, internal) || g_get_monotonic_time () >= refresh,
                         timeout_ms (10000));
      if (!settled (f, internal))
        make_object_manager (f);
    }
  if (!settled (f, internal))
    g_error ("not settled after %u ms: agent tunnel %s, server tunnel %s, echo %s, internal %s",
             timeout_ms (10000), tunnel_connected (f, "agent") ? "connected" : "not connected",
             tunnel_connected (f, "server") ? "connected" : "not connected",
             service_registered (f, "echo") ? "registered" : "not registered",
             internal == NULL                            ? "-"
             : internal_service_registered (f, internal) ? "registered"
                                                         : "not registered");
}

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  g_autofree char *url = NULL;

  g_autofree char *range = NULL;

  f->port_base = PORT_BLOCKS_FIRST + 100 * g_random_int_range (0, PORT_BLOCKS);
  range = g_strdup_printf ("%u-%u", f->port_base, f->port_base + 99);
  zlt_test_harness_init (&f->h, range);
  f->server_port = zlt_test_closed_port ();
  f->config_path = g_build_filename (f->h.tmpdir, "zlayer-tunnel.conf", NULL);
  f->config = g_key_file_new ();
  {
    g_autofree char *listen = g_strdup_printf ("127.0.0.1:%u", f->server_port);
    g_key_file_set_string (f->config, "server", "listen", listen);
  }
  g_key_file_set_string (f->config, "server", "public-bind-address", "127.0.0.1");
  g_key_file_set_string (f->config, "server", "port-range", range);
  g_key_file_set_string (f->config, "server", "validator", "token-file");
  g_key_file_set_string (f->config, "validator:token-file", "path", f->h.token_file);
  url = g_strdup_printf ("ws://127.0.0.1:%u/tunnel/v1", f->server_port);
  g_key_file_set_string (f->config, "agent", "server", url);
  g_key_file_set_string (f->config, "agent", "token-file", f->h.agent_token_file);
  g_key_file_set_double (f->config, "agent", "backoff-min", 0.05);
  g_key_file_set_double (f->config, "agent", "backoff-max", 0.5);
  g_key_file_set_string (f->config, "service:echo", "protocol", "tcp");
  g_key_file_set_integer (f->config, "service:echo", "local-port",
                          zlt_test_echo_get_port (f->h.echo));
  if (data != NULL)
    {
      g_autofree char *group = g_strconcat ("service:", (const char *) data, NULL);

      g_key_file_set_string (f->config, group, "protocol", "tcp");
      g_key_file_set_integer (f->config, group, "local-port", zlt_test_echo_get_port (f->h.echo));
      g_key_file_set_string (f->config, group, "expose", "internal");
    }
  /* the Prometheus endpoint, on a port picked here (found free) */
  f->metrics_port = zlt_test_closed_port ();
  {
    g_autofree char *listen = g_strdup_printf ("127.0.0.1:%u", f->metrics_port);
    g_key_file_set_string (f->config, "daemon", "metrics-listen", listen);
  }
  write_config (f);

  start_bus (f);
  start_daemon (f);
  wait_settled (f, data);
  /* nothing is being exported now: a fresh client gets a clean snapshot */
  make_object_manager (f);
  settle (f);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  stop_daemon (f);
  g_clear_object (&f->manager);
  g_clear_object (&f->om);
  if (f->bus != NULL)
    g_dbus_connection_close_sync (f->bus, NULL, NULL);
  g_clear_object (&f->bus);
  if (f->bus_daemon != NULL)
    {
      g_subprocess_send_signal (f->bus_daemon, SIGTERM);
      wait_subprocess (f->bus_daemon, 10000);
      g_clear_object (&f->bus_daemon);
    }
  g_free (f->bus_address);
  g_key_file_unref (f->config);
  g_free (f->config_path);
  zlt_test_harness_clear (&f->h);
}

/* ---- running other programs ---- */

typedef struct
{
  char *out;
  char *err;
  gboolean done;
} ToolRun;

static void
tool_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  ToolRun *run = user_data;
  g_autoptr (GError) error = NULL;

  g_subprocess_communicate_utf8_finish (G_SUBPROCESS (source), result, &run->out, &run->err,
                                        &error);
  g_assert_no_error (error);
  run->done = TRUE;
}

/* Runs @argv with the test bus as the session bus while this process keeps serving
 * (the echo service lives here); returns the exit status. */
static int
run_tool (Fixture *f, const char *const *argv, char **out, char **err)
{
  g_autoptr (GSubprocessLauncher) launcher
      = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE);
  g_autoptr (GSubprocess) process = NULL;
  g_autoptr (GError) error = NULL;
  ToolRun run = { 0 };

  g_subprocess_launcher_setenv (launcher, "DBUS_SESSION_BUS_ADDRESS", f->bus_address, TRUE);
  g_subprocess_launcher_unsetenv (launcher, "DBUS_SYSTEM_BUS_ADDRESS");
  process = g_subprocess_launcher_spawnv (launcher, argv, &error);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8_async (process, NULL, NULL, tool_done, &run);
  ZLT_TEST_WAIT_FOR (run.done, timeout_ms (60000));
  wait_subprocess (process, 10000);
  g_test_message ("%s: %s%s", argv[0], run.out ? run.out : "", run.err ? run.err : "");
  if (out != NULL)
    *out = g_steal_pointer (&run.out);
  if (err != NULL)
    *err = g_steal_pointer (&run.err);
  g_free (run.out);
  g_free (run.err);
  return g_subprocess_get_if_exited (process) ? g_subprocess_get_exit_status (process) : -1;
}

static char *
python_client_path (void)
{
  return g_test_build_filename (G_TEST_DIST, "daemon", "client.py", NULL);
}

/* ---- tests ---- */

/* Both roles' tunnels and services are objects, linked both ways; Manager describes
 * the roles. */
static void
test_objects (Fixture *f, gconstpointer data)
{
  ZltDbusTunnel *agent = find_tunnel (f, "agent");
  ZltDbusTunnel *server = find_tunnel (f, "server");
  ZltDbusService *agent_echo = find_service (f, "echo", "agent");
  ZltDbusService *server_echo = find_service (f, "echo", "server");
  const char *const *roles = zlt_dbus_manager_get_roles (f->manager);
  g_auto (GStrv) tunnels = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *address = g_strdup_printf ("127.0.0.1:%u", f->server_port);
  const char *const *services;

  /* the same tunnel seen from both ends */
  g_assert_true (g_str_has_prefix (proxy_path (agent), BUS_PATH "/Tunnel/"));
  g_assert_cmpstr (zlt_dbus_tunnel_get_id (agent), ==, zlt_dbus_tunnel_get_id (server));
  g_assert_cmpstr (zlt_dbus_tunnel_get_token_name (server), ==, "test");
  g_assert_true (g_str_has_prefix (zlt_dbus_tunnel_get_peer_address (server), "127.0.0.1:"));
  g_assert_cmpint (zlt_dbus_tunnel_get_created (server), >, 0);
  g_assert_cmpstr (zlt_dbus_tunnel_get_last_error (agent), ==, "");

  services = zlt_dbus_tunnel_get_services (agent);
  g_assert_cmpuint (g_strv_length ((GStrv) services), ==, 1);
  g_assert_cmpstr (services[0], ==, proxy_path (agent_echo));
  services = zlt_dbus_tunnel_get_services (server);
  g_assert_cmpuint (g_strv_length ((GStrv) services), ==, 1);
  g_assert_cmpstr (services[0], ==, proxy_path (server_echo));

  g_assert_cmpstr (zlt_dbus_service_get_protocol (agent_echo), ==, "tcp");
  g_assert_cmpstr (zlt_dbus_service_get_expose (agent_echo), ==, "public");
  g_assert_cmpuint (zlt_dbus_service_get_local_port (agent_echo), ==,
                    zlt_test_echo_get_port (f->h.echo));
  g_assert_cmpuint (zlt_dbus_service_get_assigned_port (server_echo), >=, f->port_base);
  g_assert_cmpuint (zlt_dbus_service_get_assigned_port (server_echo), <=, f->port_base + 99);
  g_assert_cmpstr (zlt_dbus_service_get_id (agent_echo), ==, zlt_dbus_service_get_id (server_echo));

  g_assert_cmpstr (zlt_dbus_manager_get_version (f->manager), ==, PACKAGE_VERSION);
  g_assert_nonnull (roles);
  g_assert_true (g_strv_contains (roles, "server"));
  g_assert_true (g_strv_contains (roles, "agent"));
  g_assert_cmpstr (zlt_dbus_manager_get_server_address (f->manager), ==, address);
  g_assert_cmpstr (zlt_dbus_manager_get_agent_state (f->manager), ==, "connected");
  g_assert_true (g_str_has_prefix (zlt_dbus_manager_get_agent_server (f->manager), "ws://"));
  g_assert_cmpuint (zlt_dbus_manager_get_agent_sessions (f->manager), ==, 1);
  g_assert_cmpuint (zlt_dbus_manager_get_ntunnels (f->manager), ==, 2);

  zlt_dbus_manager_call_list_tunnels_sync (f->manager, G_DBUS_CALL_FLAGS_NONE, -1, &tunnels, NULL,
                                           &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_strv_length (tunnels), ==, 2);
  g_assert_true (g_strv_contains ((const char *const *) tunnels, proxy_path (agent)));
  g_assert_true (g_strv_contains ((const char *const *) tunnels, proxy_path (server)));
}

typedef struct
{
  guint n_signals;    /* PropertiesChanged carrying BytesIn */
  guint64 last_value; /* as it was signalled */
} CounterWatch;

static void
on_properties_changed (GDBusProxy *proxy, GVariant *changed, const char *const *invalidated,
                       gpointer user_data)
{
  CounterWatch *watch = user_data;
  guint64 value;

  if (g_variant_lookup (changed, "BytesIn", "t", &value))
    {
      g_assert_cmpuint (value, >=, watch->last_value);
      watch->n_signals++;
      watch->last_value = value;
    }
}

/* Byte counters move in PropertiesChanged while bytes flow, a few times a second at
 * most. */
static void
test_counters (Fixture *f, gconstpointer data)
{
  ZltDbusService *server_echo = find_service (f, "echo", "server");
  ZltDbusService *agent_echo = find_service (f, "echo", "agent");
  ZltDbusTunnel *server = find_tunnel (f, "server");
  CounterWatch service_watch = { 0 }, tunnel_watch = { 0 };
  ZltTestTransfer transfer = { 0 };
  const gsize n_bytes = 8 * 1024 * 1024;
  GThread *thread;
  gint64 started, elapsed_ms;
  guint bound;

  g_signal_connect (server_echo, "g-properties-changed", G_CALLBACK (on_properties_changed),
                    &service_watch);
  g_signal_connect (server, "g-properties-changed", G_CALLBACK (on_properties_changed),
                    &tunnel_watch);
  started = g_get_monotonic_time ();
  transfer.port = zlt_dbus_service_get_assigned_port (server_echo);
  transfer.n_bytes = n_bytes;
  transfer.n_connections = 1;
  thread = zlt_test_transfer_start (&transfer);
  zlt_test_transfer_finish (thread, &transfer, timeout_ms (60000));
  g_assert_null (transfer.error);
  g_assert_true (transfer.ok);

  /* the last update follows within the coalescing interval */
  ZLT_TEST_WAIT_FOR (zlt_dbus_service_get_bytes_in (server_echo) >= n_bytes
                         && zlt_dbus_service_get_bytes_out (server_echo) >= n_bytes
                         && zlt_dbus_service_get_bytes_in (agent_echo) >= n_bytes
                         && zlt_dbus_service_get_bytes_out (agent_echo) >= n_bytes
                         && zlt_dbus_tunnel_get_bytes_in (server) >= n_bytes
                         && zlt_dbus_service_get_total_connections (server_echo) == 1
                         && zlt_dbus_service_get_active_connections (server_echo) == 0,
                     timeout_ms (5000));
  elapsed_ms = (g_get_monotonic_time () - started) / 1000;
  g_signal_handlers_disconnect_by_data (server_echo, &service_watch);
  g_signal_handlers_disconnect_by_data (server, &tunnel_watch);

  g_assert_cmpuint (service_watch.n_signals, >=, 1);
  g_assert_cmpuint (service_watch.last_value, ==, zlt_dbus_service_get_bytes_in (server_echo));
  g_assert_cmpuint (tunnel_watch.n_signals, >=, 1);
  /* coalesced: at most one update per 250 ms, plus the final flush and some slack */
  bound = (guint) (elapsed_ms / 250) + 3;
  g_test_message ("%u service updates, %u tunnel updates in %" G_GINT64_FORMAT " ms",
                  service_watch.n_signals, tunnel_watch.n_signals, elapsed_ms);
  g_assert_cmpuint (service_watch.n_signals, <=, bound);
  g_assert_cmpuint (tunnel_watch.n_signals, <=, bound);
}

static void
send_all_nonblocking (GSocket *socket, const guint8 *data, gsize len)
{
  while (len > 0)
    {
      g_autoptr (GError) error = NULL;
      gssize n = g_socket_send (socket, (const char *) data, len, NULL, &error);

      if (n < 0)
        {
          g_assert_error (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK);
          /* the tunnel drains it: both ends live in other processes or this context */
          g_main_context_iteration (NULL, FALSE);
          continue;
        }
      data += n;
      len -= (gsize) n;
    }
}

static gsize
receive_available (GSocket *socket, gsize *received)
{
  char buf[65536];
  gssize n;

  while ((n = g_socket_receive (socket, buf, sizeof buf, NULL, NULL)) > 0)
    *received += (gsize) n;
  return *received;
}

/* One connection stays open while the test sends a chunk, waits for its echo and then
 * for the counters to reach it through PropertiesChanged, three times: the counters
 * are live, not settled when the connection closes. */
static void
test_counters_live (Fixture *f, gconstpointer data)
{
  ZltDbusService *server_echo = find_service (f, "echo", "server");
  ZltDbusService *agent_echo = find_service (f, "echo", "agent");
  ZltDbusTunnel *server = find_tunnel (f, "server");
  CounterWatch watch = { 0 };
  g_autoptr (GError) error = NULL;
  g_autoptr (GSocket) socket = NULL;
  g_autoptr (GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) address
      = g_inet_socket_address_new (lo, zlt_dbus_service_get_assigned_port (server_echo));
  guint8 chunk[32768];
  gsize sent = 0, received = 0;

  memset (chunk, 'z', sizeof chunk);
  g_signal_connect (server_echo, "g-properties-changed", G_CALLBACK (on_properties_changed),
                    &watch);
  socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);
  g_assert_no_error (error);
  g_socket_connect (socket, address, NULL, &error);
  g_assert_no_error (error);
  g_socket_set_blocking (socket, FALSE);

  for (guint round = 1; round <= 3; round++)
    {
      send_all_nonblocking (socket, chunk, sizeof chunk);
      sent += sizeof chunk;
      ZLT_TEST_WAIT_FOR (receive_available (socket, &received) >= sent, timeout_ms (10000));
      ZLT_TEST_WAIT_FOR (watch.last_value >= sent
                             && zlt_dbus_service_get_active_connections (server_echo) == 1
                             && zlt_dbus_service_get_bytes_in (agent_echo) >= sent
                             && zlt_dbus_tunnel_get_bytes_in (server) >= sent,
                         timeout_ms (5000));
      g_assert_cmpuint (watch.n_signals, >=, round);
    }
  g_assert_cmpuint (received, ==, sent);
  g_socket_close (socket, NULL);
  ZLT_TEST_WAIT_FOR (zlt_dbus_service_get_active_connections (server_echo) == 0
                         && zlt_dbus_service_get_active_connections (agent_echo) == 0,
                     timeout_ms (5000));
  g_assert_cmpuint (zlt_dbus_service_get_total_connections (server_echo), ==, 1);
  g_signal_handlers_disconnect_by_data (server_echo, &watch);
}

/* ---- metrics ---- */

typedef struct
{
  guint status;
  char *body;
  char *content_type;
  gboolean done;
} Scrape;

static void
scrape_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Scrape *scrape = user_data;
  g_autoptr (GBytes) body = soup_session_send_and_read_finish (SOUP_SESSION (source), result, NULL);

  if (body != NULL)
    scrape->body = g_strndup (g_bytes_get_data (body, NULL), g_bytes_get_size (body));
  scrape->done = TRUE;
}

/* GET @path on the daemon's metrics port: the status, and the body */
static guint
scrape (Fixture *f, const char *path, char **body, char **content_type)
{
  g_autoptr (SoupSession) session = soup_session_new ();
  g_autofree char *url = g_strdup_printf ("http://127.0.0.1:%u%s", f->metrics_port, path);
  g_autoptr (SoupMessage) msg = soup_message_new ("GET", url);
  Scrape result = { 0 };

  soup_session_send_and_read_async (session, msg, G_PRIORITY_DEFAULT, NULL, scrape_done, &result);
  ZLT_TEST_WAIT_FOR (result.done, timeout_ms (10000));
  if (content_type != NULL)
    *content_type = g_strdup (
        soup_message_headers_get_content_type (soup_message_get_response_headers (msg), NULL));
  if (body != NULL)
    *body = g_steal_pointer (&result.body);
  g_free (result.body);
  return soup_message_get_status (msg);
}

/* the value of the sample @name (with its labels, as written) in @text, -1 if absent */
static double
sample (const char *text, const char *name)
{
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);

  for (guint i = 0; lines[i] != NULL; i++)
    if (g_str_has_prefix (lines[i], name) && lines[i][strlen (name)] == ' ')
      return g_ascii_strtod (lines[i] + strlen (name) + 1, NULL);
  return -1;
}

/* The text format's rules: a family's TYPE comes before its samples, once, and its
 * samples are one group. */
static void
assert_exposition_format (const char *text)
{
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  g_autoptr (GHashTable) typed = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr (GHashTable) done = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autofree char *current = NULL;

  for (guint i = 0; lines[i] != NULL; i++)
    {
      const char *line = lines[i];
      g_autofree char *family = NULL;

      if (line[0] == '\0' || g_str_has_prefix (line, "# HELP "))
        continue;
      if (g_str_has_prefix (line, "# TYPE "))
        {
          g_auto (GStrv) parts = g_strsplit (line + 7, " ", 2);

          g_assert_false (g_hash_table_contains (typed, parts[0]));
          g_hash_table_add (typed, g_strdup (parts[0]));
          continue;
        }
      family = g_strndup (line, strcspn (line, "{ "));
      g_assert_true (g_hash_table_contains (typed, family));
      if (g_strcmp0 (family, current) != 0)
        {
          g_assert_false (g_hash_table_contains (done, family));
          if (current != NULL)
            g_hash_table_add (done, g_steal_pointer (&current));
          current = g_strdup (family);
        }
    }
}

static gint reset_done;

/* Connects to the port, has one byte echoed, then resets: NULL, or what went wrong */
static gpointer
echo_then_reset_thread (gpointer data)
{
  g_autoptr (GSocketClient) client = g_socket_client_new ();
  g_autoptr (GSocketConnection) conn = NULL;
  g_autoptr (GError) error = NULL;
  char byte = 'x';
  gpointer result = NULL;

  g_socket_client_set_timeout (client, 10);
  conn = g_socket_client_connect_to_host (client, "127.0.0.1", GPOINTER_TO_UINT (data), NULL,
                                          &error);
  if (conn == NULL
      || !g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (conn)), &byte, 1,
                                     NULL, NULL, &error)
      || !g_input_stream_read_all (g_io_stream_get_input_stream (G_IO_STREAM (conn)), &byte, 1,
                                   NULL, NULL, &error))
    result = g_strdup (error->message);
  else
    zlt_net_close_with_reset (G_IO_STREAM (conn));
  g_atomic_int_set (&reset_done, 1);
  return result;
}

/* The Prometheus endpoint answers what the roles say, and its counters grow with the
 * connections carried. */
static void
test_metrics (Fixture *f, gconstpointer data)
{
  ZltDbusService *server_echo = find_service (f, "echo", "server");
  g_autofree char *before = NULL;
  g_autofree char *after = NULL;
  g_autofree char *type = NULL;
  ZltTestTransfer transfer = { 0 };
  GThread *thread;

  g_assert_cmpuint (scrape (f, "/metrics", &before, &type), ==, 200);
  g_assert_true (g_str_has_prefix (type, "text/plain"));
  g_test_message ("%s", before);
  assert_exposition_format (before);
  g_assert_cmpfloat (sample (before, "zlt_up"), ==, 1);
  g_assert_cmpfloat (sample (before, "zlt_tunnels{state=\"connected\"}"), ==, 1);
  g_assert_cmpfloat (sample (before, "zlt_services{role=\"server\",protocol=\"tcp\"}"), ==, 1);
  g_assert_cmpfloat (sample (before, "zlt_services{role=\"agent\",protocol=\"tcp\"}"), ==, 1);
  g_assert_cmpfloat (sample (before, "zlt_agent_connected"), ==, 1);
  g_assert_nonnull (strstr (before, "# TYPE zlt_connections_total counter"));

  transfer.port = zlt_dbus_service_get_assigned_port (server_echo);
  transfer.n_bytes = 64 * 1024;
  transfer.n_connections = 2;
  thread = zlt_test_transfer_start (&transfer);
  zlt_test_transfer_finish (thread, &transfer, timeout_ms (30000));
  g_assert_true (transfer.ok);
  ZLT_TEST_WAIT_FOR (zlt_dbus_service_get_total_connections (server_echo) == 2
                         && zlt_dbus_service_get_active_connections (server_echo) == 0,
                     timeout_ms (5000));
  g_assert_cmpuint (scrape (f, "/metrics", &after, NULL), ==, 200);
  g_assert_cmpfloat (sample (after, "zlt_connections_total{role=\"server\"}"), ==,
                     sample (before, "zlt_connections_total{role=\"server\"}") + 2);
  g_assert_cmpfloat (sample (after, "zlt_bytes_total{role=\"server\",direction=\"in\"}"), >=,
                     2 * 64 * 1024);
  g_assert_cmpfloat (sample (after, "zlt_connections_active{role=\"agent\"}"), ==, 0);

  /* a public client that resets its connection mid-relay is a relay error */
  {
    double errors_before = sample (after, "zlt_relay_errors_total{role=\"server\"}");
    double errors_now = errors_before;
    gint64 until = g_get_monotonic_time () + timeout_ms (10000) * 1000;
    guint port = zlt_dbus_service_get_assigned_port (server_echo);
    GThread *resetter;

    g_assert_cmpfloat (errors_before, >=, 0);
    /* in a thread: the echo service runs on this main loop */
    resetter = g_thread_new ("reset", echo_then_reset_thread, GUINT_TO_POINTER (port));
    ZLT_TEST_WAIT_FOR (g_atomic_int_get (&reset_done), timeout_ms (10000));
    g_assert_null (g_thread_join (resetter));
    while (errors_now < errors_before + 1 && g_get_monotonic_time () < until)
      {
        g_clear_pointer (&after, g_free);
        g_assert_cmpuint (scrape (f, "/metrics", &after, NULL), ==, 200);
        errors_now = sample (after, "zlt_relay_errors_total{role=\"server\"}");
      }
    g_assert_cmpfloat (errors_now, ==, errors_before + 1);
  }

  /* a refused login is counted by its reason (raw tokens are off by default) */
  g_assert_cmpfloat (sample (after, "zlt_auth_failures_total{reason=\"bad_token\"}"), ==, 0);
  {
    g_autoptr (ZltTestWs) ws = zlt_test_ws_connect (f->server_port, "/tunnel/v1");
    g_autoptr (ZltMessage) auth = NULL;
    ZltUuid client_id;

    zlt_uuid_generate (&client_id);
    auth = zlt_message_new_auth ("not-a-token-anyone-holds", &client_id);
    zlt_test_ws_send_message (ws, auth);
    zlt_test_ws_wait_closed (ws, timeout_ms (10000));
  }
  g_clear_pointer (&after, g_free);
  g_assert_cmpuint (scrape (f, "/metrics", &after, NULL), ==, 200);
  g_assert_cmpfloat (sample (after, "zlt_auth_failures_total{reason=\"legacy_refused\"}"), ==,
                     sample (before, "zlt_auth_failures_total{reason=\"legacy_refused\"}") + 1);

  /* nothing else is served */
  g_assert_cmpuint (scrape (f, "/", NULL, NULL), ==, 404);
}

/* ---- a quiet bus ---- */

typedef struct
{
  guint16 port;
  guint max_connections;
  gint64 max_us;
  guint n_done; /* echoed and closed */
  char *error;
  gint finished;
} Storm;

/* Sequential connections as fast as they go, each one byte echoed: bounded in count and
 * in time. */
static gpointer
storm_thread (gpointer user_data)
{
  Storm *storm = user_data;
  gint64 until = g_get_monotonic_time () + storm->max_us;
  g_autoptr (GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) address = g_inet_socket_address_new (lo, storm->port);

  while (storm->n_done < storm->max_connections && g_get_monotonic_time () < until)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (GSocket) socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                                                 G_SOCKET_PROTOCOL_TCP, &error);
      char byte = 'x';

      if (socket == NULL)
        goto fail;
      g_socket_set_timeout (socket, 10);
      if (!g_socket_connect (socket, address, NULL, &error)
          || g_socket_send (socket, &byte, 1, NULL, &error) != 1
          || g_socket_receive (socket, &byte, 1, NULL, &error) != 1)
        goto fail;
      g_socket_close (socket, NULL);
      storm->n_done++;
      continue;
    fail:
      storm->error = g_strdup (error != NULL ? error->message : "short read");
      break;
    }
  g_atomic_int_set (&storm->finished, 1);
  return NULL;
}

static void
count_signal (GDBusConnection *connection, const char *sender, const char *path, const char *iface,
              const char *signal, GVariant *parameters, gpointer user_data)
{
  (*(guint *) user_data)++;
}

/* Hundreds of connections a second through the daemon's server and agent: the
 * counters they move reach the bus at most four times a second per object, so the
 * PropertiesChanged rate stays bounded whatever the connection rate. */
static void
test_quiet_bus (Fixture *f, gconstpointer data)
{
  ZltDbusService *server_echo = find_service (f, "echo", "server");
  Storm storm = { 0 };
  guint n_signals = 0, subscription, bound;
  GThread *thread;
  gint64 started, elapsed_ms;

  subscription = g_dbus_connection_signal_subscribe (
      f->bus, NULL, "org.freedesktop.DBus.Properties", "PropertiesChanged", NULL, NULL,
      G_DBUS_SIGNAL_FLAGS_NONE, count_signal, &n_signals, NULL);
  storm.port = zlt_dbus_service_get_assigned_port (server_echo);
  storm.max_connections = under_valgrind ? 100 : 3000;
  storm.max_us = 3 * G_USEC_PER_SEC;
  started = g_get_monotonic_time ();
  thread = g_thread_new ("storm", storm_thread, &storm);
  ZLT_TEST_WAIT_FOR (g_atomic_int_get (&storm.finished), timeout_ms (30000));
  g_thread_join (thread);
  g_assert_null (storm.error);
  /* the last coalesced updates come out within one interval */
  ZLT_TEST_WAIT_FOR (zlt_dbus_service_get_total_connections (server_echo) == storm.n_done
                         && zlt_dbus_service_get_active_connections (server_echo) == 0,
                     timeout_ms (5000));
  elapsed_ms = (g_get_monotonic_time () - started) / 1000;
  g_dbus_connection_signal_unsubscribe (f->bus, subscription);

  /* five objects change (each end's tunnel and service, and the manager): at most four
   * updates a second each, plus an immediate first one and the final flush */
  bound = 5 * ((guint) (elapsed_ms / 250) + 2);
  g_test_message ("%u connections in %" G_GINT64_FORMAT " ms (%.0f/s): %u PropertiesChanged "
                  "(%.1f per connection, %.0f/s; bound %u)",
                  storm.n_done, elapsed_ms, storm.n_done * 1000.0 / elapsed_ms, n_signals,
                  (double) n_signals / MAX (storm.n_done, 1), n_signals * 1000.0 / elapsed_ms,
                  bound);
  g_assert_cmpuint (storm.n_done, >=, under_valgrind ? 10 : 200);
  g_assert_cmpuint (n_signals, <=, bound);
}

static void
expect_error (GError **error, const char *name)
{
  assert_remote_error (*error, name);
  g_clear_error (error);
}

/* State and LastError of the service at @path, read from the daemon now (not from a
 * proxy's cache, which follows signals) */
static void
assert_service_state (Fixture *f, const char *path, const char *state, const char *last_error)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = NULL;
  g_autoptr (GVariant) dict = NULL;
  const char *value = NULL;

  reply = g_dbus_connection_call_sync (f->bus, BUS_NAME, path, "org.freedesktop.DBus.Properties",
                                       "GetAll", g_variant_new ("(s)", BUS_NAME ".Service"),
                                       G_VARIANT_TYPE ("(a{sv})"), G_DBUS_CALL_FLAGS_NONE, -1, NULL,
                                       &error);
  g_assert_no_error (error);
  dict = g_variant_get_child_value (reply, 0);
  g_assert_true (g_variant_lookup (dict, "State", "&s", &value));
  g_assert_cmpstr (value, ==, state);
  g_assert_true (g_variant_lookup (dict, "LastError", "&s", &value));
  g_assert_cmpstr (value, ==, last_error);
}

/* Expose of @name on @remote_port fails with the server's refusal @error_name */
static void
expose_refused (Fixture *f, const char *name, guint16 local_port, guint remote_port,
                const char *error_name)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *path = NULL;
  GVariantBuilder options;

  g_variant_builder_init (&options, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&options, "{sv}", "remote-port", g_variant_new_uint16 (remote_port));
  zlt_dbus_manager_call_expose_sync (f->manager, name, local_port, g_variant_builder_end (&options),
                                     G_DBUS_CALL_FLAGS_NONE, -1, &path, NULL, &error);
  assert_remote_error (error, error_name);
  g_assert_null (path);
}

/* Expose and Unexpose make objects come and go on both ends; bad calls get named
 * errors. */
static void
test_expose (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *path = NULL;
  g_autofree char *taken = NULL;
  g_autofree char *session = NULL;
  g_autofree char *node = NULL;
  ZltDbusService *agent_extra, *server_extra;
  ZltDbusTunnel *agent = find_tunnel (f, "agent");
  ZltTestTransfer transfer = { 0 };
  GThread *thread;
  GVariantBuilder options;
  guint removed_before;
  guint16 echo_port = zlt_test_echo_get_port (f->h.echo);

  g_variant_builder_init (&options, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&options, "{sv}", "remote-port",
                         g_variant_new_uint16 ((guint16) (f->port_base + 50)));
  g_variant_builder_add (&options, "{sv}", "protocol", g_variant_new_string ("tcp"));
  zlt_dbus_manager_call_expose_sync (f->manager, "extra", echo_port,
                                     g_variant_builder_end (&options), G_DBUS_CALL_FLAGS_NONE, -1,
                                     &path, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_str_has_prefix (path, BUS_PATH "/Service/"));
  /* the agent is connected: the answer came after the server's */
  assert_service_state (f, path, "registered", "");
  ZLT_TEST_WAIT_FOR (service_registered (f, "extra")
                         && g_strv_length ((GStrv) zlt_dbus_tunnel_get_services (agent)) == 2,
                     timeout_ms (10000));
  agent_extra = find_service (f, "extra", "agent");
  server_extra = find_service (f, "extra", "server");
  g_assert_cmpstr (proxy_path (agent_extra), ==, path);
  g_assert_cmpuint (zlt_dbus_service_get_requested_port (agent_extra), ==,
                    (guint16) (f->port_base + 50));
  g_assert_cmpuint (zlt_dbus_service_get_assigned_port (server_extra), ==,
                    (guint16) (f->port_base + 50));

  /* and it carries traffic */
  transfer.port = (guint16) (f->port_base + 50);
  transfer.n_bytes = 65536;
  transfer.n_connections = 2;
  thread = zlt_test_transfer_start (&transfer);
  zlt_test_transfer_finish (thread, &transfer, timeout_ms (30000));
  g_assert_null (transfer.error);

  /* errors, each with its name */
  zlt_dbus_manager_call_expose_sync (f->manager, "extra", echo_port, g_variant_new ("a{sv}", NULL),
                                     G_DBUS_CALL_FLAGS_NONE, -1, NULL, NULL, &error);
  expect_error (&error, ERROR_PREFIX "DuplicateName");
  zlt_dbus_manager_call_expose_sync (f->manager, "bad name!", echo_port,
                                     g_variant_new ("a{sv}", NULL), G_DBUS_CALL_FLAGS_NONE, -1,
                                     NULL, NULL, &error);
  expect_error (&error, ERROR_PREFIX "InvalidConfig");
  zlt_dbus_manager_call_expose_sync (f->manager, "zero", 0, g_variant_new ("a{sv}", NULL),
                                     G_DBUS_CALL_FLAGS_NONE, -1, NULL, NULL, &error);
  expect_error (&error, ERROR_PREFIX "InvalidConfig");
  g_variant_builder_init (&options, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&options, "{sv}", "remote-port",
                         g_variant_new_int32 ((guint16) (f->port_base + 51)));
  zlt_dbus_manager_call_expose_sync (f->manager, "typed", echo_port,
                                     g_variant_builder_end (&options), G_DBUS_CALL_FLAGS_NONE, -1,
                                     NULL, NULL, &error);
  expect_error (&error, "org.freedesktop.DBus.Error.InvalidArgs");
  g_variant_builder_init (&options, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&options, "{sv}", "colour", g_variant_new_string ("blue"));
  zlt_dbus_manager_call_expose_sync (f->manager, "unknown", echo_port,
                                     g_variant_builder_end (&options), G_DBUS_CALL_FLAGS_NONE, -1,
                                     NULL, NULL, &error);
  expect_error (&error, "org.freedesktop.DBus.Error.InvalidArgs");
  zlt_dbus_manager_call_unexpose_sync (f->manager, "nope", G_DBUS_CALL_FLAGS_NONE, -1, NULL,
                                       &error);
  expect_error (&error, ERROR_PREFIX "NotFound");
  zlt_dbus_manager_call_disconnect_tunnel_sync (f->manager, BUS_PATH "/Tunnel/999", "",
                                                G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
  expect_error (&error, ERROR_PREFIX "NotFound");
  zlt_dbus_tunnel_call_disconnect_sync (agent, "", G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
  expect_error (&error, ERROR_PREFIX "NotSupported");

  /* on-demand access (the access tests cover it): bad calls, no objects */
  g_variant_builder_init (&options, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&options, "{sv}", "ttl", g_variant_new_int32 (2));
  zlt_dbus_manager_call_start_access_sync (f->manager, "echo", g_variant_builder_end (&options),
                                           G_DBUS_CALL_FLAGS_NONE, -1, &session, NULL, &error);
  expect_error (&error, "org.freedesktop.DBus.Error.InvalidArgs");
  zlt_dbus_manager_call_start_access_sync (f->manager, "bad name!", g_variant_new ("a{sv}", NULL),
                                           G_DBUS_CALL_FLAGS_NONE, -1, &session, NULL, &error);
  expect_error (&error, ERROR_PREFIX "InvalidConfig");
  zlt_dbus_manager_call_stop_access_sync (f->manager, BUS_PATH "/Session/0", G_DBUS_CALL_FLAGS_NONE,
                                          -1, NULL, &error);
  expect_error (&error, ERROR_PREFIX "NotFound");
  /* node tunnels (test-node covers them): an empty definition, an unknown name */
  zlt_dbus_manager_call_add_node_tunnel_sync (f->manager, "n", g_variant_new ("a{sv}", NULL),
                                              G_DBUS_CALL_FLAGS_NONE, -1, &node, NULL, &error);
  expect_error (&error, ERROR_PREFIX "InvalidConfig");
  zlt_dbus_manager_call_remove_node_tunnel_sync (f->manager, "n", G_DBUS_CALL_FLAGS_NONE, -1, NULL,
                                                 &error);
  expect_error (&error, ERROR_PREFIX "NotFound");
  g_assert_null (session);
  g_assert_null (node);

  /* Unexpose: both views of the service go, the public port closes */
  removed_before = f->n_removed;
  zlt_dbus_manager_call_unexpose_sync (f->manager, "extra", G_DBUS_CALL_FLAGS_NONE, -1, NULL,
                                       &error);
  g_assert_no_error (error);
  ZLT_TEST_WAIT_FOR (find_service (f, "extra", "agent") == NULL
                         && find_service (f, "extra", "server") == NULL
                         && g_strv_length ((GStrv) zlt_dbus_tunnel_get_services (agent)) == 1,
                     timeout_ms (10000));
  g_assert_cmpuint (f->n_removed - removed_before, ==, 2);
  g_assert_true (zlt_test_connect_refused ((guint16) (f->port_base + 50)));
  g_assert_true (service_registered (f, "echo"));
  /* the server's refusals fail the call, and nothing stays behind: the name is free */
  expose_refused (f, "taken", echo_port,
                  zlt_dbus_service_get_assigned_port (find_service (f, "echo", "server")),
                  ERROR_PREFIX "PortInUse");
  expose_refused (f, "taken", echo_port, f->port_base + 100, ERROR_PREFIX "PortOutOfRange");
  zlt_dbus_manager_call_expose_sync (f->manager, "taken", echo_port, g_variant_new ("a{sv}", NULL),
                                     G_DBUS_CALL_FLAGS_NONE, -1, &taken, NULL, &error);
  g_assert_no_error (error);
  assert_service_state (f, taken, "registered", "");
  zlt_dbus_manager_call_unexpose_sync (f->manager, "taken", G_DBUS_CALL_FLAGS_NONE, -1, NULL,
                                       &error);
  g_assert_no_error (error);
}

/* DisconnectTunnel ends the server's tunnel object; the agent comes back as a new one. */
static void
test_disconnect (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *old_path = g_strdup (proxy_path (find_tunnel (f, "server")));

  zlt_dbus_manager_call_disconnect_tunnel_sync (f->manager, old_path, "test says so",
                                                G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
  g_assert_no_error (error);
  ZLT_TEST_WAIT_FOR (zlt_dbus_manager_get_agent_sessions (f->manager) == 2
                         && tunnel_connected (f, "server")
                         && g_strcmp0 (proxy_path (find_tunnel (f, "server")), old_path) != 0
                         && service_registered (f, "echo"),
                     timeout_ms (10000));
  g_assert_null (g_dbus_object_manager_get_object (f->om, old_path));
  g_assert_cmpuint (zlt_dbus_manager_get_ntunnels (f->manager), ==, 2);
}

static void
send_sighup (Fixture *f)
{
  g_subprocess_send_signal (f->daemon, SIGHUP);
}

/* SIGHUP and Reload apply an edited config's services without dropping the tunnel. */
static void
test_reload (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  ZltDbusTunnel *agent = find_tunnel (f, "agent");
  ZltDbusTunnel *server = find_tunnel (f, "server");
  g_autofree char *tunnel_id = g_strdup (zlt_dbus_tunnel_get_id (agent));
  g_autofree char *agent_path = g_strdup (proxy_path (agent));
  g_autofree char *server_path = g_strdup (proxy_path (server));
  g_autofree char *good_config = NULL;
  guint16 echo_port = zlt_test_echo_get_port (f->h.echo);
  ZltTestTransfer transfer = { 0 };
  GThread *thread;

  /* a runtime service survives reloads */
  zlt_dbus_manager_call_expose_sync (f->manager, "runtime", echo_port,
                                     g_variant_new ("a{sv}", NULL), G_DBUS_CALL_FLAGS_NONE, -1,
                                     NULL, NULL, &error);
  g_assert_no_error (error);
  ZLT_TEST_WAIT_FOR (service_registered (f, "runtime"), timeout_ms (10000));

  /* SIGHUP: echo goes, second comes */
  g_key_file_remove_group (f->config, "service:echo", NULL);
  g_key_file_set_string (f->config, "service:second", "protocol", "tcp");
  g_key_file_set_integer (f->config, "service:second", "local-port", echo_port);
  g_key_file_set_integer (f->config, "service:second", "remote-port",
                          (guint16) (f->port_base + 60));
  write_config (f);
  send_sighup (f);
  ZLT_TEST_WAIT_FOR (find_service (f, "echo", "agent") == NULL
                         && find_service (f, "echo", "server") == NULL
                         && service_registered (f, "second"),
                     timeout_ms (10000));
  g_assert_cmpuint (zlt_dbus_service_get_assigned_port (find_service (f, "second", "server")), ==,
                    (guint16) (f->port_base + 60));
  g_assert_true (service_registered (f, "runtime"));

  /* the control channel stayed up: same tunnel, same objects, no new session */
  g_assert_cmpstr (zlt_dbus_tunnel_get_id (find_tunnel (f, "agent")), ==, tunnel_id);
  g_assert_cmpstr (proxy_path (find_tunnel (f, "agent")), ==, agent_path);
  g_assert_cmpstr (proxy_path (find_tunnel (f, "server")), ==, server_path);
  g_assert_cmpuint (zlt_dbus_manager_get_agent_sessions (f->manager), ==, 1);

  transfer.port = (guint16) (f->port_base + 60);
  transfer.n_bytes = 100000;
  transfer.n_connections = 1;
  thread = zlt_test_transfer_start (&transfer);
  zlt_test_transfer_finish (thread, &transfer, timeout_ms (30000));
  g_assert_null (transfer.error);

  /* the Reload method: a changed service is replaced (new public port) */
  g_key_file_set_integer (f->config, "service:second", "remote-port",
                          (guint16) (f->port_base + 61));
  write_config (f);
  zlt_dbus_manager_call_reload_sync (f->manager, G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
  g_assert_no_error (error);
  ZLT_TEST_WAIT_FOR (
      service_registered (f, "second")
          && zlt_dbus_service_get_assigned_port (find_service (f, "second", "server"))
                 == (guint16) (f->port_base + 61),
      timeout_ms (10000));
  g_assert_true (zlt_test_connect_refused ((guint16) (f->port_base + 60)));

  /* an invalid file changes nothing */
  g_file_get_contents (f->config_path, &good_config, NULL, &error);
  g_assert_no_error (error);
  g_key_file_set_integer (f->config, "service:third", "local-port", 0);
  write_config (f);
  zlt_dbus_manager_call_reload_sync (f->manager, G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
  expect_error (&error, ERROR_PREFIX "InvalidConfig");
  g_assert_null (find_service (f, "third", "agent"));
  g_assert_true (service_registered (f, "second"));
  g_assert_true (service_registered (f, "runtime"));

  g_assert_cmpstr (zlt_dbus_tunnel_get_id (find_tunnel (f, "agent")), ==, tunnel_id);
  g_assert_cmpuint (zlt_dbus_manager_get_agent_sessions (f->manager), ==, 1);
  g_assert_cmpstr (zlt_dbus_manager_get_agent_state (f->manager), ==, "connected");
}

/* Clients that are not ours: gdbus, busctl and Python's gi bindings. */
static void
test_external_clients (Fixture *f, gconstpointer data)
{
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  g_autofree char *client = python_client_path ();
  g_autofree char *busctl = g_find_program_in_path ("busctl");
  g_autofree char *address_arg = g_strdup_printf ("--address=%s", f->bus_address);
  const char *gdbus_list[] = { "gdbus",  "call",     "--session",
                               "--dest", BUS_NAME,   "--object-path",
                               BUS_PATH, "--method", "org.zlayer.Tunnel1.Manager.ListTunnels",
                               NULL };
  const char *gdbus_access[] = { "gdbus",
                                 "call",
                                 "--session",
                                 "--dest",
                                 BUS_NAME,
                                 "--object-path",
                                 BUS_PATH,
                                 "--method",
                                 "org.zlayer.Tunnel1.Manager.StartAccess",
                                 "echo",
                                 "{'ttl': <uint32 600>}",
                                 NULL };
  const char *gdbus_objects[]
      = { "gdbus",  "call",     "--session",
          "--dest", BUS_NAME,   "--object-path",
          BUS_PATH, "--method", "org.freedesktop.DBus.ObjectManager.GetManagedObjects",
          NULL };
  g_autofree char *extra_port = g_strdup_printf ("%u", f->port_base + 70);
  const char *python[] = { PYTHON, client, "full", extra_port, NULL };

  g_assert_cmpint (run_tool (f, gdbus_list, &out, NULL), ==, 0);
  g_assert_nonnull (strstr (out, BUS_PATH "/Tunnel/"));
  g_clear_pointer (&out, g_free);

  g_assert_cmpint (run_tool (f, gdbus_objects, &out, NULL), ==, 0);
  g_assert_nonnull (strstr (out, "'org.zlayer.Tunnel1.Service'"));
  g_assert_nonnull (strstr (out, "'AssignedPort'"));
  g_clear_pointer (&out, g_free);

  if (busctl != NULL)
    {
      const char *busctl_tree[] = { busctl, address_arg, "--no-pager", "tree", BUS_NAME, NULL };
      const char *busctl_prop[] = { busctl,     address_arg, "get-property",
                                    BUS_NAME,   BUS_PATH,    "org.zlayer.Tunnel1.Manager",
                                    "NTunnels", NULL };

      g_assert_cmpint (run_tool (f, busctl_tree, &out, NULL), ==, 0);
      g_assert_nonnull (strstr (out, "/org/zlayer/Tunnel1/Service/"));
      g_clear_pointer (&out, g_free);
      g_assert_cmpint (run_tool (f, busctl_prop, &out, NULL), ==, 0);
      g_assert_cmpstr (g_strstrip (out), ==, "u 2");
      g_clear_pointer (&out, g_free);
    }
  else
    g_test_message ("busctl not found, checked with gdbus only");

  if (!g_file_test (PYTHON, G_FILE_TEST_IS_EXECUTABLE))
    {
      g_test_skip (PYTHON " is missing");
      return;
    }
  g_assert_cmpint (run_tool (f, python, &out, NULL), ==, 0);
  g_assert_nonnull (strstr (out, "# all passed"));
  g_clear_pointer (&out, g_free);

  /* last: the access client's tunnel is one more server-role tunnel */
  g_assert_cmpint (run_tool (f, gdbus_access, &out, &err), ==, 0);
  g_assert_nonnull (strstr (out, "objectpath '" BUS_PATH "/Session/"));
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
}

/* Mutating calls from a user who is neither root nor in the admin group are refused;
 * naming the user's group as admin-group and reloading lets them through. */
static void
test_permission (Fixture *f, gconstpointer data)
{
  g_autofree char *client = python_client_path ();
  g_autofree char *setpriv = g_find_program_in_path ("setpriv");
  g_autofree char *reuid = NULL;
  g_autofree char *regid = NULL;
  g_autofree char *out = NULL;
  g_autoptr (GError) error = NULL;
  struct passwd *nobody = getpwnam ("nobody");
  struct group *group;

  if (getuid () != 0 || setpriv == NULL || nobody == NULL
      || !g_file_test (PYTHON, G_FILE_TEST_IS_EXECUTABLE))
    {
      g_test_skip ("needs root, setpriv, a nobody user and " PYTHON " to call as another user");
      return;
    }
  group = getgrgid (nobody->pw_gid);
  g_assert_nonnull (group);
  reuid = g_strdup_printf ("--reuid=%u", (guint) nobody->pw_uid);
  regid = g_strdup_printf ("--regid=%u", (guint) nobody->pw_gid);

  {
    const char *denied[]
        = { setpriv, reuid, regid, "--clear-groups", PYTHON, client, "denied", NULL };
    g_assert_cmpint (run_tool (f, denied, &out, NULL), ==, 0);
    g_assert_nonnull (strstr (out, "# all passed"));
    g_clear_pointer (&out, g_free);
  }

  /* nobody's own group becomes the admin group */
  g_key_file_set_string (f->config, "daemon", "admin-group", group->gr_name);
  write_config (f);
  zlt_dbus_manager_call_reload_sync (f->manager, G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
  g_assert_no_error (error);
  {
    const char *admin[]
        = { setpriv, reuid, regid, "--clear-groups", PYTHON, client, "admin", NULL };
    g_assert_cmpint (run_tool (f, admin, &out, NULL), ==, 0);
    g_assert_nonnull (strstr (out, "# all passed"));
  }
  /* still up and unchanged */
  g_assert_true (service_registered (f, "echo"));
  g_assert_null (find_service (f, "admin-made", "agent"));
}

/* ---- on-demand access ---- */

static ZltDbusSession *
find_session (Fixture *f, const char *path)
{
  g_autoptr (GDBusObject) object = g_dbus_object_manager_get_object (f->om, path);

  /* the manager holds the object */
  return object != NULL ? zlt_dbus_object_peek_session (ZLT_DBUS_OBJECT (object)) : NULL;
}

static guint
n_sessions (Fixture *f)
{
  GList *objects = g_dbus_object_manager_get_objects (f->om);
  guint n = 0;

  for (GList *l = objects; l != NULL; l = l->next)
    if (zlt_dbus_object_peek_session (ZLT_DBUS_OBJECT (l->data)) != NULL)
      n++;
  g_list_free_full (objects, g_object_unref);
  return n;
}

/* StartAccess with options "local-port" (when not 0) and "ttl"; returns the path */
static char *
start_access (Fixture *f, const char *service, guint16 local_port, guint ttl, GError **error)
{
  GVariantBuilder options;
  char *path = NULL;

  g_variant_builder_init (&options, G_VARIANT_TYPE_VARDICT);
  if (local_port != 0)
    g_variant_builder_add (&options, "{sv}", "local-port", g_variant_new_uint16 (local_port));
  g_variant_builder_add (&options, "{sv}", "ttl", g_variant_new_uint32 (ttl));
  zlt_dbus_manager_call_start_access_sync (f->manager, service, g_variant_builder_end (&options),
                                           G_DBUS_CALL_FLAGS_NONE, -1, &path, NULL, error);
  return path;
}

static guint16
session_port (ZltDbusSession *session)
{
  const char *address = zlt_dbus_session_get_local_address (session);
  const char *colon = strrchr (address, ':');
  guint64 port = 0;

  g_assert_true (g_str_has_prefix (address, "127.0.0.1:"));
  g_assert_true (g_ascii_string_to_unsigned (colon + 1, 10, 1, G_MAXUINT16, &port, NULL));
  return (guint16) port;
}

typedef struct
{
  guint n_in;  /* PropertiesChanged carrying BytesIn */
  guint n_out; /* ... BytesOut */
} SessionWatch;

static void
on_session_properties_changed (GDBusProxy *proxy, GVariant *changed, const char *const *invalidated,
                               gpointer user_data)
{
  SessionWatch *watch = user_data;
  guint64 value;

  if (g_variant_lookup (changed, "BytesIn", "t", &value))
    watch->n_in++;
  if (g_variant_lookup (changed, "BytesOut", "t", &value))
    watch->n_out++;
}

/* A session to the internal service: its object shows it, bytes through its local port
 * reach the service and are counted live, and at its TTL the object leaves by itself. */
static void
test_access_session (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *path = NULL;
  g_autofree char *endpoint = g_strdup_printf ("ws://127.0.0.1:%u/tunnel/v1", f->server_port);
  /* valgrind slows the daemon too much to finish a transfer within 2 s */
  guint ttl = under_valgrind ? 60 : 2;
  ZltDbusSession *session;
  SessionWatch watch = { 0 };
  ZltTestTransfer transfer = { 0 };
  GThread *thread;
  guint16 port;
  guint removed_before = f->n_removed;

  path = start_access (f, access_service, 0, ttl, &error);
  g_assert_no_error (error);
  g_assert_true (g_str_has_prefix (path, BUS_PATH "/Session/"));
  ZLT_TEST_WAIT_FOR (find_session (f, path) != NULL, timeout_ms (10000));
  session = find_session (f, path);
  g_assert_cmpstr (zlt_dbus_session_get_remote_service (session), ==, access_service);
  g_assert_cmpstr (zlt_dbus_session_get_endpoint (session), ==, endpoint);
  g_assert_cmpuint (strlen (zlt_dbus_session_get_id (session)), ==, 36);
  g_assert_cmpint (zlt_dbus_session_get_created (session), >, 0);
  g_assert_cmpint (zlt_dbus_session_get_expires (session), >,
                   zlt_dbus_session_get_created (session));
  g_assert_cmpuint (zlt_dbus_session_get_bytes_in (session), ==, 0);
  g_assert_cmpuint (n_sessions (f), ==, 1);
  port = session_port (session);

  g_signal_connect (session, "g-properties-changed", G_CALLBACK (on_session_properties_changed),
                    &watch);
  transfer.port = port;
  transfer.n_bytes = 256 * 1024;
  transfer.n_connections = 1;
  thread = zlt_test_transfer_start (&transfer);
  zlt_test_transfer_finish (thread, &transfer, timeout_ms (30000));
  g_assert_null (transfer.error);
  g_assert_true (transfer.ok);
  g_assert_cmpuint (zlt_test_echo_get_n_accepted (f->h.echo), ==, 1);
  ZLT_TEST_WAIT_FOR (zlt_dbus_session_get_bytes_in (session) >= transfer.n_bytes
                         && zlt_dbus_session_get_bytes_out (session) >= transfer.n_bytes
                         && zlt_dbus_session_get_total_connections (session) == 1,
                     timeout_ms (5000));
  g_assert_cmpuint (watch.n_in, >=, 1);
  g_assert_cmpuint (watch.n_out, >=, 1);
  g_signal_handlers_disconnect_by_data (session, &watch);

  /* the TTL ends it with nobody calling anything: the session object goes, and so does
   * the access client's tunnel on the server, which holds the client to that TTL */
  ZLT_TEST_WAIT_FOR (find_session (f, path) == NULL && f->n_removed - removed_before == 2,
                     timeout_ms (ttl * 1000 + 10000));
  g_assert_true (zlt_test_connect_refused (port));
  g_assert_cmpuint (n_sessions (f), ==, 0);
  /* the daemon's own tunnel did not notice (the access client's is a tunnel of its own,
   * which the server shows as a second server-role tunnel) */
  g_assert_true (tunnel_connected (f, "agent"));
  g_assert_cmpuint (zlt_dbus_service_get_assigned_port (find_service (f, "echo", "agent")), !=, 0);
  g_assert_cmpuint (zlt_dbus_manager_get_agent_sessions (f->manager), ==, 1);
}

static void
stop_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GError) error = NULL;

  zlt_dbus_session_call_stop_finish (ZLT_DBUS_SESSION (source), result, &error);
  g_assert_no_error (error);
  *(gboolean *) user_data = TRUE;
}

/* Session.Stop and StopAccess end a session at once: object gone, port closed. */
static void
test_access_stop (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *first = NULL;
  g_autofree char *second = NULL;
  ZltDbusSession *session;
  ZltTestRaw raw = { 0 };
  GThread *thread;
  guint16 port, second_port;
  gboolean stopped = FALSE;

  /* ttl 0: until stopped */
  first = start_access (f, access_service, 0, 0, &error);
  g_assert_no_error (error);
  ZLT_TEST_WAIT_FOR (find_session (f, first) != NULL, timeout_ms (10000));
  session = find_session (f, first);
  g_assert_cmpint (zlt_dbus_session_get_expires (session), ==, 0);
  port = session_port (session);

  /* a connection stays open while the session is stopped: it goes too */
  raw.port = port;
  raw.request = "hello\n";
  thread = zlt_test_raw_start (&raw);
  ZLT_TEST_WAIT_FOR (zlt_dbus_session_get_active_connections (session) == 1
                         && zlt_dbus_session_get_bytes_in (session) == 6,
                     timeout_ms (10000));
  zlt_dbus_session_call_stop (session, G_DBUS_CALL_FLAGS_NONE, -1, NULL, stop_done, &stopped);
  ZLT_TEST_WAIT_FOR (stopped && find_session (f, first) == NULL, timeout_ms (10000));
  zlt_test_raw_finish (thread, &raw, timeout_ms (10000));
  g_assert_true (raw.closed);
  g_assert_cmpstr (raw.reply->str, ==, "hello\n");
  zlt_test_raw_clear (&raw);
  g_assert_true (zlt_test_connect_refused (port));

  /* StopAccess, with a local port of our choosing */
  second_port = (guint16) (f->port_base + 90);
  second = start_access (f, access_service, second_port, 3600, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (second, !=, first);
  ZLT_TEST_WAIT_FOR (find_session (f, second) != NULL, timeout_ms (10000));
  g_assert_cmpuint (session_port (find_session (f, second)), ==, second_port);
  /* that port is taken now */
  g_free (start_access (f, access_service, second_port, 0, &error));
  expect_error (&error, ERROR_PREFIX "PortInUse");
  zlt_dbus_manager_call_stop_access_sync (f->manager, second, G_DBUS_CALL_FLAGS_NONE, -1, NULL,
                                          &error);
  g_assert_no_error (error);
  ZLT_TEST_WAIT_FOR (find_session (f, second) == NULL, timeout_ms (10000));
  g_assert_true (zlt_test_connect_refused (second_port));

  /* gone is gone */
  zlt_dbus_manager_call_stop_access_sync (f->manager, second, G_DBUS_CALL_FLAGS_NONE, -1, NULL,
                                          &error);
  expect_error (&error, ERROR_PREFIX "NotFound");
  zlt_dbus_manager_call_stop_access_sync (f->manager, BUS_PATH "/Tunnel/0", G_DBUS_CALL_FLAGS_NONE,
                                          -1, NULL, &error);
  expect_error (&error, ERROR_PREFIX "NotFound");
  g_assert_cmpuint (n_sessions (f), ==, 0);
}

/* A service the server does not know: StartAccess asks the server before it answers,
 * and fails with the server's refusal, leaving no session behind; malformed calls get
 * named errors. */
static void
test_access_errors (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *path = NULL;
  g_autofree char *none = NULL;
  GVariantBuilder options;

  path = start_access (f, "nope", 0, 3600, &error);
  expect_error (&error, ERROR_PREFIX "NotFound");
  g_assert_null (path);
  settle (f);
  g_assert_cmpuint (n_sessions (f), ==, 0);
  g_assert_cmpuint (zlt_test_echo_get_n_accepted (f->h.echo), ==, 0);

  none = start_access (f, "bad name!", 0, 0, &error);
  expect_error (&error, ERROR_PREFIX "InvalidConfig");
  g_variant_builder_init (&options, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&options, "{sv}", "local-port", g_variant_new_uint32 (1));
  zlt_dbus_manager_call_start_access_sync (f->manager, access_service,
                                           g_variant_builder_end (&options), G_DBUS_CALL_FLAGS_NONE,
                                           -1, &none, NULL, &error);
  expect_error (&error, "org.freedesktop.DBus.Error.InvalidArgs");
  g_variant_builder_init (&options, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&options, "{sv}", "colour", g_variant_new_string ("blue"));
  zlt_dbus_manager_call_start_access_sync (f->manager, access_service,
                                           g_variant_builder_end (&options), G_DBUS_CALL_FLAGS_NONE,
                                           -1, &none, NULL, &error);
  expect_error (&error, "org.freedesktop.DBus.Error.InvalidArgs");
  g_assert_null (none);
  g_assert_cmpuint (n_sessions (f), ==, 0);
}

/* Without an agent role there is no credential to open sessions with. */
static void
test_access_no_agent (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *path = NULL;
  g_auto (GStrv) groups = NULL;

  stop_daemon (f);
  g_clear_object (&f->manager);
  groups = g_key_file_get_groups (f->config, NULL);
  for (guint i = 0; groups[i] != NULL; i++)
    if (g_str_equal (groups[i], "agent") || g_str_has_prefix (groups[i], "service:"))
      g_key_file_remove_group (f->config, groups[i], NULL);
  write_config (f);
  start_daemon (f);
  g_assert_cmpuint (g_strv_length ((GStrv) zlt_dbus_manager_get_roles (f->manager)), ==, 1);

  path = start_access (f, access_service, 0, 0, &error);
  expect_error (&error, ERROR_PREFIX "RoleNotConfigured");
  g_assert_null (path);
  zlt_dbus_manager_call_stop_access_sync (f->manager, BUS_PATH "/Session/0", G_DBUS_CALL_FLAGS_NONE,
                                          -1, NULL, &error);
  expect_error (&error, ERROR_PREFIX "NotFound");
}

/* The server tunnel shows its token's bandwidth limits (Tunnel.RateLimitIn/Out), and a
 * limit the token file gains on Reload at once; the agent's own tunnel shows none. */
static void
test_token_rate_limits (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *tokens = NULL;
  g_autoptr (GString) limited = NULL;

  g_assert_cmpuint (zlt_dbus_tunnel_get_rate_limit_in (find_tunnel (f, "server")), ==, 0);
  g_assert_cmpuint (zlt_dbus_tunnel_get_rate_limit_out (find_tunnel (f, "server")), ==, 0);

  g_file_get_contents (f->h.token_file, &tokens, NULL, &error);
  g_assert_no_error (error);
  limited = g_string_new (tokens);
  g_assert_cmpuint (g_string_replace (limited, "name=test ",
                                      "name=test rate-limit-in=5M "
                                      "rate-limit-out=512k ",
                                      1),
                    ==, 1);
  g_file_set_contents_full (f->h.token_file, limited->str, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600,
                            &error);
  g_assert_no_error (error);
  zlt_dbus_manager_call_reload_sync (f->manager, G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
  g_assert_no_error (error);
  ZLT_TEST_WAIT_FOR (zlt_dbus_tunnel_get_rate_limit_in (find_tunnel (f, "server")) == 5000000
                         && zlt_dbus_tunnel_get_rate_limit_out (find_tunnel (f, "server"))
                                == 512000,
                     timeout_ms (10000));
  g_assert_cmpuint (zlt_dbus_tunnel_get_rate_limit_in (find_tunnel (f, "agent")), ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  under_valgrind = g_getenv ("ZLT_UNDER_VALGRIND") != NULL;

#define ADD(path, func) g_test_add (path, Fixture, NULL, fixture_setup, func, fixture_teardown)
  ADD ("/daemon/objects", test_objects);
  ADD ("/daemon/counters", test_counters);
  ADD ("/daemon/counters-live", test_counters_live);
  ADD ("/daemon/quiet-bus", test_quiet_bus);
  ADD ("/daemon/metrics", test_metrics);
  ADD ("/daemon/expose", test_expose);
  ADD ("/daemon/disconnect", test_disconnect);
  ADD ("/daemon/reload", test_reload);
  ADD ("/daemon/external-clients", test_external_clients);
  ADD ("/daemon/permission", test_permission);
  ADD ("/daemon/token-rate-limits", test_token_rate_limits);
#undef ADD
#define ADD_ACCESS(path, func)                                                                     \
  g_test_add (path, Fixture, access_service, fixture_setup, func, fixture_teardown)
  ADD_ACCESS ("/daemon/access/session", test_access_session);
  ADD_ACCESS ("/daemon/access/stop", test_access_stop);
  ADD_ACCESS ("/daemon/access/errors", test_access_errors);
  ADD_ACCESS ("/daemon/access/no-agent", test_access_no_agent);
#undef ADD_ACCESS
  return g_test_run ();
}
