/* zlt-node-tunnel.c: one node-to-node tunnel definition and its live status.
 *
 * A definition names two nodes. The node called `from` runs a dedicated ZltAgent that
 * exposes one service, "node-NAME", to the server of the node called `to`; that node
 * registers the token (the same file on both sides) with its validator under the name
 * "node:NAME", allowed to register "node-NAME" only. The status follows the agent on
 * the outbound side (state, last error, bytes of its tunnel, heartbeat latency) and the
 * server's tunnel for the token on the inbound side. */
#include "config.h"

#include <errno.h>
#include <glib/gi18n-lib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>

#include "zlt-client-config.h"
#include "zlt-config-private.h"
#include "zlt-crypto.h"
#include "zlt-enum-types.h"
#include "zlt-error.h"
#include "zlt-node-tunnel.h"
#include "zlt-source.h"
#include "zlt-util.h"

/* how often the heartbeat latency is re-read while connected */
#define LATENCY_REFRESH_MS 1000
#define TOKEN_FILE_MAX 4096

struct _ZltNodeTunnel
{
  GObject parent_instance;

  /* the definition */
  char *name;
  char *service_name;
  char *from;
  char *to;
  char *server;
  char *token_file;
  guint16 local_port;
  guint16 remote_port;
  ZltProtocol protocol;
  ZltExpose exposure;
  GKeyFile *agent_keys; /* [agent] keys passed through (heartbeat, backoff, TLS) */
  char *fingerprint;

  /* what this node does with it */
  ZltNodeDirection direction;
  ZltAgent *agent;
  gboolean running;
  gboolean register_failed;
  GSource *latency_timer;
  ZltValidator *validator; /* inbound, while the token is registered */
  char *token_name;
  ZltTunnel *followed; /* inbound: the server's tunnel for our token */

  /* the status */
  ZltTunnelState state;
  char *last_error;
  guint64 bytes_in;
  guint64 bytes_out;
  gint64 latency_us;
};

/**
 * ZltNodeTunnel:
 * One node-to-node tunnel: its definition (a `[node:NAME]` group: `from`, `to`,
 * `server`, `local-port`, `remote-port`, `protocol`, `exposure`, `token-file`) and its
 * live status on this node. The node called `from` runs a dedicated [class@Zlt.Agent]
 * that exposes one service, "node-NAME", to the server of the node called `to`; that
 * node registers the token (the same file on both sides) with its validator under the
 * name "node:NAME", allowed to register "node-NAME" only. The status follows the agent
 * on the outbound side (state, last error, bytes, heartbeat latency) and the server's
 * tunnel for the token on the inbound side. A [class@Zlt.NodeManager] runs them.
 */

G_DEFINE_FINAL_TYPE (ZltNodeTunnel, zlt_node_tunnel, G_TYPE_OBJECT)

enum
{
  PROP_0,
  PROP_NAME,
  PROP_FROM,
  PROP_TO,
  PROP_LOCAL_PORT,
  PROP_REMOTE_PORT,
  PROP_PROTOCOL,
  PROP_EXPOSURE,
  PROP_STATE,
  PROP_LAST_ERROR,
  PROP_BYTES_IN,
  PROP_BYTES_OUT,
  PROP_LATENCY_US,
  N_PROPS
};
static GParamSpec *props[N_PROPS];

static const char *const node_keys[] = {
  "from",        "to",          "server",      "local-port",         "remote-port",
  "protocol",    "exposure",    "token-file",  "heartbeat-interval", "heartbeat-timeout",
  "backoff-min", "backoff-max", "tls-ca-file", "tls-pinned-sha256",  NULL,
};

/* keys copied as they are into the agent's [agent] group */
static const char *const agent_passthrough_keys[] = {
  "heartbeat-interval", "heartbeat-timeout", "backoff-min", "backoff-max",
  "tls-ca-file",        "tls-pinned-sha256", NULL,
};

/* ---- status ---- */

/* Each change is an event in the log (set the last error first: it says why). */
static void
set_state (ZltNodeTunnel *self, ZltTunnelState state)
{
  g_autoptr (GEnumClass) klass = NULL;
  /* the other node's server, where this node dials it */
  const char *peer = self->direction == ZLT_NODE_DIRECTION_OUTBOUND ? self->server : NULL;
  GEnumValue *value;

  if (self->state == state)
    return;
  self->state = state;
  klass = g_type_class_ref (ZLT_TYPE_TUNNEL_STATE);
  value = g_enum_get_value (klass, state);
  if ((state == ZLT_TUNNEL_STATE_DISCONNECTED || state == ZLT_TUNNEL_STATE_FAILED)
      && self->last_error != NULL)
    zlt_log_event (G_LOG_DOMAIN, G_LOG_LEVEL_WARNING, ZLT_LOG_EVENT_NODE_STATE, NULL,
                   self->service_name, peer, "node tunnel %s: %s: %s", self->name,
                   value != NULL ? value->value_nick : "?", self->last_error);
  else
    zlt_log_event (G_LOG_DOMAIN, G_LOG_LEVEL_MESSAGE, ZLT_LOG_EVENT_NODE_STATE, NULL,
                   self->service_name, peer, "node tunnel %s: %s", self->name,
                   value != NULL ? value->value_nick : "?");
  g_object_notify_by_pspec (G_OBJECT (self), props[PROP_STATE]);
}

static void
set_last_error (ZltNodeTunnel *self, const char *error)
{
  if (g_strcmp0 (self->last_error, error) == 0)
    return;
  g_free (self->last_error);
  self->last_error = g_strdup (error);
  g_object_notify_by_pspec (G_OBJECT (self), props[PROP_LAST_ERROR]);
}

