/* zlt-source.c */
#include "config.h"

#include "zlt-source.h"

/**
 * zlt_timeout_source_attach:
 * @interval_ms: the interval in milliseconds
 * @func: (scope forever): called every @interval_ms until it returns %G_SOURCE_REMOVE
 *   or the source is destroyed
 * @data: (closure func): data for @func
 *
 * A timeout attached to the thread-default context (not the global default one, so
 * servers run in a pushed context keep their timers there).
 *
 * Returns: (transfer full): the attached source; destroy it with zlt_source_clear()
 */
GSource *
zlt_timeout_source_attach (guint interval_ms, GSourceFunc func, gpointer data)
{
  GSource *source = g_timeout_source_new (interval_ms);

  g_source_set_callback (source, func, data, NULL);
  g_source_attach (source, g_main_context_get_thread_default ());
  return source;
}

/**
 * zlt_low_idle_source_attach:
 * @func: (scope forever): called when the context has nothing more urgent to dispatch,
 *   until it returns %G_SOURCE_REMOVE or the source is destroyed
 * @data: (closure func): data for @func
 * @name: (nullable): a static name for the source, for profiles
 *
 * A %G_PRIORITY_LOW idle attached to the thread-default context: work that may wait
 * until what is ready now (first bytes, relays) has run.
 *
 * Returns: (transfer full): the attached source; destroy it with zlt_source_clear()
 */
GSource *
zlt_low_idle_source_attach (GSourceFunc func, gpointer data, const char *name)
{
  GSource *source = g_idle_source_new ();

  g_source_set_priority (source, G_PRIORITY_LOW);
  if (name != NULL)
    g_source_set_static_name (source, name);
  g_source_set_callback (source, func, data, NULL);
  g_source_attach (source, g_main_context_get_thread_default ());
  return source;
}

/**
 * zlt_source_clear:
 * @source: (inout) (nullable): a source, or %NULL
 *
 * Destroys and unrefs *@source if set, and sets it to %NULL; safe from the source's own
 * callback.
 */
void
zlt_source_clear (GSource **source)
{
  if (*source == NULL)
    return;
  g_source_destroy (*source);
  g_clear_pointer (source, g_source_unref);
}
