/* zlt-ws-request-input.h: an input stream that lets one HTTP request head through */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define ZLT_TYPE_WS_REQUEST_INPUT (zlt_ws_request_input_get_type ())
G_DECLARE_FINAL_TYPE (ZltWsRequestInput, zlt_ws_request_input, ZLT, WS_REQUEST_INPUT,
                      GFilterInputStream)

/* @base must be a pollable input stream; it is not closed with this one. @read_ahead
 * (nullable): bytes already read from @base, passed first (they count against
 * @max_head like any other head bytes). */
GInputStream *zlt_ws_request_input_new (GInputStream *base, gsize max_head, GBytes *read_ahead);
/* After the answer to the request: everything passes, read-ahead bytes first. */
void zlt_ws_request_input_open (ZltWsRequestInput *self);
/* @socket: the socket @base reads directly (a socket connection's input): its sources
 * then watch its descriptor themselves, one level deep (see create_source) */
void zlt_ws_request_input_set_socket (ZltWsRequestInput *self, GSocket *socket);
/* bytes read from the base past the request head and not yet passed on */
gsize zlt_ws_request_input_get_n_buffered (ZltWsRequestInput *self);

G_END_DECLS
