/* zlt-cli.c: zlayer-tunnel, the command-line tool.
 *
 * Foreground modes need no daemon: `server`, `agent`, `token new` and `demo`. The
 * daemon commands (`status`, `tunnels`, `services`, `sessions`, `expose`, `unexpose`,
 * `reload`) talk to zlayer-tunneld over D-Bus (org.zlayer.Tunnel1, the system bus unless
 * --session or ZLT_BUS=session) and print tables, or JSON with --json.
 * Options become a GKeyFile in the same shape as the config file, so the command line
 * and the file go through one validation path. Tokens never appear on the command
 * line: only files and environment variables. */
#include "config.h"

#include <errno.h>
#include <glib-unix.h>
#include <glib/gi18n.h>
#include <glib/gstdio.h>
#include <locale.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <json-glib/json-glib.h>

#include "zlayer-tunnel.h"
#include "zlt-daemon-core.h" /* the whole-file check, the plugins */
#include "zlt-dbus-generated.h"
#include "zlt-util.h" /* zlt_parse_duration, zlt_log_domain_is_ours */

/* Exit codes a script can tell apart. */
enum
{
  EXIT_OK = 0,
  EXIT_FAILURE_RUNTIME = 1,
  EXIT_USAGE = 2,
  EXIT_CONFIG = 3,
  EXIT_NO_DAEMON = 4,
};

static gboolean opt_verbose;
static GMainLoop *main_loop;
static int exit_code;

static void
log_handler (const char *domain, GLogLevelFlags level, const char *message, gpointer data)
{
  g_autoptr (GDateTime) now = g_date_time_new_now_local ();
  g_autofree char *stamp = g_date_time_format (now, "%H:%M:%S");
  const char *tag = "";

  /* --verbose: our own debug messages, not every library's */
  if ((level & G_LOG_LEVEL_DEBUG) && !(opt_verbose && zlt_log_domain_is_ours (domain)))
    return;
  if (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL))
    tag = "error: ";
  else if (level & G_LOG_LEVEL_WARNING)
    tag = "warning: ";
  fprintf (stderr, "%s %s%s\n", stamp, tag, message);
}

static gboolean
on_quit_signal (gpointer user_data)
{
  g_message (_ ("stopping"));
  g_main_loop_quit (main_loop);
  return G_SOURCE_CONTINUE;
}

static void
run_main_loop (void)
{
  guint sigint = g_unix_signal_add (SIGINT, on_quit_signal, NULL);
  guint sigterm = g_unix_signal_add (SIGTERM, on_quit_signal, NULL);

  g_main_loop_run (main_loop);
  g_source_remove (sigint);
  g_source_remove (sigterm);
}

static int fail (int code, const char *format, ...) G_GNUC_PRINTF (2, 3);

static int
fail (int code, const char *format, ...)
{
  va_list args;
  g_autofree char *text = NULL;

  va_start (args, format);
  text = g_strdup_vprintf (format, args);
  va_end (args);
  fprintf (stderr, "zlayer-tunnel: %s\n", text);
  return code;
}

static GKeyFile *
load_keyfile (const char *path, GError **error)
{
  g_autoptr (GKeyFile) keyfile = g_key_file_new ();

  if (path != NULL && !g_key_file_load_from_file (keyfile, path, G_KEY_FILE_NONE, error))
    {
      g_prefix_error (error, _ ("cannot read %s: "), path);
      return NULL;
    }
  return g_steal_pointer (&keyfile);
}

/* --check: the config parsed (and, for the server, names plugins that exist); nothing
 * is bound, dialed or read beyond the config itself */
/* A path given on the command line means what it meant in the shell that gave it, not
 * something relative to the config file's directory or to the daemon's. */
static void
set_path (GKeyFile *keyfile, const char *group, const char *key, const char *path)
{
  g_autofree char *absolute = g_canonicalize_filename (path, NULL);

  g_key_file_set_string (keyfile, group, key, absolute);
}

/* Relative paths in a config file start at its directory, as when the daemon reads it. */
static char *
config_dir (const char *config_path)
{
  return config_path != NULL ? g_path_get_dirname (config_path) : NULL;
}

/* --check: the whole config (file and options) checked as zlayer-tunneld reads it, every
 * group, the validator configured, node tunnels built; then that @command has its role
 * (@group) in it. A file whose only role is node tunnels, which the daemon runs, passes
 * with a note. Returns the exit code. */
static int
check_config (GKeyFile *keyfile, const char *config_path, ZltPluginLoader *loader,
              const char *command, const char *group)
{
  g_autoptr (GError) error = NULL;

  if (!zlt_daemon_check_keyfile (keyfile, config_path, loader, &error))
    return fail (EXIT_CONFIG, "%s", error->message);
  if (!g_key_file_has_group (keyfile, group))
    {
      if (!zlt_daemon_keyfile_has_node_groups (keyfile))
        return fail (EXIT_CONFIG, _ ("no [%s] group: “%s” has nothing to run"), group, command);
      g_print (_ ("note: no [%s] group: “%s” has nothing to run; zlayer-tunneld runs the "
                  "[node:NAME] tunnels\n"),
               group, command);
    }
  if (config_path != NULL)
    g_print (_ ("%s: configuration is valid\n"), config_path);
  else
    g_print (_ ("configuration is valid\n"));
  return EXIT_OK;
}

/* ---- server ---- */

static int
cmd_server (int argc, char **argv)
{
  g_autofree char *config_path = NULL;
  g_autofree char *listen = NULL;
  g_autofree char *token_file = NULL;
  g_autofree char *port_range = NULL;
  g_autofree char *public_bind = NULL;
  g_autofree char *tls_cert = NULL;
  g_autofree char *tls_key = NULL;
  g_autofree char *udp_idle_timeout = NULL;
  gboolean allow_legacy = FALSE;
  gboolean insecure_allow_all = FALSE;
  gboolean check = FALSE;
  GOptionEntry entries[] = {
    { "config", 'c', 0, G_OPTION_ARG_FILENAME, &config_path, N_ ("Read the [server] group of FILE"),
      N_ ("FILE") },
    { "check", 0, 0, G_OPTION_ARG_NONE, &check,
      N_ ("Check the configuration and exit without starting"), NULL },
    { "listen", 'l', 0, G_OPTION_ARG_STRING, &listen, N_ ("Control address (default 0.0.0.0:3679)"),
      N_ ("ADDR:PORT") },
    { "token-file", 't', 0, G_OPTION_ARG_FILENAME, &token_file,
      N_ ("File of accepted token hashes (see “token new”)"), N_ ("FILE") },
    { "port-range", 'p', 0, G_OPTION_ARG_STRING, &port_range,
      N_ ("Public ports to hand out (default 30000-31000)"), N_ ("FIRST-LAST") },
    { "public-bind", 0, 0, G_OPTION_ARG_STRING, &public_bind,
      N_ ("Address public ports listen on (default 0.0.0.0)"), N_ ("ADDR") },
    { "tls-cert", 0, 0, G_OPTION_ARG_FILENAME, &tls_cert, N_ ("TLS certificate (PEM)"),
      N_ ("FILE") },
    { "tls-key", 0, 0, G_OPTION_ARG_FILENAME, &tls_key, N_ ("TLS private key (PEM)"), N_ ("FILE") },
    { "udp-idle-timeout", 0, 0, G_OPTION_ARG_STRING, &udp_idle_timeout,
      N_ ("End a UDP flow after this long without a datagram (default 60s)"), N_ ("DURATION") },
    { "allow-legacy-auth", 0, 0, G_OPTION_ARG_NONE, &allow_legacy,
      N_ ("Accept v1 agents that send their raw token"), NULL },
    { "insecure-allow-all", 0, 0, G_OPTION_ARG_NONE, &insecure_allow_all,
      N_ ("Accept ANY token (development only)"), NULL },
    { "verbose", 'v', 0, G_OPTION_ARG_NONE, &opt_verbose, N_ ("Show debug messages"), NULL },
    { NULL }
  };
  g_autoptr (GOptionContext) context = g_option_context_new (_ ("— run a tunnel server"));
  g_autoptr (GError) error = NULL;
  g_autoptr (GKeyFile) keyfile = NULL;
  g_autoptr (ZltServerConfig) config = NULL;
  g_autoptr (ZltPluginLoader) loader = NULL;
  g_autoptr (ZltServer) server = NULL;
  g_autofree char *base_dir = NULL;

  g_option_context_add_main_entries (context, entries, GETTEXT_PACKAGE);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    return fail (EXIT_USAGE, "%s", error->message);
  keyfile = load_keyfile (config_path, &error);
  if (keyfile == NULL)
    return fail (EXIT_CONFIG, "%s", error->message);
  if (listen != NULL)
    g_key_file_set_string (keyfile, "server", "listen", listen);
  if (port_range != NULL)
    g_key_file_set_string (keyfile, "server", "port-range", port_range);
  if (public_bind != NULL)
    g_key_file_set_string (keyfile, "server", "public-bind-address", public_bind);
  if (tls_cert != NULL)
    set_path (keyfile, "server", "tls-certificate", tls_cert);
  if (tls_key != NULL)
    set_path (keyfile, "server", "tls-key", tls_key);
  if (udp_idle_timeout != NULL)
    {
      guint seconds;

      if (!zlt_parse_duration (udp_idle_timeout, &seconds, &error))
        return fail (EXIT_USAGE, "--udp-idle-timeout: %s", error->message);
      g_key_file_set_uint64 (keyfile, "server", "udp-idle-timeout", seconds);
    }
  if (allow_legacy)
    g_key_file_set_boolean (keyfile, "server", "allow-legacy-auth", TRUE);
  if (insecure_allow_all)
    {
      g_key_file_set_string (keyfile, "server", "validator", "allow-all");
      g_key_file_set_boolean (keyfile, "server", "insecure", TRUE);
      g_key_file_set_boolean (keyfile, "validator:allow-all", "insecure", TRUE);
    }
  else if (token_file != NULL)
    {
      g_key_file_set_string (keyfile, "server", "validator", "token-file");
      set_path (keyfile, "validator:token-file", "path", token_file);
    }
  /* options alone make a server; a config file with no [server] runs none */
  if (config_path == NULL && !g_key_file_has_group (keyfile, "server"))
    g_key_file_set_string (keyfile, "server", "validator", "token-file");

  loader = zlt_daemon_load_plugins (&error);
  if (loader == NULL)
    return fail (EXIT_CONFIG, "%s", error->message);
  if (check)
    return check_config (keyfile, config_path, loader, "server", ZLT_SERVER_CONFIG_GROUP);
  base_dir = config_dir (config_path);
  config = zlt_server_config_new_from_keyfile_full (keyfile, base_dir, &error);
  if (config == NULL)
    return fail (EXIT_CONFIG, "%s", error->message);
  zlt_raise_fd_limit ();
  server = zlt_server_new (config, loader, &error);
  if (server == NULL)
    return fail (EXIT_CONFIG, "%s", error->message);
  if (!zlt_server_start (server, &error))
    return fail (EXIT_FAILURE_RUNTIME, "%s", error->message);
  run_main_loop ();
  zlt_server_stop (server);
  return exit_code;
}