static void
set_bytes (ZltNodeTunnel *self, guint64 bytes_in, guint64 bytes_out)
{
  if (self->bytes_in != bytes_in)
    {
      self->bytes_in = bytes_in;
      g_object_notify_by_pspec (G_OBJECT (self), props[PROP_BYTES_IN]);
    }
  if (self->bytes_out != bytes_out)
    {
      self->bytes_out = bytes_out;
      g_object_notify_by_pspec (G_OBJECT (self), props[PROP_BYTES_OUT]);
    }
}

static void
set_latency (ZltNodeTunnel *self, gint64 latency_us)
{
  if (self->latency_us == latency_us)
    return;
  self->latency_us = latency_us;
  g_object_notify_by_pspec (G_OBJECT (self), props[PROP_LATENCY_US]);
}

static gboolean
on_latency_timer (gpointer user_data)
{
  ZltNodeTunnel *self = user_data;

  if (self->agent != NULL)
    set_latency (self, zlt_agent_get_latency_us (self->agent));
  return G_SOURCE_CONTINUE;
}

static void
sync_from_agent (ZltNodeTunnel *self)
{
  ZltTunnelState agent_state = zlt_agent_get_state (self->agent);
  const char *error = zlt_agent_get_last_error (self->agent);

  g_object_freeze_notify (G_OBJECT (self));
  switch (agent_state)
    {
    case ZLT_TUNNEL_STATE_CONNECTED:
      if (!self->register_failed)
        {
          set_last_error (self, NULL);
          set_state (self, ZLT_TUNNEL_STATE_CONNECTED);
        }
      break;
    case ZLT_TUNNEL_STATE_CONNECTING:
      /* a failed tunnel stays failed while the agent tries again, until it works */
      if (self->state != ZLT_TUNNEL_STATE_FAILED)
        set_state (self, ZLT_TUNNEL_STATE_CONNECTING);
      break;
    case ZLT_TUNNEL_STATE_DISCONNECTED:
    case ZLT_TUNNEL_STATE_FAILED:
      self->register_failed = FALSE;
      set_last_error (self, error);
      if (!self->running)
        set_state (self, ZLT_TUNNEL_STATE_DISCONNECTED);
      /* the agent keeps retrying after any error; a refusal that will not fix itself
       * (a bad or expired token, TLS trust) shows as failed rather than as one more
       * disconnect, until it works again */
      else if (agent_state == ZLT_TUNNEL_STATE_FAILED || zlt_agent_get_fatal (self->agent))
        set_state (self, ZLT_TUNNEL_STATE_FAILED);
      else
        set_state (self, ZLT_TUNNEL_STATE_DISCONNECTED);
      break;
    case ZLT_TUNNEL_STATE_PENDING:
    default:
      set_state (self, ZLT_TUNNEL_STATE_PENDING);
      break;
    }

  if (self->state == ZLT_TUNNEL_STATE_CONNECTED && self->latency_timer == NULL)
    self->latency_timer = zlt_timeout_source_attach (LATENCY_REFRESH_MS, on_latency_timer, self);
  else if (self->state != ZLT_TUNNEL_STATE_CONNECTED)
    zlt_source_clear (&self->latency_timer);
  set_latency (self, zlt_agent_get_latency_us (self->agent));
  g_object_thaw_notify (G_OBJECT (self));
}

static void
on_agent_notify (GObject *agent, GParamSpec *pspec, gpointer user_data)
{
  sync_from_agent (user_data);
}

/* The agent's error already names the service and the server's reason. A refusal
 * that can clear (the port is held, a share is full) is asked again by the agent: the
 * link is connecting meanwhile, not failed. */
static void
on_agent_register_failed (ZltAgent *agent, ZltService *service, const GError *error,
                          gpointer user_data)
{
  ZltNodeTunnel *self = user_data;
  gboolean can_clear = g_error_matches (error, ZLT_ERROR, ZLT_ERROR_PORT_IN_USE)
                       || g_error_matches (error, ZLT_ERROR, ZLT_ERROR_PORTS_EXHAUSTED)
                       || g_error_matches (error, ZLT_ERROR, ZLT_ERROR_LIMIT);

  if (g_strcmp0 (zlt_service_get_name (service), self->service_name) != 0)
    return;
  self->register_failed = TRUE;
  g_object_freeze_notify (G_OBJECT (self));
  set_last_error (self, error != NULL ? error->message : _ ("the server refused the link"));
  set_state (self, can_clear ? ZLT_TUNNEL_STATE_CONNECTING : ZLT_TUNNEL_STATE_FAILED);
  zlt_source_clear (&self->latency_timer);
  g_object_thaw_notify (G_OBJECT (self));
}

/* registered after all (a refusal that cleared): the link is up */
static void
on_agent_registered (ZltAgent *agent, ZltService *service, gpointer user_data)
{
  ZltNodeTunnel *self = user_data;

  if (g_strcmp0 (zlt_service_get_name (service), self->service_name) != 0)
    return;
  self->register_failed = FALSE;
  sync_from_agent (self);
}

static void
on_tunnel_bytes (GObject *tunnel, GParamSpec *pspec, gpointer user_data)
{
  ZltNodeTunnel *self = user_data;

  set_bytes (self, zlt_tunnel_get_bytes_in (ZLT_TUNNEL (tunnel)),
             zlt_tunnel_get_bytes_out (ZLT_TUNNEL (tunnel)));
}

