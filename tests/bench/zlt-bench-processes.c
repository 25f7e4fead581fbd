/* zlt-bench-processes.c: zlt-bench --processes. The tunnel the way it is deployed: the
 * build tree's `zlayer-tunnel server` and `zlayer-tunnel agent` run as processes of
 * their own, one pair over ws:// and one over wss:// (a pinned certificate), both
 * started at the beginning and measured in turns with a direct connection to the same
 * local services, run by run, so that all three columns share the machine's state.
 *
 * The local services (sink, echo, HTTP responder, UDP echo) and the load generators are
 * zlt-bench-load's, in threads of this process. The children's public ports and
 * control port come from what they print; they end by SIGTERM to their PID (SIGKILL
 * only when one has not exited after a bounded wait), and die with us
 * (PR_SET_PDEATHSIG). Everything is on 127.0.0.1; every wait is bounded. */
#define _GNU_SOURCE
#include "config.h"

#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "zlayer-tunnel.h"
#include "zlt-bench-load.h"
#include "zlt-bench-processes.h"
#include "zlt-test-util.h"

/* public ports of the two servers: a block of PORT_BLOCK picked among PORT_BLOCKS
 * from PORT_BLOCK_FIRST on, below the ephemeral range and the tests' ranges (28600 and
 * up), that nothing holds when the bench starts, so that two benches on one machine
 * take different ones; ws:// the first half, wss:// the second */
#define PORT_BLOCK_FIRST 20000
#define PORT_BLOCK 100
#define PORT_BLOCKS 80
#define START_TIMEOUT_S 15.0
#define STOP_TIMEOUT_MS 5000
#define SETTLE_TIMEOUT_S 5.0
#define CHILD_MAX_LINES 2000
#define THROUGHPUT_CAP_S 20.0
#define TTFB_CAP_S 30.0
#define HTTP_CAP_S 2.0
#define IDLE_CAP_S 60.0
#define UDP_MAX_LOSS 0.01
#define UDP_START_MBPS 100.0

typedef enum
{
  PM_DIRECT,
  PM_WS,
  PM_WSS,
  PM_N
} PMode;

static const char *const pm_names[PM_N] = { "direct", "ws", "wss" };
static const char *const pm_labels[PM_N] = { "direct", "ws://", "wss://" };

static const char *const known_metrics[]
    = { "throughput", "ttfb", "http", "bulk", "idle", "udp", NULL };
static const char *const known_modes[] = { "direct", "ws", "wss", "tunnel", "tls", NULL };

static const BenchProcessOptions *opt;

/* ---- children ---- */

typedef struct
{
  char *role; /* "ws server", "wss agent", ... */
  GSubprocess *process;
  GPid pid;
  GThread *readers[2];
  GMutex lock;
  GCond cond;
  GPtrArray *lines; /* what it printed, stdout and stderr, the first CHILD_MAX_LINES */
  guint n_eof;      /* pipes at EOF */
} Child;

typedef struct
{
  Child *child;
  GInputStream *stream; /* owned */
} Reader;

static gpointer
reader_thread (gpointer data)
{
  Reader *r = data;
  Child *c = r->child;
  g_autoptr (GDataInputStream) in = g_data_input_stream_new (r->stream);
  char *line;

  /* runs until the child's end of the pipe closes: it exited */
  while ((line = g_data_input_stream_read_line_utf8 (in, NULL, NULL, NULL)) != NULL)
    {
      bench_note ("%s: %s", c->role, line);
      g_mutex_lock (&c->lock);
      if (c->lines->len < CHILD_MAX_LINES)
        g_ptr_array_add (c->lines, line);
      else
        g_free (line);
      g_cond_broadcast (&c->cond);
      g_mutex_unlock (&c->lock);
    }
  g_mutex_lock (&c->lock);
  c->n_eof++;
  g_cond_broadcast (&c->cond);
  g_mutex_unlock (&c->lock);
  g_object_unref (r->stream);
  g_free (r);
  return NULL;
}

static void
die_with_parent (gpointer user_data)
{
  prctl (PR_SET_PDEATHSIG, SIGKILL);
}

static char *
find_cli (void)
{
  g_autofree char *self = g_file_read_link ("/proc/self/exe", NULL);
  g_autofree char *dir = NULL;

  if (opt->cli != NULL)
    return g_strdup (opt->cli);
  if (g_getenv ("ZLT_BENCH_CLI") != NULL)
    return g_strdup (g_getenv ("ZLT_BENCH_CLI"));
  if (self == NULL)
    return NULL;
  /* the bench is BUILD/tests/bench/zlt-bench, the CLI BUILD/daemon/zlayer-tunnel */
  dir = g_path_get_dirname (self);
  return g_canonicalize_filename ("../../daemon/zlayer-tunnel", dir);
}

static char *
find_plugin_dir (const char *cli)
{
  g_autofree char *dir = g_path_get_dirname (cli);

  if (g_getenv ("ZLT_PLUGIN_DIR") != NULL)
    return g_strdup (g_getenv ("ZLT_PLUGIN_DIR"));
  return g_canonicalize_filename ("../plugins", dir);
}

static Child *
child_spawn (const char *role, const char *const *argv, const char *plugin_dir, GError **error)
{
  g_autoptr (GSubprocessLauncher) launcher
      = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE);
  Child *c;
  GSubprocess *process;

  g_subprocess_launcher_setenv (launcher, "ZLT_PLUGIN_DIR", plugin_dir, TRUE);
  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  process = g_subprocess_launcher_spawnv (launcher, argv, error);
  if (process == NULL)
    return NULL;
  c = g_new0 (Child, 1);
  c->role = g_strdup (role);
  c->process = process;
  c->pid = (GPid) g_ascii_strtoll (g_subprocess_get_identifier (process), NULL, 10);
  g_mutex_init (&c->lock);
  g_cond_init (&c->cond);
  c->lines = g_ptr_array_new_with_free_func (g_free);
  for (guint i = 0; i < 2; i++)
    {
      Reader *r = g_new0 (Reader, 1);
      r->child = c;
      r->stream = g_object_ref (i == 0 ? g_subprocess_get_stdout_pipe (process)
                                       : g_subprocess_get_stderr_pipe (process));
      c->readers[i] = g_thread_new ("bench-child-out", reader_thread, r);
    }
  bench_note ("%s: pid %d", role, (int) c->pid);
  return c;
}

/* The first line from index *@from on that contains @needle (a copy), waiting up to
 * @timeout_s; *@from moves past it. NULL when the child ended or the time ran out. */
static char *
child_wait_line (Child *c, const char *needle, guint *from, double timeout_s)
{
  gint64 until = g_get_monotonic_time () + (gint64) (timeout_s * G_USEC_PER_SEC);
  char *found = NULL;

  g_mutex_lock (&c->lock);
  while (found == NULL)
    {
      for (; *from < c->lines->len && found == NULL; (*from)++)
        if (strstr (g_ptr_array_index (c->lines, *from), needle) != NULL)
          found = g_strdup (g_ptr_array_index (c->lines, *from));
      if (found != NULL || c->n_eof == 2 || !g_cond_wait_until (&c->cond, &c->lock, until))
        break;
    }
  g_mutex_unlock (&c->lock);
  return found;
}

/* Its last lines, for an error message. */
static char *
child_tail (Child *c, guint n)
{
  GString *out = g_string_new (NULL);

  g_mutex_lock (&c->lock);
  for (guint i = c->lines->len > n ? c->lines->len - n : 0; i < c->lines->len; i++)
    g_string_append_printf (out, "\n  %s: %s", c->role,
                            (const char *) g_ptr_array_index (c->lines, i));
  g_mutex_unlock (&c->lock);
  return g_string_free (out, FALSE);
}

