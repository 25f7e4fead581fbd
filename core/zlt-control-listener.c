/* zlt-control-listener.c: the signals between a control listener and the server, and
 * the caps on connections that have not upgraded yet.
 *
 * Before its upgrade a connection has proved nothing: anyone can open one. Each costs a
 * file descriptor and some memory (measured with the websocket listener: about 1.2 KiB
 * while it is silent, about 42 KiB once its TLS handshake is done and libsoup waits for
 * its request), so their number is capped, in total and per source.
 *
 * - max-pending (4096): with the descriptor limit raised (zlt_raise_fd_limit(); systemd's
 *   default hard limit is 524288) this leaves the descriptors to established tunnels and
 *   relays, and bounds the memory an attacker can pin to about 170 MiB at worst. Honest
 *   connections stay pending for a round trip or two: 4096 is room for thousands of
 *   new connections a second.
 * - max-pending-per-source (256): an IPv4 address, or an IPv6 /64 (what one host or
 *   one customer line gets). Agents behind one NAT open a data connection per public
 *   connection, in bursts (the end-to-end tests open 200 at once from one address);
 *   256 takes such bursts, while filling the total takes 16 sources.
 */
#include "config.h"

#include <string.h>

#include "zlt-control-listener.h"
#include "zlt-enum-types.h"

struct _ZltPendingSource
{
  guint8 family; /* 4 or 6 (IPv4-mapped IPv6 counts as 4); 0 for anything else */
  guint8 prefix[8];
  guint n_pending;
};

typedef struct
{
  guint max_pending;
  guint max_pending_per_source;
  guint n_pending;
  guint64 n_refused;
  gboolean bearer_auth;
  GHashTable *sources; /* set of ZltPendingSource with n_pending > 0 */
} ZltControlListenerPrivate;

/**
 * ZltControlListener:
 * The server's end of a [class@Zlt.ControlTransport]: a listener that accepts control
 * channels and data connections on one port and hands them to the server through its
 * signals. It caps the connections that have not upgraded yet, in total
 * (#ZltControlListener:max-pending) and per source
 * (#ZltControlListener:max-pending-per-source): before its upgrade a connection has
 * proved nothing, and anyone can open one.
 */

G_DEFINE_ABSTRACT_TYPE_WITH_PRIVATE (ZltControlListener, zlt_control_listener, ZLT_TYPE_LISTENER)

enum
{
  PROP_0,
  PROP_MAX_PENDING,
  PROP_MAX_PENDING_PER_SOURCE,
  PROP_BEARER_AUTH,
  N_PROPS
};
static GParamSpec *props[N_PROPS];

enum
{
  SIGNAL_CHANNEL,
  SIGNAL_DATA_REQUEST,
  SIGNAL_DATA_STREAM,
  SIGNAL_STANDBY_REQUEST,
  SIGNAL_STANDBY_STREAM,
  N_SIGNALS
};
static guint signals[N_SIGNALS];

/**
 * zlt_control_listener_emit_channel:
 * @self: a control listener
 * @channel: the new control channel
 *
 * For implementations: emits #ZltControlListener::channel.
 */
void
zlt_control_listener_emit_channel (ZltControlListener *self, ZltChannel *channel)
{
  g_return_if_fail (ZLT_IS_CONTROL_LISTENER (self));
  g_signal_emit (self, signals[SIGNAL_CHANNEL], 0, channel);
}

/**
 * zlt_control_listener_emit_data_request:
 * @self: a control listener
 * @tunnel_id: X-Zlt-Tunnel
 * @connection_id: X-Zlt-Connection
 * @mac: X-Zlt-Mac
 * @service: (nullable): X-Zlt-Service of an access stream, %NULL on an agent's data
 *   connection
 * @probe: only ask whether an access stream would be accepted (nothing is set up)
 *
 * For implementations: asks the server whether to accept a data connection
 * (#ZltControlListener::data-request).
 *
 * Returns: the server's verdict
 */
