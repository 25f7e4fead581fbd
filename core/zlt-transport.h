/* zlt-transport.h: plugin base for how bytes of a service protocol are listened for and dialed */
#pragma once

#include <gio/gio.h>

#include "zlt-version.h"
#include "zlt-types.h"
#include "zlt-listener.h"

G_BEGIN_DECLS

#define ZLT_TYPE_TRANSPORT (zlt_transport_get_type ())
ZLT_AVAILABLE_IN_ALL
G_DECLARE_DERIVABLE_TYPE (ZltTransport, zlt_transport, ZLT, TRANSPORT, GObject)

/**
 * ZltTransportClass:
 * @name: the name configs and the loader use ("tcp", "udp"); lowercase letters, digits
 *   and '-'; set in class_init
 * @protocol: the service protocol this transport carries
 * @listen: binds @bind_address:@port (port 0 = any) and returns a listener that is
 *   already accepting
 * @dial_async: connects to @host:@port
 * @dial_finish: returns the connected stream; when NULL, the base class propagates a
 *   #GTask pointer result
 */
struct _ZltTransportClass
{
  GObjectClass parent_class;

  const char *name;
  ZltProtocol protocol;

  ZltListener *(*listen) (ZltTransport *self, const char *bind_address, guint16 port,
                          GError **error);
  void (*dial_async) (ZltTransport *self, const char *host, guint16 port, GCancellable *cancellable,
                      GAsyncReadyCallback callback, gpointer user_data);
  GIOStream *(*dial_finish) (ZltTransport *self, GAsyncResult *result, GError **error);

  gpointer padding[8];
};

ZLT_AVAILABLE_IN_ALL
const char *zlt_transport_get_name (ZltTransport *self);
ZLT_AVAILABLE_IN_ALL
ZltProtocol zlt_transport_get_protocol (ZltTransport *self);

ZLT_AVAILABLE_IN_ALL
ZltListener *zlt_transport_listen (ZltTransport *self, const char *bind_address, guint16 port,
                                   GError **error);
ZLT_AVAILABLE_IN_ALL
void zlt_transport_dial_async (ZltTransport *self, const char *host, guint16 port,
                               GCancellable *cancellable, GAsyncReadyCallback callback,
                               gpointer user_data);
ZLT_AVAILABLE_IN_ALL
GIOStream *zlt_transport_dial_finish (ZltTransport *self, GAsyncResult *result, GError **error);

G_END_DECLS
