/* zlt-registry.c: the server's state: tunnels, services, port pools, leases
 *
 * The registry owns a reference on every tunnel it lists and follows each tunnel's
 * ::service-added and ::service-removed, so a service removed from its tunnel by any
 * path gives its public port back and leaves the indexes. Services it registers itself
 * get their port from the pool of their protocol.
 *
 * Leases: a tunnel whose control channel ended can be held for a grace period. It stays
 * listed with its services and ports (the server keeps their listeners open); when the
 * agent resumes in time, it registers its services again and each registration of a
 * held name gets the very same service, id and port back. When the period runs out the
 * tunnel is removed as if by zlt_registry_remove_tunnel().
 *
 * Owners: a service belongs to the principal (token name) of the tunnel that
 * registered it. While any service of a name is registered (or held), nobody else may
 * register that name; after the last one goes, the name stays its owner's for
 * name-hold, and its port is kept for the same owner for port-hold, so the owner's
 * next registration of the name gets its old port back and nobody else gets either.
 */
#include "config.h"

#include <glib/gi18n-lib.h>

#include "zlt-error.h"
#include "zlt-registry.h"
#include "zlt-source.h"

typedef struct
{
  ZltRegistry *registry;
  ZltTunnel *tunnel; /* (owned) */
  ZltUuid key;       /* the id the entry is filed under */
  GSource *hold_source;
  gulong added_id;
  gulong removed_id;
  gulong id_notify_id;
} TunnelEntry;

typedef struct
{
  ZltRegistry *registry;
  ZltService *service; /* (owned) */
  ZltUuid key;
  ZltProtocol protocol;
  guint16 port;       /* allocated from the registry's pool by the registry; 0 for none */
  gboolean unclaimed; /* held over a resume, not registered again yet */
  gboolean replica;   /* registered by zlt_registry_register_replica(): may share its port */
  char *owner;        /* the registering tunnel's principal; NULL: nobody's */
  gulong id_notify_id;
} ServiceEntry;

struct _ZltRegistry
{
  GObject parent_instance;

  ZltPortPool *tcp_pool;
  ZltPortPool *udp_pool;
  guint max_tunnels;  /* 0 = unlimited */
  guint max_services; /* per tunnel; 0 = unlimited */

  GHashTable *tunnels;  /* &TunnelEntry.key → TunnelEntry (owned) */
  GHashTable *services; /* &ServiceEntry.key → ServiceEntry (owned) */
  GHashTable *by_name;  /* name (owned) → GPtrArray of ServiceEntry (borrowed) */
  GHashTable *by_port;  /* protocol << 16 | port → ServiceEntry (borrowed) */
  GHashTable *released; /* name (owned) → Released: names whose last service went */
  guint name_hold_ms;
  guint port_hold_ms;
  GMainContext *context;
};

/* A name nobody has registered any more, still its owner's for a while. */
typedef struct
{
  char *owner;
  gint64 until; /* monotonic µs */
  ZltProtocol protocol;
  guint16 port; /* the last public port it had, 0 for none */
} Released;

static void
released_free (Released *r)
{
  g_free (r->owner);
  g_free (r);
}

