/* zlt-net.h: small socket helpers shared by server, agent and transports */
#pragma once

#include <gio/gio.h>

#include "zlt-version.h"

G_BEGIN_DECLS

/* "1.2.3.4:5" or "[::1]:5": a host (an IPv6 address gets its brackets) and a port. */
ZLT_AVAILABLE_IN_ALL
char *zlt_net_join_host_port (const char *host, guint port);
/* "1.2.3.4:5" or "[::1]:5"; NULL for anything that is not an inet address. */
ZLT_AVAILABLE_IN_ALL
char *zlt_net_format_address (GSocketAddress *address);
/* Small control writes must not wait for Nagle or delayed ACKs. */
ZLT_AVAILABLE_IN_ALL
void zlt_net_set_nodelay (GSocketConnection *connection);
/* Parses "host:port", "[v6]:port" or ":port"/"port" (host = default_host). */
ZLT_AVAILABLE_IN_ALL
gboolean zlt_net_parse_host_port (const char *str, const char *default_host, char **host,
                                  guint16 *port, GError **error);
/* "localhost", 127.0.0.0/8 or ::1 (brackets allowed): traffic that never leaves the host. */
ZLT_AVAILABLE_IN_ALL
gboolean zlt_net_host_is_loopback (const char *host);
/* Takes off any GSocket timeout on the sockets under @stream (a socket connection, a
 * TLS connection's base, a socket's own streams inside a GSimpleIOStream, under filter
 * streams): whoever keeps time on the stream now (a relay's idle timeout) does so alone.
 * GSocketClient leaves its connect timeout on every socket it dials. */
ZLT_AVAILABLE_IN_ALL
void zlt_net_clear_socket_timeout (GIOStream *stream);
/* The descriptor of the socket under @stream: a socket connection's own, a TLS
 * connection's base connection's, or that of an output stream which writes a socket
 * directly (a socket's stream inside a GSimpleIOStream); -1 when there is none.
 * @socket (optional) gets the GSocket, unowned, when the stream owns one (it closes
 * the socket when it is closed), NULL otherwise. */
ZLT_AVAILABLE_IN_ALL
int zlt_net_stream_socket_fd (GIOStream *stream, GSocket **socket);
/* SO_LINGER {on, 0} when @reset (closing the socket sends a TCP reset and drops unsent
 * bytes), or linger off (close ends the connection with FIN after unsent bytes). */
ZLT_AVAILABLE_IN_ALL
gboolean zlt_net_set_reset_on_close (int fd, gboolean reset);
/* Gives up on @stream with a TCP reset instead of an orderly end: the socket under it is
 * set to reset on close and, when the stream owns it, closed at once (so no TLS
 * close_notify goes out), then @stream is closed. For a connection that is cut (a
 * failure, an administrative end) and whose peer must not take it for complete. */
ZLT_AVAILABLE_IN_ALL
void zlt_net_close_with_reset (GIOStream *stream);

/* Connects to @address (an inet socket address) with one non-blocking connect() and one
 * wait for the socket to become writable: the shortest way to a connected socket, for
 * peers given by address (no resolver, no proxy, no GSocketClient events). Fails with
 * G_IO_ERROR_TIMED_OUT after @timeout_s seconds (0: never); honours @cancellable.
 * Finish with zlt_net_dial_finish(). */
ZLT_AVAILABLE_IN_ALL
void zlt_net_dial_async (GSocketAddress *address, guint timeout_s, GCancellable *cancellable,
                         GAsyncReadyCallback callback, gpointer user_data);
ZLT_AVAILABLE_IN_ALL
GSocketConnection *zlt_net_dial_finish (GAsyncResult *result, GError **error);

/* A source that fires when @stream's input is readable (or @cancellable is cancelled),
 * as g_pollable_input_stream_create_source() makes, its callback a GPollableSourceFunc
 * given the input stream; one that can recurse. On a socket connection it watches the
 * socket's fd itself: GLib 2.74 takes the fds of a dispatching source that cannot
 * recurse out of the poll set and puts them back (a write to the context's wakeup fd
 * each), and a pollable stream's source watches through a child source that cannot. */
ZLT_AVAILABLE_IN_ALL
GSource *zlt_net_input_source_new (GIOStream *stream, GCancellable *cancellable);

G_END_DECLS
