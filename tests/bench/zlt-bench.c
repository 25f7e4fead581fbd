/* zlt-bench.c: the project's benchmark. Measures a direct loopback connection, the
 * tunnel and the tunnel over TLS side by side in one run: one-stream throughput, time
 * to the first echoed byte of a new connection, HTTP keep-alive requests per second
 * and resident memory per idle connection (see "Performance targets" in DESIGN.md).
 *
 * The server and the agent run on the main thread's main context; every load
 * generator and every local service (sink, echo, HTTP responder) runs in threads of
 * its own with blocking or epoll sockets, so the main loop only runs the tunnel.
 * Everything talks to 127.0.0.1; every loop is bounded in count and in time.
 *
 * With --processes it measures the deployed shape instead: the build tree's
 * `zlayer-tunnel server` and `agent` as processes (zlt-bench-processes.c). The local
 * services and load generators of both shapes are in zlt-bench-load.c. */
#define _GNU_SOURCE
#include "config.h"

#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <json-glib/json-glib.h>

#include "zlt-bench-load.h"
#include "zlt-bench-processes.h"
#include "zlt-test-util.h"

#define BENCH_PORT_RANGE "30800-30899"
#define FDS_PER_TUNNEL_CONN 6 /* client, public, data (2), local, echo */

/* ---- options ---- */

static gboolean opt_quick;
static gboolean opt_json;
static gboolean opt_no_tls;
static gint opt_throughput_mib = 512;
static gint opt_throughput_cap_s = 20;
static gint opt_ttfb_count = 1000;
static gint opt_ttfb_cap_s = 30;
static gint opt_http_requests = 50000;
static gint opt_http_connections = -1; /* 4; 16 with --processes */
static gdouble opt_http_cap_s = 2.0;
static gint opt_idle = -1; /* 2000; 1000 with --processes */
static gint opt_idle_cap_s = 60;
static gint opt_burst = 64;
static gint opt_runs = 3;
static char *opt_only;
static char *opt_modes;
static gboolean opt_processes;
static char *opt_cli;
static gint opt_bulk_requests = 2000;
static gdouble opt_udp_step_s = 1.0;

static GOptionEntry entries[] = {
  { "quick", 'q', 0, G_OPTION_ARG_NONE, &opt_quick, "Small sizes, one run: a smoke run", NULL },
  { "json", 0, 0, G_OPTION_ARG_NONE, &opt_json, "Print a JSON object instead of a table", NULL },
  { "only", 0, 0, G_OPTION_ARG_STRING, &opt_only, "Only these metrics (comma-separated)",
    "throughput|ttfb|http|idle (--processes: also bulk|udp)" },
  { "modes", 0, 0, G_OPTION_ARG_STRING, &opt_modes, "Only these paths (comma-separated)",
    "direct|tunnel|tls (--processes: direct|ws|wss)" },
  { "processes", 0, 0, G_OPTION_ARG_NONE, &opt_processes,
    "Run the build tree's zlayer-tunnel server and agent as processes (ws:// and wss://)", NULL },
  { "cli", 0, 0, G_OPTION_ARG_FILENAME, &opt_cli,
    "With --processes: the zlayer-tunnel binary (default: the build tree's)", "PATH" },
  { "bulk-requests", 0, 0, G_OPTION_ARG_INT, &opt_bulk_requests,
    "With --processes: 1 MiB responses per run (default 2000, capped at 2 s)", "N" },
  { "udp-step", 0, 0, G_OPTION_ARG_DOUBLE, &opt_udp_step_s,
    "With --processes: seconds each offered UDP rate runs (default 1)", "S" },
  { "no-tls", 0, 0, G_OPTION_ARG_NONE, &opt_no_tls, "Skip the TLS tunnel", NULL },
  { "throughput-mib", 0, 0, G_OPTION_ARG_INT, &opt_throughput_mib,
    "MiB written per throughput run (default 512, each run capped at 20 s)", "N" },
  { "ttfb-count", 0, 0, G_OPTION_ARG_INT, &opt_ttfb_count,
    "Sequential connections for time to first byte (default 1000, capped at 30 s)", "N" },
  { "http-requests", 0, 0, G_OPTION_ARG_INT, &opt_http_requests,
    "Requests per HTTP run (default 50000, capped at 2 s)", "N" },
  { "http-connections", 0, 0, G_OPTION_ARG_INT, &opt_http_connections,
    "Keep-alive connections of the multi-connection HTTP row (default 4; --processes 16)", "N" },
  { "idle", 0, 0, G_OPTION_ARG_INT, &opt_idle,
    "Concurrent idle connections for the memory metric (default 2000, --processes 1000; at most "
    "10000)",
    "N" },
  { "burst", 0, 0, G_OPTION_ARG_INT, &opt_burst,
    "Connections opened at once for the burst metric (default 64, 0 skips it)", "N" },
  { "runs", 0, 0, G_OPTION_ARG_INT, &opt_runs, "Runs per metric, the median is reported", "N" },
  { "verbose", 'v', 0, G_OPTION_ARG_NONE, &bench_verbose, "Print each run on stderr", NULL },
  { NULL }
};