/* SIGTERM to the process we started, a bounded wait, SIGKILL only if it is still
 * there; then the pipes reach EOF and the readers end. */
static void
child_stop (Child *c)
{
  if (c == NULL)
    return;
  g_subprocess_send_signal (c->process, SIGTERM);
  if (!zlt_test_process_wait (c->process, STOP_TIMEOUT_MS))
    {
      g_printerr ("zlt-bench: %s (pid %d) did not exit %d ms after SIGTERM: SIGKILL\n", c->role,
                  (int) c->pid, STOP_TIMEOUT_MS);
      g_subprocess_force_exit (c->process);
      zlt_test_process_wait (c->process, STOP_TIMEOUT_MS);
    }
  for (guint i = 0; i < 2; i++)
    g_thread_join (c->readers[i]);
  g_object_unref (c->process);
  g_ptr_array_unref (c->lines);
  g_mutex_clear (&c->lock);
  g_cond_clear (&c->cond);
  g_free (c->role);
  g_free (c);
}

/* ---- what /proc says about a child ---- */

/* Proportional set size (smaps_rollup) in KiB, or VmRSS where that is not readable
 * (then *@is_pss is FALSE); -1 when neither is. */
static gint64
proc_memory_kib (GPid pid, gboolean *is_pss)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/smaps_rollup", (int) pid);
  g_autofree char *contents = NULL;
  const char *line;

  if (g_file_get_contents (path, &contents, NULL, NULL)
      && (line = strstr (contents, "\nPss:")) != NULL)
    {
      *is_pss = TRUE;
      return g_ascii_strtoll (line + strlen ("\nPss:"), NULL, 10);
    }
  g_clear_pointer (&contents, g_free);
  g_free (path);
  path = g_strdup_printf ("/proc/%d/status", (int) pid);
  *is_pss = FALSE;
  if (g_file_get_contents (path, &contents, NULL, NULL)
      && (line = strstr (contents, "\nVmRSS:")) != NULL)
    return g_ascii_strtoll (line + strlen ("\nVmRSS:"), NULL, 10);
  return -1;
}

/* How many sockets the process holds (/proc/PID/fd), -1 when unreadable. */
static gint
proc_sockets (GPid pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/fd", (int) pid);
  g_autoptr (GDir) dir = g_dir_open (path, 0, NULL);
  const char *name;
  gint n = 0;

  if (dir == NULL)
    return -1;
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *fd_path = g_build_filename (path, name, NULL);
      g_autofree char *target = g_file_read_link (fd_path, NULL);

      if (target != NULL && g_str_has_prefix (target, "socket:"))
        n++;
    }
  return n;
}

/* User + system CPU time in seconds (/proc/PID/stat), NAN when unreadable. */
static double
proc_cpu_s (GPid pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/stat", (int) pid);
  g_autofree char *contents = NULL;
  g_auto (GStrv) fields = NULL;
  const char *after_comm;

  if (!g_file_get_contents (path, &contents, NULL, NULL)
      || (after_comm = strrchr (contents, ')')) == NULL)
    return NAN;
  /* fields from the state on: utime and stime are the 12th and 13th */
  fields = g_strsplit (after_comm + 2, " ", 16);
  if (g_strv_length (fields) < 14)
    return NAN;
  return (double) (g_ascii_strtoull (fields[11], NULL, 10)
                   + g_ascii_strtoull (fields[12], NULL, 10))
         / (double) sysconf (_SC_CLK_TCK);
}

/* ---- one path: direct, or a server + agent pair ---- */

typedef struct
{
  PMode mode;
  Child *server, *agent;
  guint16 control_port;
  guint16 sink_port, echo_port, http_port, udp_port;
  gint server_sockets, agent_sockets; /* with no connection through it */
  char *tls_version, *tls_cipher;
  char *error;
} Pair;

typedef struct
{
  char *dir;
  char *token_file;  /* the agent's token (0600) */
  char *hashes_file; /* the server's token file: its SHA-256 (0600) */
  char *cert, *key, *pin;
  char *cli, *plugin_dir;
  guint port_base; /* the public ports' block */
} Setup;

/* Whether @port is free on 127.0.0.1 for @type (bound and let go at once). */
static gboolean
port_free (guint16 port, int type)
{
  struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons (port) };
  int fd = socket (AF_INET, type | SOCK_CLOEXEC, 0);
  gboolean ok;

  if (fd < 0)
    return FALSE;
  sin.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  ok = bind (fd, (struct sockaddr *) &sin, sizeof sin) == 0;
  close (fd);
  return ok;
}

/* The first block, starting from one the PID picks, whose TCP and UDP ports are all
 * free now; 0 when none is. */
static guint
free_port_block (void)
{
  guint first = (guint) getpid () % PORT_BLOCKS;

  for (guint i = 0; i < PORT_BLOCKS; i++)
    {
      guint base = PORT_BLOCK_FIRST + PORT_BLOCK * ((first + i) % PORT_BLOCKS);
      guint port = base;

      while (port < base + PORT_BLOCK && port_free (port, SOCK_STREAM)
             && port_free (port, SOCK_DGRAM))
        port++;
      if (port == base + PORT_BLOCK)
        return base;
    }
  return 0;
}

static gboolean
setup_init (Setup *s, gboolean tls, GError **error)
{
  guint8 raw[32];
  g_autofree char *secret = NULL, *token = NULL, *hash = NULL, *line = NULL, *contents = NULL;

  memset (s, 0, sizeof *s);
  s->cli = find_cli ();
  if (s->cli == NULL || !g_file_test (s->cli, G_FILE_TEST_IS_EXECUTABLE))
    {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT,
                   "no zlayer-tunnel binary at %s (give --cli PATH)", s->cli ? s->cli : "?");
      return FALSE;
    }
  s->plugin_dir = find_plugin_dir (s->cli);
  s->port_base = free_port_block ();
  if (s->port_base == 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE,
                   "no block of %u free ports on 127.0.0.1 between %u and %u", PORT_BLOCK,
                   PORT_BLOCK_FIRST, PORT_BLOCK_FIRST + PORT_BLOCK * PORT_BLOCKS - 1);
      return FALSE;
    }
  bench_note ("public ports %u-%u", s->port_base, s->port_base + PORT_BLOCK - 1);
  s->dir = g_dir_make_tmp ("zlt-bench-XXXXXX", error);
  if (s->dir == NULL)
    return FALSE;
  /* a token as `zlayer-tunnel token new` makes one; it never reaches a command line */
  zlt_random_bytes (raw, sizeof raw);
  secret = zlt_hex_encode (raw, sizeof raw);
  memset (raw, 0, sizeof raw);
  token = g_strdup_printf ("zlt_%s", secret);
  hash = zlt_token_hash_hex (token);
  line = g_strdup_printf ("%s name=bench\n", hash);
  contents = g_strdup_printf ("%s\n", token);
  s->token_file = g_build_filename (s->dir, "agent-token", NULL);
  s->hashes_file = g_build_filename (s->dir, "tokens", NULL);
  if (!g_file_set_contents_full (s->token_file, contents, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600,
                                 error)
      || !g_file_set_contents_full (s->hashes_file, line, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600,
                                    error))
    return FALSE;
  if (tls)
    {
      g_autoptr (GTlsCertificate) certificate = NULL;

      if (!zlt_test_make_certificate (s->dir, &s->cert, &s->key))
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                       "could not make a certificate with certtool");
          return FALSE;
        }
      certificate = g_tls_certificate_new_from_file (s->cert, error);
      if (certificate == NULL)
        return FALSE;
      s->pin = zlt_tls_certificate_fingerprint (certificate);
    }
  return TRUE;
}

