/* test-validator.c: the token-file and allow-all validator plugins, loaded from the
 * build tree like the daemon loads them */
#include "config.h"

#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "zlayer-tunnel.h"

#define GROUP "validator:token-file"
/* 2100-01-01T00:00:00Z */
#define FAR_FUTURE 4102444800

static ZltPluginLoader *loader = NULL;

/* ---- waiting without sleeping ---- */

static gboolean
set_flag_cb (gpointer data)
{
  *(gboolean *) data = TRUE;
  return G_SOURCE_REMOVE;
}

/* Spins the default main context until @expr holds; fails the test after @timeout_ms. */
#define WAIT_FOR(expr, timeout_ms)                                                                 \
  G_STMT_START                                                                                     \
  {                                                                                                \
    gboolean _timed_out = FALSE;                                                                   \
    guint _id = g_timeout_add ((timeout_ms), set_flag_cb, &_timed_out);                            \
    while (!(expr) && !_timed_out)                                                                 \
      g_main_context_iteration (NULL, TRUE);                                                       \
    if (!_timed_out)                                                                               \
      g_source_remove (_id);                                                                       \
    if (!(expr))                                                                                   \
      g_error ("timed out after %u ms waiting for: %s", (guint) (timeout_ms), #expr);              \
  }                                                                                                \
  G_STMT_END

/* ---- tokens and files ---- */

static char *
make_token (void)
{
  guint8 raw[24];
  g_autofree char *hex = NULL;

  zlt_random_bytes (raw, sizeof raw);
  hex = zlt_hex_encode (raw, sizeof raw);
  return g_strdup_printf ("zlt_%s", hex);
}

/* one line of a token file: the token's hash and @fields */
static char *
line_for (const char *token, const char *fields)
{
  g_autofree char *hash = zlt_token_hash_hex (token);

  return g_strdup_printf ("%s %s\n", hash, fields != NULL ? fields : "");
}

static void
write_file (const char *path, const char *contents, int mode)
{
  g_autoptr (GError) error = NULL;

  /* written next to it and renamed over it, as careful tools and many editors do */
  g_file_set_contents_full (path, contents, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600, &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_chmod (path, mode), ==, 0);
}

static void
write_file_in_place (const char *path, const char *contents)
{
  g_autoptr (GError) error = NULL;

  /* truncated and rewritten in place, as `cat > file` does */
  g_file_set_contents_full (path, contents, -1, G_FILE_SET_CONTENTS_NONE, 0600, &error);
  g_assert_no_error (error);
}

static void
remove_dir (const char *dir)
{
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;

  if (d == NULL)
    return;
  while ((name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir, name, NULL);

      g_assert_cmpint (g_unlink (path), ==, 0);
    }
  g_assert_cmpint (g_rmdir (dir), ==, 0);
}

/* ---- validating ---- */

static void
got_result_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  GAsyncResult **out = user_data;

  *out = g_object_ref (result);
}

static ZltGrant *
validate (ZltValidator *validator, ZltCredential *credential, GError **error)
{
  g_autoptr (GAsyncResult) result = NULL;

  zlt_validator_validate_async (validator, credential, NULL, got_result_cb, &result);
  WAIT_FOR (result != NULL, 5000);
  return zlt_validator_validate_finish (validator, result, error);
}

static ZltGrant *
validate_token (ZltValidator *validator, const char *token, GError **error)
{
  g_autoptr (ZltCredential) credential = zlt_credential_new_token (token);

  return validate (validator, credential, error);
}

/* What a v2 agent sends (PROTOCOL-v2.md §2); @corrupt flips a bit of the proof. */
static ZltCredential *
make_proof (const char *token, gboolean corrupt)
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
  if (corrupt)
    proof[7] ^= 0x01;
  return zlt_credential_new_proof (key_id, nonce, &client_id, proof);
}

static ZltGrant *
validate_proof (ZltValidator *validator, const char *token, GError **error)
{
  g_autoptr (ZltCredential) credential = make_proof (token, FALSE);

  return validate (validator, credential, error);
}

static void
assert_accepted (ZltValidator *validator, const char *token, const char *name)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (ZltGrant) grant = validate_token (validator, token, &error);
  g_autoptr (ZltGrant) grant2 = NULL;

  g_assert_no_error (error);
  g_assert_nonnull (grant);
  g_assert_cmpstr (zlt_grant_get_name (grant), ==, name);
  grant2 = validate_proof (validator, token, &error);
  g_assert_no_error (error);
  g_assert_nonnull (grant2);
  g_assert_cmpstr (zlt_grant_get_name (grant2), ==, name);
}

static void
assert_refused (ZltValidator *validator, const char *token, gint code)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (ZltGrant) grant = validate_token (validator, token, &error);
  g_autoptr (ZltGrant) grant2 = NULL;

  g_assert_error (error, ZLT_ERROR, code);
  g_assert_null (grant);
  /* a token is never repeated back */
  g_assert_null (strstr (error->message, token));
  g_clear_error (&error);
  grant2 = validate_proof (validator, token, &error);
  g_assert_error (error, ZLT_ERROR, code);
  g_assert_null (grant2);
}

/* ---- fixture: a private directory with a token file ---- */

