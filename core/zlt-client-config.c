/* zlt-client-config.c: the [agent] and [service:<name>] parts of the config */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gi18n-lib.h>
#include <glib/gstdio.h>

#include "zlt-config-private.h"
#include "zlt-error.h"
#include "zlt-host-sniff.h"
#include "zlt-client-config.h"
#include "zlt-rate-bucket.h"
#include "zlt-tls.h"
#include "zlt-util.h" /* zlt_config_directory, zlt_parse_rate */

#define GROUP ZLT_CLIENT_CONFIG_GROUP
#define TOKEN_MAX_SIZE 4096

struct _ZltClientConfig
{
  GObject parent_instance;

  GKeyFile *keyfile; /* private copy of the source, for the groups others own */
  char *server_url;  /* normalised */
  char *server_host;
  guint16 server_port;
  char *server_path;
  gboolean use_tls;
  char *token_file;
  char *token_env;
  char *tls_ca_file;
  char *tls_pinned_sha256; /* lowercase hex */
  gboolean tls_insecure;
  gboolean legacy_auth;
  gboolean retry_forever;
  guint heartbeat_interval;
  guint heartbeat_timeout;
  gdouble backoff_min;
  gdouble backoff_max;
  gdouble fatal_retry;
  guint standby_connections;
  GPtrArray *services; /* ZltServiceConfig, in config order */
};

/**
 * ZltClientConfig:
 * The `[agent]` group and the `[service:NAME]` groups of a config
 * (zlayer-tunnel.conf(5)), checked: every key known, every value in range, errors
 * naming the group and key. The services may change at run time
 * (zlt_client_config_add_service()); the rest is fixed once made.
 */

G_DEFINE_FINAL_TYPE (ZltClientConfig, zlt_client_config, G_TYPE_OBJECT)

static const char *const agent_keys[] = {
  "server",       "token-file",  "token-env",     "tls-ca-file",         "tls-pinned-sha256",
  "tls-insecure", "legacy-auth", "retry-forever", "heartbeat-interval",  "heartbeat-timeout",
  "backoff-min",  "backoff-max", "fatal-retry",   "standby-connections", /* PROTOCOL-v2.md §8 */
  NULL,
};

static const char *const service_keys[] = {
  "protocol",      "local-host",      "local-port",   "remote-port",
  "expose",        "max-connections", "idle-timeout", "proxy-protocol",
  "rate-limit-in", "rate-limit-out",  "hostname",     NULL,
};

/* ZltServiceConfig */

G_DEFINE_BOXED_TYPE (ZltServiceConfig, zlt_service_config, zlt_service_config_copy,
                     zlt_service_config_free)

/**
 * zlt_service_config_new:
 * @local_host: (nullable): NULL = 127.0.0.1
 *
 * Returns: (transfer full): a service description; check it with
 *   zlt_service_config_validate()
 */
ZltServiceConfig *
zlt_service_config_new (const char *name, ZltProtocol protocol, const char *local_host,
                        guint16 local_port, guint16 remote_port, ZltExpose expose)
{
  ZltServiceConfig *service;

  g_return_val_if_fail (name != NULL, NULL);

  service = g_new0 (ZltServiceConfig, 1);
  service->name = g_strdup (name);
  service->protocol = protocol;
  service->local_host = g_strdup (local_host != NULL ? local_host : "127.0.0.1");
  service->local_port = local_port;
  service->remote_port = remote_port;
  service->expose = expose;
  return service;
}

/**
 * zlt_service_config_copy:
 * @service: a service config
 *
 * Returns: (transfer full): a copy of @service
 */
ZltServiceConfig *
zlt_service_config_copy (const ZltServiceConfig *service)
{
  ZltServiceConfig *copy;

  g_return_val_if_fail (service != NULL, NULL);

  copy = zlt_service_config_new (service->name, service->protocol, service->local_host,
                                 service->local_port, service->remote_port, service->expose);
  copy->max_connections = service->max_connections;
  copy->idle_timeout = service->idle_timeout;
  copy->proxy_protocol = service->proxy_protocol;
  copy->rate_limit_in = service->rate_limit_in;
  copy->rate_limit_out = service->rate_limit_out;
  copy->hostname = g_strdup (service->hostname);
  return copy;
}

/**
 * zlt_service_config_free:
 * @service: (nullable) (transfer full): a service config
 *
 * Frees @service; %NULL is ignored.
 */
void
zlt_service_config_free (ZltServiceConfig *service)
{
  if (service == NULL)
    return;
  g_free (service->name);
  g_free (service->local_host);
  g_free (service->hostname);
  g_free (service);
}

/**
 * zlt_service_config_validate:
 *
 * Returns: TRUE when the service could be registered as it is; else
 *   %ZLT_ERROR_INVALID_CONFIG naming the field
 */