/* ---- running client work in a thread while the main loop runs the tunnel ---- */

typedef struct
{
  GThreadFunc func;
  gpointer data;
  gint done;
} Job;

static gpointer
job_thread (gpointer data)
{
  Job *job = data;

  job->func (job->data);
  g_atomic_int_set (&job->done, 1);
  g_main_context_wakeup (NULL);
  return NULL;
}

/* Every job bounds itself (counts, deadlines, socket timeouts), so this returns. */
static void
run_job (const char *name, GThreadFunc func, gpointer data)
{
  Job job = { func, data, 0 };
  GThread *thread = g_thread_new (name, job_thread, &job);

  while (!g_atomic_int_get (&job.done))
    g_main_context_iteration (NULL, TRUE);
  g_thread_join (thread);
}

/* Spins the main context until @cond holds or @timeout_ms passes. */
typedef gboolean (*CondFunc) (gpointer data);

static gboolean
spin_until (CondFunc cond, gpointer data, guint timeout_ms)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) timeout_ms * 1000;
  GSource *tick = g_timeout_source_new (10);

  g_source_set_callback (tick, zlt_test_tick, NULL, NULL);
  g_source_attach (tick, NULL);
  while (!(cond != NULL && cond (data)) && g_get_monotonic_time () < deadline)
    g_main_context_iteration (NULL, TRUE);
  g_source_destroy (tick);
  g_source_unref (tick);
  return cond != NULL && cond (data);
}

/* ---- the paths under test ---- */

typedef enum
{
  MODE_DIRECT,
  MODE_TUNNEL,
  MODE_TLS,
  N_MODES
} Mode;

static const char *const mode_names[N_MODES] = { "direct", "tunnel", "tls" };

typedef struct
{
  Mode mode;
  ZltTestHarness h;
  gboolean up;
  guint16 sink_port, echo_port, http_port;
} Path;

static void
path_setup (Path *p, Mode mode, BenchServices *s)
{
  memset (p, 0, sizeof *p);
  p->mode = mode;
  if (mode == MODE_DIRECT)
    {
      p->sink_port = s->sink_port;
      p->echo_port = s->echo_port;
      p->http_port = s->http_port;
      return;
    }
  zlt_test_harness_init (&p->h, BENCH_PORT_RANGE);
  /* the harness's 1 s heartbeats are for tests; keep them out of the measurements */
  g_key_file_set_integer (p->h.server_keyfile, "server", "heartbeat-interval", 15);
  g_key_file_set_integer (p->h.server_keyfile, "server", "heartbeat-timeout", 60);
  g_key_file_set_integer (p->h.agent_keyfile, "agent", "heartbeat-interval", 15);
  g_key_file_set_integer (p->h.agent_keyfile, "agent", "heartbeat-timeout", 60);
  if (mode == MODE_TLS)
    {
      g_autofree char *cert = NULL, *key = NULL, *pin = NULL;
      g_autoptr (GTlsCertificate) certificate = NULL;
      g_autoptr (GError) error = NULL;

      if (!zlt_test_make_certificate (p->h.tmpdir, &cert, &key))
        g_error ("could not make a certificate with certtool");
      certificate = g_tls_certificate_new_from_file (cert, &error);
      g_assert_no_error (error);
      pin = zlt_tls_certificate_fingerprint (certificate);
      g_key_file_set_string (p->h.server_keyfile, "server", "tls-certificate", cert);
      g_key_file_set_string (p->h.server_keyfile, "server", "tls-key", key);
      g_key_file_set_string (p->h.agent_keyfile, "agent", "tls-pinned-sha256", pin);
    }
  zlt_test_harness_start_server (&p->h);
  zlt_test_harness_add_service (&p->h, "sink", s->sink_port, 0);
  zlt_test_harness_add_service (&p->h, "echo", s->echo_port, 0);
  zlt_test_harness_add_service (&p->h, "http", s->http_port, 0);
  zlt_test_harness_start_agent (&p->h);
  p->sink_port = zlt_test_harness_wait_registered (&p->h, "sink");
  p->echo_port = zlt_test_harness_wait_registered (&p->h, "echo");
  p->http_port = zlt_test_harness_wait_registered (&p->h, "http");
  p->up = TRUE;
}