/* ---- agent ---- */

/* [tcp:|udp:]NAME:LOCAL[:REMOTE] */
static gboolean
parse_expose (const char *spec, GKeyFile *keyfile, GError **error)
{
  g_auto (GStrv) parts = g_strsplit (spec, ":", -1);
  guint n = g_strv_length (parts);
  guint i = 0;
  const char *protocol = "tcp";
  g_autofree char *group = NULL;
  guint64 local, remote = 0;

  if (n > 0 && (g_str_equal (parts[0], "tcp") || g_str_equal (parts[0], "udp")))
    protocol = parts[i++];
  if (n - i < 2 || n - i > 3
      || !g_ascii_string_to_unsigned (parts[i + 1], 10, 1, 65535, &local, NULL)
      || (n - i == 3 && !g_ascii_string_to_unsigned (parts[i + 2], 10, 0, 65535, &remote, NULL)))
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                   _ ("--expose %s: expected [tcp:|udp:]NAME:LOCAL_PORT[:REMOTE_PORT]"), spec);
      return FALSE;
    }
  group = g_strdup_printf ("service:%s", parts[i]);
  g_key_file_set_string (keyfile, group, "protocol", protocol);
  g_key_file_set_integer (keyfile, group, "local-port", (gint) local);
  g_key_file_set_integer (keyfile, group, "remote-port", (gint) remote);
  return TRUE;
}

/* A foreground agent refused for good (bad or expired token, untrusted certificate,
 * impostor server) says so and exits 1, rather than retrying every minute. */
static void
on_agent_fatal (ZltAgent *agent, GParamSpec *pspec, gpointer user_data)
{
  /* the flag comes first, then the error that says why */
  if (!zlt_agent_get_fatal (agent) || zlt_agent_get_last_error (agent) == NULL)
    return;
  exit_code = fail (EXIT_FAILURE_RUNTIME,
                    _ ("%s (retrying cannot help; --retry-forever "
                       "retries anyway)"),
                    zlt_agent_get_last_error (agent));
  g_main_loop_quit (main_loop);
}

/* Runs what is pending (sends queued frames, closes) for at most @timeout_ms. */
static void
drain_main_context (guint timeout_ms)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) timeout_ms * 1000;

  while (g_get_monotonic_time () < deadline && g_main_context_pending (NULL))
    g_main_context_iteration (NULL, FALSE);
}

static void
on_agent_registered (ZltAgent *agent, ZltService *service, gpointer user_data)
{
  const char *server_host = user_data;

  g_autofree char *where
      = zlt_net_join_host_port (server_host, zlt_service_get_assigned_port (service));

  g_print (_ ("%s is reachable at %s\n"), zlt_service_get_name (service), where);
}

/* The [agent] keys `agent` and `access` share: where the server is, which token, how
 * to trust it. Options given on the command line override the config file. */
static void
set_agent_connection (GKeyFile *keyfile, const char *server_url, const char *token_file,
                      const char *token_env, const char *ca_file, const char *pin,
                      gboolean insecure_tls)
{
  if (server_url != NULL)
    g_key_file_set_string (keyfile, "agent", "server", server_url);
  if (token_file != NULL)
    set_path (keyfile, "agent", "token-file", token_file);
  if (token_env != NULL)
    g_key_file_set_string (keyfile, "agent", "token-env", token_env);
  if (ca_file != NULL)
    set_path (keyfile, "agent", "tls-ca-file", ca_file);
  if (pin != NULL)
    g_key_file_set_string (keyfile, "agent", "tls-pinned-sha256", pin);
  if (insecure_tls)
    g_key_file_set_boolean (keyfile, "agent", "tls-insecure", TRUE);
}

static int
cmd_agent (int argc, char **argv)
{
  g_autofree char *config_path = NULL;
  g_autofree char *server_url = NULL;
  g_autofree char *token_file = NULL;
  g_autofree char *token_env = NULL;
  g_autofree char *ca_file = NULL;
  g_autofree char *pin = NULL;
  g_auto (GStrv) exposes = NULL;
  gboolean insecure_tls = FALSE;
  gboolean legacy = FALSE;
  gboolean retry_forever = FALSE;
  gboolean check = FALSE;
  GOptionEntry entries[]
      = { { "config", 'c', 0, G_OPTION_ARG_FILENAME, &config_path,
            N_ ("Read the [agent] and [service:*] groups of FILE"), N_ ("FILE") },
          { "check", 0, 0, G_OPTION_ARG_NONE, &check,
            N_ ("Check the configuration and exit without starting"), NULL },
          { "server", 's', 0, G_OPTION_ARG_STRING, &server_url, N_ ("Server URL (ws:// or wss://)"),
            N_ ("URL") },
          { "token-file", 't', 0, G_OPTION_ARG_FILENAME, &token_file,
            N_ ("Read the token from FILE (mode 0600)"), N_ ("FILE") },
          { "token-env", 0, 0, G_OPTION_ARG_STRING, &token_env,
            N_ ("Read the token from environment variable VAR"), N_ ("VAR") },
          { "expose", 'e', 0, G_OPTION_ARG_STRING_ARRAY, &exposes,
            N_ ("Expose a local service (repeatable)"), N_ ("[tcp:|udp:]NAME:LOCAL[:REMOTE]") },
          { "ca-file", 0, 0, G_OPTION_ARG_FILENAME, &ca_file,
            N_ ("Trust the CAs in FILE for wss://"), N_ ("FILE") },
          { "pin-sha256", 0, 0, G_OPTION_ARG_STRING, &pin,
            N_ ("Trust only the server certificate with this SHA-256 (of its DER form, as "
                "openssl prints it, colons optional)"),
            N_ ("HEX") },
          { "insecure-skip-verify", 0, 0, G_OPTION_ARG_NONE, &insecure_tls,
            N_ ("Do not verify the server certificate (dangerous)"), NULL },
          { "legacy-auth", 0, 0, G_OPTION_ARG_NONE, &legacy,
            N_ ("Send the raw token to servers without a challenge (v1)"), NULL },
          { "retry-forever", 0, 0, G_OPTION_ARG_NONE, &retry_forever,
            N_ ("Keep retrying after a refusal retrying cannot cure (bad token, untrusted "
                "certificate), as the daemon does"),
            NULL },
          { "verbose", 'v', 0, G_OPTION_ARG_NONE, &opt_verbose, N_ ("Show debug messages"), NULL },
          { NULL } };
  g_autoptr (GOptionContext) context = g_option_context_new (_ ("— expose local services"));
  g_autoptr (GError) error = NULL;
  g_autoptr (GKeyFile) keyfile = NULL;
  g_autoptr (ZltClientConfig) config = NULL;
  g_autoptr (ZltPluginLoader) loader = NULL;
  g_autoptr (ZltAgent) agent = NULL;
  g_autoptr (GUri) uri = NULL;
  g_autofree char *base_dir = NULL;

  g_option_context_add_main_entries (context, entries, GETTEXT_PACKAGE);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    return fail (EXIT_USAGE, "%s", error->message);
  keyfile = load_keyfile (config_path, &error);
  if (keyfile == NULL)
    return fail (EXIT_CONFIG, "%s", error->message);
  set_agent_connection (keyfile, server_url, token_file, token_env, ca_file, pin, insecure_tls);
  if (legacy)
    g_key_file_set_boolean (keyfile, "agent", "legacy-auth", TRUE);
  if (retry_forever)
    g_key_file_set_boolean (keyfile, "agent", "retry-forever", TRUE);
  for (guint i = 0; exposes != NULL && exposes[i] != NULL; i++)
    if (!parse_expose (exposes[i], keyfile, &error))
      return fail (EXIT_USAGE, "%s", error->message);

  loader = zlt_daemon_load_plugins (&error);
  if (loader == NULL)
    return fail (EXIT_CONFIG, "%s", error->message);
  if (check)
    return check_config (keyfile, config_path, loader, "agent", ZLT_CLIENT_CONFIG_GROUP);
  base_dir = config_dir (config_path);
  config = zlt_client_config_new_from_keyfile_full (keyfile, base_dir, &error);
  if (config == NULL)
    return fail (EXIT_CONFIG, "%s", error->message);
  zlt_raise_fd_limit ();
  agent = zlt_agent_new (config, loader, &error);
  if (agent == NULL)
    return fail (EXIT_CONFIG, "%s", error->message);
  uri = g_uri_parse (zlt_client_config_get_server_url (config), G_URI_FLAGS_NONE, NULL);
  g_signal_connect (agent, "registered", G_CALLBACK (on_agent_registered),
                    (gpointer) (uri ? g_uri_get_host (uri) : "server"));
  if (!zlt_client_config_get_retry_forever (config))
    {
      g_signal_connect (agent, "notify::fatal", G_CALLBACK (on_agent_fatal), NULL);
      g_signal_connect (agent, "notify::last-error", G_CALLBACK (on_agent_fatal), NULL);
    }
  zlt_agent_start (agent);
  run_main_loop ();
  /* the goodbye (Disconnect) must reach the server before we exit: then it holds
   * nothing for a resume and a restarted agent gets its ports at once */
  zlt_agent_stop (agent);
  drain_main_context (500);
  return exit_code;
}

