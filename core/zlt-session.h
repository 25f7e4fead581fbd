/* zlt-session.h: one on-demand access session */
#pragma once

#include <gio/gio.h>

#include "zlt-version.h"
#include "zlt-uuid.h"

G_BEGIN_DECLS

#define ZLT_TYPE_SESSION (zlt_session_get_type ())
ZLT_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (ZltSession, zlt_session, ZLT, SESSION, GObject)

ZLT_AVAILABLE_IN_ALL
ZltSession *zlt_session_new (const char *endpoint, const char *local_address,
                             const char *remote_service, guint ttl_seconds);

ZLT_AVAILABLE_IN_ALL
const ZltUuid *zlt_session_get_id (ZltSession *self);
ZLT_AVAILABLE_IN_ALL
char *zlt_session_dup_id_string (ZltSession *self);
ZLT_AVAILABLE_IN_ALL
const char *zlt_session_get_endpoint (ZltSession *self);
ZLT_AVAILABLE_IN_ALL
const char *zlt_session_get_local_address (ZltSession *self);
ZLT_AVAILABLE_IN_ALL
void zlt_session_set_local_address (ZltSession *self, const char *local_address);
ZLT_AVAILABLE_IN_ALL
const char *zlt_session_get_remote_service (ZltSession *self);
ZLT_AVAILABLE_IN_ALL
gint64 zlt_session_get_created (ZltSession *self);
ZLT_AVAILABLE_IN_ALL
gint64 zlt_session_get_expires (ZltSession *self);
ZLT_AVAILABLE_IN_ALL
void zlt_session_set_expires (ZltSession *self, gint64 expires);
ZLT_AVAILABLE_IN_ALL
gint64 zlt_session_get_remaining_seconds (ZltSession *self);
ZLT_AVAILABLE_IN_ALL
gboolean zlt_session_is_expired (ZltSession *self);

ZLT_AVAILABLE_IN_ALL
guint zlt_session_get_active_connections (ZltSession *self);
ZLT_AVAILABLE_IN_ALL
guint64 zlt_session_get_total_connections (ZltSession *self);
ZLT_AVAILABLE_IN_ALL
guint64 zlt_session_get_bytes_in (ZltSession *self);
ZLT_AVAILABLE_IN_ALL
guint64 zlt_session_get_bytes_out (ZltSession *self);

ZLT_AVAILABLE_IN_ALL
void zlt_session_connection_opened (ZltSession *self);
ZLT_AVAILABLE_IN_ALL
void zlt_session_connection_closed (ZltSession *self);
ZLT_AVAILABLE_IN_ALL
void zlt_session_add_bytes (ZltSession *self, guint64 bytes_in, guint64 bytes_out);
ZLT_AVAILABLE_IN_ALL
void zlt_session_flush_notify (ZltSession *self);

ZLT_AVAILABLE_IN_ALL
const char *zlt_session_get_last_error (ZltSession *self);
ZLT_AVAILABLE_IN_ALL
void zlt_session_set_last_error (ZltSession *self, const char *last_error);

G_END_DECLS