static gboolean
path_quiet (gpointer data)
{
  Path *p = data;

  return !p->up
         || (zlt_server_get_n_relays (p->h.server) == 0 && zlt_agent_get_n_relays (p->h.agent) == 0
             && zlt_server_get_n_pending (p->h.server) == 0);
}

/* Lets the tunnel finish tearing down what the last run closed. */
static void
path_settle (Path *p)
{
  if (!spin_until (path_quiet, p, 10000))
    bench_note ("%s: relays still open after 10 s (server %u, agent %u)", mode_names[p->mode],
                zlt_server_get_n_relays (p->h.server), zlt_agent_get_n_relays (p->h.agent));
}

static void
path_clear (Path *p)
{
  if (p->up)
    zlt_test_harness_clear (&p->h);
  p->up = FALSE;
}

/* ---- results ---- */

typedef struct
{
  double throughput_gbps;
  double ttfb_p50_ms, ttfb_p99_ms;
  guint ttfb_n;
  double burst_ms; /* opening opt_burst connections at once, until the last echo */
  double http_rps_1, http_rps_n;
  double idle_kib_per_conn;     /* RSS growth per connection, minus direct for tunnels */
  double idle_raw_kib_per_conn; /* the same without subtracting direct */
  gint64 idle_rss_kib;          /* process RSS with the path up and no connections */
  guint idle_n;
  GArray *throughput_runs, *http_runs_1, *http_runs_n;
  GPtrArray *errors;
} Result;

static void
result_init (Result *r)
{
  memset (r, 0, sizeof *r);
  r->throughput_gbps = r->ttfb_p50_ms = r->ttfb_p99_ms = r->burst_ms = NAN;
  r->http_rps_1 = r->http_rps_n = NAN;
  r->idle_kib_per_conn = r->idle_raw_kib_per_conn = NAN;
  r->idle_rss_kib = -1;
  r->throughput_runs = g_array_new (FALSE, FALSE, sizeof (double));
  r->http_runs_1 = g_array_new (FALSE, FALSE, sizeof (double));
  r->http_runs_n = g_array_new (FALSE, FALSE, sizeof (double));
  r->errors = g_ptr_array_new_with_free_func (g_free);
}

static void
result_clear (Result *r)
{
  g_array_unref (r->throughput_runs);
  g_array_unref (r->http_runs_1);
  g_array_unref (r->http_runs_n);
  g_ptr_array_unref (r->errors);
}

static void
result_error (Result *r, Mode mode, const char *metric, char *message)
{
  g_ptr_array_add (r->errors, g_strdup_printf ("%s %s: %s", mode_names[mode], metric, message));
  g_printerr ("zlt-bench: %s %s: %s\n", mode_names[mode], metric, message);
  g_free (message);
}

/* ---- the measurements of one path ---- */

static void
measure_throughput (Path *p, Result *r)
{
  double spent = 0;

  /* runs stop early once they have used the cap between them (at least one run) */
  for (gint run = 0; run < opt_runs && spent < opt_throughput_cap_s; run++)
    {
      BenchThroughput t
          = { p->sink_port, (guint64) opt_throughput_mib * 1024 * 1024, opt_throughput_cap_s };
      double t0 = bench_now_s ();

      run_job ("bench-stream", bench_throughput_job, &t);
      spent += bench_now_s () - t0;
      path_settle (p);
      if (t.error != NULL)
        {
          result_error (r, p->mode, "throughput", t.error);
          return;
        }
      bench_note ("%s throughput run %d: %.2f Gbit/s (%" G_GUINT64_FORMAT " MiB)",
                  mode_names[p->mode], run + 1, t.gbps, t.sent >> 20);
      g_array_append_val (r->throughput_runs, t.gbps);
    }
  r->throughput_gbps = bench_median (r->throughput_runs);
}

