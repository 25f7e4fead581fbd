/* zlt-daemon.h: the roles zlayer-tunneld runs, built from one config file */
#pragma once

#include "zlayer-tunnel.h"

G_BEGIN_DECLS

/* [daemon] admin-group=NAME: members may call the mutating D-Bus methods;
 * [daemon] node-name=NAME: this node in [node:*] definitions (default: the host name) */
#define ZLT_DAEMON_CONFIG_GROUP "daemon"
#define ZLT_DAEMON_DEFAULT_CONFIG ZLT_SYSCONFDIR "/zlayer-tunnel.conf"

#define ZLT_TYPE_DAEMON (zlt_daemon_get_type ())
G_DECLARE_FINAL_TYPE (ZltDaemon, zlt_daemon, ZLT, DAEMON, GObject)

/* Reads @config_path, loads the plugins and builds the server role (a [server] group)
 * and the agent role (an [agent] group); starts nothing. Fails with
 * %ZLT_ERROR_INVALID_CONFIG (or the plugin's error) naming the group and key. */
ZltDaemon *zlt_daemon_new (const char *config_path, GError **error);

/* The whole file checked as zlt_daemon_new() reads it (every group known, each role
 * built, the validator configured, node tunnels activated) with nothing started: what
 * passes is what the daemon accepts. `zlayer-tunneld --check`, the CLI's `--check` and
 * zlt_daemon_reload() use it. @loader: the plugins, or %NULL to load them. */
gboolean zlt_daemon_check_config (const char *config_path, ZltPluginLoader *loader, GError **error);
/* The same for a key file in hand (a config file with command-line options on top):
 * @config_path is where it was read (relative paths start at its directory), or %NULL. */
gboolean zlt_daemon_check_keyfile (GKeyFile *keyfile, const char *config_path,
                                   ZltPluginLoader *loader, GError **error);

/* Whether @keyfile defines node tunnels ([node:NAME] groups), which only the daemon runs. */
gboolean zlt_daemon_keyfile_has_node_groups (GKeyFile *keyfile);

/* The plugins from the plugin directory; those skipped are logged with the reason. */
ZltPluginLoader *zlt_daemon_load_plugins (GError **error);

/* The server first (it may serve our own agent), then the agent. */
gboolean zlt_daemon_start (ZltDaemon *self, GError **error);
/* Disconnects every agent, closes every port and the agent's control channel. */
void zlt_daemon_stop (ZltDaemon *self);
/* Whether stopped roles still have connections closing. */
gboolean zlt_daemon_is_idle (ZltDaemon *self);

/* Re-reads the config file: [service:*] groups are applied to the running agent
 * (removed ones unexposed, new ones exposed, changed ones both) without dropping its
 * control channel; [daemon] applies at once; the validator re-reads its tokens. Changes
 * that need a restart are logged. An invalid file changes nothing. */
gboolean zlt_daemon_reload (ZltDaemon *self, GError **error);

const char *zlt_daemon_get_config_path (ZltDaemon *self);
/* nullable: [daemon] metrics-listen, "HOST:PORT" of the Prometheus endpoint */
const char *zlt_daemon_get_metrics_listen (ZltDaemon *self);
/* nullable: the roles the config does not run */
ZltServer *zlt_daemon_get_server (ZltDaemon *self);
ZltAgent *zlt_daemon_get_agent (ZltDaemon *self);
ZltClientConfig *zlt_daemon_get_agent_config (ZltDaemon *self);
/* nullable */
const char *zlt_daemon_get_admin_group (ZltDaemon *self);

/* Agent role: adds or removes a service at run time. */
gboolean zlt_daemon_expose (ZltDaemon *self, const ZltServiceConfig *service, GError **error);
gboolean zlt_daemon_unexpose (ZltDaemon *self, const char *name, GError **error);
/* Node tunnels: this node's name and its tunnels (never NULL, maybe empty). */
const char *zlt_daemon_get_node_name (ZltDaemon *self);
ZltNodeManager *zlt_daemon_get_node_manager (ZltDaemon *self);
/* Adds or removes a node tunnel at run time (Reload leaves these alone unless the file
 * defines one of the same name). */
gboolean zlt_daemon_add_node_tunnel (ZltDaemon *self, ZltNodeTunnel *tunnel, GError **error);
gboolean zlt_daemon_remove_node_tunnel (ZltDaemon *self, const char *name, GError **error);
/* On-demand access with the agent role's server and token (the manager is made at the
 * first call; %ZLT_DAEMON_ERROR_ROLE_NOT_CONFIGURED without an agent role). Returns a
 * new reference; @ttl_seconds 0 = until stopped. */
ZltSession *zlt_daemon_start_access (ZltDaemon *self, const char *service, guint16 local_port,
                                     guint ttl_seconds, GError **error);
gboolean zlt_daemon_stop_access (ZltDaemon *self, ZltSession *session, GError **error);
/* nullable: %NULL until the first zlt_daemon_start_access() (notify::access-manager) */
ZltAccessManager *zlt_daemon_get_access_manager (ZltDaemon *self);
/* Server role: ends @tunnel (one of the server's) with no resume. */
gboolean zlt_daemon_disconnect_tunnel (ZltDaemon *self, ZltTunnel *tunnel, const char *reason,
                                       GError **error);

G_END_DECLS
