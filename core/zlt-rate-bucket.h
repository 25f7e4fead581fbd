/* zlt-rate-bucket.h: a token bucket of bytes per second, shared by the connections
 * it limits */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* The smallest burst: a bucket holds ~100 ms of its rate, or this much if more. */
#define ZLT_RATE_BUCKET_MIN_BURST (64 * 1024)

/* The largest rate (about 9 TB/s): rate × 1 s in µs stays within 64 bits. */
#define ZLT_RATE_BUCKET_MAX_RATE (G_MAXUINT64 / G_USEC_PER_SEC / 2)

#define ZLT_TYPE_RATE_BUCKET (zlt_rate_bucket_get_type ())
G_DECLARE_FINAL_TYPE (ZltRateBucket, zlt_rate_bucket, ZLT, RATE_BUCKET, GObject)

ZltRateBucket *zlt_rate_bucket_new (guint64 rate);
void zlt_rate_bucket_set_rate (ZltRateBucket *self, guint64 rate);
guint64 zlt_rate_bucket_get_rate (ZltRateBucket *self);
guint64 zlt_rate_bucket_get_burst (ZltRateBucket *self);
gsize zlt_rate_bucket_take_at (ZltRateBucket *self, gsize want, gint64 now_us);
gsize zlt_rate_bucket_take (ZltRateBucket *self, gsize want);
void zlt_rate_bucket_give_back (ZltRateBucket *self, gsize unused);
gint64 zlt_rate_bucket_delay_at (ZltRateBucket *self, gsize want, gint64 now_us);
gint64 zlt_rate_bucket_delay (ZltRateBucket *self, gsize want);

G_END_DECLS
