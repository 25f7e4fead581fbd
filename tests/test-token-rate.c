/* test-token-rate.c: per-token bandwidth limits (issue 13 item 4), which the server
 * enforces, measured with iperf3 as the issue asks: a real server and agents on
 * loopback, iperf3 servers behind the agents (processes of this test, killed by PID),
 * iperf3 clients through the public ports, their -J reports read with json-glib.
 *
 * Also the token file's keys, a limit that changes while the tunnel is up, and the
 * existing per-service limit (enforced by the agent) measured the same way. */
#include "config.h"

#include <signal.h>
#include <string.h>
#include <sys/prctl.h>

#include <json-glib/json-glib.h>

#include "zlt-server-private.h"
#include "zlt-test-util.h"

/* public ports of this program's servers, and where its iperf3 servers may listen: both
 * below the ephemeral range, apart from the other programs' ranges */
#define PORT_RANGE "30400-30449"
#define IPERF_PORT_FIRST 30700
#define IPERF_PORT_LAST 30899

#define LIMIT 5000000 /* bytes/s: "5M", 40 Mbit/s */
#define LIMIT_TEXT "5M"

/* ---- iperf3 ---- */

static char *
find_iperf3 (void)
{
  const char *configured = g_getenv ("ZLT_TEST_IPERF3");

  if (configured != NULL && *configured != '\0')
    return g_strdup (configured);
  return g_find_program_in_path ("iperf3");
}

/* FALSE (the test skipped) without iperf3, except in CI, where .ci/deps installs it;
 * and under valgrind (the valgrind set), where rates mean nothing. */
static gboolean
require_iperf3 (void)
{
  g_autofree char *iperf3 = find_iperf3 ();

  if (g_getenv ("ZLT_UNDER_VALGRIND") != NULL)
    {
      g_test_skip ("no measurements under valgrind");
      return FALSE;
    }

  if (iperf3 != NULL)
    return TRUE;
  if (g_strcmp0 (g_getenv ("CI"), "true") == 0)
    g_error ("iperf3 is missing in CI (.ci/deps installs it)");
  g_test_skip ("iperf3 is not installed (.ci/deps installs it)");
  return FALSE;
}

static void
die_with_parent (gpointer user_data)
{
  prctl (PR_SET_PDEATHSIG, SIGKILL);
}

/* Whether nothing has 127.0.0.1:@port, TCP and UDP (iperf3 uses both for -u). */
static gboolean
port_is_free (guint16 port)
{
  const GSocketType types[] = { G_SOCKET_TYPE_STREAM, G_SOCKET_TYPE_DATAGRAM };

  for (gsize i = 0; i < G_N_ELEMENTS (types); i++)
    {
      g_autoptr (GSocket) socket
          = g_socket_new (G_SOCKET_FAMILY_IPV4, types[i], G_SOCKET_PROTOCOL_DEFAULT, NULL);
      g_autoptr (GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
      g_autoptr (GSocketAddress) address = g_inet_socket_address_new (lo, port);

      if (socket == NULL || !g_socket_bind (socket, address, FALSE, NULL))
        return FALSE;
      g_socket_close (socket, NULL);
    }
  return TRUE;
}

typedef struct
{
  GSubprocess *process;
  guint16 port;
} IperfServer;

/* iperf3 -s on 127.0.0.1 at a port below the ephemeral range that was free when bound
 * (iperf3 cannot take port 0); another one if something took it meanwhile. */
static void
iperf_server_start (IperfServer *s)
{
  g_autofree char *iperf3 = find_iperf3 ();
  guint span = IPERF_PORT_LAST - IPERF_PORT_FIRST + 1;
  guint start = g_random_int_range (0, (gint32) span);

  for (guint i = 0; i < span; i++)
    {
      g_autoptr (GSubprocessLauncher) launcher = NULL;
      g_autoptr (GError) error = NULL;
      g_autofree char *port_text = NULL;
      guint16 port = (guint16) (IPERF_PORT_FIRST + (start + i) % span);

      if (!port_is_free (port))
        continue;
      port_text = g_strdup_printf ("%u", port);
      launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_SILENCE
                                            | G_SUBPROCESS_FLAGS_STDERR_SILENCE);
      g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
      s->process = g_subprocess_launcher_spawn (launcher, &error, iperf3, "-s", "-B", "127.0.0.1",
                                                "-p", port_text, NULL);
      g_assert_no_error (error);
      /* listening once the port is taken; gone if another process had it first */
      ZLT_TEST_WAIT_FOR (g_subprocess_get_identifier (s->process) == NULL || !port_is_free (port),
                         10000);
      if (g_subprocess_get_identifier (s->process) != NULL)
        {
          s->port = port;
          return;
        }
      g_clear_object (&s->process);
    }
  g_error ("no free port for iperf3 in %u-%u", IPERF_PORT_FIRST, IPERF_PORT_LAST);
}

