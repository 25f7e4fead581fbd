/* zlt-webhook-validator.c: the "webhook" validator.
 *
 * For each login it POSTs what the agent presented, as JSON, to a configured https://
 * URL, and takes the answer: 200 with a JSON grant lets the token in with the grant's
 * rights, 401 or 403 refuse it (with the hook's message), anything else, a timeout, a
 * certificate it does not trust or a body that is not a grant refuse it too (fail
 * closed) and are logged. Answers are cached for cache-seconds, keyed by an HMAC of the
 * token under a secret of this process, never by the token or its plain hash (which is
 * what proves a token in the v2 challenge).
 *
 * credential=bearer (the default): the hook gets the raw token, so the validator asks
 * for bearer credentials (PROTOCOL-v2.md §2a): agents send the token only over TLS they
 * verified, and it goes on only over https:// checked against tls-ca-file, the system's
 * CAs, or tls-pinned-sha256. credential=challenge: the hook gets the key id only and
 * answers with the token's SHA-256 (token_sha256) besides the grant; the proof is
 * checked here, so the token never leaves the agent. */
#include "config.h"

#include <string.h>

#include <glib/gi18n-lib.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

#include "zlt-webhook-validator.h"

#define DEFAULT_TIMEOUT_S 5.0
#define MAX_TIMEOUT_S 300.0
#define DEFAULT_CACHE_SECONDS 60
#define MAX_CACHE_SECONDS 86400
#define MAX_CACHE_ENTRIES 10000
#define MAX_RESPONSE_BYTES (64 * 1024)
#define MAX_HOOK_MESSAGE 200

struct _ZltWebhookValidator
{
  ZltValidator parent_instance;

  GUri *url;
  ZltTlsOptions *tls;
  guint timeout_ms;
  guint cache_seconds;
  SoupSession *session;
  GHashTable *cache; /* hex HMAC of the token (or key id) → CacheEntry */
  guint8 cache_secret[ZLT_HASH_SIZE];
};

G_DEFINE_FINAL_TYPE (ZltWebhookValidator, zlt_webhook_validator, ZLT_TYPE_VALIDATOR)

/* ---- a TLS database that trusts nothing: with a pin, every certificate then goes
 * through accept-certificate, where the pin decides, before a byte of the request ---- */

#define ZLT_TYPE_WEBHOOK_PIN_DATABASE (zlt_webhook_pin_database_get_type ())
G_DECLARE_FINAL_TYPE (ZltWebhookPinDatabase, zlt_webhook_pin_database, ZLT, WEBHOOK_PIN_DATABASE,
                      GTlsDatabase)

struct _ZltWebhookPinDatabase
{
  GTlsDatabase parent_instance;
};

G_DEFINE_FINAL_TYPE (ZltWebhookPinDatabase, zlt_webhook_pin_database, G_TYPE_TLS_DATABASE)

static GTlsCertificateFlags
zlt_webhook_pin_database_verify_chain (GTlsDatabase *self, GTlsCertificate *chain,
                                       const char *purpose, GSocketConnectable *identity,
                                       GTlsInteraction *interaction, GTlsDatabaseVerifyFlags flags,
                                       GCancellable *cancellable, GError **error)
{
  return G_TLS_CERTIFICATE_UNKNOWN_CA;
}

static void
zlt_webhook_pin_database_class_init (ZltWebhookPinDatabaseClass *klass)
{
  G_TLS_DATABASE_CLASS (klass)->verify_chain = zlt_webhook_pin_database_verify_chain;
}

static void
zlt_webhook_pin_database_init (ZltWebhookPinDatabase *self)
{
}

/* ---- the cache ---- */

typedef struct
{
  gint64 expires; /* monotonic µs */
  ZltGrant *grant;
  GError *error; /* a refusal by the hook (401/403) */
} CacheEntry;

static void
cache_entry_free (CacheEntry *entry)
{
  g_clear_object (&entry->grant);
  g_clear_error (&entry->error);
  g_free (entry);
}

