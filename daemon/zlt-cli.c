/* zlt-cli.c: zlayer-tunnel, the command-line tool: finds the command and runs it.
 *
 * Foreground modes need no daemon: `server`, `agent`, `access`, `token new` and `demo`
 * (zlt-cli-foreground.c). The daemon commands (`status`, `tunnels`, `services`,
 * `sessions`, `expose`, `unexpose`, `reload`) talk to zlayer-tunneld over D-Bus
 * (org.zlayer.Tunnel1, the system bus unless --session or ZLT_BUS=session) and print
 * tables, or JSON with --json (zlt-cli-daemon.c). Tokens never appear on the command
 * line: only files and environment variables. */
#include "config.h"

#include <glib-unix.h>
#include <glib/gi18n.h>
#include <locale.h>
#include <stdio.h>

#include "zlayer-tunnel.h"
#include "zlt-cli.h"
#include "zlt-util.h" /* zlt_log_domain_is_ours */

gboolean zlt_cli_verbose;
GMainLoop *zlt_cli_main_loop;
int zlt_cli_exit_code;

static void
log_handler (const char *domain, GLogLevelFlags level, const char *message, gpointer data)
{
  g_autoptr (GDateTime) now = NULL;
  g_autofree char *stamp = NULL;
  const char *tag = "";

  /* --verbose: our own debug messages, not every library's. Decided before anything
   * else: dropped lines are the common case under load, and the local time zone is
   * read afresh for every timestamp */
  if ((level & G_LOG_LEVEL_DEBUG) && !(zlt_cli_verbose && zlt_log_domain_is_ours (domain)))
    return;
  now = g_date_time_new_now_local ();
  stamp = g_date_time_format (now, "%H:%M:%S");
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
  g_main_loop_quit (zlt_cli_main_loop);
  return G_SOURCE_CONTINUE;
}

void
zlt_cli_run_main_loop (void)
{
  guint sigint = g_unix_signal_add (SIGINT, on_quit_signal, NULL);
  guint sigterm = g_unix_signal_add (SIGTERM, on_quit_signal, NULL);

  g_main_loop_run (zlt_cli_main_loop);
  g_source_remove (sigint);
  g_source_remove (sigterm);
}

int
zlt_cli_fail (int code, const char *format, ...)
{
  va_list args;
  g_autofree char *text = NULL;

  va_start (args, format);
  text = g_strdup_vprintf (format, args);
  va_end (args);
  fprintf (stderr, "zlayer-tunnel: %s\n", text);
  return code;
}

typedef struct
{
  const char *name;
  int (*run) (int argc, char **argv);
} Command;

static const Command commands[] = {
  { "server", zlt_cli_server },     { "agent", zlt_cli_agent },
  { "access", zlt_cli_access },     { "token", zlt_cli_token },
  { "demo", zlt_cli_demo },         { "status", zlt_cli_status },
  { "tunnels", zlt_cli_tunnels },   { "services", zlt_cli_services },
  { "sessions", zlt_cli_sessions }, { "expose", zlt_cli_expose },
  { "unexpose", zlt_cli_unexpose }, { "reload", zlt_cli_reload },
  { "nodes", zlt_cli_nodes },       { "node", zlt_cli_node },
  { "session", zlt_cli_session },   { "disconnect", zlt_cli_disconnect },
  { "monitor", zlt_cli_monitor },
};

static const char *
usage_text (void)
{
  return _ ("usage: zlayer-tunnel COMMAND [OPTIONS]\n"
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
            "  nodes      list the node tunnels\n"
            "  node       add NAME … or remove NAME: a node tunnel at run time\n"
            "  session    start SERVICE or stop ID: an access session through the daemon\n"
            "  disconnect end a tunnel of the daemon's server\n"
            "  monitor    print objects and their changes as they happen\n"
            "\n"
            "“zlayer-tunnel COMMAND --help” shows a command's options; --version the version.\n");
}

int
main (int argc, char **argv)
{
  const Command *command = NULL;
  int rc;

  setlocale (LC_ALL, "");
  zlt_init (); /* binds the catalog */
  textdomain (GETTEXT_PACKAGE);
  g_log_set_default_handler (log_handler, NULL);

  /* asked for, help goes to stdout; a usage error's goes to stderr */
  if (argc >= 2 && (g_str_equal (argv[1], "--help") || g_str_equal (argv[1], "-h")))
    {
      g_print ("%s", usage_text ());
      return EXIT_OK;
    }
  if (argc < 2)
    {
      g_printerr ("%s", usage_text ());
      return EXIT_USAGE;
    }
  if (g_str_equal (argv[1], "--version"))
    {
      g_print ("zlayer-tunnel %s\n", PACKAGE_VERSION);
      return EXIT_OK;
    }
  for (gsize i = 0; i < G_N_ELEMENTS (commands) && command == NULL; i++)
    if (g_str_equal (argv[1], commands[i].name))
      command = &commands[i];
  if (command == NULL)
    {
      g_printerr ("%s", usage_text ());
      return zlt_cli_fail (EXIT_USAGE, _ ("unknown command “%s”"), argv[1]);
    }
  /* "Usage: zlayer-tunnel node add [OPTION…] NAME" in every command's --help (GOption
   * names the program by it); a command's verb is part of the name */
  {
    static const char *const verbs[] = { "add", "remove", "start", "stop", "new", NULL };
    g_autofree char *prgname = argc >= 3 && g_strv_contains (verbs, argv[2])
                                   ? g_strdup_printf ("zlayer-tunnel %s %s", argv[1], argv[2])
                                   : g_strdup_printf ("zlayer-tunnel %s", argv[1]);

    g_set_prgname (prgname);
  }
  zlt_cli_main_loop = g_main_loop_new (NULL, FALSE);
  /* each command parses its own options; argv[1] stands in for the program name */
  rc = command->run (argc - 1, argv + 1);
  g_main_loop_unref (zlt_cli_main_loop);
  return rc;
}
