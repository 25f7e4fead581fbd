/* zlt-ws-counting-output.h: an output stream that counts what it passed on */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define ZLT_TYPE_WS_COUNTING_OUTPUT (zlt_ws_counting_output_get_type ())
G_DECLARE_FINAL_TYPE (ZltWsCountingOutput, zlt_ws_counting_output, ZLT, WS_COUNTING_OUTPUT,
                      GFilterOutputStream)

/* @base must be a pollable output stream; it is not closed with this one. */
GOutputStream *zlt_ws_counting_output_new (GOutputStream *base);
/* bytes the base accepted through this stream */
guint64 zlt_ws_counting_output_get_n_written (ZltWsCountingOutput *self);

G_END_DECLS
