/* zlt-server-config.c: the [server] part of the config */
#include "config.h"

#include <string.h>

#include <gio/gio.h>
#include <glib/gi18n-lib.h>

#include "zlt-config-private.h"
#include "zlt-enum-types.h"
#include "zlt-error.h"
#include "zlt-host-sniff.h"
#include "zlt-net.h"
#include "zlt-server-config.h"
#include "zlt-util.h" /* zlt_config_directory */

#define GROUP ZLT_SERVER_CONFIG_GROUP

struct _ZltServerConfig
{
  GObject parent_instance;

  GKeyFile *keyfile; /* the whole file, for the validator's group */
  char *listen_address;
  guint16 listen_port;
  char *public_bind_address;
  char *tls_certificate;
  char *tls_key;
  guint16 port_min;
  guint16 port_max;
  guint max_tunnels;
  guint max_services_per_tunnel;
  guint heartbeat_interval;
  guint heartbeat_timeout;
  guint auth_timeout;
  guint connect_timeout;
  guint resume_grace;
  guint udp_idle_timeout;
  gboolean allow_legacy_auth;
  char *validator;
  char *validator_group;
  char *config_directory;
  gboolean insecure;
  ZltServerLimits limits;
  /* shared ports routed by hostname; NULL address = off */
  char *http_listen_address;
  guint16 http_listen_port;
  char *tls_listen_address;
  guint16 tls_listen_port;
  GStrv hostname_domains; /* hostname patterns services may claim; NULL = none */
  ZltReplicaBalance replica_balance;
};

/* The limit keys: one table for parsing, writing out and documenting them. A default
 * of DERIVED takes a share of the matching global pool (see derive_shares). */
#define DERIVED G_MAXUINT
#define LIMIT(field) G_STRUCT_OFFSET (ZltServerLimits, field)
#define TOKEN_LIMIT(kind) (LIMIT (token_max) + (kind) * (glong) sizeof (guint))

static const struct
{
  const char *key;
  guint dflt, min, max;
  glong offset;
} limit_keys[] = {
  { "max-preauth", 4096, 1, 1000000, LIMIT (max_preauth) },
  { "max-preauth-per-source", 256, 1, 1000000, LIMIT (max_preauth_per_source) },
  { "max-peer-queue", 1024 * 1024, 64 * 1024, G_MAXINT, LIMIT (max_peer_queue) },
  { "max-frame-rate", 100, 1, 1000000, LIMIT (max_frame_rate) },
  { "token-max-tunnels", DERIVED, 0, 1000000, TOKEN_LIMIT (ZLT_QUOTA_TUNNELS) },
  { "token-max-services", DERIVED, 0, 1000000, TOKEN_LIMIT (ZLT_QUOTA_SERVICES) },
  { "token-max-pending", DERIVED, 0, 1000000, TOKEN_LIMIT (ZLT_QUOTA_PENDING) },
  { "token-max-connections", 4096, 0, 10000000, TOKEN_LIMIT (ZLT_QUOTA_CONNECTIONS) },
  { "token-max-access-streams", 256, 0, 1000000, TOKEN_LIMIT (ZLT_QUOTA_ACCESS_STREAMS) },
  { "token-max-standby", 256, 0, 1000000, TOKEN_LIMIT (ZLT_QUOTA_STANDBY) },
  { "max-connections-per-service", 0, 0, 10000000, LIMIT (max_connections_per_service) },
  { "idle-timeout", 0, 0, 30 * 86400, LIMIT (idle_timeout) },
  { "port-hold", 300, 0, 30 * 86400, LIMIT (port_hold) },
  { "name-hold", 86400, 0, 30 * 86400, LIMIT (name_hold) },
  { "max-access-ttl", 86400, 0, 365 * 86400, LIMIT (max_access_ttl) },
  { "standby-connections", 64, 0, ZLT_SERVER_MAX_STANDBY, LIMIT (standby_connections) },
};

/* Bound on public connections that wait for an agent at once, for the whole server. */
#define MAX_PENDING_TOTAL 4096

static guint *
limit_field (ZltServerLimits *limits, guint i)
{
  return G_STRUCT_MEMBER_P (limits, limit_keys[i].offset);
}

/* Unset token shares default to a quarter of the global pool they draw from, so no
 * single token can take more than that of what every tenant shares; but never less
 * than a small floor, so a small server with one tenant is not cut short. */
