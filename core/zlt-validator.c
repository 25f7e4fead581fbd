/* zlt-validator.c: plugin base deciding whether a credential may open a tunnel */
#include "config.h"

#include <glib/gi18n-lib.h>

#include "zlt-error.h"
#include "zlt-validator.h"

typedef struct
{
  char *config_directory;
  ZltCredentialMode credential_mode;
} ZltValidatorPrivate;

/**
 * ZltValidator:
 * The base class of token validators: the server asks its validator whether a
 * credential may open a tunnel, and gets a #ZltGrant back (or an error).
 *
 * A validator plugin subclasses #ZltValidator, sets #ZltValidatorClass.name in its
 * class_init, implements #ZltValidatorClass.validate (no I/O) or
 * #ZltValidatorClass.validate_async and #ZltValidatorClass.validate_finish (I/O), and
 * usually #ZltValidatorClass.configure, which reads the validator's own group
 * `[validator:NAME]` of the server's config. It registers the type from its plugin entry
 * point with zlt_plugin_loader_add_validator_type(). The writing-a-validator page of this
 * reference walks through a whole one.
 *
 * The credential a validator receives is a hash-challenge credential (see
 * #ZltCredential): look the token up by zlt_credential_get_lookup_key() and accept it
 * only when zlt_credential_matches_hash() matches the SHA-256 you store.
 */

G_DEFINE_ABSTRACT_TYPE_WITH_PRIVATE (ZltValidator, zlt_validator, G_TYPE_OBJECT)

enum
{
  PROP_0,
  PROP_CONFIG_DIRECTORY,
  N_PROPS
};
static GParamSpec *props[N_PROPS];

