/* zlt-service.c: one exposed TCP or UDP service */
#include "config.h"

#include "zlt-enum-types.h"
#include "zlt-service.h"
#include "zlt-notify-batch.h"
#include "zlt-tunnel.h"

struct _ZltService
{
  GObject parent_instance;

  ZltUuid id;
  char *name;
  ZltProtocol protocol;
  ZltExpose expose;
  guint16 local_port;
  guint16 requested_port;
  guint16 assigned_port;
  ZltServiceState state;
  char *last_error;  /* the last refusal; NULL once registered */
  char *hostname;    /* reached by on the server's shared ports; NULL: none */
  ZltTunnel *tunnel; /* not a reference: the tunnel owns us and clears this */

  guint active_connections;
  guint64 total_connections;
  guint64 bytes_in;
  guint64 bytes_out;

  /* coalesced notify of the byte counters */
  ZltNotifyBatch batch; /* bytes (and activity) notifies, coalesced */
  GMainContext *context;
};

enum
{
  PROP_0,
  PROP_ID,
  PROP_NAME,
  PROP_PROTOCOL,
  PROP_EXPOSE,
  PROP_LOCAL_PORT,
  PROP_REQUESTED_PORT,
  PROP_ASSIGNED_PORT,
  PROP_STATE,
  PROP_LAST_ERROR,
  PROP_HOSTNAME,
  PROP_TUNNEL,
  PROP_ACTIVE_CONNECTIONS,
  PROP_TOTAL_CONNECTIONS,
  PROP_BYTES_IN,
  PROP_BYTES_OUT,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

/**
 * ZltService:
 * One TCP or UDP service an agent exposes: its name, protocol, the local port it
 * listens on at the agent, the public port asked for and the one the server gave
 * (none for an internal service, reachable only through access sessions), and
 * counters of its connections and bytes. The server's registry and the agent's tunnel
 * each hold their own #ZltService for a registered service.
 */

G_DEFINE_FINAL_TYPE (ZltService, zlt_service, G_TYPE_OBJECT)

static void
zlt_service_set_id_string (ZltService *self, const char *str)
{
  ZltUuid id;

  if (str == NULL)
    zlt_uuid_generate (&id);
  else if (!zlt_uuid_parse (str, &id))
    {
      g_warning ("invalid service id “%s”", str);
      return;
    }
  zlt_service_set_id (self, &id);
}

static void
zlt_service_set_property (GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec)
{
  ZltService *self = ZLT_SERVICE (object);

  switch (prop_id)
    {
    case PROP_ID:
      zlt_service_set_id_string (self, g_value_get_string (value));
      break;
    case PROP_NAME:
      self->name = g_value_dup_string (value);
      break;
    case PROP_PROTOCOL:
      self->protocol = g_value_get_enum (value);
      break;
    case PROP_EXPOSE:
      self->expose = g_value_get_enum (value);
      break;
    case PROP_LOCAL_PORT:
      zlt_service_set_local_port (self, (guint16) g_value_get_uint (value));
      break;
    case PROP_REQUESTED_PORT:
      zlt_service_set_requested_port (self, (guint16) g_value_get_uint (value));
      break;
    case PROP_ASSIGNED_PORT:
      zlt_service_set_assigned_port (self, (guint16) g_value_get_uint (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
zlt_service_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  ZltService *self = ZLT_SERVICE (object);

  switch (prop_id)
    {
    case PROP_ID:
      g_value_take_string (value, zlt_uuid_to_string (&self->id));
      break;
    case PROP_NAME:
      g_value_set_string (value, self->name);
      break;
    case PROP_PROTOCOL:
      g_value_set_enum (value, self->protocol);
      break;
    case PROP_EXPOSE:
      g_value_set_enum (value, self->expose);
      break;
    case PROP_LOCAL_PORT:
      g_value_set_uint (value, self->local_port);
      break;
    case PROP_REQUESTED_PORT:
      g_value_set_uint (value, self->requested_port);
      break;
    case PROP_ASSIGNED_PORT:
      g_value_set_uint (value, self->assigned_port);
      break;
    case PROP_STATE:
      g_value_set_enum (value, self->state);
      break;
    case PROP_LAST_ERROR:
      g_value_set_string (value, self->last_error);
      break;
    case PROP_HOSTNAME:
      g_value_set_string (value, self->hostname);
      break;
    case PROP_TUNNEL:
      g_value_set_object (value, self->tunnel);
      break;
    case PROP_ACTIVE_CONNECTIONS:
      g_value_set_uint (value, self->active_connections);
      break;
    case PROP_TOTAL_CONNECTIONS:
      g_value_set_uint64 (value, self->total_connections);
      break;
    case PROP_BYTES_IN:
      g_value_set_uint64 (value, self->bytes_in);
      break;
    case PROP_BYTES_OUT:
      g_value_set_uint64 (value, self->bytes_out);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
zlt_service_dispose (GObject *object)
{
  ZltService *self = ZLT_SERVICE (object);

  zlt_notify_batch_clear (&self->batch);
  self->tunnel = NULL;
  G_OBJECT_CLASS (zlt_service_parent_class)->dispose (object);
}

static void
zlt_service_finalize (GObject *object)
{
  ZltService *self = ZLT_SERVICE (object);

  g_free (self->name);
  g_free (self->last_error);
  g_free (self->hostname);
  g_main_context_unref (self->context);
  G_OBJECT_CLASS (zlt_service_parent_class)->finalize (object);
}

static void
zlt_service_class_init (ZltServiceClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  const GParamFlags ro = G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS;
  const GParamFlags rw = G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS;
  const GParamFlags co = G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS;

  object_class->set_property = zlt_service_set_property;
  object_class->get_property = zlt_service_get_property;
  object_class->dispose = zlt_service_dispose;
  object_class->finalize = zlt_service_finalize;

  /**
   * ZltService:id:
   * The service id as a UUID string. A fresh random one when not given at construction;
   * an agent replaces it with the id from RegisterOk.
   */
  properties[PROP_ID] = g_param_spec_string ("id", NULL, NULL, NULL, rw | G_PARAM_CONSTRUCT);
  /**
   * ZltService:name:
   * The service name: 1 to %ZLT_SERVICE_NAME_MAX ASCII letters, digits, `-` or `_`.
   */
  properties[PROP_NAME] = g_param_spec_string ("name", NULL, NULL, NULL, co);
  /**
   * ZltService:protocol:
   * TCP or UDP.
   */
  properties[PROP_PROTOCOL]
      = g_param_spec_enum ("protocol", NULL, NULL, ZLT_TYPE_PROTOCOL, ZLT_PROTOCOL_TCP, co);
  /**
   * ZltService:expose:
   * Whether the service has a public port or is internal.
   */
  properties[PROP_EXPOSE]
      = g_param_spec_enum ("expose", NULL, NULL, ZLT_TYPE_EXPOSE, ZLT_EXPOSE_PUBLIC, co);
  /**
   * ZltService:local-port:
   * The port the service listens on at the agent.
   */
  properties[PROP_LOCAL_PORT] = g_param_spec_uint ("local-port", NULL, NULL, 0, G_MAXUINT16, 0, rw);
  /**
   * ZltService:requested-port:
   * The public port the agent asked for; 0 for any.
   */
  properties[PROP_REQUESTED_PORT]
      = g_param_spec_uint ("requested-port", NULL, NULL, 0, G_MAXUINT16, 0, rw);
  /**
   * ZltService:assigned-port:
   * The public port the server chose; 0 for none (internal services, or not yet known).
   */
  properties[PROP_ASSIGNED_PORT]
      = g_param_spec_uint ("assigned-port", NULL, NULL, 0, G_MAXUINT16, 0, rw);
  /**
   * ZltService:state:
   * Where the service stands with the server: an agent's service is
   * %ZLT_SERVICE_STATE_REGISTERING until the server answers (and again after each
   * reconnect), then registered or refused; a server's services are registered.
   */
  properties[PROP_STATE] = g_param_spec_enum ("state", NULL, NULL, ZLT_TYPE_SERVICE_STATE,
                                              ZLT_SERVICE_STATE_REGISTERING, ro);
  /**
   * ZltService:last-error:
   * Why the server refused the service the last time; %NULL once it is registered.
   */
  properties[PROP_LAST_ERROR] = g_param_spec_string ("last-error", NULL, NULL, NULL, ro);
  /**
   * ZltService:hostname:
   * The hostname the service is reached by on the server's shared HTTP and TLS ports
   * (PROTOCOL-v2.md §10), %NULL for none: on the agent the one it asks for, on the
   * server the one it was given.
   */
  properties[PROP_HOSTNAME] = g_param_spec_string ("hostname", NULL, NULL, NULL, ro);
  /**
   * ZltService:tunnel:
   * The tunnel the service belongs to; a weak back pointer, %NULL when detached.
   */
  properties[PROP_TUNNEL] = g_param_spec_object ("tunnel", NULL, NULL, ZLT_TYPE_TUNNEL, ro);
  /**
   * ZltService:active-connections:
   * Connections relayed now.
   */
  properties[PROP_ACTIVE_CONNECTIONS]
      = g_param_spec_uint ("active-connections", NULL, NULL, 0, G_MAXUINT, 0, ro);
  /**
   * ZltService:total-connections:
   * Connections relayed since the service was made.
   */
  properties[PROP_TOTAL_CONNECTIONS]
      = g_param_spec_uint64 ("total-connections", NULL, NULL, 0, G_MAXUINT64, 0, ro);
  /**
   * ZltService:bytes-in:
   * Bytes received from public peers. Notified at most every %ZLT_NOTIFY_INTERVAL_MS.
   */
  properties[PROP_BYTES_IN] = g_param_spec_uint64 ("bytes-in", NULL, NULL, 0, G_MAXUINT64, 0, ro);
  /**
   * ZltService:bytes-out:
   * Bytes sent to public peers. Notified at most every %ZLT_NOTIFY_INTERVAL_MS.
   */
  properties[PROP_BYTES_OUT] = g_param_spec_uint64 ("bytes-out", NULL, NULL, 0, G_MAXUINT64, 0, ro);
  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
zlt_service_init (ZltService *self)
{
  self->context = g_main_context_ref_thread_default ();
  zlt_notify_batch_init (&self->batch, G_OBJECT (self), self->context, "[zlt] service notify");
}

/**
 * zlt_service_new:
 * @name: the service name, unique within its tunnel
 * @protocol: TCP or UDP
 * @local_port: the port on the agent's side
 * @expose: whether the service gets a public listener
 *
 * Returns: (transfer full): a detached service with a fresh random id
 */
ZltService *
zlt_service_new (const char *name, ZltProtocol protocol, guint16 local_port, ZltExpose expose)
{
  g_return_val_if_fail (name != NULL && *name != '\0', NULL);

  return g_object_new (ZLT_TYPE_SERVICE, "name", name, "protocol", protocol, "local-port",
                       (guint) local_port, "expose", expose, NULL);
}

/**
 * zlt_service_get_id:
 * @self: a service
 *
 * Returns: (transfer none): the service id
 */
const ZltUuid *
zlt_service_get_id (ZltService *self)
{
  g_return_val_if_fail (ZLT_IS_SERVICE (self), NULL);
  return &self->id;
}

/**
 * zlt_service_dup_id_string:
 * @self: a service
 *
 * Returns: (transfer full): the service id as a UUID string (#ZltService:id)
 */
char *
zlt_service_dup_id_string (ZltService *self)
{
  g_return_val_if_fail (ZLT_IS_SERVICE (self), NULL);
  return zlt_uuid_to_string (&self->id);
}

/**
 * zlt_service_set_id:
 * @self: a service
 * @id: the new id
 *
 * Replaces the id, as an agent does with the one from RegisterOk.
 */
void
zlt_service_set_id (ZltService *self, const ZltUuid *id)
{
  g_return_if_fail (ZLT_IS_SERVICE (self));
  g_return_if_fail (id != NULL);

  if (zlt_uuid_equal (&self->id, id))
    return;
  self->id = *id;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_ID]);
}

/**
 * zlt_service_get_name:
 * @self: a service
 *
 * Returns: the service name
 */
const char *
zlt_service_get_name (ZltService *self)
{
  g_return_val_if_fail (ZLT_IS_SERVICE (self), NULL);
  return self->name;
}

/**
 * zlt_service_get_protocol:
 * @self: a service
 *
 * Returns: the service's protocol
 */
ZltProtocol
zlt_service_get_protocol (ZltService *self)
{
  g_return_val_if_fail (ZLT_IS_SERVICE (self), ZLT_PROTOCOL_TCP);
  return self->protocol;
}

/**
 * zlt_service_get_expose:
 * @self: a service
 *
 * Returns: whether the service has a public port or is internal
 */
ZltExpose
zlt_service_get_expose (ZltService *self)
{
  g_return_val_if_fail (ZLT_IS_SERVICE (self), ZLT_EXPOSE_PUBLIC);
  return self->expose;
}

/**
 * zlt_service_get_local_port:
 * @self: a service
 *
 * Returns: the port the service listens on at the agent
 */
guint16
zlt_service_get_local_port (ZltService *self)
{
  g_return_val_if_fail (ZLT_IS_SERVICE (self), 0);
  return self->local_port;
}

/**
 * zlt_service_set_local_port:
 * @self: a service
 * @port: a port
 *
 * Sets #ZltService:local-port.
 */
void
zlt_service_set_local_port (ZltService *self, guint16 port)
{
  g_return_if_fail (ZLT_IS_SERVICE (self));

  if (self->local_port == port)
    return;
  self->local_port = port;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_LOCAL_PORT]);
}

/**
 * zlt_service_get_state:
 * @self: a service
 *
 * Returns: where the service stands with the server
 */
ZltServiceState
zlt_service_get_state (ZltService *self)
{
  g_return_val_if_fail (ZLT_IS_SERVICE (self), ZLT_SERVICE_STATE_REGISTERING);
  return self->state;
}

/**
 * zlt_service_get_last_error:
 * @self: a service
 *
 * Returns: (nullable): why the server refused the service the last time, %NULL once it
 *   is registered
 */
const char *
zlt_service_get_last_error (ZltService *self)
{
  g_return_val_if_fail (ZLT_IS_SERVICE (self), NULL);
  return self->last_error;
}

/**
 * zlt_service_set_state:
 * @self: a service
 * @state: the new state
 * @error: (nullable): for %ZLT_SERVICE_STATE_REFUSED, the server's reason
 *
 * Sets the state; a registered service forgets its last error, a registering one
 * keeps it until the server answers.
 */
void
zlt_service_set_state (ZltService *self, ZltServiceState state, const char *error)
{
  g_return_if_fail (ZLT_IS_SERVICE (self));

  if (state == ZLT_SERVICE_STATE_REFUSED || state == ZLT_SERVICE_STATE_REGISTERED)
    {
      if (g_strcmp0 (self->last_error, error) != 0)
        {
          g_free (self->last_error);
          self->last_error = g_strdup (error);
          g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_LAST_ERROR]);
        }
    }
  if (self->state == state)
    return;
  self->state = state;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_STATE]);
}