static void
derive_shares (ZltServerConfig *self)
{
  guint n_ports = (guint) self->port_max - self->port_min + 1;
  guint *tunnels = &self->limits.token_max[ZLT_QUOTA_TUNNELS];
  guint *services = &self->limits.token_max[ZLT_QUOTA_SERVICES];
  guint *pending = &self->limits.token_max[ZLT_QUOTA_PENDING];

  if (*tunnels == DERIVED)
    *tunnels = MIN (MAX (self->max_tunnels / 4, 16), self->max_tunnels);
  if (*services == DERIVED)
    *services = MAX (n_ports / 4, 64);
  if (*pending == DERIVED)
    *pending = MAX_PENDING_TOTAL / 4;
}

/**
 * ZltServerConfig:
 * The `[server]` group of a config (zlayer-tunnel.conf(5)), checked: every key known,
 * every value in range, errors naming the group and key. It keeps the whole key file
 * too, for the validator's own group `[validator:NAME]`. Immutable once made.
 */

G_DEFINE_FINAL_TYPE (ZltServerConfig, zlt_server_config, G_TYPE_OBJECT)

static const char *const known_keys[] = {
  "listen",
  "public-bind-address",
  "http-listen",
  "tls-listen",
  "hostname-domains",
  "tls-certificate",
  "tls-key",
  "port-range",
  "max-tunnels",
  "max-services-per-tunnel",
  "heartbeat-interval",
  "heartbeat-timeout",
  "replica-balance",
  "auth-timeout",
  "connect-timeout",
  "resume-grace",
  "udp-idle-timeout",
  "allow-legacy-auth",
  "validator",
  "insecure",
  "max-preauth",
  "max-preauth-per-source",
  "max-peer-queue",
  "max-frame-rate",
  "token-max-tunnels",
  "token-max-services",
  "token-max-pending",
  "token-max-connections",
  "token-max-access-streams",
  "token-max-standby",
  "max-connections-per-service",
  "idle-timeout",
  "port-hold",
  "name-hold",
  "max-access-ttl",
  "standby-connections",
  NULL,
};

static void
zlt_server_config_finalize (GObject *object)
{
  ZltServerConfig *self = ZLT_SERVER_CONFIG (object);

  g_clear_pointer (&self->keyfile, g_key_file_unref);
  g_free (self->listen_address);
  g_free (self->public_bind_address);
  g_free (self->http_listen_address);
  g_free (self->tls_listen_address);
  g_strfreev (self->hostname_domains);
  g_free (self->tls_certificate);
  g_free (self->tls_key);
  g_free (self->validator);
  g_free (self->validator_group);
  g_free (self->config_directory);

  G_OBJECT_CLASS (zlt_server_config_parent_class)->finalize (object);
}

static void
zlt_server_config_class_init (ZltServerConfigClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = zlt_server_config_finalize;
}

static void
zlt_server_config_init (ZltServerConfig *self)
{
}

/* http-listen, tls-listen: "ADDR:PORT", an IP address and a port (0 = any free one) */
static gboolean
zlt_server_config_parse_shared_listen (GKeyFile *kf, const char *key, char **address, guint16 *port,
                                       GError **error)
{
  g_autofree char *value = zlt_config_get_string (kf, GROUP, key, error);
  g_autoptr (GError) error_local = NULL;
  g_autofree char *host = NULL;

  if (value == NULL)
    return *error == NULL;
  if (!zlt_net_parse_host_port (value, NULL, &host, port, &error_local) || host == NULL
      || !g_hostname_is_ip_address (host))
    {
      zlt_config_error (error, GROUP, key, _ ("‘%s’ is not an IP address:port"), value);
      return FALSE;
    }
  *address = g_steal_pointer (&host);
  return TRUE;
}

static gboolean
zlt_server_config_parse_listen (ZltServerConfig *self, const char *value, GError **error)
{
  g_autoptr (GSocketConnectable) addr = NULL;
  g_autoptr (GError) error_local = NULL;
  const char *host;

  addr = g_network_address_parse (value, ZLT_SERVER_CONFIG_DEFAULT_PORT, &error_local);
  if (addr == NULL)
    {
      zlt_config_error (error, GROUP, "listen", _ ("‘%s’ is not an address:port (%s)"), value,
                        error_local->message);
      return FALSE;
    }
  host = g_network_address_get_hostname (G_NETWORK_ADDRESS (addr));
  if (!g_hostname_is_ip_address (host))
    {
      zlt_config_error (error, GROUP, "listen", _ ("‘%s’ is not an IP address"), host);
      return FALSE;
    }
  self->listen_address = g_strdup (host);
  self->listen_port = g_network_address_get_port (G_NETWORK_ADDRESS (addr));
  return TRUE;
}