static void
sync_from_followed (ZltNodeTunnel *self)
{
  if (self->followed == NULL)
    return;
  g_object_freeze_notify (G_OBJECT (self));
  on_tunnel_bytes (G_OBJECT (self->followed), NULL, self);
  if (zlt_tunnel_get_state (self->followed) == ZLT_TUNNEL_STATE_CONNECTED)
    set_last_error (self, NULL);
  set_state (self, zlt_tunnel_get_state (self->followed));
  g_object_thaw_notify (G_OBJECT (self));
}

static void
on_followed_notify (GObject *tunnel, GParamSpec *pspec, gpointer user_data)
{
  sync_from_followed (user_data);
}

/* ---- the token file ---- */

/* The token: one line, the trailing newline dropped; the file must be private. */
static char *
read_token (const char *path, GError **error)
{
  g_autofree char *contents = NULL;
  g_autoptr (GError) error_local = NULL;
  GStatBuf st;
  gsize len = 0;

  if (g_stat (path, &st) != 0)
    {
      int errsv = errno;

      g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG, _ ("cannot open token file %s: %s"),
                   path, g_strerror (errsv));
      return NULL;
    }
  if (!S_ISREG (st.st_mode))
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                   _ ("token file %s is not a regular file"), path);
      return NULL;
    }
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_INSECURE,
                   _ ("token file %s is accessible by group or others (mode %04o); "
                      "run chmod 600 on it"),
                   path, (guint) (st.st_mode & 07777));
      return NULL;
    }
  if (!g_file_get_contents (path, &contents, &len, &error_local))
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG, _ ("cannot read token file %s: %s"),
                   path, error_local->message);
      return NULL;
    }
  if (len > TOKEN_FILE_MAX || strlen (contents) != len)
    {
      explicit_bzero (contents, len);
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                   _ ("token file %s does not hold one token"), path);
      return NULL;
    }
  while (len > 0 && (contents[len - 1] == '\n' || contents[len - 1] == '\r'))
    contents[--len] = '\0';
  if (len == 0 || strpbrk (contents, "\r\n") != NULL)
    {
      explicit_bzero (contents, len);
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                   _ ("token file %s does not hold one token"), path);
      return NULL;
    }
  return g_steal_pointer (&contents);
}

/* ---- GObject ---- */

