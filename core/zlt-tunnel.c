/* zlt-tunnel.c: one agent's control session, seen from the server or the agent */
#include "config.h"

#include <glib/gi18n-lib.h>

#include "zlt-enum-types.h"
#include "zlt-error.h"
#include "zlt-tunnel.h"
#include "zlt-notify-batch.h"

struct _ZltTunnel
{
  GObject parent_instance;

  ZltUuid id;
  ZltRole role;
  ZltTunnelState state;
  char *peer_address;
  char *client_id;
  char *token_name;
  gint64 created;       /* unix time, µs */
  gint64 last_activity; /* unix time, µs */
  guint64 bytes_in;
  guint64 bytes_out;
  guint64 rate_limit_in;  /* the token's, bytes/s, 0 = none (server role) */
  guint64 rate_limit_out; /* the token's, bytes/s, 0 = none (server role) */

  GPtrArray *services; /* (element-type ZltService) (owned), in order of addition */
  GHashTable *by_name; /* service name (borrowed from the service) → ZltService */

  /* coalesced notify of the hot counters */
  ZltNotifyBatch batch; /* bytes (and activity) notifies, coalesced */
  GMainContext *context;
};

enum
{
  PROP_0,
  PROP_ID,
  PROP_ROLE,
  PROP_STATE,
  PROP_PEER_ADDRESS,
  PROP_CLIENT_ID,
  PROP_TOKEN_NAME,
  PROP_CREATED,
  PROP_LAST_ACTIVITY,
  PROP_BYTES_IN,
  PROP_BYTES_OUT,
  PROP_N_SERVICES,
  PROP_RATE_LIMIT_IN,
  PROP_RATE_LIMIT_OUT,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

enum
{
  SIGNAL_SERVICE_ADDED,
  SIGNAL_SERVICE_REMOVED,
  SIGNAL_CONNECTION_OPENED,
  SIGNAL_CONNECTION_CLOSED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

/**
 * ZltTunnel:
 * One agent's control session, seen from the server (in its [class@Zlt.Registry]) or
 * from the agent (zlt_agent_get_tunnel()): its id, state, peer, the token's name, byte
 * counters, and its services. Its signals report services as they come and go, and
 * every connection relayed to one of them.
 *
 * Byte counters and the last activity change often; their notify signals are coalesced
 * and come at most every %ZLT_NOTIFY_INTERVAL_MS, on the main context that was the
 * thread default when the tunnel was made.
 */

G_DEFINE_FINAL_TYPE (ZltTunnel, zlt_tunnel, G_TYPE_OBJECT)

static void
zlt_tunnel_set_id_string (ZltTunnel *self, const char *str)
{
  ZltUuid id;

  if (str == NULL)
    zlt_uuid_generate (&id);
  else if (!zlt_uuid_parse (str, &id))
    {
      g_warning ("invalid tunnel id “%s”", str);
      return;
    }
  zlt_tunnel_set_id (self, &id);
}

static gboolean
set_string (char **field, const char *value)
{
  if (g_strcmp0 (*field, value) == 0)
    return FALSE;
  g_free (*field);
  *field = g_strdup (value);
  return TRUE;
}

static void
zlt_tunnel_set_property (GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec)
{
  ZltTunnel *self = ZLT_TUNNEL (object);

  switch (prop_id)
    {
    case PROP_ID:
      zlt_tunnel_set_id_string (self, g_value_get_string (value));
      break;
    case PROP_ROLE:
      self->role = g_value_get_enum (value);
      break;
    case PROP_STATE:
      zlt_tunnel_set_state (self, g_value_get_enum (value));
      break;
    case PROP_PEER_ADDRESS:
      zlt_tunnel_set_peer_address (self, g_value_get_string (value));
      break;
    case PROP_CLIENT_ID:
      zlt_tunnel_set_client_id (self, g_value_get_string (value));
      break;
    case PROP_TOKEN_NAME:
      zlt_tunnel_set_token_name (self, g_value_get_string (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
zlt_tunnel_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  ZltTunnel *self = ZLT_TUNNEL (object);

  switch (prop_id)
    {
    case PROP_ID:
      g_value_take_string (value, zlt_uuid_to_string (&self->id));
      break;
    case PROP_ROLE:
      g_value_set_enum (value, self->role);
      break;
    case PROP_STATE:
      g_value_set_enum (value, self->state);
      break;
    case PROP_PEER_ADDRESS:
      g_value_set_string (value, self->peer_address);
      break;
    case PROP_CLIENT_ID:
      g_value_set_string (value, self->client_id);
      break;
    case PROP_TOKEN_NAME:
      g_value_set_string (value, self->token_name);
      break;
    case PROP_CREATED:
      g_value_set_int64 (value, self->created);
      break;
    case PROP_LAST_ACTIVITY:
      g_value_set_int64 (value, self->last_activity);
      break;
    case PROP_BYTES_IN:
      g_value_set_uint64 (value, self->bytes_in);
      break;
    case PROP_BYTES_OUT:
      g_value_set_uint64 (value, self->bytes_out);
      break;
    case PROP_N_SERVICES:
      g_value_set_uint (value, self->services->len);
      break;
    case PROP_RATE_LIMIT_IN:
      g_value_set_uint64 (value, self->rate_limit_in);
      break;
    case PROP_RATE_LIMIT_OUT:
      g_value_set_uint64 (value, self->rate_limit_out);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
zlt_tunnel_dispose (GObject *object)
{
  ZltTunnel *self = ZLT_TUNNEL (object);

  zlt_notify_batch_clear (&self->batch);
  /* services may outlive us: their back pointers must not dangle */
  for (guint i = 0; i < self->services->len; i++)
    zlt_service_set_tunnel (g_ptr_array_index (self->services, i), NULL);
  g_hash_table_remove_all (self->by_name);
  g_ptr_array_set_size (self->services, 0);
  G_OBJECT_CLASS (zlt_tunnel_parent_class)->dispose (object);
}

static void
zlt_tunnel_finalize (GObject *object)
{
  ZltTunnel *self = ZLT_TUNNEL (object);

  g_free (self->peer_address);
  g_free (self->client_id);
  g_free (self->token_name);
  g_ptr_array_unref (self->services);
  g_hash_table_unref (self->by_name);
  g_main_context_unref (self->context);
  G_OBJECT_CLASS (zlt_tunnel_parent_class)->finalize (object);
}

static void
zlt_tunnel_class_init (ZltTunnelClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  const GParamFlags ro = G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS;
  const GParamFlags rw = G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS;

  object_class->set_property = zlt_tunnel_set_property;
  object_class->get_property = zlt_tunnel_get_property;
  object_class->dispose = zlt_tunnel_dispose;
  object_class->finalize = zlt_tunnel_finalize;

  /**
   * ZltTunnel:id:
   * The tunnel id as a UUID string; a fresh random one when not given at construction.
   * An agent replaces it with the id from AuthOk.
   */
  properties[PROP_ID] = g_param_spec_string ("id", NULL, NULL, NULL, rw | G_PARAM_CONSTRUCT);
  /**
   * ZltTunnel:role:
   * Which end the tunnel is seen from.
   */
  properties[PROP_ROLE]
      = g_param_spec_enum ("role", NULL, NULL, ZLT_TYPE_ROLE, ZLT_ROLE_SERVER,
                           G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  /**
   * ZltTunnel:state:
   * Where the tunnel stands.
   */
  properties[PROP_STATE] = g_param_spec_enum ("state", NULL, NULL, ZLT_TYPE_TUNNEL_STATE,
                                              ZLT_TUNNEL_STATE_PENDING, rw);
  /**
   * ZltTunnel:peer-address:
   * The other end's address, "host:port"; %NULL until known.
   */
  properties[PROP_PEER_ADDRESS] = g_param_spec_string ("peer-address", NULL, NULL, NULL, rw);
  /**
   * ZltTunnel:client-id:
   * The agent's client id from Auth, as a UUID string.
   */
  properties[PROP_CLIENT_ID] = g_param_spec_string ("client-id", NULL, NULL, NULL, rw);
  /**
   * ZltTunnel:token-name:
   * The name of the token that opened the tunnel (never the token itself).
   */
  properties[PROP_TOKEN_NAME] = g_param_spec_string ("token-name", NULL, NULL, NULL, rw);
  /**
   * ZltTunnel:created:
   * When the object was made, in µs since the Unix epoch.
   */
  properties[PROP_CREATED] = g_param_spec_int64 ("created", NULL, NULL, 0, G_MAXINT64, 0, ro);
  /**
   * ZltTunnel:last-activity:
   * When zlt_tunnel_touch() was last called, in µs since the Unix epoch. Notified at
   * most every %ZLT_NOTIFY_INTERVAL_MS.
   */
  properties[PROP_LAST_ACTIVITY]
      = g_param_spec_int64 ("last-activity", NULL, NULL, 0, G_MAXINT64, 0, ro);
  /**
   * ZltTunnel:bytes-in:
   * Bytes received through the tunnel. Notified at most every %ZLT_NOTIFY_INTERVAL_MS.
   */
  properties[PROP_BYTES_IN] = g_param_spec_uint64 ("bytes-in", NULL, NULL, 0, G_MAXUINT64, 0, ro);
  /**
   * ZltTunnel:bytes-out:
   * Bytes sent through the tunnel. Notified at most every %ZLT_NOTIFY_INTERVAL_MS.
   */
  properties[PROP_BYTES_OUT] = g_param_spec_uint64 ("bytes-out", NULL, NULL, 0, G_MAXUINT64, 0, ro);
  /**
   * ZltTunnel:n-services:
   * How many services the tunnel lists.
   */
  properties[PROP_N_SERVICES] = g_param_spec_uint ("n-services", NULL, NULL, 0, G_MAXUINT, 0, ro);
  /**
   * ZltTunnel:rate-limit-in:
   * On the server: the bandwidth limit of the tunnel's token toward its services, in
   * bytes per second, shared by all public connections of the token's principal; 0 for
   * none (and on an agent's tunnel).
   */
  properties[PROP_RATE_LIMIT_IN]
      = g_param_spec_uint64 ("rate-limit-in", NULL, NULL, 0, G_MAXUINT64, 0, ro);
  /**
   * ZltTunnel:rate-limit-out:
   * On the server: the token's bandwidth limit from its services toward their clients,
   * in bytes per second, as #ZltTunnel:rate-limit-in; 0 for none.
   */
  properties[PROP_RATE_LIMIT_OUT]
      = g_param_spec_uint64 ("rate-limit-out", NULL, NULL, 0, G_MAXUINT64, 0, ro);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * ZltTunnel::service-added:
   * @self: the tunnel
   * @service: the service, already listed by the tunnel
   *
   * A service was added (on the server: registered).
   */
  signals[SIGNAL_SERVICE_ADDED]
      = g_signal_new ("service-added", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                      g_cclosure_marshal_VOID__OBJECT, G_TYPE_NONE, 1, ZLT_TYPE_SERVICE);
  /**
   * ZltTunnel::service-removed:
   * @self: the tunnel
   * @service: the service, no longer listed; zlt_service_get_tunnel() still returns this
   *   tunnel until the emission ends
   *
   * A service was removed.
   */
  signals[SIGNAL_SERVICE_REMOVED]
      = g_signal_new ("service-removed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL,
                      NULL, g_cclosure_marshal_VOID__OBJECT, G_TYPE_NONE, 1, ZLT_TYPE_SERVICE);
  /**
   * ZltTunnel::connection-opened:
   * @self: the tunnel
   * @service: the service that got a connection (see zlt_service_connection_opened())
   *
   * A connection to one of the tunnel's services is being relayed: on the server, a
   * public client joined to its data connection; on the agent, a data connection joined
   * to the local service.
   */
  signals[SIGNAL_CONNECTION_OPENED]
      = g_signal_new ("connection-opened", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL,
                      NULL, g_cclosure_marshal_VOID__OBJECT, G_TYPE_NONE, 1, ZLT_TYPE_SERVICE);
  /**
   * ZltTunnel::connection-closed:
   * @self: the tunnel
   * @service: the service that lost a connection (see zlt_service_connection_closed())
   *
   * A relayed connection of one of the tunnel's services ended.
   */
  signals[SIGNAL_CONNECTION_CLOSED]
      = g_signal_new ("connection-closed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL,
                      NULL, g_cclosure_marshal_VOID__OBJECT, G_TYPE_NONE, 1, ZLT_TYPE_SERVICE);
}

static void
zlt_tunnel_init (ZltTunnel *self)
{
  self->services = g_ptr_array_new_with_free_func (g_object_unref);
  self->by_name = g_hash_table_new (g_str_hash, g_str_equal);
  self->created = g_get_real_time ();
  self->last_activity = self->created;
  self->context = g_main_context_ref_thread_default ();
  zlt_notify_batch_init (&self->batch, G_OBJECT (self), self->context, "[zlt] tunnel notify");
}

/**
 * zlt_tunnel_new:
 * @role: which end of the control channel the object describes
 *
 * Returns: (transfer full): a pending tunnel with a fresh random id
 */
ZltTunnel *
zlt_tunnel_new (ZltRole role)
{
  return g_object_new (ZLT_TYPE_TUNNEL, "role", role, NULL);
}

/**
 * zlt_tunnel_get_id:
 * @self: a tunnel
 *
 * Returns: (transfer none): the tunnel id
 */
const ZltUuid *
zlt_tunnel_get_id (ZltTunnel *self)
{
  g_return_val_if_fail (ZLT_IS_TUNNEL (self), NULL);
  return &self->id;
}

/**
 * zlt_tunnel_dup_id_string:
 * @self: a tunnel
 *
 * Returns: (transfer full): the tunnel id as a UUID string (#ZltTunnel:id)
 */
char *
zlt_tunnel_dup_id_string (ZltTunnel *self)
{
  g_return_val_if_fail (ZLT_IS_TUNNEL (self), NULL);
  return zlt_uuid_to_string (&self->id);
}

/**
 * zlt_tunnel_set_id:
 * @self: a tunnel
 * @id: the new id
 *
 * Replaces the id, as an agent does with the one from AuthOk.
 */
void
zlt_tunnel_set_id (ZltTunnel *self, const ZltUuid *id)
{
  g_return_if_fail (ZLT_IS_TUNNEL (self));
  g_return_if_fail (id != NULL);

  if (zlt_uuid_equal (&self->id, id))
    return;
  self->id = *id;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_ID]);
}

/**
 * zlt_tunnel_get_role:
 * @self: a tunnel
 *
 * Returns: which end the tunnel is seen from
 */
ZltRole
zlt_tunnel_get_role (ZltTunnel *self)
{
  g_return_val_if_fail (ZLT_IS_TUNNEL (self), ZLT_ROLE_SERVER);
  return self->role;
}

/**
 * zlt_tunnel_get_state:
 * @self: a tunnel
 *
 * Returns: where the tunnel stands (#ZltTunnel:state)
 */
ZltTunnelState
zlt_tunnel_get_state (ZltTunnel *self)
{
  g_return_val_if_fail (ZLT_IS_TUNNEL (self), ZLT_TUNNEL_STATE_FAILED);
  return self->state;
}

/**
 * zlt_tunnel_set_state:
 * @self: a tunnel
 * @state: the new state
 *
 * Sets #ZltTunnel:state.
 */
void
zlt_tunnel_set_state (ZltTunnel *self, ZltTunnelState state)
{
  g_return_if_fail (ZLT_IS_TUNNEL (self));

  if (self->state == state)
    return;
  self->state = state;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_STATE]);
}

/**
 * zlt_tunnel_get_peer_address:
 * @self: a tunnel
 *
 * Returns: (nullable): the other end's address, "host:port"
 */
const char *
zlt_tunnel_get_peer_address (ZltTunnel *self)
{
  g_return_val_if_fail (ZLT_IS_TUNNEL (self), NULL);
  return self->peer_address;
}

/**
 * zlt_tunnel_set_peer_address:
 * @self: a tunnel
 * @peer_address: (nullable): "host:port"
 *
 * Sets #ZltTunnel:peer-address.
 */
void
zlt_tunnel_set_peer_address (ZltTunnel *self, const char *peer_address)
{
  g_return_if_fail (ZLT_IS_TUNNEL (self));

  if (set_string (&self->peer_address, peer_address))
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_PEER_ADDRESS]);
}

/**
 * zlt_tunnel_get_client_id:
 * @self: a tunnel
 *
 * Returns: (nullable): the agent's client id from Auth, as a UUID string
 */
const char *
zlt_tunnel_get_client_id (ZltTunnel *self)
{
  g_return_val_if_fail (ZLT_IS_TUNNEL (self), NULL);
  return self->client_id;
}

/**
 * zlt_tunnel_set_client_id:
 * @self: a tunnel
 * @client_id: (nullable): a UUID string
 *
 * Sets #ZltTunnel:client-id.
 */
void
zlt_tunnel_set_client_id (ZltTunnel *self, const char *client_id)
{
  g_return_if_fail (ZLT_IS_TUNNEL (self));

  if (set_string (&self->client_id, client_id))
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_CLIENT_ID]);
}