static void
iperf_server_stop (IperfServer *s)
{
  if (s->process == NULL)
    return;
  zlt_test_process_stop (s->process, 10000); /* SIGTERM to our own child, by its PID */
  g_clear_object (&s->process);
}

/* One iperf3 client run: what it measured at the receiving end. */
typedef struct
{
  GSubprocess *process;
  char *json;
  gboolean done;
  gint64 started_us;
  gint64 elapsed_us;  /* from the start to the report */
  double bytes_per_s; /* received, after the omitted first second */
  double seconds;
} IperfRun;

static void
iperf_run_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  IperfRun *run = user_data;
  g_autoptr (GError) error = NULL;

  g_subprocess_communicate_utf8_finish (G_SUBPROCESS (source), result, &run->json, NULL, &error);
  g_assert_no_error (error);
  run->elapsed_us = g_get_monotonic_time () - run->started_us;
  run->done = TRUE;
}

/* iperf3 -c to 127.0.0.1:@port for 1 s of warm-up (the buckets' initial burst, slow
 * start; not counted) and @seconds measured; @reverse: the server sends (-R); @udp:
 * datagrams (-u), to the UDP port of the same number; @bandwidth: iperf3's own pacing
 * (-b), NULL for none (for UDP iperf3's default, 1 Mbit/s). Runs while the main context
 * spins; iperf_run_finish() reads the report. */
static void
iperf_run_start (IperfRun *run, guint16 port, guint seconds, gboolean reverse, gboolean udp,
                 const char *bandwidth)
{
  g_autofree char *iperf3 = find_iperf3 ();
  g_autofree char *port_text = g_strdup_printf ("%u", port);
  g_autofree char *time_text = g_strdup_printf ("%u", seconds);
  g_autoptr (GSubprocessLauncher) launcher
      = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE);
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_autoptr (GError) error = NULL;

  for (const char *const *arg
       = (const char *const[]){ iperf3, "-c", "127.0.0.1", "-p", port_text, "-t", time_text, "-O",
                                "1", "-J",
                                /* bounded: a control connection that cannot be made */
                                "--connect-timeout", "5000", NULL };
       *arg != NULL; arg++)
    g_ptr_array_add (argv, (gpointer) *arg);
  if (reverse)
    {
      /* and a data connection that goes silent */
      g_ptr_array_add (argv, (gpointer) "-R");
      g_ptr_array_add (argv, (gpointer) "--rcv-timeout");
      g_ptr_array_add (argv, (gpointer) "10000");
    }
  if (udp)
    {
      /* datagrams of 1400 bytes (a frame of the tunnel's flow adds 2) */
      g_ptr_array_add (argv, (gpointer) "-u");
      g_ptr_array_add (argv, (gpointer) "-l");
      g_ptr_array_add (argv, (gpointer) "1400");
    }
  if (bandwidth != NULL)
    {
      g_ptr_array_add (argv, (gpointer) "-b");
      g_ptr_array_add (argv, (gpointer) bandwidth);
    }
  g_ptr_array_add (argv, NULL);
  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  memset (run, 0, sizeof *run);
  run->started_us = g_get_monotonic_time ();
  run->process = g_subprocess_launcher_spawnv (launcher, (const char *const *) argv->pdata, &error);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8_async (run->process, NULL, NULL, iperf_run_done, run);
}

