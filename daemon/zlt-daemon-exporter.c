/* zlt-daemon-exporter.c: mirrors the daemon's tunnels and services to D-Bus.
 *
 * Every ZltTunnel and ZltService of the running roles, every ZltSession of the daemon's
 * ZltAccessManager and every ZltNodeTunnel of its ZltNodeManager gets a skeleton object
 * below /org/zlayer/Tunnel1 (Tunnel/N, Service/N, Session/N, Node/N), exported through
 * a GDBusObjectManagerServer. Sessions come and go with the access manager's
 * session-added and session-removed, so one that expires leaves the bus by itself.
 * A skeleton is filled from its core object whenever that object notifies; the core
 * objects coalesce their byte-counter notifications (ZLT_NOTIFY_INTERVAL_MS) and the
 * skeletons coalesce property changes into one PropertiesChanged per main-loop turn, so
 * traffic never turns into a signal per chunk. Everything runs on the main thread.
 *
 * Methods that change something ask zlt-daemon-auth first; the rest answer at once. */
#include "config.h"

#include <glib/gi18n.h>
#include <string.h>

#include "zlt-daemon-auth.h"
#include "zlt-daemon-error.h"
#include "zlt-daemon-exporter.h"
#include "zlt-dbus-generated.h"
#include "zlt-util.h" /* zlt_config_directory */

/* Each object tells the bus what changed at most this often (NetworkManager does the
 * same for its statistics): a connection storm must not become a signal storm for every
 * other client of the system bus. State changes are sent at once. */
#define EXPORT_INTERVAL_US (250 * G_USEC_PER_SEC / 1000)

/* At most one run of @func per EXPORT_INTERVAL_US: the first change after a quiet spell
 * goes out at once, later ones together at the end of the interval. */
typedef struct
{
  GSourceFunc func;
  gpointer data;
  gint64 last; /* monotonic µs of the last run */
  GSource *source;
} Throttle;

static gboolean
throttle_fire (gpointer user_data)
{
  Throttle *throttle = user_data;

  g_clear_pointer (&throttle->source, g_source_unref);
  throttle->last = g_get_monotonic_time ();
  throttle->func (throttle->data);
  return G_SOURCE_REMOVE;
}

static void
throttle_now (Throttle *throttle)
{
  if (throttle->source != NULL)
    {
      g_source_destroy (throttle->source);
      g_clear_pointer (&throttle->source, g_source_unref);
    }
  throttle->last = g_get_monotonic_time ();
  throttle->func (throttle->data);
}

static void
throttle_poke (Throttle *throttle)
{
  gint64 wait;

  if (throttle->source != NULL)
    return;
  wait = throttle->last + EXPORT_INTERVAL_US - g_get_monotonic_time ();
  if (wait <= 0)
    {
      throttle_now (throttle);
      return;
    }
  throttle->source = g_timeout_source_new ((guint) ((wait + 999) / 1000));
  g_source_set_callback (throttle->source, throttle_fire, throttle, NULL);
  g_source_set_static_name (throttle->source, "[zlt] export changes");
  g_source_attach (throttle->source, NULL);
}

static void
throttle_clear (Throttle *throttle)
{
  if (throttle->source != NULL)
    {
      g_source_destroy (throttle->source);
      g_clear_pointer (&throttle->source, g_source_unref);
    }
}

/* one exported object and the core object it shows */
typedef struct
{
  ZltDaemonExporter *exporter; /* not owned */
  GObject *core;               /* ZltTunnel, ZltService, ZltSession or ZltNodeTunnel, owned */
  char *path;
  ZltDbusObjectSkeleton *object;
  GDBusInterfaceSkeleton *iface; /* ZltDbusTunnel, ZltDbusService, ZltDbusSession or
                                  * ZltDbusNode skeleton */
  gulong notify_id;
  Throttle sync; /* the core's changes, copied to the skeleton */
} Mirror;

struct _ZltDaemonExporter
{
  GObject parent_instance;

  ZltDaemon *daemon; /* NULL once unexported */
  GDBusConnection *connection;
  gboolean session_bus;
  GCancellable *cancellable; /* of caller checks in flight */

  GDBusObjectManagerServer *manager;
  ZltDbusManager *manager_iface;
  Throttle manager_sync;
  GHashTable *tunnels;       /* ZltTunnel* → Mirror* (owned) */
  GHashTable *services;      /* ZltService* → Mirror* (owned) */
  GHashTable *nodes;         /* ZltNodeTunnel* → Mirror* (owned) */
  GHashTable *sessions;      /* ZltSession* → Mirror* (owned) */
  GHashTable *paths;         /* path → Mirror* of a tunnel (borrowed) */
  GHashTable *session_paths; /* path → Mirror* of a session (borrowed) */
  ZltAccessManager *access;  /* followed once the daemon made it (a reference) */
  GHashTable *pending;       /* server services to export once their port is open (refs) */
  GSource *pending_source;
  guint next_tunnel;
  guint next_service;
  guint next_node;
  guint next_session;
};

G_DEFINE_FINAL_TYPE (ZltDaemonExporter, zlt_daemon_exporter, G_TYPE_OBJECT)

static const char *
enum_nick (GType type, gint value)
{
  g_autoptr (GEnumClass) klass = g_type_class_ref (type);
  GEnumValue *v = g_enum_get_value (klass, value);

  /* static enum types keep their class (and nicks) for good */
  return v != NULL ? v->value_nick : "";
}

/* D-Bus strings cannot be NULL */
static const char *
or_empty (const char *s)
{
  return s != NULL ? s : "";
}

static Mirror *
tunnel_mirror (ZltDaemonExporter *self, ZltTunnel *tunnel)
{
  return tunnel != NULL ? g_hash_table_lookup (self->tunnels, tunnel) : NULL;
}

static ZltTunnel *
agent_tunnel (ZltDaemonExporter *self)
{
  ZltAgent *agent = self->daemon ? zlt_daemon_get_agent (self->daemon) : NULL;

  return agent != NULL ? zlt_agent_get_tunnel (agent) : NULL;
}

/* ---- filling skeletons ---- */

static void
sync_manager (ZltDaemonExporter *self)
{
  ZltDbusManager *m = self->manager_iface;
  ZltServer *server = zlt_daemon_get_server (self->daemon);
  ZltAgent *agent = zlt_daemon_get_agent (self->daemon);
  const char *roles[4] = { NULL };
  guint n = 0;

  if (server != NULL)
    roles[n++] = "server";
  if (agent != NULL)
    roles[n++] = "agent";
  /* node tunnels are a role of their own: a node-only daemon has no other */
  if (g_hash_table_size (self->nodes) > 0)
    roles[n++] = "node";
  zlt_dbus_manager_set_version (m, PACKAGE_VERSION);
  zlt_dbus_manager_set_roles (m, roles);

  if (server != NULL)
    {
      const char *host = zlt_server_config_get_listen_address (zlt_server_get_config (server));
      g_autofree char *address = NULL;

      address = zlt_net_join_host_port (host, zlt_server_get_port (server));
      zlt_dbus_manager_set_server_address (m, address);
    }
  else
    zlt_dbus_manager_set_server_address (m, "");

  if (agent != NULL)
    {
      const char *error = zlt_agent_get_last_error (agent);

      zlt_dbus_manager_set_agent_server (
          m, zlt_client_config_get_server_url (zlt_daemon_get_agent_config (self->daemon)));
      zlt_dbus_manager_set_agent_state (
          m, enum_nick (ZLT_TYPE_TUNNEL_STATE, zlt_agent_get_state (agent)));
      zlt_dbus_manager_set_agent_last_error (m, or_empty (error));
      zlt_dbus_manager_set_agent_sessions (m, zlt_agent_get_n_sessions (agent));
    }
  else
    {
      zlt_dbus_manager_set_agent_server (m, "");
      zlt_dbus_manager_set_agent_state (m, "");
      zlt_dbus_manager_set_agent_last_error (m, "");
      zlt_dbus_manager_set_agent_sessions (m, 0);
    }
  zlt_dbus_manager_set_ntunnels (m, g_hash_table_size (self->tunnels));
}

static gboolean
manager_sync (gpointer user_data)
{
  sync_manager (user_data);
  return G_SOURCE_REMOVE;
}

