/* zlt-cli-daemon.c: the zlayer-tunnel commands for a running zlayer-tunneld, over
 * D-Bus: status, tunnels, services, sessions, expose, unexpose, reload. They never
 * start the daemon (no bus activation from a query). */
#include "config.h"

#include <glib/gi18n.h>
#include <string.h>

#include "zlayer-tunnel.h"
#include "zlt-cli-output.h"
#include "zlt-cli.h"
#include "zlt-daemon-error.h"
#include "zlt-dbus-generated.h"
#include "zlt-util.h" /* zlt_parse_duration, zlt_parse_rate */

#define DAEMON_BUS_NAME "org.zlayer.Tunnel1"
#define DAEMON_MANAGER_PATH "/org/zlayer/Tunnel1"
#define IFACE_TUNNEL "org.zlayer.Tunnel1.Tunnel"
#define IFACE_SERVICE "org.zlayer.Tunnel1.Service"
#define IFACE_SESSION "org.zlayer.Tunnel1.Session"
#define IFACE_NODE "org.zlayer.Tunnel1.Node"
/* Calls that change something: never start the daemon, and let polkit ask for a
 * password (through the desktop's authentication agent) when it wants one. */
#define CHANGE_CALL_FLAGS                                                                          \
  (G_DBUS_CALL_FLAGS_NO_AUTO_START | G_DBUS_CALL_FLAGS_ALLOW_INTERACTIVE_AUTHORIZATION)
/* ...and time for typing that password: two minutes rather than GDBus's 25 s */
#define CHANGE_CALL_TIMEOUT_MS (120 * 1000)

static gboolean opt_session_bus;
static gboolean opt_system_bus;
static gboolean opt_json;

static const GOptionEntry bus_entries[]
    = { { "session", 0, 0, G_OPTION_ARG_NONE, &opt_session_bus,
          N_ ("Talk to the daemon on the session bus (also ZLT_BUS=session)"), NULL },
        { "system", 0, 0, G_OPTION_ARG_NONE, &opt_system_bus,
          N_ ("Talk to the daemon on the system bus (the default)"), NULL },
        { NULL } };

static const GOptionEntry json_entries[]
    = { { "json", 'j', 0, G_OPTION_ARG_NONE, &opt_json, N_ ("Print JSON for scripts"), NULL },
        { NULL } };

typedef struct
{
  GBusType bus_type;
  GDBusConnection *connection;
  GDBusObjectManager *objects;
  ZltDbusManager *manager;
} DaemonClient;

static void
daemon_client_clear (DaemonClient *client)
{
  g_clear_object (&client->manager);
  g_clear_object (&client->objects);
  g_clear_object (&client->connection);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (DaemonClient, daemon_client_clear)

static GBusType
daemon_bus_type (void)
{
  const char *env = g_getenv ("ZLT_BUS");

  if (opt_session_bus)
    return G_BUS_TYPE_SESSION;
  if (opt_system_bus)
    return G_BUS_TYPE_SYSTEM;
  if (g_strcmp0 (env, "session") == 0)
    return G_BUS_TYPE_SESSION;
  return G_BUS_TYPE_SYSTEM;
}

static int
fail_not_running (GBusType bus_type)
{
  if (bus_type == G_BUS_TYPE_SESSION)
    return zlt_cli_fail (EXIT_NO_DAEMON,
                         _ ("zlayer-tunneld is not running (no owner of %s on the session bus)"),
                         DAEMON_BUS_NAME);
  return zlt_cli_fail (EXIT_NO_DAEMON,
                       _ ("zlayer-tunneld is not running (no owner of %s on the system bus)"),
                       DAEMON_BUS_NAME);
}

/* A failed call: the daemon's (or the bus's) message without the GDBus prefix; the
 * daemon going away under us counts as not running. */
static int
fail_dbus (DaemonClient *client, GError *error)
{
  if (g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_SERVICE_UNKNOWN)
      || g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_NAME_HAS_NO_OWNER))
    return fail_not_running (client->bus_type);
  /* the bus policy's refusal names rules and pids; say what it means instead */
  if (g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_ACCESS_DENIED))
    return zlt_cli_fail (
        EXIT_FAILURE_RUNTIME,
        _ ("permission denied: only root and members of the daemon's admin group may "
           "do this"));
  g_dbus_error_strip_remote_error (error);
  /* the daemon refused a config (reload, a node definition): as for a file, exit 3 */
  if (g_error_matches (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG))
    return zlt_cli_fail (EXIT_CONFIG, "%s", error->message);
  return zlt_cli_fail (EXIT_FAILURE_RUNTIME, "%s", error->message);
}

/* Connects and checks that the daemon owns its name; never starts it (no activation
 * from a status query). Returns EXIT_OK or the code to exit with, message printed. */
static int
daemon_client_connect (DaemonClient *client)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *owner = NULL;

  /* the daemon's named errors come back in their own domain and code */
  zlt_dbus_error_register ();
  client->bus_type = daemon_bus_type ();
  client->connection = g_bus_get_sync (client->bus_type, NULL, &error);
  if (client->connection == NULL)
    {
      if (client->bus_type == G_BUS_TYPE_SESSION)
        return zlt_cli_fail (
            EXIT_NO_DAEMON,
            _ ("zlayer-tunneld is not running (cannot connect to the session bus: %s)"),
            error->message);
      return zlt_cli_fail (
          EXIT_NO_DAEMON,
          _ ("zlayer-tunneld is not running (cannot connect to the system bus: %s)"),
          error->message);
    }
  client->objects = zlt_dbus_object_manager_client_new_sync (
      client->connection, G_DBUS_OBJECT_MANAGER_CLIENT_FLAGS_DO_NOT_AUTO_START, DAEMON_BUS_NAME,
      DAEMON_MANAGER_PATH, NULL, &error);
  if (client->objects == NULL)
    return fail_dbus (client, error);
  owner = g_dbus_object_manager_client_get_name_owner (
      G_DBUS_OBJECT_MANAGER_CLIENT (client->objects));
  if (owner == NULL)
    return fail_not_running (client->bus_type);
  client->manager
      = zlt_dbus_manager_proxy_new_sync (client->connection, G_DBUS_PROXY_FLAGS_DO_NOT_AUTO_START,
                                         owner, DAEMON_MANAGER_PATH, NULL, &error);
  if (client->manager == NULL)
    return fail_dbus (client, error);
  return EXIT_OK;
}

static int
compare_proxy_paths (gconstpointer a, gconstpointer b)
{
  const char *pa = g_dbus_proxy_get_object_path (*(GDBusProxy **) a);
  const char *pb = g_dbus_proxy_get_object_path (*(GDBusProxy **) b);
  gsize la = strlen (pa);
  gsize lb = strlen (pb);

  /* .../Tunnel/9 before .../Tunnel/10 */
  if (la != lb)
    return la < lb ? -1 : 1;
  return strcmp (pa, pb);
}

/* Returns: (transfer full): the proxies of @iface_name, in object path order */
static GPtrArray *
daemon_client_list (DaemonClient *client, const char *iface_name)
{
  GPtrArray *proxies = g_ptr_array_new_with_free_func (g_object_unref);
  GList *objects = g_dbus_object_manager_get_objects (client->objects);

  for (GList *l = objects; l != NULL; l = l->next)
    {
      GDBusInterface *iface = g_dbus_object_get_interface (l->data, iface_name);

      if (iface != NULL)
        g_ptr_array_add (proxies, iface);
    }
  g_list_free_full (objects, g_object_unref);
  g_ptr_array_sort (proxies, compare_proxy_paths);
  return proxies;
}