static gboolean
iperf_run_is_done (IperfRun *run)
{
  return run->done;
}

/* Reads the report of a finished run: end.sum_received, the receiving end's bytes and
 * time without the omitted second. */
static void
iperf_run_finish (IperfRun *run, const char *what)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) error = NULL;
  JsonObject *root, *end, *sum;

  g_assert_true (run->done);
  g_assert_true (zlt_test_process_wait (run->process, 10000));
  json_parser_load_from_data (parser, run->json != NULL ? run->json : "", -1, &error);
  g_assert_no_error (error);
  g_assert_true (JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)));
  root = json_node_get_object (json_parser_get_root (parser));
  if (json_object_has_member (root, "error"))
    g_error ("iperf3 to %s: %s", what, json_object_get_string_member (root, "error"));
  end = json_object_get_object_member (root, "end");
  g_assert_nonnull (end);
  sum = json_object_get_object_member (end, "sum_received");
  g_assert_nonnull (sum);
  run->seconds = json_object_get_double_member (sum, "seconds");
  g_assert_cmpfloat (run->seconds, >, 0.5);
  run->bytes_per_s = json_object_get_double_member (sum, "bytes") / run->seconds;
  g_assert_cmpint (g_subprocess_get_exit_status (run->process), ==, 0);
  g_clear_object (&run->process);
  g_clear_pointer (&run->json, g_free);
}

/* ---- helpers ---- */

static void
replace_in_token_file (ZltTestHarness *h, const char *from, const char *to)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *contents = NULL;
  GString *text;
  gboolean ok = FALSE;

  g_file_get_contents (h->token_file, &contents, NULL, &error);
  g_assert_no_error (error);
  text = g_string_new (contents);
  g_assert_cmpuint (g_string_replace (text, from, to, 1), ==, 1);
  g_file_set_contents_full (h->token_file, text->str, (gssize) text->len,
                            G_FILE_SET_CONTENTS_CONSISTENT, 0600, &error);
  g_assert_no_error (error);
  g_string_free (text, TRUE);
  /* as SIGHUP or the file monitor would */
  g_signal_emit_by_name (zlt_server_get_validator (h->server), "reload", &ok);
  g_assert_true (ok);
}

static double
mbit (double bytes_per_s)
{
  return bytes_per_s * 8 / 1e6;
}

/* ---- the token file's keys ---- */

static void
test_token_keys (void)
{
  ZltTestHarness h;
  g_autofree char *token = NULL;
  g_autoptr (ZltPluginLoader) loader = NULL;
  g_autoptr (ZltValidator) validator = NULL;
  g_autoptr (GKeyFile) kf = g_key_file_new ();
  g_autoptr (GError) error = NULL;
  g_autofree char *bad = NULL;
  ZltTunnel *tunnel;

  zlt_test_harness_init (&h, PORT_RANGE);
  token = zlt_test_harness_add_token (&h, "name=metered register=* rate-limit-in=5M "
                                          "rate-limit-out=512k");
  zlt_test_harness_set_agent_token (&h, token);
  zlt_test_harness_start_server (&h);
  zlt_test_harness_add_service (&h, "web", zlt_test_echo_get_port (h.echo), 0);
  zlt_test_harness_start_agent (&h);
  zlt_test_harness_wait_registered (&h, "web");
  /* the server's tunnel shows the token's limits (D-Bus Tunnel.RateLimitIn/Out) */
  tunnel = zlt_test_harness_server_tunnel_of (&h, "metered");
  g_assert_nonnull (tunnel);
  g_assert_cmpuint (zlt_tunnel_get_rate_limit_in (tunnel), ==, 5000000);
  g_assert_cmpuint (zlt_tunnel_get_rate_limit_out (tunnel), ==, 512000);
  /* the agent's own tunnel knows nothing of them */
  g_assert_cmpuint (zlt_tunnel_get_rate_limit_in (zlt_agent_get_tunnel (h.agent)), ==, 0);

  /* a bad rate names the key and the line, never the value (it could be a token) */
  bad = g_build_filename (h.tmpdir, "bad-tokens", NULL);
  g_file_set_contents_full (bad,
                            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef "
                            "name=x rate-limit-in=zlt_secret\n",
                            -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600, &error);
  g_assert_no_error (error);
  g_key_file_set_string (kf, "validator:token-file", "path", bad);
  loader = zlt_plugin_loader_new (NULL);
  zlt_plugin_loader_load_all (loader, &error);
  g_assert_no_error (error);
  validator
      = zlt_plugin_loader_new_validator (loader, "token-file", kf, "validator:token-file", &error);
  g_assert_null (validator);
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, ":1: rate-limit-in"));
  g_assert_null (strstr (error->message, "zlt_secret"));
  g_clear_error (&error);
  /* twice is refused too */
  g_file_set_contents_full (bad,
                            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef "
                            "rate-limit-out=1M rate-limit-out=2M\n",
                            -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600, &error);
  g_assert_no_error (error);
  validator
      = zlt_plugin_loader_new_validator (loader, "token-file", kf, "validator:token-file", &error);
  g_assert_null (validator);
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG);
  g_assert_nonnull (strstr (error->message, "rate-limit-out"));

  zlt_test_harness_clear (&h);
}