static void
zlt_node_tunnel_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  ZltNodeTunnel *self = ZLT_NODE_TUNNEL (object);

  switch (prop_id)
    {
    case PROP_NAME:
      g_value_set_string (value, self->name);
      break;
    case PROP_FROM:
      g_value_set_string (value, self->from);
      break;
    case PROP_TO:
      g_value_set_string (value, self->to);
      break;
    case PROP_LOCAL_PORT:
      g_value_set_uint (value, self->local_port);
      break;
    case PROP_REMOTE_PORT:
      g_value_set_uint (value, self->remote_port);
      break;
    case PROP_PROTOCOL:
      g_value_set_enum (value, self->protocol);
      break;
    case PROP_EXPOSURE:
      g_value_set_enum (value, self->exposure);
      break;
    case PROP_STATE:
      g_value_set_enum (value, self->state);
      break;
    case PROP_LAST_ERROR:
      g_value_set_string (value, self->last_error);
      break;
    case PROP_BYTES_IN:
      g_value_set_uint64 (value, self->bytes_in);
      break;
    case PROP_BYTES_OUT:
      g_value_set_uint64 (value, self->bytes_out);
      break;
    case PROP_LATENCY_US:
      g_value_set_int64 (value, self->latency_us);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
zlt_node_tunnel_dispose (GObject *object)
{
  ZltNodeTunnel *self = ZLT_NODE_TUNNEL (object);

  zlt_node_tunnel_deactivate (self);
  G_OBJECT_CLASS (zlt_node_tunnel_parent_class)->dispose (object);
}

static void
zlt_node_tunnel_finalize (GObject *object)
{
  ZltNodeTunnel *self = ZLT_NODE_TUNNEL (object);

  g_free (self->name);
  g_free (self->service_name);
  g_free (self->from);
  g_free (self->to);
  g_free (self->server);
  g_free (self->token_file);
  g_clear_pointer (&self->agent_keys, g_key_file_unref);
  g_free (self->fingerprint);
  g_free (self->token_name);
  g_free (self->last_error);
  G_OBJECT_CLASS (zlt_node_tunnel_parent_class)->finalize (object);
}

static void
zlt_node_tunnel_class_init (ZltNodeTunnelClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  const GParamFlags ro = G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS;

  object_class->get_property = zlt_node_tunnel_get_property;
  object_class->dispose = zlt_node_tunnel_dispose;
  object_class->finalize = zlt_node_tunnel_finalize;

  /**
   * ZltNodeTunnel:name:
   * The tunnel's name, NAME of its `[node:NAME]` group.
   */
  props[PROP_NAME] = g_param_spec_string ("name", NULL, NULL, NULL, ro);
  /**
   * ZltNodeTunnel:from:
   * The node that runs the agent.
   */
  props[PROP_FROM] = g_param_spec_string ("from", NULL, NULL, NULL, ro);
  /**
   * ZltNodeTunnel:to:
   * The node whose server the tunnel ends at.
   */
  props[PROP_TO] = g_param_spec_string ("to", NULL, NULL, NULL, ro);
  /**
   * ZltNodeTunnel:local-port:
   * The port of the service on the `from` node.
   */
  props[PROP_LOCAL_PORT] = g_param_spec_uint ("local-port", NULL, NULL, 0, G_MAXUINT16, 0, ro);
  /**
   * ZltNodeTunnel:remote-port:
   * The public port asked for on the `to` node; 0 for any.
   */
  props[PROP_REMOTE_PORT] = g_param_spec_uint ("remote-port", NULL, NULL, 0, G_MAXUINT16, 0, ro);
  /**
   * ZltNodeTunnel:protocol:
   * TCP or UDP.
   */
  props[PROP_PROTOCOL]
      = g_param_spec_enum ("protocol", NULL, NULL, ZLT_TYPE_PROTOCOL, ZLT_PROTOCOL_TCP, ro);
  /**
   * ZltNodeTunnel:exposure:
   * Whether "node-NAME" gets a public port on the `to` node or is internal.
   */
  props[PROP_EXPOSURE]
      = g_param_spec_enum ("exposure", NULL, NULL, ZLT_TYPE_EXPOSE, ZLT_EXPOSE_PUBLIC, ro);
  /**
   * ZltNodeTunnel:state:
   * Where the tunnel stands on this node.
   */
  props[PROP_STATE] = g_param_spec_enum ("state", NULL, NULL, ZLT_TYPE_TUNNEL_STATE,
                                         ZLT_TUNNEL_STATE_PENDING, ro);
  /**
   * ZltNodeTunnel:last-error:
   * The last failure, for people; %NULL when none.
   */
  props[PROP_LAST_ERROR] = g_param_spec_string ("last-error", NULL, NULL, NULL, ro);
  /**
   * ZltNodeTunnel:bytes-in:
   * Bytes received through the tunnel.
   */
  props[PROP_BYTES_IN] = g_param_spec_uint64 ("bytes-in", NULL, NULL, 0, G_MAXUINT64, 0, ro);
  /**
   * ZltNodeTunnel:bytes-out:
   * Bytes sent through the tunnel.
   */
  props[PROP_BYTES_OUT] = g_param_spec_uint64 ("bytes-out", NULL, NULL, 0, G_MAXUINT64, 0, ro);
  /**
   * ZltNodeTunnel:latency-us:
   * The round trip of the last heartbeat in µs; -1 before the first, and on the inbound
   * side.
   */
  props[PROP_LATENCY_US] = g_param_spec_int64 ("latency-us", NULL, NULL, -1, G_MAXINT64, -1, ro);
  g_object_class_install_properties (object_class, N_PROPS, props);
}

static void
zlt_node_tunnel_init (ZltNodeTunnel *self)
{
  self->state = ZLT_TUNNEL_STATE_PENDING;
  self->latency_us = -1;
}

/* ---- the definition ---- */

/**
 * zlt_node_name_is_valid:
 * @name: (nullable): a node name
 *
 * Returns: whether @name is a node name: 1 to 64 ASCII letters, digits, `-`, `_` or `.`
 */
gboolean
zlt_node_name_is_valid (const char *name)
{
  gsize len;

  if (name == NULL)
    return FALSE;
  len = strlen (name);
  if (len == 0 || len > 64)
    return FALSE;
  for (const char *p = name; *p != '\0'; p++)
    if (!g_ascii_isalnum (*p) && *p != '-' && *p != '_' && *p != '.')
      return FALSE;
  return TRUE;
}

static char *
definition_fingerprint (GKeyFile *kf, const char *group)
{
  g_autoptr (GString) text = g_string_new (NULL);

  for (guint i = 0; node_keys[i] != NULL; i++)
    {
      g_autofree char *value = g_key_file_get_value (kf, group, node_keys[i], NULL);

      if (value != NULL)
        g_string_append_printf (text, "%s=%s\n", node_keys[i], g_strstrip (value));
    }
  return g_string_free (g_steal_pointer (&text), FALSE);
}

/**
 * zlt_node_tunnel_new_from_keyfile:
 * @keyfile: a config
 * @group: the group, `node:NAME`
 * @base_dir: (nullable): where relative paths start (%NULL: the working directory)
 * @error: return location for a #GError
 *
 * Reads a `[node:NAME]` group.
 *
 * Returns: (transfer full): the definition, or %NULL with %ZLT_ERROR_INVALID_CONFIG
 *   naming the group and key
 */
ZltNodeTunnel *
zlt_node_tunnel_new_from_keyfile (GKeyFile *kf, const char *group, const char *base_dir,
                                  GError **error)
{
  g_autoptr (ZltNodeTunnel) self = NULL;
  g_autoptr (GError) error_local = NULL;
  g_autofree char *protocol = NULL;
  g_autofree char *exposure = NULL;
  guint local_port = 0, remote_port = 0, hb = 0;
  gdouble backoff = 0;

  g_return_val_if_fail (kf != NULL, NULL);
  g_return_val_if_fail (group != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  self = g_object_new (ZLT_TYPE_NODE_TUNNEL, NULL);
  if (!g_str_has_prefix (group, ZLT_NODE_CONFIG_PREFIX)
      || !zlt_service_name_is_valid (group + strlen (ZLT_NODE_CONFIG_PREFIX))
      || strlen (group + strlen (ZLT_NODE_CONFIG_PREFIX)) > ZLT_NODE_NAME_MAX)
    {
      zlt_config_error (error, group, NULL,
                        _ ("a node tunnel name is 1-%u letters, digits, ‘-’ or ‘_’"),
                        (guint) ZLT_NODE_NAME_MAX);
      return NULL;
    }
  if (!zlt_config_check_keys (kf, group, node_keys, error))
    return NULL;
  self->name = g_strdup (group + strlen (ZLT_NODE_CONFIG_PREFIX));
  self->service_name = g_strconcat (ZLT_NODE_SERVICE_PREFIX, self->name, NULL);

  self->from = zlt_config_get_string (kf, group, "from", &error_local);
  if (error_local == NULL)
    self->to = zlt_config_get_string (kf, group, "to", &error_local);
  if (error_local == NULL)
    self->server = zlt_config_get_string (kf, group, "server", &error_local);
  if (error_local == NULL)
    self->token_file = zlt_config_get_string (kf, group, "token-file", &error_local);
  if (error_local == NULL)
    protocol = zlt_config_get_string (kf, group, "protocol", &error_local);
  if (error_local == NULL)
    exposure = zlt_config_get_string (kf, group, "exposure", &error_local);
  if (error_local != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&error_local));
      return NULL;
    }
  if (self->from == NULL || !zlt_node_name_is_valid (self->from))
    {
      zlt_config_error (error, group, "from",
                        self->from == NULL
                            ? _ ("required: the node the tunnel starts from")
                            : _ ("a node name is 1-64 letters, digits, ‘-’, ‘_’ or ‘.’"));
      return NULL;
    }
  if (self->to == NULL || !zlt_node_name_is_valid (self->to))
    {
      zlt_config_error (error, group, "to",
                        self->to == NULL
                            ? _ ("required: the node the tunnel leads to")
                            : _ ("a node name is 1-64 letters, digits, ‘-’, ‘_’ or ‘.’"));
      return NULL;
    }
  if (g_str_equal (self->from, self->to))
    {
      zlt_config_error (error, group, "to", _ ("must differ from ‘from’"));
      return NULL;
    }
  if (self->token_file == NULL)
    {
      zlt_config_error (error, group, "token-file",
                        _ ("required: a file with the tunnel's token, the same on both nodes"));
      return NULL;
    }
  self->token_file = zlt_config_resolve_path (base_dir, self->token_file);
  if (!g_key_file_has_key (kf, group, "local-port", NULL))
    {
      zlt_config_error (error, group, "local-port", _ ("required"));
      return NULL;
    }
  if (!zlt_config_get_uint (kf, group, "local-port", 0, 1, G_MAXUINT16, &local_port, error)
      || !zlt_config_get_uint (kf, group, "remote-port", 0, 0, G_MAXUINT16, &remote_port, error))
    return NULL;
  self->local_port = local_port;
  self->remote_port = remote_port;
  if (protocol != NULL && !zlt_protocol_from_string (protocol, &self->protocol))
    {
      zlt_config_error (error, group, "protocol", _ ("must be tcp or udp, not ‘%s’"), protocol);
      return NULL;
    }
  if (exposure == NULL || g_str_equal (exposure, "public"))
    self->exposure = ZLT_EXPOSE_PUBLIC;
  else if (g_str_equal (exposure, "internal"))
    self->exposure = ZLT_EXPOSE_INTERNAL;
  else
    {
      zlt_config_error (error, group, "exposure", _ ("must be public or internal, not ‘%s’"),
                        exposure);
      return NULL;
    }
  /* checked here so a typo shows on every node, not only on the outbound one */
  if (!zlt_config_get_uint (kf, group, "heartbeat-interval", 15, 1, 3600, &hb, error)
      || !zlt_config_get_uint (kf, group, "heartbeat-timeout", 30, 1, 86400, &hb, error)
      || !zlt_config_get_double (kf, group, "backoff-min", 1.0, 0.001, 86400.0, &backoff, error)
      || !zlt_config_get_double (kf, group, "backoff-max", 60.0, 0.001, 86400.0, &backoff, error))
    return NULL;

  self->agent_keys = g_key_file_new ();
  for (guint i = 0; agent_passthrough_keys[i] != NULL; i++)
    {
      g_autofree char *value
          = zlt_config_get_string (kf, group, agent_passthrough_keys[i], &error_local);

      if (error_local != NULL)
        {
          g_propagate_error (error, g_steal_pointer (&error_local));
          return NULL;
        }
      if (value == NULL)
        continue;
      if (g_str_equal (agent_passthrough_keys[i], "tls-ca-file"))
        value = zlt_config_resolve_path (base_dir, g_steal_pointer (&value));
      g_key_file_set_string (self->agent_keys, ZLT_CLIENT_CONFIG_GROUP, agent_passthrough_keys[i],
                             value);
    }
  self->fingerprint = definition_fingerprint (kf, group);
  {
    /* resolved paths are part of the definition too */
    char *full = g_strconcat (self->fingerprint, "token-file-path=", self->token_file, "\n", NULL);

    g_free (self->fingerprint);
    self->fingerprint = full;
  }
  return g_steal_pointer (&self);
}