static char *
cache_key (ZltWebhookValidator *self, const ZltCredential *credential)
{
  const char *token = zlt_credential_get_token (credential);
  const char *what = token != NULL ? token : zlt_credential_get_lookup_key (credential);
  guint8 mac[ZLT_HASH_SIZE];
  char *key;

  zlt_hmac_sha256 (self->cache_secret, sizeof self->cache_secret, mac, what, strlen (what), NULL);
  key = zlt_hex_encode (mac, sizeof mac);
  explicit_bzero (mac, sizeof mac);
  return key;
}

static void
cache_prune (ZltWebhookValidator *self)
{
  GHashTableIter iter;
  CacheEntry *entry;
  gint64 now = g_get_monotonic_time ();

  g_hash_table_iter_init (&iter, self->cache);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &entry))
    if (entry->expires <= now)
      g_hash_table_iter_remove (&iter);
  /* still full of live answers: a flood of distinct tokens; start over */
  if (g_hash_table_size (self->cache) >= MAX_CACHE_ENTRIES)
    g_hash_table_remove_all (self->cache);
}

static void
cache_store (ZltWebhookValidator *self, const char *key, ZltGrant *grant, const GError *error)
{
  CacheEntry *entry;
  gint64 ttl_s = self->cache_seconds;

  if (ttl_s == 0)
    return;
  /* a grant is never served past its expiry (validate_finish would refuse it anyway) */
  if (grant != NULL && zlt_grant_get_expiry (grant) != 0)
    ttl_s = MIN (ttl_s, zlt_grant_get_expiry (grant) - g_get_real_time () / G_USEC_PER_SEC);
  if (ttl_s <= 0)
    return;
  if (g_hash_table_size (self->cache) >= MAX_CACHE_ENTRIES)
    cache_prune (self);
  entry = g_new0 (CacheEntry, 1);
  entry->expires = g_get_monotonic_time () + ttl_s * G_USEC_PER_SEC;
  entry->grant = grant != NULL ? g_object_ref (grant) : NULL;
  entry->error = error != NULL ? g_error_copy (error) : NULL;
  g_hash_table_replace (self->cache, g_strdup (key), entry);
}

static CacheEntry *
cache_lookup (ZltWebhookValidator *self, const char *key)
{
  CacheEntry *entry = g_hash_table_lookup (self->cache, key);

  if (entry != NULL && entry->expires <= g_get_monotonic_time ())
    {
      g_hash_table_remove (self->cache, key);
      return NULL;
    }
  return entry;
}

/* ---- the hook's words: into logs and AuthFail, so no control characters ---- */

static char *
escape_message (const char *text, gsize len)
{
  g_autofree char *valid = g_utf8_make_valid (text, (gssize) MIN (len, (gsize) MAX_HOOK_MESSAGE));
  GString *out = g_string_new (NULL);

  for (const char *p = valid; *p != '\0'; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);

      if (g_unichar_iscntrl (c) || g_unichar_type (c) == G_UNICODE_FORMAT)
        g_string_append_printf (out, "\\u%04x", c);
      else
        g_string_append_unichar (out, c);
    }
  if (len > MAX_HOOK_MESSAGE)
    g_string_append (out, "…");
  return g_string_free (out, FALSE);
}

/* ---- the grant in a 200 answer ---- */

static gboolean
read_patterns (JsonObject *object, const char *member, gboolean *present, GStrv *out,
               GError **error)
{
  JsonNode *node = json_object_get_member (object, member);
  g_autoptr (GStrvBuilder) builder = NULL;
  JsonArray *array;

  *present = node != NULL && !JSON_NODE_HOLDS_NULL (node);
  *out = NULL;
  if (!*present)
    return TRUE;
  if (!JSON_NODE_HOLDS_ARRAY (node))
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_FAILED, "%s is not an array of strings", member);
      return FALSE;
    }
  builder = g_strv_builder_new ();
  array = json_node_get_array (node);
  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      JsonNode *item = json_array_get_element (array, i);
      const char *pattern;

      if (!JSON_NODE_HOLDS_VALUE (item) || json_node_get_value_type (item) != G_TYPE_STRING)
        {
          g_set_error (error, ZLT_ERROR, ZLT_ERROR_FAILED, "%s is not an array of strings", member);
          return FALSE;
        }
      pattern = json_node_get_string (item);
      if (!zlt_service_pattern_is_valid (pattern))
        {
          g_autofree char *shown = escape_message (pattern, strlen (pattern));
          g_set_error (error, ZLT_ERROR, ZLT_ERROR_FAILED, "%s: “%s” is not a service pattern",
                       member, shown);
          return FALSE;
        }
      g_strv_builder_add (builder, pattern);
    }
  *out = g_strv_builder_end (builder);
  return TRUE;
}