gboolean
zlt_service_config_validate (const ZltServiceConfig *service, GError **error)
{
  g_return_val_if_fail (service != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!zlt_service_name_is_valid (service->name))
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                   _ ("service name ‘%s’ must be 1 to %u letters, digits, '-' or '_'"),
                   service->name, (guint) ZLT_SERVICE_NAME_MAX);
      return FALSE;
    }
  if (service->protocol != ZLT_PROTOCOL_TCP && service->protocol != ZLT_PROTOCOL_UDP)
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                   _ ("[service:%s] protocol: must be tcp or udp"), service->name);
      return FALSE;
    }
  if (service->local_host == NULL || service->local_host[0] == '\0')
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                   _ ("[service:%s] local-host: must not be empty"), service->name);
      return FALSE;
    }
  if (service->local_port == 0)
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                   _ ("[service:%s] local-port: must be from 1 to 65535"), service->name);
      return FALSE;
    }
  if (service->expose != ZLT_EXPOSE_PUBLIC && service->expose != ZLT_EXPOSE_INTERNAL)
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                   _ ("[service:%s] expose: must be public or internal"), service->name);
      return FALSE;
    }
  if (service->proxy_protocol > ZLT_PROXY_PROTOCOL_V2)
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                   _ ("[service:%s] proxy-protocol: must be none, v1 or v2"), service->name);
      return FALSE;
    }
  /* a header in front of a flow's first datagram only is lost with it, and one in
   * front of every datagram is not what most UDP services read: none (PROTOCOL-v2.md §9) */
  if (service->protocol == ZLT_PROTOCOL_UDP && service->proxy_protocol != ZLT_PROXY_PROTOCOL_NONE)
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                   _ ("[service:%s] proxy-protocol: only tcp services get a PROXY header"),
                   service->name);
      return FALSE;
    }
  if (service->rate_limit_in > ZLT_RATE_BUCKET_MAX_RATE
      || service->rate_limit_out > ZLT_RATE_BUCKET_MAX_RATE)
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                   _ ("[service:%s] rate-limit-in, rate-limit-out: too large"), service->name);
      return FALSE;
    }
  /* a read cut to what the bucket allows would split a datagram */
  if (service->protocol == ZLT_PROTOCOL_UDP
      && (service->rate_limit_in != 0 || service->rate_limit_out != 0))
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                   _ ("[service:%s] rate-limit-in, rate-limit-out: only tcp services are limited"),
                   service->name);
      return FALSE;
    }
  if (service->hostname != NULL)
    {
      g_autofree char *norm = zlt_hostname_normalize (service->hostname, -1);

      if (norm == NULL || !g_str_equal (norm, service->hostname))
        {
          g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                       _ ("[service:%s] hostname: must be a lowercase hostname"), service->name);
          return FALSE;
        }
      if (service->protocol != ZLT_PROTOCOL_TCP || service->remote_port != 0
          || service->expose != ZLT_EXPOSE_PUBLIC)
        {
          g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                       _ ("[service:%s] hostname: only for a public tcp service without "
                          "remote-port"),
                       service->name);
          return FALSE;
        }
    }
  if (service->expose == ZLT_EXPOSE_INTERNAL && service->remote_port != 0)
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                   _ ("[service:%s] remote-port: an internal service has no public port"),
                   service->name);
      return FALSE;
    }
  return TRUE;
}

/* ZltClientConfig */

static void
zlt_client_config_finalize (GObject *object)
{
  ZltClientConfig *self = ZLT_CLIENT_CONFIG (object);

  g_clear_pointer (&self->keyfile, g_key_file_unref);
  g_free (self->server_url);
  g_free (self->server_host);
  g_free (self->server_path);
  g_free (self->token_file);
  g_free (self->token_env);
  g_free (self->tls_ca_file);
  g_free (self->tls_pinned_sha256);
  g_ptr_array_unref (self->services);

  G_OBJECT_CLASS (zlt_client_config_parent_class)->finalize (object);
}

static void
zlt_client_config_class_init (ZltClientConfigClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = zlt_client_config_finalize;
}

static void
zlt_client_config_init (ZltClientConfig *self)
{
  self->services = g_ptr_array_new_with_free_func ((GDestroyNotify) zlt_service_config_free);
}

static gboolean
zlt_client_config_parse_server (ZltClientConfig *self, const char *value, GError **error)
{
  g_autoptr (GUri) uri = NULL;
  g_autoptr (GError) error_local = NULL;
  g_autofree char *scheme = NULL;
  const char *host;
  const char *path;
  gint port;

  uri = g_uri_parse (value, G_URI_FLAGS_NONE, &error_local);
  if (uri == NULL)
    {
      zlt_config_error (error, GROUP, "server", _ ("‘%s’ is not a URL (%s)"), value,
                        error_local->message);
      return FALSE;
    }
  scheme = g_ascii_strdown (g_uri_get_scheme (uri), -1);
  if (g_strcmp0 (scheme, "ws") != 0 && g_strcmp0 (scheme, "wss") != 0)
    {
      zlt_config_error (error, GROUP, "server", _ ("scheme must be ws or wss, not ‘%s’"), scheme);
      return FALSE;
    }
  host = g_uri_get_host (uri);
  if (host == NULL || host[0] == '\0')
    {
      zlt_config_error (error, GROUP, "server", _ ("‘%s’ has no host"), value);
      return FALSE;
    }
  if (g_uri_get_userinfo (uri) != NULL)
    {
      zlt_config_error (error, GROUP, "server",
                        _ ("credentials do not belong in the URL; use token-file or token-env"));
      return FALSE;
    }
  if (g_uri_get_query (uri) != NULL || g_uri_get_fragment (uri) != NULL)
    {
      zlt_config_error (error, GROUP, "server", _ ("‘%s’ must have no query or fragment"), value);
      return FALSE;
    }
  port = g_uri_get_port (uri);
  if (port == 0)
    {
      zlt_config_error (error, GROUP, "server", _ ("port 0 cannot be dialed"));
      return FALSE;
    }
  path = g_uri_get_path (uri);
  if (path[0] == '\0' || g_strcmp0 (path, "/") == 0)
    path = ZLT_CLIENT_CONFIG_DEFAULT_PATH;

  self->use_tls = g_strcmp0 (scheme, "wss") == 0;
  self->server_host = g_strdup (host);
  self->server_port = port > 0 ? port : (self->use_tls ? 443 : 80);
  self->server_path = g_strdup (path);
  self->server_url = g_uri_join (G_URI_FLAGS_NONE, scheme, NULL, host, port, path, NULL, NULL);
  return TRUE;
}

