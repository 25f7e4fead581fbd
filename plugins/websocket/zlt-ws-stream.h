/* zlt-ws-stream.h: a connection as the listener hands it to libsoup */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define ZLT_TYPE_WS_STREAM (zlt_ws_stream_get_type ())
G_DECLARE_FINAL_TYPE (ZltWsStream, zlt_ws_stream, ZLT, WS_STREAM, GIOStream)

/* @base: a socket or TLS connection (pollable both ways); closed with this stream;
 * @read_ahead (nullable): what was read from it already, passed on first */
ZltWsStream *zlt_ws_stream_new (GIOStream *base, gsize max_request_head, GBytes *read_ahead);
GIOStream *zlt_ws_stream_get_base (ZltWsStream *self);
/* The request is answered: input passes through from now on. */
void zlt_ws_stream_open (ZltWsStream *self);
/* bytes the peer sent after its request head, read but not yet passed on */
gsize zlt_ws_stream_get_n_buffered (ZltWsStream *self);
/* bytes written through this stream so far */
guint64 zlt_ws_stream_get_n_written (ZltWsStream *self);
/* From now on closing (or dropping) this stream leaves the base alone. */
void zlt_ws_stream_detach (ZltWsStream *self);

G_END_DECLS