/* ---- access ---- */

/* The server said it would serve the session: only now is its port worth announcing. */
static void
on_access_session_ready (ZltAccessManager *manager, ZltSession *session, gpointer user_data)
{
  g_autoptr (GDateTime) until
      = g_date_time_new_from_unix_local (zlt_session_get_expires (session) / G_USEC_PER_SEC);
  g_autofree char *until_text = g_date_time_format (until, "%H:%M:%S");

  g_print (_ ("%s is reachable at %s until %s\n"), zlt_session_get_remote_service (session),
           zlt_session_get_local_address (session), until_text);
}

/* A session that ran its time ends well; one the server refused, or that a revoked or
 * expired token ended, ends with its reason and exit code 1. */
static void
on_access_session_removed (ZltAccessManager *manager, ZltSession *session, gpointer user_data)
{
  if (zlt_session_is_expired (session))
    g_message (_ ("the session to %s expired"), zlt_session_get_remote_service (session));
  else if (zlt_session_get_last_error (session) != NULL)
    exit_code = fail (EXIT_FAILURE_RUNTIME, "%s", zlt_session_get_last_error (session));
  g_main_loop_quit (main_loop);
}

/* the access client could not authenticate (token refused or expired, server
 * unreachable) before it ever had a session: nothing will work, say so and stop */
static void
on_access_agent_error (ZltAgent *agent, GParamSpec *pspec, gpointer user_data)
{
  const char *error = zlt_agent_get_last_error (agent);

  /* a fatal refusal ends the session, which says why (on_access_session_removed) */
  if (error == NULL || zlt_agent_get_n_sessions (agent) > 0 || zlt_agent_get_fatal (agent))
    return;
  fail (EXIT_FAILURE_RUNTIME, "%s", error);
  exit_code = EXIT_FAILURE_RUNTIME;
  g_main_loop_quit (main_loop);
}

static int
cmd_access (int argc, char **argv)
{
  g_autofree char *config_path = NULL;
  g_autofree char *server_url = NULL;
  g_autofree char *token_file = NULL;
  g_autofree char *token_env = NULL;
  g_autofree char *ca_file = NULL;
  g_autofree char *pin = NULL;
  g_autofree char *ttl_text = NULL;
  gint local_port = 0;
  gboolean insecure_tls = FALSE;
  GOptionEntry entries[]
      = { { "config", 'c', 0, G_OPTION_ARG_FILENAME, &config_path,
            N_ ("Read the [agent] group of FILE (server, token, TLS)"), N_ ("FILE") },
          { "server", 's', 0, G_OPTION_ARG_STRING, &server_url, N_ ("Server URL (ws:// or wss://)"),
            N_ ("URL") },
          { "token-file", 't', 0, G_OPTION_ARG_FILENAME, &token_file,
            N_ ("Read the token from FILE (mode 0600)"), N_ ("FILE") },
          { "token-env", 0, 0, G_OPTION_ARG_STRING, &token_env,
            N_ ("Read the token from environment variable VAR"), N_ ("VAR") },
          { "local-port", 'p', 0, G_OPTION_ARG_INT, &local_port,
            N_ ("Listen on this port of 127.0.0.1 and ::1 (default: any free port)"), N_ ("PORT") },
          { "ttl", 0, 0, G_OPTION_ARG_STRING, &ttl_text,
            N_ ("End the session after this long (90s, 30m, 2h, 1d; default 1h)"),
            N_ ("DURATION") },
          { "ca-file", 0, 0, G_OPTION_ARG_FILENAME, &ca_file,
            N_ ("Trust the CAs in FILE for wss://"), N_ ("FILE") },
          { "pin-sha256", 0, 0, G_OPTION_ARG_STRING, &pin,
            N_ ("Trust only the server certificate with this SHA-256 (of its DER form, as "
                "openssl prints it, colons optional)"),
            N_ ("HEX") },
          { "insecure-skip-verify", 0, 0, G_OPTION_ARG_NONE, &insecure_tls,
            N_ ("Do not verify the server certificate (dangerous)"), NULL },
          { "verbose", 'v', 0, G_OPTION_ARG_NONE, &opt_verbose, N_ ("Show debug messages"), NULL },
          { NULL } };
  g_autoptr (GOptionContext) context
      = g_option_context_new (_ ("SERVICE — reach a remote service on a local port for a while"));
  g_autoptr (GError) error = NULL;
  g_autoptr (GKeyFile) keyfile = NULL;
  g_autoptr (ZltClientConfig) config = NULL;
  g_autoptr (ZltPluginLoader) loader = NULL;
  g_autofree char *base_dir = NULL;
  g_autoptr (ZltAccessManager) manager = NULL;
  g_autoptr (ZltSession) session = NULL;
  guint ttl = 3600;

  g_option_context_add_main_entries (context, entries, GETTEXT_PACKAGE);
  g_option_context_set_summary (context,
                                _ ("Each connection to the local port reaches SERVICE through the "
                                   "server, whichever agent registered it (also an internal "
                                   "service). The token must allow SERVICE."));
  if (!g_option_context_parse (context, &argc, &argv, &error))
    return fail (EXIT_USAGE, "%s", error->message);
  if (argc != 2)
    return fail (EXIT_USAGE, _ ("access: expected one SERVICE (see --help)"));
  if (!zlt_service_name_is_valid (argv[1]))
    return fail (EXIT_USAGE, _ ("“%s” is not a valid service name"), argv[1]);
  if (local_port < 0 || local_port > G_MAXUINT16)
    return fail (EXIT_USAGE, _ ("--local-port must be from 0 to 65535"));
  if (ttl_text != NULL && !zlt_parse_duration (ttl_text, &ttl, &error))
    return fail (EXIT_USAGE, "--ttl: %s", error->message);
  if (ttl == 0)
    return fail (EXIT_USAGE, _ ("--ttl must be longer than 0 seconds"));

  keyfile = load_keyfile (config_path, &error);
  if (keyfile == NULL)
    return fail (EXIT_CONFIG, "%s", error->message);
  set_agent_connection (keyfile, server_url, token_file, token_env, ca_file, pin, insecure_tls);
  base_dir = config_dir (config_path);
  config = zlt_client_config_new_from_keyfile_full (keyfile, base_dir, &error);
  if (config == NULL)
    return fail (EXIT_CONFIG, "%s", error->message);
  loader = zlt_daemon_load_plugins (&error);
  if (loader == NULL)
    return fail (EXIT_CONFIG, "%s", error->message);
  manager = zlt_access_manager_new (config, loader, &error);
  if (manager == NULL)
    return fail (EXIT_CONFIG, "%s", error->message);

  g_signal_connect (zlt_access_manager_get_agent (manager), "notify::last-error",
                    G_CALLBACK (on_access_agent_error), NULL);
  session = zlt_access_manager_start_session (manager, argv[1], (guint16) local_port, ttl, &error);
  if (session == NULL)
    return fail (EXIT_FAILURE_RUNTIME, "%s", error->message);
  g_signal_connect (manager, "session-removed", G_CALLBACK (on_access_session_removed), NULL);
  g_signal_connect (manager, "session-ready", G_CALLBACK (on_access_session_ready), NULL);

  run_main_loop ();
  g_signal_handlers_disconnect_by_func (manager, on_access_session_removed, NULL);
  g_signal_handlers_disconnect_by_func (manager, on_access_session_ready, NULL);
  g_signal_handlers_disconnect_by_func (zlt_access_manager_get_agent (manager),
                                        on_access_agent_error, NULL);
  zlt_access_manager_stop_session (manager, session, NULL);
  return exit_code;
}

/* ---- token new ---- */

