/* zlt-listener.h: a bound listening endpoint of a transport */
#pragma once

#include <gio/gio.h>

#include "zlt-version.h"

G_BEGIN_DECLS

#define ZLT_TYPE_LISTENER (zlt_listener_get_type ())
ZLT_AVAILABLE_IN_ALL
G_DECLARE_DERIVABLE_TYPE (ZltListener, zlt_listener, ZLT, LISTENER, GObject)

/**
 * ZltListenerClass:
 * @incoming: class handler of the #ZltListener::incoming signal
 * @close: stops accepting and releases the socket; called once, by zlt_listener_close()
 * @set_idle_timeout: for listeners whose connections end by themselves when idle (the
 *   udp plugin's flows): how long a new connection may pass no data; optional
 *
 * Implementations set the bound port with zlt_listener_set_port() before handing the
 * listener out, announce each accepted stream with zlt_listener_emit_incoming(), and call
 * zlt_listener_close() from their own dispose before chaining up.
 */
struct _ZltListenerClass
{
  GObjectClass parent_class;

  void (*incoming) (ZltListener *self, GIOStream *stream, GSocketAddress *peer);

  void (*close) (ZltListener *self);

  void (*set_idle_timeout) (ZltListener *self, guint timeout_ms);

  gpointer padding[7];
};

ZLT_AVAILABLE_IN_ALL
guint16 zlt_listener_get_port (ZltListener *self);
ZLT_AVAILABLE_IN_ALL
gboolean zlt_listener_is_closed (ZltListener *self);
ZLT_AVAILABLE_IN_ALL
void zlt_listener_close (ZltListener *self);
ZLT_AVAILABLE_IN_ALL
gboolean zlt_listener_set_idle_timeout (ZltListener *self, guint timeout_ms);

/* For implementations. */
ZLT_AVAILABLE_IN_ALL
void zlt_listener_set_port (ZltListener *self, guint16 port);
ZLT_AVAILABLE_IN_ALL
void zlt_listener_emit_incoming (ZltListener *self, GIOStream *stream, GSocketAddress *peer);

G_END_DECLS