static void
setup_clear (Setup *s)
{
  const char *files[] = { s->token_file, s->hashes_file, s->cert, s->key };

  for (guint i = 0; i < G_N_ELEMENTS (files); i++)
    if (files[i] != NULL)
      g_unlink (files[i]);
  if (s->dir != NULL)
    {
      g_autofree char *cfg = g_build_filename (s->dir, "cert.cfg", NULL);
      g_unlink (cfg);
      g_rmdir (s->dir);
    }
  g_free (s->dir);
  g_free (s->token_file);
  g_free (s->hashes_file);
  g_free (s->cert);
  g_free (s->key);
  g_free (s->pin);
  g_free (s->cli);
  g_free (s->plugin_dir);
}

/* The port after the last ':' of @text, up to the next non-digit; 0 if none. */
static guint16
port_after_colon (const char *text, const char *marker)
{
  const char *at = strstr (text, marker);
  const char *colon;
  guint64 port;

  if (at == NULL)
    return 0;
  at += strlen (marker);
  colon = strrchr (at, ':');
  if (colon == NULL)
    return 0;
  port = g_ascii_strtoull (colon + 1, NULL, 10);
  return port > 0 && port <= 65535 ? (guint16) port : 0;
}

static gboolean
accept_any (GTlsConnection *conn, GTlsCertificate *cert, GTlsCertificateFlags errors, gpointer data)
{
  return TRUE;
}

static const char *
tls_version_name (GTlsProtocolVersion version)
{
  switch (version)
    {
    case G_TLS_PROTOCOL_VERSION_SSL_3_0:
      return "SSL 3.0";
    case G_TLS_PROTOCOL_VERSION_TLS_1_0:
      return "TLS 1.0";
    case G_TLS_PROTOCOL_VERSION_TLS_1_1:
      return "TLS 1.1";
    case G_TLS_PROTOCOL_VERSION_TLS_1_2:
      return "TLS 1.2";
    case G_TLS_PROTOCOL_VERSION_TLS_1_3:
      return "TLS 1.3";
    case G_TLS_PROTOCOL_VERSION_DTLS_1_0:
      return "DTLS 1.0";
    case G_TLS_PROTOCOL_VERSION_DTLS_1_2:
      return "DTLS 1.2";
    case G_TLS_PROTOCOL_VERSION_UNKNOWN:
    default:
      return "unknown";
    }
}

/* What a glib-networking client with the agent's defaults negotiates with the server:
 * a handshake of our own (the agent's data connections are made the same way). */
static void
pair_probe_tls (Pair *p)
{
  g_autoptr (GSocketClient) client = g_socket_client_new ();
  g_autoptr (GSocketConnection) conn = NULL;
  g_autoptr (GIOStream) tls = NULL;
  g_autoptr (GError) error = NULL;

  g_socket_client_set_timeout (client, BENCH_SOCKET_TIMEOUT_S);
  conn = g_socket_client_connect_to_host (client, "127.0.0.1", p->control_port, NULL, &error);
  if (conn != NULL)
    tls = g_tls_client_connection_new (G_IO_STREAM (conn), NULL, &error);
  if (tls != NULL)
    {
      g_signal_connect (tls, "accept-certificate", G_CALLBACK (accept_any), NULL);
      if (g_tls_connection_handshake (G_TLS_CONNECTION (tls), NULL, &error))
        {
          p->tls_version = g_strdup (
              tls_version_name (g_tls_connection_get_protocol_version (G_TLS_CONNECTION (tls))));
          p->tls_cipher = g_tls_connection_get_ciphersuite_name (G_TLS_CONNECTION (tls));
        }
      g_io_stream_close (tls, NULL, NULL);
    }
  if (error != NULL)
    bench_note ("TLS probe: %s", error->message);
}

static gboolean
pair_start (Pair *p, PMode mode, const Setup *s, const BenchServices *services)
{
  g_autofree char *listen_line = NULL, *url = NULL, *role = NULL;
  g_autofree char *e_sink = NULL, *e_echo = NULL, *e_http = NULL, *e_udp = NULL;
  guint half = s->port_base + (mode == PM_WSS ? PORT_BLOCK / 2 : 0);
  g_autofree char *port_range = g_strdup_printf ("%u-%u", half, half + PORT_BLOCK / 2 - 1);
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_autoptr (GError) error = NULL;
  const char *names[] = { "sink", "echo", "http", "uecho" };
  guint16 *ports[] = { &p->sink_port, &p->echo_port, &p->http_port, &p->udp_port };
  guint from = 0;

  memset (p, 0, sizeof *p);
  p->mode = mode;
  if (mode == PM_DIRECT)
    {
      p->sink_port = services->sink_port;
      p->echo_port = services->echo_port;
      p->http_port = services->http_port;
      p->udp_port = services->udp_port;
      return TRUE;
    }

  /* the server: control port 0, learnt from its "listening on" line */
  g_ptr_array_add (argv, s->cli);
  g_ptr_array_add (argv, (char *) "server");
  g_ptr_array_add (argv, (char *) "--listen");
  g_ptr_array_add (argv, (char *) "127.0.0.1:0");
  g_ptr_array_add (argv, (char *) "--token-file");
  g_ptr_array_add (argv, s->hashes_file);
  g_ptr_array_add (argv, (char *) "--port-range");
  g_ptr_array_add (argv, port_range);
  g_ptr_array_add (argv, (char *) "--public-bind");
  g_ptr_array_add (argv, (char *) "127.0.0.1");
  if (mode == PM_WSS)
    {
      g_ptr_array_add (argv, (char *) "--tls-cert");
      g_ptr_array_add (argv, s->cert);
      g_ptr_array_add (argv, (char *) "--tls-key");
      g_ptr_array_add (argv, s->key);
    }
  g_ptr_array_add (argv, NULL);
  role = g_strdup_printf ("%s server", pm_names[mode]);
  p->server = child_spawn (role, (const char *const *) argv->pdata, s->plugin_dir, &error);
  if (p->server == NULL)
    {
      p->error = g_strdup_printf ("starting the server: %s", error->message);
      return FALSE;
    }
  listen_line = child_wait_line (p->server, "listening on ", &from, START_TIMEOUT_S);
  if (listen_line == NULL
      || (p->control_port = port_after_colon (listen_line, "listening on ")) == 0)
    {
      g_autofree char *tail = child_tail (p->server, 10);
      p->error = g_strdup_printf ("the server said no \"listening on\" line in %.0f s%s",
                                  START_TIMEOUT_S, tail);
      return FALSE;
    }

  /* the agent, exposing the local services */
  g_ptr_array_set_size (argv, 0);
  url = g_strdup_printf ("%s://127.0.0.1:%u/tunnel/v1", mode == PM_WSS ? "wss" : "ws",
                         p->control_port);
  e_sink = g_strdup_printf ("tcp:sink:%u", services->sink_port);
  e_echo = g_strdup_printf ("tcp:echo:%u", services->echo_port);
  e_http = g_strdup_printf ("tcp:http:%u", services->http_port);
  e_udp = g_strdup_printf ("udp:uecho:%u", services->udp_port);
  g_ptr_array_add (argv, s->cli);
  g_ptr_array_add (argv, (char *) "agent");
  g_ptr_array_add (argv, (char *) "--server");
  g_ptr_array_add (argv, url);
  g_ptr_array_add (argv, (char *) "--token-file");
  g_ptr_array_add (argv, s->token_file);
  g_ptr_array_add (argv, (char *) "--expose");
  g_ptr_array_add (argv, e_sink);
  g_ptr_array_add (argv, (char *) "--expose");
  g_ptr_array_add (argv, e_echo);
  g_ptr_array_add (argv, (char *) "--expose");
  g_ptr_array_add (argv, e_http);
  g_ptr_array_add (argv, (char *) "--expose");
  g_ptr_array_add (argv, e_udp);
  if (mode == PM_WSS)
    {
      g_ptr_array_add (argv, (char *) "--pin-sha256");
      g_ptr_array_add (argv, s->pin);
    }
  g_ptr_array_add (argv, NULL);
  g_free (role);
  role = g_strdup_printf ("%s agent", pm_names[mode]);
  p->agent = child_spawn (role, (const char *const *) argv->pdata, s->plugin_dir, &error);
  if (p->agent == NULL)
    {
      p->error = g_strdup_printf ("starting the agent: %s", error->message);
      return FALSE;
    }
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autofree char *needle = g_strdup_printf ("%s is reachable at ", names[i]);
      g_autofree char *line = NULL;

      from = 0;
      line = child_wait_line (p->agent, needle, &from, START_TIMEOUT_S);
      if (line == NULL || (*ports[i] = port_after_colon (line, needle)) == 0)
        {
          g_autofree char *tail = child_tail (p->agent, 10);
          g_autofree char *tail2 = child_tail (p->server, 10);
          p->error = g_strdup_printf ("the agent did not say where %s is reachable in %.0f s%s%s",
                                      names[i], START_TIMEOUT_S, tail, tail2);
          return FALSE;
        }
    }
  if (mode == PM_WSS)
    pair_probe_tls (p);
  return TRUE;
}

