/* test-cli-agent.c: the command-line agent as a user runs it, a process of its own
 * against an in-process server: it gives up on refusals retrying cannot cure (unless
 * told to retry forever), and when it is stopped it says goodbye, so the server holds
 * nothing for it and its restart gets the same port at once; suspended, it does not
 * blame the server for its own silence. */
#include "config.h"

#include <signal.h>
#include <string.h>

#include "zlt-test-util.h"

#define WAIT_MS 15000

typedef struct
{
  ZltTestHarness h;
} Fixture;

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  zlt_test_harness_init (&f->h, "31200-31299");
  /* an agent that left without a word would be held this long */
  g_key_file_set_integer (f->h.server_keyfile, "server", "resume-grace", 600);
  zlt_test_harness_start_server (&f->h);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  zlt_test_harness_clear (&f->h);
}

/* The harness's agent config, with @token in a file of its own. */
static GKeyFile *
agent_config (Fixture *f, const char *token)
{
  g_autoptr (GKeyFile) kf = g_key_file_new ();
  g_autofree char *data = g_key_file_to_data (f->h.agent_keyfile, NULL, NULL);
  g_autofree char *path = g_build_filename (f->h.tmpdir, "cli-token", NULL);
  g_autoptr (GError) error = NULL;

  g_file_set_contents_full (path, token, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600, &error);
  g_assert_no_error (error);
  g_key_file_load_from_data (kf, data, (gsize) -1, G_KEY_FILE_NONE, &error);
  g_assert_no_error (error);
  g_key_file_set_string (kf, "agent", "token-file", path);
  /* fatal refusals wait fatal-retry: keep it short */
  g_key_file_set_double (kf, "agent", "fatal-retry", 0.3);
  return g_steal_pointer (&kf);
}

/* A token the server does not know: exit 1 with the reason, quickly. */
static void
test_fatal_exits (Fixture *f, gconstpointer data)
{
  g_autoptr (GKeyFile) config = agent_config (f, "zlt_not_in_the_file");
  g_autoptr (GSubprocess) agent = NULL;
  g_autofree char *err = NULL;

  agent = zlt_test_spawn_cli ("agent", config, f->h.tmpdir, TRUE, NULL);
  g_assert_true (zlt_test_process_wait (agent, WAIT_MS));
  err = zlt_test_process_stderr (agent);
  g_test_message ("the agent said: %s", err);
  g_assert_true (g_subprocess_get_if_exited (agent));
  g_assert_cmpint (g_subprocess_get_exit_status (agent), ==, 1);
  /* the last line: the reason, and how to keep trying anyway */
  g_assert_nonnull (strstr (err, "zlayer-tunnel: authentication failed: unknown token (retrying "
                                 "cannot help; --retry-forever retries anyway)"));
  /* the token never appears in what it says */
  g_assert_null (strstr (err, "zlt_not_in_the_file"));
}

/* ...unless told to behave like the daemon. */
static void
test_retry_forever (Fixture *f, gconstpointer data)
{
  g_autoptr (GKeyFile) config = agent_config (f, "zlt_not_in_the_file");
  g_autoptr (GSubprocess) agent = NULL;
  gint64 started = g_get_monotonic_time ();

  agent = zlt_test_spawn_cli ("agent", config, f->h.tmpdir, FALSE, "--retry-forever", NULL);
  /* refused, retried, refused again: and still there */
  g_assert_false (zlt_test_process_wait (agent, 2000));
  g_assert_cmpint (g_get_monotonic_time () - started, >=, 2 * G_USEC_PER_SEC);
  g_assert_nonnull (g_subprocess_get_identifier (agent));
  zlt_test_process_stop (agent, WAIT_MS);
}

/* SIGTERM: the agent says goodbye before it exits, so the server drops its tunnel at
 * once instead of holding it (and its port) for a resume; started again, it gets the
 * same port. */
static void
test_sigterm_says_goodbye (Fixture *f, gconstpointer data)
{
  g_autoptr (GKeyFile) config = agent_config (f, f->h.token);
  g_autoptr (GSubprocess) agent = NULL;
  g_autoptr (GSubprocess) again = NULL;
  ZltRegistry *registry = zlt_server_get_registry (f->h.server);
  ZltService *service = NULL;
  guint16 port;

  g_key_file_set_integer (config, "service:echo", "local-port", zlt_test_echo_get_port (f->h.echo));
  agent = zlt_test_spawn_cli ("agent", config, f->h.tmpdir, FALSE, NULL);
  ZLT_TEST_WAIT_FOR (
      (service = zlt_registry_lookup_service_by_name (registry, "echo", NULL)) != NULL, WAIT_MS);
  port = zlt_service_get_assigned_port (service);

  zlt_test_process_stop (agent, WAIT_MS);
  g_assert_true (g_subprocess_get_if_exited (agent));
  g_assert_cmpint (g_subprocess_get_exit_status (agent), ==, 0);
  /* not held (a hold would keep it 600 s) */
  ZLT_TEST_WAIT_FOR (zlt_registry_get_n_tunnels (registry) == 0, 5000);
  g_assert_true (zlt_test_connect_refused (port));

  again = zlt_test_spawn_cli ("agent", config, f->h.tmpdir, FALSE, NULL);
  ZLT_TEST_WAIT_FOR (
      (service = zlt_registry_lookup_service_by_name (registry, "echo", NULL)) != NULL, WAIT_MS);
  g_assert_cmpuint (zlt_service_get_assigned_port (service), ==, port);
  zlt_test_process_stop (again, WAIT_MS);
}