typedef struct
{
  char *dir;
  char *path;
  GKeyFile *config;
  ZltValidator *validator;
  guint n_changed;
} Fixture;

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  f->dir = g_dir_make_tmp ("zlt-validator-XXXXXX", &error);
  g_assert_no_error (error);
  f->path = g_build_filename (f->dir, "tokens", NULL);
  f->config = g_key_file_new ();
  g_key_file_set_string (f->config, GROUP, "path", f->path);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  if (f->validator != NULL)
    {
      g_object_add_weak_pointer (G_OBJECT (f->validator), (gpointer *) &f->validator);
      g_object_unref (f->validator);
      /* nothing else may hold on to it: a leaked validator keeps watching files */
      g_assert_null (f->validator);
    }
  g_key_file_unref (f->config);
  remove_dir (f->dir);
  g_free (f->path);
  g_free (f->dir);
}

static void
changed_cb (ZltValidator *validator, gpointer user_data)
{
  Fixture *f = user_data;

  f->n_changed++;
}

/* Writes @contents (mode 0600) and makes a token-file validator of it. */
static void
fixture_load (Fixture *f, const char *contents)
{
  g_autoptr (GError) error = NULL;

  write_file (f->path, contents, 0600);
  f->validator = zlt_plugin_loader_new_validator (loader, "token-file", f->config, GROUP, &error);
  g_assert_no_error (error);
  g_assert_nonnull (f->validator);
  g_assert_cmpstr (zlt_validator_get_name (f->validator), ==, "token-file");
  g_assert_false (zlt_validator_is_insecure (f->validator));
  g_signal_connect (f->validator, "changed", G_CALLBACK (changed_cb), f);
}

static gboolean
emit_reload (ZltValidator *validator)
{
  gboolean ok = FALSE;

  g_signal_emit_by_name (validator, "reload", &ok);
  return ok;
}

/* ---- token-file ---- */

static void
test_v1_grant (Fixture *f, gconstpointer data)
{
  g_autofree char *alice = make_token ();
  g_autofree char *bob = make_token ();
  g_autofree char *carol = make_token ();
  g_autofree char *alice_line
      = line_for (alice, "name=alice  services=web,ssh\texpires=2100-01-01T00:00:00Z");
  g_autofree char *bob_line = line_for (bob, "# no fields at all");
  g_autofree char *carol_line = line_for (carol, "services=* expires=4102444800 name=carol\r");
  g_autofree char *contents = NULL;
  g_autofree char *bob_key_id = zlt_token_key_id (bob);
  g_autoptr (GError) error = NULL;
  g_autoptr (ZltGrant) grant = NULL;
  guint8 hash[ZLT_HASH_SIZE];
  const char *const *services;

  contents = g_strconcat ("# tokens of the test\n\n   \n", alice_line, "  ", bob_line,
                          "\t# an indented comment\n", carol_line, NULL);
  fixture_load (f, contents);

  /* name, services and expiry as written */
  grant = validate_token (f->validator, alice, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (zlt_grant_get_name (grant), ==, "alice");
  services = zlt_grant_get_services (grant);
  g_assert_nonnull (services);
  g_assert_cmpuint (g_strv_length ((char **) services), ==, 2);
  g_assert_cmpstr (services[0], ==, "web");
  g_assert_cmpstr (services[1], ==, "ssh");
  g_assert_true (zlt_grant_allows_service (grant, "web"));
  g_assert_true (zlt_grant_allows_service (grant, "ssh"));
  g_assert_false (zlt_grant_allows_service (grant, "db"));
  g_assert_cmpint (zlt_grant_get_expiry (grant), ==, FAR_FUTURE);
  zlt_token_hash_raw (alice, hash);
  g_assert_nonnull (zlt_grant_get_token_hash (grant));
  g_assert_cmpmem (zlt_grant_get_token_hash (grant), ZLT_HASH_SIZE, hash, ZLT_HASH_SIZE);
  g_clear_object (&grant);

  /* no fields: named by its key id, every service, no expiry */
  grant = validate_token (f->validator, bob, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (zlt_grant_get_name (grant), ==, bob_key_id);
  g_assert_null (zlt_grant_get_services (grant));
  g_assert_true (zlt_grant_allows_service (grant, "anything"));
  g_assert_cmpint (zlt_grant_get_expiry (grant), ==, 0);
  g_clear_object (&grant);

  /* services=* is every service; unix seconds; a CRLF line */
  grant = validate_token (f->validator, carol, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (zlt_grant_get_name (grant), ==, "carol");
  g_assert_null (zlt_grant_get_services (grant));
  g_assert_cmpint (zlt_grant_get_expiry (grant), ==, FAR_FUTURE);
}

static void
test_v2_proof (Fixture *f, gconstpointer data)
{
  g_autofree char *token = make_token ();
  g_autofree char *other = make_token ();
  g_autofree char *line = line_for (token, "name=agent services=web");
  g_autofree char *key_id = zlt_token_key_id (token);
  g_autoptr (GError) error = NULL;
  g_autoptr (ZltGrant) grant = NULL;
  g_autoptr (ZltCredential) bad = NULL;
  g_autoptr (ZltCredential) foreign = NULL;
  guint8 hash[ZLT_HASH_SIZE];
  guint8 other_hash[ZLT_HASH_SIZE];
  guint8 nonce[ZLT_NONCE_SIZE] = { 0 };
  guint8 proof[ZLT_HASH_SIZE];
  ZltUuid client_id;

  fixture_load (f, line);

  grant = validate_proof (f->validator, token, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (zlt_grant_get_name (grant), ==, "agent");
  g_assert_true (zlt_grant_allows_service (grant, "web"));
  g_assert_false (zlt_grant_allows_service (grant, "ssh"));
  /* the server derives the session key from it */
  zlt_token_hash_raw (token, hash);
  g_assert_cmpmem (zlt_grant_get_token_hash (grant), ZLT_HASH_SIZE, hash, ZLT_HASH_SIZE);

  /* a proof with one bit wrong */
  bad = make_proof (token, TRUE);
  g_clear_object (&grant);
  grant = validate (f->validator, bad, &error);
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_BAD_TOKEN);
  g_assert_null (grant);
  g_clear_error (&error);

  /* the right key id with a proof made from another token */
  zlt_token_hash_raw (other, other_hash);
  zlt_uuid_generate (&client_id);
  zlt_auth_proof (other_hash, nonce, &client_id, proof);
  foreign = zlt_credential_new_proof (key_id, nonce, &client_id, proof);
  grant = validate (f->validator, foreign, &error);
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_BAD_TOKEN);
  g_assert_null (grant);
  g_clear_error (&error);

  /* an unknown key id */
  grant = validate_proof (f->validator, other, &error);
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_BAD_TOKEN);
  g_assert_null (grant);
}

static void
test_unknown_token (Fixture *f, gconstpointer data)
{
  g_autofree char *token = make_token ();
  g_autofree char *line = line_for (token, "name=known");
  g_autofree char *stranger = make_token ();
  g_autoptr (GError) error = NULL;
  g_autoptr (ZltGrant) grant = NULL;

  fixture_load (f, line);
  assert_refused (f->validator, stranger, ZLT_ERROR_BAD_TOKEN);
  /* almost the token */
  token[strlen (token) - 1] ^= 0x01;
  grant = validate_token (f->validator, token, &error);
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_BAD_TOKEN);
  g_assert_null (strstr (error->message, token));
  g_assert_null (grant);
}