static GDBusProxy *
daemon_client_lookup (DaemonClient *client, const char *path, const char *iface_name)
{
  if (path == NULL || !g_variant_is_object_path (path))
    return NULL;
  return G_DBUS_PROXY (g_dbus_object_manager_get_interface (client->objects, path, iface_name));
}

/* ---- JSON: stable keys, one table per interface ---- */

static const ZltCliJsonKey tunnel_keys[] = {
  { "Id", "id" },
  { "Role", "role" },
  { "State", "state" },
  { "PeerAddress", "peer_address" },
  { "ClientId", "client_id" },
  { "TokenName", "token_name" },
  { "Created", "created_us" },
  { "LastActivity", "last_activity_us" },
  { "BytesIn", "bytes_in" },
  { "BytesOut", "bytes_out" },
  { "LastError", "last_error" },
  { "RateLimitIn", "rate_limit_in" },
  { "RateLimitOut", "rate_limit_out" },
};

static const ZltCliJsonKey service_keys[] = {
  { "Id", "id" },
  { "Name", "name" },
  { "Protocol", "protocol" },
  { "Expose", "expose" },
  { "LocalPort", "local_port" },
  { "RequestedPort", "requested_port" },
  { "AssignedPort", "assigned_port" },
  { "State", "state" },
  { "LastError", "last_error" },
  { "ActiveConnections", "active_connections" },
  { "TotalConnections", "total_connections" },
  { "BytesIn", "bytes_in" },
  { "BytesOut", "bytes_out" },
  { "Tunnel", "tunnel" },
  { "ProxyProtocol", "proxy_protocol" },
  { "RateLimitIn", "rate_limit_in" },
  { "RateLimitOut", "rate_limit_out" },
  { "Replicas", "replicas" },
  { "ReplicaBalance", "replica_balance" },
  { "ReplicaState", "replica_state" },
  { "Hostname", "hostname" },
};

static const ZltCliJsonKey session_keys[] = {
  { "Id", "id" },
  { "Endpoint", "endpoint" },
  { "LocalAddress", "local_address" },
  { "RemoteService", "remote_service" },
  { "Created", "created_us" },
  { "Expires", "expires_us" },
  { "ActiveConnections", "active_connections" },
  { "TotalConnections", "total_connections" },
  { "BytesIn", "bytes_in" },
  { "BytesOut", "bytes_out" },
};

static const ZltCliJsonKey node_keys[] = {
  { "Name", "name" },
  { "FromNode", "from" },
  { "ToNode", "to" },
  { "Server", "server" },
  { "Direction", "direction" },
  { "LocalPort", "local_port" },
  { "RemotePort", "remote_port" },
  { "Protocol", "protocol" },
  { "Exposure", "exposure" },
  { "State", "state" },
  { "LastError", "last_error" },
  { "BytesIn", "bytes_in" },
  { "BytesOut", "bytes_out" },
  { "LatencyUs", "latency_us" },
};

/* Writers of one object into a JSON array; @client for the ones that follow links */
typedef void (*JsonAddFunc) (JsonBuilder *builder, DaemonClient *client, GDBusProxy *object);

static void
json_add_node (JsonBuilder *builder, DaemonClient *client, GDBusProxy *node)
{
  json_builder_begin_object (builder);
  zlt_cli_json_add_properties (builder, node, node_keys, G_N_ELEMENTS (node_keys));
  json_builder_end_object (builder);
}

static void
json_add_service (JsonBuilder *builder, DaemonClient *client, GDBusProxy *service)
{
  json_builder_begin_object (builder);
  zlt_cli_json_add_properties (builder, service, service_keys, G_N_ELEMENTS (service_keys));
  json_builder_end_object (builder);
}

static void
json_add_session (JsonBuilder *builder, DaemonClient *client, GDBusProxy *session)
{
  json_builder_begin_object (builder);
  zlt_cli_json_add_properties (builder, session, session_keys, G_N_ELEMENTS (session_keys));
  json_builder_end_object (builder);
}

/* the tunnel's Services, in the order the daemon lists them */
static GPtrArray *
tunnel_services (DaemonClient *client, GDBusProxy *tunnel)
{
  g_autoptr (GVariant) paths = g_dbus_proxy_get_cached_property (tunnel, "Services");
  GPtrArray *services = g_ptr_array_new_with_free_func (g_object_unref);
  GVariantIter iter;
  const char *path;

  if (paths == NULL || !g_variant_is_of_type (paths, G_VARIANT_TYPE_OBJECT_PATH_ARRAY))
    return services;
  g_variant_iter_init (&iter, paths);
  while (g_variant_iter_next (&iter, "&o", &path))
    {
      GDBusProxy *service = daemon_client_lookup (client, path, IFACE_SERVICE);

      if (service != NULL)
        g_ptr_array_add (services, service);
    }
  return services;
}

static void
json_add_tunnel (JsonBuilder *builder, DaemonClient *client, GDBusProxy *tunnel)
{
  g_autoptr (GPtrArray) services = tunnel_services (client, tunnel);

  json_builder_begin_object (builder);
  zlt_cli_json_add_properties (builder, tunnel, tunnel_keys, G_N_ELEMENTS (tunnel_keys));
  json_builder_set_member_name (builder, "services");
  json_builder_begin_array (builder);
  for (guint i = 0; i < services->len; i++)
    json_add_service (builder, client, g_ptr_array_index (services, i));
  json_builder_end_array (builder);
  json_builder_end_object (builder);
}

/* `{"MEMBER": [...]}` of @objects, each written by @add */
static void
print_json_list (DaemonClient *client, const char *member, GPtrArray *objects, JsonAddFunc add)
{
  g_autoptr (JsonBuilder) builder = json_builder_new ();

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, member);
  json_builder_begin_array (builder);
  for (guint i = 0; i < objects->len; i++)
    add (builder, client, g_ptr_array_index (objects, i));
  json_builder_end_array (builder);
  json_builder_end_object (builder);
  zlt_cli_json_print (builder);
}

static void
print_tunnels_table (GPtrArray *tunnels)
{
  /* TRANSLATORS: column titles of `zlayer-tunnel tunnels` */
  const char *headers[] = { _ ("ID"),       _ ("ROLE"), _ ("STATE"), _ ("PEER"), _ ("TOKEN"),
                            _ ("SERVICES"), _ ("UP"),   _ ("IN"),    _ ("OUT"),  NULL };
  g_autoptr (ZltCliTable) table = zlt_cli_table_new (headers, 0x1e0);

  for (guint i = 0; i < tunnels->len; i++)
    {
      GDBusProxy *tunnel = g_ptr_array_index (tunnels, i);
      g_autoptr (GVariant) services = g_dbus_proxy_get_cached_property (tunnel, "Services");

      zlt_cli_table_add (table, zlt_cli_prop_string (tunnel, "Id"));
      zlt_cli_table_add (table, zlt_cli_prop_string (tunnel, "Role"));
      zlt_cli_table_add (table, zlt_cli_prop_string (tunnel, "State"));
      zlt_cli_table_add (table, zlt_cli_prop_string (tunnel, "PeerAddress"));
      zlt_cli_table_add (table, zlt_cli_prop_string (tunnel, "TokenName"));
      zlt_cli_table_add (table,
                         g_strdup_printf ("%" G_GSIZE_FORMAT,
                                          services != NULL ? g_variant_n_children (services) : 0));
      zlt_cli_table_add (table, zlt_cli_format_since (zlt_cli_prop_int (tunnel, "Created")));
      zlt_cli_table_add (table, zlt_cli_format_bytes (zlt_cli_prop_int (tunnel, "BytesIn")));
      zlt_cli_table_add (table, zlt_cli_format_bytes (zlt_cli_prop_int (tunnel, "BytesOut")));
    }
  zlt_cli_table_print (table);
}