/**
 * zlt_tunnel_get_token_name:
 * @self: a tunnel
 *
 * Returns: (nullable): the name of the token that opened the tunnel (never the token
 *   itself)
 */
const char *
zlt_tunnel_get_token_name (ZltTunnel *self)
{
  g_return_val_if_fail (ZLT_IS_TUNNEL (self), NULL);
  return self->token_name;
}

/**
 * zlt_tunnel_set_token_name:
 * @self: a tunnel
 * @token_name: (nullable): the grant's name
 *
 * Sets #ZltTunnel:token-name.
 */
void
zlt_tunnel_set_token_name (ZltTunnel *self, const char *token_name)
{
  g_return_if_fail (ZLT_IS_TUNNEL (self));

  if (set_string (&self->token_name, token_name))
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_TOKEN_NAME]);
}

/**
 * zlt_tunnel_set_rate_limits:
 * @self: a tunnel
 * @rate_in: bytes per second toward the services, 0 = none
 * @rate_out: bytes per second from them, 0 = none
 *
 * Sets #ZltTunnel:rate-limit-in and #ZltTunnel:rate-limit-out: the limits of the
 * tunnel's token, which the server enforces (it sets them from the token's grant).
 */
void
zlt_tunnel_set_rate_limits (ZltTunnel *self, guint64 rate_in, guint64 rate_out)
{
  g_return_if_fail (ZLT_IS_TUNNEL (self));

  g_object_freeze_notify (G_OBJECT (self));
  if (self->rate_limit_in != rate_in)
    {
      self->rate_limit_in = rate_in;
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_RATE_LIMIT_IN]);
    }
  if (self->rate_limit_out != rate_out)
    {
      self->rate_limit_out = rate_out;
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_RATE_LIMIT_OUT]);
    }
  g_object_thaw_notify (G_OBJECT (self));
}

