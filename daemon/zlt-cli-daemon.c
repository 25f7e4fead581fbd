/* zlt-cli-daemon.c: the zlayer-tunnel commands for a running zlayer-tunneld, over
 * D-Bus: status, tunnels, services, sessions, expose, unexpose, reload. They never
 * start the daemon (no bus activation from a query). */
#include "config.h"

#include <glib/gi18n.h>
#include <string.h>

#include "zlayer-tunnel.h"
#include "zlt-cli-output.h"
#include "zlt-cli.h"
#include "zlt-dbus-generated.h"

#define DAEMON_BUS_NAME "org.zlayer.Tunnel1"
#define DAEMON_MANAGER_PATH "/org/zlayer/Tunnel1"
#define IFACE_TUNNEL "org.zlayer.Tunnel1.Tunnel"
#define IFACE_SERVICE "org.zlayer.Tunnel1.Service"
#define IFACE_SESSION "org.zlayer.Tunnel1.Session"

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
  return zlt_cli_fail (EXIT_FAILURE_RUNTIME, "%s", error->message);
}

/* Connects and checks that the daemon owns its name; never starts it (no activation
 * from a status query). Returns EXIT_OK or the code to exit with, message printed. */
static int
daemon_client_connect (DaemonClient *client)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *owner = NULL;

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
};

static const ZltCliJsonKey service_keys[] = {
  { "Id", "id" },
  { "Name", "name" },
  { "Protocol", "protocol" },
  { "Expose", "expose" },
  { "LocalPort", "local_port" },
  { "RequestedPort", "requested_port" },
  { "AssignedPort", "assigned_port" },
  { "ActiveConnections", "active_connections" },
  { "TotalConnections", "total_connections" },
  { "BytesIn", "bytes_in" },
  { "BytesOut", "bytes_out" },
  { "Tunnel", "tunnel" },
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

static void
json_add_service (JsonBuilder *builder, GDBusProxy *service)
{
  json_builder_begin_object (builder);
  zlt_cli_json_add_properties (builder, service, service_keys, G_N_ELEMENTS (service_keys));
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
    json_add_service (builder, g_ptr_array_index (services, i));
  json_builder_end_array (builder);
  json_builder_end_object (builder);
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
      = { _ ("NAME"),   _ ("ROLE"),  _ ("PROTOCOL"), _ ("EXPOSE"), _ ("LOCAL"), _ ("PUBLIC"),
          _ ("ACTIVE"), _ ("TOTAL"), _ ("IN"),       _ ("OUT"),    NULL };
  g_autoptr (ZltCliTable) table = zlt_cli_table_new (headers, 0x3f0);

  for (guint i = 0; i < services->len; i++)
    {
      GDBusProxy *service = g_ptr_array_index (services, i);
      g_autofree char *tunnel_path = zlt_cli_prop_string (service, "Tunnel");
      g_autoptr (GDBusProxy) tunnel = daemon_client_lookup (client, tunnel_path, IFACE_TUNNEL);

      zlt_cli_table_add (table, zlt_cli_prop_string (service, "Name"));
      zlt_cli_table_add (table, tunnel != NULL ? zlt_cli_prop_string (tunnel, "Role") : NULL);
      zlt_cli_table_add (table, zlt_cli_prop_string (service, "Protocol"));
      zlt_cli_table_add (table, zlt_cli_prop_string (service, "Expose"));
      zlt_cli_table_add (table, zlt_cli_format_port (zlt_cli_prop_int (service, "LocalPort")));
      zlt_cli_table_add (table, zlt_cli_format_port (zlt_cli_prop_int (service, "AssignedPort")));
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
    {
      g_print (_ ("no tunnels\n"));
      return EXIT_OK;
    }
  g_print ("\n");
  print_tunnels_table (tunnels);
  services = daemon_client_list (&client, IFACE_SERVICE);
  if (services->len > 0)
    {
      g_print ("\n");
      print_services_table (&client, services);
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
    {
      g_autoptr (JsonBuilder) builder = json_builder_new ();

      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "tunnels");
      json_builder_begin_array (builder);
      for (guint i = 0; i < tunnels->len; i++)
        json_add_tunnel (builder, &client, g_ptr_array_index (tunnels, i));
      json_builder_end_array (builder);
      json_builder_end_object (builder);
      zlt_cli_json_print (builder);
    }
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
    {
      g_autoptr (JsonBuilder) builder = json_builder_new ();

      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "services");
      json_builder_begin_array (builder);
      for (guint i = 0; i < services->len; i++)
        json_add_service (builder, g_ptr_array_index (services, i));
      json_builder_end_array (builder);
      json_builder_end_object (builder);
      zlt_cli_json_print (builder);
    }
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
    {
      g_autoptr (JsonBuilder) builder = json_builder_new ();

      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "sessions");
      json_builder_begin_array (builder);
      for (guint i = 0; i < sessions->len; i++)
        {
          GDBusProxy *session = g_ptr_array_index (sessions, i);

          json_builder_begin_object (builder);
          zlt_cli_json_add_properties (builder, session, session_keys, G_N_ELEMENTS (session_keys));
          json_builder_end_object (builder);
        }
      json_builder_end_array (builder);
      json_builder_end_object (builder);
      zlt_cli_json_print (builder);
    }
  else if (sessions->len == 0)
    g_print (_ ("no access sessions\n"));
  else
    print_sessions_table (sessions);
  return EXIT_OK;
}