static void
measure_ttfb (Path *p, Result *r)
{
  BenchTtfb t = { p->echo_port, (guint) opt_ttfb_count, opt_ttfb_cap_s };

  run_job ("bench-ttfb", bench_ttfb_job, &t);
  path_settle (p);
  if (t.error != NULL)
    result_error (r, p->mode, "ttfb", t.error);
  else
    {
      r->ttfb_n = t.ms->len;
      r->ttfb_p50_ms = bench_percentile ((double *) t.ms->data, t.ms->len, 50);
      r->ttfb_p99_ms = bench_percentile ((double *) t.ms->data, t.ms->len, 99);
      bench_note ("%s ttfb: n=%u p50=%.3f ms p99=%.3f ms max=%.3f ms", mode_names[p->mode],
                  r->ttfb_n, r->ttfb_p50_ms, r->ttfb_p99_ms,
                  g_array_index (t.ms, double, t.ms->len - 1));
    }
  g_array_unref (t.ms);

  if (opt_burst > 0)
    {
      BenchBurst b = { p->echo_port, (guint) opt_burst };

      run_job ("bench-burst", bench_burst_job, &b);
      path_settle (p);
      if (b.error != NULL)
        result_error (r, p->mode, "burst", b.error);
      else
        {
          r->burst_ms = b.ms;
          bench_note ("%s burst: %u connections echoed in %.1f ms", mode_names[p->mode], b.count,
                      b.ms);
        }
    }
}

static void
measure_http (Path *p, Result *r)
{
  guint conns[2] = { 1, (guint) MAX (opt_http_connections, 1) };

  for (guint c = 0; c < G_N_ELEMENTS (conns); c++)
    {
      GArray *runs = c == 0 ? r->http_runs_1 : r->http_runs_n;

      for (gint run = 0; run < opt_runs; run++)
        {
          BenchHttp h = { p->http_port, conns[c], (guint) opt_http_requests, opt_http_cap_s };

          run_job ("bench-http", bench_http_job, &h);
          path_settle (p);
          if (h.error != NULL)
            {
              result_error (r, p->mode, "http", h.error);
              return;
            }
          bench_note ("%s http run %d, %u connection(s): %.0f req/s (%u requests)",
                      mode_names[p->mode], run + 1, conns[c], h.rps, h.completed);
          g_array_append_val (runs, h.rps);
        }
      if (c == 0)
        r->http_rps_1 = bench_median (runs);
      else
        r->http_rps_n = bench_median (runs);
    }
}

static gint64
trimmed_rss_kib (void)
{
  /* give freed heap pages back first, so growth counts live memory, not garbage */
  for (int i = 0; i < 10 && g_main_context_iteration (NULL, FALSE); i++)
    ;
  malloc_trim (0);
  return bench_read_rss_kib ();
}

typedef struct
{
  Path *path;
  guint n;
} RelayCount;

static gboolean
relays_up (gpointer data)
{
  RelayCount *c = data;

  /* every connection already carried its byte; this only waits for bookkeeping */
  return !c->path->up || zlt_server_get_n_relays (c->path->h.server) >= c->n;
}

static void
measure_idle (Path *p, Result *r, guint n)
{
  BenchIdle t = { p->echo_port, n, opt_idle_cap_s };
  RelayCount count = { p, 0 };
  gint64 before, after;

  t.fds = g_array_sized_new (FALSE, FALSE, sizeof (int), n);
  r->idle_rss_kib = trimmed_rss_kib ();
  before = r->idle_rss_kib;
  run_job ("bench-idle", bench_idle_open_job, &t);
  if (t.error != NULL)
    result_error (r, p->mode, "idle", t.error);
  else if (t.fds->len > 0)
    {
      n = t.fds->len;
      count.n = n;
      if (!spin_until (relays_up, &count, 10000))
        bench_note ("%s idle: %u connections but %u server and %u agent relays",
                    mode_names[p->mode], n, zlt_server_get_n_relays (p->h.server),
                    zlt_agent_get_n_relays (p->h.agent));
      /* a moment for the last callbacks, then measure */
      spin_until (NULL, NULL, 200);
      after = trimmed_rss_kib ();
      /* connections the tunnel already dropped would be measured as held */
      run_job ("bench-idle-check", bench_idle_check_job, &t);
      if (t.lost > 0)
        {
          result_error (r, p->mode, "idle",
                        g_strdup_printf ("%u of %u held connections no longer echo", t.lost, n));
          goto out;
        }
      r->idle_n = n;
      r->idle_raw_kib_per_conn = (double) (after - before) / n;
      bench_note ("%s idle: %u connections, RSS %" G_GINT64_FORMAT " -> %" G_GINT64_FORMAT " KiB",
                  mode_names[p->mode], n, before, after);
    }
out:
  for (guint i = 0; i < t.fds->len; i++)
    close (g_array_index (t.fds, int, i));
  g_array_unref (t.fds);
  path_settle (p);
}

/* ---- limits ---- */

/* Raises the soft fd limit to the hard one (and the hard one too when allowed), and
 * returns how many idle tunnelled connections fit. */
