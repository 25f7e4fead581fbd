/* zlt-cli.h: what the parts of the zlayer-tunnel command share.
 *
 * zlt-cli.c dispatches; zlt-cli-foreground.c runs what needs no daemon (server, agent,
 * access, token, demo); zlt-cli-daemon.c talks to zlayer-tunneld over D-Bus;
 * zlt-cli-output.c prints. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Exit codes a script can tell apart. */
enum
{
  EXIT_OK = 0,
  EXIT_FAILURE_RUNTIME = 1,
  EXIT_USAGE = 2,
  EXIT_CONFIG = 3,
  EXIT_NO_DAEMON = 4,
};

/* -v: our own debug messages are shown */
extern gboolean zlt_cli_verbose;
/* the loop foreground commands run until SIGINT or SIGTERM */
extern GMainLoop *zlt_cli_main_loop;
/* what a foreground command exits with once its loop ends */
extern int zlt_cli_exit_code;

/* Runs zlt_cli_main_loop until it is quit, or SIGINT/SIGTERM arrives. */
void zlt_cli_run_main_loop (void);
/* Prints "zlayer-tunnel: MESSAGE" on stderr; returns @code. */
int zlt_cli_fail (int code, const char *format, ...) G_GNUC_PRINTF (2, 3);

/* Foreground commands (zlt-cli-foreground.c). Each gets the command's name as argv[0]. */
int zlt_cli_server (int argc, char **argv);
int zlt_cli_agent (int argc, char **argv);
int zlt_cli_access (int argc, char **argv);
int zlt_cli_token (int argc, char **argv);
int zlt_cli_demo (int argc, char **argv);

/* Commands for a running zlayer-tunneld (zlt-cli-daemon.c). */
int zlt_cli_status (int argc, char **argv);
int zlt_cli_tunnels (int argc, char **argv);
int zlt_cli_services (int argc, char **argv);
int zlt_cli_sessions (int argc, char **argv);
int zlt_cli_expose (int argc, char **argv);
int zlt_cli_unexpose (int argc, char **argv);
int zlt_cli_reload (int argc, char **argv);
int zlt_cli_nodes (int argc, char **argv);
int zlt_cli_node (int argc, char **argv);
int zlt_cli_session (int argc, char **argv);
int zlt_cli_disconnect (int argc, char **argv);
int zlt_cli_monitor (int argc, char **argv);

G_END_DECLS