static gboolean
zlt_server_config_parse_port_range (ZltServerConfig *self, const char *value, GError **error)
{
  g_auto (GStrv) parts = g_strsplit (value, "-", -1);
  guint64 min = 0;
  guint64 max = 0;

  if (g_strv_length (parts) != 2
      || !g_ascii_string_to_unsigned (g_strstrip (parts[0]), 10, 1, G_MAXUINT16, &min, NULL)
      || !g_ascii_string_to_unsigned (g_strstrip (parts[1]), 10, 1, G_MAXUINT16, &max, NULL))
    {
      zlt_config_error (error, GROUP, "port-range",
                        _ ("‘%s’ is not a range like 30000-31000 of ports from 1 to 65535"), value);
      return FALSE;
    }
  if (min > max)
    {
      zlt_config_error (error, GROUP, "port-range", _ ("the first port of ‘%s’ is above the last"),
                        value);
      return FALSE;
    }
  self->port_min = min;
  self->port_max = max;
  return TRUE;
}

/* @error is never NULL here: absence of a key and failure are told apart by it. */
static ZltServerConfig *
zlt_server_config_parse (GKeyFile *kf, const char *base_dir, GError **error)
{
  g_autoptr (ZltServerConfig) self = g_object_new (ZLT_TYPE_SERVER_CONFIG, NULL);
  g_autofree char *listen = NULL;
  g_autofree char *port_range = NULL;

  if (!g_key_file_has_group (kf, GROUP))
    {
      zlt_config_error (error, GROUP, NULL, _ ("group missing"));
      return NULL;
    }
  if (!zlt_config_check_keys (kf, GROUP, known_keys, error))
    return NULL;
  self->keyfile = zlt_config_copy_keyfile (kf);

  /* listen */
  listen = zlt_config_get_string (kf, GROUP, "listen", error);
  if (listen == NULL && *error != NULL)
    return NULL;
  if (!zlt_server_config_parse_listen (self, listen != NULL ? listen : "0.0.0.0:3679", error))
    return NULL;

  /* public-bind-address */
  self->public_bind_address = zlt_config_get_string (kf, GROUP, "public-bind-address", error);
  if (*error != NULL)
    return NULL;
  if (self->public_bind_address == NULL)
    self->public_bind_address = g_strdup ("0.0.0.0");
  if (!g_hostname_is_ip_address (self->public_bind_address))
    {
      zlt_config_error (error, GROUP, "public-bind-address", _ ("‘%s’ is not an IP address"),
                        self->public_bind_address);
      return NULL;
    }

  /* http-listen, tls-listen, hostname-domains */
  if (!zlt_server_config_parse_shared_listen (kf, "http-listen", &self->http_listen_address,
                                              &self->http_listen_port, error)
      || !zlt_server_config_parse_shared_listen (kf, "tls-listen", &self->tls_listen_address,
                                                 &self->tls_listen_port, error))
    return NULL;
  if (g_key_file_has_key (kf, GROUP, "hostname-domains", NULL))
    {
      g_autoptr (GError) error_local = NULL;
      g_auto (GStrv) domains
          = g_key_file_get_string_list (kf, GROUP, "hostname-domains", NULL, &error_local);
      g_autoptr (GPtrArray) kept = g_ptr_array_new_with_free_func (g_free);

      if (domains == NULL)
        {
          zlt_config_error (error, GROUP, "hostname-domains", "%s", error_local->message);
          return NULL;
        }
      for (guint i = 0; domains[i] != NULL; i++)
        {
          g_autofree char *domain = g_ascii_strdown (g_strstrip (domains[i]), -1);

          if (*domain == '\0')
            continue;
          if (!zlt_hostname_pattern_is_valid (domain))
            {
              zlt_config_error (error, GROUP, "hostname-domains",
                                _ ("‘%s’ is not a hostname or *.hostname"), domain);
              return NULL;
            }
          g_ptr_array_add (kept, g_steal_pointer (&domain));
        }
      if (kept->len > 0)
        {
          g_ptr_array_add (kept, NULL);
          self->hostname_domains = (GStrv) g_ptr_array_free (g_steal_pointer (&kept), FALSE);
        }
    }

  /* tls-certificate, tls-key */
  self->tls_certificate = zlt_config_get_string (kf, GROUP, "tls-certificate", error);
  if (*error != NULL)
    return NULL;
  self->tls_key = zlt_config_get_string (kf, GROUP, "tls-key", error);
  if (*error != NULL)
    return NULL;
  if ((self->tls_certificate == NULL) != (self->tls_key == NULL))
    {
      zlt_config_error (error, GROUP, self->tls_certificate == NULL ? "tls-certificate" : "tls-key",
                        _ ("tls-certificate and tls-key go together: set both or neither"));
      return NULL;
    }
  self->tls_certificate = zlt_config_resolve_path (base_dir, self->tls_certificate);
  self->tls_key = zlt_config_resolve_path (base_dir, self->tls_key);

  /* port-range */
  port_range = zlt_config_get_string (kf, GROUP, "port-range", error);
  if (port_range == NULL && *error != NULL)
    return NULL;
  if (!zlt_server_config_parse_port_range (self, port_range != NULL ? port_range : "30000-31000",
                                           error))
    return NULL;
  if (self->listen_port >= self->port_min && self->listen_port <= self->port_max)
    {
      zlt_config_error (error, GROUP, "listen", _ ("port %u lies inside port-range %u-%u"),
                        (guint) self->listen_port, (guint) self->port_min, (guint) self->port_max);
      return NULL;
    }

  /* limits and timers, in seconds */
  if (!zlt_config_get_uint (kf, GROUP, "max-tunnels", 256, 1, 1000000, &self->max_tunnels, error)
      || !zlt_config_get_uint (kf, GROUP, "max-services-per-tunnel", 32, 1, 65535,
                               &self->max_services_per_tunnel, error)
      || !zlt_config_get_uint (kf, GROUP, "heartbeat-interval", 15, 1, 3600,
                               &self->heartbeat_interval, error)
      || !zlt_config_get_uint (kf, GROUP, "heartbeat-timeout", 30, 1, 86400,
                               &self->heartbeat_timeout, error)
      || !zlt_config_get_uint (kf, GROUP, "auth-timeout", 10, 1, 3600, &self->auth_timeout, error)
      || !zlt_config_get_uint (kf, GROUP, "connect-timeout", 10, 1, 3600, &self->connect_timeout,
                               error)
      || !zlt_config_get_uint (kf, GROUP, "resume-grace", 30, 0, 86400, &self->resume_grace, error)
      || !zlt_config_get_uint (kf, GROUP, "udp-idle-timeout", 60, 1, 86400, &self->udp_idle_timeout,
                               error))
    return NULL;
  for (guint i = 0; i < G_N_ELEMENTS (limit_keys); i++)
    if (!zlt_config_get_uint (kf, GROUP, limit_keys[i].key, limit_keys[i].dflt, limit_keys[i].min,
                              limit_keys[i].max, limit_field (&self->limits, i), error))
      return NULL;
  derive_shares (self);
  if (self->heartbeat_timeout <= self->heartbeat_interval)
    {
      zlt_config_error (error, GROUP, "heartbeat-timeout",
                        _ ("must be greater than heartbeat-interval (%u), not %u"),
                        self->heartbeat_interval, self->heartbeat_timeout);
      return NULL;
    }

  /* replica-balance: one rule for the whole server, not each agent's to choose (its
   * replicas could disagree, and the port's load is the server's to spread) */
  {
    g_autoptr (GError) error_local = NULL;
    g_autofree char *balance = zlt_config_get_string (kf, GROUP, "replica-balance", &error_local);
    g_autoptr (GEnumClass) klass = g_type_class_ref (ZLT_TYPE_REPLICA_BALANCE);
    GEnumValue *value = balance != NULL ? g_enum_get_value_by_nick (klass, balance) : NULL;

    if (error_local != NULL)
      {
        g_propagate_error (error, g_steal_pointer (&error_local));
        return NULL;
      }
    if (balance != NULL && value == NULL)
      {
        zlt_config_error (error, GROUP, "replica-balance",
                          _ ("must be round-robin or least-connections, not ‘%s’"), balance);
        return NULL;
      }
    self->replica_balance = value != NULL ? value->value : ZLT_REPLICA_BALANCE_ROUND_ROBIN;
  }

  /* auth */
  if (!zlt_config_get_bool (kf, GROUP, "allow-legacy-auth", FALSE, &self->allow_legacy_auth, error)
      || !zlt_config_get_bool (kf, GROUP, "insecure", FALSE, &self->insecure, error))
    return NULL;
  self->validator = zlt_config_get_string (kf, GROUP, "validator", error);
  if (*error != NULL)
    return NULL;
  if (self->validator == NULL)
    self->validator = g_strdup ("token-file");
  if (!zlt_config_plugin_name_is_valid (self->validator))
    {
      zlt_config_error (error, GROUP, "validator",
                        _ ("‘%s’ is not a plugin name (lowercase letters, digits and '-')"),
                        self->validator);
      return NULL;
    }
  self->validator_group = g_strconcat (ZLT_SERVER_CONFIG_VALIDATOR_PREFIX, self->validator, NULL);
  self->config_directory = g_strdup (base_dir);

  return g_steal_pointer (&self);
}

