/* zlt-rate-bucket.c: a token bucket of bytes per second, shared by the connections
 * it limits
 *
 * The bucket holds up to its burst (100 ms of the rate, at least
 * ZLT_RATE_BUCKET_MIN_BURST) and fills at the rate by the time elapsed on the
 * monotonic clock since it was last filled. A reader takes what it may read before
 * reading and gives back what it did not use; when the bucket is empty it asks how
 * long until enough has come back (zlt_rate_bucket_delay()). The _at() variants take
 * the time, so tests drive the bucket with a clock of their own. A lock keeps the bucket
 * whole when a blocking read in a worker thread shares it with the main context. */

#include "config.h"

#include "zlt-rate-bucket.h"
#include "zlt-util.h" /* zlt_parse_rate */

struct _ZltRateBucket
{
  GObject parent_instance;
  guint64 rate;  /* bytes per second, > 0 */
  guint64 burst; /* bytes */
  guint64 tokens;
  gint64 filled_us;  /* when tokens were last brought up to date, 0 = never */
  guint64 remainder; /* rate × µs not yet worth a byte (below 1000000) */
  GMutex lock;       /* a blocking read in a worker thread may share the bucket */
};

enum
{
  PROP_0,
  PROP_RATE,
  N_PROPS
};

static GParamSpec *props[N_PROPS];

G_DEFINE_FINAL_TYPE (ZltRateBucket, zlt_rate_bucket, G_TYPE_OBJECT)

static void
zlt_rate_bucket_refill (ZltRateBucket *self, gint64 now_us)
{
  guint64 elapsed;
  guint64 add;

  if (self->filled_us == 0)
    {
      self->filled_us = now_us;
      return;
    }
  if (now_us <= self->filled_us)
    return; /* the clock does not go back; equal times add nothing */
  elapsed = (guint64) (now_us - self->filled_us);
  self->filled_us = now_us;
  if (self->tokens >= self->burst)
    {
      self->remainder = 0;
      return;
    }
  /* a full bucket needs at most burst / rate seconds: no overflow in rate × µs below that */
  if (elapsed >= (self->burst / self->rate + 1) * G_USEC_PER_SEC)
    {
      self->tokens = self->burst;
      self->remainder = 0;
      return;
    }
  add = self->rate * elapsed + self->remainder;
  self->remainder = add % G_USEC_PER_SEC;
  self->tokens = MIN (self->burst, self->tokens + add / G_USEC_PER_SEC);
  if (self->tokens == self->burst)
    self->remainder = 0;
}