/* ---- a limit that changes while the tunnel is up ---- */

static gint64
timed_echo (guint16 port, gsize n_bytes)
{
  ZltTestTransfer transfer = { .port = port, .n_bytes = n_bytes, .n_connections = 1 };
  gint64 start = g_get_monotonic_time ();
  GThread *thread = zlt_test_transfer_start (&transfer);

  zlt_test_transfer_finish (thread, &transfer, 60000);
  g_assert_null (transfer.error);
  g_assert_true (transfer.ok);
  g_assert_cmpuint (transfer.received, ==, n_bytes);
  g_free (transfer.error);
  return g_get_monotonic_time () - start;
}

static void
test_limit_changes (void)
{
  ZltTestHarness h;
  g_autofree char *token = NULL;
  ZltTunnel *tunnel;
  guint16 port;
  gint64 elapsed;
  guint n_zero_copy, n_limited;

  zlt_test_harness_init (&h, PORT_RANGE);
  token = zlt_test_harness_add_token (&h, "name=flex register=*");
  zlt_test_harness_set_agent_token (&h, token);
  zlt_test_harness_start_server (&h);
  zlt_test_harness_add_service (&h, "echo", zlt_test_echo_get_port (h.echo), 0);
  zlt_test_harness_start_agent (&h);
  port = zlt_test_harness_wait_registered (&h, "echo");
  tunnel = zlt_test_harness_server_tunnel_of (&h, "flex");
  g_assert_nonnull (tunnel);
  g_assert_cmpuint (zlt_tunnel_get_rate_limit_in (tunnel), ==, 0);

  /* the token gets a limit: the live tunnel shows it, new connections keep to it */
  replace_in_token_file (&h, "name=flex register=*",
                         "name=flex register=* rate-limit-in=1M rate-limit-out=1M");
  ZLT_TEST_WAIT_FOR (zlt_tunnel_get_rate_limit_in (tunnel) == 1000000, 10000);
  g_assert_cmpuint (zlt_tunnel_get_rate_limit_out (tunnel), ==, 1000000);
  /* 2 MB each way at 1 MB/s: about 2 s (a burst of 100 kB first), however fast the
   * machine is; a loaded one only makes it slower */
  elapsed = timed_echo (port, 2 * 1000 * 1000);
  g_test_message ("2 MB echoed under a 1 MB/s token limit in %.2f s",
                  (double) elapsed / G_USEC_PER_SEC);
  g_assert_cmpint (elapsed, >=, 1500 * 1000);

  /* the limit goes away: shown at once; new connections are spliced again */
  replace_in_token_file (&h, " rate-limit-in=1M rate-limit-out=1M", "");
  ZLT_TEST_WAIT_FOR (zlt_tunnel_get_rate_limit_in (tunnel) == 0, 10000);
  g_assert_cmpuint (zlt_tunnel_get_rate_limit_out (tunnel), ==, 0);
  zlt_server_count_relays (h.server, &n_zero_copy, &n_limited);
  g_assert_cmpuint (n_limited, ==, 0);

  zlt_test_harness_clear (&h);
}

