/* zlt-cli-foreground.c: the zlayer-tunnel commands that need no daemon: server, agent,
 * access, token new and demo.
 *
 * Options become a GKeyFile in the same shape as the config file, so the command line
 * and the file go through one validation path (and --check through the daemon's). */
#include "config.h"

#include <errno.h>
#include <glib/gi18n.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "zlayer-tunnel.h"
#include "zlt-cli.h"
#include "zlt-daemon.h" /* the whole-file check, the plugins */
#include "zlt-util.h"   /* zlt_parse_duration */

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
  return zlt_config_directory (config_path);
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
    return zlt_cli_fail (EXIT_CONFIG, "%s", error->message);
  if (!g_key_file_has_group (keyfile, group))
    {
      if (!zlt_daemon_keyfile_has_node_groups (keyfile))
        return zlt_cli_fail (EXIT_CONFIG, _ ("no [%s] group: “%s” has nothing to run"), group,
                             command);
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

int
zlt_cli_server (int argc, char **argv)
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
    { "verbose", 'v', 0, G_OPTION_ARG_NONE, &zlt_cli_verbose, N_ ("Show debug messages"), NULL },
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
    return zlt_cli_fail (EXIT_USAGE, "%s", error->message);
  keyfile = load_keyfile (config_path, &error);
  if (keyfile == NULL)
    return zlt_cli_fail (EXIT_CONFIG, "%s", error->message);
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
        return zlt_cli_fail (EXIT_USAGE, "--udp-idle-timeout: %s", error->message);
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
    return zlt_cli_fail (EXIT_CONFIG, "%s", error->message);
  if (check)
    return check_config (keyfile, config_path, loader, "server", ZLT_SERVER_CONFIG_GROUP);
  base_dir = config_dir (config_path);
  config = zlt_server_config_new_from_keyfile_full (keyfile, base_dir, &error);
  if (config == NULL)
    return zlt_cli_fail (EXIT_CONFIG, "%s", error->message);
  zlt_raise_fd_limit ();
  server = zlt_server_new (config, loader, &error);
  if (server == NULL)
    return zlt_cli_fail (EXIT_CONFIG, "%s", error->message);
  if (!zlt_server_start (server, &error))
    return zlt_cli_fail (EXIT_FAILURE_RUNTIME, "%s", error->message);
  zlt_cli_run_main_loop ();
  zlt_server_stop (server);
  return zlt_cli_exit_code;
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
  zlt_cli_exit_code = zlt_cli_fail (EXIT_FAILURE_RUNTIME,
                                    _ ("%s (retrying cannot help; --retry-forever "
                                       "retries anyway)"),
                                    zlt_agent_get_last_error (agent));
  g_main_loop_quit (zlt_cli_main_loop);
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

int
zlt_cli_agent (int argc, char **argv)
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
          { "verbose", 'v', 0, G_OPTION_ARG_NONE, &zlt_cli_verbose, N_ ("Show debug messages"),
            NULL },
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
    return zlt_cli_fail (EXIT_USAGE, "%s", error->message);
  keyfile = load_keyfile (config_path, &error);
  if (keyfile == NULL)
    return zlt_cli_fail (EXIT_CONFIG, "%s", error->message);
  set_agent_connection (keyfile, server_url, token_file, token_env, ca_file, pin, insecure_tls);
  if (legacy)
    g_key_file_set_boolean (keyfile, "agent", "legacy-auth", TRUE);
  if (retry_forever)
    g_key_file_set_boolean (keyfile, "agent", "retry-forever", TRUE);
  for (guint i = 0; exposes != NULL && exposes[i] != NULL; i++)
    if (!parse_expose (exposes[i], keyfile, &error))
      return zlt_cli_fail (EXIT_USAGE, "%s", error->message);

  loader = zlt_daemon_load_plugins (&error);
  if (loader == NULL)
    return zlt_cli_fail (EXIT_CONFIG, "%s", error->message);
  if (check)
    return check_config (keyfile, config_path, loader, "agent", ZLT_CLIENT_CONFIG_GROUP);
  base_dir = config_dir (config_path);
  config = zlt_client_config_new_from_keyfile_full (keyfile, base_dir, &error);
  if (config == NULL)
    return zlt_cli_fail (EXIT_CONFIG, "%s", error->message);
  zlt_raise_fd_limit ();
  agent = zlt_agent_new (config, loader, &error);
  if (agent == NULL)
    return zlt_cli_fail (EXIT_CONFIG, "%s", error->message);
  uri = g_uri_parse (zlt_client_config_get_server_url (config), G_URI_FLAGS_NONE, NULL);
  g_signal_connect (agent, "registered", G_CALLBACK (on_agent_registered),
                    (gpointer) (uri ? g_uri_get_host (uri) : "server"));
  if (!zlt_client_config_get_retry_forever (config))
    {
      g_signal_connect (agent, "notify::fatal", G_CALLBACK (on_agent_fatal), NULL);
      g_signal_connect (agent, "notify::last-error", G_CALLBACK (on_agent_fatal), NULL);
    }
  zlt_agent_start (agent);
  zlt_cli_run_main_loop ();
  /* the goodbye (Disconnect) must reach the server before we exit: then it holds
   * nothing for a resume and a restarted agent gets its ports at once */
  zlt_agent_stop (agent);
  drain_main_context (500);
  return zlt_cli_exit_code;
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
    zlt_cli_exit_code
        = zlt_cli_fail (EXIT_FAILURE_RUNTIME, "%s", zlt_session_get_last_error (session));
  g_main_loop_quit (zlt_cli_main_loop);
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
  zlt_cli_fail (EXIT_FAILURE_RUNTIME, "%s", error);
  zlt_cli_exit_code = EXIT_FAILURE_RUNTIME;
  g_main_loop_quit (zlt_cli_main_loop);
}

