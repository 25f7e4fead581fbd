/* zlt-port-pool.h: the public ports a server may hand out */
#pragma once

#include <gio/gio.h>

#include "zlt-version.h"

G_BEGIN_DECLS

/* What a server offers when its configuration names no ranges. */
#define ZLT_PORT_POOL_DEFAULT_RANGES "30000-31000"

#define ZLT_TYPE_PORT_POOL (zlt_port_pool_get_type ())
ZLT_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (ZltPortPool, zlt_port_pool, ZLT, PORT_POOL, GObject)

ZLT_AVAILABLE_IN_ALL
ZltPortPool *zlt_port_pool_new (void);
ZLT_AVAILABLE_IN_ALL
ZltPortPool *zlt_port_pool_new_range (guint16 first, guint16 last);
ZLT_AVAILABLE_IN_ALL
ZltPortPool *zlt_port_pool_new_from_string (const char *ranges, GError **error);

ZLT_AVAILABLE_IN_ALL
guint16 zlt_port_pool_allocate (ZltPortPool *self, guint16 requested, GError **error);
ZLT_AVAILABLE_IN_ALL
gboolean zlt_port_pool_release (ZltPortPool *self, guint16 port);
ZLT_AVAILABLE_IN_ALL
guint16 zlt_port_pool_allocate_for (ZltPortPool *self, guint16 requested, const char *owner,
                                    GError **error);
ZLT_AVAILABLE_IN_ALL
gboolean zlt_port_pool_release_for (ZltPortPool *self, guint16 port, const char *owner,
                                    guint hold_ms);
ZLT_AVAILABLE_IN_ALL
const char *zlt_port_pool_get_holder (ZltPortPool *self, guint16 port);
ZLT_AVAILABLE_IN_ALL
void zlt_port_pool_mark_unusable (ZltPortPool *self, guint16 port);
ZLT_AVAILABLE_IN_ALL
guint zlt_port_pool_clear_unusable (ZltPortPool *self);

ZLT_AVAILABLE_IN_ALL
gboolean zlt_port_pool_contains (ZltPortPool *self, guint16 port);
ZLT_AVAILABLE_IN_ALL
gboolean zlt_port_pool_is_allocated (ZltPortPool *self, guint16 port);
ZLT_AVAILABLE_IN_ALL
gboolean zlt_port_pool_is_unusable (ZltPortPool *self, guint16 port);
ZLT_AVAILABLE_IN_ALL
guint zlt_port_pool_get_n_total (ZltPortPool *self);
ZLT_AVAILABLE_IN_ALL
guint zlt_port_pool_get_n_free (ZltPortPool *self);
ZLT_AVAILABLE_IN_ALL
char *zlt_port_pool_to_string (ZltPortPool *self);

G_END_DECLS