static void
zlt_rate_bucket_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  ZltRateBucket *self = ZLT_RATE_BUCKET (object);

  switch (prop_id)
    {
    case PROP_RATE:
      g_value_set_uint64 (value, self->rate);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
zlt_rate_bucket_set_property (GObject *object, guint prop_id, const GValue *value,
                              GParamSpec *pspec)
{
  ZltRateBucket *self = ZLT_RATE_BUCKET (object);

  switch (prop_id)
    {
    case PROP_RATE:
      zlt_rate_bucket_set_rate (self, g_value_get_uint64 (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
zlt_rate_bucket_finalize (GObject *object)
{
  ZltRateBucket *self = ZLT_RATE_BUCKET (object);

  g_mutex_clear (&self->lock);
  G_OBJECT_CLASS (zlt_rate_bucket_parent_class)->finalize (object);
}

static void
zlt_rate_bucket_class_init (ZltRateBucketClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->get_property = zlt_rate_bucket_get_property;
  object_class->set_property = zlt_rate_bucket_set_property;
  object_class->finalize = zlt_rate_bucket_finalize;

  /**
   * ZltRateBucket:rate:
   *
   * Bytes per second the bucket lets through, at least 1. A change applies at once to
   * every connection that shares the bucket.
   */
  props[PROP_RATE] = g_param_spec_uint64 ("rate", NULL, NULL, 1, ZLT_RATE_BUCKET_MAX_RATE, 1,
                                          G_PARAM_READWRITE | G_PARAM_CONSTRUCT
                                              | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  g_object_class_install_properties (object_class, N_PROPS, props);
}

static void
zlt_rate_bucket_init (ZltRateBucket *self)
{
  g_mutex_init (&self->lock);
}

/**
 * zlt_rate_bucket_new:
 * @rate: bytes per second, 1 to %ZLT_RATE_BUCKET_MAX_RATE
 *
 * Returns: (transfer full): a full bucket
 */
ZltRateBucket *
zlt_rate_bucket_new (guint64 rate)
{
  g_return_val_if_fail (rate > 0 && rate <= ZLT_RATE_BUCKET_MAX_RATE, NULL);
  return g_object_new (ZLT_TYPE_RATE_BUCKET, "rate", rate, NULL);
}

/**
 * zlt_rate_bucket_set_rate:
 * @self: a bucket
 * @rate: bytes per second, 1 to %ZLT_RATE_BUCKET_MAX_RATE
 *
 * Changes the rate (and with it the burst) for every connection sharing the bucket:
 * what it holds is kept, up to the new burst. A new bucket starts full.
 */
void
zlt_rate_bucket_set_rate (ZltRateBucket *self, guint64 rate)
{
  gboolean changed;

  g_return_if_fail (ZLT_IS_RATE_BUCKET (self));
  g_return_if_fail (rate <= ZLT_RATE_BUCKET_MAX_RATE);

  rate = MAX (rate, 1);
  g_mutex_lock (&self->lock);
  changed = self->rate != rate;
  if (self->burst == 0)
    {
      /* constructing: a new bucket starts full */
      self->rate = rate;
      self->burst = MAX (rate / 10, ZLT_RATE_BUCKET_MIN_BURST);
      self->tokens = self->burst;
      changed = FALSE;
    }
  else if (changed)
    {
      /* bring the count up to date at the old rate, then go on at the new one */
      zlt_rate_bucket_refill (self, g_get_monotonic_time ());
      self->rate = rate;
      self->burst = MAX (rate / 10, ZLT_RATE_BUCKET_MIN_BURST);
      self->tokens = MIN (self->tokens, self->burst);
      self->remainder = 0;
    }
  g_mutex_unlock (&self->lock);
  if (changed)
    g_object_notify_by_pspec (G_OBJECT (self), props[PROP_RATE]);
}

guint64
zlt_rate_bucket_get_rate (ZltRateBucket *self)
{
  g_return_val_if_fail (ZLT_IS_RATE_BUCKET (self), 0);
  return self->rate;
}

guint64
zlt_rate_bucket_get_burst (ZltRateBucket *self)
{
  g_return_val_if_fail (ZLT_IS_RATE_BUCKET (self), 0);
  return self->burst;
}

/**
 * zlt_rate_bucket_take_at:
 * @self: a bucket
 * @want: bytes the caller would move
 * @now_us: the monotonic time
 *
 * Takes up to @want bytes' worth from the bucket, after filling it for the time
 * elapsed until @now_us.
 *
 * Returns: the bytes the caller may move now, 0 when the bucket is empty
 */
gsize
zlt_rate_bucket_take_at (ZltRateBucket *self, gsize want, gint64 now_us)
{
  gsize got;

  g_return_val_if_fail (ZLT_IS_RATE_BUCKET (self), 0);

  g_mutex_lock (&self->lock);
  zlt_rate_bucket_refill (self, now_us);
  got = (gsize) MIN ((guint64) want, self->tokens);
  self->tokens -= got;
  g_mutex_unlock (&self->lock);
  return got;
}

gsize
zlt_rate_bucket_take (ZltRateBucket *self, gsize want)
{
  return zlt_rate_bucket_take_at (self, want, g_get_monotonic_time ());
}

/**
 * zlt_rate_bucket_give_back:
 * @self: a bucket
 * @unused: bytes taken but not moved (a short read or write)
 */
void
zlt_rate_bucket_give_back (ZltRateBucket *self, gsize unused)
{
  g_return_if_fail (ZLT_IS_RATE_BUCKET (self));
  g_mutex_lock (&self->lock);
  self->tokens = MIN (self->burst, self->tokens + unused);
  g_mutex_unlock (&self->lock);
}

/**
 * zlt_rate_bucket_delay_at:
 * @self: a bucket
 * @want: bytes the caller waits for (capped at the burst)
 * @now_us: the monotonic time
 *
 * Returns: microseconds until the bucket holds @want bytes, 0 when it does now
 */
gint64
zlt_rate_bucket_delay_at (ZltRateBucket *self, gsize want, gint64 now_us)
{
  guint64 missing;
  gint64 delay = 0;

  g_return_val_if_fail (ZLT_IS_RATE_BUCKET (self), 0);

  g_mutex_lock (&self->lock);
  zlt_rate_bucket_refill (self, now_us);
  want = (gsize) MIN ((guint64) MAX (want, 1), self->burst);
  if (self->tokens < want)
    {
      missing = (want - self->tokens) * G_USEC_PER_SEC;
      missing = missing > self->remainder ? missing - self->remainder : 0;
      /* round up: after this long the bucket holds @want */
      delay = (gint64) ((missing + self->rate - 1) / self->rate);
    }
  g_mutex_unlock (&self->lock);
  return delay;
}

gint64
zlt_rate_bucket_delay (ZltRateBucket *self, gsize want)
{
  return zlt_rate_bucket_delay_at (self, want, g_get_monotonic_time ());
}

/* one rate parser for the config, the grants and the CLI (zlt-util.c is built into all) */
G_STATIC_ASSERT (ZLT_RATE_MAX == ZLT_RATE_BUCKET_MAX_RATE);