static void
print_services_table (DaemonClient *client, GPtrArray *services)
{
  /* TRANSLATORS: column titles of `zlayer-tunnel services`; LOCAL and PUBLIC are ports */
  const char *headers[]
      = { _ ("NAME"),   _ ("ROLE"),     _ ("PROTOCOL"), _ ("EXPOSE"), _ ("STATE"), _ ("LOCAL"),
          _ ("PUBLIC"), _ ("REPLICAS"), _ ("ACTIVE"),   _ ("TOTAL"),  _ ("IN"),    _ ("OUT"),
          NULL };
  g_autoptr (ZltCliTable) table = zlt_cli_table_new (headers, 0xfe0);

  for (guint i = 0; i < services->len; i++)
    {
      GDBusProxy *service = g_ptr_array_index (services, i);
      g_autofree char *tunnel_path = zlt_cli_prop_string (service, "Tunnel");
      g_autoptr (GDBusProxy) tunnel = daemon_client_lookup (client, tunnel_path, IFACE_TUNNEL);

      zlt_cli_table_add (table, zlt_cli_prop_string (service, "Name"));
      zlt_cli_table_add (table, tunnel != NULL ? zlt_cli_prop_string (tunnel, "Role") : NULL);
      zlt_cli_table_add (table, zlt_cli_prop_string (service, "Protocol"));
      zlt_cli_table_add (table, zlt_cli_prop_string (service, "Expose"));
      zlt_cli_table_add (table, zlt_cli_prop_string (service, "State"));
      zlt_cli_table_add (table, zlt_cli_format_port (zlt_cli_prop_int (service, "LocalPort")));
      zlt_cli_table_add (table, zlt_cli_format_port (zlt_cli_prop_int (service, "AssignedPort")));
      zlt_cli_table_add (
          table, g_strdup_printf ("%" G_GINT64_FORMAT, zlt_cli_prop_int (service, "Replicas")));
      zlt_cli_table_add (table, g_strdup_printf ("%" G_GINT64_FORMAT,
                                                 zlt_cli_prop_int (service, "ActiveConnections")));
      zlt_cli_table_add (table, g_strdup_printf ("%" G_GINT64_FORMAT,
                                                 zlt_cli_prop_int (service, "TotalConnections")));
      zlt_cli_table_add (table, zlt_cli_format_bytes (zlt_cli_prop_int (service, "BytesIn")));
      zlt_cli_table_add (table, zlt_cli_format_bytes (zlt_cli_prop_int (service, "BytesOut")));
    }
  zlt_cli_table_print (table);
}

static void
print_sessions_table (GPtrArray *sessions)
{
  /* TRANSLATORS: column titles of `zlayer-tunnel sessions` */
  const char *headers[] = { _ ("ID"),    _ ("SERVICE"), _ ("LOCAL"), _ ("ENDPOINT"), _ ("ACTIVE"),
                            _ ("TOTAL"), _ ("IN"),      _ ("OUT"),   _ ("EXPIRES"),  NULL };
  g_autoptr (ZltCliTable) table = zlt_cli_table_new (headers, 0x1f0);

  for (guint i = 0; i < sessions->len; i++)
    {
      GDBusProxy *session = g_ptr_array_index (sessions, i);
      gint64 expires = zlt_cli_prop_int (session, "Expires");

      zlt_cli_table_add (table, zlt_cli_prop_string (session, "Id"));
      zlt_cli_table_add (table, zlt_cli_prop_string (session, "RemoteService"));
      zlt_cli_table_add (table, zlt_cli_prop_string (session, "LocalAddress"));
      zlt_cli_table_add (table, zlt_cli_prop_string (session, "Endpoint"));
      zlt_cli_table_add (table, g_strdup_printf ("%" G_GINT64_FORMAT,
                                                 zlt_cli_prop_int (session, "ActiveConnections")));
      zlt_cli_table_add (table, g_strdup_printf ("%" G_GINT64_FORMAT,
                                                 zlt_cli_prop_int (session, "TotalConnections")));
      zlt_cli_table_add (table, zlt_cli_format_bytes (zlt_cli_prop_int (session, "BytesIn")));
      zlt_cli_table_add (table, zlt_cli_format_bytes (zlt_cli_prop_int (session, "BytesOut")));
      if (expires <= 0)
        zlt_cli_table_add (table, g_strdup (_ ("never")));
      else
        zlt_cli_table_add (
            table, zlt_cli_format_duration ((expires - g_get_real_time ()) / G_USEC_PER_SEC));
    }
  zlt_cli_table_print (table);
}

static void
print_nodes_table (GPtrArray *nodes)
{
  /* TRANSLATORS: column titles of `zlayer-tunnel nodes`; PORTS is local→remote */
  const char *headers[] = { _ ("NAME"),  _ ("FROM"), _ ("TO"),  _ ("HERE"),    _ ("STATE"),
                            _ ("PORTS"), _ ("IN"),   _ ("OUT"), _ ("LATENCY"), NULL };
  g_autoptr (ZltCliTable) table = zlt_cli_table_new (headers, 0x1c0);

  for (guint i = 0; i < nodes->len; i++)
    {
      GDBusProxy *node = g_ptr_array_index (nodes, i);
      gint64 latency = zlt_cli_prop_int (node, "LatencyUs");
      g_autofree char *protocol = zlt_cli_prop_string (node, "Protocol");

      zlt_cli_table_add (table, zlt_cli_prop_string (node, "Name"));
      zlt_cli_table_add (table, zlt_cli_prop_string (node, "FromNode"));
      zlt_cli_table_add (table, zlt_cli_prop_string (node, "ToNode"));
      zlt_cli_table_add (table, zlt_cli_prop_string (node, "Direction"));
      zlt_cli_table_add (table, zlt_cli_prop_string (node, "State"));
      zlt_cli_table_add (table, g_strdup_printf ("%s %u→%u", protocol,
                                                 (guint) zlt_cli_prop_int (node, "LocalPort"),
                                                 (guint) zlt_cli_prop_int (node, "RemotePort")));
      zlt_cli_table_add (table, zlt_cli_format_bytes (zlt_cli_prop_int (node, "BytesIn")));
      zlt_cli_table_add (table, zlt_cli_format_bytes (zlt_cli_prop_int (node, "BytesOut")));
      zlt_cli_table_add (table,
                         latency >= 0 ? g_strdup_printf ("%.2f ms", latency / 1000.0) : NULL);
    }
  zlt_cli_table_print (table);
}

/* Parses a daemon command's options: the bus, optionally --json, and exactly
 * @n_args positional arguments (described by @parameters for --help). */
static int
parse_daemon_options (int *argc, char ***argv, const char *parameters, const char *summary,
                      const GOptionEntry *extra, gboolean json, int n_args)
{
  g_autoptr (GOptionContext) context = g_option_context_new (parameters);
  g_autoptr (GError) error = NULL;

  g_option_context_set_summary (context, summary);
  g_option_context_add_main_entries (context, bus_entries, GETTEXT_PACKAGE);
  if (json)
    g_option_context_add_main_entries (context, json_entries, GETTEXT_PACKAGE);
  if (extra != NULL)
    g_option_context_add_main_entries (context, extra, GETTEXT_PACKAGE);
  if (!g_option_context_parse (context, argc, argv, &error))
    return zlt_cli_fail (EXIT_USAGE, "%s", error->message);
  if (opt_session_bus && opt_system_bus)
    return zlt_cli_fail (EXIT_USAGE, _ ("--session and --system exclude each other"));
  if (*argc - 1 != n_args)
    {
      g_autofree char *help = g_option_context_get_help (context, TRUE, NULL);
      g_printerr ("%s", help);
      return EXIT_USAGE;
    }
  return EXIT_OK;
}