/**
 * zlt_tunnel_get_rate_limit_in:
 * @self: a tunnel
 *
 * Returns: the token's limit toward its services in bytes per second, 0 = none
 */
guint64
zlt_tunnel_get_rate_limit_in (ZltTunnel *self)
{
  g_return_val_if_fail (ZLT_IS_TUNNEL (self), 0);
  return self->rate_limit_in;
}

/**
 * zlt_tunnel_get_rate_limit_out:
 * @self: a tunnel
 *
 * Returns: the token's limit from its services in bytes per second, 0 = none
 */
guint64
zlt_tunnel_get_rate_limit_out (ZltTunnel *self)
{
  g_return_val_if_fail (ZLT_IS_TUNNEL (self), 0);
  return self->rate_limit_out;
}

/**
 * zlt_tunnel_get_created:
 * @self: a tunnel
 *
 * Returns: when the tunnel was made (or restarted), in µs since the Unix epoch
 */
gint64
zlt_tunnel_get_created (ZltTunnel *self)
{
  g_return_val_if_fail (ZLT_IS_TUNNEL (self), 0);
  return self->created;
}

/**
 * zlt_tunnel_get_last_activity:
 * @self: a tunnel
 *
 * Returns: when the peer was last heard from, in µs since the Unix epoch
 */