static gboolean
zlt_client_config_env_name_is_valid (const char *name)
{
  if (!g_ascii_isalpha (name[0]) && name[0] != '_')
    return FALSE;
  for (const char *p = name; *p != '\0'; p++)
    {
      if (!g_ascii_isalnum (*p) && *p != '_')
        return FALSE;
    }
  return TRUE;
}

static gboolean
zlt_client_config_parse_agent (ZltClientConfig *self, GKeyFile *kf, const char *base_dir,
                               GError **error)
{
  g_autofree char *server = NULL;

  if (g_key_file_has_key (kf, GROUP, "token", NULL))
    {
      zlt_config_error (error, GROUP, "token",
                        _ ("a token never goes in the config; use token-file or token-env"));
      return FALSE;
    }
  if (!zlt_config_check_keys (kf, GROUP, agent_keys, error))
    return FALSE;

  /* server */
  server = zlt_config_get_string (kf, GROUP, "server", error);
  if (server == NULL)
    {
      if (*error == NULL)
        zlt_config_error (error, GROUP, "server", _ ("required, e.g. wss://tunnel.example.com"));
      return FALSE;
    }
  if (!zlt_client_config_parse_server (self, server, error))
    return FALSE;

  /* token source: exactly one */
  self->token_file = zlt_config_get_string (kf, GROUP, "token-file", error);
  if (*error != NULL)
    return FALSE;
  self->token_env = zlt_config_get_string (kf, GROUP, "token-env", error);
  if (*error != NULL)
    return FALSE;
  if (self->token_file == NULL && self->token_env == NULL)
    {
      zlt_config_error (error, GROUP, NULL, _ ("set token-file or token-env"));
      return FALSE;
    }
  if (self->token_file != NULL && self->token_env != NULL)
    {
      zlt_config_error (error, GROUP, "token-env", _ ("set token-file or token-env, not both"));
      return FALSE;
    }
  if (self->token_env != NULL && !zlt_client_config_env_name_is_valid (self->token_env))
    {
      zlt_config_error (error, GROUP, "token-env", _ ("‘%s’ is not an environment variable name"),
                        self->token_env);
      return FALSE;
    }
  self->token_file = zlt_config_resolve_path (base_dir, self->token_file);

  /* TLS */
  self->tls_ca_file = zlt_config_get_string (kf, GROUP, "tls-ca-file", error);
  if (*error != NULL)
    return FALSE;
  self->tls_ca_file = zlt_config_resolve_path (base_dir, self->tls_ca_file);
  self->tls_pinned_sha256 = zlt_config_get_string (kf, GROUP, "tls-pinned-sha256", error);
  if (*error != NULL)
    return FALSE;
  if (self->tls_pinned_sha256 != NULL)
    {
      g_autoptr (GError) pin_error = NULL;
      char *pin = zlt_tls_parse_pin (self->tls_pinned_sha256, &pin_error);

      if (pin == NULL)
        {
          zlt_config_error (error, GROUP, "tls-pinned-sha256", "%s", pin_error->message);
          return FALSE;
        }
      g_free (self->tls_pinned_sha256);
      self->tls_pinned_sha256 = pin;
    }
  if (!zlt_config_get_bool (kf, GROUP, "tls-insecure", FALSE, &self->tls_insecure, error)
      || !zlt_config_get_bool (kf, GROUP, "legacy-auth", FALSE, &self->legacy_auth, error)
      || !zlt_config_get_bool (kf, GROUP, "retry-forever", FALSE, &self->retry_forever, error))
    return FALSE;
  if (!self->use_tls)
    {
      const char *key = NULL;

      if (self->tls_ca_file != NULL)
        key = "tls-ca-file";
      else if (self->tls_pinned_sha256 != NULL)
        key = "tls-pinned-sha256";
      else if (self->tls_insecure)
        key = "tls-insecure";
      if (key != NULL)
        {
          zlt_config_error (error, GROUP, key, _ ("only applies to a wss:// server"));
          return FALSE;
        }
    }

  /* timers */
  if (!zlt_config_get_uint (kf, GROUP, "heartbeat-interval", 15, 1, 3600, &self->heartbeat_interval,
                            error)
      || !zlt_config_get_uint (kf, GROUP, "heartbeat-timeout", 30, 1, 86400,
                               &self->heartbeat_timeout, error))
    return FALSE;
  if (self->heartbeat_timeout <= self->heartbeat_interval)
    {
      zlt_config_error (error, GROUP, "heartbeat-timeout",
                        _ ("must be greater than heartbeat-interval (%u), not %u"),
                        self->heartbeat_interval, self->heartbeat_timeout);
      return FALSE;
    }
  if (!zlt_config_get_double (kf, GROUP, "backoff-min", 1.0, 0.001, 86400.0, &self->backoff_min,
                              error)
      || !zlt_config_get_double (kf, GROUP, "backoff-max", 8.0, 0.001, 86400.0, &self->backoff_max,
                                 error)
      || !zlt_config_get_double (kf, GROUP, "fatal-retry", 60.0, 0.001, 86400.0, &self->fatal_retry,
                                 error)
      || !zlt_config_get_uint (kf, GROUP, "standby-connections", ZLT_CLIENT_CONFIG_DEFAULT_STANDBY,
                               0, 1024, &self->standby_connections, error))
    return FALSE;
  if (self->backoff_min > self->backoff_max)
    {
      zlt_config_error (error, GROUP, "backoff-max",
                        _ ("must not be below backoff-min (%g), not %g"), self->backoff_min,
                        self->backoff_max);
      return FALSE;
    }
  return TRUE;
}