static gboolean
read_expiry (JsonObject *object, gint64 *expiry, GError **error)
{
  JsonNode *node = json_object_get_member (object, "expires");

  *expiry = 0;
  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  if (JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_INT64)
    {
      *expiry = json_node_get_int (node);
      if (*expiry <= 0)
        {
          g_set_error (error, ZLT_ERROR, ZLT_ERROR_FAILED, "expires is not a positive unix time");
          return FALSE;
        }
      return TRUE;
    }
  if (JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_STRING)
    {
      g_autoptr (GDateTime) when = g_date_time_new_from_iso8601 (json_node_get_string (node), NULL);
      if (when == NULL)
        {
          g_set_error (error, ZLT_ERROR, ZLT_ERROR_FAILED,
                       "expires is not ISO 8601 with a time zone");
          return FALSE;
        }
      *expiry = MAX (g_date_time_to_unix (when), 1);
      return TRUE;
    }
  g_set_error (error, ZLT_ERROR, ZLT_ERROR_FAILED, "expires is neither a number nor a string");
  return FALSE;
}

/* A rate limit: bytes per second as a number, or a string as rate-limit-in= takes it
 * ("5M"); absent or null: none. */
static gboolean
read_rate (JsonObject *object, const char *member, guint64 *rate, GError **error)
{
  JsonNode *node = json_object_get_member (object, member);

  *rate = 0;
  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  if (JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_INT64
      && json_node_get_int (node) >= 0 && (guint64) json_node_get_int (node) <= ZLT_GRANT_RATE_MAX)
    {
      *rate = (guint64) json_node_get_int (node);
      return TRUE;
    }
  if (JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_STRING
      && zlt_grant_parse_rate (json_node_get_string (node), rate))
    return TRUE;
  g_set_error (error, ZLT_ERROR, ZLT_ERROR_FAILED,
               "%s is not a rate in bytes per second (a number, or a string such as \"5M\")",
               member);
  return FALSE;
}

/* A grant as token-file lines give them: register= absent means any name nobody else
 * owns, unless reach= is there (an access client's grant), then nothing. */
static ZltGrant *
parse_grant (ZltWebhookValidator *self, const ZltCredential *credential, GBytes *body,
             GError **error)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) local_error = NULL;
  g_auto (GStrv) register_patterns = NULL;
  g_auto (GStrv) reach = NULL;
  gboolean have_register, have_reach;
  guint64 rate_in, rate_out;
  guint8 hash[ZLT_HASH_SIZE];
  ZltGrant *grant;
  const guint8 *token_hash = zlt_credential_get_token_hash (credential);
  const char *name = zlt_credential_get_lookup_key (credential);
  JsonObject *object;
  JsonNode *node;
  gint64 expiry;

  if (!json_parser_load_from_data (parser, g_bytes_get_data (body, NULL),
                                   (gssize) g_bytes_get_size (body), &local_error))
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_FAILED, "not JSON: %s", local_error->message);
      return NULL;
    }
  if (!JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    {
      g_set_error_literal (error, ZLT_ERROR, ZLT_ERROR_FAILED, "not a JSON object");
      return NULL;
    }
  object = json_node_get_object (json_parser_get_root (parser));
  node = json_object_get_member (object, "name");
  if (node != NULL && !JSON_NODE_HOLDS_NULL (node))
    {
      if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_STRING
          || *json_node_get_string (node) == '\0' || strlen (json_node_get_string (node)) > 128
          || !g_utf8_validate (json_node_get_string (node), -1, NULL))
        {
          g_set_error_literal (error, ZLT_ERROR, ZLT_ERROR_FAILED,
                               "name is not a string of 1 to 128 bytes of UTF-8");
          return NULL;
        }
      name = json_node_get_string (node);
    }
  if (!read_patterns (object, "register", &have_register, &register_patterns, error)
      || !read_patterns (object, "reach", &have_reach, &reach, error)
      || !read_expiry (object, &expiry, error)
      || !read_rate (object, "rate_limit_in", &rate_in, error)
      || !read_rate (object, "rate_limit_out", &rate_out, error))
    return NULL;
  if (have_reach && !have_register)
    register_patterns = g_new0 (char *, 1);

  /* challenge: the hook knows the hash, the proof (or a v1 token) is checked here */
  if (zlt_validator_get_credential_mode (ZLT_VALIDATOR (self)) == ZLT_CREDENTIAL_MODE_CHALLENGE)
    {
      node = json_object_get_member (object, "token_sha256");
      if (node == NULL || !JSON_NODE_HOLDS_VALUE (node)
          || json_node_get_value_type (node) != G_TYPE_STRING
          || !zlt_hash_from_hex (json_node_get_string (node), hash))
        {
          g_set_error_literal (
              error, ZLT_ERROR, ZLT_ERROR_FAILED,
              "token_sha256 is missing or not 64 hex digits (credential=challenge)");
          return NULL;
        }
      token_hash = hash;
    }
  grant = zlt_grant_new_full (name, token_hash, (const char *const *) register_patterns,
                              (const char *const *) reach, NULL, expiry);
  zlt_grant_set_rate_limits (grant, rate_in, rate_out);
  return grant;
}

