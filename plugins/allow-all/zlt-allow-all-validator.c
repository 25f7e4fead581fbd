/* zlt-allow-all-validator.c: the "allow-all" validator and its plugin entry point:
 * every v1 token gets in, with every service and no expiry. Development only.
 *
 * The base class refuses to configure it unless the config says insecure=true ([server]
 * or its own group), and it logs every token it lets in.
 *
 * v2 agents are refused. A v2 Auth carries a key id and an HMAC proof keyed with the
 * token's SHA-256; the server derives the session key (PROTOCOL-v2.md §3) from the hash
 * the grant carries. Without a list of hashes this validator cannot know that hash, so
 * it could neither check the proof nor give the server a key that matches the agent's.
 * A v1 tunnel needs no session key, so v1 grants carry no hash (zlt_grant_new() allows
 * NULL for validators that accept anything). Use legacy-auth=true on the agent and
 * allow-legacy-auth=true on the server, or the token-file validator. */
#include "config.h"

#include <glib/gi18n-lib.h>

#include "zlt-plugin.h"

#define ZLT_TYPE_ALLOW_ALL_VALIDATOR (zlt_allow_all_validator_get_type ())
G_DECLARE_FINAL_TYPE (ZltAllowAllValidator, zlt_allow_all_validator, ZLT, ALLOW_ALL_VALIDATOR,
                      ZltValidator)

struct _ZltAllowAllValidator
{
  ZltValidator parent_instance;
};

G_DEFINE_FINAL_TYPE (ZltAllowAllValidator, zlt_allow_all_validator, ZLT_TYPE_VALIDATOR)

static ZltGrant *
zlt_allow_all_validator_validate (ZltValidator *validator, const ZltCredential *credential,
                                  GError **error)
{
  if (zlt_credential_get_kind (credential) != ZLT_CREDENTIAL_KIND_TOKEN)
    {
      g_set_error_literal (error, ZLT_ERROR, ZLT_ERROR_BAD_TOKEN,
                           _ ("the allow-all validator cannot check v2 proofs; use legacy "
                              "authentication or the token-file validator"));
      return NULL;
    }
  g_message ("allow-all validator accepted a token: development only");
  return zlt_grant_new ("allow-all", NULL, NULL, 0);
}

/* Its group holds only `insecure`: a misspelt key is an error here as in every group. */
static gboolean
zlt_allow_all_validator_configure (ZltValidator *validator, GKeyFile *config, const char *group,
                                   GError **error)
{
  g_auto (GStrv) keys = g_key_file_get_keys (config, group, NULL, NULL);

  for (guint i = 0; keys != NULL && keys[i] != NULL; i++)
    if (!g_str_equal (keys[i], "insecure"))
      {
        g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG, _ ("[%s] %s: unknown key"), group,
                     keys[i]);
        return FALSE;
      }
  return TRUE;
}

static void
zlt_allow_all_validator_class_init (ZltAllowAllValidatorClass *klass)
{
  ZltValidatorClass *validator_class = ZLT_VALIDATOR_CLASS (klass);

  validator_class->name = "allow-all";
  validator_class->insecure = TRUE;
  validator_class->configure = zlt_allow_all_validator_configure;
  validator_class->validate = zlt_allow_all_validator_validate;
}

static void
zlt_allow_all_validator_init (ZltAllowAllValidator *self)
{
}

static gboolean
zlt_allow_all_plugin_register (ZltPluginLoader *loader, GError **error)
{
  return zlt_plugin_loader_add_validator_type (loader, ZLT_TYPE_ALLOW_ALL_VALIDATOR, error);
}

ZLT_PLUGIN_DEFINE (zlt_allow_all_plugin_register)