static void
sync_tunnel (ZltDaemonExporter *self, Mirror *mirror)
{
  ZltTunnel *tunnel = ZLT_TUNNEL (mirror->core);
  ZltDbusTunnel *iface = ZLT_DBUS_TUNNEL (mirror->iface);
  g_autofree char *id = zlt_tunnel_dup_id_string (tunnel);
  g_autoptr (GPtrArray) services = zlt_tunnel_get_services (tunnel);
  g_autoptr (GPtrArray) paths = g_ptr_array_new ();
  const char *last_error = NULL;

  for (guint i = 0; i < services->len; i++)
    {
      Mirror *service = g_hash_table_lookup (self->services, g_ptr_array_index (services, i));
      if (service != NULL)
        g_ptr_array_add (paths, service->path);
    }
  g_ptr_array_add (paths, NULL);
  if (tunnel == agent_tunnel (self))
    last_error = zlt_agent_get_last_error (zlt_daemon_get_agent (self->daemon));

  zlt_dbus_tunnel_set_id (iface, or_empty (id));
  zlt_dbus_tunnel_set_role (iface, enum_nick (ZLT_TYPE_ROLE, zlt_tunnel_get_role (tunnel)));
  zlt_dbus_tunnel_set_state (iface,
                             enum_nick (ZLT_TYPE_TUNNEL_STATE, zlt_tunnel_get_state (tunnel)));
  zlt_dbus_tunnel_set_peer_address (iface, or_empty (zlt_tunnel_get_peer_address (tunnel)));
  zlt_dbus_tunnel_set_client_id (iface, or_empty (zlt_tunnel_get_client_id (tunnel)));
  zlt_dbus_tunnel_set_token_name (iface, or_empty (zlt_tunnel_get_token_name (tunnel)));
  zlt_dbus_tunnel_set_created (iface, zlt_tunnel_get_created (tunnel));
  zlt_dbus_tunnel_set_last_activity (iface, zlt_tunnel_get_last_activity (tunnel));
  zlt_dbus_tunnel_set_bytes_in (iface, zlt_tunnel_get_bytes_in (tunnel));
  zlt_dbus_tunnel_set_bytes_out (iface, zlt_tunnel_get_bytes_out (tunnel));
  zlt_dbus_tunnel_set_services (iface, (const char *const *) paths->pdata);
  zlt_dbus_tunnel_set_last_error (iface, or_empty (last_error));
  zlt_dbus_tunnel_set_rate_limit_in (iface, zlt_tunnel_get_rate_limit_in (tunnel));
  zlt_dbus_tunnel_set_rate_limit_out (iface, zlt_tunnel_get_rate_limit_out (tunnel));
}

/* The agent's config of @service; NULL for a server's services. */
static const ZltServiceConfig *
service_config_of (ZltDaemonExporter *self, ZltService *service)
{
  ZltClientConfig *config = self->daemon ? zlt_daemon_get_agent_config (self->daemon) : NULL;

  if (config == NULL || agent_tunnel (self) == NULL
      || zlt_service_get_tunnel (service) != agent_tunnel (self))
    return NULL;
  return zlt_client_config_lookup_service (config, zlt_service_get_name (service));
}

/* A server's service and its replicas (agents whose tokens own the name, sharing its
 * port); an agent's service is one. */
static GPtrArray *
replicas_of (ZltDaemonExporter *self, ZltService *service)
{
  ZltServer *server = zlt_daemon_get_server (self->daemon);
  ZltTunnel *tunnel = zlt_service_get_tunnel (service);
  GPtrArray *one;

  if (server != NULL && tunnel != NULL && zlt_tunnel_get_role (tunnel) == ZLT_ROLE_SERVER)
    return zlt_registry_get_replicas (zlt_server_get_registry (server), service);
  one = g_ptr_array_new_with_free_func (g_object_unref);
  g_ptr_array_add (one, g_object_ref (service));
  return one;
}

/* the other replicas' counts change with this one */
static void
poke_replicas (ZltDaemonExporter *self, ZltService *service)
{
  g_autoptr (GPtrArray) replicas = replicas_of (self, service);

  for (guint i = 0; i < replicas->len; i++)
    {
      Mirror *mirror = g_hash_table_lookup (self->services, g_ptr_array_index (replicas, i));

      if (mirror != NULL && mirror->core != (GObject *) service)
        throttle_poke (&mirror->sync);
    }
}

static void
sync_service (ZltDaemonExporter *self, Mirror *mirror)
{
  ZltService *service = ZLT_SERVICE (mirror->core);
  ZltDbusService *iface = ZLT_DBUS_SERVICE (mirror->iface);
  g_autofree char *id = zlt_service_dup_id_string (service);
  Mirror *tunnel = tunnel_mirror (self, zlt_service_get_tunnel (service));
  const ZltServiceConfig *sc = service_config_of (self, service);

  zlt_dbus_service_set_id (iface, or_empty (id));
  zlt_dbus_service_set_name (iface, zlt_service_get_name (service));
  zlt_dbus_service_set_protocol (iface,
                                 zlt_protocol_to_string (zlt_service_get_protocol (service)));
  zlt_dbus_service_set_expose (iface,
                               enum_nick (ZLT_TYPE_EXPOSE, zlt_service_get_expose (service)));
  zlt_dbus_service_set_local_port (iface, zlt_service_get_local_port (service));
  zlt_dbus_service_set_requested_port (iface, zlt_service_get_requested_port (service));
  zlt_dbus_service_set_assigned_port (iface, zlt_service_get_assigned_port (service));
  zlt_dbus_service_set_state (iface,
                              enum_nick (ZLT_TYPE_SERVICE_STATE, zlt_service_get_state (service)));
  zlt_dbus_service_set_last_error (iface, or_empty (zlt_service_get_last_error (service)));
  zlt_dbus_service_set_active_connections (iface, zlt_service_get_active_connections (service));
  zlt_dbus_service_set_total_connections (iface, zlt_service_get_total_connections (service));
  zlt_dbus_service_set_bytes_in (iface, zlt_service_get_bytes_in (service));
  zlt_dbus_service_set_bytes_out (iface, zlt_service_get_bytes_out (service));
  /* "/" is the D-Bus spelling of "none" */
  zlt_dbus_service_set_tunnel (iface, tunnel != NULL ? tunnel->path : "/");
  zlt_dbus_service_set_proxy_protocol (
      iface,
      zlt_proxy_protocol_to_string (sc != NULL ? sc->proxy_protocol : ZLT_PROXY_PROTOCOL_NONE));
  zlt_dbus_service_set_hostname (iface, or_empty (zlt_service_get_hostname (service)));
  /* bytes/s, 0 = none; a server's services: 0 */
  zlt_dbus_service_set_rate_limit_in (iface, sc != NULL ? sc->rate_limit_in : 0);
  zlt_dbus_service_set_rate_limit_out (iface, sc != NULL ? sc->rate_limit_out : 0);
  {
    g_autoptr (GPtrArray) replicas = replicas_of (self, service);

    zlt_dbus_service_set_replicas (iface, MAX (replicas->len, 1));
  }
  {
    ZltServer *server = zlt_daemon_get_server (self->daemon);
    ZltTunnel *owner = zlt_service_get_tunnel (service);
    gboolean served
        = server != NULL && owner != NULL && zlt_tunnel_get_role (owner) == ZLT_ROLE_SERVER;

    zlt_dbus_service_set_replica_balance (
        iface, served ? enum_nick (ZLT_TYPE_REPLICA_BALANCE, zlt_server_config_get_replica_balance (
                                                                 zlt_server_get_config (server)))
                      : "");
    zlt_dbus_service_set_replica_state (
        iface,
        served ? enum_nick (ZLT_TYPE_REPLICA_STATE, zlt_server_get_replica_state (server, service))
               : "");
  }
}

/* a replica turned late or on time, or began or ended a rest */
static void
on_replica_changed (ZltServer *server, ZltService *service, gpointer user_data)
{
  ZltDaemonExporter *self = user_data;
  Mirror *mirror = g_hash_table_lookup (self->services, service);

  if (mirror != NULL)
    throttle_poke (&mirror->sync);
}

static const char *
direction_string (ZltNodeDirection direction)
{
  switch (direction)
    {
    case ZLT_NODE_DIRECTION_OUTBOUND:
      return "outbound";
    case ZLT_NODE_DIRECTION_INBOUND:
      return "inbound";
    case ZLT_NODE_DIRECTION_NONE:
    default:
      return "none";
    }
}

static void
sync_node (ZltDaemonExporter *self, Mirror *mirror)
{
  ZltNodeTunnel *node = ZLT_NODE_TUNNEL (mirror->core);
  ZltDbusNode *iface = ZLT_DBUS_NODE (mirror->iface);

  zlt_dbus_node_set_name (iface, zlt_node_tunnel_get_name (node));
  zlt_dbus_node_set_from_node (iface, zlt_node_tunnel_get_from (node));
  zlt_dbus_node_set_to_node (iface, zlt_node_tunnel_get_to (node));
  zlt_dbus_node_set_server (iface, or_empty (zlt_node_tunnel_get_server (node)));
  zlt_dbus_node_set_direction (iface, direction_string (zlt_node_tunnel_get_direction (node)));
  zlt_dbus_node_set_local_port (iface, zlt_node_tunnel_get_local_port (node));
  zlt_dbus_node_set_remote_port (iface, zlt_node_tunnel_get_remote_port (node));
  zlt_dbus_node_set_protocol (iface, zlt_protocol_to_string (zlt_node_tunnel_get_protocol (node)));
  zlt_dbus_node_set_exposure (iface,
                              enum_nick (ZLT_TYPE_EXPOSE, zlt_node_tunnel_get_exposure (node)));
  zlt_dbus_node_set_state (iface,
                           enum_nick (ZLT_TYPE_TUNNEL_STATE, zlt_node_tunnel_get_state (node)));
  zlt_dbus_node_set_last_error (iface, or_empty (zlt_node_tunnel_get_last_error (node)));
  zlt_dbus_node_set_bytes_in (iface, zlt_node_tunnel_get_bytes_in (node));
  zlt_dbus_node_set_bytes_out (iface, zlt_node_tunnel_get_bytes_out (node));
  zlt_dbus_node_set_latency_us (iface, zlt_node_tunnel_get_latency_us (node));
}