/* ---- status ---- */

int
zlt_cli_status (int argc, char **argv)
{
  g_auto (DaemonClient) client = { 0 };
  g_autoptr (GPtrArray) tunnels = NULL;
  g_autoptr (GPtrArray) services = NULL;
  g_autoptr (GPtrArray) nodes = NULL;
  const char *const *roles;
  int rc;

  rc = parse_daemon_options (&argc, &argv, "", _ ("Show the daemon, its roles and tunnels."), NULL,
                             TRUE, 0);
  if (rc != EXIT_OK)
    return rc;
  rc = daemon_client_connect (&client);
  if (rc != EXIT_OK)
    return rc;
  tunnels = daemon_client_list (&client, IFACE_TUNNEL);
  nodes = daemon_client_list (&client, IFACE_NODE);
  roles = zlt_dbus_manager_get_roles (client.manager);

  if (opt_json)
    {
      g_autoptr (JsonBuilder) builder = json_builder_new ();

      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "version");
      json_builder_add_string_value (builder, zlt_dbus_manager_get_version (client.manager));
      json_builder_set_member_name (builder, "roles");
      json_builder_begin_array (builder);
      for (guint i = 0; roles != NULL && roles[i] != NULL; i++)
        json_builder_add_string_value (builder, roles[i]);
      json_builder_end_array (builder);
      json_builder_set_member_name (builder, "server");
      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "address");
      json_builder_add_string_value (builder, zlt_dbus_manager_get_server_address (client.manager));
      json_builder_end_object (builder);
      json_builder_set_member_name (builder, "agent");
      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "server");
      json_builder_add_string_value (builder, zlt_dbus_manager_get_agent_server (client.manager));
      json_builder_set_member_name (builder, "state");
      json_builder_add_string_value (builder, zlt_dbus_manager_get_agent_state (client.manager));
      json_builder_set_member_name (builder, "last_error");
      json_builder_add_string_value (builder,
                                     zlt_dbus_manager_get_agent_last_error (client.manager));
      json_builder_set_member_name (builder, "sessions");
      json_builder_add_int_value (builder, zlt_dbus_manager_get_agent_sessions (client.manager));
      json_builder_end_object (builder);
      json_builder_set_member_name (builder, "tunnels");
      json_builder_begin_array (builder);
      for (guint i = 0; i < tunnels->len; i++)
        json_add_tunnel (builder, &client, g_ptr_array_index (tunnels, i));
      json_builder_end_array (builder);
      json_builder_set_member_name (builder, "nodes");
      json_builder_begin_array (builder);
      for (guint i = 0; i < nodes->len; i++)
        json_add_node (builder, &client, g_ptr_array_index (nodes, i));
      json_builder_end_array (builder);
      json_builder_end_object (builder);
      zlt_cli_json_print (builder);
      return EXIT_OK;
    }

  {
    g_autofree char *role_list = roles != NULL && roles[0] != NULL
                                     ? g_strjoinv (", ", (char **) roles)
                                     : g_strdup (_ ("no roles"));
    const char *address = zlt_dbus_manager_get_server_address (client.manager);
    const char *agent_server = zlt_dbus_manager_get_agent_server (client.manager);
    const char *last_error = zlt_dbus_manager_get_agent_last_error (client.manager);

    g_print (_ ("zlayer-tunneld %s (%s)\n"), zlt_dbus_manager_get_version (client.manager),
             role_list);
    if (address != NULL && address[0] != '\0')
      g_print (_ ("server:  listening on %s\n"), address);
    if (agent_server != NULL && agent_server[0] != '\0')
      g_print (_ ("agent:   %s, server %s\n"), zlt_dbus_manager_get_agent_state (client.manager),
               agent_server);
    if (last_error != NULL && last_error[0] != '\0')
      g_print (_ ("         last error: %s\n"), last_error);
  }
  if (tunnels->len == 0)
    g_print (_ ("no tunnels\n"));
  else
    {
      g_print ("\n");
      print_tunnels_table (tunnels);
      services = daemon_client_list (&client, IFACE_SERVICE);
      if (services->len > 0)
        {
          g_print ("\n");
          print_services_table (&client, services);
        }
    }
  if (nodes->len > 0)
    {
      g_print ("\n");
      print_nodes_table (nodes);
    }
  return EXIT_OK;
}

/* ---- tunnels, services, sessions ---- */

int
zlt_cli_tunnels (int argc, char **argv)
{
  g_auto (DaemonClient) client = { 0 };
  g_autoptr (GPtrArray) tunnels = NULL;
  int rc;

  rc = parse_daemon_options (&argc, &argv, "",
                             _ ("List the tunnels: agents connected to this server and this "
                                "agent's own tunnel."),
                             NULL, TRUE, 0);
  if (rc != EXIT_OK)
    return rc;
  rc = daemon_client_connect (&client);
  if (rc != EXIT_OK)
    return rc;
  tunnels = daemon_client_list (&client, IFACE_TUNNEL);
  if (opt_json)
    print_json_list (&client, "tunnels", tunnels, json_add_tunnel);
  else if (tunnels->len == 0)
    g_print (_ ("no tunnels\n"));
  else
    print_tunnels_table (tunnels);
  return EXIT_OK;
}

int
zlt_cli_services (int argc, char **argv)
{
  g_auto (DaemonClient) client = { 0 };
  g_autoptr (GPtrArray) services = NULL;
  int rc;

  rc = parse_daemon_options (&argc, &argv, "", _ ("List the services of every tunnel."), NULL, TRUE,
                             0);
  if (rc != EXIT_OK)
    return rc;
  rc = daemon_client_connect (&client);
  if (rc != EXIT_OK)
    return rc;
  services = daemon_client_list (&client, IFACE_SERVICE);
  if (opt_json)
    print_json_list (&client, "services", services, json_add_service);
  else if (services->len == 0)
    g_print (_ ("no services\n"));
  else
    print_services_table (&client, services);
  return EXIT_OK;
}

int
zlt_cli_sessions (int argc, char **argv)
{
  g_auto (DaemonClient) client = { 0 };
  g_autoptr (GPtrArray) sessions = NULL;
  int rc;

  rc = parse_daemon_options (&argc, &argv, "", _ ("List the on-demand access sessions."), NULL,
                             TRUE, 0);
  if (rc != EXIT_OK)
    return rc;
  rc = daemon_client_connect (&client);
  if (rc != EXIT_OK)
    return rc;
  sessions = daemon_client_list (&client, IFACE_SESSION);
  if (opt_json)
    print_json_list (&client, "sessions", sessions, json_add_session);
  else if (sessions->len == 0)
    g_print (_ ("no access sessions\n"));
  else
    print_sessions_table (sessions);
  return EXIT_OK;
}

/* ---- expose, unexpose, reload ---- */

