/* zlt-backoff.c */
#include "config.h"

#include "zlt-backoff.h"

void
zlt_backoff_init (ZltBackoff *backoff, guint min_ms, guint max_ms)
{
  g_return_if_fail (backoff != NULL);
  backoff->min_ms = MAX (min_ms, 1);
  backoff->max_ms = MAX (max_ms, backoff->min_ms);
  backoff->attempt = 0;
}

static guint
jitter (guint ceiling)
{
  /* rounded up: never below half of @ceiling, and never 0 */
  guint half = ceiling - ceiling / 2;
  return half + (guint) g_random_int_range (0, (gint32) MIN (ceiling - half, G_MAXINT32 - 1) + 1);
}

guint
zlt_backoff_next (ZltBackoff *backoff)
{
  guint64 delay = backoff->min_ms;

  /* shift stops growing long before it could overflow 64 bits */
  for (guint i = 0; i < backoff->attempt && delay < backoff->max_ms; i++)
    delay *= 2;
  if (backoff->attempt < 64)
    backoff->attempt++;
  return jitter ((guint) MIN (delay, (guint64) backoff->max_ms));
}

void
zlt_backoff_reset (ZltBackoff *backoff)
{
  backoff->attempt = 0;
}

guint
zlt_backoff_jitter (guint ms)
{
  return jitter (MAX (ms, 1));
}

guint
zlt_backoff_max (ZltBackoff *backoff)
{
  backoff->attempt = 64;
  return jitter (backoff->max_ms);
}