/* A rate key (bytes per second, k/M/G suffixes of 1000); absent is 0, no limit. */
static gboolean
get_rate (GKeyFile *kf, const char *group, const char *key, guint64 *out, GError **error)
{
  g_autofree char *text = zlt_config_get_string (kf, group, key, error);

  if (error != NULL && *error != NULL)
    return FALSE;
  if (text == NULL)
    return TRUE;
  if (!zlt_parse_rate (text, out))
    {
      zlt_config_error (error, group, key,
                        _ ("must be bytes per second, optionally with k, M or G, not ‘%s’"), text);
      return FALSE;
    }
  return TRUE;
}

static ZltServiceConfig *
zlt_client_config_parse_service (GKeyFile *kf, const char *group, GError **error)
{
  const char *name = group + strlen (ZLT_CLIENT_CONFIG_SERVICE_PREFIX);
  g_autoptr (ZltServiceConfig) service = NULL;
  g_autofree char *protocol = NULL;
  g_autofree char *expose = NULL;
  g_autofree char *local_host = NULL;
  g_autofree char *proxy = NULL;
  guint local_port = 0;
  guint remote_port = 0;

  if (!zlt_service_name_is_valid (name))
    {
      zlt_config_error (error, group, NULL,
                        _ ("service name ‘%s’ must be 1 to %u letters, digits, '-' or '_'"), name,
                        (guint) ZLT_SERVICE_NAME_MAX);
      return NULL;
    }
  if (!zlt_config_check_keys (kf, group, service_keys, error))
    return NULL;
  service = zlt_service_config_new (name, ZLT_PROTOCOL_TCP, NULL, 0, 0, ZLT_EXPOSE_PUBLIC);

  protocol = zlt_config_get_string (kf, group, "protocol", error);
  if (*error != NULL)
    return NULL;
  if (protocol != NULL && !zlt_protocol_from_string (protocol, &service->protocol))
    {
      zlt_config_error (error, group, "protocol", _ ("must be tcp or udp, not ‘%s’"), protocol);
      return NULL;
    }
  local_host = zlt_config_get_string (kf, group, "local-host", error);
  if (*error != NULL)
    return NULL;
  if (local_host != NULL)
    {
      g_free (service->local_host);
      service->local_host = g_steal_pointer (&local_host);
    }
  if (!g_key_file_has_key (kf, group, "local-port", NULL))
    {
      zlt_config_error (error, group, "local-port", _ ("required"));
      return NULL;
    }
  if (!zlt_config_get_uint (kf, group, "local-port", 0, 1, G_MAXUINT16, &local_port, error)
      || !zlt_config_get_uint (kf, group, "remote-port", 0, 0, G_MAXUINT16, &remote_port, error)
      || !zlt_config_get_uint (kf, group, "max-connections", 0, 0, 10000000,
                               &service->max_connections, error)
      || !zlt_config_get_uint (kf, group, "idle-timeout", 0, 0, 30 * 86400, &service->idle_timeout,
                               error))
    return NULL;
  service->local_port = local_port;
  service->remote_port = remote_port;
  expose = zlt_config_get_string (kf, group, "expose", error);
  if (*error != NULL)
    return NULL;
  if (g_strcmp0 (expose, "internal") == 0)
    service->expose = ZLT_EXPOSE_INTERNAL;
  else if (expose != NULL && g_strcmp0 (expose, "public") != 0)
    {
      zlt_config_error (error, group, "expose", _ ("must be public or internal, not ‘%s’"), expose);
      return NULL;
    }
  proxy = zlt_config_get_string (kf, group, "proxy-protocol", error);
  if (*error != NULL)
    return NULL;
  if (proxy != NULL && !zlt_proxy_protocol_from_string (proxy, &service->proxy_protocol))
    {
      zlt_config_error (error, group, "proxy-protocol", _ ("must be none, v1 or v2, not ‘%s’"),
                        proxy);
      return NULL;
    }
  if (!get_rate (kf, group, "rate-limit-in", &service->rate_limit_in, error)
      || !get_rate (kf, group, "rate-limit-out", &service->rate_limit_out, error))
    return NULL;
  service->hostname = zlt_config_get_string (kf, group, "hostname", error);
  if (*error != NULL)
    return NULL;
  if (service->hostname != NULL)
    {
      char *lower = g_ascii_strdown (service->hostname, -1);

      g_free (service->hostname);
      service->hostname = lower;
    }
  if (!zlt_service_config_validate (service, error))
    return NULL;
  return g_steal_pointer (&service);
}