static void
sync_session (ZltDaemonExporter *self, Mirror *mirror)
{
  ZltSession *session = ZLT_SESSION (mirror->core);
  ZltDbusSession *iface = ZLT_DBUS_SESSION (mirror->iface);
  g_autofree char *id = zlt_session_dup_id_string (session);

  zlt_dbus_session_set_id (iface, or_empty (id));
  zlt_dbus_session_set_endpoint (iface, or_empty (zlt_session_get_endpoint (session)));
  zlt_dbus_session_set_local_address (iface, or_empty (zlt_session_get_local_address (session)));
  zlt_dbus_session_set_remote_service (iface, zlt_session_get_remote_service (session));
  zlt_dbus_session_set_created (iface, zlt_session_get_created (session));
  zlt_dbus_session_set_expires (iface, zlt_session_get_expires (session));
  zlt_dbus_session_set_active_connections (iface, zlt_session_get_active_connections (session));
  zlt_dbus_session_set_total_connections (iface, zlt_session_get_total_connections (session));
  zlt_dbus_session_set_bytes_in (iface, zlt_session_get_bytes_in (session));
  zlt_dbus_session_set_bytes_out (iface, zlt_session_get_bytes_out (session));
  zlt_dbus_session_set_last_error (iface, or_empty (zlt_session_get_last_error (session)));
}

static gboolean
mirror_sync (gpointer user_data)
{
  Mirror *mirror = user_data;
  GObject *object = mirror->core;

  if (ZLT_IS_TUNNEL (object))
    sync_tunnel (mirror->exporter, mirror);
  else if (ZLT_IS_SESSION (object))
    sync_session (mirror->exporter, mirror);
  else if (ZLT_IS_NODE_TUNNEL (object))
    sync_node (mirror->exporter, mirror);
  else
    sync_service (mirror->exporter, mirror);
  return G_SOURCE_REMOVE;
}

static void
on_core_notify (GObject *object, GParamSpec *pspec, gpointer user_data)
{
  Mirror *mirror = user_data;

  /* a state change is sent at once, so a watcher sees every step (disconnected, then
   * connected again) rather than only the last one of an interval */
  if (pspec == NULL || g_str_equal (pspec->name, "state"))
    {
      throttle_now (&mirror->sync);
      g_dbus_interface_skeleton_flush (mirror->iface);
      return;
    }
  throttle_poke (&mirror->sync);
}

/* ---- objects coming and going ---- */

static void
mirror_free (gpointer data)
{
  Mirror *mirror = data;

  g_clear_signal_handler (&mirror->notify_id, mirror->core);
  throttle_clear (&mirror->sync);
  g_clear_object (&mirror->core);
  g_clear_object (&mirror->iface);
  g_clear_object (&mirror->object);
  g_free (mirror->path);
  g_free (mirror);
}

static gboolean on_tunnel_handle_disconnect (ZltDaemonExporter *self,
                                             GDBusMethodInvocation *invocation);

static void
add_tunnel (ZltDaemonExporter *self, ZltTunnel *tunnel)
{
  g_autoptr (ZltDbusTunnel) iface = NULL;
  Mirror *mirror;

  if (g_hash_table_contains (self->tunnels, tunnel))
    return;
  mirror = g_new0 (Mirror, 1);
  mirror->exporter = self;
  mirror->sync = (Throttle){ mirror_sync, mirror, 0, NULL };
  mirror->core = g_object_ref (G_OBJECT (tunnel));
  mirror->path = g_strdup_printf (ZLT_DBUS_PATH "/Tunnel/%u", self->next_tunnel++);
  mirror->object = zlt_dbus_object_skeleton_new (mirror->path);
  iface = zlt_dbus_tunnel_skeleton_new ();
  g_signal_connect_object (iface, "handle-disconnect", G_CALLBACK (on_tunnel_handle_disconnect),
                           self, G_CONNECT_SWAPPED);
  zlt_dbus_object_skeleton_set_tunnel (mirror->object, iface);
  mirror->iface = G_DBUS_INTERFACE_SKELETON (g_steal_pointer (&iface));
  g_hash_table_insert (self->tunnels, tunnel, mirror);
  g_hash_table_insert (self->paths, mirror->path, mirror);

  sync_tunnel (self, mirror);
  mirror->notify_id = g_signal_connect (tunnel, "notify", G_CALLBACK (on_core_notify), mirror);
  g_dbus_object_manager_server_export (self->manager, G_DBUS_OBJECT_SKELETON (mirror->object));
  throttle_poke (&self->manager_sync);
  g_debug ("exported %s (%s tunnel)", mirror->path,
           enum_nick (ZLT_TYPE_ROLE, zlt_tunnel_get_role (tunnel)));
}

static void
remove_tunnel (ZltDaemonExporter *self, ZltTunnel *tunnel)
{
  Mirror *mirror = tunnel_mirror (self, tunnel);

  if (mirror == NULL)
    return;
  g_dbus_object_manager_server_unexport (self->manager, mirror->path);
  g_hash_table_remove (self->paths, mirror->path);
  g_hash_table_remove (self->tunnels, tunnel);
  throttle_poke (&self->manager_sync);
}

static void
add_service (ZltDaemonExporter *self, ZltService *service)
{
  g_autoptr (ZltDbusService) iface = NULL;
  Mirror *mirror, *tunnel;

  if (g_hash_table_contains (self->services, service))
    return;
  mirror = g_new0 (Mirror, 1);
  mirror->exporter = self;
  mirror->sync = (Throttle){ mirror_sync, mirror, 0, NULL };
  mirror->core = g_object_ref (G_OBJECT (service));
  mirror->path = g_strdup_printf (ZLT_DBUS_PATH "/Service/%u", self->next_service++);
  mirror->object = zlt_dbus_object_skeleton_new (mirror->path);
  iface = zlt_dbus_service_skeleton_new ();
  zlt_dbus_object_skeleton_set_service (mirror->object, iface);
  mirror->iface = G_DBUS_INTERFACE_SKELETON (g_steal_pointer (&iface));
  g_hash_table_insert (self->services, service, mirror);

  sync_service (self, mirror);
  poke_replicas (self, service);
  mirror->notify_id = g_signal_connect (service, "notify", G_CALLBACK (on_core_notify), mirror);
  g_dbus_object_manager_server_export (self->manager, G_DBUS_OBJECT_SKELETON (mirror->object));
  tunnel = tunnel_mirror (self, zlt_service_get_tunnel (service));
  if (tunnel != NULL)
    {
      /* Services follows the object at once rather than at the next idle */
      sync_tunnel (self, tunnel);
      g_dbus_interface_skeleton_flush (tunnel->iface);
    }
}

static void
remove_service (ZltDaemonExporter *self, ZltService *service)
{
  Mirror *mirror = g_hash_table_lookup (self->services, service);
  Mirror *tunnel;

  if (mirror == NULL)
    return;
  poke_replicas (self, service);
  g_dbus_object_manager_server_unexport (self->manager, mirror->path);
  g_hash_table_remove (self->services, service);
  tunnel = tunnel_mirror (self, zlt_service_get_tunnel (service));
  if (tunnel != NULL)
    {
      /* Services follows the object at once rather than at the next idle */
      sync_tunnel (self, tunnel);
      g_dbus_interface_skeleton_flush (tunnel->iface);
    }
}

static void
add_node (ZltDaemonExporter *self, ZltNodeTunnel *node)
{
  g_autoptr (ZltDbusNode) iface = NULL;
  Mirror *mirror;

  if (g_hash_table_contains (self->nodes, node))
    return;
  mirror = g_new0 (Mirror, 1);
  mirror->exporter = self;
  mirror->sync = (Throttle){ mirror_sync, mirror, 0, NULL };
  mirror->core = g_object_ref (G_OBJECT (node));
  mirror->path = g_strdup_printf (ZLT_DBUS_PATH "/Node/%u", self->next_node++);
  mirror->object = zlt_dbus_object_skeleton_new (mirror->path);
  iface = zlt_dbus_node_skeleton_new ();
  zlt_dbus_object_skeleton_set_node (mirror->object, iface);
  mirror->iface = G_DBUS_INTERFACE_SKELETON (g_steal_pointer (&iface));
  g_hash_table_insert (self->nodes, node, mirror);

  sync_node (self, mirror);
  mirror->notify_id = g_signal_connect (node, "notify", G_CALLBACK (on_core_notify), mirror);
  g_dbus_object_manager_server_export (self->manager, G_DBUS_OBJECT_SKELETON (mirror->object));
  g_debug ("exported %s (node tunnel %s)", mirror->path, zlt_node_tunnel_get_name (node));
}