/* ---- one request ---- */

typedef struct
{
  ZltWebhookValidator *self; /* the task holds it */
  ZltCredential *credential;
  char *cache_key;
  SoupMessage *msg;
  GCancellable *cancellable; /* ours: the caller's and the timeout both cancel it */
  GCancellable *parent;
  gulong parent_handler;
  GSource *timeout;
  gboolean timed_out;
  GError *rejected; /* why the certificate was refused */
} Request;

static void
request_free (Request *r)
{
  if (r->parent != NULL)
    g_cancellable_disconnect (r->parent, r->parent_handler);
  if (r->msg != NULL)
    g_signal_handlers_disconnect_by_data (r->msg, r);
  g_clear_object (&r->parent);
  if (r->timeout != NULL)
    {
      g_source_destroy (r->timeout);
      g_source_unref (r->timeout);
    }
  zlt_credential_free (r->credential);
  g_free (r->cache_key);
  g_clear_object (&r->msg);
  g_clear_object (&r->cancellable);
  g_clear_error (&r->rejected);
  g_free (r);
}

static gboolean
on_accept_certificate (SoupMessage *msg, GTlsCertificate *certificate, GTlsCertificateFlags errors,
                       gpointer user_data)
{
  Request *r = user_data;
  ZltWebhookValidator *self = r->self;

  if (zlt_tls_accept_certificate (self->tls, certificate, errors))
    return TRUE;
  g_clear_error (&r->rejected);
  r->rejected = zlt_tls_rejection_error (self->tls, certificate, errors);
  return FALSE;
}

static gboolean
on_timeout (gpointer user_data)
{
  GTask *task = user_data;
  Request *r = g_task_get_task_data (task);

  r->timed_out = TRUE;
  g_cancellable_cancel (r->cancellable);
  return G_SOURCE_REMOVE;
}

/* Fails closed: the login is refused, and the server operator hears why. */
static void
fail_closed (GTask *task, GError *error)
{
  ZltWebhookValidator *self = g_task_get_source_object (task);
  g_autofree char *url = g_uri_to_string_partial (self->url, G_URI_HIDE_PASSWORD);

  g_message ("web hook %s: %s; refusing the login", url, error->message);
  g_task_return_new_error (task, ZLT_ERROR,
                           g_error_matches (error, ZLT_ERROR, ZLT_ERROR_TIMEOUT) ? ZLT_ERROR_TIMEOUT
                                                                                 : ZLT_ERROR_FAILED,
                           _ ("token validation is unavailable: %s"), error->message);
  g_error_free (error);
}