gint64
zlt_tunnel_get_last_activity (ZltTunnel *self)
{
  g_return_val_if_fail (ZLT_IS_TUNNEL (self), 0);
  return self->last_activity;
}

/**
 * zlt_tunnel_get_bytes_in:
 * @self: a tunnel
 *
 * Returns: bytes received through the tunnel
 */
guint64
zlt_tunnel_get_bytes_in (ZltTunnel *self)
{
  g_return_val_if_fail (ZLT_IS_TUNNEL (self), 0);
  return self->bytes_in;
}

/**
 * zlt_tunnel_get_bytes_out:
 * @self: a tunnel
 *
 * Returns: bytes sent through the tunnel
 */
guint64
zlt_tunnel_get_bytes_out (ZltTunnel *self)
{
  g_return_val_if_fail (ZLT_IS_TUNNEL (self), 0);
  return self->bytes_out;
}

/**
 * zlt_tunnel_flush_notify:
 * @self: a tunnel
 *
 * Emits the pending notify signals of bytes-in, bytes-out and last-activity now instead
 * of at the end of the coalescing interval. Emits nothing when none of them changed.
 */
void
zlt_tunnel_flush_notify (ZltTunnel *self)
{
  g_return_if_fail (ZLT_IS_TUNNEL (self));
  zlt_notify_batch_flush (&self->batch);
}

