/* zlt-source.h: timers on the thread-default main context */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* A timeout attached to the thread-default context (not the global default one, so
 * servers run in a pushed context keep their timers there). */
GSource *zlt_timeout_source_attach (guint interval_ms, GSourceFunc func, gpointer data);
/* A G_PRIORITY_LOW idle attached there: @func runs once nothing more urgent is ready. */
GSource *zlt_low_idle_source_attach (GSourceFunc func, gpointer data, const char *name);
/* Destroys and unrefs *source if set; safe from the source's own callback. */
void zlt_source_clear (GSource **source);

G_END_DECLS
