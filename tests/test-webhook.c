/* test-webhook.c: the webhook validator (plugins/webhook) against a real https:// hook
 * (libsoup's server, the test certificate, 127.0.0.1 port 0): grants and their rights,
 * refusals with the hook's words, the cache, timeouts and failures that fail closed,
 * certificates it must not trust, its config, and a real server and agent logging in
 * through it over wss:// with bearer credentials. */
#include "config.h"

#include <string.h>

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "zlt-test-util.h"

#define GROUP "validator:webhook"

typedef struct
{
  char *tmpdir;
  char *cert_file;
  char *key_file;
  char *fingerprint;
  SoupServer *hook;
  char *url;
  /* what the hook answers */
  guint status;
  char *body;
  const char *content_type;
  gboolean stall;
  /* what it got */
  GPtrArray *requests; /* JsonNode* of each request body */
  GPtrArray *stalled;  /* SoupServerMessage* left unanswered */
  ZltPluginLoader *loader;
  GKeyFile *config;
} Fixture;

static void
on_hook (SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query,
         gpointer user_data)
{
  Fixture *f = user_data;
  SoupMessageBody *request = soup_server_message_get_request_body (msg);
  g_autoptr (GBytes) bytes = soup_message_body_flatten (request);
  g_autoptr (GError) error = NULL;
  JsonNode *node;

  g_assert_cmpstr (soup_server_message_get_method (msg), ==, SOUP_METHOD_POST);
  g_assert_cmpstr (
      soup_message_headers_get_content_type (soup_server_message_get_request_headers (msg), NULL),
      ==, "application/json");
  node = json_from_string (g_bytes_get_data (bytes, NULL), &error);
  g_assert_no_error (error);
  g_ptr_array_add (f->requests, node);
  if (f->stall)
    {
      soup_server_message_pause (msg);
      g_ptr_array_add (f->stalled, g_object_ref (msg));
      return;
    }
  soup_server_message_set_status (msg, f->status, NULL);
  if (f->body != NULL)
    soup_server_message_set_response (msg, f->content_type, SOUP_MEMORY_COPY, f->body,
                                      strlen (f->body));
}

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GTlsCertificate) cert = NULL;
  g_autoslist (GUri) uris = NULL;

  f->tmpdir = g_dir_make_tmp ("zlt-webhook-XXXXXX", &error);
  g_assert_no_error (error);
  if (!zlt_test_make_certificate (f->tmpdir, &f->cert_file, &f->key_file))
    g_error ("certtool (gnutls-bin) failed to make a test certificate");
  cert = g_tls_certificate_new_from_files (f->cert_file, f->key_file, &error);
  g_assert_no_error (error);
  f->fingerprint = zlt_tls_certificate_fingerprint (cert);
  f->hook = soup_server_new ("tls-certificate", cert, NULL);
  soup_server_add_handler (f->hook, "/hook", on_hook, f, NULL);
  soup_server_listen_local (f->hook, 0, SOUP_SERVER_LISTEN_HTTPS | SOUP_SERVER_LISTEN_IPV4_ONLY,
                            &error);
  g_assert_no_error (error);
  uris = soup_server_get_uris (f->hook);
  g_assert_nonnull (uris);
  f->url = g_strdup_printf ("https://127.0.0.1:%d/hook", g_uri_get_port (uris->data));
  f->status = SOUP_STATUS_OK;
  f->content_type = "application/json";
  f->requests = g_ptr_array_new_with_free_func ((GDestroyNotify) json_node_unref);
  f->stalled = g_ptr_array_new_with_free_func (g_object_unref);

  f->loader = zlt_plugin_loader_new (NULL);
  zlt_plugin_loader_load_all (f->loader, &error);
  g_assert_no_error (error);
  f->config = g_key_file_new ();
  g_key_file_set_string (f->config, GROUP, "url", f->url);
  g_key_file_set_string (f->config, GROUP, "tls-ca-file", f->cert_file);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  g_autoptr (GDir) dir = g_dir_open (f->tmpdir, 0, NULL);
  const char *name;

  for (guint i = 0; i < f->stalled->len; i++)
    {
      SoupServerMessage *msg = g_ptr_array_index (f->stalled, i);
      soup_server_message_set_status (msg, SOUP_STATUS_SERVICE_UNAVAILABLE, NULL);
      soup_server_message_unpause (msg);
    }
  g_ptr_array_unref (f->stalled);
  soup_server_disconnect (f->hook);
  g_clear_object (&f->hook);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_ptr_array_unref (f->requests);
  g_clear_object (&f->loader);
  g_key_file_unref (f->config);
  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_build_filename (f->tmpdir, name, NULL);
      g_unlink (path);
    }
  g_rmdir (f->tmpdir);
  g_free (f->tmpdir);
  g_free (f->cert_file);
  g_free (f->key_file);
  g_free (f->fingerprint);
  g_free (f->url);
  g_free (f->body);
}