enum
{
  PROP_0,
  PROP_TCP_POOL,
  PROP_UDP_POOL,
  PROP_MAX_TUNNELS,
  PROP_MAX_SERVICES_PER_TUNNEL,
  PROP_N_TUNNELS,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

enum
{
  SIGNAL_TUNNEL_ADDED,
  SIGNAL_TUNNEL_REMOVED,
  SIGNAL_SERVICE_ADDED,
  SIGNAL_SERVICE_REMOVED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

/**
 * ZltRegistry:
 * The server's state: its tunnels (held ones included, waiting for a resume), their
 * services, the port pools public ports come from, and who holds which service name.
 * A server makes its own from the config's `port-range` (zlt_server_get_registry());
 * watch its signals to follow agents and services as they come and go.
 */

G_DEFINE_FINAL_TYPE (ZltRegistry, zlt_registry, G_TYPE_OBJECT)

#define PORT_KEY(protocol, port) GUINT_TO_POINTER (((guint) (protocol) << 16) | (guint) (port))

static void
tunnel_entry_free (gpointer data)
{
  TunnelEntry *entry = data;

  zlt_source_clear (&entry->hold_source);
  g_clear_signal_handler (&entry->added_id, entry->tunnel);
  g_clear_signal_handler (&entry->removed_id, entry->tunnel);
  g_clear_signal_handler (&entry->id_notify_id, entry->tunnel);
  g_object_unref (entry->tunnel);
  g_free (entry);
}

static void
service_entry_free (gpointer data)
{
  ServiceEntry *entry = data;

  g_clear_signal_handler (&entry->id_notify_id, entry->service);
  g_object_unref (entry->service);
  g_free (entry->owner);
  g_free (entry);
}

static TunnelEntry *
find_tunnel_entry (ZltRegistry *self, ZltTunnel *tunnel)
{
  TunnelEntry *entry = g_hash_table_lookup (self->tunnels, zlt_tunnel_get_id (tunnel));

  return entry != NULL && entry->tunnel == tunnel ? entry : NULL;
}

static ServiceEntry *
find_service_entry (ZltRegistry *self, ZltService *service)
{
  ServiceEntry *entry = g_hash_table_lookup (self->services, zlt_service_get_id (service));

  return entry != NULL && entry->service == service ? entry : NULL;
}

static ZltPortPool *
pool_for (ZltRegistry *self, ZltProtocol protocol)
{
  return protocol == ZLT_PROTOCOL_UDP ? self->udp_pool : self->tcp_pool;
}

/* ids may change under us (an agent-side object, or a careless caller): refile */
static void
on_service_id_notify (ZltService *service, GParamSpec *pspec, gpointer user_data)
{
  ServiceEntry *entry = user_data;
  ZltRegistry *self = entry->registry;

  g_hash_table_steal (self->services, &entry->key);
  entry->key = *zlt_service_get_id (service);
  if (!g_hash_table_insert (self->services, &entry->key, entry))
    g_warning ("two services share the id of service %s", zlt_service_get_name (service));
}

static void
on_tunnel_id_notify (ZltTunnel *tunnel, GParamSpec *pspec, gpointer user_data)
{
  TunnelEntry *entry = user_data;
  ZltRegistry *self = entry->registry;

  g_hash_table_steal (self->tunnels, &entry->key);
  entry->key = *zlt_tunnel_get_id (tunnel);
  if (!g_hash_table_insert (self->tunnels, &entry->key, entry))
    g_warning ("two tunnels share one id");
}

static ServiceEntry *
index_service (ZltRegistry *self, ZltService *service, guint16 port, const char *owner)
{
  ServiceEntry *entry = g_new0 (ServiceEntry, 1);
  const char *name = zlt_service_get_name (service);
  GPtrArray *same_name;

  entry->registry = self;
  entry->owner = g_strdup (owner);
  entry->service = g_object_ref (service);
  entry->key = *zlt_service_get_id (service);
  entry->protocol = zlt_service_get_protocol (service);
  entry->port = port;
  entry->id_notify_id
      = g_signal_connect (service, "notify::id", G_CALLBACK (on_service_id_notify), entry);
  if (!g_hash_table_insert (self->services, &entry->key, entry))
    g_warning ("two services share the id of service %s", name);

  same_name = g_hash_table_lookup (self->by_name, name);
  if (same_name == NULL)
    {
      same_name = g_ptr_array_new ();
      g_hash_table_insert (self->by_name, g_strdup (name), same_name);
    }
  g_ptr_array_add (same_name, entry);
  if (port != 0)
    g_hash_table_insert (self->by_port, PORT_KEY (entry->protocol, port), entry);
  return entry;
}

/* Released names are few in practice, but a tenant cycling through made-up names
 * must not grow them without end: expired ones go once there are many, and past a
 * hard bound the oldest-looking one makes room. */
#define RELEASED_PRUNE_AT 4096
#define RELEASED_MAX 65536

static void
remember_bound (ZltRegistry *self)
{
  GHashTableIter iter;
  gpointer value;
  gint64 now;

  if (g_hash_table_size (self->released) < RELEASED_PRUNE_AT)
    return;
  now = g_get_monotonic_time ();
  g_hash_table_iter_init (&iter, self->released);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    if (((Released *) value)->until <= now)
      g_hash_table_iter_remove (&iter);
  if (g_hash_table_size (self->released) < RELEASED_MAX)
    return;
  g_hash_table_iter_init (&iter, self->released);
  if (g_hash_table_iter_next (&iter, NULL, NULL))
    g_hash_table_iter_remove (&iter);
}

/* Another service on @entry's public port: a replica of the same name. */
static ServiceEntry *
find_port_sharer (ZltRegistry *self, ServiceEntry *entry)
{
  GPtrArray *same_name = g_hash_table_lookup (self->by_name, zlt_service_get_name (entry->service));

  for (guint i = 0; same_name != NULL && i < same_name->len; i++)
    {
      ServiceEntry *other = g_ptr_array_index (same_name, i);

      if (other != entry && other->port == entry->port && other->protocol == entry->protocol)
        return other;
    }
  return NULL;
}

static void
unindex_service (ZltRegistry *self, ServiceEntry *entry)
{
  const char *name = zlt_service_get_name (entry->service);
  GPtrArray *same_name = g_hash_table_lookup (self->by_name, name);

  if (same_name != NULL)
    {
      g_ptr_array_remove_fast (same_name, entry);
      if (same_name->len == 0)
        {
          g_hash_table_remove (self->by_name, name);
          if (entry->owner != NULL && self->name_hold_ms > 0)
            {
              Released *r = g_new0 (Released, 1);

              remember_bound (self);

              r->owner = g_strdup (entry->owner);
              r->until = g_get_monotonic_time () + (gint64) self->name_hold_ms * 1000;
              r->protocol = entry->protocol;
              r->port = entry->port;
              g_hash_table_replace (self->released, g_strdup (name), r);
            }
        }
    }
  if (entry->port != 0)
    {
      ServiceEntry *sibling = find_port_sharer (self, entry);

      if (sibling != NULL)
        {
          /* another replica keeps the port (and its listener) */
          g_hash_table_insert (self->by_port, PORT_KEY (entry->protocol, entry->port), sibling);
        }
      else
        {
          if (g_hash_table_lookup (self->by_port, PORT_KEY (entry->protocol, entry->port)) == entry)
            g_hash_table_remove (self->by_port, PORT_KEY (entry->protocol, entry->port));
          zlt_port_pool_release_for (pool_for (self, entry->protocol), entry->port, entry->owner,
                                     self->port_hold_ms);
        }
    }
  g_hash_table_remove (self->services, &entry->key);
}

static void
on_tunnel_service_added (ZltTunnel *tunnel, ZltService *service, gpointer user_data)
{
  TunnelEntry *tentry = user_data;
  ZltRegistry *self = tentry->registry;

  /* services added to the tunnel directly, not by zlt_registry_register_service() */
  if (find_service_entry (self, service) == NULL)
    index_service (self, service, 0, zlt_tunnel_get_token_name (tunnel));
  g_signal_emit (self, signals[SIGNAL_SERVICE_ADDED], 0, service);
}

static void
on_tunnel_service_removed (ZltTunnel *tunnel, ZltService *service, gpointer user_data)
{
  TunnelEntry *tentry = user_data;
  ZltRegistry *self = tentry->registry;
  ServiceEntry *entry = find_service_entry (self, service);

  if (entry == NULL)
    return;
  g_signal_emit (self, signals[SIGNAL_SERVICE_REMOVED], 0, service);
  /* a handler may have run the registry's own removal path already */
  entry = find_service_entry (self, service);
  if (entry != NULL)
    unindex_service (self, entry);
}

static void
remove_tunnel_entry (ZltRegistry *self, TunnelEntry *entry)
{
  g_autoptr (ZltTunnel) tunnel = g_object_ref (entry->tunnel);
  g_autoptr (GPtrArray) services = zlt_tunnel_get_services (tunnel);

  zlt_source_clear (&entry->hold_source);
  for (guint i = 0; i < services->len; i++)
    zlt_tunnel_remove_service (tunnel, g_ptr_array_index (services, i));

  /* the entry may be gone if a handler above removed the tunnel already */
  entry = find_tunnel_entry (self, tunnel);
  if (entry == NULL)
    return;
  g_hash_table_remove (self->tunnels, &entry->key);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_N_TUNNELS]);
  g_signal_emit (self, signals[SIGNAL_TUNNEL_REMOVED], 0, tunnel);
}