static int
cmd_token (int argc, char **argv)
{
  g_autofree char *name = NULL;
  g_autofree char *services = NULL;
  g_autofree char *expires = NULL;
  g_autofree char *output = NULL;
  GOptionEntry entries[]
      = { { "name", 'n', 0, G_OPTION_ARG_STRING, &name, N_ ("A name for logs and status"),
            N_ ("NAME") },
          { "services", 0, 0, G_OPTION_ARG_STRING, &services,
            N_ ("Services the token may register (default: all)"), N_ ("A,B,…") },
          { "expires", 0, 0, G_OPTION_ARG_STRING, &expires,
            N_ ("Expiry, e.g. 2027-01-01T00:00:00Z"), N_ ("WHEN") },
          { "output", 'o', 0, G_OPTION_ARG_FILENAME, &output,
            N_ ("Write the token to FILE (mode 0600) instead of printing it"), N_ ("FILE") },
          { NULL } };
  g_autoptr (GOptionContext) context = g_option_context_new (_ ("new — make a token"));
  g_autoptr (GError) error = NULL;
  guint8 raw[32];
  g_autofree char *secret = NULL;
  g_autofree char *token = NULL;
  g_autofree char *hash = NULL;
  g_autoptr (GString) line = NULL;

  g_option_context_add_main_entries (context, entries, GETTEXT_PACKAGE);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    return fail (EXIT_USAGE, "%s", error->message);
  if (argc != 2 || !g_str_equal (argv[1], "new"))
    return fail (EXIT_USAGE, _ ("usage: zlayer-tunnel token new [--name N] [--services A,B] "
                                "[--expires WHEN] [--output FILE]"));
  if (name != NULL && (strchr (name, ' ') || strchr (name, '\t')))
    return fail (EXIT_USAGE, _ ("--name must not contain spaces"));
  if (services != NULL)
    {
      g_auto (GStrv) list = g_strsplit (services, ",", -1);
      for (guint i = 0; list[i] != NULL; i++)
        if (!g_str_equal (list[i], "*") && !zlt_service_name_is_valid (list[i]))
          return fail (EXIT_USAGE, _ ("“%s” is not a valid service name"), list[i]);
    }
  if (expires != NULL)
    {
      g_autoptr (GDateTime) when = g_date_time_new_from_iso8601 (expires, NULL);
      if (when == NULL)
        return fail (EXIT_USAGE,
                     _ ("--expires wants an ISO 8601 time such as 2027-01-01T00:00:00Z"));
    }

  zlt_random_bytes (raw, sizeof raw);
  secret = zlt_hex_encode (raw, sizeof raw);
  memset (raw, 0, sizeof raw);
  token = g_strdup_printf ("zlt_%s", secret);
  hash = zlt_token_hash_hex (token);
  line = g_string_new (hash);
  if (name != NULL)
    g_string_append_printf (line, " name=%s", name);
  if (services != NULL)
    g_string_append_printf (line, " services=%s", services);
  if (expires != NULL)
    g_string_append_printf (line, " expires=%s", expires);

  if (output != NULL)
    {
      g_autofree char *contents = g_strdup_printf ("%s\n", token);
      if (!g_file_set_contents_full (output, contents, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600,
                                     &error))
        return fail (EXIT_FAILURE_RUNTIME, "%s", error->message);
      g_print (_ ("token written to %s\n"), output);
    }
  else
    {
      g_print (_ ("token (shown once; store it in a file of mode 0600 for the agent):\n"));
      g_print ("%s\n", token);
    }
  g_print (_ ("line for the server's token file:\n"));
  g_print ("%s\n", line->str);
  memset (token, 0, strlen (token));
  return EXIT_OK;
}

/* ---- demo: the whole path on loopback ---- */

/* runs in the threaded service's own thread, so blocking is fine and the main loop
 * (which carries the tunnel) keeps running */
static gboolean
demo_web_run (GThreadedSocketService *service, GSocketConnection *connection, GObject *source,
              gpointer user_data)
{
  static const char reply[] = "HTTP/1.1 200 OK\r\n"
                              "Content-Type: text/plain\r\n"
                              "Content-Length: 33\r\n"
                              "Connection: close\r\n\r\n"
                              "hello through the zlayer tunnel\r\n";
  char buf[4096];
  GInputStream *in = g_io_stream_get_input_stream (G_IO_STREAM (connection));
  GOutputStream *out = g_io_stream_get_output_stream (G_IO_STREAM (connection));

  /* one request, one answer (the demo's own client) */
  if (g_input_stream_read (in, buf, sizeof buf, NULL, NULL) > 0)
    g_output_stream_write_all (out, reply, sizeof reply - 1, NULL, NULL, NULL);
  g_io_stream_close (G_IO_STREAM (connection), NULL, NULL);
  return TRUE;
}

typedef struct
{
  guint16 port;
  char *response;
  gint done;
} DemoFetch;

static gpointer
demo_fetch_thread (gpointer user_data)
{
  DemoFetch *fetch = user_data;
  g_autoptr (GSocketClient) client = g_socket_client_new ();
  g_autoptr (GSocketConnection) connection = NULL;
  g_autoptr (GString) response = g_string_new (NULL);
  const char request[] = "GET / HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n";
  char buf[4096];
  gssize n;

  g_socket_client_set_timeout (client, 10);
  connection = g_socket_client_connect_to_host (client, "127.0.0.1", fetch->port, NULL, NULL);
  if (connection != NULL
      && g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (connection)),
                                    request, sizeof request - 1, NULL, NULL, NULL))
    while ((n = g_input_stream_read (g_io_stream_get_input_stream (G_IO_STREAM (connection)), buf,
                                     sizeof buf, NULL, NULL))
           > 0)
      g_string_append_len (response, buf, n);
  fetch->response = g_string_free (g_steal_pointer (&response), FALSE);
  g_atomic_int_set (&fetch->done, 1);
  return NULL;
}

static gboolean
demo_timeout (gpointer user_data)
{
  gboolean *timed_out = user_data;
  *timed_out = TRUE;
  return G_SOURCE_REMOVE;
}

static int
cmd_demo (int argc, char **argv)
{
  GOptionEntry entries[]
      = { { "verbose", 'v', 0, G_OPTION_ARG_NONE, &opt_verbose, N_ ("Show debug messages"), NULL },
          { NULL } };
  g_autoptr (GOptionContext) context
      = g_option_context_new (_ ("— run a server, an agent and a web service on loopback"));
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = NULL;
  g_autofree char *token_path = NULL;
  g_autofree char *hashes_path = NULL;
  g_autofree char *hashes = NULL;
  g_autofree char *url = NULL;
  g_autofree char *token = NULL;
  guint8 raw[32];
  g_autoptr (GKeyFile) server_kf = g_key_file_new ();
  g_autoptr (GKeyFile) agent_kf = g_key_file_new ();
  g_autoptr (ZltServerConfig) server_config = NULL;
  g_autoptr (ZltClientConfig) agent_config = NULL;
  g_autoptr (ZltPluginLoader) loader = NULL;
  g_autoptr (ZltServer) server = NULL;
  g_autoptr (ZltAgent) agent = NULL;
  g_autoptr (GSocketService) web = NULL;
  g_autoptr (GSocketAddress) web_addr = NULL;
  g_autoptr (GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) any = g_inet_socket_address_new (lo, 0);
  ZltService *service;
  gboolean timed_out = FALSE;
  GSource *deadline;
  DemoFetch fetch = { 0 };
  GThread *thread;
  guint16 web_port;

  g_option_context_add_main_entries (context, entries, GETTEXT_PACKAGE);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    return fail (EXIT_USAGE, "%s", error->message);

  /* a fresh token, stored as the server stores it: only its hash */
  dir = g_dir_make_tmp ("zlayer-demo-XXXXXX", &error);
  if (dir == NULL)
    return fail (EXIT_FAILURE_RUNTIME, "%s", error->message);
  zlt_random_bytes (raw, sizeof raw);
  {
    g_autofree char *hex = zlt_hex_encode (raw, sizeof raw);
    token = g_strdup_printf ("zlt_%s", hex);
  }
  token_path = g_build_filename (dir, "agent.token", NULL);
  hashes_path = g_build_filename (dir, "tokens", NULL);
  {
    g_autofree char *hash = zlt_token_hash_hex (token);
    hashes = g_strdup_printf ("%s name=demo\n", hash);
  }
  if (!g_file_set_contents_full (token_path, token, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600,
                                 &error)
      || !g_file_set_contents_full (hashes_path, hashes, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600,
                                    &error))
    return fail (EXIT_FAILURE_RUNTIME, "%s", error->message);

  /* the local service: a tiny web server on a free loopback port */
  web = g_threaded_socket_service_new (2);
  if (!g_socket_listener_add_address (G_SOCKET_LISTENER (web), any, G_SOCKET_TYPE_STREAM,
                                      G_SOCKET_PROTOCOL_TCP, NULL, &web_addr, &error))
    return fail (EXIT_FAILURE_RUNTIME, "%s", error->message);
  web_port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (web_addr));
  g_signal_connect (web, "run", G_CALLBACK (demo_web_run), NULL);
  g_socket_service_start (web);

  g_key_file_set_string (server_kf, "server", "listen", "127.0.0.1:0");
  g_key_file_set_string (server_kf, "server", "public-bind-address", "127.0.0.1");
  g_key_file_set_string (server_kf, "server", "validator", "token-file");
  g_key_file_set_string (server_kf, "validator:token-file", "path", hashes_path);
  server_config = zlt_server_config_new_from_keyfile (server_kf, &error);
  if (server_config == NULL)
    return fail (EXIT_CONFIG, "%s", error->message);
  loader = zlt_daemon_load_plugins (&error);
  if (loader == NULL)
    return fail (EXIT_CONFIG, "%s", error->message);
  server = zlt_server_new (server_config, loader, &error);
  if (server == NULL || !zlt_server_start (server, &error))
    return fail (EXIT_FAILURE_RUNTIME, "%s", error->message);

  url = g_strdup_printf ("ws://127.0.0.1:%u/tunnel/v1", zlt_server_get_port (server));
  g_key_file_set_string (agent_kf, "agent", "server", url);
  g_key_file_set_string (agent_kf, "agent", "token-file", token_path);
  g_key_file_set_string (agent_kf, "service:web", "protocol", "tcp");
  g_key_file_set_integer (agent_kf, "service:web", "local-port", web_port);
  agent_config = zlt_client_config_new_from_keyfile (agent_kf, &error);
  if (agent_config == NULL)
    return fail (EXIT_CONFIG, "%s", error->message);
  agent = zlt_agent_new (agent_config, loader, &error);
  if (agent == NULL)
    return fail (EXIT_CONFIG, "%s", error->message);
  zlt_agent_start (agent);

  deadline = g_timeout_source_new_seconds (15);
  g_source_set_callback (deadline, demo_timeout, &timed_out, NULL);
  g_source_attach (deadline, NULL);
  service = zlt_tunnel_lookup_service (zlt_agent_get_tunnel (agent), "web");
  while (!timed_out && zlt_service_get_assigned_port (service) == 0)
    g_main_context_iteration (NULL, TRUE);
  if (timed_out)
    return fail (EXIT_FAILURE_RUNTIME, _ ("the agent did not register within 15 s: %s"),
                 zlt_agent_get_last_error (agent) ? zlt_agent_get_last_error (agent) : "?");

  g_print (_ ("server   ws://127.0.0.1:%u/tunnel/v1\n"), zlt_server_get_port (server));
  g_print (_ ("service  web → 127.0.0.1:%u, public port %u\n"), web_port,
           zlt_service_get_assigned_port (service));
  fetch.port = zlt_service_get_assigned_port (service);
  thread = g_thread_new ("demo-fetch", demo_fetch_thread, &fetch);
  while (!timed_out && !g_atomic_int_get (&fetch.done))
    g_main_context_iteration (NULL, TRUE);
  if (!g_atomic_int_get (&fetch.done))
    return fail (EXIT_FAILURE_RUNTIME, _ ("no answer through the tunnel within 15 s"));
  g_thread_join (thread);
  g_source_destroy (deadline);
  g_source_unref (deadline);
  g_print (_ ("GET through the tunnel answered:\n%s"), fetch.response);
  exit_code
      = strstr (fetch.response, "hello through the zlayer tunnel") ? EXIT_OK : EXIT_FAILURE_RUNTIME;
  g_free (fetch.response);
  g_print (exit_code == EXIT_OK ? _ ("the tunnel works\n") : _ ("unexpected answer\n"));

  zlt_agent_stop (agent);
  zlt_server_stop (server);
  g_socket_service_stop (web);
  g_unlink (token_path);
  g_unlink (hashes_path);
  g_rmdir (dir);
  memset (token, 0, strlen (token));
  return exit_code;
}