static ZltValidator *
new_validator (Fixture *f, GError **error)
{
  return zlt_plugin_loader_new_validator_full (f->loader, "webhook", f->config, GROUP, f->tmpdir,
                                               error);
}

static ZltValidator *
configured (Fixture *f)
{
  g_autoptr (GError) error = NULL;
  ZltValidator *validator = new_validator (f, &error);

  g_assert_no_error (error);
  g_assert_nonnull (validator);
  g_assert_cmpint (zlt_validator_get_credential_mode (validator), ==, ZLT_CREDENTIAL_MODE_BEARER);
  return validator;
}

static void
answer (Fixture *f, guint status, const char *body)
{
  f->status = status;
  g_free (f->body);
  f->body = g_strdup (body);
}

static ZltCredential *
bearer (const char *token)
{
  guint8 nonce[ZLT_NONCE_SIZE] = { 7 };
  ZltUuid client_id;
  ZltCredential *credential;

  zlt_uuid_generate (&client_id);
  credential = zlt_credential_new_bearer (token, nonce, &client_id);
  zlt_credential_set_peer_address (credential, "203.0.113.7:51000");
  return credential;
}

static void
on_validated (GObject *source, GAsyncResult *result, gpointer user_data)
{
  GAsyncResult **out = user_data;

  *out = g_object_ref (result);
}

/* Validates and waits; *elapsed_ms (optional) gets how long it took. */
static ZltGrant *
validate (ZltValidator *validator, const ZltCredential *credential, gint64 *elapsed_ms,
          GError **error)
{
  g_autoptr (GAsyncResult) result = NULL;
  gint64 started = g_get_monotonic_time ();

  zlt_validator_validate_async (validator, credential, NULL, on_validated, &result);
  ZLT_TEST_WAIT_FOR (result != NULL, 20000);
  if (elapsed_ms != NULL)
    *elapsed_ms = (g_get_monotonic_time () - started) / 1000;
  return zlt_validator_validate_finish (validator, result, error);
}

static const char *
member (Fixture *f, guint i, const char *name)
{
  JsonObject *object;

  g_assert_cmpuint (i, <, f->requests->len);
  object = json_node_get_object (g_ptr_array_index (f->requests, i));
  return json_object_has_member (object, name) ? json_object_get_string_member (object, name)
                                               : NULL;
}

