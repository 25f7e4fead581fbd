/* zlt-daemon-auth.h: may this D-Bus caller change things? */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* The polkit actions (data/org.zlayer.tunnel1.policy.in) */
#define ZLT_DAEMON_AUTH_ACTION_MANAGE_SERVICES "org.zlayer.tunnel1.manage-services"
#define ZLT_DAEMON_AUTH_ACTION_MANAGE_ACCESS "org.zlayer.tunnel1.manage-access"
#define ZLT_DAEMON_AUTH_ACTION_MANAGE_NODES "org.zlayer.tunnel1.manage-nodes"
#define ZLT_DAEMON_AUTH_ACTION_MANAGE_TUNNELS "org.zlayer.tunnel1.manage-tunnels"
#define ZLT_DAEMON_AUTH_ACTION_RELOAD "org.zlayer.tunnel1.reload"

/* Checks the sender of @invocation, a call of a mutating method:
 *
 * - root (asked of the bus, never of the caller) may always;
 * - on the system bus (@allow_own_uid FALSE) polkit decides, asked on the same bus for
 *   the method's action (zlt_daemon_auth_action_for_method()) with the caller's bus
 *   name as the subject, interactively when the call allows interactive authorization;
 * - where polkit is not on the bus (nor activatable), and always on the session bus,
 *   members of @admin_group (nullable: no group) may and, when @allow_own_uid, the
 *   daemon's own user.
 *
 * Fails with ZLT_DAEMON_ERROR_PERMISSION_DENIED, naming the action, otherwise.
 * Cancelling @cancellable withdraws a pending polkit check (and its password dialog). */
void zlt_daemon_auth_check_async (GDBusMethodInvocation *invocation, const char *admin_group,
                                  gboolean allow_own_uid, GCancellable *cancellable,
                                  GAsyncReadyCallback callback, gpointer user_data);
gboolean zlt_daemon_auth_check_finish (GAsyncResult *result, GError **error);

/* The polkit action of a mutating method (e.g. "org.zlayer.Tunnel1.Manager", "Expose"),
 * or NULL for a method that has none. */
const char *zlt_daemon_auth_action_for_method (const char *interface_name, const char *method_name);

/* The uid check itself, for a known uid: root, @admin_group's members, and the
 * daemon's own user when @allow_own_uid. */
gboolean zlt_daemon_auth_uid_allowed (guint32 uid, const char *admin_group, gboolean allow_own_uid);

G_END_DECLS