/* The Expose reply came after the server's answer (or without one): say which */
static void
print_exposed (DaemonClient *client, const char *path, const char *name, guint local_port)
{
  g_autoptr (GVariant) props = NULL;
  g_autoptr (GError) error = NULL;
  const char *state = "";
  const char *hostname = "";
  guint16 port = 0;

  props = g_dbus_connection_call_sync (
      client->connection, DAEMON_BUS_NAME, path, "org.freedesktop.DBus.Properties", "GetAll",
      g_variant_new ("(s)", IFACE_SERVICE), G_VARIANT_TYPE ("(a{sv})"), G_DBUS_CALL_FLAGS_NONE, -1,
      NULL, &error);
  if (props != NULL)
    {
      g_autoptr (GVariant) dict = g_variant_get_child_value (props, 0);

      g_variant_lookup (dict, "State", "&s", &state);
      g_variant_lookup (dict, "AssignedPort", "q", &port);
      g_variant_lookup (dict, "Hostname", "&s", &hostname);
    }
  /* a hostname takes the place of a public port */
  if (g_str_equal (state, "registered") && hostname[0] != '\0')
    g_print (_ ("exposed %s (local port %u) as %s on the server's shared HTTP and TLS ports\n"),
             name, local_port, hostname);
  else if (g_str_equal (state, "registered") && port != 0)
    g_print (_ ("exposed %s (local port %u) on public port %u\n"), name, local_port, port);
  else if (g_str_equal (state, "registered"))
    g_print (_ ("exposed %s (local port %u), reachable through access sessions\n"), name,
             local_port);
  else
    g_print (_ ("exposed %s (local port %u); the server has not answered yet: see "
                "`zlayer-tunnel services`\n"),
             name, local_port);
}

int
zlt_cli_expose (int argc, char **argv)
{
  g_autofree char *protocol = NULL;
  g_autofree char *local_host = NULL;
  gint remote_port = 0;
  gboolean internal = FALSE;
  g_autofree char *proxy_protocol = NULL;
  g_autofree char *rate_in_text = NULL;
  g_autofree char *rate_out_text = NULL;
  g_autofree char *hostname = NULL;
  const GOptionEntry entries[]
      = { { "remote-port", 'r', 0, G_OPTION_ARG_INT, &remote_port,
            N_ ("Public port to ask the server for (default: any)"), N_ ("PORT") },
          { "protocol", 'p', 0, G_OPTION_ARG_STRING, &protocol, N_ ("tcp (the default) or udp"),
            N_ ("PROTOCOL") },
          { "local-host", 0, 0, G_OPTION_ARG_STRING, &local_host,
            N_ ("Host the service listens on (default 127.0.0.1)"), N_ ("HOST") },
          { "internal", 0, 0, G_OPTION_ARG_NONE, &internal,
            N_ ("Reachable only through access sessions, not on a public port"), NULL },
          { "proxy-protocol", 0, 0, G_OPTION_ARG_STRING, &proxy_protocol,
            N_ ("Tell the service each client's address: a PROXY header, v1 or v2 (default "
                "none)"),
            N_ ("PROXY") },
          { "rate-limit-in", 0, 0, G_OPTION_ARG_STRING, &rate_in_text,
            N_ ("Limit the bytes per second toward the service, e.g. 500k, 4M (default 0: "
                "none)"),
            N_ ("RATE") },
          { "rate-limit-out", 0, 0, G_OPTION_ARG_STRING, &rate_out_text,
            N_ ("Limit the bytes per second from the service to its clients (default 0: "
                "none)"),
            N_ ("RATE") },
          { "hostname", 0, 0, G_OPTION_ARG_STRING, &hostname,
            N_ ("Be reached by this hostname on the server's shared HTTP and TLS ports "
                "instead of a public port of its own"),
            N_ ("HOST") },
          { NULL } };
  g_auto (DaemonClient) client = { 0 };
  g_autoptr (GError) error = NULL;
  g_autofree char *service_path = NULL;
  guint64 rate_in = 0;
  guint64 rate_out = 0;
  g_auto (GVariantBuilder) options = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);
  guint64 local_port;
  int rc;

  rc = parse_daemon_options (&argc, &argv, _ ("NAME LOCAL_PORT"),
                             _ ("Expose a local service through the daemon's agent."), entries,
                             FALSE, 2);
  if (rc != EXIT_OK)
    return rc;
  if (!zlt_service_name_is_valid (argv[1]))
    return zlt_cli_fail (EXIT_USAGE, _ ("“%s” is not a valid service name"), argv[1]);
  if (!g_ascii_string_to_unsigned (argv[2], 10, 1, G_MAXUINT16, &local_port, NULL))
    return zlt_cli_fail (EXIT_USAGE, _ ("“%s” is not a port from 1 to 65535"), argv[2]);
  if (remote_port < 0 || remote_port > G_MAXUINT16)
    return zlt_cli_fail (EXIT_USAGE, _ ("--remote-port must be from 0 to 65535"));
  if (protocol != NULL && !g_str_equal (protocol, "tcp") && !g_str_equal (protocol, "udp"))
    return zlt_cli_fail (EXIT_USAGE, _ ("--protocol must be tcp or udp, not “%s”"), protocol);
  if (rate_in_text != NULL && !zlt_parse_rate (rate_in_text, &rate_in))
    return zlt_cli_fail (EXIT_USAGE,
                         _ ("--rate-limit-in must be bytes per second, optionally with k, M or "
                            "G, not “%s”"),
                         rate_in_text);
  if (rate_out_text != NULL && !zlt_parse_rate (rate_out_text, &rate_out))
    return zlt_cli_fail (EXIT_USAGE,
                         _ ("--rate-limit-out must be bytes per second, optionally with k, M or "
                            "G, not “%s”"),
                         rate_out_text);

  g_variant_builder_add (&options, "{sv}", "protocol",
                         g_variant_new_string (protocol != NULL ? protocol : "tcp"));
  if (local_host != NULL)
    g_variant_builder_add (&options, "{sv}", "local-host", g_variant_new_string (local_host));
  g_variant_builder_add (&options, "{sv}", "remote-port",
                         g_variant_new_uint16 ((guint16) remote_port));
  g_variant_builder_add (&options, "{sv}", "expose",
                         g_variant_new_string (internal ? "internal" : "public"));
  /* the daemon checks the value (and that the service is tcp) */
  if (proxy_protocol != NULL)
    g_variant_builder_add (&options, "{sv}", "proxy-protocol",
                           g_variant_new_string (proxy_protocol));
  if (rate_in_text != NULL)
    g_variant_builder_add (&options, "{sv}", "rate-limit-in", g_variant_new_uint64 (rate_in));
  if (rate_out_text != NULL)
    g_variant_builder_add (&options, "{sv}", "rate-limit-out", g_variant_new_uint64 (rate_out));
  /* the daemon checks the name (and that the service is public tcp without a port) */
  if (hostname != NULL)
    g_variant_builder_add (&options, "{sv}", "hostname", g_variant_new_string (hostname));

  rc = daemon_client_connect (&client);
  if (rc != EXIT_OK)
    return rc;
  if (!zlt_dbus_manager_call_expose_sync (client.manager, argv[1], (guint16) local_port,
                                          g_variant_builder_end (&options), CHANGE_CALL_FLAGS,
                                          CHANGE_CALL_TIMEOUT_MS, &service_path, NULL, &error))
    return fail_dbus (&client, error);
  print_exposed (&client, service_path, argv[1], (guint) local_port);
  return EXIT_OK;
}

int
zlt_cli_unexpose (int argc, char **argv)
{
  g_auto (DaemonClient) client = { 0 };
  g_autoptr (GError) error = NULL;
  int rc;

  rc = parse_daemon_options (&argc, &argv, _ ("NAME"),
                             _ ("Remove a service from the daemon's agent."), NULL, FALSE, 1);
  if (rc != EXIT_OK)
    return rc;
  rc = daemon_client_connect (&client);
  if (rc != EXIT_OK)
    return rc;
  if (!zlt_dbus_manager_call_unexpose_sync (client.manager, argv[1], CHANGE_CALL_FLAGS,
                                            CHANGE_CALL_TIMEOUT_MS, NULL, &error))
    return fail_dbus (&client, error);
  g_print (_ ("removed %s\n"), argv[1]);
  return EXIT_OK;
}