static void
test_accept (Fixture *f, gconstpointer data)
{
  g_autoptr (ZltValidator) validator = configured (f);
  g_autoptr (ZltCredential) credential = bearer ("zlt_alice_token");
  g_autoptr (ZltGrant) grant = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *body = NULL;
  g_autofree char *key_id = zlt_token_key_id ("zlt_alice_token");
  char client_id[ZLT_UUID_STRING_LEN + 1];
  gint64 expiry = g_get_real_time () / G_USEC_PER_SEC + 3600;
  guint8 hash[ZLT_HASH_SIZE];

  body = g_strdup_printf ("{\"name\": \"alice\", \"register\": [\"web\", \"api-*\"], "
                          "\"reach\": [\"db\"], \"expires\": %" G_GINT64_FORMAT ", \"extra\": 1}",
                          expiry);
  answer (f, SOUP_STATUS_OK, body);
  grant = validate (validator, credential, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (zlt_grant_get_name (grant), ==, "alice");
  g_assert_cmpint (zlt_grant_get_expiry (grant), ==, expiry);
  g_assert_true (zlt_grant_may_register (grant, "web"));
  g_assert_true (zlt_grant_may_register (grant, "api-v2"));
  g_assert_false (zlt_grant_may_register (grant, "ssh"));
  g_assert_true (zlt_grant_may_reach (grant, "db"));
  g_assert_false (zlt_grant_may_reach (grant, "web"));
  zlt_token_hash_raw ("zlt_alice_token", hash);
  g_assert_cmpmem (zlt_grant_get_token_hash (grant), ZLT_HASH_SIZE, hash, ZLT_HASH_SIZE);

  /* what the hook got */
  g_assert_cmpuint (f->requests->len, ==, 1);
  zlt_uuid_format (zlt_credential_get_client_id (credential), client_id);
  g_assert_cmpstr (member (f, 0, "credential"), ==, "bearer");
  g_assert_cmpstr (member (f, 0, "token"), ==, "zlt_alice_token");
  g_assert_cmpstr (member (f, 0, "key_id"), ==, key_id);
  g_assert_cmpstr (member (f, 0, "client_id"), ==, client_id);
  g_assert_cmpstr (member (f, 0, "peer_address"), ==, "203.0.113.7:51000");
}

/* The rights mean what token-file's fields mean. */
static void
test_rights (Fixture *f, gconstpointer data)
{
  g_autoptr (ZltValidator) validator = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (ZltGrant) viewer = NULL;
  g_autoptr (ZltGrant) anything = NULL;
  g_autoptr (ZltGrant) expired = NULL;
  g_autoptr (ZltGrant) iso = NULL;
  g_autoptr (ZltCredential) a = bearer ("zlt_a");
  g_autoptr (ZltCredential) b = bearer ("zlt_b");
  g_autoptr (ZltCredential) c = bearer ("zlt_c");
  g_autoptr (ZltCredential) d = bearer ("zlt_d");
  g_autofree char *key_id = zlt_token_key_id ("zlt_b");

  g_key_file_set_integer (f->config, GROUP, "cache-seconds", 0);
  validator = configured (f);
  /* reach= and no register=: an access client's grant registers nothing */
  answer (f, SOUP_STATUS_OK, "{\"name\": \"viewer\", \"reach\": [\"db-*\"]}");
  viewer = validate (validator, a, NULL, &error);
  g_assert_no_error (error);
  g_assert_false (zlt_grant_may_register (viewer, "db-1"));
  g_assert_true (zlt_grant_may_reach (viewer, "db-1"));
  g_assert_false (zlt_grant_may_reach (viewer, "web"));
  /* neither: any name, nothing to reach; no name: the key id */
  answer (f, SOUP_STATUS_OK, "{}");
  anything = validate (validator, b, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (zlt_grant_get_name (anything), ==, key_id);
  g_assert_true (zlt_grant_may_register (anything, "whatever"));
  g_assert_false (zlt_grant_may_reach_any (anything));
  g_assert_cmpint (zlt_grant_get_expiry (anything), ==, 0);
  /* an expiry in the past: refused as expired */
  answer (f, SOUP_STATUS_OK, "{\"name\": \"old\", \"expires\": 1000000}");
  expired = validate (validator, c, NULL, &error);
  g_assert_null (expired);
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_EXPIRED_TOKEN);
  g_clear_error (&error);
  answer (f, SOUP_STATUS_OK, "{\"name\": \"iso\", \"expires\": \"2100-01-01T00:00:00Z\"}");
  iso = validate (validator, d, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (zlt_grant_get_expiry (iso), ==, 4102444800);
  g_assert_cmpuint (zlt_grant_get_rate_limit_in (iso), ==, 0);
  g_assert_cmpuint (zlt_grant_get_rate_limit_out (iso), ==, 0);
}

/* Bandwidth limits: bytes per second as numbers, or strings as the token file writes
 * them. */
static void
test_rate_limits (Fixture *f, gconstpointer data)
{
  g_autoptr (ZltValidator) validator = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (ZltGrant) grant = NULL;
  g_autoptr (ZltCredential) credential = bearer ("zlt_metered");

  g_key_file_set_integer (f->config, GROUP, "cache-seconds", 0);
  validator = configured (f);
  answer (f, SOUP_STATUS_OK,
          "{\"name\": \"metered\", \"rate_limit_in\": 5000000, \"rate_limit_out\": \"512k\"}");
  grant = validate (validator, credential, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (zlt_grant_get_rate_limit_in (grant), ==, 5000000);
  g_assert_cmpuint (zlt_grant_get_rate_limit_out (grant), ==, 512000);
}

static void
test_refuse (Fixture *f, gconstpointer data)
{
  g_autoptr (ZltValidator) validator = NULL;
  g_autoptr (ZltCredential) credential = bearer ("zlt_revoked");
  g_autoptr (ZltCredential) other = bearer ("zlt_other");
  g_autoptr (GError) error = NULL;
  g_autoptr (ZltGrant) grant = NULL;

  g_key_file_set_integer (f->config, GROUP, "cache-seconds", 0);
  validator = configured (f);
  /* the hook's message, escaped: it reaches logs and the agent */
  answer (f, SOUP_STATUS_FORBIDDEN,
          "{\"message\": \"revoked\\nzlt-Message: forged \\u001b[31mline\"}");
  grant = validate (validator, credential, NULL, &error);
  g_assert_null (grant);
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_BAD_TOKEN);
  g_test_message ("refusal: %s", error->message);
  g_assert_nonnull (strstr (error->message, "revoked"));
  g_assert_null (strchr (error->message, '\n'));
  g_assert_null (strchr (error->message, '\033'));
  g_clear_error (&error);
  /* 401 with plain text */
  f->content_type = "text/plain";
  answer (f, SOUP_STATUS_UNAUTHORIZED, "unknown token");
  grant = validate (validator, other, NULL, &error);
  g_assert_null (grant);
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_BAD_TOKEN);
  g_assert_nonnull (strstr (error->message, "unknown token"));
  g_assert_cmpuint (f->requests->len, ==, 2);
}

/* Two logins of one token, one request; another token asks again; refusals are
 * cached as well; cache-seconds=0 asks every time. */
static void
test_cache (Fixture *f, gconstpointer data)
{
  g_autoptr (ZltValidator) validator = configured (f);
  g_autoptr (ZltCredential) first = bearer ("zlt_cached");
  g_autoptr (ZltCredential) again = bearer ("zlt_cached");
  g_autoptr (ZltCredential) other = bearer ("zlt_cached_too");
  g_autoptr (ZltCredential) bad = bearer ("zlt_refused");
  g_autoptr (GError) error = NULL;
  g_autoptr (ZltGrant) g1 = NULL;
  g_autoptr (ZltGrant) g2 = NULL;
  g_autoptr (ZltGrant) g3 = NULL;
  g_autoptr (ZltGrant) g4 = NULL;
  g_autoptr (ZltValidator) uncached = NULL;
  gint64 elapsed_ms;

  answer (f, SOUP_STATUS_OK, "{\"name\": \"cached\", \"register\": [\"web\"]}");
  g1 = validate (validator, first, &elapsed_ms, &error);
  g_assert_no_error (error);
  g_test_message ("first answer (TLS handshake included) in %" G_GINT64_FORMAT " ms", elapsed_ms);
  g2 = validate (validator, again, &elapsed_ms, &error);
  g_assert_no_error (error);
  g_test_message ("cached answer in %" G_GINT64_FORMAT " ms", elapsed_ms);
  g_assert_cmpuint (f->requests->len, ==, 1);
  g_assert_cmpstr (zlt_grant_get_name (g2), ==, "cached");
  g_assert_true (zlt_grant_may_register (g2, "web"));
  g3 = validate (validator, other, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (f->requests->len, ==, 2);
  answer (f, SOUP_STATUS_FORBIDDEN, "{\"message\": \"no\"}");
  g_assert_null (validate (validator, bad, NULL, &error));
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_BAD_TOKEN);
  g_clear_error (&error);
  g_assert_null (validate (validator, bad, NULL, &error));
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_BAD_TOKEN);
  g_clear_error (&error);
  g_assert_cmpuint (f->requests->len, ==, 3);
  /* the cache is keyed by an HMAC, never the token nor its plain hash */

  g_key_file_set_integer (f->config, GROUP, "cache-seconds", 0);
  uncached = configured (f);
  answer (f, SOUP_STATUS_OK, "{\"name\": \"cached\"}");
  g_clear_object (&g1);
  g1 = validate (uncached, first, NULL, &error);
  g_assert_no_error (error);
  g4 = validate (uncached, again, &elapsed_ms, &error);
  g_assert_no_error (error);
  g_test_message ("uncached answer on a kept-alive connection in %" G_GINT64_FORMAT " ms",
                  elapsed_ms);
  g_assert_cmpuint (f->requests->len, ==, 5);
}