static ZltClientConfig *
zlt_client_config_parse (GKeyFile *kf, const char *base_dir, GError **error)
{
  g_autoptr (ZltClientConfig) self = g_object_new (ZLT_TYPE_CLIENT_CONFIG, NULL);
  g_auto (GStrv) groups = NULL;

  if (!g_key_file_has_group (kf, GROUP))
    {
      zlt_config_error (error, GROUP, NULL, _ ("group missing"));
      return NULL;
    }
  if (!zlt_client_config_parse_agent (self, kf, base_dir, error))
    return NULL;

  groups = g_key_file_get_groups (kf, NULL);
  for (guint i = 0; groups[i] != NULL; i++)
    {
      ZltServiceConfig *service;

      if (!g_str_has_prefix (groups[i], ZLT_CLIENT_CONFIG_SERVICE_PREFIX))
        continue;
      service = zlt_client_config_parse_service (kf, groups[i], error);
      if (service == NULL)
        return NULL;
      g_ptr_array_add (self->services, service);
    }
  self->keyfile = zlt_config_copy_keyfile (kf);
  return g_steal_pointer (&self);
}

/**
 * zlt_client_config_new_from_keyfile:
 * @keyfile: a config with an [agent] group and any number of [service:<name>] groups
 *
 * Relative paths stay relative to the working directory.
 *
 * Returns: (transfer full): the config, or NULL with %ZLT_ERROR_INVALID_CONFIG naming
 *   the group and key
 */
ZltClientConfig *
zlt_client_config_new_from_keyfile (GKeyFile *keyfile, GError **error)
{
  return zlt_client_config_new_from_keyfile_full (keyfile, NULL, error);
}

/**
 * zlt_client_config_new_from_keyfile_full:
 * @keyfile: as for zlt_client_config_new_from_keyfile()
 * @base_dir: (nullable): the directory relative paths are taken from; %NULL for the
 *   working directory
 *
 * For a key file read from a file and then changed (command-line options on top of a
 * config file): pass the file's directory, so its paths mean what they mean when the
 * daemon reads the same file.
 *
 * Returns: (transfer full): the config, or NULL with %ZLT_ERROR_INVALID_CONFIG naming
 *   the group and key
 */
ZltClientConfig *
zlt_client_config_new_from_keyfile_full (GKeyFile *keyfile, const char *base_dir, GError **error)
{
  g_autoptr (GError) error_local = NULL;
  ZltClientConfig *self;

  g_return_val_if_fail (keyfile != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  self = zlt_client_config_parse (keyfile, base_dir, &error_local);
  if (self == NULL)
    g_propagate_error (error, g_steal_pointer (&error_local));
  return self;
}

/**
 * zlt_client_config_new_from_file:
 *
 * Relative paths in the file are taken relative to the file's directory.
 *
 * Returns: (transfer full): the config, or NULL with @error set
 */
ZltClientConfig *
zlt_client_config_new_from_file (const char *path, GError **error)
{
  g_autoptr (GKeyFile) kf = g_key_file_new ();
  g_autoptr (GError) error_local = NULL;
  g_autofree char *base_dir = NULL;
  ZltClientConfig *self;

  g_return_val_if_fail (path != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!g_key_file_load_from_file (kf, path, G_KEY_FILE_KEEP_COMMENTS, &error_local))
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG, _ ("cannot read %s: %s"), path,
                   error_local->message);
      return NULL;
    }
  base_dir = zlt_config_directory (path);
  self = zlt_client_config_parse (kf, base_dir, &error_local);
  if (self == NULL)
    {
      g_propagate_prefixed_error (error, g_steal_pointer (&error_local), "%s: ", path);
      return NULL;
    }
  return self;
}

/**
 * zlt_client_config_new_default:
 *
 * Returns: (transfer full): the built-in defaults: a local server at
 *   ws://127.0.0.1:3679/tunnel/v1, the token from $ZLT_TOKEN, no services
 */
ZltClientConfig *
zlt_client_config_new_default (void)
{
  static const char defaults[] = "[" GROUP "]\n"
                                 "server=ws://127.0.0.1:3679" ZLT_CLIENT_CONFIG_DEFAULT_PATH "\n"
                                 "token-env=ZLT_TOKEN\n";
  g_autoptr (GKeyFile) kf = g_key_file_new ();
  g_autoptr (GError) error = NULL;
  ZltClientConfig *self;

  g_key_file_load_from_data (kf, defaults, -1, G_KEY_FILE_NONE, NULL);
  self = zlt_client_config_parse (kf, NULL, &error);
  /* the defaults are valid by construction */
  g_return_val_if_fail (self != NULL, NULL);
  return self;
}

