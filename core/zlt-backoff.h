/* zlt-backoff.h: exponential reconnect delays with jitter */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct
{
  guint min_ms;
  guint max_ms;
  guint attempt;
} ZltBackoff;

void zlt_backoff_init (ZltBackoff *backoff, guint min_ms, guint max_ms);
/* The next delay: min·2^attempt capped at max, then "equal jitter" (a random value
 * between half of it and all of it) so a fleet of agents does not reconnect in step. */
guint zlt_backoff_next (ZltBackoff *backoff);
/* After a healthy session the next failure starts from min again. */
void zlt_backoff_reset (ZltBackoff *backoff);
/* Jumps straight to the cap (used when retrying fast is pointless, e.g. a bad token). */
guint zlt_backoff_max (ZltBackoff *backoff);
/* @ms with the same jitter: a delay of the caller's own, e.g. after a fatal refusal. */
guint zlt_backoff_jitter (guint ms);

G_END_DECLS