/* ---- iperf3: a limited token beside an unlimited one ---- */

typedef struct
{
  guint n_samples;
  guint max_limited;
  guint max_zero_copy;
} RelaySamples;

static gboolean
sample_relays (gpointer user_data)
{
  ZltTestHarness *h = user_data;
  RelaySamples *samples = g_object_get_data (G_OBJECT (h->server), "test-samples");
  guint n_zero_copy, n_limited;

  zlt_server_count_relays (h->server, &n_zero_copy, &n_limited);
  /* a limited relay is never spliced */
  g_assert_cmpuint (n_zero_copy + n_limited, <=, zlt_server_get_n_relays (h->server));
  samples->n_samples++;
  samples->max_limited = MAX (samples->max_limited, n_limited);
  samples->max_zero_copy = MAX (samples->max_zero_copy, n_zero_copy);
  return G_SOURCE_CONTINUE;
}

static void
test_iperf3_token (gconstpointer data)
{
  gboolean reverse = GPOINTER_TO_INT (data);
  ZltTestHarness h;
  g_autofree char *slow_token = NULL;
  g_autoptr (ZltAgent) fast_agent = NULL;
  IperfServer servers[3] = { { 0 } };
  IperfRun runs[3];
  guint16 ports[3];
  g_autofree char *fast_service = NULL;
  const char *fast_services[2] = { NULL, NULL };
  RelaySamples samples = { 0 };
  guint sampler;
  double limited_sum;

  if (!require_iperf3 ())
    return;
  for (guint i = 0; i < 3; i++)
    iperf_server_start (&servers[i]);

  zlt_test_harness_init (&h, PORT_RANGE);
  /* the harness's agent has the limited token and two services: they share its limit */
  slow_token = zlt_test_harness_add_token (&h, "name=metered register=* rate-limit-in=" LIMIT_TEXT
                                               " rate-limit-out=" LIMIT_TEXT);
  zlt_test_harness_set_agent_token (&h, slow_token);
  zlt_test_harness_start_server (&h);
  zlt_test_harness_add_service (&h, "slow-a", servers[0].port, 0);
  zlt_test_harness_add_service (&h, "slow-b", servers[1].port, 0);
  zlt_test_harness_start_agent (&h);
  ports[0] = zlt_test_harness_wait_registered (&h, "slow-a");
  ports[1] = zlt_test_harness_wait_registered (&h, "slow-b");
  /* a second agent, with the harness's unlimited token */
  fast_service = g_strdup_printf ("fast:%u", servers[2].port);
  fast_services[0] = fast_service;
  fast_agent = zlt_test_harness_new_agent (&h, h.token, fast_services);
  zlt_agent_start (fast_agent);
  ZLT_TEST_WAIT_FOR (zlt_tunnel_lookup_service (zlt_agent_get_tunnel (fast_agent), "fast") != NULL
                         && zlt_service_get_assigned_port (zlt_tunnel_lookup_service (
                                zlt_agent_get_tunnel (fast_agent), "fast"))
                                != 0,
                     10000);
  ports[2] = zlt_service_get_assigned_port (
      zlt_tunnel_lookup_service (zlt_agent_get_tunnel (fast_agent), "fast"));

  /* all three at once; the unlimited one paced by iperf3 itself at 1 Gbit/s (25 times
   * the limit) so as not to take the whole of a shared machine */
  g_object_set_data (G_OBJECT (h.server), "test-samples", &samples);
  sampler = g_timeout_add (100, sample_relays, &h);
  iperf_run_start (&runs[0], ports[0], 2, reverse, FALSE, NULL);
  iperf_run_start (&runs[1], ports[1], 2, reverse, FALSE, NULL);
  iperf_run_start (&runs[2], ports[2], 2, reverse, FALSE, "1G");
  ZLT_TEST_WAIT_FOR (iperf_run_is_done (&runs[0]) && iperf_run_is_done (&runs[1])
                         && iperf_run_is_done (&runs[2]),
                     30000);
  g_source_remove (sampler);
  iperf_run_finish (&runs[0], "slow-a");
  iperf_run_finish (&runs[1], "slow-b");
  iperf_run_finish (&runs[2], "fast");

  limited_sum = runs[0].bytes_per_s + runs[1].bytes_per_s;
  g_test_message ("runs took %.2f, %.2f and %.2f s", runs[0].elapsed_us / 1e6,
                  runs[1].elapsed_us / 1e6, runs[2].elapsed_us / 1e6);
  g_test_message ("%s: token limited to %.1f Mbit/s: %.2f + %.2f = %.2f Mbit/s (%.1f %% of the "
                  "limit); unlimited token beside it: %.1f Mbit/s (%.1f times the limit); "
                  "relays: at most %u limited, %u zero-copy at once (%u samples)",
                  reverse ? "out (-R)" : "in", mbit (LIMIT), mbit (runs[0].bytes_per_s),
                  mbit (runs[1].bytes_per_s), mbit (limited_sum), 100.0 * limited_sum / LIMIT,
                  mbit (runs[2].bytes_per_s), runs[2].bytes_per_s / LIMIT, samples.max_limited,
                  samples.max_zero_copy, samples.n_samples);
  /* the token's two services together keep within 10 % of its limit (loosely bounded
   * below: a loaded machine may not reach it) */
  g_assert_cmpfloat (limited_sum, <=, LIMIT * 1.10);
  g_assert_cmpfloat (limited_sum, >=, LIMIT * 0.5);
  /* each got a share */
  g_assert_cmpfloat (runs[0].bytes_per_s, >=, LIMIT * 0.1);
  g_assert_cmpfloat (runs[1].bytes_per_s, >=, LIMIT * 0.1);
  /* the unlimited token keeps its speed, and its relays their zero-copy path */
  g_assert_cmpfloat (runs[2].bytes_per_s, >, LIMIT * 5.0);
  g_assert_cmpuint (samples.max_limited, >=, 2);
  g_assert_cmpuint (samples.max_zero_copy, >=, 1);

  zlt_agent_stop (fast_agent);
  zlt_test_harness_clear (&h);
  for (guint i = 0; i < 3; i++)
    iperf_server_stop (&servers[i]);
}