static void
zlt_client_config_write_service (GKeyFile *kf, const ZltServiceConfig *service)
{
  g_autofree char *group = g_strconcat (ZLT_CLIENT_CONFIG_SERVICE_PREFIX, service->name, NULL);

  g_key_file_set_string (kf, group, "protocol", zlt_protocol_to_string (service->protocol));
  g_key_file_set_string (kf, group, "local-host", service->local_host);
  g_key_file_set_uint64 (kf, group, "local-port", service->local_port);
  g_key_file_set_uint64 (kf, group, "remote-port", service->remote_port);
  g_key_file_set_string (kf, group, "expose",
                         service->expose == ZLT_EXPOSE_INTERNAL ? "internal" : "public");
  g_key_file_set_uint64 (kf, group, "max-connections", service->max_connections);
  g_key_file_set_uint64 (kf, group, "idle-timeout", service->idle_timeout);
  g_key_file_set_string (kf, group, "proxy-protocol",
                         zlt_proxy_protocol_to_string (service->proxy_protocol));
  g_key_file_set_uint64 (kf, group, "rate-limit-in", service->rate_limit_in);
  g_key_file_set_uint64 (kf, group, "rate-limit-out", service->rate_limit_out);
  if (service->hostname != NULL)
    g_key_file_set_string (kf, group, "hostname", service->hostname);
}

/**
 * zlt_client_config_to_keyfile:
 *
 * Returns: (transfer full): every [agent] key written out explicitly, one group per
 *   current service (including added ones), plus the source's other groups
 */
GKeyFile *
zlt_client_config_to_keyfile (ZltClientConfig *self)
{
  g_autoptr (GKeyFile) kf = g_key_file_new ();
  char buf[G_ASCII_DTOSTR_BUF_SIZE];

  g_return_val_if_fail (ZLT_IS_CLIENT_CONFIG (self), NULL);

  g_key_file_set_string (kf, GROUP, "server", self->server_url);
  if (self->token_file != NULL)
    g_key_file_set_string (kf, GROUP, "token-file", self->token_file);
  if (self->token_env != NULL)
    g_key_file_set_string (kf, GROUP, "token-env", self->token_env);
  if (self->tls_ca_file != NULL)
    g_key_file_set_string (kf, GROUP, "tls-ca-file", self->tls_ca_file);
  if (self->tls_pinned_sha256 != NULL)
    g_key_file_set_string (kf, GROUP, "tls-pinned-sha256", self->tls_pinned_sha256);
  g_key_file_set_boolean (kf, GROUP, "tls-insecure", self->tls_insecure);
  g_key_file_set_boolean (kf, GROUP, "legacy-auth", self->legacy_auth);
  g_key_file_set_boolean (kf, GROUP, "retry-forever", self->retry_forever);
  g_key_file_set_uint64 (kf, GROUP, "heartbeat-interval", self->heartbeat_interval);
  g_key_file_set_uint64 (kf, GROUP, "heartbeat-timeout", self->heartbeat_timeout);
  g_key_file_set_string (kf, GROUP, "backoff-min",
                         g_ascii_dtostr (buf, sizeof (buf), self->backoff_min));
  g_key_file_set_string (kf, GROUP, "backoff-max",
                         g_ascii_dtostr (buf, sizeof (buf), self->backoff_max));
  g_key_file_set_string (kf, GROUP, "fatal-retry",
                         g_ascii_dtostr (buf, sizeof (buf), self->fatal_retry));
  g_key_file_set_uint64 (kf, GROUP, "standby-connections", self->standby_connections);
  for (guint i = 0; i < self->services->len; i++)
    zlt_client_config_write_service (kf, g_ptr_array_index (self->services, i));

  zlt_config_copy_groups (kf, self->keyfile, GROUP, ZLT_CLIENT_CONFIG_SERVICE_PREFIX);
  return g_steal_pointer (&kf);
}

/**
 * zlt_client_config_get_server_url:
 * Returns: the normalised server URL, path included
 */
const char *
zlt_client_config_get_server_url (ZltClientConfig *self)
{
  g_return_val_if_fail (ZLT_IS_CLIENT_CONFIG (self), NULL);
  return self->server_url;
}

/**
 * zlt_client_config_get_server_host:
 * @self: a client config
 *
 * Returns: the host of the server URL
 */
const char *
zlt_client_config_get_server_host (ZltClientConfig *self)
{
  g_return_val_if_fail (ZLT_IS_CLIENT_CONFIG (self), NULL);
  return self->server_host;
}

/**
 * zlt_client_config_get_server_port:
 * Returns: the URL's port, or 80 (ws) / 443 (wss) when it has none
 */
guint16
zlt_client_config_get_server_port (ZltClientConfig *self)
{
  g_return_val_if_fail (ZLT_IS_CLIENT_CONFIG (self), 0);
  return self->server_port;
}

/**
 * zlt_client_config_get_server_path:
 * Returns: the URL's path; /tunnel/v1 when the URL had none
 */
const char *
zlt_client_config_get_server_path (ZltClientConfig *self)
{
  g_return_val_if_fail (ZLT_IS_CLIENT_CONFIG (self), NULL);
  return self->server_path;
}

/**
 * zlt_client_config_get_use_tls:
 * @self: a client config
 *
 * Returns: whether the server URL is wss://
 */
gboolean
zlt_client_config_get_use_tls (ZltClientConfig *self)
{
  g_return_val_if_fail (ZLT_IS_CLIENT_CONFIG (self), FALSE);
  return self->use_tls;
}

/**
 * zlt_client_config_get_token_file:
 * Returns: (nullable): the token file, NULL when the token comes from the environment
 */
