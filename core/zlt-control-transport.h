/* zlt-control-transport.h: a transport that can also carry the control channel and
 * the data connections (the websocket plugin) */
#pragma once

#include "zlt-version.h"
#include "zlt-channel.h"
#include "zlt-control-listener.h"
#include "zlt-tls.h"
#include "zlt-transport.h"

G_BEGIN_DECLS

#define ZLT_TYPE_CONTROL_TRANSPORT (zlt_control_transport_get_type ())
ZLT_AVAILABLE_IN_ALL
G_DECLARE_DERIVABLE_TYPE (ZltControlTransport, zlt_control_transport, ZLT, CONTROL_TRANSPORT,
                          ZltTransport)

/**
 * ZltControlTransportClass:
 * @listen_control: the server's port: control channels and data connections;
 *   @certificate makes it TLS; connections that have not upgraded within
 *   @handshake_timeout_ms are closed
 * @connect_control_async: the agent's control channel to @url
 * @open_data_async: one data connection for @connection_id (PROTOCOL-v2.md §3);
 *   the finish function also returns bytes that arrived right after the upgrade
 * @open_access_async: the same upgrade with an X-Zlt-Service header: an access stream
 *   to a named service (PROTOCOL-v2.md §6); finished with @open_data_finish
 * @probe_access_async: asks whether such an access stream would be accepted, without
 *   opening one (PROTOCOL-v2.md §6)
 * @probe_access_finish: TRUE when it would be, else the refusal
 * @open_standby_async: one standby data connection, to be parked at the server until
 *   it binds it to a public connection (PROTOCOL-v2.md §8); finished with
 *   @open_data_finish, whose prefix then holds the first bytes of the binding, if any
 */
struct _ZltControlTransportClass
{
  ZltTransportClass parent_class;

  ZltControlListener *(*listen_control) (ZltControlTransport *self, const char *bind_address,
                                         guint16 port, GTlsCertificate *certificate,
                                         guint handshake_timeout_ms, GError **error);
  void (*connect_control_async) (ZltControlTransport *self, GUri *url, const ZltTlsOptions *tls,
                                 guint timeout_ms, GCancellable *cancellable,
                                 GAsyncReadyCallback callback, gpointer user_data);
  ZltChannel *(*connect_control_finish) (ZltControlTransport *self, GAsyncResult *result,
                                         GError **error);
  void (*open_data_async) (ZltControlTransport *self, GUri *url, const ZltTlsOptions *tls,
                           const char *tunnel_id, const char *connection_id, const char *mac,
                           guint timeout_ms, GCancellable *cancellable,
                           GAsyncReadyCallback callback, gpointer user_data);
  GIOStream *(*open_data_finish) (ZltControlTransport *self, GAsyncResult *result, GBytes **prefix,
                                  GError **error);
  void (*open_access_async) (ZltControlTransport *self, GUri *url, const ZltTlsOptions *tls,
                             const char *tunnel_id, const char *connection_id, const char *mac,
                             const char *service, guint timeout_ms, GCancellable *cancellable,
                             GAsyncReadyCallback callback, gpointer user_data);
  void (*probe_access_async) (ZltControlTransport *self, GUri *url, const ZltTlsOptions *tls,
                              const char *tunnel_id, const char *connection_id, const char *mac,
                              const char *service, guint timeout_ms, GCancellable *cancellable,
                              GAsyncReadyCallback callback, gpointer user_data);
  gboolean (*probe_access_finish) (ZltControlTransport *self, GAsyncResult *result, GError **error);
  void (*open_standby_async) (ZltControlTransport *self, GUri *url, const ZltTlsOptions *tls,
                              const char *tunnel_id, const char *standby_id, const char *mac,
                              guint timeout_ms, GCancellable *cancellable,
                              GAsyncReadyCallback callback, gpointer user_data);

  gpointer padding[4];
};

ZLT_AVAILABLE_IN_ALL
ZltControlListener *zlt_control_transport_listen_control (ZltControlTransport *self,
                                                          const char *bind_address, guint16 port,
                                                          GTlsCertificate *certificate,
                                                          guint handshake_timeout_ms,
                                                          GError **error);
ZLT_AVAILABLE_IN_ALL
void zlt_control_transport_connect_control_async (ZltControlTransport *self, GUri *url,
                                                  const ZltTlsOptions *tls, guint timeout_ms,
                                                  GCancellable *cancellable,
                                                  GAsyncReadyCallback callback, gpointer user_data);
ZLT_AVAILABLE_IN_ALL
ZltChannel *zlt_control_transport_connect_control_finish (ZltControlTransport *self,
                                                          GAsyncResult *result, GError **error);
ZLT_AVAILABLE_IN_ALL
void zlt_control_transport_open_data_async (ZltControlTransport *self, GUri *url,
                                            const ZltTlsOptions *tls, const char *tunnel_id,
                                            const char *connection_id, const char *mac,
                                            guint timeout_ms, GCancellable *cancellable,
                                            GAsyncReadyCallback callback, gpointer user_data);
ZLT_AVAILABLE_IN_ALL
GIOStream *zlt_control_transport_open_data_finish (ZltControlTransport *self, GAsyncResult *result,
                                                   GBytes **prefix, GError **error);
/* An access stream to @service; finish with zlt_control_transport_open_data_finish(). */
ZLT_AVAILABLE_IN_ALL
void zlt_control_transport_open_access_async (ZltControlTransport *self, GUri *url,
                                              const ZltTlsOptions *tls, const char *tunnel_id,
                                              const char *connection_id, const char *mac,
                                              const char *service, guint timeout_ms,
                                              GCancellable *cancellable,
                                              GAsyncReadyCallback callback, gpointer user_data);

ZLT_AVAILABLE_IN_ALL
void zlt_control_transport_probe_access_async (ZltControlTransport *self, GUri *url,
                                               const ZltTlsOptions *tls, const char *tunnel_id,
                                               const char *connection_id, const char *mac,
                                               const char *service, guint timeout_ms,
                                               GCancellable *cancellable,
                                               GAsyncReadyCallback callback, gpointer user_data);
ZLT_AVAILABLE_IN_ALL
gboolean zlt_control_transport_probe_access_finish (ZltControlTransport *self, GAsyncResult *result,
                                                    GError **error);

/* A standby data connection; finish with zlt_control_transport_open_data_finish(). A
 * transport without them fails with G_IO_ERROR_NOT_SUPPORTED. */
ZLT_AVAILABLE_IN_ALL
gboolean zlt_control_transport_can_open_standby (ZltControlTransport *self);
ZLT_AVAILABLE_IN_ALL
void zlt_control_transport_open_standby_async (ZltControlTransport *self, GUri *url,
                                               const ZltTlsOptions *tls, const char *tunnel_id,
                                               const char *standby_id, const char *mac,
                                               guint timeout_ms, GCancellable *cancellable,
                                               GAsyncReadyCallback callback, gpointer user_data);

G_END_DECLS