static void
test_expired (Fixture *f, gconstpointer data)
{
  g_autofree char *iso = make_token ();
  g_autofree char *unix_time = make_token ();
  g_autofree char *offset = make_token ();
  g_autofree char *contents = NULL;
  g_autofree char *l1 = line_for (iso, "name=old expires=2001-01-01T00:00:00Z");
  g_autofree char *l2 = line_for (unix_time, "name=older expires=1000000000");
  g_autofree char *l3 = line_for (offset, "name=later expires=2100-01-01T02:00:00+02:00");
  g_autoptr (GError) error = NULL;
  g_autoptr (ZltGrant) grant = NULL;

  contents = g_strconcat (l1, l2, l3, NULL);
  fixture_load (f, contents);
  assert_refused (f->validator, iso, ZLT_ERROR_EXPIRED_TOKEN);
  assert_refused (f->validator, unix_time, ZLT_ERROR_EXPIRED_TOKEN);
  /* a time zone other than Z counts right */
  grant = validate_token (f->validator, offset, &error);
  g_assert_no_error (error);
  g_assert_cmpint (zlt_grant_get_expiry (grant), ==, FAR_FUTURE);
}

/* Two entries under one key id: the lookup must try both. */
static void
test_key_id_collision (Fixture *f, gconstpointer data)
{
  g_autofree char *token = make_token ();
  g_autofree char *hash = zlt_token_hash_hex (token);
  g_autofree char *decoy = g_strdup (hash);
  g_autofree char *contents = NULL;

  /* same first 16 hex digits, different hash */
  decoy[ZLT_HASH_HEX_LEN - 1] = decoy[ZLT_HASH_HEX_LEN - 1] == '0' ? '1' : '0';
  contents = g_strdup_printf ("%s name=decoy\n%s name=real\n", decoy, hash);
  fixture_load (f, contents);
  assert_accepted (f->validator, token, "real");
}

typedef struct
{
  const char *fields; /* after a good hash; NULL: the whole line is @line */
  const char *line;
  const char *message;
} BadLine;