static void
remove_node (ZltDaemonExporter *self, ZltNodeTunnel *node)
{
  Mirror *mirror = g_hash_table_lookup (self->nodes, node);

  if (mirror == NULL)
    return;
  g_dbus_object_manager_server_unexport (self->manager, mirror->path);
  g_hash_table_remove (self->nodes, node);
}

static void
on_node_added (ZltNodeManager *manager, ZltNodeTunnel *node, gpointer user_data)
{
  add_node (user_data, node);
  sync_manager (user_data);
}

static void
on_node_removed (ZltNodeManager *manager, ZltNodeTunnel *node, gpointer user_data)
{
  remove_node (user_data, node);
  sync_manager (user_data);
}

static gboolean on_session_handle_stop (ZltDaemonExporter *self, GDBusMethodInvocation *invocation);

static void
add_session (ZltDaemonExporter *self, ZltSession *session)
{
  g_autoptr (ZltDbusSession) iface = NULL;
  Mirror *mirror;

  if (g_hash_table_contains (self->sessions, session))
    return;
  mirror = g_new0 (Mirror, 1);
  mirror->exporter = self;
  mirror->sync = (Throttle){ mirror_sync, mirror, 0, NULL };
  mirror->core = g_object_ref (G_OBJECT (session));
  mirror->path = g_strdup_printf (ZLT_DBUS_PATH "/Session/%u", self->next_session++);
  mirror->object = zlt_dbus_object_skeleton_new (mirror->path);
  iface = zlt_dbus_session_skeleton_new ();
  g_signal_connect_object (iface, "handle-stop", G_CALLBACK (on_session_handle_stop), self,
                           G_CONNECT_SWAPPED);
  zlt_dbus_object_skeleton_set_session (mirror->object, iface);
  mirror->iface = G_DBUS_INTERFACE_SKELETON (g_steal_pointer (&iface));
  g_hash_table_insert (self->sessions, session, mirror);
  g_hash_table_insert (self->session_paths, mirror->path, mirror);

  sync_session (self, mirror);
  mirror->notify_id = g_signal_connect (session, "notify", G_CALLBACK (on_core_notify), mirror);
  g_dbus_object_manager_server_export (self->manager, G_DBUS_OBJECT_SKELETON (mirror->object));
  g_debug ("exported %s (access session to %s)", mirror->path,
           zlt_session_get_remote_service (session));
}

static void
remove_session (ZltDaemonExporter *self, ZltSession *session)
{
  Mirror *mirror = g_hash_table_lookup (self->sessions, session);

  if (mirror == NULL)
    return;
  g_dbus_object_manager_server_unexport (self->manager, mirror->path);
  g_hash_table_remove (self->session_paths, mirror->path);
  g_hash_table_remove (self->sessions, session);
}

static void
on_session_added (ZltAccessManager *access, ZltSession *session, gpointer user_data)
{
  add_session (user_data, session);
}

static void
on_session_removed (ZltAccessManager *access, ZltSession *session, gpointer user_data)
{
  remove_session (user_data, session);
}

/* the daemon makes its access manager at the first StartAccess */
static void
follow_access_manager (ZltDaemonExporter *self)
{
  ZltAccessManager *access = zlt_daemon_get_access_manager (self->daemon);
  g_autoptr (GPtrArray) sessions = NULL;

  if (access == NULL || access == self->access)
    return;
  self->access = g_object_ref (access);
  sessions = zlt_access_manager_get_sessions (access);
  for (guint i = 0; i < sessions->len; i++)
    add_session (self, g_ptr_array_index (sessions, i));
  g_signal_connect (access, "session-added", G_CALLBACK (on_session_added), self);
  g_signal_connect (access, "session-removed", G_CALLBACK (on_session_removed), self);
}

static void
on_access_manager_notify (ZltDaemon *daemon, GParamSpec *pspec, gpointer user_data)
{
  follow_access_manager (user_data);
}

static void
on_tunnel_added (ZltRegistry *registry, ZltTunnel *tunnel, gpointer user_data)
{
  add_tunnel (user_data, tunnel);
}

static void
on_tunnel_removed (ZltRegistry *registry, ZltTunnel *tunnel, gpointer user_data)
{
  ZltDaemonExporter *self = user_data;
  g_autoptr (GPtrArray) services = zlt_tunnel_get_services (tunnel);

  for (guint i = 0; i < services->len; i++)
    remove_service (self, g_ptr_array_index (services, i));
  remove_tunnel (self, tunnel);
}

static void
on_service_added (GObject *registry_or_tunnel, ZltService *service, gpointer user_data)
{
  add_service (user_data, service);
}

static void
on_service_removed (GObject *registry_or_tunnel, ZltService *service, gpointer user_data)
{
  ZltDaemonExporter *self = user_data;

  if (!g_hash_table_remove (self->pending, service))
    remove_service (self, service);
}

static gboolean
add_pending_services (gpointer user_data)
{
  ZltDaemonExporter *self = user_data;
  GHashTableIter iter;
  gpointer service;

  g_clear_pointer (&self->pending_source, g_source_unref);
  g_hash_table_iter_init (&iter, self->pending);
  while (g_hash_table_iter_next (&iter, &service, NULL))
    {
      add_service (self, service);
      g_hash_table_iter_remove (&iter);
    }
  return G_SOURCE_REMOVE;
}

/* The registry lists a server's service before the server has bound its public port
 * (and may still move it to another port), all within one main-loop dispatch: export it
 * right after, so an AssignedPort on the bus is a port that accepts connections. */
static void
on_server_service_added (ZltRegistry *registry, ZltService *service, gpointer user_data)
{
  ZltDaemonExporter *self = user_data;

  g_hash_table_add (self->pending, g_object_ref (service));
  if (self->pending_source != NULL)
    return;
  self->pending_source = g_idle_source_new ();
  g_source_set_priority (self->pending_source, G_PRIORITY_DEFAULT);
  g_source_set_callback (self->pending_source, add_pending_services, self, NULL);
  g_source_set_static_name (self->pending_source, "[zlt] export server services");
  g_source_attach (self->pending_source, NULL);
}

static void
on_agent_notify (ZltAgent *agent, GParamSpec *pspec, gpointer user_data)
{
  ZltDaemonExporter *self = user_data;
  Mirror *mirror = tunnel_mirror (self, zlt_agent_get_tunnel (agent));

  sync_manager (self);
  if (mirror != NULL)
    sync_tunnel (self, mirror);
}

/* ---- the caller check ---- */

/* runs once the caller may go ahead; answers @invocation itself */
typedef void (*AuthorizedFunc) (ZltDaemonExporter *self, GDBusMethodInvocation *invocation);

typedef struct
{
  ZltDaemonExporter *self;
  AuthorizedFunc func;
} AuthCall;

static void
auth_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  AuthCall *call = user_data;
  g_autoptr (ZltDaemonExporter) self = call->self;
  GDBusMethodInvocation *invocation = G_DBUS_METHOD_INVOCATION (source);
  g_autoptr (GError) error = NULL;
  AuthorizedFunc func = call->func;

  g_free (call);
  if (!zlt_daemon_auth_check_finish (result, &error))
    {
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED) || self->daemon == NULL)
        g_dbus_method_invocation_return_error_literal (invocation, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                                       _ ("the daemon is shutting down"));
      else
        g_dbus_method_invocation_return_gerror (invocation, error);
      return;
    }
  if (self->daemon == NULL)
    {
      g_dbus_method_invocation_return_error_literal (invocation, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                                     _ ("the daemon is shutting down"));
      return;
    }
  func (self, invocation);
}

