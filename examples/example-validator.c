/* example-validator.c: an out-of-tree validator plugin, libzlt-example-list.so.
 *
 * It accepts the tokens whose SHA-256 its config group lists, each under one name,
 * and lets them register the services its `services` key names:
 *
 *   [server]
 *   validator=example-list
 *
 *   [validator:example-list]
 *   tokens=alice:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08;
 *   services=web-*;ssh
 *
 * Build it against the installed SDK only:
 *
 *   cc -shared -fPIC -o libzlt-example-list.so example-validator.c \
 *      $(pkg-config --cflags --libs zlayer-tunnel-1)
 */
#include <string.h>

#include <zlt-plugin.h>

#define EXAMPLE_TYPE_LIST_VALIDATOR (example_list_validator_get_type ())
G_DECLARE_FINAL_TYPE (ExampleListValidator, example_list_validator, EXAMPLE, LIST_VALIDATOR,
                      ZltValidator)

struct _ExampleListValidator
{
  ZltValidator parent_instance;
  GHashTable *tokens; /* key id → Entry */
  GStrv services;     /* patterns every token may register; NULL = all */
};

typedef struct
{
  char *name;
  guint8 hash[ZLT_HASH_SIZE];
} Entry;

static void
entry_free (gpointer data)
{
  Entry *entry = data;

  g_free (entry->name);
  g_free (entry);
}

G_DEFINE_FINAL_TYPE (ExampleListValidator, example_list_validator, ZLT_TYPE_VALIDATOR)

/* Reads [validator:example-list]. Unknown keys and bad values fail with the group and
 * key named, so `zlayer-tunnel server --check` catches them. */
static gboolean
example_list_validator_configure (ZltValidator *validator, GKeyFile *config, const char *group,
                                  GError **error)
{
  ExampleListValidator *self = EXAMPLE_LIST_VALIDATOR (validator);
  g_auto (GStrv) keys = g_key_file_get_keys (config, group, NULL, NULL);
  g_auto (GStrv) tokens = NULL;

  for (guint i = 0; keys != NULL && keys[i] != NULL; i++)
    {
      if (!g_str_equal (keys[i], "tokens") && !g_str_equal (keys[i], "services")
          && !g_str_equal (keys[i], "insecure"))
        {
          g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG, "[%s] %s: unknown key", group,
                       keys[i]);
          return FALSE;
        }
    }

  tokens = g_key_file_get_string_list (config, group, "tokens", NULL, NULL);
  for (guint i = 0; tokens != NULL && tokens[i] != NULL; i++)
    {
      g_autofree Entry *entry = g_new0 (Entry, 1);
      const char *colon = strchr (tokens[i], ':');

      if (colon == NULL || colon == tokens[i] || !zlt_hash_from_hex (colon + 1, entry->hash))
        {
          g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                       "[%s] tokens: entry %u is not NAME:SHA256", group, i + 1);
          return FALSE;
        }
      entry->name = g_strndup (tokens[i], (gsize) (colon - tokens[i]));
      /* the lookup key of a credential is the key id: the hash's first 16 hex digits */
      g_hash_table_replace (self->tokens, g_ascii_strdown (colon + 1, ZLT_KEY_ID_LEN),
                            g_steal_pointer (&entry));
    }

  g_clear_pointer (&self->services, g_strfreev);
  self->services = g_key_file_get_string_list (config, group, "services", NULL, NULL);
  for (guint i = 0; self->services != NULL && self->services[i] != NULL; i++)
    {
      if (!zlt_service_pattern_is_valid (self->services[i]))
        {
          g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                       "[%s] services: ‘%s’ is not a service pattern", group, self->services[i]);
          return FALSE;
        }
    }
  return TRUE;
}

/* No I/O: the synchronous vfunc, which the base class runs for validate_async. */
static ZltGrant *
example_list_validator_validate (ZltValidator *validator, const ZltCredential *credential,
                                 GError **error)
{
  ExampleListValidator *self = EXAMPLE_LIST_VALIDATOR (validator);
  Entry *entry = g_hash_table_lookup (self->tokens, zlt_credential_get_lookup_key (credential));

  /* the lookup key is only a hint from the peer: the credential must prove the hash */
  if (entry == NULL || !zlt_credential_matches_hash (credential, entry->hash))
    {
      g_set_error_literal (error, ZLT_ERROR, ZLT_ERROR_BAD_TOKEN, "unknown token");
      return NULL;
    }
  /* the grant carries the hash: the server derives the tunnel's session key from it */
  return zlt_grant_new (entry->name, entry->hash, (const char *const *) self->services, 0);
}

static void
example_list_validator_finalize (GObject *object)
{
  ExampleListValidator *self = EXAMPLE_LIST_VALIDATOR (object);

  g_hash_table_unref (self->tokens);
  g_strfreev (self->services);
  G_OBJECT_CLASS (example_list_validator_parent_class)->finalize (object);
}

static void
example_list_validator_class_init (ExampleListValidatorClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  ZltValidatorClass *validator_class = ZLT_VALIDATOR_CLASS (klass);

  object_class->finalize = example_list_validator_finalize;
  validator_class->name = "example-list"; /* [server] validator=, [validator:example-list] */
  validator_class->configure = example_list_validator_configure;
  validator_class->validate = example_list_validator_validate;
}

static void
example_list_validator_init (ExampleListValidator *self)
{
  self->tokens = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, entry_free);
}

/* the plugin's one entry point: register the type with the loader */
static gboolean
example_list_register (ZltPluginLoader *loader, GError **error)
{
  return zlt_plugin_loader_add_validator_type (loader, EXAMPLE_TYPE_LIST_VALIDATOR, error);
}

ZLT_PLUGIN_DEFINE (example_list_register)