ZltDataVerdict
zlt_control_listener_emit_data_request (ZltControlListener *self, const char *tunnel_id,
                                        const char *connection_id, const char *mac,
                                        const char *service, gboolean probe)
{
  /* nobody listening: nothing is waiting for it */
  ZltDataVerdict verdict = ZLT_DATA_FORBIDDEN;

  g_return_val_if_fail (ZLT_IS_CONTROL_LISTENER (self), ZLT_DATA_FORBIDDEN);
  g_signal_emit (self, signals[SIGNAL_DATA_REQUEST], 0, tunnel_id, connection_id, mac, service,
                 probe, &verdict);
  return verdict;
}

/**
 * zlt_control_listener_emit_data_stream:
 * @self: a control listener
 * @connection_id: X-Zlt-Connection
 * @stream: the accepted connection
 *
 * For implementations: hands an accepted data connection to the server.
 */
void
zlt_control_listener_emit_data_stream (ZltControlListener *self, const char *connection_id,
                                       GIOStream *stream)
{
  g_return_if_fail (ZLT_IS_CONTROL_LISTENER (self));
  g_signal_emit (self, signals[SIGNAL_DATA_STREAM], 0, connection_id, stream);
}

/**
 * zlt_control_listener_emit_standby_request:
 * @self: a control listener
 * @tunnel_id: X-Zlt-Tunnel
 * @standby_id: X-Zlt-Standby
 * @mac: X-Zlt-Mac
 *
 * For implementations: asks the server whether to park a standby data connection
 * (PROTOCOL-v2.md §8), as the request gave its headers.
 *
 * Returns: the server's verdict
 */
ZltDataVerdict
zlt_control_listener_emit_standby_request (ZltControlListener *self, const char *tunnel_id,
                                           const char *standby_id, const char *mac)
{
  /* nobody listening: nobody parks it */
  ZltDataVerdict verdict = ZLT_DATA_FORBIDDEN;

  g_return_val_if_fail (ZLT_IS_CONTROL_LISTENER (self), ZLT_DATA_FORBIDDEN);
  g_signal_emit (self, signals[SIGNAL_STANDBY_REQUEST], 0, tunnel_id, standby_id, mac, &verdict);
  return verdict;
}

/**
 * zlt_control_listener_emit_standby_stream:
 * @self: a control listener
 * @tunnel_id: X-Zlt-Tunnel
 * @standby_id: X-Zlt-Standby
 * @stream: the accepted connection
 *
 * For implementations: hands an accepted standby data connection to the server, its 101
 * already sent and nothing read from it since the request.
 */
void
zlt_control_listener_emit_standby_stream (ZltControlListener *self, const char *tunnel_id,
                                          const char *standby_id, GIOStream *stream)
{
  g_return_if_fail (ZLT_IS_CONTROL_LISTENER (self));
  g_signal_emit (self, signals[SIGNAL_STANDBY_STREAM], 0, tunnel_id, standby_id, stream);
}

static guint
source_hash (gconstpointer key)
{
  const ZltPendingSource *s = key;
  guint hash = s->family;

  for (guint i = 0; i < sizeof s->prefix; i++)
    hash = hash * 31 + s->prefix[i];
  return hash;
}

static gboolean
source_equal (gconstpointer a, gconstpointer b)
{
  const ZltPendingSource *sa = a, *sb = b;

  return sa->family == sb->family && memcmp (sa->prefix, sb->prefix, sizeof sa->prefix) == 0;
}

static void
source_key (GSocketAddress *remote, ZltPendingSource *key)
{
  static const guint8 v4_mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
  GInetAddress *inet;
  const guint8 *bytes;

  memset (key, 0, sizeof *key);
  if (!G_IS_INET_SOCKET_ADDRESS (remote))
    return;
  inet = g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (remote));
  bytes = g_inet_address_to_bytes (inet);
  if (g_inet_address_get_family (inet) == G_SOCKET_FAMILY_IPV4)
    {
      key->family = 4;
      memcpy (key->prefix, bytes, 4);
    }
  else if (memcmp (bytes, v4_mapped, sizeof v4_mapped) == 0)
    {
      key->family = 4;
      memcpy (key->prefix, bytes + 12, 4);
    }
  else
    {
      key->family = 6;
      memcpy (key->prefix, bytes, 8);
    }
}