/**
 * zlt_server_config_new_from_keyfile:
 * @keyfile: a config with a [server] group; [validator:<name>] groups are kept for the
 *   validator
 *
 * Relative paths stay relative to the working directory.
 *
 * Returns: (transfer full): the config, or NULL with %ZLT_ERROR_INVALID_CONFIG naming
 *   the group and key
 */
ZltServerConfig *
zlt_server_config_new_from_keyfile (GKeyFile *keyfile, GError **error)
{
  return zlt_server_config_new_from_keyfile_full (keyfile, NULL, error);
}

/**
 * zlt_server_config_new_from_keyfile_full:
 * @keyfile: as for zlt_server_config_new_from_keyfile()
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
ZltServerConfig *
zlt_server_config_new_from_keyfile_full (GKeyFile *keyfile, const char *base_dir, GError **error)
{
  g_autoptr (GError) error_local = NULL;
  ZltServerConfig *self;

  g_return_val_if_fail (keyfile != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  self = zlt_server_config_parse (keyfile, base_dir, &error_local);
  if (self == NULL)
    g_propagate_error (error, g_steal_pointer (&error_local));
  return self;
}

/**
 * zlt_server_config_new_from_file:
 *
 * Relative paths in the file are taken relative to the file's directory.
 *
 * Returns: (transfer full): the config, or NULL with @error set
 */