/* ---- daemon commands: zlayer-tunneld over D-Bus ---- */

#define DAEMON_BUS_NAME "org.zlayer.Tunnel1"
#define DAEMON_MANAGER_PATH "/org/zlayer/Tunnel1"
#define IFACE_TUNNEL "org.zlayer.Tunnel1.Tunnel"
#define IFACE_SERVICE "org.zlayer.Tunnel1.Service"
#define IFACE_SESSION "org.zlayer.Tunnel1.Session"

static gboolean opt_session_bus;
static gboolean opt_system_bus;
static gboolean opt_json;

static const GOptionEntry bus_entries[]
    = { { "session", 0, 0, G_OPTION_ARG_NONE, &opt_session_bus,
          N_ ("Talk to the daemon on the session bus (also ZLT_BUS=session)"), NULL },
        { "system", 0, 0, G_OPTION_ARG_NONE, &opt_system_bus,
          N_ ("Talk to the daemon on the system bus (the default)"), NULL },
        { NULL } };

static const GOptionEntry json_entries[]
    = { { "json", 'j', 0, G_OPTION_ARG_NONE, &opt_json, N_ ("Print JSON for scripts"), NULL },
        { NULL } };

typedef struct
{
  GBusType bus_type;
  GDBusConnection *connection;
  GDBusObjectManager *objects;
  ZltDbusManager *manager;
} DaemonClient;

static void
daemon_client_clear (DaemonClient *client)
{
  g_clear_object (&client->manager);
  g_clear_object (&client->objects);
  g_clear_object (&client->connection);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (DaemonClient, daemon_client_clear)

static GBusType
daemon_bus_type (void)
{
  const char *env = g_getenv ("ZLT_BUS");

  if (opt_session_bus)
    return G_BUS_TYPE_SESSION;
  if (opt_system_bus)
    return G_BUS_TYPE_SYSTEM;
  if (g_strcmp0 (env, "session") == 0)
    return G_BUS_TYPE_SESSION;
  return G_BUS_TYPE_SYSTEM;
}

static int
fail_not_running (GBusType bus_type)
{
  if (bus_type == G_BUS_TYPE_SESSION)
    return fail (EXIT_NO_DAEMON,
                 _ ("zlayer-tunneld is not running (no owner of %s on the session bus)"),
                 DAEMON_BUS_NAME);
  return fail (EXIT_NO_DAEMON,
               _ ("zlayer-tunneld is not running (no owner of %s on the system bus)"),
               DAEMON_BUS_NAME);
}

/* A failed call: the daemon's (or the bus's) message without the GDBus prefix; the
 * daemon going away under us counts as not running. */
static int
fail_dbus (DaemonClient *client, GError *error)
{
  if (g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_SERVICE_UNKNOWN)
      || g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_NAME_HAS_NO_OWNER))
    return fail_not_running (client->bus_type);
  /* the bus policy's refusal names rules and pids; say what it means instead */
  if (g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_ACCESS_DENIED))
    return fail (EXIT_FAILURE_RUNTIME,
                 _ ("permission denied: only root and members of the daemon's admin group may "
                    "do this"));
  g_dbus_error_strip_remote_error (error);
  return fail (EXIT_FAILURE_RUNTIME, "%s", error->message);
}

/* Connects and checks that the daemon owns its name; never starts it (no activation
 * from a status query). Returns EXIT_OK or the code to exit with, message printed. */
static int
daemon_client_connect (DaemonClient *client)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *owner = NULL;

  client->bus_type = daemon_bus_type ();
  client->connection = g_bus_get_sync (client->bus_type, NULL, &error);
  if (client->connection == NULL)
    {
      if (client->bus_type == G_BUS_TYPE_SESSION)
        return fail (EXIT_NO_DAEMON,
                     _ ("zlayer-tunneld is not running (cannot connect to the session bus: %s)"),
                     error->message);
      return fail (EXIT_NO_DAEMON,
                   _ ("zlayer-tunneld is not running (cannot connect to the system bus: %s)"),
                   error->message);
    }
  client->objects = zlt_dbus_object_manager_client_new_sync (
      client->connection, G_DBUS_OBJECT_MANAGER_CLIENT_FLAGS_DO_NOT_AUTO_START, DAEMON_BUS_NAME,
      DAEMON_MANAGER_PATH, NULL, &error);
  if (client->objects == NULL)
    return fail_dbus (client, error);
  owner = g_dbus_object_manager_client_get_name_owner (
      G_DBUS_OBJECT_MANAGER_CLIENT (client->objects));
  if (owner == NULL)
    return fail_not_running (client->bus_type);
  client->manager
      = zlt_dbus_manager_proxy_new_sync (client->connection, G_DBUS_PROXY_FLAGS_DO_NOT_AUTO_START,
                                         owner, DAEMON_MANAGER_PATH, NULL, &error);
  if (client->manager == NULL)
    return fail_dbus (client, error);
  return EXIT_OK;
}

/* ---- reading properties of any proxy ---- */

static char *
prop_string (GDBusProxy *proxy, const char *name)
{
  g_autoptr (GVariant) value = g_dbus_proxy_get_cached_property (proxy, name);

  if (value != NULL
      && (g_variant_is_of_type (value, G_VARIANT_TYPE_STRING)
          || g_variant_is_of_type (value, G_VARIANT_TYPE_OBJECT_PATH)))
    return g_variant_dup_string (value, NULL);
  return g_strdup ("");
}

static gint64
prop_int (GDBusProxy *proxy, const char *name)
{
  g_autoptr (GVariant) value = g_dbus_proxy_get_cached_property (proxy, name);

  if (value == NULL)
    return 0;
  switch (g_variant_classify (value))
    {
    case G_VARIANT_CLASS_BYTE:
      return g_variant_get_byte (value);
    case G_VARIANT_CLASS_UINT16:
      return g_variant_get_uint16 (value);
    case G_VARIANT_CLASS_INT16:
      return g_variant_get_int16 (value);
    case G_VARIANT_CLASS_UINT32:
      return g_variant_get_uint32 (value);
    case G_VARIANT_CLASS_INT32:
      return g_variant_get_int32 (value);
    case G_VARIANT_CLASS_UINT64:
      return (gint64) MIN (g_variant_get_uint64 (value), (guint64) G_MAXINT64);
    case G_VARIANT_CLASS_INT64:
      return g_variant_get_int64 (value);
    default:
      return 0;
    }
}

static int
compare_proxy_paths (gconstpointer a, gconstpointer b)
{
  const char *pa = g_dbus_proxy_get_object_path (*(GDBusProxy **) a);
  const char *pb = g_dbus_proxy_get_object_path (*(GDBusProxy **) b);
  gsize la = strlen (pa);
  gsize lb = strlen (pb);

  /* .../Tunnel/9 before .../Tunnel/10 */
  if (la != lb)
    return la < lb ? -1 : 1;
  return strcmp (pa, pb);
}

/* Returns: (transfer full): the proxies of @iface_name, in object path order */
static GPtrArray *
daemon_client_list (DaemonClient *client, const char *iface_name)
{
  GPtrArray *proxies = g_ptr_array_new_with_free_func (g_object_unref);
  GList *objects = g_dbus_object_manager_get_objects (client->objects);

  for (GList *l = objects; l != NULL; l = l->next)
    {
      GDBusInterface *iface = g_dbus_object_get_interface (l->data, iface_name);

      if (iface != NULL)
        g_ptr_array_add (proxies, iface);
    }
  g_list_free_full (objects, g_object_unref);
  g_ptr_array_sort (proxies, compare_proxy_paths);
  return proxies;
}

static GDBusProxy *
daemon_client_lookup (DaemonClient *client, const char *path, const char *iface_name)
{
  if (path == NULL || !g_variant_is_object_path (path))
    return NULL;
  return G_DBUS_PROXY (g_dbus_object_manager_get_interface (client->objects, path, iface_name));
}

/* ---- JSON: stable keys, one table per interface ---- */

typedef struct
{
  const char *property;
  const char *key;
} JsonKey;