static gboolean
pair_is_tunnel (const Pair *p)
{
  return p->server != NULL && p->agent != NULL;
}

/* Waits until the server and the agent hold no more sockets than with nothing going
 * through them (what they held when that was last noted), give or take the standby
 * data connections a burst made the agent park (the server's default bound per tunnel,
 * PROTOCOL-v2.md §8; an idle minute shrinks the pool back), and the counts hold still. */
#define STANDBY_GROWTH 64

static void
pair_settle (Pair *p)
{
  double until = bench_now_s () + SETTLE_TIMEOUT_S;
  gint s = -1, a = -1;
  gint last_s = -2, last_a = -2;

  if (!pair_is_tunnel (p))
    return;
  while (bench_now_s () < until)
    {
      s = proc_sockets (p->server->pid);
      a = proc_sockets (p->agent->pid);
      if (s <= p->server_sockets && a <= p->agent_sockets)
        return;
      if (s == last_s && a == last_a && s <= p->server_sockets + STANDBY_GROWTH
          && a <= p->agent_sockets + STANDBY_GROWTH)
        return;
      last_s = s;
      last_a = a;
      g_usleep (20000); /* /proc has no event to wait for; bounded above */
    }
  bench_note ("%s: sockets still open after %.0f s: server %d (idle %d), agent %d (idle %d)",
              pm_names[p->mode], SETTLE_TIMEOUT_S, s, p->server_sockets, a, p->agent_sockets);
}

static void
pair_note_idle_sockets (Pair *p)
{
  if (!pair_is_tunnel (p))
    return;
  p->server_sockets = proc_sockets (p->server->pid);
  p->agent_sockets = proc_sockets (p->agent->pid);
  bench_note ("%s: sockets with nothing going through: server %d, agent %d", pm_names[p->mode],
              p->server_sockets, p->agent_sockets);
}

/* Starts the pair, sends a few connections through (the first data connection and
 * whatever is made lazily), then notes what it holds with nothing going through. */
static gboolean
pair_up (Pair *p, PMode mode, const Setup *s, const BenchServices *services)
{
  BenchTtfb warm = { 0, 3, 5 };

  if (!pair_start (p, mode, s, services))
    return FALSE;
  bench_note ("%s: control %u, sink %u, echo %u, http %u, udp %u", pm_names[mode], p->control_port,
              p->sink_port, p->echo_port, p->http_port, p->udp_port);
  warm.port = p->echo_port;
  bench_ttfb_job (&warm);
  g_array_unref (warm.ms);
  if (warm.error != NULL)
    {
      p->error = g_strdup_printf ("warm-up: %s", warm.error);
      g_free (warm.error);
      return FALSE;
    }
  pair_note_idle_sockets (p);
  return TRUE;
}

static void
pair_stop (Pair *p)
{
  /* the agent first: its goodbye lets the server drop its ports at once */
  child_stop (p->agent);
  child_stop (p->server);
  p->agent = p->server = NULL;
  g_clear_pointer (&p->tls_version, g_free);
  g_clear_pointer (&p->tls_cipher, g_free);
  g_clear_pointer (&p->error, g_free);
}

/* ---- results ---- */

typedef struct
{
  GArray *throughput, *server_cpu, *agent_cpu, *bench_cpu; /* Gbit/s; CPU % of one core */
  GArray *ttfb_p50, *ttfb_p99, *burst;                     /* ms */
  GArray *http_1, *http_n, *bulk;                          /* requests/s */
  GArray *idle, *idle_server, *idle_agent;                 /* KiB per connection */
  GArray *udp;                                             /* Mbit/s */
  guint ttfb_n, idle_n;
  gint64 server_kib, agent_kib; /* with nothing going through */
  gboolean memory_is_pss;
  gboolean udp_sender_limited;
  GPtrArray *udp_steps;
  GPtrArray *errors;
} PResult;

static void
presult_init (PResult *r)
{
  GArray **arrays[]
      = { &r->throughput, &r->server_cpu,  &r->agent_cpu,  &r->bench_cpu, &r->ttfb_p50,
          &r->ttfb_p99,   &r->burst,       &r->http_1,     &r->http_n,    &r->bulk,
          &r->idle,       &r->idle_server, &r->idle_agent, &r->udp };

  memset (r, 0, sizeof *r);
  for (guint i = 0; i < G_N_ELEMENTS (arrays); i++)
    *arrays[i] = g_array_new (FALSE, FALSE, sizeof (double));
  r->server_kib = r->agent_kib = -1;
  r->udp_steps = g_ptr_array_new_with_free_func (g_free);
  r->errors = g_ptr_array_new_with_free_func (g_free);
}

static void
presult_clear (PResult *r)
{
  GArray *arrays[] = { r->throughput, r->server_cpu,  r->agent_cpu,  r->bench_cpu, r->ttfb_p50,
                       r->ttfb_p99,   r->burst,       r->http_1,     r->http_n,    r->bulk,
                       r->idle,       r->idle_server, r->idle_agent, r->udp };

  for (guint i = 0; i < G_N_ELEMENTS (arrays); i++)
    g_array_unref (arrays[i]);
  g_ptr_array_unref (r->udp_steps);
  g_ptr_array_unref (r->errors);
}

static void
presult_error (PResult *r, PMode mode, const char *metric, char *message)
{
  g_ptr_array_add (r->errors, g_strdup_printf ("%s %s: %s", pm_names[mode], metric, message));
  g_printerr ("zlt-bench: %s %s: %s\n", pm_names[mode], metric, message);
  g_free (message);
}