/* for handle-* signal handlers: checks the caller, then runs @func */
static gboolean
authorize (ZltDaemonExporter *self, GDBusMethodInvocation *invocation, AuthorizedFunc func)
{
  AuthCall *call = g_new0 (AuthCall, 1);

  call->self = g_object_ref (self);
  call->func = func;
  zlt_daemon_auth_check_async (invocation, zlt_daemon_get_admin_group (self->daemon),
                               self->session_bus, self->cancellable, auth_done, call);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ---- Manager methods ---- */

static gboolean
parse_expose_options (GVariant *options, ZltServiceConfig *sc, GError **error)
{
  GVariantIter iter;
  const char *key;
  GVariant *next;

  g_variant_iter_init (&iter, options);
  while (g_variant_iter_next (&iter, "{&sv}", &key, &next))
    {
      g_autoptr (GVariant) value = next;
      const char *type = NULL;

      if (g_str_equal (key, "protocol"))
        {
          type = "s";
          if (g_variant_is_of_type (value, G_VARIANT_TYPE_STRING)
              && !zlt_protocol_from_string (g_variant_get_string (value, NULL), &sc->protocol))
            {
              g_set_error (error, G_DBUS_ERROR, G_DBUS_ERROR_INVALID_ARGS,
                           _ ("option protocol: must be tcp or udp"));
              return FALSE;
            }
        }
      else if (g_str_equal (key, "local-host"))
        {
          type = "s";
          if (g_variant_is_of_type (value, G_VARIANT_TYPE_STRING))
            {
              g_free (sc->local_host);
              sc->local_host = g_variant_dup_string (value, NULL);
            }
        }
      else if (g_str_equal (key, "remote-port"))
        {
          type = "q";
          if (g_variant_is_of_type (value, G_VARIANT_TYPE_UINT16))
            sc->remote_port = g_variant_get_uint16 (value);
        }
      else if (g_str_equal (key, "expose"))
        {
          type = "s";
          if (g_variant_is_of_type (value, G_VARIANT_TYPE_STRING))
            {
              const char *s = g_variant_get_string (value, NULL);

              if (g_str_equal (s, "public"))
                sc->expose = ZLT_EXPOSE_PUBLIC;
              else if (g_str_equal (s, "internal"))
                sc->expose = ZLT_EXPOSE_INTERNAL;
              else
                {
                  g_set_error (error, G_DBUS_ERROR, G_DBUS_ERROR_INVALID_ARGS,
                               _ ("option expose: must be public or internal"));
                  return FALSE;
                }
            }
        }
      else if (g_str_equal (key, "proxy-protocol"))
        {
          type = "s";
          if (g_variant_is_of_type (value, G_VARIANT_TYPE_STRING)
              && !zlt_proxy_protocol_from_string (g_variant_get_string (value, NULL),
                                                  &sc->proxy_protocol))
            {
              g_set_error (error, G_DBUS_ERROR, G_DBUS_ERROR_INVALID_ARGS,
                           _ ("option proxy-protocol: must be none, v1 or v2"));
              return FALSE;
            }
        }
      else if (g_str_equal (key, "rate-limit-in") || g_str_equal (key, "rate-limit-out"))
        {
          type = "t";
          if (g_variant_is_of_type (value, G_VARIANT_TYPE_UINT64)
              && g_str_equal (key, "rate-limit-in"))
            sc->rate_limit_in = g_variant_get_uint64 (value);
          else if (g_variant_is_of_type (value, G_VARIANT_TYPE_UINT64))
            sc->rate_limit_out = g_variant_get_uint64 (value);
        }
      else if (g_str_equal (key, "hostname"))
        {
          type = "s";
          /* lowercased as in a config file; zlt_daemon_expose() checks the name; ""
           * is none, as in the Hostname property */
          if (g_variant_is_of_type (value, G_VARIANT_TYPE_STRING)
              && g_variant_get_string (value, NULL)[0] != '\0')
            {
              g_free (sc->hostname);
              sc->hostname = g_ascii_strdown (g_variant_get_string (value, NULL), -1);
            }
        }
      else
        {
          g_set_error (error, G_DBUS_ERROR, G_DBUS_ERROR_INVALID_ARGS, _ ("unknown option “%s”"),
                       key);
          return FALSE;
        }
      if (!g_variant_is_of_type (value, G_VARIANT_TYPE (type)))
        {
          g_set_error (error, G_DBUS_ERROR, G_DBUS_ERROR_INVALID_ARGS,
                       _ ("option %s: must be of type %s, not %s"), key, type,
                       g_variant_get_type_string (value));
          return FALSE;
        }
    }
  return TRUE;
}

/* An Expose call waiting for the server's verdict on its service: a refusal known in
 * time fails the call (and the service goes), otherwise the object is the answer. */
#define EXPOSE_VERDICT_TIMEOUT_MS 10000

typedef struct
{
  ZltDaemonExporter *exporter;
  GDBusMethodInvocation *invocation;
  ZltAgent *agent;
  ZltService *service;
  gulong registered_id;
  gulong failed_id;
  gulong tunnel_state_id;
  guint timeout_id;
} PendingExpose;

static void
pending_expose_free (PendingExpose *pending)
{
  g_clear_signal_handler (&pending->registered_id, pending->agent);
  g_clear_signal_handler (&pending->failed_id, pending->agent);
  g_clear_signal_handler (&pending->tunnel_state_id, zlt_agent_get_tunnel (pending->agent));
  g_clear_handle_id (&pending->timeout_id, g_source_remove);
  g_object_unref (pending->service);
  g_object_unref (pending->agent);
  g_object_unref (pending->invocation);
  g_object_unref (pending->exporter);
  g_free (pending);
}

static void
complete_expose (ZltDaemonExporter *self, GDBusMethodInvocation *invocation, ZltService *service)
{
  Mirror *mirror = g_hash_table_lookup (self->services, service);

  zlt_dbus_manager_complete_expose (self->manager_iface, invocation,
                                    mirror != NULL ? mirror->path : "/");
}

/* registered, or no answer we can wait for: the object, as it stands */
static void
pending_expose_answer (PendingExpose *pending)
{
  complete_expose (pending->exporter, pending->invocation, pending->service);
  pending_expose_free (pending);
}

static void
on_expose_registered (ZltAgent *agent, ZltService *service, gpointer user_data)
{
  PendingExpose *pending = user_data;

  if (service == pending->service)
    pending_expose_answer (pending);
}

static void
on_expose_failed (ZltAgent *agent, ZltService *service, const GError *error, gpointer user_data)
{
  PendingExpose *pending = user_data;
  g_autoptr (GError) unexpose_error = NULL;

  if (service != pending->service)
    return;
  /* the caller hears the refusal: nothing stays behind to keep asking */
  if (zlt_tunnel_lookup_service (zlt_agent_get_tunnel (agent), zlt_service_get_name (service))
          == service
      && !zlt_daemon_unexpose (pending->exporter->daemon, zlt_service_get_name (service),
                               &unexpose_error))
    g_warning ("cannot remove refused service %s: %s", zlt_service_get_name (service),
               unexpose_error->message);
  g_dbus_method_invocation_return_gerror (pending->invocation, error);
  pending_expose_free (pending);
}

static void
on_expose_tunnel_state (ZltTunnel *tunnel, GParamSpec *pspec, gpointer user_data)
{
  PendingExpose *pending = user_data;

  /* the control channel went: the answer will come after a reconnect, if ever */
  if (zlt_tunnel_get_state (tunnel) != ZLT_TUNNEL_STATE_CONNECTED)
    pending_expose_answer (pending);
}

static gboolean
on_expose_timeout (gpointer user_data)
{
  PendingExpose *pending = user_data;

  pending->timeout_id = 0; /* removed by returning */
  pending_expose_answer (pending);
  return G_SOURCE_REMOVE;
}

static void
do_expose (ZltDaemonExporter *self, GDBusMethodInvocation *invocation)
{
  const char *name;
  guint16 local_port;
  g_autoptr (GVariant) options = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (ZltServiceConfig) sc = NULL;
  ZltAgent *agent;
  ZltService *service;
  PendingExpose *pending;

  g_variant_get (g_dbus_method_invocation_get_parameters (invocation), "(&sq@a{sv})", &name,
                 &local_port, &options);
  /* the defaults, which the options change */
  sc = zlt_service_config_new (name, ZLT_PROTOCOL_TCP, NULL, local_port, 0, ZLT_EXPOSE_PUBLIC);
  if (!parse_expose_options (options, sc, &error))
    {
      g_dbus_method_invocation_return_gerror (invocation, error);
      return;
    }
  if (!zlt_daemon_expose (self->daemon, sc, &error))
    {
      g_dbus_method_invocation_return_gerror (invocation, error);
      return;
    }
  agent = zlt_daemon_get_agent (self->daemon);
  service = zlt_tunnel_lookup_service (agent_tunnel (self), name);
  if (service == NULL || zlt_service_get_state (service) != ZLT_SERVICE_STATE_REGISTERING
      || zlt_tunnel_get_state (agent_tunnel (self)) != ZLT_TUNNEL_STATE_CONNECTED)
    {
      complete_expose (self, invocation, service);
      return;
    }
  pending = g_new0 (PendingExpose, 1);
  pending->exporter = g_object_ref (self);
  pending->invocation = g_object_ref (invocation);
  pending->agent = g_object_ref (agent);
  pending->service = g_object_ref (service);
  pending->registered_id
      = g_signal_connect (agent, "registered", G_CALLBACK (on_expose_registered), pending);
  pending->failed_id
      = g_signal_connect (agent, "register-failed", G_CALLBACK (on_expose_failed), pending);
  pending->tunnel_state_id = g_signal_connect (agent_tunnel (self), "notify::state",
                                               G_CALLBACK (on_expose_tunnel_state), pending);
  pending->timeout_id = g_timeout_add (EXPOSE_VERDICT_TIMEOUT_MS, on_expose_timeout, pending);
}

static gboolean
on_handle_expose (ZltDaemonExporter *self, GDBusMethodInvocation *invocation)
{
  return authorize (self, invocation, do_expose);
}

static void
do_unexpose (ZltDaemonExporter *self, GDBusMethodInvocation *invocation)
{
  const char *name;
  g_autoptr (GError) error = NULL;

  g_variant_get (g_dbus_method_invocation_get_parameters (invocation), "(&s)", &name);
  if (!zlt_daemon_unexpose (self->daemon, name, &error))
    g_dbus_method_invocation_return_gerror (invocation, error);
  else
    zlt_dbus_manager_complete_unexpose (self->manager_iface, invocation);
}

static gboolean
on_handle_unexpose (ZltDaemonExporter *self, GDBusMethodInvocation *invocation)
{
  return authorize (self, invocation, do_unexpose);
}

static gint
compare_paths (gconstpointer a, gconstpointer b)
{
  const char *pa = *(const char *const *) a;
  const char *pb = *(const char *const *) b;

  /* Tunnel/2 before Tunnel/10 */
  if (strlen (pa) != strlen (pb))
    return strlen (pa) < strlen (pb) ? -1 : 1;
  return strcmp (pa, pb);
}

static gboolean
on_handle_list_tunnels (ZltDaemonExporter *self, GDBusMethodInvocation *invocation)
{
  g_autoptr (GPtrArray) paths = g_ptr_array_new ();
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, self->tunnels);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    g_ptr_array_add (paths, ((Mirror *) value)->path);
  g_ptr_array_sort (paths, compare_paths);
  g_ptr_array_add (paths, NULL);
  zlt_dbus_manager_complete_list_tunnels (self->manager_iface, invocation,
                                          (const char *const *) paths->pdata);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void
disconnect_tunnel_at (ZltDaemonExporter *self, GDBusMethodInvocation *invocation, const char *path,
                      const char *reason)
{
  g_autoptr (GError) error = NULL;
  Mirror *mirror = g_hash_table_lookup (self->paths, path);

  if (mirror == NULL)
    g_set_error (&error, ZLT_ERROR, ZLT_ERROR_NOT_FOUND, _ ("no tunnel at %s"), path);
  else
    zlt_daemon_disconnect_tunnel (self->daemon, ZLT_TUNNEL (mirror->core),
                                  reason[0] != '\0' ? reason : NULL, &error);
  if (error != NULL)
    g_dbus_method_invocation_return_gerror (invocation, error);
  else
    g_dbus_method_invocation_return_value (invocation, NULL);
}

static void
do_disconnect_tunnel (ZltDaemonExporter *self, GDBusMethodInvocation *invocation)
{
  const char *path, *reason;

  g_variant_get (g_dbus_method_invocation_get_parameters (invocation), "(&o&s)", &path, &reason);
  disconnect_tunnel_at (self, invocation, path, reason);
}

static gboolean
on_handle_disconnect_tunnel (ZltDaemonExporter *self, GDBusMethodInvocation *invocation)
{
  return authorize (self, invocation, do_disconnect_tunnel);
}

static void
do_tunnel_disconnect (ZltDaemonExporter *self, GDBusMethodInvocation *invocation)
{
  const char *reason;

  g_variant_get (g_dbus_method_invocation_get_parameters (invocation), "(&s)", &reason);
  disconnect_tunnel_at (self, invocation, g_dbus_method_invocation_get_object_path (invocation),
                        reason);
}

static gboolean
on_tunnel_handle_disconnect (ZltDaemonExporter *self, GDBusMethodInvocation *invocation)
{
  return authorize (self, invocation, do_tunnel_disconnect);
}

/* AddNodeTunnel's definition as a [node:NAME] group, so both take the same checks */
static const struct
{
  const char *key;
  const char *type;
} node_options[] = {
  { "from", "s" },
  { "to", "s" },
  { "server", "s" },
  { "local-port", "q" },
  { "remote-port", "q" },
  { "protocol", "s" },
  { "exposure", "s" },
  { "token-file", "s" },
  { "heartbeat-interval", "u" },
  { "heartbeat-timeout", "u" },
  { "backoff-min", "d" },
  { "backoff-max", "d" },
  { "tls-ca-file", "s" },
  { "tls-pinned-sha256", "s" },
};

static ZltNodeTunnel *
node_from_definition (ZltDaemonExporter *self, const char *name, GVariant *definition,
                      GError **error)
{
  g_autoptr (GKeyFile) kf = g_key_file_new ();
  g_autofree char *group = g_strconcat (ZLT_NODE_CONFIG_PREFIX, name, NULL);
  g_autofree char *base_dir = zlt_config_directory (zlt_daemon_get_config_path (self->daemon));
  GVariantIter iter;
  const char *key;
  GVariant *next;

  g_variant_iter_init (&iter, definition);
  while (g_variant_iter_next (&iter, "{&sv}", &key, &next))
    {
      g_autoptr (GVariant) value = next;
      const char *type = NULL;

      for (guint i = 0; i < G_N_ELEMENTS (node_options); i++)
        if (g_str_equal (node_options[i].key, key))
          type = node_options[i].type;
      if (type == NULL)
        {
          g_set_error (error, G_DBUS_ERROR, G_DBUS_ERROR_INVALID_ARGS,
                       _ ("unknown definition key “%s”"), key);
          return NULL;
        }
      if (!g_variant_is_of_type (value, G_VARIANT_TYPE (type)))
        {
          g_set_error (error, G_DBUS_ERROR, G_DBUS_ERROR_INVALID_ARGS,
                       _ ("definition key %s: must be of type %s, not %s"), key, type,
                       g_variant_get_type_string (value));
          return NULL;
        }
      if (g_variant_is_of_type (value, G_VARIANT_TYPE_STRING))
        g_key_file_set_string (kf, group, key, g_variant_get_string (value, NULL));
      else if (g_variant_is_of_type (value, G_VARIANT_TYPE_UINT16))
        g_key_file_set_uint64 (kf, group, key, g_variant_get_uint16 (value));
      else if (g_variant_is_of_type (value, G_VARIANT_TYPE_UINT32))
        g_key_file_set_uint64 (kf, group, key, g_variant_get_uint32 (value));
      else
        g_key_file_set_double (kf, group, key, g_variant_get_double (value));
    }
  /* an empty definition makes no group: the checks then say what is missing */
  return zlt_node_tunnel_new_from_keyfile (kf, group, base_dir, error);
}

static void
do_add_node_tunnel (ZltDaemonExporter *self, GDBusMethodInvocation *invocation)
{
  const char *name;
  g_autoptr (GVariant) definition = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (ZltNodeTunnel) node = NULL;
  Mirror *mirror;

  g_variant_get (g_dbus_method_invocation_get_parameters (invocation), "(&s@a{sv})", &name,
                 &definition);
  node = node_from_definition (self, name, definition, &error);
  if (node == NULL || !zlt_daemon_add_node_tunnel (self->daemon, node, &error))
    {
      g_dbus_method_invocation_return_gerror (invocation, error);
      return;
    }
  mirror = g_hash_table_lookup (self->nodes, node);
  zlt_dbus_manager_complete_add_node_tunnel (self->manager_iface, invocation,
                                             mirror != NULL ? mirror->path : "/");
}

static gboolean
on_handle_add_node_tunnel (ZltDaemonExporter *self, GDBusMethodInvocation *invocation)
{
  return authorize (self, invocation, do_add_node_tunnel);
}

static void
do_remove_node_tunnel (ZltDaemonExporter *self, GDBusMethodInvocation *invocation)
{
  const char *name;
  g_autoptr (GError) error = NULL;

  g_variant_get (g_dbus_method_invocation_get_parameters (invocation), "(&s)", &name);
  if (!zlt_daemon_remove_node_tunnel (self->daemon, name, &error))
    g_dbus_method_invocation_return_gerror (invocation, error);
  else
    zlt_dbus_manager_complete_remove_node_tunnel (self->manager_iface, invocation);
}

static gboolean
on_handle_remove_node_tunnel (ZltDaemonExporter *self, GDBusMethodInvocation *invocation)
{
  return authorize (self, invocation, do_remove_node_tunnel);
}

static gboolean
parse_access_options (GVariant *options, guint16 *local_port, guint *ttl, GError **error)
{
  GVariantIter iter;
  const char *key;
  GVariant *next;

  g_variant_iter_init (&iter, options);
  while (g_variant_iter_next (&iter, "{&sv}", &key, &next))
    {
      g_autoptr (GVariant) value = next;
      const char *type;

      if (g_str_equal (key, "local-port"))
        type = "q";
      else if (g_str_equal (key, "ttl"))
        type = "u";
      else
        {
          g_set_error (error, G_DBUS_ERROR, G_DBUS_ERROR_INVALID_ARGS, _ ("unknown option “%s”"),
                       key);
          return FALSE;
        }
      if (!g_variant_is_of_type (value, G_VARIANT_TYPE (type)))
        {
          g_set_error (error, G_DBUS_ERROR, G_DBUS_ERROR_INVALID_ARGS,
                       _ ("option %s: must be of type %s, not %s"), key, type,
                       g_variant_get_type_string (value));
          return FALSE;
        }
      if (g_str_equal (key, "local-port"))
        *local_port = g_variant_get_uint16 (value);
      else
        *ttl = g_variant_get_uint32 (value);
    }
  return TRUE;
}

/* A StartAccess call waiting for the server's verdict on its session. */
typedef struct
{
  ZltDaemonExporter *exporter;
  GDBusMethodInvocation *invocation;
  ZltSession *session;
  gulong ready_id;
  gulong refused_id;
  gulong removed_id;
  GError *refusal; /* answered once the session object is gone too */
} PendingStart;

static void on_start_ready (ZltAccessManager *access, ZltSession *session, gpointer user_data);
static void on_start_refused (ZltAccessManager *access, ZltSession *session, const GError *error,
                              gpointer user_data);
static void on_start_removed (ZltAccessManager *access, ZltSession *session, gpointer user_data);

static void
do_start_access (ZltDaemonExporter *self, GDBusMethodInvocation *invocation)
{
  const char *service;
  g_autoptr (GVariant) options = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (ZltSession) session = NULL;
  guint16 local_port = 0;
  guint ttl = 0;
  PendingStart *start;

  g_variant_get (g_dbus_method_invocation_get_parameters (invocation), "(&s@a{sv})", &service,
                 &options);
  if (!parse_access_options (options, &local_port, &ttl, &error))
    {
      g_dbus_method_invocation_return_gerror (invocation, error);
      return;
    }
  session = zlt_daemon_start_access (self->daemon, service, local_port, ttl, &error);
  if (session == NULL)
    {
      g_dbus_method_invocation_return_gerror (invocation, error);
      return;
    }
  /* a first session made the manager: follow it (its session-added came too early) */
  follow_access_manager (self);
  add_session (self, session);
  /* the answer waits for the server's: a session it refuses fails the call */
  start = g_new0 (PendingStart, 1);
  start->exporter = g_object_ref (self);
  start->invocation = g_object_ref (invocation);
  start->session = g_object_ref (session);
  start->ready_id
      = g_signal_connect (self->access, "session-ready", G_CALLBACK (on_start_ready), start);
  start->refused_id
      = g_signal_connect (self->access, "session-refused", G_CALLBACK (on_start_refused), start);
  start->removed_id
      = g_signal_connect (self->access, "session-removed", G_CALLBACK (on_start_removed), start);
}

static void
pending_start_free (PendingStart *start)
{
  g_clear_signal_handler (&start->ready_id, start->exporter->access);
  g_clear_signal_handler (&start->refused_id, start->exporter->access);
  g_clear_signal_handler (&start->removed_id, start->exporter->access);
  g_clear_error (&start->refusal);
  g_object_unref (start->session);
  g_object_unref (start->invocation);
  g_object_unref (start->exporter);
  g_free (start);
}

static void
on_start_ready (ZltAccessManager *access, ZltSession *session, gpointer user_data)
{
  PendingStart *start = user_data;
  Mirror *mirror;

  if (session != start->session)
    return;
  mirror = g_hash_table_lookup (start->exporter->sessions, session);
  zlt_dbus_manager_complete_start_access (start->exporter->manager_iface, start->invocation,
                                          mirror != NULL ? mirror->path : "/");
  pending_start_free (start);
}

/* Refused (the answer, once the object is gone: clients see it leave first), or
 * stopped, expired or ended with the access client before the server answered. */
static void
on_start_removed (ZltAccessManager *access, ZltSession *session, gpointer user_data)
{
  PendingStart *start = user_data;

  if (session != start->session)
    return;
  if (start->refusal != NULL)
    g_dbus_method_invocation_return_gerror (start->invocation, start->refusal);
  else
    g_dbus_method_invocation_return_error (start->invocation, ZLT_ERROR, ZLT_ERROR_CLOSED, "%s",
                                           zlt_session_get_last_error (session) != NULL
                                               ? zlt_session_get_last_error (session)
                                               : _ ("the session ended before the server "
                                                    "answered"));
  pending_start_free (start);
}

static void
on_start_refused (ZltAccessManager *access, ZltSession *session, const GError *error,
                  gpointer user_data)
{
  PendingStart *start = user_data;

  if (session == start->session && start->refusal == NULL)
    start->refusal = g_error_copy (error);
}

static gboolean
on_handle_start_access (ZltDaemonExporter *self, GDBusMethodInvocation *invocation)
{
  return authorize (self, invocation, do_start_access);
}

/* StopAccess and Session.Stop: answers @invocation */
static gboolean
stop_session_at (ZltDaemonExporter *self, GDBusMethodInvocation *invocation, const char *path)
{
  g_autoptr (GError) error = NULL;
  Mirror *mirror = g_hash_table_lookup (self->session_paths, path);

  if (mirror == NULL)
    g_set_error (&error, ZLT_ERROR, ZLT_ERROR_NOT_FOUND, _ ("no access session at %s"), path);
  else
    zlt_daemon_stop_access (self->daemon, ZLT_SESSION (mirror->core), &error);
  if (error != NULL)
    {
      g_dbus_method_invocation_return_gerror (invocation, error);
      return FALSE;
    }
  return TRUE;
}

static void
do_stop_access (ZltDaemonExporter *self, GDBusMethodInvocation *invocation)
{
  const char *path;

  g_variant_get (g_dbus_method_invocation_get_parameters (invocation), "(&o)", &path);
  if (stop_session_at (self, invocation, path))
    zlt_dbus_manager_complete_stop_access (self->manager_iface, invocation);
}

static gboolean
on_handle_stop_access (ZltDaemonExporter *self, GDBusMethodInvocation *invocation)
{
  return authorize (self, invocation, do_stop_access);
}

static void
do_session_stop (ZltDaemonExporter *self, GDBusMethodInvocation *invocation)
{
  if (stop_session_at (self, invocation, g_dbus_method_invocation_get_object_path (invocation)))
    g_dbus_method_invocation_return_value (invocation, NULL);
}

static gboolean
on_session_handle_stop (ZltDaemonExporter *self, GDBusMethodInvocation *invocation)
{
  return authorize (self, invocation, do_session_stop);
}

static void
do_reload (ZltDaemonExporter *self, GDBusMethodInvocation *invocation)
{
  g_autoptr (GError) error = NULL;

  if (!zlt_daemon_reload (self->daemon, &error))
    {
      g_message ("reload failed, nothing changed: %s", error->message);
      g_dbus_method_invocation_return_gerror (invocation, error);
      return;
    }
  zlt_dbus_manager_complete_reload (self->manager_iface, invocation);
}

static gboolean
on_handle_reload (ZltDaemonExporter *self, GDBusMethodInvocation *invocation)
{
  return authorize (self, invocation, do_reload);
}

static const struct
{
  const char *signal;
  GCallback handler;
} manager_methods[] = {
  { "handle-expose", G_CALLBACK (on_handle_expose) },
  { "handle-unexpose", G_CALLBACK (on_handle_unexpose) },
  { "handle-list-tunnels", G_CALLBACK (on_handle_list_tunnels) },
  { "handle-disconnect-tunnel", G_CALLBACK (on_handle_disconnect_tunnel) },
  { "handle-start-access", G_CALLBACK (on_handle_start_access) },
  { "handle-stop-access", G_CALLBACK (on_handle_stop_access) },
  { "handle-add-node-tunnel", G_CALLBACK (on_handle_add_node_tunnel) },
  { "handle-remove-node-tunnel", G_CALLBACK (on_handle_remove_node_tunnel) },
  { "handle-reload", G_CALLBACK (on_handle_reload) },
};

/* ---- GObject and public API ---- */

static void
zlt_daemon_exporter_dispose (GObject *object)
{
  ZltDaemonExporter *self = ZLT_DAEMON_EXPORTER (object);

  zlt_daemon_exporter_unexport (self);
  g_clear_object (&self->cancellable);
  g_clear_object (&self->connection);
  G_OBJECT_CLASS (zlt_daemon_exporter_parent_class)->dispose (object);
}

static void
zlt_daemon_exporter_finalize (GObject *object)
{
  ZltDaemonExporter *self = ZLT_DAEMON_EXPORTER (object);

  g_hash_table_unref (self->pending);
  g_hash_table_unref (self->session_paths);
  g_hash_table_unref (self->paths);
  g_hash_table_unref (self->sessions);
  g_hash_table_unref (self->nodes);
  g_hash_table_unref (self->services);
  g_hash_table_unref (self->tunnels);
  G_OBJECT_CLASS (zlt_daemon_exporter_parent_class)->finalize (object);
}

static void
zlt_daemon_exporter_class_init (ZltDaemonExporterClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = zlt_daemon_exporter_dispose;
  object_class->finalize = zlt_daemon_exporter_finalize;
}

static void
zlt_daemon_exporter_init (ZltDaemonExporter *self)
{
  self->tunnels = g_hash_table_new_full (NULL, NULL, NULL, mirror_free);
  self->services = g_hash_table_new_full (NULL, NULL, NULL, mirror_free);
  self->nodes = g_hash_table_new_full (NULL, NULL, NULL, mirror_free);
  self->sessions = g_hash_table_new_full (NULL, NULL, NULL, mirror_free);
  self->paths = g_hash_table_new (g_str_hash, g_str_equal);
  self->session_paths = g_hash_table_new (g_str_hash, g_str_equal);
  self->pending = g_hash_table_new_full (NULL, NULL, g_object_unref, NULL);
  self->cancellable = g_cancellable_new ();
  self->manager_sync = (Throttle){ manager_sync, self, 0, NULL };
}

ZltDaemonExporter *
zlt_daemon_exporter_new (ZltDaemon *daemon, GDBusConnection *connection, gboolean session_bus,
                         GError **error)
{
  g_autoptr (ZltDaemonExporter) self = NULL;
  ZltServer *server;
  ZltAgent *agent;

  g_return_val_if_fail (ZLT_IS_DAEMON (daemon), NULL);
  g_return_val_if_fail (G_IS_DBUS_CONNECTION (connection), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  zlt_dbus_error_register ();
  self = g_object_new (ZLT_TYPE_DAEMON_EXPORTER, NULL);
  self->daemon = g_object_ref (daemon);
  self->connection = g_object_ref (connection);
  self->session_bus = session_bus;

  /* the Manager interface sits on the object manager's own path */
  self->manager_iface = zlt_dbus_manager_skeleton_new ();
  /* handlers take (self, invocation) and read the arguments from the invocation */
  for (guint i = 0; i < G_N_ELEMENTS (manager_methods); i++)
    g_signal_connect_object (self->manager_iface, manager_methods[i].signal,
                             manager_methods[i].handler, self, G_CONNECT_SWAPPED);
  sync_manager (self);
  if (!g_dbus_interface_skeleton_export (G_DBUS_INTERFACE_SKELETON (self->manager_iface),
                                         connection, ZLT_DBUS_PATH, error))
    {
      g_prefix_error (error, _ ("cannot export %s: "), ZLT_DBUS_PATH);
      return NULL;
    }

  /* objects are exported as they are added, so later changes reach the bus */
  self->manager = g_dbus_object_manager_server_new (ZLT_DBUS_PATH);
  g_dbus_object_manager_server_set_connection (self->manager, connection);

  agent = zlt_daemon_get_agent (daemon);
  if (agent != NULL)
    {
      ZltTunnel *tunnel = zlt_agent_get_tunnel (agent);
      g_autoptr (GPtrArray) services = zlt_tunnel_get_services (tunnel);

      add_tunnel (self, tunnel);
      for (guint i = 0; i < services->len; i++)
        add_service (self, g_ptr_array_index (services, i));
      g_signal_connect (tunnel, "service-added", G_CALLBACK (on_service_added), self);
      g_signal_connect (tunnel, "service-removed", G_CALLBACK (on_service_removed), self);
      g_signal_connect (agent, "notify", G_CALLBACK (on_agent_notify), self);
    }
  server = zlt_daemon_get_server (daemon);
  if (server != NULL)
    {
      ZltRegistry *registry = zlt_server_get_registry (server);
      g_autoptr (GPtrArray) tunnels = zlt_registry_get_tunnels (registry);

      for (guint i = 0; i < tunnels->len; i++)
        {
          g_autoptr (GPtrArray) services = zlt_tunnel_get_services (g_ptr_array_index (tunnels, i));

          add_tunnel (self, g_ptr_array_index (tunnels, i));
          for (guint j = 0; j < services->len; j++)
            add_service (self, g_ptr_array_index (services, j));
        }
      g_signal_connect (registry, "tunnel-added", G_CALLBACK (on_tunnel_added), self);
      g_signal_connect (registry, "tunnel-removed", G_CALLBACK (on_tunnel_removed), self);
      g_signal_connect (registry, "service-added", G_CALLBACK (on_server_service_added), self);
      g_signal_connect (registry, "service-removed", G_CALLBACK (on_service_removed), self);
      g_signal_connect (server, "replica-changed", G_CALLBACK (on_replica_changed), self);
    }
  {
    ZltNodeManager *nodes = zlt_daemon_get_node_manager (daemon);
    g_autoptr (GPtrArray) list = zlt_node_manager_get_tunnels (nodes);

    for (guint i = 0; i < list->len; i++)
      add_node (self, g_ptr_array_index (list, i));
    g_signal_connect (nodes, "node-added", G_CALLBACK (on_node_added), self);
    g_signal_connect (nodes, "node-removed", G_CALLBACK (on_node_removed), self);
  }
  follow_access_manager (self);
  g_signal_connect (daemon, "notify::access-manager", G_CALLBACK (on_access_manager_notify), self);
  sync_manager (self);
  return g_steal_pointer (&self);
}

void
zlt_daemon_exporter_unexport (ZltDaemonExporter *self)
{
  g_return_if_fail (ZLT_IS_DAEMON_EXPORTER (self));

  if (self->daemon == NULL)
    return;
  g_cancellable_cancel (self->cancellable);
  throttle_clear (&self->manager_sync);
  if (self->pending_source != NULL)
    {
      g_source_destroy (self->pending_source);
      g_clear_pointer (&self->pending_source, g_source_unref);
    }
  g_hash_table_remove_all (self->pending);
  if (zlt_daemon_get_agent (self->daemon) != NULL)
    {
      ZltAgent *agent = zlt_daemon_get_agent (self->daemon);

      g_signal_handlers_disconnect_by_data (zlt_agent_get_tunnel (agent), self);
      g_signal_handlers_disconnect_by_data (agent, self);
    }
  g_signal_handlers_disconnect_by_data (zlt_daemon_get_node_manager (self->daemon), self);
  g_signal_handlers_disconnect_by_data (self->daemon, self);
  if (self->access != NULL)
    g_signal_handlers_disconnect_by_data (self->access, self);
  if (zlt_daemon_get_server (self->daemon) != NULL)
    {
      g_signal_handlers_disconnect_by_data (
          zlt_server_get_registry (zlt_daemon_get_server (self->daemon)), self);
      g_signal_handlers_disconnect_by_data (zlt_daemon_get_server (self->daemon), self);
    }

  if (self->manager != NULL)
    {
      GHashTableIter iter;
      gpointer value;

      g_hash_table_iter_init (&iter, self->nodes);
      while (g_hash_table_iter_next (&iter, NULL, &value))
        g_dbus_object_manager_server_unexport (self->manager, ((Mirror *) value)->path);
      g_hash_table_iter_init (&iter, self->sessions);
      while (g_hash_table_iter_next (&iter, NULL, &value))
        g_dbus_object_manager_server_unexport (self->manager, ((Mirror *) value)->path);
      g_hash_table_iter_init (&iter, self->services);
      while (g_hash_table_iter_next (&iter, NULL, &value))
        g_dbus_object_manager_server_unexport (self->manager, ((Mirror *) value)->path);
      g_hash_table_iter_init (&iter, self->tunnels);
      while (g_hash_table_iter_next (&iter, NULL, &value))
        g_dbus_object_manager_server_unexport (self->manager, ((Mirror *) value)->path);
      g_dbus_object_manager_server_set_connection (self->manager, NULL);
      g_clear_object (&self->manager);
    }
  g_hash_table_remove_all (self->paths);
  g_hash_table_remove_all (self->session_paths);
  g_hash_table_remove_all (self->sessions);
  g_clear_object (&self->access);
  g_hash_table_remove_all (self->nodes);
  g_hash_table_remove_all (self->services);
  g_hash_table_remove_all (self->tunnels);
  if (self->manager_iface != NULL)
    {
      if (g_dbus_interface_skeleton_get_connection (G_DBUS_INTERFACE_SKELETON (self->manager_iface))
          != NULL)
        g_dbus_interface_skeleton_unexport (G_DBUS_INTERFACE_SKELETON (self->manager_iface));
      g_clear_object (&self->manager_iface);
    }
  g_clear_object (&self->daemon);
}
