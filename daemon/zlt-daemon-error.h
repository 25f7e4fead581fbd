/* zlt-daemon-error.h: the daemon's own errors and the D-Bus names of every error */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* Every error the daemon answers is named with this prefix. */
#define ZLT_DBUS_ERROR_PREFIX "org.zlayer.Tunnel1.Error."

#define ZLT_DAEMON_ERROR (zlt_daemon_error_quark ())

/**
 * ZltDaemonError:
 * @ZLT_DAEMON_ERROR_PERMISSION_DENIED: the caller may not change anything
 *   (org.zlayer.Tunnel1.Error.PermissionDenied)
 * @ZLT_DAEMON_ERROR_NOT_SUPPORTED: not available in this build
 *   (org.zlayer.Tunnel1.Error.NotSupported)
 * @ZLT_DAEMON_ERROR_ROLE_NOT_CONFIGURED: the method needs a role the config does not
 *   run (org.zlayer.Tunnel1.Error.RoleNotConfigured)
 *
 * Errors of the D-Bus service itself; the library's errors (%ZLT_ERROR) keep their own
 * codes and get names of the same shape.
 */
typedef enum
{
  ZLT_DAEMON_ERROR_PERMISSION_DENIED,
  ZLT_DAEMON_ERROR_NOT_SUPPORTED,
  ZLT_DAEMON_ERROR_ROLE_NOT_CONFIGURED,
} ZltDaemonError;

/* Registers its D-Bus error names the first time it is called. */
GQuark zlt_daemon_error_quark (void);

/* Registers org.zlayer.Tunnel1.Error.<CamelCaseNick> for every %ZLT_ERROR code and the
 * %ZLT_DAEMON_ERROR names, so g_dbus_method_invocation_return_gerror() sends named errors
 * and proxies get the original domain and code back. Safe to call more than once. */
void zlt_dbus_error_register (void);

G_END_DECLS
