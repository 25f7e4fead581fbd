/* zlt-notify-batch.c */
#include "config.h"

#include <string.h>

#include "zlt-notify-batch.h"
#include "zlt-service.h" /* ZLT_NOTIFY_INTERVAL_MS */
#include "zlt-source.h"

void
zlt_notify_batch_init (ZltNotifyBatch *batch, GObject *object, GMainContext *context,
                       const char *source_name)
{
  batch->object = object;
  batch->context = context;
  batch->source_name = source_name;
  batch->n_pending = 0;
  batch->source = NULL;
}

static gboolean
batch_timeout (gpointer user_data)
{
  ZltNotifyBatch *batch = user_data;

  /* the dispatch holds its own reference on the source until we return */
  g_clear_pointer (&batch->source, g_source_unref);
  zlt_notify_batch_flush (batch);
  return G_SOURCE_REMOVE;
}

void
zlt_notify_batch_add (ZltNotifyBatch *batch, GParamSpec *pspec)
{
  guint i;

  for (i = 0; i < batch->n_pending; i++)
    if (batch->pending[i] == pspec)
      break;
  if (i == batch->n_pending)
    {
      g_return_if_fail (batch->n_pending < ZLT_NOTIFY_BATCH_MAX);
      batch->pending[batch->n_pending++] = pspec;
    }
  if (batch->source == NULL)
    {
      batch->source = g_timeout_source_new (ZLT_NOTIFY_INTERVAL_MS);
      g_source_set_callback (batch->source, batch_timeout, batch, NULL);
      g_source_set_static_name (batch->source, batch->source_name);
      g_source_attach (batch->source, batch->context);
    }
}

void
zlt_notify_batch_flush (ZltNotifyBatch *batch)
{
  GParamSpec *pending[ZLT_NOTIFY_BATCH_MAX];
  guint n = batch->n_pending;

  zlt_source_clear (&batch->source);
  if (n == 0)
    return;
  memcpy (pending, batch->pending, n * sizeof pending[0]);
  batch->n_pending = 0;
  g_object_ref (batch->object);
  g_object_freeze_notify (batch->object);
  for (guint i = 0; i < n; i++)
    g_object_notify_by_pspec (batch->object, pending[i]);
  g_object_thaw_notify (batch->object);
  g_object_unref (batch->object);
}

void
zlt_notify_batch_clear (ZltNotifyBatch *batch)
{
  zlt_source_clear (&batch->source);
  batch->n_pending = 0;
}