/* ---- iperf3: the per-service limit the agent enforces ---- */

static void
test_iperf3_service (gconstpointer data)
{
  gboolean reverse = GPOINTER_TO_INT (data);
  ZltTestHarness h;
  IperfServer server = { 0 };
  IperfRun run;
  guint16 port;

  if (!require_iperf3 ())
    return;
  iperf_server_start (&server);
  zlt_test_harness_init (&h, PORT_RANGE);
  zlt_test_harness_start_server (&h);
  zlt_test_harness_add_service (&h, "limited", server.port, 0);
  g_key_file_set_string (h.agent_keyfile, "service:limited",
                         reverse ? "rate-limit-out" : "rate-limit-in", LIMIT_TEXT);
  zlt_test_harness_start_agent (&h);
  port = zlt_test_harness_wait_registered (&h, "limited");

  iperf_run_start (&run, port, 2, reverse, FALSE, NULL);
  ZLT_TEST_WAIT_FOR (iperf_run_is_done (&run), 30000);
  iperf_run_finish (&run, "limited");
  g_test_message ("%s: service limited to %.1f Mbit/s: %.2f Mbit/s (%.1f %% of the limit)",
                  reverse ? "out (-R)" : "in", mbit (LIMIT), mbit (run.bytes_per_s),
                  100.0 * run.bytes_per_s / LIMIT);
  g_assert_cmpfloat (run.bytes_per_s, <=, LIMIT * 1.10);
  g_assert_cmpfloat (run.bytes_per_s, >=, LIMIT * 0.5);

  zlt_test_harness_clear (&h);
  iperf_server_stop (&server);
}