/**
 * zlt_service_get_requested_port:
 * @self: a service
 *
 * Returns: the public port the agent asked for; 0 for any
 */
/**
 * zlt_service_get_hostname:
 * @self: a service
 *
 * Returns: (nullable): the hostname the service is reached by on the server's shared
 *   ports, %NULL for none
 */
const char *
zlt_service_get_hostname (ZltService *self)
{
  g_return_val_if_fail (ZLT_IS_SERVICE (self), NULL);
  return self->hostname;
}

/**
 * zlt_service_set_hostname:
 * @self: a service
 * @hostname: (nullable): a normalized hostname, %NULL for none
 */
void
zlt_service_set_hostname (ZltService *self, const char *hostname)
{
  g_return_if_fail (ZLT_IS_SERVICE (self));

  if (g_strcmp0 (self->hostname, hostname) == 0)
    return;
  g_free (self->hostname);
  self->hostname = g_strdup (hostname);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_HOSTNAME]);
}

guint16
zlt_service_get_requested_port (ZltService *self)
{
  g_return_val_if_fail (ZLT_IS_SERVICE (self), 0);
  return self->requested_port;
}

/**
 * zlt_service_set_requested_port:
 * @self: a service
 * @port: a port, 0 for any
 *
 * Sets #ZltService:requested-port.
 */