ZltServerConfig *
zlt_server_config_new_from_file (const char *path, GError **error)
{
  g_autoptr (GKeyFile) kf = g_key_file_new ();
  g_autoptr (GError) error_local = NULL;
  g_autofree char *base_dir = NULL;
  ZltServerConfig *self;

  g_return_val_if_fail (path != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!g_key_file_load_from_file (kf, path, G_KEY_FILE_NONE, &error_local))
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG, _ ("cannot read %s: %s"), path,
                   error_local->message);
      return NULL;
    }
  base_dir = zlt_config_directory (path);
  self = zlt_server_config_parse (kf, base_dir, &error_local);
  if (self == NULL)
    {
      g_propagate_prefixed_error (error, g_steal_pointer (&error_local), "%s: ", path);
      return NULL;
    }
  return self;
}

/**
 * zlt_server_config_new_default:
 *
 * Returns: (transfer full): the built-in defaults: listen on 0.0.0.0:3679, public ports
 *   30000-31000, validator token-file
 */
ZltServerConfig *
zlt_server_config_new_default (void)
{
  g_autoptr (GKeyFile) kf = g_key_file_new ();
  g_autoptr (GError) error = NULL;
  ZltServerConfig *self;

  static const char defaults[] = "# every key takes its built-in value\n[" GROUP "]\n";

  g_key_file_load_from_data (kf, defaults, -1, G_KEY_FILE_NONE, NULL);
  self = zlt_server_config_parse (kf, NULL, &error);
  /* the defaults are valid by construction */
  g_return_val_if_fail (self != NULL, NULL);
  return self;
}

/**
 * zlt_server_config_to_keyfile:
 *
 * Returns: (transfer full): every [server] key written out explicitly, plus every other
 *   group of the source (validator groups and whatever other parts of the program own)
 */