static void
append (GArray *a, double v)
{
  g_array_append_val (a, v);
}

/* ---- the measurements: one run of one metric on one path ---- */

static void
measure_throughput (Pair *p, PResult *r, gint run)
{
  BenchThroughput t = { p->sink_port, (guint64) opt->throughput_mib * 1024 * 1024,
                        opt->quick ? 2 : THROUGHPUT_CAP_S };
  double cpu_s0 = NAN, cpu_a0 = NAN, cpu_b0 = proc_cpu_s (getpid ()), t0 = bench_now_s (), spent;
  double b;

  if (pair_is_tunnel (p))
    {
      cpu_s0 = proc_cpu_s (p->server->pid);
      cpu_a0 = proc_cpu_s (p->agent->pid);
    }
  bench_throughput_job (&t);
  spent = bench_now_s () - t0;
  if (t.error != NULL)
    {
      presult_error (r, p->mode, "throughput", t.error);
      return;
    }
  append (r->throughput, t.gbps);
  /* the bench: the sender, the sink and whatever else runs meanwhile (the UDP echo
   * thread's 100 ms timeouts, the children's pipe readers) */
  b = (proc_cpu_s (getpid ()) - cpu_b0) / spent * 100;
  append (r->bench_cpu, b);
  if (pair_is_tunnel (p))
    {
      double s = (proc_cpu_s (p->server->pid) - cpu_s0) / spent * 100;
      double a = (proc_cpu_s (p->agent->pid) - cpu_a0) / spent * 100;
      append (r->server_cpu, s);
      append (r->agent_cpu, a);
      bench_note ("%s throughput run %d: %.2f Gbit/s (%" G_GUINT64_FORMAT
                  " MiB), CPU server %.0f %%, agent %.0f %%, bench %.0f %%",
                  pm_names[p->mode], run, t.gbps, t.sent >> 20, s, a, b);
    }
  else
    bench_note ("%s throughput run %d: %.2f Gbit/s (%" G_GUINT64_FORMAT " MiB), CPU bench %.0f %%",
                pm_names[p->mode], run, t.gbps, t.sent >> 20, b);
}

static void
measure_ttfb (Pair *p, PResult *r, gint run)
{
  BenchTtfb t = { p->echo_port, (guint) opt->ttfb_count, opt->quick ? 2 : TTFB_CAP_S };

  bench_ttfb_job (&t);
  if (t.error != NULL)
    presult_error (r, p->mode, "ttfb", t.error);
  else
    {
      double p50 = bench_percentile ((double *) t.ms->data, t.ms->len, 50);
      double p99 = bench_percentile ((double *) t.ms->data, t.ms->len, 99);

      append (r->ttfb_p50, p50);
      append (r->ttfb_p99, p99);
      r->ttfb_n = t.ms->len;
      bench_note ("%s ttfb run %d: n=%u p50=%.3f ms p99=%.3f ms max=%.3f ms", pm_names[p->mode],
                  run, t.ms->len, p50, p99, g_array_index (t.ms, double, t.ms->len - 1));
    }
  g_array_unref (t.ms);
  pair_settle (p);

  if (opt->burst > 0)
    {
      BenchBurst b = { p->echo_port, (guint) opt->burst };

      bench_burst_job (&b);
      if (b.error != NULL)
        presult_error (r, p->mode, "burst", b.error);
      else
        {
          append (r->burst, b.ms);
          bench_note ("%s burst run %d: %u connections echoed in %.1f ms", pm_names[p->mode], run,
                      b.count, b.ms);
        }
      pair_settle (p);
    }
}

static void
measure_http (Pair *p, PResult *r, gint run, gboolean bulk)
{
  guint conns[2] = { 1, (guint) opt->http_connections };

  for (guint c = 0; c < (bulk ? 1 : G_N_ELEMENTS (conns)); c++)
    {
      BenchHttp h
          = { p->http_port, conns[c], (guint) (bulk ? opt->bulk_requests : opt->http_requests),
              opt->quick ? 0.5 : HTTP_CAP_S, bulk };

      bench_http_job (&h);
      pair_settle (p);
      if (h.error != NULL)
        {
          presult_error (r, p->mode, bulk ? "bulk" : "http", h.error);
          return;
        }
      bench_note ("%s %s run %d, %u connection(s): %.0f req/s (%u requests)", pm_names[p->mode],
                  bulk ? "1 MiB bodies" : "http", run, conns[c], h.rps, h.completed);
      append (bulk ? r->bulk : c == 0 ? r->http_1 : r->http_n, h.rps);
    }
}

/* Holds @n idle connections through the pair: the growth of the server's and the
 * agent's memory divided by the connections held. */
static void
measure_idle (Pair *p, PResult *r, gint run, guint n)
{
  BenchIdle t = { p->echo_port, n, opt->quick ? 4 : IDLE_CAP_S };
  gint64 s0, a0, s1, a1;
  gboolean pss = TRUE, pss2 = TRUE;
  double until, opened;

  if (!pair_is_tunnel (p))
    return;
  pair_settle (p);
  s0 = proc_memory_kib (p->server->pid, &pss);
  a0 = proc_memory_kib (p->agent->pid, &pss2);
  if (r->server_kib < 0)
    {
      r->server_kib = s0;
      r->agent_kib = a0;
    }
  t.fds = g_array_sized_new (FALSE, FALSE, sizeof (int), n);
  opened = bench_now_s ();
  bench_idle_open_job (&t);
  if (t.error != NULL)
    presult_error (r, p->mode, "idle", t.error);
  else if (t.fds->len > 0)
    {
      /* every connection carried its byte; wait for the bookkeeping: each holds at
       * least one socket more in each process */
      n = t.fds->len;
      until = bench_now_s () + SETTLE_TIMEOUT_S;
      while (bench_now_s () < until
             && (proc_sockets (p->server->pid) < p->server_sockets + (gint) n
                 || proc_sockets (p->agent->pid) < p->agent_sockets + (gint) n))
        g_usleep (5000);
      s1 = proc_memory_kib (p->server->pid, &pss);
      a1 = proc_memory_kib (p->agent->pid, &pss2);
      /* a reading of connections the tunnel had already dropped would be a lie */
      bench_idle_check_job (&t);
      if (t.lost > 0)
        {
          presult_error (r, p->mode, "idle",
                         g_strdup_printf ("%u of %u held connections no longer echo (held for "
                                          "%.1f s)",
                                          t.lost, n, bench_now_s () - opened));
          goto out;
        }
      r->memory_is_pss = pss && pss2;
      r->idle_n = n;
      append (r->idle, (double) (s1 - s0 + a1 - a0) / n);
      append (r->idle_server, (double) (s1 - s0) / n);
      append (r->idle_agent, (double) (a1 - a0) / n);
      bench_note ("%s idle run %d: %u connections, %s server %" G_GINT64_FORMAT
                  " -> %" G_GINT64_FORMAT " KiB, agent %" G_GINT64_FORMAT " -> %" G_GINT64_FORMAT
                  " KiB",
                  pm_names[p->mode], run, n, r->memory_is_pss ? "PSS" : "RSS", s0, s1, a0, a1);
    }
out:
  for (guint i = 0; i < t.fds->len; i++)
    close (g_array_index (t.fds, int, i));
  g_array_unref (t.fds);
  pair_settle (p);
}

