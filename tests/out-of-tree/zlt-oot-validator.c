/* zlt-oot-validator.c: a validator built out of tree, against the installed SDK only
 * (zlayer-tunnel-1.pc and its headers): one token, given by its SHA-256 in
 * [validator:oot] token-sha256, may register and reach every service.
 *
 * The out-of-tree test (run-out-of-tree.sh) compiles it with nothing but
 * `pkg-config --cflags --libs zlayer-tunnel-1`: a header a plugin needs that is not
 * installed fails that build. */
#include <string.h>

#include <zlt-plugin.h>

#define OOT_TYPE_VALIDATOR (oot_validator_get_type ())
G_DECLARE_FINAL_TYPE (OotValidator, oot_validator, OOT, VALIDATOR, ZltValidator)

struct _OotValidator
{
  ZltValidator parent_instance;

  guint8 hash[ZLT_HASH_SIZE];
  gboolean configured;
};

G_DEFINE_FINAL_TYPE (OotValidator, oot_validator, ZLT_TYPE_VALIDATOR)

static gboolean
oot_validator_configure (ZltValidator *validator, GKeyFile *config, const char *group,
                         GError **error)
{
  OotValidator *self = OOT_VALIDATOR (validator);
  g_auto (GStrv) keys = g_key_file_get_keys (config, group, NULL, NULL);
  g_autofree char *hex = NULL;

  for (guint i = 0; keys != NULL && keys[i] != NULL; i++)
    {
      if (strcmp (keys[i], "token-sha256") != 0)
        {
          g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                       "[%s] %s: unknown key (expected token-sha256)", group, keys[i]);
          return FALSE;
        }
    }
  hex = g_key_file_get_string (config, group, "token-sha256", NULL);
  if (hex == NULL)
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                   "[%s] token-sha256: missing (the SHA-256 of the token, 64 hex digits)", group);
      return FALSE;
    }
  if (!zlt_hash_from_hex (hex, self->hash))
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                   "[%s] token-sha256: not 64 hex digits", group);
      return FALSE;
    }
  self->configured = TRUE;
  return TRUE;
}

static ZltGrant *
oot_validator_validate (ZltValidator *validator, const ZltCredential *credential, GError **error)
{
  OotValidator *self = OOT_VALIDATOR (validator);
  const char *const all[] = { "*", NULL };

  if (!self->configured || !zlt_credential_matches_hash (credential, self->hash))
    {
      g_set_error_literal (error, ZLT_ERROR, ZLT_ERROR_BAD_TOKEN, "unknown token");
      return NULL;
    }
  return zlt_grant_new_full ("oot", self->hash, all, all, NULL, 0);
}

static void
oot_validator_class_init (OotValidatorClass *klass)
{
  ZltValidatorClass *validator_class = ZLT_VALIDATOR_CLASS (klass);

  validator_class->name = "oot";
  validator_class->configure = oot_validator_configure;
  validator_class->validate = oot_validator_validate;
}

static void
oot_validator_init (OotValidator *self)
{
}

static gboolean
oot_register (ZltPluginLoader *loader, GError **error)
{
  return zlt_plugin_loader_add_validator_type (loader, OOT_TYPE_VALIDATOR, error);
}

ZLT_PLUGIN_DEFINE (oot_register)
