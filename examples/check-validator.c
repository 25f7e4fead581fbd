/* check-validator.c: loads libzlt-example-list.so (example-validator.c) from the
 * directory given as argument, as the server does, configures it and checks two
 * credentials of each kind. Exits 0 when it accepts and refuses what it should. */
#include <string.h>

#include <zlayer-tunnel.h>

typedef struct
{
  GMainLoop *loop;
  ZltGrant *grant;
  GError *error;
} Result;

static void
validated_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Result *r = user_data;

  r->grant = zlt_validator_validate_finish (ZLT_VALIDATOR (source), result, &r->error);
  g_main_loop_quit (r->loop);
}

static ZltGrant *
validate (ZltValidator *validator, const ZltCredential *credential, GError **error)
{
  g_autoptr (GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  Result r = { loop, NULL, NULL };

  zlt_validator_validate_async (validator, credential, NULL, validated_cb, &r);
  g_main_loop_run (loop);
  if (r.error != NULL)
    g_propagate_error (error, r.error);
  return r.grant;
}

/* a v2 credential, as the server builds it from an Auth over its nonce */
static ZltCredential *
proof_credential (const char *token)
{
  guint8 hash[ZLT_HASH_SIZE];
  guint8 nonce[ZLT_NONCE_SIZE];
  guint8 proof[ZLT_HASH_SIZE];
  g_autofree char *key_id = zlt_token_key_id (token);
  ZltUuid client_id;

  zlt_token_hash_raw (token, hash);
  zlt_random_bytes (nonce, sizeof nonce);
  zlt_uuid_generate (&client_id);
  zlt_auth_proof (hash, nonce, &client_id, proof);
  return zlt_credential_new_proof (key_id, nonce, &client_id, proof);
}

int
main (int argc, char **argv)
{
  g_autoptr (ZltPluginLoader) loader = NULL;
  g_autoptr (GKeyFile) config = g_key_file_new ();
  g_autoptr (ZltValidator) validator = NULL;
  g_autoptr (ZltGrant) grant = NULL;
  g_autoptr (ZltGrant) refused = NULL;
  g_autoptr (ZltGrant) grant_v1 = NULL;
  g_autoptr (ZltCredential) good = proof_credential ("zlt_alice_secret");
  g_autoptr (ZltCredential) bad = proof_credential ("zlt_mallory_guess");
  g_autoptr (ZltCredential) v1 = zlt_credential_new_token ("zlt_alice_secret");
  g_autoptr (GError) error = NULL;
  g_autoptr (GError) refusal = NULL;
  g_autofree char *hash = zlt_token_hash_hex ("zlt_alice_secret");
  g_autofree char *tokens = g_strdup_printf ("alice:%s;", hash);
  gboolean ok;

  if (argc != 2)
    {
      g_printerr ("usage: %s PLUGIN-DIRECTORY\n", argv[0]);
      return 2;
    }
  zlt_init ();
  loader = zlt_plugin_loader_new (argv[1]);
  if (!zlt_plugin_loader_load_all (loader, &error))
    goto failed;

  g_key_file_set_string (config, "validator:example-list", "tokens", tokens);
  g_key_file_set_string (config, "validator:example-list", "services", "web-*;");
  validator = zlt_plugin_loader_new_validator (loader, "example-list", config,
                                               "validator:example-list", &error);
  if (validator == NULL)
    goto failed;

  grant = validate (validator, good, &error);
  if (grant == NULL)
    goto failed;
  grant_v1 = validate (validator, v1, &error);
  if (grant_v1 == NULL)
    goto failed;
  refused = validate (validator, bad, &refusal);
  ok = g_str_equal (zlt_grant_get_name (grant), "alice") && zlt_grant_may_register (grant, "web-1")
       && !zlt_grant_may_register (grant, "db") && refused == NULL
       && g_error_matches (refusal, ZLT_ERROR, ZLT_ERROR_BAD_TOKEN);
  g_print ("example-list: alice %s (v2) and %s (v1), web-1 %s, db %s, a wrong token %s\n",
           grant ? "accepted" : "refused", grant_v1 ? "accepted" : "refused",
           zlt_grant_may_register (grant, "web-1") ? "allowed" : "refused",
           zlt_grant_may_register (grant, "db") ? "allowed" : "refused",
           refused == NULL ? "refused" : "accepted");

  /* a misspelt key fails the configure, naming group and key */
  g_key_file_set_string (config, "validator:example-list", "service", "x");
  g_clear_object (&validator);
  validator = zlt_plugin_loader_new_validator (loader, "example-list", config,
                                               "validator:example-list", &error);
  if (validator != NULL || !g_error_matches (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG)
      || strstr (error->message, "[validator:example-list] service") == NULL)
    {
      g_printerr ("a misspelt key was not refused as it should\n");
      return 1;
    }
  g_print ("example-list: %s\n", error->message);
  return ok ? 0 : 1;

failed:
  g_printerr ("check-validator: %s\n", error->message);
  return 1;
}