int
zlt_cli_access (int argc, char **argv)
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
  GOptionEntry entries[] = {
    { "config", 'c', 0, G_OPTION_ARG_FILENAME, &config_path,
      N_ ("Read the [agent] group of FILE (server, token, TLS)"), N_ ("FILE") },
    { "server", 's', 0, G_OPTION_ARG_STRING, &server_url, N_ ("Server URL (ws:// or wss://)"),
      N_ ("URL") },
    { "token-file", 't', 0, G_OPTION_ARG_FILENAME, &token_file,
      N_ ("Read the token from FILE (mode 0600)"), N_ ("FILE") },
    { "token-env", 0, 0, G_OPTION_ARG_STRING, &token_env,
      N_ ("Read the token from environment variable VAR"), N_ ("VAR") },
    { "local-port", 'l', 0, G_OPTION_ARG_INT, &local_port,
      N_ ("Listen on this port of 127.0.0.1 and ::1 (default: any free port)"), N_ ("PORT") },
    { "ttl", 0, 0, G_OPTION_ARG_STRING, &ttl_text,
      N_ ("End the session after this long (90s, 30m, 2h, 1d; default 1h)"), N_ ("DURATION") },
    { "ca-file", 0, 0, G_OPTION_ARG_FILENAME, &ca_file, N_ ("Trust the CAs in FILE for wss://"),
      N_ ("FILE") },
    { "pin-sha256", 0, 0, G_OPTION_ARG_STRING, &pin,
      N_ ("Trust only the server certificate with this SHA-256 (of its DER form, as "
          "openssl prints it, colons optional)"),
      N_ ("HEX") },
    { "insecure-skip-verify", 0, 0, G_OPTION_ARG_NONE, &insecure_tls,
      N_ ("Do not verify the server certificate (dangerous)"), NULL },
    { "verbose", 'v', 0, G_OPTION_ARG_NONE, &zlt_cli_verbose, N_ ("Show debug messages"), NULL },
    { NULL }
  };
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
    return zlt_cli_fail (EXIT_USAGE, "%s", error->message);
  if (argc != 2)
    return zlt_cli_fail (EXIT_USAGE, _ ("access: expected one SERVICE (see --help)"));
  if (!zlt_service_name_is_valid (argv[1]))
    return zlt_cli_fail (EXIT_USAGE, _ ("“%s” is not a valid service name"), argv[1]);
  if (local_port < 0 || local_port > G_MAXUINT16)
    return zlt_cli_fail (EXIT_USAGE, _ ("--local-port must be from 0 to 65535"));
  if (ttl_text != NULL && !zlt_parse_duration (ttl_text, &ttl, &error))
    return zlt_cli_fail (EXIT_USAGE, "--ttl: %s", error->message);
  if (ttl == 0)
    return zlt_cli_fail (EXIT_USAGE, _ ("--ttl must be longer than 0 seconds"));

  keyfile = load_keyfile (config_path, &error);
  if (keyfile == NULL)
    return zlt_cli_fail (EXIT_CONFIG, "%s", error->message);
  set_agent_connection (keyfile, server_url, token_file, token_env, ca_file, pin, insecure_tls);
  base_dir = config_dir (config_path);
  config = zlt_client_config_new_from_keyfile_full (keyfile, base_dir, &error);
  if (config == NULL)
    return zlt_cli_fail (EXIT_CONFIG, "%s", error->message);
  loader = zlt_daemon_load_plugins (&error);
  if (loader == NULL)
    return zlt_cli_fail (EXIT_CONFIG, "%s", error->message);
  manager = zlt_access_manager_new (config, loader, &error);
  if (manager == NULL)
    return zlt_cli_fail (EXIT_CONFIG, "%s", error->message);

  g_signal_connect (zlt_access_manager_get_agent (manager), "notify::last-error",
                    G_CALLBACK (on_access_agent_error), NULL);
  session = zlt_access_manager_start_session (manager, argv[1], (guint16) local_port, ttl, &error);
  if (session == NULL)
    return zlt_cli_fail (EXIT_FAILURE_RUNTIME, "%s", error->message);
  g_signal_connect (manager, "session-removed", G_CALLBACK (on_access_session_removed), NULL);
  g_signal_connect (manager, "session-ready", G_CALLBACK (on_access_session_ready), NULL);

  zlt_cli_run_main_loop ();
  g_signal_handlers_disconnect_by_func (manager, on_access_session_removed, NULL);
  g_signal_handlers_disconnect_by_func (manager, on_access_session_ready, NULL);
  g_signal_handlers_disconnect_by_func (zlt_access_manager_get_agent (manager),
                                        on_access_agent_error, NULL);
  zlt_access_manager_stop_session (manager, session, NULL);
  return zlt_cli_exit_code;
}