/* A hook that does not answer: refused at the timeout, and not cached. */
static void
test_timeout (Fixture *f, gconstpointer data)
{
  g_autoptr (ZltValidator) validator = NULL;
  g_autoptr (ZltCredential) warm = bearer ("zlt_warm");
  g_autoptr (ZltCredential) credential = bearer ("zlt_slow");
  g_autoptr (GError) error = NULL;
  g_autoptr (ZltGrant) grant = NULL;
  gint64 elapsed_ms;

  g_key_file_set_double (f->config, GROUP, "timeout", 1.5);
  validator = configured (f);
  /* a first answer, so the stalled request goes out at once on the kept-alive
   * connection (a TLS handshake under valgrind is slow) */
  answer (f, SOUP_STATUS_OK, "{\"name\": \"warm\"}");
  grant = validate (validator, warm, NULL, &error);
  g_assert_no_error (error);
  g_clear_object (&grant);
  f->stall = TRUE;
  grant = validate (validator, credential, &elapsed_ms, &error);
  g_test_message ("refused after %" G_GINT64_FORMAT " ms: %s", elapsed_ms,
                  error ? error->message : "-");
  g_assert_null (grant);
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_TIMEOUT);
  g_assert_cmpint (elapsed_ms, >=, 1450);
  g_assert_cmpint (elapsed_ms, <, 15000);
  /* the hook had it, and never answered */
  ZLT_TEST_WAIT_FOR (f->requests->len == 2, 10000);
  g_assert_cmpuint (f->stalled->len, ==, 1);
  g_clear_error (&error);
  /* the hook is back: the next login asks it again (a timeout is not cached) */
  f->stall = FALSE;
  answer (f, SOUP_STATUS_OK, "{\"name\": \"slow\"}");
  grant = validate (validator, credential, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (zlt_grant_get_name (grant), ==, "slow");
  g_assert_cmpuint (f->requests->len, ==, 3);
}