void
zlt_service_set_requested_port (ZltService *self, guint16 port)
{
  g_return_if_fail (ZLT_IS_SERVICE (self));

  if (self->requested_port == port)
    return;
  self->requested_port = port;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_REQUESTED_PORT]);
}

/**
 * zlt_service_get_assigned_port:
 * @self: a service
 *
 * Returns: the public port the server chose; 0 for none (internal services, or not yet
 *   known)
 */
guint16
zlt_service_get_assigned_port (ZltService *self)
{
  g_return_val_if_fail (ZLT_IS_SERVICE (self), 0);
  return self->assigned_port;
}

/**
 * zlt_service_set_assigned_port:
 * @self: a service
 * @port: a port, 0 for none
 *
 * Sets #ZltService:assigned-port.
 */
void
zlt_service_set_assigned_port (ZltService *self, guint16 port)
{
  g_return_if_fail (ZLT_IS_SERVICE (self));

  if (self->assigned_port == port)
    return;
  self->assigned_port = port;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_ASSIGNED_PORT]);
}

/**
 * zlt_service_get_tunnel:
 *
 * Returns: (transfer none) (nullable): the tunnel the service belongs to
 */
ZltTunnel *
zlt_service_get_tunnel (ZltService *self)
{
  g_return_val_if_fail (ZLT_IS_SERVICE (self), NULL);
  return self->tunnel;
}

