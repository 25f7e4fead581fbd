/* test-oot-login.c: a real login through the out-of-tree validator that
 * run-out-of-tree.sh built against the installed SDK ($ZLT_OOT_PLUGIN_DIR): a server on
 * loopback configured with validator=oot, an agent with the right token registers a
 * service, one with another token is refused for good. */
#include "config.h"

#include "zlt-test-util.h"

static void
harness_with_oot (ZltTestHarness *h)
{
  g_autofree char *hash = NULL;

  zlt_test_harness_init (h, "29700-29749");
  g_assert_cmpuint (zlt_plugin_loader_get_validator_type (h->loader, "oot"), !=, G_TYPE_INVALID);
  hash = zlt_token_hash_hex (h->token);
  g_key_file_set_string (h->server_keyfile, "server", "validator", "oot");
  g_key_file_remove_group (h->server_keyfile, "validator:token-file", NULL);
  g_key_file_set_string (h->server_keyfile, "validator:oot", "token-sha256", hash);
}

static void
test_oot_login (void)
{
  ZltTestHarness h;

  harness_with_oot (&h);
  zlt_test_harness_start_server (&h);
  g_assert_cmpstr (zlt_validator_get_name (zlt_server_get_validator (h.server)), ==, "oot");
  zlt_test_harness_add_service (&h, "web", zlt_test_echo_get_port (h.echo), 0);
  zlt_test_harness_start_agent (&h);
  g_assert_cmpuint (zlt_test_harness_wait_registered (&h, "web"), >, 0);
  g_assert_cmpint (zlt_agent_get_state (h.agent), ==, ZLT_TUNNEL_STATE_CONNECTED);
  zlt_test_harness_clear (&h);
}

static void
test_oot_refused (void)
{
  ZltTestHarness h;

  harness_with_oot (&h);
  zlt_test_harness_start_server (&h);
  zlt_test_harness_set_agent_token (&h, "zlt_not-the-configured-token");
  zlt_test_harness_add_service (&h, "web", zlt_test_echo_get_port (h.echo), 0);
  zlt_test_harness_start_agent (&h);
  ZLT_TEST_WAIT_FOR (zlt_agent_get_fatal (h.agent), 10000);
  g_assert_cmpuint (zlt_agent_get_n_sessions (h.agent), ==, 0);
  zlt_test_harness_clear (&h);
}

int
main (int argc, char **argv)
{
  const char *oot_dir = g_getenv ("ZLT_OOT_PLUGIN_DIR");

  g_test_init (&argc, &argv, NULL);
  zlt_init ();
  if (oot_dir == NULL)
    {
      g_printerr ("run by run-out-of-tree.sh, with ZLT_OOT_PLUGIN_DIR set\n");
      return 77;
    }
  /* the out-of-tree plugin first, then the build tree's (search path) */
  {
    g_autofree char *path
        = g_strjoin (G_SEARCHPATH_SEPARATOR_S, oot_dir, g_getenv ("ZLT_PLUGIN_DIR"), NULL);
    g_setenv ("ZLT_PLUGIN_DIR", path, TRUE);
  }
  g_test_add_func ("/out-of-tree/login", test_oot_login);
  g_test_add_func ("/out-of-tree/refused", test_oot_refused);
  return g_test_run ();
}
