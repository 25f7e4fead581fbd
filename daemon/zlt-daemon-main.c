/* zlt-daemon-main.c: zlayer-tunneld, the D-Bus service: main().
 *
 * options → logging → config and plugins → signals (g_unix_signal_add) → bus name →
 * main loop. The roles start once the bus connection is up, and the objects are
 * exported before the name is acquired, so whoever sees the name sees the objects.
 * SIGHUP reloads the config, SIGTERM and SIGINT stop the roles, close every connection
 * and exit 0. */
#include "config.h"

#include <glib-unix.h>
#include <glib/gi18n.h>
#include <locale.h>
#include <stdio.h>

#include "zlayer-tunnel.h"
#include "zlt-daemon.h"
#include "zlt-daemon-error.h"
#include "zlt-daemon-exporter.h"
#include "zlt-daemon-metrics.h"
#include "zlt-util.h" /* zlt_log_domain_is_ours */

/* Exit codes, as the CLI's. */
enum
{
  EXIT_OK = 0,
  EXIT_FAILURE_RUNTIME = 1,
  EXIT_USAGE = 2,
  EXIT_CONFIG = 3,
};

/* How long a stop may take to close connections before the process exits anyway. */
#define SHUTDOWN_GRACE_MS 2000

typedef struct
{
  GMainLoop *loop;
  ZltDaemon *daemon;
  ZltDaemonExporter *exporter;
  ZltDaemonMetrics *metrics; /* NULL unless [daemon] metrics-listen */
  gboolean session_bus;
  int exit_code;
} Context;

static gboolean opt_verbose;

/* stderr is the journal (systemd's StandardError=journal): then every line goes to it
 * structured, priority and fields (MESSAGE_ID, TUNNEL_ID…) kept */
static gboolean log_to_journal;

static GLogWriterOutput
log_writer (GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer data)
{
  const char *domain = NULL, *message = NULL, *tag = "";

  for (gsize i = 0; i < n_fields; i++)
    {
      if (g_strcmp0 (fields[i].key, "GLIB_DOMAIN") == 0 && fields[i].length < 0)
        domain = fields[i].value;
      else if (g_strcmp0 (fields[i].key, "MESSAGE") == 0 && fields[i].length < 0)
        message = fields[i].value;
    }
  /* --verbose: our own debug messages, not every library's */
  if ((level & G_LOG_LEVEL_DEBUG) && !(opt_verbose && zlt_log_domain_is_ours (domain)))
    return G_LOG_WRITER_HANDLED;
  /* a tunnel's failures are GLib messages that ask for warning (zlt_log_event()) */
  if (zlt_log_record_priority (level, fields, n_fields) == 4 && !(level & G_LOG_LEVEL_WARNING))
    level = (level & ~G_LOG_LEVEL_MASK) | G_LOG_LEVEL_WARNING;
  if (log_to_journal
      && g_log_writer_journald (level, fields, n_fields, data) == G_LOG_WRITER_HANDLED)
    return G_LOG_WRITER_HANDLED;
  if (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL))
    tag = "error: ";
  else if (level & G_LOG_LEVEL_WARNING)
    tag = "warning: ";
  /* a terminal or a pipe: the journal would add the time and the process itself */
  fprintf (stderr, "%s%s\n", tag, message != NULL ? message : "");
  fflush (stderr);
  return G_LOG_WRITER_HANDLED;
}

static void
quit (Context *ctx, int exit_code)
{
  if (exit_code > ctx->exit_code)
    ctx->exit_code = exit_code;
  g_main_loop_quit (ctx->loop);
}

static gboolean
on_sigterm (gpointer user_data)
{
  g_message ("stopping");
  quit (user_data, EXIT_OK);
  return G_SOURCE_CONTINUE;
}

static gboolean
on_sighup (gpointer user_data)
{
  Context *ctx = user_data;
  g_autoptr (GError) error = NULL;

  if (!zlt_daemon_reload (ctx->daemon, &error))
    g_message ("reload failed, nothing changed: %s", error->message);
  return G_SOURCE_CONTINUE;
}