static void
zlt_registry_set_property (GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec)
{
  ZltRegistry *self = ZLT_REGISTRY (object);

  switch (prop_id)
    {
    case PROP_TCP_POOL:
      self->tcp_pool = g_value_dup_object (value);
      break;
    case PROP_UDP_POOL:
      self->udp_pool = g_value_dup_object (value);
      break;
    case PROP_MAX_TUNNELS:
      zlt_registry_set_max_tunnels (self, g_value_get_uint (value));
      break;
    case PROP_MAX_SERVICES_PER_TUNNEL:
      zlt_registry_set_max_services_per_tunnel (self, g_value_get_uint (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
zlt_registry_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  ZltRegistry *self = ZLT_REGISTRY (object);

  switch (prop_id)
    {
    case PROP_TCP_POOL:
      g_value_set_object (value, self->tcp_pool);
      break;
    case PROP_UDP_POOL:
      g_value_set_object (value, self->udp_pool);
      break;
    case PROP_MAX_TUNNELS:
      g_value_set_uint (value, self->max_tunnels);
      break;
    case PROP_MAX_SERVICES_PER_TUNNEL:
      g_value_set_uint (value, self->max_services);
      break;
    case PROP_N_TUNNELS:
      g_value_set_uint (value, g_hash_table_size (self->tunnels));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
zlt_registry_constructed (GObject *object)
{
  ZltRegistry *self = ZLT_REGISTRY (object);

  G_OBJECT_CLASS (zlt_registry_parent_class)->constructed (object);
  if (self->tcp_pool == NULL)
    self->tcp_pool = zlt_port_pool_new ();
  if (self->udp_pool == NULL)
    self->udp_pool = zlt_port_pool_new ();
}

static void
zlt_registry_dispose (GObject *object)
{
  ZltRegistry *self = ZLT_REGISTRY (object);
  GHashTableIter iter;
  gpointer value;

  /* quietly: give the ports back (the pools may be shared) and let go of the tunnels,
   * which keep their services */
  g_hash_table_iter_init (&iter, self->services);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      ServiceEntry *entry = value;

      if (entry->port != 0)
        zlt_port_pool_release (pool_for (self, entry->protocol), entry->port);
    }
  g_hash_table_remove_all (self->by_port);
  g_hash_table_remove_all (self->by_name);
  g_hash_table_remove_all (self->services);
  g_hash_table_remove_all (self->tunnels);
  g_clear_object (&self->tcp_pool);
  g_clear_object (&self->udp_pool);
  G_OBJECT_CLASS (zlt_registry_parent_class)->dispose (object);
}

static void
zlt_registry_finalize (GObject *object)
{
  ZltRegistry *self = ZLT_REGISTRY (object);

  g_hash_table_unref (self->by_port);
  g_hash_table_unref (self->by_name);
  g_hash_table_unref (self->released);
  g_hash_table_unref (self->services);
  g_hash_table_unref (self->tunnels);
  g_main_context_unref (self->context);
  G_OBJECT_CLASS (zlt_registry_parent_class)->finalize (object);
}

static void
zlt_registry_class_init (ZltRegistryClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  const GParamFlags co = G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS;
  const GParamFlags rw = G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS;

  object_class->set_property = zlt_registry_set_property;
  object_class->get_property = zlt_registry_get_property;
  object_class->constructed = zlt_registry_constructed;
  object_class->dispose = zlt_registry_dispose;
  object_class->finalize = zlt_registry_finalize;

  /**
   * ZltRegistry:tcp-pool:
   * Where public TCP ports come from; a default pool when not given.
   */
  properties[PROP_TCP_POOL] = g_param_spec_object ("tcp-pool", NULL, NULL, ZLT_TYPE_PORT_POOL, co);
  /**
   * ZltRegistry:udp-pool:
   * Where public UDP ports come from; a default pool when not given.
   */
  properties[PROP_UDP_POOL] = g_param_spec_object ("udp-pool", NULL, NULL, ZLT_TYPE_PORT_POOL, co);
  /**
   * ZltRegistry:max-tunnels:
   * How many tunnels (held ones included) may be listed at once; 0 for no limit.
   */
  properties[PROP_MAX_TUNNELS] = g_param_spec_uint ("max-tunnels", NULL, NULL, 0, G_MAXUINT, 0, rw);
  /**
   * ZltRegistry:max-services-per-tunnel:
   * How many services one tunnel may register; 0 for no limit.
   */
  properties[PROP_MAX_SERVICES_PER_TUNNEL]
      = g_param_spec_uint ("max-services-per-tunnel", NULL, NULL, 0, G_MAXUINT, 0, rw);
  /**
   * ZltRegistry:n-tunnels:
   * How many tunnels are listed, held ones included.
   */
  properties[PROP_N_TUNNELS]
      = g_param_spec_uint ("n-tunnels", NULL, NULL, 0, G_MAXUINT, 0,
                           G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * ZltRegistry::tunnel-added:
   * @self: the registry
   * @tunnel: the tunnel, already listed
   *
   * An agent authenticated: its tunnel is listed.
   */
  signals[SIGNAL_TUNNEL_ADDED]
      = g_signal_new ("tunnel-added", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                      g_cclosure_marshal_VOID__OBJECT, G_TYPE_NONE, 1, ZLT_TYPE_TUNNEL);
  /**
   * ZltRegistry::tunnel-removed:
   * @self: the registry
   * @tunnel: the tunnel, already unlisted and without services
   *
   * A tunnel ended (and will not be resumed).
   */
  signals[SIGNAL_TUNNEL_REMOVED]
      = g_signal_new ("tunnel-removed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                      g_cclosure_marshal_VOID__OBJECT, G_TYPE_NONE, 1, ZLT_TYPE_TUNNEL);
  /**
   * ZltRegistry::service-added:
   * @self: the registry
   * @service: the service; zlt_service_get_tunnel() names its tunnel
   *
   * A service was registered, with its public port (zlt_service_get_assigned_port()).
   */
  signals[SIGNAL_SERVICE_ADDED]
      = g_signal_new ("service-added", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                      g_cclosure_marshal_VOID__OBJECT, G_TYPE_NONE, 1, ZLT_TYPE_SERVICE);
  /**
   * ZltRegistry::service-removed:
   * @self: the registry
   * @service: the service; zlt_service_get_tunnel() still names its tunnel and its port
   *   is still reserved until the emission ends
   *
   * A service was unregistered, or its tunnel ended.
   */
  signals[SIGNAL_SERVICE_REMOVED]
      = g_signal_new ("service-removed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL,
                      NULL, g_cclosure_marshal_VOID__OBJECT, G_TYPE_NONE, 1, ZLT_TYPE_SERVICE);
}

static void
zlt_registry_init (ZltRegistry *self)
{
  self->tunnels
      = g_hash_table_new_full (zlt_uuid_hash, zlt_uuid_equal_func, NULL, tunnel_entry_free);
  self->services
      = g_hash_table_new_full (zlt_uuid_hash, zlt_uuid_equal_func, NULL, service_entry_free);
  self->by_name
      = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) g_ptr_array_unref);
  self->by_port = g_hash_table_new (NULL, NULL);
  self->released
      = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) released_free);
  self->context = g_main_context_ref_thread_default ();
}

/**
 * zlt_registry_new:
 * @tcp_pool: (nullable): where public TCP ports come from, or %NULL for the default
 * @udp_pool: (nullable): where public UDP ports come from, or %NULL for the default
 *
 * Returns: (transfer full): an empty registry without limits
 */
ZltRegistry *
zlt_registry_new (ZltPortPool *tcp_pool, ZltPortPool *udp_pool)
{
  g_return_val_if_fail (tcp_pool == NULL || ZLT_IS_PORT_POOL (tcp_pool), NULL);
  g_return_val_if_fail (udp_pool == NULL || ZLT_IS_PORT_POOL (udp_pool), NULL);

  return g_object_new (ZLT_TYPE_REGISTRY, "tcp-pool", tcp_pool, "udp-pool", udp_pool, NULL);
}

/**
 * zlt_registry_new_from_ranges:
 * @ranges: port ranges as zlt_port_pool_new_from_string() takes them
 * @error: return location for a %ZLT_ERROR_INVALID_CONFIG error
 *
 * Makes a registry with separate TCP and UDP pools of the same ranges.
 *
 * Returns: (transfer full): the registry, or %NULL if @ranges is malformed
 */
ZltRegistry *
zlt_registry_new_from_ranges (const char *ranges, GError **error)
{
  g_autoptr (ZltPortPool) tcp = NULL;
  g_autoptr (ZltPortPool) udp = NULL;

  g_return_val_if_fail (ranges != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  tcp = zlt_port_pool_new_from_string (ranges, error);
  if (tcp == NULL)
    return NULL;
  udp = zlt_port_pool_new_from_string (ranges, error);
  if (udp == NULL)
    return NULL;
  return zlt_registry_new (tcp, udp);
}

/**
 * zlt_registry_get_port_pool:
 * @protocol: TCP or UDP
 *
 * Returns: (transfer none): the pool public ports of @protocol come from
 */
ZltPortPool *
zlt_registry_get_port_pool (ZltRegistry *self, ZltProtocol protocol)
{
  g_return_val_if_fail (ZLT_IS_REGISTRY (self), NULL);
  return pool_for (self, protocol);
}

/**
 * zlt_registry_get_max_tunnels:
 * @self: a registry
 *
 * Returns: how many tunnels may be listed at once; 0 for no limit
 */
guint
zlt_registry_get_max_tunnels (ZltRegistry *self)
{
  g_return_val_if_fail (ZLT_IS_REGISTRY (self), 0);
  return self->max_tunnels;
}

/**
 * zlt_registry_set_max_tunnels:
 * @max_tunnels: the new limit, 0 for none
 *
 * A lower limit refuses new tunnels; it never drops listed ones.
 */
void
zlt_registry_set_max_tunnels (ZltRegistry *self, guint max_tunnels)
{
  g_return_if_fail (ZLT_IS_REGISTRY (self));

  if (self->max_tunnels == max_tunnels)
    return;
  self->max_tunnels = max_tunnels;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_MAX_TUNNELS]);
}

/**
 * zlt_registry_get_max_services_per_tunnel:
 * @self: a registry
 *
 * Returns: how many services one tunnel may register; 0 for no limit
 */
guint
zlt_registry_get_max_services_per_tunnel (ZltRegistry *self)
{
  g_return_val_if_fail (ZLT_IS_REGISTRY (self), 0);
  return self->max_services;
}

/**
 * zlt_registry_set_max_services_per_tunnel:
 * @max_services: the new limit, 0 for none
 *
 * A lower limit refuses new registrations; it never drops registered services.
 */
void
zlt_registry_set_max_services_per_tunnel (ZltRegistry *self, guint max_services)
{
  g_return_if_fail (ZLT_IS_REGISTRY (self));

  if (self->max_services == max_services)
    return;
  self->max_services = max_services;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_MAX_SERVICES_PER_TUNNEL]);
}