/* 5xx, a body that is not a grant: refused, and not cached. */
static void
test_fail_closed (Fixture *f, gconstpointer data)
{
  const struct
  {
    guint status;
    const char *body;
  } cases[] = {
    { SOUP_STATUS_INTERNAL_SERVER_ERROR, "{\"name\": \"x\"}" },
    { SOUP_STATUS_OK, "not json" },
    { SOUP_STATUS_OK, "[1, 2]" },
    { SOUP_STATUS_OK, "{\"register\": \"web\"}" },
    { SOUP_STATUS_OK, "{\"register\": [\"bad name!\"]}" },
    { SOUP_STATUS_OK, "{\"name\": 7}" },
    { SOUP_STATUS_OK, "{\"expires\": \"tomorrow\"}" },
    { SOUP_STATUS_OK, "{\"rate_limit_in\": -1}" },
    { SOUP_STATUS_OK, "{\"rate_limit_out\": \"fast\"}" },
    { SOUP_STATUS_OK, "{\"rate_limit_in\": 1.5}" },
    { SOUP_STATUS_NOT_FOUND, "" },
    { SOUP_STATUS_MOVED_PERMANENTLY, "" },
  };
  g_autoptr (ZltValidator) validator = configured (f);
  g_autoptr (ZltCredential) credential = bearer ("zlt_fail_closed");

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (ZltGrant) grant = NULL;

      answer (f, cases[i].status, cases[i].body);
      grant = validate (validator, credential, NULL, &error);
      g_test_message ("%u %s: %s", cases[i].status, cases[i].body, error ? error->message : "-");
      g_assert_null (grant);
      g_assert_error (error, ZLT_ERROR, ZLT_ERROR_FAILED);
      /* not cached: every login asked */
      g_assert_cmpuint (f->requests->len, ==, i + 1);
    }
}

