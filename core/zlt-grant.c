/* zlt-grant.c: what a validator allowed a credential to do */
#include "config.h"

#include <string.h>

#include "zlt-grant.h"

struct _ZltGrant
{
  GObject parent_instance;

  char *name;
  GStrv services; /* NULL = every service */
  gint64 expiry;  /* unix seconds, 0 = never */
  gboolean has_token_hash;
  guint8 token_hash[ZLT_HASH_SIZE];
};

G_DEFINE_FINAL_TYPE (ZltGrant, zlt_grant, G_TYPE_OBJECT)

enum
{
  PROP_0,
  PROP_NAME,
  PROP_SERVICES,
  PROP_EXPIRY,
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
    case PROP_EXPIRY:
      g_value_set_int64 (value, self->expiry);
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
    case PROP_EXPIRY:
      self->expiry = g_value_get_int64 (value);
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

  G_OBJECT_CLASS (zlt_grant_parent_class)->finalize (object);
}

static void
zlt_grant_class_init (ZltGrantClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->get_property = zlt_grant_get_property;
  object_class->set_property = zlt_grant_set_property;
  object_class->finalize = zlt_grant_finalize;

  properties[PROP_NAME]
      = g_param_spec_string ("name", NULL, NULL, NULL,
                             G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  /* NULL: every service; an empty list: none */
  properties[PROP_SERVICES]
      = g_param_spec_boxed ("services", NULL, NULL, G_TYPE_STRV,
                            G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  /* unix time in seconds; 0: never */
  properties[PROP_EXPIRY]
      = g_param_spec_int64 ("expiry", NULL, NULL, 0, G_MAXINT64, 0,
                            G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
zlt_grant_init (ZltGrant *self)
{
}

/**
 * zlt_grant_new:
 * @name: the token's name, for logs and the D-Bus view
 * @token_hash: (nullable): SHA-256 of the token, which the server derives the session
 *   key from; NULL only for validators that accept anything
 * @services: (nullable): the services the token may register or reach; NULL = all
 * @expiry: unix time in seconds after which the grant is void; 0 = never
 *
 * Returns: (transfer full): a new grant
 */
ZltGrant *
zlt_grant_new (const char *name, const guint8 token_hash[ZLT_HASH_SIZE],
               const char *const *services, gint64 expiry)
{
  ZltGrant *self;

  g_return_val_if_fail (name != NULL, NULL);
  g_return_val_if_fail (expiry >= 0, NULL);

  self = g_object_new (ZLT_TYPE_GRANT, "name", name, "services", services, "expiry", expiry, NULL);
  if (token_hash != NULL)
    {
      memcpy (self->token_hash, token_hash, ZLT_HASH_SIZE);
      self->has_token_hash = TRUE;
    }
  return self;
}

const char *
zlt_grant_get_name (ZltGrant *self)
{
  g_return_val_if_fail (ZLT_IS_GRANT (self), NULL);

  return self->name;
}

/**
 * zlt_grant_get_services:
 * Returns: (nullable): the allowed services, NULL when every service is allowed
 */
const char *const *
zlt_grant_get_services (ZltGrant *self)
{
  g_return_val_if_fail (ZLT_IS_GRANT (self), NULL);

  return (const char *const *) self->services;
}

gint64
zlt_grant_get_expiry (ZltGrant *self)
{
  g_return_val_if_fail (ZLT_IS_GRANT (self), 0);

  return self->expiry;
}

/**
 * zlt_grant_get_token_hash:
 * Returns: (nullable): the 32-byte token hash, NULL when the validator had none
 */
const guint8 *
zlt_grant_get_token_hash (ZltGrant *self)
{
  g_return_val_if_fail (ZLT_IS_GRANT (self), NULL);

  return self->has_token_hash ? self->token_hash : NULL;
}

/**
 * zlt_grant_allows_service:
 * Returns: TRUE when @service may be registered or reached under this grant
 */
gboolean
zlt_grant_allows_service (ZltGrant *self, const char *service)
{
  g_return_val_if_fail (ZLT_IS_GRANT (self), FALSE);
  g_return_val_if_fail (service != NULL, FALSE);

  if (self->services == NULL)
    return TRUE;
  return g_strv_contains ((const char *const *) self->services, service);
}

/**
 * zlt_grant_is_expired:
 * @now: unix time in seconds
 *
 * Returns: TRUE when the grant has an expiry and @now has reached it
 */
gboolean
zlt_grant_is_expired (ZltGrant *self, gint64 now)
{
  g_return_val_if_fail (ZLT_IS_GRANT (self), TRUE);

  return self->expiry != 0 && now >= self->expiry;
}