/**
 * zlt_registry_get_n_tunnels:
 * @self: a registry
 *
 * Returns: how many tunnels are listed, held ones included
 */
guint
zlt_registry_get_n_tunnels (ZltRegistry *self)
{
  g_return_val_if_fail (ZLT_IS_REGISTRY (self), 0);
  return g_hash_table_size (self->tunnels);
}

/**
 * zlt_registry_add_tunnel:
 * @tunnel: a tunnel, typically just authenticated
 * @error: return location for an error
 *
 * Lists @tunnel (taking a reference) and emits ::tunnel-added, then ::service-added for
 * any services it already has. Fails with %ZLT_ERROR_LIMIT at #ZltRegistry:max-tunnels
 * and %ZLT_ERROR_IN_USE when a tunnel of the same id is listed.
 *
 * Returns: %TRUE on success
 */
gboolean
zlt_registry_add_tunnel (ZltRegistry *self, ZltTunnel *tunnel, GError **error)
{
  TunnelEntry *entry;
  g_autoptr (GPtrArray) services = NULL;
  guint n_tunnels;

  g_return_val_if_fail (ZLT_IS_REGISTRY (self), FALSE);
  g_return_val_if_fail (ZLT_IS_TUNNEL (tunnel), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (g_hash_table_contains (self->tunnels, zlt_tunnel_get_id (tunnel)))
    {
      g_autofree char *id = zlt_tunnel_dup_id_string (tunnel);

      g_set_error (error, ZLT_ERROR, ZLT_ERROR_IN_USE, _ ("tunnel %s is already connected"), id);
      return FALSE;
    }
  n_tunnels = g_hash_table_size (self->tunnels);
  if (self->max_tunnels != 0 && n_tunnels >= self->max_tunnels)
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_LIMIT,
                   _ ("the server already has its maximum of %u tunnels"), self->max_tunnels);
      return FALSE;
    }

  entry = g_new0 (TunnelEntry, 1);
  entry->registry = self;
  entry->tunnel = g_object_ref (tunnel);
  entry->key = *zlt_tunnel_get_id (tunnel);
  entry->added_id
      = g_signal_connect (tunnel, "service-added", G_CALLBACK (on_tunnel_service_added), entry);
  entry->removed_id
      = g_signal_connect (tunnel, "service-removed", G_CALLBACK (on_tunnel_service_removed), entry);
  entry->id_notify_id
      = g_signal_connect (tunnel, "notify::id", G_CALLBACK (on_tunnel_id_notify), entry);
  g_hash_table_insert (self->tunnels, &entry->key, entry);

  services = zlt_tunnel_get_services (tunnel);
  for (guint i = 0; i < services->len; i++)
    if (find_service_entry (self, g_ptr_array_index (services, i)) == NULL)
      index_service (self, g_ptr_array_index (services, i), 0, zlt_tunnel_get_token_name (tunnel));

  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_N_TUNNELS]);
  g_signal_emit (self, signals[SIGNAL_TUNNEL_ADDED], 0, tunnel);
  for (guint i = 0; i < services->len; i++)
    g_signal_emit (self, signals[SIGNAL_SERVICE_ADDED], 0, g_ptr_array_index (services, i));
  return TRUE;
}

/**
 * zlt_registry_remove_tunnel:
 * @tunnel: a listed tunnel, held or not
 *
 * Removes every service of @tunnel (each one gives its port back; ::service-removed on
 * the tunnel and on the registry), cancels any hold, unlists the tunnel and emits
 * ::tunnel-removed.
 *
 * Returns: %TRUE if @tunnel was listed
 */
gboolean
zlt_registry_remove_tunnel (ZltRegistry *self, ZltTunnel *tunnel)
{
  TunnelEntry *entry;

  g_return_val_if_fail (ZLT_IS_REGISTRY (self), FALSE);
  g_return_val_if_fail (ZLT_IS_TUNNEL (tunnel), FALSE);

  entry = find_tunnel_entry (self, tunnel);
  if (entry == NULL)
    return FALSE;
  remove_tunnel_entry (self, entry);
  return TRUE;
}

/**
 * zlt_registry_lookup_tunnel:
 * @id: a tunnel id
 *
 * Returns: (transfer none) (nullable): the listed tunnel with @id, held ones included
 */
ZltTunnel *
zlt_registry_lookup_tunnel (ZltRegistry *self, const ZltUuid *id)
{
  TunnelEntry *entry;

  g_return_val_if_fail (ZLT_IS_REGISTRY (self), NULL);
  g_return_val_if_fail (id != NULL, NULL);

  entry = g_hash_table_lookup (self->tunnels, id);
  return entry != NULL ? entry->tunnel : NULL;
}