/* Certificates it must not trust: nothing is sent to them. */
static void
test_bad_certificate (Fixture *f, gconstpointer data)
{
  g_autoptr (ZltCredential) credential = bearer ("zlt_secret_token");
  g_autoptr (GError) error = NULL;
  g_autoptr (ZltValidator) system_cas = NULL;
  g_autoptr (ZltValidator) wrong_pin = NULL;
  g_autoptr (ZltValidator) pinned = NULL;
  g_autoptr (ZltGrant) grant = NULL;

  answer (f, SOUP_STATUS_OK, "{\"name\": \"x\"}");
  /* the system's CAs do not know the test certificate */
  g_key_file_remove_key (f->config, GROUP, "tls-ca-file", NULL);
  system_cas = configured (f);
  g_assert_null (validate (system_cas, credential, NULL, &error));
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_FAILED);
  g_test_message ("system CAs: %s", error->message);
  g_assert_nonnull (strstr (error->message, "certificate"));
  g_clear_error (&error);
  /* a pin it does not match (even with a CA file that would trust it) */
  g_key_file_set_string (f->config, GROUP, "tls-ca-file", f->cert_file);
  g_key_file_set_string (f->config, GROUP, "tls-pinned-sha256",
                         "0000000000000000000000000000000000000000000000000000000000000000");
  wrong_pin = configured (f);
  g_assert_null (validate (wrong_pin, credential, NULL, &error));
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_FAILED);
  g_test_message ("wrong pin: %s", error->message);
  g_clear_error (&error);
  g_assert_cmpuint (f->requests->len, ==, 0);
  /* the right pin, no CA file: trusted */
  g_key_file_remove_key (f->config, GROUP, "tls-ca-file", NULL);
  g_key_file_set_string (f->config, GROUP, "tls-pinned-sha256", f->fingerprint);
  pinned = configured (f);
  grant = validate (pinned, credential, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (f->requests->len, ==, 1);
}

/* A credential that is not a bearer one never reaches the hook. */
static void
test_not_bearer (Fixture *f, gconstpointer data)
{
  g_autoptr (ZltValidator) validator = configured (f);
  g_autoptr (ZltCredential) v1 = zlt_credential_new_token ("zlt_legacy");
  g_autoptr (GError) error = NULL;

  answer (f, SOUP_STATUS_OK, "{\"name\": \"x\"}");
  g_assert_null (validate (validator, v1, NULL, &error));
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_BAD_TOKEN);
  g_assert_cmpuint (f->requests->len, ==, 0);
}

/* credential=challenge: the hook sees the key id and answers with the hash; the proof
 * is checked here, and the token never leaves the agent. */