GKeyFile *
zlt_server_config_to_keyfile (ZltServerConfig *self)
{
  g_autoptr (GKeyFile) kf = g_key_file_new ();
  g_autofree char *listen = NULL;
  g_autofree char *range = NULL;

  g_return_val_if_fail (ZLT_IS_SERVER_CONFIG (self), NULL);

  listen = zlt_net_join_host_port (self->listen_address, self->listen_port);
  range = g_strdup_printf ("%u-%u", (guint) self->port_min, (guint) self->port_max);

  g_key_file_set_string (kf, GROUP, "listen", listen);
  g_key_file_set_string (kf, GROUP, "public-bind-address", self->public_bind_address);
  if (self->http_listen_address != NULL)
    {
      g_autofree char *where
          = zlt_net_join_host_port (self->http_listen_address, self->http_listen_port);
      g_key_file_set_string (kf, GROUP, "http-listen", where);
    }
  if (self->tls_listen_address != NULL)
    {
      g_autofree char *where
          = zlt_net_join_host_port (self->tls_listen_address, self->tls_listen_port);
      g_key_file_set_string (kf, GROUP, "tls-listen", where);
    }
  if (self->hostname_domains != NULL)
    g_key_file_set_string_list (kf, GROUP, "hostname-domains",
                                (const char *const *) self->hostname_domains,
                                g_strv_length (self->hostname_domains));
  if (self->tls_certificate != NULL)
    {
      g_key_file_set_string (kf, GROUP, "tls-certificate", self->tls_certificate);
      g_key_file_set_string (kf, GROUP, "tls-key", self->tls_key);
    }
  g_key_file_set_string (kf, GROUP, "port-range", range);
  g_key_file_set_uint64 (kf, GROUP, "max-tunnels", self->max_tunnels);
  g_key_file_set_uint64 (kf, GROUP, "max-services-per-tunnel", self->max_services_per_tunnel);
  g_key_file_set_uint64 (kf, GROUP, "heartbeat-interval", self->heartbeat_interval);
  g_key_file_set_uint64 (kf, GROUP, "heartbeat-timeout", self->heartbeat_timeout);
  {
    g_autoptr (GEnumClass) klass = g_type_class_ref (ZLT_TYPE_REPLICA_BALANCE);

    g_key_file_set_string (kf, GROUP, "replica-balance",
                           g_enum_get_value (klass, self->replica_balance)->value_nick);
  }
  g_key_file_set_uint64 (kf, GROUP, "auth-timeout", self->auth_timeout);
  g_key_file_set_uint64 (kf, GROUP, "connect-timeout", self->connect_timeout);
  g_key_file_set_uint64 (kf, GROUP, "resume-grace", self->resume_grace);
  g_key_file_set_uint64 (kf, GROUP, "udp-idle-timeout", self->udp_idle_timeout);
  g_key_file_set_boolean (kf, GROUP, "allow-legacy-auth", self->allow_legacy_auth);
  g_key_file_set_string (kf, GROUP, "validator", self->validator);
  g_key_file_set_boolean (kf, GROUP, "insecure", self->insecure);
  for (guint i = 0; i < G_N_ELEMENTS (limit_keys); i++)
    g_key_file_set_uint64 (kf, GROUP, limit_keys[i].key, *limit_field (&self->limits, i));

  zlt_config_copy_groups (kf, self->keyfile, GROUP, NULL);
  return g_steal_pointer (&kf);
}

/**
 * zlt_server_config_get_listen_address:
 * Returns: the IP address the control channel listens on
 */
const char *
zlt_server_config_get_listen_address (ZltServerConfig *self)
{
  g_return_val_if_fail (ZLT_IS_SERVER_CONFIG (self), NULL);
  return self->listen_address;
}

/**
 * zlt_server_config_get_listen_port:
 * @self: a server config
 *
 * Returns: the control port to listen on; 0 = any free port (zlt_server_get_port() then
 *   says which)
 */
guint16
zlt_server_config_get_listen_port (ZltServerConfig *self)
{
  g_return_val_if_fail (ZLT_IS_SERVER_CONFIG (self), 0);
  return self->listen_port;
}

/**
 * zlt_server_config_get_public_bind_address:
 * Returns: the IP address public service listeners bind
 */
const char *
zlt_server_config_get_public_bind_address (ZltServerConfig *self)
{
  g_return_val_if_fail (ZLT_IS_SERVER_CONFIG (self), NULL);
  return self->public_bind_address;
}

/**
 * zlt_server_config_get_http_listen:
 * @self: a server config
 * @port: (out) (optional): the port; 0 = any free one
 *
 * Returns: (nullable): the IP address of the shared HTTP port routed by Host header
 *   (`http-listen`), %NULL when there is none
 */