static void
on_bus_acquired (GDBusConnection *connection, const char *name, gpointer user_data)
{
  Context *ctx = user_data;
  g_autoptr (GError) error = NULL;

  if (!zlt_daemon_start (ctx->daemon, &error))
    {
      g_printerr ("zlayer-tunneld: %s\n", error->message);
      quit (ctx, EXIT_FAILURE_RUNTIME);
      return;
    }
  if (zlt_daemon_get_metrics_listen (ctx->daemon) != NULL)
    {
      ctx->metrics = zlt_daemon_metrics_new (ctx->daemon,
                                             zlt_daemon_get_metrics_listen (ctx->daemon), &error);
      if (ctx->metrics == NULL)
        {
          g_printerr ("zlayer-tunneld: %s\n", error->message);
          quit (ctx, EXIT_FAILURE_RUNTIME);
          return;
        }
      g_message ("metrics on http://%s/metrics", zlt_daemon_metrics_get_address (ctx->metrics));
    }
  ctx->exporter = zlt_daemon_exporter_new (ctx->daemon, connection, ctx->session_bus, &error);
  if (ctx->exporter == NULL)
    {
      g_printerr ("zlayer-tunneld: %s\n", error->message);
      quit (ctx, EXIT_FAILURE_RUNTIME);
    }
}

static void
on_name_acquired (GDBusConnection *connection, const char *name, gpointer user_data)
{
  g_debug ("owning %s", name);
}

static void
on_name_lost (GDBusConnection *connection, const char *name, gpointer user_data)
{
  Context *ctx = user_data;

  g_autoptr (GVariant) reply = NULL;
  gboolean owned = FALSE;

  if (connection == NULL)
    {
      g_printerr ("zlayer-tunneld: %s\n", _ ("cannot connect to the bus"));
      quit (ctx, EXIT_FAILURE_RUNTIME);
      return;
    }
  /* someone else has it, or nobody: then the bus itself said no, and on the system bus
   * that is the policy file, most often installed where the bus does not read it */
  reply = g_dbus_connection_call_sync (connection, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                       "org.freedesktop.DBus", "NameHasOwner",
                                       g_variant_new ("(s)", name), G_VARIANT_TYPE ("(b)"),
                                       G_DBUS_CALL_FLAGS_NONE, 2000, NULL, NULL);
  if (reply != NULL)
    g_variant_get (reply, "(b)", &owned);
  if (owned)
    g_printerr (_ ("zlayer-tunneld: %s is owned by another process (another zlayer-tunneld? "
                   "--replace takes it over)\n"),
                name);
  else if (!ctx->session_bus)
    g_printerr (_ ("zlayer-tunneld: the system bus would not give us %s: its policy "
                   "org.zlayer.Tunnel1.conf must be in /usr/share/dbus-1/system.d or "
                   "/etc/dbus-1/system.d (this build installs it to %s; reload the bus after "
                   "installing), and only root may own the name\n"),
                name, ZLT_DBUS_POLICY_DIR);
  else
    g_printerr (_ ("zlayer-tunneld: the bus would not give us %s\n"), name);
  quit (ctx, EXIT_FAILURE_RUNTIME);
}

static gboolean
shutdown_tick (gpointer user_data)
{
  return G_SOURCE_CONTINUE;
}

/* Lets the stopped roles finish closing their connections, for a little while. */
static void
drain (ZltDaemon *daemon)
{
  gint64 deadline = g_get_monotonic_time () + SHUTDOWN_GRACE_MS * G_TIME_SPAN_MILLISECOND;
  GSource *tick = g_timeout_source_new (20);

  g_source_set_callback (tick, shutdown_tick, NULL, NULL);
  g_source_attach (tick, NULL);
  while (g_get_monotonic_time () < deadline
         && (!zlt_daemon_is_idle (daemon) || g_main_context_pending (NULL)))
    g_main_context_iteration (NULL, TRUE);
  g_source_destroy (tick);
  g_source_unref (tick);
  /* whatever the last turn scheduled (closes, idle callbacks), within reason */
  for (guint i = 0; i < 1000 && g_main_context_iteration (NULL, FALSE); i++)
    ;
}

