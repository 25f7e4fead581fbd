/* zlt-access-manager.h: on-demand access sessions, a local port that reaches a remote
 * service through the server for a limited time */
#pragma once

#include <gio/gio.h>

#include "zlt-version.h"
#include "zlt-agent.h"
#include "zlt-client-config.h"
#include "zlt-control-transport.h"
#include "zlt-plugin-loader.h"
#include "zlt-session.h"

G_BEGIN_DECLS

#define ZLT_TYPE_ACCESS_MANAGER (zlt_access_manager_get_type ())
ZLT_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (ZltAccessManager, zlt_access_manager, ZLT, ACCESS_MANAGER, GObject)

/* The server and token of @config's [agent] group ([service:*] groups are ignored: an
 * access client registers nothing); transports from @loader. */
ZLT_AVAILABLE_IN_ALL
ZltAccessManager *zlt_access_manager_new (ZltClientConfig *config, ZltPluginLoader *loader,
                                          GError **error);
ZLT_AVAILABLE_IN_ALL
ZltAccessManager *zlt_access_manager_new_full (ZltClientConfig *config, const char *token,
                                               ZltControlTransport *control, ZltTransport *tcp);

/* The access client's own control session; it runs while there are sessions. */
ZLT_AVAILABLE_IN_ALL
ZltAgent *zlt_access_manager_get_agent (ZltAccessManager *self);
ZLT_AVAILABLE_IN_ALL
const char *zlt_access_manager_get_endpoint (ZltAccessManager *self);

/* Binds 127.0.0.1:@local_port and [::1]:@local_port (0 = any free port, the same on
 * both); each local connection becomes one access stream to @service. The session ends
 * by itself after @ttl_seconds (0 = never). */
ZLT_AVAILABLE_IN_ALL
ZltSession *zlt_access_manager_start_session (ZltAccessManager *self, const char *service,
                                              guint16 local_port, guint ttl_seconds,
                                              GError **error);
/* Closes the listener and every connection of @session, and forgets it. */
ZLT_AVAILABLE_IN_ALL
gboolean zlt_access_manager_stop_session (ZltAccessManager *self, ZltSession *session,
                                          GError **error);
/* @id: the session's UUID string */
ZLT_AVAILABLE_IN_ALL
ZltSession *zlt_access_manager_lookup_session (ZltAccessManager *self, const char *id);
/* (transfer full): the live sessions, oldest first, a reference each */
ZLT_AVAILABLE_IN_ALL
GPtrArray *zlt_access_manager_get_sessions (ZltAccessManager *self);
ZLT_AVAILABLE_IN_ALL
guint16 zlt_access_manager_get_local_port (ZltAccessManager *self, ZltSession *session);
/* Relays running for all sessions together. */
ZLT_AVAILABLE_IN_ALL
guint zlt_access_manager_get_n_relays (ZltAccessManager *self);

G_END_DECLS