/**
 * zlt_control_listener_admit: (skip)
 * @self: a control listener
 * @remote: the new connection's address
 *
 * For implementations: counts a new connection from @remote against the caps.
 *
 * Returns: (nullable): its source, to hand to zlt_control_listener_release() once the
 *   connection upgraded or closed, or %NULL when a cap is reached: the connection is
 *   counted as refused; close it at once
 */
ZltPendingSource *
zlt_control_listener_admit (ZltControlListener *self, GSocketAddress *remote)
{
  ZltControlListenerPrivate *priv = zlt_control_listener_get_instance_private (self);
  ZltPendingSource key;
  ZltPendingSource *source;

  g_return_val_if_fail (ZLT_IS_CONTROL_LISTENER (self), NULL);

  source_key (remote, &key);
  source = g_hash_table_lookup (priv->sources, &key);
  if (priv->n_pending >= priv->max_pending
      || (source != NULL && source->n_pending >= priv->max_pending_per_source))
    {
      priv->n_refused++;
      return NULL;
    }
  if (source == NULL)
    {
      source = g_new (ZltPendingSource, 1);
      *source = key;
      g_hash_table_add (priv->sources, source);
    }
  source->n_pending++;
  priv->n_pending++;
  return source;
}

/**
 * zlt_control_listener_release: (skip)
 * @self: a control listener
 * @source: what zlt_control_listener_admit() returned
 *
 * For implementations: the connection of @source upgraded or closed.
 */
void
zlt_control_listener_release (ZltControlListener *self, ZltPendingSource *source)
{
  ZltControlListenerPrivate *priv = zlt_control_listener_get_instance_private (self);

  g_return_if_fail (ZLT_IS_CONTROL_LISTENER (self));
  g_return_if_fail (source != NULL && source->n_pending > 0);

  priv->n_pending--;
  if (--source->n_pending == 0)
    g_hash_table_remove (priv->sources, source);
}

/**
 * zlt_control_listener_get_max_pending:
 * @self: a control listener
 *
 * Returns: connections not yet upgraded, at most
 */
guint
zlt_control_listener_get_max_pending (ZltControlListener *self)
{
  ZltControlListenerPrivate *priv = zlt_control_listener_get_instance_private (self);

  g_return_val_if_fail (ZLT_IS_CONTROL_LISTENER (self), 0);
  return priv->max_pending;
}

/**
 * zlt_control_listener_set_max_pending:
 * @self: a control listener
 * @max_pending: at least 1
 *
 * Sets #ZltControlListener:max-pending.
 */
void
zlt_control_listener_set_max_pending (ZltControlListener *self, guint max_pending)
{
  ZltControlListenerPrivate *priv = zlt_control_listener_get_instance_private (self);

  g_return_if_fail (ZLT_IS_CONTROL_LISTENER (self));
  if (priv->max_pending == max_pending)
    return;
  priv->max_pending = max_pending;
  g_object_notify_by_pspec (G_OBJECT (self), props[PROP_MAX_PENDING]);
}

/**
 * zlt_control_listener_get_max_pending_per_source:
 * @self: a control listener
 *
 * Returns: connections not yet upgraded from one source, at most
 */
guint
zlt_control_listener_get_max_pending_per_source (ZltControlListener *self)
{
  ZltControlListenerPrivate *priv = zlt_control_listener_get_instance_private (self);

  g_return_val_if_fail (ZLT_IS_CONTROL_LISTENER (self), 0);
  return priv->max_pending_per_source;
}

/**
 * zlt_control_listener_set_max_pending_per_source:
 * @self: a control listener
 * @max: at least 1
 *
 * Sets #ZltControlListener:max-pending-per-source.
 */
void
zlt_control_listener_set_max_pending_per_source (ZltControlListener *self, guint max)
{
  ZltControlListenerPrivate *priv = zlt_control_listener_get_instance_private (self);

  g_return_if_fail (ZLT_IS_CONTROL_LISTENER (self));
  if (priv->max_pending_per_source == max)
    return;
  priv->max_pending_per_source = max;
  g_object_notify_by_pspec (G_OBJECT (self), props[PROP_MAX_PENDING_PER_SOURCE]);
}

