/* test-resume-book.c: ZltResumeBook, the server's one place for resuming v2 sessions:
 * secrets issued and proven, holds (cut to the token's expiry, none without a secret),
 * takeover of a channel that still looks alive, forgetting removed tunnels, rechecking
 * held tunnels when tokens change. Real registry, real crypto, no server. */
#include "config.h"

#include <glib/gstdio.h>
#include <string.h>

#include "zlayer-tunnel.h"
#include "zlt-resume-book.h"

#define WAIT_FOR(expr, timeout_ms)                                                                 \
  G_STMT_START                                                                                     \
  {                                                                                                \
    gint64 _deadline = g_get_monotonic_time () + (gint64) (timeout_ms) *1000;                      \
    while (!(expr) && g_get_monotonic_time () < _deadline)                                         \
      g_main_context_iteration (NULL, FALSE);                                                      \
    if (!(expr))                                                                                   \
      g_error ("timed out after %u ms waiting for: %s", (guint) (timeout_ms), #expr);              \
  }                                                                                                \
  G_STMT_END

typedef struct
{
  ZltRegistry *registry;
  ZltResumeBook *book;
  ZltTunnel *tunnel;
  guint16 port;
  guint8 token_hash[ZLT_HASH_SIZE];
  guint8 nonce[ZLT_NONCE_SIZE];
  guint n_displaced;
} Fixture;

static void
on_displace (ZltResumeBook *book, ZltTunnel *tunnel, gpointer user_data)
{
  Fixture *f = user_data;

  g_assert_true (tunnel == f->tunnel);
  f->n_displaced++;
}

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (ZltTunnel) tunnel = zlt_tunnel_new (ZLT_ROLE_SERVER);
  ZltService *service;

  /* the registry only books ports here; nothing listens */
  f->registry = zlt_registry_new_from_ranges ("30000-30003", &error);
  g_assert_no_error (error);
  f->book = zlt_resume_book_new (f->registry);
  g_signal_connect (f->book, "displace", G_CALLBACK (on_displace), f);
  g_assert_true (zlt_registry_add_tunnel (f->registry, tunnel, &error));
  f->tunnel = g_object_ref (tunnel);
  service = zlt_registry_register_service (f->registry, tunnel, "web", ZLT_PROTOCOL_TCP, 8080, 0,
                                           ZLT_EXPOSE_PUBLIC, &error);
  g_assert_no_error (error);
  f->port = zlt_service_get_assigned_port (service);
  zlt_token_hash_raw ("zlt_resume_book_test_token", f->token_hash);
  zlt_random_bytes (f->nonce, sizeof f->nonce);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  g_clear_object (&f->book);
  g_clear_object (&f->registry);
  g_clear_object (&f->tunnel);
}

/* What the agent sends: the MAC of the secret over the new connection's nonce. */
static void
prove (const guint8 secret[ZLT_HASH_SIZE], const guint8 nonce[ZLT_NONCE_SIZE],
       guint8 mac[ZLT_HASH_SIZE])
{
  zlt_resume_mac (secret, nonce, mac);
}

static void
test_issue_hold_redeem (Fixture *f, gconstpointer data)
{
  guint8 secret[ZLT_HASH_SIZE], mac[ZLT_HASH_SIZE], other_hash[ZLT_HASH_SIZE];
  gint64 deadline = -1;

  zlt_resume_book_issue (f->book, f->tunnel, f->token_hash, NULL, 1234, secret);
  zlt_resume_book_hold (f->book, f->tunnel, 60 * 1000, 0);
  g_assert_true (zlt_registry_is_held (f->registry, f->tunnel));

  /* a wrong proof, or the right proof with another token, takes nothing */
  prove (secret, f->nonce, mac);
  mac[0] ^= 1;
  g_assert_null (zlt_resume_book_redeem (f->book, zlt_tunnel_get_id (f->tunnel), f->nonce, mac,
                                         f->token_hash, &deadline));
  mac[0] ^= 1;
  zlt_token_hash_raw ("zlt_someone_else", other_hash);
  g_assert_null (zlt_resume_book_redeem (f->book, zlt_tunnel_get_id (f->tunnel), f->nonce, mac,
                                         other_hash, &deadline));
  g_assert_true (zlt_registry_is_held (f->registry, f->tunnel));

  /* the proof: the same tunnel, its port, and the deadline it had */
  g_assert_true (zlt_resume_book_redeem (f->book, zlt_tunnel_get_id (f->tunnel), f->nonce, mac,
                                         f->token_hash, &deadline)
                 == f->tunnel);
  g_assert_false (zlt_registry_is_held (f->registry, f->tunnel));
  g_assert_cmpint (deadline, ==, 1234);
  g_assert_cmpuint (zlt_service_get_assigned_port (zlt_tunnel_lookup_service (f->tunnel, "web")),
                    ==, f->port);
  g_assert_cmpuint (f->n_displaced, ==, 0);
}

/* Nothing was issued (a v1 agent, or one that did not ask to resume): no hold. */
static void
test_no_secret_no_hold (Fixture *f, gconstpointer data)
{
  zlt_resume_book_hold (f->book, f->tunnel, 60 * 1000, 0);
  g_assert_null (zlt_registry_lookup_tunnel (f->registry, zlt_tunnel_get_id (f->tunnel)));
}