static const BadLine bad_lines[] = {
  { "color=blue", NULL, "unknown key ‘color’" },
  { "name=a name=b", NULL, "name given twice" },
  { "services=web services=ssh", NULL, "register (or its older name services) given twice" },
  { "register=web services=ssh", NULL, "register (or its older name services) given twice" },
  { "reach=web reach=ssh", NULL, "reach given twice" },
  { "owns=web owns=ssh", NULL, "owns given twice" },
  { "reach=", NULL, "reach: empty" },
  { "owns=*", NULL, "owns: * would reserve every name" },
  { "reach=web,*", NULL, "reach: entry 2" },
  { "register=*web", NULL, "register: entry 1" },
  { "owns=a**", NULL, "owns: entry 1" },
  { "expires=1 expires=2", NULL, "expires given twice" },
  { "services=", NULL, "services: empty" },
  { "services=web,,ssh", NULL, "services: entry 2" },
  { "services=web,*", NULL, "services: entry 2" },
  { "services=we/b", NULL, "services: entry 1" },
  { "expires=tomorrow", NULL, "expires: not ISO 8601" },
  { "expires=2027-01-01T00:00:00", NULL, "expires: not ISO 8601" },
  { "expires=0", NULL, "expires: must be after" },
  { "expires=99999999999999999999", NULL, "expires: unix time out of range" },
  { "expires=1969-01-01T00:00:00Z", NULL, "expires: must be after" },
  { "justaword", NULL, "field 2 is not key=value" },
  { "=value", NULL, "field 2 is not key=value" },
  { "name=", NULL, "name: must be" },
  { NULL, "0123456789abcdef name=short", "64 lowercase hex" },
  { NULL, "0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF name=upper",
    "64 lowercase hex" },
  { NULL, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg", "64 lowercase hex" },
  { NULL, "name=first", "64 lowercase hex" },
};

static void
test_malformed (Fixture *f, gconstpointer data)
{
  g_autofree char *good = make_token ();
  g_autofree char *good_line = line_for (good, "name=good");

  for (guint i = 0; i < G_N_ELEMENTS (bad_lines); i++)
    {
      g_autofree char *token = make_token ();
      g_autofree char *line
          = bad_lines[i].fields != NULL ? line_for (token, bad_lines[i].fields) : NULL;
      g_autofree char *contents = NULL;
      g_autofree char *where = g_strdup_printf ("%s:3: ", f->path);
      g_autoptr (GError) error = NULL;
      g_autoptr (ZltValidator) validator = NULL;

      contents = g_strconcat ("# line 1\n", good_line, line != NULL ? line : bad_lines[i].line,
                              line != NULL ? "" : "\n", NULL);
      write_file (f->path, contents, 0600);
      validator = zlt_plugin_loader_new_validator (loader, "token-file", f->config, GROUP, &error);
      g_test_message ("case %u: %s", i, error != NULL ? error->message : "(accepted)");
      g_assert_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG);
      g_assert_null (validator);
      g_assert_nonnull (strstr (error->message, where));
      g_assert_nonnull (strstr (error->message, bad_lines[i].message));
    }
}

/* A pasted token, a duplicate hash, and bytes that are not text. */
static void
test_malformed_more (Fixture *f, gconstpointer data)
{
  g_autofree char *token = make_token ();
  g_autofree char *line = line_for (token, "name=one");
  g_autofree char *line2 = line_for (token, "name=two");
  g_autofree char *contents = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (ZltValidator) validator = NULL;
  static const char binary[] = "# ok\n\xff\xfe name=x\n";

  /* the token itself instead of its hash: refused, and never repeated */
  contents = g_strdup_printf ("%s name=oops\n", token);
  write_file (f->path, contents, 0600);
  validator = zlt_plugin_loader_new_validator (loader, "token-file", f->config, GROUP, &error);
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG);
  g_assert_null (validator);
  g_assert_nonnull (strstr (error->message, ":1: "));
  g_assert_null (strstr (error->message, token));
  g_clear_error (&error);

  /* a token pasted as a key, base64 style */
  g_clear_pointer (&contents, g_free);
  contents = g_strdup_printf ("%s%s=\n", line, token);
  write_file (f->path, contents, 0600);
  validator = zlt_plugin_loader_new_validator (loader, "token-file", f->config, GROUP, &error);
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG);
  g_assert_null (strstr (error->message, token));
  g_clear_error (&error);

  /* the same hash twice */
  g_clear_pointer (&contents, g_free);
  contents = g_strconcat (line, "\n", line2, NULL);
  write_file (f->path, contents, 0600);
  validator = zlt_plugin_loader_new_validator (loader, "token-file", f->config, GROUP, &error);
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG);
  g_assert_nonnull (strstr (error->message, ":3: "));
  g_assert_nonnull (strstr (error->message, "already on line 1"));
  g_clear_error (&error);

  write_file (f->path, binary, 0600);
  validator = zlt_plugin_loader_new_validator (loader, "token-file", f->config, GROUP, &error);
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG);
  g_assert_nonnull (strstr (error->message, ":2: not UTF-8"));
  g_clear_error (&error);

  /* an empty file is fine: no tokens (runtime tokens may come later) */
  write_file (f->path, "", 0600);
  validator = zlt_plugin_loader_new_validator (loader, "token-file", f->config, GROUP, &error);
  g_assert_no_error (error);
  assert_refused (validator, token, ZLT_ERROR_BAD_TOKEN);
}

/* A relative path in the validator's group starts at the config file's directory, as
 * every path in the file does, not at whatever directory the process runs in. */
static void
test_relative_path (Fixture *f, gconstpointer data)
{
  g_autofree char *token = make_token ();
  g_autofree char *line = line_for (token, "name=rel");
  g_autoptr (GError) error = NULL;
  g_autoptr (ZltValidator) validator = NULL;
  g_autoptr (ZltGrant) grant = NULL;
  g_autofree char *resolved = NULL;

  write_file (f->path, line, 0600);
  g_key_file_set_string (f->config, GROUP, "path", "tokens");

  /* the working directory (the build tree) holds no "tokens" file */
  validator = zlt_plugin_loader_new_validator (loader, "token-file", f->config, GROUP, &error);
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG);
  g_assert_null (validator);
  g_clear_error (&error);

  validator = zlt_plugin_loader_new_validator_full (loader, "token-file", f->config, GROUP, f->dir,
                                                    &error);
  g_assert_no_error (error);
  g_assert_nonnull (validator);
  g_assert_cmpstr (zlt_validator_get_config_directory (validator), ==, f->dir);
  resolved = zlt_validator_resolve_path (validator, "tokens");
  g_assert_cmpstr (resolved, ==, f->path);
  grant = validate_token (validator, token, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (zlt_grant_get_name (grant), ==, "rel");
}

