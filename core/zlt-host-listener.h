/* zlt-host-listener.h: a shared public port whose connections are routed by the
 * hostname they ask for (HTTP Host header, TLS SNI) */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef enum
{
  ZLT_HOST_LISTENER_HTTP, /* the Host header of the first request */
  ZLT_HOST_LISTENER_TLS,  /* the SNI of the ClientHello; TLS is not terminated */
} ZltHostListenerKind;

/* how long a new connection has to send what names its host */
#define ZLT_HOST_LISTENER_SNIFF_TIMEOUT_MS 10000
/* connections being read at once, per port; past it new ones are reset */
#define ZLT_HOST_LISTENER_MAX_SNIFFING 1024

#define ZLT_TYPE_HOST_LISTENER (zlt_host_listener_get_type ())
G_DECLARE_FINAL_TYPE (ZltHostListener, zlt_host_listener, ZLT, HOST_LISTENER, GObject)

/**
 * ZltHostRouteFunc:
 * @host: the hostname asked for, normalized
 * @stream: (transfer none): the public connection; take a reference to keep it
 * @prefix: what was read from it so far: to be relayed first
 * @client_addr: the client's "host:port"
 *
 * Returns: %TRUE when @host is served and @stream was taken; %FALSE: the listener
 *   answers "unknown host" (404 page, unrecognized_name alert) and closes
 */
typedef gboolean (*ZltHostRouteFunc) (ZltHostListener *listener, const char *host,
                                      GIOStream *stream, GBytes *prefix, const char *client_addr,
                                      gpointer user_data);

ZltHostListener *zlt_host_listener_new (ZltHostListenerKind kind, const char *address, guint16 port,
                                        GError **error);
guint16 zlt_host_listener_get_port (ZltHostListener *self);
ZltHostListenerKind zlt_host_listener_get_kind (ZltHostListener *self);
/* 0 = ZLT_HOST_LISTENER_SNIFF_TIMEOUT_MS */
void zlt_host_listener_set_timeout (ZltHostListener *self, guint timeout_ms);
void zlt_host_listener_start (ZltHostListener *self, ZltHostRouteFunc func, gpointer user_data);
/* stops accepting, resets the connections still being read; idempotent */
void zlt_host_listener_close (ZltHostListener *self);
guint zlt_host_listener_get_n_sniffing (ZltHostListener *self);
/* connections answered "unknown host", closed for a head too large, bad bytes or silence */
guint64 zlt_host_listener_get_n_unknown (ZltHostListener *self);
guint64 zlt_host_listener_get_n_dropped (ZltHostListener *self);
guint64 zlt_host_listener_get_n_routed (ZltHostListener *self);

G_END_DECLS
