/* zlt-tls-stream.h: TLS for data connections, GnuTLS straight on the socket */
#pragma once

#include <gio/gio.h>

#include "zlt-tls.h"

G_BEGIN_DECLS

#define ZLT_TYPE_TLS_STREAM (zlt_tls_stream_get_type ())
G_DECLARE_FINAL_TYPE (ZltTlsStream, zlt_tls_stream, ZLT, TLS_STREAM, GTlsConnection)

GIOStream *zlt_tls_stream_new_client (GSocketConnection *base, const char *host,
                                      const ZltTlsOptions *options, GError **error);
GIOStream *zlt_tls_stream_new_server (GSocketConnection *base, GTlsCertificate *certificate,
                                      GError **error);

gboolean zlt_tls_stream_is_data_hello (const guint8 *record, gsize len);

gboolean zlt_tls_stream_is_resumed (ZltTlsStream *self);
gboolean zlt_tls_stream_offered_ticket (ZltTlsStream *self);
gboolean zlt_tls_stream_has_buffered (ZltTlsStream *self);
gboolean zlt_tls_stream_can_resume (void);
void zlt_tls_stream_forget_tickets (void);
void zlt_tls_stream_age_tickets (gint64 by_us);

G_END_DECLS