static void
zlt_validator_real_validate_async (ZltValidator *self, const ZltCredential *credential,
                                   GCancellable *cancellable, GAsyncReadyCallback callback,
                                   gpointer user_data)
{
  ZltValidatorClass *klass = ZLT_VALIDATOR_GET_CLASS (self);
  g_autoptr (GTask) task = g_task_new (self, cancellable, callback, user_data);
  g_autoptr (GError) error = NULL;
  ZltGrant *grant;

  g_task_set_source_tag (task, zlt_validator_real_validate_async);
  if (klass->validate == NULL)
    {
      g_task_return_new_error (task, ZLT_ERROR, ZLT_ERROR_FAILED,
                               _ ("validator %s cannot validate credentials"), klass->name);
      return;
    }
  grant = klass->validate (self, credential, &error);
  if (grant == NULL)
    {
      if (error == NULL)
        g_set_error_literal (&error, ZLT_ERROR, ZLT_ERROR_BAD_TOKEN, _ ("invalid token"));
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  g_task_return_pointer (task, grant, g_object_unref);
}

static ZltGrant *
zlt_validator_real_validate_finish (ZltValidator *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

static void
zlt_validator_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  ZltValidator *self = ZLT_VALIDATOR (object);

  switch (prop_id)
    {
    case PROP_CONFIG_DIRECTORY:
      g_value_set_string (value, zlt_validator_get_config_directory (self));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
zlt_validator_set_property (GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec)
{
  ZltValidator *self = ZLT_VALIDATOR (object);

  switch (prop_id)
    {
    case PROP_CONFIG_DIRECTORY:
      zlt_validator_set_config_directory (self, g_value_get_string (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
zlt_validator_finalize (GObject *object)
{
  ZltValidatorPrivate *priv = zlt_validator_get_instance_private (ZLT_VALIDATOR (object));

  g_free (priv->config_directory);
  G_OBJECT_CLASS (zlt_validator_parent_class)->finalize (object);
}

static void
zlt_validator_class_init (ZltValidatorClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->get_property = zlt_validator_get_property;
  object_class->set_property = zlt_validator_set_property;
  object_class->finalize = zlt_validator_finalize;
  klass->validate_async = zlt_validator_real_validate_async;
  klass->validate_finish = zlt_validator_real_validate_finish;

  /**
   * ZltValidator:config-directory:
   * The directory of the config file the validator's group came from: relative paths in
   * it start there (zlt_validator_resolve_path()). %NULL: the working directory.
   */
  props[PROP_CONFIG_DIRECTORY]
      = g_param_spec_string ("config-directory", NULL, NULL, NULL,
                             G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, props);
}

static void
zlt_validator_init (ZltValidator *self)
{
}

/**
 * ZltValidatorClass::validate:
 * @self: the validator
 * @credential: what the agent presented; copy it to keep it
 * @error: return location for a #GError
 *
 * Checks @credential without I/O; the default #ZltValidatorClass.validate_async runs
 * it.
 *
 * Returns: (transfer full) (nullable): the grant, or %NULL with %ZLT_ERROR_BAD_TOKEN
 *   or %ZLT_ERROR_EXPIRED_TOKEN
 */

/**
 * zlt_validator_get_config_directory:
 * @self: a validator
 *
 * Returns: (nullable): the directory relative paths of the validator's group start at
 *   (#ZltValidator:config-directory)
 */
const char *
zlt_validator_get_config_directory (ZltValidator *self)
{
  ZltValidatorPrivate *priv;

  g_return_val_if_fail (ZLT_IS_VALIDATOR (self), NULL);
  priv = zlt_validator_get_instance_private (self);
  return priv->config_directory;
}

/**
 * zlt_validator_set_config_directory:
 * @self: a validator
 * @directory: (nullable): a directory; made absolute at once
 *
 * Sets #ZltValidator:config-directory. The plugin loader sets it from the config file's
 * directory before configuring the validator.
 */
void
zlt_validator_set_config_directory (ZltValidator *self, const char *directory)
{
  ZltValidatorPrivate *priv;
  g_autofree char *absolute = directory != NULL ? g_canonicalize_filename (directory, NULL) : NULL;

  g_return_if_fail (ZLT_IS_VALIDATOR (self));
  priv = zlt_validator_get_instance_private (self);
  /* absolute, so a later change of directory does not move what it anchors */
  if (g_strcmp0 (priv->config_directory, absolute) == 0)
    return;
  g_free (priv->config_directory);
  priv->config_directory = g_steal_pointer (&absolute);
  g_object_notify_by_pspec (G_OBJECT (self), props[PROP_CONFIG_DIRECTORY]);
}

/**
 * zlt_validator_resolve_path:
 * @self: a validator
 * @path: a path from the validator's group
 *
 * Returns: (transfer full): @path made absolute: a relative one starts at the config's
 *   directory (#ZltValidator:config-directory), as every path in a config file does
 */
char *
zlt_validator_resolve_path (ZltValidator *self, const char *path)
{
  g_return_val_if_fail (ZLT_IS_VALIDATOR (self), NULL);
  g_return_val_if_fail (path != NULL, NULL);

  return g_canonicalize_filename (path, zlt_validator_get_config_directory (self));
}

/**
 * zlt_validator_get_credential_mode:
 *
 * Returns: what the validator needs: %ZLT_CREDENTIAL_MODE_CHALLENGE (the default) or
 *   %ZLT_CREDENTIAL_MODE_BEARER
 */
ZltCredentialMode
zlt_validator_get_credential_mode (ZltValidator *self)
{
  ZltValidatorPrivate *priv;

  g_return_val_if_fail (ZLT_IS_VALIDATOR (self), ZLT_CREDENTIAL_MODE_CHALLENGE);
  priv = zlt_validator_get_instance_private (self);
  return priv->credential_mode;
}

/**
 * zlt_validator_set_credential_mode:
 * @mode: %ZLT_CREDENTIAL_MODE_BEARER for a validator that must see the raw token
 *
 * A bearer validator gets %ZLT_CREDENTIAL_KIND_BEARER credentials from v2 agents
 * (zlt_credential_get_token()), which send the token only over TLS whose certificate
 * they verified (PROTOCOL-v2.md §2a); v1 agents still send %ZLT_CREDENTIAL_KIND_TOKEN
 * credentials where the server allows raw-token authentication. The server reads the
 * mode when it starts.
 */
void
zlt_validator_set_credential_mode (ZltValidator *self, ZltCredentialMode mode)
{
  ZltValidatorPrivate *priv;

  g_return_if_fail (ZLT_IS_VALIDATOR (self));
  g_return_if_fail (mode == ZLT_CREDENTIAL_MODE_CHALLENGE || mode == ZLT_CREDENTIAL_MODE_BEARER);
  priv = zlt_validator_get_instance_private (self);
  priv->credential_mode = mode;
}

/**
 * zlt_validator_get_name:
 * @self: a validator
 *
 * Returns: the validator's name, as configs name it (#ZltValidatorClass.name)
 */
const char *
zlt_validator_get_name (ZltValidator *self)
{
  g_return_val_if_fail (ZLT_IS_VALIDATOR (self), NULL);

  return ZLT_VALIDATOR_GET_CLASS (self)->name;
}

/**
 * zlt_validator_is_insecure:
 * @self: a validator
 *
 * Returns: %TRUE for validators that let anyone in (development only)
 */
gboolean
zlt_validator_is_insecure (ZltValidator *self)
{
  g_return_val_if_fail (ZLT_IS_VALIDATOR (self), TRUE);

  return ZLT_VALIDATOR_GET_CLASS (self)->insecure;
}

static gboolean
zlt_validator_config_says_insecure (GKeyFile *config, const char *group)
{
  const char *groups[] = { "server", group };

  for (guint i = 0; i < G_N_ELEMENTS (groups); i++)
    {
      if (groups[i] != NULL && g_key_file_has_key (config, groups[i], "insecure", NULL)
          && g_key_file_get_boolean (config, groups[i], "insecure", NULL))
        return TRUE;
    }
  return FALSE;
}

/**
 * zlt_validator_configure:
 * @self: a validator
 * @config: the whole config; the validator reads @group and nothing it does not own
 * @group: the validator's group, usually `validator:<name>`
 * @error: return location for a #GError
 *
 * Configures the validator from its group (#ZltValidatorClass.configure). An insecure
 * validator is refused with %ZLT_ERROR_INSECURE unless @config says `insecure=true` in
 * [server] or in @group.
 *
 * Returns: %TRUE on success
 */
gboolean
zlt_validator_configure (ZltValidator *self, GKeyFile *config, const char *group, GError **error)
{
  ZltValidatorClass *klass;

  g_return_val_if_fail (ZLT_IS_VALIDATOR (self), FALSE);
  g_return_val_if_fail (config != NULL, FALSE);
  g_return_val_if_fail (group != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  klass = ZLT_VALIDATOR_GET_CLASS (self);
  if (klass->insecure)
    {
      if (!zlt_validator_config_says_insecure (config, group))
        {
          g_set_error (error, ZLT_ERROR, ZLT_ERROR_INSECURE,
                       _ ("validator %s lets every token in; set insecure=true in [server] to "
                          "use it anyway"),
                       klass->name);
          return FALSE;
        }
      g_message ("validator %s lets every token in: never use it outside development", klass->name);
    }
  if (klass->configure != NULL && !klass->configure (self, config, group, error))
    return FALSE;
  return TRUE;
}

/**
 * zlt_validator_validate_async:
 * @self: a validator
 * @credential: what the agent presented; copied if the validator needs it later
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the check is done
 * @user_data: data for @callback
 *
 * Checks @credential; finish with zlt_validator_validate_finish().
 */
void
zlt_validator_validate_async (ZltValidator *self, const ZltCredential *credential,
                              GCancellable *cancellable, GAsyncReadyCallback callback,
                              gpointer user_data)
{
  g_return_if_fail (ZLT_IS_VALIDATOR (self));
  g_return_if_fail (credential != NULL);
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  ZLT_VALIDATOR_GET_CLASS (self)->validate_async (self, credential, cancellable, callback,
                                                  user_data);
}

/**
 * zlt_validator_validate_finish:
 * @self: a validator
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * A grant that has already expired is turned into %ZLT_ERROR_EXPIRED_TOKEN here, so a
 * validator that forgets to check cannot let it through.
 *
 * Returns: (transfer full): the grant, or %NULL with %ZLT_ERROR_BAD_TOKEN,
 *   %ZLT_ERROR_EXPIRED_TOKEN or another error
 */
ZltGrant *
zlt_validator_validate_finish (ZltValidator *self, GAsyncResult *result, GError **error)
{
  g_autoptr (ZltGrant) grant = NULL;
  g_autoptr (GError) error_local = NULL;

  g_return_val_if_fail (ZLT_IS_VALIDATOR (self), NULL);
  g_return_val_if_fail (G_IS_ASYNC_RESULT (result), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  grant = ZLT_VALIDATOR_GET_CLASS (self)->validate_finish (self, result, &error_local);
  if (grant == NULL)
    {
      if (error_local == NULL)
        g_set_error_literal (&error_local, ZLT_ERROR, ZLT_ERROR_BAD_TOKEN, _ ("invalid token"));
      g_propagate_error (error, g_steal_pointer (&error_local));
      return NULL;
    }
  if (zlt_grant_is_expired (grant, g_get_real_time () / G_USEC_PER_SEC))
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_EXPIRED_TOKEN, _ ("token %s has expired"),
                   zlt_grant_get_name (grant));
      return NULL;
    }
  return g_steal_pointer (&grant);
}

/**
 * zlt_validator_add_token:
 * @self: a validator
 * @name: a name for the token, unique within the validator
 * @hash: (array fixed-size=32): SHA-256 of the token
 * @services: (nullable) (array zero-terminated=1): the services it may register or reach;
 *   %NULL = all
 * @expiry: unix time in seconds; 0 = never
 * @error: return location for a #GError
 *
 * Registers a token at runtime, as node tunnels do for their own tokens. Fails with
 * %ZLT_ERROR_FAILED when the validator cannot (#ZltValidatorClass.add_token unset).
 *
 * Returns: %TRUE on success
 */
gboolean
zlt_validator_add_token (ZltValidator *self, const char *name, const guint8 hash[ZLT_HASH_SIZE],
                         const char *const *services, gint64 expiry, GError **error)
{
  ZltValidatorClass *klass;

  g_return_val_if_fail (ZLT_IS_VALIDATOR (self), FALSE);
  g_return_val_if_fail (name != NULL, FALSE);
  g_return_val_if_fail (hash != NULL, FALSE);
  g_return_val_if_fail (expiry >= 0, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  klass = ZLT_VALIDATOR_GET_CLASS (self);
  if (klass->add_token == NULL)
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_FAILED,
                   _ ("validator %s cannot add tokens at runtime"), klass->name);
      return FALSE;
    }
  return klass->add_token (self, name, hash, services, expiry, error);
}

/**
 * zlt_validator_remove_token:
 * @self: a validator
 * @name: the token's name
 * @error: return location for a #GError
 *
 * Forgets a token added with zlt_validator_add_token(); %ZLT_ERROR_NOT_FOUND when
 * there is none by that name.
 *
 * Returns: %TRUE on success
 */
gboolean
zlt_validator_remove_token (ZltValidator *self, const char *name, GError **error)
{
  ZltValidatorClass *klass;

  g_return_val_if_fail (ZLT_IS_VALIDATOR (self), FALSE);
  g_return_val_if_fail (name != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  klass = ZLT_VALIDATOR_GET_CLASS (self);
  if (klass->remove_token == NULL)
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_FAILED,
                   _ ("validator %s cannot remove tokens at runtime"), klass->name);
      return FALSE;
    }
  return klass->remove_token (self, name, error);
}

/**
 * zlt_validator_lookup_owner:
 * @self: a validator
 * @service: a service name
 *
 * Returns: (transfer full) (nullable): the name of the grant that reserves @service,
 *   %NULL when none does
 */
char *
zlt_validator_lookup_owner (ZltValidator *self, const char *service)
{
  ZltValidatorClass *klass;

  g_return_val_if_fail (ZLT_IS_VALIDATOR (self), NULL);
  g_return_val_if_fail (service != NULL, NULL);

  klass = ZLT_VALIDATOR_GET_CLASS (self);
  return klass->lookup_owner != NULL ? klass->lookup_owner (self, service) : NULL;
}
