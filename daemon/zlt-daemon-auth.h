/* zlt-daemon-auth.h: may this D-Bus caller change things? */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* Asks the bus for the uid of the sender of @invocation, then allows root, members of
 * @admin_group (nullable: no group) and, when @allow_own_uid (session bus), the daemon's
 * own user. Fails with ZLT_DAEMON_ERROR_PERMISSION_DENIED otherwise. */
void zlt_daemon_auth_check_async (GDBusMethodInvocation *invocation, const char *admin_group,
                                  gboolean allow_own_uid, GCancellable *cancellable,
                                  GAsyncReadyCallback callback, gpointer user_data);
gboolean zlt_daemon_auth_check_finish (GAsyncResult *result, GError **error);

/* The decision itself, for a known uid. */
gboolean zlt_daemon_auth_uid_allowed (guint32 uid, const char *admin_group, gboolean allow_own_uid);

G_END_DECLS