/**
 * zlt_registry_get_tunnels:
 *
 * Returns: (transfer full) (element-type ZltTunnel): a snapshot of the listed tunnels,
 *   in no particular order
 */
GPtrArray *
zlt_registry_get_tunnels (ZltRegistry *self)
{
  GPtrArray *out;
  GHashTableIter iter;
  gpointer value;

  g_return_val_if_fail (ZLT_IS_REGISTRY (self), NULL);

  out = g_ptr_array_new_full (g_hash_table_size (self->tunnels), g_object_unref);
  g_hash_table_iter_init (&iter, self->tunnels);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    g_ptr_array_add (out, g_object_ref (((TunnelEntry *) value)->tunnel));
  return out;
}

static gboolean
can_reclaim (ZltService *old, ZltProtocol protocol, guint16 requested_port, ZltExpose expose)
{
  return zlt_service_get_protocol (old) == protocol && zlt_service_get_expose (old) == expose
         && (expose == ZLT_EXPOSE_INTERNAL || requested_port == 0
             || requested_port == zlt_service_get_assigned_port (old));
}

/* The same owner's service of that name in a tunnel held for a resume (an agent that
 * restarted inside the grace: the new process has no resume secret, so the old tunnel
 * would only wait out its grace holding the port): the new session takes it over.
 * The held service goes now, its port kept for the owner, so the registration that
 * follows gets the same port; a held tunnel left with no service goes too. */
static void
take_over_held (ZltRegistry *self, ZltTunnel *tunnel, const char *name, const char *owner)
{
  GPtrArray *same_name = g_hash_table_lookup (self->by_name, name);
  g_autoptr (GPtrArray) doomed = g_ptr_array_new_with_free_func (g_object_unref);

  for (guint i = 0; same_name != NULL && i < same_name->len; i++)
    {
      ServiceEntry *entry = g_ptr_array_index (same_name, i);
      ZltTunnel *held = zlt_service_get_tunnel (entry->service);

      if (held != NULL && held != tunnel && g_strcmp0 (entry->owner, owner) == 0
          && zlt_registry_is_held (self, held))
        g_ptr_array_add (doomed, g_object_ref (entry->service));
    }
  for (guint i = 0; i < doomed->len; i++)
    {
      ZltService *service = g_ptr_array_index (doomed, i);
      g_autoptr (ZltTunnel) held = g_object_ref (zlt_service_get_tunnel (service));

      g_debug ("service %s: a new session of %s takes it over from a held tunnel", name, owner);
      zlt_tunnel_remove_service (held, service);
      if (zlt_tunnel_get_n_services (held) == 0)
        zlt_registry_remove_tunnel (self, held);
    }
}

static ZltService *register_full (ZltRegistry *self, ZltTunnel *tunnel, const char *name,
                                  ZltProtocol protocol, guint16 local_port, guint16 requested_port,
                                  ZltExpose expose, gboolean replica, GError **error);

/**
 * zlt_registry_register_service:
 * @tunnel: a listed tunnel
 * @name: the service name, unique within @tunnel
 * @protocol: TCP or UDP
 * @local_port: the port on the agent's side
 * @requested_port: the public port asked for, 0 for any; ignored for internal services
 * @expose: public services get a port from the pool of @protocol, internal ones none
 * @error: return location for an error
 *
 * Errors: %ZLT_ERROR_INVALID (a name that is not 1-64 of [A-Za-z0-9_-], an unknown
 * protocol or exposure, local port 0), %ZLT_ERROR_NOT_FOUND (tunnel not listed),
 * %ZLT_ERROR_DUPLICATE_NAME,
 * %ZLT_ERROR_LIMIT (#ZltRegistry:max-services-per-tunnel), and the port pool's
 * %ZLT_ERROR_PORT_OUT_OF_RANGE, %ZLT_ERROR_PORT_IN_USE and %ZLT_ERROR_PORTS_EXHAUSTED.
 *
 * A service of the same name and owner in another tunnel that is held for a resume is
 * taken over: it goes, and its port (kept for the owner) comes back with this one.
 *
 * After zlt_registry_resume_tunnel(), registering a name the tunnel held with the same
 * protocol and expose (and a requested port of 0 or the one it had) gives back the held
 * service, with its id and assigned port; no ::service-added is emitted for it then.
 *
 * Returns: (transfer none) (nullable): the service, owned by @tunnel, or %NULL on error
 */
ZltService *
zlt_registry_register_service (ZltRegistry *self, ZltTunnel *tunnel, const char *name,
                               ZltProtocol protocol, guint16 local_port, guint16 requested_port,
                               ZltExpose expose, GError **error)
{
  return register_full (self, tunnel, name, protocol, local_port, requested_port, expose, FALSE,
                        error);
}

/**
 * zlt_registry_register_replica:
 * @tunnel: a listed tunnel whose token owns @name (the token file's `owns=`)
 * @name: the service name
 * @protocol: TCP or UDP
 * @local_port: the port on the agent's side
 * @requested_port: the public port asked for, 0 for any
 * @expose: public or internal
 * @error: return location for an error
 *
 * Like zlt_registry_register_service(), but when another tunnel of the same owner has a
 * service of @name that was registered as a replica too, the new service is one more
 * replica of it: it shares that service's public port (no port is taken from the pool,
 * and the port goes back only when the last replica goes). A replica must ask for the
 * same protocol and exposure, and for port 0 or the shared port; otherwise it is refused
 * with %ZLT_ERROR_IN_USE and the reason. A held service of the name is not taken over:
 * it stays a replica, waiting for its resume.
 *
 * Returns: (transfer none) (nullable): the service, owned by @tunnel, or %NULL on error
 */
ZltService *
zlt_registry_register_replica (ZltRegistry *self, ZltTunnel *tunnel, const char *name,
                               ZltProtocol protocol, guint16 local_port, guint16 requested_port,
                               ZltExpose expose, GError **error)
{
  return register_full (self, tunnel, name, protocol, local_port, requested_port, expose, TRUE,
                        error);
}

/* A replica of @name that a new replica registered by @owner in @tunnel joins. */
static ServiceEntry *
find_replica_group (ZltRegistry *self, ZltTunnel *tunnel, const char *name, const char *owner)
{
  GPtrArray *same_name = g_hash_table_lookup (self->by_name, name);

  for (guint i = 0; same_name != NULL && i < same_name->len; i++)
    {
      ServiceEntry *entry = g_ptr_array_index (same_name, i);

      if (entry->replica && g_strcmp0 (entry->owner, owner) == 0
          && zlt_service_get_tunnel (entry->service) != tunnel
          && (entry->port != 0 || zlt_service_get_expose (entry->service) == ZLT_EXPOSE_INTERNAL))
        return entry;
    }
  return NULL;
}