const char *
zlt_server_config_get_http_listen (ZltServerConfig *self, guint16 *port)
{
  g_return_val_if_fail (ZLT_IS_SERVER_CONFIG (self), NULL);
  if (port != NULL)
    *port = self->http_listen_port;
  return self->http_listen_address;
}

/**
 * zlt_server_config_get_tls_listen:
 * @self: a server config
 * @port: (out) (optional): the port; 0 = any free one
 *
 * Returns: (nullable): the IP address of the shared TLS port routed by SNI
 *   (`tls-listen`), %NULL when there is none
 */
const char *
zlt_server_config_get_tls_listen (ZltServerConfig *self, guint16 *port)
{
  g_return_val_if_fail (ZLT_IS_SERVER_CONFIG (self), NULL);
  if (port != NULL)
    *port = self->tls_listen_port;
  return self->tls_listen_address;
}

/**
 * zlt_server_config_get_hostname_domains:
 *
 * Returns: (nullable) (transfer none): the hostname patterns (`example.test`,
 *   `*.apps.example.test`) services may claim hostnames under; %NULL = none
 */
const char *const *
zlt_server_config_get_hostname_domains (ZltServerConfig *self)
{
  g_return_val_if_fail (ZLT_IS_SERVER_CONFIG (self), NULL);
  return (const char *const *) self->hostname_domains;
}

/**
 * zlt_server_config_get_tls_certificate:
 * Returns: (nullable): path of the PEM certificate, NULL for plain WebSocket
 */
const char *
zlt_server_config_get_tls_certificate (ZltServerConfig *self)
{
  g_return_val_if_fail (ZLT_IS_SERVER_CONFIG (self), NULL);
  return self->tls_certificate;
}

/**
 * zlt_server_config_get_tls_key:
 * Returns: (nullable): path of the PEM private key, set exactly when the certificate is
 */
const char *
zlt_server_config_get_tls_key (ZltServerConfig *self)
{
  g_return_val_if_fail (ZLT_IS_SERVER_CONFIG (self), NULL);
  return self->tls_key;
}

/**
 * zlt_server_config_get_use_tls:
 * @self: a server config
 *
 * Returns: whether the control channel is TLS (wss://): a certificate is configured
 */
gboolean
zlt_server_config_get_use_tls (ZltServerConfig *self)
{
  g_return_val_if_fail (ZLT_IS_SERVER_CONFIG (self), FALSE);
  return self->tls_certificate != NULL;
}

/**
 * zlt_server_config_get_port_range:
 * @min: (out) (optional): first public port
 * @max: (out) (optional): last public port, inclusive
 */
void
zlt_server_config_get_port_range (ZltServerConfig *self, guint16 *min, guint16 *max)
{
  g_return_if_fail (ZLT_IS_SERVER_CONFIG (self));
  if (min != NULL)
    *min = self->port_min;
  if (max != NULL)
    *max = self->port_max;
}

/**
 * zlt_server_config_get_max_tunnels:
 * @self: a server config
 *
 * Returns: how many tunnels may be open at once
 */
guint
zlt_server_config_get_max_tunnels (ZltServerConfig *self)
{
  g_return_val_if_fail (ZLT_IS_SERVER_CONFIG (self), 0);
  return self->max_tunnels;
}

/**
 * zlt_server_config_get_max_services_per_tunnel:
 * @self: a server config
 *
 * Returns: how many services one tunnel may register
 */
guint
zlt_server_config_get_max_services_per_tunnel (ZltServerConfig *self)
{
  g_return_val_if_fail (ZLT_IS_SERVER_CONFIG (self), 0);
  return self->max_services_per_tunnel;
}

/**
 * zlt_server_config_get_heartbeat_interval:
 * Returns: seconds between heartbeats (as every timer getter here, in seconds)
 */
guint
zlt_server_config_get_heartbeat_interval (ZltServerConfig *self)
{
  g_return_val_if_fail (ZLT_IS_SERVER_CONFIG (self), 0);
  return self->heartbeat_interval;
}

/**
 * zlt_server_config_get_heartbeat_timeout:
 * @self: a server config
 *
 * Returns: seconds without a frame from an agent after which its tunnel is dropped
 */
guint
zlt_server_config_get_heartbeat_timeout (ZltServerConfig *self)
{
  g_return_val_if_fail (ZLT_IS_SERVER_CONFIG (self), 0);
  return self->heartbeat_timeout;
}