static void
on_response (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  ZltWebhookValidator *self = g_task_get_source_object (task);
  Request *r = g_task_get_task_data (task);
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) body = NULL;
  g_autoptr (ZltGrant) grant = NULL;
  guint status;

  body = soup_session_send_and_read_finish (SOUP_SESSION (source), result, &error);
  if (r->timeout != NULL)
    {
      g_source_destroy (r->timeout);
      g_clear_pointer (&r->timeout, g_source_unref);
    }
  if (body == NULL)
    {
      if (r->timed_out)
        fail_closed (task, g_error_new (ZLT_ERROR, ZLT_ERROR_TIMEOUT, "no answer within %u ms",
                                        self->timeout_ms));
      else if (g_task_return_error_if_cancelled (task))
        ;
      else if (r->rejected != NULL)
        fail_closed (task, g_steal_pointer (&r->rejected));
      else
        fail_closed (task, g_steal_pointer (&error));
      return;
    }
  if (!zlt_tls_check_peer (self->tls, soup_message_get_tls_peer_certificate (r->msg), &error))
    {
      fail_closed (task, g_steal_pointer (&error));
      return;
    }
  status = soup_message_get_status (r->msg);
  if (g_bytes_get_size (body) > MAX_RESPONSE_BYTES)
    {
      fail_closed (task, g_error_new (ZLT_ERROR, ZLT_ERROR_FAILED,
                                      "answer of %" G_GSIZE_FORMAT " bytes (more than %u)",
                                      g_bytes_get_size (body), MAX_RESPONSE_BYTES));
      return;
    }
  if (status == SOUP_STATUS_UNAUTHORIZED || status == SOUP_STATUS_FORBIDDEN)
    {
      g_autofree char *message = NULL;
      g_autoptr (JsonParser) parser = json_parser_new ();
      const char *text = NULL;
      gsize len = 0;

      /* {"message": "..."} or plain text */
      if (json_parser_load_from_data (parser, g_bytes_get_data (body, NULL),
                                      (gssize) g_bytes_get_size (body), NULL)
          && JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
        {
          JsonObject *object = json_node_get_object (json_parser_get_root (parser));
          JsonNode *node = json_object_get_member (object, "message");
          if (node != NULL && JSON_NODE_HOLDS_VALUE (node)
              && json_node_get_value_type (node) == G_TYPE_STRING)
            {
              text = json_node_get_string (node);
              len = strlen (text);
            }
        }
      else if (g_bytes_get_size (body) > 0)
        {
          text = g_bytes_get_data (body, &len);
          len = strnlen (text, len);
        }
      if (text != NULL && len > 0)
        {
          g_autofree char *copy = g_strndup (text, len);
          g_autofree char *escaped = escape_message (copy, len);
          message = g_strdup_printf (_ ("refused by the web hook: %s"), escaped);
        }
      else
        message = g_strdup (_ ("refused by the web hook"));
      g_set_error_literal (&error, ZLT_ERROR, ZLT_ERROR_BAD_TOKEN, message);
      cache_store (self, r->cache_key, NULL, error);
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  if (status != SOUP_STATUS_OK)
    {
      fail_closed (
          task,
          g_error_new (ZLT_ERROR, ZLT_ERROR_FAILED, "answered %u %s", status,
                       soup_status_get_phrase (status) ? soup_status_get_phrase (status) : ""));
      return;
    }
  grant = parse_grant (self, r->credential, body, &error);
  if (grant == NULL)
    {
      g_prefix_error (&error, "answered 200 without a valid grant: ");
      fail_closed (task, g_steal_pointer (&error));
      return;
    }
  cache_store (self, r->cache_key, grant, NULL);
  /* with credential=challenge the hook vouched for a key id only: the proof (or v1
   * token) must still match the hash it gave */
  if (zlt_validator_get_credential_mode (ZLT_VALIDATOR (self)) == ZLT_CREDENTIAL_MODE_CHALLENGE
      && !zlt_credential_matches_hash (r->credential, zlt_grant_get_token_hash (grant)))
    {
      g_task_return_new_error (task, ZLT_ERROR, ZLT_ERROR_BAD_TOKEN, _ ("invalid token"));
      return;
    }
  g_task_return_pointer (task, g_steal_pointer (&grant), g_object_unref);
}

static GBytes *
request_body (const ZltCredential *credential)
{
  g_autoptr (JsonBuilder) builder = json_builder_new ();
  g_autoptr (JsonGenerator) generator = json_generator_new ();
  g_autoptr (JsonNode) root = NULL;
  const ZltUuid *client_id = zlt_credential_get_client_id (credential);
  const char *kinds[] = { "token", "proof", "bearer" };
  ZltCredentialKind kind = zlt_credential_get_kind (credential);
  char *text;
  gsize len;

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "credential");
  json_builder_add_string_value (builder, kind < G_N_ELEMENTS (kinds) ? kinds[kind] : "unknown");
  if (zlt_credential_get_token (credential) != NULL)
    {
      json_builder_set_member_name (builder, "token");
      json_builder_add_string_value (builder, zlt_credential_get_token (credential));
    }
  json_builder_set_member_name (builder, "key_id");
  json_builder_add_string_value (builder, zlt_credential_get_lookup_key (credential));
  if (client_id != NULL)
    {
      char id[ZLT_UUID_STRING_LEN + 1];
      zlt_uuid_format (client_id, id);
      json_builder_set_member_name (builder, "client_id");
      json_builder_add_string_value (builder, id);
    }
  if (zlt_credential_get_peer_address (credential) != NULL)
    {
      json_builder_set_member_name (builder, "peer_address");
      json_builder_add_string_value (builder, zlt_credential_get_peer_address (credential));
    }
  json_builder_end_object (builder);
  root = json_builder_get_root (builder);
  json_generator_set_root (generator, root);
  text = json_generator_to_data (generator, &len);
  return g_bytes_new_with_free_func (text, len, (GDestroyNotify) g_free, text);
}