static void
test_config (Fixture *f, gconstpointer data)
{
  g_autoptr (GKeyFile) empty = g_key_file_new ();
  g_autoptr (GError) error = NULL;
  g_autoptr (ZltValidator) validator = NULL;

  /* no path */
  validator = zlt_plugin_loader_new_validator (loader, "token-file", empty, GROUP, &error);
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG);
  g_assert_nonnull (strstr (error->message, "path"));
  g_assert_null (validator);
  g_clear_error (&error);

  /* a file that is not there */
  validator = zlt_plugin_loader_new_validator (loader, "token-file", f->config, GROUP, &error);
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG);
  g_assert_nonnull (strstr (error->message, f->path));
  g_assert_null (validator);
  g_clear_error (&error);

  /* a directory */
  g_key_file_set_string (f->config, GROUP, "path", f->dir);
  validator = zlt_plugin_loader_new_validator (loader, "token-file", f->config, GROUP, &error);
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG);
  g_assert_nonnull (strstr (error->message, "not a regular file"));
  g_assert_null (validator);
  g_clear_error (&error);

  /* keys the validator does not know, and a bad boolean, are named */
  write_file (f->path, "", 0600);
  g_key_file_set_string (f->config, GROUP, "path", f->path);
  g_key_file_set_string (f->config, GROUP, "patth", "typo");
  validator = zlt_plugin_loader_new_validator (loader, "token-file", f->config, GROUP, &error);
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG);
  g_assert_nonnull (strstr (error->message, "patth: unknown key"));
  g_assert_null (validator);
  g_clear_error (&error);
  g_key_file_remove_key (f->config, GROUP, "patth", NULL);
  g_key_file_set_string (f->config, GROUP, "fail-closed", "perhaps");
  validator = zlt_plugin_loader_new_validator (loader, "token-file", f->config, GROUP, &error);
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG);
  g_assert_nonnull (strstr (error->message, "fail-closed"));
  g_assert_null (validator);
}

/* register=, reach= and owns= give three separate rights; services= is the older name
 * of register=. Patterns cover a prefix. */
static void
test_rights (Fixture *f, gconstpointer data)
{
  g_autofree char *agent = make_token ();
  g_autofree char *client = make_token ();
  g_autofree char *legacy = make_token ();
  g_autofree char *open = make_token ();
  g_autofree char *contents = NULL;
  g_autofree char *owner = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (ZltGrant) grant = NULL;

  g_autofree char *l1 = line_for (agent, "name=acme register=acme-*,web owns=acme-*");
  g_autofree char *l2 = line_for (client, "name=viewer register=viewer reach=acme-db,web");
  g_autofree char *l3 = line_for (legacy, "name=old services=db");
  g_autofree char *l4 = line_for (open, "name=open reach=*");

  contents = g_strconcat (l1, l2, l3, l4, NULL);
  fixture_load (f, contents);

  grant = validate_token (f->validator, agent, &error);
  g_assert_no_error (error);
  g_assert_true (zlt_grant_may_register (grant, "acme-db"));
  g_assert_true (zlt_grant_may_register (grant, "web"));
  g_assert_false (zlt_grant_may_register (grant, "acme"));
  g_assert_false (zlt_grant_may_register (grant, "db"));
  g_assert_false (zlt_grant_may_reach_any (grant));
  g_assert_false (zlt_grant_may_reach (grant, "acme-db"));
  g_assert_true (zlt_grant_owns (grant, "acme-x"));
  g_clear_object (&grant);

  /* reach does not give register, nor the other way round */
  grant = validate_token (f->validator, client, &error);
  g_assert_no_error (error);
  g_assert_true (zlt_grant_may_reach (grant, "acme-db"));
  g_assert_false (zlt_grant_may_reach (grant, "acme-other"));
  g_assert_false (zlt_grant_may_register (grant, "acme-db"));
  g_assert_false (zlt_grant_may_register (grant, "web"));
  g_assert_true (zlt_grant_may_register (grant, "viewer"));
  g_assert_false (zlt_grant_owns (grant, "viewer"));
  g_clear_object (&grant);

  /* services= means register=, and reaches nothing */
  grant = validate_token (f->validator, legacy, &error);
  g_assert_no_error (error);
  g_assert_true (zlt_grant_may_register (grant, "db"));
  g_assert_false (zlt_grant_may_reach (grant, "db"));
  g_clear_object (&grant);

  /* reach=* alone: every service to reach, nothing to register (an access client) */
  grant = validate_token (f->validator, open, &error);
  g_assert_no_error (error);
  g_assert_false (zlt_grant_may_register (grant, "anything"));
  g_assert_true (zlt_grant_may_reach (grant, "anything"));
  g_assert_true (zlt_grant_may_reach_any (grant));

  /* who owns what, for the server's registration check */
  owner = zlt_validator_lookup_owner (f->validator, "acme-db");
  g_assert_cmpstr (owner, ==, "acme");
  g_clear_pointer (&owner, g_free);
  owner = zlt_validator_lookup_owner (f->validator, "web");
  g_assert_null (owner);
}