int
main (int argc, char **argv)
{
  g_autofree char *config_path = NULL;
  gboolean session_bus = FALSE;
  gboolean replace = FALSE;
  gboolean version = FALSE;
  gboolean check = FALSE;
  GOptionEntry entries[]
      = { { "config", 'c', 0, G_OPTION_ARG_FILENAME, &config_path,
            N_ ("Read FILE instead of the default config"), N_ ("FILE") },
          { "session", 0, 0, G_OPTION_ARG_NONE, &session_bus,
            N_ ("Use the session bus instead of the system bus (desktops, tests)"), NULL },
          { "replace", 'r', 0, G_OPTION_ARG_NONE, &replace, N_ ("Replace a running daemon"), NULL },
          { "check", 0, 0, G_OPTION_ARG_NONE, &check,
            N_ ("Check the config as a start would, start nothing, and exit (3 if invalid)"),
            NULL },
          { "verbose", 'v', 0, G_OPTION_ARG_NONE, &opt_verbose, N_ ("Show debug messages"), NULL },
          { "version", 0, 0, G_OPTION_ARG_NONE, &version, N_ ("Show the version and exit"), NULL },
          { NULL } };
  g_autoptr (GOptionContext) options = NULL;
  g_autoptr (GError) error = NULL;
  Context ctx = { 0 };
  guint sigterm_id, sigint_id, sighup_id, owner_id;

  setlocale (LC_ALL, "");
  zlt_init (); /* binds the catalog (ZLT_LOCALEDIR in the build tree) before --help */
  textdomain (GETTEXT_PACKAGE);

  options = g_option_context_new (_ ("— zlayer-tunnel daemon"));
  g_option_context_add_main_entries (options, entries, GETTEXT_PACKAGE);
  {
    g_autofree char *summary
        = g_strdup_printf (_ ("Default config: %s"), ZLT_DAEMON_DEFAULT_CONFIG);
    g_option_context_set_summary (options, summary);
  }
  if (!g_option_context_parse (options, &argc, &argv, &error))
    {
      g_printerr ("zlayer-tunneld: %s\n", error->message);
      return EXIT_USAGE;
    }
  if (version)
    {
      g_print ("zlayer-tunneld %s\n", PACKAGE_VERSION);
      return EXIT_OK;
    }
  if (argc > 1)
    {
      g_printerr ("zlayer-tunneld: %s\n", _ ("no arguments expected, only options"));
      return EXIT_USAGE;
    }

  /* before anything logs: GLib takes one writer, once */
  log_to_journal = g_log_writer_is_journald (fileno (stderr));
  g_log_set_writer_func (log_writer, NULL, NULL);
  if (config_path == NULL)
    config_path = g_strdup (ZLT_DAEMON_DEFAULT_CONFIG);
  if (check)
    {
      if (!zlt_daemon_check_config (config_path, NULL, &error))
        {
          g_printerr ("zlayer-tunneld: %s\n", error->message);
          return EXIT_CONFIG;
        }
      g_print (_ ("%s: configuration is valid\n"), config_path);
      return EXIT_OK;
    }
  zlt_raise_fd_limit ();
  zlt_dbus_error_register ();

  ctx.daemon = zlt_daemon_new (config_path, &error);
  if (ctx.daemon == NULL)
    {
      g_printerr ("zlayer-tunneld: %s\n", error->message);
      return EXIT_CONFIG;
    }
  ctx.loop = g_main_loop_new (NULL, FALSE);
  ctx.session_bus = session_bus;

  sigterm_id = g_unix_signal_add (SIGTERM, on_sigterm, &ctx);
  sigint_id = g_unix_signal_add (SIGINT, on_sigterm, &ctx);
  sighup_id = g_unix_signal_add (SIGHUP, on_sighup, &ctx);

  owner_id = g_bus_own_name (session_bus ? G_BUS_TYPE_SESSION : G_BUS_TYPE_SYSTEM, ZLT_DBUS_NAME,
                             G_BUS_NAME_OWNER_FLAGS_ALLOW_REPLACEMENT
                                 | (replace ? G_BUS_NAME_OWNER_FLAGS_REPLACE : 0),
                             on_bus_acquired, on_name_acquired, on_name_lost, &ctx, NULL);
  g_main_loop_run (ctx.loop);

  /* objects off the bus first, so nobody watches the teardown, then the roles */
  if (ctx.exporter != NULL)
    zlt_daemon_exporter_unexport (ctx.exporter);
  g_bus_unown_name (owner_id);
  zlt_daemon_stop (ctx.daemon);
  drain (ctx.daemon);
  g_clear_object (&ctx.exporter);
  g_clear_object (&ctx.metrics);
  g_clear_object (&ctx.daemon);

  g_source_remove (sigterm_id);
  g_source_remove (sigint_id);
  g_source_remove (sighup_id);
  g_main_loop_unref (ctx.loop);
  if (ctx.exit_code == EXIT_OK)
    g_message ("stopped");
  return ctx.exit_code;
}