static void
zlt_webhook_validator_validate_async (ZltValidator *validator, const ZltCredential *credential,
                                      GCancellable *cancellable, GAsyncReadyCallback callback,
                                      gpointer user_data)
{
  ZltWebhookValidator *self = ZLT_WEBHOOK_VALIDATOR (validator);
  g_autoptr (GTask) task = g_task_new (self, cancellable, callback, user_data);
  g_autoptr (GBytes) body = NULL;
  ZltCredentialKind kind = zlt_credential_get_kind (credential);
  gboolean bearer = zlt_validator_get_credential_mode (validator) == ZLT_CREDENTIAL_MODE_BEARER;
  CacheEntry *cached;
  Request *r;

  g_task_set_source_tag (task, zlt_webhook_validator_validate_async);
  if (self->url == NULL)
    {
      g_task_return_new_error (task, ZLT_ERROR, ZLT_ERROR_FAILED,
                               _ ("the webhook validator has no URL configured"));
      return;
    }
  /* the hook must see the token: a v1 credential keeps only its hash, and a v2 proof
   * cannot be checked without the hash the hook will not give in this mode */
  if (bearer && kind != ZLT_CREDENTIAL_KIND_BEARER)
    {
      g_task_return_new_error (task, ZLT_ERROR, ZLT_ERROR_BAD_TOKEN,
                               _ ("the web-hook validator needs the token itself: connect with "
                                  "a v2 agent over wss://"));
      return;
    }
  r = g_new0 (Request, 1);
  r->self = self;
  r->credential = zlt_credential_copy (credential);
  r->cache_key = cache_key (self, credential);
  g_task_set_task_data (task, r, (GDestroyNotify) request_free);
  cached = cache_lookup (self, r->cache_key);
  if (cached != NULL)
    {
      if (cached->error != NULL)
        g_task_return_error (task, g_error_copy (cached->error));
      else if (!bearer
               && !zlt_credential_matches_hash (credential,
                                                zlt_grant_get_token_hash (cached->grant)))
        g_task_return_new_error (task, ZLT_ERROR, ZLT_ERROR_BAD_TOKEN, _ ("invalid token"));
      else
        g_task_return_pointer (task, g_object_ref (cached->grant), g_object_unref);
      return;
    }

  r->cancellable = g_cancellable_new ();
  if (cancellable != NULL)
    {
      r->parent = g_object_ref (cancellable);
      r->parent_handler = g_cancellable_connect (cancellable, G_CALLBACK (g_cancellable_cancel),
                                                 g_object_ref (r->cancellable), g_object_unref);
    }
  body = request_body (credential);
  r->msg = soup_message_new_from_uri (SOUP_METHOD_POST, self->url);
  soup_message_set_request_body_from_bytes (r->msg, "application/json", body);
  g_signal_connect (r->msg, "accept-certificate", G_CALLBACK (on_accept_certificate), r);
  r->timeout = g_timeout_source_new (self->timeout_ms);
  g_source_set_callback (r->timeout, on_timeout, task, NULL);
  g_source_attach (r->timeout, g_main_context_get_thread_default ());
  soup_session_send_and_read_async (self->session, r->msg, G_PRIORITY_DEFAULT, r->cancellable,
                                    on_response, g_steal_pointer (&task));
}