static void
measure_udp (Pair *p, PResult *r, gint run)
{
  BenchUdp u = { p->udp_port, UDP_START_MBPS, opt->udp_step_s, UDP_MAX_LOSS, opt->quick ? 6 : 14 };

  bench_udp_job (&u);
  if (u.error != NULL)
    presult_error (r, p->mode, "udp", u.error);
  else
    {
      append (r->udp, u.best_mbps);
      r->udp_sender_limited |= u.sender_limited;
      g_ptr_array_add (r->udp_steps, g_strdup (u.steps->str));
      bench_note ("%s udp run %d: %.0f Mbit/s with < %.0f %% loss%s", pm_names[p->mode], run,
                  u.best_mbps, UDP_MAX_LOSS * 100,
                  u.sender_limited ? " (the sender could not offer more)" : "");
    }
  if (u.steps != NULL)
    g_string_free (u.steps, TRUE);
}

/* ---- output ---- */

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
mode_wanted (PMode m)
{
  if (m == PM_WSS && opt->no_tls)
    return FALSE;
  return wanted (opt->modes, pm_names[m]) || (m == PM_WS && wanted (opt->modes, "tunnel"))
         || (m == PM_WSS && wanted (opt->modes, "tls"));
}

typedef double (*Getter) (const PResult *r);

static double
get_throughput (const PResult *r)
{
  return bench_median (r->throughput);
}

static double
get_ttfb_p50 (const PResult *r)
{
  return bench_median (r->ttfb_p50);
}

static double
get_ttfb_p99 (const PResult *r)
{
  return bench_median (r->ttfb_p99);
}

static double
get_burst (const PResult *r)
{
  return bench_median (r->burst);
}

static double
get_http_1 (const PResult *r)
{
  return bench_median (r->http_1);
}

static double
get_http_n (const PResult *r)
{
  return bench_median (r->http_n);
}

static double
get_bulk (const PResult *r)
{
  return bench_median (r->bulk);
}

static double
get_bulk_mbs (const PResult *r)
{
  return bench_median (r->bulk) * BENCH_BULK_BODY / 1e6;
}

static double
get_idle (const PResult *r)
{
  return bench_median (r->idle);
}

static double
get_udp (const PResult *r)
{
  return bench_median (r->udp);
}

static void
print_row (const char *label, const PResult *results, const gboolean *ran, Getter get, int decimals,
           gboolean with_ratio)
{
  g_autoptr (GString) line = g_string_new (NULL);
  double direct = ran[PM_DIRECT] ? get (&results[PM_DIRECT]) : NAN;

  g_string_append_printf (line, "%-46s", label);
  for (PMode m = PM_DIRECT; m < PM_N; m++)
    {
      double v = ran[m] ? get (&results[m]) : NAN;
      g_autofree char *cell = bench_fmt (v, decimals, "");

      g_string_append_printf (line, " %10s", cell);
      if (m != PM_DIRECT)
        {
          g_autofree char *ratio = bench_fmt (with_ratio && direct > 0 ? v / direct : NAN, 2, "x");
          g_string_append_printf (line, " %7s", ratio);
        }
    }
  g_print ("%s\n", line->str);
}

/* A row of text cells, no ratios. */
static void
print_text_row (const char *label, char **cells)
{
  g_autofree char *line = g_strdup_printf ("%-46s %10s %10s %7s %10s", label, cells[PM_DIRECT],
                                           cells[PM_WS], "", cells[PM_WSS]);

  g_print ("%s\n", line);
}

