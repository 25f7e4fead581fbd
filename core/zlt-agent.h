/* zlt-agent.h: the end behind NAT that dials out and serves local services */
#pragma once

#include <gio/gio.h>

#include "zlt-version.h"
#include "zlt-client-config.h"
#include "zlt-plugin-loader.h"
#include "zlt-control-transport.h"
#include "zlt-tunnel.h"

G_BEGIN_DECLS

#define ZLT_TYPE_AGENT (zlt_agent_get_type ())
ZLT_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (ZltAgent, zlt_agent, ZLT, AGENT, GObject)

/* Reads the token (file or environment) named by @config and takes the transports
 * from @loader. */
ZLT_AVAILABLE_IN_ALL
ZltAgent *zlt_agent_new (ZltClientConfig *config, ZltPluginLoader *loader, GError **error);
/* The same with every part given; @token is only kept as its hash unless the config
 * allows raw-token (legacy) authentication. */
ZLT_AVAILABLE_IN_ALL
ZltAgent *zlt_agent_new_full (ZltClientConfig *config, const char *token,
                              ZltControlTransport *control, ZltTransport *tcp, ZltTransport *udp);

/* Connects and keeps reconnecting (exponential backoff with jitter) until stopped. */
ZLT_AVAILABLE_IN_ALL
void zlt_agent_start (ZltAgent *self);
ZLT_AVAILABLE_IN_ALL
void zlt_agent_stop (ZltAgent *self);

/* The agent's view of its tunnel: id, state, services with their assigned ports. */
ZLT_AVAILABLE_IN_ALL
ZltTunnel *zlt_agent_get_tunnel (ZltAgent *self);
ZLT_AVAILABLE_IN_ALL
ZltTunnelState zlt_agent_get_state (ZltAgent *self);
ZLT_AVAILABLE_IN_ALL
const char *zlt_agent_get_last_error (ZltAgent *self);
/* Whether the last failure will not fix itself by retrying (bad or expired token,
 * legacy authentication refused, TLS trust); kept until the next authentication. */
ZLT_AVAILABLE_IN_ALL
gboolean zlt_agent_get_fatal (ZltAgent *self);
/* Number of completed authentications (first connect and every reconnect). */
ZLT_AVAILABLE_IN_ALL
guint zlt_agent_get_n_sessions (ZltAgent *self);
/* Delay chosen for the next reconnect, in ms; 0 when connected. */
ZLT_AVAILABLE_IN_ALL
guint zlt_agent_get_retry_delay_ms (ZltAgent *self);
ZLT_AVAILABLE_IN_ALL
gint64 zlt_agent_get_latency_us (ZltAgent *self);
ZLT_AVAILABLE_IN_ALL
guint zlt_agent_get_n_relays (ZltAgent *self);
/* Relayed connections that ended with a failure since the agent was made. */
ZLT_AVAILABLE_IN_ALL
guint64 zlt_agent_get_n_relay_errors (ZltAgent *self);
ZLT_AVAILABLE_IN_ALL
guint zlt_agent_get_n_standby (ZltAgent *self);

/* Adds or removes a service at run time (registered at once when connected). */
ZLT_AVAILABLE_IN_ALL
gboolean zlt_agent_add_service (ZltAgent *self, const ZltServiceConfig *service, GError **error);
ZLT_AVAILABLE_IN_ALL
gboolean zlt_agent_remove_service (ZltAgent *self, const char *name, GError **error);

/* On-demand access (PROTOCOL-v2.md §6): one stream to a service of any agent on the
 * server, through it, with this agent's token. */
ZLT_AVAILABLE_IN_ALL
void zlt_agent_open_access_async (ZltAgent *self, const char *service, GCancellable *cancellable,
                                  GAsyncReadyCallback callback, gpointer user_data);
ZLT_AVAILABLE_IN_ALL
GIOStream *zlt_agent_open_access_finish (ZltAgent *self, GAsyncResult *result, GBytes **prefix,
                                         GError **error);

ZLT_AVAILABLE_IN_ALL
void zlt_agent_probe_access_async (ZltAgent *self, const char *service, GCancellable *cancellable,
                                   GAsyncReadyCallback callback, gpointer user_data);
ZLT_AVAILABLE_IN_ALL
gboolean zlt_agent_probe_access_finish (ZltAgent *self, GAsyncResult *result, GError **error);
ZLT_AVAILABLE_IN_ALL
void zlt_agent_set_network_monitor (ZltAgent *self, GNetworkMonitor *monitor);
ZLT_AVAILABLE_IN_ALL
void zlt_agent_set_access_expires (ZltAgent *self, gint64 expires);

G_END_DECLS