static ZltGrant *
zlt_webhook_validator_validate_finish (ZltValidator *validator, GAsyncResult *result,
                                       GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, validator), NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

/* ---- configuration ---- */

static gboolean
config_error (GError **error, const char *group, const char *key, const char *what)
{
  g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG, "[%s] %s: %s", group, key, what);
  return FALSE;
}

static gboolean
zlt_webhook_validator_configure (ZltValidator *validator, GKeyFile *config, const char *group,
                                 GError **error)
{
  static const char *const known_keys[] = { "url",     "tls-ca-file",   "tls-pinned-sha256",
                                            "timeout", "cache-seconds", "credential",
                                            NULL };
  ZltWebhookValidator *self = ZLT_WEBHOOK_VALIDATOR (validator);
  g_auto (GStrv) keys = g_key_file_get_keys (config, group, NULL, NULL);
  g_autofree char *url_text = NULL;
  g_autofree char *ca_file = NULL;
  g_autofree char *pin_text = NULL;
  g_autofree char *pin = NULL;
  g_autofree char *credential = NULL;
  g_autoptr (GUri) url = NULL;
  g_autoptr (GTlsDatabase) database = NULL;
  g_autoptr (GError) local_error = NULL;
  ZltTlsOptions tls = { 0 };
  gdouble timeout_s = DEFAULT_TIMEOUT_S;
  gint64 cache_seconds = DEFAULT_CACHE_SECONDS;
  ZltCredentialMode mode = ZLT_CREDENTIAL_MODE_BEARER;

  for (guint i = 0; keys != NULL && keys[i] != NULL; i++)
    if (!g_strv_contains (known_keys, keys[i]))
      return config_error (error, group, keys[i],
                           _ ("unknown key (expected url, tls-ca-file, tls-pinned-sha256, "
                              "timeout, cache-seconds or credential)"));

  url_text = g_key_file_get_string (config, group, "url", NULL);
  if (url_text == NULL || *url_text == '\0')
    return config_error (error, group, "url", _ ("set it to the hook's https:// URL"));
  url = g_uri_parse (url_text, G_URI_FLAGS_NONE, &local_error);
  if (url == NULL)
    return config_error (error, group, "url", local_error->message);
  /* the hook sees tokens: never over plain HTTP, not even to loopback */
  if (g_ascii_strcasecmp (g_uri_get_scheme (url), "https") != 0 || g_uri_get_host (url) == NULL
      || *g_uri_get_host (url) == '\0')
    return config_error (error, group, "url",
                         _ ("must be an https:// URL (the hook receives tokens)"));
  if (g_uri_get_user (url) != NULL)
    return config_error (error, group, "url",
                         _ ("must not hold credentials; the hook can check the client's address "
                            "or its certificate"));

  ca_file = g_key_file_get_string (config, group, "tls-ca-file", NULL);
  if (ca_file != NULL && *ca_file != '\0')
    {
      g_autofree char *resolved = zlt_validator_resolve_path (validator, ca_file);
      database = g_tls_file_database_new (resolved, &local_error);
      if (database == NULL)
        {
          g_autofree char *what
              = g_strdup_printf (_ ("cannot load %s: %s"), resolved, local_error->message);
          return config_error (error, group, "tls-ca-file", what);
        }
      g_free (ca_file);
      ca_file = g_steal_pointer (&resolved);
    }
  else
    g_clear_pointer (&ca_file, g_free);
  pin_text = g_key_file_get_string (config, group, "tls-pinned-sha256", NULL);
  if (pin_text != NULL && *pin_text != '\0')
    {
      pin = zlt_tls_parse_pin (pin_text, &local_error);
      if (pin == NULL)
        return config_error (error, group, "tls-pinned-sha256", local_error->message);
      /* the pin decides for every certificate, before the request leaves */
      g_clear_object (&database);
      database = g_object_new (ZLT_TYPE_WEBHOOK_PIN_DATABASE, NULL);
    }

  if (g_key_file_has_key (config, group, "timeout", NULL))
    {
      timeout_s = g_key_file_get_double (config, group, "timeout", &local_error);
      if (local_error != NULL || !(timeout_s > 0 && timeout_s <= MAX_TIMEOUT_S))
        return config_error (error, group, "timeout",
                             _ ("must be a number of seconds above 0 and at most 300"));
    }
  if (g_key_file_has_key (config, group, "cache-seconds", NULL))
    {
      cache_seconds = g_key_file_get_int64 (config, group, "cache-seconds", &local_error);
      if (local_error != NULL || cache_seconds < 0 || cache_seconds > MAX_CACHE_SECONDS)
        return config_error (error, group, "cache-seconds",
                             _ ("must be a whole number of seconds from 0 to 86400"));
    }
  credential = g_key_file_get_string (config, group, "credential", NULL);
  if (credential != NULL && g_strcmp0 (credential, "challenge") == 0)
    mode = ZLT_CREDENTIAL_MODE_CHALLENGE;
  else if (credential != NULL && g_strcmp0 (credential, "bearer") != 0)
    return config_error (error, group, "credential", _ ("must be bearer or challenge"));

  /* all checked: take it */
  g_clear_pointer (&self->url, g_uri_unref);
  self->url = g_steal_pointer (&url);
  tls.ca_file = ca_file;
  tls.pinned_sha256 = pin;
  zlt_tls_options_free (self->tls);
  self->tls = zlt_tls_options_copy (&tls);
  self->timeout_ms = (guint) (timeout_s * 1000 + 0.5);
  self->timeout_ms = MAX (self->timeout_ms, 1);
  self->cache_seconds = (guint) cache_seconds;
  g_hash_table_remove_all (self->cache);
  g_clear_object (&self->session);
  /* libsoup's own timeout is a backstop: ours runs per request, in ms */
  self->session = soup_session_new_with_options ("timeout", (guint) timeout_s + 1, "user-agent",
                                                 "zlayer-tunnel/" PACKAGE_VERSION " webhook", NULL);
  if (database != NULL)
    soup_session_set_tls_database (self->session, database);
  zlt_validator_set_credential_mode (validator, mode);
  return TRUE;
}