/* ---- expose, unexpose, reload ---- */

int
zlt_cli_expose (int argc, char **argv)
{
  g_autofree char *protocol = NULL;
  g_autofree char *local_host = NULL;
  gint remote_port = 0;
  gboolean internal = FALSE;
  const GOptionEntry entries[]
      = { { "remote-port", 'r', 0, G_OPTION_ARG_INT, &remote_port,
            N_ ("Public port to ask the server for (default: any)"), N_ ("PORT") },
          { "protocol", 'p', 0, G_OPTION_ARG_STRING, &protocol, N_ ("tcp (the default) or udp"),
            N_ ("PROTOCOL") },
          { "local-host", 0, 0, G_OPTION_ARG_STRING, &local_host,
            N_ ("Host the service listens on (default 127.0.0.1)"), N_ ("HOST") },
          { "internal", 0, 0, G_OPTION_ARG_NONE, &internal,
            N_ ("Reachable only through access sessions, not on a public port"), NULL },
          { NULL } };
  g_auto (DaemonClient) client = { 0 };
  g_autoptr (GError) error = NULL;
  g_autofree char *service_path = NULL;
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

  g_variant_builder_add (&options, "{sv}", "protocol",
                         g_variant_new_string (protocol != NULL ? protocol : "tcp"));
  if (local_host != NULL)
    g_variant_builder_add (&options, "{sv}", "local-host", g_variant_new_string (local_host));
  g_variant_builder_add (&options, "{sv}", "remote-port",
                         g_variant_new_uint16 ((guint16) remote_port));
  g_variant_builder_add (&options, "{sv}", "expose",
                         g_variant_new_string (internal ? "internal" : "public"));

  rc = daemon_client_connect (&client);
  if (rc != EXIT_OK)
    return rc;
  if (!zlt_dbus_manager_call_expose_sync (
          client.manager, argv[1], (guint16) local_port, g_variant_builder_end (&options),
          G_DBUS_CALL_FLAGS_NO_AUTO_START, -1, &service_path, NULL, &error))
    return fail_dbus (&client, error);
  g_print (_ ("exposed %s (local port %u)\n"), argv[1], (guint) local_port);
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
  if (!zlt_dbus_manager_call_unexpose_sync (client.manager, argv[1],
                                            G_DBUS_CALL_FLAGS_NO_AUTO_START, -1, NULL, &error))
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
  if (!zlt_dbus_manager_call_reload_sync (client.manager, G_DBUS_CALL_FLAGS_NO_AUTO_START, -1, NULL,
                                          &error))
    return fail_dbus (&client, error);
  g_print (_ ("configuration reloaded\n"));
  return EXIT_OK;
}
