/* zlt-ws-connect.h: the agent's side: control WebSocket and raw data connections */
#pragma once

#include <libsoup/soup.h>

#include "zlt-plugin.h"

G_BEGIN_DECLS

/* "host:port" of a ws(s):// URL, its default port filled in: a channel's peer address */
char *zlt_ws_url_authority (GUri *url);

void zlt_ws_connect_control_async (GUri *url, const ZltTlsOptions *tls, guint timeout_ms,
                                   GCancellable *cancellable, GAsyncReadyCallback callback,
                                   gpointer user_data);
/* @server (optional) gets the address the channel reached when no proxy was between
 * (NULL otherwise): data connections of the same tunnel go there */
ZltChannel *zlt_ws_connect_control_finish (GAsyncResult *result, GSocketAddress **server,
                                           GError **error);

/* @client is shared by all data connections of a transport (its proxy setting is
 * decided once, see ZltWsTransport); @server (nullable) is dialled instead of
 * resolving @url's host again (its name still goes into Host and TLS); @service (nullable) makes it an access stream
 * (X-Zlt-Service, PROTOCOL-v2.md §6); @standby_id instead of @connection_id makes it a
 * standby connection (X-Zlt-Standby, PROTOCOL-v2.md §8) */
void zlt_ws_open_data_async (GSocketClient *client, GUri *url, GSocketAddress *server,
                             const ZltTlsOptions *tls, const char *tunnel_id,
                             const char *connection_id, const char *standby_id, const char *mac,
                             const char *service, gboolean probe, guint timeout_ms,
                             GCancellable *cancellable, GAsyncReadyCallback callback,
                             gpointer user_data);
GIOStream *zlt_ws_open_data_finish (GAsyncResult *result, GBytes **prefix, GError **error);
/* the end of a request made with @probe: TRUE when an access stream would be taken */
gboolean zlt_ws_probe_finish (GAsyncResult *result, GError **error);

G_END_DECLS