/**
 * zlt_service_set_tunnel:
 * @tunnel: (nullable): the new owner, not referenced
 *
 * Sets the weak back pointer. Called by #ZltTunnel when the service is added to or
 * removed from it; other callers use zlt_tunnel_add_service() instead.
 */
void
zlt_service_set_tunnel (ZltService *self, ZltTunnel *tunnel)
{
  g_return_if_fail (ZLT_IS_SERVICE (self));
  g_return_if_fail (tunnel == NULL || ZLT_IS_TUNNEL (tunnel));

  if (self->tunnel == tunnel)
    return;
  self->tunnel = tunnel;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_TUNNEL]);
}

/**
 * zlt_service_get_active_connections:
 * @self: a service
 *
 * Returns: the connections relayed now
 */
guint
zlt_service_get_active_connections (ZltService *self)
{
  g_return_val_if_fail (ZLT_IS_SERVICE (self), 0);
  return self->active_connections;
}

/**
 * zlt_service_get_total_connections:
 * @self: a service
 *
 * Returns: the connections relayed since the service was made
 */
guint64
zlt_service_get_total_connections (ZltService *self)
{
  g_return_val_if_fail (ZLT_IS_SERVICE (self), 0);
  return self->total_connections;
}

/**
 * zlt_service_get_bytes_in:
 * @self: a service
 *
 * Returns: bytes received from public peers
 */
