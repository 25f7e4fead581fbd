/* zlt-throttled-stream.h: a GIOStream whose reads and writes are held to token buckets */
#pragma once

#include "zlt-rate-bucket.h"

G_BEGIN_DECLS

#define ZLT_TYPE_THROTTLED_STREAM (zlt_throttled_stream_get_type ())
G_DECLARE_FINAL_TYPE (ZltThrottledStream, zlt_throttled_stream, ZLT, THROTTLED_STREAM, GIOStream)

GIOStream *zlt_throttled_stream_new (GIOStream *base, ZltRateBucket *read_bucket,
                                     ZltRateBucket *write_bucket);
GIOStream *zlt_throttled_stream_get_base_stream (ZltThrottledStream *self);
ZltRateBucket *zlt_throttled_stream_get_read_bucket (ZltThrottledStream *self);
ZltRateBucket *zlt_throttled_stream_get_write_bucket (ZltThrottledStream *self);

G_END_DECLS