int
zlt_cli_reload (int argc, char **argv)
{
  g_auto (DaemonClient) client = { 0 };
  g_autoptr (GError) error = NULL;
  int rc;

  rc = parse_daemon_options (&argc, &argv, "", _ ("Make the daemon re-read its configuration."),
                             NULL, FALSE, 0);
  if (rc != EXIT_OK)
    return rc;
  rc = daemon_client_connect (&client);
  if (rc != EXIT_OK)
    return rc;
  if (!zlt_dbus_manager_call_reload_sync (client.manager, CHANGE_CALL_FLAGS, CHANGE_CALL_TIMEOUT_MS,
                                          NULL, &error))
    return fail_dbus (&client, error);
  g_print (_ ("configuration reloaded\n"));
  return EXIT_OK;
}

/* ---- node tunnels ---- */

int
zlt_cli_nodes (int argc, char **argv)
{
  g_auto (DaemonClient) client = { 0 };
  g_autoptr (GPtrArray) nodes = NULL;
  int rc;

  rc = parse_daemon_options (&argc, &argv, "", _ ("List the node-to-node tunnels."), NULL, TRUE, 0);
  if (rc != EXIT_OK)
    return rc;
  rc = daemon_client_connect (&client);
  if (rc != EXIT_OK)
    return rc;
  nodes = daemon_client_list (&client, IFACE_NODE);
  if (opt_json)
    print_json_list (&client, "nodes", nodes, json_add_node);
  else if (nodes->len == 0)
    g_print (_ ("no node tunnels\n"));
  else
    print_nodes_table (nodes);
  return EXIT_OK;
}

/* A command with verbs (`node add`, `session stop`): runs the one argv[1] names, which
 * becomes the program name; --help prints @help, anything else fails with @usage */
typedef struct
{
  const char *name;
  int (*run) (int argc, char **argv);
} Verb;

static int
dispatch_verb (int argc, char **argv, const Verb *verbs, gsize n_verbs, const char *help,
               const char *usage)
{
  for (gsize i = 0; argc >= 2 && i < n_verbs; i++)
    if (g_str_equal (argv[1], verbs[i].name))
      return verbs[i].run (argc - 1, argv + 1);
  if (argc >= 2 && (g_str_equal (argv[1], "--help") || g_str_equal (argv[1], "-h")))
    {
      g_print ("%s", help);
      return EXIT_OK;
    }
  return zlt_cli_fail (EXIT_USAGE, "%s", usage);
}

static int
node_add (int argc, char **argv)
{
  g_autofree char *from = NULL;
  g_autofree char *to = NULL;
  g_autofree char *server = NULL;
  g_autofree char *protocol = NULL;
  g_autofree char *exposure = NULL;
  g_autofree char *token_file = NULL;
  gint local_port = 0, remote_port = 0;
  const GOptionEntry entries[]
      = { { "from", 0, 0, G_OPTION_ARG_STRING, &from,
            N_ ("The node that runs the agent (this one by its node-name, or the other)"),
            N_ ("NODE") },
          { "to", 0, 0, G_OPTION_ARG_STRING, &to, N_ ("The node whose server accepts the token"),
            N_ ("NODE") },
          { "server", 's', 0, G_OPTION_ARG_STRING, &server,
            N_ ("URL of the --to node's server (needed on the --from node)"), N_ ("URL") },
          { "local-port", 'l', 0, G_OPTION_ARG_INT, &local_port,
            N_ ("The service's port on the --from node"), N_ ("PORT") },
          { "remote-port", 'r', 0, G_OPTION_ARG_INT, &remote_port,
            N_ ("Public port asked of the --to node's server (default: any)"), N_ ("PORT") },
          { "protocol", 'p', 0, G_OPTION_ARG_STRING, &protocol, N_ ("tcp (the default) or udp"),
            N_ ("PROTOCOL") },
          { "exposure", 0, 0, G_OPTION_ARG_STRING, &exposure,
            N_ ("public, or internal (access sessions only; the default)"), N_ ("EXPOSURE") },
          { "token-file", 't', 0, G_OPTION_ARG_FILENAME, &token_file,
            N_ ("The tunnel's token (mode 0600, the same file on both nodes)"), N_ ("FILE") },
          { NULL } };
  g_auto (DaemonClient) client = { 0 };
  g_auto (GVariantBuilder) definition = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);
  g_autoptr (GError) error = NULL;
  g_autofree char *path = NULL;
  int rc;

  rc = parse_daemon_options (&argc, &argv, _ ("NAME"),
                             _ ("Add a node tunnel, as a [node:NAME] group of the config would "
                                "(until it is removed or the daemon restarts)."),
                             entries, FALSE, 1);
  if (rc != EXIT_OK)
    return rc;
  if (local_port < 0 || local_port > G_MAXUINT16 || remote_port < 0 || remote_port > G_MAXUINT16)
    return zlt_cli_fail (EXIT_USAGE, _ ("ports must be from 0 to 65535"));
  /* the daemon checks the whole definition; only what was given is sent */
  if (from != NULL)
    g_variant_builder_add (&definition, "{sv}", "from", g_variant_new_string (from));
  if (to != NULL)
    g_variant_builder_add (&definition, "{sv}", "to", g_variant_new_string (to));
  if (server != NULL)
    g_variant_builder_add (&definition, "{sv}", "server", g_variant_new_string (server));
  if (local_port != 0)
    g_variant_builder_add (&definition, "{sv}", "local-port",
                           g_variant_new_uint16 ((guint16) local_port));
  if (remote_port != 0)
    g_variant_builder_add (&definition, "{sv}", "remote-port",
                           g_variant_new_uint16 ((guint16) remote_port));
  if (protocol != NULL)
    g_variant_builder_add (&definition, "{sv}", "protocol", g_variant_new_string (protocol));
  if (exposure != NULL)
    g_variant_builder_add (&definition, "{sv}", "exposure", g_variant_new_string (exposure));
  if (token_file != NULL)
    {
      /* the daemon runs elsewhere: a relative path means what it meant here */
      g_autofree char *absolute = g_canonicalize_filename (token_file, NULL);

      g_variant_builder_add (&definition, "{sv}", "token-file", g_variant_new_string (absolute));
    }
  rc = daemon_client_connect (&client);
  if (rc != EXIT_OK)
    return rc;
  if (!zlt_dbus_manager_call_add_node_tunnel_sync (
          client.manager, argv[1], g_variant_builder_end (&definition), CHANGE_CALL_FLAGS,
          CHANGE_CALL_TIMEOUT_MS, &path, NULL, &error))
    return fail_dbus (&client, error);
  g_print (_ ("added node tunnel %s\n"), argv[1]);
  return EXIT_OK;
}

static int
node_remove (int argc, char **argv)
{
  g_auto (DaemonClient) client = { 0 };
  g_autoptr (GError) error = NULL;
  int rc;

  rc = parse_daemon_options (&argc, &argv, _ ("NAME"), _ ("Remove a node tunnel."), NULL, FALSE, 1);
  if (rc != EXIT_OK)
    return rc;
  rc = daemon_client_connect (&client);
  if (rc != EXIT_OK)
    return rc;
  if (!zlt_dbus_manager_call_remove_node_tunnel_sync (client.manager, argv[1], CHANGE_CALL_FLAGS,
                                                      CHANGE_CALL_TIMEOUT_MS, NULL, &error))
    return fail_dbus (&client, error);
  g_print (_ ("removed node tunnel %s\n"), argv[1]);
  return EXIT_OK;
}

