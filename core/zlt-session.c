/* zlt-session.c: one on-demand access session
 *
 * A session ends by itself: a timer on the main context that was the thread default
 * when the session was made emits ::expired at the expiry time. The expiry is wall-clock
 * time (what users are shown); when the timer fires early because the clock moved, it is
 * armed again for the rest.
 */
#include "config.h"

#include "zlt-service.h" /* ZLT_NOTIFY_INTERVAL_MS */
#include "zlt-session.h"
#include "zlt-notify-batch.h"
#include "zlt-source.h"

struct _ZltSession
{
  GObject parent_instance;

  ZltUuid id;
  char *endpoint;
  char *local_address;
  char *remote_service;
  gint64 created; /* unix time, µs */
  gint64 expires; /* unix time, µs; 0 = never */
  gboolean expired;
  GSource *expire_source;

  guint active_connections;
  guint64 total_connections;
  guint64 bytes_in;
  guint64 bytes_out;
  char *last_error;

  ZltNotifyBatch batch; /* bytes (and activity) notifies, coalesced */
  GMainContext *context;
};

enum
{
  PROP_0,
  PROP_ID,
  PROP_ENDPOINT,
  PROP_LOCAL_ADDRESS,
  PROP_REMOTE_SERVICE,
  PROP_CREATED,
  PROP_EXPIRES,
  PROP_ACTIVE_CONNECTIONS,
  PROP_TOTAL_CONNECTIONS,
  PROP_BYTES_IN,
  PROP_BYTES_OUT,
  PROP_LAST_ERROR,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

enum
{
  SIGNAL_EXPIRED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

/**
 * ZltSession:
 * One on-demand access session of a [class@Zlt.AccessManager]: a local address that
 * leads to a remote service through a server until the session expires, with counters
 * of its connections and bytes and the last error of a connection through it.
 */

G_DEFINE_FINAL_TYPE (ZltSession, zlt_session, G_TYPE_OBJECT)

static void arm_expiry (ZltSession *self);

static gboolean
expire_cb (gpointer user_data)
{
  ZltSession *self = user_data;

  g_clear_pointer (&self->expire_source, g_source_unref);
  if (g_get_real_time () < self->expires)
    {
      arm_expiry (self);
      return G_SOURCE_REMOVE;
    }
  self->expired = TRUE;
  g_object_ref (self);
  g_signal_emit (self, signals[SIGNAL_EXPIRED], 0);
  g_object_unref (self);
  return G_SOURCE_REMOVE;
}

static void
arm_expiry (ZltSession *self)
{
  gint64 delay_us;
  guint delay_ms;

  zlt_source_clear (&self->expire_source);
  if (self->expires == 0 || self->expired)
    return;
  delay_us = self->expires - g_get_real_time ();
  if (delay_us <= 0)
    delay_ms = 0;
  else if (delay_us / 1000 >= G_MAXUINT)
    delay_ms = G_MAXUINT;
  else
    delay_ms = (guint) ((delay_us + 999) / 1000);
  self->expire_source = g_timeout_source_new (delay_ms);
  g_source_set_callback (self->expire_source, expire_cb, self, NULL);
  g_source_set_static_name (self->expire_source, "[zlt] session expiry");
  g_source_attach (self->expire_source, self->context);
}

static void
zlt_session_set_property (GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec)
{
  ZltSession *self = ZLT_SESSION (object);

  switch (prop_id)
    {
    case PROP_ID:
      {
        const char *str = g_value_get_string (value);

        if (str == NULL)
          zlt_uuid_generate (&self->id);
        else if (!zlt_uuid_parse (str, &self->id))
          {
            g_warning ("invalid session id “%s”", str);
            zlt_uuid_generate (&self->id);
          }
      }
      break;
    case PROP_ENDPOINT:
      self->endpoint = g_value_dup_string (value);
      break;
    case PROP_LOCAL_ADDRESS:
      zlt_session_set_local_address (self, g_value_get_string (value));
      break;
    case PROP_REMOTE_SERVICE:
      self->remote_service = g_value_dup_string (value);
      break;
    case PROP_EXPIRES:
      zlt_session_set_expires (self, g_value_get_int64 (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
zlt_session_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  ZltSession *self = ZLT_SESSION (object);

  switch (prop_id)
    {
    case PROP_ID:
      g_value_take_string (value, zlt_uuid_to_string (&self->id));
      break;
    case PROP_ENDPOINT:
      g_value_set_string (value, self->endpoint);
      break;
    case PROP_LOCAL_ADDRESS:
      g_value_set_string (value, self->local_address);
      break;
    case PROP_REMOTE_SERVICE:
      g_value_set_string (value, self->remote_service);
      break;
    case PROP_CREATED:
      g_value_set_int64 (value, self->created);
      break;
    case PROP_EXPIRES:
      g_value_set_int64 (value, self->expires);
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
    case PROP_LAST_ERROR:
      g_value_set_string (value, self->last_error);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
zlt_session_dispose (GObject *object)
{
  ZltSession *self = ZLT_SESSION (object);

  zlt_source_clear (&self->expire_source);
  zlt_notify_batch_clear (&self->batch);
  G_OBJECT_CLASS (zlt_session_parent_class)->dispose (object);
}

static void
zlt_session_finalize (GObject *object)
{
  ZltSession *self = ZLT_SESSION (object);

  g_free (self->endpoint);
  g_free (self->local_address);
  g_free (self->remote_service);
  g_free (self->last_error);
  g_main_context_unref (self->context);
  G_OBJECT_CLASS (zlt_session_parent_class)->finalize (object);
}

static void
zlt_session_class_init (ZltSessionClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  const GParamFlags ro = G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS;
  const GParamFlags rw = G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS;
  const GParamFlags co = G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS;

  object_class->set_property = zlt_session_set_property;
  object_class->get_property = zlt_session_get_property;
  object_class->dispose = zlt_session_dispose;
  object_class->finalize = zlt_session_finalize;

  /**
   * ZltSession:id:
   * The session id as a UUID string; a fresh random one when not given.
   */
  properties[PROP_ID] = g_param_spec_string ("id", NULL, NULL, NULL, co);
  /**
   * ZltSession:endpoint:
   * The server the session goes through.
   */
  properties[PROP_ENDPOINT] = g_param_spec_string ("endpoint", NULL, NULL, NULL, co);
  /**
   * ZltSession:local-address:
   * Where the session listens locally, e.g. "127.0.0.1:8022".
   */
  properties[PROP_LOCAL_ADDRESS] = g_param_spec_string ("local-address", NULL, NULL, NULL, rw);
  /**
   * ZltSession:remote-service:
   * The name of the service the session reaches.
   */
  properties[PROP_REMOTE_SERVICE] = g_param_spec_string ("remote-service", NULL, NULL, NULL, co);
  /**
   * ZltSession:created:
   * When the session was made, in µs since the Unix epoch.
   */
  properties[PROP_CREATED] = g_param_spec_int64 ("created", NULL, NULL, 0, G_MAXINT64, 0, ro);
  /**
   * ZltSession:expires:
   * When the session ends, in µs since the Unix epoch; 0 for never. Setting it again
   * re-arms the timer, also after the session expired.
   */
  properties[PROP_EXPIRES] = g_param_spec_int64 ("expires", NULL, NULL, 0, G_MAXINT64, 0, rw);
  /**
   * ZltSession:active-connections:
   * Connections through the session now.
   */
  properties[PROP_ACTIVE_CONNECTIONS]
      = g_param_spec_uint ("active-connections", NULL, NULL, 0, G_MAXUINT, 0, ro);
  /**
   * ZltSession:total-connections:
   * Connections through the session since it began.
   */
  properties[PROP_TOTAL_CONNECTIONS]
      = g_param_spec_uint64 ("total-connections", NULL, NULL, 0, G_MAXUINT64, 0, ro);
  /**
   * ZltSession:bytes-in:
   * Bytes received from the remote service. Notified at most every
   * %ZLT_NOTIFY_INTERVAL_MS.
   */
  properties[PROP_BYTES_IN] = g_param_spec_uint64 ("bytes-in", NULL, NULL, 0, G_MAXUINT64, 0, ro);
  /**
   * ZltSession:bytes-out:
   * Bytes sent to the remote service. Notified at most every %ZLT_NOTIFY_INTERVAL_MS.
   */
  properties[PROP_BYTES_OUT] = g_param_spec_uint64 ("bytes-out", NULL, NULL, 0, G_MAXUINT64, 0, ro);
  /**
   * ZltSession:last-error:
   * Why the last connection through the session failed (the server refused the service,
   * the token was refused, ...), or %NULL.
   */
  properties[PROP_LAST_ERROR] = g_param_spec_string ("last-error", NULL, NULL, NULL, ro);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * ZltSession::expired:
   * @self: the session
   *
   * Emitted once, from the main loop, when the expiry time has come.
   */
  signals[SIGNAL_EXPIRED] = g_signal_new ("expired", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                                          0, NULL, NULL, NULL, G_TYPE_NONE, 0);
}

static void
zlt_session_init (ZltSession *self)
{
  self->created = g_get_real_time ();
  self->context = g_main_context_ref_thread_default ();
  zlt_notify_batch_init (&self->batch, G_OBJECT (self), self->context, "[zlt] session notify");
}

/**
 * zlt_session_new:
 * @endpoint: the server the session goes through
 * @local_address: (nullable): where the session listens locally
 * @remote_service: the name of the service it reaches
 * @ttl_seconds: lifetime from now; 0 for no expiry
 *
 * Returns: (transfer full): a new session whose timer is already running
 */
ZltSession *
zlt_session_new (const char *endpoint, const char *local_address, const char *remote_service,
                 guint ttl_seconds)
{
  ZltSession *self;

  g_return_val_if_fail (endpoint != NULL, NULL);
  g_return_val_if_fail (remote_service != NULL, NULL);

  self = g_object_new (ZLT_TYPE_SESSION, "endpoint", endpoint, "local-address", local_address,
                       "remote-service", remote_service, NULL);
  if (ttl_seconds > 0)
    zlt_session_set_expires (self, self->created + (gint64) ttl_seconds * G_USEC_PER_SEC);
  return self;
}

/**
 * zlt_session_get_id:
 * @self: a session
 *
 * Returns: (transfer none): the session id
 */
const ZltUuid *
zlt_session_get_id (ZltSession *self)
{
  g_return_val_if_fail (ZLT_IS_SESSION (self), NULL);
  return &self->id;
}

/**
 * zlt_session_dup_id_string:
 * @self: a session
 *
 * Returns: (transfer full): the session id as a UUID string (#ZltSession:id)
 */
char *
zlt_session_dup_id_string (ZltSession *self)
{
  g_return_val_if_fail (ZLT_IS_SESSION (self), NULL);
  return zlt_uuid_to_string (&self->id);
}

/**
 * zlt_session_get_endpoint:
 * @self: a session
 *
 * Returns: the server the session goes through
 */
const char *
zlt_session_get_endpoint (ZltSession *self)
{
  g_return_val_if_fail (ZLT_IS_SESSION (self), NULL);
  return self->endpoint;
}

/**
 * zlt_session_get_local_address:
 * @self: a session
 *
 * Returns: (nullable): where the session listens locally, e.g. "127.0.0.1:8022"
 */
const char *
zlt_session_get_local_address (ZltSession *self)
{
  g_return_val_if_fail (ZLT_IS_SESSION (self), NULL);
  return self->local_address;
}

/**
 * zlt_session_set_local_address:
 * @self: a session
 * @local_address: (nullable): "host:port"
 *
 * Sets #ZltSession:local-address.
 */
void
zlt_session_set_local_address (ZltSession *self, const char *local_address)
{
  g_return_if_fail (ZLT_IS_SESSION (self));

  if (g_strcmp0 (self->local_address, local_address) == 0)
    return;
  g_free (self->local_address);
  self->local_address = g_strdup (local_address);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_LOCAL_ADDRESS]);
}

/**
 * zlt_session_get_remote_service:
 * @self: a session
 *
 * Returns: the name of the service the session reaches
 */
const char *
zlt_session_get_remote_service (ZltSession *self)
{
  g_return_val_if_fail (ZLT_IS_SESSION (self), NULL);
  return self->remote_service;
}

/**
 * zlt_session_get_created:
 * @self: a session
 *
 * Returns: when the session was made, in µs since the Unix epoch
 */
gint64
zlt_session_get_created (ZltSession *self)
{
  g_return_val_if_fail (ZLT_IS_SESSION (self), 0);
  return self->created;
}

/**
 * zlt_session_get_expires:
 * @self: a session
 *
 * Returns: when the session ends, in µs since the Unix epoch; 0 for never
 */
gint64
zlt_session_get_expires (ZltSession *self)
{
  g_return_val_if_fail (ZLT_IS_SESSION (self), 0);
  return self->expires;
}

/**
 * zlt_session_set_expires:
 * @expires: the new expiry in µs since the Unix epoch, or 0 for never
 *
 * Extends or shortens the session. The timer is re-armed, and a session that already
 * expired becomes live again and will emit ::expired once more.
 */
void
zlt_session_set_expires (ZltSession *self, gint64 expires)
{
  g_return_if_fail (ZLT_IS_SESSION (self));
  g_return_if_fail (expires >= 0);

  if (self->expires == expires && self->expire_source != NULL)
    return;
  self->expired = FALSE;
  if (self->expires != expires)
    {
      self->expires = expires;
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_EXPIRES]);
    }
  arm_expiry (self);
}

/**
 * zlt_session_get_remaining_seconds:
 *
 * Returns: whole seconds until expiry rounded up, 0 once the time has come, or -1 for
 *   a session that never expires
 */
gint64
zlt_session_get_remaining_seconds (ZltSession *self)
{
  gint64 left;

  g_return_val_if_fail (ZLT_IS_SESSION (self), 0);

  if (self->expires == 0)
    return -1;
  left = self->expires - g_get_real_time ();
  if (left <= 0)
    return 0;
  return (left + G_USEC_PER_SEC - 1) / G_USEC_PER_SEC;
}

/**
 * zlt_session_is_expired:
 *
 * Returns: %TRUE once ::expired was emitted
 */
gboolean
zlt_session_is_expired (ZltSession *self)
{
  g_return_val_if_fail (ZLT_IS_SESSION (self), FALSE);
  return self->expired;
}

/**
 * zlt_session_get_active_connections:
 * @self: a session
 *
 * Returns: the connections through the session now
 */
guint
zlt_session_get_active_connections (ZltSession *self)
{
  g_return_val_if_fail (ZLT_IS_SESSION (self), 0);
  return self->active_connections;
}

/**
 * zlt_session_get_total_connections:
 * @self: a session
 *
 * Returns: the connections through the session since it began
 */
guint64
zlt_session_get_total_connections (ZltSession *self)
{
  g_return_val_if_fail (ZLT_IS_SESSION (self), 0);
  return self->total_connections;
}

/**
 * zlt_session_get_bytes_in:
 * @self: a session
 *
 * Returns: bytes received from the remote service
 */
guint64
zlt_session_get_bytes_in (ZltSession *self)
{
  g_return_val_if_fail (ZLT_IS_SESSION (self), 0);
  return self->bytes_in;
}

/**
 * zlt_session_get_bytes_out:
 * @self: a session
 *
 * Returns: bytes sent to the remote service
 */
guint64
zlt_session_get_bytes_out (ZltSession *self)
{
  g_return_val_if_fail (ZLT_IS_SESSION (self), 0);
  return self->bytes_out;
}

/**
 * zlt_session_connection_opened:
 * @self: a session
 *
 * Counts a new connection through the session.
 */
void
zlt_session_connection_opened (ZltSession *self)
{
  g_return_if_fail (ZLT_IS_SESSION (self));

  self->active_connections++;
  self->total_connections++;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_ACTIVE_CONNECTIONS]);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_TOTAL_CONNECTIONS]);
}