/* ---- token new ---- */

int
zlt_cli_token (int argc, char **argv)
{
  g_autofree char *name = NULL;
  g_autofree char *services = NULL;
  g_autofree char *reach = NULL;
  g_autofree char *owns = NULL;
  g_autofree char *expires = NULL;
  g_autofree char *output = NULL;
  GOptionEntry entries[] = {
    { "name", 'n', 0, G_OPTION_ARG_STRING, &name, N_ ("A name for logs and status"), N_ ("NAME") },
    { "register", 0, 0, G_OPTION_ARG_STRING, &services,
      N_ ("Service names the token may register: names, PREFIX* or * (default: any "
          "name no other token owns)"),
      N_ ("A,B,…") },
    /* the old name of --register */
    { "services", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_STRING, &services, NULL, NULL },
    { "reach", 0, 0, G_OPTION_ARG_STRING, &reach,
      N_ ("Services the token may reach through access sessions (default: none)"), N_ ("A,B,…") },
    { "owns", 0, 0, G_OPTION_ARG_STRING, &owns,
      N_ ("Names reserved to this token: no other token may register them"), N_ ("A,B,…") },
    { "expires", 0, 0, G_OPTION_ARG_STRING, &expires, N_ ("Expiry, e.g. 2027-01-01T00:00:00Z"),
      N_ ("WHEN") },
    { "output", 'o', 0, G_OPTION_ARG_FILENAME, &output,
      N_ ("Write the token to FILE (mode 0600) instead of printing it"), N_ ("FILE") },
    { NULL }
  };
  g_autoptr (GOptionContext) context = g_option_context_new (_ ("new — make a token"));
  g_autoptr (GError) error = NULL;
  guint8 raw[32];
  g_autofree char *secret = NULL;
  g_autofree char *token = NULL;
  g_autofree char *hash = NULL;
  g_autoptr (GString) line = NULL;

  g_option_context_add_main_entries (context, entries, GETTEXT_PACKAGE);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    return zlt_cli_fail (EXIT_USAGE, "%s", error->message);
  if (argc != 2 || !g_str_equal (argv[1], "new"))
    return zlt_cli_fail (EXIT_USAGE,
                         _ ("usage: zlayer-tunnel token new [--name N] [--register A,B] "
                            "[--reach A,B] [--owns A,B] [--expires WHEN] [--output FILE]"));
  if (name != NULL && (strchr (name, ' ') || strchr (name, '\t')))
    return zlt_cli_fail (EXIT_USAGE, _ ("--name must not contain spaces"));
  {
    const char *lists[][2]
        = { { "--register", services }, { "--reach", reach }, { "--owns", owns } };

    for (guint l = 0; l < G_N_ELEMENTS (lists); l++)
      {
        g_auto (GStrv) list = NULL;

        if (lists[l][1] == NULL)
          continue;
        list = g_strsplit (lists[l][1], ",", -1);
        for (guint i = 0; list[i] != NULL; i++)
          {
            /* the token file's own patterns: a name, PREFIX* or * */
            g_autofree char *stem = g_str_has_suffix (list[i], "*")
                                        ? g_strndup (list[i], strlen (list[i]) - 1)
                                        : g_strdup (list[i]);

            if (*stem != '\0' && !zlt_service_name_is_valid (stem))
              return zlt_cli_fail (EXIT_USAGE, _ ("%s: “%s” is not a service name or pattern"),
                                   lists[l][0], list[i]);
          }
      }
  }
  if (expires != NULL)
    {
      g_autoptr (GDateTime) when = g_date_time_new_from_iso8601 (expires, NULL);
      if (when == NULL)
        return zlt_cli_fail (EXIT_USAGE,
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
    g_string_append_printf (line, " register=%s", services);
  if (reach != NULL)
    g_string_append_printf (line, " reach=%s", reach);
  if (owns != NULL)
    g_string_append_printf (line, " owns=%s", owns);
  if (expires != NULL)
    g_string_append_printf (line, " expires=%s", expires);

  if (output != NULL)
    {
      g_autofree char *contents = g_strdup_printf ("%s\n", token);
      if (!g_file_set_contents_full (output, contents, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600,
                                     &error))
        return zlt_cli_fail (EXIT_FAILURE_RUNTIME, "%s", error->message);
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

int
zlt_cli_demo (int argc, char **argv)
{
  GOptionEntry entries[] = { { "verbose", 'v', 0, G_OPTION_ARG_NONE, &zlt_cli_verbose,
                               N_ ("Show debug messages"), NULL },
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
    return zlt_cli_fail (EXIT_USAGE, "%s", error->message);

  /* a fresh token, stored as the server stores it: only its hash */
  dir = g_dir_make_tmp ("zlayer-demo-XXXXXX", &error);
  if (dir == NULL)
    return zlt_cli_fail (EXIT_FAILURE_RUNTIME, "%s", error->message);
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
    return zlt_cli_fail (EXIT_FAILURE_RUNTIME, "%s", error->message);

  /* the local service: a tiny web server on a free loopback port */
  web = g_threaded_socket_service_new (2);
  if (!g_socket_listener_add_address (G_SOCKET_LISTENER (web), any, G_SOCKET_TYPE_STREAM,
                                      G_SOCKET_PROTOCOL_TCP, NULL, &web_addr, &error))
    return zlt_cli_fail (EXIT_FAILURE_RUNTIME, "%s", error->message);
  web_port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (web_addr));
  g_signal_connect (web, "run", G_CALLBACK (demo_web_run), NULL);
  g_socket_service_start (web);

  g_key_file_set_string (server_kf, "server", "listen", "127.0.0.1:0");
  g_key_file_set_string (server_kf, "server", "public-bind-address", "127.0.0.1");
  g_key_file_set_string (server_kf, "server", "validator", "token-file");
  g_key_file_set_string (server_kf, "validator:token-file", "path", hashes_path);
  server_config = zlt_server_config_new_from_keyfile (server_kf, &error);
  if (server_config == NULL)
    return zlt_cli_fail (EXIT_CONFIG, "%s", error->message);
  loader = zlt_daemon_load_plugins (&error);
  if (loader == NULL)
    return zlt_cli_fail (EXIT_CONFIG, "%s", error->message);
  server = zlt_server_new (server_config, loader, &error);
  if (server == NULL || !zlt_server_start (server, &error))
    return zlt_cli_fail (EXIT_FAILURE_RUNTIME, "%s", error->message);

  url = g_strdup_printf ("ws://127.0.0.1:%u/tunnel/v1", zlt_server_get_port (server));
  g_key_file_set_string (agent_kf, "agent", "server", url);
  g_key_file_set_string (agent_kf, "agent", "token-file", token_path);
  g_key_file_set_string (agent_kf, "service:web", "protocol", "tcp");
  g_key_file_set_integer (agent_kf, "service:web", "local-port", web_port);
  agent_config = zlt_client_config_new_from_keyfile (agent_kf, &error);
  if (agent_config == NULL)
    return zlt_cli_fail (EXIT_CONFIG, "%s", error->message);
  agent = zlt_agent_new (agent_config, loader, &error);
  if (agent == NULL)
    return zlt_cli_fail (EXIT_CONFIG, "%s", error->message);
  zlt_agent_start (agent);

  deadline = g_timeout_source_new_seconds (15);
  g_source_set_callback (deadline, demo_timeout, &timed_out, NULL);
  g_source_attach (deadline, NULL);
  service = zlt_tunnel_lookup_service (zlt_agent_get_tunnel (agent), "web");
  while (!timed_out && zlt_service_get_assigned_port (service) == 0)
    g_main_context_iteration (NULL, TRUE);
  if (timed_out)
    return zlt_cli_fail (EXIT_FAILURE_RUNTIME, _ ("the agent did not register within 15 s: %s"),
                         zlt_agent_get_last_error (agent) ? zlt_agent_get_last_error (agent) : "?");

  g_print (_ ("server   ws://127.0.0.1:%u/tunnel/v1\n"), zlt_server_get_port (server));
  g_print (_ ("service  web → 127.0.0.1:%u, public port %u\n"), web_port,
           zlt_service_get_assigned_port (service));
  fetch.port = zlt_service_get_assigned_port (service);
  thread = g_thread_new ("demo-fetch", demo_fetch_thread, &fetch);
  while (!timed_out && !g_atomic_int_get (&fetch.done))
    g_main_context_iteration (NULL, TRUE);
  if (!g_atomic_int_get (&fetch.done))
    return zlt_cli_fail (EXIT_FAILURE_RUNTIME, _ ("no answer through the tunnel within 15 s"));
  g_thread_join (thread);
  g_source_destroy (deadline);
  g_source_unref (deadline);
  g_print (_ ("GET through the tunnel answered:\n%s"), fetch.response);
  zlt_cli_exit_code
      = strstr (fetch.response, "hello through the zlayer tunnel") ? EXIT_OK : EXIT_FAILURE_RUNTIME;
  g_free (fetch.response);
  g_print (zlt_cli_exit_code == EXIT_OK ? _ ("the tunnel works\n") : _ ("unexpected answer\n"));

  zlt_agent_stop (agent);
  zlt_server_stop (server);
  g_socket_service_stop (web);
  g_unlink (token_path);
  g_unlink (hashes_path);
  g_rmdir (dir);
  memset (token, 0, strlen (token));
  return zlt_cli_exit_code;
}
