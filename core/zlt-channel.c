/* zlt-channel.c: base of the control-channel implementations */
#include "config.h"

#include "zlt-channel.h"

typedef struct
{
  char *peer_address;
  GBytes *nonce;
  gboolean bearer_wanted;
  gboolean peer_verified;
  gboolean closed;
  /* the listener's count of not-yet-authenticated connections this one is in */
  GDestroyNotify admission_end;
  gpointer admission_data;
} ZltChannelPrivate;

/**
 * ZltChannel:
 * A message channel that carries control frames (a WebSocket in practice): the server
 * and the agent only see binary messages in (#ZltChannel::message) and out
 * (zlt_channel_send()), and the end (#ZltChannel::closed). Transport plugins subclass it.
 */

G_DEFINE_ABSTRACT_TYPE_WITH_PRIVATE (ZltChannel, zlt_channel, G_TYPE_OBJECT)

enum
{
  PROP_0,
  PROP_PEER_ADDRESS,
  N_PROPS
};
static GParamSpec *props[N_PROPS];

enum
{
  SIGNAL_MESSAGE,
  SIGNAL_CLOSED,
  N_SIGNALS
};
static guint signals[N_SIGNALS];

/**
 * zlt_channel_send:
 * @self: a channel
 * @message: one binary message
 * @error: return location for a #GError
 *
 * Queues one binary message; never blocks. Fails on a closed channel.
 *
 * Returns: %TRUE when queued
 */
gboolean
zlt_channel_send (ZltChannel *self, GBytes *message, GError **error)
{
  ZltChannelPrivate *priv = zlt_channel_get_instance_private (self);

  g_return_val_if_fail (ZLT_IS_CHANNEL (self), FALSE);
  g_return_val_if_fail (message != NULL, FALSE);

  if (priv->closed)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_CLOSED, "channel is closed");
      return FALSE;
    }
  return ZLT_CHANNEL_GET_CLASS (self)->send (self, message, error);
}

/**
 * zlt_channel_close:
 * @self: a channel
 * @code: the close code (WebSocket)
 * @reason: (nullable): why, for the peer
 *
 * Starts an orderly close; #ZltChannel::closed follows.
 */
void
zlt_channel_close (ZltChannel *self, guint16 code, const char *reason)
{
  ZltChannelPrivate *priv = zlt_channel_get_instance_private (self);

  g_return_if_fail (ZLT_IS_CHANNEL (self));
  if (priv->closed)
    return;
  ZLT_CHANNEL_GET_CLASS (self)->close (self, code, reason);
}

/**
 * zlt_channel_get_pending:
 * @self: a channel
 *
 * Returns: bytes queued but not yet handed to the kernel, for back-pressure
 */
gsize
zlt_channel_get_pending (ZltChannel *self)
{
  g_return_val_if_fail (ZLT_IS_CHANNEL (self), 0);
  if (ZLT_CHANNEL_GET_CLASS (self)->get_pending == NULL)
    return 0;
  return ZLT_CHANNEL_GET_CLASS (self)->get_pending (self);
}

/**
 * zlt_channel_is_closed:
 * @self: a channel
 *
 * Returns: whether #ZltChannel::closed was emitted
 */
gboolean
zlt_channel_is_closed (ZltChannel *self)
{
  ZltChannelPrivate *priv = zlt_channel_get_instance_private (self);

  g_return_val_if_fail (ZLT_IS_CHANNEL (self), TRUE);
  return priv->closed;
}

/**
 * zlt_channel_get_peer_address:
 * @self: a channel
 *
 * Returns: (nullable): the other end's address, "host:port"
 */
const char *
zlt_channel_get_peer_address (ZltChannel *self)
{
  ZltChannelPrivate *priv = zlt_channel_get_instance_private (self);

  g_return_val_if_fail (ZLT_IS_CHANNEL (self), NULL);
  return priv->peer_address;
}

/**
 * zlt_channel_get_nonce:
 * @self: a channel
 *
 * Returns: (nullable) (transfer none): the challenge nonce of the handshake
 *   (%ZLT_NONCE_SIZE bytes), or %NULL if the peer sent none (a v1 server)
 */
GBytes *
zlt_channel_get_nonce (ZltChannel *self)
{
  ZltChannelPrivate *priv = zlt_channel_get_instance_private (self);

  g_return_val_if_fail (ZLT_IS_CHANNEL (self), NULL);
  return priv->nonce;
}

/**
 * zlt_channel_set_nonce:
 * @self: a channel
 * @nonce: (nullable): the handshake's nonce
 *
 * For implementations: records the challenge nonce of the handshake.
 */
void
zlt_channel_set_nonce (ZltChannel *self, GBytes *nonce)
{
  ZltChannelPrivate *priv = zlt_channel_get_instance_private (self);

  g_return_if_fail (ZLT_IS_CHANNEL (self));
  g_clear_pointer (&priv->nonce, g_bytes_unref);
  if (nonce != NULL)
    priv->nonce = g_bytes_ref (nonce);
}

/**
 * zlt_channel_get_bearer_wanted:
 * Returns: whether the server's handshake asked for the raw token (`X-Zlt-Auth: bearer`,
 *   PROTOCOL-v2.md §2a)
 */
gboolean
zlt_channel_get_bearer_wanted (ZltChannel *self)
{
  ZltChannelPrivate *priv = zlt_channel_get_instance_private (self);

  g_return_val_if_fail (ZLT_IS_CHANNEL (self), FALSE);
  return priv->bearer_wanted;
}

void
zlt_channel_set_bearer_wanted (ZltChannel *self, gboolean wanted)
{
  ZltChannelPrivate *priv = zlt_channel_get_instance_private (self);

  g_return_if_fail (ZLT_IS_CHANNEL (self));
  priv->bearer_wanted = wanted;
}

