/* zlt-failing-plugin.c: adds a transport type, then fails its registration; the loader
 * must not keep the type */
#include "config.h"

#include "zlt-plugin.h"

#define ZLT_TYPE_FAILING_TRANSPORT (zlt_failing_transport_get_type ())
G_DECLARE_FINAL_TYPE (ZltFailingTransport, zlt_failing_transport, ZLT, FAILING_TRANSPORT,
                      ZltTransport)

struct _ZltFailingTransport
{
  ZltTransport parent_instance;
};

G_DEFINE_FINAL_TYPE (ZltFailingTransport, zlt_failing_transport, ZLT_TYPE_TRANSPORT)

static void
zlt_failing_transport_class_init (ZltFailingTransportClass *klass)
{
  ZLT_TRANSPORT_CLASS (klass)->name = "failing";
}

static void
zlt_failing_transport_init (ZltFailingTransport *self)
{
}

static gboolean
zlt_failing_plugin_register (ZltPluginLoader *loader, GError **error)
{
  if (!zlt_plugin_loader_add_transport_type (loader, ZLT_TYPE_FAILING_TRANSPORT, error))
    return FALSE;
  g_set_error_literal (error, ZLT_ERROR, ZLT_ERROR_FAILED, "refusing on purpose");
  return FALSE;
}

ZLT_PLUGIN_DEFINE (zlt_failing_plugin_register)