static void
print_table (const PResult *r, const gboolean *ran, const Pair *pairs, const Setup *setup,
             const char *load_before, const char *load_after, guint idle_n, const char *limit_note)
{
  g_autofree char *cpu = bench_read_cpu_model ();
  g_autofree char *http_row
      = g_strdup_printf ("HTTP keep-alive req/s, %d conns", opt->http_connections);
  g_autofree char *burst_row
      = g_strdup_printf ("%d connections at once, last echo (ms)", opt->burst);
  guint shown_idle = r[PM_WSS].idle_n  ? r[PM_WSS].idle_n
                     : r[PM_WS].idle_n ? r[PM_WS].idle_n
                                       : idle_n;
  g_autofree char *idle_row = g_strdup_printf ("idle conns held: KiB each (N=%u)", shown_idle);
  char *cells[PM_N];

  g_print ("zlayer-tunnel benchmark, processes: %s server / agent\n", setup->cli);
  g_print ("127.0.0.1, %u CPUs (%s), load average %s before, %s after (the machine may be "
           "shared: expect noise)\n",
           g_get_num_processors (), cpu, load_before, load_after);
  g_print ("runs per metric %d (median); throughput %d MiB per run; %d sequential connections "
           "per first-byte run\n",
           opt->runs, opt->throughput_mib, opt->ttfb_count);
  if (ran[PM_WSS])
    g_print ("wss://: %s, %s, pinned self-signed ECDSA certificate\n",
             pairs[PM_WSS].tls_version ? pairs[PM_WSS].tls_version : "?",
             pairs[PM_WSS].tls_cipher ? pairs[PM_WSS].tls_cipher : "?");
  g_print ("\n%-46s %10s %10s %7s %10s %7s\n", "metric", pm_labels[PM_DIRECT], pm_labels[PM_WS],
           "x", pm_labels[PM_WSS], "x");
  if (wanted (opt->only, "throughput"))
    {
      print_row ("one TCP stream (Gbit/s)", r, ran, get_throughput, 2, TRUE);
      for (PMode m = PM_DIRECT; m < PM_N; m++)
        cells[m]
            = !ran[m] || r[m].bench_cpu->len == 0 ? g_strdup ("-")
              : m == PM_DIRECT
                  ? g_strdup_printf ("-/-/%.0f", bench_median (r[m].bench_cpu))
                  : g_strdup_printf ("%.0f/%.0f/%.0f", bench_median (r[m].server_cpu),
                                     bench_median (r[m].agent_cpu), bench_median (r[m].bench_cpu));
      print_text_row ("  CPU: server/agent/bench (% of a core)", cells);
      for (PMode m = PM_DIRECT; m < PM_N; m++)
        g_free (cells[m]);
    }
  if (wanted (opt->only, "ttfb"))
    {
      print_row ("connect + first echoed byte p50 (ms)", r, ran, get_ttfb_p50, 3, TRUE);
      for (PMode m = PM_DIRECT; m < PM_N; m++)
        cells[m] = m == PM_DIRECT || !ran[m] || !ran[PM_DIRECT]
                       ? g_strdup ("-")
                       : bench_fmt (get_ttfb_p50 (&r[m]) - get_ttfb_p50 (&r[PM_DIRECT]), 3, "");
      print_text_row ("  added by the tunnel at p50 (ms)", cells);
      for (PMode m = PM_DIRECT; m < PM_N; m++)
        g_free (cells[m]);
      print_row ("connect + first echoed byte p99 (ms)", r, ran, get_ttfb_p99, 3, TRUE);
      if (opt->burst > 0)
        print_row (burst_row, r, ran, get_burst, 1, TRUE);
    }
  if (wanted (opt->only, "http"))
    {
      print_row ("HTTP keep-alive req/s, 1 conn", r, ran, get_http_1, 0, TRUE);
      print_row (http_row, r, ran, get_http_n, 0, TRUE);
    }
  if (wanted (opt->only, "bulk"))
    {
      print_row ("1 MiB HTTP bodies, req/s (1 conn)", r, ran, get_bulk, 0, TRUE);
      print_row ("1 MiB HTTP bodies, MB/s", r, ran, get_bulk_mbs, 0, TRUE);
    }
  if (wanted (opt->only, "idle"))
    print_row (idle_row, r, ran, get_idle, 1, FALSE);
  if (wanted (opt->only, "udp"))
    print_row ("UDP 1400 B: highest rate, < 1 % loss (Mbit/s)", r, ran, get_udp, 0, TRUE);

  g_print ("\nx: times direct (for ms rows lower is better, for the others higher)\n");
  if (wanted (opt->only, "throughput"))
    g_print ("CPU: user+system time of the server, the agent and this process (the load, the "
             "services) over the\n  one-stream run (/proc/PID/stat); %u CPUs are 100 %% each\n",
             g_get_num_processors ());
  if (wanted (opt->only, "idle"))
    {
      g_print ("idle: growth of the %s of the server and agent processes (/proc/PID/%s) while "
               "the connections are held, divided by them;\n  the local echo service and the "
               "clients are this process and not counted",
               r[PM_WS].memory_is_pss || r[PM_WSS].memory_is_pss ? "PSS" : "RSS",
               r[PM_WS].memory_is_pss || r[PM_WSS].memory_is_pss ? "smaps_rollup" : "status");
      for (PMode m = PM_WS; m < PM_N; m++)
        if (ran[m] && r[m].idle->len > 0)
          g_print ("\n  %s: server %.1f + agent %.1f KiB per connection; with none, server "
                   "%" G_GINT64_FORMAT " KiB, agent %" G_GINT64_FORMAT " KiB",
                   pm_labels[m], bench_median (r[m].idle_server), bench_median (r[m].idle_agent),
                   r[m].server_kib, r[m].agent_kib);
      g_print ("\n");
    }
  if (wanted (opt->only, "udp"))
    {
      g_print ("UDP: round trip through a UDP echo, offered rate of payload; each step offers "
               "for %.1f s; the bench's own sockets have 4 MiB buffers%s\n",
               opt->udp_step_s,
               r[PM_DIRECT].udp_sender_limited || r[PM_WS].udp_sender_limited
                       || r[PM_WSS].udp_sender_limited
                   ? "; some searches stopped where the sender could not offer more (the rate "
                     "shown is a floor)"
                   : "");
      for (PMode m = PM_DIRECT; m < PM_N; m++)
        for (guint i = 0; ran[m] && i < r[m].udp_steps->len; i++)
          g_print ("  %s run %u (Mbit/s:loss): %s\n", pm_labels[m], i + 1,
                   (const char *) g_ptr_array_index (r[m].udp_steps, i));
    }
  if (limit_note != NULL)
    g_print ("%s\n", limit_note);
  for (PMode m = PM_DIRECT; m < PM_N; m++)
    for (guint i = 0; i < r[m].errors->len; i++)
      g_print ("error: %s\n", (const char *) g_ptr_array_index (r[m].errors, i));
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
json_add_metric (JsonBuilder *b, const char *name, GArray *runs, GArray *direct)
{
  g_autofree char *runs_name = g_strdup_printf ("%s_runs", name);

  json_add_double (b, name, bench_median (runs));
  json_add_runs (b, runs_name, runs);
  if (direct != NULL && direct != runs && direct->len > 0 && runs->len > 0)
    {
      g_autofree char *ratio_name = g_strdup_printf ("%s_ratio", name);
      json_add_double (b, ratio_name, bench_median (runs) / bench_median (direct));
    }
}

static void
print_json (const PResult *r, const gboolean *ran, const Pair *pairs, const Setup *setup,
            const char *load_before, const char *load_after, const char *limit_note)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = NULL;
  g_autofree char *text = NULL;
  g_autofree char *cpu = bench_read_cpu_model ();
  const PResult *d = &r[PM_DIRECT];

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "shape");
  json_builder_add_string_value (b, "processes");
  json_builder_set_member_name (b, "cli");
  json_builder_add_string_value (b, setup->cli);
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
  json_builder_add_int_value (b, opt->runs);
  json_builder_set_member_name (b, "throughput_mib");
  json_builder_add_int_value (b, opt->throughput_mib);
  json_builder_set_member_name (b, "ttfb_count");
  json_builder_add_int_value (b, opt->ttfb_count);
  json_builder_set_member_name (b, "http_requests");
  json_builder_add_int_value (b, opt->http_requests);
  json_builder_set_member_name (b, "http_connections");
  json_builder_add_int_value (b, opt->http_connections);
  json_builder_set_member_name (b, "bulk_requests");
  json_builder_add_int_value (b, opt->bulk_requests);
  json_builder_set_member_name (b, "bulk_body_bytes");
  json_builder_add_int_value (b, BENCH_BULK_BODY);
  json_builder_set_member_name (b, "burst");
  json_builder_add_int_value (b, opt->burst);
  json_builder_set_member_name (b, "idle");
  json_builder_add_int_value (b, opt->idle);
  json_builder_set_member_name (b, "udp_payload");
  json_builder_add_int_value (b, BENCH_UDP_PAYLOAD);
  json_add_double (b, "udp_step_s", opt->udp_step_s);
  json_add_double (b, "udp_max_loss", UDP_MAX_LOSS);
  json_builder_end_object (b);
  if (limit_note != NULL)
    {
      json_builder_set_member_name (b, "note");
      json_builder_add_string_value (b, limit_note);
    }

  for (PMode m = PM_DIRECT; m < PM_N; m++)
    {
      const PResult *x = &r[m];

      if (!ran[m])
        continue;
      json_builder_set_member_name (b, pm_names[m]);
      json_builder_begin_object (b);
      if (m == PM_WSS)
        {
          json_builder_set_member_name (b, "tls_version");
          json_builder_add_string_value (b, pairs[m].tls_version);
          json_builder_set_member_name (b, "tls_cipher");
          json_builder_add_string_value (b, pairs[m].tls_cipher);
        }
      json_add_metric (b, "throughput_gbps", x->throughput, d->throughput);
      if (m != PM_DIRECT)
        {
          json_add_metric (b, "server_cpu_percent", x->server_cpu, NULL);
          json_add_metric (b, "agent_cpu_percent", x->agent_cpu, NULL);
        }
      json_add_metric (b, "bench_cpu_percent", x->bench_cpu, NULL);
      json_add_metric (b, "ttfb_p50_ms", x->ttfb_p50, d->ttfb_p50);
      json_add_metric (b, "ttfb_p99_ms", x->ttfb_p99, d->ttfb_p99);
      if (m != PM_DIRECT && d->ttfb_p50->len > 0)
        json_add_double (b, "ttfb_p50_added_ms",
                         bench_median (x->ttfb_p50) - bench_median (d->ttfb_p50));
      json_builder_set_member_name (b, "ttfb_count");
      json_builder_add_int_value (b, x->ttfb_n);
      json_add_metric (b, "burst_ms", x->burst, d->burst);
      json_add_metric (b, "http_rps_1_conn", x->http_1, d->http_1);
      json_add_metric (b, "http_rps_n_conns", x->http_n, d->http_n);
      json_add_metric (b, "bulk_rps", x->bulk, d->bulk);
      json_add_double (b, "bulk_mb_per_s", bench_median (x->bulk) * BENCH_BULK_BODY / 1e6);
      if (m != PM_DIRECT)
        {
          json_add_metric (b, "idle_kib_per_conn", x->idle, NULL);
          json_add_metric (b, "idle_server_kib_per_conn", x->idle_server, NULL);
          json_add_metric (b, "idle_agent_kib_per_conn", x->idle_agent, NULL);
          json_builder_set_member_name (b, "idle_connections");
          json_builder_add_int_value (b, x->idle_n);
          json_builder_set_member_name (b, "idle_memory");
          json_builder_add_string_value (b, x->memory_is_pss ? "pss" : "rss");
          json_builder_set_member_name (b, "server_kib_no_connections");
          json_builder_add_int_value (b, x->server_kib);
          json_builder_set_member_name (b, "agent_kib_no_connections");
          json_builder_add_int_value (b, x->agent_kib);
        }
      json_add_metric (b, "udp_mbps", x->udp, d->udp);
      json_builder_set_member_name (b, "udp_sender_limited");
      json_builder_add_boolean_value (b, x->udp_sender_limited);
      json_builder_set_member_name (b, "udp_steps");
      json_builder_begin_array (b);
      for (guint i = 0; i < x->udp_steps->len; i++)
        json_builder_add_string_value (b, g_ptr_array_index (x->udp_steps, i));
      json_builder_end_array (b);
      json_builder_set_member_name (b, "errors");
      json_builder_begin_array (b);
      for (guint i = 0; i < x->errors->len; i++)
        json_builder_add_string_value (b, g_ptr_array_index (x->errors, i));
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

/* Every metric asked for has a value on every path it applies to; a missing one is an
 * error (the smoke test relies on this, not only on the absence of failures). */
static void
check_complete (PResult *r, const gboolean *ran)
{
  for (PMode m = PM_DIRECT; m < PM_N; m++)
    {
      struct
      {
        const char *metric;
        GArray *values;
        gboolean applies;
      } rows[] = {
        { "throughput", r[m].throughput, TRUE }, { "ttfb", r[m].ttfb_p50, TRUE },
        { "ttfb", r[m].burst, opt->burst > 0 },  { "http", r[m].http_1, TRUE },
        { "http", r[m].http_n, TRUE },           { "bulk", r[m].bulk, TRUE },
        { "idle", r[m].idle, m != PM_DIRECT },   { "udp", r[m].udp, TRUE },
      };

      if (!ran[m] || r[m].errors->len > 0)
        continue;
      for (guint i = 0; i < G_N_ELEMENTS (rows); i++)
        if (rows[i].applies && wanted (opt->only, rows[i].metric) && rows[i].values->len == 0)
          {
            presult_error (&r[m], m, rows[i].metric, g_strdup ("no value was measured"));
            break;
          }
    }
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

gboolean
bench_processes_check_options (const BenchProcessOptions *options, GError **error)
{
  return check_list (options->only, known_metrics, error)
         && check_list (options->modes, known_modes, error);
}

/* The bench holds two sockets per idle connection (client, echo): raises the soft fd
 * limit and says how many fit. */
static guint
raise_nofile (guint wanted_conns, char **limit_note)
{
  struct rlimit rl;
  guint fit;

  if (getrlimit (RLIMIT_NOFILE, &rl) < 0)
    return wanted_conns;
  rl.rlim_cur = rl.rlim_max;
  setrlimit (RLIMIT_NOFILE, &rl);
  getrlimit (RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= (rlim_t) wanted_conns * 2 + 1024)
    return wanted_conns;
  fit = (guint) ((rl.rlim_cur - MIN (rl.rlim_cur, 1024)) / 2);
  *limit_note = g_strdup_printf ("idle connections limited to %u by RLIMIT_NOFILE (%lu)", fit,
                                 (unsigned long) rl.rlim_cur);
  return fit;
}

int
bench_processes_run (const BenchProcessOptions *options)
{
  g_autofree char *load_before = NULL, *load_after = NULL, *limit_note = NULL;
  g_autoptr (GError) error = NULL;
  BenchServices services;
  Setup setup;
  Pair pairs[PM_N];
  PResult results[PM_N];
  gboolean ran[PM_N] = { FALSE };
  guint idle_n;
  int status = 0;

  opt = options;
  bench_clock_start ();
  memset (pairs, 0, sizeof pairs);
  for (PMode m = PM_DIRECT; m < PM_N; m++)
    presult_init (&results[m]);
  idle_n = raise_nofile ((guint) opt->idle, &limit_note);
  load_before = bench_read_loadavg ();
  bench_services_start (&services, TRUE);
  if (!setup_init (&setup, mode_wanted (PM_WSS), &error))
    {
      g_printerr ("zlt-bench: %s\n", error->message);
      status = 1;
      goto out;
    }

  /* both tunnels up first: the runs below go direct, ws, wss in turn */
  for (PMode m = PM_DIRECT; m < PM_N; m++)
    {
      if (!mode_wanted (m))
        continue;
      if (!pair_up (&pairs[m], m, &setup, &services))
        {
          g_printerr ("zlt-bench: %s: %s\n", pm_names[m], pairs[m].error);
          status = 1;
          goto out;
        }
      ran[m] = TRUE;
    }

  /* memory first, then the rest; UDP last (its flows stay open until they idle out) */
  for (gint run = 1; run <= opt->runs; run++)
    for (PMode m = PM_DIRECT; m < PM_N; m++)
      if (ran[m] && pair_is_tunnel (&pairs[m]) && wanted (opt->only, "idle") && idle_n > 0)
        {
          /* the heap a run grew stays with the process (malloc keeps it): each run
           * after the first gets a new pair */
          if (run > 1)
            {
              pair_stop (&pairs[m]);
              if (!pair_up (&pairs[m], m, &setup, &services))
                {
                  g_printerr ("zlt-bench: %s: %s\n", pm_names[m], pairs[m].error);
                  status = 1;
                  goto out;
                }
            }
          measure_idle (&pairs[m], &results[m], run, idle_n);
        }
  for (gint run = 1; run <= opt->runs; run++)
    for (PMode m = PM_DIRECT; m < PM_N; m++)
      if (ran[m] && wanted (opt->only, "ttfb"))
        measure_ttfb (&pairs[m], &results[m], run);
  for (gint run = 1; run <= opt->runs; run++)
    for (PMode m = PM_DIRECT; m < PM_N; m++)
      if (ran[m] && wanted (opt->only, "http"))
        measure_http (&pairs[m], &results[m], run, FALSE);
  for (gint run = 1; run <= opt->runs; run++)
    for (PMode m = PM_DIRECT; m < PM_N; m++)
      if (ran[m] && wanted (opt->only, "bulk"))
        measure_http (&pairs[m], &results[m], run, TRUE);
  for (gint run = 1; run <= opt->runs; run++)
    for (PMode m = PM_DIRECT; m < PM_N; m++)
      if (ran[m] && wanted (opt->only, "throughput"))
        {
          measure_throughput (&pairs[m], &results[m], run);
          pair_settle (&pairs[m]);
        }
  for (gint run = 1; run <= opt->runs; run++)
    for (PMode m = PM_DIRECT; m < PM_N; m++)
      if (ran[m] && wanted (opt->only, "udp"))
        measure_udp (&pairs[m], &results[m], run);

  check_complete (results, ran);
  load_after = bench_read_loadavg ();
  if (opt->json)
    print_json (results, ran, pairs, &setup, load_before, load_after, limit_note);
  else
    print_table (results, ran, pairs, &setup, load_before, load_after, idle_n, limit_note);
  for (PMode m = PM_DIRECT; m < PM_N; m++)
    if (results[m].errors->len > 0)
      status = 1;

out:
  for (PMode m = PM_N; m-- > PM_DIRECT;)
    pair_stop (&pairs[m]);
  bench_services_stop (&services);
  setup_clear (&setup);
  for (PMode m = PM_DIRECT; m < PM_N; m++)
    presult_clear (&results[m]);
  return status;
}