/**
 * zlt_tunnel_restart:
 * @self: a tunnel
 *
 * For an agent's tunnel, which outlives its sessions: a new one began (not a resume), so
 * #ZltTunnel:created and #ZltTunnel:last-activity are now.
 */
void
zlt_tunnel_restart (ZltTunnel *self)
{
  g_return_if_fail (ZLT_IS_TUNNEL (self));

  self->created = g_get_real_time ();
  self->last_activity = self->created;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_CREATED]);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_LAST_ACTIVITY]);
}

/**
 * zlt_tunnel_touch:
 * @self: a tunnel
 *
 * Records activity now (any frame from the peer). Cheap: last-activity is notified
 * within %ZLT_NOTIFY_INTERVAL_MS or at zlt_tunnel_flush_notify().
 */
void
zlt_tunnel_touch (ZltTunnel *self)
{
  gint64 now;

  g_return_if_fail (ZLT_IS_TUNNEL (self));

  now = g_get_real_time ();
  if (now == self->last_activity)
    return;
  self->last_activity = now;
  zlt_notify_batch_add (&self->batch, properties[PROP_LAST_ACTIVITY]);
}

/**
 * zlt_tunnel_add_bytes:
 * @bytes_in: bytes received
 * @bytes_out: bytes sent
 *
 * Adds to the tunnel's counters (zlt_service_add_bytes() calls this for the service's
 * tunnel; call it directly for control-channel traffic). The notify signals follow within
 * %ZLT_NOTIFY_INTERVAL_MS, from the main context that was the thread default when the
 * tunnel was made, or at zlt_tunnel_flush_notify().
 */