/* Two names cannot own one service. */
static void
test_owner_conflict (Fixture *f, gconstpointer data)
{
  const char *const cases[][2] = {
    { "name=a owns=db", "name=b owns=db" },
    { "name=a owns=acme-*", "name=b owns=acme-db" },
    { "name=a owns=acme-db", "name=b owns=acme-*" },
    { "name=a owns=a*", "name=b owns=ab*" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *one = make_token ();
      g_autofree char *two = make_token ();
      g_autofree char *l1 = line_for (one, cases[i][0]);
      g_autofree char *l2 = line_for (two, cases[i][1]);
      g_autofree char *contents = g_strconcat (l1, l2, NULL);
      g_autoptr (GError) error = NULL;
      g_autoptr (ZltValidator) validator = NULL;

      write_file (f->path, contents, 0600);
      validator = zlt_plugin_loader_new_validator (loader, "token-file", f->config, GROUP, &error);
      g_assert_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG);
      g_assert_nonnull (strstr (error->message, ":2: owns:"));
      g_assert_nonnull (strstr (error->message, "already owned by a (line 1)"));
      g_assert_null (validator);
    }
  /* one name owning the same thing on two lines (a token being rotated) is fine */
  {
    g_autofree char *one = make_token ();
    g_autofree char *two = make_token ();
    g_autofree char *l1 = line_for (one, "name=a owns=db");
    g_autofree char *l2 = line_for (two, "name=a owns=db");
    g_autofree char *contents = g_strconcat (l1, l2, NULL);

    fixture_load (f, contents);
  }
}

static void
test_permissions (Fixture *f, gconstpointer data)
{
  static const int refused[] = { 0644, 0660, 0640, 0620, 0602, 0604, 0666 };
  static const int accepted[] = { 0600, 0400 };
  g_autofree char *token = make_token ();
  g_autofree char *line = line_for (token, "name=perm");

  for (guint i = 0; i < G_N_ELEMENTS (refused); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (ZltValidator) validator = NULL;
      g_autofree char *mode = g_strdup_printf ("%04o", (guint) refused[i]);

      write_file (f->path, line, refused[i]);
      validator = zlt_plugin_loader_new_validator (loader, "token-file", f->config, GROUP, &error);
      g_assert_error (error, ZLT_ERROR, ZLT_ERROR_INSECURE);
      g_assert_null (validator);
      g_assert_nonnull (strstr (error->message, f->path));
      g_assert_nonnull (strstr (error->message, mode));
    }
  for (guint i = 0; i < G_N_ELEMENTS (accepted); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (ZltValidator) validator = NULL;

      g_assert_cmpint (g_chmod (f->path, accepted[i]), ==, 0);
      validator = zlt_plugin_loader_new_validator (loader, "token-file", f->config, GROUP, &error);
      g_assert_no_error (error);
      assert_accepted (validator, token, "perm");
    }
  /* a file owned by someone else cannot be made without privileges; the owner rule is
   * exercised only when the test runs as root (root-owned files are fine then) */
}

/* The file is rewritten while the validator runs: the monitor reloads it. */
static void
test_reload_on_change (Fixture *f, gconstpointer data)
{
  g_autofree char *old = make_token ();
  g_autofree char *renamed = make_token ();
  g_autofree char *in_place = make_token ();
  g_autofree char *old_line = line_for (old, "name=old");
  g_autofree char *renamed_line = line_for (renamed, "name=renamed");
  g_autofree char *in_place_line = line_for (in_place, "name=in-place");

  fixture_load (f, old_line);
  assert_accepted (f->validator, old, "old");

  /* replaced by rename */
  write_file (f->path, renamed_line, 0600);
  WAIT_FOR (f->n_changed >= 1, 10000);
  assert_refused (f->validator, old, ZLT_ERROR_BAD_TOKEN);
  assert_accepted (f->validator, renamed, "renamed");

  /* rewritten in place */
  f->n_changed = 0;
  write_file_in_place (f->path, in_place_line);
  WAIT_FOR (f->n_changed >= 1, 10000);
  assert_refused (f->validator, renamed, ZLT_ERROR_BAD_TOKEN);
  assert_accepted (f->validator, in_place, "in-place");
}

/* On reload, a file that fails to parse keeps the tokens loaded before (an editing
 * mistake); a file that turns unsafe or disappears ends them (fail-closed, the
 * default), since whoever controls it now is not the admin who wrote them. */