static guint
raise_nofile (guint wanted_conns, char **limit_note)
{
  struct rlimit rl;
  rlim_t need = (rlim_t) wanted_conns * FDS_PER_TUNNEL_CONN + 1024;

  if (getrlimit (RLIMIT_NOFILE, &rl) < 0)
    return wanted_conns;
  if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need)
    {
      struct rlimit more = { need, need };
      if (setrlimit (RLIMIT_NOFILE, &more) == 0)
        return wanted_conns;
    }
  rl.rlim_cur = rl.rlim_max;
  setrlimit (RLIMIT_NOFILE, &rl);
  getrlimit (RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need)
    {
      guint fit = (guint) ((rl.rlim_cur - MIN (rl.rlim_cur, 1024)) / FDS_PER_TUNNEL_CONN);
      *limit_note = g_strdup_printf ("idle connections limited to %u by RLIMIT_NOFILE (%lu)", fit,
                                     (unsigned long) rl.rlim_cur);
      return fit;
    }
  return wanted_conns;
}

/* ---- output ---- */

static void
print_row (const char *metric, const Result *results, const gboolean *ran, gsize offset,
           int decimals, gboolean lower_is_better, gboolean with_ratio)
{
  double direct = *(const double *) ((const char *) &results[MODE_DIRECT] + offset);
  g_autoptr (GString) line = g_string_new (NULL);

  g_string_append_printf (line, "%-40s", metric);
  for (Mode m = MODE_DIRECT; m < N_MODES; m++)
    {
      double v = *(const double *) ((const char *) &results[m] + offset);
      g_autofree char *cell = bench_fmt (ran[m] ? v : NAN, decimals, "");

      g_string_append_printf (line, " %11s", cell);
      if (m != MODE_DIRECT)
        {
          /* a ratio to an almost-zero direct cost says nothing: memory rows have none */
          g_autofree char *ratio = bench_fmt (
              ran[m] && ran[MODE_DIRECT] && direct > 0 && with_ratio ? v / direct : NAN, 2,
              lower_is_better ? "x" : "");
          g_string_append_printf (line, " %7s", ratio);
        }
    }
  g_print ("%s\n", line->str);
}

static void
print_table (const Result *results, const gboolean *ran, const char *load_before,
             const char *load_after, gint64 rss_base, const char *limit_note)
{
  g_autofree char *cpu = bench_read_cpu_model ();
  g_autofree char *idle_row = g_strdup_printf (
      "idle conns: RSS KiB per conn (N=%u)",
      results[MODE_TUNNEL].idle_n ? results[MODE_TUNNEL].idle_n : results[MODE_DIRECT].idle_n);
  g_autofree char *http_row
      = g_strdup_printf ("HTTP keep-alive req/s, %d conns", MAX (opt_http_connections, 1));

  g_print ("zlayer-tunnel benchmark: 127.0.0.1, %u CPUs (%s), load average %s before, %s after\n",
           g_get_num_processors (), cpu, load_before, load_after);
  g_print ("runs per metric %d (median), throughput %d MiB per run (cap %d s), "
           "%d sequential connections for first byte (cap %d s)\n\n",
           opt_runs, opt_throughput_mib, opt_throughput_cap_s, opt_ttfb_count, opt_ttfb_cap_s);
  g_print ("%-40s %11s %11s %7s %11s %7s\n", "metric", "direct", "tunnel", "ratio", "tunnel+TLS",
           "ratio");
  print_row ("throughput, one stream (Gbit/s)", results, ran,
             G_STRUCT_OFFSET (Result, throughput_gbps), 2, FALSE, TRUE);
  print_row ("connect + first echoed byte p50 (ms)", results, ran,
             G_STRUCT_OFFSET (Result, ttfb_p50_ms), 3, TRUE, TRUE);
  print_row ("connect + first echoed byte p99 (ms)", results, ran,
             G_STRUCT_OFFSET (Result, ttfb_p99_ms), 3, TRUE, TRUE);
  if (opt_burst > 0)
    {
      g_autofree char *burst_row
          = g_strdup_printf ("%d connects at once, last echo (ms)", opt_burst);
      print_row (burst_row, results, ran, G_STRUCT_OFFSET (Result, burst_ms), 1, TRUE, TRUE);
    }
  print_row ("HTTP keep-alive req/s, 1 conn", results, ran, G_STRUCT_OFFSET (Result, http_rps_1), 0,
             FALSE, TRUE);
  print_row (http_row, results, ran, G_STRUCT_OFFSET (Result, http_rps_n), 0, FALSE, TRUE);
  print_row (idle_row, results, ran, G_STRUCT_OFFSET (Result, idle_kib_per_conn), 1, TRUE, FALSE);

  g_print ("\nratios: to direct; for ms and KiB rows lower is better (\"x\" = times direct)\n");
  g_print ("idle memory: server, agent, echo service and clients share this process; the tunnel\n"
           "  columns subtract the RSS growth of the same number of direct connections to the\n"
           "  echo service (raw growth per conn: direct %.1f, tunnel %.1f, TLS %.1f KiB;\n"
           "  connections: %u, %u, %u); malloc_trim(0) runs before each reading\n",
           results[MODE_DIRECT].idle_raw_kib_per_conn, results[MODE_TUNNEL].idle_raw_kib_per_conn,
           results[MODE_TLS].idle_raw_kib_per_conn, results[MODE_DIRECT].idle_n,
           results[MODE_TUNNEL].idle_n, results[MODE_TLS].idle_n);
  g_print ("process RSS: bench alone %" G_GINT64_FORMAT " KiB", rss_base);
  if (results[MODE_TUNNEL].idle_rss_kib >= 0)
    g_print ("; with idle server + agent, no connections %" G_GINT64_FORMAT
             " KiB (+%" G_GINT64_FORMAT " KiB)",
             results[MODE_TUNNEL].idle_rss_kib, results[MODE_TUNNEL].idle_rss_kib - rss_base);
  if (results[MODE_TLS].idle_rss_kib >= 0)
    g_print ("; TLS %" G_GINT64_FORMAT " KiB (+%" G_GINT64_FORMAT " KiB)",
             results[MODE_TLS].idle_rss_kib, results[MODE_TLS].idle_rss_kib - rss_base);
  g_print ("\n");
  if (limit_note != NULL)
    g_print ("%s\n", limit_note);
  for (Mode m = MODE_DIRECT; m < N_MODES; m++)
    for (guint i = 0; i < results[m].errors->len; i++)
      g_print ("error: %s\n", (const char *) g_ptr_array_index (results[m].errors, i));
}