void
zlt_tunnel_add_bytes (ZltTunnel *self, guint64 bytes_in, guint64 bytes_out)
{
  g_return_if_fail (ZLT_IS_TUNNEL (self));

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
}

/**
 * zlt_tunnel_add_service:
 * @service: a service that belongs to no tunnel
 * @error: return location for an error
 *
 * Takes a reference on @service, sets its tunnel and emits #ZltTunnel::service-added.
 * Fails with %ZLT_ERROR_DUPLICATE_NAME when the tunnel already has a service of that
 * name, or %ZLT_ERROR_IN_USE when @service belongs to another tunnel.
 *
 * Returns: %TRUE on success
 */
gboolean
zlt_tunnel_add_service (ZltTunnel *self, ZltService *service, GError **error)
{
  const char *name;

  g_return_val_if_fail (ZLT_IS_TUNNEL (self), FALSE);
  g_return_val_if_fail (ZLT_IS_SERVICE (service), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  name = zlt_service_get_name (service);
  g_return_val_if_fail (name != NULL, FALSE);
  if (zlt_service_get_tunnel (service) != NULL)
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_IN_USE,
                   _ ("service “%s” already belongs to a tunnel"), name);
      return FALSE;
    }
  if (g_hash_table_contains (self->by_name, name))
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_DUPLICATE_NAME,
                   _ ("a service named “%s” already exists"), name);
      return FALSE;
    }
  g_ptr_array_add (self->services, g_object_ref (service));
  g_hash_table_insert (self->by_name, (gpointer) name, service);
  zlt_service_set_tunnel (service, self);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_N_SERVICES]);
  g_signal_emit (self, signals[SIGNAL_SERVICE_ADDED], 0, service);
  return TRUE;
}