/* `node add` and `node remove`: the verb is argv[1]; it becomes the program name */
int
zlt_cli_node (int argc, char **argv)
{
  static const Verb verbs[] = { { "add", node_add }, { "remove", node_remove } };

  return dispatch_verb (argc, argv, verbs, G_N_ELEMENTS (verbs),
                        _ ("usage: zlayer-tunnel node add NAME --from NODE --to NODE … | node "
                           "remove NAME\n"),
                        _ ("usage: zlayer-tunnel node add|remove NAME …"));
}

/* ---- access sessions through the daemon ---- */

/* An object given by its Id or its object path; @role (nullable): only tunnels of that
 * role (the same tunnel has the same Id on the server's and the agent's side). */
static GDBusProxy *
find_by_id (DaemonClient *client, const char *iface_name, const char *id, const char *role)
{
  g_autoptr (GPtrArray) all = daemon_client_list (client, iface_name);

  for (guint i = 0; i < all->len; i++)
    {
      GDBusProxy *proxy = g_ptr_array_index (all, i);
      g_autofree char *its_id = zlt_cli_prop_string (proxy, "Id");
      g_autofree char *its_role = zlt_cli_prop_string (proxy, "Role");

      if (role != NULL && !g_str_equal (its_role, role))
        continue;
      if (g_str_equal (its_id, id) || g_str_equal (g_dbus_proxy_get_object_path (proxy), id))
        return g_object_ref (proxy);
    }
  return NULL;
}

static int
session_start (int argc, char **argv)
{
  g_autofree char *ttl_text = NULL;
  gint local_port = 0;
  const GOptionEntry entries[]
      = { { "ttl", 0, 0, G_OPTION_ARG_STRING, &ttl_text,
            N_ ("How long the session lasts, e.g. 90s, 30m, 2h (default 1h; 0 = until "
                "stopped)"),
            N_ ("DURATION") },
          { "local-port", 'l', 0, G_OPTION_ARG_INT, &local_port,
            N_ ("Local port to bind (default: any free one)"), N_ ("PORT") },
          { NULL } };
  g_auto (DaemonClient) client = { 0 };
  g_auto (GVariantBuilder) options = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);
  g_autoptr (GError) error = NULL;
  g_autofree char *path = NULL;
  g_autoptr (GDBusProxy) session = NULL;
  guint ttl = 3600;
  int rc;

  rc = parse_daemon_options (&argc, &argv, _ ("SERVICE"),
                             _ ("Start an access session through the daemon's agent: a local "
                                "port that reaches SERVICE for a while."),
                             entries, TRUE, 1);
  if (rc != EXIT_OK)
    return rc;
  if (ttl_text != NULL && !zlt_parse_duration (ttl_text, &ttl, &error))
    return zlt_cli_fail (EXIT_USAGE, "--ttl: %s", error->message);
  if (local_port < 0 || local_port > G_MAXUINT16)
    return zlt_cli_fail (EXIT_USAGE, _ ("--local-port must be from 0 to 65535"));
  g_variant_builder_add (&options, "{sv}", "ttl", g_variant_new_uint32 (ttl));
  g_variant_builder_add (&options, "{sv}", "local-port",
                         g_variant_new_uint16 ((guint16) local_port));
  rc = daemon_client_connect (&client);
  if (rc != EXIT_OK)
    return rc;
  /* the daemon answers once the server said yes (or why not) */
  if (!zlt_dbus_manager_call_start_access_sync (client.manager, argv[1],
                                                g_variant_builder_end (&options), CHANGE_CALL_FLAGS,
                                                CHANGE_CALL_TIMEOUT_MS, &path, NULL, &error))
    return fail_dbus (&client, error);
  session = G_DBUS_PROXY (zlt_dbus_session_proxy_new_sync (
      client.connection, G_DBUS_PROXY_FLAGS_DO_NOT_AUTO_START,
      g_dbus_object_manager_client_get_name (G_DBUS_OBJECT_MANAGER_CLIENT (client.objects)), path,
      NULL, &error));
  if (session == NULL)
    return fail_dbus (&client, error);
  if (opt_json)
    {
      g_autoptr (JsonBuilder) builder = json_builder_new ();

      json_builder_begin_object (builder);
      zlt_cli_json_add_properties (builder, session, session_keys, G_N_ELEMENTS (session_keys));
      json_builder_end_object (builder);
      zlt_cli_json_print (builder);
    }
  else
    {
      g_autofree char *address = zlt_cli_prop_string (session, "LocalAddress");
      g_autofree char *id = zlt_cli_prop_string (session, "Id");

      g_print (_ ("%s is reachable at %s (session %s)\n"), argv[1], address, id);
    }
  return EXIT_OK;
}

static int
session_stop (int argc, char **argv)
{
  g_auto (DaemonClient) client = { 0 };
  g_autoptr (GError) error = NULL;
  g_autoptr (GDBusProxy) session = NULL;
  int rc;

  rc = parse_daemon_options (&argc, &argv, _ ("ID"),
                             _ ("Stop an access session (its Id or object path)."), NULL, FALSE, 1);
  if (rc != EXIT_OK)
    return rc;
  rc = daemon_client_connect (&client);
  if (rc != EXIT_OK)
    return rc;
  session = find_by_id (&client, IFACE_SESSION, argv[1], NULL);
  if (session == NULL)
    return zlt_cli_fail (EXIT_FAILURE_RUNTIME, _ ("no access session “%s”"), argv[1]);
  if (!zlt_dbus_manager_call_stop_access_sync (
          client.manager, g_dbus_proxy_get_object_path (session), CHANGE_CALL_FLAGS,
          CHANGE_CALL_TIMEOUT_MS, NULL, &error))
    return fail_dbus (&client, error);
  g_print (_ ("stopped access session %s\n"), argv[1]);
  return EXIT_OK;
}

/* `session start` and `session stop` */
int
zlt_cli_session (int argc, char **argv)
{
  static const Verb verbs[] = { { "start", session_start }, { "stop", session_stop } };

  return dispatch_verb (argc, argv, verbs, G_N_ELEMENTS (verbs),
                        _ ("usage: zlayer-tunnel session start SERVICE [--ttl D] [--local-port N] "
                           "| session stop ID\n"),
                        _ ("usage: zlayer-tunnel session start|stop …"));
}

/* ---- disconnect ---- */

int
zlt_cli_disconnect (int argc, char **argv)
{
  g_autofree char *reason = NULL;
  const GOptionEntry entries[]
      = { { "reason", 0, 0, G_OPTION_ARG_STRING, &reason,
            N_ ("What the agent is told (default: disconnected)"), N_ ("TEXT") },
          { NULL } };
  g_auto (DaemonClient) client = { 0 };
  g_autoptr (GError) error = NULL;
  g_autoptr (GDBusProxy) tunnel = NULL;
  int rc;

  rc = parse_daemon_options (&argc, &argv, _ ("TUNNEL"),
                             _ ("End a tunnel of the daemon's server (its Id or object path): "
                                "the agent is told why and nothing is held for a resume."),
                             entries, FALSE, 1);
  if (rc != EXIT_OK)
    return rc;
  rc = daemon_client_connect (&client);
  if (rc != EXIT_OK)
    return rc;
  tunnel = find_by_id (&client, IFACE_TUNNEL, argv[1], "server");
  if (tunnel == NULL)
    return zlt_cli_fail (EXIT_FAILURE_RUNTIME, _ ("the daemon's server has no tunnel “%s”"),
                         argv[1]);
  if (!zlt_dbus_manager_call_disconnect_tunnel_sync (
          client.manager, g_dbus_proxy_get_object_path (tunnel), reason != NULL ? reason : "",
          CHANGE_CALL_FLAGS, CHANGE_CALL_TIMEOUT_MS, NULL, &error))
    return fail_dbus (&client, error);
  g_print (_ ("disconnected tunnel %s\n"), argv[1]);
  return EXIT_OK;
}