static ZltService *
register_full (ZltRegistry *self, ZltTunnel *tunnel, const char *name, ZltProtocol protocol,
               guint16 local_port, guint16 requested_port, ZltExpose expose, gboolean replica,
               GError **error)
{
  ServiceEntry *group = NULL;
  ZltService *existing;
  g_autoptr (ZltService) service = NULL;
  g_autoptr (GError) local_error = NULL;
  ServiceEntry *entry;
  guint16 port = 0;
  const char *owner, *current_owner;

  g_return_val_if_fail (ZLT_IS_REGISTRY (self), NULL);
  g_return_val_if_fail (ZLT_IS_TUNNEL (tunnel), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  /* what a peer sent: a refusal with its reason, never a silent NULL */
  if (!zlt_service_name_is_valid (name))
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID,
                   _ ("a service name is 1 to %u letters, digits, '-' or '_'"),
                   (guint) ZLT_SERVICE_NAME_MAX);
      return NULL;
    }
  if ((protocol != ZLT_PROTOCOL_TCP && protocol != ZLT_PROTOCOL_UDP)
      || (expose != ZLT_EXPOSE_PUBLIC && expose != ZLT_EXPOSE_INTERNAL))
    {
      g_set_error_literal (error, ZLT_ERROR, ZLT_ERROR_INVALID, _ ("unknown protocol or exposure"));
      return NULL;
    }
  if (local_port == 0)
    {
      g_set_error_literal (error, ZLT_ERROR, ZLT_ERROR_INVALID,
                           _ ("the local port must be 1 to 65535"));
      return NULL;
    }

  if (find_tunnel_entry (self, tunnel) == NULL)
    {
      g_set_error_literal (error, ZLT_ERROR, ZLT_ERROR_NOT_FOUND,
                           _ ("the tunnel is not known to the server"));
      return NULL;
    }

  existing = zlt_tunnel_lookup_service (tunnel, name);
  if (existing != NULL)
    {
      entry = find_service_entry (self, existing);
      if (entry == NULL || !entry->unclaimed)
        {
          g_set_error (error, ZLT_ERROR, ZLT_ERROR_DUPLICATE_NAME,
                       _ ("a service named “%s” already exists"), name);
          return NULL;
        }
      if (can_reclaim (existing, protocol, requested_port, expose))
        {
          entry->unclaimed = FALSE;
          zlt_service_set_local_port (existing, local_port);
          if (expose == ZLT_EXPOSE_PUBLIC)
            zlt_service_set_requested_port (existing, requested_port);
          return existing;
        }
      /* held under other terms: start afresh (its port is free again for this) */
      zlt_tunnel_remove_service (tunnel, existing);
    }

  if (self->max_services != 0 && zlt_tunnel_get_n_services (tunnel) >= self->max_services)
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_LIMIT,
                   _ ("the tunnel already has its maximum of %u services"), self->max_services);
      return NULL;
    }
  owner = zlt_tunnel_get_token_name (tunnel);
  if (replica && owner != NULL)
    group = find_replica_group (self, tunnel, name, owner);
  if (group != NULL)
    {
      ZltService *other = group->service;

      if (zlt_service_get_protocol (other) != protocol || zlt_service_get_expose (other) != expose
          || (expose == ZLT_EXPOSE_PUBLIC && requested_port != 0 && requested_port != group->port))
        {
          g_set_error (error, ZLT_ERROR, ZLT_ERROR_IN_USE,
                       _ ("service “%s” has replicas as %s %s (port %u): a replica must ask "
                          "for the same protocol, exposure and port"),
                       name, zlt_protocol_to_string (zlt_service_get_protocol (other)),
                       zlt_service_get_expose (other) == ZLT_EXPOSE_INTERNAL ? "internal"
                                                                             : "public",
                       group->port);
          return NULL;
        }
      port = group->port;
    }
  else if (owner != NULL)
    take_over_held (self, tunnel, name, owner);
  current_owner = zlt_registry_get_name_owner (self, name);
  if (owner != NULL && current_owner != NULL && g_strcmp0 (owner, current_owner) != 0)
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_NOT_ALLOWED,
                   _ ("service name “%s” belongs to another token"), name);
      return NULL;
    }

  if (expose == ZLT_EXPOSE_PUBLIC && group == NULL)
    {
      Released *last = g_hash_table_lookup (self->released, name);

      /* the owner back for its name gets the port the name had, while it is kept */
      if (requested_port == 0 && owner != NULL && last != NULL && last->port != 0
          && last->protocol == protocol && g_strcmp0 (last->owner, owner) == 0)
        port = zlt_port_pool_allocate_for (pool_for (self, protocol), last->port, owner, NULL);
      if (port == 0)
        port = zlt_port_pool_allocate_for (pool_for (self, protocol), requested_port, owner,
                                           &local_error);
      if (port == 0)
        {
          g_propagate_prefixed_error (error, g_steal_pointer (&local_error),
                                      _ ("cannot register service “%s”: "), name);
          return NULL;
        }
    }

  service = g_object_new (ZLT_TYPE_SERVICE, "name", name, "protocol", protocol, "expose", expose,
                          "local-port", (guint) local_port, "requested-port",
                          (guint) (expose == ZLT_EXPOSE_PUBLIC ? requested_port : 0),
                          "assigned-port", (guint) port, NULL);
  zlt_service_set_state (service, ZLT_SERVICE_STATE_REGISTERED, NULL);
  /* filed with its port before the tunnel announces it, so handlers see it complete */
  g_hash_table_remove (self->released, name);
  entry = index_service (self, service, port, owner);
  entry->replica = replica && owner != NULL;
  if (!zlt_tunnel_add_service (tunnel, service, &local_error))
    {
      /* not reachable with the checks above, but never leak the port */
      unindex_service (self, entry);
      g_propagate_error (error, g_steal_pointer (&local_error));
      return NULL;
    }
  return service; /* the tunnel and the registry hold it */
}

/**
 * zlt_registry_unregister_service:
 * @service: a service of a listed tunnel
 * @error: return location for a %ZLT_ERROR_NOT_FOUND error
 *
 * Removes @service from its tunnel and gives its port back.
 *
 * Returns: %TRUE on success
 */
gboolean
zlt_registry_unregister_service (ZltRegistry *self, ZltService *service, GError **error)
{
  ZltTunnel *tunnel;

  g_return_val_if_fail (ZLT_IS_REGISTRY (self), FALSE);
  g_return_val_if_fail (ZLT_IS_SERVICE (service), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  tunnel = zlt_service_get_tunnel (service);
  if (find_service_entry (self, service) == NULL || tunnel == NULL)
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_NOT_FOUND, _ ("no such service “%s”"),
                   zlt_service_get_name (service));
      return FALSE;
    }
  zlt_tunnel_remove_service (tunnel, service);
  return TRUE;
}

/**
 * zlt_registry_reassign_port:
 * @service: a public service whose assigned port could not be bound
 * @error: return location for an error
 *
 * Marks the service's port unusable in its pool (so nobody gets it again until
 * zlt_port_pool_clear_unusable()) and, when the agent asked for any port, gives the
 * service the next free one. When the agent asked for that very port, fails with
 * %ZLT_ERROR_PORT_IN_USE; the service then has no port (assigned-port 0) and the caller
 * should unregister it.
 *
 * Returns: the new port, or 0 on error
 */
