/* zlt-grant.c: what a validator allowed a credential to do */
#include "config.h"

#include <string.h>

#include "zlt-grant.h"
#include "zlt-host-sniff.h"
#include "zlt-rate-bucket.h"
#include "zlt-util.h" /* zlt_parse_rate */
#include "zlt-service.h"

G_STATIC_ASSERT (ZLT_GRANT_RATE_MAX == ZLT_RATE_BUCKET_MAX_RATE);

struct _ZltGrant
{
  GObject parent_instance;

  char *name;
  GStrv services;         /* may register: patterns, NULL = every service */
  GStrv reach;            /* may reach through access sessions: patterns, NULL = none */
  GStrv owns;             /* names (patterns) nobody else may register, NULL = none */
  GStrv hostnames;        /* hostname patterns services may claim, NULL = none */
  gint64 expiry;          /* unix seconds, 0 = never */
  guint64 rate_limit_in;  /* bytes/s toward its services, summed, 0 = none */
  guint64 rate_limit_out; /* bytes/s toward their clients, summed, 0 = none */
  gboolean has_token_hash;
  guint8 token_hash[ZLT_HASH_SIZE];
};

/**
 * ZltGrant:
 * What a validator allowed a credential to do: the name of the token's principal, the
 * services it may register (#ZltGrant:services), reach through access sessions
 * (#ZltGrant:reach) and own (#ZltGrant:owns), as service patterns, and when it expires.
 *
 * A service pattern is a service name, `*` (every service) or a prefix followed by `*`
 * (`acme-*`), so one tenant's rights can cover a namespace of names.
 */

G_DEFINE_FINAL_TYPE (ZltGrant, zlt_grant, G_TYPE_OBJECT)

enum
{
  PROP_0,
  PROP_NAME,
  PROP_SERVICES,
  PROP_REACH,
  PROP_OWNS,
  PROP_EXPIRY,
  PROP_HOSTNAMES,
  PROP_RATE_LIMIT_IN,
  PROP_RATE_LIMIT_OUT,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

static void
zlt_grant_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  ZltGrant *self = ZLT_GRANT (object);

  switch (prop_id)
    {
    case PROP_NAME:
      g_value_set_string (value, self->name);
      break;
    case PROP_SERVICES:
      g_value_set_boxed (value, self->services);
      break;
    case PROP_REACH:
      g_value_set_boxed (value, self->reach);
      break;
    case PROP_OWNS:
      g_value_set_boxed (value, self->owns);
      break;
    case PROP_EXPIRY:
      g_value_set_int64 (value, self->expiry);
      break;
    case PROP_HOSTNAMES:
      g_value_set_boxed (value, self->hostnames);
      break;
    case PROP_RATE_LIMIT_IN:
      g_value_set_uint64 (value, self->rate_limit_in);
      break;
    case PROP_RATE_LIMIT_OUT:
      g_value_set_uint64 (value, self->rate_limit_out);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
    }
}

