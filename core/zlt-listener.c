/* zlt-listener.c: a bound listening endpoint of a transport */
#include "config.h"

#include "zlt-listener.h"

typedef struct
{
  guint16 port;
  gboolean closed;
} ZltListenerPrivate;

/**
 * ZltListener:
 * A bound listening endpoint of a [class@Zlt.Transport]: it reports every accepted
 * connection with #ZltListener::incoming until zlt_listener_close().
 */

G_DEFINE_TYPE_WITH_PRIVATE (ZltListener, zlt_listener, G_TYPE_OBJECT)

enum
{
  PROP_0,
  PROP_PORT,
  PROP_CLOSED,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

enum
{
  SIGNAL_INCOMING,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

static void
zlt_listener_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  ZltListener *self = ZLT_LISTENER (object);
  ZltListenerPrivate *priv = zlt_listener_get_instance_private (self);

  switch (prop_id)
    {
    case PROP_PORT:
      g_value_set_uint (value, priv->port);
      break;
    case PROP_CLOSED:
      g_value_set_boolean (value, priv->closed);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
    }
}

static void
zlt_listener_class_init (ZltListenerClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->get_property = zlt_listener_get_property;

  /**
   * ZltListener:port:
   * The port actually bound, which is what to announce when port 0 was asked for.
   */
  properties[PROP_PORT]
      = g_param_spec_uint ("port", NULL, NULL, 0, G_MAXUINT16, 0,
                           G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  /**
   * ZltListener:closed:
   * Whether zlt_listener_close() was called.
   */
  properties[PROP_CLOSED]
      = g_param_spec_boolean ("closed", NULL, NULL, FALSE,
                              G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * ZltListener::incoming:
   * @self: the listener
   * @stream: the accepted stream; take a reference to keep it
   * @peer: (nullable): the remote address, when the transport knows it
   *
   * Emitted for every accepted connection of a stream transport.
   */
  signals[SIGNAL_INCOMING]
      = g_signal_new ("incoming", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                      G_STRUCT_OFFSET (ZltListenerClass, incoming), NULL, NULL, NULL, G_TYPE_NONE,
                      2, G_TYPE_IO_STREAM, G_TYPE_SOCKET_ADDRESS);
}

static void
zlt_listener_init (ZltListener *self)
{
}

/**
 * ZltListenerClass::incoming:
 * @self: the listener
 * @stream: the accepted stream
 * @peer: (nullable): the remote address, when the transport knows it
 *
 * The class handler of #ZltListener::incoming.
 */

/**
 * zlt_listener_get_port:
 * @self: a listener
 *
 * Returns: the bound port (0 before the implementation set it)
 */
guint16
zlt_listener_get_port (ZltListener *self)
{
  ZltListenerPrivate *priv;

  g_return_val_if_fail (ZLT_IS_LISTENER (self), 0);

  priv = zlt_listener_get_instance_private (self);
  return priv->port;
}

/**
 * zlt_listener_is_closed:
 * @self: a listener
 *
 * Returns: whether zlt_listener_close() was called
 */
gboolean
zlt_listener_is_closed (ZltListener *self)
{
  ZltListenerPrivate *priv;

  g_return_val_if_fail (ZLT_IS_LISTENER (self), TRUE);

  priv = zlt_listener_get_instance_private (self);
  return priv->closed;
}

/**
 * zlt_listener_set_idle_timeout:
 * @timeout_ms: how long a connection may pass no data before it ends by itself
 *
 * For listeners whose connections have no end of their own (UDP flows): sets the idle
 * timeout of the connections accepted from now on.
 *
 * Returns: FALSE when the listener has no such timeout (its connections end when their
 *   peer ends them)
 */
gboolean
zlt_listener_set_idle_timeout (ZltListener *self, guint timeout_ms)
{
  ZltListenerClass *klass;

  g_return_val_if_fail (ZLT_IS_LISTENER (self), FALSE);

  klass = ZLT_LISTENER_GET_CLASS (self);
  if (klass->set_idle_timeout == NULL)
    return FALSE;
  klass->set_idle_timeout (self, timeout_ms);
  return TRUE;
}

/**
 * zlt_listener_close:
 * @self: a listener
 *
 * Stops accepting and releases the socket (#ZltListenerClass.close); does nothing the
 * second time.
 */
void
zlt_listener_close (ZltListener *self)
{
  ZltListenerPrivate *priv;
  ZltListenerClass *klass;

  g_return_if_fail (ZLT_IS_LISTENER (self));

  priv = zlt_listener_get_instance_private (self);
  if (priv->closed)
    return;
  priv->closed = TRUE;

  klass = ZLT_LISTENER_GET_CLASS (self);
  if (klass->close != NULL)
    klass->close (self);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_CLOSED]);
}

/**
 * zlt_listener_set_port:
 * @self: a listener
 * @port: the port actually bound
 *
 * For implementations: sets #ZltListener:port before the listener is handed out.
 */
void
zlt_listener_set_port (ZltListener *self, guint16 port)
{
  ZltListenerPrivate *priv;

  g_return_if_fail (ZLT_IS_LISTENER (self));

  priv = zlt_listener_get_instance_private (self);
  if (priv->port == port)
    return;
  priv->port = port;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_PORT]);
}

/**
 * zlt_listener_emit_incoming:
 * @self: a listener
 * @stream: the accepted stream
 * @peer: (nullable): the remote address, when known
 *
 * For implementations: emits #ZltListener::incoming.
 */
void
zlt_listener_emit_incoming (ZltListener *self, GIOStream *stream, GSocketAddress *peer)
{
  ZltListenerPrivate *priv;

  g_return_if_fail (ZLT_IS_LISTENER (self));
  g_return_if_fail (G_IS_IO_STREAM (stream));
  g_return_if_fail (peer == NULL || G_IS_SOCKET_ADDRESS (peer));

  priv = zlt_listener_get_instance_private (self);
  if (priv->closed)
    return;
  g_signal_emit (self, signals[SIGNAL_INCOMING], 0, stream, peer);
}
