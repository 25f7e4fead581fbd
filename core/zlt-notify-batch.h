/* zlt-notify-batch.h: notify signals of hot counters, coalesced */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

#define ZLT_NOTIFY_BATCH_MAX 4

/* Embedded in the object whose properties it notifies. Counters bumped on every relayed
 * chunk mark their property here; the notifies go out together at most once per
 * ZLT_NOTIFY_INTERVAL_MS (from @context), or at zlt_notify_batch_flush(). */
typedef struct
{
  GObject *object;       /* unowned: the batch lives inside it */
  GMainContext *context; /* unowned: the object keeps it alive */
  const char *source_name;
  GParamSpec *pending[ZLT_NOTIFY_BATCH_MAX];
  guint n_pending;
  GSource *source;
} ZltNotifyBatch;

void zlt_notify_batch_init (ZltNotifyBatch *batch, GObject *object, GMainContext *context,
                            const char *source_name);
void zlt_notify_batch_add (ZltNotifyBatch *batch, GParamSpec *pspec);
/* Emits what is pending now (nothing when nothing changed). */
void zlt_notify_batch_flush (ZltNotifyBatch *batch);
/* Drops what is pending and the timer: for dispose. */
void zlt_notify_batch_clear (ZltNotifyBatch *batch);

G_END_DECLS