guint64
zlt_service_get_bytes_in (ZltService *self)
{
  g_return_val_if_fail (ZLT_IS_SERVICE (self), 0);
  return self->bytes_in;
}

/**
 * zlt_service_get_bytes_out:
 * @self: a service
 *
 * Returns: bytes sent to public peers
 */
guint64
zlt_service_get_bytes_out (ZltService *self)
{
  g_return_val_if_fail (ZLT_IS_SERVICE (self), 0);
  return self->bytes_out;
}

/**
 * zlt_service_connection_opened:
 *
 * Counts a new public connection (or UDP flow) and emits #ZltTunnel::connection-opened
 * on the owning tunnel.
 */
void
zlt_service_connection_opened (ZltService *self)
{
  g_autoptr (ZltService) hold = NULL;

  g_return_if_fail (ZLT_IS_SERVICE (self));

  hold = g_object_ref (self);
  self->active_connections++;
  self->total_connections++;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_ACTIVE_CONNECTIONS]);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_TOTAL_CONNECTIONS]);
  if (self->tunnel != NULL)
    g_signal_emit_by_name (self->tunnel, "connection-opened", self);
}

/**
 * zlt_service_connection_closed:
 *
 * Counts the end of a connection counted by zlt_service_connection_opened() and emits
 * #ZltTunnel::connection-closed on the owning tunnel.
 */