/**
 * zlt_control_listener_get_bearer_auth:
 * Returns: whether control upgrades ask agents for their raw token
 *   (`X-Zlt-Auth: bearer`, PROTOCOL-v2.md §2a)
 */
gboolean
zlt_control_listener_get_bearer_auth (ZltControlListener *self)
{
  ZltControlListenerPrivate *priv = zlt_control_listener_get_instance_private (self);

  g_return_val_if_fail (ZLT_IS_CONTROL_LISTENER (self), FALSE);
  return priv->bearer_auth;
}

void
zlt_control_listener_set_bearer_auth (ZltControlListener *self, gboolean bearer_auth)
{
  ZltControlListenerPrivate *priv = zlt_control_listener_get_instance_private (self);

  g_return_if_fail (ZLT_IS_CONTROL_LISTENER (self));
  bearer_auth = !!bearer_auth;
  if (priv->bearer_auth == bearer_auth)
    return;
  priv->bearer_auth = bearer_auth;
  g_object_notify_by_pspec (G_OBJECT (self), props[PROP_BEARER_AUTH]);
}

/**
 * zlt_control_listener_get_n_pending:
 * @self: a control listener
 *
 * Returns: connections accepted and not yet upgraded (nor closed)
 */
guint
zlt_control_listener_get_n_pending (ZltControlListener *self)
{
  ZltControlListenerPrivate *priv = zlt_control_listener_get_instance_private (self);

  g_return_val_if_fail (ZLT_IS_CONTROL_LISTENER (self), 0);
  return priv->n_pending;
}

/**
 * zlt_control_listener_get_n_refused:
 * @self: a control listener
 *
 * Returns: connections closed at once because a cap was reached
 */
guint64
zlt_control_listener_get_n_refused (ZltControlListener *self)
{
  ZltControlListenerPrivate *priv = zlt_control_listener_get_instance_private (self);

  g_return_val_if_fail (ZLT_IS_CONTROL_LISTENER (self), 0);
  return priv->n_refused;
}