static const JsonKey tunnel_keys[] = {
  { "Id", "id" },
  { "Role", "role" },
  { "State", "state" },
  { "PeerAddress", "peer_address" },
  { "ClientId", "client_id" },
  { "TokenName", "token_name" },
  { "Created", "created_us" },
  { "LastActivity", "last_activity_us" },
  { "BytesIn", "bytes_in" },
  { "BytesOut", "bytes_out" },
  { "LastError", "last_error" },
};

static const JsonKey service_keys[] = {
  { "Id", "id" },
  { "Name", "name" },
  { "Protocol", "protocol" },
  { "Expose", "expose" },
  { "LocalPort", "local_port" },
  { "RequestedPort", "requested_port" },
  { "AssignedPort", "assigned_port" },
  { "ActiveConnections", "active_connections" },
  { "TotalConnections", "total_connections" },
  { "BytesIn", "bytes_in" },
  { "BytesOut", "bytes_out" },
  { "Tunnel", "tunnel" },
};

static const JsonKey session_keys[] = {
  { "Id", "id" },
  { "Endpoint", "endpoint" },
  { "LocalAddress", "local_address" },
  { "RemoteService", "remote_service" },
  { "Created", "created_us" },
  { "Expires", "expires_us" },
  { "ActiveConnections", "active_connections" },
  { "TotalConnections", "total_connections" },
  { "BytesIn", "bytes_in" },
  { "BytesOut", "bytes_out" },
};

static void
json_add_properties (JsonBuilder *builder, GDBusProxy *proxy, const JsonKey *keys, gsize n_keys)
{
  json_builder_set_member_name (builder, "path");
  json_builder_add_string_value (builder, g_dbus_proxy_get_object_path (proxy));
  for (gsize i = 0; i < n_keys; i++)
    {
      g_autoptr (GVariant) value = g_dbus_proxy_get_cached_property (proxy, keys[i].property);

      json_builder_set_member_name (builder, keys[i].key);
      if (value == NULL)
        json_builder_add_null_value (builder);
      else if (g_variant_is_of_type (value, G_VARIANT_TYPE_STRING)
               || g_variant_is_of_type (value, G_VARIANT_TYPE_OBJECT_PATH))
        json_builder_add_string_value (builder, g_variant_get_string (value, NULL));
      else if (g_variant_is_of_type (value, G_VARIANT_TYPE_BOOLEAN))
        json_builder_add_boolean_value (builder, g_variant_get_boolean (value));
      else
        json_builder_add_int_value (builder, prop_int (proxy, keys[i].property));
    }
}

static void
json_add_service (JsonBuilder *builder, GDBusProxy *service)
{
  json_builder_begin_object (builder);
  json_add_properties (builder, service, service_keys, G_N_ELEMENTS (service_keys));
  json_builder_end_object (builder);
}

/* the tunnel's Services, in the order the daemon lists them */
static GPtrArray *
tunnel_services (DaemonClient *client, GDBusProxy *tunnel)
{
  g_autoptr (GVariant) paths = g_dbus_proxy_get_cached_property (tunnel, "Services");
  GPtrArray *services = g_ptr_array_new_with_free_func (g_object_unref);
  GVariantIter iter;
  const char *path;

  if (paths == NULL || !g_variant_is_of_type (paths, G_VARIANT_TYPE_OBJECT_PATH_ARRAY))
    return services;
  g_variant_iter_init (&iter, paths);
  while (g_variant_iter_next (&iter, "&o", &path))
    {
      GDBusProxy *service = daemon_client_lookup (client, path, IFACE_SERVICE);

      if (service != NULL)
        g_ptr_array_add (services, service);
    }
  return services;
}

static void
json_add_tunnel (JsonBuilder *builder, DaemonClient *client, GDBusProxy *tunnel)
{
  g_autoptr (GPtrArray) services = tunnel_services (client, tunnel);

  json_builder_begin_object (builder);
  json_add_properties (builder, tunnel, tunnel_keys, G_N_ELEMENTS (tunnel_keys));
  json_builder_set_member_name (builder, "services");
  json_builder_begin_array (builder);
  for (guint i = 0; i < services->len; i++)
    json_add_service (builder, g_ptr_array_index (services, i));
  json_builder_end_array (builder);
  json_builder_end_object (builder);
}

static void
json_print (JsonBuilder *builder)
{
  g_autoptr (JsonGenerator) generator = json_generator_new ();
  g_autoptr (JsonNode) root = json_builder_get_root (builder);
  g_autofree char *text = NULL;

  json_generator_set_pretty (generator, TRUE);
  json_generator_set_root (generator, root);
  text = json_generator_to_data (generator, NULL);
  g_print ("%s\n", text);
}

/* ---- human output: aligned tables ---- */

typedef struct
{
  guint n_columns;
  guint32 right_aligned; /* bit i: column i is a number */
  GPtrArray *cells;      /* char*, row by row, the header first */
} Table;

static void
table_free (Table *table)
{
  g_ptr_array_unref (table->cells);
  g_free (table);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Table, table_free)

/* @headers: translated column titles, NULL-terminated; @right_aligned: bit i set for a
 * column of numbers */
static Table *
table_new (const char *const *headers, guint32 right_aligned)
{
  Table *table = g_new0 (Table, 1);

  table->cells = g_ptr_array_new_with_free_func (g_free);
  table->right_aligned = right_aligned;
  for (; headers[table->n_columns] != NULL; table->n_columns++)
    g_ptr_array_add (table->cells, g_strdup (headers[table->n_columns]));
  return table;
}

/* takes @cell */
static void
table_add (Table *table, char *cell)
{
  if (cell == NULL || cell[0] == '\0')
    {
      g_free (cell);
      cell = g_strdup ("-");
    }
  g_ptr_array_add (table->cells, cell);
}

static void
table_print (Table *table)
{
  g_autofree glong *widths = g_new0 (glong, table->n_columns);
  guint n_cells = table->cells->len;

  for (guint i = 0; i < n_cells; i++)
    widths[i % table->n_columns] = MAX (widths[i % table->n_columns],
                                        g_utf8_strlen (g_ptr_array_index (table->cells, i), -1));
  for (guint i = 0; i < n_cells; i++)
    {
      guint column = i % table->n_columns;
      const char *cell = g_ptr_array_index (table->cells, i);
      glong pad = widths[column] - g_utf8_strlen (cell, -1);
      gboolean last = column == table->n_columns - 1;

      if (table->right_aligned & (1u << column))
        g_print ("%*s%s%s", (int) pad, "", cell, last ? "\n" : "  ");
      else if (last)
        g_print ("%s\n", cell);
      else
        g_print ("%s%*s  ", cell, (int) pad, "");
    }
}

static char *
format_bytes (gint64 bytes)
{
  return g_format_size ((guint64) MAX (bytes, 0));
}

/* a compact duration: 42s, 5m07s, 3h05m, 2d04h */
static char *
format_duration (gint64 seconds)
{
  if (seconds < 0)
    seconds = 0;
  /* TRANSLATORS: compact durations: seconds; minutes and seconds; hours and minutes; days
   * and hours */
  if (seconds < 60)
    return g_strdup_printf (_ ("%us"), (guint) seconds);
  if (seconds < 3600)
    return g_strdup_printf (_ ("%um%02us"), (guint) (seconds / 60), (guint) (seconds % 60));
  if (seconds < 86400)
    return g_strdup_printf (_ ("%uh%02um"), (guint) (seconds / 3600),
                            (guint) (seconds % 3600 / 60));
  return g_strdup_printf (_ ("%ud%02uh"), (guint) (seconds / 86400),
                          (guint) (seconds % 86400 / 3600));
}

static char *
format_since (gint64 unix_us)
{
  if (unix_us <= 0)
    return g_strdup ("-");
  return format_duration ((g_get_real_time () - unix_us) / G_USEC_PER_SEC);
}

static char *
format_port (gint64 port)
{
  return port > 0 ? g_strdup_printf ("%u", (guint) port) : g_strdup ("-");
}

static void
print_tunnels_table (GPtrArray *tunnels)
{
  /* TRANSLATORS: column titles of `zlayer-tunnel tunnels` */
  const char *headers[] = { _ ("ID"),       _ ("ROLE"), _ ("STATE"), _ ("PEER"), _ ("TOKEN"),
                            _ ("SERVICES"), _ ("UP"),   _ ("IN"),    _ ("OUT"),  NULL };
  g_autoptr (Table) table = table_new (headers, 0x1e0);

  for (guint i = 0; i < tunnels->len; i++)
    {
      GDBusProxy *tunnel = g_ptr_array_index (tunnels, i);
      g_autoptr (GVariant) services = g_dbus_proxy_get_cached_property (tunnel, "Services");

      table_add (table, prop_string (tunnel, "Id"));
      table_add (table, prop_string (tunnel, "Role"));
      table_add (table, prop_string (tunnel, "State"));
      table_add (table, prop_string (tunnel, "PeerAddress"));
      table_add (table, prop_string (tunnel, "TokenName"));
      table_add (table, g_strdup_printf ("%" G_GSIZE_FORMAT,
                                         services != NULL ? g_variant_n_children (services) : 0));
      table_add (table, format_since (prop_int (tunnel, "Created")));
      table_add (table, format_bytes (prop_int (tunnel, "BytesIn")));
      table_add (table, format_bytes (prop_int (tunnel, "BytesOut")));
    }
  table_print (table);
}