void
zlt_service_connection_closed (ZltService *self)
{
  g_autoptr (ZltService) hold = NULL;

  g_return_if_fail (ZLT_IS_SERVICE (self));
  g_return_if_fail (self->active_connections > 0);

  hold = g_object_ref (self);
  self->active_connections--;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_ACTIVE_CONNECTIONS]);
  if (self->tunnel != NULL)
    g_signal_emit_by_name (self->tunnel, "connection-closed", self);
}

/**
 * zlt_service_flush_notify:
 *
 * Emits the byte counters' pending notify signals now instead of at the end of the
 * coalescing interval. Emits nothing when no counter changed since the last notify.
 */
void
zlt_service_flush_notify (ZltService *self)
{
  g_return_if_fail (ZLT_IS_SERVICE (self));
  zlt_notify_batch_flush (&self->batch);
}

/**
 * zlt_service_add_bytes:
 * @bytes_in: bytes received from the public peer
 * @bytes_out: bytes sent to the public peer
 *
 * Adds to the counters of the service and of its tunnel. Cheap enough for every relayed
 * chunk: the notify signals follow within %ZLT_NOTIFY_INTERVAL_MS, from the main context
 * that was the thread default when the service was made, or at zlt_service_flush_notify().
 */
void
zlt_service_add_bytes (ZltService *self, guint64 bytes_in, guint64 bytes_out)
{
  g_return_if_fail (ZLT_IS_SERVICE (self));

  if (bytes_in != 0)
    {
      self->bytes_in += bytes_in;
      zlt_notify_batch_add (&self->batch, properties[PROP_BYTES_IN]);
    }
  if (bytes_out != 0)
    {
      self->bytes_out += bytes_out;
      zlt_notify_batch_add (&self->batch, properties[PROP_BYTES_OUT]);
    }
  if (self->tunnel != NULL)
    zlt_tunnel_add_bytes (self->tunnel, bytes_in, bytes_out);
}

/**
 * zlt_service_name_is_valid:
 * Returns: TRUE for 1-64 ASCII letters, digits, '-' or '_'
 */
gboolean
zlt_service_name_is_valid (const char *name)
{
  gsize len = 0;

  if (name == NULL)
    return FALSE;
  for (const char *p = name; *p != '\0'; p++, len++)
    {
      if (!g_ascii_isalnum (*p) && *p != '-' && *p != '_')
        return FALSE;
    }
  return len >= 1 && len <= ZLT_SERVICE_NAME_MAX;
}