/* ---- running it ---- */

static gboolean
activate_outbound (ZltNodeTunnel *self, ZltPluginLoader *loader, GError **error)
{
  g_autoptr (GKeyFile) kf = g_key_file_new ();
  g_autoptr (ZltClientConfig) config = NULL;
  g_autoptr (GError) error_local = NULL;
  g_autofree char *group = g_strconcat (ZLT_CLIENT_CONFIG_SERVICE_PREFIX, self->service_name, NULL);
  g_auto (GStrv) keys = NULL;

  if (self->server == NULL)
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                   _ ("[%s%s] server: required on node %s (the URL of node %s’s server)"),
                   ZLT_NODE_CONFIG_PREFIX, self->name, self->from, self->to);
      return FALSE;
    }
  g_key_file_set_string (kf, ZLT_CLIENT_CONFIG_GROUP, "server", self->server);
  g_key_file_set_string (kf, ZLT_CLIENT_CONFIG_GROUP, "token-file", self->token_file);
  keys = g_key_file_get_keys (self->agent_keys, ZLT_CLIENT_CONFIG_GROUP, NULL, NULL);
  for (guint i = 0; keys != NULL && keys[i] != NULL; i++)
    {
      g_autofree char *value
          = g_key_file_get_string (self->agent_keys, ZLT_CLIENT_CONFIG_GROUP, keys[i], NULL);
      g_key_file_set_string (kf, ZLT_CLIENT_CONFIG_GROUP, keys[i], value);
    }
  g_key_file_set_string (kf, group, "protocol", zlt_protocol_to_string (self->protocol));
  g_key_file_set_string (kf, group, "local-host", "127.0.0.1");
  g_key_file_set_integer (kf, group, "local-port", self->local_port);
  g_key_file_set_integer (kf, group, "remote-port", self->remote_port);
  g_key_file_set_string (kf, group, "expose",
                         self->exposure == ZLT_EXPOSE_INTERNAL ? "internal" : "public");

  config = zlt_client_config_new_from_keyfile (kf, &error_local);
  if (config != NULL)
    self->agent = zlt_agent_new (config, loader, &error_local);
  if (self->agent == NULL)
    {
      g_set_error (error, error_local->domain, error_local->code, _ ("node tunnel %s: %s"),
                   self->name, error_local->message);
      return FALSE;
    }
  g_signal_connect (self->agent, "notify::state", G_CALLBACK (on_agent_notify), self);
  g_signal_connect (self->agent, "notify::last-error", G_CALLBACK (on_agent_notify), self);
  g_signal_connect (self->agent, "notify::fatal", G_CALLBACK (on_agent_notify), self);
  g_signal_connect (self->agent, "register-failed", G_CALLBACK (on_agent_register_failed), self);
  g_signal_connect (self->agent, "registered", G_CALLBACK (on_agent_registered), self);
  g_signal_connect (zlt_agent_get_tunnel (self->agent), "notify::bytes-in",
                    G_CALLBACK (on_tunnel_bytes), self);
  g_signal_connect (zlt_agent_get_tunnel (self->agent), "notify::bytes-out",
                    G_CALLBACK (on_tunnel_bytes), self);
  return TRUE;
}