/**
 * zlt_session_connection_closed:
 * @self: a session
 *
 * Counts the end of a connection through the session.
 */
void
zlt_session_connection_closed (ZltSession *self)
{
  g_return_if_fail (ZLT_IS_SESSION (self));
  g_return_if_fail (self->active_connections > 0);

  self->active_connections--;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_ACTIVE_CONNECTIONS]);
}

/**
 * zlt_session_flush_notify:
 *
 * Emits the byte counters' pending notify signals now. Emits nothing when no counter
 * changed since the last notify.
 */
void
zlt_session_flush_notify (ZltSession *self)
{
  g_return_if_fail (ZLT_IS_SESSION (self));
  zlt_notify_batch_flush (&self->batch);
}

/**
 * zlt_session_add_bytes:
 * @bytes_in: bytes received from the remote service
 * @bytes_out: bytes sent to it
 *
 * Cheap enough for every relayed chunk: the notify signals follow within
 * %ZLT_NOTIFY_INTERVAL_MS, or at zlt_session_flush_notify().
 */
void
zlt_session_add_bytes (ZltSession *self, guint64 bytes_in, guint64 bytes_out)
{
  g_return_if_fail (ZLT_IS_SESSION (self));

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
 * zlt_session_get_last_error:
 * @self: a session
 *
 * Returns: (nullable): why the last connection through the session failed, or %NULL
 */
const char *
zlt_session_get_last_error (ZltSession *self)
{
  g_return_val_if_fail (ZLT_IS_SESSION (self), NULL);
  return self->last_error;
}

/**
 * zlt_session_set_last_error:
 * @last_error: (nullable): a message for users
 */
void
zlt_session_set_last_error (ZltSession *self, const char *last_error)
{
  g_return_if_fail (ZLT_IS_SESSION (self));

  if (g_strcmp0 (self->last_error, last_error) == 0)
    return;
  g_free (self->last_error);
  self->last_error = g_strdup (last_error);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_LAST_ERROR]);
}