static void
test_challenge (Fixture *f, gconstpointer data)
{
  const char *token = "zlt_challenge_token";
  g_autoptr (ZltValidator) validator = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (ZltGrant) grant = NULL;
  g_autoptr (ZltCredential) good = NULL;
  g_autoptr (ZltCredential) forged = NULL;
  g_autoptr (ZltCredential) v1_good = NULL;
  g_autoptr (ZltCredential) v1_other = NULL;
  g_autofree char *hash_hex = zlt_token_hash_hex (token);
  g_autofree char *key_id = zlt_token_key_id (token);
  g_autofree char *body = NULL;
  guint8 hash[ZLT_HASH_SIZE], nonce[ZLT_NONCE_SIZE] = { 9 }, proof[ZLT_HASH_SIZE];
  ZltUuid client_id;

  g_key_file_set_string (f->config, GROUP, "credential", "challenge");
  validator = new_validator (f, &error);
  g_assert_no_error (error);
  g_assert_cmpint (zlt_validator_get_credential_mode (validator), ==,
                   ZLT_CREDENTIAL_MODE_CHALLENGE);
  body = g_strdup_printf ("{\"name\": \"ch\", \"token_sha256\": \"%s\"}", hash_hex);
  answer (f, SOUP_STATUS_OK, body);
  zlt_token_hash_raw (token, hash);
  zlt_uuid_generate (&client_id);
  zlt_auth_proof (hash, nonce, &client_id, proof);
  good = zlt_credential_new_proof (key_id, nonce, &client_id, proof);
  grant = validate (validator, good, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (zlt_grant_get_name (grant), ==, "ch");
  g_assert_cmpstr (member (f, 0, "credential"), ==, "proof");
  g_assert_cmpstr (member (f, 0, "key_id"), ==, key_id);
  g_assert_null (member (f, 0, "token"));
  /* the same key id with a wrong proof: refused, from the cache */
  proof[0] ^= 1;
  forged = zlt_credential_new_proof (key_id, nonce, &client_id, proof);
  g_clear_object (&grant);
  grant = validate (validator, forged, NULL, &error);
  g_assert_null (grant);
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_BAD_TOKEN);
  g_assert_cmpuint (f->requests->len, ==, 1);
  g_clear_error (&error);
  /* a v1 token (allow-legacy-auth) is checked against the hook's hash as well: the hook
   * vouches for a key id, and this token is not the one behind the hash it gave */
  v1_good = zlt_credential_new_token (token);
  grant = validate (validator, v1_good, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (grant);
  g_clear_object (&grant);
  v1_other = zlt_credential_new_token ("zlt_someone_else");
  grant = validate (validator, v1_other, NULL, &error);
  g_assert_null (grant);
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_BAD_TOKEN);
  g_assert_cmpuint (f->requests->len, ==, 2);
}

static void
test_config (Fixture *f, gconstpointer data)
{
  const struct
  {
    const char *key;
    const char *value; /* NULL: remove the key */
    const char *expected;
  } cases[] = {
    { "bogus", "1", "[validator:webhook] bogus: unknown key" },
    { "url", NULL, "[validator:webhook] url:" },
    { "url", "http://127.0.0.1:1/hook", "[validator:webhook] url: must be an https://" },
    { "url", "ftp://example.com/", "[validator:webhook] url: must be an https://" },
    { "url", "https://user:pw@127.0.0.1/hook", "[validator:webhook] url: must not hold" },
    { "url", "not a url", "[validator:webhook] url:" },
    { "timeout", "0", "[validator:webhook] timeout:" },
    { "timeout", "301", "[validator:webhook] timeout:" },
    { "timeout", "soon", "[validator:webhook] timeout:" },
    { "cache-seconds", "-1", "[validator:webhook] cache-seconds:" },
    { "cache-seconds", "1.5", "[validator:webhook] cache-seconds:" },
    { "credential", "password", "[validator:webhook] credential:" },
    { "tls-ca-file", "missing.pem", "[validator:webhook] tls-ca-file:" },
    { "tls-pinned-sha256", "abc", "[validator:webhook] tls-pinned-sha256:" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GKeyFile) saved = f->config;
      g_autoptr (GError) error = NULL;
      g_autoptr (ZltValidator) validator = NULL;
      g_autofree char *data_text = g_key_file_to_data (saved, NULL, NULL);

      f->config = g_key_file_new ();
      g_key_file_load_from_data (f->config, data_text, -1, G_KEY_FILE_NONE, NULL);
      if (cases[i].value != NULL)
        g_key_file_set_string (f->config, GROUP, cases[i].key, cases[i].value);
      else
        g_key_file_remove_key (f->config, GROUP, cases[i].key, NULL);
      validator = new_validator (f, &error);
      g_test_message ("%s=%s: %s", cases[i].key, cases[i].value ? cases[i].value : "(none)",
                      error ? error->message : "accepted");
      g_assert_null (validator);
      g_assert_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG);
      g_assert_nonnull (strstr (error->message, cases[i].expected));
      g_key_file_unref (f->config);
      f->config = g_steal_pointer (&saved);
    }
  /* relative paths start at the config's directory */
  g_key_file_set_string (f->config, GROUP, "tls-ca-file", "cert.pem");
  g_clear_object (&f->loader);
  f->loader = zlt_plugin_loader_new (NULL);
  zlt_plugin_loader_load_all (f->loader, NULL);
  {
    G_GNUC_UNUSED g_autoptr (ZltValidator) validator = configured (f);
  }
}