static void
on_line_read (GObject *source, GAsyncResult *result, gpointer user_data)
{
  char **line = user_data;
  g_autoptr (GError) error = NULL;

  *line = g_data_input_stream_read_line_finish_utf8 (G_DATA_INPUT_STREAM (source), result, NULL,
                                                     &error);
  if (*line == NULL)
    *line = g_strdup (error != NULL ? error->message : "(end of output)");
}

/* What the agent prints for scripts ("echo is reachable at ...") goes through a pipe
 * when it happens, not when the process ends. */
static void
test_prints_as_it_happens (Fixture *f, gconstpointer data)
{
  g_autoptr (GKeyFile) config = agent_config (f, f->h.token);
  g_autofree char *path = g_build_filename (f->h.tmpdir, "piped.conf", NULL);
  g_autofree char *cli
      = g_test_build_filename (G_TEST_BUILT, "..", "daemon", "zlayer-tunnel", NULL);
  g_autoptr (GSubprocess) agent = NULL;
  g_autoptr (GDataInputStream) out = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *line = NULL;
  g_autofree char *expected = NULL;
  ZltService *service = NULL;

  g_key_file_set_integer (config, "service:echo", "local-port", zlt_test_echo_get_port (f->h.echo));
  g_key_file_save_to_file (config, path, &error);
  g_assert_no_error (error);
  agent = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error, cli, "agent", "-c", path, NULL);
  g_assert_no_error (error);
  out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (agent));
  g_data_input_stream_read_line_async (out, G_PRIORITY_DEFAULT, NULL, on_line_read, &line);
  ZLT_TEST_WAIT_FOR (line != NULL, WAIT_MS);
  /* still running: the line came through the pipe, not with the exit */
  g_assert_nonnull (g_subprocess_get_identifier (agent));
  service
      = zlt_registry_lookup_service_by_name (zlt_server_get_registry (f->h.server), "echo", NULL);
  g_assert_nonnull (service);
  expected = g_strdup_printf ("echo is reachable at 127.0.0.1:%u",
                              zlt_service_get_assigned_port (service));
  g_assert_cmpstr (line, ==, expected);
  zlt_test_process_stop (agent, WAIT_MS);
}

/* Lets @ms pass with the main loop (and so the in-process server) running: for windows
 * in which something must NOT happen, or a stopped process must stay stopped. */
static void
run_for (guint ms)
{
  gint64 until = g_get_monotonic_time () + (gint64) ms * 1000;

  ZLT_TEST_WAIT_FOR (g_get_monotonic_time () >= until, ms + 5000);
}

/* An agent that was itself stopped (SIGSTOP, a debugger, a laptop lid) finds its
 * heartbeat deadline long past when it runs again. The server was fine all along and its
 * frames are waiting in the socket: the agent says it was away, does not blame the
 * server, and keeps its session. */
static void
test_stopped_agent_blames_itself (Fixture *f, gconstpointer data)
{
  g_autoptr (GKeyFile) config = NULL;
  g_autoptr (GSubprocess) agent = NULL;
  ZltRegistry *registry;
  g_autoptr (ZltTunnel) tunnel = NULL;
  g_autoptr (GPtrArray) tunnels = NULL;
  g_autofree char *err = NULL;
  GPid pid;

  /* a patient server: the agent's 2 s timeout is the one that matters here */
  zlt_test_harness_stop_server (&f->h);
  g_key_file_set_integer (f->h.server_keyfile, "server", "heartbeat-timeout", 60);
  zlt_test_harness_start_server (&f->h);
  registry = zlt_server_get_registry (f->h.server);

  config = agent_config (f, f->h.token);
  g_key_file_set_integer (config, "service:echo", "local-port", zlt_test_echo_get_port (f->h.echo));
  agent = zlt_test_spawn_cli ("agent", config, f->h.tmpdir, TRUE, NULL);
  ZLT_TEST_WAIT_FOR (zlt_registry_lookup_service_by_name (registry, "echo", NULL) != NULL, WAIT_MS);
  tunnels = zlt_registry_get_tunnels (registry);
  g_assert_cmpuint (tunnels->len, ==, 1);
  tunnel = g_object_ref (g_ptr_array_index (tunnels, 0));
  g_clear_pointer (&tunnels, g_ptr_array_unref);

  pid = (GPid) g_ascii_strtoll (g_subprocess_get_identifier (agent), NULL, 10);
  g_assert_cmpint (kill (pid, SIGSTOP), ==, 0);
  run_for (4000); /* twice the agent's heartbeat timeout */
  g_assert_cmpint (kill (pid, SIGCONT), ==, 0);
  run_for (3000); /* past the agent's timeout again: a wrongful reconnect would show */

  /* the same session throughout */
  tunnels = zlt_registry_get_tunnels (registry);
  g_assert_cmpuint (tunnels->len, ==, 1);
  g_assert_true (g_ptr_array_index (tunnels, 0) == tunnel);
  zlt_test_process_stop (agent, WAIT_MS);
  err = zlt_test_process_stderr (agent);
  g_test_message ("the agent said: %s", err);
  g_assert_nonnull (strstr (err, "this process did not run for"));
  g_assert_null (strstr (err, "server stopped answering"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  zlt_init ();
#define ADD(path, func)                                                                            \
  g_test_add ("/cli-agent/" path, Fixture, NULL, fixture_setup, func, fixture_teardown)
  ADD ("fatal-exits", test_fatal_exits);
  ADD ("retry-forever", test_retry_forever);
  ADD ("sigterm-says-goodbye", test_sigterm_says_goodbye);
  ADD ("prints-as-it-happens", test_prints_as_it_happens);
  ADD ("stopped-agent-blames-itself", test_stopped_agent_blames_itself);
#undef ADD
  return g_test_run ();
}