/**
 * zlt_node_tunnel_refresh_token:
 * @self: a node tunnel
 * @error: return location for a #GError
 *
 * Inbound side: re-reads the token file and registers its hash again.
 *
 * Returns: %TRUE on success
 */
gboolean
zlt_node_tunnel_refresh_token (ZltNodeTunnel *self, GError **error)
{
  g_autofree char *token = NULL;
  guint8 hash[ZLT_HASH_SIZE];
  const char *services[] = { self->service_name, NULL };
  gboolean ok;

  g_return_val_if_fail (ZLT_IS_NODE_TUNNEL (self), FALSE);
  g_return_val_if_fail (self->direction == ZLT_NODE_DIRECTION_INBOUND, FALSE);

  token = read_token (self->token_file, error);
  if (token == NULL)
    {
      g_prefix_error (error, _ ("node tunnel %s: "), self->name);
      return FALSE;
    }
  zlt_token_hash_raw (token, hash);
  explicit_bzero (token, strlen (token));
  ok = zlt_validator_add_token (self->validator, self->token_name, hash, services, 0, error);
  explicit_bzero (hash, sizeof (hash));
  if (!ok)
    g_prefix_error (error, _ ("node tunnel %s: "), self->name);
  return ok;
}

/**
 * zlt_node_tunnel_activate:
 * @self: a node tunnel
 * @node_name: this node's name
 * @loader: (nullable): the plugin loader the outbound side's agent takes its transports
 *   from
 * @validator: (nullable): the validator the inbound side registers the token with
 * @error: return location for a #GError
 *
 * Decides the direction for @node_name: outbound builds the agent (@loader must then be
 * given), inbound reads the token file and adds its hash to @validator (which must then
 * be given), and a node that is neither end only shows the definition.
 * [class@Zlt.NodeManager] calls it.
 *
 * Returns: %TRUE on success
 */
gboolean
zlt_node_tunnel_activate (ZltNodeTunnel *self, const char *node_name, ZltPluginLoader *loader,
                          ZltValidator *validator, GError **error)
{
  g_return_val_if_fail (ZLT_IS_NODE_TUNNEL (self), FALSE);
  g_return_val_if_fail (node_name != NULL, FALSE);
  g_return_val_if_fail (self->direction == ZLT_NODE_DIRECTION_NONE && self->agent == NULL
                            && self->validator == NULL,
                        FALSE);

  if (g_str_equal (node_name, self->from))
    {
      g_return_val_if_fail (ZLT_IS_PLUGIN_LOADER (loader), FALSE);
      if (!activate_outbound (self, loader, error))
        return FALSE;
      self->direction = ZLT_NODE_DIRECTION_OUTBOUND;
      sync_from_agent (self);
      return TRUE;
    }
  if (g_str_equal (node_name, self->to))
    {
      if (validator == NULL)
        {
          g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                       _ ("node tunnel %s leads to this node (%s), which runs no server role"),
                       self->name, node_name);
          return FALSE;
        }
      self->validator = g_object_ref (validator);
      self->token_name = g_strconcat (ZLT_NODE_TOKEN_PREFIX, self->name, NULL);
      self->direction = ZLT_NODE_DIRECTION_INBOUND;
      if (!zlt_node_tunnel_refresh_token (self, error))
        {
          self->direction = ZLT_NODE_DIRECTION_NONE;
          g_clear_object (&self->validator);
          g_clear_pointer (&self->token_name, g_free);
          return FALSE;
        }
      return TRUE;
    }
  /* neither end: shown, nothing to do */
  return TRUE;
}