/**
 * zlt_channel_get_peer_verified:
 * Returns: whether the transport said the channel runs over TLS whose certificate it
 *   verified (a CA, the system's or a file, or a pin); never for plain connections or
 *   with verification off
 */
gboolean
zlt_channel_get_peer_verified (ZltChannel *self)
{
  ZltChannelPrivate *priv = zlt_channel_get_instance_private (self);

  g_return_val_if_fail (ZLT_IS_CHANNEL (self), FALSE);
  return priv->peer_verified;
}

void
zlt_channel_set_peer_verified (ZltChannel *self, gboolean verified)
{
  ZltChannelPrivate *priv = zlt_channel_get_instance_private (self);

  g_return_if_fail (ZLT_IS_CHANNEL (self));
  priv->peer_verified = verified;
}

/**
 * zlt_channel_emit_message:
 * @self: a channel
 * @message: one binary message
 *
 * For implementations: emits #ZltChannel::message.
 */
void
zlt_channel_emit_message (ZltChannel *self, GBytes *message)
{
  ZltChannelPrivate *priv = zlt_channel_get_instance_private (self);

  if (!priv->closed)
    g_signal_emit (self, signals[SIGNAL_MESSAGE], 0, message);
}

/**
 * zlt_channel_emit_closed:
 * @self: a channel
 * @error: (nullable): why, or %NULL for an orderly close
 *
 * For implementations: emits #ZltChannel::closed, once.
 */
void
zlt_channel_emit_closed (ZltChannel *self, const GError *error)
{
  ZltChannelPrivate *priv = zlt_channel_get_instance_private (self);

  if (priv->closed)
    return;
  priv->closed = TRUE;
  zlt_channel_end_admission (self);
  /* handlers commonly drop the last reference */
  g_object_ref (self);
  g_signal_emit (self, signals[SIGNAL_CLOSED], 0, error);
  g_object_unref (self);
}

static void
zlt_channel_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  ZltChannelPrivate *priv = zlt_channel_get_instance_private (ZLT_CHANNEL (object));

  switch (prop_id)
    {
    case PROP_PEER_ADDRESS:
      g_value_set_string (value, priv->peer_address);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
zlt_channel_set_property (GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec)
{
  ZltChannelPrivate *priv = zlt_channel_get_instance_private (ZLT_CHANNEL (object));

  switch (prop_id)
    {
    case PROP_PEER_ADDRESS:
      g_free (priv->peer_address);
      priv->peer_address = g_value_dup_string (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

/**
 * zlt_channel_set_admission: (skip)
 * @self: a channel
 * @end: called once with @data, when the peer has authenticated
 *   (zlt_channel_end_admission()) or the channel closed or went away
 * @data: data for @end
 *
 * For listeners that bound connections until they authenticate: the channel carries
 * the connection's place in that count past the upgrade.
 */
void
zlt_channel_set_admission (ZltChannel *self, GDestroyNotify end, gpointer data)
{
  ZltChannelPrivate *priv = zlt_channel_get_instance_private (self);

  g_return_if_fail (ZLT_IS_CHANNEL (self));
  g_return_if_fail (priv->admission_end == NULL);

  priv->admission_end = end;
  priv->admission_data = data;
}

/**
 * zlt_channel_end_admission:
 * @self: a channel
 *
 * The peer authenticated (or left): it no longer counts among the listener's connections
 * waiting to (see zlt_control_listener_admit()).
 */
void
zlt_channel_end_admission (ZltChannel *self)
{
  ZltChannelPrivate *priv = zlt_channel_get_instance_private (self);
  GDestroyNotify end = g_steal_pointer (&priv->admission_end);

  g_return_if_fail (ZLT_IS_CHANNEL (self));

  if (end != NULL)
    end (g_steal_pointer (&priv->admission_data));
}

static void
zlt_channel_finalize (GObject *object)
{
  ZltChannelPrivate *priv = zlt_channel_get_instance_private (ZLT_CHANNEL (object));

  /* a channel dropped before it closed (its server stopping) gives its place back too */
  zlt_channel_end_admission (ZLT_CHANNEL (object));
  g_free (priv->peer_address);
  g_clear_pointer (&priv->nonce, g_bytes_unref);
  G_OBJECT_CLASS (zlt_channel_parent_class)->finalize (object);
}

static void
zlt_channel_class_init (ZltChannelClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->get_property = zlt_channel_get_property;
  object_class->set_property = zlt_channel_set_property;
  object_class->finalize = zlt_channel_finalize;

  /**
   * ZltChannel:peer-address:
   * The other end's address, "host:port".
   */
  props[PROP_PEER_ADDRESS]
      = g_param_spec_string ("peer-address", NULL, NULL, NULL,
                             G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, props);

  /**
   * ZltChannel::message:
   * @self: the channel
   * @message: one binary message (one or more protocol frames)
   */
  signals[SIGNAL_MESSAGE]
      = g_signal_new ("message", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                      G_TYPE_NONE, 1, G_TYPE_BYTES | G_SIGNAL_TYPE_STATIC_SCOPE);
  /**
   * ZltChannel::closed:
   * @self: the channel
   * @error: (nullable): why, or %NULL for an orderly close
   *
   * The channel ended; emitted exactly once.
   */
  signals[SIGNAL_CLOSED]
      = g_signal_new ("closed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                      G_TYPE_NONE, 1, G_TYPE_ERROR | G_SIGNAL_TYPE_STATIC_SCOPE);
}

static void
zlt_channel_init (ZltChannel *self)
{
}