static void
test_reload_broken (Fixture *f, gconstpointer data)
{
  gboolean fail_closed = GPOINTER_TO_INT (data);
  g_autofree char *old = make_token ();
  g_autofree char *fixed = make_token ();
  g_autofree char *old_line = line_for (old, "name=old");
  g_autofree char *broken = g_strconcat (old_line, "not a token line\n", NULL);
  g_autofree char *fixed_line = line_for (fixed, "name=fixed");

  if (!fail_closed)
    g_key_file_set_boolean (f->config, GROUP, "fail-closed", FALSE);
  fixture_load (f, old_line);

  write_file (f->path, broken, 0600);
  g_assert_false (emit_reload (f->validator));
  assert_accepted (f->validator, old, "old");
  g_assert_cmpuint (f->n_changed, ==, 0);

  /* unsafe permissions are refused on reload too: nothing of the file loads, and with
   * fail-closed nothing loaded before stays */
  write_file (f->path, fixed_line, 0644);
  g_assert_false (emit_reload (f->validator));
  assert_refused (f->validator, fixed, ZLT_ERROR_BAD_TOKEN);
  if (fail_closed)
    {
      assert_refused (f->validator, old, ZLT_ERROR_BAD_TOKEN);
      g_assert_cmpuint (f->n_changed, ==, 1);
    }
  else
    {
      assert_accepted (f->validator, old, "old");
      g_assert_cmpuint (f->n_changed, ==, 0);
    }

  /* gone */
  g_assert_cmpint (g_unlink (f->path), ==, 0);
  g_assert_false (emit_reload (f->validator));
  if (fail_closed)
    assert_refused (f->validator, old, ZLT_ERROR_BAD_TOKEN);
  else
    assert_accepted (f->validator, old, "old");
  g_assert_cmpuint (f->n_changed, ==, fail_closed ? 1 : 0);

  /* and back */
  write_file (f->path, fixed_line, 0600);
  g_assert_true (emit_reload (f->validator));
  g_assert_cmpuint (f->n_changed, ==, fail_closed ? 2 : 1);
  assert_refused (f->validator, old, ZLT_ERROR_BAD_TOKEN);
  assert_accepted (f->validator, fixed, "fixed");
}

/* The "reload" action signal loads at once and "changed" tells only real changes. */
static void
test_reload_action (Fixture *f, gconstpointer data)
{
  g_autofree char *a = make_token ();
  g_autofree char *b = make_token ();
  g_autofree char *a_line = line_for (a, "name=a");
  g_autofree char *b_line = line_for (b, "name=b services=web");

  fixture_load (f, a_line);
  g_assert_true (emit_reload (f->validator));
  g_assert_cmpuint (f->n_changed, ==, 0);

  write_file (f->path, b_line, 0600);
  g_assert_true (emit_reload (f->validator));
  g_assert_cmpuint (f->n_changed, ==, 1);
  assert_refused (f->validator, a, ZLT_ERROR_BAD_TOKEN);
  assert_accepted (f->validator, b, "b");

  /* the monitor sees the same write later and finds nothing new */
  g_assert_true (emit_reload (f->validator));
  g_assert_cmpuint (f->n_changed, ==, 1);
}

static void
test_runtime_tokens (Fixture *f, gconstpointer data)
{
  g_autofree char *file_token = make_token ();
  g_autofree char *file_line = line_for (file_token, "name=from-file");
  g_autofree char *node = make_token ();
  g_autofree char *node2 = make_token ();
  g_autofree char *late = make_token ();
  g_autofree char *other_file_token = make_token ();
  g_autofree char *other_line = line_for (other_file_token, "name=other");
  const char *const services[] = { "web", NULL };
  const char *const bad_services[] = { "web", "no spaces", NULL };
  g_autoptr (GError) error = NULL;
  g_autoptr (ZltGrant) grant = NULL;
  guint8 hash[ZLT_HASH_SIZE];

  fixture_load (f, file_line);

  zlt_token_hash_raw (node, hash);
  g_assert_true (zlt_validator_add_token (f->validator, "node-a", hash, services, 0, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (f->n_changed, ==, 1);
  assert_accepted (f->validator, node, "node-a");
  assert_accepted (f->validator, file_token, "from-file");
  grant = validate_proof (f->validator, node, &error);
  g_assert_no_error (error);
  g_assert_true (zlt_grant_allows_service (grant, "web"));
  g_assert_false (zlt_grant_allows_service (grant, "ssh"));
  g_clear_object (&grant);

  /* runtime tokens survive a reload of the file */
  write_file (f->path, other_line, 0600);
  g_assert_true (emit_reload (f->validator));
  assert_accepted (f->validator, node, "node-a");
  assert_accepted (f->validator, other_file_token, "other");
  assert_refused (f->validator, file_token, ZLT_ERROR_BAD_TOKEN);

  /* adding under the same name replaces */
  zlt_token_hash_raw (node2, hash);
  g_assert_true (zlt_validator_add_token (f->validator, "node-a", hash, NULL, 0, &error));
  g_assert_no_error (error);
  assert_refused (f->validator, node, ZLT_ERROR_BAD_TOKEN);
  assert_accepted (f->validator, node2, "node-a");

  /* an expired runtime token */
  zlt_token_hash_raw (late, hash);
  g_assert_true (zlt_validator_add_token (f->validator, "late", hash, NULL, 1000, &error));
  g_assert_no_error (error);
  assert_refused (f->validator, late, ZLT_ERROR_EXPIRED_TOKEN);

  /* bad names and services */
  g_assert_false (zlt_validator_add_token (f->validator, "two words", hash, NULL, 0, &error));
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG);
  g_clear_error (&error);
  g_assert_false (zlt_validator_add_token (f->validator, "node-b", hash, bad_services, 0, &error));
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG);
  g_clear_error (&error);

  /* removing */
  f->n_changed = 0;
  g_assert_true (zlt_validator_remove_token (f->validator, "node-a", &error));
  g_assert_no_error (error);
  g_assert_cmpuint (f->n_changed, ==, 1);
  assert_refused (f->validator, node2, ZLT_ERROR_BAD_TOKEN);
  g_assert_false (zlt_validator_remove_token (f->validator, "node-a", &error));
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_NOT_FOUND);
  g_clear_error (&error);
  /* file tokens are not runtime tokens */
  g_assert_false (zlt_validator_remove_token (f->validator, "other", &error));
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_NOT_FOUND);
  assert_accepted (f->validator, other_file_token, "other");
}