static void
zlt_control_listener_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  ZltControlListener *self = ZLT_CONTROL_LISTENER (object);

  switch (prop_id)
    {
    case PROP_MAX_PENDING:
      g_value_set_uint (value, zlt_control_listener_get_max_pending (self));
      break;
    case PROP_MAX_PENDING_PER_SOURCE:
      g_value_set_uint (value, zlt_control_listener_get_max_pending_per_source (self));
      break;
    case PROP_BEARER_AUTH:
      g_value_set_boolean (value, zlt_control_listener_get_bearer_auth (self));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
zlt_control_listener_set_property (GObject *object, guint prop_id, const GValue *value,
                                   GParamSpec *pspec)
{
  ZltControlListener *self = ZLT_CONTROL_LISTENER (object);

  switch (prop_id)
    {
    case PROP_MAX_PENDING:
      zlt_control_listener_set_max_pending (self, g_value_get_uint (value));
      break;
    case PROP_MAX_PENDING_PER_SOURCE:
      zlt_control_listener_set_max_pending_per_source (self, g_value_get_uint (value));
      break;
    case PROP_BEARER_AUTH:
      zlt_control_listener_set_bearer_auth (self, g_value_get_boolean (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
zlt_control_listener_finalize (GObject *object)
{
  ZltControlListenerPrivate *priv
      = zlt_control_listener_get_instance_private (ZLT_CONTROL_LISTENER (object));

  /* implementations release every source before they finalize */
  g_warn_if_fail (priv->n_pending == 0);
  g_hash_table_unref (priv->sources);
  G_OBJECT_CLASS (zlt_control_listener_parent_class)->finalize (object);
}

static void
zlt_control_listener_class_init (ZltControlListenerClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->get_property = zlt_control_listener_get_property;
  object_class->set_property = zlt_control_listener_set_property;
  object_class->finalize = zlt_control_listener_finalize;

  /**
   * ZltControlListener:max-pending:
   * Connections not yet upgraded, at most; more are closed at once.
   */
  props[PROP_MAX_PENDING] = g_param_spec_uint (
      "max-pending", NULL, NULL, 1, G_MAXUINT, ZLT_CONTROL_LISTENER_MAX_PENDING,
      G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  /**
   * ZltControlListener:max-pending-per-source:
   * Connections not yet upgraded from one IPv4 address or IPv6 /64, at most.
   */
  /**
   * ZltControlListener:bearer-auth:
   * Whether control upgrades ask agents for their raw token (`X-Zlt-Auth: bearer`,
   * PROTOCOL-v2.md §2a): the server sets it when its validator needs the token itself.
   */
  props[PROP_BEARER_AUTH]
      = g_param_spec_boolean ("bearer-auth", NULL, NULL, FALSE,
                              G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  props[PROP_MAX_PENDING_PER_SOURCE]
      = g_param_spec_uint ("max-pending-per-source", NULL, NULL, 1, G_MAXUINT,
                           ZLT_CONTROL_LISTENER_MAX_PENDING_PER_SOURCE,
                           G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, props);

  /**
   * ZltControlListener::channel:
   * @self: the listener
   * @channel: a new control channel, before any frame
   */
  signals[SIGNAL_CHANNEL] = g_signal_new ("channel", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                                          0, NULL, NULL, NULL, G_TYPE_NONE, 1, ZLT_TYPE_CHANNEL);
  /**
   * ZltControlListener::data-request:
   * @self: the listener
   * @tunnel_id: X-Zlt-Tunnel
   * @connection_id: X-Zlt-Connection
   * @mac: X-Zlt-Mac
   * @service: (nullable): X-Zlt-Service, present on access streams only
   * @probe: only say whether an access stream would be accepted
   *
   * A data connection (or access stream) asks to be accepted.
   *
   * Returns: a #ZltDataVerdict; the first handler decides
   */
  signals[SIGNAL_DATA_REQUEST]
      = g_signal_new ("data-request", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                      g_signal_accumulator_first_wins, NULL, NULL, ZLT_TYPE_DATA_VERDICT, 5,
                      G_TYPE_STRING, G_TYPE_STRING, G_TYPE_STRING, G_TYPE_STRING, G_TYPE_BOOLEAN);
  /**
   * ZltControlListener::data-stream:
   * @self: the listener
   * @connection_id: X-Zlt-Connection
   * @stream: the connection
   *
   * An accepted data connection, its 101 already sent.
   */
  signals[SIGNAL_DATA_STREAM]
      = g_signal_new ("data-stream", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                      NULL, G_TYPE_NONE, 2, G_TYPE_STRING, G_TYPE_IO_STREAM);
  /**
   * ZltControlListener::standby-request:
   * @self: the listener
   * @tunnel_id: X-Zlt-Tunnel
   * @standby_id: X-Zlt-Standby
   * @mac: X-Zlt-Mac
   *
   * A standby data connection asks to be parked (PROTOCOL-v2.md §8).
   *
   * Returns: a #ZltDataVerdict; the first handler decides
   */
  signals[SIGNAL_STANDBY_REQUEST]
      = g_signal_new ("standby-request", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                      g_signal_accumulator_first_wins, NULL, NULL, ZLT_TYPE_DATA_VERDICT, 3,
                      G_TYPE_STRING, G_TYPE_STRING, G_TYPE_STRING);
  /**
   * ZltControlListener::standby-stream:
   * @self: the listener
   * @tunnel_id: X-Zlt-Tunnel
   * @standby_id: X-Zlt-Standby
   * @stream: the connection, nothing read from it since the request
   *
   * An accepted standby data connection, its 101 already sent.
   */
  signals[SIGNAL_STANDBY_STREAM]
      = g_signal_new ("standby-stream", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                      NULL, G_TYPE_NONE, 3, G_TYPE_STRING, G_TYPE_STRING, G_TYPE_IO_STREAM);
}

static void
zlt_control_listener_init (ZltControlListener *self)
{
  ZltControlListenerPrivate *priv = zlt_control_listener_get_instance_private (self);

  priv->max_pending = ZLT_CONTROL_LISTENER_MAX_PENDING;
  priv->max_pending_per_source = ZLT_CONTROL_LISTENER_MAX_PENDING_PER_SOURCE;
  priv->sources = g_hash_table_new_full (source_hash, source_equal, g_free, NULL);
}