static void
zlt_grant_set_property (GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec)
{
  ZltGrant *self = ZLT_GRANT (object);

  switch (prop_id)
    {
    case PROP_NAME:
      g_free (self->name);
      self->name = g_value_dup_string (value);
      break;
    case PROP_SERVICES:
      g_strfreev (self->services);
      self->services = g_value_dup_boxed (value);
      break;
    case PROP_REACH:
      g_strfreev (self->reach);
      self->reach = g_value_dup_boxed (value);
      break;
    case PROP_OWNS:
      g_strfreev (self->owns);
      self->owns = g_value_dup_boxed (value);
      break;
    case PROP_EXPIRY:
      self->expiry = g_value_get_int64 (value);
      break;
    case PROP_HOSTNAMES:
      zlt_grant_set_hostnames (self, g_value_get_boxed (value));
      break;
    case PROP_RATE_LIMIT_IN:
      zlt_grant_set_rate_limits (self, g_value_get_uint64 (value), self->rate_limit_out);
      break;
    case PROP_RATE_LIMIT_OUT:
      zlt_grant_set_rate_limits (self, self->rate_limit_in, g_value_get_uint64 (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
    }
}

static void
zlt_grant_finalize (GObject *object)
{
  ZltGrant *self = ZLT_GRANT (object);
  explicit_bzero (self->token_hash, sizeof (self->token_hash));
  g_free (self->name);
  g_strfreev (self->services);
  g_strfreev (self->reach);
  g_strfreev (self->owns);
  g_strfreev (self->hostnames);

  G_OBJECT_CLASS (zlt_grant_parent_class)->finalize (object);
}

static void
zlt_grant_class_init (ZltGrantClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->get_property = zlt_grant_get_property;
  object_class->set_property = zlt_grant_set_property;
  object_class->finalize = zlt_grant_finalize;

  /**
   * ZltGrant:name:
   * The token's name, for logs and the D-Bus view; also the principal that owns what the
   * token registers (tokens of one name are one principal, as while rotating a token).
   */
  properties[PROP_NAME]
      = g_param_spec_string ("name", NULL, NULL, NULL,
                             G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  /**
   * ZltGrant:services:
   * What may be registered, as service patterns. %NULL: every service; empty: none.
   */
  properties[PROP_SERVICES]
      = g_param_spec_boxed ("services", NULL, NULL, G_TYPE_STRV,
                            G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  /**
   * ZltGrant:reach:
   * What may be reached through access sessions, as service patterns. %NULL or empty:
   * nothing.
   */
  properties[PROP_REACH]
      = g_param_spec_boxed ("reach", NULL, NULL, G_TYPE_STRV,
                            G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  /**
   * ZltGrant:owns:
   * Names (service patterns) reserved to this grant's principal: nobody else may register
   * a matching service, even while its owner is away.
   */
  properties[PROP_OWNS]
      = g_param_spec_boxed ("owns", NULL, NULL, G_TYPE_STRV,
                            G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  /**
   * ZltGrant:expiry:
   * Unix time in seconds after which the grant is void; 0: never.
   */
  properties[PROP_EXPIRY]
      = g_param_spec_int64 ("expiry", NULL, NULL, 0, G_MAXINT64, 0,
                            G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  /**
   * ZltGrant:hostnames:
   * Hostnames a service of this grant may ask for on the server's shared ports, as
   * hostname patterns (`app.example.test`, `*.apps.example.test`). %NULL or empty: none.
   */
  properties[PROP_HOSTNAMES]
      = g_param_spec_boxed ("hostnames", NULL, NULL, G_TYPE_STRV,
                            G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  /**
   * ZltGrant:rate-limit-in:
   * The token's bandwidth toward its services, in bytes per second, shared by every
   * public connection of every service of its principal on the server (in the direction
   * from the public client to the service); 0: no limit. The server enforces it.
   */
  properties[PROP_RATE_LIMIT_IN]
      = g_param_spec_uint64 ("rate-limit-in", NULL, NULL, 0, ZLT_GRANT_RATE_MAX, 0,
                             G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  /**
   * ZltGrant:rate-limit-out:
   * The token's bandwidth from its services toward their public clients, in bytes per
   * second, shared like #ZltGrant:rate-limit-in; 0: no limit.
   */
  properties[PROP_RATE_LIMIT_OUT]
      = g_param_spec_uint64 ("rate-limit-out", NULL, NULL, 0, ZLT_GRANT_RATE_MAX, 0,
                             G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
zlt_grant_init (ZltGrant *self)
{
}

/**
 * zlt_service_pattern_is_valid:
 * @pattern: (nullable): a service pattern
 *
 * Returns: %TRUE for a service name, `*`, or a service name's prefix followed by `*`
 */
gboolean
zlt_service_pattern_is_valid (const char *pattern)
{
  g_autofree char *prefix = NULL;
  gsize len;

  if (pattern == NULL)
    return FALSE;
  len = strlen (pattern);
  if (len == 0 || pattern[len - 1] != '*')
    return zlt_service_name_is_valid (pattern);
  if (len == 1)
    return TRUE;
  prefix = g_strndup (pattern, len - 1);
  return zlt_service_name_is_valid (prefix);
}

/**
 * zlt_service_pattern_matches:
 * @pattern: a valid service pattern
 * @service: a service name
 *
 * Returns: %TRUE when @pattern covers @service
 */
gboolean
zlt_service_pattern_matches (const char *pattern, const char *service)
{
  gsize len;

  g_return_val_if_fail (pattern != NULL, FALSE);
  g_return_val_if_fail (service != NULL, FALSE);

  len = strlen (pattern);
  if (len > 0 && pattern[len - 1] == '*')
    return strncmp (pattern, service, len - 1) == 0;
  return strcmp (pattern, service) == 0;
}

static gboolean
any_matches (char **patterns, const char *service)
{
  for (guint i = 0; patterns != NULL && patterns[i] != NULL; i++)
    if (zlt_service_pattern_matches (patterns[i], service))
      return TRUE;
  return FALSE;
}

/**
 * zlt_grant_new:
 * @name: the token's name, for logs and the D-Bus view; also who owns what the token
 *   registers (tokens of one name are one principal, as while rotating a token)
 * @token_hash: (nullable) (array fixed-size=32): SHA-256 of the token, which the server
 *   derives the session key from; %NULL only for validators that accept anything
 * @services: (nullable) (array zero-terminated=1): service patterns the token may register;
 *   %NULL = all
 * @expiry: unix time in seconds after which the grant is void; 0 = never
 *
 * The grant reaches nothing through access sessions and owns no names; see
 * zlt_grant_new_full().
 *
 * Returns: (transfer full): a new grant
 */
ZltGrant *
zlt_grant_new (const char *name, const guint8 token_hash[ZLT_HASH_SIZE],
               const char *const *services, gint64 expiry)
{
  return zlt_grant_new_full (name, token_hash, services, NULL, NULL, expiry);
}

/**
 * zlt_grant_new_full:
 * @name: the token's name (see zlt_grant_new())
 * @token_hash: (nullable) (array fixed-size=32): SHA-256 of the token
 * @register_patterns: (nullable) (array zero-terminated=1): service patterns the token may
 *   register; %NULL = all
 * @reach_patterns: (nullable) (array zero-terminated=1): service patterns the token may
 *   reach through access sessions; %NULL = none
 * @owns: (nullable) (array zero-terminated=1): service patterns reserved to this grant's
 *   name: nobody else may register a matching service, even while its owner is away
 * @expiry: unix time in seconds after which the grant is void; 0 = never
 *
 * Returns: (transfer full): a new grant
 */
ZltGrant *
zlt_grant_new_full (const char *name, const guint8 token_hash[ZLT_HASH_SIZE],
                    const char *const *register_patterns, const char *const *reach_patterns,
                    const char *const *owns, gint64 expiry)
{
  ZltGrant *self;

  g_return_val_if_fail (name != NULL, NULL);
  g_return_val_if_fail (expiry >= 0, NULL);

  self = g_object_new (ZLT_TYPE_GRANT, "name", name, "services", register_patterns, "reach",
                       reach_patterns, "owns", owns, "expiry", expiry, NULL);
  if (token_hash != NULL)
    {
      memcpy (self->token_hash, token_hash, ZLT_HASH_SIZE);
      self->has_token_hash = TRUE;
    }
  return self;
}

/**
 * zlt_grant_get_name:
 * @self: a grant
 *
 * Returns: the grant's name (#ZltGrant:name)
 */
const char *
zlt_grant_get_name (ZltGrant *self)
{
  g_return_val_if_fail (ZLT_IS_GRANT (self), NULL);

  return self->name;
}

/**
 * zlt_grant_get_services:
 * @self: a grant
 *
 * Returns: (nullable) (array zero-terminated=1) (transfer none): the service patterns that
 *   may be registered, %NULL when every service may
 */
const char *const *
zlt_grant_get_services (ZltGrant *self)
{
  g_return_val_if_fail (ZLT_IS_GRANT (self), NULL);

  return (const char *const *) self->services;
}

/**
 * zlt_grant_get_expiry:
 * @self: a grant
 *
 * Returns: unix time in seconds after which the grant is void; 0 = never
 */
gint64
zlt_grant_get_expiry (ZltGrant *self)
{
  g_return_val_if_fail (ZLT_IS_GRANT (self), 0);

  return self->expiry;
}

/**
 * zlt_grant_get_token_hash:
 * @self: a grant
 *
 * Returns: (nullable) (array fixed-size=32): the token's SHA-256, %NULL when the validator
 *   had none
 */
const guint8 *
zlt_grant_get_token_hash (ZltGrant *self)
{
  g_return_val_if_fail (ZLT_IS_GRANT (self), NULL);

  return self->has_token_hash ? self->token_hash : NULL;
}

/**
 * zlt_grant_get_reach:
 * @self: a grant
 *
 * Returns: (nullable) (array zero-terminated=1) (transfer none): the service patterns
 *   reachable through access sessions
 */
const char *const *
zlt_grant_get_reach (ZltGrant *self)
{
  g_return_val_if_fail (ZLT_IS_GRANT (self), NULL);

  return (const char *const *) self->reach;
}

/**
 * zlt_grant_get_owns:
 * @self: a grant
 *
 * Returns: (nullable) (array zero-terminated=1) (transfer none): the service patterns
 *   reserved to this grant's name
 */
const char *const *
zlt_grant_get_owns (ZltGrant *self)
{
  g_return_val_if_fail (ZLT_IS_GRANT (self), NULL);

  return (const char *const *) self->owns;
}

/**
 * zlt_grant_may_register:
 * @self: a grant
 * @service: a service name
 *
 * Returns: %TRUE when @service may be registered under this grant
 */
gboolean
zlt_grant_may_register (ZltGrant *self, const char *service)
{
  g_return_val_if_fail (ZLT_IS_GRANT (self), FALSE);
  g_return_val_if_fail (service != NULL, FALSE);

  return self->services == NULL || any_matches (self->services, service);
}

/**
 * zlt_grant_allows_service:
 * @self: a grant
 * @service: a service name
 *
 * What zlt_grant_may_register() was called before rights were split in two.
 *
 * Returns: %TRUE when @service may be registered under this grant
 */
gboolean
zlt_grant_allows_service (ZltGrant *self, const char *service)
{
  return zlt_grant_may_register (self, service);
}

/**
 * zlt_grant_may_reach:
 * @self: a grant
 * @service: a service name
 *
 * Returns: %TRUE when @service may be reached through an access session
 */
gboolean
zlt_grant_may_reach (ZltGrant *self, const char *service)
{
  g_return_val_if_fail (ZLT_IS_GRANT (self), FALSE);
  g_return_val_if_fail (service != NULL, FALSE);

  return any_matches (self->reach, service);
}

/**
 * zlt_grant_may_reach_any:
 * @self: a grant
 *
 * Returns: %TRUE when the grant reaches at least one service pattern: the server's
 *   answer to a client asking for access sessions, whatever its caps claim
 */
gboolean
zlt_grant_may_reach_any (ZltGrant *self)
{
  g_return_val_if_fail (ZLT_IS_GRANT (self), FALSE);

  return self->reach != NULL && self->reach[0] != NULL;
}

/**
 * zlt_grant_owns:
 * @self: a grant
 * @service: a service name
 *
 * Returns: %TRUE when @service is reserved to this grant's name
 */
gboolean
zlt_grant_owns (ZltGrant *self, const char *service)
{
  g_return_val_if_fail (ZLT_IS_GRANT (self), FALSE);
  g_return_val_if_fail (service != NULL, FALSE);

  return any_matches (self->owns, service);
}

/**
 * zlt_grant_is_expired:
 * @self: a grant
 * @now: unix time in seconds
 *
 * Returns: %TRUE when the grant has an expiry and @now has reached it
 */
gboolean
zlt_grant_is_expired (ZltGrant *self, gint64 now)
{
  g_return_val_if_fail (ZLT_IS_GRANT (self), TRUE);

  return self->expiry != 0 && now >= self->expiry;
}

/**
 * zlt_grant_set_hostnames:
 * @self: a grant
 * @hostnames: (nullable) (array zero-terminated=1): hostname patterns; %NULL: none
 *
 * Sets which hostnames services of this grant may claim (#ZltGrant:hostnames).
 * Validators set it before they hand the grant out.
 */
void
zlt_grant_set_hostnames (ZltGrant *self, const char *const *hostnames)
{
  g_return_if_fail (ZLT_IS_GRANT (self));

  if (hostnames == NULL && self->hostnames == NULL)
    return;
  if (hostnames != NULL && self->hostnames != NULL
      && g_strv_equal (hostnames, (const char *const *) self->hostnames))
    return;
  g_strfreev (self->hostnames);
  self->hostnames = g_strdupv ((char **) hostnames);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_HOSTNAMES]);
}

/**
 * zlt_grant_get_hostnames:
 * @self: a grant
 *
 * Returns: (nullable) (transfer none): the hostname patterns services may claim
 */
const char *const *
zlt_grant_get_hostnames (ZltGrant *self)
{
  g_return_val_if_fail (ZLT_IS_GRANT (self), NULL);
  return (const char *const *) self->hostnames;
}

/**
 * zlt_grant_may_claim_hostname:
 * @self: a grant
 * @hostname: a normalized hostname
 *
 * Returns: %TRUE when one of the grant's hostname patterns covers @hostname
 */
gboolean
zlt_grant_may_claim_hostname (ZltGrant *self, const char *hostname)
{
  g_return_val_if_fail (ZLT_IS_GRANT (self), FALSE);
  g_return_val_if_fail (hostname != NULL, FALSE);
  return zlt_hostname_patterns_match ((const char *const *) self->hostnames, hostname);
}

/**
 * zlt_grant_set_rate_limits:
 * @self: a grant
 * @rate_in: bytes per second from public clients toward the token's services, at most
 *   %ZLT_GRANT_RATE_MAX; 0: no limit
 * @rate_out: bytes per second from the services toward their clients; 0: no limit
 *
 * Sets the token's bandwidth limits (#ZltGrant:rate-limit-in, #ZltGrant:rate-limit-out),
 * which the server holds all public connections of the token's principal to, together.
 * Validators set them before they hand the grant out.
 */
void
zlt_grant_set_rate_limits (ZltGrant *self, guint64 rate_in, guint64 rate_out)
{
  g_return_if_fail (ZLT_IS_GRANT (self));
  g_return_if_fail (rate_in <= ZLT_GRANT_RATE_MAX && rate_out <= ZLT_GRANT_RATE_MAX);

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
 * zlt_grant_get_rate_limit_in:
 * @self: a grant
 *
 * Returns: bytes per second from public clients toward the token's services; 0: no limit
 */
guint64
zlt_grant_get_rate_limit_in (ZltGrant *self)
{
  g_return_val_if_fail (ZLT_IS_GRANT (self), 0);
  return self->rate_limit_in;
}

/**
 * zlt_grant_get_rate_limit_out:
 * @self: a grant
 *
 * Returns: bytes per second from the token's services toward their clients; 0: no limit
 */
guint64
zlt_grant_get_rate_limit_out (ZltGrant *self)
{
  g_return_val_if_fail (ZLT_IS_GRANT (self), 0);
  return self->rate_limit_out;
}

/**
 * zlt_grant_parse_rate:
 * @text: a rate in bytes per second: digits, then optionally `k`, `M` or `G` (powers of
 *   1000: `5M` is 5000000 bytes/s, 40 Mbit/s); `0` is no limit
 * @rate: (out): the rate
 *
 * Parses a rate as the `rate-limit-in` and `rate-limit-out` keys of services and tokens
 * write it, for validators that read token limits.
 *
 * Returns: %TRUE when @text is such a rate, at most %ZLT_GRANT_RATE_MAX
 */
gboolean
zlt_grant_parse_rate (const char *text, guint64 *rate)
{
  g_return_val_if_fail (rate != NULL, FALSE);
  return zlt_parse_rate (text, rate);
}