static void
print_services_table (DaemonClient *client, GPtrArray *services)
{
  /* TRANSLATORS: column titles of `zlayer-tunnel services`; LOCAL and PUBLIC are ports */
  const char *headers[]
      = { _ ("NAME"),   _ ("ROLE"),  _ ("PROTOCOL"), _ ("EXPOSE"), _ ("LOCAL"), _ ("PUBLIC"),
          _ ("ACTIVE"), _ ("TOTAL"), _ ("IN"),       _ ("OUT"),    NULL };
  g_autoptr (Table) table = table_new (headers, 0x3f0);

  for (guint i = 0; i < services->len; i++)
    {
      GDBusProxy *service = g_ptr_array_index (services, i);
      g_autofree char *tunnel_path = prop_string (service, "Tunnel");
      g_autoptr (GDBusProxy) tunnel = daemon_client_lookup (client, tunnel_path, IFACE_TUNNEL);

      table_add (table, prop_string (service, "Name"));
      table_add (table, tunnel != NULL ? prop_string (tunnel, "Role") : NULL);
      table_add (table, prop_string (service, "Protocol"));
      table_add (table, prop_string (service, "Expose"));
      table_add (table, format_port (prop_int (service, "LocalPort")));
      table_add (table, format_port (prop_int (service, "AssignedPort")));
      table_add (table,
                 g_strdup_printf ("%" G_GINT64_FORMAT, prop_int (service, "ActiveConnections")));
      table_add (table,
                 g_strdup_printf ("%" G_GINT64_FORMAT, prop_int (service, "TotalConnections")));
      table_add (table, format_bytes (prop_int (service, "BytesIn")));
      table_add (table, format_bytes (prop_int (service, "BytesOut")));
    }
  table_print (table);
}

static void
print_sessions_table (GPtrArray *sessions)
{
  /* TRANSLATORS: column titles of `zlayer-tunnel sessions` */
  const char *headers[] = { _ ("ID"),    _ ("SERVICE"), _ ("LOCAL"), _ ("ENDPOINT"), _ ("ACTIVE"),
                            _ ("TOTAL"), _ ("IN"),      _ ("OUT"),   _ ("EXPIRES"),  NULL };
  g_autoptr (Table) table = table_new (headers, 0x1f0);

  for (guint i = 0; i < sessions->len; i++)
    {
      GDBusProxy *session = g_ptr_array_index (sessions, i);
      gint64 expires = prop_int (session, "Expires");

      table_add (table, prop_string (session, "Id"));
      table_add (table, prop_string (session, "RemoteService"));
      table_add (table, prop_string (session, "LocalAddress"));
      table_add (table, prop_string (session, "Endpoint"));
      table_add (table,
                 g_strdup_printf ("%" G_GINT64_FORMAT, prop_int (session, "ActiveConnections")));
      table_add (table,
                 g_strdup_printf ("%" G_GINT64_FORMAT, prop_int (session, "TotalConnections")));
      table_add (table, format_bytes (prop_int (session, "BytesIn")));
      table_add (table, format_bytes (prop_int (session, "BytesOut")));
      if (expires <= 0)
        table_add (table, g_strdup (_ ("never")));
      else
        table_add (table, format_duration ((expires - g_get_real_time ()) / G_USEC_PER_SEC));
    }
  table_print (table);
}

/* Parses a daemon command's options: the bus, optionally --json, and exactly
 * @n_args positional arguments (described by @parameters for --help). */
static int
parse_daemon_options (int *argc, char ***argv, const char *parameters, const char *summary,
                      const GOptionEntry *extra, gboolean json, int n_args)
{
  g_autoptr (GOptionContext) context = g_option_context_new (parameters);
  g_autoptr (GError) error = NULL;

  g_option_context_set_summary (context, summary);
  g_option_context_add_main_entries (context, bus_entries, GETTEXT_PACKAGE);
  if (json)
    g_option_context_add_main_entries (context, json_entries, GETTEXT_PACKAGE);
  if (extra != NULL)
    g_option_context_add_main_entries (context, extra, GETTEXT_PACKAGE);
  if (!g_option_context_parse (context, argc, argv, &error))
    return fail (EXIT_USAGE, "%s", error->message);
  if (opt_session_bus && opt_system_bus)
    return fail (EXIT_USAGE, _ ("--session and --system exclude each other"));
  if (*argc - 1 != n_args)
    {
      g_autofree char *help = g_option_context_get_help (context, TRUE, NULL);
      g_printerr ("%s", help);
      return EXIT_USAGE;
    }
  return EXIT_OK;
}

/* ---- status ---- */

static int
cmd_status (int argc, char **argv)
{
  g_auto (DaemonClient) client = { 0 };
  g_autoptr (GPtrArray) tunnels = NULL;
  g_autoptr (GPtrArray) services = NULL;
  const char *const *roles;
  int rc;

  rc = parse_daemon_options (&argc, &argv, "", _ ("Show the daemon, its roles and tunnels."), NULL,
                             TRUE, 0);
  if (rc != EXIT_OK)
    return rc;
  rc = daemon_client_connect (&client);
  if (rc != EXIT_OK)
    return rc;
  tunnels = daemon_client_list (&client, IFACE_TUNNEL);
  roles = zlt_dbus_manager_get_roles (client.manager);

  if (opt_json)
    {
      g_autoptr (JsonBuilder) builder = json_builder_new ();

      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "version");
      json_builder_add_string_value (builder, zlt_dbus_manager_get_version (client.manager));
      json_builder_set_member_name (builder, "roles");
      json_builder_begin_array (builder);
      for (guint i = 0; roles != NULL && roles[i] != NULL; i++)
        json_builder_add_string_value (builder, roles[i]);
      json_builder_end_array (builder);
      json_builder_set_member_name (builder, "server");
      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "address");
      json_builder_add_string_value (builder, zlt_dbus_manager_get_server_address (client.manager));
      json_builder_end_object (builder);
      json_builder_set_member_name (builder, "agent");
      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "server");
      json_builder_add_string_value (builder, zlt_dbus_manager_get_agent_server (client.manager));
      json_builder_set_member_name (builder, "state");
      json_builder_add_string_value (builder, zlt_dbus_manager_get_agent_state (client.manager));
      json_builder_set_member_name (builder, "last_error");
      json_builder_add_string_value (builder,
                                     zlt_dbus_manager_get_agent_last_error (client.manager));
      json_builder_set_member_name (builder, "sessions");
      json_builder_add_int_value (builder, zlt_dbus_manager_get_agent_sessions (client.manager));
      json_builder_end_object (builder);
      json_builder_set_member_name (builder, "tunnels");
      json_builder_begin_array (builder);
      for (guint i = 0; i < tunnels->len; i++)
        json_add_tunnel (builder, &client, g_ptr_array_index (tunnels, i));
      json_builder_end_array (builder);
      json_builder_end_object (builder);
      json_print (builder);
      return EXIT_OK;
    }

  {
    g_autofree char *role_list = roles != NULL && roles[0] != NULL
                                     ? g_strjoinv (", ", (char **) roles)
                                     : g_strdup (_ ("no roles"));
    const char *address = zlt_dbus_manager_get_server_address (client.manager);
    const char *agent_server = zlt_dbus_manager_get_agent_server (client.manager);
    const char *last_error = zlt_dbus_manager_get_agent_last_error (client.manager);

    g_print (_ ("zlayer-tunneld %s (%s)\n"), zlt_dbus_manager_get_version (client.manager),
             role_list);
    if (address != NULL && address[0] != '\0')
      g_print (_ ("server:  listening on %s\n"), address);
    if (agent_server != NULL && agent_server[0] != '\0')
      g_print (_ ("agent:   %s, server %s\n"), zlt_dbus_manager_get_agent_state (client.manager),
               agent_server);
    if (last_error != NULL && last_error[0] != '\0')
      g_print (_ ("         last error: %s\n"), last_error);
  }
  if (tunnels->len == 0)
    {
      g_print (_ ("no tunnels\n"));
      return EXIT_OK;
    }
  g_print ("\n");
  print_tunnels_table (tunnels);
  services = daemon_client_list (&client, IFACE_SERVICE);
  if (services->len > 0)
    {
      g_print ("\n");
      print_services_table (&client, services);
    }
  return EXIT_OK;
}

/* ---- tunnels, services, sessions ---- */

static int
cmd_tunnels (int argc, char **argv)
{
  g_auto (DaemonClient) client = { 0 };
  g_autoptr (GPtrArray) tunnels = NULL;
  int rc;

  rc = parse_daemon_options (&argc, &argv, "",
                             _ ("List the tunnels: agents connected to this server and this "
                                "agent's own tunnel."),
                             NULL, TRUE, 0);
  if (rc != EXIT_OK)
    return rc;
  rc = daemon_client_connect (&client);
  if (rc != EXIT_OK)
    return rc;
  tunnels = daemon_client_list (&client, IFACE_TUNNEL);
  if (opt_json)
    {
      g_autoptr (JsonBuilder) builder = json_builder_new ();

      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "tunnels");
      json_builder_begin_array (builder);
      for (guint i = 0; i < tunnels->len; i++)
        json_add_tunnel (builder, &client, g_ptr_array_index (tunnels, i));
      json_builder_end_array (builder);
      json_builder_end_object (builder);
      json_print (builder);
    }
  else if (tunnels->len == 0)
    g_print (_ ("no tunnels\n"));
  else
    print_tunnels_table (tunnels);
  return EXIT_OK;
}

static int
cmd_services (int argc, char **argv)
{
  g_auto (DaemonClient) client = { 0 };
  g_autoptr (GPtrArray) services = NULL;
  int rc;

  rc = parse_daemon_options (&argc, &argv, "", _ ("List the services of every tunnel."), NULL, TRUE,
                             0);
  if (rc != EXIT_OK)
    return rc;
  rc = daemon_client_connect (&client);
  if (rc != EXIT_OK)
    return rc;
  services = daemon_client_list (&client, IFACE_SERVICE);
  if (opt_json)
    {
      g_autoptr (JsonBuilder) builder = json_builder_new ();

      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "services");
      json_builder_begin_array (builder);
      for (guint i = 0; i < services->len; i++)
        json_add_service (builder, g_ptr_array_index (services, i));
      json_builder_end_array (builder);
      json_builder_end_object (builder);
      json_print (builder);
    }
  else if (services->len == 0)
    g_print (_ ("no services\n"));
  else
    print_services_table (&client, services);
  return EXIT_OK;
}