static void
zlt_webhook_validator_finalize (GObject *object)
{
  ZltWebhookValidator *self = ZLT_WEBHOOK_VALIDATOR (object);

  if (self->session != NULL)
    soup_session_abort (self->session);
  g_clear_object (&self->session);
  g_clear_pointer (&self->url, g_uri_unref);
  zlt_tls_options_free (self->tls);
  g_hash_table_unref (self->cache);
  explicit_bzero (self->cache_secret, sizeof self->cache_secret);
  G_OBJECT_CLASS (zlt_webhook_validator_parent_class)->finalize (object);
}

static void
zlt_webhook_validator_class_init (ZltWebhookValidatorClass *klass)
{
  ZltValidatorClass *validator_class = ZLT_VALIDATOR_CLASS (klass);

  G_OBJECT_CLASS (klass)->finalize = zlt_webhook_validator_finalize;
  validator_class->name = "webhook";
  validator_class->configure = zlt_webhook_validator_configure;
  validator_class->validate_async = zlt_webhook_validator_validate_async;
  validator_class->validate_finish = zlt_webhook_validator_validate_finish;
}

static void
zlt_webhook_validator_init (ZltWebhookValidator *self)
{
  self->cache
      = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) cache_entry_free);
  self->timeout_ms = (guint) (DEFAULT_TIMEOUT_S * 1000);
  self->cache_seconds = DEFAULT_CACHE_SECONDS;
  zlt_random_bytes (self->cache_secret, sizeof self->cache_secret);
  zlt_validator_set_credential_mode (ZLT_VALIDATOR (self), ZLT_CREDENTIAL_MODE_BEARER);
}