/**
 * zlt_server_config_get_replica_balance:
 * @self: a server config
 *
 * Returns: how new public connections are spread over a service's replicas
 *   (`replica-balance`, round robin by default)
 */
ZltReplicaBalance
zlt_server_config_get_replica_balance (ZltServerConfig *self)
{
  g_return_val_if_fail (ZLT_IS_SERVER_CONFIG (self), ZLT_REPLICA_BALANCE_ROUND_ROBIN);
  return self->replica_balance;
}

/**
 * zlt_server_config_get_auth_timeout:
 * @self: a server config
 *
 * Returns: seconds a new control connection has to authenticate
 */
guint
zlt_server_config_get_auth_timeout (ZltServerConfig *self)
{
  g_return_val_if_fail (ZLT_IS_SERVER_CONFIG (self), 0);
  return self->auth_timeout;
}

/**
 * zlt_server_config_get_connect_timeout:
 * @self: a server config
 *
 * Returns: seconds a public connection waits for its data connection
 */
guint
zlt_server_config_get_connect_timeout (ZltServerConfig *self)
{
  g_return_val_if_fail (ZLT_IS_SERVER_CONFIG (self), 0);
  return self->connect_timeout;
}

/**
 * zlt_server_config_get_resume_grace:
 * @self: a server config
 *
 * Returns: seconds a tunnel whose control channel ended is held for its agent to resume
 *   it
 */
guint
zlt_server_config_get_resume_grace (ZltServerConfig *self)
{
  g_return_val_if_fail (ZLT_IS_SERVER_CONFIG (self), 0);
  return self->resume_grace;
}

/**
 * zlt_server_config_get_udp_idle_timeout:
 * Returns: seconds without a datagram either way after which a UDP flow ends
 */
guint
zlt_server_config_get_udp_idle_timeout (ZltServerConfig *self)
{
  g_return_val_if_fail (ZLT_IS_SERVER_CONFIG (self), 0);
  return self->udp_idle_timeout;
}

/**
 * zlt_server_config_get_allow_legacy_auth:
 * @self: a server config
 *
 * Returns: whether v1 agents (raw-token authentication) are let in
 */
gboolean
zlt_server_config_get_allow_legacy_auth (ZltServerConfig *self)
{
  g_return_val_if_fail (ZLT_IS_SERVER_CONFIG (self), FALSE);
  return self->allow_legacy_auth;
}

/**
 * zlt_server_config_get_validator:
 * Returns: the validator plugin's name
 */
const char *
zlt_server_config_get_validator (ZltServerConfig *self)
{
  g_return_val_if_fail (ZLT_IS_SERVER_CONFIG (self), NULL);
  return self->validator;
}

/**
 * zlt_server_config_get_insecure:
 * @self: a server config
 *
 * Returns: whether `insecure=true`: a validator that lets anyone in may run
 */
gboolean
zlt_server_config_get_insecure (ZltServerConfig *self)
{
  g_return_val_if_fail (ZLT_IS_SERVER_CONFIG (self), FALSE);
  return self->insecure;
}

/**
 * zlt_server_config_get_validator_group:
 * Returns: `validator:<name>`, the group to hand zlt_plugin_loader_new_validator()
 */
const char *
zlt_server_config_get_validator_group (ZltServerConfig *self)
{
  g_return_val_if_fail (ZLT_IS_SERVER_CONFIG (self), NULL);
  return self->validator_group;
}

/**
 * zlt_server_config_get_config_directory:
 * @self: a server config
 *
 * Returns: (nullable): the config file's directory, where relative paths start; %NULL:
 *   the working directory
 */
const char *
zlt_server_config_get_config_directory (ZltServerConfig *self)
{
  g_return_val_if_fail (ZLT_IS_SERVER_CONFIG (self), NULL);
  return self->config_directory;
}

/**
 * zlt_server_config_get_keyfile:
 * Returns: (transfer none): the key file the config was read from, for the validator
 */
GKeyFile *
zlt_server_config_get_keyfile (ZltServerConfig *self)
{
  g_return_val_if_fail (ZLT_IS_SERVER_CONFIG (self), NULL);
  return self->keyfile;
}

/**
 * zlt_server_config_get_limits:
 * Returns: (transfer none): the limits on what peers may hold and do
 */
const ZltServerLimits *
zlt_server_config_get_limits (ZltServerConfig *self)
{
  g_return_val_if_fail (ZLT_IS_SERVER_CONFIG (self), NULL);
  return &self->limits;
}