guint16
zlt_registry_reassign_port (ZltRegistry *self, ZltService *service, GError **error)
{
  ServiceEntry *entry;
  ZltPortPool *pool;
  guint16 old_port, port;

  g_return_val_if_fail (ZLT_IS_REGISTRY (self), 0);
  g_return_val_if_fail (ZLT_IS_SERVICE (service), 0);
  g_return_val_if_fail (error == NULL || *error == NULL, 0);

  entry = find_service_entry (self, service);
  if (entry == NULL || entry->port == 0)
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_NOT_FOUND,
                   _ ("service “%s” has no public port from this server"),
                   zlt_service_get_name (service));
      return 0;
    }
  pool = pool_for (self, entry->protocol);
  old_port = entry->port;
  g_hash_table_remove (self->by_port, PORT_KEY (entry->protocol, old_port));
  zlt_port_pool_mark_unusable (pool, old_port);
  entry->port = 0;

  if (zlt_service_get_requested_port (service) != 0)
    {
      zlt_service_set_assigned_port (service, 0);
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_PORT_IN_USE, _ ("port %u is in use"), old_port);
      return 0;
    }
  port = zlt_port_pool_allocate (pool, 0, error);
  if (port != 0)
    {
      entry->port = port;
      g_hash_table_insert (self->by_port, PORT_KEY (entry->protocol, port), entry);
    }
  zlt_service_set_assigned_port (service, port);
  return port;
}

/**
 * zlt_registry_lookup_service:
 * @id: a service id
 *
 * Returns: (transfer none) (nullable): the service with @id, in any listed tunnel
 */
ZltService *
zlt_registry_lookup_service (ZltRegistry *self, const ZltUuid *id)
{
  ServiceEntry *entry;

  g_return_val_if_fail (ZLT_IS_REGISTRY (self), NULL);
  g_return_val_if_fail (id != NULL, NULL);

  entry = g_hash_table_lookup (self->services, id);
  return entry != NULL ? entry->service : NULL;
}

/**
 * zlt_registry_lookup_service_by_name:
 * @name: a service name
 * @error: return location for an error
 *
 * Names are unique per tunnel only; this finds a name across the whole server, as an
 * access session asks for it. Use zlt_tunnel_lookup_service() for one tunnel.
 * Fails with %ZLT_ERROR_NOT_FOUND, or %ZLT_ERROR_DUPLICATE_NAME when several tunnels
 * have a service of that name.
 *
 * Returns: (transfer none) (nullable): the one service called @name
 */
ZltService *
zlt_registry_lookup_service_by_name (ZltRegistry *self, const char *name, GError **error)
{
  GPtrArray *same_name;

  g_return_val_if_fail (ZLT_IS_REGISTRY (self), NULL);
  g_return_val_if_fail (name != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  same_name = g_hash_table_lookup (self->by_name, name);
  if (same_name == NULL || same_name->len == 0)
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_NOT_FOUND, _ ("no such service “%s”"), name);
      return NULL;
    }
  if (same_name->len > 1)
    {
      ServiceEntry *first = g_ptr_array_index (same_name, 0);
      ZltService *connected = NULL;
      gboolean one_group = first->replica;

      /* replicas are one service: any of them whose agent is here will do */
      for (guint i = 0; one_group && i < same_name->len; i++)
        {
          ServiceEntry *entry = g_ptr_array_index (same_name, i);
          ZltTunnel *tunnel = zlt_service_get_tunnel (entry->service);

          one_group = entry->replica && g_strcmp0 (entry->owner, first->owner) == 0
                      && entry->port == first->port && entry->protocol == first->protocol;
          if (connected == NULL && tunnel != NULL && !zlt_registry_is_held (self, tunnel))
            connected = entry->service;
        }
      if (one_group)
        return connected != NULL ? connected : first->service;
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_DUPLICATE_NAME,
                   _ ("%u tunnels have a service named “%s”"), same_name->len, name);
      return NULL;
    }
  return ((ServiceEntry *) g_ptr_array_index (same_name, 0))->service;
}

/**
 * zlt_registry_get_replicas:
 * @service: a listed service
 *
 * The replicas of @service (zlt_registry_register_replica()): the services of its name
 * and owner, in any tunnel (held ones included), that share its public port. A service
 * that is no replica is alone in its list.
 *
 * Returns: (transfer full) (element-type ZltService): @service and its replicas; empty
 *   for a service the registry does not list
 */
GPtrArray *
zlt_registry_get_replicas (ZltRegistry *self, ZltService *service)
{
  GPtrArray *out;
  ServiceEntry *entry;
  GPtrArray *same_name;

  g_return_val_if_fail (ZLT_IS_REGISTRY (self), NULL);
  g_return_val_if_fail (ZLT_IS_SERVICE (service), NULL);

  out = g_ptr_array_new_with_free_func (g_object_unref);
  entry = find_service_entry (self, service);
  if (entry == NULL)
    return out;
  g_ptr_array_add (out, g_object_ref (service));
  if (!entry->replica)
    return out;
  same_name = g_hash_table_lookup (self->by_name, zlt_service_get_name (service));
  for (guint i = 0; same_name != NULL && i < same_name->len; i++)
    {
      ServiceEntry *other = g_ptr_array_index (same_name, i);

      if (other != entry && other->replica && g_strcmp0 (other->owner, entry->owner) == 0
          && other->port == entry->port && other->protocol == entry->protocol)
        g_ptr_array_add (out, g_object_ref (other->service));
    }
  return out;
}

/**
 * zlt_registry_lookup_service_by_port:
 * @protocol: TCP or UDP
 * @port: a public port
 *
 * Returns: (transfer none) (nullable): the service the registry gave @port to
 */
ZltService *
zlt_registry_lookup_service_by_port (ZltRegistry *self, ZltProtocol protocol, guint16 port)
{
  ServiceEntry *entry;

  g_return_val_if_fail (ZLT_IS_REGISTRY (self), NULL);

  if (port == 0)
    return NULL;
  entry = g_hash_table_lookup (self->by_port, PORT_KEY (protocol, port));
  return entry != NULL ? entry->service : NULL;
}

/* "web (port 30001), db (internal)": what a tunnel holds, for a log line */
static char *
describe_services (ZltTunnel *tunnel)
{
  g_autoptr (GPtrArray) services = zlt_tunnel_get_services (tunnel);
  GString *text = g_string_new (NULL);

  for (guint i = 0; i < services->len; i++)
    {
      ZltService *service = g_ptr_array_index (services, i);
      guint16 port = zlt_service_get_assigned_port (service);

      if (text->len > 0)
        g_string_append (text, ", ");
      if (port != 0)
        g_string_append_printf (text, "%s (port %u)", zlt_service_get_name (service), port);
      else
        g_string_append_printf (text, "%s (internal)", zlt_service_get_name (service));
    }
  if (text->len == 0)
    g_string_append (text, "no services");
  return g_string_free (text, FALSE);
}

static gboolean
hold_expired_cb (gpointer user_data)
{
  TunnelEntry *entry = user_data;
  g_autofree char *what = describe_services (entry->tunnel);
  char id[ZLT_UUID_STRING_LEN + 1];

  /* the operator sees a port close, and why, without -v */
  zlt_uuid_format (zlt_tunnel_get_id (entry->tunnel), id);
  g_message ("tunnel %s: not resumed in time; releasing %s", id, what);
  /* the dispatch keeps the source alive until we return */
  g_clear_pointer (&entry->hold_source, g_source_unref);
  remove_tunnel_entry (entry->registry, entry);
  return G_SOURCE_REMOVE;
}