/* ---- iperf3: UDP flows of a limited token ---- */

/* A port of the public range free for TCP and UDP, so that iperf3's control connection
 * and its datagrams reach one port number (two services of the same remote port). */
static guint16
free_public_port (void)
{
  for (guint16 port = 30449; port >= 30420; port--)
    if (port_is_free (port))
      return port;
  g_error ("no free public port for TCP and UDP in 30420-30449");
}

static void
test_iperf3_udp (gconstpointer data)
{
  gboolean reverse = GPOINTER_TO_INT (data);
  ZltTestHarness h;
  g_autofree char *token = NULL;
  IperfServer server = { 0 };
  IperfRun run;
  guint16 port;

  if (!require_iperf3 ())
    return;
  iperf_server_start (&server);
  zlt_test_harness_init (&h, PORT_RANGE);
  token = zlt_test_harness_add_token (&h, "name=metered register=* rate-limit-in=" LIMIT_TEXT
                                          " rate-limit-out=" LIMIT_TEXT);
  zlt_test_harness_set_agent_token (&h, token);
  zlt_test_harness_start_server (&h);
  port = free_public_port ();
  /* iperf3's control connection (TCP) and its datagrams (UDP) on one port number */
  zlt_test_harness_add_service (&h, "ctl", server.port, port);
  zlt_test_harness_add_service (&h, "dgram", server.port, port);
  g_key_file_set_string (h.agent_keyfile, "service:dgram", "protocol", "udp");
  zlt_test_harness_start_agent (&h);
  g_assert_cmpuint (zlt_test_harness_wait_registered (&h, "ctl"), ==, port);
  g_assert_cmpuint (zlt_test_harness_wait_registered (&h, "dgram"), ==, port);

  /* 100 Mbit/s offered, two and a half times the limit: the rest is dropped, as UDP */
  iperf_run_start (&run, port, 2, reverse, TRUE, "100M");
  ZLT_TEST_WAIT_FOR (iperf_run_is_done (&run), 30000);
  iperf_run_finish (&run, "dgram");
  g_test_message ("%s: UDP of a token limited to %.1f Mbit/s: %.2f Mbit/s received (%.1f %% of "
                  "the limit) of 100 Mbit/s sent",
                  reverse ? "out (-R)" : "in", mbit (LIMIT), mbit (run.bytes_per_s),
                  100.0 * run.bytes_per_s / LIMIT);
  g_assert_cmpfloat (run.bytes_per_s, <=, LIMIT * 1.10);
  g_assert_cmpfloat (run.bytes_per_s, >=, LIMIT * 0.5);

  zlt_test_harness_clear (&h);
  iperf_server_stop (&server);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  zlt_init ();

  g_test_add_func ("/token-rate/token-keys", test_token_keys);
  g_test_add_func ("/token-rate/limit-changes", test_limit_changes);
  g_test_add_data_func ("/token-rate/iperf3/token/in", GINT_TO_POINTER (FALSE), test_iperf3_token);
  g_test_add_data_func ("/token-rate/iperf3/token/out", GINT_TO_POINTER (TRUE), test_iperf3_token);
  g_test_add_data_func ("/token-rate/iperf3/udp/in", GINT_TO_POINTER (FALSE), test_iperf3_udp);
  g_test_add_data_func ("/token-rate/iperf3/udp/out", GINT_TO_POINTER (TRUE), test_iperf3_udp);
  g_test_add_data_func ("/token-rate/iperf3/service/in", GINT_TO_POINTER (FALSE),
                        test_iperf3_service);
  g_test_add_data_func ("/token-rate/iperf3/service/out", GINT_TO_POINTER (TRUE),
                        test_iperf3_service);
  return g_test_run ();
}