/* A real server and agent: the agent logs in over wss:// with its raw token, which the
 * hook sees, and gets the rights the hook gave. */
static void
test_server (Fixture *f, gconstpointer data)
{
  ZltTestHarness h;
  ZltTestTransfer t = { 0 };
  GThread *thread;
  ZltService *refused;
  g_autofree char *url = NULL;

  zlt_test_harness_init (&h, "32700-32767");
  answer (f, SOUP_STATUS_OK, "{\"name\": \"hooked\", \"register\": [\"echo\"]}");
  g_key_file_set_string (h.server_keyfile, "server", "validator", "webhook");
  g_key_file_set_string (h.server_keyfile, GROUP, "url", f->url);
  g_key_file_set_string (h.server_keyfile, GROUP, "tls-ca-file", f->cert_file);
  g_key_file_set_string (h.server_keyfile, "server", "tls-certificate", f->cert_file);
  g_key_file_set_string (h.server_keyfile, "server", "tls-key", f->key_file);
  zlt_test_harness_start_server (&h);
  url = g_key_file_get_string (h.agent_keyfile, "agent", "server", NULL);
  g_assert_true (g_str_has_prefix (url, "wss://"));
  g_key_file_set_string (h.agent_keyfile, "agent", "tls-ca-file", f->cert_file);
  zlt_test_harness_add_service (&h, "echo", zlt_test_echo_get_port (h.echo), 0);
  zlt_test_harness_add_service (&h, "other", zlt_test_echo_get_port (h.echo), 0);
  zlt_test_harness_start_agent (&h);

  t.port = zlt_test_harness_wait_registered (&h, "echo");
  t.n_bytes = 64 * 1024;
  t.n_connections = 1;
  thread = zlt_test_transfer_start (&t);
  zlt_test_transfer_finish (thread, &t, 30000);
  g_assert_null (t.error);
  g_assert_true (t.ok);
  /* the hook's grant: "other" is not the token's to register */
  refused = zlt_tunnel_lookup_service (zlt_agent_get_tunnel (h.agent), "other");
  g_assert_nonnull (refused);
  g_assert_cmpuint (zlt_service_get_assigned_port (refused), ==, 0);
  g_assert_cmpuint (f->requests->len, >=, 1);
  g_assert_cmpstr (member (f, 0, "credential"), ==, "bearer");
  g_assert_cmpstr (member (f, 0, "token"), ==, h.token);
  g_assert_true (g_str_has_prefix (member (f, 0, "peer_address"), "127.0.0.1:"));
  g_assert_nonnull (member (f, 0, "client_id"));
  g_free (t.error);
  zlt_test_harness_clear (&h);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  zlt_init ();

#define ADD(path, func) g_test_add (path, Fixture, NULL, fixture_setup, func, fixture_teardown)
  ADD ("/webhook/accept", test_accept);
  ADD ("/webhook/rights", test_rights);
  ADD ("/webhook/rate-limits", test_rate_limits);
  ADD ("/webhook/refuse", test_refuse);
  ADD ("/webhook/cache", test_cache);
  ADD ("/webhook/timeout", test_timeout);
  ADD ("/webhook/fail-closed", test_fail_closed);
  ADD ("/webhook/bad-certificate", test_bad_certificate);
  ADD ("/webhook/not-bearer", test_not_bearer);
  ADD ("/webhook/challenge", test_challenge);
  ADD ("/webhook/config", test_config);
  ADD ("/webhook/server", test_server);
#undef ADD
  return g_test_run ();
}