const char *
zlt_client_config_get_token_file (ZltClientConfig *self)
{
  g_return_val_if_fail (ZLT_IS_CLIENT_CONFIG (self), NULL);
  return self->token_file;
}

/**
 * zlt_client_config_get_token_env:
 * Returns: (nullable): the environment variable, NULL when the token comes from a file
 */
const char *
zlt_client_config_get_token_env (ZltClientConfig *self)
{
  g_return_val_if_fail (ZLT_IS_CLIENT_CONFIG (self), NULL);
  return self->token_env;
}

/**
 * zlt_client_config_get_tls_ca_file:
 * @self: a client config
 *
 * Returns: (nullable): the CA file the server's certificate must chain to, instead of
 *   the system's
 */
const char *
zlt_client_config_get_tls_ca_file (ZltClientConfig *self)
{
  g_return_val_if_fail (ZLT_IS_CLIENT_CONFIG (self), NULL);
  return self->tls_ca_file;
}

/**
 * zlt_client_config_get_tls_pinned_sha256:
 * Returns: (nullable): lowercase hex SHA-256 of the server certificate to accept
 */
const char *
zlt_client_config_get_tls_pinned_sha256 (ZltClientConfig *self)
{
  g_return_val_if_fail (ZLT_IS_CLIENT_CONFIG (self), NULL);
  return self->tls_pinned_sha256;
}

/**
 * zlt_client_config_get_tls_insecure:
 * @self: a client config
 *
 * Returns: whether `tls-insecure=true`: any server certificate is accepted (and logged);
 *   development only
 */
gboolean
zlt_client_config_get_tls_insecure (ZltClientConfig *self)
{
  g_return_val_if_fail (ZLT_IS_CLIENT_CONFIG (self), FALSE);
  return self->tls_insecure;
}

/**
 * zlt_client_config_get_retry_forever:
 * Returns: whether a foreground agent keeps retrying after a refusal that retrying
 *   cannot cure (bad or expired token, untrusted certificate, impostor server); the
 *   daemon always does
 */
gboolean
zlt_client_config_get_retry_forever (ZltClientConfig *self)
{
  g_return_val_if_fail (ZLT_IS_CLIENT_CONFIG (self), FALSE);
  return self->retry_forever;
}

/**
 * zlt_client_config_get_legacy_auth:
 * @self: a client config
 *
 * Returns: whether the agent sends the raw token (v1 authentication) instead of a proof
 */
gboolean
zlt_client_config_get_legacy_auth (ZltClientConfig *self)
{
  g_return_val_if_fail (ZLT_IS_CLIENT_CONFIG (self), FALSE);
  return self->legacy_auth;
}

/**
 * zlt_client_config_get_heartbeat_interval:
 * Returns: seconds
 */
guint
zlt_client_config_get_heartbeat_interval (ZltClientConfig *self)
{
  g_return_val_if_fail (ZLT_IS_CLIENT_CONFIG (self), 0);
  return self->heartbeat_interval;
}

/**
 * zlt_client_config_get_heartbeat_timeout:
 * @self: a client config
 *
 * Returns: seconds without a frame from the server after which the agent reconnects
 */
guint
zlt_client_config_get_heartbeat_timeout (ZltClientConfig *self)
{
  g_return_val_if_fail (ZLT_IS_CLIENT_CONFIG (self), 0);
  return self->heartbeat_timeout;
}

/**
 * zlt_client_config_get_fatal_retry:
 * Returns: seconds to wait (jittered down to half) after a refusal retrying soon
 *   cannot cure (bad or expired token, untrusted certificate, impostor server)
 */
gdouble
zlt_client_config_get_fatal_retry (ZltClientConfig *self)
{
  g_return_val_if_fail (ZLT_IS_CLIENT_CONFIG (self), 60.0);
  return self->fatal_retry;
}

/**
 * zlt_client_config_get_backoff_min:
 * Returns: seconds before the first reconnect attempt
 */
gdouble
zlt_client_config_get_backoff_min (ZltClientConfig *self)
{
  g_return_val_if_fail (ZLT_IS_CLIENT_CONFIG (self), 0.0);
  return self->backoff_min;
}

/**
 * zlt_client_config_get_standby_connections:
 *
 * Returns: how many standby data connections the agent keeps parked at the server at
 *   least (PROTOCOL-v2.md §8; the server's STANDBY_MAX caps it); 0 for none
 */
guint
zlt_client_config_get_standby_connections (ZltClientConfig *self)
{
  g_return_val_if_fail (ZLT_IS_CLIENT_CONFIG (self), 0);
  return self->standby_connections;
}

/**
 * zlt_client_config_get_backoff_max:
 * @self: a client config
 *
 * Returns: the longest wait between reconnect attempts, in seconds
 */
gdouble
zlt_client_config_get_backoff_max (ZltClientConfig *self)
{
  g_return_val_if_fail (ZLT_IS_CLIENT_CONFIG (self), 0.0);
  return self->backoff_max;
}

/**
 * zlt_client_config_get_services:
 * Returns: (transfer none) (element-type ZltServiceConfig): the services, in config order
 */
GPtrArray *
zlt_client_config_get_services (ZltClientConfig *self)
{
  g_return_val_if_fail (ZLT_IS_CLIENT_CONFIG (self), NULL);
  return self->services;
}