/* ---- monitor ---- */

/* "Tunnel 6f92…" or "Node db-link": what a line is about */
static char *
describe_object (GDBusObject *object, const char **iface_short)
{
  static const char *const ifaces[][2] = { { IFACE_TUNNEL, "tunnel" },
                                           { IFACE_SERVICE, "service" },
                                           { IFACE_SESSION, "session" },
                                           { IFACE_NODE, "node" } };

  for (gsize i = 0; i < G_N_ELEMENTS (ifaces); i++)
    {
      g_autoptr (GDBusInterface) iface = g_dbus_object_get_interface (object, ifaces[i][0]);

      if (iface != NULL)
        {
          const char *key
              = g_str_equal (ifaces[i][0], IFACE_SERVICE) || g_str_equal (ifaces[i][0], IFACE_NODE)
                    ? "Name"
                    : "Id";

          *iface_short = ifaces[i][1];
          return zlt_cli_prop_string (G_DBUS_PROXY (iface), key);
        }
    }
  *iface_short = "object";
  return g_strdup (g_dbus_object_get_object_path (object));
}

static char *
variant_text (GVariant *value)
{
  if (g_variant_is_of_type (value, G_VARIANT_TYPE_STRING)
      || g_variant_is_of_type (value, G_VARIANT_TYPE_OBJECT_PATH))
    return g_strdup (g_variant_get_string (value, NULL));
  return g_variant_print (value, FALSE);
}

static void
monitor_print (const char *event, const char *what, const char *id, const char *path,
               GVariant *changed)
{
  g_autoptr (GDateTime) now = g_date_time_new_now_local ();

  if (opt_json)
    {
      g_autoptr (JsonBuilder) builder = json_builder_new ();
      g_autoptr (JsonGenerator) generator = json_generator_new ();
      g_autoptr (JsonNode) root = NULL;
      g_autofree char *text = NULL;

      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "time_us");
      json_builder_add_int_value (builder, g_date_time_to_unix (now) * G_USEC_PER_SEC
                                               + g_date_time_get_microsecond (now));
      json_builder_set_member_name (builder, "event");
      json_builder_add_string_value (builder, event);
      json_builder_set_member_name (builder, "type");
      json_builder_add_string_value (builder, what);
      json_builder_set_member_name (builder, "id");
      json_builder_add_string_value (builder, id);
      json_builder_set_member_name (builder, "path");
      json_builder_add_string_value (builder, path);
      if (changed != NULL)
        {
          GVariantIter iter;
          const char *name;
          GVariant *value;

          json_builder_set_member_name (builder, "properties");
          json_builder_begin_object (builder);
          g_variant_iter_init (&iter, changed);
          while (g_variant_iter_next (&iter, "{&sv}", &name, &value))
            {
              json_builder_set_member_name (builder, name);
              json_builder_add_value (builder, json_gvariant_serialize (value));
              g_variant_unref (value);
            }
          json_builder_end_object (builder);
        }
      json_builder_end_object (builder);
      /* one object per line, for `jq` and friends */
      root = json_builder_get_root (builder);
      json_generator_set_root (generator, root);
      text = json_generator_to_data (generator, NULL);
      g_print ("%s\n", text);
    }
  else
    {
      g_autofree char *stamp = g_date_time_format (now, "%H:%M:%S");
      g_autoptr (GString) line = g_string_new (NULL);

      g_string_append_printf (line, "%s %s %s %s", stamp, what, id, event);
      if (changed != NULL)
        {
          GVariantIter iter;
          const char *name;
          GVariant *value;
          gboolean first = TRUE;

          g_variant_iter_init (&iter, changed);
          while (g_variant_iter_next (&iter, "{&sv}", &name, &value))
            {
              g_autofree char *text = variant_text (value);

              g_string_append_printf (line, "%s %s=%s", first ? ":" : ",", name, text);
              first = FALSE;
              g_variant_unref (value);
            }
        }
      g_print ("%s\n", line->str);
    }
}

static void
on_monitor_object_added (GDBusObjectManager *manager, GDBusObject *object, gpointer user_data)
{
  const char *what;
  g_autofree char *id = describe_object (object, &what);

  monitor_print ("added", what, id, g_dbus_object_get_object_path (object), NULL);
}

static void
on_monitor_object_removed (GDBusObjectManager *manager, GDBusObject *object, gpointer user_data)
{
  const char *what;
  g_autofree char *id = describe_object (object, &what);

  monitor_print ("removed", what, id, g_dbus_object_get_object_path (object), NULL);
}

static void
on_monitor_properties_changed (GDBusObjectManagerClient *manager, GDBusObjectProxy *object,
                               GDBusProxy *proxy, GVariant *changed, const char *const *invalidated,
                               gpointer user_data)
{
  const char *what;
  g_autofree char *id = describe_object (G_DBUS_OBJECT (object), &what);

  monitor_print ("changed", what, id, g_dbus_proxy_get_object_path (proxy), changed);
}

static void
on_monitor_manager_changed (GDBusProxy *proxy, GVariant *changed, const char *const *invalidated,
                            gpointer user_data)
{
  monitor_print ("changed", "daemon", "", g_dbus_proxy_get_object_path (proxy), changed);
}

static void
on_monitor_owner (GObject *object, GParamSpec *pspec, gpointer user_data)
{
  DaemonClient *client = user_data;
  g_autofree char *owner
      = g_dbus_object_manager_client_get_name_owner (G_DBUS_OBJECT_MANAGER_CLIENT (object));

  if (owner != NULL)
    return;
  zlt_cli_exit_code = fail_not_running (client->bus_type);
  g_main_loop_quit (zlt_cli_main_loop);
}

int
zlt_cli_monitor (int argc, char **argv)
{
  g_auto (DaemonClient) client = { 0 };
  int rc;

  rc = parse_daemon_options (&argc, &argv, "",
                             _ ("Print the daemon's objects and property changes as they happen, "
                                "until interrupted."),
                             NULL, TRUE, 0);
  if (rc != EXIT_OK)
    return rc;
  rc = daemon_client_connect (&client);
  if (rc != EXIT_OK)
    return rc;
  g_signal_connect (client.objects, "object-added", G_CALLBACK (on_monitor_object_added), NULL);
  g_signal_connect (client.objects, "object-removed", G_CALLBACK (on_monitor_object_removed), NULL);
  g_signal_connect (client.objects, "interface-proxy-properties-changed",
                    G_CALLBACK (on_monitor_properties_changed), NULL);
  g_signal_connect (client.manager, "g-properties-changed", G_CALLBACK (on_monitor_manager_changed),
                    NULL);
  g_signal_connect (client.objects, "notify::name-owner", G_CALLBACK (on_monitor_owner), &client);
  /* what is there now, then what changes */
  {
    GList *objects = g_dbus_object_manager_get_objects (client.objects);

    for (GList *l = objects; l != NULL; l = l->next)
      on_monitor_object_added (client.objects, l->data, NULL);
    g_list_free_full (objects, g_object_unref);
  }
  zlt_cli_exit_code = EXIT_OK;
  zlt_cli_run_main_loop ();
  g_signal_handlers_disconnect_by_data (client.objects, &client);
  g_signal_handlers_disconnect_by_func (client.objects, on_monitor_object_added, NULL);
  g_signal_handlers_disconnect_by_func (client.objects, on_monitor_object_removed, NULL);
  g_signal_handlers_disconnect_by_func (client.objects, on_monitor_properties_changed, NULL);
  g_signal_handlers_disconnect_by_func (client.manager, on_monitor_manager_changed, NULL);
  return zlt_cli_exit_code;
}