/* A hold never outlives the token: an expired one gets none, and the port is free. */
static void
test_hold_cut_to_expiry (Fixture *f, gconstpointer data)
{
  guint8 secret[ZLT_HASH_SIZE];

  zlt_resume_book_issue (f->book, f->tunnel, f->token_hash, NULL, 0, secret);
  zlt_resume_book_hold (f->book, f->tunnel, 60 * 1000, g_get_real_time () / G_USEC_PER_SEC - 1);
  g_assert_null (zlt_registry_lookup_tunnel (f->registry, zlt_tunnel_get_id (f->tunnel)));
  g_assert_null (zlt_registry_lookup_service_by_port (f->registry, ZLT_PROTOCOL_TCP, f->port));
}

/* The agent saw its connection die before the server did: a proven resume displaces
 * the channel the server still thinks alive, and takes the tunnel over. */
static void
test_takeover (Fixture *f, gconstpointer data)
{
  guint8 secret[ZLT_HASH_SIZE], mac[ZLT_HASH_SIZE];
  gint64 deadline;

  zlt_resume_book_issue (f->book, f->tunnel, f->token_hash, NULL, 0, secret);
  prove (secret, f->nonce, mac);
  g_assert_true (zlt_resume_book_redeem (f->book, zlt_tunnel_get_id (f->tunnel), f->nonce, mac,
                                         f->token_hash, &deadline)
                 == f->tunnel);
  g_assert_cmpuint (f->n_displaced, ==, 1);
  g_assert_false (zlt_registry_is_held (f->registry, f->tunnel));
  g_assert_nonnull (zlt_tunnel_lookup_service (f->tunnel, "web"));
}

/* A removed tunnel's secret is forgotten; a new secret spends the old one. */
static void
test_forgotten (Fixture *f, gconstpointer data)
{
  guint8 old[ZLT_HASH_SIZE], secret[ZLT_HASH_SIZE], mac[ZLT_HASH_SIZE];
  gint64 deadline;
  ZltUuid id = *zlt_tunnel_get_id (f->tunnel);

  zlt_resume_book_issue (f->book, f->tunnel, f->token_hash, NULL, 0, old);
  zlt_resume_book_issue (f->book, f->tunnel, f->token_hash, NULL, 0, secret);
  g_assert_true (memcmp (old, secret, sizeof old) != 0);
  prove (old, f->nonce, mac);
  g_assert_null (zlt_resume_book_redeem (f->book, &id, f->nonce, mac, f->token_hash, &deadline));

  prove (secret, f->nonce, mac);
  zlt_registry_remove_tunnel (f->registry, f->tunnel);
  g_assert_null (zlt_resume_book_redeem (f->book, &id, f->nonce, mac, f->token_hash, &deadline));
}

/* Tokens changed while the tunnel was held: its credential no longer passes, so the
 * tunnel and its port go (nobody is there to ask); a live one is not the book's to
 * judge. Checked with the real token-file validator. */
static void
test_recheck (Fixture *f, gconstpointer data)
{
  g_autoptr (ZltPluginLoader) loader = zlt_plugin_loader_new (NULL);
  g_autoptr (GKeyFile) config = g_key_file_new ();
  g_autoptr (ZltValidator) validator = NULL;
  g_autoptr (ZltCredential) credential = zlt_credential_new_token ("zlt_not_in_any_file");
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("zlt-resume-book-XXXXXX", &error);
  g_autofree char *tokens = g_build_filename (dir, "tokens", NULL);
  guint8 secret[ZLT_HASH_SIZE];

  g_assert_no_error (error);
  g_assert_true (
      g_file_set_contents_full (tokens, "", 0, G_FILE_SET_CONTENTS_CONSISTENT, 0600, &error));
  g_assert_true (zlt_plugin_loader_load_all (loader, &error));
  g_key_file_set_string (config, "validator:token-file", "path", tokens);
  validator = zlt_plugin_loader_new_validator (loader, "token-file", config, NULL, &error);
  g_assert_no_error (error);

  zlt_resume_book_issue (f->book, f->tunnel, f->token_hash, credential, 0, secret);
  /* live: left alone */
  zlt_resume_book_recheck (f->book, validator);
  g_main_context_iteration (NULL, FALSE);
  g_assert_nonnull (zlt_registry_lookup_tunnel (f->registry, zlt_tunnel_get_id (f->tunnel)));

  zlt_resume_book_hold (f->book, f->tunnel, 60 * 1000, 0);
  zlt_resume_book_recheck (f->book, validator);
  WAIT_FOR (zlt_registry_lookup_tunnel (f->registry, zlt_tunnel_get_id (f->tunnel)) == NULL, 5000);
  g_assert_null (zlt_registry_lookup_service_by_port (f->registry, ZLT_PROTOCOL_TCP, f->port));
  g_assert_cmpint (g_unlink (tokens), ==, 0);
  g_assert_cmpint (g_rmdir (dir), ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  zlt_init ();
#define ADD(path, func)                                                                            \
  g_test_add ("/resume-book/" path, Fixture, NULL, fixture_setup, func, fixture_teardown)
  ADD ("issue-hold-redeem", test_issue_hold_redeem);
  ADD ("no-secret-no-hold", test_no_secret_no_hold);
  ADD ("hold-cut-to-expiry", test_hold_cut_to_expiry);
  ADD ("takeover", test_takeover);
  ADD ("forgotten", test_forgotten);
  ADD ("recheck", test_recheck);
#undef ADD
  return g_test_run ();
}