static void
json_add_double (JsonBuilder *b, const char *name, double v)
{
  json_builder_set_member_name (b, name);
  if (isnan (v))
    json_builder_add_null_value (b);
  else
    json_builder_add_double_value (b, v);
}

static void
json_add_runs (JsonBuilder *b, const char *name, GArray *runs)
{
  json_builder_set_member_name (b, name);
  json_builder_begin_array (b);
  for (guint i = 0; i < runs->len; i++)
    json_builder_add_double_value (b, g_array_index (runs, double, i));
  json_builder_end_array (b);
}

static void
print_json (const Result *results, const gboolean *ran, const char *load_before,
            const char *load_after, gint64 rss_base, const char *limit_note)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = NULL;
  g_autofree char *text = NULL;
  g_autofree char *cpu = bench_read_cpu_model ();

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "machine");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "cpus");
  json_builder_add_int_value (b, g_get_num_processors ());
  json_builder_set_member_name (b, "cpu_model");
  json_builder_add_string_value (b, cpu);
  json_builder_set_member_name (b, "load_before");
  json_builder_add_string_value (b, load_before);
  json_builder_set_member_name (b, "load_after");
  json_builder_add_string_value (b, load_after);
  json_builder_end_object (b);

  json_builder_set_member_name (b, "parameters");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "runs");
  json_builder_add_int_value (b, opt_runs);
  json_builder_set_member_name (b, "throughput_mib");
  json_builder_add_int_value (b, opt_throughput_mib);
  json_builder_set_member_name (b, "ttfb_count");
  json_builder_add_int_value (b, opt_ttfb_count);
  json_builder_set_member_name (b, "http_requests");
  json_builder_add_int_value (b, opt_http_requests);
  json_builder_set_member_name (b, "http_connections");
  json_builder_add_int_value (b, MAX (opt_http_connections, 1));
  json_builder_set_member_name (b, "burst");
  json_builder_add_int_value (b, opt_burst);
  json_builder_set_member_name (b, "idle");
  json_builder_add_int_value (b, results[MODE_DIRECT].idle_n ? results[MODE_DIRECT].idle_n
                                                             : results[MODE_TUNNEL].idle_n);
  json_builder_end_object (b);

  json_builder_set_member_name (b, "rss_bench_kib");
  json_builder_add_int_value (b, rss_base);
  if (limit_note != NULL)
    {
      json_builder_set_member_name (b, "note");
      json_builder_add_string_value (b, limit_note);
    }

  for (Mode m = MODE_DIRECT; m < N_MODES; m++)
    {
      const Result *r = &results[m];

      if (!ran[m])
        continue;
      json_builder_set_member_name (b, mode_names[m]);
      json_builder_begin_object (b);
      json_add_double (b, "throughput_gbps", r->throughput_gbps);
      json_add_runs (b, "throughput_runs", r->throughput_runs);
      json_add_double (b, "ttfb_p50_ms", r->ttfb_p50_ms);
      json_add_double (b, "ttfb_p99_ms", r->ttfb_p99_ms);
      json_builder_set_member_name (b, "ttfb_count");
      json_builder_add_int_value (b, r->ttfb_n);
      json_add_double (b, "burst_ms", r->burst_ms);
      json_add_double (b, "http_rps_1_conn", r->http_rps_1);
      json_add_runs (b, "http_runs_1_conn", r->http_runs_1);
      json_add_double (b, "http_rps_n_conns", r->http_rps_n);
      json_add_runs (b, "http_runs_n_conns", r->http_runs_n);
      json_add_double (b, "idle_kib_per_conn", r->idle_kib_per_conn);
      json_add_double (b, "idle_raw_kib_per_conn", r->idle_raw_kib_per_conn);
      if (m != MODE_DIRECT)
        {
          json_builder_set_member_name (b, "idle_process_rss_kib");
          json_builder_add_int_value (b, r->idle_rss_kib);
          if (ran[MODE_DIRECT])
            {
              json_add_double (b, "throughput_ratio",
                               r->throughput_gbps / results[MODE_DIRECT].throughput_gbps);
              json_add_double (b, "http_ratio_1_conn",
                               r->http_rps_1 / results[MODE_DIRECT].http_rps_1);
              json_add_double (b, "http_ratio_n_conns",
                               r->http_rps_n / results[MODE_DIRECT].http_rps_n);
            }
        }
      json_builder_set_member_name (b, "errors");
      json_builder_begin_array (b);
      for (guint i = 0; i < r->errors->len; i++)
        json_builder_add_string_value (b, g_ptr_array_index (r->errors, i));
      json_builder_end_array (b);
      json_builder_end_object (b);
    }
  json_builder_end_object (b);

  root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  json_generator_set_pretty (gen, TRUE);
  text = json_generator_to_data (gen, NULL);
  g_print ("%s\n", text);
}