/**
 * zlt_tunnel_remove_service:
 * @service: a service of this tunnel
 *
 * Drops @service from the tunnel, emits #ZltTunnel::service-removed and then clears
 * the service's tunnel.
 *
 * Returns: %TRUE if @service belonged to the tunnel
 */
gboolean
zlt_tunnel_remove_service (ZltTunnel *self, ZltService *service)
{
  g_autoptr (ZltService) hold = NULL;

  g_return_val_if_fail (ZLT_IS_TUNNEL (self), FALSE);
  g_return_val_if_fail (ZLT_IS_SERVICE (service), FALSE);

  if (zlt_service_get_tunnel (service) != self)
    return FALSE;
  hold = g_object_ref (service);
  g_hash_table_remove (self->by_name, zlt_service_get_name (service));
  g_ptr_array_remove (self->services, service);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_N_SERVICES]);
  g_signal_emit (self, signals[SIGNAL_SERVICE_REMOVED], 0, service);
  zlt_service_set_tunnel (service, NULL);
  return TRUE;
}

/**
 * zlt_tunnel_lookup_service:
 * @name: a service name
 *
 * Returns: (transfer none) (nullable): the service called @name
 */
ZltService *
zlt_tunnel_lookup_service (ZltTunnel *self, const char *name)
{
  g_return_val_if_fail (ZLT_IS_TUNNEL (self), NULL);
  g_return_val_if_fail (name != NULL, NULL);

  return g_hash_table_lookup (self->by_name, name);
}

/**
 * zlt_tunnel_lookup_service_by_id:
 * @id: a service id
 *
 * A linear search: a tunnel has a handful of services, and ids may change on the agent
 * side (zlt_service_set_id()), so there is no index to keep in step.
 *
 * Returns: (transfer none) (nullable): the service with @id
 */
ZltService *
zlt_tunnel_lookup_service_by_id (ZltTunnel *self, const ZltUuid *id)
{
  g_return_val_if_fail (ZLT_IS_TUNNEL (self), NULL);
  g_return_val_if_fail (id != NULL, NULL);

  for (guint i = 0; i < self->services->len; i++)
    {
      ZltService *service = g_ptr_array_index (self->services, i);

      if (zlt_uuid_equal (zlt_service_get_id (service), id))
        return service;
    }
  return NULL;
}

/**
 * zlt_tunnel_get_n_services:
 * @self: a tunnel
 *
 * Returns: how many services the tunnel lists
 */
guint
zlt_tunnel_get_n_services (ZltTunnel *self)
{
  g_return_val_if_fail (ZLT_IS_TUNNEL (self), 0);
  return self->services->len;
}

static gpointer
copy_ref (gconstpointer src, gpointer user_data)
{
  return g_object_ref ((gpointer) src);
}

/**
 * zlt_tunnel_get_services:
 *
 * Returns: (transfer full) (element-type ZltService): a snapshot of the services in
 *   order of addition; safe to keep while services come and go
 */
GPtrArray *
zlt_tunnel_get_services (ZltTunnel *self)
{
  g_return_val_if_fail (ZLT_IS_TUNNEL (self), NULL);

  return g_ptr_array_copy (self->services, copy_ref, NULL);
}