static gint
zlt_client_config_find_service (ZltClientConfig *self, const char *name)
{
  for (guint i = 0; i < self->services->len; i++)
    {
      const ZltServiceConfig *service = g_ptr_array_index (self->services, i);

      if (g_strcmp0 (service->name, name) == 0)
        return (gint) i;
    }
  return -1;
}

/**
 * zlt_client_config_lookup_service:
 * Returns: (nullable): the service named exactly @name
 */
const ZltServiceConfig *
zlt_client_config_lookup_service (ZltClientConfig *self, const char *name)
{
  gint idx;

  g_return_val_if_fail (ZLT_IS_CLIENT_CONFIG (self), NULL);
  g_return_val_if_fail (name != NULL, NULL);

  idx = zlt_client_config_find_service (self, name);
  return idx >= 0 ? g_ptr_array_index (self->services, idx) : NULL;
}

/**
 * zlt_client_config_add_service:
 * @service: copied
 *
 * Returns: TRUE when added; %ZLT_ERROR_INVALID_CONFIG when @service is invalid,
 *   %ZLT_ERROR_DUPLICATE_NAME when a service has the same name (case-sensitive)
 */
gboolean
zlt_client_config_add_service (ZltClientConfig *self, const ZltServiceConfig *service,
                               GError **error)
{
  g_return_val_if_fail (ZLT_IS_CLIENT_CONFIG (self), FALSE);
  g_return_val_if_fail (service != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!zlt_service_config_validate (service, error))
    return FALSE;
  if (zlt_client_config_find_service (self, service->name) >= 0)
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_DUPLICATE_NAME,
                   _ ("a service named %s already exists"), service->name);
      return FALSE;
    }
  g_ptr_array_add (self->services, zlt_service_config_copy (service));
  return TRUE;
}

/**
 * zlt_client_config_remove_service:
 * Returns: TRUE when a service named @name was removed
 */
gboolean
zlt_client_config_remove_service (ZltClientConfig *self, const char *name)
{
  gint idx;

  g_return_val_if_fail (ZLT_IS_CLIENT_CONFIG (self), FALSE);
  g_return_val_if_fail (name != NULL, FALSE);

  idx = zlt_client_config_find_service (self, name);
  if (idx < 0)
    return FALSE;
  g_ptr_array_remove_index (self->services, idx);
  return TRUE;
}

static char *
zlt_client_config_read_token_file (const char *path, GError **error)
{
  char buf[TOKEN_MAX_SIZE + 1];
  gsize len = 0;
  struct stat st;
  char *token = NULL;
  int fd;

  fd = g_open (path, O_RDONLY | O_CLOEXEC | O_NOCTTY, 0);
  if (fd < 0)
    {
      int errsv = errno;

      g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG, _ ("cannot open token file %s: %s"),
                   path, g_strerror (errsv));
      return NULL;
    }
  if (fstat (fd, &st) != 0 || !S_ISREG (st.st_mode))
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                   _ ("token file %s is not a regular file"), path);
      g_close (fd, NULL);
      return NULL;
    }
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_INSECURE,
                   _ ("token file %s is accessible by group or others (mode %04o); "
                      "run chmod 600 on it"),
                   path, (guint) (st.st_mode & 07777));
      g_close (fd, NULL);
      return NULL;
    }
  while (len < sizeof (buf))
    {
      gssize n = read (fd, buf + len, sizeof (buf) - len);

      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          int errsv = errno;

          g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                       _ ("cannot read token file %s: %s"), path, g_strerror (errsv));
          g_close (fd, NULL);
          explicit_bzero (buf, sizeof (buf));
          return NULL;
        }
      if (n == 0)
        break;
      len += n;
    }
  g_close (fd, NULL);
  if (len > TOKEN_MAX_SIZE)
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                   _ ("token file %s is larger than %u bytes"), path, (guint) TOKEN_MAX_SIZE);
      explicit_bzero (buf, sizeof (buf));
      return NULL;
    }
  if (len > 0 && buf[len - 1] == '\n')
    len--;
  if (len > 0 && buf[len - 1] == '\r')
    len--;
  if (len == 0 || memchr (buf, '\n', len) != NULL || memchr (buf, '\0', len) != NULL)
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                   _ ("token file %s must hold the token on a single line"), path);
      explicit_bzero (buf, sizeof (buf));
      return NULL;
    }
  token = g_strndup (buf, len);
  explicit_bzero (buf, sizeof (buf));
  return token;
}

/**
 * zlt_client_config_load_token:
 *
 * Reads the token from token-file (which group and others must not be able to read or
 * write; one line, the trailing newline dropped) or from the token-env variable. The
 * token is never logged.
 *
 * Returns: (transfer full): the token; wipe it when done. NULL with @error set.
 */
char *
zlt_client_config_load_token (ZltClientConfig *self, GError **error)
{
  const char *value;

  g_return_val_if_fail (ZLT_IS_CLIENT_CONFIG (self), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (self->token_file != NULL)
    return zlt_client_config_read_token_file (self->token_file, error);

  value = g_getenv (self->token_env);
  if (value == NULL || value[0] == '\0')
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                   _ ("environment variable %s (token-env) is not set"), self->token_env);
      return NULL;
    }
  return g_strdup (value);
}