/* ---- main ---- */

static gboolean
wanted (const char *list, const char *name)
{
  g_auto (GStrv) items = NULL;

  if (list == NULL)
    return TRUE;
  items = g_strsplit (list, ",", -1);
  return g_strv_contains ((const char *const *) items, name);
}

static gboolean
check_list (const char *list, const char *const *known, GError **error)
{
  g_auto (GStrv) items = NULL;

  if (list == NULL)
    return TRUE;
  items = g_strsplit (list, ",", -1);
  for (guint i = 0; items[i] != NULL; i++)
    if (!g_strv_contains (known, items[i]))
      {
        g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "unknown item ‘%s’",
                     items[i]);
        return FALSE;
      }
  return TRUE;
}

/* --processes: the options as that mode reads them */
static int
run_processes (void)
{
  BenchProcessOptions o = { 0 };
  g_autoptr (GError) error = NULL;

  o.quick = opt_quick;
  o.json = opt_json;
  o.no_tls = opt_no_tls;
  o.only = opt_only;
  o.modes = opt_modes;
  o.cli = opt_cli;
  o.runs = opt_quick ? 1 : CLAMP (opt_runs, 1, 15);
  o.throughput_mib
      = CLAMP (opt_quick ? MIN (opt_throughput_mib, 64) : opt_throughput_mib, 1, 1024 * 1024);
  o.ttfb_count = CLAMP (opt_quick ? MIN (opt_ttfb_count, 50) : opt_ttfb_count, 1, 100000);
  o.http_requests
      = CLAMP (opt_quick ? MIN (opt_http_requests, 2000) : opt_http_requests, 1, 10000000);
  o.http_connections = CLAMP (opt_http_connections < 0 ? 16 : opt_http_connections, 1, 64);
  o.bulk_requests = CLAMP (opt_quick ? MIN (opt_bulk_requests, 50) : opt_bulk_requests, 1, 1000000);
  o.idle = CLAMP (opt_idle < 0 ? 1000 : opt_idle, 1, 10000);
  if (opt_quick)
    o.idle = MIN (o.idle, 100);
  o.burst = CLAMP (opt_burst, 0, 1000);
  o.udp_step_s = CLAMP (opt_quick ? MIN (opt_udp_step_s, 0.2) : opt_udp_step_s, 0.05, 10.0);
  if (!bench_processes_check_options (&o, &error))
    {
      g_printerr ("zlt-bench: %s\n", error->message);
      return 2;
    }
  return bench_processes_run (&o);
}

