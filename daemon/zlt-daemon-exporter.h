/* zlt-daemon-exporter.h: the daemon's state on D-Bus (org.zlayer.Tunnel1) */
#pragma once

#include <gio/gio.h>

#include "zlt-daemon.h"

G_BEGIN_DECLS

#define ZLT_DBUS_NAME "org.zlayer.Tunnel1"
#define ZLT_DBUS_PATH "/org/zlayer/Tunnel1"

#define ZLT_TYPE_DAEMON_EXPORTER (zlt_daemon_exporter_get_type ())
G_DECLARE_FINAL_TYPE (ZltDaemonExporter, zlt_daemon_exporter, ZLT, DAEMON_EXPORTER, GObject)

/* Exports the Manager interface and an ObjectManager at /org/zlayer/Tunnel1 on
 * @connection, with one object per tunnel and service of @daemon's roles, kept in step
 * with the core objects' notify signals. @session_bus lets the daemon's own user call
 * the mutating methods. */
ZltDaemonExporter *zlt_daemon_exporter_new (ZltDaemon *daemon, GDBusConnection *connection,
                                            gboolean session_bus, GError **error);
/* Removes every object from the bus and stops following the daemon; calls still
 * waiting for their caller check fail. Idempotent; dispose does it too. */
void zlt_daemon_exporter_unexport (ZltDaemonExporter *self);

G_END_DECLS
