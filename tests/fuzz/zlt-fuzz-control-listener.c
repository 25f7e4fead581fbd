/* zlt-fuzz-control-listener.c: a control listener without a socket: the fuzz target
 * hands it channels, and the server takes them as from any listener */
#include "config.h"

#include "zlt-fuzz-control-listener.h"

struct _ZltFuzzControlListener
{
  ZltControlListener parent_instance;
};

G_DEFINE_FINAL_TYPE (ZltFuzzControlListener, zlt_fuzz_control_listener, ZLT_TYPE_CONTROL_LISTENER)

static void
zlt_fuzz_control_listener_close (ZltListener *listener)
{
  /* nothing bound, nothing to release */
}

static void
zlt_fuzz_control_listener_dispose (GObject *object)
{
  zlt_listener_close (ZLT_LISTENER (object));
  G_OBJECT_CLASS (zlt_fuzz_control_listener_parent_class)->dispose (object);
}

static void
zlt_fuzz_control_listener_class_init (ZltFuzzControlListenerClass *klass)
{
  G_OBJECT_CLASS (klass)->dispose = zlt_fuzz_control_listener_dispose;
  ZLT_LISTENER_CLASS (klass)->close = zlt_fuzz_control_listener_close;
}

static void
zlt_fuzz_control_listener_init (ZltFuzzControlListener *self)
{
}

ZltControlListener *
zlt_fuzz_control_listener_new (guint16 port)
{
  ZltControlListener *self = g_object_new (ZLT_TYPE_FUZZ_CONTROL_LISTENER, NULL);

  zlt_listener_set_port (ZLT_LISTENER (self), port);
  return self;
}