int
main (int argc, char **argv)
{
  static const char *const metrics[] = { "throughput", "ttfb", "http", "idle", NULL };
  static const char *const modes[] = { "direct", "tunnel", "tls", NULL };
  g_autoptr (GOptionContext) context = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *load_before = NULL, *load_after = NULL, *limit_note = NULL;
  Result results[N_MODES];
  gboolean ran[N_MODES] = { FALSE };
  BenchServices services;
  gint64 rss_base;
  guint idle_n;

  /* as the programs do: the TLS probe of --processes then negotiates what the agent does,
   * and the children inherit the same TLS priority */
  zlt_init ();
  context = g_option_context_new ("- measure the tunnel against direct loopback connections");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("zlt-bench: %s\n", error->message);
      return 2;
    }
  if (opt_processes)
    return run_processes ();
  if (!check_list (opt_only, metrics, &error) || !check_list (opt_modes, modes, &error))
    {
      g_printerr ("zlt-bench: %s\n", error->message);
      return 2;
    }
  if (opt_http_connections < 0)
    opt_http_connections = 4;
  if (opt_idle < 0)
    opt_idle = 2000;
  if (opt_quick)
    {
      opt_throughput_mib = MIN (opt_throughput_mib, 64);
      opt_ttfb_count = MIN (opt_ttfb_count, 50);
      opt_http_requests = MIN (opt_http_requests, 2000);
      opt_http_cap_s = 0.5;
      opt_idle = MIN (opt_idle, 100);
      opt_runs = 1;
      opt_burst = 0;
      opt_throughput_cap_s = 2;
      opt_ttfb_cap_s = 2;
      opt_idle_cap_s = 4;
    }
  opt_runs = CLAMP (opt_runs, 1, 15);
  opt_throughput_mib = CLAMP (opt_throughput_mib, 1, 1024 * 1024);
  opt_ttfb_count = CLAMP (opt_ttfb_count, 1, 100000);
  opt_http_requests = CLAMP (opt_http_requests, 1, 10000000);
  opt_http_connections = CLAMP (opt_http_connections, 1, 64);
  opt_idle = CLAMP (opt_idle, 1, 10000);
  opt_burst = CLAMP (opt_burst, 0, 1000);
  idle_n = raise_nofile ((guint) opt_idle, &limit_note);

  bench_clock_start ();
  load_before = bench_read_loadavg ();
  bench_services_start (&services, FALSE);
  rss_base = trimmed_rss_kib ();

  for (Mode m = MODE_DIRECT; m < N_MODES; m++)
    {
      Path path;

      result_init (&results[m]);
      if (!wanted (opt_modes, mode_names[m]) || (m == MODE_TLS && opt_no_tls))
        continue;
      ran[m] = TRUE;
      path_setup (&path, m, &services);
      bench_note ("%s: sink %u, echo %u, http %u", mode_names[m], path.sink_port, path.echo_port,
                  path.http_port);
      /* memory first, before the other metrics leave their garbage in the heap */
      if (wanted (opt_only, "idle") && idle_n > 0)
        measure_idle (&path, &results[m], idle_n);
      if (wanted (opt_only, "ttfb"))
        measure_ttfb (&path, &results[m]);
      if (wanted (opt_only, "http"))
        measure_http (&path, &results[m]);
      if (wanted (opt_only, "throughput"))
        measure_throughput (&path, &results[m]);
      path_clear (&path);
    }
  /* tunnels minus what the same direct connections cost */
  for (Mode m = MODE_DIRECT; m < N_MODES; m++)
    results[m].idle_kib_per_conn
        = m == MODE_DIRECT || !ran[MODE_DIRECT]
              ? results[m].idle_raw_kib_per_conn
              : results[m].idle_raw_kib_per_conn - results[MODE_DIRECT].idle_raw_kib_per_conn;
  bench_services_stop (&services);
  load_after = bench_read_loadavg ();

  if (opt_json)
    print_json (results, ran, load_before, load_after, rss_base, limit_note);
  else
    print_table (results, ran, load_before, load_after, rss_base, limit_note);

  for (Mode m = MODE_DIRECT; m < N_MODES; m++)
    if (results[m].errors->len > 0)
      {
        for (Mode k = MODE_DIRECT; k < N_MODES; k++)
          result_clear (&results[k]);
        return 1;
      }
  for (Mode m = MODE_DIRECT; m < N_MODES; m++)
    result_clear (&results[m]);
  return 0;
}