/* ---- allow-all ---- */

static void
test_allow_all_refused (void)
{
  g_autoptr (GKeyFile) config = g_key_file_new ();
  g_autoptr (GError) error = NULL;
  g_autoptr (ZltValidator) validator = NULL;

  validator = zlt_plugin_loader_new_validator (loader, "allow-all", config, NULL, &error);
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_INSECURE);
  g_assert_nonnull (strstr (error->message, "insecure=true"));
  g_assert_null (validator);
  g_clear_error (&error);

  g_key_file_set_boolean (config, "validator:allow-all", "insecure", FALSE);
  validator = zlt_plugin_loader_new_validator (loader, "allow-all", config, NULL, &error);
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_INSECURE);
  g_assert_null (validator);
}

static void
test_allow_all (void)
{
  g_autoptr (GKeyFile) config = g_key_file_new ();
  g_autoptr (GError) error = NULL;
  g_autoptr (ZltValidator) validator = NULL;
  g_autoptr (ZltGrant) grant = NULL;
  g_autoptr (ZltCredential) proof = NULL;
  g_autofree char *token = make_token ();

  g_key_file_set_boolean (config, "validator:allow-all", "insecure", TRUE);
  validator = zlt_plugin_loader_new_validator (loader, "allow-all", config, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (zlt_validator_is_insecure (validator));
  g_assert_cmpstr (zlt_validator_get_name (validator), ==, "allow-all");

  /* any v1 token, every service, no expiry; no hash (v1 needs no session key) */
  grant = validate_token (validator, token, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (zlt_grant_get_name (grant), ==, "allow-all");
  g_assert_null (zlt_grant_get_services (grant));
  g_assert_true (zlt_grant_allows_service (grant, "anything"));
  g_assert_cmpint (zlt_grant_get_expiry (grant), ==, 0);
  g_assert_null (zlt_grant_get_token_hash (grant));
  g_clear_object (&grant);

  /* v2 proofs cannot be checked without the hash: refused */
  proof = make_proof (token, FALSE);
  grant = validate (validator, proof, &error);
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_BAD_TOKEN);
  g_assert_null (grant);
  g_clear_error (&error);

  /* insecure=true in [server] is just as good */
  g_clear_object (&validator);
  g_key_file_remove_group (config, "validator:allow-all", NULL);
  g_key_file_set_boolean (config, "server", "insecure", TRUE);
  validator = zlt_plugin_loader_new_validator (loader, "allow-all", config, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (validator);
}

int
main (int argc, char **argv)
{
  g_autoptr (GError) error = NULL;
  int ret;

  g_test_init (&argc, &argv, NULL);
  zlt_init ();

  loader = zlt_plugin_loader_new (NULL);
  if (!zlt_plugin_loader_load_all (loader, &error))
    g_error ("cannot load plugins: %s", error->message);
  if (zlt_plugin_loader_get_validator_type (loader, "token-file") == G_TYPE_INVALID
      || zlt_plugin_loader_get_validator_type (loader, "allow-all") == G_TYPE_INVALID)
    g_error ("the validator plugins are not in %s", zlt_plugin_loader_get_directory (loader));

#define ADD(path, func) g_test_add (path, Fixture, NULL, fixture_setup, func, fixture_teardown)
  ADD ("/validator/token-file/v1-grant", test_v1_grant);
  ADD ("/validator/token-file/v2-proof", test_v2_proof);
  ADD ("/validator/token-file/unknown-token", test_unknown_token);
  ADD ("/validator/token-file/expired", test_expired);
  ADD ("/validator/token-file/key-id-collision", test_key_id_collision);
  ADD ("/validator/token-file/malformed", test_malformed);
  ADD ("/validator/token-file/malformed-more", test_malformed_more);
  ADD ("/validator/token-file/config", test_config);
  ADD ("/validator/token-file/relative-path", test_relative_path);
  ADD ("/validator/token-file/permissions", test_permissions);
  ADD ("/validator/token-file/reload-on-change", test_reload_on_change);
  ADD ("/validator/token-file/rights", test_rights);
  ADD ("/validator/token-file/owner-conflict", test_owner_conflict);
  g_test_add ("/validator/token-file/reload-broken", Fixture, GINT_TO_POINTER (TRUE), fixture_setup,
              test_reload_broken, fixture_teardown);
  g_test_add ("/validator/token-file/reload-broken-fail-open", Fixture, GINT_TO_POINTER (FALSE),
              fixture_setup, test_reload_broken, fixture_teardown);
  ADD ("/validator/token-file/reload-action", test_reload_action);
  ADD ("/validator/token-file/runtime-tokens", test_runtime_tokens);
#undef ADD
  g_test_add_func ("/validator/allow-all/refused", test_allow_all_refused);
  g_test_add_func ("/validator/allow-all/v1", test_allow_all);

  ret = g_test_run ();
  g_clear_object (&loader);
  return ret;
}