static int
cmd_sessions (int argc, char **argv)
{
  g_auto (DaemonClient) client = { 0 };
  g_autoptr (GPtrArray) sessions = NULL;
  int rc;

  rc = parse_daemon_options (&argc, &argv, "", _ ("List the on-demand access sessions."), NULL,
                             TRUE, 0);
  if (rc != EXIT_OK)
    return rc;
  rc = daemon_client_connect (&client);
  if (rc != EXIT_OK)
    return rc;
  sessions = daemon_client_list (&client, IFACE_SESSION);
  if (opt_json)
    {
      g_autoptr (JsonBuilder) builder = json_builder_new ();

      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "sessions");
      json_builder_begin_array (builder);
      for (guint i = 0; i < sessions->len; i++)
        {
          GDBusProxy *session = g_ptr_array_index (sessions, i);

          json_builder_begin_object (builder);
          json_add_properties (builder, session, session_keys, G_N_ELEMENTS (session_keys));
          json_builder_end_object (builder);
        }
      json_builder_end_array (builder);
      json_builder_end_object (builder);
      json_print (builder);
    }
  else if (sessions->len == 0)
    g_print (_ ("no access sessions\n"));
  else
    print_sessions_table (sessions);
  return EXIT_OK;
}

/* ---- expose, unexpose, reload ---- */

static int
cmd_expose (int argc, char **argv)
{
  g_autofree char *protocol = NULL;
  g_autofree char *local_host = NULL;
  gint remote_port = 0;
  gboolean internal = FALSE;
  const GOptionEntry entries[]
      = { { "remote-port", 'r', 0, G_OPTION_ARG_INT, &remote_port,
            N_ ("Public port to ask the server for (default: any)"), N_ ("PORT") },
          { "protocol", 'p', 0, G_OPTION_ARG_STRING, &protocol, N_ ("tcp (the default) or udp"),
            N_ ("PROTOCOL") },
          { "local-host", 0, 0, G_OPTION_ARG_STRING, &local_host,
            N_ ("Host the service listens on (default 127.0.0.1)"), N_ ("HOST") },
          { "internal", 0, 0, G_OPTION_ARG_NONE, &internal,
            N_ ("Reachable only through access sessions, not on a public port"), NULL },
          { NULL } };
  g_auto (DaemonClient) client = { 0 };
  g_autoptr (GError) error = NULL;
  g_autofree char *service_path = NULL;
  g_auto (GVariantBuilder) options = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);
  guint64 local_port;
  int rc;

  rc = parse_daemon_options (&argc, &argv, _ ("NAME LOCAL_PORT"),
                             _ ("Expose a local service through the daemon's agent."), entries,
                             FALSE, 2);
  if (rc != EXIT_OK)
    return rc;
  if (!zlt_service_name_is_valid (argv[1]))
    return fail (EXIT_USAGE, _ ("“%s” is not a valid service name"), argv[1]);
  if (!g_ascii_string_to_unsigned (argv[2], 10, 1, G_MAXUINT16, &local_port, NULL))
    return fail (EXIT_USAGE, _ ("“%s” is not a port from 1 to 65535"), argv[2]);
  if (remote_port < 0 || remote_port > G_MAXUINT16)
    return fail (EXIT_USAGE, _ ("--remote-port must be from 0 to 65535"));
  if (protocol != NULL && !g_str_equal (protocol, "tcp") && !g_str_equal (protocol, "udp"))
    return fail (EXIT_USAGE, _ ("--protocol must be tcp or udp, not “%s”"), protocol);

  g_variant_builder_add (&options, "{sv}", "protocol",
                         g_variant_new_string (protocol != NULL ? protocol : "tcp"));
  if (local_host != NULL)
    g_variant_builder_add (&options, "{sv}", "local-host", g_variant_new_string (local_host));
  g_variant_builder_add (&options, "{sv}", "remote-port",
                         g_variant_new_uint16 ((guint16) remote_port));
  g_variant_builder_add (&options, "{sv}", "expose",
                         g_variant_new_string (internal ? "internal" : "public"));

  rc = daemon_client_connect (&client);
  if (rc != EXIT_OK)
    return rc;
  if (!zlt_dbus_manager_call_expose_sync (
          client.manager, argv[1], (guint16) local_port, g_variant_builder_end (&options),
          G_DBUS_CALL_FLAGS_NO_AUTO_START, -1, &service_path, NULL, &error))
    return fail_dbus (&client, error);
  g_print (_ ("exposed %s (local port %u)\n"), argv[1], (guint) local_port);
  return EXIT_OK;
}

static int
cmd_unexpose (int argc, char **argv)
{
  g_auto (DaemonClient) client = { 0 };
  g_autoptr (GError) error = NULL;
  int rc;

  rc = parse_daemon_options (&argc, &argv, _ ("NAME"),
                             _ ("Remove a service from the daemon's agent."), NULL, FALSE, 1);
  if (rc != EXIT_OK)
    return rc;
  rc = daemon_client_connect (&client);
  if (rc != EXIT_OK)
    return rc;
  if (!zlt_dbus_manager_call_unexpose_sync (client.manager, argv[1],
                                            G_DBUS_CALL_FLAGS_NO_AUTO_START, -1, NULL, &error))
    return fail_dbus (&client, error);
  g_print (_ ("removed %s\n"), argv[1]);
  return EXIT_OK;
}

static int
cmd_reload (int argc, char **argv)
{
  g_auto (DaemonClient) client = { 0 };
  g_autoptr (GError) error = NULL;
  int rc;

  rc = parse_daemon_options (&argc, &argv, "", _ ("Make the daemon re-read its configuration."),
                             NULL, FALSE, 0);
  if (rc != EXIT_OK)
    return rc;
  rc = daemon_client_connect (&client);
  if (rc != EXIT_OK)
    return rc;
  if (!zlt_dbus_manager_call_reload_sync (client.manager, G_DBUS_CALL_FLAGS_NO_AUTO_START, -1, NULL,
                                          &error))
    return fail_dbus (&client, error);
  g_print (_ ("configuration reloaded\n"));
  return EXIT_OK;
}

static void
usage (void)
{
  g_printerr ("%s", _ ("usage: zlayer-tunnel COMMAND [OPTIONS]\n"
                       "\n"
                       "commands:\n"
                       "  server     run a tunnel server in the foreground\n"
                       "  agent      expose local services through a server\n"
                       "  access     reach SERVICE on a local port for a while (--ttl)\n"
                       "  token new  make a token and the line for the server's token file\n"
                       "  demo       server, agent and a web service on loopback, end to end\n"
                       "\n"
                       "commands for a running zlayer-tunneld (system bus; --session, --json):\n"
                       "  status     the daemon, its roles, tunnels and services\n"
                       "  tunnels    list the tunnels\n"
                       "  services   list the services\n"
                       "  sessions   list the access sessions\n"
                       "  expose     expose NAME LOCAL_PORT through the daemon's agent\n"
                       "  unexpose   remove service NAME\n"
                       "  reload     make the daemon re-read its configuration\n"
                       "\n"
                       "“zlayer-tunnel COMMAND --help” shows a command's options.\n"));
}

int
main (int argc, char **argv)
{
  const char *command;
  int rc;

  setlocale (LC_ALL, "");
  bindtextdomain (GETTEXT_PACKAGE, LOCALEDIR);
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
  textdomain (GETTEXT_PACKAGE);
  zlt_init ();
  g_log_set_default_handler (log_handler, NULL);

  if (argc < 2 || g_str_equal (argv[1], "--help") || g_str_equal (argv[1], "-h"))
    {
      usage ();
      return argc < 2 ? EXIT_USAGE : EXIT_OK;
    }
  command = argv[1];
  if (g_str_equal (command, "--version"))
    {
      g_print ("zlayer-tunnel %s\n", PACKAGE_VERSION);
      return EXIT_OK;
    }
  main_loop = g_main_loop_new (NULL, FALSE);
  /* each command parses its own options; argv[1] stands in for the program name */
  if (g_str_equal (command, "server"))
    rc = cmd_server (argc - 1, argv + 1);
  else if (g_str_equal (command, "agent"))
    rc = cmd_agent (argc - 1, argv + 1);
  else if (g_str_equal (command, "access"))
    rc = cmd_access (argc - 1, argv + 1);
  else if (g_str_equal (command, "token"))
    rc = cmd_token (argc - 1, argv + 1);
  else if (g_str_equal (command, "demo"))
    rc = cmd_demo (argc - 1, argv + 1);
  else if (g_str_equal (command, "status"))
    rc = cmd_status (argc - 1, argv + 1);
  else if (g_str_equal (command, "tunnels"))
    rc = cmd_tunnels (argc - 1, argv + 1);
  else if (g_str_equal (command, "services"))
    rc = cmd_services (argc - 1, argv + 1);
  else if (g_str_equal (command, "sessions"))
    rc = cmd_sessions (argc - 1, argv + 1);
  else if (g_str_equal (command, "expose"))
    rc = cmd_expose (argc - 1, argv + 1);
  else if (g_str_equal (command, "unexpose"))
    rc = cmd_unexpose (argc - 1, argv + 1);
  else if (g_str_equal (command, "reload"))
    rc = cmd_reload (argc - 1, argv + 1);
  else
    {
      usage ();
      rc = fail (EXIT_USAGE, _ ("unknown command “%s”"), command);
    }
  g_main_loop_unref (main_loop);
  return rc;
}