/**
 * zlt_node_tunnel_deactivate:
 * @self: a node tunnel
 *
 * Stops the agent or forgets the token, undoing zlt_node_tunnel_activate().
 */
void
zlt_node_tunnel_deactivate (ZltNodeTunnel *self)
{
  g_return_if_fail (ZLT_IS_NODE_TUNNEL (self));

  zlt_node_tunnel_stop (self);
  zlt_node_tunnel_follow_tunnel (self, NULL);
  if (self->agent != NULL)
    {
      g_signal_handlers_disconnect_by_data (zlt_agent_get_tunnel (self->agent), self);
      g_signal_handlers_disconnect_by_data (self->agent, self);
      g_clear_object (&self->agent);
    }
  if (self->validator != NULL)
    {
      g_autoptr (GError) error = NULL;

      if (!zlt_validator_remove_token (self->validator, self->token_name, &error))
        g_debug ("node tunnel %s: %s", self->name, error->message);
      g_clear_object (&self->validator);
    }
  g_clear_pointer (&self->token_name, g_free);
  self->direction = ZLT_NODE_DIRECTION_NONE;
}

/**
 * zlt_node_tunnel_start:
 * @self: a node tunnel
 *
 * Starts the outbound side's agent.
 */
void
zlt_node_tunnel_start (ZltNodeTunnel *self)
{
  g_return_if_fail (ZLT_IS_NODE_TUNNEL (self));

  if (self->running)
    return;
  self->running = TRUE;
  if (self->agent != NULL)
    zlt_agent_start (self->agent);
}

/**
 * zlt_node_tunnel_stop:
 * @self: a node tunnel
 *
 * Stops the outbound side's agent.
 */
void
zlt_node_tunnel_stop (ZltNodeTunnel *self)
{
  g_return_if_fail (ZLT_IS_NODE_TUNNEL (self));

  if (!self->running)
    return;
  self->running = FALSE;
  zlt_source_clear (&self->latency_timer);
  if (self->agent != NULL)
    {
      zlt_agent_stop (self->agent);
      sync_from_agent (self);
    }
}

/**
 * zlt_node_tunnel_follow_tunnel:
 * @self: a node tunnel
 * @tunnel: (nullable): the server's tunnel for the token, or %NULL
 *
 * Inbound side: the status follows @tunnel, the server's tunnel authenticated with this
 * node tunnel's token.
 */
void
zlt_node_tunnel_follow_tunnel (ZltNodeTunnel *self, ZltTunnel *tunnel)
{
  g_return_if_fail (ZLT_IS_NODE_TUNNEL (self));
  g_return_if_fail (tunnel == NULL || ZLT_IS_TUNNEL (tunnel));

  if (self->followed == tunnel)
    return;
  if (self->followed != NULL)
    {
      g_signal_handlers_disconnect_by_data (self->followed, self);
      g_clear_object (&self->followed);
      if (self->direction == ZLT_NODE_DIRECTION_INBOUND)
        set_state (self, ZLT_TUNNEL_STATE_DISCONNECTED);
    }
  if (tunnel == NULL)
    return;
  self->followed = g_object_ref (tunnel);
  g_signal_connect (tunnel, "notify::state", G_CALLBACK (on_followed_notify), self);
  g_signal_connect (tunnel, "notify::bytes-in", G_CALLBACK (on_followed_notify), self);
  g_signal_connect (tunnel, "notify::bytes-out", G_CALLBACK (on_followed_notify), self);
  sync_from_followed (self);
}

/**
 * zlt_node_tunnel_get_followed_tunnel:
 * @self: a node tunnel
 *
 * Returns: (nullable) (transfer none): the server's tunnel the inbound side follows
 */
ZltTunnel *
zlt_node_tunnel_get_followed_tunnel (ZltNodeTunnel *self)
{
  g_return_val_if_fail (ZLT_IS_NODE_TUNNEL (self), NULL);
  return self->followed;
}

/* ---- getters ---- */

/**
 * zlt_node_tunnel_get_name:
 * @self: a node tunnel
 *
 * Returns: the tunnel's name
 */
const char *
zlt_node_tunnel_get_name (ZltNodeTunnel *self)
{
  g_return_val_if_fail (ZLT_IS_NODE_TUNNEL (self), NULL);
  return self->name;
}

/**
 * zlt_node_tunnel_get_from:
 * @self: a node tunnel
 *
 * Returns: the node that runs the agent
 */
const char *
zlt_node_tunnel_get_from (ZltNodeTunnel *self)
{
  g_return_val_if_fail (ZLT_IS_NODE_TUNNEL (self), NULL);
  return self->from;
}

/**
 * zlt_node_tunnel_get_to:
 * @self: a node tunnel
 *
 * Returns: the node whose server the tunnel ends at
 */
const char *
zlt_node_tunnel_get_to (ZltNodeTunnel *self)
{
  g_return_val_if_fail (ZLT_IS_NODE_TUNNEL (self), NULL);
  return self->to;
}

/**
 * zlt_node_tunnel_get_server:
 * @self: a node tunnel
 *
 * Returns: (nullable): the URL of the `to` node's server; only the outbound side needs
 *   it
 */
const char *
zlt_node_tunnel_get_server (ZltNodeTunnel *self)
{
  g_return_val_if_fail (ZLT_IS_NODE_TUNNEL (self), NULL);
  return self->server;
}

/**
 * zlt_node_tunnel_get_token_file:
 * @self: a node tunnel
 *
 * Returns: the absolute path of the tunnel's token file
 */