/**
 * zlt_registry_hold_tunnel:
 * @tunnel: a listed tunnel whose control channel ended
 * @grace_ms: how long to keep it for a resume; 0 removes it now
 *
 * Sets the tunnel's state to disconnected and keeps it listed, with its services and
 * their ports, for @grace_ms. zlt_registry_resume_tunnel() takes it back; otherwise it is
 * removed (as by zlt_registry_remove_tunnel()) when the time is up. Holding a held tunnel
 * again restarts the period.
 *
 * Returns: %TRUE if @tunnel was listed
 */
gboolean
zlt_registry_hold_tunnel (ZltRegistry *self, ZltTunnel *tunnel, guint grace_ms)
{
  TunnelEntry *entry;

  g_return_val_if_fail (ZLT_IS_REGISTRY (self), FALSE);
  g_return_val_if_fail (ZLT_IS_TUNNEL (tunnel), FALSE);

  entry = find_tunnel_entry (self, tunnel);
  if (entry == NULL)
    return FALSE;
  zlt_tunnel_set_state (tunnel, ZLT_TUNNEL_STATE_DISCONNECTED);
  /* a state handler may have removed it */
  entry = find_tunnel_entry (self, tunnel);
  if (entry == NULL)
    return TRUE;
  if (grace_ms == 0)
    {
      remove_tunnel_entry (self, entry);
      return TRUE;
    }
  zlt_source_clear (&entry->hold_source);
  entry->hold_source = g_timeout_source_new (grace_ms);
  g_source_set_callback (entry->hold_source, hold_expired_cb, entry, NULL);
  g_source_set_static_name (entry->hold_source, "[zlt] tunnel resume grace");
  g_source_attach (entry->hold_source, self->context);
  return TRUE;
}

/**
 * zlt_registry_is_held:
 * @tunnel: a tunnel
 *
 * Returns: %TRUE if @tunnel is listed and waiting for a resume
 */
gboolean
zlt_registry_is_held (ZltRegistry *self, ZltTunnel *tunnel)
{
  TunnelEntry *entry;

  g_return_val_if_fail (ZLT_IS_REGISTRY (self), FALSE);
  g_return_val_if_fail (ZLT_IS_TUNNEL (tunnel), FALSE);

  entry = find_tunnel_entry (self, tunnel);
  return entry != NULL && entry->hold_source != NULL;
}

/**
 * zlt_registry_resume_tunnel:
 * @id: the id of a held tunnel (after the caller checked the resume proof)
 * @error: return location for an error
 *
 * Ends the hold. The tunnel's services stay, waiting to be registered again with
 * zlt_registry_register_service(), which gives each one back with its port;
 * zlt_registry_drop_unclaimed() removes those the agent no longer registers. The caller
 * sets the tunnel's state. Fails with %ZLT_ERROR_NOT_FOUND for an unknown (or expired)
 * tunnel and %ZLT_ERROR_IN_USE for a tunnel that is not held.
 *
 * Returns: (transfer none) (nullable): the tunnel, still listed
 */
ZltTunnel *
zlt_registry_resume_tunnel (ZltRegistry *self, const ZltUuid *id, GError **error)
{
  TunnelEntry *entry;
  g_autoptr (GPtrArray) services = NULL;

  g_return_val_if_fail (ZLT_IS_REGISTRY (self), NULL);
  g_return_val_if_fail (id != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  entry = g_hash_table_lookup (self->tunnels, id);
  if (entry == NULL)
    {
      g_set_error_literal (error, ZLT_ERROR, ZLT_ERROR_NOT_FOUND, _ ("no such tunnel to resume"));
      return NULL;
    }
  if (entry->hold_source == NULL)
    {
      g_set_error_literal (error, ZLT_ERROR, ZLT_ERROR_IN_USE, _ ("the tunnel is still connected"));
      return NULL;
    }
  zlt_source_clear (&entry->hold_source);
  services = zlt_tunnel_get_services (entry->tunnel);
  for (guint i = 0; i < services->len; i++)
    {
      ServiceEntry *sentry = find_service_entry (self, g_ptr_array_index (services, i));

      if (sentry != NULL)
        sentry->unclaimed = TRUE;
    }
  return entry->tunnel;
}

/**
 * zlt_registry_drop_unclaimed:
 * @tunnel: a resumed tunnel
 *
 * Removes the services held over the resume that the agent did not register again.
 *
 * Returns: how many were removed
 */
guint
zlt_registry_drop_unclaimed (ZltRegistry *self, ZltTunnel *tunnel)
{
  g_autoptr (GPtrArray) services = NULL;
  guint n = 0;

  g_return_val_if_fail (ZLT_IS_REGISTRY (self), 0);
  g_return_val_if_fail (ZLT_IS_TUNNEL (tunnel), 0);

  if (find_tunnel_entry (self, tunnel) == NULL)
    return 0;
  services = zlt_tunnel_get_services (tunnel);
  for (guint i = 0; i < services->len; i++)
    {
      ZltService *service = g_ptr_array_index (services, i);
      ServiceEntry *sentry = find_service_entry (self, service);

      if (sentry != NULL && sentry->unclaimed && zlt_tunnel_remove_service (tunnel, service))
        n++;
    }
  return n;
}

/**
 * zlt_registry_set_hold_times:
 * @name_hold_ms: how long a name stays its owner's after its last service went
 * @port_hold_ms: how long a released public port is kept for its previous owner
 *
 * Both apply to tunnels with a token name (zlt_tunnel_set_token_name()); 0 turns the
 * hold off.
 */
void
zlt_registry_set_hold_times (ZltRegistry *self, guint name_hold_ms, guint port_hold_ms)
{
  g_return_if_fail (ZLT_IS_REGISTRY (self));

  self->name_hold_ms = name_hold_ms;
  self->port_hold_ms = port_hold_ms;
}

/**
 * zlt_registry_get_name_owner:
 *
 * Returns: (nullable): the principal whose service holds @name now, or held it until
 *   less than name-hold ago; NULL when the name is free (or only services without an
 *   owner use it)
 */
const char *
zlt_registry_get_name_owner (ZltRegistry *self, const char *name)
{
  GPtrArray *same_name;
  Released *last;

  g_return_val_if_fail (ZLT_IS_REGISTRY (self), NULL);
  g_return_val_if_fail (name != NULL, NULL);

  same_name = g_hash_table_lookup (self->by_name, name);
  for (guint i = 0; same_name != NULL && i < same_name->len; i++)
    {
      ServiceEntry *entry = g_ptr_array_index (same_name, i);

      if (entry->owner != NULL)
        return entry->owner;
    }
  last = g_hash_table_lookup (self->released, name);
  if (last == NULL)
    return NULL;
  if (last->until <= g_get_monotonic_time ())
    {
      g_hash_table_remove (self->released, name);
      return NULL;
    }
  return last->owner;
}
