/* zlt-net.h: small socket helpers shared by server, agent and transports */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* "1.2.3.4:5" or "[::1]:5": a host (an IPv6 address gets its brackets) and a port. */
char *zlt_net_join_host_port (const char *host, guint port);
/* "1.2.3.4:5" or "[::1]:5"; NULL for anything that is not an inet address. */
char *zlt_net_format_address (GSocketAddress *address);
/* The peer of a socket connection, formatted as above, or NULL. */
char *zlt_net_peer_of (GIOStream *stream);
/* Small control writes must not wait for Nagle or delayed ACKs. */
void zlt_net_set_nodelay (GSocketConnection *connection);
/* Parses "host:port", "[v6]:port" or ":port"/"port" (host = default_host). */
gboolean zlt_net_parse_host_port (const char *str, const char *default_host, char **host,
                                  guint16 *port, GError **error);
/* "localhost", 127.0.0.0/8 or ::1 (brackets allowed): traffic that never leaves the host. */
gboolean zlt_net_host_is_loopback (const char *host);
/* The plain socket under a stream when there is one (no TLS or other wrapping). */
GSocket *zlt_net_plain_socket (GIOStream *stream);

G_END_DECLS