const char *
zlt_node_tunnel_get_token_file (ZltNodeTunnel *self)
{
  g_return_val_if_fail (ZLT_IS_NODE_TUNNEL (self), NULL);
  return self->token_file;
}

/**
 * zlt_node_tunnel_get_local_port:
 * @self: a node tunnel
 *
 * Returns: the port of the service on the `from` node
 */
guint16
zlt_node_tunnel_get_local_port (ZltNodeTunnel *self)
{
  g_return_val_if_fail (ZLT_IS_NODE_TUNNEL (self), 0);
  return self->local_port;
}

/**
 * zlt_node_tunnel_get_remote_port:
 * @self: a node tunnel
 *
 * Returns: the public port asked for on the `to` node; 0 for any
 */
guint16
zlt_node_tunnel_get_remote_port (ZltNodeTunnel *self)
{
  g_return_val_if_fail (ZLT_IS_NODE_TUNNEL (self), 0);
  return self->remote_port;
}

/**
 * zlt_node_tunnel_get_protocol:
 * @self: a node tunnel
 *
 * Returns: the service's protocol
 */
ZltProtocol
zlt_node_tunnel_get_protocol (ZltNodeTunnel *self)
{
  g_return_val_if_fail (ZLT_IS_NODE_TUNNEL (self), ZLT_PROTOCOL_TCP);
  return self->protocol;
}

/**
 * zlt_node_tunnel_get_exposure:
 * @self: a node tunnel
 *
 * Returns: whether "node-NAME" gets a public port or is internal
 */
ZltExpose
zlt_node_tunnel_get_exposure (ZltNodeTunnel *self)
{
  g_return_val_if_fail (ZLT_IS_NODE_TUNNEL (self), ZLT_EXPOSE_PUBLIC);
  return self->exposure;
}

/**
 * zlt_node_tunnel_get_service_name:
 * @self: a node tunnel
 *
 * Returns: the service the tunnel exposes: "node-NAME"
 */
const char *
zlt_node_tunnel_get_service_name (ZltNodeTunnel *self)
{
  g_return_val_if_fail (ZLT_IS_NODE_TUNNEL (self), NULL);
  return self->service_name;
}

/**
 * zlt_node_tunnel_equal:
 * @self: a node tunnel
 * @other: another node tunnel
 *
 * Returns: whether the two have the same definition (every key, not the status)
 */
gboolean
zlt_node_tunnel_equal (ZltNodeTunnel *self, ZltNodeTunnel *other)
{
  g_return_val_if_fail (ZLT_IS_NODE_TUNNEL (self), FALSE);
  g_return_val_if_fail (ZLT_IS_NODE_TUNNEL (other), FALSE);
  return g_str_equal (self->name, other->name)
         && g_str_equal (self->fingerprint, other->fingerprint);
}

/**
 * zlt_node_tunnel_get_direction:
 * @self: a node tunnel
 *
 * Returns: which side of the tunnel this node is, once activated
 */
ZltNodeDirection
zlt_node_tunnel_get_direction (ZltNodeTunnel *self)
{
  g_return_val_if_fail (ZLT_IS_NODE_TUNNEL (self), ZLT_NODE_DIRECTION_NONE);
  return self->direction;
}

/**
 * zlt_node_tunnel_get_state:
 * @self: a node tunnel
 *
 * Returns: where the tunnel stands on this node
 */
ZltTunnelState
zlt_node_tunnel_get_state (ZltNodeTunnel *self)
{
  g_return_val_if_fail (ZLT_IS_NODE_TUNNEL (self), ZLT_TUNNEL_STATE_FAILED);
  return self->state;
}

/**
 * zlt_node_tunnel_get_last_error:
 * @self: a node tunnel
 *
 * Returns: (nullable): the last failure, for people
 */
const char *
zlt_node_tunnel_get_last_error (ZltNodeTunnel *self)
{
  g_return_val_if_fail (ZLT_IS_NODE_TUNNEL (self), NULL);
  return self->last_error;
}

/**
 * zlt_node_tunnel_get_bytes_in:
 * @self: a node tunnel
 *
 * Returns: bytes received through the tunnel
 */
guint64
zlt_node_tunnel_get_bytes_in (ZltNodeTunnel *self)
{
  g_return_val_if_fail (ZLT_IS_NODE_TUNNEL (self), 0);
  return self->bytes_in;
}

/**
 * zlt_node_tunnel_get_bytes_out:
 * @self: a node tunnel
 *
 * Returns: bytes sent through the tunnel
 */
guint64
zlt_node_tunnel_get_bytes_out (ZltNodeTunnel *self)
{
  g_return_val_if_fail (ZLT_IS_NODE_TUNNEL (self), 0);
  return self->bytes_out;
}

/**
 * zlt_node_tunnel_get_latency_us:
 * @self: a node tunnel
 *
 * Returns: the round trip of the last heartbeat in µs; -1 before the first (and on the
 *   inbound side)
 */
gint64
zlt_node_tunnel_get_latency_us (ZltNodeTunnel *self)
{
  g_return_val_if_fail (ZLT_IS_NODE_TUNNEL (self), -1);
  return self->latency_us;
}

/**
 * zlt_node_tunnel_get_agent:
 * @self: a node tunnel
 *
 * Returns: (nullable) (transfer none): the outbound side's agent
 */
ZltAgent *
zlt_node_tunnel_get_agent (ZltNodeTunnel *self)
{
  g_return_val_if_fail (ZLT_IS_NODE_TUNNEL (self), NULL);
  return self->agent;
}
